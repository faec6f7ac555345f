/*
 * server.c - the CAS HTTPS front end's lifecycle: options and defaults,
 * one listening socket per worker (SO_REUSEPORT on one host:port, so the
 * kernel spreads connections), one event loop and evhttp per worker
 * thread, and the graceful stop.
 *
 * Stop: cas_server_stop writes a byte to each worker's self-pipe (the only
 * thing it does, so a signal handler may call it). Each worker then closes
 * its listening socket, closes connections that have no request in flight,
 * lets the others finish (a request being read within its deadline, a
 * response being written), and leaves its loop when none is left or after
 * a grace period of timeout_sec + 1 s. cas_server_run returns once every
 * worker has.
 */
#include "server_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"

#define DEFAULT_MAX_HEADER_BYTES (16u << 10)
#define DEFAULT_MAX_BODY_BYTES ((1u << 20) + (64u << 10))
#define DEFAULT_MAX_CONNECTIONS 4096
#define DEFAULT_MAX_PENDING_BYTES ((size_t)64 << 20)
#define DEFAULT_RATE 200
#define DEFAULT_TIMEOUT_SEC 10
#define DEFAULT_SLOW_WORKERS 1
#define DEFAULT_SLOW_QUEUE 64
#define MAX_SLOW_WORKERS 64
#define MAX_WORKERS 256
#define SIZE_LIMIT ((size_t)1 << 40) /* sanity bound on the byte limits */
#define LISTEN_BACKLOG 1024

/* ---- options ---- */

static enum scone_err fill_opts(struct cas_server *srv, const struct cas_server_opts *in)
{
	struct cas_server_opts *o = &srv->o;
	long cpus;

	if (!in->ssl_ctx || !in->handler || !in->host)
		return scone_err_set(SCONE_ERR_INVALID,
				     "server options: host, ssl_ctx and handler are required");
	if (in->workers < 0 || in->max_connections < 0 || in->max_requests_per_conn_per_sec < 0 ||
	    in->timeout_sec < 0 || in->max_header_bytes > SIZE_LIMIT || in->max_body_bytes > SIZE_LIMIT ||
	    in->max_pending_bytes > SIZE_LIMIT || in->slow_workers < 0 ||
	    in->slow_workers > MAX_SLOW_WORKERS || in->slow_queue < 0)
		return scone_err_set(SCONE_ERR_INVALID,
				     "server options: a limit is negative or absurdly large");
	*o = *in;
	if (!(srv->host_copy = strdup(in->host)))
		return SCONE_ERR_NOMEM;
	o->host = srv->host_copy;
	if (!o->workers) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		o->workers = cpus > 0 ? (int)(cpus < MAX_WORKERS ? cpus : MAX_WORKERS) : 1;
	}
	if (o->workers > MAX_WORKERS)
		return scone_err_set(SCONE_ERR_INVALID, "server options: %d workers; at most %d", o->workers,
				     MAX_WORKERS);
	o->max_header_bytes = o->max_header_bytes ? o->max_header_bytes : DEFAULT_MAX_HEADER_BYTES;
	o->max_body_bytes = o->max_body_bytes ? o->max_body_bytes : DEFAULT_MAX_BODY_BYTES;
	o->max_connections = o->max_connections ? o->max_connections : DEFAULT_MAX_CONNECTIONS;
	o->max_pending_bytes = o->max_pending_bytes ? o->max_pending_bytes : DEFAULT_MAX_PENDING_BYTES;
	o->max_requests_per_conn_per_sec =
	    o->max_requests_per_conn_per_sec ? o->max_requests_per_conn_per_sec : DEFAULT_RATE;
	o->timeout_sec = o->timeout_sec ? o->timeout_sec : DEFAULT_TIMEOUT_SEC;
	o->slow_workers = o->slow_workers ? o->slow_workers : DEFAULT_SLOW_WORKERS;
	o->slow_queue = o->slow_queue ? o->slow_queue : DEFAULT_SLOW_QUEUE;
	if (o->max_pending_bytes < o->max_header_bytes + o->max_body_bytes)
		return scone_err_set(
		    SCONE_ERR_INVALID,
		    "server options: max_pending_bytes (%zu) is below one largest request (%zu bytes "
		    "of headers and body)",
		    o->max_pending_bytes, o->max_header_bytes + o->max_body_bytes);
	return SCONE_ERR_OK;
}

