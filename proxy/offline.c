/*
 * offline.c - start and stop the session machinery without listeners, and
 * hand sessions a socketpair instead of an accepted socket: shared by
 * `sluice --explain` and `sluice-milter`, so both run exactly the code
 * the daemon runs, with only the backend replaced by a stand-in.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "connlimit.h"
#include "generation.h"
#include "log.h"
#include "offline.h"
#include "pool.h"
#include "session.h"
#include "store.h"
#include "util.h"
#include "worker.h"

struct offline_start {
	int			 fd;		/* the session's end */
	struct sockaddr_storage	 sa;		/* the client it stands for */
	socklen_t		 salen;
	struct generation	*g;		/* reference, passed to the session */
	struct listener_gen	*lg;		/* into g */
};

offline_deliver_fn		 offline_deliver_hook;

static struct config_backend	 offline_backend_conf;
static struct backend		 offline_backend;
static struct event_base	*offline_main_base;
static atomic_uint		 offline_next_worker;

static void	 offline_start_cb(void *);

int
offline_deliver(struct session *s, struct message *msg)
{
	if (offline_deliver_hook == NULL)
		return 0;
	return offline_deliver_hook(s, msg);
}

struct listener_gen *
offline_listener(struct generation *g, const char *name)
{
	size_t	 i;

	for (i = 0; i < g->nlisteners; i++)
		if (name == NULL || strcmp(g->listeners[i].conf->name, name) == 0)
			return &g->listeners[i];
	return NULL;
}

void
offline_standin(struct generation *g, struct listener_gen *lg, int received)
{
	size_t	 i;

	offline_backend_conf.name = "stand-in";
	offline_backend_conf.type = CONFIG_BACKEND_EXPLAIN;
	offline_backend.conf = &offline_backend_conf;
	lg->backend = &offline_backend;
	/* lg->conf is const for sessions; the generation owns the config. */
	for (i = 0; i < g->cfg->nlisteners; i++)
		if (&g->cfg->listeners[i] == lg->conf && !received)
			g->cfg->listeners[i].received_header = 0;
}

int
offline_address(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

void
offline_start(struct generation *g, int nworkers)
{
	log_set_level((enum log_level)g->cfg->log_level);
	signal(SIGPIPE, SIG_IGN);
	worker_threads_init();
	if ((offline_main_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	worker_main_init(offline_main_base);
	pool_start((int)g->cfg->pool_threads);
	workers_start(nworkers);
	generation_set_current(g);
}

struct event_base *
offline_base(void)
{
	return offline_main_base;
}

void
offline_stop(void)
{
	workers_stop();
	pool_stop();
	store_shutdown();
	generation_shutdown();
	event_base_free(offline_main_base);
	offline_main_base = NULL;
}

/* On the worker: count the connection as the listener would, then run. */
static void
offline_start_cb(void *arg)
{
	struct offline_start	*st = arg;
	struct connlimit_key	 key;

	if (connlimit_take(st->g->cfg, st->lg, (struct sockaddr *)&st->sa, &key) != CONNLIMIT_OK) {
		close(st->fd);
		generation_unref(st->g);
		free(st);
		return;
	}
	session_accept(worker_current(), st->fd, (struct sockaddr *)&st->sa, st->salen, st->g,
	    st->lg, &key);
	free(st);
}

int
offline_session(struct generation *g, struct listener_gen *lg, const struct sockaddr *sa,
    socklen_t salen, int *peer)
{
	struct offline_start	*st;
	int			 sv[2];
	unsigned int		 n;

	if (salen > sizeof(st->sa) || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		generation_unref(g);
		return -1;
	}
	st = xcalloc(1, sizeof(*st));
	st->fd = sv[1];
	memcpy(&st->sa, sa, salen);
	st->salen = salen;
	st->g = g;
	st->lg = lg;
	if (peer != NULL)
		*peer = sv[1];
	n = atomic_fetch_add(&offline_next_worker, 1);
	worker_post(worker_get((int)(n % (unsigned int)worker_count())), offline_start_cb, st);
	return sv[0];
}
