/*
 * test_dataterm.c - unit tests for proxy/dataterm.c, the DATA terminator
 * scanner (DESIGN.md invariant 3).
 *
 * Every vector is fed whole, one byte at a time, in every 2-way split and
 * in steps of 2..7 bytes, each piece from an exact-size heap copy so a
 * read past its end shows under AddressSanitizer; every way must give the
 * same sink bytes, consumed count, flags and counters.  The SMTP smuggling
 * vectors (SEC Consult, 2023) run in both modes, each followed by a
 * smuggled transaction and a real end of data.  A seeded random run
 * checks both modes against a slow, obviously correct model.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dataterm.h"

#define L(s)	(s), (sizeof(s) - 1)

#define BCR	DATATERM_BARE_CR
#define BLF	DATATERM_BARE_LF
#define LONG	DATATERM_LONG_LINE
#define NUL	DATATERM_NUL

/* What one scan produced. */
struct result {
	unsigned char	*out;		/* sink bytes */
	size_t		 len;		/* sink byte count */
	size_t		 cap;		/* allocated */
	size_t		 calls;		/* sink calls */
	size_t		 consumed;	/* bytes consumed */
	int		 done;		/* terminator found */
	unsigned int	 flags;		/* DATATERM_* */
	size_t		 bytes;		/* t.bytes */
	size_t		 lines;		/* t.lines */
};

/* A table vector: expected results for one mode. */
struct vector {
	const char	*name;
	const char	*in;		/* input, may hold NUL */
	size_t		 in_len;
	enum dataterm_mode mode;
	const char	*out;		/* expected sink bytes */
	size_t		 out_len;
	size_t		 consumed;	/* expected consumed bytes */
	int		 done;		/* expected terminator */
	unsigned int	 flags;		/* expected flags, exactly */
	size_t		 lines;		/* expected completed lines */
};

static void	 collect(void *, const unsigned char *, size_t);
static void	 result_free(struct result *);
static void	 scan_pieces(enum dataterm_mode, size_t, const unsigned char *, size_t,
		    const size_t *, size_t, struct result *);
static void	 scan_step(enum dataterm_mode, size_t, const unsigned char *, size_t, size_t,
		    struct result *);
static void	 scan_split(enum dataterm_mode, size_t, const unsigned char *, size_t, size_t,
		    struct result *);
static void	 assert_same(const struct result *, const struct result *, const char *);
static void	 check_all_ways(enum dataterm_mode, size_t, const unsigned char *, size_t,
		    struct result *);
static void	 check_vector(const struct vector *);
static int	 has_bare_eol(const unsigned char *, size_t);
static void	 model(enum dataterm_mode, size_t, const unsigned char *, size_t,
		    struct result *);
static uint32_t	 rng_next(uint32_t *);

static void
collect(void *arg, const unsigned char *p, size_t len)
{
	struct result	*r = arg;

	assert_true(len > 0);
	if (r->len + len > r->cap) {
		r->cap = (r->len + len) * 2 + 64;
		r->out = realloc(r->out, r->cap);
		assert_non_null(r->out);
	}
	memcpy(r->out + r->len, p, len);
	r->len += len;
	r->calls++;
}

static void
result_free(struct result *r)
{
	free(r->out);
	memset(r, 0, sizeof(*r));
}

