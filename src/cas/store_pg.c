/*
 * store_pg.c - the CAS store on PostgreSQL (libpq): one database shared by
 * any number of CAS replicas, each worker of each replica with its own
 * connection (one handle). This file holds the ops and the read cache;
 * store_pg_conn.c the statements, the connection and transactions;
 * store_pg_open.c the schema and opening (store_pg_internal.h between them).
 *
 * Schema (version 1), created in one transaction under an advisory lock so
 * that replicas starting together make it once:
 *   scone_meta(key text PRIMARY KEY, value bytea)      'schema' = "1",
 *       'canary' = sealed, 'key_check' = 16 bytes of HKDF(master key)
 *   scone_sessions(name text PRIMARY KEY, hash bytea, creator bytea,
 *       body bytea, secrets bytea, created bigint, updated bigint,
 *       version bigint)      version: from the sequence scone_version, new
 *                            at every change of the row or of its volume tags
 *   scone_volume_tags(session text REFERENCES scone_sessions ON DELETE
 *       CASCADE, volume text, tag bytea, PRIMARY KEY(session, volume))
 *   scone_audit(chain text, seq bigint, prev bytea, hash bytea, line text,
 *       PRIMARY KEY(chain, seq))
 *   scone_used_once(scope text, key text, expires bigint, PRIMARY KEY(scope,
 *       key))                one-time uses (store.h use_once), unsealed
 * Names are COLLATE "C" (byte order, as SQLite's), blobs are sealed exactly
 * as in the SQLite engine (store.c, same places), so items move between the
 * two engines unchanged.
 *
 * Invariants:
 * - Every write runs in one READ COMMITTED transaction whose first read
 *   locks the row it will change (SELECT ... FOR UPDATE; for volume tags the
 *   session row FOR NO KEY UPDATE): a concurrent writer of the same row on
 *   any replica waits, then sees the committed new version and fails the
 *   compare (CONFLICT). Unique violations are EXISTS.
 * - Commits of writes wait for the WAL flush (synchronous_commit at least
 *   on, or the server's stricter setting, SET LOCAL per transaction); the
 *   connection's default is off, which only audit entries appended with
 *   durable false use: PostgreSQL loses at most the tail of those on a
 *   crash of the server, never a write that waited.
 * - A read starts a new snapshot (autocommit statement): it sees every
 *   write that was acknowledged before it started, from any replica.
 * - The change counter (store.h) is the sequence scone_version: every write
 *   takes a value from it (an update, a tag change, a delete, a create),
 *   committed durably. A handle's "seen" is the highest version it read or
 *   committed; every audit entry is inserted only if the sequence's
 *   last_value is not below it. A restore of an older database (a backup,
 *   a snapshot, point-in-time recovery) sets the sequence back: each
 *   replica that saw newer versions refuses at its next entry (ROLLBACK). A
 *   crash does not set it back below a committed value (the commit flushed
 *   the sequence's WAL record before it).
 * - Optimistic reads (store.h): a handle keeps the records it read (with
 *   their volume tags and version) in a small cache and may answer from
 *   it; the versions it answered with go into the handle's read set, and
 *   the next audit entry is inserted only if every one of them is still
 *   the row's version (one statement: the check and the insert). Versions
 *   come from a sequence, so a session deleted and created again never
 *   repeats one. A configuration release thus costs one round trip when
 *   nothing changed, and is never built on a record changed before the
 *   release's entry committed.
 * - A lost connection (server restart, network) makes the call BUSY and
 *   marks the handle; the next call resets the connection and prepares the
 *   statements again. A read whose connection was found lost is retried
 *   once on the new connection; a write is not (its commit may have
 *   happened: the caller reads to find out).
 * - The library prints nothing: libpq's notices are dropped.
 */
#include "store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/crypto.h"

/* ---------------- sealing ---------------- */

static enum scone_err unseal_col(struct pg_store *s, const PGresult *r, int c,
				 const struct scone_store_place *pl, uint8_t **out, size_t *out_size)
{
	size_t n;
	const uint8_t *blob = col(r, 0, c, &n);

	return scone_store_unseal_col(s->sealer, s->where, pl, blob, n, out, out_size);
}

/* ---------------- the read cache ---------------- */

static size_t slot_of(const char *name)
{
	size_t h = 5381;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = h * 33 + *p;
	return h % CACHE_SLOTS;
}

static void cached_free(struct cached *c)
{
	if (!c)
		return;
	scone_session_rec_clear(&c->rec);
	free(c->tags);
	free(c);
}

static struct cached *cache_find(struct pg_store *s, const char *name)
{
	struct cached *c = s->cache[slot_of(name)];

	return c && strcmp(c->rec.name, name) == 0 ? c : NULL;
}

void store_pg_cache_drop(struct pg_store *s, const char *name)
{
	size_t i = slot_of(name);

	if (s->cache[i] && strcmp(s->cache[i]->rec.name, name) == 0) {
		cached_free(s->cache[i]);
		s->cache[i] = NULL;
	}
}

