/*
 * store_redis.c - the "redis://" counter store: hiredis 0.14 asynchronous
 * connections, one per worker thread and store, created on that worker
 * when it first needs one and attached to its event base.
 *
 * Every request is one EVAL of a small script (INCRBY, PEXPIRE on the
 * counter's first increment, PTTL), so several sluice processes sharing
 * the server keep one exact count.  Keys are "prefix{key}": the hash tag
 * keeps a counter on one Cluster slot should the server become one.
 *
 * hiredis 0.14 has no command timeout, so the connection keeps its
 * requests in send order (they all have the store's timeout, so this is
 * also deadline order) under one timer.  A request past its deadline is
 * answered "timeout"; its reply, should it come, is dropped when hiredis
 * hands it over.  hiredis owns a request until it calls back (with a
 * reply, or NULL when the connection goes), so that callback is the one
 * place that frees it.  When no reply at all arrived since a timed-out
 * request was sent, the server is taken for stuck: every request still
 * waiting is answered "timeout" too, the connection is freed, and no new
 * one is tried before a backoff (100ms doubling to 10s) ends; meanwhile
 * requests fail at once.  A slow server that still answers keeps its
 * connection.  A refused connection or one lost with requests on it gets
 * the same backoff; an idle one the server closed is simply made again.
 * hiredis frees a context after its disconnect (or failed connect)
 * callback, so ours forget it there, and nothing here touches a context
 * after that.
 */
#include "autoconf.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "log.h"
#include "store.h"
#include "util.h"
#include "worker.h"

#define REDIS_DEFAULT_PORT	6379
#define REDIS_DEFAULT_TIMEOUT_MS 250
#define REDIS_DEFAULT_PREFIX	"sluice:"
#define REDIS_TIMEOUT_MAX_MS	60000
#define REDIS_BACKOFF_MIN_MS	100
#define REDIS_BACKOFF_MAX_MS	10000
/* Requests one connection may hold; more fail at once (bounded memory). */
#define REDIS_HELD_MAX		10000

/*
 * KEYS[1] the counter, ARGV[1] the delta (0 reads), ARGV[2] the window in
 * ms.  Returns {count, ms left}.  The expiry is set whenever the counter
 * has none, not only when the increment made it 1, so a counter that
 * lost its expiry cannot live for ever.
 */
static const char redis_script[] =
    "local d = tonumber(ARGV[1])\n"
    "local n\n"
    "if d == 0 then\n"
    "  n = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "else\n"
    "  n = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
    "end\n"
    "local t = redis.call('PTTL', KEYS[1])\n"
    "if t == -1 and d ~= 0 then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  t = tonumber(ARGV[2])\n"
    "end\n"
    "if t < 0 then t = 0 end\n"
    "return {n, t}\n";

struct redis_conn;

struct redis_req {
	struct redis_conn	*conn;		/* the connection it went out on */
	sluice_counter_cb	 cb;		/* the caller's */
	void			*arg;		/* its argument */
	uint64_t		 sent_ms;	/* when it was queued */
	uint64_t		 deadline_ms;	/* when it times out */
	int			 answered;	/* cb had its answer (timeout) */
	TAILQ_ENTRY(redis_req)	 entry;		/* in conn->waiting until answered */
};

TAILQ_HEAD(redis_req_list, redis_req);

/* One worker's connection to the store's server; only that worker touches it. */
struct redis_conn {
	struct store_redis	*store;		/* owner */
	struct worker		*worker;	/* its thread and base */
	redisAsyncContext	*ac;		/* NULL while down; hiredis frees it */
	struct event		*timer;		/* fires at the oldest deadline */
	struct redis_req_list	 waiting;	/* unanswered requests, oldest first */
	size_t			 held;		/* requests hiredis holds, answered or not */
	unsigned int		 lost;		/* unanswered ones a disconnect failed */
	unsigned int		 failures;	/* in a row, for the backoff */
	uint64_t		 retry_ms;	/* no new connection before this */
	uint64_t		 last_reply_ms;	/* the last reply of any request */
	char			 error[128];	/* the last failure */
};

struct store_redis {
	struct store_redis_spec	 spec;		/* as parsed */
	char			 addr[INET6_ADDRSTRLEN];	/* the host, resolved */
	char			 name[320];	/* canonical spec, for logs */
	struct redis_conn	*conns[WORKERS_MAX + 1];	/* by worker id + 1 */
};