/* Feed in[] in pieces of the given sizes (the last one repeats), each from its own heap copy. */
static void
scan_pieces(enum dataterm_mode mode, size_t max_line, const unsigned char *in, size_t len,
    const size_t *sizes, size_t nsizes, struct result *r)
{
	struct dataterm	 t;
	size_t		 off = 0, i = 0, n, used;
	unsigned char	*piece;

	memset(r, 0, sizeof(*r));
	dataterm_init(&t, mode, max_line);
	while (off < len && !t.done) {
		n = sizes[i < nsizes ? i : nsizes - 1];
		i++;
		if (n > len - off)
			n = len - off;
		piece = malloc(n);
		assert_non_null(piece);
		memcpy(piece, in + off, n);
		used = dataterm_feed(&t, piece, n, collect, r);
		free(piece);
		assert_true(used <= n);
		/* Only the terminator may leave bytes unconsumed. */
		if (!t.done)
			assert_int_equal(used, n);
		off += used;
	}
	/* A finished scanner takes nothing more. */
	if (t.done && off < len)
		assert_int_equal(dataterm_feed(&t, in + off, len - off, collect, r), 0);
	r->consumed = off;
	r->done = t.done;
	r->flags = t.flags;
	r->bytes = t.bytes;
	r->lines = t.lines;
}

static void
scan_step(enum dataterm_mode mode, size_t max_line, const unsigned char *in, size_t len,
    size_t step, struct result *r)
{
	scan_pieces(mode, max_line, in, len, &step, 1, r);
}

static void
scan_split(enum dataterm_mode mode, size_t max_line, const unsigned char *in, size_t len,
    size_t at, struct result *r)
{
	size_t	 sizes[2] = { at, len };

	scan_pieces(mode, max_line, in, len, sizes, 2, r);
}

static void
assert_same(const struct result *a, const struct result *b, const char *how)
{
	if (a->len != b->len || (a->len > 0 && memcmp(a->out, b->out, a->len) != 0) ||
	    a->consumed != b->consumed || a->done != b->done || a->flags != b->flags ||
	    a->bytes != b->bytes || a->lines != b->lines)
		fail_msg("%s: len %zu/%zu consumed %zu/%zu done %d/%d flags %x/%x lines %zu/%zu",
		    how, a->len, b->len, a->consumed, b->consumed, a->done, b->done,
		    a->flags, b->flags, a->lines, b->lines);
}

/* Scan whole into *whole, then every other way; all must match it. */
static void
check_all_ways(enum dataterm_mode mode, size_t max_line, const unsigned char *in, size_t len,
    struct result *whole)
{
	struct result	 r;
	size_t		 i;
	char		 how[64];

	scan_step(mode, max_line, in, len, len > 0 ? len : 1, whole);
	assert_int_equal(whole->bytes, whole->len);
	for (i = 1; i <= 7; i++) {
		scan_step(mode, max_line, in, len, i, &r);
		snprintf(how, sizeof(how), "step %zu", i);
		assert_same(whole, &r, how);
		result_free(&r);
	}
	for (i = 1; i < len; i++) {
		scan_split(mode, max_line, in, len, i, &r);
		snprintf(how, sizeof(how), "split at %zu", i);
		assert_same(whole, &r, how);
		result_free(&r);
	}
}

static void
check_vector(const struct vector *v)
{
	struct result	 whole;

	check_all_ways(v->mode, 1000, (const unsigned char *)v->in, v->in_len, &whole);
	if (whole.len != v->out_len ||
	    (v->out_len > 0 && memcmp(whole.out, v->out, v->out_len) != 0) ||
	    whole.consumed != v->consumed || whole.done != v->done ||
	    whole.flags != v->flags || whole.lines != v->lines)
		fail_msg("%s (%s): len %zu/%zu consumed %zu/%zu done %d/%d flags %x/%x "
		    "lines %zu/%zu", v->name, v->mode == DATATERM_STRICT ? "strict" :
		    "normalize", whole.len, v->out_len, whole.consumed, v->consumed,
		    whole.done, v->done, whole.flags, v->flags, whole.lines, v->lines);
	if (v->mode == DATATERM_NORMALIZE)
		assert_false(has_bare_eol(whole.out, whole.len));
	result_free(&whole);
}

/* 1 if p holds a CR not followed by LF or an LF not preceded by CR. */
static int
has_bare_eol(const unsigned char *p, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n'))
			return 1;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return 1;
	}
	return 0;
}

#define S	DATATERM_STRICT
#define N	DATATERM_NORMALIZE