/* Note that the answer being built rests on name at version (optimistic mode). */
static void note(struct pg_store *s, const char *name, int64_t version)
{
	for (int i = 0; i < s->n_read; i++)
		if (strcmp(s->read_set[i].name, name) == 0)
			return;
	if (!s->optimistic || s->n_read == READ_SET_MAX)
		return; /* a full set: reads beyond it count as of their own time */
	snprintf(s->read_set[s->n_read].name, sizeof(s->read_set[0].name), "%s", name);
	s->read_set[s->n_read++].version = version;
}

/* A deep copy of a record (body and secrets NUL-terminated, as get promises). */
static enum scone_err rec_copy(const struct scone_session_rec *from, struct scone_session_rec *to)
{
	*to = *from;
	to->body = malloc(from->body_len + 1);
	to->secrets = malloc(from->secrets_len + 1);
	if (!to->body || !to->secrets) {
		free(to->body);
		free(to->secrets);
		memset(to, 0, sizeof(*to));
		return scone_err_set(SCONE_ERR_NOMEM, "store: no memory for a record");
	}
	memcpy(to->body, from->body, from->body_len + 1);
	memcpy(to->secrets, from->secrets, from->secrets_len + 1);
	return SCONE_ERR_OK;
}

/* ---------------- get ---------------- */

struct get_arg {
	const char *name;
	struct scone_session_rec *rec; /* may be NULL: only the cache is filled */
};

/* The volume tags of a joined row set (rows 0..n-1; a NULL volume: none) into c. */
static enum scone_err read_tags(struct pg_store *s, const PGresult *r, const char *name, struct cached *c)
{
	int n = PQntuples(r);

	if (PQgetisnull(r, 0, 7))
		return SCONE_ERR_OK;
	c->tags = calloc((size_t)n, sizeof(*c->tags));
	if (!c->tags)
		return scone_err_set(SCONE_ERR_NOMEM, "store: no memory for volume tags");
	for (int i = 0; i < n; i++) {
		struct cached_tag *t = &c->tags[c->n_tags];
		struct scone_store_place pl;
		uint8_t *plain = NULL;
		size_t plain_size = 0, len = 0;
		const uint8_t *blob = col(r, i, 8, &len);
		enum scone_err err;

		snprintf(t->volume, sizeof(t->volume), "%s", PQgetvalue(r, i, 7));
		scone_store_tag_place(&pl, name, t->volume);
		err = scone_store_unseal(s->sealer, &pl, blob, len, &plain, &plain_size);
		if (err == SCONE_ERR_OK &&
		    (plain_size != SCONE_STORE_TAG_HEX ||
		     scone_store_norm_tag("stored tag", (const char *)plain, false, t->tag)))
			err = SCONE_ERR_AUTH;
		free(plain);
		if (err != SCONE_ERR_OK)
			return scone_err_set(SCONE_ERR_CORRUPT,
					     "store %s: volume tag of %s/%s does not unseal (damaged, "
					     "tampered with or moved from another row)",
					     s->where, name, t->volume);
		c->n_tags++;
	}
	return SCONE_ERR_OK;
}

static enum scone_err read_row(struct pg_store *s, const PGresult *r, const char *name,
			       struct scone_session_rec *rec)
{
	const uint8_t *hash = NULL, *creator = NULL;
	struct scone_store_place pl;

	SCONE_TRY(store_pg_col_hash(s, r, 0, 0, name, "hash", &hash));
	SCONE_TRY(store_pg_col_hash(s, r, 0, 1, name, "creator", &creator));
	memcpy(rec->name, name, strlen(name) + 1);
	memcpy(rec->hash, hash, SCONE_STORE_HASH_SIZE);
	memcpy(rec->creator, creator, SCONE_STORE_HASH_SIZE);
	scone_store_session_place(&pl, "sessions.body", name, hash, creator);
	SCONE_TRY(unseal_col(s, r, 2, &pl, (uint8_t **)&rec->body, &rec->body_len));
	pl.column = "sessions.secrets";
	SCONE_TRY(unseal_col(s, r, 3, &pl, &rec->secrets, &rec->secrets_len));
	rec->created = col_i64(r, 0, 4);
	rec->updated = col_i64(r, 0, 5);
	return SCONE_ERR_OK;
}

/* Read name with its volume tags into the cache (and a copy into a->rec); noted as read. */
static enum scone_err get_once(struct pg_store *s, void *arg)
{
	struct get_arg *a = arg;
	struct params p = {0};
	PGresult *r = NULL;
	struct cached *c = NULL;
	size_t slot = slot_of(a->name);
	enum scone_err err;

