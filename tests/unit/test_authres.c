/*
 * test_authres.c - the Authentication-Results header text of the authres
 * filter: which incoming fields claim our authserv-id (the forgeries the
 * filter removes), and the field it writes (quoting, folding, what is
 * left out).
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

#include "authres_header.h"

#define ID	"mx.example.org"
#define NAMELEN	22	/* strlen("Authentication-Results") */

static void	 check_lines(const char *, size_t);

/* A folded value: CRLF TAB between lines, no bare CR or LF, no line over max. */
static void
check_lines(const char *v, size_t max)
{
	size_t	 col = NAMELEN + 2, i;

	for (i = 0; v[i] != '\0'; i++) {
		if (v[i] == '\r') {
			assert_int_equal(v[i + 1], '\n');
			assert_int_equal(v[i + 2], '\t');
			assert_true(v[i + 3] != '\0' && v[i + 3] != ' ' && v[i + 3] != '\t' &&
			    v[i + 3] != '\r');
			assert_true(col <= max);
			col = 0;
			i++;
			continue;
		}
		assert_int_not_equal(v[i], '\n');
		col++;
	}
	assert_true(col <= max);
}

static void
test_claims_plain(void **state)
{
	assert_true(authres_claims_id("mx.example.org; spf=pass smtp.mailfrom=a.example", ID));
	assert_true(authres_claims_id("mx.example.org", ID));
	assert_true(authres_claims_id("mx.example.org; none", ID));
	assert_true(authres_claims_id("mx.example.org 1; spf=pass", ID));
	assert_true(authres_claims_id("mx.example.org;spf=pass", ID));
	assert_true(authres_claims_id("mx.example.org(comment);spf=pass", ID));
}

static void
test_claims_case_and_dot(void **state)
{
	assert_true(authres_claims_id("MX.Example.ORG; spf=pass", ID));
	assert_true(authres_claims_id("mx.example.org.; spf=pass", ID));
	assert_true(authres_claims_id("mx.example.org; spf=pass", "MX.EXAMPLE.ORG."));
}

static void
test_claims_cfws(void **state)
{
	assert_true(authres_claims_id("  (comment) MX.Example.ORG ;", ID));
	assert_true(authres_claims_id("(nested (comment) here) mx.example.org; dkim=pass", ID));
	assert_true(authres_claims_id("\r\n\tmx.example.org;\r\n\tspf=pass", ID));
	assert_true(authres_claims_id(" (a\r\n b) \t mx.example.org\r\n ; spf=pass", ID));
	assert_true(authres_claims_id("(;) mx.example.org; spf=pass", ID));
	assert_true(authres_claims_id("(\\) still a comment ;) mx.example.org; spf=pass", ID));
	assert_true(authres_claims_id("((a) mx.example.org) mx.example.org; spf=pass", ID));
}

static void
test_claims_quoted(void **state)
{
	assert_true(authres_claims_id("\"mx.example.org\"; spf=pass", ID));
	assert_true(authres_claims_id("\"mx\\.example\\.org\"; spf=pass", ID));
	assert_true(authres_claims_id("(x) \"MX.example.org\" ; spf=pass", ID));
	/* Unfolding keeps the white space: that is another name. */
	assert_false(authres_claims_id("\"mx.exa\r\n mple.org\"; spf=pass", ID));
}

/* Shapes a laxer parser downstream could read as ours are claimed too. */
static void
test_claims_lax_readings(void **state)
{
	assert_true(authres_claims_id("junk mx.example.org; spf=pass", ID));
	assert_true(authres_claims_id("(unterminated mx.example.org; spf=pass", ID));
	assert_true(authres_claims_id("mx.example.org/1; spf=pass", ID));
	assert_true(authres_claims_id("<mx.example.org>; spf=pass", ID));
}

static void
test_claims_others_kept(void **state)
{
	assert_false(authres_claims_id("other.example.net; spf=pass "
	    "smtp.mailfrom=mx.example.org", ID));
	assert_false(authres_claims_id("other.example.net; dkim=pass header.d=mx.example.org",
	    ID));
	assert_false(authres_claims_id("mx.example.org.evil.net; spf=pass", ID));
	assert_false(authres_claims_id("evil-mx.example.org; spf=pass", ID));
	assert_false(authres_claims_id("sub.mx.example.org; spf=pass", ID));
	assert_false(authres_claims_id("mx.example.orgx; spf=pass", ID));
	assert_false(authres_claims_id("xmx.example.org; spf=pass", ID));
	assert_false(authres_claims_id("mx_example.org; spf=pass", ID));
	assert_false(authres_claims_id("\"other.example.net\"; spf=pass", ID));
	assert_false(authres_claims_id("mx.example.com; spf=pass", ID));
	assert_false(authres_claims_id("", ID));
	assert_false(authres_claims_id("   \r\n\t", ID));
	assert_false(authres_claims_id("(only a comment)", ID));
	assert_false(authres_claims_id("\"unterminated", ID));
}

