/*
 * test_netshield_conf.c - unit tests for src/runtime/netshield_conf: the
 * network shield's variables parsed into rules (servers over TCP and unix
 * sockets, clients to names, IPv4 and [IPv6] with their TLS settings, the
 * disabled mode that ignores everything else), the limits, and every
 * rejection: each names its variable, and no message ever holds any part
 * of an identity.
 *
 * The PEM blocks are text fixtures (the parser checks structure only):
 * the key's body carries a marker that must never reach a message.
 */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "runtime/netshield_conf.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

/* An array of "NAME=VALUE" literals and its count, as ns_config_parse takes them. */
#define ENV(...) (char *[]){__VA_ARGS__}, sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)

#define P "SCONE_NETWORK_SHIELD"
#define MARKER "S3CRETKEYMATERIAL"
#define KEY_BODY "MC4CAQAwBQYDK2VwBCIEI" MARKER "AAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
#define KEY "-----BEGIN PRIVATE KEY-----\n" KEY_BODY "-----END PRIVATE KEY-----\n"
#define EC_KEY "-----BEGIN EC PRIVATE KEY-----\n" KEY_BODY "-----END EC PRIVATE KEY-----\n"
#define CERT                                                                                                 \
	"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2VydGlmaWNhdGUx\nAAAA==\n-----END "               \
	"CERTIFICATE-----\n"
#define CA "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ0Ex\n-----END CERTIFICATE-----\n"
#define IDENTITY KEY CERT CA

static struct ns_config *parse_ok(char **env, size_t n)
{
	struct ns_config *c = NULL;
	enum scone_err err = ns_config_parse(env, n, &c);

	if (err)
		fail_msg("parse: %s: %s", scone_errname(err), scone_err_detail());
	assert_non_null(c);
	return c;
}

/*
 * A refusal: SCONE_ERR_INVALID, no config, a message that starts with the
 * variable's name and holds phrase, and nothing of an identity.
 */
static void parse_fails(char **env, size_t n, const char *var, const char *phrase)
{
	struct ns_config *c = (struct ns_config *)&c;
	char prefix[128];
	const char *d;

	scone_err_clear();
	assert_int_equal(ns_config_parse(env, n, &c), SCONE_ERR_INVALID);
	assert_null(c);
	d = scone_err_detail();
	snprintf(prefix, sizeof(prefix), "%s: ", var);
	if (strncmp(d, prefix, strlen(prefix)) != 0 || !strstr(d, phrase))
		fail_msg("detail \"%s\" does not start with \"%s\" or lacks \"%s\"", d, prefix, phrase);
	assert_null(strstr(d, MARKER));
	assert_null(strstr(d, "-----"));
}

/* ---------------- valid configurations ---------------- */

TEST(test_servers)
{
	struct ns_config *c = parse_ok(
	    ENV("PATH=/usr/bin", P "=protected", P "_SERVER_10=unprotected",
		P "_SERVER_10_PORT=unix:/run/app.sock", P "_SERVER_2=protected", P "_SERVER_2_PORT=TCP:6379",
		P "_SERVER_2_IDENTITY=" IDENTITY, P "_SERVER_2_CLIENT_AUTH=" CA CA, P "_SERVER_0=refuse",
		P "_SERVER_0_PORT=tcp:22", P "_SERVER_0_CLIENT_AUTH=disabled", "HOME=/root"));

	assert_int_equal(c->mode, NS_PROTECTED);
	assert_int_equal(c->unsupported, NS_PASS);
	assert_int_equal(c->client_count, 0);
	assert_int_equal(c->server_count, 3);
	/* sorted by index */
	assert_int_equal(c->servers[0].index, 0);
	assert_int_equal(c->servers[1].index, 2);
	assert_int_equal(c->servers[2].index, 10);

	assert_int_equal(c->servers[0].action, NS_REFUSE);
	assert_false(c->servers[0].at.is_unix);
	assert_int_equal(c->servers[0].at.port, 22);
	assert_null(c->servers[0].client_ca_pem);
	assert_null(c->servers[0].identity_pem);

	assert_int_equal(c->servers[1].action, NS_PROTECT);
	assert_false(c->servers[1].at.is_unix);
	assert_null(c->servers[1].at.host);
	assert_null(c->servers[1].at.path);
	assert_int_equal(c->servers[1].at.port, 6379);
	assert_string_equal(c->servers[1].identity_pem, IDENTITY);
	assert_string_equal(c->servers[1].client_ca_pem, CA CA);

	assert_int_equal(c->servers[2].action, NS_PASS);
	assert_true(c->servers[2].at.is_unix);
	assert_string_equal(c->servers[2].at.path, "/run/app.sock");
	ns_config_free(c);
}

