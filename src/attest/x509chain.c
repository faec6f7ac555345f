/* x509chain.c - certificates, CRLs and chains of vendor evidence (see x509chain.h). */
#include "attest/x509chain.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/crypto.h"
#include "lib/rfc3339.h"

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

/* Position of needle in [from, size) of hay, or size. */
static size_t find(const uint8_t *hay, size_t size, size_t from, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = from; i + n <= size; i++)
		if (hay[i] == (uint8_t)needle[0] && memcmp(hay + i, needle, n) == 0)
			return i;
	return size;
}

static size_t skip_newlines(const uint8_t *p, size_t size, size_t i)
{
	while (i < size && (p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

static enum scone_err pem_block(const uint8_t *p, size_t n, const char *what, size_t index, X509 **out)
{
	BIO *bio = BIO_new_mem_buf(p, (int)n);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	ERR_clear_error();
	if (!x)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: certificate %zu does not parse", what,
				     index + 1);
	*out = x;
	return SCONE_ERR_OK;
}

enum scone_err x509_pem_chain(const uint8_t *pem, size_t size, size_t max, const char *what,
			      STACK_OF(X509) * *out)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	enum scone_err err = SCONE_ERR_OK;
	size_t i = 0;

	if (!chain)
		return scone_err_set(SCONE_ERR_NOMEM, "%s: out of memory", what);
	if (size && pem[size - 1] == '\0')
		size--; /* one terminating NUL */
	while (!err && (i = skip_newlines(pem, size, i)) < size) {
		size_t end = find(pem, size, i, pem_end);
		X509 *x = NULL;
		if ((size_t)sk_X509_num(chain) == max)
			err = scone_err_set(SCONE_ERR_MALFORMED, "%s: more than %zu certificates", what, max);
		else if (size - i < sizeof(pem_begin) - 1 ||
			 memcmp(pem + i, pem_begin, sizeof(pem_begin) - 1) != 0)
			err = scone_err_set(SCONE_ERR_MALFORMED,
					    "%s: unexpected bytes at offset %zu (expected %s)", what, i,
					    pem_begin);
		else if (end == size)
			err = scone_err_set(SCONE_ERR_MALFORMED, "%s: certificate %d has no END line", what,
					    sk_X509_num(chain) + 1);
		else if (!(err = pem_block(pem + i, end + sizeof(pem_end) - 1 - i, what,
					   (size_t)sk_X509_num(chain), &x)) &&
			 !sk_X509_push(chain, x)) {
			X509_free(x);
			err = scone_err_set(SCONE_ERR_NOMEM, "%s: out of memory", what);
		}
		i = end + sizeof(pem_end) - 1;
	}
	if (!err && sk_X509_num(chain) == 0)
		err = scone_err_set(SCONE_ERR_MALFORMED, "%s: no certificate", what);
	if (err) {
		sk_X509_pop_free(chain, X509_free);
		return err;
	}
	*out = chain;
	return SCONE_ERR_OK;
}

static bool is_pem(const uint8_t *data, size_t size)
{
	return size >= 5 && memcmp(data, "-----", 5) == 0;
}

enum scone_err x509_parse_one(const uint8_t *data, size_t size, const char *what, X509 **out)
{
	const unsigned char *p = data;
	STACK_OF(X509) * chain;
	X509 *x;

	if (is_pem(data, size)) {
		SCONE_TRY(x509_pem_chain(data, size, 1, what, &chain));
		*out = sk_X509_shift(chain);
		sk_X509_free(chain);
		return SCONE_ERR_OK;
	}
	x = size <= INT32_MAX ? d2i_X509(NULL, &p, (long)size) : NULL;
	ERR_clear_error();
	if (!x)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: not a DER or PEM certificate", what);
	if (p != data + size) {
		X509_free(x);
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %zu bytes after the certificate", what,
				     size - (size_t)(p - data));
	}
	*out = x;
	return SCONE_ERR_OK;
}

enum scone_err x509_crl_parse(const uint8_t *data, size_t size, const char *what, X509_CRL **out)
{
	const unsigned char *p = data;
	X509_CRL *crl = NULL;
	size_t used = size;

