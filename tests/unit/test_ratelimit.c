/*
 * test_ratelimit.c - unit tests of the ratelimit filter's pure policy
 * (keys, option values, phase actions, texts) and of the counter store
 * behind it: the memory table's windows, expiry, purge and cap on an
 * injected clock, the sluice_counter_add() contract (the callback runs
 * once, later, on the worker), redis:// spec parsing, and the Redis
 * backend against a fake server in this process (answers, refusal and
 * reconnection, a server that never answers, late replies, errors,
 * shutdown with requests in flight).
 *
 * The store is linked from its sources; this file stands in for the
 * worker queue (worker_post queues closures that the test runs) and for
 * the generation refcounts.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "chain.h"
#include "generation.h"
#include "log.h"
#include "ratelimit/ratelimit_policy.h"
#include "session.h"
#include "store.h"
#include "util.h"
#include "worker.h"

/* --- Stand-ins for the worker queue and generations ------------------------ */

struct posted {
	worker_fn	 fn;
	void		*arg;
};

static struct worker	 test_worker;
static struct worker	*test_current = &test_worker;
static struct posted	*posted;
static size_t		 nposted, posted_cap;
static int		 gen_refs;
static struct event_base *test_base;

void
worker_post(struct worker *w, worker_fn fn, void *arg)
{
	assert_ptr_equal(w, &test_worker);
	if (nposted == posted_cap) {
		posted_cap = posted_cap ? posted_cap * 2 : 64;
		posted = xreallocarray(posted, posted_cap, sizeof(*posted));
	}
	posted[nposted].fn = fn;
	posted[nposted].arg = arg;
	nposted++;
}

struct worker *
worker_current(void)
{
	return test_current;
}

void
generation_ref(struct generation *g)
{
	gen_refs++;
}

void
generation_unref(struct generation *g)
{
	gen_refs--;
}

/* Run what was posted, in order, including what those closures post. */
static size_t
run_posted(void)
{
	size_t	 i, n = 0;

	for (i = 0; i < nposted; i++, n++)
		posted[i].fn(posted[i].arg);
	nposted = 0;
	return n;
}

/* --- Results ------------------------------------------------------------------ */

struct result {
	int		 calls;		/* times the callback ran */
	int		 ok;
	long long	 value;
	long long	 ttl;
	char		 why[200];
	uint64_t	 at_ms;		/* monotonic time of the last call */
};

static void
record_cb(void *arg, const struct sluice_counter *r)
{
	struct result	*res = arg;

	res->calls++;
	res->ok = r->ok;
	res->value = r->value;
	res->ttl = r->ttl_ms;
	snprintf(res->why, sizeof(res->why), "%s", r->why != NULL ? r->why : "(null)");
	res->at_ms = monotonic_ms();
}

