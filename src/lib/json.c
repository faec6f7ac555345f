/*
 * json.c - the strict, bounded JSON parser of json.h: a recursive-descent
 * reader over a bounded cursor (depth <= SCONE_JSON_MAX_DEPTH keeps the
 * recursion small), the tree accessors, and a string escaper for writers.
 *
 * Invariants of a parsed tree: every string and key is valid UTF-8 without
 * NUL, NUL-terminated at [len]; no object has two members with equal keys;
 * the document had nothing but whitespace around its one value.
 */
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

const struct scone_json_limits scone_json_default_limits = {
    .max_size = (1u << 20) + (64u << 10),
    .max_nodes = 200000,
    .max_depth = SCONE_JSON_MAX_DEPTH,
};

struct jp {
	const uint8_t *s;
	size_t len;
	size_t pos;
	size_t nodes;
	size_t max_nodes;
	unsigned max_depth;
};

/* ---------------- errors ---------------- */

static void position(const struct jp *p, size_t at, size_t *line, size_t *col)
{
	size_t l = 1, c = 1;

	for (size_t i = 0; i < at && i < p->len; i++) {
		if (p->s[i] == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
}

__attribute__((format(printf, 4, 5))) static enum scone_err
jp_fail_at(const struct jp *p, enum scone_err code, size_t at, const char *fmt, ...)
{
	char what[160];
	size_t line, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	position(p, at, &line, &col);
	return scone_err_set(code, "json: line %zu, column %zu: %s", line, col, what);
}

#define jp_fail(p, ...) jp_fail_at((p), SCONE_ERR_MALFORMED, (p)->pos, __VA_ARGS__)

/* Describe the byte at pos for an error message. */
static enum scone_err unexpected(const struct jp *p, const char *expected)
{
	if (p->pos >= p->len)
		return jp_fail(p, "unexpected end of input, expected %s", expected);
	if (p->s[p->pos] >= 0x21 && p->s[p->pos] < 0x7f)
		return jp_fail(p, "unexpected '%c', expected %s", p->s[p->pos], expected);
	return jp_fail(p, "unexpected byte 0x%02x, expected %s", p->s[p->pos], expected);
}

/* ---------------- tree ---------------- */

static void wipe_free(char *s, size_t len)
{
	if (!s)
		return;
	scone_wipe(s, len + 1);
	free(s);
}

void scone_json_free(struct scone_json *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->count; i++)
		scone_json_free(v->items[i]);
	free(v->items);
	wipe_free(v->key, v->key_len);
	wipe_free(v->str, v->str_len);
	free(v);
}

static enum scone_err add_item(const struct jp *p, struct scone_json *parent, struct scone_json *child)
{
	if ((parent->count & (parent->count - 1)) == 0) {
		size_t cap = parent->count ? parent->count * 2 : 4;
		struct scone_json **n = realloc(parent->items, cap * sizeof(*n));
		if (!n)
			return jp_fail_at(p, SCONE_ERR_NOMEM, p->pos, "out of memory");
		parent->items = n;
	}
	parent->items[parent->count++] = child;
	return SCONE_ERR_OK;
}

/* ---------------- lexical pieces ---------------- */

static void skip_ws(struct jp *p)
{
	while (p->pos < p->len &&
	       (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static bool peek_is(const struct jp *p, uint8_t c)
{
	return p->pos < p->len && p->s[p->pos] == c;
}

static enum scone_err expect(struct jp *p, uint8_t c, const char *what)
{
	skip_ws(p);
	if (!peek_is(p, c))
		return unexpected(p, what);
	p->pos++;
	return SCONE_ERR_OK;
}

static enum scone_err parse_literal(struct jp *p, struct scone_json *v)
{
	static const struct {
		const char *word;
		enum scone_json_kind kind;
		bool value;
	} lits[] = {{"true", SCONE_JSON_BOOL, true},
		    {"false", SCONE_JSON_BOOL, false},
		    {"null", SCONE_JSON_NULL, false}};

	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
		size_t n = strlen(lits[i].word);
		if (p->len - p->pos >= n && memcmp(p->s + p->pos, lits[i].word, n) == 0) {
			v->kind = lits[i].kind;
			v->boolean = lits[i].value;
			p->pos += n;
			return SCONE_ERR_OK;
		}
	}
	return unexpected(p, "a value");
}

/* ---------------- numbers ---------------- */

static size_t digits(struct jp *p)
{
	size_t start = p->pos;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
		p->pos++;
	return p->pos - start;
}

/* Magnitude of the integer digits [from, to); false on uint64 overflow. */
static bool magnitude(const uint8_t *s, size_t from, size_t to, uint64_t *out)
{
	uint64_t m = 0;

	for (size_t i = from; i < to; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (m > (UINT64_MAX - d) / 10)
			return false;
		m = m * 10 + d;
	}
	*out = m;
	return true;
}

static enum scone_err parse_number(struct jp *p, struct scone_json *v)
{
	bool neg = peek_is(p, '-'), integral = true;
	size_t int_start, int_end;
	uint64_t m;

	v->kind = SCONE_JSON_NUMBER;
	p->pos += neg;
	int_start = p->pos;
	if (!digits(p))
		return unexpected(p, "a digit");
	int_end = p->pos;
	if (p->s[int_start] == '0' && int_end - int_start > 1)
		return jp_fail_at(p, SCONE_ERR_MALFORMED, int_start, "number with a leading zero");
	if (peek_is(p, '.')) {
		p->pos++;
		integral = false;
		if (!digits(p))
			return unexpected(p, "a digit after '.'");
	}
	if (peek_is(p, 'e') || peek_is(p, 'E')) {
		p->pos++;
		integral = false;
		if (peek_is(p, '+') || peek_is(p, '-'))
			p->pos++;
		if (!digits(p))
			return unexpected(p, "a digit in the exponent");
	}
	if (integral && magnitude(p->s, int_start, int_end, &m) && m <= (uint64_t)INT64_MAX + neg) {
		v->is_int = true;
		v->integer = neg ? (int64_t)(0 - m) : (int64_t)m;
	}
	return SCONE_ERR_OK;
}

/* ---------------- strings ---------------- */

/* Length of the valid UTF-8 sequence at s[0..n) (lead byte >= 0x80), or 0 (RFC 3629 table). */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

static enum scone_err put_utf8(struct scone_wbuf *w, uint32_t cp)
{
	uint8_t b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (uint8_t)(0xc0 | cp >> 6);
		b[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (uint8_t)(0xe0 | cp >> 12);
		b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (uint8_t)(0xf0 | cp >> 18);
		b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return scone_wbuf_put(w, b, n);
}

/* Four hex digits after "\u" at pos; pos advanced past them. */
static enum scone_err hex4(struct jp *p, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++, p->pos++) {
		uint8_t c = p->pos < p->len ? p->s[p->pos] : 0;
		if (c >= '0' && c <= '9')
			v = v << 4 | (uint32_t)(c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v = v << 4 | (uint32_t)((c | 0x20) - 'a' + 10);
		else
			return unexpected(p, "4 hex digits after \\u");
	}
	*out = v;
	return SCONE_ERR_OK;
}

/* pos is after "\u": one code point, a surrogate pair taken whole. */
static enum scone_err unicode_escape(struct jp *p, size_t esc, struct scone_wbuf *w)
{
	uint32_t cp, lo;

	SCONE_TRY(hex4(p, &cp));
	if (cp == 0)
		return jp_fail_at(p, SCONE_ERR_MALFORMED, esc,
				  "\\u0000 is not allowed (strings must not hold NUL)");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return jp_fail_at(p, SCONE_ERR_MALFORMED, esc, "unpaired low surrogate \\u%04x", cp);
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
			return jp_fail_at(p, SCONE_ERR_MALFORMED, esc, "unpaired high surrogate \\u%04x", cp);
		p->pos += 2;
		SCONE_TRY(hex4(p, &lo));
		if (lo < 0xdc00 || lo > 0xdfff)
			return jp_fail_at(p, SCONE_ERR_MALFORMED, esc, "unpaired high surrogate \\u%04x", cp);
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return put_utf8(w, cp);
}

/* pos is on the backslash. */
static enum scone_err escape(struct jp *p, struct scone_wbuf *w)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	size_t esc = p->pos++;
	const char *hit;

	if (p->pos >= p->len)
		return unexpected(p, "an escape character");
	if (p->s[p->pos] == 'u') {
		p->pos++;
		return unicode_escape(p, esc, w);
	}
	hit = p->s[p->pos] ? strchr(from, p->s[p->pos]) : NULL;
	if (!hit)
		return jp_fail_at(p, SCONE_ERR_MALFORMED, esc, "invalid escape sequence");
	p->pos++;
	return scone_wbuf_u8(w, (uint8_t)to[hit - from]);
}

/* One piece of string content at pos into w: a run of plain bytes, a UTF-8 sequence or an escape. */
static enum scone_err string_piece(struct jp *p, struct scone_wbuf *w)
{
	uint8_t c = p->s[p->pos];
	size_t start = p->pos, n;

	if (c == '\\')
		return escape(p, w);
	if (c < 0x20)
		return jp_fail(p, "control character 0x%02x in a string (escape it)", c);
	if (c >= 0x80) {
		n = utf8_seq(p->s + p->pos, p->len - p->pos);
		if (!n)
			return jp_fail(p, "invalid UTF-8 in a string");
		p->pos += n;
		return scone_wbuf_put(w, p->s + start, n);
	}
	while (p->pos < p->len && p->s[p->pos] >= 0x20 && p->s[p->pos] < 0x80 && p->s[p->pos] != '"' &&
	       p->s[p->pos] != '\\')
		p->pos++;
	return scone_wbuf_put(w, p->s + start, p->pos - start);
}

/* pos is on the opening quote; *out gets a NUL-terminated copy. */
static enum scone_err parse_string(struct jp *p, char **out, size_t *out_len)
{
	struct scone_wbuf w;
	enum scone_err err = SCONE_ERR_OK;

	scone_wbuf_init(&w, p->len + 1, 1);
	p->pos++;
	while (!err && !peek_is(p, '"')) {
		if (p->pos >= p->len)
			err = jp_fail(p, "unterminated string");
		else
			err = string_piece(p, &w);
	}
	if (!err)
		err = scone_wbuf_u8(&w, 0);
	if (!err && !(*out = malloc(w.size)))
		err = jp_fail_at(p, SCONE_ERR_NOMEM, p->pos, "out of memory");
	if (!err) {
		memcpy(*out, w.data, w.size);
		*out_len = w.size - 1;
		p->pos++;
	}
	scone_wbuf_free(&w);
	return err;
}

/* ---------------- containers ---------------- */

static enum scone_err parse_value(struct jp *p, unsigned depth, struct scone_json **out);

static int key_cmp(const void *a, const void *b)
{
	const struct scone_json *x = *(const struct scone_json *const *)a,
				*y = *(const struct scone_json *const *)b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c)
		return c;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Sort a copy of the members by key: equal neighbours are duplicates. */
static enum scone_err check_duplicates(const struct jp *p, const struct scone_json *obj)
{
	struct scone_json **sorted;
	enum scone_err err = SCONE_ERR_OK;

	if (obj->count < 2)
		return SCONE_ERR_OK;
	sorted = malloc(obj->count * sizeof(*sorted));
	if (!sorted)
		return jp_fail_at(p, SCONE_ERR_NOMEM, p->pos, "out of memory");
	memcpy(sorted, obj->items, obj->count * sizeof(*sorted));
	qsort(sorted, obj->count, sizeof(*sorted), key_cmp);
	for (size_t i = 1; i < obj->count && !err; i++) {
		const struct scone_json *a = sorted[i - 1], *b = sorted[i];
		if (a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0)
			err =
			    jp_fail_at(p, SCONE_ERR_MALFORMED, b->offset, "duplicate key \"%.64s\"", b->key);
	}
	free(sorted);
	return err;
}

static enum scone_err parse_member(struct jp *p, unsigned depth, struct scone_json *obj)
{
	struct scone_json *child = NULL;
	char *key = NULL;
	size_t key_len = 0;
	enum scone_err err;

	skip_ws(p);
	if (!peek_is(p, '"'))
		return unexpected(p, "a member name (string)");
	SCONE_TRY(parse_string(p, &key, &key_len));
	if ((err = expect(p, ':', "':' after the member name")) || (err = parse_value(p, depth, &child)) ||
	    (err = add_item(p, obj, child))) {
		scone_json_free(child);
		wipe_free(key, key_len);
		return err;
	}
	child->key = key;
	child->key_len = key_len;
	return SCONE_ERR_OK;
}

static enum scone_err parse_object(struct jp *p, unsigned depth, struct scone_json *v)
{
	v->kind = SCONE_JSON_OBJECT;
	p->pos++;
	skip_ws(p);
	if (peek_is(p, '}')) {
		p->pos++;
		return SCONE_ERR_OK;
	}
	for (;;) {
		SCONE_TRY(parse_member(p, depth, v));
		skip_ws(p);
		if (peek_is(p, '}'))
			break;
		SCONE_TRY(expect(p, ',', "',' or '}' in an object"));
	}
	p->pos++;
	return check_duplicates(p, v);
}

static enum scone_err parse_array(struct jp *p, unsigned depth, struct scone_json *v)
{
	struct scone_json *child;

	v->kind = SCONE_JSON_ARRAY;
	p->pos++;
	skip_ws(p);
	if (peek_is(p, ']')) {
		p->pos++;
		return SCONE_ERR_OK;
	}
	for (;;) {
		child = NULL;
		SCONE_TRY(parse_value(p, depth, &child));
		if (add_item(p, v, child) != SCONE_ERR_OK) {
			scone_json_free(child);
			return SCONE_ERR_NOMEM;
		}
		skip_ws(p);
		if (peek_is(p, ']'))
			break;
		SCONE_TRY(expect(p, ',', "',' or ']' in an array"));
	}
	p->pos++;
	return SCONE_ERR_OK;
}

static enum scone_err parse_kind(struct jp *p, unsigned depth, struct scone_json *v)
{
	uint8_t c = p->s[p->pos];

	if (c == '{' || c == '[') {
		if (depth >= p->max_depth)
			return jp_fail_at(p, SCONE_ERR_TOO_LARGE, p->pos, "nested deeper than %u levels",
					  p->max_depth);
		return c == '{' ? parse_object(p, depth + 1, v) : parse_array(p, depth + 1, v);
	}
	if (c == '"') {
		v->kind = SCONE_JSON_STRING;
		return parse_string(p, &v->str, &v->str_len);
	}
	if (c == '-' || (c >= '0' && c <= '9'))
		return parse_number(p, v);
	return parse_literal(p, v);
}

static enum scone_err parse_value(struct jp *p, unsigned depth, struct scone_json **out)
{
	struct scone_json *v;
	enum scone_err err;

	skip_ws(p);
	if (p->pos >= p->len)
		return unexpected(p, "a value");
	if (++p->nodes > p->max_nodes)
		return jp_fail_at(p, SCONE_ERR_TOO_LARGE, p->pos, "more than %zu values", p->max_nodes);
	v = calloc(1, sizeof(*v));
	if (!v)
		return jp_fail_at(p, SCONE_ERR_NOMEM, p->pos, "out of memory");
	v->offset = p->pos;
	err = parse_kind(p, depth, v);
	if (err) {
		scone_json_free(v);
		return err;
	}
	v->end = p->pos;
	*out = v;
	return SCONE_ERR_OK;
}

enum scone_err scone_json_parse(const char *text, size_t len, const struct scone_json_limits *lim,
				struct scone_json **out)
{
	struct jp p = {.s = (const uint8_t *)text, .len = len};
	struct scone_json *root = NULL;

	*out = NULL;
	if (!lim)
		lim = &scone_json_default_limits;
	if (!text && len)
		return scone_err_set(SCONE_ERR_INVALID, "json: no input");
	if (len > lim->max_size)
		return scone_err_set(
		    SCONE_ERR_TOO_LARGE,
		    "json: line 1, column 1: document of %zu bytes exceeds the %zu-byte limit", len,
		    lim->max_size);
	p.max_nodes = lim->max_nodes;
	p.max_depth = lim->max_depth < SCONE_JSON_MAX_DEPTH ? lim->max_depth : SCONE_JSON_MAX_DEPTH;
	SCONE_TRY(parse_value(&p, 0, &root));
	skip_ws(&p);
	if (p.pos != p.len) {
		scone_json_free(root);
		return jp_fail(&p, "unexpected data after the JSON value");
	}
	*out = root;
	return SCONE_ERR_OK;
}

/* ---------------- accessors ---------------- */

const char *scone_json_kind_name(enum scone_json_kind kind)
{
	static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};

	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

const struct scone_json *scone_json_get(const struct scone_json *obj, const char *key)
{
	size_t n;

	if (!obj || obj->kind != SCONE_JSON_OBJECT || !key)
		return NULL;
	n = strlen(key);
	for (size_t i = 0; i < obj->count; i++)
		if (obj->items[i]->key_len == n && memcmp(obj->items[i]->key, key, n) == 0)
			return obj->items[i];
	return NULL;
}

const struct scone_json *scone_json_at(const struct scone_json *v, size_t i)
{
	if (!v || (v->kind != SCONE_JSON_ARRAY && v->kind != SCONE_JSON_OBJECT) || i >= v->count)
		return NULL;
	return v->items[i];
}

size_t scone_json_len(const struct scone_json *v)
{
	return v && (v->kind == SCONE_JSON_ARRAY || v->kind == SCONE_JSON_OBJECT) ? v->count : 0;
}

const char *scone_json_string(const struct scone_json *v, size_t *len)
{
	if (!v || v->kind != SCONE_JSON_STRING)
		return NULL;
	if (len)
		*len = v->str_len;
	return v->str;
}

bool scone_json_is_null(const struct scone_json *v)
{
	return v && v->kind == SCONE_JSON_NULL;
}

static enum scone_err wrong_kind(const struct scone_json *v, const char *what, const char *want)
{
	return scone_err_set(SCONE_ERR_INVALID, "%s: expected %s, got %s", what ? what : "value", want,
			     v ? scone_json_kind_name(v->kind) : "nothing");
}

enum scone_err scone_json_bool(const struct scone_json *v, const char *what, bool *out)
{
	if (!v || v->kind != SCONE_JSON_BOOL)
		return wrong_kind(v, what, "a boolean");
	*out = v->boolean;
	return SCONE_ERR_OK;
}

enum scone_err scone_json_int(const struct scone_json *v, const char *what, int64_t *out)
{
	if (!v || v->kind != SCONE_JSON_NUMBER || !v->is_int)
		return wrong_kind(v, what, "an integer");
	*out = v->integer;
	return SCONE_ERR_OK;
}

/* ---------------- writer ---------------- */

enum scone_err scone_json_put_string(struct scone_wbuf *w, const char *s)
{
	static const char hexd[] = "0123456789abcdef";

	SCONE_TRY(scone_wbuf_u8(w, '"'));
	for (const uint8_t *c = (const uint8_t *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			uint8_t e[2] = {'\\', *c};
			SCONE_TRY(scone_wbuf_put(w, e, 2));
		} else if (*c < 0x20) {
			uint8_t e[6] = {'\\', 'u', '0', '0', (uint8_t)hexd[*c >> 4], (uint8_t)hexd[*c & 15]};
			SCONE_TRY(scone_wbuf_put(w, e, 6));
		} else {
			SCONE_TRY(scone_wbuf_u8(w, *c));
		}
	}
	return scone_wbuf_u8(w, '"');
}