	if (is_pem(data, size)) {
		BIO *bio = BIO_new_mem_buf(data, (int)size);
		crl = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
		if (crl) { /* nothing but newlines may follow */
			char c;
			while (BIO_read(bio, &c, 1) == 1)
				if (c != '\n' && c != '\r')
					used = 0;
		}
		BIO_free(bio);
	} else if (size <= INT32_MAX) {
		crl = d2i_X509_CRL(NULL, &p, (long)size);
		used = (size_t)(p - data);
	}
	ERR_clear_error();
	if (!crl)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: not a DER or PEM CRL", what);
	if (used != size) {
		X509_CRL_free(crl);
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: unexpected bytes after the CRL", what);
	}
	*out = crl;
	return SCONE_ERR_OK;
}

void x509_cn(X509 *c, char *out, size_t size)
{
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, out, (int)size) < 0)
		snprintf(out, size, "%s", "?");
}

void x509_issuer_cn(X509 *c, char *out, size_t size)
{
	if (X509_NAME_get_text_by_NID(X509_get_issuer_name(c), NID_commonName, out, (int)size) < 0)
		snprintf(out, size, "%s", "?");
}

enum scone_err x509_time(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return scone_err_set(SCONE_ERR_MALFORMED, "invalid ASN.1 time");
	*out =
	    scone_utc_seconds(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return SCONE_ERR_OK;
}

static enum scone_err chain_error(X509_STORE_CTX *ctx, X509 *leaf, int64_t at, const char *what)
{
	int code = X509_STORE_CTX_get_error(ctx), depth = X509_STORE_CTX_get_error_depth(ctx);
	X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
	char cn[96], when[SCONE_RFC3339_SIZE], lim[SCONE_RFC3339_SIZE];
	int64_t t = 0;

	x509_cn(bad ? bad : leaf, cn, sizeof(cn));
	scone_rfc3339_format(at, when);
	if (code == X509_V_ERR_CERT_HAS_EXPIRED || code == X509_V_ERR_CERT_NOT_YET_VALID) {
		bool expired = code == X509_V_ERR_CERT_HAS_EXPIRED;
		if (!bad || x509_time(expired ? X509_get0_notAfter(bad) : X509_get0_notBefore(bad), &t))
			t = 0;
		scone_rfc3339_format(t, lim);
		return scone_err_set(SCONE_ERR_EXPIRED,
				     "%s: certificate \"%s\" (depth %d) %s %s; verification time %s", what,
				     cn, depth, expired ? "expired on" : "is not valid before", lim, when);
	}
	return scone_err_set(SCONE_ERR_UNTRUSTED, "%s: certificate \"%s\" (depth %d): %s", what, cn, depth,
			     X509_verify_cert_error_string(code));
}

enum scone_err x509_verify_chain(X509 *leaf, STACK_OF(X509) * untrusted, X509 *anchor, int64_t at,
				 bool strict, const char *what)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	unsigned long flags = strict ? X509_V_FLAG_X509_STRICT : 0;
	enum scone_err err = SCONE_ERR_OK;

	if (!store || !ctx || X509_STORE_add_cert(store, anchor) != 1 ||
	    X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
		err = scone_err_set(SCONE_ERR_NOMEM, "%s: cannot set up the verification", what);
		goto out;
	}
	if (!(X509_get_extension_flags(anchor) & EXFLAG_SS))
		flags |= X509_V_FLAG_PARTIAL_CHAIN;
	if (at == X509_NO_TIME)
		flags |= X509_V_FLAG_NO_CHECK_TIME;
	X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), flags);
	if (at != X509_NO_TIME)
		X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)at);
	X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx), X509_CHAIN_MAX);
	if (X509_verify_cert(ctx) != 1)
		err = chain_error(ctx, leaf, at, what);
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return err;
}

enum scone_err x509_crl_current(X509_CRL *crl, int64_t at, const char *what, const char *fetch_hint)
{
	int64_t this_update, next_update;
	char a[SCONE_RFC3339_SIZE], b[SCONE_RFC3339_SIZE], when[SCONE_RFC3339_SIZE];

