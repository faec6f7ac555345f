/*
 * audit_log.c - reading CAS's audit log (format in audit.h): one line at a
 * time through the bounded JSON parser (lines are untrusted: a log file is
 * handed around; fuzz/fuzz_audit.c), each checked for its hash, its
 * signature and its place in its chain.
 *
 * The signed part of a line is everything before ',"entry":'; the line must
 * end with exactly ,"entry":"<entry>","sig":"<sig>"} for the values it
 * holds, so no byte outside the signed part can change what a reader sees.
 */
#include "cas/audit.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/json.h"

#define LINE_MAX_BYTES SCONE_AUDIT_LINE_MAX
#define HEADER_KEY "scone_cas_audit_log"
#define SIG_B64_MAX 200

static const struct scone_json_limits line_limits = {
    .max_size = LINE_MAX_BYTES + 4096, /* a header carries a certificate */
    .max_nodes = 64,
    .max_depth = 2,
};

/* ---------------- one line ---------------- */

/* A string member into out (size bytes with its NUL); absent: "" unless required. */
static enum scone_err get_str(const struct scone_json *o, const char *key, bool required, char *out,
			      size_t size)
{
	const struct scone_json *v = scone_json_get(o, key);
	size_t len = 0;
	const char *s = scone_json_string(v, &len);

	out[0] = '\0';
	if (!v) {
		if (required)
			return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"%s\" is missing", key);
		return SCONE_ERR_OK;
	}
	if (!s)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"%s\" is not a string", key);
	if (len >= size)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"%s\" is longer than %zu bytes", key,
				     size - 1);
	memcpy(out, s, len + 1);
	return SCONE_ERR_OK;
}

static enum scone_err get_int(const struct scone_json *o, const char *key, bool required, int64_t *out)
{
	const struct scone_json *v = scone_json_get(o, key);

	*out = 0;
	if (!v && !required)
		return SCONE_ERR_OK;
	if (!v)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"%s\" is missing", key);
	return scone_json_int(v, key, out);
}

static enum scone_err get_hex32(const struct scone_json *o, const char *key, uint8_t out[32])
{
	char hex[65];

	SCONE_TRY(get_str(o, key, true, hex, sizeof(hex)));
	if (strlen(hex) != 64)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"%s\" is not 64 hex digits", key);
	return scone_hex_decode(out, 32, hex, key);
}

/* An optional 64-hex member (a hash or key hash) into out ("" if absent). */
static enum scone_err get_opt_hex(const struct scone_json *o, const char *key, char out[65])
{
	uint8_t tmp[32];

	SCONE_TRY(get_str(o, key, false, out, 65));
	if (out[0] && (strlen(out) != 64 || scone_hex_decode(tmp, 32, out, key) != SCONE_ERR_OK))
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"%s\" is not 64 hex digits", key);
	return SCONE_ERR_OK;
}

static bool chain_ok(const char *c)
{
	size_t n = strlen(c);

	if (n == 0 || n > SCONE_AUDIT_CHAIN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = c[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == ':' || ch == '/' || ch == '-'))
			return false;
	}
	return true;
}

/* "reports", "last" and "supersedes": all three (a span's later version of a tag entry) or none. */
static enum scone_err get_span_fields(const struct scone_json *o, struct cas_audit_entry *e)
{
	int64_t reports = 0;
	char sup[65];

	SCONE_TRY(get_int(o, "reports", false, &reports));
	SCONE_TRY(get_int(o, "last", false, &e->last));
	SCONE_TRY(get_opt_hex(o, "supersedes", sup));
	e->reports = 1;
	e->has_supersedes = false;
	if (!reports && !e->last && !sup[0])
		return SCONE_ERR_OK;
	if (reports < 2 || !e->last || !sup[0] || strcmp(e->event, "tag") != 0)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "audit entry: \"reports\" (2 or more), \"last\" and \"supersedes\" come "
				     "together, in a tag entry only");
	if (e->last < e->time)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"last\" is before \"time\"");
	e->reports = (uint64_t)reports;
	e->has_supersedes = true;
	return scone_hex_decode(e->supersedes, 32, sup, "supersedes");
}

static enum scone_err get_fields(const struct scone_json *o, struct cas_audit_entry *e)
{
	int64_t v = 0, seq = 0, status = 0;

