/*
 * test_auth_passwd.c - unit tests for proxy/auth_passwd.c: the file
 * parser (comments, Dovecot fields and scheme prefixes, bad lines reported
 * as file:line, duplicate users), crypt_r checks of each hash family, and
 * re-reading the file when it changes.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth_passwd.h"

/* "pw" hashed with each family (made with libxcrypt). */
#define HASH_Y	"$y$j9T$cpQnFgIm3i01L3ZaizaMP0$7aTE//exUW9IhNmayh8WV0FOW/Ak6I5ySO5QAPCboLD"
#define HASH_2B	"$2b$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q"

static struct auth_passwd_table *parse(const char *, char *, size_t);

static struct auth_passwd_table *
parse(const char *text, char *err, size_t errlen)
{
	return auth_passwd_parse("users", text, strlen(text), err, errlen);
}

static void
test_parse_good(void **state)
{
	char			 err[512];
	struct auth_passwd_table *t;

	t = parse("# users\n\n  # indented comment\nalice:" HASH_Y "\r\n"
	    "bob:{SHA512-CRYPT}$6$salt$x:1000:1000::/home/bob::\n"
	    "carol:" HASH_2B, err, sizeof(err));
	assert_non_null(t);
	assert_string_equal(err, "");
	assert_int_equal(auth_passwd_table_count(t), 3);
	assert_string_equal(auth_passwd_table_find(t, "alice"), HASH_Y);
	assert_string_equal(auth_passwd_table_find(t, "bob"), "$6$salt$x");
	assert_string_equal(auth_passwd_table_find(t, "carol"), HASH_2B);
	assert_null(auth_passwd_table_find(t, "dave"));
	assert_null(auth_passwd_table_find(t, "alic"));
	auth_passwd_table_free(t);
	t = parse("", err, sizeof(err));
	assert_non_null(t);
	assert_int_equal(auth_passwd_table_count(t), 0);
	assert_null(auth_passwd_table_find(t, "x"));
	auth_passwd_table_free(t);
}

static void
test_parse_bad(void **state)
{
	char	 err[512];

	assert_null(parse("alice:" HASH_Y "\nnocolon\n", err, sizeof(err)));
	assert_string_equal(err, "users:2: expected user:hash\n");
	assert_null(parse("\n:" HASH_Y "\n", err, sizeof(err)));
	assert_string_equal(err, "users:2: empty or invalid user name\n");
	assert_null(parse("a b:" HASH_Y "\n", err, sizeof(err)));
	assert_string_equal(err, "users:1: empty or invalid user name\n");
	assert_null(parse("alice:plaintext\n", err, sizeof(err)));
	assert_non_null(strstr(err, "users:1: unsupported password hash"));
	assert_null(parse("alice:$1$md5$xyz\n", err, sizeof(err)));
	assert_non_null(strstr(err, "users:1: unsupported"));
	assert_null(parse("alice:\n", err, sizeof(err)));
	assert_non_null(strstr(err, "users:1: unsupported"));
	assert_null(parse("# x\nbob:" HASH_Y "\nalice:" HASH_Y "\nbob:" HASH_2B "\n",
	    err, sizeof(err)));
	assert_string_equal(err, "users:4: duplicate user (first on line 2)\n");
	assert_null(auth_passwd_parse("users", "a:$y$\0b", 7, err, sizeof(err)));
	assert_string_equal(err, "users:1: NUL byte in the file\n");
	/* a tiny error buffer is never overrun */
	assert_null(parse("nocolon\n", err, 8));
}

static void
test_hash_check(void **state)
{
	assert_true(auth_passwd_hash_check(HASH_Y, "pw"));
	assert_false(auth_passwd_hash_check(HASH_Y, "pW"));
	assert_false(auth_passwd_hash_check(HASH_Y, ""));
	assert_true(auth_passwd_hash_check(HASH_2B, "pw"));
	assert_false(auth_passwd_hash_check(HASH_2B, "px"));
	/* a broken hash never matches, whatever the password */
	assert_false(auth_passwd_hash_check("$6$", ""));
	assert_false(auth_passwd_hash_check("$y$j9T$", "pw"));
	assert_false(auth_passwd_hash_check("*", "*"));
}

static void
test_file_reload(void **state)
{
	char			 path[] = "/tmp/sluice-test-passwd-XXXXXX", err[512];
	struct auth_passwd	*p;
	FILE			*f;
	int			 fd;

	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fprintf(f, "alice:%s\n", HASH_Y);
	fclose(f);
	assert_non_null(p = auth_passwd_open(path, err, sizeof(err)));
	assert_int_equal(auth_passwd_check(p, "alice", "pw"), AUTH_PASSWD_OK);
	assert_int_equal(auth_passwd_check(p, "alice", "no"), AUTH_PASSWD_FAIL);
	assert_int_equal(auth_passwd_check(p, "bob", "pw"), AUTH_PASSWD_FAIL);
	/* a new file (another size) replaces the table */
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "bob:%s\n# more\n", HASH_2B);
	fclose(f);
	assert_int_equal(auth_passwd_check(p, "bob", "pw"), AUTH_PASSWD_OK);
	assert_int_equal(auth_passwd_check(p, "alice", "pw"), AUTH_PASSWD_FAIL);
	/* a bad new file keeps the last good one */
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "garbage\n");
	fclose(f);
	assert_int_equal(auth_passwd_check(p, "bob", "pw"), AUTH_PASSWD_OK);
	/* gone: an error, not a failure */
	unlink(path);
	assert_int_equal(auth_passwd_check(p, "bob", "pw"), AUTH_PASSWD_ERROR);
	auth_passwd_free(p);
	assert_null(auth_passwd_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_hash_check),
		cmocka_unit_test(test_file_reload),
	};

	return cmocka_run_group_tests_name("auth_passwd", tests, NULL, NULL);
}
