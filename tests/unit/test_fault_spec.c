/*
 * test_fault_spec.c - the rule of the fault injector (SCONE_FAULT,
 * tests/tools/fault/fault_spec.c): what it accepts, what it refuses and
 * why, and which calls a rule hits. The injector itself is driven by
 * tests/integration/test_runtime_faults.sh.
 */
#include "helpers.h"

#include <stdio.h>
#include <string.h>

#include "../tools/fault/fault_spec.c"

#define TEST(name) static void name(void **state __attribute__((unused)))

static void parse_ok(const char *s, struct fault_spec *out)
{
	char err[512];

	if (!fault_spec_parse(s, out, err, sizeof(err)))
		fail_msg("'%s' refused: %s", s, err);
	assert_string_equal(err, "");
}

/* s is refused with a message containing want. */
static void parse_bad(const char *s, const char *want)
{
	struct fault_spec spec;
	char err[512];

	if (fault_spec_parse(s, &spec, err, sizeof(err)))
		fail_msg("'%s' accepted", s);
	if (!strstr(err, want))
		fail_msg("'%s': message '%s' does not say '%s'", s, err, want);
}

TEST(test_full_rule)
{
	struct fault_spec s;

	parse_ok("call=pwrite,nth=7,fault=eio,path=/srv/vol,log=/tmp/f.log,count=/tmp/c,times=3", &s);
	assert_int_equal(s.call, FAULT_PWRITE);
	assert_true(s.has_call);
	assert_int_equal(s.nth, 7);
	assert_int_equal(s.times, 3);
	assert_int_equal(s.kind, FAULT_EIO);
	assert_string_equal(s.path, "/srv/vol");
	assert_string_equal(s.log, "/tmp/f.log");
	assert_string_equal(s.count, "/tmp/c");
}

TEST(test_defaults)
{
	struct fault_spec s;

	parse_ok(NULL, &s);
	assert_int_equal(s.kind, FAULT_NONE);
	assert_int_equal(s.times, 1);
	assert_string_equal(s.path, "");
	parse_ok("", &s);
	assert_int_equal(s.kind, FAULT_NONE);
	parse_ok("count=/tmp/counts,path=/v", &s); /* counting only */
	assert_int_equal(s.kind, FAULT_NONE);
	assert_false(s.has_call);
	assert_string_equal(s.count, "/tmp/counts");
	parse_ok("call=*,nth=1,fault=crash", &s);
	assert_int_equal(s.call, FAULT_ANY);
	assert_int_equal(s.kind, FAULT_CRASH);
}

TEST(test_every_family_and_kind)
{
	static const char *const k[] = {"none", "eintr", "eio", "enospc", "crash"};
	char rule[128];
	struct fault_spec s;

	for (int f = 0; f < FAULT_FAMILY_COUNT; f++) {
		for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
			snprintf(rule, sizeof(rule), "call=%s,nth=2,fault=%s", fault_family_name(f), k[i]);
			parse_ok(rule, &s);
			assert_int_equal(s.call, f);
			assert_string_equal(fault_kind_name(s.kind), k[i]);
		}
		snprintf(rule, sizeof(rule), "call=%s,nth=2,fault=short", fault_family_name(f));
		if (fault_family_transfers(f))
			parse_ok(rule, &s);
		else
			parse_bad(rule, "fault=short applies to read, write, pread and pwrite");
	}
	assert_null(fault_family_name(FAULT_FAMILY_COUNT + 1));
}

