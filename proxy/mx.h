/*
 * mx.h - where to deliver: a destination (a recipient domain or a smart
 * host) resolved into an ordered list of candidate hosts with addresses.
 *
 * Two layers.  The plan (mx_plan.c) is pure: it decides which DNS
 * queries to ask, reads the answers (struct sluice_dns_answer) and
 * applies the rules below, so unit tests drive it with constructed
 * answers.  The resolver (mx.c) runs a plan on a worker's loop through
 * dns_query() and hands the result to a callback.
 *
 * The rules (RFC 5321 5.1, RFC 7505, and Postfix's smtp_addr.c):
 *   - MX records in preference order, random order among equal
 *     preference (the plan's seed), duplicates and more than
 *     MX_HOSTS_MAX hosts dropped;
 *   - no MX records (NODATA) -> the domain's own A/AAAA ("implicit MX");
 *   - a null MX ("0 .", RFC 7505) -> PERM 5.1.10 "domain does not accept
 *     mail"; a "." record beside real ones is ignored;
 *   - NXDOMAIN on the MX query -> PERM 5.1.2;
 *   - SERVFAIL, TIMEOUT or ERROR on the MX query -> TEMP 4.4.3, and never
 *     a fall-back to A (a broken DNS must not route mail elsewhere);
 *   - an MX host whose address lookups found nothing is skipped; when no
 *     host has an address the result is TEMP 4.4.3 if any address lookup
 *     failed temporarily, else PERM 5.4.4 (Postfix with the default
 *     smtp_defer_if_no_mx_address_found = no);
 *   - an MX target written as an IP address ("192.0.2.1") is used as that
 *     address, with a warning, as Postfix does ("numeric domain name");
 *   - "[host]:port" is a smart host without MX lookup (A/AAAA of host, or
 *     the literal address "[192.0.2.1]", "[IPv6:2001:db8::1]"), and
 *     "host:port" a smart host looked up like a domain; the port defaults
 *     to 25, or to the options' delivery_port (for tests) when set;
 *   - addresses of one host: the preferred family first, at most
 *     MX_ADDRS_MAX; an address already listed for a better host is not
 *     repeated.
 */
#ifndef SLUICE_MX_H
#define SLUICE_MX_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "sluice_filter.h"

struct config_mx;
struct dns_resolver;
struct worker;

#define MX_HOSTS_MAX	10	/* MX hosts kept per destination */
#define MX_ADDRS_MAX	10	/* addresses kept per host */
#define MX_LOOKUPS_MAX	(1 + 2 * MX_HOSTS_MAX)	/* DNS queries per resolution */

enum mx_status {
	MX_OK = 0,		/* hosts[] has at least one host with an address */
	MX_TEMP,		/* try later (reason, dsn say why) */
	MX_PERM			/* bounce */
};

/* inet_protocols: which address families to deliver over. */
enum mx_family {
	MX_INET_ALL = 0,	/* IPv4 and IPv6 */
	MX_INET_IPV4,
	MX_INET_IPV6
};

/* How to resolve; from the relay configuration.  Plain data. */
struct mx_options {
	enum mx_family	 families;	/* inet_protocols */
	int		 prefer_ipv4;	/* address_preference: 0 = IPv6 first */
	unsigned int	 delivery_port;	/* replaces the default 25 when not 0 (tests) */
	size_t		 max_hosts;	/* 0 = MX_HOSTS_MAX (and never more) */
	size_t		 max_addrs;	/* per host; 0 = MX_ADDRS_MAX (and never more) */
};

/* The options from the configuration (delivery_port, inet_protocols, ...). */
void		 mx_options_from_config(struct mx_options *o, const struct config_mx *c);

/* A destination: what a route or a recipient domain says. */
struct mx_dest {
	char		*host;		/* domain or host name, or address text (owned) */
	unsigned int	 port;		/* 0 = default (25 or delivery_port) */
	int		 no_mx;		/* "[host]": no MX lookup */
	int		 literal;	/* "[192.0.2.1]": host is an address */
	int		 smarthost;	/* from a route, not a recipient domain */
};

