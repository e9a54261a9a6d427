/*
 * session.c - one client connection: I/O, line framing, DATA reading,
 * timeouts, limits, transaction bookkeeping and the end of the session.
 *
 * The SMTP meaning of each command lives in smtp_cmd.c; this file only
 * moves bytes and keeps the session's invariants: one command at a time,
 * replies in order, bounded buffers, every wait timed, and a session is
 * freed from a deferred event, never inside the callback that ended it.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "chain.h"
#include "config.h"
#include "connlimit.h"
#include "generation.h"
#include "io.h"
#include "log.h"
#include "message.h"
#include "session.h"
#include "auth.h"
#include "smtp_auth.h"
#include "smtp_cmd.h"
#include "spool.h"
#include "tls.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"

/* Input kept while a command is being processed (pipelining back-pressure). */
#define SESSION_READ_HIGH	(64 * 1024)
/* Output past which we stop reading commands until the client reads. */
#define SESSION_WRITE_HIGH	(64 * 1024)

/* What session_txn_end and smtp_cmd.c store besides the txn struct. */
struct session_extra {
	struct connlimit_key	 key;	/* per-IP count taken at accept */
	int			 processing;	/* inside session_process */
	int			 freeing;	/* free scheduled */
	struct event		*greet_timer;	/* greeting_delay */
	int			 greet_wait;	/* delay and reverse lookup still running */
};

struct session_alloc {
	struct session		 s;	/* must be first */
	struct session_extra	 x;	/* private */
};

static void	 session_rdns_done(struct session *);
static void	 session_pregreet_start(struct session *);
static void	 session_pregreet_cb(evutil_socket_t, short, void *);
static void	 session_pregreet_step(struct session *);
static int	 session_early_talker(struct session *);
static void	 session_read_cb(struct bufferevent *, void *);
static void	 session_write_cb(struct bufferevent *, void *);
static void	 session_event_cb(struct bufferevent *, short, void *);
static void	 session_timer_cb(evutil_socket_t, short, void *);
static void	 session_process(struct session *);
static int	 session_read_line(struct session *);
static int	 session_read_data(struct session *);
static void	 session_data_sink(void *, const unsigned char *, size_t);
static void	 session_free_cb(void *);
static void	 session_free(struct session *);
static void	 session_arm_timer(struct session *);
static void	 txn_free(struct txn *);

static atomic_long	 session_total;

long
session_count(void)
{
	return atomic_load(&session_total);
}

static struct session_extra *
session_x(struct session *s)
{
	return &((struct session_alloc *)s)->x;
}

uint64_t
session_id(const struct session *s)
{
	return s->id;
}

int
session_tls_active(const struct session *s)
{
	return s->tls != NULL && s->tls->established;
}

/*
 * The protocol name for Received (RFC 3848) and XCLIENT PROTO: SMTP,
 * ESMTP, or ESMTPS once TLS protects the connection.  The one place that
 * names it, so AUTH can add its A here.
 */
const char *
session_protocol(const struct session *s)
{
	int	 tls = session_tls_active(s), auth = s->auth_user != NULL;

	if (!(s->flags & SESSION_ESMTP))
		return "SMTP";
	return tls && auth ? "ESMTPSA" : tls ? "ESMTPS" : auth ? "ESMTPA" : "ESMTP";
}

/*
 * The line length limit: RFC 4954 section 4 allows AUTH command and
 * response lines of 12288 bytes, longer than any other command.
 */
static size_t
session_line_limit(struct session *s, struct evbuffer *in)
{
	size_t		 limit = (size_t)s->lg->conf->limits.command_line;
	unsigned char	*p;

	if (limit >= AUTH_LINE_MAX || s->lg->conf->auth.mode == CONFIG_AUTH_NONE)
		return limit;
	if (s->flags & SESSION_IN_AUTH)
		return AUTH_LINE_MAX;
	if (evbuffer_get_length(in) >= 5 && (p = evbuffer_pullup(in, 5)) != NULL &&
	    strncasecmp((char *)p, "AUTH ", 5) == 0)
		return AUTH_LINE_MAX;
	return limit;
}

