/*
 * tls.c - TLS identities, key and certificate hashes, and the blocking
 * pinned HTTPS client used by the CLI (and later the runtime).
 *
 * The client trusts exactly one certificate, named by its SHA-256, so no CA
 * store is consulted: a CAS is pinned the way SSH pins a host key. The pin
 * is checked right after the handshake, before a byte of the request (which
 * may carry a session with explicit secrets) is written.
 */
/*
 * The 1.1.1 API level, for EC_KEY: a P-256 key made through it gets its
 * SubjectPublicKeyInfo from the EC method directly, where OpenSSL 3.0's
 * provider path builds an OSSL_ENCODER (0.7 ms in a fresh process: every
 * runtime start makes one key).
 */
#define OPENSSL_API_COMPAT 0x10101000L
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <stdarg.h>

#include "buf.h"
#include "crypto.h"
#include "hex.h"

enum scone_err scone_ssl_err(enum scone_err e, const char *fmt, ...)
{
	unsigned long code = ERR_peek_last_error();
	char what[256], reason[160] = "";
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(what, sizeof(what), fmt, ap) < 0)
		what[0] = '\0';
	va_end(ap);
	if (code)
		ERR_error_string_n(code, reason, sizeof(reason));
	ERR_clear_error();
	return scone_err_set(e, "%s%s%s", what, reason[0] ? ": " : "", reason);
}

static enum scone_err ssl_fail(const char *what)
{
	return scone_ssl_err(SCONE_ERR_CRYPTO, "%s failed", what);
}

static enum scone_err add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return ssl_fail("certificate extension");
	if (!X509_add_ext(cert, ext, -1)) {
		X509_EXTENSION_free(ext);
		return ssl_fail("certificate extension");
	}
	X509_EXTENSION_free(ext);
	return SCONE_ERR_OK;
}

/* A fresh P-256 key (NULL on failure). */
static EVP_PKEY *p256_key(void)
{
	EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	EVP_PKEY *k = EVP_PKEY_new();

	if (!ec || !k || EC_KEY_generate_key(ec) != 1 || EVP_PKEY_assign_EC_KEY(k, ec) != 1) {
		EC_KEY_free(ec);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

enum scone_err scone_identity_new(const char *common_name, int days, struct scone_identity *out)
{
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	X509_NAME *name;
	enum scone_err err = SCONE_ERR_CRYPTO;

	memset(out, 0, sizeof(*out));
	out->key = p256_key();
	out->cert = X509_new();
	if (!out->key || !out->cert) {
		err = ssl_fail("key generation");
		goto out;
	}
	SCONE_TRY(scone_random(serial, sizeof(serial)));
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(out->cert)) ||
	    !X509_set_version(out->cert, 2) || !X509_gmtime_adj(X509_getm_notBefore(out->cert), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(out->cert), (long)days * 86400) ||
	    !X509_set_pubkey(out->cert, out->key)) {
		err = ssl_fail("certificate");
		goto out;
	}
	name = X509_get_subject_name(out->cert);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1,
					0) ||
	    !X509_set_issuer_name(out->cert, name)) {
		err = ssl_fail("certificate name");
		goto out;
	}
	if ((err = add_ext(out->cert, NID_basic_constraints, "critical,CA:FALSE")) ||
	    (err = add_ext(out->cert, NID_key_usage, "critical,digitalSignature")) ||
	    (err = add_ext(out->cert, NID_ext_key_usage, "serverAuth,clientAuth")) ||
	    (err = add_ext(out->cert, NID_subject_key_identifier, "hash")))
		goto out;
	if (strchr(common_name, '.') || strcmp(common_name, "localhost") == 0) {
		char san[300];
		snprintf(san, sizeof(san), "DNS:%s", common_name);
		if ((err = add_ext(out->cert, NID_subject_alt_name, san)))
			goto out;
	}
	if (!X509_sign(out->cert, out->key, EVP_sha256())) {
		err = ssl_fail("certificate signing");
		goto out;
	}
	err = SCONE_ERR_OK;
out:
	BN_free(bn);
	if (err)
		scone_identity_free(out);
	return err;
}

void scone_identity_free(struct scone_identity *id)
{
	EVP_PKEY_free(id->key);
	X509_free(id->cert);
	id->key = NULL;
	id->cert = NULL;
}

