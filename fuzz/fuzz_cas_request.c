/*
 * fuzz_cas_request.c - libFuzzer target for what a CAS or a CLI reads from
 * the network besides sessions: the JSON bodies of the service endpoints
 * (cas_parse_config_request, cas_parse_tag_request, cas_parse_values_request,
 * cas_parse_accept_request, cas_split_config_id), HTTP responses (scone_http_parse_response), and what the
 * CAS front end checks in a request before anything else: the request target (cas_http_parse_target) and a
 * request head whose header lines feed the body-framing check (cas_http_framing_*), compared with an
 * independent count of Content-Length and Transfer-Encoding headers.
 *
 * The first input byte picks the parser. Errors are expected; a crash, a
 * sanitizer report, a leak, or a result that breaks the parser's contract
 * (names that do not validate, a body slice outside the input) aborts.
 * Seeds: fuzz/corpus/cas_request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "attest/attest.h"
#include "cas/cas.h"
#include "cas/http_parse.h"
#include "fuzz_common.h"
#include "lib/tls.h"

static void config_request(const char *s, size_t n)
{
	struct cas_config_request r;

	if (cas_parse_config_request(s, n, &r) == SCONE_ERR_OK) {
		CHECK(scone_session_name_valid(r.session));
		CHECK(scone_session_name_valid(r.service));
		CHECK(strchr(r.service, '/') == NULL);
		CHECK(strlen(r.evidence_type) < sizeof(r.evidence_type));
		CHECK(r.otp[0] == '\0' || strlen(r.otp) == 6);
		CHECK(r.evidence_size <= SCONE_EVIDENCE_MAX && (r.evidence != NULL || r.evidence_size == 0));
		cas_config_request_free(&r);
	}
}

static void tag_request(const char *s, size_t n)
{
	struct cas_tag_request r;

	if (cas_parse_tag_request(s, n, &r) == SCONE_ERR_OK) {
		CHECK(scone_session_name_valid(r.session));
		CHECK(strlen(r.tag) == 32);
		CHECK(strlen(r.previous_tag) == 0 || strlen(r.previous_tag) == 32);
	}
}

static void accept_request(const char *s, size_t n)
{
	struct cas_accept_request r;

	if (cas_parse_accept_request(s, n, &r) == SCONE_ERR_OK) {
		CHECK(strlen(r.tag) == 32 && strspn(r.tag, "0123456789abcdef") == 32);
		CHECK(strlen(r.previous_tag) == 0 || strspn(r.previous_tag, "0123456789abcdef") == 32);
	}
}

static void values_request(const char *s, size_t n)
{
	struct cas_values_request *r = NULL;

	if (cas_parse_values_request(s, n, &r) == SCONE_ERR_OK) {
		CHECK(r != NULL);
		CHECK(scone_session_name_valid(r->session));
		CHECK(scone_session_name_valid(r->service));
		CHECK(r->path[0] == '/' && memchr(r->path, '\0', sizeof(r->path)));
		CHECK(r->n_refs <= CAS_VALUES_MAX_REFS);
		for (size_t i = 0; i < r->n_refs; i++) {
			CHECK(r->refs[i].name[0] != '\0');
			CHECK(!r->refs[i].has_format || r->refs[i].format[0] != '\0');
		}
	} else {
		CHECK(r == NULL);
	}
	free(r);
}

static void config_id(const char *s, size_t n)
{
	char id[CAS_CONFIG_ID_MAX + 1], session[SCONE_SESSION_NAME_MAX + 1],
	    service[SCONE_SESSION_NAME_MAX + 1];

	if (n > CAS_CONFIG_ID_MAX)
		n = CAS_CONFIG_ID_MAX;
	memcpy(id, s, n);
	id[n] = '\0';
	if (cas_split_config_id(id, session, service) == SCONE_ERR_OK)
		CHECK(scone_session_name_valid(session) && scone_session_name_valid(service));
}

static void http_response(const char *s, size_t n)
{
	size_t off = 0, len = 0;
	int status = 0;

	if (scone_http_parse_response(s, n, &status, &off, &len) == SCONE_ERR_OK) {
		CHECK(status >= 100 && status <= 599);
		CHECK(off <= n && len <= n - off);
	}
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* The target as evhttp hands it over: a C string (cut at the first NUL). */
static void request_target(const char *s, size_t n)
{
	char *t = strndup(s, n), *path = (char *)1, *query = (char *)1;
	size_t raw_path;

	if (!t)
		return;
	raw_path = strcspn(t, "?#");
	if (cas_http_parse_target(t, &path, &query) == SCONE_ERR_OK) {
		CHECK(path && path[0] == '/');
		CHECK(strlen(path) <= raw_path && raw_path < CAS_HTTP_PATH_LIMIT);
		CHECK(!has_control(path));
		CHECK((query != NULL) == (t[raw_path] == '?'));
		CHECK(!query || strlen(query) <= strlen(t) - raw_path - 1);
	} else {
		CHECK(path == NULL && query == NULL);
	}
	free(path);
	free(query);
	free(t);
}

