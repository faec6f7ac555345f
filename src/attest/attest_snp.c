/*
 * attest_snp.c - the "snp" evidence type: an AMD SEV-SNP attestation
 * report (versions 2 to 5), optionally followed by the certificate table
 * of an extended report (snp_report.h).
 *
 * Verify (CAS side): the product line (CPUID, or the certificate's
 * productName for version 2); the VCEK (or VLEK) from the table or the
 * collateral directory, chained VCEK -> ASK (VLEK -> ASVK) -> the pinned
 * ARK of that product; the P-384 signature over bytes [0, 0x2A0); the
 * VCEK's hwID against CHIP_ID and its TCB extensions against REPORTED_TCB;
 * the AMD CRL when the directory has one. Claims: MEASUREMENT, ID_KEY_DIGEST
 * (signer), CHIP_ID (platform_id), REPORT_DATA, POLICY.DEBUG, and HOST_DATA,
 * the policy bits, TCBs and the rest as extras. AMD publishes no TCB
 * status: a verified report is UpToDate, and a session compares
 * reported_tcb with its minimum.
 *
 * Collect (runtime side, inside an SNP guest): one configfs-tsm report
 * from the sev_guest provider; the auxblob's certificate table, trimmed
 * to its entries, follows the report.
 */
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/amd_cert.h"
#include "attest/attest_types.h"
#include "attest/collateral.h"
#include "attest/intel_verify.h"
#include "attest/sigcheck.h"
#include "attest/snp_report.h"
#include "attest/tsm.h"
#include "attest/x509chain.h"
#include "lib/crypto.h"
#include "lib/hex.h"

#define KDS "https://kdsintf.amd.com"

struct snp_ctx {
	const struct snp_report *r;
	const struct snp_certs *certs;
	const struct scone_collateral *coll; /* may be NULL */
	const struct attest_trust *trust;
	int64_t at;
	enum amd_product product;
	struct amd_cert_ext ext;
	const char *crl; /* "checked", "absent" */
};

/* ---------------- collection ---------------- */

static const char *tsm_root(const struct scone_collect_opts *o)
{
	return o && o->tsm_root ? o->tsm_root : TSM_DEFAULT_ROOT;
}

static bool snp_available(const struct scone_collect_opts *o)
{
	return tsm_available(tsm_root(o), "sev_guest");
}

static enum scone_err snp_collect(const struct scone_collect_opts *o,
				  const uint8_t report_data[SCONE_REPORT_DATA_SIZE], struct scone_wbuf *out)
{
	struct scone_wbuf rep, aux;
	size_t used = 0;
	enum scone_err err;

	scone_wbuf_init(&rep, TSM_BLOB_MAX, 0);
	scone_wbuf_init(&aux, TSM_BLOB_MAX, 0);
	err = tsm_report(tsm_root(o), "sev_guest", report_data, &rep, &aux);
	if (!err &&
	    (rep.size != SNP_REPORT_SIZE || memcmp(rep.data + SNP_O_REPORT_DATA, report_data, 64) != 0))
		err = scone_err_set(SCONE_ERR_IO,
				    "configfs-tsm: outblob is not a report carrying this report data");
	if (!err && aux.size)
		err = snp_cert_table_size(aux.data, aux.size, &used);
	if (!err)
		err = scone_wbuf_put(out, rep.data, rep.size);
	if (!err && used)
		err = scone_wbuf_put(out, aux.data, used);
	scone_wbuf_free(&rep);
	scone_wbuf_free(&aux);
	return err;
}

/* ---------------- the key's certificate ---------------- */

static const char *collateral_dir(const struct snp_ctx *x, const struct scone_verify_opts *o)
{
	return x->coll ? x->coll->dir : o ? o->collateral_dir : NULL;
}

/* Where AMD's KDS serves this report's VCEK. */
static void kds_url(const struct snp_report *r, bool known, enum amd_product p, char *url, size_t size)
{
	uint8_t spl[SPL_COUNT];
	char hwid[129];

	amd_tcb_split(known ? p : AMD_MILAN, r->reported_tcb, spl);
	scone_hex_encode(hwid, sizeof(hwid), r->raw + SNP_O_CHIP_ID, known && p == AMD_TURIN ? 8 : 64);
	if (known && p == AMD_TURIN)
		snprintf(url, size,
			 KDS "/vcek/v1/Turin/%s?fmcSPL=%u&blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u", hwid,
			 spl[SPL_FMC], spl[SPL_BL], spl[SPL_TEE], spl[SPL_SNP], spl[SPL_UCODE]);
	else
		snprintf(url, size, KDS "/vcek/v1/%s/%s?blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u",
			 known ? amd_product_name(p) : "{Milan|Genoa}", hwid, spl[SPL_BL], spl[SPL_TEE],
			 spl[SPL_SNP], spl[SPL_UCODE]);
}