/* Write via a temporary file and rename, so a crash leaves the old file or the new one. */
static enum scone_err write_pem(const char *path, mode_t mode, const struct scone_identity *id, bool key)
{
	char tmp[4096];
	FILE *f;
	int fd, ok;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", tmp, strerror(errno));
	(void)fchmod(fd, mode);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return scone_err_set(SCONE_ERR_NOMEM, "fdopen");
	}
	ok = key ? PEM_write_PrivateKey(f, id->key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, id->cert);
	ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return scone_err_set(SCONE_ERR_IO, "%s: cannot write", path);
	}
	return SCONE_ERR_OK;
}

enum scone_err scone_identity_save(const struct scone_identity *id, const char *key_path,
				   const char *cert_path)
{
	SCONE_TRY(write_pem(key_path, 0600, id, true));
	return write_pem(cert_path, 0644, id, false);
}

enum scone_err scone_identity_load(const char *key_path, const char *cert_path, struct scone_identity *out)
{
	FILE *f;

	memset(out, 0, sizeof(*out));
	f = fopen(key_path, "re");
	if (!f)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", key_path, strerror(errno));
	out->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!out->key) {
		ERR_clear_error();
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: not a PEM private key", key_path);
	}
	f = fopen(cert_path, "re");
	if (!f) {
		int e = errno;
		scone_identity_free(out);
		return scone_err_set(scone_err_from_errno(e), "%s: %s", cert_path, strerror(e));
	}
	out->cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!out->cert) {
		ERR_clear_error();
		scone_identity_free(out);
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: not a PEM certificate", cert_path);
	}
	if (X509_check_private_key(out->cert, out->key) != 1) {
		ERR_clear_error();
		scone_identity_free(out);
		return scone_err_set(SCONE_ERR_INVALID, "%s does not belong to the key %s", cert_path,
				     key_path);
	}
	return SCONE_ERR_OK;
}

enum scone_err scone_identity_to_pem(const struct scone_identity *id, struct scone_wbuf *out)
{
	BIO *b = BIO_new(BIO_s_secmem());
	enum scone_err err = SCONE_ERR_OK;
	char *p;
	long n;

	if (!b)
		return scone_err_set(SCONE_ERR_NOMEM, "identity PEM");
	if (PEM_write_bio_PrivateKey(b, id->key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(b, id->cert) != 1)
		err = scone_err_set(SCONE_ERR_CRYPTO, "identity PEM: cannot encode");
	if (!err && (n = BIO_get_mem_data(b, &p)) > 0)
		err = scone_wbuf_put(out, p, (size_t)n);
	ERR_clear_error();
	BIO_free(b);
	return err;
}

enum scone_err scone_identity_from_pem(const char *pem, size_t len, struct scone_identity *out)
{
	BIO *b;

	memset(out, 0, sizeof(*out));
	if (len > INT_MAX || !(b = BIO_new_mem_buf(pem, (int)len)))
		return scone_err_set(SCONE_ERR_NOMEM, "identity PEM");
	out->key = PEM_read_bio_PrivateKey(b, NULL, scone_pem_no_passphrase, NULL);
	if (out->key)
		out->cert = PEM_read_bio_X509(b, NULL, scone_pem_no_passphrase, NULL);
	BIO_free(b);
	ERR_clear_error();
	if (!out->key || !out->cert || X509_check_private_key(out->cert, out->key) != 1) {
		ERR_clear_error();
		scone_identity_free(out);
		return scone_err_set(SCONE_ERR_MALFORMED, "identity PEM: not a key and its certificate");
	}
	return SCONE_ERR_OK;
}

int scone_pem_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

enum scone_err scone_spki_sha256(const X509 *cert, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(X509_get0_pubkey(cert), &der);

	if (n <= 0)
		return ssl_fail("public key encoding");
	scone_sha256(der, (size_t)n, out);
	OPENSSL_free(der);
	return SCONE_ERR_OK;
}

enum scone_err scone_cert_sha256(const X509 *cert, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_X509(cert, &der);

	if (n <= 0)
		return ssl_fail("certificate encoding");
	scone_sha256(der, (size_t)n, out);
	OPENSSL_free(der);
	return SCONE_ERR_OK;
}

enum scone_err scone_fingerprint_parse(const char *text, uint8_t out[32])
{
	char clean[65];
	size_t n = 0;