/* An independent judgement of one header, for the oracle in request_head. */
struct framing_oracle {
	int n_length, n_te;
	bool bad_length, differs, bad_te;
	unsigned long long first;
};

static void oracle_add(struct framing_oracle *o, const char *name, const char *value)
{
	char *end;
	unsigned long long v;

	if (strcasecmp(name, "content-length") == 0) {
		errno = 0;
		v = strtoull(value, &end, 10);
		if (!value[0] || *end || errno || value[0] < '0' || value[0] > '9' || strlen(value) > 19)
			o->bad_length = true;
		else if (o->n_length++ == 0)
			o->first = v;
		else if (v != o->first)
			o->differs = true;
	} else if (strcasecmp(name, "transfer-encoding") == 0) {
		o->n_te++;
		o->bad_te |= strcasecmp(value, "chunked") != 0;
	}
}

/*
 * "METHOD TARGET VERSION" then "Name: value" lines (CRLF or LF), up to an
 * empty line: the target goes to request_target, every header to the
 * framing check, whose verdict must match the oracle.
 */
static void request_head(const char *s, size_t n)
{
	char *text = strndup(s, n), *line, *next, *colon, *sp;
	struct cas_http_framing f;
	struct framing_oracle o = {0};
	bool first = true, refuse;
	enum scone_err err;

	if (!text)
		return;
	cas_http_framing_init(&f);
	for (line = text; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (first) {
			first = false;
			sp = strchr(line, ' ');
			if (sp) {
				sp[1 + strcspn(sp + 1, " ")] = '\0';
				request_target(sp + 1, strlen(sp + 1));
			}
			continue;
		}
		if (!line[0])
			break;
		if (!(colon = strchr(line, ':')))
			continue;
		*colon = '\0';
		colon++;
		colon += strspn(colon, " \t");
		cas_http_framing_add(&f, line, colon);
		oracle_add(&o, line, colon);
	}
	err = cas_http_framing_check(&f);
	refuse = o.bad_length || o.differs || (o.n_te && o.n_length) || o.n_te > 1 || o.bad_te;
	CHECK((err != SCONE_ERR_OK) == refuse);
	CHECK(err == SCONE_ERR_OK || scone_err_detail()[0]);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;

	if (size < 1)
		return 0;
	/* An exact-size heap copy so that ASan sees any read past the end. */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 8) {
	case 0:
		config_request(copy, size - 1);
		break;
	case 1:
		tag_request(copy, size - 1);
		break;
	case 2:
		config_id(copy, size - 1);
		break;
	case 3:
		http_response(copy, size - 1);
		break;
	case 4:
		request_target(copy, size - 1);
		break;
	case 5:
		request_head(copy, size - 1);
		break;
	case 6:
		values_request(copy, size - 1);
		break;
	default:
		accept_request(copy, size - 1);
		break;
	}
	free(copy);
	scone_err_clear();
	return 0;
}
