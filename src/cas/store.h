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

#include <stdbool.h>
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

/*
 * Free body and secrets (wiped) of a record filled by a get; not rec itself.
 * Leaves rec zeroed, so clearing twice is harmless.
 */
void scone_session_rec_clear(struct scone_session_rec *rec);

struct scone_store;

/* Called for each listed session; return non-zero to stop. */
typedef int (*scone_store_list_fn)(void *ctx, const char *name, const uint8_t hash[SCONE_STORE_HASH_SIZE]);

/*
 * Limits and argument rules (every engine, checked by store.c's helpers):
 * session names 1..128 bytes, volume names 1..255 bytes, neither with
 * control characters (they appear in error details); body and secrets at
 * most SCONE_STORE_BLOB_MAX bytes each; tags exactly 64 hex digits (either
 * case; stored and compared lowercase). A violation is SCONE_ERR_INVALID
 * (TOO_LARGE for sizes).
 */
#define SCONE_STORE_NAME_MAX 128
#define SCONE_STORE_VOLUME_MAX 255
#define SCONE_STORE_BLOB_MAX (64u * 1024u * 1024u)
#define SCONE_STORE_TAG_HEX 64

struct scone_store_ops {
	/*
	 * Fill rec (body and secrets heap-allocated, each followed by a NUL
	 * byte not counted in its length; free with scone_session_rec_clear).
	 * rec is overwritten, not freed first; on failure it is left zeroed.
	 * NOT_FOUND if absent; CORRUPT (detail names session and column) if a
	 * stored blob fails to unseal.
	 */
	enum scone_err (*get)(struct scone_store *st, const char *name, struct scone_session_rec *rec);
	/*
	 * Insert; EXISTS if the name is taken. created/updated of 0 mean "now".
	 */
	enum scone_err (*create)(struct scone_store *st, const struct scone_session_rec *rec);
	/*
	 * Replace name's record (hash, body, secrets) if its hash is expected;
	 * keeps creator and created, sets updated (rec->updated, 0 = now).
	 * NOT_FOUND if absent, CONFLICT if the hash differs.
	 */
	enum scone_err (*update)(struct scone_store *st, const struct scone_session_rec *rec,
				 const uint8_t expected[SCONE_STORE_HASH_SIZE]);
	/* Remove name (and its volume tags) if its hash is expected. */
	enum scone_err (*remove)(struct scone_store *st, const char *name, const uint8_t expected[SCONE_STORE_HASH_SIZE]);
	/*
	 * Sessions created by creator, in name order. fn may use other ops of
	 * the same handle except list (and writes would wait on this read).
	 */
	enum scone_err (*list)(struct scone_store *st, const uint8_t creator[SCONE_STORE_HASH_SIZE],
			       scone_store_list_fn fn, void *ctx);
	/* Volume tag tracked for (session, volume): tag_hex gets "" if not yet initialised. */
	enum scone_err (*get_volume_tag)(struct scone_store *st, const char *session, const char *volume,
					 char tag_hex[65]);
	/*
	 * Set the tag if the current one equals expected_hex ("" = uninitialised);
	 * else CONFLICT. NOT_FOUND if the session does not exist.
	 */
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
 * The embedded engine: SQLite in WAL mode with synchronous=FULL at path
 * (plus path-wal and path-shm; the file is created 0600). Session bodies,
 * secrets and volume tags are sealed with AES-256-GCM under a key derived
 * from master_key, bound to the row (name, hash, creator) and column so
 * that blobs cannot be swapped between rows and an edited hash or creator
 * is caught. Opening creates the schema in a file without tables (a new or
 * empty file), else checks the schema version, runs PRAGMA quick_check
 * (~90 ms at 100k sessions) and unseals a canary: a wrong master key is
 * SCONE_ERR_AUTH ("master key does not match this store"), a damaged or
 * foreign file SCONE_ERR_CORRUPT with sqlite's message in the detail, and
 * the files are left as they are. quick_check does not compare indexes
 * with their table: a damaged index entry can make a session NOT_FOUND
 * rather than CORRUPT. Busy waits up to 5 s, then SCONE_ERR_BUSY.
 * Close with st->ops->close(st).
 */
SCONE_MUST_CHECK enum scone_err scone_store_open_sqlite(const char *path, const uint8_t master_key[32],
							struct scone_store **out);

/* ---- shared by engines (store.c) ---- */

/* Check a name argument: 1..max bytes, no control characters. what names it. */
SCONE_MUST_CHECK enum scone_err scone_store_check_name(const char *what, const char *name, size_t max);

/* Check a record before writing it (name, sizes, non-NULL buffers). */
SCONE_MUST_CHECK enum scone_err scone_store_check_rec(const struct scone_session_rec *rec);

/* Check a tag (64 hex digits, or "" when allow_empty) and write it lowercased to out. */
SCONE_MUST_CHECK enum scone_err scone_store_norm_tag(const char *what, const char *tag_hex, bool allow_empty,
						     char out[SCONE_STORE_TAG_HEX + 1]);

/*
 * Sealing at rest: AES-256-GCM under HKDF-SHA256(master key, info
 * "scone-cas store seal v1"); a fresh random 12-byte nonce per blob; stored
 * as nonce || tag || ciphertext. The AAD binds a blob to its place: the
 * column and every field of struct scone_store_place, so a blob copied to
 * another row or column, or a row whose hash or creator was altered, fails
 * to unseal.
 */
#define SCONE_STORE_SEAL_OVERHEAD 28

struct scone_store_place {
	const char *column;     /* "sessions.body", "sessions.secrets", "volume_tags.tag", ... */
	const char *key;        /* row key (session name) or NULL */
	const char *key2;       /* second key part (volume name) or NULL */
	const uint8_t *hash;    /* SCONE_STORE_HASH_SIZE bytes or NULL */
	const uint8_t *creator; /* SCONE_STORE_HASH_SIZE bytes or NULL */
};

struct scone_store_sealer;

/* Derive the sealing key from master_key (not kept). Free with scone_store_sealer_free. */
SCONE_MUST_CHECK enum scone_err scone_store_sealer_new(const uint8_t master_key[32],
						       struct scone_store_sealer **out);
void scone_store_sealer_free(struct scone_store_sealer *s);
/* Where the sealer keeps its key (secure memory), for tests that check it is never dumped. */
const void *scone_store_sealer_key(const struct scone_store_sealer *s);

/* Seal in (in_size bytes) for place into *out (malloc'd, in_size + overhead bytes). */
SCONE_MUST_CHECK enum scone_err scone_store_seal(struct scone_store_sealer *s,
						 const struct scone_store_place *place, const void *in,
						 size_t in_size, uint8_t **out, size_t *out_size);

/*
 * Unseal blob for place into *out (malloc'd plaintext followed by one NUL
 * byte not counted in *out_size; the caller wipes it before freeing).
 * AUTH if the blob is too short or does not authenticate for place.
 */
SCONE_MUST_CHECK enum scone_err scone_store_unseal(struct scone_store_sealer *s,
						   const struct scone_store_place *place, const uint8_t *blob,
						   size_t blob_size, uint8_t **out, size_t *out_size);

#endif
