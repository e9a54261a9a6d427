/*
 * test_dns.c - unit tests for proxy/dns_parse.c: resolver answers read
 * from hand-built DNS wire packets (A, AAAA, MX with compression, TXT,
 * PTR, CNAME chains, every RCODE class, malformed and truncated packets,
 * large answers), and the answer constructors, copy and free.
 *
 * Every packet is handed to the parser in a heap buffer of exactly its
 * length, so AddressSanitizer sees a read past the end, and freed before
 * the answer is checked, so the answer must own all it points to.
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

#include "dns.h"
#include "util.h"

/* A DNS message being built. */
struct pkt {
	unsigned char	 b[70000];	/* room for a little over 64 KiB */
	size_t		 len;		/* bytes written */
};

/* Header flags: QR, RD, RA; the RCODE is or-ed in. */
#define PKT_FLAGS	0x8180
#define CLASS_IN	1
#define CLASS_CH	3
#define TYPE_CNAME	5
#define TYPE_SOA	6

static struct pkt	 P;	/* the packet of the running test */

static void	 pkt_u8(struct pkt *, unsigned int);
static void	 pkt_u16(struct pkt *, unsigned int);
static void	 pkt_u32(struct pkt *, uint32_t);
static void	 pkt_raw(struct pkt *, const void *, size_t);
static void	 pkt_set_u16(struct pkt *, size_t, unsigned int);
static void	 pkt_header(struct pkt *, int, int, int, int, int);
static size_t	 pkt_name(struct pkt *, const char *);
static void	 pkt_ptr(struct pkt *, size_t);
static size_t	 pkt_question(struct pkt *, const char *, int);
static void	 pkt_rr_tail(struct pkt *, int, int, uint32_t);
static size_t	 pkt_rr_ptr(struct pkt *, size_t, int, int, uint32_t);
static size_t	 pkt_rr_name(struct pkt *, const char *, int, int, uint32_t);
static void	 pkt_rr_end(struct pkt *, size_t);
static void	 pkt_txt_string(struct pkt *, const void *, size_t);
static void	 pkt_soa(struct pkt *, size_t);
static struct sluice_dns_answer *parse_n(const struct pkt *, size_t, const char *,
		    enum sluice_dns_type);
static struct sluice_dns_answer *parse(const struct pkt *, const char *, enum sluice_dns_type);
static void	 assert_records(const struct sluice_dns_answer *, enum sluice_dns_status,
		    size_t, const char *const *);
static void	 assert_malformed(const struct sluice_dns_answer *);
static void	 assert_prefixes(const struct pkt *, const char *, enum sluice_dns_type);
static void	 build_mx(struct pkt *);
static void	 build_cname_chain(struct pkt *, int);
static void	 build_mx_loop(struct pkt *, int);

/* --- Building packets ------------------------------------------------------ */

static void
pkt_u8(struct pkt *p, unsigned int v)
{
	assert_true(p->len < sizeof(p->b));
	p->b[p->len++] = (unsigned char)v;
}

static void
pkt_u16(struct pkt *p, unsigned int v)
{
	pkt_u8(p, (v >> 8) & 0xff);
	pkt_u8(p, v & 0xff);
}

static void
pkt_u32(struct pkt *p, uint32_t v)
{
	pkt_u16(p, v >> 16);
	pkt_u16(p, v & 0xffff);
}

static void
pkt_raw(struct pkt *p, const void *data, size_t len)
{
	assert_true(p->len + len <= sizeof(p->b));
	memcpy(p->b + p->len, data, len);
	p->len += len;
}

static void
pkt_set_u16(struct pkt *p, size_t at, unsigned int v)
{
	p->b[at] = (unsigned char)(v >> 8);
	p->b[at + 1] = (unsigned char)v;
}

static void
pkt_header(struct pkt *p, int rcode, int qd, int an, int ns, int ar)
{
	p->len = 0;
	pkt_u16(p, 0x1234);
	pkt_u16(p, PKT_FLAGS | (unsigned int)rcode);
	pkt_u16(p, (unsigned int)qd);
	pkt_u16(p, (unsigned int)an);
	pkt_u16(p, (unsigned int)ns);
	pkt_u16(p, (unsigned int)ar);
}

/* A name as labels, uncompressed; returns where it starts. */
static size_t
pkt_name(struct pkt *p, const char *name)
{
	size_t		 start = p->len;
	const char	*dot;

	while (*name != '\0') {
		size_t	 n = (dot = strchr(name, '.')) != NULL ? (size_t)(dot - name) :
		    strlen(name);

		pkt_u8(p, (unsigned int)n);
		pkt_raw(p, name, n);
		name += n;
		if (*name == '.')
			name++;
	}
	pkt_u8(p, 0);
	return start;
}

static void
pkt_ptr(struct pkt *p, size_t off)
{
	pkt_u16(p, 0xc000 | (unsigned int)off);
}

/* The question; returns the offset of its name (12). */
static size_t
pkt_question(struct pkt *p, const char *name, int type)
{
	size_t	 off = pkt_name(p, name);

	pkt_u16(p, (unsigned int)type);
	pkt_u16(p, CLASS_IN);
	return off;
}

