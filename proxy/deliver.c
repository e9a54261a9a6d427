/*
 * deliver.c - the relay scheduler: queue -> destinations -> delivery ->
 * results -> retry, DSN or removal.
 *
 * Everything here runs on worker 0's loop (deliver.h says why); other
 * threads only post closures to it.  The moving parts:
 *
 *   ready	ids to open, in arrival order: new messages (the committer's
 *		notification), due deferred ones (the timer), a flush;
 *   heap	deferred ids by next attempt; one timer for the earliest.  A
 *		rescan every SCHED_RESCAN_S rebuilds it from deferred/, so
 *		what `sluice queue release` moved there is found without a
 *		directory scan every second;
 *   msgs	open messages (file held with its lock, so `sluice queue`
 *		refuses to change them), each split into jobs: one per
 *		destination batch of its pending recipients;
 *   pending	jobs waiting for a slot, in order; a job whose destination
 *		is at max_per_destination waits without blocking the others.
 *
 * A job resolves its destination (mx_resolve), delivers (deliver_smtp)
 * and, first thing in its completion, appends its recipients' results to
 * the message file in one write and one fdatasync (queue_msg_record_many).
 * When a message's last job is done it is deferred with backoff, or, all
 * recipients final, gets one DSN for the failed ones (queue_inject,
 * sender <>) and is removed.  Crash
 * windows: the remote's 250 before the record (delivered twice), and the
 * DSN's commit before the removal (two DSNs); nothing is ever lost.
 *
 * The relay settings are read from the generation current when a message
 * is opened; it holds that generation until it is closed.
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "deliver.h"
#include "deliver_smtp.h"
#include "dsn.h"
#include "generation.h"
#include "log.h"
#include "mx.h"
#include "queue.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define SCHED_RESCAN_S		300	/* deferred/ and active/ re-read */
#define SCHED_OPEN_MAX		1000	/* messages open (file, lock) at once */
#define SCHED_REPLY_MAX		900	/* recorded reply text */
#define SCHED_DSN_READ_MAX	(2 * 1024 * 1024)	/* of the original, for the DSN */

struct sched_ready {
	TAILQ_ENTRY(sched_ready) link;		/* in sched.ready */
	char			 id[QUEUE_ID_LEN + 1];
	enum queue_state	 state;		/* folder to open it in */
	int			 force;		/* flush: ignore next_attempt */
};
TAILQ_HEAD(sched_ready_list, sched_ready);

struct sched_msg;

/* A destination with jobs running: the per-destination cap. */
struct sched_dest {
	LIST_ENTRY(sched_dest)	 link;		/* in sched.dests */
	char			*name;		/* the destination text (key) */
	int			 running;	/* jobs started, not done */
};

/* One destination batch of one message. */
struct sched_job {
	TAILQ_ENTRY(sched_job)	 link;		/* sched.pending, then sched.running */
	struct sched_msg	*msg;		/* owner */
	char			*dest;		/* destination text: domain or smart host */
	char			*domain;	/* recipient domain, lower case */
	int			 smarthost;	/* dest came from a route or smart_host */
	size_t			*idx;		/* env recipient indices */
	struct deliver_smtp_rcpt *rcpts;	/* the batch, results written */
	size_t			 n;		/* entries in idx and rcpts */
	struct sched_dest	*slot;		/* counted against this, NULL = waiting */
	struct mx_lookup	*lookup;	/* resolution running */
	struct mx_result	*mx;		/* resolved candidates (owned) */
	struct deliver_smtp_host *hosts;	/* from mx, for deliver_smtp */
	struct deliver_smtp	*d;		/* delivery running */
	struct deliver_smtp_job	 job;		/* what deliver_smtp sees */
	struct event		*later;		/* completion of a job that never started */
};
TAILQ_HEAD(sched_job_list, sched_job);

/* An open message: its file, lock and generation held until closed. */
struct sched_msg {
	TAILQ_ENTRY(sched_msg)	 link;		/* in sched.msgs */
	struct queue_msg	*m;		/* the file, locked */
	struct generation	*g;		/* settings it runs under */
	char			 id[QUEUE_ID_LEN + 1];
	size_t			 nrcpts;	/* entries in notify and orcpt */
	int			 jobs;		/* not done yet */
	int			 dropped;	/* jobs dropped by a drain: close quietly */
	int64_t			 prev_when;	/* last result before this run (delay DSN) */
	char			**notify;	/* per recipient NOTIFY value or NULL */
	char			**orcpt;	/* per recipient ORCPT value or NULL */
	char			*ret;		/* RET value or NULL */
	char			*envid;		/* ENVID value or NULL */
	int			 body_8bit;	/* BODY=8BITMIME */
	int			 smtputf8;	/* SMTPUTF8 */
};
TAILQ_HEAD(sched_msg_list, sched_msg);

struct sched_heap_entry {
	int64_t			 when;		/* next attempt, unix seconds; 0 = read it */
	char			 id[QUEUE_ID_LEN + 1];
};

static struct {
	struct worker		*w;		/* worker 0 */
	struct event_base	*base;		/* its loop */
	struct event		*kick;		/* run the dispatcher soon */
	struct event		*timer;		/* earliest heap entry */
	struct event		*rescan;	/* every SCHED_RESCAN_S */
	struct sched_ready_list	 ready;
	size_t			 nready;
	struct sched_msg_list	 msgs;
	size_t			 nmsgs;
	struct sched_job_list	 pending;
	size_t			 npending;
	struct sched_job_list	 running;
	size_t			 nrunning;
	LIST_HEAD(, sched_dest)	 dests;
	struct sched_heap_entry	*heap;
	size_t			 nheap, heap_size;
	struct deliver_smtp_cache *cache;	/* connections of this loop */
	struct tls_client	*tls;		/* the cache's STARTTLS context, or NULL */
	uint64_t		 cache_gen;	/* generation whose settings it has */
	int			 draining;	/* SIGTERM: start nothing */
	uint64_t		 sent, deferred, bounced, expired;	/* recipients */
} sched;

static _Atomic(struct worker *) sched_worker;	/* NULL before start, after stop */
static atomic_long	 sched_busy;		/* open messages */

