/*
 * auth_dovecot.c - Dovecot's authentication client protocol (version 1.2,
 * as Postfix speaks it) over Dovecot's auth socket, on a worker's event
 * loop.  One connection per worker, opened when first needed, reused for
 * every request, and dropped on any error; the next request reconnects.
 *
 *	-> VERSION 1 2, CPID n
 *	<- VERSION 1 x, MECH ..., SPID, CUID, COOKIE, DONE
 *	-> AUTH id PLAIN service=smtp nologin lip= rip= [secured] resp=<base64>
 *	<- OK id ... | FAIL id ... [temp] | CONT id ...
 *
 * Every request has its own deadline (connect and handshake included).
 * Whatever the socket says, a request ends in exactly one callback, or
 * none when the connection is freed with the generation (its session is
 * gone by then).  See auth_backend.h.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "auth.h"
#include "auth_backend.h"
#include "log.h"
#include "util.h"
#include "worker.h"

/* Dovecot's lines are short; a longer one means we are not talking to it. */
#define DOVECOT_LINE_MAX	16384

struct dovecot_request {
	struct auth_dovecot	*d;		/* owner */
	unsigned int		 id;		/* AUTH id */
	uint64_t		 session_id;	/* for the callback */
	auth_backend_cb		 cb;
	char			*line;		/* the AUTH line, wiped; NULL once sent */
	struct event		*timer;		/* deadline */
	struct dovecot_request	*next;		/* list */
};

struct auth_dovecot {
	const struct config_auth *conf;		/* not owned */
	struct worker		*w;		/* our loop */
	struct bufferevent	*bev;		/* NULL when not connected */
	int			 ready;		/* handshake DONE received */
	int			 version_ok;	/* server VERSION 1.x seen */
	unsigned int		 next_id;	/* AUTH ids */
	struct dovecot_request	*requests;	/* pending, sent or not */
};

static void	 dovecot_connect(struct auth_dovecot *);
static void	 dovecot_drop(struct auth_dovecot *, const char *why);
static void	 dovecot_finish(struct dovecot_request *, enum auth_verdict);
static void	 dovecot_flush(struct auth_dovecot *);
static void	 dovecot_line(struct auth_dovecot *, char *);
static void	 dovecot_read_cb(struct bufferevent *, void *);
static void	 dovecot_event_cb(struct bufferevent *, short, void *);
static void	 dovecot_timer_cb(evutil_socket_t, short, void *);
static void	 dovecot_request_free(struct dovecot_request *);
static int	 dovecot_value_ok(const char *);

static atomic_uint	 dovecot_cpid_seq;

struct auth_dovecot *
auth_dovecot_new(const struct config_auth *conf, struct worker *w)
{
	struct auth_dovecot	*d = xcalloc(1, sizeof(*d));

	d->conf = conf;
	d->w = w;
	d->next_id = 1;
	return d;
}

static void
dovecot_request_free(struct dovecot_request *r)
{
	if (r->line != NULL) {
		explicit_bzero(r->line, strlen(r->line));
		free(r->line);
	}
	if (r->timer != NULL)
		event_free(r->timer);
	free(r);
}

void
auth_dovecot_free(struct auth_dovecot *d)
{
	struct dovecot_request	*r, *next;

	if (d == NULL)
		return;
	for (r = d->requests; r != NULL; r = next) {
		next = r->next;
		dovecot_request_free(r);
	}
	if (d->bev != NULL)
		bufferevent_free(d->bev);
	free(d);
}

