/*
 * fragment.c - SCONE's "dynamic configurations" (0.3.10): a whole value
 * $$SCONE::NAME$$ (or $$SCONE::NAME:FORMAT$$) in security, access_policy,
 * or a service's attestation, mrenclaves or platforms stands for the secret's value.
 *
 * A config-fragment of this session with an explicit value is a YAML tree:
 * it is copied in where the reference stands (a list spliced into the list
 * it stands in, as SCONE combines lists), and the copy is searched again
 * for references (at most FRAG_DEPTH deep: a fragment naming itself ends
 * there). Any other secret (generated, or imported: its value lives in CAS
 * or in the exporting session) needs CAS: with a resolver
 * (scone_session_parse_ex) its value is put in, a string as a scalar and
 * a config-fragment as a tree; without one the reference is marked
 * deferred, the decoders skip it and the session is dynamic.
 *
 * The session hash is taken before this runs: it is of what was written.
 * Also here: a tree as canonical JSON (a config-fragment's stored value)
 * and deep copies.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"

#define FRAG_DEPTH 8		   /* fragments inside fragments */
#define FRAG_VALUE_MAX (64 * 1024) /* a resolved value, in bytes */

struct subst {
	struct pctx *c;
	struct ynode *root;
	struct scone_session *s;
	size_t nodes; /* nodes copied in so far */
	bool access;  /* inside access_policy: an unavailable entry counts as NONE */
};

/* ---- copies and JSON ---- */

static size_t count_nodes(const struct ynode *n)
{
	size_t k = 1;

	for (size_t i = 0; n->kind != YN_SCALAR && i < (n->kind == YN_MAP ? 2 * n->n : n->n); i++)
		k += count_nodes(n->items[i]);
	return k;
}

struct ynode *pol_ynode_clone(struct pctx *c, const struct ynode *n)
{
	struct ynode *m = calloc(1, sizeof(*m));
	size_t used = n->kind == YN_MAP ? 2 * n->n : n->n;

	if (!m) {
		c->nomem = true;
		return NULL;
	}
	*m = *n;
	m->text = NULL;
	m->items = NULL;
	m->order = NULL;
	m->cap = 0;
	if (n->kind == YN_SCALAR) {
		m->text = pol_strndup(c, n->text, n->len);
		if (!m->text) {
			free(m);
			return NULL;
		}
		return m;
	}
	m->items = calloc(used ? used : 1, sizeof(*m->items));
	m->cap = used ? used : 1;
	if (n->kind == YN_MAP && n->n)
		m->order = malloc(n->n * sizeof(*m->order));
	if (!m->items || (n->kind == YN_MAP && n->n && !m->order)) {
		c->nomem = true;
		pol_ynode_free(m);
		return NULL;
	}
	if (m->order)
		memcpy(m->order, n->order, n->n * sizeof(*m->order));
	for (size_t i = 0; i < used; i++) {
		if (!(m->items[i] = pol_ynode_clone(c, n->items[i]))) {
			pol_ynode_free(m);
			return NULL;
		}
	}
	return m;
}

static bool json_string(struct scone_wbuf *w, const char *t, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	bool ok = scone_wbuf_u8(w, '"') == SCONE_ERR_OK;

	for (size_t i = 0; ok && i < len; i++) {
		unsigned char ch = (unsigned char)t[i];
		char esc[6] = {'\\', (char)ch, 0};
		if (ch == '"' || ch == '\\')
			ok = scone_wbuf_put(w, esc, 2) == SCONE_ERR_OK;
		else if (ch < 0x20) {
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			ok = scone_wbuf_put(w, esc, 6) == SCONE_ERR_OK;
		} else {
			ok = scone_wbuf_u8(w, ch) == SCONE_ERR_OK;
		}
	}
	return ok && scone_wbuf_u8(w, '"') == SCONE_ERR_OK;
}