static void	 sched_start_cb(void *);
static void	 sched_notify_cb(void *);
static void	 sched_flush_cb(void *);
static void	 sched_status_cb(void *);
static void	 sched_drain_cb(void *);
static void	 sched_cancel_cb(void *);
static void	 sched_stop_cb(void *);
static void	 sched_kick(void);
static void	 sched_kick_cb(evutil_socket_t, short, void *);
static void	 sched_timer_cb(evutil_socket_t, short, void *);
static void	 sched_rescan_cb(evutil_socket_t, short, void *);
static void	 sched_scan(int);
static void	 sched_ready_add(const char *, enum queue_state, int);
static void	 sched_heap_push(int64_t, const char *);
static void	 sched_heap_pop(struct sched_heap_entry *);
static void	 sched_timer_arm(void);
static void	 sched_dispatch(void);
static int	 sched_start_pending(const struct config_relay *);
static void	 sched_open(struct sched_ready *);
static struct sched_msg *sched_msg_new(struct queue_msg *);
static void	 sched_msg_params(struct sched_msg *);
static void	 sched_msg_split(struct sched_msg *);
static const char *sched_route(const struct config *, const char *, int *);
static void	 sched_msg_finish(struct sched_msg *);
static void	 sched_msg_defer(struct sched_msg *, int64_t);
static void	 sched_msg_expire(struct sched_msg *, int64_t);
static void	 sched_msg_close(struct sched_msg *);
static void	 sched_job_free(struct sched_job *);
static void	 sched_job_start(struct sched_job *);
static void	 sched_job_fail(struct sched_job *, enum deliver_class, const char *,
		    const char *);
static void	 sched_job_later_cb(evutil_socket_t, short, void *);
static void	 sched_job_resolved(void *, struct mx_result *);
static void	 sched_job_delivered(void *, struct deliver_smtp_job *);
static void	 sched_job_done(struct sched_job *);
static void	 sched_job_record(struct sched_job *);
static void	 sched_job_log(struct sched_job *, enum deliver_class);
static void	 sched_job_cancel(struct sched_job *);
static struct sched_dest *sched_dest_get(const char *);
static void	 sched_dest_put(struct sched_dest **);
static struct deliver_smtp_cache *sched_cache(struct generation *);
static struct tls_client *sched_tls_client(void);
static void	 sched_reply_format(const struct deliver_smtp_result *, char *, size_t);
static void	 sched_dsn_send(struct sched_msg *, enum dsn_action);
static char	*sched_param(const char *, const char *);

/* --- The pure part --------------------------------------------------------- */

int64_t
deliver_backoff(unsigned int attempts, int64_t min_s, int64_t max_s, double rnd)
{
	double	 d = (double)min_s;
	int64_t	 v;

	if (min_s < 1)
		min_s = 1;
	if (max_s < min_s)
		max_s = min_s;
	while (attempts-- > 1 && d < (double)max_s)
		d *= 2;
	if (d > (double)max_s)
		d = (double)max_s;
	/* Jitter spreads a burst of deferrals to one destination apart. */
	d *= 0.75 + 0.5 * (rnd < 0 ? 0 : rnd > 1 ? 1 : rnd);
	v = (int64_t)d;
	return v < min_s ? min_s : v > max_s ? max_s : v;
}

/* --- The main thread's side -------------------------------------------------- */

void
deliver_start(void)
{
	if (worker_count() < 1)
		return;
	/* Set here, before any session or signal can call them. */
	queue_flush_hook = deliver_flush;
	queue_committed_hook = deliver_notify;
	worker_post(worker_get(0), sched_start_cb, NULL);
}

void
deliver_notify(const char *id)
{
	struct worker	*w = atomic_load(&sched_worker);

	if (w != NULL)
		worker_post(w, sched_notify_cb, xstrdup(id));
}

void
deliver_flush(void)
{
	struct worker	*w = atomic_load(&sched_worker);

	if (w != NULL)
		worker_post(w, sched_flush_cb, NULL);
}

void
deliver_status(void)
{
	struct worker	*w = atomic_load(&sched_worker);

	if (w != NULL)
		worker_post(w, sched_status_cb, NULL);
}

void
deliver_drain(void)
{
	struct worker	*w = atomic_load(&sched_worker);

	if (w != NULL)
		worker_post(w, sched_drain_cb, NULL);
}

long
deliver_busy(void)
{
	return atomic_load(&sched_busy);
}

void
deliver_cancel(void)
{
	struct worker	*w = atomic_load(&sched_worker);

	if (w != NULL)
		worker_post(w, sched_cancel_cb, NULL);
}

/* The worker frees its state and signals; the caller waits for it. */
struct sched_stop_wait {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	int		 done;
};

void
deliver_stop(void)
{
	struct worker		*w = atomic_exchange(&sched_worker, NULL);
	struct sched_stop_wait	 sw = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };

	if (w == NULL)
		return;
	/* The hooks stay: they find sched_worker NULL and drop what comes. */
	worker_post(w, sched_stop_cb, &sw);
	pthread_mutex_lock(&sw.lock);
	while (!sw.done)
		pthread_cond_wait(&sw.cond, &sw.lock);
	pthread_mutex_unlock(&sw.lock);
}

/* --- Worker 0: start, notifications, timers ------------------------------------ */

static void
sched_start_cb(void *arg)
{
	struct timeval	 tv = { SCHED_RESCAN_S, 0 };

	sched.w = worker_current();
	sched.base = sched.w->base;
	TAILQ_INIT(&sched.ready);
	TAILQ_INIT(&sched.msgs);
	TAILQ_INIT(&sched.pending);
	TAILQ_INIT(&sched.running);
	LIST_INIT(&sched.dests);
	sched.kick = event_new(sched.base, -1, 0, sched_kick_cb, NULL);
	sched.timer = evtimer_new(sched.base, sched_timer_cb, NULL);
	sched.rescan = event_new(sched.base, -1, EV_PERSIST, sched_rescan_cb, NULL);
	evtimer_add(sched.rescan, &tv);
	atomic_store(&sched_worker, sched.w);
	sched_scan(0);
	log_info("relay scheduler started worker=0 ready=%zu deferred=%zu", sched.nready,
	    sched.nheap);
}

static void
sched_notify_cb(void *arg)
{
	char	*id = arg;

	if (!sched.draining)
		sched_ready_add(id, QUEUE_ACTIVE, 1);
	free(id);
}

static void
sched_flush_cb(void *arg)
{
	if (sched.draining)
		return;
	log_info("relay flush: every deferred message is due now");
	sched_scan(1);
}

