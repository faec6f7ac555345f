/*
 * netshield.c - the network shield's rules at run time (netshield.h): one
 * TLS context per configured server and client, built once at start from
 * the parsed configuration, and the lookups the socket interposers make.
 *
 * TLS: servers speak TLS 1.3 only, with their identity (the session's
 * certificate, or an ephemeral one made at start) and, with _CLIENT_AUTH,
 * require a client certificate from those CAs. Clients speak TLS 1.2 or
 * 1.3 (a standard server may not offer 1.3), check the server's
 * certificate against _SERVER_AUTH and its name against _SERVER_DNS_NAME
 * (or the destination's host) unless _SERVER_AUTH is "disabled". No session
 * tickets: a connection's keys never outlive it in another process.
 */
#include "runtime/netshield.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/log.h"
#include "lib/tls.h"
#include "runtime/netshield_conf.h"
#include "runtime/rt.h"

#define MAX_ADDRS 16

struct ns_srv {
	const struct ns_server *conf;
	SSL_CTX *ctx;
	char what[160];
};

struct ns_cli {
	const struct ns_client *conf;
	SSL_CTX *ctx;
	struct sockaddr_storage addrs[MAX_ADDRS]; /* the destination's addresses (TCP) */
	size_t addr_count;
	char what[300];
};

static struct {
	struct ns_config *conf;
	struct ns_srv *srv;
	struct ns_cli *cli;
	bool on;
} g;

bool scone_netshield_on(void)
{
	return __atomic_load_n(&g.on, __ATOMIC_ACQUIRE);
}

bool scone_netshield_is_var(const char *entry)
{
	char name[128];
	size_t n = strcspn(entry, "=");

	if (n >= sizeof(name))
		return false;
	memcpy(name, entry, n);
	name[n] = '\0';
	return ns_is_setting(name);
}

static const char *action_name(enum ns_action a)
{
	return a == NS_PROTECT ? "protected" : a == NS_REFUSE ? "refuse" : "unprotected";
}

static void endpoint_text(const struct ns_endpoint *e, char *out, size_t size)
{
	if (e->is_unix)
		snprintf(out, size, "unix:%s", e->path);
	else if (e->host)
		snprintf(out, size, "TCP:%s:%u", e->host, e->port);
	else
		snprintf(out, size, "TCP:%u", e->port);
}

/* ---- identities and CAs from PEM text ---- */

static enum scone_err load_identity(SSL_CTX *ctx, const char *pem, const char *var)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *key = NULL;
	X509 *x;
	size_t certs = 0;
	enum scone_err err = SCONE_ERR_OK;

	if (!b)
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	/* key and certificates in any order: read every PEM block */
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *data = NULL;
		long len = 0;
		if (PEM_read_bio(b, &name, &header, &data, &len) != 1)
			break;
		const unsigned char *p = data;
		if (strcmp(name, "CERTIFICATE") == 0) {
			x = d2i_X509(NULL, &p, len);
			if (!x || (certs == 0 ? SSL_CTX_use_certificate(ctx, x) != 1
					      : SSL_CTX_add1_chain_cert(ctx, x) != 1))
				err =
				    scone_err_set(SCONE_ERR_INVALID, "%s: a certificate cannot be used", var);
			X509_free(x);
			certs++;
		} else if (strstr(name, "PRIVATE KEY") && !key) {
			key = d2i_AutoPrivateKey(NULL, &p, len);
			if (!key)
				err = scone_err_set(SCONE_ERR_INVALID, "%s: the private key cannot be read",
						    var);
		}
		OPENSSL_cleanse(data, (size_t)len);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		if (err)
			break;
	}
	ERR_clear_error();
	BIO_free(b);
	if (!err && (!key || certs == 0))
		err =
		    scone_err_set(SCONE_ERR_INVALID, "%s: needs a private key and a certificate (PEM)", var);
	if (!err && (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1))
		err = scone_err_set(SCONE_ERR_INVALID,
				    "%s: the private key does not belong to the certificate", var);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return err;
}

