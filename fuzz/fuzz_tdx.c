/*
 * fuzz_tdx.c - libFuzzer target for TDX quotes v4 and v5 (src/attest:
 * intel_quote.c with the v4 and v5 layouts, x509chain.c, intel_pck.c,
 * intel_verify.c, attest_tdx.c). The same promises as fuzz_sgx.c, for the
 * tdx verifier. Seeds: fuzz/corpus/tdx (vectors 03 and 07).
 */
#include "attest/intel_quote.h"
#include "fuzz_attest_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct intel_quote q;

	for (int padded = 0; padded < 2; padded++) {
		if (intel_quote_parse(data, size, padded, &q) != SCONE_ERR_OK)
			continue;
		CHECK(q.size <= size && (padded || q.size == size));
		CHECK(q.body_type != INTEL_BODY_TD10 || q.body_size == 584);
		CHECK(q.body_type != INTEL_BODY_TD15 || (q.body_size == 648 && q.version == 5));
		CHECK((q.body_type == INTEL_BODY_SGX) == (q.tee_type == INTEL_TEE_SGX));
		CHECK_INSIDE(q.body, q.body_size, data, size);
		CHECK_INSIDE(q.qe_report, 384, data, size);
		CHECK_INSIDE(q.qe_auth, q.qe_auth_size, data, size);
		CHECK_INSIDE(q.pck_chain, q.pck_chain_size, data, size);
	}
	fuzz_verify("tdx", data, size, 1770080400); /* 2026-02-03 */
	fuzz_verify("tdx", data, size, 1751328000); /* 2025-07-01 */
	return 0;
}
