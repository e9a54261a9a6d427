/*
 * upstream.c - the SMTP/LMTP client: connecting with failover, the
 * greeting and EHLO/LHLO, client identity (XCLIENT, XFORWARD), commands,
 * DATA with back-pressure, and pooling between sessions.  See upstream.h.
 *
 * Every wait is bounded by one of the backend's timeouts.  Callbacks may
 * free the upstream they are called for; the read path therefore keeps a
 * depth count and defers the real free until it has unwound.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "backend.h"
#include "io.h"
#include "log.h"
#include "message.h"
#include "smtp_reply.h"
#include "tls.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"

#define UP_MAX_SERVERS		32
#define UP_DATA_HIGH		(256 * 1024)	/* output kept queued while sending DATA */
#define UP_DATA_STEP		(64 * 1024)	/* bytes added per writer step */
#define UP_XATTR_LINE		480		/* split XCLIENT/XFORWARD lines here */

enum up_state {
	UP_CONNECTING,		/* TCP/unix connect in progress */
	UP_GREETING,		/* waiting for 220 */
	UP_EHLO,		/* waiting for the EHLO/LHLO reply */
	UP_XCLIENT,		/* waiting for XCLIENT's 220 */
	UP_XCLIENT_EHLO,	/* waiting for EHLO after XCLIENT */
	UP_READY,		/* idle, owned by a session */
	UP_COMMAND,		/* waiting for a command's reply */
	UP_XFORWARD,		/* waiting for XFORWARD's 250 */
	UP_DATA_CMD,		/* waiting for 354 */
	UP_DATA_BODY,		/* streaming the message */
	UP_DATA_FINAL,		/* waiting for final replies */
	UP_RESETTING,		/* RSET before pooling */
	UP_IDLE,		/* in the pool */
	UP_FAILED,		/* an error was reported; only free is left */
	UP_STARTTLS,		/* waiting for STARTTLS's 220 */
	UP_TLS_HANDSHAKE	/* TLS handshake (after STARTTLS, or implicit) */
};

struct upstream {
	struct backend		*b;		/* not owned */
	struct worker		*w;		/* owning worker */
	struct bufferevent	*bev;		/* the connection, NULL between servers */
	enum up_state		 state;		/* see above */
	size_t			 server;	/* index into b->servers */
	size_t			 order[UP_MAX_SERVERS];	/* servers to try */
	size_t			 norder;	/* entries */
	size_t			 tried;		/* next entry to try */
	struct smtp_caps	 caps;		/* last EHLO/LHLO */
	int			 lmtp;		/* LHLO and per-recipient replies */
	int			 uses_xclient;	/* identity by XCLIENT */
	int			 uses_xforward;	/* identity by XFORWARD */
	int			 in_txn;	/* MAIL accepted, not ended */
	int			 cmd_rset;	/* the command in flight is RSET */
	int			 counted;	/* holds a backend connection slot */
	int			 depth;		/* inside our own callbacks */
	int			 free_pending;	/* free once depth drops to 0 */
	uint64_t		 created_ms;	/* for max_age */
	uint64_t		 identity_sid;	/* session the XCLIENT identity is for */
	struct upstream_identity ident;		/* the client, strings owned (ident_*) */
	char			*ident_strings[6];	/* owned copies behind ident */
	char			**lines;	/* XCLIENT/XFORWARD lines still to send */
	size_t			 nlines;	/* how many */
	size_t			 line_next;	/* next to send */
	upstream_cb		 cb;		/* pending operation's callback */
	void			*arg;		/* its argument */
	enum upstream_error	 defer_err;	/* result for the deferred callback */
	struct event		*defer;		/* deferred callback (acquire) */
	struct message_writer	 writer;	/* DATA streaming */
	size_t			 replies_left;	/* DATA_FINAL: replies still expected */
	struct upstream		*next;		/* pool link */
	struct smtp_reply	 reply;		/* last reply */
	int			 tls_on;	/* TLS protects the connection */
};

static void	 up_read_cb(struct bufferevent *, void *);
static void	 up_write_cb(struct bufferevent *, void *);
static void	 up_event_cb(struct bufferevent *, short, void *);
static void	 up_defer_cb(evutil_socket_t, short, void *);
static void	 up_connect_next(struct upstream *, enum upstream_error, const struct smtp_reply *);
static void	 up_reply(struct upstream *, const struct smtp_reply *);
static void	 up_fail(struct upstream *, enum upstream_error, const struct smtp_reply *);
static void	 up_really_free(struct upstream *);
static void	 up_send_ehlo(struct upstream *, const char *);
static void	 up_identity_lines(struct upstream *, int);
static void	 up_start_xclient(struct upstream *);
static void	 up_send_next_line(struct upstream *);
static void	 up_data_pump(struct upstream *);
static void	 up_ready(struct upstream *);
static void	 up_discard(struct upstream *);
static void	 up_after_caps(struct upstream *);
static int	 up_tls_wanted(struct upstream *);
static void	 up_tls_replied(struct upstream *, const struct smtp_reply *);
static int	 up_tls_start(struct upstream *);
static void	 up_tls_established(struct upstream *);
static void	 up_tls_name(const struct upstream *, char *, size_t);
static void	 up_tls_handshake_event(struct upstream *, short);

