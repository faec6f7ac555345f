/*
 * cas_client.c - the runtime's CAS client (cas_client.h): typed parsing of
 * a service configuration with src/lib/json, and the two HTTPS exchanges
 * with CAS over the pinned client of src/lib/tls.
 *
 * The parser decides nothing about what the configuration means; it only
 * checks types and encodings (hex keys and tags, base64 file contents) and
 * names the offending field, never its value.
 */
#include "cas_client.h"

#include <openssl/evp.h>
#include <pthread.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest.h"
#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/base64.h"
#include "lib/hex.h"
#include "lib/json.h"
#include "lib/token.h"
#include "runtime/rt.h"

#define WHAT "service configuration"
#define CONFIG_ID_MAX 1024

/* ---------------- freeing ---------------- */

static void wfree(char *s)
{
	if (!s)
		return;
	scone_wipe(s, strlen(s));
	free(s);
}

static void free_volumes(struct scone_runtime_config *cfg)
{
	for (size_t i = 0; cfg->volumes && i <= cfg->volume_count; i++) {
		struct scone_rt_volume *v = &cfg->volumes[i];
		wfree(v->name);
		wfree(v->path);
		wfree(v->session);
		wfree(v->volume);
		scone_wipe(v, sizeof(*v));
	}
	free(cfg->volumes);
}

static void free_files(struct scone_runtime_config *cfg)
{
	for (size_t i = 0; cfg->files && i <= cfg->file_count; i++) {
		struct scone_rt_file *f = &cfg->files[i];
		wfree(f->path);
		if (f->content) {
			scone_wipe(f->content, f->content_size);
			free(f->content);
		}
	}
	free(cfg->files);
}

/*
 * Arrays are allocated with one spare zeroed entry, and a parse that fails
 * leaves its partial entry at [count]: the loops free up to and including it.
 */
void scone_runtime_config_free(struct scone_runtime_config *cfg)
{
	if (!cfg)
		return;
	wfree(cfg->config_id);
	wfree(cfg->session_hash);
	wfree(cfg->mode);
	wfree(cfg->pwd);
	for (size_t i = 0; cfg->argv && i < cfg->argc; i++)
		wfree(cfg->argv[i]);
	free(cfg->argv);
	for (size_t i = 0; cfg->env && i <= cfg->env_count; i++) {
		wfree(cfg->env[i].name);
		wfree(cfg->env[i].value);
	}
	free(cfg->env);
	for (size_t i = 0; cfg->host_env && i <= cfg->host_env_count; i++)
		wfree(cfg->host_env[i]);
	free(cfg->host_env);
	free_files(cfg);
	free_volumes(cfg);
	if (cfg->fspf) {
		wfree(cfg->fspf->path);
		scone_wipe(cfg->fspf, sizeof(*cfg->fspf));
		free(cfg->fspf);
	}
	if (cfg->raw)
		scone_secure_free(cfg->raw, cfg->raw_len + 1);
	scone_wipe(cfg, sizeof(*cfg));
	free(cfg);
}

/* ---------------- typed fields ---------------- */

static enum scone_err kind_err(const char *field, const struct scone_json *v, const char *want)
{
	if (!v)
		return scone_err_set(SCONE_ERR_MALFORMED, WHAT ": \"%s\" is missing", field);
	return scone_err_set(SCONE_ERR_MALFORMED, WHAT ": \"%s\" must be %s, not %s", field, want,
			     scone_json_kind_name(v->kind));
}

static enum scone_err dup_string(const struct scone_json *v, const char *field, char **out)
{
	size_t len;
	const char *s = scone_json_string(v, &len);

	if (!s)
		return kind_err(field, v, "a string");
	*out = malloc(len + 1);
	if (!*out)
		return scone_err_set(SCONE_ERR_NOMEM, WHAT ": %s", field);
	memcpy(*out, s, len + 1);
	return SCONE_ERR_OK;
}

static enum scone_err get_string(const struct scone_json *obj, const char *key, const char *field, char **out)
{
	return dup_string(scone_json_get(obj, key), field, out);
}

/* A string of exactly 2*size hex digits (or "" when empty_ok: *present = false). */
static enum scone_err get_hex(const struct scone_json *v, const char *field, uint8_t *out, size_t size,
			      bool empty_ok, bool *present)
{
	size_t len;
	const char *s = scone_json_string(v, &len);

	if (!s)
		return kind_err(field, v, "a string");
	if (present)
		*present = len != 0;
	if (len == 0 && empty_ok)
		return SCONE_ERR_OK;
	if (len != 2 * size || scone_hex_decode(out, size, s, field) != SCONE_ERR_OK)
		return scone_err_set(SCONE_ERR_MALFORMED, WHAT ": \"%s\" must be %zu hex digits%s", field,
				     2 * size, empty_ok ? " or empty" : "");
	return SCONE_ERR_OK;
}

static const struct scone_json *get_kind(const struct scone_json *obj, const char *key,
					 enum scone_json_kind kind)
{
	const struct scone_json *v = scone_json_get(obj, key);

	return v && v->kind == kind ? v : NULL;
}

