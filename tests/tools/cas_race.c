/*
 * cas_race.c - many clients against several CAS replicas at once (driven by
 * tests/integration/test_cas_pg.sh): every request goes to one replica,
 * the next to another, and the outcome is checked against what CAS
 * promises across replicas.
 *
 *   cas_race race   --rounds R    rounds in which all clients update one
 *       session from the same predecessor (each on a different replica)
 *       and all create one new name: exactly one 200 and one 201 per round,
 *       the others 409; right after, every replica reads and serves (a
 *       configuration fetch, through its parsed-session cache) the winner.
 *   cas_race stream --seconds S   each client updates its own session in a
 *       loop, and every fourth request a session all clients share; a
 *       request that finds no answer (a replica killed, the database
 *       restarting: network error or 503) is resolved by reading on another
 *       replica and retried. At the end every replica that answers holds
 *       every acknowledged version (or a later one), and the acknowledged
 *       updates of each shared session form one chain.
 *   cas_race tags   --seconds S   each client is a runtime with its own key
 *       (configuration fetched, instance token) reporting new tags of one
 *       volume they all share: the acknowledged reports form one chain
 *       (none lost, no two from the same previous tag) and every replica's
 *       configuration names its end.
 *
 * Common options: --replicas HOST:PORT,HOST:PORT,... --fingerprint HEX
 * --owner-cert F --owner-key F --clients N --prefix NAME. One line goes to
 * stdout: "<MODE> OK ..." or "<MODE> FAIL reason" (exit 1); the first
 * few unexpected answers go to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/tls.h"
#include "policy/policy.h"

#define MAX_REPLICAS 8
#define MAX_CLIENTS 64
#define MAX_TRANSITIONS 200000
#define SHARED 2
#define RESOLVE_SECONDS 60

struct opts {
	const char *mode;
	char host[MAX_REPLICAS][256];
	uint16_t port[MAX_REPLICAS];
	int n_replicas;
	uint8_t pin[32];
	const char *owner_cert, *owner_key;
	int clients, rounds;
	double seconds;
	const char *prefix;
};

static struct opts o;
static struct scone_identity owner;
static atomic_int failures, shown;
static char fail_reason[512];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void __attribute__((format(printf, 1, 2))) failf(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&lock);
	if (atomic_fetch_add(&failures, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(fail_reason, sizeof(fail_reason), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&lock);
}

static void __attribute__((format(printf, 1, 2))) note(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&shown, 1) >= 12)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---------------- one client's connections ---------------- */

struct client {
	int id;
	struct scone_identity *id_key; /* owner, or the runtime's own key */
	struct scone_identity own;     /* a runtime's key */
	struct scone_https_conn *conn[MAX_REPLICAS];
	unsigned seed;
};

/* status of a request (0: no answer: network error); body copied to out (may be NULL). */
static int request(struct client *c, int r, const char *method, const char *path, const char *ct,
		   const char *body, json_t **out)
{
	struct scone_https_opts ho = {.host = o.host[r],
				      .port = o.port[r],
				      .pin_sha256 = o.pin,
				      .client = c->id_key,
				      .timeout_ms = 10000};
	struct scone_https_response resp = {0};
	int status;

	if (out)
		*out = NULL;
	if (!c->conn[r] && scone_https_conn_new(&ho, &c->conn[r]) != SCONE_ERR_OK)
		return 0;
	if (scone_https_conn_request(c->conn[r], method, path, ct, body, body ? strlen(body) : 0, &resp) !=
	    SCONE_ERR_OK) {
		scone_https_conn_free(c->conn[r]);
		c->conn[r] = NULL;
		return 0;
	}
	status = resp.status;
	if (out && resp.body)
		*out = json_loadb(resp.body, resp.len, 0, NULL);
	scone_https_response_free(&resp);
	return status;
}

static void client_free(struct client *c)
{
	for (int r = 0; r < MAX_REPLICAS; r++)
		scone_https_conn_free(c->conn[r]);
	if (c->id_key == &c->own)
		scone_identity_free(&c->own);
}

/* ---------------- sessions ---------------- */

