/*
 * deliver_smtp.c - the relay-mode SMTP client: one message, one
 * destination, candidate addresses tried in order, per-recipient results,
 * idle connections cached per destination.  See deliver_smtp.h.
 *
 * A job (struct deliver_smtp) borrows one connection (struct dconn) at a
 * time.  Failures before the transaction (connect, greeting, EHLO) move on
 * to the next address, as Postfix's smtp(8) does; once MAIL went out on a
 * fresh connection the outcome is final for this attempt.  Every wait has
 * one of the configured timeouts (RFC 5321 4.5.3.2).  The job's end runs
 * from its own deferred event, so no callback frees what a caller up the
 * stack still uses; a connection is freed only outside its own read loop
 * (depth count, as in upstream.c).
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "deliver_smtp.h"
#include "io.h"
#include "log.h"
#include "smtp_reply.h"
#include "util.h"

#define DC_BODY_HIGH	(256 * 1024)	/* body bytes kept queued on the socket */
#define DC_BODY_STEP	(64 * 1024)	/* bytes added per pump step */
/* Room for a reason built from a relay name and a reply (cut to DELIVER_TEXT_MAX later). */
#define DS_REASON_MAX	(DELIVER_TEXT_MAX + 2 * DELIVER_RELAY_MAX + 128)

enum dc_state {
	DC_CONNECTING,		/* TCP connect in progress */
	DC_GREETING,		/* waiting for 220 */
	DC_EHLO,		/* waiting for the EHLO reply */
	DC_HELO,		/* waiting for the HELO reply (EHLO got 5xx) */
	DC_STARTTLS,		/* waiting for STARTTLS's 220 */
	DC_READY,		/* handshake done, no transaction */
	DC_ENVELOPE,		/* waiting for MAIL and RCPT replies */
	DC_DATA,		/* waiting for 354 */
	DC_BODY,		/* streaming the body */
	DC_FINAL,		/* waiting for the reply to the final dot */
	DC_RSET,		/* cached, RSET reply on the way */
	DC_IDLE,		/* cached, idle */
	DC_DEAD			/* nothing more: only free is left */
};

struct dconn {
	struct deliver_smtp_cache *cache;	/* owning cache */
	struct bufferevent	*bev;		/* the connection */
	enum dc_state		 state;		/* see above */
	struct smtp_caps	 caps;		/* after EHLO (empty after HELO) */
	int			 esmtp;		/* EHLO was accepted */
	int			 uses;		/* transactions started on it */
	int			 depth;		/* inside its own callbacks */
	int			 free_pending;	/* free once depth drops to 0 */
	char			*key;		/* destination it is cached under */
	char			 host[256];	/* remote's name as listed */
	char			 relay[DELIVER_RELAY_MAX];	/* "host[ip]:port" */
	char			 peer[DELIVER_RELAY_MAX];	/* "host[ip]" for reasons */
	struct deliver_smtp	*job;		/* using it now, or NULL when cached */
	struct dconn		*next;		/* idle list link */
	struct smtp_reply	 reply;		/* last reply read */
};

struct deliver_smtp_cache {
	struct event_base	*base;		/* not owned */
	struct deliver_smtp_config cfg;		/* copied; helo_name owned */
	struct dconn		*idle;		/* cached connections, newest first */
	size_t			 nidle;		/* entries */
};

struct deliver_smtp {
	struct deliver_smtp_cache *cache;	/* not owned */
	struct deliver_smtp_job	*job;		/* the caller's */
	deliver_smtp_done_fn	 done;		/* result callback */
	void			*arg;		/* its argument */
	struct dconn		*conn;		/* borrowed connection */
	struct event		*finish_ev;	/* runs done from the loop */
	size_t			 host_i;	/* candidate host being tried */
	size_t			 addr_i;	/* next address of that host */
	int			 reused;	/* conn came from the cache */
	int			 retried;	/* a failed reused conn was replaced once */
	int			 pipelining;	/* MAIL and RCPTs in one write */
	int			 mail_failed;	/* MAIL was refused */
	int			 mail_answered;	/* the MAIL reply arrived */
	size_t			*order;		/* recipients sent, in order */
	unsigned char		*accepted;	/* per recipient: RCPT got 2xx */
	size_t			 norder;	/* entries in order */
	size_t			 nreplies;	/* envelope replies read */
	size_t			 nsent;		/* RCPTs written (without PIPELINING) */
	size_t			 naccepted;	/* recipients accepted */
	size_t			 size;		/* message size for SIZE= */
	struct evbuffer_file_segment *seg;	/* the body */
	size_t			 body_pos;	/* bytes of it queued */
	int			 add_crlf;	/* the body lacks its last CRLF */
	struct deliver_smtp_result last;	/* last reason when all addresses fail */
	uint64_t		 start_ms;	/* for delay= */
};

static struct dconn *dc_new(struct deliver_smtp_cache *, const char *, const char *,
		    const struct sockaddr_storage *);
