/*
 * base32.h - RFC 4648 base32 (the alphabet A-Z 2-7), as authenticator apps
 * and SCONE's :base32nopad secret format write one-time password secrets.
 */
#ifndef SCONE_BASE32_H
#define SCONE_BASE32_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Characters scone_base32_encode writes for in_size bytes (no padding), without the NUL. */
size_t scone_base32_len(size_t in_size);

/* Upper-case base32 of in without '=' padding, NUL-terminated; out_size >= scone_base32_len + 1. */
void scone_base32_encode(char *out, size_t out_size, const uint8_t *in, size_t in_size);

/*
 * Decode text (len bytes): either case, '=' padding optional (only at the
 * end, and only as much as the length needs), nothing else. Writes at most
 * out_size bytes and the count to *out_len; MALFORMED naming what and the
 * offending character's position, TOO_LARGE when out is too small.
 */
SCONE_MUST_CHECK enum scone_err scone_base32_decode(const char *text, size_t len, uint8_t *out, size_t out_size,
						    size_t *out_len, const char *what);

#endif
