/*
 * decode.c - typed readers over the YAML tree. Each reports what is wrong
 * at the node, under the current key path, and returns failure; callers
 * carry on with the next field so one run lists every problem.
 *
 * Scalars are read by their text: `port: 8080` and `port: "8080"` are the
 * same string. Only two places look at how a scalar was written: a plain
 * ~/null/empty is null (absent), and booleans and integers must be
 * written plain (true, 12), as YAML types them.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void *pol_calloc(struct pctx *c, size_t n, size_t size)
{
	void *p;

	if (n == 0)
		n = 1;
	p = calloc(n, size);
	if (!p)
		c->nomem = true;
	return p;
}

char *pol_strndup(struct pctx *c, const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p) {
		c->nomem = true;
		return NULL;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

const char *pol_type_name(const struct ynode *n)
{
	if (!n)
		return "nothing";
	switch (n->kind) {
	case YN_SCALAR:
		return n->null ? "null" : "a string";
	case YN_SEQ:
		return "a list";
	case YN_MAP:
		return "a mapping";
	}
	return "?";
}

const struct ynode *pol_map_key(const struct ynode *map, const char *key)
{
	size_t len = strlen(key);

	if (!map || map->kind != YN_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i];
		if (k->len == len && memcmp(k->text, key, len) == 0)
			return k;
	}
	return NULL;
}

const struct ynode *pol_map_get(const struct ynode *map, const char *key)
{
	const struct ynode *k = pol_map_key(map, key);
	size_t i;

	if (!k)
		return NULL;
	/* the tree is the parse's own; "used" is bookkeeping, not content */
	((struct ynode *)k)->used = true;
	for (i = 0; map->items[2 * i] != k; i++)
		;
	return map->items[2 * i + 1];
}

void pol_mark_consumed(const struct ynode *n)
{
	if (!n)
		return;
	if (n->kind == YN_MAP)
		for (size_t i = 0; i < n->n; i++)
			((struct ynode *)n->items[2 * i])->used = true;
	for (size_t i = 0; n->kind != YN_SCALAR && i < (n->kind == YN_MAP ? 2 * n->n : n->n); i++)
		pol_mark_consumed(n->items[i]);
}

static void consumed_walk(struct pctx *c, const struct ynode *n, unsigned depth)
{
	if (!n || n->kind == YN_SCALAR || depth > SCONE_SESSION_MAX_DEPTH + 1)
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *item = n->kind == YN_MAP ? n->items[2 * i + 1] : n->items[i];
		if (n->kind == YN_MAP && !n->items[2 * i]->used && ++c->diag->unread)
			pol_error(
			    c, n->items[2 * i]->pos,
			    "'%s' was accepted but not read (a scone bug: the session is refused rather than "
			    "run without it)",
			    n->items[2 * i]->text);
		consumed_walk(c, item, depth + 1);
	}
}

void pol_check_consumed(struct pctx *c, const struct ynode *n)
{
	consumed_walk(c, n, 0);
}

bool pol_deferred(struct pctx *c, const struct ynode *n)
{
	if (!n || !n->deferred)
		return false;
	c->deferred++;
	return true;
}

const struct ynode *pol_field(struct pctx *c, const struct ynode *map, const char *key, bool required)
{
	const struct ynode *v = pol_map_get(map, key);

	if (!v && required) {
		pol_error(c, map->pos, "missing required key '%s'", key);
		return NULL;
	}
	if (v && v->kind == YN_SCALAR && v->null && required) {
		size_t saved = pol_path_key(c, key);
		pol_error(c, v->pos, "'%s' needs a value", key);
		pol_path_restore(c, saved);
		return NULL;
	}
	if (v && v->kind == YN_SCALAR && v->null)
		return NULL; /* key: ~ is the same as no key */
	return v;
}

/* Levenshtein distance, capped: for "did you mean" hints on short keys. */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[40];

	if (la >= 39 || lb >= 39)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (up + 1 < best)
				best = up + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* The reason key is refused, from table (NULL-key terminated), or NULL. */
static const char *refusal_of(const struct pol_refusal *table, const char *key)
{
	for (size_t i = 0; table && table[i].key; i++)
		if (strcmp(table[i].key, key) == 0)
			return table[i].why;
	return NULL;
}

