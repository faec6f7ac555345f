/*
 * config.c - the service endpoint: a runtime asks for SESSION/SERVICE over
 * TLS with a fresh client key; CAS checks the attestation the session
 * demands and answers with the resolved configuration: argv, environment,
 * working directory, injection files and volume keys with every
 * $$SCONE::name$$ substituted. The answer carries an instance token,
 * HMAC(token key, SPKI hash of the caller's key || config id), with which
 * the same instance (same TLS key) later reports its volumes' new tags.
 *
 * Attestation (attest_gate.c): the request's evidence is verified through
 * the evidence interface and its claims matched to the session's mode and
 * the service's variants; a one-time password, where the session names a
 * secret for it, is a second factor in every mode (otp.c). Evidence binds
 * the TLS key, so neither it nor the token can be used over another
 * connection. A refusal is logged with the factor that failed, never with
 * a secret.
 */
#include "cas.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "cas/attest_gate.h"
#include "cas/otp.h"
#include "cas/secrets.h"
#include "lib/base64.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/token.h"
#include "policy/policy.h"

#define RESOLVED_MAX (8u * 1024 * 1024)
/* Why an export list can say no although it names the session. */
#define EXPORT_RULE                                                                                          \
	"(an export by name without session_hash reaches only sessions created by the exporting session's "  \
	"creator or inside a namespace session both live in; pin session_hash for another owner's session)"

struct resolve {
	struct cas_imports im;
	const struct cas_loaded *own;
	size_t refs; /* secrets rendered so far */
};

bool cas_exported_to(struct cas_imports *im, const struct cas_loaded *from, const struct scone_export *e,
		     size_t n)
{
	const struct scone_session *who = im->who;
	bool vouched = false, asked = false;
	char h[65];

	scone_session_hash_hex(who->hash, h);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(e[i].session);
		bool any = strcmp(e[i].session, "*") == 0;
		bool below =
		    e[i].namespace && strncmp(who->name, e[i].session, len) == 0 && who->name[len] == '/';
		if (!any && strcmp(e[i].session, who->name) != 0 && !below)
			continue;
		if (e[i].session_hash) {
			if (strcmp(e[i].session_hash, h) == 0)
				return true;
			continue;
		}
		if (any)
			return true;
		if (!asked) { /* the same answer for every entry by name */
			asked = true;
			vouched = cas_namespace_vouches(im->cas, im->worker, from->rec.name,
							from->rec.creator, who->name, im->who_creator);
		}
		if (vouched)
			return true;
	}
	return false;
}

void cas_imports_free(struct cas_imports *im)
{
	for (size_t i = 0; i < im->n; i++)
		cas_loaded_free(&im->loaded[i]);
	im->n = 0;
}

enum scone_err cas_imports_load(struct cas_imports *im, const char *session, const struct cas_loaded **out)
{
	struct cas_response scratch = {0};

	for (size_t i = 0; i < im->n; i++) {
		if (strcmp(im->loaded[i].rec.name, session) == 0) {
			*out = &im->loaded[i];
			return SCONE_ERR_OK;
		}
	}
	if (im->n == CAS_MAX_IMPORT_SESSIONS)
		return scone_err_set(SCONE_ERR_LIMIT, "imports from more than %d sessions",
				     CAS_MAX_IMPORT_SESSIONS);
	scone_wbuf_init(&scratch.body, 4096, 0);
	if (!cas_load_session(im->cas, im->worker, session, &im->loaded[im->n], &scratch)) {
		scone_wbuf_free(&scratch.body);
		return scone_err_set(SCONE_ERR_NOT_FOUND, "imported session %s is not available", session);
	}
	scone_wbuf_free(&scratch.body);
	*out = &im->loaded[im->n++];
	return SCONE_ERR_OK;
}

/* An import that pins the exporter's hash (import: {session_hash: H}) imports only from that version. */
static enum scone_err pinned_hash_ok(const struct scone_import *imp, const struct cas_loaded *from)
{
	char h[65];

	if (!imp->session_hash)
		return SCONE_ERR_OK;
	scone_session_hash_hex(from->rec.hash, h);
	if (strcmp(h, imp->session_hash) != 0)
		return scone_err_set(SCONE_ERR_PERMISSION,
				     "session %s has hash %s, not the session_hash the import pins",
				     imp->session, h);
	return SCONE_ERR_OK;
}

