/*
 * store_sqlite.c - the embedded CAS store: one SQLite file (WAL mode,
 * synchronous=FULL, busy timeout) holding sessions, their sealed bodies and
 * secrets, and the volume tags CAS tracks.
 *
 * Schema (version 2; a version 1 file gains the audit table at open):
 *   meta(key TEXT PRIMARY KEY, value)          'schema' = 2, 'canary' = sealed,
 *                                              'key_check' = 16 bytes of HKDF(master key),
 *                                              'version' = the change counter (store.h)
 *   sessions(name TEXT PRIMARY KEY, hash BLOB, creator BLOB, body BLOB,
 *            secrets BLOB, created INTEGER, updated INTEGER)
 *   volume_tags(session, volume, tag BLOB, PRIMARY KEY(session, volume))
 *   audit(chain TEXT, seq INTEGER, prev BLOB, hash BLOB, line TEXT,
 *         PRIMARY KEY(chain, seq))
 *   used_once(scope, key, expires, PRIMARY KEY(scope, key))   one-time uses
 *       (OTP codes); added to older version-1 files at open, unsealed
 *       (nothing secret: a service name and a time step)
 *   index sessions_by_creator(creator, name)
 * body, secrets and tag are sealed (store.c); the body's and secrets' AAD
 * binds name, hash and creator, so an edited hash or creator is caught too.
 * Audit lines are stored as they are (signed text without secrets).
 *
 * Invariants:
 * - Every write runs in one BEGIN IMMEDIATE transaction: the compare of
 *   compare-and-swap and the write see the same state, and an error rolls
 *   the whole transaction back (NO_SPACE leaves the store as it was).
 * - Every statement is reset right after use, so a handle holds no read
 *   snapshot between calls (a stale one would turn BEGIN IMMEDIATE into
 *   BUSY_SNAPSHOT and hold back checkpoints).
 * - A file that fails the checks at open is not written: the schema is
 *   only created in a database without any table, and checkpoint-on-close
 *   stays disabled until the open succeeded.
 * - Write transactions of one process take a process-wide mutex first:
 *   workers of one CAS then queue in microseconds instead of backing off
 *   in SQLite's busy handler (1 ms and up); other processes still meet the
 *   file lock and the busy timeout.
 * - An audit entry is appended only if its predecessor (seq - 1, prev) is
 *   there: a writer whose earlier entry vanished learns of the rollback.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/crypto.h"

#define SCHEMA_VERSION 2
#define BUSY_TIMEOUT_MS 5000
/*
 * Per connection: 16 MiB of page cache, and reads through a memory map of up
 * to 1 GiB (virtual; the pages are the kernel's page cache, shared by all
 * handles): a get at 100k sessions then costs a few cache misses more than
 * at 1k, not a pread per page. Writes still go through write() and fsync.
 */
#define CONN_PRAGMAS "PRAGMA synchronous = FULL; PRAGMA cache_size = -16384; PRAGMA mmap_size = 1073741824;"
#define CANARY SCONE_STORE_CANARY
#define KEY_CHECK_SIZE SCONE_STORE_KEY_CHECK_SIZE

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_GET,
	S_HEAD,
	S_HASH,
	S_INSERT,
	S_UPDATE,
	S_DELETE,
	S_DELETE_TAGS,
	S_LIST,
	S_COUNT,
	S_TAG_GET,
	S_TAG_PUT,
	S_AUDIT_ADD,
	S_AUDIT_DROP_LAST,
	S_SYNC_NORMAL,
	S_SYNC_FULL,
	S_BEGIN_READ,
	S_DUMP_SESSIONS,
	S_DUMP_TAGS,
	S_DUMP_AUDIT,
	S_ITEMS,
	S_LOAD_SESSION,
	S_LOAD_TAG,
	S_LOAD_AUDIT,
	S_AUDIT_HEAD,
	S_BUMP,
	S_VERSION,
	S_AUDIT_WHY,
	S_ONCE_PURGE,
	S_ONCE_INSERT,
	S_COUNT_,
};

static const char *const stmt_sql[S_COUNT_] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_GET] = "SELECT hash, creator, body, secrets, created, updated FROM sessions WHERE name = ?1",
    [S_HEAD] = "SELECT hash, creator, body FROM sessions WHERE name = ?1",
    [S_HASH] = "SELECT hash FROM sessions WHERE name = ?1",
    [S_INSERT] = "INSERT INTO sessions(name, hash, creator, body, secrets, created, updated) "
		 "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_UPDATE] = "UPDATE sessions SET hash = ?2, body = ?3, secrets = ?4, updated = ?5 WHERE name = ?1",
    [S_DELETE] = "DELETE FROM sessions WHERE name = ?1",
    [S_DELETE_TAGS] = "DELETE FROM volume_tags WHERE session = ?1",
    [S_LIST] = "SELECT name, hash FROM sessions WHERE creator = ?1 ORDER BY name",
    [S_COUNT] = "SELECT count(*) FROM sessions",
    [S_TAG_GET] = "SELECT tag FROM volume_tags WHERE session = ?1 AND volume = ?2",
    [S_TAG_PUT] = "INSERT INTO volume_tags(session, volume, tag) VALUES(?1, ?2, ?3) "
		  "ON CONFLICT(session, volume) DO UPDATE SET tag = excluded.tag",
    [S_AUDIT_ADD] =
	"INSERT INTO audit(chain, seq, prev, hash, line) SELECT ?1, ?2, ?3, ?4, ?5 WHERE (?2 = 1 OR "
	"EXISTS (SELECT 1 FROM audit WHERE chain = ?1 AND seq = ?2 - 1 AND hash = ?3)) AND "
	"COALESCE((SELECT value FROM meta WHERE key = 'version'), 0) >= ?6",
    [S_AUDIT_DROP_LAST] =
	"DELETE FROM audit WHERE chain = ?1 AND seq = ?2 AND prev = ?3 AND hash = ?4 AND "
	"(?5 IS NULL OR line = ?5) AND NOT EXISTS (SELECT 1 FROM audit WHERE chain = ?1 AND seq "
	"> ?2)",
    [S_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
    [S_SYNC_FULL] = "PRAGMA synchronous = FULL",
    [S_BEGIN_READ] = "BEGIN",
    [S_DUMP_SESSIONS] =
	"SELECT name, hash, creator, body, secrets, created, updated FROM sessions ORDER BY name",
    [S_DUMP_TAGS] = "SELECT session, volume, tag FROM volume_tags ORDER BY session, volume",
    [S_DUMP_AUDIT] = "SELECT chain, seq, prev, hash, line FROM audit ORDER BY chain, seq",
    [S_ITEMS] = "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM volume_tags) + "
		"(SELECT count(*) FROM audit)",
    [S_LOAD_SESSION] = "INSERT INTO sessions(name, hash, creator, body, secrets, created, updated) "
		       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_LOAD_TAG] = "INSERT INTO volume_tags(session, volume, tag) VALUES(?1, ?2, ?3)",
    [S_LOAD_AUDIT] = "INSERT INTO audit(chain, seq, prev, hash, line) VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_AUDIT_HEAD] = "SELECT seq, hash FROM audit WHERE chain = ?1 ORDER BY seq DESC LIMIT 1",
    [S_BUMP] =
	"INSERT INTO meta(key, value) VALUES('version', 1) ON CONFLICT(key) DO UPDATE SET value = value + 1 "
	"RETURNING value",
    [S_VERSION] = "SELECT COALESCE((SELECT value FROM meta WHERE key = 'version'), 0)",
    [S_AUDIT_WHY] =
	"SELECT COALESCE((SELECT value FROM meta WHERE key = 'version'), 0) >= ?4, ?2 = 1 OR EXISTS "
	"(SELECT 1 FROM audit WHERE chain = ?1 AND seq = ?2 - 1 AND hash = ?3)",
    [S_ONCE_PURGE] = "DELETE FROM used_once WHERE expires < ?1",
    [S_ONCE_INSERT] = "INSERT INTO used_once(scope, key, expires) VALUES(?1, ?2, ?3)",
};

