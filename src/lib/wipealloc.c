/*
 * wipealloc.c - the wiping allocator (wipealloc.h).
 *
 * Block layout: [size_t size][padding to 16 bytes][size bytes for the
 * caller]. 16 bytes keep the caller's pointer aligned as malloc's is on
 * the platforms scone supports (max_align_t is 16 on x86-64 and aarch64).
 */
#include "lib/wipealloc.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lib/crypto.h"

#define HEADER 16

_Static_assert(HEADER >= sizeof(size_t) && HEADER % alignof(max_align_t) == 0,
	       "block header keeps alignment");

static void *(*backend_alloc)(size_t) = malloc;
static void (*backend_free)(void *) = free;

void scone_wipealloc_set_backend(void *(*alloc_fn)(size_t), void (*free_fn)(void *))
{
	backend_alloc = alloc_fn ? alloc_fn : malloc;
	backend_free = free_fn ? free_fn : free;
}

void *scone_wipealloc_malloc(size_t size)
{
	uint8_t *b;

	if (size > SIZE_MAX - HEADER)
		return NULL;
	b = backend_alloc(HEADER + size);
	if (!b)
		return NULL;
	memcpy(b, &size, sizeof(size));
	return b + HEADER;
}

static size_t size_of(const void *p)
{
	size_t size;

	memcpy(&size, (const uint8_t *)p - HEADER, sizeof(size));
	return size;
}

void scone_wipealloc_free(void *p)
{
	uint8_t *b;

	if (!p)
		return;
	b = (uint8_t *)p - HEADER;
	scone_wipe(b, HEADER + size_of(p));
	backend_free(b);
}

void *scone_wipealloc_realloc(void *p, size_t size)
{
	void *n;
	size_t old;

	if (!p)
		return scone_wipealloc_malloc(size);
	old = size_of(p);
	n = scone_wipealloc_malloc(size ? size : 1);
	if (!n)
		return NULL;
	memcpy(n, p, old < size ? old : size);
	scone_wipealloc_free(p);
	return n;
}

static void *ossl_malloc(size_t size, const char *file, int line)
{
	(void)file, (void)line;
	return scone_wipealloc_malloc(size);
}

static void *ossl_realloc(void *p, size_t size, const char *file, int line)
{
	(void)file, (void)line;
	return scone_wipealloc_realloc(p, size);
}

static void ossl_free(void *p, const char *file, int line)
{
	(void)file, (void)line;
	scone_wipealloc_free(p);
}

bool scone_wipealloc_openssl(void)
{
	return CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free) == 1;
}
