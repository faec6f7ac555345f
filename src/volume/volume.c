/*
 * volume.c - a volume as a whole: opening and verifying the fspf against
 * the expected tag, the namespace (regions, directories, files, their
 * modes and modification times), handles, and the commit protocol that
 * advances the tag.
 *
 * Commit (scone_volume_sync): (1) every changed file writes its dirty
 * integrity nodes to free slots and is fdatasync'ed; (2) the new fspf
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

#define DEFAULT_MAX_CLEAN_NODES 8192u /* 32 MiB of cached integrity nodes */
/* The fspf log is rewritten as one record once it would exceed this, or LOG_RECORDS records' worth. */
#define LOG_MAX_BYTES ((uint64_t)256 << 10)
#define LOG_RECORDS 4u
/*
 * A sealed FSPF is written padded with zero bytes to LOG_MAX_BYTES (when its
 * record is at most half that), so that appends overwrite zeros in place and
 * their fdatasync flushes data only (no size change, no journal commit).
 * LOG_SECTOR is the unit a power loss can leave unwritten (reads as zeros).
 */
#define LOG_SECTOR 512u
/*
 * Host files of deleted files are removed in batches, off most commits: a
 * commit removes them once this many are listed, close always. Until then
 * they stay in the stored garbage list, so a crash never leaks one.
 */
#define GARBAGE_BATCH 16u

struct scone_vfile {
	struct scone_volume *vol;
	struct vol_inode *ino;
	unsigned flags;
};

static void lock(struct scone_volume *v)
{
	pthread_mutex_lock(&v->lock);
}

static void unlock(struct scone_volume *v)
{
	pthread_mutex_unlock(&v->lock);
}

static void recover_journal(struct scone_volume *v);
static void trim_files(struct scone_volume *v);
static void journal_reset(struct scone_volume *v);

/* ---------------- namespace index ---------------- */

static size_t meta_pos(const struct scone_volume *v, const char *path, bool *found)
{
	size_t lo = 0, hi = v->st.meta_count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(v->st.metas[mid]->path, path);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static struct vol_meta *meta_find(const struct scone_volume *v, const char *path)
{
	bool found;
	size_t i = meta_pos(v, path, &found);
	return found ? v->st.metas[i] : NULL;
}

static enum scone_err meta_insert(struct scone_volume *v, struct vol_meta *m)
{
	bool found;
	size_t i = meta_pos(v, m->path, &found);

	if (found)
		return SCONE_ERR_EXISTS;
	if (v->st.meta_count >= VOL_MAX_ENTRIES)
		return scone_err_set(SCONE_ERR_NO_SPACE, "volume holds the maximum of %u entries", VOL_MAX_ENTRIES);
	if (v->st.meta_count == v->st.meta_cap) {
		size_t cap = v->st.meta_cap ? v->st.meta_cap * 2 : 64;
		struct vol_meta **nm = realloc(v->st.metas, cap * sizeof(*nm));
		if (!nm)
			return SCONE_ERR_NOMEM;
		v->st.metas = nm;
		v->st.meta_cap = cap;
	}
	memmove(v->st.metas + i + 1, v->st.metas + i, (v->st.meta_count - i) * sizeof(*v->st.metas));
	v->st.metas[i] = m;
	v->st.meta_count++;
	return SCONE_ERR_OK;
}

static void meta_remove(struct scone_volume *v, struct vol_meta *m)
{
	bool found;
	size_t i = meta_pos(v, m->path, &found);

	if (!found)
		return;
	memmove(v->st.metas + i, v->st.metas + i + 1, (v->st.meta_count - i - 1) * sizeof(*v->st.metas));
	v->st.meta_count--;
}

static int cmp_meta(const void *a, const void *b)
{
	return strcmp((*(struct vol_meta *const *)a)->path, (*(struct vol_meta *const *)b)->path);
}

struct vol_region *vol_region_of(const struct scone_volume *v, const char *path)
{
	struct vol_region *best = NULL;
	size_t best_len = 0;

	for (size_t i = 0; i < v->st.region_count; i++) {
		struct vol_region *r = &v->st.regions[i];
		size_t n = strlen(r->path);
		bool match = strcmp(r->path, "/") == 0 ||
			     (strncmp(path, r->path, n) == 0 && (path[n] == '/' || path[n] == '\0'));
		if (match && (!best || n > best_len)) {
			best = r;
			best_len = n;
		}
	}
	return best;
}

static bool is_prefix_dir(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return path[0] == '/' && path[1] != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* A directory exists if it is "/", a region root or its ancestor, or a directory entry. */
static bool dir_exists(const struct scone_volume *v, const char *path)
{
	const struct vol_meta *m;

	if (strcmp(path, "/") == 0)
		return true;
	for (size_t i = 0; i < v->st.region_count; i++) {
		const char *rp = v->st.regions[i].path;
		if (strcmp(rp, path) == 0 || is_prefix_dir(path, rp))
			return true;
	}
	m = meta_find(v, path);
	return m && m->type == VOL_T_DIR;
}

static enum scone_err parent_check(const struct scone_volume *v, const char *path)
{
	char *copy = strdup(path), *parent;
	enum scone_err err = SCONE_ERR_OK;

	if (!copy)
		return SCONE_ERR_NOMEM;
	parent = dirname(copy);
	if (!dir_exists(v, parent))
		err = meta_find(v, parent) ? scone_err_set(SCONE_ERR_NOT_DIR, "%s: parent is not a directory", path)
					   : scone_err_set(SCONE_ERR_NOT_FOUND, "%s: parent directory does not exist", path);
	free(copy);
	return err;
}

static bool has_children(const struct scone_volume *v, const char *dir)
{
	bool found;
	size_t i = meta_pos(v, dir, &found);

	if (found)
		i++;
	return i < v->st.meta_count && is_prefix_dir(dir, v->st.metas[i]->path);
}

/* ---------------- times and directory attributes ---------------- */

#define IMPLICIT_DIR_MODE 0700u /* "/", region roots and their ancestors until chmod'ed */

static int64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool in_ephemeral_region(const struct scone_volume *v, const char *path)
{
	const struct vol_region *r = vol_region_of(v, path);

	return r && r->store == SCONE_STORE_EPHEMERAL;
}

/* Few: only directories without an entry ("/", region roots, their ancestors) have one. */
static struct vol_dattr *dattr_find(const struct scone_volume *v, const char *path)
{
	for (size_t i = 0; i < v->st.dattr_count; i++)
		if (strcmp(v->st.dattrs[i].path, path) == 0)
			return &v->st.dattrs[i];
	return NULL;
}

/* The attributes of implicit directory path, recorded from now on; NULL when out of memory. */
static struct vol_dattr *dattr_get(struct scone_volume *v, const char *path)
{
	struct vol_dattr *d = dattr_find(v, path), *nd;
	char *copy;

	if (d)
		return d;
	copy = strdup(path);
	nd = copy ? realloc(v->st.dattrs, (v->st.dattr_count + 1) * sizeof(*nd)) : NULL;
	if (!nd) {
		free(copy);
		return NULL;
	}
	v->st.dattrs = nd;
	d = &nd[v->st.dattr_count++];
	d->path = copy;
	d->mode = IMPLICIT_DIR_MODE;
	d->mtime_ns = 0;
	d->ephemeral = in_ephemeral_region(v, path);
	return d;
}

/*
 * Directory path's entries changed now. Best effort: out of memory loses
 * the time of an implicit directory, never the change itself.
 */
static void dir_touch(struct scone_volume *v, const char *path)
{
	struct vol_meta *m = meta_find(v, path);
	struct vol_dattr *d;

	if (m) {
		m->mtime_ns = now_ns();
		if (!m->ephemeral)
			v->dirty = true;
		return;
	}
	if (!dir_exists(v, path) || !(d = dattr_get(v, path)))
		return;
	d->mtime_ns = now_ns();
	if (!d->ephemeral)
		v->dirty = true;
}

/* An entry was added to, removed from or renamed in the directory holding path. */
static void parent_touch(struct scone_volume *v, const char *path)
{
	char parent[VOL_MAX_PATH];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;

	if (!slash || n >= sizeof(parent))
		return;
	if (n == 0)
		n = 1; /* "/x" is in "/" */
	memcpy(parent, path, n);
	parent[n] = '\0';
	dir_touch(v, parent);
}

/* A file's content or size changed now: in memory, persisted by the next commit. */
static void file_touch(struct scone_volume *v, struct vol_inode *ino)
{
	ino->mtime_ns = now_ns();
	if (!ino->meta)
		return;
	ino->meta->mtime_ns = ino->mtime_ns;
	if (!ino->meta->ephemeral)
		v->dirty = true;
}

/* chmod / utimens of an entry or an implicit directory; NULL leaves a value. */
static enum scone_err set_attrs_locked(struct scone_volume *v, const char *path, const uint32_t *mode,
				       const int64_t *mtime_ns)
{
	struct vol_meta *m = meta_find(v, path);
	struct vol_dattr *d;
	uint32_t *mp;
	int64_t *tp;
	bool ephemeral;

	if (m) {
		mp = &m->mode;
		tp = &m->mtime_ns;
		ephemeral = m->ephemeral;
	} else if (dir_exists(v, path)) {
		if (!(d = dattr_get(v, path)))
			return scone_err_set(SCONE_ERR_NOMEM, "%s: no memory for the directory's attributes", path);
		mp = &d->mode;
		tp = &d->mtime_ns;
		ephemeral = d->ephemeral;
	} else {
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s: not in the volume", path);
	}
	if (mode)
		*mp = (*mp & ~07777u) | (*mode & 07777u);
	if (mtime_ns)
		*tp = *mtime_ns;
	if (!ephemeral)
		v->dirty = true;
	return SCONE_ERR_OK;
}

/* ---------------- fspf I/O ---------------- */

static enum scone_err read_whole(struct scone_vio *io, const char *path, struct scone_wbuf *out)
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
	return scone_err_set(SCONE_ERR_IO,
			     "%s: a commit failed after writing its record: %s; whether the disk holds it is unknown, "
			     "so the volume takes no more changes: open it again",
			     v->fspf_path, v->unsure_why);
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
		if (!err && v->sealed && size <= LOG_MAX_BYTES / 2)
			err = write_zeros(io, f, size, LOG_MAX_BYTES);
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
		return scone_err_set(err, "%s: cannot append the new state: %s", v->fspf_path, scone_err_detail());
	}
	v->log_start = v->log_end;
	v->log_end += size;
	return SCONE_ERR_OK;
}

