/*
 * test_sessions_scone.c - unit tests for SCONE's session language 0.3.x in
 * src/policy (issue 12), below what the session corpus (tests/sessions)
 * sees through the CLI: the model's fields for versions, host variables
 * and san entries, warnings and differences as notes, access rules as
 * scone_access_allows evaluates them, references CAS resolves
 * (scone_session_parse_ex with a resolver), config-fragment splicing, the
 * template variables of `session create -e`, the old reference forms, the
 * byte-order mark, the unread-key bookkeeping and the service access
 * token's proofs.
 */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/token.h"
#include "policy/policy.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

#define MR "9f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
#define K1 "e476cede2a8ba05b0c8c295cce14dc13b89e30f52887ce094f877c82144c0c44"
#define K2 "35ed99f5d9f68b78284eee7299022a909a56989f65761516ce6b5ed56f306e2e"

/* ---- helpers ---- */

static void print_diag(const struct scone_policy_diag *d)
{
	for (size_t i = 0; i < d->count; i++) {
		char line[512];
		scone_policy_error_format(&d->errors[i], line, sizeof(line));
		print_error("  %s\n", line);
	}
}

/* Parse text (with opts when given), which must pass; *d keeps the notes. */
static struct scone_session *parse_ok_ex(const char *text, const struct scone_parse_opts *opts,
					 struct scone_policy_diag *d)
{
	struct scone_session *s = NULL;
	enum scone_err e = opts ? scone_session_parse_ex(text, strlen(text), opts, &s, d)
				: scone_session_parse(text, strlen(text), &s, d);

	if (e != SCONE_ERR_OK) {
		print_error("unexpected failure:\n");
		print_diag(d);
	}
	assert_int_equal(e, SCONE_ERR_OK);
	assert_int_equal(d->count, 0);
	assert_int_equal(d->unread, 0);
	assert_non_null(s);
	return s;
}

static struct scone_session *parse_ok(const char *text)
{
	struct scone_policy_diag d;
	struct scone_session *s = parse_ok_ex(text, NULL, &d);

	scone_policy_diag_free(&d);
	return s;
}

/* text must fail; some error at line:col must contain want. */
static void expect_error_ex(const char *text, const struct scone_parse_opts *opts, int line, int col,
			    const char *want)
{
	struct scone_session *s = NULL;
	struct scone_policy_diag d;
	enum scone_err e = opts ? scone_session_parse_ex(text, strlen(text), opts, &s, &d)
				: scone_session_parse(text, strlen(text), &s, &d);
	bool found = false;

	assert_int_equal(e, SCONE_ERR_POLICY);
	assert_null(s);
	assert_int_equal(d.unread, 0);
	for (size_t i = 0; i < d.count; i++)
		found = found || (d.errors[i].pos.line == line && d.errors[i].pos.column == col &&
				  strstr(d.errors[i].message, want));
	if (!found) {
		print_error("expected an error at %d:%d containing '%s', got:\n", line, col, want);
		print_diag(&d);
	}
	assert_true(found);
	scone_policy_diag_free(&d);
}

static void expect_error(const char *text, int line, int col, const char *want)
{
	expect_error_ex(text, NULL, line, col, want);
}

/* The number of notes of kind whose message contains want. */
static size_t notes_with(const struct scone_policy_diag *d, enum scone_note_kind kind, const char *want)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n_notes; i++)
		n += d->notes[i].kind == kind && strstr(d->notes[i].e.message, want);
	return n;
}

static char *session_text(const char *version, const char *body)
{
	char *t = NULL;

	assert_true(asprintf(&t, "name: s\nversion: \"%s\"\n%s", version, body) > 0);
	return t;
}

static const char service_body[] = "services:\n"
				   "  - name: app\n"
				   "    mrenclaves: [" MR "]\n"
				   "    command: /bin/app\n";

/* ---- versions ---- */

