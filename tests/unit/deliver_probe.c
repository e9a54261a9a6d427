/*
 * deliver_probe.c - a test driver for deliver_smtp.c until the relay
 * scheduler exists: delivers one message file (wire form: dot-stuffed,
 * CRLF, no final dot) to a list of candidate hosts on one event loop, n
 * times in a row (so connection reuse shows), and prints every
 * recipient's result.
 *
 *	deliver_probe [-8u] [-H helo] [-f sender] [-r rcpt [-N notify] [-O orcpt]]...
 *	    [-R ret] [-E envid] [-S size] [-t timeout_ms] [-c connect_ms]
 *	    [-i reuse_idle_ms] [-n count] [-w wait_ms] [-d destination] [-D domain]
 *	    [-k cancel_ms] [-o offset] [-T] -b body_file host...
 *
 * A host is "name=IP:PORT[,IP:PORT...]" or "IP:PORT" ("[v6]:PORT").
 * -o: the body starts that many bytes into the file (as in a queue file).
 * -T plugs a stand-in into the STARTTLS seam: an identity filter
 *    bufferevent (no encryption), so the seam's plumbing can be tested
 *    before the TLS work lands; it prints "tls_wrap host=NAME".
 * -k cancels the (first) delivery after that long and prints "cancelled".
 * -w waits that long between deliveries (idle connection handling).
 * Output, one line each:
 *	result ITER rcpt=<a> class=OK|TEMP|PERM code=N dsn=X.Y.Z relay=R text=T
 *	summary ITER relay=R reused=0|1 dup_risk=0|1 connects=N elapsed_ms=N
 *	total count=N elapsed_ms=N idle=N
 * Logs go to stderr.  Exit 0 when every delivery ran (whatever the results).
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <err.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "deliver_smtp.h"
#include "log.h"
#include "util.h"

#define PROBE_MAX_RCPTS	64
#define PROBE_MAX_HOSTS	16
#define PROBE_MAX_ADDRS	64

struct probe {
	struct event_base		*base;		/* the loop */
	struct deliver_smtp_cache	*cache;		/* connections */
	struct deliver_smtp_job		 job;		/* reused for every iteration */
	int				 count;		/* deliveries wanted */
	int				 iter;		/* current one */
	long long			 wait_ms;	/* pause between deliveries */
	struct event			*pause;		/* for that pause */
	long long			 cancel_ms;	/* cancel the delivery after this */
	struct event			*cancel;	/* for that */
	struct deliver_smtp		*running;	/* the delivery in progress */
	uint64_t			 start_ms;	/* of the first */
};

static void	 probe_parse_host(char *, struct deliver_smtp_host *, struct sockaddr_storage *,
		    size_t *);
static int	 probe_parse_addr(const char *, struct sockaddr_storage *);
static void	 probe_start(struct probe *);
static void	 probe_done(void *, struct deliver_smtp_job *);
static void	 probe_resume(evutil_socket_t, short, void *);
static void	 probe_cancel(evutil_socket_t, short, void *);
static struct bufferevent *probe_fake_tls(void *, struct bufferevent *, const char *);

