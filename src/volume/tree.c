/*
 * tree.c - one protected file: its integrity tree, chunk encryption and the
 * two-slot update rule that keeps the committed state readable until the
 * next commit.
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

#define RADIX_PAGE 1024u
#define CHILD_BASE VOL_DATA_PER_NODE
#define NODE_PLAIN_BYTES (VOL_NODE_ENTRIES * sizeof(struct vol_entry))

enum block_kind { BLOCK_DATA = 1, BLOCK_NODE = 2 };

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

static uint64_t chunks_for(uint64_t size)
{
	return (size + VOL_BLOCK - 1) / VOL_BLOCK;
}

static uint64_t nodes_for(uint64_t size)
{
	return (chunks_for(size) + VOL_DATA_PER_NODE - 1) / VOL_DATA_PER_NODE;
}

uint64_t vol_expected_phys(uint64_t size)
{
	return (uint64_t)VOL_BLOCK * (1 + (uint64_t)VOL_GROUP_BLOCKS * nodes_for(size));
}

static uint64_t node_off(uint64_t k, int slot)
{
	return (uint64_t)VOL_BLOCK * (1 + VOL_GROUP_BLOCKS * k + (uint64_t)slot);
}

static uint64_t data_off(uint64_t chunk, int slot)
{
	uint64_t k = chunk / VOL_DATA_PER_NODE, j = chunk % VOL_DATA_PER_NODE;
	return (uint64_t)VOL_BLOCK * (1 + VOL_GROUP_BLOCKS * k + 2 + (uint64_t)slot * VOL_DATA_PER_NODE + j);
}

static uint64_t parent_of(uint64_t k)
{
	return (k - 1) / VOL_CHILD_PER_NODE;
}

static unsigned child_slot(uint64_t k)
{
	return CHILD_BASE + (unsigned)((k - 1) % VOL_CHILD_PER_NODE);
}

static int entry_slot(const struct vol_entry *e)
{
	return (e->flags & VOL_ENTRY_SLOT_B) ? 1 : 0;
}

static bool entry_present(const struct vol_entry *e)
{
	return e->flags & VOL_ENTRY_PRESENT;
}

/* The slot a new write goes to, given the committed entry of the block. */
static int free_slot(const struct vol_entry *committed)
{
	return entry_present(committed) ? !entry_slot(committed) : 0;
}

static const char *ino_name(const struct vol_inode *ino)
{
	return ino->meta ? ino->meta->path : "(deleted file)";
}

/* ---------------- keys ---------------- */

static enum scone_err gen_aead(struct vol_inode *ino, const uint8_t gen[static VOL_GEN_SIZE], struct scone_aead **out)
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

