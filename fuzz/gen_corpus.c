/*
 * gen_corpus.c - writes the seed corpora fuzz/corpus/fspf and
 * fuzz/corpus/chunk. Not built by the Makefile (it is not a fuzz_* file);
 * run by hand from the top directory when the formats change:
 *
 *   clang -std=c17 -D_GNU_SOURCE -g -Isrc -o build/gen_corpus fuzz/gen_corpus.c \
 *       $(ls src/lib/[a-z]*.c src/volume/[a-z]*.c) -lssl -lcrypto -lpthread && build/gen_corpus
 *
 * Sealed seeds use random salts and nonces, so reruns differ byte-wise.
 */
#include "volume/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static void die(const char *what)
{
	fprintf(stderr, "gen_corpus: %s failed (%s)\n", what, scone_err_detail());
	exit(1);
}

static void put(const char *dir, const char *name, const void *data, size_t size)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "fuzz/corpus/%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void mkdir_p(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
}

/* ---------------- fspf ---------------- */

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 13);
}

static struct vol_meta *meta(const char *path, uint8_t type, uint64_t size, uint8_t seed)
{
	struct vol_meta *m = calloc(1, sizeof(*m));

	if (!m || !(m->path = strdup(path)))
		die("calloc");
	m->type = type;
	m->mode = type == VOL_T_DIR ? 0755 : 0644;
	if (type == VOL_T_FILE) {
		fill(m->file_id, sizeof(m->file_id), seed);
		fill(m->file_key, sizeof(m->file_key), (uint8_t)(seed + 1));
		m->size = size;
		if (size) {
			fill(m->root.gen, sizeof(m->root.gen), (uint8_t)(seed + 2));
			m->root.ctr = 42 + seed;
			fill(m->root.tag, sizeof(m->root.tag), (uint8_t)(seed + 3));
			m->root.flags = VOL_ENTRY_PRESENT | (seed & 1 ? VOL_ENTRY_SLOT_B : 0);
		}
	}
	return m;
}

static void region(struct vol_region *r, const char *path, uint8_t kind, uint8_t store, const char *host)
{
	memset(r, 0, sizeof(*r));
	r->path = strdup(path);
	r->host_dir = host ? strdup(host) : NULL;
	r->kind = kind;
	r->store = store;
}

static void encode(const struct vol_fspf *f, struct scone_wbuf *w)
{
	scone_wbuf_init(w, VOL_MAX_FSPF, 0);
	if (vol_fspf_encode(f, w) != SCONE_ERR_OK)
		die("vol_fspf_encode");
}

static void seal(const struct scone_wbuf *body, const uint8_t *key, struct scone_wbuf *env)
{
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];

	scone_wbuf_init(env, VOL_MAX_FSPF + 256, 0);
	if (vol_envelope_seal(body->data, body->size, key, env, tag) != SCONE_ERR_OK)
		die("vol_envelope_seal");
}

