/*
 * test_dsn.c - unit tests for proxy/dsn.c: the structure of a composed
 * DSN (headers, MIME parts, per-recipient fields), hostile remote reply
 * text (CR, LF, NUL, 8-bit, a fake boundary or header), line lengths,
 * dot-stuffing, RET=FULL and its limit, the boundary never occurring in
 * the content, SMTPUTF8, and the NOTIFY rules, NOTIFY= and xtext parsing.
 *
 * Every composed message is checked for wire form: CRLF line ends only,
 * no NUL, no line over 998 bytes, no line "." alone (it would end DATA).
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

#include "dsn.h"
#include "util.h"

static const char ORIG[] =
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.net, carol@example.net\r\n"
	"Subject: hello\r\n"
	"Message-ID: <m1@example.org>\r\n"
	"\r\n"
	"Body line one.\r\n"
	"..a line that began with a dot\r\n"
	"secret body text\r\n";

static void	 assert_wire_form(const struct dsn_message *, int);
static int	 count_lines_starting(const struct dsn_message *, const char *);
static const char *find(const struct dsn_message *, const char *);
static void	 report_init(struct dsn_report *, struct dsn_rcpt *, size_t);

/* CRLF only, no NUL, lines <= 998, no lone ".", 7-bit unless allowed. */
static void
assert_wire_form(const struct dsn_message *m, int eightbit_ok)
{
	size_t	 i, start = 0;

	assert_non_null(m->data);
	assert_true(m->len >= 2);
	assert_memory_equal(m->data + m->len - 2, "\r\n", 2);
	for (i = 0; i < m->len; i++) {
		assert_true(m->data[i] != '\0');
		if (!eightbit_ok)
			assert_true((unsigned char)m->data[i] < 0x80);
		if (m->data[i] == '\r')
			assert_true(i + 1 < m->len && m->data[i + 1] == '\n');
		if (m->data[i] == '\n') {
			assert_true(i > 0 && m->data[i - 1] == '\r');
			assert_true(i - 1 - start <= 998);
			assert_false(i - 1 - start == 1 && m->data[start] == '.');
			start = i + 1;
		}
	}
}

/* Lines beginning with prefix (at the start of the data or after CRLF). */
static int
count_lines_starting(const struct dsn_message *m, const char *prefix)
{
	size_t	 i, n = 0, plen = strlen(prefix);

	for (i = 0; i + plen <= m->len; i++)
		if ((i == 0 || m->data[i - 1] == '\n') && memcmp(m->data + i, prefix, plen) == 0)
			n++;
	return (int)n;
}

static const char *
find(const struct dsn_message *m, const char *s)
{
	return memmem(m->data, m->len, s, strlen(s));
}

static void
report_init(struct dsn_report *r, struct dsn_rcpt *rc, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->reporting_mta = "mx.test";
	r->sender = "alice@example.org";
	r->queue_id = "0123456789ABCDEF";
	r->arrival = 1700000000;
	r->now = 1700003600;
	r->seed = 42;
	r->rcpts = rc;
	r->nrcpts = n;
}