static const struct vector vectors[] = {
	{ "empty message", L(".\r\n"), S, L(""), 3, 1, 0, 0 },
	{ "empty message", L(".\r\n"), N, L(""), 3, 1, 0, 0 },
	{ "empty, pipelined", L(".\r\nQUIT\r\n"), S, L(""), 3, 1, 0, 0 },
	{ "one line", L("a\r\n.\r\n"), S, L("a\r\n"), 6, 1, 0, 1 },
	{ "one empty line", L("\r\n.\r\n"), S, L("\r\n"), 5, 1, 0, 1 },
	{ "stuffed dot line", L("..\r\n.\r\n"), S, L("..\r\n"), 7, 1, 0, 1 },
	{ "stuffed dot line", L("..\r\n.\r\n"), N, L("..\r\n"), 7, 1, 0, 1 },
	{ "line starting ..", L("..x\r\n.\r\nRSET\r\n"), S, L("..x\r\n"), 8, 1, 0, 1 },
	{ "dot then text", L(".x\r\n. \r\n.\r\n"), S, L(".x\r\n. \r\n"), 11, 1, 0, 2 },
	{ "dot mid-line", L("a.\r\n.\r\n"), S, L("a.\r\n"), 7, 1, 0, 1 },
	{ "headers and body", L("A: b\r\n\r\nbody\r\n.\r\nQUIT\r\n"), S,
	    L("A: b\r\n\r\nbody\r\n"), 17, 1, 0, 3 },
	{ "no end yet", L("a\r\n"), S, L("a\r\n"), 3, 0, 0, 1 },
	{ "held dot", L("a\r\n."), S, L("a\r\n"), 4, 0, 0, 1 },
	{ "held dot cr", L("a\r\n.\r"), S, L("a\r\n"), 5, 0, 0, 1 },
	{ "held dot cr", L("a\r\n.\r"), N, L("a\r\n"), 5, 0, 0, 1 },
	{ "8-bit", L("\xff\xfe\x80 \xc3\xa9\r\n.\r\n"), S, L("\xff\xfe\x80 \xc3\xa9\r\n"), 11,
	    1, 0, 1 },
	{ "NUL", L("a\0b\r\n.\r\n"), S, L("a\0b\r\n"), 8, 1, NUL, 1 },
	{ "NUL", L("a\0b\r\n.\r\n"), N, L("a\0b\r\n"), 8, 1, NUL, 1 },
	{ "NUL line", L("\0\r\n.\r\n"), S, L("\0\r\n"), 6, 1, NUL, 1 },
	{ "LF only", L("a\nb\n.\n"), S, L("a\nb\n.\n"), 6, 0, BLF, 0 },
	{ "LF only", L("a\nb\n.\nX"), N, L("a\r\nb\r\n"), 6, 1, BLF, 2 },
	{ "CR only", L("a\rb\r.\rX"), N, L("a\r\nb\r\n"), 6, 1, BCR, 2 },
	{ "CR CR LF", L("a\r\r\n.\r\n"), S, L("a\r\r\n"), 7, 1, BCR, 1 },
	{ "CR CR LF", L("a\r\r\n.\r\n"), N, L("a\r\n\r\n"), 7, 1, BCR, 2 },
	{ "LF at start", L("\n.\r\n"), S, L("\n.\r\n"), 4, 0, BLF, 1 },
	{ "LF at start", L("\n.\r\n"), N, L("\r\n"), 4, 1, BLF, 1 },
	{ "CR at start", L("\r.\r\n"), S, L("\r.\r\n"), 4, 0, BCR, 1 },
	{ "CR at start", L("\r.\r\n"), N, L("\r\n"), 4, 1, BCR, 1 },
	{ "dot LF at start", L(".\n"), S, L(".\n"), 2, 0, BLF, 0 },
	{ "dot LF at start", L(".\nX"), N, L(""), 2, 1, BLF, 0 },
	{ "dot CR at start", L(".\rX"), S, L(".\rX"), 3, 0, BCR, 0 },
	{ "dot CR at start", L(".\rX"), N, L(""), 2, 1, BCR, 0 },
	{ "dot CR CR LF", L("a\r\n.\r\r\n.\r\n"), S, L("a\r\n.\r\r\n"), 10, 1, BCR, 2 },
	{ "dot CR CR LF", L("a\r\n.\r\r\n.\r\n"), N, L("a\r\n"), 5, 1, BCR, 1 },
	{ "dot CR dot", L("a\r\n.\r.\r\n"), S, L("a\r\n.\r.\r\n"), 8, 0, BCR, 2 },
	{ "CRLF split LF", L("a\n\r\n.\r\n"), S, L("a\n\r\n"), 7, 1, BLF, 1 },
	{ "CRLF split LF", L("a\n\r\n.\r\n"), N, L("a\r\n\r\n"), 7, 1, BLF, 2 },
	{ "LF CR", L("a\n\r.\r\n"), N, L("a\r\n\r\n"), 6, 1, BCR | BLF, 2 },
};

