/*
 * tree_file.c - a protected file's host file: its header and growth claims
 * (the physical size a crash may leave, vouched for by a MAC), the commit
 * of its dirty nodes to free slots, and opening and creating it.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- physical size and growth claims ---------------- */

enum scone_err vol_claim_mac(const struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE],
			     uint64_t epoch, uint64_t size, uint8_t out[static SCONE_SHA256_SIZE])
{
	uint8_t msg[14 + VOL_ID_SIZE + 16];

	memcpy(msg, "scone-claim-v1", 14);
	memcpy(msg + 14, id, VOL_ID_SIZE);
	scone_put_le64(msg + 14 + VOL_ID_SIZE, epoch);
	scone_put_le64(msg + 22 + VOL_ID_SIZE, size);
	return scone_hmac_sha256(v->st.claim_key, SCONE_KEY_SIZE, msg, sizeof(msg), out);
}

bool vol_claim_valid(const struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE],
		     const struct vol_claim *c)
{
	uint8_t mac[SCONE_SHA256_SIZE];

	return c->epoch == v->st.epoch && vol_claim_mac(v, id, c->epoch, c->size, mac) == SCONE_ERR_OK &&
	       scone_ct_equal(mac, c->mac, sizeof(mac));
}

uint64_t vol_claimed_size(const struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE],
			  const struct vol_claim claims[static 2])
{
	uint64_t best = 0;

	for (unsigned i = 0; i < 2; i++)
		if (vol_claim_valid(v, id, &claims[i]) && claims[i].size > best)
			best = claims[i].size;
	return best;
}

/* Largest size vouched for under the current epoch (0 if none). */
static uint64_t current_claim(const struct vol_inode *ino)
{
	return vol_claimed_size(ino->vol, ino->file_id, ino->claims);
}

/*
 * Record a claim for epoch in the header. It replaces the slot of the same
 * epoch, else the older one, so the claim of the committed epoch survives
 * while a claim for the epoch being committed is written.
 */
static enum scone_err write_header(struct vol_inode *ino, uint64_t epoch, uint64_t size)
{
	struct vol_header h;
	uint8_t block[VOL_BLOCK];
	unsigned slot = ino->claims[0].epoch <= ino->claims[1].epoch ? 0 : 1;

	for (unsigned i = 0; i < 2; i++)
		if (ino->claims[i].epoch == epoch)
			slot = i;
	memcpy(h.file_id, ino->file_id, VOL_ID_SIZE);
	h.claim[0] = ino->claims[0];
	h.claim[1] = ino->claims[1];
	h.claim[slot].epoch = epoch;
	h.claim[slot].size = size;
	SCONE_TRY(vol_claim_mac(ino->vol, ino->file_id, epoch, size, h.claim[slot].mac));
	vol_header_encode(&h, block);
	SCONE_TRY(ino->host->io->ops->pwrite(ino->host, block, VOL_BLOCK, 0));
	vol_wal_note(ino, 0, VOL_BLOCK);
	ino->claims[slot] = h.claim[slot];
	return SCONE_ERR_OK;
}

/* Make the host file at least as large as size needs, vouching for the growth first. */
enum scone_err vol_ensure_phys(struct vol_inode *ino, uint64_t size)
{
	uint64_t need = vol_expected_phys(size);

	if (need <= ino->phys_size)
		return SCONE_ERR_OK;
	if (need > ino->claim_size) {
		/* The next writer trims what this growth leaves if no commit follows. */
		if (ino->region->store == SCONE_STORE_KERNEL &&
		    ino->journaled_epoch != ino->vol->st.epoch + 1) {
			SCONE_TRY(vol_journal_note(ino->vol, ino->file_id));
			ino->journaled_epoch = ino->vol->st.epoch + 1;
		}
		/* Claim ahead (1/4 more, at least 64 groups) so growth costs one header write in many. */
		uint64_t ahead = need / 4 > 64ull * VOL_GROUP_BLOCKS * VOL_BLOCK
				     ? need / 4
				     : 64ull * VOL_GROUP_BLOCKS * VOL_BLOCK;
		SCONE_TRY(write_header(ino, ino->vol->st.epoch, need + ahead));
		ino->claim_size = need + ahead;
	}
	SCONE_TRY(ino->host->io->ops->truncate(ino->host, need));
	ino->phys_size = need;
	return SCONE_ERR_OK;
}

