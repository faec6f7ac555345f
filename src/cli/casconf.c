/*
 * casconf.c - the CLI's client configuration ($SCONE_CLI_CONFIG, default
 * ~/.cas/config.json): the owner identity (key and certificate files beside
 * the config) and the pinned CAS fingerprints; and the one way the CLI talks
 * to a CAS (pinned, with the owner's certificate).
 *
 *   {"version": 1, "identity": {"key": "owner.key", "cert": "owner.crt"},
 *    "default_cas": "127.0.0.1:8081",
 *    "cas": {"127.0.0.1:8081": {"fingerprint": "<64 hex>"}}}
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "lib/hex.h"

enum scone_err cli_config_path(char *out, size_t size)
{
	const char *env = getenv("SCONE_CLI_CONFIG");
	const char *home = getenv("HOME");
	int n;

	if (env && *env)
		n = snprintf(out, size, "%s", env);
	else if (home && *home)
		n = snprintf(out, size, "%s/.cas/config.json", home);
	else
		return scone_err_set(SCONE_ERR_INVALID, "neither SCONE_CLI_CONFIG nor HOME is set");
	if (n < 0 || (size_t)n >= size)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "config path too long");
	return SCONE_ERR_OK;
}

/* A path next to the config file. */
enum scone_err cli_config_sibling(const char *name, char *out, size_t size)
{
	char cfg[4096], *dir;

	SCONE_TRY(cli_config_path(cfg, sizeof(cfg)));
	dir = dirname(cfg);
	if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "config path too long");
	return SCONE_ERR_OK;
}

enum scone_err cli_config_load(json_t **out)
{
	char path[4096];
	json_error_t jerr;
	json_t *j;

	SCONE_TRY(cli_config_path(path, sizeof(path)));
	if (access(path, F_OK) != 0) {
		*out = json_pack("{s:i,s:{}}", "version", 1, "cas");
		return *out ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_NOMEM, "config");
	}
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s:%d:%d: %s", path, jerr.line, jerr.column,
				     jerr.text);
	if (!json_is_object(j) || (json_object_get(j, "cas") && !json_is_object(json_object_get(j, "cas")))) {
		json_decref(j);
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: not a scone CLI configuration", path);
	}
	if (!json_object_get(j, "cas"))
		json_object_set_new(j, "cas", json_object());
	*out = j;
	return SCONE_ERR_OK;
}

static enum scone_err mkdir_parents(char *path)
{
	char *dir = dirname(path);

	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return SCONE_ERR_OK;
	if (errno == ENOENT) {
		char copy[4096];
		snprintf(copy, sizeof(copy), "%s", dir);
		SCONE_TRY(mkdir_parents(copy));
		if (mkdir(dir, 0700) == 0 || errno == EEXIST)
			return SCONE_ERR_OK;
	}
	return scone_err_set(scone_err_from_errno(errno), "%s: %s", dir, strerror(errno));
}

enum scone_err cli_config_dir_create(void)
{
	char path[4096];

	SCONE_TRY(cli_config_path(path, sizeof(path)));
	return mkdir_parents(path);
}

enum scone_err cli_config_save(json_t *cfg)
{
	char path[4096], tmp[4200];
	int fd;

	SCONE_TRY(cli_config_dir_create());
	SCONE_TRY(cli_config_path(path, sizeof(path)));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", tmp, strerror(errno));
	if (json_dumpfd(cfg, fd, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		return scone_err_set(SCONE_ERR_IO, "%s: cannot write", tmp);
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", path, strerror(errno));
	}
	return SCONE_ERR_OK;
}

const char *cli_cas_address(const char *opt, json_t *cfg)
{
	const char *env = getenv("SCONE_CAS_ADDR");
	json_t *def = json_object_get(cfg, "default_cas");

	if (opt)
		return opt;
	if (env && *env)
		return env;
	if (json_is_string(def))
		return json_string_value(def);
	return "127.0.0.1:8081";
}

const char *cli_config_pin(json_t *cfg, const char *addr_key)
{
	return json_string_value(
	    json_object_get(json_object_get(json_object_get(cfg, "cas"), addr_key), "fingerprint"));
}

/* Normalised "host:port" key under which a CAS is pinned. */
enum scone_err cli_cas_key(const char *addr, char *out, size_t size, char *host, size_t host_size,
			   uint16_t *port)
{
	SCONE_TRY(scone_hostport_parse(addr, 8081, host, host_size, port));
	if ((size_t)snprintf(out, size, "%s:%u", host, *port) >= size)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "CAS address too long");
	return SCONE_ERR_OK;
}

enum scone_err cli_cas_open(const char *addr_opt, bool need_identity, struct cli_cas *c)
{
	json_t *cfg = NULL;
	const char *fp;
	char key[4096], crt[4096];
	enum scone_err err;

	memset(c, 0, sizeof(*c));
	SCONE_TRY(cli_config_load(&cfg));
	err = cli_cas_key(cli_cas_address(addr_opt, cfg), c->addr, sizeof(c->addr), c->host, sizeof(c->host),
			  &c->port);
	if (err)
		goto out;
	fp = cli_config_pin(cfg, c->addr);
	if (!fp) {
		err =
		    scone_err_set(SCONE_ERR_UNTRUSTED,
				  "CAS %s is not trusted yet: run `scone cas trust %s --fingerprint SHA256`",
				  c->addr, c->addr);
		goto out;
	}
	if ((err = scone_fingerprint_parse(fp, c->pin)))
		goto out;
	if ((err = cli_config_sibling("owner.key", key, sizeof(key))) ||
	    (err = cli_config_sibling("owner.crt", crt, sizeof(crt))))
		goto out;
	if (access(key, F_OK) == 0) {
		if ((err = scone_identity_load(key, crt, &c->id)))
			goto out;
		c->has_id = true;
	} else if (need_identity) {
		err = scone_err_set(SCONE_ERR_MISSING,
				    "no owner identity at %s: run `scone cas keygen` first", key);
		goto out;
	}
out:
	json_decref(cfg);
	return err;
}

void cli_cas_close(struct cli_cas *c)
{
	if (c->has_id)
		scone_identity_free(&c->id);
	c->has_id = false;
}

enum scone_err cli_cas_request(struct cli_cas *c, const char *method, const char *path,
			       const char *content_type, const void *body, size_t len,
			       struct scone_https_response *resp)
{
	struct scone_https_opts o = {
	    .host = c->host,
	    .port = c->port,
	    .pin_sha256 = c->pin,
	    .client = c->has_id ? &c->id : NULL,
	};

	return scone_https_request(&o, method, path, content_type, body, len, resp);
}

int cli_http_fail(const struct scone_https_response *resp, const char *what)
{
	json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
	const char *msg = json_string_value(json_object_get(j, "error"));
	const char *code = json_string_value(json_object_get(j, "code"));
	json_t *errors = json_object_get(j, "errors");
	size_t i;
	json_t *e;

	fprintf(stderr, "scone: %s: HTTP %d: %s (%s)\n", what, resp->status,
		msg ? msg : "unexpected response", code ? code : "?");
	json_array_foreach(errors, i, e)
	{
		fprintf(stderr, "  %lld:%lld: %s: %s\n",
			(long long)json_integer_value(json_object_get(e, "line")),
			(long long)json_integer_value(json_object_get(e, "column")),
			json_string_value(json_object_get(e, "path")),
			json_string_value(json_object_get(e, "message")));
	}
	json_decref(j);
	return 1;
}