static void
sched_status_cb(void *arg)
{
	log_info("relay status messages_open=%zu deliveries=%zu waiting=%zu ready=%zu "
	    "deferred_known=%zu sent=%llu deferred=%llu bounced=%llu expired=%llu",
	    sched.nmsgs, sched.nrunning, sched.npending, sched.nready, sched.nheap,
	    (unsigned long long)sched.sent, (unsigned long long)sched.deferred,
	    (unsigned long long)sched.bounced, (unsigned long long)sched.expired);
}

/*
 * Read the folders: active/ is due now; deferred/ goes to the heap with
 * "read its time" (0), or is due now on a flush.
 */
static void
sched_scan(int flush)
{
	char	(*ids)[QUEUE_ID_LEN + 1];
	size_t	 n, i;

	/* No relay-mode listener (yet): no queue. */
	if (queue_dir() == NULL)
		return;
	if (queue_list(QUEUE_ACTIVE, &ids, &n) == 0) {
		for (i = 0; i < n; i++)
			sched_ready_add(ids[i], QUEUE_ACTIVE, 1);
		free(ids);
	}
	sched.nheap = 0;
	if (queue_list(QUEUE_DEFERRED, &ids, &n) == 0) {
		for (i = 0; i < n; i++)
			if (flush)
				sched_ready_add(ids[i], QUEUE_DEFERRED, 1);
			else
				sched_heap_push(0, ids[i]);
		free(ids);
	}
	sched_timer_arm();
	sched_kick();
}

static void
sched_rescan_cb(evutil_socket_t fd, short events, void *arg)
{
	if (!sched.draining)
		sched_scan(0);
}

static void
sched_ready_add(const char *id, enum queue_state state, int force)
{
	struct sched_ready	*r = xcalloc(1, sizeof(*r));

	strlcpy_s(r->id, id, sizeof(r->id));
	r->state = state;
	r->force = force;
	TAILQ_INSERT_TAIL(&sched.ready, r, link);
	sched.nready++;
	sched_kick();
}

static void
sched_kick(void)
{
	if (sched.kick != NULL)
		event_active(sched.kick, 0, 0);
}

static void
sched_kick_cb(evutil_socket_t fd, short events, void *arg)
{
	sched_dispatch();
}

/* --- The heap of deferred messages ------------------------------------------- */

static void
sched_heap_push(int64_t when, const char *id)
{
	size_t			 i, parent;
	struct sched_heap_entry	 e, tmp;

	if (sched.nheap == sched.heap_size) {
		sched.heap_size = sched.heap_size ? sched.heap_size * 2 : 64;
		sched.heap = xreallocarray(sched.heap, sched.heap_size, sizeof(*sched.heap));
	}
	e.when = when;
	strlcpy_s(e.id, id, sizeof(e.id));
	i = sched.nheap++;
	sched.heap[i] = e;
	while (i > 0 && sched.heap[parent = (i - 1) / 2].when > sched.heap[i].when) {
		tmp = sched.heap[parent];
		sched.heap[parent] = sched.heap[i];
		sched.heap[i] = tmp;
		i = parent;
	}
}

static void
sched_heap_pop(struct sched_heap_entry *out)
{
	size_t			 i = 0, c;
	struct sched_heap_entry	 tmp;

	*out = sched.heap[0];
	sched.heap[0] = sched.heap[--sched.nheap];
	while ((c = 2 * i + 1) < sched.nheap) {
		if (c + 1 < sched.nheap && sched.heap[c + 1].when < sched.heap[c].when)
			c++;
		if (sched.heap[i].when <= sched.heap[c].when)
			break;
		tmp = sched.heap[c];
		sched.heap[c] = sched.heap[i];
		sched.heap[i] = tmp;
		i = c;
	}
}

static void
sched_timer_arm(void)
{
	struct timeval	 tv = { 0, 0 };
	int64_t		 now = (int64_t)time(NULL);

	evtimer_del(sched.timer);
	if (sched.nheap == 0)
		return;
	if (sched.heap[0].when > now)
		tv.tv_sec = (time_t)(sched.heap[0].when - now);
	evtimer_add(sched.timer, &tv);
}

static void
sched_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct sched_heap_entry	 e;
	int64_t			 now = (int64_t)time(NULL);

	if (sched.draining)
		return;
	while (sched.nheap > 0 && sched.heap[0].when <= now) {
		sched_heap_pop(&e);
		sched_ready_add(e.id, QUEUE_DEFERRED, 0);
	}
	sched_timer_arm();
}

/* --- Dispatch: start waiting jobs, open more messages ------------------------- */

static void
sched_dispatch(void)
{
	struct generation	*g;
	struct sched_ready	*r;

	if (sched.draining || (g = generation_acquire()) == NULL)
		return;
	/* Maintenance: keep accepting and queueing, touch nothing queued. */
	if (g->cfg->relay.defer_deliveries) {
		generation_unref(g);
		return;
	}
	for (;;) {
		if (sched_start_pending(&g->cfg->relay) == -1)
			break;
		/*
		 * A slot is free and every waiting job is held by its
		 * destination's cap: open the next message, which may go
		 * elsewhere.  Open messages are bounded (files and locks).
		 */
		if ((r = TAILQ_FIRST(&sched.ready)) == NULL || sched.nmsgs >= SCHED_OPEN_MAX)
			break;
		TAILQ_REMOVE(&sched.ready, r, link);
		sched.nready--;
		sched_open(r);
		free(r);
	}
	generation_unref(g);
}

/* Start pending jobs in order where caps allow.  -1 when all slots are taken. */
static int
sched_start_pending(const struct config_relay *rc)
{
	struct sched_job	*j, *next;
	struct sched_dest	*d;

	for (j = TAILQ_FIRST(&sched.pending); j != NULL; j = next) {
		next = TAILQ_NEXT(j, link);
		if (sched.nrunning >= (size_t)rc->max_deliveries)
			return -1;
		d = sched_dest_get(j->dest);
		if (d->running >= rc->max_per_destination) {
			sched_dest_put(&d);
			continue;
		}
		d->running++;
		j->slot = d;
		TAILQ_REMOVE(&sched.pending, j, link);
		sched.npending--;
		TAILQ_INSERT_TAIL(&sched.running, j, link);
		sched.nrunning++;
		sched_job_start(j);
	}
	return sched.nrunning >= (size_t)rc->max_deliveries ? -1 : 0;
}