void
session_log(struct session *s, int level, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vsession(s->id, (enum log_level)level, fmt, ap);
	va_end(ap);
}

static void
session_set_nodelay(int fd)
{
	int	 one = 1;

	/* Replies go out in one write each; Nagle would hold them (DESIGN.md). */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
session_addresses(struct session *s, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct sockaddr_storage	 local;
	socklen_t		 llen = sizeof(local);

	memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
	sockaddr_format(sa, s->addr, sizeof(s->addr), &s->port);
	/* An unnamed socket (socketpair: --explain) fills no sun_path at all. */
	memset(&local, 0, sizeof(local));
	if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
		sockaddr_format((struct sockaddr *)&local, s->local_addr,
		    sizeof(s->local_addr), &s->local_port);
}

static uint64_t
session_new_id(struct worker *w)
{
	uint64_t	 id;

	do
		id = worker_random(w);
	while (id == 0 || worker_session_find(w, id) != NULL);
	return id;
}

void
session_accept(struct worker *w, int fd, const struct sockaddr *sa, socklen_t salen,
    struct generation *gen, struct listener_gen *lg, const struct connlimit_key *key)
{
	struct session_alloc	*a;
	struct session		*s;
	const struct config_limits *lim = &lg->conf->limits;
	struct timeval		 idle;
	size_t			 i;

	a = xcalloc(1, sizeof(*a));
	s = &a->s;
	a->x.key = *key;
	atomic_fetch_add(&session_total, 1);
	s->worker = w;
	s->gen = gen;
	s->lg = lg;
	s->id = session_new_id(w);
	s->started_us = monotonic_us();
	session_addresses(s, fd, sa, salen);
	session_set_nodelay(fd);
	if ((s->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb, session_event_cb, s);
	/* Above the longest allowed line, or an overlong line could never be seen. */
	bufferevent_setwatermark(s->bev, EV_READ, 0, lim->command_line + 2 > SESSION_READ_HIGH ?
	    (size_t)lim->command_line + 2 : SESSION_READ_HIGH);
	idle.tv_sec = lim->idle_timeout_ms / 1000;
	idle.tv_usec = (lim->idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(s->bev, &idle, &idle);
	if (lg->nchain > 0) {
		s->ctx = xcalloc(lg->nchain, sizeof(*s->ctx));
		for (i = 0; i < lg->nchain; i++) {
			s->ctx[i].session = s;
			s->ctx[i].index = i;
		}
	}
	worker_session_add(w, s, s->id);
	session_arm_timer(s);
	/* New bufferevents start with EV_WRITE on: we write optimistically (io.h). */
	bufferevent_disable(s->bev, EV_WRITE);
	bufferevent_enable(s->bev, EV_READ);
	/* Behind a load balancer the client's address comes first. */
	if (session_proxy_begin(s))
		return;
	session_start(s);
}

struct connlimit_key *
session_limit_key(struct session *s)
{
	return &session_x(s)->key;
}

void
session_start(struct session *s)
{
	const struct config_listener *l = s->lg->conf;

	session_log(s, LOG_LEVEL_INFO, "connect client=%s port=%d listener=%s local=%s:%d",
	    s->addr, s->port, l->name, s->local_addr, s->local_port);
	if (l->tls.mode == CONFIG_TLS_IMPLICIT) {
		/* RFC 8314: the handshake comes first; tls_session.c greets after it. */
		if (tls_session_start(s, 1) == -1)
			session_close(s, 0, NULL, NULL);
		return;
	}
	session_greet(s);
}

void
session_greet(struct session *s)
{
	const struct config_listener *l = s->lg->conf;
	struct session_extra	*x = session_x(s);

	if (l->greeting_delay_ms > 0)
		session_pregreet_start(s);
	if (l->reverse_lookup) {
		s->flags |= SESSION_BUSY;	/* early input waits for the greeting */
		x->greet_wait++;
		session_rdns(s, session_rdns_done);
		return;
	}
	if (x->greet_wait == 0) {
		smtp_cmd_connect(s);
		io_write_now(s->bev);
	}
}

static void
session_rdns_done(struct session *s)
{
	session_pregreet_step(s);
}

/*
 * greeting_delay: hold the greeting back; the reverse lookup runs
 * meanwhile.  A client that talks before the greeting is not a real SMTP
 * client (RFC 5321 3.1: the client waits for it); see session_early_talker.
 */
static void
session_pregreet_start(struct session *s)
{
	struct session_extra	*x = session_x(s);
	long long		 ms = s->lg->conf->greeting_delay_ms;
	struct timeval		 tv;

	if ((x->greet_timer = evtimer_new(s->worker->base, session_pregreet_cb, s)) == NULL)
		fatalx("evtimer_new");
	s->flags |= SESSION_BUSY | SESSION_PREGREET;
	x->greet_wait++;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(x->greet_timer, &tv);
}

static void
session_pregreet_cb(evutil_socket_t fd, short events, void *arg)
{
	struct session	*s = arg;

	if (s->flags & SESSION_CLOSING)
		return;
	session_pregreet_step(s);
}

/* The delay or the reverse lookup is over; the greeting goes once both are. */
static void
session_pregreet_step(struct session *s)
{
	struct session_extra	*x = session_x(s);

	if (x->greet_wait > 0 && --x->greet_wait > 0)
		return;
	/* Bytes that came in the same instant as the timer still count. */
	if (session_early_talker(s))
		return;
	s->flags &= ~SESSION_PREGREET;
	smtp_cmd_connect(s);
	io_write_now(s->bev);
}

/* Input during the greeting delay: 554 and close, executing nothing. 1 if so. */
static int
session_early_talker(struct session *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	size_t		 n = evbuffer_get_length(in);

	if (!(s->flags & SESSION_PREGREET) || n == 0)
		return 0;
	session_log(s, LOG_LEVEL_INFO, "disconnect reason=early_talker early_talker=yes "
	    "bytes=%zu client=%s", n, s->addr);
	evbuffer_drain(in, n);
	session_close(s, 554, "5.5.1", "Protocol error: client talked before the greeting");
	return 1;
}

/* The session timer covers the total session time and the DATA time limit. */
static void
session_arm_timer(struct session *s)
{
	const struct config_limits *lim = &s->lg->conf->limits;
	uint64_t	 now = monotonic_ms(), deadline = 0, started;
	struct timeval	 tv;

	started = s->started_us / 1000;
	if (lim->session_timeout_ms > 0)
		deadline = started + (uint64_t)lim->session_timeout_ms;
	if ((s->flags & SESSION_IN_DATA) && lim->data_time_limit_ms > 0) {
		uint64_t d = s->data_started_ms + (uint64_t)lim->data_time_limit_ms;

		if (deadline == 0 || d < deadline)
			deadline = d;
	}
	if (deadline == 0)
		return;
	if (s->timer == NULL &&
	    (s->timer = evtimer_new(s->worker->base, session_timer_cb, s)) == NULL)
		fatalx("evtimer_new");
	deadline = deadline > now ? deadline - now : 0;
	tv.tv_sec = (time_t)(deadline / 1000);
	tv.tv_usec = (suseconds_t)(deadline % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

static void
session_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct session	*s = arg;

	if (s->flags & SESSION_IN_DATA) {
		session_log(s, LOG_LEVEL_INFO, "timeout phase=data limit=data_time_limit "
		    "client=%s size=%zu", s->addr, s->dt.bytes);
		session_close(s, 421, "4.4.2", "Error: DATA time limit exceeded");
	} else {
		session_log(s, LOG_LEVEL_INFO, "timeout limit=session_timeout client=%s",
		    s->addr);
		session_close(s, 421, "4.4.2", "Error: session time limit exceeded");
	}
}

struct evbuffer *
session_output(struct session *s)
{
	return bufferevent_get_output(s->bev);
}

void
session_reply(struct session *s, int code, const char *enhanced, const char *fmt, ...)
{
	char	 text[1024];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->flags & SESSION_CLOSING)
		return;
	smtp_reply_add(session_output(s), code, enhanced, text);
}

void
session_relay(struct session *s, const struct smtp_reply *r, const char *default_enhanced)
{
	if (s->flags & SESSION_CLOSING)
		return;
	smtp_reply_relay(session_output(s), r, default_enhanced);
}

void
session_error(struct session *s)
{
	if (++s->errors >= (unsigned int)s->lg->conf->limits.errors) {
		session_log(s, LOG_LEVEL_INFO, "disconnect reason=too_many_errors errors=%u "
		    "client=%s", s->errors, s->addr);
		session_close(s, 421, "4.7.0", "Error: too many errors");
	}
}

/* --- Input ------------------------------------------------------------- */

static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	if (s->flags & SESSION_PROXY_WAIT) {
		session_proxy_read(s);
		return;
	}
	if (session_early_talker(s))
		return;
	session_process(s);
}

static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	if (s->flags & SESSION_CLOSING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			session_free(s);
		return;
	}
	io_write_drained(bev);
	/* The client read its replies: go on with what it pipelined. */
	session_process(s);
}

/*
 * Handle buffered input until a command goes asynchronous, input runs out
 * or the client stops reading our replies.
 */
static void
session_process(struct session *s)
{
	struct session_extra	*x = session_x(s);

	if (x->processing)
		return;
	x->processing = 1;
	while (!(s->flags & (SESSION_BUSY | SESSION_CLOSING))) {
		if (evbuffer_get_length(session_output(s)) > SESSION_WRITE_HIGH)
			break;
		if (s->flags & SESSION_IN_DATA) {
			if (!session_read_data(s))
				break;
		} else if (!session_read_line(s))
			break;
	}
	x->processing = 0;
	/* Every reply of this batch in one write (DESIGN.md). */
	if (!(s->flags & SESSION_CLOSING))
		io_write_now(s->bev);
}

void
session_command_done(struct session *s)
{
	s->flags &= ~SESSION_BUSY;
	smtp_cmd_abort(s);
	if (s->flags & SESSION_CLOSING)
		return;
	if ((s->flags & SESSION_DRAINING) && s->txn == NULL &&
	    !(s->flags & SESSION_IN_DATA)) {
		session_close(s, 421, "4.3.2", "Service shutting down, closing connection");
		return;
	}
	/*
	 * Inside session_process its loop goes on.  From an asynchronous
	 * completion, go on from a fresh stack (deferred read callback), so
	 * the next command never starts inside the callback of the last one.
	 */
	if (!session_x(s)->processing)
		bufferevent_trigger(s->bev, EV_READ,
		    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* Discard the rest of an overlong line; 1 when its end was found. */
static int
session_skip_line(struct session *s, struct evbuffer *in)
{
	struct evbuffer_ptr	 eol;
	size_t			 eol_len;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return 0;
	}
	evbuffer_drain(in, (size_t)eol.pos + eol_len);
	s->flags &= ~SESSION_SKIP_LINE;
	return 1;
}

/* Take one command line and dispatch it; 0 when no complete line is buffered. */
static int
session_read_line(struct session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr	 eol;
	size_t			 eol_len, limit;
	size_t			 len;
	char			*line = (char *)s->worker->linebuf;

	if ((s->flags & SESSION_SKIP_LINE) && !session_skip_line(s, in))
		return 0;
	limit = session_line_limit(s, in);
	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		if (evbuffer_get_length(in) < limit)
			return 0;
		/* No line end within the limit: refuse it and skip to its end. */
		s->flags |= SESSION_SKIP_LINE;
		s->flags &= ~SESSION_IN_AUTH;	/* an overlong response ends the exchange */
		session_log(s, LOG_LEVEL_INFO, "error reason=line_too_long limit=%zu "
		    "client=%s", limit, s->addr);
		session_reply(s, 500, "5.5.2", "Error: line too long");
		session_error(s);
		return 1;
	}
	len = (size_t)eol.pos;
	if (len + eol_len > limit || len >= s->worker->linebuf_size) {
		evbuffer_drain(in, len + eol_len);
		s->flags &= ~SESSION_IN_AUTH;
		session_log(s, LOG_LEVEL_INFO, "error reason=line_too_long limit=%zu "
		    "client=%s", limit, s->addr);
		session_reply(s, 500, "5.5.2", "Error: line too long");
		session_error(s);
		return 1;
	}
	evbuffer_remove(in, line, len);
	evbuffer_drain(in, eol_len);
	/* A CR left before the LF belongs to the line end (CRLF). */
	if (len > 0 && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	s->flags |= SESSION_BUSY;
	if (s->flags & SESSION_IN_AUTH)
		smtp_auth_line(s, line, len);
	else
		smtp_cmd_dispatch(s, line, len);
	/* The line may hold credentials: do not leave them in the buffer. */
	explicit_bzero(line, len);
	return 1;
}

void
session_data_begin(struct session *s)
{
	const struct config_limits *lim = &s->lg->conf->limits;
	struct timeval	 tv;

	dataterm_init(&s->dt, s->lg->conf->data_mode == CONFIG_DATA_NORMALIZE ?
	    DATATERM_NORMALIZE : DATATERM_STRICT, (size_t)lim->text_line);
	s->flags |= SESSION_IN_DATA;
	s->data_started_ms = monotonic_ms();
	tv.tv_sec = lim->data_timeout_ms / 1000;
	tv.tv_usec = (lim->data_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	session_arm_timer(s);
}

static void
session_data_end_timers(struct session *s)
{
	const struct config_limits *lim = &s->lg->conf->limits;
	struct timeval	 tv;

	tv.tv_sec = lim->idle_timeout_ms / 1000;
	tv.tv_usec = (lim->idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	if (s->timer != NULL)
		evtimer_del(s->timer);
	session_arm_timer(s);
}

/*
 * Content goes to the message while it is acceptable; once it is not
 * (too big, bare CR/LF, spool failure) the scanner keeps looking for the
 * end so the session stays in step with the client, and nothing more is
 * stored.
 */
static void
session_data_sink(void *arg, const unsigned char *p, size_t len)
{
	struct session	*s = arg;
	struct txn	*t = s->txn;
	long long	 max = s->lg->conf->limits.message_size;

	t->size += len;
	if (t->data_error != 0)
		return;
	if (max > 0 && t->size > (size_t)max) {
		t->data_error = TXN_DATA_TOO_BIG;
		return;
	}
	if ((s->dt.flags & (DATATERM_BARE_CR | DATATERM_BARE_LF)) &&
	    s->dt.mode == DATATERM_STRICT) {
		t->data_error = TXN_DATA_BARE_EOL;
		return;
	}
	if (message_append(t->msg, p, len) == -1) {
		t->data_errno = errno;
		t->data_error = TXN_DATA_SPOOL;
	}
}

/* Feed buffered DATA bytes to the scanner; 0 when more input is needed. */
static int
session_read_data(struct session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec	 v[8];
	int			 n, i;
	size_t			 used = 0;

	n = evbuffer_peek(in, -1, NULL, v, 8);
	if (n <= 0)
		return 0;
	for (i = 0; i < n && i < 8 && !s->dt.done; i++)
		used += dataterm_feed(&s->dt, v[i].iov_base, v[i].iov_len,
		    session_data_sink, s);
	evbuffer_drain(in, used);
	if (!s->dt.done)
		return evbuffer_get_length(in) > 0;
	s->flags &= ~SESSION_IN_DATA;
	s->flags |= SESSION_BUSY;
	if (s->txn->data_error == TXN_DATA_OK &&
	    spool_flush(message_spool(s->txn->msg)) == -1) {
		s->txn->data_errno = errno;
		s->txn->data_error = TXN_DATA_SPOOL;
	}
	session_data_end_timers(s);
	smtp_cmd_data_end(s);
	return 1;
}

/* --- Events, closing ---------------------------------------------------- */

static void
session_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct session	*s = arg;

	if (s->flags & SESSION_CLOSING) {
		session_free(s);
		return;
	}
	if (s->flags & SESSION_PROXY_WAIT) {
		session_proxy_event(s, events);
		return;
	}
	if (events & BEV_EVENT_TIMEOUT) {
		if ((s->flags & SESSION_BUSY) && !(events & BEV_EVENT_WRITING)) {
			/* We are the slow side (filter, backend): keep waiting. */
			bufferevent_enable(bev, EV_READ);
			return;
		}
		session_log(s, LOG_LEVEL_INFO, "timeout phase=%s client=%s",
		    (s->flags & SESSION_IN_DATA) ? "data" : "command", s->addr);
		session_close(s, 421, "4.4.2", (s->flags & SESSION_IN_DATA) ?
		    "Error: timeout exceeded during DATA" : "Error: timeout exceeded");
		return;
	}
	if (events & BEV_EVENT_ERROR)
		session_log(s, LOG_LEVEL_INFO, "disconnect reason=error error=\"%s\" client=%s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), s->addr);
	else
		session_log(s, LOG_LEVEL_INFO, "disconnect reason=eof%s client=%s",
		    (s->flags & SESSION_IN_DATA) ? " phase=data" : "", s->addr);
	s->flags |= SESSION_CLOSING;
	session_free(s);
}

void
session_close(struct session *s, int code, const char *enhanced, const char *text)
{
	if (s->flags & SESSION_CLOSING)
		return;
	/* Before the PROXY header the peer is the load balancer: no SMTP reply. */
	if (code != 0 && !(s->flags & SESSION_PROXY_WAIT))
		smtp_reply_add(session_output(s), code, enhanced, text);
	s->flags |= SESSION_CLOSING;
	bufferevent_disable(s->bev, EV_READ);
	if (io_write_now(s->bev) != 0)
		session_free(s);
	/* else session_write_cb frees once the reply is out */
}

/* Schedule the free on the loop: callers may be deep in callbacks. */
static void
session_free(struct session *s)
{
	struct session_extra	*x = session_x(s);

	if (x->freeing)
		return;
	x->freeing = 1;
	s->flags |= SESSION_CLOSING;
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	worker_session_remove(s->worker, s->id);
	worker_post(s->worker, session_free_cb, s);
}

static void
session_free_cb(void *arg)
{
	struct session		*s = arg;
	struct session_extra	*x = session_x(s);
	struct session_note	*n, *next;
	uint64_t		 us = monotonic_us() - s->started_us;

	chain_cancel(s);
	smtp_cmd_abort(s);
	if (s->txn != NULL)
		session_txn_end(s, "aborted");
	/* A connection in a clean state goes back to the pool for the next session. */
	upstream_release(&s->up);
	chain_notify(s, SLUICE_PHASE_CLOSE);
	session_log(s, LOG_LEVEL_INFO, "close client=%s transactions=%u errors=%u time=%.3fs",
	    s->addr, s->ntxn, s->errors, (double)us / 1e6);
	if (s->timer != NULL)
		event_free(s->timer);
	if (x->greet_timer != NULL)
		event_free(x->greet_timer);
	if (s->run.timer != NULL)
		event_free(s->run.timer);
	tls_session_flush(s);
	bufferevent_free(s->bev);
	tls_conn_free(&s->tls);
	for (n = s->notes; n != NULL; n = next) {
		next = n->next;
		free(n->key);
		free(n->value);
		free(n);
	}
	free(s->ctx);
	free(s->helo);
	free(s->hostname);
	smtp_auth_free(s);
	free(s->auth_user);
	free(s->auth_mech);
	free(s->proxy);
	connlimit_release(s->lg, &x->key);
	generation_unref(s->gen);
	free(s);
	atomic_fetch_sub(&session_total, 1);
}

/* --- Transactions -------------------------------------------------------- */

struct txn *
session_txn_new(struct session *s)
{
	struct txn	*t = xcalloc(1, sizeof(*t));

	t->number = ++s->ntxn;
	s->junk = 0;	/* limits.commands_before_mail counts since the last MAIL */
	t->started_us = monotonic_us();
	if (s->lg->nchain > 0)
		t->verdicts = xcalloc(s->lg->nchain, sizeof(*t->verdicts));
	s->txn = t;
	return t;
}

static void
txn_free(struct txn *t)
{
	size_t	 i;

	for (i = 0; i < t->nrcpts; i++) {
		free(t->rcpts[i].mailbox);
		free(t->rcpts[i].params);
	}
	free(t->rcpts);
	free(t->mail_from);
	free(t->mail_params);
	free(t->backend_reply);
	free(t->verdicts);
	for (i = 0; i < t->nauthres; i++) {
		free(t->authres[i].method);
		free(t->authres[i].result);
		free(t->authres[i].reason);
		free(t->authres[i].props);
	}
	free(t->authres);
	if (t->msg != NULL)
		message_free(t->msg);
	free(t);
}

/* "a=continue,b=reject@rcpt" for the summary line. */
static void
txn_format_verdicts(struct session *s, char *buf, size_t size)
{
	size_t	 i, n = 0;
	int	 r;

	buf[0] = '\0';
	for (i = 0; i < s->lg->nchain && n < size; i++) {
		const struct txn_verdict *v = &s->txn->verdicts[i];

		if (v->verdict == SLUICE_CONTINUE)
			r = snprintf(buf + n, size - n, "%s%s=continue", i ? "," : "",
			    s->lg->chain[i]->conf->name);
		else
			r = snprintf(buf + n, size - n, "%s%s=%s@%s", i ? "," : "",
			    s->lg->chain[i]->conf->name, chain_verdict_name(v->verdict),
			    chain_phase_name(v->phase));
		if (r < 0)
			break;
		n += (size_t)r;
	}
}

static void
txn_format_rcpts(const struct txn *t, char *buf, size_t size)
{
	size_t	 i, n = 0;
	int	 r;

	buf[0] = '\0';
	for (i = 0; i < t->nrcpts && n < size; i++) {
		char	 q[300];

		log_quote(q, sizeof(q), t->rcpts[i].mailbox, 256);
		r = snprintf(buf + n, size - n, "%s<%s>", i ? "," : "", q);
		if (r < 0)
			break;
		n += (size_t)r;
	}
}

/* The per-transaction summary line (skipped entirely below level info). */
static void
txn_log_summary(struct session *s, const char *result)
{
	struct txn	*t = s->txn;
	char		 verdicts[1024], rcpts[2048], from[300], helo[300], reply[600];
	uint64_t	 us = monotonic_us() - t->started_us;

	txn_format_verdicts(s, verdicts, sizeof(verdicts));
	txn_format_rcpts(t, rcpts, sizeof(rcpts));
	/* The null sender is logged as from=<>, like Postfix. */
	if (t->mail_from == NULL || t->mail_from[0] == '\0')
		from[0] = '\0';
	else
		log_quote(from, sizeof(from), t->mail_from, 256);
	log_quote(helo, sizeof(helo), s->helo != NULL ? s->helo : "", 256);
	log_quote(reply, sizeof(reply), t->backend_reply != NULL ? t->backend_reply : "", 512);
	session_log(s, LOG_LEVEL_INFO, "done txn=%u result=%s client=%s helo=%s from=<%s> "
	    "rcpts=%s nrcpt=%zu size=%zu filters=\"%s\" backend=%s time=%.3fms%s%s",
	    t->number, result, s->addr, helo, from, t->nrcpts ? rcpts : "-", t->nrcpts,
	    t->size, verdicts, t->backend_reply != NULL ? reply : "-", (double)us / 1000.0,
	    session_tls_active(s) ? " tls=" : "", session_tls_active(s) ? s->tls->version : "");
}

void
session_txn_end(struct session *s, const char *result)
{
	struct txn	*t = s->txn;

	if (t == NULL)
		return;
	if (log_get_level() <= LOG_LEVEL_INFO)
		txn_log_summary(s, result);
	s->txn = NULL;
	chain_notify(s, SLUICE_PHASE_RESET);
	txn_free(t);
}

/* --- Shutdown ------------------------------------------------------------ */

static void
session_drain(struct session *s, void *arg)
{
	s->flags |= SESSION_DRAINING;
	if (!(s->flags & (SESSION_BUSY | SESSION_IN_DATA)) && s->txn == NULL)
		session_close(s, 421, "4.3.2", "Service shutting down, closing connection");
}

static void
session_kill(struct session *s, void *arg)
{
	session_log(s, LOG_LEVEL_INFO, "disconnect reason=shutdown client=%s", s->addr);
	session_close(s, 421, "4.3.2", "Service shutting down, closing connection");
}

void
session_drain_all(void *unused)
{
	worker_session_foreach(worker_current(), session_drain, NULL);
}

void
session_kill_all(void *unused)
{
	worker_session_foreach(worker_current(), session_kill, NULL);
}
