/*
 * codec.c - byte layouts of the fspf (envelope and body), integrity-tree
 * nodes, entries and the per-file header. Decoders take untrusted bytes
 * and read them only through struct scone_rbuf; each rejects malformed
 * input with a message naming the field and offset. Fuzzed by
 * fuzz/fuzz_fspf.c and fuzz/fuzz_chunk.c.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const char fspf_body_magic[8] = "SCONEFS1";
static const char fspf_delta_magic[8] = "SCONEFD1";
static const char fspf_redo_magic[8] = "SCONEFD2"; /* a delta followed by redo blocks */
static const char fspf_env_magic[8] = "SCONEFSP";
static const char node_magic[4] = "SCVN";
static const char header_magic[8] = "SCONEVF1";
#define FORMAT_VERSION 1u /* integrity nodes and file headers */
/* fspf body: VOL_BODY_VERSION; envelope: VOL_ENV_VERSION (internal.h, docs/volume-format.md) */
#define ENV_VERSION VOL_ENV_VERSION
#define ENV_UNSEALED 0u
#define ENV_SEALED 1u
#define ENV_SALT 32u

enum scone_err vol_path_check(const char *path)
{
	size_t len = strlen(path);
	const char *p = path;

	if (len == 0 || path[0] != '/')
		return scone_err_set(SCONE_ERR_INVALID, "path '%.200s' must be absolute", path);
	if (len >= VOL_MAX_PATH)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "path of %zu bytes exceeds %u", len,
				     VOL_MAX_PATH);
	if (len == 1)
		return SCONE_ERR_OK;
	while (*p) {
		const char *c = p + 1, *end = strchr(c, '/');
		size_t n = end ? (size_t)(end - c) : strlen(c);
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return scone_err_set(SCONE_ERR_INVALID,
					     "path '%.200s': empty, '.' or '..' component at byte %zu", path,
					     (size_t)(c - path));
		for (size_t i = 0; i < n; i++)
			if (c[i] == '\0' || c[i] == '\n')
				return SCONE_ERR_INVALID;
		p = c + n;
	}
	return SCONE_ERR_OK;
}

void vol_entry_encode(const struct vol_entry *e, uint8_t out[static VOL_ENTRY_SIZE])
{
	memset(out, 0, VOL_ENTRY_SIZE);
	memcpy(out, e->gen, VOL_GEN_SIZE);
	scone_put_le64(out + 16, e->ctr);
	memcpy(out + 24, e->tag, SCONE_TAG_SIZE);
	out[40] = e->flags;
}

void vol_entry_decode(const uint8_t in[static VOL_ENTRY_SIZE], struct vol_entry *out)
{
	memcpy(out->gen, in, VOL_GEN_SIZE);
	out->ctr = scone_get_le64(in + 16);
	memcpy(out->tag, in + 24, SCONE_TAG_SIZE);
	out->flags = in[40];
}

static enum scone_err entry_read(struct scone_rbuf *r, const char *field, struct vol_entry *e)
{
	const uint8_t *p;

	SCONE_TRY(scone_rbuf_view(r, field, &p, VOL_ENTRY_SIZE));
	vol_entry_decode(p, e);
	if (e->flags & ~(VOL_ENTRY_PRESENT | VOL_ENTRY_SLOT_B))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s has unknown flags 0x%x at byte %zu",
				     r->what, field, e->flags, r->pos - VOL_ENTRY_SIZE + 40);
	return SCONE_ERR_OK;
}

static enum scone_err entry_write(struct scone_wbuf *w, const struct vol_entry *e)
{
	uint8_t b[VOL_ENTRY_SIZE];
	vol_entry_encode(e, b);
	return scone_wbuf_put(w, b, sizeof(b));
}

void vol_node_encode(const struct vol_node_plain *n, uint8_t out[static VOL_BLOCK])
{
	memset(out, 0, VOL_NODE_HDR);
	memcpy(out, node_magic, 4);
	scone_put_le32(out + 4, FORMAT_VERSION);
	memcpy(out + 8, n->file_id, VOL_ID_SIZE);
	scone_put_le64(out + 24, n->index);
	for (unsigned i = 0; i < VOL_NODE_ENTRIES; i++)
		vol_entry_encode(&n->e[i], out + VOL_NODE_HDR + i * VOL_ENTRY_SIZE);
}

enum scone_err vol_node_decode(const uint8_t in[static VOL_BLOCK], struct vol_node_plain *out)
{
	struct scone_rbuf r;
	const uint8_t *magic;
	uint32_t version;

	scone_rbuf_init(&r, in, VOL_BLOCK, "integrity node");
	SCONE_TRY(scone_rbuf_view(&r, "magic", &magic, 4));
	if (memcmp(magic, node_magic, 4) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "integrity node: bad magic at byte 0");
	SCONE_TRY(scone_rbuf_u32(&r, "version", &version));
	if (version != FORMAT_VERSION)
		return scone_err_set(SCONE_ERR_MALFORMED, "integrity node: unsupported version %u at byte 4",
				     version);
	SCONE_TRY(scone_rbuf_bytes(&r, "file id", out->file_id, VOL_ID_SIZE));
	SCONE_TRY(scone_rbuf_u64(&r, "index", &out->index));
	r.pos = VOL_NODE_HDR;
	for (unsigned i = 0; i < VOL_NODE_ENTRIES; i++)
		SCONE_TRY(entry_read(&r, i < VOL_DATA_PER_NODE ? "data entry" : "child entry", &out->e[i]));
	return SCONE_ERR_OK;
}