	p_text(&p, a->name);
	SCONE_TRY(store_pg_query(s, P_GET, &p, "read session", a->name, &r));
	store_pg_cache_drop(s, a->name);
	if (PQntuples(r) == 0)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store: no session named %s", a->name);
	else if (!(c = calloc(1, sizeof(*c))))
		err = scone_err_set(SCONE_ERR_NOMEM, "store: no memory for the read cache");
	else
		err = read_row(s, r, a->name, &c->rec);
	if (err == SCONE_ERR_OK) {
		c->version = col_i64(r, 0, 6);
		store_pg_saw(s, c->version);
		err = read_tags(s, r, a->name, c);
	}
	PQclear(r);
	if (err == SCONE_ERR_OK && a->rec)
		err = rec_copy(&c->rec, a->rec);
	if (err != SCONE_ERR_OK) {
		cached_free(c);
		return err;
	}
	cached_free(s->cache[slot]);
	s->cache[slot] = c;
	note(s, a->name, c->version);
	return SCONE_ERR_OK;
}

static enum scone_err pg_get(struct scone_store *st, const char *name, struct scone_session_rec *rec)
{
	struct pg_store *s = pg(st);
	struct get_arg a = {name, rec};
	struct cached *c;

	memset(rec, 0, sizeof(*rec));
	SCONE_TRY(scone_store_check_name("session name", name, SCONE_STORE_NAME_MAX));
	if (s->optimistic && (c = cache_find(s, name)) != NULL) {
		note(s, name, c->version);
		return rec_copy(&c->rec, rec);
	}
	return store_pg_retry(s, get_once, &a);
}

/* ---------------- create / update / remove ---------------- */

static enum scone_err insert_row(struct pg_store *s, enum stmt_id id, const char *name, const uint8_t *hash,
				 const uint8_t *creator, const uint8_t *body, size_t body_size,
				 const uint8_t *secrets, size_t secrets_size, int64_t created,
				 int64_t updated)
{
	struct params p = {0};
	enum scone_err err;

	p_text(&p, name);
	p_bytes(&p, hash, SCONE_STORE_HASH_SIZE);
	p_bytes(&p, creator, SCONE_STORE_HASH_SIZE);
	p_bytes(&p, body, body_size);
	p_bytes(&p, secrets, secrets_size);
	p_int64(&p, created);
	p_int64(&p, updated);
	err = store_pg_version(s, id, &p, "insert session", name, &s->pending);
	if (err == SCONE_ERR_EXISTS)
		return scone_err_set(SCONE_ERR_EXISTS, "store: a session named %s already exists", name);
	return err;
}

static enum scone_err pg_create(struct scone_store *st, const struct scone_session_rec *rec)
{
	struct pg_store *s = pg(st);
	struct scone_store_sealed b;
	struct txn t;
	int64_t created = scone_store_now_or(rec->created);
	enum scone_err err;

	SCONE_TRY(scone_store_check_rec(rec));
	SCONE_TRY(scone_store_seal_rec(s->sealer, rec, rec->creator, &b));
	err = store_pg_txn_start(s, &t, "begin creating a session");
	if (err == SCONE_ERR_OK)
		err = insert_row(s, P_INSERT, rec->name, rec->hash, rec->creator, b.body, b.body_size,
				 b.secrets, b.secrets_size, created, rec->updated ? rec->updated : created);
	t.ch =
	    (struct scone_store_change){.kind = SCONE_STORE_CREATE, .session = rec->name, .hash = rec->hash};
	err = store_pg_txn_finish(s, &t, err, "commit creating a session");
	scone_store_sealed_free(&b);
	return err;
}

/*
 * Inside a transaction: lock name's row, check its hash is expected. With
 * creator (update), also authenticate the stored row (its body unseals for
 * its name, hash and creator) and return its creator, so that an update
 * never re-seals an altered creator as genuine.
 */
static enum scone_err check_current(struct pg_store *s, const char *name, const uint8_t *expected,
				    uint8_t creator[SCONE_STORE_HASH_SIZE])
{
	struct params p = {0};
	struct scone_store_place pl;
	const uint8_t *hash = NULL, *cr = NULL;
	uint8_t *plain = NULL;
	size_t plain_size = 0;
	PGresult *r = NULL;
	enum scone_err err;

	p_text(&p, name);
	SCONE_TRY(store_pg_query(s, creator ? P_HEAD : P_HASH, &p, "read session", name, &r));
	if (PQntuples(r) == 0) {
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store: no session named %s", name);
		goto out;
	}
	err = store_pg_col_hash(s, r, 0, 0, name, "hash", &hash);
	if (err == SCONE_ERR_OK && expected && !scone_ct_equal(hash, expected, SCONE_STORE_HASH_SIZE))
		err = scone_err_set(
		    SCONE_ERR_CONFLICT,
		    "store: session %s has changed (its hash is not the expected predecessor)", name);
	if (err != SCONE_ERR_OK || !creator)
		goto out;
	err = store_pg_col_hash(s, r, 0, 1, name, "creator", &cr);
	if (err != SCONE_ERR_OK)
		goto out;
	scone_store_session_place(&pl, "sessions.body", name, hash, cr);
	err = unseal_col(s, r, 2, &pl, &plain, &plain_size);
	if (err == SCONE_ERR_OK)
		memcpy(creator, cr, SCONE_STORE_HASH_SIZE);
out:
	if (plain) {
		scone_wipe(plain, plain_size);
		free(plain);
	}
	PQclear(r);
	return err;
}

