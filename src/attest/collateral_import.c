/*
 * collateral_import.c - fill and inspect the collateral directory (public
 * scone_collateral_import / scone_collateral_describe, attest.h): classify
 * a downloaded file by its content, check it to the pinned roots, and
 * store it under its layout name (docs/attestation.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/amd_cert.h"
#include "attest/collateral.h"
#include "attest/sigcheck.h"
#include "attest/x509chain.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/json.h"
#include "lib/rfc3339.h"

struct importer {
	const char *dir;
	const struct attest_trust *trust;
	X509 *signer; /* the TCB signing certificate, once known */
	struct scone_wbuf *report;
};

/* ---------------- writing ---------------- */

static enum scone_err mkdirs(const char *dir, const char *sub)
{
	char path[600];

	SCONE_TRY(
	    mkdir(dir, 0755) == 0 || errno == EEXIST
		? SCONE_ERR_OK
		: scone_err_set(scone_err_from_errno(errno), "cannot create %s: %s", dir, strerror(errno)));
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return scone_err_set(scone_err_from_errno(errno), "cannot create %s: %s", path,
				     strerror(errno));
	return SCONE_ERR_OK;
}

/* Write name (e.g. "intel/x.json") under the directory atomically: a temporary file, then rename. */
static enum scone_err store(struct importer *im, const char *name, const void *data, size_t size,
			    const char *what)
{
	char path[700], tmp[720], line[900];
	int fd, n;
	ssize_t w = -1;

	SCONE_TRY(mkdirs(im->dir, strncmp(name, "amd/", 4) == 0 ? "amd" : "intel"));
	snprintf(path, sizeof(path), "%s/%s", im->dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		w = write(fd, data, size);
		if (fsync(fd) != 0)
			w = -1;
		close(fd);
	}
	if (fd < 0 || w < 0 || (size_t)w != size || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return scone_err_set(scone_err_from_errno(e), "cannot write %s: %s", path, strerror(e));
	}
	n = snprintf(line, sizeof(line), "%s: %s\n", name, what);
	return scone_wbuf_put(im->report, line, n > 0 && (size_t)n < sizeof(line) ? (size_t)n : 0);
}

/* ---------------- Intel ---------------- */

static enum scone_err load_signer(struct importer *im)
{
	char path[700];
	uint8_t *data;
	size_t size;
	STACK_OF(X509) * chain;
	enum scone_err err;

	if (im->signer)
		return SCONE_ERR_OK;
	snprintf(path, sizeof(path), "%s/intel/tcb-signing-chain.pem", im->dir);
	if (access(path, F_OK) != 0)
		return scone_err_set(
		    SCONE_ERR_NOT_FOUND,
		    "import the TCB signing chain first (the TCB-Info-Issuer-Chain header of the PCS "
		    "response, URL-decoded, as a PEM file)");
	SCONE_TRY(collateral_read_file(path, COLL_FILE_MAX, &data, &size));
	err = x509_pem_chain(data, size, X509_CHAIN_MAX, path, &chain);
	free(data);
	SCONE_TRY(err);
	err = x509_verify_chain(sk_X509_value(chain, 0), chain, im->trust->intel_root, X509_NO_TIME, true,
				path);
	if (!err) {
		im->signer = sk_X509_value(chain, 0);
		X509_up_ref(im->signer);
	}
	sk_X509_pop_free(chain, X509_free);
	return err;
}

static enum scone_err import_signing_chain(struct importer *im, const uint8_t *pem, size_t size)
{
	STACK_OF(X509) * chain;
	char cn[80], a[SCONE_RFC3339_SIZE], b[SCONE_RFC3339_SIZE], what[160];
	int64_t nb, na;
	enum scone_err err;

	SCONE_TRY(x509_pem_chain(pem, size, X509_CHAIN_MAX, "TCB signing chain", &chain));
	x509_cn(sk_X509_value(chain, 0), cn, sizeof(cn));
	err = strcmp(cn, "Intel SGX TCB Signing") == 0
		  ? x509_verify_chain(sk_X509_value(chain, 0), chain, im->trust->intel_root, X509_NO_TIME,
				      true, "TCB signing chain")
		  : scone_err_set(SCONE_ERR_UNSUPPORTED, "a certificate chain for \"%s\" is not collateral",
				  cn);
	if (!err)
		err = x509_validity(chain, NULL, &nb, &na);
	if (!err) {
		scone_rfc3339_format(nb, a);
		scone_rfc3339_format(na, b);
		snprintf(what, sizeof(what), "TCB signing chain (\"%s\", valid %s..%s)", cn, a, b);
		err = store(im, "intel/tcb-signing-chain.pem", pem, size, what);
	}
	if (!err) {
		X509_free(im->signer);
		im->signer = sk_X509_value(chain, 0);
		X509_up_ref(im->signer);
	}
	sk_X509_pop_free(chain, X509_free);
	return err;
}

