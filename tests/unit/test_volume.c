/*
 * test_volume.c - unit tests for src/volume: semantics of protected files
 * and the namespace, freshness (rollback), integrity (every kind of host
 * tampering has its own error code and a detail naming file and bytes),
 * threads, and misuse of the API. Crash simulation lives in
 * test_volume_crash.c.
 *
 * Most tests run on the memory backend, where the host side of a volume is
 * reachable through the same struct scone_vio the library uses, so tampering
 * is exact. A few run on the host file system in a mkdtemp directory
 * (sparse files, plaintext on disk). internal.h is included for the layout
 * constants and to shrink the node cache (white box, as fuzz targets do).
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/hex.h"
#include "volume/internal.h"
#include "volume/vio.h"
#include "volume/volume.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define BLK ((uint64_t)VOL_BLOCK)
#define assert_err(expr, code)                                                                               \
	do {                                                                                                 \
		enum scone_err e_ = (expr);                                                                  \
		if (e_ != (code))                                                                            \
			fail_msg("%s: got %s (%s), want %s", #expr, scone_errname(e_), scone_err_detail(),   \
				 scone_errname(code));                                                       \
	} while (0)
#define assert_detail(...) assert_detail_(__LINE__, __VA_ARGS__, NULL)

static void assert_detail_(int line, ...)
{
	va_list ap;
	const char *want;

	va_start(ap, line);
	while ((want = va_arg(ap, const char *)) != NULL)
		if (!strstr(scone_err_detail(), want))
			fail_msg("line %d: detail '%s' lacks '%s'", line, scone_err_detail(), want);
	va_end(ap);
}

/* ---------------- deterministic data ---------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return n ? rng_next(s) % n : 0;
}

static void fill(uint8_t *buf, size_t size, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < size; i++) {
		if (i % 8 == 0)
			rng_next(&s);
		buf[i] = (uint8_t)(s >> (i % 8 * 8));
	}
}

static uint8_t *pattern(size_t size, uint64_t seed)
{
	uint8_t *p = malloc(size ? size : 1);
	assert_non_null(p);
	fill(p, size, seed);
	return p;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---------------- fixture: a sealed volume with four regions ---------------- */

struct fx {
	struct scone_vio *io;
	bool host;
	char dir[64];
	char fspf[96];
	struct scone_volume *v;
	uint8_t key[SCONE_VOLUME_KEY_SIZE];
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	unsigned extra; /* open flags every open adds (SCONE_VOL_REDO) */
};

static void fx_build(struct fx *x)
{
	assert_ok(scone_volume_create_at(x->io, x->fspf));
	assert_ok(scone_volume_open_at(x->io, x->fspf, NULL, NULL,
				       SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED | x->extra, &x->v));
	assert_ok(scone_volume_add_region(x->v, "/enc", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, "enc"));
	assert_ok(
	    scone_volume_add_region(x->v, "/auth", SCONE_REGION_AUTHENTICATED, SCONE_STORE_KERNEL, "auth"));
	assert_ok(scone_volume_add_region(x->v, "/eph", SCONE_REGION_ENCRYPTED, SCONE_STORE_EPHEMERAL, NULL));
	assert_ok(
	    scone_volume_add_region(x->v, "/plain", SCONE_REGION_NOT_PROTECTED, SCONE_STORE_KERNEL, "plain"));
	assert_false(scone_volume_is_sealed(x->v));
	assert_ok(scone_volume_seal(x->v, NULL, x->key, x->tag));
	assert_true(scone_volume_is_sealed(x->v));
}

/* A volume in memory whose opens add extra (SCONE_VOL_REDO: records that carry their blocks). */
static void fx_mem_flags(struct fx *x, unsigned extra)
{
	memset(x, 0, sizeof(*x));
	x->extra = extra;
	assert_ok(scone_vio_mem_new(&x->io));
	snprintf(x->dir, sizeof(x->dir), "/vol");
	snprintf(x->fspf, sizeof(x->fspf), "/vol/fspf");
	fx_build(x);
}

static void fx_mem(struct fx *x)
{
	fx_mem_flags(x, 0);
}

