/*
 * access.c - access_policy (who may read, update, create sessions below
 * this one) and security.attestation (mode, tolerated platform issues).
 *
 * A principal is CREATOR, ANY, NONE, a PEM certificate or public key, or
 * the hex SHA-256 of a DER SubjectPublicKeyInfo (optionally "sha256:"
 * first). Certificates are stored by the hash of their public key, as
 * SCONE does, so a renewed certificate with the same key keeps access.
 */
#include "internal.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/tls.h"

/* SHA-256 of the DER SubjectPublicKeyInfo of k. */
static bool spki_hash(EVP_PKEY *k, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);

	if (n <= 0)
		return false;
	scone_sha256(der, (size_t)n, out);
	OPENSSL_free(der);
	return true;
}

/* A PEM certificate or public key: the hash of its key into p (report: errors at n). */
static bool pem_key_hash(struct pctx *c, const struct ynode *n, struct scone_principal *p, bool report)
{
	const char *t = n->text;
	BIO *bio;
	bool ok = false;

	while (*t == ' ' || *t == '\n' || *t == '\r' || *t == '\t')
		t++;
	bio = BIO_new_mem_buf(t, (int)(n->len - (size_t)(t - n->text)));
	if (!bio) {
		c->nomem = true;
		return false;
	}
	if (!strncmp(t, "-----BEGIN PUBLIC KEY-----", 26)) {
		EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, scone_pem_no_passphrase, NULL);
		ok = k && spki_hash(k, p->spki_sha256);
		EVP_PKEY_free(k);
	} else {
		X509 *x = PEM_read_bio_X509(bio, NULL, scone_pem_no_passphrase, NULL);
		EVP_PKEY *k = x ? X509_get0_pubkey(x) : NULL;
		ok = k && spki_hash(k, p->spki_sha256);
		X509_free(x);
	}
	BIO_free(bio);
	ERR_clear_error();
	if (ok && strstr(t + 10, "-----BEGIN ")) {
		if (report)
			pol_error(c, n->pos,
				  "one certificate per entry: this one holds more than one PEM block");
		return false;
	}
	if (!ok && report)
		pol_error(c, n->pos, "not a readable PEM certificate or public key");
	p->kind = SCONE_PRINCIPAL_KEY;
	return ok;
}

bool pol_principal_pem(struct pctx *c, const struct ynode *n, struct scone_principal *p)
{
	return pem_key_hash(c, n, p, true);
}

/* 40 to 50 characters of Bitcoin's base58 alphabet: how SCONE prints a key hash. */
static bool looks_base58(const char *t)
{
	static const char alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
	size_t n = strlen(t);

	return n >= 40 && n <= 50 && strspn(t, alphabet) == n;
}

/* CREATOR, ANY, NONE, a PEM certificate or public key, or a key hash. */
static bool principal(struct pctx *c, const struct ynode *n, struct scone_principal *p, bool report)
{
	const char *t = n->text;

	if (!strcmp(t, "CREATOR")) {
		p->kind = SCONE_PRINCIPAL_CREATOR;
		return true;
	}
	if (!strcmp(t, "ANY")) {
		p->kind = SCONE_PRINCIPAL_ANY;
		return true;
	}
	if (!strcmp(t, "NONE")) {
		p->kind = SCONE_PRINCIPAL_NONE;
		return true;
	}
	if (strstr(t, "-----BEGIN "))
		return pem_key_hash(c, n, p, report);
	if (!strncmp(t, "sha256:", 7))
		t += 7;
	if (pol_is_hex(t, 32)) {
		p->kind = SCONE_PRINCIPAL_KEY;
		return scone_hex_decode(p->spki_sha256, 32, t, "key hash") == SCONE_ERR_OK;
	}
	if (!report)
		return false;
	if (strstr(t, "$$SCONE::"))
		pol_error(
		    c, n->pos,
		    "a secret reference in access_policy must be the whole entry (\"$$SCONE::NAME$$\")");
	else if (looks_base58(t))
		pol_error(
		    c, n->pos,
		    "'%.20s...' looks like SCONE's base58 key hash, which scone does not read: write the "
		    "certificate itself or its hex key hash (`scone cas id` prints yours)",
		    t);
	else
		pol_error(c, n->pos,
			  "'%.40s' is not CREATOR, ANY, NONE, a PEM certificate or public key, or a key hash "
			  "(64 hex digits, optionally after \"sha256:\"; `scone cas id` prints yours)",
			  t);
	return false;
}

