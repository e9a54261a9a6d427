/*
 * backend.h - the backends of a generation: their servers' health and the
 * per-worker pools of idle upstream connections.
 *
 * Health is shared by all workers (atomics); a pool belongs to one worker
 * and is touched only on that worker's thread.  The connection cap counts
 * every open connection of the backend across workers.
 */
#ifndef SLUICE_BACKEND_H
#define SLUICE_BACKEND_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct upstream;
struct worker;

struct backend_server {
	const struct sockaddr_storage *addr;	/* into config */
	int			 addrlen;	/* its length */
	const char		*name;		/* as written in config */
	atomic_uint_fast64_t	 down_until;	/* monotonic ms; 0 = healthy */
	atomic_uint		 failures;	/* consecutive failures */
};

struct backend_pool {
	struct upstream		*idle;		/* idle connections, most recent first */
	size_t			 nidle;		/* how many */
};

struct backend {
	const struct config_backend *conf;	/* its section */
	struct backend_server	*servers;	/* one per config server */
	size_t			 nservers;
	atomic_long		 connections;	/* open upstream connections */
	struct backend_pool	*pools;		/* one per worker */
	int			 npools;
};

/* Set up b for conf with one pool per worker.  Main thread. */
void	 backend_init(struct backend *b, const struct config_backend *conf, int nworkers);
/* Free b; its pools must be empty (backend_pool_close on each worker). */
void	 backend_fini(struct backend *b);

/*
 * The order in which to try servers now: healthy ones in config order,
 * then the ones marked down (a last resort).  Fills order[] with indexes,
 * returns how many.
 */
size_t	 backend_server_order(struct backend *b, size_t *order, size_t max);
void	 backend_server_failed(struct backend *b, size_t index, const char *why);
void	 backend_server_ok(struct backend *b, size_t index);

/* Reserve one connection slot; 0 on success, -1 when at max_connections. */
int	 backend_slot_take(struct backend *b);
void	 backend_slot_release(struct backend *b);

/*
 * At the cap: ask every worker to close its idle connections of b, so
 * the slots they hold serve the next attempt.  The generation owning b
 * must be pinned by the caller (it is: by the session).
 */
void	 backend_shed_idle(struct backend *b);

/* Close every idle connection of b on the calling worker. */
void	 backend_pool_close(struct backend *b, struct worker *w);

#endif /* SLUICE_BACKEND_H */