static struct sched_dest *
sched_dest_get(const char *name)
{
	struct sched_dest	*d;

	LIST_FOREACH(d, &sched.dests, link)
		if (strcmp(d->name, name) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->name = xstrdup(name);
	LIST_INSERT_HEAD(&sched.dests, d, link);
	return d;
}

/* Forget a destination nothing runs to any more. */
static void
sched_dest_put(struct sched_dest **dp)
{
	struct sched_dest	*d = *dp;

	*dp = NULL;
	if (d == NULL || d->running > 0)
		return;
	LIST_REMOVE(d, link);
	free(d->name);
	free(d);
}

/* Open one ready message and split it into jobs (or finish it at once). */
static void
sched_open(struct sched_ready *r)
{
	struct queue_msg	*m;
	struct sched_msg	*sm;
	char			 why[256];
	int			 rc;

	if ((rc = queue_msg_open(r->state, r->id, 0, &m, why, sizeof(why))) == -2) {
		log_warnx("%s queue file does not parse, moved to corrupt: %s", r->id, why);
		(void)queue_move_corrupt(r->state, r->id);
		return;
	}
	if (rc != 0) {
		/* Gone (delivered, held, deleted) or busy: not ours now. */
		if (errno != ENOENT && errno != EWOULDBLOCK)
			log_warn("%s queue open failed, next rescan retries", r->id);
		return;
	}
	if (r->state == QUEUE_DEFERRED && !r->force && m->env.next_attempt > time(NULL)) {
		sched_heap_push(m->env.next_attempt, r->id);
		sched_timer_arm();
		queue_msg_close(&m);
		return;
	}
	if (r->state != QUEUE_ACTIVE && queue_msg_move(m, QUEUE_ACTIVE) == -1) {
		log_warn("%s queue move to active failed", r->id);
		queue_msg_close(&m);
		return;
	}
	sm = sched_msg_new(m);
	sched_msg_split(sm);
	if (sm->jobs == 0)
		sched_msg_finish(sm);
}

/* --- Messages ------------------------------------------------------------------ */

static struct sched_msg *
sched_msg_new(struct queue_msg *m)
{
	struct sched_msg	*sm = xcalloc(1, sizeof(*sm));
	size_t			 i;

	sm->m = m;
	sm->g = generation_acquire();
	memcpy(sm->id, m->env.id, sizeof(sm->id));
	for (i = 0; i < m->env.nrcpts; i++)
		if (m->env.rcpts[i].when > sm->prev_when)
			sm->prev_when = m->env.rcpts[i].when;
	sched_msg_params(sm);
	TAILQ_INSERT_TAIL(&sched.msgs, sm, link);
	sched.nmsgs++;
	atomic_fetch_add(&sched_busy, 1);
	return sm;
}

/* The ESMTP parameters delivery and DSNs need, from the queued text. */
static void
sched_msg_params(struct sched_msg *sm)
{
	const struct queue_envelope	*env = &sm->m->env;
	char				*body, *u;
	size_t				 i;

	body = sched_param(env->mail_params, "BODY");
	sm->body_8bit = body != NULL && strcasecmp(body, "8BITMIME") == 0;
	free(body);
	u = sched_param(env->mail_params, "SMTPUTF8");
	sm->smtputf8 = u != NULL;
	free(u);
	sm->ret = sched_param(env->mail_params, "RET");
	sm->envid = sched_param(env->mail_params, "ENVID");
	sm->nrcpts = env->nrcpts;
	sm->notify = xcalloc(env->nrcpts, sizeof(*sm->notify));
	sm->orcpt = xcalloc(env->nrcpts, sizeof(*sm->orcpt));
	for (i = 0; i < env->nrcpts; i++) {
		sm->notify[i] = sched_param(env->rcpts[i].params, "NOTIFY");
		sm->orcpt[i] = sched_param(env->rcpts[i].params, "ORCPT");
	}
}

/* The value of KEY=value in a parameter list ("" for a bare KEY), or NULL. */
static char *
sched_param(const char *params, const char *key)
{
	size_t		 klen = strlen(key), n;
	const char	*p = params;

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n >= klen && strncasecmp(p, key, klen) == 0) {
			if (n == klen)
				return xstrdup("");
			if (p[klen] == '=')
				return xstrndup(p + klen + 1, n - klen - 1);
		}
		p += n;
	}
	return NULL;
}

/* The destination of a recipient domain: a route's, smart_host, or the domain. */
static const char *
sched_route(const struct config *cfg, const char *domain, int *smarthost)
{
	size_t	 i;

	for (i = 0; i < cfg->relay.nroutes; i++)
		if (strcmp(cfg->relay.routes[i].domain, domain) == 0) {
			*smarthost = cfg->relay.routes[i].smart_host != NULL;
			return *smarthost ? cfg->relay.routes[i].smart_host : domain;
		}
	*smarthost = cfg->mx.smart_host != NULL;
	return *smarthost ? cfg->mx.smart_host : domain;
}

/* One job per destination of the recipients still to do, in recipient order. */
static void
sched_msg_split(struct sched_msg *sm)
{
	struct queue_envelope	*env = &sm->m->env;
	struct sched_job	*j, **jobs = xcalloc(env->nrcpts, sizeof(*jobs));
	const char		*at, *dest;
	char			*domain, *p;
	size_t			 i, k, njobs = 0;
	int			 smarthost;

	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].state != QUEUE_RCPT_PENDING &&
		    env->rcpts[i].state != QUEUE_RCPT_DEFERRED)
			continue;
		at = strrchr(env->rcpts[i].mailbox, '@');
		domain = xstrdup(at != NULL ? at + 1 : "");
		for (p = domain; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		dest = sched_route(sm->g->cfg, domain, &smarthost);
		for (k = 0; k < njobs && strcmp(jobs[k]->dest, dest) != 0; k++)
			;
		if (k == njobs) {
			j = jobs[njobs++] = xcalloc(1, sizeof(*j));
			j->msg = sm;
			j->dest = xstrdup(dest);
			j->domain = xstrdup(domain);
			j->smarthost = smarthost;
			j->idx = xcalloc(env->nrcpts, sizeof(*j->idx));
			j->rcpts = xcalloc(env->nrcpts, sizeof(*j->rcpts));
		}
		j = jobs[k];
		j->idx[j->n] = i;
		j->rcpts[j->n].addr = env->rcpts[i].mailbox;
		j->rcpts[j->n].notify = sm->notify[i];
		j->rcpts[j->n].orcpt = sm->orcpt[i];
		j->n++;
		free(domain);
	}
	for (k = 0; k < njobs; k++) {
		TAILQ_INSERT_TAIL(&sched.pending, jobs[k], link);
		sched.npending++;
		sm->jobs++;
	}
	free(jobs);
}

