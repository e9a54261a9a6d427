/*
 * spf_syntax.c - a strict check of an SPF record against the RFC 7208
 * section 12 grammar (version, terms, mechanisms, modifiers, domain-spec,
 * macro-string, CIDR lengths).  See spf_syntax.h.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "spf_syntax.h"

/* Which macro letters a macro-string may use. */
#define SPF_LETTERS_DOMAIN	"slodiphv"	/* domain-spec (7.3: no c, r, t) */
#define SPF_LETTERS_ALL		"slodiphvcrt"	/* unknown modifiers */

struct spf_syntax {
	char		*err;		/* the caller's buffer */
	size_t		 errlen;	/* its size */
	int		 redirects;	/* redirect= seen */
	int		 exps;		/* exp= seen */
	struct spf_syntax_counts counts;	/* terms so far */
};

static int	 syn_fail(struct spf_syntax *, const char *, size_t, const char *);
static int	 syn_term(struct spf_syntax *, const char *, size_t);
static int	 syn_modifier(struct spf_syntax *, const char *, size_t, size_t);
static int	 syn_mechanism(struct spf_syntax *, const char *, size_t);
static int	 syn_a_mx(struct spf_syntax *, const char *, size_t, const char *, size_t);
static int	 syn_ip(struct spf_syntax *, const char *, size_t, const char *, size_t, int);
static int	 syn_macro_string(struct spf_syntax *, const char *, size_t, const char *,
		    size_t *);
static int	 syn_domain_spec(struct spf_syntax *, const char *, size_t, const char *,
		    size_t);
static int	 syn_toplabel(const char *, size_t);
static int	 syn_cidr(const char *, size_t, unsigned int);
static int	 syn_ip4(const char *, size_t);
static int	 syn_is(const char *, size_t, const char *);

/* Record the first error, naming the term; returns -1. */
static int
syn_fail(struct spf_syntax *s, const char *term, size_t len, const char *why)
{
	char	 shown[64];
	size_t	 i, n = len < sizeof(shown) - 4 ? len : sizeof(shown) - 4;

	for (i = 0; i < n; i++)
		shown[i] = term[i] >= 0x20 && term[i] <= 0x7e ? term[i] : '?';
	if (n < len) {
		memcpy(shown + n, "...", 3);
		n += 3;
	}
	shown[n] = '\0';
	snprintf(s->err, s->errlen, "%s in \"%s\"", why, shown);
	return -1;
}

/* The term is the word w, compared case-insensitively (RFC 5234 strings). */
static int
syn_is(const char *term, size_t len, const char *w)
{
	return strlen(w) == len && strncasecmp(term, w, len) == 0;
}

int
spf_syntax_check(const char *text, size_t len, struct spf_syntax_counts *counts, char *err,
    size_t errlen)
{
	struct spf_syntax	 s = { err, errlen, 0, 0, { 0, 0 } };
	size_t			 i, start;

	if (errlen > 0)
		err[0] = '\0';
	if (len < 6 || strncasecmp(text, "v=spf1", 6) != 0 || (len > 6 && text[6] != ' '))
		return syn_fail(&s, text, len < 8 ? len : 8, "no \"v=spf1\" version");
	for (i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e) {
			char	 why[48];

			snprintf(why, sizeof(why), "invalid byte 0x%02x",
			    (unsigned char)text[i]);
			return syn_fail(&s, text, len, why);
		}
	for (i = 6; i < len; ) {
		while (i < len && text[i] == ' ')
			i++;
		for (start = i; i < len && text[i] != ' '; i++)
			;
		if (i > start && syn_term(&s, text + start, i - start) == -1)
			return -1;
	}
	if (counts != NULL)
		*counts = s.counts;
	return 0;
}

int
spf_syntax_explanation(const char *text, char *err, size_t errlen)
{
	struct spf_syntax	 s = { err, errlen, 0, 0, { 0, 0 } };
	size_t			 i, start, tail, len = strlen(text);

	if (errlen > 0)
		err[0] = '\0';
	for (i = 0; i < len; ) {
		while (i < len && text[i] == ' ')
			i++;
		for (start = i; i < len && text[i] != ' '; i++)
			if ((unsigned char)text[i] < 0x21 || (unsigned char)text[i] > 0x7e)
				return syn_fail(&s, text, len, "invalid byte");
		if (i > start && syn_macro_string(&s, text + start, i - start,
		    SPF_LETTERS_ALL, &tail) == -1)
			return -1;
	}
	return 0;
}