/* ---------------- base64 (strict, padded: lib/base64.h) ---------------- */

static enum scone_err b64_decode(const char *s, size_t len, const char *field, uint8_t **out,
				 size_t *out_size)
{
	size_t cap = scone_base64_decoded_max(len);
	uint8_t *buf = malloc(cap);
	char what[96];
	enum scone_err err;

	if (!buf)
		return scone_err_set(SCONE_ERR_NOMEM, WHAT ": %s", field);
	snprintf(what, sizeof(what), WHAT ": \"%s\"", field);
	if ((err = scone_base64_decode(s, len, buf, cap, out_size, 0, what))) {
		free(buf); /* (wiped by the decoder) */
		return err;
	}
	*out = buf;
	return SCONE_ERR_OK;
}

/* ---------------- sections ---------------- */

static enum scone_err parse_command(const struct scone_json *root, struct scone_runtime_config *cfg)
{
	const struct scone_json *a = get_kind(root, "command", SCONE_JSON_ARRAY);
	char field[48];

	if (!a)
		return kind_err("command", scone_json_get(root, "command"), "an array of strings");
	cfg->argv = calloc(a->count + 1, sizeof(*cfg->argv));
	if (!cfg->argv)
		return scone_err_set(SCONE_ERR_NOMEM, WHAT ": command");
	for (; cfg->argc < a->count; cfg->argc++) {
		snprintf(field, sizeof(field), "command[%zu]", cfg->argc);
		SCONE_TRY(dup_string(a->items[cfg->argc], field, &cfg->argv[cfg->argc]));
	}
	return SCONE_ERR_OK;
}

static enum scone_err parse_environment(const struct scone_json *root, struct scone_runtime_config *cfg)
{
	const struct scone_json *o = get_kind(root, "environment", SCONE_JSON_OBJECT);
	char field[160];

	if (!o)
		return kind_err("environment", scone_json_get(root, "environment"), "an object");
	cfg->env = calloc(o->count + 1, sizeof(*cfg->env));
	if (!cfg->env)
		return scone_err_set(SCONE_ERR_NOMEM, WHAT ": environment");
	for (; cfg->env_count < o->count; cfg->env_count++) {
		const struct scone_json *m = o->items[cfg->env_count];
		struct scone_rt_env *e = &cfg->env[cfg->env_count];
		snprintf(field, sizeof(field), "environment.%.128s", m->key);
		if (m->key_len == 0 || strchr(m->key, '='))
			return scone_err_set(SCONE_ERR_MALFORMED,
					     WHAT ": \"%s\": a variable name must be non-empty "
						  "and without '='",
					     field);
		SCONE_TRY(dup_string(m, field, &e->value));
		e->name = malloc(m->key_len + 1);
		if (!e->name)
			return scone_err_set(SCONE_ERR_NOMEM, WHAT ": %s", field);
		memcpy(e->name, m->key, m->key_len + 1);
	}
	return SCONE_ERR_OK;
}

static enum scone_err parse_file(const struct scone_json *o, size_t i, struct scone_rt_file *f)
{
	char field[64];
	const char *b64;
	size_t len;
	int64_t mode;

	snprintf(field, sizeof(field), "injection_files[%zu]", i);
	if (!o || o->kind != SCONE_JSON_OBJECT)
		return kind_err(field, o, "an object");
	snprintf(field, sizeof(field), "injection_files[%zu].path", i);
	SCONE_TRY(get_string(o, "path", field, &f->path));
	snprintf(field, sizeof(field), "injection_files[%zu].mode", i);
	if (scone_json_int(scone_json_get(o, "mode"), field, &mode) != SCONE_ERR_OK || mode < 0 ||
	    mode > 07777)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     WHAT ": \"%s\" must be an integer file mode (0 to 4095)", field);
	f->mode = (uint32_t)mode;
	snprintf(field, sizeof(field), "injection_files[%zu].from_image", i);
	if (scone_json_get(o, "from_image"))
		SCONE_TRY(scone_json_bool(scone_json_get(o, "from_image"), field, &f->from_image));
	if (f->from_image && !scone_json_get(o, "content_base64"))
		return SCONE_ERR_OK; /* expanded at start (image_files.c) */
	snprintf(field, sizeof(field), "injection_files[%zu].content_base64", i);
	b64 = scone_json_string(scone_json_get(o, "content_base64"), &len);
	if (!b64)
		return kind_err(field, scone_json_get(o, "content_base64"), "a string");
	return b64_decode(b64, len, field, &f->content, &f->content_size);
}

/*
 * "image_files": [{path, content_base64}], what a runtime appended after it
 * expanded the image's own files (scone_runtime_config_keep_images): their
 * contents for a program exec'd later.
 */
static enum scone_err parse_image_contents(const struct scone_json *root, struct scone_runtime_config *cfg)
{
	const struct scone_json *a = scone_json_get(root, "image_files");
	char field[64];