static enum scone_err load_cas(SSL_CTX *ctx, const char *pem, const char *var)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509 *x;
	size_t n = 0;

	if (!b)
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	while ((x = PEM_read_bio_X509(b, NULL, scone_pem_no_passphrase, NULL))) {
		if (X509_STORE_add_cert(store, x) == 1)
			n++;
		X509_free(x);
	}
	ERR_clear_error();
	BIO_free(b);
	if (n == 0)
		return scone_err_set(SCONE_ERR_INVALID, "%s: no CA certificate (PEM) in it", var);
	return SCONE_ERR_OK;
}

static SSL_CTX *ctx_new(bool server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, server ? TLS1_3_VERSION : TLS1_2_VERSION);
	SSL_CTX_set_security_level(ctx, 2); /* (no openssl.cnf in the runtime: set, as Debian's sets it) */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (server)
		SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

static enum scone_err server_ctx(struct ns_srv *s)
{
	const struct ns_server *c = s->conf;
	char var[96];
	enum scone_err err;

	if (!(s->ctx = ctx_new(true)))
		return scone_err_set(SCONE_ERR_CRYPTO, "TLS context: out of memory");
	snprintf(var, sizeof(var), "SCONE_NETWORK_SHIELD_SERVER_%u_IDENTITY", c->index);
	if (c->identity_pem) {
		if ((err = load_identity(s->ctx, c->identity_pem, var)))
			return err;
	} else {
		struct scone_identity id;
		if ((err = scone_identity_new("scone-network-shield", 365, &id)))
			return err;
		if (SSL_CTX_use_certificate(s->ctx, id.cert) != 1 ||
		    SSL_CTX_use_PrivateKey(s->ctx, id.key) != 1)
			err =
			    scone_err_set(SCONE_ERR_CRYPTO, "%s: the ephemeral identity cannot be used", var);
		scone_identity_free(&id);
		if (err)
			return err;
	}
	if (c->client_ca_pem) {
		snprintf(var, sizeof(var), "SCONE_NETWORK_SHIELD_SERVER_%u_CLIENT_AUTH", c->index);
		if ((err = load_cas(s->ctx, c->client_ca_pem, var)))
			return err;
		SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return SCONE_ERR_OK;
}

static enum scone_err client_ctx(struct ns_cli *k)
{
	const struct ns_client *c = k->conf;
	char var[96];
	enum scone_err err;

	if (!(k->ctx = ctx_new(false)))
		return scone_err_set(SCONE_ERR_CRYPTO, "TLS context: out of memory");
	if (c->identity_pem) {
		snprintf(var, sizeof(var), "SCONE_NETWORK_SHIELD_CLIENT_%u_IDENTITY", c->index);
		if ((err = load_identity(k->ctx, c->identity_pem, var)))
			return err;
	}
	if (c->server_ca_pem) {
		snprintf(var, sizeof(var), "SCONE_NETWORK_SHIELD_CLIENT_%u_SERVER_AUTH", c->index);
		if ((err = load_cas(k->ctx, c->server_ca_pem, var)))
			return err;
		SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER, NULL);
	}
	return SCONE_ERR_OK;
}

/* The addresses a TCP destination stands for: _DESTINATION_IP, else the host (a literal or a name). */
static bool add_addr(struct ns_cli *k, const char *text, uint16_t port)
{
	struct sockaddr_storage *ss = &k->addrs[k->addr_count];
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(text);

	if (k->addr_count >= MAX_ADDRS)
		return true;
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, text + 1, n - 2);
		buf[n - 2] = '\0';
		text = buf;
	}
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
	} else {
		return false;
	}
	k->addr_count++;
	return true;
}

static enum scone_err client_addrs(struct ns_cli *k)
{
	const struct ns_client *c = k->conf;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;