static void
pkt_rr_tail(struct pkt *p, int type, int class, uint32_t ttl)
{
	pkt_u16(p, (unsigned int)type);
	pkt_u16(p, (unsigned int)class);
	pkt_u32(p, ttl);
	pkt_u16(p, 0);		/* rdlength, set by pkt_rr_end */
}

/* A record whose owner is a pointer; returns where its RDATA starts. */
static size_t
pkt_rr_ptr(struct pkt *p, size_t owner, int type, int class, uint32_t ttl)
{
	pkt_ptr(p, owner);
	pkt_rr_tail(p, type, class, ttl);
	return p->len;
}

static size_t
pkt_rr_name(struct pkt *p, const char *owner, int type, int class, uint32_t ttl)
{
	pkt_name(p, owner);
	pkt_rr_tail(p, type, class, ttl);
	return p->len;
}

/* Set the rdlength of the record whose RDATA started at rdata. */
static void
pkt_rr_end(struct pkt *p, size_t rdata)
{
	pkt_set_u16(p, rdata - 2, (unsigned int)(p->len - rdata));
}

static void
pkt_txt_string(struct pkt *p, const void *s, size_t len)
{
	pkt_u8(p, (unsigned int)len);
	pkt_raw(p, s, len);
}

/* An SOA in the authority section, as servers send with NXDOMAIN/NODATA. */
static void
pkt_soa(struct pkt *p, size_t owner)
{
	size_t	 rd = pkt_rr_ptr(p, owner, TYPE_SOA, CLASS_IN, 3600);

	pkt_name(p, "ns.example.org");
	pkt_name(p, "hostmaster.example.org");
	pkt_u32(p, 2024010101);
	pkt_u32(p, 7200);
	pkt_u32(p, 3600);
	pkt_u32(p, 1209600);
	pkt_u32(p, 300);
	pkt_rr_end(p, rd);
}

/* --- Parsing and checking -------------------------------------------------- */

/* The first n bytes of p, in a heap buffer of exactly n bytes, freed after. */
static struct sluice_dns_answer *
parse_n(const struct pkt *p, size_t n, const char *name, enum sluice_dns_type type)
{
	unsigned char			*copy = xmalloc(n > 0 ? n : 1);
	struct sluice_dns_answer	*a;

	memcpy(copy, p->b, n);
	a = dns_answer_parse(name, type, copy, n);
	memset(copy, 0xa5, n);
	free(copy);
	assert_non_null(a);
	assert_string_equal(a->name, name);
	assert_ptr_not_equal(a->name, name);
	assert_int_equal(a->type, type);
	assert_int_equal(a->secure, 0);
	return a;
}

static struct sluice_dns_answer *
parse(const struct pkt *p, const char *name, enum sluice_dns_type type)
{
	return parse_n(p, p->len, name, type);
}

/* Status, count and texts (NUL-free texts: len is strlen). */
static void
assert_records(const struct sluice_dns_answer *a, enum sluice_dns_status status, size_t n,
    const char *const *texts)
{
	size_t	 i;

	assert_string_equal(dns_status_name(a->status), dns_status_name(status));
	assert_int_equal(a->count, n);
	if (n == 0)
		return;
	assert_non_null(a->records);
	for (i = 0; i < n; i++) {
		assert_string_equal(a->records[i].text, texts[i]);
		assert_int_equal(a->records[i].len, strlen(texts[i]));
	}
}

static void
assert_malformed(const struct sluice_dns_answer *a)
{
	assert_string_equal(dns_status_name(a->status), "servfail");
	assert_int_equal(a->count, 0);
	assert_non_null(a->why);
	assert_string_equal(a->why, "malformed answer");
}

/*
 * Every prefix of the packet (0..len-1 bytes) is refused, or gives a
 * result consistent with the whole packet's: never a crash, a record
 * that is not in the whole answer, or a different status with records.
 */
static void
assert_prefixes(const struct pkt *p, const char *name, enum sluice_dns_type type)
{
	struct sluice_dns_answer	*full = parse(p, name, type), *a;
	size_t				 n, i;

	for (n = 0; n < p->len; n++) {
		a = parse_n(p, n, name, type);
		if (a->status != SLUICE_DNS_SERVFAIL) {
			assert_int_equal(a->status, full->status);
			assert_true(a->count <= full->count);
			for (i = 0; i < a->count; i++) {
				assert_int_equal(a->records[i].len, full->records[i].len);
				assert_memory_equal(a->records[i].text, full->records[i].text,
				    a->records[i].len);
			}
		} else
			assert_int_equal(a->count, 0);
		dns_answer_free(a);
	}
	dns_answer_free(full);
}

/* --- Record types ---------------------------------------------------------- */

