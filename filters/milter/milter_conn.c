/*
 * milter_conn.c - a milter connection on a libevent loop (see
 * milter_conn.h): a socket bufferevent with deferred callbacks, the frame
 * reader, one timer.  Freeing is deferred while a callback runs, so the
 * owner may close the connection from any of its callbacks.
 */
#include "autoconf.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "milter_conn.h"

/* The write callback (drained) fires once output is at or below this. */
#define CONN_LOW_WATER	(64u * 1024u)

struct milter_conn {
	struct bufferevent		*bev;		/* the socket */
	struct event			*timer;		/* what the owner waits for */
	struct milter_reader		 reader;	/* frames from the milter */
	const struct milter_conn_cbs	*cbs;		/* owner's callbacks */
	void				*arg;		/* their argument */
	int				 connected;	/* connect completed */
	int				 depth;		/* callbacks running */
	int				 closing;	/* closed inside a callback */
	int				 failed;	/* failure reported */
	int				 tcp;		/* a TCP socket (not unix) */
};

static void	 conn_read_cb(struct bufferevent *, void *);
static void	 conn_write_cb(struct bufferevent *, void *);
static void	 conn_event_cb(struct bufferevent *, short, void *);
static void	 conn_timer_cb(evutil_socket_t, short, void *);
static void	 conn_fail(struct milter_conn *, const char *);
static void	 conn_leave(struct milter_conn *);
static void	 conn_free(struct milter_conn *);
static void	 conn_quickack(struct milter_conn *);

/*
 * connect() is ours, so a refusal seen at once (loopback, a missing unix
 * socket) is reported with its errno, synchronously; libevent only waits
 * for a connection in progress (its own immediate-refusal path loses the
 * errno).
 */
struct milter_conn *
milter_conn_open(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
    unsigned int timeout_ms, const struct milter_conn_cbs *cbs, void *arg, char *err,
    size_t errlen)
{
	struct milter_conn	*c;
	int			 fd, one = 1, r;

	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return NULL;
	}
	if (sa->sa_family != AF_UNIX)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while ((r = connect(fd, sa, salen)) == -1 && errno == EINTR)
		;
	if (r == -1 && errno != EINPROGRESS) {
		snprintf(err, errlen, "connect: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->timer = evtimer_new(base, conn_timer_cb, c)) == NULL ||
	    (c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS)) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		if (c != NULL)
			conn_free(c);
		return NULL;
	}
	c->cbs = cbs;
	c->arg = arg;
	c->tcp = sa->sa_family != AF_UNIX;
	milter_reader_init(&c->reader, 0);
	bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, CONN_LOW_WATER, 0);
	if (r == 0)
		/* Connected at once (unix sockets): say so from the loop. */
		bufferevent_trigger_event(c->bev, BEV_EVENT_CONNECTED, BEV_TRIG_DEFER_CALLBACKS);
	else if (bufferevent_socket_connect(c->bev, NULL, 0) == -1) {
		snprintf(err, errlen, "connect: cannot wait for the connection");
		conn_free(c);
		return NULL;
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	milter_conn_timer(c, timeout_ms);
	return c;
}

int
milter_conn_send(struct milter_conn *c, const void *data, size_t len)
{
	return bufferevent_write(c->bev, data, len);
}

size_t
milter_conn_output(const struct milter_conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void
milter_conn_timer(struct milter_conn *c, unsigned int ms)
{
	struct timeval	 tv;

	evtimer_del(c->timer);
	if (ms == 0)
		return;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
}

void
milter_conn_close(struct milter_conn *c, int quit)
{
	static const unsigned char	 q[5] = { 0, 0, 0, 1, MILTER_CMD_QUIT };
	evutil_socket_t			 fd = bufferevent_getfd(c->bev);

	/* Best effort, without waiting: libmilter copes with a plain close too. */
	if (quit && c->connected && !c->failed && milter_conn_output(c) == 0 && fd != -1)
		(void)send(fd, q, sizeof(q), MSG_NOSIGNAL | MSG_DONTWAIT);
	if (c->depth > 0) {
		c->closing = 1;
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		evtimer_del(c->timer);
		return;
	}
	conn_free(c);
}

static void
conn_free(struct milter_conn *c)
{
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	milter_reader_free(&c->reader);
	free(c);
}

/*
 * libmilter writes an answer of several frames (a header change, then
 * accept) in several writes without TCP_NODELAY, so its second frame waits
 * for our ACK of the first: acknowledge at once instead of the kernel's
 * delayed ACK (measured with opendkim: 44 ms per signed message without).
 */
static void
conn_quickack(struct milter_conn *c)
{
	int	 one = 1;

	if (c->tcp)
		(void)setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_QUICKACK, &one,
		    sizeof(one));
}

/* After a callback: free now if the owner closed during it. */
static void
conn_leave(struct milter_conn *c)
{
	if (--c->depth == 0 && c->closing)
		conn_free(c);
}

static void
conn_fail(struct milter_conn *c, const char *why)
{
	if (c->failed || c->closing)
		return;
	c->failed = 1;
	evtimer_del(c->timer);
	c->cbs->failed(c->arg, why);
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	struct milter_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct milter_frame	 f;
	const char		*why;
	unsigned char		*p;
	size_t			 n, used;
	int			 rc;

	c->depth++;
	conn_quickack(c);
	while (!c->closing && !c->failed && (n = evbuffer_get_contiguous_space(in)) > 0) {
		if ((p = evbuffer_pullup(in, (ev_ssize_t)n)) == NULL) {
			conn_fail(c, "out of memory");
			break;
		}
		rc = milter_reader_feed(&c->reader, p, n, &used, &f, &why);
		evbuffer_drain(in, used);
		if (rc == MILTER_READ_ERROR) {
			conn_fail(c, why);
			break;
		}
		if (rc == MILTER_READ_FRAME)
			c->cbs->frame(c->arg, &f);
	}
	if (c->failed || c->closing)
		evbuffer_drain(in, evbuffer_get_length(in));
	conn_leave(c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct milter_conn	*c = arg;

	c->depth++;
	if (!c->closing && !c->failed && c->cbs->drained != NULL)
		c->cbs->drained(c->arg);
	conn_leave(c);
}

static void
conn_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct milter_conn	*c = arg;
	char			 why[160];
	int			 err = EVUTIL_SOCKET_ERROR();

	c->depth++;
	if (events & BEV_EVENT_CONNECTED) {
		c->connected = 1;
		evtimer_del(c->timer);
		if (!c->closing)
			c->cbs->connected(c->arg);
	} else if (!c->connected) {
		snprintf(why, sizeof(why), "connect: %s", strerror(err != 0 ? err :
		    ECONNREFUSED));
		conn_fail(c, why);
	} else if (events & BEV_EVENT_EOF) {
		conn_fail(c, milter_reader_idle(&c->reader) ? "closed the connection" :
		    "closed the connection in the middle of a frame");
	} else {
		snprintf(why, sizeof(why), "connection error: %s", strerror(err != 0 ? err :
		    EIO));
		conn_fail(c, why);
	}
	conn_leave(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct milter_conn	*c = arg;

	c->depth++;
	if (!c->closing && !c->failed) {
		if (!c->connected)
			conn_fail(c, "connect: timed out");
		else
			c->cbs->timeout(c->arg);
	}
	conn_leave(c);
}
