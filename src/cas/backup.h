/*
 * backup.h - backups of a CAS store, and restores into a new store.
 *
 * A backup is a consistent snapshot (one read transaction of the store, taken
 * while CAS serves) of every session, volume tag and audit entry as they lie
 * at rest: sealed blobs stay sealed under the store's master key, which the
 * backup does not hold. The file is authenticated as a whole (HMAC-SHA256
 * under a key derived from the master key), so nothing can be dropped,
 * added, reordered or altered unnoticed. Items are engine-independent: a
 * backup of a SQLite store restores into PostgreSQL and the other way.
 *
 * File (little-endian):
 *   "SCONECASBACKUP1\n"
 *   records: u8 type, u32 length, payload
 *     1 info     JSON: {"format":1,"created":T,"engine":E,"certificate_sha256":HEX}
 *     2 session  u16 n, name, hash[32], creator[32], i64 created, i64 updated,
 *                u32 n, body (sealed), u32 n, secrets (sealed)
 *     3 tag      u16 n, session, u16 n, volume, u32 n, tag (sealed)
 *     4 audit    u16 n, chain, u64 seq, prev[32], hash[32], u32 n, line
 *     5 end      u64 sessions, u64 tags, u64 audit entries
 *   HMAC-SHA256(HKDF(master key, "scone-cas backup v1"), everything before)
 *
 * A restore loads the backup into an empty store in one transaction (all or
 * nothing), then brings forward what happened after the backup from audit
 * logs (exports or replicas' mirrors, checked entry by entry against CAS's
 * key and against the backup's chains): their entries are added, every
 * volume tag follows its chain of acknowledged updates to the newest one
 * (so a volume rolled back to its state at backup time is refused), a
 * session deleted since is deleted again, and sessions created or updated
 * since (whose documents the log does not hold) are reported.
 */
#ifndef SCONE_CAS_BACKUP_H
#define SCONE_CAS_BACKUP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cas/store.h"
#include "lib/err.h"

struct cas;

struct cas_backup_counts {
	uint64_t sessions, tags, entries;
};

/* Write a backup of st to path (via path.tmp, fsync'd, renamed; mode 0600). */
SCONE_MUST_CHECK enum scone_err cas_backup_write(struct cas *cas, struct scone_store *st, const char *path,
						 struct cas_backup_counts *counts);

struct cas_restore_opts {
	const char *backup;	 /* the backup file */
	const char *const *logs; /* audit logs written since the backup (exports or mirrors) */
	int n_logs;
	bool accept_tag_rollback; /* no logs: accept that tags changed since the backup are lost */
	FILE *report;		  /* what was brought forward, what was not (stdout) */
};

/*
 * Restore into st (empty; EXISTS otherwise), signing its own audit entries
 * with cas's identity. CORRUPT if the backup fails its MAC or an item does
 * not unseal (another master key); the store is then left empty.
 */
SCONE_MUST_CHECK enum scone_err cas_restore(struct cas *cas, struct scone_store *st,
					    const struct cas_restore_opts *o);

/*
 * Parse the records of a backup held in memory, without the MAC (for the
 * fuzzer): each item goes to fn. MALFORMED with the offset on any damage.
 */
SCONE_MUST_CHECK enum scone_err cas_backup_parse(const uint8_t *data, size_t size, scone_store_item_fn fn,
						 void *ctx);

#endif