	if (c->to.is_unix)
		return SCONE_ERR_OK;
	if (c->dest_ip) {
		char *copy = strdup(c->dest_ip), *save = NULL;
		if (!copy)
			return scone_err_set(SCONE_ERR_NOMEM, "out of memory");
		for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
			if (!add_addr(k, t, c->to.port)) {
				free(copy);
				return scone_err_set(SCONE_ERR_INVALID,
						     "SCONE_NETWORK_SHIELD_CLIENT_%u_DESTINATION_IP: %.64s "
						     "is not an IP address",
						     c->index, t);
			}
		free(copy);
		return SCONE_ERR_OK;
	}
	if (add_addr(k, c->to.host, c->to.port))
		return SCONE_ERR_OK;
	if (getaddrinfo(c->to.host, NULL, &hints, &res) != 0 || !res)
		return scone_err_set(
		    SCONE_ERR_INVALID,
		    "SCONE_NETWORK_SHIELD_CLIENT_%u_DESTINATION: host %.64s cannot be resolved "
		    "(give _DESTINATION_IP)",
		    c->index, c->to.host);
	for (struct addrinfo *a = res; a && k->addr_count < MAX_ADDRS; a = a->ai_next) {
		char ip[INET6_ADDRSTRLEN];
		const void *src = a->ai_family == AF_INET
				      ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
				      : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
		if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
		    inet_ntop(a->ai_family, src, ip, sizeof(ip)))
			(void)add_addr(k, ip, c->to.port);
	}
	freeaddrinfo(res);
	return SCONE_ERR_OK;
}

enum scone_err scone_netshield_init(char *const *env, size_t n)
{
	struct ns_config *conf;
	enum scone_err err;

	if ((err = ns_config_parse(env, n, &conf)))
		return err;
	if (conf->mode == NS_DISABLED) {
		ns_config_free(conf);
		return SCONE_ERR_OK;
	}
	/*
	 * The runtime's OpenSSL starts without the digest name tables (start.c);
	 * checking a certificate's signature strength (a CA-signed identity or
	 * peer) looks its digest up by name.
	 */
	EVP_add_digest(EVP_sha256());
	EVP_add_digest(EVP_sha384());
	EVP_add_digest(EVP_sha512());
	EVP_add_digest(EVP_sha224());
	g.conf = conf;
	g.srv = calloc(conf->server_count + 1, sizeof(*g.srv));
	g.cli = calloc(conf->client_count + 1, sizeof(*g.cli));
	if (!g.srv || !g.cli)
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < conf->server_count; i++) {
		struct ns_srv *s = &g.srv[i];
		char at[140];
		s->conf = &conf->servers[i];
		endpoint_text(&s->conf->at, at, sizeof(at));
		snprintf(s->what, sizeof(s->what), "server %u (%s)", s->conf->index, at);
		if (s->conf->action == NS_PROTECT && (err = server_ctx(s)))
			return err;
	}
	for (size_t i = 0; i < conf->client_count; i++) {
		struct ns_cli *k = &g.cli[i];
		char to[280];
		k->conf = &conf->clients[i];
		endpoint_text(&k->conf->to, to, sizeof(to));
		snprintf(k->what, sizeof(k->what), "client %u (%s)", k->conf->index, to);
		if ((k->conf->action == NS_PROTECT && (err = client_ctx(k))) || (err = client_addrs(k)))
			return err;
	}
	__atomic_store_n(&g.on, true, __ATOMIC_RELEASE);
	return SCONE_ERR_OK;
}

void scone_netshield_show(void)
{
	if (!g.on) {
		scone_info("runtime: network shield disabled");
		return;
	}
	scone_info("runtime: network shield %s, unsupported protocols %s",
		   g.conf->mode == NS_PROTECTED ? "protected" : "unprotected",
		   action_name(g.conf->unsupported));
	for (size_t i = 0; i < g.conf->server_count; i++)
		scone_info("runtime: network shield %s: %s%s%s", g.srv[i].what,
			   action_name(g.srv[i].conf->action),
			   g.srv[i].conf->action == NS_PROTECT && !g.srv[i].conf->identity_pem
			       ? ", ephemeral identity"
			       : "",
			   g.srv[i].conf->client_ca_pem ? ", client certificates required" : "");
	for (size_t i = 0; i < g.conf->client_count; i++)
		scone_info("runtime: network shield %s: %s%s", g.cli[i].what,
			   action_name(g.cli[i].conf->action),
			   g.cli[i].conf->server_auth_disabled ? ", server not authenticated" : "");
}

static void decide(enum ns_action a, SSL_CTX *ctx, const char *what, struct ns_decision *out)
{
	out->verdict = a == NS_PROTECT ? NSV_PROTECT : a == NS_REFUSE ? NSV_REFUSE : NSV_PASS;
	out->ctx = ctx;
	out->what = what;
}

