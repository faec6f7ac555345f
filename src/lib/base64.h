/*
 * base64.h - standard base64 (RFC 4648 section 4, padded): encoding, and
 * strict decoding in constant time (no branch or table lookup on the
 * data: it decodes keys and secrets), leaving nothing decoded behind on
 * error.
 */
#ifndef SCONE_BASE64_H
#define SCONE_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Characters (without NUL) the encoding of n bytes takes. */
size_t scone_base64_encoded_len(size_t n);

/* Encode n bytes into out (out_size >= scone_base64_encoded_len(n) + 1, NUL-terminated). */
void scone_base64_encode(char *out, size_t out_size, const uint8_t *in, size_t n);

/* The most bytes len characters of base64 can decode to (a buffer size). */
size_t scone_base64_decoded_max(size_t len);

/* Decoding options. */
#define SCONE_BASE64_SPACE 1u /* ignore spaces, tabs and line breaks (PEM-style text) */

/*
 * Decode in[0..len) into out (cap bytes), *out_len set. Strict: padding
 * required, '=' only at the end, unused bits zero, nothing else; what
 * names the value in the error (MALFORMED, with the position of the first
 * bad character; the value itself is never in the message). On error out
 * is wiped.
 */
SCONE_MUST_CHECK enum scone_err scone_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap,
						    size_t *out_len, unsigned flags, const char *what);

#endif