static void	 dc_free(struct dconn *);
static void	 dc_discard(struct dconn *);
static void	 dc_set_timeout(struct dconn *, long long);
static void	 dc_send(struct dconn *, const char *, long long);
static int	 dc_flush(struct dconn *);
static void	 dc_read_cb(struct bufferevent *, void *);
static void	 dc_write_cb(struct bufferevent *, void *);
static void	 dc_event_cb(struct bufferevent *, short, void *);
static void	 dc_log_tls(struct dconn *, struct bufferevent *);
static void	 dc_idle_lost(struct dconn *, int);
static void	 dc_idle_reply(struct dconn *, const struct smtp_reply *);
static void	 dc_cache_put(struct dconn *);
static struct dconn *dc_cache_take(struct deliver_smtp_cache *, const char *);
static void	 ds_next_address(struct deliver_smtp *);
static void	 ds_reply(struct deliver_smtp *, const struct smtp_reply *);
static void	 ds_handshake_reply(struct deliver_smtp *, const struct smtp_reply *);
static void	 ds_after_ehlo(struct deliver_smtp *, const struct smtp_reply *);
static void	 ds_starttls_reply(struct deliver_smtp *, const struct smtp_reply *);
static void	 ds_transaction(struct deliver_smtp *);
static void	 ds_envelope_reply(struct deliver_smtp *, const struct smtp_reply *);
static void	 ds_envelope_done(struct deliver_smtp *);
static void	 ds_data_reply(struct deliver_smtp *, const struct smtp_reply *);
static void	 ds_final_reply(struct deliver_smtp *, const struct smtp_reply *);
static void	 ds_body_pump(struct deliver_smtp *);
static void	 ds_lost(struct deliver_smtp *, const char *, int);
static void	 ds_address_failed(struct deliver_smtp *, int, int, const char *, const char *);
static void	 ds_retry_fresh(struct deliver_smtp *, const char *);
static void	 ds_loop(struct deliver_smtp *);
static const char *ds_phase(const struct deliver_smtp *);
static void	 dc_unlink(struct dconn *);
static void	 dc_format_addr(const struct sockaddr_storage *, char *, size_t, int *);
static void	 ds_set_pending(struct deliver_smtp *, const struct deliver_smtp_result *, int);
static void	 ds_finish(struct deliver_smtp *, int);
static void	 ds_finish_cb(evutil_socket_t, short, void *);
static void	 ds_log(struct deliver_smtp *);
static int	 ds_body_needs_crlf(const struct deliver_smtp_job *);

/* --- Configuration and cache ------------------------------------------------ */

void
deliver_smtp_config_defaults(struct deliver_smtp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->connect_timeout_ms = 30 * 1000;
	cfg->greeting_timeout_ms = 300 * 1000;
	cfg->command_timeout_ms = 300 * 1000;
	cfg->data_timeout_ms = 120 * 1000;
	cfg->body_timeout_ms = 180 * 1000;
	cfg->final_timeout_ms = 600 * 1000;
	cfg->reuse_idle_ms = 2000;
	cfg->reuse_max = 100;
	cfg->reuse_max_idle = 32;
}

struct deliver_smtp_cache *
deliver_smtp_cache_new(struct event_base *base, const struct deliver_smtp_config *cfg)
{
	struct deliver_smtp_cache *cache = xcalloc(1, sizeof(*cache));

	cache->base = base;
	cache->cfg = *cfg;
	cache->cfg.helo_name = xstrdup(cfg->helo_name != NULL ? cfg->helo_name : "localhost");
	return cache;
}

void
deliver_smtp_cache_free(struct deliver_smtp_cache **cachep)
{
	struct deliver_smtp_cache *cache = *cachep;
	struct dconn		*c;

	if (cache == NULL)
		return;
	*cachep = NULL;
	while ((c = cache->idle) != NULL) {
		cache->idle = c->next;
		if (c->state == DC_IDLE) {
			/* Polite, not waited for: the remote may already be gone. */
			evbuffer_add(bufferevent_get_output(c->bev), "QUIT\r\n", 6);
			(void)dc_flush(c);
		}
		dc_free(c);
	}
	free((char *)cache->cfg.helo_name);
	free(cache);
}

size_t
deliver_smtp_cache_idle(const struct deliver_smtp_cache *cache)
{
	return cache->nidle;
}

static void
dc_unlink(struct dconn *c)
{
	struct dconn	**pp;

	for (pp = &c->cache->idle; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			c->next = NULL;
			c->cache->nidle--;
			return;
		}
}

/* An idle connection for key, or NULL.  The caller owns it. */
static struct dconn *
dc_cache_take(struct deliver_smtp_cache *cache, const char *key)
{
	struct dconn	*c;

	if (key == NULL)
		return NULL;
	for (c = cache->idle; c != NULL; c = c->next)
		if (c->state == DC_IDLE && strcmp(c->key, key) == 0) {
			dc_unlink(c);
			return c;
		}
	return NULL;
}

/*
 * Keep c for the next batch to the same destination, or close it.  A
 * transaction still open (no recipient accepted, DATA refused) is reset
 * first; the RSET reply is read while it sits in the cache.
 */
