/*
 * spf_syntax.h - the RFC 7208 section 12 grammar of an SPF record, checked
 * strictly.  libspf2 compiles records laxly (a domain-spec without a
 * top label, "ip4:1.2.3.4/032", a second exp=, a NUL byte, an invalid
 * %-escape all pass), and RFC 7208 4.6 says any syntax error anywhere
 * in a record makes it a permerror; the DNS layer runs every SPF record
 * it hands to libspf2 through this check.  Pure code, no allocation.
 */
#ifndef SLUICE_SPF_SYNTAX_H
#define SLUICE_SPF_SYNTAX_H

#include <stddef.h>

/* What a valid record holds, in libspf2's terms. */
struct spf_syntax_counts {
	unsigned int	 mechanisms;	/* directives, and redirect= (libspf2 files it there) */
	unsigned int	 modifiers;	/* exp= and unknown modifiers */
};

/*
 * Check the record text[0..len) (it may hold NUL bytes, which are
 * errors).  It must start with "v=spf1" followed by a space or the end.
 * Returns 0 with *counts filled (counts may be NULL), or -1 with a
 * sentence about the first error in err.
 */
int	 spf_syntax_check(const char *text, size_t len, struct spf_syntax_counts *counts,
	    char *err, size_t errlen);

/*
 * Check an explanation (explain-string, RFC 7208 12: macro-strings and
 * spaces, every macro letter allowed).  Returns 0, or -1 with a sentence.
 */
int	 spf_syntax_explanation(const char *text, char *err, size_t errlen);

#endif /* SLUICE_SPF_SYNTAX_H */