	SCONE_TRY(get_int(o, "v", true, &v));
	if (v != 1)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "audit entry: version %lld is not 1",
				     (long long)v);
	SCONE_TRY(get_str(o, "chain", true, e->chain, sizeof(e->chain)));
	if (!chain_ok(e->chain))
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: bad chain name");
	SCONE_TRY(get_int(o, "seq", true, &seq));
	if (seq < 1)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: seq %lld is not positive",
				     (long long)seq);
	e->seq = (uint64_t)seq;
	SCONE_TRY(get_int(o, "time", true, &e->time));
	SCONE_TRY(get_str(o, "event", true, e->event, sizeof(e->event)));
	SCONE_TRY(get_str(o, "replica", false, e->replica, sizeof(e->replica)));
	SCONE_TRY(get_str(o, "session", false, e->session, sizeof(e->session)));
	SCONE_TRY(get_str(o, "service", false, e->service, sizeof(e->service)));
	SCONE_TRY(get_str(o, "volume", false, e->volume, sizeof(e->volume)));
	SCONE_TRY(get_opt_hex(o, "actor", e->actor));
	SCONE_TRY(get_opt_hex(o, "hash", e->hash));
	SCONE_TRY(get_opt_hex(o, "previous", e->previous));
	SCONE_TRY(get_str(o, "tag", false, e->tag, sizeof(e->tag)));
	SCONE_TRY(get_str(o, "previous_tag", false, e->previous_tag, sizeof(e->previous_tag)));
	SCONE_TRY(get_str(o, "code", false, e->code, sizeof(e->code)));
	SCONE_TRY(get_int(o, "status", false, &status));
	if (status < 0 || status > 999)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: status %lld out of range",
				     (long long)status);
	e->status = (int)status;
	SCONE_TRY(get_span_fields(o, e));
	SCONE_TRY(get_hex32(o, "prev", e->prev));
	return get_hex32(o, "entry", e->entry);
}

/*
 * The signature's bytes; the text must be their one canonical base64 (the
 * unused bits of a last character could otherwise vary, and the line with
 * them: one entry, one line).
 */
static enum scone_err decode_sig(const char *b64, unsigned char *sig, size_t *n)
{
	unsigned char again[SIG_B64_MAX + 4];
	size_t len = strlen(b64), pad = 0;
	int dec;

	if (len == 0 || len % 4 != 0 || len > SIG_B64_MAX)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"sig\" is not a base64 signature");
	dec = EVP_DecodeBlock(sig, (const unsigned char *)b64, (int)len);
	while (pad < 2 && b64[len - 1 - pad] == '=')
		pad++;
	if (dec < 0 || (size_t)dec < pad)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"sig\" is not base64");
	*n = (size_t)dec - pad;
	EVP_EncodeBlock(again, sig, (int)*n);
	if (strcmp((const char *)again, b64) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit entry: \"sig\" is not in canonical base64");
	return SCONE_ERR_OK;
}

static enum scone_err check_sig(EVP_PKEY *key, const char *signed_part, size_t n, const char *b64)
{
	unsigned char sig[SIG_B64_MAX];
	size_t sig_len = 0;
	EVP_MD_CTX *md;
	int ok;

	SCONE_TRY(decode_sig(b64, sig, &sig_len));
	md = EVP_MD_CTX_new();
	ok = md && EVP_DigestVerifyInit(md, NULL, scone_sha256_md(), NULL, key) == 1 &&
	     EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)signed_part, n) == 1;
	EVP_MD_CTX_free(md);
	return ok ? SCONE_ERR_OK
		  : scone_err_set(SCONE_ERR_TAMPERED,
				  "its signature is not CAS's (forged, or signed by another CAS)");
}

