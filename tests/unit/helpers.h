/* helpers.h - shared includes for cmocka unit tests. */
#ifndef SCONE_TEST_HELPERS_H
#define SCONE_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define assert_ok(expr) assert_int_equal((expr), SCONE_ERR_OK)

#endif
