/*
 * cas_load.c - the TLS load generator behind bench/bench_cas.sh.
 *
 * Fetch mode (default): --clients threads, each looping until the run ends:
 * new TCP connection, full TLS 1.3 handshake (no session resumption), one
 * HTTP/1.1 request with "Connection: close", the whole response read, the
 * status checked, close. A request's latency runs from connect() to the
 * last byte of the response. The first --warmup seconds are not measured;
 * a request counts when it completes inside the --seconds window after it.
 * One line goes to stdout:
 *   rps=<f> p50_ms=<f> p99_ms=<f> ok=<n> errors=<n>
 * errors counts every failed request of the whole run (warm-up included);
 * the first few reasons go to stderr.
 *
 * Create mode (--create-sessions N --template FILE): POST N sessions to
 * --path (default /v1/sessions) over keep-alive connections, the template's
 * top-level "name:" line replaced by "name: <prefix><i>" for i in
 * [--first-index, --first-index + N). 409 (the name exists, e.g. after a
 * retried request) counts as done; 429 and broken connections are retried
 * on a new connection. Prints the same line (rps over the whole run).
 *
 * Update mode (--update --template FILE): client i owns session
 * <prefix><i> (made before, e.g. by create mode with the same prefix and
 * --first-index 0): it reads its hash once (GET), then for the whole run
 * PUTs the template (name line replaced) with "predecessor: <hash>" over a
 * kept-alive connection, taking the next predecessor from each answer. A
 * 200 counts; a failure reconnects and reads the hash again. Prints the
 * same line (rps of acknowledged updates in the measured window).
 *
 * The client presents --client-cert/--client-key, or else a fresh P-256 key
 * and self-signed certificate made at start and shared by all connections,
 * as a runtime keeps its key. The server certificate is checked only
 * against --ca-fingerprint (hex SHA-256 of its DER) when that is given.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/hex.h"

#define MAX_CLIENTS 1024
#define MAX_BODY_FILE ((size_t)4 << 20)
#define MAX_RESPONSE ((size_t)8 << 20)
#define IO_TIMEOUT_SEC 10
#define ERRORS_SHOWN 5
#define CREATE_RETRIES 50

struct opts {
	const char *host;
	uint16_t port;
	const char *method;
	const char *path;
	const char *content_type;
	char *body; /* heap, body_size bytes (+ NUL) */
	size_t body_size;
	int clients;
	double seconds;
	double warmup;
	const char *cert_file;
	const char *key_file;
	bool pin;
	uint8_t fingerprint[SCONE_SHA256_SIZE];
	int expect_status;
	long create_n; /* > 0: create mode */
	bool update;   /* update mode */
	long first_index;
	const char *name_prefix;
	char *tmpl_head; /* template text before the name line */
	char *tmpl_tail; /* template text after the name line */
};

struct load {
	struct opts o;
	SSL_CTX *ctx;
	struct sockaddr_in addr;
	char *request; /* fetch mode: the whole request, built once */
	size_t request_size;
	double t_measure; /* start of the measured window */
	double t_end;
	atomic_long next_index; /* create mode */
	atomic_long exists;
	atomic_int shown;
	atomic_bool stop;	/* a client could not start or gave up: everyone stops */
	struct client *clients; /* update mode: a client's index names its session */
};

struct client {
	pthread_t tid;
	struct load *L;
	uint32_t *lat_us;
	size_t n_lat;
	size_t cap_lat;
	long ok;
	long errors;
	char *buf; /* response bytes */
	size_t buf_cap;
	char *req; /* create mode: request being sent */
	size_t req_cap;
};

/* One connection: socket and TLS. */
struct conn {
	int fd;
	SSL *ssl;
};

struct http_resp {
	int status;
	size_t head_size;    /* bytes up to and including the blank line */
	long content_length; /* -1: none */
	bool chunked;
	bool close;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: cas_load --port P [--host 127.0.0.1] [--method POST] [--path /v1/service/config]\n"
		   "         [--body STRING | --body-file F] [--content-type T] [--clients N] [--seconds S]\n"
		   "         [--warmup S] [--client-cert PEM --client-key PEM] [--ca-fingerprint HEX]\n"
		   "         [--expect-status CODE]\n"
		   "       cas_load --port P --create-sessions N --template FILE [--first-index I]\n"
		   "         [--name-prefix bench-] [--clients N] --client-cert PEM --client-key PEM ...\n"
		   "       cas_load --port P --update --template FILE [--name-prefix bench-] [--clients N]\n"
		   "         [--seconds S] [--warmup S] --client-cert PEM --client-key PEM ...\n");
}

/* Record the first few failure reasons on stderr; every one is counted by the caller. */
static void report_error(struct client *c, enum scone_err err)
{
	const char *d = scone_err_detail();

	c->errors++;
	if (atomic_fetch_add(&c->L->shown, 1) < ERRORS_SHOWN)
		fprintf(stderr, "cas_load: error: %s\n", d[0] ? d : scone_strerror(err));
	scone_err_clear();
}

