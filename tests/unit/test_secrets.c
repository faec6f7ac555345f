/*
 * test_secrets.c - unit tests for src/cas/secrets*: generation of every kind
 * and key type, rendering in every format (each output parsed back with
 * OpenSSL and checked: key type and curve, CA flag, key usage, EKU by
 * endpoint, SAN entries, signatures, validity), the format table, the
 * rules for keeping values across session updates, explicit values, the
 * serialized form (round trip; every truncation, bit flip and garbage
 * input refused or re-encoded identically) and generation errors.
 *
 * Sessions are built by hand (the YAML parser is not needed): sess_*
 * helpers allocate the model with malloc/strdup as the parser does, and
 * scone_session_free releases it.
 */
#include "helpers.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "cas/secrets.h"
#include "lib/crypto.h"
#include "lib/base32.h"
#include "lib/hex.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define OUT_MAX (1 << 20)
#define FLAG_OWN_KEY 0x02 /* record flag, secrets_codec.c */

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-./:=@_~";

/* ---- session model builder ------------------------------------------------ */

static char *xstrdup(const char *s)
{
	char *d = s ? strdup(s) : NULL;
	assert_true(!s || d);
	return d;
}

static struct scone_session *sess_new(void)
{
	struct scone_session *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	return s;
}

/* The returned pointer is valid until the next sess_secret on s. */
static struct scone_secret *sess_secret(struct scone_session *s, const char *name,
					enum scone_secret_kind kind)
{
	struct scone_secret *x;

	s->secrets = realloc(s->secrets, (s->n_secrets + 1) * sizeof(*s->secrets));
	assert_non_null(s->secrets);
	x = &s->secrets[s->n_secrets++];
	memset(x, 0, sizeof(*x));
	x->name = xstrdup(name);
	x->kind = kind;
	return x;
}

static struct scone_secret *sess_key(struct scone_session *s, const char *name, enum scone_key_type t,
				     bool migrate)
{
	struct scone_secret *x = sess_secret(s, name, SCONE_SECRET_PRIVATE_KEY);
	x->key_type = t;
	x->migrate = migrate;
	return x;
}

static struct scone_secret *sess_cert(struct scone_session *s, const char *name, bool ca, const char *issuer,
				      const char *private_key)
{
	struct scone_secret *x = sess_secret(s, name, ca ? SCONE_SECRET_X509_CA : SCONE_SECRET_X509);
	x->issuer = xstrdup(issuer);
	x->private_key = xstrdup(private_key);
	return x;
}

static void set_value(struct scone_secret *x, const void *v, size_t n)
{
	free(x->value);
	x->value = malloc(n + 1);
	assert_non_null(x->value);
	memcpy(x->value, v, n);
	x->value[n] = '\0';
	x->value_len = n;
}

static void strs_add(struct scone_strs *v, const char *s)
{
	v->v = realloc(v->v, (v->n + 2) * sizeof(*v->v));
	assert_non_null(v->v);
	v->v[v->n++] = xstrdup(s);
	v->v[v->n] = NULL;
}

static struct scone_volume *sess_volume(struct scone_session *s, const char *name)
{
	struct scone_volume *v;

	s->volumes = realloc(s->volumes, (s->n_volumes + 1) * sizeof(*s->volumes));
	assert_non_null(s->volumes);
	v = &s->volumes[s->n_volumes++];
	memset(v, 0, sizeof(*v));
	v->name = xstrdup(name);
	return v;
}

static struct scone_import *import_new(const char *session)
{
	struct scone_import *im = calloc(1, sizeof(*im));
	assert_non_null(im);
	im->session = xstrdup(session);
	return im;
}

/* The policy module owns the model's memory rules; the builder above follows them. */
static void sess_free(struct scone_session *s)
{
	scone_session_free(s);
}

/* ---- rendering helpers --------------------------------------------------------- */

static void render(const struct scone_secret_set *set, const char *name, const char *fmt,
		   struct scone_wbuf *w)
{
	enum scone_err err;

	scone_wbuf_init(w, OUT_MAX, 1);
	err = scone_secrets_render(set, name, fmt, w);
	if (err != SCONE_ERR_OK)
		fail_msg("render %s:%s: %s: %s", name, fmt ? fmt : "(none)", scone_errname(err),
			 scone_err_detail());
}

/* Two renders give the same bytes. */
static void assert_same_render(const struct scone_secret_set *a, const char *an, const char *af,
			       const struct scone_secret_set *b, const char *bn, const char *bf, bool same)
{
	struct scone_wbuf x, y;

	render(a, an, af, &x);
	render(b, bn, bf, &y);
	if (same) {
		assert_int_equal(x.size, y.size);
		assert_memory_equal(x.data, y.data, x.size);
	} else {
		assert_false(x.size == y.size && memcmp(x.data, y.data, x.size) == 0);
	}
	scone_wbuf_free(&x);
	scone_wbuf_free(&y);
}

static BIO *bio_of(const struct scone_wbuf *w)
{
	BIO *b = BIO_new_mem_buf(w->data, (int)w->size);
	assert_non_null(b);
	return b;
}

