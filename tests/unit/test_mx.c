/*
 * test_mx.c - unit tests for proxy/mx_plan.c: destination parsing and
 * the resolution rules, driven by a fake zone (constructed
 * sluice_dns_answer values): MX preference order and the seeded shuffle
 * of equal preferences, implicit MX, null MX, NXDOMAIN, SERVFAIL and
 * TIMEOUT, hosts without addresses, numeric MX targets, limits, smart
 * hosts, ports, address families, and loop detection.
 *
 * Answers are fed in the order the queries were asked and in reverse:
 * the result must not depend on it.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns.h"
#include "mx.h"
#include "util.h"

#define ZONE_RECS	20

/* One name and type of the fake zone: a status and its records. */
struct zrec {
	const char		*name;
	enum sluice_dns_type	 type;
	enum sluice_dns_status	 status;
	const char		*recs[ZONE_RECS];	/* MX: "10 host"; A/AAAA: address */
};

/* The queries a run asked, for assertions. */
static char	 asked[64][300];
static int	 nasked;

static const struct zrec *zone_find(const struct zrec *, const char *, enum sluice_dns_type);
static void	 zone_answer(const struct zrec *, const char *, enum sluice_dns_type,
		    struct sluice_dns_answer *, struct sluice_dns_record *, char (*)[300]);
static struct mx_result *run(const char *, int, const struct mx_options *, uint64_t,
		    const struct zrec *, int);
static struct mx_result *run_both(const char *, const struct mx_options *, uint64_t,
		    const struct zrec *);
static void	 assert_hosts(const struct mx_result *, const char *);
static void	 host_line(const struct mx_host *, char *, size_t);
static int	 was_asked(const char *);
static size_t	 wire_name(unsigned char *, const char *);
static size_t	 wire_rr(unsigned char *, const char *, int, int, const char *);
static struct sluice_dns_answer *wire_answer(const char *, size_t, const char *const *);

static const struct mx_options	 OPT = { 0 };

static const struct zrec *
zone_find(const struct zrec *z, const char *name, enum sluice_dns_type type)
{
	for (; z->name != NULL; z++)
		if (strcmp(z->name, name) == 0 && z->type == type)
			return z;
	return NULL;
}

/* The answer the zone gives (NXDOMAIN for an unknown name). */
static void
zone_answer(const struct zrec *z, const char *name, enum sluice_dns_type type,
    struct sluice_dns_answer *a, struct sluice_dns_record *recs, char (*text)[300])
{
	const struct zrec	*r = zone_find(z, name, type);
	size_t			 i;
	char			*sp;

	memset(a, 0, sizeof(*a));
	a->name = name;
	a->type = type;
	a->records = recs;
	a->status = r ? r->status : SLUICE_DNS_NXDOMAIN;
	if (a->status == SLUICE_DNS_TIMEOUT)
		a->why = "no answer within 2000 ms";
	for (i = 0; r != NULL && i < ZONE_RECS && r->recs[i] != NULL; i++) {
		snprintf(text[i], sizeof(text[i]), "%s", r->recs[i]);
		recs[i].text = text[i];
		if (type == SLUICE_DNS_MX) {
			recs[i].preference = (unsigned int)strtoul(text[i], &sp, 10);
			recs[i].text = sp + 1;
		}
		recs[i].len = strlen(recs[i].text);
		a->count++;
	}
}

/*
 * Resolve dest against the zone.  reverse: answer each batch of queries
 * in the opposite order.  Bounded: a plan asks at most MX_LOOKUPS_MAX.
 */
