/*
 * store_pg_internal.h - what the three files of the PostgreSQL store share
 * (store_pg.c: the ops; store_pg_conn.c: statements, the connection,
 * transactions and audit inserts; store_pg_open.c: the schema and opening).
 * The design notes are at the top of store_pg.c.
 */
#ifndef SCONE_CAS_STORE_PG_INTERNAL_H
#define SCONE_CAS_STORE_PG_INTERNAL_H

#include <endian.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "store.h"

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
	P_ONCE_PURGE,
	P_ONCE_INSERT,
	P_AUDIT_DROP_LAST,
	P_COUNT_,
};

extern const char *const store_pg_sql[P_COUNT_];
extern const struct scone_store_ops store_pg_ops;

/* A record this handle read, with its volume tags, as of version. */
struct cached {
	int64_t version;
	struct scone_session_rec rec; /* owned; wiped when dropped */
	size_t n_tags;
	struct cached_tag {
		char volume[SCONE_STORE_VOLUME_MAX + 1];
		char tag[SCONE_STORE_TAG_HEX + 1];
	} * tags;
};

struct noted {
	char name[SCONE_STORE_NAME_MAX + 1];
	int64_t version;
};

struct pg_store {
	struct scone_store base;
	PGconn *conn;
	char where[200];  /* "host:port/db" for messages (never a password) */
	char durable[24]; /* synchronous_commit for writes: "on" or the server's stricter level */
	struct scone_store_sealer *sealer;
	uint8_t key_check[SCONE_STORE_KEY_CHECK_SIZE];
	bool ready;	 /* connection set up and statements prepared */
	bool lost;	 /* the last call found the connection broken */
	bool optimistic; /* reads may come from the cache and go into the read set */
	int64_t seen;	 /* the highest version this handle read or committed */
	int64_t pending; /* the version the open write transaction took */
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

static inline struct pg_store *pg(struct scone_store *st)
{
	return (struct pg_store *)st;
}

/* Parameters of a prepared statement: text (NUL-terminated), bytes, int8 (binary, big-endian). */
static inline void p_text(struct params *p, const char *s)
{
	p->v[p->n] = s;
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static inline void p_bytes(struct params *p, const void *b, size_t n)
{
	p->v[p->n] = n ? (const char *)b : "";
	p->len[p->n] = (int)n;
	p->fmt[p->n++] = 1;
}

static inline void p_int64(struct params *p, int64_t x)
{
	p->be[p->n] = htobe64((uint64_t)x);
	p->v[p->n] = (const char *)&p->be[p->n];
	p->len[p->n] = 8;
	p->fmt[p->n++] = 1;
}

/* A column of a binary result: its bytes and length. */
static inline const uint8_t *col(const PGresult *r, int row, int c, size_t *len)
{
	*len = (size_t)PQgetlength(r, row, c);
	return (const uint8_t *)PQgetvalue(r, row, c);
}

/* A binary int8 column (NULL or another size reads as 0: columns are NOT NULL bigint). */
static inline int64_t col_i64(const PGresult *r, int row, int c)
{
	uint64_t v = 0;

	if (PQgetlength(r, row, c) == 8)
		memcpy(&v, PQgetvalue(r, row, c), 8);
	return (int64_t)be64toh(v);
}

/* A write transaction and the audit entry that commits with it. */
struct txn {
	struct scone_store_change ch;
	struct scone_audit_row row;
	bool have;
};

/* A read, retried once if it found the connection lost (reads change nothing). */
typedef enum scone_err (*read_fn)(struct pg_store *s, void *arg);

/* ---- store_pg_conn.c ---- */

SCONE_MUST_CHECK enum scone_err store_pg_col_hash(struct pg_store *s, const PGresult *r, int row, int c,
						  const char *name, const char *what, const uint8_t **out);
/* First line of a libpq message into out. */
void store_pg_first_line(const char *msg, char *out, size_t size);
/* Detail "store WHERE: WHAT: message (sqlstate)"; a lost connection is BUSY and marks s for a reset. */
enum scone_err store_pg_err(struct pg_store *s, const PGresult *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A prepared statement without rows to read (*changed: rows affected, may be NULL). */
SCONE_MUST_CHECK enum scone_err store_pg_run(struct pg_store *s, enum stmt_id id, const struct params *p,
					     const char *what, const char *name, long *changed);
/* A prepared statement with rows: *out (PQclear it). */
SCONE_MUST_CHECK enum scone_err store_pg_query(struct pg_store *s, enum stmt_id id, const struct params *p,
					       const char *what, const char *name, PGresult **out);
/* A prepared statement returning one bigint (a version) into *v. */
SCONE_MUST_CHECK enum scone_err store_pg_version(struct pg_store *s, enum stmt_id id, const struct params *p,
						 const char *what, const char *name, int64_t *v);
/* SQL text without parameters (BEGIN, COMMIT, several statements). */
SCONE_MUST_CHECK enum scone_err store_pg_exec(struct pg_store *s, const char *sql, const char *what);
/* Note a committed version this handle saw (the change counter may not go below it). */
void store_pg_saw(struct pg_store *s, int64_t version);
void store_pg_no_notices(void *arg, const char *message);
SCONE_MUST_CHECK enum scone_err store_pg_prepare(struct pg_store *s);
/* Session settings (and the statements, with prepare). */
SCONE_MUST_CHECK enum scone_err store_pg_setup(struct pg_store *s, bool prepare);
/* Before every call: reset a connection found broken. */
SCONE_MUST_CHECK enum scone_err store_pg_ready(struct pg_store *s);
SCONE_MUST_CHECK enum scone_err store_pg_retry(struct pg_store *s, read_fn fn, void *arg);
SCONE_MUST_CHECK enum scone_err store_pg_begin(struct pg_store *s, const char *what);
void store_pg_abort(struct pg_store *s);
/* Append row if its predecessor is there, the counter did not go back and (read set) nothing read changed. */
SCONE_MUST_CHECK enum scone_err store_pg_audit_insert(struct pg_store *s, const struct scone_audit_row *row);
SCONE_MUST_CHECK enum scone_err store_pg_txn_start(struct pg_store *s, struct txn *t, const char *what);
/* The audit entry (with a hook), then COMMIT; or ROLLBACK on any error. */
SCONE_MUST_CHECK enum scone_err store_pg_txn_finish(struct pg_store *s, struct txn *t, enum scone_err err,
						    const char *what);

/* ---- store_pg.c ---- */

/* Forget name's record in the read cache. */
void store_pg_cache_drop(struct pg_store *s, const char *name);
/* Free a handle (its cache wiped) on a failed open or at close. */
void store_pg_destroy(struct pg_store *s);

#endif
