/*
 * test_filter_common.c - the code the built-in filters share
 * (filters/common/): the reply option parser ("550 5.7.1 text") and the
 * client network lists (CIDR, IPv4 and IPv6, IPv4-mapped).  Every input is
 * also fed as each of its prefixes, copied into an exactly sized heap
 * buffer so that ASan catches a read past the terminating NUL, and the
 * prefixes that parse are checked to be exactly the expected ones.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/net.h"
#include "common/reply.h"

static char	*exact_copy(const char *, size_t);
static void	 assert_reply_refused(const char *, const char *);
static void	 assert_net_refused(const char *, int, const char *);
static void	 add_net(struct filter_net *, size_t *, const char *);

/* The first n bytes of s in a buffer of exactly n + 1 bytes; caller frees. */
static char *
exact_copy(const char *s, size_t n)
{
	char	*p = malloc(n + 1);

	assert_non_null(p);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* --- Replies --------------------------------------------------------------- */

static void
assert_reply_refused(const char *s, const char *sentence)
{
	struct filter_reply	 r;
	char			 err[256];

	err[0] = '\0';
	if (filter_reply_parse(s, &r, err, sizeof(err)) != -1)
		fail_msg("accepted \"%s\"", s);
	if (strstr(err, sentence) == NULL)
		fail_msg("\"%s\": got \"%s\", want \"%s\"", s, err, sentence);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.text, "");
}

static void
test_reply_good(void **state)
{
	struct filter_reply	 r;
	char			 err[256];

	assert_int_equal(filter_reply_parse("554 5.7.1 Relay access denied", &r, err,
	    sizeof(err)), 0);
	assert_int_equal(r.code, 554);
	assert_string_equal(r.enhanced, "5.7.1");
	assert_string_equal(r.text, "Relay access denied");
	assert_int_equal(filter_reply_parse("450 4.7.1 Try again later", &r, err,
	    sizeof(err)), 0);
	assert_int_equal(r.code, 450);
	assert_string_equal(r.enhanced, "4.7.1");
	assert_int_equal(filter_reply_parse("550 5.123.999 x", &r, err, sizeof(err)), 0);
	assert_string_equal(r.enhanced, "5.123.999");
	assert_string_equal(r.text, "x");
	/* Spaces between the enhanced code and the text are not text. */
	assert_int_equal(filter_reply_parse("421 4.7.0   later {x} ~", &r, err,
	    sizeof(err)), 0);
	assert_int_equal(r.code, 421);
	assert_string_equal(r.text, "later {x} ~");
	assert_int_equal(filter_reply_parse("599 5.0.0 trailing space ", &r, err,
	    sizeof(err)), 0);
	assert_string_equal(r.text, "trailing space ");
}

