/*
 * test_server.c - unit tests for the CAS HTTPS front end (src/cas/server*.c):
 * a real server on 127.0.0.1 (port 0, two workers) with an echo handler,
 * driven by a small blocking OpenSSL client over real sockets.
 *
 * Covered: TLS 1.3 round trips (GET/POST/PUT/DELETE), the client-key hash
 * with and without a client certificate, keep-alive and HTTP/1.0, every
 * limit (header, body, slow client and silent TLS handshake, rate, method,
 * path, max_connections), garbage instead of TLS, the metrics text, the
 * request log line (no query string), cas_respond_error's escaping, option
 * and bind errors, and a graceful stop from a signal handler with a request
 * in flight. Certificates are made here with OpenSSL (self-signed P-256).
 */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cas/server.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define RESP_MAX (256u << 10)

/* ---- fixtures: certificates, contexts, one shared server ---- */

struct harness {
	struct cas_server *srv;
	pthread_t thread;
	enum scone_err run_err;
	uint16_t port;
};

static char tmpdir[] = "/tmp/scone-test-server.XXXXXX";
static char srv_crt[128], srv_key[128], cli_crt[128], cli_key[128];
static SSL_CTX *server_ctx, *client_ctx, *client_ctx_cert;
static uint8_t client_spki_sha256[32];
static atomic_int handler_calls;
static struct harness shared;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static X509 *self_signed(EVP_PKEY *k, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	n = X509_get_subject_name(x);
	assert_int_equal(
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_issuer_name(x, n), 1);
	assert_int_equal(X509_set_pubkey(x, k), 1);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	return x;
}

static void write_identity(const char *crt_path, const char *key_path, const char *cn, uint8_t spki_hash[32])
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x;
	FILE *f;
	unsigned char *der = NULL;
	int n;

	assert_non_null(k);
	x = self_signed(k, cn);
	assert_non_null(f = fopen(crt_path, "w"));
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	assert_non_null(f = fopen(key_path, "w"));
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	if (spki_hash) {
		n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
		assert_true(n > 0);
		scone_sha256(der, (size_t)n, spki_hash);
		OPENSSL_free(der);
	}
	X509_free(x);
	EVP_PKEY_free(k);
}

static SSL_CTX *new_client_ctx(bool with_cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (with_cert) {
		assert_int_equal(SSL_CTX_use_certificate_file(ctx, cli_crt, SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, cli_key, SSL_FILETYPE_PEM), 1);
	}
	return ctx;
}

/* The echo handler: what the server delivered, as JSON; /metrics, /slow and /error are special. */
static void echo_handler(void *ctx, const struct cas_request *req, struct cas_response *resp)
{
	static const char *const names[] = {"?", "GET", "POST", "PUT", "DELETE", "OTHER"};
	struct harness *h = ctx;
	char peer[65];
	json_t *j;
	char *text;

	atomic_fetch_add(&handler_calls, 1);
	if (strcmp(req->path, "/metrics") == 0) {
		resp->content_type = "text/plain; version=0.0.4";
		assert_ok(cas_server_metrics(h->srv, &resp->body));
		return;
	}
	if (strcmp(req->path, "/error") == 0) {
		cas_respond_error(resp, 404, "NOT_FOUND", "no \"such\" thing\n");
		return;
	}
	if (strcmp(req->path, "/routine") == 0)
		resp->routine = true;
	if (strcmp(req->path, "/slow") == 0)
		sleep_ms(300);
	if (strcmp(req->path, "/lane/sleep") == 0)
		sleep_ms(600);
	if (req->has_peer_key)
		scone_hex_encode(peer, sizeof(peer), req->peer_spki_sha256, 32);
	j = json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:s?, s:i, s:s}", "method", names[req->method], "path",
		      req->path, "query", req->query, "content_type", req->content_type, "body_len",
		      (json_int_t)req->body_len, "peer", req->has_peer_key ? peer : NULL, "worker",
		      req->worker, "peer_addr", req->peer_addr);
	assert_non_null(j);
	assert_int_equal(req->body[req->body_len], '\0');
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	assert_ok(scone_wbuf_put(&resp->body, text, strlen(text)));
	free(text);
}

static void *run_thread(void *arg)
{
	struct harness *h = arg;

	h->run_err = cas_server_run(h->srv);
	return NULL;
}

static void default_opts(struct cas_server_opts *o, struct harness *h)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->workers = 2;
	o->ssl_ctx = server_ctx;
	o->max_body_bytes = 64u << 10;
	o->timeout_sec = 1;
	o->handler = echo_handler;
	o->handler_ctx = h;
}

static void start(struct harness *h, const struct cas_server_opts *o)
{
	memset(h, 0, sizeof(*h));
	assert_ok(cas_server_new(o, &h->srv));
	h->port = cas_server_port(h->srv);
	assert_true(h->port != 0);
	assert_int_equal(pthread_create(&h->thread, NULL, run_thread, h), 0);
}

static void stop(struct harness *h)
{
	cas_server_stop(h->srv);
	assert_int_equal(pthread_join(h->thread, NULL), 0);
	assert_ok(h->run_err);
	cas_server_free(h->srv);
	h->srv = NULL;
}

static int group_setup(void **state)
{
	struct cas_server_opts o;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(srv_crt, sizeof(srv_crt), "%s/server.crt", tmpdir);
	snprintf(srv_key, sizeof(srv_key), "%s/server.key", tmpdir);
	snprintf(cli_crt, sizeof(cli_crt), "%s/client.crt", tmpdir);
	snprintf(cli_key, sizeof(cli_key), "%s/client.key", tmpdir);
	write_identity(srv_crt, srv_key, "scone-cas-test", NULL);
	write_identity(cli_crt, cli_key, "owner", client_spki_sha256);
	server_ctx = cas_server_tls_ctx(srv_crt, srv_key);
	if (!server_ctx)
		return -1;
	client_ctx = new_client_ctx(false);
	client_ctx_cert = new_client_ctx(true);
	default_opts(&o, &shared);
	start(&shared, &o);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	stop(&shared);
	SSL_CTX_free(server_ctx);
	SSL_CTX_free(client_ctx);
	SSL_CTX_free(client_ctx_cert);
	unlink(srv_crt);
	unlink(srv_key);
	unlink(cli_crt);
	unlink(cli_key);
	rmdir(tmpdir);
	return 0;
}

/* ---- a small blocking client ---- */

struct client {
	int fd;
	SSL *ssl;
	char buf[RESP_MAX];
	size_t have;
};

