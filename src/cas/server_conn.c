/*
 * server_conn.c - one client connection from accept to close: the TLS
 * bufferevent handed to evhttp, the max_connections slot, the request
 * deadline (a client trickling bytes is cut off timeout_sec after the
 * connection opened or after the previous response, in total, not per
 * byte), the cached hash of the client's key, and closing a connection
 * from outside evhttp.
 *
 * Lifetime: the state is ex_data of the connection's SSL object, so it is
 * freed exactly when the bufferevent frees the SSL, whatever made evhttp
 * drop the connection. A kill raises an error event on the bufferevent,
 * always from our own timer callback (never from inside an evhttp
 * callback, because evhttp frees the connection in response).
 *
 * Observation without hooks (libevent 2.1 has no per-request or error
 * callbacks on the server side): an evbuffer callback on the bufferevent's
 * input notes a request's first byte; one on its output notices a status
 * line that evhttp wrote on its own, which is one of its limit errors.
 *
 * Memory of requests in flight. Every byte a connection receives counts as
 * held until the request it belongs to is answered, wherever evhttp keeps
 * it meanwhile (its input buffer, or the request's own buffer for chunked
 * bodies). The first CAS_PENDING_FREE bytes of each connection are free (a
 * request head, a small body); beyond them each byte is charged to one
 * budget shared by all connections, max_pending_bytes. The connection whose
 * bytes take the total over it is closed, so the server holds at most about
 * max_connections * CAS_PENDING_FREE + max_pending_bytes of partial
 * requests (plus one read each), instead of max_connections times the
 * largest request.
 */
#include "server_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/thread.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lib/crypto.h"
#include "lib/log.h"

/* Room for a full request in the input buffer; beyond it reading pauses. */
#define READ_HIGH_SLACK (64u << 10)

static int ex_index = -1;
static bool threads_ok;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void conn_destroy(struct cas_server_conn *c, SSL *ssl);

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr)
		conn_destroy(ptr, parent);
}

static void global_init(void)
{
	threads_ok = evthread_use_pthreads() == 0;
	ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ex_free);
}

enum scone_err cas_server_conn_global_init(void)
{
	pthread_once(&global_once, global_init);
	if (!threads_ok)
		return scone_err_set(SCONE_ERR_NOMEM, "libevent: evthread_use_pthreads failed");
	if (ex_index < 0)
		return scone_err_set(SCONE_ERR_CRYPTO, "OpenSSL: no SSL ex_data index for connection state");
	return SCONE_ERR_OK;
}

/* ---- peer address and key ---- */

const char *cas_server_conn_peer(struct cas_server_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (c->peer[0])
		return c->peer;
	if (getpeername(bufferevent_getfd(c->bev), (struct sockaddr *)&ss, &len) != 0)
		return "-";
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		port = ntohs(in->sin_port);
		snprintf(c->peer, sizeof(c->peer), "%s:%u", addr, port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		port = ntohs(in6->sin6_port);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%u", addr, port);
	} else {
		return "-";
	}
	return c->peer;
}

/*
 * SHA-256 of the client certificate's DER SubjectPublicKeyInfo, computed
 * once per connection (the certificate cannot change: no renegotiation, no
 * post-handshake authentication). On an encoding failure the request is
 * treated as anonymous and the next one tries again.
 */
void cas_server_conn_peer_key(struct cas_server_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	X509 *cert = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
	X509_PUBKEY *pk = cert ? X509_get_X509_PUBKEY(cert) : NULL;
	unsigned char *der = NULL;
	int n;

	if (c->key_known)
		return;
	if (!cert) {
		c->key_known = true;
		return;
	}
	n = pk ? i2d_X509_PUBKEY(pk, &der) : -1;
	if (n <= 0) {
		scone_warn(
		    "connection from %s: cannot encode the client's public key; request treated as anonymous",
		    cas_server_conn_peer(c));
		return;
	}
	scone_sha256(der, (size_t)n, c->spki_sha256);
	OPENSSL_free(der);
	c->has_key = true;
	c->key_known = true;
}

/* ---- deadline and kill ---- */