static void make_aad(const struct vol_inode *ino, enum block_kind kind, uint64_t index, uint8_t aad[static 32])
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
static enum scone_err seal_block(struct vol_inode *ino, enum block_kind kind, uint64_t index, const uint8_t *plain,
				 uint8_t *out, struct vol_entry *e)
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
static enum scone_err open_block(struct vol_inode *ino, enum block_kind kind, uint64_t index, const uint8_t *in,
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

static enum scone_err read_exact(struct vol_inode *ino, void *buf, size_t size, uint64_t off, uint64_t plain_lo,
				 uint64_t plain_hi)
{
	size_t got;

	SCONE_TRY(ino->host->io->ops->pread(ino->host, buf, size, off, &got));
	if (got != size)
		return scone_err_set(SCONE_ERR_TRUNCATED,
				     "%s: bytes %llu-%llu are missing on disk (host file truncated at %llu)",
				     ino_name(ino), (unsigned long long)plain_lo, (unsigned long long)plain_hi,
				     (unsigned long long)(off + got));
	return SCONE_ERR_OK;
}

/* After a chunk failed to verify: is it another chunk of the same node (swap/dup)? */
static enum scone_err diagnose_chunk(struct vol_inode *ino, const struct vol_node *n, uint64_t chunk,
				     const uint8_t *ct)
{
	uint8_t tmp[VOL_BLOCK];
	uint64_t lo = chunk * VOL_BLOCK, base = n->index * VOL_DATA_PER_NODE;

	for (unsigned j = 0; j < VOL_DATA_PER_NODE; j++) {
		const struct vol_entry *e = &n->cur[j];
		if (base + j == chunk || !entry_present(e))
			continue;
		if (open_block(ino, BLOCK_DATA, base + j, ct, tmp, e) == SCONE_ERR_OK) {
			scone_wipe(tmp, sizeof(tmp));
			return scone_err_set(SCONE_ERR_MISPLACED,
					     "%s: bytes %llu-%llu hold the chunk of bytes %llu-%llu (chunks swapped or duplicated)",
					     ino_name(ino), (unsigned long long)lo, (unsigned long long)(lo + VOL_BLOCK - 1),
					     (unsigned long long)((base + j) * VOL_BLOCK),
					     (unsigned long long)((base + j + 1) * VOL_BLOCK - 1));
		}
	}
	return scone_err_set(SCONE_ERR_TAMPERED,
			     "%s: bytes %llu-%llu failed authentication (modified on disk, or copied from another file)",
			     ino_name(ino), (unsigned long long)lo, (unsigned long long)(lo + VOL_BLOCK - 1));
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

static struct vol_node *radix_get(struct vol_inode *ino, uint64_t k)
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

static void lru_push(struct scone_volume *v, struct vol_node *n)
{
	n->lru_next = v->lru.lru_next;
	n->lru_prev = &v->lru;
	v->lru.lru_next->lru_prev = n;
	v->lru.lru_next = n;
	v->clean_nodes++;
}

static void node_free(struct vol_inode *ino, struct vol_node *n)
{
	struct vol_node **s = radix_slot(ino, n->index, false);

	if (s)
		*s = NULL;
	if (n->dirty)
		ino->dirty_count--;
	lru_unlink(ino->vol, n);
	free(n->base);
	free(n);
}

/*
 * Second-chance eviction: an access only sets a bit (no list surgery on the
 * read path); the tail node is evicted unless it was used since it last
 * came round, in which case it moves to the head.
 */
static void evict_clean(struct scone_volume *v)
{
	while (v->clean_nodes > v->max_clean_nodes) {
		struct vol_node *n = v->lru.lru_prev;
		if (n->referenced) {
			n->referenced = false;
			lru_unlink(v, n);
			lru_push(v, n);
			continue;
		}
		node_free(n->owner, n);
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
		ino->dirty_count++;
	else {
		lru_push(ino->vol, n);
		evict_clean(ino->vol);
	}
	return SCONE_ERR_OK;
}

static enum scone_err mark_dirty(struct vol_inode *ino, struct vol_node *n)
{
	if (n->dirty)
		return SCONE_ERR_OK;
	n->base = malloc(NODE_PLAIN_BYTES);
	if (!n->base)
		return SCONE_ERR_NOMEM;
	memcpy(n->base, n->cur, NODE_PLAIN_BYTES);
	lru_unlink(ino->vol, n);
	n->dirty = true;
	ino->dirty_count++;
	ino->changed = true;
	return SCONE_ERR_OK;
}

/* Read and verify node k from disk using entry e; out gets its entries. */
static enum scone_err read_node(struct vol_inode *ino, uint64_t k, const struct vol_entry *e, struct vol_entry *out)
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
	err = read_exact(ino, buf, VOL_BLOCK, node_off(k, entry_slot(e)), lo, lo + VOL_DATA_PER_NODE * VOL_BLOCK - 1);
	if (!err && open_block(ino, BLOCK_NODE, k, buf, buf + VOL_BLOCK, e) != SCONE_ERR_OK)
		err = scone_err_set(SCONE_ERR_TAMPERED,
				    "%s: integrity node %llu (bytes %llu and beyond) failed authentication",
				    ino_name(ino), (unsigned long long)k, (unsigned long long)lo);
	if (!err && vol_node_decode(buf + VOL_BLOCK, np) != SCONE_ERR_OK)
		err = scone_err_set(SCONE_ERR_TAMPERED, "%s: integrity node %llu is malformed", ino_name(ino),
				    (unsigned long long)k);
	if (!err && (np->index != k || memcmp(np->file_id, ino->file_id, VOL_ID_SIZE) != 0))
		err = scone_err_set(SCONE_ERR_MISPLACED, "%s: integrity node %llu is out of place", ino_name(ino),
				    (unsigned long long)k);
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
		uint64_t p = parent_of(k);
		struct vol_node *pn = radix_get(ino, p);
		if (pn) {
			e = (pn->base ? pn->base : pn->cur)[child_slot(k)];
		} else {
			struct vol_entry *tmp = malloc(NODE_PLAIN_BYTES);
			enum scone_err err;
			if (!tmp)
				return SCONE_ERR_NOMEM;
			err = committed_entries(ino, p, tmp);
			e = tmp[child_slot(k)];
			free(tmp);
			if (err)
				return err;
		}
	}
	if (!entry_present(&e)) {
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
static enum scone_err node_get(struct vol_inode *ino, uint64_t k, bool create, struct vol_node **out)
{
	struct vol_node *n = radix_get(ino, k);
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
			SCONE_TRY(node_get(ino, parent_of(k), false, &p));
			if (p)
				e = p->cur[child_slot(k)];
		}
	}
	if (!entry_present(&e))
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

/* ---------------- physical size and growth claims ---------------- */

enum scone_err vol_claim_mac(const struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE], uint64_t epoch,
			     uint64_t size, uint8_t out[static SCONE_SHA256_SIZE])
{
	uint8_t msg[14 + VOL_ID_SIZE + 16];

	memcpy(msg, "scone-claim-v1", 14);
	memcpy(msg + 14, id, VOL_ID_SIZE);
	scone_put_le64(msg + 14 + VOL_ID_SIZE, epoch);
	scone_put_le64(msg + 22 + VOL_ID_SIZE, size);
	return scone_hmac_sha256(v->st.claim_key, SCONE_KEY_SIZE, msg, sizeof(msg), out);
}

bool vol_claim_valid(const struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE], const struct vol_claim *c)
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
	ino->claims[slot] = h.claim[slot];
	return SCONE_ERR_OK;
}

