/*
 * connlimit.c - connection counts: a global atomic, the listener's atomic,
 * and a small hash table of per-prefix counts under one mutex; and the
 * rate of new connections per prefix: token buckets in a fixed-size,
 * 8-way set-associative table under a second mutex, so a flood from many
 * addresses costs no memory and evicts only the least recently seen.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "connlimit.h"
#include "generation.h"
#include "util.h"

#define CONNLIMIT_BUCKETS	4096
#define RATE_SETS		1024
#define RATE_WAYS		8

struct ip_count {
	struct connlimit_key	 key;	/* masked address */
	long			 count;	/* open connections */
	struct ip_count		*next;	/* bucket chain */
};

/*
 * One prefix's bucket.  The level is in token-milliseconds: a connection
 * costs window_ms, the bucket holds max * window_ms and refills max per
 * millisecond, so integer arithmetic is exact.
 */
struct rate_slot {
	struct connlimit_key	 key;	/* masked address; family 0 = free */
	uint64_t		 last_ms;	/* last refill (and use) */
	uint64_t		 level;	/* token-milliseconds in the bucket */
};

static void	 connlimit_mask(const struct sockaddr *, int, int, struct connlimit_key *);
static uint64_t	 connlimit_hash64(const struct connlimit_key *);
static uint64_t	 connlimit_mix(uint64_t);
static size_t	 connlimit_hash(const struct connlimit_key *);
static struct rate_slot *connlimit_rate_slot(const struct connlimit_key *, uint64_t,
		    uint64_t);

static atomic_long	 total;
static pthread_mutex_t	 table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ip_count	*table[CONNLIMIT_BUCKETS];
static pthread_mutex_t	 rate_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rate_slot	 rate_table[RATE_SETS][RATE_WAYS];

static void
connlimit_mask(const struct sockaddr *sa, int v4prefix, int v6prefix, struct connlimit_key *key)
{
	const uint8_t	*src;
	int		 bits, len, i;

	memset(key, 0, sizeof(*key));
	if (sa->sa_family == AF_INET) {
		src = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		len = 4;
		bits = v4prefix;
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			src = &a6->s6_addr[12];
			len = 4;
			bits = v4prefix;
			key->family = AF_INET;
		} else {
			src = a6->s6_addr;
			len = 16;
			bits = v6prefix;
		}
	} else
		return;
	if (key->family == 0)
		key->family = (uint8_t)sa->sa_family;
	for (i = 0; i < len; i++) {
		int	 keep = bits - i * 8;

		if (keep >= 8)
			key->bytes[i] = src[i];
		else if (keep > 0)
			key->bytes[i] = src[i] & (uint8_t)(0xff << (8 - keep));
	}
}