void pol_check_keys_refusing(struct pctx *c, const struct ynode *map, const char *const *allowed,
			     const struct pol_refusal *refused)
{
	for (size_t i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i];
		const char *why = refusal_of(refused, k->text);
		const char *hint = NULL;
		size_t best = 3, j;
		if (why) {
			size_t saved = pol_path_key(c, k->text);
			((struct ynode *)k)->used = true;
			pol_error(c, k->pos, "%s", why);
			pol_path_restore(c, saved);
			continue;
		}
		for (j = 0; allowed[j]; j++) {
			size_t d;
			if (strcmp(allowed[j], k->text) == 0)
				break;
			d = edit_distance(allowed[j], k->text);
			if (d < best) {
				best = d;
				hint = allowed[j];
			}
		}
		if (allowed[j])
			continue;
		if (hint)
			pol_error(c, k->pos, "unknown key '%s' (did you mean '%s'?)", k->text, hint);
		else
			pol_error(c, k->pos, "unknown key '%s'", k->text);
	}
}

void pol_check_keys(struct pctx *c, const struct ynode *map, const char *const *allowed)
{
	pol_check_keys_refusing(c, map, allowed, NULL);
}

bool pol_expect(struct pctx *c, const struct ynode *n, enum ynode_kind kind, const char *what)
{
	if (pol_deferred(c, n))
		return false; /* CAS resolves it (fragment.c); nothing to check here */
	if (n->kind == kind && !(kind == YN_SCALAR && n->null))
		return true;
	pol_error(c, n->pos, "expected %s, got %s", what, pol_type_name(n));
	return false;
}

char *pol_str(struct pctx *c, const struct ynode *n)
{
	if (!pol_expect(c, n, YN_SCALAR, "a string"))
		return NULL;
	return pol_strndup(c, n->text, n->len);
}

bool pol_bool(struct pctx *c, const struct ynode *n, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", NULL};
	static const char *const no[] = {"false", "False", "FALSE", NULL};

	if (pol_deferred(c, n))
		return false;
	if (n->kind == YN_SCALAR && n->plain) {
		for (size_t i = 0; yes[i]; i++) {
			if (strcmp(n->text, yes[i]) == 0) {
				*out = true;
				return true;
			}
			if (strcmp(n->text, no[i]) == 0) {
				*out = false;
				return true;
			}
		}
	}
	if (n->kind == YN_SCALAR && !n->null)
		pol_error(c, n->pos, "expected true or false, got '%s'", n->text);
	else
		pol_error(c, n->pos, "expected true or false, got %s", pol_type_name(n));
	return false;
}

bool pol_uint(struct pctx *c, const struct ynode *n, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (pol_deferred(c, n))
		return false;
	if (n->kind != YN_SCALAR || n->null) {
		pol_error(c, n->pos, "expected a number, got %s", pol_type_name(n));
		return false;
	}
	if (!n->plain || n->len == 0 || n->len > 10) {
		pol_error(c, n->pos, "expected a number (0 to %lu), got '%s'", max, n->text);
		return false;
	}
	for (size_t i = 0; i < n->len; i++) {
		if (n->text[i] < '0' || n->text[i] > '9') {
			pol_error(c, n->pos, "expected a number (0 to %lu), got '%s'", max, n->text);
			return false;
		}
		v = v * 10 + (unsigned long)(n->text[i] - '0');
	}
	if (v > max) {
		pol_error(c, n->pos, "%lu is too large (at most %lu)", v, max);
		return false;
	}
	*out = v;
	return true;
}

char *pol_field_str(struct pctx *c, const struct ynode *map, const char *key, bool required)
{
	const struct ynode *v = pol_field(c, map, key, required);
	size_t saved;
	char *s;

	if (!v)
		return NULL;
	saved = pol_path_key(c, key);
	s = pol_str(c, v);
	pol_path_restore(c, saved);
	return s;
}

bool pol_field_bool(struct pctx *c, const struct ynode *map, const char *key, bool *out)
{
	const struct ynode *v = pol_field(c, map, key, false);
	size_t saved;
	bool ok;

	if (!v)
		return true;
	saved = pol_path_key(c, key);
	ok = pol_bool(c, v, out);
	pol_path_restore(c, saved);
	return ok;
}