/* ---------------- commit ---------------- */

static int cmp_node_desc(const void *a, const void *b)
{
	uint64_t x = (*(struct vol_node *const *)a)->index, y = (*(struct vol_node *const *)b)->index;
	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * Every ancestor of a dirty node must be rewritten: load and dirty them. A
 * parent made dirty here joins the end of the list, so the walk reaches it
 * and its own parent in turn.
 */
static enum scone_err dirty_ancestors(struct vol_inode *ino)
{
	uint64_t nodes = vol_nodes_for(ino->size);

	for (struct vol_node *n = ino->dirty_first, *p; n; n = n->dirty_next) {
		if (n->index == 0 || n->index >= nodes)
			continue;
		SCONE_TRY(vol_node_get(ino, vol_parent_of(n->index), true, &p));
		SCONE_TRY(vol_mark_dirty(ino, p));
	}
	return SCONE_ERR_OK;
}

static enum scone_err collect_dirty(struct vol_inode *ino, struct vol_node ***out, size_t *count)
{
	struct vol_node **list = malloc((ino->dirty_count ? ino->dirty_count : 1) * sizeof(*list));
	size_t c = 0;

	if (!list)
		return SCONE_ERR_NOMEM;
	for (struct vol_node *n = ino->dirty_first; n && c < ino->dirty_count; n = n->dirty_next)
		list[c++] = n;
	qsort(list, c, sizeof(*list), cmp_node_desc);
	*out = list;
	*count = c;
	return SCONE_ERR_OK;
}

static enum scone_err write_node(struct vol_inode *ino, struct vol_node *n, uint64_t nodes,
				 struct vol_node_plain *np, uint8_t *buf)
{
	struct vol_entry e, committed;
	uint64_t k = n->index;
	struct vol_node *p = NULL;
	int slot;

	for (unsigned i = 0; i < VOL_CHILD_PER_NODE; i++)
		if (k * VOL_CHILD_PER_NODE + 1 + i >= nodes)
			n->cur[CHILD_BASE + i].flags = 0;
	memcpy(np->file_id, ino->file_id, VOL_ID_SIZE);
	np->index = k;
	memcpy(np->e, n->cur, NODE_PLAIN_BYTES);
	vol_node_encode(np, buf);
	if (k == 0) {
		committed = ino->croot;
	} else {
		p = vol_radix_get(ino, vol_parent_of(k)); /* dirty_ancestors made it dirty */
		committed = p->base[vol_child_slot(k)];
	}
	slot = vol_free_slot(&committed);
	SCONE_TRY(vol_seal_block(ino, BLOCK_NODE, k, buf, buf + VOL_BLOCK, &e));
	e.flags = (uint8_t)(VOL_ENTRY_PRESENT | (slot ? VOL_ENTRY_SLOT_B : 0));
	SCONE_TRY(ino->host->io->ops->pwrite(ino->host, buf + VOL_BLOCK, VOL_BLOCK, vol_node_off(k, slot)));
	vol_wal_note(ino, vol_node_off(k, slot), VOL_BLOCK);
	if (p)
		p->cur[vol_child_slot(k)] = e;
	else
		ino->root = e;
	return SCONE_ERR_OK;
}

enum scone_err vol_inode_flush(struct vol_inode *ino, uint64_t new_epoch)
{
	struct vol_node **list = NULL;
	struct vol_node_plain *np = NULL;
	uint8_t *buf = NULL;
	size_t count = 0;
	uint64_t nodes = vol_nodes_for(ino->size);
	enum scone_err err;

	if (!ino->changed)
		return SCONE_ERR_OK;
	if ((err = vol_ensure_phys(ino, ino->size)) || (err = dirty_ancestors(ino)) ||
	    (err = collect_dirty(ino, &list, &count)))
		goto out;
	np = malloc(sizeof(*np));
	buf = malloc(2 * VOL_BLOCK);
	if (!np || !buf) {
		err = SCONE_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < count && !err; i++)
		if (list[i]->index < nodes)
			err = write_node(ino, list[i], nodes, np, buf);
	if (err)
		goto out;
	if (nodes == 0)
		memset(&ino->root, 0, sizeof(ino->root));
	/* Bytes past the new end stay until after the commit: vouch for them under the new epoch. */
	if (ino->phys_size > vol_expected_phys(ino->size) &&
	    (err = write_header(ino, new_epoch, ino->phys_size)))
		goto out;
	/* (the commit flushes the file, or carries the blocks it wrote in its record) */
	if (ino->meta) {
		ino->meta->size = ino->size;
		ino->meta->root = ino->root;
	}
out:
	if (np)
		scone_wipe(np, sizeof(*np));
	if (buf)
		scone_wipe(buf, 2 * VOL_BLOCK);
	free(np);
	free(buf);
	free(list);
	return err;
}

void vol_inode_committed(struct vol_inode *ino)
{
	uint64_t need = vol_expected_phys(ino->size);

	for (struct vol_node *n = ino->dirty_first, *next; n; n = next) {
		next = n->dirty_next;
		free(n->base);
		n->base = NULL;
		n->dirty = false;
		n->written_data = 0;
		n->dirty_prev = n->dirty_next = NULL;
		vol_lru_push(ino->vol, n);
	}
	ino->dirty_first = ino->dirty_last = NULL;
	ino->dirty_count = 0;
	vol_evict_clean(ino->vol);
	ino->wal_n = 0; /* (a new epoch: what it writes is listed afresh) */
	ino->wal_over = false;
	ino->croot = ino->root;
	ino->committed_size = ino->size;
	ino->trunc_low_nodes = vol_nodes_for(ino->size);
	ino->changed = false;
	ino->is_new = false;
	/*
	 * Cut back, and flushed before the next commit leaves the file off the
	 * list of files to cut back: after a power loss the claim that vouched
	 * for the excess is of an epoch past.
	 */
	if (ino->phys_size > need) {
		if (ino->host->io->ops->truncate(ino->host, need) == SCONE_ERR_OK &&
		    ino->host->io->ops->sync(ino->host) == SCONE_ERR_OK)
			ino->phys_size = need;
		else
			ino->changed = true; /* the next commit vouches for the excess again and retries */
	}
	/* Claims of the previous epoch are void now: growth needs a new one. */
	ino->claim_size = current_claim(ino);
	if (ino->claim_size < ino->phys_size)
		ino->claim_size = ino->phys_size;
}

/* ---------------- open / create ---------------- */

struct scone_vio *vol_region_io(struct scone_volume *v, const struct vol_region *r)
{
	return r->store == SCONE_STORE_EPHEMERAL ? v->mem : v->host;
}

char *vol_host_path(const struct vol_region *r, const uint8_t id[static VOL_ID_SIZE])
{
	const char *dir = r->host_abs ? r->host_abs : "/ephemeral";
	size_t n = strlen(dir) + 2 + 2 * VOL_ID_SIZE + 1;
	char *p = malloc(n);
	static const char hexd[] = "0123456789abcdef";
	size_t o;

	if (!p)
		return NULL;
	o = (size_t)snprintf(p, n, "%s/", dir);
	for (unsigned i = 0; i < VOL_ID_SIZE; i++) {
		p[o++] = hexd[id[i] >> 4];
		p[o++] = hexd[id[i] & 15];
	}
	p[o] = '\0';
	return p;
}

static enum scone_err inode_alloc(struct scone_volume *v, struct vol_meta *m, struct vol_inode **out)
{
	struct vol_inode *ino = calloc(1, sizeof(*ino));

	if (!ino)
		return SCONE_ERR_NOMEM;
	ino->vol = v;
	ino->meta = m;
	ino->region = vol_region_of(v, m->path);
	if (!ino->region || ino->region->kind == SCONE_REGION_NOT_PROTECTED) {
		free(ino);
		return scone_err_set(SCONE_ERR_NO_REGION, "%s: not in a protected region", m->path);
	}
	memcpy(ino->file_id, m->file_id, VOL_ID_SIZE);
	memcpy(ino->file_key, m->file_key, SCONE_KEY_SIZE);
	ino->size = ino->committed_size = m->size;
	ino->root = ino->croot = m->root;
	ino->trunc_low_nodes = vol_nodes_for(m->size);
	ino->refs = 1;
	*out = ino;
	return SCONE_ERR_OK;
}

static void inode_free(struct vol_inode *ino)
{
	vol_drop_nodes_from(ino, 0);
	for (size_t t = 0; t < ino->radix_top; t++)
		free(ino->radix[t]);
	free(ino->radix);
	for (unsigned i = 0; i < VOL_GEN_CACHE; i++)
		scone_aead_free(ino->gens[i].aead);
	free(ino->wal_blocks);
	if (ino->host)
		ino->host->io->ops->close(ino->host);
	scone_wipe(ino, sizeof(*ino));
	free(ino);
}

/* Check the host file against the committed state: identity and size. */
static enum scone_err check_host_file(struct vol_inode *ino)
{
	uint8_t block[128];
	struct vol_header h;
	uint64_t have, need = vol_expected_phys(ino->committed_size);
	size_t got;

	SCONE_TRY(ino->host->io->ops->size(ino->host, &have));
	SCONE_TRY(ino->host->io->ops->pread(ino->host, block, sizeof(block), 0, &got));
	if (vol_header_decode(block, got, &h) != SCONE_ERR_OK)
		return scone_err_set(SCONE_ERR_TAMPERED, "%s: the host file's header is damaged",
				     vol_ino_name(ino));
	if (memcmp(h.file_id, ino->file_id, VOL_ID_SIZE) != 0)
		return scone_err_set(
		    SCONE_ERR_SWAPPED,
		    "%s: the host file holds another file's data (files swapped or replaced)",
		    vol_ino_name(ino));
	ino->phys_size = have;
	ino->claims[0] = h.claim[0];
	ino->claims[1] = h.claim[1];
	ino->claim_size = current_claim(ino);
	if (ino->claim_size < need)
		ino->claim_size = need;
	if (have < need) {
		uint64_t groups_ok = have > VOL_BLOCK ? (have / VOL_BLOCK - 1) / VOL_GROUP_BLOCKS : 0;
		return scone_err_set(
		    SCONE_ERR_TRUNCATED,
		    "%s: bytes %llu-%llu are missing on disk (host file truncated to %llu of %llu bytes)",
		    vol_ino_name(ino),
		    (unsigned long long)(groups_ok * VOL_DATA_PER_NODE * VOL_BLOCK < ino->committed_size
					     ? groups_ok * VOL_DATA_PER_NODE * VOL_BLOCK
					     : 0),
		    (unsigned long long)(ino->committed_size - 1), (unsigned long long)have,
		    (unsigned long long)need);
	}
	/*
	 * Growth a writer vouched for and did not commit (it stopped, and FSPF.new,
	 * which would have had it cut at the open, was lost with the power):
	 * cut now, before the next commit voids the claim and it reads as EXTENDED.
	 */
	if (have > need && have <= ino->claim_size && ino->vol->writable &&
	    ino->host->io->ops->truncate(ino->host, need) == SCONE_ERR_OK)
		ino->phys_size = have = need;
	scone_err_clear();
	if (have > ino->claim_size)
		return scone_err_set(
		    SCONE_ERR_EXTENDED, "%s: %llu unexpected bytes appended to the host file after byte %llu",
		    vol_ino_name(ino), (unsigned long long)(have - need), (unsigned long long)need);
	return SCONE_ERR_OK;
}

enum scone_err vol_inode_load(struct scone_volume *v, struct vol_meta *m, struct vol_inode **out)
{
	struct vol_inode *ino;
	char *hp;
	enum scone_err err;

	for (ino = v->inodes; ino; ino = ino->next) {
		if (ino->meta == m) {
			ino->refs++;
			*out = ino;
			return SCONE_ERR_OK;
		}
	}
	SCONE_TRY(inode_alloc(v, m, &ino));
	hp = vol_host_path(ino->region, m->file_id);
	if (!hp) {
		inode_free(ino);
		return SCONE_ERR_NOMEM;
	}
	err =
	    vol_region_io(v, ino->region)
		->ops->open(vol_region_io(v, ino->region), hp, v->writable ? SCONE_VIO_WRITE : 0, &ino->host);
	if (err == SCONE_ERR_NOT_FOUND)
		err = scone_err_set(SCONE_ERR_MISSING,
				    "%s: missing on disk (deleted or renamed host file %s)", m->path, hp);
	free(hp);
	if (!err)
		err = check_host_file(ino);
	if (err) {
		inode_free(ino);
		return err;
	}
	ino->next = v->inodes;
	v->inodes = ino;
	*out = ino;
	return SCONE_ERR_OK;
}

enum scone_err vol_inode_create_host(struct scone_volume *v, struct vol_meta *m, struct vol_region *r)
{
	struct vol_inode *ino;
	struct scone_vio *io = vol_region_io(v, r);
	char *hp;
	enum scone_err err;

	SCONE_TRY(inode_alloc(v, m, &ino));
	hp = vol_host_path(r, m->file_id);
	if (!hp) {
		inode_free(ino);
		return SCONE_ERR_NOMEM;
	}
	/*
	 * The region's directory is made when the volume opens; it is made
	 * again only when it went missing since (a mkdir per path component at
	 * every new file cost more than the open).
	 */
	err = io->ops->open(io, hp, SCONE_VIO_WRITE | SCONE_VIO_CREATE | SCONE_VIO_EXCL, &ino->host);
	if (err == SCONE_ERR_NOT_FOUND && r->host_abs) {
		scone_err_clear();
		err = io->ops->mkdirs(io, r->host_abs);
		if (!err)
			err = io->ops->open(io, hp, SCONE_VIO_WRITE | SCONE_VIO_CREATE | SCONE_VIO_EXCL,
					    &ino->host);
	}
	free(hp);
	if (!err)
		err = write_header(ino, v->st.epoch, VOL_BLOCK);
	if (!err) {
		ino->phys_size = VOL_BLOCK;
		ino->claim_size = VOL_BLOCK;
		ino->is_new = true;
		ino->changed = true;
		ino->next = v->inodes;
		v->inodes = ino;
		ino->refs = 0; /* cached; handles take references */
		return SCONE_ERR_OK;
	}
	inode_free(ino);
	return err;
}

void vol_inode_put(struct vol_inode *ino)
{
	struct scone_volume *v = ino->vol;

	if (ino->refs > 0)
		ino->refs--;
	/*
	 * Changed inodes stay until committed, and until flushed if only the
	 * log holds their last blocks; not once removed: no record after the
	 * removal (a full one) has the file, and until it is committed the
	 * host file stays on disk for the log's blocks to be written again.
	 */
	if (ino->refs > 0 || (ino->meta && (ino->changed || ino->wal_pending)))
		return;
	for (struct vol_inode **pp = &v->inodes; *pp; pp = &(*pp)->next) {
		if (*pp == ino) {
			*pp = ino->next;
			break;
		}
	}
	inode_free(ino);
}
