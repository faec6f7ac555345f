/*
 * refs.c - references from one part of a session to another: secret
 * references in templated values ($$SCONE::NAME:FORMAT$$), volume keys,
 * private_key / issuer between secrets, and unique names per list.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Valid for the kind; an import without kind: valid for some kind. */
static bool format_ok(const struct scone_secret *sec, const char *format)
{
	if (sec->kind)
		return scone_template_format_valid(sec->kind, format);
	for (int k = SCONE_SECRET_ASCII; k <= SCONE_SECRET_PGP_KEY; k++)
		if (scone_template_format_valid((enum scone_secret_kind)k, format))
			return true;
	return false;
}

struct tctx {
	struct pctx *c;
	const struct ynode *n;
	const struct scone_session *s;
	size_t refs;
	struct scone_pos at; /* the reference being checked */
	size_t offs[64];     /* where the first references are */
};

/*
 * SCONE's references from before 5.2 (NAME.crt, NAME.key, NAME.chain,
 * NAME.hex): accepted with SCONE's meaning and a warning. True if name is
 * one (reported either way).
 */
static bool legacy_ref(struct tctx *t, const char *name)
{
	char base[SCONE_SESSION_NAME_MAX + 1];
	const char *format = NULL;
	const struct scone_secret *sec;
	bool cert, ok;

	if (!scone_template_legacy(name, base, sizeof(base), &format) ||
	    !(sec = scone_session_secret(t->s, base)))
		return false;
	cert = sec->kind == SCONE_SECRET_X509 || sec->kind == SCONE_SECRET_X509_CA;
	ok = sec->kind == 0 || (strcmp(format, "hex") ? cert : sec->kind == SCONE_SECRET_BINARY);
	if (!ok) {
		pol_error(t->c, t->at, "$$SCONE::%s$$: the old form NAME%s applies to %s secrets, '%s' is %s",
			  name, strrchr(name, '.'), strcmp(format, "hex") ? "x509" : "binary", base,
			  scone_secret_kind_name(sec->kind));
		return true;
	}
	if (!strcmp(format, SCONE_FORMAT_LEGACY_CHAIN))
		pol_note(t->c, SCONE_NOTE_WARNING, t->at,
			 "$$SCONE::%s$$ is SCONE's form from before 5.2 (deprecated): the chain root first "
			 "and the "
			 "certificate last, as SCONE writes it; $$SCONE::%s:chain$$ is the current form (the "
			 "certificate first)",
			 name, base);
	else
		pol_note(t->c, SCONE_NOTE_WARNING, t->at,
			 "$$SCONE::%s$$ is SCONE's form from before 5.2 (deprecated): write $$SCONE::%s:%s$$",
			 name, base, format);
	return true;
}

static void unknown_secret(struct tctx *t, const char *name)
{
	if (scone_session_volume(t->s, name)) {
		pol_error(t->c, t->at,
			  "$$SCONE::%s$$ names a volume: volume keys cannot be referenced, only secrets",
			  name);
		return;
	}
	if (legacy_ref(t, name))
		return;
	pol_error(t->c, t->at, "$$SCONE::%s$$: no secret named '%s' in secrets", name, name);
}

static enum scone_err on_ref(void *ctx, const char *name, const char *format, size_t off, size_t size)
{
	struct tctx *t = ctx;
	const struct scone_secret *sec = scone_session_secret(t->s, name);
	char formats[400];

	(void)size;
	if (t->refs < sizeof(t->offs) / sizeof(t->offs[0]))
		t->offs[t->refs] = off;
	t->refs++;
	t->at = pol_pos_in(t->c, t->n, off);
	if (!sec) {
		unknown_secret(t, name);
	} else if (!format_ok(sec, format)) {
		scone_template_formats(sec->kind, formats, sizeof(formats));
		pol_error(t->c, t->at, "format '%s' is not valid for %s secret '%s' (formats: %s)",
			  format ? format : "(none)", scone_secret_kind_name(sec->kind), name,
			  sec->kind ? formats : "those of its kind");
	} else if (sec->kind == SCONE_SECRET_CONFIG_FRAGMENT && !sec->fragment_scalar) {
		pol_error(
		    t->c, t->at,
		    "config-fragment '%s' holds a list or mapping: use it as a whole value in security, "
		    "access_policy, or a service's attestation, mrenclaves or platforms, not inside a string",
		    name);
	}
	return SCONE_ERR_OK;
}

