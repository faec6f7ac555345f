/*
 * volume_check.c - a volume against its host directories: the scan that
 * finds unexplained, missing or leftover host files (scone_volume_check_host),
 * trimming host files back to their committed size, the journal of
 * files created since the last commit (removed on recovery), and the
 * log's redo blocks written again where they belong (vol_replay).
 */
#include "internal.h"
#include "lib/hex.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
 * A header a writer of this volume made: a claim MAC'ed with the claim key
 * for an epoch up to the current one. (An older epoch: the writer created
 * the file and stopped before any commit; after a power loss FSPF.new may
 * not have kept its id, so the writer that opened next did not remove it.)
 */
static bool made_by_a_writer(const struct scone_volume *v, const struct vol_header *h)
{
	for (unsigned i = 0; i < 2; i++) {
		uint8_t mac[SCONE_SHA256_SIZE];
		if (h->claim[i].epoch <= v->st.epoch &&
		    vol_claim_mac(v, h->file_id, h->claim[i].epoch, h->claim[i].size, mac) == SCONE_ERR_OK &&
		    scone_ct_equal(mac, h->claim[i].mac, sizeof(mac)))
			return true;
	}
	return false;
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
		ok = *claimed = memcmp(h.file_id, name_id, VOL_ID_SIZE) == 0 && made_by_a_writer(v, &h);
	else if (v->host->ops->size(f, &size) == SCONE_ERR_OK)
		/* killed between creating the file and writing its header, or before that reached the disk */
		ok = size == 0 || (got == sizeof(block) && vol_first_nonzero(block, got) == got);
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
		snprintf(msg, sizeof(msg), "%s: not part of the volume (added to region %s)", full,
			 s->r->path);
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
			seen |= v->st.regions[j].host_abs &&
				strcmp(v->st.regions[j].host_abs, s->r->host_abs) == 0 &&
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

	if (m->type != VOL_T_FILE || m->ephemeral || !r || !r->host_abs ||
	    r->kind == SCONE_REGION_NOT_PROTECTED)
		return;
	hp = vol_host_path(r, m->file_id);
	if (hp && io->ops->open(io, hp, SCONE_VIO_WRITE, &f) == SCONE_ERR_OK) {
		if (io->ops->size(f, &have) == SCONE_ERR_OK && have > need &&
		    io->ops->pread(f, block, sizeof(block), 0, &got) == SCONE_ERR_OK &&
		    vol_header_decode(block, got, &h) == SCONE_ERR_OK &&
		    memcmp(h.file_id, m->file_id, VOL_ID_SIZE) == 0 &&
		    vol_claimed_size(v, m->file_id, h.claim) >= have)
			(void)io->ops->truncate(f, need);
		io->ops->close(f);
	}
	free(hp);
}

