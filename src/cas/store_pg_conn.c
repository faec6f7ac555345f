/*
 * store_pg_conn.c - the PostgreSQL store's statements (prepared once per
 * connection, run with binary results), errors, the connection and its
 * resets, write transactions, and the one statement that appends an audit
 * entry with its checks. Design notes: store_pg.c.
 */
#include "store_pg_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/buf.h"
#include "lib/crypto.h"

const char *const store_pg_sql[P_COUNT_] = {
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
    [P_BUMP] =
	"UPDATE scone_sessions SET version = nextval('scone_version') WHERE name = $1 RETURNING version",
    [P_AUDIT_CHECKED] =
	"INSERT INTO scone_audit(chain, seq, prev, hash, line) "
	"SELECT $1::text, $2::bigint, $3::bytea, $4::bytea, $5::text WHERE ($2::bigint = 1 OR "
	"EXISTS (SELECT 1 FROM scone_audit WHERE chain = $1::text AND seq = $2::bigint - 1 AND "
	"hash = $3::bytea)) AND (SELECT count(*) FROM scone_sessions s, "
	"unnest($6::text[], $7::bigint[]) AS r(n, v) WHERE s.name = r.n COLLATE \"C\" AND "
	"s.version = r.v) = cardinality($6::text[]) AND (SELECT last_value FROM scone_version) >= $8::bigint",
    [P_AUDIT_PREV] =
	"SELECT (SELECT last_value FROM scone_version) >= $4::bigint, $2::bigint = 1 OR EXISTS (SELECT 1 "
	"FROM scone_audit WHERE chain = $1::text AND seq = $2::bigint - 1 AND hash = $3::bytea)",
    [P_NEXT] = "SELECT nextval('scone_version')",
    [P_AUDIT_HEAD] = "SELECT seq, hash FROM scone_audit WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
    [P_ONCE_PURGE] = "DELETE FROM scone_used_once WHERE expires < $1::bigint",
    [P_ONCE_INSERT] =
	"INSERT INTO scone_used_once(scope, key, expires) VALUES($1::text, $2::text, $3::bigint)",
    [P_AUDIT_DROP_LAST] =
	"DELETE FROM scone_audit WHERE chain = $1::text AND seq = $2::bigint AND prev = $3::bytea AND hash = "
	"$4::bytea AND ($5::text IS NULL OR line = $5::text) AND NOT EXISTS (SELECT 1 FROM scone_audit WHERE "
	"chain = $1::text AND seq > $2::bigint)",
};

enum scone_err store_pg_col_hash(struct pg_store *s, const PGresult *r, int row, int c, const char *name,
				 const char *what, const uint8_t **out)
{
	size_t n;
	const uint8_t *p = col(r, row, c, &n);

	if (PQgetisnull(r, row, c) || n != SCONE_STORE_HASH_SIZE)
		return scone_err_set(SCONE_ERR_CORRUPT, "store %s: session %s: %s is not %d bytes", s->where,
				     name, what, SCONE_STORE_HASH_SIZE);
	*out = p;
	return SCONE_ERR_OK;
}

/* ---------------- errors ---------------- */

static const struct {
	const char *prefix; /* SQLSTATE or its class */
	enum scone_err err;
} sqlstates[] = {
    {"23505", SCONE_ERR_EXISTS},  {"53100", SCONE_ERR_NO_SPACE},  {"53", SCONE_ERR_LIMIT},
    {"40", SCONE_ERR_BUSY},	  {"55P03", SCONE_ERR_BUSY},	  {"57", SCONE_ERR_BUSY},
    {"08", SCONE_ERR_BUSY},	  {"42P01", SCONE_ERR_CORRUPT},	  {"42703", SCONE_ERR_CORRUPT},
    {"22021", SCONE_ERR_INVALID}, {"54", SCONE_ERR_TOO_LARGE},	  {"42501", SCONE_ERR_PERMISSION},
    {"28", SCONE_ERR_PERMISSION}, {"25006", SCONE_ERR_READ_ONLY},
};

