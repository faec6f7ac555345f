/*
 * template.c - the parts of the session language the runtime needs too:
 * shell-like splitting of a command, $$SCONE::NAME[:FORMAT]$$ references,
 * the format table, and @@N host arguments.
 *
 * This file links against libc and src/lib only (never libyaml): the
 * runtime, which lives inside an unmodified program, may take only libc,
 * libcrypto and libssl.
 */
#include "policy.h"

#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"

#define REF_PREFIX "$$SCONE::"
#define REF_PREFIX_LEN (sizeof(REF_PREFIX) - 1)
#define REF_NAME_MAX SCONE_SESSION_NAME_MAX
#define REF_FORMAT_MAX 32

/* ---- string lists ------------------------------------------------------- */

void scone_strs_free(struct scone_strs *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->v && i < s->n; i++) {
		if (s->v[i])
			scone_wipe(s->v[i], strlen(s->v[i]));
		free(s->v[i]);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* Slots for n strings and the NULL: a power of two, so appends are amortised O(1). */
static size_t strs_cap(size_t n)
{
	size_t cap = 4;

	while (cap < n + 1)
		cap *= 2;
	return cap;
}

/* Append a copy of p[0..n) to out, keeping out->v NULL-terminated. */
static enum scone_err strs_push(struct scone_strs *out, const char *p, size_t n)
{
	char **v = out->v;
	char *copy;

	if (!v || strs_cap(out->n + 1) != strs_cap(out->n)) {
		v = realloc(out->v, strs_cap(out->n + 1) * sizeof(*v));
		if (!v)
			return scone_err_set(SCONE_ERR_NOMEM, "out of memory splitting a command");
		out->v = v;
	}
	copy = malloc(n + 1);
	if (!copy) {
		v[out->n] = NULL;
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory splitting a command");
	}
	if (n)
		memcpy(copy, p, n);
	copy[n] = '\0';
	v[out->n++] = copy;
	v[out->n] = NULL;
	return SCONE_ERR_OK;
}

/* ---- shell split -------------------------------------------------------- */

static int is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/*
 * One word starting at line[*i] (not blank) into word (which has room for
 * the whole line). Returns the word's length via *n.
 */
static enum scone_err split_word(const char *line, size_t *i, char *word, size_t *n)
{
	size_t k = 0, p = *i;

	while (line[p] && !is_blank(line[p])) {
		char ch = line[p];
		if (ch == '\'') {
			size_t start = p++;
			while (line[p] && line[p] != '\'')
				word[k++] = line[p++];
			if (!line[p])
				return scone_err_set(SCONE_ERR_MALFORMED,
						     "unterminated single quote at offset %zu of the command",
						     start);
			p++;
		} else if (ch == '"') {
			size_t start = p++;
			while (line[p] && line[p] != '"') {
				if (line[p] == '\\' && line[p + 1] == '\n') {
					p += 2; /* line continuation */
				} else if (line[p] == '\\' && line[p + 1] && strchr("\"\\$`", line[p + 1])) {
					word[k++] = line[p + 1];
					p += 2;
				} else {
					word[k++] = line[p++];
				}
			}
			if (!line[p])
				return scone_err_set(SCONE_ERR_MALFORMED,
						     "unterminated double quote at offset %zu of the command",
						     start);
			p++;
		} else if (ch == '\\') {
			if (!line[p + 1])
				return scone_err_set(SCONE_ERR_MALFORMED,
						     "the command ends with a lone backslash (offset %zu)",
						     p);
			if (line[p + 1] != '\n') /* backslash-newline joins lines */
				word[k++] = line[p + 1];
			p += 2;
		} else {
			word[k++] = line[p++];
		}
	}
	*i = p;
	*n = k;
	return SCONE_ERR_OK;
}

enum scone_err scone_shell_split(const char *line, struct scone_strs *out)
{
	size_t i = 0, n = 0;
	char *word;
	enum scone_err e = SCONE_ERR_OK;

	memset(out, 0, sizeof(*out));
	if (!line)
		return scone_err_set(SCONE_ERR_INVALID, "no command line");
	/* no words still yields a NULL-terminated vector */
	out->v = calloc(strs_cap(0), sizeof(*out->v));
	word = malloc(strlen(line) + 1);
	if (!word || !out->v) {
		free(word);
		scone_strs_free(out);
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory splitting a command");
	}
	for (;;) {
		while (is_blank(line[i]))
			i++;
		if (!line[i])
			break;
		/* "\<newline>" between words is a continuation, not an empty word */
		if (line[i] == '\\' && line[i + 1] == '\n') {
			i += 2;
			continue;
		}
		e = split_word(line, &i, word, &n);
		if (e == SCONE_ERR_OK)
			e = strs_push(out, word, n);
		if (e != SCONE_ERR_OK)
			break;
	}
	scone_wipe(word, strlen(line) + 1);
	free(word);
	if (e != SCONE_ERR_OK)
		scone_strs_free(out);
	return e;
}

/* ---- $$SCONE::NAME[:FORMAT]$$ ------------------------------------------- */

static int is_name_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-' || ch == '.' || ch == '~';
}

