/*
 * relay_addr.c - the pure half of the relay filter: the client networks
 * (parsed by filters/common/net.c), the local domain set, the analysis of
 * a recipient and the decision.  See relay_addr.h.
 *
 * The recipient is hostile text.  It is read once, left to right, with
 * ASCII-only comparisons (no locale may change a verdict), and nothing is
 * rewritten: what is judged is what the backend will be sent.  Every form
 * that some mail server somewhere routes onwards ('%', '!', quoted '@',
 * source routes, address literals, a trailing dot) is refused for clients
 * that may not relay, even in front of a backend that would not route it:
 * the proxy cannot know what the backend does, and a legitimate sender
 * never needs these forms to reach a local mailbox.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_addr.h"

#define RELAY_LABEL_MAX		63

static int	 relay_lower(int);
static int	 relay_is_letdig(int);
static int	 relay_is_atext(int);
static int	 relay_bytes_equal_nocase(const char *, const char *, size_t);
static int	 relay_domain_syntax(const char *, size_t);
static int	 relay_strings_push(char ***, size_t *, size_t *, char *);
static int	 relay_strcmp_sort(const void *, const void *);
static int	 relay_set_has(char *const *, size_t, const char *);
static enum relay_reason relay_local_quoted(const char *, const char **);
static enum relay_reason relay_local_dotted(const char *, const char **);
static enum relay_reason relay_domain_check(const struct relay_policy *, const char *);

static const char *const relay_reason_names[] = {
	[RELAY_ALLOW_NETWORK] = "network",
	[RELAY_ALLOW_AUTH] = "authenticated",
	[RELAY_ALLOW_LOCAL] = "local",
	[RELAY_ALLOW_POSTMASTER] = "postmaster",
	[RELAY_REFUSE_EMPTY] = "empty",
	[RELAY_REFUSE_SOURCE_ROUTE] = "source-route",
	[RELAY_REFUSE_QUOTED] = "quoted-local-part",
	[RELAY_REFUSE_PERCENT] = "percent-hack",
	[RELAY_REFUSE_BANG] = "bang-path",
	[RELAY_REFUSE_MULTIPLE_AT] = "multiple-at",
	[RELAY_REFUSE_NO_DOMAIN] = "no-domain",
	[RELAY_REFUSE_IP_LITERAL] = "ip-literal",
	[RELAY_REFUSE_TRAILING_DOT] = "trailing-dot",
	[RELAY_REFUSE_SYNTAX] = "bad-syntax",
	[RELAY_REFUSE_NOT_LOCAL] = "not-local",
};

static int
relay_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
relay_is_letdig(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext, ASCII part; UTF-8 bytes are the caller's business. */
static int
relay_is_atext(int c)
{
	return relay_is_letdig(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int
relay_bytes_equal_nocase(const char *a, const char *b, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (relay_lower((unsigned char)a[i]) != relay_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* --- Domain sets --------------------------------------------------------- */

/*
 * A domain name as a path may carry it: labels of letters, digits and
 * hyphens (or UTF-8 under SMTPUTF8), 1..63 bytes, at most 255 in all.
 * Returns 0 when well formed, else -1.
 */
static int
relay_domain_syntax(const char *d, size_t len)
{
	size_t	 i, label = 0;

	if (len == 0 || len > RELAY_DOMAIN_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char	 c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (relay_is_letdig(c) || c == '-' || c >= 0x80) {
			if (++label > RELAY_LABEL_MAX)
				return -1;
		} else
			return -1;
	}
	return label == 0 ? -1 : 0;
}

static int
relay_strings_push(char ***v, size_t *n, size_t *cap, char *s)
{
	char	**nv;
	size_t	 ncap;

	if (*n == *cap) {
		ncap = *cap ? *cap * 2 : 8;
		if ((nv = reallocarray(*v, ncap, sizeof(*nv))) == NULL)
			return -1;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = s;
	return 0;
}

int
relay_policy_add_domain(struct relay_policy *p, const char *s, char *err, size_t errlen)
{
	const char	*name = s;
	char		*copy;
	size_t		 len, i;
	int		 parent = 0, rc;

	if (*name == '.') {
		parent = 1;
		name++;
	}
	len = strlen(name);
	if (len > 0 && name[len - 1] == '.')
		return snprintf(err, errlen, "domains: \"%.80s\" ends with a dot; write it "
		    "without", s), -1;
	if (strchr(name, '*') != NULL)
		return snprintf(err, errlen, "domains: \"%.80s\": no wildcards; "
		    "\".example.org\" covers example.org and every name under it", s), -1;
	if (strchr(name, '@') != NULL)
		return snprintf(err, errlen, "domains: \"%.80s\" is an address; list "
		    "domains", s), -1;
	if (relay_domain_syntax(name, len) == -1)
		return snprintf(err, errlen, "domains: \"%.80s\" is not a domain name", s), -1;
	if ((copy = strdup(name)) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	for (i = 0; i < len; i++)
		copy[i] = (char)relay_lower((unsigned char)copy[i]);
	if (parent)
		rc = relay_strings_push(&p->parents, &p->nparents, &p->parents_cap, copy);
	else
		rc = relay_strings_push(&p->exact, &p->nexact, &p->exact_cap, copy);
	if (rc == -1) {
		free(copy);
		return snprintf(err, errlen, "out of memory"), -1;
	}
	return 0;
}

int
relay_policy_add_network(struct relay_policy *p, const char *s, char *err, size_t errlen)
{
	struct filter_net	 n, *nv;
	char			 why[256];
	size_t			 ncap;
	int			 rc;

	if ((rc = filter_net_parse(s, &n, why, sizeof(why))) == FILTER_NET_ALL)
		return snprintf(err, errlen, "networks: \"%.80s\" would let every client "
		    "relay; leave the relay filter out of the chain instead", s), -1;
	if (rc == -1)
		return snprintf(err, errlen, "networks: %s", why), -1;
	if (p->nnets == p->nets_cap) {
		ncap = p->nets_cap ? p->nets_cap * 2 : 4;
		if ((nv = reallocarray(p->nets, ncap, sizeof(*nv))) == NULL)
			return snprintf(err, errlen, "out of memory"), -1;
		p->nets = nv;
		p->nets_cap = ncap;
	}
	p->nets[p->nnets++] = n;
	return 0;
}

int
relay_policy_load_domains(struct relay_policy *p, const char *path, char *err, size_t errlen)
{
	FILE		*f;
	char		*line = NULL, *s, *end, sub[256];
	size_t		 cap = 0, lineno = 0;
	ssize_t		 n;
	int		 rc = 0;

	if ((f = fopen(path, "r")) == NULL)
		return snprintf(err, errlen, "domains_file %s: %s", path, strerror(errno)), -1;
	while (rc == 0 && (n = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (memchr(line, '\0', (size_t)n) != NULL) {
			snprintf(err, errlen, "%s:%zu: NUL byte in the line", path, lineno);
			rc = -1;
			break;
		}
		if ((s = strchr(line, '#')) != NULL)
			*s = '\0';
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		for (end = s + strlen(s); end > s && strchr(" \t\r\n", end[-1]) != NULL; end--)
			;
		*end = '\0';
		if (*s == '\0')
			continue;
		if (strpbrk(s, " \t") != NULL) {
			snprintf(err, errlen, "%s:%zu: more than one domain on the line", path, lineno);
			rc = -1;
		} else if (relay_policy_add_domain(p, s, sub, sizeof(sub)) == -1) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, sub);
			rc = -1;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "domains_file %s: read error", path);
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

static int
relay_strcmp_sort(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
relay_policy_finish(struct relay_policy *p)
{
	if (p->nexact > 1)
		qsort(p->exact, p->nexact, sizeof(*p->exact), relay_strcmp_sort);
	if (p->nparents > 1)
		qsort(p->parents, p->nparents, sizeof(*p->parents), relay_strcmp_sort);
}

void
relay_policy_free(struct relay_policy *p)
{
	size_t	 i;

	for (i = 0; i < p->nexact; i++)
		free(p->exact[i]);
	for (i = 0; i < p->nparents; i++)
		free(p->parents[i]);
	free(p->exact);
	free(p->parents);
	free(p->nets);
	memset(p, 0, sizeof(*p));
}

static int
relay_set_has(char *const *set, size_t n, const char *key)
{
	return n > 0 && bsearch(&key, set, n, sizeof(*set), relay_strcmp_sort) != NULL;
}

int
relay_domain_is_local(const struct relay_policy *p, const char *domain, size_t len)
{
	char	 lower[RELAY_DOMAIN_MAX + 1];
	size_t	 i;

	if (len == 0 || len > RELAY_DOMAIN_MAX)
		return 0;
	for (i = 0; i < len; i++)
		lower[i] = (char)relay_lower((unsigned char)domain[i]);
	lower[len] = '\0';
	if (relay_set_has(p->exact, p->nexact, lower))
		return 1;
	/* ".example.org": the name itself, then each parent of the name. */
	if (relay_set_has(p->parents, p->nparents, lower))
		return 1;
	for (i = 0; i < len; i++)
		if (lower[i] == '.' && relay_set_has(p->parents, p->nparents, lower + i + 1))
			return 1;
	return 0;
}

/* --- Recipients ---------------------------------------------------------- */

/*
 * "..." at s: a quoted local part.  Whatever it holds is one mailbox name
 * to RFC 5321, but '@', '%' and '!' inside (escaped or not) are routing
 * to many mailers once the quotes come off.  *end is set after the quote.
 */
static enum relay_reason
relay_local_quoted(const char *s, const char **end)
{
	const unsigned char	*p = (const unsigned char *)s + 1;
	int			 routing = 0;

	for (;; p++) {
		if (*p == '\0' || *p < 0x20 || *p == 0x7f)
			return RELAY_REFUSE_SYNTAX;
		if (*p == '"')
			break;
		if (*p == '\\') {
			p++;
			if (*p == '\0' || *p < 0x20 || *p == 0x7f)
				return RELAY_REFUSE_SYNTAX;
		}
		if (*p == '@' || *p == '%' || *p == '!')
			routing = 1;
	}
	*end = (const char *)p + 1;
	if (**end != '@' && **end != '\0')
		return RELAY_REFUSE_SYNTAX;	/* "a"b@c */
	return routing ? RELAY_REFUSE_QUOTED : RELAY_ALLOW_LOCAL;
}

/* A dot-string local part: atoms of atext (or UTF-8) joined by single dots. */
static enum relay_reason
relay_local_dotted(const char *s, const char **end)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 atom = 0;
	int			 percent = 0, bang = 0;

	for (; *p != '\0' && *p != '@'; p++) {
		if (*p == '.') {
			if (atom == 0)
				return RELAY_REFUSE_SYNTAX;
			atom = 0;
			continue;
		}
		if (!relay_is_atext(*p) && *p < 0x80)
			return RELAY_REFUSE_SYNTAX;
		percent |= *p == '%';
		bang |= *p == '!';
		atom++;
	}
	if (atom == 0)
		return RELAY_REFUSE_SYNTAX;	/* empty, or a trailing dot */
	*end = (const char *)p;
	if (percent)
		return RELAY_REFUSE_PERCENT;
	return bang ? RELAY_REFUSE_BANG : RELAY_ALLOW_LOCAL;
}

/* The part after the '@'. */
static enum relay_reason
relay_domain_check(const struct relay_policy *p, const char *d)
{
	size_t	 len = strlen(d);

	if (len == 0)
		return RELAY_REFUSE_NO_DOMAIN;
	if (d[0] == '[')
		return RELAY_REFUSE_IP_LITERAL;
	if (strchr(d, '@') != NULL)
		return RELAY_REFUSE_MULTIPLE_AT;
	if (d[len - 1] == '.')
		return RELAY_REFUSE_TRAILING_DOT;
	if (relay_domain_syntax(d, len) == -1)
		return RELAY_REFUSE_SYNTAX;
	return relay_domain_is_local(p, d, len) ? RELAY_ALLOW_LOCAL : RELAY_REFUSE_NOT_LOCAL;
}

enum relay_reason
relay_addr_check(const struct relay_policy *p, const char *rcpt)
{
	const char		*end = NULL;
	enum relay_reason	 r;

	if (rcpt == NULL || *rcpt == '\0')
		return RELAY_REFUSE_EMPTY;
	if (*rcpt == '@')
		return RELAY_REFUSE_SOURCE_ROUTE;
	if (*rcpt == '"')
		r = relay_local_quoted(rcpt, &end);
	else
		r = relay_local_dotted(rcpt, &end);
	if (r != RELAY_ALLOW_LOCAL)
		return r;
	if (*end == '\0') {
		/* RFC 5321 4.5.1: <postmaster> must be accepted; any case. */
		if (end - rcpt == 10 && relay_bytes_equal_nocase(rcpt, "postmaster", 10))
			return RELAY_ALLOW_POSTMASTER;
		return RELAY_REFUSE_NO_DOMAIN;
	}
	return relay_domain_check(p, end + 1);
}

enum relay_reason
relay_decide(const struct relay_policy *p, const char *client, int authenticated,
    const char *rcpt)
{
	if (filter_net_match(p->nets, p->nnets, client))
		return RELAY_ALLOW_NETWORK;
	if (authenticated && p->allow_authenticated)
		return RELAY_ALLOW_AUTH;
	return relay_addr_check(p, rcpt);
}

int
relay_reason_refused(enum relay_reason reason)
{
	return reason >= RELAY_REFUSE_EMPTY;
}

const char *
relay_reason_name(enum relay_reason reason)
{
	if ((unsigned int)reason >= sizeof(relay_reason_names) / sizeof(relay_reason_names[0]))
		return "unknown";
	return relay_reason_names[reason];
}

/* --- Logs ---------------------------------------------------------------- */

void
relay_log_rcpt(const char *rcpt, char *out)
{
	size_t	 i;

	if (rcpt == NULL)
		rcpt = "";
	for (i = 0; rcpt[i] != '\0' && i < RELAY_LOG_RCPT_MAX; i++) {
		unsigned char	 c = (unsigned char)rcpt[i];

		out[i] = c < 0x20 || c == 0x7f || c == '<' || c == '>' ? '?' : (char)c;
	}
	out[i] = '\0';
}
