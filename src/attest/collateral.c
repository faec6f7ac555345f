/*
 * collateral.c - load the operator's collateral directory and answer the
 * verifiers' questions about it (see collateral.h; layout in
 * docs/attestation.md).
 */
#include "attest/collateral.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/sigcheck.h"
#include "attest/x509chain.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/json.h"
#include "lib/rfc3339.h"

#define PCS "https://api.trustedservices.intel.com"

static const char *const tee_name[2] = {"sgx", "tdx"};
static const char *const ca_kind[2] = {"platform", "processor"};
static const char *const ca_cn[2] = {"Intel SGX PCK Platform CA", "Intel SGX PCK Processor CA"};

enum scone_err collateral_read_file(const char *path, size_t max, uint8_t **data, size_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t got = 0;

	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "cannot open %s: %s", path,
				     strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		close(fd);
		return scone_err_set(SCONE_ERR_TOO_LARGE, "%s: not a regular file of at most %zu bytes", path,
				     max);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return scone_err_set(SCONE_ERR_NOMEM, "%s: out of memory", path);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		free(buf);
		return scone_err_set(SCONE_ERR_IO, "%s: short read", path);
	}
	buf[got] = '\0';
	*data = buf;
	*size = got;
	return SCONE_ERR_OK;
}

enum scone_err collateral_signed_body(const uint8_t *body, size_t size, const char *key, char **text,
				      size_t *text_size, uint8_t sig[64])
{
	static const struct scone_json_limits lim = {COLL_FILE_MAX, 40000, 12};
	struct scone_json *doc = NULL;
	const struct scone_json *v, *s;
	enum scone_err err;

	if ((err = scone_json_parse((const char *)body, size, &lim, &doc)))
		return scone_err_set(err, "%s", scone_err_detail());
	v = scone_json_get(doc, key);
	s = scone_json_get(doc, "signature");
	if (!v || v->kind != SCONE_JSON_OBJECT || !s || s->kind != SCONE_JSON_STRING ||
	    scone_json_len(doc) != 2) {
		scone_json_free(doc);
		return scone_err_set(SCONE_ERR_MALFORMED, "expected {\"%s\": {...}, \"signature\": \"...\"}",
				     key);
	}
	err = scone_hex_decode(sig, 64, s->str, "signature");
	if (!err && !(*text = malloc(v->end - v->offset + 1)))
		err = scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	if (!err) {
		memcpy(*text, body + v->offset, v->end - v->offset);
		(*text)[v->end - v->offset] = '\0';
		*text_size = v->end - v->offset;
	}
	scone_json_free(doc);
	return err == SCONE_ERR_INVALID ? scone_err_set(SCONE_ERR_MALFORMED, "%s", scone_err_detail()) : err;
}

/* Record a file's load error (the detail of err) and return OK: the load goes on. */
static enum scone_err file_failed(struct coll_file *f, enum scone_err err)
{
	f->err = err;
	snprintf(f->detail, sizeof(f->detail), "%s", scone_err_detail());
	return SCONE_ERR_OK;
}

static enum scone_err read_in(const struct scone_collateral *c, struct coll_file *f, uint8_t **data,
			      size_t *size)
{
	char path[700];

	snprintf(path, sizeof(path), "%s/%s", c->dir, f->name);
	if (access(path, F_OK) != 0)
		return SCONE_ERR_NOT_FOUND;
	f->present = true;
	return collateral_read_file(path, COLL_FILE_MAX, data, size);
}

static enum scone_err load_signer(struct scone_collateral *c)
{
	struct coll_file *f = &c->signing_f;
	STACK_OF(X509) *chain = NULL;
	uint8_t *data = NULL;
	size_t size;
	char cn[80];
	enum scone_err err;

	snprintf(f->name, sizeof(f->name), "intel/tcb-signing-chain.pem");
	if ((err = read_in(c, f, &data, &size)) == SCONE_ERR_NOT_FOUND && !f->present)
		return SCONE_ERR_OK;
	if (!err)
		err = x509_pem_chain(data, size, X509_CHAIN_MAX, "TCB signing chain", &chain);
	free(data);
	if (!err) {
		x509_cn(sk_X509_value(chain, 0), cn, sizeof(cn));
		if (strcmp(cn, "Intel SGX TCB Signing") != 0)
			err = scone_err_set(SCONE_ERR_UNTRUSTED,
					    "TCB signing chain: first certificate is \"%s\"", cn);
	}
	if (!err)
		err = x509_verify_chain(sk_X509_value(chain, 0), chain, c->trust->intel_root, X509_NO_TIME,
					true, "TCB signing chain");
	if (!err)
		err = x509_validity(chain, c->trust->intel_root, &c->signer_nb, &c->signer_na);
	if (!err) {
		c->signer = sk_X509_value(chain, 0);
		X509_up_ref(c->signer);
	}
	sk_X509_pop_free(chain, X509_free);
	return err ? file_failed(f, err) : SCONE_ERR_OK;
}

