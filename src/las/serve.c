/*
 * serve.c - the LAS's workers. Each worker runs its own epoll loop over
 * the shared listening socket (EPOLLEXCLUSIVE: one worker wakes per new
 * connection) and the connections it accepted, so workers share nothing
 * but the file-hash cache. One request per connection: the caller is
 * identified at accept, the request read without blocking (a caller that
 * stalls holds no worker, and is dropped after LAS_REQUEST_TIMEOUT_MS),
 * every segment's writer checked (SO_PASSCRED), then the report or a
 * refusal is sent and the connection closed.
 */
#include "las.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define MAX_CONNS_PER_WORKER 512
#define FRAME_MAX (SCONE_LAS_HEADER_SIZE + SCONE_LAS_REQUEST_SIZE)

struct conn {
	int fd;
	struct las_peer peer;
	uint8_t buf[FRAME_MAX];
	size_t have;
	int64_t deadline_ms;
	struct conn *next;
};

struct worker {
	struct las_server *srv;
	pthread_t thread;
	int epfd;
	struct conn *conns;
	size_t n_conns;
};

struct las_server {
	int listen_fd;
	int stop_fd; /* eventfd: written once to stop every worker */
	struct las_ctx *ctx;
	enum las_peer_mode peer_mode;
	struct worker *workers;
	int n_workers;
	char path[108];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- answers ---- */

static void send_frame(int fd, enum scone_las_kind kind, const struct scone_wbuf *body)
{
	struct scone_wbuf w;

	scone_wbuf_init(&w, SCONE_LAS_HEADER_SIZE + SCONE_LAS_BODY_MAX, 0);
	if (scone_las_frame(kind, body->data, body->size, &w) == SCONE_ERR_OK)
		(void)!send(fd, w.data, w.size, MSG_DONTWAIT | MSG_NOSIGNAL); /* fits the socket buffer; else dropped */
	scone_wbuf_free(&w);
}

static void refuse(struct conn *c, enum scone_err err)
{
	struct scone_wbuf body;

	scone_warn("refused pid %d (uid %u): %s", (int)c->peer.pid, (unsigned)c->peer.uid, scone_err_detail());
	scone_wbuf_init(&body, SCONE_LAS_BODY_MAX, 0);
	if (scone_las_refusal_encode(err, scone_err_detail(), &body) == SCONE_ERR_OK)
		send_frame(c->fd, SCONE_LAS_MSG_REFUSAL, &body);
	scone_wbuf_free(&body);
}

static void answer(struct worker *w, struct conn *c)
{
	struct scone_las_request req;
	struct scone_wbuf report;
	enum scone_err err;

	scone_wbuf_init(&report, SCONE_LAS_BODY_MAX, 0);
	err = scone_las_request_decode(c->buf + SCONE_LAS_HEADER_SIZE, SCONE_LAS_REQUEST_SIZE, &req);
	if (!err)
		err = las_report(w->srv->ctx, &c->peer, &req, &report);
	if (err) {
		refuse(c, err);
	} else {
		send_frame(c->fd, SCONE_LAS_MSG_REPORT, &report);
		scone_debug("report for pid %d (uid %u)", (int)c->peer.pid, (unsigned)c->peer.uid);
	}
	scone_wbuf_free(&report);
}

/* ---- connections ---- */

static void conn_close(struct worker *w, struct conn *c)
{
	struct conn **pp = &w->conns;

	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	w->n_conns--;
	las_peer_close(&c->peer);
	close(c->fd);
	free(c);
}

/* Read what is there; every segment must come from the connecting process. */
static enum scone_err conn_read(struct conn *c, bool *eof)
{
	char cbuf[CMSG_SPACE(sizeof(struct ucred))];

	*eof = false;
	while (c->have < FRAME_MAX) {
		size_t want = c->have < SCONE_LAS_HEADER_SIZE ? SCONE_LAS_HEADER_SIZE - c->have : FRAME_MAX - c->have;
		struct iovec iov = { c->buf + c->have, want };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		struct cmsghdr *cm;
		struct ucred cr = { .pid = 0 };
		ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return SCONE_ERR_OK;
		if (n <= 0) {
			*eof = true;
			return SCONE_ERR_OK;
		}
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS)
				memcpy(&cr, CMSG_DATA(cm), sizeof(cr));
		SCONE_TRY(las_peer_check_writer(&c->peer, cr.pid));
		c->have += (size_t)n;
		if (c->have == SCONE_LAS_HEADER_SIZE) {
			enum scone_las_kind kind;
			size_t size;
			SCONE_TRY(scone_las_header(c->buf, &kind, &size));
			if (kind != SCONE_LAS_MSG_REQUEST || size != SCONE_LAS_REQUEST_SIZE)
				return scone_err_set(SCONE_ERR_MALFORMED, "expected a request of %d bytes",
						     SCONE_LAS_REQUEST_SIZE);
		}
	}
	return SCONE_ERR_OK;
}

static void on_readable(struct worker *w, struct conn *c)
{
	bool eof;
	enum scone_err err = conn_read(c, &eof);

	if (err) {
		refuse(c, err);
	} else if (c->have == FRAME_MAX) {
		answer(w, c);
	} else if (!eof) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = c };
		if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
			return;
	}
	conn_close(w, c);
}