/* Offset of the first "$$SCONE::" in text that does not start a complete reference, or len. */
static size_t first_incomplete(const char *text, size_t len, const struct tctx *t)
{
	static const char prefix[] = "$$SCONE::";
	size_t known = t->refs < 64 ? t->refs : 64, k = 0;

	for (size_t i = 0; i + sizeof(prefix) - 1 <= len; i++) {
		if (text[i] != '$' || memcmp(text + i, prefix, sizeof(prefix) - 1))
			continue;
		while (k < known && t->offs[k] < i)
			k++;
		if (k < known && t->offs[k] == i)
			continue;
		return k < known || t->refs <= 64 ? i : len;
	}
	return len;
}

static size_t count_prefixes(const char *text, size_t len)
{
	static const char prefix[] = "$$SCONE::";
	size_t n = 0;

	for (size_t i = 0; i + sizeof(prefix) - 1 <= len; i++)
		if (text[i] == '$' && !memcmp(text + i, prefix, sizeof(prefix) - 1))
			n++;
	return n;
}

void pol_check_template(struct pctx *c, const struct ynode *n, const char *text, size_t len,
			const struct scone_session *s)
{
	struct tctx t = {.c = c, .n = n, .s = s, .at = n->pos};

	if (scone_template_refs_at(text, len, on_ref, &t) != SCONE_ERR_OK)
		return;
	if (count_prefixes(text, len) > t.refs)
		pol_error(c, pol_pos_in(c, n, first_incomplete(text, len, &t)),
			  "an incomplete secret reference: write $$SCONE::NAME$$ or $$SCONE::NAME:FORMAT$$ "
			  "(NAME of A-Z a-z 0-9 _ . ~ -, optionally |escape(json) before the closing $$)");
}

/* ---- volume keys ---- */

struct kctx {
	char name[SCONE_SESSION_NAME_MAX + 1];
	char format[40];
	int count;
	bool has_format;
};

static enum scone_err on_key_ref(void *ctx, const char *name, const char *format)
{
	struct kctx *k = ctx;

	if (k->count++ == 0) {
		snprintf(k->name, sizeof(k->name), "%s", name);
		k->has_format = format != NULL;
		snprintf(k->format, sizeof(k->format), "%s", format ? format : "");
	}
	return SCONE_ERR_OK;
}

void pol_check_fspf_key(struct pctx *c, const struct ynode *n, const struct scone_session *s)
{
	struct kctx k = {0};
	char whole[SCONE_SESSION_NAME_MAX + 64];
	const struct scone_secret *sec;
	size_t size;

	if (pol_is_hex(n->text, 32))
		return;
	if (scone_template_refs(n->text, n->len, on_key_ref, &k) != SCONE_ERR_OK || k.count != 1)
		goto bad;
	snprintf(whole, sizeof(whole), "$$SCONE::%s%s%s$$", k.name, k.has_format ? ":" : "", k.format);
	if (strcmp(whole, n->text))
		goto bad;
	sec = scone_session_secret(s, k.name);
	if (!sec) {
		pol_error(c, n->pos, "no secret named '%s' in secrets", k.name);
		return;
	}
	if (sec->kind && sec->kind != SCONE_SECRET_BINARY) {
		pol_error(c, n->pos, "a volume key must be a binary secret, '%s' is %s", k.name,
			  scone_secret_kind_name(sec->kind));
		return;
	}
	if (k.has_format && strcmp(k.format, "hex")) {
		pol_error(c, n->pos, "a volume key reference takes no format or :hex");
		return;
	}
	size = sec->value ? sec->value_len : sec->size;
	if (sec->kind == SCONE_SECRET_BINARY && size != 32)
		pol_error(c, n->pos, "a volume key must be 32 bytes, secret '%s' has %zu", k.name, size);
	return;
bad:
	pol_error(c, n->pos,
		  "expected 64 hex digits or one $$SCONE::NAME$$ reference to a 32-byte binary secret");
}

