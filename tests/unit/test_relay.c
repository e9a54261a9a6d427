/*
 * test_relay.c - the pure half of the relay filter: the classic open-relay
 * test vectors (abuse.net / MAPS relay-test / DSBL relaytest / nmap
 * smtp-open-relay) against a recipient analysis, the relay's rules on
 * client networks (the parsing itself is tested in test_filter_common.c),
 * the local domain set and its file, the decision with and without
 * authentication, and the log copy of a recipient.  Every vector is also run on each of its prefixes in an
 * exactly sized buffer (ASan catches an over-read), and a seeded mutation
 * loop checks that nothing non-plain is ever called local.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "relay_addr.h"

#define LOCAL	"local.example.org"
#define EXT	"ext.example.com"
#define IP	"192.0.2.1"

struct vector {
	const char		*rcpt;		/* mailbox as the core hands it */
	enum relay_reason	 want;		/* for a client that may not relay */
};

/*
 * Local domains: local.example.org, example.net and its subdomains.  The
 * vectors put the "target" (the third party) in EXT and the relay under
 * test in LOCAL or [IP], as the relay testers do.
 */
static const struct vector vectors[] = {
	/* nmap smtp-open-relay / abuse.net: the 16 RCPT forms. */
	{ "relaytest@" EXT, RELAY_REFUSE_NOT_LOCAL },
	{ "relaytest%" EXT "@[" IP "]", RELAY_REFUSE_PERCENT },
	{ "relaytest%" EXT "@" LOCAL, RELAY_REFUSE_PERCENT },
	{ "\"relaytest@" EXT "\"", RELAY_REFUSE_QUOTED },
	{ "\"relaytest%" EXT "\"", RELAY_REFUSE_QUOTED },
	{ "relaytest@" EXT "@[" IP "]", RELAY_REFUSE_MULTIPLE_AT },
	{ "\"relaytest@" EXT "\"@[" IP "]", RELAY_REFUSE_QUOTED },
	{ "relaytest@" EXT "@" LOCAL, RELAY_REFUSE_MULTIPLE_AT },
	{ "@[" IP "]:relaytest@" EXT, RELAY_REFUSE_SOURCE_ROUTE },
	{ "@" LOCAL ":relaytest@" EXT, RELAY_REFUSE_SOURCE_ROUTE },
	{ EXT "!relaytest", RELAY_REFUSE_BANG },
	{ EXT "!relaytest@[" IP "]", RELAY_REFUSE_BANG },
	{ EXT "!relaytest@" LOCAL, RELAY_REFUSE_BANG },
	/* DSBL relaytest and MAPS relay-test additions. */
	{ "relaytest%" EXT, RELAY_REFUSE_PERCENT },
	{ "\"relaytest@" EXT "\"@" LOCAL, RELAY_REFUSE_QUOTED },
	{ "\"relaytest%" EXT "\"@" LOCAL, RELAY_REFUSE_QUOTED },
	{ "@" EXT ":relaytest@" LOCAL, RELAY_REFUSE_SOURCE_ROUTE },
	{ "relaytest@[" IP "]", RELAY_REFUSE_IP_LITERAL },
	{ "relaytest@localhost", RELAY_REFUSE_NOT_LOCAL },
	{ "relaytest@[127.0.0.1]", RELAY_REFUSE_IP_LITERAL },
	/* The issue's list. */
	{ "user%host@" LOCAL, RELAY_REFUSE_PERCENT },
	{ "user%host.ext@[127.0.0.1]", RELAY_REFUSE_PERCENT },
	{ "host!user@" LOCAL, RELAY_REFUSE_BANG },
	{ "@" LOCAL ":user@" EXT, RELAY_REFUSE_SOURCE_ROUTE },
	{ "@a.example,@b.example:user@c.example", RELAY_REFUSE_SOURCE_ROUTE },
	{ "\"user@ext\"@" LOCAL, RELAY_REFUSE_QUOTED },
	{ "\"user%ext\"@" LOCAL, RELAY_REFUSE_QUOTED },
	{ "\"user!ext\"@" LOCAL, RELAY_REFUSE_QUOTED },
	{ "\"user\\@ext\"@" LOCAL, RELAY_REFUSE_QUOTED },
	{ "\"user\\%ext\"@" LOCAL, RELAY_REFUSE_QUOTED },
	{ "user@[192.0.2.1]", RELAY_REFUSE_IP_LITERAL },
	{ "user@[IPv6:::1]", RELAY_REFUSE_IP_LITERAL },
	{ "user@[IPv6:2001:db8::1]", RELAY_REFUSE_IP_LITERAL },
	{ "user@[tag:content]", RELAY_REFUSE_IP_LITERAL },
	{ "user@" LOCAL ".", RELAY_REFUSE_TRAILING_DOT },
	{ "user@LOCAL.Example.ORG.", RELAY_REFUSE_TRAILING_DOT },
	{ "user@example.net.", RELAY_REFUSE_TRAILING_DOT },
	{ "user@" EXT ".", RELAY_REFUSE_TRAILING_DOT },
	{ "user@.", RELAY_REFUSE_TRAILING_DOT },
	{ "user@", RELAY_REFUSE_NO_DOMAIN },
	{ "user", RELAY_REFUSE_NO_DOMAIN },
	{ "postmasterx", RELAY_REFUSE_NO_DOMAIN },
	{ "postmaste", RELAY_REFUSE_NO_DOMAIN },
	{ "\"postmaster\"", RELAY_REFUSE_NO_DOMAIN },
	{ "", RELAY_REFUSE_EMPTY },
	{ "postmaster@" EXT, RELAY_REFUSE_NOT_LOCAL },
	{ "post%master", RELAY_REFUSE_PERCENT },
	{ "@" LOCAL, RELAY_REFUSE_SOURCE_ROUTE },
	/* Suffix tricks on the domain set. */
	{ "user@" LOCAL "." EXT, RELAY_REFUSE_NOT_LOCAL },
	{ "user@x" LOCAL, RELAY_REFUSE_NOT_LOCAL },
	{ "user@sub." LOCAL, RELAY_REFUSE_NOT_LOCAL },
	{ "user@example.org", RELAY_REFUSE_NOT_LOCAL },
	{ "user@evilexample.net", RELAY_REFUSE_NOT_LOCAL },
	{ "user@example.net.evil.example", RELAY_REFUSE_NOT_LOCAL },
	{ "user@net", RELAY_REFUSE_NOT_LOCAL },
	/* Bytes no address has. */
	{ "user@" LOCAL ":25", RELAY_REFUSE_SYNTAX },
	{ "user@" LOCAL ",x@" EXT, RELAY_REFUSE_MULTIPLE_AT },
	{ "user@" LOCAL ",evil.example", RELAY_REFUSE_SYNTAX },
	{ "user@" EXT "%" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "user@local..example.org", RELAY_REFUSE_SYNTAX },
	{ "user@.local.example.org", RELAY_REFUSE_SYNTAX },
	{ "us er@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "user@local example.org", RELAY_REFUSE_SYNTAX },
	{ "user\r\n@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "user\t@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ ".user@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "user.@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "us..er@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "\"unterminated@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "\"a\"b@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "\"a\\", RELAY_REFUSE_SYNTAX },
	{ "\"a\x01\"@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "<user@" LOCAL ">", RELAY_REFUSE_SYNTAX },
	{ "user(comment)@" LOCAL, RELAY_REFUSE_SYNTAX },
	{ "user@" LOCAL "@", RELAY_REFUSE_MULTIPLE_AT },
	{ "user@@" LOCAL, RELAY_REFUSE_MULTIPLE_AT },
	{ "user@[" LOCAL, RELAY_REFUSE_IP_LITERAL },
	/* Plain local addresses: case never decides. */
	{ "user@" LOCAL, RELAY_ALLOW_LOCAL },
	{ "User@LOCAL.Example.ORG", RELAY_ALLOW_LOCAL },
	{ "USER@" LOCAL, RELAY_ALLOW_LOCAL },
	{ "first.last+tag@" LOCAL, RELAY_ALLOW_LOCAL },
	{ "o'brien@" LOCAL, RELAY_ALLOW_LOCAL },
	{ "\"john smith\"@" LOCAL, RELAY_ALLOW_LOCAL },
	{ "\"a\\\"b\"@" LOCAL, RELAY_ALLOW_LOCAL },
	{ "\xc3\xbcser@" LOCAL, RELAY_ALLOW_LOCAL },
	{ "user@example.net", RELAY_ALLOW_LOCAL },
	{ "user@EXAMPLE.NET", RELAY_ALLOW_LOCAL },
	{ "user@a.b.example.net", RELAY_ALLOW_LOCAL },
	{ "user@Mail.Example.Net", RELAY_ALLOW_LOCAL },
	{ "postmaster@" LOCAL, RELAY_ALLOW_LOCAL },
	{ "postmaster", RELAY_ALLOW_POSTMASTER },
	{ "POSTMASTER", RELAY_ALLOW_POSTMASTER },
	{ "PostMaster", RELAY_ALLOW_POSTMASTER },
};

static void	 policy_local(struct relay_policy *);
static void	 policy_add_net(struct relay_policy *, const char *);
static char	*write_file(const char *, size_t);

/* The policy of the vectors: no networks, three kinds of local domain. */
static void
policy_local(struct relay_policy *p)
{
	char	 err[256];

	memset(p, 0, sizeof(*p));
	p->allow_authenticated = 1;
	assert_int_equal(relay_policy_add_domain(p, "LOCAL.example.ORG", err, sizeof(err)), 0);
	assert_int_equal(relay_policy_add_domain(p, ".example.net", err, sizeof(err)), 0);
	relay_policy_finish(p);
}

static void
policy_add_net(struct relay_policy *p, const char *s)
{
	char	 err[256];

	assert_int_equal(relay_policy_add_network(p, s, err, sizeof(err)), 0);
}

/* A temporary file with these bytes; the caller unlinks and frees the path. */
static char *
write_file(const char *data, size_t len)
{
	char	*path = strdup("/tmp/test_relay.XXXXXX");
	int	 fd;

	assert_non_null(path);
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

static void
test_vectors(void **state)
{
	struct relay_policy	 p;
	size_t			 i;

	policy_local(&p);
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		enum relay_reason got = relay_addr_check(&p, vectors[i].rcpt);

		if (got != vectors[i].want)
			fail_msg("<%s>: got %s, want %s", vectors[i].rcpt, relay_reason_name(got),
			    relay_reason_name(vectors[i].want));
		/* A client that may not relay gets exactly the same answer. */
		assert_int_equal(relay_decide(&p, "198.51.100.7", 0, vectors[i].rcpt), got);
	}
	assert_int_equal(relay_addr_check(&p, NULL), RELAY_REFUSE_EMPTY);
	relay_policy_free(&p);
}

/* Every prefix of every vector, in a buffer of exactly its size. */
static void
test_vector_prefixes(void **state)
{
	struct relay_policy	 p;
	size_t			 i, n, len;
	char			*buf;

	policy_local(&p);
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		len = strlen(vectors[i].rcpt);
		for (n = 0; n <= len; n++) {
			assert_non_null(buf = malloc(n + 1));
			memcpy(buf, vectors[i].rcpt, n);
			buf[n] = '\0';
			(void)relay_addr_check(&p, buf);
			free(buf);
		}
	}
	/* A prefix of a refused form never becomes local by being cut short. */
	assert_int_equal(relay_addr_check(&p, "user%host"), RELAY_REFUSE_PERCENT);
	assert_int_equal(relay_addr_check(&p, "\"user@ext\""), RELAY_REFUSE_QUOTED);
	relay_policy_free(&p);
}

/*
 * Seeded mutations of the vectors: whatever comes out, "local" means one
 * '@', no '%', '!', control byte or route, no trailing dot, and a domain
 * the set holds (so no address literal).
 */
static void
test_mutations_never_local_unless_plain(void **state)
{
	static const char alphabet[] = "@%!\".:[]\\,<> \t\r\nA.aZ-_\x80\xff\x01";
	struct relay_policy	 p;
	uint32_t		 seed = 0x2545f491u;
	char			 buf[128];
	size_t			 iter, k, len, nv = sizeof(vectors) / sizeof(vectors[0]);
	const char		*at;

	policy_local(&p);
	for (iter = 0; iter < 200000; iter++) {
		snprintf(buf, sizeof(buf), "%s", vectors[iter % nv].rcpt);
		len = strlen(buf);
		for (k = 0; k < 1 + iter % 3 && len > 0; k++) {
			seed ^= seed << 13;
			seed ^= seed >> 17;
			seed ^= seed << 5;
			buf[seed % len] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
		}
		if (relay_addr_check(&p, buf) != RELAY_ALLOW_LOCAL)
			continue;
		assert_null(strpbrk(buf, "%!\r\n\t"));
		assert_true(buf[0] != '@' && buf[strlen(buf) - 1] != '.');
		assert_non_null(at = strrchr(buf, '@'));
		assert_true(relay_domain_is_local(&p, at + 1, strlen(at + 1)));
		assert_ptr_equal(strchr(buf, '@'), at);
	}
	relay_policy_free(&p);
}

static void
test_networks_good(void **state)
{
	struct relay_policy	 p;

	memset(&p, 0, sizeof(p));
	policy_add_net(&p, "192.0.2.0/24");
	policy_add_net(&p, "[2001:db8::]/32");
	policy_add_net(&p, "::ffff:198.51.100.0/120");
	assert_int_equal(p.nnets, 3);
	assert_int_equal(p.nets[0].family, AF_INET);
	assert_int_equal(p.nets[0].prefix, 24);
	assert_int_equal(p.nets[1].family, AF_INET6);
	/* An IPv4-mapped network is an IPv4 one. */
	assert_int_equal(p.nets[2].family, AF_INET);
	assert_int_equal(p.nets[2].prefix, 24);
	relay_policy_free(&p);
}

/* Every refusal names the option; a /0 is refused in the relay's words. */
static void
test_networks_bad(void **state)
{
	static const char *const bad[] = {
		"", "192.0.2.0/33", "example.org", "192.0.2.1/24", "0.0.0.0/0", "::/0",
		"::ffff:0.0.0.0/96", "1.2.3.4/0",
	};
	struct relay_policy	 p;
	char			 err[256];
	size_t			 i;

	memset(&p, 0, sizeof(p));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (relay_policy_add_network(&p, bad[i], err, sizeof(err)) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(strncmp(err, "networks: \"", 11) == 0);
	}
	assert_int_equal(p.nnets, 0);
	relay_policy_add_network(&p, "192.0.2.1/24", err, sizeof(err));
	assert_non_null(strstr(err, "bits set past the prefix"));
	relay_policy_add_network(&p, "::/0", err, sizeof(err));
	assert_string_equal(err, "networks: \"::/0\" would let every client relay; leave "
	    "the relay filter out of the chain instead");
	relay_policy_add_network(&p, "192.0.2.0/33", err, sizeof(err));
	assert_non_null(strstr(err, "from 1 to 32"));
	relay_policy_free(&p);
}

static void
test_net_match(void **state)
{
	struct relay_policy	 p;

	memset(&p, 0, sizeof(p));
	policy_add_net(&p, "192.0.2.0/24");
	policy_add_net(&p, "10.0.0.0/9");
	policy_add_net(&p, "198.51.100.7");
	policy_add_net(&p, "2001:db8::/32");
	policy_add_net(&p, "::1/128");
	assert_true(filter_net_match(p.nets, p.nnets, "192.0.2.0"));
	assert_true(filter_net_match(p.nets, p.nnets, "192.0.2.255"));
	assert_false(filter_net_match(p.nets, p.nnets, "192.0.3.0"));
	assert_false(filter_net_match(p.nets, p.nnets, "192.0.1.255"));
	assert_true(filter_net_match(p.nets, p.nnets, "10.127.255.255"));
	assert_false(filter_net_match(p.nets, p.nnets, "10.128.0.0"));
	assert_true(filter_net_match(p.nets, p.nnets, "198.51.100.7"));
	assert_false(filter_net_match(p.nets, p.nnets, "198.51.100.8"));
	assert_false(filter_net_match(p.nets, p.nnets, "198.51.100.6"));
	assert_true(filter_net_match(p.nets, p.nnets, "2001:db8::5"));
	assert_true(filter_net_match(p.nets, p.nnets, "2001:DB8:ffff::1"));
	assert_false(filter_net_match(p.nets, p.nnets, "2001:db9::1"));
	assert_true(filter_net_match(p.nets, p.nnets, "::1"));
	assert_false(filter_net_match(p.nets, p.nnets, "::2"));
	/* Clients on a dual-stack socket, and what is no address at all. */
	assert_true(filter_net_match(p.nets, p.nnets, "::ffff:192.0.2.9"));
	assert_false(filter_net_match(p.nets, p.nnets, "::ffff:192.0.3.9"));
	assert_false(filter_net_match(p.nets, p.nnets, "127.0.0.1"));
	assert_false(filter_net_match(p.nets, p.nnets, "unix:/run/sluice.sock"));
	assert_false(filter_net_match(p.nets, p.nnets, "fe80::1%eth0"));
	assert_false(filter_net_match(p.nets, p.nnets, ""));
	assert_false(filter_net_match(p.nets, p.nnets, NULL));
	/* An IPv4 network never matches an IPv6 client of the same bytes. */
	assert_false(filter_net_match(p.nets, p.nnets, "c000:0200::"));
	assert_false(filter_net_match(NULL, 0, "192.0.2.1"));
	relay_policy_free(&p);
}

static void
test_decide(void **state)
{
	struct relay_policy	 p;

	policy_local(&p);
	policy_add_net(&p, "192.0.2.0/24");
	policy_add_net(&p, "2001:db8::/32");
	/* A client in networks may send anything, even forms refused otherwise. */
	assert_int_equal(relay_decide(&p, "192.0.2.50", 0, "relaytest@" EXT),
	    RELAY_ALLOW_NETWORK);
	assert_int_equal(relay_decide(&p, "192.0.2.50", 0, "user%host@" LOCAL),
	    RELAY_ALLOW_NETWORK);
	assert_int_equal(relay_decide(&p, "2001:db8::7", 0, "@a:user@" EXT),
	    RELAY_ALLOW_NETWORK);
	/* Outside: only plain local recipients and postmaster. */
	assert_int_equal(relay_decide(&p, "203.0.113.1", 0, "relaytest@" EXT),
	    RELAY_REFUSE_NOT_LOCAL);
	assert_int_equal(relay_decide(&p, "203.0.113.1", 0, "user@" LOCAL), RELAY_ALLOW_LOCAL);
	assert_int_equal(relay_decide(&p, "203.0.113.1", 0, "postmaster"),
	    RELAY_ALLOW_POSTMASTER);
	assert_int_equal(relay_decide(&p, NULL, 0, "relaytest@" EXT), RELAY_REFUSE_NOT_LOCAL);
	assert_int_equal(relay_decide(&p, "unix:/s", 0, "relaytest@" EXT),
	    RELAY_REFUSE_NOT_LOCAL);
	/* Authenticated: allowed by default, not when allow_authenticated = no. */
	assert_int_equal(relay_decide(&p, "203.0.113.1", 1, "relaytest@" EXT), RELAY_ALLOW_AUTH);
	assert_int_equal(relay_decide(&p, "203.0.113.1", 1, "user%host@" LOCAL),
	    RELAY_ALLOW_AUTH);
	p.allow_authenticated = 0;
	assert_int_equal(relay_decide(&p, "203.0.113.1", 1, "relaytest@" EXT),
	    RELAY_REFUSE_NOT_LOCAL);
	assert_int_equal(relay_decide(&p, "203.0.113.1", 1, "user@" LOCAL), RELAY_ALLOW_LOCAL);
	/* The network wins over the flag either way. */
	assert_int_equal(relay_decide(&p, "192.0.2.1", 1, "x@" EXT), RELAY_ALLOW_NETWORK);
	relay_policy_free(&p);
}

static void
test_decide_empty_policy(void **state)
{
	struct relay_policy	 p;

	memset(&p, 0, sizeof(p));
	relay_policy_finish(&p);
	assert_int_equal(relay_decide(&p, "127.0.0.1", 0, "user@" LOCAL),
	    RELAY_REFUSE_NOT_LOCAL);
	assert_int_equal(relay_decide(&p, "127.0.0.1", 0, "postmaster"),
	    RELAY_ALLOW_POSTMASTER);
	assert_int_equal(relay_decide(&p, "127.0.0.1", 1, "user@" EXT),
	    RELAY_REFUSE_NOT_LOCAL);
	relay_policy_free(&p);
}

static void
test_domains_bad(void **state)
{
	static const char *const bad[] = {
		"", ".", "..example.org", "example.org.", ".example.org.", "*.example.org",
		"user@example.org", "exa mple.org", "my_domain.example", "a..b", "[192.0.2.1]",
		"example.org:25", "\texample.org",
		/* a 64-byte label */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	};
	struct relay_policy	 p;
	char			 err[256], name[300];
	size_t			 i;

	memset(&p, 0, sizeof(p));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (relay_policy_add_domain(&p, bad[i], err, sizeof(err)) != -1)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_non_null(strstr(err, "domains: "));
	}
	relay_policy_add_domain(&p, "example.org.", err, sizeof(err));
	assert_non_null(strstr(err, "ends with a dot"));
	relay_policy_add_domain(&p, "*.example.org", err, sizeof(err));
	assert_non_null(strstr(err, "no wildcards"));
	/* 63-byte labels are fine; 255 bytes in all is, 256 is not. */
	memset(name, 'a', 63);
	strcpy(name + 63, ".example");
	assert_int_equal(relay_policy_add_domain(&p, name, err, sizeof(err)), 0);
	for (i = 0; i < 255; i++)
		name[i] = i % 2 ? '.' : 'a';
	name[254] = 'a';
	name[255] = '\0';
	assert_int_equal(relay_policy_add_domain(&p, name, err, sizeof(err)), 0);
	name[255] = 'a';	/* the last label is "aa": 256 bytes */
	name[256] = '\0';
	assert_int_equal(relay_policy_add_domain(&p, name, err, sizeof(err)), -1);
	assert_int_equal(p.nexact, 2);
	assert_int_equal(p.nparents, 0);
	relay_policy_free(&p);
}

