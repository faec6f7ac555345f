/*
 * attest_tdx.c - the "tdx" evidence type: an Intel TDX quote, version 4
 * (TD report of TDX 1.0) or 5 (body type 2, TDX 1.0; body type 3, TDX 1.5).
 *
 * Verify (CAS side): intel_verify.c checks the quote to the pinned Intel
 * SGX Root CA with the operator's collateral (TDX TCB info, TD_QE
 * identity, CRLs), including the TDX module identity and the TDX TCB
 * level from TEE_TCB_SVN. Claims: MRTD (measurement), MRSIGNERSEAM
 * (signer), FMSPC (platform_id), REPORTDATA, TDATTRIBUTES.DEBUG, TCB status
 * and advisories; RTMR0-3, MRSEAM, MRCONFIGID, MROWNER, MROWNERCONFIG and
 * the rest as extras (docs/attestation.md).
 *
 * Collect (runtime side, inside a TDX guest): one configfs-tsm report from
 * the tdx_guest provider (tsm.c).
 */
#include <string.h>

#include "attest/attest_types.h"
#include "attest/intel_verify.h"
#include "attest/tsm.h"

#define TD_ATTR_DEBUG 0x01

static const char *tsm_root(const struct scone_collect_opts *o)
{
	return o && o->tsm_root ? o->tsm_root : TSM_DEFAULT_ROOT;
}

static bool tdx_available(const struct scone_collect_opts *o)
{
	return tsm_available(tsm_root(o), "tdx_guest");
}

static enum scone_err tdx_collect(const struct scone_collect_opts *o,
				  const uint8_t report_data[SCONE_REPORT_DATA_SIZE], struct scone_wbuf *out)
{
	struct scone_wbuf blob;
	struct intel_quote q;
	enum scone_err err;

	scone_wbuf_init(&blob, TSM_BLOB_MAX, 0);
	err = tsm_report(tsm_root(o), "tdx_guest", report_data, &blob, NULL);
	if (!err)
		err = intel_quote_parse(blob.data, blob.size, true, &q);
	if (!err && (q.tee_type != INTEL_TEE_TDX || memcmp(q.body + TD_R_REPORTDATA, report_data, 64) != 0))
		err = scone_err_set(SCONE_ERR_IO, "configfs-tsm: the quote does not carry this report data");
	if (!err)
		err = scone_wbuf_put(out, blob.data, q.size);
	scone_wbuf_free(&blob);
	return err;
}

static enum scone_err add_rtmrs(struct scone_claims *c, const uint8_t *b)
{
	static const char *const names[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};

	for (int i = 0; i < 4; i++)
		SCONE_TRY(scone_claims_add_hex(c, names[i], b + TD_R_RTMR0 + 48 * i, 48));
	return SCONE_ERR_OK;
}

static enum scone_err tdx_claims(const struct intel_verified *v, struct scone_claims *c)
{
	const uint8_t *b = v->q.body;

	c->type = SCONE_EVIDENCE_TDX;
	memcpy(c->measurement, b + TD_R_MRTD, 48);
	c->measurement_size = 48;
	memcpy(c->signer, b + TD_R_MRSIGNERSEAM, 48);
	c->signer_size = 48;
	memcpy(c->report_data, b + TD_R_REPORTDATA, 64);
	c->debug = (b[TD_R_TDATTRIBUTES] & TD_ATTR_DEBUG) != 0;
	SCONE_TRY(add_rtmrs(c, b));
	SCONE_TRY(scone_claims_add_hex(c, "mrseam", b + TD_R_MRSEAM, 48));
	SCONE_TRY(scone_claims_add_hex(c, "mrconfigid", b + TD_R_MRCONFIGID, 48));
	SCONE_TRY(scone_claims_add_hex(c, "mrowner", b + TD_R_MROWNER, 48));
	SCONE_TRY(scone_claims_add_hex(c, "mrownerconfig", b + TD_R_MROWNERCONFIG, 48));
	SCONE_TRY(scone_claims_add_hex(c, "td_attributes", b + TD_R_TDATTRIBUTES, 8));
	SCONE_TRY(scone_claims_add_hex(c, "xfam", b + TD_R_XFAM, 8));
	SCONE_TRY(scone_claims_add_hex(c, "tee_tcb_svn", b + TD_R_TEE_TCB_SVN, 16));
	SCONE_TRY(attest_claim_u64(c, "body_type", v->q.body_type));
	if (v->q.body_type == INTEL_BODY_TD15) {
		SCONE_TRY(scone_claims_add_hex(c, "tee_tcb_svn2", b + TD_R_TEE_TCB_SVN2, 16));
		SCONE_TRY(scone_claims_add_hex(c, "mr_servicetd", b + TD_R_MRSERVICETD, 48));
	}
	SCONE_TRY(scone_claims_add(c, "tdx_module", v->tcb.module_id[0] ? v->tcb.module_id : "tdxModule"));
	SCONE_TRY(scone_claims_add(c, "tdx_module_status", scone_tcb_status_name(v->tcb.module_status)));
	return intel_claims_common(v, c);
}

enum scone_err attest_tdx_verify_with(const uint8_t *evidence, size_t size, const struct scone_verify_opts *o,
				      const struct attest_trust *trust, struct scone_claims *out)
{
	struct intel_verified v;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	err = intel_verify(evidence, size, INTEL_TEE_TDX, o, trust, &v);
	if (!err)
		err = tdx_claims(&v, out);
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

static enum scone_err tdx_verify(const uint8_t *evidence, size_t size, const struct scone_verify_opts *o,
				 struct scone_claims *out)
{
	const struct attest_trust *t;

	memset(out, 0, sizeof(*out));
	SCONE_TRY(attest_trust_pinned(&t));
	return attest_tdx_verify_with(evidence, size, o, t, out);
}

const struct scone_evidence_ops scone_evidence_tdx = {
    .name = "tdx",
    .type = SCONE_EVIDENCE_TDX,
    .available = tdx_available,
    .collect = tdx_collect,
    .verify = tdx_verify,
};
