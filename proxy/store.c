/*
 * store.c - the counter store service: sluice_store_open() and
 * sluice_counter_add() of filters/sluice_filter.h, the registry of open
 * stores, result delivery to the caller's worker, and the "memory"
 * backend, one process-wide table of fixed-window counters.
 *
 * The memory table is bounded: every operation sweeps a couple of buckets
 * for expired counters, a full table sweeps more before it refuses a new
 * key, and it never holds more than its cap of entries, so a flood of
 * distinct keys costs refusals (the filter's on_store_error), not memory.
 * The mutex covers only the bucket walk; hashing happens before it and
 * freeing after it.  Keys are hashed with SipHash under a random key, so
 * clients cannot aim their addresses at one bucket.
 */
#include "autoconf.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chain.h"
#include "generation.h"
#include "log.h"
#include "session.h"
#include "store.h"
#include "util.h"
#include "worker.h"

/* Buckets swept by every operation, and before refusing a new key. */
#define MEMORY_SWEEP_STEP	2
#define MEMORY_SWEEP_FULL	1024
/* At most one "memory store full" line per this many ms. */
#define MEMORY_FULL_LOG_MS	10000
/* The longest window a counter may have: 366 days. */
#define STORE_WINDOW_MAX_MS	(366ULL * 86400 * 1000)

struct memory_entry {
	struct memory_entry	*next;		/* bucket chain */
	uint64_t		 hash;		/* of key */
	uint64_t		 expires_ms;	/* end of the window, clock time */
	long long		 value;		/* the count */
	size_t			 keylen;	/* strlen(key) */
	char			 key[];		/* NUL-terminated */
};

struct store_memory {
	pthread_mutex_t		 lock;		/* guards everything below */
	struct memory_entry	**buckets;	/* chains */
	size_t			 nbuckets;	/* a power of two */
	size_t			 count;		/* entries held */
	size_t			 cap;		/* most entries */
	size_t			 cursor;	/* next bucket the sweep visits */
	uint64_t		 k0, k1;	/* SipHash key */
	uint64_t		(*clock)(void);	/* monotonic ms */
	uint64_t		 full_logged_ms;/* last "full" line, 0 = never */
	unsigned long		 refused;	/* new keys refused since then */
};

/* An open store; one per canonical spec, for the life of the process. */
struct sluice_store {
	char			*spec;		/* canonical spec, the registry key */
	struct store_memory	*memory;	/* "memory", else NULL */
	struct store_redis	*redis;		/* "redis://", else NULL */
	struct sluice_store	*next;		/* registry list */
};

/*
 * A filter's request holds the session's generation, as a DNS query
 * does: the filter instance that gets the answer lives in it.
 */
struct counter_call {
	sluice_counter_cb	 cb;		/* the filter's */
	void			*arg;		/* its argument */
	struct generation	*gen;		/* referenced until cb returned */
};

/* A result on its way to the caller's worker. */
struct store_delivery {
	sluice_counter_cb	 cb;		/* the caller's callback */
	void			*arg;		/* its argument */
	struct sluice_counter	 result;	/* what it gets */
	char			 why[160];	/* result.why points here */
};

static uint64_t	 memory_hash(const struct store_memory *, const char *, size_t);
static size_t	 memory_sweep(struct store_memory *, uint64_t, size_t,
		    struct memory_entry **);
static struct memory_entry *memory_find(struct store_memory *, uint64_t, const char *,
		    size_t);
static void	 memory_free_list(struct memory_entry *);
static struct memory_entry *memory_insert(struct store_memory *, uint64_t, const char *, size_t,
		    uint64_t, struct memory_entry **);
static int	 memory_note_full(struct store_memory *, uint64_t);
static int	 store_canonical(const char *, char *, size_t, struct store_redis_spec *, int *,
		    char *, size_t);
static void	 store_delivery_run(void *);
static void	 counter_call_done(void *, const struct sluice_counter *);

