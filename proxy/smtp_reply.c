/*
 * smtp_reply.c - building the replies we send and reading the replies a
 * backend sends (RFC 5321 4.2, RFC 2034/3463 enhanced codes, RFC 1869
 * EHLO keywords), plus RFC 1891 xtext for XCLIENT and XFORWARD values.
 * See smtp_reply.h.
 *
 * Reading is incremental over a libevent input buffer: each call looks at
 * what is buffered, says NEED_MORE without draining anything until a whole
 * reply is there, then copies it out and drains it.  Only the first four
 * bytes of each line are copied while looking; the whole reply is made
 * contiguous once, when it is complete.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp_reply.h"
#include "util.h"

static int	 is_digit(int);
static int	 word_is(const char *, size_t, const char *);
static void	 reply_add_clean(struct evbuffer *, const char *, size_t);
static void	 reply_add_line(struct evbuffer *, int, int, const char *, const char *,
		    size_t);
static int	 reply_prefix_valid(const unsigned char *, size_t, const unsigned char *);
static enum smtp_reply_status reply_find_end(struct evbuffer *, size_t *);
static void	 reply_keep_line(struct smtp_reply *, size_t *, const char *, size_t);
static void	 reply_parse_enhanced(struct smtp_reply *);
static void	 reply_fill(struct smtp_reply *, const char *, size_t);
static unsigned long long caps_size(const char *);
static unsigned int caps_xattrs(const char *);
static void	 caps_parse_line(struct smtp_caps *, const char *);

static const struct {
	const char	*name;
	unsigned int	 flag;
} cap_table[] = {
	{ "PIPELINING", SMTP_CAP_PIPELINING },
	{ "SIZE", SMTP_CAP_SIZE },
	{ "8BITMIME", SMTP_CAP_8BITMIME },
	{ "ENHANCEDSTATUSCODES", SMTP_CAP_ENHANCEDSTATUSCODES },
	{ "SMTPUTF8", SMTP_CAP_SMTPUTF8 },
	{ "DSN", SMTP_CAP_DSN },
	{ "STARTTLS", SMTP_CAP_STARTTLS },
	{ "XCLIENT", SMTP_CAP_XCLIENT },
	{ "XFORWARD", SMTP_CAP_XFORWARD },
	{ "CHUNKING", SMTP_CAP_CHUNKING },
	{ "AUTH", SMTP_CAP_AUTH },
	{ "BINARYMIME", SMTP_CAP_BINARYMIME },
}, xattr_table[] = {
	{ "NAME", SMTP_XATTR_NAME },
	{ "ADDR", SMTP_XATTR_ADDR },
	{ "PORT", SMTP_XATTR_PORT },
	{ "PROTO", SMTP_XATTR_PROTO },
	{ "HELO", SMTP_XATTR_HELO },
	{ "LOGIN", SMTP_XATTR_LOGIN },
	{ "DESTADDR", SMTP_XATTR_DESTADDR },
	{ "DESTPORT", SMTP_XATTR_DESTPORT },
	{ "IDENT", SMTP_XATTR_IDENT },
	{ "SOURCE", SMTP_XATTR_SOURCE },
};

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* 1 if the n bytes at s spell word, ignoring ASCII case. */
static int
word_is(const char *s, size_t n, const char *word)
{
	size_t	 i;

	if (strlen(word) != n)
		return 0;
	for (i = 0; i < n; i++) {
		int	 a = (unsigned char)s[i], b = (unsigned char)word[i];

		if (a >= 'a' && a <= 'z')
			a -= 'a' - 'A';
		if (b >= 'a' && b <= 'z')
			b -= 'a' - 'A';
		if (a != b)
			return 0;
	}
	return 1;
}

/*
 * Append text with CR, LF and every other control byte turned into a
 * space, so nothing a peer or a filter wrote can end a reply line early.
 */
static void
reply_add_clean(struct evbuffer *out, const char *s, size_t len)
{
	size_t	 i = 0, j;

	while (i < len) {
		for (j = i; j < len && (unsigned char)s[j] >= 0x20 && s[j] != 0x7f; j++)
			;
		evbuffer_add(out, s + i, j - i);
		if (j == len)
			break;
		evbuffer_add(out, " ", 1);
		i = j + 1;
	}
}