/* Files the last commit shrank: cut back now if the writer stopped before it could. */
void vol_trim_files(struct scone_volume *v)
{
	struct vol_id_index x;

	if (!v->st.trim_count || vol_id_index_build(&v->st, &x) != SCONE_ERR_OK)
		return;
	for (size_t t = 0; t < v->st.trim_count; t++) {
		struct vol_meta *m = vol_id_index_find(&x, v->st.trims[t]);
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
		enum scone_err err =
		    jp ? v->host->ops->open(v->host, jp, SCONE_VIO_WRITE | SCONE_VIO_CREATE, &v->journal)
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
void vol_journal_reset(struct scone_volume *v)
{
	if (v->journal && v->journal_size && v->host->ops->truncate(v->journal, 0) == SCONE_ERR_OK)
		v->journal_size = 0;
}

#define MAX_JOURNAL ((size_t)16 << 20)

void vol_recover_journal(struct scone_volume *v)
{
	struct scone_wbuf raw;
	struct vol_id_index x = {0};
	char *jp = journal_path(v);

	if (jp && vol_read_whole(v->host, jp, &raw) == SCONE_ERR_OK) {
		if (raw.size && raw.size <= MAX_JOURNAL && vol_id_index_build(&v->st, &x) == SCONE_ERR_OK) {
			for (size_t o = 0; o + VOL_ID_SIZE <= raw.size; o += VOL_ID_SIZE) {
				struct vol_meta *m = vol_id_index_find(&x, raw.data + o);
				bool garbage = vol_has_id(v->st.garbage, v->st.garbage_count, raw.data + o);
				if (m)
					trim_one(v, m); /* grown by a writer that did not commit */
				else if (!garbage)
					(void)vol_unlink_everywhere(v, raw.data +
									   o); /* created, never committed */
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
	struct host_scan s = {.v = v, .fn = fn, .arg = arg};

	vol_lock(v);
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
	vol_unlock(v);
	return s.first;
}

/* ---------------- redo blocks ---------------- */

/*
 * Which pair of slots a host block belongs to (a node's two, or a data
 * chunk's two), so that only the last redo block of a pair is written.
 */
static uint64_t slot_pair(uint64_t off)
{
	uint64_t b = off / VOL_BLOCK - 1, g = b / VOL_GROUP_BLOCKS, r = b % VOL_GROUP_BLOCKS;

	if (off < VOL_BLOCK)
		return UINT64_MAX; /* the header: one place */
	if (r < 2)
		return g * (1 + VOL_DATA_PER_NODE);
	return g * (1 + VOL_DATA_PER_NODE) + 1 + (r - 2) % VOL_DATA_PER_NODE;
}

static bool same_place(const struct vol_redo *a, const struct vol_redo *b)
{
	return memcmp(a->file_id, b->file_id, VOL_ID_SIZE) == 0 && slot_pair(a->off) == slot_pair(b->off);
}

/* Write m's kept redo blocks (idx[0..n), all m's) where they belong; the file then has its committed size. */
static enum scone_err replay_file(struct scone_volume *v, const struct vol_meta *m, const size_t *idx,
				  size_t n)
{
	struct vol_region *r = vol_region_of(v, m->path);
	uint64_t need = vol_expected_phys(m->size), have;
	struct scone_vio_file *f = NULL;
	uint8_t *cur = malloc(VOL_BLOCK);
	bool changed = false;
	enum scone_err err;
	char *hp;

	if (!cur)
		return SCONE_ERR_NOMEM;
	if (!r || !r->host_abs || r->store != SCONE_STORE_KERNEL || r->kind == SCONE_REGION_NOT_PROTECTED) {
		free(cur);
		return SCONE_ERR_OK;
	}
	hp = vol_host_path(r, m->file_id);
	/*
	 * A file created by those commits may be missing (its name was never
	 * flushed): its header and every block it has are among the blocks.
	 */
	err = hp ? v->host->ops->open(v->host, hp, SCONE_VIO_WRITE | SCONE_VIO_CREATE, &f) : SCONE_ERR_NOMEM;
	for (size_t i = 0; !err && i < n; i++) {
		const struct vol_redo *rd = &v->replay[idx[i]];
		size_t got = 0;
		if (rd->off + VOL_BLOCK > need)
			continue; /* (past the committed file: cut off since) */
		err = v->host->ops->pread(f, cur, VOL_BLOCK, rd->off, &got);
		if (!err && (got != VOL_BLOCK || memcmp(cur, rd->block, VOL_BLOCK) != 0)) {
			err = v->host->ops->pwrite(f, rd->block, VOL_BLOCK, rd->off);
			changed = true;
		}
	}
	/* The committed size exactly: growth a crash kept past it was never part of the state. */
	if (!err && !(err = v->host->ops->size(f, &have)) && have != need) {
		err = v->host->ops->truncate(f, need);
		changed = true;
	}
	if (!err && changed)
		err = v->host->ops->sync(f);
	if (f)
		v->host->ops->close(f);
	if (err)
		err = scone_err_set(err, "%s: cannot write its committed blocks again from the log: %s",
				    m->path, scone_err_detail());
	free(hp);
	free(cur);
	return err;
}

static int cmp_redo_idx(const void *a, const void *b, void *arg)
{
	const struct vol_redo *x = (const struct vol_redo *)arg + *(const size_t *)a;
	const struct vol_redo *y = (const struct vol_redo *)arg + *(const size_t *)b;
	int c = memcmp(x->file_id, y->file_id, VOL_ID_SIZE);

	return c ? c : x->off < y->off ? -1 : x->off > y->off;
}

/*
 * The blocks the log's last commits carried (docs/volume-format.md, "Redo
 * blocks") written where they belong, the last of each pair of slots, in
 * the files the state still has; each such file cut or grown to its
 * committed size and flushed if anything changed. A crash may have lost
 * any of those writes: their commits flushed only the record.
 */
enum scone_err vol_replay(struct scone_volume *v)
{
	struct vol_id_index x;
	size_t *keep, n = 0;
	enum scone_err err = SCONE_ERR_OK;

	if (!v->replay_count)
		return SCONE_ERR_OK;
	keep = malloc(v->replay_count * sizeof(*keep));
	if (!keep)
		return SCONE_ERR_NOMEM;
	for (size_t i = v->replay_count; i-- > 0;) {
		bool later = false;
		for (size_t k = 0; k < n && !later; k++)
			later = same_place(&v->replay[keep[k]], &v->replay[i]);
		if (!later)
			keep[n++] = i;
	}
	qsort_r(keep, n, sizeof(*keep), cmp_redo_idx, v->replay);
	if ((err = vol_id_index_build(&v->st, &x))) {
		free(keep);
		return err;
	}
	for (size_t i = 0, j; !err && i < n; i = j) {
		const struct vol_meta *m = vol_id_index_find(&x, v->replay[keep[i]].file_id);
		for (j = i + 1; j < n && memcmp(v->replay[keep[j]].file_id, v->replay[keep[i]].file_id,
						VOL_ID_SIZE) == 0;
		     j++)
			;
		if (m && m->type == VOL_T_FILE && !m->ephemeral)
			err = replay_file(v, m, keep + i, j - i);
	}
	vol_id_index_free(&x);
	free(keep);
	free(v->replay);
	v->replay = NULL;
	v->replay_count = 0;
	return err;
}