static void fmspc_hex(const uint8_t f[6], char out[13])
{
	scone_hex_encode(out, 13, f, 6);
}

/* A PCS body {"tcbInfo"|"enclaveIdentity": ..., "signature": ...}: verify, parse, store under its name. */
static enum scone_err import_signed(struct importer *im, const uint8_t *body, size_t size, bool tcb)
{
	char *text = NULL, name[64], what[200], a[SCONE_RFC3339_SIZE], b[SCONE_RFC3339_SIZE], hex[13];
	uint8_t sig[64];
	size_t text_size;
	void *doc = NULL;
	enum scone_err err;

	SCONE_TRY(load_signer(im));
	SCONE_TRY(
	    collateral_signed_body(body, size, tcb ? "tcbInfo" : "enclaveIdentity", &text, &text_size, sig));
	err = sig_verify_ecdsa(X509_get0_pubkey(im->signer), "SHA256", (const uint8_t *)text, text_size, sig,
			       sig + 32, 32, false, tcb ? "tcbInfo signature" : "enclaveIdentity signature");
	if (!err && !(doc = malloc(tcb ? sizeof(struct tcb_info) : sizeof(struct qe_identity))))
		err = scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	if (!err && tcb) {
		struct tcb_info *ti = doc;
		err = intel_tcbinfo_parse(text, text_size, ti);
		if (!err) {
			fmspc_hex(ti->fmspc, hex);
			snprintf(name, sizeof(name), "intel/%s-tcbinfo-%s.json", ti->tdx ? "tdx" : "sgx",
				 hex);
			scone_rfc3339_format(ti->issue_date, a);
			scone_rfc3339_format(ti->next_update, b);
			snprintf(what, sizeof(what), "%s TCB info for FMSPC %s, issued %s, next update %s",
				 ti->tdx ? "TDX" : "SGX", hex, a, b);
		}
	} else if (!err) {
		struct qe_identity *id = doc;
		err = intel_qeid_parse(text, text_size, id);
		if (!err) {
			snprintf(name, sizeof(name), "intel/%s-qe-identity.json", id->td ? "tdx" : "sgx");
			scone_rfc3339_format(id->issue_date, a);
			scone_rfc3339_format(id->next_update, b);
			snprintf(what, sizeof(what), "%s identity, issued %s, next update %s",
				 id->td ? "TD_QE" : "QE", a, b);
		}
	}
	if (!err)
		err = store(im, name, body, size, what);
	free(doc);
	free(text);
	return err;
}

/* ---------------- CRLs ---------------- */

static enum scone_err import_crl(struct importer *im, X509_CRL *crl, const uint8_t *der, size_t size)
{
	static const char *const intel[][2] = {{"Intel SGX PCK Platform CA", "intel/pckcrl-platform.der"},
					       {"Intel SGX PCK Processor CA", "intel/pckcrl-processor.der"},
					       {"Intel SGX Root CA", "intel/rootca-crl.der"}};
	char cn[80], name[64], what[160], b[SCONE_RFC3339_SIZE];
	int64_t next = 0;

	if (X509_NAME_get_text_by_NID(X509_CRL_get_issuer(crl), NID_commonName, cn, sizeof(cn)) < 0)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "a CRL without an issuer common name");
	if (X509_CRL_get0_nextUpdate(crl) && x509_time(X509_CRL_get0_nextUpdate(crl), &next))
		next = 0;
	scone_rfc3339_format(next, b);
	snprintf(what, sizeof(what), "CRL of \"%s\", next update %s", cn, b);
	for (size_t i = 0; i < 3; i++)
		if (strcmp(cn, intel[i][0]) == 0) {
			if (i == 2)
				SCONE_TRY(x509_crl_check(crl, im->trust->intel_root, X509_NO_TIME,
							 "Root CA CRL", ""));
			return store(im, intel[i][1], der, size, what);
		}
	for (int p = 0; p < AMD_PRODUCTS; p++) {
		char ark[32];
		snprintf(ark, sizeof(ark), "ARK-%s", amd_product_name((enum amd_product)p));
		if (strcmp(cn, ark) != 0)
			continue;
		SCONE_TRY(x509_crl_check(crl, im->trust->ark[p], X509_NO_TIME, "AMD CRL", ""));
		snprintf(name, sizeof(name), "amd/crl-%s.der", amd_product_name((enum amd_product)p));
		name[8] = (char)(name[8] - 'A' + 'a');
		return store(im, name, der, size, what);
	}
	return scone_err_set(SCONE_ERR_UNSUPPORTED, "a CRL of \"%s\" is not collateral", cn);
}