static void gen_fspf(void)
{
	struct vol_fspf f;
	struct scone_wbuf body, env, min;
	uint8_t key[32], *tmp;

	fuzz_fixed_key(key);
	/* Minimal: no regions, no entries. */
	memset(&f, 0, sizeof(f));
	f.chunk_aead = SCONE_AEAD_AES256_OCB;
	fill(f.claim_key, sizeof(f.claim_key), 9);
	encode(&f, &min);
	put("fspf", "body-min", min.data, min.size);
	seal(&min, NULL, &env);
	put("fspf", "env-unsealed-min", env.data, env.size);
	scone_wbuf_free(&env);
	seal(&min, key, &env);
	put("fspf", "env-sealed-min", env.data, env.size);
	scone_wbuf_free(&env);

	/* Full: every region kind and store, files with and without a tree, a directory, garbage. */
	f.epoch = 7;
	f.chunk_aead = SCONE_AEAD_AES256_GCM;
	fill(f.prev_tag, sizeof(f.prev_tag), 3);
	f.region_count = 4;
	f.regions = calloc(4, sizeof(*f.regions));
	region(&f.regions[0], "/data", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, "data");
	region(&f.regions[1], "/logs", SCONE_REGION_AUTHENTICATED, SCONE_STORE_KERNEL, "/var/lib/logs");
	region(&f.regions[2], "/", SCONE_REGION_NOT_PROTECTED, SCONE_STORE_KERNEL, ".");
	region(&f.regions[3], "/tmp", SCONE_REGION_ENCRYPTED, SCONE_STORE_EPHEMERAL, NULL);
	f.meta_count = f.meta_cap = 5;
	f.metas = calloc(5, sizeof(*f.metas));
	f.metas[0] = meta("/data/a", VOL_T_FILE, 300000, 1);
	f.metas[1] = meta("/data/dir", VOL_T_DIR, 0, 2);
	f.metas[2] = meta("/data/dir/empty", VOL_T_FILE, 0, 3);
	f.metas[3] = meta("/logs/app.log", VOL_T_FILE, 4096, 4);
	f.metas[4] = meta("/tmp/scratch", VOL_T_FILE, 10, 5);
	f.metas[4]->ephemeral = true; /* not encoded */
	f.garbage_count = 2;
	f.garbage = calloc(2, VOL_ID_SIZE);
	fill(f.garbage[0], VOL_ID_SIZE, 0x40);
	fill(f.garbage[1], VOL_ID_SIZE, 0x80);
	encode(&f, &body);
	put("fspf", "body-full", body.data, body.size);
	seal(&body, NULL, &env);
	put("fspf", "env-unsealed-full", env.data, env.size);
	scone_wbuf_free(&env);
	seal(&body, key, &env);
	put("fspf", "env-sealed-full", env.data, env.size);

	/* Slightly broken variants. */
	tmp = malloc(body.size + env.size + 16);
	put("fspf", "bad-body-truncated", body.data, body.size - 5);
	memcpy(tmp, body.data, body.size);
	tmp[body.size] = 0;
	put("fspf", "bad-body-trailing", tmp, body.size + 1);
	tmp[12] = 3; /* chunk cipher */
	put("fspf", "bad-body-cipher", tmp, body.size);
	memcpy(tmp, body.data, body.size);
	tmp[8 + 4 + 4 + 8 + 16 + 32] = 0xff; /* region count */
	put("fspf", "bad-body-region-count", tmp, body.size);
	memcpy(tmp, body.data, body.size);
	tmp[body.size - 2 * VOL_ID_SIZE - 4] = 3; /* garbage count */
	put("fspf", "bad-body-garbage-count", tmp, body.size);
	memcpy(tmp, env.data, env.size);
	tmp[env.size - 1] ^= 1; /* tag */
	put("fspf", "bad-env-sealed-tag", tmp, env.size);
	memcpy(tmp, env.data, env.size);
	tmp[8 + 4 + 4 + 32 + 12] ^= 1; /* length */
	put("fspf", "bad-env-sealed-length", tmp, env.size);
	scone_wbuf_free(&env);
	seal(&body, NULL, &env);
	memcpy(tmp, env.data, env.size);
	tmp[16] ^= 2; /* length */
	put("fspf", "bad-env-unsealed-length", tmp, env.size);
	free(tmp);
	scone_wbuf_free(&env);
	scone_wbuf_free(&body);
	scone_wbuf_free(&min);
	vol_fspf_free(&f);
}

/* ---------------- chunk ---------------- */

struct ops {
	uint8_t b[8192];
	size_t n;
};

static void o8(struct ops *o, unsigned v)
{
	o->b[o->n++] = (uint8_t)v;
}

static void o16(struct ops *o, unsigned v)
{
	o8(o, v & 0xff);
	o8(o, v >> 8);
}

static void start(struct ops *o, unsigned flags)
{
	o->n = 0;
	o8(o, flags);
}

