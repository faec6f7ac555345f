/*
 * shield_ns.c - the namespace calls on volume paths: unlink, rmdir, mkdir,
 * rename (open fds follow their files), truncate; and the errno a failed
 * path lookup gives, as the kernel's.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

/*
 * The errno for err on vpath (lock held): NOT_FOUND where the nearest
 * existing ancestor is a file is ENOTDIR, as on a kernel file system.
 */
int shield_path_errno(struct mount *m, const char *vpath, enum scone_err err)
{
	int n = scone_err_to_errno(err);

	if (err == SCONE_ERR_NOT_FOUND) {
		char p[PATH_MAX];
		struct scone_vstat st;
		snprintf(p, sizeof(p), "%s", vpath);
		for (char *slash = strrchr(p, '/'); slash && slash > p; slash = strrchr(p, '/')) {
			*slash = '\0';
			if (vop_stat(m, p, &st) == SCONE_ERR_OK) {
				if (!st.is_dir)
					n = ENOTDIR;
				break;
			}
		}
		scone_err_clear();
	}
	return n ? n : EIO;
}

/* 0 if vpath exists in m, else the errno (lock held). */
int shield_exists_errno(struct mount *m, const char *vpath)
{
	struct scone_vstat st;
	enum scone_err err = vop_stat(m, vpath, &st);

	return err ? shield_path_errno(m, vpath, err) : 0;
}

int shield_exists(struct mount *m, const char *vpath)
{
	int e;

	shield_enter();
	e = shield_exists_errno(m, vpath);
	shield_leave();
	return e;
}

/* End a namespace change of vpath on m begun with shield_enter(): 0, or -1 with errno. */
static int ns_done(struct mount *m, const char *vpath, enum scone_err err)
{
	int e = 0;

	if (!err)
		shield_mark_dirty(m);
	else
		e = shield_path_errno(m, vpath, err);
	shield_leave();
	return e ? shield_fail(e) : 0;
}

/* unlink (or rmdir, dir) vpath of m: 0, or -1 with errno. The mount point itself is busy. */
static int remove_in(struct mount *m, const char *vpath, bool dir)
{
	enum scone_err err;

	if (dir && strcmp(vpath, "/") == 0)
		return shield_fail(EBUSY);
	shield_enter();
	err = vop_remove(m, vpath, dir);
	return ns_done(m, vpath, err);
}

int unlink(const char *path)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);
	REAL(unlink);

	return m ? remove_in(m, vpath, false) : real_unlink(path);
}

int rmdir(const char *path)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);
	REAL(rmdir);

	return m ? remove_in(m, vpath, true) : real_rmdir(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);
	REAL(unlinkat);

	if (!m)
		return real_unlinkat(dirfd, path, flags);
	if (flags & ~AT_REMOVEDIR)
		return shield_fail(EINVAL);
	return remove_in(m, vpath, (flags & AT_REMOVEDIR) != 0);
}

static int mkdir_in(struct mount *m, const char *vpath, mode_t mode)
{
	enum scone_err err;

	if (strcmp(vpath, "/") == 0)
		return shield_fail(EEXIST);
	mode &= ~shield_umask(); /* (as the kernel's mkdir) */
	shield_enter();
	err = vop_mkdir(m, vpath, (uint32_t)(mode & 07777));
	return ns_done(m, vpath, err);
}

int mkdir(const char *path, mode_t mode)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);
	REAL(mkdir);

	return m ? mkdir_in(m, vpath, mode) : real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);
	REAL(mkdirat);

	return m ? mkdir_in(m, vpath, mode) : real_mkdirat(dirfd, path, mode);
}

/* 1: handled (*ret set), 0: neither path shielded. */
/*
 * After a rename, this process's open fds under from name their files by the
 * new path (a reload reopens them by it; fstat and directory fds use it).
 */
struct retarget_walk {
	struct mount *m;
	const char *from, *to;
	size_t lf;
};

static void retarget_one(int fd, struct fd_desc *d, void *arg)
{
	const struct retarget_walk *w = arg;
	struct sfd *s = (struct sfd *)d;
	char tmp[PATH_MAX];

	(void)fd;
	if (d->kind != &shield_volume_kind || s->m != w->m || strncmp(s->vpath, w->from, w->lf) != 0 ||
	    (s->vpath[w->lf] && s->vpath[w->lf] != '/'))
		return;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s%s", w->to, s->vpath + w->lf) < sizeof(tmp))
		memcpy(s->vpath, tmp, strlen(tmp) + 1);
}

static void retarget(struct mount *m, const char *from, const char *to)
{
	struct retarget_walk w = {.m = m, .from = from, .to = to, .lf = strlen(from)};

	fdtab_each(retarget_one, &w);
}

static int rename_in(int fd1, const char *from, int fd2, const char *to, int *ret)
{
	char v1[PATH_MAX], v2[PATH_MAX];
	struct mount *m1 = shield_resolve(fd1, from, v1), *m2 = shield_resolve(fd2, to, v2);
	enum scone_err err;

	if (!m1 && !m2)
		return 0;
	if (m1 != m2) {
		*ret = shield_fail(EXDEV);
		return 1;
	}
	if (strcmp(v1, "/") == 0 || strcmp(v2, "/") == 0) {
		*ret = shield_fail(EBUSY);
		return 1;
	}
	shield_enter();
	err = vop_rename(m1, v1, v2);
	if (!err)
		retarget(m1, v1, v2);
	*ret = ns_done(m1, v1, err);
	return 1;
}

int rename(const char *from, const char *to)
{
	REAL(rename);
	int r;

	return rename_in(AT_FDCWD, from, AT_FDCWD, to, &r) ? r : real_rename(from, to);
}

int renameat(int fd1, const char *from, int fd2, const char *to)
{
	REAL(renameat);
	int r;

	return rename_in(fd1, from, fd2, to, &r) ? r : real_renameat(fd1, from, fd2, to);
}

/* renameat2: RENAME_NOREPLACE is served; RENAME_EXCHANGE and RENAME_WHITEOUT are not (EINVAL). */
int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned int flags)
{
	REAL(renameat2);
	char v2[PATH_MAX];
	struct mount *m2 = shield_resolve(fd2, to, v2);
	int r, e = 0;

	if (!m2 && !shield_resolve(fd1, from, v2))
		return real_renameat2(fd1, from, fd2, to, flags);
	if (flags & ~RENAME_NOREPLACE)
		return shield_fail(EINVAL);
	if ((flags & RENAME_NOREPLACE) && m2)
		e = shield_exists(m2, v2) == 0 ? EEXIST : 0;
	if (e)
		return shield_fail(e);
	return rename_in(fd1, from, fd2, to, &r) ? r : shield_fail(EXDEV);
}

static int truncate_in(struct mount *m, const char *vpath, off64_t len)
{
	enum scone_err err;

	if (len < 0)
		return shield_fail(EINVAL);
	shield_enter();
	err = vop_truncate(m, vpath, (uint64_t)len);
	return ns_done(m, vpath, err);
}

int truncate(const char *path, off_t len)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);
	REAL(truncate);

	return m ? truncate_in(m, vpath, len) : real_truncate(path, len);
}

int truncate64(const char *path, off64_t len)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);
	REAL(truncate64);

	return m ? truncate_in(m, vpath, len) : real_truncate64(path, len);
}