TEST(test_clients)
{
	struct ns_config *c = parse_ok(ENV(
	    P "=unprotected", P "_UNSUPPORTED_PROTOCOLS=refuse", P "_CLIENT_1=protected",
	    P "_CLIENT_1_DESTINATION=TCP:db.example.com:5432", P "_CLIENT_1_DESTINATION_IP=10.0.0.7,fd00::7",
	    P "_CLIENT_1_SERVER_AUTH=" CA, P "_CLIENT_1_IDENTITY=" CERT EC_KEY,
	    P "_CLIENT_1_SERVER_DNS_NAME=postgres.internal", P "_CLIENT_2=protected",
	    P "_CLIENT_2_DESTINATION=TCP:192.168.1.20:443", P "_CLIENT_2_SERVER_AUTH=disabled",
	    P "_CLIENT_3=refuse", P "_CLIENT_3_DESTINATION=TCP:[2001:db8::1]:8443", P "_CLIENT_4=unprotected",
	    P "_CLIENT_4_DESTINATION=unix:/var/run/docker.sock", P "_CLIENT_5=unprotected",
	    P "_CLIENT_5_DESTINATION=TCP:db.example.com:5433"));

	assert_int_equal(c->mode, NS_UNPROTECTED);
	assert_int_equal(c->unsupported, NS_REFUSE);
	assert_int_equal(c->server_count, 0);
	assert_int_equal(c->client_count, 5);

	const struct ns_client *a = &c->clients[0];
	assert_int_equal(a->index, 1);
	assert_int_equal(a->action, NS_PROTECT);
	assert_false(a->to.is_unix);
	assert_string_equal(a->to.host, "db.example.com");
	assert_int_equal(a->to.port, 5432);
	assert_string_equal(a->dest_ip, "10.0.0.7,fd00::7");
	assert_string_equal(a->server_ca_pem, CA);
	assert_false(a->server_auth_disabled);
	assert_string_equal(a->identity_pem, CERT EC_KEY);
	assert_string_equal(a->dns_name, "postgres.internal");

	const struct ns_client *b = &c->clients[1];
	assert_string_equal(b->to.host, "192.168.1.20");
	assert_int_equal(b->to.port, 443);
	assert_true(b->server_auth_disabled);
	assert_null(b->server_ca_pem);
	assert_null(b->dest_ip);
	assert_null(b->identity_pem);
	assert_null(b->dns_name);

	const struct ns_client *v6 = &c->clients[2];
	assert_int_equal(v6->action, NS_REFUSE);
	assert_string_equal(v6->to.host, "2001:db8::1"); /* without its brackets */
	assert_int_equal(v6->to.port, 8443);
	assert_false(v6->server_auth_disabled);

	const struct ns_client *u = &c->clients[3];
	assert_true(u->to.is_unix);
	assert_string_equal(u->to.path, "/var/run/docker.sock");
	assert_null(u->to.host);

	assert_int_equal(c->clients[4].to.port, 5433); /* same host, other port: another destination */
	ns_config_free(c);
}

