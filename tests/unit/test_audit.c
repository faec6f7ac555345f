/*
 * test_audit.c - unit tests for CAS's audit log (src/cas/audit.c,
 * audit_log.c) and backups (src/cas/backup.c).
 *
 * Lines: every field round-trips; every single byte changed anywhere in a
 * line is refused; another CAS's key is refused; hostile names stay one
 * valid line. Logs: interleaved chains check; a dropped, repeated, swapped,
 * altered, forged or cut line is named by its line number; a later log
 * must extend an earlier one. Backups: a restore reproduces the store;
 * every changed byte of the backup file and another CAS's audit log are
 * refused with the new store left empty; the log written since the backup
 * brings volume tags forward (the backup's tag is refused afterwards),
 * deletes again what was deleted, and reports what it cannot redo.
 */
#include "helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <sqlite3.h>

#include "cas/audit.h"
#include "cas/backup.h"
#include "cas/cas.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "pg_cut.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define assert_err(expr, code, detail)                                                                       \
	do {                                                                                                 \
		enum scone_err e_ = (expr);                                                                  \
		if (e_ != (code) || !strstr(scone_err_detail(), (detail)))                                   \
			fail_msg("%s: %s (%s), expected %s with \"%s\"", #expr, scone_errname(e_),           \
				 scone_err_detail(), scone_errname(code), (detail));                         \
	} while (0)

/* ---------------- fixtures ---------------- */

static struct scone_identity g_id, g_other;

static int setup_ids(void **state)
{
	(void)state;
	assert_ok(scone_identity_new("scone-cas", 1, &g_id));
	assert_ok(scone_identity_new("another-cas", 1, &g_other));
	return 0;
}

static int free_ids(void **state)
{
	(void)state;
	scone_identity_free(&g_id);
	scone_identity_free(&g_other);
	pgfx_stop(); /* (if a test started it) */
	return 0;
}

/* One chain's entries, formatted by cas_audit_format. */
struct chain {
	char name[SCONE_AUDIT_CHAIN_MAX + 1];
	uint64_t seq;
	uint8_t hash[32];
};

static char *entry(struct chain *c, const struct scone_identity *id, const struct cas_audit_event *ev)
{
	const struct cas_audit_signer sg = {id->key, "replica-1"};
	struct scone_audit_row row;
	char *line;

	assert_ok(
	    cas_audit_format(&sg, c->name, c->seq + 1, c->hash, 1700000000 + (int64_t)c->seq, ev, &row));
	c->seq = row.seq;
	memcpy(c->hash, row.hash, 32);
	line = malloc(row.line_len + 1);
	assert_non_null(line);
	memcpy(line, row.line, row.line_len);
	line[row.line_len] = '\0';
	free(row.line);
	return line;
}

static char *simple(struct chain *c, const char *event, const char *session)
{
	struct cas_audit_event ev = {.event = event, .session = session, .service = "app"};

	return entry(c, &g_id, &ev);
}

static void header_of(const struct scone_identity *id, FILE *f)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL, *copy;
	long n;

	assert_int_equal(PEM_write_bio_X509(b, id->cert), 1);
	n = BIO_get_mem_data(b, &pem);
	copy = strndup(pem, (size_t)n);
	assert_ok(cas_audit_write_header(f, copy));
	free(copy);
	BIO_free(b);
}

/* A log file of lines (NULL-terminated list), with a header of id unless id is NULL. */
static void write_log(const char *path, const struct scone_identity *id, char **lines, int n)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (id)
		header_of(id, f);
	for (int i = 0; i < n; i++)
		if (lines[i])
			fprintf(f, "%s\n", lines[i]);
	assert_int_equal(fclose(f), 0);
}

/* Check path with the key of id; returns the error, *bad the line named. */
static enum scone_err check_log(const char *path, const struct scone_identity *id, unsigned long *bad,
				struct cas_audit_log **keep)
{
	struct cas_audit_log *l = NULL;
	FILE *f = fopen(path, "r");
	enum scone_err e;

	assert_non_null(f);
	assert_ok(cas_audit_log_new(id ? id->key : NULL, &l));
	e = cas_audit_log_check(l, f, path, false, NULL, NULL, bad);
	fclose(f);
	if (keep)
		*keep = l;
	else
		cas_audit_log_free(l);
	return e;
}

/* ---------------- lines ---------------- */

TEST(test_line_roundtrip)
{
	static const uint8_t actor[32] = {1, 2, 3}, hash[32] = {4, 5, 6}, previous[32] = {7, 8, 9};
	struct chain c = {.name = "cas-0.0badc0de/w3"};
	struct cas_audit_event ev = {.event = "tag",
				     .session = "app/db",
				     .service = "postgres",
				     .volume = "data",
				     .actor = actor,
				     .hash = hash,
				     .previous = previous,
				     .tag = "11111111111111111111111111111111",
				     .previous_tag = "22222222222222222222222222222222",
				     .method = "POST",
				     .path = "/v1/volumes/tag",
				     .status = 409,
				     .code = "CONFLICT",
				     .note = "a note"};
	struct cas_audit_entry e;
	char *l1 = entry(&c, &g_id, &ev), *l2 = simple(&c, "release", "app/db");
	char hex[65];

	assert_ok(cas_audit_parse_line(l1, strlen(l1), g_id.key, &e));
	assert_string_equal(e.chain, "cas-0.0badc0de/w3");
	assert_int_equal(e.seq, 1);
	assert_int_equal(e.time, 1700000000);
	assert_string_equal(e.event, "tag");
	assert_string_equal(e.replica, "replica-1");
	assert_string_equal(e.session, "app/db");
	assert_string_equal(e.service, "postgres");
	assert_string_equal(e.volume, "data");
	scone_hex_encode(hex, sizeof(hex), actor, 32);
	assert_string_equal(e.actor, hex);
	scone_hex_encode(hex, sizeof(hex), hash, 32);
	assert_string_equal(e.hash, hex);
	scone_hex_encode(hex, sizeof(hex), previous, 32);
	assert_string_equal(e.previous, hex);
	assert_string_equal(e.tag, "11111111111111111111111111111111");
	assert_string_equal(e.previous_tag, "22222222222222222222222222222222");
	assert_string_equal(e.code, "CONFLICT");
	assert_int_equal(e.status, 409);
	/* The second entry names the first. */
	{
		uint8_t first[32];
		memcpy(first, e.entry, 32);
		assert_ok(cas_audit_parse_line(l2, strlen(l2), g_id.key, &e));
		assert_int_equal(e.seq, 2);
		assert_memory_equal(e.prev, first, 32);
	}
	/* Without a key the hash is still checked; another CAS's key is refused. */
	assert_ok(cas_audit_parse_line(l1, strlen(l1), NULL, &e));
	assert_err(cas_audit_parse_line(l1, strlen(l1), g_other.key, &e), SCONE_ERR_TAMPERED, "signature");
	free(l1);
	free(l2);
}