TEST(test_versions)
{
	static const struct {
		const char *v;
		unsigned minor;
	} ok[] = {{"0.3", 0},	{"0.3.0", 0},	{"0.3.1", 1},	{"0.3.2", 2},  {"0.3.3", 3},
		  {"0.3.4", 4}, {"0.3.5", 5},	{"0.3.6", 6},	{"0.3.7", 7},  {"0.3.8", 8},
		  {"0.3.9", 9}, {"0.3.10", 10}, {"0.3.11", 11}, {"0.3.12", 12}};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *t = session_text(ok[i].v, service_body);
		struct scone_session *s = parse_ok(t);
		assert_string_equal(s->version, ok[i].v);
		assert_int_equal(s->version_minor, ok[i].minor);
		scone_session_free(s);
		free(t);
	}
	char *t = session_text("0.3.13", service_body);
	expect_error(t, 2, 10, "newer than the newest SCONE language this scone reads (0.3.12)");
	free(t);
	t = session_text("0.2", service_body);
	expect_error(t, 2, 10, "SCONE's older session language");
	free(t);
	t = session_text("0.3.01", service_body);
	expect_error(t, 2, 10, "is not supported");
	free(t);
	t = session_text("0.4", service_body);
	expect_error(t, 2, 10, "is not supported");
	free(t);
	expect_error("name: s\nservices: []\n", 1, 1,
		     "SCONE would read a session without one as its old language 0.1");
}

/* ---- environment ---- */

TEST(test_host_environment)
{
	struct scone_policy_diag d;
	struct scone_session *s = parse_ok_ex("name: s\nversion: \"0.3.8\"\n"
					      "services:\n"
					      "  - name: app\n"
					      "    mrenclaves: [" MR "]\n"
					      "    command: /bin/app\n"
					      "    environment:\n"
					      "      PLAIN: x\n"
					      "      \\@\\@HOME: \"\"\n"
					      "      \\@\\@LANG: en_US\n"
					      "      \\@\\@TZ:\n",
					      NULL, &d);
	const struct scone_service *svc = &s->services[0];

	assert_int_equal(svc->n_env, 4);
	assert_string_equal(svc->env[0].key, "PLAIN");
	assert_false(svc->env[0].from_host);
	assert_string_equal(svc->env[1].key, "HOME");
	assert_true(svc->env[1].from_host);
	assert_string_equal(svc->env[2].key, "LANG");
	assert_true(svc->env[2].from_host);
	assert_string_equal(svc->env[3].key, "TZ");
	assert_true(svc->env[3].from_host);
	/* a value beside \@\@NAME is ignored, as in SCONE: said once, for LANG only */
	assert_int_equal(notes_with(&d, SCONE_NOTE_WARNING, "is ignored"), 1);
	assert_int_equal(notes_with(&d, SCONE_NOTE_WARNING, "LANG"), 1);
	scone_policy_diag_free(&d);
	scone_session_free(s);

	/* SCONE 7's list form, the same model */
	s = parse_ok("name: s\nversion: \"0.3.12\"\n"
		     "services:\n"
		     "  - name: app\n"
		     "    mrenclaves: [" MR "]\n"
		     "    command: /bin/app\n"
		     "    environment:\n"
		     "      - name: A\n"
		     "        value: \"1\"\n"
		     "      - name: \\@\\@B\n");
	assert_int_equal(s->services[0].n_env, 2);
	assert_string_equal(s->services[0].env[0].value, "1");
	assert_true(s->services[0].env[1].from_host);
	scone_session_free(s);

	char *t = session_text("0.3.8", "services:\n"
					"  - name: app\n"
					"    mrenclaves: [" MR "]\n"
					"    command: /bin/app\n"
					"    environment:\n"
					"      \"@@HOME\": x\n"
					"      HOME: y\n"
					"      \\@\\@HOME: z\n");
	expect_error(t, 8, 7, "write \\@\\@HOME to take HOME from the host");
	expect_error(t, 10, 7, "variable HOME is given twice (first at 9:7)");
	free(t);
}

/* ---- x509 ---- */

TEST(test_san_prefixes)
{
	char *t = session_text(
	    "0.3.10", "secrets:\n"
		      "  - name: c\n"
		      "    kind: x509\n"
		      "    san: [dns:a.example, ip:10.0.0.1, \"ip:fd00::1\", b.example, 192.168.0.1]\n"
		      "    dns: [c.example]\n");
	struct scone_session *s = parse_ok(t);
	const struct scone_secret *c = scone_session_secret(s, "c");

	assert_int_equal(c->dns.n, 3);
	assert_string_equal(c->dns.v[0], "c.example"); /* dns: first, then san: */
	assert_string_equal(c->dns.v[1], "a.example");
	assert_string_equal(c->dns.v[2], "b.example");
	assert_int_equal(c->ips.n, 3);
	assert_string_equal(c->ips.v[0], "10.0.0.1");
	assert_string_equal(c->ips.v[1], "fd00::1");
	assert_string_equal(c->ips.v[2], "192.168.0.1");
	assert_int_equal(c->valid_for_days, 0); /* no valid_for: no expiry, as SCONE */
	assert_null(c->endpoint);		/* no endpoint: no extended key usage */
	scone_session_free(s);
	free(t);
	t = session_text("0.3.10", "secrets:\n"
				   "  - name: c\n"
				   "    kind: x509\n"
				   "    san: [ip:10.0.0.256, dns:-bad-, uri:x]\n");
	expect_error(t, 6, 11, "'10.0.0.256' is not an IPv4 or IPv6 address");
	expect_error(t, 6, 26, "'-bad-' is not a DNS name");
	expect_error(t, 6, 37, "san entries are written \"dns:NAME\" or \"ip:ADDRESS\"");
	free(t);
}