static int	 redis_parse_uint(const char **, long, long *);
static int	 redis_parse_host(const char **, struct store_redis_spec *, char *, size_t);
static int	 redis_parse_params(const char *, struct store_redis_spec *, char *, size_t);
static struct redis_conn *redis_conn_get(struct store_redis *, struct worker *);
static int	 redis_connect(struct redis_conn *);
static void	 redis_failed(struct redis_conn *, const char *);
static void	 redis_teardown(struct redis_conn *, const char *);
static void	 redis_arm(struct redis_conn *);
static void	 redis_timeout_cb(evutil_socket_t, short, void *);
static void	 redis_on_connect(const redisAsyncContext *, int);
static void	 redis_on_disconnect(const redisAsyncContext *, int);
static void	 redis_select_cb(redisAsyncContext *, void *, void *);
static void	 redis_reply_cb(redisAsyncContext *, void *, void *);

/* --- Spec ------------------------------------------------------------------ */

static int
redis_parse_uint(const char **pp, long max, long *out)
{
	const char	*p = *pp;
	long		 v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > max)
			return -1;
	}
	*pp = p;
	*out = v;
	return 0;
}

/* HOST or [IPv6], at *pp; leaves *pp after it. */
static int
redis_parse_host(const char **pp, struct store_redis_spec *out, char *err, size_t errlen)
{
	const char	*p = *pp, *end;
	struct in6_addr	 a6;
	size_t		 len;

	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL || (len = (size_t)(end - p - 1)) == 0 ||
		    len >= sizeof(out->host))
			return snprintf(err, errlen, "redis host: unterminated or empty [address]"),
			    -1;
		memcpy(out->host, p + 1, len);
		out->host[len] = '\0';
		if (inet_pton(AF_INET6, out->host, &a6) != 1)
			return snprintf(err, errlen, "redis host: [%s] is not an IPv6 address",
			    out->host), -1;
		*pp = end + 1;
		return 0;
	}
	for (end = p; *end != '\0' && *end != ':' && *end != '/' && *end != '?'; end++)
		if (!((*end >= 'a' && *end <= 'z') || (*end >= 'A' && *end <= 'Z') ||
		    (*end >= '0' && *end <= '9') || *end == '.' || *end == '-' || *end == '_'))
			return snprintf(err, errlen, "redis host: invalid character in host name"),
			    -1;
	len = (size_t)(end - p);
	if (len == 0 || len > 253)
		return snprintf(err, errlen, "redis host: missing or too long"), -1;
	memcpy(out->host, p, len);
	out->host[len] = '\0';
	*pp = end;
	return 0;
}

/* "timeout=250ms&prefix=sluice:" */
static int
redis_parse_params(const char *p, struct store_redis_spec *out, char *err, size_t errlen)
{
	char		 buf[128];
	const char	*amp, *eq;
	long long	 ms;
	size_t		 len, i;

	for (;; p = amp + 1) {
		amp = p + strcspn(p, "&");
		len = (size_t)(amp - p);
		if ((eq = memchr(p, '=', len)) == NULL || len >= sizeof(buf))
			return snprintf(err, errlen, "redis parameters are name=value, "
			    "separated by &"), -1;
		memcpy(buf, eq + 1, len - (size_t)(eq + 1 - p));
		buf[len - (size_t)(eq + 1 - p)] = '\0';
		if ((size_t)(eq - p) == 7 && strncmp(p, "timeout", 7) == 0) {
			if (parse_duration_ms(buf, &ms) == -1 || ms < 1 || ms > REDIS_TIMEOUT_MAX_MS)
				return snprintf(err, errlen, "redis timeout must be a duration "
				    "from 1ms to 60s"), -1;
			out->timeout_ms = (unsigned int)ms;
		} else if ((size_t)(eq - p) == 6 && strncmp(p, "prefix", 6) == 0) {
			for (i = 0; buf[i] != '\0'; i++)
				if (buf[i] <= ' ' || buf[i] >= 0x7f || buf[i] == '{' || buf[i] == '}')
					return snprintf(err, errlen, "redis prefix: printable "
					    "characters only, no space, { or }"), -1;
			if (i >= sizeof(out->prefix))
				return snprintf(err, errlen, "redis prefix: at most %zu characters",
				    sizeof(out->prefix) - 1), -1;
			strlcpy_s(out->prefix, buf, sizeof(out->prefix));
		} else
			return snprintf(err, errlen, "unknown redis parameter (timeout and prefix "
			    "are known)"), -1;
		if (*amp == '\0')
			return 0;
	}
}

