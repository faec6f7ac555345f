/*
 * internal.h - structures shared by the volume's implementation files
 * (codec.c, tree.c, volume.c). Not part of the volume's interface.
 *
 * Layout of one protected file on the host (all blocks 4096 bytes):
 *   block 0                header (plaintext): identity + growth claim
 *   block 1 + 130*k        group k: node k slot A, node k slot B,
 *                          data chunks 64k..64k+63 slot A, then slot B
 * Node k holds the entries (key generation, nonce counter, tag, slot) of
 * its 64 data chunks and of its 20 child nodes 20k+1..20k+20; the root
 * node's entry lives in the fspf. Writes never touch the slot the last
 * committed state uses, so the committed state stays readable until the
 * next fspf replaces it (see docs/volume-format.md).
 */
#ifndef SCONE_VOLUME_INTERNAL_H
#define SCONE_VOLUME_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/crypto.h"
#include "volume.h"
#include "vio.h"

#define VOL_BLOCK 4096u
#define VOL_DATA_PER_NODE 64u
#define VOL_CHILD_PER_NODE 20u
#define VOL_GROUP_BLOCKS (2u + 2u * VOL_DATA_PER_NODE)
#define VOL_ENTRY_SIZE 48u
#define VOL_NODE_HDR 64u
#define VOL_NODE_ENTRIES (VOL_DATA_PER_NODE + VOL_CHILD_PER_NODE)
#define VOL_ID_SIZE 16u
#define VOL_GEN_SIZE 16u
#define VOL_MAX_PATH 4096u
#define VOL_MAX_FILE_SIZE ((uint64_t)1 << 50) /* 1 PiB of plaintext */
#define VOL_MAX_FSPF ((size_t)256 << 20)
#define VOL_MAX_ENTRIES (1u << 24)
#define VOL_MAX_REGIONS 1024u

#define VOL_ENTRY_PRESENT 0x1
#define VOL_ENTRY_SLOT_B 0x2

/* Where a block's bytes are and how to authenticate them. */
struct vol_entry {
	uint8_t gen[VOL_GEN_SIZE]; /* key generation: block key = HKDF(file key, gen) */
	uint64_t ctr;		   /* nonce under that key, never reused */
	uint8_t tag[SCONE_TAG_SIZE];
	uint8_t flags;
};

struct vol_node_plain {
	uint8_t file_id[VOL_ID_SIZE];
	uint64_t index;
	struct vol_entry e[VOL_NODE_ENTRIES]; /* data entries first, then children */
};

/*
 * A growth claim: "during commit epoch E the host file may be up to size
 * bytes", MAC'ed with the volume's claim key. Bytes past the committed end
 * are accepted only under a valid claim for the current epoch.
 */
struct vol_claim {
	uint64_t epoch;
	uint64_t size;
	uint8_t mac[SCONE_SHA256_SIZE];
};

/* File header (block 0), plaintext: identity and two claim slots. */
struct vol_header {
	uint8_t file_id[VOL_ID_SIZE];
	struct vol_claim claim[2];
};

enum vol_type {
	VOL_T_FILE = 1,
	VOL_T_DIR = 2,
};

/* One namespace entry as stored in the fspf. */
struct vol_meta {
	char *path;
	uint8_t type;
	uint32_t mode;
	int64_t mtime_ns; /* content (file) or entries (directory) changed; 0 = unknown (body version 1) */
	uint8_t file_id[VOL_ID_SIZE];
	uint8_t file_key[SCONE_KEY_SIZE];
	uint64_t size;
	struct vol_entry root;
	bool ephemeral; /* in an ephemeral region: never persisted */
};

/*
 * Attributes of a directory that has no entry of its own: "/", a region
 * root, or an ancestor of one. Such directories cannot be created, removed
 * or renamed, so the path is a stable key. Recorded only once changed.
 */
struct vol_dattr {
	char *path;
	uint32_t mode;
	int64_t mtime_ns;
	bool ephemeral; /* governed by an ephemeral region: never persisted */
};

struct vol_region {
	char *path;
	char *host_dir; /* as written; NULL when ephemeral */
	char *host_abs; /* resolved against the fspf's directory */
	uint8_t kind;
	uint8_t store;
};

