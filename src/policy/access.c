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

/* A PEM certificate or public key: the hash of its key into p. */
static bool pem_principal(struct pctx *c, const struct ynode *n, struct scone_principal *p)
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
	if (ok && strstr(t + 10, "-----BEGIN ")) {
		pol_error(c, n->pos, "one certificate per entry: this one holds more than one PEM block");
		return false;
	}
	if (!ok)
		pol_error(c, n->pos, "not a readable PEM certificate or public key");
	p->kind = SCONE_PRINCIPAL_KEY;
	return ok;
}

static bool principal(struct pctx *c, const struct ynode *n, struct scone_principal *p)
{
	const char *t = n->text;

	if (!pol_expect(c, n, YN_SCALAR, "CREATOR, ANY, NONE, a certificate or a key hash"))
		return false;
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
		return pem_principal(c, n, p);
	if (!strncmp(t, "sha256:", 7))
		t += 7;
	if (pol_is_hex(t, 32)) {
		p->kind = SCONE_PRINCIPAL_KEY;
		return scone_hex_decode(p->spki_sha256, 32, t, "key hash") == SCONE_ERR_OK;
	}
	if (strstr(t, "$$SCONE::"))
		pol_error(c, n->pos,
			  "secret references are not supported in access_policy: name the certificate or "
			  "its key hash");
	else
		pol_error(c, n->pos,
			  "'%.40s' is not CREATOR, ANY, NONE, a PEM certificate or a key hash (64 hex digits "
			  "of the "
			  "SHA-256 of the DER public key, optionally after \"sha256:\"; SCONE's base58 key "
			  "hashes are "
			  "not accepted)",
			  t);
	return false;
}

static void access_list(struct pctx *c, const struct ynode *map, const char *key,
			struct scone_access_list *out)
{
	const struct ynode *v = pol_field(c, map, key, false);
	size_t saved;
	bool ok = true;

	if (!v)
		return;
	saved = pol_path_key(c, key);
	if (!pol_expect(c, v, YN_SEQ, "a list (e.g. [CREATOR])"))
		goto out;
	if (v->n == 0) {
		pol_error(c, v->pos, "an empty list: leave %s out for the default [CREATOR], or write [NONE]",
			  key);
		goto out;
	}
	out->v = pol_calloc(c, v->n, sizeof(*out->v));
	if (!out->v)
		goto out;
	out->n = v->n;
	for (size_t i = 0; i < v->n; i++) {
		size_t s2 = pol_path_index(c, i);
		ok = principal(c, v->items[i], &out->v[i]) && ok;
		pol_path_restore(c, s2);
	}
	for (size_t i = 0; ok && i < out->n; i++) {
		enum scone_principal_kind k = out->v[i].kind;
		if ((k == SCONE_PRINCIPAL_NONE || k == SCONE_PRINCIPAL_ANY) && out->n > 1) {
			pol_error(c, v->items[i]->pos, "%s must be the only entry of its list",
				  k == SCONE_PRINCIPAL_NONE ? "NONE" : "ANY");
			break;
		}
	}
out:
	pol_path_restore(c, saved);
}

void pol_decode_access(struct pctx *c, const struct ynode *map, struct scone_session *s)
{
	static const char *const keys[] = {"read", "update", "create_sessions", NULL};
	size_t saved = pol_path_key(c, "access_policy");

	if (pol_expect(c, map, YN_MAP, "a mapping with read / update")) {
		pol_check_keys(c, map, keys);
		access_list(c, map, "read", &s->read);
		access_list(c, map, "update", &s->update);
		access_list(c, map, "create_sessions", &s->create_sessions);
	}
	pol_path_restore(c, saved);
}

/* ---- security.attestation ---- */

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
	pol_error(
	    c, n->pos,
	    "unknown issue '%.40s': tolerate lists debug-mode, hyperthreading, insecure-igpu, outdated-tcb, "
	    "software-hardening-needed or insecure-configuration",
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
			pol_error(
			    c, v->pos,
			    "mode maa (Microsoft Azure Attestation) is not supported: use hardware, las or none");
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

static void decode_attestation(struct pctx *c, const struct ynode *m, struct scone_session *s)
{
	static const char *const keys[] = {"mode", "tolerate", "ignore_advisories",
					   "trusted_scone_qe_pubkeys", "one_time_password_shared_secret", NULL};
	const struct ynode *v;
	size_t saved = pol_path_key(c, "attestation");

	if (!pol_expect(c, m, YN_MAP, "a mapping with mode / tolerate / ignore_advisories"))
		goto out;
	pol_check_keys(c, m, keys);
	decode_mode(c, m, s);
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

void pol_decode_security(struct pctx *c, const struct ynode *map, struct scone_session *s)
{
	static const char *const keys[] = {"attestation", NULL};
	const struct ynode *v;
	size_t saved = pol_path_key(c, "security");

	if (pol_expect(c, map, YN_MAP, "a mapping with attestation")) {
		pol_check_keys(c, map, keys);
		if ((v = pol_field(c, map, "attestation", false)))
			decode_attestation(c, v, s);
	}
	pol_path_restore(c, saved);
}
