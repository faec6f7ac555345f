/*
 * fuzz_fspf.c - libFuzzer target for the fspf codec (src/volume/codec.c).
 *
 * The input is tried as
 *   - an fspf file envelope, opened with the fixed key (fuzz_common.h) and
 *     with no key; whatever plaintext comes out is decoded as an fspf body;
 *   - an fspf body directly, and a delta record's body (must re-encode to
 *     the same bytes); a body and a delta cut from the input at the share
 *     its first byte names (a delta that applies leaves an encodable state);
 *   - a plaintext, sealed and unsealed and opened again (must round-trip);
 *   - a whole FSPF file (format version 2 and later: a log of envelopes, torn tails,
 *     garbage between records), opened as a volume through the memory
 *     backend with the fixed key: the framing walk must agree with what
 *     scone_volume_open_at makes of the file (the state is the last complete
 *     record, its GCM tag the volume tag; mixed or v1-with-trailing-bytes
 *     logs are refused), and a volume that opens must take a commit (a new
 *     ephemeral region) over whatever tail it had and reopen under the new
 *     tag with exactly that state, the file ending at its last record;
 *   - a recipe for an in-memory struct vol_fspf (any field values, strings
 *     up to 6000 bytes): if vol_fspf_encode accepts it, the decoder must
 *     accept the encoding and give the same namespace back (an fspf that
 *     is written but cannot be read back bricks the volume).
 * Every body that decodes is re-encoded, and the encoding decoded and
 * encoded again: both encodings must be identical, and as long as the
 * input (the format has no variable-length alternatives). Any mismatch
 * aborts. Seeds: fuzz/corpus/fspf (fuzz/gen_corpus.c).
 */
#include "volume/internal.h"
#include "volume/vio.h"
#include "volume/volume.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

static uint8_t fixed_key[32];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_fixed_key(fixed_key);
	return 0;
}

static void encode_ok(const struct vol_fspf *f, struct scone_wbuf *w)
{
	scone_wbuf_init(w, VOL_MAX_FSPF, 1);
	CHECK(vol_fspf_encode(f, w) == SCONE_ERR_OK);
}

/* Decode in; if it decodes, the encoding must be stable and as long as in. */
static void body_roundtrip(const uint8_t *in, size_t size)
{
	struct vol_fspf f, g;
	struct scone_wbuf e1, e2;

	if (vol_fspf_decode(in, size, &f) != SCONE_ERR_OK)
		return;
	encode_ok(&f, &e1);
	CHECK(e1.size == size);
	CHECK(vol_fspf_decode(e1.data, e1.size, &g) == SCONE_ERR_OK);
	encode_ok(&g, &e2);
	CHECK(e2.size == e1.size && memcmp(e1.data, e2.data, e1.size) == 0);
	/* The decoded structures agree on what the encoding does not cover byte for byte. */
	CHECK(f.epoch == g.epoch && f.region_count == g.region_count && f.meta_count == g.meta_count &&
	      f.garbage_count == g.garbage_count && f.chunk_aead == g.chunk_aead);
	for (size_t i = 0; i < f.meta_count; i++) {
		CHECK(strcmp(f.metas[i]->path, g.metas[i]->path) == 0);
		CHECK(f.metas[i]->type == g.metas[i]->type && f.metas[i]->size == g.metas[i]->size);
		CHECK(f.metas[i]->root.flags == g.metas[i]->root.flags);
	}
	for (size_t i = 0; i < f.region_count; i++) {
		CHECK(strcmp(f.regions[i].path, g.regions[i].path) == 0);
		CHECK((f.regions[i].host_dir == NULL) == (g.regions[i].host_dir == NULL));
		CHECK(!f.regions[i].host_dir || strcmp(f.regions[i].host_dir, g.regions[i].host_dir) == 0);
	}
	scone_wbuf_free(&e1);
	scone_wbuf_free(&e2);
	vol_fspf_free(&f);
	vol_fspf_free(&g);
}

/*
 * A delta body that decodes re-encodes to as many bytes, and that encoding
 * is stable (an entry's reserved bytes are written as zeros, as in a full
 * record's body).
 */
