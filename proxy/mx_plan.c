/*
 * mx_plan.c - the pure half of delivery-destination resolution (see mx.h):
 * destination parsing, which DNS queries to ask, and the rules that turn
 * the answers into an ordered candidate list or a TEMP/PERM verdict.
 *
 * No event loop and no resolver here, so the unit tests feed constructed
 * answers.  A plan is a small state machine: queries are appended to
 * q[] as the answers make them necessary (the MX query first, then an
 * A and/or AAAA query per host), and the result is built only when every
 * query has been answered, so the order answers arrive in changes nothing.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "mx.h"
#include "util.h"

/* One DNS query of the plan. */
struct mx_query {
	char			*name;		/* owned */
	enum sluice_dns_type	 type;
	int			 host;		/* index in hosts[], -1 for the MX query */
	int			 answered;
};

/* A host while its addresses are being looked up. */
struct mx_work {
	char			*name;		/* owned */
	unsigned int		 preference;
	struct sockaddr_storage	 v4[MX_ADDRS_MAX];
	size_t			 n4;
	struct sockaddr_storage	 v6[MX_ADDRS_MAX];
	size_t			 n6;
};

struct mx_plan {
	struct mx_dest		 dest;		/* copy */
	struct mx_options	 opt;		/* copy, limits resolved */
	unsigned int		 port;		/* the port every address gets */
	uint64_t		 rng;		/* splitmix64 state */
	struct mx_query		 q[MX_LOOKUPS_MAX];
	int			 nq;		/* queries in q[] */
	int			 asked;		/* q[0..asked-1] handed out */
	struct mx_work		 hosts[MX_HOSTS_MAX];
	size_t			 nhosts;
	int			 decided;	/* status below is final already */
	enum mx_status		 status;
	char			 dsn[8];
	char			*reason;	/* owned */
	char			*warning;	/* owned */
	char			*last_error;	/* the latest address lookup failure, owned */
	int			 any_temp;	/* an address lookup failed temporarily */
	int			 implicit_mx;
};

/* An MX record while sorting. */
struct mx_rec {
	const char		*name;
	unsigned int		 preference;
	uint64_t		 key;		/* random: orders equal preferences */
};