static void
sleep_ms(long ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Turn the loop and the queue until *counter reaches want or ms pass. */
static void
loop_until(const int *counter, int want, long ms)
{
	uint64_t	 end = monotonic_ms() + (uint64_t)ms;

	while (*counter < want && monotonic_ms() < end) {
		event_base_loop(test_base, EVLOOP_NONBLOCK);
		run_posted();
		if (*counter < want)
			sleep_ms(1);
	}
}

/* Turn the loop for ms regardless. */
static void
loop_for(long ms)
{
	int	 never = 0;

	loop_until(&never, 1, ms);
}

/* --- Keys ------------------------------------------------------------------------ */

static void
expect_ip(const char *addr, int p4, int p6, const char *want)
{
	char	 buf[RATELIMIT_KEY_MAX];

	if (want == NULL) {
		assert_int_equal(ratelimit_key_ip(addr, p4, p6, buf, sizeof(buf)), -1);
		return;
	}
	assert_int_equal(ratelimit_key_ip(addr, p4, p6, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void
test_key_ip_v4(void **state)
{
	expect_ip("192.0.2.200", 32, 64, "ip:192.0.2.200");
	expect_ip("192.0.2.200", 24, 64, "ip:192.0.2.0/24");
	expect_ip("192.0.2.200", 25, 64, "ip:192.0.2.128/25");
	expect_ip("192.0.2.200", 26, 64, "ip:192.0.2.192/26");
	expect_ip("203.0.113.77", 8, 64, "ip:203.0.0.0/8");
	expect_ip("203.0.113.77", 0, 64, "ip:0.0.0.0/0");
	expect_ip("203.0.113.77", 31, 64, "ip:203.0.113.76/31");
	/* The IPv6 prefix does not apply to IPv4. */
	expect_ip("10.1.2.3", 32, 0, "ip:10.1.2.3");
}

static void
test_key_ip_v6(void **state)
{
	expect_ip("2001:db8:1:2:3:4:5:6", 32, 64, "ip:2001:db8:1:2::/64");
	expect_ip("2001:db8:1:2:3:4:5:6", 32, 128, "ip:2001:db8:1:2:3:4:5:6");
	expect_ip("2001:db8:1:2:3:4:5:6", 32, 48, "ip:2001:db8:1::/48");
	expect_ip("2001:db8:1:2:3:4:5:6", 32, 56, "ip:2001:db8:1::/56");
	expect_ip("2001:db8:1:ff:3:4:5:6", 32, 60, "ip:2001:db8:1:f0::/60");
	expect_ip("2001:db8::7", 32, 127, "ip:2001:db8::6/127");
	expect_ip("2001:DB8::1", 32, 0, "ip:::/0");
	/* Two addresses of one /64 share a key, of two /64s do not. */
	expect_ip("2001:db8:0:1::a", 32, 64, "ip:2001:db8:0:1::/64");
	expect_ip("2001:db8:0:1:ffff::b", 32, 64, "ip:2001:db8:0:1::/64");
	expect_ip("2001:db8:0:2::a", 32, 64, "ip:2001:db8:0:2::/64");
}

static void
test_key_ip_mapped_and_garbage(void **state)
{
	expect_ip("::ffff:192.0.2.7", 24, 64, "ip:192.0.2.0/24");
	expect_ip("::ffff:192.0.2.7", 32, 64, "ip:192.0.2.7");
	expect_ip(NULL, 32, 64, NULL);
	expect_ip("", 32, 64, NULL);
	expect_ip("unix:/run/sluice.sock", 32, 64, NULL);
	expect_ip("192.0.2", 32, 64, NULL);
	expect_ip("192.0.2.256", 32, 64, NULL);
	expect_ip("192.0.2.1 ", 32, 64, NULL);
	expect_ip("2001:db8::1%eth0", 32, 64, NULL);
	expect_ip("2001:db8::g", 32, 64, NULL);
	expect_ip("\xff\xfe", 32, 64, NULL);
	/* Out-of-range prefixes never make a key. */
	expect_ip("192.0.2.1", 33, 64, NULL);
	expect_ip("2001:db8::1", 32, 129, NULL);
	expect_ip("192.0.2.1", -1, 64, NULL);
}

static void
expect_key(enum ratelimit_key kind, const char *subject, const char *want)
{
	struct ratelimit_rule	 r = { .key = kind, .prefix4 = 32, .prefix6 = 64 };
	char			 buf[RATELIMIT_KEY_MAX];

	if (want == NULL) {
		assert_int_equal(ratelimit_key_make(&r, subject, buf, sizeof(buf)), -1);
		return;
	}
	assert_int_equal(ratelimit_key_make(&r, subject, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void
test_key_address_folding(void **state)
{
	expect_key(RATELIMIT_KEY_SENDER, "John.Doe@Example.ORG", "sender:john.doe@example.org");
	expect_key(RATELIMIT_KEY_SENDER, "john.doe@example.org.", "sender:john.doe@example.org");
	expect_key(RATELIMIT_KEY_RECIPIENT, "Bob@EXAMPLE.net", "recipient:bob@example.net");
	expect_key(RATELIMIT_KEY_SENDER_DOMAIN, "John@Example.ORG", "sender_domain:example.org");
	expect_key(RATELIMIT_KEY_RECIPIENT_DOMAIN, "x@Sub.Example.NET.",
	    "recipient_domain:sub.example.net");
	/* The domain is after the last @, also with a quoted local part. */
	expect_key(RATELIMIT_KEY_SENDER_DOMAIN, "\"a@b\"@Example.com", "sender_domain:example.com");
	/* 8-bit bytes stay as they are; only ASCII is folded. */
	expect_key(RATELIMIT_KEY_SENDER, "J\xc3\x96rg@Ex\xc3\xa4mple.DE",
	    "sender:j\xc3\x96rg@ex\xc3\xa4mple.de");
	expect_key(RATELIMIT_KEY_IP, "192.0.2.9", "ip:192.0.2.9");
	/* User names are not folded. */
	expect_key(RATELIMIT_KEY_USER, "Alice", "user:Alice");
}

static void
test_key_none(void **state)
{
	/* The null sender is not counted per sender. */
	expect_key(RATELIMIT_KEY_SENDER, "", NULL);
	expect_key(RATELIMIT_KEY_SENDER_DOMAIN, "", NULL);
	expect_key(RATELIMIT_KEY_SENDER, NULL, NULL);
	/* No domain, no domain key; the address itself still is one. */
	expect_key(RATELIMIT_KEY_SENDER, "postmaster", "sender:postmaster");
	expect_key(RATELIMIT_KEY_RECIPIENT_DOMAIN, "postmaster", NULL);
	expect_key(RATELIMIT_KEY_RECIPIENT_DOMAIN, "user@", NULL);
	expect_key(RATELIMIT_KEY_RECIPIENT_DOMAIN, "user@.", NULL);
	/* Without AUTH there is no user. */
	expect_key(RATELIMIT_KEY_USER, NULL, NULL);
	expect_key(RATELIMIT_KEY_USER, "", NULL);
	expect_key(RATELIMIT_KEY_IP, "not-an-address", NULL);
}

static void
test_key_long(void **state)
{
	struct ratelimit_rule	 r = { .key = RATELIMIT_KEY_SENDER };
	char			 a[1200], b[1200], ka[RATELIMIT_KEY_MAX], kb[RATELIMIT_KEY_MAX];

	memset(a, 'x', 1000);
	strcpy(a + 1000, "@example.org");
	memcpy(b, a, sizeof(a));
	b[999] = 'y';	/* differs only past the part kept in clear */
	assert_int_equal(ratelimit_key_make(&r, a, ka, sizeof(ka)), 0);
	assert_int_equal(ratelimit_key_make(&r, b, kb, sizeof(kb)), 0);
	assert_true(strlen(ka) < 420);
	assert_string_not_equal(ka, kb);
	/* Case still does not matter in the hashed part. */
	strcpy(b, a);
	strcpy(b + 1000, "@EXAMPLE.ORG");
	assert_int_equal(ratelimit_key_make(&r, b, kb, sizeof(kb)), 0);
	assert_string_equal(ka, kb);
	/* A buffer too small for the key is an error, not a cut key. */
	assert_int_equal(ratelimit_key_make(&r, "a@example.org", ka, 10), -1);
}

/* --- Options, actions, texts ---------------------------------------------------- */

static void
test_parse_option_values(void **state)
{
	enum ratelimit_key	 k;
	enum ratelimit_count	 c;
	int			 fc = -1;

	assert_int_equal(ratelimit_parse_key("ip", &k), 0);
	assert_int_equal(k, RATELIMIT_KEY_IP);
	assert_int_equal(ratelimit_parse_key("Recipient_Domain", &k), 0);
	assert_int_equal(k, RATELIMIT_KEY_RECIPIENT_DOMAIN);
	assert_int_equal(ratelimit_parse_key("user", &k), 0);
	assert_int_equal(k, RATELIMIT_KEY_USER);
	assert_int_equal(ratelimit_parse_key("domain", &k), -1);
	assert_int_equal(ratelimit_parse_key(NULL, &k), -1);
	assert_int_equal(ratelimit_parse_count("connections", &c), 0);
	assert_int_equal(c, RATELIMIT_COUNT_CONNECTIONS);
	assert_int_equal(ratelimit_parse_count("RECIPIENTS", &c), 0);
	assert_int_equal(c, RATELIMIT_COUNT_RECIPIENTS);
	assert_int_equal(ratelimit_parse_count("bytes", &c), -1);
	assert_int_equal(ratelimit_parse_store_error("accept", &fc), 0);
	assert_int_equal(fc, 0);
	assert_int_equal(ratelimit_parse_store_error("tempfail", &fc), 0);
	assert_int_equal(fc, 1);
	assert_int_equal(ratelimit_parse_store_error("reject", &fc), -1);
}

static void
test_rule_check(void **state)
{
	struct ratelimit_rule	 r = { .key = RATELIMIT_KEY_IP, .count = RATELIMIT_COUNT_MESSAGES,
	    .prefix4 = 24, .prefix6 = 64, .limit = 100, .window_ms = 3600000 };
	struct ratelimit_rule	 bad;
	char			 err[256];

	assert_int_equal(ratelimit_rule_check(&r, err, sizeof(err)), 0);
	bad = r;
	bad.count = RATELIMIT_COUNT_CONNECTIONS;
	bad.key = RATELIMIT_KEY_SENDER;
	assert_int_equal(ratelimit_rule_check(&bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs key = \"ip\""));
	bad = r;
	bad.limit = 0;
	assert_int_equal(ratelimit_rule_check(&bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "limit"));
	bad = r;
	bad.window_ms = 999;
	assert_int_equal(ratelimit_rule_check(&bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "window"));
	bad = r;
	bad.prefix4 = 33;
	assert_int_equal(ratelimit_rule_check(&bad, err, sizeof(err)), -1);
	bad = r;
	bad.prefix6 = -1;
	assert_int_equal(ratelimit_rule_check(&bad, err, sizeof(err)), -1);
}

static void
test_actions(void **state)
{
	struct ratelimit_rule	 r = { 0 };

	r.count = RATELIMIT_COUNT_CONNECTIONS;
	r.key = RATELIMIT_KEY_IP;
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_CONNECT), RATELIMIT_COUNT);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_MAIL), RATELIMIT_NONE);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_EOM), RATELIMIT_NONE);
	/* Messages: checked at MAIL, counted at the end of data. */
	r.count = RATELIMIT_COUNT_MESSAGES;
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_CONNECT), RATELIMIT_NONE);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_MAIL), RATELIMIT_CHECK);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_RCPT), RATELIMIT_NONE);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_EOM), RATELIMIT_COUNT);
	/* ... per recipient: checked at RCPT, where the key is known. */
	r.key = RATELIMIT_KEY_RECIPIENT_DOMAIN;
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_MAIL), RATELIMIT_NONE);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_RCPT), RATELIMIT_CHECK);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_EOM), RATELIMIT_COUNT);
	/* Recipients: counted at each RCPT, whatever the key. */
	r.count = RATELIMIT_COUNT_RECIPIENTS;
	r.key = RATELIMIT_KEY_SENDER;
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_MAIL), RATELIMIT_NONE);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_RCPT), RATELIMIT_COUNT);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_EOM), RATELIMIT_NONE);
	assert_int_equal(ratelimit_action(&r, SLUICE_PHASE_DATA), RATELIMIT_NONE);
}