	if (x509_time(X509_CRL_get0_lastUpdate(crl), &this_update) || !X509_CRL_get0_nextUpdate(crl) ||
	    x509_time(X509_CRL_get0_nextUpdate(crl), &next_update))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: thisUpdate/nextUpdate missing or invalid",
				     what);
	if (at < this_update || at > next_update) {
		scone_rfc3339_format(this_update, a);
		scone_rfc3339_format(next_update, b);
		scone_rfc3339_format(at, when);
		return scone_err_set(SCONE_ERR_EXPIRED, "%s: valid %s..%s, not at %s: fetch %s", what, a, b,
				     when, fetch_hint);
	}
	return SCONE_ERR_OK;
}

enum scone_err x509_crl_check(X509_CRL *crl, X509 *issuer, int64_t at, const char *what,
			      const char *fetch_hint)
{
	EVP_PKEY *key = X509_get0_pubkey(issuer);

	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0)
		return scone_err_set(SCONE_ERR_UNTRUSTED,
				     "%s: issued by another CA than the certificate's issuer", what);
	if (!key || X509_CRL_verify(crl, key) != 1) {
		ERR_clear_error();
		return scone_err_set(SCONE_ERR_UNTRUSTED,
				     "%s: signature does not verify with the issuer's key", what);
	}
	return at == X509_NO_TIME ? SCONE_ERR_OK : x509_crl_current(crl, at, what, fetch_hint);
}

bool x509_crl_lists(X509_CRL *crl, X509 *cert)
{
	X509_REVOKED *rev = NULL;

	return X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(cert)) == 1;
}

enum scone_err x509_ext_value(X509 *c, const char *oid, const char *what, struct scone_rbuf *out,
			      bool *present)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int at, again;
	const ASN1_OCTET_STRING *v;

	*present = false;
	if (!obj)
		return scone_err_set(SCONE_ERR_NOMEM, "%s: out of memory", what);
	at = X509_get_ext_by_OBJ(c, obj, -1);
	again = at >= 0 ? X509_get_ext_by_OBJ(c, obj, at) : -1;
	ASN1_OBJECT_free(obj);
	if (at < 0)
		return SCONE_ERR_OK;
	if (again >= 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: extension %s appears twice", what, oid);
	v = X509_EXTENSION_get_data(X509_get_ext(c, at));
	scone_rbuf_init(out, ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v), what);
	*present = true;
	return SCONE_ERR_OK;
}

enum scone_err x509_sha256(X509 *c, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_X509(c, &der);

	if (n <= 0)
		return scone_err_set(SCONE_ERR_CRYPTO, "cannot encode a certificate");
	scone_sha256(der, (size_t)n, out);
	OPENSSL_free(der);
	return SCONE_ERR_OK;
}

static enum scone_err narrow(X509 *c, int64_t *nb, int64_t *na)
{
	int64_t b, a;

	if (x509_time(X509_get0_notBefore(c), &b) || x509_time(X509_get0_notAfter(c), &a))
		return scone_err_set(SCONE_ERR_MALFORMED, "certificate validity period does not parse");
	if (b > *nb)
		*nb = b;
	if (a < *na)
		*na = a;
	return SCONE_ERR_OK;
}

enum scone_err x509_validity(STACK_OF(X509) * chain, X509 *extra, int64_t *not_before, int64_t *not_after)
{
	*not_before = INT64_MIN;
	*not_after = INT64_MAX;
	for (int i = 0; chain && i < sk_X509_num(chain); i++)
		SCONE_TRY(narrow(sk_X509_value(chain, i), not_before, not_after));
	return extra ? narrow(extra, not_before, not_after) : SCONE_ERR_OK;
}

enum scone_err x509_check_window(int64_t not_before, int64_t not_after, int64_t at, const char *what)
{
	char a[SCONE_RFC3339_SIZE], b[SCONE_RFC3339_SIZE], when[SCONE_RFC3339_SIZE];

	if (at >= not_before && at <= not_after)
		return SCONE_ERR_OK;
	scone_rfc3339_format(not_before < 0 ? 0 : not_before, a);
	scone_rfc3339_format(not_after, b);
	scone_rfc3339_format(at, when);
	return scone_err_set(SCONE_ERR_EXPIRED, "%s: valid %s..%s, not at %s", what, a, b, when);
}
