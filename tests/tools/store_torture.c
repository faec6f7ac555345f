/*
 * store_torture.c - a writer of the CAS store that can be killed at any
 * moment, and a checker of what it left (for an integration test that
 * kill -9's the writer and then verifies every acknowledged write).
 *
 *   store_torture [--sessions K] DB MASTERKEYHEX N
 *       Open (or create) the store, resume from what it holds, then make N
 *       writes (0 = until killed), round-robin over K sessions named
 *       "torture-000".."torture-<K-1>" (default 16): each write takes a
 *       session from version v to v+1 (create when absent, else update with
 *       the current hash as predecessor). After each write returned OK (and
 *       so is durable) print "ACK <name> <hash hex>" on stdout and flush.
 *       Errors go to stderr. Several runs may append to one ACK file.
 *   store_torture --verify [--max-ahead M] DB MASTERKEYHEX ACKFILE
 *       Open the store (a damaged or unopenable store fails) and check, for
 *       every session named in ACKFILE, that the store holds the last ACKed
 *       version, or the one after it (written, killed before the ACK); at
 *       most M sessions (default 1: one writer, one write in flight) may be
 *       ahead that way, a session absent from ACKFILE (an unacknowledged
 *       create, at version 1) counting as one. Every session's body, hash and secrets
 *       must be exactly those of its version. A truncated last line (the
 *       writer killed mid-print) is ignored. Prints
 *       "VERIFY OK sessions=S acked=A ahead=H" or "VERIFY FAIL <reason>" (also
 *       when the store does not open: damaged, wrong key).
 *
 * The body and secrets of (name, version) are a pure function of both, so
 * any version can be recomputed. Exit status: 0 ok, 1 verification failed,
 * 2 usage, 3 store error while writing.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cas/store.h"
#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/hex.h"

#define MAX_SESSIONS 1000
#define DEFAULT_SESSIONS 16
#define MAX_BODY 8192
#define CREATOR_LABEL "store_torture"

struct sess {
	char name[SCONE_STORE_NAME_MAX + 1];
	uint64_t version; /* in the store (write mode) / in the store (verify) */
	uint8_t hash[SCONE_STORE_HASH_SIZE];
	bool acked; /* verify: an ACK line named it */
	uint8_t ack_hash[SCONE_STORE_HASH_SIZE];
};

struct world {
	struct scone_store *st;
	struct sess s[MAX_SESSIONS];
	unsigned n;
	uint8_t creator[SCONE_STORE_HASH_SIZE];
};

/* ---------------- the content of a version ---------------- */

/* Body of (name, v): a small YAML-ish text padded to a size that varies with v (up to ~6 KB). */
static size_t make_body(char *out, size_t size, const char *name, uint64_t v)
{
	size_t pad = (size_t)((v * 7919u + strlen(name) * 131u) % 6000u);
	int n = snprintf(out, size, "name: %s\nversion: %" PRIu64 "\npadding: ", name, v);

	if (n < 0 || (size_t)n + pad + 2 > size)
		abort(); /* MAX_BODY is sized for this */
	for (size_t i = 0; i < pad; i++)
		out[n + i] = (char)('a' + (v + i) % 26);
	out[n + pad] = '\n';
	out[n + pad + 1] = '\0';
	return (size_t)n + pad + 1;
}

static size_t make_secrets(char *out, size_t size, const char *name, uint64_t v)
{
	int n = snprintf(out, size, "secrets of %s at version %" PRIu64, name, v);

	if (n < 0 || (size_t)n >= size)
		abort();
	return (size_t)n;
}

static void version_hash(const char *name, uint64_t v, uint8_t out[SCONE_STORE_HASH_SIZE])
{
	char body[MAX_BODY];
	size_t n = make_body(body, sizeof(body), name, v);

	scone_sha256(body, n, out);
}

/* Check that rec is exactly some version of its session; give that version. */
static bool rec_version(const struct scone_session_rec *rec, uint64_t *v, char *why, size_t why_size)
{
	char body[MAX_BODY], sec[128];
	const char *p = rec->body ? strstr(rec->body, "\nversion: ") : NULL;
	uint8_t h[SCONE_STORE_HASH_SIZE];
	size_t n;

	if (!p || sscanf(p, "\nversion: %" SCNu64, v) != 1 || *v == 0) {
		snprintf(why, why_size, "%s: body has no version", rec->name);
		return false;
	}
	n = make_body(body, sizeof(body), rec->name, *v);
	if (n != rec->body_len || memcmp(body, rec->body, n) != 0) {
		snprintf(why, why_size, "%s: body is not that of version %" PRIu64, rec->name, *v);
		return false;
	}
	scone_sha256(body, n, h);
	if (memcmp(h, rec->hash, sizeof(h)) != 0) {
		snprintf(why, why_size, "%s: stored hash is not the body's", rec->name);
		return false;
	}
	n = make_secrets(sec, sizeof(sec), rec->name, *v);
	if (n != rec->secrets_len || memcmp(sec, rec->secrets, n) != 0) {
		snprintf(why, why_size, "%s: secrets are not those of version %" PRIu64, rec->name, *v);
		return false;
	}
	return true;
}