static void
test_texts(void **state)
{
	struct ratelimit_rule	 r = { .key = RATELIMIT_KEY_IP, .count = RATELIMIT_COUNT_MESSAGES,
	    .limit = 100, .window_ms = 3600000 };
	char			 buf[300];

	ratelimit_format_duration(3600000, buf, sizeof(buf));
	assert_string_equal(buf, "1h");
	ratelimit_format_duration(90000, buf, sizeof(buf));
	assert_string_equal(buf, "90s");
	ratelimit_format_duration(120000, buf, sizeof(buf));
	assert_string_equal(buf, "2m");
	ratelimit_format_duration(86400000, buf, sizeof(buf));
	assert_string_equal(buf, "1d");
	ratelimit_format_duration(1500, buf, sizeof(buf));
	assert_string_equal(buf, "1500ms");
	ratelimit_reply_text(&r, "ip:192.0.2.0/24", buf, sizeof(buf));
	assert_string_equal(buf, "Too many messages from 192.0.2.0/24 (limit 100 per 1h), "
	    "try again later");
	r.key = RATELIMIT_KEY_RECIPIENT;
	r.count = RATELIMIT_COUNT_RECIPIENTS;
	r.window_ms = 60000;
	ratelimit_reply_text(&r, "recipient:b\x01@x\xc3\xa9.org", buf, sizeof(buf));
	assert_string_equal(buf, "Too many recipients to <b?@x??.org> (limit 100 per 1m), "
	    "try again later");
	r.key = RATELIMIT_KEY_USER;
	ratelimit_reply_text(&r, "user:secret-name", buf, sizeof(buf));
	assert_null(strstr(buf, "secret"));
	assert_string_equal(ratelimit_log_safe("sender:a b\"c\\\x01@x\xc3", 0, buf,
	    sizeof(buf)), "sender:a\\x20b\\x22c\\x5c\\x01@x\\xc3");
	/* In a quoted field spaces stay. */
	assert_string_equal(ratelimit_log_safe("redis down: \"x\"", 1, buf, sizeof(buf)),
	    "redis down: \\x22x\\x22");
	/* A small buffer cuts at a whole escape. */
	assert_string_equal(ratelimit_log_safe("\x01\x02\x03", 0, buf, 9), "\\x01");
}

/* --- The memory table ---------------------------------------------------------- */

static uint64_t	 fake_now;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

