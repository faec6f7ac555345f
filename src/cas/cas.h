/*
 * cas.h - the Configuration and Attestation Service: its state directory
 * (identity, master key, store), the REST API over the HTTPS front end
 * (server.h), and the request bodies it accepts.
 *
 *   state.c    the state directory: cas.key/cas.crt, master.key; the store URL
 *   api.c      routing, owners' session API, access policies, health, metrics
 *   audit.c    the audit log's writer (one chain per worker; audit.h)
 *   backup.c   backups of a store and restores into a new one
 *   admin.c    the operator's commands: init, backup, restore, audit-export
 *   config.c   the service endpoint: attestation check, resolved configuration,
 *              volume tag updates
 *   namespace.c access lists, who may create a name, whom an export by name reaches
 *   budget.c   key-generation budgets per client key per minute
 *   memwipe.c  the wiping allocator for jansson and libevent, process hardening
 *   request.c  parsing of the JSON request bodies (untrusted; fuzzed)
 */
#ifndef SCONE_CAS_H
#define SCONE_CAS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cas/budget.h"
#include "cas/server.h"

struct scone_collateral;
#include "cas/store.h"
#include "lib/err.h"
#include "lib/tls.h"
#include "policy/policy.h"

#define CAS_MAX_LOOPS 64 /* --workers: event-loop threads */
#define CAS_MAX_SLOW 16	 /* --slow-workers: slow-lane threads (session writes) */
#define CAS_MAX_WORKERS (CAS_MAX_LOOPS + CAS_MAX_SLOW) /* per-thread state slots: loops, then slow lane */
#define CAS_DEFAULT_PORT 8081
/* Key generation: units per create/update, per client key per minute (secrets.h has the costs). */
#define CAS_KEYGEN_PER_REQUEST 32
#define CAS_KEYGEN_PER_MINUTE 64

struct cas_counters {
	atomic_ulong sessions_created, sessions_updated, sessions_deleted, update_conflicts;
	atomic_ulong config_fetches, config_denied, tag_updates, tag_conflicts, policy_rejects;
};

struct cas_audit;
struct cas_audit_event;

struct cas {
	char state_dir[4096];
	char store_path[4200]; /* the SQLite file, when the store is SQLite */
	char store_url[4300];  /* what the workers open: sqlite:PATH or postgres://... */
	char replica[64];      /* this process's name in the audit log (default: the host name) */
	struct scone_identity identity;
	uint8_t cert_sha256[32];
	uint8_t *master_key;			     /* 32 bytes, secure memory */
	uint8_t *token_key;			     /* 32 bytes derived from master_key: instance tokens */
	struct scone_store *stores[CAS_MAX_WORKERS]; /* one handle per worker */
	struct cas_cache *caches[CAS_MAX_WORKERS];   /* one parsed-session cache per worker */
	struct cas_server *server;
	struct cas_counters counters;
	unsigned keygen_per_request;		   /* 0: CAS_KEYGEN_PER_REQUEST */
	struct cas_budget *keygen;		   /* per client key per minute; NULL: no per-client limit */
	struct cas_audit *audits[CAS_MAX_WORKERS]; /* one audit chain per worker */
	int audit_mirror_fd;			   /* --audit-mirror file, or -1 */
	pthread_mutex_t audit_mirror_lock;
	atomic_bool rolled_back; /* an audit chain lost an entry: serve nothing */
	int evidence_max_age;	 /* seconds a report with a time is accepted (--evidence-max-age); 0 = 60 */
	struct scone_collateral *collateral; /* --collateral: hardware evidence's collateral, or NULL */
	void *self_evidence;		     /* self.c: CAS's own evidence, a json_t (GET /v1/cas/evidence) */
};

/* CAS's own evidence (self.c): collected once at start from the TEE interface present, if any. */
SCONE_MUST_CHECK enum scone_err cas_self_evidence_init(struct cas *cas);
void cas_self_evidence_free(struct cas *cas);
void cas_handle_self_evidence(struct cas *cas, struct cas_response *resp);

/*
 * Open the state directory: identity, master key (0600; refuses looser
 * permissions), and the store at store_url (NULL: sqlite:DIR/cas.db),
 * opened once to check it, so a corrupt store or a wrong key refuses to
 * start. A SQLite store and its key material are made at the first start;
 * a PostgreSQL store and the key material its replicas share are made by
 * `scone-cas init` (create true), never by a serving replica.
 */
SCONE_MUST_CHECK enum scone_err cas_state_open(struct cas *cas, const char *state_dir, const char *store_url,
					       bool create);
