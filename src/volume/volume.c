/*
 * volume.c - a volume as a whole: creating it, opening and verifying the
 * fspf against the expected tag (its log of records), sealing, closing,
 * and its regions. The parts: volume_meta.c (the namespace index),
 * volume_store.c (the fspf on the host and commits), volume_file.c
 * (files), volume_ns.c (namespace operations), volume_check.c (the host
 * directories checked, trims, the journal).
 *
 * Commit (scone_volume_sync): (1) every changed file writes its dirty
 * integrity nodes to free slots and is fdatasync'ed, or, in a volume opened
 * with SCONE_VOL_REDO whose epoch wrote at most VOL_REDO_MAX bytes of
 * listed blocks, the record (a delta or a full one) carries those blocks
 * instead (redo blocks: one flush per commit; a writable open writes them
 * again, vol_replay); (2) the new fspf
 * record is appended to FSPF and FSPF fdatasync'ed (a sealed FSPF is a log
 * of full-state records, the last one that authenticates is the state), or,
 * when the log is full, written alone to FSPF.tmp, fsync'ed and renamed
 * over FSPF, and the directory fsync'ed. The durable record (or the rename)
 * is the commit point: before it the old state is intact, after it the new
 * one is. Host files of deleted files are removed only after the commit,
 * in batches (they stay listed as garbage in every fspf until removed, so a
 * crash in between leaves nothing unexplained). A sealed FSPF is padded
 * with zeros so that appends do not change its size (see open_log).
 */
#include "internal.h"
#include "lib/hex.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum scone_err volume_alloc(struct scone_vio *io, const char *fspf_path, struct scone_volume **out)
{
	struct scone_volume *v = calloc(1, sizeof(*v));
	char *copy;

	if (!v)
		return SCONE_ERR_NOMEM;
	pthread_mutex_init(&v->lock, NULL);
	v->lru.lru_next = v->lru.lru_prev = &v->lru;
	v->max_clean_nodes = DEFAULT_MAX_CLEAN_NODES;
	v->host = io;
	v->fspf_path = strdup(fspf_path);
	copy = strdup(fspf_path);
	if (copy)
		v->fspf_dir = strdup(dirname(copy));
	free(copy);
	if (!v->fspf_path || !v->fspf_dir || scone_vio_mem_new(&v->mem) != SCONE_ERR_OK) {
		free(v->fspf_path);
		free(v->fspf_dir);
		if (v->mem)
			v->mem->ops->destroy(v->mem);
		free(v);
		return SCONE_ERR_NOMEM;
	}
	*out = v;
	return SCONE_ERR_OK;
}