static void delta_roundtrip(const uint8_t *in, size_t size)
{
	struct vol_delta d, e;
	struct scone_wbuf w1, w2;

	if (vol_delta_decode(in, size, &d) != SCONE_ERR_OK)
		return;
	CHECK(vol_body_is_delta(in, size));
	scone_wbuf_init(&w1, VOL_MAX_FSPF, 1);
	scone_wbuf_init(&w2, VOL_MAX_FSPF, 1);
	CHECK(vol_delta_encode(&d, &w1) == SCONE_ERR_OK);
	CHECK(w1.size == size);
	CHECK(vol_delta_decode(w1.data, w1.size, &e) == SCONE_ERR_OK);
	CHECK(e.epoch == d.epoch && e.file_count == d.file_count && e.garbage_count == d.garbage_count &&
	      e.trim_count == d.trim_count);
	CHECK(vol_delta_encode(&e, &w2) == SCONE_ERR_OK);
	CHECK(w2.size == w1.size && memcmp(w1.data, w2.data, w1.size) == 0);
	scone_wbuf_free(&w1);
	scone_wbuf_free(&w2);
	vol_delta_free(&d);
	vol_delta_free(&e);
}

/*
 * A state and a delta (the input cut where its first byte says): a delta
 * that applies leaves a state the encoder takes (one that could not be
 * written back would brick the volume at its next full record).
 */
static void delta_apply(const uint8_t *in, size_t size)
{
	struct vol_fspf f;
	struct vol_delta d;
	struct scone_wbuf w;
	size_t cut;

	if (size < 2)
		return;
	cut = 1 + (size_t)in[0] * (size - 1) / 256;
	if (vol_fspf_decode(in + 1, cut - 1, &f) != SCONE_ERR_OK)
		return;
	if (vol_delta_decode(in + cut, size - cut, &d) == SCONE_ERR_OK) {
		struct vol_id_index x;
		uint64_t epoch = f.epoch;
		CHECK(vol_id_index_build(&f, &x) == SCONE_ERR_OK);
		if (vol_fspf_apply_delta(&f, &x, &d) == SCONE_ERR_OK) {
			CHECK(f.epoch == epoch + 1 && f.garbage_count == d.garbage_count &&
			      f.trim_count == d.trim_count);
			encode_ok(&f, &w);
			scone_wbuf_free(&w);
		} else {
			CHECK(f.epoch == epoch); /* refused whole */
		}
		vol_id_index_free(&x);
		vol_delta_free(&d);
	}
	vol_fspf_free(&f);
}

static void envelope(const uint8_t *in, size_t size, const uint8_t *key)
{
	struct scone_wbuf plain;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	bool sealed = false;

	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	if (vol_envelope_open(in, size, key, &plain, &sealed, tag) == SCONE_ERR_OK) {
		CHECK(key || !sealed);
		body_roundtrip(plain.data, plain.size);
		delta_roundtrip(plain.data, plain.size);
	}
	scone_wbuf_free(&plain);
}

/* seal(in) then open must give in back, under the key and without one. */
static void seal_roundtrip(const uint8_t *in, size_t size, const uint8_t *key)
{
	struct scone_wbuf env, plain;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE], tag2[SCONE_VOLUME_TAG_SIZE];
	bool sealed = !key;

	scone_wbuf_init(&env, VOL_MAX_FSPF + 256, 0);
	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	CHECK(vol_envelope_seal(in, size, key, &env, tag) == SCONE_ERR_OK);
	CHECK(vol_envelope_open(env.data, env.size, key, &plain, &sealed, tag2) == SCONE_ERR_OK);
	CHECK(sealed == (key != NULL));
	CHECK(plain.size == size && (size == 0 || memcmp(plain.data, in, size) == 0));
	CHECK(memcmp(tag, tag2, sizeof(tag)) == 0);
	if (key && env.size) {
		/* Any change to the sealed file must be refused. */
		struct scone_wbuf p2;
		scone_wbuf_init(&p2, VOL_MAX_FSPF, 1);
		env.data[(size * 131 + 7) % env.size] ^= 0x10;
		CHECK(vol_envelope_open(env.data, env.size, key, &p2, &sealed, tag2) != SCONE_ERR_OK);
		scone_wbuf_free(&p2);
	}
	scone_wbuf_free(&env);
	scone_wbuf_free(&plain);
}

