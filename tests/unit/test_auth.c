/*
 * test_auth.c - unit tests for proxy/auth.c: base64 edge cases, the PLAIN
 * message split with NUL bytes in every position, the LOGIN steps,
 * cancelling, initial responses, overlong and hostile input.
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

#include "auth.h"

static enum auth_status	 start(struct auth_exchange *, const char *);
static enum auth_status	 line(struct auth_exchange *, const char *);
static char		*b64(const void *, size_t);

static enum auth_status
start(struct auth_exchange *x, const char *arg)
{
	return auth_exchange_start(x, arg, strlen(arg));
}

static enum auth_status
line(struct auth_exchange *x, const char *l)
{
	return auth_exchange_line(x, l, strlen(l));
}

/* Base64 of len bytes, in a static buffer. */
static char *
b64(const void *p, size_t len)
{
	static char	 out[AUTH_LINE_MAX * 2];

	assert_true(auth_base64_encode(p, len, out, sizeof(out)) >= 0);
	return out;
}

static void
test_base64_vectors(void **state)
{
	/* RFC 4648 section 10. */
	static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
	    "Zm9vYmFy" };
	unsigned char	 out[16];
	char		 e[16];
	size_t		 i;

	for (i = 0; i < 7; i++) {
		assert_int_equal(auth_base64_encode((const unsigned char *)plain[i],
		    strlen(plain[i]), e, sizeof(e)), strlen(enc[i]));
		assert_string_equal(e, enc[i]);
		assert_int_equal(auth_base64_decode(enc[i], strlen(enc[i]), out, sizeof(out)),
		    strlen(plain[i]));
		assert_memory_equal(out, plain[i], strlen(plain[i]));
	}
	/* Too small an output buffer: refused, not overrun. */
	assert_int_equal(auth_base64_decode("Zm9vYmFy", 8, out, 5), -1);
	assert_int_equal(auth_base64_encode((const unsigned char *)"foo", 3, e, 4), -1);
}

static void
test_base64_bad(void **state)
{
	static const char *const bad[] = { "Z", "Zg", "Zg=", "Zg=a", "=Zg=", "Zm9v\r\n",
	    "Zm 9", "Zm9v====", "Zh==", "Zm9=", "Zm-v", "Zm_v", "====", "Z===", "Zg==Zg==",
	    "Zm9\x80" };
	unsigned char	 out[64];
	size_t		 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(auth_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -1);
	/* A NUL inside the text. */
	assert_int_equal(auth_base64_decode("Zm\0v", 4, out, sizeof(out)), -1);
}

/* Every prefix of a valid text either decodes to a prefix or is refused cleanly. */
static void
test_base64_prefixes(void **state)
{
	const char	*enc = "AHVzZXIAc2VjcmV0IHBhc3N3b3Jk";
	unsigned char	 out[64];
	size_t		 n;
	ssize_t		 r;

	for (n = 0; n <= strlen(enc); n++) {
		r = auth_base64_decode(enc, n, out, sizeof(out));
		if (n % 4 != 0)
			assert_int_equal(r, -1);
		else
			assert_int_equal(r, (ssize_t)(n / 4 * 3));
	}
}

static void
test_plain_ok(void **state)
{
	struct auth_exchange	 x;

	assert_int_equal(start(&x, "PLAIN AHVzZXIAc2VjcmV0"), AUTH_READY);	/* \0user\0secret */
	assert_string_equal(x.user, "user");
	assert_string_equal(x.pass, "secret");
	assert_int_equal(x.mech, AUTH_MECH_PLAIN);
	/* authzid equal to authcid */
	assert_int_equal(start(&x, "plain dXNlcgB1c2VyAHNlY3JldA=="), AUTH_READY);
	assert_string_equal(x.user, "user");
	/* without initial response: 334 with an empty challenge, then the response */
	assert_int_equal(start(&x, "PLAIN"), AUTH_CONTINUE);
	assert_string_equal(x.challenge, "");
	assert_int_equal(line(&x, "AHVzZXIAc2VjcmV0"), AUTH_READY);
	assert_string_equal(x.pass, "secret");
	auth_exchange_clear(&x);
	assert_string_equal(x.pass, "");
	assert_string_equal(x.user, "");
}

