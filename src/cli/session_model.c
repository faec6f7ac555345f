/*
 * session_model.c - `scone session check --model`: what a session means to
 * scone, as JSON (the typed model of src/policy), for the user who asks
 * "how did scone read this?" and for the session corpus (tests/sessions),
 * whose expected meanings are these documents.
 *
 * Explicit secret values, file contents and the service access token are
 * never printed (a "value": "explicit, N bytes" stands for them);
 * templates are printed as written, unexpanded.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "lib/hex.h"
#include "policy/policy.h"

static json_t *strs(const struct scone_strs *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

static json_t *principal(const struct scone_principal *p)
{
	char h[65];

	switch (p->kind) {
	case SCONE_PRINCIPAL_CREATOR:
		return json_string("CREATOR");
	case SCONE_PRINCIPAL_ANY:
		return json_string("ANY");
	case SCONE_PRINCIPAL_NONE:
		return json_string("NONE");
	case SCONE_PRINCIPAL_KEY:
		scone_hex_encode(h, sizeof(h), p->spki_sha256, 32);
		return json_sprintf("key sha256:%s", h);
	}
	return json_null();
}

static json_t *rule(const struct scone_access_rule *r)
{
	json_t *items;

	if (r->kind == SCONE_RULE_PRINCIPAL)
		return principal(&r->principal);
	items = json_array();
	for (size_t i = 0; i < r->n_items; i++)
		json_array_append_new(items, rule(&r->items[i]));
	if (r->kind == SCONE_RULE_ALL)
		return json_pack("{s:o}", "require-all", items);
	return json_pack("{s:I,s:o}", "require-at-least", (json_int_t)r->need, "of", items);
}

static json_t *access_list(const struct scone_access_list *l, const char *dflt)
{
	json_t *a;

	if (l->rule)
		a = rule(l->rule);
	else if (l->n == 0 && !l->dynamic)
		return json_sprintf("default (%s)", dflt);
	else {
		a = json_array();
		for (size_t i = 0; i < l->n; i++)
			json_array_append_new(a, principal(&l->v[i]));
	}
	return l->dynamic ? json_pack("{s:o,s:b}", "static part", a, "resolved by CAS", 1) : a;
}

static const char *key_type_name(enum scone_key_type t)
{
	switch (t) {
	case SCONE_KEY_P256:
		return "P-256";
	case SCONE_KEY_P384:
		return "P-384";
	case SCONE_KEY_ED25519:
		return "Ed25519";
	case SCONE_KEY_RSA2048:
		return "RSA-2048";
	case SCONE_KEY_RSA3072:
		return "RSA-3072";
	}
	return "?";
}

static json_t *variants(const struct scone_service *svc)
{
	json_t *a = json_array();

	for (size_t i = 0; i < svc->n_variants; i++) {
		const struct scone_attest_variant *v = &svc->variants[i];
		json_t *o = json_pack("{s:o}", "mrenclaves", strs(&v->mrenclaves));
		if (v->mrsigner)
			json_object_set_new(o, "signer",
					    json_pack("{s:s,s:i,s:i,s:i}", "mrsigner", v->mrsigner,
						      "isvprodid", v->isvprodid, "isvsvn_min", v->isvsvn_min,
						      "isvsvn_max", v->isvsvn_max));
		json_object_set_new(o, "platforms", strs(&v->platforms));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *environment(const struct scone_service *svc)
{
	json_t *a = json_array();

	for (size_t i = 0; i < svc->n_env; i++) {
		const struct scone_kv *kv = &svc->env[i];
		if (kv->from_host)
			json_array_append_new(a, json_pack("{s:s,s:s}", "name", kv->key, "value",
							   "(from the host, "
							   "empty if unset)"));
		else
			json_array_append_new(a, json_pack("{s:s,s:s}", "name", kv->key, "value", kv->value));
	}
	return a;
}

static json_t *service(const struct scone_service *svc)
{
	json_t *o = json_pack("{s:s,s:o,s:o,s:s,s:o}", "name", svc->name, "command", strs(&svc->command),
			      "environment", environment(svc), "pwd", svc->pwd ? svc->pwd : "/",
			      "attestation", variants(svc));

	if (svc->dynamic)
		json_object_set_new(o, "attestation_resolved_by_cas", json_true());
	if (svc->image_name)
		json_object_set_new(o, "image", json_string(svc->image_name));
	if (svc->fspf_path)
		json_object_set_new(
		    o, "fspf",
		    json_pack("{s:s,s:s,s:s?,s:s}", "path", svc->fspf_path, "key",
			      svc->fspf_key
				  ? (strncmp(svc->fspf_key, "$$SCONE::", 9) ? "given" : svc->fspf_key)
				  : "none (not encrypted)",
			      "tag", svc->fspf_tag, "update_policy",
			      svc->fspf_no_rollback ? "no_rollback_protection"
						    : "rollback_protected_reinitializable"));
	return o;
}

static const char *policy_name(enum scone_update_policy p)
{
	return p == SCONE_UPDATE_EPHEMERAL ? "ephemeral" : "rollback_protected";
}

static json_t *exports(const struct scone_export *e, size_t n, bool volumes)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *o = json_pack("{s:s}", e[i].namespace ? "namespace" : "session",
				      e[i].session ? e[i].session : "");
		if (e[i].session_hash)
			json_object_set_new(o, "session_hash", json_string(e[i].session_hash));
		if (e[i].volume_alias)
			json_object_set_new(o, "volume_alias", json_string(e[i].volume_alias));
		if (volumes)
			json_object_set_new(o, "update_policy", json_string(policy_name(e[i].update_policy)));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *import(const struct scone_import *imp)
{
	json_t *o = json_pack("{s:s}", "session", imp->session ? imp->session : "");

	if (imp->name)
		json_object_set_new(o, "name", json_string(imp->name));
	if (imp->session_hash)
		json_object_set_new(o, "session_hash", json_string(imp->session_hash));
	return o;
}

static json_t *image(const struct scone_image *img)
{
	json_t *files = json_array(), *vols = json_array();
	json_t *o;

	for (size_t i = 0; i < img->n_files; i++) {
		const struct scone_injection_file *f = &img->files[i];
		json_array_append_new(
		    files,
		    json_pack("{s:s,s:o,s:o}", "path", f->path, "mode", json_sprintf("0%03o", f->mode),
			      "content",
			      f->content ? json_sprintf("given in the session, %zu bytes", f->content_len)
					 : json_string("the image's own file")));
	}
	for (size_t i = 0; i < img->n_volumes; i++)
		json_array_append_new(vols, json_pack("{s:s,s:s,s:s}", "name", img->volumes[i].name, "path",
						      img->volumes[i].path, "update_policy",
						      policy_name(img->volumes[i].update_policy)));
	o = json_pack("{s:s,s:o,s:o}", "name", img->name, "injection_files", files, "volumes", vols);
	if (img->restrict_secrets)
		json_object_set_new(o, "provide_secrets", strs(&img->provide_secrets));
	return o;
}

static json_t *secret(const struct scone_secret *sec)
{
	json_t *o = json_pack("{s:s,s:s}", "name", sec->name, "kind", scone_secret_kind_name(sec->kind));

	if (sec->import) {
		json_object_set_new(o, "import", import(sec->import));
		return o;
	}
	if (sec->value)
		json_object_set_new(o, "value", json_sprintf("explicit, %zu bytes", sec->value_len));
	else if (sec->kind == SCONE_SECRET_ASCII || sec->kind == SCONE_SECRET_BINARY)
		json_object_set_new(o, "size", json_integer((json_int_t)sec->size));
	if ((sec->kind == SCONE_SECRET_PRIVATE_KEY && !sec->value) ||
	    ((sec->kind == SCONE_SECRET_X509 || sec->kind == SCONE_SECRET_X509_CA) && !sec->private_key &&
	     !sec->value))
		json_object_set_new(o, "key_type", json_string(key_type_name(sec->key_type)));
	if ((sec->kind == SCONE_SECRET_X509 || sec->kind == SCONE_SECRET_X509_CA) && sec->common_name)
		json_object_set_new(o, "common_name", json_string(sec->common_name));
	if (sec->kind == SCONE_SECRET_PUBLIC_KEY && sec->private_key)
		json_object_set_new(o, "private_key", json_string(sec->private_key));
	if (sec->kind == SCONE_SECRET_CONFIG_FRAGMENT)
		json_object_set_new(o, "usable_in_strings", json_boolean(sec->fragment_scalar));
	if (sec->kind == SCONE_SECRET_X509 || sec->kind == SCONE_SECRET_X509_CA) {
		if (sec->kind == SCONE_SECRET_X509) {
			json_object_set_new(o, "dns", strs(&sec->dns));
			json_object_set_new(o, "ips", strs(&sec->ips));
			json_object_set_new(o, "endpoint",
					    json_string(sec->endpoint ? sec->endpoint : "(none: no EKU)"));
		}
		json_object_set_new(o, "valid_for_days",
				    sec->valid_for_days ? json_integer(sec->valid_for_days)
							: json_string("no expiry"));
		if (sec->issuer)
			json_object_set_new(o, "issuer", json_string(sec->issuer));
		if (sec->private_key)
			json_object_set_new(o, "private_key", json_string(sec->private_key));
	}
	if (sec->kind == SCONE_SECRET_PRIVATE_KEY)
		json_object_set_new(o, "migrate", json_boolean(sec->migrate));
	if (sec->n_exports)
		json_object_set_new(o, "export", exports(sec->exports, sec->n_exports, false));
	if (sec->export_public)
		json_object_set_new(o, "export_public", json_true());
	return o;
}

static json_t *volume(const struct scone_volume *v)
{
	json_t *o = json_pack("{s:s}", "name", v->name);

	if (v->import)
		json_object_set_new(o, "import", import(v->import));
	else
		json_object_set_new(o, "fspf_key", json_string(v->fspf_key ? "given" : "generated by CAS"));
	if (v->fspf_tag)
		json_object_set_new(o, "fspf_tag", json_string(v->fspf_tag));
	if (v->n_exports)
		json_object_set_new(o, "export", exports(v->exports, v->n_exports, true));
	return o;
}

json_t *cli_session_model(const struct scone_session *s)
{
	json_t *svcs = json_array(), *imgs = json_array(), *vols = json_array(), *secs = json_array(), *o;
	char h[65];

	for (size_t i = 0; i < s->n_services; i++)
		json_array_append_new(svcs, service(&s->services[i]));
	for (size_t i = 0; i < s->n_images; i++)
		json_array_append_new(imgs, image(&s->images[i]));
	for (size_t i = 0; i < s->n_volumes; i++)
		json_array_append_new(vols, volume(&s->volumes[i]));
	for (size_t i = 0; i < s->n_secrets; i++)
		json_array_append_new(secs, secret(&s->secrets[i]));
	o = json_pack("{s:s,s:s,s:b,s:s}", "name", s->name, "version", s->version, "dynamic", s->dynamic,
		      "attestation", s->mode == SCONE_ATTEST_NONE ? "none" : "hardware");
	if (s->predecessor)
		json_object_set_new(o, "predecessor", json_string(s->predecessor));
	if (s->salted)
		json_object_set_new(o, "salt", json_string("set (changes the hash only)"));
	if (s->tolerate.n || s->ignore_advisories.n || s->trusted_qe_pubkeys.n)
		json_object_set_new(o, "attestation_options",
				    json_pack("{s:o,s:o,s:o}", "tolerate", strs(&s->tolerate),
					      "ignore_advisories", strs(&s->ignore_advisories),
					      "trusted_scone_qe_pubkeys", strs(&s->trusted_qe_pubkeys)));
	json_object_set_new(o, "access_policy",
			    json_pack("{s:o,s:o,s:o}", "read", access_list(&s->read, "CREATOR"), "update",
				      access_list(&s->update, "CREATOR"), "create_sessions",
				      access_list(&s->create_sessions, "as update")));
	if (s->service_access_token)
		json_object_set_new(o, "service_access_token", json_string("set"));
	if (s->has_creator) {
		scone_hex_encode(h, sizeof(h), s->creator_spki_sha256, 32);
		json_object_set_new(o, "creator", json_sprintf("key sha256:%s", h));
	}
	if (s->namespace_hash)
		json_object_set_new(o, "namespace_hash", json_string(s->namespace_hash));
	json_object_set_new(o, "services", svcs);
	json_object_set_new(o, "images", imgs);
	json_object_set_new(o, "volumes", vols);
	json_object_set_new(o, "secrets", secs);
	return o;
}