/* Every prefix and every single-byte change of the samples: no crash, a 0/1 answer. */
static void
test_claims_hostile(void **state)
{
	static const char *const samples[] = {
		"  (a (b \\) c) d) \"mx\\.example.org\" 1 ; spf=pass (x) smtp.mailfrom=a@b",
		"\"\\", "(((((((", "\\\\\\\"", ";;;;", "mx.example.org.",
	};
	char	 buf[256], big[70000];
	size_t	 i, n, len;
	int	 r;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		len = strlen(samples[i]);
		for (n = 0; n <= len; n++) {
			memcpy(buf, samples[i], n);
			buf[n] = '\0';
			r = authres_claims_id(buf, ID);
			assert_true(r == 0 || r == 1);
			if (n > 0) {
				buf[n - 1] = (char)0xff;
				r = authres_claims_id(buf, ID);
				assert_true(r == 0 || r == 1);
			}
		}
	}
	memset(big, '(', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(authres_claims_id(big, ID));
	memset(big, 'a', sizeof(big) - 1);
	assert_false(authres_claims_id(big, ID));
	assert_false(authres_claims_id(NULL, ID));
}

static void
test_id_valid(void **state)
{
	char	 id[300];

	assert_true(authres_id_valid("mx.example.org"));
	assert_true(authres_id_valid("MX_1.example-x.org"));
	assert_false(authres_id_valid(""));
	assert_false(authres_id_valid(NULL));
	assert_false(authres_id_valid("mx example.org"));
	assert_false(authres_id_valid("mx.example.org;"));
	assert_false(authres_id_valid("\"mx\""));
	assert_false(authres_id_valid("mx.ex\xc3\xa9mple.org"));
	memset(id, 'a', 255);
	id[255] = '\0';
	assert_true(authres_id_valid(id));
	memset(id, 'a', 256);
	id[256] = '\0';
	assert_false(authres_id_valid(id));
}

static void
test_format_none(void **state)
{
	struct authres_entry	 bad[] = {
		{ "sp f", "pass", NULL, NULL },
		{ "spf", "pa;ss", NULL, NULL },
		{ NULL, "pass", NULL, NULL },
		{ "spf-", "pass", NULL, NULL },
	};
	char			*v;

	v = authres_format(ID, NULL, 0, NAMELEN);
	assert_string_equal(v, "mx.example.org; none");
	free(v);
	v = authres_format(ID, bad, sizeof(bad) / sizeof(bad[0]), NAMELEN);
	assert_string_equal(v, "mx.example.org; none");
	free(v);
}

static void
test_format_one(void **state)
{
	struct authres_entry	 e = { "spf", "pass", NULL, "smtp.mailfrom=example.org" };
	char			*v = authres_format(ID, &e, 1, NAMELEN);

	assert_string_equal(v, "mx.example.org; spf=pass smtp.mailfrom=example.org");
	free(v);
}

static void
test_format_folds(void **state)
{
	struct authres_entry	 e[] = {
		{ "spf", "pass", NULL, "smtp.mailfrom=example.org" },
		{ "dkim", "pass", NULL, "header.d=example.org header.s=sel" },
		{ "dmarc", "pass", NULL, "header.from=example.org" },
	};
	char			*v = authres_format(ID, e, 3, NAMELEN);

	assert_string_equal(v, "mx.example.org; spf=pass smtp.mailfrom=example.org;\r\n"
	    "\tdkim=pass header.d=example.org header.s=sel; dmarc=pass\r\n"
	    "\theader.from=example.org");
	check_lines(v, 78);
	free(v);
}

static void
test_format_many_lines(void **state)
{
	struct authres_entry	 e[40];
	char			*v;
	size_t			 i;

	for (i = 0; i < 40; i++) {
		e[i].method = i % 2 ? "dkim" : "spf";
		e[i].result = i % 3 ? "fail" : "pass";
		e[i].reason = i % 5 == 0 ? "signature did not verify" : NULL;
		e[i].props = i % 2 ? "header.d=some-long-domain-name.example.org header.s=s2024 "
		    "header.b=Ab12/+x=" : "smtp.mailfrom=someone@example.org";
	}
	v = authres_format(ID, e, 40, NAMELEN);
	assert_non_null(v);
	check_lines(v, 78);
	assert_non_null(strstr(v, "header.b=\"Ab12/+x=\""));
	assert_non_null(strstr(v, "smtp.mailfrom=someone@example.org"));
	free(v);
}