void vol_header_encode(const struct vol_header *h, uint8_t out[static VOL_BLOCK])
{
	memset(out, 0, VOL_BLOCK);
	memcpy(out, header_magic, 8);
	scone_put_le32(out + 8, FORMAT_VERSION);
	scone_put_le32(out + 12, VOL_BLOCK);
	memcpy(out + 16, h->file_id, VOL_ID_SIZE);
	for (unsigned i = 0; i < 2; i++) {
		uint8_t *c = out + 32 + 48 * i;
		scone_put_le64(c, h->claim[i].epoch);
		scone_put_le64(c + 8, h->claim[i].size);
		memcpy(c + 16, h->claim[i].mac, SCONE_SHA256_SIZE);
	}
}

enum scone_err vol_header_decode(const uint8_t *in, size_t size, struct vol_header *out)
{
	struct scone_rbuf r;
	const uint8_t *magic;
	uint32_t version, block;

	scone_rbuf_init(&r, in, size, "file header");
	SCONE_TRY(scone_rbuf_view(&r, "magic", &magic, 8));
	if (memcmp(magic, header_magic, 8) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "file header: not a protected file (bad magic)");
	SCONE_TRY(scone_rbuf_u32(&r, "version", &version));
	SCONE_TRY(scone_rbuf_u32(&r, "block size", &block));
	if (version != FORMAT_VERSION || block != VOL_BLOCK)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "file header: unsupported version %u or block size %u", version, block);
	SCONE_TRY(scone_rbuf_bytes(&r, "file id", out->file_id, VOL_ID_SIZE));
	for (unsigned i = 0; i < 2; i++) {
		SCONE_TRY(scone_rbuf_u64(&r, "claim epoch", &out->claim[i].epoch));
		SCONE_TRY(scone_rbuf_u64(&r, "claim size", &out->claim[i].size));
		SCONE_TRY(scone_rbuf_bytes(&r, "claim mac", out->claim[i].mac, SCONE_SHA256_SIZE));
	}
	return SCONE_ERR_OK;
}

/* ---------------- fspf body ---------------- */

static enum scone_err put_str(struct scone_wbuf *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > UINT16_MAX)
		return SCONE_ERR_NAME_TOO_LONG;
	SCONE_TRY(scone_wbuf_u16(w, (uint16_t)n));
	return scone_wbuf_put(w, s, n);
}

/*
 * The decoder's rules, applied before encoding: an fspf the decoder would
 * refuse must never be written (it would make the volume unopenable).
 */
static enum scone_err fspf_check(const struct vol_fspf *f)
{
	if (f->chunk_aead != SCONE_AEAD_AES256_GCM && f->chunk_aead != SCONE_AEAD_AES256_OCB)
		return scone_err_set(SCONE_ERR_INVALID, "fspf: unknown chunk cipher %u", f->chunk_aead);
	if (f->region_count > VOL_MAX_REGIONS || f->meta_count > VOL_MAX_ENTRIES ||
	    f->garbage_count > VOL_MAX_ENTRIES || f->trim_count > VOL_MAX_ENTRIES)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "fspf: too many regions, entries or deleted files");
	for (size_t i = 0; i < f->region_count; i++) {
		const struct vol_region *r = &f->regions[i];
		size_t hl = r->host_dir ? strlen(r->host_dir) : 0;
		if (r->kind > SCONE_REGION_ENCRYPTED || r->store > SCONE_STORE_EPHEMERAL ||
		    vol_path_check(r->path) != SCONE_ERR_OK ||
		    (hl == 0) != (r->store == SCONE_STORE_EPHEMERAL) || hl >= VOL_MAX_PATH)
			return scone_err_set(
			    SCONE_ERR_INVALID,
			    "fspf: region %.200s cannot be stored (kind, store, path or host directory)",
			    r->path);
	}
	for (size_t i = 0; i < f->meta_count; i++) {
		const struct vol_meta *m = f->metas[i];
		if (m->ephemeral)
			continue;
		if ((m->type != VOL_T_FILE && m->type != VOL_T_DIR) ||
		    vol_path_check(m->path) != SCONE_ERR_OK || strcmp(m->path, "/") == 0 ||
		    (m->type == VOL_T_FILE && (m->size > VOL_MAX_FILE_SIZE ||
					       (m->root.flags & ~(VOL_ENTRY_PRESENT | VOL_ENTRY_SLOT_B)) ||
					       (m->size == 0 && (m->root.flags & VOL_ENTRY_PRESENT)))))
			return scone_err_set(SCONE_ERR_INVALID,
					     "fspf: entry %.200s cannot be stored (type, path or size)",
					     m->path);
	}
	if (f->version > VOL_BODY_REDO || f->dattr_count > VOL_MAX_ENTRIES)
		return scone_err_set(SCONE_ERR_INVALID,
				     "fspf: body version %u or %zu directory attributes invalid", f->version,
				     f->dattr_count);
	for (size_t i = 0; i < f->dattr_count; i++)
		if (!f->dattrs[i].ephemeral && vol_path_check(f->dattrs[i].path) != SCONE_ERR_OK)
			return scone_err_set(SCONE_ERR_INVALID, "fspf: directory %.200s cannot be stored",
					     f->dattrs[i].path);
	return SCONE_ERR_OK;
}

/* Body version 2: attributes of the directories that have no entry ("/", region roots). */
static enum scone_err encode_dattrs(const struct vol_fspf *f, struct scone_wbuf *w)
{
	size_t persisted = 0;

	for (size_t i = 0; i < f->dattr_count; i++)
		persisted += !f->dattrs[i].ephemeral;
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)persisted));
	for (size_t i = 0; i < f->dattr_count; i++) {
		const struct vol_dattr *d = &f->dattrs[i];
		if (d->ephemeral)
			continue;
		SCONE_TRY(put_str(w, d->path));
		SCONE_TRY(scone_wbuf_u32(w, d->mode));
		SCONE_TRY(scone_wbuf_u64(w, (uint64_t)d->mtime_ns));
	}
	return SCONE_ERR_OK;
}