int
store_redis_parse_spec(const char *spec, struct store_redis_spec *out, char *err, size_t errlen)
{
	const char	*p = spec;
	long		 v;

	memset(out, 0, sizeof(*out));
	out->port = REDIS_DEFAULT_PORT;
	out->timeout_ms = REDIS_DEFAULT_TIMEOUT_MS;
	strlcpy_s(out->prefix, REDIS_DEFAULT_PREFIX, sizeof(out->prefix));
	if (spec == NULL || strncasecmp(p, "redis://", 8) != 0 || strlen(spec) > 400)
		return snprintf(err, errlen, "a redis store is "
		    "\"redis://HOST:PORT[/DB][?timeout=250ms&prefix=sluice:]\""), -1;
	p += 8;
	if (redis_parse_host(&p, out, err, errlen) == -1)
		return -1;
	if (*p == ':') {
		p++;
		if (redis_parse_uint(&p, 65535, &v) == -1 || v == 0)
			return snprintf(err, errlen, "redis port must be 1 to 65535"), -1;
		out->port = (int)v;
	}
	if (*p == '/' && *++p != '\0' && *p != '?') {
		if (redis_parse_uint(&p, 65535, &v) == -1)
			return snprintf(err, errlen, "redis database must be a number from 0 to "
			    "65535"), -1;
		out->db = (int)v;
	}
	if (*p == '?')
		return redis_parse_params(p + 1, out, err, errlen);
	if (*p != '\0')
		return snprintf(err, errlen, "unexpected text after the redis address"), -1;
	return 0;
}

void
store_redis_format_spec(const struct store_redis_spec *s, char *buf, size_t size)
{
	int	 v6 = strchr(s->host, ':') != NULL;

	snprintf(buf, size, "redis://%s%s%s:%d/%d?timeout=%ums&prefix=%s", v6 ? "[" : "",
	    s->host, v6 ? "]" : "", s->port, s->db, s->timeout_ms, s->prefix);
}

/* --- Store ----------------------------------------------------------------- */

struct store_redis *
store_redis_new(const struct store_redis_spec *spec, char *err, size_t errlen)
{
	struct addrinfo		 hints, *res, *ai, *pick;
	struct store_redis	*r;
	int			 rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(spec->host, NULL, &hints, &res)) != 0) {
		snprintf(err, errlen, "redis host %s: %s", spec->host, gai_strerror(rc));
		return NULL;
	}
	/* IPv4 first, as hiredis itself would do with the name. */
	for (pick = res, ai = res; ai != NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
	r = xcalloc(1, sizeof(*r));
	r->spec = *spec;
	if (pick->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)pick->ai_addr)->sin_addr, r->addr,
		    sizeof(r->addr));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr, r->addr,
		    sizeof(r->addr));
	freeaddrinfo(res);
	store_redis_format_spec(spec, r->name, sizeof(r->name));
	return r;
}

void
store_redis_free(struct store_redis *r)
{
	struct redis_conn	*c;
	redisAsyncContext	*ac;
	size_t			 i;

	for (i = 0; i < nitems(r->conns); i++) {
		if ((c = r->conns[i]) == NULL)
			continue;
		strlcpy_s(c->error, "shutdown", sizeof(c->error));
		if ((ac = c->ac) != NULL) {
			c->ac = NULL;
			redisAsyncFree(ac);	/* every request it held calls back */
		}
		event_free(c->timer);
		free(c);
	}
	free(r);
}

/* The calling worker's connection, made on first use. */
static struct redis_conn *
redis_conn_get(struct store_redis *r, struct worker *w)
{
	struct redis_conn	*c = r->conns[w->id + 1];

	if (c != NULL)
		return c;
	c = xcalloc(1, sizeof(*c));
	c->store = r;
	c->worker = w;
	TAILQ_INIT(&c->waiting);
	if ((c->timer = evtimer_new(w->base, redis_timeout_cb, c)) == NULL)
		fatalx("evtimer_new");
	r->conns[w->id + 1] = c;
	return c;
}

