/*
 * audit.c - writing CAS's audit log (format in audit.h).
 *
 * Each worker of each CAS process writes its own chain, named afresh at
 * every start ("<replica>.<random>/w<worker>"): a chain has one writer, so
 * appends never contend, across workers or replicas. The chain begins with
 * a "start" entry. The worker's store handle carries a hook (store.h) so
 * that a session or tag write appends its entry inside the write's
 * transaction; configuration releases and refusals are appended on their
 * own before the response leaves (release: the response is replaced by a
 * 503 if its entry cannot be written, so nothing is released unlogged).
 *
 * Configuration fetches read optimistically (store.h): the store may answer
 * from what this worker read before, and the release's (or refusal's)
 * entry commits only if nothing read has changed since; if something has
 * (STALE), the request is handled once more with fresh reads, so a
 * release is never built on a session or tag changed before it was logged.
 *
 * Rollback: the store appends an entry only if its change counter did not
 * go back below what this worker's handle saw (ROLLBACK: the store was
 * rolled back beneath this process) and the chain's previous entry (prev)
 * is there (MISSING). On ROLLBACK, and on a MISSING entry that a crash
 * cannot explain, CAS refuses every request (503) until an operator
 * restarts it (docs/cas-replicas.md). A crash can explain one loss:
 * releases and refusals are committed without waiting for the disk, so a
 * crash of the database server (or of the machine under SQLite) may lose
 * the last few. When the store still ends at one of this writer's own
 * entries, no older than its last durable one, only such lazy entries are
 * gone: the writer says so and goes on in a new chain whose start entry
 * names the loss.
 * A committed entry is also appended to the mirror file, if one is set, so
 * that the log outlives the database.
 */
#include "cas.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cas/audit.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"

#define LINE_MAX_BYTES SCONE_AUDIT_LINE_MAX
#define SIG_MAX 80
#define RECENT 4096		      /* lazy entries a writer remembers after its last durable one */
#define UNSURE 8		      /* entries without a verdict a writer remembers (lost()) */
#define SPAN_MAX_SEC 60		      /* a span of tag reports in one entry covers at most this long */
#define MIRROR_VERSION_NS 1000000000u /* the mirror gets a span's versions at most this often */

/* ---------------- the line ---------------- */

/* A JSON string of ASCII only: '"' and '\\' escaped, controls and bytes >= 0x80 as \u00XX. */
static enum scone_err put_str(struct scone_wbuf *w, const char *s)
{
	static const char hexd[] = "0123456789abcdef";

	SCONE_TRY(scone_wbuf_u8(w, '"'));
	for (const uint8_t *c = (const uint8_t *)s; *c; c++) {
		if (*c == '"' || *c == '\\') {
			uint8_t e[2] = {'\\', *c};
			SCONE_TRY(scone_wbuf_put(w, e, 2));
		} else if (*c < 0x20 || *c >= 0x7f) {
			uint8_t e[6] = {'\\', 'u', '0', '0', (uint8_t)hexd[*c >> 4], (uint8_t)hexd[*c & 15]};
			SCONE_TRY(scone_wbuf_put(w, e, 6));
		} else {
			SCONE_TRY(scone_wbuf_u8(w, *c));
		}
	}
	return scone_wbuf_u8(w, '"');
}

static enum scone_err put_raw(struct scone_wbuf *w, const char *s)
{
	return scone_wbuf_put(w, s, strlen(s));
}

/* ,"key":"value" (left out when value is NULL or empty). */
static enum scone_err put_key_str(struct scone_wbuf *w, const char *key, const char *value)
{
	if (!value || !*value)
		return SCONE_ERR_OK;
	SCONE_TRY(put_raw(w, ",\""));
	SCONE_TRY(put_raw(w, key));
	SCONE_TRY(put_raw(w, "\":"));
	return put_str(w, value);
}

static enum scone_err put_key_hex(struct scone_wbuf *w, const char *key, const uint8_t *h)
{
	char hex[65];

	if (!h)
		return SCONE_ERR_OK;
	scone_hex_encode(hex, sizeof(hex), h, 32);
	return put_key_str(w, key, hex);
}

static enum scone_err put_key_int(struct scone_wbuf *w, const char *key, long long v)
{
	char num[32];

	snprintf(num, sizeof(num), "%lld", v);
	SCONE_TRY(put_raw(w, ",\""));
	SCONE_TRY(put_raw(w, key));
	SCONE_TRY(put_raw(w, "\":"));
	return put_raw(w, num);
}

