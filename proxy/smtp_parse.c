/*
 * smtp_parse.c - strict parsers for SMTP command lines, reverse- and
 * forward-paths, ESMTP parameters and HELO domains (RFC 5321 4.1.2,
 * RFC 6531 for SMTPUTF8, RFC 3461 xtext).  See smtp_parse.h.
 *
 * Every scanner walks a bounded byte range with a cursor and never reads
 * past its end; the input is hostile and need not be NUL-terminated.
 * Paths are reported as sent, never rewritten: the relay check needs to
 * see '%', '!', source routes and quoted '@' exactly as the client wrote
 * them.  Comparisons are ASCII-only so no locale can change a verdict.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "smtp_parse.h"
#include "util.h"

/* A cursor over the bytes being parsed. */
struct scan {
	const unsigned char	*p;		/* next byte */
	const unsigned char	*end;		/* one past the last byte */
	int			 flags;		/* SMTP_PATH_* */
	int			 has_utf8;	/* a non-ASCII byte was accepted */
};

static enum smtp_verb verb_lookup(const char *, size_t);
static int	 ascii_lower(int);
static int	 ascii_casematch(const char *, const char *, size_t);
static int	 is_alpha(int);
static int	 is_digit(int);
static int	 is_letdig(int);
static int	 is_atext(int);
static int	 is_xtext_hex(int);
static size_t	 utf8_sequence_len(const unsigned char *, const unsigned char *);
static enum smtp_parse_status scan_utf8(struct scan *);
static enum smtp_parse_status scan_domain(struct scan *);
static int	 literal_tag_valid(const unsigned char *, size_t);
static enum smtp_parse_status literal_address_check(const unsigned char *, size_t);
static enum smtp_parse_status scan_literal(struct scan *);
static enum smtp_parse_status scan_dot_string(struct scan *);
static enum smtp_parse_status scan_quoted_string(struct scan *);
static enum smtp_parse_status scan_route(struct scan *, struct smtp_path *);
static enum smtp_parse_status scan_mailbox(struct scan *, struct smtp_path *);
static enum smtp_parse_status scan_path(struct scan *, struct smtp_path *);
static enum smtp_parse_status scan_param(struct scan *, struct smtp_param *);
static enum smtp_parse_status scan_params(struct scan *, struct smtp_path_arg *);

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} verb_table[] = {
	{ "HELO", SMTP_VERB_HELO },
	{ "EHLO", SMTP_VERB_EHLO },
	{ "LHLO", SMTP_VERB_LHLO },
	{ "MAIL", SMTP_VERB_MAIL },
	{ "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA },
	{ "BDAT", SMTP_VERB_BDAT },
	{ "RSET", SMTP_VERB_RSET },
	{ "NOOP", SMTP_VERB_NOOP },
	{ "QUIT", SMTP_VERB_QUIT },
	{ "VRFY", SMTP_VERB_VRFY },
	{ "EXPN", SMTP_VERB_EXPN },
	{ "HELP", SMTP_VERB_HELP },
	{ "STARTTLS", SMTP_VERB_STARTTLS },
	{ "AUTH", SMTP_VERB_AUTH },
	{ "XCLIENT", SMTP_VERB_XCLIENT },
	{ "XFORWARD", SMTP_VERB_XFORWARD },
	/* A browser or an HTTP proxy probe: not a mail client at all. */
	{ "GET", SMTP_VERB_HTTP },
	{ "POST", SMTP_VERB_HTTP },
	{ "HEAD", SMTP_VERB_HTTP },
	{ "PUT", SMTP_VERB_HTTP },
	{ "CONNECT", SMTP_VERB_HTTP },
	{ "OPTIONS", SMTP_VERB_HTTP },
};

static const char *const verb_names[SMTP_VERB_COUNT] = {
	[SMTP_VERB_UNKNOWN] = "UNKNOWN",
	[SMTP_VERB_HELO] = "HELO",
	[SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_LHLO] = "LHLO",
	[SMTP_VERB_MAIL] = "MAIL",
	[SMTP_VERB_RCPT] = "RCPT",
	[SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_BDAT] = "BDAT",
	[SMTP_VERB_RSET] = "RSET",
	[SMTP_VERB_NOOP] = "NOOP",
	[SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_VRFY] = "VRFY",
	[SMTP_VERB_EXPN] = "EXPN",
	[SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_STARTTLS] = "STARTTLS",
	[SMTP_VERB_AUTH] = "AUTH",
	[SMTP_VERB_XCLIENT] = "XCLIENT",
	[SMTP_VERB_XFORWARD] = "XFORWARD",
	[SMTP_VERB_HTTP] = "HTTP",
};

static int
ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* 1 if the n bytes at s equal the n first bytes of word, ignoring ASCII case. */
static int
ascii_casematch(const char *s, const char *word, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (ascii_lower((unsigned char)s[i]) != ascii_lower((unsigned char)word[i]))
			return 0;
	return 1;
}

static int
is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int
is_letdig(int c)
{
	return is_alpha(c) || is_digit(c);
}

/* RFC 5322 atext, ASCII part. */
static int
is_atext(int c)
{
	return is_letdig(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* hexchar digits are upper-case only (RFC 3461 section 4). */
static int
is_xtext_hex(int c)
{
	return is_digit(c) || (c >= 'A' && c <= 'F');
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629 section 4), or 0:
 * overlong forms, surrogates and code points past U+10FFFF are refused.
 */
static size_t
utf8_sequence_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	size_t		 n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;
		else if (p[0] == 0xed)
			hi = 0x9f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;
		else if (p[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Accept the non-ASCII character at the cursor if SMTPUTF8 allows it. */
static enum smtp_parse_status
scan_utf8(struct scan *sc)
{
	size_t	 n;

	if (!(sc->flags & SMTP_PATH_ALLOW_UTF8))
		return SMTP_PARSE_UTF8;
	if ((n = utf8_sequence_len(sc->p, sc->end)) == 0)
		return SMTP_PARSE_UTF8;
	sc->p += n;
	sc->has_utf8 = 1;
	return SMTP_PARSE_OK;
}


/* The verb spelled by the n bytes at s, or UNKNOWN. */
static enum smtp_verb
verb_lookup(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < nitems(verb_table); i++)
		if (strlen(verb_table[i].name) == n &&
		    ascii_casematch(s, verb_table[i].name, n))
			return verb_table[i].verb;
	return SMTP_VERB_UNKNOWN;
}

enum smtp_parse_status
smtp_command_parse(const char *line, size_t len, struct smtp_command *cmd)
{
	size_t	 i, vlen;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb_text = line;
	cmd->arg = "";
	if (memchr(line, '\0', len) != NULL)
		return SMTP_PARSE_NUL;
	for (i = 0; i < len; i++) {
		unsigned char	 c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return SMTP_PARSE_BAD_CHAR;
	}
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return SMTP_PARSE_EMPTY;
	/* The verb is everything up to the first SP; only letters can match. */
	for (vlen = 0; vlen < len && line[vlen] != ' '; vlen++)
		if ((unsigned char)line[vlen] >= 0x80)
			return SMTP_PARSE_BAD_CHAR;
	cmd->verb_len = vlen;
	cmd->verb = verb_lookup(line, vlen);
	if (vlen < len) {
		cmd->arg = line + vlen + 1;
		cmd->arg_len = len - vlen - 1;
	}
	return SMTP_PARSE_OK;
}

const char *
smtp_verb_name(enum smtp_verb verb)
{
	if ((unsigned int)verb >= SMTP_VERB_COUNT)
		return verb_names[SMTP_VERB_UNKNOWN];
	return verb_names[verb];
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str],
 * with U-labels under SMTPUTF8.  Consumes the longest run of label bytes
 * and dots and checks it; the caller decides what may follow.
 */
static enum smtp_parse_status
scan_domain(struct scan *sc)
{
	const unsigned char	*start = sc->p, *label;
	enum smtp_parse_status	 st;

	for (;;) {
		label = sc->p;
		while (sc->p < sc->end) {
			if (is_letdig(*sc->p) || *sc->p == '-')
				sc->p++;
			else if (*sc->p >= 0x80) {
				if ((st = scan_utf8(sc)) != SMTP_PARSE_OK)
					return st;
			} else
				break;
		}
		/* Empty label: leading, doubled or trailing dot, or no domain. */
		if (sc->p == label || *label == '-' || sc->p[-1] == '-')
			return SMTP_PARSE_BAD_DOMAIN;
		if (sc->p - label > SMTP_LABEL_MAX)
			return SMTP_PARSE_TOO_LONG;
		if (sc->p == sc->end || *sc->p != '.')
			break;
		sc->p++;
	}
	if (sc->p - start > SMTP_DOMAIN_MAX)
		return SMTP_PARSE_TOO_LONG;
	return SMTP_PARSE_OK;
}

/* Standardized-tag = Ldh-str: letters, digits, inner hyphens. */
static int
literal_tag_valid(const unsigned char *tag, size_t len)
{
	size_t	 i;

	if (len == 0 || !is_letdig(tag[0]) || !is_letdig(tag[len - 1]))
		return 0;
	for (i = 0; i < len; i++)
		if (!is_letdig(tag[i]) && tag[i] != '-')
			return 0;
	return 1;
}

/*
 * The inside of "[...]", already known to be dcontent and ':' only:
 * an IPv4 address, "IPv6:" and an IPv6 address, or "tag:content".
 */
static enum smtp_parse_status
literal_address_check(const unsigned char *s, size_t len)
{
	const unsigned char	*colon = memchr(s, ':', len);
	unsigned char		 addr[sizeof(struct in6_addr)];
	char			 buf[INET6_ADDRSTRLEN + 1];
	size_t			 taglen;

	if (colon == NULL) {
		if (len >= sizeof(buf))
			return SMTP_PARSE_BAD_LITERAL;
		memcpy(buf, s, len);
		buf[len] = '\0';
		return inet_pton(AF_INET, buf, addr) == 1 ? SMTP_PARSE_OK :
		    SMTP_PARSE_BAD_LITERAL;
	}
	taglen = (size_t)(colon - s);
	if (!literal_tag_valid(s, taglen) || taglen + 1 == len)
		return SMTP_PARSE_BAD_LITERAL;
	if (taglen != 4 || !ascii_casematch((const char *)s, "IPv6", 4))
		return SMTP_PARSE_OK;
	len -= taglen + 1;
	if (len >= sizeof(buf))
		return SMTP_PARSE_BAD_LITERAL;
	memcpy(buf, colon + 1, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, addr) == 1 ? SMTP_PARSE_OK :
	    SMTP_PARSE_BAD_LITERAL;
}

/* address-literal = "[" ( IPv4 / IPv6 / General-address-literal ) "]" */
static enum smtp_parse_status
scan_literal(struct scan *sc)
{
	const unsigned char	*open = sc->p++;

	/* dcontent is 33-90 and 94-126; ']' (93) ends the literal. */
	while (sc->p < sc->end && *sc->p != ']') {
		if (*sc->p < 33 || *sc->p > 126 || *sc->p == '[' || *sc->p == '\\')
			return SMTP_PARSE_BAD_LITERAL;
		sc->p++;
	}
	if (sc->p == sc->end || sc->p == open + 1)
		return SMTP_PARSE_BAD_LITERAL;
	sc->p++;
	return literal_address_check(open + 1, (size_t)(sc->p - open - 2));
}

/* Dot-string = Atom *("." Atom); atext includes '%', '!' and '/'. */
static enum smtp_parse_status
scan_dot_string(struct scan *sc)
{
	const unsigned char	*atom;
	enum smtp_parse_status	 st;

	for (;;) {
		atom = sc->p;
		while (sc->p < sc->end) {
			if (is_atext(*sc->p))
				sc->p++;
			else if (*sc->p >= 0x80) {
				if ((st = scan_utf8(sc)) != SMTP_PARSE_OK)
					return st;
			} else
				break;
		}
		if (sc->p == atom)
			return SMTP_PARSE_BAD_LOCAL;
		if (sc->p == sc->end || *sc->p != '.')
			return SMTP_PARSE_OK;
		sc->p++;
	}
}

/* Quoted-string = DQUOTE *( qtextSMTP / quoted-pairSMTP ) DQUOTE */
static enum smtp_parse_status
scan_quoted_string(struct scan *sc)
{
	enum smtp_parse_status	 st;

	sc->p++;
	while (sc->p < sc->end) {
		unsigned char	 c = *sc->p;

		if (c == '"') {
			sc->p++;
			return SMTP_PARSE_OK;
		}
		if (c == '\\') {
			/* quoted-pairSMTP = "\" followed by any of %d32-126 */
			if (sc->end - sc->p < 2 || sc->p[1] < 32 || sc->p[1] > 126)
				return SMTP_PARSE_BAD_LOCAL;
			sc->p += 2;
		} else if (c >= 32 && c <= 126)
			sc->p++;
		else if (c >= 0x80) {
			if ((st = scan_utf8(sc)) != SMTP_PARSE_OK)
				return st;
		} else
			return SMTP_PARSE_BAD_LOCAL;
	}
	return SMTP_PARSE_BAD_LOCAL;
}

/* A-d-l = At-domain *( "," At-domain ) ":"; kept without the colon. */
static enum smtp_parse_status
scan_route(struct scan *sc, struct smtp_path *out)
{
	const unsigned char	*start = sc->p;
	enum smtp_parse_status	 st;
	size_t			 len;

	for (;;) {
		if (sc->p == sc->end || *sc->p != '@')
			return SMTP_PARSE_BAD_ROUTE;
		sc->p++;
		if ((st = scan_domain(sc)) != SMTP_PARSE_OK)
			return st == SMTP_PARSE_UTF8 || st == SMTP_PARSE_TOO_LONG ? st :
			    SMTP_PARSE_BAD_ROUTE;
		if (sc->p == sc->end)
			return SMTP_PARSE_BAD_ROUTE;
		if (*sc->p == ':')
			break;
		if (*sc->p != ',')
			return SMTP_PARSE_BAD_ROUTE;
		sc->p++;
	}
	len = (size_t)(sc->p - start);
	if (len > SMTP_PATH_MAX)
		return SMTP_PARSE_TOO_LONG;
	memcpy(out->route, start, len);
	out->route[len] = '\0';
	sc->p++;
	return SMTP_PARSE_OK;
}

/*
 * Mailbox = Local-part "@" ( Domain / address-literal ), then the closing
 * '>'.  Fills out->mailbox from the bytes as sent.
 */
static enum smtp_parse_status
scan_mailbox(struct scan *sc, struct smtp_path *out)
{
	const unsigned char	*start = sc->p;
	enum smtp_parse_status	 st;
	size_t			 len;

	if (sc->p < sc->end && *sc->p == '"') {
		out->quoted_local = 1;
		st = scan_quoted_string(sc);
	} else
		st = scan_dot_string(sc);
	if (st != SMTP_PARSE_OK)
		return st;
	if (sc->p == sc->end)
		return SMTP_PARSE_NO_BRACKETS;
	if (*sc->p == '>')
		return SMTP_PARSE_BAD_DOMAIN;	/* no "@domain" */
	if (*sc->p != '@')
		return SMTP_PARSE_BAD_LOCAL;
	out->local_len = (size_t)(sc->p - start);
	sc->p++;
	if (sc->p < sc->end && *sc->p == '[') {
		out->domain_is_literal = 1;
		st = scan_literal(sc);
	} else
		st = scan_domain(sc);
	if (st != SMTP_PARSE_OK)
		return st;
	if (sc->p == sc->end)
		return SMTP_PARSE_NO_BRACKETS;
	if (*sc->p != '>')
		return out->domain_is_literal ? SMTP_PARSE_BAD_LITERAL : SMTP_PARSE_BAD_DOMAIN;
	len = (size_t)(sc->p - start);
	if (len > SMTP_PATH_MAX)
		return SMTP_PARSE_TOO_LONG;
	memcpy(out->mailbox, start, len);
	out->mailbox[len] = '\0';
	out->domain = out->mailbox + out->local_len + 1;
	return SMTP_PARSE_OK;
}

/* Path = "<" [ A-d-l ":" ] Mailbox ">", or "<>", or "<postmaster>". */
static enum smtp_parse_status
scan_path(struct scan *sc, struct smtp_path *out)
{
	const unsigned char	*start = sc->p;
	enum smtp_parse_status	 st;

	out->domain = out->mailbox;
	if (sc->p == sc->end || *sc->p != '<')
		return SMTP_PARSE_NO_BRACKETS;
	sc->p++;
	if (sc->p == sc->end)
		return SMTP_PARSE_NO_BRACKETS;
	if (*sc->p == '>') {
		if (!(sc->flags & SMTP_PATH_ALLOW_NULL))
			return SMTP_PARSE_NULL_NOT_ALLOWED;
		sc->p++;
		out->is_null = 1;
		return SMTP_PARSE_OK;
	}
	/* RFC 5321 4.5.1: "postmaster" without domain, any case, RCPT only. */
	if ((sc->flags & SMTP_PATH_ALLOW_POSTMASTER) && sc->end - sc->p >= 11 &&
	    ascii_casematch((const char *)sc->p, "postmaster>", 11)) {
		sc->p += 11;
		memcpy(out->mailbox, "postmaster", sizeof("postmaster"));
		out->local_len = 10;
		out->domain = out->mailbox + out->local_len;
		out->is_postmaster = 1;
		return SMTP_PARSE_OK;
	}
	if (sc->p < sc->end && *sc->p == '@' &&
	    (st = scan_route(sc, out)) != SMTP_PARSE_OK)
		return st;
	if ((st = scan_mailbox(sc, out)) != SMTP_PARSE_OK)
		return st;
	sc->p++;
	if (sc->p - start > SMTP_PATH_MAX)
		return SMTP_PARSE_TOO_LONG;
	out->has_utf8 = sc->has_utf8;
	return SMTP_PARSE_OK;
}

/*
 * esmtp-param = esmtp-keyword ["=" esmtp-value]; the keyword is
 * (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"), the value 1*(%d33-60 / %d62-126),
 * plus UTF-8 under SMTPUTF8 (RFC 6531 3.3).
 */
static enum smtp_parse_status
scan_param(struct scan *sc, struct smtp_param *param)
{
	const unsigned char	*value;
	enum smtp_parse_status	 st;

	param->keyword = (const char *)sc->p;
	if (!is_letdig(*sc->p))
		return SMTP_PARSE_BAD_PARAM;
	while (sc->p < sc->end && (is_letdig(*sc->p) || *sc->p == '-'))
		sc->p++;
	param->keyword_len = (size_t)((const char *)sc->p - param->keyword);
	if (sc->p == sc->end || *sc->p != '=')
		return SMTP_PARSE_OK;
	value = ++sc->p;
	while (sc->p < sc->end && *sc->p != ' ') {
		if (*sc->p >= 0x80) {
			if ((st = scan_utf8(sc)) != SMTP_PARSE_OK)
				return st;
		} else if (*sc->p >= 33 && *sc->p <= 126 && *sc->p != '=')
			sc->p++;
		else
			return SMTP_PARSE_BAD_PARAM;
	}
	if (sc->p == value)
		return SMTP_PARSE_BAD_PARAM;
	param->value = (const char *)value;
	param->value_len = (size_t)(sc->p - value);
	return SMTP_PARSE_OK;
}

/* Mail-parameters after the path, separated by one or more SP. */
static enum smtp_parse_status
scan_params(struct scan *sc, struct smtp_path_arg *out)
{
	enum smtp_parse_status	 st;

	if (sc->p < sc->end && *sc->p != ' ')
		return SMTP_PARSE_BAD_SYNTAX;
	for (;;) {
		while (sc->p < sc->end && *sc->p == ' ')
			sc->p++;
		if (sc->p == sc->end)
			return SMTP_PARSE_OK;
		if (out->nparams == SMTP_PARAMS_MAX)
			return SMTP_PARSE_TOO_MANY_PARAMS;
		if ((st = scan_param(sc, &out->params[out->nparams])) != SMTP_PARSE_OK)
			return st;
		out->nparams++;
		if (sc->p < sc->end && *sc->p != ' ')
			return SMTP_PARSE_BAD_PARAM;
	}
}

enum smtp_parse_status
smtp_path_arg_parse(const char *arg, size_t len, const char *keyword, int flags,
    struct smtp_path_arg *out)
{
	struct scan		 sc;
	size_t			 klen = strlen(keyword);
	enum smtp_parse_status	 st;

	memset(out, 0, sizeof(*out));
	out->path.domain = out->path.mailbox;
	if (len < klen + 1 || !ascii_casematch(arg, keyword, klen) || arg[klen] != ':')
		return SMTP_PARSE_NO_COLON;
	sc.p = (const unsigned char *)arg + klen + 1;
	sc.end = (const unsigned char *)arg + len;
	sc.flags = flags;
	sc.has_utf8 = 0;
	/* "MAIL FROM: <a@b>" is common and harmless; Postfix takes it too. */
	while (sc.p < sc.end && *sc.p == ' ')
		sc.p++;
	if ((st = scan_path(&sc, &out->path)) != SMTP_PARSE_OK)
		return st;
	return scan_params(&sc, out);
}

enum smtp_parse_status
smtp_path_parse(const char *s, size_t len, int flags, struct smtp_path *out)
{
	struct scan		 sc;
	enum smtp_parse_status	 st;

	memset(out, 0, sizeof(*out));
	out->domain = out->mailbox;
	sc.p = (const unsigned char *)s;
	sc.end = sc.p + len;
	sc.flags = flags;
	sc.has_utf8 = 0;
	if ((st = scan_path(&sc, out)) != SMTP_PARSE_OK)
		return st;
	return sc.p == sc.end ? SMTP_PARSE_OK : SMTP_PARSE_BAD_SYNTAX;
}

enum smtp_parse_status
smtp_domain_check(const char *s, size_t len, int allow_utf8)
{
	struct scan		 sc;
	enum smtp_parse_status	 st;
	int			 literal = len > 0 && s[0] == '[';

	sc.p = (const unsigned char *)s;
	sc.end = sc.p + len;
	sc.flags = allow_utf8 ? SMTP_PATH_ALLOW_UTF8 : 0;
	sc.has_utf8 = 0;
	if ((st = literal ? scan_literal(&sc) : scan_domain(&sc)) != SMTP_PARSE_OK)
		return st;
	if (sc.p != sc.end)
		return literal ? SMTP_PARSE_BAD_LITERAL : SMTP_PARSE_BAD_DOMAIN;
	return SMTP_PARSE_OK;
}

int
smtp_param_is(const struct smtp_param *p, const char *keyword)
{
	size_t	 n = strlen(keyword);

	return p->keyword_len == n && ascii_casematch(p->keyword, keyword, n);
}

/* xtext = *( xchar / hexchar ), RFC 3461 section 4. */
int
smtp_xtext_valid(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i;

	for (i = 0; i < len; i++) {
		if (p[i] == '+') {
			if (len - i < 3 || !is_xtext_hex(p[i + 1]) || !is_xtext_hex(p[i + 2]))
				return 0;
			i += 2;
		} else if (p[i] < 33 || p[i] > 126 || p[i] == '=')
			return 0;
	}
	return 1;
}

const char *
smtp_parse_status_text(enum smtp_parse_status status)
{
	switch (status) {
	case SMTP_PARSE_OK:
		return "Ok";
	case SMTP_PARSE_EMPTY:
		return "Empty command";
	case SMTP_PARSE_NUL:
		return "NUL byte in command";
	case SMTP_PARSE_BAD_CHAR:
		return "Invalid character in command";
	case SMTP_PARSE_BAD_SYNTAX:
		return "Syntax error";
	case SMTP_PARSE_NO_COLON:
		return "Expected FROM:<address> or TO:<address>";
	case SMTP_PARSE_NO_BRACKETS:
		return "Path must be enclosed in angle brackets";
	case SMTP_PARSE_BAD_LOCAL:
		return "Invalid local part";
	case SMTP_PARSE_BAD_DOMAIN:
		return "Invalid or missing domain name";
	case SMTP_PARSE_BAD_LITERAL:
		return "Address literal is invalid";
	case SMTP_PARSE_BAD_ROUTE:
		return "Source route is invalid";
	case SMTP_PARSE_TOO_LONG:
		return "Address, domain or label too long";
	case SMTP_PARSE_NULL_NOT_ALLOWED:
		return "Null address not allowed here";
	case SMTP_PARSE_UTF8:
		return "Non-ASCII address needs SMTPUTF8 and valid UTF-8";
	case SMTP_PARSE_BAD_PARAM:
		return "Invalid parameter syntax";
	case SMTP_PARSE_TOO_MANY_PARAMS:
		return "Too many parameters";
	}
	return "Syntax error";
}
