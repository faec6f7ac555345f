/*
 * server_slow.c - the slow lane: requests that may take long (generating
 * RSA keys takes up to a second each) are handled on a few threads of
 * their own, so that no event loop waits for them and /healthz, service
 * configurations and everything else keep answering at once.
 *
 * A call goes: request callback on its loop (checks, body taken) ->
 * cas_server_slow_submit (queued) -> a slow thread runs the handler (it
 * reads and writes only call->r and call->resp) -> the call is put on its
 * worker's done list and the worker's done_ev is activated -> on the loop,
 * cas_server_http_finish answers it, or drops it when its connection went
 * away meanwhile.
 *
 * The evhttp request of a call in the lane: evhttp frees it with its
 * connection, except when the client went away first (EOF or timeout
 * before our answer): then evhttp detaches it from the connection and
 * leaves it to us. Either way evhttp calls the connection's close callback
 * first (it is set at submit), which cancels the call and notes which case
 * it is; a request is never touched after evhttp freed it. Teardown
 * cancels the calls of every connection before evhttp frees them.
 *
 * Threads run at nice +10: under load, the loops (nice 0) get the CPU
 * first. The queue holds at most slow_queue calls; beyond, 503 BUSY.
 *
 * Stop: the loops stop first (their connections are torn down and their
 * calls cancelled), then the slow threads finish the call they run and
 * exit; calls still queued or done are dropped, and their owned evhttp
 * requests freed.
 */
#include "server_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "lib/log.h"

#define SLOW_NICE 10

struct slow_thread {
	struct cas_server *srv;
	int index; /* worker index the handler sees */
};

enum scone_err cas_server_slow_init(struct cas_server *srv)
{
	struct cas_server_slow *s = &srv->slow;

	if (pthread_mutex_init(&s->mu, NULL) != 0)
		return scone_err_set(SCONE_ERR_NOMEM, "slow lane: cannot create its lock");
	if (pthread_cond_init(&s->cv, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		return scone_err_set(SCONE_ERR_NOMEM, "slow lane: cannot create its condition");
	}
	s->ok = true;
	return SCONE_ERR_OK;
}

void cas_server_slow_fini(struct cas_server *srv)
{
	struct cas_server_slow *s = &srv->slow;

	if (!s->ok)
		return;
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->threads);
	s->threads = NULL;
	s->ok = false;
}

/* ---- the loop's side ---- */

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cas_server_slow_worker_drain(arg);
}

enum scone_err cas_server_slow_worker_init(struct cas_server_worker *w)
{
	if (pthread_mutex_init(&w->done_mu, NULL) != 0)
		return scone_err_set(SCONE_ERR_NOMEM, "worker %d: cannot create its lock", w->index);
	w->done_mu_ok = true;
	/* Priority 0: answers of finished calls go before new I/O of the same pass. */
	if (!(w->done_ev = event_new(w->base, -1, 0, on_done, w)) || event_priority_set(w->done_ev, 0) != 0)
		return scone_err_set(SCONE_ERR_NOMEM, "worker %d: cannot set up its slow-lane event",
				     w->index);
	return SCONE_ERR_OK;
}

void cas_server_slow_worker_fini(struct cas_server_worker *w)
{
	cas_server_slow_worker_drain(w);
	if (w->done_ev)
		event_free(w->done_ev);
	w->done_ev = NULL;
	if (w->done_mu_ok)
		pthread_mutex_destroy(&w->done_mu);
	w->done_mu_ok = false;
}

void cas_server_slow_worker_drain(struct cas_server_worker *w)
{
	struct cas_server_call *list, *next, *rev = NULL;

	if (!w->done_mu_ok)
		return;
	pthread_mutex_lock(&w->done_mu);
	list = w->done;
	w->done = NULL;
	pthread_mutex_unlock(&w->done_mu);
	for (; list; list = next) { /* oldest first */
		next = list->next;
		list->next = rev;
		rev = list;
	}
	for (; rev; rev = next) {
		next = rev->next;
		atomic_fetch_sub(&w->srv->slow.busy, 1);
		cas_server_http_finish(rev);
	}
}

void cas_server_slow_cancel(struct cas_server_call *call, bool req_alive)
{
	if (call->cancelled)
		return;
	if (call->c)
		call->c->call = NULL;
	call->c = NULL;
	call->cancelled = true;
	if (req_alive && !evhttp_request_get_connection(call->req))
		call->free_req = true; /* detached by evhttp: nobody else frees it */
	else
		call->req = NULL; /* evhttp frees it with its connection (or did) */
}

/* evhttp frees the connection (client gone, error, teardown): its call must not be answered. */
static void on_evcon_close(struct evhttp_connection *evcon, void *arg)
{
	struct cas_server_conn *c = arg;

	(void)evcon;
	if (c->call)
		cas_server_slow_cancel(c->call, true);
}