/*
 * The longest record an append may add after a record of span bytes: so a
 * reader knows how far a torn append can reach; a longer one compacts.
 */
static uint64_t append_bound(uint64_t span)
{
	return 2 * span + 8 * LOG_SECTOR;
}

/* Append, or compact: after garbage a crash left (never write a record next to it), or past the bounds. */
static bool log_has_room(const struct scone_volume *v, size_t size)
{
	uint64_t end = v->log_end + size;

	return v->log_ok && v->sealed && !v->log_tail && end <= VOL_MAX_FSPF &&
	       size <= append_bound(v->log_end - v->log_start) &&
	       (end <= LOG_MAX_BYTES || end <= (uint64_t)LOG_RECORDS * size);
}

/* Encode and store the fspf for epoch st.epoch; on success v->tag is the new tag. */
static enum scone_err store_fspf(struct scone_volume *v)
{
	struct scone_wbuf plain, env;
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	enum scone_err err;

	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	scone_wbuf_init(&env, VOL_MAX_FSPF + 256, 0);
	err = vol_fspf_encode(&v->st, &plain);
	if (!err)
		err = vol_envelope_seal(plain.data, plain.size, v->sealed ? v->key : NULL, &env, tag);
	scone_wbuf_free(&plain);
	if (!err)
		err = log_has_room(v, env.size) ? append_fspf(v, env.data, env.size) : write_fspf(v, env.data, env.size);
	scone_wbuf_free(&env);
	if (!err)
		memcpy(v->tag, tag, sizeof(tag));
	return err;
}

/* Remove id's host file from every kernel region; false if one could not be removed. */
static bool unlink_everywhere(struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE])
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

static void delete_garbage(struct scone_volume *v)
{
	size_t keep = 0;

	for (size_t g = 0; g < v->st.garbage_count; g++)
		if (!unlink_everywhere(v, v->st.garbage[g]))
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

static void release_idle_inodes(struct scone_volume *v)
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

static bool has_id(uint8_t (*ids)[VOL_ID_SIZE], size_t count, const uint8_t id[static VOL_ID_SIZE])
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
		    has_id(v->st.trims, v->st.trim_count, ino->file_id))
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

static enum scone_err sync_locked_with(struct scone_volume *v, enum scone_err (*before)(void *), void *arg)
{
	uint64_t old_epoch = v->st.epoch;
	uint8_t old_prev[SCONE_VOLUME_TAG_SIZE];
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
	if (!err && before) /* the data is durable; the new state is not recorded yet */
		err = before(arg);
	if (err)
		return err;
	memcpy(old_prev, v->st.prev_tag, sizeof(old_prev));
	memcpy(v->st.prev_tag, v->tag, sizeof(v->tag));
	v->st.epoch = old_epoch + 1;
	err = store_fspf(v);
	if (err) {
		v->st.epoch = old_epoch;
		memcpy(v->st.prev_tag, old_prev, sizeof(old_prev));
		return err;
	}
	for (struct vol_inode *ino = v->inodes; ino; ino = ino->next)
		if (ino->meta && !ino->meta->ephemeral)
			vol_inode_committed(ino);
	v->dirty = false;
	journal_reset(v);
	if (v->st.garbage_count >= GARBAGE_BATCH)
		delete_garbage(v);
	forget_trims(v);
	release_idle_inodes(v);
	return SCONE_ERR_OK;
}

static enum scone_err sync_locked(struct scone_volume *v)
{
	return sync_locked_with(v, NULL, NULL);
}