static void
dc_cache_put(struct dconn *c)
{
	struct deliver_smtp_cache *cache = c->cache;
	int			 open_txn = c->state != DC_READY;

	c->job = NULL;
	if (cache->cfg.reuse_idle_ms <= 0 || c->uses >= cache->cfg.reuse_max ||
	    (int)cache->nidle >= cache->cfg.reuse_max_idle || c->free_pending ||
	    (c->state != DC_READY && c->state != DC_ENVELOPE && c->state != DC_DATA)) {
		if (c->state != DC_DEAD && !c->free_pending)
			dc_send(c, "QUIT", cache->cfg.command_timeout_ms);
		dc_discard(c);
		return;
	}
	c->next = cache->idle;
	cache->idle = c;
	cache->nidle++;
	if (open_txn) {
		c->state = DC_RSET;
		dc_send(c, "RSET", cache->cfg.command_timeout_ms);
		return;
	}
	c->state = DC_IDLE;
	dc_set_timeout(c, cache->cfg.reuse_idle_ms);
	bufferevent_enable(c->bev, EV_READ);
}

/* --- Connections -------------------------------------------------------------- */

static void
dc_format_addr(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, iplen);
		*port = ntohs(sin6->sin6_port);
	} else {
		inet_ntop(AF_INET, &sin->sin_addr, ip, iplen);
		*port = ntohs(sin->sin_port);
	}
}

/* A new connection attempt to addr; NULL with errno when it failed at once. */
static struct dconn *
dc_new(struct deliver_smtp_cache *cache, const char *key, const char *host,
    const struct sockaddr_storage *addr)
{
	struct dconn	*c = xcalloc(1, sizeof(*c));
	char		 ip[INET6_ADDRSTRLEN];
	int		 port;
	socklen_t	 len;

	c->cache = cache;
	c->key = xstrdup(key != NULL ? key : "");
	strlcpy_s(c->host, host, sizeof(c->host));
	dc_format_addr(addr, ip, sizeof(ip), &port);
	snprintf(c->peer, sizeof(c->peer), "%s[%s]", host, ip);
	snprintf(c->relay, sizeof(c->relay), "%s[%s]:%d", host, ip, port);
	if ((c->bev = bufferevent_socket_new(cache->base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(c->bev, dc_read_cb, dc_write_cb, dc_event_cb, c);
	c->state = DC_CONNECTING;
	dc_set_timeout(c, cache->cfg.connect_timeout_ms);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)addr, (int)len) == -1) {
		int	 saved = errno;

		dc_free(c);
		errno = saved != 0 ? saved : ECONNREFUSED;
		return NULL;
	}
	return c;
}

static void
dc_free(struct dconn *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c->key);
	free(c);
}

/* Free now, or once our own callbacks on c have unwound. */
static void
dc_discard(struct dconn *c)
{
	c->job = NULL;
	c->state = DC_DEAD;
	if (c->depth > 0) {
		c->free_pending = 1;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	dc_free(c);
}

static void
dc_set_timeout(struct dconn *c, long long ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

/*
 * Write what is queued now (io.h), or, on a filtering bufferevent (TLS),
 * let it do the writing: io_write_now() would take the fd under the
 * filter and put clear text on the wire.  Returns io_write_now()'s value,
 * 0 for a filter.
 */
static int
dc_flush(struct dconn *c)
{
	if (bufferevent_get_underlying(c->bev) == NULL)
		return io_write_now(c->bev);
	/* Output queued while writing was off is only filtered on a flush. */
	bufferevent_enable(c->bev, EV_WRITE);
	(void)bufferevent_flush(c->bev, EV_WRITE, BEV_NORMAL);
	return 0;
}

/* One command line, written at once (TCP_NODELAY is on), reply within ms. */
static void
dc_send(struct dconn *c, const char *line, long long ms)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "%s\r\n", line);
	dc_set_timeout(c, ms);
	bufferevent_enable(c->bev, EV_READ);
	(void)dc_flush(c);
}

static void
dc_read_cb(struct bufferevent *bev, void *arg)
{
	struct dconn		*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	enum smtp_reply_status	 st;

	c->depth++;
	while (!c->free_pending && c->state != DC_DEAD && evbuffer_get_length(in) > 0) {
		if (c->state == DC_IDLE || c->state == DC_BODY || c->state == DC_READY ||
		    c->state == DC_CONNECTING) {
			/* Nobody asked: a 421 before an idle close, or noise. */
			if (c->job != NULL)
				ds_lost(c->job, "protocol error: unexpected data", 1);
			else
				dc_idle_lost(c, 0);
			break;
		}
		st = smtp_reply_read(in, &c->reply);
		if (st == SMTP_REPLY_NEED_MORE)
			break;
		if (st == SMTP_REPLY_MALFORMED) {
			if (c->job != NULL)
				ds_lost(c->job, "protocol error: malformed reply", 1);
			else
				dc_idle_lost(c, 0);
			break;
		}
		if (c->job != NULL)
			ds_reply(c->job, &c->reply);
		else
			dc_idle_reply(c, &c->reply);
	}
	if (--c->depth == 0 && c->free_pending)
		dc_free(c);
}

static void
dc_write_cb(struct bufferevent *bev, void *arg)
{
	struct dconn	*c = arg;

	if (c->state == DC_BODY && c->job != NULL) {
		c->depth++;
		ds_body_pump(c->job);
		if (--c->depth == 0 && c->free_pending)
			dc_free(c);
		return;
	}
	io_write_drained(bev);
}

