/* vio.c - host and in-memory backends of the volume I/O interface. */
#include "vio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------- host backend ---------------- */

struct host_file {
	struct scone_vio_file base;
	int fd;
};

static enum scone_err host_errno(const char *op, const char *path)
{
	int e = errno;
	return scone_err_set(scone_err_from_errno(e), "%s %s: %s", op, path, strerror(e));
}

/* Open, retrying EINTR, and keep the fd above 2 so stray stdio never hits it. */
/*
 * The host backend's system calls, replaceable as a whole (vio.h): the
 * runtime gives its table of the real libc functions, so a volume's own
 * I/O never passes through the runtime's interposers.
 */
static const struct scone_vio_sys libc_sys = {
    .open = open,
    .close = close,
    .pread = pread,
    .pwrite = pwrite,
    .ftruncate = ftruncate,
    .fstat = fstat,
    .fsync = fsync,
    .fdatasync = fdatasync,
    .unlink = unlink,
    .rename = rename,
    .mkdir = mkdir,
    .opendir = opendir,
    .readdir = readdir,
    .closedir = closedir,
};
static const struct scone_vio_sys *host = &libc_sys;

void scone_vio_host_sys(const struct scone_vio_sys *sys)
{
	host = sys ? sys : &libc_sys;
}

static int robust_open(const char *path, int oflags, mode_t mode)
{
	for (;;) {
		int fd = host->open(path, oflags | O_CLOEXEC, mode);
		if (fd < 0 && errno == EINTR)
			continue;
		if (fd >= 0 && fd <= 2) {
			int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
			int saved = errno;
			host->close(fd);
			errno = saved;
			return hi;
		}
		return fd;
	}
}

static enum scone_err host_open(struct scone_vio *io, const char *path, unsigned flags,
				struct scone_vio_file **out)
{
	int oflags = (flags & SCONE_VIO_WRITE) ? O_RDWR : O_RDONLY;
	struct host_file *f;
	int fd;

	if (flags & SCONE_VIO_CREATE)
		oflags |= O_CREAT;
	if (flags & SCONE_VIO_EXCL)
		oflags |= O_EXCL;
	fd = robust_open(path, oflags, 0600);
	if (fd < 0)
		return host_errno("open", path);
	f = calloc(1, sizeof(*f));
	if (!f) {
		host->close(fd);
		return SCONE_ERR_NOMEM;
	}
	f->base.io = io;
	f->fd = fd;
	*out = &f->base;
	return SCONE_ERR_OK;
}

static enum scone_err host_pread(struct scone_vio_file *vf, void *buf, size_t size, uint64_t off, size_t *got)
{
	struct host_file *f = (struct host_file *)vf;
	size_t done = 0;