/* The session document of version v (pred: hex predecessor or NULL) and its hash. */
static char *session_doc(const char *name, const char *pred, long v, char hash[65])
{
	char *doc = NULL;
	struct scone_session *s = NULL;
	int n = asprintf(&doc,
			 "name: %s\nversion: \"0.3\"\n%s%s%s"
			 "security:\n  attestation:\n    mode: none\n"
			 "services:\n  - name: app\n    image_name: img\n    command: /bin/true v%ld\n"
			 "    environment:\n      PW: $$SCONE::pw$$\n"
			 "images:\n  - name: img\n    volumes:\n      - name: data\n        path: /data\n"
			 "volumes:\n  - name: data\n"
			 "secrets:\n  - name: pw\n    kind: ascii\n    size: 16\n",
			 name, pred ? "predecessor: " : "", pred ? pred : "", pred ? "\n" : "", v);

	if (n < 0 || scone_session_parse(doc, strlen(doc), &s, NULL) != SCONE_ERR_OK) {
		fprintf(stderr, "cas_race: session document does not parse: %s\n", scone_err_detail());
		exit(2);
	}
	scone_session_hash_hex(s->hash, hash);
	scone_session_free(s);
	return doc;
}

/* The hash replica r holds for name: 1 (hash), 0 (no answer), -1 (404). */
static int read_hash(struct client *c, int r, const char *name, char hash[65])
{
	char path[300];
	json_t *j = NULL;
	int st;

	snprintf(path, sizeof(path), "/v1/sessions/%s", name);
	st = request(c, r, "GET", path, NULL, NULL, &j);
	if (st == 200 && json_string_value(json_object_get(j, "hash")))
		snprintf(hash, 65, "%s", json_string_value(json_object_get(j, "hash")));
	json_decref(j);
	if (st == 404)
		return -1;
	return st == 200 ? 1 : 0;
}

/* Any replica's answer, retrying for up to RESOLVE_SECONDS (replicas die, the database restarts). */
static int read_hash_any(struct client *c, int start, const char *name, char hash[65])
{
	double until = now() + RESOLVE_SECONDS;

	for (int i = start;; i++) {
		int rc = read_hash(c, i % o.n_replicas, name, hash);
		if (rc != 0)
			return rc;
		if (now() > until)
			return 0;
		pause_ms(50);
	}
}

static int create_session(struct client *c, int r, const char *name, char hash[65])
{
	char *doc = session_doc(name, NULL, 0, hash);
	int st = request(c, r, "POST", "/v1/sessions", "application/yaml", doc, NULL);

	free(doc);
	return st;
}

static int update_session(struct client *c, int r, const char *name, const char *pred, long v, char hash[65])
{
	char path[300];
	char *doc = session_doc(name, pred, v, hash);
	int st;

	snprintf(path, sizeof(path), "/v1/sessions/%s", name);
	st = request(c, r, "PUT", path, "application/yaml", doc, NULL);
	free(doc);
	return st;
}

/* Create name (once, by whoever comes first; 409 is fine), and learn its hash. */
static bool ensure_session(struct client *c, const char *name, char hash[65])
{
	int st = create_session(c, 0, name, hash);

	if (st != 201 && st != 409) {
		failf("create %s: HTTP %d", name, st);
		return false;
	}
	return read_hash_any(c, 0, name, hash) == 1;
}

/* ---------------- race ---------------- */

struct race_state {
	pthread_barrier_t bar;
	char pred[65];
	atomic_int wins, conflicts, others, cwins, cconflicts, cothers;
	char winner[65];
};

static struct race_state rs;

/* Every replica reads, and serves through its cache, the winner's hash. */
static void race_check(struct client *c, int round)
{
	char name[200], got[65], req[300];
	json_t *j = NULL;

	snprintf(name, sizeof(name), "%s-race", o.prefix);
	snprintf(req, sizeof(req), "{\"config_id\":\"%s/app\",\"evidence\":{\"type\":\"none\"}}", name);
	for (int r = 0; r < o.n_replicas; r++) {
		if (read_hash(c, r, name, got) != 1 || strcmp(got, rs.winner) != 0)
			failf("round %d: replica %d reads %.16s, not the acknowledged %.16s", round, r, got,
			      rs.winner);
		if (request(c, r, "POST", "/v1/service/config", "application/json", req, &j) != 200 ||
		    !json_string_value(json_object_get(j, "session_hash")) ||
		    strcmp(json_string_value(json_object_get(j, "session_hash")), rs.winner) != 0)
			failf("round %d: replica %d serves a configuration not of the acknowledged session",
			      round, r);
		json_decref(j);
	}
}