/* The decoder's rules for a redo block's place: a whole block (the header's, or a slot's). */
static enum scone_err redo_check(const struct vol_redo *rd, size_t at)
{
	if (rd->off % VOL_BLOCK || rd->off > VOL_MAX_FILE_SIZE * 3)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "fspf delta: redo block at byte %zu: offset %llu invalid", at,
				     (unsigned long long)rd->off);
	return SCONE_ERR_OK;
}

static enum scone_err redo_write(struct scone_wbuf *w, const struct vol_redo *redo, size_t count)
{
	if (count > VOL_REDO_MAX / VOL_BLOCK)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "fspf: %zu redo blocks", count);
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)count));
	for (size_t i = 0; i < count; i++) {
		SCONE_TRY(redo_check(&redo[i], w->size));
		SCONE_TRY(scone_wbuf_put(w, redo[i].file_id, VOL_ID_SIZE));
		SCONE_TRY(scone_wbuf_u64(w, redo[i].off));
		SCONE_TRY(scone_wbuf_put(w, redo[i].block, VOL_BLOCK));
	}
	return SCONE_ERR_OK;
}

enum scone_err vol_fspf_encode(const struct vol_fspf *f, struct scone_wbuf *w)
{
	/* (a record that carries redo blocks is version 3; others the version decoded, or the current) */
	uint32_t version = f->redo_count			      ? VOL_BODY_REDO
			   : f->version && f->version < VOL_BODY_REDO ? f->version
								      : VOL_BODY_VERSION;
	size_t persisted = 0;

	SCONE_TRY(fspf_check(f));
	SCONE_TRY(scone_wbuf_put(w, fspf_body_magic, 8));
	SCONE_TRY(scone_wbuf_u32(w, version));
	SCONE_TRY(scone_wbuf_u8(w, f->chunk_aead));
	SCONE_TRY(scone_wbuf_put(w, "\0\0\0", 3));
	SCONE_TRY(scone_wbuf_u64(w, f->epoch));
	SCONE_TRY(scone_wbuf_put(w, f->prev_tag, sizeof(f->prev_tag)));
	SCONE_TRY(scone_wbuf_put(w, f->claim_key, sizeof(f->claim_key)));
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)f->region_count));
	for (size_t i = 0; i < f->region_count; i++) {
		const struct vol_region *r = &f->regions[i];
		SCONE_TRY(scone_wbuf_u8(w, r->kind));
		SCONE_TRY(scone_wbuf_u8(w, r->store));
		SCONE_TRY(put_str(w, r->path));
		SCONE_TRY(put_str(w, r->host_dir));
	}
	for (size_t i = 0; i < f->meta_count; i++)
		persisted += !f->metas[i]->ephemeral;
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)persisted));
	for (size_t i = 0; i < f->meta_count; i++) {
		const struct vol_meta *m = f->metas[i];
		if (m->ephemeral)
			continue;
		SCONE_TRY(scone_wbuf_u8(w, m->type));
		SCONE_TRY(scone_wbuf_u32(w, m->mode));
		if (version >= 2)
			SCONE_TRY(scone_wbuf_u64(w, (uint64_t)m->mtime_ns));
		SCONE_TRY(put_str(w, m->path));
		if (m->type != VOL_T_FILE)
			continue;
		SCONE_TRY(scone_wbuf_put(w, m->file_id, VOL_ID_SIZE));
		SCONE_TRY(scone_wbuf_put(w, m->file_key, SCONE_KEY_SIZE));
		SCONE_TRY(scone_wbuf_u64(w, m->size));
		SCONE_TRY(entry_write(w, &m->root));
	}
	if (version >= 2)
		SCONE_TRY(encode_dattrs(f, w));
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)f->garbage_count));
	for (size_t i = 0; i < f->garbage_count; i++)
		SCONE_TRY(scone_wbuf_put(w, f->garbage[i], VOL_ID_SIZE));
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)f->trim_count));
	for (size_t i = 0; i < f->trim_count; i++)
		SCONE_TRY(scone_wbuf_put(w, f->trims[i], VOL_ID_SIZE));
	return f->redo_count ? redo_write(w, f->redo, f->redo_count) : SCONE_ERR_OK;
}

/* A body ends where its last field does: bytes after it are MALFORMED. */
static enum scone_err at_end(const struct scone_rbuf *r)
{
	if (scone_rbuf_left(r) == 0)
		return SCONE_ERR_OK;
	return scone_err_set(SCONE_ERR_MALFORMED, "%s: %zu unexpected bytes after the end at byte %zu",
			     r->what, scone_rbuf_left(r), r->pos);
}

/* Read a length-prefixed string; NUL bytes and over-long values are refused. */
static enum scone_err get_str(struct scone_rbuf *r, const char *field, bool allow_empty, char **out)
{
	uint16_t n;
	const uint8_t *p;
	char *s;

	SCONE_TRY(scone_rbuf_u16(r, field, &n));
	if (n == 0 && allow_empty) {
		*out = NULL;
		return SCONE_ERR_OK;
	}
	if (n == 0 || n >= VOL_MAX_PATH)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s has invalid length %u at byte %zu", r->what,
				     field, n, r->pos - 2);
	SCONE_TRY(scone_rbuf_view(r, field, &p, n));
	if (memchr(p, '\0', n))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s contains a NUL byte at byte %zu", r->what,
				     field, r->pos - n);
	s = malloc((size_t)n + 1);
	if (!s)
		return SCONE_ERR_NOMEM;
	memcpy(s, p, n);
	s[n] = '\0';
	*out = s;
	return SCONE_ERR_OK;
}

