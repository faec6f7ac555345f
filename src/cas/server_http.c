/*
 * server_http.c - one HTTP request as evhttp hands it over, complete: the
 * checks that run before the handler (rate, method, path), the cas_request
 * the handler sees, the response sent back (JSON unless the handler says
 * otherwise, Cache-Control: no-store, the body wiped and freed once
 * written), the log line and the metrics. Also cas_respond_error.
 *
 * Request bodies may carry secrets (session documents): the copy handed to
 * the handler and evhttp's own buffer are wiped once the handler returns.
 */
#include "server_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "cas/http_parse.h"
#include "cas/memwipe.h"
#include "lib/crypto.h"
#include "lib/log.h"

#define RESPONSE_MAX (64u << 20)   /* ceiling of a handler's response body */
#define ERROR_BODY_MAX (64u << 10) /* for cas_respond_error on an unset body */
#define LOG_PATH_MAX 256

struct method {
	enum evhttp_cmd_type ev;
	enum cas_method m;
	const char *name;
};

static const struct method methods[] = {
    {EVHTTP_REQ_GET, CAS_GET, "GET"},	    {EVHTTP_REQ_POST, CAS_POST, "POST"},
    {EVHTTP_REQ_PUT, CAS_PUT, "PUT"},	    {EVHTTP_REQ_DELETE, CAS_DELETE, "DELETE"},
    {EVHTTP_REQ_HEAD, CAS_OTHER, "HEAD"},   {EVHTTP_REQ_OPTIONS, CAS_OTHER, "OPTIONS"},
    {EVHTTP_REQ_TRACE, CAS_OTHER, "TRACE"}, {EVHTTP_REQ_CONNECT, CAS_OTHER, "CONNECT"},
    {EVHTTP_REQ_PATCH, CAS_OTHER, "PATCH"},
};

static const struct method unknown_method = {0, CAS_OTHER, "-"};

static const struct method *method_of(enum evhttp_cmd_type t)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].ev == t)
			return &methods[i];
	return &unknown_method;
}

/* Reason phrases evhttp 2.1 does not know (NULL: let evhttp choose). */
static const char *reason_phrase(int status)
{
	switch (status) {
	case 422:
		return "Unprocessable Content";
	case 428:
		return "Precondition Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	default:
		return NULL;
	}
}

/* ---- error bodies ---- */

/* A copy of s with every byte outside printable ASCII as %XX (for logs and JSON). */
static void ascii_copy(char *out, size_t out_size, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s && o + 4 < out_size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch >= 0x20 && ch < 0x7f) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

static void put_fallback(struct cas_response *resp)
{
	static const char nomem[] = "{\"error\":\"out of memory\",\"code\":\"NOMEM\"}\n";

	resp->status = 500;
	resp->body.size = 0;
	if (scone_wbuf_put(&resp->body, nomem, sizeof(nomem) - 1))
		resp->body.size = 0;
}

/* The one place a JSON body is written: any earlier body wiped, j's reference taken. */
static void set_json_body(struct cas_response *resp, int status, json_t *j)
{
	char *text;

	if (!resp->body.max)
		scone_wbuf_init(&resp->body, ERROR_BODY_MAX, 1);
	if (resp->body.data)
		scone_wipe(resp->body.data, resp->body.size);
	resp->body.size = 0;
	resp->status = status;
	resp->content_type = "application/json";
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text || scone_wbuf_put(&resp->body, text, strlen(text)) || scone_wbuf_put(&resp->body, "\n", 1))
		put_fallback(resp);
	cas_json_free_text(text); /* wiped: a configuration answer carries secrets */
}

void cas_respond_json(struct cas_response *resp, int status, void *json)
{
	set_json_body(resp, status, json);
}

void cas_respond_error(struct cas_response *resp, int status, const char *code, const char *fmt, ...)
{
	char msg[512], safe[sizeof(msg) * 3];
	json_t *j;
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	j = json_pack("{s:s, s:s}", "error", msg, "code", code ? code : "ERROR");
	if (!j) { /* not UTF-8: keep the message readable in ASCII */
		ascii_copy(safe, sizeof(safe), msg);
		j = json_pack("{s:s, s:s}", "error", safe, "code", code ? code : "ERROR");
	}
	set_json_body(resp, status, j);
}

