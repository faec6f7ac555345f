/*
 * fs_suite.c - a file-system test suite over the libc surface a real program
 * uses, run inside one directory ROOT: plainly on a host directory and under
 * the scone runtime on a protected volume, with the same expected output.
 *
 * Usage: fs_suite ROOT. Each run works in a fresh subdirectory ROOT/runN (the
 * first N that does not exist yet) and each check in its own subdirectory
 * of that, so one failure does not cascade. Every check prints exactly one
 * deterministic line, "ok NAME" or "FAIL NAME: detail" (details are errno
 * names, sizes and contents; never inode numbers, times, pids or paths).
 * Exit status 0 only when every check is ok. Files are left behind on
 * purpose: the caller greps the volume's host directory for the marker.
 *
 * Standalone: C17 + POSIX/GNU libc only; cc -std=c17 -D_GNU_SOURCE -pthread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_FDS 32
#define MAX_FILES 8
#define NPATH 8
#define MSG_MAX 512

struct ctx {
	const char *name;
	char dir[PATH_MAX];
	char msg[MSG_MAX];
	char paths[NPATH][PATH_MAX];
	int next_path;
	int fds[MAX_FDS];
	FILE *files[MAX_FILES];
};

static char marker[64];

static const char *ename(int e)
{
	static char buf[32];
	const char *n = strerrorname_np(e);

	if (n)
		return n;
	snprintf(buf, sizeof(buf), "errno %d", e);
	return buf;
}

/* Record the failure (the first one wins) and return -1. */
__attribute__((format(printf, 2, 3))) static int failf(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->msg[0])
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	if (!c->msg[0])
		snprintf(c->msg, sizeof(c->msg), "failed");
	return -1;
}

/* A path inside the check's directory; a ring of NPATH buffers. */
static const char *P(struct ctx *c, const char *name)
{
	char *p = c->paths[c->next_path];

	c->next_path = (c->next_path + 1) % NPATH;
	if (snprintf(p, PATH_MAX, "%s/%s", c->dir, name) >= PATH_MAX)
		p[0] = '\0'; /* too long: the call on "" fails with ENOENT */
	return p;
}

static void track(struct ctx *c, int fd)
{
	for (int i = 0; i < MAX_FDS && fd >= 0; i++) {
		if (c->fds[i] < 0) {
			c->fds[i] = fd;
			return;
		}
	}
}

static void untrack(struct ctx *c, int fd)
{
	for (int i = 0; i < MAX_FDS; i++)
		if (c->fds[i] == fd)
			c->fds[i] = -1;
}

static void ftrack(struct ctx *c, FILE *f)
{
	for (int i = 0; i < MAX_FILES && f; i++) {
		if (!c->files[i]) {
			c->files[i] = f;
			return;
		}
	}
}

static void funtrack(struct ctx *c, FILE *f)
{
	for (int i = 0; i < MAX_FILES; i++)
		if (c->files[i] == f)
			c->files[i] = NULL;
}

/* Close what a failed check left open. */
static void release(struct ctx *c)
{
	for (int i = 0; i < MAX_FILES; i++) {
		if (c->files[i])
			fclose(c->files[i]);
		c->files[i] = NULL;
	}
	for (int i = 0; i < MAX_FDS; i++) {
		if (c->fds[i] >= 0)
			close(c->fds[i]);
		c->fds[i] = -1;
	}
}

/* ---- assertion helpers: each returns 0 or records a detail and returns -1 ---- */

/* A call that returns < 0 on failure. */
#define TRY(c, expr, what)                                                                                   \
	do {                                                                                                 \
		if ((long long)(expr) < 0)                                                                   \
			return failf((c), "%s: %s", (what), ename(errno));                                   \
	} while (0)

/* A call that must fail with errno E. */
#define TRY_ERR(c, expr, E, what)                                                                            \
	do {                                                                                                 \
		errno = 0;                                                                                   \
		long long r_ = (long long)(expr);                                                            \
		if (r_ >= 0)                                                                                 \
			return failf((c), "%s: expected %s, got success", (what), ename(E));                 \
		if (errno != (E))                                                                            \
			return failf((c), "%s: expected %s, got %s", (what), ename(E), ename(errno));        \
	} while (0)

#define EQ(c, got, want, what)                                                                               \
	do {                                                                                                 \
		long long g_ = (long long)(got), w_ = (long long)(want);                                     \
		if (g_ != w_)                                                                                \
			return failf((c), "%s: expected %lld, got %lld", (what), w_, g_);                    \
	} while (0)

#define CHECK(c, cond, ...)                                                                                  \
	do {                                                                                                 \
		if (!(cond))                                                                                 \
			return failf((c), __VA_ARGS__);                                                      \
	} while (0)

/* Printable, bounded rendering of bytes for details. */
static const char *show(const void *p, size_t n)
{
	static char buf[4][96];
	static int k;
	char *o = buf[k];
	const unsigned char *s = p;
	size_t j = 0;

	k = (k + 1) % 4;
	for (size_t i = 0; i < n && j + 5 < sizeof(buf[0]); i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\') {
			o[j++] = (char)s[i];
		} else {
			j += (size_t)snprintf(o + j, sizeof(buf[0]) - j, "\\x%02x", s[i]);
		}
	}
	if (n > 0 && j + 5 >= sizeof(buf[0]))
		snprintf(o + j, sizeof(buf[0]) - j, "...");
	else
		o[j] = '\0';
	return o;
}

#define MEMEQ(c, got, gotn, want, wantn, what)                                                               \
	do {                                                                                                 \
		size_t gn_ = (size_t)(gotn), wn_ = (size_t)(wantn);                                          \
		if (gn_ != wn_ || memcmp((got), (want), wn_) != 0)                                           \
			return failf((c), "%s: expected '%s' (%zu), got '%s' (%zu)", (what),                 \
				     show((want), wn_), wn_, show((got), gn_), gn_);                         \
	} while (0)

static int xopen(struct ctx *c, const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags, mode);

	track(c, fd);
	return fd;
}

static int xclose(struct ctx *c, int fd)
{
	untrack(c, fd);
	return close(fd);
}

/* Write all of buf (loops over short writes). */
static ssize_t write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/* Read until n bytes or EOF; returns the count. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, p + done, n - done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* Whole-file content (up to cap bytes) by path. */
static ssize_t slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t r;
	int e;

	if (fd < 0)
		return -1;
	r = read_full(fd, buf, cap);
	e = errno;
	close(fd);
	errno = e;
	return r;
}

static int put_file(struct ctx *c, const char *path, const char *text)
{
	int fd = xopen(c, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "put_file open");
	TRY(c, write_all(fd, text, strlen(text)), "put_file write");
	TRY(c, xclose(c, fd), "put_file close");
	return 0;
}

static int file_is(struct ctx *c, const char *path, const char *want, const char *what)
{
	char buf[4096];
	ssize_t n = slurp(path, buf, sizeof(buf));

	if (n < 0)
		return failf(c, "%s: read back: %s", what, ename(errno));
	MEMEQ(c, buf, n, want, strlen(want), what);
	return 0;
}

static unsigned char pattern(size_t i, unsigned seed)
{
	return (unsigned char)((i * 131u + (i >> 9) * 7u + seed * 29u) & 0xff);
}

/* ------------------------------- checks ------------------------------- */

static int t_open_creat(struct ctx *c)
{
	char buf[64];
	int fd = xopen(c, P(c, "f.txt"), O_RDWR | O_CREAT, 0644);

	TRY(c, fd, "open O_CREAT");
	TRY(c, write_all(fd, marker, strlen(marker)), "write");
	TRY(c, lseek(fd, 0, SEEK_SET), "lseek");
	ssize_t n = read(fd, buf, sizeof(buf));
	TRY(c, n, "read");
	MEMEQ(c, buf, n, marker, strlen(marker), "read back");
	TRY(c, xclose(c, fd), "close");
	fd = xopen(c, P(c, "f.txt"), O_RDONLY, 0);
	TRY(c, fd, "reopen O_RDONLY");
	n = read(fd, buf, sizeof(buf));
	TRY(c, n, "read reopened");
	MEMEQ(c, buf, n, marker, strlen(marker), "reopened content");
	TRY_ERR(c, write(fd, "x", 1), EBADF, "write on O_RDONLY");
	TRY(c, xclose(c, fd), "close");
	return 0;
}

static int t_openat(struct ctx *c)
{
	char buf[64];
	int dfd = xopen(c, c->dir, O_RDONLY | O_DIRECTORY, 0);

	TRY(c, dfd, "open dir O_DIRECTORY");
	int fd = openat(dfd, "at.txt", O_RDWR | O_CREAT | O_EXCL, 0644);
	track(c, fd);
	TRY(c, fd, "openat O_CREAT");
	TRY(c, write_all(fd, "openat data", 11), "write");
	TRY(c, xclose(c, fd), "close");
	fd = openat(AT_FDCWD, P(c, "at.txt"), O_RDONLY);
	track(c, fd);
	TRY(c, fd, "openat AT_FDCWD");
	ssize_t n = read(fd, buf, sizeof(buf));
	TRY(c, n, "read");
	MEMEQ(c, buf, n, "openat data", 11, "content");
	TRY(c, xclose(c, fd), "close");
	TRY_ERR(c, openat(dfd, "missing", O_RDONLY), ENOENT, "openat missing");
	TRY(c, xclose(c, dfd), "close dir");
	return 0;
}

static int t_creat(struct ctx *c)
{
	struct stat st;
	int fd = creat(P(c, "c.txt"), 0644);

	track(c, fd);
	TRY(c, fd, "creat");
	TRY(c, write_all(fd, "0123456789", 10), "write");
	TRY_ERR(c, read(fd, &st, 1), EBADF, "read on creat fd");
	TRY(c, xclose(c, fd), "close");
	fd = creat(P(c, "c.txt"), 0644); /* truncates */
	track(c, fd);
	TRY(c, fd, "creat existing");
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_size, 0, "size after creat of existing");
	TRY(c, write_all(fd, "abc", 3), "write");
	TRY(c, xclose(c, fd), "close");
	return file_is(c, P(c, "c.txt"), "abc", "content");
}

