/*
 * store.c - what every store engine shares: freeing records, checking
 * arguments, and sealing blobs at rest bound to their place.
 *
 * AAD layout (unambiguous: every field is length-prefixed or fixed-size and
 * announced by a presence byte):
 *   "scone-cas store v1" 0x00
 *   u16le len, column            always
 *   u8 1, u16le len, key         or u8 0
 *   u8 1, u16le len, key2        or u8 0
 *   u8 1, hash[32]               or u8 0
 *   u8 1, creator[32]            or u8 0
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/crypto.h"

#define SEAL_INFO "scone-cas store seal v1"
#define AAD_PREFIX "scone-cas store v1"
#define AAD_MAX 640

_Static_assert(SCONE_STORE_SEAL_OVERHEAD == SCONE_NONCE_SIZE + SCONE_TAG_SIZE, "seal layout");

/*
 * The sealing key lives in locked memory that is never dumped
 * (scone_secure_alloc); a cipher context with its key schedule exists only
 * while one blob is sealed or unsealed (OpenSSL wipes it when it is freed),
 * so no copy of the key stays in ordinary heap. That costs about a
 * microsecond per blob.
 */
struct scone_store_sealer {
	uint8_t *key; /* SCONE_KEY_SIZE bytes, secure memory */
};

struct aad {
	uint8_t b[AAD_MAX];
	size_t n;
};

void scone_session_rec_clear(struct scone_session_rec *rec)
{
	if (!rec)
		return;
	if (rec->body) {
		scone_wipe(rec->body, rec->body_len + 1);
		free(rec->body);
	}
	if (rec->secrets) {
		scone_wipe(rec->secrets, rec->secrets_len + 1);
		free(rec->secrets);
	}
	memset(rec, 0, sizeof(*rec));
}

/* ---------------- argument checks ---------------- */

enum scone_err scone_store_check_name(const char *what, const char *name, size_t max)
{
	size_t len;

	if (!name)
		return scone_err_set(SCONE_ERR_INVALID, "store: %s is missing", what);
	len = strnlen(name, max + 1);
	if (len == 0)
		return scone_err_set(SCONE_ERR_INVALID, "store: %s is empty", what);
	if (len > max)
		return scone_err_set(SCONE_ERR_INVALID, "store: %s is longer than %zu bytes", what, max);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return scone_err_set(SCONE_ERR_INVALID,
					     "store: %s has a control character at byte %zu", what, i);
	}
	return SCONE_ERR_OK;
}

static enum scone_err check_blob(const char *name, const char *what, const void *p, size_t size)
{
	if (size > SCONE_STORE_BLOB_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "store: session %s: %s of %zu bytes exceeds %u",
				     name, what, size, SCONE_STORE_BLOB_MAX);
	if (size && !p)
		return scone_err_set(SCONE_ERR_INVALID, "store: session %s: %s is NULL with length %zu", name,
				     what, size);
	return SCONE_ERR_OK;
}

enum scone_err scone_store_check_rec(const struct scone_session_rec *rec)
{
	if (!rec)
		return scone_err_set(SCONE_ERR_INVALID, "store: no record");
	if (memchr(rec->name, '\0', sizeof(rec->name)) == NULL)
		return scone_err_set(SCONE_ERR_INVALID, "store: session name is not NUL-terminated");
	SCONE_TRY(scone_store_check_name("session name", rec->name, SCONE_STORE_NAME_MAX));
	SCONE_TRY(check_blob(rec->name, "body", rec->body, rec->body_len));
	SCONE_TRY(check_blob(rec->name, "secrets", rec->secrets, rec->secrets_len));
	return SCONE_ERR_OK;
}

