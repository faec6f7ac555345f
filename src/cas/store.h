/*
 * store.h - the CAS store interface: sessions, their generated secrets,
 * tracked volume tags and the audit log, behind an ops table. Two engines:
 * the embedded one (store_sqlite.c) and PostgreSQL (store_pg.c), shared by
 * any number of CAS replicas. scone_store_open picks one by URL.
 *
 * Contract for every engine (tests/unit/test_store.c runs the same tests
 * against both):
 * - The interface speaks plaintext; the engine keeps session bodies,
 *   secrets and volume tags sealed at rest (store.c's sealing; the key
 *   never reaches the database), so nothing secret is readable from the
 *   files or the database. The sealed forms are the same in both engines:
 *   a backup of one restores into the other.
 * - A write that returned SCONE_ERR_OK is durable (survives kill -9 of CAS
 *   and power loss, as far as the file system or the database server
 *   honours fsync) and visible to every handle opened on the same store, in
 *   this process or another, from the moment it returned: a read that
 *   starts after the write was acknowledged sees it.
 * - update/delete/put_volume_tag are compare-and-swap: they succeed only if
 *   the current hash (or tag) equals the expected one, else SCONE_ERR_CONFLICT,
 *   so two concurrent updates of one predecessor cannot both win, whichever
 *   handles, processes or machines they come from.
 * - A handle is used by one thread at a time; open one per worker thread.
 *   Several handles (threads or processes) may share one store.
 * - With an audit hook set (scone_store_set_audit), every successful write
 *   appends its audit entry in the same transaction: the entry and the write
 *   commit together or not at all.
 * - Every write that changes a session or a volume tag advances the store's
 *   change counter, which never goes back unless the store is rolled back.
 *   A handle remembers the highest value it has seen committed (its own
 *   writes, the records it read); an audit entry appended through it (on
 *   its own or with a write) commits only if the counter is not below that.
 * - Failures: NOT_FOUND, EXISTS, CONFLICT, NO_SPACE (disk full; nothing
 *   changed), CORRUPT (the files fail integrity or unsealing), ROLLBACK (the
 *   change counter went back below what this handle saw: the store was
 *   rolled back), MISSING (an audit entry's predecessor, appended earlier,
 *   is gone while the counter did not go back: deleted, or lost with the
 *   last lazily committed entries in a crash of the database; or its
 *   place is taken, by an entry whose commit seemed to fail), BUSY
 *   (locked too long, or the database connection was lost: the
 *   write may or may not have happened; the next call reconnects), STALE
 *   (see optimistic), IO.
 */
#ifndef SCONE_CAS_STORE_H
#define SCONE_CAS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define SCONE_STORE_HASH_SIZE 32

struct scone_session_rec {
	char name[129];				/* session name, NUL-terminated */
	uint8_t hash[SCONE_STORE_HASH_SIZE];	/* canonical session hash */
	uint8_t creator[SCONE_STORE_HASH_SIZE]; /* SHA-256 of the creator's SPKI */
	char *body;				/* session YAML as uploaded */
	size_t body_len;
	uint8_t *secrets; /* serialized generated secrets (opaque here) */
	size_t secrets_len;
	int64_t created; /* unix seconds */
	int64_t updated;
};

/*
 * Free body and secrets (wiped) of a record filled by a get; not rec itself.
 * Leaves rec zeroed, so clearing twice is harmless.
 */
void scone_session_rec_clear(struct scone_session_rec *rec);

struct scone_store;

/* ---- the audit log as the store keeps it ---- */

/*
 * An audit entry as stored: chains of entries, each chain written by one
 * writer in order (a CAS worker: audit.c). The store links an entry to its
 * predecessor (seq - 1 with hash prev) and keeps the signed text line
 * (audit.c's format; no secret in it) as it is.
 */
#define SCONE_AUDIT_CHAIN_MAX 64
#define SCONE_AUDIT_LINE_MAX (16u * 1024u)

struct scone_audit_row {
	char chain[SCONE_AUDIT_CHAIN_MAX + 1]; /* 1..64 bytes of [A-Za-z0-9._:/-] */
	uint64_t seq;			       /* 1 for a chain's first entry */
	uint8_t prev[SCONE_STORE_HASH_SIZE];   /* hash of entry seq - 1 (zeros for seq 1) */
	uint8_t hash[SCONE_STORE_HASH_SIZE];   /* this entry's hash */
	char *line;			       /* the signed entry, line_len bytes, no newline */
	size_t line_len;
	/*
	 * A later version of the chain's last entry (same seq and prev): it
	 * takes the place of the entry whose hash is replaced, in the same
	 * transaction, and only if that entry is still the chain's last
	 * (audit.c: a span of one runtime's tag reports). Durable writes only.
	 */
	bool replaces;
	uint8_t replaced[SCONE_STORE_HASH_SIZE];
	const char *replaced_line; /* and its line (not NULL: it must be that entry's text too) */
	size_t replaced_line_len;
};