static void volume_free(struct scone_volume *v)
{
	while (v->inodes) {
		struct vol_inode *ino = v->inodes;
		ino->refs = 1;
		ino->meta = NULL;
		ino->wal_pending = false;
		vol_inode_put(ino);
	}
	free(v->replay);
	if (v->journal)
		v->host->ops->close(v->journal);
	if (v->log)
		v->host->ops->close(v->log);
	vol_fspf_free(&v->st);
	if (v->key)
		scone_secure_free(v->key, SCONE_VOLUME_KEY_SIZE);
	v->mem->ops->destroy(v->mem);
	if (v->scratch)
		scone_wipe(v->scratch, VOL_SCRATCH);
	free(v->scratch);
	if (v->node_buf)
		scone_wipe(v->node_buf, VOL_NODE_BUF);
	free(v->node_buf);
	free(v->fspf_path);
	free(v->fspf_dir);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

static enum scone_err resolve_region(struct scone_volume *v, struct vol_region *r)
{
	size_t n;

	free(r->host_abs);
	r->host_abs = NULL;
	if (!r->host_dir)
		return SCONE_ERR_OK;
	if (r->host_dir[0] == '/') {
		r->host_abs = strdup(r->host_dir);
	} else {
		n = strlen(v->fspf_dir) + strlen(r->host_dir) + 2;
		r->host_abs = malloc(n);
		if (r->host_abs)
			snprintf(r->host_abs, n, "%s/%s", v->fspf_dir, r->host_dir);
	}
	return r->host_abs ? SCONE_ERR_OK : SCONE_ERR_NOMEM;
}

enum scone_err scone_volume_create(const char *fspf_path)
{
	return scone_volume_create_at(scone_vio_host(), fspf_path);
}

enum scone_err scone_volume_create_at(struct scone_vio *io, const char *fspf_path)
{
	struct scone_volume *v;
	struct scone_vio_file *f;
	enum scone_err err;

	if (io->ops->open(io, fspf_path, 0, &f) == SCONE_ERR_OK) {
		io->ops->close(f);
		return scone_err_set(SCONE_ERR_EXISTS, "%s already exists", fspf_path);
	}
	SCONE_TRY(volume_alloc(io, fspf_path, &v));
	v->writable = true;
	v->st.chunk_aead = SCONE_AEAD_AES256_OCB;
	v->st.metas = NULL;
	err = scone_random(v->st.claim_key, sizeof(v->st.claim_key));
	if (!err)
		err = vol_store_fspf(v);
	volume_free(v);
	return err;
}

static enum scone_err check_tag(struct scone_volume *v, const uint8_t disk_tag[static SCONE_VOLUME_TAG_SIZE],
				const uint8_t *tag)
{
	char want[33], have[33];

	if (!tag || scone_ct_equal(disk_tag, tag, SCONE_VOLUME_TAG_SIZE))
		return SCONE_ERR_OK;
	static const uint8_t unsealed_tag[SCONE_VOLUME_TAG_SIZE];

	/* The state before the first encryption had no tag: never accept all zeros. */
	if (!scone_ct_equal(tag, unsealed_tag, SCONE_VOLUME_TAG_SIZE) &&
	    scone_ct_equal(v->st.prev_tag, tag, SCONE_VOLUME_TAG_SIZE)) {
		/* One commit ahead: its writer stopped before it could report the new tag. */
		return SCONE_ERR_OK;
	}
	scone_hex_encode(want, sizeof(want), tag, SCONE_VOLUME_TAG_SIZE);
	scone_hex_encode(have, sizeof(have), disk_tag, SCONE_VOLUME_TAG_SIZE);
	return scone_err_set(
	    SCONE_ERR_ROLLBACK,
	    "%s: its state (tag %s) is not the expected one (tag %s): rollback detected (or unknown state)",
	    v->fspf_path, have, want);
}

static enum scone_err check_namespace(struct scone_volume *v)
{
	qsort(v->st.metas, v->st.meta_count, sizeof(*v->st.metas), vol_cmp_meta);
	for (size_t i = 1; i < v->st.meta_count; i++)
		if (strcmp(v->st.metas[i - 1]->path, v->st.metas[i]->path) == 0)
			return scone_err_set(SCONE_ERR_MALFORMED, "fspf: duplicate entry %.200s",
					     v->st.metas[i]->path);
	for (size_t i = 0; i < v->st.region_count; i++)
		SCONE_TRY(resolve_region(v, &v->st.regions[i]));
	return SCONE_ERR_OK;
}

/*
 * The state of an FSPF: a version 1 file is one envelope; a version 2 or 3
 * file is a log of envelopes of that version, each a full state, all sealed
 * alike (3 differs from 2 only in the body it holds). The state is
 * the last complete record, which must authenticate; bytes after it that
 * do not form a complete record are an append a crash tore (cut by the
 * next append). Notes where the next record goes.
 */
size_t vol_first_nonzero(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && !p[i])
		i++;
	return i;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return vol_first_nonzero(p, n) == n;
}

/* The last byte of a sealed record's length field (docs/volume-format.md, the envelope). */
#define ENV_LENGTH_END 67u

/*
 * Whether the framed record [start, end) after the record at prev is an
 * append a power loss tore (it fails authentication): written over zeros,
 * some whole sector of it never reached the disk and only zeros follow it.
 * A complete record has no zero sector (ciphertext), so a bit flipped in
 * the last record is still AUTH.
 */
