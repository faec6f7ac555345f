/*
 * internal.h - private to src/policy: the YAML node tree (yaml.c), the
 * error list and key paths (diag.c), typed readers over nodes (decode.c)
 * and the section decoders (services.c, secrets.c, access.c).
 *
 * Flow: yaml.c turns text into a tree of struct ynode (rejecting aliases,
 * anchors, tags, deep nesting, long lists, duplicate keys, NUL bytes);
 * session.c walks the tree section by section into struct scone_session,
 * every decoder reporting into struct pctx and carrying on; cross
 * references are checked once all names are known; the hash is computed
 * over the tree. Nothing here prints or exits.
 */
#ifndef SCONE_POLICY_INTERNAL_H
#define SCONE_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define POL_MAX_STORED_ERRORS 100
#define POL_PATH_MAX 160

enum ynode_kind {
	YN_SCALAR = 1,
	YN_SEQ,
	YN_MAP,
};

struct ynode {
	enum ynode_kind kind;
	struct scone_pos pos;
	bool plain;		   /* scalar written without quotes or block indicator */
	bool null;		   /* plain scalar "", "~", "null", "Null" or "NULL" */
	bool used;		   /* map key: a decoder looked it up (pol_check_consumed) */
	bool deferred;		   /* scalar: a whole $$SCONE::...$$ only CAS can resolve (fragment.c) */
	bool resolved;		   /* substituted by a resolver (an access entry may then be dropped) */
	size_t src_start, src_end; /* scalar: byte range of its text in the document */
	char *text;		   /* scalar: NUL-terminated, len bytes, no NUL inside */
	size_t len;
	struct ynode **items; /* seq: n items; map: n pairs as items[2i] key, items[2i+1] value */
	size_t n;
	size_t cap;    /* entries allocated in items */
	size_t *order; /* map: pair indices sorted by key bytes */
};

/* State of one parse: the error list and the key path being decoded. */
struct pctx {
	struct scone_policy_diag *diag;
	size_t errors; /* every error reported, stored or dropped */
	bool nomem;
	char path[POL_PATH_MAX];
	size_t path_len;
	const char *text; /* the document (positions inside scalars) */
	size_t text_len;
	const struct scone_parse_opts *opts; /* NULL: no resolver */
	size_t deferred;		     /* deferred nodes met by the decoders so far */
};

/* ---- yaml.c ---- */

/*
 * Text to tree. Structural problems are reported into c; *root is NULL then.
 * A leading UTF-8 byte order mark is skipped (positions count from after it).
 */
SCONE_MUST_CHECK enum scone_err pol_yaml_load(struct pctx *c, const char *text, size_t len,
					      struct ynode **root);
/* Free a tree, wiping every scalar (explicit secret values live there). */
void pol_ynode_free(struct ynode *n);
/* The canonical session hash of a tree (docs/sessions.md, "Session hash"). */
SCONE_MUST_CHECK enum scone_err pol_yaml_hash(const struct ynode *root, uint8_t out[32]);

/* ---- diag.c ---- */

