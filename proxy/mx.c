/*
 * mx.c - run an mx_plan (mx_plan.c) on a worker's loop: ask the plan's
 * queries through dns_query(), feed the answers back, and hand the
 * result to the caller's callback once the plan is done.
 *
 * The queries of one stage go out together (every MX host's A and AAAA
 * at once), so a resolution costs two round trips, not one per host.
 * dns_query() calls back exactly once per accepted query, so a lookup
 * counts its outstanding queries and frees itself when the last one is
 * back, also after a cancel; each query's timeout is the resolver's.
 */
#include "autoconf.h"

#include <stdlib.h>

#include <event2/event.h>

#include "dns.h"
#include "log.h"
#include "mx.h"
#include "util.h"
#include "worker.h"

struct mx_lookup {
	struct mx_plan		*plan;
	struct dns_resolver	*res;
	struct worker		*w;
	mx_cb			 cb;
	void			*arg;
	int			 outstanding;	/* dns_query callbacks still to come */
	int			 cancelled;	/* cb must not run */
	struct event		*finish;	/* deferred delivery when nothing was asked */
};

/* What a DNS callback needs: the lookup and the plan's query id. */
struct mx_ask {
	struct mx_lookup	*l;
	int			 id;
};

static void	 mx_lookup_ask(struct mx_lookup *);
static void	 mx_lookup_answer(void *, const struct sluice_dns_answer *);
static void	 mx_lookup_finish(evutil_socket_t, short, void *);
static void	 mx_lookup_end(struct mx_lookup *);

struct mx_lookup *
mx_resolve(struct dns_resolver *res, struct worker *w, const struct mx_dest *d,
    const struct mx_options *o, uint64_t seed, mx_cb cb, void *arg)
{
	struct mx_lookup	*l = xcalloc(1, sizeof(*l));

	l->plan = mx_plan_new(d, o, seed);
	l->res = res;
	l->w = w;
	l->cb = cb;
	l->arg = arg;
	l->finish = event_new(w->base, -1, 0, mx_lookup_finish, l);
	if (l->finish == NULL)
		fatal("event_new");
	mx_lookup_ask(l);
	/* Never call back inside mx_resolve: an answer-free plan finishes next turn. */
	if (l->outstanding == 0)
		event_active(l->finish, 0, 0);
	return l;
}

void
mx_lookup_cancel(struct mx_lookup *l)
{
	if (l == NULL)
		return;
	l->cancelled = 1;
	if (l->outstanding == 0)
		mx_lookup_end(l);
}

/* Ask every query the plan has now; one that cannot be asked is fed an error. */
static void
mx_lookup_ask(struct mx_lookup *l)
{
	struct sluice_dns_answer	*err;
	struct mx_ask			*ask;
	const char			*name;
	enum sluice_dns_type		 type;
	int				 id;

	while ((id = mx_plan_next(l->plan, &name, &type)) >= 0) {
		ask = xcalloc(1, sizeof(*ask));
		ask->l = l;
		ask->id = id;
		if (dns_query(l->res, l->w, name, type, mx_lookup_answer, ask) == 0) {
			l->outstanding++;
			continue;
		}
		free(ask);
		err = dns_answer_status(name, type, SLUICE_DNS_ERROR, "name cannot be asked");
		mx_plan_feed(l->plan, id, err);
		dns_answer_free(err);
	}
}

static void
mx_lookup_answer(void *arg, const struct sluice_dns_answer *a)
{
	struct mx_ask		*ask = arg;
	struct mx_lookup	*l = ask->l;

	l->outstanding--;
	if (!l->cancelled) {
		mx_plan_feed(l->plan, ask->id, a);
		mx_lookup_ask(l);
	}
	free(ask);
	if (l->outstanding == 0) {
		if (!l->cancelled && mx_plan_done(l->plan))
			l->cb(l->arg, mx_plan_result(l->plan));
		mx_lookup_end(l);
	}
}

static void
mx_lookup_finish(evutil_socket_t fd, short what, void *arg)
{
	struct mx_lookup	*l = arg;

	(void)fd;
	(void)what;
	/* A cancel before this ran freed l and this event with it. */
	l->cb(l->arg, mx_plan_result(l->plan));
	mx_lookup_end(l);
}

static void
mx_lookup_end(struct mx_lookup *l)
{
	event_free(l->finish);
	mx_plan_free(l->plan);
	free(l);
}