/* The first OpenSSL error of this thread's queue, as text for a detail message. */
static const char *ssl_reason(char *out, size_t size)
{
	unsigned long e = ERR_peek_last_error();

	if (!e)
		return errno ? strerror(errno) : "connection closed";
	ERR_error_string_n(e, out, size);
	return out;
}

static SCONE_MUST_CHECK enum scone_err read_file(const char *path, size_t max, char **out, size_t *out_size)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t n = 0;
	enum scone_err err = SCONE_ERR_OK;

	if (!f)
		return scone_err_set(SCONE_ERR_IO, "open %s: %s", path, strerror(errno));
	data = malloc(max + 1);
	if (!data) {
		err = scone_err_set(SCONE_ERR_NOMEM, "read %s: out of memory", path);
		goto out;
	}
	n = fread(data, 1, max + 1, f);
	if (ferror(f)) {
		err = scone_err_set(SCONE_ERR_IO, "read %s: %s", path, strerror(errno));
		goto out;
	}
	if (n > max) {
		err = scone_err_set(SCONE_ERR_TOO_LARGE, "%s: larger than %zu bytes", path, max);
		goto out;
	}
	data[n] = '\0';
	*out = data;
	*out_size = n;
	data = NULL;
out:
	free(data);
	fclose(f);
	return err;
}

/* Split the template around its top-level "name:" line. */
static SCONE_MUST_CHECK enum scone_err split_template(struct opts *o, const char *path)
{
	char *text = NULL, *line, *eol = NULL;
	size_t size = 0;

	SCONE_TRY(read_file(path, MAX_BODY_FILE, &text, &size));
	for (line = text; line && *line; line = eol ? eol + 1 : NULL) {
		eol = strchr(line, '\n');
		if (strncmp(line, "name:", 5) == 0)
			break;
	}
	if (!line || !*line) {
		free(text);
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: no top-level 'name:' line to replace", path);
	}
	o->tmpl_tail = strdup(eol ? eol + 1 : "");
	*line = '\0';
	o->tmpl_head = strdup(text);
	free(text);
	if (!o->tmpl_head || !o->tmpl_tail)
		return scone_err_set(SCONE_ERR_NOMEM, "template: out of memory");
	return SCONE_ERR_OK;
}

static SCONE_MUST_CHECK enum scone_err parse_double(const char *name, const char *s, double min, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || !(*out >= min) || *out > 1e6)
		return scone_err_set(SCONE_ERR_INVALID, "--%s %s: expected a number >= %g", name, s, min);
	return SCONE_ERR_OK;
}

static SCONE_MUST_CHECK enum scone_err parse_long(const char *name, const char *s, long min, long max,
						  long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (errno || end == s || *end || *out < min || *out > max)
		return scone_err_set(SCONE_ERR_INVALID, "--%s %s: expected an integer in [%ld, %ld]", name, s,
				     min, max);
	return SCONE_ERR_OK;
}

enum {
	OPT_HOST = 1000,
	OPT_PORT,
	OPT_METHOD,
	OPT_PATH,
	OPT_BODY,
	OPT_BODY_FILE,
	OPT_CONTENT_TYPE,
	OPT_CLIENTS,
	OPT_SECONDS,
	OPT_WARMUP,
	OPT_CERT,
	OPT_KEY,
	OPT_FINGERPRINT,
	OPT_EXPECT,
	OPT_CREATE,
	OPT_TEMPLATE,
	OPT_FIRST,
	OPT_PREFIX,
	OPT_UPDATE,
	OPT_HELP,
};

static const struct option long_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"method", required_argument, NULL, OPT_METHOD},
    {"path", required_argument, NULL, OPT_PATH},
    {"body", required_argument, NULL, OPT_BODY},
    {"body-file", required_argument, NULL, OPT_BODY_FILE},
    {"content-type", required_argument, NULL, OPT_CONTENT_TYPE},
    {"clients", required_argument, NULL, OPT_CLIENTS},
    {"seconds", required_argument, NULL, OPT_SECONDS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"client-cert", required_argument, NULL, OPT_CERT},
    {"client-key", required_argument, NULL, OPT_KEY},
    {"ca-fingerprint", required_argument, NULL, OPT_FINGERPRINT},
    {"expect-status", required_argument, NULL, OPT_EXPECT},
    {"create-sessions", required_argument, NULL, OPT_CREATE},
    {"template", required_argument, NULL, OPT_TEMPLATE},
    {"first-index", required_argument, NULL, OPT_FIRST},
    {"name-prefix", required_argument, NULL, OPT_PREFIX},
    {"update", no_argument, NULL, OPT_UPDATE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static SCONE_MUST_CHECK enum scone_err set_body(struct opts *o, const char *s)
{
	free(o->body);
	o->body = strdup(s);
	o->body_size = strlen(s);
	return o->body ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_NOMEM, "--body: out of memory");
}