struct http_resp {
	int status;
	char head[4096];
	char body[RESP_MAX];
	size_t body_len;
};

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Connect and handshake; false when the server refused (client still needs client_close). */
static bool client_open(struct client *c, uint16_t port, bool with_cert)
{
	c->have = 0;
	c->fd = tcp_connect(port);
	c->ssl = SSL_new(with_cert ? client_ctx_cert : client_ctx);
	assert_non_null(c->ssl);
	assert_int_equal(SSL_set_fd(c->ssl, c->fd), 1);
	if (SSL_connect(c->ssl) != 1) {
		ERR_clear_error();
		return false;
	}
	return true;
}

static struct client *client_new(uint16_t port, bool with_cert)
{
	struct client *c = malloc(sizeof(*c));

	assert_non_null(c);
	assert_true(client_open(c, port, with_cert));
	return c;
}

static void client_free(struct client *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	close(c->fd);
	free(c);
}

static bool client_send(struct client *c, const void *data, size_t n)
{
	const char *p = data;

	while (n) {
		int w = SSL_write(c->ssl, p, n > 16384 ? 16384 : (int)n);
		if (w <= 0) {
			ERR_clear_error();
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Read more bytes into c->buf; false on close, error or timeout. */
static bool client_fill(struct client *c)
{
	int r;

	if (c->have >= sizeof(c->buf))
		return false;
	r = SSL_read(c->ssl, c->buf + c->have, (int)(sizeof(c->buf) - c->have));
	if (r <= 0) {
		ERR_clear_error();
		return false;
	}
	c->have += (size_t)r;
	return true;
}

static const char *find_header(const char *head, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':')
			return p + 2 + n + 1 + strspn(p + 2 + n + 1, " ");
	return NULL;
}

/* One response (status, head, Content-Length body unless head_only); false if the connection ended first. */
static bool client_read_ex(struct client *c, struct http_resp *r, bool head_only)
{
	char *end;
	size_t head_len, need;
	const char *cl;

	memset(r, 0, sizeof(*r));
	while (!(end = memmem(c->buf, c->have, "\r\n\r\n", 4)))
		if (!client_fill(c))
			return false;
	head_len = (size_t)(end - c->buf) + 4;
	assert_true(head_len < sizeof(r->head));
	memcpy(r->head, c->buf, head_len);
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		fail_msg("not a response head: %s", r->head);
	cl = find_header(r->head, "Content-Length");
	need = cl && !head_only ? strtoul(cl, NULL, 10) : 0;
	assert_true(need < sizeof(r->body));
	while (c->have < head_len + need)
		if (!client_fill(c))
			return false;
	memcpy(r->body, c->buf + head_len, need);
	r->body_len = need;
	memmove(c->buf, c->buf + head_len + need, c->have - head_len - need);
	c->have -= head_len + need;
	return true;
}

static bool client_read(struct client *c, struct http_resp *r)
{
	return client_read_ex(c, r, false);
}

/* Everything until the server closes (HTTP/1.0 bodies end so); NUL-terminated. */
static size_t client_read_all(struct client *c)
{
	while (client_fill(c))
		;
	assert_true(c->have < sizeof(c->buf));
	c->buf[c->have] = '\0';
	return c->have;
}

/* Without blocking: has the server closed the connection (unread TLS records are consumed)? */
static bool client_closed_now(struct client *c)
{
	int fl = fcntl(c->fd, F_GETFL), r, e;
	char b[64];

	assert_int_equal(fcntl(c->fd, F_SETFL, fl | O_NONBLOCK), 0);
	r = SSL_read(c->ssl, b, sizeof(b));
	e = SSL_get_error(c->ssl, r);
	ERR_clear_error();
	assert_int_equal(fcntl(c->fd, F_SETFL, fl), 0);
	return r <= 0 && e != SSL_ERROR_WANT_READ;
}

/* True once the server has closed the connection (EOF or reset) without sending a response. */
static bool client_closed(struct client *c)
{
	return !client_fill(c);
}

static int request(struct client *c, const char *raw, struct http_resp *r)
{
	if (!client_send(c, raw, strlen(raw)) || !client_read(c, r))
		return -1;
	return r->status;
}

static json_t *body_json(const struct http_resp *r)
{
	json_t *j = json_loadb(r->body, r->body_len, 0, NULL);

	assert_non_null(j);
	return j;
}

static const char *jstr(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

/* GET /metrics on a fresh connection. */
static void fetch_metrics(uint16_t port, struct http_resp *r)
{
	struct client *c = client_new(port, false);

	assert_int_equal(request(c, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	r->body[r->body_len < sizeof(r->body) ? r->body_len : sizeof(r->body) - 1] = '\0';
	client_free(c);
}

static double metric_in(const char *text, const char *series)
{
	char key[256];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", series);
	p = strstr(text, key);
	return p ? strtod(p + strlen(key), NULL) : -1;
}

/* A series' value straight from cas_server_metrics (no connection needed). */
static double metric(const struct cas_server *srv, const char *series)
{
	struct scone_wbuf b;
	double v;

	scone_wbuf_init(&b, 1u << 20, 0);
	assert_ok(cas_server_metrics(srv, &b));
	assert_ok(scone_wbuf_put(&b, "", 1));
	v = metric_in((const char *)b.data, series);
	scone_wbuf_free(&b);
	return v;
}

/* Metrics are updated when connections are torn down; poll a little. */
static void wait_metric_at_least(const struct cas_server *srv, const char *series, double min)
{
	double v = -1;

	for (int i = 0; i < 40 && (v = metric(srv, series)) < min; i++)
		sleep_ms(50);
	if (v < min)
		fail_msg("%s is %g, expected at least %g", series, v, min);
}

/* ---- round trips ---- */

TEST(test_roundtrip)
{
	struct client *c = client_new(shared.port, false);
	struct http_resp *r = malloc(sizeof(*r));
	static const char post[] = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
				   "Content-Length: 11\r\n\r\nhello world";
	const char *expect;
	json_t *j;

	assert_non_null(r);
	assert_int_equal(SSL_version(c->ssl), TLS1_3_VERSION);
	assert_int_equal(request(c, "GET /hello?x=1&y=%41 HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	assert_non_null(strstr(r->head, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(r->head, "Cache-Control: no-store\r\n"));
	j = body_json(r);
	assert_string_equal(jstr(j, "method"), "GET");
	assert_string_equal(jstr(j, "path"), "/hello");
	assert_string_equal(jstr(j, "query"), "x=1&y=%41");
	assert_int_equal(json_integer_value(json_object_get(j, "body_len")), 0);
	assert_true(json_is_null(json_object_get(j, "peer")));
	assert_non_null(strstr(jstr(j, "peer_addr"), "127.0.0.1:"));
	json_decref(j);

	assert_int_equal(request(c, post, r), 200);
	j = body_json(r);
	assert_string_equal(jstr(j, "method"), "POST");
	assert_string_equal(jstr(j, "content_type"), "text/plain");
	assert_int_equal(json_integer_value(json_object_get(j, "body_len")), 11);
	json_decref(j);

	assert_int_equal(request(c, "PUT /a%20b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}", r), 200);
	j = body_json(r);
	assert_string_equal(jstr(j, "method"), "PUT");
	assert_string_equal(jstr(j, "path"), "/a b");
	json_decref(j);

	/* Chunked body, and Expect: 100-continue (evhttp's interim 100 comes first). */
	assert_int_equal(request(c,
				 "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
				 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
				 r),
			 200);
	j = body_json(r);
	assert_int_equal(json_integer_value(json_object_get(j, "body_len")), 11);
	json_decref(j);
	expect = "POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
	assert_true(client_send(c, expect, strlen(expect)));
	assert_true(client_read(c, r));
	assert_int_equal(r->status, 100);
	assert_int_equal(request(c, "abc", r), 200);
	j = body_json(r);
	assert_int_equal(json_integer_value(json_object_get(j, "body_len")), 3);
	json_decref(j);

	assert_int_equal(request(c, "DELETE /x HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	j = body_json(r);
	assert_string_equal(jstr(j, "method"), "DELETE");
	json_decref(j);

	/* A handler's error body: escaped JSON, its status, still no-store. */
	assert_int_equal(request(c, "GET /error HTTP/1.1\r\nHost: t\r\n\r\n", r), 404);
	j = body_json(r);
	assert_string_equal(jstr(j, "error"), "no \"such\" thing\n");
	assert_string_equal(jstr(j, "code"), "NOT_FOUND");
	assert_non_null(strstr(r->head, "Cache-Control: no-store\r\n"));
	json_decref(j);
	client_free(c);
	free(r);
}

TEST(test_peer_key)
{
	struct client *c = client_new(shared.port, true);
	struct http_resp *r = malloc(sizeof(*r));
	char want[65];
	json_t *j;

	assert_non_null(r);
	scone_hex_encode(want, sizeof(want), client_spki_sha256, 32);
	assert_int_equal(request(c, "GET /who HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	j = body_json(r);
	assert_string_equal(jstr(j, "peer"), want);
	json_decref(j);
	/* Cached per connection: the same on the next request. */
	assert_int_equal(request(c, "GET /who HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	j = body_json(r);
	assert_string_equal(jstr(j, "peer"), want);
	json_decref(j);
	SSL_shutdown(c->ssl);
	client_free(c);

	/* No resumption: a second connection offering the old session does a full handshake. */
	c = client_new(shared.port, true);
	assert_int_equal(SSL_session_reused(c->ssl), 0);
	assert_int_equal(request(c, "GET /who HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	j = body_json(r);
	assert_string_equal(jstr(j, "peer"), want);
	json_decref(j);
	client_free(c);

	c = client_new(shared.port, false);
	assert_int_equal(request(c, "GET /who HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	j = body_json(r);
	assert_true(json_is_null(json_object_get(j, "peer")));
	json_decref(j);
	client_free(c);
	free(r);
}

TEST(test_keepalive_and_http10)
{
	struct client *c = client_new(shared.port, false);
	struct http_resp *r = malloc(sizeof(*r));

	assert_non_null(r);
	assert_int_equal(request(c, "GET /one HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	assert_int_equal(request(c, "GET /two HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	/* Asking to close: answered, then closed. */
	assert_int_equal(request(c, "GET /three HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", r), 200);
	assert_true(client_closed(c));
	client_free(c);

	/* HTTP/1.0 without keep-alive: the body ends with the connection. */
	c = client_new(shared.port, false);
	assert_true(client_send(c, "GET /old HTTP/1.0\r\n\r\n", 21));
	assert_true(client_read_all(c) > 0);
	assert_non_null(strstr(c->buf, "HTTP/1.0 200 OK\r\n"));
	assert_non_null(strstr(c->buf, "\"path\":\"/old\""));
	client_free(c);
	/* HTTP/1.0 with keep-alive: two requests on one connection. */
	c = client_new(shared.port, false);
	assert_int_equal(request(c, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r), 200);
	assert_int_equal(request(c, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", r), 200);
	client_free(c);
	free(r);
}

/* ---- limits ---- */

TEST(test_header_too_large)
{
	int before = atomic_load(&handler_calls);
	struct client *c = client_new(shared.port, false);
	struct http_resp *r = malloc(sizeof(*r));
	size_t n = 20000;
	char *req = malloc(n + 100);

	assert_non_null(r);
	assert_non_null(req);
	strcpy(req, "GET /big HTTP/1.1\r\nHost: t\r\nX-Big: ");
	memset(req + strlen(req), 'a', n);
	strcpy(req + strlen("GET /big HTTP/1.1\r\nHost: t\r\nX-Big: ") + n, "\r\n\r\n");
	/* evhttp answers 400 and closes; with unread bytes the close may arrive as a reset instead. */
	if (client_send(c, req, strlen(req)) && client_read(c, r))
		assert_true(r->status == 400 || r->status == 431);
	assert_true(client_closed(c));
	assert_int_equal(atomic_load(&handler_calls), before);
	client_free(c);
	free(req);
	free(r);
	wait_metric_at_least(shared.srv, "scone_cas_limit_rejections_total{reason=\"header\"}", 1);
}

TEST(test_body_too_large)
{
	int before = atomic_load(&handler_calls);
	struct client *c = client_new(shared.port, false);
	struct http_resp *r = malloc(sizeof(*r));

	assert_non_null(r);
	assert_int_equal(request(c, "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n", r),
			 413);
	assert_true(client_closed(c));
	assert_int_equal(atomic_load(&handler_calls), before);
	client_free(c);
	free(r);
	wait_metric_at_least(shared.srv, "scone_cas_limit_rejections_total{reason=\"body\"}", 1);
}

/* Wait until a plain socket is closed by the peer; seconds it took, or -1. */
static double wait_tcp_closed(int fd, double start, double max_s)
{
	char b[256];

	while (now_s() - start < max_s) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) == 1) {
			ssize_t n = recv(fd, b, sizeof(b), 0);
			if (n == 0 || (n < 0 && errno == ECONNRESET))
				return now_s() - start;
		}
	}
	return -1;
}

TEST(test_slow_client)
{
	static const char head[] =
	    "GET /never HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	int before = atomic_load(&handler_calls);
	int silent = tcp_connect(shared.port); /* never starts TLS */
	double t0 = now_s(), took;
	struct client *c = client_new(shared.port, false);
	size_t i;

	/* One byte every 100 ms: each byte is "progress", yet the request must die at ~1 s in total. */
	for (i = 0; i < sizeof(head) - 1; i++) {
		if (!client_send(c, head + i, 1))
			break;
		sleep_ms(100);
		if (client_closed_now(c))
			break;
	}
	took = now_s() - t0;
	assert_true(i < sizeof(head) - 1);
	assert_true(took > 0.8 && took < 2.5);
	assert_true(client_closed(c));
	client_free(c);
	/* The silent connection hit the TLS handshake deadline. */
	took = wait_tcp_closed(silent, t0, 3);
	assert_true(took > 0.8 && took < 2.5);
	close(silent);
	assert_int_equal(atomic_load(&handler_calls), before);
	wait_metric_at_least(shared.srv, "scone_cas_limit_rejections_total{reason=\"timeout\"}", 2);
	wait_metric_at_least(shared.srv, "scone_cas_tls_handshake_failures_total", 1);
}

TEST(test_rate_limit)
{
	struct harness h;
	struct cas_server_opts o;
	struct client *c;
	struct http_resp *r = malloc(sizeof(*r));
	int ok = 0, status = 0;
	json_t *j;

	assert_non_null(r);
	default_opts(&o, &h);
	o.max_requests_per_conn_per_sec = 5;
	start(&h, &o);
	c = client_new(h.port, false);
	/* Two rate windows at most can pass before a 429: 10 requests. */
	while (ok <= 10 && (status = request(c, "GET /r HTTP/1.1\r\nHost: t\r\n\r\n", r)) == 200)
		ok++;
	assert_int_equal(status, 429);
	assert_true(ok >= 5);
	j = body_json(r);
	assert_string_equal(jstr(j, "code"), "LIMIT");
	json_decref(j);
	assert_non_null(strstr(r->head, "Connection: close\r\n"));
	assert_true(client_closed(c));
	client_free(c);
	wait_metric_at_least(h.srv, "scone_cas_limit_rejections_total{reason=\"rate\"}", 1);
	/*
	 * Routine answers (a runtime's tag reports, one a commit) do not count:
	 * 50 of them on one connection, then the limit still holds for the rest.
	 */
	c = client_new(h.port, false);
	for (int i = 0; i < 50; i++)
		assert_int_equal(
		    request(c, "POST /routine HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", r), 200);
	ok = 0;
	while (ok <= 10 && (status = request(c, "GET /r HTTP/1.1\r\nHost: t\r\n\r\n", r)) == 200)
		ok++;
	assert_int_equal(status, 429);
	client_free(c);
	stop(&h);
	free(r);
}

static atomic_int ticks[4];

static void count_tick(void *ctx, int worker)
{
	(void)ctx;
	if (worker >= 0 && worker < 4)
		atomic_fetch_add(&ticks[worker], 1);
}

/* worker_tick runs on every loop about once a second, and stops with the server. */
TEST(test_worker_tick)
{
	struct harness h;
	struct cas_server_opts o;
	int after_stop;

	default_opts(&o, &h);
	o.worker_tick = count_tick;
	start(&h, &o);
	sleep_ms(2300);
	for (int i = 0; i < 2; i++)
		if (atomic_load(&ticks[i]) < 1 ||
		    atomic_load(&ticks[i]) > 4) /* (2 expected; a loaded machine) */
			fail_msg("worker %d ticked %d times in 2.3 s", i, atomic_load(&ticks[i]));
	stop(&h);
	after_stop = atomic_load(&ticks[0]) + atomic_load(&ticks[1]);
	sleep_ms(1200);
	assert_int_equal(atomic_load(&ticks[0]) + atomic_load(&ticks[1]), after_stop);
}

TEST(test_connection_limit)
{
	struct harness h;
	struct cas_server_opts o;
	struct client *c[3], *extra = malloc(sizeof(*extra));
	struct http_resp *r = malloc(sizeof(*r));
	bool reopened = false;

	assert_non_null(extra);
	assert_non_null(r);
	default_opts(&o, &h);
	o.max_connections = 3;
	o.timeout_sec = 5;
	start(&h, &o);
	for (int i = 0; i < 3; i++) {
		c[i] = client_new(h.port, false);
		assert_int_equal(request(c[i], "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	}
	/* The fourth is closed before TLS. */
	assert_false(client_open(extra, h.port, false));
	SSL_free(extra->ssl);
	close(extra->fd);
	/* The three still work. */
	assert_int_equal(request(c[0], "GET /still HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	/* A slot frees when one closes. */
	client_free(c[2]);
	for (int i = 0; i < 40 && !reopened; i++) {
		reopened = client_open(extra, h.port, false);
		if (!reopened) {
			SSL_free(extra->ssl);
			close(extra->fd);
			sleep_ms(50);
		}
	}
	assert_true(reopened);
	assert_int_equal(request(extra, "GET /again HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	SSL_free(extra->ssl);
	close(extra->fd);
	free(extra);
	client_free(c[0]);
	client_free(c[1]);
	wait_metric_at_least(h.srv, "scone_cas_connections_rejected_total", 1);
	stop(&h);
	free(r);
}

/*
 * Partial requests of many connections share one byte budget: with 256 KiB,
 * twelve connections each sending 100 KiB of a 200 kB body cannot all stay;
 * those that would take the total over it are closed, the rest still hold
 * their request, and once they go the charge is back to zero.
 */
TEST(test_pending_budget)
{
	static const char head[] = "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 200000\r\n\r\n";
	enum { N = 12, PART = 100 << 10 };
	struct harness h;
	struct cas_server_opts o;
	struct client *c[N];
	struct http_resp *r = malloc(sizeof(*r));
	char *part = malloc(PART);
	int closed = 0, open = 0;

	assert_non_null(r);
	assert_non_null(part);
	memset(part, 'x', PART);
	default_opts(&o, &h);
	o.max_body_bytes = 220u << 10;
	o.max_pending_bytes = 256u << 10;
	o.timeout_sec = 10;
	start(&h, &o);
	for (int i = 0; i < N; i++) {
		c[i] = client_new(h.port, false);
		if (!client_send(c[i], head, sizeof(head) - 1) || !client_send(c[i], part, PART))
			continue; /* closed while sending: refused */
		sleep_ms(20);
	}
	sleep_ms(300);
	for (int i = 0; i < N; i++) {
		if (client_closed_now(c[i]))
			closed++;
		else
			open++;
	}
	/* Each open one is charged 100 KiB - 16 KiB; at most three fit in 256 KiB. */
	assert_true(open <= 3);
	assert_true(closed >= N - 3);
	assert_true(metric(h.srv, "scone_cas_request_bytes_charged") <= (double)(256u << 10));
	wait_metric_at_least(h.srv, "scone_cas_limit_rejections_total{reason=\"memory\"}", 1);
	/* The server still answers small requests meanwhile. */
	{
		struct client *probe = client_new(h.port, false);
		assert_int_equal(request(probe, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
		client_free(probe);
	}
	for (int i = 0; i < N; i++)
		client_free(c[i]);
	for (int i = 0; i < 40 && metric(h.srv, "scone_cas_request_bytes_charged") > 0; i++)
		sleep_ms(50);
	assert_true(metric(h.srv, "scone_cas_request_bytes_charged") == 0);
	/* A whole large request still goes through once the budget is free. */
	{
		struct client *big = client_new(h.port, false);
		char *req = malloc(sizeof(head) - 1 + 200000);
		assert_non_null(req);
		memcpy(req, head, sizeof(head) - 1);
		memset(req + sizeof(head) - 1, 'y', 200000);
		assert_true(client_send(big, req, sizeof(head) - 1 + 200000));
		assert_true(client_read(big, r));
		assert_int_equal(r->status, 200);
		free(req);
		client_free(big);
	}
	assert_true(metric(h.srv, "scone_cas_request_bytes_charged") == 0);
	stop(&h);
	/* A budget smaller than one largest request could never let it through. */
	o.max_pending_bytes = o.max_body_bytes;
	assert_int_equal(cas_server_new(&o, &h.srv), SCONE_ERR_INVALID);
	free(part);
	free(r);
}

TEST(test_bad_method)
{
	int before = atomic_load(&handler_calls);
	struct client *c = client_new(shared.port, false);
	struct http_resp *r = malloc(sizeof(*r));
	json_t *j;

	assert_non_null(r);
	assert_int_equal(request(c, "PATCH /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}", r), 405);
	j = body_json(r);
	assert_string_equal(jstr(j, "code"), "UNSUPPORTED");
	json_decref(j);
	assert_non_null(strstr(r->head, "Allow: GET, POST, PUT, DELETE\r\n"));
	/* The connection stays usable after a JSON refusal. */
	assert_int_equal(request(c, "OPTIONS /x HTTP/1.1\r\nHost: t\r\n\r\n", r), 405);
	assert_true(client_send(c, "HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n", 29));
	assert_true(client_read_ex(c, r, true));
	assert_int_equal(r->status, 405);
	/* A method evhttp does not know: its own 501, then closed. */
	assert_int_equal(request(c, "BREW /x HTTP/1.1\r\nHost: t\r\n\r\n", r), 501);
	assert_true(client_closed(c));
	client_free(c);
	assert_int_equal(atomic_load(&handler_calls), before);
	free(r);
	wait_metric_at_least(shared.srv, "scone_cas_limit_rejections_total{reason=\"method\"}", 4);
}

TEST(test_bad_path)
{
	static const char *const bad[] = {
	    "GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n",
	    "GET /a%0ab HTTP/1.1\r\nHost: t\r\n\r\n",
	    "GET /a%2 HTTP/1.1\r\nHost: t\r\n\r\n",
	    "GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n",
	};
	int before = atomic_load(&handler_calls);
	struct client *c = client_new(shared.port, false);
	struct http_resp *r = malloc(sizeof(*r));
	char longreq[1200];
	json_t *j;

	assert_non_null(r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(request(c, bad[i], r), 400);
		j = body_json(r);
		assert_string_equal(jstr(j, "code"), "INVALID");
		json_decref(j);
	}
	memset(longreq, 0, sizeof(longreq));
	strcpy(longreq, "GET /");
	memset(longreq + 5, 'p', 1023);
	strcat(longreq, " HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(request(c, longreq, r), 400);
	assert_int_equal(atomic_load(&handler_calls), before);
	/* 1023 bytes is fine. */
	longreq[5 + 1022] = ' ';
	memmove(longreq + 5 + 1022 + 1, longreq + 5 + 1023 + 1, strlen(longreq + 5 + 1023 + 1) + 1);
	assert_int_equal(request(c, longreq, r), 200);
	/* Absolute form: refused; evhttp takes it for a proxy request and closes after. */
	assert_int_equal(request(c, "GET http://t/abs HTTP/1.1\r\nHost: t\r\n\r\n", r), 400);
	j = body_json(r);
	assert_string_equal(jstr(j, "code"), "INVALID");
	json_decref(j);
	client_free(c);
	free(r);
}

/* A refused path is logged as a C string: %ZZ once left the decoded path unterminated (read past it). */
TEST(test_bad_path_logged)
{
	char path[160], line[4096];
	struct client *c;
	struct http_resp *r = malloc(sizeof(*r));
	int saved = dup(2), fd;
	FILE *f;
	bool found = false;

	assert_non_null(r);
	snprintf(path, sizeof(path), "%s/badlog", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	scone_log_set_level(SCONE_LOG_INFO);
	assert_int_equal(dup2(fd, 2), 2);
	c = client_new(shared.port, false);
	assert_int_equal(request(c, "GET /v1/sessions/%ZZ HTTP/1.1\r\nHost: t\r\n\r\n", r), 400);
	assert_int_equal(request(c, "GET /v1/x%4 HTTP/1.1\r\nHost: t\r\n\r\n", r), 400);
	assert_int_equal(request(c, "GET /v1/%41%0a?q=SECRET9 HTTP/1.1\r\nHost: t\r\n\r\n", r), 400);
	client_free(c);
	assert_int_equal(dup2(saved, 2), 2);
	scone_log_set_level(SCONE_LOG_WARN);
	close(saved);
	close(fd);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f)) {
		assert_null(strstr(line, "SECRET9"));
		if (strstr(line, "\"path\":\"/v1/sessions/%ZZ\"") && strstr(line, "\"status\":400"))
			found = true;
	}
	fclose(f);
	unlink(path);
	assert_true(found);
	free(r);
}

/* Content-Length and Transfer-Encoding must leave no doubt where a body ends (request smuggling). */
TEST(test_framing)
{
	static const char *const bad[] = {
	    "POST /f HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 10\r\n\r\nhelloGET /x "
	    "HTTP/1.1\r\n\r\n",
	    "POST /f HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nContent-Length: 5\r\n\r\nhelloGET /x "
	    "HTTP/1.1\r\n\r\n",
	    "POST /f HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	    "POST /f HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "POST /f HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
	    "chunked\r\n\r\n0\r\n\r\n",
	};
	int before = atomic_load(&handler_calls);
	struct http_resp *r = malloc(sizeof(*r));
	struct client *c;
	json_t *j;

	assert_non_null(r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = client_new(shared.port, false);
		assert_int_equal(request(c, bad[i], r), 400);
		/* libevent refuses Content-Length beside chunked itself (its own HTML answer). */
		if (strstr(r->head, "application/json")) {
			j = body_json(r);
			assert_string_equal(jstr(j, "code"), "INVALID");
			json_decref(j);
		}
		assert_non_null(strstr(r->head, "Connection: close"));
		/* Nothing after the refused request is read as another request. */
		assert_true(client_closed(c));
		client_free(c);
	}
	assert_int_equal(atomic_load(&handler_calls), before);
	/* The same length twice is no ambiguity; one chunked body is fine. */
	c = client_new(shared.port, false);
	assert_int_equal(
	    request(c, "POST /f HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		    r),
	    200);
	assert_int_equal(
	    request(
		c, "POST /f HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		r),
	    200);
	client_free(c);
	free(r);
}

TEST(test_garbage_instead_of_tls)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: t\r\n\r\n\x16\x03\x01\xff\xff garbage garbage";
	double t0 = now_s();
	int fd = tcp_connect(shared.port);
	struct client *c;
	struct http_resp *r = malloc(sizeof(*r));

	assert_non_null(r);
	assert_int_equal(send(fd, junk, sizeof(junk) - 1, 0), (ssize_t)(sizeof(junk) - 1));
	assert_true(wait_tcp_closed(fd, t0, 3) >= 0);
	close(fd);
	/* Random bytes too. */
	fd = tcp_connect(shared.port);
	{
		uint8_t rnd[300];
		assert_ok(scone_random(rnd, sizeof(rnd)));
		rnd[0] = 0x16;
		assert_int_equal(send(fd, rnd, sizeof(rnd), 0), (ssize_t)sizeof(rnd));
	}
	assert_true(wait_tcp_closed(fd, now_s(), 3) >= 0);
	close(fd);
	/* And the server still serves. */
	c = client_new(shared.port, false);
	assert_int_equal(request(c, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	client_free(c);
	free(r);
	wait_metric_at_least(shared.srv, "scone_cas_tls_handshake_failures_total", 2);
}

/* ---- metrics, log, helpers ---- */

TEST(test_metrics_text)
{
	static const char *const want[] = {
	    "# HELP scone_cas_requests_total ",
	    "# TYPE scone_cas_requests_total counter\n",
	    "\nscone_cas_requests_total{code=\"2xx\"} ",
	    "\nscone_cas_requests_total{code=\"3xx\"} 0\n",
	    "\nscone_cas_requests_total{code=\"4xx\"} ",
	    "\nscone_cas_requests_total{code=\"5xx\"} ",
	    "# TYPE scone_cas_connections_open gauge\n",
	    "\nscone_cas_connections_open ",
	    "# TYPE scone_cas_connections_total counter\n",
	    "# TYPE scone_cas_connections_rejected_total counter\n",
	    "# TYPE scone_cas_tls_handshake_failures_total counter\n",
	    "# TYPE scone_cas_request_duration_seconds histogram\n",
	    "\nscone_cas_request_duration_seconds_bucket{le=\"0.0005\"} ",
	    "\nscone_cas_request_duration_seconds_bucket{le=\"1\"} ",
	    "\nscone_cas_request_duration_seconds_bucket{le=\"+Inf\"} ",
	    "\nscone_cas_request_duration_seconds_sum ",
	    "\nscone_cas_request_duration_seconds_count ",
	    "# TYPE scone_cas_limit_rejections_total counter\n",
	    "\nscone_cas_limit_rejections_total{reason=\"header\"} ",
	    "\nscone_cas_limit_rejections_total{reason=\"body\"} ",
	    "\nscone_cas_limit_rejections_total{reason=\"rate\"} ",
	    "\nscone_cas_limit_rejections_total{reason=\"timeout\"} ",
	    "\nscone_cas_limit_rejections_total{reason=\"method\"} ",
	};
	struct http_resp *r = malloc(sizeof(*r));
	struct scone_wbuf small;

	assert_non_null(r);
	fetch_metrics(shared.port, r);
	assert_non_null(strstr(r->head, "Content-Type: text/plain; version=0.0.4\r\n"));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(r->body, want[i]))
			fail_msg("metrics text lacks \"%s\":\n%s", want[i], r->body);
	/* The histogram's count equals its +Inf bucket; at least one connection is open (ours). */
	assert_true(metric_in(r->body, "scone_cas_connections_open") >= 1);
	assert_true(metric_in(r->body, "scone_cas_request_duration_seconds_count") > 0);
	assert_true(metric_in(r->body, "scone_cas_request_duration_seconds_count") ==
		    metric_in(r->body, "scone_cas_request_duration_seconds_bucket{le=\"+Inf\"}"));
	assert_true(metric_in(r->body, "scone_cas_request_duration_seconds_bucket{le=\"0.0005\"}") <=
		    metric_in(r->body, "scone_cas_request_duration_seconds_bucket{le=\"1\"}"));
	/* A buffer too small: TOO_LARGE, not a crash. */
	scone_wbuf_init(&small, 100, 0);
	assert_int_equal(cas_server_metrics(shared.srv, &small), SCONE_ERR_TOO_LARGE);
	scone_wbuf_free(&small);
	assert_int_equal(cas_server_metrics(NULL, &small), SCONE_ERR_INVALID);
	free(r);
}

TEST(test_log_line)
{
	char path[160], line[4096];
	struct client *c;
	struct http_resp *r = malloc(sizeof(*r));
	int saved = dup(2), fd;
	FILE *f;
	bool found = false;

	assert_non_null(r);
	snprintf(path, sizeof(path), "%s/log", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	scone_log_set_level(SCONE_LOG_INFO);
	assert_int_equal(dup2(fd, 2), 2);
	c = client_new(shared.port, false);
	assert_int_equal(request(c, "GET /logged/%C3%A9?token=SECRET123 HTTP/1.1\r\nHost: t\r\n\r\n", r),
			 200);
	client_free(c);
	assert_int_equal(dup2(saved, 2), 2);
	scone_log_set_level(SCONE_LOG_WARN);
	close(saved);
	close(fd);
	assert_non_null(f = fopen(path, "r"));
	while (fgets(line, sizeof(line), f)) {
		assert_null(strstr(line, "SECRET123"));
		if (strstr(line, "/logged/%C3%A9") && strstr(line, "\"method\":\"GET\"") &&
		    strstr(line, "\"status\":200") && strstr(line, "\"duration_ms\":") &&
		    strstr(line, "\"peer\":\"127.0.0.1:"))
			found = true;
	}
	fclose(f);
	unlink(path);
	assert_true(found);
	free(r);
}

TEST(test_respond_error)
{
	struct cas_response resp = {0};
	json_t *j;

	/* A zeroed response works too (the body is set up on demand). */
	cas_respond_error(&resp, 409, "CONFLICT", "session %s: \"stale\"\t\\ %d", "a/b", 7);
	assert_int_equal(resp.status, 409);
	assert_string_equal(resp.content_type, "application/json");
	assert_int_equal(resp.body.data[resp.body.size - 1], '\n');
	j = json_loadb((const char *)resp.body.data, resp.body.size, 0, NULL);
	assert_non_null(j);
	assert_string_equal(jstr(j, "error"), "session a/b: \"stale\"\t\\ 7");
	assert_string_equal(jstr(j, "code"), "CONFLICT");
	json_decref(j);
	/* Replacing a body; invalid UTF-8 is made ASCII instead of dropped. */
	cas_respond_error(&resp, 400, "INVALID", "name \xff\xfe");
	j = json_loadb((const char *)resp.body.data, resp.body.size, 0, NULL);
	assert_non_null(j);
	assert_string_equal(jstr(j, "error"), "name %FF%FE");
	json_decref(j);
	scone_wbuf_free(&resp.body);
}

/* ---- construction errors and stopping ---- */

TEST(test_new_errors)
{
	struct cas_server_opts o;
	struct cas_server *srv = (struct cas_server *)1;
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	default_opts(&o, NULL);
	o.ssl_ctx = NULL;
	assert_int_equal(cas_server_new(&o, &srv), SCONE_ERR_INVALID);
	assert_null(srv);
	default_opts(&o, NULL);
	o.timeout_sec = -1;
	assert_int_equal(cas_server_new(&o, &srv), SCONE_ERR_INVALID);
	default_opts(&o, NULL);
	o.workers = 100000;
	assert_int_equal(cas_server_new(&o, &srv), SCONE_ERR_INVALID);
	/* A port someone holds without SO_REUSEPORT. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	default_opts(&o, NULL);
	o.port = ntohs(a.sin_port);
	assert_int_not_equal(cas_server_new(&o, &srv), SCONE_ERR_OK);
	assert_non_null(strstr(scone_err_detail(), "bind"));
	assert_null(srv);
	close(fd);
	/* TLS context from missing files. */
	assert_null(cas_server_tls_ctx("/nonexistent/cas.crt", srv_key));
	assert_non_null(strstr(scone_err_detail(), "/nonexistent/cas.crt"));
	assert_null(cas_server_tls_ctx(srv_crt, cli_key));
	assert_non_null(strstr(scone_err_detail(), cli_key));
}

TEST(test_stop_before_run)
{
	struct harness h;
	struct cas_server_opts o;
	double t0;

	default_opts(&o, &h);
	o.workers = 0; /* one per CPU */
	memset(&h, 0, sizeof(h));
	assert_ok(cas_server_new(&o, &h.srv));
	cas_server_stop(h.srv);
	t0 = now_s();
	assert_ok(cas_server_run(h.srv));
	assert_true(now_s() - t0 < 1.0);
	assert_int_equal(cas_server_run(h.srv), SCONE_ERR_INVALID);
	cas_server_free(h.srv);
	/* Never run at all. */
	assert_ok(cas_server_new(&o, &h.srv));
	cas_server_free(h.srv);
}

static struct cas_server *signalled;

static void on_usr1(int sig)
{
	(void)sig;
	cas_server_stop(signalled);
}

static atomic_int inits, finis;

static enum scone_err count_init(void *ctx, int worker)
{
	(void)ctx;
	assert_true(worker >= 0 && worker < 2);
	atomic_fetch_add(&inits, 1);
	return SCONE_ERR_OK;
}

static void count_fini(void *ctx, int worker)
{
	(void)ctx;
	(void)worker;
	atomic_fetch_add(&finis, 1);
}

struct slow_call {
	uint16_t port;
	int status;
	struct http_resp r;
};

static void *slow_request(void *arg)
{
	struct slow_call *s = arg;
	struct client *c = client_new(s->port, false);

	s->status = request(c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", &s->r);
	client_free(c);
	return NULL;
}

TEST(test_graceful_stop)
{
	struct harness h;
	struct cas_server_opts o;
	struct sigaction sa = {.sa_handler = on_usr1}, old;
	struct slow_call *s = malloc(sizeof(*s));
	struct client *idle;
	struct http_resp *r = malloc(sizeof(*r));
	pthread_t t;
	double t0;

	assert_non_null(s);
	assert_non_null(r);
	default_opts(&o, &h);
	o.timeout_sec = 5;
	o.worker_init = count_init;
	o.worker_fini = count_fini;
	start(&h, &o);
	idle = client_new(h.port, false);
	assert_int_equal(request(idle, "GET /idle HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	s->port = h.port;
	assert_int_equal(pthread_create(&t, NULL, slow_request, s), 0);
	sleep_ms(100); /* the slow request is in its handler now */
	signalled = h.srv;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	t0 = now_s();
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(pthread_join(h.thread, NULL), 0);
	assert_ok(h.run_err);
	/* run returned soon, after the in-flight request got its answer. */
	assert_true(now_s() - t0 < 2.0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(s->status, 200);
	/* The idle keep-alive connection was closed, and no new one is accepted. */
	assert_true(client_closed(idle));
	client_free(idle);
	{
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(h.port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
		close(fd);
	}
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
	signalled = NULL;
	assert_int_equal(atomic_load(&inits), 2);
	assert_int_equal(atomic_load(&finis), 2);
	cas_server_free(h.srv);
	free(s);
	free(r);
}

/* ---- the slow lane ---- */

static bool lane_is_slow(void *ctx, const struct cas_request *req)
{
	(void)ctx;
	return strncmp(req->path, "/lane/", 6) == 0;
}

struct lane_call {
	uint16_t port;
	const char *path;
	int status;
	int worker;
	double secs;
	char retry_after[16];
};

static void *lane_request(void *arg)
{
	struct lane_call *l = arg;
	struct client *c = client_new(l->port, false);
	struct http_resp *r = malloc(sizeof(*r));
	char raw[128];
	double t0 = now_s();

	assert_non_null(r);
	snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", l->path);
	l->status = request(c, raw, r);
	l->secs = now_s() - t0;
	if (l->status == 200) {
		json_t *j = body_json(r);
		l->worker = (int)json_integer_value(json_object_get(j, "worker"));
		json_decref(j);
	} else if (l->status > 0) {
		const char *ra = find_header(r->head, "Retry-After");
		snprintf(l->retry_after, sizeof(l->retry_after), "%.*s", ra ? (int)strcspn(ra, "\r") : 0,
			 ra ? ra : "");
	}
	client_free(c);
	free(r);
	return NULL;
}

/*
 * A slow request runs on the slow lane's thread: the single event loop
 * answers other requests at once meanwhile; the slow one is answered later
 * on its own connection, by a handler that saw the slow lane's worker index.
 */
TEST(test_slow_lane)
{
	struct harness h;
	struct cas_server_opts o;
	struct lane_call slow = {.path = "/lane/sleep"};
	struct http_resp *r = malloc(sizeof(*r));
	struct client *c;
	pthread_t t;
	double worst = 0;

	assert_non_null(r);
	default_opts(&o, &h);
	o.workers = 1;
	o.is_slow = lane_is_slow;
	o.slow_workers = 1;
	o.worker_init = count_init;
	o.worker_fini = count_fini;
	atomic_store(&inits, 0);
	atomic_store(&finis, 0);
	start(&h, &o);
	slow.port = h.port;
	assert_int_equal(pthread_create(&t, NULL, lane_request, &slow), 0);
	sleep_ms(100); /* the slow request is in its handler now */
	c = client_new(h.port, false);
	for (int i = 0; i < 20; i++) {
		double t0 = now_s(), d;
		assert_int_equal(request(c, "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
		d = now_s() - t0;
		worst = d > worst ? d : worst;
		sleep_ms(10);
	}
	assert_true(worst < 0.1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(slow.status, 200);
	assert_int_equal(slow.worker, 1); /* workers + 0 */
	assert_true(slow.secs >= 0.5);
	/* The same connection goes on after a slow answer (keep-alive). */
	assert_int_equal(request(c, "GET /lane/quick HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	assert_int_equal(request(c, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n", r), 200);
	client_free(c);
	assert_true(metric(h.srv, "scone_cas_slow_calls") == 0);
	stop(&h);
	assert_int_equal(atomic_load(&inits), 2); /* one loop, one slow-lane thread */
	assert_int_equal(atomic_load(&finis), 2);
	free(r);
}

/*
 * Clients that go away while their request is in the slow lane, and a queue
 * that is full: nothing is answered to nobody (ASan watches the requests
 * evhttp would otherwise have freed), the extra request gets 503 BUSY with
 * Retry-After, and a stop with calls in flight drops them cleanly.
 */
TEST(test_slow_lane_gone_and_full)
{
	struct harness h;
	struct cas_server_opts o;
	struct lane_call calls[3];
	pthread_t t[3];
	struct http_resp *r = malloc(sizeof(*r));

	assert_non_null(r);
	default_opts(&o, &h);
	o.workers = 1;
	o.is_slow = lane_is_slow;
	o.slow_queue = 1;
	start(&h, &o);
	/* Gone: sent, then the connection closed at once (the handler still runs). */
	for (int i = 0; i < 3; i++) {
		struct client *c = client_new(h.port, false);
		assert_true(client_send(c, "GET /lane/sleep HTTP/1.1\r\nHost: t\r\n\r\n", 38));
		sleep_ms(20);
		client_free(c);
	}
	for (int i = 0; i < 60 && metric(h.srv, "scone_cas_slow_calls") > 0; i++)
		sleep_ms(50);
	assert_true(metric(h.srv, "scone_cas_slow_calls") == 0);
	/* Full: one runs, one waits, the third is refused at once. */
	for (int i = 0; i < 3; i++) {
		calls[i] = (struct lane_call){.port = h.port, .path = "/lane/sleep"};
		assert_int_equal(pthread_create(&t[i], NULL, lane_request, &calls[i]), 0);
		sleep_ms(100);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(calls[0].status, 200);
	assert_int_equal(calls[1].status, 200);
	assert_int_equal(calls[2].status, 503);
	assert_true(calls[2].secs < 0.3);
	assert_string_equal(calls[2].retry_after, "5");
	/* Stop with one running and one queued: both dropped, the clients see the connection close. */
	calls[0] = (struct lane_call){.port = h.port, .path = "/lane/sleep"};
	calls[1] = (struct lane_call){.port = h.port, .path = "/lane/sleep"};
	assert_int_equal(pthread_create(&t[0], NULL, lane_request, &calls[0]), 0);
	sleep_ms(100);
	assert_int_equal(pthread_create(&t[1], NULL, lane_request, &calls[1]), 0);
	sleep_ms(100);
	stop(&h);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_true(calls[0].status == 200 || calls[0].status == -1);
	assert_true(calls[1].status == 200 || calls[1].status == -1);
	free(r);
}

static enum scone_err failing_init(void *ctx, int worker)
{
	(void)ctx;
	return worker == 1 ? scone_err_set(SCONE_ERR_IO, "store did not open") : SCONE_ERR_OK;
}

TEST(test_worker_init_failure)
{
	struct harness h;
	struct cas_server_opts o;

	default_opts(&o, &h);
	o.worker_init = failing_init;
	memset(&h, 0, sizeof(h));
	assert_ok(cas_server_new(&o, &h.srv));
	assert_int_equal(cas_server_run(h.srv), SCONE_ERR_IO);
	cas_server_free(h.srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_respond_error),    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_peer_key),	     cmocka_unit_test(test_keepalive_and_http10),
	    cmocka_unit_test(test_header_too_large), cmocka_unit_test(test_body_too_large),
	    cmocka_unit_test(test_slow_client),	     cmocka_unit_test(test_rate_limit),
	    cmocka_unit_test(test_worker_tick),	     cmocka_unit_test(test_connection_limit),
	    cmocka_unit_test(test_pending_budget),   cmocka_unit_test(test_bad_method),
	    cmocka_unit_test(test_bad_path),	     cmocka_unit_test(test_bad_path_logged),
	    cmocka_unit_test(test_framing),	     cmocka_unit_test(test_garbage_instead_of_tls),
	    cmocka_unit_test(test_metrics_text),     cmocka_unit_test(test_log_line),
	    cmocka_unit_test(test_new_errors),	     cmocka_unit_test(test_stop_before_run),
	    cmocka_unit_test(test_graceful_stop),    cmocka_unit_test(test_worker_init_failure),
	    cmocka_unit_test(test_slow_lane),	     cmocka_unit_test(test_slow_lane_gone_and_full),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