enum scone_err cas_exported_secret(struct cas_imports *im, const struct scone_secret *def,
				   const struct cas_loaded **from, const char **src_name, bool *public_only)
{
	const struct scone_secret *src;

	*public_only = false;
	SCONE_TRY(cas_imports_load(im, def->import->session, from));
	SCONE_TRY(pinned_hash_ok(def->import, *from));
	*src_name = def->import->name ? def->import->name : def->name;
	src = scone_session_secret((*from)->session, *src_name);
	if (!src || src->import)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "session %s has no secret %s to export",
				     def->import->session, *src_name);
	if (cas_exported_to(im, *from, src->exports, src->n_exports))
		return SCONE_ERR_OK;
	if (src->export_public) {
		*public_only = true;
		return SCONE_ERR_OK;
	}
	return scone_err_set(SCONE_ERR_PERMISSION,
			     "session %s does not export secret %s to session %s " EXPORT_RULE,
			     def->import->session, *src_name, im->who->name);
}

/* Generation (issuer, private_key): needs the private key, which export_public does not release. */
enum scone_err cas_resolve_secret_import(void *ctx, const struct scone_secret *imported,
					 const struct scone_secret_set **set, const char **name)
{
	struct cas_imports *im = ctx;
	const struct cas_loaded *from;
	bool public_only;

	SCONE_TRY(cas_exported_secret(im, imported, &from, name, &public_only));
	if (public_only && scone_secrets_is_private(from->secrets, *name))
		return scone_err_set(
		    SCONE_ERR_PERMISSION,
		    "secret %s: session %s releases secret %s only through export_public, which gives "
		    "its certificate and public key to everyone but never its private key: it cannot "
		    "sign (issuer) or be a private_key here; export it to session %s instead",
		    imported->name, imported->import->session, *name, im->who->name);
	*set = from->secrets;
	return SCONE_ERR_OK;
}

static void resolve_free(struct resolve *r)
{
	cas_imports_free(&r->im);
}

/* Template lookup: own secrets, or an import the exporting session allows. */
static enum scone_err lookup_secret(void *ctx, const char *name, const char *format, struct scone_wbuf *out)
{
	struct resolve *r = ctx;
	const struct scone_secret *def = scone_session_secret(r->own->session, name);
	const struct cas_loaded *from;
	const char *src_name;
	bool public_only;
	enum scone_err err;

	if (!def)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "secret %s is not defined in the session", name);
	r->refs++;
	if (!def->import)
		return scone_secrets_render(r->own->secrets, name, format, out);
	SCONE_TRY(cas_exported_secret(&r->im, def, &from, &src_name, &public_only));
	if (!public_only)
		return scone_secrets_render(from->secrets, src_name, format, out);
	err = scone_secrets_render_public(from->secrets, src_name, format, out);
	if (err == SCONE_ERR_PERMISSION)
		return scone_err_set(
		    err,
		    "secret %s in format %s: session %s releases secret %s only through export_public, "
		    "which gives its certificate and public key to everyone but never its private key; "
		    "export it to session %s to render its key",
		    name, format ? format : "(default)", def->import->session, src_name, r->own->rec.name);
	return err;
}

/*
 * The lookup of templates: name as written, else SCONE's old NAME.crt /
 * .key / .chain / .hex forms (the policy accepted them with a warning).
 */
static enum scone_err lookup_secret_or_legacy(void *ctx, const char *name, const char *format,
					      struct scone_wbuf *out)
{
	struct resolve *r = ctx;
	char base[SCONE_SESSION_NAME_MAX + 1];
	const char *legacy = NULL;

	if (!scone_session_secret(r->own->session, name) && !format &&
	    scone_template_legacy(name, base, sizeof(base), &legacy) &&
	    scone_session_secret(r->own->session, base))
		return lookup_secret(ctx, base, legacy, out);
	return lookup_secret(ctx, name, format, out);
}

