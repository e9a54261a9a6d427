/*
 * connlimit.c - connection counts: a global atomic, the listener's atomic,
 * and a small hash table of per-prefix counts under one mutex.
 */
#include "autoconf.h"

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

struct ip_count {
	struct connlimit_key	 key;	/* masked address */
	long			 count;	/* open connections */
	struct ip_count		*next;	/* bucket chain */
};

static void	 connlimit_mask(const struct sockaddr *, int, int, struct connlimit_key *);
static size_t	 connlimit_hash(const struct connlimit_key *);

static atomic_long	 total;
static pthread_mutex_t	 table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ip_count	*table[CONNLIMIT_BUCKETS];

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

static size_t
connlimit_hash(const struct connlimit_key *key)
{
	uint64_t	 h = 1469598103934665603ULL;
	size_t		 i;

	h ^= key->family;
	for (i = 0; i < sizeof(key->bytes); i++) {
		h ^= key->bytes[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h % CONNLIMIT_BUCKETS);
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
	if (key->family != 0 &&
	    !connlimit_ip_take(key, (long)cfg->max_connections_per_ip)) {
		atomic_fetch_sub(&lg->connections, 1);
		atomic_fetch_sub(&total, 1);
		return CONNLIMIT_PER_IP;
	}
	return CONNLIMIT_OK;
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
