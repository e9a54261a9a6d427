/*
 * listener.c - binding listen addresses per worker, accepting, limits
 * at accept time, EMFILE back-off.  See listener.h.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "config.h"
#include "connlimit.h"
#include "generation.h"
#include "listener.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "worker.h"

#define LISTEN_BACKLOG		1024
#define ACCEPT_BACKOFF_MS	100

/* Main thread: one entry per bound address. */
struct bound {
	char		 key[LISTENER_KEY_MAX];	/* canonical address */
	int		*fds;			/* one per worker, -1 once handed over */
	int		 committed;		/* the workers own the sockets */
	struct bound	*next;			/* list */
};

/* Worker side: one accepting socket. */
struct listener_slot {
	char			 key[LISTENER_KEY_MAX];	/* canonical address */
	struct worker		*w;			/* owner */
	struct evconnlistener	*lev;			/* accepting */
	struct event		*backoff;		/* EMFILE re-enable timer */
	struct listener_slot	*next;			/* worker's list */
};

struct slot_change {
	char			 key[LISTENER_KEY_MAX];	/* address */
	int			 fd;			/* to add, -1 to remove */
};

static void	 listener_accept_cb(struct evconnlistener *, evutil_socket_t,
		    struct sockaddr *, int, void *);
static void	 listener_error_cb(struct evconnlistener *, void *);

static struct bound	*bound_list;
static int		 nworkers = 1;

void
listener_key(const struct sockaddr *sa, char *buf, size_t size)
{
	char	 host[INET6_ADDRSTRLEN];
	int	 port;

	sockaddr_format(sa, host, sizeof(host), &port);
	if (sa->sa_family == AF_INET6)
		snprintf(buf, size, "[%s]:%d", host, port);
	else
		snprintf(buf, size, "%s:%d", host, port);
}

void
listener_set_workers(int n)
{
	nworkers = n > 0 ? n : 1;
}

size_t
listener_count(void)
{
	struct bound	*b;
	size_t		 n = 0;

	for (b = bound_list; b != NULL; b = b->next)
		n++;
	return n;
}

static struct bound *
bound_find(const char *key)
{
	struct bound	*b;

	for (b = bound_list; b != NULL; b = b->next)
		if (strcmp(b->key, key) == 0)
			return b;
	return NULL;
}