static void arm(struct cas_server_conn *c, bool kill_now)
{
	struct timeval tv = {kill_now ? 0 : c->w->srv->o.timeout_sec, 0};

	if (c->phase == CAS_PH_CLOSING || (c->kill_now && evtimer_pending(c->timer, NULL)))
		return;
	c->kill_now = kill_now;
	if (evtimer_add(c->timer, &tv) != 0)
		scone_error("connection from %s: cannot arm its timer", cas_server_conn_peer(c));
}

void cas_server_conn_kill_soon(struct cas_server_conn *c)
{
	arm(c, true);
}

static bool handshake_done(const struct cas_server_conn *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	return ssl && SSL_is_init_finished(ssl);
}

/* The deadline passed: a request (or the TLS handshake) was too slow. */
static void deadline_passed(struct cas_server_conn *c)
{
	struct cas_server *srv = c->w->srv;

	if (c->phase == CAS_PH_IDLE || c->phase == CAS_PH_WRITING)
		return; /* idle keep-alive (or a write stall): an ordinary close */
	if (c->phase == CAS_PH_HANDSHAKE && handshake_done(c))
		return; /* connected and sent nothing: same as idle */
	c->timed_out = true;
	cas_server_metrics_limit(&srv->m, CAS_LIMIT_TIMEOUT);
	scone_info("connection from %s: %s not complete within %d s; closed", cas_server_conn_peer(c),
		   c->phase == CAS_PH_HANDSHAKE ? "TLS handshake" : "request", srv->o.timeout_sec);
}

/* One line per worker per second at most: this is what a flood looks like. */
static void log_rejected(struct cas_server_conn *c)
{
	struct cas_server_worker *w = c->w;
	uint64_t now = cas_server_now_ns();

	if (w->last_reject_log_ns && now - w->last_reject_log_ns < 1000000000u)
		return;
	w->last_reject_log_ns = now;
	scone_warn("connection from %s refused: %d connections open (max_connections)",
		   cas_server_conn_peer(c), w->srv->o.max_connections);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cas_server_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->rejected)
		log_rejected(c);
	else if (!c->kill_now)
		deadline_passed(c);
	c->phase = CAS_PH_CLOSING;
	/* evhttp frees the connection from its error callback; c may be gone after this. */
	bufferevent_trigger_event(c->bev, BEV_EVENT_ERROR, 0);
}

/* ---- memory of requests in flight ---- */

static size_t chargeable(size_t held)
{
	return held > CAS_PENDING_FREE ? held - CAS_PENDING_FREE : 0;
}

/* Bring c->charged (and the shared total) to what c->held asks for; false if that is over the budget. */
static bool recharge(struct cas_server_conn *c)
{
	struct cas_server *srv = c->w->srv;
	size_t want = chargeable(c->held), total;

	if (want < c->charged) {
		atomic_fetch_sub(&srv->pending, c->charged - want);
		c->charged = want;
		return true;
	}
	if (want == c->charged)
		return true;
	total = atomic_fetch_add(&srv->pending, want - c->charged) + (want - c->charged);
	c->charged = want;
	return total <= srv->o.max_pending_bytes;
}

/* One line per worker per second at most, as for refused connections. */
static void log_over_budget(struct cas_server_conn *c)
{
	struct cas_server_worker *w = c->w;
	uint64_t now = cas_server_now_ns();

	if (w->last_budget_log_ns && now - w->last_budget_log_ns < 1000000000u)
		return;
	w->last_budget_log_ns = now;
	scone_warn(
	    "connection from %s closed: requests in flight hold more than %zu bytes over all connections "
	    "(max_pending_bytes)",
	    cas_server_conn_peer(c), w->srv->o.max_pending_bytes);
}

static void charge(struct cas_server_conn *c, size_t n)
{
	c->held = n > SIZE_MAX - c->held ? SIZE_MAX : c->held + n;
	if (recharge(c) || c->phase == CAS_PH_CLOSING || c->rejected)
		return;
	cas_server_metrics_limit(&c->w->srv->m, CAS_LIMIT_MEMORY);
	log_over_budget(c);
	cas_server_conn_kill_soon(c);
}

