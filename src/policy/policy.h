/*
 * policy.h - SCONE sessions (policy language 0.3.x, "0.3" to "0.3.12"):
 * YAML text to a typed, validated model; the canonical session hash;
 * $$SCONE::name$$ templating and @@N host arguments.
 *
 * The module owns parsing and validation only. It never generates or holds
 * secret values: CAS (src/cas/secrets) generates them and renders them
 * through the lookup callback of scone_template_expand.
 *
 * All strings in the model are NUL-terminated, heap-owned by the session
 * and freed (explicit secret values wiped) by scone_session_free.
 */
#ifndef SCONE_POLICY_H
#define SCONE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "policy/template.h"

/* Hard limits on input; larger documents are rejected, not truncated. */
#define SCONE_SESSION_MAX_BYTES (1024 * 1024)
#define SCONE_SESSION_NAME_MAX 128
#define SCONE_SESSION_MAX_ITEMS 1024 /* per list (services, secrets, env ...) */
#define SCONE_SESSION_MAX_DEPTH 16
#define SCONE_SESSION_MAX_NODES (128 * 1024) /* YAML nodes in one document */

/* Where a node sits in the YAML text (1-based, as editors count). */
struct scone_pos {
	int line;
	int column;
};

/*
 * One validation error: position, key path ("services[0].environment") and
 * text (a text too long for message ends with "...").
 */
struct scone_policy_error {
	struct scone_pos pos;
	char path[160];
	char message[320];
};

/*
 * What a session that passes may still carry: a warning (a deprecated
 * SCONE form, accepted with SCONE's meaning) or a difference (a construct
 * scone accepts whose effect differs from SCONE's; `scone session check
 * --compat` lists them, docs/sessions.md section 15 says each).
 */
enum scone_note_kind {
	SCONE_NOTE_WARNING = 1,
	SCONE_NOTE_DIFFERENCE,
};

struct scone_policy_note {
	enum scone_note_kind kind;
	struct scone_policy_error e;
};

/* Every error of one parse (validation continues after the first), and the notes. */
struct scone_policy_diag {
	struct scone_policy_error *errors;
	size_t count;
	size_t dropped;			 /* errors beyond the cap, counted but not stored */
	struct scone_policy_note *notes; /* at most 100 kept; set also when the parse succeeds */
	size_t n_notes;
	/*
	 * Keys a validator accepted without reading them (each also an error):
	 * a scone bug, which refuses the session rather than ignoring the key.
	 * Always 0; the fuzzer and the session corpus check it.
	 */
	size_t unread;
};

void scone_policy_diag_free(struct scone_policy_diag *d);
/* "LINE:COL: PATH: MESSAGE" for error i into out. */
void scone_policy_error_format(const struct scone_policy_error *e, char *out, size_t out_size);

struct scone_kv {
	char *key;
	char *value; /* may contain $$SCONE::...$$; NULL when from_host */
	struct scone_pos pos;
	bool from_host; /* SCONE's \@\@KEY: the value is the host's KEY at start ("" if unset) */
};

/* SCONE's update_policy of a volume mount or export. */
enum scone_update_policy {
	SCONE_UPDATE_ROLLBACK_PROTECTED = 0, /* default: tag tracked by CAS, rollbacks refused */
	SCONE_UPDATE_EPHEMERAL,		     /* changes are not reported; the next start sees CAS's tag */
};

/* export: to a session (by name, optionally pinned to its hash); "*" = any session. */
struct scone_export {
	char *session;
	char *session_hash; /* hex SHA-256 or NULL */
	bool namespace;	    /* "namespace: NAME": that session and every session below it */
	char *volume_alias; /* volumes: the name the importer must use (NULL: the volume's own name) */
	enum scone_update_policy update_policy; /* volumes: the most an importer may do */
};

/* import: from another session's exported secret or volume. */
struct scone_import {
	char *session;
	char *name;	    /* the name in the exporting session; defaults to ours */
	char *session_hash; /* lowercase hex or NULL: import only while the exporter has this hash */
};

/*
 * One attestation variant: a service passes attestation when it satisfies
 * every factor of at least one variant (factors AND, variants OR). Empty
 * lists and NULL / -1 mean "not checked".
 */
struct scone_attest_variant {
	struct scone_strs mrenclaves; /* lowercase hex; any one of them */
	char *mrsigner;		      /* lowercase hex or NULL */
	int isvprodid;		      /* -1 = not checked (required with mrsigner) */
	int isvsvn_min, isvsvn_max;   /* inclusive; -1 = no bound */
	struct scone_strs platforms;  /* lowercase hex platform (host) keys; any one of them */
	/* TDX (hardware mode): MRTD (any one of them, 96 hex) and RTMR0-3 (NULL: not checked). */
	struct scone_strs mrtds;
	char *rtmr[4];
	/* SEV-SNP (hardware mode): MEASUREMENT (any one, 96 hex) and HOST_DATA (64 hex, NULL: not checked).
	 */
	struct scone_strs snp_measurements;
	char *host_data;
	struct scone_pos pos;
};