static uint64_t
connlimit_hash64(const struct connlimit_key *key)
{
	uint64_t	 h = 1469598103934665603ULL;
	size_t		 i;

	h ^= key->family;
	for (i = 0; i < sizeof(key->bytes); i++) {
		h ^= key->bytes[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* splitmix64's finaliser: FNV alone fills few sets for keys differing late. */
static uint64_t
connlimit_mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t
connlimit_hash(const struct connlimit_key *key)
{
	return (size_t)(connlimit_hash64(key) % CONNLIMIT_BUCKETS);
}

/*
 * The key's slot in its set, or a new one (full bucket) in place of a
 * free or the least recently used slot.  Called with rate_lock held.
 */
static struct rate_slot *
connlimit_rate_slot(const struct connlimit_key *key, uint64_t full, uint64_t now_ms)
{
	struct rate_slot	*set, *victim;
	size_t			 i;

	set = rate_table[connlimit_mix(connlimit_hash64(key)) % RATE_SETS];
	victim = &set[0];
	for (i = 0; i < RATE_WAYS; i++) {
		if (set[i].key.family != 0 && memcmp(&set[i].key, key, sizeof(*key)) == 0)
			return &set[i];
		if (victim->key.family != 0 &&
		    (set[i].key.family == 0 || set[i].last_ms < victim->last_ms))
			victim = &set[i];
	}
	victim->key = *key;
	victim->last_ms = now_ms;
	victim->level = full;
	return victim;
}

int
connlimit_rate_take(const struct connlimit_key *key, long max, long long window_ms,
    uint64_t now_ms)
{
	struct rate_slot	*r;
	uint64_t		 full, elapsed, cost = (uint64_t)window_ms;
	int			 ok = 0;

	if (max <= 0 || window_ms <= 0 || key->family == 0)
		return 1;
	full = (uint64_t)max * cost;
	pthread_mutex_lock(&rate_lock);
	r = connlimit_rate_slot(key, full, now_ms);
	elapsed = now_ms > r->last_ms ? now_ms - r->last_ms : 0;
	if (elapsed > cost)
		elapsed = cost;		/* a whole window refills it: no overflow */
	r->level += elapsed * (uint64_t)max;
	if (r->level > full)
		r->level = full;	/* also after a reload lowered max */
	if (now_ms > r->last_ms)
		r->last_ms = now_ms;
	if (r->level >= cost) {
		r->level -= cost;
		ok = 1;
	}
	pthread_mutex_unlock(&rate_lock);
	return ok;
}

size_t
connlimit_rate_slots(void)
{
	size_t	 i, j, n = 0;

	pthread_mutex_lock(&rate_lock);
	for (i = 0; i < RATE_SETS; i++)
		for (j = 0; j < RATE_WAYS; j++)
			if (rate_table[i][j].key.family != 0)
				n++;
	pthread_mutex_unlock(&rate_lock);
	return n;
}

void
connlimit_rate_clear(void)
{
	pthread_mutex_lock(&rate_lock);
	memset(rate_table, 0, sizeof(rate_table));
	pthread_mutex_unlock(&rate_lock);
}

/* Count key in the table unless that would exceed max (0 = no maximum). */
static int
connlimit_ip_take(const struct connlimit_key *key, long max)
{
	struct ip_count	*c;
	size_t		 b = connlimit_hash(key);
	int		 ok = 1;

	pthread_mutex_lock(&table_lock);
	for (c = table[b]; c != NULL; c = c->next)
		if (memcmp(&c->key, key, sizeof(*key)) == 0)
			break;
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->key = *key;
		c->next = table[b];
		table[b] = c;
	}
	/* A new entry starts at 0 and max > 0, so a refusal never leaves one at 0. */
	if (max > 0 && c->count >= max)
		ok = 0;
	else
		c->count++;
	pthread_mutex_unlock(&table_lock);
	return ok;
}

static void
connlimit_ip_release(const struct connlimit_key *key)
{
	struct ip_count	**pp, *c;
	size_t		  b = connlimit_hash(key);

	pthread_mutex_lock(&table_lock);
	for (pp = &table[b]; (c = *pp) != NULL; pp = &c->next)
		if (memcmp(&c->key, key, sizeof(*key)) == 0) {
			if (--c->count <= 0) {
				*pp = c->next;
				free(c);
			}
			break;
		}
	pthread_mutex_unlock(&table_lock);
}

enum connlimit_result
connlimit_take(const struct config *cfg, struct listener_gen *lg, const struct sockaddr *sa,
    struct connlimit_key *key)
{
	long	 n;

	connlimit_mask(sa, (int)cfg->ipv4_prefix, (int)cfg->ipv6_prefix, key);
	n = atomic_fetch_add(&total, 1) + 1;
	if (n > cfg->max_connections) {
		atomic_fetch_sub(&total, 1);
		return CONNLIMIT_GLOBAL;
	}
	n = atomic_fetch_add(&lg->connections, 1) + 1;
	if (lg->conf->max_connections > 0 && n > lg->conf->max_connections) {
		atomic_fetch_sub(&lg->connections, 1);
		atomic_fetch_sub(&total, 1);
		return CONNLIMIT_LISTENER;
	}
	/* Refused for rate: nothing counted, so the flood holds no slot. */
	if (!connlimit_rate_take(key, (long)cfg->max_connection_rate_per_ip,
	    cfg->connection_rate_window_ms, monotonic_ms())) {
		atomic_fetch_sub(&lg->connections, 1);
		atomic_fetch_sub(&total, 1);
		return CONNLIMIT_RATE;
	}
	if (key->family != 0 &&
	    !connlimit_ip_take(key, (long)cfg->max_connections_per_ip)) {
		atomic_fetch_sub(&lg->connections, 1);
		atomic_fetch_sub(&total, 1);
		return CONNLIMIT_PER_IP;
	}
	return CONNLIMIT_OK;
}

void
connlimit_key_text(const struct connlimit_key *key, char *buf, size_t len)
{
	if (len == 0)
		return;
	buf[0] = '\0';
	if (key->family == AF_INET || key->family == AF_INET6)
		if (inet_ntop(key->family, key->bytes, buf, (socklen_t)len) == NULL)
			buf[0] = '\0';
}

enum connlimit_result
connlimit_take_ip(const struct config *cfg, const struct sockaddr *sa, struct connlimit_key *key)
{
	connlimit_mask(sa, (int)cfg->ipv4_prefix, (int)cfg->ipv6_prefix, key);
	if (key->family != 0 &&
	    !connlimit_ip_take(key, (long)cfg->max_connections_per_ip)) {
		key->family = 0;
		return CONNLIMIT_PER_IP;
	}
	return CONNLIMIT_OK;
}

void
connlimit_release(struct listener_gen *lg, const struct connlimit_key *key)
{
	if (key->family != 0)
		connlimit_ip_release(key);
	atomic_fetch_sub(&lg->connections, 1);
	atomic_fetch_sub(&total, 1);
}

long
connlimit_total(void)
{
	return atomic_load(&total);
}