#define AUDIT_TABLE_SQL                                                                                      \
	"CREATE TABLE audit(chain TEXT NOT NULL, seq INTEGER NOT NULL, prev BLOB NOT NULL, hash BLOB NOT "   \
	"NULL,"                                                                                              \
	" line TEXT NOT NULL, PRIMARY KEY(chain, seq)) WITHOUT ROWID;"

static pthread_mutex_t write_mutex = PTHREAD_MUTEX_INITIALIZER;

#define USED_ONCE_SQL                                                                                        \
	"CREATE TABLE IF NOT EXISTS used_once(scope TEXT NOT NULL, key TEXT NOT NULL, expires INTEGER NOT "  \
	"NULL,"                                                                                              \
	" PRIMARY KEY(scope, key));"

static const char schema_sql[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY NOT NULL, value NOT NULL);"
    "CREATE TABLE sessions(name TEXT PRIMARY KEY NOT NULL, hash BLOB NOT NULL, creator BLOB NOT NULL,"
    " body BLOB NOT NULL, secrets BLOB NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE INDEX sessions_by_creator ON sessions(creator, name);"
    "CREATE TABLE volume_tags(session TEXT NOT NULL REFERENCES sessions(name) ON DELETE CASCADE,"
    " volume TEXT NOT NULL, tag BLOB NOT NULL, PRIMARY KEY(session, volume));" AUDIT_TABLE_SQL USED_ONCE_SQL;

struct sq_store {
	struct scone_store base;
	sqlite3 *db;
	char *path;
	struct scone_store_sealer *sealer;
	sqlite3_stmt *stmt[S_COUNT_];
	uint8_t key_check[KEY_CHECK_SIZE]; /* tells a wrong key from a damaged canary */
	bool locked;			   /* holds write_mutex */
	int64_t seen;			   /* the highest change counter this handle saw */
	int64_t pending;		   /* the open write transaction's */
};

static struct sq_store *sq(struct scone_store *st)
{
	return (struct sq_store *)st;
}

/* ---------------- errors ---------------- */

static enum scone_err map_rc(sqlite3 *db, int rc)
{
	int sys = db ? sqlite3_system_errno(db) : 0;

	switch (rc & 0xff) {
	case SQLITE_FULL:
		return SCONE_ERR_NO_SPACE;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return SCONE_ERR_CORRUPT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SCONE_ERR_BUSY;
	case SQLITE_NOMEM:
		return SCONE_ERR_NOMEM;
	case SQLITE_READONLY:
		return SCONE_ERR_READ_ONLY;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return SCONE_ERR_PERMISSION;
	case SQLITE_TOOBIG:
		return SCONE_ERR_TOO_LARGE;
	case SQLITE_IOERR:
		return (sys == ENOSPC || sys == EDQUOT) ? SCONE_ERR_NO_SPACE : SCONE_ERR_IO;
	case SQLITE_CANTOPEN:
		return sys ? scone_err_from_errno(sys) : SCONE_ERR_IO;
	default:
		return SCONE_ERR_IO;
	}
}

/* Set detail "store PATH: WHAT: sqlite's message" for rc and return the mapped error. */
static enum scone_err __attribute__((format(printf, 3, 4)))
db_err(struct sq_store *s, int rc, const char *fmt, ...)
{
	char what[320];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(what, sizeof(what), fmt, ap) < 0)
		what[0] = '\0';
	va_end(ap);
	return scone_err_set(map_rc(s->db, rc), "store %s: %s: %s (sqlite %d)", s->path, what,
			     s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), rc);
}

/* Finish with a cached statement: no snapshot kept, no pointer to caller memory kept. */
static void done(sqlite3_stmt *q)
{
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
}

/* Step a statement that returns no row, then reset it. */
static enum scone_err run(struct sq_store *s, sqlite3_stmt *q, const char *what, const char *name)
{
	int rc = sqlite3_step(q);
	enum scone_err err = SCONE_ERR_OK;

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		err = db_err(s, rc, "%s %s", what, name ? name : "");
	done(q);
	return err;
}

/* ---------------- transactions ---------------- */

static void txn_unlock(struct sq_store *s)
{
	if (s->locked) {
		s->locked = false;
		pthread_mutex_unlock(&write_mutex);
	}
}

static enum scone_err txn_begin(struct sq_store *s, const char *what, const char *name)
{
	enum scone_err err;

	pthread_mutex_lock(&write_mutex);
	s->locked = true;
	err = run(s, s->stmt[S_BEGIN], what, name);
	if (err != SCONE_ERR_OK)
		txn_unlock(s);
	return err;
}

static enum scone_err txn_commit(struct sq_store *s, const char *what, const char *name)
{
	enum scone_err err = run(s, s->stmt[S_COMMIT], what, name);

	if (err == SCONE_ERR_OK)
		txn_unlock(s);
	return err;
}

/* Roll back whatever is open (sqlite may already have rolled back on FULL). */
static void rollback_open(struct sq_store *s)
{
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->stmt[S_ROLLBACK]);
		done(s->stmt[S_ROLLBACK]);
	}
}

static void txn_abort(struct sq_store *s)
{
	rollback_open(s);
	txn_unlock(s);
}

/* ---------------- audit entries ---------------- */

/* One integer from a statement without parameters, or bound by the caller (reset after). */
static enum scone_err step_int(struct sq_store *s, sqlite3_stmt *q, const char *what, int64_t *out,
			       int64_t *out2)
{
	int rc = sqlite3_step(q);
	enum scone_err err = SCONE_ERR_OK;

	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(q, 0);
		if (out2)
			*out2 = sqlite3_column_int64(q, 1);
	} else {
		err = db_err(s, rc, "%s", what);
	}
	done(q);
	return err;
}

static void saw(struct sq_store *s, int64_t v)
{
	if (v > s->seen)
		s->seen = v;
}

/* Not inserted: the counter went back (ROLLBACK), or the chain's previous entry is gone (MISSING). */
static enum scone_err why_not(struct sq_store *s, const struct scone_audit_row *row)
{
	sqlite3_stmt *q = s->stmt[S_AUDIT_WHY];
	int64_t counter_ok = 0, prev_ok = 0;

	sqlite3_bind_text(q, 1, row->chain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)row->seq);
	sqlite3_bind_blob(q, 3, row->prev, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, s->seen);
	SCONE_TRY(step_int(s, q, "look for the previous audit entry", &counter_ok, &prev_ok));
	if (!counter_ok)
		return scone_err_set(
		    SCONE_ERR_ROLLBACK,
		    "store %s: the store's change counter is below %lld, which this CAS saw: the store "
		    "was rolled back",
		    s->path, (long long)s->seen);
	if (!prev_ok)
		return scone_err_set(SCONE_ERR_MISSING,
				     "store %s: audit chain %s: entry %llu, written before, is gone or "
				     "altered",
				     s->path, row->chain, (unsigned long long)(row->seq - 1));
	return scone_err_set(SCONE_ERR_IO, "store %s: audit entry %llu of chain %s was not inserted", s->path,
			     (unsigned long long)row->seq, row->chain);
}

