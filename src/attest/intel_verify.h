/*
 * intel_verify.h - the verification every Intel DCAP quote goes through,
 * SGX and TDX alike (Intel QVL's QuoteVerifier order, docs/attestation.md):
 * the PCK chain to the pinned Intel SGX Root CA, the QE report signed by
 * the PCK key and binding the attestation key, the quote signed by the
 * attestation key, revocation (Root CA and PCK CRLs), TCB info (FMSPC,
 * PCE-ID, TDX module), QE identity, and the TCB level. Private to
 * src/attest; attest_sgx.c and attest_tdx.c turn the result into claims.
 */
#ifndef SCONE_ATTEST_INTEL_VERIFY_H
#define SCONE_ATTEST_INTEL_VERIFY_H

#include "attest/attest.h"
#include "attest/intel_pck.h"
#include "attest/intel_quote.h"
#include "attest/intel_tcb.h"
#include "attest/roots.h"

struct intel_verified {
	struct intel_quote q; /* views into the evidence */
	struct intel_pck pck;
	struct tcb_result tcb;
	int64_t tcb_eval_number;
};

/*
 * Verify quote bytes of TEE type tee (INTEL_TEE_SGX / INTEL_TEE_TDX) to
 * trust's Intel root at o->at (0 = now) with o's collateral. Any failure
 * is an error naming the check (MALFORMED, UNSUPPORTED, AUTH, UNTRUSTED,
 * EXPIRED, NOT_FOUND for missing collateral).
 */
SCONE_MUST_CHECK enum scone_err intel_verify(const uint8_t *quote, size_t size, uint32_t tee,
					     const struct scone_verify_opts *o,
					     const struct attest_trust *trust, struct intel_verified *out);

/*
 * The claims every Intel quote gives (platform_id = FMSPC, TCB status and
 * advisories, and the extras pceid, pcesvn, tcb_date, tcb_eval, qe_status,
 * smt, quote_version) into c.
 */
SCONE_MUST_CHECK enum scone_err intel_claims_common(const struct intel_verified *v, struct scone_claims *c);

/* Add an extra claim as decimal. */
SCONE_MUST_CHECK enum scone_err attest_claim_u64(struct scone_claims *c, const char *name, uint64_t v);

/* The verification time of o: o->at, or now. */
int64_t attest_time_of(const struct scone_verify_opts *o);

#endif