	if (strncasecmp(text, "sha256:", 7) == 0)
		text += 7;
	for (; *text; text++) {
		if (*text == ':')
			continue;
		if (n == 64)
			return scone_err_set(SCONE_ERR_INVALID, "fingerprint: more than 64 hex digits");
		clean[n++] = *text;
	}
	clean[n] = '\0';
	if (n != 64 || scone_hex_decode(out, 32, clean, "fingerprint") != SCONE_ERR_OK)
		return scone_err_set(SCONE_ERR_INVALID, "fingerprint: expected 64 hex digits (SHA-256)");
	return SCONE_ERR_OK;
}

enum scone_err scone_hostport_parse(const char *addr, uint16_t default_port, char *host, size_t host_size,
				    uint16_t *port)
{
	const char *colon, *h = addr;
	size_t hlen;
	char *end;
	long p;

	if (strncmp(addr, "https://", 8) == 0)
		h = addr + 8;
	if (*h == '[') {
		const char *close = strchr(h, ']');
		if (!close)
			return scone_err_set(SCONE_ERR_INVALID, "%s: missing ']'", addr);
		hlen = (size_t)(close - h - 1);
		h++;
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			return scone_err_set(SCONE_ERR_INVALID, "%s: expected ':' after ']'", addr);
	} else {
		colon = strrchr(h, ':');
		hlen = colon ? (size_t)(colon - h) : strlen(h);
	}
	if (hlen == 0 || hlen >= host_size)
		return scone_err_set(SCONE_ERR_INVALID, "%s: bad host", addr);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = default_port;
	if (colon) {
		errno = 0;
		p = strtol(colon + 1, &end, 10);
		if (errno || end == colon + 1 || (*end && strcmp(end, "/") != 0) || p < 1 || p > 65535)
			return scone_err_set(SCONE_ERR_INVALID, "%s: bad port", addr);
		*port = (uint16_t)p;
	}
	return SCONE_ERR_OK;
}

/* ---- client ---- */

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

static int (*g_fd_placer)(int fd);

void scone_tls_set_fd_placer(int (*place)(int fd))
{
	g_fd_placer = place;
}

static enum scone_err tcp_connect(const char *host, uint16_t port, const struct timespec *deadline, int *out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
	char service[8];
	int rc, fd = -1, last = 0;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(host, service, &hints, &res);
	if (rc)
		return scone_err_set(SCONE_ERR_NETWORK, "%s: %s", host, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (g_fd_placer)
			fd = g_fd_placer(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			last = errno;
			close(fd);
			fd = -1;
			continue;
		}
		pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
		do /* a signal is not a timeout */
			rc = poll(&pfd, 1, (int)(ms_left(deadline) > 0 ? ms_left(deadline) : 0));
		while (rc < 0 && errno == EINTR);
		if (rc == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
			/*
			 * A large request's head and body go out as separate TLS
			 * records: do not let Nagle hold the second.
			 */
			int one = 1;
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			break;
		}
		last = rc == 0 ? ETIMEDOUT : soerr ? soerr : errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return scone_err_set(SCONE_ERR_NETWORK, "cannot connect to %s:%u: %s", host, port,
				     strerror(last));
	*out = fd;
	return SCONE_ERR_OK;
}

/* Wait until the socket is ready for what SSL asked for, or the deadline passes. */
static enum scone_err ssl_wait(SSL *ssl, int rc, const struct timespec *deadline, const char *what)
{
	int e = SSL_get_error(ssl, rc);
	struct pollfd pfd = {.fd = SSL_get_fd(ssl)};
	long left;

	if (e == SSL_ERROR_WANT_READ)
		pfd.events = POLLIN;
	else if (e == SSL_ERROR_WANT_WRITE)
		pfd.events = POLLOUT;
	else {
		if (!ERR_peek_error())
			return scone_err_set(SCONE_ERR_NETWORK, "TLS %s failed: connection closed", what);
		return scone_ssl_err(SCONE_ERR_NETWORK, "TLS %s failed", what);
	}
	/* A signal (programs under the runtime get many: PostgreSQL's, SIGALRM timers) is not a timeout. */
	for (;;) {
		int n;
		left = ms_left(deadline);
		if (left <= 0)
			return scone_err_set(SCONE_ERR_NETWORK, "TLS %s: timed out", what);
		n = poll(&pfd, 1, (int)left);
		if (n == 1)
			return SCONE_ERR_OK;
		if (n < 0 && errno != EINTR)
			return scone_err_set(SCONE_ERR_NETWORK, "TLS %s: poll: %s", what, strerror(errno));
	}
}

static void set_deadline(struct timespec *d, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, d);
	d->tv_sec += ms / 1000;
	d->tv_nsec += (long)(ms % 1000) * 1000000;
	if (d->tv_nsec >= 1000000000) {
		d->tv_sec++;
		d->tv_nsec -= 1000000000;
	}
}

struct conn {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	struct timespec deadline;
};

/*
 * The connection's socket BIO. The runtime talks to CAS from inside
 * arbitrary programs, most of which leave SIGPIPE at its default: a write
 * on a connection CAS has closed must fail with EPIPE, not kill the
 * program. OpenSSL's socket BIO writes with write(2), which raises
 * SIGPIPE; this one sends with MSG_NOSIGNAL, so no signal is ever raised
 * and no signal mask has to change around an OpenSSL call (that took four
 * system calls per call, sixteen per tag report). Every write OpenSSL makes
 * on the connection (handshake, records, alerts and key updates during a
 * read, close_notify) goes through it. The fd stays the caller's to close.
 */
struct nosig {
	int fd;
	bool eof;
};

static int nosig_write(BIO *b, const char *buf, int len)
{
	struct nosig *n = BIO_get_data(b);
	ssize_t r = send(n->fd, buf, (size_t)len, MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)r;
}

static int nosig_read(BIO *b, char *buf, int len)
{
	struct nosig *n = BIO_get_data(b);
	ssize_t r = recv(n->fd, buf, (size_t)len, 0);

	BIO_clear_retry_flags(b);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	else if (r == 0)
		n->eof = true; /* BIO_CTRL_EOF: OpenSSL tells a truncating peer from a closing one */
	return (int)r;
}

static long nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct nosig *n = BIO_get_data(b);