static enum scone_err read_count(struct scone_rbuf *r, const char *field, size_t min_item, uint32_t max,
				 uint32_t *out)
{
	SCONE_TRY(scone_rbuf_u32(r, field, out));
	/* Each item takes at least min_item bytes: a count the rest cannot hold is a lie. */
	if (*out > max || (size_t)*out > scone_rbuf_left(r) / min_item)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s %u is impossible at byte %zu", r->what,
				     field, *out, r->pos - 4);
	return SCONE_ERR_OK;
}

/* A counted list of file ids ("garbage", "trim"); *out is allocated even when empty. */
static enum scone_err read_ids(struct scone_rbuf *r, const char *what, uint8_t (**out)[VOL_ID_SIZE],
			       size_t *count)
{
	uint32_t n;

	SCONE_TRY(read_count(r, what, VOL_ID_SIZE, VOL_MAX_ENTRIES, &n));
	*out = calloc(n ? n : 1, VOL_ID_SIZE);
	if (!*out)
		return SCONE_ERR_NOMEM;
	*count = n;
	return scone_rbuf_bytes(r, what, *out, (size_t)n * VOL_ID_SIZE);
}

static enum scone_err decode_region(struct scone_rbuf *r, struct vol_region *g)
{
	SCONE_TRY(scone_rbuf_u8(r, "region kind", &g->kind));
	SCONE_TRY(scone_rbuf_u8(r, "region store", &g->store));
	if (g->kind > SCONE_REGION_ENCRYPTED || g->store > SCONE_STORE_EPHEMERAL)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "fspf: region kind %u / store %u invalid at byte %zu", g->kind, g->store,
				     r->pos - 2);
	SCONE_TRY(get_str(r, "region path", false, &g->path));
	if (vol_path_check(g->path) != SCONE_ERR_OK)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf: invalid region path at byte %zu", r->pos);
	SCONE_TRY(get_str(r, "region host directory", true, &g->host_dir));
	if ((g->host_dir == NULL) != (g->store == SCONE_STORE_EPHEMERAL))
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "fspf: region %.200s: host directory does not match store", g->path);
	return SCONE_ERR_OK;
}

static enum scone_err decode_meta(struct scone_rbuf *r, uint32_t version, struct vol_meta *m)
{
	uint64_t t;

	SCONE_TRY(scone_rbuf_u8(r, "entry type", &m->type));
	if (m->type != VOL_T_FILE && m->type != VOL_T_DIR)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf: entry type %u invalid at byte %zu", m->type,
				     r->pos - 1);
	SCONE_TRY(scone_rbuf_u32(r, "entry mode", &m->mode));
	if (version >= 2) {
		SCONE_TRY(scone_rbuf_u64(r, "entry mtime", &t));
		m->mtime_ns = (int64_t)t;
	}
	SCONE_TRY(get_str(r, "entry path", false, &m->path));
	if (vol_path_check(m->path) != SCONE_ERR_OK || strcmp(m->path, "/") == 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf: invalid entry path at byte %zu", r->pos);
	if (m->type != VOL_T_FILE)
		return SCONE_ERR_OK;
	SCONE_TRY(scone_rbuf_bytes(r, "file id", m->file_id, VOL_ID_SIZE));
	SCONE_TRY(scone_rbuf_bytes(r, "file key", m->file_key, SCONE_KEY_SIZE));
	SCONE_TRY(scone_rbuf_u64(r, "file size", &m->size));
	if (m->size > VOL_MAX_FILE_SIZE)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf: file %.200s: size %llu exceeds the maximum",
				     m->path, (unsigned long long)m->size);
	SCONE_TRY(entry_read(r, "root entry", &m->root));
	if (m->size == 0 && (m->root.flags & VOL_ENTRY_PRESENT))
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf: empty file %.200s has an integrity tree",
				     m->path);
	return SCONE_ERR_OK;
}

static enum scone_err decode_dattrs(struct scone_rbuf *r, struct vol_fspf *f)
{
	uint32_t n;
	uint64_t t;

	/* path (u16 + at least 1 byte), mode u32, mtime u64 */
	SCONE_TRY(read_count(r, "directory attribute count", 15, VOL_MAX_ENTRIES, &n));
	f->dattrs = calloc(n ? n : 1, sizeof(*f->dattrs));
	if (!f->dattrs)
		return SCONE_ERR_NOMEM;
	while (f->dattr_count < n) {
		struct vol_dattr *d = &f->dattrs[f->dattr_count];
		SCONE_TRY(get_str(r, "directory path", false, &d->path));
		f->dattr_count++; /* owns d->path now: freed with f on any error below */
		if (vol_path_check(d->path) != SCONE_ERR_OK)
			return scone_err_set(SCONE_ERR_MALFORMED, "fspf: invalid directory path at byte %zu",
					     r->pos);
		SCONE_TRY(scone_rbuf_u32(r, "directory mode", &d->mode));
		SCONE_TRY(scone_rbuf_u64(r, "directory mtime", &t));
		d->mtime_ns = (int64_t)t;
	}
	return SCONE_ERR_OK;
}

static enum scone_err redo_read(struct scone_rbuf *r, struct vol_redo **redo, size_t *count)
{
	uint32_t n;

