/*
 * spf_policy.c - the pure parts of the spf filter: result names, the
 * policy table entries and their reply templates, address and domain
 * checks, log quoting and the Received-SPF field.  See spf_policy.h.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/reply.h"
#include "spf_policy.h"

#define SPF_FIELD_VALUE_MAX	200	/* bytes of one template field value */
#define SPF_FOLD_AT		78	/* fold the Received-SPF field before this */

struct spf_default_reply {
	int		 code;		/* reply code */
	const char	*enhanced;	/* enhanced status */
	const char	*text;		/* template */
};

/* A growing line for the Received-SPF field, folded as it goes. */
struct spf_line {
	char		*out;		/* the caller's buffer */
	size_t		 outlen;	/* its size */
	size_t		 len;		/* bytes used */
	size_t		 col;		/* column of the current line */
	int		 overflow;	/* something did not fit */
};

static int	 spf_default_reply(enum spf_outcome, int, enum sluice_verdict,
		    struct spf_action *);
static int	 spf_reply_parse(const char *, struct spf_action *, char *, size_t);
static int	 spf_template_field(const char *, size_t, const struct spf_vars *,
		    const char **);
static size_t	 spf_append_safe(char *, size_t, size_t, const char *, size_t);
static int	 spf_is_atext(unsigned char);
static int	 spf_value_kind(const char *);
static void	 spf_line_word(struct spf_line *, const char *, size_t);
static void	 spf_line_pair(struct spf_line *, const char *, const char *);
static void	 spf_comment_value(char *, size_t, const char *);

static const char *const spf_outcome_names[SPF_OUTCOME_COUNT] = {
	"pass", "fail", "softfail", "neutral", "none", "temperror", "permerror"
};

/* "reject" for each outcome (RFC 7372 codes for the SPF ones). */
static const struct spf_default_reply spf_reject_replies[SPF_OUTCOME_COUNT] = {
	{ 550, "5.7.1", "SPF result {result} for {domain} is not accepted here" },
	{ 550, "5.7.23", "SPF validation failed: {explanation}" },
	{ 550, "5.7.23", "SPF validation failed: {domain} does not designate {ip} as "
	    "a permitted sender" },
	{ 550, "5.7.1", "SPF result {result} for {domain} is not accepted here" },
	{ 550, "5.7.1", "SPF result {result} for {domain} is not accepted here" },
	{ 550, "5.7.24", "SPF validation error for {domain}" },
	{ 550, "5.7.24", "SPF record of {domain} is not valid" },
};

/* "tempfail" for each outcome. */
static const struct spf_default_reply spf_tempfail_replies[SPF_OUTCOME_COUNT] = {
	{ 451, "4.7.1", "SPF result {result} for {domain}, try again later" },
	{ 451, "4.7.23", "SPF validation failed: {explanation}" },
	{ 451, "4.7.23", "SPF validation failed for {domain} from {ip}, try again later" },
	{ 451, "4.7.1", "SPF result {result} for {domain}, try again later" },
	{ 451, "4.7.1", "SPF result {result} for {domain}, try again later" },
	{ 451, "4.7.24", "SPF temporary error for {domain}, try again later" },
	{ 451, "4.7.24", "SPF record of {domain} is not valid, try again later" },
};

const char *
spf_outcome_name(enum spf_outcome outcome)
{
	if ((unsigned int)outcome >= SPF_OUTCOME_COUNT)
		return NULL;
	return spf_outcome_names[outcome];
}

const char *
spf_identity_name(enum spf_identity identity)
{
	return identity == SPF_IDENTITY_HELO ? "helo" : "mailfrom";
}

int
spf_action_parse(const char *spec, enum spf_outcome outcome, int for_helo,
    struct spf_action *action, char *err, size_t errlen)
{
	memset(action, 0, sizeof(*action));
	if ((unsigned int)outcome >= SPF_OUTCOME_COUNT || spec == NULL)
		return snprintf(err, errlen, "no such SPF result"), -1;
	if (strcasecmp(spec, "continue") == 0) {
		action->verdict = SLUICE_CONTINUE;
		return 0;
	}
	if (strcasecmp(spec, "reject") == 0)
		return spf_default_reply(outcome, for_helo, SLUICE_REJECT, action);
	if (strcasecmp(spec, "tempfail") == 0)
		return spf_default_reply(outcome, for_helo, SLUICE_TEMPFAIL, action);
	if (spf_reply_parse(spec, action, err, errlen) == -1)
		return -1;
	return spf_template_check(action->text, err, errlen);
}