/* Everything that is hashed and signed: the line up to and including "prev". */
static enum scone_err put_signed_part(struct scone_wbuf *w, const struct cas_audit_signer *sg,
				      const char *chain, uint64_t seq, const uint8_t prev[32], int64_t t,
				      const struct cas_audit_event *ev)
{
	SCONE_TRY(put_raw(w, "{\"v\":1"));
	SCONE_TRY(put_key_str(w, "chain", chain));
	SCONE_TRY(put_key_int(w, "seq", (long long)seq));
	SCONE_TRY(put_key_int(w, "time", (long long)t));
	SCONE_TRY(put_key_str(w, "replica", sg->replica));
	SCONE_TRY(put_key_str(w, "event", ev->event));
	SCONE_TRY(put_key_str(w, "session", ev->session));
	SCONE_TRY(put_key_str(w, "service", ev->service));
	SCONE_TRY(put_key_str(w, "volume", ev->volume));
	SCONE_TRY(put_key_hex(w, "actor", ev->actor));
	SCONE_TRY(put_key_hex(w, "hash", ev->hash));
	SCONE_TRY(put_key_hex(w, "previous", ev->previous));
	SCONE_TRY(put_key_str(w, "tag", ev->tag));
	SCONE_TRY(put_key_str(w, "previous_tag", ev->previous_tag));
	SCONE_TRY(put_key_str(w, "method", ev->method));
	SCONE_TRY(put_key_str(w, "path", ev->path));
	if (ev->status)
		SCONE_TRY(put_key_int(w, "status", ev->status));
	SCONE_TRY(put_key_str(w, "code", ev->code));
	SCONE_TRY(put_key_str(w, "note", ev->note));
	if (ev->reports > 1)
		SCONE_TRY(put_key_int(w, "reports", (long long)ev->reports));
	if (ev->last)
		SCONE_TRY(put_key_int(w, "last", (long long)ev->last));
	SCONE_TRY(put_key_hex(w, "supersedes", ev->supersedes));
	return put_key_hex(w, "prev", prev);
}

static enum scone_err sign(EVP_PKEY *key, const uint8_t *data, size_t n, uint8_t *sig, size_t *sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestSignInit(md, NULL, scone_sha256_md(), NULL, key) == 1 &&
		 EVP_DigestSign(md, sig, sig_len, data, n) == 1;

	EVP_MD_CTX_free(md);
	return ok ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_CRYPTO, "audit: cannot sign an entry");
}

/* ,"entry":"hex","sig":"base64"} */
static enum scone_err put_seal(struct scone_wbuf *w, const struct cas_audit_signer *sg, uint8_t entry[32])
{
	uint8_t sig[SIG_MAX];
	char b64[2 * SIG_MAX];
	size_t sig_len = sizeof(sig);

	scone_sha256(w->data, w->size, entry);
	SCONE_TRY(sign(sg->key, w->data, w->size, sig, &sig_len));
	SCONE_TRY(put_key_hex(w, "entry", entry));
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)sig_len);
	SCONE_TRY(put_key_str(w, "sig", b64));
	return scone_wbuf_u8(w, '}');
}

enum scone_err cas_audit_format(const struct cas_audit_signer *sg, const char *chain, uint64_t seq,
				const uint8_t prev[32], int64_t t, const struct cas_audit_event *ev,
				struct scone_audit_row *row)
{
	struct scone_wbuf w;
	enum scone_err err;

	memset(row, 0, sizeof(*row));
	if (strlen(chain) > SCONE_AUDIT_CHAIN_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "audit: chain name too long");
	scone_wbuf_init(&w, LINE_MAX_BYTES, 0);
	err = put_signed_part(&w, sg, chain, seq, prev, t ? t : (int64_t)time(NULL), ev);
	if (err == SCONE_ERR_OK)
		err = put_seal(&w, sg, row->hash);
	if (err != SCONE_ERR_OK) {
		scone_wbuf_free(&w);
		return err;
	}
	memcpy(row->chain, chain, strlen(chain) + 1);
	row->seq = seq;
	memcpy(row->prev, prev, 32);
	row->line = (char *)w.data; /* malloc'd by the wbuf */
	row->line_len = w.size;
	return SCONE_ERR_OK;
}

enum scone_err cas_audit_chain_name(const char *replica, int worker, char out[SCONE_AUDIT_CHAIN_MAX + 1])
{
	char name[33];
	uint8_t rnd[4];
	size_t n = 0;

