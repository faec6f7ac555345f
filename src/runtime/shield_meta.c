/*
 * shield_meta.c - the shield's answers about files rather than their bytes:
 * modes, modification times and owners; the links volumes do not hold;
 * extended attributes (none); the file system behind a volume path; and
 * canonical names. Paths and fds as in shield.c.
 */
/* The interposers must be real functions, not glibc's fortify inline wrappers. */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

/* ---- file systems and canonical names ---- */

/* The host directory behind a shielded path (statfs of a volume path), or NULL with errno. */
static const char *host_dir_of(int dirfd, const char *path, char vpath[PATH_MAX], bool *shielded)
{
	struct mount *m = shield_resolve(dirfd, path, vpath);
	int e;

	*shielded = m != NULL;
	if (!m)
		return NULL;
	if ((e = shield_exists(m, vpath))) {
		errno = e;
		return NULL;
	}
	return m->path;
}

/* statfs and friends of a volume path: those of its host directory. */
#define STATFS_PATH(name, type)                                                                              \
	int name(const char *path, type *buf)                                                                \
	{                                                                                                    \
		REAL(name);                                                                                  \
		char vpath[PATH_MAX];                                                                        \
		bool sh;                                                                                     \
		const char *host = host_dir_of(AT_FDCWD, path, vpath, &sh);                                  \
		return !sh ? real_##name(path, buf) : host ? real_##name(host, buf) : -1;                    \
	}

STATFS_PATH(statfs, struct statfs)
STATFS_PATH(statfs64, struct statfs64)
STATFS_PATH(statvfs, struct statvfs)
STATFS_PATH(statvfs64, struct statvfs64)

/* The host directory of a shielded fd's volume (copied out under the lock), or "". */
static void fd_host_dir(int fd, char out[PATH_MAX])
{
	struct sfd *s;

	out[0] = '\0';
	if (!shield_maybe_shielded(fd))
		return;
	shield_enter();
	if ((s = shield_fd_entry(fd)))
		snprintf(out, PATH_MAX, "%s", s->m->path);
	shield_leave();
}

/* The same of a shielded fd (pathname: the path form used on its host directory). */
#define STATFS_FD(name, pathname, type)                                                                      \
	int name(int fd, type *buf)                                                                          \
	{                                                                                                    \
		REAL(name);                                                                                  \
		REAL(pathname);                                                                              \
		char host[PATH_MAX];                                                                         \
		fd_host_dir(fd, host);                                                                       \
		return host[0] ? real_##pathname(host, buf) : real_##name(fd, buf);                          \
	}

STATFS_FD(fstatfs, statfs, struct statfs)
STATFS_FD(fstatfs64, statfs64, struct statfs64)
STATFS_FD(fstatvfs, statvfs, struct statvfs)
STATFS_FD(fstatvfs64, statvfs64, struct statvfs64)

/*
 * realpath of a path in a volume: glibc's would ask the kernel, which knows
 * no such path. Volumes hold no symbolic links, so the canonical name is the
 * normalised absolute path, once it is known to exist.
 */
static char *realpath_in(const char *path, char *resolved, size_t size, bool *shielded)
{
	char vpath[PATH_MAX], full[PATH_MAX * 2];
	size_t n;

	if (!host_dir_of(AT_FDCWD, path, vpath, shielded))
		return NULL;
	if (!scone_shield_abspath(AT_FDCWD, path, full, sizeof(full)) || (n = strlen(full)) >= PATH_MAX)
		return errno = ENAMETOOLONG, NULL;
	if (resolved && n >= size)
		return errno = ERANGE, NULL;
	if (!resolved && !(resolved = malloc(PATH_MAX)))
		return errno = ENOMEM, NULL;
	memcpy(resolved, full, n + 1);
	return resolved;
}

char *realpath(const char *path, char *resolved)
{
	REAL(realpath);
	bool sh = false;
	char *r = realpath_in(path, resolved, PATH_MAX, &sh); /* a NULL path is not shielded */

	return sh ? r : real_realpath(path, resolved);
}

char *canonicalize_file_name(const char *path)
{
	REAL(canonicalize_file_name);
	bool sh = false;
	char *r = realpath_in(path, NULL, PATH_MAX, &sh);

	return sh ? r : real_canonicalize_file_name(path);
}