static int is_format_char(unsigned char ch)
{
	return is_name_char(ch) || ch == ':';
}

struct ref {
	char name[REF_NAME_MAX + 1];
	char format[REF_FORMAT_MAX + 1];
	int has_format;
	int escape_json; /* "|escape(json)" followed (SCONE 0.3.10's character encoding) */
	size_t size;	 /* bytes of input the reference covers */
};

#define ESCAPE_JSON "|escape(json)"
#define ESCAPE_JSON_LEN (sizeof(ESCAPE_JSON) - 1)

/*
 * Is in[0..len) (which starts with REF_PREFIX) a complete reference? A
 * name of 1..128 name characters, optionally ':' and a format of 1..32
 * format characters, then "$$".
 */
static int parse_ref(const char *in, size_t len, struct ref *r)
{
	size_t p = REF_PREFIX_LEN, n = 0;

	while (p < len && is_name_char((unsigned char)in[p]) && n < REF_NAME_MAX)
		r->name[n++] = in[p++];
	if (n == 0)
		return 0;
	r->name[n] = '\0';
	r->has_format = 0;
	if (p < len && in[p] == ':') {
		p++;
		n = 0;
		while (p < len && is_format_char((unsigned char)in[p]) && n < REF_FORMAT_MAX)
			r->format[n++] = in[p++];
		if (n == 0)
			return 0;
		r->format[n] = '\0';
		r->has_format = 1;
	}
	r->escape_json = 0;
	if (p + ESCAPE_JSON_LEN <= len && memcmp(in + p, ESCAPE_JSON, ESCAPE_JSON_LEN) == 0) {
		r->escape_json = 1;
		p += ESCAPE_JSON_LEN;
	}
	if (p + 2 > len || in[p] != '$' || in[p + 1] != '$')
		return 0;
	r->size = p + 2;
	return 1;
}

/* Offset of the next REF_PREFIX in in[from..len), or len. */
static size_t next_prefix(const char *in, size_t len, size_t from)
{
	for (size_t i = from; i + REF_PREFIX_LEN <= len; i++)
		if (in[i] == '$' && memcmp(in + i, REF_PREFIX, REF_PREFIX_LEN) == 0)
			return i;
	return len;
}

/* RFC 8259 string escaping of v into out (no surrounding quotes), as SCONE's escape(json). */
static enum scone_err put_json_escaped(struct scone_wbuf *out, const uint8_t *v, size_t n)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		uint8_t ch = v[i];
		char esc[6] = {'\\', 0};
		size_t k = 2;
		switch (ch) {
		case '"':
		case '\\':
			esc[1] = (char)ch;
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		default:
			if (ch >= 0x20) {
				SCONE_TRY(scone_wbuf_put(out, &ch, 1));
				continue;
			}
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			k = 6;
		}
		SCONE_TRY(scone_wbuf_put(out, esc, k));
	}
	return SCONE_ERR_OK;
}

/* lookup into a scratch buffer, then escaped into out; the scratch is wiped. */
static enum scone_err lookup_escaped(scone_secret_lookup_fn lookup, void *ctx, const struct ref *r,
				     struct scone_wbuf *out)
{
	struct scone_wbuf tmp;
	enum scone_err e;

	scone_wbuf_init(&tmp, out->max, 1);
	e = lookup(ctx, r->name, r->has_format ? r->format : NULL, &tmp);
	if (e == SCONE_ERR_OK)
		e = put_json_escaped(out, tmp.data, tmp.size);
	scone_wbuf_free(&tmp);
	return e;
}

enum scone_err scone_template_expand(const char *in, size_t len, scone_secret_lookup_fn lookup, void *ctx,
				     struct scone_wbuf *out)
{
	size_t i = 0;
	struct ref r;

