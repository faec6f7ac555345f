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
#include <signal.h>
#include <time.h>
#include <utime.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/hex.h"
#include "runtime/io_ids.h"
#include "runtime/fdtab.h"
#include "runtime/handover.h"
#include "runtime/inject.h"
#include "runtime/shield.h"
#include "runtime/sys.h"
#include "runtime/vcache.h"
#include "volume/volume.h"

#define SHIELD_FD_MAX 16384
#define SHIELD_DEV 0x5c0e

/* A host directory by identity: any spelling of it (symbolic links, /proc/self/...) reaches it. */
struct shield_dir_id {
	dev_t dev;
	ino_t ino;
};

struct mount {
	char *path; /* normalised, absolute: the mount point (a session volume), the fspf's directory (an
		       fspf) */
	size_t len;
	char *fspf;	 /* the protection file */
	char **prefixes; /* an fspf's regions: paths under them are shielded under their own names */
	size_t n_prefixes;
	const char *name; /* image name, borrowed from cfg */
	struct scone_volume *vol;
	struct vshare *sh; /* the state every process of this program shares */
	uint8_t *key;	   /* secure memory: to reopen the volume after another process committed */
	int lock_fd;	   /* this process's own description of the mount dir, for flock */
	int plock_fd;	   /* PATH/volume.fspf.lock: the program's record locks (fcntl) */
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
	uint8_t tag[SCONE_RT_TAG_SIZE]; /* the tag CAS confirmed */
	uint8_t has_tag;
	uint8_t has_pending;		    /* the disk holds pending, which CAS has not confirmed yet */
	uint8_t pending[SCONE_RT_TAG_SIZE]; /* (reported or about to be; the next record waits for it) */
};

/*
 * A volume file or directory open in this process: an fd kind (fdtab.h,
 * fd_volume.c), its description shared by the fds dup'ed from it.
 */
struct sfd {
	struct fd_desc base; /* first: the fd table's view of it */
	struct mount *m;
	struct scone_vfile *f; /* the open file, where the volume is in this process (NULL for a directory) */
	uint64_t rh; /* the open file's handle on the volume's server, where it is served (vserver.c) */
	bool file;   /* a file, not a directory */
	unsigned vf_reopen; /* SCONE_VF_* flags to open it again (no create, exclusive or truncate) */
	char vpath[PATH_MAX];
	int flags;
	int ofd_lock; /* 1 + an own description of the lock file for OFD locks, 0: none yet */
	int off_fd;   /* 1 + the runtime's own dup of the placeholder the offset goes through, 0: none */
	unsigned
	    ph_gen; /* the placeholder may be reused after it (fd_volume.c) if this is pool_gen; 0: never */
	bool ph_moved;	/* the placeholder's offset or status flags were changed: not reused */
	bool sent;	/* sent to another process (SCM_RIGHTS): it may move the offset */
	bool off_known; /* off: the kernel description's offset, while only this process holds it */
	uint64_t off;
	unsigned mark;	/* scratch for walks over the table (shield.c) */
	bool reopen;	/* reload: to be opened again in the new volume */
	bool stale;	/* reload: another process removed the file (ESTALE) */
	bool lost;	/* a server died before committing writes to the file: the next fsync reports EIO */
	bool has_fid;	/* fid is known: the file's key in the shared read cache (vcache.h) */
	bool pinned;	/* opened from the read cache alone: its file is pinned until closed (vcache.h) */
	bool window;	/* a window's own (shield_map.c): opened by the file's id, read-write; not among open
			   files */
	bool pin_given; /* its pin let go before an exec, taken back if the exec fails */
	uint8_t fid[16];
};

extern const struct fd_kind shield_volume_kind;

/* The placeholder's name (a memfd's), by which an exec'd program recognises an inherited one. */
#define SHIELD_PLACEHOLDER "scone-shield"

/*
 * The shield's state (shield.c), set up by mounting (shield_mount.c). Read
 * without the lock only where loaded atomically (n_mounts).
 */
