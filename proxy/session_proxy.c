/*
 * session_proxy.c - the PROXY protocol stage of a session on a listener
 * with proxy_protocol set: before anything else, read the load balancer's
 * header (bounded by proxy_timeout and PROXY_PROTO_V2_LEN_MAX), take the
 * real client's address from it, count it per IP, then start the session
 * as usual (connect line, reverse lookup, connect hook, greeting), so
 * every later stage sees the real client.
 *
 * Nothing is ever sent to the load balancer before the header: a bad
 * header or a timeout closes with a reset and a log line.  The bytes
 * after the header stay in the input buffer as the first SMTP input.
 * Sessions that sluice --explain and sluice-milter run over a socketpair
 * carry the client address themselves and skip this stage.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/net.h"
#include "config.h"
#include "connlimit.h"
#include "generation.h"
#include "log.h"
#include "proxy_proto.h"
#include "session.h"
#include "util.h"

static void	 session_proxy_abort(struct session *, const char *);
static void	 session_proxy_done(struct session *);
static void	 session_proxy_timeouts(struct session *, long long);

int
session_proxy_trusted(const struct config_listener *cl, const struct sockaddr *sa)
{
	char	 addr[INET6_ADDRSTRLEN];

	if (cl->proxy_protocol == CONFIG_PROXY_NO || cl->nproxy_trusted == 0)
		return 1;
	sockaddr_format(sa, addr, sizeof(addr), NULL);
	return filter_net_match(cl->proxy_trusted, cl->nproxy_trusted, addr);
}

/* A TCP connection on a proxy_protocol listener; not a socketpair session. */
static int
session_proxy_wanted(struct session *s)
{
	struct sockaddr_storage	 local;
	socklen_t		 len = sizeof(local);

	if (s->lg->conf->proxy_protocol == CONFIG_PROXY_NO)
		return 0;
	if (getsockname(bufferevent_getfd(s->bev), (struct sockaddr *)&local, &len) == -1)
		return 1;
	return local.ss_family == AF_INET || local.ss_family == AF_INET6;
}

int
session_proxy_begin(struct session *s)
{
	static const unsigned int versions[] = {
		[CONFIG_PROXY_V1] = PROXY_PROTO_V1,
		[CONFIG_PROXY_V2] = PROXY_PROTO_V2,
		[CONFIG_PROXY_ANY] = PROXY_PROTO_ANY,
	};

	if (!session_proxy_wanted(s))
		return 0;
	s->proxy = xcalloc(1, sizeof(*s->proxy));
	proxy_proto_init(s->proxy, versions[s->lg->conf->proxy_protocol]);
	s->flags |= SESSION_PROXY_WAIT;
	session_proxy_timeouts(s, s->lg->conf->proxy_timeout_ms);
	return 1;
}

static void
session_proxy_timeouts(struct session *s, long long ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* Feed what is buffered, taking only header bytes out of the buffer. */
void
session_proxy_read(struct session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer_iovec	 v[8];
	enum proxy_proto_status	 st = PROXY_PROTO_NEED_MORE;
	size_t			 used, total;
	int			 n, i;

	while (st == PROXY_PROTO_NEED_MORE && evbuffer_get_length(in) > 0) {
		n = evbuffer_peek(in, -1, NULL, v, 8);
		total = 0;
		for (i = 0; i < n && i < 8 && st == PROXY_PROTO_NEED_MORE; i++) {
			st = proxy_proto_feed(s->proxy, v[i].iov_base, v[i].iov_len, &used);
			total += used;
		}
		evbuffer_drain(in, total);
	}
	if (st == PROXY_PROTO_ERROR)
		session_proxy_abort(s, s->proxy->error);
	else if (st == PROXY_PROTO_DONE)
		session_proxy_done(s);
}

void
session_proxy_event(struct session *s, short events)
{
	if (events & BEV_EVENT_TIMEOUT)
		session_proxy_abort(s, "timeout");
	else if (events & BEV_EVENT_ERROR)
		session_proxy_abort(s, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		session_proxy_abort(s, "eof before the header");
}

/* Close with a reset and nothing sent: the load balancer logs the failure. */
static void
session_proxy_abort(struct session *s, const char *why)
{
	struct linger	 lin = { 1, 0 };
	char		 q[128];

	log_quote(q, sizeof(q), why, 100);
	session_log(s, LOG_LEVEL_INFO, "proxy error reason=%s proxy=%s:%d listener=%s",
	    q, s->addr, s->port, s->lg->conf->name);
	(void)setsockopt(bufferevent_getfd(s->bev), SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
	session_close(s, 0, NULL, NULL);
}

/* The client's and our address as the load balancer saw them. */
static void
session_proxy_addresses(struct session *s, const struct proxy_proto *pp)
{
	memset(&s->peer, 0, sizeof(s->peer));
	memcpy(&s->peer, &pp->src, pp->addrlen);
	sockaddr_format((const struct sockaddr *)&pp->src, s->addr, sizeof(s->addr), &s->port);
	sockaddr_format((const struct sockaddr *)&pp->dst, s->local_addr, sizeof(s->local_addr),
	    &s->local_port);
}

static void
session_proxy_done(struct session *s)
{
	const struct config_listener *l = s->lg->conf;
	char		 lb[INET6_ADDRSTRLEN], text[512];
	int		 lb_port = s->port;

	strlcpy_s(lb, s->addr, sizeof(lb));
	if (s->proxy->command == PROXY_PROTO_PROXY)
		session_proxy_addresses(s, s->proxy);
	session_log(s, LOG_LEVEL_INFO, "proxy version=%d command=%s client=%s port=%d "
	    "proxy=%s:%d bytes=%zu", s->proxy->version,
	    s->proxy->command == PROXY_PROTO_PROXY ? "proxy" : "local", s->addr, s->port,
	    lb, lb_port, s->proxy->length);
	s->flags &= ~SESSION_PROXY_WAIT;
	free(s->proxy);
	s->proxy = NULL;
	session_proxy_timeouts(s, l->limits.idle_timeout_ms);
	if (connlimit_take_ip(s->gen->cfg, (const struct sockaddr *)&s->peer,
	    session_limit_key(s)) != CONNLIMIT_OK) {
		session_log(s, LOG_LEVEL_INFO, "refuse client=%s listener=%s "
		    "reason=max_connections_per_ip", s->addr, l->name);
		snprintf(text, sizeof(text), "%s Error: too many connections from your address, "
		    "try again later", l->hostname);
		session_close(s, 421, "4.7.0", text);
		return;
	}
	session_start(s);
}