/* ---- governance rules (require-all, require-at-least-N) ---- */

#define RULE_DEPTH_MAX 8

struct list_ctx {
	const char *key; /* read, update, create_sessions */
	bool rules_ok;	 /* governance rules allowed here (not in read) */
	bool has_rule;	 /* a rule was met */
	bool dynamic;	 /* a deferred entry was met */
};

static bool decode_entry(struct pctx *c, const struct ynode *n, struct scone_access_rule *out,
			 struct list_ctx *lc, unsigned depth);
static void free_rule(struct scone_access_rule *r);

/* "require-at-least-N" (N 1..1024) into *need; false for another key. */
static bool at_least_key(const char *k, size_t *need)
{
	size_t n = 0;

	if (strncmp(k, "require-at-least-", 17) != 0 || !k[17])
		return false;
	for (k += 17; *k; k++) {
		if (*k < '0' || *k > '9' || n > SCONE_SESSION_MAX_ITEMS)
			return false;
		n = n * 10 + (size_t)(*k - '0');
	}
	*need = n;
	return true;
}

static bool same_principal(const struct scone_principal *a, const struct scone_principal *b)
{
	return a->kind == b->kind &&
	       (a->kind != SCONE_PRINCIPAL_KEY || memcmp(a->spki_sha256, b->spki_sha256, 32) == 0);
}

/*
 * The entries of a list (a rule's items or the list itself) into
 * out->items. Deferred entries (left for CAS) are left out; a value a
 * resolver put in that is no principal counts as NONE (SCONE ignores it;
 * inside a rule it then stays unmet). Checks ANY/NONE alone and no
 * principal twice among the entries as written.
 */
static bool decode_items(struct pctx *c, const struct ynode *list, struct scone_access_rule *out,
			 struct list_ctx *lc, unsigned depth)
{
	bool ok = true;

	out->items = pol_calloc(c, list->n, sizeof(*out->items));
	if (!out->items)
		return false;
	for (size_t i = 0; i < list->n; i++) {
		const struct ynode *item = list->items[i];
		size_t saved = pol_path_index(c, i);
		struct scone_access_rule *r = &out->items[out->n_items];
		if (decode_entry(c, item, r, lc, depth + 1)) {
			out->n_items++;
			pol_path_restore(c, saved);
			continue;
		}
		free_rule(r); /* what a failed rule built before it failed */
		memset(r, 0, sizeof(*r));
		if (item->resolved) {
			r->kind = SCONE_RULE_PRINCIPAL;
			r->principal.kind = SCONE_PRINCIPAL_NONE;
			out->n_items++;
		} else if (!item->deferred) {
			ok = false;
		}
		pol_path_restore(c, saved);
	}
	for (size_t i = 0; ok && i < list->n; i++) {
		const struct scone_access_rule *r = &out->items[i];
		if (list->items[i]->deferred || list->items[i]->resolved)
			return ok; /* the entries no longer line up with the list; CAS resolved them */
		if (r->kind != SCONE_RULE_PRINCIPAL)
			continue;
		if ((r->principal.kind == SCONE_PRINCIPAL_NONE || r->principal.kind == SCONE_PRINCIPAL_ANY) &&
		    list->n > 1) {
			pol_error(c, list->items[i]->pos, "%s must be the only entry of its list",
				  r->principal.kind == SCONE_PRINCIPAL_NONE ? "NONE" : "ANY");
			return false;
		}
		for (size_t j = 0; j < i; j++) {
			if (out->items[j].kind == SCONE_RULE_PRINCIPAL &&
			    same_principal(&out->items[j].principal, &r->principal)) {
				pol_error(c, list->items[i]->pos,
					  "this entry names the same principal as entry %zu", j);
				return false;
			}
		}
	}
	return ok;
}

