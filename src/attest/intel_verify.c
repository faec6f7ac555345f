/*
 * intel_verify.c - the verification of Intel DCAP quotes (see
 * intel_verify.h). Signatures come first, so a tampered quote is named as
 * such whatever the state of the collateral; then revocation and the
 * collateral-based decisions.
 */
#include "attest/intel_verify.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "attest/collateral.h"
#include "attest/sigcheck.h"
#include "attest/x509chain.h"
#include "lib/crypto.h"
#include "lib/rfc3339.h"

int64_t attest_time_of(const struct scone_verify_opts *o)
{
	return o && o->at ? o->at : (int64_t)time(NULL);
}

/* The chain in the quote: PCK certificate, PCK Platform/Processor CA, and Intel's root (which must be the
 * pinned one). */
static enum scone_err chain_verify(const struct intel_quote *q, const struct attest_trust *t,
				   struct coll_chain *ch)
{
	STACK_OF(X509) *chain = NULL;
	X509 *top;
	char cn[96];
	enum scone_err err;

	SCONE_TRY(x509_pem_chain(q->pck_chain, q->pck_chain_size, 3, "PCK certificate chain", &chain));
	if (sk_X509_num(chain) != 3) {
		err = scone_err_set(SCONE_ERR_MALFORMED, "PCK certificate chain: %d certificates, not 3",
				    sk_X509_num(chain));
		sk_X509_pop_free(chain, X509_free);
		return err;
	}
	top = sk_X509_value(chain, 2);
	if (X509_cmp(top, t->intel_root) != 0)
		err = scone_err_set(SCONE_ERR_UNTRUSTED, "PCK certificate chain: its root is not the pinned "
							 "Intel SGX Root CA (sha256 44a0196b...)");
	else
		err = SCONE_ERR_OK;
	x509_cn(sk_X509_value(chain, 0), cn, sizeof(cn));
	if (!err && !strstr(cn, "SGX PCK Certificate"))
		err = scone_err_set(SCONE_ERR_UNTRUSTED,
				    "PCK certificate chain: leaf \"%s\" is not a PCK certificate", cn);
	x509_cn(sk_X509_value(chain, 1), cn, sizeof(cn));
	if (!err && strcmp(cn, "Intel SGX PCK Platform CA") != 0 &&
	    strcmp(cn, "Intel SGX PCK Processor CA") != 0)
		err = scone_err_set(SCONE_ERR_UNTRUSTED,
				    "PCK certificate chain: intermediate \"%s\" is not a PCK CA", cn);
	if (!err)
		err = x509_verify_chain(sk_X509_value(chain, 0), chain, t->intel_root, X509_NO_TIME, true,
					"PCK certificate chain");
	if (!err)
		err = x509_validity(chain, NULL, &ch->not_before, &ch->not_after);
	if (!err)
		err = intel_pck_parse(sk_X509_value(chain, 0), &ch->pck);
	if (!err) {
		ch->leaf = sk_X509_value(chain, 0);
		ch->ca = sk_X509_value(chain, 1);
		X509_up_ref(ch->leaf);
		X509_up_ref(ch->ca);
	}
	sk_X509_pop_free(chain, X509_free);
	return err;
}

/* The PCK chain, from the collateral's cache when these exact bytes were verified before. */
static enum scone_err pck_chain(const struct intel_quote *q, const struct scone_collateral *c,
				const struct attest_trust *t, int64_t at, struct coll_chain *ch)
{
	uint8_t key[32];

	memset(ch, 0, sizeof(*ch));
	scone_sha256(q->pck_chain, q->pck_chain_size, key);
	if (!collateral_cache_get(c, key, ch)) {
		SCONE_TRY(chain_verify(q, t, ch));
		memcpy(ch->key, key, 32);
		collateral_cache_put(c, ch);
	}
	return x509_check_window(ch->not_before, ch->not_after, at, "PCK certificate chain");
}

/* QE report signed by the PCK key, binding the attestation key; the quote signed by the attestation key. */
static enum scone_err signatures(const struct intel_quote *q, X509 *pck, const uint8_t *quote)
{
	uint8_t h[32];
	EVP_PKEY *ak = NULL;
	enum scone_err err;

	SCONE_TRY(sig_verify_ecdsa(X509_get0_pubkey(pck), "SHA256", q->qe_report, SGX_REPORT_SIZE,
				   q->qe_report_sig, q->qe_report_sig + 32, 32, false,
				   "QE report signature (by the PCK key)"));
	SCONE_TRY(sig_sha256_2(q->attest_key, 64, q->qe_auth, q->qe_auth_size, h));
	if (!scone_ct_equal(h, q->qe_report + SGX_R_REPORTDATA, 32))
		return scone_err_set(SCONE_ERR_AUTH,
				     "QE report: its REPORTDATA does not bind the attestation key "
				     "(SHA-256 of key and QE auth data)");
	SCONE_TRY(sig_p256_key(q->attest_key, "attestation key", &ak));
	err = sig_verify_ecdsa(ak, "SHA256", quote, q->signed_size, q->signature, q->signature + 32, 32,
			       false, "quote signature (by the attestation key)");
	EVP_PKEY_free(ak);
	return err;
}

