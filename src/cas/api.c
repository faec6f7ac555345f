/*
 * api.c - the CAS REST API: routing, the owners' session endpoints with
 * their access policies, /healthz and /metrics. docs/api.md is the
 * reference for every route, body and status.
 *
 * Identity is the SHA-256 of the client certificate's public key
 * (SubjectPublicKeyInfo), delivered by the server for each request. No
 * request changes anything unless it is authorised and fully valid; the
 * store's compare-and-swap makes concurrent updates of one predecessor
 * resolve to exactly one winner.
 */
#include "cas.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cas/secrets.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "policy/policy.h"

#define SESSIONS_PREFIX "/v1/sessions/"

void cas_respond_err(struct cas_response *resp, enum scone_err err, const char *what)
{
	static const int status_of_kind[] = {
	    [SCONE_KIND_INPUT] = 400,	 [SCONE_KIND_ABSENT] = 404,    [SCONE_KIND_CONFLICT] = 409,
	    [SCONE_KIND_DENIED] = 403,	 [SCONE_KIND_SIZE] = 413,      [SCONE_KIND_SPACE] = 507,
	    [SCONE_KIND_RESOURCE] = 503, [SCONE_KIND_INTEGRITY] = 500, [SCONE_KIND_FAILURE] = 500,
	};
	enum scone_err_kind kind = scone_err_kind(err);
	int status = kind != SCONE_KIND_NONE ? status_of_kind[kind] : 500;

	if (status >= 500)
		scone_error("%s: %s: %s", what, scone_strerror(err), scone_err_detail());
	cas_respond_error(resp, status, scone_errname(err), "%s: %s%s%s", what, scone_strerror(err),
			  scone_err_detail()[0] ? ": " : "", scone_err_detail());
}

static struct scone_store *store_of(struct cas *cas, int worker)
{
	return cas->stores[worker < 0 || worker >= CAS_MAX_WORKERS ? 0 : worker];
}

void cas_loaded_free(struct cas_loaded *l)
{
	scone_session_rec_clear(&l->rec);
	cas_parsed_put(l->parsed);
	memset(l, 0, sizeof(*l));
}

bool cas_load_session(struct cas *cas, int worker, const char *name, struct cas_loaded *out,
		      struct cas_response *resp)
{
	struct scone_store *st = store_of(cas, worker);
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	err = st->ops->get(st, name, &out->rec);
	if (err) {
		cas_respond_err(resp, err, "session");
		return false;
	}
	err = cas_cache_get(worker >= 0 && worker < CAS_MAX_WORKERS ? cas->caches[worker] : NULL, &out->rec,
			    &out->parsed, &out->session, &out->secrets);
	if (err) {
		cas_respond_err(resp, err, "session");
		cas_loaded_free(out);
		return false;
	}
	return true;
}

/* ---- access policy ---- */

/* The caller's key, or NULL without a client certificate. */
static const uint8_t *peer_of(const struct cas_request *req)
{
	return req->has_peer_key ? req->peer_spki_sha256 : NULL;
}

static void hex32(const uint8_t in[32], char out[65])
{
	scone_hex_encode(out, 65, in, 32);
}

/* 400 with every validation error, positions included. */
static void respond_policy_errors(struct cas_response *resp, enum scone_err err,
				  const struct scone_policy_diag *d)
{
	json_t *list = json_array(), *j;

	if (err != SCONE_ERR_POLICY) {
		cas_respond_err(resp, err, "session");
		json_decref(list);
		return;
	}
	for (size_t i = 0; i < d->count; i++) {
		const struct scone_policy_error *e = &d->errors[i];
		json_array_append_new(list, json_pack("{s:i,s:i,s:s,s:s}", "line", e->pos.line, "column",
						      e->pos.column, "path", e->path, "message", e->message));
	}
	j = json_pack("{s:s,s:s,s:o,s:I}", "error", "the session is invalid", "code", "POLICY", "errors",
		      list, "more_errors", (json_int_t)d->dropped);
	cas_respond_json(resp, 400, j);
}