static bool decode_rule(struct pctx *c, const struct ynode *m, struct scone_access_rule *out,
			struct list_ctx *lc, unsigned depth)
{
	const struct ynode *k = m->items[0], *v = m->items[1];
	size_t need = 0, saved;
	bool ok;

	if (m->n != 1) {
		pol_error(c, m->pos, "a rule is one key (require-all or require-at-least-N) with a list");
		return false;
	}
	((struct ynode *)k)->used = true;
	if (!strcmp(k->text, "signer")) {
		pol_error(
		    c, k->pos,
		    "signer entries authorize SCONE's signed sessions (scone session sign), which scone "
		    "does not have: uploads are authenticated by the client certificate. Name that "
		    "certificate, its public key or its key hash instead");
		return false;
	}
	if (strcmp(k->text, "require-all") && !at_least_key(k->text, &need)) {
		pol_error(c, k->pos, "unknown rule '%.40s': use require-all or require-at-least-N", k->text);
		return false;
	}
	if (!lc->rules_ok) {
		pol_error(c, k->pos,
			  "governance rules (%s) are not allowed in %s (SCONE allows them in update "
			  "and create_sessions)",
			  k->text, lc->key);
		return false;
	}
	if (depth >= RULE_DEPTH_MAX) {
		pol_error(c, k->pos, "rules nested deeper than %d levels", RULE_DEPTH_MAX);
		return false;
	}
	lc->has_rule = true;
	saved = pol_path_key(c, k->text);
	ok = pol_expect(c, v, YN_SEQ, "a list of entries");
	if (ok && v->n == 0) {
		pol_error(c, v->pos, "an empty rule");
		ok = false;
	}
	if (ok && need && need > v->n) {
		pol_error(c, k->pos, "%s over %zu entries can never be met", k->text, v->n);
		ok = false;
	}
	if (ok && need == 0 && strcmp(k->text, "require-all")) {
		pol_error(c, k->pos, "require-at-least-0 is always met: write ANY if that is meant");
		ok = false;
	}
	out->kind = need ? SCONE_RULE_AT_LEAST : SCONE_RULE_ALL;
	out->need = need;
	ok = ok && decode_items(c, v, out, lc, depth);
	pol_path_restore(c, saved);
	return ok;
}

static bool decode_entry(struct pctx *c, const struct ynode *n, struct scone_access_rule *out,
			 struct list_ctx *lc, unsigned depth)
{
	if (n->deferred) {
		pol_deferred(c, n);
		lc->dynamic = true;
		return false;
	}
	if (n->kind == YN_MAP)
		return decode_rule(c, n, out, lc, depth);
	if (!pol_expect(c, n, YN_SCALAR, "CREATOR, ANY, NONE, a certificate, a key hash or a rule"))
		return false;
	out->kind = SCONE_RULE_PRINCIPAL;
	/* a value a resolver put here that is no principal: ignored, as SCONE ignores it */
	return principal(c, n, &out->principal, !n->resolved);
}

/* ---- can a rule be met by one client identity? ---- */

/* The caller: a key index among the rule's keys, or -1 (another key); the creator likewise. */
struct who {
	int caller, creator;
};

static int key_index(const uint8_t (*keys)[32], size_t n, const uint8_t k[32])
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(keys[i], k, 32) == 0)
			return (int)i;
	return -1;
}

static bool met_by(const struct scone_access_rule *r, const uint8_t (*keys)[32], size_t n_keys, struct who w)
{
	size_t met = 0;

	if (r->kind == SCONE_RULE_PRINCIPAL) {
		switch (r->principal.kind) {
		case SCONE_PRINCIPAL_ANY:
			return true;
		case SCONE_PRINCIPAL_CREATOR:
			return w.caller == w.creator;
		case SCONE_PRINCIPAL_KEY:
			return w.caller >= 0 && key_index(keys, n_keys, r->principal.spki_sha256) == w.caller;
		default:
			return false;
		}
	}
	for (size_t i = 0; i < r->n_items; i++)
		met += met_by(&r->items[i], keys, n_keys, w);
	return r->kind == SCONE_RULE_ALL ? met == r->n_items : met >= r->need;
}

