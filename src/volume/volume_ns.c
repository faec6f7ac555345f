/*
 * volume_ns.c - a volume's namespace operations: stat, mkdir, rmdir,
 * unlink, rename (of files and whole directories), chmod, mtime,
 * truncate by path, directory listings and walks.
 */
#include "internal.h"
#include "lib/hex.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	vol_lock(v);
	m = vol_meta_find(v, path);
	if (m)
		vol_fill_stat(m, open_inode_of(v, m), st);
	else if (vol_dir_exists(v, path))
		vol_implicit_dir_stat(v, path, st);
	else
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "%s: not in the volume", path);
	vol_unlock(v);
	return err;
}

enum scone_err scone_volume_mkdir(struct scone_volume *v, const char *path, uint32_t mode)
{
	struct vol_region *r;
	struct vol_meta *m;
	enum scone_err err;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	vol_lock(v);
	err = vol_protected_region(v, path, &r);
	if (!err && (vol_meta_find(v, path) || vol_dir_exists(v, path)))
		err = scone_err_set(SCONE_ERR_EXISTS, "%s exists", path);
	if (!err)
		err = vol_parent_check(v, path);
	if (!err)
		err = vol_create_meta(v, path, VOL_T_DIR, mode, r, &m);
	if (!err)
		vol_parent_touch(v, path);
	vol_unlock(v);
	return err;
}

enum scone_err scone_volume_rmdir(struct scone_volume *v, const char *path)
{
	struct vol_meta *m;
	enum scone_err err = SCONE_ERR_OK;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	SCONE_TRY(vol_path_check(path));
	vol_lock(v);
	m = vol_meta_find(v, path);
	if (!m)
		err = scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such directory", path);
	else if (m->type != VOL_T_DIR)
		err = scone_err_set(SCONE_ERR_NOT_DIR, "%s is not a directory", path);
	else if (vol_has_children(v, path))
		err = scone_err_set(SCONE_ERR_NOT_EMPTY, "%s is not empty", path);
	if (!err) {
		vol_meta_remove(v, m);
		if (!m->ephemeral)
			v->dirty = v->ns_changed = true;
		vol_meta_free(m);
		vol_parent_touch(v, path);
	}
	vol_unlock(v);
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
		v->dirty = v->ns_changed = true;
	}
	vol_meta_remove(v, m);
	if (ino) {
		ino->mtime_ns = m->mtime_ns; /* still open: its stat keeps the time and mode */
		ino->mode = m->mode;
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
	vol_lock(v);
	m = vol_meta_find(v, path);
	if (!m)
		err = vol_dir_exists(v, path) ? scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", path)
					      : scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such file", path);
	else if (m->type == VOL_T_DIR)
		err = scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", path);
	else
		err = unlink_meta(v, m);
	if (!err)
		vol_parent_touch(v, path);
	vol_unlock(v);
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
		if (vol_is_prefix_dir(dir, v->st.regions[i].path) || strcmp(dir, v->st.regions[i].path) == 0)
			return true;
	return false;
}

/* Every path under from, moved under to, must stay a valid length. */
static enum scone_err check_moved_lengths(const struct scone_volume *v, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to);

	for (size_t i = 0; i < v->st.meta_count; i++) {
		const char *p = v->st.metas[i]->path;
		if (vol_is_prefix_dir(from, p) && strlen(p) - fl + tl >= VOL_MAX_PATH)
			return scone_err_set(SCONE_ERR_NAME_TOO_LONG,
					     "moving %s to %s would make %s too long", from, to, p);
	}
	return SCONE_ERR_OK;
}

static enum scone_err rename_locked(struct scone_volume *v, const char *from, const char *to)
{
	struct vol_region *rf, *rt;
	struct vol_meta *m, *dst;
	enum scone_err err = SCONE_ERR_OK;