/* Expand templates in text; the result must be a C string (no NUL) for argv/env. */
static enum scone_err expand(struct resolve *r, const char *text, size_t len, bool c_string,
			     const char *where, json_t **out)
{
	struct scone_wbuf b;
	enum scone_err err;

	scone_wbuf_init(&b, RESOLVED_MAX, 1);
	err = scone_template_expand(text, len, lookup_secret_or_legacy, r, &b);
	if (!err && c_string && memchr(b.data, '\0', b.size))
		err = scone_err_set(SCONE_ERR_INVALID,
				    "%s: a secret renders with a NUL byte (use :hex or :base64)", where);
	if (!err) {
		*out = c_string ? json_stringn(b.size ? (const char *)b.data : "", b.size) : NULL;
		if (c_string && !*out)
			err = scone_err_set(SCONE_ERR_INVALID,
					    "%s: a secret renders as binary (use :hex or :base64)", where);
	}
	if (!err && !c_string) {
		/* Files may hold any bytes: base64 in JSON. */
		size_t cap = scone_base64_encoded_len(b.size) + 1;
		char *b64 = malloc(cap);
		if (!b64) {
			err = scone_err_set(SCONE_ERR_NOMEM, "%s", where);
		} else {
			scone_base64_encode(b64, cap, b.size ? b.data : (const uint8_t *)"", b.size);
			*out = json_stringn(b64, cap - 1);
			scone_wipe(b64, cap);
			free(b64);
		}
	}
	if (err && !scone_err_detail()[0])
		scone_err_set(err, "%s", where);
	scone_wbuf_free(&b);
	return err;
}

/*
 * argv, and whether it holds no secret (command_public): then the runtime
 * may show it in the process's own argument area (ps, /proc/PID/cmdline),
 * where programs that set their process title write.
 */
static enum scone_err add_command(struct resolve *r, const struct scone_service *svc, json_t *cfg)
{
	json_t *argv = json_array(), *v;
	size_t refs = r->refs;
	char where[96];

	json_object_set_new(cfg, "command", argv);
	for (size_t i = 0; i < svc->command.n; i++) {
		snprintf(where, sizeof(where), "command[%zu]", i);
		SCONE_TRY(expand(r, svc->command.v[i], strlen(svc->command.v[i]), true, where, &v));
		json_array_append_new(argv, v);
	}
	json_object_set_new(cfg, "command_public", json_boolean(r->refs == refs));
	return SCONE_ERR_OK;
}

/*
 * The session's variables, and (host_environment) the names SCONE's
 * \@\@NAME takes from the host: the runtime adds those last, never expanded.
 */
static enum scone_err add_environment(struct resolve *r, const struct scone_service *svc, json_t *cfg)
{
	json_t *env = json_object(), *host = json_array(), *v;
	char where[200];

	json_object_set_new(cfg, "environment", env);
	json_object_set_new(cfg, "host_environment", host);
	for (size_t i = 0; i < svc->n_env; i++) {
		if (svc->env[i].from_host) {
			json_array_append_new(host, json_string(svc->env[i].key));
			continue;
		}
		snprintf(where, sizeof(where), "environment.%.128s", svc->env[i].key);
		SCONE_TRY(expand(r, svc->env[i].value, strlen(svc->env[i].value), true, where, &v));
		json_object_set_new(env, svc->env[i].key, v);
	}
	return SCONE_ERR_OK;
}

static enum scone_err add_files(struct resolve *r, const struct scone_image *img, json_t *cfg)
{
	json_t *files = json_array(), *content;
	char where[200];

	json_object_set_new(cfg, "injection_files", files);
	for (size_t i = 0; img && i < img->n_files; i++) {
		const struct scone_injection_file *f = &img->files[i];
		if (!f->content) {
			/* the image's own file: the runtime reads it and asks for its references
			 * (/v1/service/values) */
			json_array_append_new(files, json_pack("{s:s,s:i,s:b}", "path", f->path, "mode",
							       (int)f->mode, "from_image", 1));
			continue;
		}
		snprintf(where, sizeof(where), "injection file %.160s", f->path);
		SCONE_TRY(expand(r, f->content, f->content_len, false, where, &content));
		json_array_append_new(files, json_pack("{s:s,s:i,s:o}", "path", f->path, "mode", (int)f->mode,
						       "content_base64", content));
	}
	return SCONE_ERR_OK;
}

/*
 * The volume of owner that im->who imports under name: one exported to it
 * under that alias (volume_alias, SCONE 0.3.10), or without an alias under
 * its own name, by an entry that admits it (cas_exported_to: an entry by
 * name only within the exporter's own sessions and namespaces); *how is
 * the export entry. NULL if none (the original name of a volume exported
 * under an alias does not work, as in SCONE).
 */
static const struct scone_volume *exported_volume(struct cas_imports *im, const struct cas_loaded *owner,
						  const char *name, const struct scone_export **how)
{
	for (size_t i = 0; i < owner->session->n_volumes; i++) {
		const struct scone_volume *v = &owner->session->volumes[i];
		for (size_t j = 0; !v->import && j < v->n_exports; j++) {
			const struct scone_export *e = &v->exports[j];
			if (strcmp(e->volume_alias ? e->volume_alias : v->name, name) != 0)
				continue;
			if (cas_exported_to(im, owner, e, 1)) {
				*how = e;
				return v;
			}
		}
	}
	return NULL;
}