/* The warnings of a session that passed (deprecated SCONE forms), for the answer: a JSON array. */
static json_t *policy_warnings(const struct scone_policy_diag *d)
{
	json_t *list = json_array();

	for (size_t i = 0; i < d->n_notes; i++) {
		const struct scone_policy_note *n = &d->notes[i];
		if (n->kind == SCONE_NOTE_WARNING)
			json_array_append_new(list, json_pack("{s:i,s:i,s:s,s:s}", "line", n->e.pos.line,
							      "column", n->e.pos.column, "path", n->e.path,
							      "message", n->e.message));
	}
	return list;
}

static bool parse_body_session(struct cas *cas, const struct cas_request *req, struct cas_response *resp,
			       struct scone_session **out, json_t **warnings)
{
	struct scone_policy_diag diag = {0};
	enum scone_err err;

	err = scone_session_parse((const char *)req->body, req->body_len, out, &diag);
	if (err) {
		atomic_fetch_add(&cas->counters.policy_rejects, 1);
		respond_policy_errors(resp, err, &diag);
	} else {
		*warnings = policy_warnings(&diag);
	}
	scone_policy_diag_free(&diag);
	return err == SCONE_ERR_OK;
}

/* ---- the cost of a create or update ---- */

static unsigned per_request(const struct cas *cas)
{
	return cas->keygen_per_request ? cas->keygen_per_request : CAS_KEYGEN_PER_REQUEST;
}

/* The key clients without a certificate share a budget under (an update admitted by ANY). */
static const uint8_t *budget_key(const struct cas_request *req)
{
	static const uint8_t anonymous[32];

	return req->has_peer_key ? req->peer_spki_sha256 : anonymous;
}

/*
 * The keys generating s would make fit one request and the caller's budget
 * per minute; else a 400 or 429 that says what it costs and what to do.
 * *cost: what was taken from the caller's budget (the generation's budget).
 */
static bool keygen_allowed(struct cas *cas, const struct cas_request *req, const struct scone_session *s,
			   const struct scone_secret_set *previous, unsigned *cost, struct cas_response *resp)
{
	unsigned retry = 0;

	*cost = scone_secrets_keygen_cost(s, previous);
	if (*cost > per_request(cas)) {
		cas_respond_error(
		    resp, 400, "LIMIT",
		    "session %s: its new keys cost %u units of key generation, and one create or update "
		    "may spend at most %u (an RSA-3072 key counts %u, RSA-2048 %u, P-256, P-384 and "
		    "Ed25519 keys 0): use EC keys, keep keys across updates with migrate: true, or split "
		    "the session",
		    s->name, *cost, per_request(cas), SCONE_SECRETS_COST_RSA3072, SCONE_SECRETS_COST_RSA2048);
		return false;
	}
	if (!cas->keygen || cas_budget_take(cas->keygen, budget_key(req), *cost, &retry))
		return true;
	resp->retry_after = retry;
	cas_respond_error(
	    resp, 429, "LIMIT",
	    "session %s: this client has used its key-generation budget (units per minute: RSA-3072 "
	    "keys count %u, RSA-2048 %u); this create or update needs %u; retry in %u s",
	    s->name, SCONE_SECRETS_COST_RSA3072, SCONE_SECRETS_COST_RSA2048, *cost, retry);
	return false;
}

/*
 * creator: the session's creator (the caller for a new session, the stored
 * one for an update). key_budget: units of key generation taken for it
 * (keygen_allowed); what is not spent goes back to the caller's budget.
 */
