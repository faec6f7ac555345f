/*
 * session.c - scone_session_parse: text -> YAML tree -> typed, validated
 * model + canonical hash; freeing (with wiping) and lookups.
 *
 * Sections are decoded in dependency order, not document order: security
 * (services need the attestation mode), access_policy, secrets (templates
 * everywhere refer to them), volumes (images mount them), images
 * (services name them), services. Errors are sorted by position at the
 * end, so the user reads them top to bottom.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/hex.h"

/* ---- names ---- */

bool scone_session_name_valid(const char *name)
{
	size_t len, seg = 0;

	if (!name)
		return false;
	len = strlen(name);
	if (len == 0 || len > SCONE_SESSION_NAME_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char ch = name[i];
		if (ch == '/' || ch == '\0') {
			/* no empty segment, no "." or ".." (names become URL paths) */
			if (seg == 0 || (seg == 1 && name[i - 1] == '.') ||
			    (seg == 2 && name[i - 1] == '.' && name[i - 2] == '.'))
				return false;
			seg = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			   ch == '_' || ch == '.' || ch == '~' || ch == '-') {
			seg++;
		} else {
			return false;
		}
	}
	return true;
}

void scone_session_hash_hex(const uint8_t hash[32], char out[65])
{
	scone_hex_encode(out, 65, hash, 32);
}

/* ---- lookups ---- */

#define LOOKUP(fn, type, array, count)                                                                       \
	const type *fn(const struct scone_session *s, const char *name)                                      \
	{                                                                                                    \
		for (size_t i = 0; s && name && i < s->count; i++)                                           \
			if (s->array[i].name && strcmp(s->array[i].name, name) == 0)                         \
				return &s->array[i];                                                         \
		return NULL;                                                                                 \
	}

LOOKUP(scone_session_service, struct scone_service, services, n_services)
LOOKUP(scone_session_image, struct scone_image, images, n_images)
LOOKUP(scone_session_secret, struct scone_secret, secrets, n_secrets)
LOOKUP(scone_session_volume, struct scone_volume, volumes, n_volumes)

/* ---- free: every string may carry a secret (explicit keys, passwords in env) ---- */

static void wfree(char *p)
{
	if (p) {
		scone_wipe(p, strlen(p));
		free(p);
	}
}

static void free_import(struct scone_import *imp)
{
	if (imp) {
		free(imp->session);
		free(imp->name);
		free(imp);
	}
}

static void free_service(struct scone_service *svc)
{
	free(svc->name);
	free(svc->image_name);
	scone_strs_free(&svc->command);
	for (size_t i = 0; svc->env && i < svc->n_env; i++) {
		wfree(svc->env[i].key);
		wfree(svc->env[i].value);
	}
	free(svc->env);
	free(svc->pwd);
	scone_strs_free(&svc->mrenclaves);
	scone_strs_free(&svc->mrsigners);
	scone_strs_free(&svc->platforms);
	free(svc->fspf_path);
	wfree(svc->fspf_key);
	free(svc->fspf_tag);
	wfree(svc->otp_secret);
	for (size_t i = 0; svc->variants && i < svc->n_variants; i++) {
		scone_strs_free(&svc->variants[i].mrenclaves);
		free(svc->variants[i].mrsigner);
		scone_strs_free(&svc->variants[i].platforms);
	}
	free(svc->variants);
}

static void free_image(struct scone_image *img)
{
	free(img->name);
	for (size_t i = 0; img->files && i < img->n_files; i++) {
		free(img->files[i].path);
		if (img->files[i].content) {
			scone_wipe(img->files[i].content, img->files[i].content_len);
			free(img->files[i].content);
		}
	}
	free(img->files);
	for (size_t i = 0; img->volumes && i < img->n_volumes; i++) {
		free(img->volumes[i].name);
		free(img->volumes[i].path);
	}
	free(img->volumes);
}

static void free_secret(struct scone_secret *sec)
{
	free(sec->name);
	if (sec->value) {
		scone_wipe(sec->value, sec->value_len);
		free(sec->value);
	}
	free(sec->private_key);
	free(sec->issuer);
	free(sec->common_name);
	scone_strs_free(&sec->dns);
	scone_strs_free(&sec->ips);
	free(sec->endpoint);
	pol_free_exports(sec->exports, sec->n_exports);
	free_import(sec->import);
}

void scone_session_free(struct scone_session *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->version);
	free(s->predecessor);
	for (size_t i = 0; s->services && i < s->n_services; i++)
		free_service(&s->services[i]);
	free(s->services);
	for (size_t i = 0; s->images && i < s->n_images; i++)
		free_image(&s->images[i]);
	free(s->images);
	for (size_t i = 0; s->volumes && i < s->n_volumes; i++) {
		free(s->volumes[i].name);
		wfree(s->volumes[i].fspf_key);
		free(s->volumes[i].fspf_tag);
		pol_free_exports(s->volumes[i].exports, s->volumes[i].n_exports);
		free_import(s->volumes[i].import);
	}
	free(s->volumes);
	for (size_t i = 0; s->secrets && i < s->n_secrets; i++)
		free_secret(&s->secrets[i]);
	free(s->secrets);
	free(s->read.v);
	free(s->update.v);
	free(s->create_sessions.v);
	scone_strs_free(&s->tolerate);
	scone_strs_free(&s->ignore_advisories);
	scone_strs_free(&s->trusted_qe_pubkeys);
	wfree(s->otp_secret);
	scone_wipe(s, sizeof(*s));
	free(s);
}

/* ---- top level ---- */

