/*
 * secrets_x509.c - the OpenSSL side of CAS secrets: key generation for the
 * five key types, strict DER codecs (PKCS#8, SPKI, certificates), explicit
 * PEM/DER values from sessions, and certificate issuance.
 *
 * Certificates: version 3, random 126-bit serial (16 bytes), notBefore now
 * minus one hour (clock skew), notAfter now plus valid_for days, SHA-256
 * signatures (none for Ed25519 issuers: the algorithm fixes its hash).
 * CA: basicConstraints critical CA:TRUE, keyUsage critical keyCertSign,
 * cRLSign. Leaf: basicConstraints critical CA:FALSE, keyUsage critical
 * digitalSignature (+keyEncipherment for RSA keys), extendedKeyUsage
 * serverAuth and/or clientAuth by endpoint. Both: subjectKeyIdentifier,
 * authorityKeyIdentifier when issued by a CA, subjectAltName from dns/ips
 * (built as GENERAL_NAMEs, never through a config string, so a name cannot
 * smuggle in another entry). Subject: CN only, = common_name, else the
 * first DNS name, else the secret's name (docs/sessions.md).
 */
#include "secrets_internal.h"

#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/tls.h"

/* Set err with OpenSSL's reason for the last failure appended; empty the queue. */
static enum scone_err ssl_err(enum scone_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static enum scone_err ssl_err(enum scone_err e, const char *fmt, ...)
{
	unsigned long code = ERR_peek_last_error();
	const char *reason = code ? ERR_reason_error_string(code) : NULL;
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(what, sizeof(what), fmt, ap) < 0)
		what[0] = '\0';
	va_end(ap);
	ERR_clear_error();
	return scone_err_set(e, "%s%s%s", what, reason ? ": " : "", reason ? reason : "");
}

/* ---- keys ---------------------------------------------------------------- */

enum scone_err sec_key_generate(uint8_t key_type, EVP_PKEY **out)
{
	EVP_PKEY *k;

	switch (key_type) {
	case SCONE_KEY_P256:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case SCONE_KEY_P384:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case SCONE_KEY_ED25519:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		break;
	case SCONE_KEY_RSA2048:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case SCONE_KEY_RSA3072:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	default:
		return scone_err_set(SCONE_ERR_INVALID,
				     "key type %u is not one of P-256, P-384, Ed25519, "
				     "RSA-2048, RSA-3072",
				     key_type);
	}
	if (!k)
		return ssl_err(SCONE_ERR_CRYPTO, "generating a key of type %u failed", key_type);
	*out = k;
	return SCONE_ERR_OK;
}

static uint8_t ec_key_type(const EVP_PKEY *k)
{
	char group[80];
	size_t len = 0;
	int nid;

	if (!EVP_PKEY_get_group_name(k, group, sizeof(group), &len))
		return 0;
	nid = OBJ_sn2nid(group);
	if (nid == NID_X9_62_prime256v1)
		return SCONE_KEY_P256;
	if (nid == NID_secp384r1)
		return SCONE_KEY_P384;
	return 0;
}

enum scone_err sec_key_type_of(const EVP_PKEY *k, uint8_t *out)
{
	uint8_t t = 0;

	if (EVP_PKEY_is_a(k, "ED25519"))
		t = SCONE_KEY_ED25519;
	else if (EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 2048)
		t = SCONE_KEY_RSA2048;
	else if (EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) == 3072)
		t = SCONE_KEY_RSA3072;
	else if (EVP_PKEY_is_a(k, "EC"))
		t = ec_key_type(k);
	ERR_clear_error();
	if (!t)
		return scone_err_set(SCONE_ERR_INVALID,
				     "key of type %s (%d bits) is not one of P-256, P-384, "
				     "Ed25519, RSA-2048, RSA-3072",
				     EVP_PKEY_get0_type_name(k), EVP_PKEY_get_bits(k));
	*out = t;
	return SCONE_ERR_OK;
}

static enum scone_err blob_alloc(struct sec_blob *out, int len, const char *what)
{
	if (len <= 0)
		return ssl_err(SCONE_ERR_CRYPTO, "encoding %s failed", what);
	return sec_blob_dup(out, NULL, (size_t)len);
}

/* The second i2d pass wrote written bytes into out: all of them, or out is freed. */
static enum scone_err blob_filled(struct sec_blob *out, int written, const char *what)
{
	if (written == (int)out->n)
		return SCONE_ERR_OK;
	sec_blob_free(out);
	return ssl_err(SCONE_ERR_CRYPTO, "encoding %s failed", what);
}