static X509 *cert_of(const struct scone_secret_set *set, const char *name, const char *fmt)
{
	struct scone_wbuf w;
	X509 *x;

	render(set, name, fmt, &w);
	if (fmt && strcmp(fmt, "der") == 0) {
		const unsigned char *p = w.data;
		x = d2i_X509(NULL, &p, (long)w.size);
		assert_ptr_equal(p, w.data + w.size);
	} else {
		BIO *b = bio_of(&w);
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	assert_non_null(x);
	scone_wbuf_free(&w);
	return x;
}

static EVP_PKEY *key_of(const struct scone_secret_set *set, const char *name, const char *fmt)
{
	struct scone_wbuf w;
	EVP_PKEY *k;
	BIO *b;

	render(set, name, fmt, &w);
	b = bio_of(&w);
	assert_memory_equal(w.data, "-----BEGIN PRIVATE KEY-----\n", 28);
	k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	assert_non_null(k);
	BIO_free(b);
	scone_wbuf_free(&w);
	return k;
}

static EVP_PKEY *pub_of(const struct scone_secret_set *set, const char *name, const char *fmt)
{
	struct scone_wbuf w;
	EVP_PKEY *k;
	BIO *b;

	render(set, name, fmt, &w);
	b = bio_of(&w);
	assert_memory_equal(w.data, "-----BEGIN PUBLIC KEY-----\n", 27);
	k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	assert_non_null(k);
	BIO_free(b);
	scone_wbuf_free(&w);
	return k;
}

static void assert_key_type(const EVP_PKEY *k, enum scone_key_type t)
{
	char group[80] = "";
	size_t len;

	switch (t) {
	case SCONE_KEY_P256:
	case SCONE_KEY_P384:
		assert_true(EVP_PKEY_is_a(k, "EC"));
		assert_true(EVP_PKEY_get_group_name(k, group, sizeof(group), &len));
		assert_string_equal(group, t == SCONE_KEY_P256 ? "prime256v1" : "secp384r1");
		break;
	case SCONE_KEY_ED25519:
		assert_true(EVP_PKEY_is_a(k, "ED25519"));
		break;
	case SCONE_KEY_RSA2048:
	case SCONE_KEY_RSA3072:
		assert_true(EVP_PKEY_is_a(k, "RSA"));
		assert_int_equal(EVP_PKEY_get_bits(k), t == SCONE_KEY_RSA2048 ? 2048 : 3072);
		break;
	}
}

static struct scone_secret_set *generate(const struct scone_session *s, const struct scone_secret_set *prev)
{
	struct scone_secret_set *set = NULL;
	enum scone_err err = scone_secrets_generate(s, prev, &set);

	if (err != SCONE_ERR_OK)
		fail_msg("generate: %s: %s", scone_errname(err), scone_err_detail());
	assert_non_null(set);
	return set;
}

static void assert_generate_fails(const struct scone_session *s, enum scone_err want, const char *detail)
{
	struct scone_secret_set *set = (struct scone_secret_set *)1;

	assert_int_equal(scone_secrets_generate(s, NULL, &set), want);
	assert_null(set);
	if (!strstr(scone_err_detail(), detail))
		fail_msg("detail '%s' lacks '%s'", scone_err_detail(), detail);
	assert_int_equal(ERR_peek_error(), 0);
}

/* ---- ascii and binary ------------------------------------------------------------ */

static void check_bytes_formats(const struct scone_secret_set *set, const char *name, size_t n, bool binary)
{
	struct scone_wbuf raw, hex, b64;
	uint8_t *dec = malloc(n + 3);

	assert_non_null(dec);
	render(set, name, NULL, &raw);
	render(set, name, "hex", &hex);
	render(set, name, "base64", &b64);
	assert_int_equal(raw.size, n);
	assert_int_equal(hex.size, 2 * n);
	for (size_t i = 0; i < hex.size; i++)
		assert_non_null(strchr("0123456789abcdef", hex.data[i]));
	assert_ok(scone_wbuf_u8(&hex, 0));
	assert_ok(scone_hex_decode(dec, n, (const char *)hex.data, "hex"));
	assert_memory_equal(dec, raw.data, n);
	assert_int_equal(b64.size, (n + 2) / 3 * 4);
	assert_null(memchr(b64.data, '\n', b64.size));
	assert_int_equal(EVP_DecodeBlock(dec, b64.data, (int)b64.size), (int)((n + 2) / 3 * 3));
	assert_memory_equal(dec, raw.data, n);
	if (binary) { /* base32nopad (binary only, as in SCONE): upper case, no '=', and it decodes to the value */
		struct scone_wbuf b32;
		size_t got = 0;
		render(set, name, "base32nopad", &b32);
		assert_int_equal(b32.size, (n * 8 + 4) / 5);
		assert_null(memchr(b32.data, '=', b32.size));
		assert_ok(scone_base32_decode((const char *)b32.data, b32.size, dec, n + 3, &got, "b32"));
		assert_int_equal(got, n);
		assert_memory_equal(dec, raw.data, n);
		scone_wbuf_free(&b32);
	}
	scone_wbuf_free(&raw);
	scone_wbuf_free(&hex);
	scone_wbuf_free(&b64);
	free(dec);
}

TEST(test_ascii_binary)
{
	struct scone_session *s = sess_new();
	struct scone_secret_set *set;
	struct scone_wbuf w;
	bool seen[256] = {false};
	size_t distinct = 0;
	static const uint8_t bin[] = {0, 1, 2, 0xff, 0, 0x80, '$', '"'};

	sess_secret(s, "a", SCONE_SECRET_ASCII);
	sess_secret(s, "big", SCONE_SECRET_ASCII)->size = 4096;
	sess_secret(s, "c", SCONE_SECRET_BINARY);
	sess_secret(s, "d", SCONE_SECRET_BINARY)->size = 49;
	set_value(sess_secret(s, "e", SCONE_SECRET_ASCII), "hello world", 11);
	set_value(sess_secret(s, "f", SCONE_SECRET_BINARY), bin, sizeof(bin));
	sess_secret(s, "one", SCONE_SECRET_BINARY)->size = 1;
	set = generate(s, NULL);

	check_bytes_formats(set, "a", 20, false);
	check_bytes_formats(set, "big", 4096, false);
	check_bytes_formats(set, "c", 20, true); /* SCONE's default size for binary too */
	check_bytes_formats(set, "d", 49, true);
	check_bytes_formats(set, "e", 11, false);
	check_bytes_formats(set, "f", sizeof(bin), true);
	check_bytes_formats(set, "one", 1, true);

	/* Generated ascii draws from the documented alphabet, all of it. */
	render(set, "big", NULL, &w);
	for (size_t i = 0; i < w.size; i++) {
		assert_non_null(memchr(alphabet, w.data[i], sizeof(alphabet) - 1));
		assert_null(strchr("'\"\\$` \t\n#!%;&|<>", w.data[i]));
		distinct += !seen[w.data[i]];
		seen[w.data[i]] = true;
	}
	assert_int_equal(distinct, sizeof(alphabet) - 1);
	scone_wbuf_free(&w);

	render(set, "e", NULL, &w);
	assert_memory_equal(w.data, "hello world", 11);
	scone_wbuf_free(&w);
	render(set, "f", NULL, &w);
	assert_memory_equal(w.data, bin, sizeof(bin));
	scone_wbuf_free(&w);
	render(set, "f", "hex", &w);
	assert_memory_equal(w.data, "000102ff00802422", 16);
	scone_wbuf_free(&w);
	render(set, "e", "base64", &w);
	assert_int_equal(w.size, 16);
	assert_memory_equal(w.data, "aGVsbG8gd29ybGQ=", 16);
	scone_wbuf_free(&w);

	/* Appending: render adds to what the buffer holds. */
	scone_wbuf_init(&w, OUT_MAX, 1);
	assert_ok(scone_wbuf_put(&w, "x=", 2));
	assert_ok(scone_secrets_render(set, "e", NULL, &w));
	assert_int_equal(w.size, 13);
	assert_memory_equal(w.data, "x=hello world", 13);
	scone_wbuf_free(&w);

	scone_secrets_free(set);
	sess_free(s);
}

/* ---- keys ---------------------------------------------------------------------------- */

static void check_key(const struct scone_secret_set *set, const char *name, const char *pub,
		      enum scone_key_type t)
{
	EVP_PKEY *k = key_of(set, name, NULL), *k2 = key_of(set, name, "pem"),
		 *k3 = key_of(set, name, "privatekey");
	EVP_PKEY *p = pub_of(set, name, "publickey"), *p2 = pub_of(set, pub, NULL), *kd, *pd;
	struct scone_wbuf der, pder, pem, ours;
	const unsigned char *q;
	BIO *mem = BIO_new(BIO_s_mem());
	char *mem_data;
	long mem_len;

	assert_key_type(k, t);
	assert_key_type(p, t);
	assert_int_equal(EVP_PKEY_eq(k, k2), 1);
	assert_int_equal(EVP_PKEY_eq(k, k3), 1);
	assert_int_equal(EVP_PKEY_eq(k, p), 1);
	assert_int_equal(EVP_PKEY_eq(k, p2), 1);

	/* der is the PKCS#8 DER of the same key; the PEM is what OpenSSL writes. */
	render(set, name, "der", &der);
	q = der.data;
	kd = d2i_AutoPrivateKey(NULL, &q, (long)der.size);
	assert_non_null(kd);
	assert_int_equal(EVP_PKEY_eq(k, kd), 1);
	assert_non_null(mem);
	assert_int_equal(PEM_write_bio_PKCS8PrivateKey(mem, k, NULL, NULL, 0, NULL, NULL), 1);
	mem_len = BIO_get_mem_data(mem, &mem_data);
	render(set, name, NULL, &ours);
	assert_int_equal(ours.size, (size_t)mem_len);
	assert_memory_equal(ours.data, mem_data, ours.size);

	/* The public-key secret: pem and der of the same SPKI. */
	render(set, pub, "pem", &pem);
	render(set, pub, "der", &pder);
	q = pder.data;
	pd = d2i_PUBKEY(NULL, &q, (long)pder.size);
	assert_non_null(pd);
	assert_int_equal(EVP_PKEY_eq(k, pd), 1);
	assert_same_render(set, pub, "pem", set, name, "publickey", true);

	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	EVP_PKEY_free(kd);
	EVP_PKEY_free(p);
	EVP_PKEY_free(p2);
	EVP_PKEY_free(pd);
	BIO_free(mem);
	scone_wbuf_free(&der);
	scone_wbuf_free(&pder);
	scone_wbuf_free(&pem);
	scone_wbuf_free(&ours);
}

static const struct {
	enum scone_key_type t;
	const char *key, *pub;
} key_types[] = {
    {SCONE_KEY_P256, "k-p256", "p-p256"},	   {SCONE_KEY_P384, "k-p384", "p-p384"},
    {SCONE_KEY_ED25519, "k-ed25519", "p-ed25519"}, {SCONE_KEY_RSA2048, "k-rsa2048", "p-rsa2048"},
    {SCONE_KEY_RSA3072, "k-rsa3072", "p-rsa3072"},
};

TEST(test_private_keys)
{
	struct scone_session *s = sess_new();
	struct scone_secret_set *set;
	EVP_PKEY *k;

	for (size_t i = 0; i < N_ELEMS(key_types); i++) {
		sess_key(s, key_types[i].key, key_types[i].t, false);
		sess_secret(s, key_types[i].pub, SCONE_SECRET_PUBLIC_KEY)->private_key =
		    xstrdup(key_types[i].key);
	}
	sess_key(s, "default", 0, false);
	set = generate(s, NULL);
	for (size_t i = 0; i < N_ELEMS(key_types); i++)
		check_key(set, key_types[i].key, key_types[i].pub, key_types[i].t);
	k = key_of(set, "default", NULL);
	assert_key_type(k, SCONE_KEY_P256);
	EVP_PKEY_free(k);
	scone_secrets_free(set);
	sess_free(s);
}

/* ---- certificates ---------------------------------------------------------------------- */

static bool ext_critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	assert_true(i >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
}

static void assert_cn(X509 *x, const char *cn)
{
	char buf[128];
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof(buf)) >
		    0);
	assert_string_equal(buf, cn);
}

/* notAfter 9999-12-31T23:59:59Z (RFC 5280's "no well-defined expiration"). */
static void assert_no_expiry(X509 *x)
{
	ASN1_TIME *t = ASN1_TIME_new();

	assert_non_null(t);
	assert_int_equal(ASN1_TIME_set_string_X509(t, "99991231235959Z"), 1);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(x), t), 0);
	ASN1_TIME_free(t);
}

static void assert_days(X509 *x, int days)
{
	int d = 0, secs = 0;
	time_t now = time(NULL);

	assert_int_equal(ASN1_TIME_diff(&d, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)), 1);
	assert_int_equal(d, days);
	assert_true(secs >= 3599 && secs <= 3601);
	assert_true(X509_cmp_time(X509_get0_notBefore(x), &now) < 0);
	assert_true(X509_cmp_time(X509_get0_notAfter(x), &now) > 0);
}

static void assert_signed_by(X509 *x, X509 *issuer)
{
	EVP_PKEY *pk = X509_get0_pubkey(issuer);
	assert_non_null(pk);
	assert_int_equal(X509_verify(x, pk), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(issuer)), 0);
	if (X509_check_ca(issuer)) /* also checks AKID against SKID and the issuer's key usage */
		assert_int_equal(X509_check_issued(issuer, x), X509_V_OK);
}

static void assert_ca(X509 *x, bool ca)
{
	assert_true(ext_critical(x, NID_basic_constraints));
	assert_true(ext_critical(x, NID_key_usage));
	if (ca) {
		assert_true(X509_check_ca(x) >= 1);
		assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
		assert_int_equal(X509_get_ext_by_NID(x, NID_ext_key_usage, -1), -1);
	} else {
		assert_int_equal(X509_check_ca(x), 0);
		assert_true(X509_get_extension_flags(x) & EXFLAG_BCONS);
	}
}

static void assert_serial(X509 *x, X509 *other)
{
	const ASN1_INTEGER *a = X509_get0_serialNumber(x);
	assert_int_equal(ASN1_STRING_length(a), 16);
	assert_int_equal(ASN1_STRING_type(a), V_ASN1_INTEGER);
	if (other)
		assert_int_not_equal(ASN1_INTEGER_cmp(a, X509_get0_serialNumber(other)), 0);
}

static void assert_san(X509 *x, const char *dns0, const char *dns1, const uint8_t *ip4, const uint8_t *ip6)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int n = 0;

	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 4);
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		int type;
		ASN1_STRING *v = GENERAL_NAME_get0_value(g, &type);
		const unsigned char *d = ASN1_STRING_get0_data(v);
		size_t len = (size_t)ASN1_STRING_length(v);
		if (type == GEN_DNS)
			n += (len == strlen(dns0) && memcmp(d, dns0, len) == 0) ||
			     (len == strlen(dns1) && memcmp(d, dns1, len) == 0);
		else if (type == GEN_IPADD)
			n += (len == 4 && memcmp(d, ip4, 4) == 0) || (len == 16 && memcmp(d, ip6, 16) == 0);
	}
	assert_int_equal(n, 4);
	GENERAL_NAMES_free(gens);
}

