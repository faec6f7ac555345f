/*
 * shield_io.c - the bytes of shielded fds: read, write, pread/pwrite, the
 * vectored calls, lseek, ftruncate, fsync (a sync point), mmap as a
 * snapshot of the plaintext, and sendfile/copy_file_range through the
 * shield (splice/tee refused). Each runs under the shield's lock on the fd's
 * open file description (shield.c); the offset lives in the kernel.
 */
/* The interposers must be real functions, not glibc's fortify inline wrappers. */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

/* ---- data ---- */

static ssize_t pread_locked(struct sfd *s, void *buf, size_t n, uint64_t off)
{
	enum scone_err err;
	size_t got = 0;

	if (!s->file)
		return shield_fail(EISDIR);
	if ((s->flags & O_ACCMODE) == O_WRONLY)
		return shield_fail(EBADF);
	if ((err = vop_pread(s, buf, n, off, &got)))
		return shield_fail_err(err);
	return (ssize_t)got;
}

/*
 * The file offset lives in the kernel, in the placeholder's open file
 * description: dup'ed fds, forked children and exec'd programs share it
 * exactly as they would a kernel file's.
 */
uint64_t shield_off_get(int fd)
{
	REAL(lseek64);
	off64_t o = real_lseek64(fd, 0, SEEK_CUR);

	return o < 0 ? 0 : (uint64_t)o;
}

void shield_off_set(int fd, uint64_t off)
{
	REAL(lseek64);

	(void)real_lseek64(fd, (off64_t)off, SEEK_SET);
}

/* A write at off, or at the end (append: the offset then moves past it). */
static ssize_t pwrite_locked(int fd, struct sfd *s, const void *buf, size_t n, uint64_t off, bool append)
{
	enum scone_err err;

	if (!s->file || (s->flags & O_ACCMODE) == O_RDONLY)
		return shield_fail(EBADF);
	if (n == 0)
		return 0;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	s->m->dirty = true;
	if (append) {
		uint64_t at;
		if ((err = vop_append(s, buf, n, &at)))
			return shield_fail_err(err);
		shield_off_set(fd, at + n);
		return (ssize_t)n;
	}
	if ((err = vop_pwrite(s, buf, n, off)))
		return shield_fail_err(err);
	return (ssize_t)n;
}


static ssize_t read_locked(int fd, struct sfd *s, void *buf, size_t n)
{
	uint64_t off = shield_off_get(fd);
	ssize_t r = pread_locked(s, buf, n, off);

	if (r > 0)
		shield_off_set(fd, off + (uint64_t)r);
	return r;
}

static ssize_t write_locked(int fd, struct sfd *s, const void *buf, size_t n)
{
	bool append = (s->flags & O_APPEND) != 0;
	uint64_t off = append ? 0 : shield_off_get(fd);
	ssize_t r = pwrite_locked(fd, s, buf, n, off, append);

	if (r > 0 && !append)
		shield_off_set(fd, off + (uint64_t)r);
	return r;
}

ssize_t read(int fd, void *buf, size_t n)
{
	REAL(read);
	FD_CALL(fd, real_read(fd, buf, n), read_locked(fd, s, buf, n));
}

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(write);
	FD_CALL(fd, real_write(fd, buf, n), write_locked(fd, s, buf, n));
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	REAL(pread);
	FD_CALL(fd, real_pread(fd, buf, n, off), off < 0 ? shield_fail(EINVAL) : pread_locked(s, buf, n, (uint64_t)off));
}

ssize_t pread64(int fd, void *buf, size_t n, off64_t off)
{
	REAL(pread64);
	FD_CALL(fd, real_pread64(fd, buf, n, off), off < 0 ? shield_fail(EINVAL) : pread_locked(s, buf, n, (uint64_t)off));
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(pwrite);
	FD_CALL(fd, real_pwrite(fd, buf, n, off),
		off < 0 ? shield_fail(EINVAL) : pwrite_locked(fd, s, buf, n, (uint64_t)off, false));
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	REAL(pwrite64);
	FD_CALL(fd, real_pwrite64(fd, buf, n, off),
		off < 0 ? shield_fail(EINVAL) : pwrite_locked(fd, s, buf, n, (uint64_t)off, false));
}

