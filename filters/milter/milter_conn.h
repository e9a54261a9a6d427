/*
 * milter_conn.h - one connection to a milter on a libevent loop: connect
 * (unix or TCP, non-blocking), write frames, cut the milter's answers into
 * frames, one timer for whatever is awaited, and a notice when the output
 * has drained.  It knows frames, not their meaning (milter.c has that).
 *
 * Callbacks run from the loop, never inside a milter_conn_*() call
 * (bufferevents with deferred callbacks).  A callback may call
 * milter_conn_close() on its own connection; the memory goes once the
 * callback has returned.  After close no callback runs.
 */
#ifndef SLUICE_MILTER_CONN_H
#define SLUICE_MILTER_CONN_H

#include <stddef.h>
#include <sys/socket.h>

#include "milter_codec.h"

struct event_base;
struct milter_conn;

struct milter_conn_cbs {
	void	(*connected)(void *arg);			/* connect succeeded */
	void	(*frame)(void *arg, const struct milter_frame *f);	/* one frame read */
	void	(*failed)(void *arg, const char *why);		/* connect failed, EOF, error, bad frame */
	void	(*timeout)(void *arg);				/* the timer expired */
	void	(*drained)(void *arg);				/* output at or below the low mark */
};

/* Output above this is "not drained": the owner waits before writing more. */
#define MILTER_CONN_HIGH_WATER	(256u * 1024u)

/*
 * Connect to sa, with timeout_ms for the connection itself.  Returns the
 * connection, or NULL with a sentence in err when it failed at once.
 * cbs and arg must outlive the connection.
 */
struct milter_conn *milter_conn_open(struct event_base *base, const struct sockaddr *sa,
		    socklen_t salen, unsigned int timeout_ms, const struct milter_conn_cbs *cbs,
		    void *arg, char *err, size_t errlen);
/* Queue bytes (whole frames) for the milter.  0, or -1 when out of memory. */
int		 milter_conn_send(struct milter_conn *c, const void *data, size_t len);
/* Bytes queued and not yet written. */
size_t		 milter_conn_output(const struct milter_conn *c);
/* Start the timer for ms milliseconds (replacing a running one); 0 stops it. */
void		 milter_conn_timer(struct milter_conn *c, unsigned int ms);
/*
 * Close: with quit, a SMFIC_QUIT frame is written first if it can go out
 * at once (nothing else queued); then the socket is closed.  c is gone
 * for the caller.
 */
void		 milter_conn_close(struct milter_conn *c, int quit);

#endif /* SLUICE_MILTER_CONN_H */
