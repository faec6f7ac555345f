/*
 * store_pg.c - the CAS store on PostgreSQL (libpq): one database shared by
 * any number of CAS replicas, each worker of each replica with its own
 * connection (one handle).
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
#include "store.h"

#include <endian.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/crypto.h"

#define SCHEMA_VERSION "1"
#define MAX_PARAMS 8
#define CACHE_SLOTS 256
#define READ_SET_MAX 16

enum stmt_id {
	P_GET,
	P_HEAD,
	P_HASH,
	P_INSERT,
	P_UPDATE,
	P_DELETE,
	P_LIST,
	P_COUNT,
	P_TAG_GET,
	P_TAG_PUT,
	P_LOCK_SESSION,
	P_AUDIT_ADD,
	P_ITEMS,
	P_LOAD_TAG,
	P_LOAD_AUDIT,
	P_DUMP_SESSIONS,
	P_DUMP_TAGS,
	P_DUMP_AUDIT,
	P_BUMP,
	P_AUDIT_CHECKED,
	P_AUDIT_PREV,
	P_AUDIT_HEAD,
	P_NEXT,
	P_COUNT_,
};

static const char *const stmt_sql[P_COUNT_] = {
    [P_GET] = "SELECT s.hash, s.creator, s.body, s.secrets, s.created, s.updated, s.version, t.volume, t.tag "
	      "FROM scone_sessions s LEFT JOIN scone_volume_tags t ON t.session = s.name WHERE s.name = $1 "
	      "ORDER BY t.volume",
    [P_HEAD] = "SELECT hash, creator, body FROM scone_sessions WHERE name = $1 FOR UPDATE",
    [P_HASH] = "SELECT hash FROM scone_sessions WHERE name = $1 FOR UPDATE",
    [P_INSERT] = "INSERT INTO scone_sessions(name, hash, creator, body, secrets, created, updated) "
		 "VALUES($1, $2, $3, $4, $5, $6, $7) RETURNING version",
    [P_UPDATE] = "UPDATE scone_sessions SET hash = $2, body = $3, secrets = $4, updated = $5, "
		 "version = nextval('scone_version') WHERE name = $1 RETURNING version",
    [P_DELETE] = "DELETE FROM scone_sessions WHERE name = $1",
    [P_LIST] = "SELECT name, hash FROM scone_sessions WHERE creator = $1 ORDER BY name",
    [P_COUNT] = "SELECT count(*) FROM scone_sessions",
    [P_TAG_GET] = "SELECT tag FROM scone_volume_tags WHERE session = $1 AND volume = $2",
    [P_TAG_PUT] = "INSERT INTO scone_volume_tags(session, volume, tag) VALUES($1, $2, $3) "
		  "ON CONFLICT (session, volume) DO UPDATE SET tag = excluded.tag",
    [P_LOCK_SESSION] = "SELECT 1 FROM scone_sessions WHERE name = $1 FOR NO KEY UPDATE",
    [P_AUDIT_ADD] = "INSERT INTO scone_audit(chain, seq, prev, hash, line) "
		    "SELECT $1::text, $2::bigint, $3::bytea, $4::bytea, $5::text WHERE ($2::bigint = 1 OR "
		    "EXISTS (SELECT 1 FROM scone_audit WHERE chain = $1::text AND seq = $2::bigint - 1 AND "
		    "hash = $3::bytea)) AND (SELECT last_value FROM scone_version) >= $6::bigint",
    [P_ITEMS] = "SELECT (SELECT count(*) FROM scone_sessions) + (SELECT count(*) FROM scone_volume_tags) + "
		"(SELECT count(*) FROM scone_audit)",
    [P_LOAD_TAG] = "INSERT INTO scone_volume_tags(session, volume, tag) VALUES($1, $2, $3)",
    [P_LOAD_AUDIT] = "INSERT INTO scone_audit(chain, seq, prev, hash, line) VALUES($1, $2, $3, $4, $5)",
    [P_DUMP_SESSIONS] = "SELECT name, hash, creator, body, secrets, created, updated FROM scone_sessions "
			"ORDER BY name",
    [P_DUMP_TAGS] = "SELECT session, volume, tag FROM scone_volume_tags ORDER BY session, volume",
    [P_DUMP_AUDIT] = "SELECT chain, seq, prev, hash, line FROM scone_audit ORDER BY chain, seq",
    [P_BUMP] = "UPDATE scone_sessions SET version = nextval('scone_version') WHERE name = $1 RETURNING version",
    [P_AUDIT_CHECKED] = "INSERT INTO scone_audit(chain, seq, prev, hash, line) "
			"SELECT $1::text, $2::bigint, $3::bytea, $4::bytea, $5::text WHERE ($2::bigint = 1 OR "
			"EXISTS (SELECT 1 FROM scone_audit WHERE chain = $1::text AND seq = $2::bigint - 1 AND "
			"hash = $3::bytea)) AND (SELECT count(*) FROM scone_sessions s, "
			"unnest($6::text[], $7::bigint[]) AS r(n, v) WHERE s.name = r.n COLLATE \"C\" AND "
			"s.version = r.v) = cardinality($6::text[]) AND (SELECT last_value FROM scone_version) >= $8::bigint",
    [P_AUDIT_PREV] = "SELECT (SELECT last_value FROM scone_version) >= $4::bigint, $2::bigint = 1 OR EXISTS (SELECT 1 "
		     "FROM scone_audit WHERE chain = $1::text AND seq = $2::bigint - 1 AND hash = $3::bytea)",
    [P_NEXT] = "SELECT nextval('scone_version')",
    [P_AUDIT_HEAD] = "SELECT seq, hash FROM scone_audit WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
};

static const char schema_sql[] =
    "CREATE TABLE scone_meta(key text COLLATE \"C\" PRIMARY KEY, value bytea NOT NULL);"
    "CREATE SEQUENCE scone_version;"
    "CREATE TABLE scone_sessions(name text COLLATE \"C\" PRIMARY KEY, hash bytea NOT NULL,"
    " creator bytea NOT NULL, body bytea NOT NULL, secrets bytea NOT NULL, created bigint NOT NULL,"
    " updated bigint NOT NULL, version bigint NOT NULL DEFAULT nextval('scone_version'));"
    "CREATE INDEX scone_sessions_by_creator ON scone_sessions(creator, name);"
    "CREATE TABLE scone_volume_tags(session text COLLATE \"C\" NOT NULL REFERENCES scone_sessions(name)"
    " ON DELETE CASCADE, volume text COLLATE \"C\" NOT NULL, tag bytea NOT NULL, PRIMARY KEY(session, volume));"
    "CREATE TABLE scone_audit(chain text COLLATE \"C\" NOT NULL, seq bigint NOT NULL, prev bytea NOT NULL,"
    " hash bytea NOT NULL, line text NOT NULL, PRIMARY KEY(chain, seq));";

/* A record this handle read, with its volume tags, as of version. */
struct cached {
	int64_t version;
	struct scone_session_rec rec; /* owned; wiped when dropped */
	size_t n_tags;
	struct cached_tag {
		char volume[SCONE_STORE_VOLUME_MAX + 1];
		char tag[SCONE_STORE_TAG_HEX + 1];
	} *tags;
};

