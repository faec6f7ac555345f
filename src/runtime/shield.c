/*
 * shield.c - the file-system shield's core: the session's volumes mounted at
 * their paths (shield_mount.c), every file under a mount point served
 * through the volume library (plaintext for the program, AEAD-protected
 * files on the disk). This file owns the shield's lock and state, the
 * runtime's own fds, and the volumes' life across fork and exit.
 *
 * The parts (docs/runtime.md, docs/runtime-fds.md):
 * - fd_volume.c: a volume's files and directories as an fd kind (fdtab.h);
 *   io_rw.c, io_file.c, io_fd.c: the fd interposers dispatching to kinds;
 * - shield_path.c: which mount a path (any spelling of it) is under;
 * - shield_mount.c: mounting, and the volumes handed across exec;
 * - shield_report.c: commits and their tag reports to CAS;
 * - shield_cwd.c, shield_stat.c, shield_ns.c, shield_dir.c, shield_stdio.c,
 *   shield_meta.c, shield_io.c: the working directory, stat, namespace
 *   calls, directory streams, stdio streams, metadata, mmap and copies;
 * - vops.c, vserver.c: a volume held here or served by another process;
 * - io_syscall.c: syscall() (the fd calls made through it, io_uring).
 *
 * The volume library and the CAS client do their own I/O through the
 * runtime's table of real functions (sys.h); a thread-local depth counter
 * also makes every interposer pass straight through while the shield works.
 */
/* The interposers must be real functions, not glibc's fortify inline wrappers. */
#undef _FORTIFY_SOURCE
#include <stdatomic.h>
#include <sys/mman.h>

#include "lib/log.h"
#include "runtime/shield_internal.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside;
static __thread int saved_errno;
static __thread int holding; /* this thread holds the lock or waits for it (set before, cleared after) */

struct shield_state shield_g = {.share_fd = -1};

/*
 * Take the lock; errno is restored by leave (a shim only sets it on failure).
 * It serialises this process's threads, the volume server's requests from
 * other processes (vserver.c) and a vfork child (which shares the memory).
 */
void shield_enter(void)
{
	saved_errno = errno;
	holding = 1;
	pthread_mutex_lock(&lock);
	inside++;
}

bool shield_enter_unless_mine(void)
{
	if (holding)
		return false;
	shield_enter();
	return true;
}

void shield_leave(void)
{
	inside--;
	pthread_mutex_unlock(&lock);
	holding = 0;
	errno = saved_errno;
}

int shield_fail(int e)
{
	errno = e;
	return -1;
}

int shield_fail_err(enum scone_err e)
{
	int n = scone_err_to_errno(e);

	errno = n ? n : EIO;
	return -1;
}

size_t scone_shield_count(void)
{
	return shield_g.n_mounts;
}

/* ---- what shield_path.c needs of the table ---- */

size_t shield_mount_count(void)
{
	return inside ? 0 : __atomic_load_n(&shield_g.n_mounts, __ATOMIC_ACQUIRE);
}

size_t shield_mount_total(void)
{
	return __atomic_load_n(&shield_g.n_mounts, __ATOMIC_ACQUIRE);
}

struct mount *shield_mount(size_t i)
{
	return &shield_g.mounts[i];
}

bool shield_fd_program_path(int fd, char out[PATH_MAX])
{
	struct sfd *s = shield_fd_entry(fd);

	if (!s)
		return false; /* not a volume fd, or closed behind the shield: a kernel fd now */
	return (size_t)shield_program_path(s->m, s->vpath, out, PATH_MAX) < PATH_MAX;
}

/* The volume fd's entry, checked to still be its placeholder (shield_internal.h). */
struct sfd *shield_fd_entry(int fd)
{
	struct fd_desc *d = fdtab_peek(fd);

	if (!d || d->kind != &shield_volume_kind || !fdtab_is(fd, d))
		return NULL;
	return (struct sfd *)d;
}

bool shield_inside(void)
{
	return inside != 0;
}

bool shield_maybe_shielded(int fd)
{
	return !inside && fdtab_maybe(fd);
}

/*
 * The fds the volume library opened on the host (data files, the fspf, its
 * journal) and the lock-file handles of OFD locks: marked one bit each, so
 * a program's close, close_range or closefrom steps around them. Without
 * that a daemon's closefrom(3) closed them, the number went to the
 * program's log, and the runtime's next write to "its" fspf or close of
 * "its" lock handle hit the log (or the log's lines landed in the fspf).
 */
