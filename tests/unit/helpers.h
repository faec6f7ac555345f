/* helpers.h - shared includes and small helpers for cmocka unit tests. */
#ifndef SCONE_TEST_HELPERS_H
#define SCONE_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#define assert_ok(expr) assert_int_equal((expr), SCONE_ERR_OK)

/* Sleep ms milliseconds (the whole time, even when a signal interrupts). */
static inline void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&t, &t) != 0)
		;
}

#endif
