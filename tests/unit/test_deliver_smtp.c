/*
 * test_deliver_smtp.c - unit tests for proxy/deliver_smtp_proto.c: reply
 * classification, results, the MAIL/RCPT parameters a remote is sent for
 * what it offers, the capability checks (SIZE, 8BITMIME, SMTPUTF8) and
 * loop detection.  Replies are read by smtp_reply_read() from bytes fed
 * whole and 1..n bytes at a time, as the client gets them.
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
#include <event2/buffer.h>

#include "deliver_smtp_proto.h"
#include "smtp_reply.h"
#include "util.h"

static void	 read_reply(const char *, size_t, struct smtp_reply *);
static char	*buffer_string(struct evbuffer *);
static void	 caps_from(const char *, struct smtp_caps *);

static const char full_ehlo[] =
    "250-mx.example.net Hello\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 1000\r\n"
    "250-8BITMIME\r\n"
    "250-SMTPUTF8\r\n"
    "250-DSN\r\n"
    "250 ENHANCEDSTATUSCODES\r\n";

static const char bare_ehlo[] = "250 mx.example.net\r\n";

/* Read one reply from s fed chunk bytes at a time (0: whole). */
static void
read_reply(const char *s, size_t chunk, struct smtp_reply *r)
{
	struct evbuffer		*in = evbuffer_new();
	size_t			 len = strlen(s), off = 0, n;
	enum smtp_reply_status	 st = SMTP_REPLY_NEED_MORE;

	while (off < len && st == SMTP_REPLY_NEED_MORE) {
		n = chunk == 0 || len - off < chunk ? len - off : chunk;
		evbuffer_add(in, s + off, n);
		off += n;
		st = smtp_reply_read(in, r);
	}
	assert_int_equal(st, SMTP_REPLY_COMPLETE);
	assert_int_equal(off, len);
	evbuffer_free(in);
}

static char *
buffer_string(struct evbuffer *b)
{
	size_t	 n = evbuffer_get_length(b);
	char	*s = xcalloc(1, n + 1);

	evbuffer_remove(b, s, n);
	return s;
}

static void
caps_from(const char *ehlo, struct smtp_caps *caps)
{
	struct smtp_reply	 r;

	read_reply(ehlo, 0, &r);
	smtp_caps_parse(&r, caps);
}

static void
test_classify(void **state)
{
	assert_int_equal(deliver_smtp_classify(250), DELIVER_OK);
	assert_int_equal(deliver_smtp_classify(251), DELIVER_OK);
	assert_int_equal(deliver_smtp_classify(421), DELIVER_TEMP);
	assert_int_equal(deliver_smtp_classify(452), DELIVER_TEMP);
	assert_int_equal(deliver_smtp_classify(550), DELIVER_PERM);
	assert_int_equal(deliver_smtp_classify(554), DELIVER_PERM);
	/* Never bounce on something that is not a 5xx. */
	assert_int_equal(deliver_smtp_classify(0), DELIVER_TEMP);
	assert_int_equal(deliver_smtp_classify(354), DELIVER_TEMP);
	assert_int_equal(deliver_smtp_classify(199), DELIVER_TEMP);
	assert_int_equal(deliver_smtp_classify(600), DELIVER_TEMP);
}

static void
test_result_from_reply(void **state)
{
	static const char multi[] = "550-5.1.1 <b@example.net>: no such user\r\n"
	    "550 5.1.1 try another\r\n";
	struct deliver_smtp_result	 res;
	struct smtp_reply		 r;
	size_t				 chunk;

	for (chunk = 0; chunk <= sizeof(multi); chunk++) {
		read_reply(multi, chunk, &r);
		deliver_smtp_result_reply(&res, &r, "mx[127.0.0.1]:25");
		assert_int_equal(res.klass, DELIVER_PERM);
		assert_int_equal(res.code, 550);
		assert_string_equal(res.enhanced, "5.1.1");
		assert_string_equal(res.text, "<b@example.net>: no such user 5.1.1 try another");
		assert_string_equal(res.relay, "mx[127.0.0.1]:25");
	}
	/* No enhanced code: one from the reply class. */
	read_reply("451 try later\r\n", 0, &r);
	deliver_smtp_result_reply(&res, &r, NULL);
	assert_int_equal(res.klass, DELIVER_TEMP);
	assert_string_equal(res.enhanced, "4.0.0");
	assert_string_equal(res.text, "try later");
	assert_string_equal(res.relay, "");
	/* An enhanced code of the wrong class is not believed (RFC 3463). */
	read_reply("450 5.7.1 mixed up\r\n", 0, &r);
	deliver_smtp_result_reply(&res, &r, NULL);
	assert_int_equal(res.klass, DELIVER_TEMP);
	assert_string_equal(res.enhanced, "4.0.0");
}