static pthread_mutex_t	 registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sluice_store *registry;
static atomic_int	 store_closing;

/* --- The filter API ------------------------------------------------------- */

struct sluice_store *
sluice_store_open(struct sluice_filter *filter, const char *spec, char *err, size_t errlen)
{
	(void)filter;
	return store_open(spec, err, errlen);
}

static void
counter_call_done(void *arg, const struct sluice_counter *result)
{
	struct counter_call	*c = arg;

	c->cb(c->arg, result);
	generation_unref(c->gen);
	free(c);
}

int
sluice_counter_add(struct sluice_ctx *ctx, struct sluice_store *store, const char *key,
    long long delta, unsigned long window_ms, sluice_counter_cb cb, void *arg)
{
	struct counter_call	*c;

	if (ctx == NULL || ctx->session == NULL || cb == NULL)
		return -1;
	c = xcalloc(1, sizeof(*c));
	c->cb = cb;
	c->arg = arg;
	c->gen = ctx->session->gen;
	generation_ref(c->gen);
	if (store_counter_add(store, ctx->session->worker, key, delta, window_ms,
	    counter_call_done, c) == -1) {
		generation_unref(c->gen);
		free(c);
		return -1;
	}
	return 0;
}

/* --- Registry ------------------------------------------------------------- */

/* The canonical spec of spec into buf, and whether it is Redis.  0 or -1. */
static int
store_canonical(const char *spec, char *buf, size_t size, struct store_redis_spec *rs,
    int *is_redis, char *err, size_t errlen)
{
	*is_redis = 0;
	if (spec == NULL || *spec == '\0' || strcasecmp(spec, "memory") == 0) {
		strlcpy_s(buf, "memory", size);
		return 0;
	}
	if (strncasecmp(spec, "redis://", 8) != 0) {
		snprintf(err, errlen, "store must be \"memory\" or "
		    "\"redis://HOST:PORT[/DB][?timeout=250ms&prefix=sluice:]\"");
		return -1;
	}
	if (store_redis_parse_spec(spec, rs, err, errlen) == -1)
		return -1;
	store_redis_format_spec(rs, buf, size);
	*is_redis = 1;
	return 0;
}

