/*
 * generation.h - one complete, immutable configuration generation.
 *
 * A generation is the parsed config, the filter instances initialised
 * from it, the backends with their connection pools and each listener's
 * resolved chain.  SIGHUP builds a whole new one aside and makes it
 * current only if every part of it succeeded (DESIGN.md, invariant 6).
 * A session holds a reference to the generation it was accepted under
 * until it ends; the last reference frees the generation on the main
 * thread, after every worker has closed its pooled backend connections.
 */
#ifndef SLUICE_GENERATION_H
#define SLUICE_GENERATION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct auth_backend;
struct backend;
struct dns_resolver;

/* A filter instance of this generation. */
struct filter_instance {
	struct sluice_filter	 handle;	/* what the module's init sees */
	const struct config_filter *conf;	/* its config section */
	const struct sluice_module *desc;	/* its module */
	void			*instance;	/* module's init result */
	int			 initialised;	/* init succeeded: fini owed */
};

/* A listener of this generation: its config and resolved references. */
struct listener_gen {
	const struct config_listener *conf;	/* listener section */
	struct filter_instance	**chain;	/* in order, into generation.filters */
	size_t			  nchain;	/* entries */
	struct backend		 *backend;	/* into generation.backends */
	unsigned int		  hooks;	/* bit per sluice_phase some filter hooks */
	char			(*keys)[80];	/* canonical listen addresses (listener_key) */
	size_t			  nkeys;	/* entries */
	atomic_long		  connections;	/* sessions open on it */
	struct auth_backend	 *auth;		/* into generation.auths, NULL if no AUTH */
};

struct generation {
	uint64_t		 number;	/* 1, 2, ... per successful build */
	atomic_int		 refs;		/* sessions + 1 while current */
	struct config		*cfg;		/* owned */
	struct filter_instance	*filters;	/* one per config filter */
	size_t			 nfilters;
	struct backend		*backends;	/* one per config backend */
	size_t			 nbackends;
	struct listener_gen	*listeners;	/* one per config listener */
	size_t			 nlisteners;
	struct dns_resolver	*dns;		/* the resolver section's resolver */
	struct auth_backend	*auths;		/* one per config auth section */
	size_t			 nauths;
};

/*
 * Load path and build a generation: config, filter init, backends.
 * Returns NULL on failure with every error in err, one per line.
 * Main thread.
 */
struct generation *generation_build(const char *path, char *err, size_t errlen);

/* Install g as current (takes over the caller's reference). Main thread. */
void		 generation_set_current(struct generation *g);
/* A new reference to the current generation.  Any thread. */
struct generation *generation_acquire(void);
void		 generation_ref(struct generation *g);
/* Drop a reference; the last one schedules freeing on the main thread. */
void		 generation_unref(struct generation *g);

/* The listener of g whose listen list contains key ("127.0.0.1:25"), or NULL. */
struct listener_gen *generation_listener(struct generation *g, const char *key);

/* Free a generation that never became current (build failure path too). */
void		 generation_free(struct generation *g);

/*
 * At exit, after the workers stopped: drop the current generation and
 * free it now (filter fini included) if no session holds it.
 */
void		 generation_shutdown(void);

/* How many generations exist (current + ones still pinned by sessions). */
int		 generation_live_count(void);

#endif /* SLUICE_GENERATION_H */
