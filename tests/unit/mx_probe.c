/*
 * mx_probe.c - resolve one delivery destination through the real
 * resolver (proxy/dns.c on libunbound) and proxy/mx.c, and print the
 * candidate list, for tests/integration/test_mx.py.
 *
 * Usage: mx_probe [-46VSc] [-P delivery_port] [-s seed] [-n runs]
 *		   [-L own_addr:port] [-t timeout_ms] forwarder dest
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
	struct event		*timer;		/* bounds each run */
	struct mx_result	*result;	/* set by the callback */
	int			 calls;		/* callbacks seen */
};

struct probe_args;

static void	 probe_done(void *, struct mx_result *);
static void	 probe_timeout(evutil_socket_t, short, void *);
static void	 probe_print(const struct mx_result *, int);
static int	 probe_usage(void);
static int	 probe_options(int, char **, struct probe_args *);
static void	 probe_run(struct probe *, struct dns_resolver *, struct worker *,
		    const struct mx_dest *, const struct probe_args *, int);

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

/* What the command line asks. */
struct probe_args {
	struct mx_options	 o;
	struct sockaddr_storage	 own[PROBE_OWN_MAX];
	int			 nown;
	unsigned long long	 seed;
	long long		 timeout_ms;
	int			 runs;
	int			 cancel;
	int			 smarthost;
};

/* Options into a; returns optind, or -1 on bad usage. */
static int
probe_options(int argc, char **argv, struct probe_args *a)
{
	socklen_t	 len;
	int		 c;

	memset(a, 0, sizeof(*a));
	a->seed = 1;
	a->runs = 1;
	a->timeout_ms = 2000;
	while ((c = getopt(argc, argv, "46VScP:s:n:L:t:")) != -1) {
		if (c == '4')
			a->o.families = MX_INET_IPV4;
		else if (c == '6')
			a->o.families = MX_INET_IPV6;
		else if (c == 'V')
			a->o.prefer_ipv4 = 1;
		else if (c == 'S')
			a->smarthost = 1;
		else if (c == 'c')
			a->cancel = 1;
		else if (c == 'P')
			a->o.delivery_port = (unsigned int)atoi(optarg);
		else if (c == 's')
			a->seed = strtoull(optarg, NULL, 10);
		else if (c == 'n')
			a->runs = atoi(optarg);
		else if (c == 't')
			a->timeout_ms = atoll(optarg);
		else if (c == 'L' && a->nown < PROBE_OWN_MAX &&
		    sockaddr_parse(optarg, &a->own[a->nown], &len) == 0)
			a->nown++;
		else
			return -1;
	}
	if (argc - optind != 2 || a->runs < 1 || a->runs > 1000)
		return -1;
	return optind;
}

/* Resolve d once; print the result (or that none came). */
static void
probe_run(struct probe *p, struct dns_resolver *res, struct worker *w, const struct mx_dest *d,
    const struct probe_args *a, int i)
{
	struct timeval		 tv = { a->cancel ? 3 : 30, 0 };
	struct mx_lookup	*l;

	p->result = NULL;
	l = mx_resolve(res, w, d, &a->o, a->seed + (unsigned long long)i, probe_done, p);
	if (a->cancel)
		mx_lookup_cancel(l);
	evtimer_add(p->timer, &tv);
	event_base_dispatch(p->base);
	evtimer_del(p->timer);
	if (p->result == NULL) {
		printf("%s\n", a->cancel ? "cancelled" : "no answer");
		return;
	}
	if (a->nown > 0)
		mx_result_check_loop(p->result, a->own, (size_t)a->nown);
	probe_print(p->result, a->runs > 1);
	mx_result_free(p->result);
}

int
main(int argc, char **argv)
{
	struct config_resolver	 conf = { 0 };
	struct probe_args	 a;
	struct mx_dest		 d;
	struct worker		 w = { 0 };
	struct probe		 p = { 0 };
	struct dns_resolver	*res;
	char			*fwd[1], err[512];
	int			 i, arg;

	if ((arg = probe_options(argc, argv, &a)) == -1)
		return probe_usage();
	fwd[0] = argv[arg];
	conf.forwarders = fwd;
	conf.nforwarders = 1;
	conf.timeout_ms = a.timeout_ms;
	conf.trust_anchor = (char *)"";
	conf.resolv_conf = (char *)"";
	if (mx_dest_parse(argv[arg + 1], a.smarthost, &d, err, sizeof(err)) == -1) {
		printf("dest error: %s\n", err);
		return 0;
	}
	if ((res = dns_resolver_new(&conf, "probe", err, sizeof(err))) == NULL) {
		fprintf(stderr, "mx_probe: %s\n", err);
		return 1;
	}
	/* The resolver wants a worker with an id; this one never runs a thread. */
	if ((p.base = w.base = event_base_new()) == NULL ||
	    (p.timer = evtimer_new(p.base, probe_timeout, p.base)) == NULL)
		return 1;
	for (i = 0; i < a.runs; i++)
		probe_run(&p, res, &w, &d, &a, i);
	printf("callbacks=%d\n", p.calls);
	event_free(p.timer);
	dns_resolver_worker_close(res, &w);
	dns_resolver_free(res);
	event_base_free(p.base);
	mx_dest_clear(&d);
	return 0;
}
