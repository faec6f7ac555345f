/*
 * vserver.c - a program's volumes served by one of its processes.
 *
 * Design (docs/runtime.md, "Processes sharing volumes"). A volume's state
 * (its namespace, the files' integrity trees, what is not committed yet)
 * lives in one process's memory: the *server*. Every other process of the
 * program (forked children, programs exec'd beside it) is a *client*: each
 * volume operation is a request to the server over a private unix socket
 * (vproto.h), executed there in order under the shield's lock. So
 * processes see each other's writes at once, as with kernel files, and a
 * child's writes are in the server the moment its call returns: a child
 * that leaves through _exit or a signal loses nothing. Commits happen at
 * the program's own sync points (fsync in any process, the close of the
 * volume's last open file in all processes, the server's exit), not at
 * every write, and one commit covers every process's writes before it
 * (group commit).
 *
 * The first process to mount serves from the start: a thread that sleeps
 * in poll until a request arrives, so nothing changes for a program that
 * never forks. A fork gives the child a fresh connection (a socketpair
 * made before the fork); a vfork child or a spawned program gets one
 * registered through the server's registration socket (from the server
 * process) or its own connection (from a client).
 *
 * When the server goes (exit, exec, a signal), its clients elect a new one
 * under the flock of the first mount's directory: the first to take it
 * opens the volumes from the disk (as committed; a state one commit ahead
 * of CAS is accepted) and serves; the others join it through its listening
 * socket, proving with the program's token that they belong to it. What
 * the old server had not committed is lost, as a crash would lose it.
 *
 * Invariants: exactly one process holds a volume open for writing at any
 * time (the server); a client never touches a volume's files; every
 * request runs under the server's shield lock.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/log.h"
#include "runtime/vproto.h"

/* ---- state ---- */

struct vconn {
	struct vconn *next;
	int fd;
	bool joined;	   /* came through the listener: must say HELLO with the token first */
	struct sfd **open; /* its open files, by handle - 1 */
	size_t n_open;
};

static enum vrole g_role = VR_NONE;
static bool g_retired;		  /* the serving process made its last commit: it serves and writes no more */
static struct vsrv_shared *g_srv; /* in the shared memfd every process of the program maps */
static uint64_t g_epoch;	  /* the server epoch this process knows */

/* Serving. */
static pthread_t g_thread;
/*
 * The serving thread runs from the first moment another process may ask:
 * before a fork, a spawn or a vfork (vsrv_serving_start), or at once when
 * processes may be waiting to join. A program that never makes a child
 * stays single-threaded, and glibc's malloc and locks keep their
 * single-thread paths (SQLite's malloc and mutexes took three times as
 * long with an idle thread beside it).
 */
static pthread_mutex_t g_start_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_started;
static int g_reg[2] = {-1, -1}; /* registration: [1] takes new connections' fds, [0] the server reads */
static int g_listen = -1;
static struct vconn *g_conns;
/*
 * Held from the moment a connection's fd enters this process (recvmsg,
 * accept) until it is in g_conns, and from its unlinking until its close:
 * a fork (vsrv_fork_prepare takes it) then never gives a child a
 * connection's fd that the child cannot find in g_conns to close. A child
 * keeping the server's end of a connection open would leave that client
 * waiting forever for the end of a server that died.
 */
static pthread_mutex_t g_conns_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *g_frame; /* the server thread's receive buffer */

/* Being served. */
static int g_conn = -1;
static uint8_t *g_cframe;

enum vrole vsrv_role(void)
{
	return g_role;
}

bool vsrv_alone(void)
{
	return g_role == VR_SERVER && !__atomic_load_n(&g_started, __ATOMIC_ACQUIRE) && !fdtab_foreign();
}

bool vsrv_retired(void)
{
	return __atomic_load_n(&g_retired, __ATOMIC_ACQUIRE);
}

/*
 * The server's last commit is done (exit, _exit): from now on it answers
 * no request (a client asking gets its connection closed and elects
 * another server) and changes nothing, so nothing acknowledged after that
 * commit can be lost with it. (lock held)
 */
void vsrv_retire(void)
{
	if (g_role != VR_SERVER)
		return;
	__atomic_store_n(&g_retired, true, __ATOMIC_RELEASE);
	if (g_srv && g_srv->pid == getpid()) {
		/* everything acknowledged is committed: its clients lose nothing when it is gone */
		__atomic_store_n(&g_srv->retired_epoch, g_epoch, __ATOMIC_RELEASE);
		g_srv->pid = 0; /* no one waits to join a server on its way out */
	}
}

bool vsrv_own_fd(int fd)
{
	return fd >= 0 && (fd == g_reg[0] || fd == g_reg[1] || fd == g_listen || fd == g_conn);
}