/* What a write changed, as its audit hook sees it (pointers valid during the call). */
enum scone_store_change_kind {
	SCONE_STORE_CREATE = 1,
	SCONE_STORE_UPDATE,
	SCONE_STORE_REMOVE,
	SCONE_STORE_TAG,
};

struct scone_store_change {
	enum scone_store_change_kind kind;
	const char *session;
	const uint8_t *hash;	  /* create/update: the new hash; remove: the removed one */
	const uint8_t *previous;  /* update: the replaced hash; else NULL */
	const char *volume;	  /* tag: the volume; else NULL */
	const char *previous_tag; /* tag: the replaced tag, "" if it was not initialised */
	const char *tag;	  /* tag: the new tag (lowercase hex) */
};

/*
 * The audit hook of a handle. entry fills row with the next entry of the
 * caller's chain describing change (row->line malloc'd; the engine frees
 * it); it runs inside the write's transaction, after the compare-and-swap
 * succeeded. settled tells, after the transaction, how it ended: OK (the
 * entry was committed with the write) or the write's error (MISSING: the
 * chain's previous entry is gone; ROLLBACK), so the caller advances its chain only
 * past committed entries.
 */
struct scone_store_audit {
	enum scone_err (*entry)(void *ctx, const struct scone_store_change *change,
				struct scone_audit_row *row);
	void (*settled)(void *ctx, const struct scone_audit_row *row, enum scone_err result);
	void *ctx;
};

/* ---- raw items: backup and restore ---- */

/*
 * A stored item as it is at rest: sealed blobs are not unsealed. The sealed
 * forms are engine-independent (store.c), so items dumped from one engine
 * load into the other under the same master key.
 */
enum scone_store_item_kind {
	SCONE_ITEM_SESSION = 1,
	SCONE_ITEM_TAG,
	SCONE_ITEM_AUDIT,
};

struct scone_store_item {
	enum scone_store_item_kind kind;
	const char *name;	/* session (SESSION, TAG) */
	const uint8_t *hash;	/* SESSION: 32 bytes */
	const uint8_t *creator; /* SESSION: 32 bytes */
	const uint8_t *body;	/* SESSION: sealed */
	size_t body_size;
	const uint8_t *secrets; /* SESSION: sealed */
	size_t secrets_size;
	int64_t created, updated; /* SESSION */
	const char *volume;	  /* TAG */
	const uint8_t *tag;	  /* TAG: sealed */
	size_t tag_size;
	const struct scone_audit_row *audit; /* AUDIT */
};

#define SCONE_DUMP_SESSIONS 1u
#define SCONE_DUMP_TAGS 2u
#define SCONE_DUMP_AUDIT 4u
#define SCONE_DUMP_ALL (SCONE_DUMP_SESSIONS | SCONE_DUMP_TAGS | SCONE_DUMP_AUDIT)

/* Called for each dumped item (borrowed for the call); an error stops the dump and is returned. */
typedef enum scone_err (*scone_store_item_fn)(void *ctx, const struct scone_store_item *item);
/*
 * The items to load, one per call: fill item (pointers valid until the next
 * call) or set *end. An error stops the load (nothing loaded).
 */
