/*
 * memwipe.c - jansson and libevent on the wiping allocator (lib/wipealloc.h),
 * and the process hardening of scone-cas (contract in memwipe.h).
 */
#include "memwipe.h"

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "lib/crypto.h"
#include "lib/log.h"
#include "lib/wipealloc.h"

void cas_memwipe_set_backend(void *(*alloc_fn)(size_t), void (*free_fn)(void *))
{
	scone_wipealloc_set_backend(alloc_fn, free_fn);
}

void *cas_memwipe_malloc(size_t size)
{
	return scone_wipealloc_malloc(size);
}

void cas_memwipe_free(void *p)
{
	scone_wipealloc_free(p);
}

void *cas_memwipe_realloc(void *p, size_t size)
{
	return scone_wipealloc_realloc(p, size);
}

void cas_memwipe_install(void)
{
	json_set_alloc_funcs(cas_memwipe_malloc, cas_memwipe_free);
	event_set_mem_functions(cas_memwipe_malloc, cas_memwipe_realloc, cas_memwipe_free);
}

void cas_json_free_text(char *text)
{
	json_malloc_t m;
	json_free_t f;

	if (!text)
		return;
	json_get_alloc_funcs(&m, &f);
	if (f == cas_memwipe_free) {
		cas_memwipe_free(text);
		return;
	}
	scone_wipe(text, strlen(text));
	f(text);
}

/* At most want (a power of two), but no more than half of what RLIMIT_MEMLOCK lets us lock; at least 1 MiB.
 */
static size_t lockable(size_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return want;
	while (want > ((size_t)1 << 20) && want > rl.rlim_cur / 2)
		want >>= 1;
	return want;
}

enum scone_err cas_memwipe_harden_process(size_t secure_heap_bytes)
{
	struct rlimit none = {0, 0};
	int rc;

	if (setrlimit(RLIMIT_CORE, &none) != 0)
		return scone_err_set(SCONE_ERR_IO, "setrlimit(RLIMIT_CORE, 0): %s", strerror(errno));
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return scone_err_set(SCONE_ERR_IO, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
	if (!secure_heap_bytes || CRYPTO_secure_malloc_initialized())
		return SCONE_ERR_OK;
	secure_heap_bytes = lockable(secure_heap_bytes);
	rc = CRYPTO_secure_malloc_init(secure_heap_bytes, 32);
	if (rc == 0)
		return scone_err_set(SCONE_ERR_NOMEM, "OpenSSL secure heap of %zu bytes: cannot set it up",
				     secure_heap_bytes);
	if (rc == 2)
		scone_warn(
		    "the secure heap (%zu KiB for keys and cached secrets) is not locked in memory: raise "
		    "RLIMIT_MEMLOCK (ulimit -l, LimitMEMLOCK=) so that it cannot be swapped out; it is still "
		    "left out of core dumps",
		    secure_heap_bytes >> 10);
	return SCONE_ERR_OK;
}