TEST(test_disabled_ignores_the_rest)
{
	struct ns_config *c;

	c = parse_ok(ENV("HOME=/root"));
	assert_int_equal(c->mode, NS_DISABLED);
	ns_config_free(c);
	c = parse_ok(NULL, 0);
	assert_int_equal(c->mode, NS_DISABLED);
	ns_config_free(c);
	c = parse_ok(ENV(P "=", P "_SERVER_1_PROT=x", P "_BOGUS=1"));
	assert_int_equal(c->mode, NS_DISABLED);
	ns_config_free(c);
	c = parse_ok(ENV(P "_SERVER_01=whatever", P "=disabled", P "_CLIENT_1=protected",
			 P "_CLIENT_1=protected", P "_SERVER_3_PORT=TCP:0", P "_SERVER_4=protected",
			 P "_SERVER_4_IDENTITY=junk"));
	assert_int_equal(c->mode, NS_DISABLED);
	assert_int_equal(c->server_count, 0);
	assert_int_equal(c->client_count, 0);
	assert_null(c->servers);
	assert_null(c->clients);
	ns_config_free(c);
	ns_config_free(NULL);
}

TEST(test_quiet_inputs)
{
	/* entries without '=', NULL entries, look-alike names and an empty shield are fine */
	char *env[] = {P "_SERVER_1_PROT", NULL, "SCONE_NETWORK_SHIELDX=1", "XSCONE_NETWORK_SHIELD_A=1",
		       P "=protected"};
	struct ns_config *c = parse_ok(env, 5);

	assert_int_equal(c->mode, NS_PROTECTED);
	assert_int_equal(c->server_count + c->client_count, 0);
	ns_config_free(c);

	/* identities: text around blocks, EC parameters, key after the chain */
	c = parse_ok(
	    ENV(P "=protected", P "_SERVER_0=protected", P "_SERVER_0_PORT=TCP:1",
		P "_SERVER_0_IDENTITY=Bag Attributes\n    localKeyID: 01 02\n" CERT
		  "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" EC_KEY,
		P "_SERVER_9999=protected", P "_SERVER_9999_PORT=TCP:65535"));
	assert_int_equal(c->server_count, 2);
	assert_int_equal(c->servers[0].at.port, 1);
	assert_int_equal(c->servers[1].index, 9999);
	assert_int_equal(c->servers[1].at.port, 65535);
	ns_config_free(c);
}

TEST(test_is_setting)
{
	assert_true(ns_is_setting(P));
	assert_true(ns_is_setting(P "_"));
	assert_true(ns_is_setting(P "_SERVER_1_PORT"));
	assert_true(ns_is_setting(P "_ANYTHING"));
	assert_true(ns_is_setting(P "=protected"));
	assert_false(ns_is_setting("SCONE_NETWORK_SHIELDS"));
	assert_false(ns_is_setting("SCONE_NETWORK"));
	assert_false(ns_is_setting("scone_network_shield"));
	assert_false(ns_is_setting("PATH"));
	assert_false(ns_is_setting(""));
	assert_false(ns_is_setting(NULL));
}

