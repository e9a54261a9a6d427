/*
 * example.c - an out-of-tree sluice filter plugin, built with nothing but
 * the installed <sluice_filter.h> and `pkg-config sluice-filter`: a DNS
 * blocklist (DNSBL) check of the client's address at connect.
 *
 * The connect hook asks "<reversed address>.<zone> IN A" through the
 * daemon's resolver and returns PENDING; the answer resumes it:
 *
 *	A record in 127.0.0.0/8		554 5.7.1, the zone's TXT as the text
 *	NXDOMAIN or NODATA		CONTINUE
 *	SERVFAIL, timeout, 127.255.255.x	sluice_resume_fail(): on_error applies
 *
 * The result goes into a session note, "dnsbl.<instance>", for other
 * filters and for this one's end-of-message hook, which prepends it to
 * every message as a header field (by default "X-DNSBL").  In observe
 * mode nothing is refused and the field says "listed".
 *
 * Instance data is read-only after init, so no lock: hooks of different
 * sessions run at the same time on different workers.
 */
#define _POSIX_C_SOURCE 200809L	/* inet_pton with -std=c11 */

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice_filter.h>

/* 32 nibbles of an IPv6 address take 64 bytes; the name must fit 253. */
#define EXAMPLE_ZONE_MAX	189
#define EXAMPLE_NAME_MAX	256
#define EXAMPLE_NOTE_MAX	320
#define EXAMPLE_TXT_MAX		200

struct example_net {
	int			 family;	/* AF_INET or AF_INET6 */
	unsigned char		 addr[16];	/* the network, host bits zero */
	unsigned int		 bits;		/* prefix length */
};

struct example {
	char			 zone[EXAMPLE_ZONE_MAX + 1];	/* without the final dot */
	const char		*header;	/* field name, "" for none; option string */
	char			 note[80];	/* "dnsbl.<instance>" */
	unsigned char		(*listed)[4];	/* answers that mean listed */
	size_t			 nlisted;	/* 0: any in 127/8 */
	struct example_net	*skip;		/* clients never looked up */
	size_t			 nskip;
};

/* One lookup, from the connect hook to its resume; the DNS callbacks own it. */
struct example_lookup {
	struct sluice_pending	*pending;	/* resumed exactly once */
	char			 client[64];	/* the client's address as text */
	char			 name[EXAMPLE_NAME_MAX];	/* what is asked */
	char			 code[16];	/* the A answer that listed it */
};

enum example_result {
	EXAMPLE_PASS,
	EXAMPLE_LISTED,
	EXAMPLE_ERROR
};

static int	 example_init(struct sluice_filter *, void **, char *, size_t);
static int	 example_init_zone(struct example *, struct sluice_filter *, char *, size_t);
static int	 example_init_header(struct example *, struct sluice_filter *, char *, size_t);
static int	 example_init_listed(struct example *, struct sluice_filter *, char *, size_t);
static int	 example_init_skip(struct example *, struct sluice_filter *, char *, size_t);
static void	 example_fini(void *);
static int	 example_zone_valid(const char *);
static int	 example_net_parse(const char *, struct example_net *);
static int	 example_net_contains(const struct example_net *, int, const unsigned char *);
static int	 example_addr_parse(const char *, unsigned char *);
static void	 example_query_name(int, const unsigned char *, const char *, char *, size_t);
static void	 example_note(struct sluice_ctx *, const char *, const char *, const char *);
static enum example_result example_classify(const struct example *,
		    const struct sluice_dns_answer *, char *, size_t, char *, size_t);
static void	 example_text_clean(char *, size_t, const char *, size_t);
static void	 example_a_answered(void *, const struct sluice_dns_answer *);
static void	 example_txt_answered(void *, const struct sluice_dns_answer *);
static void	 example_resume_listed(struct example_lookup *, struct sluice_ctx *, const char *);
static enum sluice_verdict example_connect(struct sluice_ctx *);
static enum sluice_verdict example_eom(struct sluice_ctx *);