#undef S
#undef N

static void
test_vectors(void **state)
{
	size_t	 i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		check_vector(&vectors[i]);
}

/* The SEC Consult sequences, each between "body" and a smuggled transaction. */
static const struct smuggle {
	const char	*seq;
	size_t		 seq_len;
	unsigned int	 strict_flags;	/* flags in strict mode */
	long		 norm_used;	/* seq bytes consumed by normalize, -1: no end there */
	unsigned int	 norm_flags;	/* flags in normalize mode */
} smuggles[] = {
	{ L("\n.\n"), BLF, 3, BLF },
	{ L("\n.\r\n"), BLF, 4, BLF },
	{ L("\r\n.\n"), BLF, 4, BLF },
	{ L("\r.\r\n"), BCR, 4, BCR },
	{ L("\r\n.\r"), BCR, 4, BCR },
	{ L("\r.\n"), BCR | BLF, 3, BCR | BLF },
	{ L("\r.\r"), BCR, 3, BCR },
	{ L("\n.\r"), BCR | BLF, 3, BCR | BLF },
	{ L("\r\n.\r\r\n"), BCR, 4, BCR },
	{ L("\r\n\0.\r\n"), NUL, -1, NUL },
	{ L("\r\n.\0\r\n"), NUL, -1, NUL },
	{ L("\r\n \r\n.\n"), BLF, 7, BLF },
	{ L("\n\n.\n"), BLF, 4, BLF },
};

static const char smuggle_head[] = "Subject: x\r\n\r\nbody";
static const char smuggle_tail[] = "MAIL FROM:<evil@example.net>\r\n"
    "RCPT TO:<victim@example.com>\r\nDATA\r\nsmuggled\r\n";
static const char smuggle_after[] = "QUIT\r\n";

static void
check_smuggle(const struct smuggle *sm)
{
	size_t		 hl = sizeof(smuggle_head) - 1, tl = sizeof(smuggle_tail) - 1;
	size_t		 len = hl + sm->seq_len + tl + 3 + sizeof(smuggle_after) - 1;
	unsigned char	*in = malloc(len);
	struct result	 r;
	size_t		 real_end = len - (sizeof(smuggle_after) - 1);

	assert_non_null(in);
	memcpy(in, smuggle_head, hl);
	memcpy(in + hl, sm->seq, sm->seq_len);
	memcpy(in + hl + sm->seq_len, smuggle_tail, tl);
	memcpy(in + hl + sm->seq_len + tl, ".\r\n", 3);
	memcpy(in + real_end, smuggle_after, sizeof(smuggle_after) - 1);

	/* Strict: only the real end, everything before it passed unchanged. */
	check_all_ways(DATATERM_STRICT, 1000, in, len, &r);
	assert_true(r.done);
	assert_int_equal(r.consumed, real_end);
	assert_int_equal(r.len, real_end - 3);
	assert_memory_equal(r.out, in, real_end - 3);
	assert_int_equal(r.flags, sm->strict_flags);
	result_free(&r);

	/* Normalize: the end the normalized stream has, and no bare CR/LF out. */
	check_all_ways(DATATERM_NORMALIZE, 1000, in, len, &r);
	assert_true(r.done);
	assert_int_equal(r.flags, sm->norm_flags);
	assert_false(has_bare_eol(r.out, r.len));
	if (sm->norm_used >= 0) {
		assert_int_equal(r.consumed, hl + (size_t)sm->norm_used);
		assert_true(r.len >= hl + 2);
		assert_memory_equal(r.out, smuggle_head, hl);
		assert_memory_equal(r.out + r.len - 2, "\r\n", 2);
	} else {
		assert_int_equal(r.consumed, real_end);
		assert_int_equal(r.len, real_end - 3);
		assert_memory_equal(r.out, in, real_end - 3);
	}
	result_free(&r);
	free(in);
}