static struct scone_session *chain_session(void)
{
	struct scone_session *s = sess_new();
	struct scone_secret *x;

	x = sess_cert(s, "root", true, NULL, NULL);
	x->key_type = SCONE_KEY_P384;
	x->common_name = xstrdup("Test Root CA");
	x->valid_for_days = 3650;
	x = sess_cert(s, "server", false, "inter", "srvkey"); /* before its dependencies on purpose */
	strs_add(&x->dns, "db.example");
	strs_add(&x->dns, "*.db.example");
	strs_add(&x->ips, "10.0.0.1");
	strs_add(&x->ips, "::1");
	x->endpoint = xstrdup("server");
	x->valid_for_days = 30;
	x = sess_cert(s, "inter", true, "root", NULL);
	x->key_type = SCONE_KEY_ED25519;
	x->valid_for_days = 1000;
	sess_key(s, "srvkey", SCONE_KEY_RSA2048, false);
	x = sess_cert(s, "client", false, "root", NULL);
	x->endpoint = xstrdup("client");
	sess_cert(s, "self", false, NULL, NULL)->key_type = SCONE_KEY_ED25519;
	return s;
}

static void check_chain_render(const struct scone_secret_set *set)
{
	X509 *want[3] = {cert_of(set, "server", "der"), cert_of(set, "inter", NULL),
			 cert_of(set, "root", NULL)};
	struct scone_wbuf w;
	X509 *x;
	BIO *b;
	int n = 0;

	render(set, "server", "chain", &w);
	b = bio_of(&w);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		assert_true(n < 3);
		assert_int_equal(X509_cmp(x, want[n]), 0);
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	assert_int_equal(n, 3);
	BIO_free(b);
	scone_wbuf_free(&w);
	for (int i = 0; i < 3; i++)
		X509_free(want[i]);
	/* A self-signed certificate's chain is itself. */
	assert_same_render(set, "self", "chain", set, "self", "pem", true);
	assert_same_render(set, "root", "chain", set, "root", "crt", true);
}

static void check_verify_store(X509 *root, X509 *inter, X509 *leaf)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();

	assert_true(st && ctx && untrusted);
	assert_int_equal(X509_STORE_add_cert(st, root), 1);
	assert_true(sk_X509_push(untrusted, inter) > 0);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, untrusted), 1);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	if (X509_verify_cert(ctx) != 1)
		fail_msg("chain does not verify: %s",
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	sk_X509_free(untrusted);
}

