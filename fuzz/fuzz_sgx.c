/*
 * fuzz_sgx.c - libFuzzer target for SGX DCAP quotes (src/attest:
 * intel_quote.c, x509chain.c, intel_pck.c, intel_verify.c, attest_sgx.c).
 *
 * The input is a quote. A quote that parses must hold the parser's
 * promises: every view inside the input, the signed range before the
 * signature data, the quote no longer than the input (and equal to it
 * unless zero padding was allowed). Then the sgx verifier runs over it
 * (see fuzz_attest_common.h). Seeds: fuzz/corpus/sgx (vector 01).
 */
#include "attest/intel_quote.h"
#include "fuzz_attest_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_quote(const uint8_t *data, size_t size)
{
	struct intel_quote q;

	for (int padded = 0; padded < 2; padded++) {
		if (intel_quote_parse(data, size, padded, &q) != SCONE_ERR_OK)
			continue;
		CHECK(q.size <= size && (padded || q.size == size));
		CHECK(q.signed_size == 48 + (q.version == 5 ? 6 : 0) + q.body_size);
		CHECK_INSIDE(q.body, q.body_size, data, size);
		CHECK_INSIDE(q.signature, 64, data, size);
		CHECK_INSIDE(q.attest_key, 64, data, size);
		CHECK_INSIDE(q.qe_report, 384, data, size);
		CHECK_INSIDE(q.qe_report_sig, 64, data, size);
		CHECK_INSIDE(q.qe_auth, q.qe_auth_size, data, size);
		CHECK_INSIDE(q.pck_chain, q.pck_chain_size, data, size);
		CHECK((size_t)(q.signature - data) == q.signed_size + 4);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_quote(data, size);
	fuzz_verify("sgx", data, size, 1751328000); /* 2025-07-01 */
	return 0;
}
