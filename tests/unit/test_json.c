/*
 * test_json.c - unit tests for src/lib/json: every kind of value, every
 * escape, UTF-8 at its boundaries, each rejection with its line and column,
 * the limits (size, values, depth), the accessors and the string writer.
 */
#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/json.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static struct scone_json *parse_n(const char *text, size_t len)
{
	struct scone_json *v = NULL;
	enum scone_err err = scone_json_parse(text, len, NULL, &v);

	if (err)
		fail_msg("parse failed: %s: %s", scone_errname(err), scone_err_detail());
	assert_non_null(v);
	return v;
}

static struct scone_json *parse(const char *text)
{
	return parse_n(text, strlen(text));
}

/* Parse must fail with code and a detail containing detail. */
static void reject_n(const char *text, size_t len, const struct scone_json_limits *lim, enum scone_err code,
		     const char *detail)
{
	struct scone_json *v = (struct scone_json *)1;
	enum scone_err err = scone_json_parse(text, len, lim, &v);

	if (err != code || !strstr(scone_err_detail(), detail))
		fail_msg("input %.60s: got %s \"%s\", want %s \"%s\"", text, scone_errname(err),
			 scone_err_detail(), scone_errname(code), detail);
	assert_null(v);
}

static void reject(const char *text, const char *detail)
{
	reject_n(text, strlen(text), NULL, SCONE_ERR_MALFORMED, detail);
}

TEST(test_scalars)
{
	struct scone_json *v;
	int64_t i;
	bool b;

	v = parse("null");
	assert_true(scone_json_is_null(v));
	scone_json_free(v);
	v = parse(" true ");
	assert_ok(scone_json_bool(v, "x", &b));
	assert_true(b);
	scone_json_free(v);
	v = parse("\t\r\nfalse\n");
	assert_ok(scone_json_bool(v, "x", &b));
	assert_false(b);
	assert_int_equal(scone_json_int(v, "flag", &i), SCONE_ERR_INVALID);
	assert_non_null(strstr(scone_err_detail(), "flag: expected an integer, got boolean"));
	scone_json_free(v);
	v = parse("\"hi\"");
	assert_string_equal(scone_json_string(v, NULL), "hi");
	assert_int_equal(scone_json_bool(v, "s", &b), SCONE_ERR_INVALID);
	scone_json_free(v);
}

TEST(test_numbers)
{
	static const struct {
		const char *text;
		bool is_int;
		int64_t value;
	} cases[] = {
	    {"0", true, 0},
	    {"-0", true, 0},
	    {"42", true, 42},
	    {"-17", true, -17},
	    {"9223372036854775807", true, INT64_MAX},
	    {"-9223372036854775808", true, INT64_MIN},
	    {"9223372036854775808", false, 0},
	    {"-9223372036854775809", false, 0},
	    {"123456789012345678901234567890", false, 0},
	    {"1.5", false, 0},
	    {"1.0", false, 0},
	    {"1e3", false, 0},
	    {"-2E-7", false, 0},
	    {"0.25e+10", false, 0},
	};

	for (size_t k = 0; k < N_ELEMS(cases); k++) {
		struct scone_json *v = parse(cases[k].text);
		int64_t i = 99;
		assert_int_equal(v->kind, SCONE_JSON_NUMBER);
		assert_int_equal(v->is_int, cases[k].is_int);
		if (cases[k].is_int) {
			assert_ok(scone_json_int(v, "n", &i));
			assert_true(i == cases[k].value);
		} else {
			assert_int_equal(scone_json_int(v, "n", &i), SCONE_ERR_INVALID);
		}
		scone_json_free(v);
	}
}

