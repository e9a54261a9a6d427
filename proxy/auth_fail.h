/*
 * auth_fail.h - failed SMTP AUTH attempts per client address, kept per
 * process in a bounded table (like connlimit.c): the count grows the
 * delay before each 535 and, past the listener's auth_max_failures within
 * auth_failure_window, AUTH answers 421 and the connection closes.
 *
 * Not shared across instances: a cluster multiplies the limit by its
 * size, which still stops a password-guessing loop on any one of them.
 * Thread-safe (one mutex).  Addresses are not copied by reference.
 */
#ifndef SLUICE_AUTH_FAIL_H
#define SLUICE_AUTH_FAIL_H

#include <stdint.h>

/* Entries kept; the least recently failed of a full neighbourhood is replaced. */
#define AUTH_FAIL_SLOTS		4096

/* Failures of addr in the window ending at now_ms (0 when none). */
long		 auth_fail_count(const char *addr, uint64_t now_ms, long long window_ms);
/* Count one more failure of addr; returns the count including it. */
long		 auth_fail_record(const char *addr, uint64_t now_ms, long long window_ms);
/*
 * The delay before the reply to failure number n (1, 2, ...): base_ms,
 * doubled per earlier failure, at most AUTH_FAIL_DELAY_MAX_MS (or base_ms
 * if that is larger).  0 when base_ms is 0.
 */
#define AUTH_FAIL_DELAY_MAX_MS	30000
long long	 auth_fail_delay(long long base_ms, long n);
/* Forget everything (tests, reload does not). */
void		 auth_fail_clear(void);

#endif /* SLUICE_AUTH_FAIL_H */
