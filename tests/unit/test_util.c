/*
 * test_util.c - unit tests for proxy/util.c (durations, sizes, socket
 * addresses, strings, allocation, time) and proxy/log.c (log_quote, level
 * and facility names, the line written to stderr).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "util.h"

static int	 saved_stderr = -1;	/* stderr while captured */
static int	 capture_fd = -1;	/* read end of the capture pipe */

static void	 capture_start(void);
static char	*capture_end(void);
static void	 assert_quoted(const char *, size_t, size_t, const char *);
static int	 rendering_complete(const char *, size_t);
static void	 assert_sockaddr(const char *, int, const char *, int);

/* Send stderr into a pipe; nothing may assert until capture_end. */
static void
capture_start(void)
{
	int	 p[2];

	assert_int_equal(pipe(p), 0);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	close(p[1]);
	capture_fd = p[0];
}

/* Restore stderr and return what was written (caller frees). */
static char *
capture_end(void)
{
	char	*out = malloc(65536);
	ssize_t	 r;
	size_t	 n = 0;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	assert_non_null(out);
	while (n < 65535 && (r = read(capture_fd, out + n, 65535 - n)) > 0)
		n += (size_t)r;
	close(capture_fd);
	out[n] = '\0';
	return out;
}

static void
assert_quoted(const char *s, size_t max, size_t size, const char *want)
{
	char	 buf[256];

	assert_true(size <= sizeof(buf));
	memset(buf, 'Z', sizeof(buf));
	log_quote(buf, size, s, max);
	if (strcmp(buf, want) != 0)
		fail_msg("log_quote(\"%s\", max %zu, size %zu) = [%s], want [%s]", s != NULL ?
		    s : "NULL", max, size, buf, want);
}

/* 1 if the n bytes at s are whole renderings: no escape cut in half. */
static int
rendering_complete(const char *s, size_t n)
{
	size_t	 i = 0;

	while (i < n) {
		if (s[i] != '\\') {
			i++;
			continue;
		}
		if (i + 1 < n && (s[i + 1] == '"' || s[i + 1] == '\\'))
			i += 2;
		else if (i + 3 < n && s[i + 1] == 'x')
			i += 4;
		else
			return 0;
	}
	return 1;
}

/* Parse s and format it back: family, host text and port. */
static void
assert_sockaddr(const char *s, int family, const char *host, int port)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = 0;
	char			 buf[128];
	int			 p = -1;

	if (sockaddr_parse(s, &ss, &len) != 0)
		fail_msg("sockaddr_parse(\"%s\") failed", s);
	assert_int_equal(ss.ss_family, family);
	switch (family) {
	case AF_INET:
		assert_int_equal(len, sizeof(struct sockaddr_in));
		break;
	case AF_INET6:
		assert_int_equal(len, sizeof(struct sockaddr_in6));
		break;
	default:
		assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen(s) - 5 + 1);
		break;
	}
	sockaddr_format((struct sockaddr *)&ss, buf, sizeof(buf), &p);
	assert_string_equal(buf, host);
	assert_int_equal(p, port);
	sockaddr_format((struct sockaddr *)&ss, buf, sizeof(buf), NULL);
	assert_string_equal(buf, host);
}