static enum scone_err make_rec(struct cas *cas, const struct cas_request *req, const struct scone_session *s,
			       const uint8_t creator[32], const struct scone_secret_set *previous,
			       unsigned key_budget, struct scone_session_rec *rec)
{
	struct cas_imports im = {.cas = cas, .worker = req->worker, .who = s, .who_creator = creator};
	struct scone_secrets_opts opts = {
	    .resolve = cas_resolve_secret_import, .resolve_ctx = &im, .key_budget = key_budget};
	struct scone_secret_set *set = NULL;
	struct scone_wbuf blob;
	enum scone_err err;

	memset(rec, 0, sizeof(*rec));
	snprintf(rec->name, sizeof(rec->name), "%s", s->name);
	memcpy(rec->hash, s->hash, 32);
	memcpy(rec->creator, creator, 32);
	rec->body = (char *)req->body;
	rec->body_len = req->body_len;
	rec->created = rec->updated = (int64_t)time(NULL);
	/* Certificates may use an imported key or issuer: resolved under the exporter's rules. */
	err = scone_secrets_generate_opts(s, previous, &opts, &set);
	cas_imports_free(&im);
	if (cas->keygen && opts.key_spent < key_budget)
		cas_budget_refund(cas->keygen, budget_key(req), key_budget - opts.key_spent);
	if (err)
		return err;
	scone_wbuf_init(&blob, SCONE_SECRETS_MAX_BYTES, 1);
	err = scone_secrets_serialize(set, &blob);
	scone_secrets_free(set);
	if (err) {
		scone_wbuf_free(&blob);
		return err;
	}
	rec->secrets = blob.data; /* owned by the caller now: freed with free_rec_secrets */
	rec->secrets_len = blob.size;
	return SCONE_ERR_OK;
}

static void free_rec_secrets(struct scone_session_rec *rec)
{
	if (rec->secrets) {
		scone_wipe(rec->secrets, rec->secrets_len);
		free(rec->secrets);
	}
	rec->secrets = NULL;
}

/* {name, hash} and, when given, the session's warnings (taken). */
static void respond_hash(struct cas_response *resp, int status, const char *name, const uint8_t hash[32],
			 json_t *warnings)
{
	json_t *j;
	char h[65];

	hex32(hash, h);
	j = json_pack("{s:s,s:s}", "name", name, "hash", h);
	if (warnings && json_array_size(warnings))
		json_object_set(j, "warnings", warnings);
	json_decref(warnings);
	cas_respond_json(resp, status, j);
}

/* The nearest existing session above name must let the caller create it (namespace.c). */
static bool namespace_allows(struct cas *cas, const struct cas_request *req, const char *name,
			     struct cas_response *resp)
{
	enum scone_err err = cas_namespace_may_create(cas, req->worker, name, req->peer_spki_sha256);

	if (err == SCONE_ERR_OK)
		return true;
	cas_respond_err(resp, err, "create session");
	return false;
}

/*
 * SCONE's read-back key creator: a session saved from SCONE's session read
 * names its creator. Accepted only when that is who CAS records anyway:
 * the uploader on creation, the session's creator on update.
 */
static bool creator_ok(const struct scone_session *s, const uint8_t who[32], struct cas_response *resp)
{
	if (!s->has_creator || scone_ct_equal(s->creator_spki_sha256, who, 32))
		return true;
	cas_respond_error(
	    resp, 400, "POLICY",
	    "session %s: creator names another key than the %s; creator is set by CAS: remove it", s->name,
	    s->predecessor ? "session's creator" : "client certificate uploading it");
	return false;
}

/* namespace_hash (SCONE 0.3.12): the parent session must have this hash when the session is created. */
static bool namespace_hash_ok(struct cas *cas, const struct cas_request *req, const struct scone_session *s,
			      struct cas_response *resp)
{
	struct scone_store *st = store_of(cas, req->worker);
	const char *slash = strrchr(s->name, '/');
	char parent[SCONE_SESSION_NAME_MAX + 1], h[65];
	struct scone_session_rec rec;
	bool ok;

	if (!s->namespace_hash || !slash)
		return true;
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - s->name), s->name);
	if (st->ops->get(st, parent, &rec) != SCONE_ERR_OK) {
		cas_respond_error(resp, 409, "CONFLICT",
				  "session %s: namespace_hash names namespace %s, which does not exist",
				  s->name, parent);
		return false;
	}
	hex32(rec.hash, h);
	ok = strcmp(h, s->namespace_hash) == 0;
	scone_session_rec_clear(&rec);
	/* the parent's hash is not told: the caller may not be allowed to read it (a salted one is private)
	 */
	if (!ok)
		cas_respond_error(
		    resp, 409, "CONFLICT",
		    "session %s: namespace %s does not have the namespace_hash given (it changed, or the "
		    "hash is of another session)",
		    s->name, parent);
	return ok;
}