/* The volume behind a mount of own: itself, or the exporting session's (its owner loaded into r). */
static enum scone_err mounted_source(struct resolve *r, const struct scone_volume *vol,
				     const struct cas_loaded **owner, const struct scone_volume **def,
				     const struct scone_export **how)
{
	const char *src;

	*owner = r->own;
	*def = vol;
	*how = NULL;
	if (!vol->import)
		return SCONE_ERR_OK;
	src = vol->import->name ? vol->import->name : vol->name;
	SCONE_TRY(cas_imports_load(&r->im, vol->import->session, owner));
	if (vol->import->session_hash) {
		char h[65];
		scone_session_hash_hex((*owner)->rec.hash, h);
		if (strcmp(h, vol->import->session_hash) != 0)
			return scone_err_set(SCONE_ERR_PERMISSION,
					     "session %s has hash %s, not the session_hash the import "
					     "pins",
					     vol->import->session, h);
	}
	*def = exported_volume(&r->im, *owner, src, how);
	if (!*def)
		return scone_err_set(SCONE_ERR_PERMISSION,
				     "session %s exports no volume %s to session %s " EXPORT_RULE,
				     vol->import->session, src, r->own->rec.name);
	return SCONE_ERR_OK;
}

/* Key and tag of a volume: from the session, or generated and tracked by CAS. */
static enum scone_err volume_material(struct resolve *r, const struct scone_volume *vol, bool ephemeral,
				      json_t *o)
{
	const struct cas_loaded *owner;
	const struct scone_volume *def;
	const struct scone_export *how;
	struct scone_store *st = r->im.cas->stores[r->im.worker];
	uint8_t key[32];
	char hex[65], tag[65];
	json_t *v;

	SCONE_TRY(mounted_source(r, vol, &owner, &def, &how));
	/* an export may hold its importers to ephemeral mounts (update_policy, SCONE 0.3.2) */
	ephemeral = ephemeral || (how && how->update_policy == SCONE_UPDATE_EPHEMERAL);
	json_object_set_new(o, "session", json_string(owner->rec.name));
	json_object_set_new(o, "volume", json_string(def->name));
	if (def->fspf_key) {
		/* A key in the session may itself be a template. */
		struct resolve sub = {.im = {.cas = r->im.cas,
					     .worker = r->im.worker,
					     .who = owner->session,
					     .who_creator = owner->rec.creator},
				      .own = owner};
		enum scone_err err =
		    expand(&sub, def->fspf_key, strlen(def->fspf_key), true, "volume fspf_key", &v);
		resolve_free(&sub);
		SCONE_TRY(err);
		json_object_set_new(o, "key", v);
	} else {
		SCONE_TRY(scone_secrets_volume_key(owner->secrets, def->name, key));
		scone_hex_encode(hex, sizeof(hex), key, 32);
		scone_wipe(key, sizeof(key));
		json_object_set_new(o, "key", json_string(hex));
		scone_wipe(hex, sizeof(hex));
	}
	if (def->fspf_tag) {
		json_object_set_new(o, "tag", json_string(def->fspf_tag));
		json_object_set_new(o, "tag_tracked", json_false());
	} else {
		SCONE_TRY(st->ops->get_volume_tag(st, owner->rec.name, def->name, tag));
		if (ephemeral && !tag[0])
			return scone_err_set(
			    SCONE_ERR_INVALID,
			    "volume %s is not initialised, and an ephemeral mount cannot initialise it: "
			    "mount it once with update_policy: rollback_protected",
			    vol->name);
		json_object_set_new(o, "tag", json_string(tag));
		/* ephemeral: the runtime reports nothing, and the next start gets CAS's tag again */
		json_object_set_new(o, "tag_tracked", json_boolean(!ephemeral));
	}
	return SCONE_ERR_OK;
}

static enum scone_err add_volumes(struct resolve *r, const struct scone_image *img, json_t *cfg)
{
	json_t *vols = json_array();

