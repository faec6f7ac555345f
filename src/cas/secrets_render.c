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

#define K(kind) (1u << (kind))
#define K_BYTES (K(SCONE_SECRET_ASCII) | K(SCONE_SECRET_BINARY))
#define K_PRIV K(SCONE_SECRET_PRIVATE_KEY)
#define K_PUB K(SCONE_SECRET_PUBLIC_KEY)
#define K_CERT (K(SCONE_SECRET_X509) | K(SCONE_SECRET_X509_CA))

/*
 * pub: the format shows nothing a public export (export_public) does not
 * release. For ascii and binary that is the value itself (SCONE publishes
 * it); for keys and certificates only the certificate and the public key.
 */
static const struct format {
	unsigned kinds;
	const char *format; /* NULL: no format given */
	render_fn fn;
	bool pub;
} formats[] = {
    {K_BYTES, NULL, r_raw, true},	       {K_BYTES, "hex", r_hex, true},
    {K_BYTES, "base64", r_base64, true},       {K_PRIV, NULL, r_key_pem, false},
    {K_PRIV, "pem", r_key_pem, false},	       {K_PRIV, "privatekey", r_key_pem, false},
    {K_PRIV, "der", r_raw, false},	       {K_PRIV, "publickey", r_pub_of_key, true},
    {K_PUB, NULL, r_spki_pem, true},	       {K_PUB, "pem", r_spki_pem, true},
    {K_PUB, "der", r_raw, true},	       {K_CERT, NULL, r_cert_pem, true},
    {K_CERT, "crt", r_cert_pem, true},	       {K_CERT, "pem", r_cert_pem, true},
    {K_CERT, "chain", r_chain, true},	       {K_CERT, "privatekey", r_key_pem, false},
    {K_CERT, "key", r_key_pem, false},	       {K_CERT, "der", r_cert_der, true},
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
		      it->kind == SCONE_SECRET_X509_CA);
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
	default:
		return SCONE_ERR_OK;
	}
}
