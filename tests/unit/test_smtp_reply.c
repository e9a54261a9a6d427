/*
 * test_smtp_reply.c - unit tests for proxy/smtp_reply.c: replies we
 * build, replies we read (fed whole and 1..n bytes at a time through an
 * evbuffer), relaying, EHLO/LHLO capabilities and xtext encoding.
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

#include "smtp_reply.h"
#include "util.h"

/* What reply_feed saw. */
struct feed_result {
	enum smtp_reply_status	 st;		/* final status */
	size_t			 fed;		/* bytes added when it came */
	size_t			 left;		/* bytes left in the buffer after it */
};

static char	*buffer_string(struct evbuffer *);
static void	 assert_added(int, const char *, int, const char *, const char *);
static struct feed_result reply_feed(const char *, size_t, size_t, struct smtp_reply *);
static void	 assert_reads(const char *, struct smtp_reply *);
static void	 assert_garbage(const char *, size_t);
static void	 assert_relayed(const char *, const char *, const char *);

/* Postfix 3.7 smtpd with XCLIENT and XFORWARD authorised for the client. */
static const char postfix_ehlo[] =
    "250-mail.example.com\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10240000\r\n"
    "250-VRFY\r\n"
    "250-ETRN\r\n"
    "250-STARTTLS\r\n"
    "250-AUTH PLAIN LOGIN\r\n"
    "250-AUTH=PLAIN LOGIN\r\n"
    "250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN\r\n"
    "250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-8BITMIME\r\n"
    "250-DSN\r\n"
    "250-SMTPUTF8\r\n"
    "250 CHUNKING\r\n";

/* Dovecot 2.3 lmtp, captured from "LHLO client.example" on stdin. */
static const char dovecot_lhlo[] =
    "250-vm\r\n"
    "250-8BITMIME\r\n"
    "250-CHUNKING\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250 PIPELINING\r\n";

/* The same with a trusted client: Dovecot then offers its XCLIENT set. */
static const char dovecot_lhlo_trusted[] =
    "250-mx.example.org\r\n"
    "250-8BITMIME\r\n"
    "250-CHUNKING\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-PIPELINING\r\n"
    "250-XCLIENT ADDR DESTADDR DESTPORT FORWARD HELO LOGIN PORT PROTO SESSION TIMEOUT TTL\r\n"
    "250 SMTPUTF8\r\n";

/* The buffer's contents as a string; caller frees. */
static char *
buffer_string(struct evbuffer *b)
{
	size_t	 n = evbuffer_get_length(b);
	char	*s = malloc(n + 1);

	assert_non_null(s);
	evbuffer_copyout(b, s, n);
	s[n] = '\0';
	return s;
}

static void
assert_added(int code, const char *enhanced, int rv, const char *text, const char *want)
{
	struct evbuffer	*b = evbuffer_new();
	char		*got;

	assert_int_equal(smtp_reply_add(b, code, enhanced, text), rv);
	got = buffer_string(b);
	if (strcmp(got, want) != 0)
		fail_msg("add(%d, %s, \"%s\") gave \"%s\", want \"%s\"", code,
		    enhanced != NULL ? enhanced : "NULL", text != NULL ? text : "NULL", got, want);
	free(got);
	evbuffer_free(b);
}

/*
 * Feed s into a fresh buffer chunk bytes at a time, reading after each
 * chunk.  Until the reply is complete nothing may be drained.
 */
static struct feed_result
reply_feed(const char *s, size_t len, size_t chunk, struct smtp_reply *r)
{
	struct evbuffer		*b = evbuffer_new();
	struct feed_result	 res = { SMTP_REPLY_NEED_MORE, 0, 0 };
	size_t			 n;

	while (res.fed < len) {
		n = len - res.fed < chunk ? len - res.fed : chunk;
		evbuffer_add(b, s + res.fed, n);
		res.fed += n;
		res.st = smtp_reply_read(b, r);
		if (res.st != SMTP_REPLY_NEED_MORE)
			break;
		assert_int_equal(evbuffer_get_length(b), res.fed);
	}
	res.left = evbuffer_get_length(b);
	evbuffer_free(b);
	return res;
}