static void
test_memory_window(void **state)
{
	struct store_memory	*m = store_memory_new(16, 8, fake_clock);
	long long		 v, ttl;

	fake_now = 1000;
	assert_int_equal(store_memory_add(m, "a", 1, 1000, &v, &ttl), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ttl, 1000);
	fake_now = 1400;
	assert_int_equal(store_memory_add(m, "a", 1, 1000, &v, &ttl), 0);
	assert_int_equal(v, 2);
	assert_int_equal(ttl, 600);
	/* A later increment does not move the window. */
	fake_now = 1999;
	assert_int_equal(store_memory_add(m, "a", 3, 5000, &v, &ttl), 0);
	assert_int_equal(v, 5);
	assert_int_equal(ttl, 1);
	/* At its end the window is over: the next increment starts a new one. */
	fake_now = 2000;
	assert_int_equal(store_memory_add(m, "a", 1, 1000, &v, &ttl), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ttl, 1000);
	/* Keys are independent, also keys that are prefixes of others. */
	assert_int_equal(store_memory_add(m, "ab", 1, 1000, &v, &ttl), 0);
	assert_int_equal(v, 1);
	assert_int_equal(store_memory_add(m, "b", 7, 1000, &v, &ttl), 0);
	assert_int_equal(v, 7);
	assert_int_equal(store_memory_add(m, "a", 1, 1000, &v, &ttl), 0);
	assert_int_equal(v, 2);
	store_memory_free(m);
}

static void
test_memory_read(void **state)
{
	struct store_memory	*m = store_memory_new(16, 8, fake_clock);
	long long		 v = -1, ttl = -1;

	fake_now = 50;
	/* Reading an absent counter creates nothing. */
	assert_int_equal(store_memory_add(m, "r", 0, 1000, &v, &ttl), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ttl, 0);
	assert_int_equal(store_memory_count(m), 0);
	assert_int_equal(store_memory_add(m, "r", 2, 1000, &v, &ttl), 0);
	fake_now = 300;
	assert_int_equal(store_memory_add(m, "r", 0, 1000, &v, &ttl), 0);
	assert_int_equal(v, 2);
	assert_int_equal(ttl, 750);
	/* Reading an ended window gives 0 and does not restart it. */
	fake_now = 1050;
	assert_int_equal(store_memory_add(m, "r", 0, 1000, &v, &ttl), 0);
	assert_int_equal(v, 0);
	assert_int_equal(ttl, 0);
	assert_int_equal(store_memory_add(m, "r", 1, 1000, &v, &ttl), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ttl, 1000);
	store_memory_free(m);
}

static void
test_memory_cap(void **state)
{
	struct store_memory	*m = store_memory_new(4, 8, fake_clock);
	long long		 v, ttl;
	char			 key[16];
	int			 i;

	fake_now = 10;
	for (i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(store_memory_add(m, key, 1, 1000, &v, &ttl), 0);
	}
	/* Full of live counters: a new key is refused, old ones still count. */
	assert_int_equal(store_memory_add(m, "new", 1, 1000, &v, &ttl), -1);
	assert_int_equal(v, 0);
	assert_int_equal(store_memory_count(m), 4);
	assert_int_equal(store_memory_add(m, "k2", 1, 1000, &v, &ttl), 0);
	assert_int_equal(v, 2);
	/* A read of a new key is no insertion: not refused. */
	assert_int_equal(store_memory_add(m, "new", 0, 1000, &v, &ttl), 0);
	/* Once the old windows ended, their room is taken back. */
	fake_now = 1010;
	assert_int_equal(store_memory_add(m, "new", 1, 1000, &v, &ttl), 0);
	assert_int_equal(v, 1);
	assert_true(store_memory_count(m) <= 4);
	store_memory_free(m);
}

static void
test_memory_purge_incremental(void **state)
{
	struct store_memory	*m = store_memory_new(1000, 64, fake_clock);
	long long		 v, ttl;
	char			 key[16];
	int			 i;

	fake_now = 1;
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "old%d", i);
		assert_int_equal(store_memory_add(m, key, 1, 100, &v, &ttl), 0);
	}
	assert_int_equal(store_memory_count(m), 500);
	fake_now = 1000;
	assert_int_equal(store_memory_add(m, "live", 1, 100000, &v, &ttl), 0);
	/* Every operation sweeps two buckets: 32 more cover all 64. */
	for (i = 0; i < 32; i++)
		assert_int_equal(store_memory_add(m, "live", 1, 100000, &v, &ttl), 0);
	assert_int_equal(store_memory_count(m), 1);
	assert_int_equal(v, 33);
	store_memory_free(m);
}

static void
test_memory_flood(void **state)
{
	struct store_memory	*m = store_memory_new(256, 64, fake_clock);
	long long		 v, ttl;
	char			 key[32];
	int			 i, refused = 0;

	/* 100000 distinct keys, each for an hour: never more than the cap held. */
	for (i = 0; i < 100000; i++) {
		fake_now = 5000 + (uint64_t)i;
		snprintf(key, sizeof(key), "flood-%d", i);
		if (store_memory_add(m, key, 1, 3600000, &v, &ttl) == -1)
			refused++;
		assert_true(store_memory_count(m) <= 256);
	}
	assert_int_equal(refused, 100000 - 256);
	store_memory_free(m);
}