/* One line: "code-enh text" or, for the last one, "code enh text". */
static void
reply_add_line(struct evbuffer *out, int code, int last, const char *enhanced,
    const char *text, size_t len)
{
	char	 head[8];

	snprintf(head, sizeof(head), "%03d%c", code, last ? ' ' : '-');
	if (enhanced == NULL && len == 0) {
		/* RFC 5321 4.2: the text is optional, and so is SP before it. */
		evbuffer_add(out, head, last ? 3 : 4);
		evbuffer_add(out, "\r\n", 2);
		return;
	}
	evbuffer_add(out, head, 4);
	if (enhanced != NULL) {
		reply_add_clean(out, enhanced, strlen(enhanced));
		if (len > 0)
			evbuffer_add(out, " ", 1);
	}
	reply_add_clean(out, text, len);
	evbuffer_add(out, "\r\n", 2);
}

int
smtp_reply_add(struct evbuffer *out, int code, const char *enhanced, const char *text)
{
	const char	*nl;
	size_t		 len;

	if (code < 200 || code > 599)
		return -1;
	if (enhanced != NULL && enhanced[0] == '\0')
		enhanced = NULL;
	if (text == NULL)
		text = "";
	len = strlen(text);
	/* A final newline ends the last line; it does not start an empty one. */
	if (len > 0 && text[len - 1] == '\n')
		len--;
	while ((nl = memchr(text, '\n', len)) != NULL) {
		reply_add_line(out, code, 0, enhanced, text, (size_t)(nl - text));
		len -= (size_t)(nl - text) + 1;
		text = nl + 1;
	}
	reply_add_line(out, code, 1, enhanced, text, len);
	return 0;
}

int
smtp_reply_addf(struct evbuffer *out, int code, const char *enhanced, const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[512], *big;
	int	 n, rv;

	if (code < 200 || code > 599)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return smtp_reply_add(out, code, enhanced, "");
	if ((size_t)n < sizeof(buf))
		return smtp_reply_add(out, code, enhanced, buf);
	big = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rv = smtp_reply_add(out, code, enhanced, big);
	free(big);
	return rv;
}

/*
 * Check the first n (at most 4) bytes of a reply line: three digits, the
 * first 2..5, equal to the first line's code if there was one, then SP,
 * '-' or the end of the line.
 */
static int
reply_prefix_valid(const unsigned char *pfx, size_t n, const unsigned char *code)
{
	size_t	 i;

	for (i = 0; i < n && i < 3; i++)
		if (!is_digit(pfx[i]) || (code != NULL && pfx[i] != code[i]))
			return 0;
	if (n > 0 && (pfx[0] < '2' || pfx[0] > '5'))
		return 0;
	if (n > 3 && pfx[3] != ' ' && pfx[3] != '-' && pfx[3] != '\r' && pfx[3] != '\n')
		return 0;
	return 1;
}

/*
 * Walk the lines at the front of in, without draining, until the last
 * line of a reply.  On COMPLETE *total is the reply's length in bytes.
 */
