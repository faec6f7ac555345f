/*
 * fault.c - libscone-fault.so, a fault injector for the runtime's real
 * calls. Test tool only: nothing of it is in libscone.so.
 *
 * libscone.so fills its table of the real libc functions with
 * dlsym(RTLD_NEXT, name) (src/runtime/sys.c). Preloaded after it,
 *
 *     LD_PRELOAD="libscone.so libscone-fault.so" SCONE_FAULT=... PROGRAM
 *
 * this library is the "next" definition of the names below: every real
 * call the runtime and the volume library's host backend make (and the
 * program's calls the runtime passes through) comes here first, and is
 * forwarded to libc through this library's own RTLD_NEXT, or failed as
 * SCONE_FAULT directs (the rule's syntax: fault_spec.h; documented in
 * docs/testing.md). For example
 *
 *     SCONE_FAULT=call=pwrite,nth=7,fault=eio,path=/srv/vol,log=/tmp/f.log
 *
 * fails the 7th pwrite on a file under /srv/vol with EIO, without writing.
 *
 * The names, by family (the unit of nth= and of the counts):
 *   open      open open64 openat openat64
 *   read      read                 write    write
 *   pread     pread pread64        pwrite   pwrite pwrite64
 *   fsync     fsync                fdatasync fdatasync
 *   ftruncate ftruncate ftruncate64
 *   rename    rename renameat renameat2
 *   unlink    unlink unlinkat      mkdir    mkdir mkdirat
 *   close     close                fstat    fstat fstat64
 *   stat      stat lstat stat64 lstat64 fstatat fstatat64
 *   opendir   opendir              readdir  readdir readdir64
 *   closedir  closedir
 *
 * The faults: eintr returns -1/EINTR without doing anything; short does
 * half the transfer (at least one byte); eio and enospc return -1 with
 * that errno without doing anything (opendir and readdir: NULL); crash
 * kills the process with SIGKILL before the call. close and closedir are
 * the exception, as on Linux: the descriptor is closed, then the error is
 * returned (retrying such a close would close another file).
 *
 * Paths: path=DIR matches DIR itself and everything below it; the call's
 * path is made absolute against the process's cwd or the dirfd, and for
 * the calls on an fd or a DIR it is the fd's link in /proc/self/fd. Counts and nth are per process (a forked
 * child goes on from its parent's counts and no longer writes the count
 * file). The injector's own I/O goes to libc directly, never through the
 * runtime's interposers or through itself.
 */
#undef _FORTIFY_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault_spec.h"

#define EXPORT __attribute__((visibility("default")))

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef ssize_t (*rw_fn)(int, void *, size_t);
typedef ssize_t (*wr_fn)(int, const void *, size_t);
typedef ssize_t (*prw_fn)(int, void *, size_t, off_t);
typedef ssize_t (*pwr_fn)(int, const void *, size_t, off_t);
typedef int (*fd_fn)(int);
typedef int (*ftrunc_fn)(int, off_t);
typedef int (*rename_fn)(const char *, const char *);
typedef int (*renameat_fn)(int, const char *, int, const char *);
typedef int (*renameat2_fn)(int, const char *, int, const char *, unsigned);
typedef int (*path_fn)(const char *);
typedef int (*unlinkat_fn)(int, const char *, int);
typedef int (*mkdir_fn)(const char *, mode_t);
typedef int (*mkdirat_fn)(int, const char *, mode_t);
typedef int (*fstat_fn)(int, struct stat *);
typedef int (*fstat64_fn)(int, struct stat64 *);
typedef int (*stat_fn)(const char *, struct stat *);
typedef int (*stat64_fn)(const char *, struct stat64 *);
typedef int (*fstatat_fn)(int, const char *, struct stat *, int);
typedef int (*fstatat64_fn)(int, const char *, struct stat64 *, int);
typedef DIR *(*opendir_fn)(const char *);
typedef struct dirent *(*readdir_fn)(DIR *);
typedef struct dirent64 *(*readdir64_fn)(DIR *);
typedef int (*closedir_fn)(DIR *);
typedef int (*dirfd_fn)(DIR *);
typedef ssize_t (*readlink_fn)(const char *, char *, size_t);
typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef void (*exit_fn)(int);

