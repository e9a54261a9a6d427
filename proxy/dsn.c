/*
 * dsn.c - compose RFC 3464 delivery status notifications (see dsn.h).
 *
 * The parts are written into separate buffers first, so the MIME boundary
 * can be chosen last and checked against everything it must not occur in.
 * All text from outside (remote replies, addresses, ENVID, ORCPT) goes
 * through dsn_clean(): CR, LF, NUL and other control bytes become '?' or
 * spaces, so nothing a remote says can end a header line, start a header
 * or a MIME part.  Lines are folded at spaces near 78 columns and broken
 * hard before 998 bytes; every line that could start with '.' is
 * dot-stuffed as it is written, except those copied from the original,
 * which are dot-stuffed already.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsn.h"
#include "log.h"
#include "util.h"

#define DSN_LINE_MAX	998		/* RFC 5322 2.1.1, without CRLF */
#define DSN_FOLD_AT	78		/* fold header fields here when possible */
#define DSN_FIELD_MAX	4096		/* outside text kept per field */
#define DSN_HEADERS_MAX	(256 * 1024)	/* original header section returned */

/* A growing byte buffer. */
struct dsn_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static void	 dsn_buf_add(struct dsn_buf *, const void *, size_t);
static void	 dsn_buf_printf(struct dsn_buf *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static void	 dsn_clean(const char *, int, char *, size_t);
static int	 dsn_has_8bit(const char *);
static void	 dsn_line(struct dsn_buf *, const char *, size_t);
static void	 dsn_field(struct dsn_buf *, const char *, const char *);
static void	 dsn_wrap(struct dsn_buf *, const char *);
static void	 dsn_date(time_t, char *, size_t);
static const char *dsn_status(const struct dsn_rcpt *);
static void	 dsn_compose_text(struct dsn_buf *, const struct dsn_report *, int);
static void	 dsn_compose_status(struct dsn_buf *, const struct dsn_report *, int *);
static void	 dsn_compose_rcpt(struct dsn_buf *, const struct dsn_report *,
		    const struct dsn_rcpt *, int *);
static size_t	 dsn_copy_original(struct dsn_buf *, const char *, size_t, int, int *);
static int	 dsn_contains(const struct dsn_buf *, const char *);
static uint64_t	 dsn_random(uint64_t *);
static void	 dsn_compose_header(struct dsn_buf *, const struct dsn_report *, const char *, int,
		    int, uint64_t *);
static struct dsn_rcpt *dsn_select(const struct dsn_report *, struct dsn_report *);
static void	 dsn_choose_boundary(char *, size_t, const struct dsn_buf *, size_t, uint64_t *);

static void
dsn_buf_add(struct dsn_buf *b, const void *data, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		while (b->len + len + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 4096;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
}

static void
dsn_buf_printf(struct dsn_buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("vasprintf");
	dsn_buf_add(b, s, (size_t)n);
	free(s);
}

/*
 * Outside text into out: line breaks, tabs and runs of spaces become one
 * space, other
 * control bytes (and 8-bit bytes unless utf8) '?', leading and trailing
 * spaces dropped, at most size - 1 bytes.
 */
static void
dsn_clean(const char *in, int utf8, char *out, size_t size)
{
	const unsigned char	*s = (const unsigned char *)(in ? in : "");
	size_t			 n = 0;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	for (; *s != '\0' && n + 1 < size; s++) {
		if (*s == '\r' || *s == '\n' || *s == '\t' || *s == ' ') {
			if (n > 0 && out[n - 1] != ' ')
				out[n++] = ' ';
		} else if (*s < 0x20 || *s == 0x7f || (*s >= 0x80 && !utf8))
			out[n++] = '?';
		else
			out[n++] = (char)*s;
	}
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

static int
dsn_has_8bit(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* One generated line (no CR or LF in it), dot-stuffed, CRLF added. */
static void
dsn_line(struct dsn_buf *b, const char *s, size_t len)
{
	if (len > 0 && s[0] == '.')
		dsn_buf_add(b, ".", 1);
	dsn_buf_add(b, s, len);
	dsn_buf_add(b, "\r\n", 2);
}

/*
 * "Name: value" folded before a space near DSN_FOLD_AT (the space starts
 * the continuation line, RFC 5322 2.2.3); a word longer than a line is
 * broken hard and its rest gets a leading space.  value is clean (no CR
 * or LF, no runs of spaces), so continuations can neither start a header
 * nor need stuffing.
 */
static void
dsn_field(struct dsn_buf *b, const char *name, const char *value)
{
	char	 line[DSN_LINE_MAX + 1];
	size_t	 len, cut, room, vlen = strlen(value);

	len = (size_t)snprintf(line, sizeof(line), "%s: ", name);
	for (;;) {
		cut = vlen;
		if (len + vlen > DSN_FOLD_AT) {
			room = len < DSN_FOLD_AT ? DSN_FOLD_AT - len : 0;
			for (cut = room; cut > 0 && value[cut] != ' '; cut--)
				;
			if (cut == 0)
				for (cut = 1; cut < vlen && value[cut] != ' '; cut++)
					;
			if (len + cut > DSN_LINE_MAX)
				cut = DSN_LINE_MAX - len;
		}
		memcpy(line + len, value, cut);
		dsn_line(b, line, len + cut);
		value += cut;
		vlen -= cut;
		if (vlen == 0)
			break;
		len = 0;
		if (value[0] != ' ')
			line[len++] = ' ';
	}
}

/*
 * Free text (clean) as lines of at most DSN_FOLD_AT where it has spaces;
 * continuation lines are indented, so text from outside never starts a
 * line of the part (no "--boundary", no "Header:" look-alike, no dot).
 */
static void
dsn_wrap(struct dsn_buf *b, const char *text)
{
	char	 line[DSN_LINE_MAX + 1];
	size_t	 len = strlen(text), cut, indent = 0, room;

	while (len > 0) {
		room = DSN_FOLD_AT - indent;
		cut = len;
		if (len > room) {
			for (cut = room; cut > 0 && text[cut] != ' '; cut--)
				;
			if (cut == 0)
				cut = len < DSN_LINE_MAX - indent ? len : DSN_LINE_MAX - indent;
		}
		memset(line, ' ', indent);
		memcpy(line + indent, text, cut);
		dsn_line(b, line, indent + cut);
		text += cut;
		len -= cut;
		while (len > 0 && *text == ' ') {
			text++;
			len--;
		}
		indent = 4;
	}
}

/* RFC 5322 date in UTC, without the locale. */
static void
dsn_date(time_t t, char *buf, size_t size)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
		"Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm	 tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
	    tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
}

/* The recipient's status if well formed (RFC 3463: class.subject.detail), else a default. */
static const char *
dsn_status(const struct dsn_rcpt *rc)
{
	const char	*s = rc->status;
	size_t		 a, b, c;

	if (s != NULL && (s[0] == '2' || s[0] == '4' || s[0] == '5') && s[1] == '.') {
		a = strspn(s + 2, "0123456789");
		b = a > 0 && a <= 3 && s[2 + a] == '.' ? strspn(s + 3 + a, "0123456789") : 0;
		c = 3 + a + b;
		if (a > 0 && a <= 3 && b > 0 && b <= 3 && s[c] == '\0')
			return s;
	}
	return rc->action == DSN_ACTION_FAILED ? "5.0.0" : "4.0.0";
}

int
dsn_notify_parse(const char *value, unsigned int *flags)
{
	static const struct {
		const char	*word;
		unsigned int	 flag;
	} words[] = {
		{ "NEVER", DSN_NOTIFY_NEVER }, { "SUCCESS", DSN_NOTIFY_SUCCESS },
		{ "FAILURE", DSN_NOTIFY_FAILURE }, { "DELAY", DSN_NOTIFY_DELAY }
	};
	const char	*p = value, *end;
	size_t		 i, len;

	*flags = 0;
	while (*p != '\0') {
		end = strchr(p, ',');
		len = end ? (size_t)(end - p) : strlen(p);
		for (i = 0; i < nitems(words); i++)
			if (strlen(words[i].word) == len && strncasecmp(p, words[i].word, len) == 0)
				break;
		if (i == nitems(words))
			return -1;
		*flags |= words[i].flag;
		p += len;
		if (*p == ',' && *++p == '\0')
			return -1;
	}
	/* RFC 3461 4.1: NEVER stands alone. */
	if (*flags == 0 || ((*flags & DSN_NOTIFY_NEVER) && *flags != DSN_NOTIFY_NEVER))
		return -1;
	return 0;
}

char *
dsn_xtext_decode(const char *x)
{
	char	*out = xmalloc(strlen(x) + 1), *o = out;
	int	 hi, lo;

	for (; *x != '\0'; x++) {
		if ((unsigned char)*x < 0x21 || (unsigned char)*x > 0x7e || *x == '=')
			goto bad;
		if (*x != '+') {
			*o++ = *x;
			continue;
		}
		if (!isxdigit((unsigned char)x[1]) || !isxdigit((unsigned char)x[2]) ||
		    islower((unsigned char)x[1]) || islower((unsigned char)x[2]))
			goto bad;
		hi = isdigit((unsigned char)x[1]) ? x[1] - '0' : x[1] - 'A' + 10;
		lo = isdigit((unsigned char)x[2]) ? x[2] - '0' : x[2] - 'A' + 10;
		*o++ = (char)(hi << 4 | lo);
		x += 2;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

int
dsn_wanted(const char *sender, unsigned int notify, enum dsn_action action)
{
	if (sender == NULL || sender[0] == '\0' || strcmp(sender, "<>") == 0)
		return 0;
	if (notify & DSN_NOTIFY_NEVER)
		return 0;
	if (notify == 0)
		return 1;
	if (action == DSN_ACTION_FAILED)
		return (notify & DSN_NOTIFY_FAILURE) != 0;
	return (notify & DSN_NOTIFY_DELAY) != 0;
}

/* Part 1: what happened, for people. */
static void
dsn_compose_text(struct dsn_buf *b, const struct dsn_report *r, int failed)
{
	char	 host[256], addr[DSN_FIELD_MAX], diag[DSN_FIELD_MAX], mta[256], line[DSN_FIELD_MAX * 3];
	size_t	 i;

	dsn_clean(r->reporting_mta, 0, host, sizeof(host));
	dsn_buf_printf(b, "This is the mail system at host %s.\r\n\r\n", host);
	if (failed)
		dsn_wrap(b, "I'm sorry to have to inform you that your message could not be "
		    "delivered to one or more recipients. The reasons are given below.");
	else
		dsn_wrap(b, "THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE. "
		    "Your message could not be delivered yet to the recipients below; "
		    "delivery will be retried.");
	dsn_buf_add(b, "\r\n", 2);
	for (i = 0; i < r->nrcpts; i++) {
		const struct dsn_rcpt *rc = &r->rcpts[i];

		dsn_clean(rc->addr, r->smtputf8, addr, sizeof(addr));
		dsn_clean(rc->diagnostic, r->smtputf8, diag, sizeof(diag));
		dsn_clean(rc->remote_mta, 0, mta, sizeof(mta));
		if (mta[0] != '\0')
			snprintf(line, sizeof(line), "<%s>: host %s said: %s", addr, mta,
			    diag[0] ? diag : "(no reply text)");
		else
			snprintf(line, sizeof(line), "<%s>: %s", addr,
			    diag[0] ? diag : "delivery failed");
		dsn_wrap(b, line);
		dsn_buf_add(b, "\r\n", 2);
	}
}

/* Part 2: the machine-readable report. */
static void
dsn_compose_status(struct dsn_buf *b, const struct dsn_report *r, int *utf8)
{
	char	 val[DSN_FIELD_MAX + 16], clean[DSN_FIELD_MAX];
	size_t	 i;

	dsn_clean(r->reporting_mta, 0, clean, sizeof(clean));
	snprintf(val, sizeof(val), "dns; %s", clean);
	dsn_field(b, "Reporting-MTA", val);
	if (r->queue_id != NULL) {
		dsn_clean(r->queue_id, 0, clean, sizeof(clean));
		dsn_field(b, "X-Sluice-Queue-ID", clean);
	}
	if (r->envid != NULL) {
		dsn_clean(r->envid, 0, clean, sizeof(clean));
		dsn_field(b, "Original-Envelope-Id", clean);
	}
	if (r->arrival != 0) {
		dsn_date(r->arrival, val, sizeof(val));
		dsn_field(b, "Arrival-Date", val);
	}
	for (i = 0; i < r->nrcpts; i++)
		dsn_compose_rcpt(b, r, &r->rcpts[i], utf8);
}

static void
dsn_compose_rcpt(struct dsn_buf *b, const struct dsn_report *r, const struct dsn_rcpt *rc,
    int *utf8)
{
	char		 val[DSN_FIELD_MAX + 16], clean[DSN_FIELD_MAX];
	const char	*semi;
	int		 u8 = r->smtputf8 && dsn_has_8bit(rc->addr);

	dsn_buf_add(b, "\r\n", 2);
	if (rc->orcpt != NULL && (semi = strchr(rc->orcpt, ';')) != NULL) {
		dsn_clean(rc->orcpt, r->smtputf8, clean, sizeof(clean));
		dsn_field(b, "Original-Recipient", clean);
		*utf8 |= r->smtputf8 && dsn_has_8bit(rc->orcpt);
	}
	dsn_clean(rc->addr, r->smtputf8, clean, sizeof(clean));
	snprintf(val, sizeof(val), "%s; %s", u8 ? "utf-8" : "rfc822", clean);
	dsn_field(b, "Final-Recipient", val);
	*utf8 |= u8;
	dsn_field(b, "Action", rc->action == DSN_ACTION_FAILED ? "failed" : "delayed");
	dsn_field(b, "Status", dsn_status(rc));
	if (rc->remote_mta != NULL) {
		dsn_clean(rc->remote_mta, 0, clean, sizeof(clean));
		snprintf(val, sizeof(val), "dns; %s", clean);
		dsn_field(b, "Remote-MTA", val);
	}
	if (rc->diagnostic != NULL) {
		dsn_clean(rc->diagnostic, r->smtputf8, clean, sizeof(clean));
		*utf8 |= r->smtputf8 && dsn_has_8bit(clean);
		snprintf(val, sizeof(val), "%s; %s", rc->diagnostic_smtp ? "smtp" : "x-sluice",
		    clean);
		dsn_field(b, "Diagnostic-Code", val);
	}
	if (rc->last_attempt != 0) {
		dsn_date(rc->last_attempt, val, sizeof(val));
		dsn_field(b, "Last-Attempt-Date", val);
	}
	if (rc->action == DSN_ACTION_DELAYED && rc->retry_until != 0) {
		dsn_date(rc->retry_until, val, sizeof(val));
		dsn_field(b, "Will-Retry-Until", val);
	}
}

/*
 * Part 3: the original's header section (headers_only) or all of it,
 * already in wire form: lines copied as they are except that NUL and
 * stray CR become '?', a missing final CRLF is added, and a line longer
 * than DSN_LINE_MAX is broken (a header continuation gets a leading
 * space, a body piece starting with '.' is stuffed).  Returns the bytes
 * of the original read.
 */
static size_t
dsn_copy_original(struct dsn_buf *b, const char *orig, size_t len, int headers_only,
    int *eightbit)
{
	size_t		 pos = 0, end, n, i, piece;
	const char	*nl;
	char		 line[DSN_LINE_MAX + 2];

	while (pos < len) {
		nl = memchr(orig + pos, '\n', len - pos);
		end = nl ? (size_t)(nl - orig) + 1 : len;
		n = end - pos;
		while (n > 0 && (orig[pos + n - 1] == '\n' || orig[pos + n - 1] == '\r'))
			n--;
		if (headers_only && n == 0)
			break;	/* the empty line ending the header section */
		if (headers_only && b->len + n > DSN_HEADERS_MAX)
			break;
		for (i = 0; i < n; i += piece) {
			piece = n - i > DSN_LINE_MAX - 1 ? DSN_LINE_MAX - 1 : n - i;
			memcpy(line + 1, orig + pos + i, piece);
			for (size_t k = 1; k <= piece; k++) {
				if (line[k] == '\0' || line[k] == '\r')
					line[k] = '?';
				else if ((unsigned char)line[k] >= 0x80)
					*eightbit = 1;
			}
			if (i == 0) {
				/* A lone "." cannot be in wire form; never pass one on. */
				if (n == 1 && line[1] == '.')
					dsn_buf_add(b, ".", 1);
				dsn_buf_add(b, line + 1, piece);
			} else {
				line[0] = headers_only ? ' ' : '.';
				if (!headers_only && line[1] != '.')
					dsn_buf_add(b, line + 1, piece);
				else
					dsn_buf_add(b, line, piece + 1);
			}
			dsn_buf_add(b, "\r\n", 2);
		}
		if (n == 0)
			dsn_buf_add(b, "\r\n", 2);
		pos = end;
	}
	return pos;
}

static int
dsn_contains(const struct dsn_buf *b, const char *needle)
{
	return b->len > 0 && memmem(b->p, b->len, needle, strlen(needle)) != NULL;
}

static uint64_t
dsn_random(uint64_t *state)
{
	uint64_t	 z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The top-level header section, up to the blank line. */
static void
dsn_compose_header(struct dsn_buf *msg, const struct dsn_report *r, const char *boundary,
    int failed, int eightbit, uint64_t *rng)
{
	char	 date[64], host[256], to[DSN_FIELD_MAX], val[DSN_FIELD_MAX + 64];
	time_t	 now = r->now ? r->now : time(NULL);

	dsn_clean(r->reporting_mta, 0, host, sizeof(host));
	dsn_clean(r->sender, r->smtputf8, to, sizeof(to));
	dsn_date(now, date, sizeof(date));
	dsn_field(msg, "Date", date);
	snprintf(val, sizeof(val), "\"Mail Delivery System\" <MAILER-DAEMON@%s>", host);
	dsn_field(msg, "From", val);
	snprintf(val, sizeof(val), "<%s>", to);
	dsn_field(msg, "To", val);
	dsn_field(msg, "Subject", failed ? "Undelivered Mail Returned to Sender" :
	    "Delayed Mail (still being retried)");
	snprintf(val, sizeof(val), "<%016llx.%llx@%s>", (unsigned long long)dsn_random(rng),
	    (unsigned long long)now, host);
	dsn_field(msg, "Message-ID", val);
	dsn_field(msg, "Auto-Submitted", "auto-replied");
	dsn_field(msg, "MIME-Version", "1.0");
	snprintf(val, sizeof(val), "multipart/report; report-type=delivery-status; "
	    "boundary=\"%s\"", boundary);
	dsn_field(msg, "Content-Type", val);
	if (eightbit)
		dsn_field(msg, "Content-Transfer-Encoding", "8bit");
	dsn_buf_add(msg, "\r\n", 2);
}

/*
 * A boundary found in none of the parts.  100 draws of 64 random bits
 * cannot all collide with content in practice; the last one is used.
 */
static void
dsn_choose_boundary(char *boundary, size_t size, const struct dsn_buf *parts, size_t nparts,
    uint64_t *rng)
{
	size_t	 i, p;

	for (i = 0; i < 100; i++) {
		snprintf(boundary, size, "=_sluice_%016llx_%llu",
		    (unsigned long long)dsn_random(rng), (unsigned long long)i);
		for (p = 0; p < nparts && !dsn_contains(&parts[p], boundary); p++)
			;
		if (p == nparts)
			return;
	}
}

/*
 * The recipients NOTIFY wants reported, in *w (a copy of r pointing at
 * them); NULL when there are none or the sender is null.  Caller frees.
 */
static struct dsn_rcpt *
dsn_select(const struct dsn_report *r, struct dsn_report *w)
{
	struct dsn_rcpt	*sel;
	size_t		 i, n = 0;

	if (r->nrcpts == 0 || !dsn_wanted(r->sender, 0, DSN_ACTION_FAILED))
		return NULL;
	sel = xcalloc(r->nrcpts, sizeof(*sel));
	for (i = 0; i < r->nrcpts; i++)
		if (dsn_wanted(r->sender, r->rcpts[i].notify, r->rcpts[i].action))
			sel[n++] = r->rcpts[i];
	if (n == 0) {
		free(sel);
		return NULL;
	}
	*w = *r;
	w->rcpts = sel;
	w->nrcpts = n;
	return sel;
}

int
dsn_compose(const struct dsn_report *r, const char *orig, size_t orig_len,
    struct dsn_message *out)
{
	struct dsn_buf	 part[3] = { { 0 }, { 0 }, { 0 } }, msg = { 0 };
	struct dsn_report wanted;
	struct dsn_rcpt	*sel;
	char		 boundary[80];
	size_t		 i, limit = r->full_limit ? r->full_limit : DSN_FULL_LIMIT_DEFAULT;
	uint64_t	 rng = r->seed ? r->seed : random_u64();
	int		 failed = 0, utf8 = 0, eightbit = 0;
	int		 full = r->ret_full && orig_len <= limit;

	memset(out, 0, sizeof(*out));
	if ((sel = dsn_select(r, &wanted)) == NULL)
		return -1;
	r = &wanted;
	for (i = 0; i < r->nrcpts; i++)
		failed |= r->rcpts[i].action == DSN_ACTION_FAILED;
	dsn_compose_text(&part[0], r, failed);
	dsn_compose_status(&part[1], r, &utf8);
	dsn_copy_original(&part[2], orig ? orig : "", orig ? orig_len : 0, !full, &eightbit);
	dsn_choose_boundary(boundary, sizeof(boundary), part, 3, &rng);
	utf8 |= r->smtputf8 && (dsn_has_8bit(r->sender) || dsn_has_8bit(part[0].p));
	eightbit |= utf8;
	dsn_compose_header(&msg, r, boundary, failed, eightbit, &rng);
	dsn_buf_printf(&msg, "This is a MIME-encapsulated message.\r\n\r\n--%s\r\n"
	    "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=%s\r\n\r\n", boundary, utf8 ? "utf-8" : "us-ascii");
	dsn_buf_add(&msg, part[0].p, part[0].len);
	dsn_buf_printf(&msg, "\r\n--%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/%sdelivery-status\r\n\r\n", boundary, utf8 ? "global-" : "");
	dsn_buf_add(&msg, part[1].p, part[1].len);
	dsn_buf_printf(&msg, "\r\n--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n%s\r\n",
	    boundary, full ? "Undelivered Message" : "Undelivered Message Headers",
	    full ? "message/rfc822" : "text/rfc822-headers",
	    eightbit ? "Content-Transfer-Encoding: 8bit\r\n" : "");
	if (part[2].len > 0)
		dsn_buf_add(&msg, part[2].p, part[2].len);
	dsn_buf_printf(&msg, "\r\n--%s--\r\n", boundary);
	for (i = 0; i < nitems(part); i++)
		free(part[i].p);
	free(sel);
	out->data = msg.p;
	out->len = msg.len;
	out->eightbit = eightbit;
	out->smtputf8 = utf8;
	return 0;
}

void
dsn_message_clear(struct dsn_message *m)
{
	free(m->data);
	memset(m, 0, sizeof(*m));
}