static void
test_a(void **state)
{
	static const char *const want[] = { "192.0.2.7", "192.0.2.8" };
	static const unsigned char ip1[] = { 192, 0, 2, 7 }, ip2[] = { 192, 0, 2, 8 };
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	pkt_header(&P, 0, 1, 2, 0, 0);
	q = pkt_question(&P, "host.example.org", SLUICE_DNS_A);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_A, CLASS_IN, 300);
	pkt_raw(&P, ip1, 4);
	pkt_rr_end(&P, rd);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_A, CLASS_IN, 600);
	pkt_raw(&P, ip2, 4);
	pkt_rr_end(&P, rd);
	a = parse(&P, "host.example.org", SLUICE_DNS_A);
	assert_records(a, SLUICE_DNS_OK, 2, want);
	assert_int_equal(a->rcode, 0);
	assert_null(a->why);
	assert_int_equal(a->records[0].ttl, 300);
	assert_int_equal(a->records[1].ttl, 600);
	assert_int_equal(a->records[0].preference, 0);
	dns_answer_free(a);
	assert_prefixes(&P, "host.example.org", SLUICE_DNS_A);
}

static void
test_aaaa(void **state)
{
	static const char *const want[] = { "2001:db8::25", "::ffff:192.0.2.1" };
	static const unsigned char ip1[16] = {
		0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x25
	}, ip2[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1 };
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	pkt_header(&P, 0, 1, 2, 0, 0);
	q = pkt_question(&P, "host.example.org", SLUICE_DNS_AAAA);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_AAAA, CLASS_IN, 60);
	pkt_raw(&P, ip1, 16);
	pkt_rr_end(&P, rd);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_AAAA, CLASS_IN, 60);
	pkt_raw(&P, ip2, 16);
	pkt_rr_end(&P, rd);
	a = parse(&P, "host.example.org", SLUICE_DNS_AAAA);
	assert_records(a, SLUICE_DNS_OK, 2, want);
	dns_answer_free(a);
	/* An A record's 4 bytes are not an AAAA. */
	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "host.example.org", SLUICE_DNS_AAAA);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_AAAA, CLASS_IN, 60);
	pkt_raw(&P, ip1, 4);
	pkt_rr_end(&P, rd);
	a = parse(&P, "host.example.org", SLUICE_DNS_AAAA);
	assert_malformed(a);
	dns_answer_free(a);
}

/*
 * Exchange names compressed three ways: a pointer to the question's
 * suffix, a pointer into the previous record's RDATA, and one written
 * out in full.
 */
static void
build_mx(struct pkt *p)
{
	size_t	 q, rd, mx1;

	pkt_header(p, 0, 1, 3, 0, 0);
	q = pkt_question(p, "mx.example.org", SLUICE_DNS_MX);
	rd = pkt_rr_ptr(p, q, SLUICE_DNS_MX, CLASS_IN, 3600);
	pkt_u16(p, 10);
	mx1 = p->len;
	pkt_raw(p, "\003mx1", 4);
	pkt_ptr(p, q + 3);		/* "example.org" in the question */
	pkt_rr_end(p, rd);
	rd = pkt_rr_ptr(p, q, SLUICE_DNS_MX, CLASS_IN, 3600);
	pkt_u16(p, 20);
	pkt_raw(p, "\003mx2", 4);
	pkt_ptr(p, mx1 + 4);		/* the pointer inside mx1's name */
	pkt_rr_end(p, rd);
	rd = pkt_rr_ptr(p, q, SLUICE_DNS_MX, CLASS_IN, 3600);
	pkt_u16(p, 65535);
	pkt_name(p, "backup.example.net");
	pkt_rr_end(p, rd);
}

static void
test_mx_compressed(void **state)
{
	static const char *const want[] = {
		"mx1.example.org", "mx2.example.org", "backup.example.net"
	};
	struct sluice_dns_answer	*a;

	build_mx(&P);
	a = parse(&P, "mx.example.org", SLUICE_DNS_MX);
	assert_records(a, SLUICE_DNS_OK, 3, want);
	assert_int_equal(a->records[0].preference, 10);
	assert_int_equal(a->records[1].preference, 20);
	assert_int_equal(a->records[2].preference, 65535);
	assert_int_equal(a->records[0].ttl, 3600);
	dns_answer_free(a);
	assert_prefixes(&P, "mx.example.org", SLUICE_DNS_MX);
}

/* The null MX (RFC 7505): preference 0 and the root name, "". */
static void
test_mx_null(void **state)
{
	static const char *const want[] = { "" };
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "nomail.example.org", SLUICE_DNS_MX);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_MX, CLASS_IN, 3600);
	pkt_u16(&P, 0);
	pkt_u8(&P, 0);
	pkt_rr_end(&P, rd);
	a = parse(&P, "nomail.example.org", SLUICE_DNS_MX);
	assert_records(a, SLUICE_DNS_OK, 1, want);
	assert_int_equal(a->records[0].preference, 0);
	dns_answer_free(a);
}

static void
test_txt_strings(void **state)
{
	static const char *const want[] = { "v=spf1 ip4:192.0.2.0/24 -all", "x" };
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	pkt_header(&P, 0, 1, 2, 0, 0);
	q = pkt_question(&P, "txt.example.org", SLUICE_DNS_TXT);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 300);
	pkt_txt_string(&P, "v=spf1 ", 7);
	pkt_txt_string(&P, "ip4:192.0.2.0/24", 16);
	pkt_txt_string(&P, " -all", 5);
	pkt_rr_end(&P, rd);
	/* An empty character string adds nothing. */
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 300);
	pkt_txt_string(&P, "", 0);
	pkt_txt_string(&P, "x", 1);
	pkt_txt_string(&P, "", 0);
	pkt_rr_end(&P, rd);
	a = parse(&P, "txt.example.org", SLUICE_DNS_TXT);
	assert_records(a, SLUICE_DNS_OK, 2, want);
	assert_int_equal(a->records[0].len, 28);
	dns_answer_free(a);
	assert_prefixes(&P, "txt.example.org", SLUICE_DNS_TXT);
}

