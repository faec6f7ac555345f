/*
 * volume_store.c - the fspf on the host and the commit protocol: reading
 * and writing it whole, appending records to its log, removing deleted
 * files' host files in batches, and a commit (scone_volume_sync) in order:
 * files' integrity nodes flushed, then the record durable (the commit
 * point), then garbage removed.
 */
#include "internal.h"
#include "lib/hex.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum scone_err vol_read_whole(struct scone_vio *io, const char *path, struct scone_wbuf *out)
{
	struct scone_vio_file *f;
	uint64_t size;
	size_t got;
	enum scone_err err;

	SCONE_TRY(io->ops->open(io, path, 0, &f));
	err = io->ops->size(f, &size);
	if (!err && size > VOL_MAX_FSPF)
		err = scone_err_set(SCONE_ERR_TOO_LARGE, "%s: %llu bytes exceeds the fspf limit of %zu", path,
				    (unsigned long long)size, VOL_MAX_FSPF);
	scone_wbuf_init(out, VOL_MAX_FSPF, 0);
	if (!err) {
		out->data = malloc(size ? (size_t)size : 1);
		out->cap = size ? (size_t)size : 1;
		if (!out->data)
			err = SCONE_ERR_NOMEM;
	}
	if (!err)
		err = io->ops->pread(f, out->data, (size_t)size, 0, &got);
	if (!err)
		out->size = got;
	io->ops->close(f);
	return err;
}

/* Write real zero bytes over [from, to) of f (not a hole: a later overwrite then changes no metadata). */
static enum scone_err write_zeros(struct scone_vio *io, struct scone_vio_file *f, uint64_t from, uint64_t to)
{
	size_t n = to - from > VOL_BLOCK * 16 ? VOL_BLOCK * 16 : (size_t)(to - from);
	uint8_t *zero = calloc(1, n ? n : 1);
	enum scone_err err = zero ? SCONE_ERR_OK : SCONE_ERR_NOMEM;

	for (uint64_t off = from; !err && off < to; off += n) {
		if (to - off < n)
			n = (size_t)(to - off);
		err = io->ops->pwrite(f, zero, n, off);
	}
	free(zero);
	return err;
}

/*
 * The record of a commit was written whole but not made durable: the disk
 * holds the new state or the old one, and the new one's blocks are in the
 * slots any further write would take. So no further write reaches the host
 * until the volume is opened again (from whichever state the disk holds).
 */
static void mark_unsure(struct scone_volume *v, const char *why)
{
	if (!v->unsure)
		snprintf(v->unsure_why, sizeof(v->unsure_why), "%s (%s)", why, scone_err_detail());
	v->unsure = true;
}

enum scone_err vol_check_sure(const struct scone_volume *v)
{
	if (!v->unsure)
		return SCONE_ERR_OK;
	return scone_err_set(
	    SCONE_ERR_IO,
	    "%s: a commit failed after writing its record: %s; whether the disk holds it is unknown, "
	    "so the volume takes no more changes: open it again",
	    v->fspf_path, v->unsure_why);
}

/*
 * How long a sealed FSPF written whole with a record of size bytes is, zero
 * padding included: more room when commits carry redo blocks.
 */
static uint64_t log_padded(const struct scone_volume *v, uint64_t size)
{
	uint64_t room = v->wal_used ? LOG_REDO_BYTES : LOG_MAX_BYTES;

	if (size <= room / 2)
		return room;
	return (size + room / 2 + VOL_BLOCK - 1) / VOL_BLOCK * VOL_BLOCK;
}

static enum scone_err write_fspf(struct scone_volume *v, const uint8_t *data, size_t size)
{
	struct scone_vio *io = v->host;
	struct scone_vio_file *f;
	size_t n = strlen(v->fspf_path) + 5;
	char *tmp = malloc(n);
	enum scone_err err;