/* ---- request parts ---- */

/* The decoded path and raw query; a refusal names what was wrong. */
static bool parse_target(const char *raw, struct cas_server_call *st, struct cas_response *resp)
{
	enum scone_err err = cas_http_parse_target(raw, &st->path, &st->query);

	if (err == SCONE_ERR_OK)
		return true;
	if (err == SCONE_ERR_NOMEM)
		cas_respond_error(resp, 500, "NOMEM", "%s", scone_err_detail());
	else
		cas_respond_error(resp, 400, "INVALID", "%s", scone_err_detail());
	return false;
}

/* Content-Length and Transfer-Encoding leave no doubt about where the body ends. */
static bool framing_ok(struct evhttp_request *req, struct cas_response *resp)
{
	const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct cas_http_framing f;

	cas_http_framing_init(&f);
	for (const struct evkeyval *kv = h ? h->tqh_first : NULL; kv; kv = kv->next.tqe_next)
		cas_http_framing_add(&f, kv->key, kv->value);
	if (cas_http_framing_check(&f) == SCONE_ERR_OK)
		return true;
	cas_respond_error(resp, 400, "INVALID", "%s", scone_err_detail());
	return false;
}

/* The raw path of a refused target for the log line (no query: it may carry tokens). */
static const char *target_for_log(const char *raw, char *out, size_t out_size)
{
	size_t n;

	if (!raw)
		return "-";
	n = strcspn(raw, "?#");
	if (n >= out_size)
		n = out_size - 1;
	memcpy(out, raw, n);
	out[n] = '\0';
	return out;
}

/* Copy the body out (NUL-terminated) and wipe evhttp's buffer as we go. */
static bool take_body(struct evhttp_request *req, struct cas_server_call *st, struct cas_response *resp)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in), off = 0;
	struct evbuffer_iovec *v = NULL;
	int nv = n ? evbuffer_peek(in, -1, NULL, NULL, 0) : 0;

	st->body = malloc(n + 1);
	if (nv > 0)
		v = calloc((size_t)nv, sizeof(*v));
	if (!st->body || (nv > 0 && !v)) {
		free(v);
		cas_respond_error(resp, 500, "NOMEM", "out of memory for a %zu-byte request body", n);
		return false;
	}
	if (nv > 0)
		nv = evbuffer_peek(in, -1, NULL, v, nv);
	for (int i = 0; i < nv && off < n; i++) {
		size_t k = v[i].iov_len < n - off ? v[i].iov_len : n - off;
		memcpy(st->body + off, v[i].iov_base, k);
		scone_wipe(v[i].iov_base, v[i].iov_len);
		off += k;
	}
	free(v);
	evbuffer_drain(in, n);
	st->body[off] = '\0';
	st->body_len = off;
	return true;
}

/* Whatever evhttp still holds of a body we did not take (refused requests). */
static void wipe_input(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct evbuffer_iovec v[16];
	int nv;

	while ((nv = evbuffer_peek(in, -1, NULL, v, 16)) > 0) {
		size_t n = 0;
		for (int i = 0; i < nv && i < 16; i++) {
			scone_wipe(v[i].iov_base, v[i].iov_len);
			n += v[i].iov_len;
		}
		evbuffer_drain(in, n);
	}
}

/* Free a call and everything it owns (the body and the answer wiped). Not its evhttp request. */
static void free_call(struct cas_server_call *call)
{
	if (call->body) {
		scone_wipe(call->body, call->body_len);
		free(call->body);
	}
	free(call->path);
	free(call->query);
	free(call->content_type);
	scone_wbuf_free(&call->resp.body);
	free(call);
}

static bool rate_ok(struct cas_server_conn *c, int max)
{
	uint64_t sec = cas_server_now_ns() / 1000000000u;

	if (sec != c->rate_window) {
		c->rate_window = sec;
		c->rate_count = 0;
	}
	return ++c->rate_count <= max;
}

/* ---- response ---- */

static void wipe_free(const void *data, size_t len, void *extra)
{
	size_t cap = (size_t)(uintptr_t)extra;

	scone_wipe((void *)data, cap > len ? cap : len);
	free((void *)data);
}

