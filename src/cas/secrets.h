/*
 * secrets.h - the values behind a session's secrets[] and volumes[]:
 * generation (random ascii/binary, private keys, x509 and x509-ca
 * certificates), keeping them across session updates, a compact sealed-
 * ready serialization for the store, and rendering in the formats the
 * templates ask for ($$SCONE::name:format$$).
 *
 * A secret set belongs to one session. Imported secrets are not in it; the
 * caller resolves them in the exporting session's set.
 */
#ifndef SCONE_CAS_SECRETS_H
#define SCONE_CAS_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "policy/policy.h"

#define SCONE_SECRETS_MAX_BYTES (4 * 1024 * 1024)

struct scone_secret_set;

/*
 * Generate the values of every non-imported secret of s, and a 32-byte key
 * for every volume of s without an fspf_key or import. With previous (the
 * set of the session being updated) values are kept when name and kind stay
 * the same: ascii/binary/explicit-value kept only if the definition (size,
 * value) is unchanged; private keys kept when migrate is true and key_type
 * unchanged (else regenerated); x509/x509-ca re-issued (new serial), keeping
 * their private key if it is kept (an own key: under the certificate's own
 * migrate); volume keys always kept. Explicit values are taken from the
 * session. Generated ascii uses the 71 characters A-Z a-z 0-9 + - . / : = @
 * _ ~ (no quotes, backslash, $, #, %, ! or whitespace). Exact rules: top of
 * secrets.c. Errors: INVALID (references, cycles, certificate fields, with
 * the secret's name in the detail), CRYPTO, NOMEM; *out NULL on error.
 */
SCONE_MUST_CHECK enum scone_err scone_secrets_generate(const struct scone_session *s,
						       const struct scone_secret_set *previous,
						       struct scone_secret_set **out);
void scone_secrets_free(struct scone_secret_set *set);

/*
 * Imported secrets that a secret of s refers to (an imported private_key
 * of an x509/x509-ca/public-key, an imported issuer): resolve fills *set
 * with the exporting session's secret set and *name with the secret's name
 * there (imported->import->name, or imported->name), both borrowed until
 * scone_secrets_generate_ex returns. It decides whether the import is
 * allowed; its error is returned as is. scone_secrets_generate (no
 * resolver) refuses such references with INVALID.
 */
typedef enum scone_err (*scone_secrets_import_fn)(void *ctx, const struct scone_secret *imported,
						  const struct scone_secret_set **set, const char **name);
SCONE_MUST_CHECK enum scone_err scone_secrets_generate_ex(const struct scone_session *s,
							  const struct scone_secret_set *previous,
							  scone_secrets_import_fn resolve, void *ctx,
							  struct scone_secret_set **out);

/*
 * Key generation has a cost, in units: an RSA-2048 key 1, an RSA-3072 key
 * 4 (about 0.2 s and 0.7 s of one core); P-256, P-384 and Ed25519 keys 0.
 * scone_secrets_keygen_cost is what generating s (after previous, or NULL
 * for a new session) will spend under the keep rules above; with
 * scone_secrets_generate_opts, generation stops with SCONE_ERR_LIMIT
 * before a key that would take key_spent over key_budget.
 */
#define SCONE_SECRETS_COST_RSA2048 1u
#define SCONE_SECRETS_COST_RSA3072 4u
unsigned scone_secrets_key_cost(enum scone_key_type type);
unsigned scone_secrets_keygen_cost(const struct scone_session *s, const struct scone_secret_set *previous);

struct scone_secrets_opts {
	scone_secrets_import_fn resolve; /* as for scone_secrets_generate_ex; NULL refuses imports */
	void *resolve_ctx;
	unsigned key_budget; /* units allowed; UINT_MAX: no limit */
	unsigned key_spent;  /* out: units spent, also when generation failed */
};
SCONE_MUST_CHECK enum scone_err scone_secrets_generate_opts(const struct scone_session *s,
							    const struct scone_secret_set *previous,
							    struct scone_secrets_opts *o,
							    struct scone_secret_set **out);

/*
 * Serialize (appended to out, which should be a secret wbuf; format at the
 * top of secrets_codec.c) / parse (untrusted input: every field bounds-
 * checked, MALFORMED or TOO_LARGE otherwise; fuzz/fuzz_secrets.c).
 */
SCONE_MUST_CHECK enum scone_err scone_secrets_serialize(const struct scone_secret_set *set,
							struct scone_wbuf *out);
SCONE_MUST_CHECK enum scone_err scone_secrets_parse(const uint8_t *data, size_t len,
						    struct scone_secret_set **out);

/* Is name a secret in the set? */
bool scone_secrets_has(const struct scone_secret_set *set, const char *name);

/*
 * Write secret name rendered in format into out (a secret wbuf):
 *   ascii/binary:   NULL = raw bytes, "hex", "base64"
 *   private-key:    NULL/"pem"/"privatekey" = PKCS#8 PEM, "der", "publickey" = SPKI PEM
 *   public-key:     NULL/"pem" = SPKI PEM, "der"
 *   x509/x509-ca:   NULL/"crt"/"pem" = certificate PEM, "chain" = certificate then issuers,
 *                   "privatekey"/"key" = its private key PKCS#8 PEM, "der" = certificate DER
 * and SCONE's longer names and further formats (base32, base64url, pkcs12, pgp-key's six,
 * a config-fragment that is one scalar): the table of scone_template_format_valid in
 * policy.h, plus SCONE_FORMAT_LEGACY_CHAIN (root first, certificate last).
 * Unknown name: NOT_FOUND; format not valid for the kind: INVALID (detail names both).
 */
SCONE_MUST_CHECK enum scone_err scone_secrets_render(const struct scone_secret_set *set, const char *name,
						     const char *format, struct scone_wbuf *out);

/*
 * The same, for a secret released by export_public: formats that show a
 * private key (a private-key secret's own value, "privatekey"/"key" of
 * x509 and x509-ca) are PERMISSION; the certificate, chain, public key and
 * ascii/binary values render as above.
 */
SCONE_MUST_CHECK enum scone_err scone_secrets_render_public(const struct scone_secret_set *set,
							    const char *name, const char *format,
							    struct scone_wbuf *out);

/* Is secret name one that holds a private key (private-key, x509, x509-ca, pgp-key)? */
bool scone_secrets_is_private(const struct scone_secret_set *set, const char *name);

/* The JSON text of config-fragment name (a YAML value for scone_session_parse_ex); NOT_FOUND otherwise. */
SCONE_MUST_CHECK enum scone_err scone_secrets_fragment(const struct scone_secret_set *set, const char *name,
						       struct scone_wbuf *out);

/* The 32-byte key CAS generated for volume name; NOT_FOUND if none. */
SCONE_MUST_CHECK enum scone_err scone_secrets_volume_key(const struct scone_secret_set *set,
							 const char *volume, uint8_t key[32]);

/*
 * Public part of a secret for read responses: the certificate PEM of an
 * x509 or x509-ca secret, the SPKI PEM of a private-key or public-key
 * secret; empty for ascii and binary. Never a secret value.
 */
SCONE_MUST_CHECK enum scone_err scone_secrets_public(const struct scone_secret_set *set, const char *name,
						     struct scone_wbuf *out);

#endif