/* s holds exactly one reply: complete only at its last byte, whatever the chunking. */
static void
assert_reads(const char *s, struct smtp_reply *r)
{
	size_t			 len = strlen(s), chunk;
	struct feed_result	 res;

	for (chunk = 1; chunk <= len; chunk++) {
		res = reply_feed(s, len, chunk, r);
		if (res.st != SMTP_REPLY_COMPLETE || res.fed != len || res.left != 0)
			fail_msg("\"%s\" in chunks of %zu: status %d after %zu bytes, %zu left",
			    s, chunk, res.st, res.fed, res.left);
	}
}

/* s (len bytes) is refused, whatever the chunking, and never completes. */
static void
assert_garbage(const char *s, size_t len)
{
	struct smtp_reply	 r;
	struct feed_result	 res;
	size_t			 chunk;

	for (chunk = 1; chunk <= len; chunk++) {
		res = reply_feed(s, len, chunk, &r);
		if (res.st != SMTP_REPLY_MALFORMED)
			fail_msg("\"%.40s\" in chunks of %zu: status %d", s, chunk, res.st);
	}
}

static void
assert_relayed(const char *in, const char *default_enhanced, const char *want)
{
	struct smtp_reply	 r;
	struct evbuffer		*b = evbuffer_new();
	char			*got;

	evbuffer_add(b, in, strlen(in));
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_COMPLETE);
	evbuffer_drain(b, evbuffer_get_length(b));
	smtp_reply_relay(b, &r, default_enhanced);
	got = buffer_string(b);
	if (strcmp(got, want) != 0)
		fail_msg("relay of \"%s\" gave \"%s\", want \"%s\"", in, got, want);
	free(got);
	evbuffer_free(b);
}

