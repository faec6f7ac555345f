/*
 * fuzz_cas_request.c - libFuzzer target for what a CAS or a CLI reads from
 * the network besides sessions: the JSON bodies of the service endpoints
 * (cas_parse_config_request, cas_parse_tag_request, cas_split_config_id)
 * and HTTP responses (scone_http_parse_response).
 *
 * The first input byte picks the parser. Errors are expected; a crash, a
 * sanitizer report, a leak, or a result that breaks the parser's contract
 * (names that do not validate, a body slice outside the input) aborts.
 * Seeds: fuzz/corpus/cas_request.
 */
#include <string.h>

#include "attest/attest.h"
#include "cas/cas.h"
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

static void config_id(const char *s, size_t n)
{
	char id[CAS_CONFIG_ID_MAX + 1], session[SCONE_SESSION_NAME_MAX + 1], service[SCONE_SESSION_NAME_MAX + 1];

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
	switch (data[0] % 4) {
	case 0:
		config_request(copy, size - 1);
		break;
	case 1:
		tag_request(copy, size - 1);
		break;
	case 2:
		config_id(copy, size - 1);
		break;
	default:
		http_response(copy, size - 1);
		break;
	}
	free(copy);
	scone_err_clear();
	return 0;
}