/* One option into o; template is kept for later. */
static SCONE_MUST_CHECK enum scone_err parse_opt(struct opts *o, int c, const char *arg, const char **tmpl)
{
	long v;

	switch (c) {
	case OPT_HOST:
		o->host = arg;
		break;
	case OPT_PORT:
		SCONE_TRY(parse_long("port", arg, 1, 65535, &v));
		o->port = (uint16_t)v;
		break;
	case OPT_METHOD:
		o->method = arg;
		break;
	case OPT_PATH:
		o->path = arg;
		break;
	case OPT_BODY:
		return set_body(o, arg);
	case OPT_BODY_FILE:
		free(o->body);
		o->body = NULL;
		return read_file(arg, MAX_BODY_FILE, &o->body, &o->body_size);
	case OPT_CONTENT_TYPE:
		o->content_type = arg;
		break;
	case OPT_CLIENTS:
		SCONE_TRY(parse_long("clients", arg, 1, MAX_CLIENTS, &v));
		o->clients = (int)v;
		break;
	case OPT_SECONDS:
		return parse_double("seconds", arg, 0.01, &o->seconds);
	case OPT_WARMUP:
		return parse_double("warmup", arg, 0, &o->warmup);
	case OPT_CERT:
		o->cert_file = arg;
		break;
	case OPT_KEY:
		o->key_file = arg;
		break;
	case OPT_FINGERPRINT:
		o->pin = true;
		return scone_hex_decode(o->fingerprint, sizeof(o->fingerprint), arg, "--ca-fingerprint");
	case OPT_EXPECT:
		SCONE_TRY(parse_long("expect-status", arg, 100, 599, &v));
		o->expect_status = (int)v;
		break;
	case OPT_CREATE:
		return parse_long("create-sessions", arg, 1, 100000000, &o->create_n);
	case OPT_TEMPLATE:
		*tmpl = arg;
		break;
	case OPT_FIRST:
		return parse_long("first-index", arg, 0, 1000000000, &o->first_index);
	case OPT_PREFIX:
		o->name_prefix = arg;
		break;
	case OPT_UPDATE:
		o->update = true;
		break;
	default:
		return scone_err_set(SCONE_ERR_INVALID, "unknown option (see --help)");
	}
	return SCONE_ERR_OK;
}

static SCONE_MUST_CHECK enum scone_err parse_args(struct opts *o, int argc, char **argv)
{
	const char *tmpl = NULL;
	int c;

	*o = (struct opts){.host = "127.0.0.1",
			   .method = "POST",
			   .clients = 1,
			   .seconds = 5,
			   .warmup = 1,
			   .expect_status = 0,
			   .name_prefix = "bench-"};
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (c == OPT_HELP) {
			usage(stdout);
			exit(0);
		}
		SCONE_TRY(parse_opt(o, c, optarg, &tmpl));
	}
	if (optind != argc)
		return scone_err_set(SCONE_ERR_INVALID, "unexpected argument '%s'", argv[optind]);
	if (!o->port)
		return scone_err_set(SCONE_ERR_INVALID, "--port is required");
	if (!o->cert_file != !o->key_file)
		return scone_err_set(SCONE_ERR_INVALID, "--client-cert and --client-key go together");
	if (o->create_n || o->update) {
		if (!tmpl)
			return scone_err_set(SCONE_ERR_INVALID,
					     "--create-sessions and --update need --template FILE");
		if (!o->path)
			o->path = "/v1/sessions";
		if (!o->content_type)
			o->content_type = "application/yaml";
		return split_template(o, tmpl);
	}
	if (!o->path)
		o->path = "/v1/service/config";
	if (!o->content_type)
		o->content_type = "application/json";
	if (!o->expect_status)
		o->expect_status = 200;
	if (!o->body)
		return set_body(o, "");
	return SCONE_ERR_OK;
}

/* A fresh P-256 key and a self-signed certificate for it, valid one day. */
static SCONE_MUST_CHECK enum scone_err make_identity(EVP_PKEY **key_out, X509 **cert_out)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;

	if (!key || !x)
		goto out;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"cas_load", -1, -1,
					0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key) || !X509_sign(x, key, EVP_sha256()))
		goto out;
	*key_out = key;
	*cert_out = x;
	return SCONE_ERR_OK;
out:
	EVP_PKEY_free(key);
	X509_free(x);
	return scone_err_set(SCONE_ERR_CRYPTO, "make the client key and certificate: %s",
			     ERR_reason_error_string(ERR_peek_last_error()));
}

static SCONE_MUST_CHECK enum scone_err load_identity(SSL_CTX *ctx, const struct opts *o)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	enum scone_err err = SCONE_ERR_OK;

	if (o->cert_file) {
		if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1)
			return scone_err_set(SCONE_ERR_CRYPTO, "load client identity %s / %s: %s",
					     o->cert_file, o->key_file,
					     ERR_reason_error_string(ERR_peek_last_error()));
		return SCONE_ERR_OK;
	}
	SCONE_TRY(make_identity(&key, &cert));
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
		err = scone_err_set(SCONE_ERR_CRYPTO, "install the generated client identity");
	EVP_PKEY_free(key);
	X509_free(cert);
	return err;
}

