/*
 * intel_tcb.h - Intel's signed collateral documents and what they decide:
 * TCB info (SGX and TDX, versions 2 and 3) and enclave identities (QE,
 * TD_QE), parsed from PCS JSON; the TCB level of a platform, the TDX
 * module identity and the QE identity checks, following Intel's Quote
 * Verification Library (TcbLevelCheck, TdxModuleCheck, TDRelaunchCheck,
 * EnclaveReportVerifier). Private to src/attest.
 *
 * Signatures are not checked here: collateral.c checks them over the raw
 * bytes before a document is parsed and used.
 */
#ifndef SCONE_ATTEST_INTEL_TCB_H
#define SCONE_ATTEST_INTEL_TCB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "attest/intel_pck.h"
#include "attest/intel_quote.h"

#define TCB_MAX_LEVELS 64
#define TCB_MAX_MODULES 8
#define TCB_ADV_SIZE 400 /* comma-separated advisory ids of one level */

struct tcb_level {
	uint8_t sgx[16]; /* SGX TCB component SVNs */
	uint16_t pcesvn;
	uint8_t tdx[16]; /* TDX TCB component SVNs (TDX TCB info only) */
	uint16_t isvsvn; /* QE identity and TDX module levels */
	int64_t date;	 /* tcbDate */
	enum scone_tcb_status status;
	char advisories[TCB_ADV_SIZE];
};

struct tdx_module {
	char id[16]; /* "TDX_01" */
	uint8_t mrsigner[48];
	uint8_t attributes[8], attributes_mask[8];
	struct tcb_level levels[TCB_MAX_LEVELS];
	size_t n_levels;
};

struct tcb_info {
	bool tdx; /* id "TDX" (else "SGX") */
	int version;
	int64_t issue_date, next_update, eval_number;
	uint8_t fmspc[6], pceid[2];
	bool has_module; /* tdxModule */
	struct tdx_module module;
	struct tdx_module modules[TCB_MAX_MODULES]; /* tdxModuleIdentities */
	size_t n_modules;
	struct tcb_level levels[TCB_MAX_LEVELS];
	size_t n_levels;
};

struct qe_identity {
	bool td; /* "TD_QE" (else "QE") */
	int version;
	int64_t issue_date, next_update, eval_number;
	uint8_t miscselect[4], miscselect_mask[4], attributes[16], attributes_mask[16], mrsigner[32];
	uint16_t isvprodid;
	struct tcb_level levels[TCB_MAX_LEVELS];
	size_t n_levels;
};

/* Parse the exact text of a tcbInfo value (untrusted; MALFORMED/INVALID naming the field). */
SCONE_MUST_CHECK enum scone_err intel_tcbinfo_parse(const char *text, size_t size, struct tcb_info *out);
/* Parse the exact text of an enclaveIdentity value. */
SCONE_MUST_CHECK enum scone_err intel_qeid_parse(const char *text, size_t size, struct qe_identity *out);

/*
 * Check the QE report against its identity (MISCSELECT and ATTRIBUTES
 * under their masks, MRSIGNER, ISVPRODID: UNTRUSTED naming the field) and
 * give the QE's TCB level by its ISVSVN (NULL when none applies).
 */
SCONE_MUST_CHECK enum scone_err intel_qeid_check(const struct qe_identity *id,
						 const uint8_t qe_report[SGX_REPORT_SIZE],
						 const struct tcb_level **level);

/* The outcome of TCB level selection. */
struct tcb_result {
	enum scone_tcb_status status; /* final, converged */
	enum scone_tcb_status sgx_status, module_status, qe_status;
	int64_t tcb_date;
	char advisories[SCONE_CLAIM_VALUE_MAX]; /* union, comma-separated */
	char module_id[16];			/* TDX: the module identity used ("" for tdxModule) */
};

/*
 * TDX module identity (TDX quotes): MRSIGNERSEAM and SEAMATTRIBUTES of the
 * TD report against tdxModule or, for TEE_TCB_SVN[1] > 0, the
 * tdxModuleIdentities entry "TDX_%02X"; UNTRUSTED on a mismatch.
 */
SCONE_MUST_CHECK enum scone_err intel_tdx_module_check(const struct tcb_info *ti,
						       const struct intel_quote *q);

/*
 * Select the TCB level of the platform (PCK TCB, and for TDX the TD
 * report's TEE_TCB_SVN) and converge it with the TDX module's and the
 * QE's levels into *out. UNTRUSTED ("TCB not supported") when no level
 * applies: the platform is older than every level, or the TCB info is
 * older than the platform.
 */
SCONE_MUST_CHECK enum scone_err intel_tcb_evaluate(const struct tcb_info *ti, const struct intel_pck *pck,
						   const struct intel_quote *q,
						   const struct tcb_level *qe_level, struct tcb_result *out);

#endif