static void fx_host_flags(struct fx *x, unsigned extra)
{
	memset(x, 0, sizeof(*x));
	x->extra = extra;
	x->io = scone_vio_host();
	x->host = true;
	snprintf(x->dir, sizeof(x->dir), "/tmp/scone-vol-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->fspf, sizeof(x->fspf), "%s/fspf", x->dir);
	fx_build(x);
}

static void fx_host(struct fx *x)
{
	fx_host_flags(x, 0);
}

static enum scone_err fx_open(struct fx *x, unsigned flags)
{
	return scone_volume_open_at(x->io, x->fspf, x->key, x->tag, flags | x->extra, &x->v);
}

static void fx_close(struct fx *x)
{
	if (x->v)
		assert_ok(scone_volume_close(x->v, x->tag));
	x->v = NULL;
}

static void fx_reopen(struct fx *x)
{
	fx_close(x);
	assert_ok(fx_open(x, SCONE_VOL_RDWR));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void fx_done(struct fx *x)
{
	fx_close(x);
	if (x->host)
		nftw(x->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		x->io->ops->destroy(x->io);
}

/* ---------------- file helpers ---------------- */

static void put(struct scone_volume *v, const char *path, const uint8_t *data, size_t size)
{
	struct scone_vfile *f;

	assert_ok(scone_vfile_open(v, path, SCONE_VF_RDWR | SCONE_VF_CREAT | SCONE_VF_TRUNC, 0600, &f));
	assert_ok(scone_vfile_pwrite(f, data, size, 0));
	scone_vfile_close(f);
}

static void expect(struct scone_volume *v, const char *path, const uint8_t *data, size_t size)
{
	struct scone_vfile *f;
	struct scone_vstat st;
	uint8_t *buf = malloc(size + 17);
	size_t got = 1;

	assert_non_null(buf);
	assert_ok(scone_volume_stat(v, path, &st));
	assert_false(st.is_dir);
	assert_int_equal(st.size, size);
	if (scone_vfile_open(v, path, SCONE_VF_RDONLY, 0, &f) != SCONE_ERR_OK)
		fail_msg("%s: open: %s", path, scone_err_detail());
	assert_ok(scone_vfile_stat(f, &st));
	assert_int_equal(st.size, size);
	assert_ok(scone_vfile_pread(f, buf, size + 17, 0, &got));
	assert_int_equal(got, size);
	if (size && memcmp(buf, data, size) != 0)
		fail_msg("%s: content differs", path);
	assert_ok(scone_vfile_pread(f, buf, 10, size, &got)); /* at EOF */
	assert_int_equal(got, 0);
	scone_vfile_close(f);
	free(buf);
}

static void file_id_hex(struct scone_volume *v, const char *path, char out[static 33])
{
	struct scone_vstat st;

	assert_ok(scone_volume_stat(v, path, &st));
	scone_hex_encode(out, 33, st.file_id, sizeof(st.file_id));
}

/* Host path of a protected file (region dir "enc" or "auth"). */
static void host_path(struct fx *x, const char *region_dir, const char *path, char *out, size_t n)
{
	char hex[33];

	file_id_hex(x->v, path, hex);
	snprintf(out, n, "%s/%s/%s", x->dir, region_dir, hex);
}

/* A growable reference copy of one file. */
struct model {
	uint8_t *d;
	size_t size, cap;
};

static void model_reserve(struct model *m, size_t size)
{
	if (size <= m->cap)
		return;
	m->d = realloc(m->d, size);
	assert_non_null(m->d);
	memset(m->d + m->cap, 0, size - m->cap);
	m->cap = size;
}

static void model_write(struct model *m, const uint8_t *p, size_t n, size_t off)
{
	model_reserve(m, off + n);
	if (off > m->size)
		memset(m->d + m->size, 0, off - m->size);
	memcpy(m->d + off, p, n);
	if (off + n > m->size)
		m->size = off + n;
}

static void model_truncate(struct model *m, size_t size)
{
	model_reserve(m, size);
	if (size > m->size)
		memset(m->d + m->size, 0, size - m->size);
	m->size = size;
}

/* ==================== 1. semantics ==================== */

static const size_t test_sizes[] = {0, 1, 4095, 4096, 4097, 64 * 4096 - 1, 64 * 4096, 64 * 4096 + 1, 3 << 20};
static const char *const test_regions[] = {"/enc", "/auth", "/eph"};

TEST(test_sizes_roundtrip)
{
	struct fx x;
	char path[64];

	fx_mem(&x);
	for (size_t r = 0; r < N_ELEMS(test_regions); r++) {
		for (size_t i = 0; i < N_ELEMS(test_sizes); i++) {
			uint8_t *d = pattern(test_sizes[i], r * 100 + i);
			snprintf(path, sizeof(path), "%s/f%zu", test_regions[r], test_sizes[i]);
			put(x.v, path, d, test_sizes[i]);
			expect(x.v, path, d, test_sizes[i]);
			free(d);
		}
	}
	assert_ok(scone_volume_sync(x.v));
	fx_reopen(&x);
	for (size_t r = 0; r < N_ELEMS(test_regions); r++) {
		for (size_t i = 0; i < N_ELEMS(test_sizes); i++) {
			uint8_t *d = pattern(test_sizes[i], r * 100 + i);
			struct scone_vstat st;
			snprintf(path, sizeof(path), "%s/f%zu", test_regions[r], test_sizes[i]);
			if (strcmp(test_regions[r], "/eph") == 0)
				assert_err(scone_volume_stat(x.v, path, &st), SCONE_ERR_NOT_FOUND);
			else
				expect(x.v, path, d, test_sizes[i]);
			free(d);
		}
	}
	assert_ok(scone_volume_check_host(x.v, NULL, NULL));
	fx_done(&x);
}

/* Random pwrite/pread/truncate/append against reference copies, with syncs and reopens. */
struct rfile {
	const char *path;
	struct scone_vfile *f;
	struct model m;
};

static void rfiles_open(struct fx *x, struct rfile *rf, size_t n, size_t max_clean)
{
	if (max_clean)
		x->v->max_clean_nodes = max_clean; /* force node eviction */
	for (size_t i = 0; i < n; i++)
		assert_ok(scone_vfile_open(x->v, rf[i].path, SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &rf[i].f));
}

static void rfiles_close(struct rfile *rf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		scone_vfile_close(rf[i].f);
		rf[i].f = NULL;
	}
}

static size_t random_size(uint64_t *s)
{
	uint64_t k = rng_below(s, 10);

	if (k < 4)
		return 1 + (size_t)rng_below(s, 64); /* tiny */
	if (k < 7)
		return 1 + (size_t)rng_below(s, 3 * 4096); /* around a chunk */
	if (k < 9)
		return 4096 * (1 + (size_t)rng_below(s, 8)); /* whole chunks */
	return 1 + (size_t)rng_below(s, 300000);	     /* across nodes */
}

static void random_op(struct fx *x, struct rfile *rf, size_t nf, uint64_t *s, size_t max, uint8_t *buf,
		      uint8_t *buf2)
{
	struct rfile *r = &rf[rng_below(s, nf)];
	unsigned op = (unsigned)rng_below(s, 100);
	size_t size = random_size(s), got;
	uint64_t off = rng_below(s, max);

	if (rng_below(s, 4) == 0)
		off -= off % 4096;
	if (off + size > max)
		size = max - off;
	if (op < 45) {
		fill(buf, size, rng_next(s));
		assert_ok(scone_vfile_pwrite(r->f, buf, size, off));
		model_write(&r->m, buf, size, off);
	} else if (op < 78) {
		off = rng_below(s, r->m.size + 100);
		size_t want = off >= r->m.size ? 0 : (r->m.size - off < size ? r->m.size - off : size);
		assert_ok(scone_vfile_pread(r->f, buf2, size, off, &got));
		assert_int_equal(got, want);
		if (want && memcmp(buf2, r->m.d + off, want) != 0)
			fail_msg("%s: bytes %llu+%zu differ", r->path, (unsigned long long)off, want);
	} else if (op < 86) {
		size_t ns = rng_below(s, 2) ? (size_t)rng_below(s, max) : (size_t)rng_below(s, r->m.size + 1);
		assert_ok(scone_vfile_truncate(r->f, ns));
		model_truncate(&r->m, ns);
	} else if (op < 92) {
		uint64_t at;
		if (r->m.size + size > max)
			return;
		fill(buf, size, rng_next(s));
		assert_ok(scone_vfile_append(r->f, buf, size, &at));
		assert_int_equal(at, r->m.size);
		model_write(&r->m, buf, size, r->m.size);
	} else if (op < 97) {
		assert_ok(scone_volume_sync(x->v));
	} else if (op < 99) {
		struct scone_vstat st;
		assert_ok(scone_vfile_stat(r->f, &st));
		assert_int_equal(st.size, r->m.size);
		scone_vfile_close(r->f);
		assert_ok(scone_vfile_open(x->v, r->path, SCONE_VF_RDWR, 0, &r->f));
	} else {
		rfiles_close(rf, nf);
		fx_reopen(x);
		for (size_t i = 0; i < nf; i++)
			if (strncmp(rf[i].path, "/eph/", 5) == 0)
				rf[i].m.size = 0; /* ephemeral files start empty */
		rfiles_open(x, rf, nf, x->v->max_clean_nodes);
	}
}

static void random_workload(size_t max_clean, uint64_t seed, unsigned ops)
{
	struct rfile rf[] = {
	    {"/enc/r0", NULL, {0}}, {"/enc/r1", NULL, {0}}, {"/auth/r2", NULL, {0}}, {"/eph/r3", NULL, {0}}};
	const size_t max = 3 << 20;
	uint8_t *buf = malloc(max), *buf2 = malloc(max);
	uint64_t s = seed;
	struct fx x;

	assert_non_null(buf);
	assert_non_null(buf2);
	fx_mem(&x);
	rfiles_open(&x, rf, N_ELEMS(rf), max_clean);
	for (unsigned i = 0; i < ops; i++)
		random_op(&x, rf, N_ELEMS(rf), &s, max, buf, buf2);
	rfiles_close(rf, N_ELEMS(rf));
	fx_reopen(&x);
	for (size_t i = 0; i < N_ELEMS(rf); i++) {
		if (strncmp(rf[i].path, "/eph/", 5) != 0)
			expect(x.v, rf[i].path, rf[i].m.d, rf[i].m.size);
		free(rf[i].m.d);
	}
	assert_ok(scone_volume_check_host(x.v, NULL, NULL));
	fx_done(&x);
	free(buf);
	free(buf2);
}

TEST(test_random_ops)
{
	random_workload(0, 0x5c0e1, 2500);
}

/* The same with a node cache of two nodes: every access evicts and reloads. */
TEST(test_random_ops_tiny_cache)
{
	random_workload(2, 0xbeef, 1200);
}

static uint64_t host_file_blocks(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_blocks * 512;
}

TEST(test_sparse_far_write)
{
	const uint64_t far = 5ull << 30;
	uint8_t *d = pattern(10000, 7), buf[12000];
	struct scone_vfile *f;
	struct scone_vstat st;
	char hp[200];
	size_t got;
	struct fx x;

	fx_host(&x);
	assert_ok(scone_vfile_open(x.v, "/enc/sparse", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	assert_ok(scone_vfile_pwrite(f, d, 10000, far));
	assert_ok(scone_vfile_stat(f, &st));
	assert_int_equal(st.size, far + 10000);
	for (int round = 0; round < 2; round++) {
		static const uint64_t holes[] = {0, 4096 * 63, 1ull << 30, (5ull << 30) - 12000};
		for (size_t i = 0; i < N_ELEMS(holes); i++) {
			memset(buf, 0xaa, sizeof(buf));
			assert_ok(scone_vfile_pread(f, buf, sizeof(buf), holes[i], &got));
			assert_int_equal(got, sizeof(buf));
			assert_true(all_zero(buf, sizeof(buf)));
		}
		assert_ok(scone_vfile_pread(f, buf, sizeof(buf), far - 1000, &got));
		assert_int_equal(got, 11000);
		assert_true(all_zero(buf, 1000));
		assert_memory_equal(buf + 1000, d, 10000);
		host_path(&x, "enc", "/enc/sparse", hp, sizeof(hp));
		assert_true(host_file_blocks(hp) < (1u << 20));
		if (round == 0) {
			scone_vfile_close(f);
			fx_reopen(&x);
			assert_ok(scone_vfile_open(x.v, "/enc/sparse", SCONE_VF_RDWR, 0, &f));
		}
	}
	scone_vfile_close(f);
	assert_ok(scone_volume_check_host(x.v, NULL, NULL));
	free(d);
	fx_done(&x);
}

static void check_model(struct scone_vfile *f, const struct model *m)
{
	uint8_t *buf = malloc(m->size + 1);
	size_t got;

	assert_non_null(buf);
	assert_ok(scone_vfile_pread(f, buf, m->size + 1, 0, &got));
	assert_int_equal(got, m->size);
	if (m->size)
		assert_memory_equal(buf, m->d, m->size);
	free(buf);
}

static void do_truncate(struct scone_vfile *f, struct model *m, size_t size)
{
	assert_ok(scone_vfile_truncate(f, size));
	model_truncate(m, size);
	check_model(f, m);
}

static void do_write(struct scone_vfile *f, struct model *m, size_t off, size_t size, uint64_t seed)
{
	uint8_t *d = pattern(size, seed);
	assert_ok(scone_vfile_pwrite(f, d, size, off));
	model_write(m, d, size, off);
	free(d);
	check_model(f, m);
}

TEST(test_truncate)
{
	struct model m = {0};
	struct scone_vfile *f;
	struct fx x;

	fx_mem(&x);
	assert_ok(scone_vfile_open(x.v, "/enc/t", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	do_write(f, &m, 0, 600000, 1);
	/* Down into the middle of a chunk, up again: the tail reads zeros. */
	do_truncate(f, &m, 10000);
	do_truncate(f, &m, 20000);
	do_write(f, &m, 150000, 1, 2);
	assert_ok(scone_volume_sync(x.v));
	do_truncate(f, &m, 5000);
	do_truncate(f, &m, 9000);
	do_truncate(f, &m, 300000);
	assert_ok(scone_volume_sync(x.v));
	/* Across node boundaries, in the same epoch as writes. */
	do_write(f, &m, 250000, 400000, 3);
	do_truncate(f, &m, 64 * 4096 + 5);
	do_truncate(f, &m, 64 * 4096 * 3 + 7);
	do_write(f, &m, 64 * 4096 * 2 - 3, 10, 4);
	assert_ok(scone_volume_sync(x.v));
	scone_vfile_close(f);
	fx_reopen(&x);
	expect(x.v, "/enc/t", m.d, m.size);

	/* To 0 and regrow in the same epoch. */
	assert_ok(scone_vfile_open(x.v, "/enc/t", SCONE_VF_RDWR, 0, &f));
	do_truncate(f, &m, 0);
	do_write(f, &m, 0, 100000, 5);
	do_truncate(f, &m, 0);
	do_write(f, &m, 7, 300000, 6);
	scone_vfile_close(f);
	fx_reopen(&x);
	expect(x.v, "/enc/t", m.d, m.size);

	/* To 0, commit, regrow, commit. */
	assert_ok(scone_volume_truncate(x.v, "/enc/t", 0));
	model_truncate(&m, 0);
	assert_ok(scone_volume_sync(x.v));
	expect(x.v, "/enc/t", m.d, m.size);
	assert_ok(scone_vfile_open(x.v, "/enc/t", SCONE_VF_RDWR, 0, &f));
	do_write(f, &m, 4096, 70000, 7);
	assert_ok(scone_vfile_sync(f));
	scone_vfile_close(f);
	fx_reopen(&x);
	expect(x.v, "/enc/t", m.d, m.size);

	/* O_TRUNC on open. */
	assert_ok(scone_vfile_open(x.v, "/enc/t", SCONE_VF_RDWR | SCONE_VF_TRUNC, 0, &f));
	model_truncate(&m, 0);
	check_model(f, &m);
	scone_vfile_close(f);
	fx_reopen(&x);
	expect(x.v, "/enc/t", NULL, 0);
	free(m.d);
	fx_done(&x);
}

TEST(test_append)
{
	struct scone_vfile *a, *b;
	struct model m = {0};
	uint64_t off;
	struct fx x;

	fx_mem(&x);
	assert_ok(
	    scone_vfile_open(x.v, "/auth/log", SCONE_VF_WRONLY | SCONE_VF_CREAT | SCONE_VF_APPEND, 0600, &a));
	assert_ok(scone_vfile_open(x.v, "/auth/log", SCONE_VF_RDWR | SCONE_VF_APPEND, 0600, &b));
	for (unsigned i = 0; i < 200; i++) {
		size_t n = 1 + i * 37 % 5000;
		uint8_t *d = pattern(n, i);
		assert_ok(scone_vfile_append(i % 2 ? a : b, d, n, &off));
		assert_int_equal(off, m.size);
		model_write(&m, d, n, m.size);
		free(d);
		if (i == 100)
			assert_ok(scone_volume_sync(x.v));
	}
	check_model(b, &m);
	scone_vfile_close(a);
	scone_vfile_close(b);
	fx_reopen(&x);
	expect(x.v, "/auth/log", m.d, m.size);
	assert_ok(scone_vfile_open(x.v, "/auth/log", SCONE_VF_WRONLY | SCONE_VF_APPEND, 0, &a));
	assert_ok(scone_vfile_append(a, "end", 3, &off));
	assert_int_equal(off, m.size);
	model_write(&m, (const uint8_t *)"end", 3, m.size);
	scone_vfile_close(a);
	fx_reopen(&x);
	expect(x.v, "/auth/log", m.d, m.size);
	free(m.d);
	fx_done(&x);
}

struct names {
	char buf[512];
	unsigned count;
};

static int collect_name(void *arg, const char *name, const struct scone_vstat *st)
{
	struct names *n = arg;
	size_t len = strlen(n->buf);

	snprintf(n->buf + len, sizeof(n->buf) - len, "%s%s%s", len ? " " : "", name, st->is_dir ? "/" : "");
	n->count++;
	return 0;
}

static const char *list(struct scone_volume *v, const char *dir, struct names *n)
{
	memset(n, 0, sizeof(*n));
	assert_ok(scone_volume_readdir(v, dir, collect_name, n));
	return n->buf;
}

/*
 * Siblings named as a directory plus a byte that sorts below '/' ("d.txt",
 * "d-1") lie between "d" and "d/x" in the sorted index: the directory still
 * lists its children, is not empty to rmdir, and a rename onto it is refused.
 */
TEST(test_namespace_sibling_prefix)
{
	uint8_t *d1 = pattern(100, 21);
	struct names n;
	struct fx x;

	fx_mem(&x);
	assert_ok(scone_volume_mkdir(x.v, "/enc/d", 0700));
	assert_ok(scone_volume_mkdir(x.v, "/enc/e", 0700));
	put(x.v, "/enc/d/x", d1, 100);
	put(x.v, "/enc/d.txt", d1, 100);
	put(x.v, "/enc/d-1", d1, 100);
	assert_ok(scone_volume_mkdir(x.v, "/enc/d.old", 0700));
	assert_string_equal(list(x.v, "/enc/d", &n), "x");
	assert_string_equal(list(x.v, "/enc", &n), "d/ d-1 d.old/ d.txt e/");
	assert_string_equal(list(x.v, "/enc/d.old", &n), "");
	assert_err(scone_volume_rmdir(x.v, "/enc/d"), SCONE_ERR_NOT_EMPTY);
	assert_err(scone_volume_rename(x.v, "/enc/e", "/enc/d"), SCONE_ERR_NOT_EMPTY);
	assert_ok(scone_volume_rmdir(x.v, "/enc/d.old"));
	expect(x.v, "/enc/d/x", d1, 100);
	free(d1);
	fx_done(&x);
}

TEST(test_namespace)
{
	struct scone_vstat st;
	struct names n;
	uint8_t *d1 = pattern(5000, 11), *d2 = pattern(7000, 12);
	struct fx x;

	fx_mem(&x);
	assert_string_equal(list(x.v, "/", &n), "auth/ enc/ eph/ plain/");
	assert_ok(scone_volume_mkdir(x.v, "/enc/d", 0700));
	assert_ok(scone_volume_mkdir(x.v, "/enc/d/sub", 0750));
	assert_err(scone_volume_mkdir(x.v, "/enc/d", 0700), SCONE_ERR_EXISTS);
	assert_err(scone_volume_mkdir(x.v, "/enc", 0700), SCONE_ERR_EXISTS);
	assert_err(scone_volume_mkdir(x.v, "/enc/nope/x", 0700), SCONE_ERR_NOT_FOUND);
	put(x.v, "/enc/d/f1", d1, 5000);
	put(x.v, "/enc/d/sub/f2", d2, 7000);
	put(x.v, "/enc/top", d2, 100);
	assert_err(scone_volume_mkdir(x.v, "/enc/top/x", 0700), SCONE_ERR_NOT_DIR);
	assert_string_equal(list(x.v, "/enc", &n), "d/ top");
	assert_string_equal(list(x.v, "/enc/d", &n), "f1 sub/");
	assert_err(scone_volume_readdir(x.v, "/enc/top", collect_name, &n), SCONE_ERR_NOT_DIR);
	assert_err(scone_volume_readdir(x.v, "/enc/none", collect_name, &n), SCONE_ERR_NOT_FOUND);
	assert_ok(scone_volume_stat(x.v, "/enc/d/sub", &st));
	assert_true(st.is_dir);
	assert_int_equal(st.mode, 0750);
	assert_ok(scone_volume_stat(x.v, "/enc/d/f1", &st));
	assert_false(st.is_dir);
	assert_int_equal(st.size, 5000);
	assert_int_equal(st.mode, 0600);
	assert_ok(scone_volume_stat(x.v, "/enc", &st));
	assert_true(st.is_dir);

	/* rmdir rules */
	assert_err(scone_volume_rmdir(x.v, "/enc/d"), SCONE_ERR_NOT_EMPTY);
	assert_err(scone_volume_rmdir(x.v, "/enc/d/f1"), SCONE_ERR_NOT_DIR);
	assert_err(scone_volume_rmdir(x.v, "/enc/none"), SCONE_ERR_NOT_FOUND);
	assert_err(scone_volume_unlink(x.v, "/enc/d"), SCONE_ERR_IS_DIR);
	assert_err(scone_volume_unlink(x.v, "/enc/none"), SCONE_ERR_NOT_FOUND);

	/* rename a file, then over an existing file */
	assert_ok(scone_volume_rename(x.v, "/enc/d/f1", "/enc/f1"));
	expect(x.v, "/enc/f1", d1, 5000);
	assert_err(scone_volume_stat(x.v, "/enc/d/f1", &st), SCONE_ERR_NOT_FOUND);
	assert_ok(scone_volume_rename(x.v, "/enc/f1", "/enc/top"));
	expect(x.v, "/enc/top", d1, 5000);
	assert_err(scone_volume_stat(x.v, "/enc/f1", &st), SCONE_ERR_NOT_FOUND);
	assert_ok(scone_volume_rename(x.v, "/enc/top", "/enc/top")); /* to itself: nothing */
	expect(x.v, "/enc/top", d1, 5000);
	assert_err(scone_volume_rename(x.v, "/enc/none", "/enc/x"), SCONE_ERR_NOT_FOUND);
	assert_err(scone_volume_rename(x.v, "/enc/top", "/enc/none/x"), SCONE_ERR_NOT_FOUND);

	/* rename a directory: children move along; overwrite rules */
	assert_ok(scone_volume_rename(x.v, "/enc/d", "/enc/e"));
	expect(x.v, "/enc/e/sub/f2", d2, 7000);
	assert_err(scone_volume_stat(x.v, "/enc/d/sub/f2", &st), SCONE_ERR_NOT_FOUND);
	assert_string_equal(list(x.v, "/enc", &n), "e/ top");
	assert_err(scone_volume_rename(x.v, "/enc/top", "/enc/e"), SCONE_ERR_IS_DIR);
	assert_err(scone_volume_rename(x.v, "/enc/e", "/enc/top"), SCONE_ERR_NOT_DIR);
	assert_ok(scone_volume_mkdir(x.v, "/enc/empty", 0700));
	assert_ok(scone_volume_mkdir(x.v, "/enc/full", 0700));
	put(x.v, "/enc/full/x", d1, 10);
	assert_err(scone_volume_rename(x.v, "/enc/e", "/enc/full"), SCONE_ERR_NOT_EMPTY);
	assert_err(scone_volume_rename(x.v, "/enc/e", "/enc/e/sub/inside"), SCONE_ERR_INVALID);
	assert_ok(scone_volume_rename(x.v, "/enc/e", "/enc/empty"));
	expect(x.v, "/enc/empty/sub/f2", d2, 7000);
	assert_string_equal(list(x.v, "/enc", &n), "empty/ full/ top");

	/* across regions */
	assert_err(scone_volume_rename(x.v, "/enc/top", "/auth/top"), SCONE_ERR_CROSS_REGION);
	assert_err(scone_volume_rename(x.v, "/enc/top", "/eph/top"), SCONE_ERR_CROSS_REGION);
	assert_err(scone_volume_rename(x.v, "/enc/empty", "/auth/empty"), SCONE_ERR_CROSS_REGION);
	expect(x.v, "/enc/top", d1, 5000);

	/* all of it persists */
	fx_reopen(&x);
	assert_string_equal(list(x.v, "/enc", &n), "empty/ full/ top");
	assert_string_equal(list(x.v, "/enc/empty", &n), "sub/");
	expect(x.v, "/enc/empty/sub/f2", d2, 7000);
	expect(x.v, "/enc/full/x", d1, 10);
	expect(x.v, "/enc/top", d1, 5000);
	assert_ok(scone_volume_stat(x.v, "/enc/empty/sub", &st));
	assert_int_equal(st.mode, 0750);
	assert_ok(scone_volume_unlink(x.v, "/enc/empty/sub/f2"));
	assert_ok(scone_volume_rmdir(x.v, "/enc/empty/sub"));
	assert_ok(scone_volume_rmdir(x.v, "/enc/empty"));
	fx_reopen(&x);
	assert_string_equal(list(x.v, "/enc", &n), "full/ top");
	assert_ok(scone_volume_check_host(x.v, NULL, NULL));
	free(d1);
	free(d2);
	fx_done(&x);
}

TEST(test_unlink_while_open)
{
	uint8_t *d = pattern(300000, 21), buf[100];
	struct scone_vfile *f, *g;
	struct scone_vstat st;
	size_t got;
	struct fx x;

	fx_mem(&x);
	put(x.v, "/enc/u", d, 300000);
	put(x.v, "/enc/v", d, 1000);
	assert_ok(scone_volume_sync(x.v));
	assert_ok(scone_vfile_open(x.v, "/enc/u", SCONE_VF_RDWR, 0, &f));
	assert_ok(scone_vfile_open(x.v, "/enc/v", SCONE_VF_RDONLY, 0, &g));
	assert_ok(scone_volume_unlink(x.v, "/enc/u"));
	assert_ok(scone_volume_rename(x.v, "/enc/v", "/enc/w"));
	assert_err(scone_volume_stat(x.v, "/enc/u", &st), SCONE_ERR_NOT_FOUND);
	assert_ok(scone_vfile_pread(f, buf, sizeof(buf), 200000, &got));
	assert_int_equal(got, sizeof(buf));
	assert_memory_equal(buf, d + 200000, sizeof(buf));
	assert_ok(scone_volume_sync(x.v)); /* the host file goes, the handle still reads */
	assert_ok(scone_vfile_pread(f, buf, sizeof(buf), 299950, &got));
	assert_int_equal(got, 50);
	assert_memory_equal(buf, d + 299950, 50);
	assert_ok(scone_vfile_pwrite(f, "x", 1, 5));
	{ /* by its id: the namespace has it no more, a handle still has it (an exec'd program's reopen) */
		struct scone_vfile *h;
		uint8_t id[16];
		assert_ok(scone_vfile_stat(f, &st));
		memcpy(id, st.file_id, sizeof(id));
		assert_ok(scone_vfile_open_id(x.v, id, &h));
		assert_ok(scone_vfile_pread(h, buf, 10, 0, &got));
		assert_int_equal(got, 10);
		assert_int_equal(buf[5], 'x');
		scone_vfile_close(h);
		id[0] ^= 1;
		assert_err(scone_vfile_open_id(x.v, id, &h), SCONE_ERR_NOT_FOUND);
	}
	assert_ok(scone_vfile_pread(g, buf, 10, 0, &got)); /* renamed while open */
	assert_memory_equal(buf, d, 10);
	assert_ok(scone_vfile_stat(g, &st));
	assert_int_equal(st.size, 1000);
	/* a new file under the unlinked name is a different file */
	put(x.v, "/enc/u", d, 10);
	expect(x.v, "/enc/u", d, 10);
	assert_ok(scone_vfile_pread(f, buf, 10, 0, &got));
	assert_int_equal(buf[5], 'x');
	scone_vfile_close(f);
	scone_vfile_close(g);
	fx_reopen(&x);
	expect(x.v, "/enc/u", d, 10);
	expect(x.v, "/enc/w", d, 1000);
	assert_ok(scone_volume_check_host(x.v, NULL, NULL));
	free(d);
	fx_done(&x);
}

TEST(test_ephemeral)
{
	uint8_t *d = pattern(100000, 31);
	struct scone_vstat st;
	struct names n;
	uint8_t tag_before[SCONE_VOLUME_TAG_SIZE], tag_after[SCONE_VOLUME_TAG_SIZE];
	struct fx x;

	fx_mem(&x);
	scone_volume_tag(x.v, tag_before);
	assert_ok(scone_volume_mkdir(x.v, "/eph/dir", 0700));
	put(x.v, "/eph/dir/a", d, 100000);
	put(x.v, "/eph/b", d, 10);
	expect(x.v, "/eph/dir/a", d, 100000);
	assert_string_equal(list(x.v, "/eph", &n), "b dir/");
	/* ephemeral changes alone do not advance the tag */
	assert_ok(scone_volume_sync(x.v));
	scone_volume_tag(x.v, tag_after);
	assert_memory_equal(tag_before, tag_after, sizeof(tag_after));
	assert_ok(scone_volume_unlink(x.v, "/eph/b"));
	fx_reopen(&x);
	assert_string_equal(list(x.v, "/eph", &n), "");
	assert_err(scone_volume_stat(x.v, "/eph/dir/a", &st), SCONE_ERR_NOT_FOUND);
	assert_err(scone_volume_stat(x.v, "/eph/dir", &st), SCONE_ERR_NOT_FOUND);
	put(x.v, "/eph/dir2", d, 5);
	expect(x.v, "/eph/dir2", d, 5);
	free(d);
	fx_done(&x);
}

static uint8_t *slurp(const char *path, size_t *size)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *p;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	p = malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*size = (size_t)n;
	return p;
}

TEST(test_plaintext_on_disk)
{
	static const char marker[] = "PLAINTEXT-MARKER-0123456789-scone";
	uint8_t data[20000];
	char ap[200], ep[200];
	uint8_t *bytes;
	size_t size;
	struct fx x;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)marker[i % (sizeof(marker) - 1)];
	fx_host(&x);
	put(x.v, "/auth/secret-name-auth", data, sizeof(data));
	put(x.v, "/enc/secret-name-enc", data, sizeof(data));
	host_path(&x, "auth", "/auth/secret-name-auth", ap, sizeof(ap));
	host_path(&x, "enc", "/enc/secret-name-enc", ep, sizeof(ep));
	fx_close(&x);
	bytes = slurp(ap, &size);
	assert_non_null(memmem(bytes, size, marker, sizeof(marker) - 1));
	free(bytes);
	bytes = slurp(ep, &size);
	assert_null(memmem(bytes, size, "PLAINTEXT-MARKER", 16));
	free(bytes);
	bytes = slurp(x.fspf, &size); /* sealed fspf: names are not visible either */
	assert_null(memmem(bytes, size, "secret-name", 11));
	free(bytes);
	assert_ok(fx_open(&x, SCONE_VOL_RDONLY));
	expect(x.v, "/auth/secret-name-auth", data, sizeof(data));
	expect(x.v, "/enc/secret-name-enc", data, sizeof(data));
	fx_done(&x);
}

/*
 * A new file's host file is created without a mkdir per path component: the
 * region's directory, removed behind the volume's back, is made again by
 * the create that misses it.
 */
TEST(test_region_dir_made_again)
{
	static const uint8_t data[] = "in a directory made again";
	char dir[200];
	struct fx x;

	fx_host(&x);
	snprintf(dir, sizeof(dir), "%s/enc", x.dir);
	assert_int_equal(rmdir(dir), 0); /* made by the region's creation, empty */
	put(x.v, "/enc/second", data, sizeof(data));
	assert_ok(scone_volume_sync(x.v));
	expect(x.v, "/enc/second", data, sizeof(data));
	fx_reopen(&x);
	expect(x.v, "/enc/second", data, sizeof(data));
	fx_done(&x);
}

/*
 * The host backend's system calls, each interrupted by a signal every other
 * time (EINTR before doing anything; close and closedir close first, as
 * Linux does): the volume library retries, and nothing of it shows.
 */
static unsigned long eintr_calls, eintr_served;

static bool eintr_now(void)
{
	if (eintr_calls++ % 2)
		return false;
	eintr_served++;
	errno = EINTR;
	return true;
}

static int ei_open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = (flags & O_CREAT) ? (mode_t)va_arg(ap, int) : 0;
	va_end(ap);
	return eintr_now() ? -1 : open(path, flags, mode);
}

static int ei_close(int fd)
{
	int r = close(fd);

	return r == 0 && eintr_now() ? -1 : r;
}

static ssize_t ei_pread(int fd, void *buf, size_t n, off_t off)
{
	return eintr_now() ? -1 : pread(fd, buf, n, off);
}

static ssize_t ei_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	return eintr_now() ? -1 : pwrite(fd, buf, n, off);
}

static int ei_ftruncate(int fd, off_t len)
{
	return eintr_now() ? -1 : ftruncate(fd, len);
}

static int ei_fstat(int fd, struct stat *st)
{
	return eintr_now() ? -1 : fstat(fd, st);
}

static int ei_fsync(int fd)
{
	return eintr_now() ? -1 : fsync(fd);
}

static int ei_fdatasync(int fd)
{
	return eintr_now() ? -1 : fdatasync(fd);
}

static int ei_unlink(const char *path)
{
	return eintr_now() ? -1 : unlink(path);
}

static int ei_rename(const char *from, const char *to)
{
	return eintr_now() ? -1 : rename(from, to);
}

static int ei_mkdir(const char *path, mode_t mode)
{
	return eintr_now() ? -1 : mkdir(path, mode);
}

static DIR *ei_opendir(const char *path)
{
	return eintr_now() ? NULL : opendir(path);
}

static struct dirent *ei_readdir(DIR *d)
{
	return eintr_now() ? NULL : readdir(d);
}

static int ei_closedir(DIR *d)
{
	int r = closedir(d);

	return r == 0 && eintr_now() ? -1 : r;
}

TEST(test_host_eintr)
{
	static const struct scone_vio_sys sys = {
	    .open = ei_open,
	    .close = ei_close,
	    .pread = ei_pread,
	    .pwrite = ei_pwrite,
	    .ftruncate = ei_ftruncate,
	    .fstat = ei_fstat,
	    .fsync = ei_fsync,
	    .fdatasync = ei_fdatasync,
	    .unlink = ei_unlink,
	    .rename = ei_rename,
	    .mkdir = ei_mkdir,
	    .opendir = ei_opendir,
	    .readdir = ei_readdir,
	    .closedir = ei_closedir,
	};
	uint8_t data[300000], small[5000], e[100];
	struct fx x;

	fill(data, sizeof(data), 41);
	fill(e, sizeof(e), 43);
	fill(small, sizeof(small), 42);
	scone_vio_host_sys(&sys);
	fx_host(&x);
	put(x.v, "/enc/a", data, sizeof(data));
	assert_ok(scone_volume_mkdir(x.v, "/enc/d", 0700));
	put(x.v, "/enc/d/b", small, sizeof(small));
	put(x.v, "/enc/c", small, sizeof(small));
	fx_reopen(&x);
	expect(x.v, "/enc/a", data, sizeof(data));
	assert_ok(scone_volume_rename(x.v, "/enc/c", "/enc/d/c"));
	assert_ok(scone_volume_unlink(x.v, "/enc/d/b"));
	assert_ok(scone_volume_truncate(x.v, "/enc/a", 1000));
	for (int i = 0; i < 40; i++) { /* enough commits to compact the fspf log (a rename) */
		e[0] = (uint8_t)i;
		put(x.v, "/enc/e", e, sizeof(e));
		assert_ok(scone_volume_sync(x.v));
	}
	fx_reopen(&x);
	expect(x.v, "/enc/a", data, 1000);
	expect(x.v, "/enc/d/c", small, sizeof(small));
	expect(x.v, "/enc/e", e, sizeof(e));
	assert_int_equal(scone_volume_stat(x.v, "/enc/d/b", &(struct scone_vstat){0}), SCONE_ERR_NOT_FOUND);
	scone_err_clear();
	assert_ok(scone_volume_check_host(x.v, NULL, NULL));
	fx_done(&x);
	scone_vio_host_sys(NULL);
	assert_true(eintr_served > 100);
}

/* The log's tags, read without the key: one per commit, the last the volume's tag. */
TEST(test_log_tags)
{
	uint8_t tags[8][SCONE_VOLUME_TAG_SIZE], now[SCONE_VOLUME_TAG_SIZE], first[SCONE_VOLUME_TAG_SIZE];
	size_t n0, n;
	struct fx x;

	fx_host(&x);
	scone_volume_tag(x.v, first);
	assert_ok(scone_volume_log_tags(x.fspf, tags, 8, &n0));
	assert_true(n0 >= 1);
	assert_memory_equal(tags[n0 - 1], first, sizeof(first));
	put(x.v, "/enc/a", (const uint8_t *)"one", 3);
	assert_ok(scone_volume_sync(x.v));
	put(x.v, "/enc/b", (const uint8_t *)"two", 3);
	assert_ok(scone_volume_sync(x.v));
	scone_volume_tag(x.v, now);
	assert_ok(scone_volume_log_tags(x.fspf, tags, 8, &n));
	assert_int_equal(n, n0 + 2);
	assert_memory_equal(tags[n - 1], now, sizeof(now));
	assert_memory_equal(tags[n0 - 1], first, sizeof(first));
	assert_ok(scone_volume_log_tags(x.fspf, tags, 1, &n)); /* at most max */
	assert_int_equal(n, 1);
	assert_int_equal(scone_volume_log_tags("/nonexistent/volume.fspf", tags, 8, &n), SCONE_ERR_NOT_FOUND);
	scone_err_clear();
	fx_done(&x);
}

/* ==================== 2. freshness ==================== */

/* sync_with's hook: sees the data written but the state not yet recorded. */
struct sync_hook {
	struct scone_volume *v;
	uint8_t tag_before[SCONE_VOLUME_TAG_SIZE];
	int calls;
	enum scone_err answer;
};

static enum scone_err sync_hook(void *arg)
{
	struct sync_hook *h = arg;
	uint8_t now[SCONE_VOLUME_TAG_SIZE];

	h->calls++;
	scone_volume_tag(h->v, now);
	assert_memory_equal(now, h->tag_before, sizeof(now)); /* not recorded yet */
	return h->answer;
}

TEST(test_sync_with)
{
	uint8_t t0[SCONE_VOLUME_TAG_SIZE], t1[SCONE_VOLUME_TAG_SIZE];
	uint8_t *d1 = pattern(20000, 61), *d2 = pattern(30000, 62);
	struct sync_hook h = {0};
	struct scone_volume *v;
	struct fx x;

	fx_mem(&x);
	put(x.v, "/enc/f", d1, 20000);
	assert_ok(scone_volume_sync(x.v));
	scone_volume_tag(x.v, t0);
	/* nothing changed: the hook is not called */
	h.v = x.v;
	memcpy(h.tag_before, t0, sizeof(t0));
	assert_ok(scone_volume_sync_with(x.v, sync_hook, &h));
	assert_int_equal(h.calls, 0);
	/* the hook refuses: nothing is recorded, the volume still reads as before on disk */
	put(x.v, "/enc/f", d2, 30000);
	h.answer = SCONE_ERR_NETWORK;
	assert_err(scone_volume_sync_with(x.v, sync_hook, &h), SCONE_ERR_NETWORK);
	assert_int_equal(h.calls, 1);
	scone_volume_tag(x.v, t1);
	assert_memory_equal(t1, t0, sizeof(t1));
	assert_ok(scone_volume_open_at(x.io, x.fspf, x.key, t0, SCONE_VOL_RDONLY, &v));
	expect(v, "/enc/f", d1, 20000);
	assert_ok(scone_volume_close(v, NULL));
	/* the next sync records it */
	h.answer = SCONE_ERR_OK;
	assert_ok(scone_volume_sync_with(x.v, sync_hook, &h));
	assert_int_equal(h.calls, 2);
	scone_volume_tag(x.v, t1);
	assert_memory_not_equal(t1, t0, sizeof(t1));
	fx_close(&x);
	assert_ok(scone_volume_open_at(x.io, x.fspf, x.key, x.tag, SCONE_VOL_RDONLY, &v));
	expect(v, "/enc/f", d2, 30000);
	assert_ok(scone_volume_close(v, NULL));
	free(d1);
	free(d2);
	fx_done(&x);
}

TEST(test_freshness)
{
	uint8_t t1[SCONE_VOLUME_TAG_SIZE], t2[SCONE_VOLUME_TAG_SIZE], t3[SCONE_VOLUME_TAG_SIZE];
	uint8_t cur[SCONE_VOLUME_TAG_SIZE], bad_key[SCONE_VOLUME_KEY_SIZE];
	uint8_t *d1 = pattern(50000, 41), *d2 = pattern(60000, 42);
	struct scone_volume *v;
	struct scone_vio *old;
	struct fx x;

	fx_mem(&x);
	put(x.v, "/enc/f", d1, 50000);
	assert_ok(scone_volume_sync(x.v));
	scone_volume_tag(x.v, t1);
	assert_ok(scone_vio_mem_clone(x.io, &old));
	put(x.v, "/enc/f", d2, 60000);
	put(x.v, "/auth/g", d2, 10);
	assert_ok(scone_volume_sync(x.v));
	scone_volume_tag(x.v, t2);
	assert_memory_not_equal(t1, t2, sizeof(t1));
	fx_close(&x);
	assert_memory_equal(x.tag, t2, sizeof(t2));

	/* the old copy, expected state T2: rollback */
	assert_err(scone_volume_open_at(old, x.fspf, x.key, t2, SCONE_VOL_RDONLY, &v), SCONE_ERR_ROLLBACK);
	assert_detail(x.fspf, "rollback");
	/* the old copy opened at its own tag is fine */
	assert_ok(scone_volume_open_at(old, x.fspf, x.key, t1, SCONE_VOL_RDONLY, &v));
	expect(v, "/enc/f", d1, 50000);
	assert_ok(scone_volume_close(v, NULL));

	/* disk one commit ahead of T1: accepted, and the current tag is T2 */
	assert_ok(scone_volume_open_at(x.io, x.fspf, x.key, t1, SCONE_VOL_RDWR, &v));
	scone_volume_tag(v, cur);
	assert_memory_equal(cur, t2, sizeof(cur));
	expect(v, "/enc/f", d2, 60000);
	put(v, "/enc/h", d1, 3);
	assert_ok(scone_volume_close(v, t3));
	/* two commits ahead: rollback (or unknown state) */
	assert_err(scone_volume_open_at(x.io, x.fspf, x.key, t1, SCONE_VOL_RDONLY, &v), SCONE_ERR_ROLLBACK);
	assert_ok(scone_volume_open_at(x.io, x.fspf, x.key, t2, SCONE_VOL_RDONLY, &v));
	assert_ok(scone_volume_close(v, NULL));
	assert_ok(scone_volume_open_at(x.io, x.fspf, x.key, t3, SCONE_VOL_RDONLY, &v));
	assert_ok(scone_volume_close(v, NULL));
	/* no tag: any sealed state (freshness given up) */
	assert_ok(scone_volume_open_at(old, x.fspf, x.key, NULL, SCONE_VOL_RDONLY, &v));
	assert_ok(scone_volume_close(v, NULL));
	/* a made-up tag */
	memset(cur, 0x5a, sizeof(cur));
	assert_err(scone_volume_open_at(x.io, x.fspf, x.key, cur, SCONE_VOL_RDONLY, &v), SCONE_ERR_ROLLBACK);

	/* wrong key, missing key, unsealed open of a sealed volume */
	memcpy(bad_key, x.key, sizeof(bad_key));
	bad_key[7] ^= 0x10;
	assert_err(scone_volume_open_at(x.io, x.fspf, bad_key, t3, SCONE_VOL_RDONLY, &v), SCONE_ERR_AUTH);
	assert_err(scone_volume_open_at(x.io, x.fspf, NULL, NULL, SCONE_VOL_RDONLY, &v), SCONE_ERR_INVALID);
	assert_err(scone_volume_open_at(x.io, "/vol/none", x.key, NULL, SCONE_VOL_RDONLY, &v),
		   SCONE_ERR_NOT_FOUND);
	old->ops->destroy(old);
	x.v = NULL;
	free(d1);
	free(d2);
	fx_done(&x);
}

TEST(test_unsealed)
{
	struct scone_vio *io;
	struct scone_volume *v;
	uint8_t key[SCONE_VOLUME_KEY_SIZE], tag[SCONE_VOLUME_TAG_SIZE], given[SCONE_VOLUME_KEY_SIZE];

	assert_ok(scone_vio_mem_new(&io));
	assert_ok(scone_volume_create_at(io, "/f"));
	assert_err(scone_volume_create_at(io, "/f"), SCONE_ERR_EXISTS);
	assert_err(scone_volume_open_at(io, "/f", NULL, NULL, SCONE_VOL_RDWR, &v), SCONE_ERR_UNSEALED);
	assert_ok(scone_volume_open_at(io, "/f", NULL, NULL, SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED, &v));
	assert_ok(scone_volume_add_region(v, "/", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, "/data"));
	put(v, "/a", (const uint8_t *)"abc", 3);
	assert_ok(scone_volume_close(v, NULL));
	assert_ok(scone_volume_open_at(io, "/f", NULL, NULL, SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED, &v));
	expect(v, "/a", (const uint8_t *)"abc", 3);
	memset(given, 0x33, sizeof(given));
	assert_ok(scone_volume_seal(v, given, key, tag));
	assert_memory_equal(key, given, sizeof(key));
	assert_ok(scone_volume_close(v, NULL));
	assert_ok(scone_volume_open_at(io, "/f", key, tag, SCONE_VOL_RDONLY, &v));
	expect(v, "/a", (const uint8_t *)"abc", 3);
	assert_ok(scone_volume_check_host(v, NULL, NULL));
	assert_ok(scone_volume_close(v, NULL));
	io->ops->destroy(io);
}

/* ==================== 3. integrity ==================== */

struct problems {
	unsigned count;
	enum scone_err first;
	char text[2048];
};

static void on_problem(void *arg, enum scone_err err, const char *message)
{
	struct problems *p = arg;
	size_t len = strlen(p->text);

	if (!p->count++)
		p->first = err;
	snprintf(p->text + len, sizeof(p->text) - len, "%s: %s\n", scone_errname(err), message);
}

/* Three committed files of 10 chunks each; the volume is closed. */
struct ifx {
	struct fx x;
	char a[200], b[200], c[200];
	uint8_t *da, *db, *dc;
};

#define ISIZE (10 * 4096)

static void ifx_setup(struct ifx *t)
{
	fx_mem(&t->x);
	t->da = pattern(ISIZE, 51);
	t->db = pattern(ISIZE, 52);
	t->dc = pattern(ISIZE, 53);
	put(t->x.v, "/enc/a", t->da, ISIZE);
	put(t->x.v, "/enc/b", t->db, ISIZE);
	put(t->x.v, "/auth/c", t->dc, ISIZE);
	host_path(&t->x, "enc", "/enc/a", t->a, sizeof(t->a));
	host_path(&t->x, "enc", "/enc/b", t->b, sizeof(t->b));
	host_path(&t->x, "auth", "/auth/c", t->c, sizeof(t->c));
	fx_close(&t->x);
}

static void ifx_done(struct ifx *t)
{
	free(t->da);
	free(t->db);
	free(t->dc);
	fx_done(&t->x);
}

static struct scone_vio_file *hopen(struct scone_vio *io, const char *path)
{
	struct scone_vio_file *f;
	assert_ok(io->ops->open(io, path, SCONE_VIO_WRITE, &f));
	return f;
}

static void hflip(struct scone_vio *io, const char *path, uint64_t off, unsigned bit)
{
	struct scone_vio_file *f = hopen(io, path);
	uint8_t b;
	size_t got;

	assert_ok(io->ops->pread(f, &b, 1, off, &got));
	assert_int_equal(got, 1);
	b ^= (uint8_t)(1u << bit);
	assert_ok(io->ops->pwrite(f, &b, 1, off));
	io->ops->close(f);
}

static void hcopy_block(struct scone_vio *io, const char *from, uint64_t from_blk, const char *to,
			uint64_t to_blk)
{
	struct scone_vio_file *f = hopen(io, from), *g = hopen(io, to);
	uint8_t b[VOL_BLOCK];
	size_t got;

	assert_ok(io->ops->pread(f, b, sizeof(b), from_blk * BLK, &got));
	assert_int_equal(got, sizeof(b));
	assert_ok(io->ops->pwrite(g, b, sizeof(b), to_blk * BLK));
	io->ops->close(f);
	io->ops->close(g);
}

static uint64_t hsize(struct scone_vio *io, const char *path)
{
	struct scone_vio_file *f = hopen(io, path);
	uint64_t size;
	assert_ok(io->ops->size(f, &size));
	io->ops->close(f);
	return size;
}

/* Block of data chunk c in slot A of a file's first group. */
static uint64_t chunk_blk(unsigned c)
{
	return 1 + 2 + c;
}

/* Read a whole file expecting err; the buffer must come back all zeros. */
static void read_fails(struct scone_volume *v, const char *path, enum scone_err want)
{
	struct scone_vfile *f;
	uint8_t *buf = malloc(ISIZE);
	size_t got = 123;

	assert_non_null(buf);
	assert_ok(scone_vfile_open(v, path, SCONE_VF_RDONLY, 0, &f));
	memset(buf, 0xa5, ISIZE);
	assert_err(scone_vfile_pread(f, buf, ISIZE, 0, &got), want);
	assert_true(all_zero(buf, ISIZE));
	assert_int_equal(got, 0);
	scone_vfile_close(f);
	free(buf);
}

static void reads_ok(struct scone_volume *v, const char *path, const uint8_t *d, size_t lo, size_t hi)
{
	struct scone_vfile *f;
	uint8_t buf[ISIZE];
	size_t got;

	assert_ok(scone_vfile_open(v, path, SCONE_VF_RDONLY, 0, &f));
	assert_ok(scone_vfile_pread(f, buf, hi - lo, lo, &got));
	assert_int_equal(got, hi - lo);
	assert_memory_equal(buf, d + lo, hi - lo);
	scone_vfile_close(f);
}

TEST(test_tamper_bit_flip)
{
	struct ifx t;

	ifx_setup(&t);
	hflip(t.x.io, t.a, chunk_blk(3) * BLK + 1000, 4);
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	read_fails(t.x.v, "/enc/a", SCONE_ERR_TAMPERED);
	assert_detail("/enc/a", "bytes 12288-16383");
	reads_ok(t.x.v, "/enc/a", t.da, 0, 12288); /* the rest is fine */
	reads_ok(t.x.v, "/enc/a", t.da, 16384, ISIZE);
	expect(t.x.v, "/enc/b", t.db, ISIZE);
	ifx_done(&t);
}

TEST(test_tamper_authenticated_plaintext)
{
	struct ifx t;
	uint8_t b;
	size_t got;
	struct scone_vio_file *f;

	ifx_setup(&t);
	/* The plaintext is on disk as is, and it is still authenticated. */
	f = hopen(t.x.io, t.c);
	assert_ok(t.x.io->ops->pread(f, &b, 1, chunk_blk(9) * BLK + 17, &got));
	assert_int_equal(b, t.dc[9 * 4096 + 17]);
	t.x.io->ops->close(f);
	hflip(t.x.io, t.c, chunk_blk(9) * BLK + 17, 0);
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	read_fails(t.x.v, "/auth/c", SCONE_ERR_TAMPERED);
	assert_detail("/auth/c", "bytes 36864-40959");
	ifx_done(&t);
}

TEST(test_tamper_misplaced)
{
	struct ifx t;

	ifx_setup(&t);
	hcopy_block(t.x.io, t.a, chunk_blk(2), t.a, chunk_blk(5));
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	read_fails(t.x.v, "/enc/a", SCONE_ERR_MISPLACED);
	assert_detail("/enc/a", "bytes 20480-24575", "8192-12287");
	ifx_done(&t);
}

TEST(test_tamper_other_file_chunk)
{
	struct ifx t;

	ifx_setup(&t);
	hcopy_block(t.x.io, t.b, chunk_blk(5), t.a, chunk_blk(5));
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	read_fails(t.x.v, "/enc/a", SCONE_ERR_TAMPERED);
	assert_detail("/enc/a", "bytes 20480-24575");
	ifx_done(&t);
}

/* Opening path fails with want (detail naming path and what), and check_host reports it. */
static void open_fails(struct fx *x, const char *path, enum scone_err want, const char *what)
{
	struct scone_vfile *f;
	struct problems p = {0};

	assert_err(scone_vfile_open(x->v, path, SCONE_VF_RDONLY, 0, &f), want);
	assert_detail(path, what);
	assert_err(scone_volume_check_host(x->v, on_problem, &p), want);
	assert_int_equal(p.first, want);
	if (!strstr(p.text, path))
		fail_msg("problem report lacks %s: %s", path, p.text);
}

TEST(test_tamper_truncated)
{
	struct ifx t;
	struct scone_vio_file *f;

	ifx_setup(&t);
	f = hopen(t.x.io, t.a);
	assert_ok(t.x.io->ops->truncate(f, hsize(t.x.io, t.a) - 4096));
	t.x.io->ops->close(f);
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	open_fails(&t.x, "/enc/a", SCONE_ERR_TRUNCATED, "bytes 0-40959");
	expect(t.x.v, "/enc/b", t.db, ISIZE);
	ifx_done(&t);
}

TEST(test_tamper_extended)
{
	struct ifx t;
	struct scone_vio_file *f;

	ifx_setup(&t);
	f = hopen(t.x.io, t.a);
	assert_ok(t.x.io->ops->pwrite(f, "junk", 4, hsize(t.x.io, t.a)));
	t.x.io->ops->close(f);
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	open_fails(&t.x, "/enc/a", SCONE_ERR_EXTENDED, "4 unexpected bytes");
	ifx_done(&t);
}

TEST(test_tamper_swapped)
{
	struct ifx t;
	char tmp[220];

	ifx_setup(&t);
	snprintf(tmp, sizeof(tmp), "%s.tmp", t.a);
	assert_ok(t.x.io->ops->rename(t.x.io, t.a, tmp));
	assert_ok(t.x.io->ops->rename(t.x.io, t.b, t.a));
	assert_ok(t.x.io->ops->rename(t.x.io, tmp, t.b));
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	open_fails(&t.x, "/enc/a", SCONE_ERR_SWAPPED, "another file");
	ifx_done(&t);
}

TEST(test_tamper_missing)
{
	struct ifx t;

	ifx_setup(&t);
	assert_ok(t.x.io->ops->unlink(t.x.io, t.b));
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	open_fails(&t.x, "/enc/b", SCONE_ERR_MISSING, "missing");
	expect(t.x.v, "/enc/a", t.da, ISIZE);
	ifx_done(&t);
}

TEST(test_tamper_unknown_file)
{
	struct ifx t;
	struct scone_vio_file *f;
	struct problems p = {0};
	char path[200];

	ifx_setup(&t);
	snprintf(path, sizeof(path), "%s/enc/00112233445566778899aabbccddeeff", t.x.dir);
	assert_ok(t.x.io->ops->open(t.x.io, path, SCONE_VIO_WRITE | SCONE_VIO_CREATE, &f));
	assert_ok(t.x.io->ops->pwrite(f, t.da, 4096 * 3, 0));
	t.x.io->ops->close(f);
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	assert_err(scone_volume_check_host(t.x.v, on_problem, &p), SCONE_ERR_UNKNOWN_FILE);
	assert_int_equal(p.count, 1);
	assert_non_null(strstr(p.text, "00112233445566778899aabbccddeeff"));
	/* a copy of a real file under another name is unknown too */
	fx_close(&t.x);
	snprintf(path, sizeof(path), "%s/enc/ffeeddccbbaa99887766554433221100", t.x.dir);
	assert_ok(t.x.io->ops->open(t.x.io, path, SCONE_VIO_WRITE | SCONE_VIO_CREATE, &f));
	t.x.io->ops->close(f);
	hcopy_block(t.x.io, t.a, 0, path, 0);
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	memset(&p, 0, sizeof(p));
	assert_err(scone_volume_check_host(t.x.v, on_problem, &p), SCONE_ERR_UNKNOWN_FILE);
	assert_int_equal(p.count, 2);
	ifx_done(&t);
}

TEST(test_tamper_node)
{
	struct ifx t;

	ifx_setup(&t);
	hflip(t.x.io, t.a, 1 * BLK + 200, 1); /* node 0, slot A */
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	read_fails(t.x.v, "/enc/a", SCONE_ERR_TAMPERED);
	assert_detail("/enc/a", "integrity node 0", "bytes 0");
	ifx_done(&t);
}

/* Offsets of the fspf log's last record (the state) and of its end; the rest is zero padding. */
static void log_scan(struct fx *x, uint64_t *last_out, uint64_t *end_out)
{
	struct scone_vio_file *f;
	uint64_t size, off = 0, last = 0;
	uint8_t *buf;
	size_t got, span;
	uint32_t version;
	bool sealed;

	assert_ok(x->io->ops->open(x->io, x->fspf, 0, &f));
	assert_ok(x->io->ops->size(f, &size));
	buf = malloc((size_t)size);
	assert_non_null(buf);
	assert_ok(x->io->ops->pread(f, buf, (size_t)size, 0, &got));
	x->io->ops->close(f);
	while (off < size &&
	       vol_envelope_span(buf + off, (size_t)(size - off), &span, &version, &sealed) == SCONE_ERR_OK) {
		last = off;
		off += span;
	}
	for (uint64_t i = off; i < size; i++)
		assert_int_equal(buf[i], 0);
	free(buf);
	*last_out = last;
	*end_out = off;
}

/* Offset of the fspf log's last record (the state); 0 when it is the only one. */
static uint64_t log_state_offset(struct fx *x)
{
	uint64_t last, end;

	log_scan(x, &last, &end);
	return last;
}

/* End of the fspf log's last record: the padding after it is zeros. */
static uint64_t log_end_offset(struct fx *x)
{
	uint64_t last, end;

	log_scan(x, &last, &end);
	return end;
}

static void htrunc(struct scone_vio *io, const char *path, uint64_t size)
{
	struct scone_vio_file *f = hopen(io, path);
	assert_ok(io->ops->truncate(f, size));
	io->ops->close(f);
}

/* Commits append records to the fspf; the log stays bounded (compaction). */
TEST(test_fspf_log_append_compact)
{
	struct fx x;
	uint8_t d[100];
	uint64_t first, prev, size, max = 0;
	unsigned shrinks = 0;

	fx_mem(&x);
	memset(d, 7, sizeof(d));
	put(x.v, "/enc/a", d, sizeof(d));
	assert_ok(scone_volume_sync(x.v));
	first = prev = log_end_offset(&x);
	for (unsigned i = 0; i < 3000; i++) {
		d[0] = (uint8_t)i;
		put(x.v, "/enc/a", d, sizeof(d));
		assert_ok(scone_volume_sync(x.v));
		size = log_end_offset(&x);
		shrinks += size < prev;
		if (size > prev) /* a change of content only: a delta record of a few hundred bytes */
			assert_true(size - prev < 512);
		max = size > max ? size : max;
		prev = size;
		/* pre-extended with zeros: appends overwrite them, the file size stays */
		assert_int_equal(hsize(x.io, x.fspf), 256u << 10);
	}
	assert_true(shrinks >= 1);		  /* compacted at least once */
	assert_true(max <= (256u << 10) + first); /* never past the bound */
	assert_true(log_state_offset(&x) > 0);
	fx_reopen(&x);
	expect(x.v, "/enc/a", d, sizeof(d));
	fx_done(&x);
}

/*
 * An append a crash tore (any prefix of the last record on disk) opens to
 * the state before it; the next writer compacts (it never appends next to
 * the torn bytes).
 */
TEST(test_fspf_log_torn_append)
{
	struct fx x;
	uint8_t a[64], b[64], old_tag[SCONE_VOLUME_TAG_SIZE], new_tag[SCONE_VOLUME_TAG_SIZE];
	uint64_t start, size;

	fx_mem(&x);
	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	put(x.v, "/enc/a", a, sizeof(a));
	fx_close(&x);
	memcpy(old_tag, x.tag, sizeof(old_tag));
	assert_ok(fx_open(&x, SCONE_VOL_RDWR));
	put(x.v, "/enc/a", b, sizeof(b));
	fx_close(&x);
	memcpy(new_tag, x.tag, sizeof(new_tag));
	start = log_state_offset(&x);
	size = log_end_offset(&x);
	assert_true(start > 0);
	for (uint64_t cut = start + 1; cut < size; cut += (size - start) / 9 + 1) {
		struct scone_vio *snap;
		assert_ok(scone_vio_mem_clone(x.io, &snap));
		htrunc(snap, x.fspf, cut);
		/* Fresh against the old tag; a rollback against the new one. */
		assert_err(scone_volume_open_at(snap, x.fspf, x.key, new_tag, SCONE_VOL_RDONLY, &x.v),
			   SCONE_ERR_ROLLBACK);
		assert_ok(scone_volume_open_at(snap, x.fspf, x.key, old_tag, SCONE_VOL_RDWR, &x.v));
		expect(x.v, "/enc/a", a, sizeof(a));
		put(x.v, "/enc/a", b, sizeof(b));
		assert_ok(scone_volume_close(x.v, x.tag));
		assert_int_equal(log_state_offset(&(struct fx){.io = snap, .fspf = "/vol/fspf"}), 0);
		assert_ok(scone_volume_open_at(snap, x.fspf, x.key, x.tag, SCONE_VOL_RDONLY, &x.v));
		expect(x.v, "/enc/a", b, sizeof(b));
		assert_ok(scone_volume_close(x.v, NULL));
		x.v = NULL;
		snap->ops->destroy(snap);
	}
	/* A complete last record that does not authenticate is tampering, not a torn append. */
	hflip(x.io, x.fspf, size - 20, 1);
	assert_err(fx_open(&x, SCONE_VOL_RDONLY), SCONE_ERR_AUTH);
	x.v = NULL;
	fx_done(&x);
}

static void hzero(struct scone_vio *io, const char *path, uint64_t from, uint64_t to)
{
	struct scone_vio_file *f = hopen(io, path);
	uint8_t zero[512] = {0};

	for (; from < to; from += to - from < sizeof(zero) ? to - from : sizeof(zero))
		assert_ok(io->ops->pwrite(
		    f, zero, to - from < sizeof(zero) ? (size_t)(to - from) : sizeof(zero), from));
	io->ops->close(f);
}

/* Two commits: a then b in /enc/a; the tags before and after the second. */
static void two_states(struct fx *x, uint8_t old_tag[static SCONE_VOLUME_TAG_SIZE],
		       uint8_t new_tag[static SCONE_VOLUME_TAG_SIZE])
{
	uint8_t a[64], b[64];

	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	fx_mem(x);
	put(x->v, "/enc/a", a, sizeof(a));
	for (unsigned i = 0; i < 16; i++) { /* a record of a few sectors */
		char path[64];
		snprintf(path, sizeof(path), "/enc/a-file-with-a-rather-long-name-%02u", i);
		put(x->v, path, a, 1);
	}
	fx_close(x);
	memcpy(old_tag, x->tag, SCONE_VOLUME_TAG_SIZE);
	assert_ok(fx_open(x, SCONE_VOL_RDWR));
	put(x->v, "/enc/a", b, sizeof(b));
	put(x->v, "/enc/another-file-with-a-rather-long-name", a, 1); /* a new name: a full record */
	fx_close(x);
	memcpy(new_tag, x->tag, SCONE_VOLUME_TAG_SIZE);
}

/*
 * A power loss during an append: the record was written over zero padding
 * and some of its sectors never reached the disk (they read as zeros). The
 * log opens to the state before it; the next writer compacts and commits.
 */
TEST(test_fspf_log_power_loss)
{
	struct fx x;
	uint8_t a[64], b[64], old_tag[SCONE_VOLUME_TAG_SIZE], new_tag[SCONE_VOLUME_TAG_SIZE];
	uint64_t start, end;

	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	two_states(&x, old_tag, new_tag);
	log_scan(&x, &start, &end);
	assert_true(start > 0 && end - start > 3 * 512);
	for (unsigned mode = 0; mode < 2; mode++) {
		for (uint64_t s = start - start % 512; s < end; s += 512) {
			struct scone_vio *snap;
			assert_ok(scone_vio_mem_clone(x.io, &snap));
			/* mode 0: one sector lost; mode 1: every sector but this one lost */
			for (uint64_t z = start - start % 512; z < end; z += 512)
				if ((z == s) == (mode == 0))
					hzero(snap, x.fspf, z > start ? z : start, z + 512);
			assert_err(scone_volume_open_at(snap, x.fspf, x.key, new_tag, SCONE_VOL_RDONLY, &x.v),
				   SCONE_ERR_ROLLBACK);
			assert_ok(scone_volume_open_at(snap, x.fspf, x.key, old_tag, SCONE_VOL_RDWR, &x.v));
			expect(x.v, "/enc/a", a, sizeof(a));
			put(x.v, "/enc/a", b, sizeof(b));
			assert_ok(scone_volume_close(x.v, x.tag));
			/* compacted: nothing is written next to garbage */
			assert_int_equal(log_state_offset(&(struct fx){.io = snap, .fspf = "/vol/fspf"}), 0);
			assert_ok(scone_volume_open_at(snap, x.fspf, x.key, x.tag, SCONE_VOL_RDONLY, &x.v));
			expect(x.v, "/enc/a", b, sizeof(b));
			assert_ok(scone_volume_close(x.v, NULL));
			x.v = NULL;
			snap->ops->destroy(snap);
		}
	}
	/* A record with a lost sector but bytes after it is not a torn append: tampering. */
	hzero(x.io, x.fspf, (start / 512 + 1) * 512, (start / 512 + 2) * 512);
	hflip(x.io, x.fspf, end + 3, 0);
	assert_err(fx_open(&x, SCONE_VOL_RDONLY), SCONE_ERR_AUTH);
	x.v = NULL;
	fx_done(&x);
}

/*
 * A wrong key on a log with a torn last record: still AUTH (one torn
 * record is skipped, never more); so is a bit flipped in the padding that
 * a torn append could not have reached.
 */
TEST(test_fspf_log_padding)
{
	struct fx x;
	uint8_t old_tag[SCONE_VOLUME_TAG_SIZE], new_tag[SCONE_VOLUME_TAG_SIZE], key[SCONE_VOLUME_KEY_SIZE];
	uint64_t start, end, size;

	two_states(&x, old_tag, new_tag);
	log_scan(&x, &start, &end);
	size = hsize(x.io, x.fspf);
	assert_int_equal(size, 256u << 10);
	hzero(x.io, x.fspf, (end - 1) / 512 * 512 > start ? (end - 1) / 512 * 512 : start, end); /* lost */
	memcpy(key, x.key, sizeof(key));
	key[0] ^= 1;
	assert_err(scone_volume_open_at(x.io, x.fspf, key, NULL, SCONE_VOL_RDONLY, &x.v), SCONE_ERR_AUTH);
	assert_ok(scone_volume_open_at(x.io, x.fspf, x.key, old_tag, SCONE_VOL_RDONLY, &x.v));
	assert_ok(scone_volume_close(x.v, NULL));
	hflip(x.io, x.fspf, size - 1, 2); /* now not followed by zeros: not a torn append */
	assert_err(scone_volume_open_at(x.io, x.fspf, x.key, old_tag, SCONE_VOL_RDONLY, &x.v),
		   SCONE_ERR_AUTH);
	x.v = NULL;
	fx_done(&x);
}

/* Where each record of the fspf log starts (at most max); returns how many, *end the last one's end. */
static size_t log_records(struct scone_vio *io, const char *fspf, uint64_t *starts, size_t max, uint64_t *end)
{
	struct scone_vio_file *f = hopen(io, fspf);
	uint64_t size, off = 0;
	uint8_t *buf;
	size_t got, span, n = 0;
	uint32_t version;
	bool sealed;

	assert_ok(io->ops->size(f, &size));
	buf = malloc((size_t)size);
	assert_non_null(buf);
	assert_ok(io->ops->pread(f, buf, (size_t)size, 0, &got));
	io->ops->close(f);
	while (off < size && n < max &&
	       vol_envelope_span(buf + off, (size_t)(size - off), &span, &version, &sealed) == SCONE_ERR_OK) {
		starts[n++] = off;
		off += span;
	}
	scone_err_clear();
	free(buf);
	*end = off;
	return n;
}

/* A copy of x's files with the log's bytes [from, to) cut out (the rest moved up, zeros at the end). */
static struct scone_vio *cut_record(struct fx *x, uint64_t from, uint64_t to)
{
	struct scone_vio *snap;
	struct scone_vio_file *f;
	uint64_t size;
	uint8_t *buf;
	size_t got;

	assert_ok(scone_vio_mem_clone(x->io, &snap));
	f = hopen(snap, x->fspf);
	assert_ok(snap->ops->size(f, &size));
	buf = calloc(1, (size_t)size);
	assert_non_null(buf);
	assert_ok(snap->ops->pread(f, buf, (size_t)size, 0, &got));
	memmove(buf + from, buf + to, (size_t)(size - to));
	memset(buf + size - (to - from), 0, (size_t)(to - from));
	assert_ok(snap->ops->pwrite(f, buf, (size_t)size, 0));
	snap->ops->close(f);
	free(buf);
	return snap;
}

/*
 * Commits that change only contents append delta records of a few hundred
 * bytes; the state is the last full record with every delta after it
 * applied. A changed delta the state rests on is AUTH, one cut out breaks
 * the chain (MALFORMED), a lost last one is the state before it.
 */
TEST(test_fspf_deltas)
{
	struct fx x;
	uint8_t a[5000], b[300], tags[7][SCONE_VOLUME_TAG_SIZE];
	uint64_t starts[16], end, prev;
	struct scone_vstat sa, sb, st;
	struct scone_vio *snap;
	uint64_t *r;
	size_t n;

	fx_mem(&x);
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	put(x.v, "/enc/a", a, sizeof(a));
	put(x.v, "/enc/b", b, sizeof(b));
	assert_ok(scone_volume_sync(x.v)); /* new names: a full record */
	scone_volume_tag(x.v, tags[0]);
	prev = log_end_offset(&x);
	for (unsigned i = 1; i < 7; i++) {
		a[i * 700] = (uint8_t)i;
		put(x.v, "/enc/a", a, sizeof(a));
		if (i == 3)
			assert_ok(scone_volume_truncate(x.v, "/enc/b", 100));
		assert_ok(scone_volume_sync(x.v));
		scone_volume_tag(x.v, tags[i]);
		assert_true(log_end_offset(&x) - prev < 512); /* a delta */
		prev = log_end_offset(&x);
	}
	assert_ok(scone_volume_stat(x.v, "/enc/a", &sa));
	assert_ok(scone_volume_stat(x.v, "/enc/b", &sb));
	n = log_records(x.io, x.fspf, starts, 16, &end);
	assert_true(n >= 7);  /* (the log may hold the volume's first state before the full record) */
	r = starts + (n - 7); /* r[0] the full record, r[1..6] the deltas */
	fx_reopen(&x);	      /* the full record and six deltas */
	expect(x.v, "/enc/a", a, sizeof(a));
	expect(x.v, "/enc/b", b, 100);
	assert_ok(scone_volume_stat(x.v, "/enc/a", &st));
	assert_int_equal(st.size, sa.size);
	assert_int_equal(st.mtime_ns, sa.mtime_ns);
	assert_ok(scone_volume_stat(x.v, "/enc/b", &st));
	assert_int_equal(st.size, 100);
	assert_int_equal(st.mtime_ns, sb.mtime_ns);
	fx_close(&x);
	assert_memory_equal(x.tag, tags[6], SCONE_VOLUME_TAG_SIZE); /* nothing changed: no commit */

	/* a bit flipped in the third delta, which the state rests on */
	assert_ok(scone_vio_mem_clone(x.io, &snap));
	hflip(snap, x.fspf, r[3] + 80, 1);
	assert_err(scone_volume_open_at(snap, x.fspf, x.key, tags[6], SCONE_VOL_RDONLY, &x.v),
		   SCONE_ERR_AUTH);
	assert_detail("which the state rests on");
	snap->ops->destroy(snap);
	/* the third delta cut out: the fourth does not follow the second */
	snap = cut_record(&x, r[3], r[4]);
	assert_err(scone_volume_open_at(snap, x.fspf, x.key, tags[6], SCONE_VOL_RDONLY, &x.v),
		   SCONE_ERR_MALFORMED);
	assert_detail("does not follow the record before it");
	snap->ops->destroy(snap);
	/* the last delta lost: the state before it (ROLLBACK against the newest tag, as any older state) */
	assert_ok(scone_vio_mem_clone(x.io, &snap));
	hzero(snap, x.fspf, r[6], end);
	assert_err(scone_volume_open_at(snap, x.fspf, x.key, tags[6], SCONE_VOL_RDONLY, &x.v),
		   SCONE_ERR_ROLLBACK);
	assert_ok(scone_volume_open_at(snap, x.fspf, x.key, tags[5], SCONE_VOL_RDWR, &x.v));
	a[6 * 700] = 'a';
	expect(x.v, "/enc/a", a, sizeof(a));
	/* the next commit appends after the state, where the lost delta was */
	put(x.v, "/enc/a", b, sizeof(b));
	assert_ok(scone_volume_close(x.v, x.tag));
	assert_ok(scone_volume_open_at(snap, x.fspf, x.key, x.tag, SCONE_VOL_RDONLY, &x.v));
	expect(x.v, "/enc/a", b, sizeof(b));
	assert_ok(scone_volume_close(x.v, NULL));
	x.v = NULL;
	snap->ops->destroy(snap);
	fx_done(&x);
}

/*
 * A commit that changes only contents carries the blocks it wrote in its
 * record and flushes only the record: one sync. A power loss that takes
 * every unflushed write leaves blocks only the log holds; a read-only open
 * may then fail to read them, and the next writable open writes them again
 * (and flushes), after which every open reads the last state. A commit
 * larger than a record carries flushes its files (more than one sync).
 */
static enum scone_err pread_at(struct scone_volume *v, const char *path, uint8_t *buf, size_t size,
			       uint64_t off)
{
	struct scone_vfile *f;
	size_t got = 0;
	enum scone_err err = scone_vfile_open(v, path, SCONE_VF_RDONLY, 0, &f);

	if (err)
		return err;
	err = scone_vfile_pread(f, buf, size, off, &got);
	scone_vfile_close(f);
	return err;
}

static void pwrite_at(struct scone_volume *v, const char *path, const uint8_t *buf, size_t size, uint64_t off)
{
	struct scone_vfile *f;

	assert_ok(scone_vfile_open(v, path, SCONE_VF_RDWR, 0, &f));
	assert_ok(scone_vfile_pwrite(f, buf, size, off));
	scone_vfile_close(f);
}

TEST(test_redo_one_flush)
{
	struct fx x;
	uint8_t d[100000], l[5000], got[100];
	struct scone_vio *lost;
	struct scone_volume *v;
	uint64_t before;
	long syncs;

	fx_mem_flags(&x, SCONE_VOL_REDO);
	memset(d, 3, sizeof(d));
	memset(l, 5, sizeof(l));
	put(x.v, "/enc/db", d, sizeof(d));
	put(x.v, "/auth/log", l, sizeof(l));
	assert_ok(scone_volume_sync(x.v)); /* new files: a full record */
	d[10] = 4;
	pwrite_at(x.v, "/enc/db", d, 100, 0);
	assert_ok(scone_volume_sync(x.v));
	assert_int_equal(hsize(x.io, x.fspf), 2u << 20);
	for (unsigned i = 0; i < 5; i++) {
		d[20000 + i] = (uint8_t)(9 + i);
		pwrite_at(x.v, "/enc/db", d + 20000, 10, 20000);
		l[i] = (uint8_t)(20 + i);
		pwrite_at(x.v, "/auth/log", l, 10, 0);
		before = log_end_offset(&x);
		syncs = scone_vio_mem_sync_count(x.io);
		assert_ok(scone_volume_sync(x.v));
		assert_int_equal(scone_vio_mem_sync_count(x.io) - syncs, 1);
		assert_true(log_end_offset(&x) - before > 2 * 4096); /* the blocks ride along */
		assert_int_equal(hsize(x.io, x.fspf), 2u << 20);
	}
	scone_volume_tag(x.v, x.tag);
	assert_ok(scone_vio_mem_clone(x.io, &lost));
	assert_ok(scone_vio_mem_lose_unsynced(lost, 0));
	/* read-only: the blocks only the log holds are not where the tree says (the open itself works) */
	assert_ok(scone_volume_open_at(lost, x.fspf, x.key, x.tag, SCONE_VOL_RDONLY, &v));
	assert_err(pread_at(v, "/enc/db", got, sizeof(got), 20000), SCONE_ERR_TAMPERED);
	assert_ok(scone_volume_close(v, NULL));
	/* writable: written again from the log, flushed; then read-only opens read the state */
	syncs = scone_vio_mem_sync_count(lost);
	assert_ok(scone_volume_open_at(lost, x.fspf, x.key, x.tag, SCONE_VOL_RDWR, &v));
	assert_true(scone_vio_mem_sync_count(lost) - syncs >= 2); /* both files */
	expect(v, "/enc/db", d, sizeof(d));
	expect(v, "/auth/log", l, sizeof(l));
	assert_ok(scone_volume_close(v, NULL));
	assert_ok(scone_volume_open_at(lost, x.fspf, x.key, x.tag, SCONE_VOL_RDONLY, &v));
	expect(v, "/enc/db", d, sizeof(d));
	assert_ok(scone_volume_close(v, NULL));
	lost->ops->destroy(lost);
	/* larger than a record carries: the files are flushed too */
	memset(d, 8, sizeof(d));
	put(x.v, "/enc/db", d, sizeof(d));
	put(x.v, "/enc/db2", d, 0);
	assert_ok(scone_volume_sync(x.v));
	for (unsigned i = 0; i < 3; i++)
		put(x.v, "/enc/db", d, sizeof(d));
	memset(d, 9, sizeof(d));
	for (uint64_t off = 0; off < (400u << 10); off += sizeof(d))
		pwrite_at(x.v, "/enc/db", d, sizeof(d), off);
	syncs = scone_vio_mem_sync_count(x.io);
	assert_ok(scone_volume_sync(x.v));
	assert_true(scone_vio_mem_sync_count(x.io) - syncs >= 2);
	fx_reopen(&x);
	assert_ok(pread_at(x.v, "/enc/db", got, sizeof(got), 300000));
	assert_int_equal(got[0], 9);
	fx_done(&x);
}

/*
 * A full record of more than 128 KiB (a large namespace) is written with
 * 128 KiB of zero padding after it, so that deltas overwrite zeros and do
 * not grow the file; after LOG_MAX_DELTAS deltas a full record follows.
 */
TEST(test_fspf_delta_room)
{
	struct fx x;
	uint8_t d[64];
	uint64_t starts[1200], end, size, run = 0, longest = 0;
	size_t n;
	char path[160];

	fx_mem(&x);
	memset(d, 5, sizeof(d));
	for (unsigned i = 0; i < 1300; i++) {
		snprintf(path, sizeof(path), "/enc/a-rather-long-file-name-as-databases-make-them-%04u", i);
		put(x.v, path, d, 1);
	}
	assert_ok(scone_volume_sync(x.v));
	end = log_end_offset(&x);
	assert_true(end - log_state_offset(&x) > (128u << 10)); /* one full record of the namespace */
	size = hsize(x.io, x.fspf);
	assert_int_equal(size, (end + (128u << 10) + 4095) / 4096 * 4096);
	for (unsigned i = 0; i < 200; i++) {
		d[0] = (uint8_t)i;
		put(x.v, "/enc/a-rather-long-file-name-as-databases-make-them-0007", d, sizeof(d));
		assert_ok(scone_volume_sync(x.v));
		assert_int_equal(hsize(x.io, x.fspf), size); /* in place: the file does not grow */
	}
	assert_true(log_end_offset(&x) - end < 200 * 512);
	fx_reopen(&x);
	expect(x.v, "/enc/a-rather-long-file-name-as-databases-make-them-0007", d, sizeof(d));
	fx_done(&x);

	/* a small volume: no more than LOG_MAX_DELTAS deltas in a row */
	fx_mem(&x);
	for (unsigned i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "/enc/file-%u-with-a-name-long-enough-to-tell-its-record", i);
		put(x.v, path, d, 1);
	}
	assert_ok(scone_volume_sync(x.v));
	for (unsigned i = 0; i < LOG_MAX_DELTAS + 100; i++) {
		d[0] = (uint8_t)i;
		put(x.v, "/enc/file-3-with-a-name-long-enough-to-tell-its-record", d, sizeof(d));
		assert_ok(scone_volume_sync(x.v));
	}
	n = log_records(x.io, x.fspf, starts, 1200, &end);
	for (size_t i = 0; i + 1 <= n; i++) {
		uint64_t len = (i + 1 < n ? starts[i + 1] : end) - starts[i];
		run = len < 400 ? run + 1
				: 0; /* deltas of one file are a few hundred bytes; full ones over 1 KiB */
		longest = run > longest ? run : longest;
	}
	assert_true(longest <= LOG_MAX_DELTAS);
	assert_true(longest >= LOG_MAX_DELTAS / 2);
	fx_reopen(&x);
	expect(x.v, "/enc/file-3-with-a-name-long-enough-to-tell-its-record", d, sizeof(d));
	fx_done(&x);
}

/* A log whose only record is a delta has no state to apply it to: MALFORMED. */
TEST(test_fspf_delta_alone)
{
	struct fx x;
	struct vol_delta d = {.epoch = 1};
	struct scone_wbuf body, env;
	struct scone_vio_file *f;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];

	fx_mem(&x);
	fx_close(&x);
	scone_wbuf_init(&body, 1 << 20, 0);
	scone_wbuf_init(&env, 1 << 20, 0);
	assert_ok(vol_delta_encode(&d, &body));
	assert_true(vol_body_is_delta(body.data, body.size));
	assert_ok(vol_envelope_seal(body.data, body.size, x.key, &env, tag));
	htrunc(x.io, x.fspf, 0);
	f = hopen(x.io, x.fspf);
	assert_ok(x.io->ops->pwrite(f, env.data, env.size, 0));
	x.io->ops->close(f);
	assert_err(scone_volume_open_at(x.io, x.fspf, x.key, tag, SCONE_VOL_RDONLY, &x.v),
		   SCONE_ERR_MALFORMED);
	assert_detail("with no full state before it");
	x.v = NULL;
	scone_wbuf_free(&body);
	scone_wbuf_free(&env);
	fx_done(&x);
}