/* ---- listening sockets ---- */

static enum scone_err listen_fail(const char *what, const char *host, uint16_t port, int fd)
{
	int e = errno;

	if (fd >= 0)
		close(fd);
	return scone_err_set(scone_err_from_errno(e), "listen on %s port %u: %s: %s", host, port, what,
			     strerror(e));
}

/* Bind host:port (SO_REUSEPORT) and listen; *port becomes the bound port. */
static enum scone_err open_listener(const char *host, uint16_t *port, int *out_fd)
{
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char service[8];
	int one = 1, fd, rc;

	snprintf(service, sizeof(service), "%u", *port);
	if ((rc = getaddrinfo(host, service, &hints, &ai)) != 0)
		return scone_err_set(SCONE_ERR_NETWORK, "listen on %s port %u: cannot resolve: %s", host,
				     *port, gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return listen_fail("socket", host, *port, -1);
	}
	/*
	 * TCP_NODELAY is inherited by accepted sockets on Linux: without it a
	 * keep-alive response written in two pieces waits for the client's
	 * delayed ACK (40 ms per request).
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		freeaddrinfo(ai);
		return listen_fail("setsockopt", host, *port, fd);
	}
	rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc != 0)
		return listen_fail("bind (address in use or not local?)", host, *port, fd);
	if (listen(fd, LISTEN_BACKLOG) != 0)
		return listen_fail("listen", host, *port, fd);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return listen_fail("getsockname", host, *port, fd);
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	*out_fd = fd;
	return SCONE_ERR_OK;
}

/* ---- workers ---- */

static void begin_stop(struct cas_server_worker *w)
{
	struct timeval grace = {w->srv->o.timeout_sec + 1, 0};

	if (w->stopping)
		return;
	w->stopping = true;
	if (w->bound) {
		evhttp_del_accept_socket(w->http, w->bound);
		w->bound = NULL;
	}
	cas_server_conn_stop_all(w);
	if (w->nconns == 0)
		event_base_loopbreak(w->base);
	else
		evtimer_add(w->grace_ev, &grace);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	begin_stop(arg);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct cas_server_worker *w = arg;

	(void)fd;
	(void)what;
	w->srv->o.worker_tick(w->srv->o.handler_ctx, w->index);
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct cas_server_worker *w = arg;

	(void)fd;
	(void)what;
	scone_warn("worker %d: %d connection(s) still busy after the grace period; closing them", w->index,
		   w->nconns);
	event_base_loopbreak(w->base);
}

void cas_server_worker_conn_gone(struct cas_server_worker *w)
{
	if (w->stopping && !w->draining && w->nconns == 0)
		event_base_loopbreak(w->base);
}

static enum scone_err setup_http(struct cas_server_worker *w, int fd)
{
	const struct cas_server_opts *o = &w->srv->o;
	const ev_uint16_t all = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
				EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
				EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH;

	if (!(w->http = evhttp_new(w->base))) {
		close(fd);
		return scone_err_set(SCONE_ERR_NOMEM, "worker %d: evhttp_new failed", w->index);
	}
	evhttp_set_bevcb(w->http, cas_server_conn_bev, w);
	evhttp_set_gencb(w->http, cas_server_http_request, w);
	/* Every method evhttp knows reaches us, so the refusal is a JSON 405. */
	evhttp_set_allowed_methods(w->http, all);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)o->max_header_bytes);
	evhttp_set_max_body_size(w->http, (ev_ssize_t)o->max_body_bytes);
	evhttp_set_timeout(w->http, o->timeout_sec);
	evhttp_set_default_content_type(w->http, "application/json");
	if (!(w->bound = evhttp_accept_socket_with_handle(w->http, fd))) {
		close(fd);
		return scone_err_set(SCONE_ERR_NOMEM, "worker %d: cannot listen with evhttp", w->index);
	}
	return SCONE_ERR_OK;
}

static enum scone_err setup_worker(struct cas_server_worker *w, int fd)
{
	int p[2];

