/*
 * cas.h - the Configuration and Attestation Service: its state directory
 * (identity, master key, store), the REST API over the HTTPS front end
 * (server.h), and the request bodies it accepts.
 *
 *   state.c    the state directory: cas.key/cas.crt, master.key, store path
 *   api.c      routing, owners' session API, access policies, health, metrics
 *   config.c   the service endpoint: attestation check, resolved configuration,
 *              volume tag updates
 *   namespace.c access lists, who may create a name, whom an export by name reaches
 *   budget.c   key-generation budgets per client key per minute
 *   memwipe.c  the wiping allocator for jansson and libevent, process hardening
 *   request.c  parsing of the JSON request bodies (untrusted; fuzzed)
 */
#ifndef SCONE_CAS_H
#define SCONE_CAS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cas/budget.h"
#include "cas/server.h"
#include "cas/store.h"
#include "lib/err.h"
#include "lib/tls.h"
#include "policy/policy.h"

#define CAS_MAX_LOOPS 64       /* --workers: event-loop threads */
#define CAS_MAX_SLOW 16        /* --slow-workers: slow-lane threads (session writes) */
#define CAS_MAX_WORKERS (CAS_MAX_LOOPS + CAS_MAX_SLOW) /* per-thread state slots: loops, then slow lane */
#define CAS_DEFAULT_PORT 8081
/* Key generation: units per create/update, per client key per minute (secrets.h has the costs). */
#define CAS_KEYGEN_PER_REQUEST 32
#define CAS_KEYGEN_PER_MINUTE 64

struct cas_counters {
	atomic_ulong sessions_created, sessions_updated, sessions_deleted, update_conflicts;
	atomic_ulong config_fetches, config_denied, tag_updates, tag_conflicts, policy_rejects;
};

struct cas {
	char state_dir[4096];
	char store_path[4200];
	struct scone_identity identity;
	uint8_t cert_sha256[32];
	uint8_t *master_key;      /* 32 bytes, secure memory */
	uint8_t *token_key;       /* 32 bytes derived from master_key: instance tokens */
	struct scone_store *stores[CAS_MAX_WORKERS]; /* one handle per worker */
	struct cas_cache *caches[CAS_MAX_WORKERS];   /* one parsed-session cache per worker */
	struct cas_server *server;
	struct cas_counters counters;
	unsigned keygen_per_request;  /* 0: CAS_KEYGEN_PER_REQUEST */
	struct cas_budget *keygen;    /* per client key per minute; NULL: no per-client limit */
};

/*
 * Open (creating on first start) the state directory: identity, master key
 * (0600; refuses looser permissions), and the store (opened once to check
 * it, so a corrupt store refuses to start).
 */
SCONE_MUST_CHECK enum scone_err cas_state_open(struct cas *cas, const char *state_dir);
void cas_state_close(struct cas *cas);

/* The server callbacks (ctx is struct cas). */
void cas_handle(void *ctx, const struct cas_request *req, struct cas_response *resp);
/* Session creates and updates (they may generate keys) go to the slow lane. */
bool cas_is_slow(void *ctx, const struct cas_request *req);
enum scone_err cas_worker_init(void *ctx, int worker);
void cas_worker_fini(void *ctx, int worker);

/* Service endpoint handlers (config.c). */
void cas_handle_config(struct cas *cas, const struct cas_request *req, struct cas_response *resp);
void cas_handle_volume_tag(struct cas *cas, const struct cas_request *req, struct cas_response *resp);

/* Shared by api.c and config.c. */
struct scone_session;
struct scone_secret_set;
struct cas_parsed;
struct cas_cache;
struct cas_loaded {
	struct scone_session_rec rec;
	struct scone_session *session;      /* borrowed from parsed */
	struct scone_secret_set *secrets;   /* borrowed from parsed */
	struct cas_parsed *parsed;          /* a reference, released by cas_loaded_free */
};

/* Per-worker cache of parsed sessions (session_cache.c). */
struct cas_cache *cas_cache_new(void);
void cas_cache_free(struct cas_cache *c);
void cas_parsed_put(struct cas_parsed *p);
/* Parsed session and secrets of rec (from the cache when its hash matches); c may be NULL. */
SCONE_MUST_CHECK enum scone_err cas_cache_get(struct cas_cache *c, const struct scone_session_rec *rec,
					      struct cas_parsed **out, struct scone_session **session,
					      struct scone_secret_set **secrets);