struct sluice_store *
store_open(const char *spec, char *err, size_t errlen)
{
	struct store_redis_spec	 rs;
	struct sluice_store	*st;
	char			 canonical[512];
	int			 is_redis;

	if (store_canonical(spec, canonical, sizeof(canonical), &rs, &is_redis, err,
	    errlen) == -1)
		return NULL;
	pthread_mutex_lock(&registry_lock);
	for (st = registry; st != NULL; st = st->next)
		if (strcmp(st->spec, canonical) == 0)
			break;
	if (st == NULL) {
		st = xcalloc(1, sizeof(*st));
		if (is_redis)
			st->redis = store_redis_new(&rs, err, errlen);
		else
			st->memory = store_memory_new(STORE_MEMORY_CAP, STORE_MEMORY_BUCKETS,
			    monotonic_ms);
		if (st->redis == NULL && st->memory == NULL) {
			free(st);
			st = NULL;
		} else {
			st->spec = xstrdup(canonical);
			st->next = registry;
			registry = st;
			log_debug("store open spec=%s", canonical);
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return st;
}

int
store_counter_add(struct sluice_store *store, struct worker *w, const char *key,
    long long delta, unsigned long window_ms, sluice_counter_cb cb, void *arg)
{
	long long	 value, ttl;
	size_t		 len;

	if (store == NULL || w == NULL || key == NULL || cb == NULL || window_ms == 0 ||
	    (unsigned long long)window_ms > STORE_WINDOW_MAX_MS)
		return -1;
	len = strlen(key);
	if (len == 0 || len > STORE_KEY_MAX)
		return -1;
	if (store->redis != NULL)
		return store_redis_add(store->redis, w, key, delta, window_ms, cb, arg);
	if (store_memory_add(store->memory, key, delta, window_ms, &value, &ttl) == -1)
		store_deliver(w, cb, arg, 0, 0, 0, "memory store full");
	else
		store_deliver(w, cb, arg, 1, value, ttl, "");
	return 0;
}

void
store_shutdown(void)
{
	struct sluice_store	*st, *next;

	atomic_store(&store_closing, 1);
	pthread_mutex_lock(&registry_lock);
	st = registry;
	registry = NULL;
	pthread_mutex_unlock(&registry_lock);
	for (; st != NULL; st = next) {
		next = st->next;
		if (st->redis != NULL)
			store_redis_free(st->redis);
		if (st->memory != NULL)
			store_memory_free(st->memory);
		free(st->spec);
		free(st);
	}
}

/* --- Delivery --------------------------------------------------------------- */

static void
store_delivery_run(void *arg)
{
	struct store_delivery	*d = arg;

	d->result.why = d->why;
	d->cb(d->arg, &d->result);
	free(d);
}

void
store_deliver(struct worker *w, sluice_counter_cb cb, void *arg, int ok, long long value,
    long long ttl_ms, const char *why)
{
	struct store_delivery	*d = xcalloc(1, sizeof(*d));

	d->cb = cb;
	d->arg = arg;
	d->result.ok = ok;
	d->result.value = value;
	d->result.ttl_ms = ttl_ms;
	strlcpy_s(d->why, why != NULL ? why : "", sizeof(d->why));
	/* At exit the workers are gone: answer here rather than never. */
	if (atomic_load(&store_closing) || w == NULL)
		store_delivery_run(d);
	else
		worker_post(w, store_delivery_run, d);
}

/* --- The memory table --------------------------------------------------------- */

#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

/* SipHash-1-3 of key under the table's random key. */
static uint64_t
memory_hash(const struct store_memory *m, const char *key, size_t len)
{
	const unsigned char	*p = (const unsigned char *)key;
	uint64_t		 v0 = 0x736f6d6570736575ULL ^ m->k0;
	uint64_t		 v1 = 0x646f72616e646f6dULL ^ m->k1;
	uint64_t		 v2 = 0x6c7967656e657261ULL ^ m->k0;
	uint64_t		 v3 = 0x7465646279746573ULL ^ m->k1;
	uint64_t		 b = (uint64_t)len << 56, word;
	size_t			 i;

	for (; len >= 8; len -= 8, p += 8) {
		memcpy(&word, p, sizeof(word));
		v3 ^= word;
		SIPROUND;
		v0 ^= word;
	}
	for (i = 0; i < len; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

struct store_memory *
store_memory_new(size_t cap, size_t nbuckets, uint64_t (*clock)(void))
{
	struct store_memory	*m = xcalloc(1, sizeof(*m));

	if (nbuckets == 0 || (nbuckets & (nbuckets - 1)) != 0)
		fatalx("store_memory_new: %zu buckets is not a power of two", nbuckets);
	if (pthread_mutex_init(&m->lock, NULL) != 0)
		fatalx("pthread_mutex_init");
	m->buckets = xcalloc(nbuckets, sizeof(*m->buckets));
	m->nbuckets = nbuckets;
	m->cap = cap;
	m->clock = clock;
	m->k0 = random_u64();
	m->k1 = random_u64();
	return m;
}

static void
memory_free_list(struct memory_entry *e)
{
	struct memory_entry	*next;

	for (; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
}

void
store_memory_free(struct store_memory *m)
{
	size_t	 i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nbuckets; i++)
		memory_free_list(m->buckets[i]);
	free(m->buckets);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/*
 * Unlink the expired entries of n buckets from the cursor on onto
 * *garbage (freed after the lock).  Returns how many.  Lock held.
 */
static size_t
memory_sweep(struct store_memory *m, uint64_t now, size_t n, struct memory_entry **garbage)
{
	struct memory_entry	**pp, *e;
	size_t			  freed = 0;

	if (n > m->nbuckets)
		n = m->nbuckets;
	while (n-- > 0) {
		pp = &m->buckets[m->cursor];
		while ((e = *pp) != NULL) {
			if (e->expires_ms <= now) {
				*pp = e->next;
				e->next = *garbage;
				*garbage = e;
				m->count--;
				freed++;
			} else
				pp = &e->next;
		}
		m->cursor = (m->cursor + 1) & (m->nbuckets - 1);
	}
	return freed;
}

/* Lock held. */
static struct memory_entry *
memory_find(struct store_memory *m, uint64_t hash, const char *key, size_t len)
{
	struct memory_entry	*e;

	for (e = m->buckets[hash & (m->nbuckets - 1)]; e != NULL; e = e->next)
		if (e->hash == hash && e->keylen == len && memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

/* A new counter for key, or NULL when the table is full.  Lock held. */
static struct memory_entry *
memory_insert(struct store_memory *m, uint64_t hash, const char *key, size_t len,
    uint64_t now, struct memory_entry **garbage)
{
	struct memory_entry	*e;
	size_t			 b = hash & (m->nbuckets - 1);

	if (m->count >= m->cap)
		memory_sweep(m, now, MEMORY_SWEEP_FULL, garbage);
	if (m->count >= m->cap)
		return NULL;
	e = xmalloc(sizeof(*e) + len + 1);
	e->hash = hash;
	e->keylen = len;
	memcpy(e->key, key, len + 1);
	e->value = 0;
	e->expires_ms = 0;
	e->next = m->buckets[b];
	m->buckets[b] = e;
	m->count++;
	return e;
}

/* Whether a refusal should be logged now; lock held. */
static int
memory_note_full(struct store_memory *m, uint64_t now)
{
	m->refused++;
	if (m->full_logged_ms != 0 && now - m->full_logged_ms < MEMORY_FULL_LOG_MS)
		return 0;
	m->full_logged_ms = now != 0 ? now : 1;
	return 1;
}

int
store_memory_add(struct store_memory *m, const char *key, long long delta,
    unsigned long window_ms, long long *value, long long *ttl_ms)
{
	struct memory_entry	*garbage = NULL, *e;
	size_t			 len = strlen(key), count = 0;
	uint64_t		 hash = memory_hash(m, key, len), now;
	unsigned long		 refused = 0;
	int			 rc = 0, log_full = 0;

	*value = *ttl_ms = 0;
	pthread_mutex_lock(&m->lock);
	now = m->clock();
	memory_sweep(m, now, MEMORY_SWEEP_STEP, &garbage);
	e = memory_find(m, hash, key, len);
	if (e != NULL && e->expires_ms <= now && delta != 0) {
		e->value = 0;	/* a new window starts with this increment */
		e->expires_ms = now + window_ms;
	} else if (e != NULL && e->expires_ms <= now)
		e = NULL;	/* a read of an ended window: nothing there */
	else if (e == NULL && delta != 0) {
		if ((e = memory_insert(m, hash, key, len, now, &garbage)) != NULL)
			e->expires_ms = now + window_ms;
		else {
			rc = -1;
			if ((log_full = memory_note_full(m, now)) != 0) {
				count = m->count;
				refused = m->refused;
				m->refused = 0;
			}
		}
	}
	if (e != NULL) {
		if (__builtin_add_overflow(e->value, delta, &e->value))
			e->value = delta > 0 ? LLONG_MAX : LLONG_MIN;
		*value = e->value;
		*ttl_ms = (long long)(e->expires_ms - now);
	}
	pthread_mutex_unlock(&m->lock);
	memory_free_list(garbage);
	if (log_full)
		log_warnx("store memory full entries=%zu cap=%zu refused=%lu: new counters are "
		    "refused until old ones expire", count, m->cap, refused);
	return rc;
}

size_t
store_memory_count(struct store_memory *m)
{
	size_t	 n;

	pthread_mutex_lock(&m->lock);
	n = m->count;
	pthread_mutex_unlock(&m->lock);
	return n;
}
