/*
 * test_proxy_proto.c - unit tests for proxy/proxy_proto.c, the PROXY
 * protocol v1/v2 header parser.
 *
 * Every vector is fed whole, one byte at a time, in steps of 2..7 bytes
 * and in every 2-way split, each piece from an exact-size heap copy so a
 * read past its end shows under AddressSanitizer.  Valid headers are
 * followed by SMTP bytes, which must never be consumed: the header length
 * and the bytes used must match the header exactly, every way.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "proxy_proto.h"

#define L(s)		(const unsigned char *)(s), (sizeof(s) - 1)
#define SMTP_TAIL	"EHLO client.example\r\n"

/* What one parse produced. */
struct outcome {
	enum proxy_proto_status	 status;	/* final */
	size_t			 used;		/* bytes taken over all feeds */
	struct proxy_proto	 pp;		/* parser afterwards */
};

static const unsigned char v2sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* Feed in pieces cut at the offsets in cuts[] (ascending, < len). */
static void
feed_cuts(unsigned int versions, const unsigned char *in, size_t len, const size_t *cuts,
    size_t ncuts, struct outcome *o)
{
	size_t	 start = 0, i, used;

	proxy_proto_init(&o->pp, versions);
	o->status = PROXY_PROTO_NEED_MORE;
	o->used = 0;
	for (i = 0; i <= ncuts && o->status == PROXY_PROTO_NEED_MORE; i++) {
		size_t		 end = i < ncuts ? cuts[i] : len;
		unsigned char	*piece;

		if (end <= start)
			continue;
		piece = malloc(end - start);
		assert_non_null(piece);
		memcpy(piece, in + start, end - start);
		o->status = proxy_proto_feed(&o->pp, piece, end - start, &used);
		free(piece);
		assert_true(used <= end - start);
		if (o->status == PROXY_PROTO_NEED_MORE)
			assert_int_equal(used, end - start);
		o->used += used;
		start = end;
	}
}

static void
feed_step(unsigned int versions, const unsigned char *in, size_t len, size_t step,
    struct outcome *o)
{
	size_t	*cuts = calloc(len + 1, sizeof(*cuts)), n = 0, at;

	assert_non_null(cuts);
	for (at = step; at < len; at += step)
		cuts[n++] = at;
	feed_cuts(versions, in, len, cuts, n, o);
	free(cuts);
}

static void
assert_same(const struct outcome *a, const struct outcome *b)
{
	assert_int_equal(a->status, b->status);
	if (a->status == PROXY_PROTO_ERROR) {
		assert_string_equal(a->pp.error, b->pp.error);
		return;
	}
	assert_int_equal(a->used, b->used);
	if (a->status != PROXY_PROTO_DONE)
		return;
	assert_int_equal(a->pp.length, b->pp.length);
	assert_int_equal(a->pp.version, b->pp.version);
	assert_int_equal(a->pp.command, b->pp.command);
	assert_int_equal(a->pp.addrlen, b->pp.addrlen);
	assert_memory_equal(&a->pp.src, &b->pp.src, sizeof(a->pp.src));
	assert_memory_equal(&a->pp.dst, &b->pp.dst, sizeof(a->pp.dst));
}

/* Parse whole, then every other way; all must agree with the whole parse. */
static void
parse_all_ways(unsigned int versions, const unsigned char *in, size_t len, struct outcome *o)
{
	struct outcome	 b;
	size_t		 step, cut;

	feed_cuts(versions, in, len, NULL, 0, o);
	for (step = 1; step <= 7; step++) {
		feed_step(versions, in, len, step, &b);
		assert_same(o, &b);
	}
	for (cut = 1; cut < len; cut++) {
		feed_cuts(versions, in, len, &cut, 1, &b);
		assert_same(o, &b);
	}
}

static void
addr_text(const struct sockaddr_storage *ss, char *buf, size_t size, int *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size);
		*port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)size);
		*port = ntohs(sin6->sin6_port);
	} else {
		snprintf(buf, size, "family %d", ss->ss_family);
		*port = -1;
	}
}

/*
 * A valid header: with SMTP bytes after it, every way of feeding gives
 * DONE, uses exactly hlen bytes and yields these addresses (src == NULL:
 * LOCAL, use the socket's).
 */