TEST(test_x509)
{
	static const uint8_t ip4[4] = {10, 0, 0, 1}, ip6[16] = {[15] = 1};
	struct scone_session *s = chain_session();
	struct scone_secret_set *set = generate(s, NULL);
	X509 *root = cert_of(set, "root", NULL), *inter = cert_of(set, "inter", "crt");
	X509 *server = cert_of(set, "server", "pem"), *server_der = cert_of(set, "server", "der");
	X509 *client = cert_of(set, "client", NULL), *self = cert_of(set, "self", NULL);
	EVP_PKEY *srvkey = key_of(set, "srvkey", NULL), *k1 = key_of(set, "server", "key");
	EVP_PKEY *k2 = key_of(set, "server", "privatekey"), *kc = key_of(set, "client", "key");

	/* root: self-signed P-384 CA */
	assert_ca(root, true);
	assert_cn(root, "Test Root CA");
	assert_signed_by(root, root);
	assert_key_type(X509_get0_pubkey(root), SCONE_KEY_P384);
	assert_days(root, 3650);
	/* inter: Ed25519 CA issued by root */
	assert_ca(inter, true);
	assert_cn(inter, "inter");
	assert_signed_by(inter, root);
	assert_key_type(X509_get0_pubkey(inter), SCONE_KEY_ED25519);
	assert_days(inter, 1000);
	/* server: RSA leaf of srvkey, issued by inter (an Ed25519 signature) */
	assert_ca(server, false);
	assert_cn(server, "db.example"); /* no common_name: the first DNS name */
	assert_signed_by(server, inter);
	assert_int_equal(X509_get_signature_nid(server), NID_ED25519);
	assert_int_equal(X509_get_key_usage(server), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_int_equal(X509_get_extended_key_usage(server), XKU_SSL_SERVER);
	assert_san(server, "db.example", "*.db.example", ip4, ip6);
	assert_days(server, 30);
	assert_int_equal(X509_cmp(server, server_der), 0);
	assert_int_equal(X509_check_private_key(server, srvkey), 1);
	assert_int_equal(EVP_PKEY_eq(k1, srvkey), 1);
	assert_int_equal(EVP_PKEY_eq(k2, srvkey), 1);
	check_verify_store(root, inter, server);
	/* client: P-256 leaf with its own key, issued by root (SHA-256 ECDSA) */
	assert_ca(client, false);
	assert_cn(client, "client"); /* no common_name, no DNS name: the secret's name */
	assert_signed_by(client, root);
	assert_int_equal(X509_get_signature_nid(client), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_get_key_usage(client), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_get_extended_key_usage(client), XKU_SSL_CLIENT);
	assert_int_equal(X509_get_ext_by_NID(client, NID_subject_alt_name, -1), -1);
	assert_int_equal(X509_check_private_key(client, kc), 1);
	assert_key_type(kc, SCONE_KEY_P256);
	assert_no_expiry(client); /* no valid_for: SCONE's "virtually unlimited" */
	/* self: self-signed Ed25519 leaf for both ends */
	assert_ca(self, false);
	assert_signed_by(self, self);
	/* no endpoint: no extendedKeyUsage, as SCONE (any use) */
	assert_int_equal(X509_get_ext_by_NID(self, NID_ext_key_usage, -1), -1);
	/* serials: 16 bytes, all different */
	assert_serial(root, inter);
	assert_serial(inter, server);
	assert_serial(server, client);
	assert_serial(client, self);
	assert_serial(self, root);
	check_chain_render(set);

	X509_free(root);
	X509_free(inter);
	X509_free(server);
	X509_free(server_der);
	X509_free(client);
	X509_free(self);
	EVP_PKEY_free(srvkey);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(kc);
	scone_secrets_free(set);
	sess_free(s);
}

TEST(test_x509_key_types)
{
	struct scone_session *s = sess_new();
	struct scone_secret_set *set;
	char name[32];

	for (size_t i = 0; i < N_ELEMS(key_types); i++) {
		assert_true(snprintf(name, sizeof(name), "ca-%zu", i) > 0);
		sess_cert(s, name, true, NULL, NULL)->key_type = key_types[i].t;
		assert_true(snprintf(name, sizeof(name), "leaf-%zu", i) > 0);
		sess_cert(s, name, false, NULL, NULL)->key_type = key_types[i].t;
		s->secrets[s->n_secrets - 1].issuer = xstrdup(s->secrets[s->n_secrets - 2].name);
	}
	set = generate(s, NULL);
	for (size_t i = 0; i < N_ELEMS(key_types); i++) {
		X509 *ca, *leaf;
		EVP_PKEY *k;
		assert_true(snprintf(name, sizeof(name), "ca-%zu", i) > 0);
		ca = cert_of(set, name, NULL);
		assert_true(snprintf(name, sizeof(name), "leaf-%zu", i) > 0);
		leaf = cert_of(set, name, NULL);
		k = key_of(set, name, "key");
		assert_key_type(X509_get0_pubkey(ca), key_types[i].t);
		assert_key_type(k, key_types[i].t);
		assert_ca(ca, true);
		assert_ca(leaf, false);
		assert_signed_by(leaf, ca);
		assert_int_equal(X509_check_private_key(leaf, k), 1);
		assert_int_equal(X509_get_key_usage(leaf),
				 KU_DIGITAL_SIGNATURE | (EVP_PKEY_is_a(k, "RSA") ? KU_KEY_ENCIPHERMENT : 0));
		X509_free(ca);
		X509_free(leaf);
		EVP_PKEY_free(k);
	}
	scone_secrets_free(set);
	sess_free(s);
}

/*
 * The cost of key generation: RSA-2048 1, RSA-3072 4, EC and Ed25519 0;
 * what the keep rules keep costs nothing; generation stops before a key
 * that would go over its budget (and says which), and spends exactly the
 * computed cost when the budget allows it.
 */
TEST(test_keygen_cost)
{
	struct scone_session *s = sess_new();
	struct scone_secret_set *set = NULL, *next = NULL;
	struct scone_secrets_opts o = {0};

	assert_int_equal(scone_secrets_key_cost(SCONE_KEY_RSA3072), 4);
	assert_int_equal(scone_secrets_key_cost(SCONE_KEY_RSA2048), 1);
	assert_int_equal(scone_secrets_key_cost(SCONE_KEY_P256), 0);
	assert_int_equal(scone_secrets_key_cost(SCONE_KEY_ED25519), 0);
	sess_key(s, "big", SCONE_KEY_RSA3072, true);
	sess_key(s, "small", SCONE_KEY_RSA2048, false);
	sess_key(s, "ec", SCONE_KEY_P384, false);
	sess_cert(s, "ca", true, NULL, NULL)->key_type = SCONE_KEY_RSA2048; /* its own key */
	sess_cert(s, "leaf", false, "ca", "big");			       /* big's key: no cost of its own */
	sess_secret(s, "pw", SCONE_SECRET_ASCII);
	assert_int_equal(scone_secrets_keygen_cost(s, NULL), 4 + 1 + 1);
	/* One unit short: stopped, nothing returned, the detail names the key. */
	o.key_budget = 5;
	assert_int_equal(scone_secrets_generate_opts(s, NULL, &o, &set), SCONE_ERR_LIMIT);
	assert_null(set);
	assert_true(o.key_spent <= 5);
	assert_non_null(strstr(scone_err_detail(), "units of key generation"));
	o.key_budget = 6;
	assert_ok(scone_secrets_generate_opts(s, NULL, &o, &set));
	assert_int_equal(o.key_spent, 6);
	/* An update: big is kept (migrate), small and ca get new keys. */
	assert_int_equal(scone_secrets_keygen_cost(s, set), 1 + 1);
	o.key_budget = 2;
	assert_ok(scone_secrets_generate_opts(s, set, &o, &next));
	assert_int_equal(o.key_spent, 2);
	scone_secrets_free(next);
	scone_secrets_free(set);
	sess_free(s);
}

/*
 * export_public: the formats a public import may render, written out
 * independently: every format of ascii/binary/public-key, the certificate
 * forms of x509/x509-ca, a private key's publickey; nothing that shows a
 * private key. What may render is byte for byte what scone_secrets_render
 * gives; the rest is PERMISSION with nothing appended.
 */
TEST(test_render_public)
{
	static const struct {
		const char *name;
		const char *pub;  /* space-separated; "-" = no format */
		const char *priv; /* valid formats a public import may not render */
	} kinds[] = {
	    {"a", "- hex base64", ""},
	    {"k", "publickey", "- pem privatekey der"},
	    {"p", "- pem der", ""},
	    {"x", "- crt pem chain der", "privatekey key"},
	    {"ca", "- crt pem chain der", "privatekey key"},
	};
	struct scone_session *s = sess_new();
	struct scone_secret_set *set;

	sess_secret(s, "a", SCONE_SECRET_ASCII);
	sess_key(s, "k", SCONE_KEY_P256, false);
	sess_secret(s, "p", SCONE_SECRET_PUBLIC_KEY)->private_key = xstrdup("k");
	sess_cert(s, "x", false, "ca", NULL);
	sess_cert(s, "ca", true, NULL, NULL);
	set = generate(s, NULL);
	assert_false(scone_secrets_is_private(set, "a"));
	assert_false(scone_secrets_is_private(set, "p"));
	assert_true(scone_secrets_is_private(set, "k"));
	assert_true(scone_secrets_is_private(set, "x"));
	assert_true(scone_secrets_is_private(set, "ca"));
	assert_false(scone_secrets_is_private(set, "nope"));
	for (size_t k = 0; k < N_ELEMS(kinds); k++) {
		for (int pass = 0; pass < 2; pass++) {
			char list[80], *save = NULL, *f;
			snprintf(list, sizeof(list), "%s", pass ? kinds[k].priv : kinds[k].pub);
			for (f = strtok_r(list, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
				const char *fmt = strcmp(f, "-") == 0 ? NULL : f;
				struct scone_wbuf w, ref;
				scone_wbuf_init(&w, OUT_MAX, 1);
				scone_wbuf_init(&ref, OUT_MAX, 1);
				assert_ok(scone_wbuf_put(&w, "pre", 3));
				if (pass == 0) {
					assert_ok(scone_secrets_render_public(set, kinds[k].name, fmt, &w));
					assert_ok(scone_secrets_render(set, kinds[k].name, fmt, &ref));
					assert_int_equal(w.size, 3 + ref.size);
					assert_memory_equal(w.data + 3, ref.data, ref.size);
				} else {
					if (scone_secrets_render_public(set, kinds[k].name, fmt, &w) != SCONE_ERR_PERMISSION)
						fail_msg("%s:%s rendered for a public import", kinds[k].name, f);
					assert_non_null(strstr(scone_err_detail(), "private key"));
					assert_int_equal(w.size, 3);
				}
				scone_wbuf_free(&w);
				scone_wbuf_free(&ref);
			}
		}
	}
	scone_secrets_free(set);
	sess_free(s);
}

/* ---- the format table ---------------------------------------------------------------------- */

TEST(test_formats)
{
	/* policy.h's table, written out independently of the implementation. */
	static const char *const candidates[] = {NULL,	"hex",	     "base64", "pem",	"privatekey",
						 "der", "publickey", "crt",    "chain", "key", "base32nopad",
						 "",	"PEM",	     "raw",    "hex ",	"pem\n"};
	static const struct {
		const char *name;
		enum scone_secret_kind kind;
		const char *valid; /* space-separated; "-" = no format */
	} kinds[] = {
	    {"a", SCONE_SECRET_ASCII, "- hex base64"},
	    {"b", SCONE_SECRET_BINARY, "- hex base64 base32nopad"},
	    {"k", SCONE_SECRET_PRIVATE_KEY, "- pem privatekey der publickey"},
	    {"p", SCONE_SECRET_PUBLIC_KEY, "- pem der"},
	    {"x", SCONE_SECRET_X509, "- crt pem chain privatekey key der"},
	    {"ca", SCONE_SECRET_X509_CA, "- crt pem chain privatekey key der"},
	};
	struct scone_session *s = sess_new();
	struct scone_secret_set *set;

	sess_secret(s, "a", SCONE_SECRET_ASCII);
	sess_secret(s, "b", SCONE_SECRET_BINARY);
	sess_key(s, "k", SCONE_KEY_P256, false);
	sess_secret(s, "p", SCONE_SECRET_PUBLIC_KEY)->private_key = xstrdup("k");
	sess_cert(s, "x", false, "ca", NULL);
	sess_cert(s, "ca", true, NULL, NULL);
	sess_volume(s, "vol");
	set = generate(s, NULL);

	for (size_t k = 0; k < N_ELEMS(kinds); k++) {
		assert_true(scone_secrets_has(set, kinds[k].name));
		for (size_t c = 0; c < N_ELEMS(candidates); c++) {
			const char *f = candidates[c];
			char word[40];
			bool valid;
			struct scone_wbuf w;
			enum scone_err err;
			char list[80];
			assert_true(snprintf(word, sizeof(word), " %s ", f ? f : "-") > 0);
			assert_true(snprintf(list, sizeof(list), " %s ", kinds[k].valid) > 0);
			valid = (f == NULL || *f != '\0') && strstr(list, word) != NULL;
			/* the same table as the policy validator's */
			assert_int_equal(valid, scone_template_format_valid(kinds[k].kind, f));
			scone_wbuf_init(&w, OUT_MAX, 1);
			err = scone_secrets_render(set, kinds[k].name, f, &w);
			if (valid) {
				if (err != SCONE_ERR_OK)
					fail_msg("%s:%s should render: %s", kinds[k].name, f ? f : "-",
						 scone_err_detail());
				assert_true(w.size > 0);
			} else {
				if (err != SCONE_ERR_INVALID)
					fail_msg("%s:%s gave %s, want INVALID", kinds[k].name, f ? f : "-",
						 scone_errname(err));
				assert_non_null(strstr(scone_err_detail(), kinds[k].name));
				assert_int_equal(w.size, 0);
			}
			scone_wbuf_free(&w);
		}
	}
	{
		struct scone_wbuf w;
		scone_wbuf_init(&w, OUT_MAX, 1);
		assert_int_equal(scone_secrets_render(set, "nope", NULL, &w), SCONE_ERR_NOT_FOUND);
		assert_non_null(strstr(scone_err_detail(), "nope"));
		/* A volume is not a secret. */
		assert_int_equal(scone_secrets_render(set, "vol", NULL, &w), SCONE_ERR_NOT_FOUND);
		assert_int_equal(scone_secrets_render(set, "nope", "bogus", &w), SCONE_ERR_NOT_FOUND);
		assert_int_equal(w.size, 0);
		/* Rendering past the output's ceiling fails and leaves the buffer as it was. */
		scone_wbuf_free(&w);
		scone_wbuf_init(&w, 100, 1);
		assert_ok(scone_wbuf_put(&w, "keep", 4));
		assert_int_equal(scone_secrets_render(set, "x", "chain", &w), SCONE_ERR_TOO_LARGE);
		assert_int_equal(w.size, 4);
		assert_memory_equal(w.data, "keep", 4);
		scone_wbuf_free(&w);
	}
	assert_false(scone_secrets_has(set, "vol"));
	assert_false(scone_secrets_has(set, "nope"));
	scone_secrets_free(set);
	sess_free(s);
}

/* ---- public parts ---------------------------------------------------------------------------- */

TEST(test_public)
{
	struct scone_session *s = sess_new();
	struct scone_secret_set *set;
	struct scone_wbuf w;

	sess_secret(s, "a", SCONE_SECRET_ASCII);
	sess_secret(s, "b", SCONE_SECRET_BINARY);
	sess_key(s, "k", SCONE_KEY_ED25519, false);
	sess_secret(s, "p", SCONE_SECRET_PUBLIC_KEY)->private_key = xstrdup("k");
	sess_cert(s, "x", false, NULL, "k");
	sess_volume(s, "vol");
	set = generate(s, NULL);

	scone_wbuf_init(&w, OUT_MAX, 0);
	assert_ok(scone_secrets_public(set, "a", &w));
	assert_ok(scone_secrets_public(set, "b", &w));
	assert_int_equal(w.size, 0);
	scone_wbuf_free(&w);
	for (int i = 0; i < 2; i++) {
		struct scone_wbuf want;
		scone_wbuf_init(&w, OUT_MAX, 0);
		assert_ok(scone_secrets_public(set, i ? "k" : "p", &w));
		render(set, "p", NULL, &want);
		assert_int_equal(w.size, want.size);
		assert_memory_equal(w.data, want.data, w.size);
		scone_wbuf_free(&w);
		scone_wbuf_free(&want);
	}
	{
		struct scone_wbuf want;
		scone_wbuf_init(&w, OUT_MAX, 0);
		assert_ok(scone_secrets_public(set, "x", &w));
		render(set, "x", "crt", &want);
		assert_int_equal(w.size, want.size);
		assert_memory_equal(w.data, want.data, w.size);
		assert_null(memmem(w.data, w.size, "PRIVATE", 7));
		scone_wbuf_free(&want);
		assert_int_equal(scone_secrets_public(set, "vol", &w), SCONE_ERR_NOT_FOUND);
		assert_int_equal(scone_secrets_public(set, "zz", &w), SCONE_ERR_NOT_FOUND);
		scone_wbuf_free(&w);
	}
	scone_secrets_free(set);
	sess_free(s);
}

/* ---- volumes ------------------------------------------------------------------------------------- */

TEST(test_volumes)
{
	struct scone_session *s = sess_new();
	struct scone_secret_set *set, *set2;
	uint8_t k1[32], k2[32], k3[32], zero[32] = {0};

	sess_volume(s, "data");
	sess_volume(s, "logs");
	sess_volume(s, "given")->fspf_key = xstrdup("00112233");
	sess_volume(s, "imported")->import = import_new("other");
	sess_secret(s, "data", SCONE_SECRET_ASCII); /* another name space */
	set = generate(s, NULL);
	assert_ok(scone_secrets_volume_key(set, "data", k1));
	assert_ok(scone_secrets_volume_key(set, "logs", k2));
	assert_memory_not_equal(k1, k2, 32);
	assert_memory_not_equal(k1, zero, 32);
	assert_int_equal(scone_secrets_volume_key(set, "given", k3), SCONE_ERR_NOT_FOUND);
	assert_int_equal(scone_secrets_volume_key(set, "imported", k3), SCONE_ERR_NOT_FOUND);
	assert_int_equal(scone_secrets_volume_key(set, "nope", k3), SCONE_ERR_NOT_FOUND);
	assert_true(scone_secrets_has(set, "data"));

	/* Kept across updates; a new volume gets a new key. */
	sess_volume(s, "new");
	set2 = generate(s, set);
	assert_ok(scone_secrets_volume_key(set2, "data", k3));
	assert_memory_equal(k1, k3, 32);
	assert_ok(scone_secrets_volume_key(set2, "logs", k3));
	assert_memory_equal(k2, k3, 32);
	assert_ok(scone_secrets_volume_key(set2, "new", k3));
	assert_memory_not_equal(k1, k3, 32);
	scone_secrets_free(set2);

	/* A duplicated volume name is refused. */
	sess_volume(s, "data");
	assert_generate_fails(s, SCONE_ERR_INVALID, "defined twice");
	scone_secrets_free(set);
	sess_free(s);
}

/* ---- keeping across updates ---------------------------------------------------------------------- */

static struct scone_session *keep_session(size_t b_size, const char *e_value, enum scone_secret_kind c_kind)
{
	struct scone_session *s = sess_new();

	sess_secret(s, "a", SCONE_SECRET_ASCII);
	sess_secret(s, "b", SCONE_SECRET_ASCII)->size = b_size;
	sess_secret(s, "c", c_kind)->size = 16;
	sess_secret(s, "bin", SCONE_SECRET_BINARY)->size = 24;
	set_value(sess_secret(s, "e", SCONE_SECRET_ASCII), e_value, strlen(e_value));
	sess_key(s, "km", SCONE_KEY_P256, true);
	sess_key(s, "kn", SCONE_KEY_P256, false);
	sess_cert(s, "cert", false, NULL, "km");
	sess_cert(s, "ca", true, NULL, NULL)->migrate = true;
	sess_cert(s, "leaf", false, "ca", NULL);
	sess_cert(s, "leafkm", false, "ca", "km");
	sess_secret(s, "pub", SCONE_SECRET_PUBLIC_KEY)->private_key = xstrdup("km");
	sess_volume(s, "vol");
	return s;
}

static void assert_same_key(const struct scone_secret_set *a, const struct scone_secret_set *b,
			    const char *name, const char *fmt, bool same)
{
	EVP_PKEY *x = key_of(a, name, fmt), *y = key_of(b, name, fmt);
	assert_int_equal(EVP_PKEY_eq(x, y) == 1, same);
	EVP_PKEY_free(x);
	EVP_PKEY_free(y);
}

TEST(test_keep_rules)
{
	struct scone_session *s1 = keep_session(10, "v1", SCONE_SECRET_BINARY);
	struct scone_session *s2 = keep_session(12, "v2", SCONE_SECRET_ASCII);
	struct scone_secret_set *set1 = generate(s1, NULL), *set2 = generate(s2, set1), *set3;
	X509 *c1 = cert_of(set1, "cert", NULL), *c2 = cert_of(set2, "cert", NULL);
	X509 *ca2 = cert_of(set2, "ca", NULL), *leafkm1 = cert_of(set1, "leafkm", NULL);
	uint8_t v1[32], v2[32];
	struct scone_wbuf w;

	/* ascii kept; size change regenerated; kind change regenerated; explicit from the session */
	assert_same_render(set1, "a", NULL, set2, "a", NULL, true);
	assert_same_render(set1, "bin", NULL, set2, "bin", NULL, true);
	assert_same_render(set1, "b", NULL, set2, "b", NULL, false);
	render(set2, "b", NULL, &w);
	assert_int_equal(w.size, 12);
	scone_wbuf_free(&w);
	assert_same_render(set1, "c", "hex", set2, "c", "hex", false);
	render(set2, "c", NULL, &w);
	for (size_t i = 0; i < w.size; i++)
		assert_non_null(memchr(alphabet, w.data[i], sizeof(alphabet) - 1));
	scone_wbuf_free(&w);
	render(set2, "e", NULL, &w);
	assert_int_equal(w.size, 2);
	assert_memory_equal(w.data, "v2", 2);
	scone_wbuf_free(&w);

	/* private keys: kept with migrate, regenerated without */
	assert_same_render(set1, "km", "der", set2, "km", "der", true);
	assert_same_key(set1, set2, "kn", NULL, false);
	assert_same_render(set1, "pub", NULL, set2, "pub", NULL, true);

	/* x509 re-issued (new serial) with the kept key of its private_key */
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(c1), X509_get0_serialNumber(c2)), 0);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(c1), X509_get0_pubkey(c2)), 1);
	assert_same_key(set1, set2, "cert", "key", true);
	assert_same_render(set1, "cert", "der", set2, "cert", "der", false);
	/* the CA keeps its own key under migrate: the old leaf verifies with the new CA */
	assert_same_key(set1, set2, "ca", "key", true);
	assert_int_equal(X509_verify(leafkm1, X509_get0_pubkey(ca2)), 1);
	/* a leaf's own key without migrate is new */
	assert_same_key(set1, set2, "leaf", "key", false);

	/* volume key kept */
	assert_ok(scone_secrets_volume_key(set1, "vol", v1));
	assert_ok(scone_secrets_volume_key(set2, "vol", v2));
	assert_memory_equal(v1, v2, 32);

	/* migrate with a changed key type: a new key of the new type */
	s2->secrets[5].key_type = SCONE_KEY_P384;
	set3 = generate(s2, set2);
	{
		EVP_PKEY *k = key_of(set3, "km", NULL);
		assert_key_type(k, SCONE_KEY_P384);
		EVP_PKEY_free(k);
	}
	assert_same_key(set2, set3, "cert", "key", false);
	/* ... and a generated value does not survive becoming explicit */
	set_value(&s2->secrets[0], "fixed", 5);
	scone_secrets_free(set2);
	set2 = generate(s2, set3);
	render(set2, "a", NULL, &w);
	assert_int_equal(w.size, 5);
	scone_wbuf_free(&w);

	X509_free(c1);
	X509_free(c2);
	X509_free(ca2);
	X509_free(leafkm1);
	scone_secrets_free(set1);
	scone_secrets_free(set2);
	scone_secrets_free(set3);
	sess_free(s1);
	sess_free(s2);
}

