/*
 * tree.c - one protected file: its integrity tree's layout, block
 * encryption, and the cache of its nodes, with the two-slot update rule
 * that keeps the committed state readable until the next commit. Its data
 * path is in tree_data.c; its host file (header, growth claims, commit,
 * open and create) in tree_file.c.
 *
 * Invariants (docs/volume-format.md has the full argument):
 *  - A block (chunk or node) is only ever written to the slot that the
 *    committed tree does NOT reference. So the committed state survives any
 *    crash before the fspf is replaced.
 *  - Dirty nodes stay in memory until commit; only clean nodes (whose
 *    current entries equal the committed ones) are evicted.
 *  - Nodes with index >= trunc_low_nodes that are not in memory are absent
 *    in the current state (cut by a truncate this epoch); below it, a node
 *    not in memory is clean, so its on-disk committed copy is current.
 *  - Every block is sealed under HKDF(file key, gen) with a nonce counter
 *    that never repeats under that key: gen is fresh random per writer
 *    session and after fork.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t fork_count;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	fork_count++;
}

static void register_fork(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

uint64_t vol_chunks_for(uint64_t size)
{
	return (size + VOL_BLOCK - 1) / VOL_BLOCK;
}

uint64_t vol_nodes_for(uint64_t size)
{
	return (vol_chunks_for(size) + VOL_DATA_PER_NODE - 1) / VOL_DATA_PER_NODE;
}

uint64_t vol_expected_phys(uint64_t size)
{
	return (uint64_t)VOL_BLOCK * (1 + (uint64_t)VOL_GROUP_BLOCKS * vol_nodes_for(size));
}

uint64_t vol_node_off(uint64_t k, int slot)
{
	return (uint64_t)VOL_BLOCK * (1 + VOL_GROUP_BLOCKS * k + (uint64_t)slot);
}

uint64_t vol_data_off(uint64_t chunk, int slot)
{
	uint64_t k = chunk / VOL_DATA_PER_NODE, j = chunk % VOL_DATA_PER_NODE;
	return (uint64_t)VOL_BLOCK * (1 + VOL_GROUP_BLOCKS * k + 2 + (uint64_t)slot * VOL_DATA_PER_NODE + j);
}

uint64_t vol_parent_of(uint64_t k)
{
	return (k - 1) / VOL_CHILD_PER_NODE;
}

unsigned vol_child_slot(uint64_t k)
{
	return CHILD_BASE + (unsigned)((k - 1) % VOL_CHILD_PER_NODE);
}

int vol_entry_slot(const struct vol_entry *e)
{
	return (e->flags & VOL_ENTRY_SLOT_B) ? 1 : 0;
}

bool vol_entry_present(const struct vol_entry *e)
{
	return e->flags & VOL_ENTRY_PRESENT;
}

/* The slot a new write goes to, given the committed entry of the block. */
int vol_free_slot(const struct vol_entry *committed)
{
	return vol_entry_present(committed) ? !vol_entry_slot(committed) : 0;
}

const char *vol_ino_name(const struct vol_inode *ino)
{
	return ino->meta ? ino->meta->path : "(deleted file)";
}

/* ---------------- keys ---------------- */

static enum scone_err gen_aead(struct vol_inode *ino, const uint8_t gen[static VOL_GEN_SIZE],
			       struct scone_aead **out)
{
	struct vol_gen_key *victim = &ino->gens[0];
	uint8_t k[SCONE_KEY_SIZE];
	enum scone_err err;

	for (unsigned i = 0; i < VOL_GEN_CACHE; i++) {
		struct vol_gen_key *g = &ino->gens[i];
		if (g->aead && memcmp(g->gen, gen, VOL_GEN_SIZE) == 0) {
			g->last_use = ++ino->vol->use_clock;
			*out = g->aead;
			return SCONE_ERR_OK;
		}
		if (!g->aead || g->last_use < victim->last_use)
			victim = g;
	}
	err = scone_hkdf_sha256(k, sizeof(k), ino->file_key, SCONE_KEY_SIZE, gen, VOL_GEN_SIZE,
				"scone volume block key v1");
	if (!err) {
		scone_aead_free(victim->aead);
		victim->aead = NULL;
		err = scone_aead_new((enum scone_aead_alg)ino->vol->st.chunk_aead, k, &victim->aead);
	}
	scone_wipe(k, sizeof(k));
	if (err)
		return err;
	memcpy(victim->gen, gen, VOL_GEN_SIZE);
	victim->last_use = ++ino->vol->use_clock;
	*out = victim->aead;
	return SCONE_ERR_OK;
}