static void race_round(struct client *c, int round)
{
	char name[200], cname[200], hash[65];
	int r = (c->id + round) % o.n_replicas, st;

	snprintf(name, sizeof(name), "%s-race", o.prefix);
	snprintf(cname, sizeof(cname), "%s-new-%d", o.prefix, round);
	pthread_barrier_wait(&rs.bar); /* rs.pred is set */
	st = update_session(c, r, name, rs.pred, round * 1000 + c->id + 1, hash);
	if (st == 200) {
		atomic_fetch_add(&rs.wins, 1);
		pthread_mutex_lock(&lock);
		snprintf(rs.winner, sizeof(rs.winner), "%s", hash);
		pthread_mutex_unlock(&lock);
	} else if (st == 409) {
		atomic_fetch_add(&rs.conflicts, 1);
	} else {
		atomic_fetch_add(&rs.others, 1);
		note("round %d client %d: update answered %d", round, c->id, st);
	}
	st = create_session(c, (r + 1) % o.n_replicas, cname, hash);
	if (st == 201)
		atomic_fetch_add(&rs.cwins, 1);
	else if (st == 409)
		atomic_fetch_add(&rs.cconflicts, 1);
	else
		atomic_fetch_add(&rs.cothers, 1);
	pthread_barrier_wait(&rs.bar); /* the round is over */
}

static void *race_main(void *arg)
{
	struct client *c = arg;
	char name[200];

	snprintf(name, sizeof(name), "%s-race", o.prefix);
	for (int round = 0; round < o.rounds; round++) {
		if (c->id == 0 && read_hash_any(c, round, name, rs.pred) != 1)
			failf("round %d: cannot read %s", round, name);
		race_round(c, round);
		if (c->id == 0)
			race_check(c, round);
		pthread_barrier_wait(&rs.bar);
	}
	return NULL;
}

static int run_race(struct client *cl)
{
	pthread_t t[MAX_CLIENTS];
	char name[200], h[65];
	int expect = o.rounds;

	snprintf(name, sizeof(name), "%s-race", o.prefix);
	if (!ensure_session(&cl[0], name, h))
		goto out;
	pthread_barrier_init(&rs.bar, NULL, (unsigned)o.clients);
	for (int i = 0; i < o.clients; i++)
		pthread_create(&t[i], NULL, race_main, &cl[i]);
	for (int i = 0; i < o.clients; i++)
		pthread_join(t[i], NULL);
	if (rs.wins != expect || rs.conflicts != expect * (o.clients - 1) || rs.others)
		failf("updates: %d won, %d conflicts, %d other answers in %d rounds of %d clients", rs.wins,
		      rs.conflicts, rs.others, expect, o.clients);
	if (rs.cwins != expect || rs.cconflicts != expect * (o.clients - 1) || rs.cothers)
		failf("creates: %d made, %d conflicts, %d other answers", rs.cwins, rs.cconflicts,
		      rs.cothers);
out:
	if (failures)
		printf("RACE FAIL %s\n", fail_reason);
	else
		printf("RACE OK rounds=%d clients=%d replicas=%d wins=%d conflicts=%d creates=%d\n", o.rounds,
		       o.clients, o.n_replicas, rs.wins, rs.conflicts, rs.cwins);
	return failures ? 1 : 0;
}

/* ---------------- transitions (shared sessions, tags) ---------------- */

struct transition {
	char from[65], to[65];
	bool acked;
};

struct chain_log {
	struct transition *v;
	atomic_int n;
	atomic_int acked, maybe, conflicts;
};

static void record(struct chain_log *l, const char *from, const char *to, bool acked)
{
	int i = atomic_fetch_add(&l->n, 1);

	if (i >= MAX_TRANSITIONS) {
		failf("more than %d transitions", MAX_TRANSITIONS);
		return;
	}
	snprintf(l->v[i].from, 65, "%s", from);
	snprintf(l->v[i].to, 65, "%s", to);
	l->v[i].acked = acked;
	atomic_fetch_add(acked ? &l->acked : &l->maybe, 1);
}

