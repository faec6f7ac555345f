/*
 * budget.c - how much key generation each client may make CAS do: a token
 * bucket per client key of per_minute units, refilled continuously (full
 * again one minute after it was emptied), shared by every worker.
 *
 * The table is fixed (CAS_BUDGET_SLOTS buckets, open addressing over a
 * short probe window): a bucket that has refilled completely carries no
 * state worth keeping and is reused; when the window holds none, the
 * fullest bucket is given to the newcomer. Many keys can therefore reset
 * buckets, but many keys can also simply be many clients: this budget
 * bounds what one client makes CAS do; what all of them can is bounded by
 * the slow lane's threads (server.h), which run at a lower priority.
 */
#include "cas/budget.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/crypto.h"

#define CAS_BUDGET_SLOTS 1024
#define PROBE 8
#define WINDOW_NS 60000000000ull /* a full refill takes one minute */

struct bucket {
	bool used;
	uint8_t key[32];
	double tokens;
	uint64_t at_ns; /* when tokens was computed */
};

struct cas_budget {
	pthread_mutex_t mu;
	unsigned per_minute;
	struct bucket b[CAS_BUDGET_SLOTS];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct cas_budget *cas_budget_new(unsigned per_minute)
{
	struct cas_budget *bu = calloc(1, sizeof(*bu));

	if (!bu)
		return NULL;
	if (pthread_mutex_init(&bu->mu, NULL) != 0) {
		free(bu);
		return NULL;
	}
	bu->per_minute = per_minute;
	return bu;
}

void cas_budget_free(struct cas_budget *bu)
{
	if (!bu)
		return;
	pthread_mutex_destroy(&bu->mu);
	free(bu);
}

static void refill(const struct cas_budget *bu, struct bucket *b, uint64_t now)
{
	double add = (double)(now - b->at_ns) * bu->per_minute / (double)WINDOW_NS;

	b->tokens = b->tokens + add > bu->per_minute ? bu->per_minute : b->tokens + add;
	b->at_ns = now;
}

/* The bucket of key (a new, full one if it has none); never NULL. */
static struct bucket *bucket_of(struct cas_budget *bu, const uint8_t key[32], uint64_t now)
{
	uint8_t h[32];
	size_t start;
	struct bucket *free_b = NULL, *fullest = NULL;

	scone_sha256(key, 32, h);
	start = ((size_t)h[0] | (size_t)h[1] << 8) % CAS_BUDGET_SLOTS;
	for (size_t k = 0; k < PROBE; k++) {
		struct bucket *b = &bu->b[(start + k) % CAS_BUDGET_SLOTS];
		if (b->used && scone_ct_equal(b->key, key, 32)) {
			refill(bu, b, now);
			return b;
		}
		if (b->used)
			refill(bu, b, now);
		if (!b->used || b->tokens >= bu->per_minute) {
			if (!free_b)
				free_b = b;
		} else if (!fullest || b->tokens > fullest->tokens) {
			fullest = b;
		}
	}
	if (!free_b)
		free_b = fullest;
	free_b->used = true;
	memcpy(free_b->key, key, 32);
	free_b->tokens = bu->per_minute;
	free_b->at_ns = now;
	return free_b;
}

bool cas_budget_take(struct cas_budget *bu, const uint8_t key[32], unsigned units, unsigned *retry_after_s)
{
	struct bucket *b;
	bool ok;

	*retry_after_s = 0;
	if (units == 0)
		return true;
	if (units > bu->per_minute) {
		*retry_after_s = 60;
		return false;
	}
	pthread_mutex_lock(&bu->mu);
	b = bucket_of(bu, key, now_ns());
	ok = b->tokens >= units;
	if (ok)
		b->tokens -= units;
	else
		*retry_after_s = 1 + (unsigned)((units - b->tokens) * 60.0 / bu->per_minute);
	pthread_mutex_unlock(&bu->mu);
	return ok;
}

void cas_budget_refund(struct cas_budget *bu, const uint8_t key[32], unsigned units)
{
	struct bucket *b;

	if (units == 0)
		return;
	pthread_mutex_lock(&bu->mu);
	b = bucket_of(bu, key, now_ns());
	b->tokens = b->tokens + units > bu->per_minute ? bu->per_minute : b->tokens + units;
	pthread_mutex_unlock(&bu->mu);
}
