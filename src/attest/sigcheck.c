/* sigcheck.c - ECDSA checks over raw vendor signature formats (see sigcheck.h). */
#include "attest/sigcheck.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <string.h>

enum scone_err sig_p256_key(const uint8_t xy[64], const char *what, EVP_PKEY **out)
{
	uint8_t point[65];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *key = NULL;
	int ok;

	point[0] = 0x04;
	memcpy(point + 1, xy, 64);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	ok = ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
	     EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		EVP_PKEY_free(key);
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "%s: not a P-256 public key (point not on the curve)", what);
	}
	/* Explicitly: the point must be on the curve (the quick check skips the order multiplication). */
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	ok = ctx && EVP_PKEY_public_check_quick(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		EVP_PKEY_free(key);
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "%s: not a P-256 public key (point not on the curve)", what);
	}
	*out = key;
	return SCONE_ERR_OK;
}

static BIGNUM *bn_of(const uint8_t *p, size_t n, bool little_endian)
{
	return little_endian ? BN_lebin2bn(p, (int)n, NULL) : BN_bin2bn(p, (int)n, NULL);
}

/* DER of the signature (r, s) into der; its size, 0 on failure. */
static size_t sig_der(const uint8_t *r, const uint8_t *s, size_t n, bool little_endian, uint8_t *der,
		      size_t der_max)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *br = bn_of(r, n, little_endian), *bs = bn_of(s, n, little_endian);
	unsigned char *p = der;
	int len = 0;

	if (sig && br && bs && ECDSA_SIG_set0(sig, br, bs) == 1) {
		br = bs = NULL; /* owned by sig now */
		if (i2d_ECDSA_SIG(sig, NULL) <= (int)der_max)
			len = i2d_ECDSA_SIG(sig, &p);
	}
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	return len > 0 ? (size_t)len : 0;
}

enum scone_err sig_verify_ecdsa(EVP_PKEY *key, const char *md, const uint8_t *msg, size_t msg_size,
				const uint8_t *r, const uint8_t *s, size_t n, bool little_endian,
				const char *what)
{
	uint8_t der[2 * 80 + 16];
	size_t der_size = sig_der(r, s, n, little_endian, der, sizeof(der));
	EVP_MD_CTX *ctx;
	int rc;

	if (!der_size)
		return scone_err_set(SCONE_ERR_CRYPTO, "%s: cannot encode the signature", what);
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return scone_err_set(SCONE_ERR_NOMEM, "%s: out of memory", what);
	rc = EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, key, NULL) == 1
		 ? EVP_DigestVerify(ctx, der, der_size, msg, msg_size)
		 : -1;
	EVP_MD_CTX_free(ctx);
	if (rc == 1)
		return SCONE_ERR_OK;
	return scone_err_set(SCONE_ERR_AUTH, "%s: the signature does not verify", what);
}

enum scone_err sig_sha256_2(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size, uint8_t out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(ctx, a, a_size) == 1 && EVP_DigestUpdate(ctx, b, b_size) == 1 &&
		 EVP_DigestFinal_ex(ctx, out, NULL) == 1;

	EVP_MD_CTX_free(ctx);
	return ok ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_CRYPTO, "SHA-256 failed");
}