/* Load, unseal and parse name; on failure the response is filled (404/500) and false returned. */
bool cas_load_session(struct cas *cas, int worker, const char *name, struct cas_loaded *out,
		      struct cas_response *resp);
void cas_loaded_free(struct cas_loaded *l);
/*
 * Sessions a request imports from (secrets, volumes), loaded on demand and
 * freed together. who is the importing session: the exporting side's
 * export list must name it (and its hash, if pinned there); who_creator is
 * the key that created it (or is creating it now).
 */
#define CAS_MAX_IMPORT_SESSIONS 8
struct cas_imports {
	struct cas *cas;
	int worker;
	const struct scone_session *who;
	const uint8_t *who_creator; /* 32 bytes */
	struct cas_loaded loaded[CAS_MAX_IMPORT_SESSIONS];
	size_t n;
};
SCONE_MUST_CHECK enum scone_err cas_imports_load(struct cas_imports *im, const char *session,
						 const struct cas_loaded **out);
void cas_imports_free(struct cas_imports *im);
/*
 * Does the export list (e, n) of session from admit im->who? An entry must
 * name it ("*", its name, or a namespace above it); with session_hash its
 * hash must match; an entry by name (not "*", no hash) also needs
 * cas_namespace_vouches, so that nobody else's session under that name
 * receives it.
 */
bool cas_exported_to(struct cas_imports *im, const struct cas_loaded *from, const struct scone_export *e, size_t n);

/* ---- namespaces and access lists (namespace.c) ---- */

/* Does access list l admit key (NULL: a client without a certificate)? creator: the session's creator. */
bool cas_policy_allows(const struct scone_access_list *l, const uint8_t *key, const uint8_t creator[32]);
/*
 * May creator create session name? The nearest existing session above name
 * decides by its create_sessions (default: update); none: free to take.
 * PERMISSION (detail names that session) or IO.
 */
SCONE_MUST_CHECK enum scone_err cas_namespace_may_create(struct cas *cas, int worker, const char *name,
							 const uint8_t creator[32]);
/*
 * May an export by name of session from (created by from_creator) reach
 * session who (created by who_creator)? Rule at the top of namespace.c:
 * the same creator, or a common namespace session whose creator chain down
 * to both holds now. A read failure is a no.
 */
bool cas_namespace_vouches(struct cas *cas, int worker, const char *from, const uint8_t from_creator[32],
			   const char *who, const uint8_t who_creator[32]);
/* Resolve an imported secret for generation (scone_secrets_import_fn; ctx is struct cas_imports). */
enum scone_err cas_resolve_secret_import(void *ctx, const struct scone_secret *imported,
					 const struct scone_secret_set **set, const char **name);

/* Map a scone_err from the store/policy to an HTTP status and respond. */
void cas_respond_err(struct cas_response *resp, enum scone_err err, const char *what);

/* ---- request bodies (request.c) ---- */

#define CAS_CONFIG_ID_MAX 300

struct cas_config_request {
	char session[SCONE_SESSION_NAME_MAX + 1];
	char service[SCONE_SESSION_NAME_MAX + 1];
	char evidence_type[32]; /* "none" if absent */
};

struct cas_tag_request {
	char session[SCONE_SESSION_NAME_MAX + 1];
	char service[SCONE_SESSION_NAME_MAX + 1];
	char volume[SCONE_SESSION_NAME_MAX + 1];
	char previous_tag[65]; /* "" = the volume was not initialised */
	char tag[65];
	uint8_t token[32];
};

/* Parse a JSON body; MALFORMED/INVALID/TOO_LARGE with detail naming the field. */
SCONE_MUST_CHECK enum scone_err cas_parse_config_request(const char *body, size_t len, struct cas_config_request *out);
SCONE_MUST_CHECK enum scone_err cas_parse_tag_request(const char *body, size_t len, struct cas_tag_request *out);
/* Split "session/service" at the last '/' and validate both names. */
SCONE_MUST_CHECK enum scone_err cas_split_config_id(const char *id, char *session, char *service);

#endif