	json_object_set_new(cfg, "volumes", vols);
	for (size_t i = 0; img && i < img->n_volumes; i++) {
		const struct scone_volume *vol = scone_session_volume(r->own->session, img->volumes[i].name);
		json_t *o =
		    json_pack("{s:s,s:s}", "name", img->volumes[i].name, "path", img->volumes[i].path);
		json_array_append_new(vols, o);
		if (!vol)
			return scone_err_set(SCONE_ERR_NOT_FOUND, "volume %s is not defined",
					     img->volumes[i].name);
		SCONE_TRY(
		    volume_material(r, vol, img->volumes[i].update_policy == SCONE_UPDATE_EPHEMERAL, o));
	}
	return SCONE_ERR_OK;
}

static enum scone_err add_fspf(struct resolve *r, const struct scone_service *svc, json_t *cfg)
{
	json_t *key = NULL;

	if (!svc->fspf_path) {
		json_object_set_new(cfg, "fspf", json_null());
		return SCONE_ERR_OK;
	}
	if (svc->fspf_key)
		SCONE_TRY(expand(r, svc->fspf_key, strlen(svc->fspf_key), true, "fspf_key", &key));
	json_object_set_new(cfg, "fspf",
			    json_pack("{s:s,s:o,s:s?}", "path", svc->fspf_path, "key",
				      key ? key : json_null(), "tag", svc->fspf_tag));
	return SCONE_ERR_OK;
}

enum scone_err cas_instance_token(struct cas *cas, const uint8_t spki[32], const char *session,
				  const char *service, uint8_t out[32])
{
	uint8_t msg[32 + 2 * (SCONE_SESSION_NAME_MAX + 1)];
	size_t n = 0, ls = strlen(session), lv = strlen(service);

	memcpy(msg, spki, 32);
	n = 32;
	memcpy(msg + n, session, ls + 1);
	n += ls + 1;
	memcpy(msg + n, service, lv + 1);
	n += lv + 1;
	return scone_hmac_sha256(cas->token_key, 32, msg, n, out);
}

static enum scone_err build_config(struct resolve *r, const struct scone_service *svc, const uint8_t spki[32],
				   json_t *cfg)
{
	const struct scone_image *img =
	    svc->image_name ? scone_session_image(r->own->session, svc->image_name) : NULL;
	uint8_t token[32];
	char h[65];

	scone_session_hash_hex(r->own->rec.hash, h);
	json_object_set_new(cfg, "session_hash", json_string(h));
	json_object_set_new(cfg, "mode", json_string(scone_attestation_mode_name(r->own->session->mode)));
	json_object_set_new(cfg, "pwd", json_string(svc->pwd ? svc->pwd : "/"));
	SCONE_TRY(add_command(r, svc, cfg));
	SCONE_TRY(add_environment(r, svc, cfg));
	SCONE_TRY(add_files(r, img, cfg));
	SCONE_TRY(add_volumes(r, img, cfg));
	SCONE_TRY(add_fspf(r, svc, cfg));
	SCONE_TRY(cas_instance_token(r->im.cas, spki, r->own->rec.name, svc->name, token));
	scone_hex_encode(h, sizeof(h), token, 32);
	json_object_set_new(cfg, "instance_token", json_string(h));
	return SCONE_ERR_OK;
}

/* The second factor: the service's (or session's) one-time password secret, if it has one. */
static enum scone_err check_otp(struct resolve *r, const struct scone_session *s,
				const struct scone_service *svc, const struct cas_config_request *cr)
{
	const char *text = scone_service_otp_secret(s, svc);
	struct scone_store *st = r->im.cas->stores[r->im.worker];
	uint8_t key[CAS_OTP_KEY_MAX];
	size_t key_len = 0;
	struct scone_wbuf b;
	enum scone_err err;

	if (!text)
		return SCONE_ERR_OK;
	scone_wbuf_init(&b, 4096, 1);
	err = scone_template_expand(text, strlen(text), lookup_secret, r, &b);
	if (!err)
		err = cas_otp_key((const char *)b.data, b.size, key, &key_len);
	if (!err)
		err = cas_otp_check(st, cr->session, cr->service, key, key_len, cr->otp, (int64_t)time(NULL));
	scone_wipe(key, sizeof(key));
	scone_wbuf_free(&b);
	return err;
}

/* A factor's verdict: a refusal is answered (403, the factor named) and logged. */
static bool factor_ok(const struct cas_request *req, const struct cas_config_request *cr, enum scone_err err,
		      struct cas_response *resp)
{
	if (!err)
		return true;
	if (err != SCONE_ERR_ATTESTATION) {
		cas_respond_err(resp, err, "attestation");
		return false;
	}
	scone_warn("configuration %s/%s refused to %s: %s", cr->session, cr->service,
		   req->peer_addr ? req->peer_addr : "?", scone_err_detail());
	cas_respond_error(resp, 403, "ATTESTATION", "%s/%s: %s", cr->session, cr->service,
			  scone_err_detail());
	return false;
}