static enum scone_err update_row(struct pg_store *s, const struct scone_session_rec *rec,
				 const struct scone_store_sealed *b)
{
	struct params p = {0};

	p_text(&p, rec->name);
	p_bytes(&p, rec->hash, SCONE_STORE_HASH_SIZE);
	p_bytes(&p, b->body, b->body_size);
	p_bytes(&p, b->secrets, b->secrets_size);
	p_int64(&p, scone_store_now_or(rec->updated));
	return store_pg_version(s, P_UPDATE, &p, "update session", rec->name, &s->pending);
}

static enum scone_err pg_update(struct scone_store *st, const struct scone_session_rec *rec,
				const uint8_t expected[SCONE_STORE_HASH_SIZE])
{
	struct pg_store *s = pg(st);
	uint8_t creator[SCONE_STORE_HASH_SIZE];
	struct scone_store_sealed b = {0};
	struct txn t;
	enum scone_err err;

	SCONE_TRY(scone_store_check_rec(rec));
	if (!expected)
		return scone_err_set(SCONE_ERR_INVALID, "store: update of %s without an expected hash",
				     rec->name);
	err = store_pg_txn_start(s, &t, "begin updating a session");
	if (err == SCONE_ERR_OK)
		err = check_current(s, rec->name, expected, creator);
	if (err == SCONE_ERR_OK)
		err = scone_store_seal_rec(s->sealer, rec, creator, &b);
	if (err == SCONE_ERR_OK)
		err = update_row(s, rec, &b);
	t.ch = (struct scone_store_change){
	    .kind = SCONE_STORE_UPDATE, .session = rec->name, .hash = rec->hash, .previous = expected};
	err = store_pg_txn_finish(s, &t, err, "commit updating a session");
	scone_store_sealed_free(&b);
	store_pg_cache_drop(s, rec->name);
	return err;
}

static enum scone_err pg_remove(struct scone_store *st, const char *name,
				const uint8_t expected[SCONE_STORE_HASH_SIZE])
{
	struct pg_store *s = pg(st);
	struct params p = {0};
	struct txn t;
	enum scone_err err;

	SCONE_TRY(scone_store_check_name("session name", name, SCONE_STORE_NAME_MAX));
	if (!expected)
		return scone_err_set(SCONE_ERR_INVALID, "store: removal of %s without an expected hash",
				     name);
	err = store_pg_txn_start(s, &t, "begin removing a session");
	if (err == SCONE_ERR_OK)
		err = check_current(s, name, expected, NULL);
	p_text(&p, name);
	if (err == SCONE_ERR_OK) /* its volume tags go with it (ON DELETE CASCADE) */
		err = store_pg_run(s, P_DELETE, &p, "delete session", name, NULL);
	if (err == SCONE_ERR_OK) /* a deletion is a change too: the counter moves on */
		err = store_pg_version(s, P_NEXT, NULL, "advance the change counter for", name, &s->pending);
	t.ch = (struct scone_store_change){.kind = SCONE_STORE_REMOVE, .session = name, .hash = expected};
	store_pg_cache_drop(s, name);
	return store_pg_txn_finish(s, &t, err, "commit removing a session");
}

/* ---------------- list / count ---------------- */

struct list_arg {
	const uint8_t *creator;
	scone_store_list_fn fn;
	void *ctx;
};

static enum scone_err list_once(struct pg_store *s, void *arg)
{
	struct list_arg *a = arg;
	struct params p = {0};
	PGresult *r = NULL;
	enum scone_err err = SCONE_ERR_OK;

	p_bytes(&p, a->creator, SCONE_STORE_HASH_SIZE);
	SCONE_TRY(store_pg_query(s, P_LIST, &p, "list sessions", NULL, &r));
	for (int i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 0);
		const uint8_t *hash = NULL;
		err = store_pg_col_hash(s, r, i, 1, name, "hash", &hash);
		if (err != SCONE_ERR_OK || a->fn(a->ctx, name, hash) != 0)
			break;
	}
	PQclear(r);
	return err;
}

static enum scone_err pg_list(struct scone_store *st, const uint8_t creator[SCONE_STORE_HASH_SIZE],
			      scone_store_list_fn fn, void *ctx)
{
	struct list_arg a = {creator, fn, ctx};

	if (!creator || !fn)
		return scone_err_set(SCONE_ERR_INVALID, "store: list needs a creator and a callback");
	return store_pg_retry(pg(st), list_once, &a);
}

static enum scone_err count_once(struct pg_store *s, void *arg)
{
	PGresult *r = NULL;

	SCONE_TRY(store_pg_query(s, P_COUNT, NULL, "count sessions", NULL, &r));
	*(uint64_t *)arg = PQntuples(r) == 1 ? (uint64_t)col_i64(r, 0, 0) : 0;
	PQclear(r);
	return SCONE_ERR_OK;
}