	/* Two priorities: connection timers (0) run before I/O (1, the default) of the same pass. */
	if (!(w->base = event_base_new()) || event_base_priority_init(w->base, 2) != 0) {
		close(fd);
		return scone_err_set(SCONE_ERR_NOMEM, "worker %d: event_base_new failed", w->index);
	}
	SCONE_TRY(setup_http(w, fd));
	SCONE_TRY(cas_server_slow_worker_init(w));
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
		return scone_err_set(scone_err_from_errno(errno), "worker %d: pipe: %s", w->index,
				     strerror(errno));
	w->pipe_rd = p[0];
	w->pipe_wr = p[1];
	w->stop_ev = event_new(w->base, w->pipe_rd, EV_READ | EV_PERSIST, on_stop, w);
	w->grace_ev = evtimer_new(w->base, on_grace, w);
	if (!w->stop_ev || !w->grace_ev || event_add(w->stop_ev, NULL) != 0)
		return scone_err_set(SCONE_ERR_NOMEM, "worker %d: cannot set up its stop events", w->index);
	if (w->srv->o.worker_tick) {
		struct timeval second = {1, 0};
		w->tick_ev = event_new(w->base, -1, EV_PERSIST, on_tick, w);
		if (!w->tick_ev || event_add(w->tick_ev, &second) != 0)
			return scone_err_set(SCONE_ERR_NOMEM, "worker %d: cannot set up its tick", w->index);
	}
	return SCONE_ERR_OK;
}

/* Close everything the loop served and let libevent finalize the connections. */
static void teardown_worker(struct cas_server_worker *w)
{
	w->draining = true;
	/* Calls in the slow lane lose their connections now: they will be dropped, not answered. */
	for (struct cas_server_conn *c = w->conns; c; c = c->next)
		if (c->call)
			cas_server_slow_cancel(c->call, true);
	if (w->stop_ev)
		event_free(w->stop_ev);
	if (w->grace_ev)
		event_free(w->grace_ev);
	if (w->tick_ev)
		event_free(w->tick_ev);
	w->stop_ev = w->grace_ev = w->tick_ev = NULL;
	if (w->http)
		evhttp_free(w->http);
	w->http = NULL;
	w->bound = NULL;
	/* Bufferevents are finalized from the loop; run it until every connection is gone. */
	for (int i = 0; i < 100 && w->nconns > 0 && w->base; i++)
		event_base_loop(w->base, EVLOOP_NONBLOCK);
	cas_server_slow_worker_drain(w);
	if (w->nconns)
		scone_warn("worker %d: %d connection(s) not finalized at teardown", w->index, w->nconns);
}

static void *worker_main(void *arg)
{
	struct cas_server_worker *w = arg;
	const struct cas_server_opts *o = &w->srv->o;
	enum scone_err err;

	if (o->worker_init && (err = o->worker_init(o->handler_ctx, w->index)) != SCONE_ERR_OK) {
		w->err = err;
		scone_error("worker %d: start failed: %s%s%s", w->index, scone_strerror(err),
			    scone_err_detail()[0] ? ": " : "", scone_err_detail());
		cas_server_stop(w->srv);
		teardown_worker(w);
		return NULL;
	}
	if (event_base_dispatch(w->base) < 0) {
		w->err = scone_err_set(SCONE_ERR_IO, "worker %d: event loop failed", w->index);
		scone_error("worker %d: event loop failed; stopping the server", w->index);
		cas_server_stop(w->srv);
	}
	teardown_worker(w);
	if (o->worker_fini)
		o->worker_fini(o->handler_ctx, w->index);
	return NULL;
}

/* ---- public ---- */

enum scone_err cas_server_new(const struct cas_server_opts *opts, struct cas_server **out)
{
	struct cas_server *srv;
	enum scone_err err;
	uint16_t port;

