/*
 * deliver_smtp.h - the relay-mode SMTP client: delivers ONE message to
 * ONE destination (one recipient-domain batch) over SMTP, on one event
 * loop, trying the candidate hosts and addresses in order, with
 * per-recipient results and connection reuse per destination.
 *
 * Ownership: the caller owns the job description (struct deliver_smtp_job
 * and everything it points to: strings, recipients, hosts, the body fd)
 * and keeps it alive and unchanged until the done callback has run or
 * deliver_smtp_cancel() returned.  deliver_smtp writes only the result
 * members of the recipients and the summary.  The done callback runs
 * exactly once, from the loop (never inside deliver_smtp_start()), and
 * the handle is invalid once it has returned.
 *
 * Connections are kept in a deliver_smtp_cache: one per event loop (one
 * per worker), not thread-safe, touched only from that loop's thread.
 *
 * The pure parts (reply classification, MAIL/RCPT parameters, capability
 * checks, loop detection) are in deliver_smtp_proto.h.
 */
#ifndef SLUICE_DELIVER_SMTP_H
#define SLUICE_DELIVER_SMTP_H

#include <sys/socket.h>
#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include "deliver_smtp_proto.h"

struct bufferevent;
struct event_base;

/*
 * One candidate host with its addresses (each sockaddr has its port set).
 * The minimal form of mx.h's host entry; the scheduler copies an
 * mx_result's hosts into these (or the lead unifies the two).
 */
struct deliver_smtp_host {
	const char			*name;		/* "mx1.example.org", for logs and replies */
	const struct sockaddr_storage	*addrs;		/* in the order to try */
	size_t				 naddrs;	/* entries in addrs */
};

/*
 * Opportunistic STARTTLS seam (the TLS work fills it).  Called after the
 * remote's 220 to STARTTLS with the plain connection; returns the TLS
 * bufferevent that replaces it (it takes plain over, BEV_OPT_CLOSE_ON_FREE),
 * or NULL to give up on this address (temporary failure, next address).
 * Only used when set and the remote offers STARTTLS.
 */
typedef struct bufferevent *(*deliver_smtp_tls_fn)(void *tls_arg,
	    struct bufferevent *plain, const char *host_name);

/* Settings shared by every job of a cache.  Copied by deliver_smtp_cache_new(). */
struct deliver_smtp_config {
	const char	*helo_name;		/* our EHLO name, also our name for loop detection */
	long long	 connect_timeout_ms;	/* TCP connect: 30 s */
	long long	 greeting_timeout_ms;	/* 220: 5 min */
	long long	 command_timeout_ms;	/* EHLO, MAIL, RCPT, RSET, QUIT: 5 min */
	long long	 data_timeout_ms;	/* 354 to DATA: 2 min */
	long long	 body_timeout_ms;	/* each write of the body: 3 min */
	long long	 final_timeout_ms;	/* reply to the final dot: 10 min */
	long long	 reuse_idle_ms;		/* keep an idle connection: 2 s, 0 = no reuse */
	int		 reuse_max;		/* deliveries per connection: 100 */
	int		 reuse_max_idle;	/* idle connections kept per cache: 32 */
	deliver_smtp_tls_fn tls_fn;		/* NULL: no STARTTLS (placeholder) */
	void		*tls_arg;		/* for tls_fn */
};

/* The defaults above (helo_name NULL: the caller sets it). */
void	 deliver_smtp_config_defaults(struct deliver_smtp_config *cfg);

/* What happened, for the log line and the scheduler. */
struct deliver_smtp_summary {
	char		 relay[320];	/* "mx1.example.org[192.0.2.1]:25", "" if none reached */
	int		 reused;	/* the delivery ran on a cached connection */
	int		 dup_risk;	/* lost after the body went out: may be delivered twice */
	int		 connects;	/* connection attempts made */
	uint64_t	 elapsed_ms;	/* from start to callback */
};

struct deliver_smtp_job {
	const char		*queue_id;	/* for every log line */
	const char		*destination;	/* reuse key ("example.org", "[relay]:25"); NULL: no reuse */
	const char		*domain;	/* recipient domain, for "mail for DOMAIN loops back" */
	struct deliver_smtp_envelope env;	/* sender, params, recipients (results written) */
	int			 body_fd;	/* wire-form body: dot-stuffed, CRLF, no final dot */
	off_t			 body_offset;	/* where it starts in body_fd */
	size_t			 body_len;	/* its length */
	const struct deliver_smtp_host *hosts;	/* candidates in order */
	size_t			 nhosts;	/* entries */
	struct deliver_smtp_summary summary;	/* written before the callback */
};

struct deliver_smtp;
struct deliver_smtp_cache;

/* Runs once per job; job's recipients all have a result. */
typedef void (*deliver_smtp_done_fn)(void *arg, struct deliver_smtp_job *job);

/* A connection cache for base; cfg (and helo_name) copied. */
struct deliver_smtp_cache *deliver_smtp_cache_new(struct event_base *base,
	    const struct deliver_smtp_config *cfg);
/* Close every cached connection (QUIT, no wait) and free.  No job may run.  Clears *cachep. */
void	 deliver_smtp_cache_free(struct deliver_smtp_cache **cachep);
/* Idle connections held now (for tests and status). */
size_t	 deliver_smtp_cache_idle(const struct deliver_smtp_cache *cache);

/*
 * Start delivering job.  Returns the handle (for cancel); done(arg, job)
 * follows later.  Recipients already holding a final result
 * (result.klass != DELIVER_PENDING) are not sent.
 */
struct deliver_smtp *deliver_smtp_start(struct deliver_smtp_cache *cache,
	    struct deliver_smtp_job *job, deliver_smtp_done_fn done, void *arg);

/*
 * Stop a running job (shutdown): the connection is closed, no callback
 * follows, results are left as they are.  Clears *dp.
 */
void	 deliver_smtp_cancel(struct deliver_smtp **dp);

#endif /* SLUICE_DELIVER_SMTP_H */
