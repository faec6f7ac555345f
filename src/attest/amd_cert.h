/*
 * amd_cert.h - AMD's VCEK and VLEK certificates: their extensions
 * (1.3.6.1.4.1.3704.1.*: product name, TCB security patch levels, hardware
 * id, CSP id; AMD specification 57230), the product line of a report, and
 * the TCB_VERSION layouts (Milan/Genoa vs Turin). Private to src/attest.
 */
#ifndef SCONE_ATTEST_AMD_CERT_H
#define SCONE_ATTEST_AMD_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "attest/roots.h"
#include "attest/snp_report.h"

enum amd_spl { SPL_BL, SPL_TEE, SPL_SNP, SPL_UCODE, SPL_FMC, SPL_COUNT };

struct amd_cert_ext {
	char product[32]; /* productName, "" if absent ("Milan-B0", VLEK "Milan") */
	bool has_spl[SPL_COUNT];
	uint8_t spl[SPL_COUNT];
	uint8_t hwid[64]; /* VCEK: CHIP_ID (Turin: its first 8 bytes) */
	size_t hwid_size; /* 0 if absent */
};

/* Read the AMD extensions of a VCEK or VLEK (untrusted DER; MALFORMED naming the extension). */
SCONE_MUST_CHECK enum scone_err amd_cert_ext_parse(X509 *c, struct amd_cert_ext *out);

/* The SPLs of a TCB_VERSION for product p (Turin moved them and added FMC). */
void amd_tcb_split(enum amd_product p, uint64_t tcb, uint8_t spl[SPL_COUNT]);

/*
 * The product line of a report: from its CPUID family/model (version 3
 * and later), else from the certificate's productName (version 2 reports
 * carry no CPUID). UNSUPPORTED when neither says.
 */
SCONE_MUST_CHECK enum scone_err amd_product_of(const struct snp_report *r, const struct amd_cert_ext *ext,
					       enum amd_product *out);

#endif