enum scone_err sec_key_to_pkcs8(EVP_PKEY *k, struct sec_blob *out)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
	unsigned char *p;
	enum scone_err err;

	if (!p8)
		return ssl_err(SCONE_ERR_CRYPTO, "converting a private key to PKCS#8 failed");
	err = blob_alloc(out, i2d_PKCS8_PRIV_KEY_INFO(p8, NULL), "a PKCS#8 private key");
	if (err == SCONE_ERR_OK) {
		p = out->p;
		err = blob_filled(out, i2d_PKCS8_PRIV_KEY_INFO(p8, &p), "a PKCS#8 private key");
	}
	PKCS8_PRIV_KEY_INFO_free(p8);
	return err;
}

enum scone_err sec_key_to_spki(EVP_PKEY *k, struct sec_blob *out)
{
	unsigned char *p;

	SCONE_TRY(blob_alloc(out, i2d_PUBKEY(k, NULL), "a public key"));
	p = out->p;
	return blob_filled(out, i2d_PUBKEY(k, &p), "a public key");
}

enum scone_err sec_cert_to_der(X509 *x, struct sec_blob *out)
{
	unsigned char *p;

	SCONE_TRY(blob_alloc(out, i2d_X509(x, NULL), "a certificate"));
	p = out->p;
	return blob_filled(out, i2d_X509(x, &p), "a certificate");
}

static enum scone_err der_len_ok(size_t n, const char *what)
{
	if (n == 0 || n > SEC_VALUE_MAX)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s of %zu bytes (want 1..%d)", what, n,
				     SEC_VALUE_MAX);
	return SCONE_ERR_OK;
}

enum scone_err sec_key_from_pkcs8(const uint8_t *p, size_t n, EVP_PKEY **out)
{
	const unsigned char *q = p;
	PKCS8_PRIV_KEY_INFO *p8;
	EVP_PKEY *k = NULL;

	SCONE_TRY(der_len_ok(n, "PKCS#8 private key"));
	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, (long)n);
	if (p8 && q == p + n)
		k = EVP_PKCS82PKEY(p8);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (!k)
		return ssl_err(SCONE_ERR_MALFORMED, "PKCS#8 private key of %zu bytes does not decode", n);
	*out = k;
	return SCONE_ERR_OK;
}

enum scone_err sec_cert_from_der(const uint8_t *p, size_t n, X509 **out)
{
	const unsigned char *q = p;
	X509 *x;

	SCONE_TRY(der_len_ok(n, "certificate"));
	x = d2i_X509(NULL, &q, (long)n);
	if (x && q != p + n) {
		X509_free(x);
		x = NULL;
	}
	if (!x)
		return ssl_err(SCONE_ERR_MALFORMED, "certificate of %zu bytes does not decode", n);
	*out = x;
	return SCONE_ERR_OK;
}

/* A DER header: constructed SEQUENCE of definite length within what is left. */
static bool der_sequence(const unsigned char **q, const unsigned char *end, long *len)
{
	int tag, xclass;

	return ASN1_get_object(q, len, &tag, &xclass, end - *q) == V_ASN1_CONSTRUCTED &&
	       tag == V_ASN1_SEQUENCE && xclass == V_ASN1_UNIVERSAL;
}

/*
 * The key type an AlgorithmIdentifier names: EC with the P-256 or P-384
 * named curve, Ed25519, or RSA (either RSA type: the size needs a full key
 * decode, which OpenSSL 3.0 makes slow; parse leaves it to use).
 */
static bool alg_is(const X509_ALGOR *alg, uint8_t key_type)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype, nid;

	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	nid = OBJ_obj2nid(obj);
	switch (key_type) {
	case SCONE_KEY_P256:
	case SCONE_KEY_P384:
		if (nid != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT)
			return false;
		nid = OBJ_obj2nid(pval);
		return nid == (key_type == SCONE_KEY_P256 ? NID_X9_62_prime256v1 : NID_secp384r1);
	case SCONE_KEY_ED25519:
		return nid == NID_ED25519;
	case SCONE_KEY_RSA2048:
	case SCONE_KEY_RSA3072:
		return nid == NID_rsaEncryption;
	default:
		return false;
	}
}

enum scone_err sec_pkcs8_check(const uint8_t *p, size_t n, uint8_t key_type)
{
	const unsigned char *q = p;
	const X509_ALGOR *alg = NULL;
	PKCS8_PRIV_KEY_INFO *p8;
	bool ok;

