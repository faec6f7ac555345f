/*
 * fuzz_collateral.c - libFuzzer target for Intel's collateral documents
 * (src/attest: intel_tcb.c, intel_tcbeval.c, collateral.c's signed body
 * reader). Collateral comes from the operator's directory, fetched from
 * Intel; its parser still refuses anything malformed without reading out
 * of bounds.
 *
 * The input is tried as a PCS body ({"tcbInfo"|"enclaveIdentity": ...,
 * "signature": ...}; the value's exact text must be a substring of the
 * input), as a tcbInfo and as an enclaveIdentity value. A TCB info that
 * parses is evaluated for a few platforms (SGX and TDX) and must give a
 * known status; an identity that parses checks a QE report. Seeds:
 * fuzz/corpus/collateral.
 */
#include <stdlib.h>
#include <string.h>

#include "attest/collateral.h"
#include "attest/intel_tcb.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void evaluate(const struct tcb_info *ti)
{
	static const uint8_t svns[] = {0, 2, 5, 255};
	uint8_t body[TD15_REPORT_SIZE] = {0};
	struct intel_quote q = {.version = 5, .body = body};
	struct tcb_level qe = {.status = SCONE_TCB_OUT_OF_DATE};
	struct tcb_result r;

	q.tee_type = ti->tdx ? INTEL_TEE_TDX : INTEL_TEE_SGX;
	q.body_type = ti->tdx ? INTEL_BODY_TD15 : INTEL_BODY_SGX;
	for (size_t i = 0; i < sizeof(svns); i++) {
		struct intel_pck pck = {.pcesvn = svns[i]};
		memset(pck.comp_svn, svns[i], 16);
		memset(body, svns[i], 16);			   /* TEE_TCB_SVN */
		memset(body + TD_R_TEE_TCB_SVN2, svns[i] + 1, 16); /* TEE_TCB_SVN2 */
		if (intel_tcb_evaluate(ti, &pck, &q, i & 1 ? &qe : NULL, &r) == SCONE_ERR_OK) {
			CHECK(r.status > SCONE_TCB_UNKNOWN &&
			      r.status <= SCONE_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED);
			CHECK(strlen(r.advisories) < sizeof(r.advisories));
		}
		(void)intel_tdx_module_check(ti, &q);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"tcbInfo", "enclaveIdentity"};
	struct tcb_info *ti = malloc(sizeof(*ti));
	struct qe_identity *id = malloc(sizeof(*id));
	const struct tcb_level *level;
	uint8_t report[SGX_REPORT_SIZE] = {0}, sig[64];
	char *text;
	size_t text_size;

	CHECK(ti && id);
	for (size_t k = 0; k < 2; k++) {
		text = NULL;
		if (collateral_signed_body(data, size, keys[k], &text, &text_size, sig) == SCONE_ERR_OK) {
			CHECK(text_size <= size && memmem(data, size, text, text_size) != NULL);
			free(text);
		}
	}
	if (intel_tcbinfo_parse((const char *)data, size, ti) == SCONE_ERR_OK) {
		CHECK(ti->n_levels >= 1 && ti->n_levels <= TCB_MAX_LEVELS &&
		      ti->n_modules <= TCB_MAX_MODULES);
		evaluate(ti);
	}
	if (intel_qeid_parse((const char *)data, size, id) == SCONE_ERR_OK) {
		CHECK(id->n_levels >= 1 && id->n_levels <= TCB_MAX_LEVELS);
		if (intel_qeid_check(id, report, &level) == SCONE_ERR_OK)
			CHECK(level >= id->levels && level < id->levels + id->n_levels);
	}
	free(ti);
	free(id);
	scone_err_clear();
	return 0;
}