/* 3000 bytes in twelve 250-byte strings (DKIM keys are this long). */
static void
test_txt_long(void **state)
{
	struct sluice_dns_answer	*a;
	unsigned char			 chunk[255];
	size_t				 q, rd, i;

	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "sel._domainkey.example.org", SLUICE_DNS_TXT);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 300);
	for (i = 0; i < 12; i++) {
		memset(chunk, 'a' + (int)i, sizeof(chunk));
		pkt_txt_string(&P, chunk, 250);
	}
	pkt_txt_string(&P, chunk, 255);
	pkt_rr_end(&P, rd);
	a = parse(&P, "sel._domainkey.example.org", SLUICE_DNS_TXT);
	assert_int_equal(a->status, SLUICE_DNS_OK);
	assert_int_equal(a->count, 1);
	assert_int_equal(a->records[0].len, 3255);
	assert_int_equal(strlen(a->records[0].text), 3255);
	for (i = 0; i < 12; i++)
		assert_int_equal(a->records[0].text[i * 250], 'a' + (int)i);
	assert_int_equal(a->records[0].text[3254], 'l');
	dns_answer_free(a);
}

/* A NUL inside a TXT string is data: len counts it, text still ends in NUL. */
static void
test_txt_nul(void **state)
{
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "nul.example.org", SLUICE_DNS_TXT);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 300);
	pkt_txt_string(&P, "a\0b", 3);
	pkt_txt_string(&P, "\0", 1);
	pkt_txt_string(&P, "\xff\x01", 2);
	pkt_rr_end(&P, rd);
	a = parse(&P, "nul.example.org", SLUICE_DNS_TXT);
	assert_int_equal(a->status, SLUICE_DNS_OK);
	assert_int_equal(a->count, 1);
	assert_int_equal(a->records[0].len, 6);
	assert_memory_equal(a->records[0].text, "a\0b\0\xff\x01", 6);
	assert_int_equal(a->records[0].text[6], '\0');
	dns_answer_free(a);
}

static void
test_ptr(void **state)
{
	static const char *const want[] = { "host.example.org" };
	struct sluice_dns_answer	*a;
	size_t				 rd;

	pkt_header(&P, 0, 1, 1, 0, 0);
	pkt_question(&P, "7.2.0.10.in-addr.arpa", SLUICE_DNS_PTR);
	/* The owner written out again, uncompressed, as some servers do. */
	rd = pkt_rr_name(&P, "7.2.0.10.in-addr.arpa", SLUICE_DNS_PTR, CLASS_IN, 86400);
	pkt_name(&P, "host.example.org");
	pkt_rr_end(&P, rd);
	a = parse(&P, "7.2.0.10.in-addr.arpa", SLUICE_DNS_PTR);
	assert_records(a, SLUICE_DNS_OK, 1, want);
	assert_int_equal(a->records[0].ttl, 86400);
	dns_answer_free(a);
	assert_prefixes(&P, "7.2.0.10.in-addr.arpa", SLUICE_DNS_PTR);
}

/* alias -> mid -> host, then host's A records: only those are listed. */
static void
build_cname_chain(struct pkt *p, int with_a)
{
	static const unsigned char ip1[] = { 192, 0, 2, 7 }, ip2[] = { 192, 0, 2, 8 };
	size_t	 q, rd, mid, host;

	pkt_header(p, 0, 1, with_a ? 4 : 2, 0, 0);
	q = pkt_question(p, "alias.example.org", SLUICE_DNS_A);
	rd = pkt_rr_ptr(p, q, TYPE_CNAME, CLASS_IN, 300);
	mid = p->len;
	pkt_raw(p, "\003mid", 4);
	pkt_ptr(p, q + 6);		/* "example.org" */
	pkt_rr_end(p, rd);
	rd = pkt_rr_ptr(p, mid, TYPE_CNAME, CLASS_IN, 300);
	host = pkt_name(p, "host.example.org");
	pkt_rr_end(p, rd);
	if (!with_a)
		return;
	rd = pkt_rr_ptr(p, host, SLUICE_DNS_A, CLASS_IN, 300);
	pkt_raw(p, ip1, 4);
	pkt_rr_end(p, rd);
	rd = pkt_rr_ptr(p, host, SLUICE_DNS_A, CLASS_IN, 300);
	pkt_raw(p, ip2, 4);
	pkt_rr_end(p, rd);
}

static void
test_cname_chain(void **state)
{
	static const char *const want[] = { "192.0.2.7", "192.0.2.8" };
	struct sluice_dns_answer	*a;

	build_cname_chain(&P, 1);
	a = parse(&P, "alias.example.org", SLUICE_DNS_A);
	assert_records(a, SLUICE_DNS_OK, 2, want);
	dns_answer_free(a);
	assert_prefixes(&P, "alias.example.org", SLUICE_DNS_A);
	/* A chain that ends without records of the type: NODATA. */
	build_cname_chain(&P, 0);
	a = parse(&P, "alias.example.org", SLUICE_DNS_A);
	assert_records(a, SLUICE_DNS_NODATA, 0, NULL);
	assert_int_equal(a->rcode, 0);
	dns_answer_free(a);
}

