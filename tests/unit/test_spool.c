/*
 * test_spool.c - unit tests for proxy/spool.c: memory up to the bound,
 * then an unlinked 0600 close-on-exec file; reads at every offset across
 * the boundary and the write-behind buffer; spool_add_to ranges from
 * memory and from the file, also after the spool is gone (the file
 * segment keeps its own descriptor) and through sendfile; write errors
 * (a missing directory, EFBIG from RLIMIT_FSIZE) that latch; reuse.
 */
#include "autoconf.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "spool.h"

/* cmocka compares byte by byte with bookkeeping: too slow for these loops. */
#define assert_bytes(a, b, n)	assert_true(memcmp((a), (b), (n)) == 0)

static char	 test_dir[PATH_MAX];	/* a fresh directory for the group */

static int	 group_setup(void **);
static int	 group_teardown(void **);
static unsigned char *pattern(size_t);
static void	 append_pieces(struct spool *, const unsigned char *, size_t, size_t);
static void	 assert_reads(struct spool *, const unsigned char *, size_t);
static void	 assert_add_to(struct spool *, const unsigned char *, size_t, off_t, size_t);
static size_t	 dir_entries(const char *);
static int	 find_spool_fd(void);

static int
group_setup(void **state)
{
	const char	*tmp = getenv("TMPDIR");

	snprintf(test_dir, sizeof(test_dir), "%s/test_spool.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	return mkdtemp(test_dir) == NULL ? -1 : 0;
}

static int
group_teardown(void **state)
{
	return rmdir(test_dir);
}

/* n bytes that differ from their neighbours, so an off-by-one shows. */
static unsigned char *
pattern(size_t n)
{
	unsigned char	*p = malloc(n + 1);
	size_t		 i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7 + i / 251);
	return p;
}

/* Append data in pieces of step bytes. */
static void
append_pieces(struct spool *spool, const unsigned char *data, size_t len, size_t step)
{
	size_t	 off, n;

	for (off = 0; off < len; off += n) {
		n = len - off < step ? len - off : step;
		assert_int_equal(spool_append(spool, data + off, n), 0);
	}
	assert_int_equal(spool_size(spool), len);
}

/* spool_read at every offset, short and long, matches data. */
static void
assert_reads(struct spool *spool, const unsigned char *data, size_t len)
{
	unsigned char	*buf = malloc(len + 16);
	size_t		 off, want;
	size_t		 lens[] = { 1, 2, 7, 100, len + 10 };
	size_t		 i;
	ssize_t		 r;

	assert_non_null(buf);
	for (off = 0; off <= len; off++) {
		/* Big spools: a sample of offsets (and all near the end), or this takes minutes. */
		if (len > 5000 && off % 13 != 0 && off + 300 < len)
			continue;
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			if (lens[i] > 100 && off % 97 != 0 && off + 300 < len)
				continue;
			want = len - off < lens[i] ? len - off : lens[i];
			r = spool_read(spool, (off_t)off, buf, lens[i]);
			assert_int_equal(r, (ssize_t)want);
			if (want > 0)
				assert_bytes(buf, data + off, want);
		}
	}
	assert_int_equal(spool_read(spool, (off_t)len + 5, buf, 10), 0);
	assert_int_equal(spool_read(spool, -1, buf, 10), -1);
	assert_int_equal(errno, EINVAL);
	free(buf);
}

/* spool_add_to(off, n) appends exactly data[off, off + n) to a new buffer. */
static void
assert_add_to(struct spool *spool, const unsigned char *data, size_t len, off_t off, size_t n)
{
	struct evbuffer	*out = evbuffer_new();

	assert_non_null(out);
	evbuffer_add(out, "<", 1);
	assert_int_equal(spool_add_to(spool, off, n, out), 0);
	assert_int_equal(evbuffer_get_length(out), n + 1);
	if (n > 0)
		assert_bytes(evbuffer_pullup(out, -1) + 1, data + off, n);
	evbuffer_free(out);
	(void)len;
}