struct scone_service {
	char *name;
	char *image_name;	   /* NULL if none */
	struct scone_strs command; /* argv, split like a shell; templates unresolved */
	struct scone_kv *env;
	size_t n_env;
	char *pwd;			       /* NULL = "/" */
	struct scone_strs mrenclaves;	       /* hex, from mrenclaves: or attestation: */
	struct scone_strs mrsigners;	       /* hex, attestation variants */
	struct scone_strs platforms;	       /* lowercase: 64 hex (a host key), or "intel_qe_id:" and 32 hex
						  (SCONE 7's Intel DCAP QE ID platforms) */
	char *fspf_path, *fspf_key, *fspf_tag; /* NULL if absent; key: 64 hex or one $$SCONE::NAME[:hex]$$
						  of a 32-byte binary secret, resolved by CAS */
	/*
	 * The same measurements with their structure kept (the flat lists
	 * above are the union of these). Verifiers should use the variants:
	 * a variant that names an mrenclave and a signer requires both.
	 */
	struct scone_attest_variant *variants;
	size_t n_variants;
	char *otp_secret; /* one_time_password_shared_secret of the service, or NULL (then the session's) */
	struct scone_pos pos;
	bool fspf_no_rollback; /* fspf_update_policy: no_rollback_protection (fspf_tag optional) */
	bool dynamic;	       /* attestation, mrenclaves or platforms hold values CAS resolves */
};

struct scone_injection_file {
	char *path;
	char *content; /* templated; may hold any bytes except NUL; NULL = the image's own file at path */
	size_t content_len;
	unsigned mode; /* permission, default 0700 (as SCONE) */
	struct scone_pos pos;
};

struct scone_image_volume {
	char *name; /* a volume of this session's volumes[] */
	char *path; /* mount point, absolute */
	enum scone_update_policy update_policy;
};

struct scone_image {
	char *name;
	struct scone_injection_file *files;
	size_t n_files;
	struct scone_image_volume *volumes;
	size_t n_volumes;
	struct scone_pos pos;
	bool restrict_secrets;		   /* provide_secrets given: image files may use only these */
	struct scone_strs provide_secrets; /* secret names */
};

struct scone_volume {
	char *name;
	char *fspf_key; /* NULL: CAS generates the key */
	char *fspf_tag; /* NULL: initialised on first use, tag tracked by CAS */
	struct scone_export *exports;
	size_t n_exports;
	struct scone_import *import; /* NULL unless imported */
	struct scone_pos pos;
};

enum scone_secret_kind {
	SCONE_SECRET_ASCII = 1,
	SCONE_SECRET_BINARY,
	SCONE_SECRET_PRIVATE_KEY,
	SCONE_SECRET_X509,
	SCONE_SECRET_X509_CA,
	SCONE_SECRET_PUBLIC_KEY,
	SCONE_SECRET_CONFIG_FRAGMENT, /* a YAML value (value: canonical JSON text) */
	SCONE_SECRET_PGP_KEY,	      /* an OpenPGP key: Ed25519 primary, Curve25519 encryption subkey */
};

enum scone_key_type {
	SCONE_KEY_P256 = 1, /* default */
	SCONE_KEY_P384,
	SCONE_KEY_ED25519,
	SCONE_KEY_RSA2048,
	SCONE_KEY_RSA3072,
};

struct scone_secret {
	char *name;
	enum scone_secret_kind kind;
	size_t size; /* ascii/binary: bytes to generate (ascii default 20) */
	char *value; /* explicit value (NULL: generated); binary: hex or base64 in YAML, decoded here */
	size_t value_len;
	enum scone_key_type key_type; /* private-key; x509* own key when private_key is NULL */
	char *private_key;	      /* x509*, public-key: name of the private-key secret */
	char *issuer;		      /* x509: name of an x509-ca secret; NULL = self-signed */
	char *common_name;	      /* x509* */
	struct scone_strs dns;	      /* x509*: subjectAltName DNS names (san: or dns:) */
	struct scone_strs ips;	      /* x509*: subjectAltName IP addresses */
	char *endpoint;		      /* x509: "server" | "client" | NULL (both) */
	unsigned valid_for_days; /* x509*: 0 (no valid_for) = no expiry (notAfter 9999-12-31, as SCONE) */
	bool migrate;		 /* private-key: keep the value across updates */
	bool export_public;	 /* export_public: true - readable by anyone, unauthenticated */
	struct scone_export *exports;
	size_t n_exports;
	struct scone_import *import; /* NULL unless imported (value lives elsewhere); an
					import without kind: has kind 0 (unknown) */
	struct scone_pos pos;
	bool fragment_scalar; /* config-fragment: the value is one scalar (usable in strings) */
};

