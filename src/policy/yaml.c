/*
 * yaml.c - session text to a tree of struct ynode, through libyaml's event
 * parser (not its document loader), so every limit applies while parsing:
 * a hostile document is stopped at the first alias, the 17th nesting
 * level, the 1025th list item or the 131073rd node instead of after
 * libyaml has built it. Also the canonical hash over the tree.
 *
 * Refused outright (the parse stops): syntax errors, more than one
 * document, aliases and anchors (no billion laughs), explicit tags and
 * %TAG directives, nesting deeper than SCONE_SESSION_MAX_DEPTH, more than
 * SCONE_SESSION_MAX_ITEMS entries in one list or mapping, more than
 * SCONE_SESSION_MAX_NODES nodes, mapping keys that are not strings.
 * Reported and parsing continues: NUL bytes in scalars, duplicate keys.
 */
#include "internal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/buf.h"
#include "lib/crypto.h"

struct builder {
	struct pctx *c;
	size_t base; /* bytes skipped before libyaml's input (a byte order mark) */
	struct ynode *stack[SCONE_SESSION_MAX_DEPTH];
	size_t depth;
	struct ynode *root;
	size_t nodes;
	int docs;
	bool stop; /* a fatal problem was reported */
};

static struct scone_pos mark_pos(yaml_mark_t m)
{
	struct scone_pos p = {(int)m.line + 1, (int)m.column + 1};
	return p;
}

static bool is_null_text(const char *t, size_t len)
{
	return len == 0 || (len == 1 && t[0] == '~') ||
	       (len == 4 && (!memcmp(t, "null", 4) || !memcmp(t, "Null", 4) || !memcmp(t, "NULL", 4)));
}

void pol_ynode_free(struct ynode *n)
{
	if (!n)
		return;
	if (n->text) {
		scone_wipe(n->text, n->len);
		free(n->text);
	}
	for (size_t i = 0; i < n->cap && n->items; i++)
		pol_ynode_free(n->items[i]);
	free(n->items);
	free(n->order);
	free(n);
}

/* Key bytes order: memcmp over the common prefix, then shorter first. */
static int key_cmp(const struct ynode *a, const struct ynode *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int r = memcmp(a->text, b->text, n);
	if (r)
		return r;
	return a->len < b->len ? -1 : a->len > b->len;
}

/* qsort has no context argument: the mapping being sorted, per thread. */
static _Thread_local const struct ynode *tl_sort_map;

static int order_cmp(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	int r = key_cmp(tl_sort_map->items[2 * a], tl_sort_map->items[2 * b]);
	if (r)
		return r;
	return a < b ? -1 : a > b; /* stable: document order among equal keys */
}

/* Sort the keys of a finished mapping; report duplicates at the later one. */
static void map_finish(struct builder *b, struct ynode *m)
{
	if (m->n == 0)
		return;
	m->order = malloc(m->n * sizeof(*m->order));
	if (!m->order) {
		b->c->nomem = true;
		b->stop = true;
		return;
	}
	for (size_t i = 0; i < m->n; i++)
		m->order[i] = i;
	tl_sort_map = m;
	qsort(m->order, m->n, sizeof(*m->order), order_cmp);
	tl_sort_map = NULL;
	for (size_t i = 1; i < m->n; i++) {
		const struct ynode *prev = m->items[2 * m->order[i - 1]];
		const struct ynode *key = m->items[2 * m->order[i]];
		if (key_cmp(prev, key) == 0)
			pol_error(b->c, key->pos, "duplicate key '%s' (first at %d:%d)", key->text,
				  prev->pos.line, prev->pos.column);
	}
}

static struct ynode *node_new(struct builder *b, enum ynode_kind kind, yaml_mark_t mark)
{
	struct ynode *n;

	if (++b->nodes > SCONE_SESSION_MAX_NODES) {
		pol_error(b->c, mark_pos(mark), "more than %d YAML nodes in the session",
			  SCONE_SESSION_MAX_NODES);
		b->stop = true;
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		b->c->nomem = true;
		b->stop = true;
		return NULL;
	}
	n->kind = kind;
	n->pos = mark_pos(mark);
	return n;
}

/* Has the mapping a key whose value has not come yet? (slot 2n is filled) */
static size_t map_has_pending_key(const struct ynode *m)
{
	return m->cap > 2 * m->n && m->items[2 * m->n] ? 1 : 0;
}