static enum smtp_reply_status
reply_find_end(struct evbuffer *in, size_t *total)
{
	struct evbuffer_ptr	 pos, eol;
	unsigned char		 pfx[4], code[3];
	size_t			 avail = evbuffer_get_length(in), off = 0, n, eol_len, len;
	int			 first = 1;

	if (avail == 0)
		return SMTP_REPLY_NEED_MORE;
	evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET);
	for (;;) {
		n = avail - off < sizeof(pfx) ? avail - off : sizeof(pfx);
		if (evbuffer_copyout_from(in, &pos, pfx, n) != (ev_ssize_t)n ||
		    !reply_prefix_valid(pfx, n, first ? NULL : code))
			return SMTP_REPLY_MALFORMED;
		eol = evbuffer_search_eol(in, &pos, &eol_len, EVBUFFER_EOL_CRLF);
		if (eol.pos == -1) {
			/* One byte of slack: the CR of a CRLF whose LF is on its way. */
			if (avail - off > SMTP_REPLY_LINE_MAX + 1 || avail > SMTP_REPLY_WIRE_MAX)
				return SMTP_REPLY_MALFORMED;
			return SMTP_REPLY_NEED_MORE;
		}
		len = (size_t)eol.pos - off;
		if (len < 3 || len > SMTP_REPLY_LINE_MAX || (len > 3 && pfx[3] != ' ' &&
		    pfx[3] != '-'))
			return SMTP_REPLY_MALFORMED;
		if (first)
			memcpy(code, pfx, sizeof(code));
		first = 0;
		off = (size_t)eol.pos + eol_len;
		if (off > SMTP_REPLY_WIRE_MAX)
			return SMTP_REPLY_MALFORMED;
		if (len == 3 || pfx[3] == ' ') {
			*total = off;
			return SMTP_REPLY_COMPLETE;
		}
		if (off == avail)
			return SMTP_REPLY_NEED_MORE;
		/* Step from the end of line, not from the start of the buffer. */
		pos = eol;
		if (evbuffer_ptr_set(in, &pos, eol_len, EVBUFFER_PTR_ADD) == -1)
			return SMTP_REPLY_MALFORMED;
	}
}

/* Keep one line's text if there is room; after the first loss keep nothing. */
static void
reply_keep_line(struct smtp_reply *r, size_t *used, const char *text, size_t len)
{
	size_t	 room;

	if (r->truncated)
		return;
	if (r->nlines == SMTP_REPLY_LINES_MAX || *used >= sizeof(r->text)) {
		r->truncated = 1;
		return;
	}
	room = sizeof(r->text) - *used - 1;
	if (len > room) {
		len = room;
		r->truncated = 1;
	}
	memcpy(r->text + *used, text, len);
	r->text[*used + len] = '\0';
	r->line_off[r->nlines++] = *used;
	*used += len + 1;
}

/*
 * RFC 3463: class "." subject "." detail, 1-3 digits each, at the start
 * of the first line.  A class that contradicts the reply code is not
 * taken as an enhanced code; the text then stays as it was.
 */
static void
reply_parse_enhanced(struct smtp_reply *r)
{
	const char	*t = smtp_reply_line(r, 0), *p = t + 1;
	size_t		 n;
	int		 part;

	if ((t[0] != '2' && t[0] != '4' && t[0] != '5') || t[0] - '0' != r->code / 100)
		return;
	for (part = 0; part < 2; part++) {
		if (*p++ != '.')
			return;
		for (n = 0; n < 4 && is_digit(p[n]); n++)
			;
		if (n < 1 || n > 3)
			return;
		p += n;
	}
	if (*p != '\0' && *p != ' ')
		return;
	memcpy(r->enhanced, t, (size_t)(p - t));
	r->enhanced[p - t] = '\0';
}

/* Split a complete, already validated reply of len bytes at p into r. */
static void
reply_fill(struct smtp_reply *r, const char *p, size_t len)
{
	const char	*end = p + len, *nl;
	size_t		 used = 0, n;

	r->code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	r->enhanced[0] = '\0';
	r->nlines = 0;
	r->truncated = 0;
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 3)
			reply_keep_line(r, &used, p + 4, n - 4);
		else
			reply_keep_line(r, &used, "", 0);
		p = nl + 1;
	}
	reply_parse_enhanced(r);
}

enum smtp_reply_status
smtp_reply_read(struct evbuffer *in, struct smtp_reply *reply)
{
	enum smtp_reply_status	 st;
	unsigned char		*p;
	size_t			 total;

	if ((st = reply_find_end(in, &total)) != SMTP_REPLY_COMPLETE)
		return st;
	if ((p = evbuffer_pullup(in, (ev_ssize_t)total)) == NULL)
		return SMTP_REPLY_MALFORMED;
	reply_fill(reply, (const char *)p, total);
	evbuffer_drain(in, total);
	return SMTP_REPLY_COMPLETE;
}

