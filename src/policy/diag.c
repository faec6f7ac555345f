/*
 * diag.c - the error list of one parse and the key path ("services[0].
 * environment.PORT") that every error carries.
 *
 * Errors are collected, not returned one by one: a user fixing a session
 * sees every problem of it in one run. The first POL_MAX_STORED_ERRORS
 * are stored, the rest only counted (diag->dropped) so a hostile document
 * cannot make the list grow without bound.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scone_policy_diag_free(struct scone_policy_diag *d)
{
	if (!d)
		return;
	free(d->errors);
	free(d->notes);
	memset(d, 0, sizeof(*d));
}

void scone_policy_error_format(const struct scone_policy_error *e, char *out, size_t out_size)
{
	int n;

	if (!out || out_size == 0)
		return;
	if (e->path[0])
		n = snprintf(out, out_size, "%d:%d: %s: %s", e->pos.line, e->pos.column, e->path, e->message);
	else
		n = snprintf(out, out_size, "%d:%d: %s", e->pos.line, e->pos.column, e->message);
	if (n < 0)
		out[0] = '\0';
}

/* The message into out; a cut one ends with "..." so the cut shows. */
__attribute__((format(printf, 3, 0))) static void set_message(char *out, size_t size, const char *fmt,
							      va_list ap)
{
	int n = vsnprintf(out, size, fmt, ap);

	if (n < 0)
		out[0] = '\0';
	else if ((size_t)n >= size)
		memcpy(out + size - 4, "...", 4);
}

void pol_error(struct pctx *c, struct scone_pos pos, const char *fmt, ...)
{
	struct scone_policy_diag *d = c->diag;
	struct scone_policy_error *e;
	va_list ap;

	c->errors++;
	if (d->count >= POL_MAX_STORED_ERRORS) {
		d->dropped++;
		return;
	}
	if (!d->errors) {
		d->errors = calloc(POL_MAX_STORED_ERRORS, sizeof(*d->errors));
		if (!d->errors) {
			c->nomem = true;
			d->dropped++;
			return;
		}
	}
	e = &d->errors[d->count++];
	memset(e, 0, sizeof(*e));
	e->pos = pos;
	memcpy(e->path, c->path, c->path_len);
	e->path[c->path_len] = '\0';
	va_start(ap, fmt);
	set_message(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

void pol_note(struct pctx *c, enum scone_note_kind kind, struct scone_pos pos, const char *fmt, ...)
{
	struct scone_policy_diag *d = c->diag;
	struct scone_policy_note *n;
	va_list ap;

	if (d->n_notes >= POL_MAX_STORED_ERRORS)
		return;
	if (!d->notes) {
		d->notes = calloc(POL_MAX_STORED_ERRORS, sizeof(*d->notes));
		if (!d->notes) {
			c->nomem = true;
			return;
		}
	}
	n = &d->notes[d->n_notes++];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	n->e.pos = pos;
	memcpy(n->e.path, c->path, c->path_len);
	n->e.path[c->path_len] = '\0';
	va_start(ap, fmt);
	set_message(n->e.message, sizeof(n->e.message), fmt, ap);
	va_end(ap);
}

/* Advance p over the bytes [from, to) of the document. */
static void advance(struct scone_pos *p, const char *from, const char *to)
{
	for (; from < to; from++) {
		if (*from == '\n') {
			p->line++;
			p->column = 1;
		} else if (((unsigned char)*from & 0xC0) != 0x80) {
			p->column++;
		}
	}
}

/*
 * A literal block (|): the value is its lines without the indentation of
 * the first one. Walk the source line by line; false when it does not
 * match (folding, escapes, tabs: the caller falls back to the value's start).
 */
static bool in_literal_block(const char *src, const char *end, const struct ynode *n, size_t off,
			     struct scone_pos *p)
{
	const char *nl = memchr(src, '\n', (size_t)(end - src));
	size_t indent = 0, vi = 0;

	if (!nl)
		return false;
	advance(p, src, nl + 1);
	src = nl + 1;
	while (src + indent < end && src[indent] == ' ')
		indent++;
	while (src < end && vi < n->len) {
		size_t k = 0;
		bool eol = false;
		while (k < indent && src + k < end && src[k] == ' ')
			k++;
		advance(p, src, src + k);
		src += k;
		while (!eol && src < end && vi < n->len) {
			if (*src != n->text[vi])
				return false;
			if (vi == off)
				return true;
			eol = *src == '\n';
			advance(p, src, src + 1);
			src++;
			vi++;
		}
	}
	return false;
}

struct scone_pos pol_pos_in(const struct pctx *c, const struct ynode *n, size_t off)
{
	struct scone_pos p = n->pos;
	const char *src;
	size_t span;

	if (!c->text || n->kind != YN_SCALAR || n->src_end <= n->src_start || n->src_end > c->text_len ||
	    off >= n->len)
		return n->pos;
	src = c->text + n->src_start;
	span = n->src_end - n->src_start;
	if (span >= n->len && memcmp(src, n->text, n->len) == 0) { /* plain */
		advance(&p, n->text, n->text + off);
		return p;
	}
	if (span >= n->len + 2 && (src[0] == '"' || src[0] == '\'') &&
	    memcmp(src + 1, n->text, n->len) == 0) {
		advance(&p, src, src + 1 + off); /* quoted without escapes */
		return p;
	}
	if (src[0] == '|' && in_literal_block(src, c->text + n->src_end, n, off, &p))
		return p;
	return n->pos;
}

/* Append text to the path, truncating (with "...") when it does not fit. */
static size_t path_append(struct pctx *c, const char *text)
{
	size_t old = c->path_len, n = strlen(text);

	if (old + n >= POL_PATH_MAX) {
		size_t room = POL_PATH_MAX - 1 - old;
		memcpy(c->path + old, text, room);
		c->path_len = POL_PATH_MAX - 1;
		if (c->path_len >= 3)
			memcpy(c->path + c->path_len - 3, "...", 3);
	} else {
		memcpy(c->path + old, text, n);
		c->path_len = old + n;
	}
	c->path[c->path_len] = '\0';
	return old;
}

size_t pol_path_key(struct pctx *c, const char *key)
{
	size_t old = c->path_len;

	if (c->path_len > 0 && c->path_len < POL_PATH_MAX - 1)
		path_append(c, ".");
	path_append(c, key);
	return old;
}

size_t pol_path_index(struct pctx *c, size_t i)
{
	char buf[32];

	if (snprintf(buf, sizeof(buf), "[%zu]", i) < 0)
		buf[0] = '\0';
	return path_append(c, buf);
}

void pol_path_restore(struct pctx *c, size_t len)
{
	c->path_len = len;
	c->path[len] = '\0';
}

static int pos_cmp(const struct scone_policy_error *a, const struct scone_policy_error *b)
{
	if (a->pos.line != b->pos.line)
		return a->pos.line < b->pos.line ? -1 : 1;
	if (a->pos.column != b->pos.column)
		return a->pos.column < b->pos.column ? -1 : 1;
	return 0;
}

void pol_diag_sort(struct scone_policy_diag *d)
{
	/* insertion sort: stable, and at most POL_MAX_STORED_ERRORS entries */
	for (size_t i = 1; i < d->count; i++) {
		struct scone_policy_error tmp = d->errors[i];
		size_t j = i;
		while (j > 0 && pos_cmp(&d->errors[j - 1], &tmp) > 0) {
			d->errors[j] = d->errors[j - 1];
			j--;
		}
		d->errors[j] = tmp;
	}
}