/* Make the host file at least as large as size needs, vouching for the growth first. */
static enum scone_err ensure_phys(struct vol_inode *ino, uint64_t size)
{
	uint64_t need = vol_expected_phys(size);

	if (need <= ino->phys_size)
		return SCONE_ERR_OK;
	if (need > ino->claim_size) {
		/* The next writer trims what this growth leaves if no commit follows. */
		if (ino->region->store == SCONE_STORE_KERNEL && ino->journaled_epoch != ino->vol->st.epoch + 1) {
			SCONE_TRY(vol_journal_note(ino->vol, ino->file_id));
			ino->journaled_epoch = ino->vol->st.epoch + 1;
		}
		/* Claim ahead (1/4 more, at least 64 groups) so growth costs one header write in many. */
		uint64_t ahead = need / 4 > 64ull * VOL_GROUP_BLOCKS * VOL_BLOCK ? need / 4
										   : 64ull * VOL_GROUP_BLOCKS * VOL_BLOCK;
		SCONE_TRY(write_header(ino, ino->vol->st.epoch, need + ahead));
		ino->claim_size = need + ahead;
	}
	SCONE_TRY(ino->host->io->ops->truncate(ino->host, need));
	ino->phys_size = need;
	return SCONE_ERR_OK;
}

/* ---------------- data path ---------------- */

/*
 * The volume's staging buffer (ciphertext of up to one node's chunks, then
 * one chunk of plaintext). Used under the volume lock; allocated once.
 */
uint8_t *vol_scratch(struct scone_volume *v)
{
	/* Page-aligned: the kernel copies file pages into it markedly faster. */
	if (!v->scratch && posix_memalign((void **)&v->scratch, VOL_BLOCK, VOL_SCRATCH) != 0)
		v->scratch = NULL;
	return v->scratch;
}

/* Read one chunk's plaintext (zeros for holes) into out. */
static enum scone_err read_chunk(struct vol_inode *ino, uint64_t chunk, uint8_t *out)
{
	struct vol_node *n;
	const struct vol_entry *e;
	uint8_t ct[VOL_BLOCK];
	uint64_t lo = chunk * VOL_BLOCK;

