/*
 * test_message.c - unit tests for proxy/message.c: the header index (dot
 * lines, folding, where the section ends, limits), reading fields and the
 * body, every kind of edit, prepending, body replacement, and the writer.
 *
 * Every message is checked with a memory spool and with a file spool, and
 * every write is done whole and in steps of 1..7 bytes, which must give
 * the same bytes.  An unchanged message must come out exactly as spooled
 * (DESIGN.md invariant 2), and as one spool range.
 */
#include "autoconf.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "message.h"
#include "spool.h"

#define L(s)	(s), (sizeof(s) - 1)

#define UNSTUFF	MESSAGE_WRITE_UNSTUFF
#define LF	MESSAGE_WRITE_LF

/* Spool bounds every message is tried with: all in memory, and mostly on disk. */
static const size_t mem_limits[] = { 1 << 20, 16 };

static struct message *msg_make(const char *, size_t, size_t);
static unsigned char *msg_write(struct message *, int, size_t, size_t *);
static void	 assert_write(struct message *, int, const char *, size_t);
static void	 assert_header(struct message *, size_t, const char *, const char *);
static char	*body_read_all(struct message *, size_t, size_t *);

static const char *const samples[] = {
	"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nbody\r\n..dot\r\n",
	"Subject: folded\r\n line two\r\n\tline three\r\nX: y\r\n\r\n",
	"..Dotted: header\r\nX: 1\r\n\r\n.\r\n",	/* (not a real end: fed directly) */
	"X-8bit: \xc3\xa9t\xc3\xa9 \xff\r\n\r\n\xfe\xfd body\r\n",
	"Only: headers\r\nNo: blank line\r\n",
	"\r\n",
	"\r\nbody only\r\n",
	"",
	"not a header line\r\nA: b\r\n\r\n",
	"A: b\r\n continued\r\nnot a header\r\nB: c\r\n",
	"A: b\r\nC: unterminated",
	"A: b\nC: bare lf\n\nbody\n",
	"Name : obsolete\r\n\r\nx\r\n",
};

static struct message *
msg_make(const char *wire, size_t len, size_t mem_limit)
{
	struct message_limits	 lim = { mem_limit, 100, 1000 };
	struct message		*m = message_new(&lim, "/tmp");
	size_t			 off, n;

	assert_non_null(m);
	/* Appended in uneven pieces, as the scanner's sink would. */
	for (off = 0; off < len; off += n) {
		n = len - off < 5 ? len - off : 5;
		assert_int_equal(message_append(m, wire + off, n), 0);
	}
	assert_int_equal(message_size(m), len);
	assert_int_equal(message_index(m), 0);
	return m;
}

/* The writer's whole output in steps of max bytes (0: no limit). */
static unsigned char *
msg_write(struct message *m, int flags, size_t max, size_t *len)
{
	struct message_writer	 w;
	struct evbuffer		*out = evbuffer_new();
	unsigned char		*p;
	size_t			 before;
	int			 r;

	assert_non_null(out);
	message_writer_init(&w, m, flags);
	do {
		before = evbuffer_get_length(out);
		r = message_writer_next(&w, out, max);
		assert_true(r == 0 || r == 1);
		/* A step adds at most max bytes, plus one held-back CR. */
		if (max != 0)
			assert_true(evbuffer_get_length(out) - before <= max + 1);
	} while (r == 1);
	*len = evbuffer_get_length(out);
	p = malloc(*len + 1);
	assert_non_null(p);
	assert_int_equal(evbuffer_remove(out, p, *len), (int)*len);
	evbuffer_free(out);
	return p;
}

/* Written whole and in every small step, the output is want. */
static void
assert_write(struct message *m, int flags, const char *want, size_t want_len)
{
	static const size_t	 maxes[] = { 0, 1, 2, 3, 4, 5, 6, 7, 64, 100000 };
	unsigned char		*got;
	size_t			 i, len;

	for (i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		got = msg_write(m, flags, maxes[i], &len);
		if (len != want_len || memcmp(got, want, len) != 0)
			fail_msg("flags %d max %zu: got %zu bytes \"%.*s\", want %zu \"%s\"",
			    flags, maxes[i], len, (int)len, got, want_len, want);
		free(got);
	}
}

