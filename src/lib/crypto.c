/* crypto.c - OpenSSL 3 wrappers: hashing, KDF, AEAD, randomness, wiping. */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hex.h"

struct scone_aead {
	enum scone_aead_alg alg;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

static const EVP_CIPHER *aead_cipher(enum scone_aead_alg alg)
{
	switch (alg) {
	case SCONE_AEAD_AES256_GCM:
		return EVP_aes_256_gcm();
	case SCONE_AEAD_AES256_OCB:
		return EVP_aes_256_ocb();
	}
	return NULL;
}

const char *scone_aead_name(enum scone_aead_alg alg)
{
	switch (alg) {
	case SCONE_AEAD_AES256_GCM:
		return "aes-256-gcm";
	case SCONE_AEAD_AES256_OCB:
		return "aes-256-ocb";
	}
	return NULL;
}

enum scone_err scone_random(void *out, size_t size)
{
	if (size > INT32_MAX || RAND_bytes(out, (int)size) != 1)
		return scone_err_set(SCONE_ERR_CRYPTO, "random number generator failed");
	return SCONE_ERR_OK;
}

static EVP_MD *g_sha256;
static pthread_once_t g_sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

const EVP_MD *scone_sha256_md(void)
{
	(void)pthread_once(&g_sha256_once, sha256_fetch);
	return g_sha256 ? g_sha256 : EVP_sha256(); /* (a failed fetch: the slower lookup still works) */
}

void scone_sha256(const void *in, size_t in_size, uint8_t out[static SCONE_SHA256_SIZE])
{
	unsigned int n = 0;

	/* EVP_Digest cannot fail for SHA-256 short of memory exhaustion. */
	if (EVP_Digest(in, in_size, out, &n, scone_sha256_md(), NULL) != 1)
		memset(out, 0, SCONE_SHA256_SIZE);
}

enum scone_err scone_hmac_sha256(const uint8_t *key, size_t key_size, const void *in, size_t in_size,
				 uint8_t out[static SCONE_SHA256_SIZE])
{
	unsigned int n = 0;

	if (key_size > INT32_MAX || !HMAC(scone_sha256_md(), key, (int)key_size, in, in_size, out, &n))
		return scone_err_set(SCONE_ERR_CRYPTO, "HMAC-SHA256 failed");
	return SCONE_ERR_OK;
}

enum scone_err scone_hkdf_sha256(uint8_t *out, size_t out_size, const uint8_t *ikm, size_t ikm_size,
				 const uint8_t *salt, size_t salt_size, const char *info)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5], *p = params;
	enum scone_err err = SCONE_ERR_OK;

	EVP_KDF_free(kdf);
	if (!ctx)
		return scone_err_set(SCONE_ERR_CRYPTO, "HKDF unavailable");
	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_size);
	if (salt_size)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_size);
	if (info)
		*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
	*p = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, out_size, params) != 1)
		err = scone_err_set(SCONE_ERR_CRYPTO, "HKDF derivation failed");
	EVP_KDF_CTX_free(ctx);
	return err;
}

bool scone_ct_equal(const void *a, const void *b, size_t size)
{
	return CRYPTO_memcmp(a, b, size) == 0;
}

void scone_wipe(void *p, size_t size)
{
	if (p && size)
		OPENSSL_cleanse(p, size);
}

static size_t page_round(size_t size)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	return (size + pg - 1) / pg * pg;
}

void *scone_secure_alloc(size_t size)
{
	size_t len = page_round(size ? size : 1);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	/* Best effort: mlock can fail under RLIMIT_MEMLOCK; the key still works. */
	(void)mlock(p, len);
	(void)madvise(p, len, MADV_DONTDUMP);
	return p;
}

void scone_secure_free(void *p, size_t size)
{
	size_t len;

	if (!p)
		return;
	len = page_round(size ? size : 1);
	OPENSSL_cleanse(p, len);
	munlock(p, len);
	munmap(p, len);
}

void scone_fingerprint(const void *data, size_t size, char out[static 17])
{
	uint8_t h[SCONE_SHA256_SIZE];

	scone_sha256(data, size, h);
	scone_hex_encode(out, 17, h, 8);
}

enum scone_err scone_aead_new(enum scone_aead_alg alg, const uint8_t key[static SCONE_KEY_SIZE],
			      struct scone_aead **out)
{
	const EVP_CIPHER *c = aead_cipher(alg);
	struct scone_aead *a;

	if (!c)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "unknown AEAD algorithm %d", (int)alg);
	a = calloc(1, sizeof(*a));
	if (!a)
		return SCONE_ERR_NOMEM;
	a->alg = alg;
	a->enc = EVP_CIPHER_CTX_new();
	a->dec = EVP_CIPHER_CTX_new();
	if (!a->enc || !a->dec || EVP_EncryptInit_ex(a->enc, c, NULL, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex(a->dec, c, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_SET_IVLEN, SCONE_NONCE_SIZE, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_IVLEN, SCONE_NONCE_SIZE, NULL) != 1 ||
	    (alg == SCONE_AEAD_AES256_OCB &&
	     (EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_SET_TAG, SCONE_TAG_SIZE, NULL) != 1 ||
	      EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, SCONE_TAG_SIZE, NULL) != 1)) ||
	    EVP_EncryptInit_ex(a->enc, NULL, NULL, key, NULL) != 1 ||
	    EVP_DecryptInit_ex(a->dec, NULL, NULL, key, NULL) != 1) {
		scone_aead_free(a);
		return scone_err_set(SCONE_ERR_CRYPTO, "cannot set up %s", scone_aead_name(alg));
	}
	*out = a;
	return SCONE_ERR_OK;
}