static void
test_parse_duration(void **state)
{
	static const struct {
		const char	*s;	/* input */
		int		 rv;	/* expected return */
		long long	 ms;	/* expected value */
	} cases[] = {
		{ "250ms", 0, 250 }, { "30s", 0, 30000 }, { "5m", 0, 300000 },
		{ "2h", 0, 7200000 }, { "1d", 0, 86400000 }, { "10", 0, 10000 },
		{ "0", 0, 0 }, { "0ms", 0, 0 }, { "007s", 0, 7000 },
		{ "9223372036854775807ms", 0, 9223372036854775807LL },
		{ "", -1, 0 }, { "s", -1, 0 }, { "ms", -1, 0 }, { "-5s", -1, 0 },
		{ "+5s", -1, 0 }, { " 5s", -1, 0 }, { "5s ", -1, 0 }, { "5 s", -1, 0 },
		{ "5x", -1, 0 }, { "5S", -1, 0 }, { "5sec", -1, 0 }, { "1.5s", -1, 0 },
		{ "5ms5", -1, 0 }, { "0x10", -1, 0 },
		{ "9223372036854775808ms", -1, 0 }, { "9223372036854775807", -1, 0 },
		{ "106751991167301d", -1, 0 }, { "99999999999999999999999", -1, 0 },
	};
	long long	 v;
	size_t		 i;

	for (i = 0; i < nitems(cases); i++) {
		v = -42;
		if (parse_duration_ms(cases[i].s, &v) != cases[i].rv)
			fail_msg("parse_duration_ms(\"%s\") != %d", cases[i].s, cases[i].rv);
		if (cases[i].rv == 0)
			assert_true(v == cases[i].ms);
		else
			assert_true(v == -42);
	}
	assert_int_equal(parse_duration_ms(NULL, &v), -1);
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char	*s;	/* input */
		int		 rv;	/* expected return */
		long long	 bytes;	/* expected value */
	} cases[] = {
		{ "512", 0, 512 }, { "0", 0, 0 }, { "64k", 0, 65536 }, { "64K", 0, 65536 },
		{ "10M", 0, 10485760 }, { "10m", 0, 10485760 }, { "1G", 0, 1073741824 },
		{ "1g", 0, 1073741824 }, { "8589934591G", 0, 8589934591LL * 1073741824 },
		{ "", -1, 0 }, { "k", -1, 0 }, { "-1", -1, 0 }, { "1T", -1, 0 },
		{ "10MB", -1, 0 }, { "10 M", -1, 0 }, { " 10", -1, 0 }, { "10k ", -1, 0 },
		{ "1.5M", -1, 0 }, { "8589934592G", -1, 0 },
		{ "9223372036854775808", -1, 0 },
	};
	long long	 v;
	size_t		 i;

	for (i = 0; i < nitems(cases); i++) {
		v = -42;
		if (parse_size(cases[i].s, &v) != cases[i].rv)
			fail_msg("parse_size(\"%s\") != %d", cases[i].s, cases[i].rv);
		if (cases[i].rv == 0)
			assert_true(v == cases[i].bytes);
		else
			assert_true(v == -42);
	}
	assert_int_equal(parse_size(NULL, &v), -1);
}

static void
test_sockaddr_good(void **state)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	char			 path[200];

	assert_sockaddr("192.0.2.7:25", AF_INET, "192.0.2.7", 25);
	assert_sockaddr("0.0.0.0:0", AF_INET, "0.0.0.0", 0);
	assert_sockaddr("255.255.255.255:65535", AF_INET, "255.255.255.255", 65535);
	assert_sockaddr("*:25", AF_INET, "0.0.0.0", 25);
	assert_sockaddr("[2001:db8::1]:587", AF_INET6, "2001:db8::1", 587);
	assert_sockaddr("[2001:DB8:0:0:0:0:0:1]:587", AF_INET6, "2001:db8::1", 587);
	assert_sockaddr("[::]:25", AF_INET6, "::", 25);
	assert_sockaddr("[::1]:10025", AF_INET6, "::1", 10025);
	/* A v4-mapped address stays IPv6 but prints as the IPv4 it carries. */
	assert_sockaddr("[::ffff:192.0.2.7]:25", AF_INET6, "192.0.2.7", 25);
	assert_sockaddr("unix:/run/sluice/ctl.sock", AF_UNIX, "unix:/run/sluice/ctl.sock", 0);

	assert_int_equal(sockaddr_parse("*:25", &ss, &len), 0);
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(sin->sin_port, htons(25));
	assert_int_equal(sockaddr_parse("[::]:25", &ss, &len), 0);
	assert_true(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
	assert_int_equal(sockaddr_parse("[::ffff:192.0.2.7]:25", &ss, &len), 0);
	assert_true(IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr));

	/* The longest unix path that fits sun_path with its NUL. */
	memset(path, 'p', sizeof(path));
	memcpy(path, "unix:/", 6);
	path[5 + sizeof(((struct sockaddr_un *)0)->sun_path) - 1] = '\0';
	assert_int_equal(sockaddr_parse(path, &ss, &len), 0);
	assert_int_equal(ss.ss_family, AF_UNIX);
}