static void
test_add(void **state)
{
	assert_added(250, "2.0.0", 0, "Ok", "250 2.0.0 Ok\r\n");
	assert_added(220, NULL, 0, "mx.example ESMTP", "220 mx.example ESMTP\r\n");
	assert_added(550, "", 0, "No", "550 No\r\n");
	assert_added(250, NULL, 0, "", "250\r\n");
	assert_added(250, NULL, 0, NULL, "250\r\n");
	assert_added(250, "2.0.0", 0, "", "250 2.0.0\r\n");
	assert_added(200, NULL, 0, "x", "200 x\r\n");
	assert_added(599, NULL, 0, "x", "599 x\r\n");
	/* Multi-line, each line with the enhanced code. */
	assert_added(250, NULL, 0, "mx.example\nPIPELINING\nSIZE 100",
	    "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
	assert_added(550, "5.7.1", 0, "first\nsecond",
	    "550-5.7.1 first\r\n550 5.7.1 second\r\n");
	assert_added(250, NULL, 0, "a\n\nb", "250-a\r\n250-\r\n250 b\r\n");
	assert_added(250, NULL, 0, "a\n", "250 a\r\n");
	assert_added(250, NULL, 0, "\n", "250\r\n");
	/* Control bytes cannot split a reply or inject one. */
	assert_added(550, "5.7.1", 0, "a\rb\x01" "c\td\x7f" "e",
	    "550 5.7.1 a b c d e\r\n");
	assert_added(550, NULL, 0, "bad\r\n250 2.0.0 Ok", "550-bad \r\n550 250 2.0.0 Ok\r\n");
	assert_added(550, "5.7\r.1", 0, "x", "550 5.7 .1 x\r\n");
	/* Non-ASCII text is passed on (SMTPUTF8 replies). */
	assert_added(550, "5.1.1", 0, "j\xc3\xb6rg unknown", "550 5.1.1 j\xc3\xb6rg unknown\r\n");
	/* Codes outside 200..599 append nothing. */
	assert_added(199, "2.0.0", -1, "x", "");
	assert_added(600, NULL, -1, "x", "");
	assert_added(0, NULL, -1, "x", "");
	assert_added(-250, NULL, -1, "x", "");
}

static void
test_addf(void **state)
{
	struct evbuffer	*b = evbuffer_new();
	char		*got, big[2000];

	assert_int_equal(smtp_reply_addf(b, 501, "5.5.4", "Error: %s %d", "bad", 7), 0);
	got = buffer_string(b);
	assert_string_equal(got, "501 5.5.4 Error: bad 7\r\n");
	free(got);
	evbuffer_drain(b, evbuffer_get_length(b));

	/* Longer than the stack buffer. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(smtp_reply_addf(b, 250, NULL, "<%s>\n%s", big, "end"), 0);
	got = buffer_string(b);
	assert_int_equal(strlen(got), 4 + sizeof(big) + 1 + 2 + 9);
	assert_memory_equal(got, "250-<xxx", 8);
	assert_string_equal(got + 4 + sizeof(big) + 1 - 1, ">\r\n250 end\r\n");
	free(got);
	evbuffer_drain(b, evbuffer_get_length(b));

	assert_int_equal(smtp_reply_addf(b, 700, NULL, "%s", "x"), -1);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

static void
test_read_simple(void **state)
{
	struct smtp_reply	 r;

	assert_reads("250 2.1.0 Ok\r\n", &r);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.enhanced, "2.1.0");
	assert_int_equal(r.nlines, 1);
	assert_string_equal(smtp_reply_line(&r, 0), "2.1.0 Ok");
	assert_string_equal(smtp_reply_text(&r), "Ok");
	assert_false(r.truncated);

	assert_reads("220 mx.example ESMTP Postfix\r\n", &r);
	assert_int_equal(r.code, 220);
	assert_string_equal(r.enhanced, "");
	assert_string_equal(smtp_reply_text(&r), "mx.example ESMTP Postfix");

	/* Text is optional. */
	assert_reads("250\r\n", &r);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.nlines, 1);
	assert_string_equal(smtp_reply_line(&r, 0), "");
	assert_string_equal(smtp_reply_text(&r), "");
	assert_reads("354 \r\n", &r);
	assert_int_equal(r.code, 354);
	assert_string_equal(smtp_reply_text(&r), "");

	/* LF alone ends a line too. */
	assert_reads("421 4.3.2 Shutting down\n", &r);
	assert_int_equal(r.code, 421);
	assert_string_equal(r.enhanced, "4.3.2");
	assert_string_equal(smtp_reply_text(&r), "Shutting down");
	assert_reads("554\n", &r);
	assert_int_equal(r.code, 554);

	/* A bare CR inside a line is text, not an end of line. */
	assert_reads("550 a\rb\r\n", &r);
	assert_string_equal(smtp_reply_line(&r, 0), "a\rb");
	assert_reads("550 a\r\r\n", &r);
	assert_string_equal(smtp_reply_line(&r, 0), "a\r");
	assert_string_equal(smtp_reply_line(&r, 1), "");
	assert_string_equal(smtp_reply_line(&r, 99), "");
}

static void
test_read_multiline(void **state)
{
	struct smtp_reply	 r;

	assert_reads("250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", &r);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.nlines, 3);
	assert_string_equal(smtp_reply_line(&r, 0), "mx.example");
	assert_string_equal(smtp_reply_line(&r, 1), "PIPELINING");
	assert_string_equal(smtp_reply_line(&r, 2), "SIZE 1000");
	assert_string_equal(smtp_reply_line(&r, 3), "");

	assert_reads("550-5.7.1 first\n550-5.7.1 second\n550 5.7.1 third\n", &r);
	assert_string_equal(r.enhanced, "5.7.1");
	assert_int_equal(r.nlines, 3);
	assert_string_equal(smtp_reply_text(&r), "first");
	assert_string_equal(smtp_reply_line(&r, 2), "5.7.1 third");

	/* Mixed line ends and empty continuation lines. */
	assert_reads("250-\r\n250-a\n250\r\n", &r);
	assert_int_equal(r.nlines, 3);
	assert_string_equal(smtp_reply_line(&r, 0), "");
	assert_string_equal(smtp_reply_line(&r, 1), "a");
	assert_string_equal(smtp_reply_line(&r, 2), "");

	assert_reads(postfix_ehlo, &r);
	assert_int_equal(r.nlines, 15);
	assert_reads(dovecot_lhlo, &r);
	assert_int_equal(r.nlines, 5);
	assert_string_equal(smtp_reply_line(&r, 0), "vm");
}

