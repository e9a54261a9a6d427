/*
 * fuzz_dsn.c - libFuzzer harness for the DSN composer (proxy/dsn.c) and
 * the destination parser (proxy/mx_plan.c).
 *
 * Input: one flags byte (RET=FULL, SMTPUTF8, delayed, remote MTA given),
 * then the text used as remote reply, recipient and destination up to the
 * first NUL, then the original message's bytes.  Whatever they hold, the
 * DSN must be in wire form (CRLF only, lines <= 998, no lone "."), its
 * boundary must occur exactly at the four delimiter lines, and without
 * SMTPUTF8 nothing from the reply may bring 8-bit bytes into parts 1-2.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsn.h"
#include "mx.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void	 check_wire(const struct dsn_message *);
static void	 check_boundary(const struct dsn_message *);

static void
check_wire(const struct dsn_message *m)
{
	size_t	 i, start = 0;

	if (m->len < 2 || memcmp(m->data + m->len - 2, "\r\n", 2) != 0)
		abort();
	for (i = 0; i < m->len; i++) {
		if (m->data[i] == '\0')
			abort();
		if (m->data[i] == '\r' && (i + 1 == m->len || m->data[i + 1] != '\n'))
			abort();
		if (m->data[i] != '\n')
			continue;
		if (i == 0 || m->data[i - 1] != '\r' || i - 1 - start > 998)
			abort();
		if (i - 1 - start == 1 && m->data[start] == '.')
			abort();
		start = i + 1;
	}
}

/* "--boundary" starts exactly four lines: three delimiters and the close. */
static void
check_boundary(const struct dsn_message *m)
{
	const char	*p = memmem(m->data, m->len, "boundary=\"", 10), *q;
	char		 delim[100];
	size_t		 i, n = 0, dlen;

	if (p == NULL || (q = memchr(p + 10, '"', 80)) == NULL)
		abort();
	dlen = (size_t)(q - (p + 10)) + 2;
	memcpy(delim, "--", 2);
	memcpy(delim + 2, p + 10, dlen - 2);
	for (i = 0; i + dlen <= m->len; i++)
		if ((i == 0 || m->data[i - 1] == '\n') && memcmp(m->data + i, delim, dlen) == 0)
			n++;
	if (n != 4)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn_rcpt		 rc = { 0 };
	struct dsn_report	 r = { 0 };
	struct dsn_message	 m;
	struct mx_dest		 d;
	const uint8_t		*nul;
	char			*text, err[300];
	size_t			 tlen;

	if (size < 1)
		return 0;
	nul = memchr(data + 1, '\0', size - 1);
	tlen = nul ? (size_t)(nul - (data + 1)) : size - 1;
	if ((text = malloc(tlen + 1)) == NULL)
		abort();
	memcpy(text, data + 1, tlen);
	text[tlen] = '\0';
	if (mx_dest_parse(text, data[0] & 1, &d, err, sizeof(err)) == 0)
		mx_dest_clear(&d);
	rc.addr = text;
	rc.action = data[0] & 4 ? DSN_ACTION_DELAYED : DSN_ACTION_FAILED;
	rc.status = text;
	rc.remote_mta = data[0] & 8 ? text : NULL;
	rc.diagnostic = text;
	rc.diagnostic_smtp = 1;
	rc.orcpt = text;
	r.reporting_mta = "mx.test";
	r.sender = "a@example.org";
	r.envid = text;
	r.ret_full = data[0] & 1;
	r.smtputf8 = (data[0] & 2) != 0;
	r.seed = 7;
	r.rcpts = &rc;
	r.nrcpts = 1;
	if (dsn_compose(&r, nul ? (const char *)nul + 1 : "",
	    nul ? size - (size_t)(nul + 1 - data) : 0, &m) != 0)
		abort();
	check_wire(&m);
	check_boundary(&m);
	dsn_message_clear(&m);
	free(text);
	return 0;
}
