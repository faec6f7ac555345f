/*
 * secrets_render.c - a secret's value in the format a template asks for
 * ($$SCONE::name:format$$), and the public part of a secret for reads.
 *
 * The formats are one table (the same as scone_template_format_valid in
 * src/policy/policy.h; kept here as the dispatch table so that render and
 * validation cannot drift apart silently: tests/unit/test_secrets.c checks
 * every kind against every format). Hex is lowercase; base64 is standard
 * with padding and no line breaks; PEM is OpenSSL's (64-column lines).
 * Encoding goes through small stack buffers straight into the caller's
 * wbuf, so no unwiped copy of a value is left anywhere; on failure the
 * bytes appended so far are wiped and removed.
 */
#include "secrets_internal.h"

#include <openssl/err.h>
#include <string.h>

#include "lib/base32.h"
#include "lib/crypto.h"
#include "lib/hex.h"

/* ---- encoders ------------------------------------------------------------- */

static enum scone_err put_str(struct scone_wbuf *out, const char *s)
{
	return scone_wbuf_put(out, s, strlen(s));
}

static enum scone_err put_hex(struct scone_wbuf *out, const uint8_t *p, size_t n)
{
	char chunk[2 * 32 + 1];
	enum scone_err err = SCONE_ERR_OK;

	for (size_t off = 0; off < n && err == SCONE_ERR_OK; off += 32) {
		size_t k = n - off < 32 ? n - off : 32;
		scone_hex_encode(chunk, sizeof(chunk), p + off, k);
		err = scone_wbuf_put(out, chunk, 2 * k);
	}
	scone_wipe(chunk, sizeof(chunk));
	return err;
}

/* Base64 of p: one line without newline, or (lines) 64-column lines each ending in newline. */
static enum scone_err put_base64(struct scone_wbuf *out, const uint8_t *p, size_t n, bool lines)
{
	unsigned char chunk[64 + 1];
	enum scone_err err = SCONE_ERR_OK;

	for (size_t off = 0; off < n && err == SCONE_ERR_OK; off += 48) {
		int k = (int)(n - off < 48 ? n - off : 48);
		int len = EVP_EncodeBlock(chunk, p + off, k);
		err = scone_wbuf_put(out, chunk, (size_t)len);
		if (err == SCONE_ERR_OK && lines)
			err = scone_wbuf_u8(out, '\n');
	}
	scone_wipe(chunk, sizeof(chunk));
	return err;
}

static enum scone_err put_pem(struct scone_wbuf *out, const char *label, const struct sec_blob *der)
{
	SCONE_TRY(put_str(out, "-----BEGIN "));
	SCONE_TRY(put_str(out, label));
	SCONE_TRY(put_str(out, "-----\n"));
	SCONE_TRY(put_base64(out, der->p, der->n, true));
	SCONE_TRY(put_str(out, "-----END "));
	SCONE_TRY(put_str(out, label));
	return put_str(out, "-----\n");
}

/* ---- renderers --------------------------------------------------------------- */

typedef enum scone_err (*render_fn)(const struct sec_item *it, struct scone_wbuf *out);

static enum scone_err r_raw(const struct sec_item *it, struct scone_wbuf *out)
{
	return scone_wbuf_put(out, it->value.p, it->value.n);
}

static enum scone_err r_hex(const struct sec_item *it, struct scone_wbuf *out)
{
	return put_hex(out, it->value.p, it->value.n);
}

static enum scone_err r_base64(const struct sec_item *it, struct scone_wbuf *out)
{
	return put_base64(out, it->value.p, it->value.n, false);
}

static enum scone_err r_key_pem(const struct sec_item *it, struct scone_wbuf *out)
{
	if (!it->value.n)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s secret '%s' has no private key",
				     sec_kind_name(it->kind), it->name);
	return put_pem(out, "PRIVATE KEY", &it->value);
}

static enum scone_err r_spki_pem(const struct sec_item *it, struct scone_wbuf *out)
{
	return put_pem(out, "PUBLIC KEY", &it->value);
}

/* SPKI of a private-key secret (derived: the store keeps only PKCS#8). */
static enum scone_err r_pub_of_key(const struct sec_item *it, struct scone_wbuf *out)
{
	struct sec_blob spki = {0};
	EVP_PKEY *k = NULL;
	enum scone_err err;

	SCONE_TRY(sec_key_from_pkcs8(it->value.p, it->value.n, &k));
	err = sec_key_to_spki(k, &spki);
	EVP_PKEY_free(k);
	if (err == SCONE_ERR_OK)
		err = put_pem(out, "PUBLIC KEY", &spki);
	sec_blob_free(&spki);
	return err;
}