/* The VCEK or VLEK: from the report's table, else the collateral directory (VCEK only). *owned: free it. */
static enum scone_err key_cert(const struct snp_ctx *x, const struct scone_verify_opts *o,
			       struct snp_blob *out, uint8_t **owned)
{
	const char *dir = collateral_dir(x, o);
	enum amd_product p = AMD_MILAN;
	bool known = x->r->has_cpuid && amd_product_of(x->r, NULL, &p) == SCONE_ERR_OK;
	char chip[129], path[800], url[400];
	int n;

	*owned = NULL;
	*out = x->r->key == SNP_KEY_VLEK ? x->certs->vlek : x->certs->vcek;
	if (out->data)
		return SCONE_ERR_OK;
	if (x->r->key == SNP_KEY_VLEK)
		return scone_err_set(
		    SCONE_ERR_NOT_FOUND,
		    "SNP report signed by a VLEK, and the evidence has no certificate table with it "
		    "(VLEKs come from the host: collect an extended report)");
	scone_hex_encode(chip, sizeof(chip), x->r->raw + SNP_O_CHIP_ID, 64);
	n = snprintf(path, sizeof(path), "%s/amd/vcek-%s-%016llx.der", dir ? dir : ".", chip,
		     (unsigned long long)x->r->reported_tcb);
	if (n < 0 || (size_t)n >= sizeof(path))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "collateral directory name too long");
	kds_url(x->r, known, p, url, sizeof(url));
	if (!dir || access(path, F_OK) != 0)
		return scone_err_set(
		    SCONE_ERR_NOT_FOUND,
		    "no VCEK for this report (no certificate table%s%s): fetch %s and import it",
		    dir ? ", and the collateral has no " : "", dir ? path + strlen(dir) + 1 : "", url);
	SCONE_TRY(collateral_read_file(path, COLL_FILE_MAX, owned, &out->size));
	out->data = *owned;
	return SCONE_ERR_OK;
}

/* ---------------- the chain ---------------- */

static bool is_p384(X509 *c)
{
	EVP_PKEY *k = X509_get0_pubkey(c);
	char group[32];
	size_t n;

	return k && EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	       EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof(group), &n) == 1 &&
	       strcmp(group, "secp384r1") == 0;
}

/* The intermediate: the table's ASK/ASVK, else the pinned one. */
static enum scone_err intermediate(struct snp_ctx *x, X509 **out)
{
	bool vlek = x->r->key == SNP_KEY_VLEK;
	char cn[64], want[64];

	if (x->certs->ask.data) {
		SCONE_TRY(
		    x509_parse_one(x->certs->ask.data, x->certs->ask.size, "certificate table ASK", out));
	} else {
		*out = vlek ? x->trust->asvk[x->product] : x->trust->ask[x->product];
		X509_up_ref(*out);
	}
	x509_cn(*out, cn, sizeof(cn));
	snprintf(want, sizeof(want), "SEV-%s%s", vlek ? "VLEK-" : "", amd_product_name(x->product));
	if (strcmp(cn, want) != 0) {
		X509_free(*out);
		*out = NULL;
		return scone_err_set(SCONE_ERR_UNTRUSTED, "SNP chain: intermediate \"%s\", expected \"%s\"",
				     cn, want);
	}
	return SCONE_ERR_OK;
}

static enum scone_err chain_verify(struct snp_ctx *x, X509 *leaf, struct coll_chain *ch)
{
	STACK_OF(X509) *untrusted = NULL;
	X509 *ark = NULL, *mid = NULL;
	char cn[64];
	enum scone_err err;