/* ---------------- setup ---------------- */

static int open_store(struct world *w, const char *db, const char *key_hex)
{
	uint8_t key[32];
	enum scone_err e = scone_hex_decode(key, sizeof(key), key_hex, "master key");

	if (e != SCONE_ERR_OK) {
		fprintf(stderr, "store_torture: %s\n", scone_err_detail());
		return 2;
	}
	e = scone_store_open_sqlite(db, key, &w->st);
	scone_wipe(key, sizeof(key));
	if (e != SCONE_ERR_OK) {
		fprintf(stderr, "store_torture: open %s: %s: %s\n", db, scone_errname(e), scone_err_detail());
		return 3;
	}
	scone_sha256(CREATOR_LABEL, strlen(CREATOR_LABEL), w->creator);
	return 0;
}

static void name_sessions(struct world *w, unsigned n)
{
	w->n = n;
	for (unsigned i = 0; i < n; i++)
		snprintf(w->s[i].name, sizeof(w->s[i].name), "torture-%03u", i);
}

/* Read session i's current version (0 if absent). Returns false with why on a bad record. */
static bool load(struct world *w, struct sess *s, enum scone_err *err, char *why, size_t why_size)
{
	struct scone_session_rec rec;
	bool ok = true;

	*err = w->st->ops->get(w->st, s->name, &rec);
	s->version = 0;
	if (*err == SCONE_ERR_NOT_FOUND) {
		*err = SCONE_ERR_OK;
		return true;
	}
	if (*err != SCONE_ERR_OK) {
		snprintf(why, why_size, "%s: get: %s: %s", s->name, scone_errname(*err), scone_err_detail());
		return false;
	}
	ok = rec_version(&rec, &s->version, why, why_size);
	memcpy(s->hash, rec.hash, sizeof(s->hash));
	scone_session_rec_clear(&rec);
	return ok;
}

/* ---------------- writer ---------------- */

static enum scone_err write_next(struct world *w, struct sess *s)
{
	static char body[MAX_BODY];
	char sec[128];
	struct scone_session_rec rec;
	enum scone_err e;

	memset(&rec, 0, sizeof(rec));
	memcpy(rec.name, s->name, strlen(s->name) + 1);
	rec.body = body;
	rec.body_len = make_body(body, sizeof(body), s->name, s->version + 1);
	rec.secrets = (uint8_t *)sec;
	rec.secrets_len = make_secrets(sec, sizeof(sec), s->name, s->version + 1);
	scone_sha256(body, rec.body_len, rec.hash);
	memcpy(rec.creator, w->creator, sizeof(rec.creator));
	if (s->version == 0)
		e = w->st->ops->create(w->st, &rec);
	else
		e = w->st->ops->update(w->st, &rec, s->hash);
	if (e == SCONE_ERR_OK) {
		s->version++;
		memcpy(s->hash, rec.hash, sizeof(s->hash));
	}
	return e;
}

static int run_writer(struct world *w, uint64_t writes)
{
	char hex[2 * SCONE_STORE_HASH_SIZE + 1], why[256];
	enum scone_err e;

	for (unsigned i = 0; i < w->n; i++) {
		if (!load(w, &w->s[i], &e, why, sizeof(why))) {
			fprintf(stderr, "store_torture: cannot resume: %s\n", why);
			return 3;
		}
	}
	for (uint64_t k = 0; writes == 0 || k < writes; k++) {
		struct sess *s = &w->s[k % w->n];

		e = write_next(w, s);
		if (e != SCONE_ERR_OK) {
			fprintf(stderr, "store_torture: write %s version %" PRIu64 ": %s: %s\n", s->name,
				s->version + 1, scone_errname(e), scone_err_detail());
			return 3;
		}
		scone_hex_encode(hex, sizeof(hex), s->hash, sizeof(s->hash));
		if (printf("ACK %s %s\n", s->name, hex) < 0 || fflush(stdout) != 0) {
			fprintf(stderr, "store_torture: stdout: %s\n", strerror(errno));
			return 3;
		}
	}
	return 0;
}

/* ---------------- verifier ---------------- */

static struct sess *find(struct world *w, const char *name)
{
	for (unsigned i = 0; i < w->n; i++)
		if (strcmp(w->s[i].name, name) == 0)
			return &w->s[i];
	return NULL;
}

static int __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	printf("VERIFY FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return 1;
}

/* Record the last ACK per session; only complete lines count. */
static int read_acks(struct world *w, const char *path, unsigned *acked)
{
	FILE *f = fopen(path, "r");
	char line[512], name[SCONE_STORE_NAME_MAX + 1], hex[80];

	if (!f) {
		fprintf(stderr, "store_torture: %s: %s\n", path, strerror(errno));
		return 2;
	}
	*acked = 0;
	while (fgets(line, sizeof(line), f)) {
		struct sess *s;
		if (!strchr(line, '\n') || strncmp(line, "ACK ", 4) != 0)
			continue; /* a line cut by the kill, or not ours */
		if (sscanf(line, "ACK %128s %79s", name, hex) != 2 || strncmp(name, "torture-", 8) != 0)
			return fail("malformed ACK line: %s", line);
		s = find(w, name);
		if (!s) {
			if (w->n == MAX_SESSIONS)
				return fail("more than %d sessions at %s", MAX_SESSIONS, name);
			s = &w->s[w->n++];
			snprintf(s->name, sizeof(s->name), "%s", name);
		}
		if (scone_hex_decode(s->ack_hash, sizeof(s->ack_hash), hex, "ACK hash") != SCONE_ERR_OK)
			return fail("bad hash in ACK line: %s", line);
		s->acked = true;
		(*acked)++;
	}
	fclose(f);
	return 0;
}