static struct mx_result *
run(const char *dest, int smarthost, const struct mx_options *o, uint64_t seed,
    const struct zrec *z, int reverse)
{
	struct sluice_dns_answer	 a;
	struct sluice_dns_record	 recs[ZONE_RECS];
	char				 text[ZONE_RECS][300], err[256];
	struct mx_dest			 d;
	struct mx_plan			*p;
	struct mx_result		*r;
	const char			*name;
	enum sluice_dns_type		 type;
	int				 ids[64], n, i, id;

	assert_int_equal(mx_dest_parse(dest, smarthost, &d, err, sizeof(err)), 0);
	p = mx_plan_new(&d, o, seed);
	nasked = 0;
	while (!mx_plan_done(p)) {
		n = 0;
		while ((id = mx_plan_next(p, &name, &type)) >= 0) {
			assert_true(nasked < MX_LOOKUPS_MAX);
			snprintf(asked[nasked++], sizeof(asked[0]), "%s %s", name,
			    type == SLUICE_DNS_MX ? "MX" : type == SLUICE_DNS_A ? "A" : "AAAA");
			ids[n++] = id;
		}
		assert_true(n > 0);
		/* Answer this batch, each with its own name and type. */
		for (i = 0; i < n; i++) {
			char	 qname[300], qtype[8];
			int	 k = reverse ? n - 1 - i : i;

			sscanf(asked[nasked - n + k], "%299s %7s", qname, qtype);
			type = strcmp(qtype, "MX") == 0 ? SLUICE_DNS_MX :
			    strcmp(qtype, "A") == 0 ? SLUICE_DNS_A : SLUICE_DNS_AAAA;
			zone_answer(z, qname, type, &a, recs, text);
			mx_plan_feed(p, ids[k], &a);
		}
	}
	r = mx_plan_result(p);
	mx_plan_free(p);
	mx_dest_clear(&d);
	return r;
}

/* Run in both answer orders; the results must print the same. */
static struct mx_result *
run_both(const char *dest, const struct mx_options *o, uint64_t seed, const struct zrec *z)
{
	struct mx_result	*r1 = run(dest, 0, o, seed, z, 0);
	struct mx_result	*r2 = run(dest, 0, o, seed, z, 1);
	char			 a[4096], b[4096];
	size_t			 h;

	assert_int_equal(r1->status, r2->status);
	assert_int_equal(r1->nhosts, r2->nhosts);
	for (h = 0; h < r1->nhosts; h++) {
		host_line(&r1->hosts[h], a, sizeof(a));
		host_line(&r2->hosts[h], b, sizeof(b));
		assert_string_equal(a, b);
	}
	mx_result_free(r2);
	return r1;
}

static void
host_line(const struct mx_host *h, char *buf, size_t size)
{
	mx_result_format_host(h, buf, size);
}

/* hosts as "name[addr]:port,...;name..." in order. */
static void
assert_hosts(const struct mx_result *r, const char *want)
{
	char	 got[4096] = "", one[2048];
	size_t	 h;

	for (h = 0; h < r->nhosts; h++) {
		host_line(&r->hosts[h], one, sizeof(one));
		if (h > 0)
			strcat(got, ";");
		strcat(got, one);
	}
	assert_string_equal(got, want);
}

static int
was_asked(const char *q)
{
	int	 i;

	for (i = 0; i < nasked; i++)
		if (strcmp(asked[i], q) == 0)
			return 1;
	return 0;
}

/* --- Destinations ---------------------------------------------------------- */

static void
test_dest_parse(void **state)
{
	struct mx_dest	 d;
	char		 err[256];

	(void)state;
	assert_int_equal(mx_dest_parse("example.org", 0, &d, err, sizeof(err)), 0);
	assert_string_equal(d.host, "example.org");
	assert_int_equal(d.port, 0);
	assert_false(d.no_mx);
	mx_dest_clear(&d);
	assert_int_equal(mx_dest_parse("relay.example.org:2525", 1, &d, err, sizeof(err)), 0);
	assert_string_equal(d.host, "relay.example.org");
	assert_int_equal(d.port, 2525);
	assert_false(d.no_mx);
	assert_true(d.smarthost);
	mx_dest_clear(&d);
	assert_int_equal(mx_dest_parse("[relay.example.org]:587", 1, &d, err, sizeof(err)), 0);
	assert_true(d.no_mx);
	assert_false(d.literal);
	assert_int_equal(d.port, 587);
	mx_dest_clear(&d);
	assert_int_equal(mx_dest_parse("[192.0.2.1]", 1, &d, err, sizeof(err)), 0);
	assert_true(d.literal);
	assert_string_equal(d.host, "192.0.2.1");
	mx_dest_clear(&d);
	assert_int_equal(mx_dest_parse("[IPv6:2001:db8::1]:26", 1, &d, err, sizeof(err)), 0);
	assert_true(d.literal);
	assert_string_equal(d.host, "2001:db8::1");
	assert_int_equal(d.port, 26);
	mx_dest_clear(&d);
	assert_int_equal(mx_dest_parse("[2001:db8::2]", 1, &d, err, sizeof(err)), 0);
	assert_true(d.literal);
	mx_dest_clear(&d);
}