	SCONE_TRY(der_len_ok(n, "PKCS#8 private key"));
	p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, (long)n);
	ok = p8 && q == p + n && PKCS8_pkey_get0(NULL, NULL, NULL, &alg, p8) && alg_is(alg, key_type);
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (!ok)
		return ssl_err(SCONE_ERR_MALFORMED,
			       "PKCS#8 private key of %zu bytes does not decode as key type %u", n, key_type);
	return SCONE_ERR_OK;
}

/* SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }, read without decoding the key. */
enum scone_err sec_spki_check(const uint8_t *p, size_t n, uint8_t key_type)
{
	const unsigned char *q = p, *end = p + n;
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *bits = NULL;
	long len = 0;
	bool ok;

	SCONE_TRY(der_len_ok(n, "public key"));
	ok = der_sequence(&q, end, &len) && len == end - q;
	ok = ok && (alg = d2i_X509_ALGOR(NULL, &q, end - q)) != NULL;
	ok = ok && (bits = d2i_ASN1_BIT_STRING(NULL, &q, end - q)) != NULL && q == end &&
	     alg_is(alg, key_type);
	X509_ALGOR_free(alg);
	ASN1_BIT_STRING_free(bits);
	if (!ok)
		return ssl_err(SCONE_ERR_MALFORMED,
			       "public key (SPKI) of %zu bytes does not decode as key type %u", n, key_type);
	return SCONE_ERR_OK;
}

/* Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, AlgorithmIdentifier, BIT STRING } */
enum scone_err sec_cert_check(const uint8_t *p, size_t n)
{
	const unsigned char *q = p, *end = p + n;
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *sig = NULL;
	long len = 0;
	bool ok;

	SCONE_TRY(der_len_ok(n, "certificate"));
	ok = der_sequence(&q, end, &len) && len == end - q && der_sequence(&q, end, &len);
	if (ok)
		q += len;
	ok = ok && (alg = d2i_X509_ALGOR(NULL, &q, end - q)) != NULL;
	ok = ok && (sig = d2i_ASN1_BIT_STRING(NULL, &q, end - q)) != NULL && q == end;
	X509_ALGOR_free(alg);
	ASN1_BIT_STRING_free(sig);
	if (!ok)
		return ssl_err(SCONE_ERR_MALFORMED, "certificate of %zu bytes is not a DER X.509 certificate",
			       n);
	return SCONE_ERR_OK;
}

/* ---- explicit values ------------------------------------------------------ */

enum scone_err sec_key_from_text(const char *what, const char *p, size_t n, bool public_only, EVP_PKEY **out)
{
	const unsigned char *q = (const unsigned char *)p;
	EVP_PKEY *k = NULL;
	BIO *b;

	if (n == 0 || n > SEC_VALUE_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "%s: value of %zu bytes (want 1..%d)", what, n,
				     SEC_VALUE_MAX);
	b = BIO_new_mem_buf(p, (int)n);
	if (!b)
		return ssl_err(SCONE_ERR_NOMEM, "%s: no memory", what);
	k = public_only ? PEM_read_bio_PUBKEY(b, NULL, scone_pem_no_passphrase, NULL)
			: PEM_read_bio_PrivateKey(b, NULL, scone_pem_no_passphrase, NULL);
	BIO_free(b);
	if (!k) {
		k = public_only ? d2i_PUBKEY(NULL, &q, (long)n) : d2i_AutoPrivateKey(NULL, &q, (long)n);
		if (k && q != (const unsigned char *)p + n) {
			EVP_PKEY_free(k);
			k = NULL;
		}
	}
	if (!k)
		return ssl_err(SCONE_ERR_INVALID, "%s: value is not an unencrypted %s key in PEM or DER",
			       what, public_only ? "public" : "private");
	ERR_clear_error();
	*out = k;
	return SCONE_ERR_OK;
}

static void certs_free(X509 **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		X509_free(v[i]);
}

enum scone_err sec_certs_from_text(const char *what, const char *p, size_t n, X509 **out, size_t *n_out)
{
	const unsigned char *q = (const unsigned char *)p;
	unsigned long last;
	X509 *x;
	BIO *b;