#define OWN_WORDS (1u << 18) /* 2^24 fds, the fd table's cap; pages taken as marked */
static _Atomic uint64_t *own_bits;
static int own_high = -1;

void shield_own_mark(int fd, bool own)
{
	_Atomic uint64_t *bits = __atomic_load_n(&own_bits, __ATOMIC_ACQUIRE);

	if (fd < 0 || (unsigned)fd >= OWN_WORDS * 64u)
		return;
	if (!bits && own) {
		void *p = mmap(NULL, OWN_WORDS * sizeof(*bits), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		_Atomic uint64_t *none = NULL;
		if (p == MAP_FAILED)
			return;
		if (!__atomic_compare_exchange_n(&own_bits, &none, (_Atomic uint64_t *)p, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			munmap(p, OWN_WORDS * sizeof(*bits));
		bits = __atomic_load_n(&own_bits, __ATOMIC_ACQUIRE);
	}
	if (!bits)
		return;
	if (own) {
		atomic_fetch_or(&bits[fd / 64], (uint64_t)1 << (fd % 64));
		for (int h = __atomic_load_n(&own_high, __ATOMIC_ACQUIRE); fd > h;)
			if (__atomic_compare_exchange_n(&own_high, &h, fd, false, __ATOMIC_ACQ_REL,
							__ATOMIC_ACQUIRE))
				break;
	} else {
		atomic_fetch_and(&bits[fd / 64], ~((uint64_t)1 << (fd % 64)));
	}
}

int scone_shield_fd_up(int fd)
{
	int floor = shield_own_fd_floor(), e = errno, flags, hi;

	if (fd < 0 || fd >= floor)
		return fd;
	flags = SYS(fcntl)(fd, F_GETFD);
	hi = SYS(fcntl)(fd, flags >= 0 && (flags & FD_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, floor);
	if (hi >= 0)
		SYS(close)(fd);
	errno = e;
	return hi >= 0 ? hi : fd;
}

int shield_own_up(int fd)
{
	fd = scone_shield_fd_up(fd);
	shield_own_mark(fd, true);
	return fd;
}

int shield_own_close(int fd)
{
	shield_own_mark(fd, false);
	return SYS(close)(fd);
}

static bool own_marked(int fd)
{
	_Atomic uint64_t *bits = __atomic_load_n(&own_bits, __ATOMIC_ACQUIRE);

	return bits && fd >= 0 && fd <= __atomic_load_n(&own_high, __ATOMIC_ACQUIRE) &&
	       (atomic_load(&bits[fd / 64]) >> (fd % 64)) & 1;
}

/* The runtime's own fds: the volumes' shared state, CAS's report connection, the server's sockets, flock
 * handles, the volume library's host files. */
bool shield_own_fd(int fd)
{
	int rep = scone_runtime_report_fd();

	if (fd < 0)
		return false;
	if (fd == shield_g.share_fd || fd == rep || vsrv_own_fd(fd) || own_marked(fd))
		return true;
	for (size_t i = 0; i < shield_g.n_mounts; i++)
		if (fd == shield_g.mounts[i].lock_fd || fd == shield_g.mounts[i].plock_fd)
			return true;
	return false;
}

int shield_own_fd_max(void)
{
	int top = vsrv_own_fd_max(), rep = scone_runtime_report_fd();

	top = shield_g.share_fd > top ? shield_g.share_fd : top;
	top = rep > top ? rep : top;
	top = own_high > top ? own_high : top;
	for (size_t i = 0; i < shield_g.n_mounts; i++) {
		top = shield_g.mounts[i].lock_fd > top ? shield_g.mounts[i].lock_fd : top;
		top = shield_g.mounts[i].plock_fd > top ? shield_g.mounts[i].plock_fd : top;
	}
	return top;
}

/* ---- volumes shared between processes (after fork, and across exec): vserver.c ---- */

/* This process's own description of m's directory, the flock handle. */
int shield_lock_fd(struct mount *m)
{
	REAL(open);

	if (m->lock_fd < 0)
		m->lock_fd = scone_shield_fd_up(real_open(m->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	return m->lock_fd;
}

int shield_election_fd(void)
{
	return shield_g.n_mounts ? shield_lock_fd(&shield_g.mounts[0]) : -1;
}

size_t shield_mount_index(const struct mount *m)
{
	return (size_t)(m - shield_g.mounts);
}

/*
 * This process's files were open in another process's volumes (a new
 * server now): they are opened again, by path, when next used. Nothing is
 * closed: the handles were the other process's. If that server died
 * (SIGKILL, a crash) rather than leaving after its last commit, with
 * writes it had acknowledged and not committed, the program has crashed
 * (vserver.c ends its processes); a process that survives that (not
 * listed, another user's) gets EIO at the next fsync of a file the dead
 * server had noted as written (lost[]), as a kernel reports a failed
 * writeback to every description of the file. A description's own writes
 * since its last fsync are not evidence of a loss: another process's fsync
 * may have committed them (PostgreSQL: one backend writes a WAL page,
 * another fsyncs the segment), and a server that died with everything
 * committed lost nothing.
 */
struct forget {
	bool lost;
	uint64_t since;
};

static void forget_one(int fd, struct fd_desc *d, void *arg)
{
	const struct forget *f = arg;
	struct sfd *s = (struct sfd *)d;

	(void)fd;
	if (d->kind != &shield_volume_kind)
		return;
	if (s->file && vsrv_file_lost(s->m, s->vpath, f->since))
		s->lost = true;
	vop_forget_remote(s);
}

void shield_forget_remote(bool lost, uint64_t since)
{
	struct forget f = {lost, since};

	fdtab_each(forget_one, &f);
	shield_map_forget_remote(); /* (descriptions the program closed, held by windows) */
}

/* Count m's open descriptions (each once, however many fds share it). */
struct open_count {
	struct mount *m;
	unsigned mark;
	size_t n;
};

static void count_one(int fd, struct fd_desc *d, void *arg)
{
	struct open_count *c = arg;
	struct sfd *s = (struct sfd *)d;

	(void)fd;
	if (d->kind == &shield_volume_kind && s->m == c->m && s->mark != c->mark) {
		s->mark = c->mark;
		c->n++;
	}
}

static unsigned g_walk; /* the mark of the latest walk over the descriptions (each once) */

static size_t open_descriptions(struct mount *m)
{
	struct open_count c = {.m = m, .mark = ++g_walk};

	fdtab_each(count_one, &c);
	return c.n;
}

/* A new server: open every volume from the disk as committed (a state one commit ahead of CAS is accepted).
 */
enum scone_err shield_reopen_volumes(void)
{
	for (size_t i = 0; i < shield_g.n_mounts; i++) {
		struct mount *m = &shield_g.mounts[i];
		enum scone_err err;
		if (m->vol)
			continue;
		err = scone_volume_open(m->fspf, m->key, m->sh->has_tag ? m->sh->tag : NULL,
					SCONE_VOL_RDWR | shield_volume_flags(), &m->vol);
		if (err)
			return scone_err_set(err,
					     "volume %s: taking over from the process that served it: %s",
					     m->name, scone_err_detail());
		m->dirty = false;
		m->open_count = open_descriptions(m);
	}
	return SCONE_ERR_OK;
}

/*
 * fork: the lock is held across it (no thread of the parent is inside the
 * shield), and the child gets a connection to the server made before the
 * fork (vserver.c): it is a client from its first instruction. Its own
 * flock description is opened when it needs one.
 */
static bool fork_held;

/*
 * A description opened from the read cache alone pins its file (vcache.h);
 * the child holds it too: its pin is taken before the fork, so that no
 * moment passes where the parent closing its own leaves the file unpinned.
 * (A fork that fails leaves it counted: the file is kept longer.)
 */
struct pin_walk {
	void (*fn)(struct sfd *s);
};

static void pin_one(int fd, struct fd_desc *d, void *arg)
{
	struct sfd *s = (struct sfd *)d;

	(void)fd;
	if (d->kind != &shield_volume_kind || s->mark == g_walk)
		return;
	s->mark = g_walk;
	((struct pin_walk *)arg)->fn(s);
}

/* fn on each volume description once (lock held). */
static void walk_pins(void (*fn)(struct sfd *))
{
	struct pin_walk w = {fn};

	g_walk++;
	fdtab_each(pin_one, &w);
}

static void pins_for_child(void)
{
	walk_pins(vop_pin_more);
}

static bool pins_gone; /* let go once, by exit, _exit or an exec (lock held) */

bool scone_shield_pins_release(void)
{
	bool done = false;

	if (__atomic_load_n(&shield_g.n_mounts, __ATOMIC_ACQUIRE) == 0 || getpid() != shield_g.pid)
		return false;
	shield_enter();
	if (!pins_gone) {
		walk_pins(vop_pin_give);
		pins_gone = done = true;
	}
	shield_leave();
	return done;
}

void scone_shield_pins_retake(void)
{
	shield_enter();
	if (pins_gone) {
		walk_pins(vop_pin_back);
		pins_gone = false;
	}
	shield_leave();
}

void shield_at_prepare(void)
{
	if (__atomic_load_n(&shield_g.n_mounts, __ATOMIC_ACQUIRE) == 0)
		return;
	shield_enter();
	fork_held = true;
	/*
	 * The server commits first: a parent that leaves right after forking
	 * (daemon(): fork, then _exit in the parent) must not take the
	 * writes it made before with it; the child, which then takes over the
	 * volumes, finds them on the disk.
	 */
	for (size_t i = 0; vsrv_role() == VR_SERVER && i < shield_g.n_mounts; i++)
		if (shield_commit(&shield_g.mounts[i]))
			scone_err_clear(); /* printed */
	if (vsrv_role() == VR_SERVER && shield_report_settle_all())
		scone_err_clear();
	pins_for_child();
	vsrv_fork_prepare();
	fdtab_fork_prepare();
}

void shield_at_parent(void)
{
	if (!fork_held)
		return;
	fork_held = false;
	fdtab_fork_parent();
	vsrv_fork_parent();
	shield_placeholders_forked(false);
	shield_leave();
}

void shield_at_child(void)
{
	REAL(close);

	if (!fork_held)
		return;
	fork_held = false;
	fdtab_fork_child();
	for (size_t i = 0; i < shield_g.n_mounts; i++) {
		if (shield_g.mounts[i].lock_fd >= 0)
			real_close(shield_g.mounts[i].lock_fd);
		shield_g.mounts[i].lock_fd = -1;
	}
	fdtab_forked(); /* (the volume kind forgets the parent's server handles) */
	shield_map_forget_remote();
	shield_placeholders_forked(true);
	vsrv_fork_child();
	shield_map_forked();
	shield_g.pid = getpid();
	shield_leave();
}

void shield_exit(void)
{
	/*
	 * glibc flushes stdio after the atexit handlers: flush the cookie
	 * streams on shielded files now, so their last writes are committed.
	 */
	fflush(NULL);
	shield_enter();
	for (size_t i = 0; vsrv_role() == VR_SERVER && i < shield_g.n_mounts; i++) {
		struct mount *m = &shield_g.mounts[i];
		char hex[2 * SCONE_RT_TAG_SIZE + 1];
		if (shield_commit(m) || shield_report_settle(m))
			scone_err_clear(); /* printed */
		if (m->n_prefixes && memcmp(m->sh->tag, m->first_tag, sizeof(m->first_tag)) != 0 &&
		    getpid() == shield_g.pid) {
			scone_hex_encode(hex, sizeof(hex), m->sh->tag, sizeof(m->sh->tag));
			scone_warn("fspf %s: new tag %s (SCONE_FSPF_TAG for the next run)", m->fspf, hex);
			memcpy(m->first_tag, m->sh->tag, sizeof(m->first_tag));
		}
	}
	if (getpid() == shield_g.pid)
		vsrv_retire();
	shield_leave();
	(void)scone_shield_pins_release(); /* the descriptions end with the process */
}

/*
 * _exit and _Exit skip atexit: a process that serves others' writes (a
 * forked child that took over, a parent leaving through _exit) commits
 * first, so what the others wrote is not lost with it. Not in a vfork child
 * (getpid differs from the process that mounted): its memory is its
 * parent's, and the parent goes on serving.
 */
static void commit_before_exit(void)
{
	if (__atomic_load_n(&shield_g.n_mounts, __ATOMIC_ACQUIRE) == 0 || vsrv_role() != VR_SERVER ||
	    getpid() != shield_g.pid)
		return;
	shield_enter();
	for (size_t i = 0; i < shield_g.n_mounts; i++)
		if (shield_commit(&shield_g.mounts[i]) || shield_report_settle(&shield_g.mounts[i]))
			scone_err_clear(); /* printed */
	vsrv_retire();
	shield_leave();
}

void _exit(int status)
{
	commit_before_exit();
	(void)scone_shield_pins_release(); /* (a client's descriptions end with it too) */
	syscall(SYS_exit_group, status);
	for (;;)
		;
}

void _Exit(int status)
{
	_exit(status);
}
