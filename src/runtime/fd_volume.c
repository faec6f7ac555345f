/*
 * fd_volume.c - the fd kind of a volume's files and directories: opening
 * them (a placeholder memfd with an entry in the fd table), their bytes
 * (read, write, the positioned and vectored forms, lseek, ftruncate,
 * fallocate, fsync as a sync point), record locks (fcntl locks and flock
 * through the volume's lock file), their fcntl flags, and the release of
 * their last hold. Every operation runs under the shield's lock; the file
 * offset lives in the placeholder's kernel description, so dup'ed fds,
 * forked children and exec'd programs share it as with a kernel file.
 * The interposers that reach these are in io_rw.c, io_file.c and io_fd.c.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

#include <sys/resource.h>

#include "lib/log.h"

/* ---- open and close ---- */

unsigned shield_vf_flags(int flags)
{
	int acc = flags & O_ACCMODE;
	unsigned vf = acc == O_WRONLY ? SCONE_VF_WRONLY : acc == O_RDWR ? SCONE_VF_RDWR : SCONE_VF_RDONLY;

	vf |= (flags & O_CREAT) ? SCONE_VF_CREAT : 0;
	vf |= (flags & O_CREAT) && (flags & O_EXCL) ? SCONE_VF_EXCL : 0;
	vf |= (flags & O_TRUNC) && acc != O_RDONLY ? SCONE_VF_TRUNC : 0;
	vf |= (flags & O_APPEND) ? SCONE_VF_APPEND : 0;
	return vf;
}

/*
 * The lowest number of the runtime's own fds: the upper half of the fd
 * limit, out of the program's way (3 under a limit below 16). Computed
 * again after the program changes its limit (io_fd.c: setrlimit, prlimit).
 */
static int g_floor;

int shield_own_fd_floor(void)
{
	int low = __atomic_load_n(&g_floor, __ATOMIC_ACQUIRE);
	struct rlimit rl;

	if (!low) {
		low = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= 16
			  ? (int)(rl.rlim_cur < 1u << 20 ? rl.rlim_cur / 2 : 1u << 19)
			  : 3;
		__atomic_store_n(&g_floor, low, __ATOMIC_RELEASE);
	}
	return low;
}

void shield_own_fd_limit_changed(void)
{
	__atomic_store_n(&g_floor, 0, __ATOMIC_RELEASE);
}