/* X(name, type): libc's functions, the wrapped ones and those this library needs itself. */
#define REAL_FUNCS(X)                                                                                        \
	X(open, open_fn)                                                                                     \
	X(open64, open_fn)                                                                                   \
	X(openat, openat_fn)                                                                                 \
	X(openat64, openat_fn)                                                                               \
	X(read, rw_fn)                                                                                       \
	X(write, wr_fn)                                                                                      \
	X(pread, prw_fn)                                                                                     \
	X(pread64, prw_fn)                                                                                   \
	X(pwrite, pwr_fn)                                                                                    \
	X(pwrite64, pwr_fn)                                                                                  \
	X(fsync, fd_fn)                                                                                      \
	X(fdatasync, fd_fn)                                                                                  \
	X(ftruncate, ftrunc_fn)                                                                              \
	X(ftruncate64, ftrunc_fn)                                                                            \
	X(rename, rename_fn)                                                                                 \
	X(renameat, renameat_fn)                                                                             \
	X(renameat2, renameat2_fn)                                                                           \
	X(unlink, path_fn)                                                                                   \
	X(unlinkat, unlinkat_fn)                                                                             \
	X(mkdir, mkdir_fn)                                                                                   \
	X(mkdirat, mkdirat_fn)                                                                               \
	X(close, fd_fn)                                                                                      \
	X(fstat, fstat_fn)                                                                                   \
	X(fstat64, fstat64_fn)                                                                               \
	X(stat, stat_fn)                                                                                     \
	X(lstat, stat_fn)                                                                                    \
	X(stat64, stat64_fn)                                                                                 \
	X(lstat64, stat64_fn)                                                                                \
	X(fstatat, fstatat_fn)                                                                               \
	X(fstatat64, fstatat64_fn)                                                                           \
	X(opendir, opendir_fn)                                                                               \
	X(readdir, readdir_fn)                                                                               \
	X(readdir64, readdir64_fn)                                                                           \
	X(closedir, closedir_fn)                                                                             \
	X(dirfd, dirfd_fn)                                                                                   \
	X(readlink, readlink_fn)                                                                             \
	X(mmap, mmap_fn)                                                                                     \
	X(_exit, exit_fn)

static struct {
#define REAL_FIELD(name, type) type name;
	REAL_FUNCS(REAL_FIELD)
#undef REAL_FIELD
} real;

static struct fault_spec spec;
static size_t prefix_len;
static bool ready;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Counts per family, and of every matching call (the last slot: call=*). */
static unsigned long counts[FAULT_FAMILY_COUNT + 1];
static char *count_map; /* the count file, mapped shared; NULL: not kept */
static bool count_busy; /* one writer of the map at a time */
static bool forked;	/* in a forked child: the count file is the parent's */

#define COUNT_LINE 24 /* "%-10s %12lu\n" */
#define COUNT_SIZE (COUNT_LINE * (FAULT_FAMILY_COUNT + 1))

static void die(const char *what, const char *detail)
{
	char msg[PATH_MAX + 256];
	int n = snprintf(msg, sizeof(msg), "libscone-fault: %s%s%s\n", what, detail ? ": " : "",
			 detail ? detail : "");

	if (n > 0 && real.write)
		(void)!real.write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	if (real._exit)
		real._exit(2);
	abort();
}

/* Write every line of the count file: the counts as they are now. Lock-free, safe in a signal handler. */
static void count_show(void)
{
	for (;;) {
		unsigned long total;
		char line[COUNT_LINE + 1];

		if (!count_map || forked || __atomic_test_and_set(&count_busy, __ATOMIC_ACQUIRE))
			return; /* the writer in progress sees our increment in its check below */
		total = __atomic_load_n(&counts[FAULT_FAMILY_COUNT], __ATOMIC_ACQUIRE);
		for (int f = 0; f <= FAULT_FAMILY_COUNT; f++) {
			snprintf(line, sizeof(line), "%-10s %12lu\n", fault_family_name((enum fault_family)f),
				 __atomic_load_n(&counts[f], __ATOMIC_RELAXED) % 1000000000000UL);
			memcpy(count_map + f * COUNT_LINE, line, COUNT_LINE);
		}
		__atomic_clear(&count_busy, __ATOMIC_RELEASE);
		if (__atomic_load_n(&counts[FAULT_FAMILY_COUNT], __ATOMIC_ACQUIRE) == total)
			return;
	}
}

