/*
 * reply.c - the parser of the built-in filters' reply options
 * ("550 5.7.1 text").  See reply.h.
 *
 * The string is configuration, but it is read as hostile bytes all the
 * same: byte by byte from the front, never past the terminating NUL, no
 * sscanf (whose %d takes signs and leading blanks a reply may not have).
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>

#include "reply.h"

static int	 filter_reply_digits(const char *, size_t *);
static int	 filter_reply_enhanced(const char *, char, size_t *);

/* 1 to 3 ASCII digits at s: their count in *n, 0; else -1. */
static int
filter_reply_digits(const char *s, size_t *n)
{
	size_t	 i;

	for (i = 0; i < 4 && s[i] >= '0' && s[i] <= '9'; i++)
		;
	if (i == 0 || i > 3)
		return -1;
	*n = i;
	return 0;
}

/* class "." 1*3digit "." 1*3digit, class given; its length in *len.  0 or -1. */
static int
filter_reply_enhanced(const char *e, char class, size_t *len)
{
	size_t	 i, n;

	if (e[0] != class || e[1] != '.')
		return -1;
	i = 2;
	if (filter_reply_digits(e + i, &n) == -1 || e[i + n] != '.')
		return -1;
	i += n + 1;
	if (filter_reply_digits(e + i, &n) == -1)
		return -1;
	*len = i + n;
	return 0;
}

int
filter_reply_parse(const char *s, struct filter_reply *out, char *err, size_t errlen)
{
	const char	*p;
	size_t		 len, i;

	memset(out, 0, sizeof(*out));
	if (s == NULL || s[0] == '\0')
		return snprintf(err, errlen, "it is empty"), -1;
	if (strlen(s) > FILTER_REPLY_MAX)
		return snprintf(err, errlen, "it is longer than %d bytes", FILTER_REPLY_MAX), -1;
	if ((s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
	    s[2] > '9' || s[3] != ' ')
		return snprintf(err, errlen, "it must start with a code 4xx or 5xx and one "
		    "space"), -1;
	if (filter_reply_enhanced(s + 4, s[0], &len) == -1 || s[4 + len] != ' ')
		return snprintf(err, errlen, "the code must be followed by an enhanced code "
		    "%c.y.z of the same class (y and z of 1 to 3 digits) and a space",
		    s[0]), -1;
	for (p = s + 4 + len; *p == ' '; p++)
		;
	if (*p == '\0')
		return snprintf(err, errlen, "the text after the enhanced code is missing"), -1;
	for (i = 0; p[i] != '\0'; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
			return snprintf(err, errlen, "the text must be printable ASCII (no "
			    "tab, line break or 8-bit byte)"), -1;
	out->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	memcpy(out->enhanced, s + 4, len);
	out->enhanced[len] = '\0';
	memcpy(out->text, p, i + 1);
	return 0;
}