static void
expect_ok(unsigned int versions, const unsigned char *hdr, size_t hlen, int version,
    const char *src, int sport, const char *dst, int dport)
{
	size_t		 tlen = sizeof(SMTP_TAIL) - 1;
	unsigned char	*in = malloc(hlen + tlen);
	struct outcome	 o;
	char		 text[INET6_ADDRSTRLEN + 16];
	int		 port;

	assert_non_null(in);
	memcpy(in, hdr, hlen);
	memcpy(in + hlen, SMTP_TAIL, tlen);
	parse_all_ways(versions, in, hlen + tlen, &o);
	if (o.status != PROXY_PROTO_DONE)
		fail_msg("expected DONE, got %d (%s)", o.status,
		    o.pp.error != NULL ? o.pp.error : "-");
	assert_int_equal(o.used, hlen);
	assert_int_equal(o.pp.length, hlen);
	assert_int_equal(o.pp.version, version);
	if (src == NULL) {
		assert_int_equal(o.pp.command, PROXY_PROTO_LOCAL);
	} else {
		assert_int_equal(o.pp.command, PROXY_PROTO_PROXY);
		addr_text(&o.pp.src, text, sizeof(text), &port);
		assert_string_equal(text, src);
		assert_int_equal(port, sport);
		addr_text(&o.pp.dst, text, sizeof(text), &port);
		assert_string_equal(text, dst);
		assert_int_equal(port, dport);
		assert_int_equal(o.pp.addrlen, o.pp.src.ss_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	}
	/* Done stays done and takes nothing more. */
	{
		size_t	 used = 99;

		assert_int_equal(proxy_proto_feed(&o.pp, in, hlen + tlen, &used),
		    PROXY_PROTO_DONE);
		assert_int_equal(used, 0);
	}
	free(in);
}

/* An invalid header: every way of feeding gives ERROR with this reason. */
static void
expect_error(unsigned int versions, const unsigned char *in, size_t len, const char *why)
{
	struct outcome	 o;

	parse_all_ways(versions, in, len, &o);
	if (o.status != PROXY_PROTO_ERROR)
		fail_msg("expected ERROR \"%s\", got %d", why, o.status);
	assert_string_equal(o.pp.error, why);
}

/* A header cut short: NEED_MORE every way, everything used. */
static void
expect_more(unsigned int versions, const unsigned char *in, size_t len)
{
	struct outcome	 o;

	parse_all_ways(versions, in, len, &o);
	assert_int_equal(o.status, PROXY_PROTO_NEED_MORE);
	assert_int_equal(o.used, len);
}

/* --- v2 builder ------------------------------------------------------------- */

struct v2 {
	unsigned char	 b[PROXY_PROTO_V2_HEAD + PROXY_PROTO_V2_LEN_MAX + 64];
	size_t		 len;
};

static void
v2_start(struct v2 *h, unsigned char ver_cmd, unsigned char fam)
{
	memcpy(h->b, v2sig, 12);
	h->b[12] = ver_cmd;
	h->b[13] = fam;
	h->len = PROXY_PROTO_V2_HEAD;
}

static void
v2_add(struct v2 *h, const void *p, size_t n)
{
	memcpy(h->b + h->len, p, n);
	h->len += n;
}

/* Set the length field from what was added. */
static void
v2_close(struct v2 *h)
{
	size_t	 n = h->len - PROXY_PROTO_V2_HEAD;

	h->b[14] = (unsigned char)(n >> 8);
	h->b[15] = (unsigned char)n;
}

static void
v2_inet(struct v2 *h, const char *src, const char *dst, int sport, int dport)
{
	unsigned char	 a[4];
	uint16_t	 p;

	inet_pton(AF_INET, src, a);
	v2_add(h, a, 4);
	inet_pton(AF_INET, dst, a);
	v2_add(h, a, 4);
	p = htons((uint16_t)sport);
	v2_add(h, &p, 2);
	p = htons((uint16_t)dport);
	v2_add(h, &p, 2);
}

static void
v2_inet6(struct v2 *h, const char *src, const char *dst, int sport, int dport)
{
	unsigned char	 a[16];
	uint16_t	 p;

	inet_pton(AF_INET6, src, a);
	v2_add(h, a, 16);
	inet_pton(AF_INET6, dst, a);
	v2_add(h, a, 16);
	p = htons((uint16_t)sport);
	v2_add(h, &p, 2);
	p = htons((uint16_t)dport);
	v2_add(h, &p, 2);
}

static void
v2_tlv(struct v2 *h, unsigned char type, size_t n)
{
	unsigned char	 t[3] = { type, (unsigned char)(n >> 8), (unsigned char)n };
	size_t		 i;

	v2_add(h, t, 3);
	for (i = 0; i < n; i++)
		h->b[h->len++] = (unsigned char)('a' + i % 26);
}

/* --- v1 --------------------------------------------------------------------- */

static void
test_v1_valid(void **state)
{
	expect_ok(PROXY_PROTO_V1, L("PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n"), 1,
	    "192.0.2.7", 56324, "198.51.100.1", 25);
	expect_ok(PROXY_PROTO_ANY, L("PROXY TCP4 192.0.2.7 198.51.100.1 0 65535\r\n"), 1,
	    "192.0.2.7", 0, "198.51.100.1", 65535);
	expect_ok(PROXY_PROTO_ANY, L("PROXY TCP6 2001:db8::7 2001:db8::1 1024 587\r\n"), 1,
	    "2001:db8::7", 1024, "2001:db8::1", 587);
	expect_ok(PROXY_PROTO_V1, L("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
	    1, "255.255.255.255", 65535, "255.255.255.255", 65535);
	/* The longest TCP6 line (104 bytes). */
	expect_ok(PROXY_PROTO_V1, L("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"), 1,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	expect_ok(PROXY_PROTO_V1, L("PROXY UNKNOWN\r\n"), 1, NULL, 0, NULL, 0);
	/* UNKNOWN: the rest of the line is ignored; the worst case is 107 bytes. */
	expect_ok(PROXY_PROTO_V1, L("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"), 1, NULL, 0, NULL, 0);
	expect_ok(PROXY_PROTO_V1, L("PROXY UNKNOWN whatever\r\n"), 1, NULL, 0, NULL, 0);
}

static void
test_v1_malformed(void **state)
{
	expect_error(PROXY_PROTO_V1, L("EHLO x\r\n"), "no PROXY protocol header");
	expect_error(PROXY_PROTO_V1, L("PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    "bad v1 signature");
	expect_error(PROXY_PROTO_V1, L("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    "v1 line is not \"PROXY TCP4|TCP6 src dst sport dport\"");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"),
	    "v1 line is not \"PROXY TCP4|TCP6 src dst sport dport\"");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
	    "v1 line is not \"PROXY TCP4|TCP6 src dst sport dport\"");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"),
	    "v1 line is not \"PROXY TCP4|TCP6 src dst sport dport\"");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
	    "v1 line is not \"PROXY TCP4|TCP6 src dst sport dport\"");
	expect_error(PROXY_PROTO_V1, L("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    "v1 protocol is not TCP4, TCP6 or UNKNOWN");
	expect_error(PROXY_PROTO_V1, L("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    "v1 protocol is not TCP4, TCP6 or UNKNOWN");
	expect_error(PROXY_PROTO_V1, L("PROXY UNKNOWNX\r\n"),
	    "v1 line is not \"PROXY TCP4|TCP6 src dst sport dport\"");
	/* Addresses must parse for the family. */
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n"),
	    "bad v1 address for the protocol");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n"),
	    "bad v1 address for the protocol");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"),
	    "bad v1 address for the protocol");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"),
	    "bad v1 address for the protocol");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"),
	    "bad v1 address for the protocol");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 host.example 5.6.7.8 1 2\r\n"),
	    "bad v1 address for the protocol");
	/* Ports: 0-65535, no leading zeros, digits only. */
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 65536 25\r\n"),
	    "bad v1 port");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 025 25\r\n"),
	    "bad v1 port");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 00 25\r\n"),
	    "bad v1 port");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 -1 25\r\n"),
	    "bad v1 port");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 123456 25\r\n"),
	    "bad v1 port");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 +25 25\r\n"),
	    "bad v1 port");
	/* Line ends: CRLF only. */
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
	    "v1 line not ended by CRLF");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n"),
	    "v1 line with a control or non-ASCII byte");
	expect_error(PROXY_PROTO_V1, L("PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n"),
	    "v1 line with a control or non-ASCII byte");
	expect_error(PROXY_PROTO_V1, L("PROXY UNKNOWN \x00\r\n"),
	    "v1 line with a control or non-ASCII byte");
	expect_error(PROXY_PROTO_V1, L("PROXY UNKNOWN \xff\r\n"),
	    "v1 line with a control or non-ASCII byte");
	/* v1 on a v2-only listener. */
	expect_error(PROXY_PROTO_V2, L("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
	    "v1 header on a v2-only listener");
}