	if (!tmp)
		return SCONE_ERR_NOMEM;
	snprintf(tmp, n, "%s.tmp", v->fspf_path);
	(void)io->ops->unlink(io, tmp);
	err = io->ops->open(io, tmp, SCONE_VIO_WRITE | SCONE_VIO_CREATE | SCONE_VIO_EXCL, &f);
	if (!err) {
		err = io->ops->pwrite(f, data, size, 0);
		if (!err && v->sealed)
			err = write_zeros(io, f, size, log_padded(v, size));
		if (!err)
			err = io->ops->sync(f);
		io->ops->close(f);
	}
	if (!err)
		err = io->ops->rename(io, tmp, v->fspf_path);
	if (!err) {
		if ((err = io->ops->sync_dir(io, v->fspf_dir)))
			mark_unsure(v, "the fsync of its directory after the rename failed");
		/* FSPF is a new file now: one record, under the current key. */
		if (v->log)
			io->ops->close(v->log);
		v->log = NULL;
		v->log_ok = !err && v->sealed;
		v->log_start = 0;
		v->log_end = size;
		v->log_tail = false;
		v->log_cap = v->sealed ? log_padded(v, size) : size;
		v->log_deltas = 0;
		v->log_grow = false;
	} else {
		char detail[256]; /* the cause, not the clean-up's complaint */
		snprintf(detail, sizeof(detail), "%s", scone_err_detail());
		(void)io->ops->unlink(io, tmp);
		scone_err_set(err, "%s", detail);
	}
	free(tmp);
	return err;
}

/*
 * Append one record to the FSPF log and make it durable: the commit point.
 * The bytes past log_end are zeros (padding) or end of file, never garbage
 * (log_has_room): a record written there and torn reads as a torn append.
 * On failure the log is rewritten whole at the next commit.
 */
static enum scone_err append_fspf(struct scone_volume *v, const uint8_t *data, size_t size)
{
	struct scone_vio *io = v->host;
	enum scone_err err = SCONE_ERR_OK;

	if (!v->log)
		err = io->ops->open(io, v->fspf_path, SCONE_VIO_WRITE, &v->log);
	if (!err)
		err = io->ops->pwrite(v->log, data, size, v->log_end);
	if (!err && (err = io->ops->sync(v->log)))
		mark_unsure(v, "the fdatasync of the appended record failed");
	if (err) {
		v->log_ok = false;
		return scone_err_set(err, "%s: cannot append the new state: %s", v->fspf_path,
				     scone_err_detail());
	}
	v->log_start = v->log_end;
	v->log_end += size;
	if (v->log_end > v->log_cap)
		v->log_cap = v->log_end;
	return SCONE_ERR_OK;
}

/*
 * The longest record an append may add after a record of span bytes: so a
 * reader knows how far a torn append can reach; a longer one compacts.
 */
uint64_t vol_append_bound(uint64_t span, uint64_t log_size)
{
	/* In a log padded for redo blocks, a delta's add up to VOL_REDO_MAX, with their ids and places. */
	return 2 * span + 8 * LOG_SECTOR + (log_size >= LOG_REDO_BYTES ? VOL_REDO_MAX + 2 * VOL_BLOCK : 0);
}

/* Append, or compact: after garbage a crash left (never write a record next to it), or past the bounds. */
static bool log_has_room(const struct scone_volume *v, size_t size)
{
	uint64_t end = v->log_end + size;

	return v->log_ok && v->sealed && !v->log_tail && end <= VOL_MAX_FSPF &&
	       size <= vol_append_bound(v->log_end - v->log_start, v->log_cap) &&
	       (end <= LOG_MAX_BYTES || end <= v->log_cap || end <= (uint64_t)LOG_RECORDS * size);
}

/*
 * A commit that changed only files' contents (sizes, trees, times) and the
 * lists of files to delete or cut back: its record is a delta of the state
 * before it, appended to the log (docs/volume-format.md, "Delta records").
 * *stored is false when the log has no room for it: a full record then.
 */