static enum scone_err map_state(const char *state)
{
	for (size_t i = 0; state && i < sizeof(sqlstates) / sizeof(sqlstates[0]); i++)
		if (strncmp(state, sqlstates[i].prefix, strlen(sqlstates[i].prefix)) == 0)
			return sqlstates[i].err;
	return SCONE_ERR_IO;
}

/* The first line of a libpq message (they end in newlines and may have several). */
void store_pg_first_line(const char *msg, char *out, size_t size)
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
enum scone_err __attribute__((format(printf, 3, 4)))
store_pg_err(struct pg_store *s, const PGresult *r, const char *fmt, ...)
{
	char what[320], msg[300];
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	enum scone_err err = map_state(state);
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(what, sizeof(what), fmt, ap) < 0)
		what[0] = '\0';
	va_end(ap);
	store_pg_first_line(r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r)
							    : PQerrorMessage(s->conn),
			    msg, sizeof(msg));
	if (PQstatus(s->conn) != CONNECTION_OK) {
		s->lost = true;
		s->ready = false;
		return scone_err_set(SCONE_ERR_BUSY,
				     "store %s: %s: connection to the database lost (%s); retry", s->where,
				     what, msg);
	}
	return scone_err_set(err, "store %s: %s: %s (sqlstate %s)", s->where, what, msg,
			     state ? state : "none");
}

/* ---------------- running statements ---------------- */

static PGresult *exec_p(struct pg_store *s, enum stmt_id id, const struct params *p)
{
	char name[16];

	snprintf(name, sizeof(name), "s%d", (int)id);
	return PQexecPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
			      p ? p->fmt : NULL, 1);
}

/* Run a statement that returns no rows (or ignore them); *changed (may be NULL) gets the row count. */
enum scone_err store_pg_run(struct pg_store *s, enum stmt_id id, const struct params *p, const char *what,
			    const char *name, long *changed)
{
	PGresult *r = exec_p(s, id, p);
	ExecStatusType st = PQresultStatus(r);
	enum scone_err err = SCONE_ERR_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = store_pg_err(s, r, "%s %s", what, name ? name : "");
	else if (changed)
		*changed = strtol(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return err;
}

/* Run a statement expected to return rows; *out is the result (PQclear it) on success. */
enum scone_err store_pg_query(struct pg_store *s, enum stmt_id id, const struct params *p, const char *what,
			      const char *name, PGresult **out)
{
	PGresult *r = exec_p(s, id, p);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		enum scone_err err = store_pg_err(s, r, "%s %s", what, name ? name : "");
		PQclear(r);
		return err;
	}
	*out = r;
	return SCONE_ERR_OK;
}

/* Run SQL text (no parameters), e.g. BEGIN; the last command's status decides. */
enum scone_err store_pg_exec(struct pg_store *s, const char *sql, const char *what)
{
	PGresult *r = PQexec(s->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	enum scone_err err = SCONE_ERR_OK;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		err = store_pg_err(s, r, "%s", what);
	PQclear(r);
	return err;
}

/* Run a statement that returns one bigint (a version): it goes to *v (kept if no row). */
enum scone_err store_pg_version(struct pg_store *s, enum stmt_id id, const struct params *p, const char *what,
				const char *name, int64_t *v)
{
	PGresult *r = NULL;

	SCONE_TRY(store_pg_query(s, id, p, what, name, &r));
	if (PQntuples(r) == 1)
		*v = col_i64(r, 0, 0);
	PQclear(r);
	return SCONE_ERR_OK;
}

void store_pg_saw(struct pg_store *s, int64_t version)
{
	if (version > s->seen)
		s->seen = version;
}

/* ---------------- the connection ---------------- */

void store_pg_no_notices(void *arg, const char *message)
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
		err = store_pg_err(s, r, "read synchronous_commit");
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

enum scone_err store_pg_prepare(struct pg_store *s)
{
	char name[16];

