/*
 * measure.c - the measurement algorithm of measure.h: the maps parser, the
 * traversal of a process's code mappings, the combination of hashes, and
 * the runtime's measurement of itself.
 */
#include "attest/measure.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/crypto.h"

#define MEASUREMENT_DOMAIN "scone-las measurement v1"
#define READ_CHUNK (1u << 20)

/* ---- maps lines ---- */

struct cursor {
	const char *p, *end;
};

static bool hex_field(struct cursor *c, char stop, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	for (; c->p < c->end && *c->p != stop; c->p++, n++) {
		char ch = *c->p;
		int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
		if (d < 0 || n >= 16)
			return false;
		v = v << 4 | (uint64_t)d;
	}
	if (n == 0 || c->p == c->end)
		return false;
	c->p++; /* the stop character */
	*out = v;
	return true;
}

static bool dec_field(struct cursor *c, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++, n++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*c->p - '0');
	}
	*out = v;
	return n > 0;
}

static bool parse_line(struct cursor *c, struct scone_map_line *out)
{
	uint64_t off, major, minor;

	if (!hex_field(c, '-', &out->start) || !hex_field(c, ' ', &out->end) || out->end < out->start)
		return false;
	if (c->end - c->p < 5 || c->p[4] != ' ')
		return false;
	out->exec = c->p[2] == 'x';
	c->p += 5;
	if (!hex_field(c, ' ', &off) || !hex_field(c, ':', &major) || !hex_field(c, ' ', &minor))
		return false;
	if (major > UINT32_MAX || minor > UINT32_MAX || !dec_field(c, &out->inode))
		return false;
	out->dev_major = (unsigned)major;
	out->dev_minor = (unsigned)minor;
	while (c->p < c->end && *c->p == ' ')
		c->p++;
	out->path = c->p;
	out->path_len = (size_t)(c->end - c->p);
	return true;
}

enum scone_err scone_maps_next(struct scone_rbuf *r, struct scone_map_line *out)
{
	const char *start = (const char *)r->data + r->pos;
	size_t left = scone_rbuf_left(r), len;
	const char *nl;
	struct cursor c;

	memset(out, 0, sizeof(*out));
	if (left == 0)
		return SCONE_ERR_NOT_FOUND;
	nl = memchr(start, '\n', left);
	len = nl ? (size_t)(nl - start) : left;
	c.p = start;
	c.end = start + len;
	if (!parse_line(&c, out))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: cannot parse the line at offset %zu", r->what, r->pos);
	r->pos += len + (nl ? 1 : 0);
	return SCONE_ERR_OK;
}

/* ---- combining ---- */

static int cmp_hash(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

void scone_measurement_combine(const uint8_t exe_hash[32], uint8_t (*files)[32], size_t n, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t count[4];
	size_t k = 0;
	unsigned len = 32;

	if (n)
		qsort(files, n, 32, cmp_hash);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || memcmp(files[k - 1], files[i], 32) != 0)
			memmove(files[k++], files[i], 32);
	scone_put_le32(count, (uint32_t)k);
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, MEASUREMENT_DOMAIN, sizeof(MEASUREMENT_DOMAIN) - 1) != 1 ||
	    EVP_DigestUpdate(md, exe_hash, 32) != 1 || EVP_DigestUpdate(md, count, 4) != 1 ||
	    (k && EVP_DigestUpdate(md, files, 32 * k) != 1) || EVP_DigestFinal_ex(md, out, &len) != 1)
		memset(out, 0, 32); /* only on allocation failure; an all-zero value matches no session */
	EVP_MD_CTX_free(md);
}

enum scone_err scone_measure_fd(int fd, uint8_t out[32], uint64_t *size)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t *buf = malloc(READ_CHUNK);
	enum scone_err err = SCONE_ERR_OK;
	uint64_t total = 0;
	unsigned len = 32;
	ssize_t n;

	if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		err = scone_err_set(SCONE_ERR_NOMEM, "measuring a file: no memory");
	while (!err && (n = read(fd, buf, READ_CHUNK)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = scone_err_set(scone_err_from_errno(errno), "reading a code file: %s", strerror(errno));
		else if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			err = scone_err_set(SCONE_ERR_CRYPTO, "SHA-256 of a code file");
		else
			total += (uint64_t)n;
	}
	if (!err && EVP_DigestFinal_ex(md, out, &len) != 1)
		err = scone_err_set(SCONE_ERR_CRYPTO, "SHA-256 of a code file");
	if (!err && size)
		*size = total;
	EVP_MD_CTX_free(md);
	free(buf);
	return err;
}

/* ---- the traversal ---- */

/* The distinct code files met so far, by device and inode. */
struct seen {
	struct {
		unsigned major, minor;
		uint64_t inode;
	} id[SCONE_MEASURE_MAX_FILES];
	uint8_t hash[SCONE_MEASURE_MAX_FILES][32];
	size_t n;
};

static const uint8_t *seen_find(const struct seen *s, const struct scone_map_line *m)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->id[i].inode == m->inode && s->id[i].major == m->dev_major && s->id[i].minor == m->dev_minor)
			return s->hash[i];
	return NULL;
}

static bool kernel_mapping(const struct scone_map_line *m)
{
	static const char *const names[] = { "[vdso]", "[vsyscall]", "[uprobes]", "[vvar]" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (m->path_len == strlen(names[i]) && memcmp(m->path, names[i], m->path_len) == 0)
			return true;
	return false;
}

/* Read /proc/PID/maps whole into w. */
static enum scone_err read_maps(int proc_fd, struct scone_wbuf *w)
{
	int fd = openat(proc_fd, "maps", O_RDONLY | O_CLOEXEC);
	uint8_t buf[16384];
	enum scone_err err = SCONE_ERR_OK;
	ssize_t n;

	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "/proc/PID/maps: %s", strerror(errno));
	while (!err && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = scone_err_set(scone_err_from_errno(errno), "/proc/PID/maps: %s", strerror(errno));
		else
			err = scone_wbuf_put(w, buf, (size_t)n);
	}
	close(fd);
	if (err == SCONE_ERR_TOO_LARGE)
		err = scone_err_set(err, "/proc/PID/maps is larger than %u bytes", SCONE_MEASURE_MAPS_MAX);
	return err;
}