static void session_create(struct cas *cas, const struct cas_request *req, struct cas_response *resp)
{
	struct scone_store *st = store_of(cas, req->worker);
	struct scone_session *s = NULL;
	struct scone_session_rec rec;
	json_t *warnings = NULL;
	unsigned cost;
	enum scone_err err;

	if (!req->has_peer_key) {
		cas_respond_error(resp, 401, "AUTH",
				  "creating a session needs a client certificate (scone cas keygen)");
		return;
	}
	if (!parse_body_session(cas, req, resp, &s, &warnings))
		return;
	if (s->predecessor) {
		cas_respond_error(resp, 400, "POLICY",
				  "session %s: a new session has no predecessor (to replace one, update it)",
				  s->name);
		goto out;
	}
	if (!namespace_allows(cas, req, s->name, resp) || !creator_ok(s, req->peer_spki_sha256, resp) ||
	    !namespace_hash_ok(cas, req, s, resp) || !keygen_allowed(cas, req, s, NULL, &cost, resp))
		goto out;
	err = make_rec(cas, req, s, req->peer_spki_sha256, NULL, cost, &rec);
	if (!err)
		err = st->ops->create(st, &rec);
	free_rec_secrets(&rec);
	if (err) {
		cas_respond_err(resp, err, "create session");
		goto out;
	}
	atomic_fetch_add(&cas->counters.sessions_created, 1);
	scone_info("session %s created", s->name);
	respond_hash(resp, 201, s->name, s->hash, warnings);
	warnings = NULL;
out:
	json_decref(warnings);
	scone_session_free(s);
}

/* Load the current session if its access_policy.update admits the caller; else respond. */
static bool load_for_update(struct cas *cas, const struct cas_request *req, const char *name,
			    struct cas_loaded *cur, struct cas_response *resp)
{
	if (!cas_load_session(cas, req->worker, name, cur, resp))
		return false;
	if (cas_access_allows(cas, req->worker, cur, 'u', peer_of(req)))
		return true;
	cas_respond_error(resp, 403, "PERMISSION",
			  "session %s: access_policy.update does not allow this client", name);
	cas_loaded_free(cur);
	return false;
}

static void session_update(struct cas *cas, const struct cas_request *req, const char *name,
			   struct cas_response *resp)
{
	struct scone_store *st = store_of(cas, req->worker);
	struct scone_session *s = NULL;
	struct scone_session_rec rec;
	struct cas_loaded cur;
	json_t *warnings = NULL;
	uint8_t pred[32];
	unsigned cost;
	enum scone_err err;

	if (!load_for_update(cas, req, name, &cur, resp))
		return;
	if (!parse_body_session(cas, req, resp, &s, &warnings))
		goto out;
	if (strcmp(s->name, name) != 0) {
		cas_respond_error(resp, 400, "POLICY", "the document names session %s, the request %s",
				  s->name, name);
		goto out;
	}
	if (!s->predecessor || scone_hex_decode(pred, 32, s->predecessor, "predecessor")) {
		cas_respond_error(resp, 400, "POLICY",
				  "session %s: an update must name its predecessor (the current hash)", name);
		goto out;
	}
	if (!creator_ok(s, cur.rec.creator, resp))
		goto out;
	if (!scone_ct_equal(pred, cur.rec.hash, 32)) {
		char h[65];
		hex32(cur.rec.hash, h);
		atomic_fetch_add(&cas->counters.update_conflicts, 1);
		cas_respond_error(resp, 409, "CONFLICT", "session %s: predecessor is not the current hash %s",
				  name, h);
		goto out;
	}
	if (!keygen_allowed(cas, req, s, cur.secrets, &cost, resp))
		goto out;
	err = make_rec(cas, req, s, cur.rec.creator, cur.secrets, cost, &rec);
	if (!err)
		err = st->ops->update(st, &rec, pred);
	free_rec_secrets(&rec);
	if (err) {
		if (err == SCONE_ERR_CONFLICT)
			atomic_fetch_add(&cas->counters.update_conflicts, 1);
		cas_respond_err(resp, err, "update session");
		goto out;
	}
	atomic_fetch_add(&cas->counters.sessions_updated, 1);
	scone_info("session %s updated", name);
	respond_hash(resp, 200, name, s->hash, warnings);
	warnings = NULL;
out:
	json_decref(warnings);
	if (s)
		scone_session_free(s);
	cas_loaded_free(&cur);
}

