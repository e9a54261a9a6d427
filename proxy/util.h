/*
 * util.h - small helpers shared by every layer: allocation that dies on
 * exhaustion (an allocator failure at this size means the machine is
 * gone), bounded string copies, monotonic time, duration and size
 * parsing, socket addresses.
 */
#ifndef SLUICE_UTIL_H
#define SLUICE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

void	*xmalloc(size_t size);
void	*xcalloc(size_t n, size_t size);
void	*xreallocarray(void *p, size_t n, size_t size);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
int	 xasprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy with truncation, always NUL-terminates; returns strlen(src). */
size_t	 strlcpy_s(char *dst, const char *src, size_t size);

/* Milliseconds from CLOCK_MONOTONIC. */
uint64_t monotonic_ms(void);
/* Microseconds from CLOCK_MONOTONIC. */
uint64_t monotonic_us(void);

/*
 * "250ms", "30s", "5m", "2h", "1d", or a plain number of seconds, into
 * milliseconds.  Returns 0, or -1 when malformed or out of range.
 */
int	 parse_duration_ms(const char *s, long long *out);
/* "512", "64k", "10M", "1G" (powers of 1024) into bytes.  0 or -1. */
int	 parse_size(const char *s, long long *out);

/*
 * A listen or connect address: "a.b.c.d:port", "[v6]:port", "*:port"
 * (0.0.0.0; "[::]:port" is the IPv6 wildcard, bound IPV6_V6ONLY), or
 * "unix:/path".  Numeric only: no name lookups.  Fills ss and len.
 * Returns 0 or -1.
 */
int	 sockaddr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* "192.0.2.7" / "2001:db8::1" / "unix:/path" into buf; port separately. */
void	 sockaddr_format(const struct sockaddr *sa, char *buf, size_t size, int *port);

/* A random 64-bit value from getrandom(2), for session ids. */
uint64_t random_u64(void);

#endif /* SLUICE_UTIL_H */
