/*
 * attest_sgx.c - the "sgx" evidence type: an Intel SGX DCAP ECDSA quote
 * (version 3; also SGX quotes v4/v5 with body type 1).
 *
 * Verify (CAS side): intel_verify.c checks the quote to the pinned Intel
 * SGX Root CA with the operator's collateral; the claims are MRENCLAVE
 * (measurement), MRSIGNER (signer), FMSPC (platform_id), REPORTDATA, the
 * DEBUG attribute, the TCB status and advisories, and the report's other
 * fields as extras (docs/attestation.md).
 *
 * Collect (runtime side, inside an SGX enclave under Gramine with
 * sgx.remote_attestation = "dcap"): write the report data to
 * /dev/attestation/user_report_data, read /dev/attestation/quote.
 */
#include <string.h>

#include "attest/attest_types.h"
#include "attest/collect_io.h"
#include "attest/intel_verify.h"

#define SGX_FLAG_DEBUG 0x02

static const char *gramine_root(const struct scone_collect_opts *o)
{
	return o && o->gramine_root ? o->gramine_root : "/dev/attestation";
}

static bool sgx_is_dcap(const char *root)
{
	char path[512], type[32];

	return !collect_path(path, sizeof(path), root, "attestation_type") &&
	       !collect_read_text(path, type, sizeof(type)) && strcmp(type, "dcap") == 0;
}

static bool sgx_available(const struct scone_collect_opts *o)
{
	return sgx_is_dcap(gramine_root(o));
}

static enum scone_err sgx_collect(const struct scone_collect_opts *o,
				  const uint8_t report_data[SCONE_REPORT_DATA_SIZE], struct scone_wbuf *out)
{
	const char *root = gramine_root(o);
	char path[512];
	struct scone_wbuf quote;
	struct intel_quote q;
	enum scone_err err;

	if (!sgx_is_dcap(root))
		return scone_err_set(
		    SCONE_ERR_UNSUPPORTED,
		    "%s/attestation_type is not \"dcap\": run under Gramine with sgx.remote_attestation "
		    "= \"dcap\" in the manifest",
		    root);
	SCONE_TRY(collect_path(path, sizeof(path), root, "user_report_data"));
	SCONE_TRY(collect_write(path, report_data, SCONE_REPORT_DATA_SIZE));
	SCONE_TRY(collect_path(path, sizeof(path), root, "quote"));
	scone_wbuf_init(&quote, SCONE_EVIDENCE_MAX, 0);
	err = collect_read(path, SCONE_EVIDENCE_MAX, &quote);
	if (!err)
		err = intel_quote_parse(quote.data, quote.size, true, &q);
	if (!err && (q.tee_type != INTEL_TEE_SGX || memcmp(q.body + SGX_R_REPORTDATA, report_data, 64) != 0))
		err = scone_err_set(SCONE_ERR_IO,
				    "%s: the quote does not carry this report data (another writer?)", path);
	if (!err)
		err = scone_wbuf_put(out, quote.data, q.size);
	scone_wbuf_free(&quote);
	return err;
}

static enum scone_err sgx_claims(const struct intel_verified *v, struct scone_claims *c)
{
	const uint8_t *b = v->q.body;

	c->type = SCONE_EVIDENCE_SGX;
	memcpy(c->measurement, b + SGX_R_MRENCLAVE, 32);
	c->measurement_size = 32;
	memcpy(c->signer, b + SGX_R_MRSIGNER, 32);
	c->signer_size = 32;
	memcpy(c->report_data, b + SGX_R_REPORTDATA, 64);
	c->debug = (b[SGX_R_ATTRIBUTES] & SGX_FLAG_DEBUG) != 0;
	SCONE_TRY(
	    attest_claim_u64(c, "isvprodid", (uint64_t)(b[SGX_R_ISVPRODID] | b[SGX_R_ISVPRODID + 1] << 8)));
	SCONE_TRY(attest_claim_u64(c, "isvsvn", (uint64_t)(b[SGX_R_ISVSVN] | b[SGX_R_ISVSVN + 1] << 8)));
	SCONE_TRY(
	    attest_claim_u64(c, "configsvn", (uint64_t)(b[SGX_R_CONFIGSVN] | b[SGX_R_CONFIGSVN + 1] << 8)));
	SCONE_TRY(scone_claims_add_hex(c, "attributes", b + SGX_R_ATTRIBUTES, 16));
	SCONE_TRY(scone_claims_add_hex(c, "miscselect", b + SGX_R_MISCSELECT, 4));
	SCONE_TRY(scone_claims_add_hex(c, "cpusvn", b + SGX_R_CPUSVN, 16));
	SCONE_TRY(scone_claims_add_hex(c, "isvextprodid", b + SGX_R_ISVEXTPRODID, 16));
	SCONE_TRY(scone_claims_add_hex(c, "isvfamilyid", b + SGX_R_ISVFAMILYID, 16));
	SCONE_TRY(scone_claims_add_hex(c, "configid", b + SGX_R_CONFIGID, 64));
	return intel_claims_common(v, c);
}

enum scone_err attest_sgx_verify_with(const uint8_t *evidence, size_t size, const struct scone_verify_opts *o,
				      const struct attest_trust *trust, struct scone_claims *out)
{
	struct intel_verified v;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	err = intel_verify(evidence, size, INTEL_TEE_SGX, o, trust, &v);
	if (!err)
		err = sgx_claims(&v, out);
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

static enum scone_err sgx_verify(const uint8_t *evidence, size_t size, const struct scone_verify_opts *o,
				 struct scone_claims *out)
{
	const struct attest_trust *t;

	memset(out, 0, sizeof(*out));
	SCONE_TRY(attest_trust_pinned(&t));
	return attest_sgx_verify_with(evidence, size, o, t, out);
}

const struct scone_evidence_ops scone_evidence_sgx = {
    .name = "sgx",
    .type = SCONE_EVIDENCE_SGX,
    .available = sgx_available,
    .collect = sgx_collect,
    .verify = sgx_verify,
};
