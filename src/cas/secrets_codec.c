/*
 * secrets_codec.c - the serialized secret set: what the CAS store seals.
 *
 * Layout (integers little-endian):
 *   magic "SCSS"  u8 version (1)  u32 count
 *   count records, each:
 *     u16 name_len  name            1..256 bytes, no NUL
 *     u8  kind                      enum scone_secret_kind, or 0x80 volume key
 *     u8  flags                     0x01 explicit, 0x02 own key (x509*)
 *     u8  key_type                  enum scone_key_type of the value's key, 0 none
 *     u32 value_len value           <= 1 MiB (see struct sec_item)
 *     u32 cert_len  cert            x509*: certificate DER <= 64 KiB, else 0
 *     u8  n_chain   n_chain * (u32 len, DER)   <= 16 issuer certificates
 * Nothing follows the last record; at most SCONE_SECRETS_MAX_BYTES in all.
 *
 * One encoding per set: parse accepts only what serialize writes, so
 * serialize(parse(b)) == b. The parser checks every length against what is
 * left, refuses duplicate names (per name space: secrets, volume keys),
 * unknown versions, kinds and flags, and checks each value's structure
 * against its kind: keys are PKCS#8 / SPKI DER naming the algorithm (and
 * curve) of the stated key type, certificates have X.509's outer DER
 * structure. It does not decode key material (0.1-0.5 ms a key in OpenSSL
 * 3.0, certificates included, on every load) nor match certificates to
 * keys: the store's AEAD already guarantees that the bytes are ones CAS
 * wrote; these checks catch bugs and keep renders from meeting values of
 * the wrong kind. Any failure is SCONE_ERR_MALFORMED (an
 * oversized blob SCONE_ERR_TOO_LARGE) and frees everything parsed so far.
 */
#include "secrets_internal.h"

#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"

static const char magic[4] = {'S', 'C', 'S', 'S'};
#define CODEC_VERSION 1u
#define RECORD_MIN 15u /* name_len 2, name >= 1, kind/flags/key type 3, two lengths 8, chain count 1 */

/* ---- limits shared by both directions -------------------------------------- */

static bool is_secret_kind(uint8_t kind)
{
	return kind >= SCONE_SECRET_ASCII && kind <= SCONE_SECRET_PGP_KEY;
}

static bool is_cert_kind(uint8_t kind)
{
	return kind == SCONE_SECRET_X509 || kind == SCONE_SECRET_X509_CA;
}

enum scone_err sec_item_check(const struct sec_item *it)
{
	size_t name_len = it->name ? strlen(it->name) : 0;
	uint8_t k = it->kind;

	if (name_len == 0 || name_len > SEC_NAME_MAX)
		return scone_err_set(SCONE_ERR_MALFORMED, "name of %zu bytes (want 1..%d)", name_len,
				     SEC_NAME_MAX);
	if (!is_secret_kind(k) && k != SEC_KIND_VOLUME)
		return scone_err_set(SCONE_ERR_MALFORMED, "unknown kind %u", k);
	if ((it->flags & ~SEC_F_ALL) || ((it->flags & SEC_F_OWN_KEY) && !is_cert_kind(k)) ||
	    (it->flags == SEC_F_ALL) || (k == SEC_KIND_VOLUME && it->flags))
		return scone_err_set(SCONE_ERR_MALFORMED, "flags 0x%02x not valid for a %s", it->flags,
				     sec_kind_name(k));
	if (it->key_type > SCONE_KEY_RSA3072)
		return scone_err_set(SCONE_ERR_MALFORMED, "unknown key type %u", it->key_type);
	if (it->value.n > SEC_VALUE_MAX || it->cert.n > SEC_DER_MAX || it->n_chain > SEC_CHAIN_MAX)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "%s '%.64s' exceeds a size limit (value %d, "
				     "certificate %d, chain %d)",
				     sec_kind_name(k), it->name, SEC_VALUE_MAX, SEC_DER_MAX, SEC_CHAIN_MAX);
	for (size_t i = 0; i < it->n_chain; i++)
		if (it->chain[i].n > SEC_DER_MAX)
			return scone_err_set(SCONE_ERR_MALFORMED, "chain certificate %zu exceeds %d bytes", i,
					     SEC_DER_MAX);
	if (!is_cert_kind(k) && (it->cert.n || it->n_chain))
		return scone_err_set(SCONE_ERR_MALFORMED, "a %s has no certificate", sec_kind_name(k));
	return SCONE_ERR_OK;
}

/* ---- serialize --------------------------------------------------------------- */

static enum scone_err put_blob32(struct scone_wbuf *w, const struct sec_blob *b)
{
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)b->n));
	return scone_wbuf_put(w, b->p, b->n);
}

static enum scone_err put_item(struct scone_wbuf *w, const struct sec_item *it)
{
	size_t name_len = strlen(it->name);

