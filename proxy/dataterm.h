/*
 * dataterm.h - the DATA terminator scanner.
 *
 * Finds the end of a DATA section in a byte stream fed in arbitrary
 * pieces, and hands every content byte to a sink in wire form (still
 * dot-stuffed, CRLF line ends).  The end of data is CRLF "." CRLF and
 * nothing else (RFC 5321 4.1.1.4); the CRLF ending the DATA command
 * counts as the first CRLF, so ".\r\n" right after DATA is an empty
 * message.  The terminating ".\r\n" is not passed to the sink; the CRLF
 * before it is (it ends the last content line).
 *
 * In DATATERM_STRICT mode a CR not followed by LF, or an LF not preceded by
 * CR, is recorded (DATATERM_BARE_CR / DATATERM_BARE_LF) and passed to the
 * sink unchanged; the caller refuses the message at the end.  Sequences
 * such as "\n.\n", "\r\n.\n" or "\r.\r\n" are never an end of data.
 *
 * In DATATERM_NORMALIZE mode every bare CR and every bare LF is turned
 * into CRLF before scanning, so the sink sees, and the terminator is
 * found in, exactly the normalized stream the backend will receive (a CR
 * ending one feed and an LF starting the next are one CRLF).  The BARE_*
 * flags are set in this mode too, to say that something was normalized.
 *
 * Line lengths count the line's bytes and its CRLF but not a stuffing dot
 * (a "." starting a line that is followed by another "."), as RFC 5321
 * 4.5.3.1.6 says.  A long line is flagged and still passed on.
 *
 * Pure code; the struct is caller-owned and needs no cleanup.
 */
#ifndef SLUICE_DATATERM_H
#define SLUICE_DATATERM_H

#include <stddef.h>

enum dataterm_mode {
	DATATERM_STRICT = 0,	/* bare CR/LF recorded, bytes unchanged */
	DATATERM_NORMALIZE	/* bare CR/LF become CRLF */
};

#define DATATERM_BARE_CR	0x01	/* a CR not followed by LF was seen (either mode) */
#define DATATERM_BARE_LF	0x02	/* an LF not preceded by CR was seen (either mode) */
#define DATATERM_LONG_LINE	0x04	/* a line exceeded max_line (see above) */
#define DATATERM_NUL		0x08	/* a NUL byte was seen */

/*
 * The sink receives content in order, in as few calls as possible: p
 * points into the input, or to constant bytes (an inserted CR or LF, or a
 * "." or ".\r" held back at the end of the previous feed).  len > 0.
 */
typedef void (*dataterm_sink_fn)(void *arg, const unsigned char *p, size_t len);

struct dataterm {
	enum dataterm_mode mode;	/* strict or normalize */
	int		 state;		/* scanner state, private */
	unsigned int	 flags;		/* DATATERM_* seen so far */
	size_t		 max_line;	/* longest allowed line including CRLF, 0 = no limit */
	size_t		 line_len;	/* bytes in the current line so far */
	size_t		 bytes;		/* content bytes passed to the sink (wire form) */
	size_t		 lines;		/* content lines completed */
	int		 done;		/* terminator seen */
};

/* Reset t for a new DATA section. */
void	 dataterm_init(struct dataterm *t, enum dataterm_mode mode, size_t max_line);

/*
 * Scan up to len bytes of in.  Content goes to sink(arg, ...) in order.
 * Returns how many bytes of in were consumed: all of them, or fewer when
 * the terminator was found (t->done set; the bytes after it belong to the
 * next command and were not consumed).  Never fails.
 */
size_t	 dataterm_feed(struct dataterm *t, const unsigned char *in, size_t len,
	    dataterm_sink_fn sink, void *arg);

#endif /* SLUICE_DATATERM_H */