/*
 * Is there a walk from cur to final over unused transitions that passes
 * every acknowledged one? From a state with an acknowledged change that
 * change is the next (states never repeat: tags are random, documents
 * carry a fresh version); otherwise each change of unknown outcome from it
 * is tried in turn (several clients may have sent one from the same state
 * while the answers were lost, at most one of them happened).
 */
static bool walk(struct chain_log *l, int n, bool *used, const char *cur, const char *final, int passed)
{
	int acked = -1;

	if (strcmp(cur, final) == 0 && passed == l->acked)
		return true;
	for (int i = 0; i < n && acked < 0; i++)
		if (!used[i] && l->v[i].acked && strcmp(l->v[i].from, cur) == 0)
			acked = i;
	for (int i = 0; i < n; i++) {
		bool ok;
		if (used[i] || strcmp(l->v[i].from, cur) != 0 || (acked >= 0 && i != acked))
			continue;
		used[i] = true;
		ok = walk(l, n, used, l->v[i].to, final, passed + l->v[i].acked);
		used[i] = false;
		if (ok || acked >= 0)
			return ok;
	}
	return false;
}

/*
 * The acknowledged transitions must form one chain from start: no two
 * acknowledged ones leave one state, and a walk from start passes every
 * acknowledged transition and ends where the replicas are.
 */
static void check_chain(const char *what, struct chain_log *l, const char *start, const char *final)
{
	int n = l->n < MAX_TRANSITIONS ? l->n : MAX_TRANSITIONS;
	bool *used = calloc((size_t)n + 1, 1);

	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (l->v[i].acked && l->v[j].acked && strcmp(l->v[i].from, l->v[j].from) == 0)
				failf("%s: two acknowledged changes from one state %.16s (a lost update)",
				      what, l->v[i].from);
	if (!failures && !walk(l, n, used, start, final, 0))
		failf("%s: no chain of changes from the start passes all %d acknowledged ones and ends at "
		      "%.16s, where "
		      "the replicas are (an acknowledged change was lost)",
		      what, (int)l->acked, final);
	free(used);
}

/* ---------------- stream ---------------- */

struct stream_state {
	char start[SHARED][65];
	struct chain_log shared[SHARED];
	long version[MAX_CLIENTS], acked[MAX_CLIENTS];
	char hash[MAX_CLIENTS][65]; /* each client's session as it must be: acknowledged, or applied after */
	atomic_int acks, conflicts, retries;
	double until;
};

static struct stream_state ss;

/* After no answer: did the write happen? 1 yes, 0 no, -1 unknowable (fail). */
static int resolve(struct client *c, int r, const char *name, const char *want, const char *before)
{
	char got[65] = "";

	atomic_fetch_add(&ss.retries, 1);
	if (read_hash_any(c, r + 1, name, got) != 1)
		return -1;
	if (strcmp(got, want) == 0)
		return 1;
	return before && strcmp(got, before) == 0 ? 0 : 2; /* 2: someone else moved it (shared) */
}

static void own_step(struct client *c, int r, const char *name, char cur[65])
{
	char hash[65];
	long v = ss.version[c->id] + 1;
	int st = update_session(c, r, name, cur, v, hash), rc;

	if (st == 200) {
		ss.version[c->id] = ss.acked[c->id] = v;
		snprintf(cur, 65, "%s", hash);
		snprintf(ss.hash[c->id], 65, "%s", hash);
		atomic_fetch_add(&ss.acks, 1);
		return;
	}
	if (st != 0 && st != 503 && st != 409) {
		failf("client %d: update of its own session answered %d", c->id, st);
		return;
	}
	rc = resolve(c, r, name, hash, cur);
	if (rc == 1) { /* it happened, unacknowledged */
		ss.version[c->id] = v;
		snprintf(cur, 65, "%s", hash);
		snprintf(ss.hash[c->id], 65, "%s", hash);
	} else if (rc != 0) {
		failf("client %d: its session is neither before nor after its own update", c->id);
	}
}

