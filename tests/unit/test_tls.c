/*
 * test_tls.c - unit tests for the pure parts of proxy/tls.c: certificate
 * name matching for SNI (wildcards, case, trailing dots) and version
 * names.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "tls.h"

static void	 test_name_exact(void **);
static void	 test_name_wildcard(void **);
static void	 test_name_degenerate(void **);
static void	 test_version_parse(void **);

static void
test_name_exact(void **state)
{
	assert_true(tls_name_match("mx.example.org", "mx.example.org"));
	assert_true(tls_name_match("MX.Example.ORG", "mx.example.org"));
	assert_true(tls_name_match("mx.example.org.", "mx.example.org"));
	assert_true(tls_name_match("mx.example.org", "mx.example.org."));
	assert_false(tls_name_match("mx.example.org", "mx.example.com"));
	assert_false(tls_name_match("mx.example.org", "x.example.org"));
	assert_false(tls_name_match("mx.example.org", "mx.example.or"));
	assert_false(tls_name_match("mx.example.org", "amx.example.org"));
}

static void
test_name_wildcard(void **state)
{
	assert_true(tls_name_match("*.example.org", "mx.example.org"));
	assert_true(tls_name_match("*.example.org", "MX.EXAMPLE.ORG."));
	/* Exactly one label: not the bare domain, not two labels. */
	assert_false(tls_name_match("*.example.org", "example.org"));
	assert_false(tls_name_match("*.example.org", "a.mx.example.org"));
	assert_false(tls_name_match("*.example.org", ".example.org"));
	assert_false(tls_name_match("*.example.org", "mx.example.com"));
	/* A "*" anywhere else is a literal byte, never a wildcard. */
	assert_false(tls_name_match("m*.example.org", "mx.example.org"));
	assert_false(tls_name_match("mx.*.org", "mx.example.org"));
	/* The client cannot send a wildcard to match everything. */
	assert_false(tls_name_match("mx.example.org", "*.example.org"));
}

static void
test_name_degenerate(void **state)
{
	assert_false(tls_name_match("", ""));
	assert_false(tls_name_match("", "mx.example.org"));
	assert_false(tls_name_match("mx.example.org", ""));
	assert_false(tls_name_match(".", "."));
	assert_false(tls_name_match("*.", "a."));
	assert_false(tls_name_match("*", "a"));
}

static void
test_version_parse(void **state)
{
	assert_int_equal(tls_version_parse("TLSv1.2"), TLS1_2_VERSION);
	assert_int_equal(tls_version_parse("TLSv1.3"), TLS1_3_VERSION);
	assert_int_equal(tls_version_parse("TLSv1.1"), TLS1_1_VERSION);
	assert_int_equal(tls_version_parse("TLSv1"), TLS1_VERSION);
	assert_int_equal(tls_version_parse("SSLv3"), -1);
	assert_int_equal(tls_version_parse("tlsv1.2"), -1);
	assert_int_equal(tls_version_parse(""), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_exact),
		cmocka_unit_test(test_name_wildcard),
		cmocka_unit_test(test_name_degenerate),
		cmocka_unit_test(test_version_parse),
	};

	return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}