/* Pipelined replies come out one at a time, the rest left in place. */
static void
test_read_pipelined(void **state)
{
	static const char	 in[] = "250 2.1.0 Ok\r\n250-2.1.5 a\r\n250 2.1.5 b\r\n354 go";
	struct smtp_reply	 r;
	struct evbuffer		*b = evbuffer_new();

	evbuffer_add(b, in, strlen(in));
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_COMPLETE);
	assert_string_equal(r.enhanced, "2.1.0");
	assert_int_equal(evbuffer_get_length(b), strlen(in) - 14);
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_COMPLETE);
	assert_string_equal(r.enhanced, "2.1.5");
	assert_int_equal(r.nlines, 2);
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_NEED_MORE);
	assert_int_equal(evbuffer_get_length(b), 6);
	evbuffer_add(b, "\r\n", 2);
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_COMPLETE);
	assert_int_equal(r.code, 354);
	assert_string_equal(smtp_reply_text(&r), "go");
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_NEED_MORE);
	evbuffer_free(b);
}

/* Prefixes that may still become a good reply wait, draining nothing. */
static void
test_read_partial(void **state)
{
	static const char *const partial[] = {
		"2", "25", "250", "250 ", "250 ok", "250 ok\r", "250-", "250-a\r\n",
		"250-a\r\n2", "250-a\r\n25", "250-a\r\n250", "250-a\r\n250 b\r",
		"250\r",
	};
	struct smtp_reply	 r;
	struct feed_result	 res;
	size_t			 i, len;

	for (i = 0; i < nitems(partial); i++) {
		len = strlen(partial[i]);
		res = reply_feed(partial[i], len, 1, &r);
		if (res.st != SMTP_REPLY_NEED_MORE || res.left != len)
			fail_msg("\"%s\": status %d, %zu left", partial[i], res.st, res.left);
	}
}

/* A reply split over many evbuffer chains (many small adds). */
static void
test_read_chains(void **state)
{
	struct smtp_reply	 r;
	struct evbuffer		*b = evbuffer_new();
	char			 line[64];
	int			 i;

	for (i = 0; i < 40; i++) {
		struct evbuffer	*part = evbuffer_new();

		snprintf(line, sizeof(line), "250%cline %d\r\n", i == 39 ? ' ' : '-', i);
		evbuffer_add(part, line, strlen(line));
		evbuffer_add_buffer(b, part);
		evbuffer_free(part);
		assert_int_equal(smtp_reply_read(b, &r),
		    i == 39 ? SMTP_REPLY_COMPLETE : SMTP_REPLY_NEED_MORE);
	}
	assert_int_equal(r.nlines, 40);
	assert_string_equal(smtp_reply_line(&r, 17), "line 17");
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
}