	for (const char *p = replica; *p && n < sizeof(name) - 1; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '-' || c == '_' || c == '.';
		name[n++] = ok ? c : '-';
	}
	name[n] = '\0';
	SCONE_TRY(scone_random(rnd, sizeof(rnd)));
	snprintf(out, SCONE_AUDIT_CHAIN_MAX + 1, "%s.%02x%02x%02x%02x/w%d", n ? name : "cas", rnd[0], rnd[1],
		 rnd[2], rnd[3], worker);
	return SCONE_ERR_OK;
}

/* ---------------- the per-worker writer ---------------- */

static const char *method_name(enum cas_method m)
{
	static const char *const names[] = {[CAS_GET] = "GET",
					    [CAS_POST] = "POST",
					    [CAS_PUT] = "PUT",
					    [CAS_DELETE] = "DELETE",
					    [CAS_OTHER] = "OTHER"};

	return (unsigned)m < sizeof(names) / sizeof(names[0]) && names[m] ? names[m] : "OTHER";
}

struct cas_audit {
	struct cas *cas;
	int worker;
	struct cas_audit_signer sg;
	char chain[SCONE_AUDIT_CHAIN_MAX + 1];
	uint64_t seq;
	uint8_t hash[32];
	uint64_t durable; /* the last entry known to be on disk (a write's, a start) */
	uint8_t durable_hash[32];
	struct {
		uint64_t seq;
		uint8_t hash[32];
	} recent[RECENT]; /* lazy entries after it, by seq % RECENT */
	/*
	 * The span of one runtime's tag reports for one volume that the
	 * chain's last entry holds (audit.h, "Spans"); next: what the entry of
	 * the write in progress makes of it, taken once the write commits.
	 */
	struct span {
		bool open;
		uint64_t seq, reports;
		uint8_t prev[32], actor[32];
		char session[SCONE_STORE_NAME_MAX + 1], volume[SCONE_STORE_VOLUME_MAX + 1];
		char first_tag[65], tag[65];
		int64_t time;
	} span, next;
	char *span_line; /* the text of the span's entry as stored (a version replaces only that text) */
	size_t span_len;
	/*
	 * Entries whose write ended without a verdict (BUSY, IO: the
	 * database's connection broke, possibly after its COMMIT arrived)
	 * since this writer's last committed one. One of them may be in the
	 * store after all, and then the chain continues from it (lost()).
	 * Only the newest UNSURE are kept.
	 */
	struct unsure {
		uint64_t seq;
		uint8_t hash[32];
		bool durable, replaces;
		char *line;
		size_t line_len;
	} unsure[UNSURE];
	int n_unsure;
	/*
	 * A span's newest version not yet in the mirror (held back: at most one
	 * version a second goes there), and when this writer last wrote to it.
	 */
	char *held;
	size_t held_len;
	uint64_t held_seq;
	uint64_t mirrored_ns;
	const struct cas_request *req; /* the request being handled, or NULL */
	bool logged;		       /* its write was audited in the write's transaction */
	bool again;		       /* handling the request a second time, with fresh reads */
	bool rechained;		       /* a write failed on lost lazy entries; a new chain began */
};

/* Append one line to the mirror file (best effort: the store holds it already). */
static void mirror_line(struct cas_audit *a, const char *line, size_t len, uint64_t seq)
{
	struct cas *cas = a->cas;
	char *buf = malloc(len + 1);

	if (!buf)
		return;
	memcpy(buf, line, len);
	buf[len] = '\n';
	pthread_mutex_lock(&cas->audit_mirror_lock);
	if (write(cas->audit_mirror_fd, buf, len + 1) != (ssize_t)(len + 1))
		scone_warn("audit mirror: cannot append entry %llu of chain %s: %s", (unsigned long long)seq,
			   a->chain, strerror(errno));
	pthread_mutex_unlock(&cas->audit_mirror_lock);
	free(buf);
	a->mirrored_ns = cas_server_now_ns();
}

/* Let *dst (malloc'd, *dst_len bytes) hold a copy of line instead; false without memory (unchanged). */
static bool keep_copy(char **dst, size_t *dst_len, const char *line, size_t len)
{
	char *copy = malloc(len ? len : 1);

	if (!copy)
		return false;
	memcpy(copy, line, len);
	free(*dst);
	*dst = copy;
	*dst_len = len;
	return true;
}