static void
test_dest_parse_bad(void **state)
{
	static const char *const bad[] = {
		"", "[relay.example.org", "[relay]x", "relay:", "relay:0", "relay:65536",
		"relay:25x", "2001:db8::1", "bad host", "a..b", "[]", "[bad_host!]", "evil\r\n",
		"x:-1", "[IPv6:relay.example]", ".example", "-x.example",
	};
	struct mx_dest	 d;
	char		 err[256];
	size_t		 i;

	(void)state;
	for (i = 0; i < nitems(bad); i++) {
		err[0] = '\0';
		assert_int_equal(mx_dest_parse(bad[i], 0, &d, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
		assert_null(d.host);
	}
}

/* --- MX rules --------------------------------------------------------------- */

static const struct zrec ZONE_BASIC[] = {
	{ "example.org", SLUICE_DNS_MX, SLUICE_DNS_OK,
	    { "20 mx2.example.org", "10 mx1.example.org", "30 mx3.example.org" } },
	{ "mx1.example.org", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.1" } },
	{ "mx1.example.org", SLUICE_DNS_AAAA, SLUICE_DNS_OK, { "2001:db8::1" } },
	{ "mx2.example.org", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.2", "192.0.2.22" } },
	{ "mx2.example.org", SLUICE_DNS_AAAA, SLUICE_DNS_NODATA, { NULL } },
	{ "mx3.example.org", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.3" } },
	{ "mx3.example.org", SLUICE_DNS_AAAA, SLUICE_DNS_NODATA, { NULL } },
	{ NULL, 0, 0, { NULL } }
};

static void
test_preference_order(void **state)
{
	struct mx_result	*r;

	(void)state;
	r = run_both("example.org", &OPT, 1, ZONE_BASIC);
	assert_int_equal(r->status, MX_OK);
	assert_string_equal(r->dsn, "2.0.0");
	assert_false(r->implicit_mx);
	assert_hosts(r, "mx1.example.org[2001:db8::1]:25,[192.0.2.1]:25;"
	    "mx2.example.org[192.0.2.2]:25,[192.0.2.22]:25;mx3.example.org[192.0.2.3]:25");
	assert_int_equal(r->hosts[0].preference, 10);
	assert_int_equal(r->hosts[2].preference, 30);
	assert_true(was_asked("example.org MX"));
	assert_true(was_asked("mx1.example.org AAAA"));
	assert_int_equal(nasked, 7);
	mx_result_free(r);
}

static void
test_families(void **state)
{
	struct mx_options	 o = { 0 };
	struct mx_result	*r;

	(void)state;
	o.prefer_ipv4 = 1;
	r = run_both("example.org", &o, 1, ZONE_BASIC);
	assert_string_equal(r->hosts[0].name, "mx1.example.org");
	assert_int_equal(r->hosts[0].addrs[0].ss_family, AF_INET);
	assert_int_equal(r->hosts[0].addrs[1].ss_family, AF_INET6);
	mx_result_free(r);
	o.prefer_ipv4 = 0;
	o.families = MX_INET_IPV4;
	r = run_both("example.org", &o, 1, ZONE_BASIC);
	assert_false(was_asked("mx1.example.org AAAA"));
	assert_hosts(r, "mx1.example.org[192.0.2.1]:25;"
	    "mx2.example.org[192.0.2.2]:25,[192.0.2.22]:25;mx3.example.org[192.0.2.3]:25");
	mx_result_free(r);
	o.families = MX_INET_IPV6;
	r = run_both("example.org", &o, 1, ZONE_BASIC);
	assert_false(was_asked("mx1.example.org A"));
	assert_hosts(r, "mx1.example.org[2001:db8::1]:25");
	mx_result_free(r);
}

static const struct zrec ZONE_EQUAL[] = {
	{ "eq.example", SLUICE_DNS_MX, SLUICE_DNS_OK,
	    { "10 a.eq.example", "10 b.eq.example", "10 c.eq.example", "5 first.eq.example",
	    "50 last.eq.example" } },
	{ "a.eq.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.10" } },
	{ "b.eq.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.11" } },
	{ "c.eq.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.12" } },
	{ "first.eq.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.13" } },
	{ "last.eq.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.14" } },
	{ NULL, 0, 0, { NULL } }
};