	SCONE_TRY(read_count(r, "redo count", VOL_ID_SIZE + 8 + VOL_BLOCK, VOL_REDO_MAX / VOL_BLOCK, &n));
	if (n == 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: no redo block at byte %zu", r->what,
				     r->pos - 4);
	*redo = malloc(n * sizeof(**redo));
	if (!*redo)
		return SCONE_ERR_NOMEM;
	for (*count = 0; *count < n; (*count)++) {
		struct vol_redo *rd = &(*redo)[*count];
		size_t at = r->pos;
		SCONE_TRY(scone_rbuf_bytes(r, "redo file id", rd->file_id, VOL_ID_SIZE));
		SCONE_TRY(scone_rbuf_u64(r, "redo offset", &rd->off));
		SCONE_TRY(scone_rbuf_bytes(r, "redo block", rd->block, VOL_BLOCK));
		SCONE_TRY(redo_check(rd, at));
	}
	return SCONE_ERR_OK;
}

enum scone_err vol_fspf_decode(const uint8_t *in, size_t size, struct vol_fspf *f)
{
	struct scone_rbuf r;
	const uint8_t *magic;
	uint32_t version, n;
	enum scone_err err;

	memset(f, 0, sizeof(*f));
	scone_rbuf_init(&r, in, size, "fspf");
	if ((err = scone_rbuf_view(&r, "magic", &magic, 8)))
		goto fail;
	if (memcmp(magic, fspf_body_magic, 8) != 0) {
		err = scone_err_set(SCONE_ERR_MALFORMED, "fspf: bad magic at byte 0");
		goto fail;
	}
	if ((err = scone_rbuf_u32(&r, "version", &version)))
		goto fail;
	if (version < 1 || version > VOL_BODY_REDO) {
		err = scone_err_set(SCONE_ERR_MALFORMED, "fspf: unsupported version %u", version);
		goto fail;
	}
	f->version = version;
	if ((err = scone_rbuf_u8(&r, "chunk cipher", &f->chunk_aead)))
		goto fail;
	if (f->chunk_aead != SCONE_AEAD_AES256_GCM && f->chunk_aead != SCONE_AEAD_AES256_OCB) {
		err = scone_err_set(SCONE_ERR_MALFORMED, "fspf: unknown chunk cipher %u at byte 12",
				    f->chunk_aead);
		goto fail;
	}
	if ((err = scone_rbuf_view(&r, "reserved", &magic, 3)) ||
	    (err = scone_rbuf_u64(&r, "epoch", &f->epoch)) ||
	    (err = scone_rbuf_bytes(&r, "previous tag", f->prev_tag, sizeof(f->prev_tag))) ||
	    (err = scone_rbuf_bytes(&r, "claim key", f->claim_key, sizeof(f->claim_key))))
		goto fail;
	if ((err = read_count(&r, "region count", 6, VOL_MAX_REGIONS, &n)))
		goto fail;
	f->regions = calloc(n ? n : 1, sizeof(*f->regions));
	if (!f->regions) {
		err = SCONE_ERR_NOMEM;
		goto fail;
	}
	for (f->region_count = 0; f->region_count < n; f->region_count++)
		if ((err = decode_region(&r, &f->regions[f->region_count]))) {
			f->region_count++;
			goto fail;
		}
	if ((err = read_count(&r, "entry count", 8, VOL_MAX_ENTRIES, &n)))
		goto fail;
	f->metas = calloc(n ? n : 1, sizeof(*f->metas));
	if (!f->metas) {
		err = SCONE_ERR_NOMEM;
		goto fail;
	}
	f->meta_cap = n ? n : 1;
	for (f->meta_count = 0; f->meta_count < n; f->meta_count++) {
		struct vol_meta *m = calloc(1, sizeof(*m));
		if (!m) {
			err = SCONE_ERR_NOMEM;
			goto fail;
		}
		f->metas[f->meta_count] = m;
		if ((err = decode_meta(&r, version, m))) {
			f->meta_count++;
			goto fail;
		}
	}
	if (version >= 2 && (err = decode_dattrs(&r, f)))
		goto fail;
	if ((err = read_ids(&r, "garbage", &f->garbage, &f->garbage_count)) ||
	    (err = read_ids(&r, "trim", &f->trims, &f->trim_count)))
		goto fail;
	if (version == VOL_BODY_REDO && (err = redo_read(&r, &f->redo, &f->redo_count)))
		goto fail;
	if ((err = at_end(&r)))
		goto fail;
	return SCONE_ERR_OK;
fail:
	vol_fspf_free(f);
	return err;
}

void vol_meta_free(struct vol_meta *m)
{
	if (!m)
		return;
	free(m->path);
	scone_wipe(m, sizeof(*m));
	free(m);
}

void vol_fspf_free(struct vol_fspf *f)
{
	for (size_t i = 0; i < f->region_count; i++) {
		free(f->regions[i].path);
		free(f->regions[i].host_dir);
		free(f->regions[i].host_abs);
	}
	for (size_t i = 0; i < f->meta_count; i++)
		vol_meta_free(f->metas[i]);
	for (size_t i = 0; i < f->dattr_count; i++)
		free(f->dattrs[i].path);
	free(f->dattrs);
	free(f->redo);
	free(f->regions);
	free(f->metas);
	free(f->garbage);
	free(f->trims);
	scone_wipe(f->claim_key, sizeof(f->claim_key));
	memset(f, 0, sizeof(*f));
}

/* ---------------- delta records ---------------- */

/* The decoder's rules for one file of a delta (also checked before encoding). */
static enum scone_err delta_file_check(const struct vol_delta_file *df, const char *what, size_t at)
{
	if (df->size > VOL_MAX_FILE_SIZE || (df->root.flags & ~(VOL_ENTRY_PRESENT | VOL_ENTRY_SLOT_B)) ||
	    (df->size == 0 && (df->root.flags & VOL_ENTRY_PRESENT)))
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "%s: file at byte %zu: size %llu or root entry invalid", what, at,
				     (unsigned long long)df->size);
	return SCONE_ERR_OK;
}

