/*
 * mx_probe.c - resolve one delivery destination through the real
 * resolver (proxy/dns.c on libunbound) and proxy/mx.c, and print the
 * candidate list, for tests/integration/test_mx.py.
 *
 * Usage: mx_probe [-46] [-4first] [-P delivery_port] [-s seed] [-n runs]
 *		   [-S] [-c] [-L own_addr:port] [-t timeout_ms] forwarder dest
 *
 *   -4, -6     inet_protocols ipv4 / ipv6 (default all)
 *   -V         IPv4 before IPv6 (address_preference ipv4)
 *   -S         dest is a smart host (route syntax, failures defer)
 *   -n runs    resolve runs times with seeds seed, seed+1, ... (one line each)
 *   -c         cancel at once, then run the loop until the queries are back
 *   -L addr    one of our listening addresses (loop detection); repeatable
 *
 * Output, per run:
 *   status=ok|temp|perm dsn=X.Y.Z implicit=0|1 reason="..." warning="..."
 *   host NAME PREF ADDR:PORT ...
 * and "order NAME,NAME,..." when -n is given.  Exit 0, or 2 on bad usage.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "dns.h"
#include "mx.h"
#include "util.h"
#include "worker.h"

#define PROBE_OWN_MAX	8

/* What one resolution needs on the loop. */
struct probe {
	struct event_base	*base;
	struct mx_result	*result;	/* set by the callback */
	int			 calls;		/* callbacks seen */
};

static void	 probe_done(void *, struct mx_result *);
static void	 probe_timeout(evutil_socket_t, short, void *);
static void	 probe_print(const struct mx_result *, int);
static int	 probe_usage(void);

static void
probe_done(void *arg, struct mx_result *r)
{
	struct probe	*p = arg;

	p->result = r;
	p->calls++;
	event_base_loopbreak(p->base);
}

static void
probe_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void
probe_print(const struct mx_result *r, int order)
{
	static const char *const names[] = { "ok", "temp", "perm" };
	char	 buf[2048];
	size_t	 h;

	printf("status=%s dsn=%s implicit=%d reason=\"%s\" warning=\"%s\"\n", names[r->status],
	    r->dsn, r->implicit_mx, r->reason ? r->reason : "", r->warning ? r->warning : "");
	for (h = 0; h < r->nhosts; h++) {
		mx_result_format_host(&r->hosts[h], buf, sizeof(buf));
		printf("host %u %s\n", r->hosts[h].preference, buf);
	}
	if (order) {
		printf("order ");
		for (h = 0; h < r->nhosts; h++)
			printf("%s%s", h ? "," : "", r->hosts[h].name);
		printf("\n");
	}
}

static int
probe_usage(void)
{
	fprintf(stderr, "usage: mx_probe [-46VSc] [-P port] [-s seed] [-n runs] "
	    "[-L addr:port] [-t ms] forwarder destination\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct config_resolver	 conf = { 0 };
	struct mx_options	 o = { 0 };
	struct mx_dest		 d;
	struct sockaddr_storage	 own[PROBE_OWN_MAX];
	socklen_t		 ownlen;
	struct worker		 w = { 0 };
	struct probe		 p = { 0 };
	struct dns_resolver	*res;
	struct mx_lookup	*l;
	struct event		*timer;
	struct timeval		 tv = { 30, 0 };
	char			*fwd[1], err[512];
	unsigned long long	 seed = 1;
	int			 c, runs = 1, i, cancel = 0, smarthost = 0, nown = 0;

	conf.timeout_ms = 2000;
	while ((c = getopt(argc, argv, "46VScP:s:n:L:t:")) != -1) {
		switch (c) {
		case '4':
			o.families = MX_INET_IPV4;
			break;
		case '6':
			o.families = MX_INET_IPV6;
			break;
		case 'V':
			o.prefer_ipv4 = 1;
			break;
		case 'S':
			smarthost = 1;
			break;
		case 'c':
			cancel = 1;
			break;
		case 'P':
			o.delivery_port = (unsigned int)atoi(optarg);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		case 'n':
			runs = atoi(optarg);
			break;
		case 'L':
			if (nown >= PROBE_OWN_MAX || sockaddr_parse(optarg, &own[nown], &ownlen) == -1)
				return probe_usage();
			nown++;
			break;
		case 't':
			conf.timeout_ms = atoll(optarg);
			break;
		default:
			return probe_usage();
		}
	}
	if (argc - optind != 2 || runs < 1 || runs > 1000)
		return probe_usage();
	fwd[0] = argv[optind];
	conf.forwarders = fwd;
	conf.nforwarders = 1;
	conf.trust_anchor = (char *)"";
	conf.resolv_conf = (char *)"";
	if (mx_dest_parse(argv[optind + 1], smarthost, &d, err, sizeof(err)) == -1) {
		printf("dest error: %s\n", err);
		return 0;
	}
	if ((res = dns_resolver_new(&conf, "probe", err, sizeof(err))) == NULL) {
		fprintf(stderr, "mx_probe: %s\n", err);
		return 1;
	}
	if ((p.base = w.base = event_base_new()) == NULL)
		return 1;
	timer = evtimer_new(p.base, probe_timeout, p.base);
	for (i = 0; i < runs; i++) {
		p.result = NULL;
		l = mx_resolve(res, &w, &d, &o, seed + (unsigned long long)i, probe_done, &p);
		if (cancel) {
			mx_lookup_cancel(l);
			tv.tv_sec = 3;
		}
		evtimer_add(timer, &tv);
		event_base_dispatch(p.base);
		evtimer_del(timer);
		if (p.result == NULL) {
			printf("%s\n", cancel ? "cancelled" : "no answer");
			continue;
		}
		if (nown > 0)
			mx_result_check_loop(p.result, own, (size_t)nown);
		probe_print(p.result, runs > 1);
		mx_result_free(p.result);
	}
	printf("callbacks=%d\n", p.calls);
	event_free(timer);
	dns_resolver_worker_close(res, &w);
	dns_resolver_free(res);
	event_base_free(p.base);
	mx_dest_clear(&d);
	return 0;
}