static enum scone_err r_cert_pem(const struct sec_item *it, struct scone_wbuf *out)
{
	return put_pem(out, "CERTIFICATE", &it->cert);
}

static enum scone_err r_cert_der(const struct sec_item *it, struct scone_wbuf *out)
{
	return scone_wbuf_put(out, it->cert.p, it->cert.n);
}

static enum scone_err r_chain(const struct sec_item *it, struct scone_wbuf *out)
{
	SCONE_TRY(put_pem(out, "CERTIFICATE", &it->cert));
	for (size_t i = 0; i < it->n_chain; i++)
		SCONE_TRY(put_pem(out, "CERTIFICATE", &it->chain[i]));
	return SCONE_ERR_OK;
}

/* SCONE's NAME.chain from before 5.2: the root first, the certificate itself last. */
static enum scone_err r_chain_legacy(const struct sec_item *it, struct scone_wbuf *out)
{
	for (size_t i = it->n_chain; i > 0; i--)
		SCONE_TRY(put_pem(out, "CERTIFICATE", &it->chain[i - 1]));
	return put_pem(out, "CERTIFICATE", &it->cert);
}

static enum scone_err r_key_der(const struct sec_item *it, struct scone_wbuf *out)
{
	if (!it->value.n)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s secret '%s' has no private key",
				     sec_kind_name(it->kind), it->name);
	return scone_wbuf_put(out, it->value.p, it->value.n);
}

/*
 * RFC 4648 base32 (lib/base32), padded or not, through a small stack buffer
 * (40 bytes make 64 characters, so only the last chunk is short); with
 * base64url (padded) SCONE 0.3.10's binary formats.
 */
static enum scone_err put_base32(struct scone_wbuf *out, const uint8_t *p, size_t n, bool pad)
{
	char chunk[64 + 1];
	size_t chars = 0;
	enum scone_err err = SCONE_ERR_OK;

	for (size_t off = 0; off < n && !err; off += 40) {
		size_t k = n - off < 40 ? n - off : 40;
		scone_base32_encode(chunk, sizeof(chunk), p + off, k);
		chars += strlen(chunk);
		err = scone_wbuf_put(out, chunk, strlen(chunk));
	}
	scone_wipe(chunk, sizeof(chunk));
	for (; !err && pad && chars % 8; chars++)
		err = scone_wbuf_u8(out, '=');
	return err;
}

static enum scone_err r_base32(const struct sec_item *it, struct scone_wbuf *out)
{
	return put_base32(out, it->value.p, it->value.n, true);
}

static enum scone_err r_base32nopad(const struct sec_item *it, struct scone_wbuf *out)
{
	return put_base32(out, it->value.p, it->value.n, false);
}

static enum scone_err r_base64url(const struct sec_item *it, struct scone_wbuf *out)
{
	size_t start = out->size;

	SCONE_TRY(put_base64(out, it->value.p, it->value.n, false));
	for (size_t i = start; i < out->size; i++)
		out->data[i] = out->data[i] == '+' ? '-' : out->data[i] == '/' ? '_' : out->data[i];
	return SCONE_ERR_OK;
}

/* A config-fragment inside a string: its value when it is one scalar. */
static enum scone_err r_fragment(const struct sec_item *it, struct scone_wbuf *out)
{
	const uint8_t *p = it->value.p;
	size_t n = it->value.n;

	if (n < 2 || p[0] != '"' || p[n - 1] != '"')
		return scone_err_set(
		    SCONE_ERR_INVALID,
		    "config-fragment '%s' holds a list or mapping: it can stand only as a whole "
		    "value in security, access_policy or attestation",
		    it->name);
	for (size_t i = 1; i + 1 < n; i++) {
		uint8_t ch = p[i];
		if (ch == '\\' && i + 2 < n) {
			ch = p[++i];
			if (ch == 'u' && i + 4 < n) { /* our own JSON writes \u00XX only */
				ch = (uint8_t)((p[i + 3] >= 'a' ? p[i + 3] - 'a' + 10 : p[i + 3] - '0') << 4 |
					       (p[i + 4] >= 'a' ? p[i + 4] - 'a' + 10 : p[i + 4] - '0'));
				i += 4;
			}
		}
		SCONE_TRY(scone_wbuf_u8(out, ch));
	}
	return SCONE_ERR_OK;
}