static void
test_v1_length(void **state)
{
	unsigned char	 line[200];
	size_t		 n;

	/* 107 bytes without CRLF: refused at the 107th byte, whatever follows. */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	expect_error(PROXY_PROTO_V1, line, 107, "v1 line without CRLF within 107 bytes");
	expect_error(PROXY_PROTO_V1, line, sizeof(line),
	    "v1 line without CRLF within 107 bytes");
	/* 107 with the CRLF is fine; 108 is not. */
	memcpy(line + 105, "\r\n", 2);
	expect_ok(PROXY_PROTO_V1, line, 107, 1, NULL, 0, NULL, 0);
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	memcpy(line + 106, "\r\n", 2);
	expect_error(PROXY_PROTO_V1, line, 108, "v1 line without CRLF within 107 bytes");
	/* Truncated anywhere: more is needed, nothing refused yet. */
	for (n = 1; n < sizeof("PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n") - 1; n++)
		expect_more(PROXY_PROTO_ANY,
		    (const unsigned char *)"PROXY TCP4 192.0.2.7 198.51.100.1 56324 25\r\n", n);
}

/* --- v2 --------------------------------------------------------------------- */

static void
test_v2_valid(void **state)
{
	struct v2	 h;

	v2_start(&h, 0x21, 0x11);
	v2_inet(&h, "192.0.2.7", "198.51.100.1", 56324, 25);
	v2_close(&h);
	expect_ok(PROXY_PROTO_V2, h.b, h.len, 2, "192.0.2.7", 56324, "198.51.100.1", 25);
	expect_ok(PROXY_PROTO_ANY, h.b, h.len, 2, "192.0.2.7", 56324, "198.51.100.1", 25);

	v2_start(&h, 0x21, 0x21);
	v2_inet6(&h, "2001:db8::7", "2001:db8::1", 40000, 587);
	v2_close(&h);
	expect_ok(PROXY_PROTO_ANY, h.b, h.len, 2, "2001:db8::7", 40000, "2001:db8::1", 587);

	/* LOCAL (health checks), with or without an address block. */
	v2_start(&h, 0x20, 0x00);
	v2_close(&h);
	expect_ok(PROXY_PROTO_V2, h.b, h.len, 2, NULL, 0, NULL, 0);
	v2_start(&h, 0x20, 0x11);
	v2_inet(&h, "192.0.2.7", "198.51.100.1", 1, 2);
	v2_close(&h);
	expect_ok(PROXY_PROTO_V2, h.b, h.len, 2, NULL, 0, NULL, 0);
	/* PROXY with UNSPEC family or transport, or AF_UNIX: the socket's addresses. */
	v2_start(&h, 0x21, 0x00);
	v2_close(&h);
	expect_ok(PROXY_PROTO_V2, h.b, h.len, 2, NULL, 0, NULL, 0);
	v2_start(&h, 0x21, 0x10);
	v2_inet(&h, "192.0.2.7", "198.51.100.1", 1, 2);
	v2_close(&h);
	expect_ok(PROXY_PROTO_V2, h.b, h.len, 2, NULL, 0, NULL, 0);
	v2_start(&h, 0x21, 0x31);
	memset(h.b + h.len, '/', 216);
	h.len += 216;
	v2_close(&h);
	expect_ok(PROXY_PROTO_V2, h.b, h.len, 2, NULL, 0, NULL, 0);
}

