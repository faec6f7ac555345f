/*
 * attest_types.h - the rows of the evidence table, one per file; private
 * to src/attest (attest.c holds the table).
 */
#ifndef SCONE_ATTEST_TYPES_H
#define SCONE_ATTEST_TYPES_H

#include "attest/attest.h"
#include "attest/roots.h"

extern const struct scone_evidence_ops scone_evidence_none;
extern const struct scone_evidence_ops scone_evidence_las;
extern const struct scone_evidence_ops scone_evidence_sgx;
extern const struct scone_evidence_ops scone_evidence_tdx;
extern const struct scone_evidence_ops scone_evidence_snp;


/*
 * The hardware verifiers with the trust anchors given (tests: a look-alike
 * root must fail); the table's rows use the pinned anchors.
 */
SCONE_MUST_CHECK enum scone_err attest_sgx_verify_with(const uint8_t *evidence, size_t size,
						       const struct scone_verify_opts *o, const struct attest_trust *trust,
						       struct scone_claims *out);
SCONE_MUST_CHECK enum scone_err attest_tdx_verify_with(const uint8_t *evidence, size_t size,
						       const struct scone_verify_opts *o, const struct attest_trust *trust,
						       struct scone_claims *out);
SCONE_MUST_CHECK enum scone_err attest_snp_verify_with(const uint8_t *evidence, size_t size,
						       const struct scone_verify_opts *o, const struct attest_trust *trust,
						       struct scone_claims *out);

#endif