/* Any single byte changed anywhere in a line: refused, whatever the byte. */
TEST(test_line_every_byte)
{
	struct chain c = {.name = "c/w0"};
	char *line = simple(&c, "update", "tenant/app");
	size_t n = strlen(line);
	struct cas_audit_entry e;
	int refused = 0;

	for (size_t i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			char saved = line[i];
			line[i] = (char)(line[i] ^ (1 << bit));
			if (cas_audit_parse_line(line, n, g_id.key, &e) == SCONE_ERR_OK)
				fail_msg("byte %zu bit %d changed and still accepted: %s", i, bit, line);
			refused++;
			line[i] = saved;
		}
	}
	/* Cut at every length: refused too. */
	for (size_t i = 0; i < n; i++)
		assert_int_not_equal(cas_audit_parse_line(line, i, g_id.key, &e), SCONE_ERR_OK);
	assert_ok(cas_audit_parse_line(line, n, g_id.key, &e));
	printf("%d changed lines refused\n", refused);
	free(line);
}

/* Names that clients choose (a request path) cannot break out of their string or the line. */
TEST(test_line_hostile_names)
{
	struct chain c = {.name = "c/w0"};
	struct cas_audit_event ev = {.event = "refuse",
				     .path = "/v1/sessions/a\"}, \"event\":\"create\x01\x7f\xff\\",
				     .method = "PUT",
				     .status = 403,
				     .code = "PERMISSION"};
	struct cas_audit_entry e;
	char *line = entry(&c, &g_id, &ev);

	assert_null(strchr(line, '\n'));
	for (const unsigned char *p = (const unsigned char *)line; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	assert_ok(cas_audit_parse_line(line, strlen(line), g_id.key, &e));
	assert_string_equal(e.event, "refuse");
	free(line);
}

/* ---------------- logs ---------------- */

struct logfx {
	char dir[64], path[96], old[96];
	char *lines[12];
	int n;
};

/* Two chains, interleaved: a1 b1 a2 a3 a4 b2 a5 b3. */
static void logfx_init(struct logfx *x)
{
	struct chain a = {.name = "r1.aaaa/w0"}, b = {.name = "r2.bbbb/w1"};
	static const char order[] = "abaaabab";

	memset(x, 0, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "/tmp/scone-audit-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->path, sizeof(x->path), "%s/audit.log", x->dir);
	snprintf(x->old, sizeof(x->old), "%s/old.log", x->dir);
	for (int i = 0; order[i]; i++)
		x->lines[x->n++] = simple(order[i] == 'a' ? &a : &b, i % 2 ? "release" : "update", "s");
}

static void logfx_done(struct logfx *x)
{
	for (int i = 0; i < x->n; i++)
		free(x->lines[i]);
	unlink(x->path);
	unlink(x->old);
	rmdir(x->dir);
}

TEST(test_log_check)
{
	struct logfx x;
	struct cas_audit_log *l = NULL;
	unsigned long bad = 0;
	uint64_t entries = 0;
	size_t chains = 0;
	char *saved;

	logfx_init(&x);
	write_log(x.path, &g_id, x.lines, x.n);
	assert_ok(check_log(x.path, &g_id, &bad, &l));
	cas_audit_log_counts(l, &entries, &chains);
	assert_int_equal(entries, 8);
	assert_int_equal(chains, 2);
	cas_audit_log_free(l);
	/* The key from the header alone (the CLI checks its fingerprint first); none at all is refused. */
	assert_ok(check_log(x.path, NULL, &bad, NULL));
	write_log(x.path, NULL, x.lines, x.n);
	assert_ok(check_log(x.path, &g_id, &bad, NULL));
	assert_err(check_log(x.path, NULL, &bad, NULL), SCONE_ERR_INVALID, "no certificate");

	/* Line 4 of the file (a2) dropped: a3 on line 4 now is named. */
	saved = x.lines[2];
	x.lines[2] = NULL;
	write_log(x.path, &g_id, x.lines, x.n);
	assert_err(check_log(x.path, &g_id, &bad, NULL), SCONE_ERR_MISSING,
		   "line 4 (entry 3 of chain r1.aaaa/w0)");
	assert_int_equal(bad, 4);
	x.lines[2] = saved;

	/* a2 and a3 swapped. */
	x.lines[2] = x.lines[3];
	x.lines[3] = saved;
	write_log(x.path, &g_id, x.lines, x.n);
	assert_err(check_log(x.path, &g_id, &bad, NULL), SCONE_ERR_MISSING, "entry 3 of chain r1.aaaa/w0");
	assert_int_equal(bad, 4);
	x.lines[3] = x.lines[2];
	x.lines[2] = saved;

	/* a2 twice. */
	{
		char *dup[12];
		memcpy(dup, x.lines, sizeof(dup));
		dup[3] = x.lines[2];
		write_log(x.path, &g_id, dup, x.n);
		assert_err(check_log(x.path, &g_id, &bad, NULL), SCONE_ERR_MISSING, "line 5");
	}

	/* One byte of a4's session name changed: its hash no longer matches. */
	{
		char *p = strstr(x.lines[4], "\"session\":\"s\"");
		assert_non_null(p);
		p[11] = 't';
		write_log(x.path, &g_id, x.lines, x.n);
		assert_err(check_log(x.path, &g_id, &bad, NULL), SCONE_ERR_TAMPERED,
			   "line 6 (entry 4 of chain r1.aaaa/w0)");
		assert_int_equal(bad, 6);
		p[11] = 's';
	}

	/* The last line cut in half. */
	x.lines[7][strlen(x.lines[7]) / 2] = '\0';
	write_log(x.path, &g_id, x.lines, x.n);
	assert_err(check_log(x.path, &g_id, &bad, NULL), SCONE_ERR_MALFORMED, "line 9");
	logfx_done(&x);

	/* A header of another CAS, checked with our key. */
	logfx_init(&x);
	write_log(x.path, &g_other, x.lines, x.n);
	assert_err(check_log(x.path, &g_id, &bad, NULL), SCONE_ERR_UNTRUSTED, "not the given CAS");
	assert_int_equal(bad, 1);
	logfx_done(&x);
}

/* A log forged whole by someone with another key (hashes right, chains right): the signature tells. */
TEST(test_log_forged)
{
	struct chain a = {.name = "r1.aaaa/w0"};
	struct cas_audit_event ev = {.event = "create", .session = "s"};
	char *lines[3];
	char path[] = "/tmp/scone-audit-forged-XXXXXX";
	unsigned long bad = 0;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	lines[0] = entry(&a, &g_id, &ev);
	lines[1] = entry(&a, &g_other, &ev);
	lines[2] = entry(&a, &g_id, &ev);
	write_log(path, NULL, lines, 3);
	assert_err(check_log(path, &g_id, &bad, NULL), SCONE_ERR_TAMPERED,
		   "line 2 (entry 2 of chain r1.aaaa/w0)");
	for (int i = 0; i < 3; i++)
		free(lines[i]);
	unlink(path);
}

TEST(test_log_extends)
{
	struct logfx x;
	struct cas_audit_log *old = NULL, *now = NULL;
	unsigned long bad = 0;

	logfx_init(&x);
	/* Earlier: the first 6 lines (a1 b1 a2 a3 a4 b2); now: all 8. */
	write_log(x.old, &g_id, x.lines, 6);
	write_log(x.path, &g_id, x.lines, x.n);
	assert_ok(check_log(x.old, &g_id, &bad, &old));
	assert_ok(check_log(x.path, &g_id, &bad, &now));
	assert_ok(cas_audit_log_extends(now, old));
	cas_audit_log_free(now);
	/* Now ends before the earlier log did on chain b (b2 and b3 cut off): rolled back. */
	{
		char *cut_b[] = {x.lines[0], x.lines[1], x.lines[2], x.lines[3], x.lines[4], x.lines[6]};
		write_log(x.path, &g_id, cut_b, 6);
	}
	assert_ok(check_log(x.path, &g_id, &bad, &now));
	assert_err(cas_audit_log_extends(now, old), SCONE_ERR_ROLLBACK,
		   "chain r2.bbbb/w1 ends at entry 1, before at 2");
	cas_audit_log_free(now);
	/* A chain gone entirely. */
	{
		char *only_a[] = {x.lines[0], x.lines[2], x.lines[3], x.lines[4], x.lines[6]};
		write_log(x.path, &g_id, only_a, 5);
		assert_ok(check_log(x.path, &g_id, &bad, &now));
		assert_err(cas_audit_log_extends(now, old), SCONE_ERR_ROLLBACK,
			   "chain r2.bbbb/w1 (2 entries before) is missing");
		cas_audit_log_free(now);
	}
	cas_audit_log_free(old);
	logfx_done(&x);
}

/* ---------------- backup and restore ---------------- */

struct bfx {
	char dir[64];
	char backup[128], log[128];
	struct cas cas;	     /* the CAS whose store is backed up (sqlite in dir/a.db) */
	struct cas restored; /* the same key material, a new store (dir/b.db) */
	struct scone_store *a, *b;
};

static void cas_init(struct cas *cas, const char *dir, const char *db)
{
	memset(cas, 0, sizeof(*cas));
	cas->audit_mirror_fd = -1;
	pthread_mutex_init(&cas->audit_mirror_lock, NULL);
	cas->identity = g_id; /* borrowed: not freed here */
	assert_ok(scone_cert_sha256(g_id.cert, cas->cert_sha256));
	cas->master_key = scone_secure_alloc(32);
	assert_non_null(cas->master_key);
	for (int i = 0; i < 32; i++)
		cas->master_key[i] = (uint8_t)(0x42 + i);
	snprintf(cas->replica, sizeof(cas->replica), "test");
	snprintf(cas->store_path, sizeof(cas->store_path), "%s/%s", dir, db);
	snprintf(cas->store_url, sizeof(cas->store_url), "sqlite:%s", cas->store_path);
}

static void cas_fini(struct cas *cas)
{
	scone_secure_free(cas->master_key, 32);
	cas->master_key = NULL;
}

static void rec_of(struct scone_session_rec *r, const char *name, const char *body)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->body = (char *)body;
	r->body_len = strlen(body);
	r->secrets = (uint8_t *)"secret bytes";
	r->secrets_len = 12;
	scone_sha256(body, r->body_len, r->hash);
	memset(r->creator, 9, 32);
}

static void tag_of(char t[65], char c)
{
	memset(t, c, 32);
	t[32] = '\0';
}

/* Store a: s1 (tag T1 on data), s2, s3; audited by a CAS worker chain; backed up. */
static void bfx_init(struct bfx *x)
{
	struct scone_session_rec r;
	struct cas_backup_counts counts;
	char t[65];

	memset(x, 0, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "/tmp/scone-backup-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->backup, sizeof(x->backup), "%s/backup.bin", x->dir);
	snprintf(x->log, sizeof(x->log), "%s/audit.log", x->dir);
	cas_init(&x->cas, x->dir, "a.db");
	cas_init(&x->restored, x->dir, "b.db");
	assert_ok(scone_store_open(x->cas.store_url, x->cas.master_key, 0, &x->a));
	x->cas.stores[0] = x->a;
	assert_ok(cas_audit_start(&x->cas, 0));
	rec_of(&r, "s1", "body 1");
	assert_ok(x->a->ops->create(x->a, &r));
	rec_of(&r, "s2", "body 2");
	assert_ok(x->a->ops->create(x->a, &r));
	rec_of(&r, "s3", "body 3");
	assert_ok(x->a->ops->create(x->a, &r));
	tag_of(t, '1');
	assert_ok(x->a->ops->put_volume_tag(x->a, "s1", "data", "", t));
	assert_ok(cas_backup_write(&x->cas, x->a, x->backup, &counts));
	assert_int_equal(counts.sessions, 3);
	assert_int_equal(counts.tags, 1);
	assert_int_equal(counts.entries, 5); /* start + 3 creates + 1 tag */
	assert_ok(scone_store_open(x->restored.store_url, x->restored.master_key, 0, &x->b));
}

static void bfx_done(struct bfx *x)
{
	cas_audit_stop(&x->cas, 0);
	x->a->ops->close(x->a);
	x->b->ops->close(x->b);
	cas_fini(&x->cas);
	cas_fini(&x->restored);
	{
		DIR *d = opendir(x->dir);
		struct dirent *e;
		char p[512];
		while (d && (e = readdir(d)) != NULL) {
			snprintf(p, sizeof(p), "%s/%s", x->dir, e->d_name);
			if (e->d_name[0] != '.')
				unlink(p);
		}
		if (d)
			closedir(d);
		rmdir(x->dir);
	}
}

/* The audit log of store st as an export: header, every entry. */
static enum scone_err export_line(void *ctx, const struct scone_store_item *it)
{
	fprintf(ctx, "%.*s\n", (int)it->audit->line_len, it->audit->line);
	return SCONE_ERR_OK;
}

static void export_log(struct scone_store *st, const struct scone_identity *id, const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	header_of(id, f);
	assert_ok(st->ops->dump(st, SCONE_DUMP_AUDIT, export_line, f));
	assert_int_equal(fclose(f), 0);
}

static uint64_t items(struct scone_store *st)
{
	uint64_t n = 0;

	assert_ok(st->ops->count(st, &n));
	return n;
}

/* Restore x->backup into x->b with the given logs; the report into out (malloc'd). */
static enum scone_err restore(struct bfx *x, const char **logs, int n, bool accept, char **out)
{
	size_t size = 0;
	FILE *rep = open_memstream(out, &size);
	struct cas_restore_opts o = {
	    .backup = x->backup, .logs = logs, .n_logs = n, .accept_tag_rollback = accept, .report = rep};
	enum scone_err e = cas_restore(&x->restored, x->b, &o);

	fclose(rep);
	return e;
}

TEST(test_restore_plain)
{
	struct bfx x;
	struct scone_session_rec r;
	char t[65], *report = NULL;

	bfx_init(&x);
	/* Without a log, only when the loss of newer tags is accepted. */
	assert_err(restore(&x, NULL, 0, false, &report), SCONE_ERR_INVALID, "--accept-tag-rollback");
	free(report);
	assert_int_equal(items(x.b), 0);
	assert_ok(restore(&x, NULL, 0, true, &report));
	assert_non_null(strstr(report, "restored 3 sessions, 1 volume tags, 5 audit entries"));
	free(report);
	assert_ok(x.b->ops->get(x.b, "s2", &r));
	assert_string_equal(r.body, "body 2");
	assert_memory_equal(r.secrets, "secret bytes", 12);
	scone_session_rec_clear(&r);
	assert_ok(x.b->ops->get_volume_tag(x.b, "s1", "data", t));
	assert_string_equal(t, "11111111111111111111111111111111");
	/* Not twice, not into a store that holds anything. */
	assert_err(restore(&x, NULL, 0, true, &report), SCONE_ERR_EXISTS, "not empty");
	free(report);
	bfx_done(&x);
}

/* Every byte of the backup matters: a change anywhere is refused and the new store stays empty. */
TEST(test_restore_damaged)
{
	struct bfx x;
	FILE *f;
	long size;
	unsigned char *orig;
	char *report = NULL;
	int refused = 0;

	bfx_init(&x);
	f = fopen(x.backup, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	orig = malloc((size_t)size);
	assert_int_equal(fread(orig, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	for (long off = 0; off < size; off += size / 97 + 1) {
		orig[off] ^= 0x10;
		f = fopen(x.backup, "wb");
		assert_int_equal(fwrite(orig, 1, (size_t)size, f), (size_t)size);
		fclose(f);
		orig[off] ^= 0x10;
		if (restore(&x, NULL, 0, true, &report) == SCONE_ERR_OK)
			fail_msg("a backup changed at byte %ld was restored", off);
		free(report);
		assert_int_equal(items(x.b), 0);
		refused++;
	}
	/* Cut short, or one byte more. */
	f = fopen(x.backup, "wb");
	assert_int_equal(fwrite(orig, 1, (size_t)size - 1, f), (size_t)size - 1);
	fclose(f);
	assert_int_not_equal(restore(&x, NULL, 0, true, &report), SCONE_ERR_OK);
	free(report);
	f = fopen(x.backup, "wb");
	assert_int_equal(fwrite(orig, 1, (size_t)size, f), (size_t)size);
	fputc(0, f);
	fclose(f);
	assert_int_not_equal(restore(&x, NULL, 0, true, &report), SCONE_ERR_OK);
	free(report);
	assert_int_equal(items(x.b), 0);
	printf("%d damaged backups refused\n", refused);
	free(orig);
	bfx_done(&x);
}

/* Under another master key the backup's MAC does not match: refused, nothing loaded. */
TEST(test_restore_other_key)
{
	struct bfx x;
	char *report = NULL;

	bfx_init(&x);
	x.restored.master_key[0] ^= 1;
	assert_err(restore(&x, NULL, 0, true, &report), SCONE_ERR_CORRUPT, "MAC does not match");
	free(report);
	assert_int_equal(items(x.b), 0);
	bfx_done(&x);
}

TEST(test_restore_with_tail)
{
	struct bfx x;
	struct scone_session_rec r;
	uint8_t h[32];
	char t1[65], t2[65], t3[65], got[65], *report = NULL;
	const char *logs[1];

	bfx_init(&x);
	/* After the backup: s1/data moves twice, s2 is updated, s3 deleted, s4 created. */
	tag_of(t1, '1');
	tag_of(t2, '2');
	tag_of(t3, '3');
	assert_ok(x.a->ops->put_volume_tag(x.a, "s1", "data", t1, t2));
	assert_ok(x.a->ops->put_volume_tag(x.a, "s1", "data", t2, t3));
	rec_of(&r, "s2", "body 2, version 2");
	scone_sha256("body 2", 6, h);
	assert_ok(x.a->ops->update(x.a, &r, h));
	scone_sha256("body 3", 6, h);
	assert_ok(x.a->ops->remove(x.a, "s3", h));
	rec_of(&r, "s4", "body 4");
	assert_ok(x.a->ops->create(x.a, &r));
	export_log(x.a, &g_id, x.log);

	/* A log from another CAS is refused before the store is touched. */
	{
		char other[160];
		snprintf(other, sizeof(other), "%s/other.log", x.dir);
		export_log(x.a, &g_other, other);
		logs[0] = other;
		assert_err(restore(&x, logs, 1, false, &report), SCONE_ERR_UNTRUSTED, "not the given CAS");
		free(report);
		assert_int_equal(items(x.b), 0);
	}

	logs[0] = x.log;
	assert_ok(restore(&x, logs, 1, false, &report));
	printf("%s", report);
	assert_non_null(strstr(report, "volume s1/data: tag brought forward over 2 change(s) to 3333"));
	assert_non_null(strstr(report, "session s3: deleted after the backup; deleted again"));
	assert_non_null(strstr(report, "session s2: updated after the backup"));
	assert_non_null(strstr(report, "session s4: created after the backup"));
	free(report);
	/* The newest tag: the backup's is refused from now on. */
	assert_ok(x.b->ops->get_volume_tag(x.b, "s1", "data", got));
	assert_string_equal(got, t3);
	assert_int_equal(x.b->ops->put_volume_tag(x.b, "s1", "data", t1, t2), SCONE_ERR_CONFLICT);
	assert_int_equal(x.b->ops->get(x.b, "s3", &r), SCONE_ERR_NOT_FOUND);
	assert_int_equal(x.b->ops->get(x.b, "s4", &r), SCONE_ERR_NOT_FOUND);
	assert_ok(x.b->ops->get(x.b, "s2", &r));
	assert_string_equal(r.body, "body 2");
	scone_session_rec_clear(&r);

	/* The restored store's log holds everything the old one did, and verifies. */
	{
		char now[160];
		struct cas_audit_log *l_old = NULL, *l_now = NULL;
		unsigned long bad = 0;
		snprintf(now, sizeof(now), "%s/now.log", x.dir);
		export_log(x.b, &g_id, now);
		assert_ok(check_log(x.log, &g_id, &bad, &l_old));
		assert_ok(check_log(now, &g_id, &bad, &l_now));
		assert_ok(cas_audit_log_extends(l_now, l_old));
		cas_audit_log_free(l_old);
		cas_audit_log_free(l_now);
	}
	bfx_done(&x);
}

/* A log that does not continue the backup's chains (an entry in between is missing). */
TEST(test_restore_gap)
{
	struct bfx x;
	char t1[65], t2[65], t3[65], *report = NULL;
	const char *logs[1] = {NULL};
	FILE *in, *out;
	char line[20000], cut[160];
	int n = 0;

	bfx_init(&x);
	tag_of(t1, '1');
	tag_of(t2, '2');
	tag_of(t3, '3');
	assert_ok(x.a->ops->put_volume_tag(x.a, "s1", "data", t1, t2));
	assert_ok(x.a->ops->put_volume_tag(x.a, "s1", "data", t2, t3));
	export_log(x.a, &g_id, x.log);
	/* Drop entry 6 (the first change after the backup). */
	snprintf(cut, sizeof(cut), "%s/cut.log", x.dir);
	in = fopen(x.log, "r");
	out = fopen(cut, "w");
	while (fgets(line, sizeof(line), in))
		if (n++ != 6)
			fputs(line, out);
	fclose(in);
	fclose(out);
	logs[0] = cut;
	assert_err(restore(&x, logs, 1, false, &report), SCONE_ERR_MISSING, "entry 7 of chain test.");
	free(report);
	assert_int_equal(items(x.b), 0);
	bfx_done(&x);
}

/* ---------------- spans of a runtime's tag reports ---------------- */

/* Run fn's writes as the request of a runtime (key byte k) reporting a tag, or as an owner's accept. */
static void as_request(struct cas *cas, struct cas_request *req, char k, bool runtime)
{
	memset(req, 0, sizeof(*req));
	req->method = runtime ? CAS_POST : CAS_PUT;
	req->path = runtime ? "/v1/volumes/tag" : "/v1/volumes/s1/data";
	req->has_peer_key = true;
	memset(req->peer_spki_sha256, k, 32);
	req->worker = 0;
	cas_audit_begin(cas, req);
}

static void request_done(struct cas *cas, const struct cas_request *req)
{
	struct cas_response resp = {.status = 200};

	assert_false(cas_audit_end(cas, req, &resp));
}

/* n runtime reports of s1/volume from tag *cur on, as runtime k: *cur is the newest tag after. */
static void reports(struct bfx *x, char k, const char *volume, char cur[65], int n)
{
	struct cas_request req;
	char next[65];

	for (int i = 0; i < n; i++) {
		as_request(&x->cas, &req, k, true);
		snprintf(next, sizeof(next), "%08x%024d", (unsigned)(k * 1000003 + i * 7919 + cur[0]), i);
		assert_ok(x->a->ops->put_volume_tag(x->a, "s1", volume, cur, next));
		request_done(&x->cas, &req);
		memcpy(cur, next, 65);
	}
}

/* The parsed entries of store st's audit log (an export), into a log checked with g_id's key. */
static int count_entries(struct bfx *x, struct scone_store *st, const char *name, struct cas_audit_log **keep)
{
	char path[160];
	unsigned long bad = 0;
	uint64_t entries = 0;
	size_t chains = 0;
	struct cas_audit_log *l = NULL;

	snprintf(path, sizeof(path), "%s/%s", x->dir, name);
	export_log(st, &g_id, path);
	assert_ok(check_log(path, &g_id, &bad, &l));
	cas_audit_log_counts(l, &entries, &chains);
	if (keep)
		*keep = l;
	else
		cas_audit_log_free(l);
	return (int)entries;
}

/* The last line of a file (malloc'd). */
static char *last_line(const char *path)
{
	FILE *f = fopen(path, "r");
	char buf[20000], *last = NULL;

	assert_non_null(f);
	while (fgets(buf, sizeof(buf), f)) {
		free(last);
		buf[strcspn(buf, "\n")] = '\0';
		last = strdup(buf);
	}
	fclose(f);
	return last;
}

/*
 * One entry a span: 300 reports of one runtime for one volume add one
 * entry, which names the span's first tag, the newest and the count; the
 * log still verifies. An owner's accept, another volume's report and
 * another runtime each end the span.
 */
TEST(test_span_one_entry)
{
	struct bfx x;
	struct cas_request req;
	struct cas_audit_entry e;
	char cur[65], first[65], path[160], *line;

	bfx_init(&x); /* 5 entries; s1/data at tag 1111... */
	tag_of(cur, '1');
	memcpy(first, cur, 65);
	reports(&x, 'a', "data", cur, 300);
	assert_int_equal(count_entries(&x, x.a, "a.log", NULL), 6);
	snprintf(path, sizeof(path), "%s/a.log", x.dir);
	line = last_line(path);
	assert_ok(cas_audit_parse_line(line, strlen(line), g_id.key, &e));
	free(line);
	assert_string_equal(e.event, "tag");
	assert_int_equal(e.reports, 300);
	assert_string_equal(e.previous_tag, first);
	assert_string_equal(e.tag, cur);
	assert_true(e.has_supersedes);
	assert_true(e.last >= e.time);

	/* An owner's accept is an entry of its own, and the runtime's next report starts a new span. */
	as_request(&x.cas, &req, 'o', false);
	tag_of(first, '9');
	assert_ok(x.a->ops->put_volume_tag(x.a, "s1", "data", cur, first));
	request_done(&x.cas, &req);
	memcpy(cur, first, 65);
	reports(&x, 'a', "data", cur, 10);
	assert_int_equal(count_entries(&x, x.a, "b.log", NULL), 8);
	/* Reports of two volumes in turn: an entry each time. */
	{
		char other[65] = ""; /* (a volume not reported yet) */
		reports(&x, 'a', "logs", other, 1);
		reports(&x, 'a', "data", cur, 1);
		reports(&x, 'a', "logs", other, 1);
	}
	assert_int_equal(count_entries(&x, x.a, "c.log", NULL), 11);
	/* Another runtime (another key) reporting the same volume: a new span. */
	reports(&x, 'b', "data", cur, 5);
	reports(&x, 'b', "data", cur, 5);
	assert_int_equal(count_entries(&x, x.a, "d.log", NULL), 12);
	bfx_done(&x);
}

/* Mirror x's log to path from now on: the worker's writer starts again, a new chain that the mirror holds
 * whole. */
static void mirror_on(struct bfx *x, char *path, size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/mirror.log", x->dir);
	f = fopen(path, "w");
	assert_non_null(f);
	header_of(&g_id, f);
	fclose(f);
	cas_audit_stop(&x->cas, 0);
	x->cas.audit_mirror_fd = open(path, O_WRONLY | O_APPEND);
	assert_true(x->cas.audit_mirror_fd >= 0);
	assert_ok(cas_audit_start(&x->cas, 0));
}

static void mirror_off(struct bfx *x)
{
	close(x->cas.audit_mirror_fd);
	x->cas.audit_mirror_fd = -1;
}

/* Lines of path that hold text. */
static int count_lines(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char buf[20000];
	int n = 0;

	assert_non_null(f);
	while (fgets(buf, sizeof(buf), f))
		n += strstr(buf, text) != NULL;
	fclose(f);
	return n;
}

/* The "reports" of the last entry line of a log file (1 when it has none). */
static int last_reports(const char *path)
{
	struct cas_audit_entry e;
	char *line = last_line(path);

	assert_ok(cas_audit_parse_line(line, strlen(line), g_id.key, &e));
	free(line);
	return (int)e.reports;
}

/*
 * A mirror holds a span's versions at most once a second, the newest one
 * at the latest a second after it was made, and verifies; a later export
 * extends an earlier one taken in the middle of a span, not the other way
 * round.
 */
TEST(test_span_mirror_extends)
{
	struct bfx x;
	struct cas_audit_log *mid = NULL, *end = NULL;
	char cur[65], mirror[160];
	unsigned long bad = 0;
	uint64_t entries = 0;
	size_t chains = 0;

	bfx_init(&x);
	mirror_on(&x, mirror, sizeof(mirror));
	tag_of(cur, '1');
	reports(&x, 'a', "data", cur, 20);
	assert_int_equal(count_entries(&x, x.a, "mid.log", &mid), 7);
	reports(&x, 'a', "data", cur, 20);
	assert_int_equal(count_entries(&x, x.a, "end.log", &end), 7);
	assert_ok(cas_audit_log_extends(end, mid));
	assert_err(cas_audit_log_extends(mid, end), SCONE_ERR_ROLLBACK, "differs from before");
	cas_audit_log_free(mid);
	cas_audit_log_free(end);
	/*
	 * The mirror: the new chain's start, then the span's entry, whose later
	 * versions go there at most once a second: the newest is held back
	 * until a second has passed since the last write (the tick), or until
	 * the writer stops.
	 */
	assert_true(count_lines(mirror, "\"supersedes\"") < 10);
	sleep_ms(1100);
	cas_audit_tick(&x.cas, 0, false);
	assert_int_equal(last_reports(mirror), 40);
	assert_ok(check_log(mirror, &g_id, &bad, &end));
	cas_audit_log_counts(end, &entries, &chains);
	assert_int_equal(entries, 2);
	assert_int_equal(chains, 1);
	cas_audit_log_free(end);
	/* More reports within the second after that write: held back, until the writer stops (forced). */
	reports(&x, 'a', "data", cur, 5);
	assert_int_equal(last_reports(mirror), 40);
	cas_audit_tick(&x.cas, 0, true);
	assert_int_equal(last_reports(mirror), 45);
	mirror_off(&x);
	bfx_done(&x);
}

/* A forged version: it names the head as superseded but changes the span, or covers no more reports. */
TEST(test_span_forged)
{
	struct chain c = {.name = "r1.aaaa/w0"};
	struct cas_audit_event tag = {
	    .event = "tag", .session = "s", .volume = "v", .tag = "22", .previous_tag = "11"};
	const struct cas_audit_signer sg = {g_id.key, "replica-1"};
	struct scone_audit_row row;
	struct cas_audit_log *l = NULL;
	unsigned long bad = 0;
	char *lines[4], path[] = "/tmp/scone-span-XXXXXX";
	uint8_t head[32], prev[32];
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	lines[0] = simple(&c, "start", NULL);
	memcpy(prev, c.hash, 32);
	lines[1] = entry(&c, &g_id, &tag);
	memcpy(head, c.hash, 32);
	/* version 2 of entry 2, but of another volume */
	tag.volume = "other";
	tag.reports = 2;
	tag.last = 1700000005;
	tag.supersedes = head;
	tag.tag = "33";
	assert_ok(cas_audit_format(&sg, c.name, 2, prev, 1700000001, &tag, &row));
	lines[2] = strndup(row.line, row.line_len);
	free(row.line);
	write_log(path, &g_id, lines, 3);
	assert_err(check_log(path, &g_id, &bad, NULL), SCONE_ERR_TAMPERED, "does not continue");
	assert_int_equal(bad, 4);
	free(lines[2]);
	/* the same volume, but a later version must cover more reports: 1 is not more */
	tag.volume = "v";
	tag.reports = 1;
	assert_ok(cas_audit_format(&sg, c.name, 2, prev, 1700000001, &tag, &row));
	lines[2] = strndup(row.line, row.line_len);
	free(row.line);
	write_log(path, &g_id, lines, 3);
	assert_int_not_equal(check_log(path, &g_id, &bad, NULL), SCONE_ERR_OK);
	free(lines[2]);
	/* a proper version: accepted, and the head is now that version */
	tag.reports = 2;
	assert_ok(cas_audit_format(&sg, c.name, 2, prev, 1700000001, &tag, &row));
	lines[2] = strndup(row.line, row.line_len);
	free(row.line);
	write_log(path, &g_id, lines, 3);
	assert_ok(check_log(path, &g_id, &bad, &l));
	assert_true(cas_audit_log_head(l, c.name, &c.seq, head));
	assert_int_equal(c.seq, 2);
	cas_audit_log_free(l);
	for (int i = 0; i < 3; i++)
		free(lines[i]);
	unlink(path);
}

/*
 * Someone with the database changes the text of a span's entry (an older
 * version of it, say) and leaves its hash column alone: the next report,
 * whose version would replace that entry, finds it altered, and CAS stops
 * serving (ROLLBACK), as for an entry gone.
 */
TEST(test_span_entry_altered)
{
	struct bfx x;
	struct cas_request req;
	sqlite3 *db = NULL;
	char cur[65], next[65];

	bfx_init(&x);
	tag_of(cur, '1');
	reports(&x, 'a', "data", cur, 3);
	assert_int_equal(sqlite3_open(x.cas.store_path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db,
			 "UPDATE audit SET line = replace(line, '\"reports\":3', '\"reports\":2') "
			 "WHERE seq = (SELECT max(seq) FROM audit)",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_changes(db), 1);
	sqlite3_close(db);
	as_request(&x.cas, &req, 'a', true);
	tag_of(next, '7');
	assert_int_not_equal(x.a->ops->put_volume_tag(x.a, "s1", "data", cur, next), SCONE_ERR_OK);
	request_done(&x.cas, &req);
	assert_true(atomic_load(&x.cas.rolled_back));
	assert_ok(x.a->ops->get_volume_tag(x.a, "s1", "data", next));
	assert_string_equal(next, cur); /* the refused report changed nothing */
	bfx_done(&x);
}

/*
 * A backup taken in the middle of a span: restoring it with an export
 * (the span's last version only) or with the mirror (every version) brings
 * the volume to the newest tag, and the restored store's log verifies.
 */
TEST(test_restore_span)
{
	struct bfx x;
	struct cas_backup_counts counts;
	char cur[65], got[65], mirror[160], *report = NULL;
	const char *logs[1];

	for (int with_mirror = 0; with_mirror < 2; with_mirror++) {
		bfx_init(&x);
		mirror_on(&x, mirror, sizeof(mirror));
		tag_of(cur, '1');
		reports(&x, 'a', "data", cur, 7);
		assert_ok(cas_backup_write(&x.cas, x.a, x.backup, &counts));
		assert_int_equal(counts.entries, 7);
		reports(&x, 'a', "data", cur, 9);
		cas_audit_tick(&x.cas, 0, true); /* (the mirror's newest version, held back) */
		mirror_off(&x);
		export_log(x.a, &g_id, x.log);
		logs[0] = with_mirror ? mirror : x.log;
		assert_ok(restore(&x, logs, 1, false, &report));
		if (!strstr(report, "volume s1/data: tag brought forward over 9 change(s)"))
			fail_msg("restore with %s: %s", with_mirror ? "the mirror" : "an export", report);
		free(report);
		assert_ok(x.b->ops->get_volume_tag(x.b, "s1", "data", got));
		assert_string_equal(got, cur);
		/* the backup's 7, and the restore's own chain: start, restore, the tag it moved */
		assert_int_equal(count_entries(&x, x.b, "now.log", NULL), 10);
		bfx_done(&x);
	}
}

/* ---------------- a COMMIT whose answer is lost (PostgreSQL) ---------------- */

/* n runtime reports of s1/data on store st from *cur on, as runtime 'a'. */
static void pg_reports(struct cas *cas, struct scone_store *st, char cur[65], int n, char seed)
{
	struct cas_request req;
	char next[65];

	for (int i = 0; i < n; i++) {
		as_request(cas, &req, 'a', true);
		snprintf(next, sizeof(next), "%c%031d", seed, i);
		assert_ok(st->ops->put_volume_tag(st, "s1", "data", cur, next));
		request_done(cas, &req);
		memcpy(cur, next, 65);
	}
}

/*
 * A COMMIT whose answer never arrives (the connection to PostgreSQL cut
 * after the server committed, tests/unit/pg_cut.h): the write fails BUSY
 * though it happened. The writer's next entry then finds its place taken,
 * sees at the chain's head the entry it was unsure of, and goes on from it:
 * no ROLLBACK, the request is handled again, the log and the mirror verify.
 * For a write's entry (the next write finds the place taken) and a span's
 * later version (the refusal's entry, appended on its own, finds it).
 */
TEST(test_lost_commit_answer)
{
	struct pgcut cut;
	struct cas cas;
	struct scone_store *st = NULL;
	struct scone_session_rec r;
	struct cas_request req;
	struct cas_response resp;
	char db[64], dir[64], mirror[160], log[160], cur[65], next[65];
	unsigned long bad = 0;
	uint64_t n = 0;
	FILE *f;

	assert_true(pgfx_start());
	assert_true(pgfx_db_create(db, sizeof(db)));
	assert_true(pgcut_start(&cut));
	snprintf(dir, sizeof(dir), "/tmp/scone-lost-XXXXXX");
	assert_non_null(mkdtemp(dir));
	cas_init(&cas, dir, "unused.db");
	pgcut_url(&cut, db, cas.store_url, sizeof(cas.store_url));
	assert_ok(scone_store_open(cas.store_url, cas.master_key, 0, &st));
	cas.stores[0] = st;
	snprintf(mirror, sizeof(mirror), "%s/mirror.log", dir);
	f = fopen(mirror, "w");
	assert_non_null(f);
	header_of(&g_id, f);
	fclose(f);
	cas.audit_mirror_fd = open(mirror, O_WRONLY | O_APPEND);
	assert_true(cas.audit_mirror_fd >= 0);
	assert_ok(cas_audit_start(&cas, 0));
	rec_of(&r, "s1", "body 1");
	assert_ok(st->ops->create(st, &r));
	tag_of(cur, '1');
	assert_ok(st->ops->put_volume_tag(st, "s1", "data", "", cur));

	/* A write's entry: BUSY, yet s2 is there. */
	atomic_store(&cut.armed, 1);
	rec_of(&r, "s2", "body 2");
	assert_int_equal(st->ops->create(st, &r), SCONE_ERR_BUSY);
	assert_int_equal(atomic_load(&cut.cuts), 1);
	assert_ok(st->ops->count(st, &n));
	assert_int_equal(n, 2);
	/* The next write: its entry's place is taken by s2's; the chain goes on from it, the write is redone.
	 */
	as_request(&cas, &req, 'o', false);
	rec_of(&r, "s3", "body 3");
	assert_int_equal(st->ops->create(st, &r), SCONE_ERR_MISSING);
	resp = (struct cas_response){.status = 503};
	assert_true(cas_audit_end(&cas, &req, &resp)); /* handle it again */
	cas_audit_begin(&cas, &req);
	assert_ok(st->ops->create(st, &r));
	request_done(&cas, &req);
	assert_false(atomic_load(&cas.rolled_back));

	/* A span's later version: BUSY, yet the tag moved; the refusal's entry finds the version. */
	pg_reports(&cas, st, cur, 3, 'b');
	atomic_store(&cut.armed, 1);
	as_request(&cas, &req, 'a', true);
	tag_of(next, '9');
	assert_int_equal(st->ops->put_volume_tag(st, "s1", "data", cur, next), SCONE_ERR_BUSY);
	resp = (struct cas_response){.status = 503};
	assert_false(cas_audit_end(&cas, &req, &resp));
	assert_int_equal(atomic_load(&cut.cuts), 2);
	assert_false(atomic_load(&cas.rolled_back));
	assert_ok(st->ops->get_volume_tag(st, "s1", "data", cur));
	assert_string_equal(cur, next);
	pg_reports(&cas, st, cur, 3, 'c'); /* the runtime goes on from the tag that moved */
	assert_false(atomic_load(&cas.rolled_back));

	/* Every entry in place: the store's log and the mirror verify. */
	snprintf(log, sizeof(log), "%s/export.log", dir);
	export_log(st, &g_id, log);
	assert_ok(check_log(log, &g_id, &bad, NULL));
	cas_audit_stop(&cas, 0);
	assert_ok(check_log(mirror, &g_id, &bad, NULL));
	close(cas.audit_mirror_fd);
	st->ops->close(st);
	cas_fini(&cas);
	pgcut_stop(&cut);
	pgfx_db_drop(db);
	unlink(mirror);
	unlink(log);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_roundtrip),	cmocka_unit_test(test_line_every_byte),
	    cmocka_unit_test(test_line_hostile_names),	cmocka_unit_test(test_log_check),
	    cmocka_unit_test(test_log_forged),		cmocka_unit_test(test_log_extends),
	    cmocka_unit_test(test_restore_plain),	cmocka_unit_test(test_restore_damaged),
	    cmocka_unit_test(test_restore_other_key),	cmocka_unit_test(test_restore_with_tail),
	    cmocka_unit_test(test_restore_gap),		cmocka_unit_test(test_span_one_entry),
	    cmocka_unit_test(test_span_mirror_extends), cmocka_unit_test(test_span_forged),
	    cmocka_unit_test(test_restore_span),	cmocka_unit_test(test_span_entry_altered),
	    cmocka_unit_test(test_lost_commit_answer),
	};

	return cmocka_run_group_tests(tests, setup_ids, free_ids);
}