static void
test_domains_match(void **state)
{
	struct relay_policy	 p;
	char			 err[256];

	memset(&p, 0, sizeof(p));
	assert_int_equal(relay_policy_add_domain(&p, "Example.ORG", err, sizeof(err)), 0);
	assert_int_equal(relay_policy_add_domain(&p, ".Corp.Example", err, sizeof(err)), 0);
	assert_int_equal(relay_policy_add_domain(&p, "b\xc3\xbc" "cher.example", err,
	    sizeof(err)), 0);
	assert_int_equal(relay_policy_add_domain(&p, "example.org", err, sizeof(err)), 0);
	relay_policy_finish(&p);
	assert_true(relay_domain_is_local(&p, "example.org", 11));
	assert_true(relay_domain_is_local(&p, "EXAMPLE.org", 11));
	assert_false(relay_domain_is_local(&p, "www.example.org", 15));
	assert_false(relay_domain_is_local(&p, "example.or", 10));
	assert_true(relay_domain_is_local(&p, "example.orgX", 11));	/* len bounds it */
	assert_true(relay_domain_is_local(&p, "corp.example", 12));
	assert_true(relay_domain_is_local(&p, "a.b.CORP.example", 16));
	assert_false(relay_domain_is_local(&p, "xcorp.example", 13));
	assert_false(relay_domain_is_local(&p, "example", 7));
	assert_true(relay_domain_is_local(&p, "B\xc3\xbc" "CHER.example",
	    strlen("B\xc3\xbc" "CHER.example")));
	assert_false(relay_domain_is_local(&p, "xn--bcher-kva.example",
	    strlen("xn--bcher-kva.example")));
	assert_false(relay_domain_is_local(&p, "", 0));
	relay_policy_free(&p);
}