int vsrv_own_fd_max(void)
{
	int fds[] = {g_reg[0], g_reg[1], g_listen, g_conn}, top = -1;

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		top = fds[i] > top ? fds[i] : top;
	return top;
}

/* ---- answering one request (lock held) ---- */

static struct mount *mount_of(const struct vp_msg *q)
{
	return q->mount < shield_mount_total() ? shield_mount(q->mount) : NULL;
}

static struct sfd *handle_of(struct vconn *c, uint64_t h)
{
	return h >= 1 && h <= c->n_open ? c->open[h - 1] : NULL;
}

/* Close one of a connection's files; the volume's last close commits. */
static void close_handle(struct vconn *c, uint64_t h)
{
	struct sfd *s = handle_of(c, h);

	if (!s)
		return;
	c->open[h - 1] = NULL;
	vop_close(s);
	if (--s->m->open_count == 0 && shield_commit(s->m))
		scone_err_clear(); /* printed */
	free(s);
}

/*
 * Files kept open for descriptions clients opened from the read cache alone
 * (pinned, vcache.h) whose file left the namespace meanwhile: removed, or
 * another renamed over it. Closed once no pin holds them. The server's
 * alone (a forked child forgets them: they are its parent's).
 */
struct kept {
	struct mount *m;
	uint8_t fid[16];
	struct scone_vfile *f;
};
static struct kept *g_kept;
static size_t g_n_kept;

static void release_kept(void)
{
	for (size_t i = 0; i < g_n_kept;) {
		if (vcache_pinned((unsigned)shield_mount_index(g_kept[i].m), g_kept[i].fid)) {
			i++;
			continue;
		}
		scone_vfile_close(g_kept[i].f);
		g_kept[i] = g_kept[--g_n_kept];
	}
}

struct scone_vfile *vsrv_kept(const struct mount *m, const uint8_t fid[16])
{
	release_kept();
	for (size_t i = 0; i < g_n_kept; i++)
		if (g_kept[i].m == m && memcmp(g_kept[i].fid, fid, sizeof(g_kept[i].fid)) == 0)
			return g_kept[i].f;
	return NULL;
}

void vsrv_keep(struct mount *m, const char *vpath, const uint8_t fid[16])
{
	struct scone_vfile *f;
	struct kept *n;

	if (vsrv_kept(m, fid))
		return;
	if (scone_vfile_open(m->vol, vpath, SCONE_VF_RDONLY, 0, &f) != SCONE_ERR_OK) {
		scone_err_clear(); /* the description meets ENOENT, as before pins */
		return;
	}
	if (!(n = realloc(g_kept, (g_n_kept + 1) * sizeof(*n)))) {
		scone_vfile_close(f);
		return;
	}
	g_kept = n;
	n[g_n_kept].m = m;
	memcpy(n[g_n_kept].fid, fid, sizeof(n[g_n_kept].fid));
	n[g_n_kept++].f = f;
}

static enum scone_err open_handle(struct vconn *c, struct mount *m, const struct vp_msg *q, uint64_t *h,
				  bool *has_st, struct scone_vstat *st)
{
	struct sfd *s;
	size_t i;
	enum scone_err err;

	if (q->h & VP_OPEN_CHECK) { /* vop_open_path's lookup, here */
		err = vop_stat(m, q->p1, st);
		int v = vop_open_verdict(err, st, (int)(uint32_t)q->h);
		if (v == VOP_OPEN_STAT_ERR)
			return err;
		scone_err_clear();
		if (v != VOP_OPEN_FILE) {
			*has_st = true;
			return SCONE_ERR_OK; /* h 0: nothing opened */
		}
	}
	if (!(s = calloc(1, sizeof(*s))))
		return scone_err_set(SCONE_ERR_NOMEM, "volume server");
	s->m = m;
	snprintf(s->vpath, sizeof(s->vpath), "%s", q->p1); /* its identity in vsrv_note_dirty */
	if (q->h & VP_OPEN_FID)
		err = q->data_size == sizeof(s->fid)
			  ? vop_open_fid(s, q->data)
			  : scone_err_set(SCONE_ERR_MALFORMED, "an open by id without a 16-byte id");
	else
		err = vop_open(s, q->p1, (unsigned)q->a, (uint32_t)q->b);
	if (err) {
		free(s);
		return err;
	}
	for (i = 0; i < c->n_open && c->open[i]; i++)
		;
	if (i == c->n_open) {
		struct sfd **n = realloc(c->open, (c->n_open + 16) * sizeof(*n));
		if (!n) {
			vop_close(s);
			free(s);
			return scone_err_set(SCONE_ERR_NOMEM, "volume server");
		}
		memset(n + c->n_open, 0, 16 * sizeof(*n));
		c->open = n;
		c->n_open += 16;
	}
	c->open[i] = s;
	m->open_count++;
	if (q->a & (SCONE_VF_CREAT | SCONE_VF_TRUNC))
		shield_mark_dirty(m);
	*h = i + 1;
	/* Its status with the answer: the client's key to the read cache, and its first fstat. */
	if (vop_fstat(s, st) == SCONE_ERR_OK) {
		*has_st = true;
		vop_cache_stat(s, st);
		if (!st->is_dir && !(q->h & VP_OPEN_FID)) /* (by id: the path names another file) */
			vcache_put_name((unsigned)shield_mount_index(m), q->p1, st->file_id);
	}
	scone_err_clear();
	return SCONE_ERR_OK;
}