/* Write the held-back version, if any (before anything that follows it on the chain). */
static void mirror_held(struct cas_audit *a)
{
	if (!a->held)
		return;
	if (a->cas->audit_mirror_fd >= 0)
		mirror_line(a, a->held, a->held_len, a->held_seq);
	free(a->held);
	a->held = NULL;
}

/*
 * A committed line goes to the mirror file too. A span's later version
 * within MIRROR_VERSION_MS of the last write is held back instead (a
 * newer one replaces it), so that a busy volume's reports do not grow the
 * mirror a line each; the tick, the next entry or the stop writes it.
 */
static void mirror(struct cas_audit *a, const struct scone_audit_row *row)
{
	if (a->cas->audit_mirror_fd < 0)
		return;
	if (row->replaces && cas_server_now_ns() - a->mirrored_ns < MIRROR_VERSION_NS &&
	    keep_copy(&a->held, &a->held_len, row->line, row->line_len)) {
		a->held_seq = row->seq;
		return;
	}
	if (row->replaces) { /* it supersedes the held one */
		free(a->held);
		a->held = NULL;
	}
	mirror_held(a);
	mirror_line(a, row->line, row->line_len, row->seq);
}

void cas_audit_tick(struct cas *cas, int worker, bool force)
{
	struct cas_audit *a = worker >= 0 && worker < CAS_MAX_WORKERS ? cas->audits[worker] : NULL;

	if (a && a->held && (force || cas_server_now_ns() - a->mirrored_ns >= MIRROR_VERSION_NS))
		mirror_held(a);
}

static void advance(struct cas_audit *a, const struct scone_audit_row *row, bool durable)
{
	a->span.open = false; /* another entry: a span ends (hook_settled opens one again) */
	a->seq = row->seq;
	memcpy(a->hash, row->hash, 32);
	if (durable) {
		a->durable = row->seq;
		memcpy(a->durable_hash, row->hash, 32);
	} else {
		a->recent[row->seq % RECENT].seq = row->seq;
		memcpy(a->recent[row->seq % RECENT].hash, row->hash, 32);
	}
	mirror(a, row);
}

/* Forget the entries without a verdict: the chain's state is known again. */
static void unsure_clear(struct cas_audit *a)
{
	for (int i = 0; i < a->n_unsure; i++)
		free(a->unsure[i].line);
	a->n_unsure = 0;
}

/* BUSY (the connection broke) and IO leave a write's outcome open: it may have committed. */
static bool no_verdict(enum scone_err err)
{
	return err == SCONE_ERR_BUSY || err == SCONE_ERR_IO;
}

/* The write of row ended without a verdict: remember it (the oldest goes when full). */
static void unsure_note(struct cas_audit *a, const struct scone_audit_row *row, bool durable)
{
	struct unsure *u;

	if (a->n_unsure == UNSURE) {
		free(a->unsure[0].line);
		memmove(a->unsure, a->unsure + 1, (UNSURE - 1) * sizeof(a->unsure[0]));
		a->n_unsure--;
	}
	u = &a->unsure[a->n_unsure];
	memset(u, 0, sizeof(*u));
	if (!keep_copy(&u->line, &u->line_len, row->line, row->line_len))
		return; /* (without memory it cannot be taken up: a rollback, should it have committed) */
	u->seq = row->seq;
	memcpy(u->hash, row->hash, 32);
	u->durable = durable;
	u->replaces = row->replaces;
	a->n_unsure++;
}

static void rolled_back(struct cas_audit *a)
{
	if (!atomic_exchange(&a->cas->rolled_back, true))
		scone_error(
		    "the store was rolled back beneath this CAS (%s; audit chain %s at entry %llu); refusing "
		    "every request until an operator restarts it (docs/cas-replicas.md)",
		    scone_err_detail(), a->chain, (unsigned long long)a->seq);
}

static enum scone_err append_once(struct cas_audit *a, struct scone_store *st,
				  const struct cas_audit_event *ev, bool durable);

/* Begin a new chain for this writer, its start entry saying why (note). */
static enum scone_err new_chain(struct cas_audit *a, struct scone_store *st, const char *why)
{
	char note[300], fp[65];
	struct cas_audit_event ev = {.event = "start", .note = note};

