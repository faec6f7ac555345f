/*
 * tree_data.c - a protected file's bytes: reading and writing runs of
 * chunks through its integrity tree (tree.c), and truncating it.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

	SCONE_TRY(vol_node_get(ino, chunk / VOL_DATA_PER_NODE, false, &n));
	e = n ? &n->cur[chunk % VOL_DATA_PER_NODE] : NULL;
	if (!e || !vol_entry_present(e)) {
		memset(out, 0, VOL_BLOCK);
		return SCONE_ERR_OK;
	}
	SCONE_TRY(vol_read_exact(ino, ct, VOL_BLOCK, vol_data_off(chunk, vol_entry_slot(e)), lo,
				 lo + VOL_BLOCK - 1));
	if (vol_open_block(ino, BLOCK_DATA, chunk, ct, out, e) != SCONE_ERR_OK)
		return vol_diagnose_chunk(ino, n, chunk, ct);
	return SCONE_ERR_OK;
}

/*
 * Read a run of chunks [c0, c1) of one node that all live in the same slot
 * with one host read, decrypting full chunks straight into dst.
 */
static enum scone_err read_run(struct vol_inode *ino, struct vol_node *n, uint64_t c0, uint64_t c1,
			       uint8_t *dst, uint64_t off, size_t size, uint8_t *scratch)
{
	uint64_t lo = c0 * VOL_BLOCK, nblk = c1 - c0;
	int slot = vol_entry_slot(&n->cur[c0 % VOL_DATA_PER_NODE]);

	if (lo >= off && c1 * VOL_BLOCK <= off + size) {
		/* Whole chunks: read straight into the caller's buffer, verify and decrypt in place. */
		uint8_t *d = dst + (lo - off);
		SCONE_TRY(
		    vol_read_exact(ino, d, nblk * VOL_BLOCK, vol_data_off(c0, slot), lo, c1 * VOL_BLOCK - 1));
		for (uint64_t c = c0; c < c1; c++) {
			uint8_t *p = d + (c - c0) * VOL_BLOCK;
			if (vol_open_block(ino, BLOCK_DATA, c, p, p, &n->cur[c % VOL_DATA_PER_NODE]) ==
			    SCONE_ERR_OK)
				continue;
			/* p was wiped: fetch the ciphertext again to say what is wrong. */
			SCONE_TRY(vol_read_exact(ino, scratch, VOL_BLOCK, vol_data_off(c, slot),
						 c * VOL_BLOCK, (c + 1) * VOL_BLOCK - 1));
			return vol_diagnose_chunk(ino, n, c, scratch);
		}
		return SCONE_ERR_OK;
	}
	SCONE_TRY(
	    vol_read_exact(ino, scratch, nblk * VOL_BLOCK, vol_data_off(c0, slot), lo, c1 * VOL_BLOCK - 1));
	for (uint64_t c = c0; c < c1; c++) {
		const struct vol_entry *e = &n->cur[c % VOL_DATA_PER_NODE];
		uint8_t *ct = scratch + (c - c0) * VOL_BLOCK;
		uint64_t cs = c * VOL_BLOCK;
		uint64_t a = cs > off ? cs : off,
			 b = cs + VOL_BLOCK < off + size ? cs + VOL_BLOCK : off + size;
		if (a == cs && b == cs + VOL_BLOCK) {
			if (vol_open_block(ino, BLOCK_DATA, c, ct, dst + (a - off), e) != SCONE_ERR_OK)
				return vol_diagnose_chunk(ino, n, c, ct);
		} else {
			uint8_t pt[VOL_BLOCK];
			if (vol_open_block(ino, BLOCK_DATA, c, ct, pt, e) != SCONE_ERR_OK)
				return vol_diagnose_chunk(ino, n, c, ct);
			memcpy(dst + (a - off), pt + (a - cs), (size_t)(b - a));
			scone_wipe(pt, sizeof(pt));
		}
	}
	return SCONE_ERR_OK;
}

/* Read [off, off+size) of node k's chunks into dst (range lies within node k). */
static enum scone_err read_node_range(struct vol_inode *ino, uint64_t k, uint8_t *dst, uint64_t off,
				      size_t size, uint8_t *scratch)
{
	struct vol_node *n;
	uint64_t c0 = off / VOL_BLOCK, cend = (off + size + VOL_BLOCK - 1) / VOL_BLOCK;

	SCONE_TRY(vol_node_get(ino, k, false, &n));
	while (c0 < cend) {
		const struct vol_entry *e = n ? &n->cur[c0 % VOL_DATA_PER_NODE] : NULL;
		uint64_t c1 = c0 + 1, cs = c0 * VOL_BLOCK;
		if (!e || !vol_entry_present(e)) {
			uint64_t a = cs > off ? cs : off;
			uint64_t b = cs + VOL_BLOCK < off + size ? cs + VOL_BLOCK : off + size;
			memset(dst + (a - off), 0, (size_t)(b - a));
			c0++;
			continue;
		}
		while (c1 < cend && vol_entry_present(&n->cur[c1 % VOL_DATA_PER_NODE]) &&
		       vol_entry_slot(&n->cur[c1 % VOL_DATA_PER_NODE]) == vol_entry_slot(e))
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
			int s = (n->written_data >> j & 1) ? vol_entry_slot(&n->cur[j])
							   : vol_free_slot(&n->base[j]);
			if (slot >= 0 && s != slot)
				break;
			slot = s;
			struct vol_entry *e = &n->cur[j];
			err = vol_seal_block(ino, BLOCK_DATA, run, src + (run - c0) * VOL_BLOCK,
					     scratch + (run - c) * VOL_BLOCK, e);
			if (err)
				break;
			e->flags = (uint8_t)(VOL_ENTRY_PRESENT | (slot ? VOL_ENTRY_SLOT_B : 0));
			n->written_data |= 1ull << j;
			run++;
		}
		if (!err)
			err = ino->host->io->ops->pwrite(ino->host, scratch, (size_t)(run - c) * VOL_BLOCK,
							 vol_data_off(c, slot));
		if (!err)
			vol_wal_note(ino, vol_data_off(c, slot), (run - c) * VOL_BLOCK);
		if (err) {
			memcpy(n->cur, saved, sizeof(saved));
			n->written_data = written;
			return err;
		}
		c = run;
	}
	return SCONE_ERR_OK;
}