	SCONE_TRY(scone_wbuf_u16(w, (uint16_t)name_len));
	SCONE_TRY(scone_wbuf_put(w, it->name, name_len));
	SCONE_TRY(scone_wbuf_u8(w, it->kind));
	SCONE_TRY(scone_wbuf_u8(w, it->flags));
	SCONE_TRY(scone_wbuf_u8(w, it->key_type));
	SCONE_TRY(put_blob32(w, &it->value));
	SCONE_TRY(put_blob32(w, &it->cert));
	SCONE_TRY(scone_wbuf_u8(w, (uint8_t)it->n_chain));
	for (size_t i = 0; i < it->n_chain; i++)
		SCONE_TRY(put_blob32(w, &it->chain[i]));
	return SCONE_ERR_OK;
}

static enum scone_err put_set(struct scone_wbuf *w, const struct scone_secret_set *set)
{
	if (set->n > SEC_ITEMS_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "secret set of %zu items exceeds %d", set->n,
				     SEC_ITEMS_MAX);
	SCONE_TRY(scone_wbuf_put(w, magic, sizeof(magic)));
	SCONE_TRY(scone_wbuf_u8(w, CODEC_VERSION));
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)set->n));
	for (size_t i = 0; i < set->n; i++) {
		if (sec_item_check(&set->v[i]) != SCONE_ERR_OK)
			return scone_err_set(SCONE_ERR_INVALID, "cannot serialize secret %zu: %s", i,
					     scone_err_detail());
		SCONE_TRY(put_item(w, &set->v[i]));
	}
	return SCONE_ERR_OK;
}

enum scone_err scone_secrets_serialize(const struct scone_secret_set *set, struct scone_wbuf *out)
{
	size_t start = out->size;
	enum scone_err err = put_set(out, set);

	if (err == SCONE_ERR_OK && out->size - start > SCONE_SECRETS_MAX_BYTES)
		err = scone_err_set(SCONE_ERR_TOO_LARGE, "serialized secrets of %zu bytes exceed %d",
				    out->size - start, SCONE_SECRETS_MAX_BYTES);
	if (err != SCONE_ERR_OK && out->data) {
		scone_wipe(out->data + start, out->size - start);
		out->size = start;
	}
	return err;
}

/* ---- parse ---------------------------------------------------------------------- */

static enum scone_err get_blob32(struct scone_rbuf *r, const char *field, size_t max, struct sec_blob *b)
{
	const uint8_t *p;
	uint32_t n;

	SCONE_TRY(scone_rbuf_u32(r, field, &n));
	if (n > max)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s of %u bytes at byte %zu exceeds %zu",
				     r->what, field, n, r->pos - 4, max);
	SCONE_TRY(scone_rbuf_view(r, field, &p, n));
	return sec_blob_dup(b, p, n);
}

static enum scone_err get_name(struct scone_rbuf *r, struct sec_item *it)
{
	const uint8_t *p;
	uint16_t n;

	SCONE_TRY(scone_rbuf_u16(r, "name length", &n));
	if (n == 0 || n > SEC_NAME_MAX)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: name of %u bytes at byte %zu (want 1..%d)",
				     r->what, n, r->pos - 2, SEC_NAME_MAX);
	SCONE_TRY(scone_rbuf_view(r, "name", &p, n));
	if (memchr(p, '\0', n))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: name at byte %zu holds a NUL byte", r->what,
				     r->pos - n);
	it->name = strndup((const char *)p, n);
	if (!it->name)
		return scone_err_set(SCONE_ERR_NOMEM, "no memory for a secret name");
	return SCONE_ERR_OK;
}

static enum scone_err get_item(struct scone_rbuf *r, struct sec_item *it)
{
	uint8_t n_chain;

	SCONE_TRY(get_name(r, it));
	SCONE_TRY(scone_rbuf_u8(r, "kind", &it->kind));
	SCONE_TRY(scone_rbuf_u8(r, "flags", &it->flags));
	SCONE_TRY(scone_rbuf_u8(r, "key type", &it->key_type));
	SCONE_TRY(get_blob32(r, "value", SEC_VALUE_MAX, &it->value));
	SCONE_TRY(get_blob32(r, "certificate", SEC_DER_MAX, &it->cert));
	SCONE_TRY(scone_rbuf_u8(r, "chain length", &n_chain));
	if (n_chain > SEC_CHAIN_MAX)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "%s: chain of %u certificates at byte %zu exceeds %d", r->what, n_chain,
				     r->pos - 1, SEC_CHAIN_MAX);
	if (n_chain) {
		it->chain = calloc(n_chain, sizeof(*it->chain));
		if (!it->chain)
			return scone_err_set(SCONE_ERR_NOMEM, "no memory for a certificate chain");
	}
	for (; it->n_chain < n_chain; it->n_chain++)
		SCONE_TRY(get_blob32(r, "chain certificate", SEC_DER_MAX, &it->chain[it->n_chain]));
	return sec_item_check(it);
}

/* ---- semantic checks of one parsed item ---------------------------------------- */