static bool torn_record(const uint8_t *in, size_t size, size_t prev, size_t start, size_t end)
{
	/*
	 * A header whose length field lies in a lost sector frames a shorter
	 * record (length 0): the rest of the append lies within the bound.
	 */
	uint64_t bound = vol_append_bound(start - prev, size);
	size_t len_end = start + ENV_LENGTH_END, len_sec = len_end - len_end % LOG_SECTOR, lim = end;

	if (len_sec > start && len_sec + LOG_SECTOR <= size && all_zero(in + len_sec, LOG_SECTOR))
		lim = bound < size - start ? start + (size_t)bound : size;

	if (end - start > bound || !all_zero(in + lim, size - lim))
		return false;
	for (size_t s = start - start % LOG_SECTOR; s < end; s += LOG_SECTOR)
		if (s + LOG_SECTOR <= size && all_zero(in + s, LOG_SECTOR))
			return true;
	return false;
}

/* Record i's plaintext into plain (reset first); its tag into tag. */
static enum scone_err open_record(const uint8_t *in, const size_t *at, size_t i, const uint8_t *key,
				  struct scone_wbuf *plain, bool *sealed,
				  uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	scone_wbuf_free(plain);
	scone_wbuf_init(plain, VOL_MAX_FSPF, 1);
	return vol_envelope_open(in + at[i], at[i + 1] - at[i], key, plain, sealed, tag);
}

/* One more body at the end of *b (count *n): an empty buffer, or NULL out of memory. */
static struct scone_wbuf *push_body(struct scone_wbuf **b, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 8;
		struct scone_wbuf *m = realloc(*b, c * sizeof(*m));
		if (!m)
			return NULL;
		*b = m;
		*cap = c;
	}
	scone_wbuf_init(&(*b)[*n], VOL_MAX_FSPF, 1);
	return &(*b)[(*n)++];
}

/*
 * Keep d's redo blocks for vol_replay: those of the deltas after the last
 * record without any (before which the files were flushed, vol_checkpoint).
 */
static enum scone_err keep_redo(struct scone_volume *v, const struct vol_delta *d)
{
	struct vol_redo *m;

	if (!d->redo_count) {
		free(v->replay);
		v->replay = NULL;
		v->replay_count = 0;
		return SCONE_ERR_OK;
	}
	v->wal_used = true;
	if (!v->writable) /* only a writable open replays */
		return SCONE_ERR_OK;
	m = realloc(v->replay, (v->replay_count + d->redo_count) * sizeof(*m));
	if (!m)
		return SCONE_ERR_NOMEM;
	memcpy(m + v->replay_count, d->redo, d->redo_count * sizeof(*m));
	v->replay = m;
	v->replay_count += d->redo_count;
	return SCONE_ERR_OK;
}

/* Apply the deltas of records base+1..top (bodies[top - j] is record j's) to v->st, in order. */
static enum scone_err apply_deltas(struct scone_volume *v, const uint8_t *in, const size_t *at, size_t base,
				   size_t top, const struct scone_wbuf *bodies)
{
	struct vol_id_index x;
	enum scone_err err = SCONE_ERR_OK;

	if (base == top)
		return SCONE_ERR_OK;
	SCONE_TRY(vol_id_index_build(&v->st, &x));
	for (size_t j = base + 1; !err && j <= top; j++) {
		struct vol_delta d;
		/* (a sealed record's tag is its last bytes, authenticated when it was opened) */
		const uint8_t *prev = in + at[j] - SCONE_VOLUME_TAG_SIZE;
		if ((err = vol_delta_decode(bodies[top - j].data, bodies[top - j].size, &d)))
			break;
		if (!scone_ct_equal(d.prev_tag, prev, SCONE_VOLUME_TAG_SIZE))
			err = scone_err_set(SCONE_ERR_MALFORMED,
					    "%s: the delta at byte %zu does not follow the record before it",
					    v->fspf_path, at[j]);
		else
			err = vol_fspf_apply_delta(&v->st, &x, &d);
		if (!err)
			err = keep_redo(v, &d);
		vol_delta_free(&d);
	}
	vol_id_index_free(&x);
	return err;
}

/*
 * The state from record top back to the full record it rests on: decode
 * that one into v->st, then apply each delta after it in order, each the
 * successor of the record before it (epoch and previous tag). Every record
 * from the full one to top must authenticate. plain holds record top.
 */