	x509_cn(leaf, cn, sizeof(cn));
	if (strcmp(cn, x->r->key == SNP_KEY_VLEK ? "SEV-VLEK" : "SEV-VCEK") != 0 || !is_p384(leaf))
		return scone_err_set(SCONE_ERR_UNTRUSTED, "SNP chain: \"%s\" is not a %s with a P-384 key",
				     cn, x->r->key == SNP_KEY_VLEK ? "VLEK" : "VCEK");
	if (x->certs->ark.data) {
		SCONE_TRY(
		    x509_parse_one(x->certs->ark.data, x->certs->ark.size, "certificate table ARK", &ark));
		err = X509_cmp(ark, x->trust->ark[x->product]) == 0
			  ? SCONE_ERR_OK
			  : scone_err_set(SCONE_ERR_UNTRUSTED,
					  "SNP chain: the table's ARK is not the pinned ARK-%s",
					  amd_product_name(x->product));
		X509_free(ark);
		SCONE_TRY(err);
	}
	SCONE_TRY(intermediate(x, &mid));
	untrusted = sk_X509_new_null();
	if (!untrusted || !sk_X509_push(untrusted, mid)) {
		X509_free(mid);
		sk_X509_free(untrusted);
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	}
	err = x509_verify_chain(leaf, untrusted, x->trust->ark[x->product], X509_NO_TIME, false,
				"SNP certificate chain");
	if (!err && sk_X509_push(untrusted, x->trust->ark[x->product]) &&
	    X509_up_ref(x->trust->ark[x->product]))
		err = x509_validity(untrusted, leaf, &ch->not_before, &ch->not_after); /* VCEK, ASK and ARK */
	else if (!err)
		err = scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	if (!err) {
		ch->leaf = leaf;
		ch->ca = mid;
		X509_up_ref(leaf);
		X509_up_ref(mid);
	}
	sk_X509_pop_free(untrusted, X509_free);
	return err;
}

/*
 * The key's chain to the pinned ARK. Cached by the bytes of the key's
 * certificate and of the table's intermediate: parsing a certificate alone
 * costs about a third of an SNP verification.
 */
static enum scone_err key_chain(struct snp_ctx *x, const struct snp_blob *cert, struct coll_chain *ch)
{
	X509 *leaf = NULL;
	uint8_t key[32];
	enum scone_err err;

	memset(ch, 0, sizeof(*ch));
	SCONE_TRY(sig_sha256_2(cert->data, cert->size,
			       x->certs->ask.data ? x->certs->ask.data : (const uint8_t *)"",
			       x->certs->ask.size, key));
	if (collateral_cache_get(x->coll, key, ch)) {
		x->ext = ch->ext;
		err = amd_product_of(x->r, &x->ext, &x->product);
		if (!err && ch->role != 1 + (int)x->r->key)
			err = scone_err_set(SCONE_ERR_UNTRUSTED,
					    "SNP chain: a %s certificate in the place of a %s",
					    ch->role == 1 + SNP_KEY_VLEK ? "VLEK" : "VCEK",
					    x->r->key == SNP_KEY_VLEK ? "VLEK" : "VCEK");
		if (!err && ch->product != (int)x->product)
			err = scone_err_set(SCONE_ERR_UNTRUSTED, "SNP chain: the certificate is for %s",
					    amd_product_name((enum amd_product)ch->product));
	} else {
		err = x509_parse_one(cert->data, cert->size, x->r->key == SNP_KEY_VLEK ? "VLEK" : "VCEK",
				     &leaf);
		if (!err)
			err = amd_cert_ext_parse(leaf, &x->ext);
		if (!err)
			err = amd_product_of(x->r, &x->ext, &x->product);
		if (!err)
			err = chain_verify(x, leaf, ch);
		if (!err) {
			memcpy(ch->key, key, 32);
			ch->ext = x->ext;
			ch->product = (int)x->product;
			ch->role = 1 + (int)x->r->key;
			collateral_cache_put(x->coll, ch);
		}
		X509_free(leaf);
	}
	if (!err)
		err = x509_check_window(ch->not_before, ch->not_after, x->at, "SNP certificate chain");
	return err;
}

/* ---------------- the report's own checks ---------------- */

static enum scone_err tcb_match(const struct snp_ctx *x)
{
	static const char *const names[SPL_COUNT] = {"blSPL", "teeSPL", "snpSPL", "ucodeSPL", "fmcSPL"};
	uint8_t spl[SPL_COUNT];
	bool vcek = x->r->key == SNP_KEY_VCEK;
	const uint8_t *chip = x->r->raw + SNP_O_CHIP_ID;
	size_t n = x->product == AMD_TURIN ? 8 : 64;