static uint64_t	 mx_plan_random(struct mx_plan *);
static void	 mx_plan_decide(struct mx_plan *, enum mx_status, const char *, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
static void	 mx_plan_note(char **, const char *, ...) __attribute__((format(printf, 2, 3)));
static void	 mx_plan_add_query(struct mx_plan *, const char *, enum sluice_dns_type, int);
static int	 mx_plan_add_host(struct mx_plan *, const char *, unsigned int, int);
static const char *mx_dns_word(enum sluice_dns_status);
static int	 mx_host_name_valid(const char *);
static int	 mx_plan_address(const char *, unsigned int, struct sockaddr_storage *);
static void	 mx_plan_add_addr(struct mx_plan *, struct mx_work *, const struct sockaddr_storage *);
static void	 mx_plan_feed_mx(struct mx_plan *, const struct sluice_dns_answer *);
static void	 mx_plan_use_mx(struct mx_plan *, const struct sluice_dns_answer *);
static void	 mx_plan_feed_addr(struct mx_plan *, struct mx_work *,
		    const struct sluice_dns_answer *);
static int	 mx_rec_cmp(const void *, const void *);
static int	 mx_null_target(const char *);
static int	 mx_family_allowed(const struct mx_plan *, int);
static int	 mx_addr_equal(const struct sockaddr_storage *, const struct sockaddr_storage *);
static int	 mx_result_has_addr(const struct mx_result *, const struct sockaddr_storage *);
static void	 mx_result_take_host(struct mx_result *, struct mx_work *, const struct mx_plan *);
static void	 mx_result_no_hosts(struct mx_result *, struct mx_plan *);
static int	 mx_addr_is_own(const struct sockaddr_storage *, const struct sockaddr_storage *,
		    size_t);

/* --- Destinations ---------------------------------------------------------- */

void
mx_options_from_config(struct mx_options *o, const struct config_mx *c)
{
	memset(o, 0, sizeof(*o));
	o->families = c->inet_protocols == 1 ? MX_INET_IPV4 : c->inet_protocols == 2 ?
	    MX_INET_IPV6 : MX_INET_ALL;
	o->prefer_ipv4 = c->prefer_ipv4;
	o->delivery_port = (unsigned int)c->delivery_port;
}

int
mx_dest_parse(const char *text, int smarthost, struct mx_dest *d, char *err, size_t errlen)
{
	struct sockaddr_storage	 ss;
	const char		*host = text, *end, *colon;
	char			*endp;
	unsigned long		 port = 0;
	size_t			 hlen;

	memset(d, 0, sizeof(*d));
	if (text[0] == '[') {
		if ((end = strchr(text, ']')) == NULL) {
			snprintf(err, errlen, "\"%s\": missing ']'", text);
			return -1;
		}
		d->no_mx = 1;
		host = text + 1;
		hlen = (size_t)(end - host);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL) {
			snprintf(err, errlen, "\"%s\": junk after ']'", text);
			return -1;
		}
		if (hlen > 5 && strncasecmp(host, "IPv6:", 5) == 0) {
			host += 5;
			hlen -= 5;
		}
	} else {
		colon = strrchr(text, ':');
		hlen = colon != NULL ? (size_t)(colon - text) : strlen(text);
	}
	if (colon != NULL) {
		port = strtoul(colon + 1, &endp, 10);
		if (colon[1] < '0' || colon[1] > '9' || *endp != '\0' || port < 1 || port > 65535) {
			snprintf(err, errlen, "\"%s\": bad port", text);
			return -1;
		}
	}
	if (hlen == 0 || hlen > 253 || (memchr(host, ':', hlen) != NULL && !d->no_mx)) {
		snprintf(err, errlen, "\"%s\": bad host name", text);
		return -1;
	}
	d->host = xstrndup(host, hlen);
	d->port = (unsigned int)port;
	d->smarthost = smarthost;
	if (d->no_mx && mx_plan_address(d->host, 0, &ss) == 0) {
		d->literal = 1;
		return 0;
	}
	/* "[IPv6:" must be followed by an address; a name must be a host name. */
	if ((d->no_mx && host != text + 1) || !mx_host_name_valid(d->host)) {
		snprintf(err, errlen, "\"%s\": bad host name", text);
		mx_dest_clear(d);
		return -1;
	}
	return 0;
}

/* Letters, digits, '-', '_' in labels separated by single dots. */
static int
mx_host_name_valid(const char *name)
{
	size_t	 len = strlen(name);

	return len > 0 && name[0] != '.' && name[0] != '-' && strstr(name, "..") == NULL &&
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") ==
	    len;
}

void
mx_dest_clear(struct mx_dest *d)
{
	free(d->host);
	memset(d, 0, sizeof(*d));
}

/* --- The plan -------------------------------------------------------------- */

struct mx_plan *
mx_plan_new(const struct mx_dest *d, const struct mx_options *o, uint64_t seed)
{
	struct mx_plan		*p = xcalloc(1, sizeof(*p));
	struct sockaddr_storage	 ss;

	p->dest = *d;
	p->dest.host = xstrdup(d->host);
	p->opt = *o;
	if (p->opt.max_hosts == 0 || p->opt.max_hosts > MX_HOSTS_MAX)
		p->opt.max_hosts = MX_HOSTS_MAX;
	if (p->opt.max_addrs == 0 || p->opt.max_addrs > MX_ADDRS_MAX)
		p->opt.max_addrs = MX_ADDRS_MAX;
	p->port = d->port ? d->port : o->delivery_port ? o->delivery_port : 25;
	p->rng = seed;
	if (d->literal) {
		mx_plan_add_host(p, d->host, 0, 0);
		if (mx_plan_address(d->host, p->port, &ss) == 0)
			mx_plan_add_addr(p, &p->hosts[0], &ss);
	} else if (d->no_mx)
		mx_plan_add_host(p, d->host, 0, 1);
	else
		mx_plan_add_query(p, d->host, SLUICE_DNS_MX, -1);
	return p;
}