static void decode_header(struct pctx *c, const struct ynode *root, struct scone_session *s)
{
	const struct ynode *v;
	size_t saved;

	if ((v = pol_field(c, root, "name", true))) {
		s->name = pol_field_str(c, root, "name", true);
		saved = pol_path_key(c, "name");
		if (s->name && !scone_session_name_valid(s->name))
			pol_error(
			    c, v->pos,
			    "invalid session name '%.80s': 1 to %d of A-Z a-z 0-9 _ . ~ - and '/' between "
			    "namespace parts (no empty, '.' or '..' part)",
			    s->name, SCONE_SESSION_NAME_MAX);
		pol_path_restore(c, saved);
	}
	if ((v = pol_field(c, root, "version", false))) {
		s->version = pol_field_str(c, root, "version", false);
		saved = pol_path_key(c, "version");
		if (s->version && strcmp(s->version, "0.3"))
			pol_error(c, v->pos,
				  "version \"%.20s\" is not supported: this is session language \"0.3\"",
				  s->version);
		pol_path_restore(c, saved);
	} else if (!pol_map_get(root, "version")) {
		pol_error(c, root->pos, "missing required key 'version' (write version: \"0.3\")");
	} else {
		saved = pol_path_key(c, "version");
		pol_error(c, pol_map_get(root, "version")->pos, "'version' needs a value (\"0.3\")");
		pol_path_restore(c, saved);
	}
	if ((v = pol_field(c, root, "predecessor", false))) {
		saved = pol_path_key(c, "predecessor");
		if (pol_expect(c, v, YN_SCALAR, "a session hash (64 hex digits) or ~") &&
		    pol_check_hex32(c, v) && (s->predecessor = pol_str(c, v)))
			pol_lower(s->predecessor);
		pol_path_restore(c, saved);
	}
}

static void decode_root(struct pctx *c, const struct ynode *root, struct scone_session *s)
{
	static const char *const keys[] = {"name",   "version", "predecessor",	 "services", "secrets",
					   "images", "volumes", "access_policy", "security", NULL};
	const struct ynode *v;

	if (root->kind != YN_MAP) {
		pol_error(c, root->pos,
			  "a session is a YAML mapping (name: ..., version: \"0.3\", services: ...), not %s",
			  pol_type_name(root));
		return;
	}
	pol_check_keys(c, root, keys);
	s->mode = SCONE_ATTEST_HARDWARE;
	decode_header(c, root, s);
	if ((v = pol_field(c, root, "security", false)))
		pol_decode_security(c, v, s);
	if ((v = pol_field(c, root, "access_policy", false)))
		pol_decode_access(c, v, s);
	if ((v = pol_field(c, root, "secrets", false))) {
		pol_decode_secrets(c, v, s);
		pol_check_secret_refs(c, v, s);
	}
	pol_decode_session_otp(c, root, s);
	if ((v = pol_field(c, root, "volumes", false)))
		pol_decode_volumes(c, v, s);
	if ((v = pol_field(c, root, "images", false)))
		pol_decode_images(c, v, s);
	if ((v = pol_field(c, root, "services", false)))
		pol_decode_services(c, v, s);
}

/* The first error (and how many more) as the thread's error detail. */
static enum scone_err fail_detail(struct pctx *c, enum scone_err e)
{
	char first[512] = "";

	if (c->diag->count)
		scone_policy_error_format(&c->diag->errors[0], first, sizeof(first));
	if (c->errors > 1)
		return scone_err_set(e, "%s (and %zu more)", first, c->errors - 1);
	return scone_err_set(e, "%s", first);
}

enum scone_err scone_session_parse(const char *text, size_t len, struct scone_session **out,
				   struct scone_policy_diag *diag)
{
	struct scone_policy_diag local;
	struct pctx c;
	struct ynode *root = NULL;
	struct scone_session *s = NULL;
	enum scone_err e;

	if (out)
		*out = NULL;
	if (!diag)
		diag = &local;
	memset(diag, 0, sizeof(*diag));
	memset(&c, 0, sizeof(c));
	c.diag = diag;
	if (!text && len) {
		e = scone_err_set(SCONE_ERR_INVALID, "session text is NULL");
		goto out;
	}
	if (len > SCONE_SESSION_MAX_BYTES) {
		struct scone_pos one = {1, 1};
		pol_error(&c, one, "the session is %zu bytes, more than the limit of %d", len,
			  SCONE_SESSION_MAX_BYTES);
		e = c.nomem ? SCONE_ERR_NOMEM : fail_detail(&c, SCONE_ERR_TOO_LARGE);
		goto out;
	}
	e = pol_yaml_load(&c, text, len, &root);
	if (e == SCONE_ERR_OK && root) {
		s = calloc(1, sizeof(*s));
		if (!s)
			c.nomem = true;
		else
			decode_root(&c, root, s);
	}
	if (e == SCONE_ERR_OK && !c.nomem && c.errors == 0)
		e = pol_yaml_hash(root, s->hash);
	if (e == SCONE_ERR_OK && c.nomem)
		e = scone_err_set(SCONE_ERR_NOMEM, "out of memory parsing the session");
	if (e == SCONE_ERR_OK && c.errors) {
		pol_diag_sort(diag);
		e = fail_detail(&c, SCONE_ERR_POLICY);
	}
	if (e == SCONE_ERR_OK && out) {
		*out = s;
		s = NULL;
	}
out:
	scone_session_free(s);
	pol_ynode_free(root);
	if (diag == &local)
		scone_policy_diag_free(&local);
	return e;
}
