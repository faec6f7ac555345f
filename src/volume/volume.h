/*
 * volume.h - protected volumes: the file system shield's on-disk format.
 *
 * A volume is a set of regions (protected path prefixes, each encrypted,
 * authenticated or not protected, stored under a host directory or in
 * memory) described by a protection file (fspf). Files in protected regions
 * are stored as chunked AEAD data under an integrity tree; the fspf's tag
 * commits to the state of every file, so an older copy is refused.
 * docs/volume-format.md describes the format and its invariants.
 *
 * This is a pure library: no interposition and no policy. All entry points
 * are thread-safe (one lock per volume). Paths are protected paths:
 * absolute, '/'-separated. Errors come with scone_err_detail() naming the
 * file and byte range.
 */
#ifndef SCONE_VOLUME_H
#define SCONE_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/crypto.h"
#include "lib/err.h"

#define SCONE_VOLUME_KEY_SIZE 32
#define SCONE_VOLUME_TAG_SIZE 16

enum scone_region_kind {
	SCONE_REGION_NOT_PROTECTED = 0,
	SCONE_REGION_AUTHENTICATED = 1,
	SCONE_REGION_ENCRYPTED = 2,
};

enum scone_region_store {
	SCONE_STORE_KERNEL = 0,	   /* files persisted under a host directory */
	SCONE_STORE_EPHEMERAL = 1, /* files kept in memory, empty at start */
};

struct scone_volume;
struct scone_vfile;

/* Open flags for scone_volume_open. */
#define SCONE_VOL_RDONLY 0x0
#define SCONE_VOL_RDWR 0x1
#define SCONE_VOL_ALLOW_UNSEALED 0x2 /* building a volume: fspf not yet encrypted */
/*
 * Commits carry the blocks they wrote in their records (redo blocks,
 * docs/volume-format.md): one flush a commit instead of one per file and
 * the record's, for larger records. Off by default: see docs/databases.md.
 */
#define SCONE_VOL_REDO 0x4

/*
 * Create a new, empty, unsealed fspf at fspf_path (fails if it exists).
 * An unsealed fspf holds file keys in plaintext: seal it with
 * scone_volume_seal before the volume leaves the trusted machine.
 */
SCONE_MUST_CHECK enum scone_err scone_volume_create(const char *fspf_path);

/*
 * Open the volume described by fspf_path. key and tag are those printed by
 * `scone fspf encrypt` (tag may be NULL to accept any sealed state, which
 * gives up freshness; unsealed volumes take key = tag = NULL). A tag that
 * does not match the on-disk state fails with SCONE_ERR_ROLLBACK, unless
 * the disk is exactly one sync ahead of tag (a writer that stopped before it
 * could report its new tag), which is accepted: query the current tag.
 * The caller owns *out and releases it with scone_volume_close.
 */
SCONE_MUST_CHECK enum scone_err scone_volume_open(const char *fspf_path, const uint8_t *key,
						  const uint8_t *tag, unsigned flags,
						  struct scone_volume **out);

/*
 * Commit every change: write all dirty files durably, then replace the fspf
 * atomically. Afterwards the volume's state is identified by the new tag.
 */
SCONE_MUST_CHECK enum scone_err scone_volume_sync(struct scone_volume *v);
/*
 * The same, calling before(arg) once the changed files' data is durable and
 * before the new state is recorded (the runtime waits there for CAS to
 * confirm the previous tag, overlapping that wait with the data's flush).
 * An error from before stops the commit with the data written but not
 * recorded, as a crash at that point would; the next sync records it.
 */
SCONE_MUST_CHECK enum scone_err scone_volume_sync_with(struct scone_volume *v,
						       enum scone_err (*before)(void *), void *arg);

/*
 * The tags of the sealed records of the fspf log at fspf_path, oldest first
 * (at most max; the last is the volume's state unless a crash tore it),
 * read without the key: a record's tag is its GCM tag, stored in clear.
 * For an owner comparing the disk with the tag CAS knows (scone volume).
 */
SCONE_MUST_CHECK enum scone_err scone_volume_log_tags(const char *fspf_path,
						      uint8_t (*tags)[SCONE_VOLUME_TAG_SIZE], size_t max,
						      size_t *count);

/* Current tag (of the last committed state). */
void scone_volume_tag(const struct scone_volume *v, uint8_t tag[static SCONE_VOLUME_TAG_SIZE]);

/*
 * Encrypt the fspf with key (random when key is NULL; the key used is
 * returned in key_out) and commit. Returns the new tag in tag_out.
 */