static enum scone_err store_delta(struct scone_volume *v, struct vol_redo *redo, size_t redo_count,
				  bool *stored)
{
	struct vol_delta d = {.epoch = v->st.epoch,
			      .garbage = v->st.garbage,
			      .garbage_count = v->st.garbage_count,
			      .trims = v->st.trims,
			      .trim_count = v->st.trim_count,
			      .redo = redo,
			      .redo_count = redo_count};
	struct scone_wbuf plain, env;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	size_t n = 0;
	enum scone_err err;

	*stored = false;
	for (const struct vol_inode *ino = v->inodes; ino; ino = ino->next)
		n += ino->changed && ino->meta && !ino->meta->ephemeral;
	d.files = calloc(n ? n : 1, sizeof(*d.files));
	if (!d.files)
		return SCONE_ERR_NOMEM;
	for (const struct vol_inode *ino = v->inodes; ino; ino = ino->next) {
		struct vol_delta_file *df = &d.files[d.file_count];
		if (!ino->changed || !ino->meta || ino->meta->ephemeral)
			continue;
		memcpy(df->file_id, ino->meta->file_id, VOL_ID_SIZE);
		df->size = ino->meta->size;
		df->mtime_ns = ino->meta->mtime_ns;
		df->root = ino->meta->root;
		d.file_count++;
	}
	memcpy(d.prev_tag, v->st.prev_tag, sizeof(d.prev_tag));
	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	scone_wbuf_init(&env, VOL_MAX_FSPF + 256, 0);
	err = vol_delta_encode(&d, &plain);
	if (!err)
		err = vol_envelope_seal(plain.data, plain.size, v->key, &env, tag);
	scone_wbuf_free(&plain);
	scone_wipe(d.files, n * sizeof(*d.files));
	free(d.files);
	if (!err && log_has_room(v, env.size)) {
		err = append_fspf(v, env.data, env.size);
		*stored = !err;
		v->log_deltas += !err;
	}
	scone_wbuf_free(&env);
	if (*stored)
		memcpy(v->tag, tag, sizeof(tag));
	return err;
}

/* Whether the next record may be a delta: a sealed log of the current version, no namespace change. */
static bool delta_possible(const struct scone_volume *v)
{
	return v->sealed && v->log_ok && !v->ns_changed && v->log_deltas < LOG_MAX_DELTAS;
}

/* ---------------- redo blocks: one flush per commit ---------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sort ino's written blocks and drop repeats. */
static void wal_unique(struct vol_inode *ino)
{
	size_t k = 0;

	qsort(ino->wal_blocks, ino->wal_n, sizeof(*ino->wal_blocks), cmp_u64);
	for (size_t i = 0; i < ino->wal_n; i++)
		if (k == 0 || ino->wal_blocks[k - 1] != ino->wal_blocks[i])
			ino->wal_blocks[k++] = ino->wal_blocks[i];
	ino->wal_n = k;
}

void vol_wal_note(struct vol_inode *ino, uint64_t off, uint64_t len)
{
	const size_t max = VOL_REDO_MAX / VOL_BLOCK;

	if (!ino->vol->redo)
		return; /* (commits flush their files: nothing to list) */
	for (uint64_t o = off; o < off + len && !ino->wal_over; o += VOL_BLOCK) {
		if (ino->wal_n && ino->wal_blocks[ino->wal_n - 1] == o)
			continue; /* (a block rewritten at once: a log's tail) */
		if (ino->wal_n == max)
			wal_unique(ino);
		if (ino->wal_n == max) {
			ino->wal_over = true; /* more than a record carries: this commit flushes the file */
			break;
		}
		if (ino->wal_n == ino->wal_cap) {
			size_t cap = ino->wal_cap ? 2 * ino->wal_cap : 8;
			uint64_t *nb = realloc(ino->wal_blocks, cap * sizeof(*nb));
			if (!nb) {
				ino->wal_over = true;
				break;
			}
			ino->wal_blocks = nb;
			ino->wal_cap = cap;
		}
		ino->wal_blocks[ino->wal_n++] = o;
	}
}