/* ---------------- AMD ---------------- */

/* The report's REPORTED_TCB that a VCEK with these SPLs serves (amd_tcb_split, reversed). */
static uint64_t tcb_of(enum amd_product p, const struct amd_cert_ext *e)
{
	if (p == AMD_TURIN)
		return (uint64_t)e->spl[SPL_FMC] | (uint64_t)e->spl[SPL_BL] << 8 |
		       (uint64_t)e->spl[SPL_TEE] << 16 | (uint64_t)e->spl[SPL_SNP] << 24 |
		       (uint64_t)e->spl[SPL_UCODE] << 56;
	return (uint64_t)e->spl[SPL_BL] | (uint64_t)e->spl[SPL_TEE] << 8 | (uint64_t)e->spl[SPL_SNP] << 48 |
	       (uint64_t)e->spl[SPL_UCODE] << 56;
}

static enum scone_err import_vcek(struct importer *im, X509 *vcek)
{
	struct snp_report none = {0};
	struct amd_cert_ext e;
	enum amd_product p;
	STACK_OF(X509) *mid = sk_X509_new_null();
	uint8_t chip[64] = {0}, *der = NULL;
	char hex[129], name[200], what[120];
	int n;
	enum scone_err err;

	if (!mid)
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	err = amd_cert_ext_parse(vcek, &e);
	if (!err)
		err = amd_product_of(&none, &e, &p);
	if (!err && (!e.hwid_size || !e.has_spl[SPL_BL] || !e.has_spl[SPL_TEE] || !e.has_spl[SPL_SNP] ||
		     !e.has_spl[SPL_UCODE] || (p == AMD_TURIN && !e.has_spl[SPL_FMC])))
		err = scone_err_set(SCONE_ERR_MALFORMED, "VCEK: hwID or TCB extensions missing");
	if (!err && !sk_X509_push(mid, im->trust->ask[p]))
		err = scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	if (!err)
		err = x509_verify_chain(vcek, mid, im->trust->ark[p], X509_NO_TIME, false, "VCEK chain");
	sk_X509_free(mid);
	SCONE_TRY(err);
	memcpy(chip, e.hwid, e.hwid_size);
	scone_hex_encode(hex, sizeof(hex), chip, 64);
	snprintf(name, sizeof(name), "amd/vcek-%s-%016llx.der", hex, (unsigned long long)tcb_of(p, &e));
	snprintf(what, sizeof(what), "VCEK (%s)", e.product);
	n = i2d_X509(vcek, &der);
	if (n <= 0)
		return scone_err_set(SCONE_ERR_CRYPTO, "cannot encode the VCEK");
	err = store(im, name, der, (size_t)n, what);
	OPENSSL_free(der);
	return err;
}

static enum scone_err import_cert(struct importer *im, const uint8_t *data, size_t size)
{
	X509 *c;
	char cn[80];
	enum scone_err err;

	SCONE_TRY(x509_parse_one(data, size, "certificate", &c));
	x509_cn(c, cn, sizeof(cn));
	err = strcmp(cn, "SEV-VCEK") == 0
		  ? import_vcek(im, c)
		  : scone_err_set(SCONE_ERR_UNSUPPORTED,
				  "a certificate \"%s\" is not collateral (VCEKs are; VLEKs "
				  "arrive with their reports)",
				  cn);
	X509_free(c);
	return err;
}

/* ---------------- dcap-qvl bundles ---------------- */

static const char *bundle_str(const struct scone_json *doc, const char *key)
{
	return scone_json_string(scone_json_get(doc, key), NULL);
}

/* PCS body text of a signed document held as (text, signature hex) in a bundle. */
static enum scone_err bundle_signed(struct importer *im, const char *key, const char *text, const char *sig,
				    bool tcb)
{
	struct scone_wbuf w;
	enum scone_err err;

	scone_wbuf_init(&w, 2 * COLL_FILE_MAX, 0);
	err = scone_wbuf_put(&w, "{\"", 2);
	if (!err)
		err = scone_wbuf_put(&w, key, strlen(key));
	if (!err)
		err = scone_wbuf_put(&w, "\":", 2);
	if (!err)
		err = scone_wbuf_put(&w, text, strlen(text));
	if (!err)
		err = scone_wbuf_put(&w, ",\"signature\":", 13);
	if (!err)
		err = scone_json_put_string(&w, sig);
	if (!err)
		err = scone_wbuf_put(&w, "}", 1);
	if (!err)
		err = import_signed(im, w.data, w.size, tcb);
	scone_wbuf_free(&w);
	return err;
}

static enum scone_err bundle_crl(struct importer *im, const char *hex)
{
	size_t n = strlen(hex) / 2;
	uint8_t *der = malloc(n ? n : 1);
	X509_CRL *crl = NULL;
	enum scone_err err;

