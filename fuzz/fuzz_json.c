/*
 * fuzz_json.c - libFuzzer target for the JSON parser (src/lib/json.c) and
 * the runtime's configuration parser on top of it (src/runtime/cas_client.c).
 *
 * The input is parsed with the default limits and with tight ones. A tree
 * that parses must hold the parser's promises: every string and key is
 * NUL-terminated at its length with no NUL inside (\u0000 is refused) and is
 * valid UTF-8; no object repeats a key; arrays and objects stay within the
 * depth limit. The tree is then written back (scone_json_put_string for
 * strings, integers in decimal, other numbers as 0.5) and parsed again: the
 * two trees must agree. Seeds: fuzz/corpus/json.
 */
#include "lib/json.h"
#include "runtime/cas_client.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool valid_utf8(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf) {
			len = 2;
			cp = s[i] & 0x1f;
		} else if (s[i] >= 0xe0 && s[i] <= 0xef) {
			len = 3;
			cp = s[i] & 0x0f;
		} else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
			len = 4;
			cp = s[i] & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static void check_text(const char *s, size_t len)
{
	CHECK(s != NULL);
	CHECK(s[len] == '\0' && strlen(s) == len);
	CHECK(valid_utf8((const uint8_t *)s, len));
}

static void walk(const struct scone_json *v, unsigned depth, bool member)
{
	CHECK(depth <= SCONE_JSON_MAX_DEPTH + 1);
	CHECK(member == (v->key != NULL));
	if (member)
		check_text(v->key, v->key_len);
	if (v->kind == SCONE_JSON_STRING)
		check_text(v->str, v->str_len);
	else
		CHECK(v->str == NULL);
	if (v->kind != SCONE_JSON_ARRAY && v->kind != SCONE_JSON_OBJECT) {
		CHECK(v->count == 0);
		return;
	}
	for (size_t i = 0; i < v->count; i++) {
		walk(v->items[i], depth + 1, v->kind == SCONE_JSON_OBJECT);
		if (v->kind == SCONE_JSON_OBJECT)
			CHECK(scone_json_get(v, v->items[i]->key) == v->items[i]); /* keys are unique */
	}
}

static void write_value(struct scone_wbuf *w, const struct scone_json *v)
{
	char num[32];

	switch (v->kind) {
	case SCONE_JSON_NULL:
		CHECK(scone_wbuf_put(w, "null", 4) == SCONE_ERR_OK);
		break;
	case SCONE_JSON_BOOL:
		CHECK(scone_wbuf_put(w, v->boolean ? "true" : "false", v->boolean ? 4 : 5) == SCONE_ERR_OK);
		break;
	case SCONE_JSON_NUMBER:
		snprintf(num, sizeof(num), "%" PRId64, v->integer);
		if (!v->is_int)
			snprintf(num, sizeof(num), "%s", "0.5");
		CHECK(scone_wbuf_put(w, num, strlen(num)) == SCONE_ERR_OK);
		break;
	case SCONE_JSON_STRING:
		CHECK(scone_json_put_string(w, v->str) == SCONE_ERR_OK);
		break;
	default:
		CHECK(scone_wbuf_u8(w, v->kind == SCONE_JSON_ARRAY ? '[' : '{') == SCONE_ERR_OK);
		for (size_t i = 0; i < v->count; i++) {
			if (i)
				CHECK(scone_wbuf_u8(w, ',') == SCONE_ERR_OK);
			if (v->kind == SCONE_JSON_OBJECT) {
				CHECK(scone_json_put_string(w, v->items[i]->key) == SCONE_ERR_OK);
				CHECK(scone_wbuf_u8(w, ':') == SCONE_ERR_OK);
			}
			write_value(w, v->items[i]);
		}
		CHECK(scone_wbuf_u8(w, v->kind == SCONE_JSON_ARRAY ? ']' : '}') == SCONE_ERR_OK);
	}
}

static void same(const struct scone_json *a, const struct scone_json *b)
{
	CHECK(a->kind == b->kind && a->count == b->count && a->boolean == b->boolean &&
	      a->is_int == b->is_int);
	CHECK(!a->is_int || a->integer == b->integer);
	CHECK(a->key_len == b->key_len && (!a->key || memcmp(a->key, b->key, a->key_len) == 0));
	CHECK(a->str_len == b->str_len && (!a->str || memcmp(a->str, b->str, a->str_len) == 0));
	for (size_t i = 0; i < a->count; i++)
		same(a->items[i], b->items[i]);
}

static void roundtrip(const struct scone_json *v)
{
	struct scone_wbuf w;
	struct scone_json *again = NULL;
	enum scone_err err;

	scone_wbuf_init(&w, 64u << 20, 1);
	write_value(&w, v);
	err = scone_json_parse((const char *)w.data, w.size,
			       &(struct scone_json_limits){SIZE_MAX, SIZE_MAX, 64}, &again);
	if (err) {
		fprintf(stderr, "written tree does not parse: %s\n", scone_err_detail());
		abort();
	}
	same(v, again);
	scone_json_free(again);
	scone_wbuf_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct scone_json_limits tight = {4096, 64, 8};
	struct scone_json *v = NULL;
	struct scone_runtime_config *cfg = NULL;

	if (scone_json_parse((const char *)data, size, NULL, &v) == SCONE_ERR_OK) {
		walk(v, 0, false);
		roundtrip(v);
		scone_json_free(v);
	} else {
		CHECK(v == NULL);
		CHECK(strncmp(scone_err_detail(), "json: ", 6) == 0);
	}
	if (scone_json_parse((const char *)data, size, &tight, &v) == SCONE_ERR_OK) {
		walk(v, 0, false);
		scone_json_free(v);
	}
	if (scone_runtime_config_parse((const char *)data, size, &cfg) == SCONE_ERR_OK) {
		CHECK(cfg->argv[cfg->argc] == NULL);
		scone_runtime_config_free(cfg);
	}
	scone_err_clear();
	return 0;
}