static bool wal_file(const struct vol_inode *ino)
{
	return ino->changed && ino->meta && !ino->meta->ephemeral;
}

/*
 * The blocks this commit wrote, read back from the host files, when its
 * record may carry them: a sealed volume, every changed file listed what
 * it wrote (VOL_REDO_MAX bytes in all at most). *count 0 otherwise: the
 * commit flushes its files instead.
 */
static enum scone_err wal_collect(struct scone_volume *v, struct vol_redo **out, size_t *count)
{
	size_t n = 0, k = 0;
	struct vol_redo *redo;

	*out = NULL;
	*count = 0;
	if (!v->redo || !v->sealed)
		return SCONE_ERR_OK;
	for (struct vol_inode *ino = v->inodes; ino; ino = ino->next) {
		if (!wal_file(ino))
			continue;
		if (ino->wal_over || !ino->wal_n || ino->region->store != SCONE_STORE_KERNEL)
			return SCONE_ERR_OK;
		wal_unique(ino);
		n += ino->wal_n;
	}
	if (!n || n * VOL_BLOCK > VOL_REDO_MAX)
		return SCONE_ERR_OK;
	if (v->log_cap < LOG_REDO_BYTES) /* padded for small records: this one writes it whole, with room */
		v->wal_used = v->log_grow = true;
	redo = malloc(n * sizeof(*redo));
	if (!redo)
		return SCONE_ERR_NOMEM;
	for (struct vol_inode *ino = v->inodes; ino; ino = ino->next) {
		if (!wal_file(ino))
			continue;
		for (size_t i = 0; i < ino->wal_n; i++, k++) {
			size_t got = 0;
			enum scone_err err;
			memcpy(redo[k].file_id, ino->file_id, VOL_ID_SIZE);
			redo[k].off = ino->wal_blocks[i];
			err =
			    ino->host->io->ops->pread(ino->host, redo[k].block, VOL_BLOCK, redo[k].off, &got);
			if (!err && got != VOL_BLOCK)
				err =
				    scone_err_set(SCONE_ERR_IO, "%s: block at %llu of its host file is short",
						  vol_ino_name(ino), (unsigned long long)redo[k].off);
			if (err) {
				free(redo);
				return err;
			}
		}
	}
	*out = redo;
	*count = n;
	return SCONE_ERR_OK;
}

/* Flush the host files of this commit's changed files (a commit whose record carries no blocks). */
static enum scone_err sync_changed(struct scone_volume *v)
{
	for (struct vol_inode *ino = v->inodes; ino; ino = ino->next)
		if (wal_file(ino))
			SCONE_TRY(ino->host->io->ops->sync(ino->host));
	return SCONE_ERR_OK;
}

enum scone_err vol_checkpoint(struct scone_volume *v)
{
	for (struct vol_inode *ino = v->inodes; ino; ino = ino->next)
		if (ino->wal_pending && ino->meta) /* (a removed file is in no record to come) */
			SCONE_TRY(ino->host->io->ops->sync(ino->host));
	for (struct vol_inode *ino = v->inodes; ino; ino = ino->next)
		ino->wal_pending = false;
	return SCONE_ERR_OK;
}

/*
 * Encode and store the fspf for epoch st.epoch; on success v->tag is the new
 * tag. With redo blocks (wal_collect's), a record that carries them (a delta,
 * else a full record after a checkpoint); without, a record after a
 * checkpoint (below).
 */
static enum scone_err store_fspf(struct scone_volume *v, struct vol_redo *redo, size_t redo_count)
{
	struct scone_wbuf plain, env;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	bool stored;
	enum scone_err err;