static void overwrite(struct ops *o, unsigned file, unsigned block, unsigned off, const void *bytes,
		      unsigned n)
{
	o8(o, FZ_OP_OVERWRITE);
	o8(o, file);
	o16(o, block);
	o16(o, off);
	o8(o, n);
	memcpy(o->b + o->n, bytes, n);
	o->n += n;
}

static void copy(struct ops *o, bool old, unsigned sfile, unsigned sblock, unsigned dfile, unsigned dblock)
{
	o8(o, FZ_OP_COPY | (old ? FZ_OP_FROM_OLD : 0));
	o8(o, sfile);
	o16(o, sblock);
	o8(o, dfile);
	o16(o, dblock);
}

/* Block numbers in a host file (see internal.h): header, then groups of 130. */
static unsigned node_blk(unsigned k, unsigned slot)
{
	return 1 + VOL_GROUP_BLOCKS * k + slot;
}

static unsigned data_blk(unsigned chunk, unsigned slot)
{
	return 1 + VOL_GROUP_BLOCKS * (chunk / 64) + 2 + slot * 64 + chunk % 64;
}

static void emit(const char *name, const struct ops *o)
{
	put("chunk", name, o->b, o->n);
}

/* A file's entry in a delta, for the file made by meta(path, VOL_T_FILE, ., seed). */
static void delta_file(struct vol_delta_file *df, uint8_t seed, uint64_t size)
{
	memset(df, 0, sizeof(*df));
	fill(df->file_id, sizeof(df->file_id), seed);
	df->size = size;
	df->mtime_ns = 1700000000000000000 + seed;
	fill(df->root.gen, sizeof(df->root.gen), (uint8_t)(seed + 5));
	df->root.ctr = 99 + seed;
	fill(df->root.tag, sizeof(df->root.tag), (uint8_t)(seed + 6));
	df->root.flags = VOL_ENTRY_PRESENT;
}

/* Delta records: a body, a sealed one, and a whole log (a full state, two deltas chained, padding). */
static void gen_fspf_delta(void)
{
	struct vol_fspf f;
	struct vol_delta d;
	struct scone_wbuf body, env, log;
	uint8_t key[32], tag[SCONE_VOLUME_TAG_SIZE];

	fuzz_fixed_key(key);
	memset(&f, 0, sizeof(f));
	f.chunk_aead = SCONE_AEAD_AES256_GCM;
	f.epoch = 7;
	fill(f.claim_key, sizeof(f.claim_key), 9);
	f.region_count = 1;
	f.regions = calloc(1, sizeof(*f.regions));
	region(&f.regions[0], "/data", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, "data");
	f.meta_count = f.meta_cap = 2;
	f.metas = calloc(2, sizeof(*f.metas));
	f.metas[0] = meta("/data/a", VOL_T_FILE, 300000, 1);
	f.metas[1] = meta("/data/b", VOL_T_FILE, 0, 3);
	memset(&d, 0, sizeof(d));
	d.files = calloc(2, sizeof(*d.files));
	d.garbage = calloc(1, VOL_ID_SIZE);
	d.trims = calloc(1, VOL_ID_SIZE);
	if (!f.regions || !f.metas || !d.files || !d.garbage || !d.trims)
		die("calloc");
	/* the log: the full state, then deltas of epochs 8 and 9, each naming the tag before it */
	encode(&f, &body);
	scone_wbuf_init(&log, 1 << 20, 0);
	if (vol_envelope_seal(body.data, body.size, key, &log, tag) != SCONE_ERR_OK)
		die("vol_envelope_seal");
	scone_wbuf_free(&body);
	for (unsigned i = 0; i < 2; i++) {
		d.epoch = 8 + i;
		memcpy(d.prev_tag, tag, sizeof(tag));
		d.file_count = i + 1;
		delta_file(&d.files[0], 1, 5000 + i);
		delta_file(&d.files[1], 3, 4096);
		d.garbage_count = d.trim_count = i;
		fill(d.garbage[0], VOL_ID_SIZE, 0x40);
		fill(d.trims[0], VOL_ID_SIZE, 0x50);
		scone_wbuf_init(&body, VOL_MAX_FSPF, 0);
		if (vol_delta_encode(&d, &body) != SCONE_ERR_OK)
			die("vol_delta_encode");
		if (i == 1) {
			put("fspf", "body-delta", body.data, body.size);
			seal(&body, key, &env);
			put("fspf", "env-sealed-delta", env.data, env.size);
			scone_wbuf_free(&env);
		}
		if (vol_envelope_seal(body.data, body.size, key, &log, tag) != SCONE_ERR_OK)
			die("vol_envelope_seal");
		scone_wbuf_free(&body);
	}
	put("fspf", "log-full-two-deltas", log.data, log.size);
	while (log.size < (64u << 10))
		if (scone_wbuf_u8(&log, 0) != SCONE_ERR_OK)
			die("padding");
	put("fspf", "log-full-two-deltas-padded", log.data, log.size);
	scone_wbuf_free(&log);
	vol_delta_free(&d);
	vol_fspf_free(&f);
}