/*
 * fspf body layouts: 1 without times, 2 with mtime_ns and directory
 * attributes, 3 a version 2 body followed by redo blocks (a record that
 * carries the blocks its commit wrote; written only then).
 */
#define VOL_BODY_VERSION 2u
#define VOL_BODY_REDO 3u
/*
 * fspf file (envelope) versions: 1 one envelope, 2 a log, 3 a log of version
 * 2 bodies, 4 a log whose records after a full state may be deltas.
 */
#define VOL_ENV_VERSION 4u
/* The first envelope version whose log may hold delta records. */
#define VOL_ENV_DELTAS 4u

/*
 * A block a record carries (docs/volume-format.md, "Redo blocks"): the
 * ciphertext its commit wrote at off in the file's host file, so that the
 * commit needs one flush (the record's) and not one per file too; a
 * writable open writes these blocks again where they belong.
 */
struct vol_redo {
	uint8_t file_id[VOL_ID_SIZE];
	uint64_t off;
	uint8_t block[VOL_BLOCK];
};

/* The most redo bytes one delta carries: a commit that wrote more flushes its files instead. */
#define VOL_REDO_MAX ((size_t)64 << 10)

/* The decoded plaintext of an fspf. */
struct vol_fspf {
	uint32_t version; /* body layout as decoded; 0 = encode the current one (VOL_BODY_VERSION) */
	uint64_t epoch;
	uint8_t prev_tag[SCONE_VOLUME_TAG_SIZE];
	uint8_t claim_key[SCONE_KEY_SIZE];
	uint8_t chunk_aead;
	struct vol_region *regions;
	size_t region_count;
	struct vol_meta **metas; /* sorted by path */
	size_t meta_count;
	size_t meta_cap;
	struct vol_dattr *dattrs; /* implicit directories' attributes (body version 2) */
	size_t dattr_count;
	uint8_t (*garbage)[VOL_ID_SIZE]; /* host files to delete after commit */
	size_t garbage_count;
	uint8_t (*trims)[VOL_ID_SIZE]; /* host files to cut back to size after commit */
	size_t trim_count;
	/* The record's redo blocks (body version 3): set only to encode one, and as decoded. */
	struct vol_redo *redo;
	size_t redo_count;
};

/*
 * A delta record: what a commit that changed only files' contents changes
 * in the state before it (docs/volume-format.md, "Delta records"). Each
 * listed file exists in that state; the lists of deleted and cut-back
 * files replace the state's whole.
 */
struct vol_delta_file {
	uint8_t file_id[VOL_ID_SIZE];
	uint64_t size;
	int64_t mtime_ns;
	struct vol_entry root;
};

struct vol_delta {
	uint64_t epoch;
	uint8_t prev_tag[SCONE_VOLUME_TAG_SIZE];
	struct vol_delta_file *files;
	size_t file_count;
	uint8_t (*garbage)[VOL_ID_SIZE];
	size_t garbage_count;
	uint8_t (*trims)[VOL_ID_SIZE];
	size_t trim_count;
	struct vol_redo *redo; /* a delta with redo blocks (magic SCONEFD2) */
	size_t redo_count;
};

/* codec.c: pure encoders/decoders of untrusted bytes (fuzzed). */
/* Is the body in[0..size) a delta record (by its magic)? */
bool vol_body_is_delta(const uint8_t *in, size_t size);
SCONE_MUST_CHECK enum scone_err vol_delta_encode(const struct vol_delta *d, struct scone_wbuf *out);
SCONE_MUST_CHECK enum scone_err vol_delta_decode(const uint8_t *in, size_t size, struct vol_delta *out);
void vol_delta_free(struct vol_delta *d);
/* f's files sorted by id (the entries stay f's): to find the files a delta, a trim list or FSPF.new name. */
struct vol_id_index {
	struct vol_meta **m;
	size_t n;
};
SCONE_MUST_CHECK enum scone_err vol_id_index_build(const struct vol_fspf *f, struct vol_id_index *x);
struct vol_meta *vol_id_index_find(const struct vol_id_index *x, const uint8_t id[static VOL_ID_SIZE]);
void vol_id_index_free(struct vol_id_index *x);
/*
 * Apply d to f (the state d follows; x: f's id index): epoch, files, lists.
 * MALFORMED, and f unchanged, if d does not fit f.
 */