	if (vcek && (x->ext.hwid_size != n || memcmp(x->ext.hwid, chip, n) != 0))
		return scone_err_set(SCONE_ERR_UNTRUSTED, "SNP report: CHIP_ID is not the VCEK's hwID%s",
				     x->ext.hwid_size ? "" : " (the VCEK has none)");
	amd_tcb_split(x->product, x->r->reported_tcb, spl);
	for (int i = 0; i < SPL_COUNT; i++) {
		if (i == SPL_FMC && x->product != AMD_TURIN)
			continue;
		if (!x->ext.has_spl[i] || x->ext.spl[i] != spl[i])
			return scone_err_set(SCONE_ERR_UNTRUSTED,
					     "SNP report: REPORTED_TCB %s %u does not match the %s's %s",
					     names[i], spl[i], vcek ? "VCEK" : "VLEK",
					     x->ext.has_spl[i] ? "value" : "(missing) extension");
	}
	return SCONE_ERR_OK;
}

/* The AMD CRL of the directory (amd/crl-<product>.der), when there is one: the intermediate must not be on
 * it. */
static enum scone_err crl_check(struct snp_ctx *x, const struct scone_verify_opts *o, X509 *mid)
{
	const char *dir = collateral_dir(x, o), *kind = x->r->key == SNP_KEY_VLEK ? "vlek" : "vcek";
	char path[700], name[32], fetch[120];
	uint8_t *data = NULL;
	size_t size;
	X509_CRL *crl = NULL;
	enum scone_err err;
	int n;

	x->crl = "absent";
	snprintf(name, sizeof(name), "%s", amd_product_name(x->product));
	name[0] = (char)(name[0] - 'A' + 'a');
	n = snprintf(path, sizeof(path), "%s/amd/crl-%s.der", dir ? dir : ".", name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "collateral directory name too long");
	if (!dir || access(path, F_OK) != 0)
		return SCONE_ERR_OK;
	snprintf(fetch, sizeof(fetch), KDS "/%s/v1/%s/crl", kind, amd_product_name(x->product));
	err = collateral_read_file(path, COLL_FILE_MAX, &data, &size);
	if (!err)
		err = x509_crl_parse(data, size, path, &crl);
	if (!err)
		err = x509_crl_check(crl, x->trust->ark[x->product], x->at, "collateral AMD CRL", fetch);
	if (!err && x509_crl_lists(crl, mid))
		err = scone_err_set(SCONE_ERR_UNTRUSTED, "SNP chain: the %s is revoked (AMD CRL)",
				    x->r->key == SNP_KEY_VLEK ? "ASVK" : "ASK");
	X509_CRL_free(crl);
	free(data);
	x->crl = "checked";
	return err;
}

/* ---------------- claims ---------------- */

static enum scone_err add_tcb(struct scone_claims *c, const char *name, uint64_t v)
{
	char hex[17];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)v);
	return scone_claims_add(c, name, hex);
}

static enum scone_err add_fw(struct scone_claims *c, const char *name, const uint8_t fw[3])
{
	char v[16];

	snprintf(v, sizeof(v), "%u.%u.%u", fw[2], fw[1], fw[0]);
	return scone_claims_add(c, name, v);
}

static enum scone_err policy_claims(const struct snp_report *r, struct scone_claims *c)
{
	SCONE_TRY(add_tcb(c, "policy", r->policy));
	SCONE_TRY(scone_claims_add(c, "smt_allowed", r->policy & SNP_POLICY_SMT ? "true" : "false"));
	SCONE_TRY(scone_claims_add(c, "migrate_ma", r->policy & SNP_POLICY_MIGRATE_MA ? "true" : "false"));
	SCONE_TRY(
	    scone_claims_add(c, "single_socket", r->policy & SNP_POLICY_SINGLE_SOCKET ? "true" : "false"));
	SCONE_TRY(add_tcb(c, "platform_info", r->platform_info));
	return scone_claims_add(c, "smt_enabled", r->platform_info & SNP_PLATFORM_SMT_EN ? "true" : "false");
}

static enum scone_err snp_claims(const struct snp_ctx *x, struct scone_claims *c)
{
	const struct snp_report *r = x->r;
	const uint8_t *b = r->raw;