static void collect_keys(const struct scone_access_rule *r, uint8_t (*keys)[32], size_t *n, size_t cap)
{
	if (r->kind == SCONE_RULE_PRINCIPAL && r->principal.kind == SCONE_PRINCIPAL_KEY && *n < cap &&
	    key_index((const uint8_t(*)[32])keys, *n, r->principal.spki_sha256) < 0)
		memcpy(keys[(*n)++], r->principal.spki_sha256, 32);
	for (size_t i = 0; i < r->n_items; i++)
		collect_keys(&r->items[i], keys, n, cap);
}

/* Some caller (a named key or another one, with any creator) meets r. */
static bool satisfiable(const struct scone_access_rule *r)
{
	uint8_t keys[64][32];
	size_t n = 0;

	collect_keys(r, keys, &n, 64);
	for (int caller = -1; caller < (int)n; caller++)
		for (int creator = -2; creator < (int)n; creator++) /* -2: a third key */
			if (met_by(r, (const uint8_t(*)[32])keys, n, (struct who){caller, creator}))
				return true;
	return false;
}

/* ---- one list: read, update, create_sessions ---- */

static void free_rule(struct scone_access_rule *r)
{
	for (size_t i = 0; r && i < r->n_items; i++)
		free_rule(&r->items[i]);
	if (r)
		free(r->items);
}

void pol_free_access_list(struct scone_access_list *l)
{
	free(l->v);
	if (l->rule) {
		free_rule(l->rule);
		free(l->rule);
	}
	memset(l, 0, sizeof(*l));
}

/* A list without rules keeps SCONE's plain form: v/n. */
static bool flatten(struct pctx *c, const struct scone_access_rule *root, struct scone_access_list *out)
{
	out->v = pol_calloc(c, root->n_items ? root->n_items : 1, sizeof(*out->v));
	if (!out->v)
		return false;
	for (size_t i = 0; i < root->n_items; i++)
		out->v[i] = root->items[i].principal;
	out->n = root->n_items;
	return true;
}

static void finish_list(struct pctx *c, const struct ynode *v, struct scone_access_rule *root,
			struct list_ctx *lc, struct scone_access_list *out)
{
	out->dynamic = lc->dynamic;
	if (!lc->has_rule) {
		if (root->n_items || !lc->dynamic)
			flatten(c, root, out);
		if (!root->n_items && !lc->dynamic && v->kind == YN_SEQ && v->n) {
			/* every entry was a resolved value that is no principal: no one */
			out->v[0].kind = SCONE_PRINCIPAL_NONE;
			out->n = 1;
		}
		free_rule(root);
		return;
	}
	if (!lc->dynamic && !satisfiable(root)) {
		pol_error(c, v->pos,
			  "this rule can never be met: CAS authenticates one client certificate per request "
			  "(no session signatures as in SCONE), so different keys cannot all agree: let one "
			  "decide (a plain list or require-at-least-1)");
		free_rule(root);
		return;
	}
	out->rule = pol_calloc(c, 1, sizeof(*out->rule));
	out->v = pol_calloc(c, 1, sizeof(*out->v)); /* NONE for code that reads only v */
	if (!out->rule || !out->v) {
		free_rule(root);
		return;
	}
	*out->rule = *root;
	out->v[0].kind = SCONE_PRINCIPAL_NONE;
	out->n = 1;
}

static void access_list(struct pctx *c, const struct ynode *map, const char *key, bool rules_ok,
			struct scone_access_list *out)
{
	const struct ynode *v = pol_field(c, map, key, false);
	struct list_ctx lc = {key, rules_ok, false, false};
	struct scone_access_rule root = {.kind = SCONE_RULE_AT_LEAST, .need = 1};
	size_t saved;
	bool ok;