	if (!a)
		return SCONE_ERR_OK;
	if (a->kind != SCONE_JSON_ARRAY)
		return kind_err("image_files", a, "an array");
	for (size_t i = 0; i < a->count; i++) {
		const struct scone_json *o = a->items[i];
		const char *path, *b64;
		size_t plen, blen;
		snprintf(field, sizeof(field), "image_files[%zu]", i);
		path = o && o->kind == SCONE_JSON_OBJECT ? scone_json_string(scone_json_get(o, "path"), &plen)
							 : NULL;
		b64 = path ? scone_json_string(scone_json_get(o, "content_base64"), &blen) : NULL;
		if (!b64)
			return kind_err(field, o, "an object {path, content_base64}");
		for (size_t k = 0; k < cfg->file_count; k++) {
			struct scone_rt_file *f = &cfg->files[k];
			if (f->from_image && !f->content && !strcmp(f->path, path))
				SCONE_TRY(b64_decode(b64, blen, field, &f->content, &f->content_size));
		}
	}
	return SCONE_ERR_OK;
}

/* "host_environment": the names SCONE's \@\@NAME takes from the host (optional). */
static enum scone_err parse_host_env(const struct scone_json *root, struct scone_runtime_config *cfg)
{
	const struct scone_json *a = scone_json_get(root, "host_environment");
	char field[64];

	if (!a)
		return SCONE_ERR_OK;
	if (a->kind != SCONE_JSON_ARRAY)
		return kind_err("host_environment", a, "an array");
	cfg->host_env = calloc(a->count + 1, sizeof(*cfg->host_env));
	if (!cfg->host_env)
		return scone_err_set(SCONE_ERR_NOMEM, WHAT ": host_environment");
	for (; cfg->host_env_count < a->count; cfg->host_env_count++) {
		snprintf(field, sizeof(field), "host_environment[%zu]", cfg->host_env_count);
		SCONE_TRY(
		    dup_string(a->items[cfg->host_env_count], field, &cfg->host_env[cfg->host_env_count]));
		if (!cfg->host_env[cfg->host_env_count][0] || strchr(cfg->host_env[cfg->host_env_count], '='))
			return scone_err_set(SCONE_ERR_MALFORMED, WHAT ": \"%s\" is no variable name", field);
	}
	return SCONE_ERR_OK;
}

static enum scone_err parse_files(const struct scone_json *root, struct scone_runtime_config *cfg)
{
	const struct scone_json *a = get_kind(root, "injection_files", SCONE_JSON_ARRAY);

	if (!a)
		return kind_err("injection_files", scone_json_get(root, "injection_files"), "an array");
	cfg->files = calloc(a->count + 1, sizeof(*cfg->files));
	if (!cfg->files)
		return scone_err_set(SCONE_ERR_NOMEM, WHAT ": injection_files");
	for (; cfg->file_count < a->count; cfg->file_count++)
		SCONE_TRY(
		    parse_file(a->items[cfg->file_count], cfg->file_count, &cfg->files[cfg->file_count]));
	return SCONE_ERR_OK;
}

static enum scone_err volume_strings(const struct scone_json *o, size_t i, struct scone_rt_volume *v)
{
	static const char *const keys[] = {"name", "path", "session", "volume"};
	char **dst[] = {&v->name, &v->path, &v->session, &v->volume};
	char field[64];

	for (size_t k = 0; k < 4; k++) {
		snprintf(field, sizeof(field), "volumes[%zu].%s", i, keys[k]);
		SCONE_TRY(get_string(o, keys[k], field, dst[k]));
	}
	return SCONE_ERR_OK;
}

static enum scone_err parse_volume(const struct scone_json *o, size_t i, struct scone_rt_volume *v)
{
	char field[64];

	snprintf(field, sizeof(field), "volumes[%zu]", i);
	if (!o || o->kind != SCONE_JSON_OBJECT)
		return kind_err(field, o, "an object");
	SCONE_TRY(volume_strings(o, i, v));
	snprintf(field, sizeof(field), "volumes[%zu].key", i);
	SCONE_TRY(get_hex(scone_json_get(o, "key"), field, v->key, sizeof(v->key), false, NULL));
	snprintf(field, sizeof(field), "volumes[%zu].tag", i);
	SCONE_TRY(get_hex(scone_json_get(o, "tag"), field, v->tag, sizeof(v->tag), true, &v->initialised));
	snprintf(field, sizeof(field), "volumes[%zu].tag_tracked", i);
	if (!get_kind(o, "tag_tracked", SCONE_JSON_BOOL))
		return kind_err(field, scone_json_get(o, "tag_tracked"), "a boolean");
	v->tag_tracked = scone_json_get(o, "tag_tracked")->boolean;
	return SCONE_ERR_OK;
}

static enum scone_err parse_volumes(const struct scone_json *root, struct scone_runtime_config *cfg)
{
	const struct scone_json *a = get_kind(root, "volumes", SCONE_JSON_ARRAY);

	if (!a)
		return kind_err("volumes", scone_json_get(root, "volumes"), "an array");
	cfg->volumes = calloc(a->count + 1, sizeof(*cfg->volumes));
	if (!cfg->volumes)
		return scone_err_set(SCONE_ERR_NOMEM, WHAT ": volumes");
	for (; cfg->volume_count < a->count; cfg->volume_count++)
		SCONE_TRY(parse_volume(a->items[cfg->volume_count], cfg->volume_count,
				       &cfg->volumes[cfg->volume_count]));
	return SCONE_ERR_OK;
}