bool vol_body_is_delta(const uint8_t *in, size_t size)
{
	return size >= 8 && (memcmp(in, fspf_delta_magic, 8) == 0 || memcmp(in, fspf_redo_magic, 8) == 0);
}

static enum scone_err put_ids(struct scone_wbuf *w, uint8_t (*ids)[VOL_ID_SIZE], size_t n)
{
	if (n > VOL_MAX_ENTRIES)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "fspf delta: %zu deleted or cut-back files", n);
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)n));
	return n ? scone_wbuf_put(w, ids, n * VOL_ID_SIZE) : SCONE_ERR_OK;
}

enum scone_err vol_delta_encode(const struct vol_delta *d, struct scone_wbuf *w)
{
	if (d->file_count > VOL_MAX_ENTRIES)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "fspf delta: %zu files", d->file_count);
	if (d->redo_count > VOL_REDO_MAX / VOL_BLOCK)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "fspf delta: %zu redo blocks", d->redo_count);
	SCONE_TRY(scone_wbuf_put(w, d->redo_count ? fspf_redo_magic : fspf_delta_magic, 8));
	SCONE_TRY(scone_wbuf_u64(w, d->epoch));
	SCONE_TRY(scone_wbuf_put(w, d->prev_tag, sizeof(d->prev_tag)));
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)d->file_count));
	for (size_t i = 0; i < d->file_count; i++) {
		const struct vol_delta_file *df = &d->files[i];
		SCONE_TRY(delta_file_check(df, "fspf delta", w->size));
		SCONE_TRY(scone_wbuf_put(w, df->file_id, VOL_ID_SIZE));
		SCONE_TRY(scone_wbuf_u64(w, df->size));
		SCONE_TRY(scone_wbuf_u64(w, (uint64_t)df->mtime_ns));
		SCONE_TRY(entry_write(w, &df->root));
	}
	SCONE_TRY(put_ids(w, d->garbage, d->garbage_count));
	SCONE_TRY(put_ids(w, d->trims, d->trim_count));
	return d->redo_count ? redo_write(w, d->redo, d->redo_count) : SCONE_ERR_OK;
}

enum scone_err vol_delta_decode(const uint8_t *in, size_t size, struct vol_delta *d)
{
	struct scone_rbuf r;
	const uint8_t *magic;
	uint32_t n;
	uint64_t t;
	enum scone_err err;

	memset(d, 0, sizeof(*d));
	scone_rbuf_init(&r, in, size, "fspf delta");
	if ((err = scone_rbuf_view(&r, "magic", &magic, 8)))
		goto fail;
	if (memcmp(magic, fspf_delta_magic, 8) != 0 && memcmp(magic, fspf_redo_magic, 8) != 0) {
		err = scone_err_set(SCONE_ERR_MALFORMED, "fspf delta: bad magic at byte 0");
		goto fail;
	}
	if ((err = scone_rbuf_u64(&r, "epoch", &d->epoch)) ||
	    (err = scone_rbuf_bytes(&r, "previous tag", d->prev_tag, sizeof(d->prev_tag))) ||
	    (err = read_count(&r, "file count", VOL_ID_SIZE + 16 + VOL_ENTRY_SIZE, VOL_MAX_ENTRIES, &n)))
		goto fail;
	d->files = calloc(n ? n : 1, sizeof(*d->files));
	if (!d->files) {
		err = SCONE_ERR_NOMEM;
		goto fail;
	}
	for (d->file_count = 0; d->file_count < n; d->file_count++) {
		struct vol_delta_file *df = &d->files[d->file_count];
		size_t at = r.pos;
		if ((err = scone_rbuf_bytes(&r, "file id", df->file_id, VOL_ID_SIZE)) ||
		    (err = scone_rbuf_u64(&r, "file size", &df->size)) ||
		    (err = scone_rbuf_u64(&r, "file mtime", &t)) ||
		    (err = entry_read(&r, "root entry", &df->root)))
			goto fail;
		df->mtime_ns = (int64_t)t;
		if ((err = delta_file_check(df, "fspf delta", at)))
			goto fail;
	}
	if ((err = read_ids(&r, "garbage", &d->garbage, &d->garbage_count)) ||
	    (err = read_ids(&r, "trim", &d->trims, &d->trim_count)))
		goto fail;
	if (memcmp(magic, fspf_redo_magic, 8) == 0 && (err = redo_read(&r, &d->redo, &d->redo_count)))
		goto fail;
	if ((err = at_end(&r)))
		goto fail;
	return SCONE_ERR_OK;
fail:
	vol_delta_free(d);
	return err;
}

void vol_delta_free(struct vol_delta *d)
{
	if (d->files)
		scone_wipe(d->files, d->file_count * sizeof(*d->files));
	free(d->files);
	free(d->garbage);
	free(d->trims);
	free(d->redo);
	memset(d, 0, sizeof(*d));
}

static int cmp_meta_id(const void *a, const void *b)
{
	return memcmp((*(struct vol_meta *const *)a)->file_id, (*(struct vol_meta *const *)b)->file_id,
		      VOL_ID_SIZE);
}

enum scone_err vol_id_index_build(const struct vol_fspf *f, struct vol_id_index *x)
{
	x->n = 0;
	x->m = malloc((f->meta_count + 1) * sizeof(*x->m));
	if (!x->m)
		return SCONE_ERR_NOMEM;
	for (size_t i = 0; i < f->meta_count; i++)
		if (f->metas[i]->type == VOL_T_FILE)
			x->m[x->n++] = f->metas[i];
	qsort(x->m, x->n, sizeof(*x->m), cmp_meta_id);
	return SCONE_ERR_OK;
}

