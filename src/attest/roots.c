/*
 * roots.c - parse the embedded vendor certificates once and check each
 * against its pinned SHA-256 fingerprint (see roots.h).
 */
#include "attest/roots.h"

#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/hex.h"

struct pin {
	const char *pem;
	const char *sha256; /* of the DER */
	X509 **slot;
};

static struct attest_trust pinned;
static pthread_once_t pinned_once = PTHREAD_ONCE_INIT;
static enum scone_err pinned_err;
static char pinned_detail[200];

const char *amd_product_name(enum amd_product p)
{
	static const char *const names[AMD_PRODUCTS] = {"Milan", "Genoa", "Turin"};

	return (unsigned)p < AMD_PRODUCTS ? names[p] : "unknown";
}

static enum scone_err load_pin(const struct pin *p)
{
	BIO *bio = BIO_new_mem_buf(p->pem, (int)strlen(p->pem));
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	int n = x ? i2d_X509(x, &der) : -1;
	uint8_t h[32];
	char hex[65];

	BIO_free(bio);
	if (n <= 0) {
		X509_free(x);
		return scone_err_set(SCONE_ERR_CORRUPT, "embedded certificate %.16s... does not parse",
				     p->sha256);
	}
	scone_sha256(der, (size_t)n, h);
	OPENSSL_free(der);
	scone_hex_encode(hex, sizeof(hex), h, sizeof(h));
	if (strcmp(hex, p->sha256) != 0) {
		X509_free(x);
		return scone_err_set(SCONE_ERR_CORRUPT, "embedded certificate %s does not match its pin %s",
				     hex, p->sha256);
	}
	*p->slot = x;
	return SCONE_ERR_OK;
}

static void load_pinned(void)
{
	const struct pin pins[] = {
	    {attest_pem_intel_root, "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3",
	     &pinned.intel_root},
	    {attest_pem_ark_milan, "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
	     &pinned.ark[AMD_MILAN]},
	    {attest_pem_ask_milan, "67d303bd3905fd38db8b20e0793699870e7fa612eaad5dec358293fd8c0bac1b",
	     &pinned.ask[AMD_MILAN]},
	    {attest_pem_asvk_milan, "c5e081f59b7efab1fe2f8b505e159704e72f29cab7ef7cf628a05a42439082f5",
	     &pinned.asvk[AMD_MILAN]},
	    {attest_pem_ark_genoa, "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
	     &pinned.ark[AMD_GENOA]},
	    {attest_pem_ask_genoa, "5464738c1546aed5f2cecf1dc98c5c960a92e8913238a61711bc90ec6e828521",
	     &pinned.ask[AMD_GENOA]},
	    {attest_pem_asvk_genoa, "197e610743a917d6b9bb982a5a9226ccc0a15b611be0619e626aca9151457372",
	     &pinned.asvk[AMD_GENOA]},
	    {attest_pem_ark_turin, "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
	     &pinned.ark[AMD_TURIN]},
	    {attest_pem_ask_turin, "5b77ef5fe7a7a004fd9032668fba9d0fda22f88c4442069a479636a6ae3b3185",
	     &pinned.ask[AMD_TURIN]},
	    {attest_pem_asvk_turin, "104e10a8bd060a3c20a434261a57d0588fd65a88915b4f65b08bdecaf8df1a3c",
	     &pinned.asvk[AMD_TURIN]},
	};

	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		pinned_err = load_pin(&pins[i]);
		if (pinned_err) {
			snprintf(pinned_detail, sizeof(pinned_detail), "%s", scone_err_detail());
			return;
		}
	}
}

enum scone_err attest_trust_pinned(const struct attest_trust **out)
{
	pthread_once(&pinned_once, load_pinned);
	if (pinned_err)
		return scone_err_set(pinned_err, "%s", pinned_detail);
	*out = &pinned;
	return SCONE_ERR_OK;
}
