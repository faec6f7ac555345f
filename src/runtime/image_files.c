/*
 * image_files.c - the image's own injection files (image_files.h).
 *
 * The file is untrusted input (the host wrote it): it is read with a size
 * limit, its references are found with the same scanner CAS validates
 * with, and only the references are sent - never the file. What CAS
 * answers is put in place by scone_template_expand (escape(json) applied
 * here); the values are never scanned again. Everything that held a value
 * is wiped.
 */
#include "image_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/json.h"
#include "policy/template.h"
#include "runtime/shield.h"
#include "runtime/sys.h"

#define MAX_REFS 256

struct ref {
	char name[SCONE_TEMPLATE_NAME_MAX + 1];
	char format[40];
	bool has_format;
};

struct refs {
	struct ref v[MAX_REFS];
	size_t n;
	/* the answer, one value per reference, in the order they occur */
	uint8_t *values[MAX_REFS];
	size_t sizes[MAX_REFS];
	size_t next; /* the expansion's position */
};

bool scone_image_files_pending(const struct scone_runtime_config *cfg)
{
	for (size_t i = 0; cfg && i < cfg->file_count; i++)
		if (cfg->files[i].from_image && !cfg->files[i].content)
			return true;
	return false;
}

/* Read fd to its end (at most SCONE_IMAGE_FILE_MAX) into a secret buffer. */
static enum scone_err read_all(int fd, bool shielded, const char *path, struct scone_wbuf *out)
{
	uint8_t buf[8192];
	enum scone_err err = SCONE_ERR_OK;

	scone_wbuf_init(out, SCONE_IMAGE_FILE_MAX, 1);
	for (;;) {
		/* a shielded fd is read through the shield's own read(); a host one directly */
		ssize_t n = shielded ? read(fd, buf, sizeof(buf)) : SYS(read)(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = scone_err_set(scone_err_from_errno(errno), "injection file %s: %s", path,
					    strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if ((err = scone_wbuf_put(out, buf, (size_t)n))) {
			scone_err_set(err, "injection file %s is larger than %d bytes", path,
				      SCONE_IMAGE_FILE_MAX);
			break;
		}
	}
	scone_wipe(buf, sizeof(buf));
	return err;
}

static enum scone_err read_file(const char *path, struct scone_wbuf *out)
{
	int fd = -1;
	bool shielded = scone_shield_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0, &fd);
	enum scone_err err;

	if (!shielded)
		fd = SYS(open)(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno),
				     "injection file %s: %s (the image has no such file)", path,
				     strerror(errno));
	err = read_all(fd, shielded, path, out);
	if (shielded)
		close(fd);
	else
		SYS(close)(fd);
	return err;
}

static enum scone_err collect(void *ctx, const char *name, const char *format, size_t off, size_t size)
{
	struct refs *r = ctx;

	(void)off;
	(void)size;
	if (r->n == MAX_REFS)
		return scone_err_set(SCONE_ERR_LIMIT, "more than %d secret references in one injection file",
				     MAX_REFS);
	snprintf(r->v[r->n].name, sizeof(r->v[r->n].name), "%s", name);
	r->v[r->n].has_format = format != NULL;
	snprintf(r->v[r->n].format, sizeof(r->v[r->n].format), "%s", format ? format : "");
	r->n++;
	return SCONE_ERR_OK;
}

static enum scone_err request_body(const struct scone_runtime_config *cfg, const char *path,
				   const struct refs *r, struct scone_wbuf *w)
{
	char token[2 * SCONE_RT_TOKEN_SIZE + 1];

	scone_hex_encode(token, sizeof(token), cfg->instance_token, SCONE_RT_TOKEN_SIZE);
	SCONE_TRY(scone_wbuf_put(w, "{\"config_id\":", 13));
	SCONE_TRY(scone_json_put_string(w, cfg->config_id));
	SCONE_TRY(scone_wbuf_put(w, ",\"instance_token\":", 18));
	SCONE_TRY(scone_json_put_string(w, token));
	SCONE_TRY(scone_wbuf_put(w, ",\"path\":", 8));
	SCONE_TRY(scone_json_put_string(w, path));
	SCONE_TRY(scone_wbuf_put(w, ",\"refs\":[", 9));
	for (size_t i = 0; i < r->n; i++) {
		SCONE_TRY(scone_wbuf_put(w, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8));
		SCONE_TRY(scone_json_put_string(w, r->v[i].name));
		if (r->v[i].has_format) {
			SCONE_TRY(scone_wbuf_put(w, ",\"format\":", 10));
			SCONE_TRY(scone_json_put_string(w, r->v[i].format));
		}
		SCONE_TRY(scone_wbuf_u8(w, '}'));
	}
	return scone_wbuf_put(w, "]}", 2);
}

/* Strict padded base64 (lib/base64: constant time, wiped on error) into a new buffer. */
static enum scone_err b64_decode(const char *s, size_t len, uint8_t **out, size_t *out_size)
{
	size_t cap = scone_base64_decoded_max(len) + 1;
	uint8_t *p = malloc(cap);
	enum scone_err err;

