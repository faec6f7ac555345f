/*
 * sys.h - the one table of the real libc functions the runtime wraps or
 * needs unwrapped (in the manner of SQLite's aSyscall[]).
 *
 * libscone.so exports interposers for many libc calls; inside the library a
 * call to open() would reach its own interposer again. Every part of the
 * runtime that must reach libc itself (the interposers passing a call
 * through, the runtime's own fds: handover memfds, lock files, the shared
 * state) calls through scone_sys instead. The table is filled once, at load
 * (a constructor that runs before any other in the library) or at the first
 * use if another library's constructor calls in earlier, under
 * pthread_once: no lazy pointer is ever read half-written by another
 * thread.
 *
 * Tests replace entries (scone_sys_set) to inject EINTR, short reads and
 * writes, ENOSPC or EIO at any call.
 */
#ifndef SCONE_RUNTIME_SYS_H
#define SCONE_RUNTIME_SYS_H

#include <dirent.h>
#include <glob.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/signalfd.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>
#include <utime.h>

typedef int (*scone_sys_vararg_fn)(int, int, ...);
typedef int (*scone_sys_openat_fn)(int, const char *, int, ...);
typedef int (*scone_sys_open_fn)(const char *, int, ...);
typedef FILE *(*scone_sys_fopen_fn)(const char *, const char *);
typedef int (*scone_sys_fstatat_fn)(int, const char *, struct stat *, int);
typedef int (*scone_sys_fstatat64_fn)(int, const char *, struct stat64 *, int);
typedef int (*scone_sys_stat_fn)(const char *, struct stat *);
typedef int (*scone_sys_stat64_fn)(const char *, struct stat64 *);
typedef int (*scone_sys_statx_fn)(int, const char *, int, unsigned int, struct statx *);
typedef int (*scone_sys_xstat_fn)(int, const char *, struct stat *);
typedef int (*scone_sys_xstat64_fn)(int, const char *, struct stat64 *);
typedef int (*scone_sys_fxstat_fn)(int, int, struct stat *);
typedef int (*scone_sys_fxstat64_fn)(int, int, struct stat64 *);
typedef int (*scone_sys_fxstatat_fn)(int, int, const char *, struct stat *, int);
typedef int (*scone_sys_fxstatat64_fn)(int, int, const char *, struct stat64 *, int);
typedef int (*scone_sys_access_fn)(const char *, int);
typedef int (*scone_sys_faccessat_fn)(int, const char *, int, int);
typedef char *(*scone_sys_realpath_chk_fn)(const char *, char *, size_t);
typedef ssize_t (*scone_sys_getdents64_fn)(int, void *, size_t);
typedef int (*scone_sys_close_range_fn)(unsigned, unsigned, int);
typedef int (*scone_sys_renameat2_fn)(int, const char *, int, const char *, unsigned);
typedef long (*scone_sys_syscall_fn)(long, ...);
/* (without glibc's access attributes: the arrays are read and written) */
typedef int (*scone_sys_poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*scone_sys_ppoll_fn)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);

/*
 * X(name, type): type NULL-free spelling of the function pointer type;
 * SCONE_SYS_T(name) is __typeof__(&name) for functions libc declares.
 */
#define SCONE_SYS_T(name) __typeof__(&name)

