/* hex.h - lowercase hex encoding and strict, constant-time decoding. */
#ifndef SCONE_HEX_H
#define SCONE_HEX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Write 2*in_size hex chars plus NUL into out (out_size >= 2*in_size+1). */
void scone_hex_encode(char *out, size_t out_size, const uint8_t *in, size_t in_size);

/*
 * Decode exactly out_size bytes from hex string in (case-insensitive, no
 * separators), in constant time (keys are decoded here); on error out is
 * wiped. what names the value for the error message.
 */
SCONE_MUST_CHECK enum scone_err scone_hex_decode(uint8_t *out, size_t out_size, const char *in,
						 const char *what);

#endif
