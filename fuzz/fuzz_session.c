/*
 * fuzz_session.c - libFuzzer target for the session language
 * (src/policy): the YAML parser and every validator behind
 * scone_session_parse, the $$SCONE::...$$ scanner and the shell splitter.
 *
 * The input is
 *   - parsed as a session. Failure must come with 1..100 stored errors,
 *     each at a position >= 1:1 with terminated strings. Success must
 *     have no errors, and parsing the same bytes again must give the same
 *     hash (the hash is what updates chain on);
 *   - expanded as a template with a lookup that writes each reference
 *     back as $$SCONE::NAME[:FORMAT]$$: the output must equal the input
 *     (unless it holds "|escape(json)", which applies to that output),
 *     and scone_template_refs must see exactly the references expanded;
 *   - split as a command line (up to the first NUL). Success must
 *     round-trip: quoting every word with '...' and splitting again gives
 *     the same words. The words then go through scone_host_args;
 *   - parsed again with a resolver for $$SCONE::...$$ in the sections
 *     CAS resolves (access_policy, security, attestation): whatever it
 *     answers (a string, a YAML fragment, "unavailable"), the parse ends
 *     with the same contract;
 *   - expanded as a session template (-e VAR=VALUE): with every variable
 *     set to its own name the output has no "$NAME" left unless written
 *     "$$"; with none set it fails with SCONE's message or has no variable.
 * No error may be "accepted but not read": every key a parse accepts is
 * read by a validator (the check that nothing is silently ignored).
 * Any mismatch aborts. Seeds: fuzz/corpus/session and tests/sessions.
 */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The contract of a failed parse: 1..100 errors, each placed, none a key accepted but not read. */
static void check_errors(enum scone_err e, const struct scone_policy_diag *d)
{
	CHECK(e == SCONE_ERR_POLICY || e == SCONE_ERR_TOO_LARGE || e == SCONE_ERR_NOMEM);
	if (e != SCONE_ERR_NOMEM)
		CHECK(d->count >= 1 && d->count <= 100);
	CHECK(d->unread == 0);
	for (size_t i = 0; i < d->count; i++) {
		char line[512];
		CHECK(d->errors[i].pos.line >= 1 && d->errors[i].pos.column >= 1);
		CHECK(memchr(d->errors[i].path, '\0', sizeof(d->errors[i].path)) != NULL);
		CHECK(memchr(d->errors[i].message, '\0', sizeof(d->errors[i].message)) != NULL);
		scone_policy_error_format(&d->errors[i], line, sizeof(line));
	}
}

static void check_session(const uint8_t *data, size_t size)
{
	struct scone_session *s = NULL, *again = NULL;
	struct scone_policy_diag d;
	enum scone_err e = scone_session_parse((const char *)data, size, &s, &d);

	if (e == SCONE_ERR_OK) {
		CHECK(s != NULL);
		CHECK(d.count == 0 && d.dropped == 0 && d.unread == 0);
		CHECK(scone_session_name_valid(s->name));
		CHECK(scone_session_parse((const char *)data, size, &again, NULL) == SCONE_ERR_OK);
		CHECK(memcmp(s->hash, again->hash, 32) == 0);
		for (size_t i = 0; i < s->n_services; i++)
			CHECK(scone_session_service(s, s->services[i].name) != NULL);
		for (size_t i = 0; i < s->n_secrets; i++)
			CHECK(scone_session_secret(s, s->secrets[i].name) != NULL);
	} else {
		CHECK(s == NULL);
		check_errors(e, &d);
	}
	scone_session_free(s);
	scone_session_free(again);
	scone_policy_diag_free(&d);
}

struct counter {
	size_t lookups, refs;
};

/* Write the reference back as it was written. */
static enum scone_err echo_lookup(void *ctx, const char *name, const char *format, struct scone_wbuf *out)
{
	struct counter *c = ctx;

	c->lookups++;
	SCONE_TRY(scone_wbuf_put(out, "$$SCONE::", 9));
	SCONE_TRY(scone_wbuf_put(out, name, strlen(name)));
	if (format) {
		CHECK(format[0] != '\0');
		SCONE_TRY(scone_wbuf_put(out, ":", 1));
		SCONE_TRY(scone_wbuf_put(out, format, strlen(format)));
	}
	return scone_wbuf_put(out, "$$", 2);
}

static enum scone_err count_ref(void *ctx, const char *name, const char *format)
{
	struct counter *c = ctx;

	CHECK(name[0] != '\0');
	(void)format;
	c->refs++;
	return SCONE_ERR_OK;
}

static void check_template(const uint8_t *data, size_t size)
{
	struct scone_wbuf w;
	struct counter c = {0, 0};

	scone_wbuf_init(&w, 2 * size + 64, 1);
	CHECK(scone_template_expand((const char *)data, size, echo_lookup, &c, &w) == SCONE_ERR_OK);
	/* "|escape(json)" is applied to what the lookup wrote, so it is not echoed back. */
	if (!memmem(data, size, "|escape(json)", 13)) {
		CHECK(w.size == size);
		CHECK(size == 0 || memcmp(w.data, data, size) == 0);
	}
	CHECK(scone_template_refs((const char *)data, size, count_ref, &c) == SCONE_ERR_OK);
	CHECK(c.refs == c.lookups);
	scone_wbuf_free(&w);
}