static void
test_read_enhanced(void **state)
{
	static const struct {
		const char	*in;		/* reply */
		const char	*enhanced;	/* expected enhanced code */
		const char	*text;		/* expected smtp_reply_text */
	} cases[] = {
		{ "250 2.0.0 Ok\r\n", "2.0.0", "Ok" },
		{ "250 2.0.0\r\n", "2.0.0", "" },
		{ "250 2.0.0   Ok\r\n", "2.0.0", "Ok" },
		{ "451 4.3.0 Try later\r\n", "4.3.0", "Try later" },
		{ "550 5.123.999 x\r\n", "5.123.999", "x" },
		{ "550 5.7.1Rejected\r\n", "", "5.7.1Rejected" },
		{ "250 5.0.0 class differs\r\n", "", "5.0.0 class differs" },
		{ "354 3.0.0 no class 3\r\n", "", "3.0.0 no class 3" },
		{ "250 2.1234.0 x\r\n", "", "2.1234.0 x" },
		{ "250 2.0.1234 x\r\n", "", "2.0.1234 x" },
		{ "250 2..0 x\r\n", "", "2..0 x" },
		{ "250 2.0 x\r\n", "", "2.0 x" },
		{ "250 2.0.0.0 x\r\n", "", "2.0.0.0 x" },
		{ "250 2.0.x y\r\n", "", "2.0.x y" },
		{ "250 .2.0.0\r\n", "", ".2.0.0" },
		{ "250 x 2.0.0\r\n", "", "x 2.0.0" },
		{ "250-a\r\n250 2.0.0 b\r\n", "", "a" },
	};
	struct smtp_reply	 r;
	size_t			 i;

	for (i = 0; i < nitems(cases); i++) {
		assert_reads(cases[i].in, &r);
		assert_string_equal(r.enhanced, cases[i].enhanced);
		assert_string_equal(smtp_reply_text(&r), cases[i].text);
	}
}

static void
test_read_garbage(void **state)
{
	char	*big;
	size_t	 n;

	assert_garbage("hello\r\n", 7);
	assert_garbage("hello", 5);
	assert_garbage("2x0 ok\r\n", 8);
	assert_garbage("250-a\r\n251 b\r\n", 14);
	assert_garbage("250-a\r\n350 b\r\n", 14);
	assert_garbage("250-a\r\n26", 9);
	assert_garbage("250-a\r\nx", 8);
	assert_garbage("150 x\r\n", 7);
	assert_garbage("650 x\r\n", 7);
	assert_garbage("099 x\r\n", 7);
	assert_garbage("25\r\n", 4);
	assert_garbage("2\n", 2);
	assert_garbage("\r\n", 2);
	assert_garbage("\n", 1);
	assert_garbage(" 250 x\r\n", 8);
	assert_garbage("250x\r\n", 6);
	assert_garbage("250\tx\r\n", 7);
	assert_garbage("250\rx\r\n", 7);
	assert_garbage("250-a\r\n\r\n", 9);
	assert_garbage("\0" "50 x\r\n", 7);
	assert_garbage("\xff", 1);

	/* A line past SMTP_REPLY_LINE_MAX, with or without its end. */
	big = malloc(SMTP_REPLY_LINE_MAX + 100);
	assert_non_null(big);
	memset(big, 'x', SMTP_REPLY_LINE_MAX + 100);
	memcpy(big, "250 ", 4);
	assert_garbage(big, SMTP_REPLY_LINE_MAX + 100);
	memcpy(big + SMTP_REPLY_LINE_MAX + 1, "\r\n", 2);
	assert_garbage(big, SMTP_REPLY_LINE_MAX + 3);
	memcpy(big + SMTP_REPLY_LINE_MAX + 1, "\n", 1);
	assert_garbage(big, SMTP_REPLY_LINE_MAX + 2);
	/* Exactly SMTP_REPLY_LINE_MAX is fine, even when its CRLF comes apart. */
	memcpy(big + SMTP_REPLY_LINE_MAX, "\r\n", 3);
	n = strlen(big);
	assert_int_equal(n, SMTP_REPLY_LINE_MAX + 2);
	{
		struct smtp_reply	 r;
		struct feed_result	 res;

		res = reply_feed(big, SMTP_REPLY_LINE_MAX + 1, SMTP_REPLY_LINE_MAX + 1, &r);
		assert_int_equal(res.st, SMTP_REPLY_NEED_MORE);
		assert_reads(big, &r);
		assert_int_equal(strlen(smtp_reply_line(&r, 0)), SMTP_REPLY_LINE_MAX - 4);
	}
	free(big);
}