/* "fspf": null / absent, or {"path", "key": hex or null, "tag": hex (optional)}. */
static enum scone_err parse_fspf(const struct scone_json *root, struct scone_runtime_config *cfg)
{
	const struct scone_json *o = scone_json_get(root, "fspf"), *k, *t;

	if (!o || scone_json_is_null(o))
		return SCONE_ERR_OK;
	if (o->kind != SCONE_JSON_OBJECT)
		return kind_err("fspf", o, "an object or null");
	cfg->fspf = calloc(1, sizeof(*cfg->fspf));
	if (!cfg->fspf)
		return scone_err_set(SCONE_ERR_NOMEM, WHAT ": fspf");
	SCONE_TRY(get_string(o, "path", "fspf.path", &cfg->fspf->path));
	k = scone_json_get(o, "key");
	t = scone_json_get(o, "tag");
	if (k && !scone_json_is_null(k))
		SCONE_TRY(
		    get_hex(k, "fspf.key", cfg->fspf->key, SCONE_RT_KEY_SIZE, false, &cfg->fspf->has_key));
	if (t && !scone_json_is_null(t))
		SCONE_TRY(
		    get_hex(t, "fspf.tag", cfg->fspf->tag, SCONE_RT_TAG_SIZE, false, &cfg->fspf->has_tag));
	return SCONE_ERR_OK;
}

static enum scone_err parse_root(const struct scone_json *root, struct scone_runtime_config *cfg)
{
	if (root->kind != SCONE_JSON_OBJECT)
		return kind_err("(document)", root, "an object");
	SCONE_TRY(get_string(root, "config_id", "config_id", &cfg->config_id));
	SCONE_TRY(get_string(root, "session_hash", "session_hash", &cfg->session_hash));
	SCONE_TRY(get_string(root, "mode", "mode", &cfg->mode));
	SCONE_TRY(get_string(root, "pwd", "pwd", &cfg->pwd));
	SCONE_TRY(parse_command(root, cfg));
	if (scone_json_get(root, "command_public")) /* absent from older CAS: not public */
		SCONE_TRY(scone_json_bool(scone_json_get(root, "command_public"), "command_public",
					  &cfg->command_public));
	SCONE_TRY(parse_environment(root, cfg));
	SCONE_TRY(parse_files(root, cfg));
	SCONE_TRY(parse_image_contents(root, cfg));
	SCONE_TRY(parse_host_env(root, cfg));
	SCONE_TRY(parse_volumes(root, cfg));
	SCONE_TRY(parse_fspf(root, cfg));
	if (scone_json_get(root, "access_token_proof"))
		SCONE_TRY(get_hex(scone_json_get(root, "access_token_proof"), "access_token_proof",
				  cfg->token_proof, sizeof(cfg->token_proof), false, &cfg->has_token_proof));
	return get_hex(scone_json_get(root, "instance_token"), "instance_token", cfg->instance_token,
		       SCONE_RT_TOKEN_SIZE, false, NULL);
}

enum scone_err scone_runtime_config_parse(const char *json, size_t len, struct scone_runtime_config **out)
{
	struct scone_runtime_config *cfg;
	struct scone_json *root = NULL;
	enum scone_err err;

	*out = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return scone_err_set(SCONE_ERR_NOMEM, WHAT);
	err = scone_json_parse(
	    json, len, &(struct scone_json_limits){SCONE_HTTPS_MAX_RESPONSE, 1u << 20, SCONE_JSON_MAX_DEPTH},
	    &root);
	if (!err)
		err = parse_root(root, cfg);
	scone_json_free(root);
	if (!err) { /* kept as fetched: handed to exec'd programs (handover.h) */
		/* Locked, left out of core dumps, wiped when freed: it holds every secret of the service. */
		if ((cfg->raw = scone_secure_alloc(len + 1))) {
			memcpy(cfg->raw, json, len);
			cfg->raw[len] = '\0';
			cfg->raw_len = len;
		} else {
			err = scone_err_set(SCONE_ERR_NOMEM, WHAT);
		}
	}
	if (err) {
		scone_runtime_config_free(cfg);
		return err;
	}
	*out = cfg;
	return SCONE_ERR_OK;
}

const char *scone_runtime_setting(const struct scone_runtime_config *cfg, const char *name)
{
	for (size_t i = 0; cfg && i < cfg->env_count; i++)
		if (strcmp(cfg->env[i].name, name) == 0)
			return cfg->env[i].value;
	return NULL;
}

/* The runtime's settings: whole names, or prefixes ending in '_' (SCONE_NETWORK_SHIELD_SERVER_1_PORT ...). */
static const char *const runtime_settings[] = {
    "SCONE_DUMPABLE",	    "SCONE_ALLOW_UNSHIELDED_EXEC", "SCONE_TAG_REPORT_TIMEOUT", "SCONE_READ_CACHE_MB",
    "SCONE_NETWORK_SHIELD", "SCONE_NETWORK_SHIELD_",	   "SCONE_VOLUME_REDO",
};

