/*
 * generation.c - building, publishing and retiring configuration
 * generations.  See generation.h.
 */
#include "autoconf.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_backend.h"
#include "backend.h"
#include "queue_accept.h"
#include "chain.h"
#include "config.h"
#include "dns.h"
#include "generation.h"
#include "listener.h"
#include "log.h"
#include "module.h"
#include "util.h"
#include "worker.h"

static pthread_mutex_t	 current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct generation *current;
static uint64_t		 generation_counter;
static atomic_int	 live_generations;

/* Initialise every filter instance; on failure write why into err. */
static int
generation_init_filters(struct generation *g, char *err, size_t errlen)
{
	size_t	 i;

	g->nfilters = g->cfg->nfilters;
	g->filters = xcalloc(g->nfilters ? g->nfilters : 1, sizeof(*g->filters));
	for (i = 0; i < g->nfilters; i++) {
		struct filter_instance	*fi = &g->filters[i];
		const struct config_filter *cf = &g->cfg->filters[i];
		char			 why[512] = "";

		fi->conf = cf;
		fi->handle.conf = cf;
		fi->handle.gen = g;
		fi->desc = cf->module->desc;
		if (fi->desc->init == NULL) {
			fi->initialised = 1;
			continue;
		}
		if (fi->desc->init(&fi->handle, &fi->instance, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: %s \"%s\": %s", cf->file, cf->line,
			    fi->desc->name, cf->name, why[0] != '\0' ? why : "init failed");
			return -1;
		}
		fi->initialised = 1;
	}
	return 0;
}

static void
generation_init_listeners(struct generation *g)
{
	size_t	 i, j;

	g->nlisteners = g->cfg->nlisteners;
	g->listeners = xcalloc(g->nlisteners ? g->nlisteners : 1, sizeof(*g->listeners));
	for (i = 0; i < g->nlisteners; i++) {
		struct listener_gen		*lg = &g->listeners[i];
		const struct config_listener	*cl = &g->cfg->listeners[i];

		lg->conf = cl;
		if (cl->mode == CONFIG_MODE_RELAY)
			lg->backend = queue_accept_backend();
		else
			lg->backend = &g->backends[cl->backend_ref - g->cfg->backends];
		lg->nchain = cl->nchain;
		lg->chain = xcalloc(cl->nchain ? cl->nchain : 1, sizeof(*lg->chain));
		for (j = 0; j < cl->nchain; j++)
			lg->chain[j] = &g->filters[cl->chain_refs[j] - g->cfg->filters];
		lg->hooks = chain_hook_mask(lg->chain, lg->nchain);
		lg->nkeys = cl->nlisten;
		lg->keys = xcalloc(cl->nlisten ? cl->nlisten : 1, sizeof(*lg->keys));
		for (j = 0; j < cl->nlisten; j++)
			listener_key((const struct sockaddr *)&cl->addrs[j], lg->keys[j],
			    sizeof(lg->keys[j]));
		atomic_init(&lg->connections, 0);
		if (cl->auth.backend_ref != NULL)
			lg->auth = &g->auths[cl->auth.backend_ref - g->cfg->auths];
	}
}

/* The SMTP AUTH backends (a passwd file is read now: errors fail the build). */
static int
generation_init_auths(struct generation *g, char *err, size_t errlen)
{
	size_t	 i;

	g->auths = xcalloc(g->cfg->nauths ? g->cfg->nauths : 1, sizeof(*g->auths));
	for (i = 0; i < g->cfg->nauths; i++) {
		if (auth_backend_init(&g->auths[i], &g->cfg->auths[i], g, WORKERS_MAX, err,
		    errlen) == -1)
			return -1;
		g->nauths = i + 1;
	}
	return 0;
}

struct generation *
generation_build(const char *path, char *err, size_t errlen)
{
	struct generation	*g;
	struct config		*cfg;
	size_t			 i;

	if (config_load(path, &cfg, err, errlen) == -1)
		return NULL;
	g = xcalloc(1, sizeof(*g));
	g->cfg = cfg;
	atomic_init(&g->refs, 1);
	atomic_fetch_add(&live_generations, 1);
	if ((g->dns = dns_resolver_new(&cfg->resolver, cfg->path, err, errlen)) == NULL ||
	    generation_init_filters(g, err, errlen) == -1 ||
	    generation_init_auths(g, err, errlen) == -1) {
		generation_free(g);
		return NULL;
	}
	g->nbackends = cfg->nbackends;
	g->backends = xcalloc(cfg->nbackends ? cfg->nbackends : 1, sizeof(*g->backends));
	for (i = 0; i < cfg->nbackends; i++)
		backend_init(&g->backends[i], &cfg->backends[i], WORKERS_MAX);
	generation_init_listeners(g);
	g->number = ++generation_counter;
	return g;
}