/* A peer that never ends its reply cannot make us buffer without bound. */
static void
test_read_wire_max(void **state)
{
	struct smtp_reply	 r;
	struct evbuffer		*b = evbuffer_new();
	enum smtp_reply_status	 st = SMTP_REPLY_NEED_MORE;
	size_t			 added = 0;
	static const char	 line[] = "250-0123456789012345678901234567890123456789\r\n";

	while (st == SMTP_REPLY_NEED_MORE && added < 4 * SMTP_REPLY_WIRE_MAX) {
		evbuffer_add(b, line, sizeof(line) - 1);
		added += sizeof(line) - 1;
		st = smtp_reply_read(b, &r);
	}
	assert_int_equal(st, SMTP_REPLY_MALFORMED);
	assert_true(added > SMTP_REPLY_WIRE_MAX);
	assert_true(added <= SMTP_REPLY_WIRE_MAX + sizeof(line));
	evbuffer_free(b);

	/* Refused as soon as the bytes pass the bound, mid-line too. */
	b = evbuffer_new();
	for (added = 0; added + sizeof(line) - 1 <= SMTP_REPLY_WIRE_MAX - 100;
	    added += sizeof(line) - 1)
		evbuffer_add(b, line, sizeof(line) - 1);
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_NEED_MORE);
	evbuffer_add(b, "250-", 4);
	while (evbuffer_get_length(b) <= SMTP_REPLY_WIRE_MAX) {
		assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_NEED_MORE);
		evbuffer_add(b, "x", 1);
	}
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_MALFORMED);
	evbuffer_free(b);
}

static void
test_read_truncated(void **state)
{
	struct smtp_reply	 r;
	struct evbuffer		*b = evbuffer_new();
	char			 line[2100], *text;
	int			 i;

	/* More lines than kept: the first SMTP_REPLY_LINES_MAX survive. */
	for (i = 0; i < SMTP_REPLY_LINES_MAX + 10; i++)
		evbuffer_add_printf(b, "250%cline%d\r\n",
		    i == SMTP_REPLY_LINES_MAX + 9 ? ' ' : '-', i);
	evbuffer_add(b, "250 next\r\n", 10);
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_COMPLETE);
	assert_int_equal(r.nlines, SMTP_REPLY_LINES_MAX);
	assert_true(r.truncated);
	assert_string_equal(smtp_reply_line(&r, SMTP_REPLY_LINES_MAX - 1), "line63");
	assert_string_equal(smtp_reply_line(&r, SMTP_REPLY_LINES_MAX), "");
	assert_int_equal(evbuffer_get_length(b), 10);
	evbuffer_drain(b, 10);

	/* More text than kept: cut inside the third line, nothing after. */
	memset(line, 'y', 2000);
	line[2000] = '\0';
	evbuffer_add_printf(b, "550-%s\r\n550-%s\r\n550-%s\r\n550 last\r\n", line, line, line);
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_COMPLETE);
	assert_true(r.truncated);
	assert_int_equal(r.nlines, 3);
	assert_int_equal(strlen(smtp_reply_line(&r, 0)), 2000);
	assert_int_equal(strlen(smtp_reply_line(&r, 1)), 2000);
	text = (char *)smtp_reply_line(&r, 2);
	assert_int_equal(strlen(text), SMTP_REPLY_TEXT_MAX - 2 * 2001 - 1);
	assert_int_equal(evbuffer_get_length(b), 0);

	/* Within both limits nothing is marked. */
	evbuffer_add_printf(b, "550-%s\r\n550 %s\r\n", line, line);
	assert_int_equal(smtp_reply_read(b, &r), SMTP_REPLY_COMPLETE);
	assert_false(r.truncated);
	assert_int_equal(r.nlines, 2);
	evbuffer_free(b);
}