/* --- Statuses -------------------------------------------------------------- */

static void
test_nxdomain(void **state)
{
	struct sluice_dns_answer	*a;
	size_t				 q;

	pkt_header(&P, 3, 1, 0, 1, 0);
	q = pkt_question(&P, "nothere.example.org", SLUICE_DNS_A);
	pkt_soa(&P, q + 8);
	a = parse(&P, "nothere.example.org", SLUICE_DNS_A);
	assert_records(a, SLUICE_DNS_NXDOMAIN, 0, NULL);
	assert_int_equal(a->rcode, 3);
	assert_null(a->why);
	dns_answer_free(a);
	/* NXDOMAIN at the end of a CNAME chain: still NXDOMAIN, no records. */
	build_cname_chain(&P, 1);
	pkt_set_u16(&P, 2, PKT_FLAGS | 3);
	a = parse(&P, "alias.example.org", SLUICE_DNS_A);
	assert_records(a, SLUICE_DNS_NXDOMAIN, 0, NULL);
	dns_answer_free(a);
}

static void
test_servfail_refused(void **state)
{
	static const struct {
		int		 rcode;
		const char	*why;
	} cases[] = {
		{ 1, "rcode 1" },	/* FORMERR */
		{ 2, "rcode 2" },	/* SERVFAIL */
		{ 4, "rcode 4" },	/* NOTIMP */
		{ 5, "rcode 5" },	/* REFUSED */
	};
	struct sluice_dns_answer	*a;
	size_t				 i;

	for (i = 0; i < nitems(cases); i++) {
		/* Records in the answer do not make a failure a success. */
		build_cname_chain(&P, 1);
		pkt_set_u16(&P, 2, PKT_FLAGS | (unsigned int)cases[i].rcode);
		a = parse(&P, "alias.example.org", SLUICE_DNS_A);
		assert_records(a, SLUICE_DNS_SERVFAIL, 0, NULL);
		assert_int_equal(a->rcode, cases[i].rcode);
		assert_non_null(a->why);
		assert_string_equal(a->why, cases[i].why);
		dns_answer_free(a);
	}
}

static void
test_nodata(void **state)
{
	struct sluice_dns_answer	*a;
	size_t				 q;

	pkt_header(&P, 0, 1, 0, 1, 0);
	q = pkt_question(&P, "host.example.org", SLUICE_DNS_MX);
	pkt_soa(&P, q + 5);
	a = parse(&P, "host.example.org", SLUICE_DNS_MX);
	assert_records(a, SLUICE_DNS_NODATA, 0, NULL);
	assert_int_equal(a->rcode, 0);
	assert_null(a->why);
	dns_answer_free(a);
	assert_prefixes(&P, "host.example.org", SLUICE_DNS_MX);
	/* No question, no records at all. */
	pkt_header(&P, 0, 0, 0, 0, 0);
	a = parse(&P, "host.example.org", SLUICE_DNS_A);
	assert_records(a, SLUICE_DNS_NODATA, 0, NULL);
	dns_answer_free(a);
}

/* Records of another type, or of class CH: none of what was asked. */
static void
test_other_type_only(void **state)
{
	static const unsigned char ip[] = { 192, 0, 2, 7 };
	static const char *const want_a[] = { "192.0.2.7" };
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	pkt_header(&P, 0, 1, 2, 0, 0);
	q = pkt_question(&P, "host.example.org", SLUICE_DNS_MX);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_A, CLASS_IN, 300);
	pkt_raw(&P, ip, 4);
	pkt_rr_end(&P, rd);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 300);
	pkt_txt_string(&P, "not an mx", 9);
	pkt_rr_end(&P, rd);
	a = parse(&P, "host.example.org", SLUICE_DNS_MX);
	assert_records(a, SLUICE_DNS_NODATA, 0, NULL);
	dns_answer_free(a);
	/* The same packet asked for A gives the A record only. */
	a = parse(&P, "host.example.org", SLUICE_DNS_A);
	assert_records(a, SLUICE_DNS_OK, 1, want_a);
	dns_answer_free(a);
	/* Class CH (version.bind style) is not Internet data. */
	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "version.bind", SLUICE_DNS_TXT);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_CH, 0);
	pkt_txt_string(&P, "9.18", 4);
	pkt_rr_end(&P, rd);
	a = parse(&P, "version.bind", SLUICE_DNS_TXT);
	assert_records(a, SLUICE_DNS_NODATA, 0, NULL);
	dns_answer_free(a);
}

/* --- Malformed packets ----------------------------------------------------- */

static void
test_truncated_header(void **state)
{
	struct sluice_dns_answer	*a;
	size_t				 n;

	pkt_header(&P, 0, 0, 0, 0, 0);
	for (n = 0; n < 12; n++) {
		a = parse_n(&P, n, "x.example.org", SLUICE_DNS_A);
		assert_malformed(a);
		assert_int_equal(a->rcode, -1);
		dns_answer_free(a);
	}
	/* A header claiming a question that is not there. */
	pkt_header(&P, 0, 1, 0, 0, 0);
	a = parse(&P, "x.example.org", SLUICE_DNS_A);
	assert_malformed(a);
	dns_answer_free(a);
}

