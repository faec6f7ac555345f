/*
 * shield_io.c - served fds as a whole: mmap of a volume file as a snapshot
 * of its plaintext, and sendfile/copy_file_range through the runtime's own
 * read and write (splice/tee refused: a pipe would hold plaintext pages).
 * The calls on one served fd's bytes are in io_rw.c and io_file.c.
 */
/* The interposers must be real functions, not glibc's fortify inline wrappers. */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"
#include "runtime/fd_tls.h"

/* May d be mapped (a volume file open for reading)? 0 or the errno. */
static int mappable(struct fd_desc *d)
{
	const struct sfd *s = (const struct sfd *)d;
	int e = 0;

	if (d->kind != &shield_volume_kind || !d->kind->pread)
		return ENODEV;
	shield_enter();
	if (!s->file)
		e = ENODEV;
	else if ((s->flags & O_ACCMODE) == O_WRONLY)
		e = EACCES;
	shield_leave();
	return e;
}

/*
 * mmap of a served file. A shared mapping maps the file's window where it
 * has one, and a shared writable one makes it (shield_map.c). Otherwise a
 * snapshot: anonymous memory holds the plaintext of the range (zero past
 * the end of the file), then gets the requested protection; munmap treats
 * it as any anonymous mapping (later writes through an fd do not show in
 * it).
 */
static void *map_shielded(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	int type = flags & MAP_TYPE;
	struct fd_desc *d;
	ssize_t r = 0;
	size_t got = 0;
	void *p;
	int e;

	if (len == 0 || off < 0 || (off & (off64_t)(sysconf(_SC_PAGESIZE) - 1)))
		return errno = EINVAL, MAP_FAILED;
	if (!(d = fdtab_get(fd)))
		return SYS(mmap64)(addr, len, prot, flags, fd, off); /* the kernel's fd now */
	if ((e = mappable(d))) {
		(void)fdtab_put(d);
		return errno = e, MAP_FAILED;
	}
	if ((type == MAP_SHARED || type == MAP_SHARED_VALIDATE) &&
	    (p = shield_map_shared(d, addr, len, prot, flags, off)) != NULL) { /* the file's window */
		e = errno;
		(void)fdtab_put(d);
		errno = e;
		return p;
	}
	p = SYS(mmap64)(
	    addr, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_NORESERVE)), -1, 0);
	while (p != MAP_FAILED && got < len) {
		r = d->kind->pread(d, (char *)p + got, len - got, off + (off64_t)got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	e = errno;
	(void)fdtab_put(d);
	if (p != MAP_FAILED && (r < 0 || mprotect(p, len, prot) != 0)) {
		e = r < 0 ? e : errno;
		SYS(munmap)(p, len);
		p = MAP_FAILED;
	}
	errno = e;
	return p;
}

/* Anything mapped at a fixed address replaces what was there, a window's mapping too (shield_map.c). */
static void *fixed_done(void *p, size_t len, int flags)
{
	int e = errno;

	if (p != MAP_FAILED && (flags & MAP_FIXED))
		shield_map_replaced(p, len);
	errno = e;
	return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(mmap);

	if (!(flags & MAP_ANONYMOUS) && shield_maybe_shielded(fd))
		return map_shielded(addr, len, prot, flags, fd, off);
	return fixed_done(real_mmap(addr, len, prot, flags, fd, off), len, flags);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off64_t off)
{
	REAL(mmap64);

	if (!(flags & MAP_ANONYMOUS) && shield_maybe_shielded(fd))
		return map_shielded(addr, len, prot, flags, fd, off);
	return fixed_done(real_mmap64(addr, len, prot, flags, fd, off), len, flags);
}

/* ---- copies between fds: read through the shield, write to the other side ---- */

#define COPY_CHUNK 65536

/* Write all of buf to out (at *out_off if given). Returns the bytes written, -1 if none. */
static ssize_t copy_out(int out, off64_t *out_off, const char *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = out_off ? pwrite64(out, buf + done, n - done, *out_off)
				    : write(out, buf + done, n - done);
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
	/* As large as the copy (a web server's small file: a few KiB), at most a chunk. */
	size_t cap = count && count < COPY_CHUNK ? count : COPY_CHUNK, used = 0;
	char *buf = malloc(cap);
	ssize_t total = 0, r = 0, w = 0;
	int e = 0;

	if (!buf)
		return shield_fail(ENOMEM);
	if (count > SSIZE_MAX)
		count = SSIZE_MAX;
	while ((size_t)total < count) {
		size_t want = count - (size_t)total < cap ? count - (size_t)total : cap;
		if (want > used)
			used = want; /* a failed read may still have put bytes there */
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
	scone_wipe(buf, used); /* plaintext of the volume: no more of it than was read */
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

/*
 * A pipe cannot hold a reference to plaintext pages: splice and tee of a
 * shielded fd are refused, except a splice into a TLS connection (the
 * network shield encrypts what it reads from the pipe).
 */
ssize_t splice(int in, off64_t *in_off, int out, off64_t *out_off, size_t len, unsigned int flags)
{
	REAL(splice);

	if (!in_off && !out_off && !shield_maybe_shielded(in) && shield_maybe_shielded(out)) {
		ssize_t r = io_net_splice_to_tls(in, out, len, flags);
		if (r != -2)
			return r;
	}
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
