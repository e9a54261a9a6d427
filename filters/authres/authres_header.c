/*
 * authres_header.c - Authentication-Results (RFC 8601) header text.
 *
 * Two jobs: tell whether an incoming field claims an authserv-id (so the
 * filter can remove forgeries of ours before the backend trusts them),
 * and write our own field from the results other filters recorded,
 * quoted and folded so that no recorded text can break its syntax.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authres_header.h"

/* Longest reason kept, and longest property value written. */
#define AUTHRES_REASON_MAX	256
#define AUTHRES_PVALUE_MAX	512

/* A growing string; oom set on the first failed allocation. */
struct authres_buf {
	char		*s;		/* text, NUL-terminated when len > 0 */
	size_t		 len;		/* bytes used */
	size_t		 cap;		/* bytes allocated */
	size_t		 col;		/* column of the current line */
	int		 oom;		/* an allocation failed */
};

static int	 authres_is_tspecial(unsigned char);
static int	 authres_is_token_char(unsigned char);
static int	 authres_is_domain_char(unsigned char);
static const char *authres_skip_cfws(const char *);
static int	 authres_first_value(const char *, char *, size_t);
static int	 authres_id_equal(const char *, size_t, const char *);
static int	 authres_id_in_prefix(const char *, const char *);
static void	 authres_buf_add(struct authres_buf *, const char *, size_t);
static void	 authres_buf_unit(struct authres_buf *, const char *, size_t);
static int	 authres_keyword(const char *, int);
static void	 authres_quote(struct authres_buf *, const char *, size_t, int);
static int	 authres_value_plain(const char *, size_t);
static void	 authres_unquote(const char *, size_t, struct authres_buf *);
static const char *authres_prop_next(const char *, struct authres_buf *);
static void	 authres_format_entry(struct authres_buf *, struct authres_buf *,
		    const struct authres_entry *);

/* RFC 2045 tspecials. */
static int
authres_is_tspecial(unsigned char c)
{
	return c != '\0' && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static int
authres_is_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !authres_is_tspecial(c);
}

/* Characters that continue a host name, for whole-word matching. */
static int
authres_is_domain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_' || c == '.';
}

/*
 * Past white space, line ends and (nested) comments with quoted-pairs.
 * NULL when a comment is not closed.
 */