static void
test_result_set_cleans_text(void **state)
{
	struct deliver_smtp_result	 res;
	char				 longtext[2000];

	deliver_smtp_result_set(&res, 0, DELIVER_PERM, "5.3.4", "a\tb\x7f" "c\x01", NULL);
	assert_int_equal(res.klass, DELIVER_PERM);
	assert_int_equal(res.code, 0);
	assert_string_equal(res.enhanced, "5.3.4");
	assert_string_equal(res.text, "a b c ");
	deliver_smtp_result_set(&res, 0, DELIVER_TEMP, NULL, "x", NULL);
	assert_string_equal(res.enhanced, "4.0.0");
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	deliver_smtp_result_set(&res, 250, DELIVER_TEMP, "2.0.0", longtext, NULL);
	assert_int_equal(res.klass, DELIVER_OK);
	assert_int_equal(strlen(res.text), sizeof(res.text) - 1);
	/* An overlong enhanced code is replaced, not truncated. */
	deliver_smtp_result_set(&res, 550, DELIVER_TEMP, "5.1.1234567890123456", "x", NULL);
	assert_string_equal(res.enhanced, "5.0.0");
}

static void
test_mail_line_params(void **state)
{
	struct deliver_smtp_envelope	 env;
	struct smtp_caps		 caps;
	struct evbuffer			*out = evbuffer_new();
	char				*s;

	memset(&env, 0, sizeof(env));
	env.sender = "a@example.org";
	env.body_8bit = 1;
	env.smtputf8 = 1;
	env.ret = "HDRS";
	env.envid = "QQ+2B1";
	caps_from(full_ehlo, &caps);
	deliver_smtp_mail_line(out, &env, &caps, 500);
	s = buffer_string(out);
	assert_string_equal(s, "MAIL FROM:<a@example.org> SIZE=500 BODY=8BITMIME SMTPUTF8 "
	    "RET=HDRS ENVID=QQ+2B1\r\n");
	free(s);
	/* A server offering nothing gets no parameters at all. */
	caps_from(bare_ehlo, &caps);
	deliver_smtp_mail_line(out, &env, &caps, 500);
	s = buffer_string(out);
	assert_string_equal(s, "MAIL FROM:<a@example.org>\r\n");
	free(s);
	/* The null sender, 7 bit. */
	memset(&env, 0, sizeof(env));
	env.sender = "";
	caps_from(full_ehlo, &caps);
	deliver_smtp_mail_line(out, &env, &caps, 7);
	s = buffer_string(out);
	assert_string_equal(s, "MAIL FROM:<> SIZE=7\r\n");
	free(s);
	evbuffer_free(out);
}

static void
test_rcpt_line_dsn_only_when_offered(void **state)
{
	struct deliver_smtp_rcpt	 rc;
	struct smtp_caps		 caps;
	struct evbuffer			*out = evbuffer_new();
	char				*s;

	memset(&rc, 0, sizeof(rc));
	rc.addr = "b@example.net";
	rc.notify = "SUCCESS,FAILURE";
	rc.orcpt = "rfc822;b@example.net";
	caps_from(full_ehlo, &caps);
	deliver_smtp_rcpt_line(out, &rc, &caps);
	s = buffer_string(out);
	assert_string_equal(s, "RCPT TO:<b@example.net> NOTIFY=SUCCESS,FAILURE "
	    "ORCPT=rfc822;b@example.net\r\n");
	free(s);
	caps_from(bare_ehlo, &caps);
	deliver_smtp_rcpt_line(out, &rc, &caps);
	s = buffer_string(out);
	assert_string_equal(s, "RCPT TO:<b@example.net>\r\n");
	free(s);
	evbuffer_free(out);
}