static void
test_domains_file(void **state)
{
	static const char text[] =
	    "# local domains\n"
	    "\n"
	    "   Example.ORG   # the main one\r\n"
	    "\t.corp.example\t\n"
	    "#.commented.example\n"
	    "last.example";		/* no final newline */
	struct relay_policy	 p;
	char			 err[256], *path;

	memset(&p, 0, sizeof(p));
	path = write_file(text, sizeof(text) - 1);
	assert_int_equal(relay_policy_load_domains(&p, path, err, sizeof(err)), 0);
	relay_policy_finish(&p);
	assert_int_equal(p.nexact, 2);
	assert_int_equal(p.nparents, 1);
	assert_int_equal(relay_addr_check(&p, "u@example.org"), RELAY_ALLOW_LOCAL);
	assert_int_equal(relay_addr_check(&p, "u@x.corp.example"), RELAY_ALLOW_LOCAL);
	assert_int_equal(relay_addr_check(&p, "u@last.example"), RELAY_ALLOW_LOCAL);
	assert_int_equal(relay_addr_check(&p, "u@commented.example"), RELAY_REFUSE_NOT_LOCAL);
	unlink(path);
	free(path);
	relay_policy_free(&p);
}

static void
test_domains_file_errors(void **state)
{
	static const struct {
		const char	*text;
		size_t		 len;
		const char	*want;
	} cases[] = {
		{ "a.example\nb.example c.example\n", 30, ":2: more than one domain" },
		{ "a.example\n\nbad.example.\n", 24, ":3: domains: \"bad.example.\" ends" },
		{ "a.example\nx\0y.example\n", 22, ":2: NUL byte" },
		{ "*.example\n", 10, ":1: domains: \"*.example\": no wildcards" },
	};
	struct relay_policy	 p;
	char			 err[512], *path;
	size_t			 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&p, 0, sizeof(p));
		path = write_file(cases[i].text, cases[i].len);
		assert_int_equal(relay_policy_load_domains(&p, path, err, sizeof(err)), -1);
		if (strncmp(err, path, strlen(path)) != 0 || strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: \"%s\"", i, err);
		unlink(path);
		free(path);
		relay_policy_free(&p);
	}
	memset(&p, 0, sizeof(p));
	assert_int_equal(relay_policy_load_domains(&p, "/nonexistent/relay-domains", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "domains_file /nonexistent/relay-domains: No such file or "
	    "directory");
	/* An empty file is an empty set, not an error. */
	path = write_file("", 0);
	assert_int_equal(relay_policy_load_domains(&p, path, err, sizeof(err)), 0);
	assert_int_equal(p.nexact + p.nparents, 0);
	unlink(path);
	free(path);
	relay_policy_free(&p);
}