/* One line per TLS connection, as Postfix logs "TLS connection established". */
static void
dc_log_tls(struct dconn *c, struct bufferevent *bev)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl == NULL)
		return;
	log_info("%s tls established relay=%s version=%s cipher=%s",
	    c->job != NULL && c->job->job->queue_id != NULL ? c->job->job->queue_id : "-",
	    c->relay, SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

static void
dc_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct dconn	*c = arg;
	char		 why[160];
	int		 one = 1;

	c->depth++;
	if ((events & BEV_EVENT_CONNECTED) && bufferevent_get_underlying(bev) != NULL) {
		/* The STARTTLS handshake is done; EHLO is already on its way. */
		dc_log_tls(c, bev);
	} else if (events & BEV_EVENT_CONNECTED) {
		c->state = DC_GREETING;
		(void)setsockopt((int)bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		io_write_drained(bev);	/* EV_WRITE was only for the connect */
		if (c->job != NULL)
			dc_set_timeout(c, c->cache->cfg.greeting_timeout_ms);
	} else if (c->job == NULL)
		dc_idle_lost(c, (events & BEV_EVENT_TIMEOUT) != 0);
	else if (events & BEV_EVENT_TIMEOUT)
		ds_lost(c->job, "timeout", 0);
	else if (events & BEV_EVENT_EOF)
		ds_lost(c->job, "lost connection", 0);
	else if (events & BEV_EVENT_ERROR) {
		snprintf(why, sizeof(why), "%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		ds_lost(c->job, why, 0);
	}
	if (--c->depth == 0 && c->free_pending)
		dc_free(c);
}

/*
 * A cached connection closed, timed out (idle_over) or spoke unasked:
 * drop it.
 */
static void
dc_idle_lost(struct dconn *c, int idle_over)
{
	if (idle_over && c->state == DC_IDLE) {
		/* Idle time over: say goodbye without waiting for the answer. */
		evbuffer_add(bufferevent_get_output(c->bev), "QUIT\r\n", 6);
		(void)dc_flush(c);
	}
	dc_unlink(c);
	dc_discard(c);
}

static void
dc_idle_reply(struct dconn *c, const struct smtp_reply *r)
{
	if (c->state != DC_RSET || r->code != 250) {
		dc_unlink(c);
		dc_discard(c);
		return;
	}
	c->state = DC_IDLE;
	dc_set_timeout(c, c->cache->cfg.reuse_idle_ms);
}

/* --- Jobs: connecting ---------------------------------------------------------- */

struct deliver_smtp *
deliver_smtp_start(struct deliver_smtp_cache *cache, struct deliver_smtp_job *job,
    deliver_smtp_done_fn done, void *arg)
{
	struct deliver_smtp	*d = xcalloc(1, sizeof(*d));
	int			 fd;

	d->cache = cache;
	d->job = job;
	d->done = done;
	d->arg = arg;
	d->start_ms = monotonic_ms();
	memset(&job->summary, 0, sizeof(job->summary));
	if ((d->finish_ev = event_new(cache->base, -1, 0, ds_finish_cb, d)) == NULL)
		fatalx("event_new");
	d->order = xcalloc(job->env.nrcpts + 1, sizeof(*d->order));
	d->accepted = xcalloc(job->env.nrcpts + 1, 1);
	d->size = job->env.size != 0 ? job->env.size : job->body_len;
	deliver_smtp_result_set(&d->last, 0, DELIVER_TEMP, "4.4.1",
	    "no address to deliver to", NULL);
	/* The segment holds its own descriptor: the caller's may close after done. */
	if ((fd = fcntl(job->body_fd, F_DUPFD_CLOEXEC, 0)) == -1 ||
	    (d->seg = evbuffer_file_segment_new(fd, job->body_offset, (ev_off_t)job->body_len,
	    EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_LOCKING)) == NULL) {
		log_warn("%s deliver body unreadable", job->queue_id);
		if (fd != -1)
			close(fd);
		deliver_smtp_result_set(&d->last, 0, DELIVER_TEMP, "4.3.0",
		    "queue file unreadable", NULL);
		ds_set_pending(d, &d->last, 0);
		ds_finish(d, 0);
		return d;
	}
	d->add_crlf = ds_body_needs_crlf(job);
	if ((d->conn = dc_cache_take(cache, job->destination)) != NULL) {
		d->reused = 1;
		d->conn->job = d;
		d->conn->state = DC_READY;
		/* Starts at once; the result still comes from the loop (ds_finish). */
		ds_transaction(d);
		return d;
	}
	ds_next_address(d);
	return d;
}

/*
 * Wire form ends in CRLF; a body that does not (a damaged queue file) gets
 * one before the dot, or the remote would never see the end of data.
 */
static int
ds_body_needs_crlf(const struct deliver_smtp_job *job)
{
	char	 tail[2];

	if (job->body_len == 0)
		return 0;
	if (job->body_len < 2 || pread(job->body_fd, tail, 2,
	    job->body_offset + (off_t)job->body_len - 2) != 2)
		return 1;
	return tail[0] != '\r' || tail[1] != '\n';
}

void
deliver_smtp_cancel(struct deliver_smtp **dp)
{
	struct deliver_smtp	*d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	if (d->conn != NULL)
		dc_discard(d->conn);
	d->conn = NULL;
	event_free(d->finish_ev);
	if (d->seg != NULL)
		evbuffer_file_segment_free(d->seg);
	free(d->order);
	free(d->accepted);
	free(d);
}

/* Connect to the next candidate address; none left: all pending TEMP with the last reason. */
static void
ds_next_address(struct deliver_smtp *d)
{
	struct deliver_smtp_job		*job = d->job;
	const struct deliver_smtp_host	*h;
	char				 ip[INET6_ADDRSTRLEN], text[DELIVER_TEXT_MAX];
	int				 port;

	if (d->conn != NULL)
		dc_discard(d->conn);
	d->conn = NULL;
	while (d->host_i < job->nhosts) {
		h = &job->hosts[d->host_i];
		if (d->addr_i >= h->naddrs) {
			d->host_i++;
			d->addr_i = 0;
			continue;
		}
		job->summary.connects++;
		d->conn = dc_new(d->cache, job->destination, h->name, &h->addrs[d->addr_i]);
		if (d->conn != NULL) {
			d->conn->job = d;
			d->addr_i++;
			return;
		}
		dc_format_addr(&h->addrs[d->addr_i], ip, sizeof(ip), &port);
		snprintf(text, sizeof(text), "connect to %s[%s]:%d: %s", h->name, ip, port,
		    strerror(errno));
		deliver_smtp_result_set(&d->last, 0, DELIVER_TEMP, "4.4.1", text, NULL);
		d->addr_i++;
	}
	ds_set_pending(d, &d->last, 0);
	ds_finish(d, 0);
}

/*
 * This address cannot take the message now: remember why, try the next.
 * polite: the connection still works, say QUIT.  code is the remote's
 * (0 = none), text the reason.
 */
static void
ds_address_failed(struct deliver_smtp *d, int polite, int code, const char *enhanced,
    const char *text)
{
	struct dconn	*c = d->conn;
	char		 q[DELIVER_TEXT_MAX + 16];

	deliver_smtp_result_set(&d->last, code, DELIVER_TEMP, enhanced, text, c->relay);
	log_info("%s deliver relay=%s attempt_failed reason=%s", d->job->queue_id, c->relay,
	    log_quote(q, sizeof(q), d->last.text, DELIVER_TEXT_MAX));
	/* A 5xx greeting or EHLO says nothing final about the recipients (Postfix). */
	d->last.klass = DELIVER_TEMP;
	d->last.enhanced[0] = '4';
	if (polite)
		dc_send(c, "QUIT", d->cache->cfg.command_timeout_ms);
	ds_next_address(d);
}

/* --- Jobs: the conversation ---------------------------------------------------- */

static void
ds_reply(struct deliver_smtp *d, const struct smtp_reply *r)
{
	switch (d->conn->state) {
	case DC_GREETING:
	case DC_EHLO:
	case DC_HELO:
		ds_handshake_reply(d, r);
		return;
	case DC_STARTTLS:
		ds_starttls_reply(d, r);
		return;
	case DC_ENVELOPE:
		ds_envelope_reply(d, r);
		return;
	case DC_DATA:
		ds_data_reply(d, r);
		return;
	case DC_FINAL:
		ds_final_reply(d, r);
		return;
	default:
		return;
	}
}

/* The remote is us: defer everything, try no other address (Postfix's wording). */
static void
ds_loop(struct deliver_smtp *d)
{
	struct deliver_smtp_result	 res;
	char				 text[DELIVER_TEXT_MAX];

	snprintf(text, sizeof(text), "mail for %s loops back to myself", d->job->domain);
	log_warnx("%s deliver relay=%s replied with my own hostname %s", d->job->queue_id,
	    d->conn->relay, d->cache->cfg.helo_name);
	deliver_smtp_result_set(&res, 0, DELIVER_TEMP, "4.4.6", text, d->conn->relay);
	ds_set_pending(d, &res, 0);
	dc_send(d->conn, "QUIT", d->cache->cfg.command_timeout_ms);
	dc_discard(d->conn);
	d->conn = NULL;
	ds_finish(d, 0);
}

static void
ds_handshake_reply(struct deliver_smtp *d, const struct smtp_reply *r)
{
	struct dconn	*c = d->conn;
	char		 line[300], text[DS_REASON_MAX];
	struct deliver_smtp_result res;

	if (c->state == DC_GREETING && r->code != 220) {
		deliver_smtp_result_reply(&res, r, c->relay);
		snprintf(text, sizeof(text), "host %s refused to talk to me: %d %s", c->peer,
		    r->code, res.text);
		ds_address_failed(d, 1, r->code, res.enhanced, text);
		return;
	}
	if ((c->state == DC_GREETING || r->code == 250) &&
	    deliver_smtp_is_loop(r, d->cache->cfg.helo_name)) {
		ds_loop(d);
		return;
	}
	if (c->state == DC_GREETING) {
		c->state = DC_EHLO;
		snprintf(line, sizeof(line), "EHLO %s", d->cache->cfg.helo_name);
		dc_send(c, line, d->cache->cfg.command_timeout_ms);
		return;
	}
	if (c->state == DC_EHLO && r->code >= 500 && r->code < 600) {
		c->state = DC_HELO;
		snprintf(line, sizeof(line), "HELO %s", d->cache->cfg.helo_name);
		dc_send(c, line, d->cache->cfg.command_timeout_ms);
		return;
	}
	if (r->code != 250) {
		deliver_smtp_result_reply(&res, r, c->relay);
		snprintf(text, sizeof(text), "host %s refused to talk to me: %s: %d %s", c->peer,
		    c->state == DC_EHLO ? "EHLO" : "HELO", r->code, res.text);
		ds_address_failed(d, 1, r->code, res.enhanced, text);
		return;
	}
	ds_after_ehlo(d, r);
}

static void
ds_after_ehlo(struct deliver_smtp *d, const struct smtp_reply *r)
{
	struct dconn	*c = d->conn;

	memset(&c->caps, 0, sizeof(c->caps));
	c->esmtp = c->state == DC_EHLO;
	if (c->esmtp)
		smtp_caps_parse(r, &c->caps);
	/* The TLS seam: opportunistic STARTTLS once the TLS work provides tls_fn. */
	if (c->esmtp && d->cache->cfg.tls_fn != NULL && (c->caps.flags & SMTP_CAP_STARTTLS) &&
	    bufferevent_get_underlying(c->bev) == NULL) {
		c->state = DC_STARTTLS;
		dc_send(c, "STARTTLS", d->cache->cfg.command_timeout_ms);
		return;
	}
	c->state = DC_READY;
	ds_transaction(d);
}

/* 220: wrap the connection and say EHLO again; anything else: go on in clear. */
static void
ds_starttls_reply(struct deliver_smtp *d, const struct smtp_reply *r)
{
	struct dconn		*c = d->conn;
	struct bufferevent	*tls;
	char			 line[300];

	if (r->code != 220) {
		c->state = DC_READY;
		ds_transaction(d);
		return;
	}
	/* Bytes after the 220 would have come in clear (CVE-2011-0411 class). */
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 ||
	    (tls = d->cache->cfg.tls_fn(d->cache->cfg.tls_arg, c->bev, c->host)) == NULL) {
		ds_address_failed(d, 0, 0, "4.7.5", "TLS handshake could not start");
		return;
	}
	c->bev = tls;
	bufferevent_setcb(c->bev, dc_read_cb, dc_write_cb, dc_event_cb, c);
	c->state = DC_EHLO;
	snprintf(line, sizeof(line), "EHLO %s", d->cache->cfg.helo_name);
	dc_send(c, line, d->cache->cfg.command_timeout_ms);
}

/*
 * MAIL and the RCPTs: in one write with PIPELINING (replies read in
 * order), else one at a time.  A message the remote cannot take as it is
 * bounces here, before anything is sent.
 */
static void
ds_transaction(struct deliver_smtp *d)
{
	struct dconn			*c = d->conn;
	struct deliver_smtp_envelope	*env = &d->job->env;
	struct evbuffer			*out = bufferevent_get_output(c->bev);
	struct deliver_smtp_result	 res;
	size_t				 i;

	strlcpy_s(d->job->summary.relay, c->relay, sizeof(d->job->summary.relay));
	d->job->summary.reused = d->reused;
	if (deliver_smtp_check_caps(env, &c->caps, c->esmtp, d->size, &res)) {
		strlcpy_s(res.relay, c->relay, sizeof(res.relay));
		ds_set_pending(d, &res, 0);
		ds_finish(d, 1);
		return;
	}
	if (!deliver_smtp_address_ok(env->sender)) {
		deliver_smtp_result_set(&res, 0, DELIVER_PERM, "5.1.7", "bad sender address syntax",
		    c->relay);
		ds_set_pending(d, &res, 0);
		ds_finish(d, 1);
		return;
	}
	d->norder = d->nreplies = d->nsent = d->naccepted = 0;
	d->mail_failed = d->mail_answered = 0;
	memset(d->accepted, 0, env->nrcpts);
	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].result.klass != DELIVER_PENDING)
			continue;
		if (deliver_smtp_address_ok(env->rcpts[i].addr))
			d->order[d->norder++] = i;
		else
			deliver_smtp_result_set(&env->rcpts[i].result, 0, DELIVER_PERM, "5.1.3",
			    "bad recipient address syntax", c->relay);
	}
	if (d->norder == 0) {
		ds_finish(d, 1);
		return;
	}
	c->uses++;
	d->pipelining = c->esmtp && (c->caps.flags & SMTP_CAP_PIPELINING);
	deliver_smtp_mail_line(out, env, &c->caps, d->size);
	if (d->pipelining)
		for (; d->nsent < d->norder; d->nsent++)
			deliver_smtp_rcpt_line(out, &env->rcpts[d->order[d->nsent]], &c->caps);
	c->state = DC_ENVELOPE;
	dc_set_timeout(c, d->cache->cfg.command_timeout_ms);
	bufferevent_enable(c->bev, EV_READ);
	(void)dc_flush(c);
}

