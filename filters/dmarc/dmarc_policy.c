/*
 * dmarc_policy.c - DMARC records, alignment and the policy decision.
 *
 * The record's tags are read by libopendmarc (opendmarc_policy_store_dmarc
 * and the fetch functions), on a record we have cleaned first; alignment
 * and the decision are ours.  libopendmarc 1.4.2's own
 * opendmarc_get_policy_to_enforce() cannot be used: its alignment
 * (opendmarc_policy_check_alignment) calls sub.example.com aligned with
 * example.com in strict mode and a.co.uk aligned with b.co.uk in relaxed
 * mode, and it ignores pct.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendmarc/dmarc.h>

#include "dmarc_policy.h"

#define DMARC_RECORD_MAX	4096	/* longer records are refused */
#define DMARC_CLEAN_MAX		512	/* the cleaned record handed to the library */
#define DMARC_TAG_VALUE_MAX	32	/* kept tag values are short words */

static int	 policy_is_wsp(char);
static int	 policy_is_dmarc(const char *, size_t);
static void	 policy_trim(const char **, const char **);
static int	 policy_tag_keep(const char *, size_t, const char *, size_t);
static int	 policy_clean(const char *, size_t, char *, const char **);
static enum dmarc_p policy_p(int);
static int	 policy_any_aligned(const struct dmarc_psl *, const char *,
		    const char *const *, size_t, int);

static int
policy_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* "v" *WSP "=" *WSP "DMARC1" then ";", WSP or the end (RFC 7489 6.4). */
static int
policy_is_dmarc(const char *s, size_t n)
{
	size_t	 i = 1;

	if (n == 0 || (s[0] != 'v' && s[0] != 'V'))
		return 0;
	while (i < n && policy_is_wsp(s[i]))
		i++;
	if (i == n || s[i++] != '=')
		return 0;
	while (i < n && policy_is_wsp(s[i]))
		i++;
	if (n - i < 6 || memcmp(s + i, "DMARC1", 6) != 0)
		return 0;
	for (i += 6; i < n && policy_is_wsp(s[i]); i++)
		;
	return i == n || s[i] == ';';
}

enum dmarc_select
dmarc_record_select(const struct dmarc_txt *txt, size_t n, size_t *index)
{
	size_t	 i, found = 0;

	for (i = 0; i < n; i++)
		if (policy_is_dmarc(txt[i].text, txt[i].len) && found++ == 0)
			*index = i;
	return found == 0 ? DMARC_SELECT_NONE : found == 1 ? DMARC_SELECT_ONE :
	    DMARC_SELECT_MANY;
}

static void
policy_trim(const char **a, const char **b)
{
	while (*a < *b && policy_is_wsp(**a))
		(*a)++;
	while (*b > *a && policy_is_wsp((*b)[-1]))
		(*b)--;
}

/* Whether tag=value goes to the library: 1 keep, 0 drop, -1 refuse the record. */
static int
policy_tag_keep(const char *tag, size_t tlen, const char *val, size_t vlen)
{
	size_t	 i;

#define TAG_IS(s)	(tlen == sizeof(s) - 1 && strncasecmp(tag, s, tlen) == 0)
	if (TAG_IS("v") || TAG_IS("p") || TAG_IS("sp"))
		return vlen <= DMARC_TAG_VALUE_MAX ? 1 : -1;
	if (TAG_IS("adkim") || TAG_IS("aspf"))
		return vlen > 0 && vlen <= 7 && (strncasecmp(val, "strict", vlen) == 0 ||
		    strncasecmp(val, "relaxed", vlen) == 0);
	if (TAG_IS("pct")) {
		for (i = 0; i < vlen; i++)
			if (val[i] < '0' || val[i] > '9')
				return 0;
		return vlen > 0 && vlen <= 3 && atoi(val) <= 100;
	}
#undef TAG_IS
	return 0;	/* rua, ruf, rf, ri, fo and unknown tags */
}

/* The record with only the tags we use, as "tag=value;..." in out. */
static int
policy_clean(const char *text, size_t len, char *out, const char **why)
{
	const char	*p = text, *end = text + len, *semi, *eq, *a, *b, *v, *w;
	size_t		 o = 0;
	int		 keep;
	char		 val[DMARC_TAG_VALUE_MAX + 1];

	for (; p < end; p = semi + 1) {
		if ((semi = memchr(p, ';', (size_t)(end - p))) == NULL)
			semi = end;
		if ((eq = memchr(p, '=', (size_t)(semi - p))) == NULL)
			continue;
		a = p, b = eq, v = eq + 1, w = semi;
		policy_trim(&a, &b);
		policy_trim(&v, &w);
		if ((size_t)(w - v) <= DMARC_TAG_VALUE_MAX) {
			memcpy(val, v, (size_t)(w - v));
			val[w - v] = '\0';
		} else
			val[0] = '\0';
		if ((keep = policy_tag_keep(a, (size_t)(b - a), val, (size_t)(w - v))) == -1) {
			*why = "a tag value is too long";
			return -1;
		}
		if (!keep)
			continue;
		if (o + (size_t)(b - a) + (size_t)(w - v) + 3 > DMARC_CLEAN_MAX) {
			*why = "too many tags";
			return -1;
		}
		o += (size_t)snprintf(out + o, DMARC_CLEAN_MAX - o, "%.*s=%.*s;",
		    (int)(b - a), a, (int)(w - v), v);
	}
	out[o] = '\0';
	return 0;
}

static enum dmarc_p
policy_p(int c)
{
	switch (c) {
	case DMARC_RECORD_P_NONE:
		return DMARC_P_NONE;
	case DMARC_RECORD_P_QUARANTINE:
		return DMARC_P_QUARANTINE;
	case DMARC_RECORD_P_REJECT:
		return DMARC_P_REJECT;
	default:
		return DMARC_P_UNSET;
	}
}