bool cas_server_slow_submit(struct cas_server_worker *w, struct cas_server_call *call)
{
	struct cas_server_slow *s = &w->srv->slow;
	const struct cas_server_opts *o = &w->srv->o;
	bool queued = false;

	pthread_mutex_lock(&s->mu);
	if (!s->stopping && s->started > 0 && s->queued < o->slow_queue) {
		call->next = NULL;
		if (s->tail)
			s->tail->next = call;
		else
			s->head = call;
		s->tail = call;
		s->queued++;
		queued = true;
		atomic_fetch_add(&s->busy, 1);
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	if (!queued) {
		call->resp.retry_after = 5;
		cas_respond_error(
		    &call->resp, 503, "BUSY",
		    "%d requests that take long (session creates and updates) are waiting already; "
		    "retry in a few seconds",
		    o->slow_queue);
		return false;
	}
	call->c->call = call;
	evhttp_connection_set_closecb(evhttp_request_get_connection(call->req), on_evcon_close, call->c);
	return true;
}

/* ---- the slow threads ---- */

static struct cas_server_call *next_call(struct cas_server_slow *s)
{
	struct cas_server_call *call = NULL;

	pthread_mutex_lock(&s->mu);
	while (!s->stopping && !s->head)
		pthread_cond_wait(&s->cv, &s->mu);
	if (!s->stopping) {
		call = s->head;
		s->head = call->next;
		if (!s->head)
			s->tail = NULL;
		s->queued--;
	}
	pthread_mutex_unlock(&s->mu);
	return call;
}

static void hand_back(struct cas_server_call *call)
{
	struct cas_server_worker *w = call->w;

	pthread_mutex_lock(&w->done_mu);
	call->next = w->done;
	w->done = call;
	pthread_mutex_unlock(&w->done_mu);
	event_active(w->done_ev, 0, 0);
}

static void *slow_main(void *arg)
{
	struct slow_thread *t = arg;
	struct cas_server *srv = t->srv;
	const struct cas_server_opts *o = &srv->o;
	struct cas_server_call *call;
	enum scone_err err;

	/* On Linux nice is per thread: this one yields to the loops. Failing that, it still works. */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), SLOW_NICE) != 0)
		scone_debug("slow lane thread %d: setpriority: %s", t->index, strerror(errno));
	if (o->worker_init && (err = o->worker_init(o->handler_ctx, t->index)) != SCONE_ERR_OK) {
		scone_error("slow lane thread %d: start failed: %s%s%s", t->index, scone_strerror(err),
			    scone_err_detail()[0] ? ": " : "", scone_err_detail());
		srv->slow.err = err;
		cas_server_stop(srv);
		free(t);
		return NULL;
	}
	while ((call = next_call(&srv->slow))) {
		call->r.worker = t->index;
		o->handler(o->handler_ctx, &call->r, &call->resp);
		hand_back(call);
	}
	if (o->worker_fini)
		o->worker_fini(o->handler_ctx, t->index);
	free(t);
	return NULL;
}

enum scone_err cas_server_slow_start(struct cas_server *srv)
{
	struct cas_server_slow *s = &srv->slow;
	sigset_t all, old;
	int rc = 0;

	if (!srv->o.is_slow || srv->o.slow_workers <= 0)
		return SCONE_ERR_OK;
	if (!(s->threads = calloc((size_t)srv->o.slow_workers, sizeof(*s->threads))))
		return scone_err_set(SCONE_ERR_NOMEM, "slow lane: no memory for its threads");
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < srv->o.slow_workers && rc == 0; i++) {
		struct slow_thread *t = malloc(sizeof(*t));
		if (!t) {
			rc = ENOMEM;
			break;
		}
		t->srv = srv;
		t->index = srv->nworkers + i;
		rc = pthread_create(&s->threads[i], NULL, slow_main, t);
		if (rc != 0)
			free(t);
		else
			s->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_lock(&s->mu);
	s->started = s->nthreads;
	pthread_mutex_unlock(&s->mu);
	if (rc != 0)
		return scone_err_set(scone_err_from_errno(rc), "cannot start a slow-lane thread: %s",
				     strerror(rc));
	return SCONE_ERR_OK;
}

/* A call that will never be answered (its connection is gone by now). */
static void drop(struct cas_server_call *call)
{
	cas_server_slow_cancel(call, false);
	atomic_fetch_sub(&call->w->srv->slow.busy, 1);
	cas_server_http_finish(call);
}

void cas_server_slow_stop(struct cas_server *srv)
{
	struct cas_server_slow *s = &srv->slow;
	struct cas_server_call *call, *next;

	if (!s->ok)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->cv);
	call = s->head;
	s->head = s->tail = NULL;
	s->queued = 0;
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	s->nthreads = s->started = 0;
	for (; call; call = next) {
		next = call->next;
		drop(call);
	}
	for (int i = 0; i < srv->nworkers; i++) {
		struct cas_server_worker *w = &srv->workers[i];
		struct cas_server_call *done;
		if (!w->done_mu_ok)
			continue;
		pthread_mutex_lock(&w->done_mu);
		done = w->done;
		w->done = NULL;
		pthread_mutex_unlock(&w->done_mu);
		for (; done; done = next) {
			next = done->next;
			drop(done);
		}
	}
}