enum scone_err cas_audit_parse_line(const char *line, size_t len, EVP_PKEY *key, struct cas_audit_entry *out)
{
	struct scone_json *o = NULL;
	char sig[SIG_B64_MAX + 1], hex[65], suffix[SIG_B64_MAX + 100];
	uint8_t h[32];
	size_t slen;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	if (len > LINE_MAX_BYTES)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "audit entry of %zu bytes (at most %u)", len,
				     LINE_MAX_BYTES);
	SCONE_TRY(scone_json_parse(line, len, &line_limits, &o));
	if (o->kind != SCONE_JSON_OBJECT)
		err = scone_err_set(SCONE_ERR_MALFORMED, "audit entry: not a JSON object");
	else
		err = get_fields(o, out);
	if (err == SCONE_ERR_OK)
		err = get_str(o, "sig", true, sig, sizeof(sig));
	scone_json_free(o);
	SCONE_TRY(err);
	scone_hex_encode(hex, sizeof(hex), out->entry, 32);
	slen = (size_t)snprintf(suffix, sizeof(suffix), ",\"entry\":\"%s\",\"sig\":\"%s\"}", hex, sig);
	if (slen >= sizeof(suffix) || len < slen || memcmp(line + len - slen, suffix, slen) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "audit entry: does not end with its entry hash and signature");
	scone_sha256(line, len - slen, h);
	if (!scone_ct_equal(h, out->entry, 32))
		return scone_err_set(SCONE_ERR_TAMPERED, "its hash does not match its content (altered)");
	if (!key) { /* no key to check with: still only one form of the signature */
		unsigned char raw[SIG_B64_MAX];
		size_t n = 0;
		return decode_sig(sig, raw, &n);
	}
	return check_sig(key, line, len - slen, sig);
}

/* ---------------- headers ---------------- */

enum scone_err cas_audit_parse_header(const char *line, size_t len, char **pem)
{
	struct scone_json *o = NULL;
	const char *s;
	size_t n = 0;
	int64_t v = 0;
	enum scone_err err;

	*pem = NULL;
	SCONE_TRY(scone_json_parse(line, len, &line_limits, &o));
	err = get_int(o, HEADER_KEY, true, &v);
	if (err == SCONE_ERR_OK && v != 1)
		err = scone_err_set(SCONE_ERR_UNSUPPORTED, "audit log: format %lld is not 1", (long long)v);
	s = scone_json_string(scone_json_get(o, "certificate"), &n);
	if (err == SCONE_ERR_OK && !s)
		err = scone_err_set(SCONE_ERR_MALFORMED, "audit log header: no \"certificate\"");
	if (err == SCONE_ERR_OK && !(*pem = strdup(s)))
		err = scone_err_set(SCONE_ERR_NOMEM, "audit log header");
	scone_json_free(o);
	return err;
}

enum scone_err cas_audit_write_header(FILE *f, const char *cert_pem)
{
	struct scone_wbuf w;
	enum scone_err err;

	scone_wbuf_init(&w, 64 * 1024, 0);
	err = scone_wbuf_put(&w, "{\"" HEADER_KEY "\":1,\"certificate\":", strlen(HEADER_KEY) + 20);
	if (err == SCONE_ERR_OK)
		err = scone_json_put_string(&w, cert_pem);
	if (err == SCONE_ERR_OK)
		err = scone_wbuf_put(&w, "}\n", 2);
	if (err == SCONE_ERR_OK && fwrite(w.data, 1, w.size, f) != w.size)
		err = scone_err_set(SCONE_ERR_IO, "audit log: cannot write the header");
	scone_wbuf_free(&w);
	return err;
}

enum scone_err cas_audit_cert_key(const char *pem, size_t len, EVP_PKEY **out)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	*out = x ? X509_get_pubkey(x) : NULL;
	X509_free(x);
	if (!*out)
		return scone_err_set(SCONE_ERR_MALFORMED, "audit log: the certificate does not parse");
	return SCONE_ERR_OK;
}

/* ---------------- chains ---------------- */

struct head {
	char chain[SCONE_AUDIT_CHAIN_MAX + 1];
	uint64_t seq;
	uint8_t entry[32];
	/* the last entry as read (not seeded): its prev, and for a tag entry its span (audit.h) */
	bool read, is_tag;
	uint8_t prev[32], span[32];
	uint64_t reports;
	char tag[65];
};

struct cas_audit_log {
	EVP_PKEY *key;	  /* owned (a reference) */
	struct head *tab; /* open addressing; chain[0] == 0 marks a free slot */
	size_t cap, n;
	uint64_t entries;
	bool skip_known;
};

/* What every version of a span's entry has in common: the tag entry's who, what and since when. */
static void span_id(const struct cas_audit_entry *e, uint8_t out[32])
{
	char buf[3 * CAS_AUDIT_NAME_MAX + 4 * 65 + 64];
	int n = snprintf(buf, sizeof(buf), "%s|%s|%s|%s|%s|%s|%lld|%s", e->event, e->replica, e->session,
			 e->service, e->volume, e->actor, (long long)e->time, e->previous_tag);

	scone_sha256(buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1, out);
}

