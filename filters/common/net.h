/*
 * net.h - client network lists for the built-in filters: parse
 * "192.0.2.0/24", "2001:db8::/32", "[2001:db8::]/32" or a bare address,
 * and ask whether a client address is in a list.  Pure code: no session,
 * no sluice_* calls, no allocation.
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) is IPv4 on both sides: a network of
 * ::ffff:0:0/96 or longer is stored as IPv4, and a mapped client address
 * (how IPv4 clients show up on a [::] listener) is matched as IPv4.
 *
 * Strings handed in are only read during the call.
 */
#ifndef SLUICE_FILTER_NET_H
#define SLUICE_FILTER_NET_H

#include <stddef.h>

/* filter_net_parse's answer for a /0: a network that holds every address. */
#define FILTER_NET_ALL		(-2)

/* One network: an address and a prefix length. */
struct filter_net {
	int		 family;	/* AF_INET or AF_INET6 */
	unsigned char	 addr[16];	/* network bytes, host bits zero */
	unsigned int	 prefix;	/* significant bits */
};

/*
 * Parse one network: an address with an optional "/prefix" (decimal, at
 * most 3 digits), IPv6 optionally in brackets as Postfix writes it.  A
 * bare address is a host (/32, /128).  Returns 0; -1 with a sentence in
 * err (not an address, prefix out of range, bits set past the prefix);
 * or FILTER_NET_ALL with a sentence in err for a /0, which a list should
 * refuse (the caller may say why in its own words).  The sentence quotes
 * s but names no option: the caller puts the option name in front.
 */
int	 filter_net_parse(const char *s, struct filter_net *out, char *err, size_t errlen);

/*
 * 1 if the address text (as sluice_client_address gives it) is in one of
 * the n networks, else 0: also for NULL and for text that is not an
 * address ("unix:/path", a scoped "fe80::1%eth0").
 */
int	 filter_net_match(const struct filter_net *nets, size_t n, const char *address);

#endif /* SLUICE_FILTER_NET_H */
