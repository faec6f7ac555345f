/*
 * vars.c - SCONE's session templates: `scone session create -e VAR=VALUE`
 * and `--use-env` fill shell-like variables in the session text before it
 * is parsed or uploaded (SCONE's CLI: "Replace variables in the session
 * template with the given values").
 *
 * $NAME and ${NAME} (NAME: a letter or _, then letters, digits, _) are
 * replaced by the value, as it is (no quoting: the session author places
 * the variable where its text belongs, as in a shell here-document). "$$"
 * is copied as it is, so $$SCONE::...$$ references stay whole; any other
 * "$" is text. A variable without a value is SCONE's error: "Value for
 * variable $NAME is missing at line L column C" (the position of its "$",
 * 1-based, columns in characters).
 */
#include "policy.h"

#include <stdio.h>
#include <string.h>

static bool name_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool name_char(char ch)
{
	return name_start(ch) || (ch >= '0' && ch <= '9');
}

static struct scone_pos pos_of(const char *text, size_t off)
{
	struct scone_pos p = {1, 1};

	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			p.line++;
			p.column = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			p.column++;
		}
	}
	return p;
}

/* The variable at text[i] == '$': its name into name, its length (0: not a variable) into *span. */
static void var_at(const char *text, size_t len, size_t i, char *name, size_t name_size, size_t *span)
{
	size_t p = i + 1, n = 0;
	bool braced = p < len && text[p] == '{';

	*span = 0;
	if (braced)
		p++;
	if (p >= len || !name_start(text[p]))
		return;
	while (p < len && name_char(text[p]) && n + 1 < name_size)
		name[n++] = text[p++];
	name[n] = '\0';
	if (p < len && name_char(text[p]))
		return; /* longer than any variable name: not one */
	if (braced) {
		if (p >= len || text[p] != '}')
			return;
		p++;
	}
	*span = p - i;
}

enum scone_err scone_session_vars_expand(const char *text, size_t len, scone_var_lookup_fn lookup, void *ctx,
					 struct scone_wbuf *out)
{
	char name[SCONE_VAR_NAME_MAX + 1];
	size_t i = 0;

	if ((!text && len) || !lookup || !out)
		return scone_err_set(SCONE_ERR_INVALID, "session variables: missing argument");
	while (i < len) {
		const char *dollar = memchr(text + i, '$', len - i);
		size_t at = dollar ? (size_t)(dollar - text) : len, span;
		const char *value;
		SCONE_TRY(scone_wbuf_put(out, text + i, at - i));
		if (at == len)
			break;
		if (at + 1 < len && text[at + 1] == '$') { /* "$$": $$SCONE::...$$ stays as it is */
			SCONE_TRY(scone_wbuf_put(out, "$$", 2));
			i = at + 2;
			continue;
		}
		var_at(text, len, at, name, sizeof(name), &span);
		if (!span) {
			SCONE_TRY(scone_wbuf_u8(out, '$'));
			i = at + 1;
			continue;
		}
		if (!(value = lookup(ctx, name))) {
			struct scone_pos p = pos_of(text, at);
			return scone_err_set(SCONE_ERR_NOT_FOUND,
					     "Value for variable $%s is missing at line %d column %d", name,
					     p.line, p.column);
		}
		SCONE_TRY(scone_wbuf_put(out, value, strlen(value)));
		i = at + span;
	}
	return SCONE_ERR_OK;
}