/* ---------------- open / create / close ---------------- */

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
		vol_inode_put(ino);
	}
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
		err = store_fspf(v);
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
	return scone_err_set(SCONE_ERR_ROLLBACK,
			     "%s: its state (tag %s) is not the expected one (tag %s): rollback detected (or unknown state)",
			     v->fspf_path, have, want);
}

static enum scone_err check_namespace(struct scone_volume *v)
{
	qsort(v->st.metas, v->st.meta_count, sizeof(*v->st.metas), cmp_meta);
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
/* Offset of the first non-zero byte of p[0..n), n if none. */
static size_t first_nonzero(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && !p[i])
		i++;
	return i;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return first_nonzero(p, n) == n;
}

/*
 * Whether the framed record [start, end) after the record at prev is an
 * append a power loss tore (it fails authentication): written over zeros,
 * some whole sector of it never reached the disk and only zeros follow it.
 * A complete record has no zero sector (ciphertext), so a bit flipped in
 * the last record is still AUTH.
 */
static bool torn_record(const uint8_t *in, size_t size, size_t prev, size_t start, size_t end)
{
	if (end - start > append_bound(start - prev) || !all_zero(in + end, size - end))
		return false;
	for (size_t s = start - start % LOG_SECTOR; s < end; s += LOG_SECTOR)
		if (s + LOG_SECTOR <= size && all_zero(in + s, LOG_SECTOR))
			return true;
	return false;
}

static enum scone_err open_log(struct scone_volume *v, const uint8_t *in, size_t size, const uint8_t *key,
			       struct scone_wbuf *plain, bool *sealed, uint8_t tag[static SCONE_VOLUME_TAG_SIZE])
{
	size_t off = 0, span, last = 0, prev = 0, count = 0, reach;
	uint32_t version, first_version = 0;
	bool rec_sealed, first_sealed = false;
	enum scone_err err;

	while (off < size) {
		err = vol_envelope_span(in + off, size - off, &span, &version, &rec_sealed);
		if (err && count == 0)
			return err;
		if (err)
			break; /* a torn append */
		if (count == 0) {
			first_version = version;
			first_sealed = rec_sealed;
		} else if (version < 2 || version != first_version || rec_sealed != first_sealed) {
			return scone_err_set(SCONE_ERR_MALFORMED, "%s: record at byte %zu does not belong to the log",
					     v->fspf_path, off);
		}
		prev = last;
		last = off;
		off += span;
		count++;
	}
	if (first_version == 1 && off != size)
		return scone_err_set(SCONE_ERR_MALFORMED, "fspf file: %zu trailing bytes", size - off);
	scone_err_clear();
	err = vol_envelope_open(in + last, off - last, key, plain, sealed, tag);
	if (err == SCONE_ERR_AUTH && count >= 2 && torn_record(in, size, prev, last, off)) {
		scone_wbuf_free(plain);
		scone_wbuf_init(plain, VOL_MAX_FSPF, 1);
		off = last;
		last = prev;
		scone_err_clear();
		err = vol_envelope_open(in + last, off - last, key, plain, sealed, tag);
	}
	/* A torn append reaches at most append_bound() past the state; the rest is zero padding. */
	reach = off + (size_t)(append_bound(off - last) < size - off ? append_bound(off - last) : size - off);
	if (!err && !all_zero(in + reach, size - reach))
		err = scone_err_set(SCONE_ERR_AUTH, "%s: byte %zu, in the zero padding after the log, was modified",
				    v->fspf_path, reach + first_nonzero(in + reach, size - reach));
	v->log_start = last;
	v->log_end = off;
	/* An older log is rewritten whole by its first commit, so no log mixes versions. */
	v->log_ok = !err && *sealed && first_version == VOL_ENV_VERSION;
	v->log_tail = !all_zero(in + off, size - off);
	return err;
}

enum scone_err scone_volume_log_tags(const char *fspf_path, uint8_t (*tags)[SCONE_VOLUME_TAG_SIZE], size_t max,
				     size_t *count)
{
	struct scone_wbuf raw;
	size_t off = 0, span;
	uint32_t version;
	bool sealed;

	*count = 0;
	SCONE_TRY(read_whole(scone_vio_host(), fspf_path, &raw));
	while (off < raw.size && *count < max) {
		if (vol_envelope_span(raw.data + off, raw.size - off, &span, &version, &sealed)) {
			scone_err_clear(); /* zero padding, or an append a crash tore */
			break;
		}
		if (sealed)
			memcpy(tags[(*count)++], raw.data + off + span - SCONE_VOLUME_TAG_SIZE, SCONE_VOLUME_TAG_SIZE);
		off += span;
	}
	scone_wbuf_free(&raw);
	return SCONE_ERR_OK;
}

enum scone_err scone_volume_open(const char *fspf_path, const uint8_t *key, const uint8_t *tag, unsigned flags,
				 struct scone_volume **out)
{
	return scone_volume_open_at(scone_vio_host(), fspf_path, key, tag, flags, out);
}

enum scone_err scone_volume_open_at(struct scone_vio *io, const char *fspf_path, const uint8_t *key,
				    const uint8_t *tag, unsigned flags, struct scone_volume **out)
{
	struct scone_volume *v;
	struct scone_wbuf raw, plain;
	uint8_t disk_tag[SCONE_VOLUME_TAG_SIZE];
	bool sealed = false;
	enum scone_err err;

	SCONE_TRY(volume_alloc(io, fspf_path, &v));
	v->writable = flags & SCONE_VOL_RDWR;
	scone_wbuf_init(&plain, VOL_MAX_FSPF, 1);
	err = read_whole(v->host, fspf_path, &raw);
	if (err == SCONE_ERR_NOT_FOUND)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such protection file", fspf_path);
	if (!err) {
		err = open_log(v, raw.data, raw.size, key, &plain, &sealed, disk_tag);
		scone_wbuf_free(&raw);
	}
	if (!err && !sealed && !(flags & SCONE_VOL_ALLOW_UNSEALED))
		err = scone_err_set(SCONE_ERR_UNSEALED,
				    "%s is not encrypted yet: run 'scone fspf encrypt %s' first", fspf_path, fspf_path);
	if (!err)
		err = vol_fspf_decode(plain.data, plain.size, &v->st);
	v->st.version = 0; /* commits write the current body layout */
	scone_wbuf_free(&plain);
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
	if (v->writable && v->st.garbage_count)
		delete_garbage(v);
	if (v->writable) {
		recover_journal(v);
		trim_files(v);
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

	lock(v);
	err = sync_locked_with(v, before, arg);
	unlock(v);
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
	lock(v);
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
		v->dirty = true;
		v->log_ok = false; /* no record under another key, or unsealed, before this one */
		err = sync_locked(v);
	}
	if (!err) {
		memcpy(key_out, v->key, SCONE_VOLUME_KEY_SIZE);
		memcpy(tag_out, v->tag, SCONE_VOLUME_TAG_SIZE);
	}
	unlock(v);
	return err;
}

enum scone_err scone_volume_close(struct scone_volume *v, uint8_t *tag_out)
{
	enum scone_err err = SCONE_ERR_OK;

