/*
 * pg_fixture.h - a real PostgreSQL server for unit tests: started once by
 * tests/pg_server.sh in a temporary directory (unix socket only, no TCP
 * port), a fresh database per test, stopped by PID at the end.
 *
 * Header-only (static functions) so that a test binary includes it once.
 */
#ifndef SCONE_TEST_PG_FIXTURE_H
#define SCONE_TEST_PG_FIXTURE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* (unused in a test that needs only some of them: no warning) */
#define PGFX_FN static __attribute__((unused))

static char pgfx_dir[64];
static bool pgfx_running;
static int pgfx_next_db;

PGFX_FN const char *pgfx_script(void)
{
	const char *s = getenv("SCONE_PG_SERVER_SCRIPT");

	return s ? s : "tests/pg_server.sh";
}

/* Run the script with a command; true if it exited 0. */
PGFX_FN bool pgfx_run(const char *cmd)
{
	char line[512];
	int rc;

	snprintf(line, sizeof(line), "%s %s %s >>%s/fixture.log 2>&1", pgfx_script(), cmd, pgfx_dir,
		 pgfx_dir);
	rc = system(line);
	return rc == 0;
}

/* Start the server (once); false (with a message on stderr) if it cannot start. */
PGFX_FN bool pgfx_start(void)
{
	if (pgfx_running)
		return true;
	snprintf(pgfx_dir, sizeof(pgfx_dir), "/tmp/scone-pgu-XXXXXX");
	if (!mkdtemp(pgfx_dir)) {
		perror("mkdtemp");
		return false;
	}
	if (!pgfx_run("start")) {
		char line[256];
		fprintf(stderr, "pg fixture: cannot start PostgreSQL in %s (see %s/fixture.log):\n", pgfx_dir,
			pgfx_dir);
		snprintf(line, sizeof(line), "tail -5 %s/fixture.log >&2", pgfx_dir);
		if (system(line) != 0)
			fprintf(stderr, "(no log)\n");
		return false;
	}
	pgfx_running = true;
	return true;
}

PGFX_FN void pgfx_stop(void)
{
	char line[160];

	if (!pgfx_running)
		return;
	pgfx_run("stop");
	pgfx_running = false;
	snprintf(line, sizeof(line), "rm -rf %s", pgfx_dir);
	if (system(line) != 0)
		fprintf(stderr, "pg fixture: could not remove %s\n", pgfx_dir);
}

/* Restart the server (connections are cut, as in a real restart). */
PGFX_FN bool pgfx_restart(void)
{
	return pgfx_run("restart");
}

/* The URL of database db over the unix socket. */
PGFX_FN void pgfx_url(const char *db, char *out, size_t size)
{
	snprintf(out, size, "postgresql:///%s?host=%s&port=5432&user=scone", db, pgfx_dir);
}

PGFX_FN void pgfx_quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

PGFX_FN PGconn *pgfx_connect(const char *db)
{
	char url[256];
	PGconn *c;

	pgfx_url(db, url, sizeof(url));
	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg fixture: connect %s: %s", db, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, pgfx_quiet, NULL);
	return c;
}

/* Run sql on db; true on success (the message goes to stderr otherwise). */
PGFX_FN bool pgfx_exec(const char *db, const char *sql)
{
	PGconn *c = pgfx_connect(db);
	PGresult *r;
	bool ok;

	if (!c)
		return false;
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "pg fixture: %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	return ok;
}

/* One text value of a query on db into out ("" on failure). */
PGFX_FN bool pgfx_value(const char *db, const char *sql, char *out, size_t size)
{
	PGconn *c = pgfx_connect(db);
	PGresult *r;
	bool ok;

	out[0] = '\0';
	if (!c)
		return false;
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 1;
	if (ok)
		snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
	else
		fprintf(stderr, "pg fixture: %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
	return ok;
}

/* A fresh database (name into db), with zeroblob(n) as SQLite has it, for the tampering tests. */
PGFX_FN bool pgfx_db_create(char *db, size_t size)
{
	char sql[160];

	snprintf(db, size, "t_%d_%d", (int)getpid(), pgfx_next_db++);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
	if (!pgfx_exec("postgres", sql))
		return false;
	return pgfx_exec(db, "CREATE FUNCTION zeroblob(n int) RETURNS bytea LANGUAGE sql IMMUTABLE "
			     "AS $$ SELECT decode(repeat('00', n), 'hex') $$");
}

PGFX_FN void pgfx_db_drop(const char *db)
{
	char sql[160];

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
	pgfx_exec("postgres", sql);
}

#endif
