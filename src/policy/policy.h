/*
 * policy.h - SCONE sessions (policy language version 0.3): YAML text to a
 * typed, validated model; the canonical session hash; $$SCONE::name$$
 * templating and @@N host arguments.
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

/* One validation error: position, key path ("services[0].environment") and text. */
struct scone_policy_error {
	struct scone_pos pos;
	char path[160];
	char message[240];
};

/* Every error of one parse (validation continues after the first). */
struct scone_policy_diag {
	struct scone_policy_error *errors;
	size_t count;
	size_t dropped; /* errors beyond the cap, counted but not stored */
};

void scone_policy_diag_free(struct scone_policy_diag *d);
/* "LINE:COL: PATH: MESSAGE" for error i into out. */
void scone_policy_error_format(const struct scone_policy_error *e, char *out, size_t out_size);

struct scone_strs {
	char **v;
	size_t n;
};

struct scone_kv {
	char *key;
	char *value; /* may contain $$SCONE::...$$ */
	struct scone_pos pos;
};

/* export: to a session (by name, optionally pinned to its hash); "*" = any session. */
struct scone_export {
	char *session;
	char *session_hash; /* hex SHA-256 or NULL */
	bool namespace;	    /* "namespace: NAME": that session and every session below it */
};

/* import: from another session's exported secret or volume. */
struct scone_import {
	char *session;
	char *name; /* the name in the exporting session; defaults to ours */
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
	struct scone_strs platforms;	       /* hex platform ids */
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
};

struct scone_injection_file {
	char *path;
	char *content; /* templated; may hold any bytes except NUL; NULL = the image's own file at path */
	size_t content_len;
	unsigned mode; /* permission, default 0400 */
	struct scone_pos pos;
};

struct scone_image_volume {
	char *name; /* a volume of this session's volumes[] */
	char *path; /* mount point, absolute */
};

struct scone_image {
	char *name;
	struct scone_injection_file *files;
	size_t n_files;
	struct scone_image_volume *volumes;
	size_t n_volumes;
	struct scone_pos pos;
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
	unsigned valid_for_days;      /* x509*: default 365 */
	bool migrate;		      /* private-key: keep the value across updates */
	bool export_public;	      /* export_public: true - readable by anyone, unauthenticated */
	struct scone_export *exports;
	size_t n_exports;
	struct scone_import *import; /* NULL unless imported (value lives elsewhere); an
					import without kind: has kind 0 (unknown) */
	struct scone_pos pos;
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

struct scone_access_list {
	struct scone_principal *v;
	size_t n; /* 0 = the default, [CREATOR] */
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
	uint8_t hash[32];		      /* canonical hash, set by scone_session_parse */
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
 * Split a command line like a POSIX shell does for words: blanks (space,
 * tab, newline, CR, VT, FF) separate, '...' is literal, "..." allows
 * \" \\ \$ \` (other backslashes stay), a backslash outside quotes takes
 * the next character literally, backslash-newline joins lines; adjacent
 * parts form one word ("a"'b'c is abc) and "" is an empty word. No
 * expansion of any kind: $, *, ~, # and $$SCONE::...$$ are ordinary
 * characters. An unterminated quote or a trailing lone backslash is
 * SCONE_ERR_MALFORMED with the offset in detail. out->v is NULL-terminated.
 */
SCONE_MUST_CHECK enum scone_err scone_shell_split(const char *line, struct scone_strs *out);
/* Free (wiping every string first) and zero s; v is NULL-terminated after split/host_args. */
void scone_strs_free(struct scone_strs *s);

/*
 * Templating. scone_template_expand copies in to out, replacing each
 * $$SCONE::NAME$$ or $$SCONE::NAME:FORMAT$$ with what lookup writes for
 * (NAME, FORMAT or NULL). NAME is 1..128 of [A-Za-z0-9_.~-], FORMAT 1..32
 * of those and ':'. Text that is not a complete reference is copied as is;
 * what lookup writes is never scanned again. in may hold any bytes (len
 * counts them). The first error of lookup or of out (e.g. TOO_LARGE) stops
 * the expansion and is returned. out should be a secret wbuf.
 */
typedef enum scone_err (*scone_secret_lookup_fn)(void *ctx, const char *name, const char *format,
						 struct scone_wbuf *out);
SCONE_MUST_CHECK enum scone_err scone_template_expand(const char *in, size_t len,
						      scone_secret_lookup_fn lookup, void *ctx,
						      struct scone_wbuf *out);

/*
 * Is FORMAT (NULL = none given) valid for a secret of kind? The table:
 *   ascii, binary:  none, hex, base64, base32nopad
 *   private-key:    none, pem, privatekey, der, publickey
 *   public-key:     none, pem, der
 *   x509, x509-ca:  none, crt, pem, chain, privatekey, key, der
 * CAS renders exactly these (src/cas/secrets.h).
 */
/* "ascii", "binary", "private-key", "x509", "x509-ca", "public-key"; "imported" for kind 0. */
const char *scone_secret_kind_name(enum scone_secret_kind kind);

bool scone_template_format_valid(enum scone_secret_kind kind, const char *format);

/* Call fn for each reference in in (for validation); stops at the first error fn returns. */
typedef enum scone_err (*scone_template_ref_fn)(void *ctx, const char *name, const char *format);
SCONE_MUST_CHECK enum scone_err scone_template_refs(const char *in, size_t len, scone_template_ref_fn fn,
						    void *ctx);

/*
 * @@N host arguments (runtime side): replace every "@@N" in the session's
 * argv - a whole argument or part of one ("--port=@@2") - with
 * host_argv[N] (N >= 1, all digits after "@@" belong to N; "@@" not
 * followed by a digit stays as is). host_argc/host_argv are main()'s, so
 * host_argv[0] is the program and a reference to N >= host_argc is an
 * error (SCONE_ERR_INVALID). Replacements are not scanned again.
 *
 * Host arguments are untrusted: call this AFTER scone_template_expand, so
 * a "$$SCONE::...$$" typed on the host is never expanded.
 *
 * *out is a NULL-terminated argv (out->v[out->n] == NULL) the caller frees
 * with scone_strs_free.
 */
SCONE_MUST_CHECK enum scone_err scone_host_args(const struct scone_strs *argv, int host_argc,
						char *const *host_argv, struct scone_strs *out);

#endif
