/*
 * test_vcache.c - the volumes' shared read cache (src/runtime/vcache.c):
 * what is put is read back whole or not at all; what is forgotten is never
 * read; names go with their own epoch; a reader racing the writer never
 * takes a half-written block, nor blocks of two versions of a file; keys
 * sharing a set of slots stay; pins count.
 */
#include <pthread.h>
#include <time.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "helpers.h"
#include "runtime/vcache.h"

static void *g_map;

static int setup(void **state)
{
	(void)state;
	g_map = mmap(NULL, vcache_size(8), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(g_map != MAP_FAILED);
	assert_true(vcache_attach(g_map, vcache_size(8), 8));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	munmap(g_map, vcache_size(8));
	return 0;
}

static const uint8_t ID[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t ID2[16] = {16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};

/* A file of size bytes (byte i is i * 7) put as a server would after reading all of it. */
static void put_file(const uint8_t id[16], uint8_t *data, size_t size)
{
	struct scone_vstat st = {.size = size, .mode = 0600};

	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 7);
	memcpy(st.file_id, id, 16);
	vcache_put_stat(0, id, &st);
	vcache_put(0, id, 0, data, size, size);
}

/*
 * Keys share a set of slots: at half the slots filled, with one slot per
 * key about a fifth of them would push another out; with sets nearly all
 * stay (the hash is fixed, so the counts are too). A key put again keeps
 * its slot, and a forgotten one frees its slot for the next key.
 */
static void test_sets(void **state)
{
	static uint8_t block[VCACHE_BLOCK], b[VCACHE_BLOCK];
	uint8_t id[16] = {0}, found[16];
	char path[32];
	struct scone_vstat st = {.size = 0, .mode = 0644};
	size_t got, stats = 0, names = 0, blocks = 0;

	(void)state;
	vcache_forget_all();
	for (unsigned f = 0; f < 64; f++) { /* 128 status and name entries in 256 slots */
		id[0] = (uint8_t)f, id[1] = 0xA5;
		memcpy(st.file_id, id, 16);
		vcache_put_stat(0, id, &st);
		snprintf(path, sizeof(path), "/site/f%u.bin", f);
		vcache_put_name(0, path, id);
	}
	for (unsigned f = 0; f < 64; f++) {
		id[0] = (uint8_t)f, id[1] = 0xA5;
		stats += vcache_stat(0, id, &st);
		snprintf(path, sizeof(path), "/site/f%u.bin", f);
		names += vcache_name(0, path, found) && memcmp(found, id, 16) == 0;
	}
	assert_true(stats + names >= 120);
	/* 512 blocks of 8 files in 1024 slots. */
	st.size = 64 * VCACHE_BLOCK;
	for (unsigned f = 0; f < 8; f++) {
		id[0] = (uint8_t)f, id[1] = 0x5A;
		vcache_put_stat(0, id, &st);
		for (unsigned k = 0; k < 64; k++) {
			memset(block, (int)(f * 64 + k), sizeof(block));
			vcache_put(0, id, (uint64_t)k * VCACHE_BLOCK, block, VCACHE_BLOCK, st.size);
		}
	}
	for (unsigned f = 0; f < 8; f++) {
		id[0] = (uint8_t)f, id[1] = 0x5A;
		for (unsigned k = 0; k < 64; k++)
			if (vcache_read(0, id, b, VCACHE_BLOCK, (uint64_t)k * VCACHE_BLOCK, &got)) {
				assert_int_equal(got, VCACHE_BLOCK);
				assert_int_equal(b[0], (uint8_t)(f * 64 + k));
				assert_int_equal(b[VCACHE_BLOCK - 1], (uint8_t)(f * 64 + k));
				blocks++;
			}
	}
	assert_true(blocks >= 480);
	/* Put again: the same slot, never a second copy a forget would miss. */
	id[0] = 3, id[1] = 0x5A;
	memset(block, 0xEE, sizeof(block));
	vcache_put(0, id, 0, block, VCACHE_BLOCK, st.size);
	vcache_put(0, id, 0, block, VCACHE_BLOCK, st.size);
	vcache_forget(0, id, 0, 1);
	assert_false(vcache_read(0, id, b, 1, 0, &got));
}

/* Pins count opens per file; an unpin too many never makes a count negative. */
static void test_pins(void **state)
{
	(void)state;
	assert_false(vcache_pinned(0, ID));
	assert_true(vcache_pin(0, ID));
	assert_true(vcache_pin(0, ID));
	assert_true(vcache_pinned(0, ID));
	assert_false(vcache_pinned(1, ID)); /* another mount's file (hashes apart here) */
	vcache_unpin(0, ID);
	assert_true(vcache_pinned(0, ID));
	vcache_unpin(0, ID);
	assert_false(vcache_pinned(0, ID));
	vcache_unpin(0, ID);
	assert_true(vcache_pin(0, ID));
	assert_true(vcache_pinned(0, ID));
	vcache_unpin(0, ID);
	assert_false(vcache_pinned(0, ID));
	vcache_forget_all(); /* pins are not the cache's entries: they outlive a forget */
	assert_true(vcache_pin(0, ID2));
	vcache_forget_all();
	assert_true(vcache_pinned(0, ID2));
	vcache_unpin(0, ID2);
}

static void test_empty_misses(void **state)
{
	uint8_t b[16], id[16];
	size_t got;
	struct scone_vstat st;

	(void)state;
	vcache_forget_all();
	assert_false(vcache_used() && vcache_read(0, ID, b, sizeof(b), 0, &got));
	assert_false(vcache_used() && vcache_stat(0, ID, &st));
	assert_false(vcache_used() && vcache_name(0, "/a", id));
}

static void test_put_read(void **state)
{
	static uint8_t data[3 * VCACHE_BLOCK + 100], b[sizeof(data) + 50];
	size_t got = 0;
	struct scone_vstat st;

	(void)state;
	vcache_forget_all();
	put_file(ID, data, sizeof(data));
	assert_true(vcache_stat(0, ID, &st));
	assert_int_equal(st.size, sizeof(data));
	/* Whole, across blocks, to the end (short), and at the end (0). */
	assert_true(vcache_read(0, ID, b, sizeof(b), 0, &got));
	assert_int_equal(got, sizeof(data));
	assert_memory_equal(b, data, sizeof(data));
	assert_true(vcache_read(0, ID, b, 5000, 4000, &got));
	assert_int_equal(got, 5000);
	assert_memory_equal(b, data + 4000, 5000);
	assert_true(vcache_read(0, ID, b, 4096, sizeof(data) - 10, &got));
	assert_int_equal(got, 10);
	assert_true(vcache_read(0, ID, b, 10, sizeof(data), &got));
	assert_int_equal(got, 0);
	/* Another mount, another file: nothing. */
	assert_false(vcache_read(1, ID, b, 10, 0, &got));
	assert_false(vcache_read(0, ID2, b, 10, 0, &got));
}

static void test_partial_blocks_not_cached(void **state)
{
	static uint8_t data[2 * VCACHE_BLOCK], b[VCACHE_BLOCK];
	struct scone_vstat st = {.size = sizeof(data)};
	size_t got;

	(void)state;
	vcache_forget_all();
	vcache_put_stat(0, ID, &st);
	/* A read from 100 to 5000 of a longer file: no whole block in it, and not the end. */
	vcache_put(0, ID, 100, data + 100, 4900, sizeof(data));
	assert_false(vcache_read(0, ID, b, 100, 200, &got));
	assert_false(vcache_read(0, ID, b, 100, 4200, &got));
}

static void test_forget(void **state)
{
	static uint8_t data[3 * VCACHE_BLOCK], b[VCACHE_BLOCK];
	size_t got;
	struct scone_vstat st;

	(void)state;
	vcache_forget_all();
	put_file(ID, data, sizeof(data));
	put_file(ID2, data, sizeof(data));
	/* A write of 10 bytes in the second block: that block and the status go. */
	vcache_forget(0, ID, VCACHE_BLOCK + 5, 10);
	assert_false(vcache_stat(0, ID, &st));
	assert_false(vcache_read(0, ID, b, 10, 0, &got)); /* no status: no end known */
	memset(&st, 0, sizeof(st));
	st.size = sizeof(data);
	vcache_put_stat(0, ID, &st);
	assert_true(vcache_read(0, ID, b, 10, 0, &got));
	assert_false(vcache_read(0, ID, b, 10, VCACHE_BLOCK, &got));
	assert_true(vcache_read(0, ID, b, 10, 2 * VCACHE_BLOCK, &got));
	/* The other file is untouched; then everything goes. */
	assert_true(vcache_read(0, ID2, b, 10, VCACHE_BLOCK, &got));
	vcache_forget_all();
	assert_false(vcache_read(0, ID2, b, 10, 0, &got));
}

static void test_whole(void **state)
{
	static uint8_t data[2 * VCACHE_BLOCK + 10];
	struct scone_vstat st = {.size = 0};

	(void)state;
	vcache_forget_all();
	assert_false(vcache_whole(0, ID, 1 << 20)); /* nothing */
	put_file(ID, data, sizeof(data));
	assert_true(vcache_whole(0, ID, 1 << 20));
	assert_false(vcache_whole(0, ID, 100)); /* larger than asked */
	vcache_forget(0, ID, VCACHE_BLOCK, 1);	/* the middle block goes */
	st.size = sizeof(data);
	vcache_put_stat(0, ID, &st);
	assert_false(vcache_whole(0, ID, 1 << 20));
	memset(&st, 0, sizeof(st)); /* an empty file: its status is all */
	vcache_put_stat(0, ID2, &st);
	assert_true(vcache_whole(0, ID2, 1 << 20));
}

static void test_short_last_block(void **state)
{
	static uint8_t data[VCACHE_BLOCK + 100], b[VCACHE_BLOCK];
	struct scone_vstat st;
	size_t got;

	(void)state;
	vcache_forget_all();
	put_file(ID, data, sizeof(data));
	/* The file grew past its last block by a write elsewhere: the short block serves only its bytes. */
	vcache_forget(0, ID, 3 * VCACHE_BLOCK, 10);
	memset(&st, 0, sizeof(st));
	st.size = 3 * VCACHE_BLOCK + 10;
	vcache_put_stat(0, ID, &st);
	assert_true(vcache_read(0, ID, b, 100, VCACHE_BLOCK, &got));
	assert_int_equal(got, 100);
	assert_false(vcache_read(0, ID, b, 101, VCACHE_BLOCK, &got));
}

static void test_names(void **state)
{
	static uint8_t data[100], b[100];
	uint8_t id[16];
	size_t got;

	(void)state;
	vcache_forget_all();
	put_file(ID, data, sizeof(data));
	vcache_put_name(0, "/www/a.html", ID);
	assert_true(vcache_name(0, "/www/a.html", id));
	assert_memory_equal(id, ID, 16);
	assert_false(vcache_name(0, "/www/a.htm", id));
	assert_false(vcache_name(0, "/www/a.html2", id));
	assert_false(vcache_name(1, "/www/a.html", id));
	/* A rename or removal: names go, an open file's data stays. */
	vcache_forget_names();
	assert_false(vcache_name(0, "/www/a.html", id));
	assert_true(vcache_read(0, ID, b, sizeof(b), 0, &got));
	assert_int_equal(got, sizeof(data));
	/* Too long a path is not cached. */
	char longp[VCACHE_BLOCK + 10];
	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	vcache_put_name(0, longp, ID);
	assert_false(vcache_name(0, longp, id));
}

/* A cache laid out by another process is taken as its head says, if that fits; 0 MiB is none. */
static void test_layout(void **state)
{
	static uint8_t data[100], b[100];
	size_t got, size = vcache_size(8);
	uint32_t *head = g_map;

	(void)state;
	vcache_forget_all();
	put_file(ID, data, sizeof(data));
	assert_true(vcache_attach(g_map, size, VCACHE_MAPPED)); /* as an exec'd program maps it */
	assert_true(vcache_read(0, ID, b, sizeof(b), 0, &got));
	assert_false(vcache_attach(g_map, size - 4096, VCACHE_MAPPED)); /* shorter than its head says */
	assert_false(vcache_read(0, ID, b, sizeof(b), 0, &got));
	head[8] ^= 1; /* another runtime's layout */
	assert_false(vcache_attach(g_map, size, VCACHE_MAPPED));
	head[8] ^= 1;
	head[5] = 3; /* data slots: not a power of two */
	assert_false(vcache_attach(g_map, size, VCACHE_MAPPED));
	head[5] = 1u << 30; /* more than fits */
	assert_false(vcache_attach(g_map, size, VCACHE_MAPPED));
	assert_true(vcache_attach(g_map, size, 0)); /* 0 MiB: no cache, nothing put or read */
	put_file(ID, data, sizeof(data));
	assert_false(vcache_read(0, ID, b, sizeof(b), 0, &got));
	assert_true(vcache_size(0) < 4096 && vcache_size(8) > (8u << 20));
	memset(g_map, 0, 4096);
	assert_true(vcache_attach(g_map, size, 8)); /* and back, for the tests after */
}

/* A writer killed in the middle of a slot (a crashed server) leaves its count odd: the next writer still ends
 * even. */
static void test_crashed_writer(void **state)
{
	static uint8_t data[100], b[100];
	uint32_t *head = g_map;
	uint8_t *slots = (uint8_t *)g_map + 64 + 1024 * 4; /* after the head and the pins */
	size_t got, slot_size = 48 + VCACHE_BLOCK;

	(void)state;
	vcache_forget_all();
	for (uint32_t i = 0; i < head[5] + head[6]; i++)
		*(uint32_t *)(void *)(slots + i * slot_size) |= 1;
	put_file(ID, data, sizeof(data));
	assert_true(vcache_read(0, ID, b, sizeof(b), 0, &got));
	assert_int_equal(got, sizeof(data));
}

/* ---- a reader racing the writer ---- */

static atomic_int g_stop;

static void *writer(void *arg)
{
	static uint8_t block[VCACHE_BLOCK];
	struct scone_vstat st = {.size = VCACHE_BLOCK};

	(void)arg;
	vcache_put_stat(0, ID, &st);
	for (unsigned k = 0; !atomic_load(&g_stop); k++) {
		memset(block, (int)(k & 0xff), sizeof(block));
		if (k % 3 == 0)
			vcache_forget(0, ID, 0, 1), vcache_put_stat(0, ID, &st);
		vcache_put(0, ID, 0, block, sizeof(block), sizeof(block));
		for (volatile int spin = 0; spin < 2000; spin++)
			; /* readers get a whole block now and then */
	}
	return NULL;
}

static void test_race(void **state)
{
	static uint8_t b[VCACHE_BLOCK];
	pthread_t t;
	size_t got, hits = 0;

	(void)state;
	vcache_forget_all();
	atomic_store(&g_stop, 0);
	assert_int_equal(pthread_create(&t, NULL, writer, NULL), 0);
	/* At least 300000 reads and 1000 hits (the writer may start late on a busy machine), at most ~20 s.
	 */
	for (long i = 0; (i < 300000 || hits < 1000) && i < 300000000L; i++) {
		if (!vcache_read(0, ID, b, sizeof(b), 0, &got))
			continue;
		hits++;
		assert_int_equal(got, sizeof(b));
		for (size_t j = 1; j < sizeof(b); j++)
			if (b[j] != b[0])
				fail_msg("a torn block: byte %zu is %u, byte 0 is %u", j, b[j], b[0]);
	}
	atomic_store(&g_stop, 1);
	pthread_join(t, NULL);
	assert_true(hits >= 1000);
}

/*
 * A file of 16 blocks rewritten whole again and again, as the server does
 * it (its status and blocks forgotten, then filled again), read whole by
 * more threads than there are CPUs (so a reader is now and then preempted
 * in the middle of a read while the file changes): a read never joins
 * blocks of two versions.
 */
#define FILE16 (16 * VCACHE_BLOCK)
#define READERS 3

static atomic_long g_torn, g_hits;

static void *rewriter(void *arg)
{
	static uint8_t data[FILE16];
	struct scone_vstat st = {.size = FILE16, .mode = 0600};

	(void)arg;
	memcpy(st.file_id, ID2, 16);
	for (unsigned k = 0; !atomic_load(&g_stop); k++) {
		memset(data, 'A' + (int)(k % 26), sizeof(data));
		vcache_forget(0, ID2, 0, FILE16);
		vcache_put_stat(0, ID2, &st);
		vcache_put(0, ID2, 0, data, FILE16, FILE16);
		for (volatile int spin = 0; spin < 20000; spin++)
			; /* whole for a while: a reader resuming finds a newer version */
	}
	return NULL;
}

static void *version_reader(void *arg)
{
	static __thread uint8_t b[FILE16];
	size_t got;

	time_t until = time(NULL) + 30;

	(void)arg;
	/* (on a loaded machine the rewriter may win most rounds: go on until the race was run enough) */
	for (long i = 0;
	     !atomic_load(&g_torn) && (i < 200000 || (atomic_load(&g_hits) < 1000 && time(NULL) < until));
	     i++) {
		if (!vcache_read(0, ID2, b, sizeof(b), 0, &got))
			continue;
		atomic_fetch_add(&g_hits, 1);
		for (size_t j = VCACHE_BLOCK; j < got; j += VCACHE_BLOCK)
			if (b[j] != b[0])
				atomic_store(&g_torn, (long)j);
	}
	return NULL;
}

static void test_race_versions(void **state)
{
	pthread_t w, r[READERS];

	(void)state;
	vcache_forget_all();
	atomic_store(&g_stop, 0);
	atomic_store(&g_torn, 0);
	atomic_store(&g_hits, 0);
	assert_int_equal(pthread_create(&w, NULL, rewriter, NULL), 0);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&r[i], NULL, version_reader, NULL), 0);
	for (int i = 0; i < READERS; i++)
		pthread_join(r[i], NULL);
	atomic_store(&g_stop, 1);
	pthread_join(w, NULL);
	if (atomic_load(&g_torn))
		fail_msg("a read joined two versions of the file (at byte %ld)", atomic_load(&g_torn));
	assert_true(atomic_load(&g_hits) >= 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_misses),
	    cmocka_unit_test(test_put_read),
	    cmocka_unit_test(test_partial_blocks_not_cached),
	    cmocka_unit_test(test_forget),
	    cmocka_unit_test(test_whole),
	    cmocka_unit_test(test_short_last_block),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_crashed_writer),
	    cmocka_unit_test(test_race),
	    cmocka_unit_test(test_race_versions),
	    cmocka_unit_test(test_sets),
	    cmocka_unit_test(test_pins),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
