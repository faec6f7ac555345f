/*
 * backup.c - backups and restores of a CAS store (format and guarantees in
 * backup.h; the operator's commands in admin.c).
 *
 * A restore reads the backup twice: first to check its MAC and learn where
 * its audit chains end, then (after the audit logs given have been checked
 * against those ends) to load it. So a damaged backup or a log that does not
 * continue it is refused before the store is touched; the load itself is
 * one transaction, and the log's tail is applied after it.
 */
#include "cas/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "cas.h"
#include "cas/audit.h"
#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/hex.h"

#define MAGIC "SCONECASBACKUP1\n"
#define MAGIC_SIZE 16
#define MAC_SIZE 32
#define RECORD_MAX (2 * (size_t)SCONE_STORE_BLOB_MAX + 4096)

enum { R_INFO = 1, R_SESSION, R_TAG, R_AUDIT, R_END };

/* ---------------- the MAC ---------------- */

static enum scone_err mac_new(const uint8_t master_key[32], EVP_MAC_CTX **out)
{
	uint8_t key[32];
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
			       OSSL_PARAM_construct_end()};
	enum scone_err err =
	    scone_hkdf_sha256(key, sizeof(key), master_key, 32, NULL, 0, "scone-cas backup v1");

	if (err == SCONE_ERR_OK && (!ctx || EVP_MAC_init(ctx, key, sizeof(key), params) != 1))
		err = scone_err_set(SCONE_ERR_CRYPTO, "backup: cannot set up the MAC");
	scone_wipe(key, sizeof(key));
	EVP_MAC_free(m);
	if (err != SCONE_ERR_OK) {
		EVP_MAC_CTX_free(ctx);
		return err;
	}
	*out = ctx;
	return SCONE_ERR_OK;
}

/* ---------------- writing ---------------- */

struct writer {
	FILE *f;
	EVP_MAC_CTX *mac;
	struct cas_backup_counts *counts;
	struct scone_wbuf rec;
};

static enum scone_err put(struct writer *w, const void *p, size_t n)
{
	if (n && (fwrite(p, 1, n, w->f) != n || EVP_MAC_update(w->mac, p, n) != 1))
		return scone_err_set(scone_err_from_errno(errno ? errno : EIO), "backup: write failed: %s",
				     strerror(errno ? errno : EIO));
	return SCONE_ERR_OK;
}

static enum scone_err record(struct writer *w, uint8_t type)
{
	uint8_t head[5] = {type};

	scone_put_le32(head + 1, (uint32_t)w->rec.size);
	SCONE_TRY(put(w, head, sizeof(head)));
	SCONE_TRY(put(w, w->rec.data, w->rec.size));
	w->rec.size = 0;
	return SCONE_ERR_OK;
}

static enum scone_err put_name16(struct scone_wbuf *b, const char *s)
{
	size_t n = strlen(s);

	SCONE_TRY(scone_wbuf_u16(b, (uint16_t)n));
	return scone_wbuf_put(b, s, n);
}

static enum scone_err put_blob32(struct scone_wbuf *b, const void *p, size_t n)
{
	SCONE_TRY(scone_wbuf_u32(b, (uint32_t)n));
	return scone_wbuf_put(b, p, n);
}

static enum scone_err write_item(void *ctx, const struct scone_store_item *it)
{
	struct writer *w = ctx;
	struct scone_wbuf *b = &w->rec;

	switch (it->kind) {
	case SCONE_ITEM_SESSION:
		SCONE_TRY(put_name16(b, it->name));
		SCONE_TRY(scone_wbuf_put(b, it->hash, 32));
		SCONE_TRY(scone_wbuf_put(b, it->creator, 32));
		SCONE_TRY(scone_wbuf_u64(b, (uint64_t)it->created));
		SCONE_TRY(scone_wbuf_u64(b, (uint64_t)it->updated));
		SCONE_TRY(put_blob32(b, it->body, it->body_size));
		SCONE_TRY(put_blob32(b, it->secrets, it->secrets_size));
		w->counts->sessions++;
		return record(w, R_SESSION);
	case SCONE_ITEM_TAG:
		SCONE_TRY(put_name16(b, it->name));
		SCONE_TRY(put_name16(b, it->volume));
		SCONE_TRY(put_blob32(b, it->tag, it->tag_size));
		w->counts->tags++;
		return record(w, R_TAG);
	case SCONE_ITEM_AUDIT:
		SCONE_TRY(put_name16(b, it->audit->chain));
		SCONE_TRY(scone_wbuf_u64(b, it->audit->seq));
		SCONE_TRY(scone_wbuf_put(b, it->audit->prev, 32));
		SCONE_TRY(scone_wbuf_put(b, it->audit->hash, 32));
		SCONE_TRY(put_blob32(b, it->audit->line, it->audit->line_len));
		w->counts->entries++;
		return record(w, R_AUDIT);
	default:
		return scone_err_set(SCONE_ERR_INVALID, "backup: unknown item");
	}
}