static void set_head(struct head *h, const struct cas_audit_entry *e)
{
	h->seq = e->seq;
	memcpy(h->entry, e->entry, 32);
	memcpy(h->prev, e->prev, 32);
	h->read = true;
	h->is_tag = strcmp(e->event, "tag") == 0;
	h->reports = e->reports;
	span_id(e, h->span);
	snprintf(h->tag, sizeof(h->tag), "%s", h->is_tag ? e->tag : "");
}

static size_t slot_hash(const char *s)
{
	size_t h = 1469598103934665603u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static struct head *find(const struct cas_audit_log *l, const char *chain)
{
	if (!l->cap)
		return NULL;
	for (size_t i = slot_hash(chain) & (l->cap - 1);; i = (i + 1) & (l->cap - 1)) {
		if (!l->tab[i].chain[0])
			return NULL;
		if (strcmp(l->tab[i].chain, chain) == 0)
			return &l->tab[i];
	}
}

static enum scone_err grow(struct cas_audit_log *l)
{
	size_t cap = l->cap ? 2 * l->cap : 64;
	struct head *old = l->tab, *tab = calloc(cap, sizeof(*tab));
	size_t old_cap = l->cap;

	if (!tab)
		return scone_err_set(SCONE_ERR_NOMEM, "audit log: chains");
	l->tab = tab;
	l->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].chain[0])
			continue;
		size_t j = slot_hash(old[i].chain) & (cap - 1);
		while (tab[j].chain[0])
			j = (j + 1) & (cap - 1);
		tab[j] = old[i];
	}
	free(old);
	return SCONE_ERR_OK;
}

static enum scone_err add(struct cas_audit_log *l, const char *chain, struct head **out)
{
	size_t i;

	if ((l->n + 1) * 2 > l->cap)
		SCONE_TRY(grow(l));
	for (i = slot_hash(chain) & (l->cap - 1); l->tab[i].chain[0]; i = (i + 1) & (l->cap - 1))
		;
	memcpy(l->tab[i].chain, chain, strlen(chain) + 1);
	l->n++;
	*out = &l->tab[i];
	return SCONE_ERR_OK;
}

enum scone_err cas_audit_log_new(EVP_PKEY *key, struct cas_audit_log **out)
{
	struct cas_audit_log *l = calloc(1, sizeof(*l));

	if (!l)
		return scone_err_set(SCONE_ERR_NOMEM, "audit log");
	if (key && EVP_PKEY_up_ref(key) == 1)
		l->key = key;
	*out = l;
	return SCONE_ERR_OK;
}

void cas_audit_log_free(struct cas_audit_log *l)
{
	if (!l)
		return;
	EVP_PKEY_free(l->key);
	free(l->tab);
	free(l);
}

void cas_audit_log_counts(const struct cas_audit_log *l, uint64_t *entries, size_t *chains)
{
	*entries = l->entries;
	*chains = l->n;
}

bool cas_audit_log_head(const struct cas_audit_log *l, const char *chain, uint64_t *seq, uint8_t entry[32])
{
	const struct head *h = find(l, chain);

	if (!h)
		return false;
	*seq = h->seq;
	memcpy(entry, h->entry, 32);
	return true;
}

enum scone_err cas_audit_log_seed(struct cas_audit_log *l, const char *chain, uint64_t seq,
				  const uint8_t entry[32])
{
	struct head *h = find(l, chain);

	if (!h)
		SCONE_TRY(add(l, chain, &h));
	h->seq = seq;
	memcpy(h->entry, entry, 32);
	h->read = false; /* known by its hash only */
	return SCONE_ERR_OK;
}

enum scone_err cas_audit_log_seed_entry(struct cas_audit_log *l, const struct cas_audit_entry *e)
{
	struct head *h = find(l, e->chain);

	if (!h)
		SCONE_TRY(add(l, e->chain, &h));
	set_head(h, e);
	return SCONE_ERR_OK;
}

