/*
 * crypto.h - the thin layer over OpenSSL 3 that the rest of scone uses:
 * randomness, SHA-256, HMAC, HKDF, AEAD contexts (AES-256-GCM and
 * AES-256-OCB), constant-time comparison, wiping, and memory for long-lived
 * keys that is locked and excluded from core dumps.
 */
#ifndef SCONE_CRYPTO_H
#define SCONE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "err.h"

#define SCONE_KEY_SIZE 32
#define SCONE_TAG_SIZE 16
#define SCONE_NONCE_SIZE 12
#define SCONE_SHA256_SIZE 32

enum scone_aead_alg {
	SCONE_AEAD_AES256_GCM = 1,
	SCONE_AEAD_AES256_OCB = 2,
};

/* Name of alg ("aes-256-gcm"), or NULL if alg is not supported. */
const char *scone_aead_name(enum scone_aead_alg alg);

SCONE_MUST_CHECK enum scone_err scone_random(void *out, size_t size);

void scone_sha256(const void *in, size_t in_size, uint8_t out[static SCONE_SHA256_SIZE]);

/*
 * SHA-256 fetched from the provider once per process. EVP_sha256() is
 * looked up again at every use: 15 us of the 47 us an ECDSA signature of
 * CAS's audit entry took, and half of a short digest's time.
 */
const EVP_MD *scone_sha256_md(void);

SCONE_MUST_CHECK enum scone_err scone_hmac_sha256(const uint8_t *key, size_t key_size, const void *in,
						  size_t in_size, uint8_t out[static SCONE_SHA256_SIZE]);

/* HKDF-SHA256 (RFC 5869) extract-and-expand into out. */
SCONE_MUST_CHECK enum scone_err scone_hkdf_sha256(uint8_t *out, size_t out_size, const uint8_t *ikm,
						  size_t ikm_size, const uint8_t *salt, size_t salt_size,
						  const char *info);

/* Constant-time equality of two size-byte buffers. */
bool scone_ct_equal(const void *a, const void *b, size_t size);

/* Wipe memory in a way the compiler cannot elide. */
void scone_wipe(void *p, size_t size);

/*
 * Memory for long-lived keys: page-aligned, mlock'ed where the limit allows,
 * excluded from core dumps, zero-filled. Free with scone_secure_free, which
 * wipes it first. Returns NULL on failure.
 */
void *scone_secure_alloc(size_t size);
void scone_secure_free(void *p, size_t size);

/* 16 hex chars of SHA-256(data): safe to log in place of a key. */
void scone_fingerprint(const void *data, size_t size, char out[static 17]);

/*
 * An AEAD key schedule, set up once and used for many messages. Not
 * thread-safe: one context per thread or under the owner's lock.
 */
struct scone_aead;

SCONE_MUST_CHECK enum scone_err
scone_aead_new(enum scone_aead_alg alg, const uint8_t key[static SCONE_KEY_SIZE], struct scone_aead **out);
void scone_aead_free(struct scone_aead *a);

/*
 * Encrypt in (size bytes) to out (same size; may equal in) and produce tag.
 * With size 0 (authenticating aad alone) in and out may be NULL.
 */
SCONE_MUST_CHECK enum scone_err scone_aead_seal(struct scone_aead *a,
						const uint8_t nonce[static SCONE_NONCE_SIZE], const void *aad,
						size_t aad_size, const void *in, size_t size, void *out,
						uint8_t tag[static SCONE_TAG_SIZE]);

/*
 * Decrypt and verify. On a tag mismatch returns SCONE_ERR_AUTH and wipes out,
 * so no unverified plaintext is released.
 */
SCONE_MUST_CHECK enum scone_err scone_aead_open(struct scone_aead *a,
						const uint8_t nonce[static SCONE_NONCE_SIZE], const void *aad,
						size_t aad_size, const void *in, size_t size, void *out,
						const uint8_t tag[static SCONE_TAG_SIZE]);

/*
 * One message under a key that is not kept in a context (it stays where the
 * caller keeps it, e.g. secure memory): a one-direction context is set up,
 * used and freed (OpenSSL wipes its key schedule). Same contracts as
 * scone_aead_seal / scone_aead_open; about a microsecond more per message.
 */
SCONE_MUST_CHECK enum scone_err
scone_aead_seal_once(enum scone_aead_alg alg, const uint8_t key[static SCONE_KEY_SIZE],
		     const uint8_t nonce[static SCONE_NONCE_SIZE], const void *aad, size_t aad_size,
		     const void *in, size_t size, void *out, uint8_t tag[static SCONE_TAG_SIZE]);
SCONE_MUST_CHECK enum scone_err
scone_aead_open_once(enum scone_aead_alg alg, const uint8_t key[static SCONE_KEY_SIZE],
		     const uint8_t nonce[static SCONE_NONCE_SIZE], const void *aad, size_t aad_size,
		     const void *in, size_t size, void *out, const uint8_t tag[static SCONE_TAG_SIZE]);

#endif