const char *
upstream_error_text(enum upstream_error err)
{
	static const char *const names[] = {
		"ok", "connect", "timeout", "closed", "garbage", "limit", "io", "data_refused"
	};

	return (unsigned int)err < nitems(names) ? names[err] : "unknown";
}

const struct smtp_caps *
upstream_caps(const struct upstream *up)
{
	return &up->caps;
}

const char *
upstream_server_name(const struct upstream *up)
{
	return up->b->servers[up->server].name;
}

int
upstream_is_lmtp(const struct upstream *up)
{
	return up->lmtp;
}

int
upstream_in_txn(const struct upstream *up)
{
	return up->in_txn;
}

static void
up_set_timeout(struct upstream *up, long long ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	bufferevent_set_timeouts(up->bev, &tv, &tv);
}

static void
up_write_line(struct upstream *up, const char *line, long long timeout_ms)
{
	struct evbuffer	*out = bufferevent_get_output(up->bev);

	evbuffer_add(out, line, strlen(line));
	evbuffer_add(out, "\r\n", 2);
	up_set_timeout(up, timeout_ms);
	bufferevent_enable(up->bev, EV_READ);
	io_write_now(up->bev);
}

static struct upstream *
up_new(struct backend *b, struct worker *w)
{
	struct upstream	*up = xcalloc(1, sizeof(*up));

	up->b = b;
	up->w = w;
	up->lmtp = b->conf->type == CONFIG_BACKEND_LMTP;
	if ((up->defer = event_new(w->base, -1, 0, up_defer_cb, up)) == NULL)
		fatalx("event_new");
	return up;
}

/* Run the callback from the loop, not from inside upstream_acquire. */
static void
up_defer(struct upstream *up, enum upstream_error err)
{
	up->defer_err = err;
	event_active(up->defer, 0, 0);
}

static void
up_defer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct upstream	*up = arg;

	if (up->defer_err != UPSTREAM_OK)
		up_fail(up, up->defer_err, NULL);
	else
		up_reply(up, NULL);
}

/* Hand a result to the owner: clears cb first, guards against free. */
static void
up_callback(struct upstream *up, enum upstream_error err, const struct smtp_reply *r)
{
	upstream_cb	 cb = up->cb;
	void		*arg = up->arg;

	up->cb = NULL;
	up->arg = NULL;
	if (cb == NULL)
		return;
	up->depth++;
	cb(arg, up, err, r);
	if (--up->depth == 0 && up->free_pending)
		up_really_free(up);
}

static void
up_fail(struct upstream *up, enum upstream_error err, const struct smtp_reply *r)
{
	up->state = UP_FAILED;
	up->in_txn = 0;
	if (up->bev != NULL)
		bufferevent_disable(up->bev, EV_READ | EV_WRITE);
	up_callback(up, err, r);
}

/* --- Acquire and connect ---------------------------------------------------- */

static const char *
up_keep(struct upstream *up, int slot, const char *s)
{
	free(up->ident_strings[slot]);
	up->ident_strings[slot] = s != NULL ? xstrdup(s) : NULL;
	return up->ident_strings[slot];
}

static void
up_copy_identity(struct upstream *up, const struct upstream_identity *id)
{
	up->ident = *id;
	up->ident.addr = up_keep(up, 0, id->addr);
	up->ident.name = up_keep(up, 1, id->name);
	up->ident.helo = up_keep(up, 2, id->helo);
	up->ident.proto = up_keep(up, 3, id->proto);
	up->ident.login = up_keep(up, 4, id->login);
	up->ident.dest_addr = up_keep(up, 5, id->dest_addr);
}

/* A pooled connection that is still young enough, or NULL. */
static struct upstream *
up_pool_take(struct backend *b, struct worker *w)
{
	struct backend_pool	*pool = &b->pools[w->id];
	uint64_t		 now = monotonic_ms();
	struct upstream		*up;

	struct upstream		*next;

	for (up = pool->idle; up != NULL; up = next) {
		next = up->next;
		/* Its RSET reply is still on the way: not ready for a new owner. */
		if (up->state == UP_RESETTING)
			continue;
		upstream_pool_unlink(b, w, up);
		if (now - up->created_ms < (uint64_t)b->conf->max_age_ms)
			return up;
		upstream_free(&up);
	}
	return NULL;
}