	SCONE_TRY(cas_audit_chain_name(a->sg.replica, a->worker, a->chain));
	a->span.open = false;
	unsure_clear(a);
	a->seq = a->durable = 0;
	memset(a->hash, 0, sizeof(a->hash));
	memset(a->durable_hash, 0, sizeof(a->durable_hash));
	memset(a->recent, 0, sizeof(a->recent));
	scone_hex_encode(fp, sizeof(fp), a->cas->cert_sha256, 32);
	snprintf(note, sizeof(note), "pid %ld, worker %d, certificate %.16s%s%s", (long)getpid(), a->worker,
		 fp, why ? "; " : "", why ? why : "");
	return append_once(a, st, &ev, true);
}

/* Is the store's head of our chain one of our own entries, no older than the last durable one? */
static bool own_recent(const struct cas_audit *a, uint64_t seq, const uint8_t hash[32])
{
	if (seq < a->durable || seq >= a->seq)
		return false;
	if (seq == a->durable)
		return scone_ct_equal(hash, a->durable_hash, 32);
	return a->recent[seq % RECENT].seq == seq && scone_ct_equal(hash, a->recent[seq % RECENT].hash, 32);
}

/*
 * Entry u, whose write ended without a verdict, is the store's head of our
 * chain: it committed (its COMMIT's answer was lost). Go on from it.
 */
static void adopt(struct cas_audit *a, const struct unsure *u)
{
	struct scone_audit_row row = {
	    .seq = u->seq, .line = u->line, .line_len = u->line_len, .replaces = u->replaces};

	scone_warn(
	    "audit: chain %s: entry %llu, whose write seemed to fail, is in the store: going on from it",
	    a->chain, (unsigned long long)u->seq);
	memcpy(row.hash, u->hash, 32);
	advance(a, &row, u->durable); /* (the mirror takes it too) */
	unsure_clear(a);
}

/*
 * Our previous entry is gone from the store, or the store's chain is ahead
 * of ours. Lazy entries lost in a crash
 * (the store ends at one of ours after the last durable one): a new chain,
 * OK. Anything else: the store was rolled back (ROLLBACK, and this CAS
 * stops serving). The head unreadable: BUSY, decided at the next entry.
 */
static enum scone_err lost(struct cas_audit *a, struct scone_store *st)
{
	char why[SCONE_AUDIT_CHAIN_MAX + 160];
	uint8_t h[32];
	uint64_t seq = 0;
	enum scone_err err = st->ops->audit_head(st, a->chain, &seq, h);

	for (int i = 0; err == SCONE_ERR_OK && i < a->n_unsure; i++)
		if (a->unsure[i].seq == seq && scone_ct_equal(h, a->unsure[i].hash, 32)) {
			adopt(a, &a->unsure[i]);
			return SCONE_ERR_OK;
		}
	if (err == SCONE_ERR_OK && own_recent(a, seq, h)) {
		snprintf(why, sizeof(why),
			 "continues chain %s, whose entries %llu to %llu the database lost (written without "
			 "waiting "
			 "for the disk, then the database server or its machine crashed)",
			 a->chain, (unsigned long long)seq + 1, (unsigned long long)a->seq);
		scone_warn("audit: %s", why);
		return new_chain(a, st, why);
	}
	if (err != SCONE_ERR_OK && err != SCONE_ERR_NOT_FOUND)
		return err;
	rolled_back(a);
	return scone_err_set(SCONE_ERR_ROLLBACK, "audit chain %s lost entries this CAS wrote durably",
			     a->chain);
}

static const char *change_event(enum scone_store_change_kind k)
{
	switch (k) {
	case SCONE_STORE_CREATE:
		return "create";
	case SCONE_STORE_UPDATE:
		return "update";
	case SCONE_STORE_REMOVE:
		return "delete";
	default:
		return "tag";
	}
}

/* Is the request a runtime's tag report (not an owner's accept)? */
static bool runtime_report(const struct cas_request *req)
{
	return req && req->has_peer_key && req->method == CAS_POST &&
	       strcmp(req->path, "/v1/volumes/tag") == 0;
}

static bool fits(const char *s, size_t size)
{
	return s && strlen(s) < size;
}

/*
 * The span a runtime's tag change makes: the chain's last entry's span
 * extended (true: a version replaces that entry), or a new span (false).
 * Only after a durable entry of the same runtime, session and volume whose
 * newest tag this change replaces, within SPAN_MAX_SEC of the span's start.
 */
