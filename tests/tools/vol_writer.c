/*
 * vol_writer.c - a writer of a sealed volume that can be killed at any
 * moment, and a checker of what it left (driven by
 * tests/integration/test_crash.sh).
 *
 *   vol_writer [--iterations N] FSPF KEY TAG
 *       Open the volume read-write, resume from the iteration recorded in
 *       /data/state (0 when absent), check that the volume holds exactly
 *       that iteration's content, print "OPENED <iteration> <tag>", then
 *       loop: apply iteration i+1 (appends, overwrites at random offsets,
 *       truncates, a new file every few iterations, a rename or an unlink
 *       now and then, /data/state = i+1), scone_volume_sync, print
 *       "SYNCED <i+1> <tag>" and flush. Runs until killed (or N iterations).
 *       A clean end (N iterations) closes the volume and prints
 *       "CLOSED <iteration> <tag>" with the tag close returned.
 *   vol_writer --abandon FSPF KEY TAG
 *       Resume as above, apply the next iteration without committing it,
 *       print "ABANDONED <iteration>" and _exit: a deterministic crash just
 *       before the commit.
 *   vol_writer --iterations N --unreported FSPF KEY TAG
 *       The same, but the last iteration's commit is not printed and the
 *       process _exits right after it: a writer killed between its commit
 *       and reporting the new tag.
 *   vol_writer --check EXPECT FSPF KEY TAG
 *       Open read-only with TAG; the volume must hold iteration EXPECT (the
 *       state TAG names) or EXPECT+1 (one commit past TAG: the writer was
 *       killed after the commit, before it printed the tag; the library
 *       accepts that), and its files exactly that iteration's content.
 *       The current tag must equal TAG exactly when the iteration is EXPECT.
 *       Prints "CHECK OK iteration=I expected=E (same|one ahead) tag=T".
 *   vol_writer --model N DIR
 *       Write the expected plaintext tree of iteration N under DIR (as
 *       `scone fspf extract` lays it out).
 *
 * FSPF, KEY and TAG may also come from $SCONE_FSPF, $SCONE_FSPF_KEY and
 * $SCONE_FSPF_TAG. The content of iteration i is a pure function of i and
 * the state after i-1 (pseudo-random, seeded by i), so any iteration can be
 * recomputed from scratch. Exit status: 0 ok, 1 check failed, 2 usage,
 * 3 volume error while writing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/hex.h"
#include "volume/volume.h"

#define ROOT "/data"
#define SUBDIR "/data/d"
#define STATE_PATH "/data/state"
#define MAX_FILES 6
#define MAX_FILE_SIZE (600u * 1024u)
#define NEW_FILE_EVERY 4
#define PATH_LEN 96

struct mfile {
	char path[PATH_LEN];
	uint8_t *data;
	size_t len, cap;
};

struct model {
	struct mfile f[MAX_FILES + 2];
	size_t n;
	uint64_t iteration;
};

struct rng {
	uint64_t s;
};

/* ---------------- deterministic randomness ---------------- */

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static void rng_fill(struct rng *r, uint8_t *buf, size_t n)
{
	while (n >= 8) {
		uint64_t x = rng_next(r);
		memcpy(buf, &x, 8);
		buf += 8;
		n -= 8;
	}
	if (n) {
		uint64_t x = rng_next(r);
		memcpy(buf, &x, n);
	}
}

/* ---------------- errors ---------------- */

static bool verbose;

static enum scone_err report(enum scone_err err, const char *what, const char *path)
{
	if (err)
		fprintf(stderr, "vol_writer: %s %s: %s (%s)\n", what, path ? path : "", scone_errname(err),
			scone_err_detail());
	return err;
}

/* ---------------- the model and its mirror in the volume ---------------- */

