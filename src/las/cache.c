/*
 * cache.c - hashes of code files by what identifies their content: device,
 * inode, size, change and modification time. Any write to a file changes
 * its ctime, which no unprivileged caller can set back, so a hit is the
 * hash of the bytes now on disk; a measurement of a 30 MB database binary
 * is then a stat, not a read. Open addressing over a fixed table; when it
 * fills up, it starts again empty (a code file set is small; a full table
 * means churn, and starting over is cheap and bounded).
 */
#include "las.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	bool used;
	struct las_file_id id;
	uint8_t hash[32];
};

struct las_cache {
	pthread_mutex_t lock;
	struct entry *e;
	size_t cap, n;
	uint64_t hits, misses;
};

void las_file_id_of(const struct stat *st, struct las_file_id *out)
{
	memset(out, 0, sizeof(*out));
	out->dev = st->st_dev;
	out->ino = st->st_ino;
	out->size = st->st_size;
	out->ctime = st->st_ctim;
	out->mtime = st->st_mtim;
}

static bool same(const struct las_file_id *a, const struct las_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static size_t slot_of(const struct las_cache *c, const struct las_file_id *id)
{
	uint64_t h = (uint64_t)id->ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)id->dev * 0xc2b2ae3d27d4eb4full;

	return (size_t)(h ^ (h >> 29)) % c->cap;
}

struct las_cache *las_cache_new(size_t capacity)
{
	struct las_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cap = capacity < 16 ? 16 : capacity;
	c->e = calloc(c->cap, sizeof(*c->e));
	if (!c->e) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void las_cache_free(struct las_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c->e);
	free(c);
}

bool las_cache_get(struct las_cache *c, const struct las_file_id *id, uint8_t out[32])
{
	bool found = false;

	pthread_mutex_lock(&c->lock);
	for (size_t i = slot_of(c, id), k = 0; k < c->cap && c->e[i].used; i = (i + 1) % c->cap, k++) {
		if (same(&c->e[i].id, id)) {
			memcpy(out, c->e[i].hash, 32);
			found = true;
			break;
		}
	}
	if (found)
		c->hits++;
	else
		c->misses++;
	pthread_mutex_unlock(&c->lock);
	return found;
}

void las_cache_put(struct las_cache *c, const struct las_file_id *id, const uint8_t hash[32])
{
	size_t i;

	pthread_mutex_lock(&c->lock);
	if (c->n >= c->cap * 3 / 4) {
		memset(c->e, 0, c->cap * sizeof(*c->e));
		c->n = 0;
	}
	for (i = slot_of(c, id); c->e[i].used; i = (i + 1) % c->cap) {
		/* An older version of the same file: replace it in place. */
		if (c->e[i].id.dev == id->dev && c->e[i].id.ino == id->ino)
			break;
	}
	if (!c->e[i].used)
		c->n++;
	c->e[i].used = true;
	c->e[i].id = *id;
	memcpy(c->e[i].hash, hash, 32);
	pthread_mutex_unlock(&c->lock);
}

void las_cache_counts(struct las_cache *c, uint64_t *hits, uint64_t *misses)
{
	pthread_mutex_lock(&c->lock);
	*hits = c->hits;
	*misses = c->misses;
	pthread_mutex_unlock(&c->lock);
}