enum scone_err scone_store_norm_tag(const char *what, const char *tag_hex, bool allow_empty,
				    char out[SCONE_STORE_TAG_HEX + 1])
{
	size_t len;

	if (!tag_hex)
		return scone_err_set(SCONE_ERR_INVALID, "store: %s is missing", what);
	len = strnlen(tag_hex, SCONE_STORE_TAG_HEX + 1);
	if (len == 0 && allow_empty) {
		out[0] = '\0';
		return SCONE_ERR_OK;
	}
	/* Volume tags are 16 bytes (32 hex); 32-byte tags are allowed for other engines' formats. */
	if (len != 32 && len != SCONE_STORE_TAG_HEX)
		return scone_err_set(SCONE_ERR_INVALID, "store: %s must be 32 or %d hex digits%s", what,
				     SCONE_STORE_TAG_HEX, allow_empty ? " or empty" : "");
	for (size_t i = 0; i < len; i++) {
		char c = tag_hex[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return scone_err_set(SCONE_ERR_INVALID, "store: %s has a non-hex character at %zu",
					     what, i);
		out[i] = c;
	}
	out[len] = '\0';
	return SCONE_ERR_OK;
}

/* ---------------- sealing ---------------- */

static void aad_put(struct aad *a, const void *p, size_t n)
{
	memcpy(a->b + a->n, p, n);
	a->n += n;
}

static void aad_str(struct aad *a, const char *s, bool tagged)
{
	uint8_t len[2];
	size_t n;

	if (tagged)
		aad_put(a, s ? "\1" : "\0", 1);
	if (!s)
		return;
	n = strlen(s);
	len[0] = (uint8_t)n;
	len[1] = (uint8_t)(n >> 8);
	aad_put(a, len, 2);
	aad_put(a, s, n);
}

static void aad_hash(struct aad *a, const uint8_t *h)
{
	aad_put(a, h ? "\1" : "\0", 1);
	if (h)
		aad_put(a, h, SCONE_STORE_HASH_SIZE);
}

/* Names are checked by the callers; the length check here only guards the buffer. */
static enum scone_err aad_build(struct aad *a, const struct scone_store_place *p)
{
	size_t need = sizeof(AAD_PREFIX) + 2 + 3 * 3 + 2 * (1 + SCONE_STORE_HASH_SIZE);

	if (!p || !p->column)
		return scone_err_set(SCONE_ERR_INVALID, "store: blob place has no column");
	need += strlen(p->column) + (p->key ? strlen(p->key) : 0) + (p->key2 ? strlen(p->key2) : 0);
	if (need > sizeof(a->b))
		return scone_err_set(SCONE_ERR_INVALID, "store: names of %s too long to seal", p->column);
	a->n = 0;
	aad_put(a, AAD_PREFIX, sizeof(AAD_PREFIX)); /* with its NUL */
	aad_str(a, p->column, false);
	aad_str(a, p->key, true);
	aad_str(a, p->key2, true);
	aad_hash(a, p->hash);
	aad_hash(a, p->creator);
	return SCONE_ERR_OK;
}

enum scone_err scone_store_sealer_new(const uint8_t master_key[32], struct scone_store_sealer **out)
{
	struct scone_store_sealer *s;
	enum scone_err err;

	s = calloc(1, sizeof(*s));
	if (!s || !(s->key = scone_secure_alloc(SCONE_KEY_SIZE))) {
		free(s);
		return scone_err_set(SCONE_ERR_NOMEM, "store: no memory for the sealer");
	}
	err = scone_hkdf_sha256(s->key, SCONE_KEY_SIZE, master_key, 32, NULL, 0, SEAL_INFO);
	if (err != SCONE_ERR_OK) {
		scone_store_sealer_free(s);
		return err;
	}
	*out = s;
	return SCONE_ERR_OK;
}

void scone_store_sealer_free(struct scone_store_sealer *s)
{
	if (!s)
		return;
	scone_secure_free(s->key, SCONE_KEY_SIZE);
	free(s);
}

const void *scone_store_sealer_key(const struct scone_store_sealer *s)
{
	return s->key;
}

enum scone_err scone_store_seal(struct scone_store_sealer *s, const struct scone_store_place *place,
				const void *in, size_t in_size, uint8_t **out, size_t *out_size)
{
	struct aad aad;
	uint8_t *blob;
	enum scone_err err;

	SCONE_TRY(aad_build(&aad, place));
	if (in_size > SCONE_STORE_BLOB_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "store: %s of %zu bytes is too large",
				     place->column, in_size);
	blob = malloc(SCONE_STORE_SEAL_OVERHEAD + in_size);
	if (!blob)
		return scone_err_set(SCONE_ERR_NOMEM, "store: no memory to seal %zu bytes", in_size);
	err = scone_random(blob, SCONE_NONCE_SIZE);
	if (err == SCONE_ERR_OK)
		err = scone_aead_seal_once(SCONE_AEAD_AES256_GCM, s->key, blob, aad.b, aad.n, in, in_size,
					   in_size ? blob + SCONE_STORE_SEAL_OVERHEAD : NULL,
					   blob + SCONE_NONCE_SIZE);
	if (err != SCONE_ERR_OK) {
		free(blob);
		return err;
	}
	*out = blob;
	*out_size = SCONE_STORE_SEAL_OVERHEAD + in_size;
	return SCONE_ERR_OK;
}

enum scone_err scone_store_unseal(struct scone_store_sealer *s, const struct scone_store_place *place,
				  const uint8_t *blob, size_t blob_size, uint8_t **out, size_t *out_size)
{
	struct aad aad;
	uint8_t *pt;
	size_t n;
	enum scone_err err;

	SCONE_TRY(aad_build(&aad, place));
	if (!blob || blob_size < SCONE_STORE_SEAL_OVERHEAD)
		return scone_err_set(SCONE_ERR_AUTH, "store: %s blob of %zu bytes is shorter than its seal",
				     place->column, blob ? blob_size : 0);
	n = blob_size - SCONE_STORE_SEAL_OVERHEAD;
	pt = malloc(n + 1);
	if (!pt)
		return scone_err_set(SCONE_ERR_NOMEM, "store: no memory to unseal %zu bytes", n);
	err = scone_aead_open_once(SCONE_AEAD_AES256_GCM, s->key, blob, aad.b, aad.n,
				   n ? blob + SCONE_STORE_SEAL_OVERHEAD : NULL, n, n ? pt : NULL,
				   blob + SCONE_NONCE_SIZE);
	if (err != SCONE_ERR_OK) {
		free(pt);		   /* scone_aead_open wiped it */
		if (err != SCONE_ERR_AUTH) /* the cipher could not be set up: not the blob's fault */
			return err;
		return scone_err_set(SCONE_ERR_AUTH, "store: %s blob does not authenticate", place->column);
	}
	pt[n] = '\0';
	*out = pt;
	*out_size = n;
	return SCONE_ERR_OK;
}

/* ---------------- choosing an engine ---------------- */

void scone_store_set_audit(struct scone_store *st, const struct scone_store_audit *a)
{
	if (!st)
		return;
	if (a)
		st->audit = *a;
	else
		memset(&st->audit, 0, sizeof(st->audit));
}

static enum scone_err open_sqlite_url(const char *rest, const uint8_t key[32], unsigned flags,
				      struct scone_store **out)
{
	if (strncmp(rest, "//", 2) == 0) /* sqlite:///abs/path */
		rest += 2;
	return scone_store_open_sqlite_ex(rest, key, flags, out);
}

static enum scone_err open_pg_url(const char *url, const uint8_t key[32], unsigned flags,
				  struct scone_store **out)
{
	return scone_store_open_pg(url, key, flags, out);
}

/* The engines by URL prefix: strip says whether the engine gets the rest or the whole URL. */
static const struct {
	const char *prefix;
	bool strip;
	enum scone_err (*open)(const char *arg, const uint8_t key[32], unsigned flags,
			       struct scone_store **out);
} engines[] = {
    {"sqlite:", true, open_sqlite_url},
    {"postgres://", false, open_pg_url},
    {"postgresql://", false, open_pg_url},
};

bool scone_store_url_is_pg(const char *url)
{
	return url && (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0);
}

enum scone_err scone_store_open(const char *url, const uint8_t master_key[32], unsigned flags,
				struct scone_store **out)
{
	if (!url || !*url)
		return scone_err_set(SCONE_ERR_INVALID, "store: no URL (sqlite:PATH or postgres://...)");
	for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
		size_t n = strlen(engines[i].prefix);
		if (strncmp(url, engines[i].prefix, n) == 0)
			return engines[i].open(engines[i].strip ? url + n : url, master_key, flags, out);
	}
	if (strstr(url, "://"))
		return scone_err_set(SCONE_ERR_INVALID,
				     "store: unknown URL scheme in %.40s (sqlite:PATH or postgres://...)",
				     url);
	return scone_store_open_sqlite_ex(url, master_key, flags, out);
}