void scone_aead_free(struct scone_aead *a)
{
	if (!a)
		return;
	EVP_CIPHER_CTX_free(a->enc); /* OpenSSL cleanses the key schedule */
	EVP_CIPHER_CTX_free(a->dec);
	free(a);
}

enum scone_err scone_aead_seal(struct scone_aead *a, const uint8_t nonce[static SCONE_NONCE_SIZE],
			       const void *aad, size_t aad_size, const void *in, size_t size, void *out,
			       uint8_t tag[static SCONE_TAG_SIZE])
{
	uint8_t spare[16]; /* Final's target when out is NULL (size 0): no NULL + 0 */
	int n, done = 0;

	if (size > INT32_MAX || aad_size > INT32_MAX)
		return SCONE_ERR_TOO_LARGE;
	/* OCB may hold back a partial block until Final: track bytes written. */
	if (EVP_EncryptInit_ex(a->enc, NULL, NULL, NULL, nonce) != 1 ||
	    (aad_size && EVP_EncryptUpdate(a->enc, NULL, &n, aad, (int)aad_size) != 1) ||
	    (size && EVP_EncryptUpdate(a->enc, out, &done, in, (int)size) != 1) ||
	    EVP_EncryptFinal_ex(a->enc, out ? (uint8_t *)out + done : spare, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_AEAD_GET_TAG, SCONE_TAG_SIZE, tag) != 1)
		return scone_err_set(SCONE_ERR_CRYPTO, "%s encryption failed", scone_aead_name(a->alg));
	return SCONE_ERR_OK;
}

enum scone_err scone_aead_open(struct scone_aead *a, const uint8_t nonce[static SCONE_NONCE_SIZE],
			       const void *aad, size_t aad_size, const void *in, size_t size, void *out,
			       const uint8_t tag[static SCONE_TAG_SIZE])
{
	uint8_t tmp[SCONE_TAG_SIZE], spare[16];
	int n, done = 0;

	if (size > INT32_MAX || aad_size > INT32_MAX)
		return SCONE_ERR_TOO_LARGE;
	memcpy(tmp, tag, sizeof(tmp));
	if (EVP_DecryptInit_ex(a->dec, NULL, NULL, NULL, nonce) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_AEAD_SET_TAG, SCONE_TAG_SIZE, tmp) != 1 ||
	    (aad_size && EVP_DecryptUpdate(a->dec, NULL, &n, aad, (int)aad_size) != 1) ||
	    (size && EVP_DecryptUpdate(a->dec, out, &done, in, (int)size) != 1))
		goto fail;
	if (EVP_DecryptFinal_ex(a->dec, out ? (uint8_t *)out + done : spare, &n) != 1)
		goto fail;
	return SCONE_ERR_OK;
fail:
	if (size)
		OPENSSL_cleanse(out, size);
	return SCONE_ERR_AUTH;
}

/* A one-direction context for key (the other direction's context stays NULL). */
static enum scone_err aead_once(enum scone_aead_alg alg, const uint8_t *key, bool enc, struct scone_aead *a)
{
	const EVP_CIPHER *c = aead_cipher(alg);
	EVP_CIPHER_CTX *ctx;

	if (!c)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "unknown AEAD algorithm %d", (int)alg);
	a->alg = alg;
	a->enc = a->dec = NULL;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx || EVP_CipherInit_ex(ctx, c, NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, SCONE_NONCE_SIZE, NULL) != 1 ||
	    (alg == SCONE_AEAD_AES256_OCB &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, SCONE_TAG_SIZE, NULL) != 1) ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, NULL, enc) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return scone_err_set(SCONE_ERR_CRYPTO, "cannot set up %s", scone_aead_name(alg));
	}
	if (enc)
		a->enc = ctx;
	else
		a->dec = ctx;
	return SCONE_ERR_OK;
}

enum scone_err scone_aead_seal_once(enum scone_aead_alg alg, const uint8_t key[static SCONE_KEY_SIZE],
				    const uint8_t nonce[static SCONE_NONCE_SIZE], const void *aad,
				    size_t aad_size, const void *in, size_t size, void *out,
				    uint8_t tag[static SCONE_TAG_SIZE])
{
	struct scone_aead a;
	enum scone_err err;

	SCONE_TRY(aead_once(alg, key, true, &a));
	err = scone_aead_seal(&a, nonce, aad, aad_size, in, size, out, tag);
	EVP_CIPHER_CTX_free(a.enc);
	return err;
}

enum scone_err scone_aead_open_once(enum scone_aead_alg alg, const uint8_t key[static SCONE_KEY_SIZE],
				    const uint8_t nonce[static SCONE_NONCE_SIZE], const void *aad,
				    size_t aad_size, const void *in, size_t size, void *out,
				    const uint8_t tag[static SCONE_TAG_SIZE])
{
	struct scone_aead a;
	enum scone_err err;

	SCONE_TRY(aead_once(alg, key, false, &a));
	err = scone_aead_open(&a, nonce, aad, aad_size, in, size, out, tag);
	EVP_CIPHER_CTX_free(a.dec);
	return err;
}