static int
spf_default_reply(enum spf_outcome outcome, int for_helo, enum sluice_verdict verdict,
    struct spf_action *action)
{
	const struct spf_default_reply *d;

	d = verdict == SLUICE_REJECT ? &spf_reject_replies[outcome] :
	    &spf_tempfail_replies[outcome];
	action->verdict = verdict;
	action->code = d->code;
	snprintf(action->enhanced, sizeof(action->enhanced), "%s", d->enhanced);
	if (for_helo)
		snprintf(action->text, sizeof(action->text), "SPF validation of HELO "
		    "{domain} failed: {explanation}");
	else
		snprintf(action->text, sizeof(action->text), "%s", d->text);
	return 0;
}

/* "550 5.7.23 text": filter_reply_parse's, with a sentence naming the keywords. */
static int
spf_reply_parse(const char *s, struct spf_action *action, char *err, size_t errlen)
{
	struct filter_reply	 r;
	char			 why[200];

	if (filter_reply_parse(s, &r, why, sizeof(why)) == -1) {
		/* "discard", "" : a wrong keyword, not a broken reply. */
		if (s[0] < '0' || s[0] > '9')
			return snprintf(err, errlen, "must be continue, reject, tempfail or a "
			    "reply " FILTER_REPLY_FORM), -1;
		return snprintf(err, errlen, "must be continue, reject, tempfail or a reply "
		    FILTER_REPLY_FORM ": %s", why), -1;
	}
	action->verdict = r.code / 100 == 4 ? SLUICE_TEMPFAIL : SLUICE_REJECT;
	action->code = r.code;
	snprintf(action->enhanced, sizeof(action->enhanced), "%s", r.enhanced);
	snprintf(action->text, sizeof(action->text), "%s", r.text);
	return 0;
}

int
spf_template_check(const char *tmpl, char *err, size_t errlen)
{
	const unsigned char	*p = (const unsigned char *)tmpl;
	const char		*value;
	const char		*close;

	if (strlen(tmpl) > SPF_TEMPLATE_MAX)
		return snprintf(err, errlen, "reply is longer than %d bytes",
		    SPF_TEMPLATE_MAX), -1;
	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e)
			return snprintf(err, errlen, "reply text must be printable ASCII"), -1;
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			p++;
			continue;
		}
		if (*p == '}')
			return snprintf(err, errlen, "reply text has a lone '}' (write "
			    "\"}}\")"), -1;
		if (*p != '{')
			continue;
		if ((close = strchr((const char *)p, '}')) == NULL ||
		    spf_template_field((const char *)p + 1, (size_t)(close -
		    (const char *)p - 1), NULL, &value) == -1)
			return snprintf(err, errlen, "reply text may name only {domain}, "
			    "{ip}, {result}, {identity}, {sender} and {explanation} "
			    "(write \"{{\" for a brace)"), -1;
		p = (const unsigned char *)close;
	}
	return 0;
}

/* The value of field name[0..len) from vars (or "" when vars is NULL). */
static int
spf_template_field(const char *name, size_t len, const struct spf_vars *vars,
    const char **value)
{
	static const char *const names[] = {
		"domain", "ip", "result", "identity", "sender", "explanation"
	};
	const char	*values[6] = { NULL };
	size_t		 i;

	if (vars != NULL) {
		values[0] = vars->domain;
		values[1] = vars->ip;
		values[2] = vars->result;
		values[3] = vars->identity;
		values[4] = vars->sender;
		values[5] = vars->explanation;
	}
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) {
			*value = values[i] != NULL ? values[i] : "";
			return 0;
		}
	return -1;
}