struct upstream *
upstream_acquire(struct backend *b, struct worker *w, const struct upstream_identity *id,
    upstream_cb cb, void *arg)
{
	struct upstream	*up;

	if ((up = up_pool_take(b, w)) != NULL) {
		/* Same session, but AUTH since the last XCLIENT: send LOGIN now. */
		int	 login_changed = (up->ident.login == NULL) != (id->login == NULL) ||
		    (id->login != NULL && strcmp(up->ident.login, id->login) != 0);

		up->cb = cb;
		up->arg = arg;
		up->state = UP_READY;
		up_copy_identity(up, id);
		if (up->uses_xclient && (up->identity_sid != id->session_id || login_changed))
			up_start_xclient(up);
		else
			up_defer(up, UPSTREAM_OK);
		return up;
	}
	up = up_new(b, w);
	up->cb = cb;
	up->arg = arg;
	up_copy_identity(up, id);
	if (backend_slot_take(b) == -1) {
		log_warnx("backend=%s connection limit %lld reached", b->conf->name,
		    b->conf->max_connections);
		/* Idle pooled connections on other workers may hold the slots. */
		backend_shed_idle(b);
		up->state = UP_FAILED;
		up_defer(up, UPSTREAM_LIMIT);
		return up;
	}
	up->counted = 1;
	up->norder = backend_server_order(b, up->order, UP_MAX_SERVERS);
	up->tried = 0;
	up_connect_next(up, UPSTREAM_CONNECT, NULL);
	return up;
}

