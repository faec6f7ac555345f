/*
 * fuzz_attest_common.h - what the hardware evidence fuzz targets share:
 * the verification options (a fixed time, no collateral, so every input
 * runs the parser, the certificate chain and the signatures) and the
 * promises a verifier keeps whatever the input: on failure the claims are
 * all zero and the error names something; on success they are of the
 * verifier's type.
 */
#ifndef SCONE_FUZZ_ATTEST_COMMON_H
#define SCONE_FUZZ_ATTEST_COMMON_H

#include <string.h>

#include "attest/attest.h"
#include "fuzz_common.h"
#include "lib/err.h"

static inline bool fuzz_claims_zero(const struct scone_claims *c)
{
	static const struct scone_claims zero;
	return memcmp(c, &zero, sizeof(zero)) == 0;
}

/* Run the table's verifier of type name over data, with and without zero padding allowed. */
static inline void fuzz_verify(const char *name, const uint8_t *data, size_t size, int64_t at)
{
	const struct scone_evidence_ops *ops = scone_evidence_find(name);
	static struct scone_claims claims; /* large: not on the stack */

	CHECK(ops != NULL);
	for (int padded = 0; padded < 2; padded++) {
		struct scone_verify_opts o = {.at = at, .allow_padding = padded};
		enum scone_err err = ops->verify(data, size, &o, &claims);
		if (err) {
			CHECK(fuzz_claims_zero(&claims));
			CHECK(scone_err_detail()[0] != '\0');
		} else {
			CHECK(claims.type == ops->type);
		}
	}
	scone_err_clear();
}

/* A view [p, p + n) lies inside [data, data + size). */
#define CHECK_INSIDE(p, n, data, size) CHECK((p) >= (data) && (size_t)((p) - (data)) + (n) <= (size))

#endif
