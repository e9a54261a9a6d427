/*
 * log.h - one line per event, session id first, then key=value pairs.
 *
 *	3f2a9c0e1b7d4a55 reject filter=spf phase=mail client=192.0.2.7 code=550
 *
 * Lines go to syslog (facility configurable) or to stderr.  Every function
 * is thread-safe and formats the whole line before one write.  The _warn
 * variants append ": strerror(errno)", the _warnx ones do not.  Never pass
 * AUTH data or passwords to these functions.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_ERROR
};

/* ident is not copied.  to_stderr: 1 = stderr, 0 = syslog with facility. */
void	 log_init(const char *ident, int to_stderr, int facility);
void	 log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "debug", "info", "warning", "error"; -1 when unknown. */
int	 log_level_parse(const char *name);
/* Parse a syslog facility name ("mail", "local0".."local7", "daemon"); -1 when unknown. */
int	 log_facility_parse(const char *name);

/* The general form: sid 0 means "no session" (the id field is "-"). */
void	 log_session(uint64_t sid, enum log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	 log_vsession(uint64_t sid, enum log_level level, const char *fmt, va_list ap)
	    __attribute__((format(printf, 3, 0)));

void	 log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	 fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Append a log-safe rendering of s to buf (NUL-terminated, size bytes):
 * quoted with "" when it contains a space, '"' or '=', with control and
 * non-ASCII bytes as \xNN, and cut at max bytes of input with "...".
 * Returns buf.
 */
char	*log_quote(char *buf, size_t size, const char *s, size_t max);

#endif /* SLUICE_LOG_H */
