/*
 * io_fd.c - the calls on fds themselves: close, close_range, closefrom,
 * dup, dup2, dup3, fcntl (and fcntl64), flock. They keep the fd table
 * (fdtab.h) true: a dup is another fd of the same description, a close
 * drops one, the kernel's silent close of dup2's target drops its entry;
 * fcntl commands a kind serves go to it, the rest to the placeholder. And
 * the fd limit's setters (setrlimit, prlimit), which move where the
 * runtime's own fds go.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

#include <sys/ioctl.h>

#include "lib/log.h"

/* fd is one of the runtime's own fds, which the program's close or dup2 must not take (EBADF). */
static bool onto_own(int fd)
{
	return !shield_inside() && scone_shield_count() > 0 && shield_own_fd(fd);
}

int close(int fd)
{
	int r = 0;

	/*
	 * The runtime's own fds (the volume library's host files, lock handles,
	 * the volume server's sockets, CAS's connection) are not the program's:
	 * a loop closing every number must not take them, as close_range steps
	 * around them. (The runtime closes them itself, through libc's close
	 * or from inside the shield.)
	 */
	if (onto_own(fd))
		return shield_fail(EBADF);
	/* The entry goes first: once the kernel frees the number another open may take it. */
	if (shield_maybe_shielded(fd))
		r = fdtab_remove(fd);
	if (SYS(close)(fd) != 0)
		return -1;
	return r ? shield_fail(r) : 0;
}

/*
 * close_range/closefrom (what subprocess modules call in a child before
 * exec, and daemons at start): the runtime's own fds in the range (the
 * volumes' shared state, the volume server's sockets, flock and lock-file
 * handles, the volume library's host files, CAS's report connection) are
 * stepped around, so the exec can still hand over; served
 * fds in the range lose their entries, except in a vfork child, whose
 * memory (the table included) is still its parent's (fdtab_remove knows).
 */
int close_range(unsigned first, unsigned last, int flags)
{
	unsigned from = first, top, high;
	int r = 0;

	/* (nothing to keep: no volume mounted, so no own fds, and no fd ever served) */
	if ((scone_shield_count() == 0 && fdtab_high() < 0) || shield_inside() ||
	    (flags & CLOSE_RANGE_CLOEXEC) || first > last)
		return SYS(close_range)(first, last, flags);
	top = (unsigned)shield_own_fd_max(); /* (-1: none, and the loop below is empty) */
	high = (unsigned)fdtab_high();
	for (unsigned fd = first; high != ~0U && fd <= last && fd <= high; fd++)
		if (!shield_own_fd((int)fd) && fdtab_maybe((int)fd))
			(void)fdtab_remove((int)fd);
	for (unsigned fd = first; r == 0 && top != ~0U && fd <= last && fd <= top; fd++) {
		if (!shield_own_fd((int)fd))
			continue;
		if (fd > from)
			r = SYS(close_range)(from, fd - 1, flags);
		from = fd + 1;
	}
	if (r == 0 && from <= last)
		r = SYS(close_range)(from, last, flags);
	return r;
}

void closefrom(int lowfd)
{
	(void)close_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0U, 0);
}

/* After the kernel's dup (r) of fd: r is another fd of fd's description (and drops what it was). */
static int dup_done(struct fd_desc *d, int r)
{
	int e;

	if (r >= 0 && !fdtab_share(r, d)) {
		e = errno;
		SYS(close)(r);
		errno = e;
		r = -1;
	}
	e = errno;
	fdtab_reap(); /* (r's old entry, which the kernel closed) */
	errno = e;
	return r;
}

int dup(int fd)
{
	struct fd_desc *d = shield_maybe_shielded(fd) ? fdtab_get(fd) : NULL;
	int r, e;

	if (!d)
		return SCONE_FD_CALL(SYS(dup)(fd));
	r = dup_done(d, SYS(dup)(fd));
	e = errno;
	(void)fdtab_put(d);
	errno = e;
	return r;
}

/* dup2/dup3: newfd's old entry goes (the kernel closed it); newfd becomes fd's. */
static int dup_to(int fd, int newfd, int r)
{
	struct fd_desc *h;

	if (r < 0 || fd == newfd)
		return r;
	if ((h = fdtab_get(fd))) {
		int e;
		r = dup_done(h, r);
		e = errno;
		(void)fdtab_put(h);
		errno = e;
	} else if (fdtab_maybe(newfd)) {
		/* a kernel fd now (fd was, or had become behind the runtime, the kernel's): newfd's entry
		 * closes */
		int e = errno;
		(void)fdtab_remove(newfd);
		errno = e;
	}
	if (r >= 0)
		shield_std_stream(r);
	return r;
}

/*
 * dup2/dup3 onto one of the runtime's own fds: EBADF, unless it is a kept
 * placeholder, which is given up (*evicted: still open, so that the dup
 * replaces it in one step; closed here if the dup fails).
 */
static bool dup_onto_own(int newfd, bool *evicted)
{
	*evicted = false;
	return onto_own(newfd) && !(*evicted = scone_shield_pool_evict(newfd));
}

