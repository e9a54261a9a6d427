/*
 * net.c - client network lists for the built-in filters (CIDR, IPv4 and
 * IPv6).  See net.h.
 *
 * A network with bits set past its prefix ("192.0.2.1/24") is refused
 * rather than masked: it is usually a host written with the wrong prefix,
 * and silently widening it to the whole network would let in clients the
 * writer never meant.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

#define FILTER_NET_TEXT_MAX	64	/* "[ffff:...:255.255.255.255]/128" fits */

static int	 filter_net_prefix_parse(const char *, unsigned int, unsigned int *);
static int	 filter_net_address(const char *, struct filter_net *);
static void	 filter_net_unmap(struct filter_net *);
static int	 filter_net_host_bits_clear(const struct filter_net *);
static void	 filter_net_format(const struct filter_net *, char *, size_t);
static int	 filter_net_contains(const struct filter_net *, const struct filter_net *);

/* Decimal digits only, no sign, at most 3 of them, at most max.  0 or -1. */
static int
filter_net_prefix_parse(const char *s, unsigned int max, unsigned int *out)
{
	unsigned int	 v = 0;
	size_t		 i;

	if (*s == '\0' || strlen(s) > 3)
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* An address in text, as a host network (/32, /128).  0 or -1. */
static int
filter_net_address(const char *s, struct filter_net *n)
{
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, s, n->addr) == 1) {
		n->family = AF_INET;
		n->prefix = 32;
	} else if (inet_pton(AF_INET6, s, n->addr) == 1) {
		n->family = AF_INET6;
		n->prefix = 128;
	} else
		return -1;
	return 0;
}

/* ::ffff:a.b.c.d/96+ is an IPv4 network: that is how clients show up on [::]. */
static void
filter_net_unmap(struct filter_net *n)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (n->family != AF_INET6 || n->prefix < 96 || memcmp(n->addr, mapped, 12) != 0)
		return;
	memmove(n->addr, n->addr + 12, 4);
	memset(n->addr + 4, 0, 12);
	n->family = AF_INET;
	n->prefix -= 96;
}

static int
filter_net_host_bits_clear(const struct filter_net *n)
{
	unsigned int	 bytes = n->family == AF_INET ? 4 : 16, i;

	for (i = 0; i < bytes; i++) {
		unsigned int	 first = i * 8;
		unsigned char	 mask;

		if (first + 8 <= n->prefix)
			continue;
		mask = first >= n->prefix ? 0xff : (unsigned char)(0xff >> (n->prefix - first));
		if (n->addr[i] & mask)
			return 0;
	}
	return 1;
}

/* n with its host bits cleared, as "192.0.2.0/24": what the writer likely meant. */
static void
filter_net_format(const struct filter_net *n, char *out, size_t outlen)
{
	struct filter_net	 masked = *n;
	char			 text[INET6_ADDRSTRLEN];
	unsigned int		 i;

	for (i = masked.prefix; i < 128; i++)
		masked.addr[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	if (inet_ntop(masked.family, masked.addr, text, sizeof(text)) == NULL)
		text[0] = '\0';
	snprintf(out, outlen, "%s/%u", text, masked.prefix);
}

int
filter_net_parse(const char *s, struct filter_net *out, char *err, size_t errlen)
{
	char		 buf[FILTER_NET_TEXT_MAX], *slash, *a, fix[FILTER_NET_TEXT_MAX];
	unsigned int	 max;
	size_t		 len;

	memset(out, 0, sizeof(*out));
	if ((len = strlen(s)) == 0 || len >= sizeof(buf))
		return snprintf(err, errlen, "\"%.80s\" is not an address or address/prefix",
		    s), -1;
	memcpy(buf, s, len + 1);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	a = buf;
	/* "[2001:db8::]/32", as Postfix's mynetworks writes IPv6. */
	if (a[0] == '[' && (len = strlen(a)) > 2 && a[len - 1] == ']') {
		a[len - 1] = '\0';
		a++;
	}
	if (filter_net_address(a, out) == -1)
		return snprintf(err, errlen, "\"%.80s\" is not an address or address/prefix",
		    s), -1;
	max = out->prefix;
	if (slash != NULL && filter_net_prefix_parse(slash, max, &out->prefix) == -1)
		return snprintf(err, errlen, "\"%.80s\": the prefix must be a number from 1 "
		    "to %u", s, max), -1;
	if (!filter_net_host_bits_clear(out)) {
		filter_net_format(out, fix, sizeof(fix));
		return snprintf(err, errlen, "\"%.80s\" has bits set past the prefix; write "
		    "the network address, %s", s, fix), -1;
	}
	filter_net_unmap(out);
	if (out->prefix == 0)
		return snprintf(err, errlen, "\"%.80s\" would match every client; leave the "
		    "filter out of the chain instead", s), FILTER_NET_ALL;
	return 0;
}

/* Whether the host address client is in network n (same family only). */
static int
filter_net_contains(const struct filter_net *n, const struct filter_net *client)
{
	unsigned int	 full = n->prefix / 8, rest = n->prefix % 8;
	unsigned char	 mask;

	if (n->family != client->family || memcmp(n->addr, client->addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (client->addr[full] & mask) == n->addr[full];
}

int
filter_net_match(const struct filter_net *nets, size_t n, const char *address)
{
	struct filter_net	 client;
	size_t			 i;

	if (address == NULL || filter_net_address(address, &client) == -1)
		return 0;
	filter_net_unmap(&client);
	for (i = 0; i < n; i++)
		if (filter_net_contains(&nets[i], &client))
			return 1;
	return 0;
}