struct noted {
	char name[SCONE_STORE_NAME_MAX + 1];
	int64_t version;
};

struct pg_store {
	struct scone_store base;
	PGconn *conn;
	char where[200];     /* "host:port/db" for messages (never a password) */
	char durable[24];    /* synchronous_commit for writes: "on" or the server's stricter level */
	struct scone_store_sealer *sealer;
	uint8_t key_check[SCONE_STORE_KEY_CHECK_SIZE];
	bool ready;          /* connection set up and statements prepared */
	bool lost;           /* the last call found the connection broken */
	bool optimistic;     /* reads may come from the cache and go into the read set */
	int64_t seen;        /* the highest version this handle read or committed */
	int64_t pending;     /* the version the open write transaction took */
	struct cached *cache[CACHE_SLOTS];
	struct noted read_set[READ_SET_MAX];
	int n_read;
};

struct params {
	const char *v[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	uint64_t be[MAX_PARAMS];
	int n;
};

static void cache_drop(struct pg_store *s, const char *name);

static struct pg_store *pg(struct scone_store *st)
{
	return (struct pg_store *)st;
}

/* ---------------- parameters and columns ---------------- */

static void p_text(struct params *p, const char *s)
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void p_bytes(struct params *p, const void *b, size_t n)
{
	p->v[p->n] = n ? (const char *)b : "";
	p->len[p->n] = (int)n;
	p->fmt[p->n++] = 1;
}

static void p_int64(struct params *p, int64_t x)
{
	p->be[p->n] = htobe64((uint64_t)x);
	p->v[p->n] = (const char *)&p->be[p->n];
	p->len[p->n] = 8;
	p->fmt[p->n++] = 1;
}

static const uint8_t *col(const PGresult *r, int row, int c, size_t *len)
{
	*len = (size_t)PQgetlength(r, row, c);
	return (const uint8_t *)PQgetvalue(r, row, c);
}

/* A binary int8 column (NULL or another size reads as 0: columns are NOT NULL bigint). */
static int64_t col_i64(const PGresult *r, int row, int c)
{
	uint64_t v = 0;

	if (PQgetlength(r, row, c) == 8)
		memcpy(&v, PQgetvalue(r, row, c), 8);
	return (int64_t)be64toh(v);
}

static enum scone_err col_hash(struct pg_store *s, const PGresult *r, int row, int c, const char *name,
			       const char *what, const uint8_t **out)
{
	size_t n;
	const uint8_t *p = col(r, row, c, &n);

	if (PQgetisnull(r, row, c) || n != SCONE_STORE_HASH_SIZE)
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: session %s: %s is not %d bytes", s->where, name,
				     what, SCONE_STORE_HASH_SIZE);
	*out = p;
	return SCONE_ERR_OK;
}

/* ---------------- errors ---------------- */

static const struct {
	const char *prefix; /* SQLSTATE or its class */
	enum scone_err err;
} sqlstates[] = {
    {"23505", SCONE_ERR_EXISTS},     {"53100", SCONE_ERR_NO_SPACE},   {"53", SCONE_ERR_LIMIT},
    {"40", SCONE_ERR_BUSY},          {"55P03", SCONE_ERR_BUSY},       {"57", SCONE_ERR_BUSY},
    {"08", SCONE_ERR_BUSY},          {"42P01", SCONE_ERR_CORRUPT},    {"42703", SCONE_ERR_CORRUPT},
    {"22021", SCONE_ERR_INVALID},    {"54", SCONE_ERR_TOO_LARGE},     {"42501", SCONE_ERR_PERMISSION},
    {"28", SCONE_ERR_PERMISSION},    {"25006", SCONE_ERR_READ_ONLY},
};

static enum scone_err map_state(const char *state)
{
	for (size_t i = 0; state && i < sizeof(sqlstates) / sizeof(sqlstates[0]); i++)
		if (strncmp(state, sqlstates[i].prefix, strlen(sqlstates[i].prefix)) == 0)
			return sqlstates[i].err;
	return SCONE_ERR_IO;
}

/* The first line of a libpq message (they end in newlines and may have several). */
static void first_line(const char *msg, char *out, size_t size)
{
	size_t n = msg ? strcspn(msg, "\n") : 0;

	if (n >= size)
		n = size - 1;
	memcpy(out, msg ? msg : "", n);
	out[n] = '\0';
}

/*
 * Set detail "store WHERE: WHAT: the server's message (sqlstate S)" and
 * return the mapped error; a broken connection is BUSY and marks the
 * handle for a reset.
 */
static enum scone_err __attribute__((format(printf, 3, 4)))
db_err(struct pg_store *s, const PGresult *r, const char *fmt, ...)
{
	char what[320], msg[300];
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	enum scone_err err = map_state(state);
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(what, sizeof(what), fmt, ap) < 0)
		what[0] = '\0';
	va_end(ap);
	first_line(r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(s->conn), msg,
		   sizeof(msg));
	if (PQstatus(s->conn) != CONNECTION_OK) {
		s->lost = true;
		s->ready = false;
		return scone_err_set(SCONE_ERR_BUSY, "store %s: %s: connection to the database lost (%s); retry",
				     s->where, what, msg);
	}
	return scone_err_set(err, "store %s: %s: %s (sqlstate %s)", s->where, what, msg, state ? state : "none");
}

/* ---------------- running statements ---------------- */

static PGresult *exec_p(struct pg_store *s, enum stmt_id id, const struct params *p)
{
	char name[16];

	snprintf(name, sizeof(name), "s%d", (int)id);
	return PQexecPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL, p ? p->fmt : NULL,
			      1);
}