static void mfile_reserve(struct mfile *f, size_t len)
{
	if (len <= f->cap)
		return;
	size_t cap = f->cap ? f->cap : 4096;
	while (cap < len)
		cap *= 2;
	uint8_t *p = realloc(f->data, cap);
	if (!p) {
		fprintf(stderr, "vol_writer: out of memory\n");
		exit(3);
	}
	f->data = p;
	f->cap = cap;
}

/* Write buf at off in model file f (zero-filling a gap), and in the volume. */
static enum scone_err do_write(struct scone_volume *v, struct mfile *f, const uint8_t *buf, size_t n,
			       uint64_t off, bool append)
{
	struct scone_vfile *h = NULL;
	enum scone_err err = SCONE_ERR_OK;
	uint64_t got_off = 0;

	if (v) {
		err = scone_vfile_open(v, f->path, SCONE_VF_RDWR, 0, &h);
		if (!err && append)
			err = scone_vfile_append(h, buf, n, &got_off);
		else if (!err)
			err = scone_vfile_pwrite(h, buf, n, off);
		if (h)
			scone_vfile_close(h);
		if (err)
			return report(err, append ? "append to" : "write to", f->path);
		if (append && got_off != f->len) {
			fprintf(stderr, "vol_writer: append to %s landed at %" PRIu64 ", expected %zu\n",
				f->path, got_off, f->len);
			return SCONE_ERR_INVALID;
		}
	}
	if (append)
		off = f->len;
	mfile_reserve(f, (size_t)off + n);
	if (off > f->len)
		memset(f->data + f->len, 0, (size_t)off - f->len);
	memcpy(f->data + off, buf, n);
	if (off + n > f->len)
		f->len = (size_t)off + n;
	return SCONE_ERR_OK;
}

static enum scone_err do_truncate(struct scone_volume *v, struct mfile *f, size_t len)
{
	if (v) {
		enum scone_err err = scone_volume_truncate(v, f->path, len);
		if (err)
			return report(err, "truncate", f->path);
	}
	mfile_reserve(f, len);
	if (len > f->len)
		memset(f->data + f->len, 0, len - f->len);
	f->len = len;
	return SCONE_ERR_OK;
}

static enum scone_err do_create(struct scone_volume *v, struct model *m, const char *path)
{
	struct mfile *f = &m->f[m->n];

	if (v) {
		struct scone_vfile *h = NULL;
		enum scone_err err =
		    scone_vfile_open(v, path, SCONE_VF_RDWR | SCONE_VF_CREAT | SCONE_VF_EXCL, 0640, &h);
		if (err)
			return report(err, "create", path);
		scone_vfile_close(h);
	}
	memset(f, 0, sizeof(*f));
	snprintf(f->path, sizeof(f->path), "%s", path);
	m->n++;
	return SCONE_ERR_OK;
}

static enum scone_err do_unlink(struct scone_volume *v, struct model *m, size_t idx)
{
	if (v) {
		enum scone_err err = scone_volume_unlink(v, m->f[idx].path);
		if (err)
			return report(err, "unlink", m->f[idx].path);
	}
	free(m->f[idx].data);
	memmove(&m->f[idx], &m->f[idx + 1], (m->n - idx - 1) * sizeof(m->f[0]));
	m->n--;
	return SCONE_ERR_OK;
}

static enum scone_err do_rename(struct scone_volume *v, struct mfile *f, const char *to)
{
	if (v) {
		enum scone_err err = scone_volume_rename(v, f->path, to);
		if (err)
			return report(err, "rename", f->path);
	}
	snprintf(f->path, sizeof(f->path), "%s", to);
	return SCONE_ERR_OK;
}

static enum scone_err write_state(struct scone_volume *v, uint64_t it)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "iteration %" PRIu64 "\n", it);
	struct scone_vfile *h = NULL;
	enum scone_err err;

	if (!v)
		return SCONE_ERR_OK;
	err = scone_vfile_open(v, STATE_PATH, SCONE_VF_WRONLY | SCONE_VF_CREAT | SCONE_VF_TRUNC, 0600, &h);
	if (!err)
		err = scone_vfile_pwrite(h, line, (size_t)n, 0);
	if (h)
		scone_vfile_close(h);
	return report(err, "write", STATE_PATH);
}