	if (!v)
		return;
	saved = pol_path_key(c, key);
	if (v->kind == YN_SEQ && v->n == 0) {
		pol_error(c, v->pos, "an empty list: leave %s out for the default, or write [NONE]", key);
		goto out;
	}
	if (v->kind == YN_SEQ) {
		ok = decode_items(c, v, &root, &lc, 0);
	} else if (v->kind == YN_MAP || v->deferred || (v->kind == YN_SCALAR && !v->null)) {
		/* SCONE's scalar (read: NONE) and single-rule forms: a list of one */
		root.items = pol_calloc(c, 1, sizeof(*root.items));
		ok = root.items && decode_entry(c, v, &root.items[0], &lc, 0);
		if (ok) {
			root.n_items = 1;
		} else if (root.items) {
			/* what a rule built before it failed (found by fuzz_session) */
			free_rule(&root.items[0]);
			memset(&root.items[0], 0, sizeof(root.items[0]));
		}
		ok = ok || v->deferred;
	} else {
		pol_error(c, v->pos, "expected a list (e.g. [CREATOR]), an entry or a rule, got %s",
			  pol_type_name(v));
		goto out;
	}
	if (ok || lc.dynamic)
		finish_list(c, v, &root, &lc, out);
	else
		free_rule(&root);
out:
	pol_path_restore(c, saved);
}

static const struct pol_refusal access_refused[] = {
    {"list_sessions",
     "list_sessions (SCONE 0.3.12) governs listing the sessions of a namespace, an operation scone's CAS "
     "does not have (scone session list shows the sessions you created): remove it"},
    {NULL, NULL},
};

void pol_decode_access(struct pctx *c, const struct ynode *map, struct scone_session *s)
{
	static const char *const keys[] = {"read", "update", "create_sessions", NULL};
	size_t saved = pol_path_key(c, "access_policy");

	if (pol_expect(c, map, YN_MAP, "a mapping with read / update")) {
		pol_check_keys_refusing(c, map, keys, access_refused);
		access_list(c, map, "read", false, &s->read);
		access_list(c, map, "update", true, &s->update);
		access_list(c, map, "create_sessions", true, &s->create_sessions);
	} else if (map->deferred) {
		s->read.dynamic = s->update.dynamic = s->create_sessions.dynamic = true;
	}
	pol_path_restore(c, saved);
}

/* ---- evaluation ---- */

static bool principal_allows(const struct scone_principal *p, const uint8_t *peer, const uint8_t creator[32])
{
	switch (p->kind) {
	case SCONE_PRINCIPAL_ANY:
		return true;
	case SCONE_PRINCIPAL_CREATOR:
		return peer && scone_ct_equal(peer, creator, 32);
	case SCONE_PRINCIPAL_KEY:
		return peer && scone_ct_equal(peer, p->spki_sha256, 32);
	case SCONE_PRINCIPAL_NONE:
	default:
		return false;
	}
}

static bool rule_allows(const struct scone_access_rule *r, const uint8_t *peer, const uint8_t creator[32],
			unsigned depth)
{
	size_t met = 0;

	if (r->kind == SCONE_RULE_PRINCIPAL)
		return principal_allows(&r->principal, peer, creator);
	if (depth > RULE_DEPTH_MAX)
		return false;
	for (size_t i = 0; i < r->n_items; i++)
		met += rule_allows(&r->items[i], peer, creator, depth + 1);
	return r->kind == SCONE_RULE_ALL ? met == r->n_items : met >= r->need;
}

bool scone_access_allows(const struct scone_access_list *l, const uint8_t *peer, const uint8_t creator[32])
{
	static const struct scone_principal creator_only = {.kind = SCONE_PRINCIPAL_CREATOR};

	if (l->rule)
		return !l->dynamic &&
		       rule_allows(l->rule, peer, creator, 0); /* a partial rule decides nothing */
	if (l->n == 0)
		return !l->dynamic && principal_allows(&creator_only, peer, creator);
	for (size_t i = 0; i < l->n; i++)
		if (principal_allows(&l->v[i], peer, creator))
			return true;
	return false;
}

/* ---- security.attestation ---- */

/* SCONE's tolerate values that need a verifier scone does not have: say so. */
static bool tolerate_refused(struct pctx *c, const struct ynode *n)
{
	static const struct pol_refusal refused[] = {
	    {"aepic-leak", "scone's attestation does not assess AEPIC Leak (INTEL-SA-00657), so there is "
			   "nothing to tolerate: remove it"},
	    {"local-attestation-trust-cas-tcb",
	     "SGX local attestation (SCONE 0.3.11) needs an SGX CAS on the "
	     "service's machine, which scone's CAS is not: remove it"},
	    {"maa-managed-tcb", "goes with mode: maa (Microsoft Azure Attestation), which scone does not "
				"support: remove it"},
	    {"debug", "goes with mode: maa, which scone does not support: write debug-mode"},
	    {NULL, NULL},
	};
	for (size_t i = 0; refused[i].key; i++) {
		if (!strcmp(refused[i].key, n->text)) {
			pol_error(c, n->pos, "tolerate %s: %s", n->text, refused[i].why);
			return true;
		}
	}
	return false;
}

