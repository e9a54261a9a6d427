/*
 * ratelimit_policy.h - the pure part of the ratelimit filter: its option
 * values, what a rule does in each phase, the counter key of a client
 * address, sender, recipient or user, and the texts of its replies and
 * log lines.  Nothing here calls the sluice API, so the unit test links
 * it alone.
 *
 * Keys are "<kind>:<value>": "ip:192.0.2.0/24", "ip:2001:db8:1:2::/64",
 * "sender:alice@example.org", "sender_domain:example.org",
 * "recipient:bob@example.net", "recipient_domain:example.net",
 * "user:alice".  Addresses are folded to lower case (ASCII only) and a
 * domain loses a trailing dot, so <Alice@Example.ORG.> and
 * <alice@example.org> share a counter; user names are taken as they are.
 */
#ifndef SLUICE_RATELIMIT_POLICY_H
#define SLUICE_RATELIMIT_POLICY_H

#include <stddef.h>

#include "sluice_filter.h"

/* Room for a key; longer subjects keep their start and a hash of the whole. */
#define RATELIMIT_KEY_MAX	512

enum ratelimit_key {
	RATELIMIT_KEY_IP = 0,		/* client address, masked to prefix4/prefix6 */
	RATELIMIT_KEY_SENDER,		/* MAIL FROM address */
	RATELIMIT_KEY_SENDER_DOMAIN,	/* its domain */
	RATELIMIT_KEY_RECIPIENT,	/* RCPT TO address */
	RATELIMIT_KEY_RECIPIENT_DOMAIN,	/* its domain */
	RATELIMIT_KEY_USER		/* AUTH user name */
};

enum ratelimit_count {
	RATELIMIT_COUNT_CONNECTIONS = 0,	/* at connect */
	RATELIMIT_COUNT_MESSAGES,	/* checked early, counted at end of data */
	RATELIMIT_COUNT_RECIPIENTS	/* at each RCPT */
};

/* What a hook does for a rule. */
enum ratelimit_action {
	RATELIMIT_NONE = 0,	/* nothing in this phase */
	RATELIMIT_CHECK,	/* read the count; refuse when it reached the limit */
	RATELIMIT_COUNT		/* add one; refuse when that went over the limit */
};

/* One instance = one rule. */
struct ratelimit_rule {
	enum ratelimit_key	 key;		/* counted per what */
	enum ratelimit_count	 count;		/* counted what */
	int			 prefix4;	/* key ip: IPv4 prefix length */
	int			 prefix6;	/* key ip: IPv6 prefix length */
	long long		 limit;		/* events allowed per window */
	unsigned long		 window_ms;	/* fixed window */
	int			 fail_closed;	/* on_store_error = tempfail */
};

/* Option values; 0, or -1 for an unknown word. */
int	 ratelimit_parse_key(const char *s, enum ratelimit_key *out);
int	 ratelimit_parse_count(const char *s, enum ratelimit_count *out);
int	 ratelimit_parse_store_error(const char *s, int *fail_closed);
const char *ratelimit_key_name(enum ratelimit_key key);
const char *ratelimit_count_name(enum ratelimit_count count);

/* 0 when the rule makes sense, else -1 with a sentence in err. */
int	 ratelimit_rule_check(const struct ratelimit_rule *rule, char *err, size_t errlen);

/* The action of rule in phase (connect, mail, rcpt or eom). */
enum ratelimit_action ratelimit_action(const struct ratelimit_rule *rule,
	    enum sluice_phase phase);

/* 1 if the rule's key is a recipient's (recipient, recipient_domain). */
int	 ratelimit_key_per_recipient(const struct ratelimit_rule *rule);

/*
 * The key of subject for rule (an address text for ip, a mailbox without
 * <> for the address kinds, a user name for user) into buf.  Returns 0,
 * or -1 when subject yields no key: NULL, the null sender, no domain, an
 * address that is not IP; such events are not counted.
 */
int	 ratelimit_key_make(const struct ratelimit_rule *rule, const char *subject, char *buf,
	    size_t size);

/* "ip:192.0.2.0/24" from "192.0.2.7" and 24; ::ffff:a.b.c.d counts as IPv4. */
int	 ratelimit_key_ip(const char *addr, int prefix4, int prefix6, char *buf, size_t size);

/* A duration for people: "1h", "90s", "1500ms". */
void	 ratelimit_format_duration(unsigned long ms, char *buf, size_t size);

/*
 * s for a log field: '"', '\', control and 8-bit bytes as \xNN, and
 * spaces too unless the field is quoted (key="a b").
 */
char	*ratelimit_log_safe(const char *s, int quoted, char *buf, size_t size);

/*
 * The reply text when key (a ratelimit_key_make result) is over the
 * limit: "Too many messages from 192.0.2.0/24 (limit 100 per 1h), try
 * again later".  Printable ASCII only.
 */
void	 ratelimit_reply_text(const struct ratelimit_rule *rule, const char *key, char *buf,
	    size_t size);

#endif /* SLUICE_RATELIMIT_POLICY_H */