static SCONE_MUST_CHECK enum scone_err make_ctx(struct load *L)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return scone_err_set(SCONE_ERR_CRYPTO, "SSL_CTX_new failed");
	L->ctx = ctx;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION))
		return scone_err_set(SCONE_ERR_CRYPTO, "cannot require TLS 1.3");
	/* Every connection does a full handshake: no cache, no tickets kept. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return load_identity(ctx, &L->o);
}

static SCONE_MUST_CHECK enum scone_err make_addr(struct load *L)
{
	L->addr.sin_family = AF_INET;
	L->addr.sin_port = htons(L->o.port);
	if (inet_pton(AF_INET, L->o.host, &L->addr.sin_addr) != 1)
		return scone_err_set(SCONE_ERR_INVALID, "--host %s: expected an IPv4 address", L->o.host);
	return SCONE_ERR_OK;
}

/* Request head for body_size bytes; keep_alive selects the Connection header. */
static int format_head(char *out, size_t size, const struct opts *o, size_t body_size, bool keep_alive)
{
	return snprintf(out, size,
			"%s %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: cas_load\r\nContent-Type: %s\r\n"
			"Content-Length: %zu\r\nConnection: %s\r\n\r\n",
			o->method, o->path, o->host, (unsigned)o->port, o->content_type, body_size,
			keep_alive ? "keep-alive" : "close");
}

static SCONE_MUST_CHECK enum scone_err build_fetch_request(struct load *L)
{
	char head[1024];
	int n = format_head(head, sizeof(head), &L->o, L->o.body_size, false);

	if (n < 0 || (size_t)n >= sizeof(head))
		return scone_err_set(SCONE_ERR_TOO_LARGE, "request head longer than %zu bytes", sizeof(head));
	L->request_size = (size_t)n + L->o.body_size;
	L->request = malloc(L->request_size);
	if (!L->request)
		return scone_err_set(SCONE_ERR_NOMEM, "request: out of memory");
	memcpy(L->request, head, (size_t)n);
	memcpy(L->request + n, L->o.body, L->o.body_size);
	return SCONE_ERR_OK;
}

static void conn_close(struct conn *k)
{
	if (k->ssl) {
		SSL_shutdown(k->ssl); /* send close_notify; do not wait for the peer's */
		SSL_free(k->ssl);
	}
	if (k->fd >= 0)
		close(k->fd);
	k->ssl = NULL;
	k->fd = -1;
}

static SCONE_MUST_CHECK enum scone_err check_pin(const struct load *L, SSL *ssl)
{
	X509 *peer = SSL_get1_peer_certificate(ssl);
	unsigned char *der = NULL;
	uint8_t digest[SCONE_SHA256_SIZE];
	int n;
	bool match;

	if (!peer)
		return scone_err_set(SCONE_ERR_UNTRUSTED, "server sent no certificate");
	n = i2d_X509(peer, &der);
	X509_free(peer);
	if (n <= 0)
		return scone_err_set(SCONE_ERR_CRYPTO, "encode the server certificate");
	scone_sha256(der, (size_t)n, digest);
	OPENSSL_free(der);
	match = scone_ct_equal(digest, L->o.fingerprint, sizeof(digest));
	return match ? SCONE_ERR_OK
		     : scone_err_set(SCONE_ERR_UNTRUSTED, "server certificate fingerprint differs");
}

static SCONE_MUST_CHECK enum scone_err conn_socket(const struct load *L, struct conn *k)
{
	struct timeval tv = {.tv_sec = IO_TIMEOUT_SEC};
	int one = 1;

	k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k->fd < 0)
		return scone_err_set(SCONE_ERR_NETWORK, "socket: %s", strerror(errno));
	if (setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(k->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return scone_err_set(SCONE_ERR_NETWORK, "setsockopt: %s", strerror(errno));
	if (connect(k->fd, (const struct sockaddr *)&L->addr, sizeof(L->addr)))
		return scone_err_set(SCONE_ERR_NETWORK, "connect %s:%u: %s", L->o.host, (unsigned)L->o.port,
				     strerror(errno));
	return SCONE_ERR_OK;
}

/* TCP connect plus a full TLS handshake; on failure k is closed. */
static SCONE_MUST_CHECK enum scone_err conn_open(const struct load *L, struct conn *k)
{
	char why[256];
	enum scone_err err;

	k->fd = -1;
	k->ssl = NULL;
	ERR_clear_error();
	errno = 0;
	err = conn_socket(L, k);
	if (err)
		goto out;
	k->ssl = SSL_new(L->ctx);
	if (!k->ssl || SSL_set_fd(k->ssl, k->fd) != 1) {
		err = scone_err_set(SCONE_ERR_CRYPTO, "SSL_new failed");
		goto out;
	}
	if (SSL_connect(k->ssl) != 1) {
		err = scone_err_set(SCONE_ERR_NETWORK, "TLS handshake: %s", ssl_reason(why, sizeof(why)));
		goto out;
	}
	if (L->o.pin)
		err = check_pin(L, k->ssl);
out:
	if (err)
		conn_close(k);
	return err;
}

static SCONE_MUST_CHECK enum scone_err conn_write(struct conn *k, const char *data, size_t size)
{
	char why[256];
	size_t done;

	ERR_clear_error();
	errno = 0;
	if (SSL_write_ex(k->ssl, data, size, &done) != 1 || done != size)
		return scone_err_set(SCONE_ERR_NETWORK, "send request: %s", ssl_reason(why, sizeof(why)));
	return SCONE_ERR_OK;
}

/* Case-insensitive search for header name (with ':') in the head; value or NULL. */
static const char *find_header(const char *head, size_t head_size, const char *name)
{
	size_t nl = strlen(name);
	const char *p = head, *end = head + head_size;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (!eol)
			return NULL;
		if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0) {
			p += nl;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = eol + 1;
	}
	return NULL;
}

