/*
 * session.h - one SMTP client connection, from accept to close.
 *
 * A session lives on one worker and is touched only there.  It reads
 * command lines, runs them through the command table (smtp_cmd.c) and
 * writes replies in order; one command is processed at a time, the next
 * one waits in the input buffer (pipelining, RFC 2920).  Asynchronous work
 * (filter chain, upstream, pool jobs) finds the session again by its id.
 * Memory per session is bounded: the input buffer by a read watermark,
 * the message by the spool.
 */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "chain.h"
#include "connlimit.h"
#include "dataterm.h"
#include "smtp_reply.h"

struct bufferevent;
struct config_listener;
struct event;
struct evbuffer;
struct generation;
struct listener_gen;
struct message;
struct proxy_proto;
struct tls_conn;
struct upstream;
struct worker;

/* Session flags. */
#define SESSION_BUSY		0x0001	/* a command is being processed */
#define SESSION_CLOSING		0x0002	/* flush output, then free */
#define SESSION_IN_DATA		0x0004	/* reading the DATA section */
#define SESSION_SKIP_LINE	0x0008	/* discarding the rest of an overlong line */
#define SESSION_REFUSED		0x0010	/* connect refused: only QUIT/NOOP/RSET */
#define SESSION_ESMTP		0x0020	/* EHLO was used */
#define SESSION_DISCARD_ALL	0x0040	/* a filter said DISCARD at connect/helo */
#define SESSION_DRAINING	0x0080	/* SIGTERM: 421 at the next command */
#define SESSION_IN_AUTH		0x0100	/* lines are SASL responses (smtp_auth.c) */
#define SESSION_PREGREET	0x0200	/* greeting_delay running: any input is early talk */
#define SESSION_PROXY_WAIT	0x10000	/* reading the PROXY protocol header: nothing is sent */

/* One recipient accepted in the transaction. */
struct txn_rcpt {
	char		*mailbox;	/* as sent, without <> */
	char		*params;	/* ESMTP params forwarded upstream, "" if none */
	int		 added;		/* by a filter at end of message, not yet upstream */
};

/* One authentication result recorded by a filter (sluice_authres_add). */
struct txn_authres {
	char		*method;
	char		*result;
	char		*reason;	/* NULL if none */
	char		*props;		/* NULL if none */
};

/* Per-filter record of the transaction's outcome for the summary line. */
struct txn_verdict {
	unsigned char	 verdict;	/* worst enum sluice_verdict seen */
	unsigned char	 phase;		/* where */
};

enum txn_data_error {
	TXN_DATA_OK = 0,
	TXN_DATA_TOO_BIG,	/* over limits.message_size */
	TXN_DATA_BARE_EOL,	/* bare CR or LF in strict mode */
	TXN_DATA_SPOOL		/* the spool could not store it (data_errno) */
};

struct txn {
	unsigned int	 number;	/* 1, 2, ... within the session */
	uint64_t	 started_us;	/* MAIL accepted */
	char		*mail_from;	/* mailbox, "" for <> */
	char		*mail_params;	/* ESMTP params forwarded upstream */
	int		 smtputf8;	/* SMTPUTF8 given */
	struct txn_rcpt	*rcpts;		/* accepted recipients */
	size_t		 nrcpts;	/* how many */
	size_t		 rcpts_cap;	/* allocated */
	size_t		 rcpt_attempts;	/* RCPT commands seen */
	const char	*rcpt_current;	/* during the RCPT chain (points into cmd storage) */
	struct message	*msg;		/* DATA content, NULL before DATA */
	int		 discard;	/* a filter said DISCARD */
	int		 upstream_failed;/* the upstream connection was lost mid-transaction */
	char		*backend_reply;	/* last final reply from the backend, for the summary */
	enum txn_data_error data_error;	/* why the DATA content is unusable */
	int		 data_errno;	/* errno of a spool failure */
	size_t		 size;		/* message bytes (wire form) at end of data */
	struct txn_verdict *verdicts;	/* one per chain filter */
	struct txn_authres *authres;	/* results for Authentication-Results */
	size_t		 nauthres;
	int		 env_restart;	/* a filter removed a recipient or changed the sender */
	size_t		 env_next;	/* envelope replay: next recipient to send */
};

struct session_note {
	char			*key;	/* owned */
	char			*value;	/* owned */
	struct session_note	*next;	/* list */
};