/*
 * Iteration it: applied to the model, and mirrored into the volume when v
 * is not NULL. Every choice depends only on it and the model's state.
 */
static enum scone_err step(struct model *m, uint64_t it, struct scone_volume *v)
{
	struct rng r = {it * 0x2545f4914f6cdd1dull + 0x5c0e5eed};
	static uint8_t buf[80 * 1024];
	char path[PATH_LEN];
	enum scone_err err;
	unsigned ops;

	if (it % NEW_FILE_EVERY == 1 || m->n == 0) {
		size_t n = (size_t)rng_below(&r, 20000);
		snprintf(path, sizeof(path), ROOT "/f%06" PRIu64, it);
		SCONE_TRY(do_create(v, m, path));
		rng_fill(&r, buf, n);
		SCONE_TRY(do_write(v, &m->f[m->n - 1], buf, n, 0, false));
	}
	if (m->n > MAX_FILES)
		SCONE_TRY(do_unlink(v, m, (size_t)rng_below(&r, m->n)));
	ops = 1 + (unsigned)rng_below(&r, 3);
	for (unsigned k = 0; k < ops; k++) {
		struct mfile *f = &m->f[rng_below(&r, m->n)];
		unsigned c = (unsigned)rng_below(&r, 100);
		size_t n;
		uint64_t off;

		if (c < 35) { /* append, sometimes across a 256 KiB group */
			n = (size_t)rng_below(&r, c < 10 ? 70000 : 9000);
			rng_fill(&r, buf, n);
			err = do_write(v, f, buf, n, 0, true);
		} else if (c < 65) { /* overwrite at a random offset (may extend) */
			off = rng_below(&r, f->len + 1);
			n = (size_t)rng_below(&r, 10000);
			rng_fill(&r, buf, n);
			err = do_write(v, f, buf, n, off, false);
		} else if (c < 80) { /* truncate: shrink, or grow with zeros */
			n = rng_below(&r, 3) == 0 ? (size_t)rng_below(&r, f->len + 1)
						  : f->len + (size_t)rng_below(&r, 5000);
			err = do_truncate(v, f, n);
		} else if (c < 88) { /* rename, between /data and /data/d */
			snprintf(path, sizeof(path), "%s/g%06" PRIu64 "-%u",
				 strncmp(f->path, SUBDIR "/", strlen(SUBDIR "/")) == 0 ? ROOT : SUBDIR, it,
				 k);
			err = do_rename(v, f, path);
		} else if (c < 92 && m->n > 1) { /* unlink */
			err = do_unlink(v, m, (size_t)(f - m->f));
		} else { /* one byte */
			off = rng_below(&r, f->len + 1);
			rng_fill(&r, buf, 1);
			err = do_write(v, f, buf, 1, off, false);
		}
		if (err)
			return err;
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->f[i].len > MAX_FILE_SIZE)
			SCONE_TRY(do_truncate(v, &m->f[i], (size_t)rng_below(&r, 50000)));
	m->iteration = it;
	return write_state(v, it);
}

static void model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->f[i].data);
	memset(m, 0, sizeof(*m));
}

static void model_replay(struct model *m, uint64_t upto)
{
	memset(m, 0, sizeof(*m));
	for (uint64_t it = 1; it <= upto; it++)
		if (step(m, it, NULL) != SCONE_ERR_OK)
			exit(3); /* cannot happen without a volume */
}

/* ---------------- comparing a volume with the model ---------------- */

struct walk_ctx {
	const struct model *m;
	int problems;
	size_t files;
};