/* ---------------- the fspf as a log of records (version 2 and later) ---------------- */

#define LOG_FSPF "/vol/fspf"
#define ENV_MIN_UNSEALED (8u + 4 + 4 + 8)
#define ENV_MIN_SEALED (8u + 4 + 4 + 32 + 12 + 8 + SCONE_VOLUME_TAG_SIZE)

/* What the framing alone says about a file: mirrors the volume's open. */
struct log_walk {
	size_t count; /* complete records from the start */
	size_t prev;  /* offset of the one before the last */
	size_t last;  /* offset of the last one */
	size_t end;   /* end of the last one */
	uint32_t first_version;
	bool first_sealed;
	bool mixed; /* a later record in a v1 file, of another version, or sealed unlike the first */
};

static void walk_log(const uint8_t *in, size_t size, struct log_walk *w)
{
	size_t span;
	uint32_t version;
	bool sealed;

	memset(w, 0, sizeof(*w));
	while (w->end < size &&
	       vol_envelope_span(in + w->end, size - w->end, &span, &version, &sealed) == SCONE_ERR_OK) {
		CHECK(span <= size - w->end && span >= (sealed ? ENV_MIN_SEALED : ENV_MIN_UNSEALED));
		CHECK(version >= 1);
		if (w->count == 0) {
			w->first_version = version;
			w->first_sealed = sealed;
		} else if (w->first_sealed && !sealed && version == w->first_version) {
			return; /* a torn header (its state field lost): the log ends here */
		} else if (version < 2 || version != w->first_version || sealed != w->first_sealed) {
			w->mixed = true;
			return;
		}
		w->prev = w->last;
		w->last = w->end;
		w->end += span;
		w->count++;
	}
}

static void mem_write(struct scone_vio *io, const char *path, const uint8_t *in, size_t size)
{
	struct scone_vio_file *f;

	CHECK(io->ops->mkdirs(io, "/vol") == SCONE_ERR_OK);
	CHECK(io->ops->open(io, path, SCONE_VIO_WRITE | SCONE_VIO_CREATE, &f) == SCONE_ERR_OK);
	CHECK(io->ops->truncate(f, 0) == SCONE_ERR_OK);
	CHECK(size == 0 || io->ops->pwrite(f, in, size, 0) == SCONE_ERR_OK);
	io->ops->close(f);
}

/* The whole file (caller frees *out). */
static void mem_read(struct scone_vio *io, const char *path, uint8_t **out, size_t *size)
{
	struct scone_vio_file *f;
	uint64_t n;
	size_t got = 0;

	CHECK(io->ops->open(io, path, 0, &f) == SCONE_ERR_OK);
	CHECK(io->ops->size(f, &n) == SCONE_ERR_OK && n <= VOL_MAX_FSPF);
	CHECK((*out = malloc((size_t)n + 1)) != NULL);
	CHECK(io->ops->pread(f, *out, (size_t)n, 0, &got) == SCONE_ERR_OK && got == n);
	io->ops->close(f);
	*size = (size_t)n;
}

/* The tag of the record at in (sealed: its GCM tag); false if it does not open. */
static bool record_opens(const uint8_t *in, size_t size, uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	struct scone_wbuf plain;
	bool sealed, ok;

	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	ok = vol_envelope_open(in, size, fixed_key, &plain, &sealed, tag) == SCONE_ERR_OK;
	scone_wbuf_free(&plain);
	scone_err_clear();
	return ok;
}

/* The same for a record that must open. */
static void record_tag(const uint8_t *in, size_t size, uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	CHECK(record_opens(in, size, tag));
}

/*
 * Open the committed volume read-write, commit one change (the tail the
 * input had is cut, or the file rewritten), reopen under the new tag.
 */