	if (!p)
		return scone_err_set(SCONE_ERR_NOMEM, "injection file value");
	err = scone_base64_decode(s, len, p, cap, out_size, 0, "CAS's value");
	if (err) {
		free(p); /* wiped by the decoder */
		return err;
	}
	*out = p;
	return SCONE_ERR_OK;
}

static enum scone_err parse_values(const struct scone_https_response *resp, struct refs *r)
{
	struct scone_json *root = NULL;
	const struct scone_json *a;
	enum scone_err err = scone_json_parse(resp->body, resp->len, &scone_json_default_limits, &root);

	a = err ? NULL : scone_json_get(root, "values_base64");
	if (!err && (!a || a->kind != SCONE_JSON_ARRAY || a->count != r->n))
		err = scone_err_set(SCONE_ERR_MALFORMED, "CAS answered with %s values for %zu references",
				    a && a->kind == SCONE_JSON_ARRAY ? "another number of" : "no", r->n);
	for (size_t i = 0; !err && i < r->n; i++) {
		size_t len;
		const char *s = scone_json_string(a->items[i], &len);
		err = s ? b64_decode(s, len, &r->values[i], &r->sizes[i])
			: scone_err_set(SCONE_ERR_MALFORMED, "CAS's value %zu is not a string", i);
	}
	scone_json_free(root);
	return err;
}

static enum scone_err fetch_values(const char *addr, const uint8_t pin[32], const struct scone_identity *id,
				   const struct scone_runtime_config *cfg, const char *path, struct refs *r)
{
	struct scone_https_response resp = {0};
	struct scone_wbuf body;
	enum scone_err err;

	scone_wbuf_init(&body, 256 * 1024, 0);
	err = request_body(cfg, path, r, &body);
	if (!err)
		err = scone_runtime_post(addr, pin, id, "/v1/service/values", &body, &resp);
	if (!err && resp.status != 200)
		err = scone_runtime_refused(&resp, "the values of an injection file");
	if (!err)
		err = parse_values(&resp, r);
	if (resp.body)
		scone_wipe(resp.body, resp.len);
	scone_https_response_free(&resp);
	scone_wbuf_free(&body);
	return err;
}

/* The expansion asks for the references in the order they occur: the answer in that order. */
static enum scone_err lookup(void *ctx, const char *name, const char *format, struct scone_wbuf *out)
{
	struct refs *r = ctx;
	size_t i = r->next++;

	(void)format;
	if (i >= r->n || strcmp(r->v[i].name, name) != 0)
		return scone_err_set(SCONE_ERR_INVALID, "injection file: reference %zu out of order", i);
	return scone_wbuf_put(out, r->values[i], r->sizes[i]);
}

static void refs_free(struct refs *r)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->values[i]) {
			scone_wipe(r->values[i], r->sizes[i]);
			free(r->values[i]);
		}
	}
	scone_wipe(r, sizeof(*r));
	free(r);
}

static enum scone_err expand_one(const char *addr, const uint8_t pin[32], const struct scone_identity *id,
				 const struct scone_runtime_config *cfg, struct scone_rt_file *f)
{
	struct refs *r = calloc(1, sizeof(*r));
	struct scone_wbuf text, out;
	enum scone_err err;

	if (!r)
		return scone_err_set(SCONE_ERR_NOMEM, "injection file %s", f->path);
	scone_wbuf_init(&out, 4 * SCONE_IMAGE_FILE_MAX, 1);
	err = read_file(f->path, &text);
	if (!err)
		err = scone_template_refs_at((const char *)text.data, text.size, collect, r);
	if (!err && r->n)
		err = fetch_values(addr, pin, id, cfg, f->path, r);
	if (!err)
		err = scone_template_expand((const char *)text.data, text.size, lookup, r, &out);
	if (!err && !(f->content = malloc(out.size ? out.size : 1)))
		err = scone_err_set(SCONE_ERR_NOMEM, "injection file %s", f->path);
	if (!err) {
		memcpy(f->content, out.data, out.size);
		f->content_size = out.size;
	} else if (!strstr(scone_err_detail(), f->path)) {
		scone_err_set(err, "injection file %s: %s", f->path, scone_err_detail());
	}
	scone_wbuf_free(&text);
	scone_wbuf_free(&out);
	refs_free(r);
	return err;
}

enum scone_err scone_image_files_expand(const char *cas_addr, const uint8_t pin[32],
					const struct scone_identity *id, struct scone_runtime_config *cfg)
{
	if (!scone_image_files_pending(cfg))
		return SCONE_ERR_OK;
	for (size_t i = 0; i < cfg->file_count; i++)
		if (cfg->files[i].from_image && !cfg->files[i].content)
			SCONE_TRY(expand_one(cas_addr, pin, id, cfg, &cfg->files[i]));
	return scone_runtime_config_keep_images(cfg);
}