static void
test_txt_string_past_rdlength(void **state)
{
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	/* A length byte of 10 with 5 bytes left in the RDATA. */
	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "txt.example.org", SLUICE_DNS_TXT);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 300);
	pkt_txt_string(&P, "ok", 2);
	pkt_u8(&P, 10);
	pkt_raw(&P, "short", 5);
	pkt_rr_end(&P, rd);
	a = parse(&P, "txt.example.org", SLUICE_DNS_TXT);
	assert_malformed(a);
	dns_answer_free(a);
	/* More bytes after the RDATA, so only rdlength can tell. */
	pkt_header(&P, 0, 1, 2, 0, 0);
	q = pkt_question(&P, "txt.example.org", SLUICE_DNS_TXT);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 300);
	pkt_txt_string(&P, "ok", 2);
	pkt_u8(&P, 10);
	pkt_raw(&P, "short", 5);
	pkt_rr_end(&P, rd);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_A, CLASS_IN, 300);
	pkt_raw(&P, "\300\000\002\001", 4);
	pkt_rr_end(&P, rd);
	a = parse(&P, "txt.example.org", SLUICE_DNS_TXT);
	assert_malformed(a);
	assert_int_equal(a->rcode, 0);
	dns_answer_free(a);
	/* A length byte as the last RDATA byte, with nothing after it. */
	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "txt.example.org", SLUICE_DNS_TXT);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 300);
	pkt_txt_string(&P, "ok", 2);
	pkt_u8(&P, 1);
	pkt_rr_end(&P, rd);
	a = parse(&P, "txt.example.org", SLUICE_DNS_TXT);
	assert_malformed(a);
	dns_answer_free(a);
}

/*
 * One good and one broken record of the type: the good one is kept and
 * the answer is OK (a filter gets what could be read).
 */
static void
test_good_and_bad_records(void **state)
{
	static const char *const want[] = { "192.0.2.9" };
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	pkt_header(&P, 0, 1, 2, 0, 0);
	q = pkt_question(&P, "host.example.org", SLUICE_DNS_A);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_A, CLASS_IN, 300);
	pkt_raw(&P, "\300\000\002\007\001", 5);	/* 5 bytes: not an A */
	pkt_rr_end(&P, rd);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_A, CLASS_IN, 300);
	pkt_raw(&P, "\300\000\002\011", 4);
	pkt_rr_end(&P, rd);
	a = parse(&P, "host.example.org", SLUICE_DNS_A);
	assert_records(a, SLUICE_DNS_OK, 1, want);
	dns_answer_free(a);
}

static void
build_mx_loop(struct pkt *p, int two)
{
	size_t	 q, rd, at;

	pkt_header(p, 0, 1, 1, 0, 0);
	q = pkt_question(p, "mx.example.org", SLUICE_DNS_MX);
	rd = pkt_rr_ptr(p, q, SLUICE_DNS_MX, CLASS_IN, 300);
	pkt_u16(p, 10);
	at = p->len;
	if (two) {
		pkt_raw(p, "\001a", 2);
		pkt_ptr(p, at + 4);		/* -> the next pointer */
		pkt_ptr(p, at);			/* -> back to "a" */
	} else
		pkt_ptr(p, at);			/* -> itself */
	pkt_rr_end(p, rd);
}

static void
test_mx_pointer_loop(void **state)
{
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	build_mx_loop(&P, 0);
	a = parse(&P, "mx.example.org", SLUICE_DNS_MX);
	assert_malformed(a);
	dns_answer_free(a);
	build_mx_loop(&P, 1);
	a = parse(&P, "mx.example.org", SLUICE_DNS_MX);
	assert_malformed(a);
	dns_answer_free(a);
	assert_prefixes(&P, "mx.example.org", SLUICE_DNS_MX);
	/* A pointer past the end of the packet. */
	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "mx.example.org", SLUICE_DNS_MX);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_MX, CLASS_IN, 300);
	pkt_u16(&P, 10);
	pkt_ptr(&P, 0x3fff);
	pkt_rr_end(&P, rd);
	a = parse(&P, "mx.example.org", SLUICE_DNS_MX);
	assert_malformed(a);
	dns_answer_free(a);
	/* RDATA too short for a preference and a name. */
	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "mx.example.org", SLUICE_DNS_MX);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_MX, CLASS_IN, 300);
	pkt_u16(&P, 10);
	pkt_rr_end(&P, rd);
	a = parse(&P, "mx.example.org", SLUICE_DNS_MX);
	assert_malformed(a);
	dns_answer_free(a);
}

/* An owner name that points at itself: the record cannot be read. */
static void
test_owner_pointer_loop(void **state)
{
	struct sluice_dns_answer	*a;
	size_t				 at, rd;

	pkt_header(&P, 0, 1, 1, 0, 0);
	pkt_question(&P, "host.example.org", SLUICE_DNS_A);
	at = P.len;
	pkt_ptr(&P, at);
	pkt_u16(&P, SLUICE_DNS_A);
	pkt_u16(&P, CLASS_IN);
	pkt_u32(&P, 300);
	pkt_u16(&P, 0);
	rd = P.len;
	pkt_raw(&P, "\300\000\002\007", 4);
	pkt_rr_end(&P, rd);
	a = parse(&P, "host.example.org", SLUICE_DNS_A);
	assert_malformed(a);
	dns_answer_free(a);
}