/* A modifier (name "=" ...) or a directive. */
static int
syn_term(struct spf_syntax *s, const char *t, size_t len)
{
	size_t	 i;
	int	 alpha0 = (t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z');

	for (i = 0; alpha0 && i < len; i++) {
		char	 c = t[i];

		if (c == '=')
			return syn_modifier(s, t, len, i);
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			break;
	}
	return syn_mechanism(s, t, len);
}

static int
syn_modifier(struct spf_syntax *s, const char *t, size_t len, size_t eq)
{
	const char	*v = t + eq + 1;
	size_t		 vlen = len - eq - 1, tail;

	if (syn_is(t, eq, "redirect")) {
		s->counts.mechanisms++;
		if (++s->redirects > 1)
			return syn_fail(s, t, len, "a second redirect=");
		return syn_domain_spec(s, t, len, v, vlen);
	}
	s->counts.modifiers++;
	if (syn_is(t, eq, "exp")) {
		if (++s->exps > 1)
			return syn_fail(s, t, len, "a second exp=");
		return syn_domain_spec(s, t, len, v, vlen);
	}
	if (syn_macro_string(s, v, vlen, SPF_LETTERS_ALL, &tail) == -1)
		return syn_fail(s, t, len, "bad modifier value");
	return 0;
}

static int
syn_mechanism(struct spf_syntax *s, const char *t, size_t len)
{
	const char	*p = t, *args;
	size_t		 n = len, name, alen;

	s->counts.mechanisms++;
	if (strchr("+-?~", *p) != NULL) {
		p++;
		n--;
	}
	for (name = 0; name < n && p[name] != ':' && p[name] != '/'; name++)
		;
	args = p + name;
	alen = n - name;
	if (syn_is(p, name, "all"))
		return alen == 0 ? 0 : syn_fail(s, t, len, "\"all\" takes no argument");
	if (syn_is(p, name, "include") || syn_is(p, name, "exists")) {
		if (alen == 0 || args[0] != ':')
			return syn_fail(s, t, len, "missing \":domain\"");
		return syn_domain_spec(s, t, len, args + 1, alen - 1);
	}
	if (syn_is(p, name, "ptr")) {
		if (alen == 0)
			return 0;
		if (args[0] != ':')
			return syn_fail(s, t, len, "\"ptr\" takes no CIDR length");
		return syn_domain_spec(s, t, len, args + 1, alen - 1);
	}
	if (syn_is(p, name, "a") || syn_is(p, name, "mx"))
		return syn_a_mx(s, t, len, args, alen);
	if (syn_is(p, name, "ip4"))
		return syn_ip(s, t, len, args, alen, 4);
	if (syn_is(p, name, "ip6"))
		return syn_ip(s, t, len, args, alen, 6);
	return syn_fail(s, t, len, "unknown mechanism");
}

/* a and mx: [ ":" domain-spec ] [ ip4-cidr-length ] [ "//" ip6-cidr-length ] */
static int
syn_a_mx(struct spf_syntax *s, const char *t, size_t len, const char *args, size_t alen)
{
	size_t	 end = alen, d;

	for (d = end; d > 0 && args[d - 1] >= '0' && args[d - 1] <= '9'; d--)
		;
	if (d < end && d >= 2 && args[d - 1] == '/' && args[d - 2] == '/') {
		if (!syn_cidr(args + d, end - d, 128))
			return syn_fail(s, t, len, "bad IPv6 CIDR length");
		end = d - 2;
		for (d = end; d > 0 && args[d - 1] >= '0' && args[d - 1] <= '9'; d--)
			;
	}
	if (d < end && d >= 1 && args[d - 1] == '/') {
		if (!syn_cidr(args + d, end - d, 32))
			return syn_fail(s, t, len, "bad IPv4 CIDR length");
		end = d - 1;
	}
	if (end == 0)
		return 0;
	if (args[0] != ':')
		return syn_fail(s, t, len, "bad argument");
	return syn_domain_spec(s, t, len, args + 1, end - 1);
}

/* ip4 and ip6: ":" network [ "/" length ] */
static int
syn_ip(struct spf_syntax *s, const char *t, size_t len, const char *args, size_t alen,
    int version)
{
	const char	*slash;
	char		 buf[64];
	size_t		 net;
	unsigned char	 addr[16];

	if (alen < 2 || args[0] != ':')
		return syn_fail(s, t, len, "missing \":network\"");
	args++;
	alen--;
	slash = memchr(args, '/', alen);
	net = slash != NULL ? (size_t)(slash - args) : alen;
	if (slash != NULL && !syn_cidr(slash + 1, alen - net - 1, version == 4 ? 32 : 128))
		return syn_fail(s, t, len, "bad CIDR length");
	if (version == 4)
		return syn_ip4(args, net) ? 0 : syn_fail(s, t, len, "bad IPv4 network");
	if (net == 0 || net >= sizeof(buf))
		return syn_fail(s, t, len, "bad IPv6 network");
	memcpy(buf, args, net);
	buf[net] = '\0';
	return inet_pton(AF_INET6, buf, addr) == 1 ? 0 :
	    syn_fail(s, t, len, "bad IPv6 network");
}

/* "0", or 1-9 then digits, at most max. */
static int
syn_cidr(const char *p, size_t len, unsigned int max)
{
	unsigned int	 v = 0;
	size_t		 i;

	if (len == 0 || len > 3 || (p[0] == '0' && len > 1))
		return 0;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (unsigned int)(p[i] - '0');
	}
	return v <= max;
}

