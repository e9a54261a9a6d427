/*
 * rdns.c - the client's verified host name, found before the greeting.
 *
 * Forward-confirmed reverse DNS, as Postfix does it: the PTR names of the
 * client address, then the A (or AAAA) records of each name, at most
 * RDNS_NAMES of them; the first name whose records include the address is
 * the client's host name.  Anything else (no PTR, a name that does not
 * point back, a temporary failure) leaves it unknown: the name is a
 * claim by whoever controls the reverse zone until the forward zone
 * agrees.  Lookups are asynchronous; the session waits (busy, so early
 * input is held) and is found again by id when the answers come.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "generation.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "worker.h"

#define RDNS_NAMES	3	/* PTR names checked, like Postfix's smtpd */

struct rdns {
	uint64_t		 session_id;
	struct worker		*worker;
	struct generation	*gen;		/* held: its resolver answers us */
	struct dns_resolver	*resolver;
	void			(*done)(struct session *);
	char			*names[RDNS_NAMES];
	size_t			 nnames;
	size_t			 next;		/* name being confirmed */
	const char		*why;		/* for the log line */
};

static void	 rdns_ptr_answered(void *, const struct sluice_dns_answer *);
static void	 rdns_forward_answered(void *, const struct sluice_dns_answer *);
static void	 rdns_confirm_next(struct rdns *, struct session *);
static void	 rdns_finish(struct rdns *, struct session *, const char *);

/* "7.2.0.192.in-addr.arpa" or the ip6.arpa nibbles; -1 if not an address. */
static int
rdns_ptr_name(const char *addr, char *buf, size_t size)
{
	unsigned char	 a[16];
	size_t		 i, n = 0;

	if (inet_pton(AF_INET, addr, a) == 1) {
		snprintf(buf, size, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, a) != 1 || size < 74)
		return -1;
	for (i = 16; i-- > 0;)
		n += (size_t)snprintf(buf + n, size - n, "%x.%x.", a[i] & 0xf, a[i] >> 4);
	snprintf(buf + n, size - n, "ip6.arpa");
	return 0;
}

void
session_rdns(struct session *s, void (*done)(struct session *))
{
	struct rdns	*r = xcalloc(1, sizeof(*r));
	char		 name[80];

	r->session_id = s->id;
	r->worker = s->worker;
	r->gen = s->gen;
	generation_ref(r->gen);
	r->resolver = s->gen->dns;
	r->done = done;
	if (rdns_ptr_name(s->addr, name, sizeof(name)) == -1 ||
	    dns_query(r->resolver, s->worker, name, SLUICE_DNS_PTR, rdns_ptr_answered, r) == -1) {
		rdns_finish(r, s, "no reverse name");
		return;
	}
}

/* The session, if it still lives. */
static struct session *
rdns_session(struct rdns *r)
{
	return worker_session_find(r->worker, r->session_id);
}

static void
rdns_ptr_answered(void *arg, const struct sluice_dns_answer *a)
{
	struct rdns	*r = arg;
	struct session	*s = rdns_session(r);
	size_t		 i;

	if (s == NULL) {
		rdns_finish(r, NULL, NULL);
		return;
	}
	if (a->status != SLUICE_DNS_OK) {
		rdns_finish(r, s, dns_status_name(a->status));
		return;
	}
	for (i = 0; i < a->count && r->nnames < RDNS_NAMES; i++)
		r->names[r->nnames++] = xstrdup(a->records[i].text);
	r->next = 0;
	rdns_confirm_next(r, s);
}

static void
rdns_confirm_next(struct rdns *r, struct session *s)
{
	enum sluice_dns_type	 type = strchr(s->addr, ':') != NULL ? SLUICE_DNS_AAAA :
				    SLUICE_DNS_A;

	while (r->next < r->nnames) {
		if (dns_query(r->resolver, s->worker, r->names[r->next], type,
		    rdns_forward_answered, r) == 0)
			return;
		r->next++;	/* not a name we can ask */
	}
	rdns_finish(r, s, r->why != NULL ? r->why : "name does not point back");
}

/* Same address, whatever the text form ("::ffff:..." or zero runs). */
static int
rdns_same_address(const char *a, const char *b)
{
	unsigned char	 x[16], y[16];
	int		 af = strchr(a, ':') != NULL ? AF_INET6 : AF_INET;

	if (inet_pton(af, a, x) != 1 || inet_pton(af, b, y) != 1)
		return 0;
	return memcmp(x, y, af == AF_INET6 ? 16 : 4) == 0;
}

static void
rdns_forward_answered(void *arg, const struct sluice_dns_answer *a)
{
	struct rdns	*r = arg;
	struct session	*s = rdns_session(r);
	size_t		 i;

	if (s == NULL) {
		rdns_finish(r, NULL, NULL);
		return;
	}
	for (i = 0; a->status == SLUICE_DNS_OK && i < a->count; i++)
		if (rdns_same_address(s->addr, a->records[i].text)) {
			s->hostname = xstrdup(r->names[r->next]);
			rdns_finish(r, s, NULL);
			return;
		}
	if (a->status == SLUICE_DNS_SERVFAIL || a->status == SLUICE_DNS_TIMEOUT)
		r->why = dns_status_name(a->status);
	r->next++;
	rdns_confirm_next(r, s);
}

static void
rdns_finish(struct rdns *r, struct session *s, const char *why)
{
	size_t	 i;

	if (s != NULL) {
		if (s->hostname != NULL)
			session_log(s, LOG_LEVEL_DEBUG, "rdns client=%s name=%s", s->addr,
			    s->hostname);
		else
			session_log(s, LOG_LEVEL_DEBUG, "rdns client=%s name=unknown "
			    "reason=\"%s\"", s->addr, why != NULL ? why : "");
		r->done(s);
	}
	for (i = 0; i < r->nnames; i++)
		free(r->names[i]);
	generation_unref(r->gen);
	free(r);
}