	SCONE_TRY(node_get(ino, chunk / VOL_DATA_PER_NODE, false, &n));
	e = n ? &n->cur[chunk % VOL_DATA_PER_NODE] : NULL;
	if (!e || !entry_present(e)) {
		memset(out, 0, VOL_BLOCK);
		return SCONE_ERR_OK;
	}
	SCONE_TRY(read_exact(ino, ct, VOL_BLOCK, data_off(chunk, entry_slot(e)), lo, lo + VOL_BLOCK - 1));
	if (open_block(ino, BLOCK_DATA, chunk, ct, out, e) != SCONE_ERR_OK)
		return diagnose_chunk(ino, n, chunk, ct);
	return SCONE_ERR_OK;
}

/*
 * Read a run of chunks [c0, c1) of one node that all live in the same slot
 * with one host read, decrypting full chunks straight into dst.
 */
static enum scone_err read_run(struct vol_inode *ino, struct vol_node *n, uint64_t c0, uint64_t c1, uint8_t *dst,
			       uint64_t off, size_t size, uint8_t *scratch)
{
	uint64_t lo = c0 * VOL_BLOCK, nblk = c1 - c0;
	int slot = entry_slot(&n->cur[c0 % VOL_DATA_PER_NODE]);

	if (lo >= off && c1 * VOL_BLOCK <= off + size) {
		/* Whole chunks: read straight into the caller's buffer, verify and decrypt in place. */
		uint8_t *d = dst + (lo - off);
		SCONE_TRY(read_exact(ino, d, nblk * VOL_BLOCK, data_off(c0, slot), lo, c1 * VOL_BLOCK - 1));
		for (uint64_t c = c0; c < c1; c++) {
			uint8_t *p = d + (c - c0) * VOL_BLOCK;
			if (open_block(ino, BLOCK_DATA, c, p, p, &n->cur[c % VOL_DATA_PER_NODE]) == SCONE_ERR_OK)
				continue;
			/* p was wiped: fetch the ciphertext again to say what is wrong. */
			SCONE_TRY(read_exact(ino, scratch, VOL_BLOCK, data_off(c, slot), c * VOL_BLOCK,
					     (c + 1) * VOL_BLOCK - 1));
			return diagnose_chunk(ino, n, c, scratch);
		}
		return SCONE_ERR_OK;
	}
	SCONE_TRY(read_exact(ino, scratch, nblk * VOL_BLOCK, data_off(c0, slot), lo, c1 * VOL_BLOCK - 1));
	for (uint64_t c = c0; c < c1; c++) {
		const struct vol_entry *e = &n->cur[c % VOL_DATA_PER_NODE];
		uint8_t *ct = scratch + (c - c0) * VOL_BLOCK;
		uint64_t cs = c * VOL_BLOCK;
		uint64_t a = cs > off ? cs : off, b = cs + VOL_BLOCK < off + size ? cs + VOL_BLOCK : off + size;
		if (a == cs && b == cs + VOL_BLOCK) {
			if (open_block(ino, BLOCK_DATA, c, ct, dst + (a - off), e) != SCONE_ERR_OK)
				return diagnose_chunk(ino, n, c, ct);
		} else {
			uint8_t pt[VOL_BLOCK];
			if (open_block(ino, BLOCK_DATA, c, ct, pt, e) != SCONE_ERR_OK)
				return diagnose_chunk(ino, n, c, ct);
			memcpy(dst + (a - off), pt + (a - cs), (size_t)(b - a));
			scone_wipe(pt, sizeof(pt));
		}
	}
	return SCONE_ERR_OK;
}

