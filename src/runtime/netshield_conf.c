/*
 * netshield_conf.c - owns the parsing of the network shield's variables
 * (SCONE_NETWORK_SHIELD*) into struct ns_config: which names exist, the
 * syntax of every value, and the rules across variables (a suffix needs
 * its base variable, no name twice, no two servers on one endpoint).
 *
 * How: the shield's entries are picked out of the environment, each name
 * is turned into a key (group, <n>, field) and the keys are sorted, so a
 * duplicate is two equal neighbours, a suffix without its base is a group
 * not starting with the base field, and servers and clients come out in
 * index order. <n> has no leading zeros, so a key stands for one name.
 *
 * Values are checked as text only: endpoints and addresses fully, PEM by
 * its block structure (netshield.c loads the keys and certificates). An
 * error message names the variable and may quote a short, sanitised piece
 * of its value, except for identities, which are never quoted.
 */
#include "runtime/netshield_conf.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/crypto.h"

#define NS_PREFIX "SCONE_NETWORK_SHIELD"
#define NS_PREFIX_LEN (sizeof(NS_PREFIX) - 1)
#define NS_UNIX_PATH_MAX 108 /* sizeof(sun_path), NUL included */
#define NS_HOST_MAX 253

enum ns_group { G_MODE, G_UNSUPPORTED, G_SERVER, G_CLIENT };

enum ns_field {
	F_BASE, /* SERVER_<n> / CLIENT_<n> itself; sorts first in its group */
	F_PORT,
	F_IDENTITY,
	F_CLIENT_AUTH,
	F_DESTINATION,
	F_DESTINATION_IP,
	F_SERVER_AUTH,
	F_SERVER_DNS_NAME,
	F_COUNT,
};

/* One of the shield's entries: slices of the caller's environment, nothing owned. */
struct ns_var {
	const char *name;
	size_t name_len;
	const char *value;
	enum ns_group group;
	unsigned index;
	enum ns_field field;
};

struct ns_suffix {
	const char *text;
	enum ns_field field;
};

static const struct ns_suffix server_suffixes[] = {
    {"PORT", F_PORT}, {"IDENTITY", F_IDENTITY}, {"CLIENT_AUTH", F_CLIENT_AUTH}, {NULL, F_COUNT}};
static const struct ns_suffix client_suffixes[] = {
    {"DESTINATION", F_DESTINATION}, {"DESTINATION_IP", F_DESTINATION_IP},   {"SERVER_AUTH", F_SERVER_AUTH},
    {"IDENTITY", F_IDENTITY},	    {"SERVER_DNS_NAME", F_SERVER_DNS_NAME}, {NULL, F_COUNT}};

/* ---------------- messages ---------------- */