static int walk_entry(void *arg, const char *path, const struct scone_vstat *st)
{
	struct walk_ctx *w = arg;
	bool known = strcmp(path, STATE_PATH) == 0;

	if (st->is_dir)
		return 0;
	w->files++;
	for (size_t i = 0; i < w->m->n && !known; i++)
		known = strcmp(path, w->m->f[i].path) == 0;
	if (!known) {
		fprintf(stderr,
			"vol_writer: check: unexpected file %s (%" PRIu64 " bytes) at iteration %" PRIu64
			"\n",
			path, st->size, w->m->iteration);
		w->problems++;
	}
	return 0;
}

/* 0 when the volume holds exactly the model's files (and state file). */
static int compare(struct scone_volume *v, const struct model *m)
{
	struct walk_ctx w = {m, 0, 0};
	static uint8_t buf[MAX_FILE_SIZE + 70000 + 4096];

	scone_volume_walk(v, walk_entry, &w);
	for (size_t i = 0; i < m->n; i++) {
		const struct mfile *f = &m->f[i];
		struct scone_vfile *h = NULL;
		struct scone_vstat st;
		size_t got = 0, total = 0;
		enum scone_err err = scone_vfile_open(v, f->path, SCONE_VF_RDONLY, 0, &h);

		if (!err)
			err = scone_vfile_stat(h, &st);
		while (!err && total < sizeof(buf)) {
			err = scone_vfile_pread(h, buf + total, sizeof(buf) - total, total, &got);
			if (err || got == 0)
				break;
			total += got;
		}
		if (h)
			scone_vfile_close(h);
		if (err) {
			report(err, "check: read", f->path);
			w.problems++;
		} else if (st.size != f->len || total != f->len) {
			fprintf(stderr,
				"vol_writer: check: %s has %" PRIu64 " bytes (read %zu), expected %zu\n",
				f->path, st.size, total, f->len);
			w.problems++;
		} else if (memcmp(buf, f->data, f->len) != 0) {
			size_t d = 0;
			while (buf[d] == f->data[d])
				d++;
			fprintf(stderr,
				"vol_writer: check: %s differs from iteration %" PRIu64 " at byte %zu\n",
				f->path, m->iteration, d);
			w.problems++;
		}
	}
	if (w.files != m->n + (m->iteration > 0)) {
		fprintf(stderr, "vol_writer: check: %zu files in the volume, expected %zu\n", w.files,
			m->n + (m->iteration > 0));
		w.problems++;
	}
	return w.problems;
}

/* Iteration recorded in the volume (0 when it has no state file yet). */
static enum scone_err read_state(struct scone_volume *v, uint64_t *it)
{
	struct scone_vfile *h = NULL;
	char line[64] = {0};
	size_t got = 0;
	enum scone_err err = scone_vfile_open(v, STATE_PATH, SCONE_VF_RDONLY, 0, &h);

	*it = 0;
	if (err == SCONE_ERR_NOT_FOUND) {
		scone_err_clear();
		return SCONE_ERR_OK;
	}
	if (!err)
		err = scone_vfile_pread(h, line, sizeof(line) - 1, 0, &got);
	if (h)
		scone_vfile_close(h);
	if (err)
		return report(err, "read", STATE_PATH);
	if (sscanf(line, "iteration %" SCNu64, it) != 1) {
		fprintf(stderr, "vol_writer: %s holds '%.40s', not an iteration\n", STATE_PATH, line);
		return SCONE_ERR_MALFORMED;
	}
	return SCONE_ERR_OK;
}

/* ---------------- modes ---------------- */

static void close_quietly(struct scone_volume *v)
{
	if (scone_volume_close(v, NULL) != SCONE_ERR_OK)
		scone_err_clear();
}

static void usage(void)
{
	fprintf(stderr, "usage: vol_writer [--iterations N [--unreported] | --abandon] [-v] FSPF KEY TAG\n"
			"       vol_writer --check EXPECTED_ITERATION FSPF KEY TAG\n"
			"       vol_writer --model ITERATION DIR\n"
			"(FSPF, KEY, TAG default to $SCONE_FSPF, $SCONE_FSPF_KEY, $SCONE_FSPF_TAG)\n");
	exit(2);
}

