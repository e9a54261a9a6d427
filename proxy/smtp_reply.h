/*
 * smtp_reply.h - building replies we send and parsing replies we receive.
 *
 * Pure code: works on libevent evbuffers (as plain byte queues) and on
 * caller-owned structs.  No sockets, no sessions.
 */
#ifndef SLUICE_SMTP_REPLY_H
#define SLUICE_SMTP_REPLY_H

#include <stddef.h>

struct evbuffer;

#define SMTP_REPLY_LINES_MAX	64	/* lines kept from a multi-line reply */
#define SMTP_REPLY_TEXT_MAX	4096	/* bytes of text kept in total */
#define SMTP_REPLY_LINE_MAX	2048	/* a received reply line longer than this is garbage */
#define SMTP_REPLY_WIRE_MAX	65536	/* a received reply longer than this (all lines) is garbage */

/*
 * Append one reply to out: "code enhanced text\r\n".  enhanced may be NULL
 * (no enhanced code, e.g. for the greeting).  Text containing '\n' becomes
 * a multi-line reply ("250-first\r\n250 last\r\n"), each line carrying the
 * enhanced code.  CR and other control bytes in text are replaced by
 * spaces so a reply can never be split by what a peer put into it.
 * Returns 0, or -1 if code is not 200..599.
 */
int	 smtp_reply_add(struct evbuffer *out, int code, const char *enhanced,
	    const char *text);

/* Same with printf-style text. */
int	 smtp_reply_addf(struct evbuffer *out, int code, const char *enhanced,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A reply received from a peer, kept whole. */
struct smtp_reply {
	int	 code;				/* 200..599 */
	char	 enhanced[16];			/* "2.1.0" if the first line had one, else "" */
	size_t	 nlines;			/* lines kept */
	char	 text[SMTP_REPLY_TEXT_MAX];	/* line texts after "code[- ]", each NUL-terminated, back to back */
	size_t	 line_off[SMTP_REPLY_LINES_MAX];/* offset of each line in text */
	int	 truncated;			/* more lines or text than kept */
};

enum smtp_reply_status {
	SMTP_REPLY_NEED_MORE = 0,	/* no complete reply buffered yet */
	SMTP_REPLY_COMPLETE,		/* *reply filled, its bytes drained from in */
	SMTP_REPLY_MALFORMED		/* garbage: not "ddd[- ]...", codes differ, or line too long */
};

/*
 * Take one complete (possibly multi-line) reply from the front of in.
 * Lines end in CRLF or LF.  On SMTP_REPLY_NEED_MORE nothing is drained; on
 * SMTP_REPLY_MALFORMED the state of in is unspecified (close the peer).
 * Garbage is reported as soon as the bytes show it, without waiting for
 * the end of the line; a reply still incomplete after SMTP_REPLY_WIRE_MAX
 * bytes is garbage too, so a peer cannot make us buffer without bound.
 * The contents of *reply are unspecified unless SMTP_REPLY_COMPLETE.
 */
enum smtp_reply_status smtp_reply_read(struct evbuffer *in, struct smtp_reply *reply);

/* The text of line i (0-based), "" when out of range. */
const char *smtp_reply_line(const struct smtp_reply *reply, size_t i);

/*
 * The text of the first line with a leading enhanced code removed ("Ok"
 * for "250 2.0.0 Ok").
 */
const char *smtp_reply_text(const struct smtp_reply *reply);

/*
 * Write reply to out as our own reply, unchanged in code and texts.  When
 * the peer gave no enhanced code, default_enhanced (may be NULL) is added.
 */
void	 smtp_reply_relay(struct evbuffer *out, const struct smtp_reply *reply,
	    const char *default_enhanced);

/* EHLO capabilities we care about, read from an EHLO/LHLO reply. */
#define SMTP_CAP_PIPELINING	0x0001
#define SMTP_CAP_SIZE		0x0002
#define SMTP_CAP_8BITMIME	0x0004
#define SMTP_CAP_ENHANCEDSTATUSCODES 0x0008
#define SMTP_CAP_SMTPUTF8	0x0010
#define SMTP_CAP_DSN		0x0020
#define SMTP_CAP_STARTTLS	0x0040
#define SMTP_CAP_XCLIENT	0x0080
#define SMTP_CAP_XFORWARD	0x0100
#define SMTP_CAP_CHUNKING	0x0200
#define SMTP_CAP_AUTH		0x0400
#define SMTP_CAP_BINARYMIME	0x0800

#define SMTP_XATTR_NAME		0x0001
#define SMTP_XATTR_ADDR		0x0002
#define SMTP_XATTR_PORT		0x0004
#define SMTP_XATTR_PROTO	0x0008
#define SMTP_XATTR_HELO		0x0010
#define SMTP_XATTR_LOGIN	0x0020
#define SMTP_XATTR_DESTADDR	0x0040
#define SMTP_XATTR_DESTPORT	0x0080
#define SMTP_XATTR_IDENT	0x0100
#define SMTP_XATTR_SOURCE	0x0200

struct smtp_caps {
	unsigned int	 flags;		/* SMTP_CAP_* */
	unsigned long long size;	/* SIZE value, 0 = none given or unlimited */
	unsigned int	 xclient;	/* SMTP_XATTR_* named after XCLIENT */
	unsigned int	 xforward;	/* SMTP_XATTR_* named after XFORWARD */
};

/* Fill caps from a 250 EHLO/LHLO reply (the first line is the greeting). */
void	 smtp_caps_parse(const struct smtp_reply *reply, struct smtp_caps *caps);

/*
 * Encode value as RFC 1891 xtext into out ("+2B" for '+', '=' and bytes
 * outside 33..126), as XCLIENT and XFORWARD attribute values need.
 */
void	 smtp_xtext_encode(struct evbuffer *out, const char *value);

#endif /* SLUICE_SMTP_REPLY_H */