	*n_out = 0;
	if (n == 0 || n > SEC_VALUE_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "%s: value of %zu bytes (want 1..%d)", what, n,
				     SEC_VALUE_MAX);
	b = BIO_new_mem_buf(p, (int)n);
	if (!b)
		return ssl_err(SCONE_ERR_NOMEM, "%s: no memory", what);
	while ((x = PEM_read_bio_X509(b, NULL, scone_pem_no_passphrase, NULL)) != NULL) {
		if (*n_out == 1 + SEC_CHAIN_MAX) {
			X509_free(x);
			BIO_free(b);
			certs_free(out, *n_out);
			return scone_err_set(SCONE_ERR_INVALID, "%s: more than %d certificates", what,
					     1 + SEC_CHAIN_MAX);
		}
		out[(*n_out)++] = x;
	}
	BIO_free(b);
	last = ERR_peek_last_error();
	if (*n_out && ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
		ERR_clear_error();
		return SCONE_ERR_OK;
	}
	if (*n_out) {
		certs_free(out, *n_out);
		*n_out = 0;
		return ssl_err(SCONE_ERR_INVALID, "%s: a certificate after the first does not decode", what);
	}
	x = d2i_X509(NULL, &q, (long)n);
	if (!x || q != (const unsigned char *)p + n) {
		X509_free(x);
		return ssl_err(SCONE_ERR_INVALID, "%s: value is not a certificate in PEM or DER", what);
	}
	ERR_clear_error();
	out[(*n_out)++] = x;
	return SCONE_ERR_OK;
}

/* ---- certificates ---------------------------------------------------------- */

static bool dns_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_' || c == '*'))
			return false;
	}
	return true;
}

static enum scone_err san_add(GENERAL_NAMES *gens, int type, ASN1_STRING *value, const char *name)
{
	GENERAL_NAME *g = GENERAL_NAME_new();

	if (!g) {
		ASN1_STRING_free(value);
		return ssl_err(SCONE_ERR_NOMEM, "secret '%s': no memory for subjectAltName", name);
	}
	GENERAL_NAME_set0_value(g, type, value);
	if (!sk_GENERAL_NAME_push(gens, g)) {
		GENERAL_NAME_free(g);
		return ssl_err(SCONE_ERR_NOMEM, "secret '%s': no memory for subjectAltName", name);
	}
	return SCONE_ERR_OK;
}

static enum scone_err san_fill(GENERAL_NAMES *gens, const struct scone_secret *def)
{
	for (size_t i = 0; i < def->dns.n; i++) {
		ASN1_IA5STRING *s;
		if (!dns_name_ok(def->dns.v[i]))
			return scone_err_set(SCONE_ERR_INVALID,
					     "secret '%s': dns[%zu] '%.80s' is not a host name "
					     "(letters, digits, '-', '.', '_', '*'; at most 253)",
					     def->name, i, def->dns.v[i]);
		s = ASN1_IA5STRING_new();
		if (!s || !ASN1_STRING_set(s, def->dns.v[i], -1)) {
			ASN1_IA5STRING_free(s);
			return ssl_err(SCONE_ERR_NOMEM, "secret '%s': no memory for a DNS name", def->name);
		}
		SCONE_TRY(san_add(gens, GEN_DNS, s, def->name));
	}
	for (size_t i = 0; i < def->ips.n; i++) {
		ASN1_OCTET_STRING *ip = a2i_IPADDRESS(def->ips.v[i]);
		if (!ip)
			return ssl_err(SCONE_ERR_INVALID,
				       "secret '%s': ips[%zu] '%.80s' is not an IPv4 or IPv6 "
				       "address",
				       def->name, i, def->ips.v[i]);
		SCONE_TRY(san_add(gens, GEN_IPADD, ip, def->name));
	}
	return SCONE_ERR_OK;
}

static enum scone_err add_san(X509 *x, const struct scone_secret *def)
{
	GENERAL_NAMES *gens;
	enum scone_err err;

	if (def->dns.n == 0 && def->ips.n == 0)
		return SCONE_ERR_OK;
	gens = sk_GENERAL_NAME_new_null();
	if (!gens)
		return ssl_err(SCONE_ERR_NOMEM, "secret '%s': no memory for subjectAltName", def->name);
	err = san_fill(gens, def);
	if (err == SCONE_ERR_OK &&
	    X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		err = ssl_err(SCONE_ERR_CRYPTO, "secret '%s': adding subjectAltName failed", def->name);
	GENERAL_NAMES_free(gens);
	return err;
}

static enum scone_err add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, const char *name)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = e && X509_add_ext(x, e, -1);

	X509_EXTENSION_free(e);
	if (!ok)
		return ssl_err(SCONE_ERR_CRYPTO, "secret '%s': adding extension %s failed", name,
			       OBJ_nid2sn(nid));
	return SCONE_ERR_OK;
}

static enum scone_err leaf_usage(const struct sec_cert_req *req, const char **ku, const char **eku)
{
	const char *ep = req->def->endpoint;