	SCONE_TRY(vol_protected_region(v, from, &rf));
	SCONE_TRY(vol_protected_region(v, to, &rt));
	m = vol_meta_find(v, from);
	if (!m)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such file or directory", from);
	if (strcmp(from, to) == 0)
		return SCONE_ERR_OK;
	if (rf != rt || (m->type == VOL_T_DIR && (region_inside(v, from) || region_inside(v, to))))
		return scone_err_set(SCONE_ERR_CROSS_REGION, "%s -> %s crosses a region boundary", from, to);
	if (vol_is_prefix_dir(from, to))
		return scone_err_set(SCONE_ERR_INVALID, "cannot move %s into itself", from);
	if (strcmp(to, "/") == 0)
		return scone_err_set(SCONE_ERR_INVALID, "cannot replace the root directory");
	if (m->type == VOL_T_DIR)
		SCONE_TRY(check_moved_lengths(v, from, to));
	SCONE_TRY(vol_parent_check(v, to));
	dst = vol_meta_find(v, to);
	if (dst) {
		if (dst->type == VOL_T_DIR && m->type != VOL_T_DIR)
			return scone_err_set(SCONE_ERR_IS_DIR, "%s is a directory", to);
		if (dst->type != VOL_T_DIR && m->type == VOL_T_DIR)
			return scone_err_set(SCONE_ERR_NOT_DIR, "%s is not a directory", to);
		if (dst->type == VOL_T_DIR && vol_has_children(v, to))
			return scone_err_set(SCONE_ERR_NOT_EMPTY, "%s is not empty", to);
		if (dst->type == VOL_T_DIR) {
			vol_meta_remove(v, dst);
			vol_meta_free(dst);
		} else
			SCONE_TRY(unlink_meta(v, dst));
	}
	if (m->type == VOL_T_DIR) {
		for (size_t i = 0; i < v->st.meta_count && !err; i++)
			if (vol_is_prefix_dir(from, v->st.metas[i]->path))
				err = repath(v->st.metas[i], from, to);
	}
	if (!err)
		err = repath(m, from, to);
	qsort(v->st.metas, v->st.meta_count, sizeof(*v->st.metas), vol_cmp_meta);
	if (!m->ephemeral)
		v->dirty = v->ns_changed = true;
	if (!err) {
		vol_parent_touch(v, from);
		vol_parent_touch(v, to);
	}
	return err;
}

enum scone_err scone_volume_rename(struct scone_volume *v, const char *from, const char *to)
{
	enum scone_err err;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "volume opened read-only");
	vol_lock(v);
	err = rename_locked(v, from, to);
	vol_unlock(v);
	return err;
}

enum scone_err scone_volume_chmod(struct scone_volume *v, const char *path, uint32_t mode)
{
	enum scone_err err;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "%s: volume opened read-only", path);
	SCONE_TRY(vol_path_check(path));
	vol_lock(v);
	err = vol_set_attrs_locked(v, path, &mode, NULL);
	vol_unlock(v);
	return err;
}

enum scone_err scone_volume_set_mtime(struct scone_volume *v, const char *path, int64_t mtime_ns)
{
	enum scone_err err;

	if (!v->writable)
		return scone_err_set(SCONE_ERR_READ_ONLY, "%s: volume opened read-only", path);
	SCONE_TRY(vol_path_check(path));
	vol_lock(v);
	err = vol_set_attrs_locked(v, path, NULL, &mtime_ns);
	vol_unlock(v);
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
	size_t i, dl;

	if (!vol_dir_exists(v, dir))
		return vol_meta_find(v, dir)
			   ? scone_err_set(SCONE_ERR_NOT_DIR, "%s is not a directory", dir)
			   : scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no such directory", dir);
	dl = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
	/* Region roots that have no directory entry of their own. */
	for (size_t r = 0; r < v->st.region_count; r++) {
		const char *rp = v->st.regions[r].path;
		if (vol_is_prefix_dir(dir, rp) && !strchr(rp + dl + 1, '/') && !vol_meta_find(v, rp)) {
			vol_implicit_dir_stat(v, rp, &st);
			SCONE_TRY(listing_add(l, rp + dl + 1, &st));
		}
	}
	for (i = vol_children_pos(v, dir); i < v->st.meta_count; i++) {
		struct vol_meta *m = v->st.metas[i];
		if (!vol_is_prefix_dir(dir, m->path))
			break;
		if (strchr(m->path + dl + 1, '/'))
			continue;
		vol_fill_stat(m, open_inode_of(v, m), &st);
		SCONE_TRY(listing_add(l, m->path + dl + 1, &st));
	}
	listing_sort(l);
	return SCONE_ERR_OK;
}

enum scone_err scone_volume_readdir(struct scone_volume *v, const char *dir, scone_readdir_fn fn, void *arg)
{
	struct listing l = {0};
	enum scone_err err;

	SCONE_TRY(vol_path_check(dir));
	vol_lock(v);
	err = list_dir_locked(v, dir, &l);
	vol_unlock(v);
	for (size_t i = 0; !err && i < l.count; i++)
		if (fn(arg, l.names[i], &l.stats[i]))
			break;
	listing_free(&l);
	return err;
}

void scone_volume_walk(struct scone_volume *v, scone_walk_fn fn, void *arg)
{
	struct listing l = {0};
	struct scone_vstat st;
	enum scone_err err = SCONE_ERR_OK;

	vol_lock(v);
	for (size_t i = 0; i < v->st.meta_count && !err; i++) {
		struct vol_meta *m = v->st.metas[i];
		vol_fill_stat(m, open_inode_of(v, m), &st);
		err = listing_add(&l, m->path, &st);
	}
	vol_unlock(v);
	for (size_t i = 0; i < l.count; i++)
		if (fn(arg, l.names[i], &l.stats[i]))
			break;
	listing_free(&l);
}

/* ---------------- host check ---------------- */