static bool span_next(struct cas_audit *a, const struct scone_store_change *ch, int64_t now)
{
	const struct span *cur = &a->span;
	struct span *nx = &a->next;
	const char *prev_tag = ch->previous_tag ? ch->previous_tag : "";

	memset(nx, 0, sizeof(*nx));
	if (ch->kind != SCONE_STORE_TAG || !runtime_report(a->req) ||
	    !fits(ch->session, sizeof(nx->session)) || !fits(ch->volume, sizeof(nx->volume)) ||
	    !fits(ch->tag, sizeof(nx->tag)) || !fits(prev_tag, sizeof(nx->first_tag)))
		return false;
	if (cur->open && cur->seq == a->seq && a->seq == a->durable &&
	    memcmp(cur->actor, a->req->peer_spki_sha256, 32) == 0 && strcmp(cur->session, ch->session) == 0 &&
	    strcmp(cur->volume, ch->volume) == 0 && strcmp(cur->tag, prev_tag) == 0 && now >= cur->time &&
	    now - cur->time < SPAN_MAX_SEC) {
		*nx = *cur;
		nx->reports++;
		snprintf(nx->tag, sizeof(nx->tag), "%s", ch->tag);
		return true;
	}
	nx->open = true;
	nx->reports = 1;
	memcpy(nx->actor, a->req->peer_spki_sha256, 32);
	snprintf(nx->session, sizeof(nx->session), "%s", ch->session);
	snprintf(nx->volume, sizeof(nx->volume), "%s", ch->volume);
	snprintf(nx->first_tag, sizeof(nx->first_tag), "%s", prev_tag);
	snprintf(nx->tag, sizeof(nx->tag), "%s", ch->tag);
	nx->time = now;
	return false;
}

/* The store's hook: the entry of a write, inside its transaction. */
static enum scone_err hook_entry(void *ctx, const struct scone_store_change *ch, struct scone_audit_row *row)
{
	struct cas_audit *a = ctx;
	int64_t now = (int64_t)time(NULL);
	bool extend = span_next(a, ch, now);
	struct cas_audit_event ev = {
	    .event = change_event(ch->kind),
	    .session = ch->session,
	    .volume = ch->volume,
	    .actor = a->req && a->req->has_peer_key ? a->req->peer_spki_sha256 : NULL,
	    .hash = ch->kind == SCONE_STORE_TAG ? NULL : ch->hash,
	    .previous = ch->previous,
	    .tag = ch->tag,
	    .previous_tag = ch->kind == SCONE_STORE_TAG ? ch->previous_tag : NULL,
	    .method = a->req ? method_name(a->req->method) : NULL,
	    .path = a->req ? a->req->path : NULL,
	};
	enum scone_err err;

	if (!extend) {
		return cas_audit_format(&a->sg, a->chain, a->seq + 1, a->hash, now, &ev, row);
	}
	/* A later version of the chain's last entry: same seq and prev, the span's first tag and time. */
	ev.previous_tag = a->next.first_tag;
	ev.reports = a->next.reports;
	ev.last = now;
	ev.supersedes = a->hash;
	err = cas_audit_format(&a->sg, a->chain, a->seq, a->span.prev, a->next.time, &ev, row);
	if (err == SCONE_ERR_OK) {
		row->replaces = true;
		memcpy(row->replaced, a->hash, 32);
		row->replaced_line = a->span_line;
		row->replaced_line_len = a->span_len;
	}
	return err;
}

static void hook_settled(void *ctx, const struct scone_audit_row *row, enum scone_err result)
{
	struct cas_audit *a = ctx;

	if (result == SCONE_ERR_OK) {
		advance(a, row, true); /* a write's entry is as durable as the write */
		a->logged = true;
		unsure_clear(a);
		if (a->next.open) { /* a runtime's tag report: its span is the chain's last entry now */
			a->span = a->next;
			a->span.seq = row->seq;
			memcpy(a->span.prev, row->prev, 32);
			/* (without memory for its text the span ends: the next report appends) */
			a->span.open = keep_copy(&a->span_line, &a->span_len, row->line, row->line_len);
		}
	} else if (no_verdict(result)) {
		unsure_note(a, row, true);
	} else if (result == SCONE_ERR_MISSING) {
		/* the write's transaction was rolled back whole: on a new chain it can be made again */
		a->rechained = lost(a, a->cas->stores[a->worker]) == SCONE_ERR_OK;
	} else if (result == SCONE_ERR_ROLLBACK) {
		rolled_back(a);
	}
	a->next.open = false;
}