static void unconfigured(struct ns_decision *out)
{
	out->verdict = g.conf->mode == NS_PROTECTED ? NSV_REFUSE : NSV_PASS;
	out->ctx = NULL;
	out->dns_name = NULL;
	out->what = "no rule of the session names it";
}

static uint16_t addr_port(const struct sockaddr *a)
{
	if (a->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)a)->sin_port);
	if (a->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
	return 0;
}

static bool unix_path_is(const struct sockaddr *a, socklen_t len, const char *path)
{
	const struct sockaddr_un *u = (const struct sockaddr_un *)a;
	size_t max =
	    len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;

	return a->sa_family == AF_UNIX && max > 0 && u->sun_path[0] != '\0' &&
	       strncmp(u->sun_path, path, max) == 0 && strlen(path) <= max &&
	       (strlen(path) == max || u->sun_path[strlen(path)] == '\0');
}

void ns_decide_accepted(int fd, struct ns_decision *out)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	out->dns_name = NULL;
	if (!scone_netshield_on() || scone_rt_own()) {
		decide(NS_PASS, NULL, NULL, out);
		return;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		unconfigured(out);
		return;
	}
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6 && ss.ss_family != AF_UNIX) {
		decide(g.conf->unsupported, NULL, "an unsupported protocol", out);
		return;
	}
	for (size_t i = 0; i < g.conf->server_count; i++) {
		const struct ns_server *c = g.srv[i].conf;
		bool match = c->at.is_unix
				 ? unix_path_is((struct sockaddr *)&ss, len, c->at.path)
				 : ss.ss_family != AF_UNIX && addr_port((struct sockaddr *)&ss) == c->at.port;
		if (match) {
			decide(c->action, g.srv[i].ctx, g.srv[i].what, out);
			return;
		}
	}
	/* an unnamed unix socket (socketpair's peer) is the process's own business */
	if (ss.ss_family == AF_UNIX && len <= offsetof(struct sockaddr_un, sun_path) + 1) {
		decide(NS_PASS, NULL, NULL, out);
		return;
	}
	unconfigured(out);
}

static bool same_ip(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
			   ((const struct sockaddr_in *)b)->sin_addr.s_addr &&
		       ((const struct sockaddr_in *)a)->sin_port == ((const struct sockaddr_in *)b)->sin_port;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0 &&
	       ((const struct sockaddr_in6 *)a)->sin6_port == ((const struct sockaddr_in6 *)b)->sin6_port;
}

void ns_decide_connect(const struct sockaddr *addr, socklen_t len, struct ns_decision *out)
{
	out->dns_name = NULL;
	if (!scone_netshield_on() || scone_rt_own() || !addr || len < sizeof(sa_family_t)) {
		decide(NS_PASS, NULL, NULL, out);
		return;
	}
	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6 && addr->sa_family != AF_UNIX) {
		decide(g.conf->unsupported, NULL, "an unsupported protocol", out);
		return;
	}
	for (size_t i = 0; i < g.conf->client_count; i++) {
		const struct ns_cli *k = &g.cli[i];
		bool match = false;
		if (k->conf->to.is_unix) {
			match = unix_path_is(addr, len, k->conf->to.path);
		} else if (addr->sa_family != AF_UNIX) {
			for (size_t j = 0; j < k->addr_count && !match; j++)
				match = same_ip(addr, &k->addrs[j]);
		}
		if (match) {
			decide(k->conf->action, k->ctx, k->what, out);
			if (!k->conf->server_auth_disabled)
				out->dns_name = k->conf->dns_name ? k->conf->dns_name : k->conf->to.host;
			return;
		}
	}
	/* abstract unix sockets and unnamed ones are local plumbing, not destinations */
	if (addr->sa_family == AF_UNIX && (len <= offsetof(struct sockaddr_un, sun_path) ||
					   ((const struct sockaddr_un *)addr)->sun_path[0] == '\0')) {
		decide(NS_PASS, NULL, NULL, out);
		return;
	}
	unconfigured(out);
}

enum ns_verdict ns_decide_socket(int domain, int type)
{
	int t = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (!scone_netshield_on() || scone_rt_own())
		return NSV_PASS;
	if ((domain == AF_INET || domain == AF_INET6) && t != SOCK_STREAM)
		return g.conf->unsupported == NS_REFUSE ? NSV_REFUSE : NSV_PASS;
	return NSV_PASS;
}