/* Every job is done: defer, or DSN and remove. */
static void
sched_msg_finish(struct sched_msg *sm)
{
	struct queue_envelope	*env = &sm->m->env;
	const struct config	*cfg = sm->g->cfg;
	int64_t			 now = (int64_t)time(NULL);
	size_t			 i, left = 0, failed = 0, done = 0;

	if (sm->dropped) {
		sched_msg_close(sm);
		return;
	}
	for (i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].state == QUEUE_RCPT_PENDING ||
		    env->rcpts[i].state == QUEUE_RCPT_DEFERRED)
			left++;
	if (left > 0 && (now - env->arrival) * 1000 >= cfg->relay.max_queue_lifetime_ms) {
		sched_msg_expire(sm, now);
		left = 0;
	}
	if (left > 0) {
		sched_msg_defer(sm, now);
		return;
	}
	for (i = 0; i < env->nrcpts; i++) {
		failed += env->rcpts[i].state == QUEUE_RCPT_FAILED;
		done += env->rcpts[i].state == QUEUE_RCPT_DELIVERED;
	}
	if (failed > 0)
		sched_dsn_send(sm, DSN_ACTION_FAILED);
	if (queue_msg_remove(&sm->m) == -1)
		log_warn("%s queue remove failed", sm->id);
	else
		log_info("%s removed delivered=%zu failed=%zu", sm->id, done, failed);
	sched_msg_close(sm);
}

/* Some recipients are still to do: the next attempt after backoff. */
static void
sched_msg_defer(struct sched_msg *sm, int64_t now)
{
	struct queue_envelope	*env = &sm->m->env;
	const struct config_relay *rc = &sm->g->cfg->relay;
	int64_t			 next, warn;
	double			 rnd = (double)(worker_random(sched.w) >> 11) / 9007199254740992.0;

	warn = rc->delay_warning_ms > 0 ? env->arrival + rc->delay_warning_ms / 1000 : 0;
	if (warn > 0 && sm->prev_when < warn && now >= warn)
		sched_dsn_send(sm, DSN_ACTION_DELAYED);
	next = now + deliver_backoff(env->attempts + 1, rc->min_backoff_ms / 1000,
	    rc->max_backoff_ms / 1000, rnd);
	/* Never beyond the expiry: the last attempt is made then. */
	if (next > env->arrival + rc->max_queue_lifetime_ms / 1000)
		next = env->arrival + rc->max_queue_lifetime_ms / 1000;
	if (next <= now)
		next = now + 1;
	if (queue_msg_attempt(sm->m, next) == -1 || queue_msg_move(sm->m, QUEUE_DEFERRED) == -1)
		log_warn("%s queue defer failed", sm->id);
	else
		sched_heap_push(next, sm->id);
	sched_timer_arm();
	sched_msg_close(sm);
}

/* max_queue_lifetime reached: what is left fails with 4.4.7. */
static void
sched_msg_expire(struct sched_msg *sm, int64_t now)
{
	struct queue_envelope	*env = &sm->m->env;
	char			 reply[SCHED_REPLY_MAX + 64], q[SCHED_REPLY_MAX];
	size_t			 i;

	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].state != QUEUE_RCPT_PENDING &&
		    env->rcpts[i].state != QUEUE_RCPT_DEFERRED)
			continue;
		snprintf(reply, sizeof(reply), "4.4.7 delivery time expired%s%s",
		    env->rcpts[i].reply != NULL ? "; last: " : "",
		    env->rcpts[i].reply != NULL ? env->rcpts[i].reply : "");
		if (queue_msg_record(sm->m, i, QUEUE_RCPT_FAILED, reply) == -1)
			log_warn("%s queue record failed", sm->id);
		log_info("%s to=<%s> relay=none delay=%lld dsn=4.4.7 status=expired reply=%s",
		    sm->id, env->rcpts[i].mailbox, (long long)(now - env->arrival),
		    log_quote(q, sizeof(q), reply, 400));
		sched.expired++;
	}
}

static void
sched_msg_close(struct sched_msg *sm)
{
	size_t	 i;

	TAILQ_REMOVE(&sched.msgs, sm, link);
	sched.nmsgs--;
	atomic_fetch_sub(&sched_busy, 1);
	for (i = 0; i < sm->nrcpts; i++) {
		free(sm->notify[i]);
		free(sm->orcpt[i]);
	}
	free(sm->notify);
	free(sm->orcpt);
	free(sm->ret);
	free(sm->envid);
	queue_msg_close(&sm->m);
	generation_unref(sm->g);
	free(sm);
	sched_kick();
}

/* --- Jobs ------------------------------------------------------------------------ */

static void
sched_job_free(struct sched_job *j)
{
	if (j->later != NULL)
		event_free(j->later);
	mx_result_free(j->mx);
	free(j->hosts);
	free(j->dest);
	free(j->domain);
	free(j->idx);
	free(j->rcpts);
	free(j);
}

static void
sched_job_start(struct sched_job *j)
{
	struct generation	*g = j->msg->g;
	struct mx_dest		 d;
	struct mx_options	 o;
	char			 err[256];

	if (mx_dest_parse(j->dest, j->smarthost, &d, err, sizeof(err)) == -1) {
		/* A route's was checked at load: only a recipient domain gets here. */
		sched_job_fail(j, j->smarthost ? DELIVER_TEMP : DELIVER_PERM,
		    j->smarthost ? "4.3.5" : "5.1.2", err);
		return;
	}
	mx_options_from_config(&o, &g->cfg->mx);
	j->lookup = mx_resolve(g->dns, sched.w, &d, &o, worker_random(sched.w),
	    sched_job_resolved, j);
	mx_dest_clear(&d);
}

/* Every recipient of j gets the same result (DNS, our own refusal). */
static void
sched_job_results(struct sched_job *j, enum deliver_class klass, const char *enhanced,
    const char *text)
{
	size_t	 k;

	for (k = 0; k < j->n; k++)
		deliver_smtp_result_set(&j->rcpts[k].result, 0, klass, enhanced, text, NULL);
}