static enum scone_err pg_count(struct scone_store *st, uint64_t *out)
{
	return store_pg_retry(pg(st), count_once, out);
}

/* ---------------- volume tags ---------------- */

struct tag_arg {
	const char *session, *volume;
	char *tag_hex;
};

/* Read the current tag of (session, volume) into tag_hex ("" if none). */
static enum scone_err read_tag(struct pg_store *s, void *arg)
{
	struct tag_arg *a = arg;
	struct params p = {0};
	struct scone_store_place pl;
	uint8_t *plain = NULL;
	size_t plain_size = 0;
	PGresult *r = NULL;
	enum scone_err err = SCONE_ERR_OK;

	a->tag_hex[0] = '\0';
	p_text(&p, a->session);
	p_text(&p, a->volume);
	SCONE_TRY(store_pg_query(s, P_TAG_GET, &p, "read the volume tag of session", a->session, &r));
	scone_store_tag_place(&pl, a->session, a->volume);
	if (PQntuples(r) == 1)
		err = unseal_col(s, r, 0, &pl, &plain, &plain_size);
	PQclear(r);
	if (err == SCONE_ERR_OK && plain &&
	    (plain_size != SCONE_STORE_TAG_HEX ||
	     scone_store_norm_tag("stored tag", (const char *)plain, false, a->tag_hex) != SCONE_ERR_OK))
		err = scone_err_set(SCONE_ERR_CORRUPT, "store %s: volume tag of %s/%s is not a tag", s->where,
				    a->session, a->volume);
	if (err != SCONE_ERR_OK)
		a->tag_hex[0] = '\0';
	free(plain);
	return err;
}

/* Optimistic: the tag from the cached record of session (read into the cache first if absent). */
static enum scone_err cached_tag(struct pg_store *s, const char *session, const char *volume,
				 char tag_hex[65])
{
	struct get_arg a = {session, NULL};
	struct cached *c = cache_find(s, session);
	enum scone_err err = SCONE_ERR_OK;

	if (!c) {
		err = store_pg_retry(s, get_once, &a);
		c = err == SCONE_ERR_OK ? cache_find(s, session) : NULL;
	}
	if (err == SCONE_ERR_NOT_FOUND) { /* no session, no tag */
		scone_err_clear();
		return SCONE_ERR_OK;
	}
	SCONE_TRY(err);
	if (!c)
		return SCONE_ERR_OK;
	note(s, session, c->version);
	for (size_t i = 0; i < c->n_tags; i++)
		if (strcmp(c->tags[i].volume, volume) == 0)
			memcpy(tag_hex, c->tags[i].tag, SCONE_STORE_TAG_HEX + 1);
	return SCONE_ERR_OK;
}

static enum scone_err pg_get_volume_tag(struct scone_store *st, const char *session, const char *volume,
					char tag_hex[65])
{
	struct pg_store *s = pg(st);
	struct tag_arg a = {session, volume, tag_hex};

	tag_hex[0] = '\0';
	SCONE_TRY(scone_store_check_tag_args(session, volume));
	if (s->optimistic)
		return cached_tag(s, session, volume, tag_hex);
	return store_pg_retry(s, read_tag, &a);
}

static enum scone_err write_tag(struct pg_store *s, const char *session, const char *volume, const char *tag)
{
	struct params p = {0};
	struct scone_store_place pl;
	uint8_t *blob = NULL;
	size_t size = 0;
	enum scone_err err;

	scone_store_tag_place(&pl, session, volume);
	SCONE_TRY(scone_store_seal(s->sealer, &pl, tag, SCONE_STORE_TAG_HEX, &blob, &size));
	p_text(&p, session);
	p_text(&p, volume);
	p_bytes(&p, blob, size);
	err = store_pg_run(s, P_TAG_PUT, &p, "write the volume tag of session", session, NULL);
	free(blob);
	if (err == SCONE_ERR_OK) { /* the session's tags changed: so did its version */
		struct params b = {0};
		p_text(&b, session);
		err = store_pg_version(s, P_BUMP, &b, "renew the version of session", session, &s->pending);
	}
	return err;
}

/* Inside a transaction: lock the session row (serialising its tag updates), compare, write. */
static enum scone_err swap_tag(struct pg_store *s, const char *session, const char *volume,
			       const char *expected, const char *tag)
{
	char cur[SCONE_STORE_TAG_HEX + 1];
	struct tag_arg a = {session, volume, cur};
	struct params p = {0};
	PGresult *r = NULL;
	int rows;

	p_text(&p, session);
	SCONE_TRY(store_pg_query(s, P_LOCK_SESSION, &p, "lock session", session, &r));
	rows = PQntuples(r);
	PQclear(r);
	if (rows == 0)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "store: no session named %s", session);
	SCONE_TRY(read_tag(s, &a));
	if (strcmp(cur, expected) != 0)
		return scone_err_set(SCONE_ERR_CONFLICT,
				     "store: volume tag of %s/%s is not the expected one (%s)", session,
				     volume, cur[0] ? "it changed" : "it is not initialised yet");
	return write_tag(s, session, volume, tag);
}

