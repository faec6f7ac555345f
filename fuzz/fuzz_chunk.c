/*
 * fuzz_chunk.c - libFuzzer target for everything read back from a
 * volume's host files: integrity nodes, file headers, sealed chunks.
 *
 * 1. The input is decoded as an integrity-node plaintext (vol_node_decode,
 *    first 4096 bytes, zero-padded) and as a file header
 *    (vol_header_decode); what decodes must re-encode stably.
 * 2. The input is a list of mutations (fuzz_common.h) applied to a copy of
 *    a sealed volume kept in a memory backend, built once: four files, one
 *    of them 71 chunks (two levels of nodes) with a hole, one in an
 *    authenticated region, one empty, written over two commits so chunks
 *    and nodes live in both slots (the first commit's state is kept too,
 *    as a source of stale blocks), then a writer that grew a file and
 *    created another without committing. The volume is then opened with
 *    the key and the latest tag, every file read fully and the host
 *    checked. Errors are expected; a crash, a sanitizer report, a leak, or
 *    a read that returns other bytes than the ones written without an
 *    error is a failure (abort). With no mutation at all everything must
 *    succeed. With FZ_F_WRITE, a volume whose files all verified is edited,
 *    committed, reopened with the new tag and must read back exactly.
 * Seeds: fuzz/corpus/chunk (fuzz/gen_corpus.c).
 */
#include "volume/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define OK(expr)                                                                                             \
	do {                                                                                                 \
		enum scone_err e_ = (expr);                                                                  \
		if (e_ != SCONE_ERR_OK) {                                                                    \
			fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #expr,                   \
				scone_errname(e_), scone_err_detail());                                      \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

#define FSPF_PATH "/vol/fspf"

struct vfile_info {
	const char *vpath; /* path in the volume (NULL for the fspf) */
	const char *region_dir;
	char hpath[128];  /* host path in the memory backend */
	uint8_t *content; /* expected plaintext */
	size_t size;
	uint8_t *content2; /* expected after the edits of the write phase */
	size_t size2;
};

static struct vfile_info files[FZ_FILES] = {
    [FZ_FILE_FSPF] = {NULL, NULL, FSPF_PATH, NULL, 0, NULL, 0},
    [FZ_FILE_SMALL] = {"/enc/small", "/vol/data", "", NULL, 0, NULL, 0},
    [FZ_FILE_BIG] = {"/enc/big", "/vol/data", "", NULL, 0, NULL, 0},
    [FZ_FILE_AUTH] = {"/auth/log", "/vol/adata", "", NULL, 0, NULL, 0},
    [FZ_FILE_EMPTY] = {"/enc/dir/empty", "/vol/data", "", NULL, 0, NULL, 0},
};

static struct scone_vio *cur_io; /* the volume after its last commit */
static struct scone_vio *old_io; /* after the commit before (stale blocks) */
static uint8_t vol_key[SCONE_VOLUME_KEY_SIZE], vol_tag[SCONE_VOLUME_TAG_SIZE];
static bool verbose; /* FUZZ_VERBOSE=1: print each outcome (checking seeds) */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---------------- the volume, built once ---------------- */

#define SMALL_SIZE 10000u
#define BIG_SIZE (70u * VOL_BLOCK + 100u)
#define AUTH_SIZE (4u * VOL_BLOCK + 1000u)
#define MAX_SIZE (BIG_SIZE + 4096u)

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed * 101 + (i >> 12) * 7);
}