bool cas_audit_log_head_tag(const struct cas_audit_log *l, const char *chain, uint64_t *seq, char tag[65],
			    uint64_t *reports)
{
	const struct head *h = find(l, chain);

	if (!h || !h->read || !h->is_tag)
		return false;
	*seq = h->seq;
	memcpy(tag, h->tag, 65);
	*reports = h->reports;
	return true;
}

enum scone_err cas_audit_log_base(struct cas_audit_log *l, const struct cas_audit_log *base)
{
	for (size_t i = 0; i < base->cap; i++) {
		struct head *h;
		if (!base->tab[i].chain[0])
			continue;
		if (!(h = find(l, base->tab[i].chain)))
			SCONE_TRY(add(l, base->tab[i].chain, &h));
		*h = base->tab[i];
	}
	l->skip_known = true;
	return SCONE_ERR_OK;
}

/* Is h a later version of b's span entry (more reports of the same span, same predecessor)? */
static bool later_version(const struct head *h, const struct head *b)
{
	return h->read && b->read && h->is_tag && b->is_tag && scone_ct_equal(h->prev, b->prev, 32) &&
	       scone_ct_equal(h->span, b->span, 32) && h->reports > b->reports;
}

enum scone_err cas_audit_log_extends(const struct cas_audit_log *l, const struct cas_audit_log *base)
{
	for (size_t i = 0; i < base->cap; i++) {
		const struct head *b = &base->tab[i], *h;
		if (!b->chain[0])
			continue;
		h = find(l, b->chain);
		if (!h)
			return scone_err_set(SCONE_ERR_ROLLBACK, "chain %s (%llu entries before) is missing",
					     b->chain, (unsigned long long)b->seq);
		if (h->seq < b->seq)
			return scone_err_set(SCONE_ERR_ROLLBACK,
					     "chain %s ends at entry %llu, before at %llu", b->chain,
					     (unsigned long long)h->seq, (unsigned long long)b->seq);
		if (h->seq == b->seq && !scone_ct_equal(h->entry, b->entry, 32) && !later_version(h, b))
			return scone_err_set(SCONE_ERR_ROLLBACK, "chain %s: entry %llu differs from before",
					     b->chain, (unsigned long long)b->seq);
	}
	return SCONE_ERR_OK;
}

/* ---------------- whole logs ---------------- */

/*
 * A later version of the chain's last entry h (audit.h, "Spans") takes its
 * place: one that continues h's span (later_version: same predecessor and
 * span, more reports; versions between the two may be absent, an export
 * holds only the last), or, after a seeded head known by its hash only, one
 * that names it as superseded (the store checks the rest when the version
 * takes the entry's place). *taken false: e is no version of h.
 */
static enum scone_err take_version(struct head *h, const struct cas_audit_entry *e, bool *taken)
{
	struct head v = *h;
	bool continues;

	set_head(&v, e);
	continues = later_version(&v, h);
	*taken = continues || scone_ct_equal(e->supersedes, h->entry, 32);
	if (!*taken)
		return SCONE_ERR_OK;
	if (h->read && !continues)
		return scone_err_set(SCONE_ERR_TAMPERED,
				     "it replaces entry %llu of its chain but does not continue that "
				     "entry's span of tag reports",
				     (unsigned long long)h->seq);
	*h = v;
	return SCONE_ERR_OK;
}

/*
 * Does the entry follow its chain? known: it is at or before the head
 * (skipped). A span's later version of the head takes its place.
 */
static enum scone_err link(struct cas_audit_log *l, const struct cas_audit_entry *e, bool *known)
{
	static const uint8_t zero[32];
	struct head *h = find(l, e->chain);
	bool taken = false;

	*known = false;
	if (h && e->seq == h->seq && e->has_supersedes) {
		enum scone_err err = take_version(h, e, &taken);
		if (err != SCONE_ERR_OK || taken)
			return err;
	}
	if (!h) {
		if (e->seq != 1 || !scone_ct_equal(e->prev, zero, 32))
			return scone_err_set(SCONE_ERR_MISSING,
					     "the chain does not start here (entries before it are "
					     "missing)");
		SCONE_TRY(add(l, e->chain, &h));
	} else if (e->seq <= h->seq && l->skip_known) {
		*known = true;
		return SCONE_ERR_OK;
	} else if (e->seq != h->seq + 1) {
		return scone_err_set(SCONE_ERR_MISSING,
				     "entry %llu of its chain came last, so entries are missing "
				     "or repeated",
				     (unsigned long long)h->seq);
	} else if (!scone_ct_equal(e->prev, h->entry, 32)) {
		return scone_err_set(SCONE_ERR_TAMPERED,
				     "it does not name the entry before it (prev differs)");
	}
	set_head(h, e);
	l->entries++;
	return SCONE_ERR_OK;
}