static enum scone_err pg_put_volume_tag(struct scone_store *st, const char *session, const char *volume,
					const char *expected_hex, const char *tag_hex)
{
	struct pg_store *s = pg(st);
	/* Zero-filled: a 32-digit tag is sealed as 64 bytes, NUL-padded. */
	char expected[SCONE_STORE_TAG_HEX + 1] = {0}, tag[SCONE_STORE_TAG_HEX + 1] = {0};
	struct txn t;
	enum scone_err err;

	SCONE_TRY(scone_store_check_tag_args(session, volume));
	SCONE_TRY(scone_store_norm_tag("expected volume tag", expected_hex, true, expected));
	SCONE_TRY(scone_store_norm_tag("volume tag", tag_hex, false, tag));
	err = store_pg_txn_start(s, &t, "begin setting a volume tag");
	if (err == SCONE_ERR_OK)
		err = swap_tag(s, session, volume, expected, tag);
	t.ch = (struct scone_store_change){.kind = SCONE_STORE_TAG,
					   .session = session,
					   .volume = volume,
					   .previous_tag = expected,
					   .tag = tag};
	store_pg_cache_drop(s, session);
	return store_pg_txn_finish(s, &t, err, "commit a volume tag");
}

/* ---------------- audit, dump, load ---------------- */

static enum scone_err pg_audit_append(struct scone_store *st, const struct scone_audit_row *row, bool durable)
{
	struct pg_store *s = pg(st);
	enum scone_err err = scone_store_check_audit_row(row);

	if (err == SCONE_ERR_OK && row->replaces && !durable)
		err = scone_err_set(SCONE_ERR_INVALID,
				    "store: an audit entry that replaces is written durably");
	if (err == SCONE_ERR_OK && !durable) { /* one autocommit statement, synchronous_commit = off */
		err = store_pg_ready(s);
		if (err == SCONE_ERR_OK)
			err = store_pg_audit_insert(s, row);
	} else if (err == SCONE_ERR_OK) {
		err = store_pg_begin(s, "begin appending an audit entry");
		if (err == SCONE_ERR_OK)
			err = store_pg_audit_insert(s, row);
		if (err == SCONE_ERR_OK)
			err = store_pg_exec(s, "COMMIT", "commit an audit entry");
		if (err != SCONE_ERR_OK)
			store_pg_abort(s);
	}
	s->n_read = 0;
	return err;
}

struct head_arg {
	const char *chain;
	uint64_t *seq;
	uint8_t *hash;
};

static enum scone_err head_once(struct pg_store *s, void *arg)
{
	struct head_arg *a = arg;
	struct params p = {0};
	PGresult *r = NULL;
	const uint8_t *h = NULL;
	enum scone_err err = SCONE_ERR_OK;

	p_text(&p, a->chain);
	SCONE_TRY(store_pg_query(s, P_AUDIT_HEAD, &p, "read the head of audit chain", a->chain, &r));
	if (PQntuples(r) == 0)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store %s: no audit chain %s", s->where, a->chain);
	else if ((err = store_pg_col_hash(s, r, 0, 1, a->chain, "audit hash", &h)) == SCONE_ERR_OK) {
		*a->seq = (uint64_t)col_i64(r, 0, 0);
		memcpy(a->hash, h, SCONE_STORE_HASH_SIZE);
	}
	PQclear(r);
	return err;
}

static enum scone_err pg_audit_head(struct scone_store *st, const char *chain, uint64_t *seq,
				    uint8_t hash[SCONE_STORE_HASH_SIZE])
{
	struct head_arg a = {chain, seq, hash};

	return store_pg_retry(pg(st), head_once, &a);
}

static void pg_optimistic(struct scone_store *st, bool on)
{
	struct pg_store *s = pg(st);

	s->optimistic = on;
	s->n_read = 0;
}

typedef enum scone_err (*dump_row_fn)(struct pg_store *s, const PGresult *r, scone_store_item_fn fn,
				      void *ctx);

static enum scone_err dump_session_row(struct pg_store *s, const PGresult *r, scone_store_item_fn fn,
				       void *ctx)
{
	struct scone_store_item it = {.kind = SCONE_ITEM_SESSION};

	it.name = PQgetvalue(r, 0, 0);
	SCONE_TRY(store_pg_col_hash(s, r, 0, 1, it.name, "hash", &it.hash));
	SCONE_TRY(store_pg_col_hash(s, r, 0, 2, it.name, "creator", &it.creator));
	it.body = col(r, 0, 3, &it.body_size);
	it.secrets = col(r, 0, 4, &it.secrets_size);
	it.created = col_i64(r, 0, 5);
	it.updated = col_i64(r, 0, 6);
	return fn(ctx, &it);
}