static void
assert_header(struct message *m, size_t i, const char *name, const char *value)
{
	const char	*n, *v;

	assert_int_equal(message_header_get(m, i, &n, &v), 0);
	assert_string_equal(n, name);
	assert_string_equal(v, value);
}

static char *
body_read_all(struct message *m, size_t cap, size_t *len)
{
	struct message_cursor	 c;
	unsigned char		*buf = malloc(cap);
	char			*all = malloc(message_size(m) + 1);
	ssize_t			 n;

	assert_true(buf != NULL && all != NULL);
	*len = 0;
	message_body_cursor(m, &c);
	while ((n = message_body_read(m, &c, buf, cap)) > 0) {
		assert_true((size_t)n <= cap);
		memcpy(all + *len, buf, (size_t)n);
		*len += (size_t)n;
	}
	assert_int_equal(n, 0);
	all[*len] = '\0';
	free(buf);
	return all;
}

/* Unchanged = byte for byte what was spooled, from memory and from a file. */
static void
test_round_trip(void **state)
{
	struct message	*m;
	size_t		 i, j;

	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		for (j = 0; j < 2; j++) {
			m = msg_make(samples[i], strlen(samples[i]), mem_limits[j]);
			assert_int_equal(spool_on_disk(message_spool(m)),
			    strlen(samples[i]) > mem_limits[j]);
			assert_write(m, 0, samples[i], strlen(samples[i]));
			message_free(m);
		}
	}
}

/* An unchanged file-spooled message is one segment; an added field costs two more ranges. */
static void
test_ranges(void **state)
{
	static const char	 wire[] = "A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n";
	struct message		*m = msg_make(L(wire), 4);
	struct message_writer	 w;
	struct evbuffer		*out = evbuffer_new();

	assert_true(spool_on_disk(message_spool(m)));
	message_writer_init(&w, m, 0);
	assert_int_equal(message_writer_next(&w, out, 0), 0);
	assert_int_equal(evbuffer_peek(out, -1, NULL, NULL, 0), 1);
	evbuffer_drain(out, evbuffer_get_length(out));
	assert_int_equal(message_header_add(m, "D", "4"), 0);
	message_writer_init(&w, m, 0);
	assert_int_equal(message_writer_next(&w, out, 0), 0);
	assert_int_equal(evbuffer_peek(out, -1, NULL, NULL, 0), 3);
	assert_int_equal(evbuffer_get_length(out), sizeof(wire) - 1 + 6);
	evbuffer_free(out);
	message_free(m);
}

static void
test_index_fields(void **state)
{
	struct message	*m;
	size_t		 j;

	for (j = 0; j < 2; j++) {
		m = msg_make(samples[0], strlen(samples[0]), mem_limits[j]);
		assert_int_equal(message_header_count(m), 3);
		assert_header(m, 0, "From", "a@example.com");
		assert_header(m, 1, "To", "b@example.com");
		assert_header(m, 2, "Subject", "hi");
		assert_int_equal(message_flags(m), 0);
		assert_int_equal(message_header_get(m, 3, &(const char *){ NULL },
		    &(const char *){ NULL }), -1);
		assert_int_equal(errno, EINVAL);
		message_free(m);

		m = msg_make(samples[1], strlen(samples[1]), mem_limits[j]);
		assert_int_equal(message_header_count(m), 2);
		assert_header(m, 0, "Subject", "folded\r\n line two\r\n\tline three");
		assert_header(m, 1, "X", "y");
		message_free(m);

		/* Dot-stuffing undone: "..Dotted" is the name ".Dotted". */
		m = msg_make(samples[2], strlen(samples[2]), mem_limits[j]);
		assert_int_equal(message_header_count(m), 2);
		assert_header(m, 0, ".Dotted", "header");
		message_free(m);

		m = msg_make(samples[3], strlen(samples[3]), mem_limits[j]);
		assert_int_equal(message_header_count(m), 1);
		assert_header(m, 0, "X-8bit", "\xc3\xa9t\xc3\xa9 \xff");
		message_free(m);
	}
}