static void
test_rdlength_past_end(void **state)
{
	struct sluice_dns_answer	*a;
	size_t				 q, rd;

	pkt_header(&P, 0, 1, 1, 0, 0);
	q = pkt_question(&P, "host.example.org", SLUICE_DNS_A);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_A, CLASS_IN, 300);
	pkt_raw(&P, "\300\000\002\007", 4);
	pkt_set_u16(&P, rd - 2, 100);
	a = parse(&P, "host.example.org", SLUICE_DNS_A);
	assert_malformed(a);
	assert_int_equal(a->rcode, -1);
	dns_answer_free(a);
	/* The largest rdlength, in the last record. */
	pkt_set_u16(&P, rd - 2, 0xffff);
	a = parse(&P, "host.example.org", SLUICE_DNS_A);
	assert_malformed(a);
	dns_answer_free(a);
	/* More answer records announced than present. */
	pkt_set_u16(&P, rd - 2, 4);
	pkt_set_u16(&P, 6, 3);
	a = parse(&P, "host.example.org", SLUICE_DNS_A);
	assert_malformed(a);
	dns_answer_free(a);
}

/* Over 65535 bytes cannot be a DNS message. */
static void
test_oversized(void **state)
{
	struct sluice_dns_answer	*a;
	unsigned char			*big = xcalloc(1, 65536);

	memcpy(big, "\022\064\201\200\000\000\000\000\000\000\000\000", 12);
	a = dns_answer_parse("x.example.org", SLUICE_DNS_A, big, 65536);
	assert_malformed(a);
	dns_answer_free(a);
	free(big);
}

/* --- Large answers --------------------------------------------------------- */

static void
test_hundred_records(void **state)
{
	struct sluice_dns_answer	*a;
	char				 want[32];
	size_t				 q, rd, i;

	pkt_header(&P, 0, 1, 100, 0, 0);
	q = pkt_question(&P, "many.example.org", SLUICE_DNS_A);
	for (i = 0; i < 100; i++) {
		rd = pkt_rr_ptr(&P, q, SLUICE_DNS_A, CLASS_IN, (uint32_t)i);
		pkt_u8(&P, 10);
		pkt_u8(&P, 0);
		pkt_u8(&P, (unsigned int)(i / 256));
		pkt_u8(&P, (unsigned int)(i % 256));
		pkt_rr_end(&P, rd);
	}
	a = parse(&P, "many.example.org", SLUICE_DNS_A);
	assert_int_equal(a->status, SLUICE_DNS_OK);
	assert_int_equal(a->count, 100);
	for (i = 0; i < 100; i++) {
		snprintf(want, sizeof(want), "10.0.0.%zu", i);
		assert_string_equal(a->records[i].text, want);
		assert_int_equal(a->records[i].ttl, i);
	}
	dns_answer_free(a);
}

/* 100 MX, each exchange a pointer to the previous one's: a deep chain. */
static void
test_hundred_mx_chained(void **state)
{
	struct sluice_dns_answer	*a;
	size_t				 q, rd, prev, i;

	pkt_header(&P, 0, 1, 100, 0, 0);
	q = pkt_question(&P, "mx.example.org", SLUICE_DNS_MX);
	prev = q + 3;			/* "example.org" */
	for (i = 0; i < 100; i++) {
		size_t	 here;

		rd = pkt_rr_ptr(&P, q, SLUICE_DNS_MX, CLASS_IN, 60);
		pkt_u16(&P, (unsigned int)i);
		here = P.len;
		pkt_raw(&P, "\001m", 2);
		pkt_ptr(&P, prev);
		prev = here;
		pkt_rr_end(&P, rd);
	}
	a = parse(&P, "mx.example.org", SLUICE_DNS_MX);
	assert_int_equal(a->status, SLUICE_DNS_OK);
	assert_int_equal(a->count, 100);
	assert_string_equal(a->records[0].text, "m.example.org");
	assert_string_equal(a->records[1].text, "m.m.example.org");
	assert_int_equal(a->records[99].preference, 99);
	/* 100 "m." labels and "example.org": 211 bytes, under 255. */
	assert_int_equal(a->records[99].len, 200 + 11);
	dns_answer_free(a);
}

static void
test_hundred_txt(void **state)
{
	struct sluice_dns_answer	*a;
	char				 s[16];
	size_t				 q, rd, i;

	pkt_header(&P, 0, 1, 100, 0, 0);
	q = pkt_question(&P, "t.example.org", SLUICE_DNS_TXT);
	for (i = 0; i < 100; i++) {
		rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 60);
		snprintf(s, sizeof(s), "r%zu", i);
		pkt_txt_string(&P, s, strlen(s));
		pkt_rr_end(&P, rd);
	}
	a = parse(&P, "t.example.org", SLUICE_DNS_TXT);
	assert_int_equal(a->count, 100);
	assert_string_equal(a->records[42].text, "r42");
	assert_string_equal(a->records[99].text, "r99");
	dns_answer_free(a);
}