static void
test_reply_bad(void **state)
{
	static const char *const code[] = {
		"", "554", "55 5.7.1 x", "654 6.7.1 x", "354 3.0.0 x", "254 2.0.0 x",
		"5540 5.7.1 x", "554-5.7.1 x", "550\t5.7.1 x", " 550 5.7.1 x",
		"+55 5.7.1 x", "5a4 5.7.1 x", "\xb5" "50 5.7.1 x",
	};
	static const char *const enhanced[] = {
		"554 ", "554  5.7.1 x", "554 5.7.1", "554 4.7.1 x", "451 5.7.1 x", "554 5.7 x", "554 5.7.1234 x",
		"554 5..1 x", "554 5.7.1x", "554 5.7.1x y", "554 5.1000.1 x", "554 x.7.1 x",
		"554 5.7.x x", "554 5.7. x", "554 .7.1 x", "554 5.7.1\tx", "554 5-7-1 x",
	};
	static const char *const text[] = {
		"554 5.7.1 a\r\nb", "554 5.7.1 a\nb", "554 5.7.1 tab\there", "554 5.7.1 caf\xc3\xa9",
		"554 5.7.1 del\x7f", "554 5.7.1 x\x01",
	};
	struct filter_reply	 r;
	char			 big[FILTER_REPLY_MAX + 2], err[256];
	size_t			 i;

	for (i = 0; i < sizeof(code) / sizeof(code[0]); i++)
		assert_reply_refused(code[i], i == 0 ? "it is empty" : "a code 4xx or 5xx");
	for (i = 0; i < sizeof(enhanced) / sizeof(enhanced[0]); i++)
		assert_reply_refused(enhanced[i], "enhanced code");
	assert_reply_refused("451 5.7.1 x", "enhanced code 4.y.z of the same class");
	assert_reply_refused("554 5.7.1 ", "text after the enhanced code is missing");
	assert_reply_refused("554 5.7.1    ", "text after the enhanced code is missing");
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++)
		assert_reply_refused(text[i], "printable ASCII");
	assert_reply_refused(NULL, "it is empty");
	/* FILTER_REPLY_MAX bytes in all fit, one more does not. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "550 5.7.1 ", 10);
	big[FILTER_REPLY_MAX] = '\0';
	assert_int_equal(filter_reply_parse(big, &r, err, sizeof(err)), 0);
	assert_int_equal(strlen(r.text), FILTER_REPLY_MAX - 10);
	big[FILTER_REPLY_MAX] = 'x';
	big[FILTER_REPLY_MAX + 1] = '\0';
	assert_reply_refused(big, "longer than 400 bytes");
}

/* Each prefix of a reply: only those with some text parse, and whole. */
static void
test_reply_prefixes(void **state)
{
	static const char *const inputs[] = {
		"550 5.7.23 No {domain} here", "421 4.123.456  x", "554 5.7.1 Relay access denied",
	};
	struct filter_reply	 r;
	char			 err[256], *buf;
	size_t			 i, n, first;

	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		/* The first byte of text: after the enhanced code and its spaces. */
		first = strcspn(inputs[i] + 4, " ") + 4;
		first += strspn(inputs[i] + first, " ");
		for (n = 0; n <= strlen(inputs[i]); n++) {
			buf = exact_copy(inputs[i], n);
			err[0] = '\0';
			if (filter_reply_parse(buf, &r, err, sizeof(err)) == 0) {
				if (n <= first)
					fail_msg("accepted prefix \"%s\"", buf);
				assert_string_equal(r.text, buf + first);
				assert_int_equal(r.code, atoi(buf));
			} else {
				if (n > first)
					fail_msg("refused prefix \"%s\": %s", buf, err);
				assert_true(err[0] != '\0');
			}
			free(buf);
		}
	}
}

/* A short err buffer gets a cut sentence, never an overflow. */
static void
test_reply_small_err(void **state)
{
	struct filter_reply	 r;
	char			 err[8];

	assert_int_equal(filter_reply_parse("554 4.7.1 x", &r, err, sizeof(err)), -1);
	assert_int_equal(strlen(err), sizeof(err) - 1);
	assert_int_equal(filter_reply_parse("554 5.7.1 x", &r, NULL, 0), 0);
}

/* --- Networks -------------------------------------------------------------- */

static void
assert_net_refused(const char *s, int rc, const char *sentence)
{
	struct filter_net	 n;
	char			 err[256];

	err[0] = '\0';
	if (filter_net_parse(s, &n, err, sizeof(err)) != rc)
		fail_msg("\"%s\" not refused with %d", s, rc);
	if (strstr(err, sentence) == NULL)
		fail_msg("\"%s\": got \"%s\", want \"%s\"", s, err, sentence);
}

static void
test_net_parse_good(void **state)
{
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	struct filter_net	 n;
	char			 err[256];

	assert_int_equal(filter_net_parse("192.0.2.0/24", &n, err, sizeof(err)), 0);
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.prefix, 24);
	assert_memory_equal(n.addr, "\xc0\x00\x02\x00", 4);
	assert_int_equal(filter_net_parse("192.0.2.7", &n, err, sizeof(err)), 0);
	assert_int_equal(n.prefix, 32);
	assert_int_equal(filter_net_parse("::1", &n, err, sizeof(err)), 0);
	assert_int_equal(n.family, AF_INET6);
	assert_int_equal(n.prefix, 128);
	assert_int_equal(filter_net_parse("::1/128", &n, err, sizeof(err)), 0);
	assert_int_equal(filter_net_parse("2001:db8::/32", &n, err, sizeof(err)), 0);
	assert_int_equal(n.prefix, 32);
	assert_memory_equal(n.addr, v6, 16);
	assert_int_equal(filter_net_parse("[2001:db8::]/32", &n, err, sizeof(err)), 0);
	assert_memory_equal(n.addr, v6, 16);
	assert_int_equal(filter_net_parse("[2001:db8::1]", &n, err, sizeof(err)), 0);
	assert_int_equal(n.prefix, 128);
	assert_int_equal(filter_net_parse("128.0.0.0/1", &n, err, sizeof(err)), 0);
	assert_int_equal(filter_net_parse("10.0.0.0/9", &n, err, sizeof(err)), 0);
	assert_int_equal(filter_net_parse("10.0.0.0/008", &n, err, sizeof(err)), 0);
	assert_int_equal(n.prefix, 8);
	/* An IPv4-mapped network is an IPv4 one; a shorter one stays IPv6. */
	assert_int_equal(filter_net_parse("::ffff:192.0.2.0/120", &n, err, sizeof(err)), 0);
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.prefix, 24);
	assert_memory_equal(n.addr, "\xc0\x00\x02\x00", 4);
	assert_int_equal(filter_net_parse("::ffff:0:0/95", &n, err, sizeof(err)), -1);
	assert_int_equal(filter_net_parse("::fffe:0:0/95", &n, err, sizeof(err)), 0);
	assert_int_equal(n.family, AF_INET6);
}

