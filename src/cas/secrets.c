/*
 * secrets.c - the secret set of one session: generation of every value in
 * dependency order, and what survives a session update.
 *
 * Generation. Each non-imported secret of the session becomes one item, in
 * session order, then each volume that needs a key. A secret's references
 * are generated first (depth first): an x509/x509-ca needs its private_key
 * (a private-key secret) and its issuer (an x509-ca secret), a public-key
 * needs its private_key. References must name a secret of this session of
 * the right kind; a reference back to a secret being generated is a cycle
 * (both SCONE_ERR_INVALID with the secret names in the detail). A reference
 * to an imported secret is resolved through the caller's callback
 * (scone_secrets_generate_ex) in the exporting session's set; without one
 * it is INVALID. CA chains may be SEC_CHAIN_MAX deep.
 *
 *   ascii          size (default 20) characters drawn uniformly from the
 *                  71-character alphabet below, or the explicit value
 *   binary         size (default 20, as SCONE) random bytes, or the explicit value
 *   private-key    a new key of key_type (default P-256), or the explicit
 *                  value (unencrypted PEM or DER of a key of the five types)
 *   public-key     the SPKI of private_key, or the explicit value (PEM/DER)
 *   x509, x509-ca  the key of private_key if given, else its own key of
 *                  key_type; a certificate signed by issuer's key (self-
 *                  signed without issuer); chain = issuer's certificate then
 *                  issuer's chain. An explicit value is one or more PEM
 *                  certificates (first = this one, the rest = its chain) and
 *                  takes its key from private_key (which must match) or has
 *                  none.
 *   config-fragment the canonical JSON text of the session's value
 *   pgp-key        a new OpenPGP key (secrets_pgp.c), kept across updates
 *   volume         32 random bytes, for volumes without fspf_key and import
 *
 * Keeping across updates (previous = the set of the session replaced).
 * A previous item counts only if it has the same name and the same kind
 * (a secret that changed kind is new). Then:
 *   ascii/binary   a generated value is kept iff the previous value was
 *                  generated too and has the size now asked for; explicit
 *                  values always come from the session
 *   private-key    kept iff migrate is true, the previous key was generated
 *                  (not explicit) and key_type is unchanged; else a new key
 *   x509, x509-ca  always re-issued (new serial and validity). The key: that
 *                  of private_key (so kept exactly when that secret is kept);
 *                  an own key is kept under the same rule as a private-key
 *                  secret (this secret's migrate, previous own key, same
 *                  key_type). Leaves issued by a re-issued CA verify with the
 *                  new CA certificate when the CA's key was kept.
 *   public-key     derived again (so it changes exactly when its key does)
 *   volume keys    always kept (a new key would make the volume unreadable)
 */
#include "secrets_internal.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"

/* Letters, digits and punctuation that need no quoting in env files, YAML or
 * shell words: no quotes, backslash, $, #, %, !, whitespace or shell metas. */
static const char ascii_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-./:=@_~";
#define ASCII_ALPHABET_LEN (sizeof(ascii_alphabet) - 1)

/* ---- items and sets ------------------------------------------------------- */

/*
 * Values live in OpenSSL's secure heap when scone-cas set one up (locked,
 * never in a core dump; memwipe.c), else in ordinary memory; either way
 * they are wiped when freed.
 */
void sec_blob_free(struct sec_blob *b)
{
	OPENSSL_secure_clear_free(b->p, b->n);
	b->p = NULL;
	b->n = 0;
}

enum scone_err sec_blob_dup(struct sec_blob *b, const void *p, size_t n)
{
	ERR_set_mark();
	b->p = OPENSSL_secure_malloc(n ? n : 1);
	ERR_pop_to_mark(); /* a full secure heap is no error: ordinary memory then */
	if (!b->p)
		b->p = OPENSSL_malloc(n ? n : 1);
	if (!b->p)
		return scone_err_set(SCONE_ERR_NOMEM, "no memory for a %zu-byte secret value", n);
	if (p && n)
		memcpy(b->p, p, n);
	b->n = n;
	return SCONE_ERR_OK;
}