char *__realpath_chk(const char *path, char *resolved, size_t size);
char *__realpath_chk(const char *path, char *resolved, size_t size)
{
	REAL(__realpath_chk);
	bool sh = false;
	char *r = realpath_in(path, resolved, size, &sh);

	return sh ? r : real___realpath_chk(path, resolved, size);
}

/* ---- extended attributes ---- */

/*
 * Volumes keep no extended attributes: on a volume path or a shielded fd
 * every xattr call is ENOTSUP (as on a file system without them, which
 * cp -a and Python's shutil.copy2 accept), once the path is known to exist.
 */
static ssize_t xattr_path(const char *path, bool *shielded)
{
	char vpath[PATH_MAX];
	const char *host = host_dir_of(AT_FDCWD, path, vpath, shielded);

	return !*shielded ? 0 : host ? shield_fail(ENOTSUP) : -1;
}

#define XATTR_PATH(type, name, params, args)                                                                 \
	type name params                                                                                     \
	{                                                                                                    \
		REAL(name);                                                                                  \
		bool sh;                                                                                     \
		ssize_t r = xattr_path(path, &sh);                                                           \
		return sh ? (type)r : real_##name args;                                                      \
	}
#define XATTR_FD(type, name, params, args)                                                                   \
	type name params                                                                                     \
	{                                                                                                    \
		REAL(name);                                                                                  \
		return shield_maybe_shielded(fd) ? shield_fail(ENOTSUP) : real_##name args;                  \
	}

XATTR_PATH(ssize_t, getxattr, (const char *path, const char *n, void *v, size_t z), (path, n, v, z))
XATTR_PATH(ssize_t, lgetxattr, (const char *path, const char *n, void *v, size_t z), (path, n, v, z))
XATTR_PATH(ssize_t, listxattr, (const char *path, char *l, size_t z), (path, l, z))
XATTR_PATH(ssize_t, llistxattr, (const char *path, char *l, size_t z), (path, l, z))
XATTR_PATH(int, setxattr, (const char *path, const char *n, const void *v, size_t z, int f),
	   (path, n, v, z, f))
XATTR_PATH(int, lsetxattr, (const char *path, const char *n, const void *v, size_t z, int f),
	   (path, n, v, z, f))
XATTR_PATH(int, removexattr, (const char *path, const char *n), (path, n))
XATTR_PATH(int, lremovexattr, (const char *path, const char *n), (path, n))
XATTR_FD(ssize_t, fgetxattr, (int fd, const char *n, void *v, size_t z), (fd, n, v, z))
XATTR_FD(ssize_t, flistxattr, (int fd, char *l, size_t z), (fd, l, z))
XATTR_FD(int, fsetxattr, (int fd, const char *n, const void *v, size_t z, int f), (fd, n, v, z, f))
XATTR_FD(int, fremovexattr, (int fd, const char *n), (fd, n))

/* ---- links, modes, owners and times ---- */

/*
 * Volumes hold no hard or symbolic links: link and symlink into one are
 * EPERM (as on a file system without them, e.g. vfat) once the usual errors
 * (missing source, existing target, missing parent) are ruled out, and
 * readlink of a volume path is EINVAL (nothing there is a link). Modes and
 * modification times are kept by the volume; owners are not (every file
 * belongs to the process's user): chown to anyone else is EPERM.
 */

/* The result of a link or symlink creating vpath in m (from: the source's vpath, or NULL). */
static int no_links(struct mount *m, const char *from, const char *vpath)
{
	int e;

	shield_enter();
	e = from ? shield_exists_errno(m, from) : 0;
	if (!e)
		e = shield_exists_errno(m, vpath) == 0 ? EEXIST : 0;
	if (!e) {
		char parent[PATH_MAX];
		char *slash;
		snprintf(parent, sizeof(parent), "%s", vpath);
		slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		else
			snprintf(parent, sizeof(parent), "/");
		e = shield_exists_errno(m, parent);
		e = e ? e : EPERM;
	}
	shield_leave();
	return shield_fail(e);
}

