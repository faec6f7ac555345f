/*
 * fdtab.c - the table of the fds the runtime serves (fdtab.h).
 *
 * The table is one array of pointers indexed by fd, reserved (not
 * committed: untouched pages cost nothing) for the process's hard fd limit
 * when the first entry is made. fdtab_maybe is lock-free; a lookup takes
 * its hold, and adding and removing entries unlink, under the table's
 * mutex (so a description is never freed between a lookup's load and its
 * hold).
 */
#include "runtime/fdtab.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "runtime/sys.h"

#define TABLE_CAP (1u << 24) /* fds beyond this many are never served (EMFILE) */

static struct fd_desc **table;
static size_t table_size;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t owner;   /* the process whose table this is */
static int high = -1; /* no entry was ever above this fd */
/*
 * Whether the caller is a vfork child, known without a system call where
 * vfork() is the runtime's (proc_vfork.c): the thread that calls it is
 * marked for its child's life. Anything else that may share memory with a
 * child (clone with CLONE_VM, raw clone, fork or vfork, _Fork) makes the
 * process ask getpid() from then on.
 */
static __thread int vfork_child;
static int vfork_tracked; /* vfork() is the runtime's: vfork_child is true */
static int pid_untracked; /* a child may share memory without vfork_child: ask getpid() */

static bool ensure_table(void)
{
	struct rlimit rl;
	size_t n;
	void *p;

	if (__atomic_load_n(&table, __ATOMIC_ACQUIRE))
		return true;
	n = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY ? (size_t)rl.rlim_max
									       : TABLE_CAP;
	if (n > TABLE_CAP)
		n = TABLE_CAP;
	if (n < 1024)
		n = 1024;
	p = mmap(NULL, n * sizeof(*table), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return false;
	table_size = n;
	if (!owner)
		owner = getpid();
	__atomic_store_n(&table, (struct fd_desc **)p, __ATOMIC_RELEASE);
	return true;
}

bool fdtab_note(struct fd_desc *d, int fd)
{
	struct stat st;

	if (SYS(fstat)(fd, &st) != 0)
		return false;
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	return true;
}

bool fdtab_is(int fd, const struct fd_desc *d)
{
	struct stat st;

	return SYS(fstat)(fd, &st) == 0 && st.st_ino == d->ino && st.st_dev == d->dev;
}

bool fdtab_foreign(void)
{
	if (!owner)
		return false;
	/*
	 * Unmarked: not a vfork child. Marked: most likely one, but the mark
	 * also covers the instants around the kernel's vfork in the parent (a
	 * signal handler run there, or one that longjmp'ed out and left it),
	 * so getpid() decides.
	 */
	if (__atomic_load_n(&vfork_tracked, __ATOMIC_RELAXED) &&
	    !__atomic_load_n(&pid_untracked, __ATOMIC_RELAXED) && !vfork_child)
		return false;
	return getpid() != owner;
}

void fdtab_vfork_tracked(void)
{
	__atomic_store_n(&vfork_tracked, 1, __ATOMIC_RELAXED);
}

void fdtab_pid_untracked(void)
{
	__atomic_store_n(&pid_untracked, 1, __ATOMIC_RELAXED);
}

int fdtab_vfork_enter(void)
{
	int was = vfork_child;

	vfork_child = 1;
	return was;
}

void fdtab_vfork_leave(int was)
{
	vfork_child = was;
}

void fdtab_own(void)
{
	owner = getpid();
}

static void forked_one(int fd, struct fd_desc *d, void *arg)
{
	(void)fd, (void)arg;
	if (d->kind->forked)
		d->kind->forked(d);
}

void fdtab_forked(void)
{
	owner = getpid();
	fdtab_each(forked_one, NULL);
}

void fdtab_fork_prepare(void)
{
	pthread_mutex_lock(&table_lock);
}

void fdtab_fork_parent(void)
{
	pthread_mutex_unlock(&table_lock);
}

void fdtab_fork_child(void)
{
	pthread_mutex_init(&table_lock, NULL); /* (held by the forking thread, which is this one's parent) */
}

void fdtab_desc_init(struct fd_desc *d, const struct fd_kind *kind)
{
	d->kind = kind;
	d->holds = 0;
	pthread_mutex_init(&d->lock, NULL);
}

bool fdtab_maybe(int fd)
{
	struct fd_desc **t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);

	return t && fd >= 0 && (size_t)fd < table_size && __atomic_load_n(&t[fd], __ATOMIC_ACQUIRE);
}

struct fd_desc *fdtab_peek(int fd)
{
	struct fd_desc **t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);

	return t && fd >= 0 && (size_t)fd < table_size ? __atomic_load_n(&t[fd], __ATOMIC_ACQUIRE) : NULL;
}

int fdtab_high(void)
{
	return __atomic_load_n(&high, __ATOMIC_ACQUIRE);
}

/* fd gets an entry (table lock held). */
static void raise_high(int fd)
{
	if (fd > high)
		__atomic_store_n(&high, fd, __ATOMIC_RELEASE);
}

static void hold(struct fd_desc *d)
{
	__atomic_add_fetch(&d->holds, 1, __ATOMIC_ACQ_REL);
}

