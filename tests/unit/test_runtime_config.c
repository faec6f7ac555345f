/*
 * test_runtime_config.c - unit tests for src/runtime/cas_client: parsing a
 * realistic service configuration (docs/api.md), every rejection (each
 * named by its field), and end to end against a real scone-cas: create a
 * mode-none session as its owner, fetch the service's configuration with a
 * fresh runtime key, report a volume tag (and see a stale report refused).
 *
 * The end-to-end test runs $SCONE_CAS_BIN (default build/bin/scone-cas) on
 * a free port in a temporary state directory; it is skipped when the
 * binary is missing.
 */
#include "helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/tls.h"
#include "runtime/cas_client.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char config_json[] =
    "{\"config_id\": \"app/web\", \"session_hash\": \"3f2a9c\", \"mode\": \"none\", \"pwd\": \"/srv\",\n"
    " \"command\": [\"python3\", \"/app/main.py\", \"@@1\"],\n"
    " \"environment\": {\"DB_PASSWORD\": \"s3cr\\u00e9t\", \"EMPTY\": \"\"},\n"
    " \"injection_files\": [{\"path\": \"/etc/app.conf\", \"mode\": 256, \"content_base64\": "
    "\"aGVsbG8Kd29ybGQ=\"},\n"
    "                     {\"path\": \"/etc/bin\", \"mode\": 384, \"content_base64\": \"AAH/\"},\n"
    "                     {\"path\": \"/etc/empty\", \"mode\": 0, \"content_base64\": \"\"}],\n"
    " \"volumes\": [{\"name\": \"data\", \"path\": \"/data\", \"session\": \"app\", \"volume\": \"data\",\n"
    "              \"key\": \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\", \"tag\": "
    "\"\",\n"
    "              \"tag_tracked\": true},\n"
    "             {\"name\": \"shared\", \"path\": \"/shared\", \"session\": \"lib\", \"volume\": \"pool\",\n"
    "              \"key\": \"FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100\",\n"
    "              \"tag\": \"00112233445566778899aabbccddeeff\", \"tag_tracked\": false}],\n"
    " \"fspf\": {\"path\": \"/fspf.pb\", \"key\": "
    "\"1111111111111111111111111111111111111111111111111111111111111111\",\n"
    "          \"tag\": \"22222222222222222222222222222222\"},\n"
    " \"future_field\": {\"anything\": [1, 2]},\n"
    " \"instance_token\": \"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\"}\n";

static void parse_ok(const char *text, struct scone_runtime_config **cfg)
{
	enum scone_err err = scone_runtime_config_parse(text, strlen(text), cfg);

	if (err)
		fail_msg("parse: %s: %s", scone_errname(err), scone_err_detail());
}

TEST(test_parse_realistic)
{
	struct scone_runtime_config *cfg;
	const struct scone_rt_volume *v;
	uint8_t tok[32];

	parse_ok(config_json, &cfg);
	assert_string_equal(cfg->config_id, "app/web");
	assert_string_equal(cfg->session_hash, "3f2a9c");
	assert_string_equal(cfg->mode, "none");
	assert_string_equal(cfg->pwd, "/srv");
	assert_int_equal(cfg->argc, 3);
	assert_string_equal(cfg->argv[0], "python3");
	assert_string_equal(cfg->argv[2], "@@1");
	assert_null(cfg->argv[3]);
	assert_int_equal(cfg->env_count, 2);
	assert_string_equal(cfg->env[0].name, "DB_PASSWORD");
	assert_string_equal(cfg->env[0].value, "s3cr\xc3\xa9t");
	assert_string_equal(cfg->env[1].value, "");
	assert_int_equal(cfg->file_count, 3);
	assert_int_equal(cfg->files[0].mode, 0400);
	assert_int_equal(cfg->files[0].content_size, 11);
	assert_memory_equal(cfg->files[0].content, "hello\nworld", 11);
	assert_int_equal(cfg->files[1].content_size, 3);
	assert_memory_equal(cfg->files[1].content, "\x00\x01\xff", 3);
	assert_int_equal(cfg->files[2].content_size, 0);
	assert_int_equal(cfg->volume_count, 2);
	v = scone_runtime_config_volume(cfg, "data");
	assert_non_null(v);
	assert_false(v->initialised);
	assert_true(v->tag_tracked);
	assert_int_equal(v->key[31], 0x1f);
	v = scone_runtime_config_volume(cfg, "shared");
	assert_string_equal(v->session, "lib");
	assert_string_equal(v->volume, "pool");
	assert_true(v->initialised);
	assert_false(v->tag_tracked);
	assert_int_equal(v->key[0], 0xff);
	assert_int_equal(v->tag[15], 0xff);
	assert_null(scone_runtime_config_volume(cfg, "nope"));
	assert_non_null(cfg->fspf);
	assert_string_equal(cfg->fspf->path, "/fspf.pb");
	assert_true(cfg->fspf->has_key && cfg->fspf->has_tag);
	assert_int_equal(cfg->fspf->tag[0], 0x22);
	assert_ok(scone_hex_decode(tok, 32,
				   "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf", "t"));
	assert_memory_equal(cfg->instance_token, tok, 32);
	scone_runtime_config_free(cfg);
	scone_runtime_config_free(NULL);
}