static void shared_step(struct client *c, int r, int k)
{
	char name[200], pred[65], hash[65];
	int st, rc;

	snprintf(name, sizeof(name), "%s-shared-%d", o.prefix, k);
	if (read_hash_any(c, r, name, pred) != 1) {
		failf("client %d: cannot read %s", c->id, name);
		return;
	}
	st = update_session(c, r, name, pred, (long)(rand_r(&c->seed)) * 64 + c->id, hash);
	if (st == 200) {
		record(&ss.shared[k], pred, hash, true);
	} else if (st == 409) {
		atomic_fetch_add(&ss.shared[k].conflicts, 1);
	} else if (st == 0 || st == 503) {
		/*
		 * Unknown outcome: kept as a change that may have happened, whatever a read shows now
		 * (a commit sent by a replica that then died can land after that read).
		 */
		record(&ss.shared[k], pred, hash, false);
		rc = resolve(c, r, name, hash, pred);
		if (rc < 0)
			failf("client %d: %s unreadable", c->id, name);
	} else {
		failf("client %d: update of %s answered %d", c->id, name, st);
	}
}

static void *stream_main(void *arg)
{
	struct client *c = arg;
	char name[200], cur[65];

	snprintf(name, sizeof(name), "%s-s%d", o.prefix, c->id);
	if (!ensure_session(c, name, cur))
		return NULL;
	snprintf(ss.hash[c->id], 65, "%s", cur);
	for (int i = 0; now() < ss.until && !failures; i++) {
		int r = (c->id + i) % o.n_replicas;
		if (i % 4 == 3)
			shared_step(c, r, (c->id + i) % SHARED);
		else
			own_step(c, r, name, cur);
	}
	return NULL;
}

/* What every replica that answers holds for name: the same hash, into out. */
static bool replicas_agree(struct client *c, const char *name, char out[65])
{
	char got[65];
	int answered = 0;

	out[0] = '\0';
	for (int r = 0; r < o.n_replicas; r++) {
		if (read_hash(c, r, name, got) != 1)
			continue;
		if (answered++ && strcmp(got, out) != 0) {
			failf("%s: replicas disagree (%.16s, %.16s)", name, out, got);
			return false;
		}
		snprintf(out, 65, "%s", got);
	}
	if (!answered)
		failf("%s: no replica answers", name);
	return answered > 0;
}

static void stream_verify(struct client *cl)
{
	char name[200], got[65];

	for (int i = 0; i < o.clients; i++) {
		snprintf(name, sizeof(name), "%s-s%d", o.prefix, i);
		if (!replicas_agree(&cl[0], name, got))
			continue;
		if (strcmp(got, ss.hash[i]) != 0)
			failf("%s: replicas hold %.16s, not version %ld (acknowledged %ld): an acknowledged "
			      "write was lost",
			      name, got, ss.version[i], ss.acked[i]);
	}
	for (int k = 0; k < SHARED; k++) {
		snprintf(name, sizeof(name), "%s-shared-%d", o.prefix, k);
		if (replicas_agree(&cl[0], name, got))
			check_chain(name, &ss.shared[k], ss.start[k], got);
	}
}

static int run_stream(struct client *cl)
{
	pthread_t t[MAX_CLIENTS];
	char name[200];
	int shared_acks = 0, shared_conf = 0;

	for (int k = 0; k < SHARED; k++) {
		snprintf(name, sizeof(name), "%s-shared-%d", o.prefix, k);
		ss.shared[k].v = calloc(MAX_TRANSITIONS, sizeof(struct transition));
		if (!ensure_session(&cl[0], name, ss.start[k]))
			goto out;
	}
	ss.until = now() + o.seconds;
	for (int i = 0; i < o.clients; i++)
		pthread_create(&t[i], NULL, stream_main, &cl[i]);
	for (int i = 0; i < o.clients; i++)
		pthread_join(t[i], NULL);
	if (!failures)
		stream_verify(cl);
	for (int k = 0; k < SHARED; k++) {
		shared_acks += ss.shared[k].acked;
		shared_conf += ss.shared[k].conflicts;
	}
out:
	if (failures)
		printf("STREAM FAIL %s\n", fail_reason);
	else
		printf("STREAM OK clients=%d replicas=%d acked=%d shared_acked=%d shared_conflicts=%d "
		       "retried=%d\n",
		       o.clients, o.n_replicas, ss.acks, shared_acks, shared_conf, ss.retries);
	for (int k = 0; k < SHARED; k++)
		free(ss.shared[k].v);
	return failures ? 1 : 0;
}

/* ---------------- tags ---------------- */