bool scone_runtime_is_setting(const char *name)
{
	for (size_t i = 0; i < sizeof(runtime_settings) / sizeof(runtime_settings[0]); i++) {
		const char *s = runtime_settings[i];
		size_t n = strlen(s);
		if (s[n - 1] == '_' ? strncmp(name, s, n) == 0 : strcmp(name, s) == 0)
			return true;
	}
	return false;
}

const struct scone_rt_volume *scone_runtime_config_volume(const struct scone_runtime_config *cfg,
							  const char *name)
{
	for (size_t i = 0; cfg && name && i < cfg->volume_count; i++)
		if (strcmp(cfg->volumes[i].name, name) == 0)
			return &cfg->volumes[i];
	return NULL;
}

/* ---------------- HTTPS ---------------- */

/* Printable copy of CAS's "error" (and "code") for a detail message. */
static void cas_message(const struct scone_https_response *resp, char *msg, size_t msg_size, char *code,
			size_t code_size)
{
	struct scone_json *j = NULL;
	const char *e = NULL, *c = NULL;

	snprintf(msg, msg_size, "%s", "(no error message)");
	snprintf(code, code_size, "%s", "");
	if (scone_json_parse(resp->body, resp->len, NULL, &j) == SCONE_ERR_OK) {
		e = scone_json_string(scone_json_get(j, "error"), NULL);
		c = scone_json_string(scone_json_get(j, "code"), NULL);
	}
	if (e)
		snprintf(msg, msg_size, "%s", e);
	if (c)
		snprintf(code, code_size, "%s", c);
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	for (char *p = code; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || *p == '_'))
			*p = '?';
	scone_json_free(j);
	scone_err_clear();
}

static enum scone_err status_error(int status, const char *code)
{
	for (int e = SCONE_ERR_OK + 1; e < SCONE_ERR_COUNT_; e++)
		if (strcmp(scone_errname((enum scone_err)e), code) == 0)
			return (enum scone_err)e;
	switch (status) {
	case 400:
		return SCONE_ERR_INVALID;
	case 401:
		return SCONE_ERR_AUTH;
	case 403:
		return SCONE_ERR_PERMISSION;
	case 404:
		return SCONE_ERR_NOT_FOUND;
	case 409:
		return SCONE_ERR_CONFLICT;
	case 413:
		return SCONE_ERR_TOO_LARGE;
	case 429:
		return SCONE_ERR_LIMIT;
	case 507:
		return SCONE_ERR_NO_SPACE;
	default:
		return SCONE_ERR_NETWORK;
	}
}

static enum scone_err refused(const struct scone_https_response *resp, const char *what)
{
	char msg[512], code[32];

	cas_message(resp, msg, sizeof(msg), code, sizeof(code));
	return scone_err_set(status_error(resp->status, code), "CAS refused %s: HTTP %d%s%s: %s", what,
			     resp->status, code[0] ? " " : "", code, msg);
}

/* The options for CAS at cas_addr (host written to host[256]). */
static enum scone_err cas_opts(const char *cas_addr, const uint8_t pin_sha256[32],
			       const struct scone_identity *id, char host[256], struct scone_https_opts *o)
{
	*o = (struct scone_https_opts){.pin_sha256 = pin_sha256, .client = id, .host = host};
	return scone_hostport_parse(cas_addr, SCONE_RT_DEFAULT_PORT, host, 256, &o->port);
}

/*
 * POST body to path; resp filled on OK (any status). With keep, on a
 * kept-alive connection returned in *keep (the configuration's, which the
 * tag reports go on with); else on one of its own, closed after.
 */
static enum scone_err post(const char *cas_addr, const uint8_t pin_sha256[32],
			   const struct scone_identity *id, const char *path, const struct scone_wbuf *body,
			   struct scone_https_response *resp, struct scone_https_conn **keep)
{
	struct scone_https_opts o;
	char host[256];
	enum scone_err err;

	if (keep)
		*keep = NULL;
	if (!cas_addr || !pin_sha256 || !id)
		return scone_err_set(SCONE_ERR_INVALID,
				     "CAS request %s: address, pin and identity are required", path);
	SCONE_TRY(cas_opts(cas_addr, pin_sha256, id, host, &o));
	if (keep)
		SCONE_TRY(scone_https_conn_new(&o, keep));
	scone_rt_own_enter(); /* the runtime's connection, not the program's */
	err = keep ? scone_https_conn_request(*keep, "POST", path, "application/json", body->data, body->size,
					      resp)
		   : scone_https_request(&o, "POST", path, "application/json", body->data, body->size, resp);
	if (err && keep) {
		scone_https_conn_free(*keep);
		*keep = NULL;
	}
	scone_rt_own_leave();
	return err;
}

enum scone_err scone_runtime_post(const char *cas_addr, const uint8_t pin_sha256[32],
				  const struct scone_identity *id, const char *path,
				  const struct scone_wbuf *body, struct scone_https_response *resp)
{
	return post(cas_addr, pin_sha256, id, path, body, resp, NULL);
}

enum scone_err scone_runtime_refused(const struct scone_https_response *resp, const char *what)
{
	return refused(resp, what);
}