static const struct sluice_option example_options[] = {
	{ "zone", SLUICE_OPT_STRING, NULL, 1, "the DNSBL zone, e.g. \"zen.spamhaus.org\"" },
	{ "listed", SLUICE_OPT_STRING_LIST, NULL, 0,
	    "A answers that mean listed (default: any in 127.0.0.0/8)" },
	{ "skip", SLUICE_OPT_STRING_LIST, NULL, 0,
	    "client networks never looked up, e.g. { \"10.0.0.0/8\", \"2001:db8::/32\" }" },
	{ "header", SLUICE_OPT_STRING, "X-DNSBL", 0,
	    "header field given the result at end of message; \"\" for none" },
	{ NULL, 0, NULL, 0, NULL }
};

const struct sluice_module sluice_filter_module = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "example",
	.description = "DNSBL check of the client address (example plugin)",
	.options = example_options,
	.init = example_init,
	.fini = example_fini,
	.on_connect = example_connect,
	.on_eom = example_eom,
};

/* --- Configuration (main thread) ------------------------------------------ */

static int
example_init(struct sluice_filter *filter, void **instance, char *err, size_t errlen)
{
	struct example	*e;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (example_init_zone(e, filter, err, errlen) == -1 ||
	    example_init_header(e, filter, err, errlen) == -1 ||
	    example_init_listed(e, filter, err, errlen) == -1 ||
	    example_init_skip(e, filter, err, errlen) == -1) {
		example_fini(e);	/* init must free what it made before failing */
		return -1;
	}
	snprintf(e->note, sizeof(e->note), "dnsbl.%s", sluice_filter_name(filter));
	*instance = e;
	return 0;
}

static int
example_init_zone(struct example *e, struct sluice_filter *filter, char *err, size_t errlen)
{
	const char	*zone = sluice_option_string(filter, "zone");
	size_t		 len = strlen(zone);

	if (len > 0 && zone[len - 1] == '.')
		len--;	/* "zen.spamhaus.org." is the same zone */
	if (len <= EXAMPLE_ZONE_MAX) {
		memcpy(e->zone, zone, len);
		e->zone[len] = '\0';
		if (example_zone_valid(e->zone))
			return 0;
	}
	snprintf(err, errlen, "zone \"%s\" is not a DNS name of at most %d bytes", zone,
	    EXAMPLE_ZONE_MAX);
	return -1;
}

static int
example_init_header(struct example *e, struct sluice_filter *filter, char *err, size_t errlen)
{
	const unsigned char	*p;

	e->header = sluice_option_string(filter, "header");	/* valid until fini */
	for (p = (const unsigned char *)e->header; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == ':')
			break;
	if (*p != '\0' || strlen(e->header) > 76) {
		snprintf(err, errlen, "header \"%s\" is not a field name (printable ASCII "
		    "without ':' or space, at most 76 bytes)", e->header);
		return -1;
	}
	return 0;
}