/* Equal preferences: every order appears over seeds; one seed, one order. */
static void
test_equal_preference_shuffle(void **state)
{
	struct mx_options	 o = { 0 };
	struct mx_result	*r, *again;
	char			 seen[6][64], order[64];
	int			 nseen = 0, i, j;

	(void)state;
	o.families = MX_INET_IPV4;
	for (i = 1; i <= 200 && nseen < 6; i++) {
		r = run("eq.example", 0, &o, (uint64_t)i, ZONE_EQUAL, 0);
		assert_int_equal(r->nhosts, 5);
		assert_string_equal(r->hosts[0].name, "first.eq.example");
		assert_string_equal(r->hosts[4].name, "last.eq.example");
		snprintf(order, sizeof(order), "%c%c%c", r->hosts[1].name[0], r->hosts[2].name[0],
		    r->hosts[3].name[0]);
		again = run("eq.example", 0, &o, (uint64_t)i, ZONE_EQUAL, 1);
		assert_string_equal(again->hosts[1].name, r->hosts[1].name);
		assert_string_equal(again->hosts[2].name, r->hosts[2].name);
		mx_result_free(again);
		mx_result_free(r);
		for (j = 0; j < nseen; j++)
			if (strcmp(seen[j], order) == 0)
				break;
		if (j == nseen)
			strcpy(seen[nseen++], order);
	}
	assert_int_equal(nseen, 6);
}

static const struct zrec ZONE_IMPLICIT[] = {
	{ "plain.example", SLUICE_DNS_MX, SLUICE_DNS_NODATA, { NULL } },
	{ "plain.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.40" } },
	{ "plain.example", SLUICE_DNS_AAAA, SLUICE_DNS_OK, { "2001:db8::40" } },
	{ "noaddr.example", SLUICE_DNS_MX, SLUICE_DNS_NODATA, { NULL } },
	{ "noaddr.example", SLUICE_DNS_A, SLUICE_DNS_NODATA, { NULL } },
	{ "noaddr.example", SLUICE_DNS_AAAA, SLUICE_DNS_NODATA, { NULL } },
	{ "null.example", SLUICE_DNS_MX, SLUICE_DNS_OK, { "0 ." } },
	{ "nullmixed.example", SLUICE_DNS_MX, SLUICE_DNS_OK, { "0 .", "10 mx.nullmixed.example" } },
	{ "mx.nullmixed.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.41" } },
	{ "broken.example", SLUICE_DNS_MX, SLUICE_DNS_SERVFAIL, { NULL } },
	{ "broken.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.99" } },
	{ "slow.example", SLUICE_DNS_MX, SLUICE_DNS_TIMEOUT, { NULL } },
	{ NULL, 0, 0, { NULL } }
};

static void
test_implicit_mx(void **state)
{
	struct mx_result	*r;

	(void)state;
	r = run_both("plain.example", &OPT, 1, ZONE_IMPLICIT);
	assert_int_equal(r->status, MX_OK);
	assert_true(r->implicit_mx);
	assert_hosts(r, "plain.example[2001:db8::40]:25,[192.0.2.40]:25");
	mx_result_free(r);
	r = run_both("noaddr.example", &OPT, 1, ZONE_IMPLICIT);
	assert_int_equal(r->status, MX_PERM);
	assert_string_equal(r->dsn, "5.4.4");
	assert_non_null(strstr(r->reason, "no address for noaddr.example"));
	mx_result_free(r);
}

static void
test_null_mx(void **state)
{
	struct mx_result	*r;

	(void)state;
	r = run_both("null.example", &OPT, 1, ZONE_IMPLICIT);
	assert_int_equal(r->status, MX_PERM);
	assert_string_equal(r->dsn, "5.1.10");
	assert_string_equal(r->reason,
	    "domain null.example does not accept mail (null MX, RFC 7505)");
	assert_int_equal(nasked, 1);	/* no A fall-back */
	mx_result_free(r);
	r = run_both("nullmixed.example", &OPT, 1, ZONE_IMPLICIT);
	assert_int_equal(r->status, MX_OK);
	assert_hosts(r, "mx.nullmixed.example[192.0.2.41]:25");
	mx_result_free(r);
}