	for (int i = 0; i < P_COUNT_; i++) {
		PGresult *r;
		snprintf(name, sizeof(name), "s%d", i);
		r = PQprepare(s->conn, name, store_pg_sql[i], 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			enum scone_err err = store_pg_err(s, r, "prepare statements");
			PQclear(r);
			if (err == SCONE_ERR_CORRUPT || err == SCONE_ERR_IO)
				return scone_err_set(SCONE_ERR_CORRUPT,
						     "store %s: tables do not match the schema: %s", s->where,
						     scone_err_detail());
			return err;
		}
		PQclear(r);
	}
	return SCONE_ERR_OK;
}

/* Session settings, then the statements: after connecting and after every reset. */
enum scone_err store_pg_setup(struct pg_store *s, bool prepare)
{
	SCONE_TRY(read_durable_level(s));
	SCONE_TRY(store_pg_exec(
	    s,
	    "SET synchronous_commit TO off; SET default_transaction_isolation TO 'read committed';"
	    " SET client_min_messages TO warning; SET plan_cache_mode TO force_generic_plan",
	    "configure the connection"));
	if (prepare)
		SCONE_TRY(store_pg_prepare(s));
	s->ready = true;
	s->lost = false;
	return SCONE_ERR_OK;
}

/* Before every call: a connection found broken is reset and set up again. */
enum scone_err store_pg_ready(struct pg_store *s)
{
	char msg[300];

	if (s->ready && PQstatus(s->conn) == CONNECTION_OK)
		return SCONE_ERR_OK;
	s->ready = false;
	PQreset(s->conn);
	if (PQstatus(s->conn) != CONNECTION_OK) {
		store_pg_first_line(PQerrorMessage(s->conn), msg, sizeof(msg));
		s->lost = true;
		return scone_err_set(SCONE_ERR_BUSY, "store %s: cannot reach the database (%s); retry",
				     s->where, msg);
	}
	PQsetNoticeProcessor(s->conn, store_pg_no_notices, NULL);
	return store_pg_setup(s, true);
}

enum scone_err store_pg_retry(struct pg_store *s, read_fn fn, void *arg)
{
	enum scone_err err = SCONE_ERR_OK;

	for (int attempt = 0; attempt < 2; attempt++) {
		s->lost = false;
		err = store_pg_ready(s);
		if (err == SCONE_ERR_OK)
			err = fn(s, arg);
		if (err != SCONE_ERR_BUSY || !s->lost)
			break;
	}
	return err;
}

/* ---------------- transactions ---------------- */

enum scone_err store_pg_begin(struct pg_store *s, const char *what)
{
	char sql[96];

	SCONE_TRY(store_pg_ready(s));
	snprintf(sql, sizeof(sql), "BEGIN; SET LOCAL synchronous_commit TO %s", s->durable);
	return store_pg_exec(s, sql, what);
}

void store_pg_abort(struct pg_store *s)
{
	if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		PQclear(PQexec(s->conn, "ROLLBACK"));
}

/* The read set as array literals {"name",...} and {version,...} (names have no control characters). */
static enum scone_err read_set_arrays(const struct pg_store *s, struct scone_wbuf *names,
				      struct scone_wbuf *versions)
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
/* Not inserted: the counter went back (ROLLBACK), the chain's previous entry is gone (MISSING), or a read
 * changed (STALE). */
static enum scone_err why_not(struct pg_store *s, const struct scone_audit_row *row, bool checked)
{
	struct params p = {0};
	PGresult *r = NULL;
	bool counter_ok, prev_ok;

	p_text(&p, row->chain);
	p_int64(&p, (int64_t)row->seq);
	p_bytes(&p, row->prev, SCONE_STORE_HASH_SIZE);
	p_int64(&p, s->seen);
	SCONE_TRY(store_pg_query(s, P_AUDIT_PREV, &p, "look for the previous audit entry of chain",
				 row->chain, &r));
	counter_ok = PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 1 && PQgetvalue(r, 0, 0)[0];
	prev_ok = PQntuples(r) == 1 && PQgetlength(r, 0, 1) == 1 && PQgetvalue(r, 0, 1)[0];
	PQclear(r);
	if (!counter_ok)
		return scone_err_set(
		    SCONE_ERR_ROLLBACK,
		    "store %s: the store's change counter is below version %lld, which this CAS saw: the "
		    "store was rolled back",
		    s->where, (long long)s->seen);
	if (!prev_ok)
		return scone_err_set(
		    SCONE_ERR_MISSING,
		    "store %s: audit chain %s: entry %llu, written before, is gone or altered", s->where,
		    row->chain, (unsigned long long)(row->seq - 1));
	if (checked) {
		for (int i = 0; i < s->n_read; i++)
			store_pg_cache_drop(s, s->read_set[i].name);
		return scone_err_set(SCONE_ERR_STALE,
				     "store %s: a session read for this entry changed meanwhile", s->where);
	}
	return scone_err_set(SCONE_ERR_IO, "store %s: audit entry %llu of chain %s was not inserted",
			     s->where, (unsigned long long)row->seq, row->chain);
}

/* For a row that replaces: take out the version it replaces, if that is still the chain's last entry. */
static enum scone_err audit_drop_replaced(struct pg_store *s, const struct scone_audit_row *row)
{
	struct params p = {0};
	long changed = 0;