typedef enum scone_err (*scone_store_source_fn)(void *ctx, struct scone_store_item *item, bool *end);

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
	enum scone_err (*remove)(struct scone_store *st, const char *name,
				 const uint8_t expected[SCONE_STORE_HASH_SIZE]);
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
	/*
	 * Append row (borrowed) on its own, outside any write. MISSING if
	 * row->seq of row->chain is taken (the chain is ahead of its writer:
	 * a commit whose answer was lost) or if seq > 1 and entry seq - 1
	 * with hash row->prev is not there; ROLLBACK if the change
	 * counter is below what this handle saw. With durable false the
	 * entry may be lost if the machine (or the database server) crashes
	 * within about a second of the return (never a crash of CAS alone),
	 * and only as the tail of everything committed: a later durable
	 * write makes it durable too.
	 */
	enum scone_err (*audit_append)(struct scone_store *st, const struct scone_audit_row *row,
				       bool durable);
	/* The last entry of chain (seq and hash); NOT_FOUND if the chain has none. */
	enum scone_err (*audit_head)(struct scone_store *st, const char *chain, uint64_t *seq,
				     uint8_t hash[SCONE_STORE_HASH_SIZE]);
	/*
	 * A consistent snapshot (one read transaction) of what the mask
	 * SCONE_DUMP_* asks for, raw: sessions in name order, then volume
	 * tags by (session, volume), then audit entries by (chain, seq).
	 * Writers go on meanwhile; fn must not use this handle.
	 */
	enum scone_err (*dump)(struct scone_store *st, unsigned what, scone_store_item_fn fn, void *ctx);
	/*
	 * Load raw items into an empty store (no session, tag or audit entry;
	 * else EXISTS), in one transaction: all or nothing. Every sealed blob
	 * must unseal for its place (else CORRUPT: another master key, or a
	 * damaged item) and every audit entry must follow its predecessor.
	 */
	enum scone_err (*load)(struct scone_store *st, scone_store_source_fn next, void *ctx);
	/*
	 * Optimistic reads on or off. An engine may ignore this (reads stay
	 * fresh, audit_append never says STALE); one whose reads cost a round
	 * trip answers get and get_volume_tag from records this handle read
	 * before, noting each record's version in the handle's read set. The
	 * next audit_append then commits only if no noted record changed
	 * meanwhile (through any handle, on any replica), else it appends
	 * nothing, forgets those records and fails STALE: the caller reads
	 * again with optimistic off and appends again. So an answer built on
	 * optimistic reads is never released on stale data, and costs one
	 * round trip (the append) when nothing changed. Turning it off (or any
	 * audit_append) empties the read set.
	 */
	void (*optimistic)(struct scone_store *st, bool on);
	/*
	 * Record that key (1..255 bytes, no control characters) of scope
	 * ("otp": a one-time password's service and time step) has been used:
	 * OK the first time, CONFLICT for every later call, from any handle,
	 * thread or process sharing the store, until expires (unix seconds),
	 * after which the record may be dropped (the caller guarantees that
	 * the key cannot be valid again by then). Durable like every write.
	 */
	enum scone_err (*use_once)(struct scone_store *st, const char *scope, const char *key,
				   int64_t expires);
	void (*close)(struct scone_store *st);
};

struct scone_store {
	const struct scone_store_ops *ops;
	struct scone_store_audit audit; /* no hook when entry is NULL */
};

/* Set (or with a NULL a, remove) the audit hook of a handle. */
void scone_store_set_audit(struct scone_store *st, const struct scone_store_audit *a);

/*
 * Open the store named by url: "sqlite:PATH" (the embedded engine; a URL
 * without a scheme is a sqlite path too) or "postgres://..." /
 * "postgresql://..." (a libpq connection URI: several CAS replicas share
 * one database). A store without a schema is created, unless flags has
 * SCONE_STORE_OPEN_EXISTING (then NOT_FOUND). Close with st->ops->close(st).
 */
#define SCONE_STORE_OPEN_EXISTING 1u
SCONE_MUST_CHECK enum scone_err scone_store_open(const char *url, const uint8_t master_key[32],
						 unsigned flags, struct scone_store **out);

/* Is url a postgres URL? (Else sqlite.) */
bool scone_store_url_is_pg(const char *url);

/*
 * Does url carry a password (postgres URI user:password@ or a password=
 * parameter)? CAS refuses those on its command line, where ps shows them:
 * libpq reads passwords from a password file (passfile=PATH, ~/.pgpass).
 */
bool scone_store_url_has_password(const char *url);

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
/* The same with flags (SCONE_STORE_OPEN_EXISTING: a missing or table-less file is NOT_FOUND). */
SCONE_MUST_CHECK enum scone_err scone_store_open_sqlite_ex(const char *path, const uint8_t master_key[32],
							   unsigned flags, struct scone_store **out);

/*
 * The PostgreSQL engine, on the database conninfo names (a libpq URI or
 * key=value string; connect_timeout defaults to 5 s). Tables scone_meta,
 * scone_sessions, scone_volume_tags and scone_audit (store_pg.c), the same
 * sealing and checks at open as the SQLite engine (schema version, key
 * check, canary). A lost connection is reset at the next call; the call
 * that lost it fails BUSY.
 */
SCONE_MUST_CHECK enum scone_err scone_store_open_pg(const char *conninfo, const uint8_t master_key[32],
						    unsigned flags, struct scone_store **out);

/* ---- shared by engines (store.c) ---- */