/* A fresh kernel fd for a shielded file: an empty, sealed memfd. */
static int reserve_fd(int flags)
{
	int fd =
	    memfd_create(SHIELD_PLACEHOLDER, MFD_ALLOW_SEALING | ((flags & O_CLOEXEC) ? MFD_CLOEXEC : 0));

	if (fd < 0)
		return -1;
	if (SYS(fcntl)(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
		int e = errno;
		SYS(close)(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/*
 * Placeholders kept for reuse (lock held). A description's placeholder has
 * a second fd, the runtime's own, in the upper half of the fd limit (its
 * master: the offset goes through it, see off_fd). When the description's
 * last fd is closed, the master goes here if nothing the runtime saw
 * changed the placeholder's kernel description (its offset or status
 * flags) or handed it to another process, and the next open makes the
 * program's fd as a dup of it: one system call, where a new placeholder
 * costs three (memfd_create, the seals, the fstat for its identity) and a
 * heavier close. Each placeholder belongs to one description at a time,
 * so identity checks by inode stay as strong as with a new one for every
 * open. Whatever lets another process hold the descriptions then alive (a
 * fork, a vfork, a spawn, a clone, a raw fork) bumps pool_gen: none of them
 * comes back here; a fork child closes the pool it inherited. Masters cost
 * fds: they are made only while the program uses less than a quarter of
 * its limit, and the pool is let go when an open meets EMFILE.
 */
#define POOL_CAP 64 /* and at most a 32nd of the fd limit */
static struct placeholder {
	int fd; /* the master */
	dev_t dev;
	ino_t ino;
} pool[POOL_CAP];
static size_t pool_n;
static unsigned pool_gen = 1; /* (atomic: bumped without the lock, by the spawn and clone paths too) */
static int spawns;	      /* spawns under way (atomic): what is released meanwhile is not kept */

/* Is there room for a master beside the program's fd (a quarter of the limit, and a limit of 64 or more)? */
static bool room_for_master(int fd)
{
	int high = shield_own_fd_floor();

	return high > 3 && fd < high / 2;
}

/* How many masters the pool keeps: a 32nd of the fd limit, at most POOL_CAP. */
static size_t pool_cap(void)
{
	size_t n = (size_t)shield_own_fd_floor() / 16;

	return n < POOL_CAP ? n : POOL_CAP;
}

void shield_placeholders_drain(void)
{
	while (pool_n > 0)
		(void)shield_own_close(pool[--pool_n].fd);
}

/* The program's fd for s: a pooled placeholder's dup, or a new one with its master. */
static int placeholder_open(struct sfd *s, int flags)
{
	/* (read before any fd is made: a clone on another thread meanwhile makes it old) */
	unsigned gen = __atomic_load_n(&pool_gen, __ATOMIC_ACQUIRE);
	int fd, master;

	if (pool_n > 0) {
		struct placeholder *p = &pool[pool_n - 1];
		fd = SYS(fcntl)(p->fd, (flags & O_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
		if (fd >= 0) {
			pool_n--;
			s->base.dev = p->dev;
			s->base.ino = p->ino;
			s->off_fd = p->fd + 1;
			s->ph_gen = room_for_master(fd) ? gen : 0;
			if (!s->ph_gen) /* (fds run short: what the pool holds goes back to the program) */
				shield_placeholders_drain();
			return fd;
		}
		if (errno != EMFILE)
			return -1;
		shield_placeholders_drain(); /* (then a new placeholder, in the room that made) */
	}
	if ((fd = reserve_fd(flags)) < 0)
		return -1;
	if (!fdtab_note(&s->base, fd)) {
		int e = errno;
		SYS(close)(fd);
		errno = e;
		return -1;
	}
	/* (no room: no master, the offset's dup is made when first needed, and never kept) */
	if (room_for_master(fd) && (master = SYS(fcntl)(fd, F_DUPFD_CLOEXEC, shield_own_fd_floor())) >= 0) {
		shield_own_mark(master, true);
		s->off_fd = master + 1;
		s->ph_gen = gen;
	}
	return fd;
}

/* s's master at its release (lock held): kept for the next open, or closed. */
static void placeholder_release(struct sfd *s)
{
	int master = s->off_fd - 1;

	/* (the master is the runtime's own: close and close_range step around it) */
	if (s->ph_gen == __atomic_load_n(&pool_gen, __ATOMIC_ACQUIRE) &&
	    !__atomic_load_n(&s->ph_moved, __ATOMIC_RELAXED) && !__atomic_load_n(&spawns, __ATOMIC_ACQUIRE) &&
	    pool_n < pool_cap()) {
		pool[pool_n++] = (struct placeholder){.fd = master, .dev = s->base.dev, .ino = s->base.ino};
		return;
	}
	(void)shield_own_close(master);
}

void scone_shield_placeholders_shared(void)
{
	__atomic_add_fetch(&pool_gen, 1, __ATOMIC_ACQ_REL);
}

void scone_shield_spawn_window(bool open)
{
	/* a child on its way: the server's thread answers it (a vfork child cannot start one or elect) */
	if (open)
		vsrv_ensure_server();
	if (open && vsrv_serving_start())
		scone_err_clear(); /* its connection is refused, and it says so */
	__atomic_add_fetch(&spawns, open ? 1 : -1, __ATOMIC_ACQ_REL);
	scone_shield_placeholders_shared();
}

void shield_placeholders_forked(bool child)
{
	scone_shield_placeholders_shared();
	if (!child)
		return;
	shield_placeholders_drain();
	/* (the parent's other threads' spawns are not the child's) */
	__atomic_store_n(&spawns, 0, __ATOMIC_RELEASE);
}

/*
 * The kept placeholders are the runtime's own fds, taken back when the
 * program needs the numbers or the room. Never from a signal handler that
 * interrupted this thread's own shield call (the caller does without). In
 * a vfork child only its own copy is at stake: the pool (its parent's
 * memory) is only read, and left as it is.
 */
bool scone_shield_pool_evict(int fd)
{
	bool found = false;

	if (scone_shield_count() == 0)
		return false;
	if (fdtab_foreign()) {
		size_t n = __atomic_load_n(&pool_n, __ATOMIC_ACQUIRE);
		for (size_t i = 0; i < n && i < POOL_CAP && !found; i++)
			found = __atomic_load_n(&pool[i].fd, __ATOMIC_RELAXED) == fd;
		return found;
	}
	if (!shield_enter_unless_mine())
		return false;
	for (size_t i = 0; i < pool_n && !found; i++) {
		if (pool[i].fd != fd)
			continue;
		pool[i] = pool[--pool_n];
		/* (left open: the caller's dup2 replaces it, no other open can take it) */
		shield_own_mark(fd, false);
		found = true;
	}
	shield_leave();
	return found;
}

bool scone_shield_pool_release_fds(void)
{
	bool had;

	if (scone_shield_count() == 0 || fdtab_foreign() || !shield_enter_unless_mine())
		return false;
	had = pool_n > 0;
	shield_placeholders_drain();
	shield_leave();
	return had;
}

void scone_shield_fd_shared(int fd)
{
	struct fd_desc *d;

	if (!shield_maybe_shielded(fd) || !(d = fdtab_get(fd)))
		return;
	if (d->kind == &shield_volume_kind) {
		__atomic_store_n(&((struct sfd *)d)->ph_moved, true, __ATOMIC_RELAXED);
		__atomic_store_n(&((struct sfd *)d)->sent, true, __ATOMIC_RELAXED);
	}
	(void)fdtab_put(d);
}

/* Open vpath of m; the lock is held. Returns the fd or -1 with errno set. */
int shield_open_locked(struct mount *m, const char *vpath, int flags, mode_t mode)
{
	int acc = flags & O_ACCMODE;
	struct scone_vstat st;
	struct sfd *s;
	enum scone_err err;
	bool opened;
	int fd, v;

	/*
	 * A vfork child: its memory is its parent's, its fds are not. What it
	 * opened would be recorded in the parent (the volume library's host
	 * files, the table) under numbers that are other files there.
	 */
	if (fdtab_foreign())
		return shield_fail(ENOTSUP);
	if (flags & O_DIRECT)
		return shield_fail(EINVAL);
	if ((flags & O_TMPFILE) == O_TMPFILE)
		return shield_fail(EOPNOTSUPP);
	if (!(s = calloc(1, sizeof(*s))))
		return shield_fail(ENOMEM);
	s->m = m;
	s->flags = flags;
	snprintf(s->vpath, sizeof(s->vpath), "%s", vpath);
	if (flags & O_CREAT) /* (as the kernel: the umask off the mode of what it creates) */
		mode &= ~shield_umask();
	if ((err = vop_open_path(s, vpath, flags, (uint32_t)(mode & 07777), &st, &opened))) {
		free(s);
		return shield_fail(shield_path_errno(m, vpath, err));
	}
	if (!opened && (v = vop_open_verdict(SCONE_ERR_OK, &st, flags)) != VOP_OPEN_DIR) {
		free(s);
		return shield_fail(v);
	}
	if (opened && ((flags & O_CREAT) || ((flags & O_TRUNC) && acc != O_RDONLY)))
		shield_mark_dirty(m);
	fdtab_desc_init(&s->base, &shield_volume_kind);
	if ((fd = placeholder_open(s, flags)) < 0 || !fdtab_install(fd, &s->base)) {
		int e = errno;
		vop_close(s);
		if (fd >= 0)
			SYS(close)(fd);
		if (s->off_fd)
			placeholder_release(s);
		free(s);
		return shield_fail(e);
	}
	m->open_count++;
	return fd;
}

bool scone_shield_openat(int dirfd, const char *path, int flags, mode_t mode, int *ret)
{
	char vpath[PATH_MAX];
	struct mount *m = shield_resolve(dirfd, path, vpath);
	int r, e;

	if (!m)
		return false;
	shield_enter();
	r = shield_open_locked(m, vpath, flags, mode);
	e = errno;
	shield_leave();
	fdtab_reap();
	if (r < 0)
		errno = e;
	*ret = r;
	return true;
}

/* glibc's creat calls its internal open, not the exported one. */
int creat(const char *path, mode_t mode)
{
	return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int creat64(const char *path, mode_t mode)
{
	return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* ---- data (lock held) ---- */

static ssize_t pread_locked(struct sfd *s, void *buf, size_t n, uint64_t off)
{
	enum scone_err err;
	size_t got = 0;

	if (!s->file)
		return shield_fail(EISDIR);
	if ((s->flags & O_ACCMODE) == O_WRONLY)
		return shield_fail(EBADF);
	if ((err = vop_pread(s, buf, n, off, &got)))
		return shield_fail_err(err);
	return (ssize_t)got;
}

/*
 * The file offset lives in the kernel, in the placeholder's open file
 * description: dup'ed fds, forked children and exec'd programs share it
 * exactly as they would a kernel file's.
 */
/*
 * The fd the offset goes through: s's own dup of its placeholder (the same
 * kernel description), made at the first offset call and checked to be
 * the placeholder, so that a number another thread closes and the kernel
 * gives to a new file never has its offset taken or moved for s. fd itself
 * where no dup can be made (EMFILE); -1 (EBADF) when fd was closed already.
 */
static int off_fd(struct sfd *s, int fd)
{
	int d;

	if (s->off_fd)
		return s->off_fd - 1;
	if (fdtab_foreign())
		return fd; /* a vfork child: a dup of its own would be recorded in its parent's memory */
	if ((d = SYS(fcntl)(fd, F_DUPFD_CLOEXEC, shield_own_fd_floor())) < 0 &&
	    (errno == EMFILE || errno == EINVAL))
		d = SYS(fcntl)(fd, F_DUPFD_CLOEXEC, 3);
	if (d < 0)
		return errno == EBADF ? -1 : fd;
	if (!fdtab_is(d, &s->base)) {
		SYS(close)(d);
		errno = EBADF;
		return -1;
	}
	shield_own_mark(d, true);
	s->off_fd = d + 1;
	return d;
}

/*
 * Only this process holds s's description: its placeholder was made or
 * taken from the pool since the last fork, spawn, vfork, clone or raw fork
 * (pool_gen), and the fd was not sent over a socket. Then the offset moves
 * only through this process's calls, under the lock, and s->off can stand
 * for the kernel's (lseek(SEEK_END) on a file of unchanged size, as
 * PostgreSQL asks twice a query, costs no system call for the offset).
 * (Raw lseek on the number, and pidfd_getfd by another process, are not
 * seen: docs/runtime.md.)
 */
static bool off_private(const struct sfd *s)
{
	/* (within a spawn window a description made after its start may be the child's too) */
	return s->ph_gen && s->ph_gen == __atomic_load_n(&pool_gen, __ATOMIC_ACQUIRE) &&
	       !__atomic_load_n(&spawns, __ATOMIC_ACQUIRE) && !__atomic_load_n(&s->sent, __ATOMIC_RELAXED) &&
	       !fdtab_foreign();
}

bool shield_off_get(struct sfd *s, int fd, uint64_t *off)
{
	REAL(lseek64);
	bool private = off_private(s);
	int via;
	off64_t o;

	if (private && s->off_known) {
		*off = s->off;
		return true;
	}
	via = off_fd(s, fd);
	o = via < 0 ? -1 : real_lseek64(via, 0, SEEK_CUR);
	/* (failing: the fd was closed by another thread since its lookup; never take 0 for it) */
	*off = o < 0 ? 0 : (uint64_t)o;
	s->off_known = private && o >= 0;
	s->off = *off;
	return o >= 0;
}

void shield_off_set(struct sfd *s, int fd, uint64_t off)
{
	REAL(lseek64);
	bool private = off_private(s), moved;
	int via;

	__atomic_store_n(&s->ph_moved, true, __ATOMIC_RELAXED); /* (its placeholder is not reused) */
	if (private && s->off_known && s->off == off)
		return;
	via = off_fd(s, fd);
	moved = via >= 0 && real_lseek64(via, (off64_t)off, SEEK_SET) == (off64_t)off;
	s->off_known = private && moved;
	s->off = off;
}

/*
 * lseek(SET, CUR or END) on a private offset that lands where the offset
 * already is (PostgreSQL's lseek(SEEK_END) twice a query on a relation
 * whose size did not change): answered from the entry, *done set. No
 * identity check (an fstat), as the call reaches neither the kernel's fd
 * nor any data: were the number closed behind the runtime and reused, this
 * one answer would be the volume file's, and the next call that reads,
 * writes or moves anything checks and finds the kernel's file. Anything
 * else goes the checked way (*done false).
 */
int64_t shield_lseek_kept(int fd, int64_t off, int whence, bool *done)
{
	struct fd_desc *d;
	int64_t r = -1;

	*done = false;
	if ((whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) || !shield_maybe_shielded(fd) ||
	    !(d = fdtab_hold(fd)))
		return -1;
	if (d->kind == &shield_volume_kind) {
		struct sfd *s = (struct sfd *)d;
		struct scone_vstat st = {0};
		int64_t base = -1;
		shield_enter();
		if (!s->stale && s->file && s->off_known && off_private(s)) {
			if (whence == SEEK_SET)
				base = 0;
			else if (whence == SEEK_CUR)
				base = (int64_t)s->off;
			else if (vop_fstat(s, &st) == SCONE_ERR_OK && st.size <= INT64_MAX)
				base = (int64_t)st.size;
			scone_err_clear();
		}
		if (base >= 0 && !(off > 0 && base > INT64_MAX - off) && base + off == (int64_t)s->off) {
			r = base + off;
			*done = true;
		}
		shield_leave();
	}
	(void)fdtab_put(d);
	return r;
}

/*
 * O_SYNC and O_DSYNC: the write is durable when it returns (the volume is
 * committed, its tag reported), as the kernel's synchronous I/O. A failed
 * commit is the write's EIO, as there.
 */
static ssize_t sync_write(struct sfd *s, ssize_t written)
{
	if (written <= 0 || !(s->flags & O_DSYNC)) /* O_SYNC includes O_DSYNC's bit */
		return written;
	return shield_commit(s->m) ? shield_fail(EIO) : written;
}

/*
 * A write at off, or at the end (append: the offset then moves past it). A
 * write that fails after part of it is in the file returns that part, as
 * write(2) does after a partial transfer; the next call meets the error.
 */
static ssize_t pwrite_locked(int fd, struct sfd *s, const void *buf, size_t n, uint64_t off, bool append)
{
	enum scone_err err;
	size_t written;

	if (!s->file || (s->flags & O_ACCMODE) == O_RDONLY)
		return shield_fail(EBADF);
	if (n == 0)
		return 0;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	shield_mark_dirty(s->m);
	if (append) {
		uint64_t at;
		err = vop_append(s, buf, n, &at, &written);
		if (err && !written)
			return shield_fail_err(err);
		scone_err_clear();
		shield_off_set(s, fd, at + written);
		return sync_write(s, (ssize_t)written);
	}
	err = vop_pwrite(s, buf, n, off, &written);
	if (err && !written)
		return shield_fail_err(err);
	scone_err_clear();
	return sync_write(s, (ssize_t)written);
}

static ssize_t read_locked(int fd, struct sfd *s, void *buf, size_t n)
{
	uint64_t off;
	ssize_t r;

	if (!shield_off_get(s, fd, &off))
		return -1;
	r = pread_locked(s, buf, n, off);
	if (r > 0)
		shield_off_set(s, fd, off + (uint64_t)r);
	return r;
}

static ssize_t write_locked(int fd, struct sfd *s, const void *buf, size_t n)
{
	bool append = (s->flags & O_APPEND) != 0;
	uint64_t off = 0;
	ssize_t r;

	if (!append && !shield_off_get(s, fd, &off))
		return -1;
	r = pwrite_locked(fd, s, buf, n, off, append);
	if (r > 0 && !append)
		shield_off_set(s, fd, off + (uint64_t)r);
	return r;
}

static off64_t lseek_locked(int fd, struct sfd *s, off64_t off, int whence)
{
	struct scone_vstat st = {0};
	enum scone_err err;
	int64_t base;

	if (s->file && (whence == SEEK_END || whence == SEEK_DATA || whence == SEEK_HOLE) &&
	    (err = vop_fstat(s, &st)))
		return shield_fail_err(err);
	switch (whence) {
	case SEEK_SET:
		base = 0;
		break;
	case SEEK_CUR: {
		uint64_t cur;
		if (!shield_off_get(s, fd, &cur))
			return -1;
		base = (int64_t)cur;
		break;
	}
	case SEEK_END:
		base = (int64_t)st.size;
		break;
	case SEEK_DATA:
	case SEEK_HOLE:
		if (off < 0 || (uint64_t)off >= st.size)
			return shield_fail(ENXIO);
		base = 0;
		if (whence == SEEK_HOLE)
			off = (off64_t)st.size;
		break;
	default:
		return shield_fail(EINVAL);
	}
	if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
		return shield_fail(base + off < 0 ? EINVAL : EOVERFLOW);
	shield_off_set(s, fd, (uint64_t)(base + off));
	return base + off;
}

static int ftruncate_locked(struct sfd *s, off64_t len)
{
	enum scone_err err;

	if (len < 0 || !s->file || (s->flags & O_ACCMODE) == O_RDONLY)
		return shield_fail(EINVAL);
	shield_mark_dirty(s->m);
	if ((err = vop_ftruncate(s, (uint64_t)len)))
		return shield_fail_err(err);
	return 0;
}

/*
 * fallocate on a shielded file: a volume allocates nothing ahead, so
 * reserving space is extending the file with zeros (mode 0) or nothing at
 * all (FALLOC_FL_KEEP_SIZE). Punching holes, zeroing, collapsing and
 * inserting ranges are EOPNOTSUPP, which programs take as "not supported
 * here" (InnoDB, PostgreSQL fall back to writing zeros).
 */
static int fallocate_locked(struct sfd *s, int mode, off64_t off, off64_t len)
{
	struct scone_vstat st;
	enum scone_err err;
	uint64_t end;

	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return shield_fail(EOPNOTSUPP);
	if (off < 0 || len <= 0)
		return shield_fail(EINVAL);
	if (!s->file)
		return shield_fail(EISDIR);
	if ((s->flags & O_ACCMODE) == O_RDONLY)
		return shield_fail(EBADF);
	if ((uint64_t)off > INT64_MAX - (uint64_t)len)
		return shield_fail(EFBIG);
	end = (uint64_t)off + (uint64_t)len;
	if ((err = vop_fstat(s, &st)))
		return shield_fail_err(err);
	if ((mode & FALLOC_FL_KEEP_SIZE) || end <= st.size)
		return 0;
	shield_mark_dirty(s->m);
	if ((err = vop_ftruncate(s, end)))
		return shield_fail_err(err);
	return 0;
}

/*
 * A sync point. The server may die before or while it commits (the commit
 * is then asked of the next one): if writes it had acknowledged for this
 * file (from any process) were lost with it, fsync says so, once, as a
 * kernel reports a failed writeback once per description that was open,
 * and once to a later one if nobody has reported it yet.
 */
static int fsync_locked(struct sfd *s)
{
	enum scone_err err = s->lost ? SCONE_ERR_OK : shield_commit(s->m);

	/* (a loss is reported once to a description opened after it; commit first: it may find one) */
	if ((vsrv_file_loss_unseen(s->m, s->vpath) || s->lost) && s->file) {
		s->lost = false;
		scone_warn("volume %s: %s: the process serving the volume died before committing writes to "
			   "this file: they are lost, and fsync reports EIO",
			   s->m->name, s->vpath);
		return shield_fail(EIO);
	}
	if (err)
		return shield_fail(EIO);
	return 0;
}

/* ---- vectored I/O ---- */

/* Check the vector like the kernel: EINVAL for a bad count or a total past SSIZE_MAX. */
static int iov_check(const struct iovec *iov, int cnt)
{
	size_t total = 0;

	if (cnt < 0 || cnt > IOV_MAX)
		return shield_fail(EINVAL);
	for (int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
			return shield_fail(EINVAL);
		total += iov[i].iov_len;
	}
	return 0;
}

/*
 * readv/writev and friends, one buffer after the other (lock held): at the
 * file offset when at is NULL (and move it), else at *at. Stops at the first
 * short transfer; an error after some bytes returns the bytes.
 */
static ssize_t iov_locked(int fd, struct sfd *s, const struct iovec *iov, int cnt, const uint64_t *at,
			  bool wr)
{
	ssize_t total = 0, r;

	if (iov_check(iov, cnt) != 0)
		return -1;
	if (!s->file)
		return shield_fail(wr ? EBADF : EISDIR);
	if ((s->flags & O_ACCMODE) == (wr ? O_RDONLY : O_WRONLY))
		return shield_fail(EBADF);
	for (int i = 0; i < cnt; i++) {
		void *b = iov[i].iov_base;
		size_t n = iov[i].iov_len;
		if (n == 0)
			continue;
		if (!at)
			r = wr ? write_locked(fd, s, b, n) : read_locked(fd, s, b, n);
		else if (wr)
			r = pwrite_locked(fd, s, b, n, *at + (uint64_t)total, false);
		else
			r = pread_locked(s, b, n, *at + (uint64_t)total);
		if (r < 0)
			return total > 0 ? total : -1;
		total += r;
		if ((size_t)r < n)
			break;
	}
	return total;
}

/* ---- record locks (fcntl) ---- */

/*
 * A shielded file's record locks are taken on PATH/volume.fspf.lock, so that
 * every open of the file, in every process, meets the same locks as on a
 * kernel file: each file gets a slot of 2^40 bytes there (by its file id),
 * plaintext offsets map into it. POSIX locks (owned by the process) go
 * through one description per mount; OFD locks through one per open file
 * description (inherited by fork like the real one). Two files sharing a
 * slot (ids equal modulo 2^22) would see each other's locks: rare, harmless
 * beyond a spurious wait.
 */
#define LOCK_SLOT_BITS 40
#define LOCK_SLOT ((int64_t)1 << LOCK_SLOT_BITS)
#define LOCK_SLOTS ((uint64_t)1 << 22)

static int lock_file(const struct mount *m, int flags)
{
	REAL(open);
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s.lock", m->fspf); /* the volume library leaves names after its fspf alone */
	return shield_own_up(real_open(p, O_RDWR | O_CREAT | O_CLOEXEC | flags, 0600));
}

/* The start of s's slot: by the inode number stat reports (a file's id, a directory's path hash). */
static int64_t lock_base(const struct sfd *s)
{
	struct scone_vstat st = {0};

	if (s->file && vop_fstat(s, &st) != SCONE_ERR_OK)
		memset(&st, 0, sizeof(st));
	return (int64_t)(shield_inode_of(s->m, &st, s->vpath) % LOCK_SLOTS) << LOCK_SLOT_BITS;
}

/* POSIX semantics: closing any fd of a file drops the process's locks on it. */
static void locks_on_close(struct sfd *s)
{
	REAL(fcntl);
	struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET};

	if (s->m->plock_fd < 0)
		return;
	fl.l_start = lock_base(s);
	fl.l_len = LOCK_SLOT;
	(void)real_fcntl(s->m->plock_fd, F_SETLK, &fl);
}

/*
 * Translate fl (on fd, lock held) into the lock file: *lfd and *k to use,
 * *base to translate an F_GETLK answer back. 0, or -1 with errno.
 */
static int lock_map(int fd, struct sfd *s, int cmd, const struct flock *fl, int *lfd, struct flock *k,
		    int64_t *base)
{
	struct scone_vstat st = {0};
	int64_t start = fl->l_start, len = fl->l_len;
	bool ofd = cmd == F_OFD_SETLK || cmd == F_OFD_SETLKW || cmd == F_OFD_GETLK;
	uint64_t cur;

	if (fl->l_whence == SEEK_CUR) {
		if (!shield_off_get(s, fd, &cur))
			return -1;
		start += (int64_t)cur;
	} else if (fl->l_whence == SEEK_END && s->file && vop_fstat(s, &st) == SCONE_ERR_OK)
		start += (int64_t)st.size;
	else if (fl->l_whence != SEEK_SET && fl->l_whence != SEEK_END)
		return shield_fail(EINVAL);
	if (len < 0) {
		start += len;
		len = -len;
	}
	if (start < 0)
		return shield_fail(EINVAL);
	if (start >= LOCK_SLOT)
		return shield_fail(EOVERFLOW);
	if (len == 0 || len > LOCK_SLOT - start)
		len = LOCK_SLOT - start;
	if (ofd && !s->ofd_lock) {
		int f = lock_file(s->m, 0);
		if (f < 0)
			return -1;
		s->ofd_lock = f + 1;
	}
	if (!ofd && s->m->plock_fd < 0 && (s->m->plock_fd = lock_file(s->m, 0)) < 0)
		return -1;
	*lfd = ofd ? s->ofd_lock - 1 : s->m->plock_fd;
	*base = lock_base(s);
	*k = *fl;
	k->l_whence = SEEK_SET;
	k->l_start = *base + start;
	k->l_len = len;
	return 0;
}

static bool lock_cmd(int cmd)
{
	return cmd == F_SETLK || cmd == F_SETLKW || cmd == F_GETLK || cmd == F_OFD_SETLK ||
	       cmd == F_OFD_SETLKW || cmd == F_OFD_GETLK;
}

/*
 * Release fd's entry; the lock is held. The kernel fd stays open. The open
 * file description goes with its last fd.
 */

/* ---- the kind ---- */

/* Run body for the volume description d under the lock; a stale file fails first (ESTALE). */
#define VOLUME_OP(d, body)                                                                                   \
	do {                                                                                                 \
		struct sfd *s = (struct sfd *)(d);                                                           \
		ssize_t r_;                                                                                  \
		int e_;                                                                                      \
		shield_enter();                                                                              \
		r_ = s->stale ? shield_fail(ESTALE) : (body);                                                \
		e_ = errno;                                                                                  \
		shield_leave();                                                                              \
		if (r_ < 0)                                                                                  \
			errno = e_;                                                                          \
		return r_;                                                                                   \
	} while (0)

static ssize_t v_read(struct fd_desc *d, int fd, void *buf, size_t n)
{
	VOLUME_OP(d, read_locked(fd, s, buf, n));
}

static ssize_t v_write(struct fd_desc *d, int fd, const void *buf, size_t n)
{
	VOLUME_OP(d, write_locked(fd, s, buf, n));
}

static ssize_t v_pread(struct fd_desc *d, void *buf, size_t n, int64_t off)
{
	VOLUME_OP(d, off < 0 ? shield_fail(EINVAL) : pread_locked(s, buf, n, (uint64_t)off));
}

static ssize_t v_pwrite(struct fd_desc *d, int fd, const void *buf, size_t n, int64_t off)
{
	VOLUME_OP(d, off < 0 ? shield_fail(EINVAL) : pwrite_locked(fd, s, buf, n, (uint64_t)off, false));
}

static ssize_t v_iov(struct fd_desc *d, int fd, const struct iovec *iov, int cnt, const int64_t *at, bool wr)
{
	uint64_t pos = at ? (uint64_t)*at : 0;

	VOLUME_OP(d, at && *at < 0 ? shield_fail(EINVAL) : iov_locked(fd, s, iov, cnt, at ? &pos : NULL, wr));
}

static int64_t v_lseek(struct fd_desc *d, int fd, int64_t off, int whence)
{
	VOLUME_OP(d, lseek_locked(fd, s, off, whence));
}

static int v_ftruncate(struct fd_desc *d, int64_t len)
{
	VOLUME_OP(d, ftruncate_locked(s, len));
}

static int v_fallocate(struct fd_desc *d, int mode, int64_t off, int64_t len)
{
	VOLUME_OP(d, fallocate_locked(s, mode, off, len));
}

static int v_fsync(struct fd_desc *d)
{
	VOLUME_OP(d, fsync_locked(s));
}

static int v_fstat(struct fd_desc *d, struct stat *st)
{
	VOLUME_OP(d, shield_fstat_locked(s, st));
}

/* The status flags F_GETFL reports and the ones F_SETFL may change (as the kernel). */
#define GETFL_MASK (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_NOATIME | O_PATH)
#define SETFL_MASK (O_APPEND | O_NONBLOCK)

/* A record lock: translated into the lock file under the lock, waited for without it. */
static int v_lock(struct sfd *s, int fd, int cmd, struct flock *fl)
{
	struct flock k;
	int64_t base = 0;
	int lfd = -1, r, e;

	shield_enter();
	r = lock_map(fd, s, cmd, fl, &lfd, &k, &base);
	e = errno;
	shield_leave();
	if (r != 0) {
		errno = e;
		return -1;
	}
	/* A waiting lock must not hold the shield: other threads go on. */
	if ((r = SYS(fcntl)(lfd, cmd, &k)) == 0 && (cmd == F_GETLK || cmd == F_OFD_GETLK)) {
		fl->l_type = k.l_type;
		if (k.l_type != F_UNLCK) {
			fl->l_whence = SEEK_SET;
			fl->l_start = k.l_start - base;
			fl->l_len = k.l_start + k.l_len >= base + LOCK_SLOT ? 0 : k.l_len;
			fl->l_pid = k.l_pid;
		}
	}
	return r;
}

/*
 * fcntl on a volume fd: F_GETFL/F_SETFL use its flags (O_APPEND and
 * O_NONBLOCK can change; O_DIRECT is EINVAL; O_NONBLOCK is kept on the
 * placeholder, meaningless for a file as on the kernel's), record locks go
 * to the lock file. Everything else (F_GETFD/F_SETFD, seals, dups: io_fd.c)
 * is the placeholder's.
 */
static int v_fcntl(struct fd_desc *d, int fd, int cmd, void *arg, bool *handled)
{
	struct sfd *s = (struct sfd *)d;
	int r, e;

	*handled = true;
	/* (a command that may change the placeholder's description: it is not reused) */
	if (cmd != F_GETFD && cmd != F_SETFD && cmd != F_GETFL && cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC &&
	    !lock_cmd(cmd))
		__atomic_store_n(&s->ph_moved, true, __ATOMIC_RELAXED);
	if (lock_cmd(cmd))
		return v_lock(s, fd, cmd, arg);
	if (cmd != F_GETFL && cmd != F_SETFL) {
		*handled = false;
		return 0;
	}
	shield_enter();
	if (cmd == F_GETFL) {
		/* O_NONBLOCK lives in the placeholder's description (ioctl FIONBIO sets it there). */
		r = SYS(fcntl)(fd, F_GETFL);
		if (r >= 0)
			r = (s->flags & GETFL_MASK & ~O_NONBLOCK) | (r & O_NONBLOCK);
	} else if ((int)(intptr_t)arg & O_DIRECT) {
		r = shield_fail(EINVAL);
	} else if ((r = SYS(fcntl)(fd, F_SETFL, (int)(intptr_t)arg & O_NONBLOCK)) == 0) {
		s->flags = (s->flags & ~SETFL_MASK) | ((int)(intptr_t)arg & SETFL_MASK);
	}
	e = errno;
	shield_leave();
	errno = e;
	return r;
}

/* One of the file's fds closes: POSIX semantics drop the process's locks on the file. */
static void v_closing(struct fd_desc *d, int fd)
{
	(void)fd;
	shield_enter();
	locks_on_close((struct sfd *)d);
	shield_leave();
}

/* The last hold: the volume file closes; the volume's last open file is a sync point. */
static int v_release(struct fd_desc *d)
{
	struct sfd *s = (struct sfd *)d;
	int r = 0;

	shield_enter();
	if (s->ofd_lock) {
		(void)shield_own_close(s->ofd_lock - 1);
	}
	if (s->off_fd)
		placeholder_release(s);
	vop_close(s);
	/* (a server commits when all its processes' files are closed) */
	if (!s->window && --s->m->open_count == 0 && vsrv_role() != VR_CLIENT && shield_commit(s->m))
		r = EIO;
	shield_leave();
	free(s);
	return r;
}

/* fork child (or a new volume server): the open files were the other process's; opened again by path when
 * next used. */
static void v_forked(struct fd_desc *d)
{
	vop_forget_remote((struct sfd *)d);
}

/* exec: the next program's runtime takes the fd over by volume and path (lock held: the handover). */
static int v_handover(struct fd_desc *d, int fd, struct scone_handover *h)
{
	struct sfd *s = (struct sfd *)d;
	struct scone_handover_fd *r = realloc(h->fds, (h->fd_count + 1) * sizeof(*r));
	struct scone_vstat st;

	if (!r)
		return ENOMEM;
	/* The file's id, so the next program opens this file, not whatever has its name by then. */
	if (s->file && !s->has_fid && vop_fstat(s, &st) == SCONE_ERR_OK) {
		memcpy(s->fid, st.file_id, sizeof(s->fid));
		s->has_fid = true;
	}
	scone_err_clear();
	h->fds = r;
	r = &h->fds[h->fd_count];
	*r = (struct scone_handover_fd){.fd = fd,
					.flags = s->flags,
					.volume = (uint32_t)shield_mount_index(s->m),
					.vpath = strdup(s->vpath),
					.dir = !s->file,
					.dev = (uint64_t)d->dev,
					.ino = (uint64_t)d->ino,
					.has_fid = s->has_fid};
	memcpy(r->fid, s->fid, sizeof(r->fid));
	if (!r->vpath)
		return ENOMEM;
	h->fd_count++;
	return 0;
}

const struct fd_kind shield_volume_kind = {
    .name = "volume",
    .release = v_release,
    .closing = v_closing,
    .read = v_read,
    .write = v_write,
    .pread = v_pread,
    .pwrite = v_pwrite,
    .iov = v_iov,
    .lseek = v_lseek,
    .fstat = v_fstat,
    .ftruncate = v_ftruncate,
    .fallocate = v_fallocate,
    .fsync = v_fsync,
    .fcntl = v_fcntl,
    .forked = v_forked,
    .handover = v_handover,
};