/* For a row that replaces: take out the version it replaces, if that is still the chain's last entry. */
static enum scone_err audit_drop_replaced(struct sq_store *s, const struct scone_audit_row *row)
{
	sqlite3_stmt *q = s->stmt[S_AUDIT_DROP_LAST];
	int rc;

	sqlite3_bind_text(q, 1, row->chain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)row->seq);
	sqlite3_bind_blob(q, 3, row->prev, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_blob(q, 4, row->replaced, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	if (row->replaced_line)
		sqlite3_bind_text(q, 5, row->replaced_line, (int)row->replaced_line_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 5);
	rc = sqlite3_step(q);
	done(q);
	if (rc != SQLITE_DONE)
		return db_err(s, rc, "replace audit entry %llu of chain %s", (unsigned long long)row->seq,
			      row->chain);
	if (sqlite3_changes(s->db) != 1)
		return scone_err_set(SCONE_ERR_MISSING,
				     "store %s: audit chain %s: entry %llu, written before, is gone, altered "
				     "or no longer the last",
				     s->path, row->chain, (unsigned long long)row->seq);
	return SCONE_ERR_OK;
}

/*
 * Append row if its predecessor is there and the change counter did not go
 * back (inside a transaction: a row that replaces needs one).
 */
static enum scone_err audit_insert(struct sq_store *s, const struct scone_audit_row *row)
{
	sqlite3_stmt *q = s->stmt[S_AUDIT_ADD];
	enum scone_err err = SCONE_ERR_OK;
	int rc;

	if (row->replaces)
		SCONE_TRY(audit_drop_replaced(s, row));

	sqlite3_bind_text(q, 1, row->chain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)row->seq);
	sqlite3_bind_blob(q, 3, row->prev, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_blob(q, 4, row->hash, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, row->line, (int)row->line_len, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, s->seen);
	rc = sqlite3_step(q);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		err = scone_err_set(
		    SCONE_ERR_MISSING,
		    "store %s: audit chain %s already has an entry %llu: the chain is ahead of its writer (a "
		    "commit whose answer was lost, or another writer on the chain)",
		    s->path, row->chain, (unsigned long long)row->seq);
	else if (rc != SQLITE_DONE)
		err = db_err(s, rc, "append audit entry %llu of chain %s", (unsigned long long)row->seq,
			     row->chain);
	else if (sqlite3_changes(s->db) == 0)
		err = SCONE_ERR_IO; /* decided below, after the statement is reset */
	done(q);
	return err == SCONE_ERR_IO && rc == SQLITE_DONE ? why_not(s, row) : err;
}

/*
 * A write transaction and the audit entry that commits with it: start it,
 * do the write, fill ch with what changed, then finish (append the entry
 * when there is a hook, commit; or roll back on any error).
 */
struct txn {
	struct scone_store_change ch;
	struct scone_audit_row row;
	bool have;
};

static enum scone_err txn_start(struct sq_store *s, struct txn *t, const char *what, const char *name)
{
	memset(t, 0, sizeof(*t));
	s->pending = 0;
	return txn_begin(s, what, name);
}

static enum scone_err txn_finish(struct sq_store *s, struct txn *t, enum scone_err err, const char *what,
				 const char *name)
{
	if (err == SCONE_ERR_OK) /* every write is a change: the counter moves on */
		err = step_int(s, s->stmt[S_BUMP], "advance the change counter", &s->pending, NULL);
	if (err == SCONE_ERR_OK)
		err = scone_store_audit_entry(&s->base, &t->ch, &t->row, &t->have);
	if (err == SCONE_ERR_OK && t->have)
		err = audit_insert(s, &t->row);
	if (err == SCONE_ERR_OK)
		err = txn_commit(s, what, name);
	if (err != SCONE_ERR_OK)
		txn_abort(s);
	else
		saw(s, s->pending);
	scone_store_audit_settle(&s->base, &t->row, t->have, err);
	return err;
}

/* ---------------- row helpers ---------------- */

static enum scone_err col_hash(struct sq_store *s, sqlite3_stmt *q, int col, const char *name,
			       const char *what, const uint8_t **out)
{
	const void *p = sqlite3_column_blob(q, col);

	if (!p || sqlite3_column_bytes(q, col) != SCONE_STORE_HASH_SIZE)
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: session %s: %s is not %d bytes", s->path,
				     name, what, SCONE_STORE_HASH_SIZE);
	*out = p;
	return SCONE_ERR_OK;
}

static enum scone_err unseal_col(struct sq_store *s, sqlite3_stmt *q, int col,
				 const struct scone_store_place *pl, uint8_t **out, size_t *out_size)
{
	const uint8_t *blob = sqlite3_column_blob(q, col); /* before its size, as SQLite asks */
	size_t size = (size_t)sqlite3_column_bytes(q, col);

	return scone_store_unseal_col(s->sealer, s->path, pl, blob, size, out, out_size);
}

/* ---------------- get ---------------- */

static enum scone_err read_row(struct sq_store *s, sqlite3_stmt *q, const char *name,
			       struct scone_session_rec *rec)
{
	const uint8_t *hash = NULL, *creator = NULL;
	struct scone_store_place pl;

	SCONE_TRY(col_hash(s, q, 0, name, "hash", &hash));
	SCONE_TRY(col_hash(s, q, 1, name, "creator", &creator));
	memcpy(rec->name, name, strlen(name) + 1);
	memcpy(rec->hash, hash, SCONE_STORE_HASH_SIZE);
	memcpy(rec->creator, creator, SCONE_STORE_HASH_SIZE);
	scone_store_session_place(&pl, "sessions.body", name, hash, creator);
	SCONE_TRY(unseal_col(s, q, 2, &pl, (uint8_t **)&rec->body, &rec->body_len));
	pl.column = "sessions.secrets";
	SCONE_TRY(unseal_col(s, q, 3, &pl, &rec->secrets, &rec->secrets_len));
	rec->created = sqlite3_column_int64(q, 4);
	rec->updated = sqlite3_column_int64(q, 5);
	return SCONE_ERR_OK;
}

static enum scone_err sq_get(struct scone_store *st, const char *name, struct scone_session_rec *rec)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->stmt[S_GET];
	enum scone_err err;
	int rc;

	memset(rec, 0, sizeof(*rec));
	SCONE_TRY(scone_store_check_name("session name", name, SCONE_STORE_NAME_MAX));
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store: no session named %s", name);
	else if (rc != SQLITE_ROW)
		err = db_err(s, rc, "read session %s", name);
	else
		err = read_row(s, q, name, rec);
	done(q);
	if (err != SCONE_ERR_OK)
		scone_session_rec_clear(rec);
	return err;
}

/* ---------------- create / update / remove ---------------- */

