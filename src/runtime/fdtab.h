/*
 * fdtab.h - the fds the runtime serves: one table, entries of kinds.
 *
 * Every fd the runtime serves is a real kernel fd, a *placeholder* (an
 * empty, sealed memfd for a volume file), so numbers never collide with
 * the program's and nothing done around the runtime lands anywhere. Its
 * entry here is an open file description (struct fd_desc), shared by the
 * fds dup'ed from it, with a *kind*: an ops table (volume files and
 * directories: fd_volume.c; later sockets). The interposers of each call
 * family look the fd up and call its kind; an fd without an entry is the
 * kernel's and passes through.
 *
 * Invariants (docs/runtime-fds.md):
 * - an entry is returned only while the kernel still associates its fd
 *   with the placeholder (device and inode checked at every lookup): an fd
 *   closed or replaced behind the runtime (a raw system call, close_range
 *   in a vfork child) is the kernel's, and its entry is dropped; the one
 *   exception, an lseek that changes nothing the kernel holds and touches
 *   no data, answers from the entry (fdtab_hold);
 * - a description lives while an fd or a call in flight holds it: a
 *   lookup takes a hold (fdtab_get), a call gives it back (fdtab_put), the
 *   last hold releases it through its kind;
 * - the table grows with the process's fd limit (it covers the hard
 *   limit); a placeholder it cannot track is closed and the call refused
 *   (EMFILE), never passed through;
 * - in a vfork child (whose memory, the table included, is its parent's)
 *   nothing is added or removed; its own kernel fds are its own;
 * - the table's lock is never held while a kind takes its own (close
 *   removes the entry first, then releases): no lock order to get wrong.
 */
#ifndef SCONE_RUNTIME_FDTAB_H
#define SCONE_RUNTIME_FDTAB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

struct fd_desc;
struct scone_handover;

struct fd_kind {
	const char *name;
	/*
	 * Lookups skip the identity check (an fstat per call). Only for kinds
	 * where a stale entry can do no harm beyond failing the call: a socket
	 * whose calls on another file fail (ENOTSOCK) and never carry plaintext.
	 * Every close the runtime can see (close, close_range, dup2/dup3,
	 * syscall(SYS_close...)) still drops the entry.
	 */
	bool trusts_number;
	/* The last hold is gone: release d (an errno for the close that dropped the last fd, or 0). */
	int (*release)(struct fd_desc *d);
	/* One of d's fds closes (POSIX record locks belong to the process and the file). */
	void (*closing)(struct fd_desc *d, int fd);
	/* Calls; -1 with errno, as libc. NULL: the placeholder answers (passes through). */
	ssize_t (*read)(struct fd_desc *d, int fd, void *buf, size_t n);
	ssize_t (*write)(struct fd_desc *d, int fd, const void *buf, size_t n);
	ssize_t (*pread)(struct fd_desc *d, void *buf, size_t n, int64_t off);
	ssize_t (*pwrite)(struct fd_desc *d, int fd, const void *buf, size_t n, int64_t off);
	/* readv/writev (at NULL: at the file offset) and their positioned forms. */
	ssize_t (*iov)(struct fd_desc *d, int fd, const struct iovec *iov, int cnt, const int64_t *at,
		       bool wr);
	int64_t (*lseek)(struct fd_desc *d, int fd, int64_t off, int whence);
	int (*fstat)(struct fd_desc *d, struct stat *st);
	int (*ftruncate)(struct fd_desc *d, int64_t len);
	int (*fallocate)(struct fd_desc *d, int mode, int64_t off, int64_t len);
	int (*fsync)(struct fd_desc *d);
	/* fcntl commands the kind serves (*handled set); the others go to the placeholder. */
	int (*fcntl)(struct fd_desc *d, int fd, int cmd, void *arg, bool *handled);
	/* In a fork child, before it runs on (once per fd): drop what belongs to the parent alone. */
	void (*forked)(struct fd_desc *d);
	/*
	 * exec of a program that keeps fd (no FD_CLOEXEC): record in h what its
	 * runtime needs to take fd over (0 or an errno). NULL: the next program
	 * gets the placeholder as a kernel fd.
	 */
	int (*handover)(struct fd_desc *d, int fd, struct scone_handover *h);
};

