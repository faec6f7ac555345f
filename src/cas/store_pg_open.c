/*
 * store_pg_open.c - opening a PostgreSQL store: connect (libpq defaults for
 * a CAS before the URI's own settings), create the schema in an empty
 * database once (under an advisory lock), check the schema version, the
 * master key (key check value) and the sealed canary, prepare the
 * statements. Design notes: store_pg.c.
 */
#include "store_pg_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "lib/crypto.h"

/* One-time uses (OTP codes: a service's hash and a time step, nothing secret); added to older databases at open. */
#define USED_ONCE_SQL                                                                                        \
	"CREATE TABLE IF NOT EXISTS scone_used_once(scope text COLLATE \"C\" NOT NULL, key text COLLATE \"C\" NOT NULL," \
	" expires bigint NOT NULL, PRIMARY KEY(scope, key));"

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
    " hash bytea NOT NULL, line text NOT NULL, PRIMARY KEY(chain, seq));" USED_ONCE_SQL;


/* ---------------- open ---------------- */

/* Run one parameterless query and keep its result (PQclear it). */
static enum scone_err query_sql(struct pg_store *s, const char *sql, const char *what, PGresult **out)
{
	PGresult *r = PQexecParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 1);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		enum scone_err err = store_pg_err(s, r, "%s", what);
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
		err = store_pg_err(s, r, "write the store's meta data");
	PQclear(r);
	free(blob);
	return err;
}

/* An empty database: the schema, once, whoever else starts at the same moment. */
static enum scone_err schema_create(struct pg_store *s)
{
	bool exists = false;
	enum scone_err err;

	SCONE_TRY(store_pg_exec(s, "BEGIN; SET LOCAL synchronous_commit TO on;"
			      " SELECT pg_advisory_xact_lock(7204311902446187118)",
			   "begin creating the schema"));
	err = has_schema(s, &exists);
	if (err == SCONE_ERR_OK && !exists) {
		err = store_pg_exec(s, schema_sql, "create the schema");
		if (err == SCONE_ERR_OK)
			err = write_meta(s);
	}
	if (err == SCONE_ERR_OK)
		err = store_pg_exec(s, "COMMIT", "commit the schema");
	if (err != SCONE_ERR_OK)
		store_pg_abort(s);
	return err;
}

/* meta[key] into *out (PQclear it); NOT_FOUND if absent. */
static enum scone_err read_meta(struct pg_store *s, const char *key, PGresult **out)
{
	const char *v[1] = {key};
	PGresult *r = PQexecParams(s->conn, "SELECT value FROM scone_meta WHERE key = $1", 1, NULL, v, NULL, NULL, 1);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		enum scone_err err = store_pg_err(s, r, "read the store's %s", key);
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
		store_pg_first_line(PQerrorMessage(s->conn), msg, sizeof(msg));
		return scone_err_set(SCONE_ERR_NETWORK, "store: cannot connect to the database: %s", msg);
	}
	PQsetNoticeProcessor(s->conn, store_pg_no_notices, NULL);
	snprintf(s->where, sizeof(s->where), "postgres %s:%s/%s", PQhost(s->conn), PQport(s->conn), PQdb(s->conn));
	SCONE_TRY(store_pg_setup(s, false));
	SCONE_TRY(has_schema(s, &exists));
	if (!exists && (flags & SCONE_STORE_OPEN_EXISTING))
		return scone_err_set(SCONE_ERR_NOT_FOUND, "store %s has no scone tables: it was never created",
				     s->where);
	if (!exists)
		SCONE_TRY(schema_create(s));
	SCONE_TRY(schema_check(s));
	SCONE_TRY(key_check(s));
	SCONE_TRY(store_pg_exec(s, USED_ONCE_SQL, "add the table of one-time uses"));
	return store_pg_prepare(s);
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
	s->base.ops = &store_pg_ops;
	snprintf(s->where, sizeof(s->where), "postgres");
	err = scone_store_sealer_new(master_key, &s->sealer);
	if (err == SCONE_ERR_OK)
		err = scone_store_key_check(master_key, s->key_check);
	if (err == SCONE_ERR_OK)
		err = open_checked(s, conninfo, flags);
	if (err != SCONE_ERR_OK) {
		store_pg_destroy(s);
		return err;
	}
	*out = &s->base;
	return SCONE_ERR_OK;
}