static void
test_memory_saturation(void **state)
{
	struct store_memory	*m = store_memory_new(8, 8, fake_clock);
	long long		 v, ttl;

	fake_now = 7;
	assert_int_equal(store_memory_add(m, "big", LLONG_MAX, 1000, &v, &ttl), 0);
	assert_int_equal(store_memory_add(m, "big", 5, 1000, &v, &ttl), 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(store_memory_add(m, "neg", 2, 1000, &v, &ttl), 0);
	assert_int_equal(store_memory_add(m, "neg", -3, 1000, &v, &ttl), 0);
	assert_int_equal(v, -1);
	store_memory_free(m);
}

struct thread_arg {
	struct store_memory	*m;
	char			 own[16];
};

static void *
memory_hammer(void *p)
{
	struct thread_arg	*t = p;
	long long		 v, ttl;
	int			 i;

	for (i = 0; i < 20000; i++) {
		store_memory_add(t->m, "shared", 1, 3600000, &v, &ttl);
		store_memory_add(t->m, t->own, 1, 3600000, &v, &ttl);
	}
	return NULL;
}

static void
test_memory_threads(void **state)
{
	struct store_memory	*m = store_memory_new(64, 16, monotonic_ms);
	struct thread_arg	 args[4];
	pthread_t		 th[4];
	long long		 v, ttl;
	int			 i;

	for (i = 0; i < 4; i++) {
		args[i].m = m;
		snprintf(args[i].own, sizeof(args[i].own), "own%d", i);
		assert_int_equal(pthread_create(&th[i], NULL, memory_hammer, &args[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(store_memory_add(m, "shared", 0, 3600000, &v, &ttl), 0);
	assert_int_equal(v, 80000);
	assert_int_equal(store_memory_add(m, "own3", 0, 3600000, &v, &ttl), 0);
	assert_int_equal(v, 20000);
	store_memory_free(m);
}

/* --- The service: sluice_store_open, sluice_counter_add --------------------------- */

static struct session	 test_session;
static struct sluice_ctx test_ctx;

static void
test_store_open_registry(void **state)
{
	struct sluice_store	*a, *b;
	char			 err[256];

	assert_non_null(a = sluice_store_open(NULL, "memory", err, sizeof(err)));
	assert_ptr_equal(sluice_store_open(NULL, "MEMORY", err, sizeof(err)), a);
	assert_ptr_equal(sluice_store_open(NULL, NULL, err, sizeof(err)), a);
	assert_ptr_equal(sluice_store_open(NULL, "", err, sizeof(err)), a);
	/* One store per canonical spec: the defaults written out are the same. */
	assert_non_null(b = sluice_store_open(NULL, "redis://127.0.0.1:6379", err, sizeof(err)));
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(sluice_store_open(NULL, "redis://127.0.0.1:6379/0?timeout=250ms&"
	    "prefix=sluice:", err, sizeof(err)), b);
	assert_ptr_equal(sluice_store_open(NULL, "redis://127.0.0.1", err, sizeof(err)), b);
	assert_ptr_not_equal(sluice_store_open(NULL, "redis://127.0.0.1/1", err, sizeof(err)), b);
	err[0] = '\0';
	assert_null(sluice_store_open(NULL, "mysql://127.0.0.1", err, sizeof(err)));
	assert_non_null(strstr(err, "\"memory\" or \"redis://"));
	err[0] = '\0';
	assert_null(sluice_store_open(NULL, "memory:", err, sizeof(err)));
	assert_true(err[0] != '\0');
	/* A name is resolved when the store opens (localhost: no DNS needed). */
	assert_non_null(sluice_store_open(NULL, "redis://localhost:6399", err, sizeof(err)));
}

static void
test_counter_add_contract(void **state)
{
	struct sluice_store	*st;
	struct result		 r1 = { 0 }, r2 = { 0 };
	char			 err[256];

	assert_non_null(st = sluice_store_open(NULL, "memory", err, sizeof(err)));
	assert_int_equal(sluice_counter_add(&test_ctx, st, "contract", 1, 60000, record_cb,
	    &r1), 0);
	/* Never inside the call: through the worker's queue. */
	assert_int_equal(r1.calls, 0);
	assert_int_equal(gen_refs, 1);	/* the session's generation is held */
	assert_int_equal(sluice_counter_add(&test_ctx, st, "contract", 1, 60000, record_cb,
	    &r2), 0);
	assert_int_equal(run_posted(), 2);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r1.ok, 1);
	assert_int_equal(r1.value, 1);
	assert_int_equal(r1.ttl, 60000);
	assert_string_equal(r1.why, "");
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r2.value, 2);
	assert_int_equal(gen_refs, 0);
	assert_int_equal(run_posted(), 0);	/* exactly once */
}

static void
test_counter_add_refused(void **state)
{
	struct sluice_store	*st;
	struct result		 r = { 0 };
	char			 err[256], *big;

	assert_non_null(st = sluice_store_open(NULL, "memory", err, sizeof(err)));
	big = xcalloc(1, STORE_KEY_MAX + 2);
	memset(big, 'k', STORE_KEY_MAX + 1);
	assert_int_equal(sluice_counter_add(&test_ctx, st, NULL, 1, 1000, record_cb, &r), -1);
	assert_int_equal(sluice_counter_add(&test_ctx, st, "", 1, 1000, record_cb, &r), -1);
	assert_int_equal(sluice_counter_add(&test_ctx, st, big, 1, 1000, record_cb, &r), -1);
	assert_int_equal(sluice_counter_add(&test_ctx, st, "k", 1, 0, record_cb, &r), -1);
	assert_int_equal(sluice_counter_add(&test_ctx, st, "k", 1, 1000, NULL, &r), -1);
	assert_int_equal(sluice_counter_add(&test_ctx, NULL, "k", 1, 1000, record_cb, &r), -1);
	assert_int_equal(sluice_counter_add(NULL, st, "k", 1, 1000, record_cb, &r), -1);
	big[STORE_KEY_MAX] = '\0';	/* the longest key is fine */
	assert_int_equal(sluice_counter_add(&test_ctx, st, big, 1, 1000, record_cb, &r), 0);
	free(big);
	assert_int_equal(run_posted(), 1);
	assert_int_equal(r.calls, 1);
	assert_int_equal(gen_refs, 0);
}

/* --- redis:// specs ------------------------------------------------------------------ */

static void
test_redis_spec_parse(void **state)
{
	struct store_redis_spec	 s;
	char			 err[256], buf[400];

	assert_int_equal(store_redis_parse_spec("redis://127.0.0.1", &s, err, sizeof(err)), 0);
	assert_string_equal(s.host, "127.0.0.1");
	assert_int_equal(s.port, 6379);
	assert_int_equal(s.db, 0);
	assert_int_equal(s.timeout_ms, 250);
	assert_string_equal(s.prefix, "sluice:");
	assert_int_equal(store_redis_parse_spec("REDIS://cache-1.example:6380/3?timeout=1s&"
	    "prefix=rl:", &s, err, sizeof(err)), 0);
	assert_string_equal(s.host, "cache-1.example");
	assert_int_equal(s.port, 6380);
	assert_int_equal(s.db, 3);
	assert_int_equal(s.timeout_ms, 1000);
	assert_string_equal(s.prefix, "rl:");
	store_redis_format_spec(&s, buf, sizeof(buf));
	assert_string_equal(buf, "redis://cache-1.example:6380/3?timeout=1000ms&prefix=rl:");
	assert_int_equal(store_redis_parse_spec("redis://[::1]:7000/?prefix=", &s, err,
	    sizeof(err)), 0);
	assert_string_equal(s.host, "::1");
	assert_int_equal(s.db, 0);
	assert_string_equal(s.prefix, "");
	store_redis_format_spec(&s, buf, sizeof(buf));
	assert_string_equal(buf, "redis://[::1]:7000/0?timeout=250ms&prefix=");
	assert_int_equal(store_redis_parse_spec("redis://h?timeout=75ms", &s, err,
	    sizeof(err)), 0);
	assert_int_equal(s.timeout_ms, 75);
}

static void
test_redis_spec_bad(void **state)
{
	static const char *const bad[] = {
		"redis://", "redis://:6379", "redis://h:0", "redis://h:65536", "redis://h:12x",
		"redis://h:", "redis://h:-1", "redis://h/abc", "redis://h/1x", "redis://h/70000",
		"redis://h?timeout=0", "redis://h?timeout=61s", "redis://h?timeout=abc",
		"redis://h?timeout", "redis://h?prefix=a b", "redis://h?prefix={x}",
		"redis://h?foo=1", "redis://h?timeout=1s&", "redis://h?", "redis://h?&", "redis://[::1", "redis://[]:1",
		"redis://[zz]:1", "redis://h\xff", "redis://h h", "redis://h#x", "redis:/h",
		"http://h", "redis://h?prefix=0123456789012345678901234567890123456789"
		"0123456789012345678901234567890",
	};
	struct store_redis_spec	 s;
	char			 err[256], longspec[600];
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (store_redis_parse_spec(bad[i], &s, err, sizeof(err)) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_true(err[0] != '\0');
	}
	snprintf(longspec, sizeof(longspec), "redis://%0500d", 1);
	assert_int_equal(store_redis_parse_spec(longspec, &s, err, sizeof(err)), -1);
	assert_int_equal(store_redis_parse_spec(NULL, &s, err, sizeof(err)), -1);
}

/* --- A fake Redis server in this process ------------------------------------------- */

enum fake_mode {
	FAKE_ANSWER,		/* {n, 60000} at once, n counting requests */
	FAKE_SILENT,		/* read, never answer */
	FAKE_SERIAL,		/* one answer every 300 ms, in order */
	FAKE_ERROR,		/* -ERR boom */
	FAKE_STATUS		/* +OK: not what the script returns */
};

struct fake {
	struct evconnlistener	*listener;
	int			 port;
	enum fake_mode		 mode;
	int			 accepts;	/* connections accepted */
	int			 closes;	/* connections the client closed */
	int			 commands;	/* complete commands read */
	int			 answered;	/* answers written */
	char			 argv0[16];	/* the last command's name */
	char			 key[128];	/* its KEYS[1] */
	char			 delta[32];	/* ARGV[1] */
	char			 window[32];	/* ARGV[2] */
	struct bufferevent	*bev;		/* the current connection */
	struct event		*timer;		/* FAKE_SERIAL */
	int			 backlog;	/* FAKE_SERIAL: answers owed */
	long long		 n;		/* FAKE_ANSWER/SERIAL counter */
};

static void
fake_answer(struct fake *f, struct bufferevent *bev)
{
	switch (f->mode) {
	case FAKE_ERROR:
		bufferevent_write(bev, "-ERR boom\r\n", 11);
		break;
	case FAKE_STATUS:
		bufferevent_write(bev, "+OK\r\n", 5);
		break;
	default:
		evbuffer_add_printf(bufferevent_get_output(bev), "*2\r\n:%lld\r\n:60000\r\n",
		    ++f->n);
		break;
	}
	f->answered++;
}

static void
fake_serial_cb(evutil_socket_t fd, short events, void *arg)
{
	struct fake		*f = arg;
	struct timeval		 tv = { 0, 300000 };

	if (f->bev == NULL || f->backlog == 0)
		return;
	fake_answer(f, f->bev);
	if (--f->backlog > 0)
		evtimer_add(f->timer, &tv);
}

/* One bulk string at p (of n bytes left) into out; bytes used, 0 if incomplete. */
static size_t
fake_bulk(const char *p, size_t n, char *out, size_t outlen)
{
	const char	*crlf = memchr(p, '\r', n);
	long		 len;

	if (crlf == NULL || p[0] != '$')
		return 0;
	len = strtol(p + 1, NULL, 10);
	if ((size_t)(crlf - p) + 2 + (size_t)len + 2 > n)
		return 0;
	snprintf(out, outlen, "%.*s", (int)len, crlf + 2);
	return (size_t)(crlf - p) + 2 + (size_t)len + 2;
}

/* One complete command off in; 1 if one was taken. */
static int
fake_command(struct fake *f, struct evbuffer *in)
{
	size_t		 n = evbuffer_get_length(in), used, k;
	char		*p, *crlf, scratch[1024];
	long		 argc, i;

	if (n == 0)
		return 0;
	p = (char *)evbuffer_pullup(in, -1);
	if (p[0] != '*' || (crlf = memchr(p, '\r', n)) == NULL || (size_t)(crlf - p) + 2 > n)
		return 0;
	argc = strtol(p + 1, NULL, 10);
	used = (size_t)(crlf - p) + 2;
	for (i = 0; i < argc; i++) {
		char	*out = i == 0 ? f->argv0 : i == 3 ? f->key : i == 4 ? f->delta :
			    i == 5 ? f->window : scratch;
		size_t	 outlen = i == 0 ? sizeof(f->argv0) : i == 3 ? sizeof(f->key) :
			    i == 4 ? sizeof(f->delta) : i == 5 ? sizeof(f->window) :
			    sizeof(scratch);

		if ((k = fake_bulk(p + used, n - used, out, outlen)) == 0)
			return 0;
		used += k;
	}
	evbuffer_drain(in, used);
	f->commands++;
	return 1;
}

static void
fake_read_cb(struct bufferevent *bev, void *arg)
{
	struct fake	*f = arg;
	struct timeval	 tv = { 0, 300000 };

	while (fake_command(f, bufferevent_get_input(bev))) {
		if (f->mode == FAKE_SILENT)
			continue;
		if (f->mode != FAKE_SERIAL) {
			fake_answer(f, bev);
			continue;
		}
		if (f->backlog++ == 0)
			evtimer_add(f->timer, &tv);
	}
}

static void
fake_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct fake	*f = arg;

	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		f->closes++;
		if (f->bev == bev)
			f->bev = NULL;
		bufferevent_free(bev);
	}
}

static void
fake_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
    void *arg)
{
	struct fake		*f = arg;
	struct bufferevent	*bev = bufferevent_socket_new(test_base, fd,
				    BEV_OPT_CLOSE_ON_FREE);

	f->accepts++;
	if (f->bev != NULL)
		bufferevent_free(f->bev);
	f->bev = bev;
	f->backlog = 0;
	bufferevent_setcb(bev, fake_read_cb, NULL, fake_event_cb, f);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* A fake on port (0: any free one). */
static struct fake *
fake_start(enum fake_mode mode, int port)
{
	struct fake		*f = xcalloc(1, sizeof(*f));
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	f->mode = mode;
	f->listener = evconnlistener_new_bind(test_base, fake_accept_cb, f,
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE, 16, (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(f->listener);
	getsockname(evconnlistener_get_fd(f->listener), (struct sockaddr *)&sin, &len);
	f->port = ntohs(sin.sin_port);
	f->timer = evtimer_new(test_base, fake_serial_cb, f);
	return f;
}

static void
fake_stop(struct fake *f)
{
	if (f->bev != NULL)
		bufferevent_free(f->bev);
	evconnlistener_free(f->listener);
	event_free(f->timer);
	free(f);
}

/* A loopback port nothing listens on (for now). */
static int
unused_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 s = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(s, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(s);
	return port;
}

static struct sluice_store *
redis_store(int port, const char *params)
{
	struct sluice_store	*st;
	char			 spec[200], err[256];

	snprintf(spec, sizeof(spec), "redis://127.0.0.1:%d%s", port, params);
	if ((st = store_open(spec, err, sizeof(err))) == NULL)
		fail_msg("%s: %s", spec, err);
	return st;
}

/* --- The Redis backend ---------------------------------------------------------------- */

static void
test_redis_answers(void **state)
{
	struct fake		*f = fake_start(FAKE_ANSWER, 0);
	struct sluice_store	*st = redis_store(f->port, "?prefix=t:");
	struct result		 r1 = { 0 }, r2 = { 0 };

	assert_int_equal(store_counter_add(st, &test_worker, "ip:192.0.2.1", 1, 60000,
	    record_cb, &r1), 0);
	assert_int_equal(r1.calls, 0);
	loop_until(&r1.calls, 1, 3000);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r1.ok, 1);
	assert_int_equal(r1.value, 1);
	assert_int_equal(r1.ttl, 60000);
	/* One EVAL with the hash-tagged key, the delta and the window. */
	assert_string_equal(f->argv0, "EVAL");
	assert_string_equal(f->key, "t:{ip:192.0.2.1}");
	assert_string_equal(f->delta, "1");
	assert_string_equal(f->window, "60000");
	assert_int_equal(store_counter_add(st, &test_worker, "ip:192.0.2.1", 0, 60000,
	    record_cb, &r2), 0);
	loop_until(&r2.calls, 1, 3000);
	assert_int_equal(r2.value, 2);
	assert_string_equal(f->delta, "0");
	/* The same connection served both. */
	assert_int_equal(f->accepts, 1);
	loop_for(20);
	assert_int_equal(r1.calls + r2.calls, 2);
	/* Another thread may not use this worker's connection. */
	test_current = NULL;
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 1000, record_cb, &r1), -1);
	test_current = &test_worker;
	fake_stop(f);
	loop_for(20);	/* the store sees its connection close */
}