static void
test_sockaddr_bad(void **state)
{
	static const char *const bad[] = {
		"", "25", ":25", "192.0.2.7", "192.0.2.7:", "192.0.2.7:65536",
		"192.0.2.7:-1", "192.0.2.7:+25", "192.0.2.7:25x", "192.0.2.7: 25",
		"192.0.2.7:25 ", " 192.0.2.7:25", "192.0.2.256:25", "192.0.2:25",
		"host.example:25", "localhost:25", "::1:25", "[::1]", "[::1]:", "[::1]25",
		"[::1:25", "[]:25", "[192.0.2.7]:25", "[fe80::1%eth0]:25", "[::1]:99999",
		"[::1]:25:25", "*:", "**:25", "[*]:25", "*", "unix:", "unix:relative/path",
		"unix", "UNIX:/x", "192.0.2.7:99999999999999999999999",
	};
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 big[1200];
	size_t			 i;

	for (i = 0; i < nitems(bad); i++)
		if (sockaddr_parse(bad[i], &ss, &len) != -1)
			fail_msg("sockaddr_parse(\"%s\") accepted", bad[i]);
	/* A unix path one byte too long for sun_path. */
	memset(big, 'p', sizeof(big));
	memcpy(big, "unix:/", 6);
	big[5 + sizeof(((struct sockaddr_un *)0)->sun_path)] = '\0';
	assert_int_equal(sockaddr_parse(big, &ss, &len), -1);
	/* Long hosts, bracketed or not. */
	memset(big, '1', sizeof(big));
	memcpy(big + sizeof(big) - 4, ":25", 4);
	assert_int_equal(sockaddr_parse(big, &ss, &len), -1);
	big[0] = '[';
	memcpy(big + sizeof(big) - 5, "]:25", 5);
	assert_int_equal(sockaddr_parse(big, &ss, &len), -1);
}

static void
test_sockaddr_format_edges(void **state)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_un	*sun;
	socklen_t		 len;
	char			 buf[256];
	int			 port = -1;

	/* Too small for the address: an empty string, not stale bytes. */
	assert_int_equal(sockaddr_parse("192.0.2.7:25", &ss, &len), 0);
	memset(buf, 'Z', sizeof(buf));
	sockaddr_format((struct sockaddr *)&ss, buf, 5, &port);
	assert_string_equal(buf, "");
	assert_int_equal(port, 25);
	assert_int_equal(sockaddr_parse("[2001:db8::1]:25", &ss, &len), 0);
	memset(buf, 'Z', sizeof(buf));
	sockaddr_format((struct sockaddr *)&ss, buf, 8, NULL);
	assert_string_equal(buf, "");

	/* A full sun_path without NUL is read no further than sun_path. */
	sun = malloc(sizeof(*sun));
	assert_non_null(sun);
	memset(sun, 'a', sizeof(*sun));
	sun->sun_family = AF_UNIX;
	sockaddr_format((struct sockaddr *)sun, buf, sizeof(buf), &port);
	assert_int_equal(strlen(buf), 5 + sizeof(sun->sun_path));
	assert_memory_equal(buf, "unix:aaaa", 9);
	assert_int_equal(port, 0);
	/* Cut to the buffer, still terminated. */
	sockaddr_format((struct sockaddr *)sun, buf, 10, NULL);
	assert_string_equal(buf, "unix:aaaa");
	free(sun);

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNSPEC;
	port = -1;
	sockaddr_format((struct sockaddr *)&ss, buf, sizeof(buf), &port);
	assert_string_equal(buf, "unknown");
	assert_int_equal(port, 0);
}

static void
test_strings_and_alloc(void **state)
{
	char	 buf[8], *s, *p;
	int	 i, *v;

	assert_int_equal(strlcpy_s(buf, "hello", sizeof(buf)), 5);
	assert_string_equal(buf, "hello");
	assert_int_equal(strlcpy_s(buf, "hello world", sizeof(buf)), 11);
	assert_string_equal(buf, "hello w");
	assert_int_equal(strlcpy_s(buf, "abc", 1), 3);
	assert_string_equal(buf, "");
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(strlcpy_s(buf, "abc", 0), 3);
	assert_int_equal(buf[0], 'Z');

	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	s = xstrdup("x y");
	assert_string_equal(s, "x y");
	free(s);
	assert_int_equal(xasprintf(&s, "%s=%d", "n", 42), 4);
	assert_string_equal(s, "n=42");
	free(s);

	v = xcalloc(16, sizeof(*v));
	for (i = 0; i < 16; i++)
		assert_int_equal(v[i], 0);
	for (i = 0; i < 16; i++)
		v[i] = i;
	v = xreallocarray(v, 1024, sizeof(*v));
	for (i = 0; i < 16; i++)
		assert_int_equal(v[i], i);
	free(v);
	p = xmalloc(0);
	assert_non_null(p);
	free(p);
}