static void
test_smuggling(void **state)
{
	size_t	 i;

	for (i = 0; i < sizeof(smuggles) / sizeof(smuggles[0]); i++)
		check_smuggle(&smuggles[i]);
}

/* Expected normalize output for the smuggling sequences, spelled out. */
static void
test_smuggling_normalized_bytes(void **state)
{
	static const struct {
		const char	*in;
		size_t		 len;
		const char	*out;
		size_t		 out_len;
		size_t		 consumed;
	} cases[] = {
		{ L("x\n.\nMAIL"), L("x\r\n"), 4 },
		{ L("x\r.\r\nMAIL"), L("x\r\n"), 5 },
		{ L("x\r\n.\rMAIL"), L("x\r\n"), 5 },
		{ L("x\r.\rMAIL"), L("x\r\n"), 4 },
		{ L("x\n\r\n.\r\nMAIL"), L("x\r\n\r\n"), 7 },
		{ L("x\r\r\n.\r\nMAIL"), L("x\r\n\r\n"), 7 },
	};
	struct result	 r;
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_all_ways(DATATERM_NORMALIZE, 0, (const unsigned char *)cases[i].in,
		    cases[i].len, &r);
		assert_true(r.done);
		assert_int_equal(r.consumed, cases[i].consumed);
		assert_int_equal(r.len, cases[i].out_len);
		assert_memory_equal(r.out, cases[i].out, r.len);
		result_free(&r);
	}
}

/* A line of n bytes including its CRLF, starting with prefix, then the end. */
static unsigned char *
make_line(const char *prefix, size_t n, size_t *len)
{
	size_t		 pl = strlen(prefix);
	unsigned char	*p = malloc(n + 3);

	assert_non_null(p);
	memset(p, 'a', n);
	memcpy(p, prefix, pl);
	memcpy(p + n - 2, "\r\n.\r\n", 5);
	*len = n + 3;
	return p;
}

static void
check_line(const char *prefix, size_t n, enum dataterm_mode mode, int want_long)
{
	struct result	 r;
	size_t		 len;
	unsigned char	*in = make_line(prefix, n, &len);

	check_all_ways(mode, 1000, in, len, &r);
	assert_true(r.done);
	assert_int_equal(r.consumed, len);
	/* A long line is flagged, and still passed on whole. */
	assert_int_equal(r.len, n);
	assert_memory_equal(r.out, in, n);
	assert_int_equal(r.lines, 1);
	assert_int_equal((r.flags & DATATERM_LONG_LINE) != 0, want_long);
	result_free(&r);
	free(in);
}