struct shield_state {
	struct mount *mounts;
	size_t n_mounts;
	pid_t pid;		 /* the process that mounted (or forked): another pid is a vfork child's */
	int share_fd;		 /* the memfd behind the server's and every mount's shared state */
	struct vsrv_shared *srv; /* its first part: who serves the volumes */
	bool election_held;	 /* a program exec'd by a server with clients elects before it serves */
};
extern struct shield_state shield_g;

/* The next definition of name (libc's), from the table filled at load (sys.h). */
#define REAL(name) const __typeof__(scone_sys_table.name) real_##name = SYS(name)

/*
 * The body of an fd interposer: an fd the runtime serves goes to its
 * kind's op (called as op(d, args...)), any other fd, or a kind without
 * that op, to passthrough. The description is held for the call.
 */
#define FD_OP(fd, passthrough, op, ...)                                                                      \
	do {                                                                                                 \
		struct fd_desc *d_ = shield_maybe_shielded(fd) ? fdtab_get(fd) : NULL;                       \
		__typeof__(passthrough) r_;                                                                  \
		int e_;                                                                                      \
		if (!d_)                                                                                     \
			return passthrough;                                                                  \
		if (!d_->kind->op) {                                                                         \
			(void)fdtab_put(d_);                                                                 \
			return passthrough;                                                                  \
		}                                                                                            \
		r_ = d_->kind->op(d_, ##__VA_ARGS__);                                                        \
		e_ = errno;                                                                                  \
		(void)fdtab_put(d_);                                                                         \
		errno = e_;                                                                                  \
		return r_;                                                                                   \
	} while (0)

/*
 * The body of a volume-fd interposer the shield serves itself (metadata,
 * directory listings): pass through unless fd is a volume fd; else run body
 * (with s, the entry) under the lock, the description held; a stale file
 * fails first (ESTALE).
 */
#define FD_CALL(fd, passthrough, body)                                                                       \
	do {                                                                                                 \
		struct fd_desc *d_ = shield_maybe_shielded(fd) ? fdtab_get(fd) : NULL;                       \
		struct sfd *s;                                                                               \
		ssize_t r_;                                                                                  \
		int e_;                                                                                      \
		if (d_ && d_->kind != &shield_volume_kind) {                                                 \
			(void)fdtab_put(d_);                                                                 \
			d_ = NULL;                                                                           \
		}                                                                                            \
		if (!d_)                                                                                     \
			return passthrough;                                                                  \
		s = (struct sfd *)d_;                                                                        \
		shield_enter();                                                                              \
		r_ = s->stale ? shield_fail(ESTALE) : (body);                                                \
		e_ = errno;                                                                                  \
		shield_leave();                                                                              \
		if (r_ >= 0)                                                                                 \
			e_ = errno;                                                                          \
		(void)fdtab_put(d_);                                                                         \
		errno = e_;                                                                                  \
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
/* The same, also while the shield works (the volume server's requests). */
size_t shield_mount_total(void);
struct mount *shield_mount(size_t i);
/* The program path of a shielded fd (file or directory), checked to still be its placeholder. */
bool shield_fd_program_path(int fd, char out[PATH_MAX]);
/* Note the host directory at path as m->ids[k] (left zero when there is none). */
void shield_note_dir(struct mount *m, size_t k, const char *path);
/* A copy of the volume working directory ("" when the kernel's is the one), and setting it. */
void shield_vcwd(char out[PATH_MAX]);
int shield_set_vcwd(const char *full);
/* stat of vpath in m (takes the lock): 0, or -1 with errno. */
int shield_path_stat(struct mount *m, const char *vpath, struct stat *st);
/*
 * The volume fd's entry (lock held), or NULL: not a volume fd, or closed or
 * replaced behind the runtime (its number belongs to another file now; the
 * next fdtab_get drops the entry).
 */
struct sfd *shield_fd_entry(int fd);
/* Quick check before a lookup: might fd be served (never while the shield works)? */
bool shield_maybe_shielded(int fd);
/* Is the shield working on this thread (its own calls pass through)? */
bool shield_inside(void);
/* Is fd one of the runtime's own (shared state, server sockets, flock handles), and the highest such. */
bool shield_own_fd(int fd);
int shield_own_fd_max(void);
/* fd is (own) or no longer is one of the runtime's own host-file or lock handles (shield.c). */
void shield_own_mark(int fd, bool own);
/* scone_shield_fd_up (shield.h), and marked as the runtime's own (shield_own_mark). */
int shield_own_up(int fd);
/* Close one of the runtime's own fds (its mark goes first). */
int shield_own_close(int fd);
/* A served fd dup'ed onto 0, 1 or 2: stdin/stdout/stderr become streams on it. */
void shield_std_stream(int fd);
/* SCONE_VF_* flags for open(2) flags. */
unsigned shield_vf_flags(int flags);
/* The inode number stat reports for a volume file (its id) or directory (a hash of its path). */
uint64_t shield_inode_of(const struct mount *m, const struct scone_vstat *v, const char *vpath);
/* Open vpath of m as a volume fd (lock held): the fd, or -1 with errno. */
int shield_open_locked(struct mount *m, const char *vpath, int flags, mode_t mode);
/* fstat of a volume fd (lock held). */
int shield_fstat_locked(struct sfd *s, struct stat *st);
/* The errno for err on vpath (lock held): ENOTDIR below a file, as the kernel. */
int shield_path_errno(struct mount *m, const char *vpath, enum scone_err err);
/* 0 if vpath exists in m, else the errno (lock held). */
int shield_exists_errno(struct mount *m, const char *vpath);
/* The same, taking the lock. */
int shield_exists(struct mount *m, const char *vpath);
/*
 * The volume behind a mount, wherever it lives (vops.c): in this process
 * (the library is called directly) or in the process serving it to the
 * others (each call is a request to it). Every shield operation on a
 * volume goes through these; the lock is held.
 */
SCONE_MUST_CHECK enum scone_err vop_stat(struct mount *m, const char *vpath, struct scone_vstat *st);
/* Open the file vpath into s (s->m set): s->file, and s->f or s->rh. */
SCONE_MUST_CHECK enum scone_err vop_open(struct sfd *s, const char *vpath, unsigned vf, uint32_t mode);
/* open(2)'s decision for a path of status st (stat_err when it has none): an errno, or one of these. */
enum { VOP_OPEN_FILE = 0, VOP_OPEN_DIR = -1, VOP_OPEN_STAT_ERR = -2 };
int vop_open_verdict(enum scone_err stat_err, const struct scone_vstat *st, int flags);
/*
 * Look vpath up and open it as open(2) with flags would: *opened when a
 * file was opened (st: its status where served, else unset); otherwise st
 * is the path's status (a directory, or vop_open_verdict's errno). One
 * request where served.
 */
SCONE_MUST_CHECK enum scone_err vop_open_path(struct sfd *s, const char *vpath, int flags, uint32_t mode,
					      struct scone_vstat *st, bool *opened);
void vop_close(struct sfd *s);
/* A new server, or a forked child: server handles and files are another's. */
void vop_forget_remote(struct sfd *s);
/* Fork: a pinned description pinned once more, for the child (before the fork). */
void vop_pin_more(struct sfd *s);
/* Its pin let go (its process ends without closing it: exit, exec), and taken back (the exec failed). */
void vop_pin_give(struct sfd *s);
void vop_pin_back(struct sfd *s);
/*
 * Another process than the holder: the holder's window of s's file (made
 * there with make), its memfd in *fd. *again: the holder changed (this
 * process may hold the volumes now): ask again.
 */
SCONE_MUST_CHECK enum scone_err vop_window(struct sfd *s, bool make, int *fd, bool *again);
/* Open s for reading on the file with id fid, in the process holding the volume (VP_OPEN_FID). */
SCONE_MUST_CHECK enum scone_err vop_open_fid(struct sfd *s, const uint8_t fid[16]);
SCONE_MUST_CHECK enum scone_err vop_pread(struct sfd *s, void *buf, size_t n, uint64_t off, size_t *got);
/* *written: the bytes of buf now in the file (all on success; on an error, as a short write). */
SCONE_MUST_CHECK enum scone_err vop_pwrite(struct sfd *s, const void *buf, size_t n, uint64_t off,
					   size_t *written);
SCONE_MUST_CHECK enum scone_err vop_append(struct sfd *s, const void *buf, size_t n, uint64_t *at,
					   size_t *written);
SCONE_MUST_CHECK enum scone_err vop_ftruncate(struct sfd *s, uint64_t size);
/* The server: what it answered a client goes to the shared read cache (vcache.h). */
void vop_cache_stat(struct sfd *s, const struct scone_vstat *st);
void vop_cache_data(struct sfd *s, uint64_t off, const uint8_t *data, size_t n);
SCONE_MUST_CHECK enum scone_err vop_fstat(const struct sfd *s, struct scone_vstat *st);

/*
 * Shared mappings of volume files through windows (shield_map.c). "locked":
 * the shield lock held.
 *
 * A MAP_SHARED mapping of d's file (fd): the file's window, made for a
 * writable one (ENODEV where it cannot be: another process may exist);
 * NULL for a read-only one when the file has no window (then a snapshot).
 */
void *shield_map_shared(struct fd_desc *d, void *addr, size_t len, int prot, int flags, off64_t off);
/*
 * The process holding the volumes, for another process's shared mapping of
 * s's file (VP_WINDOW, one of its handles): the file's window, made if
 * make; in *pass a dup of its memfd (an own fd: closed once sent).
 * NOT_FOUND without one and !make.
 */
SCONE_MUST_CHECK enum scone_err shield_map_serve(struct sfd *s, bool make, int *pass);
/*
 * The windows' mailbox (shield_map.c): made with the volumes' shared state,
 * or its two ends taken from a handover (fds made the runtime's own); dups
 * of them for the next program's handover (-1, -1: none).
 */
SCONE_MUST_CHECK enum scone_err shield_map_mailbox_new(void);
void shield_map_mailbox(int rd, int wr);
void shield_map_mailbox_dup(int out[2]);
/*
 * This process holds the volumes from now (lock held): the windows the last
 * holder left in the mailbox are taken over (take: other processes may map
 * them), or let go (a program exec'd alone: nobody maps them).
 */
void shield_map_holding(bool take);
/* Has file fid of mount a window here (its bytes are then not cached: stores change them unseen)? */
bool shield_map_covers(unsigned mount, const uint8_t fid[16]);
/* A read of s's file from its window: false without one. */
bool shield_map_pread_locked(struct sfd *s, void *buf, size_t n, uint64_t off, size_t *got);
/*
 * Around a change this process makes to a file of its volumes itself
 * (vops.c's local paths: its own, and the server's for other processes):
 * the file's window (-1: none) and its size before; then what was written
 * at off, or the new size.
 */
int shield_map_before(struct sfd *s, uint64_t *size);
int shield_map_before_path(struct mount *m, const char *vpath, uint64_t *size);
void shield_map_wrote(int w, const void *buf, size_t n, uint64_t off, uint64_t size_before);
void shield_map_resized(int w, uint64_t size_before, uint64_t size);
/* A local commit of m: the stores in its files' windows go into the files first (-1: they could not). */
int shield_map_commit_locked(struct mount *m);
/* Does this process have a window on a file of m (its syncs must reach the holder)? */
bool shield_map_has(const struct mount *m);
/* A fork child (a client now): the copies of windows it does not map go (the holder has them). */
void shield_map_forked(void);
/* The windows' descriptions forget their handles (a fork child, a change of the volumes' holder). */
void shield_map_forget_remote(void);
/* [addr, addr + len) was mapped over by something else (MAP_FIXED): forget window mappings there. */
void shield_map_replaced(void *addr, size_t len);
/* The lowest fd number the runtime's own fds take (the upper half of the limit). */
int shield_own_fd_floor(void);
/* The program changed its fd limit: the floor above follows it. */
void shield_own_fd_limit_changed(void);
/*
 * A small /proc or /sys file into out (NUL-terminated); false if unreadable,
 * not a regular file (a FIFO the host put there would hang the start) or
 * longer than out.
 */
bool shield_read_small(const char *path, char *out, size_t n);
SCONE_MUST_CHECK enum scone_err vop_mkdir(struct mount *m, const char *vpath, uint32_t mode);
SCONE_MUST_CHECK enum scone_err vop_remove(struct mount *m, const char *vpath, bool dir);
SCONE_MUST_CHECK enum scone_err vop_rename(struct mount *m, const char *from, const char *to);
SCONE_MUST_CHECK enum scone_err vop_truncate(struct mount *m, const char *vpath, uint64_t size);
SCONE_MUST_CHECK enum scone_err vop_chmod(struct mount *m, const char *vpath, uint32_t mode);
SCONE_MUST_CHECK enum scone_err vop_set_mtime(struct mount *m, const char *vpath, int64_t ns);
SCONE_MUST_CHECK enum scone_err vop_readdir(struct mount *m, const char *vpath, scone_readdir_fn fn,
					    void *arg);
/* Is s's file still open (not stale after its volume moved on without it)? */
bool vop_is_open(const struct sfd *s);

/* ---- a program's volumes served by one of its processes (vserver.c) ---- */

enum vrole {
	VR_NONE = 0, /* no volume */
	VR_SERVER,   /* this process holds the volumes (and serves the others, if any) */
	VR_CLIENT,   /* another process holds them: every operation is a request to it */
};

/* A file of a mount (shield_file_id) written through a server: see struct vsrv_shared. */
struct vsrv_file {
	uint64_t id;
	uint64_t epoch; /* lost[]: the server epoch that lost its writes */
	uint32_t mount;
	uint32_t seen; /* lost[]: an fsync reported it (a description opened later no longer gets it) */
};

#define VSRV_DIRTY_MAX 64
#define VSRV_LOST_MAX 128
#define VSRV_PROCS_MAX 1024

/* A process of the program that maps the shared state (procs[]): ended with the program's crash. */
struct vsrv_proc {
	int32_t pid;
	uint32_t pad;
	uint64_t
	    start; /* its start time (/proc/PID/stat): a pid taken again by another process does not match */
};

/*
 * In the memfd every process of the program maps: who serves, and how to
 * join it. And which files a server's death leaves with lost writes: the
 * server notes a file in dirty[] before it acknowledges a write to it and
 * forgets a mount's files once that mount is committed; the process elected
 * after a server died moves what the dead one had noted to lost[], and
 * every process then marks its open descriptions of those files, whoever
 * wrote them, so that their next fsync reports EIO (as a kernel reports a
 * failed writeback to every description of the file).
 *
 * A server that dies with anything acknowledged and not committed (changed,
 * n_dirty) is a crash of the whole program: the process elected after it
 * ends every process in procs[] and itself (vserver.c, crash_program), as the
 * machine's crash would, so that no process acts on a state that is gone.
 * The EIO reports remain for a process that cannot be ended (not in
 * procs[], another user).
 */
struct vsrv_shared {
	uint64_t epoch; /* a new server, a new epoch */
	int32_t pid;	/* the serving process */
	int32_t pad;
	uint64_t pid_start;	 /* its start time: a later holder of its pid is not it */
	char name[64];		 /* its listening socket (abstract) */
	uint8_t token[32];	 /* a joining process proves with it that it is the program's */
	uint64_t retired_epoch;	 /* the last server that left after its final commit (vsrv_retire) */
	uint32_t n_dirty;	 /* written since the mount's last commit (by the serving process) */
	uint32_t n_lost;	 /* lost with dead servers (written by the process elected after one) */
	uint64_t dirty_overflow; /* more files than dirty[] holds: bit i for mount i (63: any other) */
	uint64_t lost_all_epoch; /* lost[] overflowed: every file is lost from this epoch on (0: none) */
	uint64_t changed;	 /* bit i: mount i changed since its last commit (63: any other) */
	struct vsrv_file dirty[VSRV_DIRTY_MAX];
	struct vsrv_file lost[VSRV_LOST_MAX];
	struct vsrv_proc procs[VSRV_PROCS_MAX];
};

struct vp_msg;
enum vrole vsrv_role(void);
/* Is this process the program's only one (it holds the volumes; no other process can exist yet)? */
bool vsrv_alone(void);
/* Is fd one of the volume server's or client's own sockets (close_range steps around them)? */
bool vsrv_own_fd(int fd);
/* The highest of them (-1: none). */
int vsrv_own_fd_max(void);
/*
 * Serve the volumes this process holds (a fresh program: new token), lock
 * held. The serving thread starts now if processes may be waiting to join
 * (joiners), else at the first child (vsrv_serving_start).
 */
SCONE_MUST_CHECK enum scone_err vsrv_serve(struct vsrv_shared *srv, bool fresh, bool joiners);
/* Before this process may make a child (fork, spawn, vfork): the serving thread runs, if it serves. */
SCONE_MUST_CHECK enum scone_err vsrv_serving_start(void);
/* A new connection for another process; *peer is its end (inheritable). Lock held. */
SCONE_MUST_CHECK enum scone_err vsrv_new_conn(int *peer);
/* fork (lock held through all three). */
void vsrv_fork_prepare(void);
void vsrv_fork_parent(void);
void vsrv_fork_child(void);
/* A program exec'd beside the server: a client over the inherited connection fd. */
void vsrv_use_conn(struct vsrv_shared *srv, int fd);
/*
 * One request to the server (lock held); data in the answer appended to out
 * (may be NULL). When the server was gone, a new one was elected and
 * *again is set: do the operation again (this process may serve now).
 */
SCONE_MUST_CHECK enum scone_err vsrv_call(const struct vp_msg *q, struct vp_msg *a, struct scone_wbuf *out,
					  bool *again);
/* As vsrv_call; an fd the answer carries (VP_WINDOW) to *passed (-1: none), close-on-exec. */
SCONE_MUST_CHECK enum scone_err vsrv_call_taking(const struct vp_msg *q, struct vp_msg *a,
						 struct scone_wbuf *out, bool *again, int *passed);
/* A request without an answer (VP_CLOSE_NO_ANSWER); a gone server is not an error worth more. */
SCONE_MUST_CHECK enum scone_err vsrv_send(const struct vp_msg *q);
SCONE_MUST_CHECK enum scone_err vsrv_call_fd(const struct vp_msg *q, struct vp_msg *a, struct scone_wbuf *out,
					     int pass_fd);
/*
 * Before a child that shares this memory (vfork, a spawn): a client whose
 * server left elects now (lock not held), as the child cannot.
 */
void vsrv_ensure_server(void);
/* Join the server through its listening socket (lock held): a client from now on. */
SCONE_MUST_CHECK enum scone_err vsrv_join(struct vsrv_shared *srv);
/* The server's last commit was made (exit): it serves and changes nothing more. Lock held. */
void vsrv_retire(void);
bool vsrv_retired(void);
/* The serving process: a write to m's file vpath is about to be acknowledged (not yet committed). */
void vsrv_note_dirty(const struct mount *m, const char *vpath);
/* The serving process: m is committed; its files have no uncommitted write. */
void vsrv_note_committed(const struct mount *m);
/* m has a change not committed yet (sets m->dirty; noted in the shared state by the server). */
void shield_mark_dirty(struct mount *m);
/* This process maps the shared state srv: list it in srv->procs (ended with a crash of the program). */
void vsrv_register(struct vsrv_shared *srv);
/* Elected after the server of epoch dead died: what it had noted and not committed is lost (flock held). */
void vsrv_lose_dirty(uint64_t dead);
/* The server (pid dead) died without exit or exec: end the program's processes and this one. */
_Noreturn void vsrv_crash_program(int32_t dead, bool changes);
/* Does the serving process still run (a zombie, killed and not yet reaped, does not)? */
bool vsrv_server_runs(pid_t pid);
/* A process's start time (/proc/PID/stat), 0 when it cannot be read. */
uint64_t vsrv_proc_start(pid_t pid);
/* Did a server that died at or after epoch since lose writes to m's file vpath? */
bool vsrv_file_lost(const struct mount *m, const char *vpath, uint64_t since);
/*
 * An fsync of m's file vpath is about to report a loss, or asks whether one
 * is unreported: marks the file's losses seen; true if one was not (as a
 * kernel reports a writeback error nobody has seen to a description opened
 * after it: a PostgreSQL backend opens a WAL segment only to flush it).
 */
bool vsrv_file_loss_unseen(const struct mount *m, const char *vpath);
/* Has every change of m any process was answered been committed (a client's fsync then asks nothing)? */
bool vsrv_all_committed(const struct mount *m);
/* The serving process keeps vpath's file open (it leaves the namespace while pinned; vcache.h). */
void vsrv_keep(struct mount *m, const char *vpath, const uint8_t fid[16]);
/* The file kept for a pin with id fid, or NULL; kept files no pin holds any more are closed. */
struct scone_vfile *vsrv_kept(const struct mount *m, const uint8_t fid[16]);
/* Does this process serve other processes (or may it: it made a child since it serves)? */
bool vsrv_serving_others(void);
/* Commit m where it is held (shield_commit asks the server when this process is served). */
SCONE_MUST_CHECK enum scone_err shield_commit_local(struct mount *m);
SCONE_MUST_CHECK enum scone_err vop_sync(struct mount *m);
/* What vserver.c needs of the shield (shield.c). */
int shield_election_fd(void);
enum scone_err shield_reopen_volumes(void);
/*
 * The server is gone; lost: it died with writes of this process it had not
 * committed; since: the epoch this process knew (files that servers dead
 * from then on lost writes to, whoever wrote them). Their next fsync fails.
 */
void shield_forget_remote(bool lost, uint64_t since);
size_t shield_mount_index(const struct mount *m);

/* Set errno from e (EIO when it has no errno) and return -1. */
int shield_fail_err(enum scone_err e);
/* Commit m and report its new tag (lock held); prints what failed. */
enum scone_err shield_commit(struct mount *m);
/* After m's record: its tag is pending and its report goes out (lock held); m's tag is one CAS knows. */
enum scone_err shield_report(struct mount *m);
void shield_know_tag(struct mount *m, const uint8_t tag[SCONE_RT_TAG_SIZE]);
/* Make CAS confirm m's (every volume's) pending tag (lock held; shield_report.c). */
enum scone_err shield_report_settle(struct mount *m);
enum scone_err shield_report_settle_all(void);
/* The mount's own flock description (opened when first needed); and mounting's part in fork and exit. */
int shield_lock_fd(struct mount *m);
void shield_at_prepare(void);
void shield_at_parent(void);
void shield_at_child(void);
/* fork: the open descriptions are shared with the other process now; a child drops the kept placeholders. */
void shield_placeholders_forked(bool child);
/* Close the kept placeholders (lock held): the program's fds run short. */
void shield_placeholders_drain(void);
/*
 * Take the shield's lock, waiting as shield_enter does, unless this thread
 * holds it or waits for it already (false: a signal handler interrupted
 * this thread's own shield call, which a wait would deadlock).
 */
bool shield_enter_unless_mine(void);
void shield_exit(void);
/*
 * A shielded fd's file offset (a directory's: its next entry), kept in the
 * placeholder's kernel description, read and moved through s's own dup of
 * it; false (EBADF) once another thread closed the fd before the first.
 */
bool shield_off_get(struct sfd *s, int fd, uint64_t *off);
/* The open flags of the session's volumes (SCONE_VOLUME_REDO; shield_mount.c). */
unsigned shield_volume_flags(void);
/* An lseek that leaves a kept offset where it is, answered without a system call (fd_volume.c). */
int64_t shield_lseek_kept(int fd, int64_t off, int whence, bool *done);
void shield_off_set(struct sfd *s, int fd, uint64_t off);

#endif
