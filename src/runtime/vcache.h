/*
 * vcache.h - the volumes' shared read cache: plaintext blocks and file
 * status of volume files, in the memfd every process of a program maps
 * (after struct vsrv_shared), so that a process the volumes are served to
 * answers repeated reads, fstat and lseek(SEEK_END) without a round trip to
 * the server (vserver.c).
 *
 * Only the server writes it, under the shield lock: it fills entries with
 * what it read for a client and forgets them before any change to a file
 * (a write, an append) is acknowledged; a rename or removal forgets every
 * path's file id, a truncation, chmod or a new server everything (epochs).
 * Clients read entries without a lock (a sequence count per entry, checked
 * after the copy). So a client reads through the cache exactly what a
 * request would have answered at some moment during its call.
 *
 * Entries are keyed by mount, the volume file's id (random, stable across
 * renames) and block (4 KiB), in one of a set of 4 slots; a path's
 * file id is an entry too (keyed by the path's hash), so that a client
 * opens a file for reading without asking. Status and names have slots of
 * their own, so that blocks never push them out. The memfd
 * is reachable only by the program's processes (docs/runtime.md, "The
 * shared read cache"); the mapping is left out of core dumps.
 */
#ifndef SCONE_RUNTIME_VCACHE_H
#define SCONE_RUNTIME_VCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume/volume.h"

#define VCACHE_BLOCK 4096u
/* SCONE_READ_CACHE_MB's default: 1/32 of the memory the process may use (shield_mount.c), within these. */
#define VCACHE_DEFAULT_MB 64 /* (pages are taken only as entries fill) */
#define VCACHE_AUTO_MAX_MB 512
#define VCACHE_MAX_MB 4096
#define VCACHE_MAPPED ((size_t)-1) /* vcache_attach: a cache another process laid out */

/* Bytes a cache of mb MiB of blocks (rounded down to a power of two of blocks; 0: none) takes. */
size_t vcache_size(size_t mb);
/*
 * Use the cache at p (bytes long) as mapped in this process: a new one
 * (zero bytes) of mb MiB, or VCACHE_MAPPED for one laid out already (its
 * head is checked against bytes: false if it does not fit).
 */
bool vcache_attach(void *p, size_t bytes, size_t mb);

/* ---- the server (shield lock held) ---- */

/* The file's status, as a client's fstat would be answered. */
void vcache_put_stat(unsigned mount, const uint8_t id[16], const struct scone_vstat *st);
/* Data read at off: whole blocks in it, and the last one when it ends at size (the end of the file). */
void vcache_put(unsigned mount, const uint8_t id[16], uint64_t off, const uint8_t *data, size_t n,
		uint64_t size);
/* Before a change of n bytes at off of the file is acknowledged: its blocks and status. */
void vcache_forget(unsigned mount, const uint8_t id[16], uint64_t off, uint64_t n);
/* The file at vpath (any change of the namespace forgets every name). */
void vcache_put_name(unsigned mount, const char *vpath, const uint8_t id[16]);
/* Every path's file id (a rename, a removal): an open file's data stays, as the kernel's does. */
void vcache_forget_names(void);
/* Everything (a truncation, a change of status by path, a new server). */
void vcache_forget_all(void);

/* ---- any process ---- */

/* Was anything ever cached (else a change has nothing to forget)? */
bool vcache_used(void);

/* The file's status, if cached. */
bool vcache_stat(unsigned mount, const uint8_t id[16], struct scone_vstat *st);
/* The id of the file at vpath, if cached. */
bool vcache_name(unsigned mount, const char *vpath, uint8_t id[16]);
/* Is all of the file cached (its status, and every block: at most max bytes)? */
bool vcache_whole(unsigned mount, const uint8_t id[16], uint64_t max);
/* n bytes at off into buf (*got short at the end of the file), if every block is cached. */
bool vcache_read(unsigned mount, const uint8_t id[16], void *buf, size_t n, uint64_t off, size_t *got);

/*
 * Pins: a client that opens a file from the cache alone (no handle on the
 * server) pins it until it closes it; before the server removes the file
 * or renames another over it (after vcache_forget_names), it keeps a
 * pinned file open for such descriptions to ask for by id. Counters are
 * shared by files whose hashes meet (a file is kept longer, never less).
 * vcache_pin is false without a cache.
 */
bool vcache_pin(unsigned mount, const uint8_t id[16]);
void vcache_unpin(unsigned mount, const uint8_t id[16]);
bool vcache_pinned(unsigned mount, const uint8_t id[16]);

#endif