static enum scone_err collateral_checks(const struct scone_collateral *c, const struct coll_chain *ch,
					int64_t at, struct intel_verified *v)
{
	int tee = v->q.tee_type == INTEL_TEE_TDX ? COLL_TDX : COLL_SGX;
	const struct tcb_info *ti;
	const struct qe_identity *qe;
	const struct tcb_level *qe_level;

	SCONE_TRY(collateral_check_revocation(c, ch->leaf, ch->ca, at));
	SCONE_TRY(collateral_tcbinfo(c, tee, ch->pck.fmspc, at, &ti));
	if (memcmp(ti->pceid, ch->pck.pceid, 2) != 0)
		return scone_err_set(SCONE_ERR_UNTRUSTED,
				     "TCB info: PCE-ID differs from the PCK certificate's");
	if (tee == COLL_TDX)
		SCONE_TRY(intel_tdx_module_check(ti, &v->q));
	SCONE_TRY(collateral_qeid(c, tee, at, &qe));
	SCONE_TRY(intel_qeid_check(qe, v->q.qe_report, &qe_level));
	SCONE_TRY(intel_tcb_evaluate(ti, &ch->pck, &v->q, qe_level, &v->tcb));
	v->tcb_eval_number = ti->eval_number;
	return SCONE_ERR_OK;
}

enum scone_err intel_verify(const uint8_t *quote, size_t size, uint32_t tee,
			    const struct scone_verify_opts *o, const struct attest_trust *trust,
			    struct intel_verified *out)
{
	const struct scone_collateral *c = NULL;
	struct scone_collateral *owned = NULL;
	struct coll_chain ch = {0};
	int64_t at = attest_time_of(o);
	enum scone_err err, coll_err;
	char coll_detail[512];

	memset(out, 0, sizeof(*out));
	SCONE_TRY(intel_quote_parse(quote, size, o && o->allow_padding, &out->q));
	if (out->q.tee_type != tee)
		return scone_err_set(SCONE_ERR_INVALID, "quote: %s, not %s",
				     out->q.tee_type == INTEL_TEE_TDX ? "a TDX quote" : "an SGX quote",
				     tee == INTEL_TEE_TDX ? "a TDX quote" : "an SGX quote");
	/* Without collateral the chain and signatures are still checked first: a forgery is named as one. */
	coll_err = collateral_resolve(o, trust, &c, &owned);
	snprintf(coll_detail, sizeof(coll_detail), "%s", scone_err_detail());
	err = pck_chain(&out->q, coll_err ? NULL : c, trust, at, &ch);
	if (!err)
		err = signatures(&out->q, ch.leaf, quote);
	if (!err && coll_err)
		err = scone_err_set(coll_err, "%s", coll_detail);
	if (!err) {
		out->pck = ch.pck;
		err = collateral_checks(c, &ch, at, out);
	}
	collateral_chain_release(&ch);
	scone_collateral_free(owned);
	ERR_clear_error();
	return err;
}

enum scone_err attest_claim_u64(struct scone_claims *c, const char *name, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	return scone_claims_add(c, name, num);
}

enum scone_err intel_claims_common(const struct intel_verified *v, struct scone_claims *c)
{
	static const char *const tri[] = {"unknown", "false", "true"};
	char date[SCONE_RFC3339_SIZE];

	memcpy(c->platform_id, v->pck.fmspc, 6);
	c->platform_id_size = 6;
	c->tcb_status = v->tcb.status;
	snprintf(c->advisories, sizeof(c->advisories), "%s", v->tcb.advisories);
	scone_rfc3339_format(v->tcb.tcb_date, date);
	SCONE_TRY(attest_claim_u64(c, "quote_version", v->q.version));
	SCONE_TRY(scone_claims_add_hex(c, "pceid", v->pck.pceid, 2));
	SCONE_TRY(attest_claim_u64(c, "pcesvn", v->pck.pcesvn));
	SCONE_TRY(scone_claims_add(c, "tcb_date", date));
	SCONE_TRY(attest_claim_u64(c, "tcb_eval", (uint64_t)v->tcb_eval_number));
	SCONE_TRY(scone_claims_add(c, "qe_status", scone_tcb_status_name(v->tcb.qe_status)));
	/* Platform-CA certificates say whether SMT is on; Processor-CA ones do not. */
	return scone_claims_add(c, "smt", tri[v->pck.smt_enabled + 1]);
}
