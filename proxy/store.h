/*
 * store.h - the counter store behind sluice_store_open() and
 * sluice_counter_add() (filters/sluice_filter.h): fixed-window counters
 * for rate limits and greylisting.
 *
 * Two backends.  "memory" is one table for the whole process, shared by
 * every worker thread under one mutex, bounded in entries, surviving
 * reloads.  "redis://..." talks to a Redis server with hiredis, one
 * asynchronous connection per worker thread, so several sluice
 * processes share one exact count (store_redis.c).
 *
 * Stores are kept in a registry keyed by their canonical spec for the
 * life of the process: every filter instance, of every generation, that
 * names the same spec gets the same store.  store_shutdown() frees them
 * all at exit, after the workers stopped.
 *
 * Results always reach the caller through its worker's queue
 * (worker_post), never inside the call that asked, so a filter can
 * treat every answer alike.
 */
#ifndef SLUICE_STORE_H
#define SLUICE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "sluice_filter.h"

struct worker;

/* The longest key a store takes (a longer one is refused with -1). */
#define STORE_KEY_MAX		1024

/* The memory store's size: entries, hash buckets (a power of two). */
#define STORE_MEMORY_CAP	262144
#define STORE_MEMORY_BUCKETS	131072

/*
 * Open (or find) the store for spec: "memory", or
 * "redis://HOST[:PORT][/DB][?timeout=250ms&prefix=sluice:]".  NULL or ""
 * is "memory".  Returns the shared store, or NULL with a sentence in err.
 * Main thread (filter init).
 */
struct sluice_store *store_open(const char *spec, char *err, size_t errlen);

/*
 * Add delta to key's counter in a window of window_ms, for a caller
 * running on worker w.  cb(arg, result) runs exactly once, later, on w.
 * Returns 0, or -1 when the arguments are unusable (then cb never runs).
 */
int	 store_counter_add(struct sluice_store *store, struct worker *w, const char *key,
	    long long delta, unsigned long window_ms, sluice_counter_cb cb, void *arg);

/*
 * At exit, after workers_stop(): close every store.  Requests still in
 * flight get their callback (ok = 0, why "shutdown") on the calling
 * thread, since their workers are gone.  Main thread, once.
 */
void	 store_shutdown(void);

/*
 * Hand a result to cb on worker w (through its queue).  why is copied.
 * After store_shutdown() began, cb is called at once instead.
 */
void	 store_deliver(struct worker *w, sluice_counter_cb cb, void *arg, int ok,
	    long long value, long long ttl_ms, const char *why);

/* --- The memory table (pure: no loop, no workers; unit-tested) ----------- */

struct store_memory;

/*
 * A table of at most cap entries in nbuckets buckets (a power of two),
 * reading time from clock (milliseconds, monotonic).
 */
struct store_memory *store_memory_new(size_t cap, size_t nbuckets, uint64_t (*clock)(void));
void	 store_memory_free(struct store_memory *m);

/*
 * Add delta to key's counter; the first increment starts a window of
 * window_ms, and the count restarts at the first increment after it
 * ended.  delta 0 reads without creating anything.  Sets *value and
 * *ttl_ms (0 for an absent counter).  Returns 0, or -1 when the table
 * is full of live counters and key is new (logged, at most every 10 s).
 * Thread-safe.
 */
int	 store_memory_add(struct store_memory *m, const char *key, long long delta,
	    unsigned long window_ms, long long *value, long long *ttl_ms);

/* Entries held, expired ones not yet purged included. */
size_t	 store_memory_count(struct store_memory *m);

/* --- The Redis backend (store_redis.c) ---------------------------------- */

struct store_redis;

/* A parsed redis:// spec. */
struct store_redis_spec {
	char		 host[256];	/* as written, without [] */
	int		 port;		/* 1..65535, default 6379 */
	int		 db;		/* SELECT index, default 0 */
	unsigned int	 timeout_ms;	/* per request, connecting included */
	char		 prefix[65];	/* key prefix, default "sluice:" */
};

/*
 * Parse "redis://HOST[:PORT][/DB][?timeout=DURATION&prefix=TEXT]"; HOST
 * is a name, an IPv4 address or [IPv6].  Pure.  Returns 0, or -1 with a
 * sentence in err.
 */
int	 store_redis_parse_spec(const char *spec, struct store_redis_spec *out, char *err,
	    size_t errlen);

/* The canonical text of a spec (the registry key). */
void	 store_redis_format_spec(const struct store_redis_spec *spec, char *buf, size_t size);

/*
 * A Redis store for spec; a host name is resolved now, once (the main
 * thread may block; the workers never do).  NULL with a sentence in err.
 */
struct store_redis *store_redis_new(const struct store_redis_spec *spec, char *err,
	    size_t errlen);

/* As store_counter_add, on the calling worker's own connection. */
int	 store_redis_add(struct store_redis *r, struct worker *w, const char *key,
	    long long delta, unsigned long window_ms, sluice_counter_cb cb, void *arg);

/* Close every connection (pending callbacks run) and free.  At exit. */
void	 store_redis_free(struct store_redis *r);

#endif /* SLUICE_STORE_H */