static void
test_check_caps(void **state)
{
	struct deliver_smtp_envelope	 env;
	struct deliver_smtp_result	 res;
	struct smtp_caps		 caps;

	memset(&env, 0, sizeof(env));
	env.sender = "a@example.org";
	caps_from(full_ehlo, &caps);
	assert_int_equal(deliver_smtp_check_caps(&env, &caps, 1, 1000, &res), 0);
	assert_int_equal(deliver_smtp_check_caps(&env, &caps, 1, 1001, &res), 1);
	assert_int_equal(res.klass, DELIVER_PERM);
	assert_string_equal(res.enhanced, "5.3.4");
	/* SIZE without a number (or 0) is no limit. */
	caps_from("250-x\r\n250 SIZE\r\n", &caps);
	assert_int_equal(deliver_smtp_check_caps(&env, &caps, 1, 1u << 30, &res), 0);
	/* 8-bit: refused without 8BITMIME, and after HELO. */
	env.body_8bit = 1;
	caps_from(bare_ehlo, &caps);
	assert_int_equal(deliver_smtp_check_caps(&env, &caps, 1, 10, &res), 1);
	assert_string_equal(res.enhanced, "5.6.3");
	caps_from(full_ehlo, &caps);
	assert_int_equal(deliver_smtp_check_caps(&env, &caps, 1, 10, &res), 0);
	assert_int_equal(deliver_smtp_check_caps(&env, &caps, 0, 10, &res), 1);
	env.body_8bit = 0;
	env.smtputf8 = 1;
	caps_from("250-x\r\n250 8BITMIME\r\n", &caps);
	assert_int_equal(deliver_smtp_check_caps(&env, &caps, 1, 10, &res), 1);
	assert_string_equal(res.enhanced, "5.6.7");
	assert_int_equal(res.klass, DELIVER_PERM);
	caps_from(full_ehlo, &caps);
	assert_int_equal(deliver_smtp_check_caps(&env, &caps, 1, 10, &res), 0);
}

static void
test_address_ok(void **state)
{
	assert_true(deliver_smtp_address_ok("a@example.org"));
	assert_true(deliver_smtp_address_ok(""));
	assert_true(deliver_smtp_address_ok("\"a b\"@example.org"));
	assert_true(deliver_smtp_address_ok("j\xc3\xb6rg@example.org"));
	assert_false(deliver_smtp_address_ok("a@example.org\r\nRCPT TO:<x@y>"));
	assert_false(deliver_smtp_address_ok("a b@example.org"));
	assert_false(deliver_smtp_address_ok("a>@example.org"));
	assert_false(deliver_smtp_address_ok("a\x7f@example.org"));
}

static void
test_loop_detection(void **state)
{
	struct smtp_reply	 r;
	size_t			 chunk;

	for (chunk = 0; chunk < 8; chunk++) {
		read_reply("220 sluice.test ESMTP ready\r\n", chunk, &r);
		assert_true(deliver_smtp_is_loop(&r, "sluice.test"));
		assert_true(deliver_smtp_is_loop(&r, "SLUICE.test"));
		assert_false(deliver_smtp_is_loop(&r, "sluice"));
		assert_false(deliver_smtp_is_loop(&r, "sluice.test.example"));
		assert_false(deliver_smtp_is_loop(&r, ""));
	}
	read_reply("250-sluice.test\r\n250 PIPELINING\r\n", 0, &r);
	assert_true(deliver_smtp_is_loop(&r, "sluice.test"));
	read_reply("220 mx.example.net sluice.test\r\n", 0, &r);
	assert_false(deliver_smtp_is_loop(&r, "sluice.test"));
	read_reply("220\r\n", 0, &r);
	assert_false(deliver_smtp_is_loop(&r, "sluice.test"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_result_from_reply),
		cmocka_unit_test(test_result_set_cleans_text),
		cmocka_unit_test(test_mail_line_params),
		cmocka_unit_test(test_rcpt_line_dsn_only_when_offered),
		cmocka_unit_test(test_check_caps),
		cmocka_unit_test(test_address_ok),
		cmocka_unit_test(test_loop_detection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
