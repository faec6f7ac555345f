/*
 * test_memwipe.c - unit tests for src/cas/memwipe.c and for where scone-cas
 * keeps keys and secret values: the wiping allocator that jansson and
 * libevent use in scone-cas (every block it gives back is all zeros by the
 * time it reaches the real free, json_dumps buffers and evbuffer chains
 * included), with a positive control (the same checks without it see the
 * secret in freed memory); the store's sealing key in memory marked
 * "do not dump" (/proc/self/smaps); and secret values of a parsed secret
 * set in OpenSSL's secure heap once scone-cas set one up.
 *
 * The backend below records every block the allocator takes from it, so
 * that its free can check the whole block.
 */
#include "helpers.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cas/memwipe.h"
#include "cas/secrets.h"
#include "cas/store.h"
#include "lib/crypto.h"
#include "policy/policy.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define SLOTS 65536
#define SECRET "TOPSECRET-9f3c21-never-in-freed-memory"

static struct {
	void *p;
	size_t n;
} slots[SLOTS];
static size_t frees, dirty_frees, secret_frees;

static size_t slot_of(const void *p)
{
	return ((uintptr_t)p >> 4) % SLOTS;
}

static void *rec_alloc(size_t n)
{
	void *p = malloc(n);
	size_t i;

	if (!p)
		return NULL;
	for (i = slot_of(p); slots[i].p; i = (i + 1) % SLOTS)
		;
	slots[i].p = p;
	slots[i].n = n;
	return p;
}

/* Checks the block as it arrives, then frees it. */
static void rec_free(void *p)
{
	size_t i, n;
	const uint8_t *b = p;
	bool zero = true;

	if (!p)
		return;
	for (i = slot_of(p); slots[i].p != p; i = (i + 1) % SLOTS)
		assert_non_null(slots[i].p);
	n = slots[i].n;
	for (size_t k = 0; k < n; k++)
		zero &= b[k] == 0;
	if (memmem(p, n, SECRET, strlen(SECRET)))
		secret_frees++;
	frees++;
	dirty_frees += !zero;
	/* Remove, keeping the probe chains intact (backward-shift deletion). */
	slots[i].p = NULL;
	for (size_t j = (i + 1) % SLOTS; slots[j].p; j = (j + 1) % SLOTS) {
		void *q = slots[j].p;
		size_t qn = slots[j].n;
		slots[j].p = NULL;
		size_t k;
		for (k = slot_of(q); slots[k].p; k = (k + 1) % SLOTS)
			;
		slots[k].p = q;
		slots[k].n = qn;
	}
	free(p);
}

static void counts_reset(void)
{
	frees = dirty_frees = secret_frees = 0;
}

/* A configuration-like document with a secret, dumped and freed. */
static void json_round(void)
{
	json_t *j = json_pack("{s:s, s:{s:s}}", "config_id", "a/b", "environment", "PASSWORD", SECRET);
	char *text;

	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT);
	assert_non_null(text);
	assert_non_null(strstr(text, SECRET));
	cas_json_free_text(text);
	json_decref(j);
}

TEST(test_control_without_wiping)
{
	/* The detector works: jansson straight on the recording backend leaves the secret behind. */
	json_set_alloc_funcs(rec_alloc, rec_free);
	counts_reset();
	json_round();
	assert_true(frees > 0);
	assert_true(secret_frees > 0);
	assert_true(dirty_frees > 0);
}

TEST(test_jansson_blocks_wiped)
{
	json_t *big;
	char *text;

	cas_memwipe_set_backend(rec_alloc, rec_free);
	json_set_alloc_funcs(cas_memwipe_malloc, cas_memwipe_free);
	counts_reset();
	json_round();
	/* A large document grows json_dumps' buffer several times: each old buffer is wiped too. */
	big = json_array();
	for (int i = 0; i < 2000; i++)
		json_array_append_new(big, json_string(SECRET));
	text = json_dumps(big, 0);
	assert_non_null(text);
	cas_json_free_text(text);
	json_decref(big);
	assert_true(frees > 2000);
	assert_int_equal(secret_frees, 0);
	assert_int_equal(dirty_frees, 0);
}