enum scone_principal_kind {
	SCONE_PRINCIPAL_CREATOR = 1,
	SCONE_PRINCIPAL_ANY,
	SCONE_PRINCIPAL_NONE,
	SCONE_PRINCIPAL_KEY, /* a certificate or key hash: SHA-256 of the DER SubjectPublicKeyInfo */
};

struct scone_principal {
	enum scone_principal_kind kind;
	uint8_t spki_sha256[32]; /* SCONE_PRINCIPAL_KEY only */
};

/*
 * SCONE's governance rules: a tree whose leaves are principals. ALL is
 * met when every item is, AT_LEAST when at least `need` items are. A
 * request carries one client identity, so the items of one rule name
 * different principals.
 */
enum scone_rule_kind {
	SCONE_RULE_PRINCIPAL = 1,
	SCONE_RULE_ALL,
	SCONE_RULE_AT_LEAST,
};

struct scone_access_rule {
	enum scone_rule_kind kind;
	struct scone_principal principal; /* SCONE_RULE_PRINCIPAL */
	size_t need;			  /* SCONE_RULE_AT_LEAST */
	struct scone_access_rule *items;
	size_t n_items;
};

struct scone_access_list {
	struct scone_principal *v;
	size_t n; /* 0 = the default, [CREATOR] (unless rule or dynamic) */
	/*
	 * A require-all / require-at-least-N rule (v then holds one NONE, so
	 * code that only reads v denies). Evaluate with scone_access_allows.
	 */
	struct scone_access_rule *rule;
	bool dynamic; /* holds $$SCONE::...$$ resolved by CAS (scone_session_parse_ex) */
};

enum scone_attestation_mode {
	SCONE_ATTEST_HARDWARE = 1, /* default */
	SCONE_ATTEST_NONE,
	SCONE_ATTEST_LAS, /* reports of a Local Attestation Service (docs/attestation.md) */
};

struct scone_session {
	char *name;
	char *version;	   /* "0.3" */
	char *predecessor; /* hex SHA-256 or NULL (creation) */
	struct scone_service *services;
	size_t n_services;
	struct scone_image *images;
	size_t n_images;
	struct scone_volume *volumes;
	size_t n_volumes;
	struct scone_secret *secrets;
	size_t n_secrets;
	struct scone_access_list read, update;
	struct scone_access_list create_sessions; /* n = 0: the same as update */
	enum scone_attestation_mode mode;
	struct scone_strs tolerate;
	struct scone_strs ignore_advisories;  /* ["*"] for the wildcard */
	struct scone_strs trusted_qe_pubkeys; /* trusted_scone_qe_pubkeys, lowercase hex */
	/*
	 * security.attestation.one_time_password_shared_secret, or NULL: base32
	 * text, or one $$SCONE::NAME:base32nopad$$ that CAS resolves. Services
	 * without their own use it.
	 */
	char *otp_secret;
	uint8_t hash[32];		 /* canonical hash, set by scone_session_parse */
	unsigned version_minor;		 /* "0.3" and "0.3.0": 0; "0.3.12": 12 */
	char *service_access_token;	 /* security.service_access_token or NULL (wiped on free) */
	bool has_creator;		 /* creator: (SCONE's read-back key) */
	uint8_t creator_spki_sha256[32]; /* the key it names */
	char *namespace_hash;		 /* lowercase hex or NULL: the parent session's hash at creation */
	bool salted;			 /* salt: given (it only changes the hash) */
	/*
	 * Sections holding $$SCONE::...$$ that only CAS can resolve (imported or
	 * generated secrets in security, access_policy, services[].attestation,
	 * services[].platforms): parse the text again with a resolver
	 * (scone_session_parse_ex) before deciding with them.
	 */
	bool dynamic;
};

/*
 * Parse and validate a session document. On success *out holds the model
 * and its hash. On failure returns SCONE_ERR_POLICY (or NOMEM/TOO_LARGE) and
 * diag lists every problem found; diag may be NULL. diag must be freed with
 * scone_policy_diag_free either way.
 */
SCONE_MUST_CHECK enum scone_err scone_session_parse(const char *text, size_t len, struct scone_session **out,
						    struct scone_policy_diag *diag);
void scone_session_free(struct scone_session *s);

