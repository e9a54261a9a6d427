/*
 * test_dmarc.c - the pure parts of the dmarc filter: organizational
 * domains from the public suffix list (wildcards, exceptions, Unicode
 * rules), domain names, the From field's author domain, record selection
 * and parsing (through libopendmarc), alignment, the policy decision
 * (p, sp, pct), and the Authentication-Results properties it reads.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmarc_from.h"
#include "dmarc_policy.h"
#include "dmarc_psl.h"

#define SYSTEM_PSL	"/usr/share/publicsuffix/public_suffix_list.dat"

static const char psl_text[] =
    "// a comment line\n"
    "// ===BEGIN ICANN DOMAINS===\n"
    "com\n"
    "uk\n"
    "co.uk\n"
    "*.ck\n"
    "!www.ck\n"
    "cn\n"
    "\xe5\x85\xac\xe5\x8f\xb8.cn\n"	/* 公司.cn */
    "github.io   trailing words are ignored\r\n"
    "io\n"
    "bad..rule\n"
    "a.*.b\n"
    "\n";

static int	 psl_setup(void **);
static int	 psl_teardown(void **);
static const char *org(void **, const char *);
static enum dmarc_from_status from(const char *, char *);
static int	 parse(const char *, struct dmarc_record *);
static void	 eval(void **, struct dmarc_eval *, const struct dmarc_record *, const char *,
		    const char *, const char *);

static int
psl_setup(void **state)
{
	*state = dmarc_psl_parse(psl_text, sizeof(psl_text) - 1);
	return *state != NULL ? 0 : -1;
}

static int
psl_teardown(void **state)
{
	dmarc_psl_free(*state);
	return 0;
}

static const char *
org(void **state, const char *domain)
{
	return dmarc_org_domain(*state, domain);
}

/* --- The public suffix list ---------------------------------------------- */

static void
test_psl_rules(void **state)
{
	/* libpsl counts the 10 rule lines it read ("bad..rule" among them;
	 * such a rule can never match a valid domain). */
	assert_int_equal(dmarc_psl_count(*state), 10);
}

static void
test_org_domain_plain(void **state)
{
	assert_string_equal(org(state, "example.com"), "example.com");
	assert_string_equal(org(state, "a.b.example.com"), "example.com");
	assert_string_equal(org(state, "mail.example.co.uk"), "example.co.uk");
	assert_string_equal(org(state, "example.co.uk"), "example.co.uk");
	assert_string_equal(org(state, "foo.github.io"), "foo.github.io");
	assert_string_equal(org(state, "a.foo.github.io"), "foo.github.io");
	assert_string_equal(org(state, "github.io"), "github.io");
}

/* A domain that is itself a public suffix is its own organizational domain. */
static void
test_org_domain_suffix_itself(void **state)
{
	assert_string_equal(org(state, "co.uk"), "co.uk");
	assert_string_equal(org(state, "uk"), "uk");
	assert_string_equal(org(state, "localhost"), "localhost");
}

/* No rule matches: the default rule "*" makes the last label the suffix. */
static void
test_org_domain_default_rule(void **state)
{
	assert_string_equal(org(state, "a.b.example"), "b.example");
	assert_string_equal(org(state, "b.example"), "b.example");
	assert_string_equal(dmarc_org_domain(NULL, "a.b.example.com"), "example.com");
}

static void
test_org_domain_wildcard_exception(void **state)
{
	assert_string_equal(org(state, "x.y.ck"), "x.y.ck");
	assert_string_equal(org(state, "a.x.y.ck"), "x.y.ck");
	assert_string_equal(org(state, "y.ck"), "y.ck");
	assert_string_equal(org(state, "www.ck"), "www.ck");
	assert_string_equal(org(state, "a.www.ck"), "www.ck");
}

static void
test_org_domain_unicode_rule(void **state)
{
	assert_string_equal(org(state, "a.b.xn--55qx5d.cn"), "b.xn--55qx5d.cn");
	assert_string_equal(org(state, "a.b.cn"), "b.cn");
}