static void
test_log_rcpt(void **state)
{
	char	 out[RELAY_LOG_RCPT_MAX + 1], in[RELAY_LOG_RCPT_MAX + 50];

	relay_log_rcpt("\"a> reason=local\r\n\"@x\x7f", out);
	assert_string_equal(out, "\"a? reason=local??\"@x?");
	relay_log_rcpt("b\xc3\xbc@x", out);
	assert_string_equal(out, "b\xc3\xbc@x");
	relay_log_rcpt(NULL, out);
	assert_string_equal(out, "");
	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	relay_log_rcpt(in, out);
	assert_int_equal(strlen(out), RELAY_LOG_RCPT_MAX);
}

static void
test_reason_names(void **state)
{
	assert_string_equal(relay_reason_name(RELAY_ALLOW_NETWORK), "network");
	assert_string_equal(relay_reason_name(RELAY_REFUSE_PERCENT), "percent-hack");
	assert_string_equal(relay_reason_name(RELAY_REFUSE_BANG), "bang-path");
	assert_string_equal(relay_reason_name(RELAY_REFUSE_SOURCE_ROUTE), "source-route");
	assert_string_equal(relay_reason_name(RELAY_REFUSE_QUOTED), "quoted-local-part");
	assert_string_equal(relay_reason_name(RELAY_REFUSE_IP_LITERAL), "ip-literal");
	assert_string_equal(relay_reason_name(RELAY_REFUSE_TRAILING_DOT), "trailing-dot");
	assert_string_equal(relay_reason_name(RELAY_REFUSE_EMPTY), "empty");
	assert_string_equal(relay_reason_name(RELAY_REFUSE_NOT_LOCAL), "not-local");
	assert_string_equal(relay_reason_name((enum relay_reason)99), "unknown");
	assert_false(relay_reason_refused(RELAY_ALLOW_POSTMASTER));
	assert_true(relay_reason_refused(RELAY_REFUSE_EMPTY));
	assert_true(relay_reason_refused(RELAY_REFUSE_NOT_LOCAL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_vector_prefixes),
		cmocka_unit_test(test_mutations_never_local_unless_plain),
		cmocka_unit_test(test_networks_good),
		cmocka_unit_test(test_networks_bad),
		cmocka_unit_test(test_net_match),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_decide_empty_policy),
		cmocka_unit_test(test_domains_bad),
		cmocka_unit_test(test_domains_match),
		cmocka_unit_test(test_domains_file),
		cmocka_unit_test(test_domains_file_errors),
		cmocka_unit_test(test_log_rcpt),
		cmocka_unit_test(test_reason_names),
	};

	return cmocka_run_group_tests_name("relay", tests, NULL, NULL);
}
