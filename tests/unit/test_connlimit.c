/*
 * test_connlimit.c - unit tests for proxy/connlimit.c: the per-prefix
 * connection rate (token buckets in a fixed table) and how connlimit_take
 * combines it with the connection counts.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "connlimit.h"
#include "generation.h"

#define WINDOW	60000	/* ms */

static struct connlimit_key	 key_of(const char *);
static int			 burst(const struct connlimit_key *, long, uint64_t, int);

/* The key of an IPv4 host address (prefix 32). */
static struct connlimit_key
key_of(const char *ip)
{
	struct connlimit_key	 k;

	memset(&k, 0, sizeof(k));
	k.family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, k.bytes), 1);
	return k;
}

/* How many of n connections at now are allowed. */
static int
burst(const struct connlimit_key *k, long max, uint64_t now, int n)
{
	int	 i, ok = 0;

	for (i = 0; i < n; i++)
		ok += connlimit_rate_take(k, max, WINDOW, now);
	return ok;
}

static int
setup(void **state)
{
	connlimit_rate_clear();
	return 0;
}

/* max connections at once, then refused until the bucket refills. */
static void
test_rate_burst_then_refill(void **state)
{
	struct connlimit_key	 a = key_of("192.0.2.1");
	uint64_t		 t = 1000000;

	assert_int_equal(burst(&a, 5, t, 5), 5);
	assert_int_equal(connlimit_rate_take(&a, 5, WINDOW, t), 0);
	/* One token comes back every window / max = 12 s. */
	assert_int_equal(connlimit_rate_take(&a, 5, WINDOW, t + 11999), 0);
	assert_int_equal(connlimit_rate_take(&a, 5, WINDOW, t + 12000 + 11999), 1);
	assert_int_equal(connlimit_rate_take(&a, 5, WINDOW, t + 12000 + 11999), 0);
	/* After a whole quiet window the bucket is full again, and no fuller. */
	assert_int_equal(burst(&a, 5, t + 10 * WINDOW, 7), 5);
}

/* Each prefix has its own bucket. */
static void
test_rate_per_prefix(void **state)
{
	struct connlimit_key	 a = key_of("192.0.2.1"), b = key_of("192.0.2.2");

	assert_int_equal(burst(&a, 3, 5000, 10), 3);
	assert_int_equal(burst(&b, 3, 5000, 10), 3);
	assert_int_equal(connlimit_rate_slots(), 2);
}

/* 0 = off; keys without an address family are not rated. */
static void
test_rate_off(void **state)
{
	struct connlimit_key	 a = key_of("192.0.2.1"), none;

	memset(&none, 0, sizeof(none));
	assert_int_equal(burst(&a, 0, 1, 1000), 1000);
	assert_int_equal(burst(&none, 1, 1, 1000), 1000);
	assert_int_equal(connlimit_rate_slots(), 0);
}

/* A clock that steps back refills nothing and breaks nothing. */
static void
test_rate_clock_back(void **state)
{
	struct connlimit_key	 a = key_of("192.0.2.9");

	assert_int_equal(burst(&a, 2, 100000, 2), 2);
	assert_int_equal(connlimit_rate_take(&a, 2, WINDOW, 50), 0);
	assert_int_equal(connlimit_rate_take(&a, 2, WINDOW, 100000), 0);
}

/*
 * A flood of distinct addresses fills a fixed table and no more; the
 * least recently seen prefixes are the ones replaced.
 */
static void
test_rate_table_bounded(void **state)
{
	struct connlimit_key	 a = key_of("198.51.100.7"), k;
	uint32_t		 i, ip;
	uint64_t		 t = 1000;

	assert_int_equal(burst(&a, 4, t + 1000, 4), 4);
	for (i = 0; i < 1500; i++) {
		memset(&k, 0, sizeof(k));
		k.family = AF_INET;
		ip = htonl(0x0a000000u + i);
		memcpy(k.bytes, &ip, 4);
		assert_int_equal(connlimit_rate_take(&k, 4, WINDOW, t), 1);
	}
	assert_int_equal(connlimit_rate_take(&a, 4, WINDOW, t + 1000), 0);
	for (i = 0; i < 200000; i++) {
		memset(&k, 0, sizeof(k));
		k.family = AF_INET6;
		ip = htonl(i);
		memcpy(k.bytes + 12, &ip, 4);
		(void)connlimit_rate_take(&k, 4, WINDOW, t + 1 + i);
	}
	assert_true(connlimit_rate_slots() <= 8192);
	assert_true(connlimit_rate_slots() >= 8000);
}

/* connlimit_take: the rate refusal counts no connection. */
static void
test_take_rate_refusal_counts_nothing(void **state)
{
	struct config_listener	 cl;
	struct listener_gen	 lg;
	struct config		 cfg;
	struct sockaddr_in	 sin;
	struct connlimit_key	 keys[3], k;

	memset(&cl, 0, sizeof(cl));
	memset(&lg, 0, sizeof(lg));
	memset(&cfg, 0, sizeof(cfg));
	memset(&sin, 0, sizeof(sin));
	lg.conf = &cl;
	cfg.max_connections = 100;
	cfg.ipv4_prefix = 24;
	cfg.ipv6_prefix = 64;
	cfg.max_connection_rate_per_ip = 3;
	cfg.connection_rate_window_ms = WINDOW;
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "203.0.113.5", &sin.sin_addr), 1);
	assert_int_equal(connlimit_take(&cfg, &lg, (struct sockaddr *)&sin, &keys[0]),
	    CONNLIMIT_OK);
	/* Another host of the same /24 shares the bucket. */
	assert_int_equal(inet_pton(AF_INET, "203.0.113.77", &sin.sin_addr), 1);
	assert_int_equal(connlimit_take(&cfg, &lg, (struct sockaddr *)&sin, &keys[1]),
	    CONNLIMIT_OK);
	assert_int_equal(connlimit_take(&cfg, &lg, (struct sockaddr *)&sin, &keys[2]),
	    CONNLIMIT_OK);
	assert_int_equal(connlimit_take(&cfg, &lg, (struct sockaddr *)&sin, &k),
	    CONNLIMIT_RATE);
	assert_int_equal(connlimit_total(), 3);
	assert_int_equal(atomic_load(&lg.connections), 3);
	connlimit_release(&lg, &keys[0]);
	connlimit_release(&lg, &keys[1]);
	connlimit_release(&lg, &keys[2]);
	assert_int_equal(connlimit_total(), 0);
	/* Closing connections gives no rate back. */
	assert_int_equal(connlimit_take(&cfg, &lg, (struct sockaddr *)&sin, &k),
	    CONNLIMIT_RATE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_rate_burst_then_refill, setup),
		cmocka_unit_test_setup(test_rate_per_prefix, setup),
		cmocka_unit_test_setup(test_rate_off, setup),
		cmocka_unit_test_setup(test_rate_clock_back, setup),
		cmocka_unit_test_setup(test_rate_table_bounded, setup),
		cmocka_unit_test_setup(test_take_rate_refusal_counts_nothing, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