TEST(test_distinct_generations)
{
	struct scone_session *s = keep_session(10, "v", SCONE_SECRET_BINARY);
	struct scone_secret_set *x = generate(s, NULL), *y = generate(s, NULL);
	static const char *const names[] = {"a", "b", "c", "bin", "km", "kn", "cert", "ca", "leaf", "pub"};
	uint8_t v1[32], v2[32];

	for (size_t i = 0; i < N_ELEMS(names); i++)
		assert_same_render(x, names[i], NULL, y, names[i], NULL, false);
	assert_same_render(x, "e", NULL, y, "e", NULL, true);
	assert_ok(scone_secrets_volume_key(x, "vol", v1));
	assert_ok(scone_secrets_volume_key(y, "vol", v2));
	assert_memory_not_equal(v1, v2, 32);
	scone_secrets_free(x);
	scone_secrets_free(y);
	sess_free(s);
}

/* ---- explicit keys and certificates ------------------------------------------------------------------ */

static void value_from_render(struct scone_secret *x, const struct scone_secret_set *set, const char *name,
			      const char *fmt)
{
	struct scone_wbuf w;
	render(set, name, fmt, &w);
	set_value(x, w.data, w.size);
	scone_wbuf_free(&w);
}

TEST(test_explicit_values)
{
	struct scone_session *s1 = chain_session(), *s2 = sess_new();
	struct scone_secret_set *set1 = generate(s1, NULL), *set2, *set3;
	struct scone_secret *x;
	struct scone_wbuf w;

	value_from_render(sess_key(s2, "srvkey", 0, false), set1, "srvkey", NULL);
	x = sess_cert(s2, "server", false, NULL, "srvkey");
	value_from_render(x, set1, "server", "chain");
	value_from_render(sess_cert(s2, "nokey", false, NULL, NULL), set1, "client", "der");
	value_from_render(sess_secret(s2, "pub", SCONE_SECRET_PUBLIC_KEY), set1, "srvkey", "publickey");
	{
		/* SEC1 DER, not PKCS#8 PEM */
		EVP_PKEY *k = key_of(set1, "client", "key");
		unsigned char *der = NULL;
		int n = i2d_PrivateKey(k, &der);
		assert_true(n > 0);
		set_value(sess_key(s2, "derkey", 0, false), der, (size_t)n);
		OPENSSL_clear_free(der, (size_t)n);
		EVP_PKEY_free(k);
	}
	x = sess_cert(s2, "issued", false, NULL, NULL);
	x->issuer = xstrdup("ca");
	value_from_render(sess_cert(s2, "ca", true, NULL, "cakey"), set1, "root", NULL);
	sess_key(s2, "cakey", SCONE_KEY_P256, false);
	/* an explicit CA without its key cannot issue */
	assert_generate_fails(s2, SCONE_ERR_INVALID, "certificate does not match");
	free(s2->secrets[6].private_key);
	s2->secrets[6].private_key = NULL;
	assert_generate_fails(s2, SCONE_ERR_INVALID, "no private key to sign");
	s2->n_secrets = 5; /* drop issued, ca and cakey (freed below) */
	set2 = generate(s2, NULL);

	assert_same_render(set1, "srvkey", NULL, set2, "srvkey", NULL, true);
	assert_same_render(set1, "server", "chain", set2, "server", "chain", true);
	assert_same_render(set1, "server", "der", set2, "server", "der", true);
	assert_same_render(set1, "server", "key", set2, "server", "key", true);
	assert_same_render(set1, "client", NULL, set2, "nokey", NULL, true);
	assert_same_render(set1, "srvkey", "publickey", set2, "pub", NULL, true);
	assert_same_render(set1, "client", "key", set2, "derkey", NULL, true);
	/* an explicit certificate without private_key has no key to render */
	scone_wbuf_init(&w, OUT_MAX, 1);
	assert_int_equal(scone_secrets_render(set2, "nokey", "key", &w), SCONE_ERR_NOT_FOUND);
	assert_int_equal(w.size, 0);
	scone_wbuf_free(&w);
	/* explicit values are the session's: kept whatever migrate says */
	set3 = generate(s2, set2);
	assert_same_render(set3, "srvkey", NULL, set2, "srvkey", NULL, true);
	scone_secrets_free(set3);

	/* a certificate with another key's private_key is refused */
	free(s2->secrets[1].private_key);
	s2->secrets[1].private_key = xstrdup("derkey");
	assert_generate_fails(s2, SCONE_ERR_INVALID, "does not match");
	/* garbage values are refused */
	{
		static const char junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
		set_value(&s2->secrets[0], junk, strlen(junk));
	}
	assert_generate_fails(s2, SCONE_ERR_INVALID, "srvkey");
	s2->n_secrets = 8;
	sess_free(s2);
	scone_secrets_free(set1);
	scone_secrets_free(set2);
	sess_free(s1);
}