static uint64_t parse_u64(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || !*s || *end)
		usage();
	return (uint64_t)x;
}

static void tag_hex(struct scone_volume *v, char out[33])
{
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	scone_volume_tag(v, tag);
	scone_hex_encode(out, 33, tag, sizeof(tag));
}

static int run_writer(const char *fspf, const uint8_t *key, const uint8_t *tag, uint64_t iterations,
		      bool abandon, bool unreported)
{
	struct scone_volume *v;
	struct model m;
	struct scone_vstat st;
	uint64_t start;
	char hex[33];
	enum scone_err err = scone_volume_open(fspf, key, tag, SCONE_VOL_RDWR, &v);

	if (err)
		return report(err, "open", fspf), 3;
	if (read_state(v, &start))
		return 3; /* not closed: a close would commit */
	tag_hex(v, hex);
	model_replay(&m, start);
	if (compare(v, &m) != 0) {
		fprintf(stderr, "vol_writer: the volume does not hold iteration %" PRIu64 " at resume\n",
			start);
		return 1;
	}
	printf("OPENED %" PRIu64 " %s\n", start, hex);
	fflush(stdout);
	if (scone_volume_stat(v, SUBDIR, &st) != SCONE_ERR_OK) {
		scone_err_clear();
		err = scone_volume_mkdir(v, SUBDIR, 0750);
		if (err)
			return report(err, "mkdir", SUBDIR), 3;
	}
	if (abandon) {
		if (step(&m, start + 1, v))
			return 3;
		printf("ABANDONED %" PRIu64 "\n", start + 1);
		fflush(stdout);
		_exit(0); /* no close: nothing of this iteration is committed */
	}
	for (uint64_t it = start + 1; iterations == 0 || it <= start + iterations; it++) {
		err = step(&m, it, v);
		if (!err)
			err = report(scone_volume_sync(v), "sync", fspf);
		if (err)
			return 3; /* not closed: a close would commit half an iteration */
		if (unreported && it == start + iterations)
			_exit(0); /* committed, never reported */
		tag_hex(v, hex);
		printf("SYNCED %" PRIu64 " %s\n", it, hex);
		fflush(stdout);
		if (verbose)
			fprintf(stderr, "iteration %" PRIu64 ": %zu files\n", it, m.n);
	}
	{
		uint8_t final_tag[SCONE_VOLUME_TAG_SIZE];
		err = scone_volume_close(v, final_tag);
		if (err)
			return report(err, "close", fspf), 3;
		scone_hex_encode(hex, sizeof(hex), final_tag, sizeof(final_tag));
		printf("CLOSED %" PRIu64 " %s\n", m.iteration, hex);
	}
	model_free(&m);
	return 0;
}

static int run_check(const char *fspf, const uint8_t *key, const uint8_t *tag, const char *tag_str,
		     uint64_t expect)
{
	struct scone_volume *v;
	struct model m;
	uint64_t it;
	char hex[33];
	int problems;
	size_t bytes = 0, files;
	enum scone_err err = scone_volume_open(fspf, key, tag, SCONE_VOL_RDONLY, &v);

	if (err) {
		fprintf(stderr, "CHECK FAILED: cannot open %s with tag %s: %s (%s)\n", fspf, tag_str,
			scone_errname(err), scone_err_detail());
		return 1;
	}
	tag_hex(v, hex);
	if (read_state(v, &it)) {
		close_quietly(v);
		fprintf(stderr, "CHECK FAILED: no readable state file\n");
		return 1;
	}
	if (it != expect && it != expect + 1) {
		fprintf(stderr,
			"CHECK FAILED: the volume holds iteration %" PRIu64 ", expected %" PRIu64
			" or %" PRIu64 " for tag %s\n",
			it, expect, expect + 1, tag_str);
		close_quietly(v);
		return 1;
	}
	if ((it == expect) != (strcasecmp(hex, tag_str) == 0)) {
		fprintf(stderr,
			"CHECK FAILED: iteration %" PRIu64 " (expected %" PRIu64
			") but the volume's tag is %s, given %s\n",
			it, expect, hex, tag_str);
		close_quietly(v);
		return 1;
	}
	model_replay(&m, it);
	problems = compare(v, &m);
	files = m.n;
	for (size_t i = 0; i < m.n; i++)
		bytes += m.f[i].len;
	err = scone_volume_close(v, NULL);
	if (err)
		problems++, report(err, "close", fspf);
	model_free(&m);
	if (problems) {
		fprintf(stderr, "CHECK FAILED: iteration %" PRIu64 ": %d problem(s)\n", it, problems);
		return 1;
	}
	printf("CHECK OK iteration=%" PRIu64 " expected=%" PRIu64 " (%s) tag=%s files=%zu bytes=%zu\n", it,
	       expect, it == expect ? "same" : "one ahead", hex, files, bytes);
	return 0;
}