static enum scone_err state_from(struct scone_volume *v, const uint8_t *in, const size_t *at, size_t top,
				 const uint8_t *key, uint32_t log_version, bool sealed,
				 struct scone_wbuf *plain)
{
	struct scone_wbuf *bodies = NULL, *b; /* bodies[k]: record top - k */
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	size_t n = 0, cap = 0, base = top;
	enum scone_err err = SCONE_ERR_OK;

	if (!push_body(&bodies, &n, &cap))
		return SCONE_ERR_NOMEM;
	scone_wbuf_free(&bodies[0]);
	bodies[0] = *plain; /* taken over: freed below */
	scone_wbuf_init(plain, VOL_MAX_FSPF, 1);
	while (!err && vol_body_is_delta(bodies[n - 1].data, bodies[n - 1].size)) {
		if (log_version < VOL_ENV_DELTAS || !sealed || base == 0) {
			err = scone_err_set(SCONE_ERR_MALFORMED, "%s: the record at byte %zu is a delta %s",
					    v->fspf_path, at[base],
					    base == 0 ? "with no full state before it"
						      : "in a log that cannot hold one");
			break;
		}
		base--;
		if (!(b = push_body(&bodies, &n, &cap))) {
			err = SCONE_ERR_NOMEM;
			break;
		}
		err = open_record(in, at, base, key, b, &sealed, tag);
		if (err == SCONE_ERR_AUTH)
			err = scone_err_set(SCONE_ERR_AUTH,
					    "%s: the record at byte %zu, which the state rests on, does not "
					    "authenticate (modified)",
					    v->fspf_path, at[base]);
	}
	if (!err)
		err = vol_fspf_decode(bodies[n - 1].data, bodies[n - 1].size, &v->st);
	if (!err && v->st.redo_count) {
		/* (the full record's redo blocks: the start of what a writable open writes again) */
		free(v->replay);
		v->replay = v->writable ? v->st.redo : NULL; /* (only a writable open replays) */
		v->replay_count = v->writable ? v->st.redo_count : 0;
		if (!v->writable)
			free(v->st.redo);
		v->st.redo = NULL;
		v->st.redo_count = 0;
		v->wal_used = true;
	}
	if (!err)
		err = apply_deltas(v, in, at, base, top, bodies);
	for (size_t k = 0; k < n; k++)
		scone_wbuf_free(&bodies[k]);
	free(bodies);
	v->log_deltas = top - base;
	return err;
}

/* Note where record i starts (at grows as needed). */
static enum scone_err note_record(size_t **at, size_t *cap, size_t i, size_t off)
{
	if (i >= *cap) {
		size_t n = *cap ? 2 * *cap : 16;
		size_t *m = realloc(*at, n * sizeof(*m));
		if (!m)
			return SCONE_ERR_NOMEM;
		*at = m;
		*cap = n;
	}
	(*at)[i] = off;
	return SCONE_ERR_OK;
}