static void
test_index_values(void **state)
{
	struct message	*m = msg_make(L("A:x\r\nB:  two spaces\r\nC:\r\nD: \r\n"
	    "E:\tt\r\nF: a:b\r\n\r\n"), 1 << 20);

	assert_int_equal(message_header_count(m), 6);
	assert_header(m, 0, "A", "x");
	assert_header(m, 1, "B", " two spaces");
	assert_header(m, 2, "C", "");
	assert_header(m, 3, "D", "");
	assert_header(m, 4, "E", "\tt");
	assert_header(m, 5, "F", "a:b");
	message_free(m);
	/* ".X" with a single stuffing dot reads as "X". */
	m = msg_make(L(".X: v\r\n\r\n"), 1 << 20);
	assert_header(m, 0, "X", "v");
	message_free(m);
}

/* Where the header section ends, seen through the count and the body. */
static void
test_index_end(void **state)
{
	static const struct {
		const char	*wire;
		size_t		 count;
		const char	*body;
	} cases[] = {
		{ "Only: headers\r\nNo: blank line\r\n", 2, "" },
		{ "\r\n", 0, "" },
		{ "\r\nbody only\r\n", 0, "body only\r\n" },
		{ "", 0, "" },
		{ "not a header line\r\nA: b\r\n\r\n", 0, "not a header line\r\nA: b\r\n\r\n" },
		{ "A: b\r\n continued\r\nnot a header\r\nB: c\r\n", 1,
		    "not a header\r\nB: c\r\n" },
		{ " leading continuation\r\nA: b\r\n\r\n", 0,
		    " leading continuation\r\nA: b\r\n\r\n" },
		{ "A: b\r\n\xc3\xa9: 8-bit name\r\n\r\n", 1, "\xc3\xa9: 8-bit name\r\n\r\n" },
		{ "A: b\r\nC: unterminated", 1, "C: unterminated" },
		{ "A: b\r\n\r\n\r\nC: d\r\n", 1, "\r\nC: d\r\n" },
		{ "A: b\r\n\rx\r\n", 1, "\rx\r\n" },
		{ "A: b\n\nbody\n", 1, "body\n" },
		{ "Name : obsolete\r\n\r\nx\r\n", 1, "x\r\n" },
		{ "A b: c\r\n\r\n", 0, "A b: c\r\n\r\n" },
		{ ":no name\r\n\r\n", 0, ":no name\r\n\r\n" },
		{ "A: b\r\n.\r\nbody\r\n", 1, "body\r\n" },
	};
	struct message	*m;
	size_t		 i, j, len;
	char		*body;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (j = 0; j < 2; j++) {
			m = msg_make(cases[i].wire, strlen(cases[i].wire), mem_limits[j]);
			if (message_header_count(m) != cases[i].count)
				fail_msg("case %zu: %zu headers", i, message_header_count(m));
			body = body_read_all(m, 3, &len);
			assert_string_equal(body, cases[i].body);
			free(body);
			assert_write(m, 0, cases[i].wire, strlen(cases[i].wire));
			message_free(m);
		}
	}
}

static void
test_limit_count(void **state)
{
	struct message_limits	 lim = { 1 << 20, 3, 20 };
	struct message		*m;
	static const char	 many[] = "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\nbody\r\n";
	static const char	 three[] = "A: 1\r\nB: 2\r\nC: 3\r\n\r\nD: 4\r\n";

	m = message_new(&lim, "/tmp");
	assert_int_equal(message_append(m, L(many)), 0);
	assert_int_equal(message_index(m), 0);
	assert_int_equal(message_flags(m), MESSAGE_TOO_MANY_HEADERS);
	assert_int_equal(message_header_count(m), 3);
	assert_write(m, 0, L(many));
	message_free(m);

	m = message_new(&lim, "/tmp");
	assert_int_equal(message_append(m, L(three)), 0);
	assert_int_equal(message_index(m), 0);
	assert_int_equal(message_flags(m), 0);
	assert_int_equal(message_header_count(m), 3);
	message_free(m);
}