/* Append ev on its own (not part of a write), in the current chain. */
static enum scone_err append_once(struct cas_audit *a, struct scone_store *st,
				  const struct cas_audit_event *ev, bool durable)
{
	struct scone_audit_row row;
	enum scone_err err;

	SCONE_TRY(cas_audit_format(&a->sg, a->chain, a->seq + 1, a->hash, 0, ev, &row));
	err = st->ops->audit_append(st, &row, durable);
	if (err == SCONE_ERR_OK) {
		advance(a, &row, durable);
		unsure_clear(a);
	} else if (no_verdict(err)) {
		unsure_note(a, &row, durable);
	}
	free(row.line);
	return err;
}

/*
 * Append ev on its own. After lazy entries lost in a crash (a new chain),
 * once more; or, when the entry rests on optimistic reads that the failed
 * attempt no longer guards (redo), STALE: the request is handled again.
 */
static enum scone_err append(struct cas_audit *a, struct scone_store *st, const struct cas_audit_event *ev,
			     bool durable, bool redo)
{
	enum scone_err err = append_once(a, st, ev, durable);

	if (err == SCONE_ERR_ROLLBACK)
		rolled_back(a);
	if (err == SCONE_ERR_MISSING && (err = lost(a, st)) == SCONE_ERR_OK)
		err = redo ? scone_err_set(SCONE_ERR_STALE, "audit: a new chain after lost entries")
			   : append_once(a, st, ev, durable);
	return err;
}

enum scone_err cas_audit_start(struct cas *cas, int worker)
{
	struct scone_store *st = cas->stores[worker];
	struct cas_audit *a = calloc(1, sizeof(*a));
	struct scone_store_audit hook = {hook_entry, hook_settled, a};
	enum scone_err err;

	if (!a)
		return scone_err_set(SCONE_ERR_NOMEM, "audit writer");
	a->cas = cas;
	a->worker = worker;
	a->sg.key = cas->identity.key;
	a->sg.replica = cas->replica;
	err = new_chain(a, st, NULL);
	if (err != SCONE_ERR_OK) {
		free(a);
		return err;
	}
	scone_store_set_audit(st, &hook);
	cas->audits[worker] = a;
	return SCONE_ERR_OK;
}

enum scone_err cas_audit_note(struct cas *cas, int worker, const struct cas_audit_event *ev)
{
	if (worker < 0 || worker >= CAS_MAX_WORKERS || !cas->audits[worker])
		return scone_err_set(SCONE_ERR_INVALID, "audit: worker %d has no chain", worker);
	return append(cas->audits[worker], cas->stores[worker], ev, true, false);
}

void cas_audit_stop(struct cas *cas, int worker)
{
	if (cas->stores[worker])
		scone_store_set_audit(cas->stores[worker], NULL);
	if (cas->audits[worker]) {
		cas_audit_tick(cas, worker, true);
		unsure_clear(cas->audits[worker]);
		free(cas->audits[worker]->span_line);
	}
	free(cas->audits[worker]);
	cas->audits[worker] = NULL;
}

static struct cas_audit *writer(struct cas *cas, const struct cas_request *req)
{
	return req->worker >= 0 && req->worker < CAS_MAX_WORKERS ? cas->audits[req->worker] : NULL;
}

bool cas_audit_refuse_all(struct cas *cas, struct cas_response *resp)
{
	if (!atomic_load(&cas->rolled_back))
		return false;
	cas_respond_error(
	    resp, 503, "ROLLBACK",
	    "this CAS found its store rolled back and serves nothing until an operator restarts it");
	return true;
}

static bool is_fetch(const struct cas_request *req)
{
	return req->method == CAS_POST && strcmp(req->path, "/v1/service/config") == 0;
}

void cas_audit_begin(struct cas *cas, const struct cas_request *req)
{
	struct cas_audit *a = writer(cas, req);
	struct scone_store *st;

	if (!a)
		return;
	a->req = req;
	a->logged = false;
	st = cas->stores[req->worker];
	st->ops->optimistic(st, is_fetch(req) && !a->again);
}

/*
 * The first answer rests on reads that changed, or on a write rolled back for
 * lost lazy audit entries: forget it, count it out, handle the request again.
 */