static enum scone_err dump_tag_row(struct pg_store *s, const PGresult *r, scone_store_item_fn fn, void *ctx)
{
	struct scone_store_item it = {.kind = SCONE_ITEM_TAG};

	(void)s;
	it.name = PQgetvalue(r, 0, 0);
	it.volume = PQgetvalue(r, 0, 1);
	it.tag = col(r, 0, 2, &it.tag_size);
	return fn(ctx, &it);
}

static enum scone_err dump_audit_row(struct pg_store *s, const PGresult *r, scone_store_item_fn fn, void *ctx)
{
	struct scone_audit_row row = {0};
	struct scone_store_item it = {.kind = SCONE_ITEM_AUDIT, .audit = &row};
	const char *chain = PQgetvalue(r, 0, 0);
	const uint8_t *prev = NULL, *hash = NULL;

	if (strlen(chain) > SCONE_AUDIT_CHAIN_MAX ||
	    store_pg_col_hash(s, r, 0, 2, chain, "audit prev", &prev) != SCONE_ERR_OK ||
	    store_pg_col_hash(s, r, 0, 3, chain, "audit hash", &hash) != SCONE_ERR_OK)
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: a damaged audit entry in chain %.64s",
				     s->where, chain);
	memcpy(row.chain, chain, strlen(chain) + 1);
	row.seq = (uint64_t)col_i64(r, 0, 1);
	memcpy(row.prev, prev, SCONE_STORE_HASH_SIZE);
	memcpy(row.hash, hash, SCONE_STORE_HASH_SIZE);
	row.line = PQgetvalue(r, 0, 4);
	row.line_len = (size_t)PQgetlength(r, 0, 4);
	return fn(ctx, &it);
}

/* Stream one table row by row (single-row mode: a big store is never held whole). */
static enum scone_err dump_table(struct pg_store *s, enum stmt_id id, dump_row_fn row, scone_store_item_fn fn,
				 void *ctx)
{
	char name[16];
	enum scone_err err = SCONE_ERR_OK;
	PGresult *r;

	snprintf(name, sizeof(name), "s%d", (int)id);
	if (!PQsendQueryPrepared(s->conn, name, 0, NULL, NULL, NULL, 1) || !PQsetSingleRowMode(s->conn))
		return store_pg_err(s, NULL, "dump the store");
	while ((r = PQgetResult(s->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_SINGLE_TUPLE && err == SCONE_ERR_OK)
			err = row(s, r, fn, ctx);
		else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && err == SCONE_ERR_OK)
			err = store_pg_err(s, r, "dump the store");
		PQclear(r);
	}
	return err;
}

struct dump_arg {
	unsigned what;
	scone_store_item_fn fn;
	void *ctx;
};

static enum scone_err dump_once(struct pg_store *s, void *arg)
{
	struct dump_arg *a = arg;
	enum scone_err err =
	    store_pg_exec(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin the dump");

	if (err == SCONE_ERR_OK && (a->what & SCONE_DUMP_SESSIONS))
		err = dump_table(s, P_DUMP_SESSIONS, dump_session_row, a->fn, a->ctx);
	if (err == SCONE_ERR_OK && (a->what & SCONE_DUMP_TAGS))
		err = dump_table(s, P_DUMP_TAGS, dump_tag_row, a->fn, a->ctx);
	if (err == SCONE_ERR_OK && (a->what & SCONE_DUMP_AUDIT))
		err = dump_table(s, P_DUMP_AUDIT, dump_audit_row, a->fn, a->ctx);
	store_pg_abort(s); /* read only: nothing to commit */
	return err;
}

/* Not retried: fn may have seen part of the dump already. */
static enum scone_err pg_dump(struct scone_store *st, unsigned what, scone_store_item_fn fn, void *ctx)
{
	struct pg_store *s = pg(st);
	struct dump_arg a = {what, fn, ctx};

	if (!fn)
		return scone_err_set(SCONE_ERR_INVALID, "store: dump needs a callback");
	SCONE_TRY(store_pg_ready(s));
	return dump_once(s, &a);
}

static enum scone_err load_tag(struct pg_store *s, const struct scone_store_item *it)
{
	struct params p = {0};

	p_text(&p, it->name);
	p_text(&p, it->volume);
	p_bytes(&p, it->tag, it->tag_size);
	return store_pg_run(s, P_LOAD_TAG, &p, "load a volume tag of session", it->name, NULL);
}

static enum scone_err load_audit(struct pg_store *s, const struct scone_audit_row *row)
{
	struct params p = {0};