int
store_redis_add(struct store_redis *r, struct worker *w, const char *key, long long delta,
    unsigned long window_ms, sluice_counter_cb cb, void *arg)
{
	struct redis_conn	*c;
	struct redis_req	*q;
	char			 fullkey[STORE_KEY_MAX + 80], d[32], win[32], why[200];
	const char		*argv[6];
	size_t			 argvlen[6], i;
	uint64_t		 now;

	/* The connection belongs to the thread: only the worker itself may ask. */
	if (w->id < -1 || w->id >= WORKERS_MAX || worker_current() != w)
		return -1;
	c = redis_conn_get(r, w);
	now = monotonic_ms();
	if (c->held >= REDIS_HELD_MAX) {
		store_deliver(w, cb, arg, 0, 0, 0, "redis: too many requests in flight");
		return 0;
	}
	if (c->ac == NULL && now < c->retry_ms) {
		snprintf(why, sizeof(why), "redis down: %s (retry in %llums)", c->error,
		    (unsigned long long)(c->retry_ms - now));
		store_deliver(w, cb, arg, 0, 0, 0, why);
		return 0;
	}
	if (c->ac == NULL && redis_connect(c) == -1) {
		snprintf(why, sizeof(why), "redis: %s", c->error);
		store_deliver(w, cb, arg, 0, 0, 0, why);
		return 0;
	}
	argv[0] = "EVAL";
	argv[1] = redis_script;
	argv[2] = "1";
	argv[3] = fullkey;
	argv[4] = d;
	argv[5] = win;
	snprintf(fullkey, sizeof(fullkey), "%s{%s}", r->spec.prefix, key);
	snprintf(d, sizeof(d), "%lld", delta);
	snprintf(win, sizeof(win), "%lu", window_ms);
	for (i = 0; i < nitems(argv); i++)
		argvlen[i] = strlen(argv[i]);
	q = xcalloc(1, sizeof(*q));
	q->conn = c;
	q->cb = cb;
	q->arg = arg;
	q->sent_ms = now;
	q->deadline_ms = now + r->spec.timeout_ms;
	if (redisAsyncCommandArgv(c->ac, redis_reply_cb, q, 6, argv, argvlen) != REDIS_OK) {
		free(q);
		store_deliver(w, cb, arg, 0, 0, 0, "redis: cannot queue the request");
		return 0;
	}
	TAILQ_INSERT_TAIL(&c->waiting, q, entry);
	c->held++;
	redis_arm(c);
	return 0;
}

/* --- Connection ------------------------------------------------------------ */

static int
redis_connect(struct redis_conn *c)
{
	struct store_redis	*r = c->store;
	redisAsyncContext	*ac;

	if ((ac = redisAsyncConnect(r->addr, r->spec.port)) == NULL) {
		redis_failed(c, "out of memory");
		return -1;
	}
	if (ac->err) {
		redis_failed(c, ac->errstr != NULL ? ac->errstr : "cannot connect");
		redisAsyncFree(ac);
		return -1;
	}
	ac->data = c;
	if (redisLibeventAttach(ac, c->worker->base) != REDIS_OK) {
		redis_failed(c, "cannot attach to the event loop");
		redisAsyncFree(ac);
		return -1;
	}
	redisAsyncSetConnectCallback(ac, redis_on_connect);
	redisAsyncSetDisconnectCallback(ac, redis_on_disconnect);
	c->ac = ac;
	c->lost = 0;
	c->last_reply_ms = 0;
	/* Queued first, so it reaches the server before any request. */
	if (r->spec.db != 0)
		redisAsyncCommand(ac, redis_select_cb, c, "SELECT %d", r->spec.db);
	return 0;
}

/* A failure: remember why and back off before the next connection. */
static void
redis_failed(struct redis_conn *c, const char *why)
{
	unsigned int	 shift = c->failures < 7 ? c->failures : 7;
	uint64_t	 delay = (uint64_t)REDIS_BACKOFF_MIN_MS << shift;

	if (delay > REDIS_BACKOFF_MAX_MS)
		delay = REDIS_BACKOFF_MAX_MS;
	c->failures++;
	c->retry_ms = monotonic_ms() + delay;
	strlcpy_s(c->error, why, sizeof(c->error));
	log_warnx("store redis=%s worker=%d error=\"%s\" retry_in=%llums", c->store->name,
	    c->worker->id, c->error, (unsigned long long)delay);
}

/*
 * Drop the connection: every request it holds calls back now, or, from
 * inside a hiredis callback, as soon as that returns.
 */
static void
redis_teardown(struct redis_conn *c, const char *why)
{
	redisAsyncContext	*ac = c->ac;

	if (ac == NULL)
		return;
	c->ac = NULL;
	redis_failed(c, why);
	redisAsyncFree(ac);
}

