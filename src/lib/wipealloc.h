/*
 * wipealloc.h - a wiping allocator for the libraries that hold secrets in
 * ordinary heap and free without a size (OpenSSL's keys and record
 * buffers, jansson's strings, libevent's buffers). Each block carries its
 * size in a 16-byte header; every block is wiped when it is freed or moved
 * by realloc.
 */
#ifndef SCONE_LIB_WIPEALLOC_H
#define SCONE_LIB_WIPEALLOC_H

#include <stdbool.h>
#include <stddef.h>

void *scone_wipealloc_malloc(size_t size);
/* Always a new block: the old one is copied, then wiped. */
void *scone_wipealloc_realloc(void *p, size_t size);
/* Wipe the whole block (header included) and free it. NULL is fine. */
void scone_wipealloc_free(void *p);

/* For tests: where blocks come from and go back to (default malloc and free). Set before any allocation. */
void scone_wipealloc_set_backend(void *(*alloc_fn)(size_t), void (*free_fn)(void *));

/*
 * OpenSSL's allocations through the wiping allocator (CRYPTO_set_mem_functions).
 * Only before OpenSSL allocated anything: false (nothing changed) after.
 */
bool scone_wipealloc_openssl(void);

#endif