const char *
smtp_reply_line(const struct smtp_reply *reply, size_t i)
{
	if (i >= reply->nlines)
		return "";
	return reply->text + reply->line_off[i];
}

const char *
smtp_reply_text(const struct smtp_reply *reply)
{
	const char	*t = smtp_reply_line(reply, 0);
	size_t		 n = strlen(reply->enhanced);

	if (n > 0 && strncmp(t, reply->enhanced, n) == 0) {
		t += n;
		while (*t == ' ')
			t++;
	}
	return t;
}

void
smtp_reply_relay(struct evbuffer *out, const struct smtp_reply *reply,
    const char *default_enhanced)
{
	const char	*enhanced = NULL, *t;
	size_t		 i;

	if (reply->enhanced[0] == '\0' && default_enhanced != NULL &&
	    default_enhanced[0] != '\0')
		enhanced = default_enhanced;
	if (reply->nlines == 0) {
		reply_add_line(out, reply->code, 1, enhanced, "", 0);
		return;
	}
	for (i = 0; i < reply->nlines; i++) {
		t = smtp_reply_line(reply, i);
		reply_add_line(out, reply->code, i + 1 == reply->nlines, enhanced, t, strlen(t));
	}
}

/* "SIZE 10240000": the number, or 0 when absent or absurd. */
static unsigned long long
caps_size(const char *args)
{
	unsigned long long	 v = 0;

	while (*args == ' ')
		args++;
	for (; is_digit(*args); args++) {
		if (v > (~0ULL - (unsigned)(*args - '0')) / 10)
			return 0;
		v = v * 10 + (unsigned)(*args - '0');
	}
	return *args == '\0' || *args == ' ' ? v : 0;
}

/* "XCLIENT NAME ADDR ...": the attributes we know, in any case. */
static unsigned int
caps_xattrs(const char *args)
{
	unsigned int	 attrs = 0;
	size_t		 n, i;

	for (;;) {
		while (*args == ' ')
			args++;
		if (*args == '\0')
			return attrs;
		n = strcspn(args, " ");
		for (i = 0; i < nitems(xattr_table); i++)
			if (word_is(args, n, xattr_table[i].name))
				attrs |= xattr_table[i].flag;
		args += n;
	}
}

/* One EHLO keyword line; "AUTH=LOGIN" is the pre-RFC 4954 spelling of AUTH. */
static void
caps_parse_line(struct smtp_caps *caps, const char *line)
{
	size_t	 n = strcspn(line, " =");
	size_t	 i;

	for (i = 0; i < nitems(cap_table); i++) {
		if (!word_is(line, n, cap_table[i].name))
			continue;
		caps->flags |= cap_table[i].flag;
		if (cap_table[i].flag == SMTP_CAP_SIZE && line[n] == ' ')
			caps->size = caps_size(line + n);
		else if (cap_table[i].flag == SMTP_CAP_XCLIENT && line[n] == ' ')
			caps->xclient |= caps_xattrs(line + n);
		else if (cap_table[i].flag == SMTP_CAP_XFORWARD && line[n] == ' ')
			caps->xforward |= caps_xattrs(line + n);
		return;
	}
}

void
smtp_caps_parse(const struct smtp_reply *reply, struct smtp_caps *caps)
{
	size_t	 i;

	memset(caps, 0, sizeof(*caps));
	if (reply->code != 250)
		return;
	for (i = 1; i < reply->nlines; i++)
		caps_parse_line(caps, smtp_reply_line(reply, i));
}

void
smtp_xtext_encode(struct evbuffer *out, const char *value)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p = (const unsigned char *)value;
	size_t			 i = 0, j;
	char			 esc[3];

	if (value == NULL)
		return;
	for (;;) {
		for (j = i; p[j] >= 33 && p[j] <= 126 && p[j] != '+' && p[j] != '='; j++)
			;
		evbuffer_add(out, p + i, j - i);
		if (p[j] == '\0')
			return;
		esc[0] = '+';
		esc[1] = hex[p[j] >> 4];
		esc[2] = hex[p[j] & 15];
		evbuffer_add(out, esc, sizeof(esc));
		i = j + 1;
	}
}
