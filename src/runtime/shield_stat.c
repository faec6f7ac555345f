/*
 * shield_stat.c - stat in all its forms (fstat, fstatat, statx, access) on
 * volume paths and fds: the volume's sizes, modes and times in the
 * kernel's layout.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

/*
 * The inode number: a file's id, or for a directory (which has none) a hash
 * of its volume path, so that cp -r and tar tell directories apart.
 */
uint64_t shield_inode_of(const struct mount *m, const struct scone_vstat *v, const char *vpath)
{
	uint64_t ino = 0;

	memcpy(&ino, v->file_id, sizeof(ino));
	if (!ino && vpath) {
		/*
		 * A directory: a hash of its mount point and its path, so that
		 * two volumes' directories differ (PostgreSQL keys its shared
		 * memory by its data directory's inode).
		 */
		ino = 14695981039346656037ULL;
		for (const char *p = m ? m->path : ""; *p; p++)
			ino = (ino ^ (uint8_t)*p) * 1099511628211ULL;
		ino *= 1099511628211ULL; /* a separator */
		for (const char *p = vpath; *p; p++)
			ino = (ino ^ (uint8_t)*p) * 1099511628211ULL;
	}
	return ino ? ino : 1;
}

static void fill_stat(const struct mount *m, const struct scone_vstat *v, const char *vpath, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = SHIELD_DEV;
	st->st_ino = (ino_t)shield_inode_of(m, v, vpath);
	st->st_mode = (v->is_dir ? S_IFDIR : S_IFREG) | (mode_t)(v->mode & 07777);
	st->st_nlink = v->is_dir ? 2 : 1;
	shield_ids(&st->st_uid, &st->st_gid);
	st->st_size = (off_t)v->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((v->size + 511) / 512);
	st->st_mtim.tv_sec = (time_t)(v->mtime_ns / 1000000000);
	st->st_mtim.tv_nsec = (long)(v->mtime_ns % 1000000000);
	st->st_atim = st->st_mtim; /* the volume keeps no access or change times */
	st->st_ctim = st->st_mtim;
}

int shield_fstat_locked(struct sfd *s, struct stat *st)
{
	struct scone_vstat v;
	enum scone_err err = vop_fstat(s, &v);

	if (err)
		return shield_fail_err(err);
	fill_stat(s->m, &v, s->vpath, st);
	return 0;
}

int fstat(int fd, struct stat *st)
{
	FD_OP(fd, SYS(fstat)(fd, st), fstat, st);
}

int fstat64(int fd, struct stat64 *st)
{
	FD_OP(fd, SYS(fstat64)(fd, st), fstat, (struct stat *)(void *)st);
}

/*
 * glibc before 2.33 exported fstat as these; binaries built then (Node.js
 * from upstream, whose libuv takes a file's size from it before copying)
 * still import them.
 */
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);

int __fxstat(int ver, int fd, struct stat *st)
{
	FD_OP(fd, SYS(__fxstat)(ver, fd, st), fstat, st);
}

int __fxstat64(int ver, int fd, struct stat64 *st)
{
	FD_OP(fd, SYS(__fxstat64)(ver, fd, st), fstat, (struct stat *)(void *)st);
}

int shield_path_stat(struct mount *m, const char *vpath, struct stat *st)
{
	struct scone_vstat v;
	enum scone_err err;
	int r = 0, e = 0;

	shield_enter();
	err = vop_stat(m, vpath, &v);
	if (err)
		r = -1, e = shield_path_errno(m, vpath, err);
	shield_leave();
	if (!err)
		fill_stat(m, &v, vpath, st);
	if (r)
		errno = e;
	return r;
}

bool scone_shield_fstatat(int dirfd, const char *path, struct stat *st, int flags, int *ret)
{
	char vpath[PATH_MAX];
	struct mount *m;

	if (path && !*path && (flags & AT_EMPTY_PATH)) {
		if (!shield_maybe_shielded(dirfd))
			return false;
		*ret = fstat(dirfd, st);
		return true;
	}
	if (!(m = shield_resolve(dirfd, path, vpath)))
		return false;
	*ret = shield_path_stat(m, vpath, st);
	return true;
}

bool scone_shield_statx(int dirfd, const char *path, int flags, struct statx *buf, int *ret)
{
	struct stat st;

	if (!scone_shield_fstatat(dirfd, path, &st, flags, ret))
		return false;
	if (*ret != 0)
		return true;
	memset(buf, 0, sizeof(*buf));
	buf->stx_mask = STATX_BASIC_STATS;
	buf->stx_blksize = (uint32_t)st.st_blksize;
	buf->stx_nlink = (uint32_t)st.st_nlink;
	buf->stx_uid = st.st_uid;
	buf->stx_gid = st.st_gid;
	buf->stx_mode = (uint16_t)st.st_mode;
	buf->stx_ino = st.st_ino;
	buf->stx_size = (uint64_t)st.st_size;
	buf->stx_blocks = (uint64_t)st.st_blocks;
	buf->stx_dev_major = 0;
	buf->stx_dev_minor = SHIELD_DEV;
	buf->stx_mtime =
	    (struct statx_timestamp){.tv_sec = st.st_mtim.tv_sec, .tv_nsec = (uint32_t)st.st_mtim.tv_nsec};
	buf->stx_atime = buf->stx_mtime;
	buf->stx_ctime = buf->stx_mtime;
	return true;
}

bool scone_shield_access(int dirfd, const char *path, int how, int *ret)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);
	struct stat st;

	if (!m)
		return false;
	*ret = shield_path_stat(m, vpath, &st);
	if (*ret == 0 && (how & X_OK) && !(st.st_mode & 0111) && !S_ISDIR(st.st_mode))
		*ret = shield_fail(EACCES);
	return true;
}
