/*
 * test_smtp_parse.c - unit tests for proxy/smtp_parse.c: command lines,
 * MAIL/RCPT paths and parameters, HELO domains, xtext and status texts.
 *
 * Every input is parsed from an exact-size heap copy, so a read past the
 * end shows up under AddressSanitizer; every prefix of every table entry
 * is parsed as well (the parsers see lines cut anywhere), and a seeded
 * mutation run throws hostile bytes at all of them.
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

#include "smtp_parse.h"
#include "util.h"

#define L(s)	(s), (sizeof(s) - 1)

#define F_NULL	SMTP_PATH_ALLOW_NULL
#define F_PM	SMTP_PATH_ALLOW_POSTMASTER
#define F_U8	SMTP_PATH_ALLOW_UTF8

/* Expected path properties, as bits. */
#define P_QUOTED	0x01
#define P_LITERAL	0x02
#define P_UTF8		0x04
#define P_POSTMASTER	0x08
#define P_NULL		0x10

struct cmd_case {
	const char		*line;		/* input, may hold NUL */
	size_t			 len;		/* its length */
	enum smtp_parse_status	 st;		/* expected status */
	enum smtp_verb		 verb;		/* expected verb when OK */
	const char		*verb_text;	/* expected verb text when OK */
	const char		*arg;		/* expected argument when OK */
};

struct path_good {
	const char	*kw;		/* "FROM" or "TO" */
	int		 flags;		/* SMTP_PATH_* */
	const char	*arg;		/* argument, NUL-terminated */
	const char	*mailbox;	/* expected mailbox */
	const char	*domain;	/* expected domain */
	const char	*route;		/* expected route */
	int		 bits;		/* P_* */
	size_t		 nparams;	/* expected parameter count */
};

struct path_bad {
	const char		*kw;	/* "FROM" or "TO" */
	int			 flags;	/* SMTP_PATH_* */
	const char		*arg;	/* argument */
	size_t			 len;	/* its length */
	enum smtp_parse_status	 st;	/* expected status */
};

struct domain_case {
	const char		*s;	/* input */
	size_t			 len;	/* its length */
	int			 utf8;	/* allow UTF-8 */
	enum smtp_parse_status	 st;	/* expected status */
};

static char	*copy_exact(const char *, size_t);
static enum smtp_parse_status command_parse_copy(const char *, size_t,
		    struct smtp_command *, char **);
static enum smtp_parse_status path_arg_parse_copy(const char *, size_t, const char *, int,
		    struct smtp_path_arg *);
static void	 make_domain(char *, size_t, size_t);
static uint32_t	 rng_next(uint32_t *);

