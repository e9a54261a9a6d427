/*
 * dns.c - the resolver (see dns.h): libunbound's event API on each
 * worker's loop, answers read from the wire packet (dns_parse.c).
 *
 * Why the packet: unbound's event callback reports NXDOMAIN as rcode 0,
 * and filters must tell "no such domain" (SPF none, DKIM permerror) from
 * "try later".  Why our own timer: unbound retries a silent server for
 * much longer than a mail transaction can wait.
 *
 * A query object is owned by two parties: unbound (until its callback, or
 * a successful ub_cancel) and the caller (until its callback ran).  It is
 * freed when both are done; a context being deleted frees what unbound
 * still held.  The caller's callback always runs from a libevent callback
 * of the query's own event, never inside dns_query(), even when unbound
 * answers from its cache at once.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <unbound.h>
#include <unbound-event.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "pool.h"
#include "util.h"
#include "worker.h"

struct dns_query;

/* One worker's unbound context and the queries unbound still holds. */
struct dns_wctx {
	struct ub_ctx		*ub;
	struct dns_query	*queries;	/* outstanding in unbound, doubly linked */
};

struct dns_resolver {
	char			**forwarders;	/* copies */
	size_t			  nforwarders;
	long long		  timeout_ms;
	int			  dnssec;
	int			  local_zones;
	char			 *trust_anchor;
	char			 *resolv_conf;	/* "" = recurse */
	struct dns_wctx		  w[WORKERS_MAX];
};

struct dns_query {
	struct dns_wctx		*wctx;		/* whose unbound holds it */
	struct event		*ev;		/* timeout, and deferred delivery */
	char			*name;
	enum sluice_dns_type	 type;
	dns_cb			 cb;
	void			*arg;
	int			 async_id;	/* unbound's */
	int			 in_unbound;	/* unbound may still call back */
	int			 delivered;	/* cb ran */
	struct sluice_dns_answer *answer;	/* parsed, waiting for delivery */
	struct dns_query	*prev, *next;	/* in wctx->queries while in_unbound */
};

/* A pool thread waiting for an answer (dns_lookup). */
struct dns_wait {
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	atomic_int		 refs;		/* waiter + the loop side */
	struct dns_resolver	*r;
	struct worker		*w;
	char			*name;
	enum sluice_dns_type	 type;
	struct sluice_dns_answer *answer;	/* set once */
};

/* Unbound's built-in zones that local_zones = no hands to the forwarders. */
static const char *const dns_local_zones[] = {
	"localhost. transparent", "127.in-addr.arpa. transparent",
	"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa. transparent",
	"2.0.192.in-addr.arpa. transparent", "100.51.198.in-addr.arpa. transparent",
	"113.0.203.in-addr.arpa. transparent", "test. transparent", "invalid. transparent",
	"home.arpa. transparent",
};

static void	 dns_ub_cb(void *, int, void *, int, int, char *, int);
static void	 dns_event_cb(evutil_socket_t, short, void *);
static void	 dns_query_release(struct dns_query *);
static struct dns_wctx *dns_wctx_get(struct dns_resolver *, struct worker *, char *, size_t);
static int	 dns_ctx_configure(struct dns_resolver *, struct ub_ctx *, char *, size_t);

/* --- Resolver ------------------------------------------------------------- */