	if ((!in && len) || !lookup || !out)
		return scone_err_set(SCONE_ERR_INVALID, "template expansion: missing argument");
	while (i < len) {
		size_t at = next_prefix(in, len, i);
		SCONE_TRY(scone_wbuf_put(out, in + i, at - i));
		if (at == len)
			break;
		if (!parse_ref(in + at, len - at, &r)) {
			/* not a reference: keep the '$' and look again after it */
			SCONE_TRY(scone_wbuf_put(out, in + at, 1));
			i = at + 1;
			continue;
		}
		if (r.escape_json)
			SCONE_TRY(lookup_escaped(lookup, ctx, &r, out));
		else
			SCONE_TRY(lookup(ctx, r.name, r.has_format ? r.format : NULL, out));
		i = at + r.size;
	}
	return SCONE_ERR_OK;
}

enum scone_err scone_template_refs_at(const char *in, size_t len, scone_template_ref_at_fn fn, void *ctx)
{
	size_t i = 0;
	struct ref r;

	if ((!in && len) || !fn)
		return scone_err_set(SCONE_ERR_INVALID, "template references: missing argument");
	while (i < len) {
		size_t at = next_prefix(in, len, i);
		if (at == len)
			break;
		if (!parse_ref(in + at, len - at, &r)) {
			i = at + 1;
			continue;
		}
		SCONE_TRY(fn(ctx, r.name, r.has_format ? r.format : NULL, at, r.size));
		i = at + r.size;
	}
	return SCONE_ERR_OK;
}

struct refs_adapter {
	scone_template_ref_fn fn;
	void *ctx;
};

static enum scone_err refs_adapt(void *ctx, const char *name, const char *format, size_t off, size_t size)
{
	struct refs_adapter *a = ctx;

	(void)off;
	(void)size;
	return a->fn(a->ctx, name, format);
}

enum scone_err scone_template_refs(const char *in, size_t len, scone_template_ref_fn fn, void *ctx)
{
	struct refs_adapter a = {fn, ctx};

	if (!fn)
		return scone_err_set(SCONE_ERR_INVALID, "template references: missing argument");
	return scone_template_refs_at(in, len, refs_adapt, &a);
}

const char *scone_secret_kind_name(enum scone_secret_kind kind)
{
	switch (kind) {
	case SCONE_SECRET_ASCII:
		return "ascii";
	case SCONE_SECRET_BINARY:
		return "binary";
	case SCONE_SECRET_PRIVATE_KEY:
		return "private-key";
	case SCONE_SECRET_X509:
		return "x509";
	case SCONE_SECRET_X509_CA:
		return "x509-ca";
	case SCONE_SECRET_PUBLIC_KEY:
		return "public-key";
	case SCONE_SECRET_CONFIG_FRAGMENT:
		return "config-fragment";
	case SCONE_SECRET_PGP_KEY:
		return "pgp-key";
	}
	return kind == 0 ? "imported" : "unknown"; /* an import without kind: has kind 0 */
}

/*
 * SCONE's formats per kind (0.3.5 to 0.3.12), and scone's own shorter names
 * that mean the same (pem, der, key, publickey). NULL in a table: the kind
 * has a default (no format).
 */
static const char *const ascii_formats[] = {"", "hex", "base64", NULL};
static const char *const binary_formats[] = {"",	  "bin",    "hex",	   "base64",
					     "base64url", "base32", "base32nopad", NULL};
static const char *const private_key_formats[] = {"",	       "pem",	     "pkcs8:pem", "der",
						  "pkcs8:der", "privatekey", "publickey", NULL};
static const char *const public_key_formats[] = {"", "pem", "der", "spki:pem", "spki:der", NULL};
static const char *const x509_formats[] = {"",
					   "crt",
					   "crt:pem",
					   "crt:der",
					   "pem",
					   "der",
					   "chain",
					   "privatekey",
					   "privatekey:pem",
					   "privatekey:pkcs8:pem",
					   "privatekey:der",
					   "privatekey:pkcs8:der",
					   "key",
					   "pkcs12-with-private-key",
					   NULL};
static const char *const fragment_formats[] = {"", NULL};
static const char *const pgp_formats[] = {"privatekey:asciiarmored",
					  "privatekey:binary",
					  "privatekey:base64",
					  "publickey:asciiarmored",
					  "publickey:binary",
					  "publickey:base64",
					  NULL};

static const char *const *format_table(enum scone_secret_kind kind)
{
	switch (kind) {
	case SCONE_SECRET_ASCII:
		return ascii_formats;
	case SCONE_SECRET_BINARY:
		return binary_formats;
	case SCONE_SECRET_PRIVATE_KEY:
		return private_key_formats;
	case SCONE_SECRET_PUBLIC_KEY:
		return public_key_formats;
	case SCONE_SECRET_X509:
	case SCONE_SECRET_X509_CA:
		return x509_formats;
	case SCONE_SECRET_CONFIG_FRAGMENT:
		return fragment_formats;
	case SCONE_SECRET_PGP_KEY:
		return pgp_formats;
	}
	return NULL;
}