void
spf_template_expand(const char *tmpl, const struct spf_vars *vars, char *out, size_t outlen)
{
	const char	*p, *close, *value;
	size_t		 len = 0;

	out[0] = '\0';
	for (p = tmpl; *p != '\0' && len + 1 < outlen; p++) {
		if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
			out[len++] = *p++;
			continue;
		}
		if (*p == '{' && (close = strchr(p, '}')) != NULL &&
		    spf_template_field(p + 1, (size_t)(close - p - 1), vars, &value) == 0) {
			len = spf_append_safe(out, outlen, len, value, SPF_FIELD_VALUE_MAX);
			p = close;
			continue;
		}
		out[len++] = (unsigned char)*p >= 0x20 && (unsigned char)*p <= 0x7e ? *p : '?';
	}
	out[len] = '\0';
}

/* Append at most max bytes of s, non-printables as '?'; returns the new length. */
static size_t
spf_append_safe(char *out, size_t outlen, size_t len, const char *s, size_t max)
{
	size_t	 i;

	for (i = 0; s[i] != '\0' && i < max && len + 1 < outlen; i++) {
		unsigned char	 ch = (unsigned char)s[i];

		out[len++] = ch >= 0x20 && ch <= 0x7e ? (char)ch : '?';
	}
	out[len] = '\0';
	return len;
}

int
spf_ip_normalize(const char *ip, char *out, size_t outlen)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	struct in_addr	 a4;
	struct in6_addr	 a6;

	if (ip == NULL || outlen < INET6_ADDRSTRLEN)
		return -1;
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		inet_ntop(AF_INET, &a4, out, (socklen_t)outlen);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, ip, &a6) != 1)
		return -1;
	if (memcmp(a6.s6_addr, mapped, sizeof(mapped)) == 0) {
		memcpy(&a4, a6.s6_addr + 12, 4);
		inet_ntop(AF_INET, &a4, out, (socklen_t)outlen);
		return AF_INET;
	}
	inet_ntop(AF_INET6, &a6, out, (socklen_t)outlen);
	return AF_INET6;
}