static size_t
dir_entries(const char *path)
{
	DIR		*d = opendir(path);
	struct dirent	*e;
	size_t		 n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* The descriptor of the spool file: the one open under test_dir. */
static int
find_spool_fd(void)
{
	char	 link[64], target[PATH_MAX];
	ssize_t	 n;
	int	 fd, found = -1;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		if ((n = readlink(link, target, sizeof(target) - 1)) == -1)
			continue;
		target[n] = '\0';
		if (strncmp(target, test_dir, strlen(test_dir)) == 0) {
			assert_int_equal(found, -1);	/* exactly one */
			found = fd;
		}
	}
	return found;
}

static void
test_memory_only(void **state)
{
	struct spool	*spool = spool_new(100, test_dir);
	unsigned char	*data = pattern(100);

	assert_non_null(spool);
	assert_int_equal(spool_size(spool), 0);
	assert_int_equal(spool_append(spool, data, 0), 0);
	append_pieces(spool, data, 60, 60);
	assert_int_equal(spool_append(spool, data + 60, 40), 0);
	/* Exactly the bound stays in memory. */
	assert_int_equal(spool_size(spool), 100);
	assert_false(spool_on_disk(spool));
	assert_reads(spool, data, 100);
	assert_int_equal(dir_entries(test_dir), 0);
	spool_free(spool);
	free(data);
}

static void
test_boundary(void **state)
{
	struct spool	*spool = spool_new(100, test_dir);
	unsigned char	*data = pattern(101);

	append_pieces(spool, data, 100, 1);
	assert_false(spool_on_disk(spool));
	/* One byte past the bound moves everything. */
	assert_int_equal(spool_append(spool, data + 100, 1), 0);
	assert_true(spool_on_disk(spool));
	assert_reads(spool, data, 101);
	spool_free(spool);
	free(data);
}

/* Many sizes of appends over a small bound: file, write-behind buffer and the seam between. */
static void
test_reads_across(void **state)
{
	size_t		 steps[] = { 1, 3, 99, 100, 101, 5000, 20000, 70000 };
	size_t		 len = 70000, i;
	unsigned char	*data = pattern(len);
	struct spool	*spool;

	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		spool = spool_new(100, test_dir);
		append_pieces(spool, data, len, steps[i]);
		assert_true(spool_on_disk(spool));
		assert_reads(spool, data, len);
		spool_free(spool);
	}
	free(data);
}

static void
test_zero_limit(void **state)
{
	struct spool	*spool = spool_new(0, test_dir);

	assert_false(spool_on_disk(spool));
	assert_int_equal(spool_append(spool, "x", 1), 0);
	assert_true(spool_on_disk(spool));
	assert_add_to(spool, (const unsigned char *)"x", 1, 0, 1);
	spool_free(spool);
}

