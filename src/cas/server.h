/*
 * server.h - the CAS's HTTPS front end: TLS 1.3 (1.2 allowed) over libevent
 * OpenSSL bufferevents, HTTP/1.1 via evhttp, one event loop per worker
 * thread each with its own SO_REUSEPORT listening socket, limits against
 * hostile clients, and the Prometheus counters behind /metrics.
 *
 * It knows nothing of sessions: every request is handed, fully read and
 * within limits, to the handler given at start - on the loop that read it,
 * or, when the handler's is_slow says so, on a slow-lane thread.
 *
 * What a client that breaks a limit sees (nothing of it reaches the handler):
 * - method other than GET POST PUT DELETE: 405 JSON (a method evhttp does
 *   not know at all: evhttp's own 501, HTML body, connection closed)
 * - path not starting with '/', >= 1024 bytes, bad %-escape or %00: 400 JSON
 * - more than max_requests_per_conn_per_sec on one connection: 429 JSON,
 *   then the connection closes
 * - head over max_header_bytes: evhttp answers 400 itself (HTML body; 2.1
 *   has no hook for a JSON body or for 431) and closes the connection
 * - body over max_body_bytes: evhttp answers 413 itself (HTML body) as soon
 *   as Content-Length (or a chunk) says so, and closes the connection
 * - request not complete timeout_sec after the connection opened (TLS
 *   handshake included) or after the previous response: connection closed
 * - beyond max_connections open: closed at once, before TLS
 * - request bytes received and not yet answered, over all connections,
 *   beyond max_pending_bytes (each connection's first CAS_PENDING_FREE,
 *   16 KiB, not counted): the connection whose bytes went over is closed
 * Two Content-Length headers with different values, Transfer-Encoding beside
 * Content-Length or other than chunked: 400 JSON, then the connection closes.
 * All of these are counted in scone_cas_limit_rejections_total (evhttp's
 * 400 as reason="header", 413 as "body", 501 as "method", the byte budget
 * as "memory").
 */
#ifndef SCONE_CAS_SERVER_H
#define SCONE_CAS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "lib/buf.h"
#include "lib/err.h"

enum cas_method {
	CAS_GET = 1,
	CAS_POST,
	CAS_PUT,
	CAS_DELETE,
	CAS_OTHER,
};

struct cas_request {
	enum cas_method method;
	const char *path;	  /* decoded path without query, e.g. "/v1/sessions/a/b" */
	const char *query;	  /* raw query string or NULL */
	const char *content_type; /* NULL if absent */
	const uint8_t *body;	  /* NUL-terminated copy; body_len excludes the NUL */
	size_t body_len;
	bool has_peer_key;	      /* the client presented a certificate */
	uint8_t peer_spki_sha256[32]; /* SHA-256 of the client certificate's DER SubjectPublicKeyInfo */
	const char *peer_addr;	      /* "127.0.0.1:54321" for logs */
	int worker;		      /* index of the worker thread (for per-thread state) */
};

struct cas_response {
	int status;		  /* HTTP status, default 200 */
	unsigned retry_after;	  /* seconds; > 0 adds a Retry-After header (429, 503) */
	const char *content_type; /* default "application/json" */
	struct scone_wbuf body;	  /* secret wbuf: wiped after sending */
	/*
	 * A frequent answer a client makes at CAS's own pace (a runtime's tag
	 * report, one a commit): when successful, logged at debug level and not
	 * counted against the connection's --rate-limit.
	 */
	bool routine;
};

/* CAS's monotonic clock, in nanoseconds (request durations, paces). */
static inline uint64_t cas_server_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef void (*cas_handler_fn)(void *ctx, const struct cas_request *req, struct cas_response *resp);

struct cas_server_opts {
	const char *host;		   /* "127.0.0.1" */
	uint16_t port;			   /* 0 = pick a free port (see cas_server_port) */
	int workers;			   /* threads; 0 = number of online CPUs */
	SSL_CTX *ssl_ctx;		   /* server context (certificate, key, client certs requested) */
	size_t max_header_bytes;	   /* default 16 KiB */
	size_t max_body_bytes;		   /* default 1 MiB + 64 KiB */
	int max_connections;		   /* whole server, default 4096 */
	size_t max_pending_bytes;	   /* request bytes in flight over all connections beyond each one's
					    * first 16 KiB; default 64 MiB */
	int max_requests_per_conn_per_sec; /* default 200; beyond: 429 and the connection closes */
	int timeout_sec;		   /* default 10: TLS handshake + request head and body must arrive
					    * within it (in total, from accept or from the previous
					    * response); also the idle timeout of writing a response */
	cas_handler_fn handler;
	void *handler_ctx;
	/*
	 * The slow lane: requests for which is_slow(handler_ctx, req) is true
	 * (e.g. session writes that generate keys) are handled on slow_workers
	 * threads of their own, at a lower priority, so that the event loops go
	 * on answering everything else at once. At most slow_queue wait; beyond,
	 * 503 BUSY. The handler sees worker indexes workers .. workers +
	 * slow_workers - 1 there (worker_init is called for each). NULL: none.
	 */
	bool (*is_slow)(void *ctx, const struct cas_request *req);
	int slow_workers; /* default 1 */
	int slow_queue;	  /* default 64 */
	/* Called once in each worker thread before it serves (e.g. to open a store handle). */
	enum scone_err (*worker_init)(void *ctx, int worker);
	void (*worker_fini)(void *ctx, int worker);
	/* Called about once a second on each loop's thread, between requests (NULL: none). */
	void (*worker_tick)(void *ctx, int worker);
};

struct cas_server;

/* Bind every worker's socket (fails early if the address is taken). */
SCONE_MUST_CHECK enum scone_err cas_server_new(const struct cas_server_opts *opts, struct cas_server **out);
uint16_t cas_server_port(const struct cas_server *srv);
/* Serve until cas_server_stop (async-signal-safe) is called; joins workers. */
SCONE_MUST_CHECK enum scone_err cas_server_run(struct cas_server *srv);
void cas_server_stop(struct cas_server *srv);
void cas_server_free(struct cas_server *srv);

/* Append the server's counters in Prometheus text format (for /metrics). */
SCONE_MUST_CHECK enum scone_err cas_server_metrics(const struct cas_server *srv, struct scone_wbuf *out);
/* Append one counter or gauge (# HELP, # TYPE and its value) in the same format. */
SCONE_MUST_CHECK enum scone_err cas_server_metric(struct scone_wbuf *out, const char *name, const char *type,
						  const char *help, uint64_t value);

/*
 * The server-side TLS context CAS uses (caller frees it with SSL_CTX_free):
 * TLS 1.2 minimum, 1.3 preferred, ECDHE groups X25519 and P-256, session
 * tickets on, client certificates requested and any one accepted (the
 * owner is identified by its public key, see cas_request.peer_spki_sha256).
 * NULL on failure, with scone_err_detail() naming the file and reason.
 */
SSL_CTX *cas_server_tls_ctx(const char *cert_pem_path, const char *key_pem_path);

/*
 * Helpers for handlers: a JSON error body {"error": msg, "code": CODE} (plus
 * a newline), escaped by jansson; replaces (and wipes) any body already in
 * resp. A zeroed resp works too: its body is then set up here.
 */
void cas_respond_error(struct cas_response *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*
 * A JSON body (a json_t *, whose reference is taken) with its status, in the
 * same way: compact, newline, any earlier body wiped; a 500 JSON error if it
 * cannot be written.
 */
void cas_respond_json(struct cas_response *resp, int status, void *json);

#endif
