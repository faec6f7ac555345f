/* test_tls.c - identities, key hashes, fingerprints, addresses and HTTP response parsing (src/lib/tls.c). */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include "lib/tls.h"

static char tmpdir[] = "/tmp/scone-tls.XXXXXX";

static void path_of(char *out, const char *name)
{
	snprintf(out, 256, "%s/%s", tmpdir, name);
}

static void test_identity_roundtrip(void **state)
{
	struct scone_identity a, b, c;
	char key[256], crt[256], key2[256], crt2[256];
	uint8_t spki_a[32], spki_b[32], cert_a[32], cert_c[32];
	struct stat st;

	(void)state;
	path_of(key, "k.pem");
	path_of(crt, "c.pem");
	path_of(key2, "k2.pem");
	path_of(crt2, "c2.pem");
	assert_ok(scone_identity_new("scone-test", 30, &a));
	assert_ok(scone_identity_save(&a, key, crt));
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_ok(scone_identity_load(key, crt, &b));
	assert_ok(scone_spki_sha256(a.cert, spki_a));
	assert_ok(scone_spki_sha256(b.cert, spki_b));
	assert_memory_equal(spki_a, spki_b, 32);
	assert_ok(scone_cert_sha256(a.cert, cert_a));
	assert_memory_not_equal(spki_a, cert_a, 32);

	/* A certificate that does not belong to the key is refused. */
	assert_ok(scone_identity_new("other", 30, &c));
	assert_ok(scone_cert_sha256(c.cert, cert_c));
	assert_memory_not_equal(cert_a, cert_c, 32);
	assert_ok(scone_identity_save(&c, key2, crt2));
	struct scone_identity bad;
	assert_int_equal(scone_identity_load(key, crt2, &bad), SCONE_ERR_INVALID);
	assert_int_equal(scone_identity_load(key, "/nonexistent/x", &bad), SCONE_ERR_NOT_FOUND);
	assert_int_equal(scone_identity_load(crt, crt, &bad), SCONE_ERR_MALFORMED);
	scone_identity_free(&a);
	scone_identity_free(&b);
	scone_identity_free(&c);
	unlink(key);
	unlink(crt);
	unlink(key2);
	unlink(crt2);
}

static void test_fingerprint_parse(void **state)
{
	uint8_t out[32], want[32];
	const char *hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

	(void)state;
	for (int i = 0; i < 32; i++)
		want[i] = (uint8_t)((i % 16) * 0x11);
	assert_ok(scone_fingerprint_parse(hex, out));
	assert_memory_equal(out, want, 32);
	assert_ok(scone_fingerprint_parse(
	    "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", out));
	assert_ok(scone_fingerprint_parse(
	    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:"
	    "AA:BB:CC:DD:EE:FF",
	    out));
	assert_memory_equal(out, want, 32);
	assert_int_equal(scone_fingerprint_parse("0011", out), SCONE_ERR_INVALID);
	assert_int_equal(
	    scone_fingerprint_parse("zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", out),
	    SCONE_ERR_INVALID);
	assert_int_equal(scone_fingerprint_parse(
			     "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00", out),
			 SCONE_ERR_INVALID);
}

static void test_hostport(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	assert_ok(scone_hostport_parse("127.0.0.1:9000", 8081, host, sizeof(host), &port));
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9000);
	assert_ok(scone_hostport_parse("cas.example", 8081, host, sizeof(host), &port));
	assert_string_equal(host, "cas.example");
	assert_int_equal(port, 8081);
	assert_ok(scone_hostport_parse("[::1]:443", 8081, host, sizeof(host), &port));
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_ok(scone_hostport_parse("https://h:1/", 8081, host, sizeof(host), &port));
	assert_string_equal(host, "h");
	assert_int_equal(port, 1);
	assert_int_equal(scone_hostport_parse("h:0", 1, host, sizeof(host), &port), SCONE_ERR_INVALID);
	assert_int_equal(scone_hostport_parse("h:70000", 1, host, sizeof(host), &port), SCONE_ERR_INVALID);
	assert_int_equal(scone_hostport_parse("h:12x", 1, host, sizeof(host), &port), SCONE_ERR_INVALID);
	assert_int_equal(scone_hostport_parse(":80", 1, host, sizeof(host), &port), SCONE_ERR_INVALID);
	assert_int_equal(scone_hostport_parse("[::1", 1, host, sizeof(host), &port), SCONE_ERR_INVALID);
}