/* Up to max bytes of s (of s_len) for a message: non-printable bytes become '?'. */
static void sanitize(char *out, size_t out_size, const char *s, size_t s_len, size_t max)
{
	size_t n = s_len < max ? s_len : max, i;

	if (n > out_size - 4)
		n = out_size - 4;
	for (i = 0; i < n; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (n < s_len)
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
}

/* SCONE_ERR_INVALID, detail "<variable>: <what>". */
__attribute__((format(printf, 2, 3))) static enum scone_err fail(const struct ns_var *v, const char *fmt, ...)
{
	char name[96], what[400];
	va_list ap;

	sanitize(name, sizeof(name), v->name, v->name_len, 80);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return scone_err_set(SCONE_ERR_INVALID, "%s: %s", name, what);
}

/* A short, sanitised quote of a (non-secret) value. */
static const char *quote(const char *value, char out[static 48])
{
	sanitize(out, 48, value, strlen(value), 40);
	return out;
}

static enum scone_err no_memory(void)
{
	return scone_err_set(SCONE_ERR_NOMEM, "network shield configuration: out of memory");
}

/* ---------------- names ---------------- */

bool ns_is_setting(const char *name)
{
	if (!name || strncmp(name, NS_PREFIX, NS_PREFIX_LEN) != 0)
		return false;
	return name[NS_PREFIX_LEN] == '\0' || name[NS_PREFIX_LEN] == '=' || name[NS_PREFIX_LEN] == '_';
}

static bool slice_is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* <n>_<suffix> or <n> after "SERVER_" / "CLIENT_": sets index and field. */
static enum scone_err classify_indexed(struct ns_var *v, const char *p, size_t len,
				       const struct ns_suffix *suffixes, const char *kind, const char *takes)
{
	size_t d = 0;

	while (d < len && is_digit(p[d]))
		d++;
	if (d == 0)
		return fail(v, "unknown variable (SCONE_NETWORK_SHIELD_%s_<n>: <n> is 0 to %u)", kind,
			    NS_MAX_INDEX);
	if (d > 1 && p[0] == '0')
		return fail(v, "<n> has a leading zero (write %s_%lu)", kind, strtoul(p, NULL, 10));
	if (d > 4)
		return fail(v, "<n> is above %u", NS_MAX_INDEX);
	v->index = (unsigned)strtoul(p, NULL, 10);
	if (d == len) {
		v->field = F_BASE;
		return SCONE_ERR_OK;
	}
	if (p[d] == '_')
		for (const struct ns_suffix *s = suffixes; s->text; s++)
			if (slice_is(p + d + 1, len - d - 1, s->text)) {
				v->field = s->field;
				return SCONE_ERR_OK;
			}
	return fail(v, "unknown variable (a %s takes %s)", kind, takes);
}

/* Turn a name that ns_is_setting accepted into its key, or refuse it. */
static enum scone_err classify(struct ns_var *v)
{
	const char *rest;
	size_t len;

	v->index = 0;
	v->field = F_BASE;
	if (v->name_len == NS_PREFIX_LEN) {
		v->group = G_MODE;
		return SCONE_ERR_OK;
	}
	rest = v->name + NS_PREFIX_LEN + 1; /* after "SCONE_NETWORK_SHIELD_" */
	len = v->name_len - NS_PREFIX_LEN - 1;
	if (slice_is(rest, len, "UNSUPPORTED_PROTOCOLS")) {
		v->group = G_UNSUPPORTED;
		return SCONE_ERR_OK;
	}
	if (len > 7 && memcmp(rest, "SERVER_", 7) == 0) {
		v->group = G_SERVER;
		return classify_indexed(v, rest + 7, len - 7, server_suffixes, "SERVER",
					"_PORT, _IDENTITY and _CLIENT_AUTH");
	}
	if (len > 7 && memcmp(rest, "CLIENT_", 7) == 0) {
		v->group = G_CLIENT;
		return classify_indexed(
		    v, rest + 7, len - 7, client_suffixes, "CLIENT",
		    "_DESTINATION, _DESTINATION_IP, _SERVER_AUTH, _IDENTITY and _SERVER_DNS_NAME");
	}
	return fail(v, "unknown variable (the network shield has SCONE_NETWORK_SHIELD, "
		       "_UNSUPPORTED_PROTOCOLS, _SERVER_<n>* and _CLIENT_<n>*)");
}

static int var_cmp(const void *a, const void *b)
{
	const struct ns_var *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	if (x->field != y->field)
		return x->field < y->field ? -1 : 1;
	return 0;
}

static bool same_endpoint_owner(const struct ns_var *a, const struct ns_var *b)
{
	return a->group == b->group && a->index == b->index;
}

/* ---------------- values ---------------- */

static enum scone_err parse_action(const struct ns_var *v, enum ns_action *out)
{
	char q[48];

	if (strcmp(v->value, "protected") == 0)
		*out = NS_PROTECT;
	else if (strcmp(v->value, "unprotected") == 0)
		*out = NS_PASS;
	else if (strcmp(v->value, "refuse") == 0)
		*out = NS_REFUSE;
	else
		return fail(v, "must be protected, unprotected or refuse (not \"%s\")", quote(v->value, q));
	return SCONE_ERR_OK;
}

/* Decimal 1..65535, the whole of s. */
static bool parse_port(const char *s, uint16_t *out)
{
	unsigned long p = 0;
	size_t i;

	for (i = 0; is_digit(s[i]) && i < 5; i++)
		p = p * 10 + (unsigned long)(s[i] - '0');
	if (i == 0 || s[i] != '\0' || p == 0 || p > 65535)
		return false;
	*out = (uint16_t)p;
	return true;
}

/* An IPv4 (af AF_INET) or IPv6 (AF_INET6) literal of len bytes. */
static bool is_address(int af, const char *s, size_t len)
{
	char buf[INET6_ADDRSTRLEN];
	unsigned char addr[16];

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(af, buf, addr) == 1;
}

/* A DNS name (letters, digits, '-', '_', non-empty labels up to 63) or, if all digits and dots, an IPv4
 * address. */
static bool is_host(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > NS_HOST_MAX)
		return false;
	if (strspn(s, "0123456789.") >= len)
		return is_address(AF_INET, s, len);
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!(is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
		      c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return label != 0;
}

static bool has_scheme(const char *s, const char *scheme)
{
	return strncasecmp(s, scheme, strlen(scheme)) == 0;
}

static enum scone_err parse_unix(const struct ns_var *v, const char *path, struct ns_endpoint *at)
{
	size_t len = strlen(path);

	if (path[0] != '/')
		return fail(v, "unix: takes an absolute path");
	if (len >= NS_UNIX_PATH_MAX)
		return fail(v, "the unix socket path is %zu bytes, at most %d fit", len,
			    NS_UNIX_PATH_MAX - 1);
	at->is_unix = true;
	at->path = strdup(path);
	return at->path ? SCONE_ERR_OK : no_memory();
}

/* _PORT: TCP:<port> or unix:<absolute path>. */
static enum scone_err parse_server_port(const struct ns_var *v, struct ns_endpoint *at)
{
	char q[48];

	if (has_scheme(v->value, "unix:"))
		return parse_unix(v, v->value + 5, at);
	if (has_scheme(v->value, "TCP:") && parse_port(v->value + 4, &at->port))
		return SCONE_ERR_OK;
	return fail(v, "must be TCP:<port 1-65535> or unix:<absolute path> (not \"%s\")", quote(v->value, q));
}

/* _DESTINATION: TCP:<host>:<port> (host a name, IPv4 or [IPv6]) or unix:<absolute path>. */
static enum scone_err parse_destination(const struct ns_var *v, struct ns_endpoint *to)
{
	const char *rest, *host, *colon;
	size_t host_len;
	char q[48];

	if (has_scheme(v->value, "unix:"))
		return parse_unix(v, v->value + 5, to);
	if (!has_scheme(v->value, "TCP:"))
		return fail(v, "must be TCP:<host>:<port> or unix:<absolute path> (not \"%s\")",
			    quote(v->value, q));
	rest = v->value + 4;
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		host = rest + 1;
		host_len = close ? (size_t)(close - host) : 0;
		if (!close || !is_address(AF_INET6, host, host_len))
			return fail(v, "[...] must hold an IPv6 address (in \"%s\")", quote(v->value, q));
		colon = close + 1;
		if (*colon != ':')
			return fail(v, "needs :<port> after the address (in \"%s\")", quote(v->value, q));
	} else {
		colon = strrchr(rest, ':');
		if (!colon)
			return fail(v, "needs TCP:<host>:<port> (not \"%s\")", quote(v->value, q));
		host = rest;
		host_len = (size_t)(colon - rest);
		if (memchr(host, ':', host_len))
			return fail(v, "an IPv6 address goes in brackets, TCP:[addr]:<port> (not \"%s\")",
				    quote(v->value, q));
		if (!is_host(host, host_len))
			return fail(v, "the host is not a host name or IPv4 address (in \"%s\")",
				    quote(v->value, q));
	}
	if (!parse_port(colon + 1, &to->port))
		return fail(v, "the port must be 1 to 65535 (in \"%s\")", quote(v->value, q));
	to->host = strndup(host, host_len);
	return to->host ? SCONE_ERR_OK : no_memory();
}

