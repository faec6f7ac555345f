/*
 * shield_dir.c - directory streams and listings on volume directories
 * (opendir, fdopendir, readdir, readdir64, rewinddir, dirfd, closedir,
 * getdents64), and glob through them.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"
struct sdir {
	struct sdir *next;
	struct dirent64 *ents;
	size_t n, cap, pos;
	int fd;
	const char *vpath; /* while listing */
	const struct mount *m;
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
	return add_entry(d, name, st->is_dir ? DT_DIR : DT_REG, shield_inode_of(d->m, st, child));
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
	d->m = m;
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
	uint64_t at;
	size_t pos, used = 0;
	int e;

	if (!shield_off_get(s, fd, &at))
		return -1;
	pos = (size_t)at;
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
	shield_off_set(s, fd, pos);
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

/*
 * scandir on a volume directory (libuv's uv_fs_scandir, Node's
 * fs.readdirSync): glibc's own scandir reads through its internal
 * opendir, which the runtime does not see, so it would list the host
 * directory's ciphertext names. Built here on the interposed opendir and
 * readdir: filter, copies, compar's order, as scandir(3) says.
 */
typedef int (*scandir_filter_fn)(const struct dirent *);
typedef int (*scandir_compar_fn)(const struct dirent **, const struct dirent **);
static _Thread_local scandir_compar_fn scan_compar;

static int scan_compare(const void *a, const void *b)
{
	return scan_compar((const struct dirent **)a, (const struct dirent **)b);
}

static void scan_free(struct dirent **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

static int scan_volume_dir(const char *path, struct dirent ***out, scandir_filter_fn filter,
			   scandir_compar_fn compar)
{
	struct dirent **list = NULL, *e;
	size_t n = 0, cap = 0;
	DIR *dir = opendir(path);

	if (!dir)
		return -1;
	while ((e = readdir(dir))) {
		struct dirent *copy;
		if (filter && !filter(e))
			continue;
		if (n == cap) {
			struct dirent **grown = realloc(list, (cap ? cap * 2 : 16) * sizeof(*list));
			if (!grown)
				goto nomem;
			list = grown;
			cap = cap ? cap * 2 : 16;
		}
		if (!(copy = malloc(sizeof(*copy))))
			goto nomem;
		memcpy(copy, e, sizeof(*copy)); /* the listing's entries are whole struct dirent64s */
		list[n++] = copy;
	}
	closedir(dir);
	if (compar && n > 1) {
		scan_compar = compar;
		qsort(list, n, sizeof(*list), scan_compare);
	}
	*out = list;
	return (int)n;
nomem:
	closedir(dir);
	scan_free(list, n);
	errno = ENOMEM;
	return -1;
}

int scandir(const char *path, struct dirent ***out, scandir_filter_fn filter, scandir_compar_fn compar)
{
	char vpath[PATH_MAX];
	REAL(scandir);

	if (!shield_resolve(AT_FDCWD, path, vpath))
		return real_scandir(path, out, filter, compar);
	return scan_volume_dir(path, out, filter, compar);
}

/* struct dirent64 and struct dirent are the same on the 64-bit targets the runtime builds for. */
_Static_assert(sizeof(struct dirent64) == sizeof(struct dirent), "dirent64 layout");

int scandir64(const char *path, struct dirent64 ***out, int (*filter)(const struct dirent64 *),
	      int (*compar)(const struct dirent64 **, const struct dirent64 **))
{
	char vpath[PATH_MAX];
	REAL(scandir64);

	if (!shield_resolve(AT_FDCWD, path, vpath))
		return real_scandir64(path, out, filter, compar);
	return scan_volume_dir(path, (struct dirent ***)(void *)out, (scandir_filter_fn)(void *)filter,
			       (scandir_compar_fn)(void *)compar);
}

/*
 * glob lists directories through libc's own opendir and readdir, which no
 * interposer sees: a pattern under a volume would list the host directory
 * (file ids) or nothing (nginx's include of a wildcard). Unless the caller
 * brings its own (GLOB_ALTDIRFUNC), glob lists through the runtime's, which
 * pass other directories through; the caller's glob_t gets its own fields
 * and flags back.
 */
#define GLOB_THROUGH_RUNTIME(real, g, readdir_fn, stat_fn, lstat_fn)                                         \
	do {                                                                                                 \
		__typeof__(*(g)) saved_;                                                                     \
		int r_;                                                                                      \
		if (!(g) || (flags & GLOB_ALTDIRFUNC) || scone_shield_count() == 0 || shield_inside())       \
			return real(pattern, flags, errfunc, g);                                             \
		saved_ = *(g);                                                                               \
		(g)->gl_opendir = glob_opendir;                                                              \
		(g)->gl_readdir = readdir_fn;                                                                \
		(g)->gl_closedir = glob_closedir;                                                            \
		(g)->gl_stat = stat_fn;                                                                      \
		(g)->gl_lstat = lstat_fn;                                                                    \
		r_ = real(pattern, flags | GLOB_ALTDIRFUNC, errfunc, g);                                     \
		(g)->gl_opendir = saved_.gl_opendir;                                                         \
		(g)->gl_readdir = saved_.gl_readdir;                                                         \
		(g)->gl_closedir = saved_.gl_closedir;                                                       \
		(g)->gl_stat = saved_.gl_stat;                                                               \
		(g)->gl_lstat = saved_.gl_lstat;                                                             \
		(g)->gl_flags &= ~GLOB_ALTDIRFUNC;                                                           \
		return r_;                                                                                   \
	} while (0)

static void *glob_opendir(const char *path)
{
	return opendir(path);
}

static struct dirent *glob_readdir(void *dir)
{
	return readdir(dir);
}

static struct dirent64 *glob_readdir64(void *dir)
{
	return readdir64(dir);
}

static void glob_closedir(void *dir)
{
	(void)closedir(dir);
}

int glob(const char *pattern, int flags, int (*errfunc)(const char *, int), glob_t *g)
{
	GLOB_THROUGH_RUNTIME(SYS(glob), g, glob_readdir, stat, lstat);
}

int glob64(const char *pattern, int flags, int (*errfunc)(const char *, int), glob64_t *g)
{
	GLOB_THROUGH_RUNTIME(SYS(glob64), g, glob_readdir64, stat64, lstat64);
}