static void
test_psl_system_file(void **state)
{
	char			 err[256];
	struct dmarc_psl	*psl = dmarc_psl_load(SYSTEM_PSL, err, sizeof(err));

	assert_non_null(psl);
	assert_true(dmarc_psl_count(psl) > 5000);
	assert_string_equal(dmarc_org_domain(psl, "mail.example.co.uk"), "example.co.uk");
	assert_string_equal(dmarc_org_domain(psl, "a.b.github.io"), "b.github.io");
	assert_string_equal(dmarc_org_domain(psl, "a.b.xn--55qx5d.cn"), "b.xn--55qx5d.cn");
	assert_string_equal(dmarc_org_domain(psl, "a.x.y.ck"), "x.y.ck");
	assert_string_equal(dmarc_org_domain(psl, "a.www.ck"), "www.ck");
	assert_string_equal(dmarc_org_domain(psl, "mx.sub.example.org"), "example.org");
	dmarc_psl_free(psl);
}

static void
test_psl_load_errors(void **state)
{
	char	 err[256];

	assert_null(dmarc_psl_load("/nonexistent/psl.dat", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/psl.dat"));
	assert_null(dmarc_psl_load("/dev/null", err, sizeof(err)));
	assert_non_null(strstr(err, "holds no rule"));
	assert_null(dmarc_psl_parse("// only\n// comments\n", 20));
}

static void
test_punycode(void **state)
{
	char	 out[64];

	assert_int_equal(dmarc_punycode_label("\xe5\x85\xac\xe5\x8f\xb8", 6, out,
	    sizeof(out)), 0);
	assert_string_equal(out, "xn--55qx5d");
	assert_int_equal(dmarc_punycode_label("\xd1\x80\xd1\x84", 4, out, sizeof(out)), 0);
	assert_string_equal(out, "xn--p1ai");
	assert_int_equal(dmarc_punycode_label("b\xc3\xbc" "cher", 7, out, sizeof(out)), 0);
	assert_string_equal(out, "xn--bcher-kva");
	/* RFC 3492's Arabic sample without its final U+061F, which IDNA2008 forbids */
	assert_int_equal(dmarc_punycode_label("\xd9\x84\xd9\x8a\xd9\x87\xd9\x85\xd8\xa7\xd8\xa8"
	    "\xd8\xaa\xd9\x83\xd9\x84\xd9\x85\xd9\x88\xd8\xb4\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a",
	    32, out, sizeof(out)), 0);
	assert_string_equal(out, "xn--mgbcah9ar9a4efegftvvn");	/* Python's punycode codec agrees */
	assert_int_equal(dmarc_punycode_label("\xd9\x84\xd9\x8a\xd9\x87\xd9\x85\xd8\xa7\xd8\xa8"
	    "\xd8\xaa\xd9\x83\xd9\x84\xd9\x85\xd9\x88\xd8\xb4\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a"
	    "\xd8\x9f", 34, out, sizeof(out)), -1);
	assert_int_equal(dmarc_punycode_label("\xc3", 1, out, sizeof(out)), -1);
	assert_int_equal(dmarc_punycode_label("\xc0\xaf", 2, out, sizeof(out)), -1);
	assert_int_equal(dmarc_punycode_label("\xed\xa0\x80", 3, out, sizeof(out)), -1);
	assert_int_equal(dmarc_punycode_label("\xf8\x88\x80\x80\x80", 5, out, sizeof(out)), -1);
	assert_int_equal(dmarc_punycode_label("\xd1\x80\xd1\x84", 4, out, 8), -1);
	assert_int_equal(dmarc_punycode_label("", 0, out, sizeof(out)), -1);
}

static void
test_domain_normalize(void **state)
{
	char	 out[DMARC_DOMAIN_MAX], in[300];

	assert_int_equal(dmarc_domain_normalize("Example.COM.", 12, out), 0);
	assert_string_equal(out, "example.com");
	assert_int_equal(dmarc_domain_normalize("a_b-c.org", 9, out), 0);
	assert_string_equal(out, "a_b-c.org");
	assert_int_equal(dmarc_domain_normalize("", 0, out), -1);
	assert_int_equal(dmarc_domain_normalize(".", 1, out), -1);
	assert_int_equal(dmarc_domain_normalize("a..b", 4, out), -1);
	assert_int_equal(dmarc_domain_normalize(".a.b", 4, out), -1);
	assert_int_equal(dmarc_domain_normalize("a.b..", 5, out), -1);
	assert_int_equal(dmarc_domain_normalize("a b.com", 7, out), -1);
	assert_int_equal(dmarc_domain_normalize("[192.0.2.1]", 11, out), -1);
	assert_int_equal(dmarc_domain_normalize("ex\xc3\xa9mple.com", 12, out), -1);
	/* Labels of 63 bytes pass, 64 do not; names of 253 bytes pass, 254 do not. */
	memset(in, 'a', 63);
	memcpy(in + 63, ".com", 4);
	assert_int_equal(dmarc_domain_normalize(in, 67, out), 0);
	memset(in, 'a', 64);
	memcpy(in + 64, ".com", 4);
	assert_int_equal(dmarc_domain_normalize(in, 68, out), -1);
	memset(in, 'a', sizeof(in));
	in[63] = in[127] = in[191] = '.';
	assert_int_equal(dmarc_domain_normalize(in, 253, out), 0);
	assert_int_equal(strlen(out), 253);
	assert_int_equal(dmarc_domain_normalize(in, 254, out), -1);
}

/* --- The From field ------------------------------------------------------ */

static enum dmarc_from_status
from(const char *value, char *domain)
{
	domain[0] = '\0';
	return dmarc_from_parse(value, domain);
}

static void
test_from_simple(void **state)
{
	char	 d[DMARC_DOMAIN_MAX];

	assert_int_equal(from("a@example.org", d), DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	assert_int_equal(from("John Doe <john@Example.ORG>", d), DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	assert_int_equal(from("john@example.org.", d), DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	assert_int_equal(from("  <john@example.org>  ", d), DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
}

static void
test_from_display_names(void **state)
{
	char	 d[DMARC_DOMAIN_MAX];

	assert_int_equal(from("\"Doe, John\" <john@example.org>", d), DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	/* An address in the display name is not the author. */
	assert_int_equal(from("\"a@victim.example\" <x@evil.example>", d), DMARC_FROM_OK);
	assert_string_equal(d, "evil.example");
	assert_int_equal(from("paypal.com@evil.example <x@evil.example>", d), DMARC_FROM_OK);
	assert_string_equal(d, "evil.example");
	assert_int_equal(from("=?utf-8?q?J=C3=B6rg?= <j@example.org>", d), DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	assert_int_equal(from("\"quoted \\\" <a@b.example>\" <j@example.org>", d),
	    DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
}

static void
test_from_comments_folding(void **state)
{
	char	 d[DMARC_DOMAIN_MAX];

	assert_int_equal(from("(comment, with @ and <x@y.example>) john@example.org (x)", d),
	    DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	assert_int_equal(from("John\r\n\t<john@example.org>\r\n (folded (nested))", d),
	    DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	assert_int_equal(from("john@example . org", d), DMARC_FROM_OK);	/* obs-domain */
	assert_string_equal(d, "example.org");
	assert_int_equal(from("john@(c)example.org", d), DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	assert_int_equal(from("\"a@b\"@example.org", d), DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
}

/* EAI: a UTF-8 domain is looked up as its A-labels. */
static void
test_from_utf8_domain(void **state)
{
	char	 d[DMARC_DOMAIN_MAX];

	assert_int_equal(from("J <j@b\xc3\xbc" "cher.Example.>", d), DMARC_FROM_OK);
	assert_string_equal(d, "xn--bcher-kva.example");
	assert_int_equal(from("j@\xe5\x85\xac\xe5\x8f\xb8.cn", d), DMARC_FROM_OK);
	assert_string_equal(d, "xn--55qx5d.cn");
	assert_int_equal(from("j@\xff.example", d), DMARC_FROM_BAD);
	assert_int_equal(from("j@b\xc3\xbc!.example", d), DMARC_FROM_BAD);
}

static void
test_domain_to_ascii(void **state)
{
	char	 out[DMARC_DOMAIN_MAX];

	assert_int_equal(dmarc_domain_to_ascii("a.b.", 4, out), 0);
	assert_string_equal(out, "a.b");
	assert_int_equal(dmarc_domain_to_ascii("a.b..", 5, out), -1);
	assert_int_equal(dmarc_domain_to_ascii(".", 1, out), -1);
	assert_int_equal(dmarc_domain_to_ascii("", 0, out), -1);
	assert_int_equal(dmarc_domain_to_ascii("\xd1\x80\xd1\x84", 4, out), 0);
	assert_string_equal(out, "xn--p1ai");
}

static void
test_from_route_and_groups(void **state)
{
	char	 d[DMARC_DOMAIN_MAX];

	assert_int_equal(from("<@route.example,@b.example:john@example.org>", d),
	    DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	assert_int_equal(from("Group: a@x.example, b@X.example;", d), DMARC_FROM_OK);
	assert_string_equal(d, "x.example");
	assert_int_equal(from("undisclosed-recipients:;", d), DMARC_FROM_EMPTY);
	assert_int_equal(from("", d), DMARC_FROM_EMPTY);
	assert_int_equal(from("  (just a comment) ", d), DMARC_FROM_EMPTY);
	assert_int_equal(from("a@x.example,, b@x.example,", d), DMARC_FROM_OK);
	assert_string_equal(d, "x.example");
}

static void
test_from_several_domains(void **state)
{
	char	 d[DMARC_DOMAIN_MAX];

	assert_int_equal(from("a@x.example, b@y.example", d), DMARC_FROM_MULTI);
	assert_int_equal(from("a@x.example, G: b@x.example, c@y.example;", d),
	    DMARC_FROM_MULTI);
	assert_int_equal(from("a@x.example, b@sub.x.example", d), DMARC_FROM_MULTI);
}

static void
test_from_bad(void **state)
{
	static const char *const bad[] = {
		"john", "john@", "@example.org", "john@[192.0.2.1]", "\"unterminated",
		"(unterminated", "<a@x.example", "a@x.example>", "<a@x.example> <b@x.example>",
		"<a@x.example> trailing", "a@b@c.example", "a@exa mple.org",
		"a@ex(c)ample.org", "a@ex\xc3mple.org", "G: a@x.example; b;", ";",
		"A: B: a@x.example;;", "<>", "a@x.example;", "a@\"x.example\"",
		"<@route.example john@example.org>", "a@.example", "a@-.example..",
	};
	char	 d[DMARC_DOMAIN_MAX];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (from(bad[i], d) != DMARC_FROM_BAD)
			fail_msg("From: %s read as %s", bad[i],
			    dmarc_from_status_name(from(bad[i], d)));
	}
	assert_string_equal(dmarc_from_status_name(DMARC_FROM_MULTI), "multi");
}

/* Every prefix, and a 0xff at every place, of odd values: no crash, a status. */
static void
test_from_hostile(void **state)
{
	static const char *const samples[] = {
		"\"Doe, \\\"J\\\" (x)\" <@a.example,@b.example:j.d@Example.ORG> (c (d) \\) e), "
		    "G: x@example.org, (y) <y@example.org>;",
		"<<<<", ">>>", "((((", "\"\"\"", "\\", "::::;;;;", "@@@@",
	};
	char	 buf[256], d[DMARC_DOMAIN_MAX], *big;
	size_t	 i, n, len;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		len = strlen(samples[i]);
		for (n = 0; n <= len; n++) {
			memcpy(buf, samples[i], n);
			buf[n] = '\0';
			assert_true(from(buf, d) <= DMARC_FROM_BAD);
			if (n > 0) {
				buf[n - 1] = (char)0xff;
				assert_true(from(buf, d) <= DMARC_FROM_BAD);
			}
		}
	}
	assert_int_equal(from(samples[0], d), DMARC_FROM_OK);
	assert_string_equal(d, "example.org");
	big = malloc(200001);
	assert_non_null(big);
	memset(big, '(', 200000);
	big[200000] = '\0';
	assert_int_equal(from(big, d), DMARC_FROM_BAD);
	for (i = 0; i < 200000; i += 2)
		memcpy(big + i, "a,", 2);
	assert_int_equal(from(big, d), DMARC_FROM_BAD);
	free(big);
}

/* --- Records --------------------------------------------------------------- */

static void
test_record_select(void **state)
{
	struct dmarc_txt	 t[3];
	size_t			 i = 99;

#define TXT(k, s)	(t[k].text = (s), t[k].len = sizeof(s) - 1)
	TXT(0, "v=spf1 -all");
	TXT(1, "v=DMARC1; p=reject");
	assert_int_equal(dmarc_record_select(t, 2, &i), DMARC_SELECT_ONE);
	assert_int_equal(i, 1);
	TXT(0, "v=DMARC1;p=none");
	assert_int_equal(dmarc_record_select(t, 2, &i), DMARC_SELECT_MANY);
	assert_int_equal(dmarc_record_select(t, 0, &i), DMARC_SELECT_NONE);
	TXT(0, "V = DMARC1 ; p=reject");
	assert_int_equal(dmarc_record_select(t, 1, &i), DMARC_SELECT_ONE);
	TXT(0, "v=DMARC1");
	assert_int_equal(dmarc_record_select(t, 1, &i), DMARC_SELECT_ONE);
	TXT(0, "v=dmarc1; p=reject");
	TXT(1, "v=DMARC2; p=reject");
	TXT(2, "v=DMARC1x; p=reject");
	assert_int_equal(dmarc_record_select(t, 3, &i), DMARC_SELECT_NONE);
	TXT(0, " v=DMARC1; p=reject");
	TXT(1, "p=reject; v=DMARC1");
	TXT(2, "v=DMARC");
	assert_int_equal(dmarc_record_select(t, 3, &i), DMARC_SELECT_NONE);
#undef TXT
}

static int
parse(const char *text, struct dmarc_record *r)
{
	const char	*why = NULL;
	int		 rc;

	memset(r, 0xa5, sizeof(*r));
	rc = dmarc_record_parse(text, strlen(text), "example.org", r, &why);
	assert_true(rc == 0 ? why == NULL : why != NULL);
	return rc;
}

static void
test_record_parse(void **state)
{
	struct dmarc_record	 r;

	assert_int_equal(parse("v=DMARC1; p=reject", &r), 0);
	assert_int_equal(r.p, DMARC_P_REJECT);
	assert_int_equal(r.sp, DMARC_P_UNSET);
	assert_false(r.adkim_strict);
	assert_false(r.aspf_strict);
	assert_int_equal(r.pct, 100);
	assert_int_equal(parse("v=DMARC1; p=quarantine; sp=none; adkim=s; aspf=s; pct=25", &r),
	    0);
	assert_int_equal(r.p, DMARC_P_QUARANTINE);
	assert_int_equal(r.sp, DMARC_P_NONE);
	assert_true(r.adkim_strict);
	assert_true(r.aspf_strict);
	assert_int_equal(r.pct, 25);
	assert_int_equal(parse("v=DMARC1;p=none;sp=reject;adkim=r;aspf=strict;pct=0", &r), 0);
	assert_int_equal(r.p, DMARC_P_NONE);
	assert_int_equal(r.sp, DMARC_P_REJECT);
	assert_false(r.adkim_strict);
	assert_true(r.aspf_strict);
	assert_int_equal(r.pct, 0);
}

/* Reporting tags are not ours: long or odd ones must not matter. */
static void
test_record_reporting_tags_dropped(void **state)
{
	struct dmarc_record	 r;
	char			 rec[2000];

	assert_int_equal(parse("v=DMARC1; p=none; rua=mailto:a@example.org; "
	    "ruf=mailto:f@example.org; fo=1:d; rf=afrf; ri=3600", &r), 0);
	assert_int_equal(r.p, DMARC_P_NONE);
	snprintf(rec, sizeof(rec), "v=DMARC1; p=reject; rua=mailto:%0600d@example.org; "
	    "rf=%032d; fo=%0512d; ri=x", 0, 0, 0);
	assert_int_equal(parse(rec, &r), 0);
	assert_int_equal(r.p, DMARC_P_REJECT);
	assert_int_equal(parse("v=DMARC1; p=reject; rf=bogus; fo=q; unknown=1; novalue", &r), 0);
}

/* Bad adkim, aspf and pct values give way to the defaults (RFC 7489 6.3). */
static void
test_record_bad_optional_tags(void **state)
{
	struct dmarc_record	 r;

	assert_int_equal(parse("v=DMARC1; p=reject; adkim=x; aspf=strictly; pct=150", &r), 0);
	assert_false(r.adkim_strict);
	assert_false(r.aspf_strict);
	assert_int_equal(r.pct, 100);
	assert_int_equal(parse("v=DMARC1; p=reject; pct=-5; adkim=; aspf", &r), 0);
	assert_int_equal(r.pct, 100);
	assert_int_equal(parse("v=DMARC1; p=reject; pct=abc", &r), 0);
	assert_int_equal(r.pct, 100);
}

static void
test_record_invalid(void **state)
{
	struct dmarc_record	 r;
	char			 rec[5000];
	const char		*why;
	size_t			 i;

	assert_int_equal(parse("v=DMARC1; p=bogus", &r), -1);
	assert_int_equal(parse("v=DMARC1; sp=reject", &r), -1);
	assert_int_equal(parse("v=DMARC1; p=reject; sp=bogus", &r), -1);
	assert_int_equal(parse("v=DMARC1; p=", &r), -1);
	assert_int_equal(parse("v=DMARC1", &r), -1);
	snprintf(rec, sizeof(rec), "v=DMARC1; p=%0600d", 0);
	assert_int_equal(parse(rec, &r), -1);
	memset(rec, ' ', sizeof(rec));
	memcpy(rec, "v=DMARC1; p=reject;", 19);
	assert_int_equal(dmarc_record_parse(rec, sizeof(rec), "example.org", &r, &why), -1);
	assert_string_equal(why, "record too long");
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject\0x", 20, "example.org", &r, &why),
	    -1);
	assert_string_equal(why, "NUL byte in the record");
	strcpy(rec, "v=DMARC1; p=reject");
	for (i = 0; i < 200; i++)
		strcat(rec, "; p=r");
	assert_int_equal(dmarc_record_parse(rec, strlen(rec), "example.org", &r, &why), -1);
	assert_string_equal(why, "too many tags");
}

/* libopendmarc's reading of p is generous ("p=r"); we keep what it says. */
static void
test_record_library_reading(void **state)
{
	struct dmarc_record	 r;

	assert_int_equal(parse("v=DMARC1;p=r", &r), 0);
	assert_int_equal(r.p, DMARC_P_REJECT);
	assert_int_equal(parse("v=DMARC1; p = Quarantine ;", &r), 0);
	assert_int_equal(r.p, DMARC_P_QUARANTINE);
	assert_int_equal(parse("v=DMARC2; p=reject", &r), -1);
}

/* --- Alignment and the decision ------------------------------------------- */

static void
test_alignment_strict(void **state)
{
	assert_true(dmarc_aligned(*state, "example.com", "example.com", 1));
	/* libopendmarc 1.4.2 calls these aligned in strict mode. */
	assert_false(dmarc_aligned(*state, "example.com", "sub.example.com", 1));
	assert_false(dmarc_aligned(*state, "a.example.com", "example.com", 1));
	assert_false(dmarc_aligned(*state, "a.example.com", "b.example.com", 1));
}

static void
test_alignment_relaxed(void **state)
{
	assert_true(dmarc_aligned(*state, "example.com", "sub.example.com", 0));
	assert_true(dmarc_aligned(*state, "a.example.com", "b.example.com", 0));
	assert_true(dmarc_aligned(*state, "example.co.uk", "mail.example.co.uk", 0));
	assert_true(dmarc_aligned(*state, "a.www.ck", "www.ck", 0));
	/* Different organizations under one public suffix. */
	assert_false(dmarc_aligned(*state, "a.co.uk", "b.co.uk", 0));
	assert_false(dmarc_aligned(*state, "example.com", "com", 0));
	assert_false(dmarc_aligned(*state, "foo.github.io", "bar.github.io", 0));
	assert_false(dmarc_aligned(*state, "a.x.y.ck", "z.y.ck", 0));
	assert_false(dmarc_aligned(*state, "example.com", "example.org", 0));
	assert_false(dmarc_aligned(*state, "example.com", "notexample.com", 0));
}

static void
eval(void **state, struct dmarc_eval *e, const struct dmarc_record *r, const char *from_domain,
    const char *spf, const char *dkim)
{
	static const char	*spfv[1], *dkimv[1];

	spfv[0] = spf;
	dkimv[0] = dkim;
	e->from_domain = from_domain;
	e->rec = r;
	e->spf = spfv;
	e->nspf = spf != NULL;
	e->dkim = dkimv;
	e->ndkim = dkim != NULL;
	dmarc_evaluate(*state, e);
}

static void
test_evaluate_pass_fail(void **state)
{
	struct dmarc_record	 r = { DMARC_P_REJECT, DMARC_P_UNSET, 0, 0, 100 };
	struct dmarc_eval	 e = { 0 };

	eval(state, &e, &r, "example.org", "example.org", NULL);
	assert_true(e.pass);
	assert_true(e.spf_aligned);
	assert_false(e.dkim_aligned);
	assert_int_equal(e.disposition, DMARC_P_NONE);
	assert_int_equal(e.policy, DMARC_P_REJECT);
	eval(state, &e, &r, "example.org", NULL, "mail.example.org");
	assert_true(e.pass);
	assert_true(e.dkim_aligned);
	eval(state, &e, &r, "example.org", NULL, NULL);
	assert_false(e.pass);
	assert_int_equal(e.disposition, DMARC_P_REJECT);
	eval(state, &e, &r, "example.org", "evil.example", "evil.example");
	assert_false(e.pass);
	assert_false(e.spf_aligned);
	assert_false(e.dkim_aligned);
	assert_int_equal(e.disposition, DMARC_P_REJECT);
}

static void
test_evaluate_strict_modes(void **state)
{
	struct dmarc_record	 r = { DMARC_P_QUARANTINE, DMARC_P_UNSET, 1, 1, 100 };
	struct dmarc_eval	 e = { 0 };

	eval(state, &e, &r, "example.org", "bounce.example.org", "mail.example.org");
	assert_false(e.pass);
	assert_int_equal(e.disposition, DMARC_P_QUARANTINE);
	r.aspf_strict = 0;
	eval(state, &e, &r, "example.org", "bounce.example.org", "mail.example.org");
	assert_true(e.pass);
	assert_true(e.spf_aligned);
	assert_false(e.dkim_aligned);
	r.aspf_strict = 1;
	r.adkim_strict = 0;
	eval(state, &e, &r, "example.org", "bounce.example.org", "mail.example.org");
	assert_true(e.pass);
	assert_false(e.spf_aligned);
	assert_true(e.dkim_aligned);
}

/* sp applies only to a record found at the organizational domain. */
static void
test_evaluate_subdomain_policy(void **state)
{
	struct dmarc_record	 r = { DMARC_P_REJECT, DMARC_P_NONE, 0, 0, 100 };
	struct dmarc_eval	 e = { 0 };

	e.at_org = 1;
	eval(state, &e, &r, "sub.example.org", NULL, NULL);
	assert_false(e.pass);
	assert_int_equal(e.policy, DMARC_P_NONE);
	assert_int_equal(e.disposition, DMARC_P_NONE);
	e.at_org = 0;
	eval(state, &e, &r, "sub.example.org", NULL, NULL);
	assert_int_equal(e.policy, DMARC_P_REJECT);
	assert_int_equal(e.disposition, DMARC_P_REJECT);
	r.sp = DMARC_P_UNSET;
	e.at_org = 1;
	eval(state, &e, &r, "sub.example.org", NULL, NULL);
	assert_int_equal(e.policy, DMARC_P_REJECT);
	r.sp = DMARC_P_QUARANTINE;
	eval(state, &e, &r, "sub.example.org", NULL, NULL);
	assert_int_equal(e.disposition, DMARC_P_QUARANTINE);
}

static void
test_evaluate_pct(void **state)
{
	struct dmarc_record	 r = { DMARC_P_REJECT, DMARC_P_UNSET, 0, 0, 50 };
	struct dmarc_eval	 e = { 0 };

	e.sample = 49;
	eval(state, &e, &r, "example.org", NULL, NULL);
	assert_int_equal(e.disposition, DMARC_P_REJECT);
	assert_false(e.sampled_out);
	e.sample = 50;
	eval(state, &e, &r, "example.org", NULL, NULL);
	assert_int_equal(e.disposition, DMARC_P_QUARANTINE);
	assert_true(e.sampled_out);
	assert_false(e.pass);
	r.p = DMARC_P_QUARANTINE;
	e.sample = 70;
	eval(state, &e, &r, "example.org", NULL, NULL);
	assert_int_equal(e.disposition, DMARC_P_NONE);
	r.pct = 0;
	e.sample = 0;
	eval(state, &e, &r, "example.org", NULL, NULL);
	assert_int_equal(e.disposition, DMARC_P_NONE);
	r.p = DMARC_P_REJECT;
	r.pct = 100;
	e.sample = 99;
	eval(state, &e, &r, "example.org", NULL, NULL);
	assert_int_equal(e.disposition, DMARC_P_REJECT);
	r.p = DMARC_P_NONE;
	r.pct = 10;
	eval(state, &e, &r, "example.org", NULL, NULL);
	assert_int_equal(e.disposition, DMARC_P_NONE);
	assert_false(e.sampled_out);
}

static void
test_evaluate_several_identities(void **state)
{
	struct dmarc_record	 r = { DMARC_P_REJECT, DMARC_P_UNSET, 0, 0, 100 };
	const char		*dkim[] = { "evil.example", NULL, "news.example.org" };
	struct dmarc_eval	 e = { 0 };

	e.from_domain = "example.org";
	e.rec = &r;
	e.dkim = dkim;
	e.ndkim = 2;
	dmarc_evaluate(*state, &e);
	assert_false(e.pass);
	e.ndkim = 3;
	dmarc_evaluate(*state, &e);
	assert_true(e.pass);
	assert_string_equal(dmarc_p_name(DMARC_P_UNSET), "absent");
	assert_string_equal(dmarc_p_name(DMARC_P_QUARANTINE), "quarantine");
}

/* --- Authentication-Results properties ----------------------------------- */

static void
test_prop_get(void **state)
{
	char	 v[64];

	assert_int_equal(dmarc_prop_get("smtp.mailfrom=user@example.org", "smtp.mailfrom", v,
	    sizeof(v)), 0);
	assert_string_equal(v, "user@example.org");
	assert_int_equal(dmarc_prop_get("header.d=example.org header.s=sel", "header.s", v,
	    sizeof(v)), 0);
	assert_string_equal(v, "sel");
	assert_int_equal(dmarc_prop_get("header.s=sel\theader.d=Example.org", "HEADER.D", v,
	    sizeof(v)), 0);
	assert_string_equal(v, "Example.org");
	assert_int_equal(dmarc_prop_get("header.d=\"exa\\mple.org\"", "header.d", v,
	    sizeof(v)), 0);
	assert_string_equal(v, "example.org");
	assert_int_equal(dmarc_prop_get("x=\"a b\" smtp.mailfrom=\"john doe\"@example.org",
	    "smtp.mailfrom", v, sizeof(v)), 0);
	assert_string_equal(v, "\"john doe\"@example.org");
	assert_int_equal(dmarc_prop_get("header.dx=1 xheader.d=2 word", "header.d", v,
	    sizeof(v)), -1);
	assert_int_equal(dmarc_prop_get("", "header.d", v, sizeof(v)), -1);
	assert_int_equal(dmarc_prop_get("header.d=\"unterminated", "header.d", v, sizeof(v)),
	    -1);
	assert_int_equal(dmarc_prop_get("header.d=example.org", "header.d", v, 11), -1);
	assert_int_equal(dmarc_prop_get("header.d=example.org", "header.d", v, 12), 0);
	assert_int_equal(dmarc_prop_get("header.d=\"example.org\"", "header.d", v, 11), -1);
}

static void
test_identity_domain(void **state)
{
	char	 d[DMARC_DOMAIN_MAX];

	assert_int_equal(dmarc_identity_domain("user@Example.ORG", d), 0);
	assert_string_equal(d, "example.org");
	assert_int_equal(dmarc_identity_domain("example.org", d), 0);
	assert_string_equal(d, "example.org");
	assert_int_equal(dmarc_identity_domain("\"a@b\"@c.example", d), 0);
	assert_string_equal(d, "c.example");
	assert_int_equal(dmarc_identity_domain("", d), -1);
	assert_int_equal(dmarc_identity_domain("user@", d), -1);
	assert_int_equal(dmarc_identity_domain("<>", d), -1);
}

int
main(void)
{
#define PSL_TEST(t)	cmocka_unit_test_setup_teardown(t, psl_setup, psl_teardown)
	const struct CMUnitTest tests[] = {
		PSL_TEST(test_psl_rules),
		PSL_TEST(test_org_domain_plain),
		PSL_TEST(test_org_domain_suffix_itself),
		PSL_TEST(test_org_domain_default_rule),
		PSL_TEST(test_org_domain_wildcard_exception),
		PSL_TEST(test_org_domain_unicode_rule),
		cmocka_unit_test(test_psl_system_file),
		cmocka_unit_test(test_psl_load_errors),
		cmocka_unit_test(test_punycode),
		cmocka_unit_test(test_domain_normalize),
		cmocka_unit_test(test_from_simple),
		cmocka_unit_test(test_from_display_names),
		cmocka_unit_test(test_from_comments_folding),
		cmocka_unit_test(test_from_utf8_domain),
		cmocka_unit_test(test_domain_to_ascii),
		cmocka_unit_test(test_from_route_and_groups),
		cmocka_unit_test(test_from_several_domains),
		cmocka_unit_test(test_from_bad),
		cmocka_unit_test(test_from_hostile),
		cmocka_unit_test(test_record_select),
		cmocka_unit_test(test_record_parse),
		cmocka_unit_test(test_record_reporting_tags_dropped),
		cmocka_unit_test(test_record_bad_optional_tags),
		cmocka_unit_test(test_record_invalid),
		cmocka_unit_test(test_record_library_reading),
		PSL_TEST(test_alignment_strict),
		PSL_TEST(test_alignment_relaxed),
		PSL_TEST(test_evaluate_pass_fail),
		PSL_TEST(test_evaluate_strict_modes),
		PSL_TEST(test_evaluate_subdomain_policy),
		PSL_TEST(test_evaluate_pct),
		PSL_TEST(test_evaluate_several_identities),
		cmocka_unit_test(test_prop_get),
		cmocka_unit_test(test_identity_domain),
	};
#undef PSL_TEST

	return cmocka_run_group_tests_name("dmarc", tests, NULL, NULL);
}