/* The evidence, judged by session s (the stored one, or a dynamic one as it stands now). */
static bool attested(struct resolve *r, const struct cas_request *req, const struct scone_session *s,
		     const struct scone_service *svc, const struct cas_config_request *cr,
		     struct cas_response *resp)
{
	struct cas_attest_opts o = {.max_age_sec = r->im.cas->evidence_max_age,
				    .collateral = r->im.cas->collateral};
	struct scone_claims claims;

	return factor_ok(req, cr, cas_attest_gate(&o, s, svc, cr, req->peer_spki_sha256, &claims), resp);
}

/*
 * What CAS decides with: the stored session, or for a dynamic one (its
 * security or attestation name secrets CAS resolves) the session as it
 * stands now. view shares own's record; *eff (NULL for a static session) is
 * the caller's to free.
 */
static bool decide_view(struct cas *cas, int worker, const struct cas_loaded *own, struct cas_loaded *view,
			struct scone_session **eff, struct cas_response *resp)
{
	*view = *own;
	*eff = NULL;
	if (!own->session->dynamic)
		return true;
	if (cas_effective_session(cas, worker, own, eff) != SCONE_ERR_OK) {
		cas_respond_error(resp, 403, "ATTESTATION",
				  "session %s: its security or attestation does not resolve now: %s",
				  own->rec.name, scone_err_detail());
		return false;
	}
	view->session = *eff;
	return true;
}

/*
 * security.service_access_token (SCONE 0.3.9): a second factor both ways;
 * the proofs are in src/lib/token.h.
 */
static enum scone_err token_mac(const char *token, const char *who, const uint8_t spki[32],
				const char *session, const char *service, uint8_t out[32])
{
	char id[2 * SCONE_SESSION_NAME_MAX + 2];

	snprintf(id, sizeof(id), "%s/%s", session, service);
	return scone_access_token_mac(token, who, spki, id, out);
}

static bool access_token_ok(const struct scone_session *s, const struct cas_config_request *cr,
			    const uint8_t spki[32], struct cas_response *resp)
{
	uint8_t want[32], got[32];
	bool ok;

	if (!s->service_access_token)
		return true;
	ok = cr->access_token_mac[0] &&
	     scone_hex_decode(got, 32, cr->access_token_mac, "access_token_mac") == SCONE_ERR_OK &&
	     token_mac(s->service_access_token, SCONE_TOKEN_LABEL_RUNTIME, spki, cr->session, cr->service,
		       want) == SCONE_ERR_OK &&
	     scone_ct_equal(want, got, 32);
	scone_wipe(want, sizeof(want));
	if (!ok)
		cas_respond_error(
		    resp, 403, "ATTESTATION",
		    "session %s requires a service access token: start the service with the right "
		    "SCONE_SERVICE_ACCESS_TOKEN",
		    cr->session);
	return ok;
}

static enum scone_err access_token_proof(const struct scone_session *s, const struct cas_config_request *cr,
					 const uint8_t spki[32], json_t *cfg)
{
	uint8_t mac[32];
	char hex[65];

	if (!s->service_access_token)
		return SCONE_ERR_OK;
	SCONE_TRY(
	    token_mac(s->service_access_token, SCONE_TOKEN_LABEL_CAS, spki, cr->session, cr->service, mac));
	scone_hex_encode(hex, sizeof(hex), mac, 32);
	json_object_set_new(cfg, "access_token_proof", json_string(hex));
	return SCONE_ERR_OK;
}