/* ---- old reference forms ---- */

TEST(test_legacy_refs)
{
	static const struct {
		const char *name, *base, *format;
	} forms[] = {{"c.crt", "c", "crt"}, {"c.key", "c", "privatekey"}, {"c.hex", "c", "hex"}};
	char base[64];
	const char *format;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		assert_true(scone_template_legacy(forms[i].name, base, sizeof(base), &format));
		assert_string_equal(base, forms[i].base);
		assert_string_equal(format, forms[i].format);
	}
	assert_true(scone_template_legacy("ca.chain", base, sizeof(base), &format));
	assert_string_equal(format, SCONE_FORMAT_LEGACY_CHAIN);
	assert_false(scone_template_legacy("plain", base, sizeof(base), &format));
	assert_false(scone_template_legacy(".crt", base, sizeof(base), &format));

	struct scone_policy_diag d;
	char *t = session_text("0.3", "services:\n"
				      "  - name: app\n"
				      "    mrenclaves: [" MR "]\n"
				      "    command: /bin/app --cert=$$SCONE::c.crt$$ --key $$SCONE::c.key$$\n"
				      "secrets:\n"
				      "  - name: c\n"
				      "    kind: x509\n");
	struct scone_session *s = parse_ok_ex(t, NULL, &d);
	assert_int_equal(notes_with(&d, SCONE_NOTE_WARNING, "SCONE's form from before 5.2"), 2);
	/* each warning at its reference */
	assert_int_equal(d.notes[0].e.pos.line, 6);
	assert_int_equal(d.notes[0].e.pos.column, 30);
	assert_int_equal(d.notes[1].e.pos.column, 53);
	scone_policy_diag_free(&d);
	scone_session_free(s);
	free(t);
}

/* ---- access rules ---- */

static void hex32(const char *h, uint8_t out[32])
{
	assert_ok(scone_hex_decode(out, 32, h, "key"));
}

TEST(test_access_rules)
{
	uint8_t k1[32], k2[32], other[32];
	char *t = session_text("0.3.10", "access_policy:\n"
					 "  read: NONE\n"
					 "  update:\n"
					 "    - require-at-least-1: [CREATOR, " K1 "]\n"
					 "  create_sessions:\n"
					 "    require-all: [CREATOR]\n");
	struct scone_session *s;

	hex32(K1, k1);
	hex32(K2, k2);
	memset(other, 7, sizeof(other));
	s = parse_ok(t);
	/* read: NONE - nobody, not even the creator */
	assert_false(scone_access_allows(&s->read, k2, k2));
	assert_false(scone_access_allows(&s->read, NULL, k2));
	/* update: the creator or K1 */
	assert_true(scone_access_allows(&s->update, k2, k2));
	assert_true(scone_access_allows(&s->update, k1, k2));
	assert_false(scone_access_allows(&s->update, other, k2));
	assert_false(scone_access_allows(&s->update, NULL, k2));
	/* create_sessions: the creator only */
	assert_true(scone_access_allows(&s->create_sessions, k2, k2));
	assert_false(scone_access_allows(&s->create_sessions, k1, k2));
	scone_session_free(s);
	free(t);

	/* the default lists: the creator */
	s = parse_ok("name: s\nversion: \"0.3\"\n");
	assert_true(scone_access_allows(&s->read, k1, k1));
	assert_false(scone_access_allows(&s->read, k2, k1));
	scone_session_free(s);

	/* a quorum one client certificate can never meet; rules in read; signer entries */
	t = session_text("0.3.10", "access_policy:\n"
				   "  update:\n"
				   "    - require-all: [" K1 ", " K2 "]\n");
	expect_error(t, 5, 5, "this rule can never be met");
	free(t);
	t = session_text("0.3.10", "access_policy:\n"
				   "  read:\n"
				   "    - require-all: [CREATOR]\n");
	expect_error(t, 5, 7, "are not allowed in read");
	free(t);
	/* a rule that fails part-way (nothing leaks: ASan) */
	t = session_text("0.3.10", "access_policy:\n"
				   "  update:\n"
				   "    - require-at-least-1:\n"
				   "        - require-all: [CREATOR, not-a-key]\n");
	expect_error(t, 6, 34, "'not-a-key' is not CREATOR, ANY, NONE");
	free(t);
	t = session_text("0.3.10", "access_policy:\n"
				   "  update:\n"
				   "    - signer: " K1 "\n");
	expect_error(t, 5, 7, "signer entries authorize SCONE's signed sessions");
	free(t);
}

