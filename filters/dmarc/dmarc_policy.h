/*
 * dmarc_policy.h - DMARC (RFC 7489) policy records, identifier alignment
 * and the policy decision.  No session and no sluice_* calls: the filter
 * (dmarc.c) gathers the From domain, the DNS answers and the SPF and DKIM
 * results, and this decides.
 */
#ifndef SLUICE_DMARC_POLICY_H
#define SLUICE_DMARC_POLICY_H

#include <stddef.h>

#include "dmarc_psl.h"

enum dmarc_p {
	DMARC_P_UNSET = 0,	/* sp absent: p applies */
	DMARC_P_NONE,
	DMARC_P_QUARANTINE,
	DMARC_P_REJECT
};

/* The tags of a record that decide (reporting tags are not used). */
struct dmarc_record {
	enum dmarc_p	 p;		/* requested policy */
	enum dmarc_p	 sp;		/* for subdomains, or UNSET */
	int		 adkim_strict;	/* adkim=s */
	int		 aspf_strict;	/* aspf=s */
	int		 pct;		/* 0..100, default 100 */
};

/* One TXT record as the resolver gives it (text may hold NUL bytes). */
struct dmarc_txt {
	const char	*text;		/* not NUL-terminated necessarily */
	size_t		 len;		/* bytes */
};

enum dmarc_select {
	DMARC_SELECT_ONE = 0,	/* exactly one record starts with v=DMARC1 */
	DMARC_SELECT_NONE,	/* none does: as if no record (RFC 7489 6.6.3) */
	DMARC_SELECT_MANY	/* several do: no policy applies (permerror) */
};

/*
 * Which of the TXT records at _dmarc.<domain> is the DMARC record: the
 * one starting with "v" *WSP "=" *WSP "DMARC1" then ";", white space or
 * its end.  *index is set for DMARC_SELECT_ONE.
 */
enum dmarc_select dmarc_record_select(const struct dmarc_txt *txt, size_t n, size_t *index);

/*
 * Parse a selected record with libopendmarc (opendmarc_policy_store_dmarc).
 * The record first loses the tags we do not use (rua, ruf, rf, ri, fo: no
 * reports are sent, and the library's parsers for them have fixed-size
 * buffers), and adkim, aspf and pct values that are not valid are dropped
 * so their defaults apply (RFC 7489 6.3).  from_domain is the author
 * domain.  Returns 0, or -1 with *why set (a bad or missing p or sp, NUL
 * bytes, a tag value too long): DMARC does not apply (permerror).
 */
int		 dmarc_record_parse(const char *text, size_t len, const char *from_domain,
		    struct dmarc_record *rec, const char **why);

/*
 * Identifier alignment (RFC 7489 3.1): strict means the same name,
 * relaxed the same organizational domain.  Both names normalized.
 */
int		 dmarc_aligned(const struct dmarc_psl *psl, const char *from, const char *auth,
		    int strict);

/* One evaluation: in the fields marked in, out in those marked out. */
struct dmarc_eval {
	const char		*from_domain;	/* in: the author domain */
	int			 at_org;	/* in: record found at the organizational domain */
	const struct dmarc_record *rec;		/* in: the policy record */
	const char *const	*spf;		/* in: domains SPF passed (MAIL FROM or HELO) */
	size_t			 nspf;		/* in */
	const char *const	*dkim;		/* in: d= of signatures that passed */
	size_t			 ndkim;		/* in */
	unsigned int		 sample;	/* in: uniform 0..99, drawn for pct */
	int			 spf_aligned;	/* out */
	int			 dkim_aligned;	/* out */
	int			 pass;		/* out: DMARC pass */
	enum dmarc_p		 policy;	/* out: p, or sp for a subdomain */
	enum dmarc_p		 disposition;	/* out: what to do, after pct */
	int			 sampled_out;	/* out: pct spared the message */
};

/*
 * Decide: pass when an SPF or DKIM identifier that passed is aligned;
 * otherwise the policy (sp when the record came from the organizational
 * domain and has one, else p), one step softer when pct < 100 and sample
 * >= pct (reject -> quarantine -> none, RFC 7489 6.6.4).
 */
void		 dmarc_evaluate(const struct dmarc_psl *psl, struct dmarc_eval *e);

/*
 * The value of property key ("header.d") in an Authentication-Results
 * props string ("header.d=example.org header.s=sel"), quotes undone, into
 * out (outlen bytes).  Returns 0, or -1 when absent or too long.
 */
int		 dmarc_prop_get(const char *props, const char *key, char *out, size_t outlen);

/*
 * The domain of an identity: "user@example.org" or "example.org"
 * (the part after the last "@"), normalized into out (DMARC_DOMAIN_MAX).
 * Returns 0 or -1.
 */
int		 dmarc_identity_domain(const char *identity, char *out);

/* "none", "quarantine", "reject"; "absent" for UNSET. */
const char	*dmarc_p_name(enum dmarc_p p);

#endif /* SLUICE_DMARC_POLICY_H */