TEST(test_realloc_wipes_old_block)
{
	char *p;

	cas_memwipe_set_backend(rec_alloc, rec_free);
	counts_reset();
	p = cas_memwipe_realloc(NULL, 64);
	assert_non_null(p);
	memcpy(p, SECRET, strlen(SECRET) + 1);
	p = cas_memwipe_realloc(p, 4096);
	assert_non_null(p);
	assert_string_equal(p, SECRET);
	p = cas_memwipe_realloc(p, 8);
	assert_memory_equal(p, SECRET, 8);
	cas_memwipe_free(p);
	cas_memwipe_free(NULL);
	assert_int_equal(frees, 3);
	assert_int_equal(dirty_frees, 0);
	/* Alignment as malloc's. */
	p = cas_memwipe_malloc(1);
	assert_int_equal((uintptr_t)p % 16, 0);
	cas_memwipe_free(p);
	assert_null(cas_memwipe_malloc(SIZE_MAX - 4));
}

TEST(test_libevent_chains_wiped)
{
	struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
	char out[64];

	assert_non_null(a);
	assert_non_null(b);
	counts_reset();
	for (int i = 0; i < 500; i++)
		assert_int_equal(evbuffer_add(a, SECRET, strlen(SECRET)), 0);
	/* Moving part of a chain copies it; draining and freeing gives the blocks back. */
	assert_true(evbuffer_remove_buffer(a, b, 5000) > 0);
	assert_int_equal(evbuffer_remove(b, out, sizeof(out)), (int)sizeof(out));
	evbuffer_free(a);
	evbuffer_free(b);
	assert_true(frees > 0);
	assert_int_equal(secret_frees, 0);
	assert_int_equal(dirty_frees, 0);
}

TEST(test_json_free_text_default_allocator)
{
	char *text;
	json_t *j;

	json_set_alloc_funcs(malloc, free);
	j = json_pack("{s:s}", "k", SECRET);
	text = json_dumps(j, 0);
	cas_json_free_text(text);
	cas_json_free_text(NULL);
	json_decref(j);
}

/* The VmFlags of the mapping that holds p, from /proc/self/smaps ("" if not found). */
static void vm_flags_of(const void *p, char *flags, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false;

	flags[0] = '\0';
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			continue;
		}
		if (inside && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, size, "%s", line + 8);
			break;
		}
	}
	fclose(f);
}

TEST(test_sealing_key_not_dumped)
{
	uint8_t master[32];
	struct scone_store_sealer *s;
	char flags[512];

	memset(master, 0x5a, sizeof(master));
	assert_ok(scone_store_sealer_new(master, &s));
	vm_flags_of(scone_store_sealer_key(s), flags, sizeof(flags));
	if (!strstr(flags, " dd"))
		fail_msg("the sealing key's mapping is not excluded from dumps: VmFlags:%s", flags);
	scone_store_sealer_free(s);
}

/* With the secure heap scone-cas sets up, a parsed set's values are in it, and leave it when freed. */
TEST(test_secret_values_in_secure_heap)
{
	static const char yaml[] =
	    "name: mem\nversion: \"0.3\"\nsecurity:\n  attestation:\n    mode: none\n"
	    "secrets:\n  - {name: pw, kind: ascii, size: 40}\n  - {name: k, kind: private-key}\n";
	struct scone_session *s = NULL;
	struct scone_secret_set *set = NULL, *again = NULL;
	struct scone_wbuf blob;
	size_t before;

	assert_ok(cas_memwipe_harden_process(1u << 20));
	assert_true(CRYPTO_secure_malloc_initialized());
	assert_ok(scone_session_parse(yaml, sizeof(yaml) - 1, &s, NULL));
	assert_ok(scone_secrets_generate(s, NULL, &set));
	scone_wbuf_init(&blob, 1u << 20, 1);
	assert_ok(scone_secrets_serialize(set, &blob));
	before = CRYPTO_secure_used();
	assert_ok(scone_secrets_parse(blob.data, blob.size, &again));
	/* 40 bytes of ascii and a PKCS#8 key at least, in 32-byte units. */
	assert_true(CRYPTO_secure_used() >= before + 40 + 100);
	scone_secrets_free(again);
	assert_int_equal(CRYPTO_secure_used(), before);
	scone_wbuf_free(&blob);
	scone_secrets_free(set);
	scone_session_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_control_without_wiping),
	    cmocka_unit_test(test_jansson_blocks_wiped),
	    cmocka_unit_test(test_realloc_wipes_old_block),
	    cmocka_unit_test(test_libevent_chains_wiped),
	    cmocka_unit_test(test_json_free_text_default_allocator),
	    cmocka_unit_test(test_sealing_key_not_dumped),
	    cmocka_unit_test(test_secret_values_in_secure_heap),
	};

	/* libevent takes its allocator only before its first allocation: here, first of all. */
	cas_memwipe_set_backend(rec_alloc, rec_free);
	event_set_mem_functions(cas_memwipe_malloc, cas_memwipe_realloc, cas_memwipe_free);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