/* Read a signed document and check its signature by the TCB signing key; *text owned by the caller. */
static enum scone_err signed_doc(struct scone_collateral *c, struct coll_file *f, const char *key,
				 char **text, size_t *text_size)
{
	uint8_t *data = NULL, sig[64];
	size_t size;
	enum scone_err err = read_in(c, f, &data, &size);

	if (err)
		return err;
	err = collateral_signed_body(data, size, key, text, text_size, sig);
	free(data);
	if (!err && !c->signer)
		err = c->signing_f.present
			  ? scone_err_set(c->signing_f.err, "%s (intel/tcb-signing-chain.pem)",
					  c->signing_f.detail)
			  : scone_err_set(SCONE_ERR_NOT_FOUND,
					  "intel/tcb-signing-chain.pem is missing: save the "
					  "TCB-Info-Issuer-Chain header of a PCS TCB info response");
	if (!err)
		err = sig_verify_ecdsa(X509_get0_pubkey(c->signer), "SHA256", (const uint8_t *)*text,
				       *text_size, sig, sig + 32, 32, false, key);
	if (err && *text) {
		free(*text);
		*text = NULL;
	}
	return err;
}

static void load_tcbinfo(struct scone_collateral *c, const char *name, int tee, const uint8_t fmspc[6])
{
	struct coll_tcbinfo *e = &c->tcbinfo[c->n_tcbinfo++];
	char *text = NULL;
	size_t size;
	enum scone_err err;

	snprintf(e->f.name, sizeof(e->f.name), "intel/%.60s", name); /* 29 bytes (tcbinfo_name) */
	e->tdx = tee == COLL_TDX;
	memcpy(e->fmspc, fmspc, 6);
	err = signed_doc(c, &e->f, "tcbInfo", &text, &size);
	if (!err && !(e->info = malloc(sizeof(*e->info))))
		err = scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	if (!err)
		err = intel_tcbinfo_parse(text, size, e->info);
	if (!err && (e->info->tdx != e->tdx || memcmp(e->info->fmspc, fmspc, 6) != 0))
		err = scone_err_set(
		    SCONE_ERR_INVALID, "the TCB info inside is for %s FMSPC %02x%02x%02x%02x%02x%02x",
		    e->info->tdx ? "TDX" : "SGX", e->info->fmspc[0], e->info->fmspc[1], e->info->fmspc[2],
		    e->info->fmspc[3], e->info->fmspc[4], e->info->fmspc[5]);
	free(text);
	if (err) {
		free(e->info);
		e->info = NULL;
		(void)file_failed(&e->f, err);
	}
}

static void load_qeid(struct scone_collateral *c, int tee)
{
	struct coll_file *f = &c->qe_f[tee];
	char *text = NULL;
	size_t size;
	enum scone_err err;

	snprintf(f->name, sizeof(f->name), "intel/%s-qe-identity.json", tee_name[tee]);
	err = signed_doc(c, f, "enclaveIdentity", &text, &size);
	if (err == SCONE_ERR_NOT_FOUND && !f->present)
		return;
	if (!err && !(c->qe[tee] = malloc(sizeof(*c->qe[tee]))))
		err = scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	if (!err)
		err = intel_qeid_parse(text, size, c->qe[tee]);
	if (!err && c->qe[tee]->td != (tee == COLL_TDX))
		err = scone_err_set(SCONE_ERR_INVALID, "the identity inside is %s",
				    c->qe[tee]->td ? "TD_QE" : "QE");
	free(text);
	if (err) {
		free(c->qe[tee]);
		c->qe[tee] = NULL;
		(void)file_failed(f, err);
	}
}