/* One candidate host, in delivery order. */
struct mx_host {
	char		*name;		/* MX target, domain (implicit MX) or smart host */
	unsigned int	 preference;	/* MX preference; 0 for implicit and smart hosts */
	struct sockaddr_storage *addrs;	/* with the port set, in the order to try */
	size_t		 naddrs;	/* >= 1 in a result */
};

/* The outcome; owned by whoever got it, freed with mx_result_free(). */
struct mx_result {
	enum mx_status	 status;
	char		 dsn[8];	/* enhanced status: "2.0.0", "4.4.3", "5.1.10" */
	char		*reason;	/* one line for logs and DSNs; NULL when OK */
	char		*warning;	/* something odd but used (numeric MX), or NULL */
	char		*domain;	/* the destination's host/domain */
	int		 implicit_mx;	/* no MX records: the domain's own addresses */
	int		 smarthost;	/* copied from the destination */
	struct mx_host	*hosts;		/* in the order to try */
	size_t		 nhosts;
};

/*
 * Parse a destination: "domain" or "host:port" (MX lookup), "[host]" or
 * "[host]:port" (no MX lookup), "[192.0.2.1]:port", "[IPv6:2001:db8::1]".
 * smarthost is stored in d.  Returns 0, or -1 with a sentence in err.
 * Free d's contents with mx_dest_clear().
 */
int		 mx_dest_parse(const char *text, int smarthost, struct mx_dest *d, char *err,
		    size_t errlen);
void		 mx_dest_clear(struct mx_dest *d);

/* --- The plan (pure) ------------------------------------------------------ */

struct mx_plan;

/* A plan for d (copied) under o (copied); seed orders equal preferences. */
struct mx_plan	*mx_plan_new(const struct mx_dest *d, const struct mx_options *o, uint64_t seed);
void		 mx_plan_free(struct mx_plan *p);

/*
 * The next query to ask: returns its id (>= 0) and sets *name (valid
 * while the plan lives) and *type, or -1 when there is none to ask now
 * (ask again after each mx_plan_feed).
 */
int		 mx_plan_next(struct mx_plan *p, const char **name, enum sluice_dns_type *type);
/* The answer to query id (not kept: the plan copies what it needs). */
void		 mx_plan_feed(struct mx_plan *p, int id, const struct sluice_dns_answer *a);
/* 1 when every query asked has been answered and none is left to ask. */
int		 mx_plan_done(const struct mx_plan *p);
/* The result of a finished plan (caller frees); the plan may then be freed. */
struct mx_result *mx_plan_result(struct mx_plan *p);

/* --- Results -------------------------------------------------------------- */

void		 mx_result_free(struct mx_result *r);

/*
 * Loop detection: own[] are our listening addresses (a wildcard address
 * matches loopback addresses on its port; pass the interface addresses
 * too for wildcard listeners).  When a host of r has one of them, that
 * host and every host of equal or worse preference are dropped, as
 * Postfix does; when none is left, r becomes TEMP 4.4.6 "mail for DOMAIN
 * loops back to myself".  Smart hosts are not checked.  Returns 1 when r
 * was changed to TEMP, else 0.
 */
int		 mx_result_check_loop(struct mx_result *r, const struct sockaddr_storage *own,
		    size_t nown);

/* A host and its addresses as one line: "mx1.example.org[192.0.2.1]:25 ...". */
void		 mx_result_format_host(const struct mx_host *h, char *buf, size_t size);

/* --- The resolver (on a worker's loop) ----------------------------------- */

struct mx_lookup;

/* Runs once on the worker, never inside mx_resolve; owns r (free it). */
typedef void (*mx_cb)(void *arg, struct mx_result *r);

/*
 * Resolve d on w's loop (the calling thread must be w's) through dns_query.
 * cb runs exactly once unless mx_lookup_cancel() is called first, never
 * inside this call, after at most two resolver timeouts (the MX query,
 * then all address queries at once).  Never fails: a name that cannot be
 * asked gives a TEMP or PERM result.  d and o are copied.
 */
struct mx_lookup *mx_resolve(struct dns_resolver *res, struct worker *w, const struct mx_dest *d,
		    const struct mx_options *o, uint64_t seed, mx_cb cb, void *arg);
/* cb will not run; the lookup frees itself when its queries come back. */
void		 mx_lookup_cancel(struct mx_lookup *l);

#endif /* SLUICE_MX_H */