static int
up_connect_one(struct upstream *up)
{
	const struct backend_server	*srv = &up->b->servers[up->server];

	if ((up->bev = bufferevent_socket_new(up->w->base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(up->bev, up_read_cb, up_write_cb, up_event_cb, up);
	up->state = UP_CONNECTING;
	up_set_timeout(up, up->b->conf->connect_timeout_ms);
	bufferevent_enable(up->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(up->bev, (const struct sockaddr *)srv->addr,
	    srv->addrlen) == -1)
		return -1;
	return 0;
}

/* Try the next server; when none is left, report err (and r). */
static void
up_connect_next(struct upstream *up, enum upstream_error err, const struct smtp_reply *r)
{
	while (up->tried < up->norder) {
		up->server = up->order[up->tried++];
		if (up->bev != NULL) {
			bufferevent_free(up->bev);
			up->bev = NULL;
		}
		memset(&up->caps, 0, sizeof(up->caps));
		up->tls_on = 0;
		if (up_connect_one(up) == 0)
			return;
		backend_server_failed(up->b, up->server, strerror(errno));
	}
	if (up->bev != NULL) {
		bufferevent_free(up->bev);
		up->bev = NULL;
	}
	log_warnx("backend=%s no server reachable", up->b->conf->name);
	up_fail(up, err, r);
}

/* The server failed before it was ready: mark it and move on. */
static void
up_server_failed(struct upstream *up, enum upstream_error err, const char *why,
    const struct smtp_reply *r)
{
	backend_server_failed(up->b, up->server, why);
	up_connect_next(up, err, r);
}

static void
up_set_nodelay(struct upstream *up)
{
	int	 one = 1, fd = (int)bufferevent_getfd(up->bev);

	if (up->b->servers[up->server].addr->ss_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* --- Identity ------------------------------------------------------------- */

static void
up_lines_free(struct upstream *up)
{
	size_t	 i;

	for (i = 0; i < up->nlines; i++)
		free(up->lines[i]);
	free(up->lines);
	up->lines = NULL;
	up->nlines = up->line_next = 0;
}

/* Append "NAME=xtext(value)" to the current line, starting a new one past the limit. */
static void
up_attr(struct upstream *up, struct evbuffer **cur, const char *verb, const char *name,
    const char *value)
{
	struct evbuffer	*attr = evbuffer_new();

	evbuffer_add_printf(attr, " %s=", name);
	smtp_xtext_encode(attr, value);
	if (*cur != NULL && evbuffer_get_length(*cur) + evbuffer_get_length(attr) >
	    UP_XATTR_LINE) {
		up->lines = xreallocarray(up->lines, up->nlines + 1, sizeof(*up->lines));
		evbuffer_add(*cur, "", 1);
		up->lines[up->nlines++] = xstrdup((char *)evbuffer_pullup(*cur, -1));
		evbuffer_free(*cur);
		*cur = NULL;
	}
	if (*cur == NULL) {
		*cur = evbuffer_new();
		evbuffer_add_printf(*cur, "%s", verb);
	}
	evbuffer_add_buffer(*cur, attr);
	evbuffer_free(attr);
}

/*
 * Build the XCLIENT (xclient != 0) or XFORWARD lines for the client
 * identity, with only the attributes the server offered.
 */
static void
up_identity_lines(struct upstream *up, int xclient)
{
	const struct upstream_identity *id = &up->ident;
	unsigned int	 offer = xclient ? up->caps.xclient : up->caps.xforward;
	struct evbuffer	*cur = NULL;
	const char	*verb = xclient ? "XCLIENT" : "XFORWARD";
	char		 addr[80], num[16];

	up_lines_free(up);
	snprintf(addr, sizeof(addr), "%s%s", strchr(id->addr, ':') ? "IPV6:" : "", id->addr);
	if (offer & SMTP_XATTR_NAME)
		up_attr(up, &cur, verb, "NAME", id->name != NULL ? id->name : "[UNAVAILABLE]");
	if (offer & SMTP_XATTR_ADDR)
		up_attr(up, &cur, verb, "ADDR", addr);
	snprintf(num, sizeof(num), "%d", id->port);
	if (offer & SMTP_XATTR_PORT)
		up_attr(up, &cur, verb, "PORT", num);
	/*
	 * Postfix's XCLIENT takes only SMTP or ESMTP (501 otherwise, and the
	 * identity would be lost); XFORWARD takes any name, ESMTPS included.
	 */
	if (offer & SMTP_XATTR_PROTO)
		up_attr(up, &cur, verb, "PROTO", xclient && strncmp(id->proto, "ESMTP", 5) == 0 ?
		    "ESMTP" : id->proto);
	if (offer & SMTP_XATTR_HELO)
		up_attr(up, &cur, verb, "HELO", id->helo != NULL ? id->helo : "[UNAVAILABLE]");
	if (xclient && (offer & SMTP_XATTR_LOGIN))
		up_attr(up, &cur, verb, "LOGIN", id->login != NULL ? id->login : "[UNAVAILABLE]");
	if (xclient && (offer & SMTP_XATTR_DESTADDR) && id->dest_addr != NULL) {
		snprintf(addr, sizeof(addr), "%s%s", strchr(id->dest_addr, ':') ? "IPV6:" : "",
		    id->dest_addr);
		up_attr(up, &cur, verb, "DESTADDR", addr);
	}
	snprintf(num, sizeof(num), "%d", id->dest_port);
	if (xclient && (offer & SMTP_XATTR_DESTPORT))
		up_attr(up, &cur, verb, "DESTPORT", num);
	if (!xclient && (offer & SMTP_XATTR_IDENT)) {
		snprintf(addr, sizeof(addr), "%016llx", (unsigned long long)id->session_id);
		up_attr(up, &cur, verb, "IDENT", addr);
	}
	if (!xclient && (offer & SMTP_XATTR_SOURCE))
		up_attr(up, &cur, verb, "SOURCE", "REMOTE");
	if (cur != NULL) {
		up->lines = xreallocarray(up->lines, up->nlines + 1, sizeof(*up->lines));
		evbuffer_add(cur, "", 1);
		up->lines[up->nlines++] = xstrdup((char *)evbuffer_pullup(cur, -1));
		evbuffer_free(cur);
	}
}

static void
up_send_next_line(struct upstream *up)
{
	up_write_line(up, up->lines[up->line_next++], up->b->conf->command_timeout_ms);
}

/* XCLIENT for this session's client, then EHLO again (Postfix XCLIENT_README). */
static void
up_start_xclient(struct upstream *up)
{
	up->identity_sid = up->ident.session_id;
	up_identity_lines(up, 1);
	if (up->nlines == 0) {
		up->uses_xclient = 0;
		if (up->state == UP_READY)
			up_defer(up, UPSTREAM_OK);
		else
			up_ready(up);
		return;
	}
	up->state = UP_XCLIENT;
	up_send_next_line(up);
}

/* After EHLO: pick the identity method the config and the server allow. */
static void
up_choose_identity(struct upstream *up)
{
	enum config_identity	 want = up->b->conf->identity;

	up->uses_xclient = (want == CONFIG_IDENTITY_AUTO || want == CONFIG_IDENTITY_XCLIENT) &&
	    (up->caps.flags & SMTP_CAP_XCLIENT) && up->caps.xclient != 0;
	up->uses_xforward = !up->uses_xclient && (up->caps.flags & SMTP_CAP_XFORWARD) &&
	    up->caps.xforward != 0 &&
	    (want == CONFIG_IDENTITY_AUTO || want == CONFIG_IDENTITY_XFORWARD);
	if ((want == CONFIG_IDENTITY_XCLIENT && !up->uses_xclient) ||
	    (want == CONFIG_IDENTITY_XFORWARD && !up->uses_xforward))
		log_warnx("backend=%s server=%s does not offer %s; client identity not passed",
		    up->b->conf->name, upstream_server_name(up),
		    want == CONFIG_IDENTITY_XCLIENT ? "XCLIENT" : "XFORWARD");
}

static void
up_send_ehlo(struct upstream *up, const char *name)
{
	char	*line;

	xasprintf(&line, "%s %s", up->lmtp ? "LHLO" : "EHLO", name);
	up_write_line(up, line, up->b->conf->command_timeout_ms);
	free(line);
}

/* --- Replies ------------------------------------------------------------------ */

static void
up_ready(struct upstream *up)
{
	up->state = UP_READY;
	up_lines_free(up);
	backend_server_ok(up->b, up->server);
	up_set_timeout(up, up->b->conf->command_timeout_ms);
	up_callback(up, UPSTREAM_OK, NULL);
}

static void
up_after_ehlo(struct upstream *up, const struct smtp_reply *r)
{
	smtp_caps_parse(r, &up->caps);
	if (up_tls_wanted(up))
		return;
	up_after_caps(up);
}

/* Capabilities known (after TLS, if any): identity, then ready. */
static void
up_after_caps(struct upstream *up)
{
	if (up->created_ms == 0)
		up->created_ms = monotonic_ms();
	if (up->state == UP_EHLO) {
		up_choose_identity(up);
		if (up->uses_xclient) {
			up_start_xclient(up);
			return;
		}
	}
	up_ready(up);
}

static void
up_xclient_replied(struct upstream *up, const struct smtp_reply *r)
{
	/* Postfix answers 220 (a new greeting), some servers 250: both mean done. */
	if (r->code / 100 != 2) {
		/* Not authorised for XCLIENT: go on without it, and say so. */
		log_warnx("backend=%s server=%s refused XCLIENT code=%d text=\"%s\"",
		    up->b->conf->name, upstream_server_name(up), r->code, smtp_reply_text(r));
		up->uses_xclient = 0;
		up_ready(up);
		return;
	}
	if (up->line_next < up->nlines) {
		up_send_next_line(up);
		return;
	}
	up->state = UP_XCLIENT_EHLO;
	up_send_ehlo(up, up->ident.helo != NULL ? up->ident.helo : up->b->conf->helo_name);
}

static void
up_reply_handshake(struct upstream *up, const struct smtp_reply *r)
{
	switch (up->state) {
	case UP_GREETING:
		if (r->code != 220) {
			up_server_failed(up, UPSTREAM_CONNECT, "greeting refused", r);
			return;
		}
		up->state = UP_EHLO;
		up_send_ehlo(up, up->b->conf->helo_name);
		return;
	case UP_EHLO:
		if (r->code != 250) {
			up_server_failed(up, UPSTREAM_CONNECT, "EHLO refused", r);
			return;
		}
		up_after_ehlo(up, r);
		return;
	case UP_XCLIENT:
		up_xclient_replied(up, r);
		return;
	case UP_STARTTLS:
		up_tls_replied(up, r);
		return;
	case UP_XCLIENT_EHLO:
		if (r->code != 250) {
			up_fail(up, UPSTREAM_CONNECT, r);
			return;
		}
		up_after_ehlo(up, r);
		return;
	default:
		return;
	}
}

static void
up_reply_data(struct upstream *up, const struct smtp_reply *r)
{
	if (up->state == UP_DATA_CMD) {
		if (r->code != 354) {
			up->state = UP_READY;
			up_callback(up, UPSTREAM_DATA_REFUSED, r);
			return;
		}
		up->state = UP_DATA_BODY;
		up_set_timeout(up, up->b->conf->data_timeout_ms);
		bufferevent_setwatermark(up->bev, EV_WRITE, UP_DATA_HIGH / 4, 0);
		up_data_pump(up);
		return;
	}
	/* UP_DATA_FINAL: one reply per expected recipient. */
	if (--up->replies_left == 0) {
		up->state = UP_READY;
		up->in_txn = 0;
		up_set_timeout(up, up->b->conf->command_timeout_ms);
		up_callback(up, UPSTREAM_OK, r);
		return;
	}
	/* More to come: the callback must not lose them, so keep cb set. */
	{
		upstream_cb	 cb = up->cb;
		void		*arg = up->arg;

		up->depth++;
		cb(arg, up, UPSTREAM_OK, r);
		if (--up->depth == 0 && up->free_pending)
			up_really_free(up);
	}
}

/* One complete reply for the current state. */
static void
up_reply(struct upstream *up, const struct smtp_reply *r)
{
	switch (up->state) {
	case UP_GREETING:
	case UP_EHLO:
	case UP_XCLIENT:
	case UP_XCLIENT_EHLO:
	case UP_STARTTLS:
		up_reply_handshake(up, r);
		return;
	case UP_READY:
		/* The deferred acquire result (r == NULL). */
		if (r == NULL)
			up_callback(up, UPSTREAM_OK, NULL);
		return;
	case UP_COMMAND:
		up->state = UP_READY;
		if (up->cmd_rset && r->code == 250)
			up->in_txn = 0;
		up_callback(up, UPSTREAM_OK, r);
		return;
	case UP_XFORWARD:
		if (r->code != 250 || up->line_next >= up->nlines) {
			up->state = UP_READY;
			up_lines_free(up);
			up_callback(up, UPSTREAM_OK, r);
			return;
		}
		up_send_next_line(up);
		return;
	case UP_DATA_CMD:
	case UP_DATA_FINAL:
		up_reply_data(up, r);
		return;
	case UP_RESETTING:
		if (r->code != 250) {
			up_discard(up);
			return;
		}
		up->in_txn = 0;
		up->state = UP_IDLE;
		up_set_timeout(up, up->b->conf->idle_timeout_ms);
		return;
	default:
		return;
	}
}

/* Free now, or, from inside our own callbacks, once they have unwound. */
static void
up_discard(struct upstream *up)
{
	if (up->depth > 0) {
		up->free_pending = 1;
		if (up->bev != NULL)
			bufferevent_disable(up->bev, EV_READ | EV_WRITE);
		return;
	}
	up_really_free(up);
}

/* Which error a dead connection means in this state. */
static void
up_lost(struct upstream *up, enum upstream_error err, const char *why)
{
	switch (up->state) {
	case UP_CONNECTING:
	case UP_GREETING:
	case UP_EHLO:
	case UP_STARTTLS:
		up_server_failed(up, err == UPSTREAM_GARBAGE ? UPSTREAM_GARBAGE : UPSTREAM_CONNECT,
		    why, NULL);
		return;
	case UP_IDLE:
	case UP_RESETTING:
		up_discard(up);
		return;
	case UP_FAILED:
		return;
	default:
		log_warnx("backend=%s server=%s connection lost state=%d reason=%s",
		    up->b->conf->name, upstream_server_name(up), (int)up->state, why);
		up_fail(up, err, NULL);
		return;
	}
}

static void
up_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream		*up = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	enum smtp_reply_status	 st;

	up->depth++;
	/* A handshake failure may move on to another server (a new bev). */
	while (!up->free_pending && up->state != UP_FAILED && up->bev == bev) {
		if (up->state == UP_IDLE || up->state == UP_READY ||
		    up->state == UP_DATA_BODY || up->state == UP_CONNECTING ||
		    up->state == UP_TLS_HANDSHAKE) {
			/* Nobody asked: a pooled server saying 421, or noise. */
			if (evbuffer_get_length(in) > 0)
				up_lost(up, UPSTREAM_GARBAGE, "unexpected data");
			break;
		}
		st = smtp_reply_read(in, &up->reply);
		if (st == SMTP_REPLY_NEED_MORE)
			break;
		if (st == SMTP_REPLY_MALFORMED) {
			up_lost(up, UPSTREAM_GARBAGE, "malformed reply");
			break;
		}
		up_reply(up, &up->reply);
	}
	if (--up->depth == 0 && up->free_pending)
		up_really_free(up);
}

static void
up_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct upstream	*up = arg;

	up->depth++;
	if (up->state == UP_TLS_HANDSHAKE) {
		up_tls_handshake_event(up, events);
	} else if (events & BEV_EVENT_CONNECTED) {
		up->state = UP_GREETING;
		up_set_nodelay(up);
		io_write_drained(bev);	/* EV_WRITE was only for the connect */
		/* RFC 8314 towards the backend: TLS before the greeting. */
		if (up->b->conf->tls.implicit && up_tls_start(up) == -1)
			up_server_failed(up, UPSTREAM_CONNECT, "TLS could not start", NULL);
	} else if (events & BEV_EVENT_TIMEOUT)
		up_lost(up, UPSTREAM_TIMEOUT, "timeout");
	else if (events & BEV_EVENT_EOF)
		up_lost(up, UPSTREAM_CLOSED, "closed by server");
	else if (events & BEV_EVENT_ERROR)
		up_lost(up, UPSTREAM_CLOSED,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	if (--up->depth == 0 && up->free_pending)
		up_really_free(up);
}

/* --- TLS (STARTTLS after the first EHLO, or implicit) ------------------------ */

/* After the first EHLO: 1 when STARTTLS was sent or the server was given up. */
static int
up_tls_wanted(struct upstream *up)
{
	const struct config_backend_tls *t = &up->b->conf->tls;

	if (up->state != UP_EHLO || up->tls_on || t->mode == CONFIG_BACKEND_TLS_NONE)
		return 0;
	if (up->caps.flags & SMTP_CAP_STARTTLS) {
		up->state = UP_STARTTLS;
		up_write_line(up, "STARTTLS", up->b->conf->command_timeout_ms);
		return 1;
	}
	if (t->mode == CONFIG_BACKEND_TLS_MAY)
		return 0;
	log_warnx("backend=%s server=%s tls=%s reason=\"STARTTLS not offered\"",
	    up->b->conf->name, upstream_server_name(up),
	    t->mode == CONFIG_BACKEND_TLS_VERIFY ? "verify" : "encrypt");
	up_server_failed(up, UPSTREAM_CONNECT, "STARTTLS not offered", NULL);
	return 1;
}

static void
up_tls_replied(struct upstream *up, const struct smtp_reply *r)
{
	if (r->code == 220) {
		if (up_tls_start(up) == -1)
			up_server_failed(up, UPSTREAM_GARBAGE, "TLS could not start", NULL);
		return;
	}
	log_warnx("backend=%s server=%s STARTTLS refused code=%d text=\"%s\"",
	    up->b->conf->name, upstream_server_name(up), r->code, smtp_reply_text(r));
	if (up->b->conf->tls.mode != CONFIG_BACKEND_TLS_MAY) {
		up_server_failed(up, UPSTREAM_CONNECT, "STARTTLS refused", NULL);
		return;
	}
	/* may: the connection is still fine in clear, with the first EHLO's capabilities. */
	up->state = UP_EHLO;
	up_after_caps(up);
}

/* SNI and the name to verify: tls_server_name, else the host of the servers entry. */
static void
up_tls_name(const struct upstream *up, char *buf, size_t size)
{
	const char	*name = up->b->servers[up->server].name, *end;

	if (up->b->conf->tls.server_name != NULL) {
		snprintf(buf, size, "%s", up->b->conf->tls.server_name);
		return;
	}
	buf[0] = '\0';
	if (strncmp(name, "unix:", 5) == 0)
		return;
	if (name[0] == '[' && (end = strchr(name, ']')) != NULL)
		snprintf(buf, size, "%.*s", (int)(end - name - 1), name + 1);
	else if ((end = strrchr(name, ':')) != NULL)
		snprintf(buf, size, "%.*s", (int)(end - name), name);
	else
		snprintf(buf, size, "%s", name);
}

static int
up_tls_start(struct upstream *up)
{
	struct bufferevent	*tls;
	char			 name[256];
	SSL			*ssl;

	/* Bytes after the 220 were not protected by TLS: never read them as replies. */
	if (evbuffer_get_length(bufferevent_get_input(up->bev)) > 0)
		return -1;
	up_tls_name(up, name, sizeof(name));
	if ((ssl = tls_client_ssl_new(up->b->conf->tls.client, name)) == NULL)
		return -1;
	if ((tls = bufferevent_openssl_filter_new(up->w->base, up->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)) == NULL)
		fatalx("bufferevent_openssl_filter_new");
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	bufferevent_set_timeouts(up->bev, NULL, NULL);
	up->bev = tls;
	bufferevent_setcb(tls, up_read_cb, up_write_cb, up_event_cb, up);
	up->state = UP_TLS_HANDSHAKE;
	up_set_timeout(up, up->b->conf->connect_timeout_ms);
	bufferevent_enable(tls, EV_READ);
	return 0;
}

static void
up_tls_handshake_event(struct upstream *up, short events)
{
	char		 e[256];
	unsigned long	 err;

	if (events & BEV_EVENT_CONNECTED) {
		up_tls_established(up);
		return;
	}
	if (events & BEV_EVENT_TIMEOUT)
		snprintf(e, sizeof(e), "TLS handshake timeout");
	else if ((err = bufferevent_get_openssl_error(up->bev)) != 0) {
		snprintf(e, sizeof(e), "TLS handshake failed: ");
		ERR_error_string_n(err, e + strlen(e), sizeof(e) - strlen(e));
	} else
		snprintf(e, sizeof(e), "TLS handshake failed: connection closed");
	while (bufferevent_get_openssl_error(up->bev) != 0)
		;
	log_warnx("backend=%s server=%s tls failed reason=\"%s\"", up->b->conf->name,
	    upstream_server_name(up), e);
	up_server_failed(up, UPSTREAM_CONNECT, e, NULL);
}

static void
up_tls_established(struct upstream *up)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(up->bev);

	up->tls_on = 1;
	log_info("backend=%s server=%s tls established version=%s cipher=%s verified=%s",
	    up->b->conf->name, upstream_server_name(up), SSL_get_version(ssl),
	    SSL_get_cipher_name(ssl),
	    up->b->conf->tls.mode == CONFIG_BACKEND_TLS_VERIFY ? "yes" : "no");
	if (up->b->conf->tls.implicit) {
		up->state = UP_GREETING;
		return;
	}
	/* RFC 3207 4.2: forget the first EHLO; capabilities come from the second. */
	memset(&up->caps, 0, sizeof(up->caps));
	up->state = UP_EHLO;
	up_send_ehlo(up, up->b->conf->helo_name);
}

/* --- Commands and DATA ------------------------------------------------------ */

void
upstream_command(struct upstream *up, const char *line, upstream_cb cb, void *arg)
{
	up->cb = cb;
	up->arg = arg;
	if (up->state != UP_READY) {
		up->state = UP_FAILED;
		up_defer(up, UPSTREAM_IO);
		return;
	}
	up->state = UP_COMMAND;
	up->cmd_rset = strcasecmp(line, "RSET") == 0;
	if (strncasecmp(line, "MAIL ", 5) == 0)
		up->in_txn = 1;	/* until RSET or a final DATA reply; harmless if refused */
	up_write_line(up, line, up->b->conf->command_timeout_ms);
}

void
upstream_xforward(struct upstream *up, const struct upstream_identity *id, upstream_cb cb,
    void *arg)
{
	if (!up->uses_xforward) {
		cb(arg, up, UPSTREAM_OK, NULL);
		return;
	}
	up_copy_identity(up, id);
	up_identity_lines(up, 0);
	if (up->nlines == 0) {
		cb(arg, up, UPSTREAM_OK, NULL);
		return;
	}
	up->cb = cb;
	up->arg = arg;
	up->state = UP_XFORWARD;
	up_send_next_line(up);
}

void
upstream_data(struct upstream *up, struct message *msg, size_t nreplies, upstream_cb cb,
    void *arg)
{
	up->cb = cb;
	up->arg = arg;
	if (up->state != UP_READY || nreplies == 0) {
		up->state = UP_FAILED;
		up_defer(up, UPSTREAM_IO);
		return;
	}
	message_writer_init(&up->writer, msg, 0);
	up->replies_left = nreplies;
	up->state = UP_DATA_CMD;
	up_write_line(up, "DATA", up->b->conf->command_timeout_ms);
}

/*
 * Keep the output filled while the server reads, then the final dot.  A
 * message that fits the socket buffer goes out in this call; a larger one
 * continues from the write callback as the server drains it.
 */
static void
up_data_pump(struct upstream *up)
{
	struct evbuffer	*out = bufferevent_get_output(up->bev);
	int		 r;

	for (;;) {
		while (up->state == UP_DATA_BODY && evbuffer_get_length(out) < UP_DATA_HIGH) {
			if ((r = message_writer_next(&up->writer, out, UP_DATA_STEP)) == -1) {
				log_warn("backend=%s spool read failed", up->b->conf->name);
				up_fail(up, UPSTREAM_IO, NULL);
				return;
			}
			if (r == 0) {
				evbuffer_add(out, ".\r\n", 3);
				up->state = UP_DATA_FINAL;
				bufferevent_setwatermark(up->bev, EV_WRITE, 0, 0);
			}
		}
		if (io_write_now(up->bev) != 1 || up->state == UP_DATA_FINAL)
			return;
	}
}

static void
up_write_cb(struct bufferevent *bev, void *arg)
{
	struct upstream	*up = arg;

	if (up->state == UP_DATA_BODY) {
		up->depth++;
		up_data_pump(up);
		if (--up->depth == 0 && up->free_pending)
			up_really_free(up);
		return;
	}
	io_write_drained(bev);
}

/* --- Pool, release, free ------------------------------------------------------- */

void
upstream_pool_unlink(struct backend *b, struct worker *w, struct upstream *up)
{
	struct backend_pool	*pool = &b->pools[w->id];
	struct upstream		**pp;

	for (pp = &pool->idle; *pp != NULL; pp = &(*pp)->next)
		if (*pp == up) {
			*pp = up->next;
			up->next = NULL;
			pool->nidle--;
			return;
		}
}

void
upstream_release(struct upstream **upp)
{
	struct upstream		*up = *upp;
	struct backend_pool	*pool;

	if (up == NULL)
		return;
	*upp = NULL;
	if (up->state != UP_READY || up->free_pending || up->w->draining ||
	    monotonic_ms() - up->created_ms >= (uint64_t)up->b->conf->max_age_ms) {
		upstream_free(&up);
		return;
	}
	up->cb = NULL;
	up->arg = NULL;
	pool = &up->b->pools[up->w->id];
	up->next = pool->idle;
	pool->idle = up;
	pool->nidle++;
	if (up->in_txn) {
		up->state = UP_RESETTING;
		up_write_line(up, "RSET", up->b->conf->command_timeout_ms);
		return;
	}
	up->state = UP_IDLE;
	up_set_timeout(up, up->b->conf->idle_timeout_ms);
}

static void
up_really_free(struct upstream *up)
{
	size_t	 i;

	if (up->state == UP_IDLE || up->state == UP_RESETTING)
		upstream_pool_unlink(up->b, up->w, up);
	if (up->bev != NULL)
		bufferevent_free(up->bev);
	if (up->counted)
		backend_slot_release(up->b);
	event_free(up->defer);
	up_lines_free(up);
	for (i = 0; i < nitems(up->ident_strings); i++)
		free(up->ident_strings[i]);
	free(up);
}

void
upstream_free(struct upstream **upp)
{
	struct upstream	*up = *upp;

	if (up == NULL)
		return;
	*upp = NULL;
	up->cb = NULL;
	up->arg = NULL;
	event_del(up->defer);
	up_discard(up);
}