	if (!opts || !out)
		return scone_err_set(SCONE_ERR_INVALID, "cas_server_new: no options or no output");
	*out = NULL;
	SCONE_TRY(cas_server_conn_global_init());
	if (!(srv = calloc(1, sizeof(*srv))))
		return SCONE_ERR_NOMEM;
	if ((err = cas_server_slow_init(srv)) != SCONE_ERR_OK) {
		free(srv);
		return err;
	}
	if ((err = fill_opts(srv, opts)) != SCONE_ERR_OK) {
		srv->o.ssl_ctx = NULL; /* not referenced yet */
		goto fail;
	}
	if (!SSL_CTX_up_ref(srv->o.ssl_ctx)) {
		srv->o.ssl_ctx = NULL;
		err = scone_err_set(SCONE_ERR_CRYPTO, "cas_server_new: cannot reference the TLS context");
		goto fail;
	}
	if (!(srv->workers = calloc((size_t)srv->o.workers, sizeof(*srv->workers)))) {
		err = SCONE_ERR_NOMEM;
		goto fail;
	}
	srv->nworkers = srv->o.workers;
	for (int i = 0; i < srv->nworkers; i++) {
		srv->workers[i] =
		    (struct cas_server_worker){.srv = srv, .index = i, .pipe_rd = -1, .pipe_wr = -1};
	}
	/* The first worker binds the port asked for (maybe 0); the others join the one it got. */
	port = srv->o.port;
	for (int i = 0; i < srv->nworkers; i++) {
		int fd = -1;
		if ((err = open_listener(srv->o.host, &port, &fd)) != SCONE_ERR_OK ||
		    (err = setup_worker(&srv->workers[i], fd)) != SCONE_ERR_OK)
			goto fail;
	}
	srv->port = port;
	*out = srv;
	return SCONE_ERR_OK;
fail:
	cas_server_free(srv);
	return err;
}

uint16_t cas_server_port(const struct cas_server *srv)
{
	return srv ? srv->port : 0;
}

enum scone_err cas_server_run(struct cas_server *srv)
{
	enum scone_err err = SCONE_ERR_OK;
	sigset_t all, old;
	int rc = 0;

	if (!srv || srv->ran)
		return scone_err_set(SCONE_ERR_INVALID, "cas_server_run: no server, or it already ran");
	srv->ran = true;
	/* The slow lane first, so that the loops find it running. */
	if ((err = cas_server_slow_start(srv)) != SCONE_ERR_OK) {
		cas_server_slow_stop(srv);
		return err;
	}
	/* Workers take no signals: they land on the caller, whose handler calls cas_server_stop. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < srv->nworkers && rc == 0; i++) {
		rc = pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]);
		srv->workers[i].started = rc == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		err =
		    scone_err_set(scone_err_from_errno(rc), "cannot start a worker thread: %s", strerror(rc));
		cas_server_stop(srv);
	}
	for (int i = 0; i < srv->nworkers; i++) {
		struct cas_server_worker *w = &srv->workers[i];
		if (!w->started)
			continue;
		pthread_join(w->thread, NULL);
		w->started = false;
		if (err == SCONE_ERR_OK && w->err != SCONE_ERR_OK)
			err = scone_err_set(w->err, "worker %d failed (see the log)", i);
	}
	/* The loops are gone: the slow lane finishes what it runs, the rest is dropped. */
	cas_server_slow_stop(srv);
	if (err == SCONE_ERR_OK && srv->slow.err != SCONE_ERR_OK)
		err = scone_err_set(srv->slow.err, "a slow-lane thread failed (see the log)");
	return err;
}

void cas_server_stop(struct cas_server *srv)
{
	int saved = errno;

	if (!srv)
		return;
	for (int i = 0; i < srv->nworkers; i++) {
		if (srv->workers[i].pipe_wr >= 0) {
			ssize_t n = write(srv->workers[i].pipe_wr, "s", 1);
			(void)n; /* a full pipe already holds a stop request */
		}
	}
	errno = saved;
}

void cas_server_free(struct cas_server *srv)
{
	if (!srv)
		return;
	cas_server_slow_stop(srv);
	for (int i = 0; srv->workers && i < srv->nworkers; i++) {
		struct cas_server_worker *w = &srv->workers[i];
		teardown_worker(w);
		cas_server_slow_worker_fini(w);
		if (w->base)
			event_base_free(w->base);
		if (w->pipe_rd >= 0)
			close(w->pipe_rd);
		if (w->pipe_wr >= 0)
			close(w->pipe_wr);
	}
	free(srv->workers);
	cas_server_slow_fini(srv);
	if (srv->o.ssl_ctx)
		SSL_CTX_free(srv->o.ssl_ctx);
	free(srv->host_copy);
	free(srv);
}