TEST(test_containers)
{
	struct scone_json *v = parse("{\"a\": [1, \"two\", {\"x\": null}, []], \"b\": {}, \"\": true}");
	const struct scone_json *a, *c;

	assert_int_equal(v->kind, SCONE_JSON_OBJECT);
	assert_int_equal(scone_json_len(v), 3);
	a = scone_json_get(v, "a");
	assert_int_equal(scone_json_len(a), 4);
	assert_true(scone_json_at(a, 0)->is_int && scone_json_at(a, 0)->integer == 1);
	assert_string_equal(scone_json_string(scone_json_at(a, 1), NULL), "two");
	c = scone_json_at(a, 2);
	assert_true(scone_json_is_null(scone_json_get(c, "x")));
	assert_null(scone_json_get(c, "y"));
	assert_int_equal(scone_json_at(a, 3)->kind, SCONE_JSON_ARRAY);
	assert_int_equal(scone_json_len(scone_json_at(a, 3)), 0);
	assert_null(scone_json_at(a, 4));
	assert_null(scone_json_get(a, "a")); /* not an object */
	assert_int_equal(scone_json_get(v, "b")->kind, SCONE_JSON_OBJECT);
	assert_int_equal(scone_json_get(v, "")->kind, SCONE_JSON_BOOL);
	assert_string_equal(scone_json_at(v, 1)->key, "b");
	assert_int_equal(scone_json_len(scone_json_get(v, "")), 0);
	assert_null(scone_json_at(NULL, 0));
	assert_null(scone_json_get(NULL, "a"));
	assert_null(scone_json_string(a, NULL));
	scone_json_free(v);
	scone_json_free(NULL);
}

TEST(test_escapes)
{
	struct scone_json *v =
	    parse("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t A\\u0041 \\u00e9 \\u20AC \\ud83d\\ude00 \\u001f\"");
	static const char want[] = "q\" b\\ s/ \b\f\n\r\t AA \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x1f";
	size_t len;

	assert_string_equal(scone_json_string(v, &len), want);
	assert_int_equal(len, strlen(want));
	scone_json_free(v);
	/* Escaped keys compare by their decoded bytes. */
	v = parse("{\"\\u0061b\": 1}");
	assert_non_null(scone_json_get(v, "ab"));
	scone_json_free(v);
	reject("{\"ab\": 1, \"\\u0061b\": 2}", "duplicate key \"ab\"");
}

TEST(test_utf8_valid)
{
	static const char *const ok[] = {
	    "\"\x7f\"",		    /* U+007F */
	    "\"\xc2\x80\"",	    /* U+0080 */
	    "\"\xdf\xbf\"",	    /* U+07FF */
	    "\"\xe0\xa0\x80\"",	    /* U+0800 */
	    "\"\xed\x9f\xbf\"",	    /* U+D7FF */
	    "\"\xee\x80\x80\"",	    /* U+E000 */
	    "\"\xef\xbf\xbf\"",	    /* U+FFFF */
	    "\"\xf0\x90\x80\x80\"", /* U+10000 */
	    "\"\xf4\x8f\xbf\xbf\"", /* U+10FFFF */
	    "\"\\udbff\\udfff\"",   /* U+10FFFF escaped */
	};

	for (size_t i = 0; i < N_ELEMS(ok); i++)
		scone_json_free(parse(ok[i]));
}

TEST(test_utf8_invalid)
{
	static const char *const bad[] = {
	    "\"\x80\"",		    /* lone continuation */
	    "\"\xc0\x80\"",	    /* overlong NUL */
	    "\"\xc1\xbf\"",	    /* overlong */
	    "\"\xe0\x80\x80\"",	    /* overlong 3-byte */
	    "\"\xe0\x9f\xbf\"",	    /* overlong 3-byte */
	    "\"\xed\xa0\x80\"",	    /* UTF-8 encoded surrogate */
	    "\"\xf0\x8f\xbf\xbf\"", /* overlong 4-byte */
	    "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
	    "\"\xf5\x80\x80\x80\"",
	    "\"\xff\"",
	    "\"\xe2\x82\"", /* truncated before the quote */
	    "\"\xe2\x82",   /* truncated at the end of input */
	    "\"a\xc3(\"",
	};

	for (size_t i = 0; i < N_ELEMS(bad); i++)
		reject(bad[i], "invalid UTF-8");
	reject("[\"ok\",\n \"x\xc3\"]", "line 2, column 4: invalid UTF-8");
}

