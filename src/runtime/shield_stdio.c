/*
 * shield_stdio.c - stdio on volume files: glibc's FILE does not call the
 * exported read and write, so fopen and fdopen of a volume file give a
 * cookie stream through the runtime; a volume fd dup'ed onto 0, 1 or 2
 * becomes stdin, stdout or stderr.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

static ssize_t cookie_read(void *c, char *buf, size_t n)
{
	return read((int)(intptr_t)c, buf, n);
}

static ssize_t cookie_write(void *c, const char *buf, size_t n)
{
	ssize_t r = write((int)(intptr_t)c, buf, n);

	return r < 0 ? 0 : r; /* fopencookie: 0 reports the error */
}

static int cookie_seek(void *c, off64_t *pos, int whence)
{
	off64_t r = lseek64((int)(intptr_t)c, *pos, whence);

	if (r < 0)
		return -1;
	*pos = r;
	return 0;
}

static int cookie_close(void *c)
{
	return close((int)(intptr_t)c);
}

static int fopen_flags(const char *mode)
{
	int flags;

	switch (mode[0]) {
	case 'r':
		flags = 0;
		break;
	case 'w':
		flags = O_CREAT | O_TRUNC;
		break;
	case 'a':
		flags = O_CREAT | O_APPEND;
		break;
	default:
		return -1;
	}
	if (strchr(mode, '+'))
		flags |= O_RDWR;
	else
		flags |= mode[0] == 'r' ? O_RDONLY : O_WRONLY;
	if (strchr(mode, 'x'))
		flags |= O_EXCL;
	if (strchr(mode, 'e'))
		flags |= O_CLOEXEC;
	return flags;
}

static const cookie_io_functions_t cookie_io = {
    .read = cookie_read, .write = cookie_write, .seek = cookie_seek, .close = cookie_close};

/*
 * A cookie stream on fd. glibc marks a cookie stream's fd as -2 (fileno:
 * EBADF); programs call fstat(fileno(fp)) (sort does), so the stream carries
 * its shielded fd instead. glibc's cookie streams do all their I/O and the
 * close through the cookie functions, never through that field.
 */
static FILE *cookie_stream(int fd, const char *mode)
{
	FILE *fp = fopencookie((void *)(intptr_t)fd, mode, cookie_io);

	if (fp)
		fp->_fileno = fd;
	return fp;
}

/* A stream on a shielded fd: the same cookie stream as fopen's; fclose closes fd. */
FILE *fdopen(int fd, const char *mode)
{
	REAL(fdopen);
	int flags = mode ? fopen_flags(mode) : -1;
	int cur;

	if (!shield_maybe_shielded(fd))
		return real_fdopen(fd, mode);
	if (flags < 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((cur = fcntl(fd, F_GETFL)) < 0)
		return NULL;
	if (((cur & O_ACCMODE) == O_RDONLY && (flags & O_ACCMODE) != O_RDONLY) ||
	    ((cur & O_ACCMODE) == O_WRONLY && (flags & O_ACCMODE) != O_WRONLY)) {
		errno = EINVAL;
		return NULL;
	}
	if ((flags & O_APPEND) && !(cur & O_APPEND) && fcntl(fd, F_SETFL, cur | O_APPEND) != 0)
		return NULL;
	return cookie_stream(fd, mode);
}

/*
 * A shielded file dup'ed onto 0, 1 or 2 (sort -o, shell-style redirection
 * inside the program): glibc's stdin/stdout/stderr would use the raw fd (the
 * empty sealed placeholder: EPERM, nothing leaks), so they become cookie
 * streams on the same fd number. The program's fclose(stdout) closes fd 1
 * and commits as any close.
 */
void shield_std_stream(int fd)
{
	FILE **slot = fd == 0 ? &stdin : fd == 1 ? &stdout : fd == 2 ? &stderr : NULL;
	FILE *fp;

	if (!slot || !shield_maybe_shielded(fd))
		return;
	fflush(*slot);
	fp = cookie_stream(fd, fd == 0 ? "r" : "w");
	if (fp)
		*slot = fp;
}

bool scone_shield_fopen(const char *path, const char *mode, FILE **ret)
{
	int flags = mode ? fopen_flags(mode) : -1;
	int fd, e;

	if (!scone_shield_openat(AT_FDCWD, path, flags < 0 ? O_RDONLY : flags, 0666, &fd))
		return false;
	*ret = NULL;
	if (fd < 0)
		return true;
	if (flags < 0) {
		close(fd);
		errno = EINVAL;
		return true;
	}
	*ret = cookie_stream(fd, mode);
	if (!*ret) {
		e = errno;
		close(fd);
		errno = e;
	}
	return true;
}

/*
 * freopen onto a volume path, or of a stream on a shielded fd (a cookie
 * stream, which glibc's freopen cannot reopen): glibc would open the path
 * with its internal open (a plaintext file in the host directory), and
 * the stream must stay the same object. Not served: the stream is closed
 * (as after a failed freopen) and the call fails with ENOTSUP.
 */
static FILE *reopen(FILE *(*real)(const char *, const char *, FILE *), const char *path, const char *mode,
		    FILE *stream)
{
	int fd = stream ? fileno(stream) : -1;

	if ((path && scone_shield_on_volume(path)) || (fd >= 0 && fdtab_maybe(fd))) {
		if (stream)
			fclose(stream);
		errno = ENOTSUP;
		return NULL;
	}
	return real(path, mode, stream);
}

FILE *freopen(const char *path, const char *mode, FILE *stream)
{
	return reopen(SYS(freopen), path, mode, stream);
}

FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
	return reopen(SYS(freopen64), path, mode, stream);
}
