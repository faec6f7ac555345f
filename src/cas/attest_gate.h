/*
 * attest_gate.h - CAS's attestation decision: a session's mode admits
 * certain evidence types; the evidence is verified through the evidence
 * interface (src/attest/attest.h); the claims then must satisfy one of the
 * service's attestation variants and bind this connection's TLS key.
 * Refusals are SCONE_ERR_ATTESTATION with a detail naming the factor.
 */
#ifndef SCONE_CAS_ATTEST_GATE_H
#define SCONE_CAS_ATTEST_GATE_H

#include <stdint.h>

#include "attest/attest.h"
#include "cas/cas.h"
#include "policy/policy.h"

struct cas_attest_opts {
	int64_t at;				   /* verification time; 0 = now */
	int max_age_sec;			   /* how long evidence with a time is accepted; 0 = 60 */
	const char *collateral_dir;		   /* hardware types (loaded at each verification) */
	const struct scone_collateral *collateral; /* hardware types, loaded once (wins) */
};

/*
 * Does the request's evidence admit svc of session s over a connection
 * whose client key has SPKI hash spki? mode none admits anything (and
 * logs a warning). claims gets what was verified (zeroed for none).
 */
SCONE_MUST_CHECK enum scone_err cas_attest_gate(const struct cas_attest_opts *o,
						const struct scone_session *s,
						const struct scone_service *svc,
						const struct cas_config_request *cr, const uint8_t spki[32],
						struct scone_claims *claims);

/*
 * The policy matcher, on claims only: the report data binds spki (and,
 * for las, has a zero second half), and some variant of svc admits the
 * claims: for las the platform and the measurement; for sgx the mrenclave
 * and the signer (mrsigner, isvprodid, isvsvn range); for tdx the mrtd
 * and rtmr0-3; for snp the measurement and host_data. A variant is of one
 * kind; variants with platforms are for las evidence only.
 */
SCONE_MUST_CHECK enum scone_err cas_attest_match(const struct scone_service *svc,
						 const struct scone_claims *c, const uint8_t spki[32]);
/*
 * The platform's state against session s's tolerate and ignore_advisories
 * (hardware types; las and none pass): debug (debug-mode), SNP SMT enabled
 * and allowed (hyperthreading), the TCB status (Revoked and Unknown never),
 * and every advisory listed or, for Intel's SMT advisories, hyperthreading.
 */
SCONE_MUST_CHECK enum scone_err cas_attest_tolerated(const struct scone_session *s,
						     const struct scone_claims *c);

#endif