static void
test_structure(void **state)
{
	struct dsn_rcpt		 rc[2] = { { 0 }, { 0 } };
	struct dsn_report	 r;
	struct dsn_message	 m;

	(void)state;
	rc[0].addr = "bob@example.net";
	rc[0].status = "5.1.1";
	rc[0].remote_mta = "mx.example.net";
	rc[0].diagnostic = "550 5.1.1 <bob@example.net>: user unknown";
	rc[0].diagnostic_smtp = 1;
	rc[0].last_attempt = 1700003500;
	rc[1].addr = "carol@example.net";
	rc[1].orcpt = "rfc822;Carol@Example.net";
	rc[1].status = "bogus";
	rc[1].diagnostic = "domain example.net does not accept mail (null MX, RFC 7505)";
	report_init(&r, rc, 2);
	r.envid = "ENV-1";
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	assert_wire_form(&m, 0);
	assert_false(m.eightbit);
	assert_false(m.smtputf8);
	assert_int_equal(count_lines_starting(&m, "From: \"Mail Delivery System\" "
	    "<MAILER-DAEMON@mx.test>\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "To: <alice@example.org>\r\n"), 1);
	assert_int_equal(count_lines_starting(&m,
	    "Subject: Undelivered Mail Returned to Sender\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Auto-Submitted: auto-replied\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "MIME-Version: 1.0\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Message-ID: <"), 2);	/* ours, original's */
	assert_non_null(find(&m, "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_int_equal(count_lines_starting(&m, "Content-Type: message/delivery-status\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Content-Type: text/rfc822-headers\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Reporting-MTA: dns; mx.test\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Original-Envelope-Id: ENV-1\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Arrival-Date: Tue, 14 Nov 2023 22:13:20 "
	    "+0000\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Final-Recipient: rfc822; bob@example.net\r\n"),
	    1);
	assert_int_equal(count_lines_starting(&m, "Action: failed\r\n"), 2);
	assert_int_equal(count_lines_starting(&m, "Status: 5.1.1\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Status: 5.0.0\r\n"), 1);	/* bogus */
	assert_int_equal(count_lines_starting(&m, "Remote-MTA: dns; mx.example.net\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Diagnostic-Code: smtp; 550 5.1.1 "), 1);
	assert_int_equal(count_lines_starting(&m, "Diagnostic-Code: x-sluice; domain "), 1);
	assert_int_equal(count_lines_starting(&m, "Original-Recipient: rfc822;Carol@Example.net"),
	    1);
	assert_int_equal(count_lines_starting(&m, "Last-Attempt-Date: "), 1);
	assert_int_equal(count_lines_starting(&m, "Will-Retry-Until: "), 0);
	/* The original's headers come back, its body does not. */
	assert_int_equal(count_lines_starting(&m, "Subject: hello\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Message-ID: <m1@example.org>\r\n"), 1);
	assert_null(find(&m, "secret body text"));
	assert_non_null(find(&m, "<bob@example.net>: host mx.example.net said: 550 5.1.1"));
	dsn_message_clear(&m);
	assert_null(m.data);
}

static void
test_delay_warning(void **state)
{
	struct dsn_rcpt		 rc = { 0 };
	struct dsn_report	 r;
	struct dsn_message	 m;

	(void)state;
	rc.addr = "bob@example.net";
	rc.action = DSN_ACTION_DELAYED;
	rc.status = "4.4.1";
	rc.diagnostic = "connect to mx.example.net[192.0.2.1]:25: Connection refused";
	rc.retry_until = 1700400000;
	report_init(&r, &rc, 1);
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	assert_wire_form(&m, 0);
	assert_int_equal(count_lines_starting(&m,
	    "Subject: Delayed Mail (still being retried)\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Action: delayed\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Status: 4.4.1\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "Will-Retry-Until: "), 1);
	assert_non_null(find(&m, "THIS IS A WARNING ONLY"));
	dsn_message_clear(&m);
}

/* A remote's reply cannot add a header, a MIME part or a line ending. */
static void
test_hostile_reply(void **state)
{
	static const char evil[] = "550-5.1.1 first\r\n550 5.1.1 second\r\nBcc: victim@example.com"
	    "\r\n\r\n--=_sluice_x\nContent-Type: text/html\r.\r\n.\r\n\x01\x7f\xff\xc3\xa9 end";
	struct dsn_rcpt		 rc = { 0 };
	struct dsn_report	 r;
	struct dsn_message	 m;

	(void)state;
	rc.addr = "bob@example.net\r\nBcc: x@y";
	rc.status = "5.1.1";
	rc.remote_mta = "mx.example.net\r\nX-Evil: 1";
	rc.diagnostic = evil;
	rc.diagnostic_smtp = 1;
	report_init(&r, &rc, 1);
	r.envid = "e\r\nX-Injected: 1";
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	assert_wire_form(&m, 0);
	assert_int_equal(count_lines_starting(&m, "Bcc:"), 0);
	assert_int_equal(count_lines_starting(&m, "X-Evil:"), 0);
	assert_int_equal(count_lines_starting(&m, "X-Injected:"), 0);
	assert_int_equal(count_lines_starting(&m, "Content-Type: text/html"), 0);
	assert_int_equal(count_lines_starting(&m, "--=_sluice_x"), 0);
	assert_non_null(find(&m, "550-5.1.1 first 550 5.1.1 second"));
	assert_non_null(find(&m, "victim@example.com"));
	assert_non_null(find(&m, "???? end"));
	dsn_message_clear(&m);
}

/* Long replies and long original lines are folded or broken. */
static void
test_line_lengths(void **state)
{
	struct dsn_rcpt		 rc = { 0 };
	struct dsn_report	 r;
	struct dsn_message	 m;
	char			*reply, *orig;
	size_t			 n;

	(void)state;
	reply = xmalloc(6001);
	memset(reply, 'x', 6000);
	memcpy(reply, "550 ", 4);
	reply[3000] = ' ';
	reply[6000] = '\0';
	orig = xmalloc(8000);
	n = (size_t)snprintf(orig, 8000, "Subject: ");
	memset(orig + n, 'y', 3000);
	n += 3000;
	memcpy(orig + n, "\r\nX-Short: 1\r\n\r\n", 16);
	n += 16;
	memset(orig + n, 'z', 2500);
	orig[n + 1994] = '.';	/* the third piece of the broken line starts with '.' */
	n += 2500;
	memcpy(orig + n, "\r\n", 2);
	n += 2;
	rc.addr = "bob@example.net";
	rc.diagnostic = reply;
	rc.diagnostic_smtp = 1;
	report_init(&r, &rc, 1);
	assert_int_equal(dsn_compose(&r, orig, n, &m), 0);
	assert_wire_form(&m, 0);
	assert_int_equal(count_lines_starting(&m, "X-Short: 1\r\n"), 1);
	dsn_message_clear(&m);
	r.ret_full = 1;
	assert_int_equal(dsn_compose(&r, orig, n, &m), 0);
	assert_wire_form(&m, 0);
	assert_int_equal(count_lines_starting(&m, "Content-Type: message/rfc822\r\n"), 1);
	/* Pieces of 997 bytes: the third starts with '.' and is stuffed. */
	assert_int_equal(count_lines_starting(&m, "..zzz"), 1);
	dsn_message_clear(&m);
	free(reply);
	free(orig);
}

static void
test_dot_stuffing(void **state)
{
	struct dsn_rcpt		 rc = { 0 };
	struct dsn_report	 r;
	struct dsn_message	 m;
	char			 orig[3000], diag[100];
	size_t			 n;

	(void)state;
	/* A body line of 997 'a' then ".hidden": the second piece must be stuffed. */
	n = (size_t)snprintf(orig, sizeof(orig), "Subject: dots\r\n\r\n");
	memset(orig + n, 'a', 997);
	n += 997;
	n += (size_t)snprintf(orig + n, sizeof(orig) - n, ".hidden\r\n..\r\n");
	rc.addr = "bob@example.net";
	memset(diag, 'x', 70);
	snprintf(diag + 70, sizeof(diag) - 70, " .dotline");
	rc.diagnostic = diag;
	report_init(&r, &rc, 1);
	r.ret_full = 1;
	assert_int_equal(dsn_compose(&r, orig, n, &m), 0);
	assert_wire_form(&m, 0);
	assert_int_equal(count_lines_starting(&m, "..hidden\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, "..\r\n"), 1);	/* copied as stuffed */
	/* The text part wraps the reply before ".dotline", and indents it. */
	assert_int_equal(count_lines_starting(&m, "    .dotline\r\n"), 1);
	assert_int_equal(count_lines_starting(&m, ".dotline"), 0);
	assert_int_equal(count_lines_starting(&m, ".."), 2);
	dsn_message_clear(&m);
	/* Not wire form (a lone "." inside), found by fuzz_dsn: never passed on. */
	assert_int_equal(dsn_compose(&r, "Subject: x\r\n.\r\n", 16, &m), 0);
	assert_wire_form(&m, 0);
	assert_int_equal(count_lines_starting(&m, "..\r\n"), 1);
	dsn_message_clear(&m);
}

static void
test_ret_full_limit(void **state)
{
	struct dsn_rcpt		 rc = { 0 };
	struct dsn_report	 r;
	struct dsn_message	 m;

	(void)state;
	rc.addr = "bob@example.net";
	report_init(&r, &rc, 1);
	r.ret_full = 1;
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	assert_non_null(find(&m, "secret body text"));
	assert_int_equal(count_lines_starting(&m, "Content-Type: message/rfc822\r\n"), 1);
	dsn_message_clear(&m);
	r.full_limit = 20;
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	assert_null(find(&m, "secret body text"));
	assert_int_equal(count_lines_starting(&m, "Content-Type: text/rfc822-headers\r\n"), 1);
	dsn_message_clear(&m);
}

/* The boundary a seed would give is avoided when the content has it. */
static void
test_boundary_not_in_content(void **state)
{
	struct dsn_rcpt		 rc = { 0 };
	struct dsn_report	 r;
	struct dsn_message	 m;
	char			 boundary[100], orig[400], *p, *q;

	(void)state;
	rc.addr = "bob@example.net";
	report_init(&r, &rc, 1);
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	p = strstr(m.data, "boundary=\"");
	assert_non_null(p);
	p += 10;
	q = strchr(p, '"');
	snprintf(boundary, sizeof(boundary), "%.*s", (int)(q - p), p);
	dsn_message_clear(&m);
	snprintf(orig, sizeof(orig), "Subject: --%s\r\nX: %s\r\n\r\nbody\r\n", boundary,
	    boundary);
	assert_int_equal(dsn_compose(&r, orig, strlen(orig), &m), 0);
	p = strstr(m.data, "boundary=\"") + 10;
	q = strchr(p, '"');
	assert_false((size_t)(q - p) == strlen(boundary) && memcmp(p, boundary, strlen(boundary)) == 0);
	snprintf(boundary, sizeof(boundary), "--%.*s", (int)(q - p), p);
	/* The new boundary: 3 delimiters and the close, nothing else. */
	assert_int_equal(count_lines_starting(&m, boundary), 4);
	dsn_message_clear(&m);
}

static void
test_smtputf8(void **state)
{
	struct dsn_rcpt		 rc = { 0 };
	struct dsn_report	 r;
	struct dsn_message	 m;

	(void)state;
	rc.addr = "j\xc3\xb6rg@example.net";
	rc.diagnostic = "550 unknown";
	report_init(&r, &rc, 1);
	r.smtputf8 = 1;
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	assert_wire_form(&m, 1);
	assert_true(m.smtputf8);
	assert_true(m.eightbit);
	assert_int_equal(count_lines_starting(&m, "Final-Recipient: utf-8; j\xc3\xb6rg@"), 1);
	assert_int_equal(count_lines_starting(&m,
	    "Content-Type: message/global-delivery-status\r\n"), 1);
	dsn_message_clear(&m);
	/* Without SMTPUTF8, 8-bit bytes are replaced. */
	r.smtputf8 = 0;
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	assert_wire_form(&m, 0);
	assert_int_equal(count_lines_starting(&m, "Final-Recipient: rfc822; j??rg@"), 1);
	dsn_message_clear(&m);
}

static void
test_no_dsn_to_null_sender(void **state)
{
	struct dsn_rcpt		 rc = { 0 };
	struct dsn_report	 r;
	struct dsn_message	 m;

	(void)state;
	rc.addr = "bob@example.net";
	report_init(&r, &rc, 1);
	r.sender = "";
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), -1);
	assert_null(m.data);
	r.sender = "alice@example.org";
	r.nrcpts = 0;
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), -1);
}

/* Recipients whose NOTIFY does not want this report are left out. */
static void
test_notify_filters_recipients(void **state)
{
	struct dsn_rcpt		 rc[3] = { { 0 }, { 0 }, { 0 } };
	struct dsn_report	 r;
	struct dsn_message	 m;

	(void)state;
	rc[0].addr = "never@example.net";
	rc[0].notify = DSN_NOTIFY_NEVER;
	rc[1].addr = "success@example.net";
	rc[1].notify = DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY;
	rc[2].addr = "failure@example.net";
	rc[2].notify = DSN_NOTIFY_FAILURE;
	report_init(&r, rc, 3);
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	assert_int_equal(count_lines_starting(&m, "Final-Recipient: "), 1);
	assert_int_equal(count_lines_starting(&m, "Final-Recipient: rfc822; failure@"), 1);
	assert_null(find(&m, "never@"));
	assert_null(find(&m, "success@"));
	dsn_message_clear(&m);
	/* A delay warning: only the one that asked for DELAY. */
	rc[0].action = rc[1].action = rc[2].action = DSN_ACTION_DELAYED;
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), 0);
	assert_int_equal(count_lines_starting(&m, "Final-Recipient: "), 1);
	assert_int_equal(count_lines_starting(&m, "Final-Recipient: rfc822; success@"), 1);
	dsn_message_clear(&m);
	/* Nobody wants it: nothing is composed. */
	r.nrcpts = 1;
	assert_int_equal(dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m), -1);
	assert_null(m.data);
}

static void
test_notify_rules(void **state)
{
	unsigned int	 f;

	(void)state;
	/* Never to <>: that is also the bounce of a bounce. */
	assert_false(dsn_wanted("", 0, DSN_ACTION_FAILED));
	assert_false(dsn_wanted("<>", 0, DSN_ACTION_FAILED));
	assert_false(dsn_wanted(NULL, DSN_NOTIFY_FAILURE, DSN_ACTION_FAILED));
	assert_true(dsn_wanted("a@b", 0, DSN_ACTION_FAILED));
	assert_true(dsn_wanted("a@b", 0, DSN_ACTION_DELAYED));
	assert_false(dsn_wanted("a@b", DSN_NOTIFY_NEVER, DSN_ACTION_FAILED));
	assert_false(dsn_wanted("a@b", DSN_NOTIFY_NEVER, DSN_ACTION_DELAYED));
	assert_false(dsn_wanted("a@b", DSN_NOTIFY_SUCCESS, DSN_ACTION_FAILED));
	assert_false(dsn_wanted("a@b", DSN_NOTIFY_DELAY, DSN_ACTION_FAILED));
	assert_true(dsn_wanted("a@b", DSN_NOTIFY_DELAY, DSN_ACTION_DELAYED));
	assert_false(dsn_wanted("a@b", DSN_NOTIFY_FAILURE, DSN_ACTION_DELAYED));
	assert_true(dsn_wanted("a@b", DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY, DSN_ACTION_FAILED));
	assert_int_equal(dsn_notify_parse("NEVER", &f), 0);
	assert_int_equal(f, DSN_NOTIFY_NEVER);
	assert_int_equal(dsn_notify_parse("success,Failure,DELAY", &f), 0);
	assert_int_equal(f, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
	assert_int_equal(dsn_notify_parse("NEVER,FAILURE", &f), -1);
	assert_int_equal(dsn_notify_parse("", &f), -1);
	assert_int_equal(dsn_notify_parse("FAILURE,", &f), -1);
	assert_int_equal(dsn_notify_parse("FAIL", &f), -1);
	assert_int_equal(dsn_notify_parse(",FAILURE", &f), -1);
}

static void
test_xtext(void **state)
{
	char	*s;

	(void)state;
	s = dsn_xtext_decode("rfc822;a+2Bb@example.org");
	assert_string_equal(s, "rfc822;a+b@example.org");
	free(s);
	s = dsn_xtext_decode("x+3Dy");
	assert_string_equal(s, "x=y");
	free(s);
	assert_null(dsn_xtext_decode("bad+2"));
	assert_null(dsn_xtext_decode("bad+2b"));
	assert_null(dsn_xtext_decode("a=b"));
	assert_null(dsn_xtext_decode("a b"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_delay_warning),
		cmocka_unit_test(test_hostile_reply),
		cmocka_unit_test(test_line_lengths),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_ret_full_limit),
		cmocka_unit_test(test_boundary_not_in_content),
		cmocka_unit_test(test_smtputf8),
		cmocka_unit_test(test_no_dsn_to_null_sender),
		cmocka_unit_test(test_notify_filters_recipients),
		cmocka_unit_test(test_notify_rules),
		cmocka_unit_test(test_xtext),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