static void
test_mx_lookup_failures(void **state)
{
	struct mx_result	*r;

	(void)state;
	r = run_both("missing.example", &OPT, 1, ZONE_IMPLICIT);
	assert_int_equal(r->status, MX_PERM);
	assert_string_equal(r->dsn, "5.1.2");
	assert_int_equal(nasked, 1);
	mx_result_free(r);
	r = run_both("broken.example", &OPT, 1, ZONE_IMPLICIT);
	assert_int_equal(r->status, MX_TEMP);
	assert_string_equal(r->dsn, "4.4.3");
	assert_non_null(strstr(r->reason, "servfail"));
	assert_int_equal(nasked, 1);	/* never A after a failed MX lookup */
	assert_int_equal(r->nhosts, 0);
	mx_result_free(r);
	r = run_both("slow.example", &OPT, 1, ZONE_IMPLICIT);
	assert_int_equal(r->status, MX_TEMP);
	assert_non_null(strstr(r->reason, "timeout"));
	mx_result_free(r);
}

static const struct zrec ZONE_NOADDR[] = {
	{ "skip.example", SLUICE_DNS_MX, SLUICE_DNS_OK,
	    { "10 gone.skip.example", "20 ok.skip.example" } },
	{ "ok.skip.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.50" } },
	{ "allgone.example", SLUICE_DNS_MX, SLUICE_DNS_OK,
	    { "10 gone1.allgone.example", "20 gone2.allgone.example" } },
	{ "gone2.allgone.example", SLUICE_DNS_A, SLUICE_DNS_NODATA, { NULL } },
	{ "tempgone.example", SLUICE_DNS_MX, SLUICE_DNS_OK,
	    { "10 gone1.tempgone.example", "20 sick.tempgone.example" } },
	{ "sick.tempgone.example", SLUICE_DNS_A, SLUICE_DNS_SERVFAIL, { NULL } },
	{ "sick.tempgone.example", SLUICE_DNS_AAAA, SLUICE_DNS_NODATA, { NULL } },
	{ NULL, 0, 0, { NULL } }
};

static void
test_hosts_without_address(void **state)
{
	struct mx_result	*r;

	(void)state;
	r = run_both("skip.example", &OPT, 1, ZONE_NOADDR);
	assert_int_equal(r->status, MX_OK);
	assert_hosts(r, "ok.skip.example[192.0.2.50]:25");
	mx_result_free(r);
	r = run_both("allgone.example", &OPT, 1, ZONE_NOADDR);
	assert_int_equal(r->status, MX_PERM);
	assert_string_equal(r->dsn, "5.4.4");
	assert_non_null(strstr(r->reason, "no MX host for allgone.example has an address"));
	mx_result_free(r);
	r = run_both("tempgone.example", &OPT, 1, ZONE_NOADDR);
	assert_int_equal(r->status, MX_TEMP);
	assert_string_equal(r->dsn, "4.4.3");
	assert_non_null(strstr(r->reason, "sick.tempgone.example"));
	mx_result_free(r);
}

static const struct zrec ZONE_ODD[] = {
	{ "numeric.example", SLUICE_DNS_MX, SLUICE_DNS_OK,
	    { "10 192.0.2.60", "20 mx.numeric.example", "30 2001:db8::60" } },
	{ "mx.numeric.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.61", "192.0.2.60" } },
	{ "dup.example", SLUICE_DNS_MX, SLUICE_DNS_OK,
	    { "10 mx.dup.example", "20 MX.dup.example", "30 other.dup.example" } },
	{ "mx.dup.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.70", "192.0.2.70" } },
	{ "other.dup.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.70" } },
	{ "many.example", SLUICE_DNS_MX, SLUICE_DNS_OK,
	    { "1 h1.many", "2 h2.many", "3 h3.many", "4 h4.many", "5 h5.many", "6 h6.many",
	    "7 h7.many", "8 h8.many", "9 h9.many", "10 h10.many", "11 h11.many",
	    "12 h12.many", "13 h13.many", "14 h14.many", "15 h15.many" } },
	{ "h1.many", SLUICE_DNS_A, SLUICE_DNS_OK,
	    { "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6",
	    "192.0.2.7", "192.0.2.8", "192.0.2.9", "192.0.2.10", "192.0.2.11", "192.0.2.12" } },
	{ "h2.many", SLUICE_DNS_A, SLUICE_DNS_OK, { "198.51.100.2" } },
	{ "bad.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "not-an-address", "192.0.2.80" } },
	{ NULL, 0, 0, { NULL } }
};