static void on_accept(struct worker *w, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT };
	enum scone_err err;

	if (!c || w->n_conns >= MAX_CONNS_PER_WORKER) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->deadline_ms = now_ms() + LAS_REQUEST_TIMEOUT_MS;
	c->next = w->conns;
	w->conns = c;
	w->n_conns++;
	err = las_peer_identify(fd, w->srv->peer_mode, &c->peer);
	if (!err)
		err = las_peer_open_proc(&c->peer);
	ev.data.ptr = c;
	if (!err && epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
		err = scone_err_set(SCONE_ERR_LIMIT, "epoll: %s", strerror(errno));
	if (err) {
		refuse(c, err);
		conn_close(w, c);
	}
}

static void accept_some(struct worker *w)
{
	for (int i = 0; i < 32; i++) {
		int fd = accept4(w->srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		on_accept(w, fd);
	}
}

static void sweep(struct worker *w)
{
	int64_t now = now_ms();

	for (struct conn *c = w->conns, *next; c; c = next) {
		next = c->next;
		if (c->deadline_ms < now)
			conn_close(w, c);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];

	for (;;) {
		int n = epoll_wait(w->epfd, evs, 64, 1000);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &w->srv->listen_fd)
				accept_some(w);
			else if (evs[i].data.ptr == &w->srv->stop_fd)
				goto out;
			else
				on_readable(w, evs[i].data.ptr);
		}
		sweep(w);
	}
out:
	while (w->conns)
		conn_close(w, w->conns);
	return NULL;
}

/* ---- the server ---- */

/* Is something listening on path? Then it is another LAS, and it stays. */
static bool in_use(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	used = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	return used;
}

static enum scone_err make_parent(const char *path)
{
	char dir[108];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return SCONE_ERR_OK;
	*slash = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)!mkdir(dir, 0755);
		*p = '/';
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", dir, strerror(errno));
	return SCONE_ERR_OK;
}

static enum scone_err listen_on(struct las_server *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int one = 1;

	if (strlen(s->path) >= sizeof(sa.sun_path))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "socket path %s is too long", s->path);
	SCONE_TRY(make_parent(s->path));
	if (lstat(s->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return scone_err_set(SCONE_ERR_EXISTS, "%s exists and is not a socket", s->path);
		if (in_use(s->path))
			return scone_err_set(SCONE_ERR_BUSY, "another scone-las listens on %s", s->path);
		unlink(s->path);
	}
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0 || setsockopt(s->listen_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0 ||
	    bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(s->path, 0666) != 0 ||
	    listen(s->listen_fd, 4096) != 0)
		return scone_err_set(scone_err_from_errno(errno), "listen on unix:%s: %s", s->path, strerror(errno));
	return SCONE_ERR_OK;
}

static enum scone_err worker_start(struct las_server *s, struct worker *w)
{
	struct epoll_event l = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &s->listen_fd };
	struct epoll_event st = { .events = EPOLLIN, .data.ptr = &s->stop_fd };

	w->srv = s;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->listen_fd, &l) != 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, s->stop_fd, &st) != 0)
		return scone_err_set(SCONE_ERR_LIMIT, "epoll: %s", strerror(errno));
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
		return scone_err_set(SCONE_ERR_LIMIT, "cannot start a worker thread");
	return SCONE_ERR_OK;
}

static void server_free(struct las_server *s)
{
	for (int i = 0; s->workers && i < s->n_workers; i++)
		if (s->workers[i].epfd > 0)
			close(s->workers[i].epfd);
	free(s->workers);
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	free(s);
}

enum scone_err las_server_start(const struct las_server_opts *o, struct las_ctx *ctx, struct las_server **out)
{
	struct las_server *s = calloc(1, sizeof(*s));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	enum scone_err err = SCONE_ERR_OK;
	int started = 0;

	if (!s)
		return scone_err_set(SCONE_ERR_NOMEM, "LAS server");
	s->listen_fd = s->stop_fd = -1;
	s->ctx = ctx;
	s->peer_mode = o->peer_mode;
	snprintf(s->path, sizeof(s->path), "%s", o->socket_path);
	s->n_workers = o->workers > 0 ? o->workers : (int)(cpus > 0 ? cpus : 2);
	if (s->n_workers > LAS_MAX_WORKERS)
		s->n_workers = LAS_MAX_WORKERS;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->workers = calloc((size_t)s->n_workers, sizeof(*s->workers));
	if (s->stop_fd < 0 || !s->workers)
		err = scone_err_set(SCONE_ERR_NOMEM, "LAS server");
	if (!err)
		err = listen_on(s);
	while (!err && started < s->n_workers && !(err = worker_start(s, &s->workers[started])))
		started++;
	if (err) {
		if (started) {
			s->n_workers = started;
			las_server_stop(s);
			for (int i = 0; i < started; i++)
				pthread_join(s->workers[i].thread, NULL);
		}
		server_free(s);
		return err;
	}
	*out = s;
	return SCONE_ERR_OK;
}

void las_server_stop(struct las_server *s)
{
	uint64_t one = 1;

	(void)!write(s->stop_fd, &one, sizeof(one));
}

void las_server_wait(struct las_server *s)
{
	for (int i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i].thread, NULL);
	server_free(s);
}