static void mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			(void)mkdir(path, 0755);
			*p = '/';
		}
}

static int run_model(uint64_t it, const char *dir)
{
	struct model m;
	char path[4096], line[64];
	FILE *fp;

	model_replay(&m, it);
	snprintf(path, sizeof(path), "%s" SUBDIR "/", dir);
	mkdirs(path);
	for (size_t i = 0; i <= m.n; i++) {
		const uint8_t *data = i < m.n ? m.f[i].data : (const uint8_t *)line;
		size_t len = i < m.n ? m.f[i].len
				     : (size_t)snprintf(line, sizeof(line), "iteration %" PRIu64 "\n", it);
		snprintf(path, sizeof(path), "%s%s", dir, i < m.n ? m.f[i].path : STATE_PATH);
		if (i == m.n && it == 0)
			break;
		fp = fopen(path, "wb");
		if (!fp || (len && fwrite(data, 1, len, fp) != len) || fclose(fp) != 0) {
			fprintf(stderr, "vol_writer: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	model_free(&m);
	return 0;
}

int main(int argc, char **argv)
{
	const char *fspf, *key_s, *tag_s, *mode = "write";
	uint64_t arg = 0, iterations = 0;
	uint8_t key[SCONE_VOLUME_KEY_SIZE], tag[SCONE_VOLUME_TAG_SIZE];
	int i = 1;
	bool abandon = false, unreported = false;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--check") == 0 && i + 1 < argc) {
			mode = "check";
			arg = parse_u64(argv[++i]);
		} else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
			mode = "model";
			arg = parse_u64(argv[++i]);
		} else if (strcmp(argv[i], "--unreported") == 0) {
			unreported = true;
		} else if (strcmp(argv[i], "--abandon") == 0) {
			abandon = true;
		} else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
			iterations = parse_u64(argv[++i]);
		} else if (strcmp(argv[i], "-v") == 0) {
			verbose = true;
		} else {
			usage();
		}
	}
	if (strcmp(mode, "model") == 0) {
		if (argc - i != 1)
			usage();
		return run_model(arg, argv[i]);
	}
	if (argc - i > 3)
		usage();
	fspf = i < argc ? argv[i++] : getenv("SCONE_FSPF");
	key_s = i < argc ? argv[i++] : getenv("SCONE_FSPF_KEY");
	tag_s = i < argc ? argv[i++] : getenv("SCONE_FSPF_TAG");
	if (!fspf || !key_s || !tag_s)
		usage();
	if (scone_hex_decode(key, sizeof(key), key_s, "key") ||
	    scone_hex_decode(tag, sizeof(tag), tag_s, "tag")) {
		fprintf(stderr, "vol_writer: %s\n", scone_err_detail());
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "check") == 0)
		return run_check(fspf, key, tag, tag_s, arg);
	if (unreported && iterations == 0)
		usage();
	return run_writer(fspf, key, tag, iterations, abandon, unreported);
}