static enum scone_err write_info(struct writer *w, struct cas *cas, const char *engine)
{
	char fp[65], info[300];
	int n;

	scone_hex_encode(fp, sizeof(fp), cas->cert_sha256, 32);
	n = snprintf(info, sizeof(info),
		     "{\"format\":1,\"created\":%lld,\"engine\":\"%s\",\"certificate_sha256\":\"%s\"}",
		     (long long)time(NULL), engine, fp);
	SCONE_TRY(scone_wbuf_put(&w->rec, info, (size_t)n));
	return record(w, R_INFO);
}

static enum scone_err write_end(struct writer *w)
{
	uint8_t mac[MAC_SIZE];
	size_t n = 0;

	SCONE_TRY(scone_wbuf_u64(&w->rec, w->counts->sessions));
	SCONE_TRY(scone_wbuf_u64(&w->rec, w->counts->tags));
	SCONE_TRY(scone_wbuf_u64(&w->rec, w->counts->entries));
	SCONE_TRY(record(w, R_END));
	if (EVP_MAC_final(w->mac, mac, &n, sizeof(mac)) != 1 || n != MAC_SIZE)
		return scone_err_set(SCONE_ERR_CRYPTO, "backup: MAC failed");
	if (fwrite(mac, 1, MAC_SIZE, w->f) != MAC_SIZE)
		return scone_err_set(SCONE_ERR_IO, "backup: write failed");
	return SCONE_ERR_OK;
}

static enum scone_err finish_file(FILE *f, const char *tmp, const char *path)
{
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		int e = errno;
		fclose(f);
		return scone_err_set(scone_err_from_errno(e), "%s: %s", tmp, strerror(e));
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", path, strerror(errno));
	return SCONE_ERR_OK;
}

enum scone_err cas_backup_write(struct cas *cas, struct scone_store *st, const char *path,
				struct cas_backup_counts *counts)
{
	struct writer w = {.counts = counts};
	char tmp[4200];
	enum scone_err err;
	int fd;

	memset(counts, 0, sizeof(*counts));
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "%s: path too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || !(w.f = fdopen(fd, "wb"))) {
		if (fd >= 0)
			close(fd);
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", tmp, strerror(errno));
	}
	scone_wbuf_init(&w.rec, RECORD_MAX, 0);
	err = mac_new(cas->master_key, &w.mac);
	if (err == SCONE_ERR_OK)
		err = put(&w, MAGIC, MAGIC_SIZE);
	if (err == SCONE_ERR_OK)
		err = write_info(&w, cas, scone_store_url_is_pg(cas->store_url) ? "postgres" : "sqlite");
	if (err == SCONE_ERR_OK)
		err = st->ops->dump(st, SCONE_DUMP_ALL, write_item, &w);
	if (err == SCONE_ERR_OK)
		err = write_end(&w);
	EVP_MAC_CTX_free(w.mac);
	scone_wbuf_free(&w.rec);
	if (err == SCONE_ERR_OK)
		return finish_file(w.f, tmp, path);
	fclose(w.f);
	unlink(tmp);
	return err;
}

/* ---------------- parsing records ---------------- */

/* Decoded record storage: names with their NUL, the audit row. */
struct decoded {
	char name[SCONE_STORE_NAME_MAX + 1];
	char volume[SCONE_STORE_VOLUME_MAX + 1];
	struct scone_audit_row row;
};

static enum scone_err get_name16(struct scone_rbuf *r, const char *what, char *out, size_t max)
{
	uint16_t n = 0;
	const uint8_t *p = NULL;