/* Run a statement that returns no rows (or ignore them); *changed (may be NULL) gets the row count. */
static enum scone_err run(struct pg_store *s, enum stmt_id id, const struct params *p, const char *what,
			  const char *name, long *changed)
{
	PGresult *r = exec_p(s, id, p);
	ExecStatusType st = PQresultStatus(r);
	enum scone_err err = SCONE_ERR_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = db_err(s, r, "%s %s", what, name ? name : "");
	else if (changed)
		*changed = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return err;
}

/* Run a statement expected to return rows; *out is the result (PQclear it) on success. */
static enum scone_err query(struct pg_store *s, enum stmt_id id, const struct params *p, const char *what,
			    const char *name, PGresult **out)
{
	PGresult *r = exec_p(s, id, p);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		enum scone_err err = db_err(s, r, "%s %s", what, name ? name : "");
		PQclear(r);
		return err;
	}
	*out = r;
	return SCONE_ERR_OK;
}

/* Run SQL text (no parameters), e.g. BEGIN; the last command's status decides. */
static enum scone_err exec_sql(struct pg_store *s, const char *sql, const char *what)
{
	PGresult *r = PQexec(s->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	enum scone_err err = SCONE_ERR_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = db_err(s, r, "%s", what);
	PQclear(r);
	return err;
}

/* Run a statement that returns one bigint (a version): it goes to *v (kept if no row). */
static enum scone_err run_version(struct pg_store *s, enum stmt_id id, const struct params *p, const char *what,
				  const char *name, int64_t *v)
{
	PGresult *r = NULL;

	SCONE_TRY(query(s, id, p, what, name, &r));
	if (PQntuples(r) == 1)
		*v = col_i64(r, 0, 0);
	PQclear(r);
	return SCONE_ERR_OK;
}

static void saw(struct pg_store *s, int64_t version)
{
	if (version > s->seen)
		s->seen = version;
}

/* ---------------- the connection ---------------- */

static void no_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* The server's synchronous_commit, raised to "on" where it is weaker: what durable writes use. */
static enum scone_err read_durable_level(struct pg_store *s)
{
	PGresult *r = PQexec(s->conn, "SHOW synchronous_commit");
	enum scone_err err = SCONE_ERR_OK;
	const char *v;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		err = db_err(s, r, "read synchronous_commit");
	} else {
		v = PQgetvalue(r, 0, 0);
		if (strcmp(v, "remote_write") == 0 || strcmp(v, "remote_apply") == 0)
			snprintf(s->durable, sizeof(s->durable), "%s", v);
		else
			snprintf(s->durable, sizeof(s->durable), "on");
	}
	PQclear(r);
	return err;
}

static enum scone_err prepare_all(struct pg_store *s)
{
	char name[16];

	for (int i = 0; i < P_COUNT_; i++) {
		PGresult *r;
		snprintf(name, sizeof(name), "s%d", i);
		r = PQprepare(s->conn, name, stmt_sql[i], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			enum scone_err err = db_err(s, r, "prepare statements");
			PQclear(r);
			if (err == SCONE_ERR_CORRUPT || err == SCONE_ERR_IO)
				return scone_err_set(SCONE_ERR_CORRUPT, "store %s: tables do not match the schema: %s",
						     s->where, scone_err_detail());
			return err;
		}
		PQclear(r);
	}
	return SCONE_ERR_OK;
}

/* Session settings, then the statements: after connecting and after every reset. */
static enum scone_err conn_setup(struct pg_store *s, bool prepare)
{
	SCONE_TRY(read_durable_level(s));
	SCONE_TRY(exec_sql(s,
			   "SET synchronous_commit TO off; SET default_transaction_isolation TO 'read committed';"
			   " SET client_min_messages TO warning; SET plan_cache_mode TO force_generic_plan",
			   "configure the connection"));
	if (prepare)
		SCONE_TRY(prepare_all(s));
	s->ready = true;
	s->lost = false;
	return SCONE_ERR_OK;
}

/* Before every call: a connection found broken is reset and set up again. */
static enum scone_err conn_ready(struct pg_store *s)
{
	char msg[300];

	if (s->ready && PQstatus(s->conn) == CONNECTION_OK)
		return SCONE_ERR_OK;
	s->ready = false;
	PQreset(s->conn);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		first_line(PQerrorMessage(s->conn), msg, sizeof(msg));
		s->lost = true;
		return scone_err_set(SCONE_ERR_BUSY, "store %s: cannot reach the database (%s); retry", s->where, msg);
	}
	PQsetNoticeProcessor(s->conn, no_notices, NULL);
	return conn_setup(s, true);
}

/* A read, retried once if it found the connection lost (reads change nothing). */
typedef enum scone_err (*read_fn)(struct pg_store *s, void *arg);

static enum scone_err with_retry(struct pg_store *s, read_fn fn, void *arg)
{
	enum scone_err err = SCONE_ERR_OK;

	for (int attempt = 0; attempt < 2; attempt++) {
		s->lost = false;
		err = conn_ready(s);
		if (err == SCONE_ERR_OK)
			err = fn(s, arg);
		if (err != SCONE_ERR_BUSY || !s->lost)
			break;
	}
	return err;
}

/* ---------------- transactions ---------------- */

static enum scone_err txn_begin(struct pg_store *s, const char *what)
{
	char sql[96];

	SCONE_TRY(conn_ready(s));
	snprintf(sql, sizeof(sql), "BEGIN; SET LOCAL synchronous_commit TO %s", s->durable);
	return exec_sql(s, sql, what);
}

static void txn_abort(struct pg_store *s)
{
	if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		PQclear(PQexec(s->conn, "ROLLBACK"));
}

/* The read set as array literals {"name",...} and {version,...} (names have no control characters). */
static enum scone_err read_set_arrays(const struct pg_store *s, struct scone_wbuf *names, struct scone_wbuf *versions)
{
	char num[24];

	SCONE_TRY(scone_wbuf_u8(names, '{'));
	SCONE_TRY(scone_wbuf_u8(versions, '{'));
	for (int i = 0; i < s->n_read; i++) {
		SCONE_TRY(scone_wbuf_put(names, i ? ",\"" : "\"", i ? 2 : 1));
		for (const char *c = s->read_set[i].name; *c; c++) {
			if (*c == '"' || *c == '\\')
				SCONE_TRY(scone_wbuf_u8(names, '\\'));
			SCONE_TRY(scone_wbuf_u8(names, (uint8_t)*c));
		}
		SCONE_TRY(scone_wbuf_u8(names, '"'));
		snprintf(num, sizeof(num), "%s%lld", i ? "," : "", (long long)s->read_set[i].version);
		SCONE_TRY(scone_wbuf_put(versions, num, strlen(num)));
	}
	SCONE_TRY(scone_wbuf_put(names, "}", 2)); /* with the NUL: text parameters */
	return scone_wbuf_put(versions, "}", 2);
}

