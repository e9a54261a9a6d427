/*
 * spf_policy.h - the pure parts of the spf filter: SPF result names, the
 * policy table (what each result does), reply templates, domain checks
 * and the text of the Received-SPF field.  Full replies are parsed by
 * filters/common/reply.c, skip_networks by filters/common/net.c.
 * No session, no libspf2, no sluice_* calls: the unit test links it alone.
 *
 * Strings handed in are not kept unless said; every output goes into a
 * caller's buffer and is always NUL-terminated.
 */
#ifndef SLUICE_SPF_POLICY_H
#define SLUICE_SPF_POLICY_H

#include <stddef.h>

#include "sluice_filter.h"

/* The RFC 7208 results, in the order of the on_* options. */
enum spf_outcome {
	SPF_OUTCOME_PASS = 0,
	SPF_OUTCOME_FAIL,
	SPF_OUTCOME_SOFTFAIL,
	SPF_OUTCOME_NEUTRAL,
	SPF_OUTCOME_NONE,
	SPF_OUTCOME_TEMPERROR,
	SPF_OUTCOME_PERMERROR,
	SPF_OUTCOME_COUNT
};

/* Which identity a check was about (RFC 7208 2.3, 2.4). */
enum spf_identity {
	SPF_IDENTITY_MAILFROM = 0,
	SPF_IDENTITY_HELO
};

#define SPF_TEMPLATE_MAX	400	/* a reply template, as configured */
#define SPF_REPLY_MAX		480	/* an expanded reply text */
#define SPF_DOMAIN_MAX		253	/* a domain name, without the final dot */

/* What one result does: continue, or a 4xx/5xx reply from a template. */
struct spf_action {
	enum sluice_verdict	 verdict;	/* CONTINUE, TEMPFAIL or REJECT */
	int			 code;		/* 4xx/5xx, 0 with CONTINUE */
	char			 enhanced[16];	/* "5.7.23" */
	char			 text[SPF_TEMPLATE_MAX + 1];	/* template, {name} fields */
};

/* The values a template may name: {domain} {ip} {result} ... */
struct spf_vars {
	const char	*domain;	/* the domain checked */
	const char	*ip;		/* the client address */
	const char	*result;	/* "fail" */
	const char	*identity;	/* "mailfrom" or "helo" */
	const char	*sender;	/* the sender checked, postmaster@helo for <> */
	const char	*explanation;	/* the domain's explanation (fail), else "" */
};

/* "pass", "fail", ...; NULL for a value out of range. */
const char	*spf_outcome_name(enum spf_outcome outcome);
/* "mailfrom" or "helo". */
const char	*spf_identity_name(enum spf_identity identity);

/*
 * Parse one policy table entry for outcome: "continue", "reject",
 * "tempfail" (each keyword brings the reply this outcome gets by default;
 * for_helo picks the HELO wording) or a full reply "550 5.7.23 text"
 * (filter_reply_parse's rules; 4xx tempfails, 5xx rejects).  The text is
 * checked as a template.  Returns 0, or -1 with a sentence in err that
 * starts with "must be" or "reply" (the caller puts the option name in
 * front).
 */
int	 spf_action_parse(const char *spec, enum spf_outcome outcome, int for_helo,
	    struct spf_action *action, char *err, size_t errlen);

/*
 * Check a reply template: printable ASCII, {domain} {ip} {result}
 * {identity} {sender} {explanation} fields, "{{" and "}}" for braces.
 * Returns 0, or -1 with a sentence in err.
 */
int	 spf_template_check(const char *tmpl, char *err, size_t errlen);

/*
 * Expand a checked template into out (outlen > 0).  Field values are
 * made safe for a reply line: bytes that are not printable ASCII become
 * '?', and each value is cut at 200 bytes.  The text is cut to outlen - 1.
 */
void	 spf_template_expand(const char *tmpl, const struct spf_vars *vars, char *out,
	    size_t outlen);

/*
 * The address to check, in canonical text: an IPv4-mapped IPv6 address
 * becomes its IPv4 form.  Returns AF_INET or AF_INET6, or -1 when ip is
 * not an address.
 */
int	 spf_ip_normalize(const char *ip, char *out, size_t outlen);

/*
 * Whether s is a domain SPF can check (RFC 7208 4.3): at least two
 * labels of 1 to 63 bytes, at most 253 bytes (one final dot allowed),
 * letters, digits, '-' and '_' only.  A domain literal, a single label
 * or anything else gives "none" without asking DNS.  Returns 1 or 0.
 */
int	 spf_domain_valid(const char *s);

/* The domain of a sender (after the last '@'), or the sender itself. */
const char *spf_sender_domain(const char *sender);

/*
 * Quote s for a key="value" log field: '"' and '\\' escaped, bytes that
 * are not printable ASCII become '?', cut at max bytes of input with
 * "..." appended.  Returns out.
 */
char	*spf_log_quote(char *out, size_t outlen, const char *s, size_t max);

/* What the Received-SPF field (RFC 7208 9.1) says about one check. */
struct spf_received {
	const char	*result;	/* "pass" ... */
	const char	*receiver;	/* this host's name */
	const char	*domain;	/* the domain checked */
	const char	*ip;		/* the client address */
	const char	*sender;	/* envelope sender, "" for <> */
	const char	*helo;		/* HELO name or NULL */
	enum spf_identity identity;	/* what was checked */
	const char	*problem;	/* for temperror/permerror: why, or NULL */
};

/*
 * The field's value (without "Received-SPF: "): the result, a comment,
 * then client-ip, envelope-from, helo, identity, receiver and problem
 * key-value pairs.  A value that is not a dot-atom is quoted; one with
 * bytes that cannot be quoted safely is left out.  Folded with CRLF TAB
 * before 78 columns where a space may go.  Returns 0, or -1 if outlen is
 * too small.
 */
int	 spf_received_format(const struct spf_received *r, char *out, size_t outlen);

#endif /* SLUICE_SPF_POLICY_H */