static enum scone_err r_pkcs12(const struct sec_item *it, struct scone_wbuf *out)
{
	return sec_pkcs12(it, out);
}

static enum scone_err r_pgp_sec_armor(const struct sec_item *it, struct scone_wbuf *out)
{
	return sec_pgp_render(&it->value, true, true, out);
}

static enum scone_err r_pgp_sec_bin(const struct sec_item *it, struct scone_wbuf *out)
{
	return sec_pgp_render(&it->value, true, false, out);
}

static enum scone_err r_pgp_pub_armor(const struct sec_item *it, struct scone_wbuf *out)
{
	return sec_pgp_render(&it->value, false, true, out);
}

static enum scone_err r_pgp_pub_bin(const struct sec_item *it, struct scone_wbuf *out)
{
	return sec_pgp_render(&it->value, false, false, out);
}

/* The binary form in base64, through a scratch buffer that is wiped. */
static enum scone_err pgp_base64(const struct sec_item *it, bool secret, struct scone_wbuf *out)
{
	struct scone_wbuf tmp;
	enum scone_err err;

	scone_wbuf_init(&tmp, SEC_VALUE_MAX, 1);
	err = sec_pgp_render(&it->value, secret, false, &tmp);
	if (!err)
		err = put_base64(out, tmp.data, tmp.size, false);
	scone_wbuf_free(&tmp);
	return err;
}

static enum scone_err r_pgp_sec_b64(const struct sec_item *it, struct scone_wbuf *out)
{
	return pgp_base64(it, true, out);
}

static enum scone_err r_pgp_pub_b64(const struct sec_item *it, struct scone_wbuf *out)
{
	return pgp_base64(it, false, out);
}

#define K(kind) (1u << (kind))
#define K_BYTES (K(SCONE_SECRET_ASCII) | K(SCONE_SECRET_BINARY))
#define K_PRIV K(SCONE_SECRET_PRIVATE_KEY)
#define K_PUB K(SCONE_SECRET_PUBLIC_KEY)
#define K_CERT (K(SCONE_SECRET_X509) | K(SCONE_SECRET_X509_CA))
#define K_BIN K(SCONE_SECRET_BINARY)
#define K_FRAG K(SCONE_SECRET_CONFIG_FRAGMENT)
#define K_PGP K(SCONE_SECRET_PGP_KEY)

/*
 * pub: the format shows nothing a public export (export_public) does not
 * release. For ascii and binary that is the value itself (SCONE publishes
 * it); for keys and certificates only the certificate and the public key;
 * a config-fragment not at all (it may hold what its session renders).
 */
static const struct format {
	unsigned kinds;
	const char *format; /* NULL: no format given */
	render_fn fn;
	bool pub;
} formats[] = {
    {K_BYTES, NULL, r_raw, true},
    {K_BYTES, "hex", r_hex, true},
    {K_BYTES, "base64", r_base64, true},
    {K_BIN, "bin", r_raw, true},
    {K_BIN, "base64url", r_base64url, true},
    {K_BIN, "base32", r_base32, true},
    {K_BIN, "base32nopad", r_base32nopad, true},
    {K_PRIV, NULL, r_key_pem, false},
    {K_PRIV, "pem", r_key_pem, false},
    {K_PRIV, "pkcs8:pem", r_key_pem, false},
    {K_PRIV, "privatekey", r_key_pem, false},
    {K_PRIV, "der", r_raw, false},
    {K_PRIV, "pkcs8:der", r_raw, false},
    {K_PRIV, "publickey", r_pub_of_key, true},
    {K_PUB, NULL, r_spki_pem, true},
    {K_PUB, "pem", r_spki_pem, true},
    {K_PUB, "spki:pem", r_spki_pem, true},
    {K_PUB, "der", r_raw, true},
    {K_PUB, "spki:der", r_raw, true},
    {K_CERT, NULL, r_cert_pem, true},
    {K_CERT, "crt", r_cert_pem, true},
    {K_CERT, "crt:pem", r_cert_pem, true},
    {K_CERT, "pem", r_cert_pem, true},
    {K_CERT, "crt:der", r_cert_der, true},
    {K_CERT, "der", r_cert_der, true},
    {K_CERT, "chain", r_chain, true},
    {K_CERT, SCONE_FORMAT_LEGACY_CHAIN, r_chain_legacy, true},
    {K_CERT, "privatekey", r_key_pem, false},
    {K_CERT, "privatekey:pem", r_key_pem, false},
    {K_CERT, "privatekey:pkcs8:pem", r_key_pem, false},
    {K_CERT, "key", r_key_pem, false},
    {K_CERT, "privatekey:der", r_key_der, false},
    {K_CERT, "privatekey:pkcs8:der", r_key_der, false},
    {K_CERT, "pkcs12-with-private-key", r_pkcs12, false},
    {K_FRAG, NULL, r_fragment, false},
    {K_PGP, "privatekey:asciiarmored", r_pgp_sec_armor, false},
    {K_PGP, "privatekey:binary", r_pgp_sec_bin, false},
    {K_PGP, "privatekey:base64", r_pgp_sec_b64, false},
    {K_PGP, "publickey:asciiarmored", r_pgp_pub_armor, true},
    {K_PGP, "publickey:binary", r_pgp_pub_bin, true},
    {K_PGP, "publickey:base64", r_pgp_pub_b64, true},
};