	if (!der)
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	err = scone_hex_decode(der, n, hex, "CRL (hex)");
	if (!err)
		err = x509_crl_parse(der, n, "CRL", &crl);
	if (!err)
		err = import_crl(im, crl, der, n);
	X509_CRL_free(crl);
	free(der);
	return err;
}

static enum scone_err import_bundle(struct importer *im, const struct scone_json *doc)
{
	const char *chain = bundle_str(doc, "tcb_info_issuer_chain");
	const char *keys[][3] = {{"tcb_info", "tcb_info_signature", "tcbInfo"},
				 {"qe_identity", "qe_identity_signature", "enclaveIdentity"}};

	if (!chain)
		return scone_err_set(SCONE_ERR_MALFORMED, "dcap-qvl collateral: no tcb_info_issuer_chain");
	SCONE_TRY(import_signing_chain(im, (const uint8_t *)chain, strlen(chain)));
	for (int i = 0; i < 2; i++) {
		const char *text = bundle_str(doc, keys[i][0]), *sig = bundle_str(doc, keys[i][1]);
		if (!text || !sig)
			return scone_err_set(SCONE_ERR_MALFORMED, "dcap-qvl collateral: no %s/%s", keys[i][0],
					     keys[i][1]);
		SCONE_TRY(bundle_signed(im, keys[i][2], text, sig, i == 0));
	}
	for (int i = 0; i < 2; i++) {
		const char *hex = bundle_str(doc, i ? "root_ca_crl" : "pck_crl");
		if (hex)
			SCONE_TRY(bundle_crl(im, hex));
	}
	return SCONE_ERR_OK;
}

static enum scone_err import_json(struct importer *im, const uint8_t *data, size_t size)
{
	static const struct scone_json_limits lim = {2 * COLL_FILE_MAX, 40000, 12};
	struct scone_json *doc = NULL;
	enum scone_err err;

	SCONE_TRY(scone_json_parse((const char *)data, size, &lim, &doc));
	if (scone_json_get(doc, "tcbInfo"))
		err = import_signed(im, data, size, true);
	else if (scone_json_get(doc, "enclaveIdentity"))
		err = import_signed(im, data, size, false);
	else if (scone_json_get(doc, "tcb_info"))
		err = import_bundle(im, doc);
	else
		err = scone_err_set(
		    SCONE_ERR_UNSUPPORTED,
		    "JSON that is neither a PCS TCB info / QE identity body nor a dcap-qvl collateral");
	scone_json_free(doc);
	return err;
}

static enum scone_err import_pem_certs(struct importer *im, const uint8_t *data, size_t size)
{
	STACK_OF(X509) * chain;
	char cn[80];
	int n;

	SCONE_TRY(x509_pem_chain(data, size, X509_CHAIN_MAX, "PEM certificates", &chain));
	x509_cn(sk_X509_value(chain, 0), cn, sizeof(cn));
	n = sk_X509_num(chain);
	sk_X509_pop_free(chain, X509_free);
	if (strcmp(cn, "Intel SGX TCB Signing") == 0)
		return import_signing_chain(im, data, size);
	if (n == 1)
		return import_cert(im, data, size);
	return scone_err_set(SCONE_ERR_UNSUPPORTED,
			     "a certificate chain starting with \"%s\" is not collateral", cn);
}

static bool starts(const uint8_t *data, size_t size, const char *prefix)
{
	return size >= strlen(prefix) && memcmp(data, prefix, strlen(prefix)) == 0;
}

enum scone_err scone_collateral_import(const char *dir, const uint8_t *data, size_t size,
				       struct scone_wbuf *report)
{
	struct importer im = {.dir = dir, .report = report};
	size_t i = 0;
	X509_CRL *crl = NULL;
	enum scone_err err;

	SCONE_TRY(attest_trust_pinned(&im.trust));
	if (size > 2 * COLL_FILE_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "%zu bytes: too large for collateral", size);
	while (i < size && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
		i++;
	if (i < size && data[i] == '{')
		err = import_json(&im, data, size);
	else if (starts(data, size, "-----BEGIN CERTIFICATE-----"))
		err = import_pem_certs(&im, data, size);
	else if ((err = x509_crl_parse(data, size, "CRL", &crl)) == SCONE_ERR_OK)
		err = import_crl(&im, crl, data, size);
	else if (starts(data, size, "-----BEGIN X509 CRL-----"))
		err = scone_err_set(SCONE_ERR_MALFORMED, "a PEM CRL that does not parse");
	else
		err = import_cert(&im, data, size);
	X509_CRL_free(crl);
	X509_free(im.signer);
	ERR_clear_error();
	return err;
}