	SCONE_TRY(scone_rbuf_u16(r, what, &n));
	if (n == 0 || n > max)
		return scone_err_set(SCONE_ERR_MALFORMED, "backup: %s of %u bytes at offset %zu", what, n,
				     r->pos);
	SCONE_TRY(scone_rbuf_view(r, what, &p, n));
	if (memchr(p, '\0', n))
		return scone_err_set(SCONE_ERR_MALFORMED, "backup: %s holds a NUL byte at offset %zu", what,
				     r->pos);
	memcpy(out, p, n);
	out[n] = '\0';
	return SCONE_ERR_OK;
}

static enum scone_err get_blob32(struct scone_rbuf *r, const char *what, const uint8_t **p, size_t *n)
{
	uint32_t len = 0;

	SCONE_TRY(scone_rbuf_u32(r, what, &len));
	*n = len;
	return scone_rbuf_view(r, what, p, len);
}

static enum scone_err parse_session(struct scone_rbuf *r, struct decoded *d, struct scone_store_item *it)
{
	uint64_t c = 0, u = 0;

	it->kind = SCONE_ITEM_SESSION;
	SCONE_TRY(get_name16(r, "session name", d->name, SCONE_STORE_NAME_MAX));
	it->name = d->name;
	SCONE_TRY(scone_rbuf_view(r, "session hash", &it->hash, 32));
	SCONE_TRY(scone_rbuf_view(r, "session creator", &it->creator, 32));
	SCONE_TRY(scone_rbuf_u64(r, "created", &c));
	SCONE_TRY(scone_rbuf_u64(r, "updated", &u));
	it->created = (int64_t)c;
	it->updated = (int64_t)u;
	SCONE_TRY(get_blob32(r, "session body", &it->body, &it->body_size));
	return get_blob32(r, "session secrets", &it->secrets, &it->secrets_size);
}

static enum scone_err parse_tag(struct scone_rbuf *r, struct decoded *d, struct scone_store_item *it)
{
	it->kind = SCONE_ITEM_TAG;
	SCONE_TRY(get_name16(r, "tag session", d->name, SCONE_STORE_NAME_MAX));
	SCONE_TRY(get_name16(r, "tag volume", d->volume, SCONE_STORE_VOLUME_MAX));
	it->name = d->name;
	it->volume = d->volume;
	return get_blob32(r, "volume tag", &it->tag, &it->tag_size);
}

static enum scone_err parse_audit(struct scone_rbuf *r, struct decoded *d, struct scone_store_item *it)
{
	const uint8_t *line = NULL;
	size_t n = 0;

	it->kind = SCONE_ITEM_AUDIT;
	memset(&d->row, 0, sizeof(d->row));
	SCONE_TRY(get_name16(r, "audit chain", d->row.chain, SCONE_AUDIT_CHAIN_MAX));
	SCONE_TRY(scone_rbuf_u64(r, "audit seq", &d->row.seq));
	SCONE_TRY(scone_rbuf_bytes(r, "audit prev", d->row.prev, 32));
	SCONE_TRY(scone_rbuf_bytes(r, "audit hash", d->row.hash, 32));
	SCONE_TRY(get_blob32(r, "audit line", &line, &n));
	d->row.line = (char *)line;
	d->row.line_len = n;
	it->audit = &d->row;
	return scone_store_check_audit_row(&d->row);
}

/* One record's payload into item (pointers into payload and d); *is_item false for info/end. */
static enum scone_err parse_record(uint8_t type, const uint8_t *p, size_t n, struct decoded *d,
				   struct scone_store_item *it, struct cas_backup_counts *end)
{
	struct scone_rbuf r;
	enum scone_err err;

	memset(it, 0, sizeof(*it));
	scone_rbuf_init(&r, p, n, "backup record");
	switch (type) {
	case R_INFO:
		return SCONE_ERR_OK;
	case R_SESSION:
		err = parse_session(&r, d, it);
		break;
	case R_TAG:
		err = parse_tag(&r, d, it);
		break;
	case R_AUDIT:
		err = parse_audit(&r, d, it);
		break;
	case R_END:
		err = scone_rbuf_u64(&r, "session count", &end->sessions);
		if (err == SCONE_ERR_OK)
			err = scone_rbuf_u64(&r, "tag count", &end->tags);
		if (err == SCONE_ERR_OK)
			err = scone_rbuf_u64(&r, "audit count", &end->entries);
		break;
	default:
		return scone_err_set(SCONE_ERR_MALFORMED, "backup: unknown record type %u", type);
	}
	SCONE_TRY(err);
	if (scone_rbuf_left(&r))
		return scone_err_set(SCONE_ERR_MALFORMED, "backup: %zu stray bytes after a record of type %u",
				     scone_rbuf_left(&r), type);
	return SCONE_ERR_OK;
}