static enum scone_err ensure_wgen(struct vol_inode *ino)
{
	pthread_once(&fork_once, register_fork);
	if (ino->wctr != 0 && ino->wgen_fork == fork_count && ino->wctr < UINT64_MAX - 1)
		return SCONE_ERR_OK;
	SCONE_TRY(scone_random(ino->wgen, sizeof(ino->wgen)));
	ino->wctr = 0;
	ino->wgen_fork = fork_count;
	return SCONE_ERR_OK;
}

static void make_aad(const struct vol_inode *ino, enum block_kind kind, uint64_t index,
		     uint8_t aad[static 32])
{
	memcpy(aad, "SCVB", 4);
	aad[4] = (uint8_t)kind;
	aad[5] = ino->region->kind;
	aad[6] = aad[7] = 0;
	memcpy(aad + 8, ino->file_id, VOL_ID_SIZE);
	scone_put_le64(aad + 24, index);
}

static void make_nonce(uint64_t ctr, uint8_t nonce[static SCONE_NONCE_SIZE])
{
	scone_put_le64(nonce, ctr);
	scone_put_le32(nonce + 8, 0);
}

static bool plain_on_disk(const struct vol_inode *ino, enum block_kind kind)
{
	return kind == BLOCK_DATA && ino->region->kind == SCONE_REGION_AUTHENTICATED;
}

/* Seal one block; fills e (flags left to the caller) and out (VOL_BLOCK bytes). */
enum scone_err vol_seal_block(struct vol_inode *ino, enum block_kind kind, uint64_t index,
			      const uint8_t *plain, uint8_t *out, struct vol_entry *e)
{
	uint8_t nonce[SCONE_NONCE_SIZE];
	struct scone_aead *a;

	SCONE_TRY(ensure_wgen(ino));
	SCONE_TRY(gen_aead(ino, ino->wgen, &a));
	memcpy(e->gen, ino->wgen, VOL_GEN_SIZE);
	e->ctr = ++ino->wctr;
	make_nonce(e->ctr, nonce);
	if (plain_on_disk(ino, kind)) {
		uint8_t aad[32 + VOL_BLOCK];
		make_aad(ino, kind, index, aad);
		memcpy(aad + 32, plain, VOL_BLOCK);
		if (out != plain)
			memcpy(out, plain, VOL_BLOCK);
		return scone_aead_seal(a, nonce, aad, sizeof(aad), NULL, 0, NULL, e->tag);
	}
	uint8_t aad[32];
	make_aad(ino, kind, index, aad);
	return scone_aead_seal(a, nonce, aad, sizeof(aad), plain, VOL_BLOCK, out, e->tag);
}

/* Verify and decrypt one block into out; SCONE_ERR_AUTH on mismatch (out wiped). */
enum scone_err vol_open_block(struct vol_inode *ino, enum block_kind kind, uint64_t index, const uint8_t *in,
			      uint8_t *out, const struct vol_entry *e)
{
	uint8_t nonce[SCONE_NONCE_SIZE];
	struct scone_aead *a;

	SCONE_TRY(gen_aead(ino, e->gen, &a));
	make_nonce(e->ctr, nonce);
	if (plain_on_disk(ino, kind)) {
		uint8_t aad[32 + VOL_BLOCK];
		make_aad(ino, kind, index, aad);
		memcpy(aad + 32, in, VOL_BLOCK);
		if (scone_aead_open(a, nonce, aad, sizeof(aad), NULL, 0, NULL, e->tag) != SCONE_ERR_OK)
			return SCONE_ERR_AUTH;
		if (out != in)
			memcpy(out, in, VOL_BLOCK);
		return SCONE_ERR_OK;
	}
	uint8_t aad[32];
	make_aad(ino, kind, index, aad);
	return scone_aead_open(a, nonce, aad, sizeof(aad), in, VOL_BLOCK, out, e->tag);
}