/* ---- imported references ------------------------------------------------------------------------- */

struct resolver {
	const struct scone_secret_set *set;
	enum scone_err fail;
	int calls;
};

static enum scone_err resolve(void *ctx, const struct scone_secret *imported,
			      const struct scone_secret_set **set, const char **name)
{
	struct resolver *r = ctx;

	r->calls++;
	assert_non_null(imported->import);
	assert_string_equal(imported->import->session, "acme/a");
	if (r->fail != SCONE_ERR_OK)
		return scone_err_set(r->fail, "not exported to us");
	*set = r->set;
	*name = imported->import->name ? imported->import->name : imported->name;
	return SCONE_ERR_OK;
}

static struct scone_secret *sess_import(struct scone_session *s, const char *name,
					enum scone_secret_kind kind, const char *there)
{
	struct scone_secret *x = sess_secret(s, name, kind);
	x->import = import_new("acme/a");
	x->import->name = xstrdup(there);
	return x;
}

TEST(test_imports)
{
	struct scone_session *a = sess_new(), *b = sess_new();
	struct scone_secret_set *sa, *sb = NULL;
	struct resolver r = {0};
	struct scone_wbuf w;
	X509 *ca, *leaf, *mine;
	EVP_PKEY *akey, *mkey;

	sess_key(a, "akey", SCONE_KEY_P256, false);
	sess_cert(a, "aca", true, NULL, "akey");
	sess_secret(a, "apw", SCONE_SECRET_ASCII);
	sa = generate(a, NULL);
	r.set = sa;

	sess_import(b, "theirca", SCONE_SECRET_X509_CA, "aca");
	sess_import(b, "akey", 0, NULL); /* kind left out, same name there */
	sess_cert(b, "leaf", false, "theirca", NULL);
	sess_cert(b, "mine", false, NULL, "akey");
	sess_secret(b, "pub", SCONE_SECRET_PUBLIC_KEY)->private_key = xstrdup("akey");
	assert_generate_fails(b, SCONE_ERR_INVALID, "imports cannot be resolved");
	assert_ok(scone_secrets_generate_ex(b, NULL, resolve, &r, &sb));
	assert_int_equal(r.calls, 2); /* each import resolved once */

	ca = cert_of(sa, "aca", NULL);
	leaf = cert_of(sb, "leaf", NULL);
	mine = cert_of(sb, "mine", NULL);
	akey = key_of(sa, "akey", NULL);
	mkey = key_of(sb, "mine", "key");
	assert_signed_by(leaf, ca);
	assert_int_equal(X509_check_private_key(mine, akey), 1);
	assert_int_equal(EVP_PKEY_eq(akey, mkey), 1);
	assert_same_render(sa, "akey", "publickey", sb, "pub", NULL, true);
	{
		struct scone_wbuf want;
		render(sb, "leaf", "chain", &w);
		render(sa, "aca", NULL, &want);
		assert_true(w.size > want.size);
		assert_memory_equal(w.data + w.size - want.size, want.data, want.size);
		scone_wbuf_free(&w);
		scone_wbuf_free(&want);
	}
	/* imports are not part of the importing session's set */
	assert_false(scone_secrets_has(sb, "theirca"));
	assert_false(scone_secrets_has(sb, "akey"));
	scone_secrets_free(sb);

	/* the resolver's refusal is returned as is; a missing or mistyped secret there is an error */
	r.fail = SCONE_ERR_PERMISSION;
	sb = (struct scone_secret_set *)1;
	assert_int_equal(scone_secrets_generate_ex(b, NULL, resolve, &r, &sb), SCONE_ERR_PERMISSION);
	assert_null(sb);
	r.fail = SCONE_ERR_OK;
	free(b->secrets[0].import->name);
	b->secrets[0].import->name = xstrdup("nope");
	assert_int_equal(scone_secrets_generate_ex(b, NULL, resolve, &r, &sb), SCONE_ERR_NOT_FOUND);
	assert_non_null(strstr(scone_err_detail(), "no secret 'nope'"));
	free(b->secrets[0].import->name);
	b->secrets[0].import->name = xstrdup("akey");
	assert_int_equal(scone_secrets_generate_ex(b, NULL, resolve, &r, &sb), SCONE_ERR_INVALID);
	assert_non_null(strstr(scone_err_detail(), "is a private-key secret, not x509-ca"));
	assert_null(sb);
	/* an imported ascii secret is no key (found by fuzz_secrets) */
	free(b->secrets[0].import->name);
	b->secrets[0].import->name = xstrdup("aca");
	free(b->secrets[1].import->name);
	b->secrets[1].import->name = xstrdup("apw");
	assert_int_equal(scone_secrets_generate_ex(b, NULL, resolve, &r, &sb), SCONE_ERR_INVALID);
	assert_non_null(strstr(scone_err_detail(), "is a ascii secret, not private-key"));
	assert_null(sb);

	X509_free(ca);
	X509_free(leaf);
	X509_free(mine);
	EVP_PKEY_free(akey);
	EVP_PKEY_free(mkey);
	scone_secrets_free(sa);
	sess_free(a);
	sess_free(b);
}

/* ---- from a session document (the policy parser's model) ------------------------------------------- */

TEST(test_from_yaml)
{
	static const char doc[] =
	    "name: acme/shop\n"
	    "version: \"0.3\"\n"
	    "secrets:\n"
	    "  - {name: db_password, kind: ascii, size: 24}\n"
	    "  - {name: api_token, kind: ascii, value: \"given-by-hand\"}\n"
	    "  - {name: seed, kind: binary, value: DEADBEEF}\n"
	    "  - {name: ca_key, kind: private-key, key_type: P-384, migrate: true}\n"
	    "  - {name: ca, kind: x509-ca, private_key: ca_key, common_name: Acme CA, valid_for: 10 years}\n"
	    "  - name: tls\n"
	    "    kind: x509\n"
	    "    issuer: ca\n"
	    "    san: [shop.acme.example, \"*.api.acme.example\", 10.0.0.1]\n"
	    "    endpoint: server\n"
	    "    valid_for: 90 days\n"
	    "  - {name: ca_pub, kind: public-key, private_key: ca_key}\n"
	    "security:\n"
	    "  attestation:\n"
	    "    mode: none\n";
	struct scone_session *s = NULL;
	struct scone_secret_set *set, *set2;
	struct scone_wbuf w;
	X509 *ca, *tls;
	EVP_PKEY *k;

	if (scone_session_parse(doc, strlen(doc), &s, NULL) != SCONE_ERR_OK)
		fail_msg("session does not parse: %s", scone_err_detail());
	set = generate(s, NULL);
	render(set, "db_password", NULL, &w);
	assert_int_equal(w.size, 24);
	scone_wbuf_free(&w);
	render(set, "api_token", NULL, &w);
	assert_int_equal(w.size, 13);
	assert_memory_equal(w.data, "given-by-hand", 13);
	scone_wbuf_free(&w);
	render(set, "seed", "hex", &w);
	assert_int_equal(w.size, 8);
	assert_memory_equal(w.data, "deadbeef", 8);
	scone_wbuf_free(&w);
	ca = cert_of(set, "ca", NULL);
	tls = cert_of(set, "tls", NULL);
	k = key_of(set, "ca_key", NULL);
	assert_key_type(k, SCONE_KEY_P384);
	assert_cn(ca, "Acme CA");
	assert_cn(tls, "shop.acme.example");
	assert_signed_by(tls, ca);
	assert_int_equal(X509_check_private_key(ca, k), 1);
	assert_int_equal(X509_get_extended_key_usage(tls), XKU_SSL_SERVER);
	assert_days(tls, 90);
	assert_same_render(set, "ca_pub", NULL, set, "ca_key", "publickey", true);
	/* an update of the same document: migrate keeps the CA key, the rest is kept or re-issued */
	set2 = generate(s, set);
	assert_same_render(set, "ca_key", NULL, set2, "ca_key", NULL, true);
	assert_same_render(set, "db_password", NULL, set2, "db_password", NULL, true);
	assert_same_render(set, "tls", NULL, set2, "tls", NULL, false);
	X509_free(ca);
	X509_free(tls);
	EVP_PKEY_free(k);
	scone_secrets_free(set);
	scone_secrets_free(set2);
	scone_session_free(s);
}