void cas_server_conn_request_done(struct cas_server_conn *c)
{
	c->held = evbuffer_get_length(bufferevent_get_input(c->bev));
	(void)recharge(c); /* only ever lower: what is left was charged when it arrived */
}

/* ---- request cycle ---- */

void cas_server_conn_begin_handling(struct cas_server_conn *c)
{
	/*
	 * A request that completed in the same loop pass as a stop's kill is
	 * answered instead (with Connection: close). Rejected connections never
	 * get here: their kill runs before any of their I/O.
	 */
	if (!c->rejected) {
		evtimer_del(c->timer);
		c->kill_now = false;
	}
	if (c->phase != CAS_PH_CLOSING)
		c->phase = CAS_PH_HANDLING;
	if (!c->req_start_ns)
		c->req_start_ns = cas_server_now_ns();
}

static void on_complete(struct evhttp_request *req, void *arg)
{
	struct cas_server_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(c->bev);

	(void)req;
	if (c->phase == CAS_PH_CLOSING || c->close_after)
		return; /* evhttp closes it (Connection: close) */
	if (c->w->stopping) {
		cas_server_conn_kill_soon(c);
		return;
	}
	/* Pipelined bytes may already wait: then the next request is under way. */
	c->phase = evbuffer_get_length(in) ? CAS_PH_READING : CAS_PH_IDLE;
	c->req_start_ns = c->phase == CAS_PH_READING ? cas_server_now_ns() : 0;
	arm(c, false);
}

void cas_server_conn_response_queued(struct cas_server_conn *c, struct evhttp_request *req)
{
	if (c->phase != CAS_PH_CLOSING)
		c->phase = CAS_PH_WRITING;
	evhttp_request_set_on_complete_cb(req, on_complete, c);
}

void cas_server_conn_stop_all(struct cas_server_worker *w)
{
	for (struct cas_server_conn *c = w->conns; c; c = c->next) {
		/* READING finishes within its deadline; WRITING closes in on_complete. */
		if (c->phase == CAS_PH_HANDSHAKE || c->phase == CAS_PH_IDLE)
			cas_server_conn_kill_soon(c);
	}
}

/* ---- observers ---- */

static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct cas_server_conn *c = arg;

	(void)buf;
	if (!info->n_added)
		return;
	if (c->phase == CAS_PH_HANDSHAKE || c->phase == CAS_PH_IDLE) {
		c->phase = CAS_PH_READING;
		c->req_start_ns = cas_server_now_ns();
	}
	charge(c, info->n_added);
}

/* evhttp answered a request by itself (it never reached our callback). */
static void evhttp_answered(struct cas_server_conn *c, int status)
{
	struct cas_server *srv = c->w->srv;
	uint64_t dur = c->req_start_ns ? cas_server_now_ns() - c->req_start_ns : 0;

	if (status == 400)
		cas_server_metrics_limit(&srv->m, CAS_LIMIT_HEADER);
	else if (status == 413)
		cas_server_metrics_limit(&srv->m, CAS_LIMIT_BODY);
	else if (status == 501 || status == 405)
		cas_server_metrics_limit(&srv->m, CAS_LIMIT_METHOD);
	cas_server_metrics_request(&srv->m, status, dur);
	cas_server_http_log(c, "-", "-", status, dur, false);
	c->phase = CAS_PH_WRITING; /* evhttp closes the connection after it */
}