static void load_crl(struct scone_collateral *c, struct coll_file *f, const char *name, const char *issuer_cn,
		     X509_CRL **out)
{
	uint8_t *data = NULL;
	size_t size;
	char cn[80] = "";
	enum scone_err err;

	snprintf(f->name, sizeof(f->name), "intel/%s", name);
	err = read_in(c, f, &data, &size);
	if (err == SCONE_ERR_NOT_FOUND && !f->present)
		return;
	if (!err)
		err = x509_crl_parse(data, size, name, out);
	free(data);
	if (!err &&
	    (X509_NAME_get_text_by_NID(X509_CRL_get_issuer(*out), NID_commonName, cn, sizeof(cn)) < 0 ||
	     strcmp(cn, issuer_cn) != 0))
		err =
		    scone_err_set(SCONE_ERR_INVALID, "%s: issued by \"%s\", not \"%s\"", name, cn, issuer_cn);
	if (!err && out == &c->rootcrl)
		err = x509_crl_check(*out, c->trust->intel_root, X509_NO_TIME, name, "");
	if (err) {
		X509_CRL_free(*out);
		*out = NULL;
		(void)file_failed(f, err);
	}
}

/* "sgx-tcbinfo-<12 hex>.json" / "tdx-tcbinfo-...": the TEE and FMSPC, or false. */
static bool tcbinfo_name(const char *name, int *tee, uint8_t fmspc[6])
{
	char hex[13];

	if (strlen(name) != 29 || strcmp(name + 24, ".json") != 0 || strncmp(name + 3, "-tcbinfo-", 9) != 0)
		return false;
	if (strncmp(name, "sgx", 3) == 0)
		*tee = COLL_SGX;
	else if (strncmp(name, "tdx", 3) == 0)
		*tee = COLL_TDX;
	else
		return false;
	memcpy(hex, name + 12, 12);
	hex[12] = '\0';
	for (int i = 0; i < 12; i++)
		if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
			return false;
	return scone_hex_decode(fmspc, 6, hex, "FMSPC") == SCONE_ERR_OK;
}

static enum scone_err scan_tcbinfo(struct scone_collateral *c)
{
	char path[700];
	DIR *d;
	struct dirent *de;
	uint8_t fmspc[6];
	int tee;

	snprintf(path, sizeof(path), "%s/intel", c->dir);
	if (!(d = opendir(path)))
		return errno == ENOENT ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_IO, "cannot read %s", path);
	while ((de = readdir(d))) {
		if (!tcbinfo_name(de->d_name, &tee, fmspc))
			continue;
		if (c->n_tcbinfo == COLL_MAX_TCBINFO) {
			closedir(d);
			return scone_err_set(SCONE_ERR_LIMIT, "%s: more than %d TCB info files", path,
					     COLL_MAX_TCBINFO);
		}
		load_tcbinfo(c, de->d_name, tee, fmspc);
	}
	closedir(d);
	return SCONE_ERR_OK;
}

void scone_collateral_free(struct scone_collateral *c)
{
	if (!c)
		return;
	X509_free(c->signer);
	for (size_t i = 0; i < c->n_tcbinfo; i++)
		free(c->tcbinfo[i].info);
	for (int i = 0; i < 2; i++) {
		free(c->qe[i]);
		X509_CRL_free(c->pckcrl[i]);
	}
	X509_CRL_free(c->rootcrl);
	for (size_t i = 0; i < c->n_cache; i++)
		collateral_chain_release(&c->cache[i]);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

enum scone_err collateral_load_with(const char *dir, const struct attest_trust *trust,
				    struct scone_collateral **out)
{
	struct scone_collateral *c;
	struct stat st;
	enum scone_err err;

	*out = NULL;
	if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return scone_err_set(SCONE_ERR_NOT_FOUND, "collateral directory %.300s does not exist",
				     dir ? dir : "(none)");
	if (strlen(dir) >= sizeof(c->dir))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "collateral directory name too long");
	if (!(c = calloc(1, sizeof(*c))))
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	memcpy(c->dir, dir, strlen(dir) + 1);
	c->trust = trust;
	pthread_mutex_init(&c->lock, NULL);
	err = load_signer(c);
	if (!err)
		err = scan_tcbinfo(c);
	if (err) {
		scone_collateral_free(c);
		return err;
	}
	for (int tee = 0; tee < 2; tee++) {
		char name[40];
		load_qeid(c, tee);
		snprintf(name, sizeof(name), "pckcrl-%s.der", ca_kind[tee]);
		load_crl(c, &c->pckcrl_f[tee], name, ca_cn[tee], &c->pckcrl[tee]);
	}
	load_crl(c, &c->rootcrl_f, "rootca-crl.der", "Intel SGX Root CA", &c->rootcrl);
	ERR_clear_error();
	*out = c;
	return SCONE_ERR_OK;
}