struct vol_meta *vol_id_index_find(const struct vol_id_index *x, const uint8_t id[static VOL_ID_SIZE])
{
	struct vol_meta key, *kp = &key, **hit;

	memcpy(key.file_id, id, VOL_ID_SIZE);
	hit = bsearch(&kp, x->m, x->n, sizeof(*x->m), cmp_meta_id);
	return hit ? *hit : NULL;
}

void vol_id_index_free(struct vol_id_index *x)
{
	free(x->m);
	x->m = NULL;
	x->n = 0;
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, VOL_ID_SIZE);
}

/* *twice: whether d lists a file twice. */
static enum scone_err delta_has_twice(const struct vol_delta *d, bool *twice)
{
	uint8_t(*ids)[VOL_ID_SIZE] = malloc((d->file_count + 1) * VOL_ID_SIZE);

	*twice = false;
	if (!ids)
		return SCONE_ERR_NOMEM;
	for (size_t i = 0; i < d->file_count; i++)
		memcpy(ids[i], d->files[i].file_id, VOL_ID_SIZE);
	qsort(ids, d->file_count, VOL_ID_SIZE, cmp_id);
	for (size_t i = 1; i < d->file_count && !*twice; i++)
		*twice = memcmp(ids[i - 1], ids[i], VOL_ID_SIZE) == 0;
	free(ids);
	return SCONE_ERR_OK;
}

/* Replace *dst (count *dst_n) with a copy of src (count n). */
static enum scone_err copy_ids(uint8_t (**dst)[VOL_ID_SIZE], size_t *dst_n, uint8_t (*src)[VOL_ID_SIZE],
			       size_t n)
{
	uint8_t(*c)[VOL_ID_SIZE] = calloc(n ? n : 1, VOL_ID_SIZE);

	if (!c)
		return SCONE_ERR_NOMEM;
	if (n)
		memcpy(c, src, n * VOL_ID_SIZE);
	free(*dst);
	*dst = c;
	*dst_n = n;
	return SCONE_ERR_OK;
}

enum scone_err vol_fspf_apply_delta(struct vol_fspf *f, const struct vol_id_index *x,
				    const struct vol_delta *d)
{
	bool twice;

	if (d->epoch != f->epoch + 1)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf delta: epoch %llu does not follow %llu",
				     (unsigned long long)d->epoch, (unsigned long long)f->epoch);
	/* every file first, so that a delta that does not fit changes nothing */
	for (size_t i = 0; i < d->file_count; i++) {
		const struct vol_meta *m = vol_id_index_find(x, d->files[i].file_id);
		if (!m || m->ephemeral)
			return scone_err_set(
			    SCONE_ERR_MALFORMED,
			    "fspf delta of epoch %llu: file %zu is not in the state before it",
			    (unsigned long long)d->epoch, i);
	}
	SCONE_TRY(delta_has_twice(d, &twice));
	if (twice)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf delta of epoch %llu: a file is listed twice",
				     (unsigned long long)d->epoch);
	SCONE_TRY(copy_ids(&f->garbage, &f->garbage_count, d->garbage, d->garbage_count));
	SCONE_TRY(copy_ids(&f->trims, &f->trim_count, d->trims, d->trim_count));
	for (size_t i = 0; i < d->file_count; i++) {
		struct vol_meta *m = vol_id_index_find(x, d->files[i].file_id);
		m->size = d->files[i].size;
		m->mtime_ns = d->files[i].mtime_ns;
		m->root = d->files[i].root;
	}
	f->epoch = d->epoch;
	memcpy(f->prev_tag, d->prev_tag, sizeof(f->prev_tag));
	return SCONE_ERR_OK;
}

/* ---------------- fspf envelope ---------------- */

static enum scone_err fspf_key(const uint8_t *key, const uint8_t salt[static ENV_SALT],
			       struct scone_aead **out)
{
	uint8_t k[SCONE_KEY_SIZE];
	enum scone_err err =
	    scone_hkdf_sha256(k, sizeof(k), key, SCONE_VOLUME_KEY_SIZE, salt, ENV_SALT, "scone fspf key v1");
	if (!err)
		err = scone_aead_new(SCONE_AEAD_AES256_GCM, k, out);
	scone_wipe(k, sizeof(k));
	return err;
}

enum scone_err vol_envelope_seal(const uint8_t *plain, size_t size, const uint8_t *key, struct scone_wbuf *w,
				 uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	return vol_envelope_seal_version(plain, size, key, ENV_VERSION, w, tag);
}