/* Is there a "password" key in a URI query (key=value pairs split by '&')? */
static bool query_has_password(const char *q)
{
	while (q && *q) {
		if (strncmp(q, "password=", 9) == 0)
			return true;
		q = strchr(q, '&');
		if (q)
			q++;
	}
	return false;
}

bool scone_store_url_has_password(const char *url)
{
	const char *auth, *end, *at, *q;

	if (!scone_store_url_is_pg(url))
		return false;
	auth = strstr(url, "://") + 3;
	end = auth + strcspn(auth, "/?");
	at = memchr(auth, '@', (size_t)(end - auth));
	if (at && memchr(auth, ':', (size_t)(at - auth)))
		return true;
	q = strchr(url, '?');
	return q && query_has_password(q + 1);
}

/* ---------------- audit rows ---------------- */

static bool chain_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '_' || c == ':' || c == '/' || c == '-';
}

enum scone_err scone_store_check_audit_row(const struct scone_audit_row *row)
{
	size_t n;

	if (!row)
		return scone_err_set(SCONE_ERR_INVALID, "store: no audit row");
	n = strnlen(row->chain, sizeof(row->chain));
	if (n == 0 || n > SCONE_AUDIT_CHAIN_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "store: audit chain name must be 1..%d bytes",
				     SCONE_AUDIT_CHAIN_MAX);
	for (size_t i = 0; i < n; i++)
		if (!chain_char(row->chain[i]))
			return scone_err_set(SCONE_ERR_INVALID,
					     "store: audit chain name has a bad character at %zu", i);
	if (row->seq == 0 || row->seq > (uint64_t)INT64_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "store: audit chain %s: seq %llu out of range",
				     row->chain, (unsigned long long)row->seq);
	if (!row->line || row->line_len == 0 || row->line_len > SCONE_AUDIT_LINE_MAX)
		return scone_err_set(
		    SCONE_ERR_INVALID, "store: audit chain %s: entry %llu of %zu bytes (1..%u)", row->chain,
		    (unsigned long long)row->seq, row->line ? row->line_len : 0, SCONE_AUDIT_LINE_MAX);
	if (memchr(row->line, '\0', row->line_len) || memchr(row->line, '\n', row->line_len))
		return scone_err_set(SCONE_ERR_INVALID,
				     "store: audit chain %s: entry %llu holds a NUL or newline", row->chain,
				     (unsigned long long)row->seq);
	return SCONE_ERR_OK;
}