TEST(test_string_rejections)
{
	reject("\"abc", "line 1, column 5: unterminated string");
	reject("\"a\x01\"", "line 1, column 3: control character 0x01");
	reject("\"a\nb\"", "control character 0x0a");
	reject("\"\\x\"", "line 1, column 2: invalid escape sequence");
	reject("\"\\", "unexpected end of input, expected an escape character");
	reject("\"\\u12\"", "expected 4 hex digits after \\u");
	reject("\"\\u12g4\"", "line 1, column 6: unexpected 'g', expected 4 hex digits");
	reject("\"\\u0000\"", "line 1, column 2: \\u0000 is not allowed");
	reject("\"\\ud800\"", "unpaired high surrogate \\ud800");
	reject("\"\\ud800\\n\"", "unpaired high surrogate");
	reject("\"\\ud800\\u0041\"", "unpaired high surrogate");
	reject("\"\\ud800\\ud800\"", "unpaired high surrogate");
	reject("\"x\\udc00\"", "line 1, column 3: unpaired low surrogate \\udc00");
	reject_n("\"a\0b\"", 5, NULL, SCONE_ERR_MALFORMED, "control character 0x00");
}

TEST(test_syntax_rejections)
{
	reject("", "line 1, column 1: unexpected end of input, expected a value");
	reject("  \n ", "line 2, column 2: unexpected end of input");
	reject("[1,]", "line 1, column 4: unexpected ']', expected a value");
	reject("[1 2]", "line 1, column 4: unexpected '2', expected ',' or ']'");
	reject("[1,\n2", "line 2, column 2: unexpected end of input, expected ',' or ']'");
	reject("{\"a\" 1}", "line 1, column 6: unexpected '1', expected ':'");
	reject("{1: 2}", "line 1, column 2: unexpected '1', expected a member name");
	reject("{\"a\": 1,}", "line 1, column 9: unexpected '}', expected a member name");
	reject("{\"a\": 1 \"b\": 2}", "expected ',' or '}'");
	reject("{\n  \"a\": 1,\n  \"a\": 2\n}", "line 3, column 8: duplicate key \"a\"");
	reject("[] []", "line 1, column 4: unexpected data after the JSON value");
	reject("1 x", "unexpected data after");
	reject_n("[1]\0", 4, NULL, SCONE_ERR_MALFORMED, "line 1, column 4: unexpected data");
	reject("tru", "unexpected 't', expected a value");
	reject("nul", "expected a value");
	reject("True", "unexpected 'T'");
	reject("truex", "line 1, column 5: unexpected data");
	reject("'a'", "unexpected '''");
	reject("\x01", "unexpected byte 0x01");
	reject("01", "line 1, column 1: number with a leading zero");
	reject("-01", "leading zero");
	reject("1.", "expected a digit after '.'");
	reject("1.e5", "expected a digit after '.'");
	reject("1e", "expected a digit in the exponent");
	reject("1e+", "expected a digit in the exponent");
	reject("-", "expected a digit");
	reject("-a", "unexpected 'a', expected a digit");
	reject("+1", "unexpected '+'");
	reject(".5", "unexpected '.'");
	reject("NaN", "unexpected 'N'");
	reject("1 /* c */", "unexpected data");
}

TEST(test_many_keys)
{
	size_t cap = 20 * 2000 + 16, n = 1;
	char *text = malloc(cap);
	struct scone_json *v;

	assert_non_null(text);
	text[0] = '{';
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(text + n, cap - n, "%s\"k%d\":%d", i ? "," : "", i, i);
	char *p = text + n;
	memcpy(p, "}", 2);
	v = parse(text);
	assert_int_equal(scone_json_len(v), 2000);
	assert_int_equal(scone_json_get(v, "k1999")->integer, 1999);
	scone_json_free(v);
	memcpy(p, ",\"k7\":0}", 9);
	reject(text, "duplicate key \"k7\"");
	free(text);
}

static char *nested(unsigned depth)
{
	char *s = malloc(2 * depth + 1);

	assert_non_null(s);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * depth] = '\0';
	return s;
}