static const char *
authres_skip_cfws(const char *p)
{
	int	 depth = 0;

	for (; *p != '\0'; p++) {
		if (depth > 0 && *p == '\\') {
			if (p[1] == '\0')
				return NULL;
			p++;
		} else if (*p == '(')
			depth++;
		else if (depth > 0 && *p == ')')
			depth--;
		else if (depth == 0 && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return p;
	}
	return depth == 0 ? p : NULL;
}

/*
 * The authserv-id as RFC 8601 reads it: [CFWS] (token / quoted-string),
 * quoted-pairs undone, into buf.  Returns 0, or -1 when there is none or
 * it does not fit.
 */
static int
authres_first_value(const char *value, char *buf, size_t buflen)
{
	const char	*p = authres_skip_cfws(value);
	size_t		 n = 0;

	if (p == NULL || *p == '\0')
		return -1;
	if (*p != '"') {
		while (authres_is_token_char((unsigned char)*p) && n + 1 < buflen)
			buf[n++] = *p++;
		if (authres_is_token_char((unsigned char)*p))
			return -1;
		buf[n] = '\0';
		return n > 0 ? 0 : -1;
	}
	for (p++; *p != '"'; p++) {
		if (*p == '\0' || n + 1 >= buflen)
			return -1;
		if (*p == '\\' && *++p == '\0')
			return -1;
		if (*p == '\r' || *p == '\n')
			continue;	/* folding inside the quotes */
		buf[n++] = *p;
	}
	buf[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* a[0..alen) equals id, case-insensitively, a final dot on either ignored. */
static int
authres_id_equal(const char *a, size_t alen, const char *id)
{
	size_t	 idlen = strlen(id);

	if (alen > 0 && a[alen - 1] == '.')
		alen--;
	if (idlen > 0 && id[idlen - 1] == '.')
		idlen--;
	return alen == idlen && idlen > 0 && strncasecmp(a, id, idlen) == 0;
}

/* id as a whole word (host-name characters around it) before the first ";". */
static int
authres_id_in_prefix(const char *value, const char *id)
{
	size_t		 idlen = strlen(id), seglen, i, j;
	const char	*semi = strchr(value, ';');

	if (idlen > 0 && id[idlen - 1] == '.')
		idlen--;
	if (idlen == 0)
		return 0;
	seglen = semi != NULL ? (size_t)(semi - value) : strlen(value);
	for (i = 0; i + idlen <= seglen; i++) {
		if (strncasecmp(value + i, id, idlen) != 0)
			continue;
		if (i > 0 && authres_is_domain_char((unsigned char)value[i - 1]))
			continue;
		j = i + idlen;
		if (j < seglen && value[j] == '.')
			j++;	/* a final dot */
		if (j < seglen && authres_is_domain_char((unsigned char)value[j]))
			continue;
		return 1;
	}
	return 0;
}

int
authres_claims_id(const char *value, const char *id)
{
	char	 buf[AUTHRES_ID_MAX + 2];

	if (value == NULL || id == NULL)
		return 0;
	if (authres_first_value(value, buf, sizeof(buf)) == 0 &&
	    authres_id_equal(buf, strlen(buf), id))
		return 1;
	return authres_id_in_prefix(value, id);
}

int
authres_id_valid(const char *s)
{
	size_t	 n;

	for (n = 0; s != NULL && s[n] != '\0'; n++)
		if (!authres_is_token_char((unsigned char)s[n]))
			return 0;
	return n > 0 && n <= AUTHRES_ID_MAX;
}

/* --- Writing ------------------------------------------------------------- */

static void
authres_buf_add(struct authres_buf *b, const char *s, size_t n)
{
	char	*p;
	size_t	 cap, i;

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 128;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->s, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
	for (i = 0; i < n; i++)
		b->col = s[i] == '\n' ? 0 : b->col + 1;
}

/*
 * One unit after a space, or on a new folded line when it would pass the
 * limit, keeping a column for the ";" that may follow it.
 */
static void
authres_buf_unit(struct authres_buf *b, const char *s, size_t n)
{
	if (b->col + 1 + n + 1 > AUTHRES_FOLD_AT && b->col > 1)
		authres_buf_add(b, "\r\n\t", 3);
	else
		authres_buf_add(b, " ", 1);
	authres_buf_add(b, s, n);
}

/* An RFC 8601 keyword (ldh-str), with "/version" allowed when slash is set. */
static int
authres_keyword(const char *s, int slash)
{
	const char	*p = s;

	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	    (*p >= '0' && *p <= '9') || *p == '-')
		p++;
	if (p == s || p[-1] == '-')
		return 0;
	if (slash && *p == '/') {
		s = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == s)
			return 0;
	}
	return *p == '\0';
}

/*
 * s[0..n) as a quoted-string.  With lossy, controls become spaces and
 * 8-bit bytes "?", so free text always fits; without it, the caller has
 * checked there are none.
 */
static void
authres_quote(struct authres_buf *b, const char *s, size_t n, int lossy)
{
	unsigned char	 c;
	size_t		 i;

	authres_buf_add(b, "\"", 1);
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (lossy && (c < 0x20 || c == 0x7f))
			c = ' ';
		else if (lossy && c >= 0x80)
			c = '?';
		if (c == '"' || c == '\\')
			authres_buf_add(b, "\\", 1);
		authres_buf_add(b, (const char *)&c, 1);
	}
	authres_buf_add(b, "\"", 1);
}

/*
 * A property value that needs no quotes: a token, or [local-part] "@"
 * domain with a dot-atom local-part.  Returns 1, 0 (quote it) or -1
 * (controls or 8-bit: leave it out).
 */
static int
authres_value_plain(const char *s, size_t n)
{
	static const char	 atext[] = "!#$%&'*+-/=?^_`{|}~.";
	const char		*at = NULL;
	size_t			 i;
	unsigned char		 c;
	int			 token = 1, atom = 1;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f)
			return -1;
		if (!authres_is_token_char(c))
			token = 0;
		if (c == '@' && at == NULL)
			at = s + i;
		else if (at == NULL && !authres_is_domain_char(c) && strchr(atext, c) == NULL)
			atom = 0;
		else if (at != NULL && (!authres_is_domain_char(c) || c == '_'))
			atom = 0;
	}
	if (n == 0)
		return 0;
	if (token)
		return 1;
	return at != NULL && atom && at + 1 < s + n ? 1 : 0;
}

/*
 * A value that is one quoted-string loses its quotes and quoted-pairs;
 * any other (a quoted local-part with "@domain" after it) stays as is.
 */