/* A job that cannot start completes on the next loop turn, as the others do. */
static void
sched_job_fail(struct sched_job *j, enum deliver_class klass, const char *enhanced,
    const char *text)
{
	sched_job_results(j, klass, enhanced, text);
	if ((j->later = event_new(sched.base, -1, 0, sched_job_later_cb, j)) == NULL)
		fatal("event_new");
	event_active(j->later, 0, 0);
}

static void
sched_job_later_cb(evutil_socket_t fd, short events, void *arg)
{
	sched_job_done(arg);
}

/* Our listening addresses, for "mail loops back to myself". */
static size_t
sched_own_addrs(const struct config *cfg, struct sockaddr_storage **out)
{
	size_t	 i, k, n = 0;

	for (i = 0; i < cfg->nlisteners; i++)
		n += cfg->listeners[i].nlisten;
	*out = xcalloc(n ? n : 1, sizeof(**out));
	for (i = 0, n = 0; i < cfg->nlisteners; i++)
		for (k = 0; k < cfg->listeners[i].nlisten; k++)
			(*out)[n++] = cfg->listeners[i].addrs[k];
	return n;
}

static void
sched_job_resolved(void *arg, struct mx_result *r)
{
	struct sched_job	*j = arg;
	struct sockaddr_storage	*own;
	size_t			 nown, h;
	off_t			 len;

	j->lookup = NULL;
	j->mx = r;
	if (!j->smarthost) {
		nown = sched_own_addrs(j->msg->g->cfg, &own);
		(void)mx_result_check_loop(r, own, nown);
		free(own);
	}
	if (r->warning != NULL)
		log_info("%s relay warning domain=%s %s", j->msg->id, r->domain, r->warning);
	if (r->status != MX_OK) {
		sched_job_results(j, r->status == MX_PERM ? DELIVER_PERM : DELIVER_TEMP, r->dsn,
		    r->reason != NULL ? r->reason : "destination lookup failed");
		sched_job_done(j);
		return;
	}
	j->hosts = xcalloc(r->nhosts, sizeof(*j->hosts));
	for (h = 0; h < r->nhosts; h++) {
		j->hosts[h].name = r->hosts[h].name;
		j->hosts[h].addrs = r->hosts[h].addrs;
		j->hosts[h].naddrs = r->hosts[h].naddrs;
	}
	j->job.queue_id = j->msg->id;
	j->job.destination = j->dest;
	j->job.domain = j->domain;
	j->job.env.sender = j->msg->m->env.sender;
	j->job.env.body_8bit = j->msg->body_8bit;
	j->job.env.smtputf8 = j->msg->smtputf8;
	j->job.env.ret = j->msg->ret;
	j->job.env.envid = j->msg->envid;
	j->job.env.rcpts = j->rcpts;
	j->job.env.nrcpts = j->n;
	queue_msg_body(j->msg->m, &j->job.body_fd, &j->job.body_offset, &len);
	j->job.body_len = (size_t)len;
	j->job.hosts = j->hosts;
	j->job.nhosts = r->nhosts;
	j->d = deliver_smtp_start(sched_cache(j->msg->g), &j->job, sched_job_delivered, j);
}

static void
sched_job_delivered(void *arg, struct deliver_smtp_job *job)
{
	struct sched_job	*j = arg;

	j->d = NULL;
	sched_job_done(j);
}

/* The results go to the file first; then the log, the slot, the message. */
static void
sched_job_done(struct sched_job *j)
{
	struct sched_msg	*sm = j->msg;

	sched_job_record(j);
	sched_job_log(j, DELIVER_OK);
	sched_job_log(j, DELIVER_PERM);
	sched_job_log(j, DELIVER_TEMP);
	j->slot->running--;
	sched_dest_put(&j->slot);
	TAILQ_REMOVE(&sched.running, j, link);
	sched.nrunning--;
	sched_job_free(j);
	if (--sm->jobs == 0)
		sched_msg_finish(sm);
	sched_kick();
}

/*
 * The job's results in one append and one fdatasync (queue_msg_record_many):
 * each recipient is still durable before anything else happens to it, but
 * worker 0 waits for the disk once per job, not once per recipient.
 */
static void
sched_job_record(struct sched_job *j)
{
	struct deliver_smtp_result	*res;
	enum queue_rcpt_state		*st;
	char				**reply;
	size_t				 k;

	st = xcalloc(j->n, sizeof(*st));
	reply = xcalloc(j->n, sizeof(*reply));
	for (k = 0; k < j->n; k++) {
		res = &j->rcpts[k].result;
		st[k] = res->klass == DELIVER_OK ? QUEUE_RCPT_DELIVERED :
		    res->klass == DELIVER_PERM ? QUEUE_RCPT_FAILED : QUEUE_RCPT_DEFERRED;
		if (res->klass == DELIVER_PENDING)
			deliver_smtp_result_set(res, 0, DELIVER_TEMP, "4.4.0",
			    "delivery ended without a result", NULL);
		reply[k] = xmalloc(SCHED_REPLY_MAX);
		sched_reply_format(res, reply[k], SCHED_REPLY_MAX);
	}
	if (queue_msg_record_many(j->msg->m, j->n, j->idx, st,
	    (const char *const *)reply) == -1)
		log_warn("%s queue record failed rcpts=%zu", j->msg->id, j->n);
	for (k = 0; k < j->n; k++)
		free(reply[k]);
	free(reply);
	free(st);
}

/* "host NAME[IP]:PORT said: CODE X.Y.Z text" (a remote's), "X.Y.Z text" (ours). */
static void
sched_reply_format(const struct deliver_smtp_result *res, char *buf, size_t size)
{
	if (res->code != 0)
		snprintf(buf, size, "host %s said: %d %s %s", res->relay[0] != '\0' ?
		    res->relay : "unknown", res->code, res->enhanced, res->text);
	else
		snprintf(buf, size, "%s %s", res->enhanced, res->text);
}