static off64_t lseek_locked(int fd, struct sfd *s, off64_t off, int whence)
{
	struct scone_vstat st = {0};
	enum scone_err err;
	int64_t base;

	if (s->file && (whence == SEEK_END || whence == SEEK_DATA || whence == SEEK_HOLE) &&
	    (err = vop_fstat(s, &st)))
		return shield_fail_err(err);
	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR:
		base = (int64_t)shield_off_get(fd);
		break;
	case SEEK_END:
		base = (int64_t)st.size;
		break;
	case SEEK_DATA:
	case SEEK_HOLE:
		if (off < 0 || (uint64_t)off >= st.size)
			return shield_fail(ENXIO);
		base = 0;
		if (whence == SEEK_HOLE)
			off = (off64_t)st.size;
		break;
	default:
		return shield_fail(EINVAL);
	}
	if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
		return shield_fail(base + off < 0 ? EINVAL : EOVERFLOW);
	shield_off_set(fd, (uint64_t)(base + off));
	return base + off;
}

off_t lseek(int fd, off_t off, int whence)
{
	REAL(lseek);
	FD_CALL(fd, real_lseek(fd, off, whence), lseek_locked(fd, s, off, whence));
}

off64_t lseek64(int fd, off64_t off, int whence)
{
	REAL(lseek64);
	FD_CALL(fd, real_lseek64(fd, off, whence), lseek_locked(fd, s, off, whence));
}

static int ftruncate_locked(struct sfd *s, off64_t len)
{
	enum scone_err err;

	if (len < 0 || !s->file || (s->flags & O_ACCMODE) == O_RDONLY)
		return shield_fail(EINVAL);
	s->m->dirty = true;
	if ((err = vop_ftruncate(s, (uint64_t)len)))
		return shield_fail_err(err);
	return 0;
}

int ftruncate(int fd, off_t len)
{
	REAL(ftruncate);
	FD_CALL(fd, real_ftruncate(fd, len), ftruncate_locked(s, len));
}

int ftruncate64(int fd, off64_t len)
{
	REAL(ftruncate64);
	FD_CALL(fd, real_ftruncate64(fd, len), ftruncate_locked(s, len));
}

/*
 * fallocate on a shielded file: a volume allocates nothing ahead, so
 * reserving space is extending the file with zeros (mode 0) or nothing at
 * all (FALLOC_FL_KEEP_SIZE). Punching holes, zeroing, collapsing and
 * inserting ranges are EOPNOTSUPP, which programs take as "not supported
 * here" (InnoDB, PostgreSQL fall back to writing zeros).
 */
static int fallocate_locked(struct sfd *s, int mode, off64_t off, off64_t len)
{
	struct scone_vstat st;
	enum scone_err err;
	uint64_t end;

	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return shield_fail(EOPNOTSUPP);
	if (off < 0 || len <= 0)
		return shield_fail(EINVAL);
	if (!s->file)
		return shield_fail(EISDIR);
	if ((s->flags & O_ACCMODE) == O_RDONLY)
		return shield_fail(EBADF);
	if ((uint64_t)off > INT64_MAX - (uint64_t)len)
		return shield_fail(EFBIG);
	end = (uint64_t)off + (uint64_t)len;
	if ((err = vop_fstat(s, &st)))
		return shield_fail_err(err);
	if ((mode & FALLOC_FL_KEEP_SIZE) || end <= st.size)
		return 0;
	s->m->dirty = true;
	if ((err = vop_ftruncate(s, end)))
		return shield_fail_err(err);
	return 0;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	REAL(fallocate);
	FD_CALL(fd, real_fallocate(fd, mode, off, len), fallocate_locked(s, mode, off, len));
}

int fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	REAL(fallocate64);
	FD_CALL(fd, real_fallocate64(fd, mode, off, len), fallocate_locked(s, mode, off, len));
}

/* posix_fallocate returns the error number; glibc's own makes the system call itself. */
static int posix_fallocate_locked(struct sfd *s, off64_t off, off64_t len)
{
	return fallocate_locked(s, 0, off, len) == 0 ? 0 : errno;
}

int posix_fallocate(int fd, off_t off, off_t len)
{
	REAL(posix_fallocate);
	FD_CALL(fd, real_posix_fallocate(fd, off, len), posix_fallocate_locked(s, off, len));
}

int posix_fallocate64(int fd, off64_t off, off64_t len)
{
	REAL(posix_fallocate64);
	FD_CALL(fd, real_posix_fallocate64(fd, off, len), posix_fallocate_locked(s, off, len));
}

static int fsync_locked(struct sfd *s)
{
	return shield_commit(s->m) ? shield_fail(EIO) : 0;
}

int fsync(int fd)
{
	REAL(fsync);
	FD_CALL(fd, real_fsync(fd), fsync_locked(s));
}

int fdatasync(int fd)
{
	REAL(fdatasync);
	FD_CALL(fd, real_fdatasync(fd), fsync_locked(s));
}

/*
 * mmap of a shielded file: a snapshot. Anonymous memory holds the plaintext
 * of the range (zero past the end of the file), then gets the requested
 * protection; munmap treats it as any anonymous mapping. A shared writable
 * mapping cannot be served (its stores would never reach the volume):
 * ENODEV, as for a file system without mmap. A read-only shared mapping is
 * served as the same snapshot (later writes through an fd do not show in it).
 */
static void *map_shielded(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	REAL(mmap64);
	REAL(munmap);
	int type = flags & MAP_TYPE;
	struct sfd *s;
	ssize_t r = 0;
	size_t got = 0;
	void *p;
	int e = 0;

	if ((type == MAP_SHARED || type == MAP_SHARED_VALIDATE) && (prot & PROT_WRITE)) {
		errno = ENODEV;
		return MAP_FAILED;
	}
	if (len == 0 || off < 0 || (off & (off64_t)(sysconf(_SC_PAGESIZE) - 1))) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	p = real_mmap64(addr, len, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE)), -1, 0);
	if (p == MAP_FAILED)
		return MAP_FAILED;
	shield_enter();
	s = shield_fd_entry(fd);
	if (!s || !s->file)
		r = shield_fail(s ? ENODEV : EBADF);
	else if ((s->flags & O_ACCMODE) == O_WRONLY)
		r = shield_fail(EACCES);
	while (r >= 0 && got < len) {
		r = pread_locked(s, (char *)p + got, len - got, (uint64_t)off + got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	e = errno;
	shield_leave();
	if (r < 0 || mprotect(p, len, prot) != 0) {
		e = r < 0 ? e : errno;
		real_munmap(p, len);
		errno = e;
		return MAP_FAILED;
	}
	return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(mmap);

	if (!(flags & MAP_ANONYMOUS) && shield_maybe_shielded(fd))
		return map_shielded(addr, len, prot, flags, fd, off);
	return real_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	REAL(mmap64);

	if (!(flags & MAP_ANONYMOUS) && shield_maybe_shielded(fd))
		return map_shielded(addr, len, prot, flags, fd, off);
	return real_mmap64(addr, len, prot, flags, fd, off);
}

/* ---- vectored I/O ---- */

/* Check the vector like the kernel: EINVAL for a bad count or a total past SSIZE_MAX. */
static int iov_check(const struct iovec *iov, int cnt)
{
	size_t total = 0;

	if (cnt < 0 || cnt > IOV_MAX)
		return shield_fail(EINVAL);
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
			return shield_fail(EINVAL);
		total += iov[i].iov_len;
	}
	return 0;
}