/* config_json with the first occurrence of from replaced by to. */
static char *variant(const char *from, const char *to)
{
	const char *at = strstr(config_json, from);
	size_t head, n;
	char *s;

	if (!at)
		fail_msg("variant: '%s' not in the sample", from);
	head = (size_t)(at - config_json);
	n = strlen(config_json) - strlen(from) + strlen(to) + 1;
	s = malloc(n);
	assert_non_null(s);
	snprintf(s, n, "%.*s%s%s", (int)head, config_json, to, at + strlen(from));
	return s;
}

TEST(test_parse_optional_fspf)
{
	static const char *const fspfs[] = {"\"fspf\": null, \"x\": {", "\"x\": {",
					    "\"fspf\": {\"path\": \"/f\", \"key\": null}, \"x\": {"};

	for (size_t i = 0; i < N_ELEMS(fspfs); i++) {
		struct scone_runtime_config *cfg;
		char *s = variant("\"fspf\": {", fspfs[i]);
		parse_ok(s, &cfg);
		if (i < 2) {
			assert_null(cfg->fspf);
		} else {
			assert_non_null(cfg->fspf);
			assert_false(cfg->fspf->has_key || cfg->fspf->has_tag);
		}
		scone_runtime_config_free(cfg);
		free(s);
	}
}