static void
test_redis_refused_then_reconnects(void **state)
{
	int			 port = unused_port();
	struct sluice_store	*st = redis_store(port, "?timeout=2s");
	struct result		 r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	struct fake		*f;

	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r1), 0);
	assert_int_equal(r1.calls, 0);
	loop_until(&r1.calls, 1, 3000);
	assert_int_equal(r1.ok, 0);
	assert_non_null(strstr(r1.why, "refused"));
	/* Within the backoff: no new attempt, an answer at once. */
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r2), 0);
	assert_int_equal(r2.calls, 0);
	assert_int_equal(run_posted(), 1);
	assert_int_equal(r2.ok, 0);
	assert_non_null(strstr(r2.why, "redis down"));
	/* The server comes up; after the backoff the store connects again. */
	f = fake_start(FAKE_ANSWER, port);
	sleep_ms(250);
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r3), 0);
	loop_until(&r3.calls, 1, 3000);
	assert_int_equal(r3.ok, 1);
	assert_int_equal(r3.value, 1);
	assert_int_equal(f->accepts, 1);
	assert_int_equal(r1.calls + r2.calls + r3.calls, 3);
	fake_stop(f);
	loop_for(20);
}

static void
test_redis_stuck_server_times_out(void **state)
{
	struct fake		*f = fake_start(FAKE_SILENT, 0);
	struct sluice_store	*st = redis_store(f->port, "?timeout=200ms");
	struct result		 r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
	uint64_t		 t0 = monotonic_ms();

	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r1), 0);
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r2), 0);
	loop_until(&r2.calls, 1, 3000);
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r1.ok, 0);
	assert_string_equal(r1.why, "timeout");
	assert_string_equal(r2.why, "timeout");
	assert_true(r1.at_ms - t0 >= 190);
	assert_true(r1.at_ms - t0 < 2000);
	/* No reply since they were sent: the connection is dropped... */
	loop_until(&f->closes, 1, 2000);
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->commands, 2);
	/* ... and the next request fails at once instead of piling up. */
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r3), 0);
	assert_int_equal(run_posted(), 1);
	assert_int_equal(r3.ok, 0);
	assert_non_null(strstr(r3.why, "redis down: timeout"));
	assert_int_equal(f->accepts, 1);
	fake_stop(f);
}