static int link_in(int fd1, const char *from, int fd2, const char *to, int *ret)
{
	char v1[PATH_MAX], v2[PATH_MAX];
	struct mount *m1 = shield_resolve(fd1, from, v1), *m2 = shield_resolve(fd2, to, v2);

	if (!m1 && !m2)
		return 0;
	*ret = m1 != m2 ? shield_fail(EXDEV) : no_links(m1, v1, v2);
	return 1;
}

int link(const char *from, const char *to)
{
	REAL(link);
	int r;

	return link_in(AT_FDCWD, from, AT_FDCWD, to, &r) ? r : real_link(from, to);
}

int linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
	REAL(linkat);
	int r;

	return link_in(fd1, from, fd2, to, &r) ? r : real_linkat(fd1, from, fd2, to, flags);
}

int symlink(const char *target, const char *path)
{
	REAL(symlink);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	return m ? no_links(m, NULL, vpath) : real_symlink(target, path);
}

int symlinkat(const char *target, int dirfd, const char *path)
{
	REAL(symlinkat);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);

	return m ? no_links(m, NULL, vpath) : real_symlinkat(target, dirfd, path);
}

static ssize_t readlink_in(struct mount *m, const char *vpath)
{
	int e = shield_exists(m, vpath);

	return shield_fail(e ? e : EINVAL);
}

ssize_t readlink(const char *path, char *buf, size_t n)
{
	REAL(readlink);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	return m ? readlink_in(m, vpath) : real_readlink(path, buf, n);
}

ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t n)
{
	REAL(readlinkat);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);

	return m ? readlink_in(m, vpath) : real_readlinkat(dirfd, path, buf, n);
}

/* Device files and fifos cannot live on a volume. */
static int mknod_in(struct mount *m, const char *vpath)
{
	return shield_fail(shield_exists(m, vpath) == 0 ? EEXIST : EPERM);
}

int mknod(const char *path, mode_t mode, dev_t dev)
{
	REAL(mknod);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	return m ? mknod_in(m, vpath) : real_mknod(path, mode, dev);
}

int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev)
{
	REAL(mknodat);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);

	return m ? mknod_in(m, vpath) : real_mknodat(dirfd, path, mode, dev);
}

int mkfifo(const char *path, mode_t mode)
{
	REAL(mkfifo);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	return m ? mknod_in(m, vpath) : real_mkfifo(path, mode);
}

int mkfifoat(int dirfd, const char *path, mode_t mode)
{
	REAL(mkfifoat);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);

	return m ? mknod_in(m, vpath) : real_mkfifoat(dirfd, path, mode);
}

/* chmod of vpath (lock held): 0 or errno. */
static int chmod_locked(struct mount *m, const char *vpath, mode_t mode)
{
	enum scone_err err = vop_chmod(m, vpath, (uint32_t)(mode & 07777));

	if (err)
		return shield_path_errno(m, vpath, err);
	shield_mark_dirty(m);
	return 0;
}

static int chmod_in(struct mount *m, const char *vpath, mode_t mode)
{
	int e;

	shield_enter();
	e = chmod_locked(m, vpath, mode);
	shield_leave();
	return e ? shield_fail(e) : 0;
}

int chmod(const char *path, mode_t mode)
{
	REAL(chmod);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	return m ? chmod_in(m, vpath, mode) : real_chmod(path, mode);
}

int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
	REAL(fchmodat);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);

	return m ? chmod_in(m, vpath, mode) : real_fchmodat(dirfd, path, mode, flags);
}

int fchmod(int fd, mode_t mode)
{
	REAL(fchmod);
	int e;
	FD_CALL(fd, real_fchmod(fd, mode), (e = chmod_locked(s->m, s->vpath, mode)) ? shield_fail(e) : 0);
}

/* chown: the owner can only stay who it is (the process's user and group). */
static bool other_owner(uid_t uid, gid_t gid)
{
	return (uid != (uid_t)-1 && uid != getuid()) || (gid != (gid_t)-1 && gid != getgid());
}

static int chown_in(struct mount *m, const char *vpath, uid_t uid, gid_t gid)
{
	int e = shield_exists(m, vpath);

	if (!e && other_owner(uid, gid))
		e = EPERM;
	return e ? shield_fail(e) : 0;
}

int chown(const char *path, uid_t uid, gid_t gid)
{
	REAL(chown);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	return m ? chown_in(m, vpath, uid, gid) : real_chown(path, uid, gid);
}