/* One line per destination attempt and outcome: queue id first, Postfix-like. */
static void
sched_job_log(struct sched_job *j, enum deliver_class klass)
{
	static const char *const status[] = { "deferred", "sent", "deferred", "bounced" };
	const struct deliver_smtp_result *first = NULL;
	char		 to[1024], reply[SCHED_REPLY_MAX], q[SCHED_REPLY_MAX + 64];
	size_t		 k, used = 0, n = 0;
	int64_t		 delay = (int64_t)time(NULL) - j->msg->m->env.arrival;

	to[0] = '\0';
	for (k = 0; k < j->n; k++) {
		if (j->rcpts[k].result.klass != klass)
			continue;
		if (first == NULL)
			first = &j->rcpts[k].result;
		if (used < sizeof(to))
			used += (size_t)snprintf(to + used, sizeof(to) - used, "%s<%s>",
			    n > 0 ? "," : "", j->rcpts[k].addr);
		n++;
	}
	if (first == NULL)
		return;
	if (klass == DELIVER_OK)
		sched.sent += n;
	else if (klass == DELIVER_PERM)
		sched.bounced += n;
	else
		sched.deferred += n;
	sched_reply_format(first, reply, sizeof(reply));
	log_info("%s to=%s relay=%s delay=%lld dsn=%s status=%s%s reply=%s", j->msg->id, to,
	    first->relay[0] != '\0' ? first->relay : j->job.summary.relay[0] != '\0' ?
	    j->job.summary.relay : "none", (long long)delay, first->enhanced, status[klass],
	    j->job.summary.dup_risk && klass == DELIVER_TEMP ? " dup_risk=1" : "",
	    log_quote(q, sizeof(q), reply, 600));
}

/*
 * relay_tls = may: STARTTLS whenever the remote offers it, any
 * certificate taken (as Postfix's "may": the remote's identity is not
 * checked, the traffic is still encrypted).  NULL, with a log line, when
 * no context can be made: delivery goes on in clear.
 */
static struct tls_client *
sched_tls_client(void)
{
	struct config_backend_tls	 conf;
	struct tls_client		*cl;
	char				 err[300];

	memset(&conf, 0, sizeof(conf));
	conf.mode = CONFIG_BACKEND_TLS_MAY;
	if ((cl = tls_client_new(&conf, err, sizeof(err))) == NULL)
		log_warnx("relay_tls: no STARTTLS for deliveries: %s", err);
	return cl;
}

/* The connection cache, with the settings of g once nothing uses the old one. */
static struct deliver_smtp_cache *
sched_cache(struct generation *g)
{
	struct deliver_smtp_config	 c;
	struct sched_job		*j;
	int				 busy = 0;

	if (sched.cache != NULL && sched.cache_gen == g->number)
		return sched.cache;
	TAILQ_FOREACH(j, &sched.running, link)
		busy |= j->d != NULL;
	if (sched.cache != NULL && busy)
		return sched.cache;
	deliver_smtp_cache_free(&sched.cache);
	tls_client_free(&sched.tls);
	deliver_smtp_config_defaults(&c);
	c.helo_name = g->cfg->hostname;
	if (g->cfg->relay.starttls && (sched.tls = sched_tls_client()) != NULL) {
		c.tls_fn = tls_deliver_wrap;
		c.tls_arg = sched.tls;
	}
	sched.cache = deliver_smtp_cache_new(sched.base, &c);
	sched.cache_gen = g->number;
	return sched.cache;
}

/* Shutdown: stop j's work without a result (the message stays queued). */
static void
sched_job_cancel(struct sched_job *j)
{
	struct sched_msg	*sm = j->msg;

	if (j->lookup != NULL)
		mx_lookup_cancel(j->lookup);
	if (j->d != NULL)
		deliver_smtp_cancel(&j->d);
	if (j->slot != NULL) {
		j->slot->running--;
		sched_dest_put(&j->slot);
		TAILQ_REMOVE(&sched.running, j, link);
		sched.nrunning--;
	} else {
		TAILQ_REMOVE(&sched.pending, j, link);
		sched.npending--;
	}
	sched_job_free(j);
	sm->dropped = 1;
	if (--sm->jobs == 0)
		sched_msg_close(sm);
}

/* --- Shutdown ------------------------------------------------------------------- */

static void
sched_drain_cb(void *arg)
{
	struct sched_ready	*r;

	if (sched.draining)
		return;
	sched.draining = 1;
	evtimer_del(sched.timer);
	evtimer_del(sched.rescan);
	while ((r = TAILQ_FIRST(&sched.ready)) != NULL) {
		TAILQ_REMOVE(&sched.ready, r, link);
		free(r);
	}
	sched.nready = 0;
	/* Jobs not started stay undone: the message waits in active/ for the next start. */
	while (!TAILQ_EMPTY(&sched.pending))
		sched_job_cancel(TAILQ_FIRST(&sched.pending));
	log_info("relay drain: deliveries=%zu messages_open=%zu", sched.nrunning, sched.nmsgs);
}

static void
sched_cancel_cb(void *arg)
{
	size_t	 n = sched.nrunning;

	sched_drain_cb(NULL);
	while (!TAILQ_EMPTY(&sched.running))
		sched_job_cancel(TAILQ_FIRST(&sched.running));
	if (n > 0)
		log_info("relay drain timeout: %zu deliveries cancelled, their messages stay "
		    "queued", n);
}

static void
sched_stop_cb(void *arg)
{
	struct sched_stop_wait	*sw = arg;

	sched_cancel_cb(NULL);
	deliver_smtp_cache_free(&sched.cache);
	tls_client_free(&sched.tls);
	event_free(sched.kick);
	event_free(sched.timer);
	event_free(sched.rescan);
	sched.kick = sched.timer = sched.rescan = NULL;
	free(sched.heap);
	sched.heap = NULL;
	sched.nheap = sched.heap_size = 0;
	pthread_mutex_lock(&sw->lock);
	sw->done = 1;
	pthread_cond_signal(&sw->cond);
	pthread_mutex_unlock(&sw->lock);
}

/* --- DSNs ----------------------------------------------------------------------- */

/* A recorded reply (sched_reply_format) back into what a DSN names. */
struct sched_diag {
	char		 mta[256];	/* remote host name, "" = none */
	char		 status[16];	/* enhanced status */
	const char	*text;		/* the reply or our reason (into the record) */
	int		 smtp;		/* text is a remote's reply */
};

static void
sched_diag_parse(const char *reply, enum dsn_action action, struct sched_diag *d)
{
	const char	*said, *p;
	size_t		 n;

	memset(d, 0, sizeof(*d));
	d->text = reply != NULL ? reply : "";
	if (reply != NULL && strncmp(reply, "host ", 5) == 0 &&
	    (said = strstr(reply, " said: ")) != NULL) {
		n = strcspn(reply + 5, "[ ");
		snprintf(d->mta, sizeof(d->mta), "%.*s", (int)n, reply + 5);
		d->text = said + 7;
		d->smtp = 1;
	}
	p = d->text;
	if (d->smtp) {
		p += strspn(p, "0123456789");
		p += strspn(p, " ");
	}
	n = strcspn(p, " ");
	if (n >= 5 && n < sizeof(d->status) && isdigit((unsigned char)p[0]) && p[1] == '.')
		snprintf(d->status, sizeof(d->status), "%.*s", (int)n, p);
	else
		strlcpy_s(d->status, action == DSN_ACTION_FAILED ? "5.0.0" : "4.0.0",
		    sizeof(d->status));
}

