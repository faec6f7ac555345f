/*
 * shield.c - the file-system shield: the session's volumes mounted at their
 * paths, every file under a mount point served through the volume library
 * (plaintext for the program, AEAD-protected files on the disk).
 *
 * Layout on the host (docs/runtime.md): a volume mounted at PATH keeps its
 * fspf at PATH/volume.fspf and its encrypted files in PATH itself (one
 * encrypted region "/" whose host dir is PATH); PATH/x is the volume path /x.
 *
 * A shielded fd is a real kernel fd (an empty, sealed memfd, so numbers never
 * collide and nothing written around the shield lands anywhere) with an
 * entry in a table fd -> open file description (vfile + offset + flags,
 * refcounted: dup'ed fds share it), guarded by one mutex. Path
 * calls come from inject.c's interposers through the scone_shield_* hooks;
 * fd calls (read, write, lseek, fstat, close, ...) are interposed here.
 * Everything else passes through to the next libc definition, errno intact.
 *
 * The volume library and the CAS client do their own I/O through libc, that
 * is through these interposers: a thread-local depth counter makes every
 * interposer pass straight through while the shield itself is working.
 *
 * Sync points: fsync/fdatasync of a shielded fd, the close of a volume's last
 * open fd and exit commit the volume and report its new tag to CAS
 * (pipelined: the answer is read before the next commit's record). After a
 * fork, or in a program exec'd with a handover, the volumes are shared
 * between processes: every operation takes the mount's flock, follows the
 * others' commits and commits before letting go.
 * mmap is served as an anonymous snapshot of the plaintext. Not shielded,
 * refused instead: O_DIRECT (EINVAL), O_TMPFILE (EOPNOTSUPP), shared writable
 * mmap (ENODEV; the memfd is empty and sealed, so even a raw mmap syscall
 * maps no data), splice/tee (EINVAL), io_uring (ENOSYS).
 *
 * shield_meta.c holds the calls about files rather than their bytes (modes,
 * times, owners, links, extended attributes, statfs, realpath);
 * shield_internal.h what the two share.
 */
/* The interposers must be real functions, not glibc's fortify inline wrappers. */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"
#include "volume/vio.h"