static bool header_value_ok(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || (unsigned char)*v >= 0x7f)
			return false;
	return true;
}

/* Hand the body to evhttp without copying; it is wiped and freed once written. */
static bool attach_body(struct evbuffer *out, struct scone_wbuf *body)
{
	if (!body->size)
		return true;
	if (evbuffer_add_reference(out, body->data, body->size, wipe_free, (void *)(uintptr_t)body->cap) != 0)
		return false;
	body->data = NULL;
	body->size = body->cap = 0;
	return true;
}

static int send_response(struct cas_server_conn *c, struct evhttp_request *req, struct cas_response *resp,
			 bool close)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();
	const char *ct = resp->content_type ? resp->content_type : "application/json";

	if (resp->status < 200 || resp->status > 599 || !header_value_ok(ct)) {
		scone_error("handler gave status %d, content type \"%s\": answering 500", resp->status,
			    header_value_ok(ct) ? ct : "(invalid)");
		cas_respond_error(resp, 500, "INTERNAL", "the server produced an invalid response");
		ct = "application/json";
	}
	/* evhttp 2.1 would send a body after a HEAD response; drop it here. */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD && resp->body.data) {
		scone_wipe(resp->body.data, resp->body.size);
		resp->body.size = 0;
	}
	if (!out || !attach_body(out, &resp->body)) {
		scone_error("out of memory for a response; answering 500 without a body");
		resp->status = 500;
		close = true;
	}
	evhttp_add_header(h, "Content-Type", ct);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (resp->retry_after > 0) {
		char s[16];
		snprintf(s, sizeof(s), "%u", resp->retry_after);
		evhttp_add_header(h, "Retry-After", s);
	}
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (close)
		evhttp_add_header(h, "Connection", "close");
	if (c) {
		c->close_after = c->close_after || close;
		cas_server_conn_response_queued(c, req);
	}
	evhttp_send_reply(req, resp->status, reason_phrase(resp->status), out);
	if (out)
		evbuffer_free(out);
	return resp->status;
}

/* ---- log ---- */

void cas_server_http_log(struct cas_server_conn *c, const char *method, const char *path, int status,
			 uint64_t dur_ns, bool routine)
{
	enum scone_log_level level = routine ? SCONE_LOG_DEBUG : SCONE_LOG_INFO;
	char safe_path[LOG_PATH_MAX];
	json_t *j;
	char *text;

	if (!scone_log_enabled(level))
		return;
	ascii_copy(safe_path, sizeof(safe_path), path);
	j = json_pack("{s:s, s:s, s:i, s:f, s:s}", "method", method, "path", safe_path, "status", status,
		      "duration_ms", (double)dur_ns / 1e6, "peer", c ? cas_server_conn_peer(c) : "-");
	text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(j);
	if (text)
		scone_log_fields(level, "request", text);
	cas_json_free_text(text);
}

/* ---- the request callback ---- */

/* Out of memory (for our connection state at accept, or for the call): refused, never handled. */
static void refuse(struct cas_server_conn *c, struct evhttp_request *req)
{
	struct cas_response resp = {.status = 503};

	if (c)
		cas_server_conn_begin_handling(c);
	scone_wbuf_init(&resp.body, ERROR_BODY_MAX, 1);
	cas_respond_error(&resp, 503, "BUSY", "server out of memory; try again");
	send_response(c, req, &resp, true);
	scone_wbuf_free(&resp.body);
	if (c) {
		c->req_start_ns = 0;
		cas_server_conn_request_done(c);
	}
}

/*
 * Run the checks and build call->r. False when the request was answered
 * here (call->resp filled): a limit, a bad target or method, no memory.
 */
static bool prepare(struct cas_server_worker *w, struct cas_server_conn *c, const struct method *m,
		    struct cas_server_call *call)
{
	const struct cas_server_opts *o = &w->srv->o;
	struct evhttp_request *req = call->req;
	struct cas_response *resp = &call->resp;
	const char *ct;