/* Attach a new node to the open collection (or make it the root). Takes n. */
static void attach(struct builder *b, struct ynode *n)
{
	struct ynode *parent;
	size_t used;

	if (b->depth == 0) {
		if (b->root) {
			pol_ynode_free(n);
			return;
		}
		b->root = n;
		return;
	}
	parent = b->stack[b->depth - 1];
	used = parent->kind == YN_MAP ? 2 * parent->n + map_has_pending_key(parent) : parent->n;
	if (parent->kind == YN_MAP && used % 2 == 0) { /* n is a key */
		if (n->kind != YN_SCALAR) {
			pol_error(b->c, n->pos, "a mapping key must be a string, not %s", pol_type_name(n));
			pol_ynode_free(n);
			b->stop = true;
			return;
		}
		if (n->null) {
			pol_error(b->c, n->pos, "a mapping key must not be null");
			pol_ynode_free(n);
			b->stop = true;
			return;
		}
		if (parent->n >= SCONE_SESSION_MAX_ITEMS) {
			pol_error(b->c, n->pos, "more than %d keys in one mapping", SCONE_SESSION_MAX_ITEMS);
			pol_ynode_free(n);
			b->stop = true;
			return;
		}
	} else if (parent->kind == YN_SEQ && parent->n >= SCONE_SESSION_MAX_ITEMS) {
		pol_error(b->c, n->pos, "more than %d items in one list", SCONE_SESSION_MAX_ITEMS);
		pol_ynode_free(n);
		b->stop = true;
		return;
	}
	if (used == parent->cap) {
		size_t cap = parent->cap ? 2 * parent->cap : 8;
		struct ynode **items = realloc(parent->items, cap * sizeof(*items));
		if (!items) {
			pol_ynode_free(n);
			b->c->nomem = true;
			b->stop = true;
			return;
		}
		memset(items + parent->cap, 0, (cap - parent->cap) * sizeof(*items));
		parent->items = items;
		parent->cap = cap;
	}
	parent->items[used] = n;
	if (parent->kind == YN_SEQ || used % 2 == 1)
		parent->n++;
}

static void on_scalar(struct builder *b, yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct ynode *n = node_new(b, YN_SCALAR, ev->start_mark);

	if (!n)
		return;
	n->text = malloc(len + 1);
	if (!n->text) {
		free(n);
		b->c->nomem = true;
		b->stop = true;
		return;
	}
	memcpy(n->text, v, len);
	n->text[len] = '\0';
	n->len = len;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	n->null = n->plain && is_null_text(v, len);
	n->src_start = b->base + ev->start_mark.index;
	n->src_end = b->base + ev->end_mark.index;
	if (memchr(v, '\0', len))
		pol_error(b->c, n->pos, "a NUL byte (\\0) is not allowed in a value");
	attach(b, n);
}

static void on_start(struct builder *b, yaml_event_t *ev, enum ynode_kind kind)
{
	struct ynode *n;

	if (b->depth == SCONE_SESSION_MAX_DEPTH) {
		pol_error(b->c, mark_pos(ev->start_mark), "nesting deeper than %d levels",
			  SCONE_SESSION_MAX_DEPTH);
		b->stop = true;
		return;
	}
	n = node_new(b, kind, ev->start_mark);
	if (!n)
		return;
	attach(b, n);
	if (b->stop)
		return;
	b->stack[b->depth++] = n;
}

static void on_end(struct builder *b)
{
	struct ynode *n = b->stack[--b->depth];
	if (n->kind == YN_MAP)
		map_finish(b, n);
}

/* Anchors, aliases and tags are refused; returns true if ev has none. */
static bool plain_event(struct builder *b, yaml_event_t *ev)
{
	const yaml_char_t *anchor = NULL, *tag = NULL;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		break;
	}
	if (anchor) {
		pol_error(b->c, mark_pos(ev->start_mark),
			  "anchors (&%s) and aliases are not allowed in a session: write the value out",
			  (const char *)anchor);
		b->stop = true;
		return false;
	}
	if (tag && (!strcmp((const char *)tag, "!akv") || !strcmp((const char *)tag, "!cas"))) {
		pol_error(
		    b->c, mark_pos(ev->start_mark),
		    "YAML tags (%s) are not allowed in a session; SCONE's secret_config.store_in (secret "
		    "backends) is not supported: remove secret_config (CAS keeps secrets in its own store, "
		    "encrypted)",
		    (const char *)tag);
		b->stop = true;
		return false;
	}
	if (tag) {
		pol_error(b->c, mark_pos(ev->start_mark), "YAML tags (%s) are not allowed in a session",
			  (const char *)tag);
		b->stop = true;
		return false;
	}
	return true;
}

static void on_event(struct builder *b, yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->docs > 1) {
			pol_error(b->c, mark_pos(ev->start_mark),
				  "more than one YAML document: a session is exactly one document");
			b->stop = true;
		} else if (ev->data.document_start.tag_directives.start !=
			   ev->data.document_start.tag_directives.end) {
			pol_error(b->c, mark_pos(ev->start_mark),
				  "%%TAG directives are not allowed in a session");
			b->stop = true;
		}
		break;
	case YAML_ALIAS_EVENT:
		pol_error(b->c, mark_pos(ev->start_mark),
			  "aliases (*%s) are not allowed in a session (they can multiply a document's size): "
			  "write the value out",
			  (const char *)ev->data.alias.anchor);
		b->stop = true;
		break;
	case YAML_SCALAR_EVENT:
		if (plain_event(b, ev))
			on_scalar(b, ev);
		break;
	case YAML_SEQUENCE_START_EVENT:
		if (plain_event(b, ev))
			on_start(b, ev, YN_SEQ);
		break;
	case YAML_MAPPING_START_EVENT:
		if (plain_event(b, ev))
			on_start(b, ev, YN_MAP);
		break;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		on_end(b);
		break;
	default:
		break;
	}
}