SCONE_MUST_CHECK enum scone_err vol_fspf_apply_delta(struct vol_fspf *f, const struct vol_id_index *x,
						     const struct vol_delta *d);
SCONE_MUST_CHECK enum scone_err vol_fspf_encode(const struct vol_fspf *f, struct scone_wbuf *out);
SCONE_MUST_CHECK enum scone_err vol_fspf_decode(const uint8_t *in, size_t size, struct vol_fspf *out);
void vol_fspf_free(struct vol_fspf *f);
void vol_meta_free(struct vol_meta *m);
void vol_node_encode(const struct vol_node_plain *n, uint8_t out[static VOL_BLOCK]);
SCONE_MUST_CHECK enum scone_err vol_node_decode(const uint8_t in[static VOL_BLOCK],
						struct vol_node_plain *out);
void vol_header_encode(const struct vol_header *h, uint8_t out[static VOL_BLOCK]);
SCONE_MUST_CHECK enum scone_err vol_header_decode(const uint8_t *in, size_t size, struct vol_header *out);
void vol_entry_encode(const struct vol_entry *e, uint8_t out[static VOL_ENTRY_SIZE]);
void vol_entry_decode(const uint8_t in[static VOL_ENTRY_SIZE], struct vol_entry *out);
/* Envelope of the fspf file: unsealed (plaintext) or sealed (AES-256-GCM). */
SCONE_MUST_CHECK enum scone_err vol_envelope_open(const uint8_t *in, size_t size, const uint8_t *key,
						  struct scone_wbuf *plain, bool *sealed,
						  uint8_t tag[static SCONE_VOLUME_TAG_SIZE]);
/*
 * Size of the envelope (log record) at the start of in, checking only its
 * framing (magic, version, state, length); no cryptography.
 */
SCONE_MUST_CHECK enum scone_err vol_envelope_span(const uint8_t *in, size_t size, size_t *span,
						  uint32_t *version, bool *sealed);
SCONE_MUST_CHECK enum scone_err vol_envelope_seal(const uint8_t *plain, size_t size, const uint8_t *key,
						  struct scone_wbuf *out,
						  uint8_t tag[static SCONE_VOLUME_TAG_SIZE]);
/* The same, writing envelope version (1..VOL_ENV_VERSION): older ones are for compatibility tests. */
SCONE_MUST_CHECK enum scone_err vol_envelope_seal_version(const uint8_t *plain, size_t size,
							  const uint8_t *key, uint32_t version,
							  struct scone_wbuf *out,
							  uint8_t tag[static SCONE_VOLUME_TAG_SIZE]);
/* Path hygiene: absolute, no empty, "." or ".." components, no trailing '/'. */
SCONE_MUST_CHECK enum scone_err vol_path_check(const char *path);

/* ---- runtime state (tree.c, volume.c) ---- */

struct vol_node {
	uint64_t index;
	struct vol_entry cur[VOL_NODE_ENTRIES];
	struct vol_entry *base; /* committed entries while dirty, else NULL */
	uint64_t written_data;	/* data entries written this epoch */
	uint32_t written_child; /* child nodes written this epoch (unused) */
	bool dirty;
	bool referenced;			  /* used since the eviction hand passed */
	struct vol_node *lru_prev, *lru_next;	  /* clean nodes only */
	struct vol_node *dirty_prev, *dirty_next; /* dirty nodes only: the owner's list */
	struct vol_inode *owner;
};

struct vol_gen_key {
	uint8_t gen[VOL_GEN_SIZE];
	struct scone_aead *aead;
	uint64_t last_use;
};

#define VOL_GEN_CACHE 8

