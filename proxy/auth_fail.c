/*
 * auth_fail.c - the per-address table of failed AUTH attempts: open
 * addressing over a fixed array, a short probe window, and eviction of the
 * oldest entry in it, so memory stays fixed whatever the number of
 * attacking addresses.  See auth_fail.h.
 */
#include "autoconf.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "auth_fail.h"
#include "util.h"

#define AUTH_FAIL_PROBES	8

struct auth_fail_entry {
	char		 addr[INET6_ADDRSTRLEN];	/* "" = free */
	long		 count;				/* failures in the window */
	uint64_t	 first_ms;			/* window start */
	uint64_t	 last_ms;			/* latest failure, for eviction */
};

static struct auth_fail_entry	*auth_fail_find(const char *addr, int create, uint64_t now_ms);
static size_t			 auth_fail_hash(const char *addr);

static pthread_mutex_t		 auth_fail_lock = PTHREAD_MUTEX_INITIALIZER;
static struct auth_fail_entry	 auth_fail_table[AUTH_FAIL_SLOTS];

/* FNV-1a. */
static size_t
auth_fail_hash(const char *addr)
{
	uint32_t	 h = 2166136261u;

	while (*addr != '\0')
		h = (h ^ (unsigned char)*addr++) * 16777619u;
	return h;
}

/* The entry of addr, or (create) a free or the oldest slot for it.  Lock held. */
static struct auth_fail_entry *
auth_fail_find(const char *addr, int create, uint64_t now_ms)
{
	struct auth_fail_entry	*e, *victim = NULL;
	size_t			 h = auth_fail_hash(addr), i;

	for (i = 0; i < AUTH_FAIL_PROBES; i++) {
		e = &auth_fail_table[(h + i) % AUTH_FAIL_SLOTS];
		if (strcmp(e->addr, addr) == 0)
			return e;
		if (victim == NULL || e->addr[0] == '\0' ||
		    (victim->addr[0] != '\0' && e->last_ms < victim->last_ms))
			victim = e;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	strlcpy_s(victim->addr, addr, sizeof(victim->addr));
	victim->first_ms = now_ms;
	return victim;
}

long
auth_fail_count(const char *addr, uint64_t now_ms, long long window_ms)
{
	struct auth_fail_entry	*e;
	long			 n = 0;

	pthread_mutex_lock(&auth_fail_lock);
	if ((e = auth_fail_find(addr, 0, now_ms)) != NULL &&
	    now_ms - e->first_ms < (uint64_t)window_ms)
		n = e->count;
	pthread_mutex_unlock(&auth_fail_lock);
	return n;
}

long
auth_fail_record(const char *addr, uint64_t now_ms, long long window_ms)
{
	struct auth_fail_entry	*e;
	long			 n;

	pthread_mutex_lock(&auth_fail_lock);
	e = auth_fail_find(addr, 1, now_ms);
	if (now_ms - e->first_ms >= (uint64_t)window_ms) {
		e->count = 0;
		e->first_ms = now_ms;
	}
	n = ++e->count;
	e->last_ms = now_ms;
	pthread_mutex_unlock(&auth_fail_lock);
	return n;
}

long long
auth_fail_delay(long long base_ms, long n)
{
	long long	 d = base_ms, cap = base_ms > AUTH_FAIL_DELAY_MAX_MS ? base_ms :
			    AUTH_FAIL_DELAY_MAX_MS;

	while (--n > 0 && d < cap)
		d *= 2;
	return d < cap ? d : cap;
}

void
auth_fail_clear(void)
{
	pthread_mutex_lock(&auth_fail_lock);
	memset(auth_fail_table, 0, sizeof(auth_fail_table));
	pthread_mutex_unlock(&auth_fail_lock);
}