/*
 * Lists built here hold n strings and a NULL in strs_cap(n) slots (a
 * power of two), so appending is amortised O(1) without a capacity field.
 */
static size_t strs_cap(size_t n)
{
	size_t cap = 4;

	while (cap < n + 1)
		cap *= 2;
	return cap;
}

bool pol_strs_add(struct pctx *c, struct scone_strs *out, const char *s)
{
	char **v = out->v;

	if (!v || strs_cap(out->n + 1) != strs_cap(out->n)) {
		v = realloc(out->v, strs_cap(out->n + 1) * sizeof(*v));
		if (!v) {
			c->nomem = true;
			return false;
		}
		out->v = v;
	}
	v[out->n] = pol_strndup(c, s, strlen(s));
	if (!v[out->n])
		return false;
	v[++out->n] = NULL;
	return true;
}

void pol_lower(char *s)
{
	for (; s && *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* One list item (or the single string): check, copy, lowercase. */
static bool str_item(struct pctx *c, const struct ynode *n, bool lower, pol_str_check_fn check,
		     struct scone_strs *out)
{
	if (!pol_expect(c, n, YN_SCALAR, "a string"))
		return false;
	if (check && !check(c, n))
		return false;
	if (!pol_strs_add(c, out, n->text))
		return false;
	if (lower)
		pol_lower(out->v[out->n - 1]);
	return true;
}

bool pol_str_list(struct pctx *c, const struct ynode *n, bool single_ok, bool lower, pol_str_check_fn check,
		  struct scone_strs *out)
{
	bool ok = true;

	if (single_ok && n->kind == YN_SCALAR && !n->null)
		return str_item(c, n, lower, check, out);
	if (!pol_expect(c, n, YN_SEQ, single_ok ? "a string or a list of strings" : "a list of strings"))
		return false;
	for (size_t i = 0; i < n->n; i++) {
		size_t saved = pol_path_index(c, i);
		ok = str_item(c, n->items[i], lower, check, out) && ok;
		pol_path_restore(c, saved);
	}
	return ok;
}

bool pol_is_hex(const char *s, size_t n_bytes)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
			return false;
	}
	return i == 2 * n_bytes;
}

bool pol_check_hex32(struct pctx *c, const struct ynode *n)
{
	if (pol_is_hex(n->text, 32))
		return true;
	pol_error(c, n->pos, "expected 64 hex digits (32 bytes), got '%.80s'", n->text);
	return false;
}

/* [A-Za-z0-9_.~-]{1,128}, not "." or "..": the names of services, secrets, volumes. */
bool pol_check_name(struct pctx *c, const struct ynode *n, const char *what)
{
	size_t i;

	for (i = 0; i < n->len; i++) {
		char ch = n->text[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '.' || ch == '~' || ch == '-'))
			break;
	}
	if (n->len == 0 || n->len > SCONE_SESSION_NAME_MAX || i < n->len || !strcmp(n->text, ".") ||
	    !strcmp(n->text, "..")) {
		pol_error(c, n->pos, "invalid %s name '%.80s': use 1 to %d of A-Z a-z 0-9 _ . ~ -", what,
			  n->text, SCONE_SESSION_NAME_MAX);
		return false;
	}
	return true;
}

/* An absolute path without "." or ".." components, at most 4095 bytes. */
bool pol_check_abs_path(struct pctx *c, const struct ynode *n)
{
	const char *p = n->text;

	if (n->len == 0 || p[0] != '/') {
		pol_error(c, n->pos, "'%.80s' is not an absolute path", p);
		return false;
	}
	if (n->len > 4095) {
		pol_error(c, n->pos, "path longer than 4095 bytes");
		return false;
	}
	for (const char *seg = p; seg;) {
		const char *next = strchr(seg + 1, '/');
		size_t len = next ? (size_t)(next - seg - 1) : strlen(seg + 1);
		if ((len == 1 && seg[1] == '.') || (len == 2 && seg[1] == '.' && seg[2] == '.')) {
			pol_error(c, n->pos, "path '%.80s' has a '.' or '..' component", p);
			return false;
		}
		if (len == 0 && next) {
			pol_error(c, n->pos, "path '%.80s' has an empty component ('//')", p);
			return false;
		}
		seg = next;
	}
	return true;
}