void
mx_plan_free(struct mx_plan *p)
{
	int	 i;
	size_t	 h;

	if (p == NULL)
		return;
	for (i = 0; i < p->nq; i++)
		free(p->q[i].name);
	for (h = 0; h < p->nhosts; h++)
		free(p->hosts[h].name);
	free(p->dest.host);
	free(p->reason);
	free(p->warning);
	free(p->last_error);
	free(p);
}

int
mx_plan_next(struct mx_plan *p, const char **name, enum sluice_dns_type *type)
{
	if (p->decided || p->asked >= p->nq)
		return -1;
	*name = p->q[p->asked].name;
	*type = p->q[p->asked].type;
	return p->asked++;
}

void
mx_plan_feed(struct mx_plan *p, int id, const struct sluice_dns_answer *a)
{
	struct mx_query	*q;

	if (id < 0 || id >= p->asked || p->q[id].answered)
		return;
	q = &p->q[id];
	q->answered = 1;
	if (p->decided)
		return;
	if (q->host < 0)
		mx_plan_feed_mx(p, a);
	else
		mx_plan_feed_addr(p, &p->hosts[q->host], a);
}

int
mx_plan_done(const struct mx_plan *p)
{
	int	 i;

	for (i = 0; i < p->asked; i++)
		if (!p->q[i].answered)
			return 0;
	return p->decided || p->asked == p->nq;
}