static bool redo(struct cas *cas, struct cas_audit *a, const struct cas_request *req,
		 struct cas_response *resp)
{
	if (is_fetch(req))
		atomic_fetch_sub(
		    resp->status == 200 ? &cas->counters.config_fetches : &cas->counters.config_denied, 1);
	if (resp->body.data)
		scone_wipe(resp->body.data, resp->body.size);
	resp->body.size = 0;
	resp->status = 200;
	resp->content_type = NULL;
	resp->routine = false;
	a->again = true;
	scone_err_clear();
	return true;
}

/* The error code of a JSON error body ({"error": ..., "code": CODE}); "" if none. */
static void body_code(const struct cas_response *resp, char *out, size_t size)
{
	json_t *j =
	    resp->body.size ? json_loadb((const char *)resp->body.data, resp->body.size, 0, NULL) : NULL;
	const char *c = j ? json_string_value(json_object_get(j, "code")) : NULL;

	snprintf(out, size, "%s", c ? c : "");
	json_decref(j);
}

/* Session and service a runtime's request names (its body), when it parses. */
static void runtime_target(const struct cas_request *req, char *session, char *service, char *volume)
{
	struct cas_config_request cr;
	struct cas_tag_request tr;

	session[0] = service[0] = volume[0] = '\0';
	if (strcmp(req->path, "/v1/service/config") == 0 &&
	    cas_parse_config_request((const char *)req->body, req->body_len, &cr) == SCONE_ERR_OK) {
		snprintf(session, SCONE_SESSION_NAME_MAX + 1, "%s", cr.session);
		snprintf(service, SCONE_SESSION_NAME_MAX + 1, "%s", cr.service);
	} else if (strcmp(req->path, "/v1/volumes/tag") == 0 &&
		   cas_parse_tag_request((const char *)req->body, req->body_len, &tr) == SCONE_ERR_OK) {
		snprintf(session, SCONE_SESSION_NAME_MAX + 1, "%s", tr.session);
		snprintf(service, SCONE_SESSION_NAME_MAX + 1, "%s", tr.service);
		snprintf(volume, SCONE_SESSION_NAME_MAX + 1, "%s", tr.volume);
		scone_wipe(tr.token, sizeof(tr.token));
	}
	scone_err_clear();
}

bool cas_audit_end(struct cas *cas, const struct cas_request *req, struct cas_response *resp)
{
	struct cas_audit *a = writer(cas, req);
	bool again = false;
	char session[SCONE_SESSION_NAME_MAX + 1], service[SCONE_SESSION_NAME_MAX + 1];
	char volume[SCONE_SESSION_NAME_MAX + 1], code[40];
	struct cas_audit_event ev = {0};
	bool release;
	enum scone_err err;

	if (!a)
		return false;
	if (a->rechained && !a->again) { /* lazy entries lost in a database crash: not the client's error */
		a->rechained = false;
		again = redo(cas, a, req, resp);
		goto done;
	}
	a->rechained = false;
	if (strncmp(req->path, "/v1/", 4) != 0 || (a->logged && resp->status < 400))
		goto done;
	release = is_fetch(req) && resp->status == 200;
	if (!release && resp->status < 400)
		goto done;
	runtime_target(req, session, service, volume);
	if (!session[0] && strncmp(req->path, "/v1/sessions/", 13) == 0)
		snprintf(session, sizeof(session), "%s", req->path + 13);
	ev.event = release ? "release" : "refuse";
	ev.session = session;
	ev.service = service;
	ev.volume = volume;
	ev.actor = req->has_peer_key ? req->peer_spki_sha256 : NULL;
	if (!release) {
		body_code(resp, code, sizeof(code));
		ev.method = method_name(req->method);
		ev.path = req->path;
		ev.status = resp->status;
		ev.code = code;
	}
	err = append(a, cas->stores[req->worker], &ev, false, is_fetch(req) && !a->again);
	if (err == SCONE_ERR_STALE && !a->again) {
		again = redo(cas, a, req, resp);
		goto done;
	}
	if (err != SCONE_ERR_OK) {
		scone_error("audit: cannot log the %s of %s%s%s: %s: %s", ev.event,
			    session[0] ? session : req->path, service[0] ? "/" : "", service,
			    scone_strerror(err), scone_err_detail());
		if (release) /* never release what the log does not show: the body (secrets) is wiped here */
			cas_respond_error(resp, 503, "AUDIT",
					  "the audit log cannot be written; nothing was released (retry)");
	}
done:
	if (!again) {
		a->req = NULL;
		a->again = false;
	}
	cas->stores[req->worker]->ops->optimistic(cas->stores[req->worker], false);
	return again;
}