/* Line and column of byte offset off (reader errors carry only an offset). */
static struct scone_pos offset_pos(const char *text, size_t len, size_t off)
{
	struct scone_pos p = {1, 1};
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			p.line++;
			p.column = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			p.column++;
		}
	}
	return p;
}

static void syntax_error(struct builder *b, yaml_parser_t *p, const char *text, size_t len)
{
	struct scone_pos pos;

	if (p->error == YAML_MEMORY_ERROR) {
		b->c->nomem = true;
	} else if (p->error == YAML_READER_ERROR) {
		pos = offset_pos(text, len, p->problem_offset);
		pol_error(b->c, pos, "not valid UTF-8 text: %s", p->problem ? p->problem : "unreadable");
	} else {
		pos = mark_pos(p->problem_mark);
		if (p->context)
			pol_error(b->c, pos, "YAML syntax error: %s (%s at %d:%d)",
				  p->problem ? p->problem : "", p->context, (int)p->context_mark.line + 1,
				  (int)p->context_mark.column + 1);
		else
			pol_error(b->c, pos, "YAML syntax error: %s", p->problem ? p->problem : "unknown");
	}
	b->stop = true;
}

/* Scalar values may be secrets: wipe libyaml's copy before it frees it. */
static void event_delete(yaml_event_t *ev)
{
	if (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.value)
		scone_wipe(ev->data.scalar.value, ev->data.scalar.length);
	yaml_event_delete(ev);
}

enum scone_err pol_yaml_load(struct pctx *c, const char *text, size_t len, struct ynode **root)
{
	yaml_parser_t p;
	yaml_event_t ev;
	struct builder b;
	bool done = false;

	*root = NULL;
	memset(&b, 0, sizeof(b));
	b.c = c;
	/* Some editors start UTF-8 files with a byte order mark: not part of the document. */
	if (text && len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
		b.base = 3;
		text += 3;
		len -= 3;
	}
	if (!yaml_parser_initialize(&p))
		return scone_err_set(SCONE_ERR_NOMEM, "cannot set up the YAML parser");
	yaml_parser_set_input_string(&p, (const unsigned char *)(text ? text : ""), len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	while (!done && !b.stop) {
		if (!yaml_parser_parse(&p, &ev)) {
			syntax_error(&b, &p, text, len);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		on_event(&b, &ev);
		event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (c->nomem) {
		pol_ynode_free(b.root);
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory parsing the session");
	}
	if (b.stop) {
		pol_ynode_free(b.root);
		return SCONE_ERR_OK;
	}
	if (!b.root || (b.root->kind == YN_SCALAR && b.root->null)) {
		struct scone_pos one = {1, 1};
		pol_error(c, one, "the session is empty");
		pol_ynode_free(b.root);
		return SCONE_ERR_OK;
	}
	*root = b.root;
	return SCONE_ERR_OK;
}

/* ---- canonical hash ---- */

#define HASH_DOMAIN "scone-session-v1"

static bool hash_put(EVP_MD_CTX *md, const void *p, size_t n)
{
	return EVP_DigestUpdate(md, p, n) == 1;
}

static bool hash_tag_len(EVP_MD_CTX *md, char tag, uint64_t n)
{
	uint8_t hdr[9];
	hdr[0] = (uint8_t)tag;
	scone_put_le64(hdr + 1, n);
	return hash_put(md, hdr, sizeof(hdr));
}

static bool hash_node(EVP_MD_CTX *md, const struct ynode *n)
{
	switch (n->kind) {
	case YN_SCALAR:
		if (n->null)
			return hash_put(md, "n", 1);
		return hash_tag_len(md, 's', n->len) && hash_put(md, n->text, n->len);
	case YN_SEQ:
		if (!hash_tag_len(md, 'l', n->n))
			return false;
		for (size_t i = 0; i < n->n; i++)
			if (!hash_node(md, n->items[i]))
				return false;
		return true;
	case YN_MAP:
		if (!hash_tag_len(md, 'm', n->n))
			return false;
		for (size_t i = 0; i < n->n; i++) {
			size_t k = n->order[i];
			if (!hash_node(md, n->items[2 * k]) || !hash_node(md, n->items[2 * k + 1]))
				return false;
		}
		return true;
	}
	return false;
}

enum scone_err pol_yaml_hash(const struct ynode *root, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	bool ok;

	if (!md)
		return scone_err_set(SCONE_ERR_NOMEM, "out of memory hashing the session");
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	     hash_put(md, HASH_DOMAIN, sizeof(HASH_DOMAIN)) && hash_node(md, root) &&
	     EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32;
	EVP_MD_CTX_free(md);
	return ok ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_CRYPTO, "SHA-256 of the session failed");
}
