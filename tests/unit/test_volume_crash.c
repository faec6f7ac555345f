/*
 * test_volume_crash.c - crash and I/O-error simulation for src/volume.
 *
 * A scripted workload (creates, writes, truncates, renames, unlinks,
 * several syncs) runs once on the memory backend to record, after each
 * sync, the expected contents and the number of mutating operations so far.
 * Then, for every N, it runs again on a fresh copy of the same starting
 * state with the backend "killed" after N operations (state frozen): the
 * volume must open with the last tag the workload saw returned (the disk
 * may be one commit ahead), show nothing odd on the host, and hold exactly
 * the contents of that sync point (or of the next one). The same with
 * failing I/O instead of a crash: the error surfaces, close still works,
 * the last good tag opens, and after the fault clears a retried sync
 * commits a consistent state. Seeded random workloads go through the same
 * checks at sampled fault points; two targeted tests pin the two-slot rule
 * after a truncate and a write that fails halfway.
 */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "volume/vio.h"
#include "volume/volume.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define FSPF "/vol/fspf"
#define MAX_ENTS 24
#define MAX_SYNCS 24

/* Flags every open of the crash runs adds (SCONE_VOL_REDO for the redo tests). */
static unsigned g_extra;

/* ---------------- deterministic data and a model of the namespace ---------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void fill(uint8_t *buf, size_t size, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
	for (size_t i = 0; i < size; i++) {
		if (i % 8 == 0) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
		}
		buf[i] = (uint8_t)(s >> (i % 8 * 8));
	}
}

struct ent {
	char path[64];
	bool dir;
	uint8_t *d;
	size_t size;
};

struct ns {
	struct ent e[MAX_ENTS];
	size_t n;
};

static struct ent *ns_find(struct ns *ns, const char *path)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->e[i].path, path) == 0)
			return &ns->e[i];
	return NULL;
}

static struct ent *ns_add(struct ns *ns, const char *path, bool dir)
{
	struct ent *e = &ns->e[ns->n++];
	assert_true(ns->n <= MAX_ENTS);
	memset(e, 0, sizeof(*e));
	snprintf(e->path, sizeof(e->path), "%s", path);
	e->dir = dir;
	return e;
}

static void ns_del(struct ns *ns, struct ent *e)
{
	free(e->d);
	*e = ns->e[--ns->n];
}

static void ent_resize(struct ent *e, size_t size)
{
	if (size > e->size) {
		e->d = realloc(e->d, size);
		assert_non_null(e->d);
		memset(e->d + e->size, 0, size - e->size);
	}
	e->size = size;
}

static void ns_free(struct ns *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->e[i].d);
	ns->n = 0;
}

static void ns_copy(struct ns *dst, const struct ns *src)
{
	*dst = *src;
	for (size_t i = 0; i < src->n; i++) {
		dst->e[i].d = NULL;
		if (src->e[i].size) {
			dst->e[i].d = malloc(src->e[i].size);
			assert_non_null(dst->e[i].d);
			memcpy(dst->e[i].d, src->e[i].d, src->e[i].size);
		}
	}
}

static bool persistent(const char *path)
{
	return strncmp(path, "/eph", 4) != 0;
}

/* ---------------- one run of the workload ---------------- */

struct run;
typedef void (*workload_fn)(struct run *r);

struct run {
	workload_fn script;
	uint64_t seed; /* for random workloads */
	struct scone_vio *io;
	struct scone_volume *v;
	const uint8_t *key;
	struct ns ns;		   /* the workload's view so far */
	struct ns snap[MAX_SYNCS]; /* at each completed sync (0: start) */
	uint8_t tags[MAX_SYNCS][SCONE_VOLUME_TAG_SIZE];
	long ops_at[MAX_SYNCS]; /* backend operations when sync k returned */
	unsigned syncs;		/* completed syncs + 1 */
	enum scone_err err;	/* first error, then the run stops */
	bool err_in_sync;
	char err_path[64]; /* file the failed operation touched */
	char err_detail[256];
	bool record;
	bool close_committed; /* close found something left to commit */
};

static bool alive(struct run *r, enum scone_err e, const char *path)
{
	if (r->err)
		return false;
	if (e) {
		r->err = e;
		snprintf(r->err_path, sizeof(r->err_path), "%s", path ? path : "");
		snprintf(r->err_detail, sizeof(r->err_detail), "%s", scone_err_detail());
	}
	return !e;
}

static void w_write(struct run *r, const char *path, size_t off, size_t size, uint64_t seed)
{
	struct scone_vfile *f;
	uint8_t *buf = malloc(size ? size : 1);
	enum scone_err e;
	struct ent *ent;

	assert_non_null(buf);
	fill(buf, size, seed);
	if (r->err) {
		free(buf);
		return;
	}
	e = scone_vfile_open(r->v, path, SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f);
	if (!e) {
		if (!ns_find(&r->ns, path))
			ns_add(&r->ns, path, false); /* created, even if the write fails */
		e = scone_vfile_pwrite(f, buf, size, off);
		scone_vfile_close(f);
	}
	if (alive(r, e, path)) {
		ent = ns_find(&r->ns, path);
		if (off + size > ent->size)
			ent_resize(ent, off + size);
		if (size)
			memcpy(ent->d + off, buf, size);
	}
	free(buf);
}