static void
test_limit_size(void **state)
{
	struct message_limits	 lim = { 1 << 20, 100, 20 };
	struct message		*m;
	/* The second field is 20 bytes, then 21. */
	static const char	 fit[] = "A: 1\r\nExactly-20: 123456\r\n\r\n";
	static const char	 big[] = "A: 1\r\nExactly-21: 1234567\r\n\r\n";
	static const char	 folded[] = "A: 1\r\nF: 123456789\r\n 12345\r\n\r\n";
	static const char	 longname[] = "A: 1\r\nNoColonNoColonNoColon\r\n\r\n";
	char			*body;
	size_t			 len;

	m = message_new(&lim, "/tmp");
	assert_int_equal(message_append(m, L(fit)), 0);
	assert_int_equal(message_index(m), 0);
	assert_int_equal(message_flags(m), 0);
	assert_int_equal(message_header_count(m), 2);
	message_free(m);

	m = message_new(&lim, "/tmp");
	assert_int_equal(message_append(m, L(big)), 0);
	assert_int_equal(message_index(m), 0);
	assert_int_equal(message_flags(m), MESSAGE_HEADER_TOO_BIG);
	assert_int_equal(message_header_count(m), 1);
	assert_write(m, 0, L(big));
	message_free(m);

	/* The whole big field, not just its last line, falls out of the header section. */
	m = message_new(&lim, "/tmp");
	assert_int_equal(message_append(m, L(folded)), 0);
	assert_int_equal(message_index(m), 0);
	assert_int_equal(message_flags(m), MESSAGE_HEADER_TOO_BIG);
	assert_int_equal(message_header_count(m), 1);
	body = body_read_all(m, 64, &len);
	assert_string_equal(body, "F: 123456789\r\n 12345\r\n\r\n");
	free(body);
	message_free(m);

	m = message_new(&lim, "/tmp");
	assert_int_equal(message_append(m, L(longname)), 0);
	assert_int_equal(message_index(m), 0);
	assert_int_equal(message_flags(m), MESSAGE_HEADER_TOO_BIG);
	message_free(m);

	/* A line that passes the limit before any colon could be a field: flagged. */
	m = message_new(&lim, "/tmp");
	assert_int_equal(message_append(m, L("A: 1\r\nXXXXXXXXXXXXXXXXXXXX\r\n")), 0);
	assert_int_equal(message_index(m), 0);
	assert_int_equal(message_flags(m), MESSAGE_HEADER_TOO_BIG);
	message_free(m);
	/* A shorter line without a colon just ends the header section. */
	m = message_new(&lim, "/tmp");
	assert_int_equal(message_append(m, L("A: 1\r\nXXXXXXXXXXXXXXXXXX\r\n")), 0);
	assert_int_equal(message_index(m), 0);
	assert_int_equal(message_flags(m), 0);
	assert_int_equal(message_header_count(m), 1);
	message_free(m);
}

static void
test_add_insert(void **state)
{
	static const char	 wire[] = "A: 1\r\nB: 2\r\n\r\nbody\r\n";
	struct message		*m;
	size_t			 j;

	for (j = 0; j < 2; j++) {
		m = msg_make(L(wire), mem_limits[j]);
		assert_int_equal(message_header_add(m, "X-End", "e"), 0);
		assert_write(m, 0, L("A: 1\r\nB: 2\r\nX-End: e\r\n\r\nbody\r\n"));
		assert_int_equal(message_header_insert(m, 0, "X-Top", "t"), 0);
		assert_int_equal(message_header_insert(m, 2, "X-Mid", "m"), 0);
		assert_int_equal(message_header_insert(m, message_header_count(m), "X-Last",
		    "l"), 0);
		assert_write(m, 0, L("X-Top: t\r\nA: 1\r\nX-Mid: m\r\nB: 2\r\nX-End: e\r\n"
		    "X-Last: l\r\n\r\nbody\r\n"));
		assert_int_equal(message_header_count(m), 6);
		assert_header(m, 0, "X-Top", "t");
		assert_header(m, 2, "X-Mid", "m");
		assert_header(m, 3, "B", "2");
		assert_int_equal(message_header_insert(m, 7, "X", "y"), -1);
		assert_int_equal(errno, EINVAL);
		message_free(m);
	}
	/* No blank line: added fields still end the header section. */
	m = msg_make(L("A: 1\r\n"), 1 << 20);
	assert_int_equal(message_header_add(m, "B", "2"), 0);
	assert_write(m, 0, L("A: 1\r\nB: 2\r\n"));
	message_free(m);
	/* Empty message. */
	m = msg_make(L(""), 1 << 20);
	assert_int_equal(message_header_insert(m, 0, "B", "2"), 0);
	assert_write(m, 0, L("B: 2\r\n"));
	message_free(m);
}