	while (done < size) {
		ssize_t n = host->pread(f->fd, (char *)buf + done, size - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return scone_err_set(scone_err_from_errno(errno), "read at offset %llu: %s",
					     (unsigned long long)(off + done), strerror(errno));
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return SCONE_ERR_OK;
}

static enum scone_err host_pwrite(struct scone_vio_file *vf, const void *buf, size_t size, uint64_t off)
{
	struct host_file *f = (struct host_file *)vf;
	size_t done = 0;

	while (done < size) {
		ssize_t n = host->pwrite(f->fd, (const char *)buf + done, size - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return scone_err_set(scone_err_from_errno(errno), "write at offset %llu: %s",
					     (unsigned long long)(off + done), strerror(errno));
		done += (size_t)n;
	}
	return SCONE_ERR_OK;
}

static enum scone_err host_truncate(struct scone_vio_file *vf, uint64_t size)
{
	struct host_file *f = (struct host_file *)vf;

	while (host->ftruncate(f->fd, (off_t)size) != 0) {
		if (errno != EINTR)
			return scone_err_set(scone_err_from_errno(errno), "truncate to %llu: %s",
					     (unsigned long long)size, strerror(errno));
	}
	return SCONE_ERR_OK;
}

static enum scone_err host_size(struct scone_vio_file *vf, uint64_t *size)
{
	struct host_file *f = (struct host_file *)vf;
	struct stat st;

	while (host->fstat(f->fd, &st) != 0) {
		if (errno != EINTR)
			return scone_err_set(scone_err_from_errno(errno), "fstat: %s", strerror(errno));
	}
	*size = (uint64_t)st.st_size;
	return SCONE_ERR_OK;
}

static enum scone_err host_sync(struct scone_vio_file *vf)
{
	struct host_file *f = (struct host_file *)vf;

	while (host->fdatasync(f->fd) != 0) {
		if (errno != EINTR)
			return scone_err_set(scone_err_from_errno(errno), "fdatasync: %s", strerror(errno));
	}
	return SCONE_ERR_OK;
}

static void host_close(struct scone_vio_file *vf)
{
	struct host_file *f = (struct host_file *)vf;

	host->close(f->fd);
	free(f);
}

static enum scone_err host_unlink(struct scone_vio *io, const char *path)
{
	(void)io;
	while (host->unlink(path) != 0) {
		if (errno != EINTR)
			return host_errno("unlink", path);
	}
	return SCONE_ERR_OK;
}

static enum scone_err host_rename(struct scone_vio *io, const char *from, const char *to)
{
	(void)io;
	while (host->rename(from, to) != 0) {
		if (errno != EINTR)
			return host_errno("rename", from);
	}
	return SCONE_ERR_OK;
}

/* mkdir that retries EINTR; an existing directory is fine. */
static bool host_mkdir(const char *path)
{
	int r;

	while ((r = host->mkdir(path, 0700)) != 0 && errno == EINTR)
		;
	return r == 0 || errno == EEXIST;
}

static enum scone_err host_mkdirs(struct scone_vio *io, const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	(void)io;
	if (len == 0 || len >= sizeof(buf))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "directory path too long: %s", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (!host_mkdir(buf))
			return host_errno("mkdir", buf);
		*p = '/';
	}
	if (!host_mkdir(buf))
		return host_errno("mkdir", buf);
	return SCONE_ERR_OK;
}

static enum scone_err host_sync_dir(struct scone_vio *io, const char *path)
{
	int fd = robust_open(path, O_RDONLY | O_DIRECTORY, 0), r;

	(void)io;
	if (fd < 0)
		return host_errno("open directory", path);
	while ((r = host->fsync(fd)) != 0 && errno == EINTR)
		;
	if (r != 0 && errno != EINVAL) {
		enum scone_err e = host_errno("fsync directory", path);
		host->close(fd);
		return e;
	}
	host->close(fd);
	return SCONE_ERR_OK;
}

/* The next entry of d, or NULL at the end or on an error (errno then non-zero); EINTR is retried. */
static struct dirent *host_readdir(DIR *d)
{
	struct dirent *de;

	do {
		errno = 0;
		de = host->readdir(d);
	} while (!de && errno == EINTR);
	return de;
}

static enum scone_err host_list(struct scone_vio *io, const char *dir, scone_vio_list_fn fn, void *arg)
{
	struct dirent *de;
	DIR *d;

	(void)io;
	while (!(d = host->opendir(dir)) && errno == EINTR)
		;
	if (!d)
		return host_errno("list", dir);
	while ((de = host_readdir(d)) != NULL) {
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (fn(arg, de->d_name))
			break;
	}
	if (!de && errno) {
		enum scone_err e = host_errno("list", dir);
		host->closedir(d);
		return e;
	}
	host->closedir(d);
	return SCONE_ERR_OK;
}

static void host_destroy(struct scone_vio *io)
{
	(void)io;
}

static const struct scone_vio_ops host_ops = {
    .open = host_open,
    .pread = host_pread,
    .pwrite = host_pwrite,
    .truncate = host_truncate,
    .size = host_size,
    .sync = host_sync,
    .close = host_close,
    .unlink = host_unlink,
    .rename = host_rename,
    .mkdirs = host_mkdirs,
    .sync_dir = host_sync_dir,
    .list = host_list,
    .destroy = host_destroy,
};

static struct scone_vio host_vio = {&host_ops};

struct scone_vio *scone_vio_host(void)
{
	return &host_vio;
}

/* ---------------- memory backend ---------------- */

/*
 * A flat map path -> byte array. Small and simple: used for ephemeral
 * regions (few files) and tests. Files are shared by handles; unlinking
 * keeps the bytes alive for handles still open.
 */
struct mem_blob {
	char *path; /* NULL once unlinked */
	uint8_t *data;
	uint64_t size;
	uint64_t cap;
	int refs;
	/* What its last sync made durable (scone_vio_mem_lose_unsynced); a file never synced has nothing. */
	uint8_t *ddata;
	uint64_t dsize;
};

struct mem_vio {
	struct scone_vio base;
	struct mem_blob **blobs;
	size_t count;
	size_t cap;
	long ops;
	long fail_after;
	bool crash;
	long syncs;
	long sync_fail_after;
};

struct mem_file {
	struct scone_vio_file base;
	struct mem_blob *blob;
};

/* Cap on one in-memory file, so a hostile offset cannot ask for terabytes. */
#define MEM_MAX_FILE ((uint64_t)1 << 36)

static struct mem_blob *mem_find(struct mem_vio *m, const char *path, size_t *idx)
{
	for (size_t i = 0; i < m->count; i++) {
		if (strcmp(m->blobs[i]->path, path) == 0) {
			if (idx)
				*idx = i;
			return m->blobs[i];
		}
	}
	return NULL;
}

static void blob_unref(struct mem_blob *b)
{
	if (--b->refs > 0)
		return;
	free(b->path);
	free(b->data);
	free(b->ddata);
	free(b);
}

static void mem_detach(struct mem_vio *m, size_t i)
{
	struct mem_blob *b = m->blobs[i];
	m->blobs[i] = m->blobs[--m->count];
	blob_unref(b);
}

/* Count a mutating operation. Returns 1 to proceed, 0 to drop it silently, or sets *err. */
static int mem_gate(struct mem_vio *m, enum scone_err *err)
{
	*err = SCONE_ERR_OK;
	if (m->fail_after >= 0 && m->ops >= m->fail_after) {
		if (m->crash)
			return 0;
		*err = scone_err_set(SCONE_ERR_IO, "injected I/O failure after %ld operations", m->ops);
		return 0;
	}
	m->ops++;
	return 1;
}

static enum scone_err mem_add(struct mem_vio *m, const char *path, struct mem_blob **out)
{
	struct mem_blob *b = calloc(1, sizeof(*b));

	if (!b || !(b->path = strdup(path))) {
		free(b);
		return SCONE_ERR_NOMEM;
	}
	if (m->count == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct mem_blob **nb = realloc(m->blobs, cap * sizeof(*nb));
		if (!nb) {
			free(b->path);
			free(b);
			return SCONE_ERR_NOMEM;
		}
		m->blobs = nb;
		m->cap = cap;
	}
	b->refs = 1;
	m->blobs[m->count++] = b;
	*out = b;
	return SCONE_ERR_OK;
}

static enum scone_err mem_open(struct scone_vio *io, const char *path, unsigned flags,
			       struct scone_vio_file **out)
{
	struct mem_vio *m = (struct mem_vio *)io;
	struct mem_blob *b = mem_find(m, path, NULL);
	struct mem_file *f;

	if (b && (flags & SCONE_VIO_EXCL))
		return scone_err_set(SCONE_ERR_EXISTS, "open %s: exists", path);
	if (!b) {
		enum scone_err err;
		if (!(flags & SCONE_VIO_CREATE))
			return scone_err_set(SCONE_ERR_NOT_FOUND, "open %s: no such file", path);
		if (!mem_gate(m, &err))
			return err ? err : scone_err_set(SCONE_ERR_IO, "crashed");
		SCONE_TRY(mem_add(m, path, &b));
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return SCONE_ERR_NOMEM;
	f->base.io = io;
	f->blob = b;
	b->refs++;
	*out = &f->base;
	return SCONE_ERR_OK;
}

static enum scone_err mem_pread(struct scone_vio_file *vf, void *buf, size_t size, uint64_t off, size_t *got)
{
	struct mem_blob *b = ((struct mem_file *)vf)->blob;
	size_t n = 0;

	if (off < b->size)
		n = (size_t)(b->size - off < size ? b->size - off : size);
	if (n)
		memcpy(buf, b->data + off, n);
	*got = n;
	return SCONE_ERR_OK;
}

static enum scone_err blob_resize(struct mem_blob *b, uint64_t size)
{
	if (size > MEM_MAX_FILE)
		return scone_err_set(SCONE_ERR_NO_SPACE, "in-memory file would exceed %llu bytes",
				     (unsigned long long)MEM_MAX_FILE);
	if (size > b->cap) {
		uint64_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;
		while (cap < size)
			cap *= 2;
		p = realloc(b->data, (size_t)cap);
		if (!p)
			return SCONE_ERR_NOMEM;
		b->data = p;
		b->cap = cap;
	}
	if (size > b->size)
		memset(b->data + b->size, 0, (size_t)(size - b->size));
	b->size = size;
	return SCONE_ERR_OK;
}

static enum scone_err mem_pwrite(struct scone_vio_file *vf, const void *buf, size_t size, uint64_t off)
{
	struct mem_file *f = (struct mem_file *)vf;
	struct mem_blob *b = f->blob;
	enum scone_err err;

	if (!mem_gate((struct mem_vio *)vf->io, &err))
		return err;
	if (off + size > b->size)
		SCONE_TRY(blob_resize(b, off + size));
	memcpy(b->data + off, buf, size);
	return SCONE_ERR_OK;
}

static enum scone_err mem_truncate(struct scone_vio_file *vf, uint64_t size)
{
	struct mem_file *f = (struct mem_file *)vf;
	enum scone_err err;

	if (!mem_gate((struct mem_vio *)vf->io, &err))
		return err;
	return blob_resize(f->blob, size);
}

static enum scone_err mem_size(struct scone_vio_file *vf, uint64_t *size)
{
	*size = ((struct mem_file *)vf)->blob->size;
	return SCONE_ERR_OK;
}

/* A sync: the data is already "on disk"; fails once scone_vio_mem_fail_syncs says so. */
static enum scone_err mem_sync_gate(struct mem_vio *m)
{
	if (m->sync_fail_after >= 0 && m->syncs >= m->sync_fail_after)
		return scone_err_set(SCONE_ERR_IO, "injected sync failure after %ld syncs", m->syncs);
	m->syncs++;
	return SCONE_ERR_OK;
}

/* The blob's bytes as they are now become what a crash keeps. */
static enum scone_err mem_make_durable(struct mem_blob *b)
{
	uint8_t *d = realloc(b->ddata, b->size ? (size_t)b->size : 1);

	if (!d)
		return SCONE_ERR_NOMEM;
	if (b->size)
		memcpy(d, b->data, (size_t)b->size);
	b->ddata = d;
	b->dsize = b->size;
	return SCONE_ERR_OK;
}

static enum scone_err mem_sync(struct scone_vio_file *vf)
{
	struct mem_vio *m = (struct mem_vio *)vf->io;

	SCONE_TRY(mem_sync_gate(m));
	if (m->crash && m->fail_after >= 0 && m->ops >= m->fail_after)
		return SCONE_ERR_OK; /* (killed: nothing reaches the disk any more) */
	return mem_make_durable(((struct mem_file *)vf)->blob);
}

static void mem_close(struct scone_vio_file *vf)
{
	struct mem_file *f = (struct mem_file *)vf;

	blob_unref(f->blob);
	free(f);
}

static enum scone_err mem_unlink(struct scone_vio *io, const char *path)
{
	struct mem_vio *m = (struct mem_vio *)io;
	size_t i;
	enum scone_err err;

	if (!mem_find(m, path, &i))
		return scone_err_set(SCONE_ERR_NOT_FOUND, "unlink %s: no such file", path);
	if (!mem_gate(m, &err))
		return err;
	mem_detach(m, i);
	return SCONE_ERR_OK;
}

static enum scone_err mem_rename(struct scone_vio *io, const char *from, const char *to)
{
	struct mem_vio *m = (struct mem_vio *)io;
	struct mem_blob *b = mem_find(m, from, NULL);
	size_t i;
	char *np;
	enum scone_err err;

	if (!b)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "rename %s: no such file", from);
	if (!mem_gate(m, &err))
		return err;
	np = strdup(to);
	if (!np)
		return SCONE_ERR_NOMEM;
	if (strcmp(from, to) != 0 && mem_find(m, to, &i))
		mem_detach(m, i);
	free(b->path);
	b->path = np;
	return SCONE_ERR_OK;
}

static enum scone_err mem_mkdirs(struct scone_vio *io, const char *path)
{
	(void)io;
	(void)path;
	return SCONE_ERR_OK; /* directories are implicit in path names */
}

static enum scone_err mem_sync_dir(struct scone_vio *io, const char *path)
{
	(void)path;
	return mem_sync_gate((struct mem_vio *)io);
}

static enum scone_err mem_list(struct scone_vio *io, const char *dir, scone_vio_list_fn fn, void *arg)
{
	struct mem_vio *m = (struct mem_vio *)io;
	size_t dl = strlen(dir);

	for (size_t i = 0; i < m->count; i++) {
		const char *p = m->blobs[i]->path;
		if (strncmp(p, dir, dl) == 0 && p[dl] == '/' && !strchr(p + dl + 1, '/'))
			if (fn(arg, p + dl + 1))
				break;
	}
	return SCONE_ERR_OK;
}

static void mem_destroy(struct scone_vio *io)
{
	struct mem_vio *m = (struct mem_vio *)io;

	while (m->count)
		mem_detach(m, m->count - 1);
	free(m->blobs);
	free(m);
}

static const struct scone_vio_ops mem_ops = {
    .open = mem_open,
    .pread = mem_pread,
    .pwrite = mem_pwrite,
    .truncate = mem_truncate,
    .size = mem_size,
    .sync = mem_sync,
    .close = mem_close,
    .unlink = mem_unlink,
    .rename = mem_rename,
    .mkdirs = mem_mkdirs,
    .sync_dir = mem_sync_dir,
    .list = mem_list,
    .destroy = mem_destroy,
};

enum scone_err scone_vio_mem_new(struct scone_vio **out)
{
	struct mem_vio *m = calloc(1, sizeof(*m));

	if (!m)
		return SCONE_ERR_NOMEM;
	m->base.ops = &mem_ops;
	m->fail_after = -1;
	m->sync_fail_after = -1;
	*out = &m->base;
	return SCONE_ERR_OK;
}

void scone_vio_mem_fail_after(struct scone_vio *io, long writes, bool crash)
{
	struct mem_vio *m = (struct mem_vio *)io;

	m->fail_after = writes < 0 ? -1 : m->ops + writes;
	m->crash = crash;
}

void scone_vio_mem_fail_syncs(struct scone_vio *io, long syncs)
{
	struct mem_vio *m = (struct mem_vio *)io;

	m->sync_fail_after = syncs < 0 ? -1 : m->syncs + syncs;
}

long scone_vio_mem_op_count(struct scone_vio *io)
{
	return ((struct mem_vio *)io)->ops;
}

long scone_vio_mem_sync_count(struct scone_vio *io)
{
	return ((struct mem_vio *)io)->syncs;
}

enum scone_err scone_vio_mem_clone(struct scone_vio *io, struct scone_vio **out)
{
	struct mem_vio *m = (struct mem_vio *)io;
	struct scone_vio *c;

	SCONE_TRY(scone_vio_mem_new(&c));
	for (size_t i = 0; i < m->count; i++) {
		struct mem_blob *src = m->blobs[i], *dst;
		enum scone_err err = mem_add((struct mem_vio *)c, src->path, &dst);
		if (!err)
			err = blob_resize(dst, src->size);
		if (err) {
			mem_destroy(c);
			return err;
		}
		if (src->size)
			memcpy(dst->data, src->data, (size_t)src->size);
		if (src->ddata && !(dst->ddata = malloc(src->dsize ? (size_t)src->dsize : 1))) {
			mem_destroy(c);
			return SCONE_ERR_NOMEM;
		}
		if (src->dsize)
			memcpy(dst->ddata, src->ddata, (size_t)src->dsize);
		dst->dsize = src->dsize;
	}
	*out = c;
	return SCONE_ERR_OK;
}

static uint64_t lose_rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* One blob after a power loss: seed 0 keeps only the durable bytes; others keep a random mix. */
static enum scone_err blob_lose(struct mem_blob *b, uint64_t *rng, bool all)
{
	uint64_t size = all || lose_rng(rng) % 2 ? b->dsize : b->size, old = b->dsize;
	uint8_t *cur = b->data;
	uint64_t cur_size = b->size;
	enum scone_err err;

	b->data = NULL;
	b->size = b->cap = 0;
	if ((err = blob_resize(b, size))) {
		free(cur);
		return err;
	}
	for (uint64_t off = 0; off < size; off += 4096) {
		size_t n = (size_t)(size - off < 4096 ? size - off : 4096);
		bool keep_new = !all && lose_rng(rng) % 2 && off + n <= cur_size;
		if (keep_new)
			memcpy(b->data + off, cur + off, n);
		else if (off < old)
			memcpy(b->data + off, b->ddata + off, (size_t)(old - off < n ? old - off : n));
		else if (off < cur_size && !all && lose_rng(rng) % 2) /* (written past the durable end) */
			memcpy(b->data + off, cur + off, (size_t)(cur_size - off < n ? cur_size - off : n));
	}
	free(cur);
	return SCONE_ERR_OK;
}

enum scone_err scone_vio_mem_lose_unsynced(struct scone_vio *io, uint64_t seed)
{
	struct mem_vio *m = (struct mem_vio *)io;
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < m->count; i++)
		SCONE_TRY(blob_lose(m->blobs[i], &rng, seed == 0));
	return SCONE_ERR_OK;
}