/* Read [off, off+size) of node k's chunks into dst (range lies within node k). */
static enum scone_err read_node_range(struct vol_inode *ino, uint64_t k, uint8_t *dst, uint64_t off, size_t size,
				      uint8_t *scratch)
{
	struct vol_node *n;
	uint64_t c0 = off / VOL_BLOCK, cend = (off + size + VOL_BLOCK - 1) / VOL_BLOCK;

	SCONE_TRY(node_get(ino, k, false, &n));
	while (c0 < cend) {
		const struct vol_entry *e = n ? &n->cur[c0 % VOL_DATA_PER_NODE] : NULL;
		uint64_t c1 = c0 + 1, cs = c0 * VOL_BLOCK;
		if (!e || !entry_present(e)) {
			uint64_t a = cs > off ? cs : off;
			uint64_t b = cs + VOL_BLOCK < off + size ? cs + VOL_BLOCK : off + size;
			memset(dst + (a - off), 0, (size_t)(b - a));
			c0++;
			continue;
		}
		while (c1 < cend && entry_present(&n->cur[c1 % VOL_DATA_PER_NODE]) &&
		       entry_slot(&n->cur[c1 % VOL_DATA_PER_NODE]) == entry_slot(e))
			c1++;
		SCONE_TRY(read_run(ino, n, c0, c1, dst, off, size, scratch));
		c0 = c1;
	}
	return SCONE_ERR_OK;
}

enum scone_err vol_inode_read(struct vol_inode *ino, uint8_t *buf, size_t size, uint64_t off, size_t *got)
{
	uint8_t *scratch;
	size_t done = 0;
	enum scone_err err = SCONE_ERR_OK;
	const uint64_t node_span = (uint64_t)VOL_DATA_PER_NODE * VOL_BLOCK;

	*got = 0;
	if (off >= ino->size || size == 0)
		return SCONE_ERR_OK;
	if (size > ino->size - off)
		size = (size_t)(ino->size - off);
	scratch = vol_scratch(ino->vol);
	if (!scratch)
		return SCONE_ERR_NOMEM;
	while (done < size) {
		uint64_t pos = off + done, k = pos / node_span;
		size_t n = (size_t)((k + 1) * node_span - pos);
		if (n > size - done)
			n = size - done;
		err = read_node_range(ino, k, buf + done, pos, n, scratch);
		if (err)
			break;
		done += n;
	}
	if (err) {
		scone_wipe(buf, size); /* nothing unverified or partial leaves */
		return err;
	}
	*got = size;
	return SCONE_ERR_OK;
}

/* Write chunks [c0, c1) of node n from plaintext src (full chunks), batching per slot. */
static enum scone_err write_full_chunks(struct vol_inode *ino, struct vol_node *n, uint64_t c0, uint64_t c1,
					const uint8_t *src, uint8_t *scratch)
{
	uint64_t c = c0;

	while (c < c1) {
		uint64_t run = c, written = n->written_data;
		struct vol_entry saved[VOL_DATA_PER_NODE];
		enum scone_err err = SCONE_ERR_OK;
		int slot = -1;

		/* Entries change before the blocks are on disk: a failed run puts them back. */
		memcpy(saved, n->cur, sizeof(saved));
		while (run < c1) {
			unsigned j = (unsigned)(run % VOL_DATA_PER_NODE);
			int s = (n->written_data >> j & 1) ? entry_slot(&n->cur[j]) : free_slot(&n->base[j]);
			if (slot >= 0 && s != slot)
				break;
			slot = s;
			struct vol_entry *e = &n->cur[j];
			err = seal_block(ino, BLOCK_DATA, run, src + (run - c0) * VOL_BLOCK, scratch + (run - c) * VOL_BLOCK,
					 e);
			if (err)
				break;
			e->flags = (uint8_t)(VOL_ENTRY_PRESENT | (slot ? VOL_ENTRY_SLOT_B : 0));
			n->written_data |= 1ull << j;
			run++;
		}
		if (!err)
			err = ino->host->io->ops->pwrite(ino->host, scratch, (size_t)(run - c) * VOL_BLOCK,
							 data_off(c, slot));
		if (err) {
			memcpy(n->cur, saved, sizeof(saved));
			n->written_data = written;
			return err;
		}
		c = run;
	}
	return SCONE_ERR_OK;
}

enum scone_err vol_inode_write(struct vol_inode *ino, const uint8_t *buf, size_t size, uint64_t off)
{
	const uint64_t node_span = (uint64_t)VOL_DATA_PER_NODE * VOL_BLOCK;
	uint8_t *scratch, *chunk;
	size_t done = 0;
	enum scone_err err = SCONE_ERR_OK;

