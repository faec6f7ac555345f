/*
 * volume_file.c - a volume's files: opening (creating, truncating) one,
 * its bytes (pread, pwrite, append, truncate), stat, sync and close.
 */
#include "internal.h"
#include "lib/hex.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum scone_err vol_protected_region(const struct scone_volume *v, const char *path, struct vol_region **out)
{
	struct vol_region *r;

	SCONE_TRY(vol_path_check(path));
	r = vol_region_of(v, path);
	if (!r || r->kind == SCONE_REGION_NOT_PROTECTED)
		return scone_err_set(SCONE_ERR_NO_REGION, "%s is not in a protected region of the volume",
				     path);
	*out = r;
	return SCONE_ERR_OK;
}

enum scone_err vol_create_meta(struct scone_volume *v, const char *path, uint8_t type, uint32_t mode,
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
	m->mtime_ns = vol_now_ns();
	m->ephemeral = r->store == SCONE_STORE_EPHEMERAL;
	err = SCONE_ERR_OK;
	if (type == VOL_T_FILE) {
		err = scone_random(m->file_id, sizeof(m->file_id));
		if (!err)
			err = scone_random(m->file_key, sizeof(m->file_key));
	}
	if (!err)
		err = vol_meta_insert(v, m);
	if (err) {
		vol_meta_free(m);
		return err;
	}
	if (!m->ephemeral)
		v->dirty = v->ns_changed = true;
	*out = m;
	return SCONE_ERR_OK;
}

