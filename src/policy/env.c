/*
 * env.c - a service's environment.
 *
 * Two shapes: SCONE's mapping (NAME: value) and the list SCONE 7's tooling
 * writes (- name: NAME / value: VALUE). A name written \@\@NAME (SCONE's
 * host environment variable, 0.3.8; YAML keeps the backslashes of a plain
 * scalar) means: NAME is taken from the host's environment when the
 * program starts, and set empty when the host has none; the value written
 * beside it is ignored, as in SCONE. Host values are untrusted, so the
 * runtime adds them after every secret reference is expanded and never
 * expands them. A name given twice (NAME and \@\@NAME included) is an
 * error: which would win?
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define HOST_PREFIX "\\@\\@"
#define HOST_PREFIX_LEN 4

/* One variable: name node k (a scalar), value node v (NULL for the list form's missing value). */
static void env_entry(struct pctx *c, const struct ynode *k, const struct ynode *v, struct scone_kv *kv,
		      const struct scone_session *s)
{
	const char *name = k->text;

	kv->pos = v ? v->pos : k->pos;
	if (!strncmp(name, HOST_PREFIX, HOST_PREFIX_LEN)) {
		kv->from_host = true;
		name += HOST_PREFIX_LEN;
	} else if (!strncmp(name, "@@", 2)) {
		pol_error(c, k->pos,
			  "'%.80s': write \\@\\@%.80s to take %.80s from the host (SCONE's form; a quoted @@ "
			  "is not one)",
			  name, name + 2, name + 2);
		return;
	}
	if (!*name || strchr(name, '=')) {
		pol_error(c, k->pos, "an environment variable name must be non-empty and without '='");
		return;
	}
	kv->key = pol_strndup(c, name, strlen(name));
	if (kv->from_host) {
		if (v && v->kind == YN_SCALAR && !v->null && v->len)
			pol_note(
			    c, SCONE_NOTE_WARNING, v->pos,
			    "the value of \\@\\@%s is ignored (as in SCONE): %s comes from the host, empty "
			    "when the host has none",
			    name, name);
		pol_mark_consumed(v);
		return;
	}
	if (!v || (v->kind == YN_SCALAR && v->null))
		pol_error(c, v ? v->pos : k->pos, "no value: write \"\" for an empty string");
	else if ((kv->value = pol_str(c, v)))
		pol_check_template(c, v, v->text, v->len, s);
}

/* A name used twice (NAME and \@\@NAME are the same variable). */
static void env_unique(struct pctx *c, const struct scone_service *svc, const struct ynode *const *keys)
{
	for (size_t i = 0; i < svc->n_env; i++)
		for (size_t j = 0; svc->env[i].key && j < i; j++)
			if (svc->env[j].key && !strcmp(svc->env[i].key, svc->env[j].key)) {
				pol_error(c, keys[i]->pos, "variable %.80s is given twice (first at %d:%d)",
					  svc->env[i].key, keys[j]->pos.line, keys[j]->pos.column);
				break;
			}
}

static void env_map(struct pctx *c, const struct ynode *n, struct scone_service *svc,
		    const struct scone_session *s, const struct ynode **keys)
{
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
		size_t s2 = pol_path_key(c, k->text);
		((struct ynode *)k)->used = true;
		keys[i] = k;
		env_entry(c, k, v, &svc->env[i], s);
		pol_path_restore(c, s2);
	}
}

static void env_list(struct pctx *c, const struct ynode *n, struct scone_service *svc,
		     const struct scone_session *s, const struct ynode **keys)
{
	static const char *const item_keys[] = {"name", "value", NULL};

	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *m = n->items[i], *k;
		size_t s2 = pol_path_index(c, i);
		keys[i] = m;
		if (pol_expect(c, m, YN_MAP, "a mapping {name, value}")) {
			pol_check_keys(c, m, item_keys);
			k = pol_field(c, m, "name", true);
			if (k && pol_expect(c, k, YN_SCALAR, "a variable name")) {
				keys[i] = k;
				env_entry(c, k, pol_map_get(m, "value"), &svc->env[i], s);
			}
		}
		pol_path_restore(c, s2);
	}
}

void pol_decode_env(struct pctx *c, const struct ynode *n, struct scone_service *svc,
		    const struct scone_session *s)
{
	size_t saved = pol_path_key(c, "environment");
	const struct ynode **keys;

	if (n->kind != YN_SEQ &&
	    !pol_expect(c, n, YN_MAP, "a mapping NAME: value (or a list of {name, value})"))
		goto out;
	keys = pol_calloc(c, n->n, sizeof(*keys));
	svc->env = pol_calloc(c, n->n, sizeof(*svc->env));
	if (!keys || !svc->env) {
		free(keys);
		goto out;
	}
	svc->n_env = n->n;
	if (n->kind == YN_MAP)
		env_map(c, n, svc, s, keys);
	else
		env_list(c, n, svc, s, keys);
	env_unique(c, svc, keys);
	free(keys);
out:
	pol_path_restore(c, saved);
}