int
dmarc_record_parse(const char *text, size_t len, const char *from_domain,
    struct dmarc_record *rec, const char **why)
{
	char		 clean[DMARC_CLEAN_MAX + 1], domain[DMARC_DOMAIN_MAX];
	DMARC_POLICY_T	*pctx;
	int		 st, p = 0, sp = 0, adkim = 0, aspf = 0, pct = 100;

	*why = NULL;
	if (memchr(text, '\0', len) != NULL || len > DMARC_RECORD_MAX) {
		*why = len > DMARC_RECORD_MAX ? "record too long" : "NUL byte in the record";
		return -1;
	}
	if (policy_clean(text, len, clean, why) == -1)
		return -1;
	snprintf(domain, sizeof(domain), "%s", from_domain);
	if ((pctx = opendmarc_policy_connect_init((u_char *)"0.0.0.0", 0)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	st = opendmarc_policy_store_dmarc(pctx, (u_char *)clean, (u_char *)domain, NULL);
	if (st == DMARC_PARSE_OKAY) {
		opendmarc_policy_fetch_p(pctx, &p);
		opendmarc_policy_fetch_sp(pctx, &sp);
		opendmarc_policy_fetch_adkim(pctx, &adkim);
		opendmarc_policy_fetch_aspf(pctx, &aspf);
		opendmarc_policy_fetch_pct(pctx, &pct);
	} else
		*why = opendmarc_policy_status_to_str(st);
	opendmarc_policy_connect_shutdown(pctx);
	if (st != DMARC_PARSE_OKAY)
		return -1;
	memset(rec, 0, sizeof(*rec));
	rec->p = policy_p(p);
	rec->sp = policy_p(sp);
	rec->adkim_strict = adkim == DMARC_RECORD_A_STRICT;
	rec->aspf_strict = aspf == DMARC_RECORD_A_STRICT;
	rec->pct = pct >= 0 && pct <= 100 ? pct : 100;
	if (rec->p == DMARC_P_UNSET) {
		*why = "no p tag";
		return -1;
	}
	return 0;
}

int
dmarc_aligned(const struct dmarc_psl *psl, const char *from, const char *auth, int strict)
{
	if (strcmp(from, auth) == 0)
		return 1;
	return !strict && strcmp(dmarc_org_domain(psl, from), dmarc_org_domain(psl, auth)) == 0;
}

static int
policy_any_aligned(const struct dmarc_psl *psl, const char *from, const char *const *ids,
    size_t n, int strict)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (ids[i] != NULL && dmarc_aligned(psl, from, ids[i], strict))
			return 1;
	return 0;
}

void
dmarc_evaluate(const struct dmarc_psl *psl, struct dmarc_eval *e)
{
	const struct dmarc_record *r = e->rec;

	e->spf_aligned = policy_any_aligned(psl, e->from_domain, e->spf, e->nspf,
	    r->aspf_strict);
	e->dkim_aligned = policy_any_aligned(psl, e->from_domain, e->dkim, e->ndkim,
	    r->adkim_strict);
	e->pass = e->spf_aligned || e->dkim_aligned;
	e->policy = e->at_org && r->sp != DMARC_P_UNSET ? r->sp : r->p;
	e->sampled_out = 0;
	e->disposition = e->pass ? DMARC_P_NONE : e->policy;
	if (!e->pass && e->policy != DMARC_P_NONE && r->pct < 100 &&
	    e->sample >= (unsigned int)r->pct) {
		e->sampled_out = 1;
		e->disposition = e->policy == DMARC_P_REJECT ? DMARC_P_QUARANTINE :
		    DMARC_P_NONE;
	}
}

int
dmarc_prop_get(const char *props, const char *key, char *out, size_t outlen)
{
	const char	*p = props, *k, *v;
	size_t		 klen = strlen(key), n, i;
	int		 quoted;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		for (k = p; *p != '\0' && *p != '=' && *p != ' ' && *p != '\t'; p++)
			;
		if (*p != '=')
			continue;
		/* The value runs to white space outside quotes. */
		for (v = ++p, quoted = 0; *p != '\0' && (quoted || (*p != ' ' && *p != '\t'));
		    p++) {
			if (quoted && *p == '\\') {
				if (*++p == '\0')
					return -1;
			} else if (*p == '"')
				quoted = !quoted;
		}
		if (quoted)
			return -1;
		if ((size_t)(v - 1 - k) != klen || strncasecmp(k, key, klen) != 0)
			continue;
		n = (size_t)(p - v);
		if (n >= 2 && v[0] == '"' && v[n - 1] == '"' && memchr(v + 1, '"', n - 2) == NULL) {
			/* One quoted-string: its content, quoted-pairs undone. */
			for (i = 1, n = 0; v[i] != '"'; i++, n++) {
				if (v[i] == '\\')
					i++;
				if (n + 1 >= outlen)
					return -1;
				out[n] = v[i];
			}
		} else {
			if (n + 1 > outlen)
				return -1;
			memcpy(out, v, n);
		}
		out[n] = '\0';
		return 0;
	}
	return -1;
}

int
dmarc_identity_domain(const char *identity, char *out)
{
	const char	*at = strrchr(identity, '@');
	const char	*d = at != NULL ? at + 1 : identity;

	return dmarc_domain_normalize(d, strlen(d), out);
}

const char *
dmarc_p_name(enum dmarc_p p)
{
	switch (p) {
	case DMARC_P_NONE:
		return "none";
	case DMARC_P_QUARANTINE:
		return "quarantine";
	case DMARC_P_REJECT:
		return "reject";
	default:
		return "absent";
	}
}