static int dup_evicted(int r, int newfd, bool evicted)
{
	int e = errno;

	if (r < 0 && evicted) {
		SYS(close)(newfd);
		errno = e;
	}
	return r;
}

/* The kernel's dup2 (three: false) or dup3: they differ where fd == newfd. */
static int kernel_dup_to(int fd, int newfd, bool three, int flags)
{
	return three ? SYS(dup3)(fd, newfd, flags) : SYS(dup2)(fd, newfd);
}

static int dup_onto(int fd, int newfd, bool three, int flags)
{
	bool evicted;
	int r;

	if (dup_onto_own(newfd, &evicted))
		return shield_fail(EBADF);
	if (!evicted && !shield_maybe_shielded(fd) && !shield_maybe_shielded(newfd))
		return kernel_dup_to(fd, newfd, three, flags);
	r = dup_to(fd, newfd, kernel_dup_to(fd, newfd, three, flags));
	return dup_evicted(r, newfd, evicted);
}

int dup3(int fd, int newfd, int flags)
{
	return dup_onto(fd, newfd, true, flags);
}

int dup2(int fd, int newfd)
{
	return dup_onto(fd, newfd, false, 0);
}

typedef int (*fcntl_fn)(int, int, ...);

/* F_DUPFD is a dup; commands the kind serves go to it; the rest to the placeholder. */
static int fcntl_served(fcntl_fn real, int fd, int cmd, void *arg)
{
	struct fd_desc *d = shield_maybe_shielded(fd) ? fdtab_get(fd) : NULL;
	bool handled = false;
	int r, e;

	if (!d)
		return real(fd, cmd, arg);
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		r = dup_done(d, real(fd, cmd, arg));
	else if (d->kind->fcntl && ((r = d->kind->fcntl(d, fd, cmd, arg, &handled)), handled))
		;
	else
		r = real(fd, cmd, arg);
	e = errno;
	(void)fdtab_put(d);
	errno = e;
	return r;
}

/* glibc reads the third argument as a pointer-sized word whatever cmd is; so do we. */
int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_served(SYS(fcntl), fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_served(SYS(fcntl64), fd, cmd, arg);
}

/*
 * flock on a volume fd: an OFD lock over the file's whole slot in the lock
 * file (fd_volume.c), so it binds every open of the file in every process,
 * belongs to the open file description (kept across dup and fork, dropped
 * with its last fd) and never blocks the shield while it waits. Unlike the
 * kernel's, it conflicts with fcntl locks on the same file.
 */
int flock(int fd, int op)
{
	struct flock fl = {.l_whence = SEEK_SET};
	int kind = op & ~LOCK_NB, r;

	if (!shield_maybe_shielded(fd))
		return SYS(flock)(fd, op);
	if (kind != LOCK_SH && kind != LOCK_EX && kind != LOCK_UN)
		return shield_fail(EINVAL);
	fl.l_type = kind == LOCK_SH ? F_RDLCK : kind == LOCK_EX ? F_WRLCK : F_UNLCK;
	r = fcntl(fd, (op & LOCK_NB) || kind == LOCK_UN ? F_OFD_SETLK : F_OFD_SETLKW, &fl);
	if (r != 0 && (errno == EAGAIN || errno == EACCES))
		errno = EWOULDBLOCK;
	return r;
}

/*
 * lockf on a volume fd: glibc's calls its internal fcntl, which would lock
 * the empty placeholder; here it is the record lock POSIX defines it as
 * (from the offset, len bytes; 0: to the end), through the runtime's fcntl.
 */
int lockf64(int fd, int cmd, off64_t len)
{
	struct flock fl = {.l_whence = SEEK_CUR, .l_start = 0, .l_len = len};

	if (!shield_maybe_shielded(fd))
		return SYS(lockf64)(fd, cmd, len);
	switch (cmd) {
	case F_TEST:
		fl.l_type = F_RDLCK;
		if (fcntl(fd, F_GETLK, &fl) != 0)
			return -1;
		return fl.l_type == F_UNLCK || fl.l_pid == getpid() ? 0 : shield_fail(EACCES);
	case F_ULOCK:
		fl.l_type = F_UNLCK;
		return fcntl(fd, F_SETLK, &fl);
	case F_LOCK:
		fl.l_type = F_WRLCK;
		return fcntl(fd, F_SETLKW, &fl);
	case F_TLOCK:
		fl.l_type = F_WRLCK;
		return fcntl(fd, F_SETLK, &fl);
	default:
		return shield_fail(EINVAL);
	}
}

int lockf(int fd, int cmd, off_t len)
{
	return lockf64(fd, cmd, (off64_t)len);
}

/*
 * Other calls that make fds: at EMFILE, the kept placeholders give their
 * fds back and the call is made again, as for open, socket, accept and dup
 * (SCONE_FD_CALL), so the runtime's pool never costs a program an fd.
 */
int pipe(int fds[2])
{
	return SCONE_FD_CALL(SYS(pipe)(fds));
}

int pipe2(int fds[2], int flags)
{
	return SCONE_FD_CALL(SYS(pipe2)(fds, flags));
}