static void
authres_unquote(const char *s, size_t n, struct authres_buf *v)
{
	size_t	 i;

	if (n >= 2 && s[0] == '"') {
		for (i = 1; i < n && s[i] != '"'; i++)
			if (s[i] == '\\')
				i++;
		if (i == n - 1) {
			for (i = 1; i < n - 1; i++) {
				if (s[i] == '\\')
					i++;
				authres_buf_add(v, s + i, 1);
			}
			return;
		}
	}
	authres_buf_add(v, s, n);
}

/*
 * The next "ptype.property=value" of props, written to b as one unit;
 * returns where to go on, NULL at the end.  Malformed items are skipped.
 */
static const char *
authres_prop_next(const char *p, struct authres_buf *b)
{
	struct authres_buf	 v = { 0 };
	const char		*key, *eq, *dot, *val;
	size_t			 keylen;
	int			 plain, ok = 1, quoted;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return NULL;
	key = p;
	while (*p != '\0' && *p != '=' && *p != ' ' && *p != '\t')
		p++;
	if (*p != '=') {
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		return p;	/* a word without "=" */
	}
	eq = p++;
	keylen = (size_t)(eq - key);
	/* The value runs to white space outside quotes. */
	for (val = p, quoted = 0; *p != '\0' && (quoted || (*p != ' ' && *p != '\t')); p++) {
		if (quoted && *p == '\\') {
			if (*++p == '\0')
				return NULL;
		} else if (*p == '"')
			quoted = !quoted;
	}
	if (quoted)
		return NULL;	/* unterminated: nothing more to read */
	authres_unquote(val, (size_t)(p - val), &v);
	dot = memchr(key, '.', keylen);
	if (dot == NULL || dot == key || dot + 1 == eq || v.oom || v.len > AUTHRES_PVALUE_MAX)
		ok = 0;
	for (val = key; ok && val < eq; val++)
		if (val != dot && !authres_is_domain_char((unsigned char)*val))
			ok = 0;
	plain = ok ? authres_value_plain(v.len ? v.s : "", v.len) : -1;
	if (plain >= 0) {
		b->len = b->col = 0;
		authres_buf_add(b, key, keylen + 1);
		if (plain)
			authres_buf_add(b, v.s, v.len);
		else
			authres_quote(b, v.len ? v.s : "", v.len, 0);
	}
	free(v.s);
	return p;
}

/* "; method=result reason=\"...\" props..." into out, units built in scratch. */
static void
authres_format_entry(struct authres_buf *out, struct authres_buf *scratch,
    const struct authres_entry *e)
{
	const char	*p;
	size_t		 n;

	authres_buf_add(out, ";", 1);
	scratch->len = scratch->col = 0;
	authres_buf_add(scratch, e->method, strlen(e->method));
	authres_buf_add(scratch, "=", 1);
	authres_buf_add(scratch, e->result, strlen(e->result));
	authres_buf_unit(out, scratch->s, scratch->len);
	if (e->reason != NULL) {
		n = strlen(e->reason);
		scratch->len = scratch->col = 0;
		authres_buf_add(scratch, "reason=", 7);
		authres_quote(scratch, e->reason, n > AUTHRES_REASON_MAX ?
		    AUTHRES_REASON_MAX : n, 1);
		authres_buf_unit(out, scratch->s, scratch->len);
	}
	for (p = e->props; p != NULL; ) {
		scratch->len = scratch->col = 0;
		p = authres_prop_next(p, scratch);
		if (scratch->len > 0 && !scratch->oom)
			authres_buf_unit(out, scratch->s, scratch->len);
	}
	if (scratch->oom)
		out->oom = 1;
}

char *
authres_format(const char *id, const struct authres_entry *entries, size_t n,
    size_t name_len)
{
	struct authres_buf	 out = { 0 }, scratch = { 0 };
	size_t			 i, used = 0;

	out.col = name_len + 2;
	authres_buf_add(&out, id, strlen(id));
	for (i = 0; i < n; i++) {
		if (entries[i].method == NULL || entries[i].result == NULL ||
		    !authres_keyword(entries[i].method, 1) ||
		    !authres_keyword(entries[i].result, 0))
			continue;
		authres_format_entry(&out, &scratch, &entries[i]);
		used++;
	}
	if (used == 0) {
		authres_buf_add(&out, ";", 1);
		authres_buf_unit(&out, "none", 4);
	}
	free(scratch.s);
	if (out.oom) {
		free(out.s);
		return NULL;
	}
	return out.s;
}