/* Four qnums: 0-255 without leading zeros. */
static int
syn_ip4(const char *p, size_t len)
{
	size_t		 i = 0, parts;

	for (parts = 0; parts < 4; parts++) {
		size_t		 start = i;
		unsigned int	 v = 0;

		while (i < len && p[i] >= '0' && p[i] <= '9' && i - start < 4)
			v = v * 10 + (unsigned int)(p[i++] - '0');
		if (i == start || i - start > 3 || (p[start] == '0' && i - start > 1) || v > 255)
			return 0;
		if (parts < 3) {
			if (i >= len || p[i] != '.')
				return 0;
			i++;
		}
	}
	return i == len;
}

/*
 * macro-string: literals (visible ASCII but '%') and macro-expands with
 * the given letters.  *tail is the offset after the last macro-expand
 * (0 if none; len when the string ends with one).
 */
static int
syn_macro_string(struct spf_syntax *s, const char *p, size_t len, const char *letters,
    size_t *tail)
{
	size_t	 i = 0, j, digits;
	int	 nonzero;

	*tail = 0;
	while (i < len) {
		if (p[i] != '%') {
			i++;
			continue;
		}
		if (i + 1 >= len)
			return syn_fail(s, p, len, "'%' at the end");
		if (p[i + 1] == '%' || p[i + 1] == '_' || p[i + 1] == '-') {
			i += 2;
			*tail = i;
			continue;
		}
		if (p[i + 1] != '{')
			return syn_fail(s, p, len, "'%' not followed by '{', '%', '_' or '-'");
		j = i + 2;
		if (j >= len || p[j] == '\0' || strchr(letters, p[j] | 0x20) == NULL)
			return syn_fail(s, p, len, "invalid macro letter");
		for (j++, digits = 0, nonzero = 0; j < len && p[j] >= '0' && p[j] <= '9';
		    j++, digits++)
			nonzero |= p[j] != '0';
		if (digits > 0 && !nonzero)
			return syn_fail(s, p, len, "macro transformer 0");
		if (j < len && (p[j] == 'r' || p[j] == 'R'))
			j++;
		while (j < len && strchr(".-+,/_=", p[j]) != NULL && p[j] != '\0')
			j++;
		if (j >= len || p[j] != '}')
			return syn_fail(s, p, len, "unterminated or invalid macro");
		i = j + 1;
		*tail = i;
	}
	return 0;
}

/* domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand */
static int
syn_domain_spec(struct spf_syntax *s, const char *t, size_t tlen, const char *p, size_t len)
{
	size_t	 tail, end, dot;

	if (len == 0)
		return syn_fail(s, t, tlen, "empty domain");
	if (syn_macro_string(s, p, len, SPF_LETTERS_DOMAIN, &tail) == -1)
		return -1;
	if (tail == len)
		return 0;	/* ends with a macro-expand */
	end = len;
	if (p[end - 1] == '.')
		end--;
	for (dot = end; dot > tail && p[dot - 1] != '.'; dot--)
		;
	if (dot == tail || !syn_toplabel(p + dot, end - dot))
		return syn_fail(s, t, tlen, "domain does not end in a top label");
	return 0;
}

/* ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static int
syn_toplabel(const char *p, size_t len)
{
	size_t	 i;
	int	 alpha = 0, hyphen = 0;

	if (len == 0 || len > 63)
		return 0;
	for (i = 0; i < len; i++) {
		char	 c = p[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			alpha = 1;
		else if (c == '-')
			hyphen = 1;
		else if (c < '0' || c > '9')
			return 0;
	}
	if (hyphen)
		return p[0] != '-' && p[len - 1] != '-';
	return alpha;
}