/*
 * readv/writev and friends, one buffer after the other (lock held): at the
 * file offset when at is NULL (and move it), else at *at. Stops at the first
 * short transfer; an error after some bytes returns the bytes.
 */
static ssize_t iov_locked(int fd, struct sfd *s, const struct iovec *iov, int cnt, const uint64_t *at, bool wr)
{
	ssize_t total = 0, r;

	if (iov_check(iov, cnt) != 0)
		return -1;
	if (!s->file)
		return shield_fail(wr ? EBADF : EISDIR);
	if ((s->flags & O_ACCMODE) == (wr ? O_RDONLY : O_WRONLY))
		return shield_fail(EBADF);
	for (int i = 0; i < cnt; i++) {
		void *b = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		if (n == 0)
			continue;
		if (!at)
			r = wr ? write_locked(fd, s, b, n) : read_locked(fd, s, b, n);
		else if (wr)
			r = pwrite_locked(fd, s, b, n, *at + (uint64_t)total, false);
		else
			r = pread_locked(s, b, n, *at + (uint64_t)total);
		if (r < 0)
			return total > 0 ? total : -1;
		total += r;
		if ((size_t)r < n)
			break;
	}
	return total;
}

/* The positional variants: a negative offset is EINVAL (-1 means "the file offset" for the v2 calls). */
static ssize_t piov_locked(int fd, struct sfd *s, const struct iovec *iov, int cnt, off64_t off, bool cur_ok,
			   bool wr)
{
	uint64_t at = (uint64_t)off;

	if (cur_ok && off == -1)
		return iov_locked(fd, s, iov, cnt, NULL, wr);
	if (off < 0)
		return shield_fail(EINVAL);
	return iov_locked(fd, s, iov, cnt, &at, wr);
}

ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	REAL(readv);
	FD_CALL(fd, real_readv(fd, iov, cnt), iov_locked(fd, s, iov, cnt, NULL, false));
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(writev);
	FD_CALL(fd, real_writev(fd, iov, cnt), iov_locked(fd, s, iov, cnt, NULL, true));
}

ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(preadv);
	FD_CALL(fd, real_preadv(fd, iov, cnt, off), piov_locked(fd, s, iov, cnt, off, false, false));
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(pwritev);
	FD_CALL(fd, real_pwritev(fd, iov, cnt, off), piov_locked(fd, s, iov, cnt, off, false, true));
}

ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	REAL(preadv64);
	FD_CALL(fd, real_preadv64(fd, iov, cnt, off), piov_locked(fd, s, iov, cnt, off, false, false));
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	REAL(pwritev64);
	FD_CALL(fd, real_pwritev64(fd, iov, cnt, off), piov_locked(fd, s, iov, cnt, off, false, true));
}

/* RWF_* flags are not served on a shielded fd: EOPNOTSUPP, as for an unsupported flag. */
ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	REAL(preadv2);
	FD_CALL(fd, real_preadv2(fd, iov, cnt, off, flags),
		flags ? shield_fail(EOPNOTSUPP) : piov_locked(fd, s, iov, cnt, off, true, false));
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	REAL(pwritev2);
	FD_CALL(fd, real_pwritev2(fd, iov, cnt, off, flags),
		flags ? shield_fail(EOPNOTSUPP) : piov_locked(fd, s, iov, cnt, off, true, true));
}

ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	REAL(preadv64v2);
	FD_CALL(fd, real_preadv64v2(fd, iov, cnt, off, flags),
		flags ? shield_fail(EOPNOTSUPP) : piov_locked(fd, s, iov, cnt, off, true, false));
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off64_t off, int flags)
{
	REAL(pwritev64v2);
	FD_CALL(fd, real_pwritev64v2(fd, iov, cnt, off, flags),
		flags ? shield_fail(EOPNOTSUPP) : piov_locked(fd, s, iov, cnt, off, true, true));
}