static void log_commit(struct scone_vio *io, size_t regions)
{
	struct scone_volume *v;
	struct log_walk w;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE], rtag[SCONE_VOLUME_TAG_SIZE], *file;
	size_t size;
	enum scone_err err;

	if (scone_volume_open_at(io, LOG_FSPF, fixed_key, NULL, SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED,
				 &v))
		return; /* e.g. a host directory the memory backend cannot create */
	if (scone_volume_add_region(v, "/fuzz-added", SCONE_REGION_ENCRYPTED, SCONE_STORE_EPHEMERAL, NULL)) {
		(void)scone_volume_close(v, NULL);
		return;
	}
	if (scone_volume_close(v, tag) != SCONE_ERR_OK)
		return; /* the state grew past a limit: refused, not written */
	mem_read(io, LOG_FSPF, &file, &size);
	walk_log(file, size, &w);
	/* Never written as v1; after the last record only the log's zero padding. */
	CHECK(w.count >= 1 && !w.mixed && w.first_version >= 2);
	for (size_t i = w.end; i < size; i++)
		CHECK(file[i] == 0);
	if (w.first_sealed) {
		record_tag(file + w.last, w.end - w.last, rtag);
		CHECK(memcmp(rtag, tag, sizeof(tag)) == 0);
	}
	free(file);
	err = scone_volume_open_at(io, LOG_FSPF, fixed_key, tag, SCONE_VOL_RDONLY | SCONE_VOL_ALLOW_UNSEALED,
				   &v);
	if (err != SCONE_ERR_OK) {
		fprintf(stderr, "committed volume does not reopen: %s: %s\n", scone_errname(err),
			scone_err_detail());
		abort();
	}
	CHECK(scone_volume_region_count(v) == regions + 1);
	CHECK(scone_volume_close(v, NULL) == SCONE_ERR_OK);
}

static void log_open(const uint8_t *in, size_t size)
{
	struct scone_vio *io;
	struct scone_volume *v;
	struct log_walk w;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE], rtag[SCONE_VOLUME_TAG_SIZE];
	size_t regions;
	enum scone_err err;

	CHECK(scone_vio_mem_new(&io) == SCONE_ERR_OK);
	mem_write(io, LOG_FSPF, in, size);
	walk_log(in, size, &w);
	err = scone_volume_open_at(io, LOG_FSPF, fixed_key, NULL, SCONE_VOL_RDONLY | SCONE_VOL_ALLOW_UNSEALED,
				   &v);
	if (w.count == 0 || w.mixed || (w.first_version == 1 && w.end != size))
		CHECK(err != SCONE_ERR_OK);
	if (err == SCONE_ERR_OK) {
		/*
		 * The state is the last complete record, or the one before it
		 * when the last was torn by a power loss (a zeroed sector, only
		 * zeros after it: docs/volume-format.md §3 "Zero padding").
		 */
		CHECK(scone_volume_is_sealed(v) == w.first_sealed);
		scone_volume_tag(v, tag);
		if (!record_opens(in + w.last, w.end - w.last, rtag) || memcmp(tag, rtag, sizeof(tag)) != 0) {
			CHECK(w.count >= 2);
			record_tag(in + w.prev, w.last - w.prev, rtag);
			CHECK(memcmp(tag, rtag, sizeof(tag)) == 0);
		}
		regions = scone_volume_region_count(v);
		CHECK(scone_volume_close(v, NULL) == SCONE_ERR_OK);
		log_commit(io, regions);
	}
	io->ops->destroy(io);
}

/* ---------------- encoder -> decoder ---------------- */

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned get8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t getn(struct in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)get8(in) << (8 * i);
	return v;
}

static void getbytes(struct in *in, void *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((uint8_t *)out)[i] = (uint8_t)get8(in);
}

/* A string: literal bytes (NULs mapped), or a long generated path. */
static char *get_string(struct in *in)
{
	unsigned b = get8(in);
	size_t n;
	char *s;

	if (b & 0x80) {
		unsigned c = get8(in);
		n = (size_t)(getn(in, 2) % 6000);
		CHECK((s = malloc(n + 1)) != NULL);
		for (size_t i = 0; i < n; i++)
			s[i] = i % 50 == 0 ? '/' : (char)(c ? c : 'a');
	} else {
		n = b & 0x7f;
		CHECK((s = malloc(n + 1)) != NULL);
		for (size_t i = 0; i < n; i++) {
			unsigned c = get8(in);
			s[i] = (char)(c ? c : 'x');
		}
	}
	s[n] = '\0';
	return s;
}