static void count_item(struct cas_backup_counts *c, const struct scone_store_item *it)
{
	c->sessions += it->kind == SCONE_ITEM_SESSION;
	c->tags += it->kind == SCONE_ITEM_TAG;
	c->entries += it->kind == SCONE_ITEM_AUDIT;
}

static enum scone_err check_end(const struct cas_backup_counts *seen, const struct cas_backup_counts *end)
{
	if (seen->sessions != end->sessions || seen->tags != end->tags || seen->entries != end->entries)
		return scone_err_set(SCONE_ERR_CORRUPT,
				     "backup: holds %llu/%llu/%llu items, its end says %llu/%llu/%llu",
				     (unsigned long long)seen->sessions, (unsigned long long)seen->tags,
				     (unsigned long long)seen->entries, (unsigned long long)end->sessions,
				     (unsigned long long)end->tags, (unsigned long long)end->entries);
	return SCONE_ERR_OK;
}

enum scone_err cas_backup_parse(const uint8_t *data, size_t size, scone_store_item_fn fn, void *ctx)
{
	struct scone_rbuf r;
	struct decoded d;
	struct cas_backup_counts seen = {0}, end = {0};
	bool ended = false;

	scone_rbuf_init(&r, data, size, "backup");
	if (size < MAGIC_SIZE || memcmp(data, MAGIC, MAGIC_SIZE) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "backup: not a scone CAS backup (no magic)");
	r.pos = MAGIC_SIZE;
	while (scone_rbuf_left(&r) > 0) {
		uint8_t type = 0;
		uint32_t n = 0;
		const uint8_t *p = NULL;
		struct scone_store_item it;

		if (ended)
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "backup: records after the end at offset %zu", r.pos);
		SCONE_TRY(scone_rbuf_u8(&r, "record type", &type));
		SCONE_TRY(scone_rbuf_u32(&r, "record length", &n));
		SCONE_TRY(scone_rbuf_view(&r, "record", &p, n));
		SCONE_TRY(parse_record(type, p, n, &d, &it, &end));
		ended = type == R_END;
		if (it.kind) {
			count_item(&seen, &it);
			SCONE_TRY(fn(ctx, &it));
		}
	}
	if (!ended)
		return scone_err_set(SCONE_ERR_TRUNCATED, "backup: no end record");
	return check_end(&seen, &end);
}

/* ---------------- reading a file ---------------- */

struct reader {
	FILE *f;
	const char *path;
	EVP_MAC_CTX *mac;
	uint64_t left; /* bytes of records left before the MAC */
	uint8_t *rec;
	struct decoded d;
	struct cas_backup_counts seen, end;
	bool ended;
	struct cas_audit_log *heads; /* pass 1: where the backup's chains end */
};

static enum scone_err rd(struct reader *r, void *p, size_t n)
{
	if (n > r->left || fread(p, 1, n, r->f) != n)
		return scone_err_set(SCONE_ERR_TRUNCATED, "%s: ends in the middle of a record", r->path);
	r->left -= n;
	if (EVP_MAC_update(r->mac, p, n) != 1)
		return scone_err_set(SCONE_ERR_CRYPTO, "backup: MAC failed");
	return SCONE_ERR_OK;
}

static enum scone_err reader_open(struct reader *r, const char *path, const uint8_t master_key[32])
{
	struct stat sb;
	char magic[MAGIC_SIZE];

	memset(r, 0, sizeof(*r));
	r->path = path;
	r->f = fopen(path, "rb");
	if (!r->f)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", path, strerror(errno));
	if (fstat(fileno(r->f), &sb) != 0 || sb.st_size < MAGIC_SIZE + MAC_SIZE)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: too short for a backup", path);
	r->left = (uint64_t)sb.st_size - MAC_SIZE;
	r->rec = malloc(RECORD_MAX);
	if (!r->rec)
		return scone_err_set(SCONE_ERR_NOMEM, "backup: record buffer");
	SCONE_TRY(mac_new(master_key, &r->mac));
	SCONE_TRY(rd(r, magic, MAGIC_SIZE));
	if (memcmp(magic, MAGIC, MAGIC_SIZE) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: not a scone CAS backup", path);
	return SCONE_ERR_OK;
}

static void reader_close(struct reader *r)
{
	if (r->f)
		fclose(r->f);
	EVP_MAC_CTX_free(r->mac);
	free(r->rec);
	memset(r, 0, sizeof(*r));
}

/* After the last record: the MAC must be the backup's, made under this master key. */
static enum scone_err check_mac(struct reader *r)
{
	uint8_t want[MAC_SIZE], got[MAC_SIZE];
	size_t n = 0;

