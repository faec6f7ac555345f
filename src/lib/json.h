/*
 * json.h - a strict, bounded JSON (RFC 8259) DOM parser for code that may
 * link only libc and libcrypto (the runtime): no jansson.
 *
 * Strict: one value per document (whitespace around it only), no duplicate
 * object keys, strings must be valid UTF-8 without raw control characters,
 * \uXXXX escapes must pair their surrogates, and \u0000 is refused (strings
 * become C strings, so none may hold a NUL byte). Bounded: input size,
 * number of values and nesting depth (at most SCONE_JSON_MAX_DEPTH) are
 * limited. Errors are SCONE_ERR_MALFORMED (or TOO_LARGE for a limit) with a
 * detail "json: line L, column C: what" (columns count bytes from 1; a
 * duplicate key is reported at the later member's value). String contents
 * are wiped when the tree is freed: documents such as a service
 * configuration carry secrets.
 */
#ifndef SCONE_JSON_H
#define SCONE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define SCONE_JSON_MAX_DEPTH 64

enum scone_json_kind {
	SCONE_JSON_NULL,
	SCONE_JSON_BOOL,
	SCONE_JSON_NUMBER,
	SCONE_JSON_STRING,
	SCONE_JSON_ARRAY,
	SCONE_JSON_OBJECT,
};

struct scone_json {
	enum scone_json_kind kind;
	char *key; /* member name when inside an object (NUL-terminated), else NULL */
	size_t key_len;
	size_t offset; /* byte offset of the value in the input (for callers' messages) */
	size_t end;    /* byte offset just past the value: [offset, end) is its exact text */
	bool boolean;  /* BOOL */
	bool is_int;   /* NUMBER: integral and within int64 (then integer holds it) */
	int64_t integer;
	char *str; /* STRING: NUL-terminated, no NUL inside */
	size_t str_len;
	struct scone_json **items; /* ARRAY elements / OBJECT members, in document order */
	size_t count;
};

struct scone_json_limits {
	size_t max_size;    /* bytes of input */
	size_t max_nodes;   /* values in the whole document (every member counts) */
	unsigned max_depth; /* nesting of arrays/objects; capped at SCONE_JSON_MAX_DEPTH */
};

/* 1 MiB + 64 KiB, 200000 values, depth 64. */
extern const struct scone_json_limits scone_json_default_limits;

/* Parse len bytes of text (NUL not required). lim NULL = defaults. */
SCONE_MUST_CHECK enum scone_err
scone_json_parse(const char *text, size_t len, const struct scone_json_limits *lim, struct scone_json **out);
/* Free the tree, wiping every string and key. NULL is fine. */
void scone_json_free(struct scone_json *v);

/* "null", "boolean", "number", "string", "array", "object". */
const char *scone_json_kind_name(enum scone_json_kind kind);

/* Member key of obj, or NULL (also when obj is NULL or not an object). */
const struct scone_json *scone_json_get(const struct scone_json *obj, const char *key);
/* Element i of an array (member i of an object), or NULL. */
const struct scone_json *scone_json_at(const struct scone_json *v, size_t i);
/* Elements of an array / members of an object; 0 for anything else. */
size_t scone_json_len(const struct scone_json *v);

/* Typed views: NULL / false when v is NULL or of another kind. */
const char *scone_json_string(const struct scone_json *v, size_t *len);
bool scone_json_is_null(const struct scone_json *v);
/* INVALID (detail names what) unless v is a boolean / an integral number in range. */
SCONE_MUST_CHECK enum scone_err scone_json_bool(const struct scone_json *v, const char *what, bool *out);
SCONE_MUST_CHECK enum scone_err scone_json_int(const struct scone_json *v, const char *what, int64_t *out);

/* Append s (a UTF-8 C string) as a quoted JSON string to w: '"', '\\' and controls escaped. */
SCONE_MUST_CHECK enum scone_err scone_json_put_string(struct scone_wbuf *w, const char *s);

#endif
