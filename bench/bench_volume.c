/*
 * bench_volume.c - protected-volume throughput against plain file I/O and
 * the single-core AES-256-GCM limit, all in one run on one machine.
 *
 * Every figure is measured BENCH_RUNS times (default 5) and the median is
 * reported as one line on stdout:
 *   RESULT <name> value=<v> unit=<u> baseline=<b> ratio=<r>
 * Baseline figures (volume.plain_*, volume.aes_gcm_limit) carry their own
 * value as baseline and ratio=1.00. Progress and diagnostics go to stderr.
 *
 * Environment:
 *   BENCH_SIZE_MB     file size in MiB (default 1024)
 *   BENCH_RUNS        repetitions of every measurement (default 5)
 *   BENCH_RAND_OPS    4 KiB operations per random measurement (default 50000)
 *   BENCH_AES_SECONDS duration of one AES measurement (default 1)
 *   BENCH_DIR         parent of the temporary directory (default /var/tmp)
 *
 * Plain and shielded files live side by side in one mkdtemp directory, so
 * they share the file system. Each run, for each of plain and shielded (the
 * order alternates between runs):
 *   seq_write   a new file, written from empty in 1 MiB requests, then the
 *               durability point (fsync / scone_vfile_sync), timed together
 *   seq_read    the file just written (warm page cache), 1 MiB requests
 *   rand_read   BENCH_RAND_OPS 4 KiB reads at random 4 KiB-aligned offsets
 *   rand_write  BENCH_RAND_OPS 4 KiB overwrites at random aligned offsets,
 *               then one durability point, timed together
 * Both kinds use the same offsets and the same data (every 4 KiB block
 * stamped with its offset, checked on reads). The seq figures' ratio is
 * against min(plain, AES-GCM limit), the random ones' against plain.
 * docs/performance.md describes the method.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "volume/volume.h"

#define SEQ_IO ((size_t)1 << 20)
#define RAND_IO ((size_t)4096)
#define AES_BLOCK_BYTES ((size_t)16384)
#define OCB_BLOCK_BYTES ((size_t)4096)
#define MB 1e6 /* throughput unit: 10^6 bytes per second, as openssl speed */
#define VREGION "/bench"
#define VFILE "/bench/file"

#define GOAL_SEQ 0.80
#define GOAL_RAND_READ 0.50

enum fig {
	F_PLAIN_SEQ_WRITE,
	F_PLAIN_SEQ_READ,
	F_AES_GCM,
	F_OCB_4K, /* informational: the volume's chunk AEAD, stderr only */
	F_SEQ_WRITE,
	F_SEQ_READ,
	F_PLAIN_RAND_READ,
	F_RAND_READ,
	F_PLAIN_RAND_WRITE,
	F_RAND_WRITE,
	F_COUNT
};