enum scone_err scone_collateral_load(const char *dir, struct scone_collateral **out)
{
	const struct attest_trust *t;

	*out = NULL;
	SCONE_TRY(attest_trust_pinned(&t));
	return collateral_load_with(dir, t, out);
}

enum scone_err collateral_resolve(const struct scone_verify_opts *o, const struct attest_trust *trust,
				  const struct scone_collateral **out, struct scone_collateral **owned)
{
	*owned = NULL;
	if (o && o->collateral) {
		*out = o->collateral;
		return SCONE_ERR_OK;
	}
	if (!o || !o->collateral_dir)
		return scone_err_set(SCONE_ERR_NOT_FOUND,
				     "no collateral: give the collateral directory (--collateral DIR, see "
				     "docs/attestation.md)");
	SCONE_TRY(collateral_load_with(o->collateral_dir, trust, owned));
	*out = *owned;
	return SCONE_ERR_OK;
}

/* ---------------- questions ---------------- */

static enum scone_err file_error(const struct scone_collateral *c, const struct coll_file *f)
{
	return scone_err_set(f->err, "collateral %s/%s: %s", c->dir, f->name, f->detail);
}

/* The document's dates and its signer's validity at time at. */
static enum scone_err current(const struct scone_collateral *c, const struct coll_file *f, int64_t issue,
			      int64_t next, int64_t at, const char *fetch)
{
	char a[SCONE_RFC3339_SIZE], b[SCONE_RFC3339_SIZE], when[SCONE_RFC3339_SIZE];

	if (at < issue || at >= next) { /* valid until nextUpdate, exclusive */
		scone_rfc3339_format(issue, a);
		scone_rfc3339_format(next, b);
		scone_rfc3339_format(at, when);
		return scone_err_set(SCONE_ERR_EXPIRED,
				     "collateral %s (issued %s, next update %s) is %s at %s: fetch %s",
				     f->name, a, b, at >= next ? "stale" : "not yet issued", when, fetch);
	}
	return x509_check_window(c->signer_nb, c->signer_na, at,
				 "collateral intel/tcb-signing-chain.pem (Intel SGX TCB Signing)");
}

enum scone_err collateral_tcbinfo(const struct scone_collateral *c, int tee, const uint8_t fmspc[6],
				  int64_t at, const struct tcb_info **out)
{
	char hex[13], fetch[160];

	scone_hex_encode(hex, sizeof(hex), fmspc, 6);
	snprintf(fetch, sizeof(fetch), PCS "/%s/certification/v4/tcb?fmspc=%s", tee_name[tee], hex);
	for (size_t i = 0; i < c->n_tcbinfo; i++) {
		const struct coll_tcbinfo *e = &c->tcbinfo[i];
		if (e->tdx != (tee == COLL_TDX) || memcmp(e->fmspc, fmspc, 6) != 0)
			continue;
		if (!e->info)
			return file_error(c, &e->f);
		SCONE_TRY(current(c, &e->f, e->info->issue_date, e->info->next_update, at, fetch));
		*out = e->info;
		return SCONE_ERR_OK;
	}
	return scone_err_set(SCONE_ERR_NOT_FOUND, "collateral %s has no intel/%s-tcbinfo-%s.json: fetch %s",
			     c->dir, tee_name[tee], hex, fetch);
}

enum scone_err collateral_qeid(const struct scone_collateral *c, int tee, int64_t at,
			       const struct qe_identity **out)
{
	char fetch[120];

	snprintf(fetch, sizeof(fetch), PCS "/%s/certification/v4/qe/identity", tee_name[tee]);
	if (!c->qe_f[tee].present)
		return scone_err_set(SCONE_ERR_NOT_FOUND,
				     "collateral %s has no intel/%s-qe-identity.json: fetch %s", c->dir,
				     tee_name[tee], fetch);
	if (!c->qe[tee])
		return file_error(c, &c->qe_f[tee]);
	SCONE_TRY(current(c, &c->qe_f[tee], c->qe[tee]->issue_date, c->qe[tee]->next_update, at, fetch));
	*out = c->qe[tee];
	return SCONE_ERR_OK;
}