static void
test_redis_late_reply_dropped(void **state)
{
	struct fake		*f = fake_start(FAKE_SERIAL, 0);
	struct sluice_store	*st = redis_store(f->port, "?timeout=450ms");
	struct result		 r[4];

	memset(r, 0, sizeof(r));
	/* Answers come at 300, 600 and 900 ms: the second and third are late. */
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r[0]),
	    0);
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r[1]),
	    0);
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r[2]),
	    0);
	loop_until(&r[2].calls, 1, 3000);
	assert_int_equal(r[0].ok, 1);
	assert_int_equal(r[0].value, 1);
	assert_string_equal(r[1].why, "timeout");
	assert_string_equal(r[2].why, "timeout");
	/* Replies kept flowing, so the connection stays; the late ones arrive. */
	loop_until(&f->answered, 3, 3000);
	loop_for(30);
	assert_int_equal(f->closes, 0);
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r[3]),
	    0);
	loop_until(&r[3].calls, 1, 3000);
	assert_int_equal(r[3].ok, 1);
	assert_int_equal(r[3].value, 4);
	assert_int_equal(f->accepts, 1);
	assert_int_equal(r[0].calls + r[1].calls + r[2].calls + r[3].calls, 4);
	fake_stop(f);
	loop_for(20);
}