static void w_truncate(struct run *r, const char *path, size_t size)
{
	if (!r->err && alive(r, scone_volume_truncate(r->v, path, size), path))
		ent_resize(ns_find(&r->ns, path), size);
}

static void w_mkdir(struct run *r, const char *path)
{
	if (!r->err && alive(r, scone_volume_mkdir(r->v, path, 0700), path))
		ns_add(&r->ns, path, true);
}

static void w_rmdir(struct run *r, const char *path)
{
	if (!r->err && alive(r, scone_volume_rmdir(r->v, path), path))
		ns_del(&r->ns, ns_find(&r->ns, path));
}

static void w_unlink(struct run *r, const char *path)
{
	if (!r->err && alive(r, scone_volume_unlink(r->v, path), path))
		ns_del(&r->ns, ns_find(&r->ns, path));
}

static void w_rename(struct run *r, const char *from, const char *to)
{
	size_t fl = strlen(from);
	struct ent *dst;

	if (r->err || !alive(r, scone_volume_rename(r->v, from, to), from))
		return;
	dst = ns_find(&r->ns, to);
	if (dst)
		ns_del(&r->ns, dst);
	for (size_t i = 0; i < r->ns.n; i++) {
		struct ent *e = &r->ns.e[i];
		char tmp[64];
		if (strncmp(e->path, from, fl) == 0 && (e->path[fl] == '\0' || e->path[fl] == '/')) {
			snprintf(tmp, sizeof(tmp), "%s%s", to, e->path + fl);
			snprintf(e->path, sizeof(e->path), "%s", tmp);
		}
	}
}

static void w_sync(struct run *r)
{
	enum scone_err e;

	if (r->err)
		return;
	e = scone_volume_sync(r->v);
	r->err_in_sync = e != SCONE_ERR_OK;
	if (!alive(r, e, NULL))
		return;
	assert_true(r->syncs < MAX_SYNCS);
	scone_volume_tag(r->v, r->tags[r->syncs]);
	r->ops_at[r->syncs] = scone_vio_mem_op_count(r->io);
	if (r->record)
		ns_copy(&r->snap[r->syncs], &r->ns);
	r->syncs++;
}

/* Closing commits too (e.g. the shortened list of deleted files): a sync point of its own. */
static void w_close(struct run *r)
{
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	enum scone_err e;

	if (r->err)
		return;
	e = scone_volume_close(r->v, tag);
	r->v = NULL;
	r->err_in_sync = e != SCONE_ERR_OK;
	if (!alive(r, e, NULL))
		return;
	if (memcmp(tag, r->tags[r->syncs - 1], sizeof(tag)) == 0)
		return;
	r->close_committed = true;
	assert_true(r->syncs < MAX_SYNCS);
	memcpy(r->tags[r->syncs], tag, sizeof(tag));
	r->ops_at[r->syncs] = scone_vio_mem_op_count(r->io);
	if (r->record)
		ns_copy(&r->snap[r->syncs], &r->ns);
	r->syncs++;
}

static void workload(struct run *r)
{
	/* epoch 1: new files, one spanning two nodes, a directory */
	w_write(r, "/enc/a", 0, 100000, 1);
	w_write(r, "/auth/b", 0, 5000, 2);
	w_mkdir(r, "/enc/d");
	w_write(r, "/enc/d/c", 0, 300000, 3);
	w_write(r, "/eph/e", 0, 1000, 4);
	w_sync(r);
	/* epoch 2: partial chunks, append, truncate, rename */
	w_write(r, "/enc/a", 5000, 300, 5);
	w_write(r, "/auth/b", 5000, 9000, 6);
	w_truncate(r, "/enc/d/c", 70000);
	w_rename(r, "/enc/a", "/enc/d/a2");
	w_write(r, "/enc/d/c", 20000, 10, 7);
	w_sync(r);
	/* epoch 3: rewrite a chunk, cut it off, write it again in the same epoch */
	w_write(r, "/enc/d/a2", 5 * 4096, 4096, 8);
	w_truncate(r, "/enc/d/a2", 4 * 4096 + 100);
	w_write(r, "/enc/d/a2", 5 * 4096, 4096, 9);
	w_write(r, "/enc/d/a2", 7 * 4096 + 5, 10, 10);
	w_unlink(r, "/auth/b");
	w_write(r, "/auth/e2", 0, 10000, 11);
	w_sync(r);
	/* epoch 4: to zero and regrow, sparse growth, rename over a file */
	w_truncate(r, "/enc/d/a2", 0);
	w_write(r, "/enc/d/a2", 0, 8192, 12);
	w_write(r, "/enc/d/c", 600000, 100, 13);
	w_rename(r, "/enc/d/c", "/enc/d/a2");
	w_write(r, "/enc/d/a2", 1000, 5000, 14);
	w_write(r, "/enc/f", 0, 0, 15);
	w_sync(r);
	/* epoch 5: grow by truncate, a file of five nodes, directories */
	w_truncate(r, "/enc/d/a2", 1 << 20);
	w_write(r, "/enc/big", 0, 1100000, 16);
	w_mkdir(r, "/auth/x");
	w_mkdir(r, "/auth/x/y");
	w_rmdir(r, "/auth/x/y");
	w_sync(r);
	/* epoch 6: across node boundaries, drop nodes, regrow sparse, rename a directory */
	w_write(r, "/enc/big", 64 * 4096 * 2 - 10, 5000, 17);
	w_truncate(r, "/enc/big", 64 * 4096 + 3);
	w_write(r, "/enc/big", 64 * 4096 * 3, 4096, 18);
	w_write(r, "/enc/big", 64 * 4096 + 1, 4096, 19);
	w_rename(r, "/enc/d", "/enc/d2");
	w_unlink(r, "/enc/f");
	w_write(r, "/auth/e2", 4096, 3, 20);
	w_sync(r);
	w_close(r);
}

