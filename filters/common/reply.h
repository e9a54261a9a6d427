/*
 * reply.h - the reply options of the built-in filters ("550 5.7.1 text"):
 * one parser, so that every filter accepts and refuses the same strings
 * with the same sentences.  Pure code: no session, no sluice_* calls, no
 * allocation.
 *
 * The form is a code 4xx or 5xx, one space, an enhanced status code
 * (RFC 3463) class.subject.detail whose class is the code's first digit
 * and whose subject and detail are 1 to 3 digits, one or more spaces, then
 * a text of printable ASCII (it goes on the wire as is: no CR, LF, TAB or
 * 8-bit byte).  The whole string is at most FILTER_REPLY_MAX bytes, so
 * that the reply line stays well under RFC 5321's 512.
 */
#ifndef SLUICE_FILTER_REPLY_H
#define SLUICE_FILTER_REPLY_H

#include <stddef.h>

#define FILTER_REPLY_MAX	400	/* bytes of a reply option, code included */
#define FILTER_REPLY_FORM	"\"<4xx|5xx> <x.y.z> text\""	/* for sentences */

/* A parsed reply option. */
struct filter_reply {
	int	 code;				/* 400..599 */
	char	 enhanced[16];			/* "5.7.1", NUL-terminated */
	char	 text[FILTER_REPLY_MAX + 1];	/* the text, NUL-terminated */
};

/*
 * Parse s (may be NULL: refused) into out.  Returns 0, or -1 with a
 * sentence in err saying what is wrong ("the text must be printable
 * ASCII ...").  The sentence names neither the option nor the form: the
 * caller writes "reply must be " FILTER_REPLY_FORM ": <sentence>".  out is
 * zeroed first, so it holds nothing useful after a failure.
 */
int	 filter_reply_parse(const char *s, struct filter_reply *out, char *err,
	    size_t errlen);

#endif /* SLUICE_FILTER_REPLY_H */