static void
test_v2_tlv(void **state)
{
	struct v2	 h;

	/* Several TLVs, one empty, one large: all skipped. */
	v2_start(&h, 0x21, 0x11);
	v2_inet(&h, "203.0.113.9", "198.51.100.1", 50000, 25);
	v2_tlv(&h, 0x04, 0);		/* NOOP */
	v2_tlv(&h, 0x05, 16);		/* UNIQUE_ID */
	v2_tlv(&h, 0x20, 300);		/* SSL */
	v2_tlv(&h, 0xee, 1);
	v2_close(&h);
	expect_ok(PROXY_PROTO_V2, h.b, h.len, 2, "203.0.113.9", 50000, "198.51.100.1", 25);

	/* Up to the length limit exactly. */
	v2_start(&h, 0x21, 0x21);
	v2_inet6(&h, "2001:db8::9", "2001:db8::1", 1, 25);
	v2_tlv(&h, 0xe0, PROXY_PROTO_V2_LEN_MAX - 36 - 3);
	v2_close(&h);
	expect_ok(PROXY_PROTO_V2, h.b, h.len, 2, "2001:db8::9", 1, "2001:db8::1", 25);

	/* A TLV value longer than the header. */
	v2_start(&h, 0x21, 0x11);
	v2_inet(&h, "203.0.113.9", "198.51.100.1", 50000, 25);
	v2_tlv(&h, 0x05, 4);
	v2_close(&h);
	h.b[PROXY_PROTO_V2_HEAD + 12 + 2] = 5;
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 TLV runs past the header");
	/* A TLV header cut by the length. */
	v2_start(&h, 0x21, 0x11);
	v2_inet(&h, "203.0.113.9", "198.51.100.1", 50000, 25);
	v2_add(&h, "\x01\x00", 2);
	v2_close(&h);
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 TLV cut short by the header length");
}