/* ---- generation errors ------------------------------------------------------------------------------- */

TEST(test_generate_errors)
{
	struct scone_session *s;
	struct scone_secret *x;

	/* a cycle of issuers, and a self-issuer */
	s = sess_new();
	sess_cert(s, "a", true, "b", NULL);
	sess_cert(s, "b", true, "a", NULL);
	assert_generate_fails(s, SCONE_ERR_INVALID, "cycle");
	sess_free(s);
	s = sess_new();
	sess_cert(s, "a", true, "a", NULL);
	assert_generate_fails(s, SCONE_ERR_INVALID, "cycle");
	sess_free(s);
	/* an issuer that is no CA, is missing, or is imported */
	s = sess_new();
	sess_cert(s, "leaf", false, NULL, NULL);
	sess_cert(s, "x", false, "leaf", NULL);
	assert_generate_fails(s, SCONE_ERR_INVALID, "is a x509 secret, not x509-ca");
	free(s->secrets[1].issuer);
	s->secrets[1].issuer = xstrdup("ghost");
	assert_generate_fails(s, SCONE_ERR_INVALID, "'ghost' is not a secret");
	sess_cert(s, "ghost", true, NULL, NULL)->import = import_new("elsewhere");
	assert_generate_fails(s, SCONE_ERR_INVALID, "imported");
	sess_free(s);
	/* private_key of the wrong kind; public-key without one */
	s = sess_new();
	sess_secret(s, "pw", SCONE_SECRET_ASCII);
	sess_cert(s, "x", false, NULL, "pw");
	assert_generate_fails(s, SCONE_ERR_INVALID, "is a ascii secret, not private-key");
	sess_free(s);
	s = sess_new();
	sess_secret(s, "p", SCONE_SECRET_PUBLIC_KEY);
	assert_generate_fails(s, SCONE_ERR_INVALID, "names no private_key");
	sess_free(s);
	/* certificate fields */
	static const struct {
		const char *dns, *ip, *endpoint, *cn;
		unsigned days;
		const char *detail;
	} bad[] = {
	    {"ok.example", "10.0.0.300", NULL, NULL, 0, "not an IPv4 or IPv6"},
	    {"bad name", NULL, NULL, NULL, 0, "is not a host name"},
	    {"a,IP:1.2.3.4", NULL, NULL, NULL, 0, "is not a host name"},
	    {NULL, NULL, "both", NULL, 0, "is not server or client"},
	    {NULL, NULL, NULL, "0123456789012345678901234567890123456789012345678901234567890123456789", 0,
	     "common name"},
	    {NULL, NULL, NULL, "", 0, "common name"},
	    {NULL, NULL, NULL, NULL, 100000, "valid_for"},
	};
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		s = sess_new();
		x = sess_cert(s, "x", false, NULL, NULL);
		if (bad[i].dns)
			strs_add(&x->dns, bad[i].dns);
		if (bad[i].ip)
			strs_add(&x->ips, bad[i].ip);
		x->endpoint = xstrdup(bad[i].endpoint);
		x->common_name = xstrdup(bad[i].cn);
		x->valid_for_days = bad[i].days;
		assert_generate_fails(s, SCONE_ERR_INVALID, bad[i].detail);
		sess_free(s);
	}
	/* sizes, names, kinds, key types */
	s = sess_new();
	sess_secret(s, "big", SCONE_SECRET_BINARY)->size = 65537;
	assert_generate_fails(s, SCONE_ERR_INVALID, "size 65537");
	s->secrets[0].size = 65536;
	sess_secret(s, "big", SCONE_SECRET_ASCII);
	assert_generate_fails(s, SCONE_ERR_INVALID, "defined twice");
	free(s->secrets[1].name);
	s->secrets[1].name = xstrdup("");
	assert_generate_fails(s, SCONE_ERR_INVALID, "secrets[1]: name");
	free(s->secrets[1].name);
	s->secrets[1].name = xstrdup("odd");
	s->secrets[1].kind = (enum scone_secret_kind)42;
	assert_generate_fails(s, SCONE_ERR_INVALID, "unknown kind");
	s->secrets[1].kind = SCONE_SECRET_PRIVATE_KEY;
	s->secrets[1].key_type = (enum scone_key_type)9;
	assert_generate_fails(s, SCONE_ERR_INVALID, "key type 9");
	sess_free(s);
	/* a key of an unsupported type as an explicit value */
	s = sess_new();
	{
		EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
		BIO *b = BIO_new(BIO_s_mem());
		char *p;
		long n;
		assert_true(k && b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL));
		n = BIO_get_mem_data(b, &p);
		set_value(sess_key(s, "k", 0, false), p, (size_t)n);
		assert_generate_fails(s, SCONE_ERR_INVALID, "is not one of P-256");
		EVP_PKEY_free(k);
		BIO_free(b);
	}
	sess_free(s);
}

/* ---- serialization ---------------------------------------------------------------------------------- */

static struct scone_session *codec_session(void)
{
	struct scone_session *s = sess_new();
	static const uint8_t bin[] = {0, 1, 2, 3};

	sess_secret(s, "pw", SCONE_SECRET_ASCII)->size = 8;
	set_value(sess_secret(s, "bin", SCONE_SECRET_BINARY), bin, sizeof(bin));
	sess_key(s, "k", SCONE_KEY_ED25519, false);
	sess_secret(s, "pub", SCONE_SECRET_PUBLIC_KEY)->private_key = xstrdup("k");
	sess_cert(s, "ca", true, NULL, "k");
	sess_cert(s, "leaf", false, "ca", NULL)->key_type = SCONE_KEY_ED25519;
	sess_volume(s, "v");
	return s;
}

static void serialize(const struct scone_secret_set *set, struct scone_wbuf *w)
{
	scone_wbuf_init(w, SCONE_SECRETS_MAX_BYTES, 1);
	assert_ok(scone_secrets_serialize(set, w));
}

static void assert_renders_equal(const struct scone_secret_set *a, const struct scone_secret_set *b,
				 const struct scone_session *s)
{
	static const char *const fmts[] = {NULL,  "hex",       "base64", "pem",	  "privatekey",
					   "der", "publickey", "crt",	 "chain", "key", "base32nopad"};

	for (size_t i = 0; i < s->n_secrets; i++) {
		for (size_t f = 0; f < N_ELEMS(fmts); f++) {
			struct scone_wbuf x, y;
			enum scone_err ea, eb;
			scone_wbuf_init(&x, OUT_MAX, 1);
			scone_wbuf_init(&y, OUT_MAX, 1);
			ea = scone_secrets_render(a, s->secrets[i].name, fmts[f], &x);
			eb = scone_secrets_render(b, s->secrets[i].name, fmts[f], &y);
			assert_int_equal(ea, eb);
			assert_int_equal(x.size, y.size);
			if (x.size)
				assert_memory_equal(x.data, y.data, x.size);
			scone_wbuf_free(&x);
			scone_wbuf_free(&y);
		}
	}
}

TEST(test_serialize_roundtrip)
{
	struct scone_session *s = chain_session(), *c = codec_session();
	struct scone_secret_set *sets[2] = {generate(s, NULL), generate(c, NULL)};
	const struct scone_session *sess[2] = {s, c};

	for (int i = 0; i < 2; i++) {
		struct scone_secret_set *p = NULL;
		struct scone_wbuf w1, w2;
		uint8_t *copy;
		serialize(sets[i], &w1);
		copy = malloc(w1.size);
		assert_non_null(copy);
		memcpy(copy, w1.data, w1.size);
		assert_ok(scone_secrets_parse(copy, w1.size, &p));
		serialize(p, &w2);
		assert_int_equal(w1.size, w2.size);
		assert_memory_equal(w1.data, w2.data, w1.size);
		assert_renders_equal(sets[i], p, sess[i]);
		/* serialize appends */
		assert_ok(scone_secrets_serialize(p, &w2));
		assert_int_equal(w2.size, 2 * w1.size);
		assert_memory_equal(w2.data + w1.size, w1.data, w1.size);
		scone_secrets_free(p);
		scone_wbuf_free(&w1);
		scone_wbuf_free(&w2);
		free(copy);
	}
	{
		uint8_t a[32], b[32];
		struct scone_secret_set *p = NULL;
		struct scone_wbuf w;
		serialize(sets[1], &w);
		assert_ok(scone_secrets_parse(w.data, w.size, &p));
		assert_ok(scone_secrets_volume_key(sets[1], "v", a));
		assert_ok(scone_secrets_volume_key(p, "v", b));
		assert_memory_equal(a, b, 32);
		scone_secrets_free(p);
		scone_wbuf_free(&w);
	}
	{
		/* the empty set */
		struct scone_session *e = sess_new();
		struct scone_secret_set *es = generate(e, NULL), *p = NULL;
		struct scone_wbuf w;
		serialize(es, &w);
		assert_int_equal(w.size, 9);
		assert_ok(scone_secrets_parse(w.data, w.size, &p));
		assert_false(scone_secrets_has(p, "x"));
		scone_secrets_free(p);
		scone_secrets_free(es);
		scone_wbuf_free(&w);
		sess_free(e);
	}
	scone_secrets_free(sets[0]);
	scone_secrets_free(sets[1]);
	sess_free(s);
	sess_free(c);
}

static enum scone_err parse_copy(const uint8_t *data, size_t n, struct scone_secret_set **out)
{
	uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
	enum scone_err err;

	assert_non_null(copy);
	if (n)
		memcpy(copy, data, n);
	err = scone_secrets_parse(copy, n, out);
	free(copy);
	return err;
}