/* Not inserted: is the chain's previous entry gone (ROLLBACK), or did a record read change (STALE)? */
/* Not inserted: the counter went back (ROLLBACK), the chain's previous entry is gone (MISSING), or a read changed (STALE). */
static enum scone_err why_not(struct pg_store *s, const struct scone_audit_row *row, bool checked)
{
	struct params p = {0};
	PGresult *r = NULL;
	bool counter_ok, prev_ok;

	p_text(&p, row->chain);
	p_int64(&p, (int64_t)row->seq);
	p_bytes(&p, row->prev, SCONE_STORE_HASH_SIZE);
	p_int64(&p, s->seen);
	SCONE_TRY(query(s, P_AUDIT_PREV, &p, "look for the previous audit entry of chain", row->chain, &r));
	counter_ok = PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 1 && PQgetvalue(r, 0, 0)[0];
	prev_ok = PQntuples(r) == 1 && PQgetlength(r, 0, 1) == 1 && PQgetvalue(r, 0, 1)[0];
	PQclear(r);
	if (!counter_ok)
		return scone_err_set(SCONE_ERR_ROLLBACK,
				     "store %s: the store's change counter is below version %lld, which this CAS saw: the "
				     "store was rolled back",
				     s->where, (long long)s->seen);
	if (!prev_ok)
		return scone_err_set(SCONE_ERR_MISSING,
				     "store %s: audit chain %s: entry %llu, written before, is gone or altered",
				     s->where, row->chain, (unsigned long long)(row->seq - 1));
	if (checked) {
		for (int i = 0; i < s->n_read; i++)
			cache_drop(s, s->read_set[i].name);
		return scone_err_set(SCONE_ERR_STALE, "store %s: a session read for this entry changed meanwhile",
				     s->where);
	}
	return scone_err_set(SCONE_ERR_IO, "store %s: audit entry %llu of chain %s was not inserted", s->where,
			     (unsigned long long)row->seq, row->chain);
}

/*
 * Append row if its predecessor is there (in a transaction or on its own)
 * and, with a read set, if every record read is still at its version.
 */
static enum scone_err audit_insert(struct pg_store *s, const struct scone_audit_row *row)
{
	struct params p = {0};
	struct scone_wbuf names, versions;
	bool checked = s->n_read > 0;
	long changed = 0;
	enum scone_err err = SCONE_ERR_OK;

	p_text(&p, row->chain);
	p_int64(&p, (int64_t)row->seq);
	p_bytes(&p, row->prev, SCONE_STORE_HASH_SIZE);
	p_bytes(&p, row->hash, SCONE_STORE_HASH_SIZE);
	p.v[p.n] = row->line; /* text, binary format: the bytes as they are, no NUL needed */
	p.len[p.n] = (int)row->line_len;
	p.fmt[p.n++] = 1;
	scone_wbuf_init(&names, 64 * 1024, 0);
	scone_wbuf_init(&versions, 4096, 0);
	if (checked) {
		err = read_set_arrays(s, &names, &versions);
		p_text(&p, (const char *)names.data);
		p_text(&p, (const char *)versions.data);
	}
	p_int64(&p, s->seen);
	if (err == SCONE_ERR_OK)
		err = run(s, checked ? P_AUDIT_CHECKED : P_AUDIT_ADD, &p, "append an audit entry of chain", row->chain,
			  &changed);
	if (err == SCONE_ERR_EXISTS)
		err = scone_err_set(SCONE_ERR_CONFLICT,
				    "store %s: audit chain %s already has entry %llu (another writer uses this chain)",
				    s->where, row->chain, (unsigned long long)row->seq);
	else if (err == SCONE_ERR_OK && changed == 0)
		err = why_not(s, row, checked);
	scone_wbuf_free(&names);
	scone_wbuf_free(&versions);
	return err;
}

struct txn {
	struct scone_store_change ch;
	struct scone_audit_row row;
	bool have;
};

static enum scone_err txn_start(struct pg_store *s, struct txn *t, const char *what)
{
	memset(t, 0, sizeof(*t));
	s->pending = 0;
	return txn_begin(s, what);
}

/* The audit entry (with a hook), then COMMIT; or ROLLBACK on any error. */
static enum scone_err txn_finish(struct pg_store *s, struct txn *t, enum scone_err err, const char *what)
{
	if (err == SCONE_ERR_OK)
		err = scone_store_audit_entry(&s->base, &t->ch, &t->row, &t->have);
	if (err == SCONE_ERR_OK && t->have)
		err = audit_insert(s, &t->row);
	if (err == SCONE_ERR_OK)
		err = exec_sql(s, "COMMIT", what);
	if (err != SCONE_ERR_OK)
		txn_abort(s);
	else
		saw(s, s->pending); /* committed durably: the counter can no longer go below it */
	scone_store_audit_settle(&s->base, &t->row, t->have, err);
	return err;
}

/* ---------------- sealing ---------------- */

struct sealed_rec {
	uint8_t *body, *secrets;
	size_t body_size, secrets_size;
};

static void sealed_free(struct sealed_rec *b)
{
	free(b->body);
	free(b->secrets);
	memset(b, 0, sizeof(*b));
}

static enum scone_err seal_rec(struct pg_store *s, const struct scone_session_rec *rec, const uint8_t *creator,
			       struct sealed_rec *out)
{
	struct scone_store_place pl;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	scone_store_session_place(&pl, "sessions.body", rec->name, rec->hash, creator);
	err = scone_store_seal(s->sealer, &pl, rec->body, rec->body_len, &out->body, &out->body_size);
	if (err == SCONE_ERR_OK) {
		pl.column = "sessions.secrets";
		err = scone_store_seal(s->sealer, &pl, rec->secrets, rec->secrets_len, &out->secrets,
				       &out->secrets_size);
	}
	if (err != SCONE_ERR_OK)
		sealed_free(out);
	return err;
}