TEST(test_limits)
{
	struct scone_json_limits lim = {.max_size = 100, .max_nodes = 4, .max_depth = 2};
	struct scone_json *v;
	char *s;

	s = nested(SCONE_JSON_MAX_DEPTH);
	scone_json_free(parse(s));
	free(s);
	s = nested(SCONE_JSON_MAX_DEPTH + 1);
	reject_n(s, strlen(s), NULL, SCONE_ERR_TOO_LARGE, "line 1, column 65: nested deeper than 64 levels");
	free(s);
	/* A larger max_depth is capped. */
	lim.max_depth = 1000;
	lim.max_size = 1000;
	lim.max_nodes = 1000;
	s = nested(200);
	reject_n(s, strlen(s), &lim, SCONE_ERR_TOO_LARGE, "nested deeper than 64");
	free(s);
	lim.max_depth = 2;
	lim.max_size = 100;
	lim.max_nodes = 4;
	assert_ok(scone_json_parse("[[1]]", 5, &lim, &v));
	scone_json_free(v);
	reject_n("[[[]]]", 6, &lim, SCONE_ERR_TOO_LARGE, "column 3: nested deeper than 2 levels");
	assert_ok(scone_json_parse("[1,2,3]", 7, &lim, &v));
	scone_json_free(v);
	reject_n("[1,2,3,4]", 9, &lim, SCONE_ERR_TOO_LARGE, "line 1, column 8: more than 4 values");
	reject_n("{\"a\":1,\"b\":{\"c\":2,\"d\":3}}", 25, &lim, SCONE_ERR_TOO_LARGE, "more than 4 values");
	s = calloc(1, 102);
	assert_non_null(s);
	memset(s, ' ', 101);
	s[0] = '1';
	reject_n(s, 101, &lim, SCONE_ERR_TOO_LARGE, "101 bytes exceeds the 100-byte limit");
	assert_ok(scone_json_parse(s, 100, &lim, &v));
	scone_json_free(v);
	free(s);
}

TEST(test_put_string)
{
	static const char *const cases[] = {"", "plain", "q\"b\\", "\x01\x1f\n\t",
					    "caf\xc3\xa9 \xf0\x9f\x98\x80"};

	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		struct scone_wbuf w;
		struct scone_json *v;
		scone_wbuf_init(&w, 1024, 0);
		assert_ok(scone_json_put_string(&w, cases[i]));
		v = parse_n((const char *)w.data, w.size);
		assert_string_equal(scone_json_string(v, NULL), cases[i]);
		scone_json_free(v);
		scone_wbuf_free(&w);
	}
}

TEST(test_kind_names)
{
	assert_string_equal(scone_json_kind_name(SCONE_JSON_OBJECT), "object");
	assert_string_equal(scone_json_kind_name(SCONE_JSON_NULL), "null");
	assert_string_equal(scone_json_kind_name((enum scone_json_kind)42), "?");
}

/* [offset, end) of a value is its exact text: signed documents are checked over it (Intel collateral). */
TEST(test_value_text)
{
	static const char doc[] = " {\"a\" : {\"x\": \"}\\\"\" , \"y\":[1, 2.5e3]} ,\"s\":\"t\"} ";
	struct scone_json *v = parse(doc);
	const struct scone_json *a = scone_json_get(v, "a"), *y = scone_json_get(a, "y"),
				*s = scone_json_get(v, "s");

	assert_int_equal(v->offset, 1);
	assert_int_equal(v->end, strlen(doc) - 1);
	assert_int_equal(a->end - a->offset, strlen("{\"x\": \"}\\\"\" , \"y\":[1, 2.5e3]}"));
	assert_memory_equal(doc + a->offset, "{\"x\": \"}\\\"\" , \"y\":[1, 2.5e3]}", a->end - a->offset);
	assert_memory_equal(doc + y->offset, "[1, 2.5e3]", y->end - y->offset);
	assert_memory_equal(doc + s->offset, "\"t\"", s->end - s->offset);
	scone_json_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_value_text),
	    cmocka_unit_test(test_scalars),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_containers),
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_utf8_valid),
	    cmocka_unit_test(test_utf8_invalid),
	    cmocka_unit_test(test_string_rejections),
	    cmocka_unit_test(test_syntax_rejections),
	    cmocka_unit_test(test_many_keys),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_put_string),
	    cmocka_unit_test(test_kind_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