void cas_handle_config(struct cas *cas, const struct cas_request *req, struct cas_response *resp)
{
	struct cas_config_request cr;
	struct scone_session *eff = NULL;
	struct cas_loaded own, view;
	struct resolve r = {.im = {.cas = cas, .worker = req->worker}};
	const struct scone_service *svc;
	enum scone_err err;
	json_t *cfg;

	err = cas_parse_config_request((const char *)req->body, req->body_len, &cr);
	if (err) {
		cas_respond_err(resp, err, "configuration request");
		return;
	}
	if (!req->has_peer_key) {
		cas_respond_error(resp, 400, "AUTH",
				  "the runtime must connect with a client certificate (its fresh TLS key "
				  "binds the evidence)");
		cas_config_request_free(&cr);
		return;
	}
	if (!cas_load_session(cas, req->worker, cr.session, &own, resp))
		goto denied;
	r.own = &own;
	r.im.who = own.session;
	r.im.who_creator = own.rec.creator;
	svc = scone_session_service(own.session, cr.service);
	if (!svc) {
		cas_respond_error(resp, 404, "NOT_FOUND", "session %s has no service %s", cr.session,
				  cr.service);
		goto out;
	}
	if (!decide_view(cas, req->worker, &own, &view, &eff, resp))
		goto out;
	/* The one-time password last: using a code is the one decision that changes state. */
	if (!attested(&r, req, view.session, svc, &cr, resp) ||
	    !access_token_ok(view.session, &cr, req->peer_spki_sha256, resp) ||
	    !factor_ok(req, &cr, check_otp(&r, view.session, svc, &cr), resp))
		goto out;
	cfg = json_pack("{s:s}", "config_id", "");
	json_object_set_new(cfg, "config_id", json_sprintf("%s/%s", cr.session, cr.service));
	err = build_config(&r, svc, req->peer_spki_sha256, cfg);
	if (!err)
		err = access_token_proof(view.session, &cr, req->peer_spki_sha256, cfg);
	if (err) {
		json_decref(cfg);
		cas_respond_err(resp, err, "configuration");
		goto out;
	}
	cas_respond_json(resp, 200, cfg);
	atomic_fetch_add(&cas->counters.config_fetches, 1);
	resolve_free(&r);
	scone_session_free(eff);
	cas_loaded_free(&own);
	cas_config_request_free(&cr);
	return;
out:
	resolve_free(&r);
	scone_session_free(eff);
	cas_loaded_free(&own);
denied:
	cas_config_request_free(&cr);
	atomic_fetch_add(&cas->counters.config_denied, 1);
}

/* Is volume name mounted by the service's image, and how (an ephemeral mount reports no tags)? */
static const struct scone_volume *mounted_volume(const struct scone_session *s,
						 const struct scone_service *svc, const char *name,
						 bool *ephemeral)
{
	const struct scone_image *img = svc->image_name ? scone_session_image(s, svc->image_name) : NULL;

	for (size_t i = 0; img && i < img->n_volumes; i++) {
		if (strcmp(img->volumes[i].name, name) == 0) {
			*ephemeral = img->volumes[i].update_policy == SCONE_UPDATE_EPHEMERAL;
			return scone_session_volume(s, name);
		}
	}
	return NULL;
}

/* Is tag (hex) the volume's tag in the store already? */
static bool tag_is_current(struct scone_store *st, const char *session, const char *volume, const char *tag)
{
	char cur[65];

	if (st->ops->get_volume_tag(st, session, volume, cur) != SCONE_ERR_OK) {
		scone_err_clear();
		return false;
	}
	return cur[0] && strcasecmp(cur, tag) == 0;
}