static void
redis_arm(struct redis_conn *c)
{
	struct redis_req	*q = TAILQ_FIRST(&c->waiting);
	struct timeval		 tv;
	uint64_t		 now, left;

	/* A pending timer fires no later than the head's deadline: enough. */
	if (q == NULL || evtimer_pending(c->timer, NULL))
		return;
	now = monotonic_ms();
	left = q->deadline_ms > now ? q->deadline_ms - now : 0;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (long)(left % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

static void
redis_timeout_cb(evutil_socket_t fd, short events, void *arg)
{
	struct redis_conn	*c = arg;
	struct redis_req	*q;
	uint64_t		 now = monotonic_ms();
	int			 stuck = 0;

	while ((q = TAILQ_FIRST(&c->waiting)) != NULL && (q->deadline_ms <= now || stuck)) {
		TAILQ_REMOVE(&c->waiting, q, entry);
		q->answered = 1;	/* hiredis still holds it: freed in its callback */
		/* No reply at all since it went out: the rest wait in vain too. */
		if (c->last_reply_ms < q->sent_ms)
			stuck = 1;
		store_deliver(c->worker, q->cb, q->arg, 0, 0, 0, "timeout");
	}
	if (stuck)
		redis_teardown(c, "timeout: no reply");
	redis_arm(c);
}

static void
redis_on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_conn	*c = ac->data;

	if (status == REDIS_OK) {
		log_debug("store redis=%s worker=%d connected", c->store->name, c->worker->id);
		return;
	}
	/* hiredis frees ac when we return, failing its requests first. */
	if (c->ac == ac) {
		c->ac = NULL;
		redis_failed(c, ac->c.errstr[0] != '\0' ? ac->c.errstr : "cannot connect");
	}
}

static void
redis_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis_conn	*c = ac->data;

	if (c->ac != ac)
		return;		/* our own teardown, already accounted for */
	c->ac = NULL;
	if (c->lost > 0)
		redis_failed(c, ac->c.errstr[0] != '\0' ? ac->c.errstr : "connection lost");
	else {
		/* An idle connection closed (server restart, idle timeout): reconnect at once. */
		strlcpy_s(c->error, ac->c.errstr[0] != '\0' ? ac->c.errstr : "closed",
		    sizeof(c->error));
		log_info("store redis=%s worker=%d connection closed: %s", c->store->name,
		    c->worker->id, c->error);
		c->retry_ms = 0;
	}
	c->lost = 0;
}

static void
redis_select_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	struct redis_conn	*c = privdata;
	redisReply		*reply = r;
	char			 why[160];

	if (reply == NULL || reply->type != REDIS_REPLY_ERROR || c->ac != ac)
		return;
	snprintf(why, sizeof(why), "SELECT %d: %s", c->store->spec.db, reply->str);
	redis_teardown(c, why);
}

/* The answer to one request, or NULL when its connection went. */
static void
redis_reply_cb(redisAsyncContext *ac, void *r, void *privdata)
{
	struct redis_req	*q = privdata;
	struct redis_conn	*c = q->conn;
	redisReply		*reply = r;
	char			 why[200];

	c->held--;
	if (reply != NULL) {
		c->last_reply_ms = monotonic_ms();
		c->failures = 0;
	}
	if (q->answered) {	/* timed out earlier: the late reply is dropped */
		free(q);
		return;
	}
	TAILQ_REMOVE(&c->waiting, q, entry);
	if (reply == NULL) {
		if (c->ac == ac)
			c->lost++;
		snprintf(why, sizeof(why), "redis: %s", ac->c.err != 0 && ac->c.errstr[0] != '\0' ?
		    ac->c.errstr : c->error[0] != '\0' ? c->error : "connection closed");
		store_deliver(c->worker, q->cb, q->arg, 0, 0, 0, why);
	} else if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(why, sizeof(why), "redis: %.180s", reply->str);
		store_deliver(c->worker, q->cb, q->arg, 0, 0, 0, why);
	} else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER ||
	    reply->element[1]->type != REDIS_REPLY_INTEGER)
		store_deliver(c->worker, q->cb, q->arg, 0, 0, 0, "redis: unexpected reply");
	else
		store_deliver(c->worker, q->cb, q->arg, 1, reply->element[0]->integer,
		    reply->element[1]->integer > 0 ? reply->element[1]->integer : 0, "");
	free(q);
}