SCONE_MUST_CHECK enum scone_err scone_volume_seal(struct scone_volume *v, const uint8_t *key,
						  uint8_t key_out[static SCONE_VOLUME_KEY_SIZE],
						  uint8_t tag_out[static SCONE_VOLUME_TAG_SIZE]);

bool scone_volume_is_sealed(const struct scone_volume *v);

/*
 * The same as scone_volume_create / scone_volume_open with the fspf and
 * the kernel regions' files read and written through io (see vio.h), e.g.
 * the memory backend for tests, fuzzing and crash simulation. io must
 * outlive the volume.
 */
struct scone_vio;
SCONE_MUST_CHECK enum scone_err scone_volume_create_at(struct scone_vio *io, const char *fspf_path);
SCONE_MUST_CHECK enum scone_err scone_volume_open_at(struct scone_vio *io, const char *fspf_path,
						     const uint8_t *key, const uint8_t *tag, unsigned flags,
						     struct scone_volume **out);

/*
 * Sync (if opened read-write), release everything, wipe keys. tag_out (may
 * be NULL) receives the final tag. v is freed even on error. Open file
 * handles must be closed first.
 */
SCONE_MUST_CHECK enum scone_err scone_volume_close(struct scone_volume *v, uint8_t *tag_out);

/*
 * Release v without writing anything (uncommitted changes are dropped,
 * keys wiped): a forked child whose volume another process now holds.
 */
void scone_volume_abandon(struct scone_volume *v);

/* Regions. host_dir is NULL for ephemeral regions. */
SCONE_MUST_CHECK enum scone_err scone_volume_add_region(struct scone_volume *v, const char *path,
							enum scone_region_kind kind,
							enum scone_region_store store, const char *host_dir);

struct scone_region_info {
	const char *path;     /* protected prefix */
	const char *host_dir; /* as written in the fspf; NULL when ephemeral */
	enum scone_region_kind kind;
	enum scone_region_store store;
};

/* Region count and the i-th region (borrowed; valid until close). */
size_t scone_volume_region_count(const struct scone_volume *v);
void scone_volume_region(const struct scone_volume *v, size_t i, struct scone_region_info *out);

/*
 * For this session only, store the files of the region governing path
 * under host_dir instead of its own directory (building a volume in one
 * place that is later mounted at the region's directory). No file may be
 * open.
 */
SCONE_MUST_CHECK enum scone_err scone_volume_redirect(struct scone_volume *v, const char *path,
						      const char *host_dir);

/* Region governing path (longest prefix); false if none. */
bool scone_volume_region_of(const struct scone_volume *v, const char *path, struct scone_region_info *out);

/* Files. */
#define SCONE_VF_RDONLY 0x0
#define SCONE_VF_WRONLY 0x1
#define SCONE_VF_RDWR 0x2
#define SCONE_VF_CREAT 0x4
#define SCONE_VF_EXCL 0x8
#define SCONE_VF_TRUNC 0x10
#define SCONE_VF_APPEND 0x20

struct scone_vstat {
	bool is_dir;
	uint64_t size; /* plaintext bytes */
	uint32_t mode;
	uint8_t file_id[16];
	int64_t mtime_ns; /* last change of a file's content or a directory's entries, ns since the epoch */
};

SCONE_MUST_CHECK enum scone_err scone_vfile_open(struct scone_volume *v, const char *path, unsigned flags,
						 uint32_t mode, struct scone_vfile **out);
/*
 * Open for reading the file whose id is file_id, wherever the namespace has
 * it now (a description of a file renamed away reads on, as the kernel's),
 * or, removed from it, while another handle still has it open.
 */
SCONE_MUST_CHECK enum scone_err scone_vfile_open_id(struct scone_volume *v, const uint8_t file_id[16],
						    struct scone_vfile **out);
/*
 * As scone_vfile_open_id, with access's mode (SCONE_VF_RDONLY, _WRONLY or
 * _RDWR), and the file's path into path (path_size bytes; "" for a file
 * removed from the namespace); path may be NULL.
 */
SCONE_MUST_CHECK enum scone_err scone_vfile_open_id_as(struct scone_volume *v, const uint8_t file_id[16],
						       unsigned access, char *path, size_t path_size,
						       struct scone_vfile **out);