/* Unlink r, answer it, free it. */
static void
dovecot_finish(struct dovecot_request *r, enum auth_verdict v)
{
	struct auth_dovecot	*d = r->d;
	struct dovecot_request	**pp;

	for (pp = &d->requests; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	r->cb(d->w, r->session_id, v);
	dovecot_request_free(r);
}

/* The connection is unusable: every pending request tempfails. */
static void
dovecot_drop(struct auth_dovecot *d, const char *why)
{
	log_warnx("auth backend=%s socket=%s: %s", d->conf->name, d->conf->socket, why);
	if (d->bev != NULL) {
		bufferevent_free(d->bev);
		d->bev = NULL;
	}
	d->ready = 0;
	d->version_ok = 0;
	while (d->requests != NULL)
		dovecot_finish(d->requests, AUTH_VERDICT_TEMPFAIL);
}

static void
dovecot_connect(struct auth_dovecot *d)
{
	struct sockaddr_un	 sun;
	unsigned int		 cpid;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(d->conf->socket) >= sizeof(sun.sun_path)) {
		dovecot_drop(d, "socket path too long");
		return;
	}
	memcpy(sun.sun_path, d->conf->socket, strlen(d->conf->socket));
	if ((d->bev = bufferevent_socket_new(d->w->base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		fatalx("bufferevent_socket_new");
	bufferevent_setcb(d->bev, dovecot_read_cb, NULL, dovecot_event_cb, d);
	bufferevent_setwatermark(d->bev, EV_READ, 0, DOVECOT_LINE_MAX * 4);
	if (bufferevent_socket_connect(d->bev, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		dovecot_drop(d, "connect failed");
		return;
	}
	/* Dovecot refuses a second connection with the same CPID: make it unique. */
	cpid = (unsigned int)(getpid() % 100000) * 10000 +
	    atomic_fetch_add(&dovecot_cpid_seq, 1) % 10000;
	evbuffer_add_printf(bufferevent_get_output(d->bev), "VERSION\t1\t2\nCPID\t%u\n", cpid);
	bufferevent_enable(d->bev, EV_READ | EV_WRITE);
}

/* Send the requests not sent yet. */
static void
dovecot_flush(struct auth_dovecot *d)
{
	struct dovecot_request	*r;

	for (r = d->requests; r != NULL; r = r->next) {
		if (r->line == NULL)
			continue;
		evbuffer_add(bufferevent_get_output(d->bev), r->line, strlen(r->line));
		explicit_bzero(r->line, strlen(r->line));
		free(r->line);
		r->line = NULL;
	}
}

static void
dovecot_reply(struct auth_dovecot *d, const char *verb, char *rest)
{
	struct dovecot_request	*r;
	char			*tab = strchr(rest, '\t');
	unsigned long		 id;
	enum auth_verdict	 v;

	if (tab != NULL)
		*tab = '\0';
	id = strtoul(rest, NULL, 10);
	for (r = d->requests; r != NULL && r->id != id; r = r->next)
		;
	if (r == NULL)
		return;		/* timed out already */
	if (strcmp(verb, "OK") == 0)
		v = AUTH_VERDICT_OK;
	else if (strcmp(verb, "FAIL") == 0)
		v = tab != NULL && (strstr(tab + 1, "\ttemp") != NULL ||
		    strncmp(tab + 1, "temp", 4) == 0) ? AUTH_VERDICT_TEMPFAIL : AUTH_VERDICT_FAIL;
	else	/* CONT: PLAIN is one step; a challenge means a confused server */
		v = AUTH_VERDICT_TEMPFAIL;
	dovecot_finish(r, v);
}

static void
dovecot_line(struct auth_dovecot *d, char *line)
{
	char	*tab = strchr(line, '\t');

	if (tab != NULL)
		*tab++ = '\0';
	if (strcmp(line, "VERSION") == 0) {
		d->version_ok = tab != NULL && strncmp(tab, "1\t", 2) == 0;
		if (!d->version_ok)
			dovecot_drop(d, "unsupported protocol version");
	} else if (strcmp(line, "DONE") == 0) {
		if (!d->version_ok) {
			dovecot_drop(d, "no VERSION before DONE");
			return;
		}
		d->ready = 1;
		dovecot_flush(d);
	} else if (d->ready && tab != NULL && (strcmp(line, "OK") == 0 ||
	    strcmp(line, "FAIL") == 0 || strcmp(line, "CONT") == 0))
		dovecot_reply(d, line, tab);
	/* MECH, SPID, CUID, COOKIE and anything newer: not needed. */
}

static void
dovecot_read_cb(struct bufferevent *bev, void *arg)
{
	struct auth_dovecot	*d = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	char			*line;
	size_t			 len;

	while (d->bev != NULL &&
	    (line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
		dovecot_line(d, line);
		free(line);
	}
	if (d->bev != NULL && evbuffer_get_length(in) > DOVECOT_LINE_MAX)
		dovecot_drop(d, "line too long");
}

static void
dovecot_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct auth_dovecot	*d = arg;
	char			 why[160];

	if (events & BEV_EVENT_CONNECTED)
		return;
	if (events & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "connection closed");
	else
		snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	dovecot_drop(d, why);
}

static void
dovecot_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct dovecot_request	*r = arg;
	struct auth_dovecot	*d = r->d;

	log_warnx("auth backend=%s socket=%s: no answer within %lldms", d->conf->name,
	    d->conf->socket, d->conf->timeout_ms);
	/* Still in the handshake: the server is not usable, start afresh next time. */
	if (!d->ready && d->bev != NULL) {
		bufferevent_free(d->bev);
		d->bev = NULL;
	}
	dovecot_finish(r, AUTH_VERDICT_TEMPFAIL);
}

/* Values go into a tab-separated line: no tab, LF, CR or NUL. */
static int
dovecot_value_ok(const char *v)
{
	return strpbrk(v, "\t\r\n") == NULL;
}

void
auth_dovecot_verify(struct auth_dovecot *d, const struct auth_request *rq, auth_backend_cb cb)
{
	struct dovecot_request	*r = xcalloc(1, sizeof(*r));
	size_t			 ulen = strlen(rq->user), plen = strlen(rq->pass);
	unsigned char		*msg = xmalloc(ulen + plen + 2);
	char			*b64 = xmalloc((ulen + plen + 4) / 3 * 4 + 8);
	struct timeval		 tv;

	r->d = d;
	r->id = d->next_id++;
	r->session_id = rq->session_id;
	r->cb = cb;
	/* PLAIN to Dovecot whatever the client used: "\0user\0pass". */
	msg[0] = '\0';
	memcpy(msg + 1, rq->user, ulen);
	msg[ulen + 1] = '\0';
	memcpy(msg + ulen + 2, rq->pass, plen);
	(void)auth_base64_encode(msg, ulen + plen + 2, b64, (ulen + plen + 4) / 3 * 4 + 8);
	xasprintf(&r->line, "AUTH\t%u\tPLAIN\tservice=smtp\tnologin\tlip=%s\trip=%s\t"
	    "lport=%d\trport=%d%s\tresp=%s\n", r->id,
	    dovecot_value_ok(rq->local_addr) ? rq->local_addr : "",
	    dovecot_value_ok(rq->client_addr) ? rq->client_addr : "", rq->local_port,
	    rq->client_port, rq->secured ? "\tsecured" : "", b64);
	explicit_bzero(msg, ulen + plen + 2);
	explicit_bzero(b64, strlen(b64));
	free(msg);
	free(b64);
	if ((r->timer = evtimer_new(d->w->base, dovecot_timer_cb, r)) == NULL)
		fatalx("evtimer_new");
	tv.tv_sec = d->conf->timeout_ms / 1000;
	tv.tv_usec = (d->conf->timeout_ms % 1000) * 1000;
	evtimer_add(r->timer, &tv);
	r->next = d->requests;
	d->requests = r;
	if (d->bev == NULL)
		dovecot_connect(d);
	else if (d->ready)
		dovecot_flush(d);
}
