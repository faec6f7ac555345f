/*
 * self.c - CAS's own evidence, for `scone cas attest`: a CAS running in a
 * TEE (a TDX or SEV-SNP confidential VM, an SGX enclave) proves what it is
 * with evidence whose report data binds SHA-256 of its TLS certificate (the
 * fingerprint clients pin), then 32 zero bytes. Collected once at start:
 * the certificate does not change while CAS runs, and evidence copied to
 * another server names the wrong certificate. Without a TEE the answer
 * says so, and clients fall back to pinning the fingerprint.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "attest/attest.h"
#include "cas.h"
#include "lib/base64.h"
#include "lib/log.h"

/* Kept for the process's life and shared read-only by the workers (jansson's counts are atomic). */
static enum scone_err self_json(json_t *j, void **out)
{
	*out = j;
	return j ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_NOMEM, "CAS evidence");
}

enum scone_err cas_self_evidence_init(struct cas *cas)
{
	struct scone_collect_opts o = {0};
	const struct scone_evidence_ops *tee = scone_evidence_tee(&o);
	static const uint8_t zero[32];
	uint8_t rd[SCONE_REPORT_DATA_SIZE];
	struct scone_wbuf ev;
	enum scone_err err;
	char *b64;

	if (!tee)
		return self_json(
		    json_pack("{s:s,s:s}", "type", "none", "note",
			      "this CAS runs without a TEE: it cannot prove what it is; pin it by its "
			      "certificate fingerprint (scone cas trust)"),
		    &cas->self_evidence);
	scone_report_data(cas->cert_sha256, zero, rd);
	scone_wbuf_init(&ev, SCONE_EVIDENCE_MAX, 0);
	if ((err = tee->collect(&o, rd, &ev))) {
		scone_wbuf_free(&ev);
		return scone_err_set(err, "CAS's own %s evidence: %s", tee->name, scone_err_detail());
	}
	b64 = malloc(scone_base64_encoded_len(ev.size) + 1);
	if (!b64) {
		scone_wbuf_free(&ev);
		return scone_err_set(SCONE_ERR_NOMEM, "CAS evidence");
	}
	scone_base64_encode(b64, scone_base64_encoded_len(ev.size) + 1, ev.data, ev.size);
	err = self_json(json_pack("{s:s,s:s}", "type", tee->name, "evidence", b64), &cas->self_evidence);
	free(b64);
	scone_wbuf_free(&ev);
	if (!err)
		scone_info("CAS's own %s evidence is ready (GET /v1/cas/evidence)", tee->name);
	return err;
}

void cas_self_evidence_free(struct cas *cas)
{
	json_decref(cas->self_evidence);
	cas->self_evidence = NULL;
}

void cas_handle_self_evidence(struct cas *cas, struct cas_response *resp)
{
	if (!cas->self_evidence) {
		cas_respond_error(resp, 503, "BUSY", "CAS's evidence is not ready");
		return;
	}
	cas_respond_json(resp, 200, json_incref(cas->self_evidence));
}