static bool check_tolerate(struct pctx *c, const struct ynode *n)
{
	static const char *const known[] = {"debug-mode",
					    "hyperthreading",
					    "insecure-igpu",
					    "outdated-tcb",
					    "software-hardening-needed",
					    "insecure-configuration",
					    NULL};
	for (size_t i = 0; known[i]; i++)
		if (!strcmp(known[i], n->text))
			return true;
	if (!tolerate_refused(c, n))
		pol_error(c, n->pos,
			  "unknown issue '%.40s': tolerate lists debug-mode, hyperthreading, insecure-igpu, "
			  "outdated-tcb, software-hardening-needed or insecure-configuration",
			  n->text);
	return false;
}

static bool check_advisory(struct pctx *c, const struct ynode *n)
{
	if (n->len > 0 && n->len <= 64 && !strchr(n->text, ' ') && strcmp(n->text, "*"))
		return true;
	pol_error(c, n->pos, "'%.40s' is not an advisory id (e.g. INTEL-SA-00161); \"*\" alone means all",
		  n->text);
	return false;
}

static void decode_mode(struct pctx *c, const struct ynode *m, struct scone_session *s)
{
	const struct ynode *v = pol_field(c, m, "mode", false);
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, "mode");
	if (pol_expect(c, v, YN_SCALAR, "hardware, las or none")) {
		if (!strcmp(v->text, "hardware"))
			s->mode = SCONE_ATTEST_HARDWARE;
		else if (!strcmp(v->text, "none"))
			s->mode = SCONE_ATTEST_NONE;
		else if (!strcmp(v->text, "las"))
			s->mode = SCONE_ATTEST_LAS;
		else if (!strcmp(v->text, "maa"))
			pol_error(c, v->pos,
				  "mode maa (Microsoft Azure Attestation) is not supported: use hardware, "
				  "las or none");
		else
			pol_error(c, v->pos,
				  "unknown attestation mode '%.40s': use hardware (the default), las or none",
				  v->text);
	}
	pol_path_restore(c, saved);
}

static void decode_advisories(struct pctx *c, const struct ynode *m, struct scone_session *s)
{
	const struct ynode *v = pol_field(c, m, "ignore_advisories", false);
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, "ignore_advisories");
	if (v->kind == YN_SCALAR && !strcmp(v->text, "*")) {
		pol_strs_add(c, &s->ignore_advisories, "*");
		bool debug = false;
		for (size_t i = 0; i < s->tolerate.n; i++)
			debug = debug || !strcmp(s->tolerate.v[i], "debug-mode");
		if (!debug)
			pol_error(c, v->pos,
				  "ignore_advisories: \"*\" is only allowed with tolerate: [debug-mode, ...] "
				  "(list the advisories for production)");
	} else {
		pol_str_list(c, v, false, false, check_advisory, &s->ignore_advisories);
	}
	pol_path_restore(c, saved);
}

/*
 * url: the Microsoft Azure Attestation provider of mode: maa. A null url
 * (as sessions generated for hardware mode carry) says nothing.
 */
static void decode_url(struct pctx *c, const struct ynode *m)
{
	const struct ynode *v = pol_map_get(m, "url");
	size_t saved;

	if (!v || (v->kind == YN_SCALAR && v->null))
		return;
	saved = pol_path_key(c, "url");
	if (!pol_deferred(c, v))
		pol_error(
		    c, v->pos,
		    "url names the provider of mode: maa (Microsoft Azure Attestation), which scone does "
		    "not support: remove url (or write url: ~)");
	pol_path_restore(c, saved);
}

