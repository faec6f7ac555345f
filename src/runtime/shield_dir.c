/*
 * shield_dir.c - directory streams and listings on volume directories
 * (opendir, fdopendir, readdir, readdir64, rewinddir, dirfd, closedir,
 * getdents64).
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"
struct sdir {
	struct sdir *next;
	struct dirent64 *ents;
	size_t n, cap, pos;
	int fd;
	const char *vpath; /* while listing */
};

static struct sdir *dirs;
static pthread_mutex_t dirs_lock = PTHREAD_MUTEX_INITIALIZER;

_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64),
	       "struct dirent and dirent64 share a layout here");

static int add_entry(struct sdir *d, const char *name, unsigned char type, uint64_t ino)
{
	size_t len = strlen(name);
	struct dirent64 *e;

	if (len >= sizeof(e->d_name))
		return 1;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct dirent64 *n = realloc(d->ents, cap * sizeof(*n));
		if (!n)
			return 1;
		d->ents = n;
		d->cap = cap;
	}
	e = &d->ents[d->n++];
	memset(e, 0, sizeof(*e));
	e->d_ino = ino ? ino : 1;
	e->d_off = (off64_t)d->n;
	e->d_reclen = sizeof(*e);
	e->d_type = type;
	memcpy(e->d_name, name, len + 1);
	return 0;
}

static int dir_entry(void *arg, const char *name, const struct scone_vstat *st)
{
	struct sdir *d = arg;
	char child[PATH_MAX];

	if ((size_t)snprintf(child, sizeof(child), "%s/%s", strcmp(d->vpath, "/") ? d->vpath : "", name) >=
	    sizeof(child))
		return 1;
	return add_entry(d, name, st->is_dir ? DT_DIR : DT_REG, shield_inode_of(st, child));
}

/* The open streams on volume directories (dirs_lock; taken inside the shield's lock, never around it). */
static void dirs_add(struct sdir *d)
{
	pthread_mutex_lock(&dirs_lock);
	d->next = dirs;
	__atomic_store_n(&dirs, d, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&dirs_lock);
}

