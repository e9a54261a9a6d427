/*
 * relay_addr.h - the pure half of the relay filter: client networks
 * (CIDR), the set of local domains, the analysis of a recipient address
 * and the relay decision.  Nothing here knows about sessions; everything
 * is testable on its own (tests/unit/test_relay.c).
 *
 * Client networks are filters/common/net.h's; this file adds the relay's
 * own rule, that no network may be /0.
 *
 * A recipient is "plain local" when it is local@domain with a clean local
 * part (no '%', no '!', no quoted '@', '%' or '!'), no source route, and a
 * domain name (not an address literal, no trailing dot) in the set.
 * Anything else is refused for a client that may not relay, with a reason
 * that names the trick (the classic open-relay test vectors).
 *
 * Ownership: every function copies what it keeps; strings handed in are
 * only read during the call.  A struct relay_policy owns its arrays and is
 * freed with relay_policy_free().
 */
#ifndef SLUICE_RELAY_ADDR_H
#define SLUICE_RELAY_ADDR_H

#include <stddef.h>

#include "common/net.h"

/* Longest domain name (RFC 5321 4.5.3.1.2) and how much of a rcpt a log shows. */
#define RELAY_DOMAIN_MAX	255
#define RELAY_LOG_RCPT_MAX	300

/* What relay_decide() concluded; the first four let the recipient through. */
enum relay_reason {
	RELAY_ALLOW_NETWORK = 0,	/* the client is in networks */
	RELAY_ALLOW_AUTH,		/* authenticated, allow_authenticated */
	RELAY_ALLOW_LOCAL,		/* a plain address in a local domain */
	RELAY_ALLOW_POSTMASTER,		/* <postmaster> without domain (RFC 5321 4.5.1) */
	RELAY_REFUSE_EMPTY,		/* "" (the null path <>) or no recipient */
	RELAY_REFUSE_SOURCE_ROUTE,	/* "@a,@b:user@c" */
	RELAY_REFUSE_QUOTED,		/* quoted local part holding '@', '%' or '!' */
	RELAY_REFUSE_PERCENT,		/* "user%host@local" */
	RELAY_REFUSE_BANG,		/* "host!user@local", "host!user" */
	RELAY_REFUSE_MULTIPLE_AT,	/* "user@ext@local" */
	RELAY_REFUSE_NO_DOMAIN,		/* "user", "user@" */
	RELAY_REFUSE_IP_LITERAL,	/* "user@[192.0.2.1]", "user@[IPv6:::1]" */
	RELAY_REFUSE_TRAILING_DOT,	/* "user@local." */
	RELAY_REFUSE_SYNTAX,		/* bytes no address has (space, control, ...) */
	RELAY_REFUSE_NOT_LOCAL		/* a clean address, domain not local */
};

/* Everything a decision needs; built at init, read-only afterwards. */
struct relay_policy {
	struct filter_net *nets;	/* client networks that may relay */
	size_t		 nnets;		/* how many */
	size_t		 nets_cap;	/* allocated */
	char		**exact;	/* local domains, lower case, sorted */
	size_t		 nexact;	/* how many */
	size_t		 exact_cap;	/* allocated */
	char		**parents;	/* ".example.org" entries, without the dot */
	size_t		 nparents;	/* how many */
	size_t		 parents_cap;	/* allocated */
	int		 allow_authenticated; /* authenticated clients may relay */
};

/*
 * Append one network (filter_net_parse's rules; a /0 is refused too).
 * 0, or -1 with "networks: sentence" in err.
 */
int	 relay_policy_add_network(struct relay_policy *p, const char *s, char *err,
	    size_t errlen);

/*
 * Append one local domain: "example.org" (that name) or ".example.org"
 * (that name and every name under it).  Case is ignored.  Refused with a
 * sentence: empty, a trailing dot, '@', '*', '_', spaces, empty labels,
 * labels over 63 or names over 255 bytes.
 */
int	 relay_policy_add_domain(struct relay_policy *p, const char *s, char *err,
	    size_t errlen);

/*
 * Read a file of domains, one a line (relay_policy_add_domain's rules);
 * '#' starts a comment, blank lines are skipped.  0, or -1 with
 * "PATH:LINE: sentence" (or the open error) in err.
 */
int	 relay_policy_load_domains(struct relay_policy *p, const char *path, char *err,
	    size_t errlen);

/* Sort the domain sets; call once after the last add, before a lookup. */
void	 relay_policy_finish(struct relay_policy *p);

/* Free what p holds and zero it. */
void	 relay_policy_free(struct relay_policy *p);

/* 1 if the domain (len bytes, any case, no trailing dot) is local. */
int	 relay_domain_is_local(const struct relay_policy *p, const char *domain, size_t len);

/*
 * The form of a recipient (mailbox as the core hands it: "local@domain",
 * "postmaster", "" for <>), judged against the local domains: one of
 * RELAY_ALLOW_LOCAL, RELAY_ALLOW_POSTMASTER or a RELAY_REFUSE_*.  Reads
 * at most the string; never allocates.
 */
enum relay_reason relay_addr_check(const struct relay_policy *p, const char *rcpt);

/*
 * The decision for one RCPT: the client address (may be NULL or not an
 * IP: then it is in no network), whether the session is authenticated,
 * and the recipient.
 */
enum relay_reason relay_decide(const struct relay_policy *p, const char *client,
	    int authenticated, const char *rcpt);

/* 1 for the RELAY_REFUSE_* reasons. */
int	 relay_reason_refused(enum relay_reason reason);

/* "network", "authenticated", "local", "postmaster", "empty", "source-route", ... */
const char *relay_reason_name(enum relay_reason reason);

/*
 * A recipient made safe for a log line "rcpt=<...>": control bytes, '<'
 * and '>' become '?' (a quoted local part may hold them), and the copy
 * is cut at RELAY_LOG_RCPT_MAX bytes.  out must hold RELAY_LOG_RCPT_MAX
 * + 1 bytes.
 */
void	 relay_log_rcpt(const char *rcpt, char *out);

#endif /* SLUICE_RELAY_ADDR_H */