/* Decode the FSPF's state into v->st (see above); its tag into tag. */
static enum scone_err open_log(struct scone_volume *v, const uint8_t *in, size_t size, const uint8_t *key,
			       bool *sealed, uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	size_t off = 0, span, count = 0, cap = 0, top, reach, *at = NULL;
	uint32_t version, first_version = 0;
	bool rec_sealed, first_sealed = false;
	struct scone_wbuf plain;
	enum scone_err err;

	while (off < size) {
		err = vol_envelope_span(in + off, size - off, &span, &version, &rec_sealed);
		if (err && count == 0) {
			free(at);
			return err;
		}
		if (err)
			break; /* a torn append */
		if (count == 0) {
			first_version = version;
			first_sealed = rec_sealed;
		} else if (version < 2 || version != first_version || rec_sealed != first_sealed) {
			if (first_sealed && version == first_version && !rec_sealed) {
				scone_err_clear();
				break; /* a torn header (its state field lost): as any torn append */
			}
			free(at);
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "%s: record at byte %zu does not belong to the log",
					     v->fspf_path, off);
		}
		if ((err = note_record(&at, &cap, count, off))) {
			free(at);
			return err;
		}
		off += span;
		count++;
	}
	if (count == 0) {
		free(at);
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: empty (no record)", v->fspf_path);
	}
	if ((err = note_record(&at, &cap, count, off))) {
		free(at);
		return err;
	}
	if (first_version == 1 && off != size) {
		free(at);
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf file: %zu trailing bytes", size - off);
	}
	scone_err_clear();
	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	top = count - 1;
	err = open_record(in, at, top, key, &plain, sealed, tag);
	if (err == SCONE_ERR_AUTH && count >= 2 && torn_record(in, size, at[top - 1], at[top], at[top + 1])) {
		top--;
		scone_err_clear();
		err = open_record(in, at, top, key, &plain, sealed, tag);
	}
	/* A torn append reaches at most vol_append_bound() past the state; the rest is zero padding. */
	off = at[top + 1];
	reach = off + (size_t)(vol_append_bound(off - at[top], size) < size - off
				   ? vol_append_bound(off - at[top], size)
				   : size - off);
	if (!err && !all_zero(in + reach, size - reach))
		err = scone_err_set(SCONE_ERR_AUTH,
				    "%s: byte %zu, in the zero padding after the log, was modified",
				    v->fspf_path, reach + vol_first_nonzero(in + reach, size - reach));
	if (!err)
		err = state_from(v, in, at, top, key, first_version, *sealed, &plain);
	scone_wbuf_free(&plain);
	v->log_start = at[top];
	v->log_end = off;
	free(at);
	/* An older log is rewritten whole by its first commit, so no log mixes versions. */
	v->log_ok = !err && *sealed && first_version == VOL_ENV_VERSION;
	v->log_tail = !all_zero(in + off, size - off);
	v->log_cap = size;
	v->wal_used |= size >= LOG_REDO_BYTES;
	return err;
}

enum scone_err scone_volume_log_tags(const char *fspf_path, uint8_t (*tags)[SCONE_VOLUME_TAG_SIZE],
				     size_t max, size_t *count)
{
	struct scone_wbuf raw;
	size_t off = 0, span;
	uint32_t version;
	bool sealed;

	*count = 0;
	SCONE_TRY(vol_read_whole(scone_vio_host(), fspf_path, &raw));
	while (off < raw.size && *count < max) {
		if (vol_envelope_span(raw.data + off, raw.size - off, &span, &version, &sealed)) {
			scone_err_clear(); /* zero padding, or an append a crash tore */
			break;
		}
		if (sealed)
			memcpy(tags[(*count)++], raw.data + off + span - SCONE_VOLUME_TAG_SIZE,
			       SCONE_VOLUME_TAG_SIZE);
		off += span;
	}
	scone_wbuf_free(&raw);
	return SCONE_ERR_OK;
}

enum scone_err scone_volume_open(const char *fspf_path, const uint8_t *key, const uint8_t *tag,
				 unsigned flags, struct scone_volume **out)
{
	return scone_volume_open_at(scone_vio_host(), fspf_path, key, tag, flags, out);
}

enum scone_err scone_volume_open_at(struct scone_vio *io, const char *fspf_path, const uint8_t *key,
				    const uint8_t *tag, unsigned flags, struct scone_volume **out)
{
	struct scone_volume *v;
	struct scone_wbuf raw;
	uint8_t disk_tag[SCONE_VOLUME_TAG_SIZE];
	bool sealed = false;
	enum scone_err err;

	SCONE_TRY(volume_alloc(io, fspf_path, &v));
	v->writable = flags & SCONE_VOL_RDWR;
	v->redo = flags & SCONE_VOL_REDO;
	err = vol_read_whole(v->host, fspf_path, &raw);
	if (err == SCONE_ERR_NOT_FOUND)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such protection file", fspf_path);
	if (!err) {
		err = open_log(v, raw.data, raw.size, key, &sealed, disk_tag);
		scone_wbuf_free(&raw);
	}
	if (!err && !sealed && !(flags & SCONE_VOL_ALLOW_UNSEALED))
		err = scone_err_set(SCONE_ERR_UNSEALED,
				    "%s is not encrypted yet: run 'scone fspf encrypt %s' first", fspf_path,
				    fspf_path);
	v->st.version = 0; /* commits write the current body layout */
	if (!err && sealed)
		err = check_tag(v, disk_tag, tag);
	if (!err)
		err = check_namespace(v);
	if (!err && sealed) {
		v->key = scone_secure_alloc(SCONE_VOLUME_KEY_SIZE);
		if (!v->key)
			err = SCONE_ERR_NOMEM;
		else
			memcpy(v->key, key, SCONE_VOLUME_KEY_SIZE);
	}
	if (err) {
		volume_free(v);
		return err;
	}
	v->sealed = sealed;
	memcpy(v->tag, disk_tag, sizeof(disk_tag));
	if (v->writable && (err = vol_replay(v))) {
		volume_free(v);
		return err;
	}
	if (v->writable && v->st.garbage_count)
		vol_delete_garbage(v);
	if (v->writable) {
		vol_recover_journal(v);
		vol_trim_files(v);
	}
	*out = v;
	return SCONE_ERR_OK;
}