/* splitmix64: cheap, and the same seed gives the same order (tests). */
static uint64_t
mx_plan_random(struct mx_plan *p)
{
	uint64_t	 z = (p->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
mx_plan_decide(struct mx_plan *p, enum mx_status status, const char *dsn, const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->decided = 1;
	p->status = status;
	strlcpy_s(p->dsn, dsn, sizeof(p->dsn));
	free(p->reason);
	p->reason = xstrdup(buf);
}

/* Replace *slot with a formatted note (warnings, the last lookup error). */
static void
mx_plan_note(char **slot, const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[512];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(*slot);
	*slot = xstrdup(buf);
}

static void
mx_plan_add_query(struct mx_plan *p, const char *name, enum sluice_dns_type type, int host)
{
	struct mx_query	*q;

	if (p->nq >= MX_LOOKUPS_MAX)
		return;		/* cannot happen: 1 + 2 per host at most */
	q = &p->q[p->nq++];
	q->name = xstrdup(name);
	q->type = type;
	q->host = host;
}

/* A host, looked up (A/AAAA per inet_protocols) when lookup; -1 when full. */
static int
mx_plan_add_host(struct mx_plan *p, const char *name, unsigned int preference, int lookup)
{
	struct mx_work	*w;
	int		 i;

	if (p->nhosts >= p->opt.max_hosts)
		return -1;
	i = (int)p->nhosts++;
	w = &p->hosts[i];
	w->name = xstrdup(name);
	w->preference = preference;
	if (!lookup)
		return i;
	if (p->opt.families != MX_INET_IPV4)
		mx_plan_add_query(p, name, SLUICE_DNS_AAAA, i);
	if (p->opt.families != MX_INET_IPV6)
		mx_plan_add_query(p, name, SLUICE_DNS_A, i);
	return i;
}

/* An address in text into ss with port; -1 when text is not an address. */
static int
mx_plan_address(const char *text, unsigned int port, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return 0;
	}
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}

static int
mx_family_allowed(const struct mx_plan *p, int family)
{
	if (family == AF_INET)
		return p->opt.families != MX_INET_IPV6;
	return p->opt.families != MX_INET_IPV4;
}

/* Add ss to w unless its family is off, it is there already, or w is full. */
static void
mx_plan_add_addr(struct mx_plan *p, struct mx_work *w, const struct sockaddr_storage *ss)
{
	struct sockaddr_storage	*list = ss->ss_family == AF_INET ? w->v4 : w->v6;
	size_t			*n = ss->ss_family == AF_INET ? &w->n4 : &w->n6;
	size_t			 i;

	if (!mx_family_allowed(p, ss->ss_family) || *n >= p->opt.max_addrs)
		return;
	for (i = 0; i < *n; i++)
		if (mx_addr_equal(&list[i], ss))
			return;
	list[(*n)++] = *ss;
}

static int
mx_null_target(const char *name)
{
	return name[0] == '\0' || strcmp(name, ".") == 0;
}

static int
mx_rec_cmp(const void *va, const void *vb)
{
	const struct mx_rec	*a = va, *b = vb;

	if (a->preference != b->preference)
		return a->preference < b->preference ? -1 : 1;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return 0;
}

static void
mx_plan_feed_mx(struct mx_plan *p, const struct sluice_dns_answer *a)
{
	switch (a->status) {
	case SLUICE_DNS_OK:
		mx_plan_use_mx(p, a);
		break;
	case SLUICE_DNS_NODATA:
		/* RFC 5321 5.1: no MX, the domain itself is the implicit MX. */
		p->implicit_mx = 1;
		mx_plan_add_host(p, p->dest.host, 0, 1);
		break;
	case SLUICE_DNS_NXDOMAIN:
		mx_plan_decide(p, MX_PERM, "5.1.2", "domain %s does not exist (MX lookup: nxdomain)",
		    p->dest.host);
		break;
	default:
		mx_plan_decide(p, MX_TEMP, "4.4.3", "MX lookup for %s failed: %s%s%s",
		    p->dest.host, mx_dns_word(a->status), a->why ? ", " : "",
		    a->why ? a->why : "");
		break;
	}
}

/* MX records: sort, shuffle equal preferences, drop null and duplicate ones. */
static void
mx_plan_use_mx(struct mx_plan *p, const struct sluice_dns_answer *a)
{
	struct mx_rec		*recs = xcalloc(a->count, sizeof(*recs));
	struct sockaddr_storage	 ss;
	size_t			 i, j, n = 0;
	int			 h;

	for (i = 0; i < a->count; i++) {
		if (mx_null_target(a->records[i].text))
			continue;
		recs[n].name = a->records[i].text;
		recs[n].preference = a->records[i].preference;
		recs[n++].key = mx_plan_random(p);
	}
	if (n == 0) {
		free(recs);
		mx_plan_decide(p, MX_PERM, "5.1.10",
		    "domain %s does not accept mail (null MX, RFC 7505)", p->dest.host);
		return;
	}
	qsort(recs, n, sizeof(*recs), mx_rec_cmp);
	for (i = 0; i < n; i++) {
		for (j = 0; j < p->nhosts; j++)
			if (strcasecmp(p->hosts[j].name, recs[i].name) == 0)
				break;
		if (j < p->nhosts)
			continue;
		if (mx_plan_address(recs[i].name, p->port, &ss) == 0) {
			/* Postfix: "numeric domain name" warned about, then used. */
			mx_plan_note(&p->warning, "numeric domain name in MX record of %s: %s",
			    p->dest.host, recs[i].name);
			h = mx_plan_add_host(p, recs[i].name, recs[i].preference, 0);
			if (h >= 0)
				mx_plan_add_addr(p, &p->hosts[h], &ss);
			continue;
		}
		if (mx_plan_add_host(p, recs[i].name, recs[i].preference, 1) < 0)
			break;
	}
	free(recs);
}

static void
mx_plan_feed_addr(struct mx_plan *p, struct mx_work *w, const struct sluice_dns_answer *a)
{
	struct sockaddr_storage	 ss;
	size_t			 i;
	int			 family = a->type == SLUICE_DNS_A ? AF_INET : AF_INET6;
	const char		*type = a->type == SLUICE_DNS_A ? "A" : "AAAA";

	switch (a->status) {
	case SLUICE_DNS_OK:
		for (i = 0; i < a->count; i++)
			if (mx_plan_address(a->records[i].text, p->port, &ss) == 0 &&
			    ss.ss_family == family)
				mx_plan_add_addr(p, w, &ss);
		break;
	case SLUICE_DNS_NODATA:
	case SLUICE_DNS_NXDOMAIN:
		if (p->last_error == NULL || !p->any_temp)
			mx_plan_note(&p->last_error, "host %s has no address (%s lookup: %s)",
			    w->name, type, mx_dns_word(a->status));
		break;
	default:
		p->any_temp = 1;
		mx_plan_note(&p->last_error, "%s lookup for %s failed: %s%s%s", type, w->name,
		    mx_dns_word(a->status), a->why ? ", " : "", a->why ? a->why : "");
		break;
	}
}

struct mx_result *
mx_plan_result(struct mx_plan *p)
{
	struct mx_result	*r = xcalloc(1, sizeof(*r));
	size_t			 h;

	r->domain = xstrdup(p->dest.host);
	r->implicit_mx = p->implicit_mx;
	r->smarthost = p->dest.smarthost;
	if (p->warning != NULL)
		r->warning = xstrdup(p->warning);
	if (p->decided) {
		r->status = p->status;
		strlcpy_s(r->dsn, p->dsn, sizeof(r->dsn));
		r->reason = xstrdup(p->reason);
	} else {
		r->hosts = xcalloc(p->nhosts ? p->nhosts : 1, sizeof(*r->hosts));
		for (h = 0; h < p->nhosts; h++)
			mx_result_take_host(r, &p->hosts[h], p);
		if (r->nhosts == 0)
			mx_result_no_hosts(r, p);
		else {
			r->status = MX_OK;
			strlcpy_s(r->dsn, "2.0.0", sizeof(r->dsn));
		}
	}
	/* A smart host is configuration: its failure defers, never bounces. */
	if (r->smarthost && r->status == MX_PERM) {
		r->status = MX_TEMP;
		r->dsn[0] = '4';
	}
	return r;
}

/* Append w to r with its addresses in order, unless it has none left. */
static void
mx_result_take_host(struct mx_result *r, struct mx_work *w, const struct mx_plan *p)
{
	const struct sockaddr_storage	*first = p->opt.prefer_ipv4 ? w->v4 : w->v6;
	const struct sockaddr_storage	*second = p->opt.prefer_ipv4 ? w->v6 : w->v4;
	size_t				 nfirst = p->opt.prefer_ipv4 ? w->n4 : w->n6;
	size_t				 nsecond = p->opt.prefer_ipv4 ? w->n6 : w->n4;
	struct mx_host			*out = &r->hosts[r->nhosts];
	size_t				 i;

	out->addrs = xcalloc(p->opt.max_addrs, sizeof(*out->addrs));
	for (i = 0; i < nfirst + nsecond && out->naddrs < p->opt.max_addrs; i++) {
		const struct sockaddr_storage *ss = i < nfirst ? &first[i] : &second[i - nfirst];

		if (!mx_result_has_addr(r, ss))
			out->addrs[out->naddrs++] = *ss;
	}
	if (out->naddrs == 0) {
		free(out->addrs);
		out->addrs = NULL;
		return;
	}
	out->name = xstrdup(w->name);
	out->preference = w->preference;
	r->nhosts++;
}

static void
mx_result_no_hosts(struct mx_result *r, struct mx_plan *p)
{
	const char	*why = p->last_error ? p->last_error : "no usable address";

	if (p->any_temp) {
		r->status = MX_TEMP;
		strlcpy_s(r->dsn, "4.4.3", sizeof(r->dsn));
	} else {
		r->status = MX_PERM;
		strlcpy_s(r->dsn, "5.4.4", sizeof(r->dsn));
	}
	if (p->implicit_mx || p->dest.no_mx)
		xasprintf(&r->reason, "no address for %s: %s", p->dest.host, why);
	else
		xasprintf(&r->reason, "no MX host for %s has an address: %s", p->dest.host, why);
}

/* Words for reasons (dns_status_name lives with the resolver, not here). */
static const char *
mx_dns_word(enum sluice_dns_status status)
{
	switch (status) {
	case SLUICE_DNS_OK:
		return "ok";
	case SLUICE_DNS_NODATA:
		return "nodata";
	case SLUICE_DNS_NXDOMAIN:
		return "nxdomain";
	case SLUICE_DNS_SERVFAIL:
		return "servfail";
	case SLUICE_DNS_TIMEOUT:
		return "timeout";
	default:
		return "error";
	}
}

/* --- Results --------------------------------------------------------------- */

static int
mx_addr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in	*a4 = (const struct sockaddr_in *)a;
	const struct sockaddr_in	*b4 = (const struct sockaddr_in *)b;
	const struct sockaddr_in6	*a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6	*b6 = (const struct sockaddr_in6 *)b;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr && a4->sin_port == b4->sin_port;
	return memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0 &&
	    a6->sin6_port == b6->sin6_port;
}