/* ---------------- host I/O with integrity errors ---------------- */

enum scone_err vol_read_exact(struct vol_inode *ino, void *buf, size_t size, uint64_t off, uint64_t plain_lo,
			      uint64_t plain_hi)
{
	size_t got;

	SCONE_TRY(ino->host->io->ops->pread(ino->host, buf, size, off, &got));
	if (got != size)
		return scone_err_set(SCONE_ERR_TRUNCATED,
				     "%s: bytes %llu-%llu are missing on disk (host file truncated at %llu)",
				     vol_ino_name(ino), (unsigned long long)plain_lo,
				     (unsigned long long)plain_hi, (unsigned long long)(off + got));
	return SCONE_ERR_OK;
}

/* After a chunk failed to verify: is it another chunk of the same node (swap/dup)? */
enum scone_err vol_diagnose_chunk(struct vol_inode *ino, const struct vol_node *n, uint64_t chunk,
				  const uint8_t *ct)
{
	uint8_t tmp[VOL_BLOCK];
	uint64_t lo = chunk * VOL_BLOCK, base = n->index * VOL_DATA_PER_NODE;

	for (unsigned j = 0; j < VOL_DATA_PER_NODE; j++) {
		const struct vol_entry *e = &n->cur[j];
		if (base + j == chunk || !vol_entry_present(e))
			continue;
		if (vol_open_block(ino, BLOCK_DATA, base + j, ct, tmp, e) == SCONE_ERR_OK) {
			scone_wipe(tmp, sizeof(tmp));
			return scone_err_set(SCONE_ERR_MISPLACED,
					     "%s: bytes %llu-%llu hold the chunk of bytes %llu-%llu (chunks "
					     "swapped or duplicated)",
					     vol_ino_name(ino), (unsigned long long)lo,
					     (unsigned long long)(lo + VOL_BLOCK - 1),
					     (unsigned long long)((base + j) * VOL_BLOCK),
					     (unsigned long long)((base + j + 1) * VOL_BLOCK - 1));
		}
	}
	return scone_err_set(
	    SCONE_ERR_TAMPERED,
	    "%s: bytes %llu-%llu failed authentication (modified on disk, or copied from another file)",
	    vol_ino_name(ino), (unsigned long long)lo, (unsigned long long)(lo + VOL_BLOCK - 1));
}

/* ---------------- node cache ---------------- */

static struct vol_node **radix_slot(struct vol_inode *ino, uint64_t k, bool alloc)
{
	uint64_t top = k / RADIX_PAGE;

	if (top >= ino->radix_top) {
		size_t nt;
		struct vol_node ***nr;
		if (!alloc)
			return NULL;
		nt = ino->radix_top ? ino->radix_top : 4;
		while (nt <= top)
			nt *= 2;
		nr = realloc(ino->radix, nt * sizeof(*nr));
		if (!nr)
			return NULL;
		memset(nr + ino->radix_top, 0, (nt - ino->radix_top) * sizeof(*nr));
		ino->radix = nr;
		ino->radix_top = nt;
	}
	if (!ino->radix[top]) {
		if (!alloc)
			return NULL;
		ino->radix[top] = calloc(RADIX_PAGE, sizeof(struct vol_node *));
		if (!ino->radix[top])
			return NULL;
	}
	return &ino->radix[top][k % RADIX_PAGE];
}

struct vol_node *vol_radix_get(struct vol_inode *ino, uint64_t k)
{
	struct vol_node **s = radix_slot(ino, k, false);
	return s ? *s : NULL;
}

static void lru_unlink(struct scone_volume *v, struct vol_node *n)
{
	if (!n->lru_next)
		return;
	n->lru_prev->lru_next = n->lru_next;
	n->lru_next->lru_prev = n->lru_prev;
	n->lru_prev = n->lru_next = NULL;
	v->clean_nodes--;
}

void vol_lru_push(struct scone_volume *v, struct vol_node *n)
{
	n->lru_next = v->lru.lru_next;
	n->lru_prev = &v->lru;
	v->lru.lru_next->lru_prev = n;
	v->lru.lru_next = n;
	v->clean_nodes++;
}