	if (!rate_ok(c, o->max_requests_per_conn_per_sec)) {
		cas_server_metrics_limit(&w->srv->m, CAS_LIMIT_RATE);
		cas_respond_error(resp, 429, "LIMIT", "more than %d requests per second on one connection",
				  o->max_requests_per_conn_per_sec);
		c->close_after = true;
		return false;
	}
	if (!framing_ok(req, resp)) {
		c->close_after = true; /* where this request ends, and the next begins, is in doubt */
		return false;
	}
	if (!parse_target(evhttp_request_get_uri(req), call, resp))
		return false;
	if (m->m == CAS_OTHER) {
		cas_server_metrics_limit(&w->srv->m, CAS_LIMIT_METHOD);
		cas_respond_error(resp, 405, "UNSUPPORTED",
				  "method %s is not allowed (GET, POST, PUT, DELETE)", m->name);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, POST, PUT, DELETE");
		return false;
	}
	if (!take_body(req, call, resp))
		return false;
	/* Copies of what lives in the connection or in evhttp: a slow call may outlive both. */
	ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	if (ct && !(call->content_type = strdup(ct))) {
		cas_respond_error(resp, 500, "NOMEM", "out of memory");
		return false;
	}
	cas_server_conn_peer_key(c);
	snprintf(call->peer, sizeof(call->peer), "%s", cas_server_conn_peer(c));
	call->r.method = m->m;
	call->r.path = call->path;
	call->r.query = call->query;
	call->r.content_type = call->content_type;
	call->r.body = call->body;
	call->r.body_len = call->body_len;
	call->r.has_peer_key = c->has_key;
	if (c->has_key)
		memcpy(call->r.peer_spki_sha256, c->spki_sha256, sizeof(call->r.peer_spki_sha256));
	call->r.peer_addr = call->peer;
	call->r.worker = w->index;
	return true;
}

void cas_server_http_finish(struct cas_server_call *call)
{
	struct cas_server_worker *w = call->w;
	struct cas_server_conn *c = call->c;
	char raw[LOG_PATH_MAX];
	uint64_t dur;
	int status;

	if (call->cancelled || !c) { /* the connection is gone: nobody to answer */
		if (call->free_req)
			evhttp_request_free(call->req);
		free_call(call);
		return;
	}
	c->call = NULL;
	wipe_input(call->req);
	status = send_response(c, call->req, &call->resp, c->close_after || w->stopping);
	/*
	 * A routine answer (a runtime's tag report, one a commit) does not count
	 * against the connection's rate: such requests come one at a time, each
	 * after CAS's answer to the last, and each one passed its checks; a
	 * refused one counts.
	 */
	if (call->resp.routine && status < 400 && c->rate_count > 0)
		c->rate_count--;
	dur = cas_server_now_ns() - c->req_start_ns;
	cas_server_metrics_request(&w->srv->m, status, dur);
	cas_server_http_log(c, call->method_name,
			    call->path ? call->path
				       : target_for_log(evhttp_request_get_uri(call->req), raw, sizeof(raw)),
			    status, dur, call->resp.routine && status < 400);
	c->req_start_ns = 0;
	cas_server_conn_request_done(c);
	free_call(call);
}

void cas_server_http_request(struct evhttp_request *req, void *arg)
{
	struct cas_server_worker *w = arg;
	const struct cas_server_opts *o = &w->srv->o;
	struct cas_server_conn *c = cas_server_conn_of(req);
	const struct method *m = method_of(evhttp_request_get_command(req));
	struct cas_server_call *call = c ? calloc(1, sizeof(*call)) : NULL;

	if (!call) {
		refuse(c, req);
		cas_server_metrics_request(&w->srv->m, 503, 0);
		cas_server_http_log(NULL, m->name, "-", 503, 0, false);
		return;
	}
	cas_server_conn_begin_handling(c);
	call->w = w;
	call->c = c;
	call->req = req;
	call->method_name = m->name;
	call->resp.status = 200;
	scone_wbuf_init(&call->resp.body, RESPONSE_MAX, 1);
	if (prepare(w, c, m, call)) {
		if (o->is_slow && o->is_slow(o->handler_ctx, &call->r)) {
			if (cas_server_slow_submit(w, call))
				return; /* answered from cas_server_http_finish on this loop, later */
		} else {
			o->handler(o->handler_ctx, &call->r, &call->resp);
		}
	}
	cas_server_http_finish(call);
}