static void test_http_parse(void **state)
{
	const char *ok =
	    "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}trailing";
	const char *noclen = "HTTP/1.0 404 Not Found\r\n\r\nbody";
	const char *short_body = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
	const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
	const char *bad_status = "HTTP/1.1 2x0 OK\r\n\r\n";
	const char *no_end = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n";
	const char *bad_clen = "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n";
	size_t off, len;
	int status;

	(void)state;
	assert_ok(scone_http_parse_response(ok, strlen(ok), &status, &off, &len));
	assert_int_equal(status, 201);
	assert_int_equal(len, 2);
	assert_memory_equal(ok + off, "{}", 2);
	assert_ok(scone_http_parse_response(noclen, strlen(noclen), &status, &off, &len));
	assert_int_equal(status, 404);
	assert_int_equal(len, 4);
	assert_int_equal(scone_http_parse_response(short_body, strlen(short_body), &status, &off, &len),
			 SCONE_ERR_TRUNCATED);
	assert_int_equal(scone_http_parse_response(chunked, strlen(chunked), &status, &off, &len),
			 SCONE_ERR_MALFORMED);
	assert_int_equal(scone_http_parse_response(bad_status, strlen(bad_status), &status, &off, &len),
			 SCONE_ERR_MALFORMED);
	assert_int_equal(scone_http_parse_response(no_end, strlen(no_end), &status, &off, &len),
			 SCONE_ERR_MALFORMED);
	assert_int_equal(scone_http_parse_response(bad_clen, strlen(bad_clen), &status, &off, &len),
			 SCONE_ERR_MALFORMED);
}

static void test_https_refuses_unpinned(void **state)
{
	struct scone_https_opts o = {.host = "127.0.0.1", .port = 9};
	struct scone_https_response r;
	uint8_t pin[32] = {0};

	(void)state;
	/* No pin: refused before any connection is attempted. */
	assert_int_equal(scone_https_request(&o, "GET", "/", NULL, NULL, 0, &r), SCONE_ERR_INVALID);
	/* Nothing listens on the discard port of loopback: a network error, not a hang. */
	o.pin_sha256 = pin;
	o.timeout_ms = 2000;
	assert_int_equal(scone_https_request(&o, "GET", "/", NULL, NULL, 0, &r), SCONE_ERR_NETWORK);
}

/* ---- signals during a request (programs under the runtime get many) ---- */

struct slow_server {
	int listen_fd;
	struct scone_identity id;
};

/* A test server's identity (named cn) and listening socket on 127.0.0.1; o is pinned to it. */
static void server_listen(struct slow_server *sv, const char *cn, struct scone_https_opts *o, uint8_t pin[32])
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);

	assert_ok(scone_identity_new(cn, 1, &sv->id));
	assert_ok(scone_cert_sha256(sv->id.cert, pin));
	sv->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(sv->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sv->listen_fd, 1), 0);
	assert_int_equal(getsockname(sv->listen_fd, (struct sockaddr *)&a, &al), 0);
	o->port = ntohs(a.sin_port);
	o->pin_sha256 = pin;
}

/* Accept one connection on sv's socket and handshake; *ok says whether the handshake succeeded. */
static SSL *server_accept(struct slow_server *sv, bool *ok)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL *ssl;

	SSL_CTX_use_certificate(ctx, sv->id.cert);
	SSL_CTX_use_PrivateKey(ctx, sv->id.key);
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* (ssl holds it) */
	SSL_set_fd(ssl, accept(sv->listen_fd, NULL, NULL));
	*ok = SSL_accept(ssl) == 1;
	return ssl;
}

/* The server thread t is done: join it, close the listening socket, free the identity. */
static void server_end(struct slow_server *sv, pthread_t t)
{
	pthread_join(t, NULL);
	close(sv->listen_fd);
	scone_identity_free(&sv->id);
}

static void server_close(SSL *ssl)
{
	int fd = SSL_get_fd(ssl);

	SSL_free(ssl);
	close(fd);
}

/* Accept one connection, read the request head, wait 300 ms, answer 200 "ok". */
static void *slow_serve(void *arg)
{
	char buf[4096];
	size_t got = 0;
	bool ok;
	SSL *ssl = server_accept(arg, &ok);

	if (ok) {
		while (got < sizeof(buf) - 1 && !memmem(buf, got, "\r\n\r\n", 4)) {
			int n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got));
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		usleep(300 * 1000);
		SSL_write(ssl, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", 60);
		SSL_shutdown(ssl);
	}
	server_close(ssl);
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* A request under a SIGALRM every 500 us (no SA_RESTART): every poll is interrupted, none is a timeout. */
static void test_https_survives_signals(void **state)
{
	struct slow_server sv;
	struct sigaction sa = {.sa_handler = on_alarm}, old;
	struct itimerval it = {.it_interval = {0, 500}, .it_value = {0, 500}}, off = {0};
	struct scone_https_opts o = {.host = "127.0.0.1", .timeout_ms = 5000};
	struct scone_https_response r;
	uint8_t pin[32];
	pthread_t t;
	enum scone_err err;

	(void)state;
	server_listen(&sv, "slow", &o, pin);
	/* The server thread is created with SIGALRM blocked: the signals all go to the client. */
	sigset_t alrm;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &alrm, NULL);
	assert_int_equal(pthread_create(&t, NULL, slow_serve, &sv), 0);
	pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	setitimer(ITIMER_REAL, &it, NULL);
	err = scone_https_request(&o, "GET", "/slow", NULL, NULL, 0, &r);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	server_end(&sv, t);
	if (err)
		fail_msg("request under signals: %s: %s", scone_errname(err), scone_err_detail());
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 2);
	scone_https_response_free(&r);
}