int
spf_domain_valid(const char *s)
{
	size_t	 len, label = 0, labels = 0, i;

	if (s == NULL || (len = strlen(s)) == 0)
		return 0;
	if (s[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_DOMAIN_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char	 ch = (unsigned char)s[i];

		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return 0;
		if (label++ == 0)
			labels++;
		if (label > 63)
			return 0;
	}
	return label > 0 && labels >= 2;
}

const char *
spf_sender_domain(const char *sender)
{
	const char	*at = strrchr(sender, '@');

	return at != NULL ? at + 1 : sender;
}

char *
spf_log_quote(char *out, size_t outlen, const char *s, size_t max)
{
	size_t	 len = 0, i;

	if (outlen == 0)
		return out;
	if (s == NULL)
		s = "";
	for (i = 0; s[i] != '\0' && len + 4 < outlen; i++) {
		unsigned char	 ch = (unsigned char)s[i];

		if (i == max) {
			memcpy(out + len, "...", 3);
			len += 3;
			break;
		}
		if (ch == '"' || ch == '\\')
			out[len++] = '\\';
		out[len++] = ch >= 0x20 && ch <= 0x7e ? (char)ch : '?';
	}
	out[len] = '\0';
	return out;
}

/* RFC 5322 atext. */
static int
spf_is_atext(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || (ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/*
 * How a key-value-pair value can be written: 0 as a dot-atom, 1 as a
 * quoted-string, -1 not at all (controls, 8-bit, empty, too long).
 */
static int
spf_value_kind(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	int			 atom = 1, prev_dot = 1;
	size_t			 n = 0;

	for (; *p != '\0'; p++, n++) {
		if (*p < 0x20 || *p > 0x7e || n >= 256)
			return -1;
		if (*p == '.') {
			if (prev_dot)
				atom = 0;
			prev_dot = 1;
			continue;
		}
		if (!spf_is_atext(*p))
			atom = 0;
		prev_dot = 0;
	}
	if (n == 0)
		return -1;
	return atom && !prev_dot ? 0 : 1;
}

/* Append a word, folding first if it would pass SPF_FOLD_AT. */
static void
spf_line_word(struct spf_line *l, const char *word, size_t wlen)
{
	int	 fold = l->len > 0 && l->col + 1 + wlen >= SPF_FOLD_AT;
	size_t	 sep = l->len == 0 ? 0 : fold ? 3 : 1;

	if (l->overflow || l->len + sep + wlen >= l->outlen) {
		l->overflow = 1;
		return;
	}
	if (fold) {
		memcpy(l->out + l->len, "\r\n\t", 3);
		l->col = 8;
	} else if (sep == 1) {
		l->out[l->len] = ' ';
		l->col++;
	}
	l->len += sep;
	memcpy(l->out + l->len, word, wlen);
	l->len += wlen;
	l->col += wlen;
	l->out[l->len] = '\0';
}

/* key=value; with the value quoted if it must be, left out if it cannot be. */
static void
spf_line_pair(struct spf_line *l, const char *key, const char *value)
{
	char		 word[600];
	size_t		 n, i;
	int		 kind;

	if (value == NULL || (kind = spf_value_kind(value)) == -1)
		return;
	n = (size_t)snprintf(word, sizeof(word), "%s=%s", key, kind == 0 ? "" : "\"");
	for (i = 0; value[i] != '\0' && n + 4 < sizeof(word); i++) {
		if (kind == 1 && (value[i] == '"' || value[i] == '\\'))
			word[n++] = '\\';
		word[n++] = value[i];
	}
	if (kind == 1)
		word[n++] = '"';
	word[n++] = ';';
	word[n] = '\0';
	spf_line_word(l, word, n);
}

/* A value for the comment: no space, parenthesis, backslash or non-ASCII. */
static void
spf_comment_value(char *out, size_t outlen, const char *s)
{
	size_t	 n = spf_append_safe(out, outlen, 0, s != NULL ? s : "", SPF_FIELD_VALUE_MAX);
	size_t	 i;

	for (i = 0; i < n; i++)
		if (out[i] == ' ' || out[i] == '(' || out[i] == ')' || out[i] == '\\')
			out[i] = '?';
}

int
spf_received_format(const struct spf_received *r, char *out, size_t outlen)
{
	struct spf_line	 l = { out, outlen, 0, 14, 0 };	/* after "Received-SPF: " */
	char		 receiver[SPF_FIELD_VALUE_MAX + 1], domain[SPF_FIELD_VALUE_MAX + 1];
	char		 ip[SPF_FIELD_VALUE_MAX + 1], comment[SPF_FIELD_VALUE_MAX * 3 + 64];
	char		 sender[SPF_DOMAIN_MAX + 16], safe[SPF_FIELD_VALUE_MAX + 1];
	const char	*p, *q;

	if (outlen == 0)
		return -1;
	out[0] = '\0';
	spf_line_word(&l, r->result, strlen(r->result));
	spf_comment_value(receiver, sizeof(receiver), r->receiver);
	spf_comment_value(domain, sizeof(domain), r->domain);
	spf_comment_value(ip, sizeof(ip), r->ip);
	snprintf(comment, sizeof(comment), "(%s: %s of %s, client %s)", receiver,
	    r->identity == SPF_IDENTITY_HELO ? "HELO" : "domain", domain, ip);
	for (p = comment; *p != '\0'; p = q) {	/* the comment, word by word */
		while (*p == ' ')
			p++;
		for (q = p; *q != '\0' && *q != ' '; q++)
			;
		if (q > p)
			spf_line_word(&l, p, (size_t)(q - p));
	}
	spf_line_pair(&l, "client-ip", r->ip);
	if (r->sender != NULL && r->sender[0] == '\0' && r->helo != NULL) {
		snprintf(sender, sizeof(sender), "postmaster@%s", r->helo);
		spf_line_pair(&l, "envelope-from", sender);
	} else
		spf_line_pair(&l, "envelope-from", r->sender);
	spf_line_pair(&l, "helo", r->helo);
	spf_line_pair(&l, "identity", spf_identity_name(r->identity));
	spf_line_pair(&l, "receiver", r->receiver);
	if (r->problem != NULL && r->problem[0] != '\0') {
		spf_append_safe(safe, sizeof(safe), 0, r->problem, SPF_FIELD_VALUE_MAX);
		spf_line_pair(&l, "problem", safe);
	}
	if (l.len > 0 && out[l.len - 1] == ';')
		out[--l.len] = '\0';
	return l.overflow ? -1 : 0;
}
