/*
 * memwipe.h - the memory scone-cas gives the libraries that handle its
 * secrets in ordinary heap: jansson (every configuration answer passes
 * through its strings and json_dumps buffers) and libevent (request and
 * response bytes in evbuffer chains). Their free functions take no size,
 * so each block carries its size in a 16-byte header, and every block is
 * wiped when it is freed or moved by realloc.
 *
 * Also the hardening scone-cas applies to itself at start
 * (cas_memwipe_harden_process): no core dumps, not dumpable (so no
 * ptrace, /proc/PID/mem, environ or fd by the same user), and OpenSSL's
 * secure heap, locked and left out of dumps, for private keys and the
 * secret values the session cache holds (secrets.c allocates them there).
 */
#ifndef SCONE_CAS_MEMWIPE_H
#define SCONE_CAS_MEMWIPE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

/*
 * Route jansson's and libevent's allocations through the wiping allocator.
 * Call before either library allocates anything (first thing in main):
 * a block allocated before would later be freed through it.
 */
void cas_memwipe_install(void);

void *cas_memwipe_malloc(size_t size);
void *cas_memwipe_realloc(void *p, size_t size);
/* Wipe the whole block (header included) and free it. NULL is fine. */
void cas_memwipe_free(void *p);

/*
 * Free text jansson returned (json_dumps) with jansson's own free function,
 * whichever allocator is installed: never plain free() on such a pointer.
 * The text is wiped first when the wiping allocator is not installed.
 */
void cas_json_free_text(char *text);

/*
 * For tests: the functions the wiping allocator takes its blocks from and
 * gives them back to (default malloc and free). Set before installing.
 */
void cas_memwipe_set_backend(void *(*alloc_fn)(size_t), void (*free_fn)(void *));

/*
 * scone-cas hardens itself: RLIMIT_CORE 0, PR_SET_DUMPABLE 0, and OpenSSL's
 * secure heap of secure_heap_bytes (a power of two; smaller when
 * RLIMIT_MEMLOCK is below twice that, down to 1 MiB; locked when the limit
 * allows, never dumped; when it is full, secrets go to ordinary memory,
 * still wiped when freed). IO with the detail naming what
 * failed; a secure heap that cannot be locked is only a warning.
 */
SCONE_MUST_CHECK enum scone_err cas_memwipe_harden_process(size_t secure_heap_bytes);

#endif