static void
test_numeric_mx(void **state)
{
	struct mx_result	*r;

	(void)state;
	r = run_both("numeric.example", &OPT, 1, ZONE_ODD);
	assert_int_equal(r->status, MX_OK);
	assert_non_null(r->warning);
	assert_non_null(strstr(r->warning, "numeric domain name"));
	assert_false(was_asked("192.0.2.60 A"));
	assert_false(was_asked("2001:db8::60 AAAA"));
	/* 192.0.2.60 is listed once, for the better host. */
	assert_hosts(r, "192.0.2.60[192.0.2.60]:25;mx.numeric.example[192.0.2.61]:25;"
	    "2001:db8::60[2001:db8::60]:25");
	mx_result_free(r);
}

static void
test_duplicates_and_limits(void **state)
{
	struct mx_result	*r;
	struct mx_options	 o = { 0 };

	(void)state;
	r = run_both("dup.example", &OPT, 1, ZONE_ODD);
	assert_hosts(r, "mx.dup.example[192.0.2.70]:25");
	mx_result_free(r);
	o.families = MX_INET_IPV4;
	r = run_both("many.example", &o, 1, ZONE_ODD);
	assert_int_equal(r->status, MX_OK);
	assert_true(nasked <= MX_LOOKUPS_MAX);
	assert_false(was_asked("h11.many A"));
	assert_int_equal(r->nhosts, 2);	/* h3..h10 have no address */
	assert_int_equal(r->hosts[0].naddrs, MX_ADDRS_MAX);
	mx_result_free(r);
	o.max_hosts = 1;
	o.max_addrs = 3;
	r = run_both("many.example", &o, 1, ZONE_ODD);
	assert_int_equal(r->nhosts, 1);
	assert_int_equal(r->hosts[0].naddrs, 3);
	assert_int_equal(nasked, 2);
	mx_result_free(r);
}

static void
test_bad_address_record(void **state)
{
	struct mx_result	*r;

	(void)state;
	r = run("[bad.example]", 1, &OPT, 1, ZONE_ODD, 0);
	assert_hosts(r, "bad.example[192.0.2.80]:25");
	mx_result_free(r);
}

/* --- Smart hosts and ports ------------------------------------------------- */

static const struct zrec ZONE_SMART[] = {
	{ "relay.example", SLUICE_DNS_MX, SLUICE_DNS_OK, { "10 mx.relay.example" } },
	{ "relay.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.90" } },
	{ "mx.relay.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "192.0.2.91" } },
	{ NULL, 0, 0, { NULL } }
};

static void
test_smart_hosts(void **state)
{
	struct mx_options	 o = { 0 };
	struct mx_result	*r;

	(void)state;
	o.families = MX_INET_IPV4;
	r = run("[relay.example]:2525", 1, &o, 1, ZONE_SMART, 0);
	assert_false(was_asked("relay.example MX"));
	assert_true(r->smarthost);
	assert_hosts(r, "relay.example[192.0.2.90]:2525");
	mx_result_free(r);
	r = run("relay.example:2525", 1, &o, 1, ZONE_SMART, 0);
	assert_true(was_asked("relay.example MX"));
	assert_hosts(r, "mx.relay.example[192.0.2.91]:2525");
	mx_result_free(r);
	r = run("[192.0.2.1]:26", 1, &o, 1, ZONE_SMART, 0);
	assert_int_equal(nasked, 0);
	assert_hosts(r, "192.0.2.1[192.0.2.1]:26");
	mx_result_free(r);
	r = run("[IPv6:2001:db8::5]", 1, &OPT, 1, ZONE_SMART, 0);
	assert_hosts(r, "2001:db8::5[2001:db8::5]:25");
	mx_result_free(r);
	/* A smart host that does not resolve is a configuration error: defer. */
	r = run("[nowhere.example]", 1, &o, 1, ZONE_SMART, 0);
	assert_int_equal(r->status, MX_TEMP);
	assert_string_equal(r->dsn, "4.4.4");
	mx_result_free(r);
	r = run("nowhere.example:25", 1, &o, 1, ZONE_SMART, 0);
	assert_int_equal(r->status, MX_TEMP);
	assert_string_equal(r->dsn, "4.1.2");
	mx_result_free(r);
}