static enum scone_err check_certs(const struct sec_item *it)
{
	SCONE_TRY(sec_cert_check(it->cert.p, it->cert.n));
	for (size_t i = 0; i < it->n_chain; i++)
		SCONE_TRY(sec_cert_check(it->chain[i].p, it->chain[i].n));
	return SCONE_ERR_OK;
}

static enum scone_err check_value(const struct sec_item *it)
{
	bool has_key = it->kind == SCONE_SECRET_PRIVATE_KEY || it->kind == SCONE_SECRET_PUBLIC_KEY ||
		       (is_cert_kind(it->kind) && (it->value.n || !(it->flags & SEC_F_EXPLICIT)));

	if (it->kind == SEC_KIND_VOLUME && it->value.n != SEC_VOLUME_KEY)
		return scone_err_set(SCONE_ERR_MALFORMED, "volume key of %zu bytes (want %d)", it->value.n,
				     SEC_VOLUME_KEY);
	if (!has_key && it->key_type)
		return scone_err_set(SCONE_ERR_MALFORMED, "a %s without a key states key type %u",
				     sec_kind_name(it->kind), it->key_type);
	if (has_key && it->key_type == 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s without a key type", sec_kind_name(it->kind));
	if (it->kind == SCONE_SECRET_PUBLIC_KEY)
		SCONE_TRY(sec_spki_check(it->value.p, it->value.n, it->key_type));
	else if (has_key)
		SCONE_TRY(sec_pkcs8_check(it->value.p, it->value.n, it->key_type));
	if (is_cert_kind(it->kind))
		SCONE_TRY(check_certs(it));
	if (it->kind == SCONE_SECRET_PGP_KEY)
		SCONE_TRY(sec_pgp_check(it->value.p, it->value.n));
	return SCONE_ERR_OK;
}

/* ---- driver ------------------------------------------------------------------------ */

static bool duplicate(const struct scone_secret_set *set, const struct sec_item *it)
{
	return sec_find(set, it->name, it->kind == SEC_KIND_VOLUME) != it;
}

static enum scone_err parse_items(struct scone_rbuf *r, struct scone_secret_set *set, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		struct sec_item *it = &set->v[set->n++];
		size_t at = r->pos;
		enum scone_err err = get_item(r, it);
		if (err == SCONE_ERR_OK)
			err = check_value(it);
		if (err == SCONE_ERR_OK && duplicate(set, it))
			err = scone_err_set(SCONE_ERR_MALFORMED, "duplicate name");
		if (err != SCONE_ERR_OK)
			return scone_err_set(err == SCONE_ERR_NOMEM ? err : SCONE_ERR_MALFORMED,
					     "secrets: record %u at byte %zu: %s", i, at, scone_err_detail());
	}
	if (scone_rbuf_left(r))
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "secrets: %zu unexpected bytes after the last record",
				     scone_rbuf_left(r));
	return SCONE_ERR_OK;
}

static enum scone_err parse_header(struct scone_rbuf *r, uint32_t *count)
{
	uint8_t m[sizeof(magic)], version;

	SCONE_TRY(scone_rbuf_bytes(r, "magic", m, sizeof(m)));
	if (memcmp(m, magic, sizeof(m)) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "secrets: bad magic (not a serialized secret set)");
	SCONE_TRY(scone_rbuf_u8(r, "version", &version));
	if (version != CODEC_VERSION)
		return scone_err_set(SCONE_ERR_MALFORMED, "secrets: unknown version %u (this build reads %u)",
				     version, CODEC_VERSION);
	SCONE_TRY(scone_rbuf_u32(r, "count", count));
	if (*count > SEC_ITEMS_MAX || *count > scone_rbuf_left(r) / RECORD_MIN)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "secrets: count %u does not fit %zu bytes (limit %d)", *count,
				     scone_rbuf_left(r), SEC_ITEMS_MAX);
	return SCONE_ERR_OK;
}

enum scone_err scone_secrets_parse(const uint8_t *data, size_t len, struct scone_secret_set **out)
{
	struct scone_secret_set *set;
	struct scone_rbuf r;
	uint32_t count = 0;
	enum scone_err err;

	*out = NULL;
	if (len > SCONE_SECRETS_MAX_BYTES)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "secrets: %zu bytes exceed %d", len,
				     SCONE_SECRETS_MAX_BYTES);
	scone_rbuf_init(&r, data, len, "secrets");
	SCONE_TRY(parse_header(&r, &count));
	set = calloc(1, sizeof(*set));
	if (!set || !(set->v = calloc((size_t)count + 1, sizeof(*set->v)))) {
		free(set);
		return scone_err_set(SCONE_ERR_NOMEM, "no memory for %u secrets", count);
	}
	err = parse_items(&r, set, count);
	if (err != SCONE_ERR_OK) {
		scone_secrets_free(set);
		return err;
	}
	*out = set;
	return SCONE_ERR_OK;
}