/* A code mapping: its file's hash, from earlier mappings of the same file or the hook. */
static enum scone_err code_mapping(int proc_fd, const struct scone_measure_io *io, const struct scone_map_line *m,
				   struct seen *s, struct scone_measure_result *out)
{
	const uint8_t *h = seen_find(s, m);
	char name[64];

	if (!h) {
		if (s->n == SCONE_MEASURE_MAX_FILES)
			return scone_err_set(SCONE_ERR_LIMIT, "more than %d code files mapped", SCONE_MEASURE_MAX_FILES);
		snprintf(name, sizeof(name), "map_files/%" PRIx64 "-%" PRIx64, m->start, m->end);
		SCONE_TRY(io->file_hash(io->ctx, proc_fd, name, m, s->hash[s->n]));
		s->id[s->n].major = m->dev_major;
		s->id[s->n].minor = m->dev_minor;
		s->id[s->n].inode = m->inode;
		h = s->hash[s->n++];
		if (io->on_file)
			io->on_file(io->ctx, "file", m->path, m->path_len, h);
	}
	if (io->addr && io->addr >= m->start && io->addr < m->end) {
		memcpy(out->addr_hash, h, 32);
		out->addr_found = true;
	}
	return SCONE_ERR_OK;
}

static enum scone_err walk_maps(int proc_fd, const struct scone_measure_io *io, const struct scone_wbuf *maps,
				struct seen *s, struct scone_measure_result *out)
{
	struct scone_rbuf r;
	struct scone_map_line m;
	enum scone_err err;

	scone_rbuf_init(&r, maps->data, maps->size, "/proc/PID/maps");
	while ((err = scone_maps_next(&r, &m)) == SCONE_ERR_OK) {
		if (!m.exec || kernel_mapping(&m))
			continue;
		if (m.inode == 0) {
			out->anon_exec++;
			continue;
		}
		SCONE_TRY(code_mapping(proc_fd, io, &m, s, out));
	}
	return err == SCONE_ERR_NOT_FOUND ? SCONE_ERR_OK : err;
}

enum scone_err scone_measure_process(int proc_fd, const struct scone_measure_io *io, struct scone_measure_result *out)
{
	struct scone_wbuf maps;
	struct seen *s = calloc(1, sizeof(*s));
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	if (!s)
		return scone_err_set(SCONE_ERR_NOMEM, "measuring a process");
	scone_wbuf_init(&maps, SCONE_MEASURE_MAPS_MAX, 0);
	err = read_maps(proc_fd, &maps);
	if (!err)
		err = walk_maps(proc_fd, io, &maps, s, out);
	if (!err && s->n == 0)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "the process maps no code file (it has exited?)");
	if (!err)
		err = io->file_hash(io->ctx, proc_fd, "exe", NULL, out->exe_hash);
	if (!err && io->on_file) {
		char path[4096];
		ssize_t n = readlinkat(proc_fd, "exe", path, sizeof(path));
		io->on_file(io->ctx, "exe", path, n > 0 ? (size_t)n : 0, out->exe_hash);
	}
	if (!err) {
		out->files = (uint32_t)s->n;
		scone_measurement_combine(out->exe_hash, s->hash, s->n, out->measurement);
	}
	scone_wbuf_free(&maps);
	free(s);
	return err;
}

/* ---- the runtime measuring itself ---- */

/*
 * Through map_files where the kernel lets us (CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE), else the path maps names, accepted only if it
 * is still the mapped file (same device and inode).
 */
static enum scone_err self_file_hash(void *ctx, int proc_fd, const char *name, const struct scone_map_line *m,
				     uint8_t out[32])
{
	char path[4096];
	struct stat st;
	enum scone_err err;
	int fd = openat(proc_fd, name, O_RDONLY | O_CLOEXEC);

	(void)ctx;
	if (fd < 0 && m && (errno == EPERM || errno == EACCES)) {
		if (m->path_len == 0 || m->path_len >= sizeof(path) || m->path[0] != '/')
			return scone_err_set(SCONE_ERR_UNSUPPORTED, "a code mapping has no usable path (run as root)");
		memcpy(path, m->path, m->path_len);
		path[m->path_len] = '\0';
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &st) != 0 || st.st_ino != m->inode || major(st.st_dev) != m->dev_major ||
				minor(st.st_dev) != m->dev_minor)) {
			close(fd);
			return scone_err_set(SCONE_ERR_UNSUPPORTED,
					     "%s is not the file mapped (replaced, deleted or on an overlay): run scone "
					     "measure as root",
					     path);
		}
	}
	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "/proc/self/%s: %s", name, strerror(errno));
	err = scone_measure_fd(fd, out, NULL);
	close(fd);
	return err;
}

enum scone_err scone_measure_self(void (*on_file)(void *ctx, const char *role, const char *path, size_t path_len,
						   const uint8_t hash[32]),
				  void *ctx, struct scone_measure_result *out)
{
	struct scone_measure_io io = { .file_hash = self_file_hash, .on_file = on_file, .ctx = ctx };
	int proc_fd = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum scone_err err;

	if (proc_fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "/proc/self: %s", strerror(errno));
	err = scone_measure_process(proc_fd, &io, out);
	close(proc_fd);
	return err;
}
