/*
 * dsn_print.c - write a composed DSN to stdout, in wire form, for
 * tests/integration/test_dsn.py, which un-stuffs it and parses it with
 * Python's email package.
 *
 * Usage: dsn_print SCENARIO
 *   bounce   two failed recipients (one with ORCPT), headers returned
 *   partial  one failed recipient of a message that had three
 *   delay    one delayed recipient (a delay warning)
 *   hostile  a remote reply with CR, LF, NUL, 8-bit and a fake boundary
 *   full     RET=FULL: the whole original as message/rfc822
 *   utf8     an SMTPUTF8 recipient
 * Exit 0, 1 when nothing was composed, 2 on bad usage.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dsn.h"

static const char ORIG[] =
	"From: Alice <alice@example.org>\r\n"
	"To: bob@example.net\r\n"
	"Subject: quarterly report\r\n"
	"Message-ID: <orig-1@example.org>\r\n"
	"\r\n"
	"Hello Bob,\r\n"
	"..this line began with a dot.\r\n"
	"Bye.\r\n";

static const char HOSTILE[] = "550-5.1.1 no such user\r\n550 5.1.1 Bcc: x@y\r\n\r\n"
    "--=_sluice_0\r\nContent-Type: text/html\r\n\x01<b>\x80\xff\r.\r\n.\r\n";

int
main(int argc, char **argv)
{
	struct dsn_rcpt		 rc[2];
	struct dsn_report	 r;
	struct dsn_message	 m;
	const char		*s = argc == 2 ? argv[1] : "";

	memset(rc, 0, sizeof(rc));
	memset(&r, 0, sizeof(r));
	r.reporting_mta = "mx.test";
	r.sender = "alice@example.org";
	r.queue_id = "0123456789ABCDEF";
	r.arrival = 1700000000;
	r.envid = "envid-42";
	r.rcpts = rc;
	r.nrcpts = 1;
	rc[0].addr = "bob@example.net";
	rc[0].status = "5.1.1";
	rc[0].remote_mta = "mx.example.net";
	rc[0].diagnostic = "550 5.1.1 <bob@example.net>: Recipient address rejected";
	rc[0].diagnostic_smtp = 1;
	rc[0].last_attempt = 1700000100;
	rc[1].addr = "carol@example.net";
	rc[1].orcpt = "rfc822;carol@example.net";
	rc[1].status = "5.1.10";
	rc[1].diagnostic = "domain example.net does not accept mail (null MX, RFC 7505)";
	if (strcmp(s, "bounce") == 0)
		r.nrcpts = 2;
	else if (strcmp(s, "delay") == 0) {
		rc[0].action = DSN_ACTION_DELAYED;
		rc[0].status = "4.4.1";
		rc[0].diagnostic = "421 4.4.1 try again later";
		rc[0].retry_until = 1700432000;
	} else if (strcmp(s, "hostile") == 0)
		rc[0].diagnostic = HOSTILE;
	else if (strcmp(s, "full") == 0)
		r.ret_full = 1;
	else if (strcmp(s, "utf8") == 0) {
		r.smtputf8 = 1;
		rc[0].addr = "j\xc3\xb6rg@example.net";
	} else if (strcmp(s, "partial") != 0) {
		fprintf(stderr, "usage: dsn_print bounce|partial|delay|hostile|full|utf8\n");
		return 2;
	}
	if (dsn_compose(&r, ORIG, sizeof(ORIG) - 1, &m) == -1)
		return 1;
	if (fwrite(m.data, 1, m.len, stdout) != m.len)
		return 1;
	dsn_message_clear(&m);
	return 0;
}