static enum scone_err unseal_col(struct pg_store *s, const PGresult *r, int c, const struct scone_store_place *pl,
				 uint8_t **out, size_t *out_size)
{
	size_t n;
	const uint8_t *blob = col(r, 0, c, &n);
	enum scone_err err = scone_store_unseal(s->sealer, pl, blob, n, out, out_size);

	if (err == SCONE_ERR_AUTH)
		return scone_err_set(SCONE_ERR_CORRUPT,
				     "store %s: %s of %s%s%s does not unseal (damaged, tampered with or moved from "
				     "another row)",
				     s->where, pl->column, pl->key, pl->key2 ? "/" : "", pl->key2 ? pl->key2 : "");
	return err;
}

static int64_t now_or(int64_t t)
{
	return t ? t : (int64_t)time(NULL);
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

static void cache_drop(struct pg_store *s, const char *name)
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
		if (err == SCONE_ERR_OK && (plain_size != SCONE_STORE_TAG_HEX ||
					    scone_store_norm_tag("stored tag", (const char *)plain, false, t->tag)))
			err = SCONE_ERR_AUTH;
		free(plain);
		if (err != SCONE_ERR_OK)
			return scone_err_set(SCONE_ERR_CORRUPT, "store %s: volume tag of %s/%s does not unseal (damaged, "
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

	SCONE_TRY(col_hash(s, r, 0, 0, name, "hash", &hash));
	SCONE_TRY(col_hash(s, r, 0, 1, name, "creator", &creator));
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
	SCONE_TRY(query(s, P_GET, &p, "read session", a->name, &r));
	cache_drop(s, a->name);
	if (PQntuples(r) == 0)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store: no session named %s", a->name);
	else if (!(c = calloc(1, sizeof(*c))))
		err = scone_err_set(SCONE_ERR_NOMEM, "store: no memory for the read cache");
	else
		err = read_row(s, r, a->name, &c->rec);
	if (err == SCONE_ERR_OK) {
		c->version = col_i64(r, 0, 6);
		saw(s, c->version);
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
	return with_retry(s, get_once, &a);
}

/* ---------------- create / update / remove ---------------- */

static enum scone_err insert_row(struct pg_store *s, enum stmt_id id, const char *name, const uint8_t *hash,
				 const uint8_t *creator, const uint8_t *body, size_t body_size,
				 const uint8_t *secrets, size_t secrets_size, int64_t created, int64_t updated)
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
	err = run_version(s, id, &p, "insert session", name, &s->pending);
	if (err == SCONE_ERR_EXISTS)
		return scone_err_set(SCONE_ERR_EXISTS, "store: a session named %s already exists", name);
	return err;
}

static enum scone_err pg_create(struct scone_store *st, const struct scone_session_rec *rec)
{
	struct pg_store *s = pg(st);
	struct sealed_rec b;
	struct txn t;
	int64_t created = now_or(rec->created);
	enum scone_err err;

	SCONE_TRY(scone_store_check_rec(rec));
	SCONE_TRY(seal_rec(s, rec, rec->creator, &b));
	err = txn_start(s, &t, "begin creating a session");
	if (err == SCONE_ERR_OK)
		err = insert_row(s, P_INSERT, rec->name, rec->hash, rec->creator, b.body, b.body_size, b.secrets,
				 b.secrets_size, created, rec->updated ? rec->updated : created);
	t.ch = (struct scone_store_change){.kind = SCONE_STORE_CREATE, .session = rec->name, .hash = rec->hash};
	err = txn_finish(s, &t, err, "commit creating a session");
	sealed_free(&b);
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
	SCONE_TRY(query(s, creator ? P_HEAD : P_HASH, &p, "read session", name, &r));
	if (PQntuples(r) == 0) {
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store: no session named %s", name);
		goto out;
	}
	err = col_hash(s, r, 0, 0, name, "hash", &hash);
	if (err == SCONE_ERR_OK && expected && !scone_ct_equal(hash, expected, SCONE_STORE_HASH_SIZE))
		err = scone_err_set(SCONE_ERR_CONFLICT,
				    "store: session %s has changed (its hash is not the expected predecessor)", name);
	if (err != SCONE_ERR_OK || !creator)
		goto out;
	err = col_hash(s, r, 0, 1, name, "creator", &cr);
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

static enum scone_err update_row(struct pg_store *s, const struct scone_session_rec *rec, const struct sealed_rec *b)
{
	struct params p = {0};

	p_text(&p, rec->name);
	p_bytes(&p, rec->hash, SCONE_STORE_HASH_SIZE);
	p_bytes(&p, b->body, b->body_size);
	p_bytes(&p, b->secrets, b->secrets_size);
	p_int64(&p, now_or(rec->updated));
	return run_version(s, P_UPDATE, &p, "update session", rec->name, &s->pending);
}

static enum scone_err pg_update(struct scone_store *st, const struct scone_session_rec *rec,
				const uint8_t expected[SCONE_STORE_HASH_SIZE])
{
	struct pg_store *s = pg(st);
	uint8_t creator[SCONE_STORE_HASH_SIZE];
	struct sealed_rec b = {0};
	struct txn t;
	enum scone_err err;

	SCONE_TRY(scone_store_check_rec(rec));
	if (!expected)
		return scone_err_set(SCONE_ERR_INVALID, "store: update of %s without an expected hash", rec->name);
	err = txn_start(s, &t, "begin updating a session");
	if (err == SCONE_ERR_OK)
		err = check_current(s, rec->name, expected, creator);
	if (err == SCONE_ERR_OK)
		err = seal_rec(s, rec, creator, &b);
	if (err == SCONE_ERR_OK)
		err = update_row(s, rec, &b);
	t.ch = (struct scone_store_change){
	    .kind = SCONE_STORE_UPDATE, .session = rec->name, .hash = rec->hash, .previous = expected};
	err = txn_finish(s, &t, err, "commit updating a session");
	sealed_free(&b);
	cache_drop(s, rec->name);
	return err;
}

static enum scone_err pg_remove(struct scone_store *st, const char *name, const uint8_t expected[SCONE_STORE_HASH_SIZE])
{
	struct pg_store *s = pg(st);
	struct params p = {0};
	struct txn t;
	enum scone_err err;

	SCONE_TRY(scone_store_check_name("session name", name, SCONE_STORE_NAME_MAX));
	if (!expected)
		return scone_err_set(SCONE_ERR_INVALID, "store: removal of %s without an expected hash", name);
	err = txn_start(s, &t, "begin removing a session");
	if (err == SCONE_ERR_OK)
		err = check_current(s, name, expected, NULL);
	p_text(&p, name);
	if (err == SCONE_ERR_OK) /* its volume tags go with it (ON DELETE CASCADE) */
		err = run(s, P_DELETE, &p, "delete session", name, NULL);
	if (err == SCONE_ERR_OK) /* a deletion is a change too: the counter moves on */
		err = run_version(s, P_NEXT, NULL, "advance the change counter for", name, &s->pending);
	t.ch = (struct scone_store_change){.kind = SCONE_STORE_REMOVE, .session = name, .hash = expected};
	cache_drop(s, name);
	return txn_finish(s, &t, err, "commit removing a session");
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
	SCONE_TRY(query(s, P_LIST, &p, "list sessions", NULL, &r));
	for (int i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 0);
		const uint8_t *hash = NULL;
		err = col_hash(s, r, i, 1, name, "hash", &hash);
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
	return with_retry(pg(st), list_once, &a);
}

static enum scone_err count_once(struct pg_store *s, void *arg)
{
	PGresult *r = NULL;

	SCONE_TRY(query(s, P_COUNT, NULL, "count sessions", NULL, &r));
	*(uint64_t *)arg = PQntuples(r) == 1 ? (uint64_t)col_i64(r, 0, 0) : 0;
	PQclear(r);
	return SCONE_ERR_OK;
}

static enum scone_err pg_count(struct scone_store *st, uint64_t *out)
{
	return with_retry(pg(st), count_once, out);
}

/* ---------------- volume tags ---------------- */

static enum scone_err check_tag_args(const char *session, const char *volume)
{
	SCONE_TRY(scone_store_check_name("session name", session, SCONE_STORE_NAME_MAX));
	return scone_store_check_name("volume name", volume, SCONE_STORE_VOLUME_MAX);
}

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
	SCONE_TRY(query(s, P_TAG_GET, &p, "read the volume tag of session", a->session, &r));
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
static enum scone_err cached_tag(struct pg_store *s, const char *session, const char *volume, char tag_hex[65])
{
	struct get_arg a = {session, NULL};
	struct cached *c = cache_find(s, session);
	enum scone_err err = SCONE_ERR_OK;

	if (!c) {
		err = with_retry(s, get_once, &a);
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
	SCONE_TRY(check_tag_args(session, volume));
	if (s->optimistic)
		return cached_tag(s, session, volume, tag_hex);
	return with_retry(s, read_tag, &a);
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
	err = run(s, P_TAG_PUT, &p, "write the volume tag of session", session, NULL);
	free(blob);
	if (err == SCONE_ERR_OK) { /* the session's tags changed: so did its version */
		struct params b = {0};
		p_text(&b, session);
		err = run_version(s, P_BUMP, &b, "renew the version of session", session, &s->pending);
	}
	return err;
}

/* Inside a transaction: lock the session row (serialising its tag updates), compare, write. */
static enum scone_err swap_tag(struct pg_store *s, const char *session, const char *volume, const char *expected,
			       const char *tag)
{
	char cur[SCONE_STORE_TAG_HEX + 1];
	struct tag_arg a = {session, volume, cur};
	struct params p = {0};
	PGresult *r = NULL;
	int rows;

	p_text(&p, session);
	SCONE_TRY(query(s, P_LOCK_SESSION, &p, "lock session", session, &r));
	rows = PQntuples(r);
	PQclear(r);
	if (rows == 0)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "store: no session named %s", session);
	SCONE_TRY(read_tag(s, &a));
	if (strcmp(cur, expected) != 0)
		return scone_err_set(SCONE_ERR_CONFLICT, "store: volume tag of %s/%s is not the expected one (%s)",
				     session, volume, cur[0] ? "it changed" : "it is not initialised yet");
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

	SCONE_TRY(check_tag_args(session, volume));
	SCONE_TRY(scone_store_norm_tag("expected volume tag", expected_hex, true, expected));
	SCONE_TRY(scone_store_norm_tag("volume tag", tag_hex, false, tag));
	err = txn_start(s, &t, "begin setting a volume tag");
	if (err == SCONE_ERR_OK)
		err = swap_tag(s, session, volume, expected, tag);
	t.ch = (struct scone_store_change){
	    .kind = SCONE_STORE_TAG, .session = session, .volume = volume, .previous_tag = expected, .tag = tag};
	cache_drop(s, session);
	return txn_finish(s, &t, err, "commit a volume tag");
}

/* ---------------- audit, dump, load ---------------- */

static enum scone_err pg_audit_append(struct scone_store *st, const struct scone_audit_row *row, bool durable)
{
	struct pg_store *s = pg(st);
	enum scone_err err = scone_store_check_audit_row(row);

	if (err == SCONE_ERR_OK && !durable) { /* one autocommit statement, synchronous_commit = off */
		err = conn_ready(s);
		if (err == SCONE_ERR_OK)
			err = audit_insert(s, row);
	} else if (err == SCONE_ERR_OK) {
		err = txn_begin(s, "begin appending an audit entry");
		if (err == SCONE_ERR_OK)
			err = audit_insert(s, row);
		if (err == SCONE_ERR_OK)
			err = exec_sql(s, "COMMIT", "commit an audit entry");
		if (err != SCONE_ERR_OK)
			txn_abort(s);
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
	SCONE_TRY(query(s, P_AUDIT_HEAD, &p, "read the head of audit chain", a->chain, &r));
	if (PQntuples(r) == 0)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store %s: no audit chain %s", s->where, a->chain);
	else if ((err = col_hash(s, r, 0, 1, a->chain, "audit hash", &h)) == SCONE_ERR_OK) {
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

	return with_retry(pg(st), head_once, &a);
}

static void pg_optimistic(struct scone_store *st, bool on)
{
	struct pg_store *s = pg(st);

	s->optimistic = on;
	s->n_read = 0;
}

typedef enum scone_err (*dump_row_fn)(struct pg_store *s, const PGresult *r, scone_store_item_fn fn, void *ctx);

static enum scone_err dump_session_row(struct pg_store *s, const PGresult *r, scone_store_item_fn fn, void *ctx)
{
	struct scone_store_item it = {.kind = SCONE_ITEM_SESSION};

	it.name = PQgetvalue(r, 0, 0);
	SCONE_TRY(col_hash(s, r, 0, 1, it.name, "hash", &it.hash));
	SCONE_TRY(col_hash(s, r, 0, 2, it.name, "creator", &it.creator));
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

	if (strlen(chain) > SCONE_AUDIT_CHAIN_MAX || col_hash(s, r, 0, 2, chain, "audit prev", &prev) != SCONE_ERR_OK ||
	    col_hash(s, r, 0, 3, chain, "audit hash", &hash) != SCONE_ERR_OK)
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: a damaged audit entry in chain %.64s", s->where,
				     chain);
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
		return db_err(s, NULL, "dump the store");
	while ((r = PQgetResult(s->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_SINGLE_TUPLE && err == SCONE_ERR_OK)
			err = row(s, r, fn, ctx);
		else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && err == SCONE_ERR_OK)
			err = db_err(s, r, "dump the store");
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
	enum scone_err err = exec_sql(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "begin the dump");

	if (err == SCONE_ERR_OK && (a->what & SCONE_DUMP_SESSIONS))
		err = dump_table(s, P_DUMP_SESSIONS, dump_session_row, a->fn, a->ctx);
	if (err == SCONE_ERR_OK && (a->what & SCONE_DUMP_TAGS))
		err = dump_table(s, P_DUMP_TAGS, dump_tag_row, a->fn, a->ctx);
	if (err == SCONE_ERR_OK && (a->what & SCONE_DUMP_AUDIT))
		err = dump_table(s, P_DUMP_AUDIT, dump_audit_row, a->fn, a->ctx);
	txn_abort(s); /* read only: nothing to commit */
	return err;
}

/* Not retried: fn may have seen part of the dump already. */
static enum scone_err pg_dump(struct scone_store *st, unsigned what, scone_store_item_fn fn, void *ctx)
{
	struct pg_store *s = pg(st);
	struct dump_arg a = {what, fn, ctx};

	if (!fn)
		return scone_err_set(SCONE_ERR_INVALID, "store: dump needs a callback");
	SCONE_TRY(conn_ready(s));
	return dump_once(s, &a);
}

static enum scone_err load_tag(struct pg_store *s, const struct scone_store_item *it)
{
	struct params p = {0};

	p_text(&p, it->name);
	p_text(&p, it->volume);
	p_bytes(&p, it->tag, it->tag_size);
	return run(s, P_LOAD_TAG, &p, "load a volume tag of session", it->name, NULL);
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
	return run(s, P_LOAD_AUDIT, &p, "load an audit entry of chain", row->chain, NULL);
}

static enum scone_err load_item(struct pg_store *s, struct scone_store_load_check *lc, const struct scone_store_item *it)
{
	SCONE_TRY(scone_store_check_item(s->sealer, it));
	SCONE_TRY(scone_store_load_check_next(lc, it));
	switch (it->kind) {
	case SCONE_ITEM_SESSION:
		return insert_row(s, P_INSERT, it->name, it->hash, it->creator, it->body, it->body_size, it->secrets,
				  it->secrets_size, it->created, it->updated);
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

	SCONE_TRY(query(s, P_ITEMS, NULL, "count what the store holds", NULL, &r));
	n = col_i64(r, 0, 0);
	PQclear(r);
	if (n != 0)
		return scone_err_set(SCONE_ERR_EXISTS, "store %s is not empty (%lld items): load only into a new store",
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
	err = txn_begin(s, "begin loading");
	if (err == SCONE_ERR_OK)
		err = exec_sql(s, "LOCK TABLE scone_sessions, scone_volume_tags, scone_audit IN EXCLUSIVE MODE",
			       "lock the tables for the load");
	if (err == SCONE_ERR_OK)
		err = load_all(s, next, ctx);
	if (err == SCONE_ERR_OK)
		err = exec_sql(s, "COMMIT", "commit the load");
	if (err != SCONE_ERR_OK)
		txn_abort(s);
	return err;
}

/* ---------------- open / close ---------------- */

static void pg_destroy(struct pg_store *s)
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
		pg_destroy(pg(st));
}

static const struct scone_store_ops pg_ops = {
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
    .close = pg_close,
};

/* Run one parameterless query and keep its result (PQclear it). */
static enum scone_err query_sql(struct pg_store *s, const char *sql, const char *what, PGresult **out)
{
	PGresult *r = PQexecParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 1);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		enum scone_err err = db_err(s, r, "%s", what);
		PQclear(r);
		return err;
	}
	*out = r;
	return SCONE_ERR_OK;
}

static enum scone_err has_schema(struct pg_store *s, bool *out)
{
	PGresult *r = NULL;

	/* From pg_tables, not to_regclass: a catalog cache could still remember the table's absence. */
	SCONE_TRY(query_sql(s,
			    "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
			    "AND tablename = 'scone_meta')",
			    "look for the schema", &r));
	*out = PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 1 && PQgetvalue(r, 0, 0)[0] == 1;
	PQclear(r);
	return SCONE_ERR_OK;
}

static enum scone_err write_meta(struct pg_store *s)
{
	const struct scone_store_place pl = {.column = "meta.canary"};
	const char *v[2];
	int len[2], fmt[2] = {1, 1};
	uint8_t *blob = NULL;
	size_t size = 0;
	PGresult *r;
	enum scone_err err = SCONE_ERR_OK;

	SCONE_TRY(scone_store_seal(s->sealer, &pl, SCONE_STORE_CANARY, sizeof(SCONE_STORE_CANARY) - 1, &blob, &size));
	v[0] = (const char *)blob;
	len[0] = (int)size;
	v[1] = (const char *)s->key_check;
	len[1] = SCONE_STORE_KEY_CHECK_SIZE;
	r = PQexecParams(s->conn,
			 "INSERT INTO scone_meta(key, value) VALUES('schema', convert_to('" SCHEMA_VERSION "', 'UTF8')),"
			 " ('canary', $1::bytea), ('key_check', $2::bytea)",
			 2, NULL, v, len, fmt, 1);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		err = db_err(s, r, "write the store's meta data");
	PQclear(r);
	free(blob);
	return err;
}

/* An empty database: the schema, once, whoever else starts at the same moment. */
static enum scone_err schema_create(struct pg_store *s)
{
	bool exists = false;
	enum scone_err err;

	SCONE_TRY(exec_sql(s, "BEGIN; SET LOCAL synchronous_commit TO on;"
			      " SELECT pg_advisory_xact_lock(7204311902446187118)",
			   "begin creating the schema"));
	err = has_schema(s, &exists);
	if (err == SCONE_ERR_OK && !exists) {
		err = exec_sql(s, schema_sql, "create the schema");
		if (err == SCONE_ERR_OK)
			err = write_meta(s);
	}
	if (err == SCONE_ERR_OK)
		err = exec_sql(s, "COMMIT", "commit the schema");
	if (err != SCONE_ERR_OK)
		txn_abort(s);
	return err;
}

/* meta[key] into *out (PQclear it); NOT_FOUND if absent. */
static enum scone_err read_meta(struct pg_store *s, const char *key, PGresult **out)
{
	const char *v[1] = {key};
	PGresult *r = PQexecParams(s->conn, "SELECT value FROM scone_meta WHERE key = $1", 1, NULL, v, NULL, NULL, 1);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		enum scone_err err = db_err(s, r, "read the store's %s", key);
		PQclear(r);
		return err == SCONE_ERR_IO ? scone_err_set(SCONE_ERR_CORRUPT, "%s", scone_err_detail()) : err;
	}
	if (PQntuples(r) != 1) {
		PQclear(r);
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: the %s is missing from scone_meta", s->where, key);
	}
	*out = r;
	return SCONE_ERR_OK;
}

static enum scone_err schema_check(struct pg_store *s)
{
	PGresult *r = NULL;
	char v[16];
	size_t n;

	SCONE_TRY(read_meta(s, "schema", &r));
	n = (size_t)PQgetlength(r, 0, 0);
	snprintf(v, sizeof(v), "%.*s", (int)(n < sizeof(v) ? n : sizeof(v) - 1), PQgetvalue(r, 0, 0));
	PQclear(r);
	if (strcmp(v, SCHEMA_VERSION) == 0)
		return SCONE_ERR_OK;
	if (strtol(v, NULL, 10) > strtol(SCHEMA_VERSION, NULL, 10))
		return scone_err_set(SCONE_ERR_UNSUPPORTED,
				     "store %s: schema version %s is newer than this scone supports (%s)", s->where, v,
				     SCHEMA_VERSION);
	return scone_err_set(SCONE_ERR_CORRUPT, "store %s: unknown schema version %s", s->where, v);
}

/* The key check value answers AUTH for a wrong key; the canary then proves the sealing works. */
static enum scone_err key_check(struct pg_store *s)
{
	const struct scone_store_place pl = {.column = "meta.canary"};
	PGresult *r = NULL;
	uint8_t *plain = NULL;
	size_t size = 0;
	enum scone_err err;

	SCONE_TRY(read_meta(s, "key_check", &r));
	err = PQgetlength(r, 0, 0) == SCONE_STORE_KEY_CHECK_SIZE &&
		      scone_ct_equal(PQgetvalue(r, 0, 0), s->key_check, SCONE_STORE_KEY_CHECK_SIZE)
		  ? SCONE_ERR_OK
		  : scone_err_set(SCONE_ERR_AUTH, "store %s: master key does not match this store", s->where);
	PQclear(r);
	SCONE_TRY(err);
	SCONE_TRY(read_meta(s, "canary", &r));
	err = scone_store_unseal(s->sealer, &pl, (const uint8_t *)PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0),
				 &plain, &size);
	PQclear(r);
	if (err == SCONE_ERR_AUTH)
		return scone_err_set(SCONE_ERR_CORRUPT,
				     "store %s: the key canary does not unseal although the key check matches", s->where);
	if (err == SCONE_ERR_OK && (size != sizeof(SCONE_STORE_CANARY) - 1 || memcmp(plain, SCONE_STORE_CANARY, size)))
		err = scone_err_set(SCONE_ERR_CORRUPT, "store %s: the key canary holds the wrong text", s->where);
	free(plain);
	return err;
}

/* libpq defaults for a CAS, placed before the URI so that the URI's own settings win. */
static PGconn *connect_db(const char *conninfo)
{
	const char *const keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval", "keepalives_count",
				    "application_name", "dbname", NULL};
	const char *const vals[] = {"5", "30", "10", "3", "scone-cas", conninfo, NULL};

	return PQconnectdbParams(keys, vals, 1);
}