static void session_delete(struct cas *cas, const struct cas_request *req, const char *name,
			   struct cas_response *resp)
{
	struct scone_store *st = store_of(cas, req->worker);
	struct cas_loaded cur;
	enum scone_err err;

	if (!load_for_update(cas, req, name, &cur, resp))
		return;
	err = st->ops->remove(st, name, cur.rec.hash);
	if (err) {
		cas_respond_err(resp, err, "delete session");
		goto out;
	}
	atomic_fetch_add(&cas->counters.sessions_deleted, 1);
	scone_info("session %s deleted", name);
	respond_hash(resp, 200, name, cur.rec.hash, NULL);
out:
	cas_loaded_free(&cur);
}

/* Names, kinds and public parts (certificates, public keys) only; never a secret value. */
static json_t *secrets_public(const struct cas_loaded *l)
{
	json_t *list = json_array();

	for (size_t i = 0; i < l->session->n_secrets; i++) {
		const struct scone_secret *sec = &l->session->secrets[i];
		json_t *o = json_pack("{s:s,s:s,s:b}", "name", sec->name, "kind",
				      scone_secret_kind_name(sec->kind), "imported", sec->import != NULL);
		struct scone_wbuf pub;

		scone_wbuf_init(&pub, 1 << 20, 0);
		if (!sec->import && scone_secrets_public(l->secrets, sec->name, &pub) == SCONE_ERR_OK &&
		    pub.size)
			json_object_set_new(o, "public", json_stringn((const char *)pub.data, pub.size));
		scone_wbuf_free(&pub);
		json_array_append_new(list, o);
	}
	return list;
}

static void session_read(struct cas *cas, const struct cas_request *req, const char *name,
			 struct cas_response *resp)
{
	struct cas_loaded cur;
	char h[65], c[65];

	if (!cas_load_session(cas, req->worker, name, &cur, resp))
		return;
	if (!cas_access_allows(cas, req->worker, &cur, 'r', peer_of(req))) {
		cas_respond_error(resp, 403, "PERMISSION",
				  "session %s: access_policy.read does not allow this client", name);
		goto out;
	}
	hex32(cur.rec.hash, h);
	hex32(cur.rec.creator, c);
	cas_respond_json(resp, 200,
			 json_pack("{s:s,s:s,s:s,s:s%,s:o,s:I,s:I}", "name", name, "hash", h, "creator", c,
				   "session", cur.rec.body, cur.rec.body_len, "secrets", secrets_public(&cur),
				   "created", (json_int_t)cur.rec.created, "updated",
				   (json_int_t)cur.rec.updated));
out:
	cas_loaded_free(&cur);
}

static int list_one(void *ctx, const char *name, const uint8_t hash[32])
{
	char h[65];

	hex32(hash, h);
	return json_array_append_new(ctx, json_pack("{s:s,s:s}", "name", name, "hash", h)) != 0;
}

static void session_list(struct cas *cas, const struct cas_request *req, struct cas_response *resp)
{
	struct scone_store *st = store_of(cas, req->worker);
	json_t *list;
	enum scone_err err;

	if (!req->has_peer_key) {
		cas_respond_error(resp, 401, "AUTH", "listing sessions needs a client certificate");
		return;
	}
	list = json_array();
	err = st->ops->list(st, req->peer_spki_sha256, list_one, list);
	if (err) {
		json_decref(list);
		cas_respond_err(resp, err, "list sessions");
		return;
	}
	cas_respond_json(resp, 200, json_pack("{s:o}", "sessions", list));
}