static enum scone_err insert_row(struct sq_store *s, const struct scone_session_rec *rec,
				 const struct scone_store_sealed *b)
{
	sqlite3_stmt *q = s->stmt[S_INSERT];
	int64_t created = scone_store_now_or(rec->created);
	int rc;
	enum scone_err err = SCONE_ERR_OK;

	sqlite3_bind_text(q, 1, rec->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, rec->hash, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_blob(q, 3, rec->creator, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_blob64(q, 4, b->body, b->body_size, SQLITE_STATIC);
	sqlite3_bind_blob64(q, 5, b->secrets, b->secrets_size, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, created);
	sqlite3_bind_int64(q, 7, rec->updated ? rec->updated : created);
	rc = sqlite3_step(q);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		err = scone_err_set(SCONE_ERR_EXISTS, "store: a session named %s already exists", rec->name);
	else if (rc != SQLITE_DONE)
		err = db_err(s, rc, "insert session %s", rec->name);
	done(q);
	return err;
}

static enum scone_err sq_create(struct scone_store *st, const struct scone_session_rec *rec)
{
	struct sq_store *s = sq(st);
	struct scone_store_sealed b;
	enum scone_err err;

	struct txn t;

	SCONE_TRY(scone_store_check_rec(rec));
	SCONE_TRY(scone_store_seal_rec(s->sealer, rec, rec->creator, &b));
	err = txn_start(s, &t, "begin creating session", rec->name);
	if (err == SCONE_ERR_OK)
		err = insert_row(s, rec, &b);
	t.ch =
	    (struct scone_store_change){.kind = SCONE_STORE_CREATE, .session = rec->name, .hash = rec->hash};
	err = txn_finish(s, &t, err, "commit creating session", rec->name);
	scone_store_sealed_free(&b);
	return err;
}

/*
 * Inside a transaction: check that name exists with hash expected. With
 * creator (update), also authenticate the stored row (its body unseals for
 * its name, hash and creator) and return its creator, so that an update
 * never re-seals an altered creator as genuine.
 */
static enum scone_err check_current(struct sq_store *s, const char *name, const uint8_t *expected,
				    uint8_t creator[SCONE_STORE_HASH_SIZE])
{
	sqlite3_stmt *q = s->stmt[creator ? S_HEAD : S_HASH];
	struct scone_store_place pl;
	const uint8_t *hash = NULL, *cr = NULL;
	uint8_t *plain = NULL;
	size_t plain_size = 0;
	enum scone_err err;
	int rc;

	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store: no session named %s", name);
		goto out;
	}
	if (rc != SQLITE_ROW) {
		err = db_err(s, rc, "read session %s", name);
		goto out;
	}
	err = col_hash(s, q, 0, name, "hash", &hash);
	if (err != SCONE_ERR_OK)
		goto out;
	if (expected && !scone_ct_equal(hash, expected, SCONE_STORE_HASH_SIZE)) {
		err = scone_err_set(
		    SCONE_ERR_CONFLICT,
		    "store: session %s has changed (its hash is not the expected predecessor)", name);
		goto out;
	}
	if (!creator)
		goto out;
	err = col_hash(s, q, 1, name, "creator", &cr);
	if (err != SCONE_ERR_OK)
		goto out;
	scone_store_session_place(&pl, "sessions.body", name, hash, cr);
	err = unseal_col(s, q, 2, &pl, &plain, &plain_size);
	if (err == SCONE_ERR_OK)
		memcpy(creator, cr, SCONE_STORE_HASH_SIZE);
out:
	if (plain) {
		scone_wipe(plain, plain_size);
		free(plain);
	}
	done(q);
	return err;
}

static enum scone_err update_row(struct sq_store *s, const struct scone_session_rec *rec,
				 const struct scone_store_sealed *b)
{
	sqlite3_stmt *q = s->stmt[S_UPDATE];

	sqlite3_bind_text(q, 1, rec->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, rec->hash, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_blob64(q, 3, b->body, b->body_size, SQLITE_STATIC);
	sqlite3_bind_blob64(q, 4, b->secrets, b->secrets_size, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, scone_store_now_or(rec->updated));
	return run(s, q, "update session", rec->name);
}

static enum scone_err sq_update(struct scone_store *st, const struct scone_session_rec *rec,
				const uint8_t expected[SCONE_STORE_HASH_SIZE])
{
	struct sq_store *s = sq(st);
	uint8_t creator[SCONE_STORE_HASH_SIZE];
	struct scone_store_sealed b = {0};
	struct txn t;
	enum scone_err err;

	SCONE_TRY(scone_store_check_rec(rec));
	if (!expected)
		return scone_err_set(SCONE_ERR_INVALID, "store: update of %s without an expected hash",
				     rec->name);
	err = txn_start(s, &t, "begin updating session", rec->name);
	if (err == SCONE_ERR_OK)
		err = check_current(s, rec->name, expected, creator);
	if (err == SCONE_ERR_OK)
		err = scone_store_seal_rec(s->sealer, rec, creator, &b);
	if (err == SCONE_ERR_OK)
		err = update_row(s, rec, &b);
	t.ch = (struct scone_store_change){
	    .kind = SCONE_STORE_UPDATE, .session = rec->name, .hash = rec->hash, .previous = expected};
	err = txn_finish(s, &t, err, "commit updating session", rec->name);
	scone_store_sealed_free(&b);
	return err;
}

static enum scone_err delete_rows(struct sq_store *s, const char *name)
{
	sqlite3_stmt *q = s->stmt[S_DELETE_TAGS];

	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	SCONE_TRY(run(s, q, "delete volume tags of session", name));
	q = s->stmt[S_DELETE];
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	return run(s, q, "delete session", name);
}

static enum scone_err sq_remove(struct scone_store *st, const char *name,
				const uint8_t expected[SCONE_STORE_HASH_SIZE])
{
	struct sq_store *s = sq(st);
	struct txn t;
	enum scone_err err;

	SCONE_TRY(scone_store_check_name("session name", name, SCONE_STORE_NAME_MAX));
	if (!expected)
		return scone_err_set(SCONE_ERR_INVALID, "store: removal of %s without an expected hash",
				     name);
	err = txn_start(s, &t, "begin removing session", name);
	if (err == SCONE_ERR_OK)
		err = check_current(s, name, expected, NULL);
	if (err == SCONE_ERR_OK)
		err = delete_rows(s, name);
	t.ch = (struct scone_store_change){.kind = SCONE_STORE_REMOVE, .session = name, .hash = expected};
	return txn_finish(s, &t, err, "commit removing session", name);
}

/* ---------------- list / count ---------------- */

static enum scone_err sq_list(struct scone_store *st, const uint8_t creator[SCONE_STORE_HASH_SIZE],
			      scone_store_list_fn fn, void *ctx)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->stmt[S_LIST];
	enum scone_err err = SCONE_ERR_OK;
	int rc;

	if (!creator || !fn)
		return scone_err_set(SCONE_ERR_INVALID, "store: list needs a creator and a callback");
	sqlite3_bind_blob(q, 1, creator, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(q, 0);
		const uint8_t *hash = NULL;

		if (!name) {
			err = scone_err_set(SCONE_ERR_CORRUPT, "store %s: a session has no name", s->path);
			break;
		}
		err = col_hash(s, q, 1, name, "hash", &hash);
		if (err != SCONE_ERR_OK || fn(ctx, name, hash) != 0)
			break;
	}
	if (err == SCONE_ERR_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
		err = db_err(s, rc, "list sessions");
	done(q);
	return err;
}

static enum scone_err sq_count(struct scone_store *st, uint64_t *out)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->stmt[S_COUNT];
	enum scone_err err = SCONE_ERR_OK;
	int rc = sqlite3_step(q);

	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(q, 0);
	else
		err = db_err(s, rc, "count sessions");
	done(q);
	return err;
}

/* ---------------- volume tags ---------------- */

/* Read the current tag of (session, volume) into tag_hex ("" if none). */
static enum scone_err read_tag(struct sq_store *s, const char *session, const char *volume,
			       char tag_hex[SCONE_STORE_TAG_HEX + 1])
{
	sqlite3_stmt *q = s->stmt[S_TAG_GET];
	struct scone_store_place pl;
	uint8_t *plain = NULL;
	size_t plain_size;
	enum scone_err err = SCONE_ERR_OK;
	int rc;

	tag_hex[0] = '\0';
	scone_store_tag_place(&pl, session, volume);
	sqlite3_bind_text(q, 1, session, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, volume, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		err = unseal_col(s, q, 0, &pl, &plain, &plain_size);
	else if (rc != SQLITE_DONE)
		err = db_err(s, rc, "read volume tag of %s/%s", session, volume);
	done(q);
	if (err == SCONE_ERR_OK && plain &&
	    (plain_size != SCONE_STORE_TAG_HEX ||
	     scone_store_norm_tag("stored tag", (const char *)plain, false, tag_hex) != SCONE_ERR_OK))
		err = scone_err_set(SCONE_ERR_CORRUPT, "store %s: volume tag of %s/%s is not a tag", s->path,
				    session, volume);
	free(plain);
	return err;
}

static enum scone_err sq_get_volume_tag(struct scone_store *st, const char *session, const char *volume,
					char tag_hex[65])
{
	tag_hex[0] = '\0';
	SCONE_TRY(scone_store_check_tag_args(session, volume));
	return read_tag(sq(st), session, volume, tag_hex);
}

static enum scone_err write_tag(struct sq_store *s, const char *session, const char *volume, const char *tag)
{
	sqlite3_stmt *q = s->stmt[S_TAG_PUT];
	struct scone_store_place pl;
	uint8_t *blob;
	size_t size;
	enum scone_err err;

	scone_store_tag_place(&pl, session, volume);
	SCONE_TRY(scone_store_seal(s->sealer, &pl, tag, SCONE_STORE_TAG_HEX, &blob, &size));
	sqlite3_bind_text(q, 1, session, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, volume, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(q, 3, blob, size, SQLITE_STATIC);
	err = run(s, q, "write volume tag of session", session);
	free(blob);
	return err;
}

/* Inside a transaction: the tag CAS proper. */
static enum scone_err swap_tag(struct sq_store *s, const char *session, const char *volume,
			       const char *expected, const char *tag)
{
	char cur[SCONE_STORE_TAG_HEX + 1];

	SCONE_TRY(check_current(s, session, NULL, NULL));
	SCONE_TRY(read_tag(s, session, volume, cur));
	if (strcmp(cur, expected) != 0)
		return scone_err_set(SCONE_ERR_CONFLICT,
				     "store: volume tag of %s/%s is not the expected one (%s)", session,
				     volume, cur[0] ? "it changed" : "it is not initialised yet");
	return write_tag(s, session, volume, tag);
}

static enum scone_err sq_put_volume_tag(struct scone_store *st, const char *session, const char *volume,
					const char *expected_hex, const char *tag_hex)
{
	struct sq_store *s = sq(st);
	/* Zero-filled: a 32-digit tag is sealed as 64 bytes, NUL-padded. */
	char expected[SCONE_STORE_TAG_HEX + 1] = {0}, tag[SCONE_STORE_TAG_HEX + 1] = {0};
	struct txn t;
	enum scone_err err;

	SCONE_TRY(scone_store_check_tag_args(session, volume));
	SCONE_TRY(scone_store_norm_tag("expected volume tag", expected_hex, true, expected));
	SCONE_TRY(scone_store_norm_tag("volume tag", tag_hex, false, tag));
	err = txn_start(s, &t, "begin setting volume tag of session", session);
	if (err == SCONE_ERR_OK)
		err = swap_tag(s, session, volume, expected, tag);
	t.ch = (struct scone_store_change){.kind = SCONE_STORE_TAG,
					   .session = session,
					   .volume = volume,
					   .previous_tag = expected,
					   .tag = tag};
	return txn_finish(s, &t, err, "commit volume tag of session", session);
}

/* ---------------- audit, dump, load ---------------- */

static enum scone_err sq_audit_append(struct scone_store *st, const struct scone_audit_row *row, bool durable)
{
	struct sq_store *s = sq(st);
	enum scone_err err;

	SCONE_TRY(scone_store_check_audit_row(row));
	if (row->replaces && !durable)
		return scone_err_set(SCONE_ERR_INVALID,
				     "store: an audit entry that replaces is written durably");
	pthread_mutex_lock(&write_mutex);
	/* In WAL mode NORMAL writes the WAL without fsync; the next FULL commit syncs it too. */
	if (!durable)
		err = run(s, s->stmt[S_SYNC_NORMAL], "relax synchronous for an audit entry", NULL);
	else
		err = SCONE_ERR_OK;
	if (err == SCONE_ERR_OK && row->replaces) { /* the old version out and the new in, together */
		err =
		    run(s, s->stmt[S_BEGIN], "begin replacing an audit entry", NULL); /* (write_mutex held) */
		if (err == SCONE_ERR_OK)
			err = audit_insert(s, row);
		if (err == SCONE_ERR_OK)
			err = run(s, s->stmt[S_COMMIT], "commit the replaced audit entry", NULL);
		if (err != SCONE_ERR_OK)
			rollback_open(s);
	} else if (err == SCONE_ERR_OK) {
		err = audit_insert(s, row);
	}
	if (!durable) {
		enum scone_err e2 = run(s, s->stmt[S_SYNC_FULL], "restore synchronous = FULL", NULL);
		if (err == SCONE_ERR_OK)
			err = e2;
	}
	if (err == SCONE_ERR_OK) { /* in one process, nothing seen here can be undone but by a rollback */
		int64_t v = 0;
		if (step_int(s, s->stmt[S_VERSION], "read the change counter", &v, NULL) == SCONE_ERR_OK)
			saw(s, v);
	}
	pthread_mutex_unlock(&write_mutex);
	return err;
}

static enum scone_err sq_audit_head(struct scone_store *st, const char *chain, uint64_t *seq,
				    uint8_t hash[SCONE_STORE_HASH_SIZE])
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *q = s->stmt[S_AUDIT_HEAD];
	const uint8_t *h = NULL;
	enum scone_err err = SCONE_ERR_OK;
	int rc;

	sqlite3_bind_text(q, 1, chain, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store %s: no audit chain %s", s->path, chain);
	else if (rc != SQLITE_ROW)
		err = db_err(s, rc, "read the head of audit chain %s", chain);
	else if ((err = col_hash(s, q, 1, chain, "audit hash", &h)) == SCONE_ERR_OK) {
		*seq = (uint64_t)sqlite3_column_int64(q, 0);
		memcpy(hash, h, SCONE_STORE_HASH_SIZE);
	}
	done(q);
	return err;
}

static enum scone_err col_text(struct sq_store *s, sqlite3_stmt *q, int col, const char *what,
			       const char **out)
{
	*out = (const char *)sqlite3_column_text(q, col);
	if (!*out)
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: a row of %s has no name", s->path, what);
	return SCONE_ERR_OK;
}

static enum scone_err dump_session_row(struct sq_store *s, sqlite3_stmt *q, scone_store_item_fn fn, void *ctx)
{
	struct scone_store_item it = {.kind = SCONE_ITEM_SESSION};

	SCONE_TRY(col_text(s, q, 0, "sessions", &it.name));
	SCONE_TRY(col_hash(s, q, 1, it.name, "hash", &it.hash));
	SCONE_TRY(col_hash(s, q, 2, it.name, "creator", &it.creator));
	it.body = sqlite3_column_blob(q, 3);
	it.body_size = (size_t)sqlite3_column_bytes(q, 3);
	it.secrets = sqlite3_column_blob(q, 4);
	it.secrets_size = (size_t)sqlite3_column_bytes(q, 4);
	it.created = sqlite3_column_int64(q, 5);
	it.updated = sqlite3_column_int64(q, 6);
	return fn(ctx, &it);
}

static enum scone_err dump_tag_row(struct sq_store *s, sqlite3_stmt *q, scone_store_item_fn fn, void *ctx)
{
	struct scone_store_item it = {.kind = SCONE_ITEM_TAG};

	SCONE_TRY(col_text(s, q, 0, "volume_tags", &it.name));
	SCONE_TRY(col_text(s, q, 1, "volume_tags", &it.volume));
	it.tag = sqlite3_column_blob(q, 2);
	it.tag_size = (size_t)sqlite3_column_bytes(q, 2);
	return fn(ctx, &it);
}

static enum scone_err dump_audit_row(struct sq_store *s, sqlite3_stmt *q, scone_store_item_fn fn, void *ctx)
{
	struct scone_audit_row row = {0};
	struct scone_store_item it = {.kind = SCONE_ITEM_AUDIT, .audit = &row};
	const char *chain, *line;
	const uint8_t *prev = NULL, *hash = NULL;

	SCONE_TRY(col_text(s, q, 0, "audit", &chain));
	line = (const char *)sqlite3_column_text(q, 4);
	if (strlen(chain) > SCONE_AUDIT_CHAIN_MAX || !line ||
	    col_hash(s, q, 2, chain, "audit prev", &prev) != SCONE_ERR_OK ||
	    col_hash(s, q, 3, chain, "audit hash", &hash) != SCONE_ERR_OK)
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: a damaged audit entry in chain %.64s",
				     s->path, chain);
	memcpy(row.chain, chain, strlen(chain) + 1);
	row.seq = (uint64_t)sqlite3_column_int64(q, 1);
	memcpy(row.prev, prev, SCONE_STORE_HASH_SIZE);
	memcpy(row.hash, hash, SCONE_STORE_HASH_SIZE);
	row.line = (char *)line;
	row.line_len = (size_t)sqlite3_column_bytes(q, 4);
	return fn(ctx, &it);
}

typedef enum scone_err (*dump_row_fn)(struct sq_store *s, sqlite3_stmt *q, scone_store_item_fn fn, void *ctx);

static enum scone_err dump_table(struct sq_store *s, int stmt, dump_row_fn row, scone_store_item_fn fn,
				 void *ctx)
{
	sqlite3_stmt *q = s->stmt[stmt];
	enum scone_err err = SCONE_ERR_OK;
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		err = row(s, q, fn, ctx);
		if (err != SCONE_ERR_OK)
			break;
	}
	if (err == SCONE_ERR_OK && rc != SQLITE_DONE)
		err = db_err(s, rc, "dump the store");
	done(q);
	return err;
}

/* One read transaction: in WAL mode a snapshot that writers do not disturb. */
static enum scone_err sq_dump(struct scone_store *st, unsigned what, scone_store_item_fn fn, void *ctx)
{
	struct sq_store *s = sq(st);
	enum scone_err err;

	if (!fn)
		return scone_err_set(SCONE_ERR_INVALID, "store: dump needs a callback");
	err = run(s, s->stmt[S_BEGIN_READ], "begin the dump", NULL);
	if (err == SCONE_ERR_OK && (what & SCONE_DUMP_SESSIONS))
		err = dump_table(s, S_DUMP_SESSIONS, dump_session_row, fn, ctx);
	if (err == SCONE_ERR_OK && (what & SCONE_DUMP_TAGS))
		err = dump_table(s, S_DUMP_TAGS, dump_tag_row, fn, ctx);
	if (err == SCONE_ERR_OK && (what & SCONE_DUMP_AUDIT))
		err = dump_table(s, S_DUMP_AUDIT, dump_audit_row, fn, ctx);
	if (!sqlite3_get_autocommit(s->db)) {
		sqlite3_step(s->stmt[S_ROLLBACK]);
		done(s->stmt[S_ROLLBACK]);
	}
	return err;
}

static enum scone_err load_session(struct sq_store *s, const struct scone_store_item *it)
{
	sqlite3_stmt *q = s->stmt[S_LOAD_SESSION];

	sqlite3_bind_text(q, 1, it->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, it->hash, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_blob(q, 3, it->creator, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_blob64(q, 4, it->body, it->body_size, SQLITE_STATIC);
	sqlite3_bind_blob64(q, 5, it->secrets, it->secrets_size, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, it->created);
	sqlite3_bind_int64(q, 7, it->updated);
	return run(s, q, "load session", it->name);
}

static enum scone_err load_tag(struct sq_store *s, const struct scone_store_item *it)
{
	sqlite3_stmt *q = s->stmt[S_LOAD_TAG];

	sqlite3_bind_text(q, 1, it->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, it->volume, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(q, 3, it->tag, it->tag_size, SQLITE_STATIC);
	return run(s, q, "load volume tag of session", it->name);
}

static enum scone_err load_audit(struct sq_store *s, const struct scone_audit_row *row)
{
	sqlite3_stmt *q = s->stmt[S_LOAD_AUDIT];

	sqlite3_bind_text(q, 1, row->chain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)row->seq);
	sqlite3_bind_blob(q, 3, row->prev, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_blob(q, 4, row->hash, SCONE_STORE_HASH_SIZE, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, row->line, (int)row->line_len, SQLITE_STATIC);
	return run(s, q, "load audit entry of chain", row->chain);
}

static enum scone_err load_item(struct sq_store *s, struct scone_store_load_check *lc,
				const struct scone_store_item *it)
{
	SCONE_TRY(scone_store_check_item(s->sealer, it));
	SCONE_TRY(scone_store_load_check_next(lc, it));
	switch (it->kind) {
	case SCONE_ITEM_SESSION:
		return load_session(s, it);
	case SCONE_ITEM_TAG:
		return load_tag(s, it);
	default:
		return load_audit(s, it->audit);
	}
}

static enum scone_err load_all(struct sq_store *s, scone_store_source_fn next, void *ctx)
{
	struct scone_store_load_check lc = {0};
	struct scone_store_item it;
	int64_t n = -1;
	bool end = false;
	enum scone_err err;
	int rc = sqlite3_step(s->stmt[S_ITEMS]);

	if (rc == SQLITE_ROW)
		n = sqlite3_column_int64(s->stmt[S_ITEMS], 0);
	done(s->stmt[S_ITEMS]);
	if (rc != SQLITE_ROW)
		return db_err(s, rc, "count what the store holds");
	if (n != 0)
		return scone_err_set(SCONE_ERR_EXISTS,
				     "store %s is not empty (%lld items): load only into a new store",
				     s->path, (long long)n);
	for (;;) {
		memset(&it, 0, sizeof(it));
		err = next(ctx, &it, &end);
		if (err != SCONE_ERR_OK || end)
			return err;
		SCONE_TRY(load_item(s, &lc, &it));
	}
}

static enum scone_err sq_load(struct scone_store *st, scone_store_source_fn next, void *ctx)
{
	struct sq_store *s = sq(st);
	enum scone_err err;

	if (!next)
		return scone_err_set(SCONE_ERR_INVALID, "store: load needs a source");
	err = txn_begin(s, "begin loading", NULL);
	if (err == SCONE_ERR_OK)
		err = load_all(s, next, ctx);
	if (err == SCONE_ERR_OK)
		err = txn_commit(s, "commit the load", NULL);
	if (err != SCONE_ERR_OK)
		txn_abort(s);
	return err;
}

/* ---------------- one-time uses ---------------- */

static enum scone_err insert_once(struct sq_store *s, const char *scope, const char *key, int64_t expires)
{
	sqlite3_stmt *q = s->stmt[S_ONCE_INSERT];
	enum scone_err err = SCONE_ERR_OK;
	int rc;

	sqlite3_bind_text(q, 1, scope, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, expires);
	rc = sqlite3_step(q);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		err = scone_err_set(SCONE_ERR_CONFLICT, "store: %s %s was used already", scope, key);
	else if (rc != SQLITE_DONE)
		err = db_err(s, rc, "record the use of %s", scope);
	done(q);
	return err;
}

static enum scone_err sq_use_once(struct scone_store *st, const char *scope, const char *key, int64_t expires)
{
	struct sq_store *s = sq(st);
	sqlite3_stmt *purge = s->stmt[S_ONCE_PURGE];
	enum scone_err err;

	SCONE_TRY(scone_store_check_name("use scope", scope, SCONE_STORE_VOLUME_MAX));
	SCONE_TRY(scone_store_check_name("use key", key, SCONE_STORE_VOLUME_MAX));
	err = txn_begin(s, "begin recording a use of", scope);
	if (err == SCONE_ERR_OK) {
		sqlite3_bind_int64(purge, 1, (int64_t)time(NULL));
		err = run(s, purge, "forget expired uses of", scope);
	}
	if (err == SCONE_ERR_OK)
		err = insert_once(s, scope, key, expires);
	if (err == SCONE_ERR_OK)
		err = txn_commit(s, "commit a use of", scope);
	if (err != SCONE_ERR_OK)
		txn_abort(s);
	return err;
}

/* ---------------- open / close ---------------- */

static void sq_destroy(struct sq_store *s)
{
	for (int i = 0; i < S_COUNT_; i++)
		sqlite3_finalize(s->stmt[i]);
	if (s->db)
		sqlite3_close(s->db);
	scone_store_sealer_free(s->sealer);
	free(s->path);
	free(s);
}

/* Reads from the file cost no round trip: they stay fresh, and no append is ever STALE. */
static void sq_optimistic(struct scone_store *st, bool on)
{
	(void)st;
	(void)on;
}

static void sq_close(struct scone_store *st)
{
	if (st)
		sq_destroy(sq(st));
}

static const struct scone_store_ops sq_ops = {
    .get = sq_get,
    .create = sq_create,
    .update = sq_update,
    .remove = sq_remove,
    .list = sq_list,
    .get_volume_tag = sq_get_volume_tag,
    .put_volume_tag = sq_put_volume_tag,
    .count = sq_count,
    .audit_append = sq_audit_append,
    .audit_head = sq_audit_head,
    .dump = sq_dump,
    .load = sq_load,
    .optimistic = sq_optimistic,
    .use_once = sq_use_once,
    .close = sq_close,
};

/*
 * Run one statement of SQL text and hand back its first row's first column
 * as int64 (DONE without a row: NOT_FOUND). *rc_out (may be NULL) gets
 * sqlite's code.
 */
static enum scone_err query_int(struct sq_store *s, const char *sql, const char *what, int64_t *out,
				int *rc_out)
{
	sqlite3_stmt *q = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);
	enum scone_err err = SCONE_ERR_OK;

	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(q, 0);
	else if (rc == SQLITE_DONE)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "store %s: %s: no row", s->path, what);
	else
		err = db_err(s, rc, "%s", what);
	if (rc_out)
		*rc_out = rc;
	sqlite3_finalize(q);
	return err;
}

static enum scone_err exec(struct sq_store *s, const char *sql, const char *what)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return db_err(s, rc, "%s", what);
	return SCONE_ERR_OK;
}

/* Create the file 0600 first: sqlite gives -wal and -shm the same mode. */
static enum scone_err precreate(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd >= 0) {
		close(fd);
		return SCONE_ERR_OK;
	}
	if (errno == EEXIST)
		return SCONE_ERR_OK;
	return scone_err_set(scone_err_from_errno(errno), "store %s: cannot create: %s", path,
			     strerror(errno));
}

