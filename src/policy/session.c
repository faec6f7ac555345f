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
		free(imp->session_hash);
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
		scone_strs_free(&svc->variants[i].mrtds);
		scone_strs_free(&svc->variants[i].snp_measurements);
		free(svc->variants[i].host_data);
		for (int r = 0; r < 4; r++)
			free(svc->variants[i].rtmr[r]);
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
	scone_strs_free(&img->provide_secrets);
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
	pol_free_access_list(&s->read);
	pol_free_access_list(&s->update);
	pol_free_access_list(&s->create_sessions);
	wfree(s->service_access_token);
	free(s->namespace_hash);
	scone_strs_free(&s->tolerate);
	scone_strs_free(&s->ignore_advisories);
	scone_strs_free(&s->trusted_qe_pubkeys);
	wfree(s->otp_secret);
	scone_wipe(s, sizeof(*s));
	free(s);
}

/* ---- top level ---- */

/* SCONE's top-level keys scone refuses: why, and what to write instead. */
static const struct pol_refusal root_refused[] = {
    {"secret_config",
     "SCONE's secret backends (secret_config.store_in: !akv / !cas) are not supported: remove "
     "secret_config (CAS keeps every secret in its own store, encrypted at rest)"},
    {"persistency",
     "'persistency' is printed by SCONE's session read and is output-only: remove it before uploading"},
    {NULL, NULL},
};

static void decode_root(struct pctx *c, struct ynode *root, struct scone_session *s)
{
	static const char *const keys[] = {
	    "name",	     "version",	 "predecessor", "services", "secrets",	      "images", "volumes",
	    "access_policy", "security", "salt",	"creator",  "namespace_hash", NULL};
	const struct ynode *v;

	if (root->kind != YN_MAP) {
		pol_error(c, root->pos,
			  "a session is a YAML mapping (name: ..., version: \"0.3\", services: ...), not %s",
			  pol_type_name(root));
		return;
	}
	pol_check_keys_refusing(c, root, keys, root_refused);
	s->mode = SCONE_ATTEST_HARDWARE;
	pol_decode_header(c, root, s);
	/* secrets first: the other sections refer to them, and fragments are substituted from them */
	if ((v = pol_field(c, root, "secrets", false))) {
		pol_decode_secrets(c, v, s);
		pol_check_secret_refs(c, v, s);
	}
	pol_substitute(c, root, s);
	if ((v = pol_field(c, root, "security", false)))
		pol_decode_security(c, v, s);
	if ((v = pol_field(c, root, "access_policy", false)))
		pol_decode_access(c, v, s);
	pol_decode_session_otp(c, root, s);
	if ((v = pol_field(c, root, "volumes", false)))
		pol_decode_volumes(c, v, s);
	if ((v = pol_field(c, root, "images", false)))
		pol_decode_images(c, v, s);
	if ((v = pol_field(c, root, "services", false)))
		pol_decode_services(c, v, s);
	if (c->deferred)
		s->dynamic = true;
	if (c->errors == 0)
		pol_check_consumed(c, root);
}

/* Notes in document order (insertion sort: at most 100). */
static void sort_notes(struct scone_policy_diag *d)
{
	for (size_t i = 1; i < d->n_notes; i++) {
		struct scone_policy_note tmp = d->notes[i];
		size_t j = i;
		while (j > 0 && (d->notes[j - 1].e.pos.line > tmp.e.pos.line ||
				 (d->notes[j - 1].e.pos.line == tmp.e.pos.line &&
				  d->notes[j - 1].e.pos.column > tmp.e.pos.column))) {
			d->notes[j] = d->notes[j - 1];
			j--;
		}
		d->notes[j] = tmp;
	}
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
	return scone_session_parse_ex(text, len, NULL, out, diag);
}

enum scone_err scone_session_parse_ex(const char *text, size_t len, const struct scone_parse_opts *opts,
				      struct scone_session **out, struct scone_policy_diag *diag)
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
	c.text = text;
	c.text_len = len;
	c.opts = opts && opts->resolve ? opts : NULL;
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
		/* the hash is of the text as written, before fragments are substituted */
		else if ((e = pol_yaml_hash(root, s->hash)) == SCONE_ERR_OK)
			decode_root(&c, root, s);
	}
	if (e == SCONE_ERR_OK && c.nomem)
		e = scone_err_set(SCONE_ERR_NOMEM, "out of memory parsing the session");
	if (e == SCONE_ERR_OK && c.errors) {
		pol_diag_sort(diag);
		e = fail_detail(&c, SCONE_ERR_POLICY);
	}
	sort_notes(diag);
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
