/*
 * fuzz_evidence.c - libFuzzer target for CAS's evidence path: every row of
 * the evidence table verifies untrusted bytes into claims, the claims go
 * through the matcher of a las-mode session and out as JSON.
 *
 * The first input byte picks the evidence type (table order). A verify
 * that fails must leave the claims zeroed; one that succeeds must give
 * claims whose JSON parses. The matcher must refuse (a fuzzed report is not
 * signed by the session's LAS) without crashing. Seeds: fuzz/corpus/evidence
 * (real LAS reports, made by scone-las).
 */
#include <string.h>

#include "attest/attest.h"
#include "cas/attest_gate.h"
#include "fuzz_common.h"
#include "lib/json.h"
#include "policy/policy.h"

static const char session_yaml[] =
    "name: f\nversion: \"0.3\"\nsecurity: {attestation: {mode: las}}\nservices:\n"
    "  - name: app\n    attestation:\n      mrenclave: [1111111111111111111111111111111111111111111111111111111111111111]\n"
    "      platforms: [2222222222222222222222222222222222222222222222222222222222222222]\n";

static struct scone_session *session(void)
{
	static struct scone_session *s;

	if (!s)
		CHECK(scone_session_parse(session_yaml, sizeof(session_yaml) - 1, &s, NULL) == SCONE_ERR_OK);
	return s;
}

static void claims_json(const struct scone_claims *c)
{
	struct scone_wbuf w;
	struct scone_json *j = NULL;

	scone_wbuf_init(&w, 1 << 20, 0);
	CHECK(scone_claims_to_json(c, &w) == SCONE_ERR_OK);
	CHECK(scone_json_parse((const char *)w.data, w.size, NULL, &j) == SCONE_ERR_OK);
	scone_json_free(j);
	scone_wbuf_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct scone_claims zero;
	const struct scone_evidence_ops *ops;
	struct scone_verify_opts o = { .at = 1800000000, .max_age_sec = 1 << 30 };
	struct scone_claims c;
	uint8_t spki[32] = { 0 }, *copy;
	size_t n = 0;

	if (size < 1)
		return 0;
	while (scone_evidence_at(n))
		n++;
	ops = scone_evidence_at(data[0] % n);
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (ops->verify(copy, size - 1, &o, &c) == SCONE_ERR_OK) {
		CHECK(c.type == ops->type);
		claims_json(&c);
		if (c.type == SCONE_EVIDENCE_LAS)
			CHECK(cas_attest_match(scone_session_service(session(), "app"), &c, spki) != SCONE_ERR_OK);
	} else {
		CHECK(memcmp(&c, &zero, sizeof(c)) == 0);
	}
	free(copy);
	scone_err_clear();
	return 0;
}