/* --- Constructors ---------------------------------------------------------- */

static void
test_answer_status(void **state)
{
	struct sluice_dns_answer	*a;
	char				 why[32], name[32];

	snprintf(why, sizeof(why), "no answer in time");
	snprintf(name, sizeof(name), "slow.example.org");
	a = dns_answer_status(name, SLUICE_DNS_TXT, SLUICE_DNS_TIMEOUT, why);
	memset(why, 'x', sizeof(why) - 1);
	memset(name, 'x', sizeof(name) - 1);
	assert_int_equal(a->status, SLUICE_DNS_TIMEOUT);
	assert_int_equal(a->rcode, -1);
	assert_int_equal(a->type, SLUICE_DNS_TXT);
	assert_string_equal(a->name, "slow.example.org");
	assert_string_equal(a->why, "no answer in time");
	assert_int_equal(a->count, 0);
	dns_answer_free(a);
	a = dns_answer_status("x", SLUICE_DNS_A, SLUICE_DNS_ERROR, NULL);
	assert_null(a->why);
	dns_answer_free(a);
	dns_answer_free(NULL);
}

/* A copy owns everything: it outlives the original, NUL bytes included. */
static void
test_answer_dup(void **state)
{
	struct sluice_dns_answer	*a, *b;
	size_t				 q, rd;

	pkt_header(&P, 0, 1, 2, 0, 0);
	q = pkt_question(&P, "nul.example.org", SLUICE_DNS_TXT);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 77);
	pkt_txt_string(&P, "a\0b", 3);
	pkt_rr_end(&P, rd);
	rd = pkt_rr_ptr(&P, q, SLUICE_DNS_TXT, CLASS_IN, 78);
	pkt_txt_string(&P, "second", 6);
	pkt_rr_end(&P, rd);
	a = parse(&P, "nul.example.org", SLUICE_DNS_TXT);
	a->secure = 1;
	b = dns_answer_dup(a);
	dns_answer_free(a);
	assert_int_equal(b->status, SLUICE_DNS_OK);
	assert_int_equal(b->rcode, 0);
	assert_int_equal(b->secure, 1);
	assert_string_equal(b->name, "nul.example.org");
	assert_int_equal(b->type, SLUICE_DNS_TXT);
	assert_int_equal(b->count, 2);
	assert_int_equal(b->records[0].len, 3);
	assert_memory_equal(b->records[0].text, "a\0b", 4);
	assert_int_equal(b->records[0].ttl, 77);
	assert_string_equal(b->records[1].text, "second");
	assert_null(b->why);
	dns_answer_free(b);
	a = dns_answer_status("gone.example.org", SLUICE_DNS_MX, SLUICE_DNS_SERVFAIL, "why");
	b = dns_answer_dup(a);
	dns_answer_free(a);
	assert_int_equal(b->status, SLUICE_DNS_SERVFAIL);
	assert_string_equal(b->why, "why");
	assert_int_equal(b->count, 0);
	assert_int_equal(b->rcode, -1);
	dns_answer_free(b);
}

static void
test_status_names(void **state)
{
	assert_string_equal(dns_status_name(SLUICE_DNS_OK), "ok");
	assert_string_equal(dns_status_name(SLUICE_DNS_NODATA), "nodata");
	assert_string_equal(dns_status_name(SLUICE_DNS_NXDOMAIN), "nxdomain");
	assert_string_equal(dns_status_name(SLUICE_DNS_SERVFAIL), "servfail");
	assert_string_equal(dns_status_name(SLUICE_DNS_TIMEOUT), "timeout");
	assert_string_equal(dns_status_name(SLUICE_DNS_ERROR), "error");
	assert_string_equal(dns_status_name((enum sluice_dns_status)6), "unknown");
	assert_string_equal(dns_status_name((enum sluice_dns_status)-1), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a),
		cmocka_unit_test(test_aaaa),
		cmocka_unit_test(test_mx_compressed),
		cmocka_unit_test(test_mx_null),
		cmocka_unit_test(test_txt_strings),
		cmocka_unit_test(test_txt_long),
		cmocka_unit_test(test_txt_nul),
		cmocka_unit_test(test_ptr),
		cmocka_unit_test(test_cname_chain),
		cmocka_unit_test(test_nxdomain),
		cmocka_unit_test(test_servfail_refused),
		cmocka_unit_test(test_nodata),
		cmocka_unit_test(test_other_type_only),
		cmocka_unit_test(test_truncated_header),
		cmocka_unit_test(test_txt_string_past_rdlength),
		cmocka_unit_test(test_good_and_bad_records),
		cmocka_unit_test(test_mx_pointer_loop),
		cmocka_unit_test(test_owner_pointer_loop),
		cmocka_unit_test(test_rdlength_past_end),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_hundred_records),
		cmocka_unit_test(test_hundred_mx_chained),
		cmocka_unit_test(test_hundred_txt),
		cmocka_unit_test(test_answer_status),
		cmocka_unit_test(test_answer_dup),
		cmocka_unit_test(test_status_names),
	};

	return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