struct bench {
	uint64_t size;
	unsigned runs;
	unsigned rand_ops;
	double aes_seconds;
	char dir[PATH_MAX - 64]; /* room for the file names below */
	bool have_dir;
	char plain_path[PATH_MAX];
	char fspf_path[PATH_MAX];
	struct scone_volume *vol;
	bool shielded_exists;
	uint8_t key[SCONE_VOLUME_KEY_SIZE];
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	uint8_t *buf;	   /* SEQ_IO bytes, page-aligned */
	uint64_t *offsets; /* rand_ops random 4 KiB-aligned offsets */
	double *samples[F_COUNT];
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int sys_fail(const char *what, const char *path)
{
	fprintf(stderr, "bench_volume: %s %s: %s\n", what, path ? path : "", strerror(errno));
	return -1;
}

static int vol_fail(enum scone_err err, const char *what)
{
	const char *d = scone_err_detail();

	fprintf(stderr, "bench_volume: %s: %s\n", what, d[0] ? d : scone_strerror(err));
	return -1;
}

static int check_interrupt(void)
{
	if (!interrupted)
		return 0;
	fprintf(stderr, "bench_volume: interrupted\n");
	return -1;
}

static int env_u64(const char *name, uint64_t def, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !s[0]) {
		*out = def;
		return 0;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "bench_volume: %s=%s: expected an integer in [%llu, %llu]\n", name, s,
			(unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

static int env_seconds(const char *name, double def, double *out)
{
	const char *s = getenv(name);
	char *end;
	double v;

	if (!s || !s[0]) {
		*out = def;
		return 0;
	}
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0.01 && v <= 600)) {
		fprintf(stderr, "bench_volume: %s=%s: expected seconds in [0.01, 600]\n", name, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
	double *c = malloc(n * sizeof(*c));
	double m;

	if (!c)
		return v[n / 2]; /* not expected; any sample is better than none */
	memcpy(c, v, n * sizeof(*c));
	qsort(c, n, sizeof(*c), cmp_double);
	m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
	free(c);
	return m;
}

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void make_offsets(struct bench *b, uint64_t seed)
{
	uint64_t blocks = b->size / RAND_IO;

	for (unsigned i = 0; i < b->rand_ops; i++)
		b->offsets[i] = (splitmix64(&seed) % blocks) * RAND_IO;
}

/*
 * Stamp every 4 KiB block of a request with its file offset: no two blocks
 * of a file are equal (nothing for a deduplicating or compressing storage
 * layer to exploit in the plain file), and reads can check they got the
 * right bytes.
 */
static void stamp(uint8_t *buf, size_t size, uint64_t off)
{
	for (size_t i = 0; i < size; i += RAND_IO) {
		uint64_t o = off + i;
		memcpy(buf + i, &o, sizeof(o));
	}
}

static bool stamp_ok(const uint8_t *buf, size_t size, uint64_t off)
{
	for (size_t i = 0; i < size; i += RAND_IO) {
		uint64_t o = off + i;
		if (memcmp(buf + i, &o, sizeof(o)) != 0)
			return false;
	}
	return true;
}

/* Commit the file system's journal so frees/discards of a deleted file do not leak into the next timing. */
static void quiesce(const struct bench *b)
{
	int fd = open(b->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)syncfs(fd);
		close(fd);
	}
}

/* ---------------- crypto limits ---------------- */

/*
 * Single-core AEAD throughput as `openssl speed -evp`: one key, a new IV for
 * every block, encrypt + tag. aad_size bytes of AAD per block (0 for GCM as
 * openssl speed; 32 for OCB as the volume does per chunk).
 */
static int aead_speed(const EVP_CIPHER *cipher, size_t block, size_t aad_size, double seconds, double *mbps)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t key[32], iv[12] = {0}, tag[16], aad[32] = {0};
	uint8_t *in = malloc(block), *out = malloc(block + 16);
	uint64_t blocks = 0, ctr = 0;
	double t0, t1;
	int rc = -1, n;

	if (!ctx || !in || !out || RAND_bytes(key, sizeof(key)) != 1 || RAND_bytes(in, (int)block) != 1)
		goto out;
	if (EVP_EncryptInit_ex(ctx, cipher, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, sizeof(iv), NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, key, NULL) != 1)
		goto out;
	t0 = t1 = now();
	while (t1 - t0 < seconds) {
		for (int i = 0; i < 64; i++) {
			ctr++;
			memcpy(iv, &ctr, sizeof(ctr));
			if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
			    (aad_size && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_size) != 1) ||
			    EVP_EncryptUpdate(ctx, out, &n, in, (int)block) != 1 ||
			    EVP_EncryptFinal_ex(ctx, out + n, &n) != 1 ||
			    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, sizeof(tag), tag) != 1)
				goto out;
		}
		blocks += 64;
		t1 = now();
	}
	*mbps = (double)blocks * (double)block / (t1 - t0) / MB;
	rc = 0;
out:
	if (rc)
		fprintf(stderr, "bench_volume: %s speed test failed\n", EVP_CIPHER_get0_name(cipher));
	OPENSSL_cleanse(key, sizeof(key));
	EVP_CIPHER_CTX_free(ctx);
	free(in);
	free(out);
	return rc;
}