static int
mx_result_has_addr(const struct mx_result *r, const struct sockaddr_storage *ss)
{
	size_t	 h, i;

	for (h = 0; h < r->nhosts; h++)
		for (i = 0; i < r->hosts[h].naddrs; i++)
			if (mx_addr_equal(&r->hosts[h].addrs[i], ss))
				return 1;
	return 0;
}

void
mx_result_free(struct mx_result *r)
{
	size_t	 h;

	if (r == NULL)
		return;
	for (h = 0; h < r->nhosts; h++) {
		free(r->hosts[h].name);
		free(r->hosts[h].addrs);
	}
	free(r->hosts);
	free(r->reason);
	free(r->warning);
	free(r->domain);
	free(r);
}

/* ss is one of own[], or loopback on the port of a wildcard one. */
static int
mx_addr_is_own(const struct sockaddr_storage *ss, const struct sockaddr_storage *own, size_t nown)
{
	const struct sockaddr_in	*s4 = (const struct sockaddr_in *)ss, *o4;
	const struct sockaddr_in6	*s6 = (const struct sockaddr_in6 *)ss, *o6;
	size_t				 i;

	for (i = 0; i < nown; i++) {
		if (mx_addr_equal(ss, &own[i]))
			return 1;
		if (ss->ss_family != own[i].ss_family)
			continue;
		o4 = (const struct sockaddr_in *)&own[i];
		o6 = (const struct sockaddr_in6 *)&own[i];
		if (ss->ss_family == AF_INET && o4->sin_addr.s_addr == htonl(INADDR_ANY) &&
		    o4->sin_port == s4->sin_port && (ntohl(s4->sin_addr.s_addr) >> 24) == 127)
			return 1;
		if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&o6->sin6_addr) &&
		    o6->sin6_port == s6->sin6_port && IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return 1;
	}
	return 0;
}