static void
test_line_length(void **state)
{
	int	 mode;

	for (mode = 0; mode < 2; mode++) {
		check_line("", 998, (enum dataterm_mode)mode, 0);
		check_line("", 1000, (enum dataterm_mode)mode, 0);
		check_line("", 1001, (enum dataterm_mode)mode, 1);
		check_line("", 5000, (enum dataterm_mode)mode, 1);
		/* The stuffing dot does not count (RFC 5321 4.5.3.1.6)... */
		check_line("..", 1001, (enum dataterm_mode)mode, 0);
		check_line("..", 1002, (enum dataterm_mode)mode, 1);
		/* ...but a lone dot starting a line is content. */
		check_line(".", 1001, (enum dataterm_mode)mode, 1);
	}
}

static void
test_line_limit_off(void **state)
{
	struct result	 r;
	size_t		 len;
	unsigned char	*in = make_line("", 3000, &len);

	check_all_ways(DATATERM_STRICT, 0, in, len, &r);
	assert_int_equal(r.flags, 0);
	result_free(&r);
	scan_step(DATATERM_STRICT, 2999, in, len, len, &r);
	assert_int_equal(r.flags, DATATERM_LONG_LINE);
	result_free(&r);
	free(in);
}

/* Many lines: counters, and the line length is per line. */
static void
test_counters(void **state)
{
	unsigned char	 in[1000 * 10 + 3];
	struct result	 r;
	size_t		 i;

	for (i = 0; i < 1000; i++)
		memcpy(in + i * 10, "0123456.\r\n", 10);
	memcpy(in + 10000, ".\r\n", 3);
	scan_step(DATATERM_STRICT, 10, in, sizeof(in), sizeof(in), &r);
	assert_true(r.done);
	assert_int_equal(r.lines, 1000);
	assert_int_equal(r.bytes, 10000);
	assert_int_equal(r.flags, 0);
	result_free(&r);
	scan_step(DATATERM_STRICT, 9, in, sizeof(in), 3, &r);
	assert_int_equal(r.flags, DATATERM_LONG_LINE);
	result_free(&r);
}

/* Clean input goes to the sink as one range of the input, not byte by byte. */
static void
test_zero_copy(void **state)
{
	static const char msg[] = "A: b\r\n\r\nline one\r\n..two\r\nthree\r\n.\r\n";
	struct result	 r;
	int		 mode;

	for (mode = 0; mode < 2; mode++) {
		scan_step((enum dataterm_mode)mode, 1000, (const unsigned char *)msg,
		    sizeof(msg) - 1, sizeof(msg) - 1, &r);
		assert_true(r.done);
		assert_int_equal(r.calls, 1);
		result_free(&r);
	}
	/* Normalizing LF lines costs a range and an inserted CR per line. */
	scan_step(DATATERM_NORMALIZE, 1000, (const unsigned char *)"aa\nbb\ncc\n.\n", 11, 11,
	    &r);
	assert_int_equal(r.len, 12);
	assert_memory_equal(r.out, "aa\r\nbb\r\ncc\r\n", 12);
	assert_true(r.calls <= 7);
	result_free(&r);
}

static void
test_feed_after_done(void **state)
{
	struct dataterm	 t;
	struct result	 r;

	memset(&r, 0, sizeof(r));
	dataterm_init(&t, DATATERM_STRICT, 0);
	assert_int_equal(dataterm_feed(&t, (const unsigned char *)"a\r\n.\r\nb", 7, collect,
	    &r), 6);
	assert_true(t.done);
	assert_int_equal(dataterm_feed(&t, (const unsigned char *)"b", 1, collect, &r), 0);
	assert_int_equal(dataterm_feed(&t, (const unsigned char *)"", 0, collect, &r), 0);
	assert_int_equal(r.len, 3);
	/* init makes it usable again. */
	dataterm_init(&t, DATATERM_NORMALIZE, 0);
	assert_false(t.done);
	assert_int_equal(dataterm_feed(&t, (const unsigned char *)".\n", 2, collect, &r), 2);
	assert_true(t.done);
	result_free(&r);
}

/*
 * The model: normalize first if asked (each byte's source position kept),
 * then find the first CRLF "." CRLF with the DATA command's CRLF in front.
 */
