/*
 * inject.c - injection files: the session's files, served from memory at
 * their paths, never written to the disk.
 *
 * The runtime installs the files before main (scone_inject_install). From
 * then on an open of one of those paths for reading returns a fresh sealed
 * memfd holding the content (its own file offset, so every open reads from
 * the start; read, pread, mmap, fstat, lseek work as on any file), stat and
 * access answer from the table, and an open for writing fails with EROFS.
 * Everything else passes through to libc untouched.
 *
 * glibc's stdio does not call the exported open, so fopen is interposed as
 * well; so are the *64 names, the _FORTIFY_SOURCE __open_2 names and the
 * pre-2.33 __xstat names that older binaries import. The table is written
 * once before main and only read afterwards, so no lock is needed.
 */
/* The interposers must be real functions, not glibc's fortify inline wrappers. */
#undef _FORTIFY_SOURCE
#include "runtime/inject.h"
#include "runtime/io_ids.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "runtime/shield.h"
#include "runtime/sys.h"

struct injected {
	char *path; /* absolute, normalised */
	uint8_t *content;
	size_t size;
	mode_t mode;
};

static struct injected *files;
static size_t n_files;

/* Normalise an absolute path in place: collapse "//", "." and "..". */
void scone_path_normalise(char *p)
{
	char *out = p, *seg = p;

	while (*seg) {
		while (*seg == '/')
			seg++;
		char *end = strchrnul(seg, '/');
		size_t len = (size_t)(end - seg);
		if (len == 0 || (len == 1 && seg[0] == '.')) {
			/* nothing */
		} else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
			while (out > p && *--out != '/')
				;
		} else {
			*out++ = '/';
			memmove(out, seg, len);
			out += len;
		}
		seg = end;
	}
	if (out == p)
		*out++ = '/';
	*out = '\0';
}

enum scone_err scone_inject_install(const struct scone_rt_file *f, size_t n)
{
	files = calloc(n ? n : 1, sizeof(*files));
	if (!files)
		return scone_err_set(SCONE_ERR_NOMEM, "injection files");
	for (size_t i = 0; i < n; i++) {
		struct injected *e = &files[i];
		if (f[i].path[0] != '/' || strlen(f[i].path) >= PATH_MAX)
			return scone_err_set(SCONE_ERR_INVALID, "injection file %.64s: not an absolute path",
					     f[i].path);
		e->path = strdup(f[i].path);
		e->content = malloc(f[i].content_size ? f[i].content_size : 1);
		if (!e->path || !e->content)
			return scone_err_set(SCONE_ERR_NOMEM, "injection files");
		scone_path_normalise(e->path);
		memcpy(e->content, f[i].content, f[i].content_size);
		e->size = f[i].content_size;
		e->mode = (mode_t)(f[i].mode & 07777);
		n_files = i + 1;
	}
	return SCONE_ERR_OK;
}

size_t scone_inject_count(void)
{
	return n_files;
}

/* The injected file at path (relative to dirfd or the cwd), or NULL. */
static const struct injected *lookup(int dirfd, const char *path)
{
	char full[PATH_MAX * 2];

	if (n_files == 0 || !scone_shield_abspath(dirfd, path, full, sizeof(full)))
		return NULL;
	for (size_t i = 0; i < n_files; i++)
		if (strcmp(files[i].path, full) == 0)
			return &files[i];
	return NULL;
}

/* A fresh, sealed memfd with the content, positioned at 0. */
static int open_injected(const struct injected *e, int flags)
{
	unsigned mfd_flags = MFD_ALLOW_SEALING | ((flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
	int fd, saved;
	size_t done = 0;

	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_CREAT))) {
		errno = (flags & O_CREAT) && (flags & O_EXCL) ? EEXIST : EROFS;
		return -1;
	}
	if (flags & O_DIRECTORY) {
		errno = ENOTDIR;
		return -1;
	}
	fd = memfd_create("scone-injected", mfd_flags);
	if (fd < 0)
		return -1;
	while (done < e->size) {
		ssize_t w = write(fd, e->content + done, e->size - done);
		if (w <= 0)
			goto fail;
		done += (size_t)w;
	}
	if (lseek(fd, 0, SEEK_SET) != 0 || fchmod(fd, e->mode) != 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved ? saved : EIO;
	return -1;
}

static void fill_stat(const struct injected *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | e->mode;
	st->st_nlink = 1;
	shield_ids(&st->st_uid, &st->st_gid);
	st->st_size = (off_t)e->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((e->size + 511) / 512);
	st->st_ino = (ino_t)(0x5c0e0000u + (uintptr_t)(e - files));
}

