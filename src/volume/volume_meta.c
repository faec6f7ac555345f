/*
 * volume_meta.c - a volume's namespace index: the sorted table of its
 * entries (files, directories, links), which region a path is in, parent
 * and child checks, directory attributes, and the times and modes a change
 * touches. Every function here runs with the volume's lock held.
 */
#include "internal.h"
#include "lib/hex.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

size_t vol_meta_pos(const struct scone_volume *v, const char *path, bool *found)
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

struct vol_meta *vol_meta_find(const struct scone_volume *v, const char *path)
{
	bool found;
	size_t i = vol_meta_pos(v, path, &found);
	return found ? v->st.metas[i] : NULL;
}

enum scone_err vol_meta_insert(struct scone_volume *v, struct vol_meta *m)
{
	bool found;
	size_t i = vol_meta_pos(v, m->path, &found);

	if (found)
		return SCONE_ERR_EXISTS;
	if (v->st.meta_count >= VOL_MAX_ENTRIES)
		return scone_err_set(SCONE_ERR_NO_SPACE, "volume holds the maximum of %u entries",
				     VOL_MAX_ENTRIES);
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

void vol_meta_remove(struct scone_volume *v, struct vol_meta *m)
{
	bool found;
	size_t i = vol_meta_pos(v, m->path, &found);

	if (!found)
		return;
	memmove(v->st.metas + i, v->st.metas + i + 1, (v->st.meta_count - i - 1) * sizeof(*v->st.metas));
	v->st.meta_count--;
}

int vol_cmp_meta(const void *a, const void *b)
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

bool vol_is_prefix_dir(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (strcmp(dir, "/") == 0)
		return path[0] == '/' && path[1] != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* A directory exists if it is "/", a region root or its ancestor, or a directory entry. */
bool vol_dir_exists(const struct scone_volume *v, const char *path)
{
	const struct vol_meta *m;

	if (strcmp(path, "/") == 0)
		return true;
	for (size_t i = 0; i < v->st.region_count; i++) {
		const char *rp = v->st.regions[i].path;
		if (strcmp(rp, path) == 0 || vol_is_prefix_dir(path, rp))
			return true;
	}
	m = vol_meta_find(v, path);
	return m && m->type == VOL_T_DIR;
}

enum scone_err vol_parent_check(const struct scone_volume *v, const char *path)
{
	char *copy = strdup(path), *parent;
	enum scone_err err = SCONE_ERR_OK;

	if (!copy)
		return SCONE_ERR_NOMEM;
	parent = dirname(copy);
	if (!vol_dir_exists(v, parent))
		err = vol_meta_find(v, parent)
			  ? scone_err_set(SCONE_ERR_NOT_DIR, "%s: parent is not a directory", path)
			  : scone_err_set(SCONE_ERR_NOT_FOUND, "%s: parent directory does not exist", path);
	free(copy);
	return err;
}

size_t vol_children_pos(const struct scone_volume *v, const char *dir)
{
	char prefix[VOL_MAX_PATH + 2];
	bool found;
	size_t i;

	if (strcmp(dir, "/") == 0) {
		i = vol_meta_pos(v, dir, &found);
		return i + found;
	}
	if ((size_t)snprintf(prefix, sizeof(prefix), "%s/", dir) >= sizeof(prefix))
		return v->st.meta_count;	/* (no such path can be in the volume) */
	return vol_meta_pos(v, prefix, &found); /* (no entry is named with a trailing '/') */
}

bool vol_has_children(const struct scone_volume *v, const char *dir)
{
	size_t i = vol_children_pos(v, dir);

	return i < v->st.meta_count && vol_is_prefix_dir(dir, v->st.metas[i]->path);
}

/* ---------------- times and directory attributes ---------------- */

int64_t vol_now_ns(void)
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
struct vol_dattr *vol_dattr_find(const struct scone_volume *v, const char *path)
{
	for (size_t i = 0; i < v->st.dattr_count; i++)
		if (strcmp(v->st.dattrs[i].path, path) == 0)
			return &v->st.dattrs[i];
	return NULL;
}

/* The attributes of implicit directory path, recorded from now on; NULL when out of memory. */
static struct vol_dattr *dattr_get(struct scone_volume *v, const char *path)
{
	struct vol_dattr *d = vol_dattr_find(v, path), *nd;
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
	struct vol_meta *m = vol_meta_find(v, path);
	struct vol_dattr *d;

	if (m) {
		m->mtime_ns = vol_now_ns();
		if (!m->ephemeral)
			v->dirty = v->ns_changed = true;
		return;
	}
	if (!vol_dir_exists(v, path) || !(d = dattr_get(v, path)))
		return;
	d->mtime_ns = vol_now_ns();
	if (!d->ephemeral)
		v->dirty = v->ns_changed = true;
}

/* An entry was added to, removed from or renamed in the directory holding path. */
void vol_parent_touch(struct scone_volume *v, const char *path)
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
void vol_file_touch(struct scone_volume *v, struct vol_inode *ino)
{
	ino->mtime_ns = vol_now_ns();
	if (!ino->meta)
		return;
	ino->meta->mtime_ns = ino->mtime_ns;
	if (!ino->meta->ephemeral) {
		v->dirty = true; /* (a content change: a delta record holds it) */
		if (!ino->changed)
			v->ns_changed = true; /* a time alone (O_TRUNC of an empty file): not in a delta */
	}
}

/* chmod / utimens of an entry or an implicit directory; NULL leaves a value. */
enum scone_err vol_set_attrs_locked(struct scone_volume *v, const char *path, const uint32_t *mode,
				    const int64_t *mtime_ns)
{
	struct vol_meta *m = vol_meta_find(v, path);
	struct vol_dattr *d;
	uint32_t *mp;
	int64_t *tp;
	bool ephemeral;

	if (m) {
		mp = &m->mode;
		tp = &m->mtime_ns;
		ephemeral = m->ephemeral;
	} else if (vol_dir_exists(v, path)) {
		if (!(d = dattr_get(v, path)))
			return scone_err_set(SCONE_ERR_NOMEM, "%s: no memory for the directory's attributes",
					     path);
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
		v->dirty = v->ns_changed = true;
	return SCONE_ERR_OK;
}

/* ---------------- fspf I/O ---------------- */