	if (!v)
		return SCONE_ERR_OK;
	lock(v);
	err = sync_locked(v);
	if (!err && v->writable && v->st.garbage_count)
		delete_garbage(v); /* the batch left by the last commits */
	if (tag_out)
		memcpy(tag_out, v->tag, SCONE_VOLUME_TAG_SIZE);
	unlock(v);
	volume_free(v);
	return err;
}

void scone_volume_abandon(struct scone_volume *v)
{
	if (v)
		volume_free(v);
}

/* ---------------- regions ---------------- */

enum scone_err scone_volume_add_region(struct scone_volume *v, const char *path, enum scone_region_kind kind,
				       enum scone_region_store store, const char *host_dir)
{
	struct vol_region *nr, r;
	enum scone_err err;

	SCONE_TRY(vol_path_check(path));
	if ((unsigned)kind > SCONE_REGION_ENCRYPTED || (unsigned)store > SCONE_STORE_EPHEMERAL)
		return scone_err_set(SCONE_ERR_INVALID, "invalid region kind or store");
	if (host_dir && strlen(host_dir) >= VOL_MAX_PATH)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "region %s: host directory longer than %u bytes", path,
				     VOL_MAX_PATH - 1);
	if ((store == SCONE_STORE_KERNEL) != (host_dir != NULL) || (host_dir && !host_dir[0]))
		return scone_err_set(SCONE_ERR_INVALID, "region %s: a kernel region needs a host directory, "
							"an ephemeral one has none", path);
	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	lock(v);
	err = SCONE_ERR_OK;
	if (v->inodes)
		err = scone_err_set(SCONE_ERR_BUSY, "cannot change regions while files are open");
	for (size_t i = 0; !err && i < v->st.region_count; i++)
		if (strcmp(v->st.regions[i].path, path) == 0)
			err = scone_err_set(SCONE_ERR_EXISTS, "region %s already exists", path);
	if (!err && v->st.region_count >= VOL_MAX_REGIONS)
		err = scone_err_set(SCONE_ERR_TOO_LARGE, "too many regions");
	if (err) {
		unlock(v);
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
		unlock(v);
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
		v->dirty = true;
	}
	unlock(v);
	return err;
}

enum scone_err scone_volume_redirect(struct scone_volume *v, const char *path, const char *host_dir)
{
	struct vol_region *r;
	char *abs;
	enum scone_err err = SCONE_ERR_OK;

	lock(v);
	r = vol_region_of(v, path);
	if (!r || r->store != SCONE_STORE_KERNEL)
		err = scone_err_set(SCONE_ERR_NO_REGION, "%s is not in a region stored on the host", path);
	else if (v->inodes)
		err = scone_err_set(SCONE_ERR_BUSY, "cannot redirect a region while files are open");
	else if (!(abs = realpath(host_dir, NULL)))
		err = scone_err_set(scone_err_from_errno(errno), "%s: %s", host_dir, strerror(errno));
	else {
		free(r->host_abs);
		r->host_abs = abs;
	}
	unlock(v);
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

static enum scone_err protected_region(const struct scone_volume *v, const char *path, struct vol_region **out)
{
	struct vol_region *r;

	SCONE_TRY(vol_path_check(path));
	r = vol_region_of(v, path);
	if (!r || r->kind == SCONE_REGION_NOT_PROTECTED)
		return scone_err_set(SCONE_ERR_NO_REGION, "%s is not in a protected region of the volume", path);
	*out = r;
	return SCONE_ERR_OK;
}

static enum scone_err create_meta(struct scone_volume *v, const char *path, uint8_t type, uint32_t mode,
				  struct vol_region *r, struct vol_meta **out)
{
	struct vol_meta *m = calloc(1, sizeof(*m));
	enum scone_err err;

	if (!m || !(m->path = strdup(path))) {
		free(m);
		return SCONE_ERR_NOMEM;
	}
	m->type = type;
	m->mode = mode;
	m->mtime_ns = now_ns();
	m->ephemeral = r->store == SCONE_STORE_EPHEMERAL;
	err = SCONE_ERR_OK;
	if (type == VOL_T_FILE) {
		err = scone_random(m->file_id, sizeof(m->file_id));
		if (!err)
			err = scone_random(m->file_key, sizeof(m->file_key));
	}
	if (!err)
		err = meta_insert(v, m);
	if (err) {
		vol_meta_free(m);
		return err;
	}
	if (!m->ephemeral)
		v->dirty = true;
	*out = m;
	return SCONE_ERR_OK;
}

static enum scone_err vfile_open_locked(struct scone_volume *v, const char *path, unsigned flags, uint32_t mode,
					struct scone_vfile **out)
{
	struct vol_region *r;
	struct vol_meta *m;
	struct scone_vfile *f;
	bool writing = flags & (SCONE_VF_WRONLY | SCONE_VF_RDWR | SCONE_VF_CREAT | SCONE_VF_TRUNC | SCONE_VF_APPEND);
	bool created = false;
	enum scone_err err;

	SCONE_TRY(protected_region(v, path, &r));
	if (writing && !v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "%s: volume opened read-only", path);
	m = meta_find(v, path);
	if (m && m->type == VOL_T_DIR)
		return scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", path);
	if (m && (flags & SCONE_VF_CREAT) && (flags & SCONE_VF_EXCL))
		return scone_err_set(SCONE_ERR_EXISTS, "%s exists", path);
	if (!m && dir_exists(v, path))
		return scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", path);
	if (!m) {
		if (!(flags & SCONE_VF_CREAT))
			return scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such file in the volume", path);
		SCONE_TRY(parent_check(v, path));
		SCONE_TRY(create_meta(v, path, VOL_T_FILE, mode, r, &m));
		err = m->ephemeral ? SCONE_ERR_OK : vol_journal_note(v, m->file_id);
		if (!err)
			err = vol_inode_create_host(v, m, r);
		if (err) {
			meta_remove(v, m);
			vol_meta_free(m);
			return err;
		}
		created = true;
		parent_touch(v, path);
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return SCONE_ERR_NOMEM;
	err = vol_inode_load(v, m, &f->ino);
	if (!err && (flags & SCONE_VF_TRUNC) && !created) {
		if (f->ino->size)
			err = vol_inode_truncate(f->ino, 0);
		if (!err)
			file_touch(v, f->ino); /* O_TRUNC marks the file modified, even when empty */
	}
	if (err) {
		if (f->ino)
			vol_inode_put(f->ino);
		free(f);
		return err;
	}
	f->vol = v;
	f->flags = flags;
	*out = f;
	return SCONE_ERR_OK;
}

enum scone_err scone_vfile_open(struct scone_volume *v, const char *path, unsigned flags, uint32_t mode,
				struct scone_vfile **out)
{
	enum scone_err err;

	lock(v);
	err = vfile_open_locked(v, path, flags, mode, out);
	unlock(v);
	return err;
}

static bool can_write(const struct scone_vfile *f)
{
	return f->flags & (SCONE_VF_WRONLY | SCONE_VF_RDWR);
}

enum scone_err scone_vfile_pread(struct scone_vfile *f, void *buf, size_t size, uint64_t off, size_t *got)
{
	enum scone_err err;