static void struct_roundtrip(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct vol_fspf f, g;
	struct scone_wbuf e1, e2;
	size_t persisted = 0, j = 0;

	memset(&f, 0, sizeof(f));
	f.chunk_aead = (uint8_t)(get8(&in) % 4);
	f.epoch = getn(&in, 8);
	getbytes(&in, f.prev_tag, sizeof(f.prev_tag));
	getbytes(&in, f.claim_key, 4);
	f.region_count = get8(&in) % 5;
	CHECK((f.regions = calloc(f.region_count + 1, sizeof(*f.regions))) != NULL);
	for (size_t i = 0; i < f.region_count; i++) {
		struct vol_region *r = &f.regions[i];
		unsigned b = get8(&in);
		r->kind = (uint8_t)(b % 4);
		r->store = (uint8_t)(b / 4 % 3);
		r->path = get_string(&in);
		r->host_dir = b & 0x80 ? NULL : get_string(&in);
	}
	f.meta_count = f.meta_cap = get8(&in) % 6;
	CHECK((f.metas = calloc(f.meta_count + 1, sizeof(*f.metas))) != NULL);
	for (size_t i = 0; i < f.meta_count; i++) {
		struct vol_meta *m = calloc(1, sizeof(*m));
		unsigned b = get8(&in);
		CHECK(m != NULL);
		f.metas[i] = m;
		m->type = (uint8_t)(b % 4);
		m->ephemeral = b & 0x80;
		m->mode = (uint32_t)getn(&in, 4);
		m->path = get_string(&in);
		getbytes(&in, m->file_id, 4);
		switch (get8(&in) % 5) {
		case 0:
			m->size = 0;
			break;
		case 1:
			m->size = getn(&in, 3);
			break;
		case 2:
			m->size = VOL_MAX_FILE_SIZE;
			break;
		case 3:
			m->size = VOL_MAX_FILE_SIZE + 1;
			break;
		default:
			m->size = getn(&in, 8);
			break;
		}
		m->root.ctr = getn(&in, 2);
		m->root.flags = (uint8_t)get8(&in);
		persisted += !m->ephemeral;
	}
	f.garbage_count = get8(&in) % 4;
	CHECK((f.garbage = calloc(f.garbage_count + 1, VOL_ID_SIZE)) != NULL);
	for (size_t i = 0; i < f.garbage_count; i++)
		getbytes(&in, f.garbage[i], VOL_ID_SIZE);

	scone_wbuf_init(&e1, VOL_MAX_FSPF, 1);
	if (vol_fspf_encode(&f, &e1) == SCONE_ERR_OK) {
		enum scone_err err = vol_fspf_decode(e1.data, e1.size, &g);
		if (err != SCONE_ERR_OK) {
			fprintf(stderr, "encoded fspf does not decode: %s: %s\n", scone_errname(err),
				scone_err_detail());
			abort();
		}
		CHECK(g.meta_count == persisted && g.region_count == f.region_count && g.epoch == f.epoch &&
		      g.garbage_count == f.garbage_count);
		for (size_t i = 0; i < f.meta_count; i++) {
			if (f.metas[i]->ephemeral)
				continue;
			CHECK(strcmp(f.metas[i]->path, g.metas[j]->path) == 0);
			CHECK(f.metas[i]->type == g.metas[j]->type && f.metas[i]->mode == g.metas[j]->mode);
			j++;
		}
		for (size_t i = 0; i < f.region_count; i++)
			CHECK(strcmp(f.regions[i].path, g.regions[i].path) == 0);
		encode_ok(&g, &e2);
		CHECK(e2.size == e1.size && memcmp(e1.data, e2.data, e1.size) == 0);
		scone_wbuf_free(&e2);
		vol_fspf_free(&g);
	}
	scone_wbuf_free(&e1);
	vol_fspf_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > ((size_t)1 << 20))
		return 0;
	envelope(data, size, fixed_key);
	envelope(data, size, NULL);
	body_roundtrip(data, size);
	delta_roundtrip(data, size);
	delta_apply(data, size);
	seal_roundtrip(data, size, fixed_key);
	seal_roundtrip(data, size, NULL);
	log_open(data, size);
	struct_roundtrip(data, size);
	scone_err_clear();
	return 0;
}