enum scone_err vol_inode_write(struct vol_inode *ino, const uint8_t *buf, size_t size, uint64_t off,
			       size_t *written)
{
	const uint64_t node_span = (uint64_t)VOL_DATA_PER_NODE * VOL_BLOCK;
	uint8_t *scratch, *chunk;
	size_t done = 0;
	enum scone_err err = SCONE_ERR_OK;

	if (written)
		*written = 0;
	if (size == 0)
		return SCONE_ERR_OK;
	SCONE_TRY(vol_check_sure(ino->vol));
	if (off > VOL_MAX_FILE_SIZE || size > VOL_MAX_FILE_SIZE - off)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "%s: write beyond the maximum file size",
				     vol_ino_name(ino));
	SCONE_TRY(vol_ensure_phys(ino, off + size > ino->size ? off + size : ino->size));
	scratch = vol_scratch(ino->vol);
	if (!scratch)
		return SCONE_ERR_NOMEM;
	chunk = scratch + node_span; /* plaintext: wiped below */
	while (done < size && !err) {
		uint64_t pos = off + done, c = pos / VOL_BLOCK, k = c / VOL_DATA_PER_NODE;
		struct vol_node *n;
		err = vol_node_get(ino, k, true, &n);
		if (!err)
			err = vol_mark_dirty(ino, n);
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
		if (written)
			*written = done;
		return err;
	}
	if (off + size > ino->size)
		ino->size = off + size;
	ino->changed = true;
	if (written)
		*written = size;
	return SCONE_ERR_OK;
}

/* Drop nodes >= from from memory (they are cut off by a truncate). */
void vol_drop_nodes_from(struct vol_inode *ino, uint64_t from)
{
	for (size_t t = from / RADIX_PAGE; t < ino->radix_top; t++) {
		if (!ino->radix[t])
			continue;
		for (unsigned i = 0; i < RADIX_PAGE; i++) {
			struct vol_node *n = ino->radix[t][i];
			if (n && n->index >= from)
				vol_node_free(ino, n);
		}
	}
}

enum scone_err vol_inode_truncate(struct vol_inode *ino, uint64_t size)
{
	uint64_t old = ino->size, new_chunks, new_nodes, old_nodes;

	SCONE_TRY(vol_check_sure(ino->vol));
	if (size > VOL_MAX_FILE_SIZE)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "%s: size beyond the maximum", vol_ino_name(ino));
	if (size >= old) {
		SCONE_TRY(vol_ensure_phys(ino, size));
		ino->size = size;
		ino->changed = true;
		return SCONE_ERR_OK;
	}
	if (size % VOL_BLOCK) {
		/* Zero the tail of the new last chunk so a later extension reads zeros. */
		uint8_t zeros[VOL_BLOCK] = {0};
		uint64_t end = (size / VOL_BLOCK + 1) * VOL_BLOCK;
		SCONE_TRY(vol_inode_write(ino, zeros, (size_t)((end < old ? end : old) - size), size, NULL));
	}
	new_chunks = vol_chunks_for(size);
	new_nodes = vol_nodes_for(size);
	old_nodes = vol_nodes_for(old);
	if (new_nodes && new_chunks % VOL_DATA_PER_NODE) {
		struct vol_node *n;
		SCONE_TRY(vol_node_get(ino, new_nodes - 1, true, &n));
		SCONE_TRY(vol_mark_dirty(ino, n));
		for (unsigned j = (unsigned)(new_chunks % VOL_DATA_PER_NODE); j < VOL_DATA_PER_NODE; j++)
			n->cur[j].flags = 0;
		/* Cut chunks are no longer "written this epoch": a rewrite must take the free slot again. */
		n->written_data &= (1ull << (new_chunks % VOL_DATA_PER_NODE)) - 1;
	}
	vol_drop_nodes_from(ino, new_nodes);
	if (new_nodes && old_nodes > new_nodes) {
		uint64_t p_hi = vol_parent_of(old_nodes - 1);
		for (uint64_t p = vol_parent_of(new_nodes > 1 ? new_nodes : 1); p <= p_hi && p < new_nodes;
		     p++) {
			struct vol_node *n;
			SCONE_TRY(vol_node_get(ino, p, true, &n));
			SCONE_TRY(vol_mark_dirty(ino, n));
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
