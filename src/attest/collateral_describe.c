/*
 * collateral_describe.c - scone_collateral_describe (attest.h): one line
 * per collateral file, with its state at a time, for operators checking
 * their directory (`scone attest collateral check`).
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/amd_cert.h"
#include "attest/collateral.h"
#include "attest/x509chain.h"
#include "lib/hex.h"
#include "lib/rfc3339.h"

static enum scone_err line(struct scone_wbuf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum scone_err line(struct scone_wbuf *out, const char *fmt, ...)
{
	char buf[900];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return scone_err_set(SCONE_ERR_INVALID, "cannot format a line");
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	return scone_wbuf_put(out, buf, (size_t)n);
}

static const char *state(int64_t from, int64_t to, int64_t at)
{
	return at < from ? "NOT YET VALID" : at >= to ? "STALE" : "current";
}

static enum scone_err file_line(struct scone_wbuf *out, const struct coll_file *f, const char *missing)
{
	if (!f->present)
		return line(out, "%s: missing: %s", f->name, missing);
	return line(out, "%s: ERROR: %s", f->name, f->detail);
}

static enum scone_err dated(struct scone_wbuf *out, const char *name, const char *what, int64_t issue,
			    int64_t next, int64_t at)
{
	char a[SCONE_RFC3339_SIZE], b[SCONE_RFC3339_SIZE];

	scone_rfc3339_format(issue, a);
	scone_rfc3339_format(next, b);
	return line(out, "%s: %s, issued %s, next update %s: %s", name, what, a, b, state(issue, next, at));
}

static enum scone_err crl_line(struct scone_wbuf *out, const struct coll_file *f, X509_CRL *crl, int64_t at,
			       const char *fetch)
{
	int64_t a = 0, b = 0;

	if (!crl)
		return file_line(out, f, fetch);
	if (x509_time(X509_CRL_get0_lastUpdate(crl), &a) || !X509_CRL_get0_nextUpdate(crl) ||
	    x509_time(X509_CRL_get0_nextUpdate(crl), &b))
		return line(out, "%s: ERROR: CRL dates do not parse", f->name);
	return dated(out, f->name, "CRL", a, b, at);
}

static enum scone_err intel_lines(const struct scone_collateral *c, int64_t at, struct scone_wbuf *out)
{
	static const char pcs[] = "https://api.trustedservices.intel.com";
	char a[SCONE_RFC3339_SIZE], b[SCONE_RFC3339_SIZE], what[64], hex[13], fetch[120];

	if (c->signer) {
		scone_rfc3339_format(c->signer_nb, a);
		scone_rfc3339_format(c->signer_na, b);
		SCONE_TRY(line(out, "%s: TCB signing chain, valid %s..%s: %s", c->signing_f.name, a, b,
			       state(c->signer_nb, c->signer_na, at)));
	} else {
		SCONE_TRY(file_line(out, &c->signing_f,
				    "the TCB-Info-Issuer-Chain header of a PCS TCB info response"));
	}
	for (size_t i = 0; i < c->n_tcbinfo; i++) {
		const struct coll_tcbinfo *e = &c->tcbinfo[i];
		scone_hex_encode(hex, sizeof(hex), e->fmspc, 6);
		snprintf(what, sizeof(what), "%s TCB info, FMSPC %s", e->tdx ? "TDX" : "SGX", hex);
		SCONE_TRY(e->info ? dated(out, e->f.name, what, e->info->issue_date, e->info->next_update, at)
				  : file_line(out, &e->f, ""));
	}
	for (int tee = 0; tee < 2; tee++) {
		snprintf(fetch, sizeof(fetch), "%s/%s/certification/v4/qe/identity", pcs,
			 tee ? "tdx" : "sgx");
		SCONE_TRY(c->qe[tee] ? dated(out, c->qe_f[tee].name, tee ? "TD_QE identity" : "QE identity",
					     c->qe[tee]->issue_date, c->qe[tee]->next_update, at)
				     : file_line(out, &c->qe_f[tee], fetch));
	}
	for (int k = 0; k < 2; k++) {
		snprintf(fetch, sizeof(fetch), "%s/sgx/certification/v4/pckcrl?ca=%s&encoding=der", pcs,
			 k ? "processor" : "platform");
		SCONE_TRY(crl_line(out, &c->pckcrl_f[k], c->pckcrl[k], at, fetch));
	}
	return crl_line(out, &c->rootcrl_f, c->rootcrl, at,
			"https://certificates.trustedservices.intel.com/IntelSGXRootCA.der");
}

static enum scone_err amd_line(const struct scone_collateral *c, const char *name, int64_t at,
			       struct scone_wbuf *out)
{
	char path[900], a[SCONE_RFC3339_SIZE], b[SCONE_RFC3339_SIZE];
	uint8_t *data = NULL;
	size_t size;
	X509 *x = NULL;
	X509_CRL *crl = NULL;
	int64_t nb = 0, na = 0;
	enum scone_err err;

	snprintf(path, sizeof(path), "%s/amd/%s", c->dir, name);
	err = collateral_read_file(path, COLL_FILE_MAX, &data, &size);
	if (!err && strncmp(name, "crl-", 4) == 0) {
		err = x509_crl_parse(data, size, name, &crl);
		if (!err && (x509_time(X509_CRL_get0_lastUpdate(crl), &nb) ||
			     !X509_CRL_get0_nextUpdate(crl) || x509_time(X509_CRL_get0_nextUpdate(crl), &na)))
			err = scone_err_set(SCONE_ERR_MALFORMED, "CRL dates do not parse");
	} else if (!err) {
		err = x509_parse_one(data, size, name, &x);
		if (!err && (x509_time(X509_get0_notBefore(x), &nb) || x509_time(X509_get0_notAfter(x), &na)))
			err = scone_err_set(SCONE_ERR_MALFORMED, "certificate dates do not parse");
	}
	free(data);
	X509_free(x);
	X509_CRL_free(crl);
	if (err)
		return line(out, "amd/%s: ERROR: %s", name, scone_err_detail());
	scone_rfc3339_format(nb, a);
	scone_rfc3339_format(na, b);
	return line(out, "amd/%s: %s, valid %s..%s: %s", name, crl ? "AMD CRL" : "VCEK", a, b,
		    state(nb, na, at));
}

static enum scone_err amd_lines(const struct scone_collateral *c, int64_t at, struct scone_wbuf *out)
{
	char path[600];
	DIR *d;
	struct dirent *de;
	enum scone_err err = SCONE_ERR_OK;

	snprintf(path, sizeof(path), "%s/amd", c->dir);
	if (!(d = opendir(path)))
		return line(out, "amd/: none (SNP reports then need their certificate table)");
	while (!err && (de = readdir(d)))
		if (de->d_name[0] != '.')
			err = amd_line(c, de->d_name, at, out);
	closedir(d);
	return err;
}

enum scone_err scone_collateral_describe(const struct scone_collateral *c, int64_t at, struct scone_wbuf *out)
{
	char when[SCONE_RFC3339_SIZE];

	if (!at)
		at = (int64_t)time(NULL);
	scone_rfc3339_format(at, when);
	SCONE_TRY(line(out, "collateral %s at %s", c->dir, when));
	SCONE_TRY(intel_lines(c, at, out));
	return amd_lines(c, at, out);
}
