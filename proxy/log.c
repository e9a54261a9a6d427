/*
 * log.c - one line per event to syslog or stderr.  See log.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX	4096

static const char	*log_ident = "sluice";
static int		 log_to_stderr = 1;
static enum log_level	 log_min_level = LOG_LEVEL_INFO;

static void	 log_emit(uint64_t, enum log_level, int, const char *, va_list)
		    __attribute__((format(printf, 4, 0)));
static size_t	 log_quote_byte(unsigned char, char [4]);

void
log_init(const char *ident, int to_stderr, int facility)
{
	log_ident = ident;
	log_to_stderr = to_stderr;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_level(enum log_level level)
{
	log_min_level = level;
}

enum log_level
log_get_level(void)
{
	return log_min_level;
}

int
log_level_parse(const char *name)
{
	static const char *const names[] = { "debug", "info", "warning", "error" };
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i]) == 0)
			return (int)i;
	return -1;
}

int
log_facility_parse(const char *name)
{
	static const struct {
		const char	*name;
		int		 facility;
	} facilities[] = {
		{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};
	size_t	 i;

	for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcasecmp(name, facilities[i].name) == 0)
			return facilities[i].facility;
	return -1;
}

static int
log_priority(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_DEBUG:
		return LOG_DEBUG;
	case LOG_LEVEL_INFO:
		return LOG_INFO;
	case LOG_LEVEL_WARNING:
		return LOG_WARNING;
	default:
		return LOG_ERR;
	}
}

/* Format "id text[: strerror]" and write it in one call. */
static void
log_emit(uint64_t sid, enum log_level level, int saved_errno, const char *fmt, va_list ap)
{
	char	 line[LOG_LINE_MAX];
	size_t	 n = 0;
	int	 r;

	if (level < log_min_level)
		return;
	if (log_to_stderr) {
		struct timespec	 ts;
		struct tm	 tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%ld]: ",
		    ts.tv_nsec / 1000000, log_ident, (long)getpid());
		n += r > 0 ? (size_t)r : 0;
	}
	/* snprintf returns what it wanted to write: never step past the end. */
	n = n < sizeof(line) ? n : sizeof(line) - 1;
	if (sid != 0)
		r = snprintf(line + n, sizeof(line) - n, "%016llx ", (unsigned long long)sid);
	else
		r = snprintf(line + n, sizeof(line) - n, "- ");
	n += r > 0 ? (size_t)r : 0;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		n += r > 0 ? (size_t)r : 0;
	}
	if (saved_errno != 0 && n < sizeof(line)) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved_errno));
		n += r > 0 ? (size_t)r : 0;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	if (log_to_stderr) {
		line[n++] = '\n';
		(void)!write(STDERR_FILENO, line, n);
	} else {
		line[n] = '\0';
		syslog(log_priority(level), "%s", line);
	}
}

void
log_vsession(uint64_t sid, enum log_level level, const char *fmt, va_list ap)
{
	log_emit(sid, level, 0, fmt, ap);
}

void
log_session(uint64_t sid, enum log_level level, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(sid, level, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(0, LOG_LEVEL_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(0, LOG_LEVEL_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_emit(0, LOG_LEVEL_WARNING, saved, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(0, LOG_LEVEL_WARNING, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_emit(0, LOG_LEVEL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_emit(0, LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

/* The log-safe rendering of one byte into r; returns its length (1, 2 or 4). */
static size_t
log_quote_byte(unsigned char c, char r[4])
{
	static const char hex[] = "0123456789abcdef";

	if (c < 0x20 || c >= 0x7f) {
		r[0] = '\\';
		r[1] = 'x';
		r[2] = hex[c >> 4];
		r[3] = hex[c & 15];
		return 4;
	}
	if (c == '"' || c == '\\') {
		r[0] = '\\';
		r[1] = (char)c;
		return 2;
	}
	r[0] = (char)c;
	return 1;
}

char *
log_quote(char *buf, size_t size, const char *s, size_t max)
{
	size_t	 n = 0, i, len, k, total;
	int	 quote = 0, cut;
	char	 r[4];

	if (size == 0)
		return buf;
	if (s == NULL)
		s = "";
	/* Read no more of s than max bytes, and one to see whether it goes on. */
	len = strnlen(s, max < SIZE_MAX ? max + 1 : max);
	cut = len > max;
	if (cut)
		len = max;
	for (i = 0; i < len; i++)
		if (s[i] == ' ' || s[i] == '"' || s[i] == '=' || s[i] == '\\')
			quote = 1;
	if (len == 0 && !cut)
		quote = 1;
	total = (size_t)quote * 2 + (cut ? 3 : 0);
	for (i = 0; i < len; i++)
		total += log_quote_byte((unsigned char)s[i], r);
	/*
	 * When it does not all fit, keep room for "..." and the closing
	 * quote, so a short buf still holds a balanced, visibly cut
	 * rendering and never half of an escape.
	 */
	if (total >= size)
		cut = 1;
#define PUT(c) do { if (n + 1 < size) buf[n++] = (c); } while (0)
	if (quote)
		PUT('"');
	for (i = 0; i < len; i++) {
		k = log_quote_byte((unsigned char)s[i], r);
		if (total >= size && n + k + (size_t)quote + 3 >= size)
			break;
		memcpy(buf + n, r, k);
		n += k;
	}
	if (cut) {
		PUT('.');
		PUT('.');
		PUT('.');
	}
	if (quote)
		PUT('"');
#undef PUT
	buf[n] = '\0';
	return buf;
}