/* ---- references CAS resolves ---- */

struct answers {
	size_t calls;
};

/*
 * "frag_*": a YAML list; "hash_*": a key hash; "gone_*": unavailable;
 * "loop": a value that is itself a reference (must not be expanded again).
 */
static enum scone_err resolve(void *ctx, const char *name, const char *format, bool *yaml,
			      struct scone_wbuf *out)
{
	struct answers *a = ctx;

	a->calls++;
	(void)format;
	if (!strcmp(name, "frag_enclaves")) {
		*yaml = true;
		return scone_wbuf_put(out, "[" MR "]", strlen(MR) + 2);
	}
	if (!strcmp(name, "hash_reader"))
		return scone_wbuf_put(out, K1, 64);
	if (!strncmp(name, "gone", 4))
		return SCONE_ERR_NOT_FOUND;
	if (!strcmp(name, "loop"))
		return scone_wbuf_put(out, "$$SCONE::hash_reader$$", 22);
	return scone_err_set(SCONE_ERR_INVALID, "unexpected reference %s", name);
}

static const char dynamic_session[] = "name: s\nversion: \"0.3.10\"\n"
				      "access_policy:\n"
				      "  read: [CREATOR, $$SCONE::hash_reader$$, $$SCONE::gone_one$$]\n"
				      "services:\n"
				      "  - name: app\n"
				      "    command: /bin/app\n"
				      "    attestation:\n"
				      "      - mrenclave: [$$SCONE::frag_enclaves$$]\n"
				      "secrets:\n"
				      "  - name: hash_reader\n"
				      "    kind: public-key\n"
				      "    import: {session: keys}\n"
				      "  - name: gone_one\n"
				      "    kind: config-fragment\n"
				      "    import: {session: keys}\n"
				      "  - name: frag_enclaves\n"
				      "    kind: config-fragment\n"
				      "    import: {session: builds}\n";

TEST(test_resolver)
{
	struct answers a = {0};
	struct scone_parse_opts opts = {resolve, &a};
	struct scone_policy_diag d;
	struct scone_session *s;
	uint8_t k1[32], creator[32];

	hex32(K1, k1);
	memset(creator, 3, sizeof(creator));
	/* without a resolver: accepted, dynamic, and the partial lists decide nothing */
	s = parse_ok(dynamic_session);
	assert_true(s->dynamic);
	assert_true(s->read.dynamic);
	assert_true(s->services[0].dynamic);
	assert_false(scone_access_allows(&s->read, k1, creator));
	scone_session_free(s);

	/* with one: the values CAS has; an unavailable access entry is ignored (SCONE) */
	s = parse_ok_ex(dynamic_session, &opts, &d);
	scone_policy_diag_free(&d);
	assert_false(s->dynamic);
	assert_int_equal(a.calls, 3);
	assert_true(scone_access_allows(&s->read, k1, creator));
	assert_true(scone_access_allows(&s->read, creator, creator));
	assert_int_equal(s->services[0].mrenclaves.n, 1);
	assert_string_equal(s->services[0].mrenclaves.v[0], MR);
	scone_session_free(s);

	/* unavailable where it is no list entry of access_policy: the parse fails */
	char *t = session_text("0.3.10", "services:\n"
					 "  - name: app\n"
					 "    command: /bin/app\n"
					 "    attestation: $$SCONE::gone_att$$\n"
					 "secrets:\n"
					 "  - name: gone_att\n"
					 "    kind: config-fragment\n"
					 "    import: {session: x}\n");
	expect_error_ex(t, &opts, 6, 18, "$$SCONE::gone_att$$");
	free(t);

	/* a resolved value is never searched for references again */
	t = session_text("0.3.10", "access_policy:\n"
				   "  read: [$$SCONE::loop$$]\n"
				   "secrets:\n"
				   "  - name: loop\n"
				   "    kind: ascii\n"
				   "    import: {session: x}\n");
	a.calls = 0;
	s = parse_ok_ex(t, &opts, &d);
	scone_policy_diag_free(&d);
	assert_int_equal(a.calls, 1);
	assert_false(
	    scone_access_allows(&s->read, k1, creator)); /* "$$SCONE::hash_reader$$" is no principal */
	scone_session_free(s);
	free(t);
}