static bool json_node(struct scone_wbuf *w, const struct ynode *n)
{
	bool ok = true;

	if (n->kind == YN_SCALAR)
		return n->null ? scone_wbuf_put(w, "null", 4) == SCONE_ERR_OK
			       : json_string(w, n->text, n->len);
	ok = scone_wbuf_u8(w, n->kind == YN_MAP ? '{' : '[') == SCONE_ERR_OK;
	for (size_t i = 0; ok && i < n->n; i++) {
		if (i)
			ok = scone_wbuf_u8(w, ',') == SCONE_ERR_OK;
		if (ok && n->kind == YN_MAP)
			ok = json_node(w, n->items[2 * i]) && scone_wbuf_u8(w, ':') == SCONE_ERR_OK &&
			     json_node(w, n->items[2 * i + 1]);
		else if (ok)
			ok = json_node(w, n->items[i]);
	}
	return ok && scone_wbuf_u8(w, n->kind == YN_MAP ? '}' : ']') == SCONE_ERR_OK;
}

char *pol_ynode_json(struct pctx *c, const struct ynode *n)
{
	struct scone_wbuf w;
	char *out = NULL;

	scone_wbuf_init(&w, 4 * SCONE_SESSION_MAX_BYTES, 1);
	if (json_node(&w, n) && scone_wbuf_u8(&w, 0) == SCONE_ERR_OK)
		out = pol_strndup(c, (const char *)w.data, w.size - 1);
	else
		c->nomem = true;
	scone_wbuf_free(&w);
	return out;
}

/* ---- references ---- */

/* Is the scalar n exactly one reference? name/format filled. */
struct whole_ref {
	char name[SCONE_SESSION_NAME_MAX + 1];
	char format[40];
	bool has_format;
	int count;
	size_t size;
};

static enum scone_err on_whole(void *ctx, const char *name, const char *format, size_t off, size_t size)
{
	struct whole_ref *r = ctx;

	if (r->count++ == 0 && off == 0) {
		snprintf(r->name, sizeof(r->name), "%s", name);
		r->has_format = format != NULL;
		snprintf(r->format, sizeof(r->format), "%s", format ? format : "");
		r->size = size;
	}
	return SCONE_ERR_OK;
}

static bool whole_ref(const struct ynode *n, struct whole_ref *r)
{
	memset(r, 0, sizeof(*r));
	if (n->kind != YN_SCALAR || n->null || n->len < 11 || strncmp(n->text, "$$SCONE::", 9) != 0)
		return false;
	if (scone_template_refs_at(n->text, n->len, on_whole, r) != SCONE_ERR_OK)
		return false;
	return r->count == 1 && r->size == n->len;
}

/* The value node of secret name in the document's secrets list. */
static const struct ynode *fragment_value(const struct ynode *root, const char *name)
{
	const struct ynode *list = pol_map_get(root, "secrets");

	for (size_t i = 0; list && list->kind == YN_SEQ && i < list->n; i++) {
		const struct ynode *nm = pol_map_get(list->items[i], "name");
		if (nm && nm->kind == YN_SCALAR && !strcmp(nm->text, name))
			return pol_map_get(list->items[i], "value");
	}
	return NULL;
}

/* Positions of a tree copied in: the reference's; no source range; resolved. */
static void place(struct ynode *n, struct scone_pos pos, bool resolved)
{
	n->pos = pos;
	n->src_start = n->src_end = 0;
	n->resolved = resolved;
	for (size_t i = 0; n->kind != YN_SCALAR && i < (n->kind == YN_MAP ? 2 * n->n : n->n); i++)
		place(n->items[i], pos, resolved);
}

/* A scalar node holding text (a resolved string value). */
static struct ynode *scalar_node(struct pctx *c, const char *text, size_t len, struct scone_pos pos)
{
	struct ynode *n = calloc(1, sizeof(*n));

	if (!n || !(n->text = pol_strndup(c, text, len))) {
		free(n);
		c->nomem = true;
		return NULL;
	}
	n->kind = YN_SCALAR;
	n->len = len;
	n->pos = pos;
	n->resolved = true;
	return n;
}

/* The resolver's answer as a tree (NULL: reported). */
static struct ynode *resolved_tree(struct subst *st, const struct ynode *at, const struct whole_ref *r)
{
	struct pctx *c = st->c;
	struct scone_wbuf w;
	struct ynode *t = NULL;
	bool yaml = false;
	enum scone_err e;

