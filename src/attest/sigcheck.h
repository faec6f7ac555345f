/*
 * sigcheck.h - ECDSA checks over raw vendor signature formats: Intel's
 * big-endian r||s with P-256 keys given as raw x||y, AMD's little-endian
 * zero-extended r and s. Private to src/attest.
 */
#ifndef SCONE_ATTEST_SIGCHECK_H
#define SCONE_ATTEST_SIGCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "lib/err.h"

/* A P-256 public key from the 64 bytes x||y (big-endian); *out owned by the caller. */
SCONE_MUST_CHECK enum scone_err sig_p256_key(const uint8_t xy[64], const char *what, EVP_PKEY **out);

/*
 * Verify an ECDSA signature over msg with digest md ("SHA256", "SHA384").
 * r and s are n bytes each, big-endian (Intel) or little-endian (AMD).
 * AUTH naming what when the signature does not verify.
 */
SCONE_MUST_CHECK enum scone_err sig_verify_ecdsa(EVP_PKEY *key, const char *md, const uint8_t *msg,
						 size_t msg_size, const uint8_t *r, const uint8_t *s,
						 size_t n, bool little_endian, const char *what);

/* SHA-256 of a || b. */
SCONE_MUST_CHECK enum scone_err sig_sha256_2(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size,
					     uint8_t out[32]);

#endif
