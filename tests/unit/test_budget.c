/*
 * test_budget.c - unit tests for src/cas/budget.c: a client's bucket holds
 * per_minute units, a take that does not fit takes nothing and says when it
 * will, refunds never exceed the bucket, keys are independent, requests
 * above the bucket never fit, and a full table still serves newcomers.
 * The refill is checked over a short real wait (per_minute 6000: 100 per
 * second).
 */
#include "helpers.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "cas/budget.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

static void key_of(unsigned i, uint8_t key[32])
{
	memset(key, 0, 32);
	memcpy(key, &i, sizeof(i));
}

TEST(test_take_and_refund)
{
	struct cas_budget *bu = cas_budget_new(60);
	uint8_t a[32], b[32];
	unsigned retry;

	assert_non_null(bu);
	key_of(1, a);
	key_of(2, b);
	assert_true(cas_budget_take(bu, a, 0, &retry));
	assert_true(cas_budget_take(bu, a, 40, &retry));
	assert_int_equal(retry, 0);
	assert_false(cas_budget_take(bu, a, 30, &retry));
	/* 20 left, 30 wanted: 10 units short, at 1 per second. */
	assert_true(retry >= 10 && retry <= 12);
	assert_true(cas_budget_take(bu, a, 20, &retry));
	/* Another key has its own bucket. */
	assert_true(cas_budget_take(bu, b, 60, &retry));
	/* Refunds fill up to the bucket, not beyond. */
	cas_budget_refund(bu, a, 1000);
	assert_true(cas_budget_take(bu, a, 60, &retry));
	assert_false(cas_budget_take(bu, a, 60, &retry));
	/* More than a bucket never fits. */
	assert_false(cas_budget_take(bu, b, 61, &retry));
	assert_int_equal(retry, 60);
	cas_budget_free(bu);
	cas_budget_free(NULL);
}

TEST(test_refill)
{
	struct cas_budget *bu = cas_budget_new(6000);
	struct timespec ts = {0, 300 * 1000000L};
	uint8_t a[32];
	unsigned retry;

	key_of(7, a);
	assert_true(cas_budget_take(bu, a, 6000, &retry));
	assert_false(cas_budget_take(bu, a, 20, &retry));
	nanosleep(&ts, NULL); /* 100 per second: about 30 back */
	assert_true(cas_budget_take(bu, a, 20, &retry));
	cas_budget_free(bu);
}

TEST(test_many_clients)
{
	struct cas_budget *bu = cas_budget_new(10);
	uint8_t k[32];
	unsigned retry;

	/* Far more clients than buckets: every newcomer still gets a bucket. */
	for (unsigned i = 0; i < 5000; i++) {
		key_of(1000 + i, k);
		assert_true(cas_budget_take(bu, k, 10, &retry));
	}
	cas_budget_free(bu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_take_and_refund),
	    cmocka_unit_test(test_refill),
	    cmocka_unit_test(test_many_clients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