static enum scone_err put_field(struct scone_wbuf *w, const char *sep, const char *key, const char *value)
{
	SCONE_TRY(scone_wbuf_put(w, sep, strlen(sep)));
	SCONE_TRY(scone_json_put_string(w, key));
	SCONE_TRY(scone_wbuf_u8(w, ':'));
	return scone_json_put_string(w, value);
}

/* "evidence": {"type": T, "data": base64, "note": N}. */
static enum scone_err put_evidence(struct scone_wbuf *w, const struct scone_rt_evidence *ev)
{
	char *b64;
	size_t b64_size;
	enum scone_err err;

	SCONE_TRY(scone_wbuf_put(w, ",\"evidence\":", 12));
	SCONE_TRY(put_field(w, "{", "type", ev->type));
	if (ev->note && ev->note[0])
		SCONE_TRY(put_field(w, ",", "note", ev->note));
	if (ev->size) {
		b64_size = scone_base64_encoded_len(ev->size) + 1;
		if (!(b64 = malloc(b64_size)))
			return scone_err_set(SCONE_ERR_NOMEM, "evidence");
		scone_base64_encode(b64, b64_size, ev->data, ev->size);
		err = put_field(w, ",", "data", b64);
		free(b64);
		SCONE_TRY(err);
	}
	return scone_wbuf_u8(w, '}');
}

/*
 * SCONE_SERVICE_ACCESS_TOKEN (security.service_access_token): the runtime's
 * proof in the request, and CAS's proof checked in the answer (lib/token.h).
 */
static enum scone_err token_field(struct scone_wbuf *body, const struct scone_identity *id,
				  const char *config_id)
{
	const char *token = getenv("SCONE_SERVICE_ACCESS_TOKEN");
	uint8_t spki[32], mac[32];
	char hex[65];
	enum scone_err err;

	if (!token || !*token)
		return SCONE_ERR_OK;
	SCONE_TRY(scone_spki_sha256(id->cert, spki));
	SCONE_TRY(scone_access_token_mac(token, SCONE_TOKEN_LABEL_RUNTIME, spki, config_id, mac));
	scone_hex_encode(hex, sizeof(hex), mac, sizeof(mac));
	err = put_field(body, ",", "access_token_mac", hex);
	scone_wipe(mac, sizeof(mac));
	return err;
}

static enum scone_err token_proof_ok(const struct scone_identity *id, const char *config_id,
				     const struct scone_runtime_config *cfg)
{
	const char *token = getenv("SCONE_SERVICE_ACCESS_TOKEN");
	uint8_t spki[32], want[32];
	bool ok;

	if (!token || !*token)
		return SCONE_ERR_OK;
	SCONE_TRY(scone_spki_sha256(id->cert, spki));
	SCONE_TRY(scone_access_token_mac(token, SCONE_TOKEN_LABEL_CAS, spki, config_id, want));
	ok = cfg->has_token_proof && scone_ct_equal(want, cfg->token_proof, sizeof(want));
	scone_wipe(want, sizeof(want));
	if (!ok)
		return scone_err_set(
		    SCONE_ERR_UNTRUSTED,
		    "SCONE_SERVICE_ACCESS_TOKEN is set, and CAS did not prove it holds that token "
		    "(the session has another service_access_token, or none)");
	return SCONE_ERR_OK;
}

/* SESSION/SERVICE of a config id that may end in "@OTP": what CAS answers for and the token proofs name. */
static void service_id(const char *config_id, char sid[CONFIG_ID_MAX])
{
	const char *at = strrchr(config_id, '@');
	size_t n = at ? (size_t)(at - config_id) : strlen(config_id);

	memcpy(sid, config_id, n);
	sid[n] = '\0';
}

static void report_adopt(struct scone_https_conn *k, const char *cas_addr, const uint8_t pin_sha256[32],
			 const struct scone_identity *id);

enum scone_err scone_runtime_fetch_config(const char *cas_addr, const uint8_t pin_sha256[32],
					  const char *config_id, struct scone_identity *fresh_id,
					  const struct scone_rt_evidence *ev,
					  struct scone_runtime_config **out)
{
	struct scone_https_response resp = {0};
	struct scone_https_conn *conn = NULL;
	char sid[CONFIG_ID_MAX];
	struct scone_wbuf body;
	enum scone_err err;

