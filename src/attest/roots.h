/*
 * roots.h - the trust anchors: Intel's SGX Root CA (for SGX and TDX) and
 * AMD's ARK, ASK and ASVK for each SEV-SNP product line, embedded in the
 * build (roots_pem.c) and pinned by their SHA-256 fingerprints. Private to
 * src/attest.
 *
 * Verifiers take a struct attest_trust so that unit tests can hand in
 * other anchors (a look-alike root must fail); nothing outside src/attest
 * can: the evidence table always uses attest_trust_pinned().
 */
#ifndef SCONE_ATTEST_ROOTS_H
#define SCONE_ATTEST_ROOTS_H

#include <openssl/x509.h>

#include "lib/err.h"

enum amd_product {
	AMD_MILAN,
	AMD_GENOA,
	AMD_TURIN,
	AMD_PRODUCTS,
};

/* "Milan", "Genoa", "Turin" (as in AMD's KDS URLs and certificate names). */
const char *amd_product_name(enum amd_product p);

struct attest_trust {
	X509 *intel_root;
	X509 *ark[AMD_PRODUCTS];  /* self-signed roots */
	X509 *ask[AMD_PRODUCTS];  /* issue VCEKs */
	X509 *asvk[AMD_PRODUCTS]; /* issue VLEKs */
};

/*
 * The pinned anchors, parsed once per process and never freed (shared,
 * read-only). Fails only if the embedded data do not match their pins,
 * i.e. a broken build.
 */
SCONE_MUST_CHECK enum scone_err attest_trust_pinned(const struct attest_trust **out);

/* The embedded PEM texts (roots_pem.c). */
extern const char attest_pem_intel_root[];
extern const char attest_pem_ark_milan[], attest_pem_ask_milan[], attest_pem_asvk_milan[];
extern const char attest_pem_ark_genoa[], attest_pem_ask_genoa[], attest_pem_asvk_genoa[];
extern const char attest_pem_ark_turin[], attest_pem_ask_turin[], attest_pem_asvk_turin[];

#endif