/*
 * A database's pattern: files made once, then commits that change only
 * contents (a log's tail block rewritten, pages here and there), whose
 * records carry the blocks they wrote; among them a commit too large for
 * its record, a shrink, and a rename (records without blocks, after a
 * checkpoint), and blocks rewritten across all of those.
 */
static void workload_wal(struct run *r)
{
	w_write(r, "/enc/log", 0, 3000, 31);
	w_write(r, "/enc/db", 0, 300000, 32);
	w_write(r, "/auth/meta", 0, 5000, 33);
	w_sync(r);
	for (unsigned i = 0; i < 6; i++) {
		w_write(r, "/enc/log", 3000 + i * 700, 700, 40 + i);
		if (i % 2)
			w_write(r, "/enc/db", (i * 37 % 64) * 4096 + 100, 5000, 50 + i);
		w_sync(r);
	}
	w_write(r, "/enc/db", 0, 300000, 60); /* too large for a record */
	w_sync(r);
	w_write(r, "/enc/log", 100, 50, 61);
	w_write(r, "/auth/meta", 4000, 2000, 62);
	w_write(r, "/enc/db", 4096, 4096, 63);
	w_sync(r);
	w_write(r, "/enc/db", 4096, 4096, 64); /* the same pair again, then by a full record */
	w_rename(r, "/auth/meta", "/auth/meta2");
	w_sync(r);
	w_write(r, "/enc/db", 4096, 4096, 65);
	w_sync(r);
	w_truncate(r, "/enc/db", 5000);
	w_write(r, "/enc/log", 200, 50, 66);
	w_sync(r);
	w_write(r, "/enc/db", 4000, 3000, 67);
	w_write(r, "/enc/log", 7000, 9000, 68);
	w_sync(r);
	w_close(r);
}

/* Seeded random operations on five files in two regions, with syncs in between. */
static void workload_random(struct run *r)
{
	static const char *const paths[] = {"/enc/r0", "/enc/r1", "/enc/sub/r2", "/auth/r3", "/auth/r4"};
	uint64_t s = r->seed;

	w_mkdir(r, "/enc/sub");
	for (unsigned i = 0; i < 60 && !r->err; i++) {
		const char *p = paths[rng_next(&s) % N_ELEMS(paths)],
			   *q = paths[rng_next(&s) % N_ELEMS(paths)];
		struct ent *e = ns_find(&r->ns, p);
		unsigned op = (unsigned)(rng_next(&s) % 100);
		if (op < 50 || !e) {
			size_t off = (size_t)(rng_next(&s) % 600000);
			size_t size = 1 + (size_t)(rng_next(&s) % (op % 4 ? 9000 : 200000));
			if (op % 3 == 0)
				off -= off % 4096;
			w_write(r, p, off, size, rng_next(&s));
		} else if (op < 68) {
			w_truncate(r, p, (size_t)(rng_next(&s) % (e->size + 300000)));
		} else if (op < 78) {
			if (p != q && strncmp(p, q, 5) == 0) /* same region */
				w_rename(r, p, q);
		} else if (op < 84) {
			w_unlink(r, p);
		} else if (r->syncs < MAX_SYNCS - 3) {
			w_sync(r);
		}
	}
	w_sync(r);
	w_close(r);
}

/* The sealed, empty volume every run starts from. */
static void make_base(struct scone_vio **io, uint8_t key[static SCONE_VOLUME_KEY_SIZE],
		      uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	struct scone_volume *v;

	assert_ok(scone_vio_mem_new(io));
	assert_ok(scone_volume_create_at(*io, FSPF));
	assert_ok(scone_volume_open_at(*io, FSPF, NULL, NULL, SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED, &v));
	assert_ok(scone_volume_add_region(v, "/enc", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, "enc"));
	assert_ok(
	    scone_volume_add_region(v, "/auth", SCONE_REGION_AUTHENTICATED, SCONE_STORE_KERNEL, "auth"));
	assert_ok(scone_volume_add_region(v, "/eph", SCONE_REGION_ENCRYPTED, SCONE_STORE_EPHEMERAL, NULL));
	assert_ok(scone_volume_seal(v, NULL, key, tag));
	assert_ok(scone_volume_close(v, NULL));
}

/* Start a run on a copy of base; faults begin after n more operations (n < 0: none). */
static void run_start(struct run *r, const struct run *like, struct scone_vio *base, const uint8_t *key,
		      const uint8_t *tag, long n, bool crash, bool record)
{
	memset(r, 0, sizeof(*r));
	r->script = like->script;
	r->seed = like->seed;
	r->key = key;
	r->record = record;
	assert_ok(scone_vio_mem_clone(base, &r->io));
	assert_ok(scone_volume_open_at(r->io, FSPF, key, tag, SCONE_VOL_RDWR | g_extra, &r->v));
	memcpy(r->tags[0], tag, SCONE_VOLUME_TAG_SIZE);
	if (record)
		ns_copy(&r->snap[0], &r->ns);
	r->syncs = 1;
	if (n >= 0)
		scone_vio_mem_fail_after(r->io, n, crash);
}