/* Append n (just made dirty) to its inode's dirty list. */
static void dirty_link(struct vol_inode *ino, struct vol_node *n)
{
	n->dirty_next = NULL;
	n->dirty_prev = ino->dirty_last;
	if (ino->dirty_last)
		ino->dirty_last->dirty_next = n;
	else
		ino->dirty_first = n;
	ino->dirty_last = n;
	ino->dirty_count++;
}

static void dirty_unlink(struct vol_inode *ino, struct vol_node *n)
{
	if (n->dirty_prev)
		n->dirty_prev->dirty_next = n->dirty_next;
	else
		ino->dirty_first = n->dirty_next;
	if (n->dirty_next)
		n->dirty_next->dirty_prev = n->dirty_prev;
	else
		ino->dirty_last = n->dirty_prev;
	n->dirty_prev = n->dirty_next = NULL;
	ino->dirty_count--;
}

void vol_node_free(struct vol_inode *ino, struct vol_node *n)
{
	struct vol_node **s = radix_slot(ino, n->index, false);

	if (s)
		*s = NULL;
	if (n->dirty)
		dirty_unlink(ino, n);
	lru_unlink(ino->vol, n);
	free(n->base);
	free(n);
}

/*
 * Second-chance eviction: an access only sets a bit (no list surgery on the
 * read path); the tail node is evicted unless it was used since it last
 * came round, in which case it moves to the head.
 */
void vol_evict_clean(struct scone_volume *v)
{
	while (v->clean_nodes > v->max_clean_nodes) {
		struct vol_node *n = v->lru.lru_prev;
		if (n->referenced) {
			n->referenced = false;
			lru_unlink(v, n);
			vol_lru_push(v, n);
			continue;
		}
		vol_node_free(n->owner, n);
	}
}

static void node_touch(struct scone_volume *v, struct vol_node *n)
{
	(void)v;
	n->referenced = true;
}

static enum scone_err node_insert(struct vol_inode *ino, struct vol_node *n)
{
	struct vol_node **s = radix_slot(ino, n->index, true);

	if (!s) {
		free(n->base);
		free(n);
		return SCONE_ERR_NOMEM;
	}
	*s = n;
	n->owner = ino;
	if (n->dirty)
		dirty_link(ino, n);
	else {
		vol_lru_push(ino->vol, n);
		vol_evict_clean(ino->vol);
	}
	return SCONE_ERR_OK;
}

enum scone_err vol_mark_dirty(struct vol_inode *ino, struct vol_node *n)
{
	if (n->dirty)
		return SCONE_ERR_OK;
	n->base = malloc(NODE_PLAIN_BYTES);
	if (!n->base)
		return SCONE_ERR_NOMEM;
	memcpy(n->base, n->cur, NODE_PLAIN_BYTES);
	lru_unlink(ino->vol, n);
	n->dirty = true;
	dirty_link(ino, n);
	ino->changed = true;
	return SCONE_ERR_OK;
}

/* Read and verify node k from disk using entry e; out gets its entries. */
static enum scone_err read_node(struct vol_inode *ino, uint64_t k, const struct vol_entry *e,
				struct vol_entry *out)
{
	struct scone_volume *v = ino->vol;
	uint64_t lo = k * VOL_DATA_PER_NODE * VOL_BLOCK;
	uint8_t *buf;
	struct vol_node_plain *np;
	enum scone_err err;