enum scone_err vol_envelope_seal_version(const uint8_t *plain, size_t size, const uint8_t *key,
					 uint32_t version, struct scone_wbuf *w,
					 uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	uint8_t salt[ENV_SALT], nonce[SCONE_NONCE_SIZE];
	struct scone_aead *a = NULL;
	size_t hdr, overhead = key ? 8 + 4 + 4 + ENV_SALT + SCONE_NONCE_SIZE + 8 + SCONE_VOLUME_TAG_SIZE
				   : 8 + 4 + 4 + 8;
	enum scone_err err;

	if (version < 1 || version > ENV_VERSION)
		return scone_err_set(SCONE_ERR_INVALID, "fspf file: cannot write version %u", version);
	/* Readers refuse fspf files over VOL_MAX_FSPF bytes: never write one. */
	if (size > VOL_MAX_FSPF - overhead)
		return scone_err_set(SCONE_ERR_TOO_LARGE,
				     "fspf: %zu bytes of entries exceed the limit of %zu", size,
				     VOL_MAX_FSPF - overhead);
	SCONE_TRY(scone_wbuf_put(w, fspf_env_magic, 8));
	SCONE_TRY(scone_wbuf_u32(w, version));
	SCONE_TRY(scone_wbuf_u32(w, key ? ENV_SEALED : ENV_UNSEALED));
	if (!key) {
		SCONE_TRY(scone_wbuf_u64(w, size));
		SCONE_TRY(scone_wbuf_put(w, plain, size));
		memset(tag, 0, SCONE_VOLUME_TAG_SIZE);
		return SCONE_ERR_OK;
	}
	SCONE_TRY(scone_random(salt, sizeof(salt)));
	SCONE_TRY(scone_random(nonce, sizeof(nonce)));
	SCONE_TRY(scone_wbuf_put(w, salt, sizeof(salt)));
	SCONE_TRY(scone_wbuf_put(w, nonce, sizeof(nonce)));
	SCONE_TRY(scone_wbuf_u64(w, size));
	hdr = w->size;
	SCONE_TRY(scone_wbuf_put(w, plain, size)); /* reserve, then encrypt in place */
	SCONE_TRY(fspf_key(key, salt, &a));
	err = scone_aead_seal(a, nonce, w->data, hdr, w->data + hdr, size, w->data + hdr, tag);
	scone_aead_free(a);
	if (!err)
		err = scone_wbuf_put(w, tag, SCONE_VOLUME_TAG_SIZE);
	return err;
}

enum scone_err vol_envelope_open(const uint8_t *in, size_t size, const uint8_t *key, struct scone_wbuf *plain,
				 bool *sealed, uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	struct scone_rbuf r;
	const uint8_t *magic, *salt, *nonce, *ct;
	uint32_t version, state;
	uint64_t len;
	struct scone_aead *a = NULL;
	enum scone_err err;

	scone_rbuf_init(&r, in, size, "fspf file");
	SCONE_TRY(scone_rbuf_view(&r, "magic", &magic, 8));
	if (memcmp(magic, fspf_env_magic, 8) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "not a file system protection file (bad magic)");
	SCONE_TRY(scone_rbuf_u32(&r, "version", &version));
	SCONE_TRY(scone_rbuf_u32(&r, "state", &state));
	if (version < 1 || version > ENV_VERSION || state > ENV_SEALED)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf file: unsupported version %u / state %u",
				     version, state);
	*sealed = state == ENV_SEALED;
	if (!*sealed) {
		SCONE_TRY(scone_rbuf_u64(&r, "length", &len));
		if (len != scone_rbuf_left(&r))
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "fspf file: length %llu does not match %zu bytes",
					     (unsigned long long)len, scone_rbuf_left(&r));
		memset(tag, 0, SCONE_VOLUME_TAG_SIZE);
		return scone_wbuf_put(plain, r.data + r.pos, (size_t)len);
	}
	SCONE_TRY(scone_rbuf_view(&r, "salt", &salt, ENV_SALT));
	SCONE_TRY(scone_rbuf_view(&r, "nonce", &nonce, SCONE_NONCE_SIZE));
	SCONE_TRY(scone_rbuf_u64(&r, "length", &len));
	if (len + SCONE_VOLUME_TAG_SIZE != scone_rbuf_left(&r))
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf file: length %llu does not match %zu bytes",
				     (unsigned long long)len, scone_rbuf_left(&r));
	SCONE_TRY(scone_rbuf_view(&r, "ciphertext", &ct, (size_t)len));
	memcpy(tag, r.data + r.pos, SCONE_VOLUME_TAG_SIZE);
	if (!key)
		return scone_err_set(SCONE_ERR_INVALID, "the fspf is encrypted: a key is required");
	SCONE_TRY(scone_wbuf_put(plain, ct, (size_t)len));
	SCONE_TRY(fspf_key(key, salt, &a));
	err = scone_aead_open(a, nonce, in, (size_t)(ct - in), plain->data, (size_t)len, plain->data, tag);
	scone_aead_free(a);
	if (err)
		return scone_err_set(SCONE_ERR_AUTH,
				     "cannot decrypt the fspf: wrong key, or the file was modified");
	return SCONE_ERR_OK;
}

enum scone_err vol_envelope_span(const uint8_t *in, size_t size, size_t *span, uint32_t *version,
				 bool *sealed)
{
	struct scone_rbuf r;
	const uint8_t *magic;
	uint32_t state;
	uint64_t len, need;

	scone_rbuf_init(&r, in, size, "fspf record");
	SCONE_TRY(scone_rbuf_view(&r, "magic", &magic, 8));
	if (memcmp(magic, fspf_env_magic, 8) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "not a file system protection file (bad magic)");
	SCONE_TRY(scone_rbuf_u32(&r, "version", version));
	SCONE_TRY(scone_rbuf_u32(&r, "state", &state));
	if (*version < 1 || *version > ENV_VERSION || state > ENV_SEALED)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf file: unsupported version %u / state %u",
				     *version, state);
	*sealed = state == ENV_SEALED;
	if (*sealed)
		SCONE_TRY(scone_rbuf_view(&r, "salt and nonce", &magic, ENV_SALT + SCONE_NONCE_SIZE));
	SCONE_TRY(scone_rbuf_u64(&r, "length", &len));
	need = *sealed ? (uint64_t)SCONE_VOLUME_TAG_SIZE : 0;
	if (len > scone_rbuf_left(&r) || need > scone_rbuf_left(&r) - len)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf file: length %llu does not fit in %zu bytes",
				     (unsigned long long)len, scone_rbuf_left(&r));
	*span = r.pos + (size_t)(len + need);
	return SCONE_ERR_OK;
}
