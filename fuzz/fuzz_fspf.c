/*
 * fuzz_fspf.c - libFuzzer target for the fspf codec (src/volume/codec.c).
 *
 * The input is tried as
 *   - an fspf file envelope, opened with the fixed key (fuzz_common.h) and
 *     with no key; whatever plaintext comes out is decoded as an fspf body;
 *   - an fspf body directly;
 *   - a plaintext, sealed and unsealed and opened again (must round-trip);
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

static void envelope(const uint8_t *in, size_t size, const uint8_t *key)
{
	struct scone_wbuf plain;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	bool sealed = false;

	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	if (vol_envelope_open(in, size, key, &plain, &sealed, tag) == SCONE_ERR_OK) {
		CHECK(key || !sealed);
		body_roundtrip(plain.data, plain.size);
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
	seal_roundtrip(data, size, fixed_key);
	seal_roundtrip(data, size, NULL);
	struct_roundtrip(data, size);
	scone_err_clear();
	return 0;
}