	if (f->flags & SCONE_VF_WRONLY)
		return scone_err_set(SCONE_ERR_BAD_FD, "file opened write-only");
	lock(f->vol);
	err = vol_inode_read(f->ino, buf, size, off, got);
	unlock(f->vol);
	return err;
}

enum scone_err scone_vfile_pwrite(struct scone_vfile *f, const void *buf, size_t size, uint64_t off)
{
	enum scone_err err;

	if (!can_write(f))
		return scone_err_set(SCONE_ERR_BAD_FD, "file not opened for writing");
	lock(f->vol);
	err = vol_inode_write(f->ino, buf, size, off);
	if (!err && size)
		file_touch(f->vol, f->ino);
	unlock(f->vol);
	return err;
}

enum scone_err scone_vfile_append(struct scone_vfile *f, const void *buf, size_t size, uint64_t *off_out)
{
	enum scone_err err;

	if (!can_write(f))
		return scone_err_set(SCONE_ERR_BAD_FD, "file not opened for writing");
	lock(f->vol);
	*off_out = f->ino->size;
	err = vol_inode_write(f->ino, buf, size, f->ino->size);
	if (!err && size)
		file_touch(f->vol, f->ino);
	unlock(f->vol);
	return err;
}

enum scone_err scone_vfile_truncate(struct scone_vfile *f, uint64_t size)
{
	enum scone_err err;

	if (!can_write(f))
		return scone_err_set(SCONE_ERR_BAD_FD, "file not opened for writing");
	lock(f->vol);
	err = vol_inode_truncate(f->ino, size);
	if (!err)
		file_touch(f->vol, f->ino);
	unlock(f->vol);
	return err;
}

static void fill_stat(const struct vol_meta *m, const struct vol_inode *ino, struct scone_vstat *st)
{
	memset(st, 0, sizeof(*st));
	st->is_dir = m ? m->type == VOL_T_DIR : false;
	st->mode = m ? m->mode : 0600;
	st->size = ino ? ino->size : (m ? m->size : 0);
	st->mtime_ns = m ? m->mtime_ns : (ino ? ino->mtime_ns : 0);
	if (m)
		memcpy(st->file_id, m->file_id, VOL_ID_SIZE);
}

/* A directory without an entry of its own ("/", a region root or an ancestor of one). */
static void implicit_dir_stat(const struct scone_volume *v, const char *path, struct scone_vstat *st)
{
	const struct vol_dattr *d = dattr_find(v, path);

	fill_stat(NULL, NULL, st);
	st->is_dir = true;
	st->mode = d ? d->mode : IMPLICIT_DIR_MODE;
	st->mtime_ns = d ? d->mtime_ns : 0;
}

enum scone_err scone_vfile_stat(struct scone_vfile *f, struct scone_vstat *st)
{
	lock(f->vol);
	fill_stat(f->ino->meta, f->ino, st);
	unlock(f->vol);
	return SCONE_ERR_OK;
}

enum scone_err scone_vfile_sync(struct scone_vfile *f)
{
	return scone_volume_sync(f->vol);
}

void scone_vfile_close(struct scone_vfile *f)
{
	if (!f)
		return;
	lock(f->vol);
	vol_inode_put(f->ino);
	unlock(f->vol);
	free(f);
}

/* ---------------- namespace operations ---------------- */

static struct vol_inode *open_inode_of(struct scone_volume *v, const struct vol_meta *m)
{
	for (struct vol_inode *ino = v->inodes; ino; ino = ino->next)
		if (ino->meta == m)
			return ino;
	return NULL;
}

enum scone_err scone_volume_stat(struct scone_volume *v, const char *path, struct scone_vstat *st)
{
	struct vol_meta *m;
	enum scone_err err = SCONE_ERR_OK;

	SCONE_TRY(vol_path_check(path));
	lock(v);
	m = meta_find(v, path);
	if (m)
		fill_stat(m, open_inode_of(v, m), st);
	else if (dir_exists(v, path))
		implicit_dir_stat(v, path, st);
	else
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "%s: not in the volume", path);
	unlock(v);
	return err;
}

enum scone_err scone_volume_mkdir(struct scone_volume *v, const char *path, uint32_t mode)
{
	struct vol_region *r;
	struct vol_meta *m;
	enum scone_err err;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	lock(v);
	err = protected_region(v, path, &r);
	if (!err && (meta_find(v, path) || dir_exists(v, path)))
		err = scone_err_set(SCONE_ERR_EXISTS, "%s exists", path);
	if (!err)
		err = parent_check(v, path);
	if (!err)
		err = create_meta(v, path, VOL_T_DIR, mode, r, &m);
	if (!err)
		parent_touch(v, path);
	unlock(v);
	return err;
}

enum scone_err scone_volume_rmdir(struct scone_volume *v, const char *path)
{
	struct vol_meta *m;
	enum scone_err err = SCONE_ERR_OK;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	SCONE_TRY(vol_path_check(path));
	lock(v);
	m = meta_find(v, path);
	if (!m)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such directory", path);
	else if (m->type != VOL_T_DIR)
		err = scone_err_set(SCONE_ERR_NOT_DIR, "%s is not a directory", path);
	else if (has_children(v, path))
		err = scone_err_set(SCONE_ERR_NOT_EMPTY, "%s is not empty", path);
	if (!err) {
		meta_remove(v, m);
		if (!m->ephemeral)
			v->dirty = true;
		vol_meta_free(m);
		parent_touch(v, path);
	}
	unlock(v);
	return err;
}

static enum scone_err add_garbage(struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE])
{
	uint8_t(*ng)[VOL_ID_SIZE] = realloc(v->st.garbage, (v->st.garbage_count + 1) * VOL_ID_SIZE);

	if (!ng)
		return SCONE_ERR_NOMEM;
	v->st.garbage = ng;
	memcpy(v->st.garbage[v->st.garbage_count++], id, VOL_ID_SIZE);
	return SCONE_ERR_OK;
}

/* Remove file m from the namespace; its host file goes at the next commit. */
static enum scone_err unlink_meta(struct scone_volume *v, struct vol_meta *m)
{
	struct vol_inode *ino = open_inode_of(v, m);
	struct vol_region *r = vol_region_of(v, m->path);

	if (m->ephemeral) {
		char *hp = vol_host_path(r, m->file_id);
		if (hp)
			(void)v->mem->ops->unlink(v->mem, hp);
		free(hp);
	} else {
		SCONE_TRY(add_garbage(v, m->file_id));
		v->dirty = true;
	}
	meta_remove(v, m);
	if (ino) {
		ino->mtime_ns = m->mtime_ns; /* still open: its stat keeps the time */
		ino->meta = NULL;
		if (ino->refs == 0) {
			ino->refs = 1;
			vol_inode_put(ino);
		}
	}
	vol_meta_free(m);
	return SCONE_ERR_OK;
}