	(void)num;
	switch (cmd) {
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = n->fd;
		return n->fd;
	case BIO_CTRL_EOF:
		return n->eof;
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int nosig_destroy(BIO *b)
{
	free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static void nosig_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
				     "scone socket (MSG_NOSIGNAL)");

	if (m && (BIO_meth_set_write(m, nosig_write) != 1 || BIO_meth_set_read(m, nosig_read) != 1 ||
		  BIO_meth_set_ctrl(m, nosig_ctrl) != 1 || BIO_meth_set_destroy(m, nosig_destroy) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	nosig_method = m; /* made once, kept for the process's life */
}

/* ssl reads and writes fd through a MSG_NOSIGNAL BIO (fd stays the caller's). */
static bool ssl_set_nosig_fd(SSL *ssl, int fd)
{
	struct nosig *n;
	BIO *b;

	pthread_once(&nosig_once, nosig_method_make);
	if (!nosig_method || !(n = calloc(1, sizeof(*n))))
		return false;
	if (!(b = BIO_new(nosig_method))) {
		free(n);
		return false;
	}
	n->fd = fd;
	BIO_set_data(b, n);
	BIO_set_init(b, 1);
	SSL_set_bio(ssl, b, b);
	return true;
}

static void conn_close(struct conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	SSL_CTX_free(c->ctx);
	c->ssl = NULL;
	c->ctx = NULL;
	c->fd = -1;
}

static enum scone_err conn_open(struct conn *c, const char *host, uint16_t port,
				const struct scone_identity *client, int timeout_ms, uint8_t cert_sha256[32])
{
	X509 *peer;
	int rc;

	c->fd = -1;
	c->ssl = NULL;
	set_deadline(&c->deadline, timeout_ms ? timeout_ms : 15000);
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx)
		return ssl_fail("TLS context");
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	/* Set here, not taken from openssl.cnf: the runtime's OpenSSL reads no configuration. */
	SSL_CTX_set_security_level(c->ctx, 2);
	/*
	 * Plaintext is cleansed once the caller has it, and record buffers go
	 * back to the allocator (which wipes them in the runtime) once read:
	 * a kept-alive connection (the runtime's, alive from the
	 * configuration to exit) does not hold the last answer's plaintext.
	 */
	SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
#ifdef SSL_OP_CLEANSE_PLAINTEXT
	SSL_CTX_set_options(c->ctx, SSL_OP_CLEANSE_PLAINTEXT);
#endif
	/*
	 * Whole reads: an answer of two records (CAS's head and body) in one
	 * recv where header-then-body reads made four (on a commit's path).
	 */
	SSL_CTX_set_read_ahead(c->ctx, 1);
	/* Trust is the pin checked below, not a CA store. */
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL);
	if (client && (SSL_CTX_use_certificate(c->ctx, client->cert) != 1 ||
		       SSL_CTX_use_PrivateKey(c->ctx, client->key) != 1)) {
		conn_close(c);
		return ssl_fail("client certificate");
	}
	enum scone_err err = tcp_connect(host, port, &c->deadline, &c->fd);
	if (err) {
		conn_close(c);
		return err;
	}
	c->ssl = SSL_new(c->ctx);
	if (!c->ssl || !ssl_set_nosig_fd(c->ssl, c->fd)) {
		conn_close(c);
		return ssl_fail("TLS session");
	}
	SSL_set_tlsext_host_name(c->ssl, host);
	while ((rc = SSL_connect(c->ssl)) != 1) {
		err = ssl_wait(c->ssl, rc, &c->deadline, "handshake");
		if (err) {
			conn_close(c);
			return err;
		}
	}
	peer = SSL_get1_peer_certificate(c->ssl);
	if (!peer) {
		conn_close(c);
		return scone_err_set(SCONE_ERR_NETWORK, "server presented no certificate");
	}
	rc = scone_cert_sha256(peer, cert_sha256);
	X509_free(peer);
	if (rc) {
		conn_close(c);
		return (enum scone_err)rc;
	}
	return SCONE_ERR_OK;
}

static enum scone_err conn_write(struct conn *c, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		size_t done = 0;
		int rc = SSL_write_ex(c->ssl, p, len, &done);

		if (rc == 1) {
			p += done;
			len -= done;
			continue;
		}
		SCONE_TRY(ssl_wait(c->ssl, rc, &c->deadline, "write"));
	}
	return SCONE_ERR_OK;
}