/* A unit longer than a line goes on a line of its own, unbroken. */
static void
test_format_long_unit(void **state)
{
	char			 reason[200];
	struct authres_entry	 e = { "spf", "fail", reason, NULL };
	char			*v;

	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	v = authres_format(ID, &e, 1, NAMELEN);
	assert_non_null(strstr(v, "mx.example.org; spf=fail\r\n\treason=\"xxxx"));
	assert_int_equal(strlen(strstr(v, "\treason=")), 1 + 9 + 199);
	free(v);
}

static void
test_format_reason_quoting(void **state)
{
	struct authres_entry	 e = { "spf", "fail",
	    "bad \"quote\" \\ and\r\nX-Evil: 1\x01 \xc3\xa9", NULL };
	char			*v = authres_format(ID, &e, 1, NAMELEN);

	assert_string_equal(v, "mx.example.org; spf=fail\r\n"
	    "\treason=\"bad \\\"quote\\\" \\\\ and  X-Evil: 1  ??\"");
	free(v);
}

static void
test_format_reason_truncated(void **state)
{
	char			 reason[1000];
	struct authres_entry	 e = { "spf", "fail", reason, NULL };
	char			*v, *r;

	memset(reason, 'y', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	v = authres_format(ID, &e, 1, NAMELEN);
	r = strstr(v, "reason=\"");
	assert_non_null(r);
	assert_int_equal(strlen(r), 8 + 256 + 1);
	free(v);
}

static void
test_format_props_quoting(void **state)
{
	struct authres_entry	 e[] = {
		{ "spf", "pass", NULL, "smtp.mailfrom=a;dkim=pass" },
		{ "spf", "pass", NULL, "smtp.mailfrom=\"john doe\"@example.org" },
		{ "dkim", "pass", NULL, "header.d=\"example.org\"  header.i=@example.org" },
		{ "x", "y", NULL, "smtp.mailfrom=user@example.org policy.x=a(b)" },
	};
	char	*v = authres_format("a", e, 4, 0);

	assert_string_equal(v, "a; spf=pass smtp.mailfrom=\"a;dkim=pass\"; spf=pass\r\n"
	    "\tsmtp.mailfrom=\"\\\"john doe\\\"@example.org\"; dkim=pass header.d=example.org\r\n"
	    "\theader.i=@example.org; x=y smtp.mailfrom=user@example.org policy.x=\"a(b)\"");
	free(v);
}

static void
test_format_props_dropped(void **state)
{
	struct authres_entry	 e = { "spf", "pass", NULL,
	    "smtp.mailfrom=us\xc3\xa9r@example.org noequals .d=x smtp.=x bad key=v "
	    "header.d=ok.example smtp.x=\"unterminated" };
	char	*v = authres_format(ID, &e, 1, NAMELEN);

	assert_string_equal(v, "mx.example.org; spf=pass header.d=ok.example");
	free(v);
}

static void
test_format_props_too_long(void **state)
{
	char			 props[700];
	struct authres_entry	 e = { "dkim", "pass", NULL, props };
	char			*v;

	snprintf(props, sizeof(props), "header.b=%0600d header.d=example.org", 0);
	v = authres_format(ID, &e, 1, NAMELEN);
	assert_string_equal(v, "mx.example.org; dkim=pass header.d=example.org");
	free(v);
}

static void
test_format_method_version(void **state)
{
	struct authres_entry	 e[] = {
		{ "dkim/1", "pass", NULL, NULL },
		{ "dkim/", "pass", NULL, NULL },
	};
	char	*v = authres_format(ID, e, 2, NAMELEN);

	assert_string_equal(v, "mx.example.org; dkim/1=pass");
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claims_plain),
		cmocka_unit_test(test_claims_case_and_dot),
		cmocka_unit_test(test_claims_cfws),
		cmocka_unit_test(test_claims_quoted),
		cmocka_unit_test(test_claims_lax_readings),
		cmocka_unit_test(test_claims_others_kept),
		cmocka_unit_test(test_claims_hostile),
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_format_none),
		cmocka_unit_test(test_format_one),
		cmocka_unit_test(test_format_folds),
		cmocka_unit_test(test_format_many_lines),
		cmocka_unit_test(test_format_long_unit),
		cmocka_unit_test(test_format_reason_quoting),
		cmocka_unit_test(test_format_reason_truncated),
		cmocka_unit_test(test_format_props_quoting),
		cmocka_unit_test(test_format_props_dropped),
		cmocka_unit_test(test_format_props_too_long),
		cmocka_unit_test(test_format_method_version),
	};

	return cmocka_run_group_tests_name("authres", tests, NULL, NULL);
}