static enum scone_err open_checked(struct pg_store *s, const char *conninfo, unsigned flags)
{
	char msg[300];
	bool exists = false;

	s->conn = connect_db(conninfo);
	if (!s->conn)
		return scone_err_set(SCONE_ERR_NOMEM, "store: no memory for a database connection");
	if (PQstatus(s->conn) != CONNECTION_OK) {
		first_line(PQerrorMessage(s->conn), msg, sizeof(msg));
		return scone_err_set(SCONE_ERR_NETWORK, "store: cannot connect to the database: %s", msg);
	}
	PQsetNoticeProcessor(s->conn, no_notices, NULL);
	snprintf(s->where, sizeof(s->where), "postgres %s:%s/%s", PQhost(s->conn), PQport(s->conn), PQdb(s->conn));
	SCONE_TRY(conn_setup(s, false));
	SCONE_TRY(has_schema(s, &exists));
	if (!exists && (flags & SCONE_STORE_OPEN_EXISTING))
		return scone_err_set(SCONE_ERR_NOT_FOUND, "store %s has no scone tables: it was never created",
				     s->where);
	if (!exists)
		SCONE_TRY(schema_create(s));
	SCONE_TRY(schema_check(s));
	SCONE_TRY(key_check(s));
	return prepare_all(s);
}

enum scone_err scone_store_open_pg(const char *conninfo, const uint8_t master_key[32], unsigned flags,
				   struct scone_store **out)
{
	struct pg_store *s;
	enum scone_err err;

	if (!conninfo || !*conninfo || !master_key || !out)
		return scone_err_set(SCONE_ERR_INVALID, "store: open needs a database URL, a master key and an out pointer");
	s = calloc(1, sizeof(*s));
	if (!s)
		return scone_err_set(SCONE_ERR_NOMEM, "store: no memory for a handle");
	s->base.ops = &pg_ops;
	snprintf(s->where, sizeof(s->where), "postgres");
	err = scone_store_sealer_new(master_key, &s->sealer);
	if (err == SCONE_ERR_OK)
		err = scone_store_key_check(master_key, s->key_check);
	if (err == SCONE_ERR_OK)
		err = open_checked(s, conninfo, flags);
	if (err != SCONE_ERR_OK) {
		pg_destroy(s);
		return err;
	}
	*out = &s->base;
	return SCONE_ERR_OK;
}