	*ku = EVP_PKEY_is_a(req->key, "RSA") ? "critical,digitalSignature,keyEncipherment"
					     : "critical,digitalSignature";
	if (!ep)
		*eku = "serverAuth,clientAuth";
	else if (strcmp(ep, "server") == 0)
		*eku = "serverAuth";
	else if (strcmp(ep, "client") == 0)
		*eku = "clientAuth";
	else
		return scone_err_set(SCONE_ERR_INVALID,
				     "secret '%s': endpoint '%.40s' is not server or client", req->def->name,
				     ep);
	return SCONE_ERR_OK;
}

static enum scone_err add_extensions(X509 *x, const struct sec_cert_req *req)
{
	const char *name = req->def->name, *ku = "critical,keyCertSign,cRLSign", *eku = NULL;
	X509V3_CTX ctx;

	if (!req->ca)
		SCONE_TRY(leaf_usage(req, &ku, &eku));
	X509V3_set_ctx(&ctx, req->issuer ? req->issuer : x, x, NULL, NULL, 0);
	SCONE_TRY(add_ext(x, &ctx, NID_basic_constraints, req->ca ? "critical,CA:TRUE" : "critical,CA:FALSE",
			  name));
	SCONE_TRY(add_ext(x, &ctx, NID_key_usage, ku, name));
	if (eku)
		SCONE_TRY(add_ext(x, &ctx, NID_ext_key_usage, eku, name));
	SCONE_TRY(add_ext(x, &ctx, NID_subject_key_identifier, "hash", name));
	if (req->issuer)
		SCONE_TRY(add_ext(x, &ctx, NID_authority_key_identifier, "keyid", name));
	return add_san(x, req->def);
}

static enum scone_err set_serial(X509 *x, const char *name)
{
	uint8_t raw[16];
	BIGNUM *bn;
	int ok;

	SCONE_TRY(scone_random(raw, sizeof(raw)));
	raw[0] = (uint8_t)((raw[0] & 0x7f) | 0x40); /* positive, and 16 bytes long in DER */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	if (!ok)
		return ssl_err(SCONE_ERR_CRYPTO, "secret '%s': setting the serial number failed", name);
	return SCONE_ERR_OK;
}

/* common_name; else the first DNS name; else the secret's name (cut to 64: names are ASCII). */
static enum scone_err set_subject(X509 *x, const struct scone_secret *def)
{
	const char *cn = def->common_name;
	X509_NAME *nm = X509_get_subject_name(x);
	int len = -1;

	if (!cn && def->dns.n && strlen(def->dns.v[0]) <= 64)
		cn = def->dns.v[0];
	if (!cn) {
		cn = def->name;
		len = (int)strnlen(cn, 64);
	}
	if (!X509_NAME_add_entry_by_NID(nm, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, len, -1,
					0))
		return ssl_err(SCONE_ERR_INVALID,
			       "secret '%s': common name '%.80s' is not 1..64 characters "
			       "of UTF-8",
			       def->name, cn);
	return SCONE_ERR_OK;
}

static enum scone_err set_fields(X509 *x, const struct sec_cert_req *req)
{
	unsigned days = req->def->valid_for_days ? req->def->valid_for_days : SEC_DAYS_DEFAULT;
	const char *name = req->def->name;
	X509_NAME *issuer;

	if (days > SEC_DAYS_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "secret '%s': valid_for of %u days exceeds %u", name,
				     days, SEC_DAYS_MAX);
	SCONE_TRY(set_subject(x, req->def));
	SCONE_TRY(set_serial(x, name));
	issuer = req->issuer ? X509_get_subject_name(req->issuer) : X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) || !X509_set_issuer_name(x, issuer) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) || !X509_set_pubkey(x, req->key))
		return ssl_err(SCONE_ERR_CRYPTO, "secret '%s': setting certificate fields failed", name);
	return SCONE_ERR_OK;
}

enum scone_err sec_cert_issue(const struct sec_cert_req *req, X509 **out)
{
	EVP_PKEY *signer = req->issuer ? req->issuer_key : req->key;
	const EVP_MD *md;
	enum scone_err err;
	X509 *x = X509_new();

	if (!x)
		return ssl_err(SCONE_ERR_NOMEM, "secret '%s': no memory for a certificate", req->def->name);
	err = set_fields(x, req);
	if (err == SCONE_ERR_OK)
		err = add_extensions(x, req);
	if (err == SCONE_ERR_OK) {
		md = EVP_PKEY_is_a(signer, "ED25519") ? NULL : EVP_sha256();
		if (X509_sign(x, signer, md) <= 0)
			err = ssl_err(SCONE_ERR_CRYPTO, "secret '%s': signing the certificate failed",
				      req->def->name);
	}
	if (err != SCONE_ERR_OK) {
		X509_free(x);
		ERR_clear_error();
		return err;
	}
	*out = x;
	return SCONE_ERR_OK;
}