/* GET /v1/otp/SESSION/SERVICE: for those the session's read policy admits. */
static void otp_provision(struct cas *cas, const struct cas_request *req, const char *id,
			  struct cas_response *resp)
{
	char session[SCONE_SESSION_NAME_MAX + 1], service[SCONE_SESSION_NAME_MAX + 1];
	struct cas_loaded cur;
	enum scone_err err = cas_split_config_id(id, session, service);

	if (err) {
		cas_respond_err(resp, err, "path");
		return;
	}
	if (!cas_load_session(cas, req->worker, session, &cur, resp))
		return;
	if (!cas_access_allows(cas, req->worker, &cur, 'r', peer_of(req)))
		cas_respond_error(resp, 403, "PERMISSION",
				  "session %s: access_policy.read does not allow this client", session);
	else
		cas_otp_provision(cas, req->worker, &cur, service, resp);
	cas_loaded_free(&cur);
}

/* ---- health and metrics ---- */

static enum scone_err cas_metrics(struct cas *cas, struct scone_store *st, struct scone_wbuf *b)
{
	struct cas_counters *k = &cas->counters;
	uint64_t sessions = 0;

	if (cas->server)
		SCONE_TRY(cas_server_metrics(cas->server, b));
	SCONE_TRY(cas_server_metric(b, "scone_cas_sessions_created_total", "counter", "Sessions created.",
				    k->sessions_created));
	SCONE_TRY(cas_server_metric(b, "scone_cas_sessions_updated_total", "counter", "Sessions updated.",
				    k->sessions_updated));
	SCONE_TRY(cas_server_metric(b, "scone_cas_sessions_deleted_total", "counter", "Sessions deleted.",
				    k->sessions_deleted));
	SCONE_TRY(cas_server_metric(b, "scone_cas_update_conflicts_total", "counter",
				    "Updates refused for a stale predecessor.", k->update_conflicts));
	SCONE_TRY(cas_server_metric(b, "scone_cas_policy_rejections_total", "counter",
				    "Session documents refused as invalid.", k->policy_rejects));
	SCONE_TRY(cas_server_metric(b, "scone_cas_config_fetches_total", "counter",
				    "Service configurations delivered.", k->config_fetches));
	SCONE_TRY(cas_server_metric(b, "scone_cas_config_denied_total", "counter",
				    "Service configurations refused.", k->config_denied));
	SCONE_TRY(cas_server_metric(b, "scone_cas_volume_tag_updates_total", "counter",
				    "Volume tags updated.", k->tag_updates));
	SCONE_TRY(cas_server_metric(b, "scone_cas_volume_tag_conflicts_total", "counter",
				    "Volume tag updates refused (stale tag).", k->tag_conflicts));
	if (st->ops->count(st, &sessions) != SCONE_ERR_OK) {
		scone_err_clear(); /* the gauge is left out; the counters above still answer */
		return SCONE_ERR_OK;
	}
	return cas_server_metric(b, "scone_cas_sessions", "gauge", "Sessions in the store.", sessions);
}

static void handle_metrics(struct cas *cas, const struct cas_request *req, struct cas_response *resp)
{
	enum scone_err err = cas_metrics(cas, store_of(cas, req->worker), &resp->body);

	if (err)
		cas_respond_err(resp, err, "metrics");
	else
		resp->content_type = "text/plain; version=0.0.4";
}

/* ---- routing ---- */

