/*
 * intel_pck.h - the SGX extension (OID 1.2.840.113741.1.13.1) of Intel PCK
 * certificates: the platform's TCB (16 component SVNs, PCESVN, CPUSVN),
 * PCE-ID, FMSPC, SGX type and, for Platform-CA certificates, the platform
 * instance and configuration. Private to src/attest.
 */
#ifndef SCONE_ATTEST_INTEL_PCK_H
#define SCONE_ATTEST_INTEL_PCK_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "lib/err.h"

enum pck_tristate { PCK_UNKNOWN = -1, PCK_NO = 0, PCK_YES = 1 };

struct intel_pck {
	uint8_t ppid[16];
	uint8_t comp_svn[16]; /* SGX TCB component SVNs 1..16 */
	uint16_t pcesvn;
	uint8_t cpusvn[16];
	uint8_t pceid[2];
	uint8_t fmspc[6];
	uint32_t sgx_type; /* 0 Standard, 1 Scalable, 2 ScalableWithIntegrity */
	bool has_platform_instance;
	uint8_t platform_instance[16];
	/* Configuration (Platform-CA certificates only) */
	enum pck_tristate dynamic_platform, cached_keys, smt_enabled;
};

/* Read the SGX extension of a PCK certificate (untrusted DER; MALFORMED naming the field). */
SCONE_MUST_CHECK enum scone_err intel_pck_parse(X509 *pck, struct intel_pck *out);

#endif