static const char *find_header(const char *p, const char *end, const char *name, size_t *vlen);
static enum scone_err send_request(struct conn *c, const struct scone_https_opts *o, bool keep_alive,
				   const char *method, const char *path, const char *content_type,
				   const void *body, size_t body_len);

static bool head_has(const char *data, size_t len, const char *name, const char *value)
{
	const char *end = memmem(data, len, "\r\n\r\n", 4);
	size_t vlen;
	const char *v = end ? find_header(data, end + 2, name, &vlen) : NULL;

	return v && (!value || (vlen == strlen(value) && strncasecmp(v, value, vlen) == 0));
}

/*
 * Read one response: up to the end of its body by Content-Length, or to the
 * end of the connection when it has none. *reusable says whether another
 * request may follow on this connection.
 */
static enum scone_err conn_read_response(struct conn *c, struct scone_wbuf *out, bool *reusable)
{
	uint8_t buf[16384];
	size_t off, len;
	int status;

	*reusable = false;
	for (;;) {
		size_t got = 0;
		int rc = SSL_read_ex(c->ssl, buf, sizeof(buf), &got);

		if (rc == 1) {
			enum scone_err err = scone_wbuf_put(out, buf, got);
			scone_wipe(buf, got);
			if (err)
				return scone_err_set(err, "response larger than %u bytes",
						     SCONE_HTTPS_MAX_RESPONSE);
			if (memmem(out->data, out->size, "\r\n\r\n", 4) &&
			    head_has((const char *)out->data, out->size, "Content-Length", NULL) &&
			    scone_http_parse_response((const char *)out->data, out->size, &status, &off,
						      &len) == SCONE_ERR_OK) {
				*reusable =
				    !head_has((const char *)out->data, out->size, "Connection", "close");
				scone_err_clear();
				return SCONE_ERR_OK;
			}
			continue;
		}
		int e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) ||
		    (e == SSL_ERROR_SSL &&
		     ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
			ERR_clear_error();
			/*
			 * Closed before a whole head: the server went away (a restart,
			 * a reset), a network error its callers may retry, not a
			 * malformed answer.
			 */
			if (!out->size || !memmem(out->data, out->size, "\r\n\r\n", 4))
				return scone_err_set(SCONE_ERR_NETWORK,
						     "the server closed the connection before its answer "
						     "(%zu bytes of it)",
						     out->size);
			return SCONE_ERR_OK;
		}
		SCONE_TRY(ssl_wait(c->ssl, rc, &c->deadline, "read"));
	}
}