/* Read one line into buf (at most size - 1 bytes, newline stripped); 0 at the end, -1 too long. */
static int read_line(FILE *f, char *buf, size_t size, size_t *len)
{
	int c;
	size_t n = 0;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (n + 1 >= size) {
			while ((c = getc(f)) != EOF && c != '\n')
				;
			return -1;
		}
		buf[n++] = (char)c;
	}
	if (c == EOF && n == 0)
		return 0;
	buf[n] = '\0';
	*len = n;
	return 1;
}

/* The header's certificate: the log's key when none was given, else it must be the same key. */
static enum scone_err take_header(struct cas_audit_log *l, const char *line, size_t len)
{
	char *pem = NULL;
	EVP_PKEY *k = NULL;
	enum scone_err err = cas_audit_parse_header(line, len, &pem);

	if (err == SCONE_ERR_OK)
		err = cas_audit_cert_key(pem, strlen(pem), &k);
	free(pem);
	if (err != SCONE_ERR_OK)
		return err;
	if (!l->key)
		l->key = k;
	else if (EVP_PKEY_eq(l->key, k) != 1)
		err = scone_err_set(SCONE_ERR_UNTRUSTED, "the log's certificate is not the given CAS's");
	if (l->key != k)
		EVP_PKEY_free(k);
	return err;
}

struct check {
	struct cas_audit_log *l;
	const char *name;
	cas_audit_entry_fn fn;
	void *ctx;
	unsigned long lineno;
};

static enum scone_err check_entry(struct check *c, const char *line, size_t len)
{
	struct cas_audit_entry e;
	bool known = false;
	enum scone_err err = cas_audit_parse_line(line, len, c->l->key, &e);

	if (err == SCONE_ERR_OK)
		err = link(c->l, &e, &known);
	if (err != SCONE_ERR_OK)
		return scone_err_set(err, "%s line %lu (entry %llu of chain %s): %s", c->name, c->lineno,
				     (unsigned long long)e.seq, e.chain[0] ? e.chain : "?",
				     scone_err_detail());
	return c->fn && !known ? c->fn(c->ctx, &e, line, len) : SCONE_ERR_OK;
}

enum scone_err cas_audit_log_check(struct cas_audit_log *l, FILE *f, const char *name, bool must_have_header,
				   cas_audit_entry_fn fn, void *ctx, unsigned long *bad_line)
{
	struct check c = {l, name, fn, ctx, 0};
	char *buf = malloc(LINE_MAX_BYTES + 4096);
	size_t len = 0;
	enum scone_err err = SCONE_ERR_OK;
	int r;

	*bad_line = 0;
	if (!buf)
		return scone_err_set(SCONE_ERR_NOMEM, "audit log");
	while (err == SCONE_ERR_OK && (r = read_line(f, buf, LINE_MAX_BYTES + 4096, &len)) != 0) {
		c.lineno++;
		if (r < 0)
			err = scone_err_set(SCONE_ERR_TOO_LARGE, "%s line %lu: longer than %u bytes", name,
					    c.lineno, LINE_MAX_BYTES);
		else if (c.lineno == 1 && strncmp(buf, "{\"" HEADER_KEY "\"", strlen(HEADER_KEY) + 2) == 0)
			err = take_header(l, buf, len);
		else if (c.lineno == 1 && must_have_header)
			err = scone_err_set(SCONE_ERR_MALFORMED, "%s: no audit log header on line 1", name);
		else if (!l->key)
			err = scone_err_set(SCONE_ERR_INVALID, "%s: no certificate to check signatures with",
					    name);
		else
			err = check_entry(&c, buf, len);
		if (err != SCONE_ERR_OK && err != SCONE_ERR_NOMEM)
			*bad_line = c.lineno;
	}
	if (err == SCONE_ERR_OK && ferror(f))
		err = scone_err_set(SCONE_ERR_IO, "%s: read error", name);
	free(buf);
	return err;
}