enum scone_err scone_volume_unlink(struct scone_volume *v, const char *path)
{
	struct vol_meta *m;
	enum scone_err err;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	SCONE_TRY(vol_path_check(path));
	lock(v);
	m = meta_find(v, path);
	if (!m)
		err = dir_exists(v, path) ? scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", path)
					  : scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such file", path);
	else if (m->type == VOL_T_DIR)
		err = scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", path);
	else
		err = unlink_meta(v, m);
	if (!err)
		parent_touch(v, path);
	unlock(v);
	return err;
}

/* Replace the prefix from of m->path with to. */
static enum scone_err repath(struct vol_meta *m, const char *from, const char *to)
{
	size_t fl = strlen(from), n = strlen(to) + strlen(m->path) - fl + 1;
	char *p = malloc(n);

	if (!p)
		return SCONE_ERR_NOMEM;
	snprintf(p, n, "%s%s", to, m->path + fl);
	free(m->path);
	m->path = p;
	return SCONE_ERR_OK;
}

static bool region_inside(const struct scone_volume *v, const char *dir)
{
	for (size_t i = 0; i < v->st.region_count; i++)
		if (is_prefix_dir(dir, v->st.regions[i].path) || strcmp(dir, v->st.regions[i].path) == 0)
			return true;
	return false;
}

/* Every path under from, moved under to, must stay a valid length. */
static enum scone_err check_moved_lengths(const struct scone_volume *v, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);

	for (size_t i = 0; i < v->st.meta_count; i++) {
		const char *p = v->st.metas[i]->path;
		if (is_prefix_dir(from, p) && strlen(p) - fl + tl >= VOL_MAX_PATH)
			return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "moving %s to %s would make %s too long", from,
					     to, p);
	}
	return SCONE_ERR_OK;
}

static enum scone_err rename_locked(struct scone_volume *v, const char *from, const char *to)
{
	struct vol_region *rf, *rt;
	struct vol_meta *m, *dst;
	enum scone_err err = SCONE_ERR_OK;

	SCONE_TRY(protected_region(v, from, &rf));
	SCONE_TRY(protected_region(v, to, &rt));
	m = meta_find(v, from);
	if (!m)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such file or directory", from);
	if (strcmp(from, to) == 0)
		return SCONE_ERR_OK;
	if (rf != rt || (m->type == VOL_T_DIR && (region_inside(v, from) || region_inside(v, to))))
		return scone_err_set(SCONE_ERR_CROSS_REGION, "%s -> %s crosses a region boundary", from, to);
	if (is_prefix_dir(from, to))
		return scone_err_set(SCONE_ERR_INVALID, "cannot move %s into itself", from);
	if (strcmp(to, "/") == 0)
		return scone_err_set(SCONE_ERR_INVALID, "cannot replace the root directory");
	if (m->type == VOL_T_DIR)
		SCONE_TRY(check_moved_lengths(v, from, to));
	SCONE_TRY(parent_check(v, to));
	dst = meta_find(v, to);
	if (dst) {
		if (dst->type == VOL_T_DIR && m->type != VOL_T_DIR)
			return scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", to);
		if (dst->type != VOL_T_DIR && m->type == VOL_T_DIR)
			return scone_err_set(SCONE_ERR_NOT_DIR, "%s is not a directory", to);
		if (dst->type == VOL_T_DIR && has_children(v, to))
			return scone_err_set(SCONE_ERR_NOT_EMPTY, "%s is not empty", to);
		if (dst->type == VOL_T_DIR) {
			meta_remove(v, dst);
			vol_meta_free(dst);
		} else
			SCONE_TRY(unlink_meta(v, dst));
	}
	if (m->type == VOL_T_DIR) {
		for (size_t i = 0; i < v->st.meta_count && !err; i++)
			if (is_prefix_dir(from, v->st.metas[i]->path))
				err = repath(v->st.metas[i], from, to);
	}
	if (!err)
		err = repath(m, from, to);
	qsort(v->st.metas, v->st.meta_count, sizeof(*v->st.metas), cmp_meta);
	if (!m->ephemeral)
		v->dirty = true;
	if (!err) {
		parent_touch(v, from);
		parent_touch(v, to);
	}
	return err;
}

enum scone_err scone_volume_rename(struct scone_volume *v, const char *from, const char *to)
{
	enum scone_err err;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	lock(v);
	err = rename_locked(v, from, to);
	unlock(v);
	return err;
}

enum scone_err scone_volume_chmod(struct scone_volume *v, const char *path, uint32_t mode)
{
	enum scone_err err;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "%s: volume opened read-only", path);
	SCONE_TRY(vol_path_check(path));
	lock(v);
	err = set_attrs_locked(v, path, &mode, NULL);
	unlock(v);
	return err;
}

enum scone_err scone_volume_set_mtime(struct scone_volume *v, const char *path, int64_t mtime_ns)
{
	enum scone_err err;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "%s: volume opened read-only", path);
	SCONE_TRY(vol_path_check(path));
	lock(v);
	err = set_attrs_locked(v, path, NULL, &mtime_ns);
	unlock(v);
	return err;
}

enum scone_err scone_volume_truncate(struct scone_volume *v, const char *path, uint64_t size)
{
	struct scone_vfile *f;
	enum scone_err err;

	SCONE_TRY(scone_vfile_open(v, path, SCONE_VF_WRONLY, 0, &f));
	err = scone_vfile_truncate(f, size);
	scone_vfile_close(f);
	return err;
}

/* A snapshot of entries, so callbacks run without the volume lock held. */
struct listing {
	char **names;
	struct scone_vstat *stats;
	size_t count, cap;
};

static enum scone_err listing_add(struct listing *l, const char *name, const struct scone_vstat *st)
{
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		char **nn = realloc(l->names, cap * sizeof(*nn));
		struct scone_vstat *ns;
		if (!nn)
			return SCONE_ERR_NOMEM;
		l->names = nn;
		ns = realloc(l->stats, cap * sizeof(*ns));
		if (!ns)
			return SCONE_ERR_NOMEM;
		l->stats = ns;
		l->cap = cap;
	}
	l->names[l->count] = strdup(name);
	if (!l->names[l->count])
		return SCONE_ERR_NOMEM;
	l->stats[l->count++] = *st;
	return SCONE_ERR_OK;
}

/*
 * Region roots are listed before the (sorted) entries: insertion sort puts
 * them in place, O(n) per region root.
 */
static void listing_sort(struct listing *l)
{
	for (size_t i = 1; i < l->count; i++) {
		char *name = l->names[i];
		struct scone_vstat st = l->stats[i];
		size_t j = i;
		for (; j > 0 && strcmp(l->names[j - 1], name) > 0; j--) {
			l->names[j] = l->names[j - 1];
			l->stats[j] = l->stats[j - 1];
		}
		l->names[j] = name;
		l->stats[j] = st;
	}
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->names[i]);
	free(l->names);
	free(l->stats);
}

static enum scone_err list_dir_locked(struct scone_volume *v, const char *dir, struct listing *l)
{
	struct scone_vstat st;
	bool found;
	size_t i, dl;