static bool is_sdir(const void *p)
{
	if (shield_inside() || !__atomic_load_n(&dirs, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&dirs_lock);
	struct sdir *d = dirs;
	while (d && (const void *)d != p)
		d = d->next;
	pthread_mutex_unlock(&dirs_lock);
	return d != NULL;
}

/* Read vpath's entries into d (lock held); 0 or an errno. */
static int list_locked(struct sdir *d, struct mount *m, const char *vpath)
{
	enum scone_err err = SCONE_ERR_OK;

	d->vpath = vpath;
	if (add_entry(d, ".", DT_DIR, 1) || add_entry(d, "..", DT_DIR, 1) ||
	    (err = vop_readdir(m, vpath, dir_entry, d)) || d->n < 2)
		return err ? scone_err_to_errno(err) : ENOMEM;
	return 0;
}

/*
 * getdents64 on a shielded directory fd (what readdir does inside glibc,
 * and what some programs call directly): records in the kernel's
 * linux_dirent64 layout, the fd's offset counting entries, so lseek to 0
 * starts over. The listing is read afresh at every call.
 */
static ssize_t getdents_locked(int fd, struct sfd *s, void *buf, size_t n)
{
	struct sdir d = {0};
	size_t pos = (size_t)shield_off_get(fd), used = 0;
	int e;

	if (s->file)
		return shield_fail(ENOTDIR);
	if ((e = list_locked(&d, s->m, s->vpath)) != 0) {
		free(d.ents);
		return shield_fail(e);
	}
	for (; pos < d.n; pos++) {
		const struct dirent64 *src = &d.ents[pos];
		size_t len = strlen(src->d_name),
		       rec = (offsetof(struct dirent64, d_name) + len + 1 + 7) & ~(size_t)7;
		struct dirent64 *out = (struct dirent64 *)(void *)((char *)buf + used);
		if (rec > n - used)
			break;
		memset(out, 0, rec);
		out->d_ino = src->d_ino;
		out->d_off = (off64_t)(pos + 1);
		out->d_reclen = (unsigned short)rec;
		out->d_type = src->d_type;
		memcpy(out->d_name, src->d_name, len + 1);
		used += rec;
	}
	free(d.ents);
	if (used == 0 && pos < d.n)
		return shield_fail(EINVAL); /* not even one entry fits */
	shield_off_set(fd, pos);
	return (ssize_t)used;
}

ssize_t getdents64(int fd, void *buf, size_t n)
{
	REAL(getdents64);
	FD_CALL(fd, real_getdents64(fd, buf, n), getdents_locked(fd, s, buf, n));
}

DIR *opendir(const char *path)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(AT_FDCWD, path, vpath);
	REAL(opendir);
	struct sdir *d;
	int fd, e;

	if (!m)
		return real_opendir(path);
	if (!(d = calloc(1, sizeof(*d)))) {
		errno = ENOMEM;
		return NULL;
	}
	shield_enter();
	fd = shield_open_locked(m, vpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	e = errno;
	if (fd >= 0 && (e = list_locked(d, m, vpath)) == 0) {
		d->fd = fd;
		dirs_add(d);
	}
	shield_leave();
	if (fd >= 0 && e) {
		close(fd); /* (the listing failed: the directory's fd goes again) */
		fd = -1;
	}
	if (fd < 0) {
		free(d->ents);
		free(d);
		errno = e;
		return NULL;
	}
	return (DIR *)(void *)d;
}

/* A directory stream on a shielded directory fd; closedir closes fd. */
DIR *fdopendir(int fd)
{
	REAL(fdopendir);
	struct sdir *d;
	struct sfd *s;
	int e = 0;

	if (!shield_maybe_shielded(fd))
		return real_fdopendir(fd);
	if (!(d = calloc(1, sizeof(*d)))) {
		errno = ENOMEM;
		return NULL;
	}
	shield_enter();
	s = shield_fd_entry(fd);
	if (!s)
		e = EBADF;
	else if (s->file)
		e = ENOTDIR;
	else
		e = list_locked(d, s->m, s->vpath);
	if (!e) {
		d->fd = fd;
		dirs_add(d);
	}
	shield_leave();
	if (e) {
		free(d->ents);
		free(d);
		errno = e;
		return NULL;
	}
	return (DIR *)(void *)d;
}

struct dirent64 *readdir64(DIR *dir)
{
	REAL(readdir64);
	struct sdir *d = (struct sdir *)(void *)dir;

	if (!is_sdir(dir))
		return real_readdir64(dir);
	return d->pos < d->n ? &d->ents[d->pos++] : NULL;
}

struct dirent *readdir(DIR *dir)
{
	REAL(readdir);

	if (!is_sdir(dir))
		return real_readdir(dir);
	return (struct dirent *)(void *)readdir64(dir);
}

void rewinddir(DIR *dir)
{
	REAL(rewinddir);

	if (!is_sdir(dir))
		real_rewinddir(dir);
	else
		((struct sdir *)(void *)dir)->pos = 0;
}

int dirfd(DIR *dir)
{
	REAL(dirfd);

	return is_sdir(dir) ? ((struct sdir *)(void *)dir)->fd : real_dirfd(dir);
}

int closedir(DIR *dir)
{
	REAL(closedir);
	struct sdir *d = (struct sdir *)(void *)dir, **pp;

	if (!is_sdir(dir))
		return real_closedir(dir);
	pthread_mutex_lock(&dirs_lock);
	for (pp = &dirs; *pp != d; pp = &(*pp)->next)
		;
	*pp = d->next;
	pthread_mutex_unlock(&dirs_lock);
	close(d->fd);
	free(d->ents);
	free(d);
	return 0;
}
