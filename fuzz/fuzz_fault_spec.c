/*
 * fuzz_fault_spec.c - libFuzzer target for the fault injector's rule
 * (SCONE_FAULT, tests/tools/fault/fault_spec.c). The input, up to its first
 * NUL, is the rule. Whatever it is: a refusal writes a message that says
 * where ("at byte N") or what the rule lacks; an accepted rule has its
 * paths absolute and terminated, a known family and fault, nth set when it
 * injects, and a short fault only on a transfer family.
 * Seeds: fuzz/corpus/fault_spec.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../tests/tools/fault/fault_spec.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_path(const char *p)
{
	size_t n = strnlen(p, PATH_MAX);

	CHECK(n < PATH_MAX);
	CHECK(n == 0 || p[0] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *rule = malloc(size + 1), err[512];
	struct fault_spec spec;

	if (!rule)
		return 0;
	memcpy(rule, data, size);
	rule[size] = '\0';
	if (!fault_spec_parse(rule, &spec, err, sizeof(err))) {
		CHECK(err[0] != '\0');
		CHECK(strstr(err, "at byte ") || strstr(err, "needs call= and nth=") ||
		      strstr(err, "fault=short"));
	} else {
		CHECK(err[0] == '\0');
		check_path(spec.path);
		check_path(spec.count);
		check_path(spec.log);
		CHECK(fault_kind_name(spec.kind)[0] != '?');
		if (spec.kind != FAULT_NONE) {
			CHECK(spec.has_call && spec.nth > 0);
			CHECK(fault_family_name(spec.call) != NULL);
			CHECK(fault_spec_hits(&spec, spec.nth));
			CHECK(!fault_spec_hits(&spec, spec.nth - 1));
		}
		if (spec.kind == FAULT_SHORT)
			CHECK(fault_family_transfers(spec.call));
	}
	free(rule);
	return 0;
}