static enum scone_err db_open(struct sq_store *s, unsigned flags)
{
	int mode = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	int rc;

	if (!(flags & SCONE_STORE_OPEN_EXISTING)) {
		SCONE_TRY(precreate(s->path));
		mode |= SQLITE_OPEN_CREATE;
	}
	rc = sqlite3_open_v2(s->path, &s->db, mode, NULL);
	if (rc != SQLITE_OK)
		return db_err(s, rc, "open");
	/* Until the checks pass, closing must not checkpoint into the file. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, NULL);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	return SCONE_ERR_OK;
}

/*
 * Switching a new file to WAL mode takes an exclusive lock without SQLite's
 * busy handler: with other handles opening the same new file at once it
 * fails at once with SQLITE_BUSY. Tried again (1 ms, doubling to 32) for up
 * to the busy timeout.
 */
static int step_wal_pragma(struct sq_store *s, sqlite3_stmt **q)
{
	long pause_ms = 1, waited_ms = 0;
	int rc;

	for (;;) {
		rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, q, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(*q);
		if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= BUSY_TIMEOUT_MS)
			return rc;
		sqlite3_finalize(*q);
		*q = NULL;
		sqlite3_sleep((int)pause_ms);
		waited_ms += pause_ms;
		pause_ms = pause_ms < 32 ? pause_ms * 2 : 32;
	}
}