/* A reused connection died before MAIL was answered: once more on a fresh one. */
static void
ds_retry_fresh(struct deliver_smtp *d, const char *why)
{
	log_info("%s deliver relay=%s cached connection failed (%s), reconnecting",
	    d->job->queue_id, d->conn->relay, why);
	d->retried = 1;
	d->reused = 0;
	d->host_i = d->addr_i = 0;
	ds_next_address(d);
}

static void
ds_envelope_reply(struct deliver_smtp *d, const struct smtp_reply *r)
{
	struct dconn			*c = d->conn;
	struct deliver_smtp_envelope	*env = &d->job->env;
	struct deliver_smtp_result	 res;
	size_t				 idx;

	if (d->nreplies++ == 0) {
		d->mail_answered = 1;
		if (r->code == 421 && d->reused && !d->retried) {
			ds_retry_fresh(d, "421 to MAIL");
			return;
		}
		if (r->code / 100 != 2) {
			d->mail_failed = 1;
			deliver_smtp_result_reply(&res, r, c->relay);
			ds_set_pending(d, &res, 0);
		}
	} else if (!d->mail_failed) {
		idx = d->order[d->nreplies - 2];
		if (r->code / 100 == 2) {
			d->accepted[idx] = 1;
			d->naccepted++;
		} else
			deliver_smtp_result_reply(&env->rcpts[idx].result, r, c->relay);
	}
	if (d->nreplies < 1 + d->nsent)
		return;
	if (!d->pipelining && !d->mail_failed && d->nsent < d->norder) {
		deliver_smtp_rcpt_line(bufferevent_get_output(c->bev),
		    &env->rcpts[d->order[d->nsent++]], &c->caps);
		dc_set_timeout(c, d->cache->cfg.command_timeout_ms);
		(void)dc_flush(c);
		return;
	}
	ds_envelope_done(d);
}