static int t_open_excl(struct ctx *c)
{
	int fd = xopen(c, P(c, "e.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644);

	TRY(c, fd, "O_CREAT|O_EXCL new");
	TRY(c, xclose(c, fd), "close");
	TRY_ERR(c, open(P(c, "e.txt"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST, "O_CREAT|O_EXCL existing");
	return 0;
}

static int t_open_trunc(struct ctx *c)
{
	struct stat st;

	if (put_file(c, P(c, "t.txt"), "long original content"))
		return -1;
	int fd = xopen(c, P(c, "t.txt"), O_RDWR | O_TRUNC, 0);
	TRY(c, fd, "open O_TRUNC");
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_size, 0, "size after O_TRUNC");
	TRY(c, write_all(fd, "short", 5), "write");
	TRY(c, xclose(c, fd), "close");
	return file_is(c, P(c, "t.txt"), "short", "content");
}

static int t_open_append(struct ctx *c)
{
	char buf[64];
	int fd = xopen(c, P(c, "a.txt"), O_RDWR | O_CREAT | O_APPEND, 0644);

	TRY(c, fd, "open O_APPEND");
	TRY(c, write_all(fd, "one,", 4), "write 1");
	EQ(c, lseek(fd, 0, SEEK_SET), 0, "lseek 0");
	TRY(c, write_all(fd, "two,", 4), "write 2");
	EQ(c, lseek(fd, 0, SEEK_CUR), 8, "offset after append");
	EQ(c, lseek(fd, 2, SEEK_SET), 2, "lseek 2");
	ssize_t n = read(fd, buf, 3);
	TRY(c, n, "read");
	MEMEQ(c, buf, n, "e,t", 3, "read at 2");
	TRY(c, write_all(fd, "three", 5), "write 3");
	EQ(c, lseek(fd, 0, SEEK_CUR), 13, "offset after append 3");
	TRY(c, xclose(c, fd), "close");
	return file_is(c, P(c, "a.txt"), "one,two,three", "content");
}

static int t_open_directory(struct ctx *c)
{
	if (put_file(c, P(c, "file"), "x"))
		return -1;
	TRY_ERR(c, open(P(c, "file"), O_RDONLY | O_DIRECTORY), ENOTDIR, "O_DIRECTORY on a file");
	TRY_ERR(c, open(P(c, "file/sub"), O_RDONLY), ENOTDIR, "open below a file");
	int fd = xopen(c, c->dir, O_RDONLY | O_DIRECTORY, 0);
	TRY(c, fd, "O_DIRECTORY on a dir");
	TRY(c, xclose(c, fd), "close");
	TRY_ERR(c, open(c->dir, O_WRONLY), EISDIR, "O_WRONLY on a dir");
	return 0;
}

static int t_open_missing(struct ctx *c)
{
	TRY_ERR(c, open(P(c, "missing"), O_RDONLY), ENOENT, "open missing");
	TRY_ERR(c, open(P(c, "nodir/f"), O_RDWR | O_CREAT, 0644), ENOENT, "O_CREAT in missing dir");
	return 0;
}

static int t_close(struct ctx *c)
{
	char b;
	int fd = open(P(c, "f"), O_RDWR | O_CREAT, 0644);

	TRY(c, fd, "open");
	TRY(c, close(fd), "close");
	TRY_ERR(c, close(fd), EBADF, "close twice");
	TRY_ERR(c, read(fd, &b, 1), EBADF, "read after close");
	TRY_ERR(c, write(fd, &b, 1), EBADF, "write after close");
	return 0;
}

static int t_read_write(struct ctx *c)
{
	char buf[100];
	int fd = xopen(c, P(c, "rw"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	EQ(c, write(fd, "hello world", 11), 11, "write");
	EQ(c, write(fd, "", 0), 0, "write 0 bytes");
	EQ(c, lseek(fd, 6, SEEK_SET), 6, "lseek");
	ssize_t n = read(fd, buf, sizeof(buf));
	TRY(c, n, "read");
	MEMEQ(c, buf, n, "world", 5, "short read at EOF");
	EQ(c, read(fd, buf, sizeof(buf)), 0, "read at EOF");
	EQ(c, lseek(fd, 0, SEEK_SET), 0, "lseek 0");
	EQ(c, read(fd, buf, 5), 5, "read 5");
	MEMEQ(c, buf, 5, "hello", 5, "first 5");
	EQ(c, write(fd, "_", 1), 1, "overwrite 1 byte");
	TRY(c, xclose(c, fd), "close");
	return file_is(c, P(c, "rw"), "hello_world", "content");
}

static int t_pread_pwrite(struct ctx *c)
{
	char buf[32];
	int fd = xopen(c, P(c, "p"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	TRY(c, write_all(fd, "abcdefghij", 10), "write");
	EQ(c, lseek(fd, 3, SEEK_SET), 3, "lseek");
	EQ(c, pwrite(fd, "XY", 2, 5), 2, "pwrite");
	EQ(c, lseek(fd, 0, SEEK_CUR), 3, "offset unchanged by pwrite");
	EQ(c, pread(fd, buf, 4, 4), 4, "pread");
	MEMEQ(c, buf, 4, "eXYh", 4, "pread content");
	EQ(c, pread(fd, buf, sizeof(buf), 8), 2, "pread short at EOF");
	EQ(c, pread(fd, buf, sizeof(buf), 100), 0, "pread beyond EOF");
	EQ(c, lseek(fd, 0, SEEK_CUR), 3, "offset unchanged by pread");
	EQ(c, pwrite(fd, "Z", 1, 12), 1, "pwrite beyond EOF");
	EQ(c, pread(fd, buf, sizeof(buf), 0), 13, "pread all");
	MEMEQ(c, buf, 13, "abcdeXYhij\0\0Z", 13, "content");
	TRY_ERR(c, pread(fd, buf, 1, -1), EINVAL, "pread negative offset");
	TRY(c, xclose(c, fd), "close");
	return 0;
}

static int t_readv_writev(struct ctx *c)
{
	char a[4], b[16];
	struct iovec w[3] = {{"alpha-", 6}, {"", 0}, {"beta\n", 5}};
	struct iovec r[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	int fd = xopen(c, P(c, "v"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	EQ(c, writev(fd, w, 3), 11, "writev");
	EQ(c, lseek(fd, 0, SEEK_CUR), 11, "offset after writev");
	EQ(c, lseek(fd, 0, SEEK_SET), 0, "lseek");
	EQ(c, readv(fd, r, 2), 11, "readv");
	MEMEQ(c, a, 4, "alph", 4, "readv iov 0");
	MEMEQ(c, b, 7, "a-beta\n", 7, "readv iov 1");
	EQ(c, readv(fd, r, 2), 0, "readv at EOF");
	TRY(c, xclose(c, fd), "close");
	return 0;
}

static int t_preadv_pwritev(struct ctx *c)
{
	char a[3], b[5];
	struct iovec w[2] = {{"BE", 2}, {"TA", 2}};
	struct iovec r[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	int fd = xopen(c, P(c, "pv"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	TRY(c, write_all(fd, "alpha-beta-gamma", 16), "write");
	EQ(c, lseek(fd, 1, SEEK_SET), 1, "lseek");
	EQ(c, pwritev(fd, w, 2, 6), 4, "pwritev");
	EQ(c, preadv(fd, r, 2, 4), 8, "preadv");
	MEMEQ(c, a, 3, "a-B", 3, "preadv iov 0");
	MEMEQ(c, b, 5, "ETA-g", 5, "preadv iov 1");
	EQ(c, preadv(fd, r, 2, 14), 2, "preadv short at EOF");
	MEMEQ(c, a, 2, "ma", 2, "preadv tail");
	EQ(c, lseek(fd, 0, SEEK_CUR), 1, "offset unchanged");
	TRY(c, xclose(c, fd), "close");
	return file_is(c, P(c, "pv"), "alpha-BETA-gamma", "content");
}

static int t_lseek(struct ctx *c)
{
	char buf[32];
	int fd = xopen(c, P(c, "s"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	TRY(c, write_all(fd, "0123456789", 10), "write");
	EQ(c, lseek(fd, 2, SEEK_SET), 2, "SEEK_SET");
	EQ(c, lseek(fd, 3, SEEK_CUR), 5, "SEEK_CUR +3");
	EQ(c, lseek(fd, -1, SEEK_CUR), 4, "SEEK_CUR -1");
	EQ(c, read(fd, buf, 2), 2, "read");
	MEMEQ(c, buf, 2, "45", 2, "read at 4");
	EQ(c, lseek(fd, -3, SEEK_END), 7, "SEEK_END -3");
	EQ(c, lseek(fd, 0, SEEK_END), 10, "SEEK_END 0");
	EQ(c, lseek(fd, 5, SEEK_END), 15, "SEEK_END +5 (beyond EOF)");
	EQ(c, read(fd, buf, 4), 0, "read beyond EOF");
	TRY_ERR(c, lseek(fd, -20, SEEK_SET), EINVAL, "negative SEEK_SET");
	TRY_ERR(c, lseek(fd, -20, SEEK_END), EINVAL, "negative SEEK_END");
	EQ(c, lseek(fd, 0, SEEK_CUR), 15, "offset kept after EINVAL");
	EQ(c, write(fd, "!", 1), 1, "write beyond EOF");
	EQ(c, pread(fd, buf, sizeof(buf), 8), 8, "pread tail");
	MEMEQ(c, buf, 8, "89\0\0\0\0\0!", 8, "gap reads as zeros");
	TRY(c, xclose(c, fd), "close");
	return 0;
}

static int t_sparse(struct ctx *c)
{
	const off_t at = 1 << 20;
	static char buf[1 << 16];
	struct stat st;
	int fd = xopen(c, P(c, "sparse"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	EQ(c, lseek(fd, at, SEEK_SET), at, "lseek 1 MiB");
	TRY(c, write_all(fd, "end-of-sparse", 13), "write at 1 MiB");
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_size, at + 13, "st_size");
	TRY(c, xclose(c, fd), "close");
	fd = xopen(c, P(c, "sparse"), O_RDONLY, 0);
	TRY(c, fd, "reopen");
	for (off_t off = 0; off < at; off += (off_t)sizeof(buf)) {
		ssize_t n = read_full(fd, buf, sizeof(buf));
		TRY(c, n, "read hole");
		EQ(c, n, sizeof(buf), "hole read size");
		for (size_t i = 0; i < sizeof(buf); i++)
			CHECK(c, buf[i] == 0, "hole byte at %lld is 0x%02x", (long long)off + (long long)i,
			      (unsigned char)buf[i]);
	}
	ssize_t n = read(fd, buf, sizeof(buf));
	TRY(c, n, "read tail");
	MEMEQ(c, buf, n, "end-of-sparse", 13, "tail");
	TRY(c, xclose(c, fd), "close");
	if (stat(P(c, "sparse"), &st) < 0)
		return failf(c, "stat: %s", ename(errno));
	EQ(c, st.st_size, at + 13, "stat st_size");
	return 0;
}

static int t_stat(struct ctx *c)
{
	struct stat st;
	struct statx sx;

	if (put_file(c, P(c, "f"), "0123456789abcdef"))
		return -1;
	TRY(c, mkdir(P(c, "d"), 0755), "mkdir");
	TRY(c, stat(P(c, "f"), &st), "stat file");
	EQ(c, st.st_size, 16, "stat size");
	CHECK(c, S_ISREG(st.st_mode), "stat file: not S_ISREG (mode 0%o)", (unsigned)st.st_mode & S_IFMT);
	TRY(c, stat(P(c, "d"), &st), "stat dir");
	CHECK(c, S_ISDIR(st.st_mode), "stat dir: not S_ISDIR (mode 0%o)", (unsigned)st.st_mode & S_IFMT);
	TRY(c, lstat(P(c, "f"), &st), "lstat");
	CHECK(c, S_ISREG(st.st_mode) && st.st_size == 16, "lstat: type 0%o size %lld",
	      (unsigned)st.st_mode & S_IFMT, (long long)st.st_size);
	int fd = xopen(c, P(c, "f"), O_RDWR, 0);
	TRY(c, fd, "open");
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_size, 16, "fstat size");
	CHECK(c, S_ISREG(st.st_mode), "fstat: not S_ISREG");
	TRY(c, write_all(fd, "0123456789abcdefXYZ", 19), "write grows");
	TRY(c, fstat(fd, &st), "fstat after write");
	EQ(c, st.st_size, 19, "fstat size after write");
	TRY(c, xclose(c, fd), "close");
	int dfd = xopen(c, c->dir, O_RDONLY | O_DIRECTORY, 0);
	TRY(c, dfd, "open dir");
	TRY(c, fstatat(dfd, "f", &st, 0), "fstatat");
	EQ(c, st.st_size, 19, "fstatat size");
	TRY(c, fstatat(dfd, "d", &st, AT_SYMLINK_NOFOLLOW), "fstatat dir");
	CHECK(c, S_ISDIR(st.st_mode), "fstatat dir: not S_ISDIR");
	TRY_ERR(c, fstatat(dfd, "missing", &st, 0), ENOENT, "fstatat missing");
	memset(&sx, 0, sizeof(sx));
	TRY(c, statx(dfd, "f", 0, STATX_BASIC_STATS, &sx), "statx");
	CHECK(c, sx.stx_mask & STATX_SIZE, "statx: no STATX_SIZE in mask");
	EQ(c, sx.stx_size, 19, "statx size");
	CHECK(c, S_ISREG(sx.stx_mode), "statx: not S_ISREG");
	TRY(c, statx(AT_FDCWD, P(c, "d"), 0, STATX_TYPE, &sx), "statx dir");
	CHECK(c, S_ISDIR(sx.stx_mode), "statx dir: not S_ISDIR");
	TRY_ERR(c, statx(dfd, "missing", 0, STATX_BASIC_STATS, &sx), ENOENT, "statx missing");
	TRY(c, fstat(dfd, &st), "fstat dir fd");
	CHECK(c, S_ISDIR(st.st_mode), "fstat dir fd: not S_ISDIR");
	TRY(c, xclose(c, dfd), "close dir");
	TRY(c, access(P(c, "f"), F_OK), "access F_OK");
	TRY(c, access(P(c, "f"), R_OK | W_OK), "access R_OK|W_OK");
	TRY(c, access(P(c, "d"), F_OK), "access dir");
	TRY_ERR(c, access(P(c, "missing"), F_OK), ENOENT, "access F_OK missing");
	TRY_ERR(c, access(P(c, "missing"), R_OK), ENOENT, "access R_OK missing");
	TRY_ERR(c, stat(P(c, "missing"), &st), ENOENT, "stat missing");
	TRY_ERR(c, stat(P(c, "f/x"), &st), ENOTDIR, "stat below a file");
	return 0;
}

static int t_truncate(struct ctx *c)
{
	char buf[64];
	struct stat st;

	if (put_file(c, P(c, "t"), "0123456789"))
		return -1;
	TRY(c, truncate(P(c, "t"), 4), "truncate shrink");
	if (file_is(c, P(c, "t"), "0123", "after truncate shrink"))
		return -1;
	TRY(c, truncate(P(c, "t"), 8), "truncate grow");
	TRY(c, stat(P(c, "t"), &st), "stat");
	EQ(c, st.st_size, 8, "size after truncate grow");
	EQ(c, slurp(P(c, "t"), buf, sizeof(buf)), 8, "read after grow");
	MEMEQ(c, buf, 8, "0123\0\0\0\0", 8, "grown region is zeros");
	int fd = xopen(c, P(c, "t"), O_RDWR, 0);
	TRY(c, fd, "open");
	TRY(c, ftruncate(fd, 2), "ftruncate shrink");
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_size, 2, "size after ftruncate shrink");
	TRY(c, ftruncate(fd, 6000), "ftruncate grow");
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_size, 6000, "size after ftruncate grow");
	EQ(c, pread(fd, buf, 4, 5996), 4, "pread end");
	MEMEQ(c, buf, 4, "\0\0\0\0", 4, "grown end is zeros");
	EQ(c, pread(fd, buf, 4, 0), 4, "pread start");
	MEMEQ(c, buf, 4, "01\0\0", 4, "start after shrink+grow");
	TRY_ERR(c, ftruncate(fd, -1), EINVAL, "ftruncate negative");
	TRY(c, xclose(c, fd), "close");
	fd = xopen(c, P(c, "t"), O_RDONLY, 0);
	TRY(c, fd, "open O_RDONLY");
	errno = 0;
	long long r = ftruncate(fd, 1);
	CHECK(c, r < 0 && (errno == EINVAL || errno == EBADF), "ftruncate on O_RDONLY: %s",
	      r < 0 ? ename(errno) : "success");
	TRY(c, xclose(c, fd), "close");
	TRY_ERR(c, truncate(P(c, "missing"), 0), ENOENT, "truncate missing");
	return 0;
}

static int t_fsync(struct ctx *c)
{
	int fd = xopen(c, P(c, "f"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	TRY(c, write_all(fd, "synced", 6), "write");
	TRY(c, fsync(fd), "fsync");
	TRY(c, write_all(fd, " data", 5), "write");
	TRY(c, fdatasync(fd), "fdatasync");
	if (file_is(c, P(c, "f"), "synced data", "content while open"))
		return -1;
	TRY(c, xclose(c, fd), "close");
	TRY_ERR(c, fsync(fd), EBADF, "fsync closed fd");
	return file_is(c, P(c, "f"), "synced data", "content");
}

static int t_rename(struct ctx *c)
{
	struct stat st;

	if (put_file(c, P(c, "a"), "new") || put_file(c, P(c, "b"), "old content"))
		return -1;
	TRY(c, rename(P(c, "a"), P(c, "b")), "rename over existing");
	TRY_ERR(c, stat(P(c, "a"), &st), ENOENT, "old name after rename");
	if (file_is(c, P(c, "b"), "new", "target after rename"))
		return -1;
	TRY(c, mkdir(P(c, "d1"), 0755), "mkdir d1");
	if (put_file(c, P(c, "d1/inner"), "inner"))
		return -1;
	TRY(c, rename(P(c, "d1"), P(c, "d2")), "rename directory");
	TRY_ERR(c, stat(P(c, "d1"), &st), ENOENT, "old dir name");
	if (file_is(c, P(c, "d2/inner"), "inner", "file in renamed dir"))
		return -1;
	int dfd = xopen(c, c->dir, O_RDONLY | O_DIRECTORY, 0);
	TRY(c, dfd, "open dir");
	TRY(c, renameat(dfd, "b", dfd, "d2/moved"), "renameat into subdir");
	if (file_is(c, P(c, "d2/moved"), "new", "renameat target"))
		return -1;
	TRY_ERR(c, renameat(dfd, "missing", dfd, "x"), ENOENT, "renameat missing");
	TRY(c, mkdir(P(c, "d3"), 0755), "mkdir d3");
	TRY_ERR(c, rename(P(c, "d2/inner"), P(c, "d3")), EISDIR, "rename file over dir");
	TRY(c, xclose(c, dfd), "close dir");
	return 0;
}

static int t_unlink(struct ctx *c)
{
	struct stat st;
	char buf[16];

	if (put_file(c, P(c, "a"), "a") || put_file(c, P(c, "b"), "b"))
		return -1;
	TRY(c, unlink(P(c, "a")), "unlink");
	TRY_ERR(c, stat(P(c, "a"), &st), ENOENT, "stat after unlink");
	TRY_ERR(c, unlink(P(c, "a")), ENOENT, "unlink missing");
	TRY(c, mkdir(P(c, "d"), 0755), "mkdir");
	TRY_ERR(c, unlink(P(c, "d")), EISDIR, "unlink a dir");
	int dfd = xopen(c, c->dir, O_RDONLY | O_DIRECTORY, 0);
	TRY(c, dfd, "open dir");
	TRY_ERR(c, unlinkat(dfd, "b", AT_REMOVEDIR), ENOTDIR, "unlinkat AT_REMOVEDIR on a file");
	TRY(c, unlinkat(dfd, "b", 0), "unlinkat");
	TRY_ERR(c, stat(P(c, "b"), &st), ENOENT, "stat after unlinkat");
	TRY(c, unlinkat(dfd, "d", AT_REMOVEDIR), "unlinkat AT_REMOVEDIR");
	TRY_ERR(c, stat(P(c, "d"), &st), ENOENT, "stat after unlinkat dir");
	TRY(c, xclose(c, dfd), "close dir");
	/* An open file stays readable after unlink. */
	if (put_file(c, P(c, "open"), "still here"))
		return -1;
	int fd = xopen(c, P(c, "open"), O_RDONLY, 0);
	TRY(c, fd, "open");
	TRY(c, unlink(P(c, "open")), "unlink open file");
	ssize_t n = read(fd, buf, sizeof(buf));
	TRY(c, n, "read after unlink");
	MEMEQ(c, buf, n, "still here", 10, "content after unlink");
	TRY(c, xclose(c, fd), "close");
	return 0;
}

static int t_mkdir_rmdir(struct ctx *c)
{
	struct stat st;

	TRY(c, mkdir(P(c, "d"), 0755), "mkdir");
	TRY_ERR(c, mkdir(P(c, "d"), 0755), EEXIST, "mkdir existing");
	TRY(c, mkdir(P(c, "d/sub"), 0755), "mkdir nested");
	TRY_ERR(c, mkdir(P(c, "x/y"), 0755), ENOENT, "mkdir in missing parent");
	if (put_file(c, P(c, "d/sub/f"), "f"))
		return -1;
	TRY_ERR(c, mkdir(P(c, "d/sub/f"), 0755), EEXIST, "mkdir over a file");
	TRY_ERR(c, rmdir(P(c, "d")), ENOTEMPTY, "rmdir non-empty");
	TRY_ERR(c, rmdir(P(c, "d/sub/f")), ENOTDIR, "rmdir a file");
	TRY(c, unlink(P(c, "d/sub/f")), "unlink");
	TRY(c, rmdir(P(c, "d/sub")), "rmdir empty");
	TRY(c, rmdir(P(c, "d")), "rmdir");
	TRY_ERR(c, stat(P(c, "d"), &st), ENOENT, "stat after rmdir");
	TRY_ERR(c, rmdir(P(c, "d")), ENOENT, "rmdir missing");
	TRY(c, mkdirat(AT_FDCWD, P(c, "at"), 0755), "mkdirat");
	TRY(c, stat(P(c, "at"), &st), "stat mkdirat");
	CHECK(c, S_ISDIR(st.st_mode), "mkdirat: not a dir");
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of dir (without . and ..), joined by ',' into out. */
static int list_dir(struct ctx *c, const char *dir, char *out, size_t size)
{
	char *names[64];
	size_t n = 0, len = 0;
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return failf(c, "opendir: %s", ename(errno));
	errno = 0;
	while ((e = readdir(d)) && n < 64) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		names[n++] = strdup(e->d_name);
	}
	int e2 = errno;
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		len +=
		    (size_t)snprintf(out + len, len < size ? size - len : 0, "%s%s", i ? "," : "", names[i]);
		free(names[i]);
	}
	if (e2)
		return failf(c, "readdir: %s", ename(e2));
	return 0;
}

static int t_readdir(struct ctx *c)
{
	char list[1024];
	const char *want = "a.txt,b,c.dat,sub,zz";
	struct dirent *e;
	int types = 0;

	if (put_file(c, P(c, "c.dat"), "c") || put_file(c, P(c, "a.txt"), "a") ||
	    put_file(c, P(c, "b"), "b") || put_file(c, P(c, "zz"), "z"))
		return -1;
	TRY(c, mkdir(P(c, "sub"), 0755), "mkdir");
	if (put_file(c, P(c, "sub/inner"), "i") || list_dir(c, c->dir, list, sizeof(list)))
		return -1;
	CHECK(c, !strcmp(list, want), "list: expected '%s', got '%s'", want, list);
	if (list_dir(c, P(c, "sub"), list, sizeof(list)))
		return -1;
	CHECK(c, !strcmp(list, "inner"), "sub list: expected 'inner', got '%s'", list);
	TRY(c, unlink(P(c, "b")), "unlink");
	if (list_dir(c, c->dir, list, sizeof(list)))
		return -1;
	CHECK(c, !strcmp(list, "a.txt,c.dat,sub,zz"), "list after unlink: got '%s'", list);
	DIR *d = opendir(c->dir);
	CHECK(c, d, "opendir: %s", ename(errno));
	int dots = 0, total = 0;
	while ((e = readdir(d))) {
		total++;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			dots++;
		else if (!strcmp(e->d_name, "sub") && e->d_type == DT_DIR)
			types++;
		else if (!strcmp(e->d_name, "zz") && e->d_type == DT_REG)
			types++;
	}
	rewinddir(d);
	int again = 0;
	while (readdir(d))
		again++;
	closedir(d);
	EQ(c, dots, 2, "entries . and ..");
	EQ(c, types, 2, "d_type of sub and zz");
	EQ(c, again, total, "entries after rewinddir");
	CHECK(c, !opendir(P(c, "missing")) && errno == ENOENT, "opendir missing: %s", ename(errno));
	return 0;
}

static int t_dup(struct ctx *c)
{
	char buf[16];
	int fd = xopen(c, P(c, "d"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	TRY(c, write_all(fd, "0123456789abcdef", 16), "write");
	EQ(c, lseek(fd, 0, SEEK_SET), 0, "lseek");
	int d1 = dup(fd);
	track(c, d1);
	TRY(c, d1, "dup");
	EQ(c, read(fd, buf, 2), 2, "read fd");
	EQ(c, read(d1, buf, 2), 2, "read dup");
	MEMEQ(c, buf, 2, "23", 2, "dup shares the offset");
	int d2 = xopen(c, "/dev/null", O_RDONLY, 0);
	TRY(c, d2, "open /dev/null");
	EQ(c, dup2(fd, d2), d2, "dup2");
	EQ(c, read(d2, buf, 2), 2, "read dup2");
	MEMEQ(c, buf, 2, "45", 2, "dup2 shares the offset");
	int d3 = xopen(c, "/dev/null", O_RDONLY, 0);
	TRY(c, d3, "open /dev/null");
	EQ(c, dup3(fd, d3, O_CLOEXEC), d3, "dup3");
	EQ(c, fcntl(d3, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC, "dup3 O_CLOEXEC");
	EQ(c, fcntl(fd, F_GETFD) & FD_CLOEXEC, 0, "original has no FD_CLOEXEC");
	EQ(c, read(d3, buf, 2), 2, "read dup3");
	MEMEQ(c, buf, 2, "67", 2, "dup3 shares the offset");
	int d4 = fcntl(fd, F_DUPFD, 100);
	track(c, d4);
	TRY(c, d4, "F_DUPFD");
	CHECK(c, d4 >= 100, "F_DUPFD: fd below the minimum");
	EQ(c, read(d4, buf, 2), 2, "read F_DUPFD");
	MEMEQ(c, buf, 2, "89", 2, "F_DUPFD shares the offset");
	TRY(c, xclose(c, fd), "close original");
	TRY(c, write_all(d1, "XY", 2), "write via dup after close");
	EQ(c, lseek(d4, 0, SEEK_CUR), 12, "offset seen by F_DUPFD copy");
	TRY(c, xclose(c, d1), "close");
	TRY(c, xclose(c, d2), "close");
	TRY(c, xclose(c, d3), "close");
	EQ(c, pread(d4, buf, 16, 0), 16, "pread last copy");
	MEMEQ(c, buf, 16, "0123456789XYcdef", 16, "content");
	TRY(c, xclose(c, d4), "close");
	TRY_ERR(c, dup(d4), EBADF, "dup closed fd");
	TRY_ERR(c, dup3(0, 0, 0), EINVAL, "dup3 same fd");
	return 0;
}

static int t_fcntl_flags(struct ctx *c)
{
	int fd = xopen(c, P(c, "f"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	int fl = fcntl(fd, F_GETFL);
	TRY(c, fl, "F_GETFL");
	EQ(c, fl & O_ACCMODE, O_RDWR, "access mode");
	EQ(c, fl & O_APPEND, 0, "O_APPEND initially");
	TRY(c, write_all(fd, "abcdef", 6), "write");
	TRY(c, fcntl(fd, F_SETFL, fl | O_APPEND), "F_SETFL O_APPEND");
	fl = fcntl(fd, F_GETFL);
	EQ(c, fl & O_APPEND, O_APPEND, "O_APPEND after F_SETFL");
	EQ(c, lseek(fd, 1, SEEK_SET), 1, "lseek");
	TRY(c, write_all(fd, "GH", 2), "append write");
	EQ(c, lseek(fd, 0, SEEK_CUR), 8, "offset after append");
	TRY(c, fcntl(fd, F_SETFL, fl & ~O_APPEND), "F_SETFL clear O_APPEND");
	EQ(c, lseek(fd, 1, SEEK_SET), 1, "lseek");
	TRY(c, write_all(fd, "b", 1), "positioned write");
	TRY(c, xclose(c, fd), "close");
	fd = xopen(c, P(c, "f"), O_WRONLY | O_APPEND, 0);
	TRY(c, fd, "open O_WRONLY|O_APPEND");
	fl = fcntl(fd, F_GETFL);
	EQ(c, fl & (O_ACCMODE | O_APPEND), O_WRONLY | O_APPEND, "F_GETFL of O_WRONLY|O_APPEND");
	TRY(c, xclose(c, fd), "close");
	return file_is(c, P(c, "f"), "abcdefGH", "content");
}

/* Exit codes of the lock child. */
enum { LK_OK, LK_OPEN, LK_GETLK, LK_NOCONFLICT, LK_TYPE, LK_PID, LK_SETLK_OK, LK_SETLK_ERR, LK_INH };

static int lock_child(const char *path, int inherited, pid_t parent)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 20};
	int fd = open(path, O_RDWR);

	if (fd < 0)
		return LK_OPEN;
	if (fcntl(fd, F_GETLK, &fl) < 0)
		return LK_GETLK;
	if (fl.l_type == F_UNLCK)
		return LK_NOCONFLICT;
	if (fl.l_type != F_WRLCK || fl.l_start != 0 || fl.l_len != 100)
		return LK_TYPE;
	if (fl.l_pid != parent)
		return LK_PID;
	fl = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1};
	if (fcntl(fd, F_SETLK, &fl) == 0)
		return LK_SETLK_OK;
	if (errno != EAGAIN && errno != EACCES)
		return LK_SETLK_ERR;
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1};
	if (fcntl(inherited, F_GETLK, &fl) < 0 || fl.l_type != F_WRLCK)
		return LK_INH;
	close(fd);
	return LK_OK;
}

static int wait_child(struct ctx *c, pid_t pid, int *code)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return failf(c, "waitpid: %s", ename(errno));
	}
	if (!WIFEXITED(st))
		return failf(c, "child killed by signal %d", WTERMSIG(st));
	*code = WEXITSTATUS(st);
	return 0;
}

static int t_fcntl_lock(struct ctx *c)
{
	static const char *const why[] = {"ok",
					  "child open failed",
					  "child F_GETLK failed",
					  "child sees no conflicting lock",
					  "child sees another lock range",
					  "child sees another owner pid",
					  "child F_SETLK succeeded",
					  "child F_SETLK: unexpected errno",
					  "child F_GETLK on inherited fd"};
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	int code = -1;
	int fd = xopen(c, P(c, "lock"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	TRY(c, write_all(fd, "locked file", 11), "write");
	TRY(c, fcntl(fd, F_SETLK, &fl), "F_SETLK F_WRLCK");
	fl = (struct flock){.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
	TRY(c, fcntl(fd, F_GETLK, &fl), "F_GETLK own");
	EQ(c, fl.l_type, F_UNLCK, "own lock does not conflict");
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	TRY(c, pid, "fork");
	if (pid == 0)
		_exit(lock_child(P(c, "lock"), fd, parent));
	if (wait_child(c, pid, &code))
		return -1;
	CHECK(c, code == LK_OK, "%s (code %d)",
	      code >= 0 && code < (int)(sizeof(why) / sizeof(why[0])) ? why[code] : "?", code);
	fl = (struct flock){.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
	TRY(c, fcntl(fd, F_SETLK, &fl), "F_SETLK F_UNLCK");
	TRY(c, xclose(c, fd), "close");
	return 0;
}

static int t_sendfile(struct ctx *c)
{
	char buf[64];
	off_t off = 6;

	if (put_file(c, P(c, "src"), "alpha-BETA-gamma\n"))
		return -1;
	int in = xopen(c, P(c, "src"), O_RDONLY, 0);
	TRY(c, in, "open src");
	int out = xopen(c, P(c, "dst"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	TRY(c, out, "open dst");
	EQ(c, sendfile(out, in, &off, 100), 11, "sendfile with offset");
	EQ(c, off, 17, "offset after sendfile");
	EQ(c, lseek(in, 0, SEEK_CUR), 0, "src offset unchanged");
	EQ(c, sendfile(out, in, NULL, 5), 5, "sendfile at current offset");
	EQ(c, lseek(in, 0, SEEK_CUR), 5, "src offset advanced");
	EQ(c, lseek(out, 0, SEEK_CUR), 16, "dst offset");
	TRY(c, xclose(c, out), "close dst");
	TRY(c, xclose(c, in), "close src");
	if (file_is(c, P(c, "dst"), "BETA-gamma\nalpha", "dst content"))
		return -1;
	EQ(c, slurp(P(c, "src"), buf, sizeof(buf)), 17, "src intact");
	return 0;
}

static int t_copy_file_range(struct ctx *c)
{
	off64_t ioff = 6, ooff = 2;

	if (put_file(c, P(c, "src"), "alpha-BETA-gamma\n") || put_file(c, P(c, "dst"), "0123456789"))
		return -1;
	int in = xopen(c, P(c, "src"), O_RDONLY, 0);
	TRY(c, in, "open src");
	int out = xopen(c, P(c, "dst"), O_RDWR, 0);
	TRY(c, out, "open dst");
	EQ(c, copy_file_range(in, &ioff, out, &ooff, 4, 0), 4, "copy_file_range with offsets");
	EQ(c, ioff, 10, "in offset");
	EQ(c, ooff, 6, "out offset");
	EQ(c, lseek(in, 0, SEEK_CUR), 0, "src fd offset unchanged");
	EQ(c, lseek(out, 0, SEEK_CUR), 0, "dst fd offset unchanged");
	EQ(c, lseek(out, 0, SEEK_END), 10, "lseek dst end");
	EQ(c, copy_file_range(in, NULL, out, NULL, 100, 0), 17, "copy_file_range at fd offsets");
	EQ(c, lseek(in, 0, SEEK_CUR), 17, "src fd offset advanced");
	EQ(c, copy_file_range(in, NULL, out, NULL, 100, 0), 0, "copy_file_range at EOF");
	TRY(c, xclose(c, out), "close dst");
	TRY(c, xclose(c, in), "close src");
	return file_is(c, P(c, "dst"), "01BETA6789alpha-BETA-gamma\n", "dst content");
}

static int t_mmap(struct ctx *c)
{
	char want[5000];
	struct stat st;

	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (char)('a' + i % 26);
	memcpy(want + 4000, marker, strlen(marker));
	int fd = xopen(c, P(c, "m"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	TRY(c, fd, "open");
	TRY(c, write_all(fd, want, sizeof(want)), "write");
	TRY(c, xclose(c, fd), "close");
	fd = xopen(c, P(c, "m"), O_RDONLY, 0);
	TRY(c, fd, "reopen");
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_size, sizeof(want), "size");
	char *p = mmap(NULL, sizeof(want), PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(c, p != MAP_FAILED, "mmap MAP_PRIVATE PROT_READ: %s", ename(errno));
	int same = !memcmp(p, want, sizeof(want));
	int tail_zero = p[sizeof(want)] == 0 && p[8191] == 0;
	munmap(p, sizeof(want));
	CHECK(c, same, "mapped bytes differ from the file");
	CHECK(c, tail_zero, "bytes past EOF in the last page are not zero");
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 4096);
	CHECK(c, p != MAP_FAILED, "mmap at offset 4096: %s", ename(errno));
	same = !memcmp(p, want + 4096, sizeof(want) - 4096);
	munmap(p, 4096);
	CHECK(c, same, "mapping at offset 4096 differs");
	TRY(c, xclose(c, fd), "close");
	return 0;
}

static int t_large_file(struct ctx *c)
{
	static const size_t wsz[] = {4093, 65537, 1, 300007, 7919, 123};
	static const size_t rsz[] = {8191, 131071, 3, 77777, 1};
	const size_t total = 3u << 20;
	static unsigned char buf[300007];
	struct stat st;
	size_t off = 0, k = 0;
	int fd = xopen(c, P(c, "big"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	while (off < total) {
		size_t n = wsz[k++ % 6];
		if (n > total - off)
			n = total - off;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i, 3);
		if (write_all(fd, buf, n) < 0)
			return failf(c, "write at %zu: %s", off, ename(errno));
		off += n;
	}
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_size, total, "size");
	TRY(c, xclose(c, fd), "close");
	fd = xopen(c, P(c, "big"), O_RDONLY, 0);
	TRY(c, fd, "reopen");
	off = 0;
	k = 0;
	while (off < total) {
		size_t n = rsz[k++ % 5];
		ssize_t r = read_full(fd, buf, n);
		if (r < 0)
			return failf(c, "read at %zu: %s", off, ename(errno));
		if ((size_t)r != (n < total - off ? n : total - off))
			return failf(c, "read at %zu: got %zd bytes", off, r);
		for (size_t i = 0; i < (size_t)r; i++)
			if (buf[i] != pattern(off + i, 3))
				return failf(c, "byte %zu differs", off + i);
		off += (size_t)r;
	}
	EQ(c, read(fd, buf, 10), 0, "read at EOF");
	EQ(c, pread(fd, buf, 10, 2999999), 10, "pread middle");
	for (size_t i = 0; i < 10; i++)
		if (buf[i] != pattern(2999999 + i, 3))
			return failf(c, "pread byte %zu differs", 2999999 + i);
	TRY(c, xclose(c, fd), "close");
	return 0;
}

static int t_stdio(struct ctx *c)
{
	char line[128], want[128];
	FILE *f = fopen(P(c, "s.txt"), "w+");

	ftrack(c, f);
	CHECK(c, f, "fopen w+: %s", ename(errno));
	int n = fprintf(f, "%s line %d\n", marker, 1);
	CHECK(c, n > 0, "fprintf: %s", ename(errno));
	EQ(c, fwrite("second\nthird", 1, 12, f), 12, "fwrite");
	TRY(c, fflush(f), "fflush");
	EQ(c, ftell(f), n + 12, "ftell after writes");
	TRY(c, fseek(f, 0, SEEK_SET), "fseek 0");
	CHECK(c, fgets(line, sizeof(line), f), "fgets: %s", ferror(f) ? "error" : "EOF");
	snprintf(want, sizeof(want), "%s line 1\n", marker);
	MEMEQ(c, line, strlen(line), want, strlen(want), "fgets line 1");
	EQ(c, ftell(f), n, "ftell after fgets");
	EQ(c, fread(line, 1, sizeof(line), f), 12, "fread rest");
	MEMEQ(c, line, 12, "second\nthird", 12, "fread content");
	CHECK(c, feof(f), "no EOF after short fread");
	TRY(c, fseek(f, -5, SEEK_END), "fseek SEEK_END");
	EQ(c, fread(line, 1, 5, f), 5, "fread tail");
	MEMEQ(c, line, 5, "third", 5, "tail");
	funtrack(c, f);
	TRY(c, fclose(f), "fclose");
	f = fopen(P(c, "s.txt"), "r");
	ftrack(c, f);
	CHECK(c, f, "fopen r: %s", ename(errno));
	CHECK(c, fgets(line, sizeof(line), f) && fgets(line, sizeof(line), f), "fgets twice");
	MEMEQ(c, line, strlen(line), "second\n", 7, "line 2");
	funtrack(c, f);
	TRY(c, fclose(f), "fclose");
	CHECK(c, !fopen(P(c, "missing"), "r") && errno == ENOENT, "fopen missing: %s", ename(errno));
	return 0;
}

static int t_stdio_append(struct ctx *c)
{
	char buf[64];

	if (put_file(c, P(c, "a.txt"), "head\n"))
		return -1;
	FILE *f = fopen(P(c, "a.txt"), "a+");
	ftrack(c, f);
	CHECK(c, f, "fopen a+: %s", ename(errno));
	TRY(c, fseek(f, 0, SEEK_SET), "fseek 0");
	EQ(c, fread(buf, 1, 4, f), 4, "fread from start");
	MEMEQ(c, buf, 4, "head", 4, "a+ reads from the start");
	TRY(c, fseek(f, 1, SEEK_SET), "fseek 1");
	EQ(c, fwrite("tail\n", 1, 5, f), 5, "fwrite");
	TRY(c, fflush(f), "fflush");
	EQ(c, ftell(f), 10, "ftell after append");
	EQ(c, fprintf(f, "n=%d\n", 42), 5, "fprintf");
	funtrack(c, f);
	TRY(c, fclose(f), "fclose");
	if (file_is(c, P(c, "a.txt"), "head\ntail\nn=42\n", "a+ content"))
		return -1;
	f = fopen(P(c, "new.txt"), "a");
	ftrack(c, f);
	CHECK(c, f, "fopen a (new): %s", ename(errno));
	fputs("created by a\n", f);
	funtrack(c, f);
	TRY(c, fclose(f), "fclose");
	return file_is(c, P(c, "new.txt"), "created by a\n", "a content");
}

static int t_fdopen(struct ctx *c)
{
	char line[64];
	int fd = xopen(c, P(c, "f.txt"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open");
	TRY(c, write_all(fd, "first\n", 6), "write");
	FILE *f = fdopen(fd, "r+");
	CHECK(c, f, "fdopen r+: %s", ename(errno));
	untrack(c, fd);
	ftrack(c, f);
	EQ(c, ftell(f), 6, "ftell sees the fd offset");
	EQ(c, fprintf(f, "second %s\n", "line"), 12, "fprintf");
	TRY(c, fflush(f), "fflush");
	EQ(c, lseek(fd, 0, SEEK_CUR), 18, "fd offset after fflush");
	rewind(f);
	CHECK(c, fgets(line, sizeof(line), f), "fgets");
	MEMEQ(c, line, strlen(line), "first\n", 6, "fgets");
	EQ(c, fileno(f), fd, "fileno");
	funtrack(c, f);
	TRY(c, fclose(f), "fclose");
	TRY_ERR(c, fcntl(fd, F_GETFD), EBADF, "fd after fclose");
	return file_is(c, P(c, "f.txt"), "first\nsecond line\n", "content");
}

struct thr {
	const char *dir;
	int id;
	int shared_fd;
	char err[128];
};

enum { THR_N = 4, THR_FILE = 65536, THR_PIECE = 1000, THR_CHUNK = 4096, THR_ROUNDS = 16 };

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	unsigned char buf[THR_PIECE], blk[THR_CHUNK];
	char path[PATH_MAX];
	size_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/t%d", t->dir, t->id);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		snprintf(t->err, sizeof(t->err), "thread %d open: %s", t->id, ename(errno));
		return NULL;
	}
	memset(blk, 'A' + t->id, sizeof(blk));
	for (int k = 0; off < THR_FILE; k++) {
		size_t n = THR_FILE - off < THR_PIECE ? THR_FILE - off : THR_PIECE;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(off + i, (unsigned)t->id);
		if (write_all(fd, buf, n) < 0) {
			snprintf(t->err, sizeof(t->err), "thread %d write: %s", t->id, ename(errno));
			goto out;
		}
		off += n;
		if (k < THR_ROUNDS) {
			off_t at = (off_t)(k * THR_N + t->id) * THR_CHUNK;
			if (pwrite(t->shared_fd, blk, sizeof(blk), at) != (ssize_t)sizeof(blk)) {
				snprintf(t->err, sizeof(t->err), "thread %d shared pwrite: %s", t->id,
					 ename(errno));
				goto out;
			}
		}
	}
	for (off = 0; off < THR_FILE; off += THR_PIECE) {
		size_t n = THR_FILE - off < THR_PIECE ? THR_FILE - off : THR_PIECE;
		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n) {
			snprintf(t->err, sizeof(t->err), "thread %d pread at %zu: %s", t->id, off,
				 ename(errno));
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			if (buf[i] != pattern(off + i, (unsigned)t->id)) {
				snprintf(t->err, sizeof(t->err), "thread %d byte %zu differs", t->id,
					 off + i);
				goto out;
			}
		}
	}
out:
	close(fd);
	return NULL;
}

static int t_threads(struct ctx *c)
{
	struct thr t[THR_N];
	pthread_t th[THR_N];
	unsigned char blk[THR_CHUNK];
	struct stat st;
	int fd = xopen(c, P(c, "shared"), O_RDWR | O_CREAT | O_TRUNC, 0644);

	TRY(c, fd, "open shared");
	for (int i = 0; i < THR_N; i++) {
		t[i] = (struct thr){.dir = c->dir, .id = i, .shared_fd = fd};
		int e = pthread_create(&th[i], NULL, thr_main, &t[i]);
		if (e) {
			for (int j = 0; j < i; j++)
				pthread_join(th[j], NULL);
			return failf(c, "pthread_create: %s", ename(e));
		}
	}
	for (int i = 0; i < THR_N; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < THR_N; i++)
		CHECK(c, !t[i].err[0], "%s", t[i].err);
	TRY(c, fstat(fd, &st), "fstat shared");
	EQ(c, st.st_size, THR_N * THR_ROUNDS * THR_CHUNK, "shared size");
	for (int k = 0; k < THR_N * THR_ROUNDS; k++) {
		EQ(c, pread(fd, blk, sizeof(blk), (off_t)k * THR_CHUNK), THR_CHUNK, "pread shared");
		for (size_t i = 0; i < sizeof(blk); i++)
			CHECK(c, blk[i] == 'A' + k % THR_N, "shared chunk %d byte %zu: '%c'", k, i, blk[i]);
	}
	TRY(c, xclose(c, fd), "close");
	for (int i = 0; i < THR_N; i++) {
		char name[16];
		snprintf(name, sizeof(name), "t%d", i);
		TRY(c, stat(P(c, name), &st), "stat thread file");
		EQ(c, st.st_size, THR_FILE, "thread file size");
	}
	return 0;
}

/* Exit codes of the fork child. */
enum { FK_OK, FK_APPEND, FK_NEWOPEN, FK_NEWWRITE, FK_NEWCLOSE, FK_CLOSE };

static int fork_child(struct ctx *c, int fd)
{
	const char *m = "child appended\n";
	int nfd;

	if (write_all(fd, m, strlen(m)) < 0)
		return FK_APPEND;
	nfd = open(P(c, "from_child"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (nfd < 0)
		return FK_NEWOPEN;
	if (write_all(nfd, "child's own file\n", 17) < 0)
		return FK_NEWWRITE;
	if (close(nfd) < 0)
		return FK_NEWCLOSE;
	if (close(fd) < 0)
		return FK_CLOSE;
	return FK_OK;
}

static int t_fork(struct ctx *c)
{
	static const char *const why[] = {"ok",
					  "child append write failed",
					  "child open of a new file failed",
					  "child write to its new file failed",
					  "child close of its new file failed",
					  "child close of the inherited fd failed"};
	int code = -1;
	int fd = xopen(c, P(c, "log"), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);

	TRY(c, fd, "open log");
	TRY(c, write_all(fd, "parent before\n", 14), "write before fork");
	if (put_file(c, P(c, "parent_only"), "parent file\n"))
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	TRY(c, pid, "fork");
	if (pid == 0)
		exit(fork_child(c, fd));
	if (wait_child(c, pid, &code))
		return -1;
	CHECK(c, code == FK_OK, "%s (code %d)",
	      code >= 0 && code < (int)(sizeof(why) / sizeof(why[0])) ? why[code] : "?", code);
	if (file_is(c, P(c, "log"), "parent before\nchild appended\n", "log after child") ||
	    file_is(c, P(c, "from_child"), "child's own file\n", "child's new file"))
		return -1;
	TRY(c, write_all(fd, "parent after\n", 13), "write after fork");
	TRY(c, xclose(c, fd), "close log");
	int pfd = xopen(c, P(c, "parent_only"), O_WRONLY | O_APPEND, 0);
	TRY(c, pfd, "open parent file");
	TRY(c, write_all(pfd, "more\n", 5), "write parent file");
	TRY(c, xclose(c, pfd), "close parent file");
	int cfd = xopen(c, P(c, "from_child"), O_WRONLY | O_APPEND, 0);
	TRY(c, cfd, "open child's file in parent");
	TRY(c, write_all(cfd, "parent too\n", 11), "write child's file");
	TRY(c, xclose(c, cfd), "close");
	if (file_is(c, P(c, "log"), "parent before\nchild appended\nparent after\n", "log at end") ||
	    file_is(c, P(c, "parent_only"), "parent file\nmore\n", "parent file at end"))
		return -1;
	return file_is(c, P(c, "from_child"), "child's own file\nparent too\n", "child's file at end");
}

/*
 * st_atime is the time set, or, on a file system that keeps no access time
 * (a scone volume, docs/runtime.md), the modification time.
 */
#define ATIME_IS(c, st, want, what)                                                                          \
	CHECK(c,                                                                                             \
	      (st).st_atim.tv_sec == (want) || ((st).st_atim.tv_sec == (st).st_mtim.tv_sec &&                \
						(st).st_atim.tv_nsec == (st).st_mtim.tv_nsec),               \
	      "%s: expected %lld or the mtime, got %lld", (what), (long long)(want),                         \
	      (long long)(st).st_atim.tv_sec)

static int t_utimes(struct ctx *c)
{
	struct timespec ts[2] = {{1000000000, 111111111}, {1234567890, 123456789}};
	struct stat st;

	if (put_file(c, P(c, "f"), "times"))
		return -1;
	TRY(c, utimensat(AT_FDCWD, P(c, "f"), ts, 0), "utimensat");
	TRY(c, stat(P(c, "f"), &st), "stat");
	EQ(c, st.st_mtim.tv_sec, 1234567890, "mtime sec after utimensat");
	EQ(c, st.st_mtim.tv_nsec, 123456789, "mtime nsec after utimensat");
	ATIME_IS(c, st, 1000000000, "atime sec after utimensat");
	int fd = xopen(c, P(c, "f"), O_RDWR, 0);
	TRY(c, fd, "open");
	ts[1] = (struct timespec){1500000000, 5};
	ts[0].tv_nsec = UTIME_OMIT;
	TRY(c, futimens(fd, ts), "futimens");
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_mtim.tv_sec, 1500000000, "mtime sec after futimens");
	EQ(c, st.st_mtim.tv_nsec, 5, "mtime nsec after futimens");
	ATIME_IS(c, st, 1000000000, "atime kept by UTIME_OMIT");
	TRY(c, xclose(c, fd), "close");
	TRY_ERR(c, utimensat(AT_FDCWD, P(c, "missing"), ts, 0), ENOENT, "utimensat missing");
	return 0;
}

static int t_chmod(struct ctx *c)
{
	struct stat st;

	if (put_file(c, P(c, "f"), "mode"))
		return -1;
	TRY(c, chmod(P(c, "f"), 0640), "chmod");
	TRY(c, stat(P(c, "f"), &st), "stat");
	EQ(c, st.st_mode & 07777, 0640, "mode after chmod");
	int fd = xopen(c, P(c, "f"), O_RDONLY, 0);
	TRY(c, fd, "open");
	TRY(c, fchmod(fd, 0600), "fchmod");
	TRY(c, fstat(fd, &st), "fstat");
	EQ(c, st.st_mode & 07777, 0600, "mode after fchmod");
	TRY(c, xclose(c, fd), "close");
	TRY(c, mkdir(P(c, "d"), 0700), "mkdir");
	TRY(c, chmod(P(c, "d"), 0751), "chmod dir");
	TRY(c, stat(P(c, "d"), &st), "stat dir");
	EQ(c, st.st_mode & 07777, 0751, "dir mode");
	TRY_ERR(c, chmod(P(c, "missing"), 0600), ENOENT, "chmod missing");
	return 0;
}

/* The mode bits of path (-1 if it cannot be stat'ed). */
static int mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/*
 * The umask comes off the mode of what open(O_CREAT), creat, fopen, mkdir,
 * mkdirat and mkstemp create, whichever way it was set (umask(),
 * syscall(SYS_umask)); chmod's mode is taken as given.
 */
static int umask_checks(struct ctx *c)
{
	char tmpl[PATH_MAX];
	FILE *f;
	int fd;

	EQ(c, umask(027), 022, "umask before");
	TRY(c, fd = xopen(c, P(c, "u1"), O_CREAT | O_WRONLY, 0666), "open O_CREAT");
	TRY(c, xclose(c, fd), "close");
	EQ(c, mode_of(P(c, "u1")), 0640, "open O_CREAT 0666 under umask 027");
	TRY(c, mkdir(P(c, "ud1"), 0777), "mkdir");
	EQ(c, mode_of(P(c, "ud1")), 0750, "mkdir 0777 under umask 027");
	umask(0);
	TRY(c, fd = creat(P(c, "u0"), 0666), "creat");
	track(c, fd);
	TRY(c, xclose(c, fd), "close");
	EQ(c, mode_of(P(c, "u0")), 0666, "creat 0666 under umask 0");
	TRY(c, mkdirat(AT_FDCWD, P(c, "ud0"), 0777), "mkdirat");
	EQ(c, mode_of(P(c, "ud0")), 0777, "mkdirat 0777 under umask 0");
	umask(077);
	f = fopen(P(c, "u2"), "w");
	CHECK(c, f != NULL, "fopen: %s", ename(errno));
	fclose(f);
	EQ(c, mode_of(P(c, "u2")), 0600, "fopen under umask 077");
	snprintf(tmpl, sizeof(tmpl), "%s", P(c, "tmpXXXXXX"));
	TRY(c, fd = mkstemp(tmpl), "mkstemp");
	track(c, fd);
	TRY(c, xclose(c, fd), "close");
	EQ(c, mode_of(tmpl), 0600, "mkstemp under umask 077");
	EQ(c, syscall(SYS_umask, 022), 077, "syscall(SYS_umask) returns the umask before");
	TRY(c, fd = xopen(c, P(c, "u3"), O_CREAT | O_WRONLY, 0666), "open O_CREAT");
	TRY(c, xclose(c, fd), "close");
	EQ(c, mode_of(P(c, "u3")), 0644, "open O_CREAT 0666 after syscall(SYS_umask, 022)");
	TRY(c, chmod(P(c, "u3"), 0666), "chmod");
	EQ(c, mode_of(P(c, "u3")), 0666, "chmod 0666 under umask 022");
	return 0;
}

static int t_umask(struct ctx *c)
{
	int r = umask_checks(c);

	umask(022); /* (what the later tests expect, also after a failed check) */
	return r;
}

static int t_link(struct ctx *c)
{
	struct stat st;

	if (put_file(c, P(c, "orig"), "linked"))
		return -1;
	int lr = link(P(c, "orig"), P(c, "hard"));
	if (lr != 0 && errno == EPERM) {
		/* POSIX allows a file system without hard links (vfat, a scone volume): a clean refusal. */
		TRY_ERR(c, stat(P(c, "hard"), &st), ENOENT, "refused link created nothing");
		if (file_is(c, P(c, "orig"), "linked", "original after a refused link"))
			return -1;
		TRY_ERR(c, link(P(c, "missing"), P(c, "x")), ENOENT, "link missing");
		TRY_ERR(c, link(P(c, "orig"), P(c, "orig")), EEXIST, "link onto existing");
		return 0;
	}
	TRY(c, lr, "link");
	if (file_is(c, P(c, "hard"), "linked", "via hard link"))
		return -1;
	TRY(c, stat(P(c, "orig"), &st), "stat");
	EQ(c, st.st_nlink, 2, "st_nlink");
	int fd = xopen(c, P(c, "hard"), O_WRONLY | O_APPEND, 0);
	TRY(c, fd, "open hard link");
	TRY(c, write_all(fd, "+more", 5), "write via hard link");
	TRY(c, xclose(c, fd), "close");
	if (file_is(c, P(c, "orig"), "linked+more", "original after write via link"))
		return -1;
	TRY(c, unlink(P(c, "orig")), "unlink original");
	if (file_is(c, P(c, "hard"), "linked+more", "link after unlink of original"))
		return -1;
	TRY_ERR(c, link(P(c, "missing"), P(c, "x")), ENOENT, "link missing");
	TRY_ERR(c, link(P(c, "hard"), P(c, "hard")), EEXIST, "link onto existing");
	return 0;
}

static int t_symlink(struct ctx *c)
{
	char buf[PATH_MAX];
	struct stat st;

	if (put_file(c, P(c, "target"), "through symlink"))
		return -1;
	int sr = symlink("target", P(c, "sl"));
	if (sr != 0 && errno == EPERM) {
		/* POSIX allows a file system without symbolic links (vfat, a scone volume): a clean refusal.
		 */
		TRY_ERR(c, lstat(P(c, "sl"), &st), ENOENT, "refused symlink created nothing");
		TRY_ERR(c, readlink(P(c, "target"), buf, sizeof(buf)), EINVAL, "readlink on a file");
		TRY_ERR(c, readlink(P(c, "missing"), buf, sizeof(buf)), ENOENT, "readlink of nothing");
		TRY_ERR(c, symlink("x", P(c, "target")), EEXIST, "symlink onto existing");
		return 0;
	}
	TRY(c, sr, "symlink");
	ssize_t n = readlink(P(c, "sl"), buf, sizeof(buf));
	TRY(c, n, "readlink");
	MEMEQ(c, buf, n, "target", 6, "readlink");
	if (file_is(c, P(c, "sl"), "through symlink", "open through symlink"))
		return -1;
	TRY(c, lstat(P(c, "sl"), &st), "lstat");
	CHECK(c, S_ISLNK(st.st_mode), "lstat: not S_ISLNK (type 0%o)", (unsigned)st.st_mode & S_IFMT);
	TRY(c, stat(P(c, "sl"), &st), "stat");
	CHECK(c, S_ISREG(st.st_mode) && st.st_size == 15, "stat through symlink: type 0%o size %lld",
	      (unsigned)st.st_mode & S_IFMT, (long long)st.st_size);
	TRY_ERR(c, readlink(P(c, "target"), buf, sizeof(buf)), EINVAL, "readlink on a file");
	TRY(c, symlink("nowhere", P(c, "dangling")), "symlink dangling");
	TRY_ERR(c, open(P(c, "dangling"), O_RDONLY), ENOENT, "open dangling");
	TRY_ERR(c, symlink("x", P(c, "target")), EEXIST, "symlink onto existing");
	return 0;
}

/* A second process cannot take an exclusive flock another holds; it can after LOCK_UN. */
static int t_flock(struct ctx *c)
{
	int code = -1, fd;

	if (put_file(c, P(c, "f"), "flocked"))
		return -1;
	fd = xopen(c, P(c, "f"), O_RDWR, 0);
	TRY(c, fd, "open");
	TRY(c, flock(fd, LOCK_EX), "flock LOCK_EX");
	fflush(NULL);
	pid_t pid = fork();
	TRY(c, pid, "fork");
	if (pid == 0) {
		int f2 = open(P(c, "f"), O_RDWR);
		if (f2 < 0)
			_exit(1);
		if (flock(f2, LOCK_EX | LOCK_NB) == 0)
			_exit(2);
		_exit(errno == EWOULDBLOCK ? 0 : 3);
	}
	if (wait_child(c, pid, &code))
		return -1;
	CHECK(c, code == 0, "child: %s (code %d)",
	      code == 1	  ? "open failed"
	      : code == 2 ? "got the lock another process holds"
			  : "unexpected errno",
	      code);
	TRY(c, flock(fd, LOCK_UN), "flock LOCK_UN");
	pid = fork();
	TRY(c, pid, "fork");
	if (pid == 0) {
		int f2 = open(P(c, "f"), O_RDWR);
		_exit(f2 >= 0 && flock(f2, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
	}
	if (wait_child(c, pid, &code))
		return -1;
	CHECK(c, code == 0, "child could not take the lock after LOCK_UN (code %d)", code);
	TRY_ERR(c, flock(fd, 77), EINVAL, "flock with a bad operation");
	TRY(c, xclose(c, fd), "close");
	return 0;
}

/* statvfs/fstatvfs answer for files (the file system behind them); a missing path is ENOENT. */
static int t_statvfs(struct ctx *c)
{
	struct statvfs sv;

	if (put_file(c, P(c, "f"), "space"))
		return -1;
	TRY(c, statvfs(P(c, "f"), &sv), "statvfs");
	CHECK(c, sv.f_bsize > 0 && sv.f_blocks > 0, "statvfs: bsize %lu blocks %lu",
	      (unsigned long)sv.f_bsize, (unsigned long)sv.f_blocks);
	int fd = xopen(c, P(c, "f"), O_RDONLY, 0);
	TRY(c, fd, "open");
	TRY(c, fstatvfs(fd, &sv), "fstatvfs");
	CHECK(c, sv.f_bsize > 0 && sv.f_blocks > 0, "fstatvfs: bsize %lu", (unsigned long)sv.f_bsize);
	TRY(c, xclose(c, fd), "close");
	TRY_ERR(c, statvfs(P(c, "missing"), &sv), ENOENT, "statvfs missing");
	return 0;
}

/* realpath: the check's directory's canonical name plus the entry's; "." and ".." folded; ENOENT for nothing.
 */
static int t_realpath(struct ctx *c)
{
	char want[PATH_MAX * 2], buf[PATH_MAX];
	char *dir, *got;

	if (put_file(c, P(c, "f"), "real"))
		return -1;
	TRY(c, mkdir(P(c, "sub"), 0755), "mkdir");
	dir = realpath(c->dir, NULL);
	CHECK(c, dir != NULL, "realpath of the check's directory: %s", ename(errno));
	snprintf(want, sizeof(want), "%s/f", dir);
	got = realpath(P(c, "sub/../f"), buf);
	CHECK(c, got == buf && strcmp(buf, want) == 0, "realpath sub/../f: %s",
	      got ? "another name" : ename(errno));
	got = canonicalize_file_name(P(c, "./sub"));
	snprintf(want, sizeof(want), "%s/sub", dir);
	CHECK(c, got && strcmp(got, want) == 0, "canonicalize_file_name ./sub: %s",
	      got ? "another name" : ename(errno));
	free(got);
	free(dir);
	errno = 0;
	got = realpath(P(c, "missing"), buf);
	CHECK(c, !got && errno == ENOENT, "realpath missing: %s", got ? "success" : ename(errno));
	return 0;
}

/*
 * Extended attributes: set, read back and listed; or, on a file system
 * without them (a scone volume), ENOTSUP throughout. A missing file is
 * ENOENT either way.
 */
static int t_xattr(struct ctx *c)
{
	char v[32], list[256];
	ssize_t n;

	if (put_file(c, P(c, "f"), "attrs"))
		return -1;
	TRY_ERR(c, setxattr(P(c, "missing"), "user.scone", "v", 1, 0), ENOENT, "setxattr missing");
	if (setxattr(P(c, "f"), "user.scone", "value", 5, 0) != 0) {
		CHECK(c, errno == ENOTSUP, "setxattr: %s", ename(errno));
		TRY_ERR(c, getxattr(P(c, "f"), "user.scone", v, sizeof(v)), ENOTSUP,
			"getxattr without xattrs");
		errno = 0;
		n = listxattr(P(c, "f"), list, sizeof(list));
		CHECK(c, n == 0 || (n < 0 && errno == ENOTSUP), "listxattr without xattrs: %zd %s", n,
		      ename(errno));
		return 0;
	}
	n = getxattr(P(c, "f"), "user.scone", v, sizeof(v));
	CHECK(c, n == 5 && memcmp(v, "value", 5) == 0, "getxattr: %zd", n);
	n = listxattr(P(c, "f"), list, sizeof(list));
	CHECK(c, n > 0 && memmem(list, (size_t)n, "user.scone", 11), "listxattr: %zd", n);
	TRY(c, removexattr(P(c, "f"), "user.scone"), "removexattr");
	return 0;
}

/* getdents64 called directly: every entry once, in small and large buffers; lseek to 0 starts over. */
static int names_by_getdents(struct ctx *c, int fd, size_t bufsize, char *out, size_t outsize)
{
	char buf[4096], names[64][NAME_MAX + 2];
	int count = 0;

	for (;;) {
		ssize_t n = getdents64(fd, buf, bufsize);
		TRY(c, n, "getdents64");
		if (n == 0)
			break;
		for (ssize_t o = 0; o < n;) {
			struct dirent64 *e = (struct dirent64 *)(void *)(buf + o);
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && count < 64)
				snprintf(names[count++], sizeof(names[0]), "%s%s", e->d_name,
					 e->d_type == DT_DIR ? "/" : "");
			o += e->d_reclen;
		}
	}
	qsort(names, (size_t)count, sizeof(names[0]), (int (*)(const void *, const void *))strcmp);
	out[0] = '\0';
	for (int i = 0; i < count; i++)
		snprintf(out + strlen(out), outsize - strlen(out), "%s%s", i ? "," : "", names[i]);
	return 0;
}

static int t_getdents(struct ctx *c)
{
	char got[1024];
	int fd;

	if (put_file(c, P(c, "b-file"), "x") || put_file(c, P(c, "a-file"), "y"))
		return -1;
	TRY(c, mkdir(P(c, "z-dir"), 0755), "mkdir");
	for (int i = 0; i < 20; i++) {
		char name[32];
		snprintf(name, sizeof(name), "many-%02d", i);
		if (put_file(c, P(c, name), "m"))
			return -1;
	}
	fd = xopen(c, c->dir, O_RDONLY | O_DIRECTORY, 0);
	TRY(c, fd, "open the directory");
	if (names_by_getdents(c, fd, 4096, got, sizeof(got)))
		return -1;
	CHECK(c, strncmp(got, "a-file,b-file,many-00,many-01,", 30) == 0 && strstr(got, "many-19,z-dir/"),
	      "entries: %.80s", got);
	TRY(c, lseek(fd, 0, SEEK_SET), "lseek 0");
	char again[1024];
	if (names_by_getdents(c, fd, 64, again, sizeof(again)))
		return -1;
	CHECK(c, strcmp(got, again) == 0, "a small buffer lists other entries");
	EQ(c, getdents64(fd, got, sizeof(got)), 0, "getdents64 at the end");
	TRY(c, lseek(fd, 0, SEEK_SET), "lseek 0 again");
	TRY_ERR(c, getdents64(fd, got, 8), EINVAL, "a buffer too small for one entry");
	TRY(c, xclose(c, fd), "close");
	return 0;
}

/* ------------------------------- runner ------------------------------- */

struct check {
	const char *name;
	int (*fn)(struct ctx *c);
};

static const struct check checks[] = {
    {"open_creat", t_open_creat},
    {"openat", t_openat},
    {"creat", t_creat},
    {"open_excl_eexist", t_open_excl},
    {"open_trunc", t_open_trunc},
    {"open_append_lseek", t_open_append},
    {"open_directory_enotdir", t_open_directory},
    {"open_missing_enoent", t_open_missing},
    {"close", t_close},
    {"read_write", t_read_write},
    {"pread_pwrite", t_pread_pwrite},
    {"readv_writev", t_readv_writev},
    {"preadv_pwritev", t_preadv_pwritev},
    {"lseek", t_lseek},
    {"sparse", t_sparse},
    {"stat_access", t_stat},
    {"truncate", t_truncate},
    {"fsync", t_fsync},
    {"rename", t_rename},
    {"unlink", t_unlink},
    {"mkdir_rmdir", t_mkdir_rmdir},
    {"readdir", t_readdir},
    {"dup", t_dup},
    {"fcntl_flags", t_fcntl_flags},
    {"fcntl_lock_fork", t_fcntl_lock},
    {"sendfile", t_sendfile},
    {"copy_file_range", t_copy_file_range},
    {"mmap_private", t_mmap},
    {"large_file", t_large_file},
    {"stdio", t_stdio},
    {"stdio_append", t_stdio_append},
    {"fdopen", t_fdopen},
    {"threads", t_threads},
    {"utimensat_futimens", t_utimes},
    {"chmod_fchmod", t_chmod},
    {"umask", t_umask},
    {"link", t_link},
    {"symlink_readlink", t_symlink},
    {"flock", t_flock},
    {"statvfs", t_statvfs},
    {"realpath", t_realpath},
    {"xattr", t_xattr},
    {"getdents64", t_getdents},
    /* Last: a child's writes to shared state are the most likely to disturb later checks. */
    {"fork", t_fork},
};

/* ROOT/runN for the first N that does not exist; created. */
static int make_run_dir(const char *root, char *out, size_t size)
{
	for (int n = 1; n < 1000; n++) {
		snprintf(out, size, "%s/run%d", root, n);
		if (mkdir(out, 0755) == 0)
			return 0;
		if (errno != EEXIST)
			return -1;
	}
	errno = EEXIST;
	return -1;
}

int main(int argc, char **argv)
{
	char run[PATH_MAX];
	struct ctx c;
	int failed = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s ROOT\n", argv[0]);
		return 2;
	}
	umask(022);
	snprintf(marker, sizeof(marker), "SCONE-FS-SUITE-%s-%s", "MARKER", "5e21");
	if (mkdir(argv[1], 0755) < 0 && errno != EEXIST) {
		printf("FAIL setup: mkdir ROOT: %s\n", ename(errno));
		return 1;
	}
	if (make_run_dir(argv[1], run, sizeof(run)) < 0) {
		printf("FAIL setup: mkdir run dir: %s\n", ename(errno));
		return 1;
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		memset(&c, 0, sizeof(c));
		c.name = checks[i].name;
		for (int k = 0; k < MAX_FDS; k++)
			c.fds[k] = -1;
		if (snprintf(c.dir, sizeof(c.dir), "%s/%s", run, c.name) >= (int)sizeof(c.dir))
			failf(&c, "ROOT too long");
		else if (mkdir(c.dir, 0755) < 0)
			failf(&c, "mkdir check dir: %s", ename(errno));
		else if (checks[i].fn(&c) < 0 && !c.msg[0])
			failf(&c, "failed");
		release(&c);
		if (c.msg[0]) {
			printf("FAIL %s: %s\n", c.name, c.msg);
			failed++;
		} else {
			printf("ok %s\n", c.name);
		}
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