static void vwrite(struct scone_volume *v, int fi, uint64_t off, size_t n, unsigned seed)
{
	struct vfile_info *fi_ = &files[fi];
	struct scone_vfile *f;

	pattern(fi_->content + off, n, seed);
	OK(scone_vfile_open(v, fi_->vpath, SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	OK(scone_vfile_pwrite(f, fi_->content + off, n, off));
	scone_vfile_close(f);
	if (off + n > fi_->size)
		fi_->size = (size_t)(off + n);
}

/* The write phase (FZ_F_WRITE): pwrite len bytes of pattern seed at off, or truncate to off when seed is 0.
 */
static const struct edit {
	int file;
	size_t off, len;
	unsigned seed;
} edits[] = {
    {FZ_FILE_BIG, 64 * VOL_BLOCK - 100, 5000, 11}, /* across nodes 0 and 1 */
    {FZ_FILE_SMALL, SMALL_SIZE, 3000, 12},	   /* append */
    {FZ_FILE_AUTH, 5000, 0, 0},			   /* truncate */
    {FZ_FILE_EMPTY, 2 * VOL_BLOCK, 10, 13},	   /* hole, then data */
};

static void build_volume(void)
{
	struct scone_volume *v;
	struct scone_vfile *f;
	uint8_t key_out[SCONE_VOLUME_KEY_SIZE], tag1[SCONE_VOLUME_TAG_SIZE];

	fuzz_fixed_key(vol_key);
	for (int i = 1; i < FZ_FILES; i++)
		CHECK((files[i].content = calloc(1, MAX_SIZE)) != NULL);
	OK(scone_vio_mem_new(&cur_io));
	OK(scone_volume_create_at(cur_io, FSPF_PATH));
	OK(scone_volume_open_at(cur_io, FSPF_PATH, NULL, NULL, SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED,
				&v));
	OK(scone_volume_add_region(v, "/enc", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, "data"));
	OK(scone_volume_add_region(v, "/auth", SCONE_REGION_AUTHENTICATED, SCONE_STORE_KERNEL, "adata"));
	OK(scone_volume_mkdir(v, "/enc/dir", 0700));
	/* Epoch 1. */
	vwrite(v, FZ_FILE_SMALL, 0, SMALL_SIZE, 1);
	vwrite(v, FZ_FILE_BIG, 0, 10 * VOL_BLOCK, 2);				   /* chunks 0-9 */
	vwrite(v, FZ_FILE_BIG, 13 * VOL_BLOCK, BIG_SIZE - 50 - 13 * VOL_BLOCK, 3); /* hole: 10-12 */
	vwrite(v, FZ_FILE_AUTH, 0, AUTH_SIZE, 4);
	OK(scone_vfile_open(v, files[FZ_FILE_EMPTY].vpath, SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
	scone_vfile_close(f);
	OK(scone_volume_seal(v, vol_key, key_out, tag1));
	OK(scone_volume_close(v, tag1));
	OK(scone_vio_mem_clone(cur_io, &old_io));
	/* Epoch 2: some chunks and every node move to slot B. */
	OK(scone_volume_open_at(cur_io, FSPF_PATH, vol_key, tag1, SCONE_VOL_RDWR, &v));
	vwrite(v, FZ_FILE_SMALL, VOL_BLOCK + 100, 100, 5);
	vwrite(v, FZ_FILE_BIG, 2 * VOL_BLOCK + 4000, 200, 6); /* chunks 2 and 3 */
	vwrite(v, FZ_FILE_BIG, 65 * VOL_BLOCK, VOL_BLOCK, 7);
	vwrite(v, FZ_FILE_BIG, BIG_SIZE - 50, 50, 8); /* append */
	vwrite(v, FZ_FILE_AUTH, 10, 20, 9);
	for (int i = 1; i < FZ_FILES; i++) {
		struct scone_vstat st;
		static const char hexd[] = "0123456789abcdef";
		char *p;
		OK(scone_volume_stat(v, files[i].vpath, &st));
		p = files[i].hpath +
		    snprintf(files[i].hpath, sizeof(files[i].hpath), "%s/", files[i].region_dir);
		for (unsigned j = 0; j < VOL_ID_SIZE; j++) {
			*p++ = hexd[st.file_id[j] >> 4];
			*p++ = hexd[st.file_id[j] & 15];
		}
		*p = '\0';
	}
	OK(scone_volume_close(v, vol_tag));
	CHECK(files[FZ_FILE_BIG].size == BIG_SIZE && files[FZ_FILE_EMPTY].size == 0);
	/*
	 * A writer that grew /enc/small by a group (a growth claim for the
	 * committed epoch in its header) and created a file, then stopped
	 * before committing: the committed state must not notice.
	 */
	OK(scone_volume_open_at(cur_io, FSPF_PATH, vol_key, vol_tag, SCONE_VOL_RDWR, &v));
	{
		uint8_t *junk = calloc(1, 70 * VOL_BLOCK);
		CHECK(junk != NULL);
		OK(scone_vfile_open(v, files[FZ_FILE_SMALL].vpath, SCONE_VF_RDWR, 0, &f));
		OK(scone_vfile_pwrite(f, junk, 70 * VOL_BLOCK, SMALL_SIZE - 10));
		scone_vfile_close(f);
		OK(scone_vfile_open(v, "/enc/dir/leftover", SCONE_VF_RDWR | SCONE_VF_CREAT, 0600, &f));
		OK(scone_vfile_pwrite(f, junk, 5000, 0));
		scone_vfile_close(f);
		free(junk);
	}
	scone_vio_mem_fail_after(cur_io, 0, true);
	(void)scone_volume_close(v, NULL); /* dropped: the writer "crashed" */
	scone_vio_mem_fail_after(cur_io, -1, false);
	for (int i = 1; i < FZ_FILES; i++) {
		CHECK((files[i].content2 = malloc(MAX_SIZE)) != NULL);
		memcpy(files[i].content2, files[i].content, MAX_SIZE);
		files[i].size2 = files[i].size;
	}
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		struct vfile_info *fi = &files[edits[i].file];
		if (edits[i].seed)
			pattern(fi->content2 + edits[i].off, edits[i].len, edits[i].seed);
		if (!edits[i].seed || edits[i].off + edits[i].len > fi->size2)
			fi->size2 = edits[i].off + edits[i].len;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	build_volume();
	scone_err_clear();
	return 0;
}

/* ---------------- plain decoders ---------------- */

static void decoders(const uint8_t *data, size_t size)
{
	uint8_t in[VOL_BLOCK] = {0}, e1[VOL_BLOCK], e2[VOL_BLOCK];
	struct vol_node_plain *np = malloc(sizeof(*np)), *np2 = malloc(sizeof(*np2));
	struct vol_header h, h2;

	CHECK(np && np2);
	memcpy(in, data, size < VOL_BLOCK ? size : VOL_BLOCK);
	if (vol_node_decode(in, np) == SCONE_ERR_OK) {
		vol_node_encode(np, e1);
		OK(vol_node_decode(e1, np2));
		vol_node_encode(np2, e2);
		CHECK(memcmp(e1, e2, VOL_BLOCK) == 0);
		CHECK(np->index == np2->index && memcmp(np->file_id, np2->file_id, VOL_ID_SIZE) == 0);
	}
	free(np);
	free(np2);
	if (vol_header_decode(data, size, &h) == SCONE_ERR_OK) {
		vol_header_encode(&h, e1);
		OK(vol_header_decode(e1, VOL_BLOCK, &h2));
		vol_header_encode(&h2, e2);
		CHECK(memcmp(e1, e2, VOL_BLOCK) == 0);
		CHECK(memcmp(h.file_id, h2.file_id, VOL_ID_SIZE) == 0);
	}
}

/* ---------------- host file mutations ---------------- */

struct in {
	const uint8_t *p;
	size_t n;
};

static bool get8(struct in *in, unsigned *v)
{
	if (in->n < 1)
		return false;
	*v = in->p[0];
	in->p++;
	in->n--;
	return true;
}

static bool get16(struct in *in, unsigned *v)
{
	if (in->n < 2)
		return false;
	*v = (unsigned)in->p[0] | (unsigned)in->p[1] << 8;
	in->p += 2;
	in->n -= 2;
	return true;
}

/* Whole host file (NULL if absent); caller frees. */
static uint8_t *slurp(struct scone_vio *io, const char *path, size_t *size)
{
	struct scone_vio_file *f;
	uint64_t n;
	size_t got;
	uint8_t *buf;

	if (io->ops->open(io, path, 0, &f) != SCONE_ERR_OK)
		return NULL;
	OK(io->ops->size(f, &n));
	buf = malloc(n ? (size_t)n : 1);
	CHECK(buf);
	OK(io->ops->pread(f, buf, (size_t)n, 0, &got));
	CHECK(got == n);
	io->ops->close(f);
	*size = (size_t)n;
	return buf;
}

static uint64_t host_size(struct scone_vio *io, const char *path)
{
	struct scone_vio_file *f;
	uint64_t n = 0;

	if (io->ops->open(io, path, 0, &f) != SCONE_ERR_OK)
		return 0;
	OK(io->ops->size(f, &n));
	io->ops->close(f);
	return n;
}

/* Byte position from a block and an offset, bounded by the file's size. */
static uint64_t position(struct scone_vio *io, const char *path, unsigned block, unsigned off)
{
	uint64_t blocks = (host_size(io, path) + VOL_BLOCK - 1) / VOL_BLOCK + 2;
	return (block % blocks) * VOL_BLOCK + off % VOL_BLOCK;
}

static bool write_at(struct scone_vio *io, const char *path, const void *buf, size_t n, uint64_t off,
		     bool create)
{
	struct scone_vio_file *f;

	if (io->ops->open(io, path, SCONE_VIO_WRITE | (create ? SCONE_VIO_CREATE : 0), &f) != SCONE_ERR_OK)
		return false;
	if (n)
		OK(io->ops->pwrite(f, buf, n, off));
	io->ops->close(f);
	return true;
}

static bool set_size(struct scone_vio *io, const char *path, uint64_t size)
{
	struct scone_vio_file *f;

	if (io->ops->open(io, path, SCONE_VIO_WRITE, &f) != SCONE_ERR_OK)
		return false;
	OK(io->ops->truncate(f, size));
	io->ops->close(f);
	return true;
}

/* Apply the mutations; returns the number applied. */
static int mutate(struct scone_vio *io, struct in *in)
{
	int applied = 0;
	unsigned op;

	for (int i = 0; i < FZ_MAX_OPS && get8(in, &op); i++) {
		struct scone_vio *src_io = (op & FZ_OP_FROM_OLD) ? old_io : io;
		unsigned a, b, c, d, e;
		switch ((op & 7) % FZ_OP_KINDS) {
		case FZ_OP_OVERWRITE: {
			const char *path;
			size_t n;
			if (!get8(in, &a) || !get16(in, &b) || !get16(in, &c) || !get8(in, &d))
				return applied;
			path = files[a % FZ_FILES].hpath;
			n = d ? d : in->n;
			if (n > in->n)
				n = in->n;
			if (n > FZ_MAX_WRITE)
				n = FZ_MAX_WRITE;
			if (write_at(io, path, in->p, n, position(io, path, b, c), false))
				applied++;
			in->p += n;
			in->n -= n;
			break;
		}
		case FZ_OP_COPY: {
			const char *sp, *dp;
			uint8_t buf[VOL_BLOCK];
			struct scone_vio_file *f;
			size_t got = 0;
			if (!get8(in, &a) || !get16(in, &b) || !get8(in, &c) || !get16(in, &d))
				return applied;
			sp = files[a % FZ_FILES].hpath;
			dp = files[c % FZ_FILES].hpath;
			if (src_io->ops->open(src_io, sp, 0, &f) != SCONE_ERR_OK)
				break;
			OK(src_io->ops->pread(f, buf, sizeof(buf), position(src_io, sp, b, 0), &got));
			src_io->ops->close(f);
			if (write_at(io, dp, buf, got, position(io, dp, d, 0), false))
				applied++;
			break;
		}
		case FZ_OP_TRUNCATE: {
			const char *path;
			if (!get8(in, &a) || !get16(in, &b) || !get16(in, &c))
				return applied;
			path = files[a % FZ_FILES].hpath;
			if (set_size(io, path, position(io, path, b, c)))
				applied++;
			break;
		}
		case FZ_OP_UNLINK:
			if (!get8(in, &a))
				return applied;
			if (io->ops->unlink(io, files[a % FZ_FILES].hpath) == SCONE_ERR_OK)
				applied++;
			break;
		case FZ_OP_CREATE: {
			static const char *const dirs[] = {"/vol/data", "/vol/adata", "/vol"};
			static const char hexd[] = "0123456789abcdef";
			char path[128], *p;
			uint8_t *buf;
			size_t n = 0;
			if (!get8(in, &a) || in->n < 16)
				return applied;
			p = path + snprintf(path, sizeof(path), "%s/", dirs[a % 3]);
			for (unsigned j = 0; j < 16; j++) {
				*p++ = hexd[in->p[j] >> 4];
				*p++ = hexd[in->p[j] & 15];
			}
			*p = '\0';
			in->p += 16;
			in->n -= 16;
			if (!get8(in, &e))
				return applied;
			buf = slurp(src_io, files[e % FZ_FILES].hpath, &n);
			if (buf) {
				(void)set_size(io, path, 0);
				if (write_at(io, path, buf, n, 0, true))
					applied++;
			}
			free(buf);
			break;
		}
		case FZ_OP_REPLACE: {
			uint8_t *buf;
			size_t n = 0;
			const char *dp;
			if (!get8(in, &a) || !get8(in, &b))
				return applied;
			dp = files[a % FZ_FILES].hpath;
			buf = slurp(src_io, files[b % FZ_FILES].hpath, &n);
			if (buf) {
				(void)set_size(io, dp, 0);
				if (write_at(io, dp, buf, n, 0, true))
					applied++;
			}
			free(buf);
			break;
		}
		}
	}
	return applied;
}

/* ---------------- open, read, check ---------------- */

static void problem(void *arg, enum scone_err err, const char *message)
{
	if (verbose)
		fprintf(stderr, "  check_host: %s: %s\n", scone_errname(err), message);
	++*(int *)arg;
}

/* Read file i fully; returns false on any error. Content read without an error must be right. */
static bool read_file(struct scone_volume *v, int i, bool pieces, bool phase2)
{
	const struct vfile_info *fi = &files[i];
	const uint8_t *content = phase2 ? fi->content2 : fi->content;
	const size_t size = phase2 ? fi->size2 : fi->size;
	struct scone_vfile *f;
	struct scone_vstat st;
	uint8_t *buf;
	size_t done = 0, step = pieces ? 5001 : size + 100;
	bool ok = true;
	enum scone_err err = scone_vfile_open(v, fi->vpath, SCONE_VF_RDONLY, 0, &f);

	if (err) {
		if (verbose)
			fprintf(stderr, "  open %s: %s: %s\n", fi->vpath, scone_errname(err),
				scone_err_detail());
		return false;
	}
	OK(scone_vfile_stat(f, &st));
	CHECK(!st.is_dir && st.size == size); /* the fspf is authenticated */
	buf = malloc(size + 100);
	CHECK(buf);
	for (;;) {
		size_t got = 0;
		err = scone_vfile_pread(f, buf + done, step, done, &got);
		if (err) {
			if (verbose)
				fprintf(stderr, "  read %s: %s: %s\n", fi->vpath, scone_errname(err),
					scone_err_detail());
			ok = false;
			break;
		}
		CHECK(got <= step && done + got <= size);
		if (got == 0)
			break;
		done += got;
	}
	if (ok) {
		/* No error: every byte must be the one written. */
		CHECK(done == size);
		CHECK(size == 0 || memcmp(buf, content, size) == 0);
	}
	free(buf);
	scone_vfile_close(f);
	return ok;
}

/* Apply the edits; false if any fails. */
static bool write_phase(struct scone_volume *v)
{
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		const struct edit *e = &edits[i];
		struct scone_vfile *f;
		enum scone_err err = scone_vfile_open(v, files[e->file].vpath, SCONE_VF_RDWR, 0, &f);
		if (err == SCONE_ERR_OK) {
			err = e->seed
				  ? scone_vfile_pwrite(f, files[e->file].content2 + e->off, e->len, e->off)
				  : scone_vfile_truncate(f, e->off);
			scone_vfile_close(f);
		}
		if (err) {
			if (verbose)
				fprintf(stderr, "  write phase: %s: %s: %s\n", files[e->file].vpath,
					scone_errname(err), scone_err_detail());
			return false;
		}
	}
	return true;
}

static void volume_target(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct scone_vio *io;
	struct scone_volume *v;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	unsigned flags = 0;
	int applied, problems = 0;
	enum scone_err err;
	bool all_ok = true, pieces, write;

	(void)get8(&in, &flags);
	pieces = flags & FZ_F_PIECES;
	write = flags & FZ_F_WRITE;
	OK(scone_vio_mem_clone(cur_io, &io));
	applied = mutate(io, &in);
	err =
	    scone_volume_open_at(io, FSPF_PATH, vol_key, vol_tag,
				 (flags & (FZ_F_RDWR | FZ_F_WRITE)) ? SCONE_VOL_RDWR : SCONE_VOL_RDONLY, &v);
	if (verbose)
		fprintf(stderr, "%d mutation(s) applied; volume open: %s %s\n", applied, scone_errname(err),
			err ? scone_err_detail() : "");
	if (err) {
		CHECK(applied > 0);
		io->ops->destroy(io);
		return;
	}
	for (int i = 1; i < FZ_FILES; i++)
		all_ok &= read_file(v, i, pieces, false);
	err = scone_volume_check_host(v, problem, &problems);
	CHECK((err != SCONE_ERR_OK) == (problems > 0));
	CHECK(applied > 0 || (all_ok && err == SCONE_ERR_OK));
	if (!write || !all_ok) {
		(void)scone_volume_close(v, NULL);
		io->ops->destroy(io);
		return;
	}
	/*
	 * Every file verified: whatever was changed on the host did not touch
	 * the committed state. Editing and committing must then work, and the
	 * new state must read back exactly.
	 */
	all_ok = write_phase(v);
	err = scone_volume_close(v, tag);
	if (verbose)
		fprintf(stderr, "  write phase: %s, commit: %s %s\n", all_ok ? "ok" : "failed",
			scone_errname(err), err ? scone_err_detail() : "");
	CHECK(all_ok && err == SCONE_ERR_OK);
	err = scone_volume_open_at(io, FSPF_PATH, vol_key, tag, SCONE_VOL_RDONLY, &v);
	if (verbose && err)
		fprintf(stderr, "  reopen: %s: %s\n", scone_errname(err), scone_err_detail());
	CHECK(err == SCONE_ERR_OK);
	for (int i = 1; i < FZ_FILES; i++)
		CHECK(read_file(v, i, pieces, true));
	(void)scone_volume_close(v, NULL);
	io->ops->destroy(io);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	decoders(data, size);
	volume_target(data, size);
	scone_err_clear();
	return 0;
}