struct fd_desc {
	const struct fd_kind *kind;
	int holds; /* fds of this process that share it, plus calls in flight */
	dev_t dev; /* the placeholder's identity */
	ino_t ino;
	/*
	 * The description's own lock, for kinds whose calls may block (a
	 * socket's): held by its calls, never by the table. The volume kind
	 * serialises on the shield's lock instead (its files share one tree).
	 */
	pthread_mutex_t lock;
};

/* Set d up for kind (no holds, its lock ready); then fdtab_note and fdtab_install. */
void fdtab_desc_init(struct fd_desc *d, const struct fd_kind *kind);

/* Note fd's placeholder identity in d (a fresh placeholder, or one inherited across exec). */
bool fdtab_note(struct fd_desc *d, int fd);
/*
 * Make fd an entry for d (one hold taken). false (errno EMFILE, nothing
 * recorded) past the table; the caller closes the placeholder. An entry
 * fd still had (a number closed behind the runtime, which the kernel gave
 * out again) is dropped; its kind hears of the close at fdtab_reap.
 */
bool fdtab_install(int fd, struct fd_desc *d);
/* Tell the kinds of entries fdtab_install dropped that their fd closed (no lock of a kind held). */
void fdtab_reap(void);
/*
 * The entry of fd with a hold, or NULL: not served, or closed/replaced
 * behind the runtime (then dropped, outside a vfork child).
 */
struct fd_desc *fdtab_get(int fd);
/*
 * The entry of fd with a hold, without the identity check: only for a call
 * that reaches neither the kernel's fd nor any data (an lseek that leaves
 * a kept offset where it is: shield_lseek_kept). Anything more checks with
 * fdtab_is first.
 */
struct fd_desc *fdtab_hold(int fd);
/* Give a hold back; the last releases the description (its errno, or 0). */
int fdtab_put(struct fd_desc *d);
/* Quick lock-free check before a lookup: might fd be served? */
bool fdtab_maybe(int fd);
/*
 * fd is closed (by close, or by the kernel under dup2/dup3): drop its
 * entry, tell its kind, give its hold back. Returns the release's errno.
 */
int fdtab_remove(int fd);
/*
 * newfd is a kernel dup of d's placeholder: make it an entry for d too; the
 * entry it had is dropped at fdtab_reap.
 */
bool fdtab_share(int newfd, struct fd_desc *d);
/* Call fn for each entry (lock-free snapshot; holds not taken: for quiescent moments, lock held by caller).
 */
void fdtab_each(void (*fn)(int fd, struct fd_desc *d, void *arg), void *arg);
/* Is fd (still) d's placeholder, by device and inode? */
bool fdtab_is(int fd, const struct fd_desc *d);
/* No fd above this one ever had an entry (-1: none). */
int fdtab_high(void);
/* Is fd an entry (without the identity check)? */
struct fd_desc *fdtab_peek(int fd);
/* This process owns the table (it mounted): calls from another pid are a vfork child's. */
void fdtab_own(void);
/*
 * Around a fork (after the shield's lock: the table's is never held while
 * another is taken): the table's lock is held across it, so no child starts
 * with it held by a thread it does not have.
 */
void fdtab_fork_prepare(void);
void fdtab_fork_parent(void);
void fdtab_fork_child(void);
/* In a fork child: it owns the table now; each entry's kind drops what was the parent's. */
void fdtab_forked(void);
/* Is this a vfork child of the table's process (its memory is the parent's)? */
bool fdtab_foreign(void);
/* vfork() is the runtime's (proc_vfork.c): fdtab_foreign asks the thread's mark, not getpid(). */
void fdtab_vfork_tracked(void);
/* A child may share this process's memory unmarked (clone, raw fork calls): ask getpid() for good. */
void fdtab_pid_untracked(void);
/* Mark the calling thread as a vfork child (returns the mark before), and restore it in the parent. */
int fdtab_vfork_enter(void);
void fdtab_vfork_leave(int was);

#endif