	if (redo_count && delta_possible(v) && !v->log_grow) {
		err = store_delta(v, redo, redo_count, &stored);
		if (err || stored)
			return err;
	}
	/*
	 * A full record (or a delta without redo blocks): the redo of the
	 * records before it is never written again at an open (vol_replay
	 * takes the blocks of the records from the last one without any), so
	 * every file whose blocks only those records hold is flushed first.
	 * This commit's own blocks ride in the full record (body version 3).
	 */
	SCONE_TRY(vol_checkpoint(v));
	if (!redo_count && delta_possible(v) && !v->log_grow) {
		err = store_delta(v, NULL, 0, &stored);
		if (err || stored)
			return err;
	}
	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	scone_wbuf_init(&env, VOL_MAX_FSPF + 256, 0);
	v->st.redo = redo;
	v->st.redo_count = redo_count;
	err = vol_fspf_encode(&v->st, &plain);
	v->st.redo = NULL; /* (the record's, not the state's) */
	v->st.redo_count = 0;
	if (!err)
		err = vol_envelope_seal(plain.data, plain.size, v->sealed ? v->key : NULL, &env, tag);
	scone_wbuf_free(&plain);
	if (!err && log_has_room(v, env.size) && !v->log_grow) {
		err = append_fspf(v, env.data, env.size);
		v->log_deltas = 0;
	} else if (!err) {
		err = write_fspf(v, env.data, env.size);
	}
	scone_wbuf_free(&env);
	if (!err) {
		memcpy(v->tag, tag, sizeof(tag));
		v->ns_changed = false;
	}
	return err;
}

enum scone_err vol_store_fspf(struct scone_volume *v)
{
	return store_fspf(v, NULL, 0);
}

/* Remove id's host file from every kernel region; false if one could not be removed. */
bool vol_unlink_everywhere(struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE])
{
	bool gone = true;

	for (size_t i = 0; i < v->st.region_count; i++) {
		struct vol_region *r = &v->st.regions[i];
		char *hp;
		if (r->store != SCONE_STORE_KERNEL || r->kind == SCONE_REGION_NOT_PROTECTED)
			continue;
		hp = vol_host_path(r, id);
		if (hp) {
			enum scone_err e = v->host->ops->unlink(v->host, hp);
			if (e && e != SCONE_ERR_NOT_FOUND)
				gone = false;
		}
		free(hp);
	}
	return gone;
}

void vol_delete_garbage(struct scone_volume *v)
{
	size_t keep = 0;

	for (size_t g = 0; g < v->st.garbage_count; g++)
		if (!vol_unlink_everywhere(v, v->st.garbage[g]))
			memcpy(v->st.garbage[keep++], v->st.garbage[g], VOL_ID_SIZE);
	/*
	 * The shorter list rides along with the next commit; forcing one here
	 * would make a close right after a sync advance the tag. Ids still
	 * listed on disk are harmless: already gone counts as deleted.
	 */
	v->st.garbage_count = keep;
}

static bool anything_changed(const struct scone_volume *v)
{
	if (v->dirty)
		return true;
	for (const struct vol_inode *ino = v->inodes; ino; ino = ino->next)
		if (ino->changed && ino->meta && !ino->meta->ephemeral)
			return true;
	return false;
}

void vol_release_idle(struct scone_volume *v)
{
	struct vol_inode *ino = v->inodes, *next;

	for (; ino; ino = next) {
		next = ino->next;
		if (ino->refs == 0 && (!ino->changed || !ino->meta)) {
			ino->refs = 1;
			vol_inode_put(ino);
		}
	}
}

bool vol_has_id(uint8_t (*ids)[VOL_ID_SIZE], size_t count, const uint8_t id[static VOL_ID_SIZE])
{
	for (size_t i = 0; i < count; i++)
		if (memcmp(ids[i], id, VOL_ID_SIZE) == 0)
			return true;
	return false;
}