int socketpair(int domain, int type, int protocol, int sv[2])
{
	return SCONE_FD_CALL(SYS(socketpair)(domain, type, protocol, sv));
}

int eventfd(unsigned int count, int flags)
{
	return SCONE_FD_CALL(SYS(eventfd)(count, flags));
}

int epoll_create(int size)
{
	return SCONE_FD_CALL(SYS(epoll_create)(size));
}

int epoll_create1(int flags)
{
	return SCONE_FD_CALL(SYS(epoll_create1)(flags));
}

int timerfd_create(int clockid, int flags)
{
	return SCONE_FD_CALL(SYS(timerfd_create)(clockid, flags));
}

/* A new fd only when fd is -1; otherwise fd's mask changes and EMFILE cannot happen. */
int signalfd(int fd, const sigset_t *mask, int flags)
{
	return SCONE_FD_CALL(SYS(signalfd)(fd, mask, flags));
}

int inotify_init(void)
{
	return SCONE_FD_CALL(SYS(inotify_init)());
}

int inotify_init1(int flags)
{
	return SCONE_FD_CALL(SYS(inotify_init1)(flags));
}

/*
 * A watch on a volume path would watch the host directory: its names are
 * file ids, and a subdirectory of the volume is no directory there. Volume
 * files are not watched: the watch is refused (ENOTSUP), once with a line
 * on stderr (without the path: names on a volume are the program's).
 */
int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	static int warned;

	if (path && scone_shield_count() > 0 && !shield_inside() && scone_shield_on_volume(path)) {
		if (!__atomic_exchange_n(&warned, 1, __ATOMIC_ACQ_REL))
			scone_warn("inotify watches on volume paths are not supported: changes to volume "
				   "files are not watched (the watch fails with ENOTSUP)");
		errno = ENOTSUP;
		return -1;
	}
	return SYS(inotify_add_watch)(fd, path, mask);
}

/* (the runtime's own placeholders and shared state are memfds too: at EMFILE under the lock, no retry) */
int memfd_create(const char *name, unsigned int flags)
{
	return SCONE_FD_CALL(SYS(memfd_create)(name, flags));
}

int pidfd_open(pid_t pid, unsigned int flags)
{
	return SCONE_FD_CALL(SYS(pidfd_open)(pid, flags));
}

int fanotify_init(unsigned int flags, unsigned int event_f_flags)
{
	return SCONE_FD_CALL(SYS(fanotify_init)(flags, event_f_flags));
}

/*
 * FIONREAD on a volume file: what the kernel answers for a regular file,
 * its size less the file offset (an int, negative past the end), from the
 * volume's size. The placeholder's would be 0. True when fd is a volume
 * file and *ret is the answer.
 */
static bool volume_fionread(int fd, int *arg, int *ret)
{
	struct fd_desc *d = fdtab_get(fd);
	struct stat st;
	int64_t off;
	int e;

	if (!d)
		return false;
	if (d->kind != &shield_volume_kind) {
		(void)fdtab_put(d);
		return false;
	}
	if (d->kind->fstat(d, &st) != 0 || (off = d->kind->lseek(d, fd, 0, SEEK_CUR)) < 0)
		*ret = -1;
	else if (!S_ISREG(st.st_mode))
		*ret = shield_fail(ENOTTY);
	else {
		*arg = (int)((int64_t)st.st_size - off);
		*ret = 0;
	}
	e = errno;
	(void)fdtab_put(d);
	errno = e;
	return true;
}

/*
 * ioctl passes through; on a volume fd (FIONBIO and the like change its
 * placeholder's description) the placeholder is not kept for another file.
 * FIONREAD is answered from the volume.
 */
int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	int r;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!shield_maybe_shielded(fd))
		return SYS(ioctl)(fd, req, arg);
	if (req == FIONREAD && arg && volume_fionread(fd, arg, &r))
		return r;
	scone_shield_fd_shared(fd);
	return SYS(ioctl)(fd, req, arg);
}

/*
 * The fd limit: the runtime's own fds live in its upper half
 * (shield_own_fd_floor), so a change moves where new ones go. A shell's
 * `ulimit -n 64` left them at 3 and up, where its `exec 4>file` then
 * replaced one.
 */
static int limit_set(int r, int resource, pid_t pid)
{
	if (r == 0 && resource == RLIMIT_NOFILE && (pid == 0 || pid == getpid()))
		shield_own_fd_limit_changed();
	return r;
}

int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl)
{
	return limit_set(SYS(setrlimit)(resource, rl), (int)resource, 0);
}

int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rl)
{
	return limit_set(SYS(setrlimit64)(resource, rl), (int)resource, 0);
}

int prlimit(pid_t pid, __rlimit_resource_t resource, const struct rlimit *rl, struct rlimit *old)
{
	return limit_set(SYS(prlimit)(pid, resource, rl, old), (int)resource, pid);
}

int prlimit64(pid_t pid, __rlimit_resource_t resource, const struct rlimit64 *rl, struct rlimit64 *old)
{
	return limit_set(SYS(prlimit64)(pid, resource, rl, old), (int)resource, pid);
}
