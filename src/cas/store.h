/*
 * store.h - the CAS store interface: sessions, their generated secrets and
 * tracked volume tags, behind an ops table so that a replicated engine can
 * replace the embedded one (store_sqlite.c) later.
 *
 * Contract for every engine:
 * - The interface speaks plaintext; the engine keeps session bodies and
 *   secrets sealed at rest (nothing secret readable from the files).
 * - A write that returned SCONE_ERR_OK is durable (survives kill -9 and power
 *   loss as far as the file system honours fsync).
 * - update/delete/put_volume_tag are compare-and-swap: they succeed only if
 *   the current hash (or tag) equals the expected one, else SCONE_ERR_CONFLICT,
 *   so two concurrent updates of one predecessor cannot both win.
 * - A handle is used by one thread at a time; open one per worker thread.
 *   Several handles (threads or processes) may share one store.
 * - Failures: NOT_FOUND, EXISTS, CONFLICT, NO_SPACE (disk full; nothing
 *   changed), CORRUPT (the files fail integrity or unsealing), IO.
 */
#ifndef SCONE_CAS_STORE_H
#define SCONE_CAS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define SCONE_STORE_HASH_SIZE 32

struct scone_session_rec {
	char name[129];                         /* session name, NUL-terminated */
	uint8_t hash[SCONE_STORE_HASH_SIZE];    /* canonical session hash */
	uint8_t creator[SCONE_STORE_HASH_SIZE]; /* SHA-256 of the creator's SPKI */
	char *body;                             /* session YAML as uploaded */
	size_t body_len;
	uint8_t *secrets;                       /* serialized generated secrets (opaque here) */
	size_t secrets_len;
	int64_t created;                        /* unix seconds */
	int64_t updated;
};

/* Free body and secrets (wiped) of a record filled by a get; not rec itself. */
void scone_session_rec_clear(struct scone_session_rec *rec);

struct scone_store;

/* Called for each listed session; return non-zero to stop. */
typedef int (*scone_store_list_fn)(void *ctx, const char *name, const uint8_t hash[SCONE_STORE_HASH_SIZE]);

struct scone_store_ops {
	/* Fill rec (body and secrets heap-allocated). NOT_FOUND if absent. */
	enum scone_err (*get)(struct scone_store *st, const char *name, struct scone_session_rec *rec);
	/* Insert; EXISTS if the name is taken. */
	enum scone_err (*create)(struct scone_store *st, const struct scone_session_rec *rec);
	/* Replace name's record if its hash is expected; keeps creator and created. */
	enum scone_err (*update)(struct scone_store *st, const struct scone_session_rec *rec,
				 const uint8_t expected[SCONE_STORE_HASH_SIZE]);
	/* Remove name (and its volume tags) if its hash is expected. */
	enum scone_err (*remove)(struct scone_store *st, const char *name, const uint8_t expected[SCONE_STORE_HASH_SIZE]);
	/* Sessions created by creator, in name order. */
	enum scone_err (*list)(struct scone_store *st, const uint8_t creator[SCONE_STORE_HASH_SIZE],
			       scone_store_list_fn fn, void *ctx);
	/* Volume tag tracked for (session, volume): tag_hex gets "" if not yet initialised. */
	enum scone_err (*get_volume_tag)(struct scone_store *st, const char *session, const char *volume,
					 char tag_hex[65]);
	/* Set the tag if the current one equals expected_hex ("" = uninitialised); else CONFLICT. */
	enum scone_err (*put_volume_tag)(struct scone_store *st, const char *session, const char *volume,
					 const char *expected_hex, const char *tag_hex);
	/* Number of sessions. */
	enum scone_err (*count)(struct scone_store *st, uint64_t *out);
	void (*close)(struct scone_store *st);
};

struct scone_store {
	const struct scone_store_ops *ops;
};

/*
 * The embedded engine: SQLite in WAL mode with synchronous=FULL at path.
 * Session bodies and secrets are sealed with AES-256-GCM under keys derived
 * from master_key, bound to the row (name and column) so that blobs cannot be
 * swapped between rows. Opening checks the schema, runs a quick integrity
 * check and unseals a canary; any failure is SCONE_ERR_CORRUPT (or AUTH for
 * a wrong master key) with detail, and the files are left as they are.
 * Creates the database if it does not exist.
 */
SCONE_MUST_CHECK enum scone_err scone_store_open_sqlite(const char *path, const uint8_t master_key[32],
							struct scone_store **out);

#endif