/* Send one request on c and read its response into resp; *reusable as in conn_read_response. */
static enum scone_err receive(struct conn *c, struct scone_https_response *resp, bool *reusable);

static enum scone_err exchange(struct conn *c, const struct scone_https_opts *o, bool keep_alive,
			       const char *method, const char *path, const char *content_type,
			       const void *body, size_t body_len, struct scone_https_response *resp,
			       bool *reusable)
{
	enum scone_err err;

	*reusable = false;
	err = send_request(c, o, keep_alive, method, path, content_type, body, body_len);
	return err ? err : receive(c, resp, reusable);
}

/* Read and parse one response on c. */
static enum scone_err receive(struct conn *c, struct scone_https_response *resp, bool *reusable)
{
	struct scone_wbuf raw;
	size_t off = 0, len = 0;
	enum scone_err err;

	*reusable = false;
	scone_wbuf_init(&raw, SCONE_HTTPS_MAX_RESPONSE + 65536, 1);
	err = conn_read_response(c, &raw, reusable);
	if (!err)
		err = scone_http_parse_response((const char *)raw.data, raw.size, &resp->status, &off, &len);
	if (!err) {
		resp->body = malloc(len + 1);
		if (!resp->body)
			err = scone_err_set(SCONE_ERR_NOMEM, "response body");
	}
	if (!err) {
		memcpy(resp->body, raw.data + off, len);
		resp->body[len] = '\0';
		resp->len = len;
	}
	scone_wbuf_free(&raw);
	return err;
}

struct scone_https_conn {
	struct scone_https_opts opts;
	char host[256];
	uint8_t pin[32];
	struct conn c;
	bool open;
	bool pending; /* a request sent, its answer not read yet */
	unsigned gen; /* fork_gen when opened */
};

/*
 * Forks seen by this process: a forked child must not use its parent's TLS
 * session (it is the parent's). Counted by an atfork handler, not by pid,
 * so that a vfork child (the parent's memory, no handlers run) may finish
 * what its parent started on the connection.
 */
static unsigned fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void forked(void)
{
	fork_gen++;
}

static void watch_forks(void)
{
	(void)pthread_atfork(NULL, NULL, forked);
}

enum scone_err scone_https_conn_new(const struct scone_https_opts *o, struct scone_https_conn **out)
{
	struct scone_https_conn *k;

	if (!o->pin_sha256 || strlen(o->host) >= sizeof(k->host))
		return scone_err_set(SCONE_ERR_INVALID, "HTTPS connection: no pin, or host too long");
	pthread_once(&fork_once, watch_forks);
	k = calloc(1, sizeof(*k));
	if (!k)
		return scone_err_set(SCONE_ERR_NOMEM, "HTTPS connection");
	k->opts = *o;
	snprintf(k->host, sizeof(k->host), "%s", o->host);
	memcpy(k->pin, o->pin_sha256, 32);
	k->opts.host = k->host;
	k->opts.pin_sha256 = k->pin;
	k->c.fd = -1;
	*out = k;
	return SCONE_ERR_OK;
}

int scone_https_conn_fd(const struct scone_https_conn *k)
{
	return k && k->open ? k->c.fd : -1;
}

/* Forget the connection; in a forked child without a word on the wire (it is the parent's). */
static void conn_drop(struct scone_https_conn *k)
{
	if (!k->open)
		return;
	if (k->gen != fork_gen) {
		SSL_free(k->c.ssl); /* no close_notify: the parent still uses this TLS session */
		close(k->c.fd);
		SSL_CTX_free(k->c.ctx);
	} else {
		conn_close(&k->c);
	}
	k->open = false;
}

void scone_https_conn_free(struct scone_https_conn *k)
{
	if (!k)
		return;
	conn_drop(k);
	free(k);
}

void scone_https_conn_set_client(struct scone_https_conn *k, const struct scone_identity *id)
{
	if (k)
		k->opts.client = id;
}