/* Limits: 64 servers and 64 clients; values up to 64 KiB. */
TEST(test_limits)
{
	enum { N = 2 + 2 * (NS_MAX_SERVERS + 1) + 3 * (NS_MAX_CLIENTS + 1) };
	char *env[N];
	size_t n = 0;
	struct ns_config *c;

	env[n++] = strdup(P "=protected");
	for (unsigned i = 0; i <= NS_MAX_SERVERS; i++) {
		assert_true(asprintf(&env[n++], P "_SERVER_%u=protected", i * 100) > 0);
		assert_true(asprintf(&env[n++], P "_SERVER_%u_PORT=TCP:%u", i * 100, 1000 + i) > 0);
	}
	for (unsigned i = 0; i <= NS_MAX_CLIENTS; i++) {
		assert_true(asprintf(&env[n++], P "_CLIENT_%u=unprotected", i) > 0);
		assert_true(asprintf(&env[n++], P "_CLIENT_%u_DESTINATION=TCP:h%u:80", i, i) > 0);
	}
	/* the 65th server and client are the last two of each */
	parse_fails(env, n, P "_SERVER_6400", "more than 64 servers");
	c = parse_ok(env, n - 2 * (NS_MAX_CLIENTS + 1) - 2);
	assert_int_equal(c->server_count, NS_MAX_SERVERS);
	ns_config_free(c);
	free(env[1 + 2 * NS_MAX_SERVERS]);
	free(env[2 + 2 * NS_MAX_SERVERS]);
	env[1 + 2 * NS_MAX_SERVERS] = strdup("UNRELATED=1");
	env[2 + 2 * NS_MAX_SERVERS] = strdup("UNRELATED2=1");
	parse_fails(env, n, P "_CLIENT_64", "more than 64 clients");
	c = parse_ok(env, n - 2);
	assert_int_equal(c->server_count, NS_MAX_SERVERS);
	assert_int_equal(c->client_count, NS_MAX_CLIENTS);
	ns_config_free(c);
	for (size_t i = 0; i < n; i++)
		free(env[i]);

	/* 64 KiB of value is the most */
	size_t prefix = strlen(P "_CLIENT_1_DESTINATION_IP=");
	char *big = malloc(prefix + NS_MAX_VALUE_SIZE + 2);
	assert_non_null(big);
	memcpy(big, P "_CLIENT_1_DESTINATION_IP=", prefix);
	memset(big + prefix, 'A', NS_MAX_VALUE_SIZE + 1);
	big[prefix + NS_MAX_VALUE_SIZE + 1] = '\0';
	parse_fails(ENV(P "=protected", P "_CLIENT_1=refuse", P "_CLIENT_1_DESTINATION=TCP:a:1", big),
		    P "_CLIENT_1_DESTINATION_IP", "longer than 65536 bytes");
	big[prefix + NS_MAX_VALUE_SIZE] = '\0';
	parse_fails(ENV(P "=protected", P "_CLIENT_1=refuse", P "_CLIENT_1_DESTINATION=TCP:a:1", big),
		    P "_CLIENT_1_DESTINATION_IP", "must be IP addresses");
	free(big);
}

/* ---------------- rejections ---------------- */

TEST(test_bad_mode)
{
	parse_fails(ENV(P "=on"), P, "must be disabled, unprotected or protected (not \"on\")");
	parse_fails(ENV(P "=Protected"), P, "must be disabled");
	parse_fails(ENV(P "=protected", "A=1", P "=protected"), P, "set twice");
	parse_fails(ENV(P "=disabled", P "=disabled"), P, "set twice");
	/* a quoted value is cut at 40 bytes and printable */
	parse_fails(ENV(P "=protected\nINJECTED: line 0123456789012345678901234567890123456789"), P,
		    "(not \"protected?INJECTED: line 012345678901234...\")");
}

TEST(test_bad_names)
{
	parse_fails(
	    ENV(P "=protected", P "_SERVER_1=protected", P "_SERVER_1_PORT=TCP:1", P "_SERVER_1_PROT=x"),
	    P "_SERVER_1_PROT", "unknown variable (a SERVER takes _PORT, _IDENTITY and _CLIENT_AUTH)");
	parse_fails(ENV(P "=protected", P "_CLIENT_1_PORT=TCP:1"), P "_CLIENT_1_PORT", "unknown variable");
	parse_fails(ENV(P "=protected", P "_SERVERS=1"), P "_SERVERS", "unknown variable");
	parse_fails(ENV(P "=protected", P "_=1"), P "_", "unknown variable");
	parse_fails(ENV(P "=protected", P "_MODE=1"), P "_MODE", "unknown variable");
	parse_fails(ENV(P "=protected", P "_SERVER_=1"), P "_SERVER_", "unknown variable");
	parse_fails(ENV(P "=protected", P "_SERVER_x=1"), P "_SERVER_x", "<n> is 0 to 9999");
	parse_fails(ENV(P "=protected", P "_SERVER_1x=1"), P "_SERVER_1x", "unknown variable");
	parse_fails(ENV(P "=protected", P "_SERVER_1_=1"), P "_SERVER_1_", "unknown variable");
	parse_fails(ENV(P "=protected", P "_CLIENT_01=refuse"), P "_CLIENT_01",
		    "leading zero (write CLIENT_1)");
	parse_fails(ENV(P "=protected", P "_CLIENT_00=refuse"), P "_CLIENT_00",
		    "leading zero (write CLIENT_0)");
	parse_fails(ENV(P "=protected", P "_CLIENT_10000=refuse"), P "_CLIENT_10000", "above 9999");
	parse_fails(ENV(P "=protected", P "_unsupported_protocols=refuse"), P "_unsupported_protocols",
		    "unknown variable");
	/* a long name is cut in the message */
	parse_fails(ENV(P "=protected",
			P "_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX=1"),
		    P "_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX...", "unknown variable");
}