enum scone_err scone_store_audit_entry(struct scone_store *st, const struct scone_store_change *change,
				       struct scone_audit_row *row, bool *have)
{
	enum scone_err err;

	*have = false;
	memset(row, 0, sizeof(*row));
	if (!st->audit.entry)
		return SCONE_ERR_OK;
	err = st->audit.entry(st->audit.ctx, change, row);
	if (err == SCONE_ERR_OK)
		err = scone_store_check_audit_row(row);
	if (err != SCONE_ERR_OK) {
		free(row->line);
		memset(row, 0, sizeof(*row));
		return err;
	}
	*have = true;
	return SCONE_ERR_OK;
}

void scone_store_audit_settle(struct scone_store *st, struct scone_audit_row *row, bool have,
			      enum scone_err result)
{
	if (!have)
		return;
	if (st->audit.settled)
		st->audit.settled(st->audit.ctx, row, result);
	free(row->line);
	memset(row, 0, sizeof(*row));
}

/* ---------------- places, raw items, key check ---------------- */

void scone_store_session_place(struct scone_store_place *pl, const char *column, const char *name,
			       const uint8_t *hash, const uint8_t *creator)
{
	pl->column = column;
	pl->key = name;
	pl->key2 = NULL;
	pl->hash = hash;
	pl->creator = creator;
}

