/*
 * dkim_policy.c - the pure parts of the dkim filter: result mapping,
 * folding, verdict names, the From domain, key names and A-R properties.
 * See dkim_policy.h.  Everything here is written for hostile input: the
 * strings come from DKIM-Signature tags and From fields of any client.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <dkim.h>

#include "dkim_policy.h"
#include "sluice_filter.h"

#define DKIMF_DOMAIN_MAX	253	/* RFC 1035 name length, text form */
#define DKIMF_LABEL_MAX		63
#define DKIMF_PROP_MAX		255	/* longest tag value we copy into A-R */

static enum dkimf_result policy_map_error(int sigerr, const char **reason);
static int	 policy_label_char(int c, int underscore);
static int	 policy_name_valid(const char *name, size_t len, int underscore);
static char	*policy_flatten(const char *value);
static int	 policy_special(int c);
static int	 policy_split(const char *flat, const char **start, size_t *len);
static int	 policy_addr_domain(const char *elem, size_t len, char *out, size_t outlen);
static size_t	 policy_prop(char *buf, size_t len, size_t off, const char *name,
		    const char *value, const char *allowed, size_t maxlen, int fws);

static const char *const result_names[DKIMF_RESULT_COUNT] = {
	"pass", "temperror", "fail", "policy", "neutral", "permerror", "none"
};

static const char *const action_names[] = { "continue", "tempfail", "reject" };

const char *
dkimf_result_name(enum dkimf_result result)
{
	return (unsigned int)result < DKIMF_RESULT_COUNT ? result_names[result] : "permerror";
}

enum dkimf_result
dkimf_result_map(const struct dkimf_sig_facts *f, const char **reason)
{
	const char	*dummy;

	if (reason == NULL)
		reason = &dummy;
	/* Our own lookup knows why a key is missing better than the library. */
	switch (f->lookup) {
	case DKIMF_LOOKUP_TEMP:
		*reason = "key lookup failed temporarily";
		return DKIMF_TEMPERROR;
	case DKIMF_LOOKUP_NOTFOUND:
		*reason = "no key for signature";
		return DKIMF_PERMERROR;
	case DKIMF_LOOKUP_BAD:
		*reason = "key record unusable";
		return DKIMF_PERMERROR;
	default:
		break;
	}
	if (f->key_mismatch) {
		*reason = "key type does not match the signature algorithm";
		return DKIMF_PERMERROR;
	}
	/* libopendkim says BADSIG for a body hash mismatch too. */
	if (f->bh == DKIM_SIGBH_MISMATCH) {
		*reason = "body hash mismatch";
		return DKIMF_FAIL;
	}
	if (f->sigerr != DKIM_SIGERROR_OK && f->sigerr != DKIM_SIGERROR_UNKNOWN)
		return policy_map_error(f->sigerr, reason);
	if ((f->flags & DKIM_SIGFLAG_PROCESSED) == 0) {
		*reason = "signature not verified";
		return DKIMF_PERMERROR;
	}
	if ((f->flags & DKIM_SIGFLAG_PASSED) == 0) {
		*reason = "signature verification failed";
		return DKIMF_FAIL;
	}
	if (f->bh != DKIM_SIGBH_MATCH) {
		*reason = "body hash mismatch";
		return DKIMF_FAIL;
	}
	/* libopendkim 2.11 still passes these; RFC 8301 3.1 and 3.2 do not. */
	if (f->alg == DKIM_SIGN_RSASHA1) {
		*reason = "rsa-sha1 is not acceptable (RFC 8301)";
		return DKIMF_FAIL;
	}
	if (f->alg != DKIM_SIGN_ED25519SHA256 && f->keybits < f->min_key_bits) {
		*reason = "key too small";
		return DKIMF_PERMERROR;
	}
	*reason = "signature verified";
	return DKIMF_PASS;
}