void cas_state_close(struct cas *cas);
/* Only the directory, the identity and the master key (for the operator's commands). */
SCONE_MUST_CHECK enum scone_err cas_state_keys(struct cas *cas, const char *state_dir, const char *store_url,
					       bool create);
/* A SQLite store was made (restored): mark it, so that its loss is noticed later. */
SCONE_MUST_CHECK enum scone_err cas_state_mark_store(struct cas *cas);

/* The operator's commands (admin.c): init, backup, restore, audit-export. -1 if argv[1] is none. */
int cas_admin_main(int argc, char **argv);

/* ---- the audit log (audit.c; format in audit.h) ---- */

/* Start worker's chain ("start" entry) and hook its store handle; stop it. */
SCONE_MUST_CHECK enum scone_err cas_audit_start(struct cas *cas, int worker);
void cas_audit_stop(struct cas *cas, int worker);
/*
 * The mirror gets a span's versions at most once a second (audit.c): tick
 * writes the newest one held back once a second has passed since the last
 * (now, with force). On the worker's thread; stop does it too.
 */
void cas_audit_tick(struct cas *cas, int worker, bool force);
/* Append ev to worker's chain on its own, durably (restore's entry). */
SCONE_MUST_CHECK enum scone_err cas_audit_note(struct cas *cas, int worker, const struct cas_audit_event *ev);
/* Store rolled back: fill a 503 and return true (every request is refused). */
bool cas_audit_refuse_all(struct cas *cas, struct cas_response *resp);
/*
 * Around the handling of each request: begin names the request (the actor
 * of a write's entry; a configuration fetch reads optimistically); end
 * appends the entry of a configuration release or a refusal (a release
 * whose entry cannot be written becomes a 503). end returns true when the
 * request must be handled once more (its optimistic reads went stale; the
 * response was reset): begin, handle and end again.
 */
void cas_audit_begin(struct cas *cas, const struct cas_request *req);
bool cas_audit_end(struct cas *cas, const struct cas_request *req, struct cas_response *resp);

/* The server callbacks (ctx is struct cas). */
void cas_handle(void *ctx, const struct cas_request *req, struct cas_response *resp);
/* Session creates and updates (they may generate keys) go to the slow lane. */
bool cas_is_slow(void *ctx, const struct cas_request *req);
enum scone_err cas_worker_init(void *ctx, int worker);
void cas_worker_fini(void *ctx, int worker);
void cas_worker_tick(void *ctx, int worker);

struct cas_loaded;

/* Service endpoint handlers (config.c). */
void cas_handle_config(struct cas *cas, const struct cas_request *req, struct cas_response *resp);
void cas_handle_volume_tag(struct cas *cas, const struct cas_request *req, struct cas_response *resp);
/* GET|PUT /v1/volumes/SESSION/VOLUME (volumes.c): the owner's view of a volume's tag; path is SESSION/VOLUME.
 */
void cas_handle_volume_owner(struct cas *cas, const struct cas_request *req, const char *path,
			     struct cas_response *resp);
/* POST /v1/service/values (values.c): the values an image's own injection file refers to. */
void cas_handle_values(struct cas *cas, const struct cas_request *req, struct cas_response *resp);
/* The instance token of a runtime (its TLS key's SPKI hash) for session/service (config.c). */
SCONE_MUST_CHECK enum scone_err cas_instance_token(struct cas *cas, const uint8_t spki[32],
						   const char *session, const char *service, uint8_t out[32]);
/* Render $$SCONE::name:format$$ of own's session (own secrets, imports, SCONE's old NAME.crt forms). */
SCONE_MUST_CHECK enum scone_err cas_render_ref(struct cas *cas, int worker, const struct cas_loaded *own,
					       const char *name, const char *format, struct scone_wbuf *out);

struct cas_loaded;
/* GET /v1/otp/SESSION/SERVICE once the read policy admitted the caller: the otpauth:// URI. */
void cas_otp_provision(struct cas *cas, int worker, const struct cas_loaded *own, const char *service,
		       struct cas_response *resp);

