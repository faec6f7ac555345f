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
	int64_t at;                 /* verification time; 0 = now */
	int max_age_sec;            /* how long evidence with a time is accepted; 0 = 60 */
	const char *collateral_dir; /* hardware types */
};

/*
 * Does the request's evidence admit svc of session s over a connection
 * whose client key has SPKI hash spki? mode none admits anything (and
 * logs a warning). claims gets what was verified (zeroed for none).
 */
SCONE_MUST_CHECK enum scone_err cas_attest_gate(const struct cas_attest_opts *o, const struct scone_session *s,
						const struct scone_service *svc, const struct cas_config_request *cr,
						const uint8_t spki[32], struct scone_claims *claims);

/*
 * The policy matcher, on claims only: the report data binds spki (and,
 * for las, has a zero second half), and some variant of svc admits the
 * platform, the measurement and (for signer-bearing types) the signer.
 */
SCONE_MUST_CHECK enum scone_err cas_attest_match(const struct scone_service *svc, const struct scone_claims *c,
						 const uint8_t spki[32]);

#endif