static int list_entry(void *arg, const char *name, const struct scone_vstat *st)
{
	return vp_put_entry(arg, name, st) != SCONE_ERR_OK;
}

/*
 * A read for a client, into the first half of the frame buffer (the request
 * sits in the second): whole blocks around the range asked, so that they go
 * to the shared read cache, from which the client reads them next time.
 */
static enum scone_err serve_read(struct sfd *s, uint64_t off, size_t n, struct scone_wbuf *out)
{
	uint64_t from = off - off % VCACHE_BLOCK;
	uint64_t to = (off + n + VCACHE_BLOCK - 1) / VCACHE_BLOCK * VCACHE_BLOCK;
	size_t got = 0, skip = (size_t)(off - from);

	if (n == 0 || to - from > VP_MAX_DATA || to < off) {
		SCONE_TRY(vop_pread(s, g_frame, n, off, &got));
		return scone_wbuf_put(out, g_frame, got);
	}
	SCONE_TRY(vop_pread(s, g_frame, (size_t)(to - from), from, &got));
	vop_cache_data(s, from, g_frame, got);
	if (got <= skip)
		return SCONE_ERR_OK;
	return scone_wbuf_put(out, g_frame + skip, got - skip < n ? got - skip : n);
}

/* Requests on a file handle; data the answer carries goes to out. */
static enum scone_err file_op(struct vconn *c, const struct vp_msg *q, struct vp_msg *a,
			      struct scone_wbuf *out)
{
	struct sfd *s = handle_of(c, q->h);
	size_t got = 0;

	if (!s)
		return scone_err_set(SCONE_ERR_BAD_FD, "no open file %llu", (unsigned long long)q->h);
	switch (q->op) {
	case VP_PREAD:
		if (q->b > VP_MAX_DATA)
			return scone_err_set(SCONE_ERR_TOO_LARGE, "read of %llu bytes",
					     (unsigned long long)q->b);
		return serve_read(s, q->a, (size_t)q->b, out);
	case VP_PWRITE:
		shield_mark_dirty(s->m);
		return vop_pwrite(s, q->data, q->data_size, q->a, &got);
	case VP_APPEND:
		shield_mark_dirty(s->m);
		return vop_append(s, q->data, q->data_size, &a->a, &got);
	case VP_FTRUNCATE:
		shield_mark_dirty(s->m);
		return vop_ftruncate(s, q->a);
	case VP_FSTAT:
		a->has_st = true;
		SCONE_TRY(vop_fstat(s, &a->st));
		vop_cache_stat(s, &a->st);
		return SCONE_ERR_OK;
	default:
		close_handle(c, q->h);
		return SCONE_ERR_OK;
	}
}

/* Requests on a path of a mount. */
static enum scone_err path_op(struct mount *m, const struct vp_msg *q, struct vp_msg *a,
			      struct scone_wbuf *out)
{
	enum scone_err err;

	switch (q->op) {
	case VP_STAT:
		a->has_st = true;
		return vop_stat(m, q->p1, &a->st);
	case VP_READDIR:
		return vop_readdir(m, q->p1, list_entry, out);
	case VP_SYNC:
		return shield_commit(m);
	case VP_MKDIR:
		err = vop_mkdir(m, q->p1, (uint32_t)q->a);
		break;
	case VP_REMOVE:
		err = vop_remove(m, q->p1, q->a != 0);
		break;
	case VP_RENAME:
		err = vop_rename(m, q->p1, q->p2);
		break;
	case VP_TRUNCATE:
		err = vop_truncate(m, q->p1, q->a);
		break;
	case VP_CHMOD:
		err = vop_chmod(m, q->p1, (uint32_t)q->a);
		break;
	default: /* VP_MTIME */
		err = vop_set_mtime(m, q->p1, (int64_t)q->a);
		break;
	}
	if (!err)
		shield_mark_dirty(m);
	return err;
}