	if (size == 0)
		return SCONE_ERR_OK;
	SCONE_TRY(vol_check_sure(ino->vol));
	if (off > VOL_MAX_FILE_SIZE || size > VOL_MAX_FILE_SIZE - off)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "%s: write beyond the maximum file size", ino_name(ino));
	SCONE_TRY(ensure_phys(ino, off + size > ino->size ? off + size : ino->size));
	scratch = vol_scratch(ino->vol);
	if (!scratch)
		return SCONE_ERR_NOMEM;
	chunk = scratch + node_span; /* plaintext: wiped below */
	while (done < size && !err) {
		uint64_t pos = off + done, c = pos / VOL_BLOCK, k = c / VOL_DATA_PER_NODE;
		struct vol_node *n;
		err = node_get(ino, k, true, &n);
		if (!err)
			err = mark_dirty(ino, n);
		if (err)
			break;
		if (pos % VOL_BLOCK || size - done < VOL_BLOCK) {
			/* Partial chunk: read, merge, write back. */
			size_t in = (size_t)(VOL_BLOCK - pos % VOL_BLOCK);
			if (in > size - done)
				in = size - done;
			if (c * VOL_BLOCK < ino->size)
				err = read_chunk(ino, c, chunk);
			else
				memset(chunk, 0, VOL_BLOCK);
			if (!err) {
				memcpy(chunk + pos % VOL_BLOCK, buf + done, in);
				err = write_full_chunks(ino, n, c, c + 1, chunk, scratch);
			}
			if (!err)
				done += in;
		} else {
			uint64_t full = (size - done) / VOL_BLOCK;
			uint64_t lim = (k + 1) * VOL_DATA_PER_NODE - c;
			if (full > lim)
				full = lim;
			err = write_full_chunks(ino, n, c, c + full, buf + done, scratch);
			if (!err)
				done += (size_t)(full * VOL_BLOCK);
		}
	}
	scone_wipe(chunk, VOL_BLOCK);
	if (err) {
		/* Like a short write: what reached the disk past the end now belongs to the file. */
		if (off + done > ino->size) {
			ino->size = off + done;
			ino->changed = true;
		}
		return err;
	}
	if (off + size > ino->size)
		ino->size = off + size;
	ino->changed = true;
	return SCONE_ERR_OK;
}

/* Drop nodes >= from from memory (they are cut off by a truncate). */
static void drop_nodes_from(struct vol_inode *ino, uint64_t from)
{
	for (size_t t = from / RADIX_PAGE; t < ino->radix_top; t++) {
		if (!ino->radix[t])
			continue;
		for (unsigned i = 0; i < RADIX_PAGE; i++) {
			struct vol_node *n = ino->radix[t][i];
			if (n && n->index >= from)
				node_free(ino, n);
		}
	}
}

enum scone_err vol_inode_truncate(struct vol_inode *ino, uint64_t size)
{
	uint64_t old = ino->size, new_chunks, new_nodes, old_nodes;

