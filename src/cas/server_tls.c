/*
 * server_tls.c - the CAS's server-side TLS context: TLS 1.2 at least
 * (1.3 preferred: it is the highest version and OpenSSL picks it), ECDHE
 * over X25519 or P-256 only, AEAD ciphers only, no renegotiation, no
 * resumption (no tickets, no session cache: a runtime connects once per
 * start, the CLI once per command, and issuing tickets cost about 15% of
 * the rate of new connections), and client certificates requested but not judged: CAS
 * identifies an owner by the public key the client proved it holds (the
 * handshake's CertificateVerify), not by a CA, so any certificate chain is
 * accepted and no certificate is accepted too.
 */
#include "cas/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

#define TLS12_CIPHERS                                                                                        \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:"         \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256"

static const unsigned char session_id_ctx[] = "scone-cas";

/* Chain verification is not how CAS authenticates clients (see the top). */
static int accept_any_client_cert(int preverify_ok, X509_STORE_CTX *store)
{
	(void)preverify_ok;
	(void)store;
	return 1;
}

/* Record the failed step and OpenSSL's reason as the error detail. */
static SSL_CTX *fail(SSL_CTX *ctx, const char *what, const char *path)
{
	char reason[256] = "no detail";
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	scone_err_set(SCONE_ERR_CRYPTO, "TLS context: %s%s%s: %s", what, path ? " " : "", path ? path : "",
		      reason);
	SSL_CTX_free(ctx);
	return NULL;
}

static bool set_policy(SSL_CTX *ctx)
{
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
				     SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	/* Requests (session documents) and answers (configurations) carry secrets: wipe the record buffers.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Kept so that enabling resumption later cannot lose the client identity. */
	return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 &&
	       SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) == 1 &&
	       SSL_CTX_set1_groups_list(ctx, "X25519:P-256") == 1 &&
	       SSL_CTX_set_session_id_context(ctx, session_id_ctx, sizeof(session_id_ctx) - 1) == 1;
}

SSL_CTX *cas_server_tls_ctx(const char *cert_pem_path, const char *key_pem_path)
{
	SSL_CTX *ctx;

	if (!cert_pem_path || !key_pem_path) {
		scone_err_set(SCONE_ERR_INVALID, "TLS context: certificate and key paths are required");
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return fail(NULL, "SSL_CTX_new", NULL);
	if (!set_policy(ctx))
		return fail(ctx, "protocol, cipher and group settings", NULL);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_pem_path) != 1)
		return fail(ctx, "reading the certificate chain (PEM)", cert_pem_path);
	if (SSL_CTX_use_PrivateKey_file(ctx, key_pem_path, SSL_FILETYPE_PEM) != 1)
		return fail(ctx, "reading the private key (PEM)", key_pem_path);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return fail(ctx, "the private key does not match the certificate", key_pem_path);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_client_cert);
	return ctx;
}