static enum scone_err serve_one(struct vconn *c, const struct vp_msg *q, struct vp_msg *a,
				struct scone_wbuf *out, int *pass)
{
	struct mount *m = mount_of(q);

	if (g_n_kept)
		release_kept();
	if (q->op == VP_OPEN)
		return m ? open_handle(c, m, q, &a->h, &a->has_st, &a->st)
			 : scone_err_set(SCONE_ERR_INVALID, "no mount %u", q->mount);
	if (q->op >= VP_CLOSE && q->op <= VP_FSTAT)
		return file_op(c, q, a, out);
	if (q->op == VP_WINDOW) { /* (its memfd goes with the answer: *pass) */
		struct sfd *s = handle_of(c, q->h);
		return s ? shield_map_serve(s, q->a == VP_WINDOW_MAKE, pass)
			 : scone_err_set(SCONE_ERR_BAD_FD, "no open file %llu", (unsigned long long)q->h);
	}
	if (!m)
		return scone_err_set(SCONE_ERR_INVALID, "no mount %u", q->mount);
	return path_op(m, q, a, out);
}

/* ---- connections (server thread) ---- */

/* Drop c, already out of g_conns and closed: its files close (the volume's last close commits). */
static void conn_drop(struct vconn *c)
{
	shield_enter();
	for (size_t i = 0; i < c->n_open; i++)
		close_handle(c, i + 1);
	shield_leave();
	free(c->open);
	free(c);
}

static void conn_add(int fd, bool joined)
{
	struct vconn *c = calloc(1, sizeof(*c));

	if (!c) {
		SYS(close)(fd);
		return;
	}
	c->fd = shield_own_up(fd); /* (out of the program's way, and no dup2 of the program's over it) */
	c->joined = joined;
	c->next = g_conns;
	g_conns = c;
}

/* A joining process proves with the program's token (and its user) that it is one of the program's. */
static bool hello_ok(struct vconn *c, const struct vp_msg *q)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);

	return q->op == VP_HELLO && q->a == VP_VERSION && q->data_size == sizeof(g_srv->token) &&
	       scone_ct_equal(q->data, g_srv->token, sizeof(g_srv->token)) &&
	       getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) == 0 && cr.uid == getuid();
}

/* Read and answer one request; false when the connection is to be dropped. */
static bool conn_serve(struct vconn *c)
{
	struct vp_msg q, a = {0};
	struct scone_wbuf out, frame;
	enum scone_err err = SCONE_ERR_OK;
	int passed = -1, pass = -1; /* pass: an fd the answer carries, closed here once sent */
	bool keep = true, added = false;

	pthread_mutex_lock(&g_conns_lock); /* a passed fd is in g_conns or closed before a fork sees it */
	if (vp_recv(c->fd, g_frame + VP_MAX_DATA, &q, &passed)) {
		pthread_mutex_unlock(&g_conns_lock);
		scone_err_clear();
		return false;
	}
	if (passed >= 0 && q.op == VP_ADD_CONN && !c->joined)
		conn_add(passed, false), added = true;
	else if (passed >= 0)
		SYS(close)(passed);
	pthread_mutex_unlock(&g_conns_lock);
	scone_wbuf_init(&out, VP_MAX_DATA, 1);
	a.op = q.op;
	if (c->joined) {
		keep = hello_ok(c, &q);
		c->joined = !keep;
	} else if (q.op == VP_ADD_CONN) {
		if (!added)
			err = scone_err_set(SCONE_ERR_INVALID, "a connection request without its socket");
	} else if (q.op != VP_HELLO) {
		shield_enter();
		if (vsrv_retired())
			keep = false; /* the client elects another server and asks it */
		else
			err = serve_one(c, &q, &a, &out, &pass);
		/*
		 * An fd the answer carries is sent and closed under the connections'
		 * lock (taken with the shield's, in a fork's order): a fork meanwhile
		 * would give the child the window's fd for good.
		 */
		if (pass >= 0)
			pthread_mutex_lock(&g_conns_lock);
		shield_leave();
	}
	a.err = (int32_t)err;
	if (err)
		snprintf(a.detail, sizeof(a.detail), "%s", scone_err_detail());
	scone_err_clear();
	a.data = out.data;
	a.data_size = out.size;
	if (keep && q.op == VP_CLOSE && q.a == VP_CLOSE_NO_ANSWER) {
		scone_wbuf_free(&out);
		return true; /* the client does not wait for an answer */
	}
	scone_wbuf_init(&frame, VP_MAX_FRAME + 4, 1);
	if (!keep || vp_encode(&a, &frame) || vp_send(c->fd, &frame, err ? -1 : pass)) {
		scone_err_clear();
		keep = false;
	}
	if (pass >= 0) {
		shield_own_close(pass);
		pthread_mutex_unlock(&g_conns_lock);
	}
	scone_wbuf_free(&frame);
	scone_wbuf_free(&out);
	return keep;
}