/* Version 1 files (one envelope) are read; unknown versions are refused cleanly. */
TEST(test_fspf_versions)
{
	struct scone_vio *io;
	struct scone_volume *v;
	struct scone_vio_file *f;
	uint8_t ver[4] = {1, 0, 0, 0}, junk[4] = {0};
	uint64_t size;

	assert_ok(scone_vio_mem_new(&io));
	assert_ok(
	    scone_volume_create_at(io, "/v/fspf")); /* unsealed: no AAD, so the version can be patched */
	f = hopen(io, "/v/fspf");
	assert_ok(io->ops->pwrite(f, ver, 4, 8));
	io->ops->close(f);
	assert_ok(
	    scone_volume_open_at(io, "/v/fspf", NULL, NULL, SCONE_VOL_RDONLY | SCONE_VOL_ALLOW_UNSEALED, &v));
	assert_ok(scone_volume_close(v, NULL));
	size = hsize(io, "/v/fspf");
	f = hopen(io, "/v/fspf");
	assert_ok(io->ops->pwrite(f, junk, 4, size)); /* a version 1 file is exactly one envelope */
	io->ops->close(f);
	assert_err(
	    scone_volume_open_at(io, "/v/fspf", NULL, NULL, SCONE_VOL_RDONLY | SCONE_VOL_ALLOW_UNSEALED, &v),
	    SCONE_ERR_MALFORMED);
	htrunc(io, "/v/fspf", size);
	ver[0] = 2; /* a version 2 file (the log before mtimes) is read too */
	f = hopen(io, "/v/fspf");
	assert_ok(io->ops->pwrite(f, ver, 4, 8));
	io->ops->close(f);
	assert_ok(
	    scone_volume_open_at(io, "/v/fspf", NULL, NULL, SCONE_VOL_RDONLY | SCONE_VOL_ALLOW_UNSEALED, &v));
	assert_ok(scone_volume_close(v, NULL));
	ver[0] = VOL_ENV_VERSION + 1;
	f = hopen(io, "/v/fspf");
	assert_ok(io->ops->pwrite(f, ver, 4, 8));
	io->ops->close(f);
	assert_err(
	    scone_volume_open_at(io, "/v/fspf", NULL, NULL, SCONE_VOL_RDONLY | SCONE_VOL_ALLOW_UNSEALED, &v),
	    SCONE_ERR_MALFORMED);
	assert_detail("unsupported version 5"); /* (VOL_ENV_VERSION + 1) */
	io->ops->destroy(io);
}