static void count_open(void)
{
	int fd = real.open(spec.count, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	void *map;

	if (fd < 0)
		die("cannot create the count file", spec.count);
	if (real.ftruncate(fd, COUNT_SIZE) != 0)
		die("cannot size the count file", spec.count);
	map = real.mmap(NULL, COUNT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	real.close(fd);
	if (map == MAP_FAILED)
		die("cannot map the count file", spec.count);
	count_map = map;
	count_show();
}

static void child_forked(void)
{
	forked = true;
}

static void init(void)
{
	char err[512];

#define REAL_FILL(name, type) real.name = (type)dlsym(RTLD_NEXT, #name);
	REAL_FUNCS(REAL_FILL)
#undef REAL_FILL
#define REAL_CHECK(name, type)                                                                               \
	if (!real.name)                                                                                      \
		die("libc has no", #name);
	REAL_FUNCS(REAL_CHECK)
#undef REAL_CHECK
	if (!fault_spec_parse(getenv("SCONE_FAULT"), &spec, err, sizeof(err)))
		die("SCONE_FAULT", err);
	prefix_len = strlen(spec.path);
	if (spec.count[0])
		count_open();
	pthread_atfork(NULL, NULL, child_forked);
	__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
}

static inline void ensure(void)
{
	if (__builtin_expect(!__atomic_load_n(&ready, __ATOMIC_ACQUIRE), 0))
		pthread_once(&once, init);
}

/* Read the rule while the environment is still the host's (before the runtime gives main the session's). */
__attribute__((constructor)) static void fault_constructor(void)
{
	ensure();
}

/* ---- which calls ---- */

/* Whether a call of f needs its path looked at: counted, or the rule's family. */
static bool wanted(enum fault_family f)
{
	ensure();
	return count_map || (spec.kind != FAULT_NONE && (spec.call == FAULT_ANY || spec.call == f));
}

/* path is PREFIX or below it (PREFIX ending in '/': below it only). */
static bool under(const char *path)
{
	if (!path)
		return false;
	if (prefix_len == 0)
		return true;
	return strncmp(path, spec.path, prefix_len) == 0 &&
	       (spec.path[prefix_len - 1] == '/' || path[prefix_len] == '\0' || path[prefix_len] == '/');
}

/* The link of /proc/self/fd/fd into buf, or NULL. */
static const char *fd_path(int fd, char buf[PATH_MAX])
{
	char link[64];
	ssize_t n;

	if (fd < 0)
		return NULL;
	snprintf(link, sizeof(link), fd == AT_FDCWD ? "/proc/self/cwd" : "/proc/self/fd/%d", fd);
	n = real.readlink(link, buf, PATH_MAX - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

/* path made absolute against dirfd (AT_FDCWD: the cwd) into buf. */
static const char *abs_path(int dirfd, const char *path, char buf[PATH_MAX])
{
	char dir[PATH_MAX];
	int n;

	if (!path || path[0] == '/')
		return path;
	if (!fd_path(dirfd, dir))
		return NULL;
	n = snprintf(buf, PATH_MAX, "%s/%s", dir, path);
	return n > 0 && n < PATH_MAX ? buf : NULL;
}

static void log_fault(enum fault_family f, unsigned long n, enum fault_kind k, const char *path)
{
	char line[PATH_MAX + 128];
	int len, fd;

	if (!spec.log[0])
		return;
	len = snprintf(line, sizeof(line), "pid=%d call=%s n=%lu fault=%s path=%s\n", (int)getpid(),
		       fault_family_name(f), n, fault_kind_name(k), path ? path : "?");
	if (len <= 0 || (size_t)len >= sizeof(line))
		len = (int)sizeof(line) - 1;
	fd = real.open(spec.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	(void)!real.write(fd, line, (size_t)len);
	real.close(fd);
}

/*
 * One call of family f on p1 (or p2: rename's target): counts it when it
 * matches path=, and says which fault to inject (FAULT_NONE: none). A
 * crash does not return.
 */
static enum fault_kind gate(enum fault_family f, const char *p1, const char *p2)
{
	unsigned long n, total;
	enum fault_kind k = FAULT_NONE;

	if (!under(p1) && !under(p2))
		return FAULT_NONE;
	n = __atomic_add_fetch(&counts[f], 1, __ATOMIC_RELAXED);
	total = __atomic_add_fetch(&counts[FAULT_FAMILY_COUNT], 1, __ATOMIC_RELEASE);
	count_show();
	if (spec.call == f && fault_spec_hits(&spec, n))
		k = spec.kind;
	else if (spec.call == FAULT_ANY && fault_spec_hits(&spec, total))
		k = spec.kind, n = total;
	if (k == FAULT_NONE)
		return k;
	log_fault(f, n, k, under(p1) ? p1 : p2);
	if (k == FAULT_CRASH) {
		kill(getpid(), SIGKILL);
		for (;;)
			pause();
	}
	return k;
}

static enum fault_kind gate_fd(enum fault_family f, int fd)
{
	char buf[PATH_MAX];

	return wanted(f) ? gate(f, fd_path(fd, buf), NULL) : FAULT_NONE;
}

static enum fault_kind gate_at(enum fault_family f, int dirfd, const char *path)
{
	char buf[PATH_MAX];

	return wanted(f) ? gate(f, abs_path(dirfd, path, buf), NULL) : FAULT_NONE;
}

static enum fault_kind gate_dir(enum fault_family f, DIR *d)
{
	return d && wanted(f) ? gate_fd(f, real.dirfd(d)) : FAULT_NONE;
}

static enum fault_kind gate_rename(int d1, const char *from, int d2, const char *to)
{
	char b1[PATH_MAX], b2[PATH_MAX];

	if (!wanted(FAULT_RENAME))
		return FAULT_NONE;
	return gate(FAULT_RENAME, abs_path(d1, from, b1), abs_path(d2, to, b2));
}

/* The fault's return: -1 with its errno. */
static int fail(enum fault_kind k)
{
	errno = k == FAULT_EINTR ? EINTR : k == FAULT_ENOSPC ? ENOSPC : EIO;
	return -1;
}

/* Half the transfer (at least a byte). */
static size_t shorter(size_t n)
{
	return n > 1 ? n / 2 : n;
}

/* ---- the wrappers ---- */

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

#define OPEN_WRAPPER(name)                                                                                   \
	EXPORT int name(const char *path, int flags, ...)                                                    \
	{                                                                                                    \
		va_list ap;                                                                                  \
		mode_t mode;                                                                                 \
		enum fault_kind k;                                                                           \
                                                                                                             \
		va_start(ap, flags);                                                                         \
		mode = mode_arg(flags, ap);                                                                  \
		va_end(ap);                                                                                  \
		if ((k = gate_at(FAULT_OPEN, AT_FDCWD, path)) != FAULT_NONE)                                 \
			return fail(k);                                                                      \
		return real.name(path, flags, mode);                                                         \
	}
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name)                                                                                 \
	EXPORT int name(int dirfd, const char *path, int flags, ...)                                         \
	{                                                                                                    \
		va_list ap;                                                                                  \
		mode_t mode;                                                                                 \
		enum fault_kind k;                                                                           \
                                                                                                             \
		va_start(ap, flags);                                                                         \
		mode = mode_arg(flags, ap);                                                                  \
		va_end(ap);                                                                                  \
		if ((k = gate_at(FAULT_OPEN, dirfd, path)) != FAULT_NONE)                                    \
			return fail(k);                                                                      \
		return real.name(dirfd, path, flags, mode);                                                  \
	}
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	enum fault_kind k = gate_fd(FAULT_READ, fd);

	if (k == FAULT_SHORT)
		n = shorter(n);
	else if (k != FAULT_NONE)
		return fail(k);
	return real.read(fd, buf, n);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	enum fault_kind k = gate_fd(FAULT_WRITE, fd);

	if (k == FAULT_SHORT)
		n = shorter(n);
	else if (k != FAULT_NONE)
		return fail(k);
	return real.write(fd, buf, n);
}

#define PREAD_WRAPPER(name, family, buf_type, fn)                                                            \
	EXPORT ssize_t name(int fd, buf_type buf, size_t n, off_t off)                                       \
	{                                                                                                    \
		enum fault_kind k = gate_fd(family, fd);                                                     \
                                                                                                             \
		if (k == FAULT_SHORT)                                                                        \
			n = shorter(n);                                                                      \
		else if (k != FAULT_NONE)                                                                    \
			return fail(k);                                                                      \
		return real.fn(fd, buf, n, off);                                                             \
	}
PREAD_WRAPPER(pread, FAULT_PREAD, void *, pread)
PREAD_WRAPPER(pread64, FAULT_PREAD, void *, pread64)
PREAD_WRAPPER(pwrite, FAULT_PWRITE, const void *, pwrite)
PREAD_WRAPPER(pwrite64, FAULT_PWRITE, const void *, pwrite64)

#define FD_WRAPPER(name, family)                                                                             \
	EXPORT int name(int fd)                                                                              \
	{                                                                                                    \
		enum fault_kind k = gate_fd(family, fd);                                                     \
                                                                                                             \
		return k != FAULT_NONE ? fail(k) : real.name(fd);                                            \
	}
FD_WRAPPER(fsync, FAULT_FSYNC)
FD_WRAPPER(fdatasync, FAULT_FDATASYNC)

EXPORT int ftruncate(int fd, off_t len)
{
	enum fault_kind k = gate_fd(FAULT_FTRUNCATE, fd);

	return k != FAULT_NONE ? fail(k) : real.ftruncate(fd, len);
}

EXPORT int ftruncate64(int fd, off64_t len)
{
	enum fault_kind k = gate_fd(FAULT_FTRUNCATE, fd);

	return k != FAULT_NONE ? fail(k) : real.ftruncate64(fd, len);
}

EXPORT int rename(const char *from, const char *to)
{
	enum fault_kind k = gate_rename(AT_FDCWD, from, AT_FDCWD, to);

	return k != FAULT_NONE ? fail(k) : real.rename(from, to);
}

EXPORT int renameat(int d1, const char *from, int d2, const char *to)
{
	enum fault_kind k = gate_rename(d1, from, d2, to);

	return k != FAULT_NONE ? fail(k) : real.renameat(d1, from, d2, to);
}

EXPORT int renameat2(int d1, const char *from, int d2, const char *to, unsigned flags)
{
	enum fault_kind k = gate_rename(d1, from, d2, to);

	return k != FAULT_NONE ? fail(k) : real.renameat2(d1, from, d2, to, flags);
}

EXPORT int unlink(const char *path)
{
	enum fault_kind k = gate_at(FAULT_UNLINK, AT_FDCWD, path);

	return k != FAULT_NONE ? fail(k) : real.unlink(path);
}

EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
	enum fault_kind k = gate_at(FAULT_UNLINK, dirfd, path);

	return k != FAULT_NONE ? fail(k) : real.unlinkat(dirfd, path, flags);
}

EXPORT int mkdir(const char *path, mode_t mode)
{
	enum fault_kind k = gate_at(FAULT_MKDIR, AT_FDCWD, path);

	return k != FAULT_NONE ? fail(k) : real.mkdir(path, mode);
}

EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
	enum fault_kind k = gate_at(FAULT_MKDIR, dirfd, path);

	return k != FAULT_NONE ? fail(k) : real.mkdirat(dirfd, path, mode);
}

/* As Linux does: the fd is gone whatever close returns. */
EXPORT int close(int fd)
{
	enum fault_kind k = gate_fd(FAULT_CLOSE, fd);
	int r = real.close(fd);

	return k != FAULT_NONE && r == 0 ? fail(k) : r;
}

EXPORT int fstat(int fd, struct stat *st)
{
	enum fault_kind k = gate_fd(FAULT_FSTAT, fd);

	return k != FAULT_NONE ? fail(k) : real.fstat(fd, st);
}

EXPORT int fstat64(int fd, struct stat64 *st)
{
	enum fault_kind k = gate_fd(FAULT_FSTAT, fd);

	return k != FAULT_NONE ? fail(k) : real.fstat64(fd, st);
}

#define STAT_WRAPPER(name, st_type)                                                                          \
	EXPORT int name(const char *path, st_type *st)                                                       \
	{                                                                                                    \
		enum fault_kind k = gate_at(FAULT_STAT, AT_FDCWD, path);                                     \
                                                                                                             \
		return k != FAULT_NONE ? fail(k) : real.name(path, st);                                      \
	}
STAT_WRAPPER(stat, struct stat)
STAT_WRAPPER(lstat, struct stat)
STAT_WRAPPER(stat64, struct stat64)
STAT_WRAPPER(lstat64, struct stat64)

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	enum fault_kind k = (flags & AT_EMPTY_PATH) && !path[0] ? gate_fd(FAULT_STAT, dirfd)
								: gate_at(FAULT_STAT, dirfd, path);

	return k != FAULT_NONE ? fail(k) : real.fstatat(dirfd, path, st, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	enum fault_kind k = (flags & AT_EMPTY_PATH) && !path[0] ? gate_fd(FAULT_STAT, dirfd)
								: gate_at(FAULT_STAT, dirfd, path);

	return k != FAULT_NONE ? fail(k) : real.fstatat64(dirfd, path, st, flags);
}

EXPORT DIR *opendir(const char *path)
{
	enum fault_kind k = gate_at(FAULT_OPENDIR, AT_FDCWD, path);

	if (k != FAULT_NONE) {
		fail(k);
		return NULL;
	}
	return real.opendir(path);
}

EXPORT struct dirent *readdir(DIR *d)
{
	enum fault_kind k = gate_dir(FAULT_READDIR, d);

	if (k != FAULT_NONE) {
		fail(k);
		return NULL;
	}
	return real.readdir(d);
}

EXPORT struct dirent64 *readdir64(DIR *d)
{
	enum fault_kind k = gate_dir(FAULT_READDIR, d);

	if (k != FAULT_NONE) {
		fail(k);
		return NULL;
	}
	return real.readdir64(d);
}

EXPORT int closedir(DIR *d)
{
	enum fault_kind k = gate_dir(FAULT_CLOSEDIR, d);
	int r = real.closedir(d);

	return k != FAULT_NONE && r == 0 ? fail(k) : r;
}
