/*
 * test_deliver.c - unit tests for the relay scheduler's pure part: the
 * retry delay (deliver_backoff): doubling from min_backoff, capped at
 * max_backoff, jitter within -25%..+25% and never outside [min, max].
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "deliver.h"

static void
test_backoff_doubles_then_caps(void **state)
{
	/* rnd 0.5: no jitter. */
	assert_int_equal(deliver_backoff(1, 300, 3600, 0.5), 300);
	assert_int_equal(deliver_backoff(2, 300, 3600, 0.5), 600);
	assert_int_equal(deliver_backoff(3, 300, 3600, 0.5), 1200);
	assert_int_equal(deliver_backoff(4, 300, 3600, 0.5), 2400);
	assert_int_equal(deliver_backoff(5, 300, 3600, 0.5), 3600);
	assert_int_equal(deliver_backoff(60, 300, 3600, 0.5), 3600);
	assert_int_equal(deliver_backoff(4000000000u, 1, 3600, 0.5), 3600);
}

static void
test_backoff_jitter_bounds(void **state)
{
	/* -25% at 0, +25% at 1, clamped to [min, max]. */
	assert_int_equal(deliver_backoff(3, 100, 10000, 0.0), 300);
	assert_int_equal(deliver_backoff(3, 100, 10000, 1.0), 500);
	assert_int_equal(deliver_backoff(1, 100, 10000, 0.0), 100);
	assert_int_equal(deliver_backoff(1, 100, 10000, 1.0), 125);
	assert_int_equal(deliver_backoff(20, 100, 1000, 1.0), 1000);
	assert_int_equal(deliver_backoff(20, 100, 1000, 0.0), 750);
	/* Out-of-range randomness and settings do not escape the bounds. */
	assert_int_equal(deliver_backoff(2, 100, 1000, -5.0), 150);
	assert_int_equal(deliver_backoff(2, 100, 1000, 7.0), 250);
	assert_int_equal(deliver_backoff(1, 0, 0, 0.5), 1);
	assert_int_equal(deliver_backoff(3, 60, 10, 0.5), 60);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_doubles_then_caps),
		cmocka_unit_test(test_backoff_jitter_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
