/*
 * io.c - optimistic writes on socket bufferevents.  See io.h.
 */
#include "autoconf.h"

#include <errno.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "io.h"

int
io_write_now(struct bufferevent *bev)
{
	struct evbuffer	*out = bufferevent_get_output(bev);
	evutil_socket_t	 fd = bufferevent_getfd(bev);
	int		 n;

	if (evbuffer_get_length(out) == 0)
		return 1;
	/* Already waiting for writability: the bufferevent is on it. */
	if (bufferevent_get_enabled(bev) & EV_WRITE)
		return 0;
	/*
	 * A filter (TLS) must encode its output itself: its fd is the
	 * underlying socket's, and writing there would skip the encryption.
	 */
	if (bufferevent_get_underlying(bev) != NULL) {
		bufferevent_enable(bev, EV_WRITE);
		return 0;
	}
	if (fd < 0) {
		bufferevent_enable(bev, EV_WRITE);
		return 0;
	}
	/* A bufferevent freezes the start of its output; thaw it as it does. */
	evbuffer_unfreeze(out, 1);
	do
		n = evbuffer_write(out, fd);
	while (n > 0 && evbuffer_get_length(out) > 0);
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) == 0)
		return 1;
	bufferevent_enable(bev, EV_WRITE);
	return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR ? -1 : 0;
}

void
io_write_drained(struct bufferevent *bev)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);
}