static void
test_time_and_random(void **state)
{
	uint64_t	 a, b, us;

	a = monotonic_ms();
	us = monotonic_us();
	b = monotonic_ms();
	assert_true(a <= b);
	assert_true(us / 1000 >= a && us / 1000 <= b);
	assert_true(a > 0);
	/* Two 64-bit draws colliding would be a broken source, not luck. */
	assert_true(random_u64() != random_u64());
}

static void
test_log_quote(void **state)
{
	char	*heap;
	char	 buf[64];

	assert_quoted("abc", 256, 64, "abc");
	assert_quoted("", 256, 64, "\"\"");
	assert_quoted(NULL, 256, 64, "\"\"");
	assert_quoted("a b", 256, 64, "\"a b\"");
	assert_quoted("a=b", 256, 64, "\"a=b\"");
	assert_quoted("say \"hi\"", 256, 64, "\"say \\\"hi\\\"\"");
	assert_quoted("back\\slash", 256, 64, "\"back\\\\slash\"");
	assert_quoted("a\tb\r\n", 256, 64, "a\\x09b\\x0d\\x0a");
	assert_quoted("\x7f\x80\xff", 256, 64, "\\x7f\\x80\\xff");
	assert_quoted("a b\x01", 256, 64, "\"a b\\x01\"");
	assert_quoted("from=<a@b> x", 256, 64, "\"from=<a@b> x\"");
	/* Cut at max bytes of input, visibly. */
	assert_quoted("abcdef", 3, 64, "abc...");
	assert_quoted("abc", 3, 64, "abc");
	assert_quoted("a b c d", 3, 64, "\"a b...\"");
	assert_quoted("abc def", 3, 64, "abc...");
	assert_quoted("abc", 0, 64, "...");
	assert_quoted("", 0, 64, "\"\"");
	assert_quoted("ab\x01", 2, 64, "ab...");
	/* Cut by the buffer: still balanced, marked, and no half escape. */
	assert_quoted("hello world", 256, 10, "\"hell...\"");
	assert_quoted("hello", 256, 6, "hello");
	assert_quoted("hello!", 256, 6, "he...");
	assert_quoted("ab\x01" "cd", 256, 8, "ab...");
	assert_quoted("ab\x01" "cd", 256, 12, "ab\\x01cd");
	assert_quoted("a \"b\"", 256, 8, "\"a ...\"");
	assert_quoted("abc", 256, 1, "");

	memset(buf, 'Z', sizeof(buf));
	log_quote(buf, 0, "abc", 10);
	assert_int_equal(buf[0], 'Z');

	/* Not NUL-terminated past max: read at most max + 1 bytes. */
	heap = malloc(4);
	assert_non_null(heap);
	memcpy(heap, "abcd", 4);
	assert_string_equal(log_quote(buf, sizeof(buf), heap, 3), "abc...");
	free(heap);
}

/* Every buffer size: terminated, within size, balanced, escapes whole. */
static void
test_log_quote_sizes(void **state)
{
	static const char *const inputs[] = {
		"plain", "with space", "\x01\x02\x03\x04", "q\"u\\o=t e\x7f", "",
	};
	char	 buf[80];
	size_t	 i, size, n, body;

	for (i = 0; i < nitems(inputs); i++) {
		for (size = 1; size <= sizeof(buf); size++) {
			memset(buf, 'Z', sizeof(buf));
			log_quote(buf, size, inputs[i], 256);
			n = strlen(buf);
			assert_true(n < size);
			if (size < 6 || n == 0)
				continue;
			body = n;
			if (buf[0] == '"') {
				assert_int_equal(buf[n - 1], '"');
				body = n - 2;
			}
			if (body >= 3 && memcmp(buf + (buf[0] == '"') + body - 3, "...", 3) == 0)
				body -= 3;
			assert_true(rendering_complete(buf + (buf[0] == '"'), body));
		}
	}
}