struct session {
	uint64_t		 id;		/* random, logged first on every line */
	struct worker		*worker;	/* owner thread */
	struct generation	*gen;		/* pinned for the whole session */
	struct listener_gen	*lg;		/* our listener in gen */
	struct bufferevent	*bev;		/* client connection */
	struct event		*timer;		/* session / DATA total time limits */
	unsigned int		 flags;		/* SESSION_* */
	unsigned int		 errors;	/* protocol errors so far */
	unsigned int		 junk;		/* NOOP, RSET, ... since the last MAIL */
	char			 addr[INET6_ADDRSTRLEN];	/* client IP */
	int			 port;		/* client port */
	char			 local_addr[INET6_ADDRSTRLEN];	/* our IP */
	int			 local_port;	/* our port */
	struct sockaddr_storage	 peer;		/* client address, for limits */
	char			*helo;		/* HELO/EHLO argument */
	char			*hostname;	/* forward-confirmed reverse DNS name, or NULL */
	struct tls_conn		*tls;		/* TLS in use (STARTTLS or implicit), else NULL: tls.c */
	char			*auth_user;	/* identity proven by AUTH, else NULL: auth.c */
	char			*auth_mech;	/* its mechanism ("PLAIN", "LOGIN"), else NULL */
	void			*auth_state;	/* SASL exchange and failures (smtp_auth.c) */
	uint64_t		 started_us;	/* accept time */
	uint64_t		 data_started_ms;/* DATA 354 time */
	unsigned int		 ntxn;		/* transactions begun */
	struct txn		*txn;		/* current transaction or NULL */
	struct upstream		*up;		/* upstream connection while needed */
	struct sluice_ctx	*ctx;		/* one per chain filter */
	struct session_note	*notes;		/* filter notes */
	struct chain_run	 run;		/* chain run state */
	struct dataterm		 dt;		/* DATA scanner */
	void			*cmd;		/* current command's state while BUSY (smtp_cmd.c) */
	struct proxy_proto	*proxy;		/* header parser while SESSION_PROXY_WAIT, owned */
};

/*
 * Start a session for fd accepted on worker w for listener lg of gen.  The
 * caller passes in its generation reference and the connection count it
 * took (connlimit_take); the session gives both back when it ends.
 */
void		 session_accept(struct worker *w, int fd, const struct sockaddr *sa,
		    socklen_t salen, struct generation *gen, struct listener_gen *lg,
		    const struct connlimit_key *key);
/* Sessions alive in the process. */
long		 session_count(void);

uint64_t	 session_id(const struct session *s);
/* 1 once TLS protects the client connection (STARTTLS done, or implicit TLS). */
int		 session_tls_active(const struct session *s);
/*
 * The protocol name for XFORWARD PROTO and the Received field (RFC 3848):
 * "SMTP", "ESMTP", and with TLS and/or AUTH "ESMTPS", "ESMTPA", "ESMTPSA".
 * XCLIENT takes only SMTP or ESMTP (Postfix answers 501 to the others).
 */
const char	*session_protocol(const struct session *s);
/*
 * Greet the client (reverse lookup first if configured): the end of
 * session_start, or of the implicit TLS handshake (tls_session.c).
 */
void		 session_greet(struct session *s);

/* Queue a reply to the client (see smtp_reply_add). */
void		 session_reply(struct session *s, int code, const char *enhanced,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Relay a reply received from the backend. */
void		 session_relay(struct session *s, const struct smtp_reply *r,
		    const char *default_enhanced);
/* The client's output buffer, for building replies directly. */
struct evbuffer	*session_output(struct session *s);

/* A protocol error: count it, and close with 421 past the listener's limit. */
void		 session_error(struct session *s);

/*
 * The current command is finished: clear BUSY and process what the client
 * has pipelined meanwhile.  Safe to call from any callback on the worker.
 */
void		 session_command_done(struct session *s);

/* Send 421-style final reply (if code != 0), flush, then free. */
void		 session_close(struct session *s, int code, const char *enhanced,
		    const char *text);

/* Switch to DATA reading (after 354 was queued). */
void		 session_data_begin(struct session *s);

/* Transaction helpers (smtp_cmd.c uses them). */
struct txn	*session_txn_new(struct session *s);
/* End the transaction: summary line with result, reset hooks, free.  */
void		 session_txn_end(struct session *s, const char *result);

/*
 * Find the client's forward-confirmed host name (PTR, then A/AAAA of each
 * name must include the address), set s->hostname, then call done(s) on
 * the session's worker unless the session ended meanwhile.  rdns.c.
 */
void		 session_rdns(struct session *s, void (*done)(struct session *));

/* Log with the session id first. */
void		 session_log(struct session *s, int level, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));

/*
 * SIGTERM, posted to every worker: mark its sessions draining and close
 * the idle ones with 421; the others get 421 when their transaction ends.
 */
void		 session_drain_all(void *unused);
/* Drain timeout, posted to every worker: 421 and close every session. */
void		 session_kill_all(void *unused);

/*
 * After accept (and after the PROXY header on such listeners): the
 * connect log line, reverse lookup, connect hook, greeting.
 */
void		 session_start(struct session *s);
/* The per-IP connection count the session gives back at its end. */
struct connlimit_key *session_limit_key(struct session *s);

/*
 * PROXY protocol listeners (session_proxy.c).  session_proxy_trusted: 1 if
 * sa may open a connection on listener cl (proxy_trusted).
 * session_proxy_begin: 1 if the session must first read a header (then
 * it has started reading it), 0 for a plain session.  session_proxy_read
 * and session_proxy_event take the session's input and events while
 * SESSION_PROXY_WAIT is set.
 */
int		 session_proxy_trusted(const struct config_listener *cl,
		    const struct sockaddr *sa);
int		 session_proxy_begin(struct session *s);
void		 session_proxy_read(struct session *s);
void		 session_proxy_event(struct session *s, short events);

#endif /* SLUICE_SESSION_H */
