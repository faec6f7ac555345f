/*
 * server_internal.h - private to src/cas/server*.c: the server, its worker
 * threads, one connection's state, and the calls between the files
 * (server.c: lifecycle and workers; server_conn.c: connections, deadlines,
 * kills and the byte budget; server_http.c: requests and responses;
 * http_parse.c: the request target and body framing; server_slow.c: the
 * slow lane; server_metrics.c: counters; server_tls.c: the TLS context).
 *
 * Threading: everything in a struct cas_server_worker and in the
 * connections it owns is touched only by that worker's thread (and by the
 * thread calling cas_server_free after every worker has been joined).
 * What workers share is read-only after cas_server_new, or atomic
 * (metrics, the open-connection count, the byte budget, the stop flag),
 * or under a lock (the slow lane's queue, each worker's list of calls the
 * slow lane finished).
 */
#ifndef SCONE_CAS_SERVER_INTERNAL_H
#define SCONE_CAS_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>

#include "cas/server.h"

/* Upper bounds of the duration histogram, in seconds (then +Inf). */
#define CAS_SERVER_DUR_BUCKETS 11

enum cas_server_limit {
	CAS_LIMIT_HEADER,
	CAS_LIMIT_BODY,
	CAS_LIMIT_RATE,
	CAS_LIMIT_TIMEOUT,
	CAS_LIMIT_METHOD,
	CAS_LIMIT_MEMORY, /* over max_pending_bytes: the connection that asked for more was closed */
	CAS_LIMIT_COUNT_,
};

struct cas_server_metrics_state {
	atomic_uint_least64_t requests[4]; /* 2xx 3xx 4xx 5xx */
	atomic_uint_least64_t conn_total;
	atomic_uint_least64_t conn_rejected;
	atomic_uint_least64_t hs_failures;
	atomic_uint_least64_t dur_buckets[CAS_SERVER_DUR_BUCKETS + 1]; /* not cumulative; last is +Inf */
	atomic_uint_least64_t dur_sum_ns;
	atomic_uint_least64_t limits[CAS_LIMIT_COUNT_];
};

/* Where a connection is in its request cycle (drives deadlines and stop). */
enum cas_conn_phase {
	CAS_PH_HANDSHAKE, /* accepted; no request byte yet (TLS handshake or waiting) */
	CAS_PH_READING,	  /* request bytes arrived; head/body not complete */
	CAS_PH_HANDLING,  /* inside the request callback (synchronous) */
	CAS_PH_WRITING,	  /* response queued, not yet fully written */
	CAS_PH_IDLE,	  /* keep-alive, between requests */
	CAS_PH_CLOSING,	  /* a kill was delivered; evhttp is freeing it */
};

struct cas_server_conn;

/*
 * One request taken from evhttp: what the handler sees (r, pointing into
 * this call's own copies) and its answer. Lives on the heap from the
 * request callback to cas_server_http_finish, both on the connection's
 * loop; a slow call (server_slow.c) is handled on a slow-lane thread in
 * between, which touches only r and resp.
 */
struct cas_server_call {
	struct cas_server_worker *w;
	struct cas_server_conn *c;  /* NULL once the connection is gone */
	struct evhttp_request *req; /* evhttp's (NULL once evhttp frees it: see server_slow.c) */
	const char *method_name;
	char *path, *query; /* decoded path; raw query or NULL */
	uint8_t *body;	    /* NUL-terminated; wiped when freed */
	size_t body_len;
	char *content_type; /* copied from the headers, or NULL */
	char peer[64];
	struct cas_request r;
	struct cas_response resp;
	bool free_req;		      /* evhttp detached req from its dead connection: ours to free */
	bool cancelled;		      /* the connection went away while the call was in the slow lane */
	struct cas_server_call *next; /* slow-lane queue, or the worker's list of finished calls */
};

struct cas_server_worker {
	struct cas_server *srv;
	int index;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound; /* owns the listening socket */
	int pipe_rd, pipe_wr;		   /* self-pipe: cas_server_stop writes a byte */
	struct event *stop_ev;
	struct event *grace_ev;
	struct event *tick_ev; /* o.worker_tick, once a second (NULL without one) */
	pthread_t thread;
	bool started;
	bool stopping;
	bool draining; /* after the loop: no loopbreak from conn teardown */
	uint64_t last_reject_log_ns;
	uint64_t last_budget_log_ns;
	int nconns;		       /* connections alive on this worker */
	struct cas_server_conn *conns; /* list of them */
	enum scone_err err;
	/* Calls the slow lane finished, to be answered on this loop (done_ev); done_mu guards done. */
	pthread_mutex_t done_mu;
	bool done_mu_ok;
	struct cas_server_call *done;
	struct event *done_ev;
};

/* The slow lane: a bounded queue and its threads (server_slow.c). */
struct cas_server_slow {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool ok; /* mu and cv initialised */
	bool stopping;
	struct cas_server_call *head, *tail;
	int queued;
	int nthreads;
	pthread_t *threads;
	int started;	 /* threads running */
	atomic_int busy; /* calls being handled now */
	enum scone_err err;
};

