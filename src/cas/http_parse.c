/*
 * http_parse.c - the request target and the body-framing headers, checked
 * before a request reaches anything else (contract in http_parse.h).
 *
 * The decoded path is written into a buffer as long as the raw path plus
 * one; the terminating NUL is written on every path out of the decoder, so
 * a caller that logs the buffer after a refusal reads a C string.
 */
#include "http_parse.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Percent-decode raw[0..n) into out (n + 1 bytes), always NUL-terminated.
 * Returns the offset of the first bad byte or escape, or n when all is well.
 */
static size_t decode_path(char *out, const char *raw, size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)raw[i];
		size_t at = i;
		if (ch == '%') {
			int hi = i + 2 < n ? hexval(raw[i + 1]) : -1;
			int lo = hi >= 0 ? hexval(raw[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return at;
			ch = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (ch < 0x20 || ch == 0x7f)
			return at;
		out[o++] = (char)ch;
		out[o] = '\0';
	}
	return n;
}

enum scone_err cas_http_parse_target(const char *raw, char **path, char **query)
{
	size_t n, bad;
	const char *q;

	*path = *query = NULL;
	if (!raw || raw[0] != '/')
		return scone_err_set(SCONE_ERR_INVALID, "request target must be a path starting with '/'");
	n = strcspn(raw, "?#");
	if (n >= CAS_HTTP_PATH_LIMIT)
		return scone_err_set(SCONE_ERR_INVALID, "request path is %zu bytes; the limit is %d", n,
				     CAS_HTTP_PATH_LIMIT - 1);
	if (!(*path = malloc(n + 1)))
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory for a %zu-byte request path", n);
	bad = decode_path(*path, raw, n);
	if (bad != n) {
		free(*path);
		*path = NULL;
		return scone_err_set(SCONE_ERR_INVALID,
				     "request path has a bad %%-escape or a control character at byte %zu",
				     bad);
	}
	if (raw[n] != '?')
		return SCONE_ERR_OK;
	q = raw + n + 1;
	if (!(*query = strndup(q, strcspn(q, "#")))) {
		free(*path);
		*path = NULL;
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory for a request query");
	}
	return SCONE_ERR_OK;
}

/* ---- framing ---- */

void cas_http_framing_init(struct cas_http_framing *f)
{
	memset(f, 0, sizeof(*f));
}

/* 1..19 decimal digits (below 10^19, so it fits), nothing else. */
static bool parse_length(const char *v, uint64_t *out)
{
	size_t n = strlen(v);
	uint64_t x = 0;

	if (n == 0 || n > 19 || strspn(v, "0123456789") != n)
		return false;
	for (size_t i = 0; i < n; i++)
		x = x * 10 + (uint64_t)(v[i] - '0');
	*out = x;
	return true;
}

void cas_http_framing_add(struct cas_http_framing *f, const char *name, const char *value)
{
	uint64_t len;

	if (!name || !value)
		return;
	if (strcasecmp(name, "Content-Length") == 0) {
		if (!parse_length(value, &len)) {
			f->length_bad = true;
		} else if (f->n_length == 0) {
			f->length = len;
		} else if (len != f->length && !f->length_differs) {
			f->length_differs = true;
			f->other = len;
		}
		f->n_length++;
	} else if (strcasecmp(name, "Transfer-Encoding") == 0) {
		if (strcasecmp(value, "chunked") != 0)
			f->te_bad = true;
		f->n_te++;
	}
}

enum scone_err cas_http_framing_check(const struct cas_http_framing *f)
{
	if (f->length_bad)
		return scone_err_set(SCONE_ERR_INVALID, "Content-Length must be a plain decimal number");
	if (f->length_differs)
		return scone_err_set(SCONE_ERR_INVALID,
				     "two Content-Length headers with different values (%llu and %llu): "
				     "the end of the body is ambiguous",
				     (unsigned long long)f->length, (unsigned long long)f->other);
	if (f->n_te && f->n_length)
		return scone_err_set(
		    SCONE_ERR_INVALID,
		    "Transfer-Encoding and Content-Length together: the end of the body is ambiguous");
	if (f->n_te > 1 || f->te_bad)
		return scone_err_set(SCONE_ERR_INVALID,
				     "the only Transfer-Encoding accepted is one \"chunked\"");
	return SCONE_ERR_OK;
}
