/*
 * dmarc_psl.h - the public suffix list and organizational domains
 * (RFC 7489 3.2), and the domain-name checks DMARC needs.  Pure code.
 *
 * A loaded list is read-only: one instance's list is shared by every
 * worker thread without locks.
 */
#ifndef SLUICE_DMARC_PSL_H
#define SLUICE_DMARC_PSL_H

#include <stddef.h>

/* A domain name as text, its final NUL included. */
#define DMARC_DOMAIN_MAX	254

struct dmarc_psl;

/*
 * Read a list in the publicsuffix.org format (rules, "*." wildcards, "!"
 * exceptions, "//" comments; Unicode rules are converted to A-labels).
 * Returns NULL with a sentence in err when the file cannot be read or
 * holds no rule.
 */
struct dmarc_psl *dmarc_psl_load(const char *path, char *err, size_t errlen);
/* The same from text in memory (tests); NULL when it holds no rule. */
struct dmarc_psl *dmarc_psl_parse(const char *text, size_t len);
void		 dmarc_psl_free(struct dmarc_psl *psl);
/* Rules held. */
size_t		 dmarc_psl_count(const struct dmarc_psl *psl);

/*
 * The organizational domain of domain (normalized, see below): its public
 * suffix plus one label; a domain that is itself a public suffix is its
 * own.  The result points into domain.
 */
const char	*dmarc_org_domain(const struct dmarc_psl *psl, const char *domain);

/*
 * Check and normalize a DNS domain name: letters, digits, "-" and "_" in
 * labels of 1 to 63 bytes, at most 253 bytes, one final dot dropped,
 * lower-cased into out (DMARC_DOMAIN_MAX bytes).  Returns 0, or -1 for
 * anything else (address literals, 8-bit, empty labels).
 */
int		 dmarc_domain_normalize(const char *in, size_t len, char *out);

/*
 * The same for a name that may hold UTF-8 labels (list rules, EAI From
 * domains): each such label becomes its A-label ("xn--" and Punycode, with
 * no IDNA mapping: upper-case letters stay as they are), then the name is
 * normalized.  Returns 0 or -1.
 */
int		 dmarc_domain_to_ascii(const char *in, size_t len, char *out);

/*
 * RFC 3492 Punycode of the UTF-8 label in[0..len) as "xn--..." into out
 * (outlen bytes), for rules and tests.  Returns 0, or -1 for bad UTF-8
 * or no room.
 */
int		 dmarc_punycode_label(const char *in, size_t len, char *out, size_t outlen);

#endif /* SLUICE_DMARC_PSL_H */