TEST(test_suffix_without_base)
{
	parse_fails(ENV(P "=protected", P "_SERVER_3_PORT=TCP:80"), P "_SERVER_3_PORT",
		    "is set but " P "_SERVER_3 is not");
	parse_fails(ENV(P "=protected", P "_SERVER_2=protected", P "_SERVER_2_PORT=TCP:80",
			P "_SERVER_3_IDENTITY=" IDENTITY),
		    P "_SERVER_3_IDENTITY", "is set but " P "_SERVER_3 is not");
	parse_fails(ENV(P "=protected", P "_CLIENT_7_SERVER_AUTH=disabled", P "_SERVER_7=refuse",
			P "_SERVER_7_PORT=TCP:7"),
		    P "_CLIENT_7_SERVER_AUTH", "is set but " P "_CLIENT_7 is not");
}

TEST(test_duplicates)
{
	parse_fails(
	    ENV(P "=protected", P "_SERVER_1=refuse", P "_SERVER_1_PORT=TCP:80", P "_SERVER_1_PORT=TCP:80"),
	    P "_SERVER_1_PORT", "set twice");
	parse_fails(ENV(P "=protected", P "_SERVER_1_IDENTITY=" IDENTITY, P "_SERVER_1=refuse",
			P "_SERVER_1_PORT=TCP:80", P "_SERVER_1_IDENTITY=" IDENTITY),
		    P "_SERVER_1_IDENTITY", "set twice");
	parse_fails(ENV(P "=protected", P "_UNSUPPORTED_PROTOCOLS=refuse", P "_UNSUPPORTED_PROTOCOLS=refuse"),
		    P "_UNSUPPORTED_PROTOCOLS", "set twice");
	parse_fails(ENV(P "=protected", P "_SERVER_1=refuse", P "_SERVER_1_PORT=TCP:80",
			P "_SERVER_2=protected", P "_SERVER_2_PORT=TCP:80"),
		    P "_SERVER_2_PORT", "the same port as " P "_SERVER_1_PORT");
	parse_fails(ENV(P "=protected", P "_SERVER_1=refuse", P "_SERVER_1_PORT=unix:/s",
			P "_SERVER_2=protected", P "_SERVER_2_PORT=UNIX:/s"),
		    P "_SERVER_2_PORT", "the same path as " P "_SERVER_1_PORT");
	parse_fails(ENV(P "=protected", P "_CLIENT_1=refuse", P "_CLIENT_1_DESTINATION=TCP:Db:80",
			P "_CLIENT_2=refuse", P "_CLIENT_2_DESTINATION=TCP:dB:80"),
		    P "_CLIENT_2_DESTINATION", "the same destination as " P "_CLIENT_1_DESTINATION");
}

TEST(test_bad_actions)
{
	parse_fails(ENV(P "=protected", P "_SERVER_1=tls", P "_SERVER_1_PORT=TCP:1"), P "_SERVER_1",
		    "must be protected, unprotected or refuse (not \"tls\")");
	parse_fails(ENV(P "=protected", P "_CLIENT_1=", P "_CLIENT_1_DESTINATION=TCP:a:1"), P "_CLIENT_1",
		    "must be protected, unprotected or refuse");
	parse_fails(ENV(P "=protected", P "_UNSUPPORTED_PROTOCOLS=protected"), P "_UNSUPPORTED_PROTOCOLS",
		    "must be unprotected or refuse");
}

