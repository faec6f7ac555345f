/*
 * tls.h - TLS identities (a P-256 key with a self-signed certificate, as
 * the CAS, an owner and a runtime each hold one), the hashes by which scone
 * names them, and a small blocking HTTPS client that pins its server by
 * certificate fingerprint.
 *
 * Uses only libssl/libcrypto, so the runtime can link it.
 */
#ifndef SCONE_TLS_H
#define SCONE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "buf.h"
#include "err.h"

/*
 * Set e with the message fmt and OpenSSL's reason for its last failure
 * ("what: reason"), and empty OpenSSL's error queue. Returns e. The one
 * place that turns OpenSSL's errors into the project's.
 */
enum scone_err scone_ssl_err(enum scone_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct scone_identity {
	EVP_PKEY *key;
	X509 *cert;
};

/* Fresh ECDSA P-256 key and a self-signed certificate for common_name, valid days. */
SCONE_MUST_CHECK enum scone_err scone_identity_new(const char *common_name, int days,
						   struct scone_identity *out);
/* Write key (PKCS#8 PEM, mode 0600) and certificate (PEM, 0644); each file replaced atomically. */
SCONE_MUST_CHECK enum scone_err scone_identity_save(const struct scone_identity *id, const char *key_path,
						    const char *cert_path);
/* Read both and check that the certificate belongs to the key. */
SCONE_MUST_CHECK enum scone_err scone_identity_load(const char *key_path, const char *cert_path,
						    struct scone_identity *out);
void scone_identity_free(struct scone_identity *id);
/*
 * The key (PKCS#8 PEM) and the certificate (PEM), one after the other, into
 * out (a secret wbuf: it holds the private key), and back (the certificate
 * must belong to the key).
 */
SCONE_MUST_CHECK enum scone_err scone_identity_to_pem(const struct scone_identity *id,
						      struct scone_wbuf *out);
SCONE_MUST_CHECK enum scone_err scone_identity_from_pem(const char *pem, size_t len,
							struct scone_identity *out);

/* PEM password callback that refuses (OpenSSL's default would prompt on the tty). */
int scone_pem_no_passphrase(char *buf, int size, int rwflag, void *u);

/* SHA-256 of the DER SubjectPublicKeyInfo: how policies name a key. */
SCONE_MUST_CHECK enum scone_err scone_spki_sha256(const X509 *cert, uint8_t out[32]);
/* SHA-256 of the DER certificate: the fingerprint `scone cas trust` pins. */
SCONE_MUST_CHECK enum scone_err scone_cert_sha256(const X509 *cert, uint8_t out[32]);
/* Parse a 64-hex fingerprint (':' separators and a "sha256:" prefix allowed). */
SCONE_MUST_CHECK enum scone_err scone_fingerprint_parse(const char *text, uint8_t out[32]);

/* Split "host:port" (or "[v6]:port"; port defaults to default_port). */
SCONE_MUST_CHECK enum scone_err scone_hostport_parse(const char *addr, uint16_t default_port, char *host,
						     size_t host_size, uint16_t *port);

#define SCONE_HTTPS_MAX_RESPONSE (16u * 1024 * 1024)

struct scone_https_opts {
	const char *host;
	uint16_t port;
	const uint8_t *pin_sha256;	     /* server certificate fingerprint; required */
	const struct scone_identity *client; /* client certificate, or NULL */
	int timeout_ms;			     /* connect + whole exchange; 0 = 15000 */
};

struct scone_https_response {
	int status;
	char *body; /* NUL-terminated; wiped when freed (it may carry secrets) */
	size_t len;
	uint8_t server_cert_sha256[32];
};

/*
 * One request on a new connection (HTTP/1.1, Connection: close). The server
 * must present the pinned certificate (else UNTRUSTED, before anything is
 * sent). Network and protocol failures are NETWORK with detail. A non-2xx
 * status is not an error here: the caller reads resp->status.
 */
SCONE_MUST_CHECK enum scone_err scone_https_request(const struct scone_https_opts *opts, const char *method,
						    const char *path, const char *content_type,
						    const void *body, size_t body_len,
						    struct scone_https_response *resp);
void scone_https_response_free(struct scone_https_response *resp);

/*
 * A kept-alive connection for a stream of requests to one pinned server
 * (a runtime reporting volume tags): connects at the first request,
 * reconnects when the server has closed an idle connection (checked before
 * a request is sent, so nothing is sent twice) or after a fork (a child
 * never touches its parent's TLS session). Not thread-safe: one user at a
 * time. opts (host, pin, client identity) are copied, except the identity,
 * which must outlive the connection.
 */
struct scone_https_conn;
SCONE_MUST_CHECK enum scone_err scone_https_conn_new(const struct scone_https_opts *opts,
						     struct scone_https_conn **out);
SCONE_MUST_CHECK enum scone_err scone_https_conn_request(struct scone_https_conn *c, const char *method,
							 const char *path, const char *content_type,
							 const void *body, size_t body_len,
							 struct scone_https_response *resp);
/*
 * The same in two steps, for a caller with work to do meanwhile: send one
 * request, later read its answer (one request in flight at a time).
 */
SCONE_MUST_CHECK enum scone_err scone_https_conn_send(struct scone_https_conn *c, const char *method,
						      const char *path, const char *content_type,
						      const void *body, size_t body_len);
SCONE_MUST_CHECK enum scone_err scone_https_conn_recv(struct scone_https_conn *c,
						      struct scone_https_response *resp);
void scone_https_conn_free(struct scone_https_conn *c);
/* The client identity for the next connects (the one it was made with moved; the same key). */
void scone_https_conn_set_client(struct scone_https_conn *c, const struct scone_identity *id);
/* The socket of an open connection, or -1 (a caller closing fds in bulk steps around it). */
int scone_https_conn_fd(const struct scone_https_conn *c);

/*
 * Where a client connection's socket is placed (NULL, the default: where
 * socket() put it). The runtime moves its own connections out of the
 * program's way (to the upper half of the fd limit): a shell's `3>file` or
 * a library's dup2 onto fd 3 must not meet CAS's connection. place returns
 * the fd to use (the one given if it cannot move it).
 */
void scone_tls_set_fd_placer(int (*place)(int fd));

/* Connect and report the server's certificate fingerprint without pinning (for `cas trust`). */
SCONE_MUST_CHECK enum scone_err scone_https_probe(const char *host, uint16_t port, int timeout_ms,
						  uint8_t cert_sha256[32]);

/*
 * Parse an HTTP/1.x response held whole in data (untrusted: fuzzable).
 * Sets status and the body slice; honours Content-Length; chunked transfer
 * encoding is refused (MALFORMED).
 */
SCONE_MUST_CHECK enum scone_err scone_http_parse_response(const char *data, size_t len, int *status,
							  size_t *body_off, size_t *body_len);

#endif