	scone_wbuf_init(&w, FRAG_VALUE_MAX, 1);
	e = c->opts->resolve(c->opts->ctx, r->name, r->has_format ? r->format : NULL, &yaml, &w);
	if (e == SCONE_ERR_NOT_FOUND && st->access) {
		t = scalar_node(c, "NONE", 4, at->pos); /* SCONE ignores an unavailable entry */
	} else if (e != SCONE_ERR_OK) {
		pol_error(c, at->pos, "$$SCONE::%s$$: %s", r->name,
			  scone_err_detail()[0] ? scone_err_detail() : scone_strerror(e));
	} else if (!yaml) {
		if (memchr(w.data, '\0', w.size))
			pol_error(c, at->pos,
				  "$$SCONE::%s$$ renders as binary: use :hex (or another text format)",
				  r->name);
		else
			t = scalar_node(c, w.size ? (const char *)w.data : "", w.size, at->pos);
	} else if (pol_yaml_load(c, w.size ? (const char *)w.data : "", w.size, &t) == SCONE_ERR_OK && t) {
		place(t, at->pos, true);
	}
	scone_wbuf_free(&w);
	return t;
}

/* What stands for the reference r at node at: a copy, a resolved value, or NULL (deferred or reported). */
static struct ynode *substitute_one(struct subst *st, struct ynode *at, const struct whole_ref *r)
{
	const struct scone_secret *sec = scone_session_secret(st->s, r->name);
	struct pctx *c = st->c;

	if (!sec) {
		pol_error(c, at->pos, "$$SCONE::%s$$: no secret named '%s' in secrets", r->name, r->name);
		at->deferred = true; /* reported: the decoders skip it */
		return NULL;
	}
	if (sec->kind == SCONE_SECRET_CONFIG_FRAGMENT && !sec->import) {
		const struct ynode *v = fragment_value(st->root, r->name);
		struct ynode *copy;
		if (r->has_format) {
			pol_error(c, at->pos, "a config-fragment takes no format (write $$SCONE::%s$$)",
				  r->name);
			at->deferred = true;
			return NULL;
		}
		if (!v)
			return NULL; /* reported with the secret */
		st->nodes += count_nodes(v);
		if (st->nodes > SCONE_SESSION_MAX_NODES) {
			pol_error(c, at->pos, "config-fragments expand to more than %d nodes",
				  SCONE_SESSION_MAX_NODES);
			return NULL;
		}
		if ((copy = pol_ynode_clone(c, v)))
			pol_mark_consumed(copy);
		return copy;
	}
	if (sec->kind && !scone_template_format_valid(sec->kind, r->has_format ? r->format : NULL)) {
		char formats[160];
		scone_template_formats(sec->kind, formats, sizeof(formats));
		pol_error(c, at->pos, "format '%s' is not valid for %s secret '%s' (formats: %s)",
			  r->has_format ? r->format : "(none)", scone_secret_kind_name(sec->kind), r->name,
			  formats);
		at->deferred = true;
		return NULL;
	}
	if (!c->opts) {
		at->deferred = true; /* CAS resolves it; the decoders skip it */
		return NULL;
	}
	return resolved_tree(st, at, r);
}

static void walk(struct subst *st, struct ynode **slot, unsigned depth);
static struct ynode **value_slot(struct ynode *map, const char *key);

/* Splice the items of list into seq at index i (replacing the item there). */
static bool splice(struct pctx *c, struct ynode *seq, size_t i, struct ynode *list)
{
	size_t need = seq->n - 1 + list->n;
	struct ynode **items;

	if (need > SCONE_SESSION_MAX_ITEMS) {
		pol_error(c, list->pos, "the list grows beyond %d items with this config-fragment",
			  SCONE_SESSION_MAX_ITEMS);
		return false;
	}
	items = calloc(need ? need : 1, sizeof(*items));
	if (!items) {
		c->nomem = true;
		return false;
	}
	memcpy(items, seq->items, i * sizeof(*items));
	memcpy(items + i, list->items, list->n * sizeof(*items));
	memcpy(items + i + list->n, seq->items + i + 1, (seq->n - i - 1) * sizeof(*items));
	pol_ynode_free(seq->items[i]);
	free(seq->items);
	seq->items = items;
	seq->cap = need ? need : 1;
	seq->n = need;
	free(list->items); /* its items now belong to seq */
	list->items = NULL;
	list->cap = list->n = 0;
	pol_ynode_free(list);
	return true;
}