static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct cas_server_conn *c = arg;
	struct evbuffer_ptr pos;
	char line[12];
	int status;

	if (!info->n_added || info->n_added < sizeof(line))
		return;
	if (c->phase != CAS_PH_READING && c->phase != CAS_PH_HANDSHAKE && c->phase != CAS_PH_IDLE)
		return; /* our own response (or the connection is closing) */
	if (evbuffer_ptr_set(buf, &pos, info->orig_size, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(buf, &pos, line, sizeof(line)) != (ev_ssize_t)sizeof(line))
		return;
	/* "HTTP/1.1 413 " */
	if (memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' || line[9] < '1' || line[9] > '5' ||
	    line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9')
		return;
	status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	if (status >= 400)
		evhttp_answered(c, status);
}

/* ---- accept and teardown ---- */

static bool take_slot(struct cas_server *srv)
{
	int n = atomic_load(&srv->open);

	do {
		if (n >= srv->o.max_connections)
			return false;
	} while (!atomic_compare_exchange_weak(&srv->open, &n, n + 1));
	return true;
}

/*
 * Over max_connections: closed by the timer, which runs before any I/O of
 * the same loop pass (it has the higher priority), so the client's
 * ClientHello is never answered.
 */
static void reject(struct cas_server_conn *c)
{
	c->rejected = true;
	cas_server_metrics_add(&c->w->srv->m.conn_rejected);
	cas_server_conn_kill_soon(c);
}

static void admit(struct cas_server_conn *c)
{
	struct cas_server *srv = c->w->srv;

	if (!take_slot(srv)) {
		reject(c);
		return;
	}
	c->holds_slot = true;
	cas_server_metrics_add(&srv->m.conn_total);
	arm(c, false);
}

static void link_conn(struct cas_server_worker *w, struct cas_server_conn *c)
{
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
}

static void unlink_conn(struct cas_server_worker *w, struct cas_server_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
}

/* Called from SSL_free (ex_data), i.e. when the bufferevent is finalized. */
static void conn_destroy(struct cas_server_conn *c, SSL *ssl)
{
	struct cas_server_worker *w = c->w;
	struct cas_server *srv = w->srv;
	BIO *rbio = ssl ? SSL_get_rbio(ssl) : NULL;
	bool sent_bytes = rbio && BIO_number_read(rbio) > 0;

	if (!c->rejected && ssl && !SSL_is_init_finished(ssl) && (sent_bytes || c->timed_out)) {
		cas_server_metrics_add(&srv->m.hs_failures);
		scone_debug("connection from %s: TLS handshake failed", c->peer[0] ? c->peer : "-");
	}
	if (c->call) /* in the slow lane: dropped when it comes back (evhttp has freed its request) */
		cas_server_slow_cancel(c->call, false);
	if (c->holds_slot)
		atomic_fetch_sub(&srv->open, 1);
	if (c->charged)
		atomic_fetch_sub(&srv->pending, c->charged);
	event_free(c->timer);
	unlink_conn(w, c);
	free(c);
	cas_server_worker_conn_gone(w);
}

static struct bufferevent *no_state(struct cas_server_conn *c)
{
	scone_error("connection dropped: out of memory for its state");
	if (c && c->timer)
		event_free(c->timer);
	free(c);
	/* evhttp then makes a plain bufferevent; cas_server_http_request refuses everything on it. */
	return NULL;
}

struct bufferevent *cas_server_conn_bev(struct event_base *base, void *arg)
{
	struct cas_server_worker *w = arg;
	const struct cas_server_opts *o = &w->srv->o;
	struct cas_server_conn *c = calloc(1, sizeof(*c));
	struct bufferevent *bev;
	SSL *ssl;

	if (!c || !(c->timer = evtimer_new(base, on_timer, c)) || event_priority_set(c->timer, 0) != 0)
		return no_state(c);
	if (!(ssl = SSL_new(o->ssl_ctx)))
		return no_state(c);
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) /* libevent may already have freed ssl: leak it rather than free it twice */
		return no_state(c);
	c->w = w;
	c->bev = bev;
	if (!SSL_set_ex_data(ssl, ex_index, c)) {
		/* The bufferevent is TLS; without state its requests are refused. */
		event_free(c->timer);
		free(c);
		return bev;
	}
	link_conn(w, c);
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setwatermark(bev, EV_READ, 0, o->max_header_bytes + o->max_body_bytes + READ_HIGH_SLACK);
	if (!evbuffer_add_cb(bufferevent_get_input(bev), on_input, c) ||
	    !evbuffer_add_cb(bufferevent_get_output(bev), on_output, c)) {
		scone_error("connection dropped: out of memory for its observers");
		c->rejected = true;
		cas_server_conn_kill_soon(c);
		return bev;
	}
	admit(c);
	return bev;
}

struct cas_server_conn *cas_server_conn_of(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;

	return ssl ? SSL_get_ex_data(ssl, ex_index) : NULL;
}
