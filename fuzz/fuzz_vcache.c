/*
 * fuzz_vcache.c - libFuzzer target for the shared read cache's layout as a
 * process finds it (src/runtime/vcache.c): an exec'd program maps the memfd
 * its parent laid out and trusts nothing in it but what vcache_attach
 * checked. The input is the mapped bytes (head, pins, the slots' keys, then
 * their blocks from the next page on); a layout that does not fit is
 * refused, one that does is read and written as a client and a server
 * would: nothing may reach outside the mapping, and a read
 * never answers more than it was asked. Seeds: fuzz/corpus/vcache (layouts
 * of 4 and 8 data slots, 40 and 56 KiB, empty and holding a file).
 */
#include "runtime/vcache.h"

#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MAP (64u << 10)

static uint8_t g_map[MAX_MAP] __attribute__((aligned(64)));

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	static uint8_t buf[3 * VCACHE_BLOCK];
	struct scone_vstat st;
	uint8_t got_id[16];
	size_t got = 0;

	if (size > MAX_MAP)
		return 0;
	memcpy(g_map, data, size);
	if (!vcache_attach(g_map, size, VCACHE_MAPPED))
		return 0;
	/* A client. */
	(void)vcache_stat(0, id, &st);
	(void)vcache_name(0, "/f", got_id);
	(void)vcache_whole(0, id, 1 << 20);
	if (vcache_read(0, id, buf, sizeof(buf), 100, &got))
		CHECK(got <= sizeof(buf));
	/* A server (an exec'd program that holds the volumes). */
	memset(&st, 0, sizeof(st));
	st.size = 2 * VCACHE_BLOCK + 5;
	memcpy(st.file_id, id, sizeof(id));
	vcache_put_stat(0, id, &st);
	vcache_put(0, id, 0, buf, (size_t)st.size, st.size);
	vcache_put_name(0, "/f", id);
	(void)vcache_pin(0, id); /* counts as hostile as the rest */
	vcache_unpin(0, id);
	vcache_unpin(0, id);
	(void)vcache_pinned(1, id);
	if (vcache_read(0, id, buf, sizeof(buf), 0, &got))
		CHECK(got == st.size);
	vcache_forget(0, id, 10, VCACHE_BLOCK);
	vcache_forget_names();
	vcache_forget_all();
	CHECK(!vcache_read(0, id, buf, sizeof(buf), 0, &got));
	return 0;
}