/* New connections' fds sent to the registration socket by this process's threads and vfork children. */
static void take_registrations(void)
{
	for (;;) {
		char b;
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = {.iov_base = &b, .iov_len = 1};
		struct msghdr mh = {
		    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
		struct cmsghdr *cm;
		int fd = -1;
		pthread_mutex_lock(&g_conns_lock);
		if (recvmsg(g_reg[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0) {
			pthread_mutex_unlock(&g_conns_lock);
			return;
		}
		cm = CMSG_FIRSTHDR(&mh);
		if (cm && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		if (fd >= 0)
			conn_add(fd, false);
		pthread_mutex_unlock(&g_conns_lock);
	}
}

static void take_joiner(void)
{
	int fd;

	pthread_mutex_lock(&g_conns_lock);
	fd = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		conn_add(fd, true);
	pthread_mutex_unlock(&g_conns_lock);
}

static void *serve(void *arg)
{
	struct pollfd *p = NULL;
	size_t cap = 0;
	sigset_t all;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* the program's signals are the program's threads' */
	for (;;) {
		size_t n = 2, k = 2;
		for (struct vconn *c = g_conns; c; c = c->next)
			n++;
		if (n > cap) {
			struct pollfd *np = realloc(p, n * sizeof(*p));
			if (!np) {
				struct timespec t = {0, 10 * 1000 * 1000};
				nanosleep(&t, NULL);
				continue;
			}
			p = np;
			cap = n;
		}
		p[0] = (struct pollfd){.fd = g_reg[0], .events = POLLIN};
		p[1] = (struct pollfd){.fd = g_listen, .events = POLLIN};
		for (struct vconn *c = g_conns; c; c = c->next)
			p[k++] = (struct pollfd){.fd = c->fd, .events = POLLIN};
		if (poll(p, n, -1) <= 0)
			continue;
		k = 2;
		for (struct vconn **pc = &g_conns; *pc;) {
			struct vconn *c = *pc;
			if (p[k++].revents && !conn_serve(c)) {
				pthread_mutex_lock(&g_conns_lock);
				*pc = c->next;
				shield_own_close(c->fd); /* its client sees the end now */
				pthread_mutex_unlock(&g_conns_lock);
				conn_drop(c);
				continue;
			}
			pc = &c->next;
		}
		if (p[0].revents)
			take_registrations();
		if (p[1].revents)
			take_joiner();
	}
	return NULL;
}

/* ---- becoming the server ---- */

static enum scone_err listen_new(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	uint8_t rnd[12];
	char name[2 * sizeof(rnd) + 16];
	socklen_t len;

	SCONE_TRY(scone_random(rnd, sizeof(rnd)));
	memcpy(name, "scone-vol-", 10);
	scone_hex_encode(name + 10, sizeof(name) - 10, rnd, sizeof(rnd));
	/* An abstract name: no file to leave behind; the token, not the name, admits a process. */
	memcpy(a.sun_path + 1, name, strlen(name));
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
	g_listen = scone_shield_fd_up(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (g_listen < 0 || bind(g_listen, (struct sockaddr *)&a, len) != 0 || listen(g_listen, 64) != 0)
		return scone_err_set(scone_err_from_errno(errno), "volume server: listening socket: %s",
				     strerror(errno));
	snprintf(g_srv->name, sizeof(g_srv->name), "%s", name);
	return SCONE_ERR_OK;
}

/*
 * Serve the volumes this process holds (lock held); the thread starts now
 * when other processes may be waiting to join (joiners), else with the
 * first child (vsrv_serving_start).
 */
enum scone_err vsrv_serve(struct vsrv_shared *srv, bool fresh, bool joiners)
{
	enum scone_err err;

	g_srv = srv;
	if (!g_frame && !(g_frame = malloc(VP_MAX_DATA + VP_MAX_FRAME)))
		return scone_err_set(SCONE_ERR_NOMEM, "volume server");
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, g_reg) != 0)
		return scone_err_set(scone_err_from_errno(errno), "volume server: %s", strerror(errno));
	g_reg[0] = scone_shield_fd_up(g_reg[0]);
	g_reg[1] = scone_shield_fd_up(g_reg[1]);
	if ((err = listen_new()))
		return err;
	if (fresh && (err = scone_random(g_srv->token, sizeof(g_srv->token))))
		return err;
	vcache_forget_all(); /* a new server's volumes, opened from the disk: nothing cached stands */
	g_epoch = ++g_srv->epoch;
	g_srv->pid_start = vsrv_proc_start(getpid());
	g_srv->pid = getpid();
	g_role = VR_SERVER;
	shield_map_holding(joiners && !fresh); /* (windows a holder before left, for those that map them) */
	return joiners ? vsrv_serving_start() : SCONE_ERR_OK;
}

enum scone_err vsrv_serving_start(void)
{
	enum scone_err err = SCONE_ERR_OK;

	if (__atomic_load_n(&g_started, __ATOMIC_ACQUIRE) || g_role != VR_SERVER || fdtab_foreign())
		return SCONE_ERR_OK; /* (a vfork child: its parent started it before the vfork) */
	pthread_mutex_lock(&g_start_lock);
	if (!g_started) {
		if (pthread_create(&g_thread, NULL, serve, NULL) != 0)
			err = scone_err_set(SCONE_ERR_NOMEM, "volume server: no thread");
		else
			__atomic_store_n(&g_started, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&g_start_lock);
	return err;
}

/* ---- connections for other processes ---- */

/*
 * A connection for another process (a child, a spawned program): the end
 * to give it in *peer (not CLOEXEC: exec'd programs inherit it). From the
 * server process (any thread, or a vfork child) it is registered through
 * the registration socket; from a client, through its own connection.
 */
static enum scone_err takeover(void);

/* One try of vsrv_new_conn. */
static enum scone_err new_conn_once(int *peer)
{
	struct vp_msg q = {.op = VP_ADD_CONN}, a;
	int sv[2];
	enum scone_err err = SCONE_ERR_OK;

	*peer = -1;
	if (g_role == VR_SERVER) {
		SCONE_TRY(vsrv_serving_start());
		/* (not started: a child made by a raw clone instruction, past every path that starts it) */
		if (!__atomic_load_n(&g_started, __ATOMIC_ACQUIRE))
			return scone_err_set(
			    SCONE_ERR_UNSUPPORTED,
			    "volume connection: a child made around the runtime's fork, spawn "
			    "and clone paths, with the volumes' server not serving yet");
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return scone_err_set(scone_err_from_errno(errno), "volume connection: %s", strerror(errno));
	sv[1] = scone_shield_fd_up(sv[1]); /* (sv[0] goes to the server, which moves it) */
	if (g_role == VR_SERVER) {
		char b = 'c', cbuf[CMSG_SPACE(sizeof(int))] = {0};
		struct iovec iov = {.iov_base = &b, .iov_len = 1};
		struct msghdr mh = {
		    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &sv[0], sizeof(int));
		while (sendmsg(g_reg[1], &mh, MSG_NOSIGNAL) < 0)
			if (errno != EINTR) {
				err = scone_err_set(scone_err_from_errno(errno), "volume connection: %s",
						    strerror(errno));
				break;
			}
	} else {
		err = vsrv_call_fd(&q, &a, NULL, sv[0]);
	}
	SYS(close)(sv[0]);
	if (!err && SYS(fcntl)(sv[1], F_SETFD, 0) != 0) /* the new program inherits it */
		err = scone_err_set(scone_err_from_errno(errno), "volume connection: %s", strerror(errno));
	if (err) {
		SYS(close)(sv[1]);
		return err;
	}
	*peer = sv[1];
	return SCONE_ERR_OK;
}

enum scone_err vsrv_new_conn(int *peer)
{
	enum scone_err err = new_conn_once(peer);

	if (err != SCONE_ERR_NETWORK || g_role != VR_CLIENT || fdtab_foreign())
		return err; /* (a vfork child cannot elect: its parent did, vsrv_ensure_server) */
	/*
	 * The server is gone (it exited): elect, as any request does, then ask
	 * the new one (or serve). Without this, every exec of a process that had
	 * not touched a volume since the server left was refused.
	 */
	scone_err_clear();
	SCONE_TRY(takeover());
	return new_conn_once(peer);
}

void vsrv_ensure_server(void)
{
	if (g_role != VR_CLIENT || !g_srv || fdtab_foreign())
		return;
	/* (the server this process knows left: it gave up its pid at its last commit, or another serves) */
	if (__atomic_load_n(&g_srv->pid, __ATOMIC_ACQUIRE) != 0 &&
	    __atomic_load_n(&g_srv->epoch, __ATOMIC_ACQUIRE) == g_epoch)
		return;
	shield_enter();
	if (g_role == VR_CLIENT && takeover())
		scone_err_clear(); /* (the child's own requests say what failed) */
	shield_leave();
}

/* ---- fork ---- */

static int g_fork_peer = -1;

void vsrv_fork_prepare(void)
{
	if (g_role == VR_NONE || vsrv_new_conn(&g_fork_peer))
		scone_err_clear();	   /* the child finds no connection and elects or fails its calls */
	pthread_mutex_lock(&g_conns_lock); /* g_conns holds every connection fd the child inherits */
}

void vsrv_fork_parent(void)
{
	pthread_mutex_unlock(&g_conns_lock);
	if (g_fork_peer >= 0)
		SYS(close)(g_fork_peer);
	g_fork_peer = -1;
}

/* Forget what only the server process may hold: its sockets, its connections (their fds are copies). */
static void drop_server_state(void)
{
	for (struct vconn *c = g_conns, *n; c; c = n) {
		n = c->next;
		shield_own_close(c->fd);
		for (size_t i = 0; i < c->n_open; i++)
			free(c->open[i]); /* the volume handles are the parent's: not closed here */
		free(c->open);
		free(c);
	}
	g_conns = NULL;
	free(g_kept); /* the files are the parent's: not closed here */
	g_kept = NULL;
	g_n_kept = 0;
	for (int i = 0; i < 2; i++)
		if (g_reg[i] >= 0)
			SYS(close)(g_reg[i]), g_reg[i] = -1;
	if (g_listen >= 0)
		SYS(close)(g_listen), g_listen = -1;
}

/* In the child: a client over the connection made before the fork. */
void vsrv_fork_child(void)
{
	pthread_mutex_unlock(&g_conns_lock); /* taken by this thread in vsrv_fork_prepare */
	/* threads are not the child's (nor a start another thread was making) */
	g_started = false;
	g_start_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	if (g_role == VR_NONE)
		return;
	if (g_role == VR_SERVER) {
		drop_server_state();
		for (size_t i = 0; i < shield_mount_total(); i++) {
			struct mount *m = shield_mount(i);
			scone_volume_abandon(m->vol); /* the parent holds it */
			m->vol = NULL;
			m->dirty = false;
		}
	} else if (g_conn >= 0) {
		SYS(close)(g_conn);
	}
	g_conn = g_fork_peer;
	g_fork_peer = -1;
	g_role = VR_CLIENT;
	vsrv_register(g_srv);
	if (g_conn >= 0)
		(void)SYS(fcntl)(g_conn, F_SETFD, FD_CLOEXEC);
}

/* A program exec'd with a handover: served over the connection fd it inherited. */
void vsrv_use_conn(struct vsrv_shared *srv, int fd)
{
	g_srv = srv;
	g_epoch = srv->epoch;
	g_conn = fd;
	g_role = VR_CLIENT;
	(void)SYS(fcntl)(fd, F_SETFD, FD_CLOEXEC);
}

/* ---- requests (client side) ---- */

static enum scone_err join(void);

bool vsrv_serving_others(void)
{
	/*
	 * Its thread runs (connections come only through it): a child made
	 * since can have its connection still in the registration socket (not
	 * in g_conns yet); after this process's exec it joins, and the next
	 * server must serve.
	 */
	return g_role == VR_SERVER && __atomic_load_n(&g_started, __ATOMIC_ACQUIRE);
}

enum scone_err vsrv_join(struct vsrv_shared *srv)
{
	g_srv = srv;
	SCONE_TRY(join());
	g_role = VR_CLIENT;
	return SCONE_ERR_OK;
}

/* Join the server through its listening socket. */
static enum scone_err join(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct vp_msg q = {
	    .op = VP_HELLO, .a = VP_VERSION, .data = g_srv->token, .data_size = sizeof(g_srv->token)};
	struct vp_msg ans;
	size_t n = strnlen(g_srv->name, sizeof(g_srv->name) - 1);
	int fd = scone_shield_fd_up(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));

	memcpy(a.sun_path + 1, g_srv->name, n);
	if (fd < 0 ||
	    connect(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n))) {
		int e = errno;
		if (fd >= 0)
			SYS(close)(fd);
		return scone_err_set(SCONE_ERR_NETWORK, "volume server %s: %s", g_srv->name, strerror(e));
	}
	if (g_conn >= 0)
		SYS(close)(g_conn);
	g_conn = fd;
	g_epoch = g_srv->epoch;
	return vsrv_call_fd(&q, &ans, NULL, -1);
}

/*
 * The server is gone: elect a new one under the flock of the first
 * mount's directory. The first process in opens the volumes from the disk
 * and serves; the others join it.
 */
static enum scone_err takeover(void)
{
	int lfd = shield_election_fd();
	enum scone_err err = SCONE_ERR_OK;
	/* The server this process knew left after its last commit, or died with what it had not committed. */
	bool died = __atomic_load_n(&g_srv->retired_epoch, __ATOMIC_ACQUIRE) != g_epoch;
	uint64_t knew = g_epoch;

	if (lfd < 0)
		return scone_err_set(SCONE_ERR_IO, "volume server gone, and no election lock");
	/*
	 * A server just elected may itself be on its way out: elect again. A
	 * server that runs and does not answer yet (one exec'd in place of the
	 * last, still starting; one that dies) is asked again for up to 2 s.
	 */
	for (int round = 0; round < 200; round++) {
		while (SYS(flock)(lfd, LOCK_EX) != 0 && errno == EINTR)
			;
		/*
		 * A server runs: a new one elected by another process, or the one
		 * this process knew, whose connection alone is gone. Join it: two
		 * servers of one volume would overwrite each other's commits.
		 */
		if (g_srv->pid > 0 && g_srv->pid != getpid() && vsrv_server_runs(g_srv->pid)) {
			if (g_srv->epoch == g_epoch)
				scone_info(
				    "volume server (pid %d): the connection to it broke; joining it again",
				    (int)g_srv->pid);
			err = join();
		} else {
			if (g_conn >= 0)
				SYS(close)(g_conn), g_conn = -1;
			if (g_srv->retired_epoch != g_srv->epoch) {
				bool changes = g_srv->changed || g_srv->n_dirty || g_srv->dirty_overflow;
				int32_t dead = g_srv->pid;
				vsrv_lose_dirty(g_srv->epoch);
				g_srv->changed = 0;
				g_srv->pid = 0; /* a process that outlives the crash serves without another */
				if (dead > 0)
					vsrv_crash_program(dead, changes);
			}
			err = shield_reopen_volumes();
			if (!err)
				err = vsrv_serve(g_srv, false, true);
		}
		(void)SYS(flock)(lfd, LOCK_UN);
		if (err != SCONE_ERR_NETWORK)
			break;
		scone_err_clear();
		g_epoch = 0; /* that server was leaving: the next round may serve */
		struct timespec t = {0, 10 * 1000 * 1000};
		nanosleep(&t, NULL);
	}
	shield_forget_remote(died,
			     knew); /* its files were open on the old server: opened again when next used */
	return err;
}

/* A request on the connection, passing fd along when pass_fd >= 0. */
static enum scone_err send_request(const struct vp_msg *q, int pass_fd)
{
	struct scone_wbuf frame;
	enum scone_err err;

	if (g_conn < 0)
		return scone_err_set(SCONE_ERR_NETWORK, "volume server: no connection");
	scone_wbuf_init(&frame, VP_MAX_FRAME + 4, 1);
	err = vp_encode(q, &frame);
	if (!err)
		err = vp_send(g_conn, &frame, pass_fd);
	scone_wbuf_free(&frame);
	return err;
}

/* One round trip on the connection; passing fd along when pass_fd >= 0, one the answer carries to *passed. */
static enum scone_err call(const struct vp_msg *q, struct vp_msg *a, struct scone_wbuf *out, int pass_fd,
			   int *passed)
{
	enum scone_err err;

	if (passed)
		*passed = -1;
	if (!g_cframe && !(g_cframe = malloc(VP_MAX_FRAME)))
		return scone_err_set(SCONE_ERR_NOMEM, "volume request");
	err = send_request(q, pass_fd);
	if (!err)
		err = vp_recv_answer(g_conn, g_cframe, a, passed);
	if (!err && a->err) {
		scone_err_set((enum scone_err)a->err, "%s", a->detail);
		err = (enum scone_err)a->err;
	}
	if (err && passed && *passed >= 0) {
		SYS(close)(*passed);
		*passed = -1;
	}
	if (err)
		return err;
	return out && a->data_size ? scone_wbuf_put(out, a->data, a->data_size) : SCONE_ERR_OK;
}

enum scone_err vsrv_call_fd(const struct vp_msg *q, struct vp_msg *a, struct scone_wbuf *out, int pass_fd)
{
	return call(q, a, out, pass_fd, NULL);
}

enum scone_err vsrv_send(const struct vp_msg *q)
{
	return send_request(q, -1);
}

enum scone_err vsrv_call_taking(const struct vp_msg *q, struct vp_msg *a, struct scone_wbuf *out, bool *again,
				int *passed)
{
	enum scone_err err = call(q, a, out, -1, passed);

	*again = false;
	if (err != SCONE_ERR_NETWORK || g_role != VR_CLIENT)
		return err;
	/* The server is gone (or this process had no connection): elect; the caller asks again. */
	scone_err_clear();
	if ((err = takeover()))
		return err;
	*again = true;
	return SCONE_ERR_OK;
}

enum scone_err vsrv_call(const struct vp_msg *q, struct vp_msg *a, struct scone_wbuf *out, bool *again)
{
	return vsrv_call_taking(q, a, out, again, NULL);
}