	if (!r->ended)
		return scone_err_set(SCONE_ERR_TRUNCATED, "%s: no end record", r->path);
	SCONE_TRY(check_end(&r->seen, &r->end));
	if (fread(got, 1, MAC_SIZE, r->f) != MAC_SIZE || EVP_MAC_final(r->mac, want, &n, sizeof(want)) != 1)
		return scone_err_set(SCONE_ERR_TRUNCATED, "%s: the MAC is missing", r->path);
	if (!scone_ct_equal(want, got, MAC_SIZE))
		return scone_err_set(
		    SCONE_ERR_CORRUPT,
		    "%s: the backup's MAC does not match (altered, truncated, or made under another "
		    "master key)",
		    r->path);
	return SCONE_ERR_OK;
}

/* The store's source: the next item of the backup; at its end, the MAC decides (an error aborts the load). */
static enum scone_err next_item(void *ctx, struct scone_store_item *it, bool *end)
{
	struct reader *r = ctx;

	for (;;) {
		uint8_t head[5];
		uint32_t n;

		if (r->left == 0) {
			SCONE_TRY(check_mac(r));
			*end = true;
			return SCONE_ERR_OK;
		}
		if (r->ended)
			return scone_err_set(SCONE_ERR_MALFORMED, "%s: records after the end", r->path);
		SCONE_TRY(rd(r, head, sizeof(head)));
		n = scone_get_le32(head + 1);
		if (n > RECORD_MAX)
			return scone_err_set(SCONE_ERR_MALFORMED, "%s: a record of %u bytes", r->path, n);
		SCONE_TRY(rd(r, r->rec, n));
		SCONE_TRY(parse_record(head[0], r->rec, n, &r->d, it, &r->end));
		r->ended = head[0] == R_END;
		if (it->kind) {
			count_item(&r->seen, it);
			return SCONE_ERR_OK;
		}
	}
}

/*
 * Note an audit entry of the backup as its chain's end so far: parsed, so
 * that a later version of a span entry in a log can be taken in its place
 * (audit.h, "Spans"); by its hash alone if it does not parse.
 */
static enum scone_err seed_head(struct cas_audit_log *heads, const struct scone_audit_row *row)
{
	struct cas_audit_entry e;

	if (cas_audit_parse_line(row->line, row->line_len, NULL, &e) == SCONE_ERR_OK && e.seq == row->seq &&
	    strcmp(e.chain, row->chain) == 0)
		return cas_audit_log_seed_entry(heads, &e);
	scone_err_clear();
	return cas_audit_log_seed(heads, row->chain, row->seq, row->hash);
}

/* Pass 1: check the whole backup and note where its audit chains end. */
static enum scone_err scan_backup(const char *path, const uint8_t master_key[32], struct cas_audit_log *heads,
				  struct cas_backup_counts *counts)
{
	struct reader r;
	struct scone_store_item it;
	bool end = false;
	enum scone_err err = reader_open(&r, path, master_key);