struct sdir {
	struct sdir *next;
	struct dirent64 *ents;
	size_t n, cap, pos;
	int fd;
	const char *vpath; /* while listing */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread int inside;
static __thread int saved_errno;
static struct mount *mounts;
static size_t n_mounts;
static bool g_election_held; /* a program exec'd by a server with clients elects before it serves */
static pid_t g_pid; /* the process that mounted (or forked): an exec from another pid is a vfork child's */
static int g_share_fd = -1; /* the memfd behind the server's and every mount's shared state */
static struct vsrv_shared *g_srv; /* its first part: who serves the volumes */
static struct sdir *dirs;

/* A working directory inside a volume (normalised, absolute), or "" (the kernel's). */
static pthread_mutex_t cwd_lock = PTHREAD_MUTEX_INITIALIZER;
static char vcwd[PATH_MAX];

static struct scone_runtime_config *g_cfg;
static struct scone_identity g_id;
static char *g_addr;
static uint8_t g_pin[32];


static int set_vcwd(const char *full);
static int path_stat(struct mount *m, const char *vpath, struct stat *st);

/*
 * Take the lock; errno is restored by leave (a shim only sets it on failure).
 * It serialises this process's threads, the volume server's requests from
 * other processes (vserver.c) and a vfork child (which shares the memory).
 */
void shield_enter(void)
{
	saved_errno = errno;
	pthread_mutex_lock(&lock);
	inside++;
}

void shield_leave(void)
{
	inside--;
	pthread_mutex_unlock(&lock);
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
	return n_mounts;
}

/* ---- what shield_path.c needs of the table ---- */

size_t shield_mount_count(void)
{
	return inside ? 0 : __atomic_load_n(&n_mounts, __ATOMIC_ACQUIRE);
}

size_t shield_mount_total(void)
{
	return __atomic_load_n(&n_mounts, __ATOMIC_ACQUIRE);
}

struct mount *shield_mount(size_t i)
{
	return &mounts[i];
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

/* The runtime's own fds: the volumes' shared state, CAS's report connection, the server's sockets, flock handles. */
bool shield_own_fd(int fd)
{
	int rep = scone_runtime_report_fd();

	if (fd < 0)
		return false;
	if (fd == g_share_fd || fd == rep || vsrv_own_fd(fd))
		return true;
	for (size_t i = 0; i < n_mounts; i++)
		if (fd == mounts[i].lock_fd || fd == mounts[i].plock_fd)
			return true;
	return false;
}

int shield_own_fd_max(void)
{
	int top = vsrv_own_fd_max(), rep = scone_runtime_report_fd();

	top = g_share_fd > top ? g_share_fd : top;
	top = rep > top ? rep : top;
	for (size_t i = 0; i < n_mounts; i++) {
		top = mounts[i].lock_fd > top ? mounts[i].lock_fd : top;
		top = mounts[i].plock_fd > top ? mounts[i].plock_fd : top;
	}
	return top;
}

/* ---- tags and commits (lock held) ---- */

/*
 * Tag reports. A commit writes its record, marks the new tag pending in the
 * state every process of the volume shares (sh->pending) and sends its
 * report without waiting (pipelined). Before anything writes the next
 * record of that volume (and before exit, fork, exec and letting another
 * process at a shared volume), the pending tag must be confirmed by CAS:
 * so the disk is never more than one unconfirmed commit ahead of CAS, and
 * the next start accepts it. A report whose answer is lost or refused for
 * a passing reason (CAS unreachable or restarting, busy, a rate limit) is
 * sent again, with backoff, for up to SCONE_TAG_REPORT_TIMEOUT seconds
 * (default 30); CAS treats a report of the tag it already has as done, so
 * sending twice is harmless. Only then does the sync fail (EIO), and the
 * pending tag stays: the next sync, by any process, tries again before it
 * writes. (lock held; in shared mode the mount's flock too)
 */
static struct mount *g_inflight; /* the report on this process's connection whose answer is unread */

#define REPORT_TIMEOUT_DEFAULT_SEC 30

/* Record tag as the one CAS knows for m (in the state all processes share). */
static void know_tag(struct mount *m, const uint8_t tag[SCONE_RT_TAG_SIZE])
{
	memcpy(m->sh->tag, tag, SCONE_RT_TAG_SIZE);
	m->sh->has_tag = 1;
	m->sh->has_pending = 0;
}

static void report_failed(const struct mount *m, enum scone_err err)
{
	fprintf(stderr, "scone: volume %s: cannot report its new tag to CAS: %s: %s (%s)\n", m->name,
		scone_strerror(err), scone_err_detail(), scone_errname(err));
}

/* Worth sending again: CAS unreachable, restarting, busy or rate-limiting; not a refusal on the merits. */
static bool report_retryable(enum scone_err err)
{
	return err == SCONE_ERR_NETWORK || err == SCONE_ERR_LIMIT || err == SCONE_ERR_BUSY || err == SCONE_ERR_IO ||
	       err == SCONE_ERR_NO_SPACE;
}

/* How long a sync may wait for CAS to confirm a tag (SCONE_TAG_REPORT_TIMEOUT seconds). */
static int64_t report_timeout_ms(void)
{
	const char *v = scone_runtime_setting(g_cfg, "SCONE_TAG_REPORT_TIMEOUT");
	char *end;
	long sec;

	if (!v)
		v = getenv("SCONE_TAG_REPORT_TIMEOUT");
	if (!v || !*v)
		return REPORT_TIMEOUT_DEFAULT_SEC * 1000;
	sec = strtol(v, &end, 10);
	return *end || sec < 1 || sec > 3600 ? REPORT_TIMEOUT_DEFAULT_SEC * 1000 : (int64_t)sec * 1000;
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* Send m's pending tag (from the tag CAS confirmed last). */
static enum scone_err report_send(struct mount *m)
{
	enum scone_err err = scone_runtime_report_tag_start(g_addr, g_pin, &g_id, g_cfg, m->name,
							    m->sh->has_tag ? m->sh->tag : NULL, m->sh->pending);

	if (!err)
		g_inflight = m;
	return err;
}

/* Read the answer to the report in flight on this connection, if any: OK, or the report's error. */
static enum scone_err report_read(struct mount **which)
{
	struct mount *m = g_inflight;
	enum scone_err err;

	*which = m;
	if (!m)
		return SCONE_ERR_OK;
	g_inflight = NULL;
	err = scone_runtime_report_tag_wait();
	if (!err)
		know_tag(m, m->sh->pending);
	return err;
}

/* Make CAS confirm m's pending tag (sending it again while that may still help). */
static enum scone_err report_settle(struct mount *m)
{
	int64_t deadline = 0, backoff = 20;
	struct mount *answered;
	enum scone_err err;

	for (;;) {
		err = report_read(&answered);
		if (err && answered != m) {
			scone_err_clear(); /* another volume's: its own next sync settles it */
			err = SCONE_ERR_OK;
		}
		if (!m->sh->has_pending)
			return SCONE_ERR_OK;
		if (answered == m && err && !report_retryable(err))
			break;
		if (!deadline)
			deadline = now_ms() + report_timeout_ms();
		else if (now_ms() >= deadline)
			break;
		if (answered == m || err)
			sleep_ms(backoff), backoff = backoff < 1000 ? backoff * 2 : 1000;
		if ((err = report_send(m)) && !report_retryable(err))
			break;
	}
	if (!err)
		err = scone_err_set(SCONE_ERR_NETWORK, "no answer");
	if (report_retryable(err))
		scone_err_set(err, "%s (gave up after %lld s: SCONE_TAG_REPORT_TIMEOUT; the volume stays one commit ahead "
				   "of CAS and opens at the next start)",
			      scone_err_detail(), (long long)(report_timeout_ms() / 1000));
	report_failed(m, err);
	return err;
}

/* Settle every volume's pending tag (before exit, fork, exec and letting other processes at the volumes). */
static enum scone_err report_settle_all(void)
{
	enum scone_err first = SCONE_ERR_OK, err;

	for (size_t i = 0; i < n_mounts; i++)
		if ((err = report_settle(&mounts[i])) && !first)
			first = err;
	return first;
}

/* For scone_volume_sync_with: between the data flush and the record, the previous tag is confirmed. */
static enum scone_err report_wait_cb(void *arg)
{
	return report_settle(arg);
}

/* After m's record: its tag is pending, and its report goes out (not waited for). */
static enum scone_err report(struct mount *m)
{
	uint8_t tag[SCONE_RT_TAG_SIZE];

	SCONE_TRY(report_settle(m));
	scone_volume_tag(m->vol, tag);
	if (m->sh->has_tag && memcmp(tag, m->sh->tag, sizeof(tag)) == 0)
		return SCONE_ERR_OK;
	if (!m->tracked) {
		know_tag(m, tag);
		return SCONE_ERR_OK;
	}
	memcpy(m->sh->pending, tag, sizeof(tag));
	m->sh->has_pending = 1;
	if (report_send(m))
		scone_err_clear(); /* pending: the next sync (or exit) sends it again */
	return SCONE_ERR_OK;
}

/* Commit m in the process that holds it (lock held); prints what failed. */
enum scone_err shield_commit_local(struct mount *m)
{
	enum scone_err err;

	if (!m->dirty || !m->vol || vsrv_retired())
		return SCONE_ERR_OK;
	if ((err = scone_volume_sync_with(m->vol, report_wait_cb, m))) {
		fprintf(stderr, "scone: volume %s: cannot commit: %s: %s (%s)\n", m->name, scone_strerror(err),
			scone_err_detail(), scone_errname(err));
		return err;
	}
	m->dirty = false;
	return report(m);
}

enum scone_err shield_commit(struct mount *m)
{
	return vsrv_role() == VR_CLIENT ? vop_sync(m) : shield_commit_local(m);
}

/* ---- volumes shared between processes (after fork, and across exec): vserver.c ---- */

/* This process's own description of m's directory, the flock handle. */
static int lock_fd(struct mount *m)
{
	REAL(open);

	if (m->lock_fd < 0)
		m->lock_fd = real_open(m->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return m->lock_fd;
}

int shield_election_fd(void)
{
	return n_mounts ? lock_fd(&mounts[0]) : -1;
}

size_t shield_mount_index(const struct mount *m)
{
	return (size_t)(m - mounts);
}

/*
 * This process's files were open in another process's volumes (a new
 * server now, or a fork child whose parent keeps them): they are opened
 * again, by path, when next used. Nothing is closed: the handles were the
 * other process's.
 */
static void forget_one(int fd, struct fd_desc *d, void *arg)
{
	(void)fd, (void)arg;
	if (d->kind == &shield_volume_kind)
		d->kind->forked(d);
}

void shield_forget_remote(void)
{
	fdtab_each(forget_one, NULL);
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

static size_t open_descriptions(struct mount *m)
{
	static unsigned mark;
	struct open_count c = { .m = m, .mark = ++mark };

	fdtab_each(count_one, &c);
	return c.n;
}

/* A new server: open every volume from the disk as committed (a state one commit ahead of CAS is accepted). */
enum scone_err shield_reopen_volumes(void)
{
	for (size_t i = 0; i < n_mounts; i++) {
		struct mount *m = &mounts[i];
		enum scone_err err;
		if (m->vol)
			continue;
		err = scone_volume_open(m->fspf, m->key, m->sh->has_tag ? m->sh->tag : NULL, SCONE_VOL_RDWR, &m->vol);
		if (err)
			return scone_err_set(err, "volume %s: taking over from the process that served it: %s", m->name,
					     scone_err_detail());
		m->dirty = false;
		m->open_count = open_descriptions(m);
	}
	return SCONE_ERR_OK;
}

/* Open s's file again by its path when next used (an exec'd program's inherited fd). */
static void reopen_file(struct sfd *s)
{
	s->file = true;
	s->vf_reopen = shield_vf_flags(s->flags & ~(O_CREAT | O_EXCL | O_TRUNC));
}

/*
 * fork: the lock is held across it (no thread of the parent is inside the
 * shield), and the child gets a connection to the server made before the
 * fork (vserver.c): it is a client from its first instruction. Its own
 * flock description is opened when it needs one.
 */
static bool fork_held;

static void at_prepare(void)
{
	if (__atomic_load_n(&n_mounts, __ATOMIC_ACQUIRE) == 0)
		return;
	shield_enter();
	fork_held = true;
	/*
	 * The server commits first: a parent that leaves right after forking
	 * (daemon(): fork, then _exit in the parent) must not take the
	 * writes it made before with it; the child, which then takes over the
	 * volumes, finds them on the disk.
	 */
	for (size_t i = 0; vsrv_role() == VR_SERVER && i < n_mounts; i++)
		if (shield_commit(&mounts[i]))
			scone_err_clear(); /* printed */
	if (vsrv_role() == VR_SERVER && report_settle_all())
		scone_err_clear();
	vsrv_fork_prepare();
}

static void at_parent(void)
{
	if (!fork_held)
		return;
	fork_held = false;
	vsrv_fork_parent();
	shield_leave();
}

static void at_child(void)
{
	REAL(close);

	if (!fork_held)
		return;
	fork_held = false;
	for (size_t i = 0; i < n_mounts; i++) {
		if (mounts[i].lock_fd >= 0)
			real_close(mounts[i].lock_fd);
		mounts[i].lock_fd = -1;
	}
	fdtab_forked(); /* (the volume kind forgets the parent's server handles) */
	vsrv_fork_child();
	g_pid = getpid();
	shield_leave();
}

static void shield_exit(void)
{
	/*
	 * glibc flushes stdio after the atexit handlers: flush the cookie
	 * streams on shielded files now, so their last writes are committed.
	 */
	fflush(NULL);
	shield_enter();
	for (size_t i = 0; vsrv_role() == VR_SERVER && i < n_mounts; i++) {
		struct mount *m = &mounts[i];
		char hex[2 * SCONE_RT_TAG_SIZE + 1];
		if (shield_commit(m) || report_settle(m))
			scone_err_clear(); /* printed */
		if (m->n_prefixes && memcmp(m->sh->tag, m->first_tag, sizeof(m->first_tag)) != 0 &&
		    getpid() == g_pid) {
			scone_hex_encode(hex, sizeof(hex), m->sh->tag, sizeof(m->sh->tag));
			fprintf(stderr, "scone: fspf %s: new tag %s (SCONE_FSPF_TAG for the next run)\n", m->fspf, hex);
			memcpy(m->first_tag, m->sh->tag, sizeof(m->first_tag));
		}
	}
	if (getpid() == g_pid)
		vsrv_retire();
	shield_leave();
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
	if (__atomic_load_n(&n_mounts, __ATOMIC_ACQUIRE) == 0 || vsrv_role() != VR_SERVER || getpid() != g_pid)
		return;
	shield_enter();
	for (size_t i = 0; i < n_mounts; i++)
		if (shield_commit(&mounts[i]) || report_settle(&mounts[i]))
			scone_err_clear(); /* printed */
	vsrv_retire();
	shield_leave();
}

void _exit(int status)
{
	commit_before_exit();
	syscall(SYS_exit_group, status);
	for (;;)
		;
}

void _Exit(int status)
{
	_exit(status);
}

/* ---- mounting ---- */

static enum scone_err make_dirs(char *path)
{
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		int r = mkdir(path, 0700);
		int e = errno;
		*p = c;
		if (r != 0 && e != EEXIST)
			return scone_err_set(scone_err_from_errno(e), "volume mount point %s: %s", path, strerror(e));
		if (c == '\0')
			return SCONE_ERR_OK;
	}
}

/* Mount rv at m; the volume itself is opened only by the process that holds it (hold). */
static enum scone_err mount_one(const struct scone_rt_volume *rv, struct mount *m, bool hold)
{
	char fspf[PATH_MAX];
	uint8_t key_out[SCONE_VOLUME_KEY_SIZE];
	uint8_t tag[SCONE_RT_TAG_SIZE];
	enum scone_err err;

	if (!rv->path || rv->path[0] != '/' || strlen(rv->path) >= PATH_MAX - 16)
		return scone_err_set(SCONE_ERR_INVALID, "volume %s: mount point is not an absolute path", rv->name);
	m->path = strdup(rv->path);
	if (!m->path)
		return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	scone_path_normalise(m->path);
	m->len = strcmp(m->path, "/") == 0 ? 0 : strlen(m->path);
	m->name = rv->name;
	m->tracked = rv->tag_tracked;
	if (!(m->key = scone_secure_alloc(SCONE_VOLUME_KEY_SIZE)))
		return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	memcpy(m->key, rv->key, SCONE_VOLUME_KEY_SIZE);
	if ((err = make_dirs(m->path)))
		return err;
	if (!(m->ids = calloc(1, sizeof(*m->ids))))
		return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	m->n_ids = 1;
	shield_note_dir(m, 0, m->path);
	{
		char real[PATH_MAX];
		if (SYS(realpath)(m->path, real) && strcmp(real, m->path) != 0 && !(m->real_path = strdup(real)))
			return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	}
	snprintf(fspf, sizeof(fspf), "%s/volume.fspf", m->path);
	if (!(m->fspf = strdup(fspf)))
		return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	if (!hold)
		return SCONE_ERR_OK;
	if (!rv->initialised) {
		if ((err = scone_volume_create(fspf)))
			return scone_err_set(err, "volume %s: CAS has no tag for it, but %s cannot be created: %s",
					     rv->name, fspf, scone_err_detail());
		if ((err = scone_volume_open(fspf, NULL, NULL, SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED, &m->vol)))
			return err;
		err = scone_volume_add_region(m->vol, "/", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, m->path);
		if (!err)
			err = scone_volume_seal(m->vol, rv->key, key_out, tag);
		scone_wipe(key_out, sizeof(key_out));
		if (err)
			return err;
		m->dirty = false;
		return report(m);
	}
	if ((err = scone_volume_open(fspf, rv->key, rv->tag, SCONE_VOL_RDWR, &m->vol)))
		return scone_err_set(err, "volume %s at %s: %s", rv->name, m->path, scone_err_detail());
	know_tag(m, rv->tag);
	/* The disk may be one sync ahead of CAS (a writer that stopped before reporting). */
	return report(m);
}

/*
 * The shared state of n volumes: a MAP_SHARED memfd, fresh (fd < 0) or the
 * one a parent handed over across exec.
 */
static struct vshare *g_share;

static enum scone_err share_map(size_t n, int fd)
{
	REAL(close);
	size_t size = (sizeof(struct vsrv_shared) + n * sizeof(struct vshare) + 4095) & ~(size_t)4095;
	struct stat st;
	void *p;

	if (fd < 0) {
		fd = memfd_create("scone-volumes", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
			return scone_err_set(scone_err_from_errno(errno), "volumes: shared state: %s", strerror(errno));
	} else if (fstat(fd, &st) != 0 || (size_t)st.st_size != size) {
		return scone_err_set(SCONE_ERR_INVALID, "volumes: the handed-over shared state does not fit");
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		real_close(fd);
		return scone_err_set(scone_err_from_errno(e), "volumes: shared state: %s", strerror(e));
	}
	g_srv = p;
	g_share = (struct vshare *)(void *)((struct vsrv_shared *)p + 1);
	g_share_fd = fd;
	return SCONE_ERR_OK;
}

/*
 * Mount a protection file made with `scone fspf` (SCONE_FSPF, or a session's
 * fspf_path): each of its regions is shielded under its own path. Its tag
 * is not tracked by CAS: without one the freshness is not checked (a
 * warning says so), and a changed tag is printed at exit for the next run.
 */
static enum scone_err mount_fspf(const struct scone_rt_fspf *f, struct mount *m, bool hold)
{
	char full[PATH_MAX];
	char *slash;
	enum scone_err err;
	size_t n;

	m->name = "fspf";
	m->tracked = false;
	if (!f->has_key)
		return scone_err_set(SCONE_ERR_INVALID, "fspf %s: no key (SCONE_FSPF_KEY)", f->path);
	if (!scone_shield_abspath(AT_FDCWD, f->path, full, sizeof(full)))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "fspf %s: path too long", f->path);
	if (!(m->fspf = strdup(full)) || !(m->path = strdup(full)) ||
	    !(m->key = scone_secure_alloc(SCONE_VOLUME_KEY_SIZE)))
		return scone_err_set(SCONE_ERR_NOMEM, "fspf %s", f->path);
	slash = strrchr(m->path, '/');
	slash[slash == m->path ? 1 : 0] = '\0';
	m->len = strlen(m->path);
	memcpy(m->key, f->key, SCONE_VOLUME_KEY_SIZE);
	if (!f->has_tag)
		fprintf(stderr, "scone: warning: fspf %s opened without SCONE_FSPF_TAG: an older copy would not be "
				"noticed\n", full);
	/* A process served by another reads only the regions (where its paths go), then lets go. */
	if ((err = scone_volume_open(full, f->key, f->has_tag ? f->tag : NULL, hold ? SCONE_VOL_RDWR : SCONE_VOL_RDONLY,
				     &m->vol)))
		return scone_err_set(err, "fspf %s: %s", full, scone_err_detail());
	n = scone_volume_region_count(m->vol);
	if (n == 0 || !(m->prefixes = calloc(n, sizeof(*m->prefixes))) || !(m->ids = calloc(n, sizeof(*m->ids))))
		return scone_err_set(n ? SCONE_ERR_NOMEM : SCONE_ERR_INVALID, "fspf %s: %s", full,
				     n ? "out of memory" : "it has no regions");
	for (size_t i = 0; i < n; i++) {
		struct scone_region_info info;
		scone_volume_region(m->vol, i, &info);
		if (!(m->prefixes[i] = strdup(info.path)))
			return scone_err_set(SCONE_ERR_NOMEM, "fspf %s", full);
		m->n_prefixes++;
		m->n_ids++;
		shield_note_dir(m, i, info.path); /* a region whose path is also a host directory */
	}
	scone_volume_tag(m->vol, m->first_tag);
	if (!hold) {
		scone_volume_abandon(m->vol);
		m->vol = NULL;
		return SCONE_ERR_OK;
	}
	know_tag(m, m->first_tag);
	return SCONE_ERR_OK;
}

/*
 * The tag a parent handed over for the mount named name into tag: the shared
 * state's when the parent handed that over (it is the newest), else the one
 * in its record; false when there is none.
 */
static bool handed_tag(const struct scone_handover *h, const char *name, const struct vshare *sh,
		       uint8_t tag[SCONE_RT_TAG_SIZE])
{
	bool known = false;

	for (size_t k = 0; k < h->volume_count; k++) {
		if (strcmp(h->volumes[k].name, name) != 0 || !h->volumes[k].has_tag)
			continue;
		memcpy(tag, h->volumes[k].tag, SCONE_RT_TAG_SIZE);
		known = true;
	}
	if (h->share_fd >= 0 && sh->has_tag) {
		memcpy(tag, sh->tag, SCONE_RT_TAG_SIZE);
		known = true;
	}
	return known;
}

/*
 * Does this process hold the volumes (true) or is it served by another?
 * A program exec'd with a connection is served over it; one exec'd by a
 * server that had clients joins a server that is still there (a client
 * that took over first), else it serves; any other holds them.
 */
static bool decide_role(const struct scone_handover *h)
{
	bool hold = true;
	int lfd;

	if (h && h->conn_fd >= 0) {
		vsrv_use_conn(g_srv, h->conn_fd);
		return false;
	}
	if (!h || !h->shared || (lfd = lock_fd(&mounts[0])) < 0)
		return true;
	while (SYS(flock)(lfd, LOCK_EX) != 0 && errno == EINTR)
		;
	if (g_srv->pid > 0 && g_srv->pid != getpid() && kill(g_srv->pid, 0) == 0 && vsrv_join(g_srv) == SCONE_ERR_OK)
		hold = false;
	scone_err_clear();
	if (hold)
		g_election_held = true; /* released once this process serves */
	else
		(void)SYS(flock)(lfd, LOCK_UN);
	return hold;
}

/* The volume library's host I/O goes to libc itself, never through the runtime's interposers. */
static void volume_io_unshielded(void)
{
	static struct scone_vio_sys sys;

	sys = (struct scone_vio_sys){
		.open = SYS(open), .close = SYS(close), .pread = SYS(pread), .pwrite = SYS(pwrite),
		.ftruncate = SYS(ftruncate), .fstat = SYS(fstat), .fsync = SYS(fsync), .fdatasync = SYS(fdatasync),
		.unlink = SYS(unlink), .rename = SYS(rename), .mkdir = SYS(mkdir), .opendir = SYS(opendir),
		.readdir = SYS(readdir), .closedir = SYS(closedir),
	};
	scone_vio_host_sys(&sys);
}

static enum scone_err mount_all(const char *cas_addr, const uint8_t pin[32], struct scone_identity *id,
				struct scone_runtime_config *cfg, const struct scone_handover *h)
{
	enum scone_err err = SCONE_ERR_OK;
	size_t i;
	bool hold;

	volume_io_unshielded();
	size_t total = cfg->volume_count + (cfg->fspf ? 1 : 0);

	g_addr = strdup(cas_addr ? cas_addr : "");
	mounts = calloc(total, sizeof(*mounts));
	if (!g_addr || !mounts)
		return scone_err_set(SCONE_ERR_NOMEM, "volumes");
	memcpy(g_pin, pin, sizeof(g_pin));
	g_cfg = cfg;
	g_id = *id;
	g_pid = getpid();
	fdtab_own();
	if ((err = share_map(total, h ? h->share_fd : -1)))
		return err;
	for (i = 0; i < total; i++) {
		mounts[i].sh = &g_share[i];
		mounts[i].lock_fd = -1;
		mounts[i].plock_fd = -1;
		if (h && i < cfg->volume_count)
			cfg->volumes[i].initialised = handed_tag(h, cfg->volumes[i].name, mounts[i].sh, cfg->volumes[i].tag);
		else if (h)
			cfg->fspf->has_tag |= handed_tag(h, "fspf", mounts[i].sh, cfg->fspf->tag);
		if (i < cfg->volume_count && !(mounts[i].path = strdup(cfg->volumes[i].path ? cfg->volumes[i].path : "")))
			return scone_err_set(SCONE_ERR_NOMEM, "volumes");
	}
	shield_enter();
	hold = decide_role(h);
	for (i = 0; i < total && !err; i++) {
		free(mounts[i].path); /* set again by the mount */
		mounts[i].path = NULL;
		err = i < cfg->volume_count ? mount_one(&cfg->volumes[i], &mounts[i], hold)
					    : mount_fspf(cfg->fspf, &mounts[i], hold);
	}
	if (!err && hold)
		err = report_settle_all(); /* main starts from a tag CAS has */
	if (!err && hold)
		err = vsrv_serve(g_srv, !h);
	if (g_election_held) {
		(void)SYS(flock)(lock_fd(&mounts[0]), LOCK_UN);
		g_election_held = false;
	}
	shield_leave();
	if (err) {
		char detail[512];
		snprintf(detail, sizeof(detail), "%s", scone_err_detail());
		for (size_t j = 0; j < i; j++) {
			if (mounts[j].vol && scone_volume_close(mounts[j].vol, NULL))
				scone_err_clear(); /* the mount error is the one to report */
			free(mounts[j].path);
		}
		for (size_t j = 0; j < total; j++) {
			scone_secure_free(mounts[j].key, SCONE_VOLUME_KEY_SIZE);
			free(mounts[j].fspf);
			for (size_t k = 0; k < mounts[j].n_prefixes; k++)
				free(mounts[j].prefixes[k]);
			free(mounts[j].prefixes);
			free(mounts[j].ids);
			free(mounts[j].real_path);
		}
		scone_err_set(err, "%s", detail);
		free(mounts);
		mounts = NULL;
		free(g_addr);
		g_addr = NULL;
		g_cfg = NULL;
		memset(&g_id, 0, sizeof(g_id));
		return err;
	}
	*id = (struct scone_identity){0};
	for (i = 0; i < cfg->volume_count; i++) /* the volumes hold their own copies */
		scone_wipe(cfg->volumes[i].key, sizeof(cfg->volumes[i].key));
	if (cfg->fspf)
		scone_wipe(cfg->fspf->key, sizeof(cfg->fspf->key));
	if (atexit(shield_exit) != 0 || pthread_atfork(at_prepare, at_parent, at_child) != 0)
		return scone_err_set(SCONE_ERR_NOMEM, "volumes: atexit");
	__atomic_store_n(&n_mounts, total, __ATOMIC_RELEASE);
	return SCONE_ERR_OK;
}

enum scone_err scone_shield_mount(const char *cas_addr, const uint8_t pin[32], struct scone_identity *id,
				  struct scone_runtime_config *cfg)
{
	if (cfg->volume_count == 0 && !cfg->fspf)
		return SCONE_ERR_OK;
	return mount_all(cas_addr, pin, id, cfg, NULL);
}

/* ---- exec: handing the volumes to the next program ---- */

bool scone_memfd_named(int fd, const char *name)
{
	char proc[64], link[128], want[96];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	n = readlink(proc, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return strcmp(link, want) == 0;
}

/* An inherited fd already adopted with the same placeholder (a dup made before the exec), or NULL. */
static struct fd_desc *adopted_twin(const struct scone_handover *h, size_t upto, int fd)
{
	struct stat st;

	if (SYS(fstat)(fd, &st) != 0)
		return NULL;
	for (size_t j = 0; j < upto; j++) {
		struct fd_desc *d = fdtab_peek(h->fds[j].fd);
		if (d && d->dev == st.st_dev && d->ino == st.st_ino)
			return d;
	}
	return NULL;
}

/* Take over the fds the previous program left open on the volumes (before main). */
static enum scone_err adopt_fds(const struct scone_handover *h)
{
	for (size_t i = 0; i < h->fd_count; i++) {
		const struct scone_handover_fd *r = &h->fds[i];
		struct mount *m = &mounts[r->volume];
		struct fd_desc *twin;
		struct sfd *s;
		if (r->fd < 0 || fdtab_peek(r->fd) || !scone_memfd_named(r->fd, SHIELD_PLACEHOLDER))
			continue; /* closed or reused on the way: nothing to take over */
		if ((twin = adopted_twin(h, i, r->fd))) {
			(void)fdtab_share(r->fd, twin); /* one description, as before the exec */
			continue;
		}
		if (!(s = calloc(1, sizeof(*s))))
			return scone_err_set(SCONE_ERR_NOMEM, "inherited fd %d", r->fd);
		fdtab_desc_init(&s->base, &shield_volume_kind);
		s->m = m;
		s->flags = r->flags;
		snprintf(s->vpath, sizeof(s->vpath), "%s", r->vpath);
		s->file = !r->dir;
		if (s->file)
			reopen_file(s);
		if (!fdtab_note(&s->base, r->fd) || !fdtab_install(r->fd, &s->base)) {
			free(s);
			continue; /* (a placeholder the table cannot hold stays an empty memfd) */
		}
		m->open_count++;
	}
	return SCONE_ERR_OK;
}

enum scone_err scone_shield_mount_handover(const struct scone_handover *h, struct scone_identity *id,
					   struct scone_runtime_config *cfg)
{
	enum scone_err err;

	if (cfg->volume_count == 0 && !cfg->fspf)
		return SCONE_ERR_OK;
	if ((err = mount_all(h->cas_addr, h->pin, id, cfg, h)))
		return err;
	shield_enter();
	err = adopt_fds(h);
	shield_leave();
	if (!err && h->cwd)
		set_vcwd(h->cwd);
	return err;
}

/* Walking the table for an exec's handover: what the kinds of the inheritable fds record. */
struct handover_walk {
	struct scone_handover *h;
	enum scone_err err;
};

static void handover_one(int fd, struct fd_desc *d, void *arg)
{
	struct handover_walk *w = arg;
	int fl, e;

	if (w->err || !d->kind->handover || !fdtab_is(fd, d) || (fl = SYS(fcntl)(fd, F_GETFD)) < 0 ||
	    (fl & FD_CLOEXEC))
		return;
	if ((e = d->kind->handover(d, fd, w->h)))
		w->err = scone_err_set(scone_err_from_errno(e), "exec: fd %d: %s", fd, strerror(e));
}

static enum scone_err handover_fds(struct scone_handover *h)
{
	struct handover_walk w = { .h = h };

	fdtab_each(handover_one, &w);
	return w.err;
}

enum scone_err scone_shield_handover(struct scone_handover *h, bool spawn, struct scone_wbuf *identity, int *share_dup,
				     int *conn_dup)
{
	REAL(fcntl);
	enum scone_err err = SCONE_ERR_OK;
	size_t n = __atomic_load_n(&n_mounts, __ATOMIC_ACQUIRE);

	*share_dup = *conn_dup = -1;
	if (n == 0)
		return SCONE_ERR_OK;
	/* A vfork child shares the caller's memory: the caller goes on beside the new program too. */
	spawn = spawn || getpid() != g_pid;
	shield_enter();
	/*
	 * A server replaced by the new program: the volumes as committed, which
	 * the new program finds when it comes to hold them. (A spawn, or a vfork
	 * child whose fds subprocess modules closed, leaves them to the server.)
	 */
	for (size_t i = 0; vsrv_role() == VR_SERVER && !spawn && i < n && !err; i++)
		err = shield_commit(&mounts[i]);
	if (!err && vsrv_role() == VR_SERVER && !spawn)
		err = report_settle_all();
	/* Served by the process that goes on (this one, or the server), over a connection of its own. */
	if (!err && (spawn || vsrv_role() == VR_CLIENT))
		err = vsrv_new_conn(conn_dup);
	if (!err && !(h->volumes = calloc(n, sizeof(*h->volumes))))
		err = scone_err_set(SCONE_ERR_NOMEM, "exec: volumes");
	for (size_t i = 0; !err && i < n; i++) {
		h->volumes[i].name = (char *)mounts[i].name;
		h->volumes[i].has_tag = mounts[i].sh->has_tag;
		memcpy(h->volumes[i].tag, mounts[i].sh->tag, sizeof(h->volumes[i].tag));
	}
	h->volume_count = err ? 0 : n;
	if (!err)
		err = handover_fds(h);
	if (!err)
		err = scone_identity_to_pem(&g_id, identity);
	if (!err && g_share_fd >= 0 && (*share_dup = real_fcntl(g_share_fd, F_DUPFD_CLOEXEC, 3)) >= 0 &&
	    real_fcntl(*share_dup, F_SETFD, 0) != 0)
		err = scone_err_set(scone_err_from_errno(errno), "exec: volumes' shared state: %s", strerror(errno));
	if (!err && g_share_fd >= 0 && *share_dup < 0)
		err = scone_err_set(scone_err_from_errno(errno), "exec: volumes' shared state: %s", strerror(errno));
	if (!err) {
		h->identity = (char *)identity->data;
		h->identity_len = identity->size;
		h->share_fd = *share_dup;
		h->conn_fd = *conn_dup;
		char cwd[PATH_MAX];
		h->shared = vsrv_serving_others(); /* a server with clients execs: they elect, and so does the new program */
		shield_vcwd(cwd);
		h->cwd = cwd[0] ? strdup(cwd) : NULL;
	}
	shield_leave();
	return err;
}

/* ---- working directory ---- */

/*
 * A working directory inside a volume is virtual: the kernel's cwd would be
 * the host directory of ciphertext, so the kernel's stays where it was and
 * the shield remembers the volume directory. Relative paths given to the
 * shielded calls (open, stat, rename, mkdir, opendir, ... and AT_FDCWD) and
 * getcwd use it; chdir/fchdir out of the volume go back to the kernel's.
 * Any directory of a volume can be the working directory (chdir, or fchdir
 * to a shielded directory fd); exec'd programs get it through the handover.
 * Relative paths given to calls the shield does not interpose (e.g. execve,
 * bind of a unix socket) still resolve against the kernel's cwd.
 */
static int set_vcwd(const char *full)
{
	pthread_mutex_lock(&cwd_lock);
	snprintf(vcwd, sizeof(vcwd), "%s", full);
	pthread_mutex_unlock(&cwd_lock);
	return 0;
}

/* A copy of the volume working directory ("" when the kernel's is the one). */
void shield_vcwd(char out[PATH_MAX])
{
	pthread_mutex_lock(&cwd_lock);
	snprintf(out, PATH_MAX, "%s", vcwd);
	pthread_mutex_unlock(&cwd_lock);
}

/* chdir into m's directory vpath (the mount point or any directory below it). */
static int chdir_volume(struct mount *m, const char *vpath)
{
	char full[PATH_MAX];
	struct stat st;

	if (path_stat(m, vpath, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return shield_fail(ENOTDIR);
	if ((size_t)shield_program_path(m, vpath, full, sizeof(full)) >= sizeof(full))
		return shield_fail(ENAMETOOLONG);
	scone_path_normalise(full);
	return set_vcwd(full);
}

int chdir(const char *path)
{
	char vpath[PATH_MAX], full[PATH_MAX];
	struct mount *m = shield_resolve_dir(AT_FDCWD, path, vpath);
	int r;
	REAL(chdir);

	if (m)
		return chdir_volume(m, vpath);
	/* A relative path out of a volume cwd: from the volume cwd, not the kernel's. */
	full[0] = '\0';
	if (path[0] && path[0] != '/' && !inside) {
		char cur[PATH_MAX];
		shield_vcwd(cur);
		if (cur[0] && (size_t)snprintf(full, sizeof(full), "%s/%s", cur, path) >= sizeof(full))
			full[0] = '\0';
		if (full[0])
			scone_path_normalise(full);
	}
	r = real_chdir(full[0] ? full : path);
	if (r == 0 && !inside)
		set_vcwd("");
	return r;
}

int fchdir(int fd)
{
	struct sfd *s;
	char vpath[PATH_MAX];
	struct mount *m = NULL;
	int r;
	REAL(fchdir);

	if (shield_maybe_shielded(fd)) {
		shield_enter();
		if ((s = shield_fd_entry(fd)) && !s->file) {
			m = s->m;
			snprintf(vpath, sizeof(vpath), "%s", s->vpath);
		}
		r = s ? 0 : -1;
		shield_leave();
		if (m)
			return chdir_volume(m, vpath);
		if (r == 0)
			return shield_fail(ENOTDIR);
	}
	r = real_fchdir(fd);
	if (r == 0 && !inside)
		set_vcwd("");
	return r;
}

char *get_current_dir_name(void)
{
	REAL(get_current_dir_name);
	char cur[PATH_MAX];

	if (inside)
		return real_get_current_dir_name();
	shield_vcwd(cur);
	return cur[0] ? strdup(cur) : real_get_current_dir_name();
}

/*
 * getcwd with a volume cwd: its path, with glibc's semantics (buf NULL:
 * malloc'ed, of at least size bytes when size is not 0; size 0 with a buf:
 * EINVAL; too small: ERANGE).
 */
char *getcwd(char *buf, size_t size)
{
	char cur[PATH_MAX];
	size_t k;
	REAL(getcwd);

	if (inside)
		return real_getcwd(buf, size);
	shield_vcwd(cur);
	if (!cur[0])
		return real_getcwd(buf, size);
	k = strlen(cur) + 1;
	if (buf && size == 0)
		return errno = EINVAL, NULL;
	if (size && size < k)
		return errno = ERANGE, NULL;
	if (!buf && !(buf = malloc(size > k ? size : k)))
		return errno = ENOMEM, NULL;
	memcpy(buf, cur, k);
	return buf;
}

/* ---- metadata ---- */

/*
 * The inode number: a file's id, or for a directory (which has none) a hash
 * of its volume path, so that cp -r and tar tell directories apart.
 */
uint64_t shield_inode_of(const struct scone_vstat *v, const char *vpath)
{
	uint64_t ino = 0;

	memcpy(&ino, v->file_id, sizeof(ino));
	if (!ino && vpath) {
		ino = 14695981039346656037ULL;
		for (const char *p = vpath; *p; p++)
			ino = (ino ^ (uint8_t)*p) * 1099511628211ULL;
	}
	return ino ? ino : 1;
}

static void fill_stat(const struct scone_vstat *v, const char *vpath, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = SHIELD_DEV;
	st->st_ino = (ino_t)shield_inode_of(v, vpath);
	st->st_mode = (v->is_dir ? S_IFDIR : S_IFREG) | (mode_t)(v->mode & 07777);
	st->st_nlink = v->is_dir ? 2 : 1;
	st->st_uid = getuid();
	st->st_gid = getgid();
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
	fill_stat(&v, s->vpath, st);
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

static int path_stat(struct mount *m, const char *vpath, struct stat *st)
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
		fill_stat(&v, vpath, st);
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
	*ret = path_stat(m, vpath, st);
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
	buf->stx_mtime = (struct statx_timestamp){ .tv_sec = st.st_mtim.tv_sec, .tv_nsec = (uint32_t)st.st_mtim.tv_nsec };
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
	*ret = path_stat(m, vpath, &st);
	if (*ret == 0 && (how & X_OK) && !(st.st_mode & 0111) && !S_ISDIR(st.st_mode))
		*ret = shield_fail(EACCES);
	return true;
}

/* ---- namespace ---- */

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
		m->dirty = true;
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
	struct retarget_walk w = { .m = m, .from = from, .to = to, .lf = strlen(from) };

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

/* ---- io_uring ---- */

/*
 * io_uring submits reads and writes the kernel performs without calling
 * libc, so they would meet a shielded fd's empty, sealed placeholder
 * (nothing leaks: reads see end of file, writes EPERM). While volumes are
 * mounted, io_uring_setup through syscall() is refused (ENOSYS, which
 * io_uring users take as "not available" and fall back) with a line on
 * stderr saying why. A program issuing the raw instruction itself still
 * only meets the placeholders.
 */
long syscall(long n, ...)
{
	REAL(syscall);
	long a[6];
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (__atomic_load_n(&n_mounts, __ATOMIC_ACQUIRE) > 0 && !inside) {
		/* libuv closes files with syscall(SYS_close): the fd table must hear of it. */
		switch (n) {
		case SYS_close:
			return close((int)a[0]);
		case SYS_close_range:
			return close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
		case SYS_dup:
			return dup((int)a[0]);
		case SYS_dup2:
			return dup2((int)a[0], (int)a[1]);
		case SYS_dup3:
			return dup3((int)a[0], (int)a[1], (int)a[2]);
		default:
			break;
		}
	}
	if ((n == SYS_io_uring_setup && scone_async_io_refused("io_uring")) ||
	    (n == SYS_io_setup && scone_async_io_refused("Linux AIO"))) {
		errno = ENOSYS;
		return -1;
	}
	return real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ---- directories ---- */


_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "struct dirent and dirent64 share a layout here");

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

static bool is_sdir(const void *p)
{
	if (inside || !__atomic_load_n(&dirs, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&lock);
	struct sdir *d = dirs;
	while (d && (const void *)d != p)
		d = d->next;
	pthread_mutex_unlock(&lock);
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
	struct sdir d = { 0 };
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
		size_t len = strlen(src->d_name), rec = (offsetof(struct dirent64, d_name) + len + 1 + 7) & ~(size_t)7;
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
		d->next = dirs;
		__atomic_store_n(&dirs, d, __ATOMIC_RELEASE);
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
		d->next = dirs;
		__atomic_store_n(&dirs, d, __ATOMIC_RELEASE);
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
	pthread_mutex_lock(&lock);
	for (pp = &dirs; *pp != d; pp = &(*pp)->next)
		;
	*pp = d->next;
	pthread_mutex_unlock(&lock);
	close(d->fd);
	free(d->ents);
	free(d);
	return 0;
}

/* ---- stdio: glibc's FILE does not call the exported read/write ---- */

static ssize_t cookie_read(void *c, char *buf, size_t n)
{
	return read((int)(intptr_t)c, buf, n);
}

static ssize_t cookie_write(void *c, const char *buf, size_t n)
{
	ssize_t r = write((int)(intptr_t)c, buf, n);

	return r < 0 ? 0 : r; /* fopencookie: 0 reports the error */
}

static int cookie_seek(void *c, off64_t *pos, int whence)
{
	off64_t r = lseek64((int)(intptr_t)c, *pos, whence);

	if (r < 0)
		return -1;
	*pos = r;
	return 0;
}

static int cookie_close(void *c)
{
	return close((int)(intptr_t)c);
}

static int fopen_flags(const char *mode)
{
	int flags;

	switch (mode[0]) {
	case 'r':
		flags = 0;
		break;
	case 'w':
		flags = O_CREAT | O_TRUNC;
		break;
	case 'a':
		flags = O_CREAT | O_APPEND;
		break;
	default:
		return -1;
	}
	if (strchr(mode, '+'))
		flags |= O_RDWR;
	else
		flags |= mode[0] == 'r' ? O_RDONLY : O_WRONLY;
	if (strchr(mode, 'x'))
		flags |= O_EXCL;
	if (strchr(mode, 'e'))
		flags |= O_CLOEXEC;
	return flags;
}

static const cookie_io_functions_t cookie_io = {
	.read = cookie_read, .write = cookie_write, .seek = cookie_seek, .close = cookie_close};

/*
 * A cookie stream on fd. glibc marks a cookie stream's fd as -2 (fileno:
 * EBADF); programs call fstat(fileno(fp)) (sort does), so the stream carries
 * its shielded fd instead. glibc's cookie streams do all their I/O and the
 * close through the cookie functions, never through that field.
 */
static FILE *cookie_stream(int fd, const char *mode)
{
	FILE *fp = fopencookie((void *)(intptr_t)fd, mode, cookie_io);

	if (fp)
		fp->_fileno = fd;
	return fp;
}

/* A stream on a shielded fd: the same cookie stream as fopen's; fclose closes fd. */
FILE *fdopen(int fd, const char *mode)
{
	REAL(fdopen);
	int flags = mode ? fopen_flags(mode) : -1;
	int cur;

	if (!shield_maybe_shielded(fd))
		return real_fdopen(fd, mode);
	if (flags < 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((cur = fcntl(fd, F_GETFL)) < 0)
		return NULL;
	if (((cur & O_ACCMODE) == O_RDONLY && (flags & O_ACCMODE) != O_RDONLY) ||
	    ((cur & O_ACCMODE) == O_WRONLY && (flags & O_ACCMODE) != O_WRONLY)) {
		errno = EINVAL;
		return NULL;
	}
	if ((flags & O_APPEND) && !(cur & O_APPEND) && fcntl(fd, F_SETFL, cur | O_APPEND) != 0)
		return NULL;
	return cookie_stream(fd, mode);
}

/*
 * A shielded file dup'ed onto 0, 1 or 2 (sort -o, shell-style redirection
 * inside the program): glibc's stdin/stdout/stderr would use the raw fd (the
 * empty sealed placeholder: EPERM, nothing leaks), so they become cookie
 * streams on the same fd number. The program's fclose(stdout) closes fd 1
 * and commits as any close.
 */
void shield_std_stream(int fd)
{
	FILE **slot = fd == 0 ? &stdin : fd == 1 ? &stdout : fd == 2 ? &stderr : NULL;
	FILE *fp;

	if (!slot || !shield_maybe_shielded(fd))
		return;
	fflush(*slot);
	fp = cookie_stream(fd, fd == 0 ? "r" : "w");
	if (fp)
		*slot = fp;
}

bool scone_shield_fopen(const char *path, const char *mode, FILE **ret)
{
	int flags = mode ? fopen_flags(mode) : -1;
	int fd, e;

	if (!scone_shield_openat(AT_FDCWD, path, flags < 0 ? O_RDONLY : flags, 0666, &fd))
		return false;
	*ret = NULL;
	if (fd < 0)
		return true;
	if (flags < 0) {
		close(fd);
		errno = EINVAL;
		return true;
	}
	*ret = cookie_stream(fd, mode);
	if (!*ret) {
		e = errno;
		close(fd);
		errno = e;
	}
	return true;
}