void
generation_free(struct generation *g)
{
	size_t	 i;

	if (g == NULL)
		return;
	for (i = 0; i < g->nfilters; i++)
		if (g->filters[i].initialised && g->filters[i].desc->fini != NULL)
			g->filters[i].desc->fini(g->filters[i].instance);
	for (i = 0; i < g->nlisteners; i++) {
		free(g->listeners[i].chain);
		free(g->listeners[i].keys);
	}
	for (i = 0; i < g->nbackends; i++)
		backend_fini(&g->backends[i]);
	for (i = 0; i < g->nauths; i++)
		auth_backend_fini(&g->auths[i]);
	free(g->auths);
	dns_resolver_free(g->dns);
	free(g->listeners);
	free(g->backends);
	free(g->filters);
	config_free(&g->cfg);
	atomic_fetch_sub(&live_generations, 1);
	free(g);
}

void
generation_set_current(struct generation *g)
{
	struct generation	*old;

	pthread_mutex_lock(&current_lock);
	old = current;
	current = g;
	pthread_mutex_unlock(&current_lock);
	if (old != NULL)
		generation_unref(old);
}

struct generation *
generation_acquire(void)
{
	struct generation	*g;

	pthread_mutex_lock(&current_lock);
	if ((g = current) != NULL)
		atomic_fetch_add(&g->refs, 1);
	pthread_mutex_unlock(&current_lock);
	return g;
}

void
generation_ref(struct generation *g)
{
	atomic_fetch_add(&g->refs, 1);
}

/* Retiring: every worker closes its pooled connections, then main frees. */
struct generation_retire {
	struct generation	*g;	/* being retired */
	atomic_int		 left;	/* workers still to answer */
};

static void
generation_retired_cb(void *arg)
{
	struct generation_retire	*r = arg;

	log_info("generation=%llu released", (unsigned long long)r->g->number);
	generation_free(r->g);
	free(r);
}

static void
generation_close_pools_cb(void *arg)
{
	struct generation_retire	*r = arg;
	struct worker			*w = worker_current();
	size_t				 i;

	for (i = 0; i < r->g->nbackends; i++)
		backend_pool_close(&r->g->backends[i], w);
	dns_resolver_worker_close(r->g->dns, w);
	for (i = 0; i < r->g->nauths; i++)
		auth_backend_worker_close(&r->g->auths[i], w);
	if (atomic_fetch_sub(&r->left, 1) == 1)
		worker_post(worker_main(), generation_retired_cb, r);
}

static void
generation_retire_cb(void *arg)
{
	struct generation_retire	*r = xcalloc(1, sizeof(*r));

	r->g = arg;
	if (worker_count() == 0) {
		generation_retired_cb(r);
		return;
	}
	atomic_init(&r->left, worker_count());
	workers_post_all(generation_close_pools_cb, r);
}

void
generation_unref(struct generation *g)
{
	if (atomic_fetch_sub(&g->refs, 1) == 1)
		worker_post(worker_main(), generation_retire_cb, g);
}

struct listener_gen *
generation_listener(struct generation *g, const char *key)
{
	size_t	 i, j;

	for (i = 0; i < g->nlisteners; i++)
		for (j = 0; j < g->listeners[i].nkeys; j++)
			if (strcmp(g->listeners[i].keys[j], key) == 0)
				return &g->listeners[i];
	return NULL;
}

int
generation_live_count(void)
{
	return atomic_load(&live_generations);
}

void
generation_shutdown(void)
{
	struct generation	*g;

	pthread_mutex_lock(&current_lock);
	g = current;
	current = NULL;
	pthread_mutex_unlock(&current_lock);
	if (g != NULL && atomic_fetch_sub(&g->refs, 1) == 1)
		generation_free(g);
}