/* ---------------- plain file I/O ---------------- */

static int full_pwrite(int fd, const uint8_t *buf, size_t size, uint64_t off)
{
	while (size) {
		ssize_t n = pwrite(fd, buf, size, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		size -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static ssize_t full_pread(int fd, uint8_t *buf, size_t size, uint64_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pread(fd, buf + done, size - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int plain_seq_write(struct bench *b, double *mbps)
{
	double t0, t1;
	int fd;

	if (unlink(b->plain_path) != 0 && errno != ENOENT)
		return sys_fail("unlink", b->plain_path);
	quiesce(b);
	t0 = now();
	fd = open(b->plain_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return sys_fail("create", b->plain_path);
	for (uint64_t off = 0; off < b->size; off += SEQ_IO) {
		size_t n = b->size - off < SEQ_IO ? (size_t)(b->size - off) : SEQ_IO;
		stamp(b->buf, n, off);
		if (full_pwrite(fd, b->buf, n, off) != 0 ? sys_fail("write", b->plain_path)
							 : check_interrupt()) {
			close(fd);
			return -1;
		}
	}
	if (fsync(fd) != 0) {
		sys_fail("fsync", b->plain_path);
		close(fd);
		return -1;
	}
	t1 = now();
	close(fd);
	*mbps = (double)b->size / (t1 - t0) / MB;
	return 0;
}

static int plain_seq_read(struct bench *b, double *mbps)
{
	double t0, t1;
	int fd, rc = 0;

	t0 = now();
	fd = open(b->plain_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sys_fail("open", b->plain_path);
	for (uint64_t off = 0; off < b->size && !rc; off += SEQ_IO) {
		size_t n = b->size - off < SEQ_IO ? (size_t)(b->size - off) : SEQ_IO;
		ssize_t got = full_pread(fd, b->buf, n, off);
		if (got != (ssize_t)n || !stamp_ok(b->buf, n, off)) {
			fprintf(stderr, "bench_volume: %s: short or wrong read at %llu\n", b->plain_path,
				(unsigned long long)off);
			rc = -1;
		}
		if (!rc)
			rc = check_interrupt();
	}
	t1 = now();
	close(fd);
	*mbps = (double)b->size / (t1 - t0) / MB;
	return rc;
}

static int plain_rand_read(struct bench *b, double *ops)
{
	double t0, t1;
	int fd, rc = 0;

	t0 = now();
	fd = open(b->plain_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sys_fail("open", b->plain_path);
	for (unsigned i = 0; i < b->rand_ops && !rc; i++) {
		if (full_pread(fd, b->buf, RAND_IO, b->offsets[i]) != (ssize_t)RAND_IO ||
		    !stamp_ok(b->buf, RAND_IO, b->offsets[i])) {
			fprintf(stderr, "bench_volume: %s: short or wrong read at %llu\n", b->plain_path,
				(unsigned long long)b->offsets[i]);
			rc = -1;
		}
		if (!rc && i % 1024 == 0)
			rc = check_interrupt();
	}
	t1 = now();
	close(fd);
	*ops = b->rand_ops / (t1 - t0);
	return rc;
}

static int plain_rand_write(struct bench *b, double *ops)
{
	double t0, t1;
	int fd, rc = 0;

	t0 = now();
	fd = open(b->plain_path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return sys_fail("open", b->plain_path);
	for (unsigned i = 0; i < b->rand_ops && !rc; i++) {
		stamp(b->buf, RAND_IO, b->offsets[i]);
		if (full_pwrite(fd, b->buf, RAND_IO, b->offsets[i]) != 0)
			rc = sys_fail("write", b->plain_path);
		if (!rc && i % 1024 == 0)
			rc = check_interrupt();
	}
	if (!rc && fsync(fd) != 0)
		rc = sys_fail("fsync", b->plain_path);
	t1 = now();
	close(fd);
	*ops = b->rand_ops / (t1 - t0);
	return rc;
}

/* ---------------- shielded (protected volume) I/O ---------------- */

/* A fresh volume with one encrypted region stored next to the plain file. */
static int volume_setup(struct bench *b)
{
	struct scone_volume *v;
	enum scone_err err;

	err = scone_volume_create(b->fspf_path);
	if (err)
		return vol_fail(err, "create volume");
	err = scone_volume_open(b->fspf_path, NULL, NULL, SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED, &v);
	if (err)
		return vol_fail(err, "open unsealed volume");
	err = scone_volume_add_region(v, VREGION, SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, "data");
	if (!err)
		err = scone_volume_seal(v, NULL, b->key, b->tag);
	if (err) {
		vol_fail(err, "add region / seal");
		if (scone_volume_close(v, NULL) != SCONE_ERR_OK)
			scone_err_clear();
		return -1;
	}
	err = scone_volume_close(v, b->tag);
	if (err)
		return vol_fail(err, "close volume");
	err = scone_volume_open(b->fspf_path, b->key, b->tag, SCONE_VOL_RDWR, &b->vol);
	if (err)
		return vol_fail(err, "open sealed volume");
	return 0;
}

static int shielded_seq_write(struct bench *b, double *mbps)
{
	struct scone_vfile *f;
	enum scone_err err;
	double t0, t1;

	if (b->shielded_exists) {
		err = scone_volume_unlink(b->vol, VFILE);
		if (!err)
			err = scone_volume_sync(b->vol); /* deletes the host file */
		if (err)
			return vol_fail(err, "unlink " VFILE);
		b->shielded_exists = false;
	}
	quiesce(b);
	t0 = now();
	err = scone_vfile_open(b->vol, VFILE, SCONE_VF_RDWR | SCONE_VF_CREAT | SCONE_VF_EXCL, 0600, &f);
	if (err)
		return vol_fail(err, "create " VFILE);
	b->shielded_exists = true;
	for (uint64_t off = 0; off < b->size && !err; off += SEQ_IO) {
		size_t n = b->size - off < SEQ_IO ? (size_t)(b->size - off) : SEQ_IO;
		stamp(b->buf, n, off);
		err = scone_vfile_pwrite(f, b->buf, n, off);
		if (err)
			vol_fail(err, "write " VFILE);
		else if (check_interrupt())
			err = SCONE_ERR_IO;
	}
	if (!err) {
		err = scone_vfile_sync(f);
		if (err)
			vol_fail(err, "sync " VFILE);
	}
	t1 = now();
	scone_vfile_close(f);
	*mbps = (double)b->size / (t1 - t0) / MB;
	return err ? -1 : 0;
}

/* Read n bytes of the volume file at off and check the stamp: 0, or -1 after a message. */
static int read_checked(struct scone_vfile *f, uint8_t *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	enum scone_err err = scone_vfile_pread(f, buf, n, off, &got);

	if (err)
		return vol_fail(err, "read " VFILE);
	if (got != n || !stamp_ok(buf, n, off)) {
		fprintf(stderr, "bench_volume: " VFILE ": short or wrong read at %llu\n",
			(unsigned long long)off);
		return -1;
	}
	return 0;
}

static int shielded_seq_read(struct bench *b, double *mbps)
{
	struct scone_vfile *f;
	enum scone_err err;
	double t0, t1;
	int rc = 0;

	t0 = now();
	err = scone_vfile_open(b->vol, VFILE, SCONE_VF_RDONLY, 0, &f);
	if (err)
		return vol_fail(err, "open " VFILE);
	for (uint64_t off = 0; off < b->size && !rc; off += SEQ_IO) {
		size_t n = b->size - off < SEQ_IO ? (size_t)(b->size - off) : SEQ_IO;
		rc = read_checked(f, b->buf, n, off);
		if (!rc)
			rc = check_interrupt();
	}
	t1 = now();
	scone_vfile_close(f);
	*mbps = (double)b->size / (t1 - t0) / MB;
	return rc;
}

static int shielded_rand_read(struct bench *b, double *ops)
{
	struct scone_vfile *f;
	enum scone_err err;
	double t0, t1;
	int rc = 0;

	t0 = now();
	err = scone_vfile_open(b->vol, VFILE, SCONE_VF_RDONLY, 0, &f);
	if (err)
		return vol_fail(err, "open " VFILE);
	for (unsigned i = 0; i < b->rand_ops && !rc; i++) {
		rc = read_checked(f, b->buf, RAND_IO, b->offsets[i]);
		if (!rc && i % 1024 == 0)
			rc = check_interrupt();
	}
	t1 = now();
	scone_vfile_close(f);
	*ops = b->rand_ops / (t1 - t0);
	return rc;
}

static int shielded_rand_write(struct bench *b, double *ops)
{
	struct scone_vfile *f;
	enum scone_err err;
	double t0, t1;
	int rc = 0;

	t0 = now();
	err = scone_vfile_open(b->vol, VFILE, SCONE_VF_RDWR, 0, &f);
	if (err)
		return vol_fail(err, "open " VFILE);
	for (unsigned i = 0; i < b->rand_ops && !rc; i++) {
		stamp(b->buf, RAND_IO, b->offsets[i]);
		err = scone_vfile_pwrite(f, b->buf, RAND_IO, b->offsets[i]);
		if (err)
			rc = vol_fail(err, "write " VFILE);
		if (!rc && i % 1024 == 0)
			rc = check_interrupt();
	}
	if (!rc) {
		err = scone_vfile_sync(f);
		if (err)
			rc = vol_fail(err, "sync " VFILE);
	}
	t1 = now();
	scone_vfile_close(f);
	*ops = b->rand_ops / (t1 - t0);
	return rc;
}

/* ---------------- driver ---------------- */

struct kind {
	const char *name;
	int (*seq_write)(struct bench *, double *);
	int (*seq_read)(struct bench *, double *);
	int (*rand_read)(struct bench *, double *);
	int (*rand_write)(struct bench *, double *);
	enum fig f_seq_write, f_seq_read, f_rand_read, f_rand_write;
};

static const struct kind kinds[2] = {
    {"plain", plain_seq_write, plain_seq_read, plain_rand_read, plain_rand_write, F_PLAIN_SEQ_WRITE,
     F_PLAIN_SEQ_READ, F_PLAIN_RAND_READ, F_PLAIN_RAND_WRITE},
    {"shielded", shielded_seq_write, shielded_seq_read, shielded_rand_read, shielded_rand_write, F_SEQ_WRITE,
     F_SEQ_READ, F_RAND_READ, F_RAND_WRITE},
};

static int run_kind(struct bench *b, const struct kind *k, unsigned r)
{
	if (k->seq_write(b, &b->samples[k->f_seq_write][r]) ||
	    k->seq_read(b, &b->samples[k->f_seq_read][r]) ||
	    k->rand_read(b, &b->samples[k->f_rand_read][r]) ||
	    k->rand_write(b, &b->samples[k->f_rand_write][r])) {
		fprintf(stderr, "bench_volume: run %u: %s measurement failed\n", r + 1, k->name);
		return -1;
	}
	fprintf(stderr,
		"  run %u %-8s seq_write %8.1f MB/s  seq_read %8.1f MB/s  rand_read_4k %9.0f op/s  "
		"rand_write_4k %9.0f op/s\n",
		r + 1, k->name, b->samples[k->f_seq_write][r], b->samples[k->f_seq_read][r],
		b->samples[k->f_rand_read][r], b->samples[k->f_rand_write][r]);
	return 0;
}

static int run_all(struct bench *b)
{
	for (unsigned r = 0; r < b->runs; r++) {
		make_offsets(b, 0x5c0e0000ull + r);
		if (aead_speed(EVP_aes_256_gcm(), AES_BLOCK_BYTES, 0, b->aes_seconds,
			       &b->samples[F_AES_GCM][r]) ||
		    aead_speed(EVP_aes_256_ocb(), OCB_BLOCK_BYTES, 32, b->aes_seconds,
			       &b->samples[F_OCB_4K][r]))
			return -1;
		fprintf(stderr, "  run %u aes-256-gcm/16KiB %.1f MB/s, aes-256-ocb/4KiB+32B AAD %.1f MB/s\n",
			r + 1, b->samples[F_AES_GCM][r], b->samples[F_OCB_4K][r]);
		/* Alternate which kind goes first so neither always inherits the other's aftermath. */
		for (unsigned i = 0; i < 2; i++)
			if (run_kind(b, &kinds[(i + r) % 2], r) || check_interrupt())
				return -1;
	}
	return 0;
}

static void result(const char *name, double value, const char *unit, double baseline)
{
	int prec = strcmp(unit, "ops/s") == 0 ? 0 : 1;

	printf("RESULT %s value=%.*f unit=%s baseline=%.*f ratio=%.2f\n", name, prec, value, unit, prec,
	       baseline, baseline > 0 ? value / baseline : 0.0);
}

static void goal(const char *name, double ratio, double want)
{
	fprintf(stderr, "goal: %-22s ratio %.2f %s %.2f  %s\n", name, ratio, ratio >= want ? ">=" : "< ",
		want, ratio >= want ? "met" : "MISSED");
}

static void report(struct bench *b)
{
	double m[F_COUNT];
	double seq_w_base, seq_r_base;

	for (int i = 0; i < F_COUNT; i++)
		m[i] = median(b->samples[i], b->runs);
	seq_w_base = m[F_PLAIN_SEQ_WRITE] < m[F_AES_GCM] ? m[F_PLAIN_SEQ_WRITE] : m[F_AES_GCM];
	seq_r_base = m[F_PLAIN_SEQ_READ] < m[F_AES_GCM] ? m[F_PLAIN_SEQ_READ] : m[F_AES_GCM];
	result("volume.plain_seq_write", m[F_PLAIN_SEQ_WRITE], "MB/s", m[F_PLAIN_SEQ_WRITE]);
	result("volume.plain_seq_read", m[F_PLAIN_SEQ_READ], "MB/s", m[F_PLAIN_SEQ_READ]);
	result("volume.aes_gcm_limit", m[F_AES_GCM], "MB/s", m[F_AES_GCM]);
	result("volume.seq_write", m[F_SEQ_WRITE], "MB/s", seq_w_base);
	result("volume.seq_read", m[F_SEQ_READ], "MB/s", seq_r_base);
	result("volume.plain_rand_read_4k", m[F_PLAIN_RAND_READ], "ops/s", m[F_PLAIN_RAND_READ]);
	result("volume.rand_read_4k", m[F_RAND_READ], "ops/s", m[F_PLAIN_RAND_READ]);
	result("volume.plain_rand_write_4k", m[F_PLAIN_RAND_WRITE], "ops/s", m[F_PLAIN_RAND_WRITE]);
	result("volume.rand_write_4k", m[F_RAND_WRITE], "ops/s", m[F_PLAIN_RAND_WRITE]);
	fflush(stdout);
	fprintf(stderr,
		"info: aes-256-ocb on 4 KiB chunks with 32 B AAD (the volume's chunk AEAD): %.1f MB/s\n",
		m[F_OCB_4K]);
	goal("volume.seq_write", m[F_SEQ_WRITE] / seq_w_base, GOAL_SEQ);
	goal("volume.seq_read", m[F_SEQ_READ] / seq_r_base, GOAL_SEQ);
	goal("volume.rand_read_4k", m[F_RAND_READ] / m[F_PLAIN_RAND_READ], GOAL_RAND_READ);
}

static const char *fs_name(long type)
{
	switch (type) {
	case EXT4_SUPER_MAGIC:
		return "ext2/3/4";
	case XFS_SUPER_MAGIC:
		return "xfs";
	case BTRFS_SUPER_MAGIC:
		return "btrfs";
	case TMPFS_MAGIC:
		return "tmpfs";
	case RAMFS_MAGIC:
		return "ramfs";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlayfs";
	default:
		return "other";
	}
}

static int make_dir(struct bench *b)
{
	const char *parent = getenv("BENCH_DIR");
	struct statfs sf;

	if (!parent || !parent[0])
		parent = "/var/tmp";
	if ((size_t)snprintf(b->dir, sizeof(b->dir), "%s/scone-bench-volume.XXXXXX", parent) >=
	    sizeof(b->dir)) {
		fprintf(stderr, "bench_volume: BENCH_DIR too long\n");
		return -1;
	}
	if (!mkdtemp(b->dir))
		return sys_fail("mkdtemp", b->dir);
	b->have_dir = true;
	snprintf(b->plain_path, sizeof(b->plain_path), "%s/plain", b->dir);
	snprintf(b->fspf_path, sizeof(b->fspf_path), "%s/volume.fspf", b->dir);
	if (statfs(b->dir, &sf) != 0)
		return sys_fail("statfs", b->dir);
	fprintf(stderr, "bench_volume: directory %s (file system %s, 0x%lx)\n", b->dir,
		fs_name((long)sf.f_type), (unsigned long)sf.f_type);
	if (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC)
		fprintf(stderr,
			"bench_volume: WARNING: %s is in memory; set BENCH_DIR to a disk-backed "
			"file system for meaningful write figures\n",
			b->dir);
	if ((uint64_t)sf.f_bavail * (uint64_t)sf.f_bsize < 3 * b->size + ((uint64_t)256 << 20))
		fprintf(stderr, "bench_volume: WARNING: less than 3x BENCH_SIZE_MB free in %s\n", b->dir);
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0)
		fprintf(stderr, "bench_volume: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static int cleanup(struct bench *b)
{
	int rc = 0;

	if (b->vol) {
		enum scone_err err = scone_volume_close(b->vol, NULL);
		if (err)
			rc = vol_fail(err, "close volume");
		b->vol = NULL;
	}
	if (b->have_dir) {
		nftw(b->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		b->have_dir = false;
	}
	for (int i = 0; i < F_COUNT; i++)
		free(b->samples[i]);
	free(b->offsets);
	free(b->buf);
	OPENSSL_cleanse(b->key, sizeof(b->key));
	return rc;
}

static int setup(struct bench *b)
{
	uint64_t mb, runs, ops;
	void *p;

	if (env_u64("BENCH_SIZE_MB", 1024, 1, (uint64_t)1 << 30, &mb) ||
	    env_u64("BENCH_RUNS", 5, 1, 1000, &runs) ||
	    env_u64("BENCH_RAND_OPS", 50000, 1, 100000000, &ops) ||
	    env_seconds("BENCH_AES_SECONDS", 1.0, &b->aes_seconds))
		return -1;
	b->size = mb << 20;
	b->runs = (unsigned)runs;
	b->rand_ops = (unsigned)ops;
	if (posix_memalign(&p, 4096, SEQ_IO) != 0) {
		fprintf(stderr, "bench_volume: out of memory\n");
		return -1;
	}
	b->buf = p;
	b->offsets = malloc(b->rand_ops * sizeof(*b->offsets));
	if (!b->offsets) {
		fprintf(stderr, "bench_volume: out of memory\n");
		return -1;
	}
	for (int i = 0; i < F_COUNT; i++) {
		b->samples[i] = calloc(b->runs, sizeof(double));
		if (!b->samples[i]) {
			fprintf(stderr, "bench_volume: out of memory\n");
			return -1;
		}
	}
	if (RAND_bytes(b->buf, (int)SEQ_IO) != 1) {
		fprintf(stderr, "bench_volume: random number generator failed\n");
		return -1;
	}
	if (make_dir(b))
		return -1;
	fprintf(stderr, "bench_volume: size %llu MiB, %u runs, %u random ops, AES %.2f s per run\n",
		(unsigned long long)mb, b->runs, b->rand_ops, b->aes_seconds);
	return volume_setup(b);
}

int main(void)
{
	static struct bench b;
	struct sigaction sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	rc = setup(&b);
	if (!rc)
		rc = run_all(&b);
	if (!rc)
		report(&b);
	if (cleanup(&b))
		rc = -1;
	return rc ? 1 : 0;
}
