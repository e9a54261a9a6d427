/*
 * util.c - allocation, strings, time, parsing of durations, sizes and
 * socket addresses.  See util.h for the contracts.
 */
#include "autoconf.h"

#include <sys/random.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t size)
{
	void	*p;

	if ((p = malloc(size == 0 ? 1 : size)) == NULL)
		fatal("malloc %zu", size);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL)
		fatal("calloc %zu*%zu", n, size);
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	void	*q;

	if (size != 0 && n > SIZE_MAX / size)
		fatalx("xreallocarray: %zu*%zu overflows", n, size);
	if ((q = realloc(p, n * size == 0 ? 1 : n * size)) == NULL)
		fatal("realloc %zu*%zu", n, size);
	return q;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		fatal("strndup");
	return p;
}

int
xasprintf(char **out, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(out, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("vasprintf");
	return n;
}

size_t
strlcpy_s(char *dst, const char *src, size_t size)
{
	size_t	 len = strlen(src);

	if (size > 0) {
		size_t	 n = len < size - 1 ? len : size - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

uint64_t
monotonic_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
monotonic_ms(void)
{
	return monotonic_us() / 1000u;
}

/* Parse a non-negative decimal prefix; *end points after it. */
static int
parse_number(const char *s, long long *out, const char **end)
{
	long long	 v = 0;
	const char	*p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (LLONG_MAX - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	*out = v;
	*end = p;
	return 0;
}

static int
scale(long long v, long long mul, long long *out)
{
	if (mul != 0 && v > LLONG_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

int
parse_duration_ms(const char *s, long long *out)
{
	static const struct {
		const char	*suffix;
		long long	 ms;
	} units[] = {
		{ "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
		{ "h", 3600000 }, { "d", 86400000 },
	};
	const char	*end;
	long long	 v;
	size_t		 i;

	if (s == NULL || parse_number(s, &v, &end) == -1)
		return -1;
	for (i = 0; i < nitems(units); i++)
		if (strcmp(end, units[i].suffix) == 0)
			return scale(v, units[i].ms, out);
	return -1;
}

int
parse_size(const char *s, long long *out)
{
	const char	*end;
	long long	 v, mul;

	if (s == NULL || parse_number(s, &v, &end) == -1)
		return -1;
	switch (*end) {
	case '\0':
		mul = 1;
		break;
	case 'k': case 'K':
		mul = 1024;
		break;
	case 'm': case 'M':
		mul = 1024 * 1024;
		break;
	case 'g': case 'G':
		mul = 1024LL * 1024 * 1024;
		break;
	default:
		return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	return scale(v, mul, out);
}

static int
parse_port(const char *s, in_port_t *port)
{
	long long	 v;
	const char	*end;

	if (parse_number(s, &v, &end) == -1 || *end != '\0' || v > 65535)
		return -1;
	*port = htons((in_port_t)v);
	return 0;
}

static int
sockaddr_parse_unix(const char *path, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)ss;
	size_t			 n = strlen(path);

	if (n == 0 || n >= sizeof(sun->sun_path) || path[0] != '/')
		return -1;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int
sockaddr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[INET6_ADDRSTRLEN + 2];
	const char		*colon;
	size_t			 hlen;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(s, "unix:", 5) == 0)
		return sockaddr_parse_unix(s + 5, ss, len);
	if (s[0] == '[') {
		const char	*close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		sin6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 ||
		    parse_port(close + 2, &sin6->sin6_port) == -1)
			return -1;
		*len = sizeof(*sin6);
		return 0;
	}
	if ((colon = strrchr(s, ':')) == NULL)
		return -1;
	hlen = (size_t)(colon - s);
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	sin->sin_family = AF_INET;
	if (strcmp(host, "*") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -1;
	if (parse_port(colon + 1, &sin->sin_port) == -1)
		return -1;
	*len = sizeof(*sin);
	return 0;
}

void
sockaddr_format(const struct sockaddr *sa, char *buf, size_t size, int *port)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)sa;

	const char			*ok = buf;

	if (port != NULL)
		*port = 0;
	switch (sa->sa_family) {
	case AF_INET:
		ok = inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size);
		if (port != NULL)
			*port = ntohs(sin->sin_port);
		break;
	case AF_INET6:
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			ok = inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], buf,
			    (socklen_t)size);
		else
			ok = inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)size);
		if (port != NULL)
			*port = ntohs(sin6->sin6_port);
		break;
	case AF_UNIX:
		/* sun_path need not be NUL-terminated when it is full. */
		snprintf(buf, size, "unix:%.*s",
		    (int)sizeof(((const struct sockaddr_un *)sa)->sun_path),
		    ((const struct sockaddr_un *)sa)->sun_path);
		break;
	default:
		snprintf(buf, size, "unknown");
		break;
	}
	/* inet_ntop leaves buf untouched when it is too small. */
	if (ok == NULL && size > 0)
		buf[0] = '\0';
}

uint64_t
random_u64(void)
{
	uint64_t	 v;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
		fatal("getrandom");
	return v;
}