/* An idle keep-alive connection the server has closed is readable (EOF). */
static bool conn_stale(const struct scone_https_conn *k)
{
	struct pollfd pfd = {.fd = k->c.fd, .events = POLLIN};
	int n;

	if (k->gen != fork_gen)
		return true;
	while ((n = poll(&pfd, 1, 0)) < 0 && errno == EINTR)
		;
	return n != 0;
}

enum scone_err scone_https_conn_send(struct scone_https_conn *k, const char *method, const char *path,
				     const char *content_type, const void *body, size_t body_len)
{
	uint8_t cert[32];
	enum scone_err err;
	int ms = k->opts.timeout_ms ? k->opts.timeout_ms : 15000;

	if (k->pending && k->gen == fork_gen)
		return scone_err_set(SCONE_ERR_INVALID,
				     "%s:%u: the previous request still waits for its answer", k->host,
				     k->opts.port);
	k->pending = false;
	if (k->open && conn_stale(k))
		conn_drop(k);
	if (!k->open) {
		SCONE_TRY(conn_open(&k->c, k->host, k->opts.port, k->opts.client, ms, cert));
		if (!scone_ct_equal(cert, k->pin, 32)) {
			conn_close(&k->c);
			return scone_err_set(SCONE_ERR_UNTRUSTED,
					     "%s:%u presented a certificate that is not the pinned one",
					     k->host, k->opts.port);
		}
		k->open = true;
		k->gen = fork_gen;
	}
	set_deadline(&k->c.deadline, ms);
	err = send_request(&k->c, &k->opts, true, method, path, content_type, body, body_len);
	if (err)
		conn_drop(k);
	else
		k->pending = true;
	return err;
}

enum scone_err scone_https_conn_recv(struct scone_https_conn *k, struct scone_https_response *resp)
{
	bool reusable = false;
	enum scone_err err;
	int ms = k->opts.timeout_ms ? k->opts.timeout_ms : 15000;

	memset(resp, 0, sizeof(*resp));
	if (!k->pending || !k->open || k->gen != fork_gen)
		return scone_err_set(SCONE_ERR_INVALID, "%s:%u: no request waits for an answer", k->host,
				     k->opts.port);
	k->pending = false;
	memcpy(resp->server_cert_sha256, k->pin, 32);
	set_deadline(&k->c.deadline, ms);
	err = receive(&k->c, resp, &reusable);
	if (err || !reusable)
		conn_drop(k);
	return err;
}

enum scone_err scone_https_conn_request(struct scone_https_conn *k, const char *method, const char *path,
					const char *content_type, const void *body, size_t body_len,
					struct scone_https_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	SCONE_TRY(scone_https_conn_send(k, method, path, content_type, body, body_len));
	return scone_https_conn_recv(k, resp);
}

enum scone_err scone_https_probe(const char *host, uint16_t port, int timeout_ms, uint8_t cert_sha256[32])
{
	struct conn c;

	SCONE_TRY(conn_open(&c, host, port, NULL, timeout_ms, cert_sha256));
	conn_close(&c);
	return SCONE_ERR_OK;
}

static enum scone_err send_request(struct conn *c, const struct scone_https_opts *o, bool keep_alive,
				   const char *method, const char *path, const char *content_type,
				   const void *body, size_t body_len)
{
	char head[4096]; /* the head, and a small body after it */
	int n;

	n = snprintf(head, sizeof(head),
		     "%s %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: scone\r\nAccept: application/json\r\n"
		     "Connection: %s\r\nContent-Length: %zu\r\n%s%s%s\r\n",
		     method, path, o->host, o->port, keep_alive ? "keep-alive" : "close", body_len,
		     content_type ? "Content-Type: " : "", content_type ? content_type : "",
		     content_type ? "\r\n" : "");
	if (n < 0 || n >= (int)sizeof(head))
		return scone_err_set(SCONE_ERR_TOO_LARGE, "request path too long");
	if (body_len && body_len <= sizeof(head) - (size_t)n) {
		/*
		 * One TLS record, one send: the server reads the whole request
		 * at once (a tag report is a few hundred bytes; each record
		 * cost CAS a wakeup on the commit's path). The copy may hold
		 * a secret: wiped.
		 */
		enum scone_err err;
		memcpy(head + n, body, body_len);
		err = conn_write(c, head, (size_t)n + body_len);
		scone_wipe(head, sizeof(head));
		return err;
	}
	SCONE_TRY(conn_write(c, head, (size_t)n));
	if (body_len)
		SCONE_TRY(conn_write(c, body, body_len));
	return SCONE_ERR_OK;
}