int fdtab_put(struct fd_desc *d)
{
	if (__atomic_sub_fetch(&d->holds, 1, __ATOMIC_ACQ_REL) > 0)
		return 0;
	pthread_mutex_destroy(&d->lock);
	return d->kind->release ? d->kind->release(d) : 0;
}

static bool put_entry(int fd, struct fd_desc *d);

/* Is fd within the table (made now if need be)? Else errno EMFILE. */
static bool in_table(int fd)
{
	if (fd >= 0 && ensure_table() && (size_t)fd < table_size)
		return true;
	errno = EMFILE;
	return false;
}

bool fdtab_install(int fd, struct fd_desc *d)
{
	if (fdtab_foreign()) { /* a vfork child: the table is its parent's */
		errno = ENOTSUP;
		return false;
	}
	return in_table(fd) && put_entry(fd, d);
}

/* Take fd's entry out if it is still d (table lock held); true if it was. */
static bool unlink_slot(int fd, struct fd_desc *d)
{
	if (__atomic_load_n(&table[fd], __ATOMIC_ACQUIRE) != d)
		return false;
	__atomic_store_n(&table[fd], NULL, __ATOMIC_RELEASE);
	return true;
}

/*
 * Descriptions whose number the kernel gave to a new entry (closed behind
 * the runtime): their kinds hear of the close at fdtab_reap, after the
 * caller let go of its own locks (a volume's release takes the shield's).
 */
struct stale {
	struct fd_desc *d;
	int fd;
};
static struct stale *stale;
static size_t n_stale, stale_cap;

/* Make fd (within the table) an entry for d; the entry it had waits for fdtab_reap. */
static bool put_entry(int fd, struct fd_desc *d)
{
	struct fd_desc *old;

	pthread_mutex_lock(&table_lock);
	old = table[fd];
	if (old == d) {
		pthread_mutex_unlock(&table_lock);
		return true;
	}
	if (old && unlink_slot(fd, old)) {
		if (n_stale == stale_cap) {
			size_t cap = stale_cap ? 2 * stale_cap : 16;
			struct stale *n = realloc(stale, cap * sizeof(*n));
			if (n)
				stale = n, stale_cap = cap;
		}
		if (n_stale < stale_cap) /* (without memory its hold is lost: the file closes at exit) */
			stale[n_stale++] = (struct stale){old, fd};
	}
	hold(d);
	raise_high(fd);
	__atomic_store_n(&table[fd], d, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&table_lock);
	return true;
}

void fdtab_reap(void)
{
	while (__atomic_load_n(&n_stale, __ATOMIC_ACQUIRE) > 0) {
		struct stale e = {NULL, -1};
		pthread_mutex_lock(&table_lock);
		if (n_stale > 0)
			e = stale[--n_stale];
		pthread_mutex_unlock(&table_lock);
		if (!e.d)
			break;
		if (e.d->kind->closing)
			e.d->kind->closing(e.d, e.fd);
		(void)fdtab_put(e.d);
	}
}

int fdtab_remove(int fd)
{
	struct fd_desc *d;
	bool was;

	if (!fdtab_maybe(fd) || fdtab_foreign())
		return 0;
	pthread_mutex_lock(&table_lock);
	d = table[fd];
	was = d && unlink_slot(fd, d);
	pthread_mutex_unlock(&table_lock);
	if (!was)
		return 0;
	if (d->kind->closing)
		d->kind->closing(d, fd);
	return fdtab_put(d);
}

struct fd_desc *fdtab_hold(int fd)
{
	struct fd_desc *d;

	if (!fdtab_maybe(fd))
		return NULL;
	/*
	 * The hold is taken under the table's lock: a close on another thread
	 * unlinks under it before it gives its hold back, so d cannot be freed
	 * between the load and the hold (a lock-free hold could land in freed
	 * memory, or in a new description at the same address).
	 */
	pthread_mutex_lock(&table_lock);
	d = __atomic_load_n(&table[fd], __ATOMIC_ACQUIRE);
	if (d)
		hold(d);
	pthread_mutex_unlock(&table_lock);
	return d;
}

struct fd_desc *fdtab_get(int fd)
{
	struct fd_desc *d = fdtab_hold(fd);

	if (!d)
		return NULL;
	if (d->kind->trusts_number || fdtab_is(fd, d))
		return d;
	/* The kernel's now: closed or replaced behind the runtime (unlinked while held: no ABA). */
	if (!fdtab_foreign()) {
		bool was;
		pthread_mutex_lock(&table_lock);
		was = unlink_slot(fd, d);
		pthread_mutex_unlock(&table_lock);
		if (was)
			(void)fdtab_put(d);
	}
	(void)fdtab_put(d);
	return NULL;
}

bool fdtab_share(int newfd, struct fd_desc *d)
{
	if (!in_table(newfd))
		return false;
	/* (the kernel closed newfd's old file silently under dup2/dup3: the caller reaps) */
	return fdtab_foreign() || put_entry(newfd, d);
}

void fdtab_each(void (*fn)(int fd, struct fd_desc *d, void *arg), void *arg)
{
	struct fd_desc **t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);

	size_t top = (size_t)(fdtab_high() + 1);

	for (size_t fd = 0; t && fd < top && fd < table_size; fd++) {
		struct fd_desc *d = __atomic_load_n(&t[fd], __ATOMIC_ACQUIRE);
		if (d)
			fn((int)fd, d, arg);
	}
}
