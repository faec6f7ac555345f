/*
 * shield.h - the file-system shield: session volumes mounted at their paths
 * inside the program, served through the volume library (shield.c). The
 * libc interposers of inject.c ask it first for every path; the fd-based
 * interposers live in shield.c itself.
 */
#ifndef SCONE_RUNTIME_SHIELD_H
#define SCONE_RUNTIME_SHIELD_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lib/err.h"
#include "lib/tls.h"
#include "runtime/cas_client.h"
#include "runtime/handover_io.h"

/*
 * Mount the volumes of the runtime's configuration (rt.h: create the
 * uninitialised ones and report their first tag), before main. Tags are
 * reported to the context's CAS with its key. On error nothing is mounted.
 */
SCONE_MUST_CHECK enum scone_err scone_shield_mount(void);
size_t scone_shield_count(void);

/* io_uring or Linux AIO (what) is refused now: volumes are mounted (async_io.c); prints why once. */
bool scone_async_io_refused(const char *what);

/* Is fd a memfd the runtime created under name (inherited across exec)? */
bool scone_memfd_named(int fd, const char *name);

/*
 * fd moved to the runtime's range (shield_own_fd_floor() and up), its
 * close-on-exec flag kept, and the old number closed; returns the fd to use
 * (fd itself where no number is free up there). Every fd the runtime keeps
 * goes there as it is made or received: programs use fixed low numbers
 * (`3>file`, `exec 9>lock`, libuv's IPC channel on fd 3) and a dup2 onto one
 * of the runtime's fds is refused.
 */
int scone_shield_fd_up(int fd);

struct scone_handover;
struct scone_wbuf;

/*
 * Before an exec: commit every volume and describe the volumes for the next
 * program's runtime in h (tags, the shielded fds it inherits, a volume cwd,
 * duplicates of the shared state's memfd and the windows' mailbox in pass,
 * the report key into identity). h->volumes (names borrowed), h->fds (vpaths
 * owned) and h->cwd are the caller's to free. spawn: the caller goes on
 * beside the new program (posix_spawn), so the volumes are shared from now.
 */
SCONE_MUST_CHECK enum scone_err scone_shield_handover(struct scone_handover *h, bool spawn,
						      struct scone_wbuf *identity,
						      int pass[SCONE_HANDOVER_PASSED], int *conn_dup);
/* After an exec: mount the configuration's volumes as the previous program left them (h), take over its fds.
 */
SCONE_MUST_CHECK enum scone_err scone_shield_mount_handover(const struct scone_handover *h);

/*
 * Path hooks for inject.c's interposers. Each returns true when path (relative
 * to dirfd or the cwd) is under a mount point and the call was handled: *ret
 * holds the result and errno is set as libc would set it. False: pass
 * through.
 */
/*
 * The absolute, normalised form of path relative to dirfd or the cwd (a
 * shielded directory fd and a volume cwd included) into full; false when it
 * does not fit or the base cannot be found. Used by every path interposer.
 */
bool scone_shield_abspath(int dirfd, const char *path, char *full, size_t size);

/*
 * The pins in the read cache of this process's descriptions (vcache.h),
 * let go when they end without a close (exit, exec): false if there was
 * nothing to let go (a vfork child's are its parent's). Taken again after
 * an exec that failed.
 */
bool scone_shield_pins_release(void);
void scone_shield_pins_retake(void);
/*
 * Another process may now hold this one's open descriptions (a spawn, a
 * clone, a fork without the fork handlers): none of their placeholders is
 * reused for another file (fd_volume.c). Lock-free.
 */
void scone_shield_placeholders_shared(void);
/* A spawn starts (true) or is done (false): placeholders released meanwhile are not kept. */
void scone_shield_spawn_window(bool open);
/* fd is a kept placeholder (a dup2 onto it): let it go; false if it is not one. */
bool scone_shield_pool_evict(int fd);
/* The program met EMFILE: close the kept placeholders; true if there were any (then try again). */
bool scone_shield_pool_release_fds(void);
/*
 * An fd-making call (an int or -1): made once more after EMFILE if the kept
 * placeholders gave their fds back, which are the program's first.
 */
#define SCONE_FD_CALL(call)                                                                                  \
	__extension__({                                                                                      \
		int fd_call_ = (call);                                                                       \
		if (fd_call_ < 0 && errno == EMFILE && scone_shield_pool_release_fds())                      \
			fd_call_ = (call);                                                                   \
		fd_call_;                                                                                    \
	})
/* fd goes to another process (SCM_RIGHTS) or is changed around the runtime: its placeholder is not kept. */
void scone_shield_fd_shared(int fd);
/* Is path (any spelling, existing or not) on a volume? */
bool scone_shield_on_volume(const char *path);
bool scone_shield_openat(int dirfd, const char *path, int flags, mode_t mode, int *ret);
bool scone_shield_fstatat(int dirfd, const char *path, struct stat *st, int flags, int *ret);
bool scone_shield_statx(int dirfd, const char *path, int flags, struct statx *buf, int *ret);
bool scone_shield_access(int dirfd, const char *path, int how, int *ret);
bool scone_shield_fopen(const char *path, const char *mode, FILE **ret);

#endif