	SCONE_TRY(vol_check_sure(ino->vol));
	if (size > VOL_MAX_FILE_SIZE)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "%s: size beyond the maximum", ino_name(ino));
	if (size >= old) {
		SCONE_TRY(ensure_phys(ino, size));
		ino->size = size;
		ino->changed = true;
		return SCONE_ERR_OK;
	}
	if (size % VOL_BLOCK) {
		/* Zero the tail of the new last chunk so a later extension reads zeros. */
		uint8_t zeros[VOL_BLOCK] = { 0 };
		uint64_t end = (size / VOL_BLOCK + 1) * VOL_BLOCK;
		SCONE_TRY(vol_inode_write(ino, zeros, (size_t)((end < old ? end : old) - size), size));
	}
	new_chunks = chunks_for(size);
	new_nodes = nodes_for(size);
	old_nodes = nodes_for(old);
	if (new_nodes && new_chunks % VOL_DATA_PER_NODE) {
		struct vol_node *n;
		SCONE_TRY(node_get(ino, new_nodes - 1, true, &n));
		SCONE_TRY(mark_dirty(ino, n));
		for (unsigned j = (unsigned)(new_chunks % VOL_DATA_PER_NODE); j < VOL_DATA_PER_NODE; j++)
			n->cur[j].flags = 0;
		/* Cut chunks are no longer "written this epoch": a rewrite must take the free slot again. */
		n->written_data &= (1ull << (new_chunks % VOL_DATA_PER_NODE)) - 1;
	}
	drop_nodes_from(ino, new_nodes);
	if (new_nodes && old_nodes > new_nodes) {
		uint64_t p_hi = parent_of(old_nodes - 1);
		for (uint64_t p = parent_of(new_nodes > 1 ? new_nodes : 1); p <= p_hi && p < new_nodes; p++) {
			struct vol_node *n;
			SCONE_TRY(node_get(ino, p, true, &n));
			SCONE_TRY(mark_dirty(ino, n));
			for (unsigned i = 0; i < VOL_CHILD_PER_NODE; i++)
				if (p * VOL_CHILD_PER_NODE + 1 + i >= new_nodes)
					n->cur[CHILD_BASE + i].flags = 0;
		}
	}
	if (new_nodes < ino->trunc_low_nodes)
		ino->trunc_low_nodes = new_nodes;
	if (new_nodes == 0)
		memset(&ino->root, 0, sizeof(ino->root));
	ino->size = size;
	ino->changed = true;
	return SCONE_ERR_OK;
}

/* ---------------- commit ---------------- */