void scone_store_tag_place(struct scone_store_place *pl, const char *session, const char *volume)
{
	memset(pl, 0, sizeof(*pl));
	pl->column = "volume_tags.tag";
	pl->key = session;
	pl->key2 = volume;
}

enum scone_err scone_store_seal_rec(struct scone_store_sealer *s, const struct scone_session_rec *rec,
				    const uint8_t *creator, struct scone_store_sealed *out)
{
	struct scone_store_place pl;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	scone_store_session_place(&pl, "sessions.body", rec->name, rec->hash, creator);
	err = scone_store_seal(s, &pl, rec->body, rec->body_len, &out->body, &out->body_size);
	if (err == SCONE_ERR_OK) {
		pl.column = "sessions.secrets";
		err = scone_store_seal(s, &pl, rec->secrets, rec->secrets_len, &out->secrets,
				       &out->secrets_size);
	}
	if (err != SCONE_ERR_OK)
		scone_store_sealed_free(out);
	return err;
}

void scone_store_sealed_free(struct scone_store_sealed *b)
{
	free(b->body);
	free(b->secrets);
	memset(b, 0, sizeof(*b));
}

enum scone_err scone_store_unseal_col(struct scone_store_sealer *s, const char *where,
				      const struct scone_store_place *pl, const uint8_t *blob, size_t size,
				      uint8_t **out, size_t *out_size)
{
	enum scone_err err = scone_store_unseal(s, pl, blob, size, out, out_size);

	if (err == SCONE_ERR_AUTH)
		return scone_err_set(
		    SCONE_ERR_CORRUPT,
		    "store %s: %s of %s%s%s does not unseal (damaged, tampered with or moved from "
		    "another row)",
		    where, pl->column, pl->key, pl->key2 ? "/" : "", pl->key2 ? pl->key2 : "");
	return err;
}

enum scone_err scone_store_check_tag_args(const char *session, const char *volume)
{
	SCONE_TRY(scone_store_check_name("session name", session, SCONE_STORE_NAME_MAX));
	return scone_store_check_name("volume name", volume, SCONE_STORE_VOLUME_MAX);
}

int64_t scone_store_now_or(int64_t t)
{
	return t ? t : (int64_t)time(NULL);
}

/* Does blob unseal for pl? The plaintext is wiped at once; size_check: expected plaintext size or 0. */
static enum scone_err check_blob_unseals(struct scone_store_sealer *s, const struct scone_store_place *pl,
					 const uint8_t *blob, size_t size, size_t size_check)
{
	uint8_t *plain = NULL;
	size_t n = 0;
	enum scone_err err = scone_store_unseal(s, pl, blob, size, &plain, &n);

	if (plain) {
		scone_wipe(plain, n);
		free(plain);
	}
	if (err == SCONE_ERR_OK && size_check && n != size_check)
		err = SCONE_ERR_AUTH;
	if (err == SCONE_ERR_AUTH)
		return scone_err_set(
		    SCONE_ERR_CORRUPT,
		    "store: %s of %s%s%s does not unseal under this master key (another key, or "
		    "damaged)",
		    pl->column, pl->key, pl->key2 ? "/" : "", pl->key2 ? pl->key2 : "");
	return err;
}

