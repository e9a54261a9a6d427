/*
 * dataterm.c - the DATA terminator scanner.  See dataterm.h.
 *
 * The scanner walks the input in runs: memchr finds the next CR or LF,
 * everything before it is plain line content, and contiguous content is
 * handed to the sink as one range of the input.  A run is cut only at the
 * end of the input, before bytes still held back there (a "." at line
 * start that may begin the terminator), and, in NORMALIZE mode, where a
 * missing CR or LF is inserted from a constant.
 *
 * A line start exists only after a real CRLF (or, in NORMALIZE mode, after
 * a bare CR or LF that became one).  The CR of a CRLF is passed on at once;
 * whether it was bare is decided by the next byte, which may come in the
 * next feed.  A "." at line start, and a following CR, are held until the
 * next byte shows whether they end the data; when they turn out to be
 * content and were held over from an earlier feed they are re-emitted from
 * constants.
 */
#include "autoconf.h"

#include <stddef.h>
#include <string.h>

#include "dataterm.h"

enum dataterm_state {
	DT_LINE_START = 0,	/* after CRLF: a "." here may start the end */
	DT_MID,			/* inside a line, last byte not CR */
	DT_CR,			/* inside a line, last byte a CR (already emitted) */
	DT_DOT,			/* held: "." at line start */
	DT_DOT_CR		/* held: ".\r" at line start */
};

/* One call of dataterm_feed. */
struct dataterm_scan {
	struct dataterm		*t;
	const unsigned char	*in;		/* start of the input */
	const unsigned char	*end;		/* end of the input */
	const unsigned char	*p;		/* next byte to look at */
	const unsigned char	*run;		/* start of content not yet emitted */
	const unsigned char	*next_cr;	/* next CR at or after p, or end */
	const unsigned char	*next_lf;	/* next LF at or after p, or end */
	const unsigned char	*held_at;	/* the held "." if in this input, else NULL */
	dataterm_sink_fn	 sink;
	void			*arg;
};

static void	 dataterm_emit(struct dataterm_scan *, const unsigned char *, size_t);
static void	 dataterm_flush(struct dataterm_scan *, const unsigned char *);
static void	 dataterm_line_add(struct dataterm *, size_t);
static void	 dataterm_line_end(struct dataterm *);
static const unsigned char *dataterm_find_eol(struct dataterm_scan *);
static void	 dataterm_mid(struct dataterm_scan *);
static void	 dataterm_cr(struct dataterm_scan *);
static void	 dataterm_line_start(struct dataterm_scan *);
static void	 dataterm_dot(struct dataterm_scan *);
static void	 dataterm_dot_cr(struct dataterm_scan *);
static void	 dataterm_release(struct dataterm_scan *, size_t);

static const unsigned char crlf[] = "\r\n";
static const unsigned char dot_cr[] = ".\r";

void
dataterm_init(struct dataterm *t, enum dataterm_mode mode, size_t max_line)
{
	memset(t, 0, sizeof(*t));
	t->mode = mode;
	t->state = DT_LINE_START;
	t->max_line = max_line;
}

size_t
dataterm_feed(struct dataterm *t, const unsigned char *in, size_t len,
    dataterm_sink_fn sink, void *arg)
{
	struct dataterm_scan	 s;

	if (t->done || len == 0)
		return 0;
	s.t = t;
	s.in = s.p = s.run = in;
	s.end = in + len;
	s.next_cr = s.next_lf = NULL;
	s.held_at = NULL;
	s.sink = sink;
	s.arg = arg;
	while (s.p < s.end && !t->done) {
		switch (t->state) {
		case DT_MID:
			dataterm_mid(&s);
			break;
		case DT_CR:
			dataterm_cr(&s);
			break;
		case DT_LINE_START:
			dataterm_line_start(&s);
			break;
		case DT_DOT:
			dataterm_dot(&s);
			break;
		default:
			dataterm_dot_cr(&s);
			break;
		}
	}
	/* Held bytes stay held: they are emitted once their fate is known. */
	if (t->done || t->state == DT_DOT || t->state == DT_DOT_CR)
		dataterm_flush(&s, s.held_at != NULL ? s.held_at : s.run);
	else
		dataterm_flush(&s, s.p);
	return (size_t)(s.p - s.in);
}

/* Hand content to the sink, keeping the counters the caller reads. */
static void
dataterm_emit(struct dataterm_scan *s, const unsigned char *p, size_t len)
{
	if (len == 0)
		return;
	if (!(s->t->flags & DATATERM_NUL) && memchr(p, '\0', len) != NULL)
		s->t->flags |= DATATERM_NUL;
	s->t->bytes += len;
	s->sink(s->arg, p, len);
}

/* Emit the pending run of input up to upto, and start a new one there. */
static void
dataterm_flush(struct dataterm_scan *s, const unsigned char *upto)
{
	dataterm_emit(s, s->run, (size_t)(upto - s->run));
	s->run = upto;
}