/* Another handle on f's file, for reading: it keeps the file as f does (also once unlinked). */
SCONE_MUST_CHECK enum scone_err scone_vfile_dup(struct scone_vfile *f, struct scone_vfile **out);
/* As scone_vfile_dup, for reading and writing as f is (not appending). */
SCONE_MUST_CHECK enum scone_err scone_vfile_dup_access(struct scone_vfile *f, struct scone_vfile **out);
SCONE_MUST_CHECK enum scone_err scone_vfile_pread(struct scone_vfile *f, void *buf, size_t size, uint64_t off,
						  size_t *got);
SCONE_MUST_CHECK enum scone_err scone_vfile_pwrite(struct scone_vfile *f, const void *buf, size_t size,
						   uint64_t off);
/* Append at the current end (atomic under the volume lock); *off_out gets the offset written. */
SCONE_MUST_CHECK enum scone_err scone_vfile_append(struct scone_vfile *f, const void *buf, size_t size,
						   uint64_t *off_out);
/*
 * As scone_vfile_pwrite and scone_vfile_append, and *written says how much of
 * buf is now part of the file: all of it on success; on an error the first
 * *written bytes (possibly 0) are, as after a short write, and the rest is not.
 */
SCONE_MUST_CHECK enum scone_err scone_vfile_pwrite_some(struct scone_vfile *f, const void *buf, size_t size,
							uint64_t off, size_t *written);
SCONE_MUST_CHECK enum scone_err scone_vfile_append_some(struct scone_vfile *f, const void *buf, size_t size,
							uint64_t *off_out, size_t *written);
SCONE_MUST_CHECK enum scone_err scone_vfile_truncate(struct scone_vfile *f, uint64_t size);
SCONE_MUST_CHECK enum scone_err scone_vfile_stat(struct scone_vfile *f, struct scone_vstat *st);
/* Durability point: commits the whole volume (the tag advances). */
SCONE_MUST_CHECK enum scone_err scone_vfile_sync(struct scone_vfile *f);
void scone_vfile_close(struct scone_vfile *f);

/* Namespace. */
SCONE_MUST_CHECK enum scone_err scone_volume_stat(struct scone_volume *v, const char *path,
						  struct scone_vstat *st);
SCONE_MUST_CHECK enum scone_err scone_volume_mkdir(struct scone_volume *v, const char *path, uint32_t mode);
SCONE_MUST_CHECK enum scone_err scone_volume_rmdir(struct scone_volume *v, const char *path);
SCONE_MUST_CHECK enum scone_err scone_volume_unlink(struct scone_volume *v, const char *path);
SCONE_MUST_CHECK enum scone_err scone_volume_rename(struct scone_volume *v, const char *from, const char *to);
SCONE_MUST_CHECK enum scone_err scone_volume_truncate(struct scone_volume *v, const char *path,
						      uint64_t size);

/*
 * Attributes of a file or directory (also "/" and region roots), also when
 * it is open (its handles' stat sees the change). chmod sets the permission
 * bits (mode & 07777); set_mtime the modification time (ns since the
 * epoch; writes, truncations and entry changes set it to the current time).
 * In memory until the next commit. NOT_FOUND if path is absent, READ_ONLY
 * if the volume is.
 */
SCONE_MUST_CHECK enum scone_err scone_volume_chmod(struct scone_volume *v, const char *path, uint32_t mode);
SCONE_MUST_CHECK enum scone_err scone_volume_set_mtime(struct scone_volume *v, const char *path,
						       int64_t mtime_ns);

/*
 * Call fn for each entry directly inside dir (names, not paths), in sorted
 * order. A non-zero return from fn stops the walk.
 */
typedef int (*scone_readdir_fn)(void *arg, const char *name, const struct scone_vstat *st);
SCONE_MUST_CHECK enum scone_err scone_volume_readdir(struct scone_volume *v, const char *dir,
						     scone_readdir_fn fn, void *arg);

/* Every file (recursively), sorted by path. */
typedef int (*scone_walk_fn)(void *arg, const char *path, const struct scone_vstat *st);
void scone_volume_walk(struct scone_volume *v, scone_walk_fn fn, void *arg);

/*
 * Check the host side of every protected region: every file present, of
 * the right identity and size, no unknown files. Reports each problem via
 * fn (message names the file) and returns the first error. Does not read
 * file contents: read each file fully to verify its chunks.
 */
typedef void (*scone_problem_fn)(void *arg, enum scone_err err, const char *message);
SCONE_MUST_CHECK enum scone_err scone_volume_check_host(struct scone_volume *v, scone_problem_fn fn,
							void *arg);

#endif