	p_text(&p, row->chain);
	p_int64(&p, (int64_t)row->seq);
	p_bytes(&p, row->prev, SCONE_STORE_HASH_SIZE);
	p_bytes(&p, row->hash, SCONE_STORE_HASH_SIZE);
	p.v[p.n] = row->line;
	p.len[p.n] = (int)row->line_len;
	p.fmt[p.n++] = 1;
	return store_pg_run(s, P_LOAD_AUDIT, &p, "load an audit entry of chain", row->chain, NULL);
}

static enum scone_err load_item(struct pg_store *s, struct scone_store_load_check *lc,
				const struct scone_store_item *it)
{
	SCONE_TRY(scone_store_check_item(s->sealer, it));
	SCONE_TRY(scone_store_load_check_next(lc, it));
	switch (it->kind) {
	case SCONE_ITEM_SESSION:
		return insert_row(s, P_INSERT, it->name, it->hash, it->creator, it->body, it->body_size,
				  it->secrets, it->secrets_size, it->created, it->updated);
	case SCONE_ITEM_TAG:
		return load_tag(s, it);
	default:
		return load_audit(s, it->audit);
	}
}

static enum scone_err load_all(struct pg_store *s, scone_store_source_fn next, void *ctx)
{
	struct scone_store_load_check lc = {0};
	struct scone_store_item it;
	PGresult *r = NULL;
	int64_t n;
	bool end = false;
	enum scone_err err;

	SCONE_TRY(store_pg_query(s, P_ITEMS, NULL, "count what the store holds", NULL, &r));
	n = col_i64(r, 0, 0);
	PQclear(r);
	if (n != 0)
		return scone_err_set(SCONE_ERR_EXISTS,
				     "store %s is not empty (%lld items): load only into a new store",
				     s->where, (long long)n);
	for (;;) {
		memset(&it, 0, sizeof(it));
		err = next(ctx, &it, &end);
		if (err != SCONE_ERR_OK || end)
			return err;
		SCONE_TRY(load_item(s, &lc, &it));
	}
}

static enum scone_err pg_load(struct scone_store *st, scone_store_source_fn next, void *ctx)
{
	struct pg_store *s = pg(st);
	enum scone_err err;

	if (!next)
		return scone_err_set(SCONE_ERR_INVALID, "store: load needs a source");
	/* Serialise loads: two restores into one new database must not both see it empty. */
	err = store_pg_begin(s, "begin loading");
	if (err == SCONE_ERR_OK)
		err = store_pg_exec(
		    s, "LOCK TABLE scone_sessions, scone_volume_tags, scone_audit IN EXCLUSIVE MODE",
		    "lock the tables for the load");
	if (err == SCONE_ERR_OK)
		err = load_all(s, next, ctx);
	if (err == SCONE_ERR_OK)
		err = store_pg_exec(s, "COMMIT", "commit the load");
	if (err != SCONE_ERR_OK)
		store_pg_abort(s);
	return err;
}

/* ---------------- one-time uses ---------------- */

/* Expired records go first; the primary key makes a second use of key EXISTS, which is CONFLICT here. */
static enum scone_err pg_use_once(struct scone_store *st, const char *scope, const char *key, int64_t expires)
{
	struct pg_store *s = pg(st);
	struct params purge = {0}, ins = {0};
	enum scone_err err;

	SCONE_TRY(scone_store_check_name("use scope", scope, SCONE_STORE_VOLUME_MAX));
	SCONE_TRY(scone_store_check_name("use key", key, SCONE_STORE_VOLUME_MAX));
	p_int64(&purge, (int64_t)time(NULL));
	p_text(&ins, scope);
	p_text(&ins, key);
	p_int64(&ins, expires);
	err = store_pg_begin(s, "begin recording a use");
	if (err == SCONE_ERR_OK)
		err = store_pg_run(s, P_ONCE_PURGE, &purge, "forget expired uses of", scope, NULL);
	if (err == SCONE_ERR_OK)
		err = store_pg_run(s, P_ONCE_INSERT, &ins, "record a use of", scope, NULL);
	if (err == SCONE_ERR_EXISTS)
		err = scone_err_set(SCONE_ERR_CONFLICT, "store: %s %s was used already", scope, key);
	if (err == SCONE_ERR_OK)
		err = store_pg_exec(s, "COMMIT", "commit a use");
	if (err != SCONE_ERR_OK)
		store_pg_abort(s);
	return err;
}

/* ---------------- close ---------------- */

void store_pg_destroy(struct pg_store *s)
{
	for (int i = 0; i < CACHE_SLOTS; i++)
		cached_free(s->cache[i]);
	if (s->conn)
		PQfinish(s->conn);
	scone_store_sealer_free(s->sealer);
	free(s);
}

static void pg_close(struct scone_store *st)
{
	if (st)
		store_pg_destroy(pg(st));
}

const struct scone_store_ops store_pg_ops = {
    .get = pg_get,
    .create = pg_create,
    .update = pg_update,
    .remove = pg_remove,
    .list = pg_list,
    .get_volume_tag = pg_get_volume_tag,
    .put_volume_tag = pg_put_volume_tag,
    .count = pg_count,
    .audit_append = pg_audit_append,
    .audit_head = pg_audit_head,
    .dump = pg_dump,
    .load = pg_load,
    .optimistic = pg_optimistic,
    .use_once = pg_use_once,
    .close = pg_close,
};