static void
test_delivery_port(void **state)
{
	struct mx_options	 o = { 0 };
	struct mx_result	*r;

	(void)state;
	o.families = MX_INET_IPV4;
	o.delivery_port = 2526;
	r = run("relay.example", 0, &o, 1, ZONE_SMART, 0);
	assert_hosts(r, "mx.relay.example[192.0.2.91]:2526");
	mx_result_free(r);
	/* An explicit port wins over delivery_port. */
	r = run("[relay.example]:2600", 1, &o, 1, ZONE_SMART, 0);
	assert_hosts(r, "relay.example[192.0.2.90]:2600");
	mx_result_free(r);
}

/* --- Loop detection -------------------------------------------------------- */

static const struct zrec ZONE_LOOP[] = {
	{ "loop.example", SLUICE_DNS_MX, SLUICE_DNS_OK,
	    { "10 primary.loop.example", "20 me.loop.example", "30 worse.loop.example" } },
	{ "primary.loop.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "127.0.0.2" } },
	{ "me.loop.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "127.0.0.1" } },
	{ "worse.loop.example", SLUICE_DNS_A, SLUICE_DNS_OK, { "127.0.0.3" } },
	{ "self.example", SLUICE_DNS_MX, SLUICE_DNS_OK, { "10 me.loop.example" } },
	{ NULL, 0, 0, { NULL } }
};

static void
test_loop_detection(void **state)
{
	struct mx_options	 o = { 0 };
	struct sockaddr_storage	 own[2];
	socklen_t		 len;
	struct mx_result	*r;

	(void)state;
	o.families = MX_INET_IPV4;
	assert_int_equal(sockaddr_parse("127.0.0.1:25", &own[0], &len), 0);
	assert_int_equal(sockaddr_parse("[::1]:25", &own[1], &len), 0);
	r = run("loop.example", 0, &o, 1, ZONE_LOOP, 0);
	assert_int_equal(mx_result_check_loop(r, own, 2), 0);
	assert_int_equal(r->status, MX_OK);
	assert_hosts(r, "primary.loop.example[127.0.0.2]:25");
	mx_result_free(r);
	r = run("self.example", 0, &o, 1, ZONE_LOOP, 0);
	assert_int_equal(mx_result_check_loop(r, own, 2), 1);
	assert_int_equal(r->status, MX_TEMP);
	assert_string_equal(r->dsn, "4.4.6");
	assert_string_equal(r->reason, "mail for self.example loops back to myself");
	assert_int_equal(r->nhosts, 0);
	mx_result_free(r);
	/* Another port is not us. */
	o.delivery_port = 2525;
	r = run("self.example", 0, &o, 1, ZONE_LOOP, 0);
	assert_int_equal(mx_result_check_loop(r, own, 2), 0);
	assert_int_equal(r->status, MX_OK);
	mx_result_free(r);
	/* A wildcard listener is us on every loopback address. */
	assert_int_equal(sockaddr_parse("*:2525", &own[0], &len), 0);
	r = run("loop.example", 0, &o, 1, ZONE_LOOP, 0);
	assert_int_equal(mx_result_check_loop(r, own, 1), 1);
	mx_result_free(r);
	/* Smart hosts are not checked. */
	r = run("[127.0.0.1]:2525", 1, &o, 1, ZONE_LOOP, 0);
	assert_int_equal(mx_result_check_loop(r, own, 1), 0);
	assert_int_equal(r->status, MX_OK);
	mx_result_free(r);
}

/* --- Through the real packet parser ---------------------------------------- */

/* Append a name in wire form ("a.b" -> 1a1b0; "" is the root). */
static size_t
wire_name(unsigned char *p, const char *name)
{
	size_t		 n = 0, len;
	const char	*dot;

	while (*name != '\0') {
		dot = strchr(name, '.');
		len = dot ? (size_t)(dot - name) : strlen(name);
		p[n++] = (unsigned char)len;
		memcpy(p + n, name, len);
		n += len;
		name += len + (dot != NULL);
	}
	p[n++] = 0;
	return n;
}

/* An answer record: owner, type, then rdata given as MX (pref, name) or CNAME (name). */
static size_t
wire_rr(unsigned char *p, const char *owner, int type, int pref, const char *target)
{
	size_t	 n = wire_name(p, owner), rdstart;

	p[n++] = 0;
	p[n++] = (unsigned char)type;
	p[n++] = 0;
	p[n++] = 1;			/* IN */
	memcpy(p + n, "\0\0\0\x3c", 4);	/* TTL 60 */
	n += 4;
	rdstart = n;
	n += 2;
	if (type == 15) {
		p[n++] = (unsigned char)(pref >> 8);
		p[n++] = (unsigned char)pref;
	}
	n += wire_name(p + n, target);
	p[rdstart] = (unsigned char)((n - rdstart - 2) >> 8);
	p[rdstart + 1] = (unsigned char)(n - rdstart - 2);
	return n;
}

/* A response to (qname, MX) with the given answer records. */
static struct sluice_dns_answer *
wire_answer(const char *qname, size_t nrr, const char *const *rr)
{
	unsigned char	 pkt[1024];
	size_t		 n = 12, i;

	memset(pkt, 0, 12);
	pkt[2] = 0x81;
	pkt[3] = 0x80;
	pkt[5] = 1;
	pkt[7] = (unsigned char)nrr;
	n += wire_name(pkt + n, qname);
	memcpy(pkt + n, "\0\x0f\0\x01", 4);
	n += 4;
	for (i = 0; i < nrr; i++) {
		char	 owner[100], kind[10], target[100];
		int	 pref = 0;

		assert_int_equal(sscanf(rr[i], "%99s %9s %d %99s", owner, kind, &pref, target), 4);
		n += wire_rr(pkt + n, owner, strcmp(kind, "MX") == 0 ? 15 : 5, pref,
		    strcmp(target, ".") == 0 ? "" : target);
	}
	return dns_answer_parse(qname, SLUICE_DNS_MX, pkt, n);
}

/* dns_answer_parse's view of a null MX and of a CNAME chain, fed to a plan. */
static void
test_parsed_answers(void **state)
{
	static const char *const nullmx[] = { "null.example MX 0 ." };
	static const char *const chain[] = {
		"alias.example CNAME 0 real.example", "real.example MX 10 mx1.real.example",
		"real.example MX 20 mx2.real.example"
	};
	struct sluice_dns_answer	*a;
	struct mx_dest			 d;
	struct mx_plan			*p;
	struct mx_result		*r;
	const char			*name;
	enum sluice_dns_type		 type;
	char				 err[100];
	int				 id;

	(void)state;
	a = wire_answer("null.example", 1, nullmx);
	assert_int_equal(a->status, SLUICE_DNS_OK);
	assert_int_equal(a->count, 1);
	assert_int_equal(a->records[0].preference, 0);
	assert_true(strcmp(a->records[0].text, ".") == 0 || a->records[0].text[0] == '\0');
	assert_int_equal(mx_dest_parse("null.example", 0, &d, err, sizeof(err)), 0);
	p = mx_plan_new(&d, &OPT, 1);
	id = mx_plan_next(p, &name, &type);
	mx_plan_feed(p, id, a);
	assert_true(mx_plan_done(p));
	r = mx_plan_result(p);
	assert_string_equal(r->dsn, "5.1.10");
	mx_result_free(r);
	mx_plan_free(p);
	mx_dest_clear(&d);
	dns_answer_free(a);
	/* The CNAME is skipped, the MX records of its target are the answer. */
	a = wire_answer("alias.example", 3, chain);
	assert_int_equal(a->status, SLUICE_DNS_OK);
	assert_int_equal(a->count, 2);
	assert_string_equal(a->records[0].text, "mx1.real.example");
	assert_int_equal(a->records[1].preference, 20);
	dns_answer_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dest_parse),
		cmocka_unit_test(test_dest_parse_bad),
		cmocka_unit_test(test_preference_order),
		cmocka_unit_test(test_families),
		cmocka_unit_test(test_equal_preference_shuffle),
		cmocka_unit_test(test_implicit_mx),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_mx_lookup_failures),
		cmocka_unit_test(test_hosts_without_address),
		cmocka_unit_test(test_numeric_mx),
		cmocka_unit_test(test_duplicates_and_limits),
		cmocka_unit_test(test_bad_address_record),
		cmocka_unit_test(test_smart_hosts),
		cmocka_unit_test(test_delivery_port),
		cmocka_unit_test(test_loop_detection),
		cmocka_unit_test(test_parsed_answers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