	while (err == SCONE_ERR_OK && !end) {
		err = next_item(&r, &it, &end);
		if (err == SCONE_ERR_OK && !end && it.kind == SCONE_ITEM_AUDIT)
			err = seed_head(heads, it.audit);
	}
	*counts = r.seen;
	reader_close(&r);
	return err;
}

/* ---------------- the audit log's tail ---------------- */

struct tail_entry {
	struct cas_audit_entry e;
	char *line;
	size_t len;
	bool used;
	/* a span's version that takes the place of the backup's last entry of its chain */
	bool replaces_base;
	uint8_t base_hash[32];
	char from_tag[65];     /* that entry's tag: where the version moves the volume on from */
	uint64_t from_reports; /* and the reports that entry covered already */
};

struct tail {
	struct tail_entry *v;
	size_t n, cap;
	const struct cas_audit_log *heads; /* the backup's chain ends */
};

/* The tail's entry that a span's later version replaces (same chain and seq), or NULL. */
static struct tail_entry *replaced_in_tail(struct tail *t, const struct cas_audit_entry *e)
{
	for (size_t i = t->n; i-- > 0;)
		if (t->v[i].e.seq == e->seq && strcmp(t->v[i].e.chain, e->chain) == 0)
			return &t->v[i];
	return NULL;
}

/* A span's later version of the tail's entry x (audit_log.c checked that it continues x). */
static enum scone_err keep_version(struct tail_entry *x, const struct cas_audit_entry *e, const char *line,
				   size_t len)
{
	char *copy = malloc(len);

	if (!copy)
		return scone_err_set(SCONE_ERR_NOMEM, "restore: audit entries");
	memcpy(copy, line, len);
	free(x->line);
	x->line = copy;
	x->len = len;
	x->e = *e; /* (what it replaces in the backup, if anything, stays) */
	return SCONE_ERR_OK;
}

static enum scone_err keep_entry(void *ctx, const struct cas_audit_entry *e, const char *line, size_t len)
{
	struct tail *t = ctx;
	struct tail_entry *x = e->has_supersedes ? replaced_in_tail(t, e) : NULL;
	uint64_t base_seq = 0;
	uint8_t base_hash[32];
	char base_tag[65];
	bool of_base;

	if (x)
		return keep_version(x, e, line, len);
	/* a version of the backup's own last entry of the chain */
	of_base = e->has_supersedes && cas_audit_log_head(t->heads, e->chain, &base_seq, base_hash) &&
		  base_seq == e->seq;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		struct tail_entry *v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return scone_err_set(SCONE_ERR_NOMEM, "restore: audit entries");
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n].e = *e;
	t->v[t->n].line = malloc(len);
	if (!t->v[t->n].line)
		return scone_err_set(SCONE_ERR_NOMEM, "restore: audit entries");
	memcpy(t->v[t->n].line, line, len);
	t->v[t->n].len = len;
	t->v[t->n].used = false;
	t->v[t->n].replaces_base = of_base;
	t->v[t->n].from_tag[0] = '\0';
	t->v[t->n].from_reports = 0;
	if (of_base) {
		memcpy(t->v[t->n].base_hash, base_hash, 32);
		if (cas_audit_log_head_tag(t->heads, e->chain, &base_seq, base_tag, &t->v[t->n].from_reports))
			snprintf(t->v[t->n].from_tag, sizeof(t->v[t->n].from_tag), "%s", base_tag);
	}
	t->n++;
	return SCONE_ERR_OK;
}

static void tail_free(struct tail *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i].line);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* Check every log against the backup's chain ends; keep what is newer than the backup. */
static enum scone_err read_tail(struct cas *cas, const struct cas_restore_opts *o,
				const struct cas_audit_log *heads, struct tail *t)
{
	struct cas_audit_log *l = NULL;
	enum scone_err err = cas_audit_log_new(cas->identity.key, &l);

	t->heads = heads;
	if (err == SCONE_ERR_OK)
		err = cas_audit_log_base(l, heads);
	for (int i = 0; err == SCONE_ERR_OK && i < o->n_logs; i++) {
		unsigned long bad = 0;
		FILE *f = fopen(o->logs[i], "rb");
		if (!f) {
			err =
			    scone_err_set(scone_err_from_errno(errno), "%s: %s", o->logs[i], strerror(errno));
			break;
		}
		err = cas_audit_log_check(l, f, o->logs[i], false, keep_entry, t, &bad);
		fclose(f);
	}
	cas_audit_log_free(l);
	return err;
}

/* The tail's entries, as they are, after the backup's (their chains continue there). */
static enum scone_err add_tail(struct scone_store *st, const struct tail *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct scone_audit_row row = {0};
		memcpy(row.chain, t->v[i].e.chain, sizeof(row.chain));
		row.seq = t->v[i].e.seq;
		memcpy(row.prev, t->v[i].e.prev, 32);
		memcpy(row.hash, t->v[i].e.entry, 32);
		row.line = t->v[i].line;
		row.line_len = t->v[i].len;
		row.replaces = t->v[i].replaces_base;
		memcpy(row.replaced, t->v[i].base_hash, 32);
		SCONE_TRY(st->ops->audit_append(st, &row, true));
	}
	return SCONE_ERR_OK;
}