/* All envelope replies are in: DATA if anyone was accepted, else the end. */
static void
ds_envelope_done(struct deliver_smtp *d)
{
	struct dconn	*c = d->conn;

	if (d->mail_failed || d->naccepted == 0) {
		ds_finish(d, 1);
		return;
	}
	c->state = DC_DATA;
	dc_send(c, "DATA", d->cache->cfg.data_timeout_ms);
}

static void
ds_data_reply(struct deliver_smtp *d, const struct smtp_reply *r)
{
	struct dconn			*c = d->conn;
	struct deliver_smtp_result	 res;
	struct timeval			 tv;

	if (r->code != 354) {
		deliver_smtp_result_reply(&res, r, c->relay);
		if (res.klass == DELIVER_OK) {
			/* 2xx to DATA is not an SMTP answer: never take it as delivered. */
			deliver_smtp_result_set(&res, 0, DELIVER_TEMP, "4.5.0",
			    "protocol error: unexpected reply to DATA", c->relay);
		}
		ds_set_pending(d, &res, 1);
		ds_finish(d, 1);
		return;
	}
	c->state = DC_BODY;
	d->body_pos = 0;
	/* No reply is due while the body goes out: only the write side is timed. */
	tv.tv_sec = d->cache->cfg.body_timeout_ms / 1000;
	tv.tv_usec = (d->cache->cfg.body_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(c->bev, NULL, &tv);
	bufferevent_setwatermark(c->bev, EV_WRITE, DC_BODY_HIGH / 4, 0);
	ds_body_pump(d);
}

/*
 * Keep the socket's output filled from the body's file segment (sendfile
 * when the kernel can), then the final dot.  A body that fits the socket
 * buffer goes out in this call; a larger one continues from the write
 * callback as the remote drains it.
 */
static void
ds_body_pump(struct deliver_smtp *d)
{
	struct dconn	*c = d->conn;
	struct evbuffer	*out = bufferevent_get_output(c->bev);
	size_t		 n, len = d->job->body_len;

	for (;;) {
		while (c->state == DC_BODY && evbuffer_get_length(out) < DC_BODY_HIGH) {
			n = len - d->body_pos < DC_BODY_STEP ? len - d->body_pos : DC_BODY_STEP;
			if (n > 0 && evbuffer_add_file_segment(out, d->seg, (ev_off_t)d->body_pos,
			    (ev_off_t)n) == -1) {
				ds_lost(d, "queue file unreadable", 0);
				return;
			}
			d->body_pos += n;
			if (d->body_pos < len)
				continue;
			if (d->add_crlf)
				evbuffer_add(out, "\r\n", 2);
			evbuffer_add(out, ".\r\n", 3);
			c->state = DC_FINAL;
			bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
			dc_set_timeout(c, d->cache->cfg.final_timeout_ms);
		}
		if (dc_flush(c) != 1 || c->state == DC_FINAL)
			return;
	}
}

static void
ds_final_reply(struct deliver_smtp *d, const struct smtp_reply *r)
{
	struct deliver_smtp_result	 res;

	deliver_smtp_result_reply(&res, r, d->conn->relay);
	ds_set_pending(d, &res, 1);
	d->conn->state = DC_READY;
	ds_finish(d, r->code != 421);
}

/* What the conversation was doing, for "lost connection with X while ...". */
static const char *
ds_phase(const struct deliver_smtp *d)
{
	switch (d->conn->state) {
	case DC_GREETING:
		return "receiving the initial server greeting";
	case DC_EHLO:
	case DC_HELO:
		return "performing the EHLO handshake";
	case DC_STARTTLS:
		return "performing STARTTLS";
	case DC_ENVELOPE:
		return d->mail_answered ? "sending RCPT TO" : "sending MAIL FROM";
	case DC_DATA:
		return "sending DATA command";
	case DC_BODY:
		return "sending message body";
	case DC_FINAL:
		return "sending end of data -- message may be sent more than once";
	default:
		return "starting the transaction";
	}
}

/*
 * The connection broke (garbage: 1 when the remote's bytes were not SMTP).
 * Before the transaction: next address.  A cached connection that fails
 * before MAIL is answered: once more on a fresh one.  Later: every
 * recipient still open is deferred.
 */
static void
ds_lost(struct deliver_smtp *d, const char *why, int garbage)
{
	struct dconn			*c = d->conn;
	struct deliver_smtp_result	 res;
	char				 text[DS_REASON_MAX];

	if (c->state == DC_CONNECTING) {
		snprintf(text, sizeof(text), "connect to %s: %s", c->relay,
		    strcmp(why, "timeout") == 0 ? "Connection timed out" : why);
		ds_address_failed(d, 0, 0, "4.4.1", text);
		return;
	}
	if (garbage)
		snprintf(text, sizeof(text), "%s from %s while %s", why, c->peer, ds_phase(d));
	else if (strcmp(why, "timeout") == 0)
		snprintf(text, sizeof(text), "conversation with %s timed out while %s", c->peer,
		    ds_phase(d));
	else if (strcmp(why, "lost connection") == 0)
		snprintf(text, sizeof(text), "lost connection with %s while %s", c->peer,
		    ds_phase(d));
	else
		snprintf(text, sizeof(text), "lost connection with %s while %s: %s", c->peer,
		    ds_phase(d), why);
	if (c->state == DC_GREETING || c->state == DC_EHLO || c->state == DC_HELO ||
	    c->state == DC_STARTTLS) {
		ds_address_failed(d, 0, 0, garbage ? "4.5.0" : "4.4.2", text);
		return;
	}
	if (d->reused && !d->retried && (c->state == DC_READY ||
	    (c->state == DC_ENVELOPE && !d->mail_answered))) {
		ds_retry_fresh(d, why);
		return;
	}
	if (c->state == DC_FINAL) {
		d->job->summary.dup_risk = 1;
		log_warnx("%s deliver relay=%s lost after end of data: the message may be "
		    "delivered twice", d->job->queue_id, c->relay);
	}
	deliver_smtp_result_set(&res, 0, DELIVER_TEMP, garbage ? "4.5.0" : "4.4.2", text,
	    c->relay);
	ds_set_pending(d, &res, 0);
	ds_finish(d, 0);
}

/* res for every recipient still open (accepted_only: only those accepted at RCPT). */
static void
ds_set_pending(struct deliver_smtp *d, const struct deliver_smtp_result *res,
    int accepted_only)
{
	struct deliver_smtp_envelope	*env = &d->job->env;
	size_t				 i;

	for (i = 0; i < env->nrcpts; i++) {
		if (env->rcpts[i].result.klass != DELIVER_PENDING)
			continue;
		if (accepted_only && !d->accepted[i])
			continue;
		env->rcpts[i].result = *res;
	}
}

/* The end of the job: give the connection back (keep) or close it, report from the loop. */
static void
ds_finish(struct deliver_smtp *d, int keep)
{
	struct deliver_smtp_result	 res;

	if (d->conn != NULL) {
		if (keep)
			dc_cache_put(d->conn);
		else
			dc_discard(d->conn);
		d->conn = NULL;
	}
	/* Never leave a recipient undecided, whatever path led here. */
	deliver_smtp_result_set(&res, 0, DELIVER_TEMP, "4.3.0",
	    "delivery ended without a result", NULL);
	ds_set_pending(d, &res, 0);
	event_active(d->finish_ev, 0, 0);
}

static void
ds_finish_cb(evutil_socket_t fd, short events, void *arg)
{
	struct deliver_smtp	*d = arg;
	struct deliver_smtp_job	*job = d->job;
	deliver_smtp_done_fn	 done = d->done;
	void			*done_arg = d->arg;

	job->summary.elapsed_ms = monotonic_ms() - d->start_ms;
	ds_log(d);
	deliver_smtp_cancel(&d);
	done(done_arg, job);
}

/* One line per recipient, as Postfix's smtp(8) logs them. */
static void
ds_log(struct deliver_smtp *d)
{
	static const char *const status[] = { "pending", "sent", "deferred", "bounced" };
	const struct deliver_smtp_job	*job = d->job;
	const struct deliver_smtp_rcpt	*rc;
	char				 to[300], reply[600];
	size_t				 i;

	for (i = 0; i < job->env.nrcpts; i++) {
		rc = &job->env.rcpts[i];
		log_info("%s deliver to=<%s> relay=%s delay=%.3f conn=%s status=%s code=%d "
		    "dsn=%s reply=%s", job->queue_id, log_quote(to, sizeof(to), rc->addr, 256),
		    rc->result.relay[0] != '\0' ? rc->result.relay : "none",
		    (double)job->summary.elapsed_ms / 1000.0, job->summary.reused ? "reused" : "new",
		    status[rc->result.klass], rc->result.code, rc->result.enhanced,
		    log_quote(reply, sizeof(reply), rc->result.text, 500));
	}
}