static SCONE_MUST_CHECK enum scone_err parse_head(const char *buf, size_t head_size, struct http_resp *r)
{
	const char *v;
	char *end;

	r->head_size = head_size;
	if (head_size < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ')
		return scone_err_set(SCONE_ERR_MALFORMED, "response: not an HTTP/1.x status line");
	r->status = (int)strtol(buf + 9, &end, 10);
	if (end != buf + 12 || r->status < 100 || r->status > 599)
		return scone_err_set(SCONE_ERR_MALFORMED, "response: bad status code");
	r->content_length = -1;
	v = find_header(buf, head_size, "content-length:");
	if (v) {
		errno = 0;
		r->content_length = strtol(v, &end, 10);
		if (errno || end == v || r->content_length < 0 || (size_t)r->content_length > MAX_RESPONSE)
			return scone_err_set(SCONE_ERR_MALFORMED, "response: bad Content-Length");
	}
	v = find_header(buf, head_size, "transfer-encoding:");
	r->chunked = v && strncasecmp(v, "chunked", 7) == 0;
	v = find_header(buf, head_size, "connection:");
	r->close = (v && strncasecmp(v, "close", 5) == 0) || buf[7] == '0';
	return SCONE_ERR_OK;
}

/* 1: the chunked body in p[0..n) is complete; 0: more is needed; -1: malformed. */
static int chunked_done(const char *p, size_t n)
{
	size_t pos = 0;

	for (;;) {
		const char *eol = memchr(p + pos, '\n', n - pos);
		unsigned long size;
		char *end;

		if (!eol)
			return 0;
		size = strtoul(p + pos, &end, 16);
		if (end == p + pos || size > MAX_RESPONSE)
			return -1;
		pos = (size_t)(eol - p) + 1;
		if (size == 0) /* then optional trailers and an empty line */
			return memmem(p + pos - 2, n - pos + 2, "\r\n\r\n", 4) ? 1 : 0;
		if (n - pos < size + 2)
			return 0;
		pos += size + 2;
	}
}

/* Is the response in buf[0..n) complete (head parsed into r once seen)? */
static SCONE_MUST_CHECK enum scone_err resp_complete(const char *buf, size_t n, struct http_resp *r,
						     bool *done)
{
	const char *blank;
	int c;

	*done = false;
	if (!r->head_size) {
		blank = memmem(buf, n, "\r\n\r\n", 4);
		if (!blank)
			return SCONE_ERR_OK;
		SCONE_TRY(parse_head(buf, (size_t)(blank - buf) + 4, r));
	}
	if (r->chunked) {
		c = chunked_done(buf + r->head_size, n - r->head_size);
		if (c < 0)
			return scone_err_set(SCONE_ERR_MALFORMED, "response: bad chunked encoding");
		*done = c == 1;
	} else if (r->content_length >= 0) {
		*done = n - r->head_size >= (size_t)r->content_length;
	}
	return SCONE_ERR_OK; /* neither: the body ends when the server closes */
}

static SCONE_MUST_CHECK enum scone_err grow_buf(struct client *c)
{
	size_t cap = c->buf_cap ? c->buf_cap * 2 : 16384;
	char *p;

	if (c->buf_cap >= MAX_RESPONSE)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "response larger than %zu bytes", MAX_RESPONSE);
	p = realloc(c->buf, cap + 1);
	if (!p)
		return scone_err_set(SCONE_ERR_NOMEM, "response buffer: out of memory");
	c->buf = p;
	c->buf_cap = cap;
	return SCONE_ERR_OK;
}

/* Read one whole response into c->buf (NUL-terminated). */
static SCONE_MUST_CHECK enum scone_err read_response(struct client *c, struct conn *k, struct http_resp *r)
{
	char why[256];
	size_t n = 0, got;
	bool done = false;

	*r = (struct http_resp){0};
	while (!done) {
		if (n == c->buf_cap)
			SCONE_TRY(grow_buf(c));
		ERR_clear_error();
		errno = 0;
		if (SSL_read_ex(k->ssl, c->buf + n, c->buf_cap - n, &got) != 1) {
			int e = SSL_get_error(k->ssl, 0);

			if (e == SSL_ERROR_ZERO_RETURN && r->head_size && !r->chunked &&
			    r->content_length < 0)
				break; /* body delimited by the close */
			return scone_err_set(SCONE_ERR_NETWORK, "read response (%zu bytes in): %s", n,
					     e == SSL_ERROR_ZERO_RETURN ? "closed early"
									: ssl_reason(why, sizeof(why)));
		}
		n += got;
		SCONE_TRY(resp_complete(c->buf, n, r, &done));
	}
	c->buf[n] = '\0';
	return SCONE_ERR_OK;
}

