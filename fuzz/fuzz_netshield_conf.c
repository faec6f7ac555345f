/*
 * fuzz_netshield_conf.c - libFuzzer target for the network shield's
 * configuration parser (src/runtime/netshield_conf.c), which reads the
 * service's environment (from the session, or the host's without CAS).
 *
 * The input is an environment: entries separated by NUL bytes when the
 * input holds any (so PEM values keep their newlines), else by newlines.
 * A refusal must be SCONE_ERR_INVALID with a detail that starts with the
 * variable's name and holds no line of an identity's PEM body. An
 * accepted config must hold the parser's promises (limits, index order,
 * valid endpoints, one endpoint per server, server authentication decided
 * for every protected client). Either way the entries that are not the
 * shield's must not matter: parsing only the shield's gives the same.
 * Seeds: fuzz/corpus/netshield_conf.
 */
#include "runtime/netshield_conf.h"

#include <string.h>
#include <strings.h>

#include "fuzz_common.h"

#define MAX_ENTRIES 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_endpoint(const struct ns_endpoint *e, bool server)
{
	if (e->is_unix) {
		CHECK(e->path && e->path[0] == '/' && strlen(e->path) < 108);
		CHECK(!e->host && !e->port);
	} else {
		CHECK(!e->path && e->port > 0);
		CHECK(server ? !e->host : e->host && e->host[0]);
	}
}

static void check_identity(const char *pem)
{
	CHECK(!pem || (strstr(pem, "PRIVATE KEY-----") && strstr(pem, "-----BEGIN CERTIFICATE-----")));
}

static bool same_endpoint(const struct ns_endpoint *a, const struct ns_endpoint *b)
{
	if (a->is_unix || b->is_unix)
		return a->is_unix && b->is_unix && strcmp(a->path, b->path) == 0;
	return a->port == b->port && (!a->host || strcasecmp(a->host, b->host) == 0);
}

/* What the parser promises about any config it returns. */
static void check_valid(const struct ns_config *c)
{
	CHECK(c->mode == NS_DISABLED || c->mode == NS_UNPROTECTED || c->mode == NS_PROTECTED);
	CHECK(c->unsupported == NS_PASS || c->unsupported == NS_REFUSE);
	CHECK(c->mode != NS_DISABLED || (!c->server_count && !c->client_count && c->unsupported == NS_PASS));
	CHECK(c->server_count <= NS_MAX_SERVERS && c->client_count <= NS_MAX_CLIENTS);
	for (size_t i = 0; i < c->server_count; i++) {
		const struct ns_server *s = &c->servers[i];
		CHECK(s->index <= NS_MAX_INDEX && (i == 0 || s->index > s[-1].index));
		CHECK(s->action <= NS_REFUSE);
		check_endpoint(&s->at, true);
		check_identity(s->identity_pem);
		CHECK(!s->client_ca_pem || strstr(s->client_ca_pem, "-----BEGIN CERTIFICATE-----"));
		for (size_t j = 0; j < i; j++)
			CHECK(!same_endpoint(&c->servers[j].at, &s->at));
	}
	for (size_t i = 0; i < c->client_count; i++) {
		const struct ns_client *cl = &c->clients[i];
		CHECK(cl->index <= NS_MAX_INDEX && (i == 0 || cl->index > cl[-1].index));
		CHECK(cl->action <= NS_REFUSE);
		check_endpoint(&cl->to, false);
		check_identity(cl->identity_pem);
		CHECK(!(cl->server_ca_pem && cl->server_auth_disabled));
		CHECK(cl->action != NS_PROTECT || cl->server_ca_pem || cl->server_auth_disabled);
		CHECK(!cl->dest_ip || (cl->dest_ip[0] && !cl->to.is_unix));
		CHECK(!cl->dns_name || cl->dns_name[0]);
		for (size_t j = 0; j < i; j++)
			CHECK(!same_endpoint(&c->clients[j].to, &cl->to));
	}
}

static bool is_b64(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/' || ch == '=';
}

static bool in_other_entry(char *const *env, size_t n, size_t self, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (i != self && strstr(env[i], s))
			return true;
	return false;
}

/*
 * No line of base64 (16 bytes or more) from an identity reaches the
 * message, unless a name or another entry holds it too (names are
 * quoted, and so may other values be).
 * Messages have no such runs of their own: names hold '_', words are short.
 */
static void check_no_identity(char *const *env, size_t n, const char *detail)
{
	char line[256];

	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(env[i], '='), *p;
		if (!eq || eq - env[i] < 9 || strncmp(eq - 9, "_IDENTITY", 9) != 0)
			continue;
		for (p = eq + 1; *p;) {
			size_t len = 0;
			while (is_b64(p[len]))
				len++;
			if (len >= 16 && len < sizeof(line)) {
				memcpy(line, p, len);
				line[len] = '\0';
				CHECK(!strstr(detail, line) || in_other_entry(env, n, i, line) ||
				      memmem(env[i], (size_t)(eq - env[i]), line, len));
			}
			p += len ? len : 1;
		}
	}
}

/* Parse env; the outcome (error and detail, or counts and mode) into a short summary. */
static enum scone_err parse(char *const *env, size_t n, char *summary, size_t summary_size)
{
	struct ns_config *c = (struct ns_config *)&c;
	enum scone_err err = ns_config_parse(env, n, &c);

	if (err == SCONE_ERR_OK) {
		CHECK(c);
		check_valid(c);
		snprintf(summary, summary_size, "ok %d %d %zu %zu", (int)c->mode, (int)c->unsupported,
			 c->server_count, c->client_count);
		ns_config_free(c);
	} else {
		const char *d = scone_err_detail();
		CHECK(!c);
		CHECK(err == SCONE_ERR_INVALID);
		CHECK(strncmp(d, "SCONE_NETWORK_SHIELD", 20) == 0);
		check_no_identity(env, n, d);
		snprintf(summary, summary_size, "%s", d);
	}
	scone_err_clear();
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), **env = calloc(MAX_ENTRIES, sizeof(*env)), **mine;
	char sep = memchr(data, '\0', size) ? '\0' : '\n', all[600], only[600];
	size_t n = 0, m = 0;

	mine = calloc(MAX_ENTRIES, sizeof(*mine));
	if (!text || !env || !mine)
		goto out;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *p = text; n < MAX_ENTRIES && p <= text + size;) {
		char *end = memchr(p, sep, (size_t)(text + size - p));
		if (!end)
			end = text + size;
		*end = '\0';
		env[n++] = p;
		p = end + 1;
	}
	for (size_t i = 0; i < n; i++)
		if (ns_is_setting(env[i]))
			mine[m++] = env[i];
	CHECK(parse(env, n, all, sizeof(all)) == parse(mine, m, only, sizeof(only)));
	CHECK(strcmp(all, only) == 0);
out:
	free(mine);
	free(env);
	free(text);
	return 0;
}
