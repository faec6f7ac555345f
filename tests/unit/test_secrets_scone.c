/*
 * test_secrets_scone.c - the secret formats of SCONE's language 0.3.x that
 * src/cas/secrets*.c renders beyond the first ones (issue 12): base32,
 * base32nopad and base64url against RFC 4648's vectors, the DER and SPKI
 * forms read back with OpenSSL, pkcs12-with-private-key opened with an
 * empty password, the old NAME.chain order (root first), the defaults SCONE
 * documents (binary 20 bytes, x509 without valid_for: no expiry, without
 * endpoint: no extended key usage), a scalar config-fragment, and pgp-key's
 * six renderings (one key: armor and base64 carry the binary form).
 * gpg itself reads them in tests/integration/test_sessions_scone.sh.
 */
#include "helpers.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cas/secrets.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "policy/policy.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define OUT_MAX (1024 * 1024)

static const char doc[] = "name: formats\n"
			  "version: \"0.3.12\"\n"
			  "security:\n"
			  "  attestation:\n"
			  "    mode: none\n"
			  "secrets:\n"
			  "  - {name: foobar, kind: binary, value: \"666f6f626172\"}\n"
			  "  - {name: twenty, kind: binary}\n"
			  "  - {name: key, kind: private-key}\n"
			  "  - {name: pub, kind: public-key, private_key: key}\n"
			  "  - {name: ca, kind: x509-ca}\n"
			  "  - {name: cert, kind: x509, issuer: ca, private_key: key, san: [dns:a.example]}\n"
			  "  - {name: forever, kind: x509}\n"
			  "  - {name: answer, kind: config-fragment, value: 42}\n"
			  "  - {name: pgp, kind: pgp-key}\n";

static struct scone_session *session;
static struct scone_secret_set *set;

static int setup(void **state)
{
	(void)state;
	if (scone_session_parse(doc, strlen(doc), &session, NULL) != SCONE_ERR_OK)
		return -1;
	return scone_secrets_generate(session, NULL, &set) == SCONE_ERR_OK ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	scone_secrets_free(set);
	scone_session_free(session);
	return 0;
}

/* name:format rendered into *w (to be freed); fails the test on an error. */
static void render(const char *name, const char *format, struct scone_wbuf *w)
{
	scone_wbuf_init(w, OUT_MAX, 1);
	if (scone_secrets_render(set, name, format, w) != SCONE_ERR_OK)
		fail_msg("%s:%s: %s", name, format ? format : "-", scone_err_detail());
}

static void expect_text(const char *name, const char *format, const char *want)
{
	struct scone_wbuf w;

	render(name, format, &w);
	if (w.size != strlen(want) || memcmp(w.data, want, w.size))
		fail_msg("%s:%s = '%.*s', want '%s'", name, format, (int)w.size, (const char *)w.data, want);
	scone_wbuf_free(&w);
}

TEST(test_rfc4648)
{
	/* RFC 4648, section 10: "foobar" */
	expect_text("foobar", "base32", "MZXW6YTBOI======");
	expect_text("foobar", "base32nopad", "MZXW6YTBOI");
	expect_text("foobar", "base64url", "Zm9vYmFy");
	expect_text("foobar", "base64", "Zm9vYmFy");
	expect_text("foobar", "hex", "666f6f626172");
	expect_text("foobar", "bin", "foobar");
	expect_text("foobar", NULL, "foobar");
}

TEST(test_defaults)
{
	struct scone_wbuf w;
	const unsigned char *p;
	X509 *x;

	render("twenty", NULL, &w); /* SCONE's default size of a binary secret */
	assert_int_equal(w.size, 20);
	scone_wbuf_free(&w);
	render("forever", "crt:der", &w);
	p = w.data;
	x = d2i_X509(NULL, &p, (long)w.size);
	assert_non_null(x);
	/* no valid_for: valid until 9999-12-31 (SCONE: a virtually unlimited time) */
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notAfter(x), (time_t)253402300799 - 1), 1);
	/* no endpoint: no extended key usage */
	assert_int_equal(X509_get_extension_flags(x) & EXFLAG_XKUSAGE, 0);
	X509_free(x);
	scone_wbuf_free(&w);
	expect_text("answer", NULL, "42");
}

TEST(test_der_forms)
{
	struct scone_wbuf w, pem;
	const unsigned char *p;
	EVP_PKEY *k, *pk;
	BIO *bio;

	render("key", "pkcs8:der", &w);
	p = w.data;
	k = d2i_AutoPrivateKey(NULL, &p, (long)w.size);
	assert_non_null(k);
	scone_wbuf_free(&w);
	render("pub", "spki:der", &w);
	p = w.data;
	pk = d2i_PUBKEY(NULL, &p, (long)w.size);
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_eq(k, pk), 1);
	EVP_PKEY_free(pk);
	scone_wbuf_free(&w);
	render("pub", "spki:pem", &pem);
	bio = BIO_new_mem_buf(pem.data, (int)pem.size);
	pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_eq(k, pk), 1);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	scone_wbuf_free(&pem);
	render("cert", "privatekey:pkcs8:der", &w);
	p = w.data;
	pk = d2i_AutoPrivateKey(NULL, &p, (long)w.size);
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_eq(k, pk), 1);
	EVP_PKEY_free(pk);
	scone_wbuf_free(&w);
	EVP_PKEY_free(k);
}

