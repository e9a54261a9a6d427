/*
 * authres_header.h - Authentication-Results (RFC 8601) header text: who an
 * incoming field claims to be, and our own field built from the results
 * the filters recorded.  Pure code: no session, no sluice_* calls.
 */
#ifndef SLUICE_AUTHRES_HEADER_H
#define SLUICE_AUTHRES_HEADER_H

#include <stddef.h>

/* Longest authserv-id we handle (a host name fits). */
#define AUTHRES_ID_MAX		255

/* A column past which the formatter folds (RFC 5322 2.1.1 SHOULD). */
#define AUTHRES_FOLD_AT		78

/* One recorded result; the fields are not copied. */
struct authres_entry {
	const char	*method;	/* "spf", "dkim", "dmarc", ... */
	const char	*result;	/* "pass", "fail", ... */
	const char	*reason;	/* free text or NULL */
	const char	*props;		/* "header.d=example.org header.s=sel" or NULL */
};

/*
 * Whether the value of an Authentication-Results field (as sent, folding
 * included) names id as its authserv-id: the first token or
 * quoted-string after CFWS (RFC 8601 2.2), compared case-insensitively,
 * a final dot ignored.  To leave a forger no reading that a laxer parser
 * downstream could take for ours, a field is also claimed when id appears
 * as a whole word in the text before its first ";".  Returns 1 or 0.
 */
int	 authres_claims_id(const char *value, const char *id);

/*
 * Whether s can be our authserv-id: a non-empty RFC 2045 token of at
 * most AUTHRES_ID_MAX bytes.  Returns 1 or 0.
 */
int	 authres_id_valid(const char *s);

/*
 * The value of our field: "<id>; spf=pass smtp.mailfrom=example.org;
 * dkim=pass header.d=example.org", or "<id>; none" when n is 0 or no
 * entry is usable.  An entry whose method or result is not a keyword is
 * left out; a reason becomes reason="..." (quoted-pairs, controls and
 * 8-bit replaced); a property whose value is not a token, domain or
 * address is written as a quoted-string, one with controls or 8-bit
 * bytes, or not of the form ptype.property=value, is left out.  Lines
 * are folded with CRLF TAB before AUTHRES_FOLD_AT columns where a space
 * may go; the first line counts name_len + 2 for "Name: ".  Returns a
 * string the caller frees, or NULL when out of memory.
 */
char	*authres_format(const char *id, const struct authres_entry *entries, size_t n,
	    size_t name_len);

#endif /* SLUICE_AUTHRES_HEADER_H */