enum scone_err scone_https_request(const struct scone_https_opts *o, const char *method, const char *path,
				   const char *content_type, const void *body, size_t body_len,
				   struct scone_https_response *resp)
{
	struct conn c;
	bool reusable;
	enum scone_err err;

	memset(resp, 0, sizeof(*resp));
	if (!o->pin_sha256)
		return scone_err_set(SCONE_ERR_INVALID, "no pinned CAS fingerprint (run `scone cas trust`)");
	SCONE_TRY(conn_open(&c, o->host, o->port, o->client, o->timeout_ms, resp->server_cert_sha256));
	if (!scone_ct_equal(resp->server_cert_sha256, o->pin_sha256, 32)) {
		char got[65];
		conn_close(&c);
		scone_hex_encode(got, sizeof(got), resp->server_cert_sha256, 32);
		return scone_err_set(
		    SCONE_ERR_UNTRUSTED,
		    "%s:%u presented certificate %s, which is not the pinned one; refusing to talk to it",
		    o->host, o->port, got);
	}
	err = exchange(&c, o, false, method, path, content_type, body, body_len, resp, &reusable);
	conn_close(&c);
	return err;
}

void scone_https_response_free(struct scone_https_response *resp)
{
	if (resp->body) {
		scone_wipe(resp->body, resp->len);
		free(resp->body);
	}
	resp->body = NULL;
	resp->len = 0;
}

/* Value of header name in the head [p, end), or NULL. */
static const char *find_header(const char *p, const char *end, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		if ((size_t)(line_end - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			while (v < line_end && (*v == ' ' || *v == '\t'))
				v++;
			const char *ve = line_end;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		p = eol ? eol + 1 : end;
	}
	return NULL;
}

enum scone_err scone_http_parse_response(const char *data, size_t len, int *status, size_t *body_off,
					 size_t *body_len)
{
	const char *head_end = NULL, *v;
	size_t vlen, i, hlen;
	unsigned long long cl = 0;

	for (i = 0; i + 3 < len; i++) {
		if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n') {
			head_end = data + i + 2;
			*body_off = i + 4;
			break;
		}
	}
	if (!head_end)
		return scone_err_set(SCONE_ERR_MALFORMED, "HTTP response: no end of headers in %zu bytes",
				     len);
	hlen = (size_t)(head_end - data);
	if (hlen < 12 || memcmp(data, "HTTP/1.", 7) != 0 || (data[7] != '0' && data[7] != '1') ||
	    data[8] != ' ')
		return scone_err_set(SCONE_ERR_MALFORMED, "HTTP response: bad status line");
	if (data[9] < '1' || data[9] > '5' || data[10] < '0' || data[10] > '9' || data[11] < '0' ||
	    data[11] > '9')
		return scone_err_set(SCONE_ERR_MALFORMED, "HTTP response: bad status code");
	*status = (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0');
	if (memchr(data, '\0', hlen))
		return scone_err_set(SCONE_ERR_MALFORMED, "HTTP response: NUL in headers");
	v = find_header(data, head_end, "Transfer-Encoding", &vlen);
	if (v && !(vlen == 8 && strncasecmp(v, "identity", 8) == 0))
		return scone_err_set(SCONE_ERR_MALFORMED, "HTTP response: transfer encoding not supported");
	*body_len = len - *body_off;
	v = find_header(data, head_end, "Content-Length", &vlen);
	if (v) {
		if (vlen == 0 || vlen > 15)
			return scone_err_set(SCONE_ERR_MALFORMED, "HTTP response: bad Content-Length");
		for (i = 0; i < vlen; i++) {
			if (v[i] < '0' || v[i] > '9')
				return scone_err_set(SCONE_ERR_MALFORMED,
						     "HTTP response: bad Content-Length");
			cl = cl * 10 + (unsigned)(v[i] - '0');
		}
		if (cl > *body_len)
			return scone_err_set(SCONE_ERR_TRUNCATED,
					     "HTTP response: body shorter than Content-Length (%zu < %llu)",
					     *body_len, cl);
		*body_len = (size_t)cl;
	}
	return SCONE_ERR_OK;
}
