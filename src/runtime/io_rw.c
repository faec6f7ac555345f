/*
 * io_rw.c - the read and write family (read, write, pread, pwrite and their
 * 64-bit names, readv, writev, preadv, pwritev and their 64-bit and v2
 * forms): an fd the runtime serves goes to its kind (fdtab.h), any other
 * to libc.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

ssize_t read(int fd, void *buf, size_t n)
{
	FD_OP(fd, SYS(read)(fd, buf, n), read, fd, buf, n);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	FD_OP(fd, SYS(write)(fd, buf, n), write, fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	FD_OP(fd, SYS(pread)(fd, buf, n, off), pread, buf, n, off);
}

ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
	FD_OP(fd, SYS(pread64)(fd, buf, n, off), pread, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	FD_OP(fd, SYS(pwrite)(fd, buf, n, off), pwrite, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	FD_OP(fd, SYS(pwrite64)(fd, buf, n, off), pwrite, fd, buf, n, off);
}

ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	FD_OP(fd, SYS(readv)(fd, iov, cnt), iov, fd, iov, cnt, NULL, false);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	FD_OP(fd, SYS(writev)(fd, iov, cnt), iov, fd, iov, cnt, NULL, true);
}

/* The positioned forms: at the offset given (the v2 forms: -1 is the file offset). */
static const int64_t *at_offset(int64_t *slot, int64_t off, bool cur_ok)
{
	*slot = off;
	return cur_ok && off == -1 ? NULL : slot;
}

ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	int64_t at;
	FD_OP(fd, SYS(preadv)(fd, iov, cnt, off), iov, fd, iov, cnt, at_offset(&at, off, false), false);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	int64_t at;
	FD_OP(fd, SYS(pwritev)(fd, iov, cnt, off), iov, fd, iov, cnt, at_offset(&at, off, false), true);
}

ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	int64_t at;
	FD_OP(fd, SYS(preadv64)(fd, iov, cnt, off), iov, fd, iov, cnt, at_offset(&at, off, false), false);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	int64_t at;
	FD_OP(fd, SYS(pwritev64)(fd, iov, cnt, off), iov, fd, iov, cnt, at_offset(&at, off, false), true);
}

/* RWF_* flags are not served on an fd the runtime serves: EOPNOTSUPP, as for an unsupported flag. */
#define RWF_REFUSED(fd, flags)                                                                               \
	do {                                                                                                 \
		if ((flags) && shield_maybe_shielded(fd))                                                    \
			return shield_fail(EOPNOTSUPP);                                                      \
	} while (0)

ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	int64_t at;
	RWF_REFUSED(fd, flags);
	FD_OP(fd, SYS(preadv2)(fd, iov, cnt, off, flags), iov, fd, iov, cnt, at_offset(&at, off, true),
	      false);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	int64_t at;
	RWF_REFUSED(fd, flags);
	FD_OP(fd, SYS(pwritev2)(fd, iov, cnt, off, flags), iov, fd, iov, cnt, at_offset(&at, off, true),
	      true);
}

ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	int64_t at;
	RWF_REFUSED(fd, flags);
	FD_OP(fd, SYS(preadv64v2)(fd, iov, cnt, off, flags), iov, fd, iov, cnt, at_offset(&at, off, true),
	      false);
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	int64_t at;
	RWF_REFUSED(fd, flags);
	FD_OP(fd, SYS(pwritev64v2)(fd, iov, cnt, off, flags), iov, fd, iov, cnt, at_offset(&at, off, true),
	      true);
}