/* Route one request; returns false when the path matched but not the method. */
static bool route(struct cas *cas, const struct cas_request *req, struct cas_response *resp)
{
	const char *p = req->path;
	enum cas_method m = req->method;

	if (strcmp(p, "/healthz") == 0) {
		if (m != CAS_GET)
			return false;
		cas_respond_json(resp, 200, json_pack("{s:s}", "status", "ok"));
	} else if (strcmp(p, "/v1/cas/evidence") == 0) {
		if (m != CAS_GET)
			return false;
		cas_handle_self_evidence(cas, resp);
	} else if (strcmp(p, "/metrics") == 0) {
		if (m != CAS_GET)
			return false;
		handle_metrics(cas, req, resp);
	} else if (strcmp(p, "/v1/sessions") == 0) {
		if (m == CAS_POST)
			session_create(cas, req, resp);
		else if (m == CAS_GET)
			session_list(cas, req, resp);
		else
			return false;
	} else if (strncmp(p, SESSIONS_PREFIX, strlen(SESSIONS_PREFIX)) == 0) {
		const char *name = p + strlen(SESSIONS_PREFIX);
		if (m != CAS_GET && m != CAS_PUT && m != CAS_DELETE)
			return false;
		if (!scone_session_name_valid(name))
			cas_respond_error(resp, 400, "INVALID", "invalid session name in the path");
		else if (m == CAS_GET)
			session_read(cas, req, name, resp);
		else if (m == CAS_PUT)
			session_update(cas, req, name, resp);
		else
			session_delete(cas, req, name, resp);
	} else if (strncmp(p, "/v1/otp/", 8) == 0) {
		if (m != CAS_GET)
			return false;
		otp_provision(cas, req, p + 8, resp);
	} else if (strcmp(p, "/v1/service/config") == 0) {
		if (m != CAS_POST)
			return false;
		cas_handle_config(cas, req, resp);
	} else if (strcmp(p, "/v1/service/values") == 0) {
		if (m != CAS_POST)
			return false;
		cas_handle_values(cas, req, resp);
	} else if (strcmp(p, "/v1/volumes/tag") == 0) {
		if (m != CAS_POST)
			return false;
		cas_handle_volume_tag(cas, req, resp);
	} else if (strncmp(p, "/v1/volumes/", 12) == 0) {
		if (m != CAS_GET && m != CAS_PUT)
			return false;
		cas_handle_volume_owner(cas, req, p + 12, resp);
	} else {
		cas_respond_error(resp, 404, "NOT_FOUND", "no such endpoint");
	}
	return true;
}

bool cas_is_slow(void *ctx, const struct cas_request *req)
{
	(void)ctx;
	return (req->method == CAS_POST && strcmp(req->path, "/v1/sessions") == 0) ||
	       (req->method == CAS_PUT && strncmp(req->path, SESSIONS_PREFIX, strlen(SESSIONS_PREFIX)) == 0);
}

void cas_handle(void *ctx, const struct cas_request *req, struct cas_response *resp)
{
	if (cas_audit_refuse_all(ctx, resp))
		return;
	do {
		cas_audit_begin(ctx, req);
		if (!route(ctx, req, resp))
			cas_respond_error(resp, 405, "METHOD", "method not allowed on %s", req->path);
	} while (cas_audit_end(ctx, req, resp));
}

enum scone_err cas_worker_init(void *ctx, int worker)
{
	struct cas *cas = ctx;

	if (worker < 0 || worker >= CAS_MAX_WORKERS)
		return scone_err_set(SCONE_ERR_INVALID, "worker %d: at most %d workers", worker,
				     CAS_MAX_WORKERS);
	cas->caches[worker] = cas_cache_new();
	if (!cas->caches[worker])
		return scone_err_set(SCONE_ERR_NOMEM, "session cache");
	SCONE_TRY(scone_store_open(cas->store_url, cas->master_key, SCONE_STORE_OPEN_EXISTING,
				   &cas->stores[worker]));
	return cas_audit_start(cas, worker);
}

void cas_worker_tick(void *ctx, int worker)
{
	struct cas *cas = ctx;

	if (worker >= 0 && worker < CAS_MAX_WORKERS)
		cas_audit_tick(cas, worker, false);
}

void cas_worker_fini(void *ctx, int worker)
{
	struct cas *cas = ctx;

	if (worker < 0 || worker >= CAS_MAX_WORKERS)
		return;
	cas_audit_stop(cas, worker);
	if (cas->stores[worker])
		cas->stores[worker]->ops->close(cas->stores[worker]);
	cas->stores[worker] = NULL;
	cas_cache_free(cas->caches[worker]);
	cas->caches[worker] = NULL;
}