static void
test_change_delete(void **state)
{
	static const char	 wire[] = "Received: r1\r\nX-A: 1\r\nx-a: 2\r\nX-B: b\r\n"
	    "X-A: 3\r\n\r\nbody\r\n";
	struct message		*m;
	size_t			 j;

	for (j = 0; j < 2; j++) {
		m = msg_make(L(wire), mem_limits[j]);
		/* The nth occurrence, names without case. */
		assert_int_equal(message_header_change(m, "x-A", 2, "two"), 0);
		assert_write(m, 0, L("Received: r1\r\nX-A: 1\r\nx-A: two\r\nX-B: b\r\n"
		    "X-A: 3\r\n\r\nbody\r\n"));
		assert_int_equal(message_header_change(m, "X-A", 3, NULL), 0);	/* last */
		assert_int_equal(message_header_change(m, "Received", 1, NULL), 0); /* first */
		assert_write(m, 0, L("X-A: 1\r\nx-A: two\r\nX-B: b\r\n\r\nbody\r\n"));
		/* Counting skips deleted fields. */
		assert_int_equal(message_header_change(m, "X-A", 3, "no"), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(message_header_change(m, "X-A", 0, "no"), -1);
		assert_int_equal(message_header_change(m, "X-None", 1, NULL), -1);
		assert_int_equal(message_header_change(m, "X-A", 1, NULL), 0);
		assert_header(m, 0, "x-A", "two");
		assert_header(m, 1, "X-B", "b");
		/* A new field can be changed and deleted like any other. */
		assert_int_equal(message_header_add(m, "New", "n"), 0);
		assert_int_equal(message_header_change(m, "new", 1, "n2"), 0);
		assert_header(m, 2, "new", "n2");
		assert_int_equal(message_header_change(m, "NEW", 1, NULL), 0);
		assert_int_equal(message_header_count(m), 2);
		assert_write(m, 0, L("x-A: two\r\nX-B: b\r\n\r\nbody\r\n"));
		message_free(m);
	}
	/* The only field. */
	m = msg_make(L("Only: one\r\n\r\nbody\r\n"), 1 << 20);
	assert_int_equal(message_header_change(m, "only", 1, NULL), 0);
	assert_int_equal(message_header_count(m), 0);
	assert_write(m, 0, L("\r\nbody\r\n"));
	message_free(m);
	/* Folded and dotted originals go whole. */
	m = msg_make(L("..D: 1\r\nF: a\r\n b\r\nG: g\r\n\r\n"), 1 << 20);
	assert_int_equal(message_header_change(m, "F", 1, NULL), 0);
	assert_write(m, 0, L("..D: 1\r\nG: g\r\n\r\n"));
	assert_int_equal(message_header_change(m, ".d", 1, "2"), 0);
	assert_write(m, 0, L("..d: 2\r\nG: g\r\n\r\n"));
	assert_write(m, UNSTUFF, L(".d: 2\r\nG: g\r\n\r\n"));
	message_free(m);
}

static void
test_edit_validation(void **state)
{
	static const char *const bad_names[] = { "", "a b", "a:b", "a\tb", "\xc3\xa9", "a\r" };
	static const char *const bad_values[] = { "a\nb", "a\rb", "a\r", "a\n", "a\r\n",
	    "a\n \nb", "a\n \t", "a\r\n \r\n b", "\n" };
	struct message	*m = msg_make(L("A: 1\r\n\r\n"), 1 << 20);
	size_t		 i;

	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		errno = 0;
		assert_int_equal(message_header_add(m, bad_names[i], "v"), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(message_header_change(m, bad_names[i], 1, NULL), -1);
	}
	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		errno = 0;
		assert_int_equal(message_header_add(m, "X", bad_values[i]), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(message_header_change(m, "A", 1, bad_values[i]), -1);
	}
	assert_int_equal(message_header_add(m, "X", NULL), -1);
	assert_int_equal(message_header_count(m), 1);
	/* Folding: LF becomes CRLF, CRLF stays; 8-bit is fine. */
	assert_int_equal(message_header_add(m, "F", "a\n\tb\r\n c \xc3\xa9"), 0);
	assert_int_equal(message_header_add(m, "E", ""), 0);
	assert_int_equal(message_header_add(m, "~!#$%&'*+-.^_`|", "x"), 0);
	assert_write(m, 0, L("A: 1\r\nF: a\r\n\tb\r\n c \xc3\xa9\r\nE: \r\n"
	    "~!#$%&'*+-.^_`|: x\r\n\r\n"));
	assert_header(m, 1, "F", "a\r\n\tb\r\n c \xc3\xa9");
	assert_header(m, 2, "E", "");
	message_free(m);
}

static void
test_prepend(void **state)
{
	static const char	 wire[] = "A: 1\r\n\r\n.. body\r\n";
	struct message		*m;
	size_t			 j;

	for (j = 0; j < 2; j++) {
		m = msg_make(L(wire), mem_limits[j]);
		assert_int_equal(message_prepend(m, L("Received: two\r\n\tmore\r\n")), 0);
		assert_write(m, 0, L("Received: two\r\n\tmore\r\nA: 1\r\n\r\n.. body\r\n"));
		/* Each call goes first, and it is not a header of the view. */
		assert_int_equal(message_prepend(m, L("Received: one\r\n")), 0);
		assert_int_equal(message_header_count(m), 1);
		assert_int_equal(message_header_insert(m, 0, "Top", "t"), 0);
		assert_write(m, 0, L("Received: one\r\nReceived: two\r\n\tmore\r\n"
		    "Top: t\r\nA: 1\r\n\r\n.. body\r\n"));
		message_free(m);
	}
	m = msg_make(L(wire), 1 << 20);
	assert_int_equal(message_prepend(m, L("X: no line end")), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(message_prepend(m, L("X: a\nY: b\r\n")), -1);
	assert_int_equal(message_prepend(m, L("X: a\rY: b\r\n")), -1);
	assert_int_equal(message_prepend(m, L("X: a\r\n.\r\nMAIL FROM:<>\r\n")), -1);
	assert_int_equal(message_prepend(m, L(".\r\n")), -1);
	assert_int_equal(message_prepend(m, L("")), -1);
	assert_int_equal(message_prepend(m, L("..X: stuffed\r\n")), 0);
	assert_write(m, 0, L("..X: stuffed\r\nA: 1\r\n\r\n.. body\r\n"));
	message_free(m);
}

static void
test_body_replace(void **state)
{
	struct message	*m;
	size_t		 j, len;
	char		*body;

	for (j = 0; j < 2; j++) {
		m = msg_make(L("A: 1\r\n\r\nold\r\n..old dot\r\n"), mem_limits[j]);
		assert_false(message_body_replaced(m));
		assert_int_equal(message_body_replace(m, (const unsigned char *)"new\r\n.dot\r\n",
		    11), 0);
		assert_true(message_body_replaced(m));
		assert_write(m, 0, L("A: 1\r\n\r\nnew\r\n..dot\r\n"));
		/* Later calls append; the original body is still what hooks read. */
		assert_int_equal(message_body_replace(m, (const unsigned char *)".", 1), 0);
		assert_write(m, 0, L("A: 1\r\n\r\nnew\r\n..dot\r\n..\r\n"));
		assert_write(m, UNSTUFF, L("A: 1\r\n\r\nnew\r\n.dot\r\n.\r\n"));
		assert_write(m, UNSTUFF | LF, L("A: 1\n\nnew\n.dot\n.\n"));
		body = body_read_all(m, 5, &len);
		assert_string_equal(body, "old\r\n.old dot\r\n");
		free(body);
		/* With edits too. */
		assert_int_equal(message_header_add(m, "B", "2"), 0);
		assert_write(m, 0, L("A: 1\r\nB: 2\r\n\r\nnew\r\n..dot\r\n..\r\n"));
		message_free(m);
	}
}

static void
test_body_replace_shapes(void **state)
{
	static const struct {
		const char	*wire;
		const char	*parts[3];	/* replacement, in calls */
		const char	*want;
	} cases[] = {
		/* No separator in the original: exactly one empty line is written. */
		{ "A: 1\r\n", { "x\r\n" }, "A: 1\r\n\r\nx\r\n" },
		{ "A: 1\r\nnot header\r\n", { "x\r\n" }, "A: 1\r\n\r\nx\r\n" },
		{ "A: 1\r\n\r\n\r\nbody\r\n", { "x\r\n" }, "A: 1\r\n\r\nx\r\n" },
		{ "", { "x\r\n" }, "\r\nx\r\n" },
		{ "\r\nold\r\n", { "" }, "\r\n" },
		{ "A: 1\r\n\r\nold\r\n", { "" }, "A: 1\r\n\r\n" },
		/* A missing last line end is added. */
		{ "A: 1\r\n\r\n", { "no end" }, "A: 1\r\n\r\nno end\r\n" },
		/* Bare CR and LF become CRLF, also across calls. */
		{ "A: 1\r\n\r\n", { "a\nb\rc\r\n" }, "A: 1\r\n\r\na\r\nb\r\nc\r\n" },
		{ "A: 1\r\n\r\n", { "a\r", "\nb\r", "c" }, "A: 1\r\n\r\na\r\nb\r\nc\r\n" },
		{ "A: 1\r\n\r\n", { "a\r" }, "A: 1\r\n\r\na\r\n" },
		/* Nothing a filter passes can end the message early. */
		{ "A: 1\r\n\r\n", { "x\n.\nMAIL FROM:<a@b>\n" },
		    "A: 1\r\n\r\nx\r\n..\r\nMAIL FROM:<a@b>\r\n" },
		{ "A: 1\r\n\r\n", { "x\r\n", ".", "\r\n" }, "A: 1\r\n\r\nx\r\n..\r\n" },
		{ "A: 1\r\n\r\n", { ".", ".", "." }, "A: 1\r\n\r\n....\r\n" },
	};
	struct message	*m;
	size_t		 i, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		m = msg_make(cases[i].wire, strlen(cases[i].wire), 1 << 20);
		for (k = 0; k < 3 && cases[i].parts[k] != NULL; k++)
			assert_int_equal(message_body_replace(m,
			    (const unsigned char *)cases[i].parts[k],
			    strlen(cases[i].parts[k])), 0);
		assert_write(m, 0, cases[i].want, strlen(cases[i].want));
		message_free(m);
	}
}

/* The body reader undoes stuffing at any buffer size, also a buffer of one byte. */
static void
test_body_cursor(void **state)
{
	static const char	 wire[] = "A: 1\r\n\r\n..\r\n...\r\nx.y\r\n.z\r\n\r\n..";
	static const char	 want[] = ".\r\n..\r\nx.y\r\nz\r\n\r\n.";
	struct message		*m;
	size_t			 cap, j, len;
	char			*body;

	for (j = 0; j < 2; j++) {
		m = msg_make(L(wire), mem_limits[j]);
		for (cap = 1; cap <= 40; cap++) {
			body = body_read_all(m, cap, &len);
			assert_int_equal(len, sizeof(want) - 1);
			assert_memory_equal(body, want, len);
			free(body);
		}
		message_free(m);
	}
}

static void
test_write_flags(void **state)
{
	static const char	 wire[] = "..D: 1\r\nA: 1\r\n\r\n..x\r\n.\r\ny\r\r\n\r\n..\r\n";
	struct message		*m;
	size_t			 j;

	for (j = 0; j < 2; j++) {
		m = msg_make(L(wire), mem_limits[j]);
		assert_write(m, UNSTUFF, L(".D: 1\r\nA: 1\r\n\r\n.x\r\n\r\ny\r\r\n\r\n.\r\n"));
		assert_write(m, LF, L("..D: 1\nA: 1\n\n..x\n.\ny\r\n\n..\n"));
		assert_write(m, UNSTUFF | LF, L(".D: 1\nA: 1\n\n.x\n\ny\r\n\n.\n"));
		assert_int_equal(message_prepend(m, L("P: p\r\n")), 0);
		assert_int_equal(message_header_add(m, ".N", "n\n\tm"), 0);
		assert_write(m, UNSTUFF | LF,
		    L("P: p\n.D: 1\nA: 1\n.N: n\n\tm\n\n.x\n\ny\r\n\n.\n"));
		assert_write(m, 0, L("P: p\r\n..D: 1\r\nA: 1\r\n..N: n\r\n\tm\r\n\r\n..x\r\n.\r\n"
		    "y\r\r\n\r\n..\r\n"));
		message_free(m);
	}
	/* A CR that ends the message is kept in LF mode. */
	m = msg_make(L("A: 1\r\n\r\nx\r"), 1 << 20);
	assert_write(m, LF, L("A: 1\n\nx\r"));
	message_free(m);
}

/* message_index again forgets edits; a spool that fails reading is reported. */
static void
test_reindex(void **state)
{
	struct message	*m = msg_make(L("A: 1\r\nB: 2\r\n\r\n"), 1 << 20);

	assert_int_equal(message_header_change(m, "A", 1, NULL), 0);
	assert_int_equal(message_header_count(m), 1);
	assert_int_equal(message_index(m), 0);
	assert_int_equal(message_header_count(m), 2);
	assert_write(m, 0, L("A: 1\r\nB: 2\r\n\r\n"));
	message_free(m);
}

/* Edits before message_index index first. */
static void
test_lazy_index(void **state)
{
	struct message_limits	 lim = { 1 << 20, 100, 1000 };
	struct message		*m = message_new(&lim, "/tmp");

	assert_int_equal(message_append(m, L("A: 1\r\n\r\nbody\r\n")), 0);
	assert_int_equal(message_header_add(m, "B", "2"), 0);
	assert_int_equal(message_header_count(m), 2);
	assert_write(m, 0, L("A: 1\r\nB: 2\r\n\r\nbody\r\n"));
	message_free(m);
	message_free(NULL);
}

/* A big file-spooled message with many fields: merged ranges, identical bytes. */
static void
test_big_message(void **state)
{
	size_t		 len = 0, i, got_len;
	char		*wire = malloc(300000);
	unsigned char	*got;
	struct message	*m;

	assert_non_null(wire);
	for (i = 0; i < 90; i++)
		len += (size_t)sprintf(wire + len, "X-H%zu: value %zu\r\n", i, i);
	len += (size_t)sprintf(wire + len, "\r\n");
	while (len < 290000)
		len += (size_t)sprintf(wire + len, "%s line %zu\r\n", len % 3 ? "" : ".", len);
	m = msg_make(wire, len, 4096);
	assert_int_equal(message_header_count(m), 90);
	got = msg_write(m, 0, 8192, &got_len);
	assert_int_equal(got_len, len);
	assert_memory_equal(got, wire, len);
	free(got);
	assert_int_equal(message_header_change(m, "x-h45", 1, NULL), 0);
	assert_int_equal(message_header_insert(m, 10, "Ins", "i"), 0);
	got = msg_write(m, 0, 1000, &got_len);
	assert_int_equal(got_len, len - strlen("X-H45: value 45\r\n") + strlen("Ins: i\r\n"));
	assert_memory_equal(got + got_len - (len - 2000), wire + 2000, len - 2000);
	free(got);
	message_free(m);
	free(wire);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_index_fields),
		cmocka_unit_test(test_index_values),
		cmocka_unit_test(test_index_end),
		cmocka_unit_test(test_limit_count),
		cmocka_unit_test(test_limit_size),
		cmocka_unit_test(test_add_insert),
		cmocka_unit_test(test_change_delete),
		cmocka_unit_test(test_edit_validation),
		cmocka_unit_test(test_prepend),
		cmocka_unit_test(test_body_replace),
		cmocka_unit_test(test_body_replace_shapes),
		cmocka_unit_test(test_body_cursor),
		cmocka_unit_test(test_write_flags),
		cmocka_unit_test(test_reindex),
		cmocka_unit_test(test_lazy_index),
		cmocka_unit_test(test_big_message),
	};

	return cmocka_run_group_tests_name("message", tests, NULL, NULL);
}