static void
test_relay(void **state)
{
	/* With enhanced codes from the peer: unchanged. */
	assert_relayed("250-2.1.5 a\r\n250 2.1.5 b\r\n", "2.0.0",
	    "250-2.1.5 a\r\n250 2.1.5 b\r\n");
	assert_relayed("550 5.1.1 <x@y>: unknown\r\n", NULL, "550 5.1.1 <x@y>: unknown\r\n");
	/* Without: the default is added to each line, or nothing. */
	assert_relayed("250-a\r\n250 b\r\n", "2.0.0", "250-2.0.0 a\r\n250 2.0.0 b\r\n");
	assert_relayed("250-a\r\n250 b\r\n", NULL, "250-a\r\n250 b\r\n");
	assert_relayed("250-a\r\n250 b\r\n", "", "250-a\r\n250 b\r\n");
	assert_relayed("451 try later\n", "4.3.0", "451 4.3.0 try later\r\n");
	assert_relayed("250\r\n", NULL, "250\r\n");
	assert_relayed("250\r\n", "2.0.0", "250 2.0.0\r\n");
	assert_relayed("250-\r\n250 x\r\n", NULL, "250-\r\n250 x\r\n");
	/* LF-only in, CRLF out; control bytes from the peer become spaces. */
	assert_relayed("550-a\n550 b\n", NULL, "550-a\r\n550 b\r\n");
	assert_relayed("550 a\rb\x01" "c\r\n", "5.0.0", "550 5.0.0 a b c\r\n");
}

static void
test_caps_postfix(void **state)
{
	struct smtp_reply	 r;
	struct smtp_caps	 caps;

	assert_reads(postfix_ehlo, &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_STARTTLS |
	    SMTP_CAP_AUTH | SMTP_CAP_XCLIENT | SMTP_CAP_XFORWARD |
	    SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_8BITMIME | SMTP_CAP_DSN |
	    SMTP_CAP_SMTPUTF8 | SMTP_CAP_CHUNKING);
	assert_int_equal(caps.size, 10240000);
	assert_int_equal(caps.xclient, SMTP_XATTR_NAME | SMTP_XATTR_ADDR | SMTP_XATTR_PROTO |
	    SMTP_XATTR_HELO | SMTP_XATTR_PORT | SMTP_XATTR_LOGIN);
	assert_int_equal(caps.xforward, SMTP_XATTR_NAME | SMTP_XATTR_ADDR | SMTP_XATTR_PROTO |
	    SMTP_XATTR_HELO | SMTP_XATTR_SOURCE | SMTP_XATTR_PORT | SMTP_XATTR_IDENT);
}

static void
test_caps_dovecot(void **state)
{
	struct smtp_reply	 r;
	struct smtp_caps	 caps;

	assert_reads(dovecot_lhlo, &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, SMTP_CAP_8BITMIME | SMTP_CAP_CHUNKING |
	    SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_PIPELINING);
	assert_int_equal(caps.size, 0);
	assert_int_equal(caps.xclient, 0);
	assert_int_equal(caps.xforward, 0);

	assert_reads(dovecot_lhlo_trusted, &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, SMTP_CAP_8BITMIME | SMTP_CAP_CHUNKING |
	    SMTP_CAP_ENHANCEDSTATUSCODES | SMTP_CAP_PIPELINING | SMTP_CAP_XCLIENT |
	    SMTP_CAP_SMTPUTF8);
	assert_int_equal(caps.xclient, SMTP_XATTR_ADDR | SMTP_XATTR_DESTADDR |
	    SMTP_XATTR_DESTPORT | SMTP_XATTR_HELO | SMTP_XATTR_LOGIN | SMTP_XATTR_PORT |
	    SMTP_XATTR_PROTO);
}