/* ---- private_key / issuer ---- */

static void check_ref(struct pctx *c, const struct ynode *m, const char *key, const struct scone_secret *sec,
		      const char *target_name, enum scone_secret_kind want, const struct scone_session *s)
{
	const struct scone_secret *target;
	const struct ynode *v = pol_map_get(m, key);
	size_t saved;

	if (!target_name || !v)
		return;
	saved = pol_path_key(c, key);
	target = scone_session_secret(s, target_name);
	if (!target)
		pol_error(c, v->pos, "no secret named '%.80s' in secrets", target_name);
	else if (target == sec)
		pol_error(c, v->pos, "a secret cannot name itself as its %s", key);
	else if (target->kind != want && !(target->import && target->kind == 0))
		pol_error(c, v->pos, "'%.80s' is %s, %s must name %s %s secret", target_name,
			  scone_secret_kind_name(target->kind), key,
			  want == SCONE_SECRET_X509_CA ? "an" : "a", scone_secret_kind_name(want));
	pol_path_restore(c, saved);
}

/* Does following issuer from sec come back to sec? */
static bool issuer_loops(const struct scone_secret *sec, const struct scone_session *s)
{
	const struct scone_secret *at = sec;

	for (size_t steps = 0; steps <= s->n_secrets; steps++) {
		if (!at->issuer)
			return false;
		at = scone_session_secret(s, at->issuer);
		if (!at)
			return false;
		if (at == sec)
			return true;
	}
	return false;
}

void pol_check_secret_refs(struct pctx *c, const struct ynode *list, const struct scone_session *s)
{
	size_t saved = pol_path_key(c, "secrets");

	for (size_t i = 0; list->kind == YN_SEQ && i < s->n_secrets && i < list->n; i++) {
		const struct scone_secret *sec = &s->secrets[i];
		const struct ynode *m = list->items[i];
		size_t s2;
		if (m->kind != YN_MAP || sec->import)
			continue;
		s2 = pol_path_index(c, i);
		check_ref(c, m, "private_key", sec, sec->private_key, SCONE_SECRET_PRIVATE_KEY, s);
		check_ref(c, m, "issuer", sec, sec->issuer, SCONE_SECRET_X509_CA, s);
		if (sec->issuer && scone_session_secret(s, sec->issuer) != sec && issuer_loops(sec, s)) {
			size_t s3 = pol_path_key(c, "issuer");
			pol_error(c, pol_map_get(m, "issuer")->pos,
				  "the issuer chain of '%s' comes back to it", sec->name ? sec->name : "");
			pol_path_restore(c, s3);
		}
		pol_path_restore(c, s2);
	}
	pol_path_restore(c, saved);
}

void pol_check_unique(struct pctx *c, const struct ynode *list, const char *key, const char *what)
{
	/* each name looked up once: the pairwise pass compares names only */
	const struct ynode **names = pol_calloc(c, list->n, sizeof(*names));

	if (!names)
		return;
	for (size_t i = 0; i < list->n; i++) {
		const struct ynode *a = pol_map_get(list->items[i], key);
		names[i] = a && a->kind == YN_SCALAR && !a->null ? a : NULL;
	}
	for (size_t i = 0; i < list->n; i++) {
		const struct ynode *a = names[i];
		for (size_t j = 0; a && j < i; j++) {
			const struct ynode *b = names[j];
			if (b && b->len == a->len && !memcmp(a->text, b->text, a->len)) {
				size_t s2 = pol_path_index(c, i);
				size_t s3 = pol_path_key(c, key);
				pol_error(c, a->pos, "%s name '%.80s' is used twice (first at %d:%d)", what,
					  a->text, b->pos.line, b->pos.column);
				pol_path_restore(c, s3);
				pol_path_restore(c, s2);
				break;
			}
		}
	}
	free(names);
}