static void
dataterm_line_add(struct dataterm *t, size_t n)
{
	t->line_len += n;
	if (t->max_line != 0 && t->line_len > t->max_line)
		t->flags |= DATATERM_LONG_LINE;
}

static void
dataterm_line_end(struct dataterm *t)
{
	t->lines++;
	t->line_len = 0;
	t->state = DT_LINE_START;
}

/*
 * The next CR or LF at or after p.  Both positions are remembered so a
 * feed with many LFs and no CR (or the reverse) is still searched once.
 */
static const unsigned char *
dataterm_find_eol(struct dataterm_scan *s)
{
	const unsigned char	*q;

	if (s->next_cr == NULL || s->next_cr < s->p) {
		q = memchr(s->p, '\r', (size_t)(s->end - s->p));
		s->next_cr = q != NULL ? q : s->end;
	}
	if (s->next_lf == NULL || s->next_lf < s->p) {
		/* Only an LF before the next CR matters now. */
		q = memchr(s->p, '\n', (size_t)(s->next_cr - s->p));
		s->next_lf = q != NULL ? q : s->next_cr;
	}
	return s->next_lf < s->next_cr ? s->next_lf : s->next_cr;
}

/* Inside a line: skip plain content, then look at the CR or LF. */
static void
dataterm_mid(struct dataterm_scan *s)
{
	struct dataterm		*t = s->t;
	const unsigned char	*q = dataterm_find_eol(s);

	dataterm_line_add(t, (size_t)(q - s->p));
	s->p = q;
	if (q == s->end)
		return;
	if (*q == '\r') {
		dataterm_line_add(t, 1);
		s->p++;
		t->state = DT_CR;
		return;
	}
	t->flags |= DATATERM_BARE_LF;
	if (t->mode == DATATERM_STRICT) {
		/* Passed through; it ends no line and starts none. */
		dataterm_line_add(t, 1);
		s->p++;
		return;
	}
	dataterm_flush(s, q);
	dataterm_emit(s, crlf, 1);
	dataterm_line_add(t, 2);
	s->p++;
	dataterm_line_end(t);
}

/* After a CR inside a line: an LF completes the line end. */
static void
dataterm_cr(struct dataterm_scan *s)
{
	struct dataterm	*t = s->t;

	if (*s->p == '\n') {
		dataterm_line_add(t, 1);
		s->p++;
		dataterm_line_end(t);
		return;
	}
	t->flags |= DATATERM_BARE_CR;
	if (t->mode == DATATERM_STRICT) {
		t->state = DT_MID;	/* the byte is looked at again as content */
		return;
	}
	/* The CR went out already (maybe in an earlier feed); add its LF. */
	dataterm_flush(s, s->p);
	dataterm_emit(s, crlf + 1, 1);
	dataterm_line_add(t, 1);
	dataterm_line_end(t);
}

static void
dataterm_line_start(struct dataterm_scan *s)
{
	if (*s->p != '.') {
		s->t->state = DT_MID;
		return;
	}
	s->held_at = s->p;
	s->p++;
	s->t->state = DT_DOT;
}

/* After "." at line start. */
static void
dataterm_dot(struct dataterm_scan *s)
{
	struct dataterm	*t = s->t;
	int		 c = *s->p;

	if (c == '\r') {
		s->p++;
		t->state = DT_DOT_CR;
		return;
	}
	if (c == '\n' && t->mode == DATATERM_NORMALIZE) {
		/* ".\n" is ".\r\n" once normalized: the end. */
		t->flags |= DATATERM_BARE_LF;
		s->p++;
		t->done = 1;
		return;
	}
	/* Content; a second "." means the first one was stuffing (RFC 5321 4.5.2). */
	dataterm_release(s, 1);
	dataterm_line_add(t, c == '.' ? 0 : 1);
	t->state = DT_MID;
}

/* After ".\r" at line start. */
static void
dataterm_dot_cr(struct dataterm_scan *s)
{
	struct dataterm	*t = s->t;

	if (*s->p == '\n') {
		s->p++;
		t->done = 1;
		return;
	}
	t->flags |= DATATERM_BARE_CR;
	if (t->mode == DATATERM_NORMALIZE) {
		/* ".\r" becomes ".\r\n": the end, and this byte is not ours. */
		t->done = 1;
		return;
	}
	dataterm_release(s, 2);
	dataterm_line_add(t, 2);
	t->state = DT_MID;
}

/*
 * Held bytes (".", or ".\r") turned out to be content.  When they are in
 * this input the current run covers them already; when they were held over
 * from an earlier feed, they are emitted from a constant and the run
 * restarts at the current byte (everything before it in this input was
 * part of what was held).
 */
static void
dataterm_release(struct dataterm_scan *s, size_t held)
{
	if (s->held_at != NULL) {
		s->held_at = NULL;
		return;
	}
	dataterm_emit(s, dot_cr, held);
	s->run = s->p;
}