/* "\0user\0secret" with one byte replaced by NUL at every position. */
static void
test_plain_nul_everywhere(void **state)
{
	const unsigned char	 base[] = "\0user\0secret";
	size_t			 len = sizeof(base) - 1, i;
	unsigned char		 msg[32];
	struct auth_exchange	 x;
	enum auth_status	 st;

	for (i = 0; i < len; i++) {
		memcpy(msg, base, len);
		msg[i] = '\0';
		auth_exchange_clear(&x);
		st = auth_plain_split(&x, msg, len);
		if (i == 0 || i == 5)
			assert_int_equal(st, AUTH_READY);	/* the NULs already there */
		else
			assert_int_equal(st, AUTH_ERR_MALFORMED);
		/* The same through the exchange with the bytes as base64. */
		auth_exchange_clear(&x);
		assert_int_equal(start(&x, "PLAIN"), AUTH_CONTINUE);
		assert_int_equal(line(&x, b64(msg, len)), st);
	}
}

static void
test_plain_malformed(void **state)
{
	struct auth_exchange	 x;
	char			 big[AUTH_PASS_MAX + 16];

	/* no NUL, one NUL, empty user, empty password, another authzid */
	assert_int_equal(start(&x, "PLAIN dXNlcg=="), AUTH_ERR_MALFORMED);
	assert_int_equal(start(&x, "PLAIN dXNlcgBzZWNyZXQ="), AUTH_ERR_MALFORMED);
	assert_int_equal(start(&x, "PLAIN AABzZWNyZXQ="), AUTH_ERR_MALFORMED);
	assert_int_equal(start(&x, "PLAIN AHVzZXIA"), AUTH_ERR_MALFORMED);
	assert_int_equal(start(&x, "PLAIN YWRtaW4AdXNlcgBzZWNyZXQ="), AUTH_ERR_MALFORMED);
	/* authzid a prefix of the user */
	assert_int_equal(start(&x, "PLAIN dXNlAHVzZXIAc2VjcmV0"), AUTH_ERR_MALFORMED);
	/* "=" is an empty initial response: nothing to split */
	assert_int_equal(start(&x, "PLAIN ="), AUTH_ERR_MALFORMED);
	/* a user with a space or a control byte */
	assert_int_equal(auth_plain_split(&x, (const unsigned char *)"\0a b\0pw", 7),
	    AUTH_ERR_MALFORMED);
	assert_int_equal(auth_plain_split(&x, (const unsigned char *)"\0a\tb\0pw", 7),
	    AUTH_ERR_MALFORMED);
	/* a password over the bound */
	memset(big, 'p', sizeof(big));
	big[0] = '\0';
	big[1] = 'u';
	big[2] = '\0';
	assert_int_equal(auth_plain_split(&x, (unsigned char *)big, sizeof(big)),
	    AUTH_ERR_MALFORMED);
	assert_int_equal(auth_plain_split(&x, (unsigned char *)big, AUTH_PASS_MAX + 3),
	    AUTH_READY);
	assert_int_equal(x.pass_len, AUTH_PASS_MAX);
}

static void
test_login_steps(void **state)
{
	struct auth_exchange	 x;

	assert_int_equal(start(&x, "LOGIN"), AUTH_CONTINUE);
	assert_string_equal(x.challenge, "VXNlcm5hbWU6");
	assert_int_equal(line(&x, "dXNlcg=="), AUTH_CONTINUE);
	assert_string_equal(x.challenge, "UGFzc3dvcmQ6");
	assert_int_equal(line(&x, "c2VjcmV0"), AUTH_READY);
	assert_string_equal(x.user, "user");
	assert_string_equal(x.pass, "secret");
	assert_int_equal(x.mech, AUTH_MECH_LOGIN);
	/* a line after the end is not part of the exchange */
	assert_int_equal(line(&x, "c2VjcmV0"), AUTH_ERR_SYNTAX);
	/* the user name as initial response */
	assert_int_equal(start(&x, "login dXNlcg=="), AUTH_CONTINUE);
	assert_string_equal(x.challenge, "UGFzc3dvcmQ6");
	assert_int_equal(line(&x, "c2VjcmV0"), AUTH_READY);
	/* empty user, empty password, NUL in the password */
	assert_int_equal(start(&x, "LOGIN ="), AUTH_ERR_MALFORMED);
	assert_int_equal(start(&x, "LOGIN dXNlcg=="), AUTH_CONTINUE);
	assert_int_equal(line(&x, "="), AUTH_ERR_MALFORMED);
	assert_int_equal(start(&x, "LOGIN dXNlcg=="), AUTH_CONTINUE);
	assert_int_equal(line(&x, "cABx"), AUTH_ERR_MALFORMED);
}