static void
test_net_parse_bad(void **state)
{
	static const char *const not_address[] = {
		"", "/24", "192.0.2/24", "192.0.2.256", "010.0.0.1", "example.org",
		"fe80::1%eth0", "[192.0.2.0]x/24", "[::1", "::1]", "[]", "[]/8",
		"192.0.2.0 /24", " 192.0.2.0/24", "192.0.2.1\xff",
		"0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000/128",
	};
	static const char *const bad_prefix[] = {
		"192.0.2.0/", "192.0.2.0/-1", "192.0.2.0/+8", "192.0.2.0/2x", "192.0.2.0/1000",
		"192.0.2.0/0024", "192.0.2.0/ 8", "192.0.2.0/8 ", "192.0.2.0/24/8", "::1/",
		"::1/129",
		"1.2.3.4/99999999999999999999",
	};
	char	 huge[10000];
	size_t	 i;

	for (i = 0; i < sizeof(not_address) / sizeof(not_address[0]); i++)
		assert_net_refused(not_address[i], -1, "is not an address or address/prefix");
	for (i = 0; i < sizeof(bad_prefix) / sizeof(bad_prefix[0]); i++)
		assert_net_refused(bad_prefix[i], -1, "the prefix must be a number from 1 to");
	assert_net_refused("192.0.2.0/33", -1, "\"192.0.2.0/33\": the prefix must be a "
	    "number from 1 to 32");
	assert_net_refused("::1/129", -1, "from 1 to 128");
	assert_net_refused("192.0.2.1/24", -1, "\"192.0.2.1/24\" has bits set past the "
	    "prefix; write the network address, 192.0.2.0/24");
	assert_net_refused("10.1.2.3/8", -1, "10.0.0.0/8");
	assert_net_refused("2001:db8::1/32", -1, "2001:db8::/32");
	assert_net_refused("[2001:db8:ffff::]/33", -1, "2001:db8:8000::/33");
	/* A /0 holds every address: refused with its own return. */
	assert_net_refused("0.0.0.0/0", FILTER_NET_ALL, "would match every client");
	assert_net_refused("::/0", FILTER_NET_ALL, "every client");
	assert_net_refused("::ffff:0.0.0.0/96", FILTER_NET_ALL, "every client");
	assert_net_refused("1.2.3.4/0", -1, "bits set past the prefix");
	memset(huge, '1', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	assert_net_refused(huge, -1, "is not an address");
}

/* Each prefix of a network: only the expected lengths parse. */
static void
test_net_parse_prefixes(void **state)
{
	static const struct {
		const char	*s;
		size_t		 ok[10];	/* the lengths that parse; 0 ends */
	} inputs[] = {
		{ "192.0.2.0/24", { 9, 12 } },		/* "192.0.2.0/2": host bits */
		{ "[2001:db8::]/32", { 12, 15 } },	/* "[2001:db8::]/3": host bits */
		{ "2001:db8::7", { 10, 11 } },		/* "2001:db8::", the whole */
		/* "::", "::f" ... "::ffff:10" are IPv6 hosts; "/1", "/10": host bits. */
		{ "::ffff:10.0.0.0/104", { 2, 3, 4, 5, 6, 8, 9, 15, 19 } },
	};
	struct filter_net	 n;
	char			 err[256], *buf;
	size_t			 i, len, k;
	int			 want;

	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		for (len = 0; len <= strlen(inputs[i].s); len++) {
			buf = exact_copy(inputs[i].s, len);
			for (want = 0, k = 0; k < 10 && inputs[i].ok[k] != 0; k++)
				want |= inputs[i].ok[k] == len;
			err[0] = '\0';
			if ((filter_net_parse(buf, &n, err, sizeof(err)) == 0) != want)
				fail_msg("\"%s\": %s", buf, want ? err : "accepted");
			assert_true(want || err[0] != '\0');
			free(buf);
		}
	}
}

