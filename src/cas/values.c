/*
 * values.c - POST /v1/service/values: the secret values an image's own
 * injection file refers to. SCONE lets a session name a file of the image
 * (injection_files: - /etc/app.conf) whose $$SCONE::...$$ references are
 * replaced at start; the file is on the host, so only the runtime can read
 * it. It sends the references it found (never the file), over its attested
 * TLS connection with the instance token of its configuration; CAS renders
 * each, from this session's secrets and imports, limited to the image's
 * provide_secrets when the image names them (SCONE 0.3.11). The runtime
 * expands the file itself, so an escape(json) encoding is applied there.
 */
#include "cas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "lib/base64.h"
#include "lib/crypto.h"

#define VALUES_MAX (4u * 1024 * 1024)

/* The image's own file at path, if the service's image has one. */
static const struct scone_image *image_file(const struct scone_session *s, const struct scone_service *svc,
					    const char *path)
{
	const struct scone_image *img = svc->image_name ? scone_session_image(s, svc->image_name) : NULL;

	for (size_t i = 0; img && i < img->n_files; i++)
		if (!img->files[i].content && strcmp(img->files[i].path, path) == 0)
			return img;
	return NULL;
}

static bool provided(const struct scone_image *img, const char *name)
{
	char base[SCONE_SESSION_NAME_MAX + 1];
	const char *format;

	if (!img->restrict_secrets)
		return true;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < img->provide_secrets.n; i++)
			if (strcmp(img->provide_secrets.v[i], name) == 0)
				return true;
		/* SCONE's old NAME.crt forms count as NAME */
		if (pass || !scone_template_legacy(name, base, sizeof(base), &format))
			break;
		name = base;
	}
	return false;
}

static json_t *base64_json(const struct scone_wbuf *b)
{
	size_t cap = scone_base64_encoded_len(b->size) + 1;
	char *out = malloc(cap);
	json_t *j = NULL;

	if (!out)
		return NULL;
	scone_base64_encode(out, cap, b->size ? b->data : (const uint8_t *)"", b->size);
	j = json_stringn(out, cap - 1);
	scone_wipe(out, cap);
	free(out);
	return j;
}

/* Render every reference of v into list; a refused one stops with the response filled. */
static bool render_all(struct cas *cas, int worker, const struct cas_loaded *own,
		       const struct scone_image *img, const struct cas_values_request *v, json_t *list,
		       struct cas_response *resp)
{
	for (size_t i = 0; i < v->n_refs; i++) {
		const struct cas_values_ref *r = &v->refs[i];
		struct scone_wbuf b;
		enum scone_err err;
		json_t *j;
		if (!provided(img, r->name)) {
			cas_respond_error(
			    resp, 403, "PERMISSION",
			    "%s refers to secret %.128s, which image %s does not provide (provide_secrets)",
			    v->path, r->name, img->name);
			return false;
		}
		scone_wbuf_init(&b, VALUES_MAX, 1);
		err = cas_render_ref(cas, worker, own, r->name, r->has_format ? r->format : NULL, &b);
		j = err ? NULL : base64_json(&b);
		scone_wbuf_free(&b);
		if (err || !j) {
			cas_respond_err(resp, err ? err : SCONE_ERR_NOMEM, "injection file value");
			return false;
		}
		json_array_append_new(list, j);
	}
	return true;
}

void cas_handle_values(struct cas *cas, const struct cas_request *req, struct cas_response *resp)
{
	struct cas_values_request *v = NULL;
	const struct scone_service *svc;
	const struct scone_image *img;
	struct cas_loaded own;
	uint8_t expect[32];
	json_t *list;
	enum scone_err err = cas_parse_values_request((const char *)req->body, req->body_len, &v);

	if (err) {
		cas_respond_err(resp, err, "values request");
		return;
	}
	if (!req->has_peer_key ||
	    cas_instance_token(cas, req->peer_spki_sha256, v->session, v->service, expect) ||
	    !scone_ct_equal(expect, v->token, 32)) {
		cas_respond_error(resp, 403, "PERMISSION",
				  "the instance token does not belong to this TLS key and service (fetch the "
				  "configuration first)");
		free(v);
		return;
	}
	if (!cas_load_session(cas, req->worker, v->session, &own, resp)) {
		free(v);
		return;
	}
	svc = scone_session_service(own.session, v->service);
	img = svc ? image_file(own.session, svc, v->path) : NULL;
	list = json_array();
	if (!img)
		cas_respond_error(resp, 403, "PERMISSION",
				  "%s is not an injection file of service %s/%s's image", v->path, v->session,
				  v->service);
	else if (render_all(cas, req->worker, &own, img, v, list, resp))
		cas_respond_json(resp, 200, json_pack("{s:O}", "values_base64", list));
	json_decref(list);
	cas_loaded_free(&own);
	free(v);
}