/* _DESTINATION_IP: one or more IPv4/IPv6 literals, comma separated. */
static enum scone_err parse_dest_ip(const struct ns_var *v, char **out)
{
	const char *p = v->value;
	char q[48];

	for (;;) {
		size_t len = strcspn(p, ",");
		if (!is_address(AF_INET, p, len) && !is_address(AF_INET6, p, len))
			return fail(v, "must be IP addresses, comma separated (not \"%s\")",
				    quote(v->value, q));
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*out = strdup(v->value);
	return *out ? SCONE_ERR_OK : no_memory();
}

/* ---------------- PEM ---------------- */

struct pem_blocks {
	unsigned keys;	    /* "... PRIVATE KEY" */
	unsigned encrypted; /* "ENCRYPTED PRIVATE KEY", or a key with Proc-Type headers */
	unsigned certs;	    /* "CERTIFICATE" */
};

static bool label_ends(const char *label, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len >= n && memcmp(label + len - n, lit, n) == 0 && (len == n || label[len - n - 1] == ' ');
}

/*
 * Count the PEM blocks of s. False when a BEGIN line has no matching END
 * or a body holds what base64 does not (legacy encrypted keys aside).
 * Text between blocks is allowed (openssl's "Bag Attributes").
 */
static bool pem_scan(const char *s, struct pem_blocks *b)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n";
	const char *p = s;