void cas_handle_volume_tag(struct cas *cas, const struct cas_request *req, struct cas_response *resp)
{
	struct cas_tag_request tr;
	struct cas_loaded own;
	struct resolve r = {.im = {.cas = cas, .worker = req->worker}};
	const struct cas_loaded *owner;
	const struct scone_service *svc;
	const struct scone_volume *vol;
	struct scone_store *st = cas->stores[req->worker];
	const struct scone_export *how = NULL;
	const struct scone_volume *def;
	uint8_t expect[32];
	const char *owner_volume;
	bool ephemeral = false, moved;
	enum scone_err err;

	err = cas_parse_tag_request((const char *)req->body, req->body_len, &tr);
	if (err) {
		cas_respond_err(resp, err, "volume tag request");
		return;
	}
	if (!req->has_peer_key ||
	    cas_instance_token(cas, req->peer_spki_sha256, tr.session, tr.service, expect) != SCONE_ERR_OK ||
	    !scone_ct_equal(expect, tr.token, 32)) {
		cas_respond_error(resp, 403, "PERMISSION",
				  "the instance token does not belong to this TLS key and service (fetch the "
				  "configuration first)");
		return;
	}
	if (!cas_load_session(cas, req->worker, tr.session, &own, resp))
		return;
	r.own = &own;
	r.im.who = own.session;
	r.im.who_creator = own.rec.creator;
	svc = scone_session_service(own.session, tr.service);
	vol = svc ? mounted_volume(own.session, svc, tr.volume, &ephemeral) : NULL;
	if (!vol) {
		cas_respond_error(resp, 403, "PERMISSION", "service %s/%s does not mount volume %s",
				  tr.session, tr.service, tr.volume);
		goto out;
	}
	err = mounted_source(&r, vol, &owner, &def, &how);
	if (err) {
		cas_respond_err(resp, err, "volume");
		goto out;
	}
	if (ephemeral || (how && how->update_policy == SCONE_UPDATE_EPHEMERAL)) {
		cas_respond_error(resp, 403, "PERMISSION",
				  "volume %s is mounted ephemeral: its state on CAS does not change",
				  tr.volume);
		goto out;
	}
	vol = def;
	owner_volume = def->name;
	if (vol->fspf_tag) {
		cas_respond_error(resp, 409, "CONFLICT",
				  "volume %s has a fixed tag in its session; update the session instead",
				  tr.volume);
		goto out;
	}
	err = st->ops->put_volume_tag(st, owner->rec.name, owner_volume, tr.previous_tag, tr.tag);
	/* A new tag committed: the report a runtime makes at every commit (see resp->routine). */
	moved = err == SCONE_ERR_OK && strcasecmp(tr.previous_tag, tr.tag) != 0;
	if (err == SCONE_ERR_CONFLICT && tag_is_current(st, owner->rec.name, owner_volume, tr.tag)) {
		scone_err_clear(); /* a report sent again after its answer was lost: done already */
		err = SCONE_ERR_OK;
	}
	if (err) {
		if (err == SCONE_ERR_CONFLICT)
			atomic_fetch_add(&cas->counters.tag_conflicts, 1);
		cas_respond_err(resp, err, "volume tag");
		goto out;
	}
	atomic_fetch_add(&cas->counters.tag_updates, 1);
	cas_respond_json(resp, 200, json_pack("{s:s,s:s}", "volume", tr.volume, "tag", tr.tag));
	/*
	 * One a commit: counted (tag_updates) and audited, not logged at info nor
	 * counted against the rate limit. A report sent again or one that names
	 * the current tag as the new one changes nothing and counts as usual.
	 */
	resp->routine = moved;
out:
	resolve_free(&r);
	cas_loaded_free(&own);
}

void cas_otp_provision(struct cas *cas, int worker, const struct cas_loaded *own, const char *service,
		       struct cas_response *resp)
{
	struct resolve r = {
	    .im = {.cas = cas, .worker = worker, .who = own->session, .who_creator = own->rec.creator},
	    .own = own};
	const struct scone_service *svc = scone_session_service(own->session, service);
	const char *text = svc ? scone_service_otp_secret(own->session, svc) : NULL;
	uint8_t key[CAS_OTP_KEY_MAX];
	size_t key_len = 0;
	char uri[1024];
	struct scone_wbuf b;
	enum scone_err err;

	if (!text) {
		cas_respond_error(resp, 404, "NOT_FOUND",
				  svc ? "service %s/%s has no one_time_password_shared_secret"
				      : "session %s has no service %s",
				  own->rec.name, service);
		return;
	}
	scone_wbuf_init(&b, 4096, 1);
	err = scone_template_expand(text, strlen(text), lookup_secret, &r, &b);
	if (!err)
		err = cas_otp_key((const char *)b.data, b.size, key, &key_len);
	if (!err)
		err = cas_otp_uri(key, key_len, own->rec.name, service, uri, sizeof(uri));
	scone_wipe(key, sizeof(key));
	scone_wbuf_free(&b);
	resolve_free(&r);
	if (err) {
		cas_respond_err(resp, err, "one-time password secret");
		return;
	}
	/* The one place CAS hands out a secret to an owner: provisioning an authenticator is its purpose. */
	cas_respond_json(resp, 200,
			 json_pack("{s:s,s:s,s:o,s:i,s:i}", "uri", uri, "issuer", "scone", "account",
				   json_sprintf("%s/%s", own->rec.name, service), "digits", CAS_OTP_DIGITS,
				   "period", CAS_OTP_STEP));
	scone_wipe(uri, sizeof(uri));
}

enum scone_err cas_render_ref(struct cas *cas, int worker, const struct cas_loaded *own, const char *name,
			      const char *format, struct scone_wbuf *out)
{
	struct resolve r = {
	    .im = {.cas = cas, .worker = worker, .who = own->session, .who_creator = own->rec.creator},
	    .own = own};
	enum scone_err err = lookup_secret_or_legacy(&r, name, format, out);

	resolve_free(&r);
	return err;
}