#define REAL(name, type) const type real_##name = SYS(name)

static mode_t open_mode(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

/* ---- open family ---- */

typedef int (*openat_fn)(int, const char *, int, ...);

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	const struct injected *e;
	int r;

	if (scone_shield_openat(dirfd, path, flags, mode, &r))
		return r;
	e = lookup(dirfd, path);
	if (e)
		return open_injected(e, flags);
	return SCONE_FD_CALL(SYS(openat)(dirfd, path, flags, mode)); /* (not syscall(): it comes back here) */
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return do_openat(AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return do_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = open_mode(flags, ap);
	va_end(ap);
	return do_openat(dirfd, path, flags | O_LARGEFILE, mode);
}

int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags)
{
	return do_openat(AT_FDCWD, path, flags, 0);
}

int __open64_2(const char *path, int flags);
int __open64_2(const char *path, int flags)
{
	return do_openat(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

int __openat_2(int dirfd, const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags)
{
	return do_openat(dirfd, path, flags, 0);
}

int __openat64_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags)
{
	return do_openat(dirfd, path, flags | O_LARGEFILE, 0);
}

/* ---- stdio ---- */

typedef FILE *(*fopen_fn)(const char *, const char *);

static FILE *fopen_injected(const struct injected *e, const char *mode)
{
	int flags = O_RDONLY | (strchr(mode, 'e') ? O_CLOEXEC : 0);
	FILE *f;
	int fd;

	if (mode[0] != 'r' || strchr(mode, '+')) {
		errno = EROFS;
		return NULL;
	}
	fd = open_injected(e, flags);
	if (fd < 0)
		return NULL;
	f = fdopen(fd, mode);
	if (!f) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return f;
}

FILE *fopen(const char *path, const char *mode)
{
	const struct injected *e;
	REAL(fopen, fopen_fn);
	FILE *f;

	if (scone_shield_fopen(path, mode, &f))
		return f;
	e = lookup(AT_FDCWD, path);
	return e ? fopen_injected(e, mode) : real_fopen(path, mode);
}

FILE *fopen64(const char *path, const char *mode)
{
	const struct injected *e;
	REAL(fopen64, fopen_fn);
	FILE *f;

	if (scone_shield_fopen(path, mode, &f))
		return f;
	e = lookup(AT_FDCWD, path);
	return e ? fopen_injected(e, mode) : real_fopen64(path, mode);
}

/* ---- metadata ---- */

typedef int (*fstatat_fn)(int, const char *, struct stat *, int);
typedef int (*fstatat64_fn)(int, const char *, struct stat64 *, int);
typedef int (*stat_fn)(const char *, struct stat *);
typedef int (*stat64_fn)(const char *, struct stat64 *);
typedef int (*statx_fn)(int, const char *, int, unsigned int, struct statx *);

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "struct stat and stat64 share a layout here");

/* glibc before 2.33 exported these; binaries built then still import them. */
int __xstat(int ver, const char *path, struct stat *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);
typedef int (*xstat_fn)(int, const char *, struct stat *);
typedef int (*xstat64_fn)(int, const char *, struct stat64 *);
typedef int (*fxstatat_fn)(int, int, const char *, struct stat *, int);
typedef int (*fxstatat64_fn)(int, int, const char *, struct stat64 *, int);
typedef int (*access_fn)(const char *, int);
typedef int (*faccessat_fn)(int, const char *, int, int);