static void
test_redis_error_replies(void **state)
{
	struct fake		*f = fake_start(FAKE_ERROR, 0);
	struct sluice_store	*st = redis_store(f->port, "");
	struct result		 r1 = { 0 }, r2 = { 0 };

	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r1), 0);
	loop_until(&r1.calls, 1, 3000);
	assert_int_equal(r1.ok, 0);
	assert_string_equal(r1.why, "redis: ERR boom");
	f->mode = FAKE_STATUS;
	assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb, &r2), 0);
	loop_until(&r2.calls, 1, 3000);
	assert_int_equal(r2.ok, 0);
	assert_string_equal(r2.why, "redis: unexpected reply");
	/* Errors are answers: the connection is fine. */
	assert_int_equal(f->accepts, 1);
	assert_int_equal(f->closes, 0);
	fake_stop(f);
	loop_for(20);
}

/* Last: the store is shut for the rest of the process. */
static void
test_shutdown_answers_in_flight(void **state)
{
	struct fake		*f = fake_start(FAKE_SILENT, 0);
	struct sluice_store	*st = redis_store(f->port, "?timeout=5s");
	struct result		 r[3];
	int			 i;

	memset(r, 0, sizeof(r));
	for (i = 0; i < 3; i++)
		assert_int_equal(store_counter_add(st, &test_worker, "k", 1, 60000, record_cb,
		    &r[i]), 0);
	loop_until(&f->commands, 3, 3000);
	assert_int_equal(r[0].calls + r[1].calls + r[2].calls, 0);
	store_shutdown();
	/* The workers are gone at exit: every callback ran, here and once. */
	for (i = 0; i < 3; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].ok, 0);
		assert_string_equal(r[i].why, "redis: shutdown");
	}
	assert_int_equal(nposted, 0);
	fake_stop(f);
}

static int
group_setup(void **state)
{
	log_init("test_ratelimit", 1, 0);
	log_set_level(LOG_LEVEL_ERROR);
	if ((test_base = event_base_new()) == NULL)
		return -1;
	test_worker.id = 0;
	test_worker.base = test_base;
	test_session.worker = &test_worker;
	test_ctx.session = &test_session;
	return 0;
}

static int
group_teardown(void **state)
{
	store_shutdown();
	run_posted();
	free(posted);
	event_base_free(test_base);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_ip_v4),
		cmocka_unit_test(test_key_ip_v6),
		cmocka_unit_test(test_key_ip_mapped_and_garbage),
		cmocka_unit_test(test_key_address_folding),
		cmocka_unit_test(test_key_none),
		cmocka_unit_test(test_key_long),
		cmocka_unit_test(test_parse_option_values),
		cmocka_unit_test(test_rule_check),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_texts),
		cmocka_unit_test(test_memory_window),
		cmocka_unit_test(test_memory_read),
		cmocka_unit_test(test_memory_cap),
		cmocka_unit_test(test_memory_purge_incremental),
		cmocka_unit_test(test_memory_flood),
		cmocka_unit_test(test_memory_saturation),
		cmocka_unit_test(test_memory_threads),
		cmocka_unit_test(test_store_open_registry),
		cmocka_unit_test(test_counter_add_contract),
		cmocka_unit_test(test_counter_add_refused),
		cmocka_unit_test(test_redis_spec_parse),
		cmocka_unit_test(test_redis_spec_bad),
		cmocka_unit_test(test_redis_answers),
		cmocka_unit_test(test_redis_refused_then_reconnects),
		cmocka_unit_test(test_redis_stuck_server_times_out),
		cmocka_unit_test(test_redis_late_reply_dropped),
		cmocka_unit_test(test_redis_error_replies),
		cmocka_unit_test(test_shutdown_answers_in_flight),
	};

	return cmocka_run_group_tests_name("ratelimit", tests, group_setup, group_teardown);
}