	c->type = SCONE_EVIDENCE_SNP;
	memcpy(c->measurement, b + SNP_O_MEASUREMENT, 48);
	c->measurement_size = 48;
	memcpy(c->signer, b + SNP_O_ID_KEY_DIGEST, 48);
	c->signer_size = 48;
	memcpy(c->platform_id, b + SNP_O_CHIP_ID, 64);
	c->platform_id_size = 64;
	memcpy(c->report_data, b + SNP_O_REPORT_DATA, 64);
	c->debug = (r->policy & SNP_POLICY_DEBUG) != 0;
	c->tcb_status = SCONE_TCB_UP_TO_DATE;
	SCONE_TRY(scone_claims_add_hex(c, "host_data", b + SNP_O_HOST_DATA, 32));
	SCONE_TRY(scone_claims_add_hex(c, "author_key_digest", b + SNP_O_AUTHOR_KEY_DIGEST, 48));
	SCONE_TRY(scone_claims_add_hex(c, "family_id", b + SNP_O_FAMILY_ID, 16));
	SCONE_TRY(scone_claims_add_hex(c, "image_id", b + SNP_O_IMAGE_ID, 16));
	SCONE_TRY(scone_claims_add_hex(c, "report_id", b + SNP_O_REPORT_ID, 32));
	SCONE_TRY(scone_claims_add_hex(c, "report_id_ma", b + SNP_O_REPORT_ID_MA, 32));
	SCONE_TRY(attest_claim_u64(c, "version", r->version));
	SCONE_TRY(attest_claim_u64(c, "guest_svn", r->guest_svn));
	SCONE_TRY(attest_claim_u64(c, "vmpl", r->vmpl));
	SCONE_TRY(policy_claims(r, c));
	SCONE_TRY(add_tcb(c, "reported_tcb", r->reported_tcb));
	SCONE_TRY(add_tcb(c, "current_tcb", r->current_tcb));
	SCONE_TRY(add_tcb(c, "committed_tcb", r->committed_tcb));
	SCONE_TRY(add_tcb(c, "launch_tcb", r->launch_tcb));
	SCONE_TRY(add_fw(c, "current_firmware", r->current_fw));
	SCONE_TRY(add_fw(c, "committed_firmware", r->committed_fw));
	SCONE_TRY(scone_claims_add(c, "product", amd_product_name(x->product)));
	SCONE_TRY(scone_claims_add(c, "signing_key", r->key == SNP_KEY_VLEK ? "vlek" : "vcek"));
	SCONE_TRY(scone_claims_add(c, "amd_crl", x->crl));
	if (r->version >= 5) {
		SCONE_TRY(add_tcb(c, "launch_mit_vector", r->launch_mit));
		SCONE_TRY(add_tcb(c, "current_mit_vector", r->current_mit));
	}
	return SCONE_ERR_OK;
}

/* ---------------- verify ---------------- */

static enum scone_err verify_in(struct snp_ctx *x, const struct scone_verify_opts *o)
{
	struct snp_blob cert;
	struct coll_chain ch = {0};
	uint8_t *owned = NULL;
	enum scone_err err;

	err = key_cert(x, o, &cert, &owned);
	if (!err)
		err = key_chain(x, &cert, &ch);
	if (!err)
		err = sig_verify_ecdsa(X509_get0_pubkey(ch.leaf), "SHA384", x->r->raw, SNP_SIGNED_SIZE,
				       x->r->raw + SNP_O_SIG_R, x->r->raw + SNP_O_SIG_S, 72, true,
				       x->r->key == SNP_KEY_VLEK ? "SNP report signature (by the VLEK)"
								 : "SNP report signature (by the VCEK)");
	if (!err)
		err = tcb_match(x);
	if (!err)
		err = crl_check(x, o, ch.ca);
	collateral_chain_release(&ch);
	free(owned);
	return err;
}

enum scone_err attest_snp_verify_with(const uint8_t *evidence, size_t size, const struct scone_verify_opts *o,
				      const struct attest_trust *trust, struct scone_claims *out)
{
	struct snp_report r;
	struct snp_certs certs;
	struct snp_ctx x = {
	    .r = &r, .certs = &certs, .trust = trust, .at = attest_time_of(o), .crl = "absent"};
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	SCONE_TRY(snp_report_parse(evidence, size, o && o->allow_padding, &r, &certs));
	/* A loaded collateral gives the directory and the chain cache; a bare directory is read per file. */
	x.coll = o ? o->collateral : NULL;
	err = verify_in(&x, o);
	if (!err)
		err = snp_claims(&x, out);
	if (err)
		memset(out, 0, sizeof(*out));
	ERR_clear_error();
	return err;
}

static enum scone_err snp_verify(const uint8_t *evidence, size_t size, const struct scone_verify_opts *o,
				 struct scone_claims *out)
{
	const struct attest_trust *t;

	memset(out, 0, sizeof(*out));
	SCONE_TRY(attest_trust_pinned(&t));
	return attest_snp_verify_with(evidence, size, o, t, out);
}

const struct scone_evidence_ops scone_evidence_snp = {
    .name = "snp",
    .type = SCONE_EVIDENCE_SNP,
    .available = snp_available,
    .collect = snp_collect,
    .verify = snp_verify,
};