	if (!dir_exists(v, dir))
		return meta_find(v, dir) ? scone_err_set(SCONE_ERR_NOT_DIR, "%s is not a directory", dir)
					 : scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such directory", dir);
	dl = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
	/* Region roots that have no directory entry of their own. */
	for (size_t r = 0; r < v->st.region_count; r++) {
		const char *rp = v->st.regions[r].path;
		if (is_prefix_dir(dir, rp) && !strchr(rp + dl + 1, '/') && !meta_find(v, rp)) {
			implicit_dir_stat(v, rp, &st);
			SCONE_TRY(listing_add(l, rp + dl + 1, &st));
		}
	}
	i = meta_pos(v, dir, &found);
	for (i += found; i < v->st.meta_count; i++) {
		struct vol_meta *m = v->st.metas[i];
		if (!is_prefix_dir(dir, m->path))
			break;
		if (strchr(m->path + dl + 1, '/'))
			continue;
		fill_stat(m, open_inode_of(v, m), &st);
		SCONE_TRY(listing_add(l, m->path + dl + 1, &st));
	}
	listing_sort(l);
	return SCONE_ERR_OK;
}

enum scone_err scone_volume_readdir(struct scone_volume *v, const char *dir, scone_readdir_fn fn, void *arg)
{
	struct listing l = { 0 };
	enum scone_err err;

	SCONE_TRY(vol_path_check(dir));
	lock(v);
	err = list_dir_locked(v, dir, &l);
	unlock(v);
	for (size_t i = 0; !err && i < l.count; i++)
		if (fn(arg, l.names[i], &l.stats[i]))
			break;
	listing_free(&l);
	return err;
}

void scone_volume_walk(struct scone_volume *v, scone_walk_fn fn, void *arg)
{
	struct listing l = { 0 };
	struct scone_vstat st;
	enum scone_err err = SCONE_ERR_OK;

	lock(v);
	for (size_t i = 0; i < v->st.meta_count && !err; i++) {
		struct vol_meta *m = v->st.metas[i];
		fill_stat(m, open_inode_of(v, m), &st);
		err = listing_add(&l, m->path, &st);
	}
	unlock(v);
	for (size_t i = 0; i < l.count; i++)
		if (fn(arg, l.names[i], &l.stats[i]))
			break;
	listing_free(&l);
}

/* ---------------- host check ---------------- */

struct host_scan {
	struct scone_volume *v;
	struct vol_region *r;
	scone_problem_fn fn;
	void *arg;
	enum scone_err first;
	uint8_t *ids; /* sorted ids of every file the fspf knows */
	size_t id_count;
};

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, VOL_ID_SIZE);
}

static enum scone_err index_ids(struct host_scan *s)
{
	const struct scone_volume *v = s->v;
	size_t n = 0;

	s->ids = malloc((v->st.meta_count + v->st.garbage_count + 1) * VOL_ID_SIZE);
	if (!s->ids)
		return SCONE_ERR_NOMEM;
	for (size_t i = 0; i < v->st.meta_count; i++)
		if (v->st.metas[i]->type == VOL_T_FILE)
			memcpy(s->ids + VOL_ID_SIZE * n++, v->st.metas[i]->file_id, VOL_ID_SIZE);
	for (size_t i = 0; i < v->st.garbage_count; i++)
		memcpy(s->ids + VOL_ID_SIZE * n++, v->st.garbage[i], VOL_ID_SIZE);
	qsort(s->ids, n, VOL_ID_SIZE, cmp_id);
	s->id_count = n;
	return SCONE_ERR_OK;
}

static bool known_id(const struct host_scan *s, const uint8_t id[static VOL_ID_SIZE])
{
	return bsearch(id, s->ids, s->id_count, VOL_ID_SIZE, cmp_id) != NULL;
}

static void report(struct host_scan *s, enum scone_err e, const char *msg)
{
	if (!s->first)
		s->first = e;
	if (s->fn)
		s->fn(s->arg, e, msg);
}

/*
 * A file a writer created but had not committed when it stopped: it carries
 * a valid claim (*claimed), or, named like a file id, is still empty (the
 * writer stopped between creating it and writing its header).
 */
static bool is_leftover(struct scone_volume *v, const char *path, const uint8_t *name_id, bool *claimed)
{
	struct scone_vio_file *f;
	uint8_t block[128];
	struct vol_header h;
	size_t got = 0;
	uint64_t size = 1;
	bool ok = false;

	/* Only a file named by its own (uncommitted) id can be a writer's leftover. */
	if (!name_id || v->host->ops->open(v->host, path, 0, &f) != SCONE_ERR_OK)
		return false;
	if (v->host->ops->pread(f, block, sizeof(block), 0, &got) == SCONE_ERR_OK &&
	    vol_header_decode(block, got, &h) == SCONE_ERR_OK)
		ok = *claimed = memcmp(h.file_id, name_id, VOL_ID_SIZE) == 0 &&
				vol_claimed_size(v, h.file_id, h.claim) > 0;
	else if (v->host->ops->size(f, &size) == SCONE_ERR_OK)
		ok = size == 0; /* killed between creating the file and writing its header */
	v->host->ops->close(f);
	return ok;
}

static int scan_entry(void *arg, const char *name)
{
	struct host_scan *s = arg;
	uint8_t id[VOL_ID_SIZE];
	char msg[600], *full;
	size_t n;
	bool named_like_id, claimed = false;
	const char *fspf_base = strrchr(s->v->fspf_path, '/');

	fspf_base = fspf_base ? fspf_base + 1 : s->v->fspf_path;
	if (strncmp(name, fspf_base, strlen(fspf_base)) == 0 && strcmp(s->r->host_abs, s->v->fspf_dir) == 0)
		return 0; /* the fspf itself (and its .tmp) */
	named_like_id = scone_hex_decode(id, sizeof(id), name, "file name") == SCONE_ERR_OK;
	if (named_like_id && known_id(s, id))
		return 0;
	n = strlen(s->r->host_abs) + strlen(name) + 2;
	full = malloc(n);
	if (!full)
		return 0;
	snprintf(full, n, "%s/%s", s->r->host_abs, name);
	if (!is_leftover(s->v, full, named_like_id ? id : NULL, &claimed)) {
		snprintf(msg, sizeof(msg), "%s: not part of the volume (added to region %s)", full, s->r->path);
		report(s, SCONE_ERR_UNKNOWN_FILE, msg);
	}
	free(full);
	return 0;
}

/* Every protected host directory once. */
static void scan_regions(struct host_scan *s)
{
	struct scone_volume *v = s->v;

	for (size_t i = 0; i < v->st.region_count; i++) {
		bool seen = false;
		s->r = &v->st.regions[i];
		if (!s->r->host_abs || s->r->kind == SCONE_REGION_NOT_PROTECTED)
			continue;
		for (size_t j = 0; j < i; j++)
			seen |= v->st.regions[j].host_abs && strcmp(v->st.regions[j].host_abs, s->r->host_abs) == 0 &&
				v->st.regions[j].kind != SCONE_REGION_NOT_PROTECTED;
		if (!seen) {
			enum scone_err e = v->host->ops->list(v->host, s->r->host_abs, scan_entry, s);
			if (e && e != SCONE_ERR_NOT_FOUND)
				report(s, e, scone_err_detail());
		}
	}
}