static enum scone_err set_wal(struct sq_store *s)
{
	sqlite3_stmt *q = NULL;
	enum scone_err err = SCONE_ERR_OK;
	int rc = step_wal_pragma(s, &q);

	if (rc != SQLITE_ROW) {
		err = db_err(s, rc, "switch to WAL mode");
	} else {
		const char *mode = (const char *)sqlite3_column_text(q, 0);
		if (!mode || strcmp(mode, "wal") != 0)
			err = scone_err_set(SCONE_ERR_IO,
					    "store %s: cannot use WAL mode here (journal mode stays %s)",
					    s->path, mode ? mode : "unknown");
	}
	sqlite3_finalize(q);
	return err;
}

static enum scone_err seal_canary(struct sq_store *s, uint8_t **blob, size_t *size)
{
	const struct scone_store_place pl = {.column = "meta.canary"};

	return scone_store_seal(s->sealer, &pl, CANARY, sizeof(CANARY) - 1, blob, size);
}

static enum scone_err write_meta(struct sq_store *s)
{
	sqlite3_stmt *q = NULL;
	uint8_t *blob = NULL;
	size_t size = 0;
	enum scone_err err;
	int rc;

	SCONE_TRY(seal_canary(s, &blob, &size));
	rc = sqlite3_prepare_v2(
	    s->db, "INSERT INTO meta(key, value) VALUES('schema', ?1), ('canary', ?2), ('key_check', ?3)", -1,
	    &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(q, 1, SCHEMA_VERSION);
		sqlite3_bind_blob64(q, 2, blob, size, SQLITE_STATIC);
		sqlite3_bind_blob(q, 3, s->key_check, KEY_CHECK_SIZE, SQLITE_STATIC);
		rc = sqlite3_step(q);
	}
	err = rc == SQLITE_DONE ? SCONE_ERR_OK : db_err(s, rc, "write the store's meta data");
	sqlite3_finalize(q);
	free(blob);
	return err;
}

