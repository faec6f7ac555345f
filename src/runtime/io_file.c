/*
 * io_file.c - the calls about an open file's size, position and
 * durability (lseek, ftruncate, fallocate, posix_fallocate and their 64-bit
 * names, fsync, fdatasync): an fd the runtime serves goes to its kind
 * (fdtab.h), any other to libc.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

off_t lseek(int fd, off_t off, int whence)
{
	bool done;
	int64_t r = shield_lseek_kept(fd, off, whence, &done);

	if (done)
		return (off_t)r;
	FD_OP(fd, SYS(lseek)(fd, off, whence), lseek, fd, off, whence);
}

off64_t lseek64(int fd, off64_t off, int whence)
{
	bool done;
	int64_t r = shield_lseek_kept(fd, off, whence, &done);

	if (done)
		return (off64_t)r;
	FD_OP(fd, SYS(lseek64)(fd, off, whence), lseek, fd, off, whence);
}

int ftruncate(int fd, off_t len)
{
	FD_OP(fd, SYS(ftruncate)(fd, len), ftruncate, len);
}

int ftruncate64(int fd, off64_t len)
{
	FD_OP(fd, SYS(ftruncate64)(fd, len), ftruncate, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	FD_OP(fd, SYS(fallocate)(fd, mode, off, len), fallocate, mode, off, len);
}

int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	FD_OP(fd, SYS(fallocate64)(fd, mode, off, len), fallocate, mode, off, len);
}

/* posix_fallocate returns the error number (glibc's own makes the system call itself). */
static int posix_result(int r)
{
	return r == 0 ? 0 : errno;
}

static int posix_fallocate_served(int fd, int64_t off, int64_t len, bool *served)
{
	struct fd_desc *d = shield_maybe_shielded(fd) ? fdtab_get(fd) : NULL;
	int r = 0, e;

	*served = d && d->kind->fallocate;
	if (*served)
		r = posix_result(d->kind->fallocate(d, 0, off, len));
	e = errno;
	if (d)
		(void)fdtab_put(d);
	errno = e;
	return r;
}

int posix_fallocate(int fd, off_t off, off_t len)
{
	bool served;
	int r = posix_fallocate_served(fd, off, len, &served);

	return served ? r : SYS(posix_fallocate)(fd, off, len);
}

int posix_fallocate64(int fd, off64_t off, off64_t len)
{
	bool served;
	int r = posix_fallocate_served(fd, off, len, &served);

	return served ? r : SYS(posix_fallocate64)(fd, off, len);
}

int fsync(int fd)
{
	FD_OP(fd, SYS(fsync)(fd), fsync);
}

int fdatasync(int fd)
{
	FD_OP(fd, SYS(fdatasync)(fd), fsync);
}