static void
test_log_names(void **state)
{
	assert_int_equal(log_level_parse("debug"), LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("INFO"), LOG_LEVEL_INFO);
	assert_int_equal(log_level_parse("warning"), LOG_LEVEL_WARNING);
	assert_int_equal(log_level_parse("error"), LOG_LEVEL_ERROR);
	assert_int_equal(log_level_parse("warn"), -1);
	assert_int_equal(log_level_parse(""), -1);
	assert_int_equal(log_facility_parse("mail"), LOG_MAIL);
	assert_int_equal(log_facility_parse("daemon"), LOG_DAEMON);
	assert_int_equal(log_facility_parse("LOCAL7"), LOG_LOCAL7);
	assert_int_equal(log_facility_parse("local0"), LOG_LOCAL0);
	assert_int_equal(log_facility_parse("kern"), -1);
	assert_int_equal(log_facility_parse("local8"), -1);
}

static void
test_log_lines(void **state)
{
	char		*out, *big, *ident, pid[32];
	const char	*nl;

	log_init("sluice-test", 1, 0);
	log_set_level(LOG_LEVEL_INFO);
	assert_int_equal(log_get_level(), LOG_LEVEL_INFO);

	capture_start();
	log_debug("hidden %d", 1);
	out = capture_end();
	assert_string_equal(out, "");
	free(out);

	capture_start();
	log_info("start x=%d", 5);
	out = capture_end();
	assert_non_null(strstr(out, "Z sluice-test["));
	assert_non_null(strstr(out, "]: - start x=5\n"));
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
	free(out);

	capture_start();
	log_session(0x3f2a9c0e1b7d4a55ULL, LOG_LEVEL_WARNING, "reject code=%d", 550);
	errno = ENOENT;
	log_warn("open %s", "/x");
	log_warnx("plain");
	out = capture_end();
	assert_non_null(strstr(out, "]: 3f2a9c0e1b7d4a55 reject code=550\n"));
	assert_non_null(strstr(out, "]: - open /x: No such file or directory\n"));
	assert_non_null(strstr(out, "]: - plain\n"));
	free(out);

	/* An overlong message is cut to one line of at most 4095 bytes. */
	big = malloc(10000);
	assert_non_null(big);
	memset(big, 'm', 9999);
	big[9999] = '\0';
	capture_start();
	log_info("%s", big);
	out = capture_end();
	nl = strchr(out, '\n');
	assert_non_null(nl);
	assert_ptr_equal(nl, out + strlen(out) - 1);
	assert_true(strlen(out) <= 4095);
	free(out);

	/*
	 * So is an overlong prefix, without writing past the line: this
	 * ident makes the stderr prefix ("2024-01-01T00:00:00.000Z ident[pid]: ")
	 * one byte longer than log.c's 4096-byte line, so a write after it
	 * would land in AddressSanitizer's red zone.
	 */
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	ident = big;
	ident[4097 - 29 - strlen(pid)] = '\0';
	log_init(ident, 1, 0);
	capture_start();
	log_info("after");
	out = capture_end();
	log_init("sluice-test", 1, 0);
	assert_true(strlen(out) > 0 && strlen(out) <= 4095);
	assert_int_equal(out[strlen(out) - 1], '\n');
	free(out);
	free(big);

	log_set_level(LOG_LEVEL_ERROR);
	capture_start();
	log_warnx("below the level");
	out = capture_end();
	assert_string_equal(out, "");
	free(out);
	log_set_level(LOG_LEVEL_INFO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_sockaddr_good),
		cmocka_unit_test(test_sockaddr_bad),
		cmocka_unit_test(test_sockaddr_format_edges),
		cmocka_unit_test(test_strings_and_alloc),
		cmocka_unit_test(test_time_and_random),
		cmocka_unit_test(test_log_quote),
		cmocka_unit_test(test_log_quote_sizes),
		cmocka_unit_test(test_log_names),
		cmocka_unit_test(test_log_lines),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