TEST(test_pkcs12)
{
	struct scone_wbuf w;
	const unsigned char *p;
	PKCS12 *p12;
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	STACK_OF(X509) *ca = NULL;

	render("cert", "pkcs12-with-private-key", &w);
	p = w.data;
	p12 = d2i_PKCS12(NULL, &p, (long)w.size);
	assert_non_null(p12);
	assert_int_equal(PKCS12_parse(p12, "", &k, &x, &ca), 1);
	assert_non_null(k);
	assert_non_null(x);
	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_int_equal(X509_check_host(x, "a.example", 0, 0, NULL), 1);
	EVP_PKEY_free(k);
	X509_free(x);
	sk_X509_pop_free(ca, X509_free);
	PKCS12_free(p12);
	scone_wbuf_free(&w);
}

/* The PEM certificates in w, in order (at most max). */
static size_t pem_certs(const struct scone_wbuf *w, X509 **out, size_t max)
{
	BIO *bio = BIO_new_mem_buf(w->data, (int)w->size);
	size_t n = 0;
	X509 *x;

	while (n < max && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
		out[n++] = x;
	BIO_free(bio);
	return n;
}

TEST(test_chain_orders)
{
	struct scone_wbuf w;
	X509 *certs[4], *ca = NULL, *cert = NULL;
	size_t n;

	render("ca", "crt", &w);
	assert_int_equal(pem_certs(&w, &ca, 1), 1);
	scone_wbuf_free(&w);
	render("cert", "crt", &w);
	assert_int_equal(pem_certs(&w, &cert, 1), 1);
	scone_wbuf_free(&w);
	/* chain: the certificate, then its issuers */
	render("cert", "chain", &w);
	n = pem_certs(&w, certs, 4);
	assert_int_equal(n, 2);
	assert_int_equal(X509_cmp(certs[0], cert), 0);
	assert_int_equal(X509_cmp(certs[1], ca), 0);
	X509_free(certs[0]);
	X509_free(certs[1]);
	scone_wbuf_free(&w);
	/* SCONE's old NAME.chain: the root first, the certificate last */
	render("cert", SCONE_FORMAT_LEGACY_CHAIN, &w);
	n = pem_certs(&w, certs, 4);
	assert_int_equal(n, 2);
	assert_int_equal(X509_cmp(certs[0], ca), 0);
	assert_int_equal(X509_cmp(certs[1], cert), 0);
	X509_free(certs[0]);
	X509_free(certs[1]);
	scone_wbuf_free(&w);
	X509_free(ca);
	X509_free(cert);
}

/* The bytes of base64 text b (no line breaks) into out. */
static size_t unbase64(const uint8_t *b, size_t n, uint8_t *out)
{
	int len = EVP_DecodeBlock(out, b, (int)n);

	assert_true(len >= 0);
	while (n > 0 && b[n - 1] == '=') {
		n--;
		len--;
	}
	return (size_t)len;
}

/* The base64 body of an armored block (between the blank line and the "=" checksum line). */
static size_t armor_body(const struct scone_wbuf *w, uint8_t *out)
{
	const char *t = (const char *)w->data, *end = t + w->size;
	const char *p = strstr(t, "\n\n");
	uint8_t b64[16384];
	size_t n = 0;

	assert_non_null(p);
	for (p += 2; p < end && *p != '=' && *p != '-'; p = strchr(p, '\n') + 1) /* to the checksum line */
		for (const char *q = p; *q != '\n' && n < sizeof(b64); q++)
			b64[n++] = (uint8_t)*q;
	return unbase64(b64, n, out);
}

TEST(test_pgp)
{
	static const char *const kinds[] = {"publickey", "privatekey"};
	static const char *const heads[] = {"-----BEGIN PGP PUBLIC KEY BLOCK-----\n",
					    "-----BEGIN PGP PRIVATE KEY BLOCK-----\n"};

	for (size_t i = 0; i < 2; i++) {
		struct scone_wbuf bin, b64, arm, again;
		char fmt[40];
		uint8_t decoded[16384];
		size_t n;

		snprintf(fmt, sizeof(fmt), "%s:binary", kinds[i]);
		render("pgp", fmt, &bin);
		/* an OpenPGP packet: new-format tag 6 (public key) or 5 (secret key), version 4 */
		assert_true(bin.size > 40);
		assert_int_equal(bin.data[0], i ? 0xC5 : 0xC6);
		snprintf(fmt, sizeof(fmt), "%s:base64", kinds[i]);
		render("pgp", fmt, &b64);
		n = unbase64(b64.data, b64.size, decoded);
		assert_int_equal(n, bin.size);
		assert_memory_equal(decoded, bin.data, n);
		snprintf(fmt, sizeof(fmt), "%s:asciiarmored", kinds[i]);
		render("pgp", fmt, &arm);
		assert_memory_equal(arm.data, heads[i], strlen(heads[i]));
		n = armor_body(&arm, decoded);
		assert_int_equal(n, bin.size);
		assert_memory_equal(decoded, bin.data, n);
		/* rendered again: the same bytes (deterministic from what CAS stores) */
		render("pgp", fmt, &again);
		assert_int_equal(again.size, arm.size);
		assert_memory_equal(again.data, arm.data, arm.size);
		scone_wbuf_free(&bin);
		scone_wbuf_free(&b64);
		scone_wbuf_free(&arm);
		scone_wbuf_free(&again);
	}
	/* pgp-key has no default format */
	struct scone_wbuf w;
	scone_wbuf_init(&w, OUT_MAX, 1);
	assert_int_equal(scone_secrets_render(set, "pgp", NULL, &w), SCONE_ERR_INVALID);
	scone_wbuf_free(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4648),	 cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_der_forms),	 cmocka_unit_test(test_pkcs12),
	    cmocka_unit_test(test_chain_orders), cmocka_unit_test(test_pgp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
