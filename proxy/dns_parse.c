/*
 * dns_parse.c - resolver answers: read a DNS wire packet into a
 * struct sluice_dns_answer, and the answers' constructors, copy and free.
 *
 * Pure (no unbound, no event loop) so that unit tests and the fuzzer can
 * link it alone.  The packet is hostile input: every length and
 * compression pointer is checked by libresolv's ns_* and dn_expand, and
 * a record we cannot read makes the answer SERVFAIL unless good records
 * of the asked type were found too.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "util.h"

struct dns_answer_impl;

static struct dns_answer_impl *dns_answer_alloc(const char *, enum sluice_dns_type);
static void	 dns_answer_push(struct dns_answer_impl *, const char *, size_t, unsigned int,
		    uint32_t);
static int	 dns_answer_rr(struct dns_answer_impl *, ns_msg *, ns_rr *);

/* The allocation behind a public answer. */
struct dns_answer_impl {
	struct sluice_dns_answer	 pub;
	struct sluice_dns_record	*records;	/* mutable view of pub.records */
	size_t				 cap;
	char				*name;
	char				*why;
};

static struct dns_answer_impl *
dns_answer_alloc(const char *name, enum sluice_dns_type type)
{
	struct dns_answer_impl	*a = xcalloc(1, sizeof(*a));

	a->name = xstrdup(name);
	a->pub.name = a->name;
	a->pub.type = type;
	a->pub.rcode = -1;
	return a;
}

struct sluice_dns_answer *
dns_answer_status(const char *name, enum sluice_dns_type type, enum sluice_dns_status status,
    const char *why)
{
	struct dns_answer_impl	*a = dns_answer_alloc(name, type);

	a->pub.status = status;
	if (why != NULL) {
		a->why = xstrdup(why);
		a->pub.why = a->why;
	}
	return &a->pub;
}

static void
dns_answer_push(struct dns_answer_impl *a, const char *text, size_t len, unsigned int pref,
    uint32_t ttl)
{
	struct sluice_dns_record	*rec;
	char				*copy;

	if (a->pub.count == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 4;
		a->records = xreallocarray(a->records, a->cap, sizeof(*a->records));
	}
	copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	copy[len] = '\0';
	rec = &a->records[a->pub.count++];
	rec->text = copy;
	rec->len = len;
	rec->preference = pref;
	rec->ttl = ttl;
	a->pub.records = a->records;
}

/* One answer record of the asked type into a; -1 when its data is malformed. */
static int
dns_answer_rr(struct dns_answer_impl *a, ns_msg *m, ns_rr *rr)
{
	const unsigned char	*rd = ns_rr_rdata(*rr);
	size_t			 rdlen = ns_rr_rdlen(*rr), off;
	char			 buf[NS_MAXDNAME + 1];
	char			*txt;
	unsigned int		 pref = 0;

	switch (a->pub.type) {
	case SLUICE_DNS_A:
	case SLUICE_DNS_AAAA:
		if (rdlen != (a->pub.type == SLUICE_DNS_A ? 4u : 16u) ||
		    inet_ntop(a->pub.type == SLUICE_DNS_A ? AF_INET : AF_INET6, rd, buf,
		    sizeof(buf)) == NULL)
			return -1;
		break;
	case SLUICE_DNS_MX:
		if (rdlen < 3)
			return -1;
		pref = (unsigned int)rd[0] << 8 | rd[1];
		rd += 2;
		/* FALLTHROUGH */
	case SLUICE_DNS_PTR:
		if (dn_expand(ns_msg_base(*m), ns_msg_end(*m), rd, buf, sizeof(buf)) < 0)
			return -1;
		break;
	case SLUICE_DNS_TXT:
		/* Character strings, each a length byte and its bytes: concatenate. */
		txt = xmalloc(rdlen + 1);
		for (off = 0; off < rdlen; off += 1 + rd[off]) {
			if (off + 1 + rd[off] > rdlen) {
				free(txt);
				return -1;
			}
		}
		{
			size_t	 n = 0;

			for (off = 0; off < rdlen; off += 1 + rd[off]) {
				memcpy(txt + n, rd + off + 1, rd[off]);
				n += rd[off];
			}
			dns_answer_push(a, txt, n, 0, ns_rr_ttl(*rr));
		}
		free(txt);
		return 0;
	default:
		return -1;
	}
	dns_answer_push(a, buf, strlen(buf), pref, ns_rr_ttl(*rr));
	return 0;
}

struct sluice_dns_answer *
dns_answer_parse(const char *name, enum sluice_dns_type type, const unsigned char *packet,
    size_t len)
{
	struct dns_answer_impl	*a;
	ns_msg			 m;
	ns_rr			 rr;
	int			 i, n, bad = 0;
	char			 why[64];

	if (len > 65535 || ns_initparse(packet, (int)len, &m) < 0)
		return dns_answer_status(name, type, SLUICE_DNS_SERVFAIL, "malformed answer");
	a = dns_answer_alloc(name, type);
	a->pub.rcode = ns_msg_getflag(m, ns_f_rcode);
	if (a->pub.rcode == ns_r_nxdomain) {
		a->pub.status = SLUICE_DNS_NXDOMAIN;
		return &a->pub;
	}
	if (a->pub.rcode != ns_r_noerror) {
		snprintf(why, sizeof(why), "rcode %d", a->pub.rcode);
		a->pub.status = SLUICE_DNS_SERVFAIL;
		a->why = xstrdup(why);
		a->pub.why = a->why;
		return &a->pub;
	}
	n = ns_msg_count(m, ns_s_an);
	for (i = 0; i < n; i++) {
		if (ns_parserr(&m, ns_s_an, i, &rr) < 0) {
			bad = 1;
			break;
		}
		if (ns_rr_class(rr) != ns_c_in || (int)ns_rr_type(rr) != (int)type)
			continue;	/* CNAMEs on the way, other junk */
		if (dns_answer_rr(a, &m, &rr) == -1)
			bad = 1;
	}
	if (a->pub.count > 0)
		a->pub.status = SLUICE_DNS_OK;
	else if (bad) {
		a->pub.status = SLUICE_DNS_SERVFAIL;
		a->why = xstrdup("malformed answer");
		a->pub.why = a->why;
	} else
		a->pub.status = SLUICE_DNS_NODATA;
	return &a->pub;
}

struct sluice_dns_answer *
dns_answer_dup(const struct sluice_dns_answer *src)
{
	struct dns_answer_impl	*a = dns_answer_alloc(src->name, src->type);
	size_t			 i;

	a->pub.status = src->status;
	a->pub.rcode = src->rcode;
	a->pub.secure = src->secure;
	if (src->why != NULL) {
		a->why = xstrdup(src->why);
		a->pub.why = a->why;
	}
	for (i = 0; i < src->count; i++)
		dns_answer_push(a, src->records[i].text, src->records[i].len,
		    src->records[i].preference, src->records[i].ttl);
	return &a->pub;
}

void
dns_answer_free(struct sluice_dns_answer *pub)
{
	struct dns_answer_impl	*a = (struct dns_answer_impl *)pub;
	size_t			 i;

	if (a == NULL)
		return;
	for (i = 0; i < a->pub.count; i++)
		free((char *)a->records[i].text);
	free(a->records);
	free(a->name);
	free(a->why);
	free(a);
}

const char *
dns_status_name(enum sluice_dns_status status)
{
	static const char *const names[] = {
		"ok", "nodata", "nxdomain", "servfail", "timeout", "error"
	};

	return (unsigned int)status < nitems(names) ? names[status] : "unknown";
}