TEST(test_tamper_fspf)
{
	struct ifx t;
	uint64_t size, start;

	ifx_setup(&t);
	size = log_end_offset(&t.x);
	start = log_state_offset(&t.x);
	for (uint64_t off = start + 40; off < size; off += (size - start) / 7) {
		hflip(t.x.io, t.x.fspf, off, 3);
		assert_err(fx_open(&t.x, SCONE_VOL_RDONLY), SCONE_ERR_AUTH);
		assert_detail("wrong key, or the file was modified");
		hflip(t.x.io, t.x.fspf, off, 3);
	}
	hflip(t.x.io, t.x.fspf, size - 1, 7); /* the tag */
	assert_err(fx_open(&t.x, SCONE_VOL_RDONLY), SCONE_ERR_AUTH);
	hflip(t.x.io, t.x.fspf, size - 1, 7);
	hflip(t.x.io, t.x.fspf, hsize(t.x.io, t.x.fspf) / 2, 0); /* the zero padding, past any torn append */
	assert_err(fx_open(&t.x, SCONE_VOL_RDONLY), SCONE_ERR_AUTH);
	assert_detail("padding");
	hflip(t.x.io, t.x.fspf, hsize(t.x.io, t.x.fspf) / 2, 0);
	hflip(t.x.io, t.x.fspf, 0, 0); /* the magic */
	assert_err(fx_open(&t.x, SCONE_VOL_RDONLY), SCONE_ERR_MALFORMED);
	hflip(t.x.io, t.x.fspf, 0, 0);
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	ifx_done(&t);
}

