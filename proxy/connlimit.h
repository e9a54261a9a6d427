/*
 * connlimit.h - connection accounting: all listeners together, per
 * listener, and per client address prefix.  Shared by all workers
 * (atomics and one mutex-guarded table); a key taken at accept is kept by
 * the session and given back at close, so a reload that changes the
 * prefix lengths never unbalances the counts.
 */
#ifndef SLUICE_CONNLIMIT_H
#define SLUICE_CONNLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct config;
struct listener_gen;

struct connlimit_key {
	uint8_t	 family;	/* AF_INET, AF_INET6, 0 = not counted per IP */
	uint8_t	 bytes[16];	/* the address masked to the configured prefix */
};

enum connlimit_result {
	CONNLIMIT_OK = 0,
	CONNLIMIT_GLOBAL,	/* max_connections reached */
	CONNLIMIT_LISTENER,	/* the listener's max_connections reached */
	CONNLIMIT_PER_IP,	/* max_connections_per_ip reached for this prefix */
	CONNLIMIT_RATE		/* max_connection_rate_per_ip reached for this prefix */
};

/* Count a new connection, or refuse it (then nothing is counted). */
enum connlimit_result connlimit_take(const struct config *cfg, struct listener_gen *lg,
	    const struct sockaddr *sa, struct connlimit_key *key);
/*
 * The per-IP part alone, for a connection counted at accept with a key of
 * family 0 (a PROXY protocol listener learns the client's address from
 * the header).  On CONNLIMIT_PER_IP key->family is 0: nothing to release.
 */
enum connlimit_result connlimit_take_ip(const struct config *cfg, const struct sockaddr *sa,
	    struct connlimit_key *key);
void	 connlimit_release(struct listener_gen *lg, const struct connlimit_key *key);
/*
 * The connection rate per prefix: a token bucket per prefix holding up to
 * max tokens, refilled at max per window_ms; each connection takes one.
 * The table has a fixed number of slots (no allocation); when it is full
 * the least recently used slot is reused.  1 = allowed, 0 = over the rate.
 * now_ms is a monotonic clock (a parameter so unit tests can drive it).
 */
int	 connlimit_rate_take(const struct connlimit_key *key, long max, long long window_ms,
	    uint64_t now_ms);
/* Prefixes with a rate slot in use (unit tests). */
size_t	 connlimit_rate_slots(void);
/* Forget every rate slot (unit tests). */
void	 connlimit_rate_clear(void);
/*
 * The key as text, "192.0.2.0" or "2001:db8::" (the masked prefix), for
 * tables keyed by client like auth_fail.c; "" when family is 0.
 */
void	 connlimit_key_text(const struct connlimit_key *key, char *buf, size_t len);
/* Open connections, all listeners. */
long	 connlimit_total(void);

#endif /* SLUICE_CONNLIMIT_H */