/* An open file (shared by all handles on it). */
struct vol_inode {
	struct scone_volume *vol;
	struct vol_meta *meta; /* NULL once unlinked */
	uint32_t mode;	       /* once unlinked (its stat keeps it) */
	struct vol_region *region;
	struct scone_vio_file *host;
	uint8_t file_id[VOL_ID_SIZE];
	uint8_t file_key[SCONE_KEY_SIZE];
	uint64_t size; /* current plaintext size */
	uint64_t committed_size;
	struct vol_entry root;	    /* current root entry */
	struct vol_entry croot;	    /* committed root entry */
	uint64_t trunc_low_nodes;   /* nodes >= this are not the committed ones */
	uint64_t phys_size;	    /* host file size */
	uint64_t claim_size;	    /* growth vouched for in the header */
	struct vol_claim claims[2]; /* the header's claim slots as on disk */
	struct vol_node ***radix;   /* node index -> node, two-level */
	size_t radix_top;
	size_t dirty_count;
	/* Its dirty nodes, oldest first: a commit visits these, not the whole radix. */
	struct vol_node *dirty_first, *dirty_last;
	bool changed; /* needs commit */
	bool is_new;  /* not in the committed fspf yet */
	int refs;
	struct vol_gen_key gens[VOL_GEN_CACHE];
	uint8_t wgen[VOL_GEN_SIZE]; /* generation for new writes */
	uint64_t wctr;
	uint64_t wgen_fork;
	uint64_t journaled_epoch; /* epoch+1 in which the file was noted in FSPF.new */
	int64_t mtime_ns;	  /* last content change; kept here once unlinked (meta NULL) */
	/*
	 * Host blocks written since the last commit (offsets), for a commit
	 * that carries them in its record (redo) instead of flushing the file;
	 * wal_over once more than VOL_REDO_MAX bytes (not listed further).
	 */
	uint64_t *wal_blocks;
	size_t wal_n, wal_cap;
	bool wal_over;
	/* A committed record carries blocks of this file not flushed yet (kept open until a checkpoint). */
	bool wal_pending;
	struct vol_inode *next; /* volume's list of open inodes */
};

struct scone_volume {
	pthread_mutex_t lock;
	char *fspf_path;
	char *fspf_dir;
	bool writable;
	bool sealed;
	uint8_t *key; /* secure memory; NULL while unsealed */
	uint8_t tag[SCONE_VOLUME_TAG_SIZE];
	struct vol_fspf st;
	struct scone_vio *host;
	struct scone_vio *mem; /* ephemeral regions */
	struct vol_inode *inodes;
	struct vol_node lru; /* sentinel */
	size_t clean_nodes;
	size_t max_clean_nodes;
	bool dirty;	 /* namespace changed since last commit */
	bool ns_changed; /* since the last full record, a change a delta record cannot hold */
	uint64_t use_clock;
	uint8_t *scratch;		/* VOL_SCRATCH bytes of ciphertext staging, under lock */
	uint8_t *node_buf;		/* VOL_NODE_BUF bytes for reading one node, under lock */
	struct scone_vio_file *journal; /* FSPF.new: ids of host files created since the commit */
	uint64_t journal_size;
	/* The fspf as a log of sealed records (format version 2 and later): commits append. */
	struct scone_vio_file *log; /* FSPF opened for appending, or NULL */
	uint64_t log_start;	    /* start of the current state's record */
	uint64_t log_end;	    /* end of the current state's record */
	bool log_ok;		    /* FSPF is a v2 log of records under v->key ending at log_end */
	bool log_tail;		    /* non-zero bytes past log_end: the next commit compacts */
	uint64_t log_cap;	    /* FSPF's size: appends up to it overwrite its zero padding */
	size_t log_deltas;	    /* delta records after the last full one, up to log_end */
	/*
	 * A commit failed after its record was written whole: its fdatasync (or
	 * the directory's fsync after the rename) failed, so the disk may hold
	 * that record or not. Its blocks sit in the slots the next writes would
	 * take, so the volume writes nothing more to the host (vol_check_sure);
	 * reopening it reads whichever state the disk holds, both intact.
	 */
	bool unsure;
	char unsure_why[160];
	/* Records with redo blocks were written since the open or are in the log (bigger zero padding). */
	bool wal_used;
	bool log_grow; /* the next record rewrites FSPF whole, padded for redo blocks */
	bool redo;     /* SCONE_VOL_REDO: commits carry the blocks they wrote */
	/* The redo blocks of the log's deltas, in log order, kept from the open until they are replayed. */
	struct vol_redo *replay;
	size_t replay_count;
};