enum scone_err scone_volume_sync(struct scone_volume *v)
{
	return scone_volume_sync_with(v, NULL, NULL);
}

enum scone_err scone_volume_sync_with(struct scone_volume *v, enum scone_err (*before)(void *), void *arg)
{
	enum scone_err err;

	vol_lock(v);
	err = vol_sync_locked_with(v, before, arg);
	vol_unlock(v);
	return err;
}

void scone_volume_tag(const struct scone_volume *v, uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	memcpy(tag, v->tag, SCONE_VOLUME_TAG_SIZE);
}

bool scone_volume_is_sealed(const struct scone_volume *v)
{
	return v->sealed;
}

enum scone_err scone_volume_seal(struct scone_volume *v, const uint8_t *key,
				 uint8_t key_out[static SCONE_VOLUME_KEY_SIZE],
				 uint8_t tag_out[static SCONE_VOLUME_TAG_SIZE])
{
	enum scone_err err = SCONE_ERR_OK;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	vol_lock(v);
	if (!v->key && !(v->key = scone_secure_alloc(SCONE_VOLUME_KEY_SIZE)))
		err = SCONE_ERR_NOMEM;
	if (!err) {
		if (key)
			memcpy(v->key, key, SCONE_VOLUME_KEY_SIZE);
		else
			err = scone_random(v->key, SCONE_VOLUME_KEY_SIZE);
	}
	if (!err) {
		v->sealed = true;
		v->dirty = v->ns_changed = true;
		v->log_ok = false; /* no record under another key, or unsealed, before this one */
		err = vol_sync_locked(v);
	}
	if (!err) {
		memcpy(key_out, v->key, SCONE_VOLUME_KEY_SIZE);
		memcpy(tag_out, v->tag, SCONE_VOLUME_TAG_SIZE);
	}
	vol_unlock(v);
	return err;
}

enum scone_err scone_volume_close(struct scone_volume *v, uint8_t *tag_out)
{
	enum scone_err err = SCONE_ERR_OK;

	if (!v)
		return SCONE_ERR_OK;
	vol_lock(v);
	err = vol_sync_locked(v);
	if (!err && v->writable && v->st.garbage_count)
		vol_delete_garbage(v); /* the batch left by the last commits */
	/* Files whose last blocks only the log holds are flushed: a read-only open then finds them. */
	if (!err && v->writable)
		err = vol_checkpoint(v);
	if (tag_out)
		memcpy(tag_out, v->tag, SCONE_VOLUME_TAG_SIZE);
	vol_unlock(v);
	volume_free(v);
	return err;
}

void scone_volume_abandon(struct scone_volume *v)
{
	if (v)
		volume_free(v);
}

/* ---------------- regions ---------------- */

/* Let go of the inodes nothing holds, those kept for a checkpoint too (flushed first). */
static enum scone_err vol_idle_inodes(struct scone_volume *v)
{
	if (v->inodes) {
		SCONE_TRY(vol_checkpoint(v));
		vol_release_idle(v);
	}
	return SCONE_ERR_OK;
}

enum scone_err scone_volume_add_region(struct scone_volume *v, const char *path, enum scone_region_kind kind,
				       enum scone_region_store store, const char *host_dir)
{
	struct vol_region *nr, r;
	enum scone_err err;