void pol_error(struct pctx *c, struct scone_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A warning or difference for a session that may still pass (diag->notes). */
void pol_note(struct pctx *c, enum scone_note_kind kind, struct scone_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*
 * Where byte off of scalar n's value sits in the document, for a message
 * about something inside a value (a reference in a long string): exact
 * when the value is the document's text unchanged (plain or a block without
 * escapes), else the value's own position.
 */
struct scone_pos pol_pos_in(const struct pctx *c, const struct ynode *n, size_t off);
/* Append ".key" / "[i]" to the path; returns the length to restore. */
size_t pol_path_key(struct pctx *c, const char *key);
size_t pol_path_index(struct pctx *c, size_t i);
void pol_path_restore(struct pctx *c, size_t len);
/* Stable sort of the stored errors by position. */
void pol_diag_sort(struct scone_policy_diag *d);

/* ---- decode.c: typed readers; every error names the current path ---- */

void *pol_calloc(struct pctx *c, size_t n, size_t size);
char *pol_strndup(struct pctx *c, const char *s, size_t n);
const char *pol_type_name(const struct ynode *n);
/* Value of key in map, or NULL (no report). Marks the key as read (pol_check_consumed). */
const struct ynode *pol_map_get(const struct ynode *map, const char *key);
/* The key node of key in map, or NULL. */
const struct ynode *pol_map_key(const struct ynode *map, const char *key);
/*
 * Every mapping key under n must have been looked up by a decoder:
 * reports those that were not (a key accepted and then ignored is a bug,
 * refused rather than silently dropped). pol_mark_consumed marks a
 * subtree that is data (a config-fragment's value).
 */
void pol_check_consumed(struct pctx *c, const struct ynode *n);
void pol_mark_consumed(const struct ynode *n);
/* n is a deferred reference: count it, report nothing; the caller skips n. */
bool pol_deferred(struct pctx *c, const struct ynode *n);
/* Value of key; NULL and "missing required key" (at the map) when required. */
const struct ynode *pol_field(struct pctx *c, const struct ynode *map, const char *key, bool required);
/* Report keys of map that are not in allowed (NULL-terminated). */
void pol_check_keys(struct pctx *c, const struct ynode *map, const char *const *allowed);
/*
 * SCONE keys scone refuses, each with why and what to write instead: a
 * table ending in {NULL, NULL}. pol_check_keys_refusing reports those
 * (under the key's path) and the unknown ones.
 */
struct pol_refusal {
	const char *key;
	const char *why;
};
void pol_check_keys_refusing(struct pctx *c, const struct ynode *map, const char *const *allowed,
			     const struct pol_refusal *refused);
/* Is n of the kind, else report "expected WHAT, got ...". */
bool pol_expect(struct pctx *c, const struct ynode *n, enum ynode_kind kind, const char *what);
/* Non-null scalar, copied (NULL on error, reported). */
char *pol_str(struct pctx *c, const struct ynode *n);
bool pol_bool(struct pctx *c, const struct ynode *n, bool *out);
bool pol_uint(struct pctx *c, const struct ynode *n, unsigned long max, unsigned long *out);
/* The field readers: pol_field + path push + the reader above. */
char *pol_field_str(struct pctx *c, const struct ynode *map, const char *key, bool required);
bool pol_field_bool(struct pctx *c, const struct ynode *map, const char *key, bool *out);
/*
 * A list of strings (or, with single_ok, one string). check (may be NULL)
 * validates each; text is stored lowercase when lower is set.
 */
typedef bool (*pol_str_check_fn)(struct pctx *c, const struct ynode *n);
bool pol_str_list(struct pctx *c, const struct ynode *n, bool single_ok, bool lower, pol_str_check_fn check,
		  struct scone_strs *out);
/* Append a copy of s to out. */
bool pol_strs_add(struct pctx *c, struct scone_strs *out, const char *s);

/* Value checks that report at n (which must be a scalar). */
bool pol_is_hex(const char *s, size_t n_bytes);
bool pol_check_hex32(struct pctx *c, const struct ynode *n);
bool pol_check_name(struct pctx *c, const struct ynode *n, const char *what);
bool pol_check_abs_path(struct pctx *c, const struct ynode *n);
void pol_lower(char *s);

/* ---- section decoders (session.c calls them in this order) ---- */

struct scone_session;
void pol_decode_secrets(struct pctx *c, const struct ynode *list, struct scone_session *s);
void pol_decode_volumes(struct pctx *c, const struct ynode *list, struct scone_session *s);
void pol_decode_images(struct pctx *c, const struct ynode *list, struct scone_session *s);
void pol_decode_services(struct pctx *c, const struct ynode *list, struct scone_session *s);
void pol_decode_access(struct pctx *c, const struct ynode *map, struct scone_session *s);
void pol_decode_security(struct pctx *c, const struct ynode *map, struct scone_session *s);
void pol_decode_exports(struct pctx *c, const struct ynode *n, bool volumes, const struct scone_session *s,
			struct scone_export **out, size_t *n_out);
struct scone_import *pol_decode_import(struct pctx *c, const struct ynode *n, const char *name_key,
				       const struct scone_session *s);
void pol_free_exports(struct scone_export *v, size_t n);
void pol_free_access_list(struct scone_access_list *l);
/* A PEM certificate or public key (scalar n) into p as the hash of its key; reported at n. */
bool pol_principal_pem(struct pctx *c, const struct ynode *n, struct scone_principal *p);
/*
 * A session name as written in an export or import (session: / namespace:):
 * absolute, or relative to s->name ("../x", "./x", SCONE 0.3.10). Reported
 * at n; NULL on error. The result is heap-owned.
 */
char *pol_session_ref(struct pctx *c, const struct ynode *n, const struct scone_session *s);

/* update_policy of m (services.c): false on error; absent is rollback_protected. */
bool pol_update_policy(struct pctx *c, const struct ynode *m, enum scone_update_policy *out);

/* ---- header.c: name, version, predecessor and SCONE's other top-level keys ---- */

void pol_decode_header(struct pctx *c, const struct ynode *root, struct scone_session *s);

/* ---- env.c: a service's environment (mapping, or SCONE 7's list of {name, value}) ---- */

struct scone_service;
void pol_decode_env(struct pctx *c, const struct ynode *n, struct scone_service *svc,
		    const struct scone_session *s);

/* ---- fragment.c: whole-value $$SCONE::...$$ in security, access_policy, attestation ---- */

/*
 * Substitute config-fragments (and, with a resolver, any secret) written
 * as whole values in the dynamic sections of root; references left for CAS
 * are marked deferred. Runs after the secrets are decoded (it needs their
 * kinds) and before the sections are. root may be modified.
 */
void pol_substitute(struct pctx *c, struct ynode *root, struct scone_session *s);
/* Canonical JSON text of a tree (a config-fragment's value); NULL on NOMEM. */
char *pol_ynode_json(struct pctx *c, const struct ynode *n);
/* A deep copy of n (positions kept); NULL on NOMEM. */
struct ynode *pol_ynode_clone(struct pctx *c, const struct ynode *n);

/* ---- attestation.c: las mode rules, one-time password secrets ---- */

/* In las mode every variant of a service names measurements and LAS platforms, and no SGX factor. */
void pol_check_las_service(struct pctx *c, const struct ynode *m, const struct scone_service *svc);
/* A one_time_password_shared_secret value at n (key names it in the path): checked and copied, or NULL. */
char *pol_decode_otp(struct pctx *c, const struct ynode *n, const char *key, const struct scone_session *s);
/* security.attestation.one_time_password_shared_secret, once the secrets are known. */
void pol_decode_session_otp(struct pctx *c, const struct ynode *root, struct scone_session *s);

/* ---- refs.c: references between parts of the session ---- */

/*
 * Check the $$SCONE::...$$ references of one templated value (node n, at
 * the current path) against the secrets of s: each must name a secret and
 * use a format valid for its kind; "$$SCONE::" that does not start a
 * complete reference is an error too.
 */
void pol_check_template(struct pctx *c, const struct ynode *n, const char *text, size_t len,
			const struct scone_session *s);
/* An fspf_key: 64 hex digits, or exactly one reference to a 32-byte binary secret (format none or hex). */
void pol_check_fspf_key(struct pctx *c, const struct ynode *n, const struct scone_session *s);
/* private_key / issuer of the secrets (list is the secrets: node). */
void pol_check_secret_refs(struct pctx *c, const struct ynode *list, const struct scone_session *s);
/* Report a repeated name in a list: names[i] against names[0..i). */
void pol_check_unique(struct pctx *c, const struct ynode *list, const char *key, const char *what);

#endif