static enum scone_err check_session_item(struct scone_store_sealer *s, const struct scone_store_item *it)
{
	struct scone_store_place pl;

	SCONE_TRY(scone_store_check_name("session name", it->name, SCONE_STORE_NAME_MAX));
	if (!it->hash || !it->creator)
		return scone_err_set(SCONE_ERR_INVALID, "store: session %s: item without hash or creator",
				     it->name);
	scone_store_session_place(&pl, "sessions.body", it->name, it->hash, it->creator);
	SCONE_TRY(check_blob_unseals(s, &pl, it->body, it->body_size, 0));
	pl.column = "sessions.secrets";
	return check_blob_unseals(s, &pl, it->secrets, it->secrets_size, 0);
}

enum scone_err scone_store_check_item(struct scone_store_sealer *s, const struct scone_store_item *it)
{
	struct scone_store_place pl;

	switch (it ? it->kind : 0) {
	case SCONE_ITEM_SESSION:
		return check_session_item(s, it);
	case SCONE_ITEM_TAG:
		SCONE_TRY(scone_store_check_name("session name", it->name, SCONE_STORE_NAME_MAX));
		SCONE_TRY(scone_store_check_name("volume name", it->volume, SCONE_STORE_VOLUME_MAX));
		scone_store_tag_place(&pl, it->name, it->volume);
		return check_blob_unseals(s, &pl, it->tag, it->tag_size, SCONE_STORE_TAG_HEX);
	case SCONE_ITEM_AUDIT:
		return scone_store_check_audit_row(it->audit);
	default:
		return scone_err_set(SCONE_ERR_INVALID, "store: unknown item kind");
	}
}

enum scone_err scone_store_key_check(const uint8_t master_key[32], uint8_t out[SCONE_STORE_KEY_CHECK_SIZE])
{
	return scone_hkdf_sha256(out, SCONE_STORE_KEY_CHECK_SIZE, master_key, 32, NULL, 0,
				 "scone-cas store key check v1");
}

static bool is_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static enum scone_err load_check_audit(struct scone_store_load_check *lc, const struct scone_audit_row *row)
{
	bool same = strcmp(lc->chain, row->chain) == 0;

	if (row->seq == 1) {
		if (same && lc->seq)
			return scone_err_set(SCONE_ERR_CORRUPT, "store load: audit chain %s starts twice",
					     row->chain);
		if (!is_zero(row->prev, SCONE_STORE_HASH_SIZE))
			return scone_err_set(
			    SCONE_ERR_CORRUPT,
			    "store load: audit chain %s: its first entry names a predecessor", row->chain);
	} else if (!same || row->seq != lc->seq + 1 ||
		   !scone_ct_equal(row->prev, lc->hash, SCONE_STORE_HASH_SIZE)) {
		return scone_err_set(SCONE_ERR_CORRUPT,
				     "store load: audit chain %s: entry %llu does not follow its predecessor",
				     row->chain, (unsigned long long)row->seq);
	}
	memcpy(lc->chain, row->chain, strlen(row->chain) + 1);
	lc->seq = row->seq;
	memcpy(lc->hash, row->hash, SCONE_STORE_HASH_SIZE);
	lc->entries++;
	return SCONE_ERR_OK;
}

enum scone_err scone_store_load_check_next(struct scone_store_load_check *lc,
					   const struct scone_store_item *it)
{
	switch (it->kind) {
	case SCONE_ITEM_SESSION:
		lc->sessions++;
		return SCONE_ERR_OK;
	case SCONE_ITEM_TAG:
		lc->tags++;
		return SCONE_ERR_OK;
	case SCONE_ITEM_AUDIT:
		return load_check_audit(lc, it->audit);
	default:
		return scone_err_set(SCONE_ERR_INVALID, "store load: unknown item kind");
	}
}