/*
 * Accept one connection, finish the handshake, read some of the request,
 * then close it with nothing unread (a FIN, not a reset): the client's
 * next writes meet the reset that its own data provokes, and the write
 * after that fails with EPIPE, the error that raises SIGPIPE.
 */
static void *closing_serve(void *arg)
{
	char buf[16384];
	size_t seen = 0;
	bool ok;
	SSL *ssl = server_accept(arg, &ok);

	if (ok) {
		int n;
		while (seen < (64u << 10) && (n = SSL_read(ssl, buf, sizeof(buf))) > 0)
			seen += (size_t)n;
	}
	/* What arrived meanwhile: unread bytes would make the close a reset. */
	fcntl(SSL_get_fd(ssl), F_SETFL, O_NONBLOCK);
	while (read(SSL_get_fd(ssl), buf, sizeof(buf)) > 0)
		;
	server_close(ssl);
	return NULL;
}

/*
 * A program under the runtime keeps SIGPIPE at its default: CAS closing
 * the connection while a request is written is an error, never the
 * program's death (it dies here without the MSG_NOSIGNAL of tls.c's socket BIO).
 */
static void test_https_peer_close_is_no_sigpipe(void **state)
{
	struct slow_server sv;
	struct scone_https_opts o = {.host = "127.0.0.1", .timeout_ms = 5000};
	struct scone_https_response r;
	size_t body_len = 8u << 20;
	uint8_t pin[32], *body = calloc(1, body_len);
	void (*old)(int) = signal(SIGPIPE, SIG_DFL);
	pthread_t t;

	(void)state;
	assert_non_null(body);
	server_listen(&sv, "closing", &o, pin);
	assert_int_equal(pthread_create(&t, NULL, closing_serve, &sv), 0);
	assert_int_not_equal(
	    scone_https_request(&o, "POST", "/big", "application/octet-stream", body, body_len, &r),
	    SCONE_ERR_OK);
	server_end(&sv, t);
	signal(SIGPIPE, old);
	free(body);
}

/* Accept one connection, read the request, close without an answer (close_notify, then the socket). */
static void *answerless_serve(void *arg)
{
	char buf[4096];
	bool ok;
	SSL *ssl = server_accept(arg, &ok);

	if (ok && SSL_read(ssl, buf, sizeof(buf)) > 0)
		(void)SSL_shutdown(ssl);
	server_close(ssl);
	return NULL;
}

/*
 * A server that goes away after the request and before its answer (CAS
 * restarted, killed) is a network error, which the runtime's tag reports
 * retry, not a malformed answer, which they would not.
 */
static void test_https_no_answer_is_network_error(void **state)
{
	struct slow_server sv;
	struct scone_https_opts o = {.host = "127.0.0.1", .timeout_ms = 5000};
	struct scone_https_response r;
	uint8_t pin[32];
	pthread_t t;
	enum scone_err err;

	(void)state;
	server_listen(&sv, "answerless", &o, pin);
	assert_int_equal(pthread_create(&t, NULL, answerless_serve, &sv), 0);
	err = scone_https_request(&o, "POST", "/v1/volumes/tag", "application/json", "{}", 2, &r);
	server_end(&sv, t);
	if (err != SCONE_ERR_NETWORK)
		fail_msg("want NETWORK, got %s: %s", scone_errname(err), scone_err_detail());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identity_roundtrip),
	    cmocka_unit_test(test_fingerprint_parse),
	    cmocka_unit_test(test_hostport),
	    cmocka_unit_test(test_http_parse),
	    cmocka_unit_test(test_https_refuses_unpinned),
	    cmocka_unit_test(test_https_survives_signals),
	    cmocka_unit_test(test_https_peer_close_is_no_sigpipe),
	    cmocka_unit_test(test_https_no_answer_is_network_error),
	};
	int rc;

	if (!mkdtemp(tmpdir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(tmpdir);
	return rc;
}