/* Check a name argument: 1..max bytes, no control characters. what names it. */
SCONE_MUST_CHECK enum scone_err scone_store_check_name(const char *what, const char *name, size_t max);

/* Check a record before writing it (name, sizes, non-NULL buffers). */
SCONE_MUST_CHECK enum scone_err scone_store_check_rec(const struct scone_session_rec *rec);

/* Check a tag (64 hex digits, or "" when allow_empty) and write it lowercased to out. */
SCONE_MUST_CHECK enum scone_err scone_store_norm_tag(const char *what, const char *tag_hex, bool allow_empty,
						     char out[SCONE_STORE_TAG_HEX + 1]);

/* Check an audit row's chain name, seq and line (1..SCONE_AUDIT_LINE_MAX bytes, no NUL or newline). */
SCONE_MUST_CHECK enum scone_err scone_store_check_audit_row(const struct scone_audit_row *row);

/*
 * For engines inside a write transaction: with a hook set, have it make the
 * entry for change (*have true, row filled; else *have false). After the
 * transaction, scone_store_audit_settle tells the hook and frees row->line.
 */
SCONE_MUST_CHECK enum scone_err scone_store_audit_entry(struct scone_store *st,
							const struct scone_store_change *change,
							struct scone_audit_row *row, bool *have);
void scone_store_audit_settle(struct scone_store *st, struct scone_audit_row *row, bool have,
			      enum scone_err result);

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
	const char *column;	/* "sessions.body", "sessions.secrets", "volume_tags.tag", ... */
	const char *key;	/* row key (session name) or NULL */
	const char *key2;	/* second key part (volume name) or NULL */
	const uint8_t *hash;	/* SCONE_STORE_HASH_SIZE bytes or NULL */
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

/*
 * Check a raw item before loading it: names, sizes, and that each sealed
 * blob unseals for its place (CORRUPT with the item named if not).
 */
SCONE_MUST_CHECK enum scone_err scone_store_check_item(struct scone_store_sealer *s,
						       const struct scone_store_item *item);

/*
 * Load order checks shared by the engines: audit entries of a chain come
 * together, seq 1, 2, ... each naming its predecessor's hash; a tag's
 * session was loaded before it. Start zeroed.
 */
struct scone_store_load_check {
	char chain[SCONE_AUDIT_CHAIN_MAX + 1];
	uint64_t seq;
	uint8_t hash[SCONE_STORE_HASH_SIZE];
	uint64_t sessions, tags, entries;
};
SCONE_MUST_CHECK enum scone_err scone_store_load_check_next(struct scone_store_load_check *lc,
							    const struct scone_store_item *item);

/* A session record's body and secrets as sealed for its row (malloc'd). */
struct scone_store_sealed {
	uint8_t *body, *secrets;
	size_t body_size, secrets_size;
};

/* Seal rec's body and secrets for row (rec->name, rec->hash, creator); on error out is empty. */
SCONE_MUST_CHECK enum scone_err scone_store_seal_rec(struct scone_store_sealer *s,
						     const struct scone_session_rec *rec,
						     const uint8_t *creator, struct scone_store_sealed *out);
void scone_store_sealed_free(struct scone_store_sealed *b);

/*
 * scone_store_unseal for a column read from the store at where (its path or
 * database): a blob that does not authenticate is CORRUPT, naming the row.
 */
SCONE_MUST_CHECK enum scone_err scone_store_unseal_col(struct scone_store_sealer *s, const char *where,
						       const struct scone_store_place *pl,
						       const uint8_t *blob, size_t size, uint8_t **out,
						       size_t *out_size);

/* Check a volume tag's key: its session and volume names. */
SCONE_MUST_CHECK enum scone_err scone_store_check_tag_args(const char *session, const char *volume);

/* t, or now (seconds since the epoch) when t is 0. */
int64_t scone_store_now_or(int64_t t);

/* Places of the sealed columns (the AAD of their blobs). */
void scone_store_session_place(struct scone_store_place *pl, const char *column, const char *name,
			       const uint8_t *hash, const uint8_t *creator);
void scone_store_tag_place(struct scone_store_place *pl, const char *session, const char *volume);

/* The canary sealed in every store's meta data, and the key check value (a one-way function of the key). */
#define SCONE_STORE_CANARY "scone-cas store canary v1"
#define SCONE_STORE_KEY_CHECK_SIZE 16
SCONE_MUST_CHECK enum scone_err scone_store_key_check(const uint8_t master_key[32],
						      uint8_t out[SCONE_STORE_KEY_CHECK_SIZE]);

#endif