	p_text(&p, row->chain);
	p_int64(&p, (int64_t)row->seq);
	p_bytes(&p, row->prev, SCONE_STORE_HASH_SIZE);
	p_bytes(&p, row->replaced, SCONE_STORE_HASH_SIZE);
	p.v[p.n] = row->replaced_line; /* text, binary format (NULL: SQL NULL, not checked) */
	p.len[p.n] = (int)row->replaced_line_len;
	p.fmt[p.n++] = 1;
	SCONE_TRY(
	    store_pg_run(s, P_AUDIT_DROP_LAST, &p, "replace an audit entry of chain", row->chain, &changed));
	if (changed != 1)
		return scone_err_set(SCONE_ERR_MISSING,
				     "store %s: audit chain %s: entry %llu, written before, is gone, altered "
				     "or no longer the last",
				     s->where, row->chain, (unsigned long long)row->seq);
	return SCONE_ERR_OK;
}

/*
 * Append row if its predecessor is there (in a transaction or on its own)
 * and, with a read set, if every record read is still at its version.
 */
enum scone_err store_pg_audit_insert(struct pg_store *s, const struct scone_audit_row *row)
{
	struct params p = {0};
	struct scone_wbuf names, versions;
	bool checked = s->n_read > 0;
	long changed = 0;
	enum scone_err err = SCONE_ERR_OK;

	if (row->replaces) /* (in the caller's transaction) */
		SCONE_TRY(audit_drop_replaced(s, row));
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
		err = store_pg_run(s, checked ? P_AUDIT_CHECKED : P_AUDIT_ADD, &p,
				   "append an audit entry of chain", row->chain, &changed);
	if (err == SCONE_ERR_EXISTS)
		err = scone_err_set(
		    SCONE_ERR_MISSING,
		    "store %s: audit chain %s already has an entry %llu: the chain is ahead of its writer (a "
		    "commit whose answer was lost, or another writer on the chain)",
		    s->where, row->chain, (unsigned long long)row->seq);
	else if (err == SCONE_ERR_OK && changed == 0)
		err = why_not(s, row, checked);
	scone_wbuf_free(&names);
	scone_wbuf_free(&versions);
	return err;
}

enum scone_err store_pg_txn_start(struct pg_store *s, struct txn *t, const char *what)
{
	memset(t, 0, sizeof(*t));
	s->pending = 0;
	return store_pg_begin(s, what);
}

/* The audit entry (with a hook), then COMMIT; or ROLLBACK on any error. */
enum scone_err store_pg_txn_finish(struct pg_store *s, struct txn *t, enum scone_err err, const char *what)
{
	if (err == SCONE_ERR_OK)
		err = scone_store_audit_entry(&s->base, &t->ch, &t->row, &t->have);
	if (err == SCONE_ERR_OK && t->have)
		err = store_pg_audit_insert(s, &t->row);
	if (err == SCONE_ERR_OK)
		err = store_pg_exec(s, "COMMIT", what);
	if (err != SCONE_ERR_OK)
		store_pg_abort(s);
	else
		store_pg_saw(s, s->pending); /* committed durably: the counter can no longer go below it */
	scone_store_audit_settle(&s->base, &t->row, t->have, err);
	return err;
}