/* ---- copies between fds: read through the shield, write to the other side ---- */

#define COPY_CHUNK 65536

/* Write all of buf to out (at *out_off if given). Returns the bytes written, -1 if none. */
static ssize_t copy_out(int out, off64_t *out_off, const char *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = out_off ? pwrite64(out, buf + done, n - done, *out_off) : write(out, buf + done, n - done);
		if (w <= 0)
			return done > 0 ? (ssize_t)done : -1;
		if (out_off)
			*out_off += w;
		done += (size_t)w;
	}
	return (ssize_t)done;
}

/*
 * sendfile/copy_file_range where one side is shielded: up to count bytes from
 * in (at *in_off if given, else its file offset) to out. Returns the bytes
 * copied; -1 with errno when nothing was. Input read but not written is
 * given back (the offset moves only by what was written).
 */
static ssize_t copy_through(int out, off64_t *out_off, int in, off64_t *in_off, size_t count)
{
	char *buf = malloc(COPY_CHUNK);
	ssize_t total = 0, r = 0, w = 0;
	int e = 0;

	if (!buf)
		return shield_fail(ENOMEM);
	if (count > SSIZE_MAX)
		count = SSIZE_MAX;
	while ((size_t)total < count) {
		size_t want = count - (size_t)total < COPY_CHUNK ? count - (size_t)total : COPY_CHUNK;
		r = in_off ? pread64(in, buf, want, *in_off) : read(in, buf, want);
		if (r <= 0) {
			e = errno;
			break;
		}
		w = copy_out(out, out_off, buf, (size_t)r);
		e = errno;
		if (w > 0)
			total += w;
		if (in_off && w > 0)
			*in_off += w;
		if (w < r) {
			if (!in_off)
				(void)lseek64(in, -(off64_t)(r - (w > 0 ? w : 0)), SEEK_CUR);
			break;
		}
		if ((size_t)r < want)
			break;
	}
	scone_wipe(buf, COPY_CHUNK);
	free(buf);
	if (total == 0 && (r < 0 || w < 0)) {
		errno = e;
		return -1;
	}
	return total;
}

ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
	REAL(sendfile);
	off64_t o;
	ssize_t r;

	if (!shield_maybe_shielded(in) && !shield_maybe_shielded(out))
		return real_sendfile(out, in, off, count);
	if (off && *off < 0)
		return shield_fail(EINVAL);
	o = off ? *off : 0;
	r = copy_through(out, NULL, in, off ? &o : NULL, count);
	if (off)
		*off = (off_t)o;
	return r;
}

ssize_t sendfile64(int out, int in, off64_t *off, size_t count)
{
	return sendfile(out, in, off, count);
}

ssize_t copy_file_range(int in, off64_t *in_off, int out, off64_t *out_off, size_t len, unsigned int flags)
{
	REAL(copy_file_range);

	if (!shield_maybe_shielded(in) && !shield_maybe_shielded(out))
		return real_copy_file_range(in, in_off, out, out_off, len, flags);
	if (flags != 0 || (in_off && *in_off < 0) || (out_off && *out_off < 0))
		return shield_fail(EINVAL);
	return copy_through(out, out_off, in, in_off, len);
}

/* A pipe cannot hold a reference to plaintext pages: splice and tee of a shielded fd are refused. */
ssize_t splice(int in, off64_t *in_off, int out, off64_t *out_off, size_t len, unsigned int flags)
{
	REAL(splice);

	if (shield_maybe_shielded(in) || shield_maybe_shielded(out))
		return shield_fail(EINVAL);
	return real_splice(in, in_off, out, out_off, len, flags);
}

ssize_t tee(int in, int out, size_t len, unsigned int flags)
{
	REAL(tee);

	if (shield_maybe_shielded(in) || shield_maybe_shielded(out))
		return shield_fail(EINVAL);
	return real_tee(in, out, len, flags);
}