static const struct pol_refusal attestation_refused[] = {
    {"must_be_sgx_local", "SGX local attestation (SCONE 0.3.11) needs an SGX CAS on the service's machine, "
			  "which scone's CAS is not: remove must_be_sgx_local"},
    {"certificates", "certificates trusts the provider of mode: maa (Microsoft Azure Attestation), which "
		     "scone does not support: remove it"},
    {"min_rsa_signing_key_size", "goes with mode: maa (Microsoft Azure Attestation), which scone does not "
				 "support (and SCONE ignores it since 5.8): remove it"},
    {NULL, NULL},
};

static void decode_attestation(struct pctx *c, const struct ynode *m, struct scone_session *s)
{
	static const char *const keys[] = {"mode",
					   "tolerate",
					   "ignore_advisories",
					   "trusted_scone_qe_pubkeys",
					   "url",
					   "one_time_password_shared_secret",
					   NULL};
	const struct ynode *v;
	size_t saved = pol_path_key(c, "attestation");

	if (!pol_expect(c, m, YN_MAP, "a mapping with mode / tolerate / ignore_advisories"))
		goto out;
	pol_check_keys_refusing(c, m, keys, attestation_refused);
	decode_mode(c, m, s);
	decode_url(c, m);
	if ((v = pol_field(c, m, "tolerate", false))) {
		size_t s2 = pol_path_key(c, "tolerate");
		pol_str_list(c, v, false, false, check_tolerate, &s->tolerate);
		pol_path_restore(c, s2);
	}
	decode_advisories(c, m, s);
	if ((v = pol_field(c, m, "trusted_scone_qe_pubkeys", false))) {
		size_t s2 = pol_path_key(c, "trusted_scone_qe_pubkeys");
		pol_str_list(c, v, false, true, pol_check_hex32, &s->trusted_qe_pubkeys);
		pol_path_restore(c, s2);
	}
out:
	pol_path_restore(c, saved);
}

/*
 * service_access_token: a second factor. A runtime started with
 * SCONE_SERVICE_ACCESS_TOKEN proves it knows the token to CAS, and CAS
 * proves it to the runtime (docs/api.md); neither sends the token itself.
 */
static void decode_access_token(struct pctx *c, const struct ynode *m, struct scone_session *s)
{
	const struct ynode *v = pol_field(c, m, "service_access_token", false);
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, "service_access_token");
	if (pol_expect(c, v, YN_SCALAR, "a token (a random password)")) {
		if (v->len == 0 || v->len > 1024)
			pol_error(c, v->pos, "a service access token is 1 to 1024 bytes");
		else if (strstr(v->text, "$$SCONE::"))
			pol_error(c, v->pos,
				  "a service access token is given as it is, not as a secret reference");
		else
			s->service_access_token = pol_str(c, v);
	}
	pol_path_restore(c, saved);
}

/*
 * singleton_enclaves: SCONE's check that an SGX enclave attests once, made
 * with SGX hardware (FLC) scone's verifiers do not drive. false is the
 * default; true is refused rather than given a weaker meaning.
 */
static void decode_singleton(struct pctx *c, const struct ynode *m)
{
	const struct ynode *v = pol_field(c, m, "singleton_enclaves", false);
	bool on = false;
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, "singleton_enclaves");
	if (pol_bool(c, v, &on) && on)
		pol_error(
		    c, v->pos,
		    "singleton_enclaves: true needs SGX enclaves that attest exactly once (SCONE 5.7 with "
		    "FLC hardware); scone's runtime has no such enclaves, so the guarantee cannot be given: "
		    "remove it (or write false)");
	pol_path_restore(c, saved);
}

void pol_decode_security(struct pctx *c, const struct ynode *map, struct scone_session *s)
{
	static const char *const keys[] = {"attestation", "service_access_token", "singleton_enclaves", NULL};
	const struct ynode *v;
	size_t saved = pol_path_key(c, "security");

	if (pol_expect(c, map, YN_MAP, "a mapping with attestation")) {
		pol_check_keys(c, map, keys);
		if ((v = pol_field(c, map, "attestation", false)))
			decode_attestation(c, v, s);
		decode_access_token(c, map, s);
		decode_singleton(c, map);
	}
	pol_path_restore(c, saved);
}