/*
 * Resolving $$SCONE::NAME[:FORMAT]$$ written as a whole value in the
 * sections SCONE lets take them (security, access_policy, a service's
 * attestation, mrenclaves and platforms). A config-fragment secret of the session with
 * an explicit value is substituted by scone_session_parse itself; anything
 * else (generated or imported secrets) only with a resolver: resolve writes
 * the value into out and sets *yaml when out holds a config-fragment
 * (YAML/JSON text, substituted as a tree: a list spliced into a list)
 * rather than a string. NOT_FOUND: the value is unavailable (an entry of an
 * access_policy list is then dropped, as SCONE ignores it; anywhere else the
 * parse fails). Other errors fail the parse.
 */
typedef enum scone_err (*scone_ref_resolve_fn)(void *ctx, const char *name, const char *format, bool *yaml,
					       struct scone_wbuf *out);
struct scone_parse_opts {
	scone_ref_resolve_fn resolve; /* NULL: leave such references unresolved (s->dynamic) */
	void *ctx;
};
SCONE_MUST_CHECK enum scone_err scone_session_parse_ex(const char *text, size_t len,
						       const struct scone_parse_opts *opts,
						       struct scone_session **out,
						       struct scone_policy_diag *diag);

/*
 * Does the access list admit a caller whose client key hashes to peer
 * (NULL: no client certificate)? creator is the session's creator key. An
 * empty plain list is [CREATOR]; a rule is evaluated as a tree. A dynamic
 * list must be taken from a session parsed with a resolver: here it denies.
 */
bool scone_access_allows(const struct scone_access_list *l, const uint8_t *peer, const uint8_t creator[32]);

/* Lookups by name; NULL if absent. */
const struct scone_service *scone_session_service(const struct scone_session *s, const char *name);
const struct scone_image *scone_session_image(const struct scone_session *s, const char *name);
const struct scone_secret *scone_session_secret(const struct scone_session *s, const char *name);
const struct scone_volume *scone_session_volume(const struct scone_session *s, const char *name);

/* The one-time password secret that applies to svc (its own, else the session's), or NULL. */
const char *scone_service_otp_secret(const struct scone_session *s, const struct scone_service *svc);

/* "hardware", "none", "las". */
const char *scone_attestation_mode_name(enum scone_attestation_mode mode);

/* Session names: [A-Za-z0-9_.~-] and '/', 1..128 characters, no empty segment. */
bool scone_session_name_valid(const char *name);

/* Hex form of a session hash (64 chars + NUL). */
void scone_session_hash_hex(const uint8_t hash[32], char out[65]);

/*
 * Is FORMAT (NULL = none given) valid for a secret of kind? SCONE's table
 * (docs/sessions.md section 8) plus scone's short names:
 *   ascii:           none, hex, base64
 *   binary:          none, bin, hex, base64, base64url, base32, base32nopad
 *   private-key:     none, pem, pkcs8:pem, der, pkcs8:der, privatekey, publickey
 *   public-key:      none, pem, der, spki:pem, spki:der
 *   x509, x509-ca:   none, crt, crt:pem, crt:der, pem, der, chain, privatekey,
 *                    privatekey:pem, privatekey:pkcs8:pem, privatekey:der,
 *                    privatekey:pkcs8:der, key, pkcs12-with-private-key
 *   config-fragment: none
 *   pgp-key:         privatekey:asciiarmored, privatekey:binary, privatekey:base64,
 *                    publickey:asciiarmored, publickey:binary, publickey:base64
 * CAS renders exactly these (src/cas/secrets.h). A reference may end in
 * "|escape(json)" (SCONE's character encoding): the rendered value is then
 * JSON-string-escaped by scone_template_expand.
 */
/* "ascii", "binary", "private-key", "x509", "x509-ca", "public-key", "config-fragment",
   "pgp-key"; "imported" for kind 0. */
const char *scone_secret_kind_name(enum scone_secret_kind kind);

bool scone_template_format_valid(enum scone_secret_kind kind, const char *format);
/* The formats of kind, comma-separated, into out; returns the length. */
size_t scone_template_formats(enum scone_secret_kind kind, char *out, size_t out_size);

/*
 * SCONE's session templates (`scone session create -e VAR=VALUE`,
 * `--use-env`): replace $NAME and ${NAME} in text with lookup's value
 * (NULL: none), appending to out; "$$" and any other "$" stay as they are.
 * A missing value is NOT_FOUND with SCONE's message "Value for variable
 * $NAME is missing at line L column C". src/policy/vars.c.
 */
#define SCONE_VAR_NAME_MAX 128
typedef const char *(*scone_var_lookup_fn)(void *ctx, const char *name);
SCONE_MUST_CHECK enum scone_err scone_session_vars_expand(const char *text, size_t len,
							  scone_var_lookup_fn lookup, void *ctx,
							  struct scone_wbuf *out);

#endif