/* A node's ciphertext and plaintext, and its decoded form. */
#define VOL_NODE_BUF (2 * (size_t)VOL_BLOCK + sizeof(struct vol_node_plain))

/* One node's worth of chunks plus one chunk of plaintext staging. */
#define VOL_SCRATCH ((size_t)VOL_DATA_PER_NODE * VOL_BLOCK + VOL_BLOCK)

/* tree.c */
SCONE_MUST_CHECK enum scone_err vol_inode_load(struct scone_volume *v, struct vol_meta *m,
					       struct vol_inode **out);
void vol_inode_put(struct vol_inode *ino);
SCONE_MUST_CHECK enum scone_err vol_inode_read(struct vol_inode *ino, uint8_t *buf, size_t size, uint64_t off,
					       size_t *got);
/* *written (when not NULL): the bytes now part of the file, all of them on success, fewer on an error. */
SCONE_MUST_CHECK enum scone_err vol_inode_write(struct vol_inode *ino, const uint8_t *buf, size_t size,
						uint64_t off, size_t *written);
SCONE_MUST_CHECK enum scone_err vol_inode_truncate(struct vol_inode *ino, uint64_t size);
/* Write dirty nodes and growth claims (phase 1 of a commit). */
SCONE_MUST_CHECK enum scone_err vol_inode_flush(struct vol_inode *ino, uint64_t new_epoch);
/* After the fspf is replaced: the current state became the committed one. */
void vol_inode_committed(struct vol_inode *ino);
/* New empty host file for meta (creates the host file with its header). */
SCONE_MUST_CHECK enum scone_err vol_inode_create_host(struct scone_volume *v, struct vol_meta *m,
						      struct vol_region *r);
/* Host path of a file id in region r (caller frees). */
char *vol_host_path(const struct vol_region *r, const uint8_t id[static VOL_ID_SIZE]);
struct scone_vio *vol_region_io(struct scone_volume *v, const struct vol_region *r);
/* volume_meta.c: the region governing path (longest prefix), or NULL. */
struct vol_region *vol_region_of(const struct scone_volume *v, const char *path);
uint64_t vol_expected_phys(uint64_t size);
uint8_t *vol_scratch(struct scone_volume *v);
/* volume_store.c: SCONE_ERR_IO once a commit's outcome is unknown (unsure above): no more host writes. */
SCONE_MUST_CHECK enum scone_err vol_check_sure(const struct scone_volume *v);

/* volume_check.c: note in FSPF.new that a host file changes size before the next commit. */
SCONE_MUST_CHECK enum scone_err vol_journal_note(struct scone_volume *v,
						 const uint8_t id[static VOL_ID_SIZE]);
/* A claim is valid when made for the volume's committed epoch with its claim key. */
bool vol_claim_valid(const struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE],
		     const struct vol_claim *c);
/* The largest size a valid claim of the two vouches for; 0 if neither is valid. */
uint64_t vol_claimed_size(const struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE],
			  const struct vol_claim claims[static 2]);
SCONE_MUST_CHECK enum scone_err vol_claim_mac(const struct scone_volume *v,
					      const uint8_t id[static VOL_ID_SIZE], uint64_t epoch,
					      uint64_t size, uint8_t out[static SCONE_SHA256_SIZE]);

/* ---- shared by the parts of volume.c (volume_meta.c, volume_store.c, volume_file.c, volume_ns.c,
 * volume_check.c) ---- */