struct dns_resolver *
dns_resolver_new(const struct config_resolver *conf, const char *file, char *err,
    size_t errlen)
{
	struct dns_resolver	*r = xcalloc(1, sizeof(*r));
	struct ub_ctx		*probe;
	char			 why[512];
	size_t			 i;

	r->nforwarders = conf->nforwarders;
	r->forwarders = xcalloc(r->nforwarders + 1, sizeof(*r->forwarders));
	for (i = 0; i < r->nforwarders; i++)
		r->forwarders[i] = xstrdup(conf->forwarders[i]);
	r->timeout_ms = conf->timeout_ms;
	r->dnssec = conf->dnssec;
	r->local_zones = conf->local_zones;
	r->trust_anchor = xstrdup(conf->trust_anchor);
	r->resolv_conf = xstrdup(conf->resolv_conf);
	/* Configure a throw-away context now, so a bad setting fails the load. */
	if ((probe = ub_ctx_create()) == NULL) {
		snprintf(err, errlen, "resolver: cannot create an unbound context");
		dns_resolver_free(r);
		return NULL;
	}
	if (dns_ctx_configure(r, probe, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s:%d: %s", file, conf->line, why);
		ub_ctx_delete(probe);
		dns_resolver_free(r);
		return NULL;
	}
	ub_ctx_delete(probe);
	return r;
}

static int
dns_ctx_configure(struct dns_resolver *r, struct ub_ctx *ub, char *err, size_t errlen)
{
	size_t	 i;
	int	 rc;

	/* No validator unless asked: it costs a lookup chain per answer. */
	if (!r->dnssec && (rc = ub_ctx_set_option(ub, "module-config:", "iterator")) != 0)
		goto fail;
	/* local_zones = no: names without local data go to the forwarders (tests). */
	for (i = 0; !r->local_zones && i < nitems(dns_local_zones); i++)
		if ((rc = ub_ctx_set_option(ub, "local-zone:", dns_local_zones[i])) != 0)
			goto fail;
	/* Clients on private networks have PTR records on the site's servers. */
	if ((rc = ub_ctx_set_option(ub, "unblock-lan-zones:", "yes")) != 0 ||
	    (rc = ub_ctx_set_option(ub, "insecure-lan-zones:", "yes")) != 0)
		goto fail;
	for (i = 0; i < r->nforwarders; i++)
		if ((rc = ub_ctx_set_fwd(ub, r->forwarders[i])) != 0) {
			snprintf(err, errlen, "resolver: forwarder \"%s\": %s", r->forwarders[i],
			    ub_strerror(rc));
			return -1;
		}
	if (r->nforwarders == 0 && r->resolv_conf[0] != '\0' &&
	    (rc = ub_ctx_resolvconf(ub, r->resolv_conf)) != 0) {
		snprintf(err, errlen, "resolver: resolv_conf \"%s\": %s", r->resolv_conf,
		    rc == UB_READFILE ? strerror(errno) : ub_strerror(rc));
		return -1;
	}
	/* Unbound reads the file at the first query: find out now. */
	if (r->dnssec && access(r->trust_anchor, R_OK) == -1) {
		snprintf(err, errlen, "resolver: trust_anchor \"%s\": %s (install "
		    "dns-root-data or set trust_anchor)", r->trust_anchor, strerror(errno));
		return -1;
	}
	if (r->dnssec && (rc = ub_ctx_add_ta_file(ub, r->trust_anchor)) != 0) {
		snprintf(err, errlen, "resolver: trust_anchor \"%s\": %s (install "
		    "dns-root-data or set trust_anchor)", r->trust_anchor, ub_strerror(rc));
		return -1;
	}
	return 0;
fail:
	snprintf(err, errlen, "resolver: %s", ub_strerror(rc));
	return -1;
}

/* Free the queries unbound held: it will not call back after a delete. */
static void
dns_wctx_close(struct dns_wctx *c)
{
	struct dns_query	*q, *next;

	if (c->ub == NULL)
		return;
	ub_ctx_delete(c->ub);
	c->ub = NULL;
	for (q = c->queries; q != NULL; q = next) {
		next = q->next;
		q->in_unbound = 0;
		q->wctx = NULL;
		if (!q->delivered) {
			/* Only at exit, with the loops stopped: nobody waits. */
			q->delivered = 1;
		}
		dns_query_release(q);
	}
	c->queries = NULL;
}

void
dns_resolver_worker_close(struct dns_resolver *r, struct worker *w)
{
	if (r != NULL && w != NULL && w->id >= 0 && w->id < WORKERS_MAX)
		dns_wctx_close(&r->w[w->id]);
}

void
dns_resolver_free(struct dns_resolver *r)
{
	size_t	 i;

	if (r == NULL)
		return;
	for (i = 0; i < WORKERS_MAX; i++)
		dns_wctx_close(&r->w[i]);
	for (i = 0; i < r->nforwarders; i++)
		free(r->forwarders[i]);
	free(r->forwarders);
	free(r->trust_anchor);
	free(r->resolv_conf);
	free(r);
}

static struct dns_wctx *
dns_wctx_get(struct dns_resolver *r, struct worker *w, char *err, size_t errlen)
{
	struct dns_wctx	*c;

	if (w == NULL || w->id < 0 || w->id >= WORKERS_MAX) {
		snprintf(err, errlen, "not on an event loop");
		return NULL;
	}
	c = &r->w[w->id];
	if (c->ub != NULL)
		return c;
	if ((c->ub = ub_ctx_create_event(w->base)) == NULL) {
		snprintf(err, errlen, "cannot create an unbound context");
		return NULL;
	}
	if (dns_ctx_configure(r, c->ub, err, errlen) == -1) {
		ub_ctx_delete(c->ub);
		c->ub = NULL;
		return NULL;
	}
	return c;
}

/* --- Queries -------------------------------------------------------------- */

static int
dns_name_valid(const char *name)
{
	size_t	 len = strlen(name), label = 0, i;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char	 ch = (unsigned char)name[i];

		if (ch == '.') {
			if (label == 0 && !(i == len - 1 && len == 1))
				return 0;
			label = 0;
			continue;
		}
		/* Any byte but controls and space: TXT owners may hold '_', '*'. */
		if (ch <= ' ' || ch == 0x7f || ++label > 63)
			return 0;
	}
	return 1;
}