static enum scone_err vfile_open_locked(struct scone_volume *v, const char *path, unsigned flags,
					uint32_t mode, struct scone_vfile **out)
{
	struct vol_region *r;
	struct vol_meta *m;
	struct scone_vfile *f;
	bool writing =
	    flags & (SCONE_VF_WRONLY | SCONE_VF_RDWR | SCONE_VF_CREAT | SCONE_VF_TRUNC | SCONE_VF_APPEND);
	bool created = false;
	enum scone_err err;

	SCONE_TRY(vol_protected_region(v, path, &r));
	if (writing && !v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "%s: volume opened read-only", path);
	m = vol_meta_find(v, path);
	if (m && m->type == VOL_T_DIR)
		return scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", path);
	if (m && (flags & SCONE_VF_CREAT) && (flags & SCONE_VF_EXCL))
		return scone_err_set(SCONE_ERR_EXISTS, "%s exists", path);
	if (!m && vol_dir_exists(v, path))
		return scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", path);
	if (!m) {
		if (!(flags & SCONE_VF_CREAT))
			return scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such file in the volume", path);
		SCONE_TRY(vol_parent_check(v, path));
		SCONE_TRY(vol_create_meta(v, path, VOL_T_FILE, mode, r, &m));
		err = m->ephemeral ? SCONE_ERR_OK : vol_journal_note(v, m->file_id);
		if (!err)
			err = vol_inode_create_host(v, m, r);
		if (err) {
			vol_meta_remove(v, m);
			vol_meta_free(m);
			return err;
		}
		created = true;
		vol_parent_touch(v, path);
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return SCONE_ERR_NOMEM;
	err = vol_inode_load(v, m, &f->ino);
	if (!err && (flags & SCONE_VF_TRUNC) && !created) {
		if (f->ino->size)
			err = vol_inode_truncate(f->ino, 0);
		if (!err)
			vol_file_touch(v, f->ino); /* O_TRUNC marks the file modified, even when empty */
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

	vol_lock(v);
	err = vfile_open_locked(v, path, flags, mode, out);
	vol_unlock(v);
	return err;
}

enum scone_err scone_vfile_open_id_as(struct scone_volume *v, const uint8_t file_id[16], unsigned access,
				      char *path, size_t path_size, struct scone_vfile **out)
{
	enum scone_err err = SCONE_ERR_NOT_FOUND;
	size_t i;

	access &= SCONE_VF_WRONLY | SCONE_VF_RDWR;
	if (path && path_size)
		path[0] = '\0';
	vol_lock(v);
	for (i = 0; i < v->st.meta_count; i++) {
		const struct vol_meta *m = v->st.metas[i];
		if (m->type == VOL_T_FILE && memcmp(m->file_id, file_id, VOL_ID_SIZE) == 0)
			break;
	}
	if (i < v->st.meta_count) {
		err = vfile_open_locked(v, v->st.metas[i]->path, access, 0, out);
		if (!err && path && path_size)
			snprintf(path, path_size, "%s", v->st.metas[i]->path);
	} else {
		/* Removed from the namespace but still open here: another description of it. */
		struct vol_inode *ino = v->inodes;
		while (ino &&
		       !(ino->refs > 0 && !ino->meta && memcmp(ino->file_id, file_id, VOL_ID_SIZE) == 0))
			ino = ino->next;
		if (ino && (*out = calloc(1, sizeof(**out)))) {
			ino->refs++;
			(*out)->vol = v;
			(*out)->ino = ino;
			(*out)->flags = access;
			err = SCONE_ERR_OK;
		} else {
			err = ino ? SCONE_ERR_NOMEM : err;
			scone_err_set(err, "no file of the volume has that id now");
		}
	}
	vol_unlock(v);
	return err;
}

enum scone_err scone_vfile_open_id(struct scone_volume *v, const uint8_t file_id[16],
				   struct scone_vfile **out)
{
	return scone_vfile_open_id_as(v, file_id, SCONE_VF_RDONLY, NULL, 0, out);
}

enum scone_err scone_vfile_dup(struct scone_vfile *f, struct scone_vfile **out)
{
	struct scone_vfile *d = calloc(1, sizeof(*d));

	if (!d)
		return SCONE_ERR_NOMEM;
	vol_lock(f->vol);
	f->ino->refs++;
	vol_unlock(f->vol);
	d->vol = f->vol;
	d->ino = f->ino;
	d->flags = SCONE_VF_RDONLY;
	*out = d;
	return SCONE_ERR_OK;
}

enum scone_err scone_vfile_dup_access(struct scone_vfile *f, struct scone_vfile **out)
{
	SCONE_TRY(scone_vfile_dup(f, out));
	(*out)->flags = f->flags & (SCONE_VF_WRONLY | SCONE_VF_RDWR);
	return SCONE_ERR_OK;
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
	vol_lock(f->vol);
	err = vol_inode_read(f->ino, buf, size, off, got);
	vol_unlock(f->vol);
	return err;
}

enum scone_err scone_vfile_pwrite_some(struct scone_vfile *f, const void *buf, size_t size, uint64_t off,
				       size_t *written)
{
	enum scone_err err;

	*written = 0;
	if (!can_write(f))
		return scone_err_set(SCONE_ERR_BAD_FD, "file not opened for writing");
	vol_lock(f->vol);
	err = vol_inode_write(f->ino, buf, size, off, written);
	if (*written)
		vol_file_touch(f->vol, f->ino);
	vol_unlock(f->vol);
	return err;
}

enum scone_err scone_vfile_pwrite(struct scone_vfile *f, const void *buf, size_t size, uint64_t off)
{
	size_t written;

	return scone_vfile_pwrite_some(f, buf, size, off, &written);
}

enum scone_err scone_vfile_append_some(struct scone_vfile *f, const void *buf, size_t size, uint64_t *off_out,
				       size_t *written)
{
	enum scone_err err;

	*written = 0;
	if (!can_write(f))
		return scone_err_set(SCONE_ERR_BAD_FD, "file not opened for writing");
	vol_lock(f->vol);
	*off_out = f->ino->size;
	err = vol_inode_write(f->ino, buf, size, f->ino->size, written);
	if (*written)
		vol_file_touch(f->vol, f->ino);
	vol_unlock(f->vol);
	return err;
}

enum scone_err scone_vfile_append(struct scone_vfile *f, const void *buf, size_t size, uint64_t *off_out)
{
	size_t written;

	return scone_vfile_append_some(f, buf, size, off_out, &written);
}

enum scone_err scone_vfile_truncate(struct scone_vfile *f, uint64_t size)
{
	enum scone_err err;

	if (!can_write(f))
		return scone_err_set(SCONE_ERR_BAD_FD, "file not opened for writing");
	vol_lock(f->vol);
	err = vol_inode_truncate(f->ino, size);
	if (!err)
		vol_file_touch(f->vol, f->ino);
	vol_unlock(f->vol);
	return err;
}

void vol_fill_stat(const struct vol_meta *m, const struct vol_inode *ino, struct scone_vstat *st)
{
	memset(st, 0, sizeof(*st));
	st->is_dir = m ? m->type == VOL_T_DIR : false;
	st->mode = m ? m->mode : (ino && ino->mode ? ino->mode : 0600);
	st->size = ino ? ino->size : (m ? m->size : 0);
	st->mtime_ns = m ? m->mtime_ns : (ino ? ino->mtime_ns : 0);
	if (m)
		memcpy(st->file_id, m->file_id, VOL_ID_SIZE);
	else if (ino) /* unlinked, still open: its id stays its key (the read cache's too) */
		memcpy(st->file_id, ino->file_id, VOL_ID_SIZE);
}

/* A directory without an entry of its own ("/", a region root or an ancestor of one). */
void vol_implicit_dir_stat(const struct scone_volume *v, const char *path, struct scone_vstat *st)
{
	const struct vol_dattr *d = vol_dattr_find(v, path);

	vol_fill_stat(NULL, NULL, st);
	st->is_dir = true;
	st->mode = d ? d->mode : IMPLICIT_DIR_MODE;
	st->mtime_ns = d ? d->mtime_ns : 0;
}

enum scone_err scone_vfile_stat(struct scone_vfile *f, struct scone_vstat *st)
{
	vol_lock(f->vol);
	vol_fill_stat(f->ino->meta, f->ino, st);
	vol_unlock(f->vol);
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
	vol_lock(f->vol);
	vol_inode_put(f->ino);
	vol_unlock(f->vol);
	free(f);
}

/* ---------------- namespace operations ---------------- */