/* The PCK CRL for ca's kind, its signature checked by ca once per CA (under the lock). */
static enum scone_err pck_crl(const struct scone_collateral *c, X509 *ca, int64_t at, X509_CRL **out)
{
	struct scone_collateral *m = (struct scone_collateral *)c; /* the lock and the verified-by mark */
	char cn[80], fetch[120];
	uint8_t h[32];
	int kind;
	enum scone_err err = SCONE_ERR_OK;

	x509_cn(ca, cn, sizeof(cn));
	kind = strcmp(cn, ca_cn[COLL_PROCESSOR_CA]) == 0 ? COLL_PROCESSOR_CA : COLL_PLATFORM_CA;
	snprintf(fetch, sizeof(fetch), PCS "/sgx/certification/v4/pckcrl?ca=%s&encoding=der", ca_kind[kind]);
	if (!c->pckcrl_f[kind].present)
		return scone_err_set(SCONE_ERR_NOT_FOUND,
				     "collateral %s has no intel/pckcrl-%s.der: fetch %s", c->dir,
				     ca_kind[kind], fetch);
	if (!c->pckcrl[kind])
		return file_error(c, &c->pckcrl_f[kind]);
	SCONE_TRY(x509_sha256(ca, h));
	pthread_mutex_lock(&m->lock);
	if (memcmp(m->pckcrl_ca[kind], h, 32) != 0) {
		err = x509_crl_check(c->pckcrl[kind], ca, X509_NO_TIME, "PCK CRL", fetch);
		if (!err)
			memcpy(m->pckcrl_ca[kind], h, 32);
	}
	pthread_mutex_unlock(&m->lock);
	if (!err)
		err = x509_crl_current(c->pckcrl[kind], at, "collateral PCK CRL", fetch);
	*out = c->pckcrl[kind];
	return err;
}

enum scone_err collateral_check_revocation(const struct scone_collateral *c, X509 *leaf, X509 *ca, int64_t at)
{
	static const char root_fetch[] = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";
	X509_CRL *crl = NULL;

	if (!c->rootcrl_f.present)
		return scone_err_set(SCONE_ERR_NOT_FOUND,
				     "collateral %s has no intel/rootca-crl.der: fetch %s", c->dir,
				     root_fetch);
	if (!c->rootcrl)
		return file_error(c, &c->rootcrl_f);
	SCONE_TRY(
	    x509_crl_current(c->rootcrl, at, "collateral Root CA CRL", root_fetch)); /* signature: at load */
	if (x509_crl_lists(c->rootcrl, ca))
		return scone_err_set(SCONE_ERR_UNTRUSTED,
				     "PCK chain: the intermediate CA is revoked (Root CA CRL)");
	SCONE_TRY(pck_crl(c, ca, at, &crl));
	if (x509_crl_lists(crl, leaf))
		return scone_err_set(SCONE_ERR_UNTRUSTED,
				     "PCK chain: the PCK certificate is revoked (PCK CRL)");
	return SCONE_ERR_OK;
}

/* ---------------- chain cache ---------------- */

static void chain_ref(struct coll_chain *ch)
{
	if (ch->leaf)
		X509_up_ref(ch->leaf);
	if (ch->ca)
		X509_up_ref(ch->ca);
}

void collateral_chain_release(struct coll_chain *ch)
{
	X509_free(ch->leaf);
	X509_free(ch->ca);
	ch->leaf = ch->ca = NULL;
}

bool collateral_cache_get(const struct scone_collateral *c, const uint8_t key[32], struct coll_chain *out)
{
	struct scone_collateral *m = (struct scone_collateral *)c;
	bool hit = false;

	if (!c || c->no_cache)
		return false;
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_cache && !hit; i++) {
		if (memcmp(m->cache[i].key, key, 32) == 0) {
			*out = m->cache[i];
			chain_ref(out);
			hit = true;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return hit;
}

void collateral_cache_put(const struct scone_collateral *c, const struct coll_chain *in)
{
	struct scone_collateral *m = (struct scone_collateral *)c;
	struct coll_chain *slot;

	if (!c || c->no_cache)
		return;
	pthread_mutex_lock(&m->lock);
	if (m->n_cache < COLL_CACHE) {
		slot = &m->cache[m->n_cache++];
	} else {
		slot = &m->cache[m->next];
		m->next = (m->next + 1) % COLL_CACHE;
		collateral_chain_release(slot);
	}
	*slot = *in;
	chain_ref(slot);
	pthread_mutex_unlock(&m->lock);
}