/* 'word' with every ' written as '\'' */
static void quote_word(struct scone_wbuf *w, const char *word)
{
	CHECK(scone_wbuf_put(w, "'", 1) == SCONE_ERR_OK);
	for (const char *p = word; *p; p++) {
		if (*p == '\'')
			CHECK(scone_wbuf_put(w, "'\\''", 4) == SCONE_ERR_OK);
		else
			CHECK(scone_wbuf_put(w, p, 1) == SCONE_ERR_OK);
	}
	CHECK(scone_wbuf_put(w, "' ", 2) == SCONE_ERR_OK);
}

static void check_split(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	struct scone_strs words, again, args;
	struct scone_wbuf w;
	char *host[] = {"prog", "one", "two words", NULL};

	CHECK(line != NULL);
	memcpy(line, data, size);
	line[size] = '\0';
	if (scone_shell_split(line, &words) != SCONE_ERR_OK) {
		CHECK(words.v == NULL && words.n == 0);
		free(line);
		return;
	}
	CHECK(words.v[words.n] == NULL);
	scone_wbuf_init(&w, 8 * size + 64, 0);
	for (size_t i = 0; i < words.n; i++)
		quote_word(&w, words.v[i]);
	CHECK(scone_wbuf_put(&w, "", 1) == SCONE_ERR_OK);
	CHECK(scone_shell_split((const char *)w.data, &again) == SCONE_ERR_OK);
	CHECK(again.n == words.n);
	for (size_t i = 0; i < words.n; i++)
		CHECK(strcmp(words.v[i], again.v[i]) == 0);
	if (scone_host_args(&words, 3, host, &args) == SCONE_ERR_OK) {
		CHECK(args.n == words.n && args.v[args.n] == NULL);
		scone_strs_free(&args);
	}
	scone_strs_free(&words);
	scone_strs_free(&again);
	scone_wbuf_free(&w);
	free(line);
}

/*
 * The resolver's answer depends on the reference: a name starting with
 * "frag" is a YAML fragment (a list of two strings), "gone" is unavailable,
 * "bad" fails, anything else a string.
 */
static enum scone_err fuzz_resolve(void *ctx, const char *name, const char *format, bool *yaml,
				   struct scone_wbuf *out)
{
	(void)ctx;
	(void)format;
	CHECK(name[0] != '\0');
	if (!strncmp(name, "frag", 4)) {
		*yaml = true;
		return scone_wbuf_put(out, "[a, b]", 6);
	}
	if (!strncmp(name, "gone", 4))
		return SCONE_ERR_NOT_FOUND;
	if (!strncmp(name, "bad", 3))
		return SCONE_ERR_INVALID;
	return scone_wbuf_put(out, name, strlen(name));
}

static void check_resolved(const uint8_t *data, size_t size)
{
	struct scone_parse_opts opts = {fuzz_resolve, NULL};
	struct scone_session *s = NULL;
	struct scone_policy_diag d;
	enum scone_err e = scone_session_parse_ex((const char *)data, size, &opts, &s, &d);

	if (e == SCONE_ERR_OK) {
		CHECK(s != NULL && d.count == 0);
		CHECK(!s->dynamic);
	} else {
		CHECK(s == NULL);
		check_errors(e, &d);
	}
	scone_session_free(s);
	scone_policy_diag_free(&d);
}

static const char *var_self(void *ctx, const char *name)
{
	(void)ctx;
	return name;
}

static const char *var_none(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;
}

static void check_vars(const uint8_t *data, size_t size)
{
	struct scone_wbuf w;
	enum scone_err e;

	scone_wbuf_init(&w, 4 * size + 64, 0);
	e = scone_session_vars_expand((const char *)data, size, var_self, NULL, &w);
	CHECK(e == SCONE_ERR_OK || e == SCONE_ERR_TOO_LARGE || e == SCONE_ERR_NOMEM);
	if (e == SCONE_ERR_OK && !memchr(data, '$', size))
		CHECK(w.size == size && (size == 0 || memcmp(w.data, data, size) == 0));
	scone_wbuf_free(&w);
	scone_wbuf_init(&w, 4 * size + 64, 0);
	e = scone_session_vars_expand((const char *)data, size, var_none, NULL, &w);
	if (e == SCONE_ERR_NOT_FOUND)
		CHECK(strstr(scone_err_detail(), "Value for variable $") != NULL);
	else
		CHECK(e == SCONE_ERR_OK || e == SCONE_ERR_TOO_LARGE || e == SCONE_ERR_NOMEM);
	scone_wbuf_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_session(data, size);
	check_resolved(data, size);
	check_vars(data, size);
	check_template(data, size);
	check_split(data, size);
	return 0;
}