static void run_free(struct run *r)
{
	ns_free(&r->ns);
	for (unsigned k = 0; k < MAX_SYNCS; k++)
		ns_free(&r->snap[k]);
	if (r->io)
		r->io->ops->destroy(r->io);
}

/* ---------------- checking a recovered volume ---------------- */

struct seen {
	char paths[MAX_ENTS + 8][64];
	struct scone_vstat st[MAX_ENTS + 8];
	size_t n;
};

static int on_walk(void *arg, const char *path, const struct scone_vstat *st)
{
	struct seen *s = arg;

	if (s->n < N_ELEMS(s->paths)) {
		snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", path);
		s->st[s->n] = *st;
	}
	s->n++;
	return 0;
}

static void on_problem(void *arg, enum scone_err err, const char *message)
{
	const char *ctx = arg;
	fail_msg("%s: host check: %s: %s", ctx, scone_errname(err), message);
}

static enum scone_err read_file(struct scone_volume *v, const char *path, size_t size, uint8_t **out)
{
	struct scone_vfile *f;
	uint8_t *buf = malloc(size + 1);
	size_t got = 0;
	enum scone_err err;

	assert_non_null(buf);
	err = scone_vfile_open(v, path, SCONE_VF_RDONLY, 0, &f);
	if (!err) {
		err = scone_vfile_pread(f, buf, size + 1, 0, &got);
		scone_vfile_close(f);
	}
	if (!err && got != size)
		err = scone_err_set(SCONE_ERR_INVALID, "%s: read %zu bytes, want %zu", path, got, size);
	*out = buf;
	return err;
}

/*
 * The volume holds exactly the persistent entries of want. skip names a file
 * whose content is unspecified (a write that failed): it must read without
 * error, at any size.
 */
static void check_contents(struct scone_volume *v, const struct ns *want, const char *ctx, const char *skip)
{
	struct seen s = {.n = 0};
	size_t expected = 0;

	scone_volume_walk(v, on_walk, &s);
	for (size_t i = 0; i < want->n; i++)
		expected += persistent(want->e[i].path);
	if (s.n != expected)
		fail_msg("%s: %zu entries in the volume, want %zu", ctx, s.n, expected);
	for (size_t i = 0; i < s.n; i++) {
		const struct ent *e = ns_find((struct ns *)want, s.paths[i]);
		uint8_t *buf;
		enum scone_err err;
		if (!e)
			fail_msg("%s: unexpected entry %s", ctx, s.paths[i]);
		if (e->dir != s.st[i].is_dir)
			fail_msg("%s: %s: wrong type", ctx, e->path);
		if (e->dir)
			continue;
		if (skip && strcmp(skip, e->path) == 0) {
			err = read_file(v, e->path, s.st[i].size, &buf);
		} else {
			if (s.st[i].size != e->size)
				fail_msg("%s: %s: size %llu, want %zu", ctx, e->path,
					 (unsigned long long)s.st[i].size, e->size);
			err = read_file(v, e->path, e->size, &buf);
			if (!err && e->size && memcmp(buf, e->d, e->size) != 0)
				fail_msg("%s: %s: content differs", ctx, e->path);
		}
		if (err)
			fail_msg("%s: %s: %s: %s", ctx, e->path, scone_errname(err), scone_err_detail());
		free(buf);
	}
}