static SCONE_MUST_CHECK enum scone_err check_status(struct client *c, const struct http_resp *r, int expect)
{
	char snippet[161];
	const char *body = c->buf + r->head_size;
	size_t i;

	if (r->status == expect)
		return SCONE_ERR_OK;
	/* The start of the body on one line, for the error message. */
	for (i = 0; i < sizeof(snippet) - 1 && body[i]; i++)
		snippet[i] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
	snippet[i] = '\0';
	return scone_err_set(SCONE_ERR_NETWORK, "status %d (expected %d): %s", r->status, expect, snippet);
}

static SCONE_MUST_CHECK enum scone_err record(struct client *c, double seconds)
{
	uint32_t *p;
	size_t cap;

	if (c->n_lat == c->cap_lat) {
		cap = c->cap_lat ? c->cap_lat * 2 : 4096;
		p = realloc(c->lat_us, cap * sizeof(*p));
		if (!p)
			return scone_err_set(SCONE_ERR_NOMEM, "latency samples: out of memory");
		c->lat_us = p;
		c->cap_lat = cap;
	}
	c->lat_us[c->n_lat++] = (uint32_t)fmin(seconds * 1e6, (double)UINT32_MAX);
	return SCONE_ERR_OK;
}

/* One fetch: connect, handshake, request, response, close. */
static SCONE_MUST_CHECK enum scone_err fetch_once(struct client *c)
{
	struct load *L = c->L;
	struct conn k;
	struct http_resp r;
	enum scone_err err;

	SCONE_TRY(conn_open(L, &k));
	err = conn_write(&k, L->request, L->request_size);
	if (!err)
		err = read_response(c, &k, &r);
	conn_close(&k);
	if (!err)
		err = check_status(c, &r, L->o.expect_status);
	return err;
}

static void *fetch_thread(void *arg)
{
	struct client *c = arg;
	struct load *L = c->L;
	double t0, t1;
	enum scone_err err;

	while ((t0 = now()) < L->t_end && !atomic_load(&L->stop)) {
		err = fetch_once(c);
		t1 = now();
		if (err) {
			report_error(c, err);
			usleep(1000); /* no busy loop against a server that is down */
			continue;
		}
		if (t1 < L->t_measure || t1 > L->t_end)
			continue;
		c->ok++;
		err = record(c, t1 - t0);
		if (err)
			report_error(c, err);
	}
	return NULL;
}

/* Create mode: the request for session index i into c->req. */
static SCONE_MUST_CHECK enum scone_err build_create_request(struct client *c, long i, size_t *size)
{
	const struct opts *o = &c->L->o;
	char name[192];
	size_t head_size = strlen(o->tmpl_head), tail_size = strlen(o->tmpl_tail);
	size_t body_size, need;
	int nn, hn;

	nn = snprintf(name, sizeof(name), "name: %s%ld\n", o->name_prefix, i);
	if (nn < 0 || (size_t)nn >= sizeof(name))
		return scone_err_set(SCONE_ERR_TOO_LARGE, "session name prefix too long");
	body_size = head_size + (size_t)nn + tail_size;
	need = body_size + 1024;
	if (need > c->req_cap) {
		char *p = realloc(c->req, need);

		if (!p)
			return scone_err_set(SCONE_ERR_NOMEM, "request: out of memory");
		c->req = p;
		c->req_cap = need;
	}
	hn = format_head(c->req, c->req_cap - body_size, o, body_size, true);
	if (hn < 0 || (size_t)hn >= c->req_cap - body_size)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "request head too long");
	memcpy(c->req + hn, o->tmpl_head, head_size);
	memcpy(c->req + hn + head_size, name, (size_t)nn);
	memcpy(c->req + hn + head_size + nn, o->tmpl_tail, tail_size);
	*size = (size_t)hn + body_size;
	return SCONE_ERR_OK;
}

/* Send one create request on k (opened if needed); *retry asks for another attempt. */
static SCONE_MUST_CHECK enum scone_err create_once(struct client *c, struct conn *k, long i, bool *retry)
{
	struct load *L = c->L;
	struct http_resp r;
	size_t size = 0;
	enum scone_err err;

	*retry = false;
	SCONE_TRY(build_create_request(c, i, &size));
	if (k->fd < 0) {
		err = conn_open(L, k);
		if (err) {
			*retry = true;
			return err;
		}
	}
	err = conn_write(k, c->req, size);
	if (!err)
		err = read_response(c, k, &r);
	if (err || r.close || r.status == 429)
		conn_close(k);
	if (err) {
		*retry = true;
		return err;
	}
	if (r.status == 429 || r.status == 503) {
		*retry = true;
		return scone_err_set(SCONE_ERR_LIMIT, "status %d for %s%ld: retrying", r.status,
				     L->o.name_prefix, i);
	}
	if (r.status == 409) {
		atomic_fetch_add(&L->exists, 1);
		return SCONE_ERR_OK;
	}
	if (L->o.expect_status)
		return check_status(c, &r, L->o.expect_status);
	if (r.status != 200 && r.status != 201)
		return check_status(c, &r, 201);
	return SCONE_ERR_OK;
}