int
dns_query(struct dns_resolver *r, struct worker *w, const char *name, enum sluice_dns_type type,
    dns_cb cb, void *arg)
{
	struct dns_query	*q;
	struct dns_wctx		*c;
	struct timeval		 tv;
	char			 why[256];
	int			 rc;

	if (!dns_name_valid(name))
		return -1;
	q = xcalloc(1, sizeof(*q));
	q->name = xstrdup(name);
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	if ((q->ev = event_new(w->base, -1, 0, dns_event_cb, q)) == NULL)
		fatal("event_new");
	if ((c = dns_wctx_get(r, w, why, sizeof(why))) == NULL) {
		q->answer = dns_answer_status(name, type, SLUICE_DNS_ERROR, why);
		event_active(q->ev, EV_TIMEOUT, 0);
		return 0;
	}
	q->wctx = c;
	q->in_unbound = 1;
	q->next = c->queries;
	if (c->queries != NULL)
		c->queries->prev = q;
	c->queries = q;
	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	evtimer_add(q->ev, &tv);
	rc = ub_resolve_event(c->ub, name, (int)type, 1, q, dns_ub_cb, &q->async_id);
	if (rc != 0) {
		/* Unbound did not take it: it will not call back. */
		q->in_unbound = 0;
		dns_query_release(q);	/* unlink only: delivered is 0 */
		if (q->answer == NULL)
			q->answer = dns_answer_status(name, type, SLUICE_DNS_ERROR,
			    ub_strerror(rc));
		event_active(q->ev, EV_TIMEOUT, 0);
	}
	return 0;
}

/* Unbound's answer (perhaps from inside ub_resolve_event: defer delivery). */
static void
dns_ub_cb(void *arg, int rcode, void *packet, int len, int sec, char *why_bogus,
    int ratelimited)
{
	struct dns_query	*q = arg;

	(void)ratelimited;
	q->in_unbound = 0;
	if (!q->delivered && q->answer == NULL) {
		if (packet == NULL || len <= 0)
			q->answer = dns_answer_status(q->name, q->type, SLUICE_DNS_SERVFAIL,
			    rcode != 0 ? ub_strerror(rcode) : "no answer");
		else if (sec == 1)
			q->answer = dns_answer_status(q->name, q->type, SLUICE_DNS_SERVFAIL,
			    why_bogus != NULL ? why_bogus : "DNSSEC validation failed");
		else {
			q->answer = dns_answer_parse(q->name, q->type, packet, (size_t)len);
			q->answer->secure = sec == 2;
		}
		event_active(q->ev, EV_TIMEOUT, 0);
	}
	dns_query_release(q);
}