struct cas_server {
	struct cas_server_opts o; /* defaults filled in; host points at host_copy */
	char *host_copy;
	uint16_t port;
	int nworkers;
	struct cas_server_worker *workers;
	atomic_int open;       /* connections holding a slot (<= max_connections) */
	atomic_size_t pending; /* request bytes charged to max_pending_bytes (see server_conn.c) */
	bool ran;
	struct cas_server_metrics_state m;
	struct cas_server_slow slow;
};

struct cas_server_conn {
	struct cas_server_worker *w;
	struct bufferevent *bev; /* the OpenSSL bufferevent; owned by evhttp */
	struct event *timer;	 /* deadline, or an immediate kill when kill_now */
	struct cas_server_conn *prev, *next;
	enum cas_conn_phase phase;
	bool kill_now;	 /* the armed timer is a kill, not a deadline */
	bool holds_slot; /* counted in srv->open */
	bool rejected;	 /* over max_connections: closed before TLS */
	bool timed_out;
	bool close_after; /* close once the current response is written */
	bool key_known;
	bool has_key;
	uint8_t spki_sha256[32];
	char peer[64];
	uint64_t req_start_ns; /* monotonic time the current request's first byte arrived */
	uint64_t rate_window;  /* monotonic second of the rate window */
	int rate_count;
	struct cas_server_call *call; /* a call of this connection in the slow lane, or NULL */
	size_t held;		      /* bytes received for the request(s) not yet answered */
	size_t charged;		      /* the part of held beyond CAS_PENDING_FREE, counted in srv->pending */
};

/* Bytes of requests in flight each connection holds without drawing on max_pending_bytes. */
#define CAS_PENDING_FREE (16u << 10)

/* server_conn.c */
SCONE_MUST_CHECK enum scone_err cas_server_conn_global_init(void);
/* evhttp's bevcb: a TLS bufferevent plus our connection state (arg: worker). */
struct bufferevent *cas_server_conn_bev(struct event_base *base, void *arg);
/* The connection a request arrived on; NULL if it is not one of ours. */
struct cas_server_conn *cas_server_conn_of(struct evhttp_request *req);
void cas_server_conn_peer_key(struct cas_server_conn *c);
/* "addr:port" of the client, for logs ("-" if unknown). */
const char *cas_server_conn_peer(struct cas_server_conn *c);
void cas_server_conn_kill_soon(struct cas_server_conn *c);
/* Request callback is about to run (disarms the deadline). */
void cas_server_conn_begin_handling(struct cas_server_conn *c);
/* The request was answered: its bytes no longer count (pipelined bytes already received still do). */
void cas_server_conn_request_done(struct cas_server_conn *c);
/* Response queued: re-arm on completion (sets evhttp's on-complete hook). */
void cas_server_conn_response_queued(struct cas_server_conn *c, struct evhttp_request *req);
/* Graceful stop: close idle connections now, the rest when they finish. */
void cas_server_conn_stop_all(struct cas_server_worker *w);

/* server_http.c */
void cas_server_http_request(struct evhttp_request *req, void *arg);
/* Answer a call (or drop it, if its connection is gone), log, count, free it. On its loop. */
void cas_server_http_finish(struct cas_server_call *call);
/* Log line for a response evhttp generated itself (limit errors). */
void cas_server_http_log(struct cas_server_conn *c, const char *method, const char *path, int status,
			 uint64_t dur_ns, bool routine);

/* server_metrics.c */
void cas_server_metrics_request(struct cas_server_metrics_state *m, int status, uint64_t dur_ns);
void cas_server_metrics_limit(struct cas_server_metrics_state *m, enum cas_server_limit l);
void cas_server_metrics_add(atomic_uint_least64_t *counter);

/* server_slow.c */
SCONE_MUST_CHECK enum scone_err cas_server_slow_init(struct cas_server *srv);
/* Start / stop and join the slow-lane threads; stop also drops every call left. */
SCONE_MUST_CHECK enum scone_err cas_server_slow_start(struct cas_server *srv);
void cas_server_slow_stop(struct cas_server *srv);
void cas_server_slow_fini(struct cas_server *srv);
/* Queue call (on its loop); false when the queue is full (call->resp then says so). */
bool cas_server_slow_submit(struct cas_server_worker *w, struct cas_server_call *call);
/*
 * The connection of call is going away: it will be dropped instead of
 * answered. req_alive: evhttp has not freed the request yet (its close
 * callback, teardown), so it can tell whether the request is ours now.
 */
void cas_server_slow_cancel(struct cas_server_call *call, bool req_alive);
/* A worker's loop part: its list of finished calls and the event that answers them. */
SCONE_MUST_CHECK enum scone_err cas_server_slow_worker_init(struct cas_server_worker *w);
void cas_server_slow_worker_fini(struct cas_server_worker *w);
/* Answer (or drop) what the slow lane finished for w; also called at teardown. */
void cas_server_slow_worker_drain(struct cas_server_worker *w);

/* server.c */
/* A connection went away; ends the loop of a stopping worker that has none left. */
void cas_server_worker_conn_gone(struct cas_server_worker *w);

#endif