static void gen_chunk(void)
{
	struct ops o;
	struct vol_node_plain np;
	struct vol_header h;
	uint8_t block[VOL_BLOCK];
	const uint8_t x[4] = {0xde, 0xad, 0xbe, 0xef};

	/* Plain decoders. */
	memset(&np, 0, sizeof(np));
	fill(np.file_id, sizeof(np.file_id), 0x11);
	np.index = 1;
	for (unsigned i = 0; i < VOL_NODE_ENTRIES; i += 3) {
		fill(np.e[i].gen, VOL_GEN_SIZE, (uint8_t)i);
		np.e[i].ctr = i;
		fill(np.e[i].tag, SCONE_TAG_SIZE, (uint8_t)(i + 1));
		np.e[i].flags = (uint8_t)(VOL_ENTRY_PRESENT | (i & 1 ? VOL_ENTRY_SLOT_B : 0));
	}
	vol_node_encode(&np, block);
	put("chunk", "node-valid", block, VOL_BLOCK);
	block[VOL_NODE_HDR + 5 * VOL_ENTRY_SIZE + 40] = 0x4;
	put("chunk", "node-bad-flags", block, VOL_BLOCK);
	fill((uint8_t *)&h, sizeof(h), 0x22); /* file id, claims */
	vol_header_encode(&h, block);
	put("chunk", "header-valid", block, 256);
	put("chunk", "header-short", block, 60);

	/* Volume mutations (fuzz_common.h). */
	start(&o, 0);
	emit("vol-noop", &o);
	start(&o, FZ_F_RDWR | FZ_F_PIECES);
	emit("vol-noop-rdwr-pieces", &o);
	start(&o, 0);
	overwrite(&o, FZ_FILE_SMALL, data_blk(1, 1), 100, x, 1); /* chunk 1, rewritten in epoch 2: slot B */
	emit("vol-small-chunk", &o);
	start(&o, 0);
	overwrite(&o, FZ_FILE_SMALL, data_blk(1, 0), 100, x, 1); /* stale slot: no effect */
	emit("vol-small-stale-slot", &o);
	start(&o, FZ_F_WRITE);
	emit("vol-write", &o);
	start(&o, FZ_F_WRITE | FZ_F_PIECES);
	overwrite(&o, FZ_FILE_BIG, node_blk(1, 0), 10, x, 4);	/* stale node slot, rewritten by the commit */
	overwrite(&o, FZ_FILE_SMALL, data_blk(2, 1), 10, x, 4); /* free slot of chunk 2 */
	emit("vol-write-stale-slots", &o);
	start(&o, FZ_F_PIECES);
	overwrite(&o, FZ_FILE_BIG, node_blk(1, 1), 200, x, 4);
	emit("vol-big-node1", &o);
	start(&o, 0);
	overwrite(&o, FZ_FILE_BIG, node_blk(0, 1), 4000, x, 4);
	emit("vol-big-node0", &o);
	start(&o, 0);
	overwrite(&o, FZ_FILE_AUTH, data_blk(2, 0), 7, x, 2);
	emit("vol-auth-chunk", &o);
	start(&o, 0);
	overwrite(&o, FZ_FILE_SMALL, 0, 20, x, 4); /* header: file id */
	emit("vol-header-id", &o);
	start(&o, 0);
	overwrite(&o, FZ_FILE_FSPF, 0, 70, x, 1);
	emit("vol-fspf", &o);
	start(&o, 0);
	copy(&o, false, FZ_FILE_BIG, data_blk(5, 0), FZ_FILE_BIG, data_blk(6, 0)); /* duplicated chunk */
	emit("vol-big-dup-chunk", &o);
	start(&o, 0);
	copy(&o, false, FZ_FILE_BIG, data_blk(66, 0), FZ_FILE_BIG, data_blk(67, 0));
	copy(&o, false, FZ_FILE_BIG, data_blk(67, 0), FZ_FILE_BIG, data_blk(66, 0));
	emit("vol-big-swap-chunks", &o);
	start(&o, 0);
	copy(&o, true, FZ_FILE_SMALL, data_blk(1, 0), FZ_FILE_SMALL, data_blk(1, 1)); /* chunk rollback */
	emit("vol-small-chunk-rollback", &o);
	start(&o, 0);
	copy(&o, true, FZ_FILE_BIG, node_blk(1, 0), FZ_FILE_BIG, node_blk(1, 1)); /* node rollback */
	emit("vol-big-node-rollback", &o);
	start(&o, 0);
	copy(&o, false, FZ_FILE_SMALL, 0, FZ_FILE_BIG, 0); /* another file's header */
	emit("vol-header-swap", &o);
	start(&o, 0);
	o8(&o, FZ_OP_TRUNCATE);
	o8(&o, FZ_FILE_BIG);
	o16(&o, node_blk(1, 0));
	o16(&o, 0);
	emit("vol-big-truncate", &o);
	start(&o, 0);
	o8(&o, FZ_OP_TRUNCATE);
	o8(&o, FZ_FILE_AUTH);
	o16(&o, VOL_GROUP_BLOCKS + 2);
	o16(&o, 0);
	emit("vol-auth-extend", &o);
	start(&o, 0);
	o8(&o, FZ_OP_UNLINK);
	o8(&o, FZ_FILE_EMPTY);
	emit("vol-unlink", &o);
	start(&o, 0);
	o8(&o, FZ_OP_CREATE);
	o8(&o, 0);
	for (unsigned i = 0; i < 16; i++)
		o8(&o, 0x30 + i);
	o8(&o, FZ_FILE_BIG); /* no claim for the current epoch: reported */
	emit("vol-extra-file", &o);
	o.b[o.n - 1] = FZ_FILE_SMALL; /* carries the stopped writer's claim: taken for a leftover */
	emit("vol-extra-file-claimed", &o);
	start(&o, 0);
	o8(&o, FZ_OP_REPLACE);
	o8(&o, FZ_FILE_SMALL);
	o8(&o, FZ_FILE_AUTH);
	emit("vol-replace-file", &o);
	start(&o, 0);
	o8(&o, FZ_OP_REPLACE | FZ_OP_FROM_OLD);
	o8(&o, FZ_FILE_BIG);
	o8(&o, FZ_FILE_BIG);
	emit("vol-big-file-rollback", &o);
	start(&o, FZ_F_RDWR);
	o8(&o, FZ_OP_REPLACE | FZ_OP_FROM_OLD);
	o8(&o, FZ_FILE_FSPF);
	o8(&o, FZ_FILE_FSPF);
	emit("vol-fspf-rollback", &o);
}

int main(void)
{
	mkdir_p("fuzz/corpus");
	mkdir_p("fuzz/corpus/fspf");
	mkdir_p("fuzz/corpus/chunk");
	gen_fspf();
	gen_fspf_delta();
	gen_chunk();
	return 0;
}
