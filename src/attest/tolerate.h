/*
 * tolerate.h - the decision on a TEE platform's state that a verified
 * piece of hardware evidence reports: its debug flag, SMT, the TCB status
 * and the advisories, against what the relying party tolerates (SCONE's
 * tolerate values and ignore_advisories; docs/attestation.md, "From claims
 * to a policy"). CAS decides a session's hardware attestation with it, and
 * `scone cas attest` a CAS's own evidence. Claims only: no policy types.
 */
#ifndef SCONE_ATTEST_TOLERATE_H
#define SCONE_ATTEST_TOLERATE_H

#include <stddef.h>

#include "attest/attest.h"

struct scone_tolerance {
	const char *const *tolerate; /* debug-mode, hyperthreading, outdated-tcb, software-hardening-needed,
					insecure-configuration (others change nothing) */
	size_t n_tolerate;
	const char *const *ignore; /* advisory ids, or "*" for all */
	size_t n_ignore;
	const char *who; /* named in refusals ("session s", "--tolerate") */
};

/*
 * OK when c's platform state is tolerated: debug needs debug-mode; SNP's
 * SMT enabled and allowed needs hyperthreading; the TCB status needs its
 * tolerations (Revoked and Unknown never); every advisory must be ignored,
 * Intel's SMT advisories (INTEL-SA-00161, -00233) by hyperthreading.
 * Evidence types without a platform state (none, las) pass. Else
 * ATTESTATION with the reason in the detail.
 */
SCONE_MUST_CHECK enum scone_err scone_claims_tolerated(const struct scone_claims *c,
						       const struct scone_tolerance *t);

#endif
