/*
 * dkim_policy.h - the pure parts of the dkim filter: what a signature's
 * verification facts mean as an RFC 8601 result, how results of several
 * signatures fold into one, the verdict names, the From header's domain,
 * and the text that goes into Authentication-Results.
 *
 * No sluice session and no library handle: every function works on plain
 * values, so the unit test links this file alone (with libopendkim only
 * for the DKIM_* constants).  The prefix is dkimf_ because libopendkim
 * owns dkim_.
 */
#ifndef SLUICE_DKIM_POLICY_H
#define SLUICE_DKIM_POLICY_H

#include <stddef.h>

struct sluice_dns_record;

/* RFC 8601 2.7.1 results, ranked: a smaller value is the better outcome. */
enum dkimf_result {
	DKIMF_PASS = 0,		/* a signature verified */
	DKIMF_TEMPERROR,	/* the key could not be fetched now */
	DKIMF_FAIL,		/* signature or body hash wrong, rsa-sha1 */
	DKIMF_POLICY,		/* signed, not acceptable locally (not produced yet) */
	DKIMF_NEUTRAL,		/* the signature itself is malformed */
	DKIMF_PERMERROR,	/* no usable key: NXDOMAIN, bad record, too small */
	DKIMF_NONE,		/* not signed */
	DKIMF_RESULT_COUNT
};

/* What the filter answers for a message whose best result is ... */
enum dkimf_action {
	DKIMF_CONTINUE = 0,	/* say nothing (DMARC decides) */
	DKIMF_TEMPFAIL,		/* 451 */
	DKIMF_REJECT		/* 550 */
};

/* What the key lookup said for a signature's selector._domainkey.domain. */
enum dkimf_lookup {
	DKIMF_LOOKUP_NONE = 0,	/* no lookup was made (syntax error first) */
	DKIMF_LOOKUP_OK,	/* a TXT record was handed to the library */
	DKIMF_LOOKUP_NOTFOUND,	/* NXDOMAIN or no TXT record */
	DKIMF_LOOKUP_TEMP,	/* SERVFAIL, timeout, resolver error */
	DKIMF_LOOKUP_BAD	/* a record we refuse: too long, NUL, bad name */
};

/* The facts libopendkim gives about one signature after dkim_eom(). */
struct dkimf_sig_facts {
	int		 sigerr;	/* dkim_sig_geterror(): DKIM_SIGERROR_* */
	unsigned int	 flags;		/* dkim_sig_getflags(): DKIM_SIGFLAG_* */
	int		 bh;		/* dkim_sig_getbh(): DKIM_SIGBH_* */
	int		 alg;		/* dkim_sig_getsignalg(): DKIM_SIGN_* */
	unsigned int	 keybits;	/* dkim_sig_getkeysize(), 0 if unknown */
	unsigned int	 min_key_bits;	/* the instance's min_key_bits */
	enum dkimf_lookup lookup;	/* what our key lookup said */
	int		 key_mismatch;	/* the record's k= is not a='s key type */
};

const char	*dkimf_result_name(enum dkimf_result result);

/*
 * The result of one signature and a short reason (a static string, for
 * the log and the A-R comment).  Order of the checks: our own key lookup
 * outcome, then the library's error, then pass with the local rules
 * (rsa-sha1 and small keys never pass).
 */
enum dkimf_result dkimf_result_map(const struct dkimf_sig_facts *facts, const char **reason);

/* The best of n results (DKIMF_NONE when n is 0). */
enum dkimf_result dkimf_result_best(const enum dkimf_result *results, size_t n);

/*
 * 1 when the key record's k= (rsa when absent, RFC 6376 3.6.1) is the key
 * type of the signature algorithm alg ("rsa-sha256": rsa), else 0.  RFC
 * 6376 6.1.2 wants PERMFAIL for a mismatch; libopendkim does not check.
 */
int		 dkimf_key_type_matches(const char *record, const char *alg);

/* "continue", "tempfail", "reject" -> action; 0, or -1 when unknown. */
int		 dkimf_action_parse(const char *s, enum dkimf_action *out);
const char	*dkimf_action_name(enum dkimf_action action);

/*
 * The domain of the one mailbox in a From field's value (RFC 5322
 * mailbox-list: display names, comments, quoted local parts and angle
 * brackets understood), lowercased into out.  Returns 0, or -1 when the
 * value holds no mailbox, more than one, a domain literal, a domain that
 * is not an ASCII host name, or does not fit in outlen.
 */
int		 dkimf_from_domain(const char *value, char *out, size_t outlen);

/*
 * A host name (LDH labels, one final dot allowed) lowercased into out,
 * without the final dot; 0, or -1 when it is not one or does not fit.
 */
int		 dkimf_domain_normalize(const char *domain, size_t len, char *out, size_t outlen);

/* 1 when domain is in list (exact, case-insensitive), else 0. */
int		 dkimf_domain_listed(const char *domain, char *const *list, size_t n);

/*
 * selector "._domainkey." domain into out; 0, or -1 when either is not
 * made of DNS labels (1..63 of letters, digits, '-', '_') or the name is
 * longer than 253.
 */
int		 dkimf_key_name(const char *selector, const char *domain, char *out,
		    size_t outlen);

/*
 * A header name fit for sign_headers: 1..64 letters, digits, '-' or '_'
 * (libopendkim turns the list into a regular expression).
 */
int		 dkimf_header_name_valid(const char *name);

/* 1 when name is DKIM-Signature (case-insensitive). */
int		 dkimf_is_signature_header(const char *name);

/*
 * "header.d=D header.s=S header.a=A header.b=B8" into buf, where B8 is the
 * first 8 base64 characters of b=.  A property whose value holds anything
 * but the characters its syntax allows is left out, so hostile tag
 * values never reach the A-R header.  Any argument may be NULL.  Returns
 * the length written (0: no property; buf is "").
 */
size_t		 dkimf_props_format(char *buf, size_t len, const char *d, const char *s,
		    const char *a, const char *b);

/*
 * The key record out of a TXT answer's records: the first one holding
 * "p=" (else the first), copied into buf.  DKIMF_LOOKUP_OK, or _BAD with
 * why when there is none, it holds a NUL byte or it does not fit.
 */
enum dkimf_lookup dkimf_txt_pick(const struct sluice_dns_record *records, size_t n,
		    char *buf, size_t buflen, char *why, size_t whylen);

/* Append word to the space-separated list buf (lowercased) unless present. */
void		 dkimf_word_add(char *buf, size_t len, const char *word);

#endif /* SLUICE_DKIM_POLICY_H */