static const struct cmd_case cmd_cases[] = {
	{ L("MAIL FROM:<a@b.example>"), SMTP_PARSE_OK, SMTP_VERB_MAIL, "MAIL", "FROM:<a@b.example>" },
	{ L("mail from:<a@b.example>"), SMTP_PARSE_OK, SMTP_VERB_MAIL, "mail", "from:<a@b.example>" },
	{ L("Rcpt To:<a@b.example>"), SMTP_PARSE_OK, SMTP_VERB_RCPT, "Rcpt", "To:<a@b.example>" },
	{ L("EHLO client.example"), SMTP_PARSE_OK, SMTP_VERB_EHLO, "EHLO", "client.example" },
	{ L("ehlo client.example"), SMTP_PARSE_OK, SMTP_VERB_EHLO, "ehlo", "client.example" },
	{ L("HELO client.example"), SMTP_PARSE_OK, SMTP_VERB_HELO, "HELO", "client.example" },
	{ L("LHLO client.example"), SMTP_PARSE_OK, SMTP_VERB_LHLO, "LHLO", "client.example" },
	{ L("DATA"), SMTP_PARSE_OK, SMTP_VERB_DATA, "DATA", "" },
	{ L("BDAT 100 LAST"), SMTP_PARSE_OK, SMTP_VERB_BDAT, "BDAT", "100 LAST" },
	{ L("RSET"), SMTP_PARSE_OK, SMTP_VERB_RSET, "RSET", "" },
	{ L("NOOP"), SMTP_PARSE_OK, SMTP_VERB_NOOP, "NOOP", "" },
	{ L("QUIT"), SMTP_PARSE_OK, SMTP_VERB_QUIT, "QUIT", "" },
	{ L("quit"), SMTP_PARSE_OK, SMTP_VERB_QUIT, "quit", "" },
	{ L("VRFY postmaster"), SMTP_PARSE_OK, SMTP_VERB_VRFY, "VRFY", "postmaster" },
	{ L("EXPN list"), SMTP_PARSE_OK, SMTP_VERB_EXPN, "EXPN", "list" },
	{ L("HELP"), SMTP_PARSE_OK, SMTP_VERB_HELP, "HELP", "" },
	{ L("STARTTLS"), SMTP_PARSE_OK, SMTP_VERB_STARTTLS, "STARTTLS", "" },
	{ L("StartTLS"), SMTP_PARSE_OK, SMTP_VERB_STARTTLS, "StartTLS", "" },
	{ L("AUTH PLAIN AGEAYg=="), SMTP_PARSE_OK, SMTP_VERB_AUTH, "AUTH", "PLAIN AGEAYg==" },
	{ L("XCLIENT ADDR=192.0.2.1"), SMTP_PARSE_OK, SMTP_VERB_XCLIENT, "XCLIENT", "ADDR=192.0.2.1" },
	{ L("XFORWARD NAME=x"), SMTP_PARSE_OK, SMTP_VERB_XFORWARD, "XFORWARD", "NAME=x" },
	/* Browsers and HTTP proxy probes. */
	{ L("GET / HTTP/1.1"), SMTP_PARSE_OK, SMTP_VERB_HTTP, "GET", "/ HTTP/1.1" },
	{ L("post /x HTTP/1.0"), SMTP_PARSE_OK, SMTP_VERB_HTTP, "post", "/x HTTP/1.0" },
	{ L("HEAD / HTTP/1.0"), SMTP_PARSE_OK, SMTP_VERB_HTTP, "HEAD", "/ HTTP/1.0" },
	{ L("PUT /x HTTP/1.0"), SMTP_PARSE_OK, SMTP_VERB_HTTP, "PUT", "/x HTTP/1.0" },
	{ L("CONNECT mx.example:25 HTTP/1.0"), SMTP_PARSE_OK, SMTP_VERB_HTTP, "CONNECT",
	    "mx.example:25 HTTP/1.0" },
	{ L("OPTIONS * HTTP/1.1"), SMTP_PARSE_OK, SMTP_VERB_HTTP, "OPTIONS", "* HTTP/1.1" },
	/* Argument: after exactly one SP, trailing SP and HTAB removed. */
	{ L("QUIT "), SMTP_PARSE_OK, SMTP_VERB_QUIT, "QUIT", "" },
	{ L("QUIT \t "), SMTP_PARSE_OK, SMTP_VERB_QUIT, "QUIT", "" },
	{ L("NOOP\t"), SMTP_PARSE_OK, SMTP_VERB_NOOP, "NOOP", "" },
	{ L("NOOP  x  "), SMTP_PARSE_OK, SMTP_VERB_NOOP, "NOOP", " x" },
	{ L("NOOP a\tb"), SMTP_PARSE_OK, SMTP_VERB_NOOP, "NOOP", "a\tb" },
	{ L("MAIL  FROM:<a@b>"), SMTP_PARSE_OK, SMTP_VERB_MAIL, "MAIL", " FROM:<a@b>" },
	/* Not a verb we know. */
	{ L("MAILX FROM:<a@b>"), SMTP_PARSE_OK, SMTP_VERB_UNKNOWN, "MAILX", "FROM:<a@b>" },
	{ L("MAI"), SMTP_PARSE_OK, SMTP_VERB_UNKNOWN, "MAI", "" },
	{ L("MAIL:FROM:<a@b>"), SMTP_PARSE_OK, SMTP_VERB_UNKNOWN, "MAIL:FROM:<a@b>", "" },
	{ L("MAIL\tFROM:<a@b>"), SMTP_PARSE_OK, SMTP_VERB_UNKNOWN, "MAIL\tFROM:<a@b>", "" },
	{ L("M4IL x"), SMTP_PARSE_OK, SMTP_VERB_UNKNOWN, "M4IL", "x" },
	{ L("123"), SMTP_PARSE_OK, SMTP_VERB_UNKNOWN, "123", "" },
	{ L(" QUIT"), SMTP_PARSE_OK, SMTP_VERB_UNKNOWN, "", "QUIT" },
	{ L("GETX /"), SMTP_PARSE_OK, SMTP_VERB_UNKNOWN, "GETX", "/" },
	/* Non-ASCII in the argument is for the path parser to judge. */
	{ L("MAIL FROM:<j\xc3\xb6rg@example.org>"), SMTP_PARSE_OK, SMTP_VERB_MAIL, "MAIL",
	    "FROM:<j\xc3\xb6rg@example.org>" },
	{ L("NOOP \xff"), SMTP_PARSE_OK, SMTP_VERB_NOOP, "NOOP", "\xff" },
	/* Empty lines. */
	{ L(""), SMTP_PARSE_EMPTY, 0, NULL, NULL },
	{ L(" "), SMTP_PARSE_EMPTY, 0, NULL, NULL },
	{ L(" \t  "), SMTP_PARSE_EMPTY, 0, NULL, NULL },
	/* NUL anywhere, before any other complaint. */
	{ L("\0"), SMTP_PARSE_NUL, 0, NULL, NULL },
	{ L("MA\0IL FROM:<a@b>"), SMTP_PARSE_NUL, 0, NULL, NULL },
	{ L("MAIL FROM:<a@b>\0"), SMTP_PARSE_NUL, 0, NULL, NULL },
	{ L("\x01\0"), SMTP_PARSE_NUL, 0, NULL, NULL },
	{ L("\xc3\0"), SMTP_PARSE_NUL, 0, NULL, NULL },
	/* Control bytes other than HTAB, anywhere. */
	{ L("MAIL\r FROM:<a@b>"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
	{ L("MAIL FROM:<a@b>\r"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
	{ L("NOOP \x1b[31m"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
	{ L("NOOP \x7f"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
	{ L("NOOP \n"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
	{ L("\x04"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
	/* 8-bit verb. */
	{ L("M\xc3\xa9IL FROM:<a@b>"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
	{ L("MAIL\xa0" "FROM:<a@b>"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
	{ L("\xff"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
	{ L("QUIT\x80"), SMTP_PARSE_BAD_CHAR, 0, NULL, NULL },
};

static const struct path_good path_good[] = {
	{ "FROM", F_NULL, "FROM:<a@b.example>", "a@b.example", "b.example", "", 0, 0 },
	{ "FROM", F_NULL, "from:<a@b.example>", "a@b.example", "b.example", "", 0, 0 },
	{ "FROM", F_NULL, "From:<a@b.example>", "a@b.example", "b.example", "", 0, 0 },
	{ "TO", F_PM, "to:<a@b.example>", "a@b.example", "b.example", "", 0, 0 },
	/* A space after the colon is common and tolerated. */
	{ "FROM", F_NULL, "FROM: <a@b.example>", "a@b.example", "b.example", "", 0, 0 },
	{ "FROM", F_NULL, "FROM:   <a@b.example>", "a@b.example", "b.example", "", 0, 0 },
	/* Stored as sent: no case folding. */
	{ "FROM", 0, "FROM:<User.Name+tag@Mail.Example.COM>", "User.Name+tag@Mail.Example.COM",
	    "Mail.Example.COM", "", 0, 0 },
	{ "FROM", 0, "FROM:<!#$%&'*+-/=?^_`{|}~@x.example>", "!#$%&'*+-/=?^_`{|}~@x.example",
	    "x.example", "", 0, 0 },
	{ "TO", 0, "TO:<a@localhost>", "a@localhost", "localhost", "", 0, 0 },
	{ "TO", 0, "TO:<a@b-c.d3.example>", "a@b-c.d3.example", "b-c.d3.example", "", 0, 0 },
	{ "TO", 0, "TO:<a@0.example>", "a@0.example", "0.example", "", 0, 0 },
	/* Null paths. */
	{ "FROM", F_NULL, "FROM:<>", "", "", "", P_NULL, 0 },
	{ "FROM", F_NULL, "FROM: <>", "", "", "", P_NULL, 0 },
	{ "FROM", F_NULL, "FROM:<> SIZE=100", "", "", "", P_NULL, 1 },
	/* Postmaster without a domain, any case. */
	{ "TO", F_PM, "TO:<postmaster>", "postmaster", "", "", P_POSTMASTER, 0 },
	{ "TO", F_PM, "TO:<PostMaster>", "postmaster", "", "", P_POSTMASTER, 0 },
	{ "TO", F_PM, "TO:<POSTMASTER> NOTIFY=NEVER", "postmaster", "", "", P_POSTMASTER, 1 },
	{ "TO", F_PM, "TO:<postmaster@example.org>", "postmaster@example.org", "example.org", "",
	    0, 0 },
	/* Classic relay vectors: parsed faithfully, reported accurately. */
	{ "TO", F_PM, "TO:<user%host.example@local.example>", "user%host.example@local.example",
	    "local.example", "", 0, 0 },
	{ "TO", F_PM, "TO:<host.example!user@local.example>", "host.example!user@local.example",
	    "local.example", "", 0, 0 },
	{ "TO", F_PM, "TO:<@a.example:user@b.example>", "user@b.example", "b.example",
	    "@a.example", 0, 0 },
	{ "TO", F_PM, "TO:<@a.example,@b.example:user@c.example>", "user@c.example", "c.example",
	    "@a.example,@b.example", 0, 0 },
	{ "TO", F_PM, "TO:<\"user@ext.example\"@local.example>",
	    "\"user@ext.example\"@local.example", "local.example", "", P_QUOTED, 0 },
	{ "TO", F_PM, "TO:<\"user%ext\"@local.example>", "\"user%ext\"@local.example",
	    "local.example", "", P_QUOTED, 0 },
	/* Quoted local parts. */
	{ "FROM", 0, "FROM:<\"a b\"@x.example>", "\"a b\"@x.example", "x.example", "", P_QUOTED, 0 },
	{ "FROM", 0, "FROM:<\"a\\\"b\\\\c\"@x.example>", "\"a\\\"b\\\\c\"@x.example", "x.example",
	    "", P_QUOTED, 0 },
	{ "FROM", 0, "FROM:<\"a>b\"@x.example> SIZE=1", "\"a>b\"@x.example", "x.example", "",
	    P_QUOTED, 1 },
	{ "FROM", 0, "FROM:<\"\"@x.example>", "\"\"@x.example", "x.example", "", P_QUOTED, 0 },
	{ "FROM", 0, "FROM:<\"a\\ b\"@x.example>", "\"a\\ b\"@x.example", "x.example", "",
	    P_QUOTED, 0 },
	{ "FROM", 0, "FROM:<\".a..b.\"@x.example>", "\".a..b.\"@x.example", "x.example", "",
	    P_QUOTED, 0 },
	/* Address literals. */
	{ "TO", 0, "TO:<a@[192.0.2.1]>", "a@[192.0.2.1]", "[192.0.2.1]", "", P_LITERAL, 0 },
	{ "TO", 0, "TO:<a@[255.255.255.255]>", "a@[255.255.255.255]", "[255.255.255.255]", "",
	    P_LITERAL, 0 },
	{ "TO", 0, "TO:<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", "",
	    P_LITERAL, 0 },
	{ "TO", 0, "TO:<a@[ipv6:::1]>", "a@[ipv6:::1]", "[ipv6:::1]", "", P_LITERAL, 0 },
	{ "TO", 0, "TO:<a@[IPV6:::ffff:192.0.2.1]>", "a@[IPV6:::ffff:192.0.2.1]",
	    "[IPV6:::ffff:192.0.2.1]", "", P_LITERAL, 0 },
	{ "TO", 0, "TO:<a@[x-tag:any:thing>here]>", "a@[x-tag:any:thing>here]",
	    "[x-tag:any:thing>here]", "", P_LITERAL, 0 },
	/* RFC 5321 grammar: a general literal with tag "2001", not IPv6. */
	{ "TO", 0, "TO:<a@[2001:db8::1]>", "a@[2001:db8::1]", "[2001:db8::1]", "", P_LITERAL, 0 },
	/* Parameters, with and without values, extra spaces tolerated. */
	{ "FROM", 0, "FROM:<a@b> SIZE=100 BODY=8BITMIME", "a@b", "b", "", 0, 2 },
	{ "FROM", 0, "FROM:<a@b> SMTPUTF8", "a@b", "b", "", 0, 1 },
	{ "FROM", 0, "FROM:<a@b>  SIZE=1   RET=HDRS  ", "a@b", "b", "", 0, 2 },
	{ "FROM", 0, "FROM:<a@b> X-VENDOR-1=v ENVID=a+2Bb", "a@b", "b", "", 0, 2 },
	{ "TO", 0, "TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@c", "a@b", "b", "", 0, 2 },
	{ "FROM", 0, "FROM:<a@b> ", "a@b", "b", "", 0, 0 },
	/* SMTPUTF8. */
	{ "FROM", F_U8, "FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example>",
	    "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "b\xc3\xbc" "cher.example", "", P_UTF8, 0 },
	{ "FROM", F_U8, "FROM:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>",
	    "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
	    "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", "", P_UTF8, 0 },
	{ "FROM", F_U8, "FROM:<\"j\xc3\xb6 rg\"@x.example>", "\"j\xc3\xb6 rg\"@x.example",
	    "x.example", "", P_UTF8 | P_QUOTED, 0 },
	{ "FROM", F_U8, "FROM:<\xf0\x9f\x98\x80@x.example>", "\xf0\x9f\x98\x80@x.example",
	    "x.example", "", P_UTF8, 0 },
	{ "FROM", F_U8, "FROM:<\xf4\x8f\xbf\xbf@x.example>", "\xf4\x8f\xbf\xbf@x.example",
	    "x.example", "", P_UTF8, 0 },
	{ "FROM", F_U8, "FROM:<\xed\x9f\xbf@x.example>", "\xed\x9f\xbf@x.example", "x.example", "",
	    P_UTF8, 0 },
	{ "FROM", F_U8, "FROM:<\xc2\x80@x.example>", "\xc2\x80@x.example", "x.example", "",
	    P_UTF8, 0 },
	{ "FROM", F_U8, "FROM:<a@x.example>", "a@x.example", "x.example", "", 0, 0 },
	{ "FROM", F_U8, "FROM:<a@x.example> X=\xc3\xa9t\xc3\xa9", "a@x.example", "x.example", "",
	    0, 1 },
};

static const struct path_bad path_bad[] = {
	/* Keyword and colon. */
	{ "FROM", F_NULL, L(""), SMTP_PARSE_NO_COLON },
	{ "FROM", F_NULL, L("FROM"), SMTP_PARSE_NO_COLON },
	{ "FROM", F_NULL, L("FROM <a@b>"), SMTP_PARSE_NO_COLON },
	{ "FROM", F_NULL, L("FROM :<a@b>"), SMTP_PARSE_NO_COLON },
	{ "FROM", F_NULL, L(" FROM:<a@b>"), SMTP_PARSE_NO_COLON },
	{ "FROM", F_NULL, L("FRM:<a@b>"), SMTP_PARSE_NO_COLON },
	{ "FROM", F_NULL, L("TO:<a@b>"), SMTP_PARSE_NO_COLON },
	{ "TO", F_PM, L("FROM:<a@b>"), SMTP_PARSE_NO_COLON },
	{ "TO", F_PM, L("T0:<a@b>"), SMTP_PARSE_NO_COLON },
	{ "FROM", F_NULL, L("\xc6ROM:<a@b>"), SMTP_PARSE_NO_COLON },
	/* Angle brackets are required. */
	{ "FROM", F_NULL, L("FROM:"), SMTP_PARSE_NO_BRACKETS },
	{ "FROM", F_NULL, L("FROM: "), SMTP_PARSE_NO_BRACKETS },
	{ "FROM", F_NULL, L("FROM:a@b.example"), SMTP_PARSE_NO_BRACKETS },
	{ "FROM", F_NULL, L("FROM: a@b.example"), SMTP_PARSE_NO_BRACKETS },
	{ "TO", F_PM, L("TO:postmaster"), SMTP_PARSE_NO_BRACKETS },
	{ "FROM", F_NULL, L("FROM:<"), SMTP_PARSE_NO_BRACKETS },
	{ "FROM", F_NULL, L("FROM:<a"), SMTP_PARSE_NO_BRACKETS },
	{ "FROM", F_NULL, L("FROM:<a@b.example"), SMTP_PARSE_NO_BRACKETS },
	{ "FROM", F_NULL, L("FROM:<a@[192.0.2.1]"), SMTP_PARSE_NO_BRACKETS },
	{ "FROM", F_NULL, L("FROM:\t<a@b>"), SMTP_PARSE_NO_BRACKETS },
	/* Null path where a mailbox is required. */
	{ "TO", F_PM, L("TO:<>"), SMTP_PARSE_NULL_NOT_ALLOWED },
	{ "TO", F_PM | F_U8, L("TO: <>"), SMTP_PARSE_NULL_NOT_ALLOWED },
	{ "FROM", 0, L("FROM:<>"), SMTP_PARSE_NULL_NOT_ALLOWED },
	/* Postmaster without domain only where allowed (RCPT). */
	{ "FROM", F_NULL, L("FROM:<postmaster>"), SMTP_PARSE_BAD_DOMAIN },
	{ "TO", F_PM, L("TO:<postmaster.x>"), SMTP_PARSE_BAD_DOMAIN },
	{ "TO", F_PM, L("TO:<@a.example:postmaster>"), SMTP_PARSE_BAD_DOMAIN },
	{ "TO", F_PM, L("TO:<user>"), SMTP_PARSE_BAD_DOMAIN },
	/* Local part. */
	{ "FROM", 0, L("FROM:<a..b@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<.a@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<a.@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<a b@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<a(b)@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<a,b@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<a\\b@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<a\"b\"@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:< a@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<\"a@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<\"a\tb\"@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<\"a\\\tb\"@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<\"a\\"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<\"a\"b@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<\"a\"\"b\"@x.example>"), SMTP_PARSE_BAD_LOCAL },
	{ "FROM", 0, L("FROM:<a\0b@x.example>"), SMTP_PARSE_BAD_LOCAL },
	/* Domain. */
	{ "FROM", 0, L("FROM:<a@>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@@x.example>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@b@x.example>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@x.example.>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@.x.example>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@x..example>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@-x.example>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@x-.example>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@x.example->"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@x_y.example>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@x example>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@x.example >"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@x.example\0>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@x.example\r>"), SMTP_PARSE_BAD_DOMAIN },
	{ "FROM", 0, L("FROM:<a@\"x\".example>"), SMTP_PARSE_BAD_DOMAIN },
	/* Address literals. */
	{ "TO", 0, L("TO:<a@[]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[192.0.2.256]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[192.0.2]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[192.0.2.1.5]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[01.0.2.1]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[host.example]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[192.0.2.1]x>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[192.0.2.1>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[192.0.2.1"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[ 192.0.2.1]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[IPv6:2001:db8::g]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[IPv6:192.0.2.1]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[IPv6:1::2::3]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[IPv6:]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[IPv6:0000:0000:0000:0000:0000:0000:0000:0000:1]>"),
	    SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[:x]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[x:]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[-x:y]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[x-:y]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[x_y:z]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[x:a[b]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[x:a\\b]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", 0, L("TO:<a@[x:a b]>"), SMTP_PARSE_BAD_LITERAL },
	{ "TO", F_U8, L("TO:<a@[x:\xc3\xa9]>"), SMTP_PARSE_BAD_LITERAL },
	/* Source routes. */
	{ "TO", 0, L("TO:<@a.example user@b.example>"), SMTP_PARSE_BAD_ROUTE },
	{ "TO", 0, L("TO:<@:user@b.example>"), SMTP_PARSE_BAD_ROUTE },
	{ "TO", 0, L("TO:<@a.example,:user@b.example>"), SMTP_PARSE_BAD_ROUTE },
	{ "TO", 0, L("TO:<@a.example,b.example:user@c.example>"), SMTP_PARSE_BAD_ROUTE },
	{ "TO", 0, L("TO:<@a.example.:user@c.example>"), SMTP_PARSE_BAD_ROUTE },
	{ "TO", 0, L("TO:<@[192.0.2.1]:user@c.example>"), SMTP_PARSE_BAD_ROUTE },
	{ "TO", 0, L("TO:<@a.example>"), SMTP_PARSE_BAD_ROUTE },
	{ "TO", 0, L("TO:<@a.example"), SMTP_PARSE_BAD_ROUTE },
	{ "TO", 0, L("TO:<@x.example:>"), SMTP_PARSE_BAD_LOCAL },
	/* Parameters. */
	{ "FROM", 0, L("FROM:<a@b>x"), SMTP_PARSE_BAD_SYNTAX },
	{ "FROM", 0, L("FROM:<a@b>>"), SMTP_PARSE_BAD_SYNTAX },
	{ "FROM", 0, L("FROM:<a@b>\tSIZE=1"), SMTP_PARSE_BAD_SYNTAX },
	{ "FROM", 0, L("FROM:<a@b> =1"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> SIZE="), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> SIZE= BODY=7BIT"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> SIZE==1"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> SIZE=1=2"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> -X=1"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> SI_ZE=1"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> SIZE=1\t"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> SIZE\t"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> X=a\x01"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> X=a\x7f"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> X=a\0"), SMTP_PARSE_BAD_PARAM },
	{ "FROM", 0, L("FROM:<a@b> <c@d>"), SMTP_PARSE_BAD_PARAM },
	/* UTF-8 without SMTPUTF8, and malformed UTF-8 with it. */
	{ "FROM", 0, L("FROM:<j\xc3\xb6rg@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_NULL | F_PM, L("FROM:<a@b\xc3\xbc" "cher.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", 0, L("FROM:<\"j\xc3\xb6rg\"@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", 0, L("FROM:<@b\xc3\xbc" "cher.example:a@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", 0, L("FROM:<a@x.example> X=\xc3\xa9"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xc0\xaf@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xc1\xbf@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xe0\x80\xaf@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xe0\x9f\xbf@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xf0\x80\x80\xaf@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xf0\x8f\xbf\xbf@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xed\xa0\x80@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xed\xbf\xbf@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xf4\x90\x80\x80@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xf5\x80\x80\x80@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xf8\x88\x80\x80\x80@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xfe@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xff@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\x80@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<a\xbf@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xc3@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xe2\x82@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\xc3\xc3\xa9@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<a@x.example\xc3"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<a@x.\xe2\x82"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<\"\xed\xa0\x80\"@x.example>"), SMTP_PARSE_UTF8 },
	{ "FROM", F_U8, L("FROM:<a@x.example> X=\xc0\xaf"), SMTP_PARSE_UTF8 },
};

static const struct domain_case domain_cases[] = {
	{ L("example.org"), 0, SMTP_PARSE_OK },
	{ L("Mail.Example.ORG"), 0, SMTP_PARSE_OK },
	{ L("localhost"), 0, SMTP_PARSE_OK },
	{ L("a-b.c0"), 0, SMTP_PARSE_OK },
	{ L("1.2.3.4"), 0, SMTP_PARSE_OK },
	{ L("[192.0.2.1]"), 0, SMTP_PARSE_OK },
	{ L("[IPv6:2001:db8::1]"), 0, SMTP_PARSE_OK },
	{ L("[x-tag:content]"), 0, SMTP_PARSE_OK },
	{ L("m\xc3\xbcnchen.example"), 1, SMTP_PARSE_OK },
	{ L("m\xc3\xbcnchen.example"), 0, SMTP_PARSE_UTF8 },
	{ L("m\xc3nchen.example"), 1, SMTP_PARSE_UTF8 },
	{ L(""), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("."), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("example.org."), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L(".example.org"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("example..org"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("-example.org"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("example-.org"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("exa_mple.org"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("exa mple.org"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("example.org "), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("example.org\0"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("ex\0ample.org"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("example.org>"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("user@example.org"), 0, SMTP_PARSE_BAD_DOMAIN },
	{ L("[192.0.2.1]x"), 0, SMTP_PARSE_BAD_LITERAL },
	{ L("[192.0.2]"), 0, SMTP_PARSE_BAD_LITERAL },
	{ L("[192.0.2.1"), 0, SMTP_PARSE_BAD_LITERAL },
	{ L("["), 0, SMTP_PARSE_BAD_LITERAL },
	{ L("[IPv6:::g]"), 0, SMTP_PARSE_BAD_LITERAL },
};

static char *
copy_exact(const char *s, size_t len)
{
	char	*p = malloc(len > 0 ? len : 1);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

/* Parse a copy with nothing after the line; *copy is the caller's to free. */
static enum smtp_parse_status
command_parse_copy(const char *line, size_t len, struct smtp_command *cmd, char **copy)
{
	*copy = copy_exact(line, len);
	return smtp_command_parse(*copy, len, cmd);
}

/* Parse into out from a copy; pointers in out->params are dead afterwards. */
static enum smtp_parse_status
path_arg_parse_copy(const char *arg, size_t len, const char *kw, int flags,
    struct smtp_path_arg *out)
{
	char			*copy = copy_exact(arg, len);
	enum smtp_parse_status	 st;

	st = smtp_path_arg_parse(copy, len, kw, flags, out);
	free(copy);
	return st;
}

/* n bytes of a valid domain: labels of label bytes joined by dots. */
static void
make_domain(char *buf, size_t n, size_t label)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		buf[i] = (i + 1) % (label + 1) == 0 ? '.' : 'a';
	assert_true(n == 0 || buf[n - 1] != '.');
	buf[n] = '\0';
}

/* xorshift32: a fixed sequence, so a failure reproduces. */
static uint32_t
rng_next(uint32_t *state)
{
	uint32_t	 x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *state = x;
}

static void
test_command_table(void **state)
{
	struct smtp_command	 cmd;
	size_t			 i;
	char			*copy;

	for (i = 0; i < nitems(cmd_cases); i++) {
		const struct cmd_case	*c = &cmd_cases[i];
		enum smtp_parse_status	 st;

		st = command_parse_copy(c->line, c->len, &cmd, &copy);
		if (st != c->st)
			fail_msg("case %zu \"%s\": status %d, want %d", i, c->line, st, c->st);
		assert_non_null(cmd.arg);
		if (st == SMTP_PARSE_OK) {
			assert_int_equal(cmd.verb, c->verb);
			assert_int_equal(cmd.verb_len, strlen(c->verb_text));
			assert_memory_equal(cmd.verb_text, c->verb_text, cmd.verb_len);
			assert_ptr_equal(cmd.verb_text, copy);
			assert_int_equal(cmd.arg_len, strlen(c->arg));
			assert_memory_equal(cmd.arg, c->arg, cmd.arg_len);
		}
		free(copy);
	}
}

/* Every prefix of every line, from an exact-size buffer. */
static void
test_command_prefixes(void **state)
{
	struct smtp_command	 cmd;
	size_t			 i, n;
	char			*copy;

	for (i = 0; i < nitems(cmd_cases); i++) {
		for (n = 0; n <= cmd_cases[i].len; n++) {
			enum smtp_parse_status	 st;

			st = command_parse_copy(cmd_cases[i].line, n, &cmd, &copy);
			assert_true(st <= SMTP_PARSE_BAD_CHAR);
			if (st == SMTP_PARSE_OK) {
				assert_true(cmd.verb_len + cmd.arg_len <= n);
				assert_true(cmd.arg_len == 0 || cmd.arg > copy);
			}
			free(copy);
		}
	}
}

static void
test_verb_names(void **state)
{
	struct smtp_command	 cmd;
	int			 v;

	for (v = SMTP_VERB_HELO; v < SMTP_VERB_HTTP; v++) {
		const char	*name = smtp_verb_name((enum smtp_verb)v);

		assert_int_equal(smtp_command_parse(name, strlen(name), &cmd), SMTP_PARSE_OK);
		assert_int_equal(cmd.verb, v);
	}
	assert_string_equal(smtp_verb_name(SMTP_VERB_MAIL), "MAIL");
	assert_string_equal(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
	assert_string_equal(smtp_verb_name(SMTP_VERB_UNKNOWN), "UNKNOWN");
	assert_string_equal(smtp_verb_name(SMTP_VERB_COUNT), "UNKNOWN");
	assert_string_equal(smtp_verb_name((enum smtp_verb)-1), "UNKNOWN");
}

static void
test_path_good(void **state)
{
	struct smtp_path_arg	 pa;
	size_t			 i;

	for (i = 0; i < nitems(path_good); i++) {
		const struct path_good	*c = &path_good[i];
		enum smtp_parse_status	 st;

		st = path_arg_parse_copy(c->arg, strlen(c->arg), c->kw, c->flags, &pa);
		if (st != SMTP_PARSE_OK)
			fail_msg("case %zu \"%s\": status %d (%s)", i, c->arg, st,
			    smtp_parse_status_text(st));
		assert_string_equal(pa.path.mailbox, c->mailbox);
		assert_string_equal(pa.path.domain, c->domain);
		assert_string_equal(pa.path.route, c->route);
		assert_int_equal(pa.path.quoted_local, !!(c->bits & P_QUOTED));
		assert_int_equal(pa.path.domain_is_literal, !!(c->bits & P_LITERAL));
		assert_int_equal(pa.path.has_utf8, !!(c->bits & P_UTF8));
		assert_int_equal(pa.path.is_postmaster, !!(c->bits & P_POSTMASTER));
		assert_int_equal(pa.path.is_null, !!(c->bits & P_NULL));
		assert_int_equal(pa.nparams, c->nparams);
		if (c->bits & (P_NULL | P_POSTMASTER)) {
			assert_int_equal(pa.path.local_len, strlen(c->mailbox));
			continue;
		}
		/* domain sits right after the '@' that ends the local part. */
		assert_int_equal(pa.path.mailbox[pa.path.local_len], '@');
		assert_ptr_equal(pa.path.domain, pa.path.mailbox + pa.path.local_len + 1);
	}
}

static void
test_path_bad(void **state)
{
	struct smtp_path_arg	 pa;
	size_t			 i;

	for (i = 0; i < nitems(path_bad); i++) {
		const struct path_bad	*c = &path_bad[i];
		enum smtp_parse_status	 st;

		st = path_arg_parse_copy(c->arg, c->len, c->kw, c->flags, &pa);
		if (st != c->st)
			fail_msg("case %zu \"%s\": status %d (%s), want %d (%s)", i, c->arg, st,
			    smtp_parse_status_text(st), c->st, smtp_parse_status_text(c->st));
	}
}

/*
 * A line cut anywhere never yields another address: a prefix either
 * fails or, if the cut fell among the parameters, gives the same path.
 */
static void
test_path_prefixes(void **state)
{
	struct smtp_path_arg	 pa;
	size_t			 i, n, len;

	for (i = 0; i < nitems(path_good); i++) {
		const struct path_good	*c = &path_good[i];

		len = strlen(c->arg);
		for (n = 0; n < len; n++) {
			if (path_arg_parse_copy(c->arg, n, c->kw, c->flags, &pa) != SMTP_PARSE_OK)
				continue;
			assert_string_equal(pa.path.mailbox, c->mailbox);
			assert_string_equal(pa.path.route, c->route);
			assert_true(pa.nparams <= c->nparams);
		}
	}
	for (i = 0; i < nitems(path_bad); i++)
		for (n = 0; n < path_bad[i].len; n++)
			(void)path_arg_parse_copy(path_bad[i].arg, n, path_bad[i].kw,
			    path_bad[i].flags, &pa);
}

static void
test_path_relay_vectors(void **state)
{
	struct smtp_path_arg	 pa;

	/* '%' and '!' stay in the local part; the domain is the local one. */
	assert_int_equal(smtp_path_arg_parse(L("TO:<user%evil.example@local.example>"), "TO",
	    F_PM, &pa), SMTP_PARSE_OK);
	assert_int_equal(pa.path.local_len, strlen("user%evil.example"));
	assert_memory_equal(pa.path.mailbox, "user%evil.example", pa.path.local_len);
	assert_string_equal(pa.path.domain, "local.example");
	assert_false(pa.path.quoted_local);

	assert_int_equal(smtp_path_arg_parse(L("TO:<evil.example!user@local.example>"), "TO",
	    F_PM, &pa), SMTP_PARSE_OK);
	assert_memory_equal(pa.path.mailbox, "evil.example!user", pa.path.local_len);
	assert_string_equal(pa.path.domain, "local.example");

	/* The route is reported, not dropped and not followed. */
	assert_int_equal(smtp_path_arg_parse(L("TO:<@local.example:user@evil.example>"), "TO",
	    F_PM, &pa), SMTP_PARSE_OK);
	assert_string_equal(pa.path.route, "@local.example");
	assert_string_equal(pa.path.mailbox, "user@evil.example");
	assert_string_equal(pa.path.domain, "evil.example");

	/* The '@' inside quotes is not the domain separator. */
	assert_int_equal(smtp_path_arg_parse(L("TO:<\"user@evil.example\"@local.example>"), "TO",
	    F_PM, &pa), SMTP_PARSE_OK);
	assert_true(pa.path.quoted_local);
	assert_int_equal(pa.path.local_len, strlen("\"user@evil.example\""));
	assert_string_equal(pa.path.domain, "local.example");

	/* Quoted local part with an escaped quote and '@'. */
	assert_int_equal(smtp_path_arg_parse(L("TO:<\"a\\\"@evil.example\"@local.example>"), "TO",
	    F_PM, &pa), SMTP_PARSE_OK);
	assert_string_equal(pa.path.domain, "local.example");
	assert_string_equal(pa.path.mailbox, "\"a\\\"@evil.example\"@local.example");
}

static void
test_params(void **state)
{
	struct smtp_path_arg	 pa;
	const char		*arg = "FROM:<a@b.example> SIZE=1000  body=8BITMIME SMTPUTF8 "
				    "ENVID=x+2By";
	char			 line[512];
	size_t			 i, n;

	assert_int_equal(smtp_path_arg_parse(arg, strlen(arg), "FROM", 0, &pa), SMTP_PARSE_OK);
	assert_int_equal(pa.nparams, 4);
	assert_ptr_equal(pa.params[0].keyword, strstr(arg, "SIZE"));
	assert_int_equal(pa.params[0].keyword_len, 4);
	assert_int_equal(pa.params[0].value_len, 4);
	assert_memory_equal(pa.params[0].value, "1000", 4);
	assert_true(smtp_param_is(&pa.params[0], "SIZE"));
	assert_true(smtp_param_is(&pa.params[0], "size"));
	assert_false(smtp_param_is(&pa.params[0], "SIZ"));
	assert_false(smtp_param_is(&pa.params[0], "SIZES"));
	assert_true(smtp_param_is(&pa.params[1], "BODY"));
	assert_memory_equal(pa.params[1].keyword, "body", 4);
	assert_memory_equal(pa.params[1].value, "8BITMIME", 8);
	assert_true(smtp_param_is(&pa.params[2], "SMTPUTF8"));
	assert_null(pa.params[2].value);
	assert_int_equal(pa.params[2].value_len, 0);
	assert_true(smtp_param_is(&pa.params[3], "ENVID"));
	assert_int_equal(pa.params[3].value_len, 5);

	/* SMTP_PARAMS_MAX parameters pass, one more does not. */
	n = (size_t)snprintf(line, sizeof(line), "FROM:<a@b>");
	for (i = 0; i < SMTP_PARAMS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " P%zu=%zu", i, i);
	assert_int_equal(path_arg_parse_copy(line, n, "FROM", 0, &pa), SMTP_PARSE_OK);
	assert_int_equal(pa.nparams, SMTP_PARAMS_MAX);
	n += (size_t)snprintf(line + n, sizeof(line) - n, " LAST");
	assert_int_equal(path_arg_parse_copy(line, n, "FROM", 0, &pa),
	    SMTP_PARSE_TOO_MANY_PARAMS);
	/* Trailing spaces after the last one allowed are not a parameter. */
	n = (size_t)snprintf(line, sizeof(line), "FROM:<a@b>");
	for (i = 0; i < SMTP_PARAMS_MAX; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, " K%zu", i);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "   ");
	assert_int_equal(path_arg_parse_copy(line, n, "FROM", 0, &pa), SMTP_PARSE_OK);
	assert_int_equal(pa.nparams, SMTP_PARAMS_MAX);
}

static void
test_lengths(void **state)
{
	struct smtp_path_arg	 pa;
	struct smtp_path	 path;
	char			 dom[400], line[1200];
	size_t			 n;

	/* Labels: 63 bytes pass, 64 and 65 do not. */
	for (n = 62; n <= 65; n++) {
		memset(dom, 'x', n);
		dom[n] = '\0';
		snprintf(line, sizeof(line), "TO:<a@%s.example>", dom);
		assert_int_equal(path_arg_parse_copy(line, strlen(line), "TO", 0, &pa),
		    n <= SMTP_LABEL_MAX ? SMTP_PARSE_OK : SMTP_PARSE_TOO_LONG);
		snprintf(line, sizeof(line), "%s.example", dom);
		assert_int_equal(smtp_domain_check(line, strlen(line), 0),
		    n <= SMTP_LABEL_MAX ? SMTP_PARSE_OK : SMTP_PARSE_TOO_LONG);
		snprintf(line, sizeof(line), "example.%s", dom);
		assert_int_equal(smtp_domain_check(line, strlen(line), 0),
		    n <= SMTP_LABEL_MAX ? SMTP_PARSE_OK : SMTP_PARSE_TOO_LONG);
	}
	/* Domains: 255 bytes pass, 256 do not. */
	make_domain(dom, 255, 63);
	assert_int_equal(smtp_domain_check(dom, 255, 0), SMTP_PARSE_OK);
	make_domain(dom, 256, 50);
	assert_int_equal(smtp_domain_check(dom, 256, 0), SMTP_PARSE_TOO_LONG);
	make_domain(dom, 300, 20);
	snprintf(line, sizeof(line), "TO:<@%s:a@b>", dom);
	assert_int_equal(path_arg_parse_copy(line, strlen(line), "TO", 0, &pa),
	    SMTP_PARSE_TOO_LONG);

	/* Paths: 256 bytes with the brackets pass, 257 do not. */
	make_domain(dom, 252, 63);
	snprintf(line, sizeof(line), "TO:<u@%s>", dom);
	assert_int_equal(strlen(line) - 3, SMTP_PATH_MAX);
	assert_int_equal(path_arg_parse_copy(line, strlen(line), "TO", 0, &pa), SMTP_PARSE_OK);
	assert_int_equal(strlen(pa.path.mailbox), SMTP_PATH_MAX - 2);
	assert_int_equal(smtp_path_parse(line + 3, strlen(line + 3), 0, &path), SMTP_PARSE_OK);
	make_domain(dom, 253, 63);
	snprintf(line, sizeof(line), "TO:<u@%s>", dom);
	assert_int_equal(path_arg_parse_copy(line, strlen(line), "TO", 0, &pa),
	    SMTP_PARSE_TOO_LONG);
	/* A long local part alone. */
	memset(line, 'l', sizeof(line));
	memcpy(line, "TO:<", 4);
	memcpy(line + sizeof(line) - 4, "@b>", 3);
	assert_int_equal(path_arg_parse_copy(line, sizeof(line) - 1, "TO", 0, &pa),
	    SMTP_PARSE_TOO_LONG);
	/* The route counts too. */
	make_domain(dom, 200, 63);
	snprintf(line, sizeof(line), "TO:<@%s:u@%.60s>", dom, dom);
	assert_int_equal(path_arg_parse_copy(line, strlen(line), "TO", 0, &pa),
	    SMTP_PARSE_TOO_LONG);
	snprintf(line, sizeof(line), "TO:<@%s:u@%.40s>", dom, dom);
	assert_int_equal(path_arg_parse_copy(line, strlen(line), "TO", 0, &pa), SMTP_PARSE_OK);
	assert_int_equal(strlen(pa.path.route), 201);
}

static void
test_path_parse_bare(void **state)
{
	struct smtp_path	 path;

	assert_int_equal(smtp_path_parse(L("<a@b.example>"), 0, &path), SMTP_PARSE_OK);
	assert_string_equal(path.mailbox, "a@b.example");
	assert_string_equal(path.domain, "b.example");
	assert_int_equal(smtp_path_parse(L("<>"), F_NULL, &path), SMTP_PARSE_OK);
	assert_true(path.is_null);
	assert_string_equal(path.domain, "");
	assert_int_equal(smtp_path_parse(L("<>"), 0, &path), SMTP_PARSE_NULL_NOT_ALLOWED);
	assert_int_equal(smtp_path_parse(L("<postmaster>"), F_PM, &path), SMTP_PARSE_OK);
	assert_true(path.is_postmaster);
	assert_int_equal(smtp_path_parse(L("a@b.example"), 0, &path), SMTP_PARSE_NO_BRACKETS);
	assert_int_equal(smtp_path_parse(L(""), 0, &path), SMTP_PARSE_NO_BRACKETS);
	/* Nothing may follow a bare path, not even a parameter. */
	assert_int_equal(smtp_path_parse(L("<a@b.example> SIZE=1"), 0, &path),
	    SMTP_PARSE_BAD_SYNTAX);
	assert_int_equal(smtp_path_parse(L("<a@b.example> "), 0, &path), SMTP_PARSE_BAD_SYNTAX);
}

static void
test_domain_check(void **state)
{
	size_t	 i;

	for (i = 0; i < nitems(domain_cases); i++) {
		const struct domain_case *c = &domain_cases[i];
		char			*copy = copy_exact(c->s, c->len);
		enum smtp_parse_status	 st;

		st = smtp_domain_check(copy, c->len, c->utf8);
		free(copy);
		if (st != c->st)
			fail_msg("case %zu \"%s\": status %d, want %d", i, c->s, st, c->st);
	}
}

static void
test_xtext_valid(void **state)
{
	static const struct {
		const char	*s;	/* input */
		int		 ok;	/* expected */
	} cases[] = {
		{ "", 1 }, { "abc", 1 }, { "a+2Bb", 1 }, { "+3D", 1 }, { "+00+FF", 1 },
		{ "rfc822;a@b", 1 }, { "!~", 1 },
		{ "a+2b", 0 }, { "a+", 0 }, { "a+2", 0 }, { "a+ZZ", 0 }, { "a+G0", 0 },
		{ "a=b", 0 }, { "a b", 0 }, { "a\tb", 0 }, { "a\x7f", 0 }, { "\xc3\xa9", 0 },
		{ "+", 0 }, { "++2B", 0 },
	};
	size_t	 i;
	char	*copy;

	for (i = 0; i < nitems(cases); i++) {
		copy = copy_exact(cases[i].s, strlen(cases[i].s));
		if (smtp_xtext_valid(copy, strlen(cases[i].s)) != cases[i].ok)
			fail_msg("case %zu \"%s\": want %d", i, cases[i].s, cases[i].ok);
		free(copy);
	}
	/* NUL is not xtext, and the length is honoured. */
	assert_false(smtp_xtext_valid("a\0b", 3));
	assert_true(smtp_xtext_valid("ab=", 2));
	assert_false(smtp_xtext_valid("a+2B", 3));
}

static void
test_status_text(void **state)
{
	int	 a, b;

	for (a = SMTP_PARSE_OK; a <= SMTP_PARSE_TOO_MANY_PARAMS; a++) {
		const char	*t = smtp_parse_status_text((enum smtp_parse_status)a);

		assert_non_null(t);
		assert_true(strlen(t) > 0 && strlen(t) < 80);
		assert_null(strpbrk(t, "\r\n"));
		for (b = SMTP_PARSE_OK; b < a; b++)
			assert_string_not_equal(t,
			    smtp_parse_status_text((enum smtp_parse_status)b));
	}
	assert_string_equal(smtp_parse_status_text(SMTP_PARSE_NO_BRACKETS),
	    "Path must be enclosed in angle brackets");
	assert_string_equal(smtp_parse_status_text(SMTP_PARSE_TOO_MANY_PARAMS),
	    "Too many parameters");
	assert_non_null(smtp_parse_status_text((enum smtp_parse_status)999));
}

/* Seeded mutations of good inputs: never a crash, and OK means sane output. */
static void
test_mutations(void **state)
{
	static const char	 alphabet[] = "<>@.:,\"\\[] =+-aZ9%!\t\r\n\0\x80\xc3\xa9\xff";
	uint32_t		 seed = 0x5eed1234;
	char			 buf[600];
	size_t			 iter, i, len;

	for (iter = 0; iter < 40000; iter++) {
		const struct path_good	*c = &path_good[iter % nitems(path_good)];
		struct smtp_path_arg	 pa;
		struct smtp_command	 cmd;
		char			*copy;
		int			 flags = (int)(rng_next(&seed) & 7);

		len = strlen(c->arg);
		memcpy(buf, c->arg, len);
		for (i = rng_next(&seed) % 4; i > 0; i--) {
			size_t	 at = rng_next(&seed) % (len + 1);
			char	 ch = alphabet[rng_next(&seed) % (sizeof(alphabet) - 1)];

			switch (rng_next(&seed) % 3) {
			case 0:	/* replace */
				if (at < len)
					buf[at] = ch;
				break;
			case 1:	/* insert */
				if (len + 1 < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = ch;
					len++;
				}
				break;
			default: /* delete */
				if (at < len) {
					memmove(buf + at, buf + at + 1, len - at - 1);
					len--;
				}
				break;
			}
		}
		if (path_arg_parse_copy(buf, len, c->kw, flags, &pa) == SMTP_PARSE_OK) {
			size_t	 mlen = strlen(pa.path.mailbox);

			assert_true(mlen <= SMTP_PATH_MAX - 2);
			for (i = 0; i < mlen; i++)
				assert_true((unsigned char)pa.path.mailbox[i] > ' ' ||
				    (pa.path.quoted_local && pa.path.mailbox[i] == ' '));
			assert_true(pa.path.has_utf8 == 0 || (flags & F_U8));
			assert_true(pa.nparams <= SMTP_PARAMS_MAX);
		}
		copy = copy_exact(buf, len);
		(void)smtp_command_parse(copy, len, &cmd);
		(void)smtp_domain_check(copy, len, flags & F_U8);
		(void)smtp_xtext_valid(copy, len);
		free(copy);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_table),
		cmocka_unit_test(test_command_prefixes),
		cmocka_unit_test(test_verb_names),
		cmocka_unit_test(test_path_good),
		cmocka_unit_test(test_path_bad),
		cmocka_unit_test(test_path_prefixes),
		cmocka_unit_test(test_path_relay_vectors),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_path_parse_bare),
		cmocka_unit_test(test_domain_check),
		cmocka_unit_test(test_xtext_valid),
		cmocka_unit_test(test_status_text),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests_name("smtp_parse", tests, NULL, NULL);
}