TEST(test_parse_rejections)
{
	static const struct {
		const char *from, *to, *detail;
	} cases[] = {
	    {"{\"config_id\"", "[{\"config_id\"", "json: line 17, column 1: unexpected end of input"},
	    {"\"config_id\": \"app/web\",", "", "\"config_id\" is missing"},
	    {"\"config_id\": \"app/web\"", "\"config_id\": 7", "\"config_id\" must be a string, not number"},
	    {"\"session_hash\": \"3f2a9c\"", "\"session_hash\": null",
	     "\"session_hash\" must be a string, not null"},
	    {"\"mode\": \"none\",", "", "\"mode\" is missing"},
	    {"\"pwd\": \"/srv\"", "\"pwd\": [\"/srv\"]", "\"pwd\" must be a string, not array"},
	    {"\"command\": [", "\"command\": {\"a\": 1}, \"y\": [",
	     "\"command\" must be an array of strings, not object"},
	    {"\"@@1\"", "1", "\"command[2]\" must be a string, not number"},
	    {"\"environment\": {", "\"environment\": [], \"y\": {",
	     "\"environment\" must be an object, not array"},
	    {"\"EMPTY\": \"\"", "\"EMPTY\": false", "\"environment.EMPTY\" must be a string, not boolean"},
	    {"\"EMPTY\"", "\"A=B\"", "\"environment.A=B\": a variable name must be non-empty"},
	    {"\"EMPTY\"", "\"\"", "\"environment.\": a variable name must be non-empty"},
	    {"\"injection_files\": [", "\"injection_files\": null, \"y\": [",
	     "\"injection_files\" must be an array"},
	    {"{\"path\": \"/etc/app.conf\"", "7, {\"path\": \"/etc/app.conf\"",
	     "\"injection_files[0]\" must be an object"},
	    {"\"path\": \"/etc/bin\"", "\"p\": \"/etc/bin\"", "\"injection_files[1].path\" is missing"},
	    {"\"mode\": 256", "\"mode\": 4096", "\"injection_files[0].mode\" must be an integer file mode"},
	    {"\"mode\": 256", "\"mode\": -1", "\"injection_files[0].mode\" must be an integer file mode"},
	    {"\"mode\": 256", "\"mode\": 1.5", "\"injection_files[0].mode\" must be an integer file mode"},
	    {"\"mode\": 256", "\"mode\": \"256\"",
	     "\"injection_files[0].mode\" must be an integer file mode"},
	    {"\"AAH/\"", "\"AAH\"",
	     "\"injection_files[1].content_base64\": not padded base64 (3 characters)"},
	    {"\"AAH/\"", "\"AA=/\"", "\"injection_files[1].content_base64\": not base64 at character 3"},
	    {"\"AAH/\"", "\"A===\"", "not padded base64 (4 characters)"},
	    {"\"AAH/\"", "\"AAH/AA=A\"", "not base64 at character 7"},
	    {"\"AAH/\"", "\"AA==AAH/\"", "not base64 at character 4"},
	    {"\"AAH/\"", "\"AAH-\"", "not base64 at character 3"},
	    {"\"content_base64\": \"\"", "\"content_base64\": 0",
	     "\"injection_files[2].content_base64\" must be a string"},
	    {"\"volumes\": [", "\"volumes\": {}, \"y\": [", "\"volumes\" must be an array, not object"},
	    {"{\"name\": \"data\"", "[], {\"name\": \"data\"", "\"volumes[0]\" must be an object, not array"},
	    {"\"name\": \"data\",", "", "\"volumes[0].name\" is missing"},
	    {"\"session\": \"lib\"", "\"session\": 1", "\"volumes[1].session\" must be a string"},
	    {"\"volume\": \"pool\"", "\"volume\": {}", "\"volumes[1].volume\" must be a string"},
	    {"\"key\": \"0001", "\"key\": \"01", "\"volumes[0].key\" must be 64 hex digits"},
	    {"\"key\": \"0001", "\"key\": \"zz01", "\"volumes[0].key\" must be 64 hex digits"},
	    {"\"tag\": \"\"", "\"tag\": \"abc\"", "\"volumes[0].tag\" must be 32 hex digits or empty"},
	    {"\"tag\": \"\"", "\"tag\": null", "\"volumes[0].tag\" must be a string, not null"},
	    {"\"tag_tracked\": true", "\"tag_tracked\": 1",
	     "\"volumes[0].tag_tracked\" must be a boolean, not number"},
	    {"\"tag_tracked\": false", "\"x\": false", "\"volumes[1].tag_tracked\" is missing"},
	    {"\"fspf\": {", "\"fspf\": [], \"y\": {", "\"fspf\" must be an object or null, not array"},
	    {"\"path\": \"/fspf.pb\"", "\"path\": null", "\"fspf.path\" must be a string"},
	    {"\"key\": \"1111", "\"key\": \"11", "\"fspf.key\" must be 64 hex digits"},
	    {"\"tag\": \"2222", "\"tag\": \"22222", "\"fspf.tag\" must be 32 hex digits"},
	    {"\"tag\": \"2222", "\"tag\": \"", "\"fspf.tag\" must be 32 hex digits"},
	    {"\"instance_token\": \"a0", "\"instance_token\": \"",
	     "\"instance_token\" must be 64 hex digits"},
	    {",\n \"instance_token\"", ", \"t\"", "\"instance_token\" is missing"},
	    {"\"mode\": \"none\"", "\"mode\": \"none\", \"mode\": \"hw\"",
	     "line 1, column 76: duplicate key \"mode\""},
	    {"\"s3cr\\u00e9t\"", "\"s3cr\\u0000t\"", "\\u0000 is not allowed"},
	};

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct scone_runtime_config *cfg = (struct scone_runtime_config *)1;
		char *s = variant(cases[i].from, cases[i].to);
		enum scone_err err = scone_runtime_config_parse(s, strlen(s), &cfg);
		if (err == SCONE_ERR_OK || !strstr(scone_err_detail(), cases[i].detail))
			fail_msg("case %zu: got %s \"%s\", want \"%s\"", i, scone_errname(err),
				 scone_err_detail(), cases[i].detail);
		assert_null(cfg);
		free(s);
	}
	/* Not JSON at all, and not an object. */
	struct scone_runtime_config *cfg;
	assert_int_equal(scone_runtime_config_parse("", 0, &cfg), SCONE_ERR_MALFORMED);
	assert_int_equal(scone_runtime_config_parse("[]", 2, &cfg), SCONE_ERR_MALFORMED);
	assert_non_null(strstr(scone_err_detail(), "\"(document)\" must be an object, not array"));
}

