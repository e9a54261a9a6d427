/*
 * backend.c - backend servers' health and the per-worker connection
 * pools.  See backend.h.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"

void
backend_init(struct backend *b, const struct config_backend *conf, int nworkers)
{
	size_t	 i;

	memset(b, 0, sizeof(*b));
	b->conf = conf;
	b->nservers = conf->nservers;
	b->servers = xcalloc(conf->nservers ? conf->nservers : 1, sizeof(*b->servers));
	for (i = 0; i < conf->nservers; i++) {
		b->servers[i].addr = &conf->addrs[i];
		b->servers[i].addrlen = (int)conf->addrlens[i];
		b->servers[i].name = conf->servers[i];
		atomic_init(&b->servers[i].down_until, 0);
		atomic_init(&b->servers[i].failures, 0);
	}
	atomic_init(&b->connections, 0);
	b->npools = nworkers;
	b->pools = xcalloc((size_t)(nworkers > 0 ? nworkers : 1), sizeof(*b->pools));
}

void
backend_fini(struct backend *b)
{
	free(b->servers);
	free(b->pools);
	memset(b, 0, sizeof(*b));
}

size_t
backend_server_order(struct backend *b, size_t *order, size_t max)
{
	uint64_t	 now = monotonic_ms();
	size_t		 i, n = 0;

	for (i = 0; i < b->nservers && n < max; i++)
		if (atomic_load(&b->servers[i].down_until) <= now)
			order[n++] = i;
	for (i = 0; i < b->nservers && n < max; i++)
		if (atomic_load(&b->servers[i].down_until) > now)
			order[n++] = i;
	return n;
}

void
backend_server_failed(struct backend *b, size_t index, const char *why)
{
	struct backend_server	*srv = &b->servers[index];
	uint64_t		 until = monotonic_ms() + (uint64_t)b->conf->down_time_ms;
	unsigned int		 n = atomic_fetch_add(&srv->failures, 1) + 1;

	atomic_store(&srv->down_until, until);
	log_warnx("backend=%s server=%s marked down for %lldms failures=%u reason=\"%s\"",
	    b->conf->name, srv->name, b->conf->down_time_ms, n, why);
}

void
backend_server_ok(struct backend *b, size_t index)
{
	struct backend_server	*srv = &b->servers[index];

	if (atomic_exchange(&srv->failures, 0) != 0) {
		atomic_store(&srv->down_until, 0);
		log_info("backend=%s server=%s healthy again", b->conf->name, srv->name);
	}
}

int
backend_slot_take(struct backend *b)
{
	long	 n = atomic_fetch_add(&b->connections, 1) + 1;

	if (n > b->conf->max_connections) {
		atomic_fetch_sub(&b->connections, 1);
		return -1;
	}
	return 0;
}

void
backend_slot_release(struct backend *b)
{
	atomic_fetch_sub(&b->connections, 1);
}

void
backend_pool_close(struct backend *b, struct worker *w)
{
	struct backend_pool	*pool;

	if (w->id < 0 || w->id >= b->npools)
		return;
	pool = &b->pools[w->id];
	while (pool->idle != NULL) {
		struct upstream	*up = pool->idle;

		upstream_pool_unlink(b, w, up);
		upstream_free(&up);
	}
}

static void
backend_shed_cb(void *arg)
{
	backend_pool_close(arg, worker_current());
}

void
backend_shed_idle(struct backend *b)
{
	workers_post_all(backend_shed_cb, b);
}