/* Timer or deferred delivery: run the caller's callback once. */
static void
dns_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_query	*q = arg;
	struct sluice_dns_answer *a;

	(void)fd;
	(void)what;
	if (q->delivered)
		return;
	if ((a = q->answer) == NULL)
		a = q->answer = dns_answer_status(q->name, q->type, SLUICE_DNS_TIMEOUT,
		    "no answer in time");
	q->delivered = 1;
	if (q->in_unbound && q->wctx != NULL && ub_cancel(q->wctx->ub, q->async_id) == 0)
		q->in_unbound = 0;
	q->cb(q->arg, a);
	dns_query_release(q);
}

/* Unlink from unbound's list when unbound let go; free when both are done. */
static void
dns_query_release(struct dns_query *q)
{
	if (!q->in_unbound && q->wctx != NULL) {
		if (q->prev != NULL)
			q->prev->next = q->next;
		else if (q->wctx->queries == q)
			q->wctx->queries = q->next;
		if (q->next != NULL)
			q->next->prev = q->prev;
		q->prev = q->next = NULL;
		q->wctx = NULL;
	}
	if (q->in_unbound || !q->delivered)
		return;
	event_free(q->ev);
	dns_answer_free(q->answer);
	free(q->name);
	free(q);
}

/* --- Synchronous lookups from the pool -------------------------------------- */

static void
dns_wait_unref(struct dns_wait *wt)
{
	if (atomic_fetch_sub(&wt->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&wt->lock);
	pthread_cond_destroy(&wt->cond);
	dns_answer_free(wt->answer);
	free(wt->name);
	free(wt);
}

static void
dns_wait_answered(void *arg, const struct sluice_dns_answer *a)
{
	struct dns_wait	*wt = arg;

	pthread_mutex_lock(&wt->lock);
	wt->answer = dns_answer_dup(a);
	pthread_cond_signal(&wt->cond);
	pthread_mutex_unlock(&wt->lock);
	dns_wait_unref(wt);
}

static void
dns_wait_start(void *arg)
{
	struct dns_wait	*wt = arg;

	if (dns_query(wt->r, wt->w, wt->name, wt->type, dns_wait_answered, wt) == -1) {
		struct sluice_dns_answer *a = dns_answer_status(wt->name, wt->type,
		    SLUICE_DNS_ERROR, "not a domain name");

		dns_wait_answered(wt, a);
		dns_answer_free(a);
	}
}

struct sluice_dns_answer *
dns_lookup(struct dns_resolver *r, const char *name, enum sluice_dns_type type)
{
	struct dns_wait		*wt;
	struct sluice_dns_answer *a;
	struct worker		*w = pool_job_worker();
	struct timespec		 deadline;
	long long		 wait_ms;

	if (worker_current() != NULL)
		return dns_answer_status(name, type, SLUICE_DNS_ERROR,
		    "blocking lookup called from an event loop");
	if (w == NULL && worker_count() > 0)
		w = worker_get(0);
	if (r == NULL || w == NULL)
		return dns_answer_status(name, type, SLUICE_DNS_ERROR, "no resolver");
	if (!dns_name_valid(name))
		return dns_answer_status(name, type, SLUICE_DNS_ERROR, "not a domain name");
	wt = xcalloc(1, sizeof(*wt));
	pthread_mutex_init(&wt->lock, NULL);
	pthread_cond_init(&wt->cond, NULL);
	atomic_init(&wt->refs, 2);
	wt->r = r;
	wt->w = w;
	wt->name = xstrdup(name);
	wt->type = type;
	worker_post(w, dns_wait_start, wt);
	/* The loop answers within the timeout; the bound is for a stopped loop. */
	wait_ms = r->timeout_ms * 2 + 2000;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += wait_ms / 1000;
	deadline.tv_nsec += (wait_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&wt->lock);
	while (wt->answer == NULL)
		if (pthread_cond_timedwait(&wt->cond, &wt->lock, &deadline) == ETIMEDOUT)
			break;
	a = wt->answer;
	wt->answer = NULL;
	pthread_mutex_unlock(&wt->lock);
	dns_wait_unref(wt);
	if (a == NULL)
		a = dns_answer_status(name, type, SLUICE_DNS_TIMEOUT, "resolver loop did not answer");
	return a;
}