TEST(test_bad_server_ports)
{
	static const char *const bad[] = {
	    P "_SERVER_1_PORT=TCP:0",	P "_SERVER_1_PORT=TCP:65536",
	    P "_SERVER_1_PORT=TCP:",	P "_SERVER_1_PORT=TCP:80x",
	    P "_SERVER_1_PORT=TCP:-1",	P "_SERVER_1_PORT=TCP:+80",
	    P "_SERVER_1_PORT=TCP: 80", P "_SERVER_1_PORT=TCP:0.0.0.0:80",
	    P "_SERVER_1_PORT=UDP:53",	P "_SERVER_1_PORT=80",
	    P "_SERVER_1_PORT=",	P "_SERVER_1_PORT=TCP:1000000",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(ENV(P "=protected", P "_SERVER_1=protected", (char *)bad[i]), P "_SERVER_1_PORT",
			    "must be TCP:<port 1-65535> or unix:<absolute path>");
	parse_fails(ENV(P "=protected", P "_SERVER_1=protected"), P "_SERVER_1", "needs " P "_SERVER_1_PORT");
	parse_fails(ENV(P "=protected", P "_SERVER_1=protected", P "_SERVER_1_PORT=unix:run/a.sock"),
		    P "_SERVER_1_PORT", "absolute path");
	parse_fails(ENV(P "=protected", P "_SERVER_1=protected", P "_SERVER_1_PORT=unix:"),
		    P "_SERVER_1_PORT", "absolute path");

	char path[200];
	size_t pre = strlen(P "_SERVER_1_PORT=unix:");
	memset(path, 'p', sizeof(path));
	memcpy(path, P "_SERVER_1_PORT=unix:/", pre + 1);
	path[pre + 107] = '\0'; /* 107 bytes of path: fits */
	struct ns_config *c = parse_ok(ENV(P "=protected", P "_SERVER_1=protected", path));
	assert_int_equal(strlen(c->servers[0].at.path), 107);
	ns_config_free(c);
	path[pre + 107] = 'p';
	path[pre + 108] = '\0';
	parse_fails(ENV(P "=protected", P "_SERVER_1=protected", path), P "_SERVER_1_PORT",
		    "path is 108 bytes, at most 107 fit");
}

TEST(test_bad_destinations)
{
	static const struct {
		const char *env, *phrase;
	} bad[] = {
	    {P "_CLIENT_1_DESTINATION=db:5432", "must be TCP:<host>:<port> or unix:<absolute path>"},
	    {P "_CLIENT_1_DESTINATION=TCP:5432", "needs TCP:<host>:<port>"},
	    {P "_CLIENT_1_DESTINATION=TCP::5432", "not a host name"},
	    {P "_CLIENT_1_DESTINATION=TCP:db:", "port must be 1 to 65535"},
	    {P "_CLIENT_1_DESTINATION=TCP:db:0", "port must be 1 to 65535"},
	    {P "_CLIENT_1_DESTINATION=TCP:db:70000", "port must be 1 to 65535"},
	    {P "_CLIENT_1_DESTINATION=TCP:2001:db8::1:443", "IPv6 address goes in brackets"},
	    {P "_CLIENT_1_DESTINATION=TCP:[2001:db8::1]443", "needs :<port> after the address"},
	    {P "_CLIENT_1_DESTINATION=TCP:[2001:db8::1:443", "must hold an IPv6 address"},
	    {P "_CLIENT_1_DESTINATION=TCP:[10.0.0.1]:443", "must hold an IPv6 address"},
	    {P "_CLIENT_1_DESTINATION=TCP:[db]:443", "must hold an IPv6 address"},
	    {P "_CLIENT_1_DESTINATION=TCP:db..example:443", "not a host name"},
	    {P "_CLIENT_1_DESTINATION=TCP:db/x:443", "not a host name"},
	    {P "_CLIENT_1_DESTINATION=TCP:10.0.0.256:443", "not a host name"},
	    {P "_CLIENT_1_DESTINATION=TCP:db.:443", "not a host name"},
	    {P "_CLIENT_1_DESTINATION=unix:docker.sock", "absolute path"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(ENV(P "=protected", P "_CLIENT_1=unprotected", (char *)bad[i].env),
			    P "_CLIENT_1_DESTINATION", bad[i].phrase);
	parse_fails(ENV(P "=protected", P "_CLIENT_1=unprotected"), P "_CLIENT_1",
		    "needs " P "_CLIENT_1_DESTINATION");
}

TEST(test_bad_destination_ips)
{
	static const char *const bad[] = {
	    P "_CLIENT_1_DESTINATION_IP=",	    P "_CLIENT_1_DESTINATION_IP=db.example.com",
	    P "_CLIENT_1_DESTINATION_IP=10.0.0.1,", P "_CLIENT_1_DESTINATION_IP=10.0.0.1, 10.0.0.2",
	    P "_CLIENT_1_DESTINATION_IP=[fd00::1]", P "_CLIENT_1_DESTINATION_IP=10.0.0.1:80",
	    P "_CLIENT_1_DESTINATION_IP=,10.0.0.1", P "_CLIENT_1_DESTINATION_IP=fe80::1%eth0",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(ENV(P "=protected", P "_CLIENT_1=unprotected", P "_CLIENT_1_DESTINATION=TCP:db:1",
				(char *)bad[i]),
			    P "_CLIENT_1_DESTINATION_IP", "must be IP addresses, comma separated");
	parse_fails(ENV(P "=protected", P "_CLIENT_1=unprotected", P "_CLIENT_1_DESTINATION=unix:/a",
			P "_CLIENT_1_DESTINATION_IP=10.0.0.1"),
		    P "_CLIENT_1_DESTINATION_IP", "is for TCP destinations");
}

TEST(test_protected_client_needs_server_auth)
{
	parse_fails(
	    ENV(P "=protected", P "_CLIENT_4=protected", P "_CLIENT_4_DESTINATION=TCP:db:5432",
		P "_CLIENT_4_IDENTITY=" IDENTITY),
	    P "_CLIENT_4",
	    P "_CLIENT_4_SERVER_AUTH is not set: give the CA certificates (PEM) that verify the server, "
	      "or disabled");
	/* not for the others */
	struct ns_config *c =
	    parse_ok(ENV(P "=protected", P "_CLIENT_4=unprotected", P "_CLIENT_4_DESTINATION=TCP:db:5432"));
	assert_false(c->clients[0].server_auth_disabled);
	assert_null(c->clients[0].server_ca_pem);
	ns_config_free(c);
}

TEST(test_bad_ca)
{
	static const char *const values[] = {
	    "",
	    "Disabled",
	    "/etc/ssl/certs/ca.pem",
	    "-----BEGIN CERTIFICATE-----\nMIIB\n",
	    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE----\n",
	    "-----BEGIN CERTIFICATE-----\nMI*B\n-----END CERTIFICATE-----\n",
	    "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
	};
	char var[256];

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		snprintf(var, sizeof(var), P "_SERVER_5_CLIENT_AUTH=%s", values[i]);
		parse_fails(ENV(P "=protected", P "_SERVER_5=protected", P "_SERVER_5_PORT=TCP:5", var),
			    P "_SERVER_5_CLIENT_AUTH", "must be CA certificates (PEM");
		snprintf(var, sizeof(var), P "_CLIENT_5_SERVER_AUTH=%s", values[i]);
		parse_fails(
		    ENV(P "=protected", P "_CLIENT_5=protected", P "_CLIENT_5_DESTINATION=TCP:a:5", var),
		    P "_CLIENT_5_SERVER_AUTH", "or disabled");
	}
	/* a key where CA certificates go: refused, and not echoed */
	parse_fails(ENV(P "=protected", P "_CLIENT_5=protected", P "_CLIENT_5_DESTINATION=TCP:a:5",
			P "_CLIENT_5_SERVER_AUTH=" CA KEY),
		    P "_CLIENT_5_SERVER_AUTH", "holds a private key");
}

TEST(test_bad_identities)
{
	static const struct {
		const char *value, *phrase;
	} bad[] = {
	    {CERT, "must hold one private key (PEM), it holds 0"},
	    {KEY, "holds no certificate"},
	    {KEY EC_KEY CERT, "must hold one private key (PEM), it holds 2"},
	    {"", "must hold one private key"},
	    {"disabled", "must hold one private key"},
	    {MARKER, "must hold one private key"},
	    {KEY "-----BEGIN CERTIFICATE-----\n" MARKER "\n", "not well-formed PEM"},
	    {"-----BEGIN PRIVATE KEY-----\n" KEY_BODY "-----END RSA PRIVATE KEY-----\n" CERT,
	     "not well-formed PEM"},
	    {"-----BEGIN PRIVATE KEY-----\n" MARKER "!\n-----END PRIVATE KEY-----\n" CERT,
	     "not well-formed PEM"},
	    {"-----BEGIN " MARKER "\n" CERT, "not well-formed PEM"},
	    {"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" KEY_BODY "-----END ENCRYPTED PRIVATE KEY-----\n" CERT,
	     "encrypted private key"},
	    {"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n" KEY_BODY
	     "-----END RSA PRIVATE KEY-----\n" CERT,
	     "encrypted private key"},
	};
	static char var[1024];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(var, sizeof(var), P "_SERVER_8_IDENTITY=%s", bad[i].value);
		parse_fails(ENV(P "=protected", P "_SERVER_8=protected", P "_SERVER_8_PORT=TCP:8", var),
			    P "_SERVER_8_IDENTITY", bad[i].phrase);
		snprintf(var, sizeof(var), P "_CLIENT_8_IDENTITY=%s", bad[i].value);
		parse_fails(ENV(P "=protected", P "_CLIENT_8=protected", P "_CLIENT_8_DESTINATION=TCP:a:8",
				P "_CLIENT_8_SERVER_AUTH=disabled", var),
			    P "_CLIENT_8_IDENTITY", bad[i].phrase);
	}
}

/* An identity never reaches a message, whichever error the parse ends with. */
TEST(test_identity_never_echoed)
{
	parse_fails(ENV(P "=protected", P "_SERVER_1=protected", P "_SERVER_1_PORT=TCP:1",
			P "_SERVER_1_IDENTITY=" IDENTITY, P "_SERVER_1_IDENTITY=" MARKER),
		    P "_SERVER_1_IDENTITY", "set twice");
	parse_fails(ENV(P "=protected", P "_SERVER_1=protected", P "_SERVER_1_IDENTITY=" IDENTITY),
		    P "_SERVER_1", "needs");
	parse_fails(ENV(P "=protected", P "_SERVER_1_IDENTITY=" MARKER), P "_SERVER_1_IDENTITY",
		    "is set but");
}

TEST(test_bad_dns_name)
{
	static const char *const bad[] = {
	    P "_CLIENT_1_SERVER_DNS_NAME=",	   P "_CLIENT_1_SERVER_DNS_NAME=bad name",
	    P "_CLIENT_1_SERVER_DNS_NAME=a..b",	   P "_CLIENT_1_SERVER_DNS_NAME=https://db",
	    P "_CLIENT_1_SERVER_DNS_NAME=db:5432",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_fails(ENV(P "=protected", P "_CLIENT_1=protected", P "_CLIENT_1_DESTINATION=TCP:db:1",
				P "_CLIENT_1_SERVER_AUTH=disabled", (char *)bad[i]),
			    P "_CLIENT_1_SERVER_DNS_NAME", "is not a host name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_servers),
	    cmocka_unit_test(test_clients),
	    cmocka_unit_test(test_disabled_ignores_the_rest),
	    cmocka_unit_test(test_quiet_inputs),
	    cmocka_unit_test(test_is_setting),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_bad_mode),
	    cmocka_unit_test(test_bad_names),
	    cmocka_unit_test(test_suffix_without_base),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_bad_actions),
	    cmocka_unit_test(test_bad_server_ports),
	    cmocka_unit_test(test_bad_destinations),
	    cmocka_unit_test(test_bad_destination_ips),
	    cmocka_unit_test(test_protected_client_needs_server_auth),
	    cmocka_unit_test(test_bad_ca),
	    cmocka_unit_test(test_bad_identities),
	    cmocka_unit_test(test_identity_never_echoed),
	    cmocka_unit_test(test_bad_dns_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
