/*
 * dmarc_from.c - the author domain of a From field (RFC 5322 3.4, with
 * the obsolete forms of 4.4), for DMARC.
 *
 * The value is split into mailboxes at the commas, colons and semicolons
 * that stand outside comments, quoted strings and angle brackets (so a
 * display name cannot hide an address separator); each mailbox gives the
 * domain of its angle-addr, or of its bare addr-spec.  Anything that does
 * not read as addresses is DMARC_FROM_BAD rather than a guess: a forger
 * who gets us to read a different domain than the reader's mail client
 * shows has won.
 */
#include "autoconf.h"

#include <string.h>

#include "dmarc_from.h"

static int	 from_is_wsp(char);
static const char *from_skip_comment(const char *, const char *);
static const char *from_skip_quoted(const char *, const char *);
static const char *from_skip_angle(const char *, const char *);
static int	 from_domain_text(const char *, const char *, char *);
static int	 from_addr_domain(const char *, const char *, char *);
static int	 from_mailbox_domain(const char *, const char *, char *);
static int	 from_add(const char *, const char *, char *, int *, int *);

static int
from_is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* p is at "(": past the matching ")", nesting and quoted-pairs minded. */
static const char *
from_skip_comment(const char *p, const char *end)
{
	size_t	 depth = 0;

	for (; p < end; p++) {
		if (*p == '\\') {
			if (++p == end)
				return NULL;
		} else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
	}
	return NULL;
}

/* p is at the opening quote: past the closing one. */
static const char *
from_skip_quoted(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\') {
			if (++p == end)
				return NULL;
		} else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* p is at "<": past the matching ">", with no "<" inside. */
static const char *
from_skip_angle(const char *p, const char *end)
{
	for (p++; p < end; ) {
		if (*p == '(')
			p = from_skip_comment(p, end);
		else if (*p == '"')
			p = from_skip_quoted(p, end);
		else if (*p == '<')
			return NULL;
		else if (*p++ == '>')
			return p;
		if (p == NULL)
			return NULL;
	}
	return NULL;
}

/*
 * The domain part p[0..end) without its comments and folding: white space
 * may stand only around dots (obs-domain), and a literal is no DNS name.
 */
static int
from_domain_text(const char *p, const char *end, char *domain)
{
	char	 buf[DMARC_DOMAIN_MAX];
	size_t	 n = 0;
	int	 gap = 0;

	while (p < end) {
		if (*p == '(') {
			if ((p = from_skip_comment(p, end)) == NULL)
				return -1;
			gap = 1;
			continue;
		}
		if (from_is_wsp(*p)) {
			p++;
			gap = 1;
			continue;
		}
		if (*p == '[' || *p == '"' || *p == '@' || *p == '<' || *p == '>' ||
		    n + 1 >= sizeof(buf))
			return -1;
		if (gap && n > 0 && buf[n - 1] != '.' && *p != '.')
			return -1;	/* two atoms side by side */
		buf[n++] = *p++;
		gap = 0;
	}
	return dmarc_domain_to_ascii(buf, n, domain);
}

/* The domain of an addr-spec (an obs-route before it skipped). */
static int
from_addr_domain(const char *p, const char *end, char *domain)
{
	const char	*at = NULL;

	while (p < end && (from_is_wsp(*p) || *p == '(')) {
		if (*p != '(')
			p++;
		else if ((p = from_skip_comment(p, end)) == NULL)
			return -1;
	}
	if (p < end && *p == '@') {	/* obs-route: "@a,@b:" */
		while (p < end && *p != ':')
			p++;
		if (p++ == end)
			return -1;
	}
	while (p < end) {
		if (*p == '(')
			p = from_skip_comment(p, end);
		else if (*p == '"')
			p = from_skip_quoted(p, end);
		else if (*p++ == '@') {
			if (at != NULL)
				return -1;	/* a second "@" outside quotes */
			at = p;
		}
		if (p == NULL)
			return -1;
	}
	return at != NULL ? from_domain_text(at, end, domain) : -1;
}

/* One mailbox s[0..end): 1 with its domain, 0 when it is only CFWS, -1 bad. */
static int
from_mailbox_domain(const char *s, const char *end, char *domain)
{
	const char	*p = s, *lt = NULL, *gt = NULL;
	int		 words = 0;

	while (p < end) {
		if (*p == '(') {
			if ((p = from_skip_comment(p, end)) == NULL)
				return -1;
			continue;
		}
		if (from_is_wsp(*p)) {
			p++;
			continue;
		}
		if (lt != NULL || *p == '>')
			return -1;	/* text after the angle-addr, or a stray ">" */
		words = 1;
		if (*p == '"')
			p = from_skip_quoted(p, end);
		else if (*p == '<') {
			lt = p;
			p = from_skip_angle(p, end);
			gt = p != NULL ? p - 1 : NULL;
		} else
			p++;
		if (p == NULL)
			return -1;
	}
	if (!words)
		return 0;
	if (lt != NULL)
		return from_addr_domain(lt + 1, gt, domain) == 0 ? 1 : -1;
	return from_addr_domain(s, end, domain) == 0 ? 1 : -1;
}

/* Fold the mailbox s[0..end) into the result so far. */
static int
from_add(const char *s, const char *end, char *domain, int *count, int *multi)
{
	char	 d[DMARC_DOMAIN_MAX];
	int	 rc = from_mailbox_domain(s, end, d);

	if (rc <= 0)
		return rc;
	if ((*count)++ == 0)
		memcpy(domain, d, strlen(d) + 1);
	else if (strcmp(domain, d) != 0)
		*multi = 1;
	return 0;
}

enum dmarc_from_status
dmarc_from_parse(const char *value, char *domain)
{
	const char	*p = value, *end = value + strlen(value), *seg = value;
	int		 in_group = 0, count = 0, multi = 0;

	while (p < end) {
		if (*p == '(')
			p = from_skip_comment(p, end);
		else if (*p == '"')
			p = from_skip_quoted(p, end);
		else if (*p == '<')
			p = from_skip_angle(p, end);
		else if (*p == ':') {	/* a group: its display name is no mailbox */
			if (in_group++)
				return DMARC_FROM_BAD;
			seg = ++p;
		} else if (*p == ',' || *p == ';') {
			if (*p == ';' && !in_group--)
				return DMARC_FROM_BAD;
			if (from_add(seg, p, domain, &count, &multi) == -1)
				return DMARC_FROM_BAD;
			seg = ++p;
		} else
			p++;
		if (p == NULL)
			return DMARC_FROM_BAD;
	}
	if (from_add(seg, end, domain, &count, &multi) == -1)
		return DMARC_FROM_BAD;
	if (count == 0)
		return DMARC_FROM_EMPTY;
	return multi ? DMARC_FROM_MULTI : DMARC_FROM_OK;
}

const char *
dmarc_from_status_name(enum dmarc_from_status status)
{
	switch (status) {
	case DMARC_FROM_OK:
		return "ok";
	case DMARC_FROM_EMPTY:
		return "empty";
	case DMARC_FROM_MULTI:
		return "multi";
	default:
		return "bad";
	}
}