/* After recovery the volume keeps working: one more commit, still clean. */
static void check_usable(struct scone_volume *v, const char *ctx)
{
	struct scone_vfile *f;

	assert_ok(scone_vfile_open(v, "/enc/after", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	assert_ok(scone_vfile_pwrite(f, "after", 5, 70000));
	scone_vfile_close(f);
	assert_ok(scone_volume_sync(v));
	assert_ok(scone_volume_check_host(v, on_problem, (void *)ctx));
	assert_ok(scone_volume_unlink(v, "/enc/after"));
	assert_ok(scone_volume_sync(v));
	assert_ok(scone_volume_check_host(v, on_problem, (void *)ctx));
}

struct ref {
	struct scone_vio *base;
	uint8_t key[SCONE_VOLUME_KEY_SIZE];
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	struct run r; /* the run without faults */
	long total;
};

static void ref_make(struct ref *ref, workload_fn script, uint64_t seed)
{
	struct run like = {.script = script, .seed = seed};

	make_base(&ref->base, ref->key, ref->tag);
	run_start(&ref->r, &like, ref->base, ref->key, ref->tag, -1, false, true);
	script(&ref->r);
	assert_ok(ref->r.err);
	assert_false(ref->r.close_committed); /* the workloads end with a sync: close adds no commit */
	ref->total = scone_vio_mem_op_count(ref->r.io);
	assert_true(ref->r.syncs >= 4);
	assert_true(ref->total > 50);
}

static void ref_free(struct ref *ref)
{
	run_free(&ref->r);
	ref->base->ops->destroy(ref->base);
}

/* Fault points 0..total (crash/error after n operations), every stride-th. */
#define FOR_POINTS(ref, n, stride) for (long n = (ref)->r.seed % (stride); n <= (ref)->total; n += (stride))

/* Open the frozen disk expecting the state of sync k (or the next); on failure, say which state it holds. */
static struct scone_volume *open_after(struct run *r, const uint8_t *key, unsigned k, const char *ctx)
{
	struct scone_volume *v;
	uint8_t disk[SCONE_VOLUME_TAG_SIZE];

	if (scone_volume_open_at(r->io, FSPF, key, r->tags[k], SCONE_VOL_RDWR | g_extra, &v) == SCONE_ERR_OK)
		return v;
	fprintf(stderr, "%s: open: %s\n", ctx, scone_err_detail());
	if (scone_volume_open_at(r->io, FSPF, key, NULL, SCONE_VOL_RDONLY, &v) == SCONE_ERR_OK) {
		scone_volume_tag(v, disk);
		for (unsigned t = 0; t < r->syncs; t++)
			if (memcmp(disk, r->tags[t], sizeof(disk)) == 0)
				fprintf(stderr, "(the disk holds the state of sync %u)\n", t);
	}
	fail_msg("%s: the volume does not open", ctx);
	return NULL;
}

/* What a crash loses besides the operations it cut off (scone_vio_mem_lose_unsynced). */
#define KEEP_UNSYNCED (-1) /* nothing: every write made reached the disk */
#define LOSE_UNSYNCED 0	   /* every write and size change since its file's last sync */

static void crash_points(workload_fn script, uint64_t seed, long stride, long long lose)
{
	struct ref ref;
	char ctx[128];

	ref_make(&ref, script, seed);
	FOR_POINTS(&ref, n, stride)
	{
		struct run r;
		struct scone_volume *v;
		uint8_t disk[SCONE_VOLUME_TAG_SIZE];
		unsigned k = 0, at;

		run_start(&r, &ref.r, ref.base, ref.key, ref.tag, n, true, false);
		r.script(&r);
		if (r.v &&
		    scone_volume_close(r.v, NULL) != SCONE_ERR_OK) /* stopped early; writes are dropped */
			scone_err_clear();
		scone_vio_mem_fail_after(r.io, -1, false); /* the frozen disk, used by a new process */
		if (lose != KEEP_UNSYNCED) /* a power loss: what no sync made durable may be gone */
			assert_ok(scone_vio_mem_lose_unsynced(
			    r.io, lose == LOSE_UNSYNCED ? 0 : (uint64_t)lose + (uint64_t)n));
		/*
		 * The last sync the process saw return before it was killed. (A
		 * sync's own flush is no operation: killed right after the last
		 * write of a commit, the process may not have flushed it, which a
		 * power loss then shows.)
		 */
		while (k + 1 < ref.r.syncs &&
		       (lose == KEEP_UNSYNCED ? ref.r.ops_at[k + 1] <= n : ref.r.ops_at[k + 1] < n))
			k++;
		snprintf(ctx, sizeof(ctx),
			 "seed %llu: crash after %ld of %ld operations (last sync %u, lose %lld)",
			 (unsigned long long)seed, n, ref.total, k, lose);
		v = open_after(&r, ref.key, k, ctx);
		scone_volume_tag(v, disk);
		at = k;
		if (memcmp(disk, r.tags[k], sizeof(disk)) != 0) {
			at = k + 1; /* one commit ahead */
			if (at >= r.syncs || memcmp(disk, r.tags[at], sizeof(disk)) != 0)
				fail_msg("%s: the disk is at an unknown state", ctx);
		}
		assert_ok(scone_volume_check_host(v, on_problem, ctx));
		check_contents(v, &ref.r.snap[at], ctx, NULL);
		check_usable(v, ctx);
		assert_ok(scone_volume_close(v, NULL));
		run_free(&r);
	}
	ref_free(&ref);
}

/* I/O errors instead of a crash: close works, the last good tag opens at its state. */
static void error_points(workload_fn script, uint64_t seed, long stride)
{
	struct ref ref;
	char ctx[128];

	ref_make(&ref, script, seed);
	FOR_POINTS(&ref, n, stride)
	{
		struct run r;
		struct scone_volume *v;
		uint8_t disk[SCONE_VOLUME_TAG_SIZE];
		unsigned k;

		run_start(&r, &ref.r, ref.base, ref.key, ref.tag, n, false, false);
		r.script(&r);
		k = r.syncs - 1;
		snprintf(ctx, sizeof(ctx), "seed %llu: I/O error after %ld of %ld operations (last sync %u)",
			 (unsigned long long)seed, n, ref.total, k);
		/*
		 * No error surfaces only when what failed was clean-up after the
		 * last commit (then close may have nothing left to commit).
		 */
		if (!r.err && r.syncs + 1 < ref.r.syncs)
			fail_msg("%s: no error surfaced", ctx);
		if (r.err) {
			assert_int_equal(r.err, SCONE_ERR_IO);
			if (!strstr(r.err_detail, "injected"))
				fail_msg("%s: detail '%s'", ctx, r.err_detail);
		}
		if (r.v && r.err_in_sync && scone_volume_close(r.v, NULL) == SCONE_ERR_OK)
			fail_msg("%s: close after a failed sync reported success", ctx);
		if (r.v && !r.err_in_sync && scone_volume_close(r.v, NULL) != SCONE_ERR_OK)
			scone_err_clear(); /* fails too, unless nothing was left to commit */
		scone_vio_mem_fail_after(r.io, -1, false);
		v = open_after(&r, ref.key, k, ctx);
		scone_volume_tag(v, disk);
		assert_memory_equal(disk, r.tags[k], sizeof(disk));
		assert_ok(scone_volume_check_host(v, on_problem, ctx));
		check_contents(v, &ref.r.snap[k], ctx, NULL);
		check_usable(v, ctx);
		assert_ok(scone_volume_close(v, NULL));
		run_free(&r);
	}
	ref_free(&ref);
}

/*
 * A transient I/O error: after it clears, a sync commits what the workload
 * did (a failed write leaves its file readable with unspecified content).
 */
static void retry_points(workload_fn script, uint64_t seed, long stride)
{
	struct ref ref;
	char ctx[192];

	ref_make(&ref, script, seed);
	FOR_POINTS(&ref, n, stride)
	{
		struct run r;
		struct scone_volume *v;
		uint8_t tag[SCONE_VOLUME_TAG_SIZE];
		enum scone_err err;

		run_start(&r, &ref.r, ref.base, ref.key, ref.tag, n, false, false);
		r.script(&r);
		snprintf(ctx, sizeof(ctx),
			 "seed %llu: retry after an I/O error at operation %ld of %ld (%s%s)",
			 (unsigned long long)seed, n, ref.total, r.err_in_sync ? "in sync" : "in ",
			 r.err_in_sync ? "" : r.err_path);
		if (!r.err) /* only clean-up after the last commit failed */
			assert_true(r.syncs + 1 >= ref.r.syncs);
		else
			assert_int_equal(r.err, SCONE_ERR_IO);
		scone_vio_mem_fail_after(r.io, -1, false);
		if (!r.v) {
			/* close ran or failed (the volume is gone): the last good sync's state stays */
			memcpy(tag, r.tags[r.syncs - 1], sizeof(tag));
			ns_free(&r.ns);
			ns_copy(&r.ns, &ref.r.snap[r.syncs - 1]);
			r.err_in_sync = true;
		} else {
			err = scone_volume_sync(r.v);
			if (err)
				fail_msg("%s: sync: %s: %s", ctx, scone_errname(err), scone_err_detail());
			err = scone_volume_close(r.v, tag);
			if (err)
				fail_msg("%s: close: %s: %s", ctx, scone_errname(err), scone_err_detail());
		}
		if (scone_volume_open_at(r.io, FSPF, ref.key, tag, SCONE_VOL_RDWR | g_extra, &v) !=
		    SCONE_ERR_OK)
			fail_msg("%s: open: %s", ctx, scone_err_detail());
		assert_ok(scone_volume_check_host(v, on_problem, ctx));
		check_contents(v, &r.ns, ctx, r.err_in_sync ? NULL : r.err_path);
		assert_ok(scone_volume_close(v, NULL));
		run_free(&r);
	}
	ref_free(&ref);
}

/* ---------------- tests ---------------- */

TEST(test_crash_every_point)
{
	crash_points(workload, 0, 1, KEEP_UNSYNCED);
}

/*
 * A power loss at every point: every write no sync made durable is gone.
 * (Not some of them at random, as below for commits that carry their
 * blocks: a growth whose size reached the disk while the header block
 * that vouches for it did not reads as EXTENDED after the next commit;
 * docs/volume-format.md, "Redo blocks".)
 */
TEST(test_crash_lost_writes_every_point)
{
	crash_points(workload, 0, 1, LOSE_UNSYNCED);
}

/* Commits whose records carry their blocks (one flush each), crashed at every point. */
TEST(test_crash_redo_every_point)
{
	g_extra = SCONE_VOL_REDO;
	crash_points(workload_wal, 0, 1, KEEP_UNSYNCED);
	crash_points(workload_wal, 0, 1, LOSE_UNSYNCED);
	crash_points(workload_wal, 0, 1, 2000);
	crash_points(workload_wal, 0, 1, 3000);
	crash_points(workload, 0, 1, LOSE_UNSYNCED); /* (namespace changes: full records that carry blocks) */
	g_extra = 0;
}

TEST(test_io_error_every_point)
{
	error_points(workload, 0, 1);
}

TEST(test_io_error_then_retry)
{
	retry_points(workload, 0, 1);
}

static const uint64_t random_seeds[] = {0x5eed1, 0x5eed2};

/* Random workloads: about 40 fault points each, different ones per seed. */
static long random_stride(uint64_t seed)
{
	struct ref ref;
	long stride;

	ref_make(&ref, workload_random, seed);
	stride = ref.total / 40 + 1;
	ref_free(&ref);
	return stride;
}

TEST(test_crash_random)
{
	for (size_t i = 0; i < N_ELEMS(random_seeds); i++) {
		crash_points(workload_random, random_seeds[i], random_stride(random_seeds[i]), KEEP_UNSYNCED);
		crash_points(workload_random, random_seeds[i], random_stride(random_seeds[i]), LOSE_UNSYNCED);
	}
}

TEST(test_io_error_random)
{
	for (size_t i = 0; i < N_ELEMS(random_seeds); i++) {
		error_points(workload_random, random_seeds[i], random_stride(random_seeds[i]));
		retry_points(workload_random, random_seeds[i], random_stride(random_seeds[i]));
	}
}

/*
 * The two-slot rule in one epoch: a chunk rewritten, cut off by a truncate
 * and written again must never land in the slot the committed tree uses.
 */
TEST(test_crash_rewrite_after_truncate)
{
	struct scone_vio *io, *frozen;
	struct scone_volume *v;
	struct scone_vfile *f;
	uint8_t key[SCONE_VOLUME_KEY_SIZE], tag[SCONE_VOLUME_TAG_SIZE], t1[SCONE_VOLUME_TAG_SIZE];
	uint8_t a[8 * 4096], b[4096], *got;

	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	make_base(&io, key, tag);
	assert_ok(scone_volume_open_at(io, FSPF, key, tag, SCONE_VOL_RDWR, &v));
	assert_ok(scone_vfile_open(v, "/enc/f", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	assert_ok(scone_vfile_pwrite(f, a, sizeof(a), 0));
	assert_ok(scone_volume_sync(v));
	scone_volume_tag(v, t1);
	assert_ok(scone_vfile_pwrite(f, b, sizeof(b), 5 * 4096));
	assert_ok(scone_vfile_truncate(f, 4 * 4096 + 100));
	assert_ok(scone_vfile_pwrite(f, b, sizeof(b), 5 * 4096));
	assert_ok(scone_vfile_truncate(f, 3 * 4096));
	assert_ok(scone_vfile_truncate(f, 8 * 4096));
	assert_ok(scone_vfile_pwrite(f, b, 100, 6 * 4096 + 7));
	/* the process dies here: the disk must still hold the committed state */
	assert_ok(scone_vio_mem_clone(io, &frozen));
	scone_vfile_close(f);
	assert_ok(scone_volume_close(v, NULL));
	assert_ok(scone_volume_open_at(frozen, FSPF, key, t1, SCONE_VOL_RDONLY, &v));
	{
		enum scone_err err = read_file(v, "/enc/f", sizeof(a), &got);
		if (err)
			fail_msg("committed state damaged: %s: %s", scone_errname(err), scone_err_detail());
	}
	assert_memory_equal(got, a, sizeof(a));
	free(got);
	assert_ok(scone_volume_close(v, NULL));
	frozen->ops->destroy(frozen);
	io->ops->destroy(io);
}

/*
 * A write past the end fails halfway (the second of its host writes): what
 * reached the disk counts like a short write (scone_vfile_pwrite_some says
 * how much: the runtime returns that count to the program, as write(2)
 * does), and whatever did not must not surface later, e.g. when the file is
 * extended (that must read zeros).
 */
TEST(test_failed_write_then_extend)
{
	struct scone_vio *io;
	struct scone_volume *v;
	struct scone_vfile *f;
	struct scone_vstat st;
	uint8_t key[SCONE_VOLUME_KEY_SIZE], tag[SCONE_VOLUME_TAG_SIZE];
	const size_t total = 100 * 4096;
	uint8_t *d = malloc(total), *got;
	size_t size, written = 1;

	assert_non_null(d);
	fill(d, total, 3);
	make_base(&io, key, tag);
	assert_ok(scone_volume_open_at(io, FSPF, key, tag, SCONE_VOL_RDWR, &v));
	assert_ok(scone_vfile_open(v, "/enc/f", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	/* growth claim, host file size, chunks 0-63 (one write), then chunks 64-99 fail */
	scone_vio_mem_fail_after(io, 3, false);
	assert_int_equal(scone_vfile_pwrite_some(f, d, total, 0, &written), SCONE_ERR_IO);
	scone_vio_mem_fail_after(io, -1, false);
	assert_ok(scone_vfile_stat(f, &st));
	size = (size_t)st.size;
	assert_true(size == 0 || size == 64 * 4096);
	assert_int_equal(written, size); /* the count given is what the file holds */
	assert_ok(scone_vfile_truncate(f, total));
	scone_vfile_close(f);
	for (int round = 0; round < 2; round++) {
		assert_ok(read_file(v, "/enc/f", total, &got));
		assert_memory_equal(got, d, size);
		for (size_t i = size; i < total; i++)
			if (got[i])
				fail_msg("byte %zu of the extension is %u, want 0 (round %d)", i, got[i],
					 round);
		free(got);
		assert_ok(scone_volume_close(v, tag));
		assert_ok(scone_volume_open_at(io, FSPF, key, tag, SCONE_VOL_RDWR, &v));
	}
	assert_ok(scone_volume_close(v, NULL));
	io->ops->destroy(io);
	free(d);
}

/*
 * An append across a chunk boundary whose host writes fail at each point in
 * turn: scone_vfile_append_some reports exactly the prefix that is now in
 * the file (what the runtime hands the program as a short write), and some
 * point leaves a strict, non-empty prefix.
 */
TEST(test_failed_append_is_short)
{
	uint8_t key[SCONE_VOLUME_KEY_SIZE], tag[SCONE_VOLUME_TAG_SIZE], a[4085], rec[117], *got;
	struct scone_vio *base;
	bool partial = false;

	fill(a, sizeof(a), 21);
	fill(rec, sizeof(rec), 22);
	make_base(&base, key, tag);
	for (long k = 0; k < 16; k++) {
		struct scone_vio *io;
		struct scone_volume *v;
		struct scone_vfile *f;
		struct scone_vstat st;
		size_t written = 1;
		uint64_t at;
		enum scone_err err;

		assert_ok(scone_vio_mem_clone(base, &io));
		assert_ok(scone_volume_open_at(io, FSPF, key, tag, SCONE_VOL_RDWR, &v));
		assert_ok(scone_vfile_open(v, "/enc/f", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
		assert_ok(scone_vfile_pwrite(f, a, sizeof(a), 0));
		assert_ok(scone_volume_sync(v));
		scone_vio_mem_fail_after(io, k, false);
		err = scone_vfile_append_some(f, rec, sizeof(rec), &at, &written);
		scone_vio_mem_fail_after(io, -1, false);
		scone_err_clear();
		assert_int_equal(at, sizeof(a));
		assert_true(written <= sizeof(rec));
		assert_true(err != SCONE_ERR_OK || written == sizeof(rec));
		assert_ok(scone_vfile_stat(f, &st));
		assert_int_equal(st.size, sizeof(a) + written);
		scone_vfile_close(f);
		assert_ok(read_file(v, "/enc/f", sizeof(a) + written, &got));
		assert_memory_equal(got, a, sizeof(a));
		assert_memory_equal(got + sizeof(a), rec, written);
		free(got);
		if (err && written > 0)
			partial = true;
		if (scone_volume_close(v, NULL) != SCONE_ERR_OK)
			scone_err_clear();
		io->ops->destroy(io);
		if (err == SCONE_ERR_OK)
			break;
	}
	assert_true(partial);
	base->ops->destroy(base);
}

/*
 * A commit whose record was written whole but whose sync failed (the record
 * itself, or the directory after the rename): the disk may hold the new
 * state, whose blocks sit in the slots the next writes take. For every
 * sync of a commit failing: later writes and syncs must not touch those
 * blocks, so that a process dying at any moment after leaves a volume that
 * opens with the last good tag and reads the old or the new content, intact.
 */
TEST(test_failed_record_sync)
{
	uint8_t key[SCONE_VOLUME_KEY_SIZE], tag[SCONE_VOLUME_TAG_SIZE], t1[SCONE_VOLUME_TAG_SIZE];
	uint8_t a[8 * 4096], b[8 * 4096], c[8 * 4096], *got;
	struct scone_vio *base;
	bool failed_after_record = false;

	fill(a, sizeof(a), 11);
	fill(b, sizeof(b), 12);
	fill(c, sizeof(c), 13);
	make_base(&base, key, tag);
	for (long k = 0; k < 8; k++) {
		struct scone_vio *io, *frozen;
		struct scone_volume *v;
		struct scone_vfile *f;
		enum scone_err err;
		char ctx[96];

		snprintf(ctx, sizeof(ctx), "sync %ld of the commit fails", k + 1);
		assert_ok(scone_vio_mem_clone(base, &io));
		assert_ok(scone_volume_open_at(io, FSPF, key, tag, SCONE_VOL_RDWR, &v));
		assert_ok(scone_vfile_open(v, "/enc/f", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
		assert_ok(scone_vfile_pwrite(f, a, sizeof(a), 0));
		assert_ok(scone_volume_sync(v));
		scone_volume_tag(v, t1);
		assert_ok(scone_vfile_pwrite(f, b, sizeof(b), 0));
		scone_vio_mem_fail_syncs(io, k);
		err = scone_volume_sync(v);
		scone_vio_mem_fail_syncs(io, -1); /* the fault is gone */
		scone_err_clear();
		if (err == SCONE_ERR_OK) { /* every sync of the commit passed */
			scone_vfile_close(f);
			assert_ok(scone_volume_close(v, NULL));
			io->ops->destroy(io);
			break;
		}
		assert_int_equal(err, SCONE_ERR_IO);
		/* The program goes on writing over the same bytes, then dies. */
		if (scone_vfile_pwrite(f, c, sizeof(c), 0) != SCONE_ERR_OK) {
			failed_after_record = true;
			assert_int_equal(scone_volume_sync(v), SCONE_ERR_IO);
		}
		scone_err_clear();
		assert_ok(scone_vio_mem_clone(io, &frozen));
		scone_vfile_close(f);
		if (scone_volume_close(v, NULL) != SCONE_ERR_OK)
			scone_err_clear(); /* it cannot commit either */
		if ((err = scone_volume_open_at(frozen, FSPF, key, t1, SCONE_VOL_RDONLY, &v)))
			fail_msg("%s: open with the last good tag: %s: %s", ctx, scone_errname(err),
				 scone_err_detail());
		if ((err = read_file(v, "/enc/f", sizeof(a), &got)))
			fail_msg("%s: the file is damaged: %s: %s", ctx, scone_errname(err),
				 scone_err_detail());
		if (memcmp(got, a, sizeof(a)) != 0 && memcmp(got, b, sizeof(b)) != 0)
			fail_msg("%s: the file holds neither the committed nor the failed commit's content",
				 ctx);
		free(got);
		assert_ok(scone_volume_close(v, NULL));
		frozen->ops->destroy(frozen);
		io->ops->destroy(io);
	}
	assert_true(failed_after_record);
	base->ops->destroy(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crash_rewrite_after_truncate),
	    cmocka_unit_test(test_failed_write_then_extend),
	    cmocka_unit_test(test_failed_append_is_short),
	    cmocka_unit_test(test_failed_record_sync),
	    cmocka_unit_test(test_crash_every_point),
	    cmocka_unit_test(test_crash_lost_writes_every_point),
	    cmocka_unit_test(test_crash_redo_every_point),
	    cmocka_unit_test(test_io_error_every_point),
	    cmocka_unit_test(test_io_error_then_retry),
	    cmocka_unit_test(test_crash_random),
	    cmocka_unit_test(test_io_error_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