TEST(test_malformed)
{
	parse_bad("call=preadx,nth=1,fault=eio", "bad value 'preadx' for call");
	parse_bad("call=pread,nth=0,fault=eio", "bad value '0' for nth");
	parse_bad("call=pread,nth=07,fault=eio", "bad value '07' for nth");
	parse_bad("call=pread,nth=-1,fault=eio", "bad value '-1' for nth");
	parse_bad("call=pread,nth=1x,fault=eio", "bad value '1x' for nth");
	parse_bad("call=pread,nth=99999999999,fault=eio", "for nth");
	parse_bad("call=pread,nth=4294967296,fault=eio", "for nth");
	parse_bad("call=pread,nth=,fault=eio", "bad value '' for nth");
	parse_bad("call=pread,nth=1,fault=EIO", "bad value 'EIO' for fault");
	parse_bad("call=pread,nth=1,fault=eio,times=x", "for times");
	parse_bad("path=relative/dir", "bad value 'relative/dir' for path");
	parse_bad("count=", "for count");
	parse_bad("log=tmp", "for log");
	parse_bad("color=red", "unknown key 'color'");
	parse_bad("call=pread,call=pwrite", "key 'call' given twice");
	parse_bad("call=pread,,nth=1", "at byte 11");
	parse_bad("call=pread,", "expected KEY=VALUE");
	parse_bad("=x", "expected KEY=VALUE");
	parse_bad("nth", "expected KEY=VALUE");
	parse_bad("fault=eio", "fault=eio needs call= and nth=");
	parse_bad("fault=eio,call=read", "needs call= and nth=");
	parse_bad("fault=crash,nth=3", "needs call= and nth=");
}

/* Every message says where: the byte of the item or of the value, and what was expected. */
TEST(test_messages_say_where)
{
	char rule[200];

	parse_bad("call=pread,nth=0,fault=eio",
		  "at byte 15: bad value '0' for nth: expected a decimal number from 1");
	parse_bad("call=preadx", "at byte 5: bad value 'preadx' for call: expected a family (open, read");
	parse_bad("nth=1,fault=boom", "at byte 12: bad value 'boom' for fault: expected none, eintr, short");
	parse_bad("nth=1,path=x", "at byte 11: bad value 'x' for path: expected an absolute path");
	parse_bad("nth=1,colour=red", "at byte 6: unknown key 'colour'");
	parse_bad("nth=1,fault=eio,nth=2", "at byte 16: key 'nth' given twice");
	parse_bad("nth=1,=x", "at byte 6 ('=x'): expected KEY=VALUE");
	parse_bad("fault=eio,call=read", "the rule has no nth=");
	parse_bad("fault=eio,nth=1", "the rule has no call=");
	parse_bad("fault=eio", "the rule has no call= and no nth=");
	/* A long value is quoted in part. */
	memset(rule, 0, sizeof(rule));
	memcpy(rule, "call=", 5);
	memset(rule + 5, 'x', 150);
	parse_bad(rule,
		  "bad value 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... for call");
}

TEST(test_oversized)
{
	char rule[PATH_MAX + 64];

	memset(rule, 0, sizeof(rule));
	memcpy(rule, "path=/", 6);
	memset(rule + 6, 'a', PATH_MAX - 2); /* a path of PATH_MAX - 1 bytes: the longest */
	{
		struct fault_spec s;
		parse_ok(rule, &s);
		assert_int_equal(strlen(s.path), PATH_MAX - 1);
	}
	rule[6 + PATH_MAX - 2] = 'a';
	parse_bad(rule, "for path");
}

TEST(test_hits)
{
	struct fault_spec s;

	parse_ok("call=read,nth=3,fault=eintr", &s);
	assert_false(fault_spec_hits(&s, 1));
	assert_false(fault_spec_hits(&s, 2));
	assert_true(fault_spec_hits(&s, 3));
	assert_false(fault_spec_hits(&s, 4));
	parse_ok("call=read,nth=3,times=2,fault=eintr", &s);
	assert_true(fault_spec_hits(&s, 3));
	assert_true(fault_spec_hits(&s, 4));
	assert_false(fault_spec_hits(&s, 5));
	parse_ok("call=read,nth=3,times=0,fault=eio", &s);
	assert_false(fault_spec_hits(&s, 2));
	assert_true(fault_spec_hits(&s, 3));
	assert_true(fault_spec_hits(&s, 1000000));
	parse_ok("count=/c", &s);
	assert_false(fault_spec_hits(&s, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_rule),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_every_family_and_kind),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_messages_say_where),
	    cmocka_unit_test(test_oversized),
	    cmocka_unit_test(test_hits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