/* Too deep: reported once at n, which the decoders then skip. */
static bool too_deep(struct subst *st, struct ynode *n, unsigned depth)
{
	if (depth <= FRAG_DEPTH)
		return false;
	pol_error(st->c, n->pos, "config-fragments nested more than %d deep (does one name itself?)",
		  FRAG_DEPTH);
	n->deferred = true;
	return true;
}

/*
 * A reference standing as item i of seq: a list fragment is spliced in and
 * its items are items of seq in turn. Returns how many items stand at i now.
 */
static size_t walk_item(struct subst *st, struct ynode *seq, size_t i, unsigned depth)
{
	struct whole_ref r;
	struct ynode *t;
	size_t added, total = 0;

	if (seq->items[i]->resolved)
		return 1; /* a value CAS put in is never searched again */
	if (!whole_ref(seq->items[i], &r)) {
		walk(st, &seq->items[i], depth);
		return 1;
	}
	if (too_deep(st, seq->items[i], depth) || !(t = substitute_one(st, seq->items[i], &r)))
		return 1;
	if (t->kind != YN_SEQ) {
		pol_ynode_free(seq->items[i]);
		seq->items[i] = t;
		walk(st, &seq->items[i], depth + 1);
		return 1;
	}
	added = t->n;
	if (!splice(st->c, seq, i, t))
		return 1;
	for (size_t k = 0; k < added; k++)
		total += walk_item(st, seq, i + total, depth + 1);
	return total;
}

static void walk(struct subst *st, struct ynode **slot, unsigned depth)
{
	struct ynode *n = *slot, *t;
	struct whole_ref r;

	if (n->resolved)
		return; /* a value CAS put in is never searched again */
	if (too_deep(st, n, depth))
		return;
	if (n->kind == YN_SCALAR) {
		if (whole_ref(n, &r) && (t = substitute_one(st, n, &r))) {
			pol_ynode_free(n);
			*slot = t;
			walk(st, slot, depth + 1);
		}
		return;
	}
	if (n->kind == YN_MAP) {
		for (size_t i = 0; i < n->n; i++) {
			size_t saved = pol_path_key(st->c, n->items[2 * i]->text);
			walk(st, &n->items[2 * i + 1], depth);
			pol_path_restore(st->c, saved);
		}
		return;
	}
	for (size_t i = 0; i < n->n;) {
		size_t saved = pol_path_index(st->c, i);
		i += walk_item(st, n, i, depth);
		pol_path_restore(st->c, saved);
	}
}

/* The value of key in map, walked with its key path. */
static void walk_key(struct subst *st, struct ynode *map, const char *key)
{
	struct ynode **slot = value_slot(map, key);
	size_t saved;

	if (!slot)
		return;
	saved = pol_path_key(st->c, key);
	walk(st, slot, 0);
	pol_path_restore(st->c, saved);
}

/* The value slot of key in map, or NULL. */
static struct ynode **value_slot(struct ynode *map, const char *key)
{
	size_t len = strlen(key);

	for (size_t i = 0; map && map->kind == YN_MAP && i < map->n; i++)
		if (map->items[2 * i]->len == len && !memcmp(map->items[2 * i]->text, key, len))
			return &map->items[2 * i + 1];
	return NULL;
}

void pol_substitute(struct pctx *c, struct ynode *root, struct scone_session *s)
{
	struct subst st = {c, root, s, 0, false};
	struct ynode **services;

	if (root->kind != YN_MAP)
		return;
	walk_key(&st, root, "security");
	st.access = true;
	walk_key(&st, root, "access_policy");
	st.access = false;
	services = value_slot(root, "services");
	for (size_t i = 0; services && (*services)->kind == YN_SEQ && i < (*services)->n; i++) {
		struct ynode *svc = (*services)->items[i];
		size_t saved = pol_path_key(c, "services");
		size_t s2 = pol_path_index(c, i);
		/* measurements: attestation variants, the deprecated mrenclaves list, platforms */
		walk_key(&st, svc, "attestation");
		walk_key(&st, svc, "mrenclaves");
		walk_key(&st, svc, "platforms");
		pol_path_restore(c, s2);
		pol_path_restore(c, saved);
	}
}