/* The next unused tag change of (session, volume) from tag cur, or NULL. */
static struct tail_entry *next_tag(struct tail *t, const char *session, const char *volume, const char *cur)
{
	for (size_t i = 0; i < t->n; i++) {
		struct tail_entry *x = &t->v[i];
		/* (a version replacing the backup's entry moves the volume on from that entry's tag) */
		const char *from = x->replaces_base ? x->from_tag : x->e.previous_tag;
		if (!x->used && strcmp(x->e.event, "tag") == 0 && strcmp(x->e.session, session) == 0 &&
		    strcmp(x->e.volume, volume) == 0 && strcmp(from, cur) == 0)
			return x;
	}
	return NULL;
}

/* Every volume's tag follows its acknowledged changes after the backup to the newest. */
static enum scone_err forward_tags(struct scone_store *st, struct tail *t, FILE *report, unsigned *moved)
{
	for (size_t i = 0; i < t->n; i++) {
		struct tail_entry *x = &t->v[i], *nx;
		char start[65], cur[65];
		enum scone_err err;
		unsigned steps = 0;

		if (x->used || strcmp(x->e.event, "tag") != 0)
			continue;
		err = st->ops->get_volume_tag(st, x->e.session, x->e.volume, start);
		if (err != SCONE_ERR_OK)
			return err;
		snprintf(cur, sizeof(cur), "%s", start);
		while ((nx = next_tag(t, x->e.session, x->e.volume, cur)) != NULL) {
			nx->used = true;
			snprintf(cur, sizeof(cur), "%s", nx->e.tag);
			steps += (unsigned)(nx->e.reports -
					    (nx->e.reports > nx->from_reports ? nx->from_reports : 0));
		}
		x->used = true; /* it was not reachable from the restored tag: reported below if so */
		if (strcmp(cur, start) == 0)
			continue;
		err = st->ops->put_volume_tag(st, x->e.session, x->e.volume, start, cur);
		if (err == SCONE_ERR_NOT_FOUND) {
			fprintf(
			    report,
			    "volume %s/%s: session created after the backup; its tag %s is not restored\n",
			    x->e.session, x->e.volume, cur);
			continue;
		}
		SCONE_TRY(err);
		fprintf(report, "volume %s/%s: tag brought forward over %u change(s) to %s\n", x->e.session,
			x->e.volume, steps, cur);
		(*moved)++;
	}
	return SCONE_ERR_OK;
}

/* A session's last state in the tail, followed from hash cur (hex, "" = absent). */
static const struct tail_entry *follow_session(struct tail *t, const char *session, char cur[65])
{
	const struct tail_entry *last = NULL;
	bool moved = true;

	while (moved) {
		moved = false;
		for (size_t i = 0; i < t->n; i++) {
			struct tail_entry *x = &t->v[i];
			bool fits = false;
			if (x->used || strcmp(x->e.session, session) != 0)
				continue;
			if (strcmp(x->e.event, "create") == 0)
				fits = !cur[0];
			else if (strcmp(x->e.event, "update") == 0)
				fits = cur[0] && strcmp(x->e.previous, cur) == 0;
			else if (strcmp(x->e.event, "delete") == 0)
				fits = cur[0] && strcmp(x->e.hash, cur) == 0;
			if (!fits)
				continue;
			x->used = true;
			last = x;
			moved = true;
			snprintf(cur, 65, "%s", strcmp(x->e.event, "delete") == 0 ? "" : x->e.hash);
		}
	}
	return last;
}

static bool session_event(const char *ev)
{
	return strcmp(ev, "create") == 0 || strcmp(ev, "update") == 0 || strcmp(ev, "delete") == 0;
}