static int list_add(void *ctx, const char *name, const uint8_t hash[SCONE_STORE_HASH_SIZE])
{
	struct world *w = ctx;

	(void)hash;
	if (find(w, name))
		return 0;
	if (w->n == MAX_SESSIONS)
		return 1;
	snprintf(w->s[w->n].name, sizeof(w->s[w->n].name), "%s", name);
	w->s[w->n].acked = false;
	w->n++;
	return 0;
}

/* Is session s as an ACK promised (same version) or one past it? */
static int check_one(struct world *w, struct sess *s, unsigned *ahead)
{
	char why[256];
	uint8_t prev[SCONE_STORE_HASH_SIZE];
	enum scone_err e;

	if (!load(w, s, &e, why, sizeof(why)))
		return fail("%s", why);
	if (!s->acked) {
		if (s->version > 1)
			return fail("%s: version %" PRIu64 " but never ACKed", s->name, s->version);
		*ahead += s->version == 1;
		return 0;
	}
	if (s->version == 0)
		return fail("%s: ACKed but missing from the store", s->name);
	if (memcmp(s->hash, s->ack_hash, sizeof(prev)) == 0)
		return 0;
	version_hash(s->name, s->version - 1, prev);
	if (s->version > 1 && memcmp(prev, s->ack_hash, sizeof(prev)) == 0) {
		(*ahead)++;
		return 0;
	}
	return fail("%s: the store holds version %" PRIu64
		    ", which is neither the last ACKed write nor the one after it",
		    s->name, s->version);
}

static int run_verify(struct world *w, const char *ackfile, uint64_t max_ahead)
{
	unsigned acked = 0, ahead = 0;
	uint64_t count = 0, present = 0;
	int rc = read_acks(w, ackfile, &acked);
	enum scone_err e;

	if (rc != 0)
		return rc;
	e = w->st->ops->list(w->st, w->creator, list_add, w);
	if (e == SCONE_ERR_OK)
		e = w->st->ops->count(w->st, &count);
	if (e != SCONE_ERR_OK)
		return fail("list: %s: %s", scone_errname(e), scone_err_detail());
	/* From here every session the writer made is in w->s (ACKed or listed). */
	for (unsigned i = 0; i < w->n; i++) {
		rc = check_one(w, &w->s[i], &ahead);
		if (rc != 0)
			return rc;
		present += w->s[i].version > 0;
	}
	if (present != count)
		return fail("the store holds %" PRIu64 " sessions, the writer's are %" PRIu64, count,
			    present);
	if (ahead > max_ahead)
		return fail("%u sessions are past their last ACK (at most %" PRIu64
			    " writes can be in flight)",
			    ahead, max_ahead);
	printf("VERIFY OK sessions=%" PRIu64 " acked=%u ahead=%u\n", count, acked, ahead);
	return 0;
}

/* ---------------- main ---------------- */

static int usage(void)
{
	fprintf(stderr, "usage: store_torture [--sessions K] DB MASTERKEYHEX N\n"
			"       store_torture --verify [--max-ahead M] DB MASTERKEYHEX ACKFILE\n");
	return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && s[0] != '-';
}

int main(int argc, char **argv)
{
	static struct world w;
	uint64_t k = DEFAULT_SESSIONS, n, max_ahead = 1;
	int rc;

	if (argc == 7 && strcmp(argv[1], "--verify") == 0 && strcmp(argv[2], "--max-ahead") == 0) {
		if (!parse_u64(argv[3], &max_ahead))
			return usage();
		argv[3] = argv[1]; /* drop "--max-ahead M", keep "--verify" */
		argv += 2;
		argc -= 2;
	}
	if (argc == 5 && strcmp(argv[1], "--verify") == 0) {
		rc = open_store(&w, argv[2], argv[3]);
		if (rc == 3)
			rc = fail("cannot open the store: %s", scone_err_detail());
		else if (rc == 0)
			rc = run_verify(&w, argv[4], max_ahead);
	} else {
		if (argc == 6 && strcmp(argv[1], "--sessions") == 0) {
			if (!parse_u64(argv[2], &k) || k == 0 || k > MAX_SESSIONS)
				return usage();
			argv += 2;
			argc -= 2;
		}
		if (argc != 4 || !parse_u64(argv[3], &n))
			return usage();
		name_sessions(&w, (unsigned)k);
		rc = open_store(&w, argv[1], argv[2]);
		if (rc == 0)
			rc = run_writer(&w, n);
	}
	if (w.st)
		w.st->ops->close(w.st);
	return rc;
}