TEST(test_tamper_header)
{
	struct ifx t;

	ifx_setup(&t);
	hflip(t.x.io, t.a, 2, 2);  /* magic */
	hflip(t.x.io, t.b, 20, 0); /* file id */
	assert_ok(fx_open(&t.x, SCONE_VOL_RDONLY));
	open_fails(&t.x, "/enc/a", SCONE_ERR_TAMPERED, "header");
	{
		struct scone_vfile *f;
		assert_err(scone_vfile_open(t.x.v, "/enc/b", SCONE_VF_RDONLY, 0, &f), SCONE_ERR_SWAPPED);
		assert_detail("/enc/b");
	}
	expect(t.x.v, "/auth/c", t.dc, ISIZE);
	ifx_done(&t);
}

/* ==================== 4b. modification times and modes ==================== */

#define NS_PER_S 1000000000ll
#define OLD_TIME 1000ll /* an mtime no operation sets: 1 µs after the epoch */

static int64_t realtime_ns(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t mtime_of(struct scone_volume *v, const char *path)
{
	struct scone_vstat st;

	assert_ok(scone_volume_stat(v, path, &st));
	return st.mtime_ns;
}

/* path's mtime was set by an operation between since and now (within a second of the clock). */
static void assert_recent_(int line, struct scone_volume *v, const char *path, int64_t since)
{
	int64_t t = mtime_of(v, path), now = realtime_ns();

	if (t < since || t > now || now - t > NS_PER_S)
		fail_msg("line %d: %s: mtime %lld not within [%lld, %lld]", line, path, (long long)t,
			 (long long)since, (long long)now);
}
#define assert_recent(v, path, since) assert_recent_(__LINE__, v, path, since)

static void assert_mtime_(int line, struct scone_volume *v, const char *path, int64_t want)
{
	int64_t t = mtime_of(v, path);

	if (t != want)
		fail_msg("line %d: %s: mtime %lld, want %lld", line, path, (long long)t, (long long)want);
}
#define assert_mtime(v, path, want) assert_mtime_(__LINE__, v, path, want)

static void age(struct scone_volume *v, const char *path)
{
	assert_ok(scone_volume_set_mtime(v, path, OLD_TIME));
	assert_mtime(v, path, OLD_TIME);
}

TEST(test_mtime_files)
{
	struct scone_vfile *f;
	struct scone_vstat st;
	uint64_t off;
	int64_t t0 = realtime_ns(), t1, kept;
	struct fx x;

	fx_mem(&x);
	assert_ok(scone_vfile_open(x.v, "/enc/a", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	assert_recent(x.v, "/enc/a", t0);
	t1 = mtime_of(x.v, "/enc/a");
	assert_ok(scone_vfile_pwrite(f, "hello", 5, 0)); /* monotonic */
	assert_true(mtime_of(x.v, "/enc/a") >= t1);
	age(x.v, "/enc/a");
	assert_ok(scone_vfile_stat(f, &st)); /* the open handle sees it */
	assert_int_equal(st.mtime_ns, OLD_TIME);
	assert_ok(scone_vfile_pwrite(f, "x", 0, 9)); /* writing nothing changes nothing */
	assert_mtime(x.v, "/enc/a", OLD_TIME);
	assert_ok(scone_vfile_pwrite(f, "world", 5, 5));
	assert_recent(x.v, "/enc/a", t0);
	assert_ok(scone_vfile_stat(f, &st));
	assert_true(st.mtime_ns >= t1);
	age(x.v, "/enc/a");
	assert_ok(scone_vfile_append(f, "!", 1, &off));
	assert_recent(x.v, "/enc/a", t0);
	age(x.v, "/enc/a");
	assert_ok(scone_vfile_truncate(f, 3));
	assert_recent(x.v, "/enc/a", t0);
	age(x.v, "/enc/a");
	assert_ok(scone_vfile_truncate(f, 3)); /* same size: ftruncate still marks it */
	assert_recent(x.v, "/enc/a", t0);
	scone_vfile_close(f);
	age(x.v, "/enc/a");
	assert_ok(scone_volume_truncate(x.v, "/enc/a", 100));
	assert_recent(x.v, "/enc/a", t0);
	/* reading and plain opening leave it; O_TRUNC sets it, even on an empty file */
	put(x.v, "/auth/e", NULL, 0);
	age(x.v, "/auth/e");
	expect(x.v, "/auth/e", NULL, 0);
	assert_mtime(x.v, "/auth/e", OLD_TIME);
	assert_ok(scone_vfile_open(x.v, "/auth/e", SCONE_VF_WRONLY | SCONE_VF_TRUNC, 0, &f));
	scone_vfile_close(f);
	assert_recent(x.v, "/auth/e", t0);
	/* an explicit time and a written one survive the commit */
	assert_ok(scone_volume_set_mtime(x.v, "/auth/e", 1234567890123456789ll));
	kept = mtime_of(x.v, "/enc/a");
	fx_reopen(&x);
	assert_mtime(x.v, "/auth/e", 1234567890123456789ll);
	assert_mtime(x.v, "/enc/a", kept);
	assert_ok(scone_volume_set_mtime(x.v, "/auth/e", -5)); /* before the epoch */
	fx_reopen(&x);
	assert_mtime(x.v, "/auth/e", -5);
	/* unlinked while open: the handle keeps its time */
	assert_ok(scone_vfile_open(x.v, "/enc/a", SCONE_VF_RDWR, 0, &f));
	assert_ok(scone_volume_unlink(x.v, "/enc/a"));
	assert_ok(scone_vfile_stat(f, &st));
	assert_int_equal(st.mtime_ns, kept);
	assert_ok(scone_vfile_pwrite(f, "z", 1, 0));
	assert_ok(scone_vfile_stat(f, &st));
	assert_true(st.mtime_ns >= t0 && st.mtime_ns != kept);
	scone_vfile_close(f);
	fx_done(&x);
}

TEST(test_mtime_dirs)
{
	int64_t t0 = realtime_ns();
	uint8_t before[SCONE_VOLUME_TAG_SIZE], after[SCONE_VOLUME_TAG_SIZE];
	struct fx x;

	fx_mem(&x);
	/* implicit directories have no time until their entries change */
	assert_mtime(x.v, "/", 0);
	assert_mtime(x.v, "/enc", 0);
	assert_ok(scone_volume_mkdir(x.v, "/enc/d", 0750));
	assert_recent(x.v, "/enc", t0); /* a region root */
	assert_recent(x.v, "/enc/d", t0);
	assert_mtime(x.v, "/", 0);
	age(x.v, "/enc");
	age(x.v, "/enc/d");
	put(x.v, "/enc/d/f", (const uint8_t *)"f", 1); /* create */
	assert_recent(x.v, "/enc/d", t0);
	assert_mtime(x.v, "/enc", OLD_TIME);
	age(x.v, "/enc/d");
	put(x.v, "/enc/d/f", (const uint8_t *)"g", 1); /* rewriting a file is not an entry change */
	assert_mtime(x.v, "/enc/d", OLD_TIME);
	assert_ok(scone_volume_unlink(x.v, "/enc/d/f"));
	assert_recent(x.v, "/enc/d", t0);
	assert_ok(scone_volume_mkdir(x.v, "/enc/d/s", 0700));
	age(x.v, "/enc/d");
	assert_ok(scone_volume_rmdir(x.v, "/enc/d/s"));
	assert_recent(x.v, "/enc/d", t0);
	assert_mtime(x.v, "/enc", OLD_TIME);
	put(x.v, "/enc/d/m", (const uint8_t *)"m", 1);
	age(x.v, "/enc/d");
	age(x.v, "/enc/d/m");
	assert_ok(scone_volume_rename(x.v, "/enc/d/m", "/enc/m")); /* both parents */
	assert_recent(x.v, "/enc/d", t0);
	assert_recent(x.v, "/enc", t0);
	assert_mtime(x.v, "/enc/m", OLD_TIME); /* the moved file's content did not change */
	age(x.v, "/enc/d");
	assert_ok(scone_volume_rename(x.v, "/enc/m", "/enc/d/m2"));
	assert_recent(x.v, "/enc/d", t0);
	/* an explicit time on "/" and a region root survives the commit */
	assert_ok(scone_volume_set_mtime(x.v, "/", 42));
	assert_ok(scone_volume_set_mtime(x.v, "/enc", 43));
	assert_ok(scone_volume_set_mtime(x.v, "/enc/d", 44));
	fx_reopen(&x);
	assert_mtime(x.v, "/", 42);
	assert_mtime(x.v, "/enc", 43);
	assert_mtime(x.v, "/enc/d", 44);
	/* ephemeral directories keep times in memory only: the tag does not move */
	assert_ok(scone_volume_sync(x.v));
	scone_volume_tag(x.v, before);
	assert_ok(scone_volume_mkdir(x.v, "/eph/d", 0700));
	assert_recent(x.v, "/eph", t0);
	assert_recent(x.v, "/eph/d", t0);
	assert_ok(scone_volume_set_mtime(x.v, "/eph/d", 7));
	assert_ok(scone_volume_chmod(x.v, "/eph", 0755));
	assert_ok(scone_volume_sync(x.v));
	scone_volume_tag(x.v, after);
	assert_memory_equal(before, after, sizeof(after));
	fx_reopen(&x);
	assert_mtime(x.v, "/eph", 0);
	fx_done(&x);
}

static int find_mode(void *arg, const char *name, const struct scone_vstat *st)
{
	uint32_t *mode = arg;

	if (strcmp(name, "enc") == 0)
		*mode = st->mode;
	return 0;
}

TEST(test_chmod)
{
	struct scone_vfile *f;
	struct scone_vstat st;
	uint32_t mode = 0;
	uint8_t before[SCONE_VOLUME_TAG_SIZE], after[SCONE_VOLUME_TAG_SIZE];
	struct fx x;

	fx_mem(&x);
	put(x.v, "/enc/a", (const uint8_t *)"a", 1);
	assert_ok(scone_volume_mkdir(x.v, "/enc/d", 0700));
	assert_ok(scone_volume_sync(x.v));
	scone_volume_tag(x.v, before);
	assert_ok(scone_volume_chmod(x.v, "/enc/a", 0100640)); /* only the permission bits */
	assert_ok(scone_volume_stat(x.v, "/enc/a", &st));
	assert_int_equal(st.mode, 0640);
	assert_false(st.is_dir);
	assert_ok(scone_volume_sync(x.v)); /* a change of its own: committed */
	scone_volume_tag(x.v, after);
	assert_memory_not_equal(before, after, sizeof(after));
	/* an open file sees it, and keeps it across writes */
	assert_ok(scone_vfile_open(x.v, "/enc/a", SCONE_VF_RDWR, 0, &f));
	assert_ok(scone_volume_chmod(x.v, "/enc/a", 04604));
	assert_ok(scone_volume_set_mtime(x.v, "/enc/a", 99));
	assert_ok(scone_vfile_stat(f, &st));
	assert_int_equal(st.mode, 04604);
	assert_int_equal(st.mtime_ns, 99);
	assert_ok(scone_vfile_pwrite(f, "bb", 2, 0));
	assert_ok(scone_vfile_stat(f, &st));
	assert_int_equal(st.mode, 04604);
	scone_vfile_close(f);
	/* directories: an entry, a region root, "/" */
	assert_ok(scone_volume_chmod(x.v, "/enc/d", 0711));
	assert_ok(scone_volume_chmod(x.v, "/enc", 0750));
	assert_ok(scone_volume_chmod(x.v, "/", 0755));
	assert_ok(scone_volume_stat(x.v, "/", &st));
	assert_true(st.is_dir);
	assert_int_equal(st.mode, 0755);
	assert_ok(scone_volume_readdir(x.v, "/", find_mode, &mode));
	assert_int_equal(mode, 0750);
	fx_reopen(&x);
	assert_ok(scone_volume_stat(x.v, "/enc/a", &st));
	assert_int_equal(st.mode, 04604);
	assert_ok(scone_volume_stat(x.v, "/enc/d", &st));
	assert_int_equal(st.mode, 0711);
	assert_true(st.is_dir);
	assert_ok(scone_volume_stat(x.v, "/enc", &st));
	assert_int_equal(st.mode, 0750);
	assert_ok(scone_volume_stat(x.v, "/", &st));
	assert_int_equal(st.mode, 0755);
	expect(x.v, "/enc/a", (const uint8_t *)"bb", 2);
	/* errors */
	assert_err(scone_volume_chmod(x.v, "/enc/none", 0600), SCONE_ERR_NOT_FOUND);
	assert_detail("/enc/none");
	assert_err(scone_volume_set_mtime(x.v, "/enc/d/none", 1), SCONE_ERR_NOT_FOUND);
	assert_err(scone_volume_chmod(x.v, "/nowhere", 0600), SCONE_ERR_NOT_FOUND);
	assert_err(scone_volume_chmod(x.v, "relative", 0600), SCONE_ERR_INVALID);
	assert_err(scone_volume_set_mtime(x.v, "/enc/../x", 1), SCONE_ERR_INVALID);
	fx_close(&x);
	assert_ok(fx_open(&x, SCONE_VOL_RDONLY));
	assert_err(scone_volume_chmod(x.v, "/enc/a", 0600), SCONE_ERR_READ_ONLY);
	assert_err(scone_volume_set_mtime(x.v, "/enc/a", 1), SCONE_ERR_READ_ONLY);
	assert_err(scone_volume_chmod(x.v, "/", 0700), SCONE_ERR_READ_ONLY);
	assert_ok(scone_volume_stat(x.v, "/enc/a", &st));
	assert_int_equal(st.mode, 04604);
	assert_int_equal(st.mtime_ns, mtime_of(x.v, "/enc/a"));
	fx_done(&x);
}

/* The whole of a memory-backend file (caller frees). */
static uint8_t *hread_all(struct scone_vio *io, const char *path, size_t *size)
{
	struct scone_vio_file *f = hopen(io, path);
	uint64_t n;
	uint8_t *buf;

	assert_ok(io->ops->size(f, &n));
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_ok(io->ops->pread(f, buf, (size_t)n, 0, size));
	assert_int_equal(*size, n);
	io->ops->close(f);
	return buf;
}

/*
 * Rewrite the volume's fspf as an older release wrote it: body version 1
 * (no times, no directory attributes) in one envelope of env_version.
 * Updates x->tag to the rewritten state's.
 */
static void downgrade_fspf(struct fx *x, uint32_t env_version)
{
	struct scone_wbuf plain, body, env;
	struct scone_vio_file *f;
	struct vol_fspf st;
	uint64_t last = log_state_offset(x);
	size_t size;
	uint8_t *raw = hread_all(x->io, x->fspf, &size);

	size = (size_t)log_end_offset(x);
	bool sealed;

	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	scone_wbuf_init(&body, VOL_MAX_FSPF, 1);
	scone_wbuf_init(&env, VOL_MAX_FSPF + 256, 0);
	assert_ok(vol_envelope_open(raw + last, size - (size_t)last, x->key, &plain, &sealed, x->tag));
	assert_true(sealed);
	assert_ok(vol_fspf_decode(plain.data, plain.size, &st));
	assert_int_equal(st.version, VOL_BODY_VERSION);
	st.version = 1;
	assert_ok(vol_fspf_encode(&st, &body));
	assert_ok(vol_envelope_seal_version(body.data, body.size, x->key, env_version, &env, x->tag));
	f = hopen(x->io, x->fspf);
	assert_ok(x->io->ops->truncate(f, 0));
	assert_ok(x->io->ops->pwrite(f, env.data, env.size, 0));
	x->io->ops->close(f);
	vol_fspf_free(&st);
	scone_wbuf_free(&plain);
	scone_wbuf_free(&body);
	scone_wbuf_free(&env);
	free(raw);
}

static uint32_t fspf_env_version(struct fx *x, uint64_t off)
{
	size_t size;
	uint8_t *raw = hread_all(x->io, x->fspf, &size);
	uint32_t version;

	assert_true(off + 12 <= size);
	version = scone_get_le32(raw + off + 8);
	free(raw);
	return version;
}

TEST(test_mtime_old_versions)
{
	uint8_t *d = pattern(70000, 5);
	struct scone_vstat st;
	int64_t t0 = realtime_ns();

	for (uint32_t env_version = 1; env_version <= 2; env_version++) {
		struct fx x;
		fx_mem(&x);
		put(x.v, "/enc/a", d, 70000);
		assert_ok(scone_volume_mkdir(x.v, "/auth/d", 0750));
		put(x.v, "/auth/d/b", d, 10);
		assert_ok(scone_volume_chmod(x.v, "/", 0711));
		fx_close(&x);
		downgrade_fspf(&x, env_version);
		assert_int_equal(fspf_env_version(&x, 0), env_version);
		/* read by this release: everything but the times (0) and the implicit directories' modes */
		assert_ok(fx_open(&x, SCONE_VOL_RDWR));
		expect(x.v, "/enc/a", d, 70000);
		expect(x.v, "/auth/d/b", d, 10);
		assert_mtime(x.v, "/enc/a", 0);
		assert_mtime(x.v, "/auth/d", 0);
		assert_mtime(x.v, "/auth/d/b", 0);
		assert_mtime(x.v, "/", 0);
		assert_ok(scone_volume_stat(x.v, "/auth/d", &st));
		assert_int_equal(st.mode, 0750);
		assert_ok(scone_volume_stat(x.v, "/", &st));
		assert_int_equal(st.mode, 0700);
		/* until first changed; the first commit rewrites the file in the current version */
		put(x.v, "/auth/d/b", d, 20);
		assert_recent(x.v, "/auth/d/b", t0);
		assert_mtime(x.v, "/auth/d", 0);
		fx_reopen(&x);
		assert_int_equal(log_state_offset(&x), 0);
		assert_int_equal(fspf_env_version(&x, 0), VOL_ENV_VERSION);
		assert_recent(x.v, "/auth/d/b", t0);
		assert_mtime(x.v, "/enc/a", 0);
		expect(x.v, "/enc/a", d, 70000);
		/* and later commits append to the new log */
		assert_ok(scone_volume_set_mtime(x.v, "/enc/a", 77));
		fx_reopen(&x);
		assert_true(log_state_offset(&x) > 0);
		assert_int_equal(fspf_env_version(&x, log_state_offset(&x)), VOL_ENV_VERSION);
		assert_mtime(x.v, "/enc/a", 77);
		fx_done(&x);
	}
	free(d);
}

/* ==================== 5. threads ==================== */

#define NTHREADS 4
#define SHARED_SPAN 50001 /* unaligned: neighbouring threads share chunks of the shared file */

struct worker {
	struct scone_volume *v;
	struct scone_vfile *shared;
	unsigned id;
	struct model m; /* the thread's own file */
	uint8_t *span;	/* its span of the shared file */
	bool ok;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char path[32];
	struct scone_vfile *f;
	uint64_t s = 77 + w->id, base = (uint64_t)w->id * SHARED_SPAN;
	uint8_t *buf = malloc(70000), *buf2 = malloc(70000);
	size_t got;

	snprintf(path, sizeof(path), "/enc/thread%u", w->id);
	if (!buf || !buf2 ||
	    scone_vfile_open(w->v, path, SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f) != SCONE_ERR_OK)
		goto out;
	w->ok = true;
	for (unsigned i = 0; i < 150 && w->ok; i++) {
		size_t off = (size_t)rng_below(&s, 400000), n = 1 + (size_t)rng_below(&s, 60000);
		size_t so = (size_t)rng_below(&s, SHARED_SPAN),
		       sn = 1 + (size_t)rng_below(&s, SHARED_SPAN - so);
		fill(buf, n, rng_next(&s));
		w->ok &= scone_vfile_pwrite(f, buf, n, off) == SCONE_ERR_OK;
		model_write(&w->m, buf, n, off);
		w->ok &= scone_vfile_pread(f, buf2, n, off, &got) == SCONE_ERR_OK && got == n &&
			 memcmp(buf, buf2, n) == 0;
		fill(buf, sn, rng_next(&s));
		w->ok &= scone_vfile_pwrite(w->shared, buf, sn, base + so) == SCONE_ERR_OK;
		memcpy(w->span + so, buf, sn);
		w->ok &= scone_vfile_pread(w->shared, buf2, SHARED_SPAN, base, &got) == SCONE_ERR_OK &&
			 got == SHARED_SPAN && memcmp(w->span, buf2, SHARED_SPAN) == 0;
		if (i % 50 == 49)
			w->ok &= scone_volume_sync(w->v) == SCONE_ERR_OK;
	}
	scone_vfile_close(f);
out:
	free(buf);
	free(buf2);
	return NULL;
}

TEST(test_threads)
{
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	struct scone_vfile *shared;
	uint8_t *want = calloc(NTHREADS, SHARED_SPAN);
	char path[32];
	struct fx x;

	assert_non_null(want);
	fx_mem(&x);
	assert_ok(scone_vfile_open(x.v, "/enc/shared", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &shared));
	/* the file spans every thread's range from the start, so reads of a span never hit EOF */
	assert_ok(scone_vfile_truncate(shared, NTHREADS * SHARED_SPAN));
	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){.v = x.v, .shared = shared, .id = i, .span = want + i * SHARED_SPAN};
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	scone_vfile_close(shared);
	fx_reopen(&x);
	for (unsigned i = 0; i < NTHREADS; i++) {
		assert_true(w[i].ok);
		snprintf(path, sizeof(path), "/enc/thread%u", i);
		expect(x.v, path, w[i].m.d, w[i].m.size);
		free(w[i].m.d);
	}
	expect(x.v, "/enc/shared", want, NTHREADS * SHARED_SPAN);
	assert_ok(scone_volume_check_host(x.v, NULL, NULL));
	free(want);
	fx_done(&x);
}

/* ==================== 6. misuse ==================== */

TEST(test_bad_paths)
{
	static const char *const bad[] = {"",	      "relative", "/a/../b", "/a//b",	"/enc/",
					  "/enc/./x", "/enc/..",  "enc/x",   "/enc//x", "/enc/x/"};
	struct scone_vfile *f;
	struct scone_vstat st;
	struct names n;
	struct fx x;

	fx_mem(&x);
	put(x.v, "/enc/ok", (const uint8_t *)"1", 1);
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		assert_err(scone_vfile_open(x.v, bad[i], SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f),
			   SCONE_ERR_INVALID);
		assert_err(scone_volume_stat(x.v, bad[i], &st), SCONE_ERR_INVALID);
		assert_err(scone_volume_mkdir(x.v, bad[i], 0700), SCONE_ERR_INVALID);
		assert_err(scone_volume_rmdir(x.v, bad[i]), SCONE_ERR_INVALID);
		assert_err(scone_volume_unlink(x.v, bad[i]), SCONE_ERR_INVALID);
		assert_err(scone_volume_rename(x.v, "/enc/ok", bad[i]), SCONE_ERR_INVALID);
		assert_err(scone_volume_rename(x.v, bad[i], "/enc/ok2"), SCONE_ERR_INVALID);
		assert_err(scone_volume_readdir(x.v, bad[i], collect_name, &n), SCONE_ERR_INVALID);
		assert_err(scone_volume_truncate(x.v, bad[i], 0), SCONE_ERR_INVALID);
	}
	{
		size_t len = VOL_MAX_PATH + 10;
		char *longp = malloc(len + 1);
		assert_non_null(longp);
		memcpy(longp, "/enc/", 5);
		memset(longp + 5, 'a', len - 5);
		longp[len] = '\0';
		assert_err(scone_vfile_open(x.v, longp, SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f),
			   SCONE_ERR_NAME_TOO_LONG);
		free(longp);
	}
	/* outside every protected region */
	assert_err(scone_vfile_open(x.v, "/other/x", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f),
		   SCONE_ERR_NO_REGION);
	assert_detail("/other/x");
	assert_err(scone_vfile_open(x.v, "/plain/x", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f),
		   SCONE_ERR_NO_REGION);
	assert_err(scone_vfile_open(x.v, "/encx", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f),
		   SCONE_ERR_NO_REGION);
	assert_err(scone_volume_mkdir(x.v, "/other", 0700), SCONE_ERR_NO_REGION);
	assert_err(scone_volume_rename(x.v, "/enc/ok", "/other/ok"), SCONE_ERR_NO_REGION);
	/* regions: duplicates, bad arguments, while files are open */
	assert_ok(scone_volume_sync(x.v)); /* closed files stay cached until committed */
	assert_err(scone_volume_add_region(x.v, "/enc", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, "x"),
		   SCONE_ERR_EXISTS);
	assert_err(scone_volume_add_region(x.v, "/r", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, NULL),
		   SCONE_ERR_INVALID);
	assert_err(scone_volume_add_region(x.v, "/r", SCONE_REGION_ENCRYPTED, SCONE_STORE_EPHEMERAL, "x"),
		   SCONE_ERR_INVALID);
	assert_err(scone_volume_add_region(x.v, "r", SCONE_REGION_ENCRYPTED, SCONE_STORE_EPHEMERAL, NULL),
		   SCONE_ERR_INVALID);
	assert_err(scone_volume_add_region(x.v, "/r", (enum scone_region_kind)7, SCONE_STORE_EPHEMERAL, NULL),
		   SCONE_ERR_INVALID);
	assert_ok(scone_vfile_open(x.v, "/enc/ok", SCONE_VF_RDONLY, 0, &f));
	assert_err(scone_volume_add_region(x.v, "/r", SCONE_REGION_ENCRYPTED, SCONE_STORE_EPHEMERAL, NULL),
		   SCONE_ERR_BUSY);
	scone_vfile_close(f);
	fx_done(&x);
}

TEST(test_read_only)
{
	struct scone_vfile *f;
	uint8_t buf[8];
	uint64_t off;
	size_t got;
	uint8_t k[SCONE_VOLUME_KEY_SIZE], t[SCONE_VOLUME_TAG_SIZE];
	struct fx x;

	fx_mem(&x);
	put(x.v, "/enc/f", (const uint8_t *)"hello", 5);
	assert_ok(scone_volume_mkdir(x.v, "/enc/d", 0700));
	/* handle opened read-only / write-only */
	assert_ok(scone_vfile_open(x.v, "/enc/f", SCONE_VF_RDONLY, 0, &f));
	assert_err(scone_vfile_pwrite(f, "x", 1, 0), SCONE_ERR_BAD_FD);
	assert_err(scone_vfile_append(f, "x", 1, &off), SCONE_ERR_BAD_FD);
	assert_err(scone_vfile_truncate(f, 0), SCONE_ERR_BAD_FD);
	scone_vfile_close(f);
	assert_ok(scone_vfile_open(x.v, "/enc/f", SCONE_VF_WRONLY, 0, &f));
	assert_err(scone_vfile_pread(f, buf, 5, 0, &got), SCONE_ERR_BAD_FD);
	scone_vfile_close(f);
	/* a directory is not a file */
	assert_err(scone_vfile_open(x.v, "/enc/d", SCONE_VF_RDONLY, 0, &f), SCONE_ERR_IS_DIR);
	assert_err(scone_vfile_open(x.v, "/enc/d", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f),
		   SCONE_ERR_IS_DIR);
	assert_err(scone_vfile_open(x.v, "/enc", SCONE_VF_RDONLY, 0, &f), SCONE_ERR_IS_DIR);
	assert_err(scone_vfile_open(x.v, "/enc/f", SCONE_VF_RDWR | SCONE_VF_CREAT | SCONE_VF_EXCL, 0600, &f),
		   SCONE_ERR_EXISTS);
	assert_err(scone_vfile_open(x.v, "/enc/none", SCONE_VF_RDONLY, 0, &f), SCONE_ERR_NOT_FOUND);
	assert_err(scone_vfile_open(x.v, "/enc/f/x", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f),
		   SCONE_ERR_NOT_DIR);
	fx_close(&x);

	/* volume opened read-only */
	assert_ok(fx_open(&x, SCONE_VOL_RDONLY));
	assert_ok(scone_vfile_open(x.v, "/enc/f", SCONE_VF_RDONLY, 0, &f));
	assert_ok(scone_vfile_pread(f, buf, 5, 0, &got));
	assert_memory_equal(buf, "hello", 5);
	scone_vfile_close(f);
	assert_err(scone_vfile_open(x.v, "/enc/f", SCONE_VF_RDWR, 0, &f), SCONE_ERR_READ_ONLY);
	assert_err(scone_vfile_open(x.v, "/enc/n", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f),
		   SCONE_ERR_READ_ONLY);
	assert_err(scone_vfile_open(x.v, "/enc/f", SCONE_VF_RDONLY | SCONE_VF_TRUNC, 0, &f),
		   SCONE_ERR_READ_ONLY);
	assert_err(scone_volume_mkdir(x.v, "/enc/e", 0700), SCONE_ERR_READ_ONLY);
	assert_err(scone_volume_rmdir(x.v, "/enc/d"), SCONE_ERR_READ_ONLY);
	assert_err(scone_volume_unlink(x.v, "/enc/f"), SCONE_ERR_READ_ONLY);
	assert_err(scone_volume_rename(x.v, "/enc/f", "/enc/g"), SCONE_ERR_READ_ONLY);
	assert_err(scone_volume_truncate(x.v, "/enc/f", 0), SCONE_ERR_READ_ONLY);
	assert_err(scone_volume_add_region(x.v, "/r", SCONE_REGION_ENCRYPTED, SCONE_STORE_EPHEMERAL, NULL),
		   SCONE_ERR_READ_ONLY);
	assert_err(scone_volume_seal(x.v, NULL, k, t), SCONE_ERR_READ_ONLY);
	assert_ok(scone_volume_sync(x.v));
	fx_close(&x);
	assert_ok(fx_open(&x, SCONE_VOL_RDONLY)); /* nothing changed: same tag */
	expect(x.v, "/enc/f", (const uint8_t *)"hello", 5);
	fx_done(&x);
}

TEST(test_huge_offsets)
{
	const uint64_t max = (uint64_t)1 << 50;
	struct scone_vfile *f;
	struct scone_vstat st;
	uint8_t buf[16];
	size_t got = 9;
	struct fx x;

	fx_mem(&x);
	assert_ok(scone_vfile_open(x.v, "/enc/h", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	assert_ok(scone_vfile_pwrite(f, "abc", 3, 0));
	assert_err(scone_vfile_pwrite(f, "x", 1, max), SCONE_ERR_TOO_LARGE);
	assert_detail("/enc/h");
	assert_err(scone_vfile_pwrite(f, "xy", 2, max - 1), SCONE_ERR_TOO_LARGE);
	assert_err(scone_vfile_pwrite(f, "x", 1, max + 1), SCONE_ERR_TOO_LARGE);
	assert_err(scone_vfile_pwrite(f, "xy", 2, UINT64_MAX), SCONE_ERR_TOO_LARGE);
	assert_err(scone_vfile_pwrite(f, "xy", 2, UINT64_MAX - 1), SCONE_ERR_TOO_LARGE);
	assert_err(scone_vfile_truncate(f, max + 1), SCONE_ERR_TOO_LARGE);
	assert_err(scone_vfile_truncate(f, UINT64_MAX), SCONE_ERR_TOO_LARGE);
	assert_ok(scone_vfile_pread(f, buf, sizeof(buf), (uint64_t)1 << 60, &got));
	assert_int_equal(got, 0);
	assert_ok(scone_vfile_pread(f, buf, sizeof(buf), UINT64_MAX, &got));
	assert_int_equal(got, 0);
	assert_ok(scone_vfile_stat(f, &st));
	assert_int_equal(st.size, 3);
	scone_vfile_close(f);
	fx_reopen(&x);
	expect(x.v, "/enc/h", (const uint8_t *)"abc", 3);
	fx_done(&x);
}

/* Names the fspf could not store are refused by the call, not at the next commit. */
static void test_unstorable_names(void **state)
{
	struct fx x;
	struct scone_vfile *f;
	char *long_dir = malloc(5000), *deep = malloc(4200);

	(void)state;
	fx_mem(&x);
	memset(long_dir, 'd', 4999);
	long_dir[4999] = '\0';
	assert_int_equal(
	    scone_volume_add_region(x.v, "/long", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, long_dir),
	    SCONE_ERR_NAME_TOO_LONG);
	assert_ok(scone_vfile_open(x.v, "/enc/a", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	scone_vfile_close(f);
	/* "/" is in no region here (NO_REGION); with a region "/" it is refused as INVALID. */
	assert_int_not_equal(scone_volume_rename(x.v, "/enc/a", "/"), SCONE_ERR_OK);
	/* A directory move that would push a child past the path limit. */
	assert_ok(scone_volume_mkdir(x.v, "/enc/d", 0700));
	memset(deep, 'n', 150);
	memcpy(deep, "/enc/d/", 7);
	deep[150] = '\0';
	assert_ok(scone_vfile_open(x.v, deep, SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	scone_vfile_close(f);
	memset(deep, 'm', 4000);
	memcpy(deep, "/enc/", 5);
	deep[4000] = '\0';
	assert_int_equal(scone_volume_rename(x.v, "/enc/d", deep), SCONE_ERR_NAME_TOO_LONG);
	fx_reopen(&x);
	fx_done(&x);
	free(long_dir);
	free(deep);
}

/* ---------------- delta records: torn headers, what a reopen shows ---------------- */

/* O_TRUNC on an existing empty file sets its mtime; a delta commit is made, but does it carry the time? */
TEST(test_delta_otrunc_empty_mtime)
{
	struct fx x;
	struct scone_vfile *f;
	int64_t before_reopen;

	fx_mem(&x);
	put(x.v, "/enc/e", NULL, 0);
	put(x.v, "/enc/other", (const uint8_t *)"x", 1);
	age(x.v, "/enc/e");
	fx_reopen(&x); /* full record: /enc/e empty, mtime OLD_TIME */
	assert_mtime(x.v, "/enc/e", OLD_TIME);
	assert_ok(scone_vfile_open(x.v, "/enc/e", SCONE_VF_WRONLY | SCONE_VF_TRUNC, 0, &f));
	scone_vfile_close(f);
	before_reopen = mtime_of(x.v, "/enc/e");
	assert_true(before_reopen != OLD_TIME);
	assert_ok(scone_volume_sync(x.v)); /* commits (the tag advances) */
	fx_reopen(&x);
	assert_mtime(x.v, "/enc/e", before_reopen);
	fx_done(&x);
}

/*
 * For each sector of the last record [start, end): a copy of x's files
 * with that sector never written must open to the state tagged old_tag.
 * Returns how many did not.
 */
static unsigned sectors_lost_open(struct fx *x, uint64_t start, uint64_t end,
				  const uint8_t old_tag[static SCONE_VOLUME_TAG_SIZE])
{
	unsigned fails = 0;

	for (uint64_t s = start - start % 512; s < end; s += 512) {
		struct scone_vio *snap;
		struct scone_volume *sv;
		enum scone_err err;
		assert_ok(scone_vio_mem_clone(x->io, &snap));
		hzero(snap, x->fspf, s > start ? s : start, s + 512); /* sector s never written */
		err = scone_volume_open_at(snap, x->fspf, x->key, old_tag, SCONE_VOL_RDONLY, &sv);
		if (err) {
			fprintf(stderr, "sector %llu lost: open -> %s: %s\n", (unsigned long long)s,
				scone_errname(err), scone_err_detail());
			fails++;
		} else {
			assert_ok(scone_volume_close(sv, NULL));
		}
		snap->ops->destroy(snap);
	}
	return fails;
}

/*
 * A power loss during a delta append of a few sectors whose header starts
 * in the last 60 bytes of a sector: the sector holding the length field is
 * lost (zeros) while the header's first bytes and a later sector reached
 * the disk. Must open to the state before it.
 */
TEST(test_fspf_torn_length_sector)
{
	struct fx x;
	uint8_t d[64], old_tag[SCONE_VOLUME_TAG_SIZE];
	uint64_t start, end;
	char path[64];
	unsigned tries = 0;

	fx_mem(&x);
	memset(d, 7, sizeof(d));
	for (unsigned i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "/enc/f%u", i);
		put(x.v, path, d, sizeof(d));
	}
	assert_ok(scone_volume_sync(x.v)); /* a full record */
	/* one-file deltas until the next record starts in the last 60 bytes of a sector */
	for (;;) {
		end = log_end_offset(&x);
		if (end % 512 >= 453 && end % 512 <= 500)
			break;
		assert_true(++tries < 200);
		d[0]++;
		put(x.v, "/enc/f0", d, sizeof(d));
		assert_ok(scone_volume_sync(x.v));
	}
	scone_volume_tag(x.v, old_tag);
	d[1]++;
	for (unsigned i = 0; i < 10; i++) { /* one delta of ten files: three sectors */
		snprintf(path, sizeof(path), "/enc/f%u", i);
		put(x.v, path, d, sizeof(d));
	}
	assert_ok(scone_volume_sync(x.v));
	log_scan(&x, &start, &end);
	assert_true(end - start < 2048 && end - start > 600);
	assert_int_equal(sectors_lost_open(&x, start, end, old_tag), 0);
	fx_done(&x);
}

/* Full-record commits (new names of varying length) until the log ends at lo..hi modulo 512. */
static void steer_log_end(struct fx *x, unsigned lo, unsigned hi)
{
	char path[200];
	uint64_t s = 12345;

	for (unsigned i = 0; i < 5000; i++) {
		uint64_t end = log_end_offset(x);
		if (end % 512 >= lo && end % 512 <= hi)
			return;
		snprintf(path, sizeof(path), "/enc/s%u-%.*s", i, (int)rng_below(&s, 60),
			 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		put(x->v, path, (const uint8_t *)"s", 1);
		assert_ok(scone_volume_sync(x->v));
	}
	fail_msg("could not steer the log end");
}

/*
 * A one-file delta (two sectors) appended at 500..503 modulo 512: the
 * second sector holds the low byte of the envelope's "state" field. If
 * only that sector is lost, the record reads as unsealed.
 */
TEST(test_fspf_torn_state_sector)
{
	struct fx x;
	uint8_t d[64], old_tag[SCONE_VOLUME_TAG_SIZE];
	uint64_t start, end;

	fx_mem(&x);
	memset(d, 7, sizeof(d));
	put(x.v, "/enc/f", d, sizeof(d));
	assert_ok(scone_volume_sync(x.v));
	steer_log_end(&x, 500, 503);
	scone_volume_tag(x.v, old_tag);
	d[0]++;
	put(x.v, "/enc/f", d, sizeof(d));
	assert_ok(scone_volume_sync(x.v)); /* a delta of one file */
	log_scan(&x, &start, &end);
	assert_true(end - start < 512);
	assert_int_equal(sectors_lost_open(&x, start, end, old_tag), 0);
	fx_done(&x);
}

static const char *const seq_paths[] = {"/",	  "/enc",     "/enc/a",	    "/enc/b", "/enc/c",
					"/enc/d", "/enc/dir", "/enc/dir/x", "/auth/y"};

struct seq_snap {
	bool exists[N_ELEMS(seq_paths)];
	struct scone_vstat st[N_ELEMS(seq_paths)];
};

static void seq_take(struct scone_volume *v, struct seq_snap *s)
{
	for (size_t i = 0; i < N_ELEMS(seq_paths); i++)
		s->exists[i] = scone_volume_stat(v, seq_paths[i], &s->st[i]) == SCONE_ERR_OK;
	scone_err_clear();
}

/* sync, reopen; what stat shows must not change */
static void seq_reopen_same(struct fx *x, const char *step)
{
	struct seq_snap a, b;

	assert_ok(scone_volume_sync(x->v));
	seq_take(x->v, &a);
	fx_reopen(x);
	seq_take(x->v, &b);
	for (size_t i = 0; i < N_ELEMS(seq_paths); i++) {
		if (a.exists[i] != b.exists[i] ||
		    (a.exists[i] && (a.st[i].size != b.st[i].size || a.st[i].mtime_ns != b.st[i].mtime_ns ||
				     a.st[i].mode != b.st[i].mode || a.st[i].is_dir != b.st[i].is_dir)))
			fail_msg("%s: %s differs after reopen (size %llu/%llu mtime %lld/%lld mode %o/%o)",
				 step, seq_paths[i], (unsigned long long)a.st[i].size,
				 (unsigned long long)b.st[i].size, (long long)a.st[i].mtime_ns,
				 (long long)b.st[i].mtime_ns, a.st[i].mode, b.st[i].mode);
	}
}

TEST(test_delta_reopen_sequences)
{
	struct fx x;
	struct scone_vfile *f, *g;
	uint8_t buf[9000];
	uint8_t key[SCONE_VOLUME_KEY_SIZE];

	memset(buf, 3, sizeof(buf));
	fx_mem(&x);
	put(x.v, "/enc/a", buf, 5000);
	put(x.v, "/enc/b", buf, 100);
	put(x.v, "/enc/c", buf, 7000);
	assert_ok(scone_volume_mkdir(x.v, "/enc/dir", 0700));
	put(x.v, "/enc/dir/x", buf, 10);
	put(x.v, "/auth/y", buf, 10);
	seq_reopen_same(&x, "setup");
	/* extending write, truncate, O_TRUNC on a non-empty file */
	assert_ok(scone_vfile_open(x.v, "/enc/a", SCONE_VF_RDWR, 0, &f));
	assert_ok(scone_vfile_pwrite(f, buf, 9000, 4000));
	scone_vfile_close(f);
	assert_ok(scone_volume_truncate(x.v, "/enc/b", 3));
	assert_ok(scone_vfile_open(x.v, "/enc/c", SCONE_VF_WRONLY | SCONE_VF_TRUNC, 0, &f));
	scone_vfile_close(f);
	seq_reopen_same(&x, "writes");
	/* truncate to the same size; extend by truncate */
	assert_ok(scone_volume_truncate(x.v, "/enc/b", 3));
	assert_ok(scone_volume_truncate(x.v, "/auth/y", 50000));
	seq_reopen_same(&x, "truncates");
	/* chmod / set_mtime on / and a region root, then content */
	assert_ok(scone_volume_chmod(x.v, "/", 0711));
	assert_ok(scone_volume_set_mtime(x.v, "/enc", 12345));
	put(x.v, "/enc/a", buf, 10);
	seq_reopen_same(&x, "root attrs");
	assert_ok(scone_volume_set_mtime(x.v, "/enc/dir", 777));
	seq_reopen_same(&x, "dir mtime");
	assert_ok(scone_volume_set_mtime(x.v, "/enc/a", 778));
	assert_ok(scone_volume_chmod(x.v, "/enc/a", 0640));
	seq_reopen_same(&x, "file attrs");
	/* an open file unlinked, then written */
	assert_ok(scone_vfile_open(x.v, "/enc/dir/x", SCONE_VF_RDWR, 0, &f));
	assert_ok(scone_volume_unlink(x.v, "/enc/dir/x"));
	assert_ok(scone_volume_sync(x.v));
	assert_ok(scone_vfile_pwrite(f, buf, 8000, 0));
	scone_vfile_close(f);
	put(x.v, "/enc/a", buf, 20);
	seq_reopen_same(&x, "unlinked open file written");
	/* rename over an open file, then write through both */
	put(x.v, "/enc/d", buf, 30);
	assert_ok(scone_volume_sync(x.v));
	assert_ok(scone_vfile_open(x.v, "/enc/d", SCONE_VF_RDWR, 0, &f));
	assert_ok(scone_vfile_open(x.v, "/enc/a", SCONE_VF_RDWR, 0, &g));
	assert_ok(scone_volume_rename(x.v, "/enc/a", "/enc/d"));
	assert_ok(scone_volume_sync(x.v));
	assert_ok(scone_vfile_pwrite(f, buf, 500, 0));
	assert_ok(scone_vfile_pwrite(g, buf, 600, 0));
	assert_ok(scone_volume_sync(x.v));
	scone_vfile_close(f);
	scone_vfile_close(g);
	seq_reopen_same(&x, "rename over open");
	/* re-key, then contents only */
	assert_ok(scone_volume_seal(x.v, NULL, key, x.tag));
	memcpy(x.key, key, sizeof(key));
	put(x.v, "/enc/d", buf, 700);
	seq_reopen_same(&x, "rekey then delta");
	put(x.v, "/enc/d", buf, 800);
	assert_ok(scone_volume_sync(x.v));
	put(x.v, "/enc/c", buf, 800);
	seq_reopen_same(&x, "rekey then deltas");
	fx_done(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizes_roundtrip),
	    cmocka_unit_test(test_log_tags),
	    cmocka_unit_test(test_random_ops),
	    cmocka_unit_test(test_random_ops_tiny_cache),
	    cmocka_unit_test(test_sparse_far_write),
	    cmocka_unit_test(test_truncate),
	    cmocka_unit_test(test_append),
	    cmocka_unit_test(test_namespace),
	    cmocka_unit_test(test_unlink_while_open),
	    cmocka_unit_test(test_ephemeral),
	    cmocka_unit_test(test_plaintext_on_disk),
	    cmocka_unit_test(test_region_dir_made_again),
	    cmocka_unit_test(test_host_eintr),
	    cmocka_unit_test(test_freshness),
	    cmocka_unit_test(test_sync_with),
	    cmocka_unit_test(test_unsealed),
	    cmocka_unit_test(test_tamper_bit_flip),
	    cmocka_unit_test(test_tamper_authenticated_plaintext),
	    cmocka_unit_test(test_tamper_misplaced),
	    cmocka_unit_test(test_tamper_other_file_chunk),
	    cmocka_unit_test(test_tamper_truncated),
	    cmocka_unit_test(test_tamper_extended),
	    cmocka_unit_test(test_tamper_swapped),
	    cmocka_unit_test(test_tamper_missing),
	    cmocka_unit_test(test_tamper_unknown_file),
	    cmocka_unit_test(test_tamper_node),
	    cmocka_unit_test(test_tamper_fspf),
	    cmocka_unit_test(test_fspf_log_append_compact),
	    cmocka_unit_test(test_fspf_log_torn_append),
	    cmocka_unit_test(test_fspf_log_power_loss),
	    cmocka_unit_test(test_fspf_log_padding),
	    cmocka_unit_test(test_fspf_deltas),
	    cmocka_unit_test(test_fspf_delta_alone),
	    cmocka_unit_test(test_fspf_delta_room),
	    cmocka_unit_test(test_redo_one_flush),
	    cmocka_unit_test(test_delta_otrunc_empty_mtime),
	    cmocka_unit_test(test_fspf_torn_length_sector),
	    cmocka_unit_test(test_fspf_torn_state_sector),
	    cmocka_unit_test(test_delta_reopen_sequences),
	    cmocka_unit_test(test_fspf_versions),
	    cmocka_unit_test(test_tamper_header),
	    cmocka_unit_test(test_mtime_files),
	    cmocka_unit_test(test_mtime_dirs),
	    cmocka_unit_test(test_chmod),
	    cmocka_unit_test(test_mtime_old_versions),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_bad_paths),
	    cmocka_unit_test(test_read_only),
	    cmocka_unit_test(test_huge_offsets),
	    cmocka_unit_test(test_unstorable_names),
	    cmocka_unit_test(test_namespace_sibling_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