#define SCONE_SYS_FUNCS(X)                                                                                   \
	X(open, scone_sys_open_fn)                                                                           \
	X(open64, scone_sys_open_fn)                                                                         \
	X(openat, scone_sys_openat_fn)                                                                       \
	X(openat64, scone_sys_openat_fn)                                                                     \
	X(close, SCONE_SYS_T(close))                                                                         \
	X(close_range, scone_sys_close_range_fn)                                                             \
	X(read, SCONE_SYS_T(read))                                                                           \
	X(write, SCONE_SYS_T(write))                                                                         \
	X(pread, SCONE_SYS_T(pread))                                                                         \
	X(pread64, SCONE_SYS_T(pread64))                                                                     \
	X(pwrite, SCONE_SYS_T(pwrite))                                                                       \
	X(pwrite64, SCONE_SYS_T(pwrite64))                                                                   \
	X(readv, SCONE_SYS_T(readv))                                                                         \
	X(writev, SCONE_SYS_T(writev))                                                                       \
	X(preadv, SCONE_SYS_T(preadv))                                                                       \
	X(preadv64, SCONE_SYS_T(preadv64))                                                                   \
	X(preadv2, SCONE_SYS_T(preadv2))                                                                     \
	X(preadv64v2, SCONE_SYS_T(preadv64v2))                                                               \
	X(pwritev, SCONE_SYS_T(pwritev))                                                                     \
	X(pwritev64, SCONE_SYS_T(pwritev64))                                                                 \
	X(pwritev2, SCONE_SYS_T(pwritev2))                                                                   \
	X(pwritev64v2, SCONE_SYS_T(pwritev64v2))                                                             \
	X(lseek, SCONE_SYS_T(lseek))                                                                         \
	X(lseek64, SCONE_SYS_T(lseek64))                                                                     \
	X(fstat, SCONE_SYS_T(fstat))                                                                         \
	X(fstat64, SCONE_SYS_T(fstat64))                                                                     \
	X(stat, scone_sys_stat_fn)                                                                           \
	X(lstat, scone_sys_stat_fn)                                                                          \
	X(stat64, scone_sys_stat64_fn)                                                                       \
	X(lstat64, scone_sys_stat64_fn)                                                                      \
	X(fstatat, scone_sys_fstatat_fn)                                                                     \
	X(fstatat64, scone_sys_fstatat64_fn)                                                                 \
	X(__xstat, scone_sys_xstat_fn)                                                                       \
	X(__lxstat, scone_sys_xstat_fn)                                                                      \
	X(__xstat64, scone_sys_xstat64_fn)                                                                   \
	X(__lxstat64, scone_sys_xstat64_fn)                                                                  \
	X(__fxstat, scone_sys_fxstat_fn)                                                                     \
	X(__fxstat64, scone_sys_fxstat64_fn)                                                                 \
	X(__fxstatat, scone_sys_fxstatat_fn)                                                                 \
	X(__fxstatat64, scone_sys_fxstatat64_fn)                                                             \
	X(statx, scone_sys_statx_fn)                                                                         \
	X(access, scone_sys_access_fn)                                                                       \
	X(faccessat, scone_sys_faccessat_fn)                                                                 \
	X(euidaccess, scone_sys_access_fn)                                                                   \
	X(ftruncate, SCONE_SYS_T(ftruncate))                                                                 \
	X(ftruncate64, SCONE_SYS_T(ftruncate64))                                                             \
	X(truncate, SCONE_SYS_T(truncate))                                                                   \
	X(truncate64, SCONE_SYS_T(truncate64))                                                               \
	X(fallocate, SCONE_SYS_T(fallocate))                                                                 \
	X(fallocate64, SCONE_SYS_T(fallocate64))                                                             \
	X(posix_fallocate, SCONE_SYS_T(posix_fallocate))                                                     \
	X(posix_fallocate64, SCONE_SYS_T(posix_fallocate64))                                                 \
	X(fsync, SCONE_SYS_T(fsync))                                                                         \
	X(fdatasync, SCONE_SYS_T(fdatasync))                                                                 \
	X(fcntl, scone_sys_vararg_fn)                                                                        \
	X(fcntl64, scone_sys_vararg_fn)                                                                      \
	X(flock, SCONE_SYS_T(flock))                                                                         \
	X(dup, SCONE_SYS_T(dup))                                                                             \
	X(dup2, SCONE_SYS_T(dup2))                                                                           \
	X(dup3, SCONE_SYS_T(dup3))                                                                           \
	X(mmap, SCONE_SYS_T(mmap))                                                                           \
	X(mmap64, SCONE_SYS_T(mmap64))                                                                       \
	X(munmap, SCONE_SYS_T(munmap))                                                                       \
	X(msync, SCONE_SYS_T(msync))                                                                         \
	X(mremap, SCONE_SYS_T(mremap))                                                                       \
	X(sendfile, SCONE_SYS_T(sendfile))                                                                   \
	X(copy_file_range, SCONE_SYS_T(copy_file_range))                                                     \
	X(splice, SCONE_SYS_T(splice))                                                                       \
	X(tee, SCONE_SYS_T(tee))                                                                             \
	X(unlink, SCONE_SYS_T(unlink))                                                                       \
	X(unlinkat, SCONE_SYS_T(unlinkat))                                                                   \
	X(rmdir, SCONE_SYS_T(rmdir))                                                                         \
	X(mkdir, SCONE_SYS_T(mkdir))                                                                         \
	X(mkdirat, SCONE_SYS_T(mkdirat))                                                                     \
	X(rename, SCONE_SYS_T(rename))                                                                       \
	X(renameat, SCONE_SYS_T(renameat))                                                                   \
	X(renameat2, scone_sys_renameat2_fn)                                                                 \
	X(chdir, SCONE_SYS_T(chdir))                                                                         \
	X(fchdir, SCONE_SYS_T(fchdir))                                                                       \
	X(getcwd, SCONE_SYS_T(getcwd))                                                                       \
	X(get_current_dir_name, SCONE_SYS_T(get_current_dir_name))                                           \
	X(chmod, SCONE_SYS_T(chmod))                                                                         \
	X(fchmod, SCONE_SYS_T(fchmod))                                                                       \
	X(fchmodat, SCONE_SYS_T(fchmodat))                                                                   \
	X(chown, SCONE_SYS_T(chown))                                                                         \
	X(fchown, SCONE_SYS_T(fchown))                                                                       \
	X(lchown, SCONE_SYS_T(lchown))                                                                       \
	X(fchownat, SCONE_SYS_T(fchownat))                                                                   \
	X(utime, SCONE_SYS_T(utime))                                                                         \
	X(utimes, SCONE_SYS_T(utimes))                                                                       \
	X(lutimes, SCONE_SYS_T(lutimes))                                                                     \
	X(futimes, SCONE_SYS_T(futimes))                                                                     \
	X(futimens, SCONE_SYS_T(futimens))                                                                   \
	X(utimensat, SCONE_SYS_T(utimensat))                                                                 \
	X(link, SCONE_SYS_T(link))                                                                           \
	X(linkat, SCONE_SYS_T(linkat))                                                                       \
	X(symlink, SCONE_SYS_T(symlink))                                                                     \
	X(symlinkat, SCONE_SYS_T(symlinkat))                                                                 \
	X(readlink, SCONE_SYS_T(readlink))                                                                   \
	X(readlinkat, SCONE_SYS_T(readlinkat))                                                               \
	X(mknod, SCONE_SYS_T(mknod))                                                                         \
	X(mknodat, SCONE_SYS_T(mknodat))                                                                     \
	X(mkfifo, SCONE_SYS_T(mkfifo))                                                                       \
	X(mkfifoat, SCONE_SYS_T(mkfifoat))                                                                   \
	X(realpath, SCONE_SYS_T(realpath))                                                                   \
	X(__realpath_chk, scone_sys_realpath_chk_fn)                                                         \
	X(canonicalize_file_name, SCONE_SYS_T(canonicalize_file_name))                                       \
	X(opendir, SCONE_SYS_T(opendir))                                                                     \
	X(fdopendir, SCONE_SYS_T(fdopendir))                                                                 \
	X(readdir, SCONE_SYS_T(readdir))                                                                     \
	X(readdir64, SCONE_SYS_T(readdir64))                                                                 \
	X(rewinddir, SCONE_SYS_T(rewinddir))                                                                 \
	X(dirfd, SCONE_SYS_T(dirfd))                                                                         \
	X(closedir, SCONE_SYS_T(closedir))                                                                   \
	X(scandir, SCONE_SYS_T(scandir))                                                                     \
	X(scandir64, SCONE_SYS_T(scandir64))                                                                 \
	X(glob, SCONE_SYS_T(glob))                                                                           \
	X(glob64, SCONE_SYS_T(glob64))                                                                       \
	X(getdents64, scone_sys_getdents64_fn)                                                               \
	X(fopen, scone_sys_fopen_fn)                                                                         \
	X(fopen64, scone_sys_fopen_fn)                                                                       \
	X(freopen, SCONE_SYS_T(freopen))                                                                     \
	X(freopen64, SCONE_SYS_T(freopen64))                                                                 \
	X(fdopen, SCONE_SYS_T(fdopen))                                                                       \
	X(execve, SCONE_SYS_T(execve))                                                                       \
	X(execveat, SCONE_SYS_T(execveat))                                                                   \
	X(fexecve, SCONE_SYS_T(fexecve))                                                                     \
	X(execvpe, SCONE_SYS_T(execvpe))                                                                     \
	X(posix_spawn, SCONE_SYS_T(posix_spawn))                                                             \
	X(posix_spawnp, SCONE_SYS_T(posix_spawnp))                                                           \
	X(posix_spawn_file_actions_addopen, SCONE_SYS_T(posix_spawn_file_actions_addopen))                   \
	X(posix_spawn_file_actions_adddup2, SCONE_SYS_T(posix_spawn_file_actions_adddup2))                   \
	X(posix_spawn_file_actions_destroy, SCONE_SYS_T(posix_spawn_file_actions_destroy))                   \
	X(posix_spawn_file_actions_addchdir_np, SCONE_SYS_T(posix_spawn_file_actions_addchdir_np))           \
	X(system, SCONE_SYS_T(system))                                                                       \
	X(popen, SCONE_SYS_T(popen))                                                                         \
	X(pclose, SCONE_SYS_T(pclose))                                                                       \
	X(statfs, SCONE_SYS_T(statfs))                                                                       \
	X(statfs64, SCONE_SYS_T(statfs64))                                                                   \
	X(statvfs, SCONE_SYS_T(statvfs))                                                                     \
	X(statvfs64, SCONE_SYS_T(statvfs64))                                                                 \
	X(fstatfs, SCONE_SYS_T(fstatfs))                                                                     \
	X(fstatfs64, SCONE_SYS_T(fstatfs64))                                                                 \
	X(fstatvfs, SCONE_SYS_T(fstatvfs))                                                                   \
	X(fstatvfs64, SCONE_SYS_T(fstatvfs64))                                                               \
	X(getxattr, SCONE_SYS_T(getxattr))                                                                   \
	X(lgetxattr, SCONE_SYS_T(lgetxattr))                                                                 \
	X(listxattr, SCONE_SYS_T(listxattr))                                                                 \
	X(llistxattr, SCONE_SYS_T(llistxattr))                                                               \
	X(setxattr, SCONE_SYS_T(setxattr))                                                                   \
	X(lsetxattr, SCONE_SYS_T(lsetxattr))                                                                 \
	X(removexattr, SCONE_SYS_T(removexattr))                                                             \
	X(lremovexattr, SCONE_SYS_T(lremovexattr))                                                           \
	X(fgetxattr, SCONE_SYS_T(fgetxattr))                                                                 \
	X(flistxattr, SCONE_SYS_T(flistxattr))                                                               \
	X(fsetxattr, SCONE_SYS_T(fsetxattr))                                                                 \
	X(fremovexattr, SCONE_SYS_T(fremovexattr))                                                           \
	X(socket, SCONE_SYS_T(socket))                                                                       \
	X(socketpair, SCONE_SYS_T(socketpair))                                                               \
	X(pipe, SCONE_SYS_T(pipe))                                                                           \
	X(pipe2, SCONE_SYS_T(pipe2))                                                                         \
	X(eventfd, SCONE_SYS_T(eventfd))                                                                     \
	X(epoll_create, SCONE_SYS_T(epoll_create))                                                           \
	X(epoll_create1, SCONE_SYS_T(epoll_create1))                                                         \
	X(timerfd_create, SCONE_SYS_T(timerfd_create))                                                       \
	X(signalfd, SCONE_SYS_T(signalfd))                                                                   \
	X(inotify_init, SCONE_SYS_T(inotify_init))                                                           \
	X(inotify_init1, SCONE_SYS_T(inotify_init1))                                                         \
	X(inotify_add_watch, SCONE_SYS_T(inotify_add_watch))                                                 \
	X(setrlimit, SCONE_SYS_T(setrlimit))                                                                 \
	X(setrlimit64, SCONE_SYS_T(setrlimit64))                                                             \
	X(prlimit, SCONE_SYS_T(prlimit))                                                                     \
	X(prlimit64, SCONE_SYS_T(prlimit64))                                                                 \
	X(memfd_create, SCONE_SYS_T(memfd_create))                                                           \
	X(pidfd_open, SCONE_SYS_T(pidfd_open))                                                               \
	X(fanotify_init, SCONE_SYS_T(fanotify_init))                                                         \
	X(connect, SCONE_SYS_T(connect))                                                                     \
	X(accept, SCONE_SYS_T(accept))                                                                       \
	X(accept4, SCONE_SYS_T(accept4))                                                                     \
	X(shutdown, SCONE_SYS_T(shutdown))                                                                   \
	X(recv, SCONE_SYS_T(recv))                                                                           \
	X(recvfrom, SCONE_SYS_T(recvfrom))                                                                   \
	X(recvmsg, SCONE_SYS_T(recvmsg))                                                                     \
	X(send, SCONE_SYS_T(send))                                                                           \
	X(sendto, SCONE_SYS_T(sendto))                                                                       \
	X(sendmsg, SCONE_SYS_T(sendmsg))                                                                     \
	X(sendmmsg, SCONE_SYS_T(sendmmsg))                                                                   \
	X(recvmmsg, SCONE_SYS_T(recvmmsg))                                                                   \
	X(ioctl, SCONE_SYS_T(ioctl))                                                                         \
	X(lockf64, SCONE_SYS_T(lockf64))                                                                     \
	X(poll, scone_sys_poll_fn)                                                                           \
	X(ppoll, scone_sys_ppoll_fn)                                                                         \
	X(select, SCONE_SYS_T(select))                                                                       \
	X(pselect, SCONE_SYS_T(pselect))                                                                     \
	X(epoll_ctl, SCONE_SYS_T(epoll_ctl))                                                                 \
	X(epoll_wait, SCONE_SYS_T(epoll_wait))                                                               \
	X(epoll_pwait, SCONE_SYS_T(epoll_pwait))                                                             \
	X(setuid, SCONE_SYS_T(setuid))                                                                       \
	X(setgid, SCONE_SYS_T(setgid))                                                                       \
	X(setreuid, SCONE_SYS_T(setreuid))                                                                   \
	X(setregid, SCONE_SYS_T(setregid))                                                                   \
	X(setresuid, SCONE_SYS_T(setresuid))                                                                 \
	X(setresgid, SCONE_SYS_T(setresgid))                                                                 \
	X(unshare, SCONE_SYS_T(unshare))                                                                     \
	X(umask, SCONE_SYS_T(umask))                                                                         \
	X(mkstemp, SCONE_SYS_T(mkstemp))                                                                     \
	X(mkstemp64, SCONE_SYS_T(mkstemp64))                                                                 \
	X(mkostemp, SCONE_SYS_T(mkostemp))                                                                   \
	X(mkostemp64, SCONE_SYS_T(mkostemp64))                                                               \
	X(mkstemps, SCONE_SYS_T(mkstemps))                                                                   \
	X(mkstemps64, SCONE_SYS_T(mkstemps64))                                                               \
	X(mkostemps, SCONE_SYS_T(mkostemps))                                                                 \
	X(mkostemps64, SCONE_SYS_T(mkostemps64))                                                             \
	X(mkdtemp, SCONE_SYS_T(mkdtemp))                                                                     \
	X(setns, SCONE_SYS_T(setns))                                                                         \
	X(clone, SCONE_SYS_T(clone))                                                                         \
	X(_Fork, SCONE_SYS_T(_Fork))                                                                         \
	X(syscall, scone_sys_syscall_fn)

struct scone_sys {
#define SCONE_SYS_FIELD(name, type) type name;
	SCONE_SYS_FUNCS(SCONE_SYS_FIELD)
#undef SCONE_SYS_FIELD
};

/* The table; read it through scone_sys_get() (fills it on first use). */
extern struct scone_sys scone_sys_table;
extern bool scone_sys_ready;

/* Fill the table (once; safe from any thread and from other libraries' constructors). */
void scone_sys_init(void);

static inline const struct scone_sys *scone_sys_get(void)
{
	if (__builtin_expect(!__atomic_load_n(&scone_sys_ready, __ATOMIC_ACQUIRE), 0))
		scone_sys_init();
	return &scone_sys_table;
}

/* The real function name, typed: SYS(write)(fd, buf, n). */
#define SYS(name) (scone_sys_get()->name)

/*
 * Tests: replace entry name (by its string) with fn, returning the previous
 * one through *old; false if there is no such entry.
 */
bool scone_sys_set(const char *name, void *fn, void **old);

#endif