static void
test_v2_malformed(void **state)
{
	struct v2	 h;
	size_t		 n;

	v2_start(&h, 0x21, 0x11);
	v2_inet(&h, "192.0.2.7", "198.51.100.1", 1, 2);
	v2_close(&h);
	/* Each signature byte is checked. */
	for (n = 0; n < 12; n++) {
		struct v2	 bad = h;

		bad.b[n] ^= 0x40;
		expect_error(PROXY_PROTO_V2, bad.b, bad.len, n == 0 ?
		    "no PROXY protocol header" : "bad v2 signature");
	}
	h.b[12] = 0x11;
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 version is not 2");
	h.b[12] = 0x31;
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 version is not 2");
	h.b[12] = 0x22;
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 command is not LOCAL or PROXY");
	h.b[12] = 0x21;
	h.b[13] = 0x41;
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 family or transport unknown");
	h.b[13] = 0x13;
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 family or transport unknown");
	h.b[13] = 0x12;
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 transport is UDP");
	h.b[13] = 0x21;		/* INET6 needs 36 bytes, has 12 */
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 length too short for the addresses");
	h.b[13] = 0x11;
	h.b[14] = (PROXY_PROTO_V2_LEN_MAX + 1) >> 8;
	h.b[15] = (PROXY_PROTO_V2_LEN_MAX + 1) & 0xff;
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 length over the limit");
	h.b[14] = 0xff;
	h.b[15] = 0xff;
	expect_error(PROXY_PROTO_V2, h.b, h.len, "v2 length over the limit");
	/* v2 on a v1-only listener. */
	v2_close(&h);
	expect_error(PROXY_PROTO_V1, h.b, h.len, "v2 header on a v1-only listener");
}

static void
test_v2_truncated(void **state)
{
	struct v2	 h;
	size_t		 n;

	v2_start(&h, 0x21, 0x11);
	v2_inet(&h, "192.0.2.7", "198.51.100.1", 1, 2);
	v2_tlv(&h, 0x05, 5);
	v2_close(&h);
	for (n = 1; n < h.len; n++)
		expect_more(PROXY_PROTO_ANY, h.b, n);
	/* A length announcing more than will come: the caller's timeout ends it. */
	h.b[15] += 10;
	expect_more(PROXY_PROTO_V2, h.b, h.len);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_valid),
		cmocka_unit_test(test_v1_malformed),
		cmocka_unit_test(test_v1_length),
		cmocka_unit_test(test_v2_valid),
		cmocka_unit_test(test_v2_tlv),
		cmocka_unit_test(test_v2_malformed),
		cmocka_unit_test(test_v2_truncated),
	};

	return cmocka_run_group_tests_name("proxy_proto", tests, NULL, NULL);
}