void sec_item_clear(struct sec_item *it)
{
	free(it->name);
	sec_blob_free(&it->value);
	sec_blob_free(&it->cert);
	for (size_t i = 0; i < it->n_chain; i++)
		sec_blob_free(&it->chain[i]);
	free(it->chain);
	memset(it, 0, sizeof(*it));
}

void scone_secrets_free(struct scone_secret_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		sec_item_clear(&set->v[i]);
	free(set->v);
	free(set);
}

const struct sec_item *sec_find(const struct scone_secret_set *set, const char *name, bool volume)
{
	if (!set || !name)
		return NULL;
	for (size_t i = 0; i < set->n; i++) {
		const struct sec_item *it = &set->v[i];
		if ((it->kind == SEC_KIND_VOLUME) == volume && strcmp(it->name, name) == 0)
			return it;
	}
	return NULL;
}

bool scone_secrets_has(const struct scone_secret_set *set, const char *name)
{
	return sec_find(set, name, false) != NULL;
}

const char *sec_kind_name(uint8_t kind)
{
	return kind == SEC_KIND_VOLUME ? "volume key" : scone_secret_kind_name((enum scone_secret_kind)kind);
}

enum scone_err scone_secrets_volume_key(const struct scone_secret_set *set, const char *volume,
					uint8_t key[32])
{
	const struct sec_item *it = sec_find(set, volume, true);

	if (!it)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "no generated key for volume '%.128s'",
				     volume ? volume : "(null)");
	memcpy(key, it->value.p, SEC_VOLUME_KEY);
	return SCONE_ERR_OK;
}

/* ---- generation state ------------------------------------------------------ */

enum slot_state { SLOT_TODO, SLOT_BUSY, SLOT_DONE };

struct gen_slot {
	enum slot_state state;
	struct sec_item *item;	    /* the item generated; NULL for imported secrets */
	const struct sec_item *src; /* what dependants read: item, or the imported item */
	EVP_PKEY *key;		    /* private key (private-key, x509* with a key) */
	X509 *cert;		    /* x509* */
};

struct gen {
	const struct scone_session *s;
	const struct scone_secret_set *prev;
	struct scone_secret_set *set;
	struct gen_slot *slots;
	scone_secrets_import_fn resolve; /* NULL: imported references are refused */
	void *resolve_ctx;
	unsigned budget; /* units of key generation allowed */
	unsigned spent;
};

static enum scone_err generate_slot(struct gen *g, size_t i);