	*out = NULL;
	if (!config_id || !strchr(config_id, '/') || strlen(config_id) >= CONFIG_ID_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "config id must be SESSION/SERVICE");
	service_id(config_id, sid);
	scone_wbuf_init(&body, 2 * CONFIG_ID_MAX + 2 * SCONE_EVIDENCE_MAX + 256, 0);
	err = put_field(&body, "{", "config_id", config_id);
	if (!err && ev)
		err = put_evidence(&body, ev);
	if (!err && fresh_id)
		err = token_field(&body, fresh_id, sid);
	if (!err)
		err = scone_wbuf_u8(&body, '}');
	if (!err)
		err = post(cas_addr, pin_sha256, fresh_id, "/v1/service/config", &body, &resp, &conn);
	if (err)
		goto out;
	if (resp.status != 200) {
		err = refused(&resp, "the configuration");
		goto out;
	}
	err = scone_runtime_config_parse(resp.body, resp.len, out);
	if (!err && strcmp((*out)->config_id, sid) != 0)
		err = scone_err_set(SCONE_ERR_MALFORMED,
				    "CAS answered with the configuration of another service");
	if (!err)
		err = token_proof_ok(fresh_id, sid, *out);
	if (err && *out) {
		scone_runtime_config_free(*out);
		*out = NULL;
	}
	/* A service with volumes reports their tags: on this connection, without a second handshake. */
	if (!err && ((*out)->volume_count || (*out)->fspf)) {
		report_adopt(conn, cas_addr, pin_sha256, fresh_id);
		conn = NULL;
	}
out:
	scone_rt_own_enter();
	scone_https_conn_free(conn);
	scone_rt_own_leave();
	scone_https_response_free(&resp);
	scone_wbuf_free(&body);
	return err;
}

static enum scone_err tag_body(struct scone_wbuf *w, const struct scone_runtime_config *cfg,
			       const char *volume, const uint8_t *previous_tag,
			       const uint8_t tag[SCONE_RT_TAG_SIZE])
{
	char prev[2 * SCONE_RT_TAG_SIZE + 1] = "", now[2 * SCONE_RT_TAG_SIZE + 1],
					  token[2 * SCONE_RT_TOKEN_SIZE + 1];
	enum scone_err err;

	if (previous_tag)
		scone_hex_encode(prev, sizeof(prev), previous_tag, SCONE_RT_TAG_SIZE);
	scone_hex_encode(now, sizeof(now), tag, SCONE_RT_TAG_SIZE);
	scone_hex_encode(token, sizeof(token), cfg->instance_token, SCONE_RT_TOKEN_SIZE);
	err = put_field(w, "{", "config_id", cfg->config_id);
	if (!err)
		err = put_field(w, ",", "volume", volume);
	if (!err)
		err = put_field(w, ",", "previous_tag", prev);
	if (!err)
		err = put_field(w, ",", "tag", now);
	if (!err)
		err = put_field(w, ",", "instance_token", token);
	if (!err)
		err = scone_wbuf_u8(w, '}');
	scone_wipe(token, sizeof(token));
	return err;
}

/*
 * Tag reports come at every sync point of a volume, so they share one
 * kept-alive TLS connection per process (one handshake, not one per
 * report); it is made again for another CAS, pin or identity, and after a
 * fork (scone_https_conn_request sees to that).
 */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
static struct scone_https_conn *report_conn;
static char report_addr[300];
static uint8_t report_pin[32];
static const struct scone_identity *report_id;

static char report_volume[128]; /* the volume of the report in flight ("" when none) */

/* The reports' connection becomes k: to CAS at cas_addr, pinned to pin_sha256, as id (report_lock held). */
static void report_set(struct scone_https_conn *k, const char *cas_addr, const uint8_t pin_sha256[32],
		       const struct scone_identity *id)
{
	scone_https_conn_free(report_conn);
	report_conn = k;
	snprintf(report_addr, sizeof(report_addr), "%s", cas_addr);
	memcpy(report_pin, pin_sha256, 32);
	report_id = id;
}

static enum scone_err report_send(const char *cas_addr, const uint8_t pin_sha256[32],
				  const struct scone_identity *id, const struct scone_wbuf *body)
{
	struct scone_https_opts o;
	struct scone_https_conn *k = NULL;
	char host[256];
	enum scone_err err = SCONE_ERR_OK;

	if (!cas_addr || !pin_sha256 || !id)
		return scone_err_set(SCONE_ERR_INVALID,
				     "CAS tag report: address, pin and identity are required");
	pthread_mutex_lock(&report_lock);
	if (!report_conn || strcmp(report_addr, cas_addr) != 0 || memcmp(report_pin, pin_sha256, 32) != 0 ||
	    report_id != id) {
		err = cas_opts(cas_addr, pin_sha256, id, host, &o);
		if (!err)
			err = scone_https_conn_new(&o, &k);
		report_set(k, cas_addr, pin_sha256, id); /* (on failure: none, made again next time) */
	}
	/*
	 * The runtime's connection, not the program's: the send connects
	 * (again, whenever CAS closed the idle connection), and the network
	 * shield must neither refuse nor wrap that connect.
	 */
	scone_rt_own_enter();
	if (!err)
		err = scone_https_conn_send(report_conn, "POST", "/v1/volumes/tag", "application/json",
					    body->data, body->size);
	scone_rt_own_leave();
	pthread_mutex_unlock(&report_lock);
	return err;
}

static void report_adopt(struct scone_https_conn *k, const char *cas_addr, const uint8_t pin_sha256[32],
			 const struct scone_identity *id)
{
	pthread_mutex_lock(&report_lock);
	report_set(k, cas_addr, pin_sha256, id);
	pthread_mutex_unlock(&report_lock);
}

void scone_runtime_report_identity_moved(const struct scone_identity *from, const struct scone_identity *to)
{
	pthread_mutex_lock(&report_lock);
	if (report_conn && report_id == from) {
		report_id = to;
		scone_https_conn_set_client(report_conn, to);
	}
	pthread_mutex_unlock(&report_lock);
}