/* A library signature error: key problems are permerror, syntax neutral. */
static enum dkimf_result
policy_map_error(int sigerr, const char **reason)
{
	switch (sigerr) {
	case DKIM_SIGERROR_BADSIG:
		*reason = "signature verification failed";
		return DKIMF_FAIL;
	case DKIM_SIGERROR_TOOLARGE_L:
		*reason = "l= exceeds the body length";
		return DKIMF_FAIL;
	case DKIM_SIGERROR_KEYFAIL:
		*reason = "key lookup failed temporarily";
		return DKIMF_TEMPERROR;
	case DKIM_SIGERROR_NOKEY:
		*reason = "no key for signature";
		return DKIMF_PERMERROR;
	case DKIM_SIGERROR_KEYTOOSMALL:
		*reason = "key too small";
		return DKIMF_PERMERROR;
	case DKIM_SIGERROR_KEYREVOKED:
		*reason = "key revoked";
		return DKIMF_PERMERROR;
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_KEYDECODE:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_MULTIREPLY:
		*reason = "key record unusable";
		return DKIMF_PERMERROR;
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_SUBDOMAIN:
		*reason = "key not valid for this signature";
		return DKIMF_PERMERROR;
	case DKIM_SIGERROR_EXPIRED:
		*reason = "signature expired";
		return DKIMF_NEUTRAL;
	case DKIM_SIGERROR_FUTURE:
		*reason = "signature in the future";
		return DKIMF_NEUTRAL;
	default:
		*reason = "signature malformed";
		return DKIMF_NEUTRAL;
	}
}

enum dkimf_result
dkimf_result_best(const enum dkimf_result *results, size_t n)
{
	enum dkimf_result	 best = DKIMF_NONE;
	size_t			 i;

	for (i = 0; i < n; i++)
		if ((unsigned int)results[i] < (unsigned int)best)
			best = results[i];
	return best;
}

int
dkimf_key_type_matches(const char *record, const char *alg)
{
	const char	*p = record, *tag, *val, *end, *dash;
	size_t		 tlen, vlen;

	if (record == NULL || alg == NULL || (dash = strchr(alg, '-')) == NULL)
		return 1;	/* nothing to compare: other checks decide */
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == ';')
			p++;
		tag = p;
		while (*p != '\0' && *p != '=' && *p != ';')
			p++;
		for (tlen = (size_t)(p - tag); tlen > 0 && strchr(" \t\r\n", tag[tlen - 1]); tlen--)
			;
		if (*p != '=') {
			continue;
		}
		val = ++p;
		while (*val == ' ' || *val == '\t' || *val == '\r' || *val == '\n')
			val++;
		end = strchr(val, ';');
		if (end == NULL)
			end = val + strlen(val);
		for (vlen = (size_t)(end - val); vlen > 0 && strchr(" \t\r\n", val[vlen - 1]); vlen--)
			;
		if (tlen == 1 && tag[0] == 'k')
			return vlen == (size_t)(dash - alg) && strncasecmp(val, alg, vlen) == 0;
		p = end;
	}
	return strncasecmp(alg, "rsa-", 4) == 0;
}

int
dkimf_action_parse(const char *s, enum dkimf_action *out)
{
	size_t	 i;

	for (i = 0; s != NULL && i < sizeof(action_names) / sizeof(action_names[0]); i++)
		if (strcasecmp(s, action_names[i]) == 0) {
			*out = (enum dkimf_action)i;
			return 0;
		}
	return -1;
}

const char *
dkimf_action_name(enum dkimf_action action)
{
	return (unsigned int)action < 3 ? action_names[action] : "continue";
}

/* --- Names ------------------------------------------------------------------ */

static int
policy_label_char(int c, int underscore)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || (underscore && c == '_');
}

/* Dot-separated labels of 1..63 label characters, len <= 253. */
static int
policy_name_valid(const char *name, size_t len, int underscore)
{
	size_t	 i, label = 0;

	if (len == 0 || len > DKIMF_DOMAIN_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (!policy_label_char((unsigned char)name[i], underscore) ||
		    ++label > DKIMF_LABEL_MAX)
			return 0;
	}
	return label > 0;
}

int
dkimf_key_name(const char *selector, const char *domain, char *out, size_t outlen)
{
	size_t	 slen, dlen;
	int	 n;

	if (selector == NULL || domain == NULL)
		return -1;
	slen = strlen(selector);
	dlen = strlen(domain);
	/* Selectors may hold underscores and dots (RFC 6376 3.1). */
	if (!policy_name_valid(selector, slen, 1) || !policy_name_valid(domain, dlen, 1))
		return -1;
	n = snprintf(out, outlen, "%s._domainkey.%s", selector, domain);
	if (n < 0 || (size_t)n >= outlen || (size_t)n > DKIMF_DOMAIN_MAX)
		return -1;
	return 0;
}

int
dkimf_header_name_valid(const char *name)
{
	size_t	 i;

	for (i = 0; name[i] != '\0'; i++)
		if (i >= 64 || !policy_label_char((unsigned char)name[i], 1))
			return 0;
	return i > 0;
}