static void
test_cancel_and_errors(void **state)
{
	struct auth_exchange	 x;

	assert_int_equal(start(&x, "PLAIN"), AUTH_CONTINUE);
	assert_int_equal(line(&x, "*"), AUTH_ERR_CANCEL);
	assert_int_equal(x.step, AUTH_STEP_DONE);
	assert_int_equal(start(&x, "LOGIN"), AUTH_CONTINUE);
	assert_int_equal(line(&x, "dXNlcg=="), AUTH_CONTINUE);
	assert_int_equal(line(&x, "*"), AUTH_ERR_CANCEL);
	assert_int_equal(start(&x, "PLAIN *"), AUTH_ERR_CANCEL);
	assert_int_equal(start(&x, "PLAIN"), AUTH_CONTINUE);
	assert_int_equal(line(&x, "not base64!"), AUTH_ERR_BASE64);
	assert_int_equal(start(&x, "PLAIN AHVzZXIAc2VjcmV0="), AUTH_ERR_BASE64);
	assert_int_equal(start(&x, "PLAIN  AHVzZXIAc2VjcmV0"), AUTH_ERR_BASE64);
	assert_int_equal(start(&x, "PLAIN "), AUTH_ERR_BASE64);
	assert_int_equal(start(&x, ""), AUTH_ERR_SYNTAX);
	assert_int_equal(start(&x, "CRAM-MD5"), AUTH_ERR_MECH);
	assert_int_equal(start(&x, "PLAINX"), AUTH_ERR_MECH);
	assert_int_equal(start(&x, "PLAI"), AUTH_ERR_MECH);
	assert_int_equal(start(&x, " PLAIN"), AUTH_ERR_MECH);
	/* a line before any start */
	auth_exchange_clear(&x);
	assert_int_equal(line(&x, "AHVzZXIAc2VjcmV0"), AUTH_ERR_SYNTAX);
}

static void
test_overlong(void **state)
{
	struct auth_exchange	 x;
	char			*big = malloc(AUTH_LINE_MAX + 8);

	assert_non_null(big);
	memset(big, 'A', AUTH_LINE_MAX + 4);
	big[AUTH_LINE_MAX + 4] = '\0';
	assert_int_equal(start(&x, "PLAIN"), AUTH_CONTINUE);
	assert_int_equal(line(&x, big), AUTH_ERR_BASE64);
	/* the largest line that fits decodes, then is too long a message */
	big[AUTH_LINE_MAX] = '\0';
	assert_int_equal(start(&x, "PLAIN"), AUTH_CONTINUE);
	assert_int_equal(line(&x, big), AUTH_ERR_MALFORMED);
	free(big);
}

static void
test_user_checks(void **state)
{
	assert_true(auth_user_loggable("alice@example.org"));
	assert_true(auth_user_loggable("a.b-c_d+e"));
	assert_false(auth_user_loggable(""));
	assert_false(auth_user_loggable("a b"));
	assert_false(auth_user_loggable("a=b"));
	assert_false(auth_user_loggable("\"x\""));
	assert_false(auth_user_loggable("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_true(auth_user_valid("J\xc3\xbcrgen", 7));
	assert_false(auth_user_valid("a\x7f", 2));
	assert_false(auth_user_valid("", 0));
	assert_true(auth_equal_constant_time("abc", "abc"));
	assert_false(auth_equal_constant_time("abc", "abd"));
	assert_false(auth_equal_constant_time("abc", "abcd"));
	assert_false(auth_equal_constant_time("", "a"));
	assert_int_equal(auth_mech_parse("login", 5), AUTH_MECH_LOGIN);
	assert_string_equal(auth_mech_name(AUTH_MECH_PLAIN), "PLAIN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_vectors),
		cmocka_unit_test(test_base64_bad),
		cmocka_unit_test(test_base64_prefixes),
		cmocka_unit_test(test_plain_ok),
		cmocka_unit_test(test_plain_nul_everywhere),
		cmocka_unit_test(test_plain_malformed),
		cmocka_unit_test(test_login_steps),
		cmocka_unit_test(test_cancel_and_errors),
		cmocka_unit_test(test_overlong),
		cmocka_unit_test(test_user_checks),
	};

	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