/* Shared by api.c and config.c. */
struct scone_session;
struct scone_secret_set;
struct cas_parsed;
struct cas_cache;
struct cas_loaded {
	struct scone_session_rec rec;
	struct scone_session *session;	  /* borrowed from parsed */
	struct scone_secret_set *secrets; /* borrowed from parsed */
	struct cas_parsed *parsed;	  /* a reference, released by cas_loaded_free */
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
bool cas_exported_to(struct cas_imports *im, const struct cas_loaded *from, const struct scone_export *e,
		     size_t n);

/* ---- namespaces (namespace.c) ---- */

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
/*
 * The exporting session's definition of an imported secret, if it exports
 * it to im->who (and, if the import pins one, has that hash): *from and
 * *src_name (its name there) borrowed from im. *public_only: admitted
 * only by export_public, which releases a key's or certificate's public
 * part, never its private key.
 */
SCONE_MUST_CHECK enum scone_err cas_exported_secret(struct cas_imports *im, const struct scone_secret *def,
						    const struct cas_loaded **from, const char **src_name,
						    bool *public_only);

/*
 * dynamic.c: a session whose security, access_policy or attestation name
 * secrets only CAS can resolve (session->dynamic): the session as it stands
 * now, parsed again with every such reference resolved (its own secrets,
 * and imports under their exporters' rules). *out is the caller's to free.
 * On error (POLICY: an import unavailable or not valid there) detail says why.
 */
SCONE_MUST_CHECK enum scone_err cas_effective_session(struct cas *cas, int worker, const struct cas_loaded *l,
						      struct scone_session **out);
/*
 * May the caller (peer key, NULL without one) do what list grants on l's
 * session? which picks the list of the effective session for dynamic ones:
 * 'r' read, 'u' update, 'c' create_sessions (default: update).
 */
bool cas_access_allows(struct cas *cas, int worker, const struct cas_loaded *l, char which,
		       const uint8_t *peer);

/* Map a scone_err from the store/policy to an HTTP status and respond. */
void cas_respond_err(struct cas_response *resp, enum scone_err err, const char *what);

/* ---- request bodies (request.c) ---- */

#define CAS_CONFIG_ID_MAX 300

#define CAS_NOTE_MAX 240

struct cas_config_request {
	char session[SCONE_SESSION_NAME_MAX + 1];
	char service[SCONE_SESSION_NAME_MAX + 1];
	char otp[8];		/* the one-time password after '@' in config_id: 6 digits, or "" */
	char evidence_type[32]; /* "none" if absent */
	uint8_t *evidence;	/* evidence.data decoded (heap, NULL if absent); cas_config_request_free */
	size_t evidence_size;
	char evidence_note[CAS_NOTE_MAX +
			   1];	   /* the runtime's reason for having no evidence (untrusted, printable) */
	char access_token_mac[65]; /* hex, "" if absent (security.service_access_token) */
};

struct cas_tag_request {
	char session[SCONE_SESSION_NAME_MAX + 1];
	char service[SCONE_SESSION_NAME_MAX + 1];
	char volume[SCONE_SESSION_NAME_MAX + 1];
	char previous_tag[65]; /* "" = the volume was not initialised */
	char tag[65];
	uint8_t token[32];
};

/* PUT /v1/volumes/SESSION/VOLUME: the owner accepts a state of a volume. */
struct cas_accept_request {
	char tag[65];
	char previous_tag[65]; /* CAS's tag as the owner saw it; "" = not initialised */
};

/* POST /v1/service/values: the references of an image's own injection file. */
#define CAS_VALUES_MAX_REFS 256
struct cas_values_ref {
	char name[SCONE_SESSION_NAME_MAX + 1];
	char format[40];
	bool has_format;
};
struct cas_values_request {
	char session[SCONE_SESSION_NAME_MAX + 1];
	char service[SCONE_SESSION_NAME_MAX + 1];
	char path[4096];
	uint8_t token[32];
	size_t n_refs;
	struct cas_values_ref refs[CAS_VALUES_MAX_REFS];
};

/* Parse a JSON body; MALFORMED/INVALID/TOO_LARGE with detail naming the field. */
SCONE_MUST_CHECK enum scone_err cas_parse_config_request(const char *body, size_t len,
							 struct cas_config_request *out);
void cas_config_request_free(struct cas_config_request *r);
SCONE_MUST_CHECK enum scone_err cas_parse_tag_request(const char *body, size_t len,
						      struct cas_tag_request *out);
SCONE_MUST_CHECK enum scone_err cas_parse_accept_request(const char *body, size_t len,
							 struct cas_accept_request *out);
/* *out is heap-allocated (free()); on error NULL. */
SCONE_MUST_CHECK enum scone_err cas_parse_values_request(const char *body, size_t len,
							 struct cas_values_request **out);
/*
 * Split "session/service" at the last '/' and validate both names. The
 * config request's config_id may end in "@OTP" (cas_parse_config_request
 * takes it off first).
 */
SCONE_MUST_CHECK enum scone_err cas_split_config_id(const char *id, char *session, char *service);

#endif