int
dkimf_is_signature_header(const char *name)
{
	return strcasecmp(name, "DKIM-Signature") == 0;
}

int
dkimf_domain_normalize(const char *domain, size_t len, char *out, size_t outlen)
{
	size_t	 i;

	if (len > 0 && domain[len - 1] == '.')
		len--;		/* a final dot names the same domain */
	if (!policy_name_valid(domain, len, 0) || len >= outlen)
		return -1;
	for (i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)domain[i]);
	out[len] = '\0';
	return 0;
}

int
dkimf_domain_listed(const char *domain, char *const *list, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (list[i] != NULL && strcasecmp(list[i], domain) == 0)
			return 1;
	return 0;
}

/* --- The From field ---------------------------------------------------------- */

/*
 * The value with comments and the white space outside quoted strings
 * removed; quoted strings are kept with their escapes.  NULL when a
 * quoted string or comment is not closed, or out of memory.
 */
static char *
policy_flatten(const char *value)
{
	const unsigned char	*p = (const unsigned char *)value;
	char			*out, *o;
	int			 depth = 0, quoted = 0, gap = 0;

	/* A gap between two atoms stays as one space: "exa mple.org" is not a domain. */
	if ((out = o = malloc(2 * strlen(value) + 1)) == NULL)
		return NULL;
	for (; *p != '\0'; p++) {
		if (quoted) {
			*o++ = (char)*p;
			if (*p == '\\' && p[1] != '\0')
				*o++ = (char)*++p;
			else if (*p == '"')
				quoted = 0;
		} else if (depth > 0) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0)
				gap = 1;
		} else if (*p == '(')
			depth = 1;
		else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			gap = 1;
		else {
			if (gap && o > out && !policy_special(o[-1]) && !policy_special(*p))
				*o++ = ' ';
			gap = 0;
			quoted = *p == '"';
			*o++ = (char)*p;
		}
	}
	*o = '\0';
	if (quoted || depth > 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* RFC 5322 specials: they end an atom, so white space around them is CFWS. */
static int
policy_special(int c)
{
	return c != '\0' && strchr("()<>[]:;@\\,.\"", c) != NULL;
}

/*
 * Find the one non-empty element of a flattened mailbox-list.  Returns 1
 * with *start and *len set, 0 when there is none or more than one, -1 on
 * a group (top-level ':') or unbalanced angle brackets.
 */
static int
policy_split(const char *flat, const char **start, size_t *len)
{
	const char	*p, *elem = flat;
	int		 quoted = 0, angle = 0, pairs = 0, found = 0;

	for (p = flat;; p++) {
		if (quoted) {
			if (*p == '\0')
				return -1;
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				quoted = 0;
			continue;
		}
		if (*p == '"')
			quoted = 1;
		else if (*p == '<') {
			/* One angle-addr per mailbox, not nested. */
			if (angle++ > 0 || pairs++ > 0)
				return -1;
		} else if (*p == '>') {
			if (angle-- != 1)
				return -1;
		} else if (*p == ':' && angle == 0)
			return -1;	/* a group: no single author */
		else if ((*p == ',' && angle == 0) || *p == '\0') {
			if (p > elem) {
				if (found++)
					return 0;
				*start = elem;
				*len = (size_t)(p - elem);
			}
			if (*p == '\0')
				return angle == 0 ? found : -1;
			elem = p + 1;
			pairs = 0;
		}
	}
}

/* The domain of the mailbox in elem[0..len) (flattened). */
static int
policy_addr_domain(const char *elem, size_t len, char *out, size_t outlen)
{
	const char	*p, *end = elem + len, *addr = elem, *at = NULL;
	int		 quoted = 0;

	/* name-addr: the part in angle brackets (quoted names may hold '<'). */
	for (p = elem; p < end; p++) {
		if (quoted) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				quoted = 0;
		} else if (*p == '"')
			quoted = 1;
		else if (*p == '@' && memchr(p, '<', (size_t)(end - p)) != NULL)
			return -1;	/* "a@b <c@d>": which one is the author? */
		else if (*p == '<') {
			addr = p + 1;
			if (end[-1] != '>')
				return -1;
			end--;
			break;
		}
	}
	/* obs-route: "<@relay.example:user@domain>" */
	if (addr < end && *addr == '@') {
		while (addr < end && *addr != ':')
			addr++;
		if (addr == end)
			return -1;
		addr++;
	}
	for (p = addr, quoted = 0; p < end; p++) {
		if (quoted) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				quoted = 0;
		} else if (*p == '"')
			quoted = 1;
		else if (*p == '@')
			at = p;
	}
	if (at == NULL || at == addr)
		return -1;
	return dkimf_domain_normalize(at + 1, (size_t)(end - at - 1), out, outlen);
}