/* Sessions changed after the backup: deletions are made again; the rest is reported. */
static enum scone_err forward_sessions(struct scone_store *st, struct tail *t, FILE *report,
				       unsigned *deleted, unsigned *stale)
{
	for (size_t i = 0; i < t->n; i++) {
		struct scone_session_rec rec;
		const struct tail_entry *last;
		char start[65] = "", cur[65];
		uint8_t h[32];
		enum scone_err err;

		if (t->v[i].used || !session_event(t->v[i].e.event))
			continue;
		err = st->ops->get(st, t->v[i].e.session, &rec);
		if (err == SCONE_ERR_OK)
			scone_hex_encode(start, sizeof(start), rec.hash, 32);
		else if (err != SCONE_ERR_NOT_FOUND)
			return err;
		memcpy(h, rec.hash, 32);
		scone_session_rec_clear(&rec);
		snprintf(cur, sizeof(cur), "%s", start);
		last = follow_session(t, t->v[i].e.session, cur);
		if (!last || strcmp(cur, start) == 0)
			continue;
		if (!cur[0]) {
			SCONE_TRY(st->ops->remove(st, last->e.session, h));
			fprintf(report, "session %s: deleted after the backup; deleted again\n",
				last->e.session);
			(*deleted)++;
		} else {
			fprintf(report,
				"session %s: %s after the backup (its hash became %s at %lld); the restored "
				"store holds "
				"%s: its owner must apply that change again\n",
				last->e.session, start[0] ? "updated" : "created", cur,
				(long long)last->e.time, start[0] ? start : "nothing");
			(*stale)++;
		}
	}
	return SCONE_ERR_OK;
}

/* ---------------- restore ---------------- */

static enum scone_err load_backup(struct cas *cas, struct scone_store *st, const char *path)
{
	struct reader r;
	enum scone_err err = reader_open(&r, path, cas->master_key);

	if (err == SCONE_ERR_OK)
		err = st->ops->load(st, next_item, &r);
	reader_close(&r);
	return err;
}

/* After the load: the restore's own chain, the tail, and what the tail says changed. */
static enum scone_err bring_forward(struct cas *cas, struct scone_store *st, const struct cas_restore_opts *o,
				    const struct cas_backup_counts *counts, struct tail *t)
{
	char note[300];
	struct cas_audit_event ev = {.event = "restore", .note = note};
	unsigned moved = 0, deleted = 0, stale = 0;
	enum scone_err err;

	snprintf(
	    note, sizeof(note),
	    "%llu sessions, %llu tags, %llu audit entries from a backup; %zu newer entries from %d log(s)%s",
	    (unsigned long long)counts->sessions, (unsigned long long)counts->tags,
	    (unsigned long long)counts->entries, t->n, o->n_logs,
	    o->n_logs ? "" : ": volume tags changed after the backup are unknown (accepted)");
	cas->stores[0] = st;
	err = cas_audit_start(cas, 0);
	if (err == SCONE_ERR_OK)
		err = cas_audit_note(cas, 0, &ev);
	if (err == SCONE_ERR_OK)
		err = add_tail(st, t);
	if (err == SCONE_ERR_OK)
		err = forward_tags(st, t, o->report, &moved);
	if (err == SCONE_ERR_OK)
		err = forward_sessions(st, t, o->report, &deleted, &stale);
	cas_audit_stop(cas, 0);
	cas->stores[0] = NULL;
	if (err == SCONE_ERR_OK)
		fprintf(
		    o->report,
		    "restored %llu sessions, %llu volume tags, %llu audit entries; %zu newer audit entries "
		    "added, %u tags brought forward, %u sessions deleted again, %u sessions older than "
		    "the log\n",
		    (unsigned long long)counts->sessions, (unsigned long long)counts->tags,
		    (unsigned long long)counts->entries, t->n, moved, deleted, stale);
	return err;
}

enum scone_err cas_restore(struct cas *cas, struct scone_store *st, const struct cas_restore_opts *o)
{
	struct cas_audit_log *heads = NULL;
	struct cas_backup_counts counts = {0};
	struct tail t = {0};
	enum scone_err err;

	if (o->n_logs == 0 && !o->accept_tag_rollback)
		return scone_err_set(
		    SCONE_ERR_INVALID,
		    "a restore needs the audit log written since the backup (--audit-log FILE: an "
		    "export or a replica's mirror), so that volumes cannot be rolled back to the "
		    "backup's state; without one, --accept-tag-rollback says you accept that");
	err = cas_audit_log_new(cas->identity.key, &heads);
	if (err == SCONE_ERR_OK)
		err = scan_backup(o->backup, cas->master_key, heads, &counts);
	if (err == SCONE_ERR_OK)
		err = read_tail(cas, o, heads, &t);
	if (err == SCONE_ERR_OK)
		err = load_backup(cas, st, o->backup);
	if (err == SCONE_ERR_OK)
		err = bring_forward(cas, st, o, &counts, &t);
	tail_free(&t);
	cas_audit_log_free(heads);
	return err;
}