/* Every truncation of the sample is refused without leaks. */
TEST(test_parse_truncated)
{
	size_t n = strlen(config_json);

	for (size_t len = 0; len + 2 < n; len++) {
		struct scone_runtime_config *cfg;
		char *s = malloc(len ? len : 1);
		assert_non_null(s);
		memcpy(s, config_json, len);
		assert_int_equal(scone_runtime_config_parse(s, len, &cfg), SCONE_ERR_MALFORMED);
		free(s);
	}
}

/* ---------------- end to end against scone-cas ---------------- */

struct cas_proc {
	pid_t pid;
	char dir[64];
	char addr[32];
	uint8_t pin[32];
};

static uint16_t free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void read_pin(struct cas_proc *c)
{
	char path[128];
	FILE *f;
	X509 *cert;

	snprintf(path, sizeof(path), "%s/cas.crt", c->dir);
	f = fopen(path, "r");
	assert_non_null(f);
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(cert);
	assert_ok(scone_cert_sha256(cert, c->pin));
	X509_free(cert);
}

/* Returns false (test skipped) when there is no scone-cas binary. */
/* A real scone-cas (make builds it before the unit tests): its absence fails the test, never skips it. */
static void cas_start(struct cas_proc *c)
{
	const char *bin = getenv("SCONE_CAS_BIN") ? getenv("SCONE_CAS_BIN") : "build/bin/scone-cas";
	uint8_t seen[32];
	int ok = 0;

	if (access(bin, X_OK) != 0)
		fail_msg("%s: not built (make all; or set SCONE_CAS_BIN)", bin);
	snprintf(c->dir, sizeof(c->dir), "/tmp/scone-rtcfg.XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->addr, sizeof(c->addr), "127.0.0.1:%u", free_port());
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(bin, bin, "--listen", c->addr, "--state-dir", c->dir, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !ok; i++) {
		char host[64];
		uint16_t port;
		sleep_ms(50);
		ok = scone_hostport_parse(c->addr, 0, host, sizeof(host), &port) == SCONE_ERR_OK &&
		     scone_https_probe(host, port, 1000, seen) == SCONE_ERR_OK;
	}
	assert_true(ok);
	read_pin(c);
	assert_memory_equal(seen, c->pin, 32);
}

static void cas_stop(struct cas_proc *c)
{
	char cmd[160];
	int status;

	kill(c->pid, SIGTERM);
	waitpid(c->pid, &status, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
	assert_int_equal(system(cmd), 0);
}

static const char session_yaml[] = "name: rtcfg\n"
				   "version: \"0.3\"\n"
				   "security:\n"
				   "  attestation:\n"
				   "    mode: none\n"
				   "services:\n"
				   "  - name: web\n"
				   "    image_name: web\n"
				   "    command: /bin/web --port 80\n"
				   "    pwd: /srv\n"
				   "    environment:\n"
				   "      TOKEN: $$SCONE::token$$\n"
				   "images:\n"
				   "  - name: web\n"
				   "    volumes:\n"
				   "      - name: data\n"
				   "        path: /data\n"
				   "volumes:\n"
				   "  - name: data\n"
				   "secrets:\n"
				   "  - name: token\n"
				   "    kind: ascii\n"
				   "    size: 16\n";

static void create_session(const struct cas_proc *c)
{
	struct scone_identity owner = {0};
	struct scone_https_opts o = {.pin_sha256 = c->pin, .client = &owner};
	struct scone_https_response resp = {0};
	char host[64];

	assert_ok(scone_identity_new("owner", 1, &owner));
	assert_ok(scone_hostport_parse(c->addr, 0, host, sizeof(host), &o.port));
	o.host = host;
	assert_ok(scone_https_request(&o, "POST", "/v1/sessions", "application/yaml", session_yaml,
				      strlen(session_yaml), &resp));
	if (resp.status != 200 && resp.status != 201)
		fail_msg("create session: HTTP %d: %s", resp.status, resp.body);
	scone_https_response_free(&resp);
	scone_identity_free(&owner);
}

static void check_fetched(const struct scone_runtime_config *cfg)
{
	const struct scone_rt_volume *v;

	assert_string_equal(cfg->config_id, "rtcfg/web");
	assert_string_equal(cfg->mode, "none");
	assert_string_equal(cfg->pwd, "/srv");
	assert_int_equal(cfg->argc, 3);
	assert_string_equal(cfg->argv[2], "80");
	assert_int_equal(cfg->env_count, 1);
	assert_int_equal(strlen(cfg->env[0].value), 16);
	v = scone_runtime_config_volume(cfg, "data");
	assert_non_null(v);
	assert_false(v->initialised);
	assert_true(v->tag_tracked);
	assert_null(cfg->fspf);
}

TEST(test_fetch_end_to_end)
{
	struct cas_proc c;
	struct scone_identity rt = {0}, other = {0};
	struct scone_runtime_config *cfg = NULL, *again = NULL;
	uint8_t tag[16], tag2[16], bad_pin[32] = {0};

	cas_start(&c);
	create_session(&c);
	assert_ok(scone_identity_new("runtime", 1, &rt));
	assert_ok(scone_runtime_fetch_config(c.addr, c.pin, "rtcfg/web", &rt, NULL, &cfg));
	check_fetched(cfg);
	/* Unknown service: CAS's message travels in the detail. */
	assert_int_equal(scone_runtime_fetch_config(c.addr, c.pin, "rtcfg/nope", &rt, NULL, &again),
			 SCONE_ERR_NOT_FOUND);
	assert_non_null(strstr(scone_err_detail(), "HTTP 404 NOT_FOUND"));
	assert_non_null(strstr(scone_err_detail(), "nope"));
	assert_null(again);
	assert_int_equal(scone_runtime_fetch_config(c.addr, bad_pin, "rtcfg/web", &rt, NULL, &again),
			 SCONE_ERR_UNTRUSTED);
	assert_int_equal(scone_runtime_fetch_config(c.addr, c.pin, "noslash", &rt, NULL, &again),
			 SCONE_ERR_INVALID);
	/* Report a tag; a stale report conflicts; the next fetch sees the tag. */
	memset(tag, 0x5a, sizeof(tag));
	memset(tag2, 0x6b, sizeof(tag2));
	assert_ok(scone_runtime_report_tag(c.addr, c.pin, &rt, cfg, "data", NULL, tag));
	assert_int_equal(scone_runtime_report_tag(c.addr, c.pin, &rt, cfg, "data", NULL, tag2),
			 SCONE_ERR_CONFLICT);
	assert_non_null(strstr(scone_err_detail(), "HTTP 409"));
	/* Another key cannot use this instance's token. */
	assert_ok(scone_identity_new("other", 1, &other));
	assert_int_equal(scone_runtime_report_tag(c.addr, c.pin, &other, cfg, "data", tag, tag2),
			 SCONE_ERR_PERMISSION);
	assert_ok(scone_runtime_report_tag(c.addr, c.pin, &rt, cfg, "data", tag, tag2));
	assert_ok(scone_runtime_fetch_config(c.addr, c.pin, "rtcfg/web", &rt, NULL, &again));
	assert_true(scone_runtime_config_volume(again, "data")->initialised);
	assert_memory_equal(scone_runtime_config_volume(again, "data")->tag, tag2, 16);
	scone_runtime_config_free(again);
	scone_runtime_config_free(cfg);
	scone_identity_free(&rt);
	scone_identity_free(&other);
	cas_stop(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_realistic),  cmocka_unit_test(test_parse_optional_fspf),
	    cmocka_unit_test(test_parse_rejections), cmocka_unit_test(test_parse_truncated),
	    cmocka_unit_test(test_fetch_end_to_end),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