	/* Never nested: callers resolve the parent before reading the child. */
	if (!v->node_buf && posix_memalign((void **)&v->node_buf, VOL_BLOCK, VOL_NODE_BUF) != 0)
		v->node_buf = NULL;
	if (!v->node_buf)
		return SCONE_ERR_NOMEM;
	buf = v->node_buf;
	np = (struct vol_node_plain *)(v->node_buf + 2 * VOL_BLOCK);
	err = vol_read_exact(ino, buf, VOL_BLOCK, vol_node_off(k, vol_entry_slot(e)), lo,
			     lo + VOL_DATA_PER_NODE * VOL_BLOCK - 1);
	if (!err && vol_open_block(ino, BLOCK_NODE, k, buf, buf + VOL_BLOCK, e) != SCONE_ERR_OK)
		err = scone_err_set(SCONE_ERR_TAMPERED,
				    "%s: integrity node %llu (bytes %llu and beyond) failed authentication",
				    vol_ino_name(ino), (unsigned long long)k, (unsigned long long)lo);
	if (!err && vol_node_decode(buf + VOL_BLOCK, np) != SCONE_ERR_OK)
		err = scone_err_set(SCONE_ERR_TAMPERED, "%s: integrity node %llu is malformed",
				    vol_ino_name(ino), (unsigned long long)k);
	if (!err && (np->index != k || memcmp(np->file_id, ino->file_id, VOL_ID_SIZE) != 0))
		err = scone_err_set(SCONE_ERR_MISPLACED, "%s: integrity node %llu is out of place",
				    vol_ino_name(ino), (unsigned long long)k);
	if (!err)
		memcpy(out, np->e, NODE_PLAIN_BYTES);
	scone_wipe(buf + VOL_BLOCK, VOL_NODE_BUF - VOL_BLOCK); /* node plaintext holds keys' material */
	return err;
}

/* Committed entries of node k (absent when it has none); walks the committed tree. */
static enum scone_err committed_entries(struct vol_inode *ino, uint64_t k, struct vol_entry *out)
{
	struct vol_entry e;

	if (k == 0) {
		e = ino->croot;
	} else {
		uint64_t p = vol_parent_of(k);
		struct vol_node *pn = vol_radix_get(ino, p);
		if (pn) {
			e = (pn->base ? pn->base : pn->cur)[vol_child_slot(k)];
		} else {
			struct vol_entry *tmp = malloc(NODE_PLAIN_BYTES);
			enum scone_err err;
			if (!tmp)
				return SCONE_ERR_NOMEM;
			err = committed_entries(ino, p, tmp);
			e = tmp[vol_child_slot(k)];
			free(tmp);
			if (err)
				return err;
		}
	}
	if (!vol_entry_present(&e)) {
		memset(out, 0, NODE_PLAIN_BYTES);
		return SCONE_ERR_OK;
	}
	return read_node(ino, k, &e, out);
}

static enum scone_err node_new(struct vol_inode *ino, uint64_t k, struct vol_node **out)
{
	struct vol_node *n = calloc(1, sizeof(*n));
	enum scone_err err;

	if (!n)
		return SCONE_ERR_NOMEM;
	n->index = k;
	n->base = malloc(NODE_PLAIN_BYTES);
	if (!n->base) {
		free(n);
		return SCONE_ERR_NOMEM;
	}
	err = committed_entries(ino, k, n->base);
	if (err) {
		free(n->base);
		free(n);
		return err;
	}
	n->dirty = true;
	ino->changed = true;
	SCONE_TRY(node_insert(ino, n));
	*out = n;
	return SCONE_ERR_OK;
}

/*
 * Node k of the current state. With create, a missing node is made (dirty,
 * empty); without, *out is NULL when node k is absent.
 */
enum scone_err vol_node_get(struct vol_inode *ino, uint64_t k, bool create, struct vol_node **out)
{
	struct vol_node *n = vol_radix_get(ino, k);
	struct vol_entry e;

	*out = NULL;
	if (n) {
		node_touch(ino->vol, n);
		*out = n;
		return SCONE_ERR_OK;
	}
	memset(&e, 0, sizeof(e));
	if (k < ino->trunc_low_nodes) {
		if (k == 0) {
			e = ino->root;
		} else {
			struct vol_node *p;
			SCONE_TRY(vol_node_get(ino, vol_parent_of(k), false, &p));
			if (p)
				e = p->cur[vol_child_slot(k)];
		}
	}
	if (!vol_entry_present(&e))
		return create ? node_new(ino, k, out) : SCONE_ERR_OK;
	n = calloc(1, sizeof(*n));
	if (!n)
		return SCONE_ERR_NOMEM;
	n->index = k;
	enum scone_err err = read_node(ino, k, &e, n->cur);
	if (err) {
		free(n);
		return err;
	}
	SCONE_TRY(node_insert(ino, n));
	*out = n;
	return SCONE_ERR_OK;
}
