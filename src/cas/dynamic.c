/*
 * dynamic.c - SCONE's dynamic configurations on the CAS side: security,
 * access_policy, a service's attestation or platforms that name secrets by
 * $$SCONE::NAME$$ (a config-fragment imported from an administrative
 * session, a key hash another session publishes, ...).
 *
 * The stored session keeps those references (its hash is of the text as
 * written). Whenever CAS decides with such a section it parses the text
 * again with a resolver, so the decision follows the exporter's current
 * value, as SCONE evaluates them "at permission evaluation time":
 *   - own secrets are rendered from the session's secret set;
 *   - imports are resolved under the exporting session's rules (it must
 *     export the secret to this session, and have the pinned hash);
 *   - a config-fragment becomes a tree, anything else a string.
 * A value that is unavailable makes an access_policy entry count as NONE
 * (SCONE ignores such an entry) and fails anything else: a decision is
 * never made with a section CAS could not resolve.
 */
#include "cas.h"

#include <stdlib.h>
#include <string.h>

#include "cas/secrets.h"
#include "lib/log.h"

struct dyn {
	struct cas_imports im;
	const struct cas_loaded *own;
};

/* A config-fragment as its JSON text, or any other secret rendered in format. */
static enum scone_err value_of(const struct scone_secret_set *set, const struct scone_session *s,
			       const char *name, const char *format, bool *yaml, struct scone_wbuf *out)
{
	const struct scone_secret *def = scone_session_secret(s, name);

	if (def && def->kind == SCONE_SECRET_CONFIG_FRAGMENT) {
		*yaml = true;
		return scone_secrets_fragment(set, name, out);
	}
	return scone_secrets_render(set, name, format, out);
}

static enum scone_err resolve(void *ctx, const char *name, const char *format, bool *yaml,
			      struct scone_wbuf *out)
{
	struct dyn *d = ctx;
	const struct scone_secret *def = scone_session_secret(d->own->session, name);
	const struct cas_loaded *from;
	const char *src;
	bool public_only;
	enum scone_err err;

	*yaml = false;
	if (!def)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "secret %s is not defined", name);
	if (!def->import)
		return value_of(d->own->secrets, d->own->session, name, format, yaml, out);
	err = cas_exported_secret(&d->im, def, &from, &src, &public_only);
	if (!err && public_only) { /* export_public: the public part only, never a fragment or a key */
		const struct scone_secret *sd = scone_session_secret(from->session, src);
		if (sd && sd->kind == SCONE_SECRET_CONFIG_FRAGMENT)
			err = scone_err_set(SCONE_ERR_PERMISSION,
					    "config-fragment %s is only exported publicly", src);
		else
			err = scone_secrets_render_public(from->secrets, src, format, out);
	} else if (!err)
		err = value_of(from->secrets, from->session, src, format, yaml, out);
	if (err) {
		/* unavailable: an access entry is then ignored; anything else fails */
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s", scone_err_detail());
	}
	return SCONE_ERR_OK;
}

enum scone_err cas_effective_session(struct cas *cas, int worker, const struct cas_loaded *l,
				     struct scone_session **out)
{
	struct dyn d = {
	    .im = {.cas = cas, .worker = worker, .who = l->session, .who_creator = l->rec.creator}, .own = l};
	struct scone_parse_opts opts = {resolve, &d};
	struct scone_policy_diag diag;
	enum scone_err err;

	err = scone_session_parse_ex(l->rec.body, l->rec.body_len, &opts, out, &diag);
	cas_imports_free(&d.im);
	scone_policy_diag_free(&diag);
	if (err)
		scone_warn("session %s: its dynamic sections do not resolve now: %s", l->rec.name,
			   scone_err_detail());
	return err;
}

static const struct scone_access_list *pick(const struct scone_session *s, char which)
{
	if (which == 'r')
		return &s->read;
	if (which == 'c')
		return s->create_sessions.n || s->create_sessions.rule || s->create_sessions.dynamic
			   ? &s->create_sessions
			   : &s->update;
	return &s->update;
}

bool cas_access_allows(struct cas *cas, int worker, const struct cas_loaded *l, char which,
		       const uint8_t *peer)
{
	const struct scone_access_list *list = pick(l->session, which);
	struct scone_session *eff = NULL;
	bool ok;

	if (!list->dynamic)
		return scone_access_allows(list, peer, l->rec.creator);
	if (cas_effective_session(cas, worker, l, &eff) != SCONE_ERR_OK)
		return false; /* a policy CAS cannot resolve admits no one */
	ok = scone_access_allows(pick(eff, which), peer, l->rec.creator);
	scone_session_free(eff);
	return ok;
}