int
dkimf_from_domain(const char *value, char *out, size_t outlen)
{
	char		*flat;
	const char	*elem = NULL;
	size_t		 len = 0;
	int		 rc = -1;

	if (value == NULL || outlen == 0 || (flat = policy_flatten(value)) == NULL)
		return -1;
	if (policy_split(flat, &elem, &len) == 1)
		rc = policy_addr_domain(elem, len, out, outlen);
	free(flat);
	return rc;
}

/* --- Authentication-Results properties -------------------------------------- */

/* Append " name=value" if value is clean; returns the new offset. */
static size_t
policy_prop(char *buf, size_t len, size_t off, const char *name, const char *value,
    const char *allowed, size_t maxlen, int fws)
{
	char	 clean[DKIMF_PROP_MAX + 1];
	size_t	 n = 0;
	int	 w;

	if (value == NULL)
		return off;
	for (; *value != '\0' && n < maxlen; value++) {
		if (fws && (*value == ' ' || *value == '\t' || *value == '\r' || *value == '\n'))
			continue;	/* folding white space inside b= */
		if (strchr(allowed, *value) == NULL)
			return off;
		clean[n++] = *value;
	}
	if (n == 0 || (*value != '\0' && maxlen == DKIMF_PROP_MAX))
		return off;	/* empty, or too long to be a real name */
	clean[n] = '\0';
	w = snprintf(buf + off, len - off, "%s%s=%s", off > 0 ? " " : "", name, clean);
	if (w < 0 || (size_t)w >= len - off) {
		buf[off] = '\0';
		return off;
	}
	return off + (size_t)w;
}

size_t
dkimf_props_format(char *buf, size_t len, const char *d, const char *s, const char *a,
    const char *b)
{
	static const char	 name_chars[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
	static const char	 b64_chars[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
	size_t			 off = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	off = policy_prop(buf, len, off, "header.d", d, name_chars, DKIMF_PROP_MAX, 0);
	off = policy_prop(buf, len, off, "header.s", s, name_chars, DKIMF_PROP_MAX, 0);
	off = policy_prop(buf, len, off, "header.a", a, name_chars, DKIMF_PROP_MAX, 0);
	off = policy_prop(buf, len, off, "header.b", b, b64_chars, 8, 1);
	return off;
}

void
dkimf_word_add(char *buf, size_t len, const char *word)
{
	size_t	 wlen = strlen(word), blen = strlen(buf), i;
	char	*p;

	if (wlen == 0 || blen + (blen > 0) + wlen >= len)
		return;
	for (p = buf; (p = strcasestr(p, word)) != NULL; p += wlen)
		if ((p == buf || p[-1] == ' ') && (p[wlen] == ' ' || p[wlen] == '\0'))
			return;
	if (blen > 0)
		buf[blen++] = ' ';
	for (i = 0; i < wlen; i++)
		buf[blen + i] = (char)tolower((unsigned char)word[i]);
	buf[blen + wlen] = '\0';
}

/* --- Key records -------------------------------------------------------------- */

enum dkimf_lookup
dkimf_txt_pick(const struct sluice_dns_record *rec, size_t n, char *buf, size_t buflen,
    char *why, size_t whylen)
{
	const struct sluice_dns_record	*r = NULL;
	size_t				 i;

	for (i = 0; i < n && r == NULL; i++)
		if (rec[i].text != NULL && memmem(rec[i].text, rec[i].len, "p=", 2) != NULL)
			r = &rec[i];
	if (r == NULL && n > 0 && rec[0].text != NULL)
		r = &rec[0];
	if (r == NULL) {
		snprintf(why, whylen, "no key record");
		return DKIMF_LOOKUP_BAD;
	}
	if (memchr(r->text, '\0', r->len) != NULL) {
		snprintf(why, whylen, "NUL byte in key record");
		return DKIMF_LOOKUP_BAD;
	}
	if (r->len >= buflen) {
		snprintf(why, whylen, "key record of %zu bytes too long", r->len);
		return DKIMF_LOOKUP_BAD;
	}
	memcpy(buf, r->text, r->len);
	buf[r->len] = '\0';
	return DKIMF_LOOKUP_OK;
}