static int
probe_parse_addr(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;
	char			 host[128];
	const char		*colon;
	size_t			 n;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		if ((colon = strstr(s, "]:")) == NULL || (n = (size_t)(colon - s - 1)) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((unsigned short)atoi(colon + 2));
		return inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1 ? 0 : -1;
	}
	if ((colon = strrchr(s, ':')) == NULL || (n = (size_t)(colon - s)) >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	sin->sin_family = AF_INET;
	sin->sin_port = htons((unsigned short)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static void
probe_parse_host(char *arg, struct deliver_smtp_host *h, struct sockaddr_storage *pool,
    size_t *used)
{
	char	*eq = strchr(arg, '='), *list, *a;

	h->name = eq != NULL ? (*eq = '\0', arg) : "remote";
	list = eq != NULL ? eq + 1 : arg;
	h->addrs = &pool[*used];
	h->naddrs = 0;
	while ((a = strsep(&list, ",")) != NULL) {
		if (*used >= PROBE_MAX_ADDRS)
			errx(2, "too many addresses");
		if (probe_parse_addr(a, &pool[*used]) == -1)
			errx(2, "bad address %s", a);
		(*used)++;
		h->naddrs++;
	}
}

static void
probe_start(struct probe *p)
{
	size_t	 i;

	for (i = 0; i < p->job.env.nrcpts; i++)
		memset(&p->job.env.rcpts[i].result, 0, sizeof(p->job.env.rcpts[i].result));
	p->running = deliver_smtp_start(p->cache, &p->job, probe_done, p);
}

static void
probe_done(void *arg, struct deliver_smtp_job *job)
{
	static const char *const klass[] = { "PENDING", "OK", "TEMP", "PERM" };
	struct probe			*p = arg;
	const struct deliver_smtp_rcpt	*rc;
	size_t				 i;

	p->running = NULL;
	for (i = 0; i < job->env.nrcpts; i++) {
		rc = &job->env.rcpts[i];
		printf("result %d rcpt=<%s> class=%s code=%d dsn=%s relay=%s text=%s\n", p->iter,
		    rc->addr, klass[rc->result.klass], rc->result.code, rc->result.enhanced,
		    rc->result.relay[0] != '\0' ? rc->result.relay : "-", rc->result.text);
	}
	printf("summary %d relay=%s reused=%d dup_risk=%d connects=%d elapsed_ms=%llu\n",
	    p->iter, job->summary.relay[0] != '\0' ? job->summary.relay : "-",
	    job->summary.reused, job->summary.dup_risk, job->summary.connects,
	    (unsigned long long)job->summary.elapsed_ms);
	if (++p->iter < p->count) {
		struct timeval	 tv = { p->wait_ms / 1000, (p->wait_ms % 1000) * 1000 };

		if (p->wait_ms > 0)
			evtimer_add(p->pause, &tv);
		else
			probe_start(p);
		return;
	}
	printf("total count=%d elapsed_ms=%llu idle=%zu\n", p->count,
	    (unsigned long long)(monotonic_ms() - p->start_ms), deliver_smtp_cache_idle(p->cache));
	fflush(stdout);
	/* Closing the cached connections leaves the loop with nothing to wait for. */
	evtimer_del(p->cancel);
	deliver_smtp_cache_free(&p->cache);
}

/* The STARTTLS seam with a pass-through filter where TLS will be. */
static struct bufferevent *
probe_fake_tls(void *arg, struct bufferevent *plain, const char *host)
{
	printf("tls_wrap host=%s\n", host);
	return bufferevent_filter_new(plain, NULL, NULL, BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
}

/* Shutdown in the middle of a delivery: no callback may follow. */
static void
probe_cancel(evutil_socket_t fd, short events, void *arg)
{
	struct probe	*p = arg;

	if (p->running == NULL)
		return;
	deliver_smtp_cancel(&p->running);
	printf("cancelled %d\n", p->iter);
	p->iter = p->count;
	evtimer_del(p->pause);
	deliver_smtp_cache_free(&p->cache);
}

static void
probe_resume(evutil_socket_t fd, short events, void *arg)
{
	probe_start(arg);
}

int
main(int argc, char *argv[])
{
	static struct deliver_smtp_rcpt	 rcpts[PROBE_MAX_RCPTS];
	static struct deliver_smtp_host	 hosts[PROBE_MAX_HOSTS];
	static struct sockaddr_storage	 addrs[PROBE_MAX_ADDRS];
	struct deliver_smtp_config	 cfg;
	struct probe			 p;
	struct stat			 st;
	size_t				 nrcpts = 0, naddrs = 0;
	long long			 t;
	int				 ch;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("deliver_probe", 1, 0);
	log_set_level(LOG_LEVEL_INFO);
	memset(&p, 0, sizeof(p));
	deliver_smtp_config_defaults(&cfg);
	cfg.helo_name = "sluice.test";
	p.count = 1;
	p.job.queue_id = "PROBE";
	p.job.destination = "example.org";
	p.job.env.sender = "sender@example.com";
	p.job.body_fd = -1;
	while ((ch = getopt(argc, argv, "8uTH:f:r:N:O:R:E:S:t:c:i:n:w:k:d:D:o:b:")) != -1) {
		switch (ch) {
		case '8':
			p.job.env.body_8bit = 1;
			break;
		case 'u':
			p.job.env.smtputf8 = 1;
			break;
		case 'T':
			cfg.tls_fn = probe_fake_tls;
			break;
		case 'H':
			cfg.helo_name = optarg;
			break;
		case 'f':
			p.job.env.sender = optarg;
			break;
		case 'r':
			if (nrcpts >= PROBE_MAX_RCPTS)
				errx(2, "too many recipients");
			rcpts[nrcpts++].addr = optarg;
			break;
		case 'N':
		case 'O':
			if (nrcpts == 0)
				errx(2, "-%c after -r", ch);
			if (ch == 'N')
				rcpts[nrcpts - 1].notify = optarg;
			else
				rcpts[nrcpts - 1].orcpt = optarg;
			break;
		case 'R':
			p.job.env.ret = optarg;
			break;
		case 'E':
			p.job.env.envid = optarg;
			break;
		case 'S':
			p.job.env.size = strtoul(optarg, NULL, 10);
			break;
		case 't':
			t = atoll(optarg);
			cfg.greeting_timeout_ms = cfg.command_timeout_ms = t;
			cfg.data_timeout_ms = cfg.body_timeout_ms = cfg.final_timeout_ms = t;
			break;
		case 'c':
			cfg.connect_timeout_ms = atoll(optarg);
			break;
		case 'i':
			cfg.reuse_idle_ms = atoll(optarg);
			break;
		case 'n':
			p.count = atoi(optarg);
			break;
		case 'w':
			p.wait_ms = atoll(optarg);
			break;
		case 'd':
			p.job.destination = optarg;
			break;
		case 'D':
			p.job.domain = optarg;
			break;
		case 'k':
			p.cancel_ms = atoll(optarg);
			break;
		case 'o':
			p.job.body_offset = (off_t)atoll(optarg);
			break;
		case 'b':
			if ((p.job.body_fd = open(optarg, O_RDONLY | O_CLOEXEC)) == -1 ||
			    fstat(p.job.body_fd, &st) == -1)
				err(2, "%s", optarg);
			p.job.body_len = (size_t)st.st_size;
			break;
		default:
			errx(2, "usage: see deliver_probe.c");
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > PROBE_MAX_HOSTS || nrcpts == 0 || p.job.body_fd == -1 ||
	    p.count < 1)
		errx(2, "usage: deliver_probe -b body -r rcpt ... host...");
	for (ch = 0; ch < argc; ch++)
		probe_parse_host(argv[ch], &hosts[ch], addrs, &naddrs);
	if ((size_t)p.job.body_offset > p.job.body_len)
		errx(2, "offset past the end of the body file");
	p.job.body_len -= (size_t)p.job.body_offset;
	if (p.job.domain == NULL)
		p.job.domain = strchr(rcpts[0].addr, '@') ? strchr(rcpts[0].addr, '@') + 1 : "";
	p.job.env.rcpts = rcpts;
	p.job.env.nrcpts = nrcpts;
	p.job.hosts = hosts;
	p.job.nhosts = (size_t)argc;
	if ((p.base = event_base_new()) == NULL)
		errx(1, "event_base_new");
	p.cache = deliver_smtp_cache_new(p.base, &cfg);
	if ((p.pause = evtimer_new(p.base, probe_resume, &p)) == NULL)
		errx(1, "evtimer_new");
	if ((p.cancel = evtimer_new(p.base, probe_cancel, &p)) == NULL)
		errx(1, "evtimer_new");
	if (p.cancel_ms > 0) {
		struct timeval	 tv = { p.cancel_ms / 1000, (p.cancel_ms % 1000) * 1000 };

		evtimer_add(p.cancel, &tv);
	}
	p.start_ms = monotonic_ms();
	probe_start(&p);
	event_base_dispatch(p.base);
	deliver_smtp_cache_free(&p.cache);
	event_free(p.pause);
	event_free(p.cancel);
	event_base_free(p.base);
	close(p.job.body_fd);
	return p.iter == p.count ? 0 : 1;
}