/* ---- config-fragments of the session ---- */

TEST(test_fragments)
{
	char *t = session_text(
	    "0.3.10", "services:\n"
		      "  - name: app\n"
		      "    command: /bin/app\n"
		      "    mrenclaves: [$$SCONE::outer$$]\n"
		      "    platforms: [$$SCONE::plats$$, INTEL_QE_ID:00112233445566778899AABBCCDDEEFF]\n"
		      "secrets:\n"
		      "  - name: outer\n"
		      "    kind: config-fragment\n"
		      "    value: [$$SCONE::inner$$, " K1 "]\n"
		      "  - name: inner\n"
		      "    kind: config-fragment\n"
		      "    value: [" MR "]\n"
		      "  - name: plats\n"
		      "    kind: config-fragment\n"
		      "    value: []\n");
	struct scone_session *s = parse_ok(t);
	const struct scone_service *svc = &s->services[0];

	assert_false(s->dynamic);
	assert_int_equal(svc->mrenclaves.n, 2); /* spliced, in order */
	assert_string_equal(svc->mrenclaves.v[0], MR);
	assert_string_equal(svc->mrenclaves.v[1], K1);
	assert_int_equal(svc->platforms.n, 1); /* an empty list fragment splices nothing */
	assert_string_equal(svc->platforms.v[0], "intel_qe_id:00112233445566778899aabbccddeeff");
	scone_session_free(s);
	free(t);

	t = session_text("0.3.10", "services:\n"
				   "  - name: app\n"
				   "    command: /bin/app\n"
				   "    mrenclaves: [$$SCONE::me$$]\n"
				   "secrets:\n"
				   "  - name: me\n"
				   "    kind: config-fragment\n"
				   "    value: [$$SCONE::me$$]\n");
	expect_error(t, 10, 13, "config-fragments nested more than 8 deep"); /* at the self-reference */
	free(t);
	t = session_text("0.3.10", "services:\n"
				   "  - name: app\n"
				   "    command: /bin/app --x=$$SCONE::list$$\n"
				   "    mrenclaves: [$$SCONE::list:hex$$]\n"
				   "secrets:\n"
				   "  - name: list\n"
				   "    kind: config-fragment\n"
				   "    value: [a]\n");
	expect_error(t, 5, 27, "holds a list or mapping");
	expect_error(t, 6, 18, "a config-fragment takes no format");
	free(t);
}

/* ---- session templates (-e VAR=VALUE) ---- */

static const char *lookup(void *ctx, const char *name)
{
	(void)ctx;
	if (!strcmp(name, "NAME"))
		return "web";
	if (!strcmp(name, "EMPTY"))
		return "";
	return NULL;
}

static enum scone_err expand(const char *in, char **out)
{
	struct scone_wbuf w;
	enum scone_err e;

	scone_wbuf_init(&w, 4096, 0);
	e = scone_session_vars_expand(in, strlen(in), lookup, NULL, &w);
	*out = NULL;
	if (!e) {
		*out = calloc(1, w.size + 1);
		assert_non_null(*out);
		memcpy(*out, w.data, w.size);
	}
	scone_wbuf_free(&w);
	return e;
}

TEST(test_template_vars)
{
	static const struct {
		const char *in, *out;
	} ok[] = {
	    {"name: $NAME", "name: web"},
	    {"name: ${NAME}-x", "name: web-x"},
	    {"a$EMPTY.b", "a.b"},
	    {"$$SCONE::k:hex$$ stays", "$$SCONE::k:hex$$ stays"},
	    {"5$ and $ and $1 and ${", "5$ and $ and $1 and ${"},
	    {"$NAMEX", NULL}, /* a longer name is another variable: missing */
	    {"no variables", "no variables"},
	};
	char *out;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		enum scone_err e = expand(ok[i].in, &out);
		if (ok[i].out) {
			assert_int_equal(e, SCONE_ERR_OK);
			assert_string_equal(out, ok[i].out);
		} else {
			assert_int_equal(e, SCONE_ERR_NOT_FOUND);
		}
		free(out);
	}
	/* SCONE's message, with the position of the "$" (columns count characters) */
	assert_int_equal(expand("name: x\nversion: \"0.3\"\n  é: ${MISSING}\n", &out), SCONE_ERR_NOT_FOUND);
	assert_string_equal(scone_err_detail(), "Value for variable $MISSING is missing at line 3 column 6");
	free(out);
}