static void
model(enum dataterm_mode mode, size_t max_line, const unsigned char *in, size_t len,
    struct result *r)
{
	unsigned char	*v = malloc(2 * len + 2);
	size_t		*src = malloc((2 * len + 2) * sizeof(size_t));
	size_t		 n = 2, i, j, start;

	assert_true(v != NULL && src != NULL);
	memset(r, 0, sizeof(*r));
	v[0] = '\r';
	v[1] = '\n';
	for (i = 0; i < len; i++) {
		int	 bare_cr = in[i] == '\r' && i + 1 < len && in[i + 1] != '\n';
		int	 bare_lf = in[i] == '\n' && (i == 0 || in[i - 1] != '\r');

		if (mode == DATATERM_NORMALIZE && bare_lf) {
			src[n] = i;
			v[n++] = '\r';
		}
		src[n] = i;
		v[n++] = in[i];
		if (mode == DATATERM_NORMALIZE && bare_cr) {
			src[n] = i;
			v[n++] = '\n';
		}
	}
	for (j = 0; j + 5 <= n; j++)
		if (memcmp(v + j, "\r\n.\r\n", 5) == 0)
			break;
	r->done = j + 5 <= n;
	r->len = r->done ? j : n - 2;
	r->out = malloc(r->len + 1);
	assert_non_null(r->out);
	memcpy(r->out, v + 2, r->len);
	r->consumed = r->done ? src[j + 4] + 1 : len;
	for (i = 0; i < r->consumed; i++) {
		if (in[i] == '\r' && i + 1 < len && in[i + 1] != '\n')
			r->flags |= BCR;
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			r->flags |= BLF;
		if (in[i] == '\0')
			r->flags |= NUL;
	}
	for (start = 0, i = 0; i + 1 < r->len; i++) {
		if (r->out[i] != '\r' || r->out[i + 1] != '\n')
			continue;
		r->lines++;
		if (max_line != 0 && i + 2 - start - (r->out[start] == '.' &&
		    i + 2 - start > 3 && r->out[start + 1] == '.') > max_line)
			r->flags |= LONG;
		start = i + 2;
	}
	r->bytes = r->len;
	free(v);
	free(src);
}

static uint32_t
rng_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random streams over the bytes that matter, against the model. */
static void
test_model(void **state)
{
	static const unsigned char alphabet[] = { '\r', '\n', '.', 'a', '\0', '\r', '\n', '.' };
	unsigned char	 in[48];
	struct result	 a, b;
	uint32_t	 seed = 0x5eed1234;
	size_t		 len, i, round;
	int		 mode;

	for (round = 0; round < 20000; round++) {
		len = rng_next(&seed) % 40;
		for (i = 0; i < len; i++)
			in[i] = alphabet[rng_next(&seed) % sizeof(alphabet)];
		/* Always a real end, so the model never needs a pending CR. */
		memcpy(in + len, "\r\n.\r\nX", 6);
		len += 6;
		for (mode = 0; mode < 2; mode++) {
			model((enum dataterm_mode)mode, 4, in, len, &a);
			scan_step((enum dataterm_mode)mode, 4, in, len, len, &b);
			assert_same(&a, &b, "whole vs model");
			result_free(&b);
			scan_step((enum dataterm_mode)mode, 4, in, len, 1, &b);
			assert_same(&a, &b, "bytewise vs model");
			result_free(&b);
			scan_split((enum dataterm_mode)mode, 4, in, len,
			    1 + rng_next(&seed) % (len - 1), &b);
			assert_same(&a, &b, "split vs model");
			result_free(&b);
			result_free(&a);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_smuggling),
		cmocka_unit_test(test_smuggling_normalized_bytes),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_line_limit_off),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_zero_copy),
		cmocka_unit_test(test_feed_after_done),
		cmocka_unit_test(test_model),
	};

	return cmocka_run_group_tests_name("dataterm", tests, NULL, NULL);
}