static int access_injected(const struct injected *e, int how)
{
	if (how & W_OK) {
		errno = EROFS;
		return -1;
	}
	if ((how & X_OK) && !(e->mode & 0111)) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

#define STAT_SHIM(name, args, dirfd, path, st, sflags, call)                                                 \
	int name args                                                                                        \
	{                                                                                                    \
		const struct injected *e;                                                                    \
		int shield_ret_;                                                                             \
		if (scone_shield_fstatat(dirfd, path, (struct stat *)(void *)(st), sflags, &shield_ret_))    \
			return shield_ret_;                                                                  \
		e = lookup(dirfd, path);                                                                     \
		if (e) {                                                                                     \
			fill_stat(e, (struct stat *)(void *)(st));                                           \
			return 0;                                                                            \
		}                                                                                            \
		call;                                                                                        \
	}

STAT_SHIM(stat, (const char *path, struct stat *st), AT_FDCWD, path, st, 0, REAL(stat, stat_fn);
	  return real_stat(path, st))
STAT_SHIM(lstat, (const char *path, struct stat *st), AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW,
	  REAL(lstat, stat_fn);
	  return real_lstat(path, st))
STAT_SHIM(stat64, (const char *path, struct stat64 *st), AT_FDCWD, path, st, 0, REAL(stat64, stat64_fn);
	  return real_stat64(path, st))
STAT_SHIM(lstat64, (const char *path, struct stat64 *st), AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW,
	  REAL(lstat64, stat64_fn);
	  return real_lstat64(path, st))
STAT_SHIM(fstatat, (int dirfd, const char *path, struct stat *st, int flags), dirfd, path, st, flags,
	  REAL(fstatat, fstatat_fn);
	  return real_fstatat(dirfd, path, st, flags))
STAT_SHIM(fstatat64, (int dirfd, const char *path, struct stat64 *st, int flags), dirfd, path, st, flags,
	  REAL(fstatat64, fstatat64_fn);
	  return real_fstatat64(dirfd, path, st, flags))
STAT_SHIM(__xstat, (int ver, const char *path, struct stat *st), AT_FDCWD, path, st, 0,
	  REAL(__xstat, xstat_fn);
	  return real___xstat(ver, path, st))
STAT_SHIM(__lxstat, (int ver, const char *path, struct stat *st), AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW,
	  REAL(__lxstat, xstat_fn);
	  return real___lxstat(ver, path, st))
STAT_SHIM(__xstat64, (int ver, const char *path, struct stat64 *st), AT_FDCWD, path, st, 0,
	  REAL(__xstat64, xstat64_fn);
	  return real___xstat64(ver, path, st))
STAT_SHIM(__lxstat64, (int ver, const char *path, struct stat64 *st), AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW,
	  REAL(__lxstat64, xstat64_fn);
	  return real___lxstat64(ver, path, st))
STAT_SHIM(__fxstatat, (int ver, int dirfd, const char *path, struct stat *st, int flags), dirfd, path, st,
	  flags, REAL(__fxstatat, fxstatat_fn);
	  return real___fxstatat(ver, dirfd, path, st, flags))
STAT_SHIM(__fxstatat64, (int ver, int dirfd, const char *path, struct stat64 *st, int flags), dirfd, path, st,
	  flags, REAL(__fxstatat64, fxstatat64_fn);
	  return real___fxstatat64(ver, dirfd, path, st, flags))

int access(const char *path, int how)
{
	const struct injected *e;
	REAL(access, access_fn);
	int r;

	if (scone_shield_access(AT_FDCWD, path, how, &r))
		return r;
	e = lookup(AT_FDCWD, path);
	return e ? access_injected(e, how) : real_access(path, how);
}

int faccessat(int dirfd, const char *path, int how, int flags)
{
	const struct injected *e;
	REAL(faccessat, faccessat_fn);
	int r;

	if (scone_shield_access(dirfd, path, how, &r))
		return r;
	e = lookup(dirfd, path);
	return e ? access_injected(e, how) : real_faccessat(dirfd, path, how, flags);
}

/* glibc's euidaccess/eaccess call its internal access, not the exported one (sort -o uses them). */
int euidaccess(const char *path, int how)
{
	const struct injected *e;
	REAL(euidaccess, access_fn);
	int r;

	if (scone_shield_access(AT_FDCWD, path, how, &r))
		return r;
	e = lookup(AT_FDCWD, path);
	return e ? access_injected(e, how) : real_euidaccess(path, how);
}

int eaccess(const char *path, int how)
{
	return euidaccess(path, how);
}

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf)
{
	const struct injected *e;
	REAL(statx, statx_fn);
	int r;

	if (scone_shield_statx(dirfd, path, flags, buf, &r))
		return r;
	e = lookup(dirfd, path);
	if (!e)
		return real_statx(dirfd, path, flags, mask, buf);
	memset(buf, 0, sizeof(*buf));
	buf->stx_mask = STATX_BASIC_STATS;
	buf->stx_blksize = 4096;
	buf->stx_nlink = 1;
	shield_ids(&buf->stx_uid, &buf->stx_gid);
	buf->stx_mode = (uint16_t)(S_IFREG | e->mode);
	buf->stx_ino = 0x5c0e0000u + (uint64_t)(e - files);
	buf->stx_size = e->size;
	buf->stx_blocks = (e->size + 511) / 512;
	return 0;
}