static const struct format *find_format(uint8_t kind, const char *format)
{
	if (kind >= 32)
		return NULL;
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (!(formats[i].kinds & K(kind)))
			continue;
		if (format ? formats[i].format && strcmp(format, formats[i].format) == 0 : !formats[i].format)
			return &formats[i];
	}
	return NULL;
}

/* Drop (wiped) what a failed render appended. */
static enum scone_err rollback(struct scone_wbuf *out, size_t start, enum scone_err err)
{
	if (err != SCONE_ERR_OK && out->data && out->size > start) {
		scone_wipe(out->data + start, out->size - start);
		out->size = start;
	}
	ERR_clear_error();
	return err;
}

static enum scone_err render(const struct scone_secret_set *set, const char *name, const char *format,
			     bool public_only, struct scone_wbuf *out)
{
	const struct sec_item *it = sec_find(set, name, false);
	size_t start = out->size;
	const struct format *f;

	if (!it)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "secret '%.128s' is not defined by the session",
				     name ? name : "(null)");
	f = find_format(it->kind, format);
	if (!f)
		return scone_err_set(SCONE_ERR_INVALID, "format '%.40s' is not valid for %s secret '%s'",
				     format ? format : "(none)", sec_kind_name(it->kind), it->name);
	if (public_only && !f->pub)
		return scone_err_set(SCONE_ERR_PERMISSION,
				     "format '%.40s' of %s secret '%s' shows its private key, which a public export "
				     "does not release",
				     format ? format : "(none)", sec_kind_name(it->kind), it->name);
	return rollback(out, start, f->fn(it, out));
}

enum scone_err scone_secrets_render(const struct scone_secret_set *set, const char *name, const char *format,
				    struct scone_wbuf *out)
{
	return render(set, name, format, false, out);
}

enum scone_err scone_secrets_render_public(const struct scone_secret_set *set, const char *name,
					   const char *format, struct scone_wbuf *out)
{
	return render(set, name, format, true, out);
}

bool scone_secrets_is_private(const struct scone_secret_set *set, const char *name)
{
	const struct sec_item *it = sec_find(set, name, false);

	return it && (it->kind == SCONE_SECRET_PRIVATE_KEY || it->kind == SCONE_SECRET_X509 ||
		      it->kind == SCONE_SECRET_X509_CA || it->kind == SCONE_SECRET_PGP_KEY);
}

enum scone_err scone_secrets_public(const struct scone_secret_set *set, const char *name,
				    struct scone_wbuf *out)
{
	const struct sec_item *it = sec_find(set, name, false);
	size_t start = out->size;

	if (!it)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "secret '%.128s' is not defined by the session",
				     name ? name : "(null)");
	switch (it->kind) {
	case SCONE_SECRET_X509:
	case SCONE_SECRET_X509_CA:
		return rollback(out, start, r_cert_pem(it, out));
	case SCONE_SECRET_PRIVATE_KEY:
		return rollback(out, start, r_pub_of_key(it, out));
	case SCONE_SECRET_PUBLIC_KEY:
		return rollback(out, start, r_spki_pem(it, out));
	case SCONE_SECRET_PGP_KEY:
		return rollback(out, start, r_pgp_pub_armor(it, out));
	default:
		return SCONE_ERR_OK;
	}
}

enum scone_err scone_secrets_fragment(const struct scone_secret_set *set, const char *name,
				      struct scone_wbuf *out)
{
	const struct sec_item *it = sec_find(set, name, false);

	if (!it || it->kind != SCONE_SECRET_CONFIG_FRAGMENT)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "no config-fragment '%.128s'",
				     name ? name : "(null)");
	return scone_wbuf_put(out, it->value.p, it->value.n);
}