static int
listener_bind_one(const struct sockaddr_storage *ss, socklen_t len)
{
	int	 fd, one = 1;

	if ((fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	/* "[::]:25" and "0.0.0.0:25" are separate listeners. */
	if (ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
		goto fail;
	if (bind(fd, (const struct sockaddr *)ss, len) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	return fd;
fail:
	{
		int	 saved = errno;

		close(fd);
		errno = saved;
	}
	return -1;
}

static void
bound_free(struct bound *b)
{
	int	 i;

	for (i = 0; i < nworkers; i++)
		if (b->fds[i] != -1)
			close(b->fds[i]);
	free(b->fds);
	free(b);
}

static int
listener_bind_address(const struct config_listener *cl, size_t idx, char *err, size_t errlen)
{
	struct bound	*b;
	char		 key[LISTENER_KEY_MAX];
	int		 i;

	listener_key((const struct sockaddr *)&cl->addrs[idx], key, sizeof(key));
	if (bound_find(key) != NULL)
		return 0;
	b = xcalloc(1, sizeof(*b));
	strlcpy_s(b->key, key, sizeof(b->key));
	b->fds = xcalloc((size_t)nworkers, sizeof(*b->fds));
	for (i = 0; i < nworkers; i++)
		b->fds[i] = -1;
	for (i = 0; i < nworkers; i++)
		if ((b->fds[i] = listener_bind_one(&cl->addrs[idx], cl->addrlens[idx])) == -1) {
			snprintf(err, errlen, "listener \"%s\": cannot listen on %s: %s",
			    cl->name, key, strerror(errno));
			bound_free(b);
			return -1;
		}
	b->next = bound_list;
	bound_list = b;
	return 0;
}

int
listener_prepare(struct generation *g, char *err, size_t errlen)
{
	size_t	 i, j;

	for (i = 0; i < g->cfg->nlisteners; i++) {
		const struct config_listener	*cl = &g->cfg->listeners[i];

		for (j = 0; j < cl->nlisten; j++)
			if (listener_bind_address(cl, j, err, errlen) == -1) {
				listener_abort();
				return -1;
			}
	}
	return 0;
}

void
listener_abort(void)
{
	struct bound	**pp, *b;

	for (pp = &bound_list; (b = *pp) != NULL;) {
		if (!b->committed) {
			*pp = b->next;
			bound_free(b);
		} else
			pp = &b->next;
	}
}

/* --- Worker side ------------------------------------------------------------- */

static void
slot_free(struct listener_slot *slot)
{
	evconnlistener_free(slot->lev);
	if (slot->backoff != NULL)
		event_free(slot->backoff);
	free(slot);
}

static void
slot_change_cb(void *arg)
{
	struct slot_change	*c = arg;
	struct worker		*w = worker_current();
	struct listener_slot	*slot, **pp;

	if (c->fd == -1) {
		for (pp = &w->listeners; (slot = *pp) != NULL; pp = &slot->next)
			if (strcmp(slot->key, c->key) == 0) {
				*pp = slot->next;
				slot_free(slot);
				break;
			}
		free(c);
		return;
	}
	slot = xcalloc(1, sizeof(*slot));
	strlcpy_s(slot->key, c->key, sizeof(slot->key));
	slot->w = w;
	slot->lev = evconnlistener_new(w->base, listener_accept_cb, slot,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, c->fd);
	if (slot->lev == NULL)
		fatalx("evconnlistener_new %s", c->key);
	evconnlistener_set_error_cb(slot->lev, listener_error_cb);
	slot->next = w->listeners;
	w->listeners = slot;
	free(c);
}

static void
listener_post_change(int worker, const char *key, int fd)
{
	struct slot_change	*c = xcalloc(1, sizeof(*c));

	strlcpy_s(c->key, key, sizeof(c->key));
	c->fd = fd;
	worker_post(worker_get(worker), slot_change_cb, c);
}

void
listener_commit(struct generation *g)
{
	struct bound	**pp, *b;
	int		 i;

	for (pp = &bound_list; (b = *pp) != NULL;) {
		if (generation_listener(g, b->key) == NULL) {
			/* Gone from the config: the workers close their sockets. */
			log_info("listener %s closed", b->key);
			for (i = 0; i < nworkers; i++)
				listener_post_change(i, b->key, -1);
			*pp = b->next;
			free(b->fds);
			free(b);
			continue;
		}
		if (!b->committed) {
			log_info("listening on %s", b->key);
			for (i = 0; i < nworkers; i++) {
				listener_post_change(i, b->key, b->fds[i]);
				b->fds[i] = -1;
			}
			b->committed = 1;
		}
		pp = &b->next;
	}
}

static void
listener_close_worker_cb(void *arg)
{
	struct worker		*w = worker_current();
	struct listener_slot	*slot, *next;

	for (slot = w->listeners; slot != NULL; slot = next) {
		next = slot->next;
		slot_free(slot);
	}
	w->listeners = NULL;
	w->draining = 1;
}

void
listener_close_all(void)
{
	struct bound	*b, *next;

	workers_post_all(listener_close_worker_cb, NULL);
	for (b = bound_list; b != NULL; b = next) {
		next = b->next;
		free(b->fds);
		free(b);
	}
	bound_list = NULL;
}

/* Refuse a connection over a limit: one line, then close. */
static void
listener_refuse(int fd, const struct config_listener *cl, const char *why)
{
	char	 line[256];
	int	 n;

	n = snprintf(line, sizeof(line), "421 4.7.0 %s Error: %s, try again later\r\n",
	    cl->hostname, why);
	(void)!send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void
listener_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct listener_slot	*slot = arg;
	struct generation	*g;
	struct listener_gen	*lg;
	struct connlimit_key	 key;
	enum connlimit_result	 r;
	char			 addr[INET6_ADDRSTRLEN];
	const struct sockaddr	 unspec = { .sa_family = AF_UNSPEC };

	if (slot->w->draining || (g = generation_acquire()) == NULL) {
		close(fd);
		return;
	}
	if ((lg = generation_listener(g, slot->key)) == NULL) {
		close(fd);
		generation_unref(g);
		return;
	}
	if (!session_proxy_trusted(lg->conf, sa)) {
		sockaddr_format(sa, addr, sizeof(addr), NULL);
		log_info("refuse client=%s listener=%s reason=proxy_untrusted", addr,
		    lg->conf->name);
		close(fd);
		generation_unref(g);
		return;
	}
	/* Behind a load balancer, per-IP counting waits for the header (session_proxy.c). */
	if (lg->conf->proxy_protocol != CONFIG_PROXY_NO)
		r = connlimit_take(g->cfg, lg, &unspec, &key);
	else
		r = connlimit_take(g->cfg, lg, sa, &key);
	if (r != CONNLIMIT_OK) {
		sockaddr_format(sa, addr, sizeof(addr), NULL);
		log_info("refuse client=%s listener=%s reason=%s", addr, lg->conf->name,
		    r == CONNLIMIT_RATE ? "max_connection_rate_per_ip" :
		    r == CONNLIMIT_PER_IP ? "max_connections_per_ip" : r == CONNLIMIT_LISTENER ?
		    "listener_max_connections" : "max_connections");
		listener_refuse(fd, lg->conf, r == CONNLIMIT_PER_IP || r == CONNLIMIT_RATE ?
		    "too many connections from your address" : "too many connections");
		generation_unref(g);
		return;
	}
	session_accept(slot->w, fd, sa, (socklen_t)salen, g, lg, &key);
}

static void
listener_backoff_cb(evutil_socket_t fd, short events, void *arg)
{
	struct listener_slot	*slot = arg;

	evconnlistener_enable(slot->lev);
}

static void
listener_error_cb(struct evconnlistener *lev, void *arg)
{
	struct listener_slot	*slot = arg;
	struct timeval		 tv = { 0, ACCEPT_BACKOFF_MS * 1000 };
	int			 err = EVUTIL_SOCKET_ERROR();
	static __thread uint64_t last_log;
	uint64_t		 now = monotonic_ms();

	if (now - last_log > 10000) {
		log_warnx("accept on %s failed: %s; pausing %dms", slot->key,
		    evutil_socket_error_to_string(err), ACCEPT_BACKOFF_MS);
		last_log = now;
	}
	/* Level-triggered: an enabled listener would spin on EMFILE. */
	evconnlistener_disable(lev);
	if (slot->backoff == NULL &&
	    (slot->backoff = evtimer_new(slot->w->base, listener_backoff_cb, slot)) == NULL)
		fatalx("evtimer_new");
	evtimer_add(slot->backoff, &tv);
}