int lchown(const char *path, uid_t uid, gid_t gid)
{
	REAL(lchown);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	return m ? chown_in(m, vpath, uid, gid) : real_lchown(path, uid, gid);
}

int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
	REAL(fchownat);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);

	return m ? chown_in(m, vpath, uid, gid) : real_fchownat(dirfd, path, uid, gid, flags);
}

int fchown(int fd, uid_t uid, gid_t gid)
{
	REAL(fchown);
	FD_CALL(fd, real_fchown(fd, uid, gid), other_owner(uid, gid) ? shield_fail(EPERM) : 0);
}

/* The new mtime of times (utimensat's: NULL or UTIME_NOW is now); false: UTIME_OMIT. */
static bool mtime_of(const struct timespec *times, int64_t *ns)
{
	struct timespec now;

	if (times && times[1].tv_nsec == UTIME_OMIT)
		return false;
	if (!times || times[1].tv_nsec == UTIME_NOW) {
		clock_gettime(CLOCK_REALTIME, &now);
		*ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	} else {
		*ns = (int64_t)times[1].tv_sec * 1000000000 + times[1].tv_nsec;
	}
	return true;
}

/* Set vpath's mtime from times (lock held): 0 or errno. */
static int utimens_locked(struct mount *m, const char *vpath, const struct timespec *times)
{
	enum scone_err err;
	int64_t ns;

	if (times && ((times[0].tv_nsec != UTIME_NOW && times[0].tv_nsec != UTIME_OMIT &&
		       (times[0].tv_nsec < 0 || times[0].tv_nsec >= 1000000000)) ||
		      (times[1].tv_nsec != UTIME_NOW && times[1].tv_nsec != UTIME_OMIT &&
		       (times[1].tv_nsec < 0 || times[1].tv_nsec >= 1000000000))))
		return EINVAL;
	if (!mtime_of(times, &ns))
		return shield_exists_errno(m, vpath);
	if ((err = vop_set_mtime(m, vpath, ns)))
		return shield_path_errno(m, vpath, err);
	shield_mark_dirty(m);
	return 0;
}

static int utimens_in(struct mount *m, const char *vpath, const struct timespec *times)
{
	int e;

	shield_enter();
	e = utimens_locked(m, vpath, times);
	shield_leave();
	return e ? shield_fail(e) : 0;
}

int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags)
{
	REAL(utimensat);
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);

	return m ? utimens_in(m, vpath, times) : real_utimensat(dirfd, path, times, flags);
}

int futimens(int fd, const struct timespec times[2])
{
	REAL(futimens);
	int e;
	FD_CALL(fd, real_futimens(fd, times),
		(e = utimens_locked(s->m, s->vpath, times)) ? shield_fail(e) : 0);
}

/* utimes/utime style times (NULL: now) as utimensat's. */
static const struct timespec *tv_times(const struct timeval *tv, struct timespec ts[2])
{
	if (!tv)
		return NULL;
	for (int i = 0; i < 2; i++) {
		ts[i].tv_sec = tv[i].tv_sec;
		ts[i].tv_nsec = tv[i].tv_usec * 1000;
	}
	return ts;
}

int utimes(const char *path, const struct timeval tv[2])
{
	REAL(utimes);
	char vpath[PATH_MAX];
	struct timespec ts[2];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	return m ? utimens_in(m, vpath, tv_times(tv, ts)) : real_utimes(path, tv);
}

int lutimes(const char *path, const struct timeval tv[2])
{
	REAL(lutimes);
	char vpath[PATH_MAX];
	struct timespec ts[2];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	return m ? utimens_in(m, vpath, tv_times(tv, ts)) : real_lutimes(path, tv);
}

int futimes(int fd, const struct timeval tv[2])
{
	struct timespec ts[2];

	return futimens(fd, tv_times(tv, ts));
}

int utime(const char *path, const struct utimbuf *buf)
{
	REAL(utime);
	char vpath[PATH_MAX];
	struct timespec ts[2];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);

	if (!m)
		return real_utime(path, buf);
	if (buf) {
		ts[0] = (struct timespec){buf->actime, 0};
		ts[1] = (struct timespec){buf->modtime, 0};
	}
	return utimens_in(m, vpath, buf ? ts : NULL);
}