/* Files whose host file will be longer than the new state needs until cut back. */
static enum scone_err note_trims(struct scone_volume *v)
{
	for (struct vol_inode *ino = v->inodes; ino; ino = ino->next) {
		uint8_t(*nt)[VOL_ID_SIZE];
		if (!ino->meta || ino->meta->ephemeral || ino->phys_size <= vol_expected_phys(ino->size) ||
		    vol_has_id(v->st.trims, v->st.trim_count, ino->file_id))
			continue;
		nt = realloc(v->st.trims, (v->st.trim_count + 1) * VOL_ID_SIZE);
		if (!nt)
			return SCONE_ERR_NOMEM;
		v->st.trims = nt;
		memcpy(v->st.trims[v->st.trim_count++], ino->file_id, VOL_ID_SIZE);
	}
	return SCONE_ERR_OK;
}

/* Drop the files that were cut back (the shorter list is stored by the next commit). */
static void forget_trims(struct scone_volume *v)
{
	size_t keep = 0;

	for (size_t i = 0; i < v->st.trim_count; i++) {
		bool pending = false;
		for (struct vol_inode *ino = v->inodes; ino; ino = ino->next)
			if (memcmp(ino->file_id, v->st.trims[i], VOL_ID_SIZE) == 0 &&
			    ino->phys_size > vol_expected_phys(ino->size))
				pending = true;
		if (pending)
			memcpy(v->st.trims[keep++], v->st.trims[i], VOL_ID_SIZE);
	}
	v->st.trim_count = keep;
}

enum scone_err vol_sync_locked_with(struct scone_volume *v, enum scone_err (*before)(void *), void *arg)
{
	uint64_t old_epoch = v->st.epoch;
	uint8_t old_prev[SCONE_VOLUME_TAG_SIZE];
	struct vol_redo *redo = NULL;
	size_t redo_count = 0;
	enum scone_err err = SCONE_ERR_OK;

	if (!v->writable)
		return SCONE_ERR_OK;
	if (!anything_changed(v))
		return SCONE_ERR_OK;
	SCONE_TRY(vol_check_sure(v));
	for (struct vol_inode *ino = v->inodes; ino && !err; ino = ino->next)
		if (ino->meta && !ino->meta->ephemeral)
			err = vol_inode_flush(ino, old_epoch + 1);
	if (!err)
		err = note_trims(v);
	/* The blocks go into the record (one flush: the record's), or the files are flushed now. */
	if (!err)
		err = wal_collect(v, &redo, &redo_count);
	if (!err && !redo_count)
		err = sync_changed(v);
	if (!err && before) /* the data is durable (or in the record to come); the new state is not */
		err = before(arg);
	if (err) {
		free(redo);
		return err;
	}
	memcpy(old_prev, v->st.prev_tag, sizeof(old_prev));
	memcpy(v->st.prev_tag, v->tag, sizeof(v->tag));
	v->st.epoch = old_epoch + 1;
	err = store_fspf(v, redo, redo_count); /* (a record that stores carries the blocks given) */
	free(redo);
	if (err) {
		v->st.epoch = old_epoch;
		memcpy(v->st.prev_tag, old_prev, sizeof(old_prev));
		return err;
	}
	if (redo_count)
		v->wal_used = true;
	for (struct vol_inode *ino = v->inodes; ino; ino = ino->next) {
		if (redo_count && wal_file(ino))
			ino->wal_pending = true; /* (its blocks are in the log, not flushed) */
		if (ino->meta && !ino->meta->ephemeral)
			vol_inode_committed(ino);
	}
	v->dirty = false;
	vol_journal_reset(v);
	if (v->st.garbage_count >= GARBAGE_BATCH)
		vol_delete_garbage(v);
	forget_trims(v);
	vol_release_idle(v);
	return SCONE_ERR_OK;
}

enum scone_err vol_sync_locked(struct scone_volume *v)
{
	return vol_sync_locked_with(v, NULL, NULL);
}

/* ---------------- open / create / close ---------------- */