static void assert_malformed(const uint8_t *data, size_t n, const char *detail)
{
	struct scone_secret_set *p = (struct scone_secret_set *)1;
	enum scone_err err = parse_copy(data, n, &p);

	if (err != SCONE_ERR_MALFORMED)
		fail_msg("parse of %zu bytes gave %s, want MALFORMED", n, scone_errname(err));
	assert_null(p);
	if (detail && !strstr(scone_err_detail(), detail))
		fail_msg("detail '%s' lacks '%s'", scone_err_detail(), detail);
	assert_int_equal(ERR_peek_error(), 0);
}

/* Offset of the first record's field: header 9, name_len 2 + name. */
static size_t rec_field(const uint8_t *blob, size_t field)
{
	size_t name_len = (size_t)(blob[9] | blob[10] << 8);
	return 9 + 2 + name_len + field; /* field 0 kind, 1 flags, 2 key type, 3 value length */
}

TEST(test_parse_rejects)
{
	struct scone_session *c = codec_session();
	struct scone_secret_set *set = generate(c, NULL), *p = NULL;
	struct scone_wbuf w;
	uint8_t *b;
	size_t accepted = 0;

	serialize(set, &w);
	/* every truncation */
	for (size_t n = 0; n < w.size; n++)
		assert_malformed(w.data, n, NULL);
	/* trailing bytes */
	assert_ok(scone_wbuf_u8(&w, 0));
	assert_malformed(w.data, w.size, "unexpected bytes");
	w.size--;
	b = malloc(w.size);
	assert_non_null(b);
	/* bad magic, unknown version, absurd count */
	memcpy(b, w.data, w.size);
	b[0] = 'X';
	assert_malformed(b, w.size, "magic");
	memcpy(b, w.data, w.size);
	b[4] = 2;
	assert_malformed(b, w.size, "unknown version 2");
	memcpy(b, w.data, w.size);
	b[8] = 0x7f;
	assert_malformed(b, w.size, "count");
	/* first record (pw, ascii): unknown kind, flags, key type; zero-length name */
	memcpy(b, w.data, w.size);
	b[rec_field(w.data, 0)] = 9;
	assert_malformed(b, w.size, "unknown kind 9");
	memcpy(b, w.data, w.size);
	b[rec_field(w.data, 1)] = 0x04;
	assert_malformed(b, w.size, "flags");
	memcpy(b, w.data, w.size);
	b[rec_field(w.data, 1)] = FLAG_OWN_KEY; /* on an ascii secret */
	assert_malformed(b, w.size, "flags");
	memcpy(b, w.data, w.size);
	b[rec_field(w.data, 2)] = SCONE_KEY_P256;
	assert_malformed(b, w.size, "key type");
	memcpy(b, w.data, w.size);
	b[9] = 0;
	b[10] = 0;
	assert_malformed(b, w.size, "name of 0 bytes");
	/* every bit flipped: refused, or accepted and re-encoded to the very same bytes */
	for (size_t bit = 0; bit < 8 * w.size; bit++) {
		memcpy(b, w.data, w.size);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		p = NULL;
		if (parse_copy(b, w.size, &p) == SCONE_ERR_OK) {
			struct scone_wbuf w2;
			serialize(p, &w2);
			assert_int_equal(w2.size, w.size);
			assert_memory_equal(w2.data, b, w.size);
			scone_wbuf_free(&w2);
			scone_secrets_free(p);
			accepted++;
		} else {
			assert_null(p);
		}
		ERR_clear_error();
	}
	assert_true(accepted > 0); /* e.g. flips inside values, volume key, signatures */
	free(b);
	scone_wbuf_free(&w);

	/* garbage */
	for (int i = 0; i < 500; i++) {
		uint8_t junk[200];
		size_t n = (size_t)i % sizeof(junk);
		assert_ok(scone_random(junk, sizeof(junk)));
		if (i % 2) {
			memcpy(junk, "SCSS\x01", 5);
			junk[5] = (uint8_t)i;
			junk[6] = junk[7] = junk[8] = 0;
		}
		p = NULL;
		assert_int_not_equal(parse_copy(junk, n, &p), SCONE_ERR_OK);
		assert_null(p);
	}
	/* too large */
	{
		size_t n = (size_t)SCONE_SECRETS_MAX_BYTES + 1;
		uint8_t *big = calloc(1, n);
		assert_non_null(big);
		assert_int_equal(scone_secrets_parse(big, n, &p), SCONE_ERR_TOO_LARGE);
		assert_null(p);
		free(big);
	}
	scone_secrets_free(set);
	sess_free(c);
}

/* Duplicates, volume key sizes and mismatched keys, built record by record. */
static void put_record(struct scone_wbuf *w, const char *name, uint8_t kind, uint8_t flags, uint8_t key_type,
		       const uint8_t *value, size_t value_len)
{
	assert_ok(scone_wbuf_u16(w, (uint16_t)strlen(name)));
	assert_ok(scone_wbuf_put(w, name, strlen(name)));
	assert_ok(scone_wbuf_u8(w, kind));
	assert_ok(scone_wbuf_u8(w, flags));
	assert_ok(scone_wbuf_u8(w, key_type));
	assert_ok(scone_wbuf_u32(w, (uint32_t)value_len));
	assert_ok(scone_wbuf_put(w, value, value_len));
	assert_ok(scone_wbuf_u32(w, 0));
	assert_ok(scone_wbuf_u8(w, 0));
}

static void blob_start(struct scone_wbuf *w, uint32_t count)
{
	scone_wbuf_init(w, 1 << 20, 0);
	assert_ok(scone_wbuf_put(w, "SCSS\x01", 5));
	assert_ok(scone_wbuf_u32(w, count));
}

TEST(test_parse_records)
{
	static const uint8_t key32[32] = {1};
	struct scone_secret_set *p = NULL;
	struct scone_wbuf w;

	/* the same name twice in one name space is refused; across name spaces it is fine */
	blob_start(&w, 2);
	put_record(&w, "x", SCONE_SECRET_ASCII, 0, 0, (const uint8_t *)"abc", 3);
	put_record(&w, "x", SCONE_SECRET_BINARY, 0, 0, (const uint8_t *)"abc", 3);
	assert_malformed(w.data, w.size, "duplicate");
	scone_wbuf_free(&w);
	blob_start(&w, 2);
	put_record(&w, "x", SCONE_SECRET_ASCII, 0, 0, (const uint8_t *)"abc", 3);
	put_record(&w, "x", 0x80, 0, 0, key32, 32);
	assert_ok(parse_copy(w.data, w.size, &p));
	assert_true(scone_secrets_has(p, "x"));
	scone_secrets_free(p);
	scone_wbuf_free(&w);
	/* volume keys are 32 bytes */
	blob_start(&w, 1);
	put_record(&w, "v", 0x80, 0, 0, key32, 31);
	assert_malformed(w.data, w.size, "volume key of 31 bytes");
	scone_wbuf_free(&w);
	/* a private key that is not one, or not of its stated type */
	blob_start(&w, 1);
	put_record(&w, "k", SCONE_SECRET_PRIVATE_KEY, 0, SCONE_KEY_P256, key32, 32);
	assert_malformed(w.data, w.size, "does not decode");
	scone_wbuf_free(&w);
	{
		struct scone_session *s = sess_new();
		struct scone_secret_set *set;
		struct scone_wbuf der;
		sess_key(s, "k", SCONE_KEY_ED25519, false);
		set = generate(s, NULL);
		render(set, "k", "der", &der);
		blob_start(&w, 1);
		put_record(&w, "k", SCONE_SECRET_PRIVATE_KEY, 0, SCONE_KEY_P256, der.data, der.size);
		assert_malformed(w.data, w.size, "as key type 1");
		scone_wbuf_free(&w);
		/* a public-key record holding a private key */
		blob_start(&w, 1);
		put_record(&w, "k", SCONE_SECRET_PUBLIC_KEY, 0, SCONE_KEY_ED25519, der.data, der.size);
		assert_malformed(w.data, w.size, "does not decode");
		scone_wbuf_free(&w);
		/* a certificate kind without its certificate */
		blob_start(&w, 1);
		put_record(&w, "k", SCONE_SECRET_X509, FLAG_OWN_KEY, SCONE_KEY_ED25519, der.data, der.size);
		assert_malformed(w.data, w.size, "certificate");
		scone_wbuf_free(&w);
		scone_wbuf_free(&der);
		scone_secrets_free(set);
		sess_free(s);
	}
	/* a name with a NUL byte */
	blob_start(&w, 1);
	put_record(&w, "a", SCONE_SECRET_ASCII, 0, 0, (const uint8_t *)"abc", 3);
	w.data[11] = 0;
	assert_malformed(w.data, w.size, "NUL");
	scone_wbuf_free(&w);
	/* a value longer than the limit */
	blob_start(&w, 1);
	assert_ok(scone_wbuf_u16(&w, 1));
	assert_ok(scone_wbuf_put(&w, "a\x01\x00\x00", 4));
	assert_ok(scone_wbuf_u32(&w, 0x7fffffff));
	assert_ok(scone_wbuf_put(&w, key32, sizeof(key32)));
	assert_malformed(w.data, w.size, "exceeds");
	scone_wbuf_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ascii_binary),
	    cmocka_unit_test(test_private_keys),
	    cmocka_unit_test(test_x509),
	    cmocka_unit_test(test_x509_key_types),
	    cmocka_unit_test(test_formats),
	    cmocka_unit_test(test_render_public),
	    cmocka_unit_test(test_keygen_cost),
	    cmocka_unit_test(test_public),
	    cmocka_unit_test(test_volumes),
	    cmocka_unit_test(test_keep_rules),
	    cmocka_unit_test(test_distinct_generations),
	    cmocka_unit_test(test_explicit_values),
	    cmocka_unit_test(test_imports),
	    cmocka_unit_test(test_from_yaml),
	    cmocka_unit_test(test_generate_errors),
	    cmocka_unit_test(test_serialize_roundtrip),
	    cmocka_unit_test(test_parse_rejects),
	    cmocka_unit_test(test_parse_records),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