struct tag_state {
	struct chain_log log;
	char start[65];
	double until;
};

static struct tag_state ts;

/* Fetch the configuration on replica r: the volume's tag and the instance token. */
static int fetch(struct client *c, int r, const char *session, char tag[65], char token[65])
{
	char req[300];
	json_t *j = NULL, *vol;
	int st;

	snprintf(req, sizeof(req), "{\"config_id\":\"%s/app\",\"evidence\":{\"type\":\"none\"}}", session);
	st = request(c, r, "POST", "/v1/service/config", "application/json", req, &j);
	vol = json_array_get(json_object_get(j, "volumes"), 0);
	if (st == 200 && vol && json_string_value(json_object_get(vol, "tag")) &&
	    json_string_value(json_object_get(j, "instance_token"))) {
		snprintf(tag, 65, "%s", json_string_value(json_object_get(vol, "tag")));
		snprintf(token, 65, "%s", json_string_value(json_object_get(j, "instance_token")));
	} else if (st == 200) {
		st = -1;
	}
	json_decref(j);
	return st;
}

static int fetch_any(struct client *c, int start, const char *session, char tag[65], char token[65])
{
	double until = now() + RESOLVE_SECONDS;

	for (int i = start;; i++) {
		int st = fetch(c, i % o.n_replicas, session, tag, token);
		if (st == 200)
			return 200;
		if (st != 0 && st != 503)
			return st;
		if (now() > until)
			return 0;
		pause_ms(50);
	}
}

static void *tags_main(void *arg)
{
	struct client *c = arg;
	char session[200], cur[65], token[65], next[65], body[600];
	uint8_t rnd[16];

	snprintf(session, sizeof(session), "%s-tags", o.prefix);
	if (fetch_any(c, c->id, session, cur, token) != 200) {
		failf("runtime %d: no configuration", c->id);
		return NULL;
	}
	for (int i = 0; now() < ts.until && !failures; i++) {
		int r = (c->id + i) % o.n_replicas, st;
		if (scone_random(rnd, sizeof(rnd)) != SCONE_ERR_OK)
			abort();
		scone_hex_encode(next, sizeof(next), rnd, sizeof(rnd));
		snprintf(
		    body, sizeof(body),
		    "{\"config_id\":\"%s/app\",\"volume\":\"data\",\"previous_tag\":\"%s\",\"tag\":\"%s\","
		    "\"instance_token\":\"%s\"}",
		    session, cur, next, token);
		st = request(c, r, "POST", "/v1/volumes/tag", "application/json", body, NULL);
		if (st == 200) {
			record(&ts.log, cur, next, true);
			snprintf(cur, sizeof(cur), "%s", next);
			continue;
		}
		if (st == 409)
			atomic_fetch_add(&ts.log.conflicts, 1);
		else if (st == 0 || st == 503)
			record(&ts.log, cur, next, false); /* maybe: the walk decides */
		else
			failf("runtime %d: tag report answered %d", c->id, st);
		if (fetch_any(c, r + 1, session, cur, token) != 200)
			failf("runtime %d: no configuration after a refused report", c->id);
	}
	return NULL;
}

static int run_tags(struct client *cl)
{
	pthread_t t[MAX_CLIENTS];
	char session[200], h[65], token[65], final[65] = "";
	int answered = 0;

	ts.log.v = calloc(MAX_TRANSITIONS, sizeof(struct transition));
	snprintf(session, sizeof(session), "%s-tags", o.prefix);
	if (!ensure_session(&cl[0], session, h))
		goto out;
	for (int i = 0; i < o.clients; i++) {
		if (scone_identity_new("cas-race-runtime", 1, &cl[i].own) != SCONE_ERR_OK)
			abort();
		cl[i].id_key = &cl[i].own;
		for (int r = 0; r < MAX_REPLICAS; r++) { /* connections made as the owner go */
			scone_https_conn_free(cl[i].conn[r]);
			cl[i].conn[r] = NULL;
		}
	}
	if (fetch_any(&cl[0], 0, session, ts.start, token) != 200) {
		failf("no configuration of %s", session);
		goto out;
	}
	ts.until = now() + o.seconds;
	for (int i = 0; i < o.clients; i++)
		pthread_create(&t[i], NULL, tags_main, &cl[i]);
	for (int i = 0; i < o.clients; i++)
		pthread_join(t[i], NULL);
	for (int r = 0; r < o.n_replicas && !failures; r++) {
		char tag[65];
		if (fetch(&cl[0], r, session, tag, token) != 200)
			continue;
		if (answered++ && strcmp(tag, final) != 0)
			failf("replicas name different tags (%.16s, %.16s)", final, tag);
		snprintf(final, sizeof(final), "%s", tag);
	}
	if (!failures && !answered)
		failf("no replica answers");
	if (!failures)
		check_chain("volume tag", &ts.log, ts.start, final);
out:
	if (failures)
		printf("TAGS FAIL %s\n", fail_reason);
	else
		printf("TAGS OK clients=%d replicas=%d acked=%d conflicts=%d unknown=%d\n", o.clients,
		       o.n_replicas, (int)ts.log.acked, (int)ts.log.conflicts, (int)ts.log.maybe);
	free(ts.log.v);
	return failures ? 1 : 0;
}