static int cmp_node_desc(const void *a, const void *b)
{
	uint64_t x = (*(struct vol_node *const *)a)->index, y = (*(struct vol_node *const *)b)->index;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* Every ancestor of a dirty node must be rewritten: load and dirty them. */
static enum scone_err dirty_ancestors(struct vol_inode *ino)
{
	uint64_t nodes = nodes_for(ino->size);

	for (uint64_t k = nodes; k-- > 1;) {
		struct vol_node *n = radix_get(ino, k), *p;
		if (!n || !n->dirty)
			continue;
		SCONE_TRY(node_get(ino, parent_of(k), true, &p));
		SCONE_TRY(mark_dirty(ino, p));
	}
	return SCONE_ERR_OK;
}

static enum scone_err collect_dirty(struct vol_inode *ino, struct vol_node ***out, size_t *count)
{
	struct vol_node **list = malloc((ino->dirty_count ? ino->dirty_count : 1) * sizeof(*list));
	size_t c = 0;

	if (!list)
		return SCONE_ERR_NOMEM;
	for (size_t t = 0; t < ino->radix_top; t++) {
		if (!ino->radix[t])
			continue;
		for (unsigned i = 0; i < RADIX_PAGE; i++) {
			struct vol_node *n = ino->radix[t][i];
			if (n && n->dirty && c < ino->dirty_count)
				list[c++] = n;
		}
	}
	qsort(list, c, sizeof(*list), cmp_node_desc);
	*out = list;
	*count = c;
	return SCONE_ERR_OK;
}

static enum scone_err write_node(struct vol_inode *ino, struct vol_node *n, uint64_t nodes, struct vol_node_plain *np,
				 uint8_t *buf)
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
		p = radix_get(ino, parent_of(k)); /* dirty_ancestors made it dirty */
		committed = p->base[child_slot(k)];
	}
	slot = free_slot(&committed);
	SCONE_TRY(seal_block(ino, BLOCK_NODE, k, buf, buf + VOL_BLOCK, &e));
	e.flags = (uint8_t)(VOL_ENTRY_PRESENT | (slot ? VOL_ENTRY_SLOT_B : 0));
	SCONE_TRY(ino->host->io->ops->pwrite(ino->host, buf + VOL_BLOCK, VOL_BLOCK, node_off(k, slot)));
	if (p)
		p->cur[child_slot(k)] = e;
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
	uint64_t nodes = nodes_for(ino->size);
	enum scone_err err;

	if (!ino->changed)
		return SCONE_ERR_OK;
	if ((err = ensure_phys(ino, ino->size)) || (err = dirty_ancestors(ino)) ||
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
	err = ino->host->io->ops->sync(ino->host);
	if (!err && ino->meta) {
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

	for (size_t t = 0; t < ino->radix_top; t++) {
		if (!ino->radix[t])
			continue;
		for (unsigned i = 0; i < RADIX_PAGE; i++) {
			struct vol_node *n = ino->radix[t][i];
			if (!n || !n->dirty)
				continue;
			free(n->base);
			n->base = NULL;
			n->dirty = false;
			n->written_data = 0;
			ino->dirty_count--;
			lru_push(ino->vol, n);
		}
	}
	evict_clean(ino->vol);
	ino->croot = ino->root;
	ino->committed_size = ino->size;
	ino->trunc_low_nodes = nodes_for(ino->size);
	ino->changed = false;
	ino->is_new = false;
	if (ino->phys_size > need) {
		if (ino->host->io->ops->truncate(ino->host, need) == SCONE_ERR_OK)
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
	ino->trunc_low_nodes = nodes_for(m->size);
	ino->refs = 1;
	*out = ino;
	return SCONE_ERR_OK;
}

static void inode_free(struct vol_inode *ino)
{
	drop_nodes_from(ino, 0);
	for (size_t t = 0; t < ino->radix_top; t++)
		free(ino->radix[t]);
	free(ino->radix);
	for (unsigned i = 0; i < VOL_GEN_CACHE; i++)
		scone_aead_free(ino->gens[i].aead);
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
		return scone_err_set(SCONE_ERR_TAMPERED, "%s: the host file's header is damaged", ino_name(ino));
	if (memcmp(h.file_id, ino->file_id, VOL_ID_SIZE) != 0)
		return scone_err_set(SCONE_ERR_SWAPPED,
				     "%s: the host file holds another file's data (files swapped or replaced)",
				     ino_name(ino));
	ino->phys_size = have;
	ino->claims[0] = h.claim[0];
	ino->claims[1] = h.claim[1];
	ino->claim_size = current_claim(ino);
	if (ino->claim_size < need)
		ino->claim_size = need;
	if (have < need) {
		uint64_t groups_ok = have > VOL_BLOCK ? (have / VOL_BLOCK - 1) / VOL_GROUP_BLOCKS : 0;
		return scone_err_set(SCONE_ERR_TRUNCATED,
				     "%s: bytes %llu-%llu are missing on disk (host file truncated to %llu of %llu bytes)",
				     ino_name(ino),
				     (unsigned long long)(groups_ok * VOL_DATA_PER_NODE * VOL_BLOCK < ino->committed_size
								  ? groups_ok * VOL_DATA_PER_NODE * VOL_BLOCK
								  : 0),
				     (unsigned long long)(ino->committed_size - 1), (unsigned long long)have,
				     (unsigned long long)need);
	}
	if (have > ino->claim_size)
		return scone_err_set(SCONE_ERR_EXTENDED,
				     "%s: %llu unexpected bytes appended to the host file after byte %llu",
				     ino_name(ino), (unsigned long long)(have - need), (unsigned long long)need);
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
	err = vol_region_io(v, ino->region)->ops->open(vol_region_io(v, ino->region), hp,
						       v->writable ? SCONE_VIO_WRITE : 0, &ino->host);
	if (err == SCONE_ERR_NOT_FOUND)
		err = scone_err_set(SCONE_ERR_MISSING, "%s: missing on disk (deleted or renamed host file %s)",
				    m->path, hp);
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
	err = r->host_abs ? io->ops->mkdirs(io, r->host_abs) : SCONE_ERR_OK;
	if (!err)
		err = io->ops->open(io, hp, SCONE_VIO_WRITE | SCONE_VIO_CREATE | SCONE_VIO_EXCL, &ino->host);
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
	if (ino->refs > 0 || (ino->changed && ino->meta))
		return; /* changed inodes stay until committed */
	for (struct vol_inode **pp = &v->inodes; *pp; pp = &(*pp)->next) {
		if (*pp == ino) {
			*pp = ino->next;
			break;
		}
	}
	inode_free(ino);
}