static void
add_net(struct filter_net *nets, size_t *n, const char *s)
{
	char	 err[256];

	if (filter_net_parse(s, &nets[*n], err, sizeof(err)) != 0)
		fail_msg("%s", err);
	(*n)++;
}

static void
test_net_match(void **state)
{
	struct filter_net	 nets[8];
	size_t			 n = 0;

	add_net(nets, &n, "192.0.2.0/24");
	add_net(nets, &n, "10.0.0.0/9");
	add_net(nets, &n, "198.51.100.7");
	add_net(nets, &n, "2001:db8::/33");
	add_net(nets, &n, "::1/128");
	add_net(nets, &n, "::ffff:203.0.113.0/120");
	assert_true(filter_net_match(nets, n, "192.0.2.0"));
	assert_true(filter_net_match(nets, n, "192.0.2.255"));
	assert_false(filter_net_match(nets, n, "192.0.3.0"));
	assert_false(filter_net_match(nets, n, "192.0.1.255"));
	assert_true(filter_net_match(nets, n, "10.127.255.255"));
	assert_false(filter_net_match(nets, n, "10.128.0.0"));
	assert_true(filter_net_match(nets, n, "198.51.100.7"));
	assert_false(filter_net_match(nets, n, "198.51.100.8"));
	assert_false(filter_net_match(nets, n, "198.51.100.6"));
	assert_true(filter_net_match(nets, n, "2001:db8:7fff::1"));
	assert_true(filter_net_match(nets, n, "2001:DB8::5"));
	assert_false(filter_net_match(nets, n, "2001:db8:8000::1"));
	assert_false(filter_net_match(nets, n, "2001:db9::1"));
	assert_true(filter_net_match(nets, n, "::1"));
	assert_false(filter_net_match(nets, n, "::2"));
	/* Mapped clients (a [::] listener) and mapped networks are IPv4. */
	assert_true(filter_net_match(nets, n, "::ffff:192.0.2.9"));
	assert_false(filter_net_match(nets, n, "::ffff:192.0.3.9"));
	assert_true(filter_net_match(nets, n, "203.0.113.200"));
	assert_true(filter_net_match(nets, n, "::ffff:203.0.113.200"));
	assert_false(filter_net_match(nets, n, "203.0.114.1"));
	/* An IPv4 network never matches an IPv6 client of the same bytes. */
	assert_false(filter_net_match(nets, n, "c000:0200::"));
	/* No address at all. */
	assert_false(filter_net_match(nets, n, "127.0.0.1"));
	assert_false(filter_net_match(nets, n, "unix:/run/sluice.sock"));
	assert_false(filter_net_match(nets, n, "fe80::1%eth0"));
	assert_false(filter_net_match(nets, n, "192.0.2.1/32"));
	assert_false(filter_net_match(nets, n, ""));
	assert_false(filter_net_match(nets, n, NULL));
	assert_false(filter_net_match(NULL, 0, "192.0.2.1"));
}

/* Each prefix of a client address: no over-read, and only real addresses match. */
static void
test_net_match_prefixes(void **state)
{
	static const struct {
		const char	*s;
		size_t		 ok;	/* the one prefix length that matches, 0 = none */
	} inputs[] = {
		{ "192.0.2.77", 10 },		/* "192.0.2.7" is below the net */
		{ "::ffff:192.0.2.100", 18 },
		{ "2001:db8::1234", 14 },	/* "2001:db8::123" is below it */
	};
	struct filter_net	 nets[2];
	size_t			 i, len, n = 0;
	char			*buf;
	int			 got;

	add_net(nets, &n, "192.0.2.64/26");
	add_net(nets, &n, "2001:db8::1000/116");
	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		for (len = 0; len <= strlen(inputs[i].s); len++) {
			buf = exact_copy(inputs[i].s, len);
			got = filter_net_match(nets, n, buf);
			if (got != (len == inputs[i].ok))
				fail_msg("\"%s\": match %d", buf, got);
			free(buf);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_good),
		cmocka_unit_test(test_reply_bad),
		cmocka_unit_test(test_reply_prefixes),
		cmocka_unit_test(test_reply_small_err),
		cmocka_unit_test(test_net_parse_good),
		cmocka_unit_test(test_net_parse_bad),
		cmocka_unit_test(test_net_parse_prefixes),
		cmocka_unit_test(test_net_match),
		cmocka_unit_test(test_net_match_prefixes),
	};

	return cmocka_run_group_tests_name("filter_common", tests, NULL, NULL);
}