/*
 * Create session i, retrying on 429 and broken connections with a growing
 * pause. A session that cannot be created after CREATE_RETRIES attempts
 * stops the whole run: the server is down or refuses everything.
 */
static void create_one(struct client *c, struct conn *k, long i)
{
	double t0 = now();
	bool retry = true;
	char last[256];
	enum scone_err err = SCONE_ERR_OK;

	for (int attempt = 0; retry && attempt < CREATE_RETRIES; attempt++) {
		if (attempt)
			usleep(20000u * (unsigned)(attempt < 10 ? attempt : 10));
		err = create_once(c, k, i, &retry);
	}
	if (err) {
		if (retry) {
			snprintf(last, sizeof(last), "%s", scone_err_detail());
			scone_err_set(err, "%s%ld: gave up after %d attempts, last: %s", c->L->o.name_prefix,
				      i, CREATE_RETRIES, last);
			atomic_store(&c->L->stop, true);
		}
		report_error(c, err);
		return;
	}
	c->ok++;
	err = record(c, now() - t0);
	if (err)
		report_error(c, err);
}

static void *create_thread(void *arg)
{
	struct client *c = arg;
	struct load *L = c->L;
	struct conn k = {.fd = -1};
	long i;

	while (!atomic_load(&L->stop) &&
	       (i = atomic_fetch_add(&L->next_index, 1)) < L->o.first_index + L->o.create_n)
		create_one(c, &k, i);
	conn_close(&k);
	return NULL;
}

/* ---------------- update mode ---------------- */

/* A request on k (opened if needed) with this head and body; the response in c->buf and r. */
static SCONE_MUST_CHECK enum scone_err exchange(struct client *c, struct conn *k, const char *method,
						const char *path, const char *body, size_t body_size,
						struct http_resp *r)
{
	const struct opts *o = &c->L->o;
	size_t need = body_size + 1024;
	int hn;

	if (need > c->req_cap) {
		char *p = realloc(c->req, need);
		if (!p)
			return scone_err_set(SCONE_ERR_NOMEM, "request: out of memory");
		c->req = p;
		c->req_cap = need;
	}
	hn = snprintf(
	    c->req, 1024,
	    "%s %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: cas_load\r\nContent-Type: application/yaml\r\n"
	    "Content-Length: %zu\r\nConnection: keep-alive\r\n\r\n",
	    method, path, o->host, (unsigned)o->port, body_size);
	if (hn < 0 || hn >= 1024)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "request head too long");
	if (body_size)
		memcpy(c->req + hn, body, body_size);
	if (k->fd < 0)
		SCONE_TRY(conn_open(c->L, k));
	SCONE_TRY(conn_write(k, c->req, (size_t)hn + body_size));
	SCONE_TRY(read_response(c, k, r));
	if (r->close)
		conn_close(k);
	return SCONE_ERR_OK;
}

/* The "hash" of a JSON answer ({"name": ..., "hash": "<64 hex>", ...}) into hash. */
static SCONE_MUST_CHECK enum scone_err answer_hash(struct client *c, const struct http_resp *r, char hash[65])
{
	const char *p = strstr(c->buf + r->head_size, "\"hash\":\"");

	if (!p || strspn(p + 8, "0123456789abcdef") < 64)
		return scone_err_set(SCONE_ERR_MALFORMED, "no session hash in the answer");
	memcpy(hash, p + 8, 64);
	hash[64] = '\0';
	return SCONE_ERR_OK;
}

static SCONE_MUST_CHECK enum scone_err read_own_hash(struct client *c, struct conn *k, const char *name,
						     char hash[65])
{
	char path[256];
	struct http_resp r;

	snprintf(path, sizeof(path), "/v1/sessions/%s", name);
	SCONE_TRY(exchange(c, k, "GET", path, NULL, 0, &r));
	SCONE_TRY(check_status(c, &r, 200));
	return answer_hash(c, &r, hash);
}

/* One update of name from pred; the new hash into pred. */
static SCONE_MUST_CHECK enum scone_err update_once(struct client *c, struct conn *k, const char *name,
						   char pred[65], char *body, size_t body_cap)
{
	const struct opts *o = &c->L->o;
	char path[256];
	struct http_resp r;
	int n = snprintf(body, body_cap, "%sname: %s\n%spredecessor: %s\n", o->tmpl_head, name, o->tmpl_tail,
			 pred);

	if (n < 0 || (size_t)n >= body_cap)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "session document too long");
	snprintf(path, sizeof(path), "/v1/sessions/%s", name);
	SCONE_TRY(exchange(c, k, "PUT", path, body, (size_t)n, &r));
	SCONE_TRY(check_status(c, &r, 200));
	return answer_hash(c, &r, pred);
}