/*
 * A writer that stopped between a commit and cutting its files back to
 * their new size (crash, or an I/O error it could only ignore) left bytes
 * past a file's committed end, vouched for by a claim of the current epoch
 * alone: cut them now, before the next commit voids that claim and the file
 * reads as EXTENDED. Excess no claim covers is left for the check to report.
 * Best effort; one open per file.
 */
/* Cut m's host file back to its committed size if a valid claim covers the excess. */
static void trim_one(struct scone_volume *v, const struct vol_meta *m)
{
	struct scone_vio *io = v->host;
	struct vol_region *r = vol_region_of(v, m->path);
	uint64_t have, need = vol_expected_phys(m->size);
	struct scone_vio_file *f;
	struct vol_header h;
	uint8_t block[128];
	size_t got;
	char *hp;

	if (m->type != VOL_T_FILE || m->ephemeral || !r || !r->host_abs || r->kind == SCONE_REGION_NOT_PROTECTED)
		return;
	hp = vol_host_path(r, m->file_id);
	if (hp && io->ops->open(io, hp, SCONE_VIO_WRITE, &f) == SCONE_ERR_OK) {
		if (io->ops->size(f, &have) == SCONE_ERR_OK && have > need &&
		    io->ops->pread(f, block, sizeof(block), 0, &got) == SCONE_ERR_OK &&
		    vol_header_decode(block, got, &h) == SCONE_ERR_OK && memcmp(h.file_id, m->file_id, VOL_ID_SIZE) == 0 &&
		    vol_claimed_size(v, m->file_id, h.claim) >= have)
			(void)io->ops->truncate(f, need);
		io->ops->close(f);
	}
	free(hp);
}

static int cmp_meta_id(const void *a, const void *b)
{
	return memcmp((*(struct vol_meta *const *)a)->file_id, (*(struct vol_meta *const *)b)->file_id, VOL_ID_SIZE);
}

/* Committed files sorted by id, to find the files FSPF.new and the trim list name. */
struct id_index {
	struct vol_meta **m;
	size_t n;
};

static enum scone_err id_index_build(const struct scone_volume *v, struct id_index *x)
{
	x->n = 0;
	x->m = malloc((v->st.meta_count + 1) * sizeof(*x->m));
	if (!x->m)
		return SCONE_ERR_NOMEM;
	for (size_t i = 0; i < v->st.meta_count; i++)
		if (v->st.metas[i]->type == VOL_T_FILE)
			x->m[x->n++] = v->st.metas[i];
	qsort(x->m, x->n, sizeof(*x->m), cmp_meta_id);
	return SCONE_ERR_OK;
}

static struct vol_meta *id_index_find(const struct id_index *x, const uint8_t id[static VOL_ID_SIZE])
{
	struct vol_meta key, *kp = &key, **hit;

	memcpy(key.file_id, id, VOL_ID_SIZE);
	hit = bsearch(&kp, x->m, x->n, sizeof(*x->m), cmp_meta_id);
	return hit ? *hit : NULL;
}

/* Files the last commit shrank: cut back now if the writer stopped before it could. */
static void trim_files(struct scone_volume *v)
{
	struct id_index x;

	if (!v->st.trim_count || id_index_build(v, &x) != SCONE_ERR_OK)
		return;
	for (size_t t = 0; t < v->st.trim_count; t++) {
		struct vol_meta *m = id_index_find(&x, v->st.trims[t]);
		if (m)
			trim_one(v, m);
	}
	free(x.m);
	scone_err_clear();
}

/* ---------------- create journal ---------------- */

/*
 * FSPF.new lists the ids of host files created since the last commit, each
 * written before its file is created. A writer that opens the volume removes
 * those that the committed fspf does not know (an earlier writer stopped
 * before committing them), so they never turn into unknown files. The file
 * is not secret (random ids) nor trusted: a dropped id only leaves a file
 * for verify to report, and an added id cannot name a committed file.
 */
static char *journal_path(const struct scone_volume *v)
{
	size_t n = strlen(v->fspf_path) + 5;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s.new", v->fspf_path);
	return p;
}

enum scone_err vol_journal_note(struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE])
{
	if (!v->journal) {
		char *jp = journal_path(v);
		enum scone_err err = jp ? v->host->ops->open(v->host, jp, SCONE_VIO_WRITE | SCONE_VIO_CREATE, &v->journal)
					: SCONE_ERR_NOMEM;
		free(jp);
		if (!err)
			err = v->host->ops->size(v->journal, &v->journal_size);
		if (err)
			return err;
		v->journal_size -= v->journal_size % VOL_ID_SIZE;
	}
	SCONE_TRY(v->host->ops->pwrite(v->journal, id, VOL_ID_SIZE, v->journal_size));
	v->journal_size += VOL_ID_SIZE;
	return SCONE_ERR_OK;
}

/* After a commit every journaled file is committed or listed as garbage. */
static void journal_reset(struct scone_volume *v)
{
	if (v->journal && v->journal_size && v->host->ops->truncate(v->journal, 0) == SCONE_ERR_OK)
		v->journal_size = 0;
}


#define MAX_JOURNAL ((size_t)16 << 20)

static void recover_journal(struct scone_volume *v)
{
	struct scone_wbuf raw;
	struct id_index x = { 0 };
	char *jp = journal_path(v);

	if (jp && read_whole(v->host, jp, &raw) == SCONE_ERR_OK) {
		if (raw.size && raw.size <= MAX_JOURNAL && id_index_build(v, &x) == SCONE_ERR_OK) {
			for (size_t o = 0; o + VOL_ID_SIZE <= raw.size; o += VOL_ID_SIZE) {
				struct vol_meta *m = id_index_find(&x, raw.data + o);
				bool garbage = has_id(v->st.garbage, v->st.garbage_count, raw.data + o);
				if (m)
					trim_one(v, m); /* grown by a writer that did not commit */
				else if (!garbage)
					(void)unlink_everywhere(v, raw.data + o); /* created, never committed */
			}
		}
		scone_wbuf_free(&raw);
		(void)v->host->ops->unlink(v->host, jp);
	}
	free(x.m);
	free(jp);
	scone_err_clear();
}

enum scone_err scone_volume_check_host(struct scone_volume *v, scone_problem_fn fn, void *arg)
{
	struct host_scan s = { .v = v, .fn = fn, .arg = arg };

	lock(v);
	for (size_t i = 0; i < v->st.meta_count; i++) {
		struct vol_meta *m = v->st.metas[i];
		struct vol_inode *ino;
		enum scone_err e;
		if (m->type != VOL_T_FILE || m->ephemeral)
			continue;
		e = vol_inode_load(v, m, &ino);
		if (e) {
			report(&s, e, scone_err_detail());
			continue;
		}
		vol_inode_put(ino);
	}
	if (index_ids(&s) == SCONE_ERR_OK)
		scan_regions(&s);
	else
		report(&s, SCONE_ERR_NOMEM, "out of memory while checking the host files");
	free(s.ids);
	unlock(v);
	return s.first;
}