/* ---- images ---- */

TEST(test_injection_files_outside_volumes)
{
	char *t = session_text("0.3.12", "images:\n"
					 "  - name: i\n"
					 "    injection_files:\n"
					 "      - /data/own.conf\n"
					 "      - {path: /data/sub/given, content: x}\n"
					 "      - {path: /database/x, content: x}\n"
					 "      - /etc/app.conf\n"
					 "    volumes:\n"
					 "      - {name: v, path: /data/}\n"
					 "volumes:\n"
					 "  - name: v\n");

	expect_error(t, 6, 9, "'/data/own.conf' is inside volume v, mounted at /data/ by this image");
	expect_error(t, 7, 9, "'/data/sub/given' is inside volume v");
	free(t);
	t = session_text("0.3.12", "images:\n"
				   "  - name: i\n"
				   "    injection_files:\n"
				   "      - {path: /database/x, content: x}\n"
				   "      - /etc/app.conf\n"
				   "    volumes:\n"
				   "      - {name: v, path: /data}\n"
				   "volumes:\n"
				   "  - name: v\n");
	struct scone_session *s = parse_ok(t);
	assert_int_equal(s->images[0].n_files, 2);
	assert_null(s->images[0].files[1].content);	    /* the image's own file */
	assert_int_equal(s->images[0].files[0].mode, 0700); /* SCONE's default */
	scone_session_free(s);
	free(t);
}

/* ---- encoding, bookkeeping, proofs ---- */

TEST(test_bom)
{
	char *t = session_text("0.3.10", service_body);
	char *with_bom = NULL;
	struct scone_session *s, *plain;

	assert_true(asprintf(&with_bom, "\xEF\xBB\xBF%s", t) > 0);
	s = parse_ok(with_bom);
	plain = parse_ok(t);
	assert_memory_equal(s->hash, plain->hash, 32); /* the mark is no part of the session */
	scone_session_free(s);
	scone_session_free(plain);
	free(with_bom);
	with_bom = NULL;
	assert_true(asprintf(&with_bom, "name: s\xEF\xBB\xBF\nversion: \"0.3\"\n") > 0);
	expect_error(with_bom, 1, 7, "invalid session name");
	free(with_bom);
	free(t);
}

TEST(test_token_mac)
{
	uint8_t spki[32], a[32], b[32];

	memset(spki, 1, sizeof(spki));
	assert_ok(scone_access_token_mac("token", SCONE_TOKEN_LABEL_RUNTIME, spki, "s/svc", a));
	assert_ok(scone_access_token_mac("token", SCONE_TOKEN_LABEL_RUNTIME, spki, "s/svc", b));
	assert_memory_equal(a, b, 32);
	assert_ok(scone_access_token_mac("token", SCONE_TOKEN_LABEL_CAS, spki, "s/svc", b));
	assert_memory_not_equal(a, b, 32); /* not reflected as the other side's */
	assert_ok(scone_access_token_mac("token", SCONE_TOKEN_LABEL_RUNTIME, spki, "s/other", b));
	assert_memory_not_equal(a, b, 32); /* not replayed for another service */
	spki[0] ^= 1;
	assert_ok(scone_access_token_mac("token", SCONE_TOKEN_LABEL_RUNTIME, spki, "s/svc", b));
	assert_memory_not_equal(a, b, 32); /* not replayed over another connection */
	assert_ok(scone_access_token_mac("tokem", SCONE_TOKEN_LABEL_RUNTIME, spki, "s/svc", b));
	assert_memory_not_equal(a, b, 32);
	assert_int_not_equal(scone_access_token_mac("", SCONE_TOKEN_LABEL_RUNTIME, spki, "s/svc", b),
			     SCONE_ERR_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_versions),
	    cmocka_unit_test(test_host_environment),
	    cmocka_unit_test(test_san_prefixes),
	    cmocka_unit_test(test_legacy_refs),
	    cmocka_unit_test(test_access_rules),
	    cmocka_unit_test(test_resolver),
	    cmocka_unit_test(test_fragments),
	    cmocka_unit_test(test_template_vars),
	    cmocka_unit_test(test_bom),
	    cmocka_unit_test(test_token_mac),
	    cmocka_unit_test(test_injection_files_outside_volumes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
