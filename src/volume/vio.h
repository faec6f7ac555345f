/*
 * vio.h - the narrow I/O interface the volume format uses.
 *
 * Every byte the volume code reads or writes goes through a struct
 * scone_vio: a host backend over real files (with EINTR retries, O_CLOEXEC,
 * never fds 0-2) and a memory backend for ephemeral regions, unit tests,
 * fuzzing and crash simulation (it can fail the Nth write, or "crash":
 * freeze its state as it was after N writes).
 */
#ifndef SCONE_VIO_H
#define SCONE_VIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/err.h"

struct scone_vio;
struct scone_vio_file;

#define SCONE_VIO_WRITE 0x1
#define SCONE_VIO_CREATE 0x2
#define SCONE_VIO_EXCL 0x4

typedef int (*scone_vio_list_fn)(void *arg, const char *name);

struct scone_vio_ops {
	enum scone_err (*open)(struct scone_vio *io, const char *path, unsigned flags,
			       struct scone_vio_file **out);
	/* Reads up to size bytes; *got < size only at end of file. */
	enum scone_err (*pread)(struct scone_vio_file *f, void *buf, size_t size, uint64_t off, size_t *got);
	enum scone_err (*pwrite)(struct scone_vio_file *f, const void *buf, size_t size, uint64_t off);
	enum scone_err (*truncate)(struct scone_vio_file *f, uint64_t size);
	enum scone_err (*size)(struct scone_vio_file *f, uint64_t *size);
	enum scone_err (*sync)(struct scone_vio_file *f);
	void (*close)(struct scone_vio_file *f);
	enum scone_err (*unlink)(struct scone_vio *io, const char *path);
	/* Atomically replace to with from. */
	enum scone_err (*rename)(struct scone_vio *io, const char *from, const char *to);
	/* Create dir and missing parents. */
	enum scone_err (*mkdirs)(struct scone_vio *io, const char *path);
	enum scone_err (*sync_dir)(struct scone_vio *io, const char *path);
	/* Regular files directly in dir; NOT_FOUND if dir does not exist. */
	enum scone_err (*list)(struct scone_vio *io, const char *dir, scone_vio_list_fn fn, void *arg);
	void (*destroy)(struct scone_vio *io);
};

struct scone_vio {
	const struct scone_vio_ops *ops;
};

struct scone_vio_file {
	struct scone_vio *io;
};

/* The system calls of the host backend (libc's unless replaced). */
struct dirent;
struct stat;
struct __dirstream;
struct scone_vio_sys {
	int (*open)(const char *, int, ...);
	int (*close)(int);
	ssize_t (*pread)(int, void *, size_t, off_t);
	ssize_t (*pwrite)(int, const void *, size_t, off_t);
	int (*ftruncate)(int, off_t);
	int (*fstat)(int, struct stat *);
	int (*fsync)(int);
	int (*fdatasync)(int);
	int (*unlink)(const char *);
	int (*rename)(const char *, const char *);
	int (*mkdir)(const char *, mode_t);
	struct __dirstream *(*opendir)(const char *);
	struct dirent *(*readdir)(struct __dirstream *);
	int (*closedir)(struct __dirstream *);
};
/*
 * Use sys for every host file system call (NULL: libc's again). Set once,
 * before any volume is opened (the runtime passes its table of the real
 * functions: src/runtime/sys.h).
 */
void scone_vio_host_sys(const struct scone_vio_sys *sys);

/* The host file system. Shared, stateless; never destroy it. */
struct scone_vio *scone_vio_host(void);

/* A fresh, empty in-memory file system. Destroy with io->ops->destroy. */
SCONE_MUST_CHECK enum scone_err scone_vio_mem_new(struct scone_vio **out);

/*
 * Memory backend fault injection: after `writes` more mutating operations
 * (pwrite, truncate, rename, unlink), every further one fails with
 * SCONE_ERR_IO (fail_mode) or is silently dropped as if the process had
 * been killed (crash mode: state frozen). Negative writes disables.
 */
void scone_vio_mem_fail_after(struct scone_vio *io, long writes, bool crash);

/*
 * Memory backend: after `syncs` more syncs (of a file or a directory), every
 * further one fails with SCONE_ERR_IO, the bytes staying written, as a
 * kernel's page cache shows them after a failed fdatasync. Negative
 * disables.
 */
void scone_vio_mem_fail_syncs(struct scone_vio *io, long syncs);

/* Number of mutating operations so far. */
long scone_vio_mem_op_count(struct scone_vio *io);

/*
 * Memory backend: a power loss. Every file keeps what its last sync made
 * durable; writes and size changes since are lost (seed 0), or each 4 KiB
 * block and the size are kept or lost at random (other seeds), as a
 * kernel's page cache may have written some of them back. Names (creates,
 * renames, unlinks) stay as they are.
 */
SCONE_MUST_CHECK enum scone_err scone_vio_mem_lose_unsynced(struct scone_vio *io, uint64_t seed);

/* Number of syncs (of files and directories) so far. */
long scone_vio_mem_sync_count(struct scone_vio *io);

/* Deep copy of a memory backend's current state (for crash snapshots). */
SCONE_MUST_CHECK enum scone_err scone_vio_mem_clone(struct scone_vio *io, struct scone_vio **out);

#endif