#define DEFAULT_MAX_CLEAN_NODES 8192u /* 32 MiB of cached integrity nodes */
/* The fspf log is rewritten as one record once it would exceed this, or LOG_RECORDS records' worth. */
#define LOG_MAX_BYTES ((uint64_t)256 << 10)
#define LOG_RECORDS 4u
/* At most this many delta records after a full one: the next commit writes a full record. */
#define LOG_MAX_DELTAS 1024u
/*
 * A sealed FSPF is written padded with zero bytes to LOG_MAX_BYTES (when its
 * record is at most half that; a longer record is followed by half that many
 * zeros), so that appends overwrite zeros in place and their fdatasync
 * flushes data only (no size change, no journal commit).
 * LOG_SECTOR is the unit a power loss can leave unwritten (reads as zeros).
 */
#define LOG_SECTOR 512u
/*
 * Host files of deleted files are removed in batches, off most commits: a
 * commit removes them once this many are listed, close always. Until then
 * they stay in the stored garbage list, so a crash never leaks one.
 */
#define GARBAGE_BATCH 16u
/*
 * A sealed FSPF written whole by a volume whose commits carry redo blocks
 * is padded with zeros to this size: room for many such deltas (tens of
 * KiB each) between compactions.
 */
#define LOG_REDO_BYTES ((uint64_t)2 << 20)

/* volume_store.c: note that len bytes at off in ino's host file were written (a commit's redo). */
void vol_wal_note(struct vol_inode *ino, uint64_t off, uint64_t len);
/* Flush every file whose committed blocks are only in the log's redo (before a record without them). */
SCONE_MUST_CHECK enum scone_err vol_checkpoint(struct scone_volume *v);
/* volume.c: offset of the first non-zero byte of p[0..n), n if none. */
size_t vol_first_nonzero(const uint8_t *p, size_t n);
/* Drop the cached inodes nothing holds (flushed, committed). */
void vol_release_idle(struct scone_volume *v);
/* volume_check.c: write the log's redo blocks where they belong (a writable open). */
SCONE_MUST_CHECK enum scone_err vol_replay(struct scone_volume *v);

struct scone_vfile {
	struct scone_volume *vol;
	struct vol_inode *ino;
	unsigned flags;
};

static inline void vol_lock(struct scone_volume *v)
{
	pthread_mutex_lock(&v->lock);
}

static inline void vol_unlock(struct scone_volume *v)
{
	pthread_mutex_unlock(&v->lock);
}

/* volume_meta.c: the namespace index (lock held). */
size_t vol_meta_pos(const struct scone_volume *v, const char *path, bool *found);
struct vol_meta *vol_meta_find(const struct scone_volume *v, const char *path);
SCONE_MUST_CHECK enum scone_err vol_meta_insert(struct scone_volume *v, struct vol_meta *m);
void vol_meta_remove(struct scone_volume *v, struct vol_meta *m);
int vol_cmp_meta(const void *a, const void *b);
bool vol_is_prefix_dir(const char *dir, const char *path);
bool vol_dir_exists(const struct scone_volume *v, const char *path);
/* ENOTDIR/NOT_FOUND unless path's parent is a directory of v. */
SCONE_MUST_CHECK enum scone_err vol_parent_check(const struct scone_volume *v, const char *path);
/*
 * The index of dir's first child: the first entry at or after "dir/". The
 * entries are sorted by strcmp, so a sibling named dir plus a byte below '/'
 * ("d.txt", "d-1") sorts between "d" and "d/x": scanning from dir itself
 * stopped there (an empty listing, an rmdir of a full directory).
 */
size_t vol_children_pos(const struct scone_volume *v, const char *dir);
bool vol_has_children(const struct scone_volume *v, const char *dir);
int64_t vol_now_ns(void);
struct vol_dattr *vol_dattr_find(const struct scone_volume *v, const char *path);
/* A change under path's parent (its mtime), to a file's contents (its mtime). */
void vol_parent_touch(struct scone_volume *v, const char *path);
void vol_file_touch(struct scone_volume *v, struct vol_inode *ino);
SCONE_MUST_CHECK enum scone_err vol_set_attrs_locked(struct scone_volume *v, const char *path,
						     const uint32_t *mode, const int64_t *mtime_ns);
#define IMPLICIT_DIR_MODE 0700u /* "/", region roots and their ancestors until chmod'ed */

/* volume_store.c: the fspf on the host, commits. */
SCONE_MUST_CHECK enum scone_err vol_read_whole(struct scone_vio *io, const char *path,
					       struct scone_wbuf *out);