static void *update_thread(void *arg)
{
	struct client *c = arg;
	struct load *L = c->L;
	struct conn k = {.fd = -1};
	size_t cap = strlen(L->o.tmpl_head) + strlen(L->o.tmpl_tail) + 512;
	char *body = malloc(cap), name[200], pred[65] = "";
	double t0, t1;
	enum scone_err err;

	snprintf(name, sizeof(name), "%s%ld", L->o.name_prefix, (long)(c - c->L->clients));
	while (body && (t0 = now()) < L->t_end && !atomic_load(&L->stop)) {
		err = pred[0] ? SCONE_ERR_OK : read_own_hash(c, &k, name, pred);
		if (!err)
			err = update_once(c, &k, name, pred, body, cap);
		t1 = now();
		if (err) {
			report_error(c, err);
			conn_close(&k);
			pred[0] = '\0';
			usleep(1000);
			continue;
		}
		if (t1 < L->t_measure || t1 > L->t_end)
			continue;
		c->ok++;
		err = record(c, t1 - t0);
		if (err)
			report_error(c, err);
	}
	conn_close(&k);
	free(body);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile p (0..1) of sorted v[0..n), in ms. */
static double percentile_ms(const uint32_t *v, size_t n, double p)
{
	size_t rank;

	if (!n)
		return 0;
	rank = (size_t)ceil(p * (double)n);
	if (rank < 1)
		rank = 1;
	return (double)v[rank - 1] / 1000.0;
}

/* Merge every client's samples and print the result line. */
static SCONE_MUST_CHECK enum scone_err summarize(struct load *L, struct client *cl, double elapsed)
{
	size_t n = 0, pos = 0;
	long ok = 0, errors = 0;
	uint32_t *all;

	for (int i = 0; i < L->o.clients; i++) {
		n += cl[i].n_lat;
		ok += cl[i].ok;
		errors += cl[i].errors;
	}
	all = malloc((n ? n : 1) * sizeof(*all));
	if (!all)
		return scone_err_set(SCONE_ERR_NOMEM, "latency merge: out of memory");
	for (int i = 0; i < L->o.clients; i++) {
		if (cl[i].n_lat)
			memcpy(all + pos, cl[i].lat_us, cl[i].n_lat * sizeof(*all));
		pos += cl[i].n_lat;
	}
	qsort(all, n, sizeof(*all), cmp_u32);
	if (L->o.create_n)
		fprintf(stderr, "cas_load: %ld sessions done (%ld existed already), %ld failed, %.1f s\n", ok,
			atomic_load(&L->exists), errors, elapsed);
	printf("rps=%.1f p50_ms=%.3f p99_ms=%.3f ok=%ld errors=%ld\n", (double)ok / elapsed,
	       percentile_ms(all, n, 0.50), percentile_ms(all, n, 0.99), ok, errors);
	free(all);
	return fflush(stdout) ? scone_err_set(SCONE_ERR_IO, "stdout: %s", strerror(errno)) : SCONE_ERR_OK;
}

static SCONE_MUST_CHECK enum scone_err run(struct load *L)
{
	struct client *cl = calloc((size_t)L->o.clients, sizeof(*cl));
	void *(*fn)(void *) = L->o.create_n ? create_thread : L->o.update ? update_thread : fetch_thread;
	enum scone_err err = SCONE_ERR_OK;
	double t0 = now();
	int started = 0, rc;

	if (!cl)
		return scone_err_set(SCONE_ERR_NOMEM, "clients: out of memory");
	L->clients = cl;
	L->t_measure = t0 + L->o.warmup;
	L->t_end = L->t_measure + L->o.seconds;
	atomic_store(&L->next_index, L->o.first_index);
	for (; started < L->o.clients; started++) {
		cl[started].L = L;
		rc = pthread_create(&cl[started].tid, NULL, fn, &cl[started]);
		if (rc) {
			err = scone_err_set(SCONE_ERR_NOMEM, "start client thread %d: %s", started,
					    strerror(rc));
			atomic_store(&L->stop, true); /* the running ones stop after their request */
			break;
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(cl[i].tid, NULL);
	if (!err)
		err = summarize(L, cl, L->o.create_n ? now() - t0 : L->o.seconds);
	for (int i = 0; i < L->o.clients; i++) {
		free(cl[i].lat_us);
		free(cl[i].buf);
		free(cl[i].req);
	}
	free(cl);
	return err;
}

static void opts_free(struct opts *o)
{
	free(o->body);
	free(o->tmpl_head);
	free(o->tmpl_tail);
}

int main(int argc, char **argv)
{
	struct load L = {0};
	enum scone_err err;

	signal(SIGPIPE, SIG_IGN);
	err = parse_args(&L.o, argc, argv);
	if (!err)
		err = make_addr(&L);
	if (!err)
		err = make_ctx(&L);
	if (!err && !L.o.create_n && !L.o.update)
		err = build_fetch_request(&L);
	if (!err)
		err = run(&L);
	if (err) {
		const char *d = scone_err_detail();

		fprintf(stderr, "cas_load: %s\n", d[0] ? d : scone_strerror(err));
		if (err == SCONE_ERR_INVALID)
			usage(stderr);
	}
	SSL_CTX_free(L.ctx);
	free(L.request);
	opts_free(&L.o);
	return err ? 1 : 0;
}