int
mx_result_check_loop(struct mx_result *r, const struct sockaddr_storage *own, size_t nown)
{
	size_t		 h, i, keep;
	unsigned int	 pref;

	if (r->status != MX_OK || r->smarthost)
		return 0;
	for (h = 0; h < r->nhosts; h++)
		for (i = 0; i < r->hosts[h].naddrs; i++)
			if (mx_addr_is_own(&r->hosts[h].addrs[i], own, nown))
				goto found;
	return 0;
found:
	/* We are an MX of preference pref: only better hosts may take it. */
	pref = r->hosts[h].preference;
	for (keep = 0; keep < r->nhosts && r->hosts[keep].preference < pref; keep++)
		;
	for (i = keep; i < r->nhosts; i++) {
		free(r->hosts[i].name);
		free(r->hosts[i].addrs);
	}
	r->nhosts = keep;
	if (keep > 0)
		return 0;
	r->status = MX_TEMP;
	strlcpy_s(r->dsn, "4.4.6", sizeof(r->dsn));
	free(r->reason);
	xasprintf(&r->reason, "mail for %s loops back to myself", r->domain);
	return 1;
}

void
mx_result_format_host(const struct mx_host *h, char *buf, size_t size)
{
	char	 addr[INET6_ADDRSTRLEN];
	size_t	 i, len;
	int	 port;

	len = (size_t)snprintf(buf, size, "%s", h->name);
	for (i = 0; i < h->naddrs && len < size; i++) {
		sockaddr_format((const struct sockaddr *)&h->addrs[i], addr, sizeof(addr), &port);
		len += (size_t)snprintf(buf + len, size - len, "%s[%s]:%d", i ? "," : "", addr,
		    port);
	}
}