	memset(b, 0, sizeof(*b));
	while ((p = strstr(p, "-----BEGIN "))) {
		const char *label = p + 11, *end = strstr(label, "-----"), *body, *tail;
		size_t len = end ? (size_t)(end - label) : 0;
		if (len == 0 || len > 64 || strspn(label, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ") < len)
			return false;
		body = end + 5;
		tail = strstr(body, "-----END ");
		if (!tail || strncmp(tail + 9, label, len) != 0 || strncmp(tail + 9 + len, "-----", 5) != 0)
			return false;
		bool legacy_enc = label_ends(label, len, "PRIVATE KEY") &&
				  memmem(body, (size_t)(tail - body), "Proc-Type:", 10);
		if (!legacy_enc && strspn(body, b64) < (size_t)(tail - body))
			return false;
		if (legacy_enc || slice_is(label, len, "ENCRYPTED PRIVATE KEY"))
			b->encrypted++;
		else if (label_ends(label, len, "PRIVATE KEY"))
			b->keys++;
		else if (slice_is(label, len, "CERTIFICATE"))
			b->certs++;
		p = tail + 9 + len + 5;
	}
	return true;
}

/* _IDENTITY: one private key (unencrypted) and at least one certificate, any order. Never quoted. */
static enum scone_err parse_identity(const struct ns_var *v, char **out)
{
	struct pem_blocks b;

	if (!pem_scan(v->value, &b))
		return fail(v,
			    "is not well-formed PEM (a BEGIN line without its END line, or a damaged body)");
	if (b.encrypted)
		return fail(
		    v,
		    "holds an encrypted private key: give it unencrypted (the session's secrets protect it)");
	if (b.keys != 1)
		return fail(v, "must hold one private key (PEM), it holds %u", b.keys);
	if (b.certs == 0)
		return fail(v, "holds no certificate (PEM CERTIFICATE block): give the key and its "
			       "certificate chain");
	*out = strdup(v->value);
	return *out ? SCONE_ERR_OK : no_memory();
}

/* _CLIENT_AUTH / _SERVER_AUTH: "disabled" (*out NULL, *disabled true) or CA certificates (PEM). */
static enum scone_err parse_ca(const struct ns_var *v, char **out, bool *disabled)
{
	struct pem_blocks b;

	if (strcmp(v->value, "disabled") == 0) {
		*disabled = true;
		return SCONE_ERR_OK;
	}
	if (!pem_scan(v->value, &b) || b.certs == 0)
		return fail(v, "must be CA certificates (PEM CERTIFICATE blocks) or disabled");
	if (b.keys || b.encrypted)
		return fail(
		    v,
		    "holds a private key: it takes CA certificates only (the key belongs in an _IDENTITY)");
	*out = strdup(v->value);
	return *out ? SCONE_ERR_OK : no_memory();
}

/* ---------------- servers and clients ---------------- */

/* The variable SCONE_NETWORK_SHIELD_<kind>_<n> (when missing, for a message). */
static void base_name(char *out, size_t out_size, const struct ns_var *v)
{
	snprintf(out, out_size, NS_PREFIX "_%s_%u", v->group == G_SERVER ? "SERVER" : "CLIENT", v->index);
}

static enum scone_err parse_server(const struct ns_var *const f[F_COUNT], struct ns_server *s)
{
	char base[64];
	bool unused;

	s->index = f[F_BASE]->index;
	SCONE_TRY(parse_action(f[F_BASE], &s->action));
	if (!f[F_PORT]) {
		base_name(base, sizeof(base), f[F_BASE]);
		return fail(f[F_BASE], "needs %s_PORT (TCP:<port> or unix:<path>)", base);
	}
	SCONE_TRY(parse_server_port(f[F_PORT], &s->at));
	if (f[F_IDENTITY])
		SCONE_TRY(parse_identity(f[F_IDENTITY], &s->identity_pem));
	if (f[F_CLIENT_AUTH])
		SCONE_TRY(parse_ca(f[F_CLIENT_AUTH], &s->client_ca_pem, &unused));
	return SCONE_ERR_OK;
}

static enum scone_err parse_client(const struct ns_var *const f[F_COUNT], struct ns_client *c)
{
	char base[64], q[48];

	c->index = f[F_BASE]->index;
	SCONE_TRY(parse_action(f[F_BASE], &c->action));
	base_name(base, sizeof(base), f[F_BASE]);
	if (!f[F_DESTINATION])
		return fail(f[F_BASE], "needs %s_DESTINATION (TCP:<host>:<port> or unix:<path>)", base);
	SCONE_TRY(parse_destination(f[F_DESTINATION], &c->to));
	if (f[F_DESTINATION_IP]) {
		if (c->to.is_unix)
			return fail(f[F_DESTINATION_IP],
				    "is for TCP destinations, %s_DESTINATION is a unix path", base);
		SCONE_TRY(parse_dest_ip(f[F_DESTINATION_IP], &c->dest_ip));
	}
	if (f[F_SERVER_AUTH])
		SCONE_TRY(parse_ca(f[F_SERVER_AUTH], &c->server_ca_pem, &c->server_auth_disabled));
	else if (c->action == NS_PROTECT)
		return fail(f[F_BASE],
			    "is protected but %s_SERVER_AUTH is not set: give the CA certificates (PEM) that "
			    "verify the server, or disabled to accept any server",
			    base);
	if (f[F_IDENTITY])
		SCONE_TRY(parse_identity(f[F_IDENTITY], &c->identity_pem));
	if (f[F_SERVER_DNS_NAME]) {
		const char *name = f[F_SERVER_DNS_NAME]->value;
		if (!is_host(name, strlen(name)))
			return fail(f[F_SERVER_DNS_NAME], "is not a host name (\"%s\")", quote(name, q));
		c->dns_name = strdup(name);
		if (!c->dns_name)
			return no_memory();
	}
	return SCONE_ERR_OK;
}

static bool same_endpoint(const struct ns_endpoint *a, const struct ns_endpoint *b)
{
	if (a->is_unix != b->is_unix)
		return false;
	if (a->is_unix)
		return strcmp(a->path, b->path) == 0;
	return a->port == b->port && (!a->host || !b->host || strcasecmp(a->host, b->host) == 0);
}

static enum scone_err add_server(const struct ns_var *const f[F_COUNT], struct ns_config *c)
{
	struct ns_server *s = &c->servers[c->server_count++];

	SCONE_TRY(parse_server(f, s));
	for (size_t i = 0; i + 1 < c->server_count; i++)
		if (same_endpoint(&c->servers[i].at, &s->at))
			return fail(f[F_PORT], "the same %s as " NS_PREFIX "_SERVER_%u_PORT",
				    s->at.is_unix ? "path" : "port", c->servers[i].index);
	return SCONE_ERR_OK;
}

static enum scone_err add_client(const struct ns_var *const f[F_COUNT], struct ns_config *c)
{
	struct ns_client *cl = &c->clients[c->client_count++];

	SCONE_TRY(parse_client(f, cl));
	for (size_t i = 0; i + 1 < c->client_count; i++)
		if (same_endpoint(&c->clients[i].to, &cl->to))
			return fail(f[F_DESTINATION],
				    "the same destination as " NS_PREFIX "_CLIENT_%u_DESTINATION",
				    c->clients[i].index);
	return SCONE_ERR_OK;
}

static enum scone_err parse_unsupported(const struct ns_var *v, enum ns_action *out)
{
	char q[48];

	if (strcmp(v->value, "unprotected") == 0)
		*out = NS_PASS;
	else if (strcmp(v->value, "refuse") == 0)
		*out = NS_REFUSE;
	else
		return fail(v, "must be unprotected or refuse (not \"%s\")", quote(v->value, q));
	return SCONE_ERR_OK;
}

/* One SERVER_<n> or CLIENT_<n> group (vars[0..count), sorted): its base first, then its fields. */
static enum scone_err add_endpoint(const struct ns_var *vars, size_t count, struct ns_config *c)
{
	const struct ns_var *f[F_COUNT] = {0};
	char base[64];

	if (vars[0].field != F_BASE) {
		base_name(base, sizeof(base), &vars[0]);
		return fail(&vars[0], "is set but %s is not (set it to protected, unprotected or refuse)",
			    base);
	}
	for (size_t i = 0; i < count; i++)
		f[vars[i].field] = &vars[i];
	return vars[0].group == G_SERVER ? add_server(f, c) : add_client(f, c);
}

/* Room for the servers and clients (their bases), within the limits. */
static enum scone_err allocate(const struct ns_var *vars, size_t k, struct ns_config *c)
{
	size_t servers = 0, clients = 0;

	for (size_t i = 0; i < k; i++) {
		if (vars[i].field != F_BASE)
			continue;
		if (vars[i].group == G_SERVER && ++servers > NS_MAX_SERVERS)
			return fail(&vars[i], "more than %d servers", NS_MAX_SERVERS);
		if (vars[i].group == G_CLIENT && ++clients > NS_MAX_CLIENTS)
			return fail(&vars[i], "more than %d clients", NS_MAX_CLIENTS);
	}
	c->servers = servers ? calloc(servers, sizeof(*c->servers)) : NULL;
	c->clients = clients ? calloc(clients, sizeof(*c->clients)) : NULL;
	if ((servers && !c->servers) || (clients && !c->clients))
		return no_memory();
	return SCONE_ERR_OK;
}

static enum scone_err build(const struct ns_var *vars, size_t k, struct ns_config *c)
{
	size_t j;

	SCONE_TRY(allocate(vars, k, c));
	for (size_t i = 0; i < k; i = j) {
		for (j = i + 1; j < k && same_endpoint_owner(&vars[i], &vars[j]); j++)
			;
		if (vars[i].group == G_UNSUPPORTED)
			SCONE_TRY(parse_unsupported(&vars[i], &c->unsupported));
		else if (vars[i].group != G_MODE)
			SCONE_TRY(add_endpoint(&vars[i], j - i, c));
	}
	return SCONE_ERR_OK;
}

/* The shield's entries of env, classified and sorted (*out owned by the caller; slices of env). */
static enum scone_err collect(char *const *env, size_t n, struct ns_var **out, size_t *count)
{
	struct ns_var *vars;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (env[i] && strchr(env[i], '=') && ns_is_setting(env[i]))
			k++;
	*out = vars = calloc(k ? k : 1, sizeof(*vars));
	if (!vars)
		return no_memory();
	for (size_t i = 0; i < n; i++) {
		const char *eq = env[i] ? strchr(env[i], '=') : NULL;
		if (!eq || !ns_is_setting(env[i]))
			continue;
		struct ns_var *v = &vars[(*count)++];
		v->name = env[i];
		v->name_len = (size_t)(eq - env[i]);
		v->value = eq + 1;
		SCONE_TRY(classify(v));
		if (strnlen(v->value, NS_MAX_VALUE_SIZE + 1) > NS_MAX_VALUE_SIZE)
			return fail(v, "the value is longer than %d bytes", NS_MAX_VALUE_SIZE);
	}
	qsort(vars, k, sizeof(*vars), var_cmp);
	for (size_t i = 1; i < k; i++)
		if (var_cmp(&vars[i - 1], &vars[i]) == 0)
			return fail(&vars[i], "is set twice");
	return SCONE_ERR_OK;
}

/* SCONE_NETWORK_SHIELD: unset, empty or disabled, unprotected, protected. Set at most once. */
static enum scone_err parse_mode(char *const *env, size_t n, enum ns_mode *mode)
{
	struct ns_var v = {.name = NS_PREFIX, .name_len = NS_PREFIX_LEN, .value = NULL};
	char q[48];

	for (size_t i = 0; i < n; i++) {
		if (!env[i] || strncmp(env[i], NS_PREFIX "=", NS_PREFIX_LEN + 1) != 0)
			continue;
		if (v.value)
			return fail(&v, "is set twice");
		v.value = env[i] + NS_PREFIX_LEN + 1;
	}
	if (!v.value || !v.value[0] || strcmp(v.value, "disabled") == 0)
		*mode = NS_DISABLED;
	else if (strcmp(v.value, "unprotected") == 0)
		*mode = NS_UNPROTECTED;
	else if (strcmp(v.value, "protected") == 0)
		*mode = NS_PROTECTED;
	else
		return fail(&v, "must be disabled, unprotected or protected (not \"%s\")", quote(v.value, q));
	return SCONE_ERR_OK;
}

enum scone_err ns_config_parse(char *const *env, size_t n, struct ns_config **out)
{
	struct ns_config *c = calloc(1, sizeof(*c));
	struct ns_var *vars = NULL;
	size_t k = 0;
	enum scone_err err;

	*out = NULL;
	if (!c)
		return no_memory();
	c->unsupported = NS_PASS;
	err = parse_mode(env, n, &c->mode);
	if (err == SCONE_ERR_OK && c->mode != NS_DISABLED) {
		err = collect(env, n, &vars, &k);
		if (err == SCONE_ERR_OK)
			err = build(vars, k, c);
	}
	free(vars);
	if (err != SCONE_ERR_OK) {
		ns_config_free(c);
		return err;
	}
	*out = c;
	return SCONE_ERR_OK;
}

static void free_secret(char *s)
{
	if (s) {
		scone_wipe(s, strlen(s));
		free(s);
	}
}

static void free_endpoint(struct ns_endpoint *e)
{
	free(e->path);
	free(e->host);
}

void ns_config_free(struct ns_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->server_count; i++) {
		free_endpoint(&c->servers[i].at);
		free_secret(c->servers[i].identity_pem);
		free(c->servers[i].client_ca_pem);
	}
	for (size_t i = 0; i < c->client_count; i++) {
		struct ns_client *cl = &c->clients[i];
		free_endpoint(&cl->to);
		free(cl->dest_ip);
		free(cl->server_ca_pem);
		free_secret(cl->identity_pem);
		free(cl->dns_name);
	}
	free(c->servers);
	free(c->clients);
	free(c);
}