uint64_t vol_append_bound(uint64_t span, uint64_t log_size);
SCONE_MUST_CHECK enum scone_err vol_store_fspf(struct scone_volume *v);
bool vol_unlink_everywhere(struct scone_volume *v, const uint8_t id[static VOL_ID_SIZE]);
void vol_delete_garbage(struct scone_volume *v);
bool vol_has_id(uint8_t (*ids)[VOL_ID_SIZE], size_t count, const uint8_t id[static VOL_ID_SIZE]);
/* Commit (lock held); before, if given, runs between the files' flush and the record. */
SCONE_MUST_CHECK enum scone_err vol_sync_locked_with(struct scone_volume *v, enum scone_err (*before)(void *),
						     void *arg);
SCONE_MUST_CHECK enum scone_err vol_sync_locked(struct scone_volume *v);

/* volume_file.c: files. */
SCONE_MUST_CHECK enum scone_err vol_protected_region(const struct scone_volume *v, const char *path,
						     struct vol_region **out);
SCONE_MUST_CHECK enum scone_err vol_create_meta(struct scone_volume *v, const char *path, uint8_t type,
						uint32_t mode, struct vol_region *r, struct vol_meta **out);
void vol_fill_stat(const struct vol_meta *m, const struct vol_inode *ino, struct scone_vstat *st);
void vol_implicit_dir_stat(const struct scone_volume *v, const char *path, struct scone_vstat *st);

/* volume_check.c: host files trimmed to their committed size, the journal of files made since the last
 * commit. */
void vol_trim_files(struct scone_volume *v);
void vol_journal_reset(struct scone_volume *v);
void vol_recover_journal(struct scone_volume *v);

/* ---- shared by the parts of tree.c (tree_data.c, tree_file.c): one protected file ---- */

#define RADIX_PAGE 1024u
#define CHILD_BASE VOL_DATA_PER_NODE
#define NODE_PLAIN_BYTES (VOL_NODE_ENTRIES * sizeof(struct vol_entry))

enum block_kind { BLOCK_DATA = 1, BLOCK_NODE = 2 };

unsigned vol_child_slot(uint64_t k);
uint64_t vol_chunks_for(uint64_t size);
uint64_t vol_data_off(uint64_t chunk, int slot);
enum scone_err vol_diagnose_chunk(struct vol_inode *ino, const struct vol_node *n, uint64_t chunk,
				  const uint8_t *ct);
void vol_drop_nodes_from(struct vol_inode *ino, uint64_t from);
enum scone_err vol_ensure_phys(struct vol_inode *ino, uint64_t size);
bool vol_entry_present(const struct vol_entry *e);
int vol_entry_slot(const struct vol_entry *e);
void vol_evict_clean(struct scone_volume *v);
int vol_free_slot(const struct vol_entry *committed);
const char *vol_ino_name(const struct vol_inode *ino);
void vol_lru_push(struct scone_volume *v, struct vol_node *n);
enum scone_err vol_mark_dirty(struct vol_inode *ino, struct vol_node *n);
void vol_node_free(struct vol_inode *ino, struct vol_node *n);
enum scone_err vol_node_get(struct vol_inode *ino, uint64_t k, bool create, struct vol_node **out);
uint64_t vol_node_off(uint64_t k, int slot);
uint64_t vol_nodes_for(uint64_t size);
enum scone_err vol_open_block(struct vol_inode *ino, enum block_kind kind, uint64_t index, const uint8_t *in,
			      uint8_t *out, const struct vol_entry *e);
uint64_t vol_parent_of(uint64_t k);
struct vol_node *vol_radix_get(struct vol_inode *ino, uint64_t k);
enum scone_err vol_read_exact(struct vol_inode *ino, void *buf, size_t size, uint64_t off, uint64_t plain_lo,
			      uint64_t plain_hi);
enum scone_err vol_seal_block(struct vol_inode *ino, enum block_kind kind, uint64_t index,
			      const uint8_t *plain, uint8_t *out, struct vol_entry *e);

#endif
