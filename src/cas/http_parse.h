/*
 * http_parse.h - what the CAS front end checks in a request before anything
 * else reads it: the request target (the percent-decoded path, the raw
 * query) and the headers that frame the body (Content-Length and
 * Transfer-Encoding). Pure functions over bytes without libevent state, so
 * that fuzz/fuzz_cas_request.c drives them directly; server_http.c calls
 * them for every request.
 */
#ifndef SCONE_CAS_HTTP_PARSE_H
#define SCONE_CAS_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define CAS_HTTP_PATH_LIMIT 1024 /* bytes of the raw path, exclusive */

/*
 * Split a request target into its percent-decoded path and its raw query
 * (the part after '?', up to a '#'). The target must start with '/'; the
 * raw path must be shorter than CAS_HTTP_PATH_LIMIT; every '%' must be
 * followed by two hex digits, and neither the raw nor the decoded path may
 * hold a control byte (0x00-0x1F, 0x7F). On success *path (NUL-terminated,
 * no longer than the raw path) and *query (NULL when there is none) are
 * malloc'd for the caller; on failure both are NULL and the error is
 * INVALID (detail says what) or NOMEM.
 */
SCONE_MUST_CHECK enum scone_err cas_http_parse_target(const char *raw, char **path, char **query);

/*
 * The framing headers of one request, gathered one header at a time
 * (cas_http_framing_add for every header, in any order), then judged by
 * cas_http_framing_check. Refused (INVALID, the connection must close after
 * the answer, since the end of this request is in doubt):
 *   - a Content-Length that is not 1..19 decimal digits;
 *   - two Content-Length headers with different values;
 *   - Transfer-Encoding together with Content-Length;
 *   - Transfer-Encoding other than exactly one "chunked" (case ignored).
 * Two front ends that disagree on where a body ends are what request
 * smuggling needs; refusing every ambiguous request leaves nothing to
 * disagree on.
 */
struct cas_http_framing {
	unsigned n_length;   /* Content-Length headers seen */
	uint64_t length;     /* the first one's value */
	bool length_bad;     /* one was not a plain decimal number */
	bool length_differs; /* one differed from the first */
	uint64_t other;	     /* the first value that differed */
	unsigned n_te;	     /* Transfer-Encoding headers seen */
	bool te_bad;	     /* one was not "chunked" */
};

void cas_http_framing_init(struct cas_http_framing *f);
/* Note one header (name matched without case); headers that do not frame the body are ignored. */
void cas_http_framing_add(struct cas_http_framing *f, const char *name, const char *value);
SCONE_MUST_CHECK enum scone_err cas_http_framing_check(const struct cas_http_framing *f);

#endif