static void
check_add_to_ranges(size_t limit, size_t len, size_t step)
{
	unsigned char	*data = pattern(len);
	struct spool	*spool = spool_new(limit, test_dir);
	struct evbuffer	*out = evbuffer_new();
	size_t		 off, n;

	append_pieces(spool, data, len, step);
	assert_int_equal(spool_on_disk(spool), len > limit);
	for (off = 0; off <= len; off += 37)
		for (n = 0; off + n <= len; n += 53)
			assert_add_to(spool, data, len, (off_t)off, n);
	assert_add_to(spool, data, len, 0, len);
	assert_add_to(spool, data, len, (off_t)len - 1, 1);
	/* Out of range is refused, and nothing is added. */
	assert_int_equal(spool_add_to(spool, 0, len + 1, out), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(spool_add_to(spool, (off_t)len + 1, 0, out), -1);
	assert_int_equal(spool_add_to(spool, -1, 1, out), -1);
	assert_int_equal(evbuffer_get_length(out), 0);
	evbuffer_free(out);
	spool_free(spool);
	free(data);
}

static void
test_add_to(void **state)
{
	check_add_to_ranges(4096, 1000, 10);		/* memory */
	check_add_to_ranges(100, 1000, 10);		/* file, last bytes buffered */
	check_add_to_ranges(100, 40000, 3000);		/* file, past the buffer */
}

/* A spool that grows after add_to gets a segment that covers the new bytes. */
static void
test_add_to_after_growth(void **state)
{
	unsigned char	*data = pattern(3000);
	struct spool	*spool = spool_new(100, test_dir);
	struct evbuffer	*out = evbuffer_new();

	append_pieces(spool, data, 1000, 1000);
	assert_int_equal(spool_add_to(spool, 0, 1000, out), 0);
	assert_int_equal(spool_append(spool, data + 1000, 2000), 0);
	assert_int_equal(spool_add_to(spool, 1000, 2000, out), 0);
	assert_int_equal(spool_add_to(spool, 0, 3000, out), 0);
	assert_int_equal(evbuffer_get_length(out), 6000);
	assert_memory_equal(evbuffer_pullup(out, -1), data, 3000);
	assert_memory_equal(evbuffer_pullup(out, -1) + 3000, data, 3000);
	evbuffer_free(out);
	spool_free(spool);
	free(data);
}

/*
 * Bytes handed out by spool_add_to stay valid after spool_reset and
 * spool_free: memory is copied, the file segment holds its own descriptor
 * and is refcounted by the chains.
 */
static void
test_add_to_outlives_spool(void **state)
{
	unsigned char	*data = pattern(50000);
	struct spool	*spool;
	struct evbuffer	*out = evbuffer_new();
	size_t		 limit;

	for (limit = 0; limit <= 100000; limit += 100000) {
		spool = spool_new(limit, test_dir);
		append_pieces(spool, data, 50000, 4096);
		assert_int_equal(spool_add_to(spool, 10, 20000, out), 0);
		spool_reset(spool);
		append_pieces(spool, data + 1, 100, 100);	/* reuse must not disturb out */
		assert_int_equal(spool_add_to(spool, 0, 100, out), 0);
		spool_free(spool);
		assert_int_equal(evbuffer_get_length(out), 20100);
		assert_memory_equal(evbuffer_pullup(out, -1), data + 10, 20000);
		assert_memory_equal(evbuffer_pullup(out, -1) + 20000, data + 1, 100);
		evbuffer_drain(out, 20100);
	}
	/* The unlinked file is gone with its last reference. */
	assert_int_equal(find_spool_fd(), -1);
	evbuffer_free(out);
	free(data);
}

/* The sendfile path: an output buffer that drains to a socket, written after spool_free. */
static void
test_add_to_sendfile(void **state)
{
	unsigned char	*data = pattern(30000), *got = malloc(30000);
	struct spool	*spool = spool_new(10, test_dir);
	struct evbuffer	*out = evbuffer_new();
	int		 sv[2];
	size_t		 have = 0;
	ssize_t		 n;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	evbuffer_set_flags(out, EVBUFFER_FLAG_DRAINS_TO_FD);
	append_pieces(spool, data, 30000, 1000);
	assert_int_equal(spool_add_to(spool, 5, 29995, out), 0);
	spool_free(spool);
	/* The socket buffer takes it all, so the writes do not block. */
	while (evbuffer_get_length(out) > 0)
		assert_true(evbuffer_write(out, sv[0]) > 0);
	while (have < 29995 && (n = read(sv[1], got + have, 29995 - have)) > 0)
		have += (size_t)n;
	assert_int_equal(have, 29995);
	assert_memory_equal(got, data + 5, 29995);
	evbuffer_free(out);
	close(sv[0]);
	close(sv[1]);
	free(got);
	free(data);
}

/* The file is unlinked, private and not inherited. */
static void
test_file_properties(void **state)
{
	struct spool	*spool = spool_new(10, test_dir);
	struct stat	 st;
	int		 fd;

	assert_int_equal(spool_append(spool, "0123456789abc", 13), 0);
	assert_true(spool_on_disk(spool));
	assert_int_equal(dir_entries(test_dir), 0);
	fd = find_spool_fd();
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_nlink, 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	spool_free(spool);
	assert_int_equal(find_spool_fd(), -1);
}

static void
test_failing_dir(void **state)
{
	struct spool	*spool = spool_new(10, "/nonexistent/sluice-spool");
	unsigned char	 buf[16];

	assert_non_null(spool);
	assert_int_equal(spool_append(spool, "0123456789", 10), 0);
	errno = 0;
	assert_int_equal(spool_append(spool, "x", 1), -1);
	assert_int_equal(errno, ENOENT);
	/* Latched: even an append that would fit fails, with the same errno. */
	errno = 0;
	assert_int_equal(spool_append(spool, "", 0), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(spool_size(spool), 10);
	assert_false(spool_on_disk(spool));
	/* What was stored is still readable. */
	assert_int_equal(spool_read(spool, 0, buf, sizeof(buf)), 10);
	assert_memory_equal(buf, "0123456789", 10);
	/* Reset clears the failure. */
	spool_reset(spool);
	assert_int_equal(spool_size(spool), 0);
	assert_int_equal(spool_append(spool, "abc", 3), 0);
	assert_int_equal(spool_read(spool, 0, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "abc", 3);
	spool_free(spool);
}

/* A full disk, as the file size limit: EFBIG takes the same path as ENOSPC. */
static void
test_write_error_latches(void **state)
{
	struct rlimit	 old, lim;
	struct spool	*spool = spool_new(1000, test_dir);
	unsigned char	*data = pattern(200000);
	struct evbuffer	*out = evbuffer_new();
	size_t		 off;
	int		 r = 0, error = 0;
	void		 (*oldsig)(int);

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 65536;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (off = 0; off < 200000 && r == 0; off += 1000) {
		r = spool_append(spool, data + off, 1000);
		error = errno;
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);
	assert_int_equal(r, -1);
	assert_int_equal(error, EFBIG);
	assert_true(spool_size(spool) >= 65536 - 1000);
	assert_true(spool_size(spool) < 200000);
	errno = 0;
	assert_int_equal(spool_append(spool, data, 1), -1);
	assert_int_equal(errno, EFBIG);
	errno = 0;
	assert_int_equal(spool_add_to(spool, 0, 10, out), -1);
	assert_int_equal(errno, EFBIG);
	/* Stored bytes are still readable. */
	assert_reads(spool, data, spool_size(spool) < 70000 ? spool_size(spool) : 70000);
	evbuffer_free(out);
	spool_free(spool);
	free(data);
}

static void
test_reset_reuse(void **state)
{
	unsigned char	*data = pattern(5000);
	struct spool	*spool = spool_new(1000, test_dir);
	int		 round;

	for (round = 0; round < 3; round++) {
		append_pieces(spool, data, 5000, 700);
		assert_true(spool_on_disk(spool));
		assert_reads(spool, data, 5000);
		spool_reset(spool);
		assert_int_equal(spool_size(spool), 0);
		assert_false(spool_on_disk(spool));
		assert_int_equal(find_spool_fd(), -1);
		append_pieces(spool, data + 1, 900, 100);
		assert_false(spool_on_disk(spool));
		assert_reads(spool, data + 1, 900);
		assert_add_to(spool, data + 1, 900, 0, 900);
		spool_reset(spool);
	}
	spool_free(spool);
	spool_free(NULL);
	free(data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_only),
		cmocka_unit_test(test_boundary),
		cmocka_unit_test(test_reads_across),
		cmocka_unit_test(test_zero_limit),
		cmocka_unit_test(test_add_to),
		cmocka_unit_test(test_add_to_after_growth),
		cmocka_unit_test(test_add_to_outlives_spool),
		cmocka_unit_test(test_add_to_sendfile),
		cmocka_unit_test(test_file_properties),
		cmocka_unit_test(test_failing_dir),
		cmocka_unit_test(test_write_error_latches),
		cmocka_unit_test(test_reset_reuse),
	};

	return cmocka_run_group_tests_name("spool", tests, group_setup, group_teardown);
}