enum scone_err scone_runtime_report_tag_start(const char *cas_addr, const uint8_t pin_sha256[32],
					      const struct scone_identity *id,
					      const struct scone_runtime_config *cfg, const char *volume,
					      const uint8_t *previous_tag,
					      const uint8_t tag[SCONE_RT_TAG_SIZE])
{
	struct scone_wbuf body;
	enum scone_err err;

	if (!cfg || !volume || !tag)
		return scone_err_set(SCONE_ERR_INVALID,
				     "volume tag report: configuration, volume and tag are required");
	scone_wbuf_init(&body, 64 * 1024, 1);
	err = tag_body(&body, cfg, volume, previous_tag, tag);
	if (!err)
		err = report_send(cas_addr, pin_sha256, id, &body);
	if (!err)
		snprintf(report_volume, sizeof(report_volume), "%s", volume);
	scone_wbuf_free(&body);
	return err;
}

int scone_runtime_report_fd(void)
{
	return scone_https_conn_fd(report_conn);
}

enum scone_err scone_runtime_report_tag_wait(void)
{
	struct scone_https_response resp = {0};
	enum scone_err err;
	char what[200];

	pthread_mutex_lock(&report_lock);
	err = report_conn ? scone_https_conn_recv(report_conn, &resp)
			  : scone_err_set(SCONE_ERR_INVALID, "no tag report waits for an answer");
	pthread_mutex_unlock(&report_lock);
	if (!err && resp.status != 200) {
		snprintf(what, sizeof(what), "the new tag of volume %.100s", report_volume);
		err = refused(&resp, what);
	}
	scone_https_response_free(&resp);
	return err;
}

enum scone_err scone_runtime_report_tag(const char *cas_addr, const uint8_t pin_sha256[32],
					const struct scone_identity *id,
					const struct scone_runtime_config *cfg, const char *volume,
					const uint8_t *previous_tag, const uint8_t tag[SCONE_RT_TAG_SIZE])
{
	SCONE_TRY(scone_runtime_report_tag_start(cas_addr, pin_sha256, id, cfg, volume, previous_tag, tag));
	return scone_runtime_report_tag_wait();
}

/* ---------------- the image's own files, kept for exec'd programs ---------------- */

static enum scone_err put_b64(struct scone_wbuf *w, const uint8_t *p, size_t n)
{
	unsigned char chunk[64 + 1];
	enum scone_err err = scone_wbuf_u8(w, '"');

	for (size_t off = 0; !err && off < n; off += 48) {
		int k = (int)(n - off < 48 ? n - off : 48);
		scone_base64_encode((char *)chunk, sizeof(chunk), p + off, (size_t)k);
		err = scone_wbuf_put(w, chunk, scone_base64_encoded_len((size_t)k));
	}
	scone_wipe(chunk, sizeof(chunk));
	return err ? err : scone_wbuf_u8(w, '"');
}

enum scone_err scone_runtime_config_keep_images(struct scone_runtime_config *cfg)
{
	struct scone_wbuf w;
	const char *sep = "";
	enum scone_err err = SCONE_ERR_OK;
	size_t end = cfg->raw ? cfg->raw_len : 0;

	while (end > 0 && strchr(" \t\r\n", cfg->raw[end - 1]))
		end--; /* the answer's trailing newline */
	if (end < 2 || cfg->raw[end - 1] != '}')
		return scone_err_set(SCONE_ERR_MALFORMED, WHAT ": cannot extend the kept answer");
	scone_wbuf_init(&w, 2 * SCONE_HTTPS_MAX_RESPONSE, 1);
	err = scone_wbuf_put(&w, cfg->raw, end - 1);
	if (!err)
		err = scone_wbuf_put(&w, ",\"image_files\":[", strlen(",\"image_files\":["));
	for (size_t i = 0; !err && i < cfg->file_count; i++) {
		const struct scone_rt_file *f = &cfg->files[i];
		if (!f->from_image)
			continue;
		err = scone_wbuf_put(&w, sep, strlen(sep));
		if (!err)
			err = put_field(&w, "{", "path", f->path);
		if (!err)
			err = scone_wbuf_put(&w, ",\"content_base64\":", strlen(",\"content_base64\":"));
		if (!err)
			err = put_b64(&w, f->content, f->content_size);
		if (!err)
			err = scone_wbuf_u8(&w, '}');
		sep = ",";
	}
	if (!err)
		err = scone_wbuf_put(&w, "]}", 3); /* with the NUL, not counted */
	if (!err) {
		/* Into locked, no-dump memory like the answer it replaces. */
		char *raw = scone_secure_alloc(w.size);
		if (!raw) {
			scone_wbuf_free(&w);
			return scone_err_set(SCONE_ERR_NOMEM, WHAT ": out of memory");
		}
		memcpy(raw, w.data, w.size);
		scone_secure_free(cfg->raw, cfg->raw_len + 1);
		cfg->raw = raw;
		cfg->raw_len = w.size - 1;
	}
	scone_wbuf_free(&w);
	return err;
}
