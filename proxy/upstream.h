/*
 * upstream.h - the SMTP/LMTP client side: one connection to a backend
 * server, used by one session's transactions at a time, pooled between
 * sessions.
 *
 * Every operation is asynchronous and ends in exactly one callback with
 * either the peer's reply (err == UPSTREAM_OK) or an error.  After an
 * error the connection is unusable: the owner calls upstream_free().
 * Callbacks run on the owning worker's thread; the owner must not free the
 * upstream from inside a callback other than by upstream_free() as its last
 * action.
 */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "smtp_reply.h"

struct backend;
struct message;
struct worker;

enum upstream_error {
	UPSTREAM_OK = 0,	/* a reply arrived */
	UPSTREAM_CONNECT,	/* no server could be reached */
	UPSTREAM_TIMEOUT,	/* a reply did not come in time */
	UPSTREAM_CLOSED,	/* the server closed the connection */
	UPSTREAM_GARBAGE,	/* the server's bytes are not SMTP replies */
	UPSTREAM_LIMIT,		/* the backend's connection cap is reached */
	UPSTREAM_IO,		/* a local error (spool read, socket) */
	UPSTREAM_DATA_REFUSED	/* upstream_data: reply is the server's refusal of DATA itself */
};

/* Who the client is, for XCLIENT / XFORWARD. */
struct upstream_identity {
	const char	*addr;		/* client IP ("192.0.2.7", "2001:db8::1") */
	int		 port;		/* client port */
	const char	*name;		/* verified rDNS or NULL */
	const char	*helo;		/* HELO/EHLO argument or NULL */
	const char	*proto;		/* "SMTP" or "ESMTP" */
	const char	*login;		/* authenticated user or NULL */
	const char	*dest_addr;	/* our address the client connected to */
	int		 dest_port;	/* and port */
	uint64_t	 session_id;	/* identity is re-sent when this changes */
};

struct upstream;

typedef void (*upstream_cb)(void *arg, struct upstream *up, enum upstream_error err,
		    const struct smtp_reply *reply);

/*
 * Get a connection to b for identity: an idle one from this worker's
 * pool, or a new one (servers tried in health order; greeting, EHLO/LHLO,
 * then XCLIENT + EHLO again, per the backend's identity setting).  The
 * upstream is returned at once and owned by the caller from then on; cb
 * runs later, never inside this call, with UPSTREAM_OK and reply NULL when
 * it is ready, or with an error (reply, when not NULL, is the server's
 * refusal) after which the caller frees it.  identity is copied.
 */
struct upstream *upstream_acquire(struct backend *b, struct worker *w,
	    const struct upstream_identity *id, upstream_cb cb, void *arg);

/* 1 while a MAIL was accepted and no final DATA reply or RSET ended it. */
int	 upstream_in_txn(const struct upstream *up);

/*
 * Send one command line (without CRLF; the caller checked it) and wait
 * for its reply, within the backend's command timeout.
 */
void	 upstream_command(struct upstream *up, const char *line, upstream_cb cb, void *arg);

/*
 * Send XFORWARD for identity if this connection uses XFORWARD (one or more
 * lines, each answered 250); cb gets the last reply.  Without XFORWARD, cb
 * runs before this returns with UPSTREAM_OK and reply NULL.
 */
void	 upstream_xforward(struct upstream *up, const struct upstream_identity *id,
	    upstream_cb cb, void *arg);

/*
 * DATA: send "DATA", expect 354, stream msg (its writer, with back-pressure),
 * then ".", and collect nreplies final replies (1 for SMTP, one per accepted
 * recipient for LMTP).  cb runs once per final reply, in order; the caller
 * counts them.  A refusal of DATA itself (err UPSTREAM_DATA_REFUSED, reply
 * set; the server's transaction stays open), or an error at any point,
 * calls cb once, and no more calls follow.
 */
void	 upstream_data(struct upstream *up, struct message *msg, size_t nreplies,
	    upstream_cb cb, void *arg);

/* The capabilities the server announced (after the last EHLO/LHLO). */
const struct smtp_caps *upstream_caps(const struct upstream *up);
/* "127.0.0.1:10025" of the connected server. */
const char *upstream_server_name(const struct upstream *up);
int	 upstream_is_lmtp(const struct upstream *up);

/*
 * Give the connection back after a transaction: if reusable and young
 * enough it is reset (RSET) and pooled on its worker, else closed.
 * Clears *upp.
 */
void	 upstream_release(struct upstream **upp);
/* Close now (after an error, or when the session dies).  Clears *upp. */
void	 upstream_free(struct upstream **upp);

/* Take up out of its worker's idle pool (backend.c closing pools). */
void	 upstream_pool_unlink(struct backend *b, struct worker *w, struct upstream *up);

/* Short text for an error, for logs. */
const char *upstream_error_text(enum upstream_error err);

#endif /* SLUICE_UPSTREAM_H */