/* A new database: WAL mode, then the schema, unless another handle just made it. */
static enum scone_err schema_create(struct sq_store *s)
{
	int64_t n = 0;
	enum scone_err err;

	SCONE_TRY(set_wal(s));
	SCONE_TRY(exec(s, "BEGIN IMMEDIATE", "begin creating the schema"));
	err = query_int(s, "SELECT count(*) FROM sqlite_master", "read the schema", &n, NULL);
	if (err == SCONE_ERR_OK && n == 0) {
		err = exec(s, schema_sql, "create the schema");
		if (err == SCONE_ERR_OK)
			err = write_meta(s);
	}
	if (err == SCONE_ERR_OK)
		err = exec(s, "COMMIT", "commit the schema");
	if (err != SCONE_ERR_OK && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

/* Version 1 had no audit log: add its table (once the key is known to match, see open_checked). */
static enum scone_err schema_upgrade_1(struct sq_store *s)
{
	int64_t v = 0;
	enum scone_err err;

	SCONE_TRY(
	    query_int(s, "SELECT value FROM meta WHERE key = 'schema'", "read the schema version", &v, NULL));
	if (v != 1)
		return SCONE_ERR_OK;

	SCONE_TRY(exec(s, "BEGIN IMMEDIATE", "begin the schema upgrade"));
	err = exec(s, AUDIT_TABLE_SQL "UPDATE meta SET value = 2 WHERE key = 'schema';",
		   "upgrade the schema to version 2");
	if (err == SCONE_ERR_OK)
		err = exec(s, "COMMIT", "commit the schema upgrade");
	if (err != SCONE_ERR_OK && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

static enum scone_err schema_check(struct sq_store *s)
{
	int64_t v = 0;
	int rc = SQLITE_OK;
	enum scone_err err =
	    query_int(s, "SELECT value FROM meta WHERE key = 'schema'", "read the schema version", &v, &rc);

	if (rc == SQLITE_ERROR) /* no such table: some other SQLite database */
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: not a scone CAS store (%s)", s->path,
				     sqlite3_errmsg(s->db));
	if (err == SCONE_ERR_NOT_FOUND)
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: the schema version is missing", s->path);
	if (err != SCONE_ERR_OK)
		return err;
	if (v > SCHEMA_VERSION)
		return scone_err_set(SCONE_ERR_UNSUPPORTED,
				     "store %s: schema version %lld is newer than this scone supports (%d)",
				     s->path, (long long)v, SCHEMA_VERSION);
	if (v == 1)
		return SCONE_ERR_OK; /* upgraded by open_checked once the key matched */
	if (v != SCHEMA_VERSION)
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: unknown schema version %lld", s->path,
				     (long long)v);
	return SCONE_ERR_OK;
}

static enum scone_err quick_check(struct sq_store *s)
{
	sqlite3_stmt *q = NULL;
	enum scone_err err = SCONE_ERR_OK;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(3)", -1, &q, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		err = db_err(s, rc, "integrity check");
	} else {
		const char *msg = (const char *)sqlite3_column_text(q, 0);
		if (!msg || strcmp(msg, "ok") != 0)
			err = scone_err_set(SCONE_ERR_CORRUPT, "store %s: integrity check failed: %s",
					    s->path, msg ? msg : "(no result)");
	}
	sqlite3_finalize(q);
	return err;
}

/*
 * Is this the store's master key? The key check value (a one-way function
 * of the key) answers AUTH for a wrong key; the canary, sealed under the
 * key, then proves the sealing works (a damaged one is CORRUPT).
 */
static enum scone_err key_check(struct sq_store *s)
{
	sqlite3_stmt *q = NULL;
	enum scone_err err = SCONE_ERR_OK;
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'key_check'", -1, &q, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		err = scone_err_set(SCONE_ERR_CORRUPT, "store %s: the key check value is missing", s->path);
	else if (rc != SQLITE_ROW)
		err = db_err(s, rc, "read the key check value");
	else if (sqlite3_column_bytes(q, 0) != KEY_CHECK_SIZE ||
		 !scone_ct_equal(sqlite3_column_blob(q, 0), s->key_check, KEY_CHECK_SIZE))
		err =
		    scone_err_set(SCONE_ERR_AUTH, "store %s: master key does not match this store", s->path);
	sqlite3_finalize(q);
	return err;
}

static enum scone_err canary_check(struct sq_store *s)
{
	const struct scone_store_place pl = {.column = "meta.canary"};
	sqlite3_stmt *q = NULL;
	uint8_t *plain = NULL;
	size_t size = 0;
	enum scone_err err;
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'canary'", -1, &q, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		err = scone_err_set(SCONE_ERR_CORRUPT, "store %s: the key canary is missing", s->path);
	else if (rc != SQLITE_ROW)
		err = db_err(s, rc, "read the key canary");
	else
		err = scone_store_unseal(s->sealer, &pl, sqlite3_column_blob(q, 0),
					 (size_t)sqlite3_column_bytes(q, 0), &plain, &size);
	if (err == SCONE_ERR_AUTH)
		err = scone_err_set(SCONE_ERR_CORRUPT,
				    "store %s: the key canary does not unseal although the key check matches "
				    "(damaged meta data)",
				    s->path);
	else if (err == SCONE_ERR_OK && (size != sizeof(CANARY) - 1 || memcmp(plain, CANARY, size) != 0))
		err = scone_err_set(SCONE_ERR_CORRUPT, "store %s: the key canary holds the wrong text",
				    s->path);
	free(plain);
	sqlite3_finalize(q);
	return err;
}

static enum scone_err prepare_all(struct sq_store *s)
{
	for (int i = 0; i < S_COUNT_; i++) {
		int rc =
		    sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i], NULL);
		if (rc == SQLITE_ERROR)
			return scone_err_set(SCONE_ERR_CORRUPT,
					     "store %s: tables do not match the schema: %s", s->path,
					     sqlite3_errmsg(s->db));
		if (rc != SQLITE_OK)
			return db_err(s, rc, "prepare statements");
	}
	return SCONE_ERR_OK;
}