static size_t secret_index(const struct scone_session *s, const char *name)
{
	for (size_t i = 0; i < s->n_secrets; i++)
		if (s->secrets[i].name && strcmp(s->secrets[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

/*
 * An imported secret that a secret of ours depends on: the exporting
 * session's item (borrowed from the caller's set until generation ends),
 * with its key and certificate decoded for signing and chains.
 */
static enum scone_err resolve_import(struct gen *g, size_t j, const char *me, const char *role)
{
	const struct scone_secret *def = &g->s->secrets[j];
	struct gen_slot *slot = &g->slots[j];
	const struct scone_secret_set *set = NULL;
	const char *there = NULL;
	const struct sec_item *it;

	if (slot->state == SLOT_DONE)
		return SCONE_ERR_OK;
	if (!g->resolve)
		return scone_err_set(SCONE_ERR_INVALID,
				     "secret '%s': %s '%s' is imported, and imports cannot be "
				     "resolved here",
				     me, role, def->name);
	SCONE_TRY(g->resolve(g->resolve_ctx, def, &set, &there));
	it = sec_find(set, there, false);
	if (!it)
		return scone_err_set(SCONE_ERR_NOT_FOUND,
				     "secret '%s': %s '%s' is imported from session '%.128s', "
				     "which has no secret '%.128s'",
				     me, role, def->name, def->import->session ? def->import->session : "?",
				     there ? there : "?");
	/* Only the kinds whose value is a PKCS#8 key (dep checks the kind wanted). */
	if (it->value.n && (it->kind == SCONE_SECRET_PRIVATE_KEY || it->kind == SCONE_SECRET_X509 ||
			    it->kind == SCONE_SECRET_X509_CA))
		SCONE_TRY(sec_key_from_pkcs8(it->value.p, it->value.n, &slot->key));
	if (it->cert.n)
		SCONE_TRY(sec_cert_from_der(it->cert.p, it->cert.n, &slot->cert));
	slot->src = it;
	slot->state = SLOT_DONE;
	return SCONE_ERR_OK;
}

/* The secret `role` of secret from refers to, generated or imported, of kind want. */
static enum scone_err dep(struct gen *g, size_t from, const char *name, uint8_t want, const char *role,
			  struct gen_slot **out)
{
	const char *me = g->s->secrets[from].name;
	size_t j = secret_index(g->s, name);
	const struct scone_secret *def;

	if (j == SIZE_MAX)
		return scone_err_set(SCONE_ERR_INVALID,
				     "secret '%s': %s '%.128s' is not a secret of this session", me, role,
				     name);
	def = &g->s->secrets[j];
	if (def->import) {
		SCONE_TRY(resolve_import(g, j, me, role));
	} else {
		if (g->slots[j].state == SLOT_BUSY)
			return scone_err_set(SCONE_ERR_INVALID,
					     "secret '%s': %s '%.128s' leads back to itself "
					     "(a cycle of issuer/private_key references)",
					     me, role, name);
		SCONE_TRY(generate_slot(g, j));
	}
	if (g->slots[j].src->kind != want)
		return scone_err_set(SCONE_ERR_INVALID, "secret '%s': %s '%.128s' is a %s secret, not %s", me,
				     role, name, sec_kind_name(g->slots[j].src->kind), sec_kind_name(want));
	*out = &g->slots[j];
	return SCONE_ERR_OK;
}

/* The previous item to keep from, if name and kind match. */
static const struct sec_item *prev_of(const struct gen *g, const struct scone_secret *def)
{
	const struct sec_item *p = sec_find(g->prev, def->name, false);

	return p && p->kind == def->kind ? p : NULL;
}

/* ---- ascii and binary ------------------------------------------------------- */

static enum scone_err random_ascii(struct sec_blob *out, size_t n)
{
	uint8_t pool[64];
	size_t filled = 0;
	enum scone_err err = SCONE_ERR_OK;

	SCONE_TRY(sec_blob_dup(out, NULL, n));
	while (filled < n && err == SCONE_ERR_OK) {
		err = scone_random(pool, sizeof(pool));
		/* Rejection sampling keeps the choice uniform: 213 = 3 * 71. */
		for (size_t i = 0; err == SCONE_ERR_OK && i < sizeof(pool) && filled < n; i++)
			if (pool[i] < 3 * ASCII_ALPHABET_LEN)
				out->p[filled++] = (uint8_t)ascii_alphabet[pool[i] % ASCII_ALPHABET_LEN];
	}
	scone_wipe(pool, sizeof(pool));
	if (err != SCONE_ERR_OK)
		sec_blob_free(out);
	return err;
}

static enum scone_err gen_bytes(struct gen *g, size_t i)
{
	const struct scone_secret *def = &g->s->secrets[i];
	struct sec_item *it = g->slots[i].item;
	const struct sec_item *prev = prev_of(g, def);
	bool ascii = def->kind == SCONE_SECRET_ASCII;
	size_t n = def->size ? def->size : ascii ? SEC_ASCII_DEFAULT : SEC_BINARY_DEFAULT;

	if (def->value) {
		if (def->value_len > SEC_VALUE_MAX)
			return scone_err_set(SCONE_ERR_INVALID, "secret '%s': value of %zu bytes exceeds %d",
					     def->name, def->value_len, SEC_VALUE_MAX);
		it->flags = SEC_F_EXPLICIT;
		return sec_blob_dup(&it->value, def->value, def->value_len);
	}
	if (n > SEC_GEN_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "secret '%s': size %zu exceeds %d", def->name, n,
				     SEC_GEN_MAX);
	if (prev && !(prev->flags & SEC_F_EXPLICIT) && prev->value.n == n)
		return sec_blob_dup(&it->value, prev->value.p, n);
	if (ascii)
		return random_ascii(&it->value, n);
	SCONE_TRY(sec_blob_dup(&it->value, NULL, n));
	return scone_random(it->value.p, n);
}

/* ---- keys --------------------------------------------------------------------- */

unsigned scone_secrets_key_cost(enum scone_key_type type)
{
	switch (type) {
	case SCONE_KEY_RSA2048:
		return SCONE_SECRETS_COST_RSA2048;
	case SCONE_KEY_RSA3072:
		return SCONE_SECRETS_COST_RSA3072;
	default:
		return 0;
	}
}

static uint8_t own_key_type(const struct scone_secret *def)
{
	return def->key_type ? (uint8_t)def->key_type : SCONE_KEY_P256;
}

/* Is the key of prev kept for def (the keep rule at the top of this file)? */
static bool keeps_key(const struct scone_secret *def, const struct sec_item *prev, uint8_t need_flag)
{
	return def->migrate && prev && !(prev->flags & SEC_F_EXPLICIT) &&
	       (prev->flags & need_flag) == need_flag && prev->key_type == own_key_type(def) && prev->value.n;
}

/*
 * The slot's own private key: kept from prev (when keep and prev holds a
 * generated key of the same type, flagged with need_flag) or new, within
 * the key-generation budget. Sets value (PKCS#8), key_type and slot->key.
 */
static enum scone_err own_key(struct gen *g, struct gen_slot *slot, const struct scone_secret *def,
			      const struct sec_item *prev, uint8_t need_flag)
{
	struct sec_item *it = slot->item;
	uint8_t type = own_key_type(def);
	unsigned cost;

	if (def->key_type < 0 || def->key_type > SCONE_KEY_RSA3072)
		return scone_err_set(SCONE_ERR_INVALID, "secret '%s': unknown key type %d", def->name,
				     (int)def->key_type);
	it->key_type = type;
	if (keeps_key(def, prev, need_flag)) {
		SCONE_TRY(sec_key_from_pkcs8(prev->value.p, prev->value.n, &slot->key));
		return sec_blob_dup(&it->value, prev->value.p, prev->value.n);
	}
	cost = scone_secrets_key_cost((enum scone_key_type)type);
	if (cost > g->budget - g->spent)
		return scone_err_set(
		    SCONE_ERR_LIMIT,
		    "secret '%s': a new key of this type costs %u units of key generation, and only %u "
		    "of %u are left",
		    def->name, cost, g->budget - g->spent, g->budget);
	g->spent += cost;
	SCONE_TRY(sec_key_generate(type, &slot->key));
	return sec_key_to_pkcs8(slot->key, &it->value);
}

/* Does generating def make a key of its own (not a given value, a private_key or an import)? */
static bool makes_own_key(const struct scone_secret *def, uint8_t *need_flag)
{
	if (def->import || def->value)
		return false;
	*need_flag = def->kind == SCONE_SECRET_PRIVATE_KEY ? 0 : SEC_F_OWN_KEY;
	return def->kind == SCONE_SECRET_PRIVATE_KEY ||
	       ((def->kind == SCONE_SECRET_X509 || def->kind == SCONE_SECRET_X509_CA) && !def->private_key);
}

unsigned scone_secrets_keygen_cost(const struct scone_session *s, const struct scone_secret_set *previous)
{
	unsigned total = 0;

	for (size_t i = 0; i < s->n_secrets; i++) {
		const struct scone_secret *def = &s->secrets[i];
		const struct sec_item *prev;
		uint8_t need = 0;
		if (!def->name || !makes_own_key(def, &need))
			continue;
		prev = sec_find(previous, def->name, false);
		if (prev && prev->kind != def->kind)
			prev = NULL;
		if (!keeps_key(def, prev, need))
			total += scone_secrets_key_cost((enum scone_key_type)own_key_type(def));
	}
	return total;
}

static enum scone_err gen_private_key(struct gen *g, size_t i)
{
	const struct scone_secret *def = &g->s->secrets[i];
	struct gen_slot *slot = &g->slots[i];

	if (!def->value)
		return own_key(g, slot, def, prev_of(g, def), 0);
	slot->item->flags = SEC_F_EXPLICIT;
	SCONE_TRY(sec_key_from_text(def->name, def->value, def->value_len, false, &slot->key));
	SCONE_TRY(sec_key_type_of(slot->key, &slot->item->key_type));
	return sec_key_to_pkcs8(slot->key, &slot->item->value);
}

static enum scone_err gen_public_key(struct gen *g, size_t i)
{
	const struct scone_secret *def = &g->s->secrets[i];
	struct sec_item *it = g->slots[i].item;
	struct gen_slot *priv;
	EVP_PKEY *k = NULL;
	enum scone_err err;

	if (def->value) {
		it->flags = SEC_F_EXPLICIT;
		SCONE_TRY(sec_key_from_text(def->name, def->value, def->value_len, true, &k));
		err = sec_key_type_of(k, &it->key_type);
		if (err == SCONE_ERR_OK)
			err = sec_key_to_spki(k, &it->value);
		EVP_PKEY_free(k);
		return err;
	}
	if (!def->private_key)
		return scone_err_set(SCONE_ERR_INVALID,
				     "public-key secret '%s' names no private_key and has no "
				     "value",
				     def->name);
	SCONE_TRY(dep(g, i, def->private_key, SCONE_SECRET_PRIVATE_KEY, "private_key", &priv));
	it->key_type = priv->src->key_type;
	return sec_key_to_spki(priv->key, &it->value);
}

/* ---- certificates ---------------------------------------------------------------- */

/* x509* key: that of private_key, or its own. */
static enum scone_err cert_key(struct gen *g, size_t i)
{
	const struct scone_secret *def = &g->s->secrets[i];
	struct gen_slot *slot = &g->slots[i], *priv;

	if (!def->private_key) {
		slot->item->flags |= SEC_F_OWN_KEY;
		return own_key(g, slot, def, prev_of(g, def), SEC_F_OWN_KEY);
	}
	SCONE_TRY(dep(g, i, def->private_key, SCONE_SECRET_PRIVATE_KEY, "private_key", &priv));
	if (!EVP_PKEY_up_ref(priv->key))
		return scone_err_set(SCONE_ERR_CRYPTO, "secret '%s': referencing its key failed", def->name);
	slot->key = priv->key;
	slot->item->key_type = priv->src->key_type;
	return sec_blob_dup(&slot->item->value, priv->src->value.p, priv->src->value.n);
}

/* DER of x for secret name, within what the codec stores. */
static enum scone_err cert_der(X509 *x, struct sec_blob *out, const char *name)
{
	SCONE_TRY(sec_cert_to_der(x, out));
	if (out->n > SEC_DER_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "secret '%s': certificate of %zu bytes exceeds %d",
				     name, out->n, SEC_DER_MAX);
	return SCONE_ERR_OK;
}

/* chain = issuer's certificate, then issuer's chain. */
static enum scone_err set_chain(struct sec_item *it, const struct sec_item *issuer)
{
	size_t n = 1 + issuer->n_chain;

	if (n > SEC_CHAIN_MAX)
		return scone_err_set(SCONE_ERR_INVALID,
				     "secret '%s': issuer chain deeper than %d certificates", it->name,
				     SEC_CHAIN_MAX);
	it->chain = calloc(n, sizeof(*it->chain));
	if (!it->chain)
		return scone_err_set(SCONE_ERR_NOMEM, "secret '%s': no memory for its chain", it->name);
	it->n_chain = n;
	SCONE_TRY(sec_blob_dup(&it->chain[0], issuer->cert.p, issuer->cert.n));
	for (size_t k = 1; k < n; k++)
		SCONE_TRY(sec_blob_dup(&it->chain[k], issuer->chain[k - 1].p, issuer->chain[k - 1].n));
	return SCONE_ERR_OK;
}

static enum scone_err gen_cert_issued(struct gen *g, size_t i)
{
	const struct scone_secret *def = &g->s->secrets[i];
	struct gen_slot *slot = &g->slots[i], *issuer = NULL;
	struct sec_cert_req req = {.def = def, .ca = def->kind == SCONE_SECRET_X509_CA};

	SCONE_TRY(cert_key(g, i));
	if (def->issuer) {
		SCONE_TRY(dep(g, i, def->issuer, SCONE_SECRET_X509_CA, "issuer", &issuer));
		if (!issuer->key)
			return scone_err_set(SCONE_ERR_INVALID,
					     "secret '%s': issuer '%s' has no private key to "
					     "sign with",
					     def->name, def->issuer);
		SCONE_TRY(set_chain(slot->item, issuer->src));
		req.issuer = issuer->cert;
		req.issuer_key = issuer->key;
	}
	req.key = slot->key;
	SCONE_TRY(sec_cert_issue(&req, &slot->cert));
	return cert_der(slot->cert, &slot->item->cert, def->name);
}

/* An explicit certificate (and chain); key from private_key, which must match. */
static enum scone_err gen_cert_explicit(struct gen *g, size_t i, X509 **certs, size_t *n)
{
	const struct scone_secret *def = &g->s->secrets[i];
	struct gen_slot *slot = &g->slots[i], *priv;
	struct sec_item *it = slot->item;

	it->flags = SEC_F_EXPLICIT;
	SCONE_TRY(sec_certs_from_text(def->name, def->value, def->value_len, certs, n));
	if (def->private_key) {
		SCONE_TRY(dep(g, i, def->private_key, SCONE_SECRET_PRIVATE_KEY, "private_key", &priv));
		if (X509_check_private_key(certs[0], priv->key) != 1) {
			ERR_clear_error();
			return scone_err_set(SCONE_ERR_INVALID,
					     "secret '%s': certificate does not match the key "
					     "of private_key '%s'",
					     def->name, def->private_key);
		}
		if (!EVP_PKEY_up_ref(priv->key))
			return scone_err_set(SCONE_ERR_CRYPTO, "secret '%s': referencing its key failed",
					     def->name);
		slot->key = priv->key;
		it->key_type = priv->src->key_type;
		SCONE_TRY(sec_blob_dup(&it->value, priv->item->value.p, priv->item->value.n));
	}
	if (!X509_up_ref(certs[0]))
		return scone_err_set(SCONE_ERR_CRYPTO, "secret '%s': referencing its certificate failed",
				     def->name);
	slot->cert = certs[0];
	SCONE_TRY(cert_der(certs[0], &it->cert, def->name));
	if (*n > 1) {
		it->chain = calloc(*n - 1, sizeof(*it->chain));
		if (!it->chain)
			return scone_err_set(SCONE_ERR_NOMEM, "secret '%s': no memory for its chain",
					     def->name);
		it->n_chain = *n - 1;
		for (size_t k = 1; k < *n; k++)
			SCONE_TRY(cert_der(certs[k], &it->chain[k - 1], def->name));
	}
	return SCONE_ERR_OK;
}

static enum scone_err gen_cert(struct gen *g, size_t i)
{
	X509 *certs[1 + SEC_CHAIN_MAX];
	size_t n = 0;
	enum scone_err err;

	if (!g->s->secrets[i].value)
		return gen_cert_issued(g, i);
	err = gen_cert_explicit(g, i, certs, &n);
	for (size_t k = 0; k < n; k++)
		X509_free(certs[k]);
	return err;
}

/* ---- config-fragment and pgp-key ------------------------------------------------ */

/* A config-fragment's value: the canonical JSON text the session gave. */
static enum scone_err gen_fragment(struct gen *g, size_t i)
{
	const struct scone_secret *def = &g->s->secrets[i];
	struct sec_item *it = g->slots[i].item;

	if (!def->value || def->value_len > SEC_VALUE_MAX)
		return scone_err_set(SCONE_ERR_INVALID,
				     "secret '%s': a config-fragment needs a value of at most %d "
				     "bytes",
				     def->name, SEC_VALUE_MAX);
	it->flags = SEC_F_EXPLICIT;
	return sec_blob_dup(&it->value, def->value, def->value_len);
}

/* An OpenPGP key: kept across updates (as SCONE keeps pgp-key values), else new. */
static enum scone_err gen_pgp(struct gen *g, size_t i)
{
	const struct scone_secret *def = &g->s->secrets[i];
	struct sec_item *it = g->slots[i].item;
	const struct sec_item *prev = prev_of(g, def);

	if (prev && prev->value.n)
		return sec_blob_dup(&it->value, prev->value.p, prev->value.n);
	return sec_pgp_generate(&it->value);
}

/* ---- driver ------------------------------------------------------------------------ */

static enum scone_err generate_slot(struct gen *g, size_t i)
{
	struct gen_slot *slot = &g->slots[i];
	enum scone_err err;

	if (slot->state == SLOT_DONE || !slot->item)
		return SCONE_ERR_OK;
	slot->state = SLOT_BUSY;
	slot->src = slot->item;
	switch (g->s->secrets[i].kind) {
	case SCONE_SECRET_ASCII:
	case SCONE_SECRET_BINARY:
		err = gen_bytes(g, i);
		break;
	case SCONE_SECRET_PRIVATE_KEY:
		err = gen_private_key(g, i);
		break;
	case SCONE_SECRET_PUBLIC_KEY:
		err = gen_public_key(g, i);
		break;
	case SCONE_SECRET_X509:
	case SCONE_SECRET_X509_CA:
		err = gen_cert(g, i);
		break;
	case SCONE_SECRET_CONFIG_FRAGMENT:
		err = gen_fragment(g, i);
		break;
	case SCONE_SECRET_PGP_KEY:
		err = gen_pgp(g, i);
		break;
	default:
		err = scone_err_set(SCONE_ERR_INVALID, "secret '%s' has unknown kind %d",
				    g->s->secrets[i].name, (int)g->s->secrets[i].kind);
	}
	slot->state = SLOT_DONE;
	return err;
}

static enum scone_err check_name(const char *name, const char *what, size_t i)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > SEC_NAME_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "%s[%zu]: name must be 1..%d bytes", what, i,
				     SEC_NAME_MAX);
	return SCONE_ERR_OK;
}

/* One item per non-imported secret, in session order; duplicates refused. */
static enum scone_err add_secret_items(struct gen *g)
{
	const struct scone_session *s = g->s;

	for (size_t i = 0; i < s->n_secrets; i++) {
		const struct scone_secret *def = &s->secrets[i];
		struct sec_item *it;
		SCONE_TRY(check_name(def->name, "secrets", i));
		if (secret_index(s, def->name) != i)
			return scone_err_set(SCONE_ERR_INVALID, "secrets[%zu]: name '%s' is defined twice", i,
					     def->name);
		if (def->import)
			continue;
		it = &g->set->v[g->set->n++];
		it->kind = (uint8_t)def->kind;
		it->name = strdup(def->name);
		if (!it->name)
			return scone_err_set(SCONE_ERR_NOMEM, "no memory for secret name");
		g->slots[i].item = it;
	}
	return SCONE_ERR_OK;
}

static enum scone_err add_volume_keys(struct gen *g)
{
	const struct scone_session *s = g->s;

	for (size_t i = 0; i < s->n_volumes; i++) {
		const struct scone_volume *v = &s->volumes[i];
		const struct sec_item *prev;
		struct sec_item *it;
		SCONE_TRY(check_name(v->name, "volumes", i));
		if (v->fspf_key || v->import)
			continue;
		if (sec_find(g->set, v->name, true))
			return scone_err_set(SCONE_ERR_INVALID, "volumes[%zu]: name '%s' is defined twice", i,
					     v->name);
		it = &g->set->v[g->set->n++];
		it->kind = SEC_KIND_VOLUME;
		it->name = strdup(v->name);
		if (!it->name)
			return scone_err_set(SCONE_ERR_NOMEM, "no memory for volume name");
		prev = sec_find(g->prev, v->name, true);
		if (prev)
			SCONE_TRY(sec_blob_dup(&it->value, prev->value.p, SEC_VOLUME_KEY));
		else {
			SCONE_TRY(sec_blob_dup(&it->value, NULL, SEC_VOLUME_KEY));
			SCONE_TRY(scone_random(it->value.p, SEC_VOLUME_KEY));
		}
	}
	return SCONE_ERR_OK;
}

static enum scone_err generate_all(struct gen *g)
{
	const struct scone_session *s = g->s;

	if (s->n_secrets > SCONE_SESSION_MAX_ITEMS || s->n_volumes > SCONE_SESSION_MAX_ITEMS)
		return scone_err_set(SCONE_ERR_INVALID,
				     "session has %zu secrets and %zu volumes (at most %d each)",
				     s->n_secrets, s->n_volumes, SCONE_SESSION_MAX_ITEMS);
	g->set->v = calloc(s->n_secrets + s->n_volumes + 1, sizeof(*g->set->v));
	g->slots = calloc(s->n_secrets + 1, sizeof(*g->slots));
	if (!g->set->v || !g->slots)
		return scone_err_set(SCONE_ERR_NOMEM, "no memory for %zu secrets", s->n_secrets);
	SCONE_TRY(add_secret_items(g));
	for (size_t i = 0; i < s->n_secrets; i++)
		SCONE_TRY(generate_slot(g, i));
	return add_volume_keys(g);
}

enum scone_err scone_secrets_generate(const struct scone_session *s, const struct scone_secret_set *previous,
				      struct scone_secret_set **out)
{
	return scone_secrets_generate_ex(s, previous, NULL, NULL, out);
}

enum scone_err scone_secrets_generate_ex(const struct scone_session *s,
					 const struct scone_secret_set *previous,
					 scone_secrets_import_fn resolve, void *ctx,
					 struct scone_secret_set **out)
{
	struct scone_secrets_opts o = {.resolve = resolve, .resolve_ctx = ctx, .key_budget = UINT_MAX};

	return scone_secrets_generate_opts(s, previous, &o, out);
}

enum scone_err scone_secrets_generate_opts(const struct scone_session *s,
					   const struct scone_secret_set *previous,
					   struct scone_secrets_opts *o, struct scone_secret_set **out)
{
	struct gen g = {.s = s,
			.prev = previous,
			.resolve = o->resolve,
			.resolve_ctx = o->resolve_ctx,
			.budget = o->key_budget};
	enum scone_err err;

	*out = NULL;
	g.set = calloc(1, sizeof(*g.set));
	if (!g.set)
		return scone_err_set(SCONE_ERR_NOMEM, "no memory for a secret set");
	err = generate_all(&g);
	for (size_t i = 0; g.slots && i < s->n_secrets; i++) {
		EVP_PKEY_free(g.slots[i].key);
		X509_free(g.slots[i].cert);
	}
	free(g.slots);
	ERR_clear_error();
	o->key_spent = g.spent;
	if (err != SCONE_ERR_OK) {
		scone_secrets_free(g.set);
		return err;
	}
	*out = g.set;
	return SCONE_ERR_OK;
}