/* ---------------- main ---------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: cas_race race|stream|tags --replicas H:P,H:P --fingerprint HEX --owner-cert F "
		"--owner-key F [--clients N] [--rounds R] [--seconds S] [--prefix P]\n");
	exit(2);
}

static void parse_replicas(char *list)
{
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o.n_replicas == MAX_REPLICAS ||
		    scone_hostport_parse(tok, 0, o.host[o.n_replicas], sizeof(o.host[0]),
					 &o.port[o.n_replicas]))
			usage();
		o.n_replicas++;
	}
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {{"replicas", required_argument, NULL, 'r'},
					   {"fingerprint", required_argument, NULL, 'f'},
					   {"owner-cert", required_argument, NULL, 'c'},
					   {"owner-key", required_argument, NULL, 'k'},
					   {"clients", required_argument, NULL, 'n'},
					   {"rounds", required_argument, NULL, 'R'},
					   {"seconds", required_argument, NULL, 's'},
					   {"prefix", required_argument, NULL, 'p'},
					   {NULL, 0, NULL, 0}};
	int ch;

	if (argc < 2)
		usage();
	o.mode = argv[1];
	o.clients = 16;
	o.rounds = 10;
	o.seconds = 5;
	o.prefix = "race";
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (ch == 'r')
			parse_replicas(optarg);
		else if (ch == 'f' && scone_fingerprint_parse(optarg, o.pin) == SCONE_ERR_OK)
			continue;
		else if (ch == 'c')
			o.owner_cert = optarg;
		else if (ch == 'k')
			o.owner_key = optarg;
		else if (ch == 'n')
			o.clients = (int)strtol(optarg, NULL, 10);
		else if (ch == 'R')
			o.rounds = (int)strtol(optarg, NULL, 10);
		else if (ch == 's')
			o.seconds = strtod(optarg, NULL);
		else if (ch == 'p')
			o.prefix = optarg;
		else
			usage();
	}
	if (!o.n_replicas || !o.owner_cert || !o.owner_key || o.clients < 1 || o.clients > MAX_CLIENTS)
		usage();
}

int main(int argc, char **argv)
{
	static struct client cl[MAX_CLIENTS];
	int rc;

	signal(SIGPIPE, SIG_IGN); /* a replica killed mid-request must not kill the client */
	parse(argc, argv);
	if (scone_identity_load(o.owner_key, o.owner_cert, &owner) != SCONE_ERR_OK) {
		fprintf(stderr, "cas_race: owner identity: %s\n", scone_err_detail());
		return 2;
	}
	for (int i = 0; i < o.clients; i++) {
		cl[i].id = i;
		cl[i].id_key = &owner;
		cl[i].seed = (unsigned)(i * 7919 + 17);
	}
	if (strcmp(o.mode, "race") == 0)
		rc = run_race(cl);
	else if (strcmp(o.mode, "stream") == 0)
		rc = run_stream(cl);
	else if (strcmp(o.mode, "tags") == 0)
		rc = run_tags(cl);
	else
		usage();
	for (int i = 0; i < o.clients; i++) {
		if (cl[i].id_key == &owner)
			cl[i].id_key = NULL;
		client_free(&cl[i]);
	}
	scone_identity_free(&owner);
	return rc;
}