/* The recipients a DSN of this action reports: failed, or still to do. */
static size_t
sched_dsn_rcpts(struct sched_msg *sm, enum dsn_action action, struct dsn_rcpt *dr,
    struct sched_diag *diag, char **orcpt)
{
	const struct queue_envelope	*env = &sm->m->env;
	const struct queue_rcpt		*r;
	unsigned int			 flags;
	size_t				 i, n = 0;

	for (i = 0; i < env->nrcpts; i++) {
		r = &env->rcpts[i];
		if (action == DSN_ACTION_FAILED ? r->state != QUEUE_RCPT_FAILED :
		    r->state != QUEUE_RCPT_PENDING && r->state != QUEUE_RCPT_DEFERRED)
			continue;
		if (sm->notify[i] == NULL || dsn_notify_parse(sm->notify[i], &flags) == -1)
			flags = 0;
		if (!dsn_wanted(env->sender, flags, action))
			continue;
		sched_diag_parse(r->reply, action, &diag[n]);
		orcpt[n] = sm->orcpt[i] != NULL ? dsn_xtext_decode(sm->orcpt[i]) : NULL;
		dr[n].addr = r->mailbox;
		dr[n].orcpt = orcpt[n];
		dr[n].action = action;
		dr[n].notify = flags;
		dr[n].status = diag[n].status;
		dr[n].remote_mta = diag[n].mta[0] != '\0' ? diag[n].mta : NULL;
		dr[n].diagnostic = diag[n].text;
		dr[n].diagnostic_smtp = diag[n].smtp;
		dr[n].last_attempt = (time_t)r->when;
		dr[n].retry_until = (time_t)(env->arrival +
		    sm->g->cfg->relay.max_queue_lifetime_ms / 1000);
		n++;
	}
	return n;
}

/* The original as queued, up to what a DSN can use. */
static char *
sched_dsn_original(struct sched_msg *sm, size_t *len)
{
	int	 fd;
	off_t	 off, blen;
	size_t	 want, got = 0;
	ssize_t	 r;
	char	*buf;

	queue_msg_body(sm->m, &fd, &off, &blen);
	want = (size_t)blen < SCHED_DSN_READ_MAX ? (size_t)blen : SCHED_DSN_READ_MAX;
	buf = xmalloc(want + 1);
	while (got < want && (r = pread(fd, buf + got, want - got, off + (off_t)got)) > 0)
		got += (size_t)r;
	*len = got;
	return buf;
}

/* Queue the DSN as a new message from <> to the sender; the scheduler sends it. */
static void
sched_dsn_inject(struct sched_msg *sm, const struct dsn_message *dm, enum dsn_action action,
    size_t n)
{
	struct queue_envelope	 e;

	memset(&e, 0, sizeof(e));
	e.arrival = e.next_attempt = (int64_t)time(NULL);
	e.sender = xstrdup("");
	xasprintf(&e.mail_params, "%s%s", dm->eightbit ? " BODY=8BITMIME" : "",
	    dm->smtputf8 ? " SMTPUTF8" : "");
	e.client_addr = xstrdup("");
	e.client_name = xstrdup("");
	e.client_helo = xstrdup("");
	e.received_by = xstrdup(sm->g->cfg->hostname);
	e.nrcpts = 1;
	e.rcpts = xcalloc(1, sizeof(*e.rcpts));
	e.rcpts[0].mailbox = xstrdup(sm->m->env.sender);
	e.rcpts[0].params = xstrdup("");
	if (queue_inject(&e, dm->data, dm->len) == -1)
		log_warn("%s dsn not queued action=%s rcpts=%zu", sm->id,
		    action == DSN_ACTION_FAILED ? "failed" : "delayed", n);
	else {
		log_info("%s dsn queued dsn_id=%s action=%s to=<%s> rcpts=%zu", sm->id, e.id,
		    action == DSN_ACTION_FAILED ? "failed" : "delayed", sm->m->env.sender, n);
		/* queue_committed_hook hands it to us like any new message. */
	}
	queue_envelope_clear(&e);
}

static void
sched_dsn_send(struct sched_msg *sm, enum dsn_action action)
{
	const struct queue_envelope	*env = &sm->m->env;
	struct dsn_rcpt			*dr = xcalloc(env->nrcpts, sizeof(*dr));
	struct sched_diag		*diag = xcalloc(env->nrcpts, sizeof(*diag));
	char				**orcpt = xcalloc(env->nrcpts, sizeof(*orcpt));
	struct dsn_report		 rep;
	struct dsn_message		 dm;
	char				*orig = NULL, *envid = NULL;
	size_t				 n, i, olen;

	if ((n = sched_dsn_rcpts(sm, action, dr, diag, orcpt)) == 0) {
		log_info("%s dsn=none action=%s reason=\"%s\"", sm->id, action ==
		    DSN_ACTION_FAILED ? "failed" : "delayed", env->sender[0] == '\0' ?
		    "null sender" : "not requested");
		goto out;
	}
	memset(&rep, 0, sizeof(rep));
	memset(&dm, 0, sizeof(dm));
	rep.reporting_mta = sm->g->cfg->hostname;
	rep.sender = env->sender;
	rep.envid = envid = sm->envid != NULL ? dsn_xtext_decode(sm->envid) : NULL;
	rep.queue_id = sm->id;
	rep.arrival = (time_t)env->arrival;
	rep.ret_full = sm->ret != NULL && strcasecmp(sm->ret, "FULL") == 0;
	rep.smtputf8 = sm->smtputf8;
	rep.rcpts = dr;
	rep.nrcpts = n;
	orig = sched_dsn_original(sm, &olen);
	if (dsn_compose(&rep, orig, olen, &dm) == 0)
		sched_dsn_inject(sm, &dm, action, n);
	dsn_message_clear(&dm);
out:
	for (i = 0; i < env->nrcpts; i++)
		free(orcpt[i]);
	free(orcpt);
	free(diag);
	free(dr);
	free(orig);
	free(envid);
}