static void
test_caps_edges(void **state)
{
	struct smtp_reply	 r;
	struct smtp_caps	 caps;

	/* Case-insensitive; SIZE without a number; BINARYMIME. */
	assert_reads("250-host\r\n250-pipelining\r\n250-size\r\n250-binarymime\r\n"
	    "250-xforward name addr\r\n250 starttls\r\n", &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, SMTP_CAP_PIPELINING | SMTP_CAP_SIZE |
	    SMTP_CAP_BINARYMIME | SMTP_CAP_XFORWARD | SMTP_CAP_STARTTLS);
	assert_int_equal(caps.size, 0);
	assert_int_equal(caps.xforward, SMTP_XATTR_NAME | SMTP_XATTR_ADDR);

	/* The greeting line is not a keyword; near misses are not keywords. */
	assert_reads("250-SIZE 5\r\n250-SIZEX 7\r\n250-PIPELININGX\r\n250-XCLIENTS NAME\r\n"
	    "250 AUTH\r\n", &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, SMTP_CAP_AUTH);
	assert_int_equal(caps.size, 0);
	assert_int_equal(caps.xclient, 0);

	/* Absurd or malformed sizes count as none given. */
	assert_reads("250-h\r\n250 SIZE 99999999999999999999999\r\n", &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, SMTP_CAP_SIZE);
	assert_int_equal(caps.size, 0);
	assert_reads("250-h\r\n250 SIZE 12x\r\n", &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.size, 0);
	assert_reads("250-h\r\n250 SIZE 18446744073709551615\r\n", &r);
	smtp_caps_parse(&r, &caps);
	assert_true(caps.size == 18446744073709551615ULL);

	/* XCLIENT without attributes, and with unknown ones only. */
	assert_reads("250-h\r\n250-XCLIENT\r\n250 XFORWARD FOO BAR\r\n", &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, SMTP_CAP_XCLIENT | SMTP_CAP_XFORWARD);
	assert_int_equal(caps.xclient, 0);
	assert_int_equal(caps.xforward, 0);

	/* A refusal carries no capabilities. */
	assert_reads("550-h\r\n550 PIPELINING\r\n", &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, 0);
	/* A HELO-style one-line 250 has none either. */
	assert_reads("250 mx.example\r\n", &r);
	smtp_caps_parse(&r, &caps);
	assert_int_equal(caps.flags, 0);
}

static void
test_xtext_encode(void **state)
{
	static const struct {
		const char	*in;	/* value */
		const char	*out;	/* expected xtext */
	} cases[] = {
		{ "", "" },
		{ "abc", "abc" },
		{ "IPV6:2001:db8::1", "IPV6:2001:db8::1" },
		{ "[UNAVAILABLE]", "[UNAVAILABLE]" },
		{ "a+b=c d", "a+2Bb+3Dc+20d" },
		{ "\x01\x1f\x7f\x80\xff", "+01+1F+7F+80+FF" },
		{ "!~", "!~" },
		{ "j\xc3\xb6rg", "j+C3+B6rg" },
		{ "+", "+2B" },
	};
	struct evbuffer	*b = evbuffer_new();
	char		*got;
	size_t		 i;

	for (i = 0; i < nitems(cases); i++) {
		smtp_xtext_encode(b, cases[i].in);
		got = buffer_string(b);
		assert_string_equal(got, cases[i].out);
		free(got);
		evbuffer_drain(b, evbuffer_get_length(b));
	}
	smtp_xtext_encode(b, NULL);
	assert_int_equal(evbuffer_get_length(b), 0);
	/* Appends, never replaces. */
	evbuffer_add(b, "NAME=", 5);
	smtp_xtext_encode(b, "a b");
	got = buffer_string(b);
	assert_string_equal(got, "NAME=a+20b");
	free(got);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_addf),
		cmocka_unit_test(test_read_simple),
		cmocka_unit_test(test_read_multiline),
		cmocka_unit_test(test_read_pipelined),
		cmocka_unit_test(test_read_partial),
		cmocka_unit_test(test_read_chains),
		cmocka_unit_test(test_read_enhanced),
		cmocka_unit_test(test_read_garbage),
		cmocka_unit_test(test_read_wire_max),
		cmocka_unit_test(test_read_truncated),
		cmocka_unit_test(test_relay),
		cmocka_unit_test(test_caps_postfix),
		cmocka_unit_test(test_caps_dovecot),
		cmocka_unit_test(test_caps_edges),
		cmocka_unit_test(test_xtext_encode),
	};

	return cmocka_run_group_tests_name("smtp_reply", tests, NULL, NULL);
}
