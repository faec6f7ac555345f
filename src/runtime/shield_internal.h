/*
 * shield_internal.h - what the file-system shield's files share (shield.c:
 * mounts, the fd table, sharing between processes, locks, namespace calls,
 * directories and stdio; shield_io.c: the bytes of shielded fds;
 * shield_meta.c: modes, times, owners, links, extended attributes, file
 * systems and canonical names). Not for the rest of the runtime: shield.h
 * is its interface.
 */
#ifndef SCONE_RUNTIME_SHIELD_INTERNAL_H
#define SCONE_RUNTIME_SHIELD_INTERNAL_H

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <time.h>
#include <utime.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/hex.h"
#include "runtime/handover.h"
#include "runtime/inject.h"
#include "runtime/shield.h"
#include "runtime/sys.h"
#include "volume/volume.h"

#define SHIELD_FD_MAX 16384
#define SHIELD_DEV 0x5c0e

/* A host directory by identity: any spelling of it (symbolic links, /proc/self/...) reaches it. */
struct shield_dir_id {
	dev_t dev;
	ino_t ino;
};

struct mount {
	char *path; /* normalised, absolute: the mount point (a session volume), the fspf's directory (an fspf) */
	size_t len;
	char *fspf; /* the protection file */
	char **prefixes; /* an fspf's regions: paths under them are shielded under their own names */
	size_t n_prefixes;
	const char *name; /* image name, borrowed from cfg */
	struct scone_volume *vol;
	struct vshare *sh; /* the state every process of this program shares */
	uint64_t gen;      /* the sh->gen this process's vol reflects */
	uint8_t *key;      /* secure memory: to reopen the volume after another process committed */
	int lock_fd;       /* this process's own description of the mount dir, for flock */
	int plock_fd;      /* PATH/volume.fspf.lock: the program's record locks (fcntl) */
	bool broken;       /* a reload failed: every operation is EIO */
	uint8_t first_tag[SCONE_RT_TAG_SIZE]; /* an fspf's tag at start (a new one is printed at exit) */
	struct shield_dir_id *ids; /* the host directories at the mount's paths, by identity (n_ids) */
	size_t n_ids;
	char *real_path; /* the mount point with its symbolic links resolved, if that differs; or NULL */
	bool tracked;
	bool dirty;
	size_t open_count;
};

/*
 * A volume's state shared by every process of the program (parent, forked
 * children and the programs they exec): a MAP_SHARED memfd, one per mount.
 * Read and written under the mount's flock once processes share it.
 */
struct vshare {
	uint64_t gen; /* commits so far; a process whose copy is older reloads */
	uint8_t tag[SCONE_RT_TAG_SIZE]; /* the tag CAS knows (and the disk holds) */
	uint8_t has_tag;
};

struct sfd {
	struct mount *m;
	struct scone_vfile *f; /* NULL for a directory */
	char vpath[PATH_MAX];
	int flags;
	int refs;    /* fds sharing this open file description (dup) */
	int ofd_lock;  /* 1 + an own description of the lock file for OFD locks, 0: none yet */
	dev_t dev;   /* the placeholder memfd's identity: an fd the kernel no longer */
	ino_t ino;   /* associates with it was closed or replaced behind the shield */
	bool reopen; /* reload: to be opened again in the new volume */
	bool stale;  /* reload: another process removed the file (ESTALE) */
};

/* The next definition of name (libc's), from the table filled at load (sys.h). */
#define REAL(name) const __typeof__(scone_sys_table.name) real_##name = SYS(name)

/*
 * The body of an fd interposer: pass through unless fd is shielded; else
 * run body under the lock (stale and broken entries fail first).
 */
#define FD_CALL(fd, passthrough, body)                                                                       \
	do {                                                                                                 \
		struct sfd *s;                                                                               \
		ssize_t r_;                                                                                  \
		int e_;                                                                                      \
		if (!shield_maybe_shielded(fd))                                                                     \
			return passthrough;                                                                  \
		shield_enter();                                                                                     \
		s = shield_fd_entry(fd);                                                                            \
		if (!s) {                                                                                    \
			shield_leave();                                                                             \
			return passthrough;                                                                  \
		}                                                                                            \
		if (s->stale || s->m->broken)                                                                \
			r_ = shield_fail(s->stale ? ESTALE : EIO);                                                  \
		else                                                                                         \
			r_ = (body);                                                                         \
		e_ = errno;                                                                                  \
		shield_leave();                                                                                     \
		if (r_ < 0)                                                                                  \
			errno = e_;                                                                          \
		return r_;                                                                                   \
	} while (0)

void shield_enter(void);
void shield_leave(void);
/* Set errno to e and return -1. */
int shield_fail(int e);
/*
 * The mount holding path (relative to dirfd or the cwd) and its volume
 * path, or NULL (not shielded): by its spelling, and else by where the
 * kernel resolves its directory (shield_path.c).
 */
struct mount *shield_resolve(int dirfd, const char *path, char vpath[PATH_MAX]);
/* The same, also when path itself names a mount's host directory (chdir). */
struct mount *shield_resolve_dir(int dirfd, const char *path, char vpath[PATH_MAX]);
/* The program's path of vpath in m (snprintf's result). */
int shield_program_path(const struct mount *m, const char *vpath, char *out, size_t size);
/* Mounts (0 while the shield itself works: its own paths are never shielded), and mount i. */
size_t shield_mount_count(void);
struct mount *shield_mount(size_t i);
/* The program path of a shielded fd (file or directory), checked to still be its placeholder. */
bool shield_fd_program_path(int fd, char out[PATH_MAX]);
/* Note the host directory at path as m->ids[k] (left zero when there is none). */
void shield_note_dir(struct mount *m, size_t k, const char *path);
/* A copy of the volume working directory ("" when the kernel's is the one). */
void shield_vcwd(char out[PATH_MAX]);
/*
 * The shielded fd's entry (lock held), or NULL. An entry whose fd the kernel
 * no longer associates with its placeholder (closed or replaced by a raw
 * system call, close_range, a vfork child) is not returned: its number
 * belongs to another file now. Outside a vfork child (whose table is its
 * parent's) the stale entry is dropped.
 */
struct sfd *shield_fd_entry(int fd);
/* Quick check before taking the lock. */
bool shield_maybe_shielded(int fd);
/* The errno for err on vpath (lock held): ENOTDIR below a file, as the kernel. */
int shield_path_errno(struct mount *m, const char *vpath, enum scone_err err);
/* 0 if vpath exists in m, else the errno (lock held). */
int shield_exists_errno(struct mount *m, const char *vpath);
/* The same, taking the lock. */
int shield_exists(struct mount *m, const char *vpath);
/* Set errno from e (EIO when it has no errno) and return -1. */
int shield_fail_err(enum scone_err e);
/* Commit m and report its new tag (lock held); prints what failed. */
enum scone_err shield_commit(struct mount *m);
/* A shielded fd's file offset (a directory's: its next entry), kept in the placeholder's kernel description. */
uint64_t shield_off_get(int fd);
void shield_off_set(int fd, uint64_t off);

#endif