	SCONE_TRY(vol_path_check(path));
	if ((unsigned)kind > SCONE_REGION_ENCRYPTED || (unsigned)store > SCONE_STORE_EPHEMERAL)
		return scone_err_set(SCONE_ERR_INVALID, "invalid region kind or store");
	if (host_dir && strlen(host_dir) >= VOL_MAX_PATH)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG,
				     "region %s: host directory longer than %u bytes", path,
				     VOL_MAX_PATH - 1);
	if ((store == SCONE_STORE_KERNEL) != (host_dir != NULL) || (host_dir && !host_dir[0]))
		return scone_err_set(SCONE_ERR_INVALID,
				     "region %s: a kernel region needs a host directory, "
				     "an ephemeral one has none",
				     path);
	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	vol_lock(v);
	err = vol_idle_inodes(v);
	if (!err && v->inodes)
		err = scone_err_set(SCONE_ERR_BUSY, "cannot change regions while files are open");
	for (size_t i = 0; !err && i < v->st.region_count; i++)
		if (strcmp(v->st.regions[i].path, path) == 0)
			err = scone_err_set(SCONE_ERR_EXISTS, "region %s already exists", path);
	if (!err && v->st.region_count >= VOL_MAX_REGIONS)
		err = scone_err_set(SCONE_ERR_TOO_LARGE, "too many regions");
	if (err) {
		vol_unlock(v);
		return err;
	}
	memset(&r, 0, sizeof(r));
	r.kind = (uint8_t)kind;
	r.store = (uint8_t)store;
	r.path = strdup(path);
	r.host_dir = host_dir ? strdup(host_dir) : NULL;
	nr = realloc(v->st.regions, (v->st.region_count + 1) * sizeof(*nr));
	if (!r.path || (host_dir && !r.host_dir) || !nr) {
		free(r.path);
		free(r.host_dir);
		if (nr)
			v->st.regions = nr;
		vol_unlock(v);
		return SCONE_ERR_NOMEM;
	}
	v->st.regions = nr;
	err = resolve_region(v, &r);
	if (!err && r.host_abs && kind != SCONE_REGION_NOT_PROTECTED)
		err = v->host->ops->mkdirs(v->host, r.host_abs);
	if (err) {
		free(r.path);
		free(r.host_dir);
		free(r.host_abs);
	} else {
		v->st.regions[v->st.region_count++] = r;
		v->dirty = v->ns_changed = true;
	}
	vol_unlock(v);
	return err;
}

enum scone_err scone_volume_redirect(struct scone_volume *v, const char *path, const char *host_dir)
{
	struct vol_region *r;
	char *abs;
	enum scone_err err = SCONE_ERR_OK;

	vol_lock(v);
	r = vol_region_of(v, path);
	if ((err = vol_idle_inodes(v)))
		;
	else if (!r || r->store != SCONE_STORE_KERNEL)
		err = scone_err_set(SCONE_ERR_NO_REGION, "%s is not in a region stored on the host", path);
	else if (v->inodes)
		err = scone_err_set(SCONE_ERR_BUSY, "cannot redirect a region while files are open");
	else if (!(abs = realpath(host_dir, NULL)))
		err = scone_err_set(scone_err_from_errno(errno), "%s: %s", host_dir, strerror(errno));
	else {
		free(r->host_abs);
		r->host_abs = abs;
	}
	vol_unlock(v);
	return err;
}

size_t scone_volume_region_count(const struct scone_volume *v)
{
	return v->st.region_count;
}

static void region_info(const struct vol_region *r, struct scone_region_info *out)
{
	out->path = r->path;
	out->host_dir = r->host_dir;
	out->kind = (enum scone_region_kind)r->kind;
	out->store = (enum scone_region_store)r->store;
}

void scone_volume_region(const struct scone_volume *v, size_t i, struct scone_region_info *out)
{
	region_info(&v->st.regions[i], out);
}

bool scone_volume_region_of(const struct scone_volume *v, const char *path, struct scone_region_info *out)
{
	const struct vol_region *r = vol_region_of(v, path);

	if (r)
		region_info(r, out);
	return r != NULL;
}

/* ---------------- files ---------------- */