static enum scone_err open_checked(struct sq_store *s, unsigned flags)
{
	int64_t tables = 0;

	SCONE_TRY(db_open(s, flags));
	/* The first read: a destroyed header or schema fails here (CORRUPT). */
	SCONE_TRY(query_int(s, "SELECT count(*) FROM sqlite_master", "read the database header and schema",
			    &tables, NULL));
	SCONE_TRY(exec(s, CONN_PRAGMAS, "configure the connection"));
	if (tables == 0 && (flags & SCONE_STORE_OPEN_EXISTING))
		return scone_err_set(SCONE_ERR_NOT_FOUND, "store %s has no tables: it was never created",
				     s->path);
	if (tables == 0)
		SCONE_TRY(schema_create(s));
	SCONE_TRY(schema_check(s));
	SCONE_TRY(quick_check(s));
	SCONE_TRY(key_check(s));
	SCONE_TRY(canary_check(s));
	SCONE_TRY(schema_upgrade_1(s));
	SCONE_TRY(exec(s, USED_ONCE_SQL, "add the table of one-time uses"));
	SCONE_TRY(prepare_all(s));
	SCONE_TRY(set_wal(s)); /* a no-op unless someone switched the file out of WAL mode */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
	return SCONE_ERR_OK;
}

enum scone_err scone_store_open_sqlite(const char *path, const uint8_t master_key[32],
				       struct scone_store **out)
{
	return scone_store_open_sqlite_ex(path, master_key, 0, out);
}

enum scone_err scone_store_open_sqlite_ex(const char *path, const uint8_t master_key[32], unsigned flags,
					  struct scone_store **out)
{
	struct sq_store *s;
	enum scone_err err;

	if (!path || !*path || !master_key || !out)
		return scone_err_set(SCONE_ERR_INVALID,
				     "store: open needs a path, a master key and an out pointer");
	s = calloc(1, sizeof(*s));
	if (!s)
		return scone_err_set(SCONE_ERR_NOMEM, "store: no memory for a handle");
	s->base.ops = &sq_ops;
	s->path = strdup(path);
	err = s->path ? scone_store_sealer_new(master_key, &s->sealer) : SCONE_ERR_NOMEM;
	if (err == SCONE_ERR_OK)
		err = scone_store_key_check(master_key, s->key_check);
	if (err == SCONE_ERR_OK)
		err = open_checked(s, flags);
	if (err != SCONE_ERR_OK) {
		sq_destroy(s);
		return err;
	}
	*out = &s->base;
	return SCONE_ERR_OK;
}