bool scone_template_format_valid(enum scone_secret_kind kind, const char *format)
{
	const char *const *table = format_table(kind);

	if (format && !*format)
		return false; /* "" is no format; no format is NULL */
	for (size_t i = 0; table && table[i]; i++)
		if (strcmp(table[i], format ? format : "") == 0)
			return true;
	return false;
}

size_t scone_template_formats(enum scone_secret_kind kind, char *out, size_t out_size)
{
	const char *const *table = format_table(kind);
	size_t n = 0;

	if (out_size)
		out[0] = '\0';
	for (size_t i = 0; table && table[i] && out_size; i++) {
		const char *f = table[i][0] ? table[i] : "(none)";
		size_t len = strlen(f);
		if (n + len + 3 >= out_size)
			break;
		if (n) {
			memcpy(out + n, ", ", 2);
			n += 2;
		}
		memcpy(out + n, f, len + 1);
		n += len;
	}
	return n;
}

bool scone_template_legacy(const char *name, char *base, size_t base_size, const char **format)
{
	static const struct {
		const char *suffix;
		const char *format;
	} legacy[] = {
	    {".crt", "crt"}, {".key", "privatekey"}, {".chain", SCONE_FORMAT_LEGACY_CHAIN}, {".hex", "hex"}};
	size_t len = strlen(name);

	for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]); i++) {
		size_t sl = strlen(legacy[i].suffix);
		if (len > sl && len - sl < base_size && strcmp(name + len - sl, legacy[i].suffix) == 0) {
			memcpy(base, name, len - sl);
			base[len - sl] = '\0';
			*format = legacy[i].format;
			return true;
		}
	}
	return false;
}

/* ---- @@N host arguments ------------------------------------------------- */

/* Expand the @@N in one argument into w. */
static enum scone_err host_arg_expand(const char *arg, int host_argc, char *const *host_argv,
				      struct scone_wbuf *w)
{
	size_t i = 0, len = strlen(arg);

	while (i < len) {
		if (arg[i] == '@' && arg[i + 1] == '@' && arg[i + 2] >= '0' && arg[i + 2] <= '9') {
			size_t p = i + 2;
			unsigned long n = 0;
			while (arg[p] >= '0' && arg[p] <= '9') {
				if (n > 100000000UL)
					return scone_err_set(SCONE_ERR_INVALID,
							     "host argument number too large in \"%s\"", arg);
				n = n * 10 + (unsigned long)(arg[p] - '0');
				p++;
			}
			if (n == 0)
				return scone_err_set(SCONE_ERR_INVALID,
						     "@@0: host arguments are numbered from @@1");
			if (host_argc < 0 || n >= (unsigned long)host_argc || !host_argv || !host_argv[n])
				return scone_err_set(
				    SCONE_ERR_INVALID,
				    "the session's command uses @@%lu but the program got %d argument%s", n,
				    host_argc > 0 ? host_argc - 1 : 0, host_argc == 2 ? "" : "s");
			SCONE_TRY(scone_wbuf_put(w, host_argv[n], strlen(host_argv[n])));
			i = p;
		} else {
			SCONE_TRY(scone_wbuf_put(w, arg + i, 1));
			i++;
		}
	}
	return SCONE_ERR_OK;
}

enum scone_err scone_host_args(const struct scone_strs *argv, int host_argc, char *const *host_argv,
			       struct scone_strs *out)
{
	enum scone_err e = SCONE_ERR_OK;

	memset(out, 0, sizeof(*out));
	if (!argv)
		return scone_err_set(SCONE_ERR_INVALID, "host arguments: no argv");
	/* an empty argv still yields a NULL-terminated vector */
	out->v = calloc(strs_cap(0), sizeof(*out->v));
	if (!out->v)
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory expanding host arguments");
	for (size_t i = 0; i < argv->n && e == SCONE_ERR_OK; i++) {
		struct scone_wbuf w;
		scone_wbuf_init(&w, SIZE_MAX / 2, 1);
		e = host_arg_expand(argv->v[i] ? argv->v[i] : "", host_argc, host_argv, &w);
		if (e == SCONE_ERR_OK)
			e = strs_push(out, w.size ? (const char *)w.data : "", w.size);
		scone_wbuf_free(&w);
	}
	if (e != SCONE_ERR_OK)
		scone_strs_free(out);
	return e;
}