static int
example_init_listed(struct example *e, struct sluice_filter *filter, char *err, size_t errlen)
{
	const char	*item;
	size_t		 i, n = sluice_option_list_count(filter, "listed");

	if (n == 0)
		return 0;
	if ((e->listed = calloc(n, sizeof(*e->listed))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		item = sluice_option_list_item(filter, "listed", i);
		if (inet_pton(AF_INET, item, e->listed[i]) != 1 || e->listed[i][0] != 127) {
			snprintf(err, errlen, "listed \"%s\" is not an IPv4 address in "
			    "127.0.0.0/8", item);
			return -1;
		}
	}
	e->nlisted = n;
	return 0;
}

static int
example_init_skip(struct example *e, struct sluice_filter *filter, char *err, size_t errlen)
{
	const char	*item;
	size_t		 i, n = sluice_option_list_count(filter, "skip");

	if (n == 0)
		return 0;
	if ((e->skip = calloc(n, sizeof(*e->skip))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		item = sluice_option_list_item(filter, "skip", i);
		if (example_net_parse(item, &e->skip[i]) == -1) {
			snprintf(err, errlen, "skip \"%s\" is not an address or a network "
			    "(\"192.0.2.0/24\", \"2001:db8::/32\")", item);
			return -1;
		}
	}
	e->nskip = n;
	return 0;
}

static void
example_fini(void *instance)
{
	struct example	*e = instance;

	free(e->listed);
	free(e->skip);
	free(e);
}

/* Letters, digits, '-' and '_' in labels of 1 to 63 bytes, no final dot. */
static int
example_zone_valid(const char *zone)
{
	size_t	 label = 0;

	for (; *zone != '\0'; zone++) {
		if (*zone == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((isalnum((unsigned char)*zone) || *zone == '-' || *zone == '_') &&
		    label < 63)
			label++;
		else
			return 0;
	}
	return label > 0;
}

/* "192.0.2.0/24", "2001:db8::/32" or one address; host bits are cleared. */
static int
example_net_parse(const char *text, struct example_net *net)
{
	char		 buf[INET6_ADDRSTRLEN + 4], *slash, *end;
	unsigned long	 bits;
	unsigned int	 max, i;

	if (strlen(text) >= sizeof(buf))
		return -1;
	memcpy(buf, text, strlen(text) + 1);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		max = 128;
	} else
		return -1;
	bits = max;
	if (slash != NULL) {
		if (!isdigit((unsigned char)slash[0]) || strlen(slash) > 3)
			return -1;
		bits = strtoul(slash, &end, 10);
		if (*end != '\0' || bits > max)
			return -1;
	}
	net->bits = (unsigned int)bits;
	for (i = 0; i < max / 8; i++)
		if (i * 8 >= bits)
			net->addr[i] = 0;
		else if (i * 8 + 8 > bits)
			net->addr[i] &= (unsigned char)(0xff << (8 - (bits - i * 8)));
	return 0;
}

static int
example_net_contains(const struct example_net *net, int family, const unsigned char *addr)
{
	unsigned int	 whole = net->bits / 8, rest = net->bits % 8;
	unsigned char	 mask;

	if (net->family != family || memcmp(net->addr, addr, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (addr[whole] & mask) == net->addr[whole];
}

/* --- Session (the session's worker) ----------------------------------------- */

/*
 * The client's address into addr (16 bytes): AF_INET, AF_INET6, or 0 when
 * there is none to look up ("unix:/path" on a UNIX socket listener).
 * sluice already reports IPv4-mapped IPv6 clients as IPv4.
 */
static int
example_addr_parse(const char *text, unsigned char *addr)
{
	if (text == NULL)
		return 0;
	if (inet_pton(AF_INET, text, addr) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, text, addr) == 1)
		return AF_INET6;
	return 0;
}

/* RFC 5782: octets (IPv4) or nibbles (IPv6) in reverse order, then the zone. */
static void
example_query_name(int family, const unsigned char *a, const char *zone, char *name,
    size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 n = 0;
	int			 i;

	if (family == AF_INET) {
		snprintf(name, len, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], zone);
		return;
	}
	for (i = 15; i >= 0 && n + 5 < len; i--) {
		name[n++] = hex[a[i] & 0x0f];
		name[n++] = '.';
		name[n++] = hex[a[i] >> 4];
		name[n++] = '.';
	}
	snprintf(name + n, len - n, "%s", zone);
}

/* The session's result, "<result> zone=<zone>[ client=<a>][ code=<c>]". */
static void
example_note(struct sluice_ctx *ctx, const char *result, const char *client, const char *code)
{
	const struct example	*e = sluice_instance(ctx);
	char			 value[EXAMPLE_NOTE_MAX];

	snprintf(value, sizeof(value), "%s zone=%s%s%s%s%s", result, e->zone,
	    client != NULL ? " client=" : "", client != NULL ? client : "",
	    code != NULL ? " code=" : "", code != NULL ? code : "");
	sluice_note_set(ctx, e->note, value);
}

static enum sluice_verdict
example_connect(struct sluice_ctx *ctx)
{
	const struct example	*e = sluice_instance(ctx);
	const char		*client = sluice_client_address(ctx);
	struct example_lookup	*l;
	unsigned char		 addr[16];
	size_t			 i;
	int			 family;

	if ((family = example_addr_parse(client, addr)) == 0) {
		example_note(ctx, "none", NULL, NULL);
		return SLUICE_CONTINUE;
	}
	for (i = 0; i < e->nskip; i++)
		if (example_net_contains(&e->skip[i], family, addr)) {
			sluice_log(ctx, SLUICE_LOG_DEBUG, "dnsbl result=skipped client=%s", client);
			example_note(ctx, "skipped", client, NULL);
			return SLUICE_CONTINUE;
		}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	snprintf(l->client, sizeof(l->client), "%s", client);
	example_query_name(family, addr, e->zone, l->name, sizeof(l->name));
	/* What stays if no answer comes in time (with on_error = accept). */
	example_note(ctx, "error", client, NULL);
	l->pending = sluice_suspend(ctx);
	if (sluice_dns_query(ctx, l->name, SLUICE_DNS_A, example_a_answered, l) == -1) {
		/* The callback will not run: resume here, it is delivered later. */
		sluice_resume_fail(l->pending, "dnsbl cannot start the DNS query");
		free(l);
	}
	return SLUICE_PENDING;
}

/*
 * Listed when an answer is in the listed set (by default any address in
 * 127.0.0.0/8 but 127.255.255.0/24).  Anything else outside 127.0.0.0/8,
 * or in 127.255.255.0/24 (Spamhaus' "query refused" codes), means the
 * zone or the resolver path is broken: an error, not a verdict.
 */
static enum example_result
example_classify(const struct example *e, const struct sluice_dns_answer *a, char *code,
    size_t codelen, char *why, size_t whylen)
{
	enum example_result	 result = EXAMPLE_PASS;
	unsigned char		 b[4];
	size_t			 i, j;

	for (i = 0; i < a->count; i++) {
		if (inet_pton(AF_INET, a->records[i].text, b) != 1)
			continue;
		if (b[0] != 127 || (b[1] == 255 && b[2] == 255)) {
			snprintf(why, whylen, "dnsbl zone=%s unexpected answer %s (query "
			    "refused, or a wildcard zone)", e->zone, a->records[i].text);
			result = EXAMPLE_ERROR;
			continue;
		}
		for (j = 0; j < e->nlisted; j++)
			if (memcmp(b, e->listed[j], 4) == 0)
				break;
		if (e->nlisted == 0 || j < e->nlisted) {
			snprintf(code, codelen, "%s", a->records[i].text);
			return EXAMPLE_LISTED;
		}
	}
	return result;
}

/*
 * A TXT record is whatever the zone sends: printable ASCII only, cut short,
 * and no '"', which would end the quoted txt= of the log line.
 */
static void
example_text_clean(char *out, size_t outlen, const char *text, size_t len)
{
	unsigned char	 c;
	size_t		 i;

	for (i = 0; i < len && i + 1 < outlen; i++) {
		c = (unsigned char)text[i];
		out[i] = c == '"' ? '\'' : c >= ' ' && c < 0x7f ? (char)c : '?';
	}
	out[i] = '\0';
}

static void
example_a_answered(void *arg, const struct sluice_dns_answer *a)
{
	struct example_lookup	*l = arg;
	struct sluice_ctx	*ctx = sluice_pending_ctx(l->pending);
	char			 why[300];

	if (ctx == NULL) {
		/* The session ended or the hook timed out: release the handle. */
		sluice_resume(l->pending, SLUICE_CONTINUE, 0, NULL, NULL);
		free(l);
		return;
	}
	if (a->status == SLUICE_DNS_NXDOMAIN || a->status == SLUICE_DNS_NODATA) {
		sluice_log(ctx, SLUICE_LOG_DEBUG, "dnsbl result=pass client=%s", l->client);
		example_note(ctx, "pass", l->client, NULL);
		sluice_resume(l->pending, SLUICE_CONTINUE, 0, NULL, NULL);
	} else if (a->status != SLUICE_DNS_OK) {
		/* The core logs the reason quoted, as error="...". */
		snprintf(why, sizeof(why), "dnsbl query=%s status=%s (%s)", l->name,
		    sluice_dns_status_name(a->status), a->why != NULL ? a->why : "no reason");
		sluice_resume_fail(l->pending, why);
	} else {
		switch (example_classify(sluice_instance(ctx), a, l->code, sizeof(l->code), why,
		    sizeof(why))) {
		case EXAMPLE_LISTED:
			/* The zone's TXT record says why: ask for it, then answer. */
			if (sluice_dns_query(ctx, l->name, SLUICE_DNS_TXT, example_txt_answered,
			    l) == 0)
				return;
			example_resume_listed(l, ctx, NULL);
			return;
		case EXAMPLE_ERROR:
			sluice_resume_fail(l->pending, why);
			break;
		case EXAMPLE_PASS:
			example_note(ctx, "pass", l->client, NULL);
			sluice_resume(l->pending, SLUICE_CONTINUE, 0, NULL, NULL);
			break;
		}
	}
	free(l);
}

static void
example_txt_answered(void *arg, const struct sluice_dns_answer *a)
{
	struct example_lookup	*l = arg;
	struct sluice_ctx	*ctx = sluice_pending_ctx(l->pending);
	char			 txt[EXAMPLE_TXT_MAX];

	if (ctx == NULL) {
		sluice_resume(l->pending, SLUICE_CONTINUE, 0, NULL, NULL);
		free(l);
		return;
	}
	/* No TXT (or no answer) does not change the A record's verdict. */
	txt[0] = '\0';
	if (a->status == SLUICE_DNS_OK && a->count > 0)
		example_text_clean(txt, sizeof(txt), a->records[0].text, a->records[0].len);
	example_resume_listed(l, ctx, txt[0] != '\0' ? txt : NULL);
}

/* Record, log and answer a listed client; frees l. */
static void
example_resume_listed(struct example_lookup *l, struct sluice_ctx *ctx, const char *txt)
{
	const struct example	*e = sluice_instance(ctx);
	char			 text[400];

	example_note(ctx, "listed", l->client, l->code);
	sluice_log(ctx, SLUICE_LOG_INFO, "dnsbl result=listed client=%s zone=%s code=%s "
	    "txt=\"%s\"", l->client, e->zone, l->code, txt != NULL ? txt : "");
	snprintf(text, sizeof(text), "Client host [%s] blocked using %s%s%s", l->client,
	    e->zone, txt != NULL ? "; " : "", txt != NULL ? txt : "");
	sluice_resume(l->pending, SLUICE_REJECT, 554, "5.7.1", text);
	free(l);
}

/* Every message of the session gets the result, on top of the header. */
static enum sluice_verdict
example_eom(struct sluice_ctx *ctx)
{
	const struct example	*e = sluice_instance(ctx);
	const char		*result;

	if (e->header[0] == '\0' || (result = sluice_note_get(ctx, e->note)) == NULL)
		return SLUICE_CONTINUE;
	if (sluice_header_insert(ctx, 0, e->header, result) == -1)
		sluice_log(ctx, SLUICE_LOG_WARNING, "error=\"cannot add the %s field\"",
		    e->header);
	return SLUICE_CONTINUE;
}
