/*
 * dns.h - the resolver: libunbound driven from the event loops.
 *
 * One resolver per configuration generation (its resolver section).  Each
 * worker gets its own unbound context on its own event_base, created the
 * first time the worker asks; answers are parsed from the wire packet so
 * NXDOMAIN, NODATA, SERVFAIL and our own per-query timeout are told apart.
 * Pool threads ask synchronously by posting the query to a worker and
 * waiting for its answer.
 */
#ifndef SLUICE_DNS_H
#define SLUICE_DNS_H

#include <stddef.h>

#include "sluice_filter.h"

struct config_resolver;
struct dns_resolver;
struct worker;

typedef void (*dns_cb)(void *arg, const struct sluice_dns_answer *answer);

/*
 * Check conf and build a resolver (no unbound context yet).  On a bad
 * setting (unreadable trust anchor, bad forwarder) returns NULL with
 * "file:line: sentence" in err.  Main thread.
 */
struct dns_resolver *dns_resolver_new(const struct config_resolver *conf, const char *file,
	    char *err, size_t errlen);
/* Delete w's unbound context; on w's thread (generation retire). */
void		 dns_resolver_worker_close(struct dns_resolver *r, struct worker *w);
/* Free; every worker's context must be closed, or the loops stopped. */
void		 dns_resolver_free(struct dns_resolver *r);

/*
 * Ask on w's loop (the calling thread must be w's).  cb runs once on w,
 * never inside this call, with the answer or a TIMEOUT/SERVFAIL/ERROR one.
 * Returns 0, or -1 for a name that cannot be asked (cb does not run).
 */
int		 dns_query(struct dns_resolver *r, struct worker *w, const char *name,
		    enum sluice_dns_type type, dns_cb cb, void *arg);

/*
 * Ask and wait: from a thread that is not an event loop (pool threads).
 * The query runs on the loop of the pool job's worker (or worker 0).
 * Never returns NULL; free with dns_answer_free.
 */
struct sluice_dns_answer *dns_lookup(struct dns_resolver *r, const char *name,
		    enum sluice_dns_type type);

/*
 * Parse a wire packet answering (name, type).  Pure (dns_parse.c, which
 * links without unbound or the event loops); for tests too.  Never
 * returns NULL.
 */
struct sluice_dns_answer *dns_answer_parse(const char *name, enum sluice_dns_type type,
		    const unsigned char *packet, size_t len);
/* An answer with no records and a status (and why, copied). */
struct sluice_dns_answer *dns_answer_status(const char *name, enum sluice_dns_type type,
		    enum sluice_dns_status status, const char *why);
/* A deep copy (for handing an answer to another thread); never NULL. */
struct sluice_dns_answer *dns_answer_dup(const struct sluice_dns_answer *a);
void		 dns_answer_free(struct sluice_dns_answer *a);
const char	*dns_status_name(enum sluice_dns_status status);

#endif /* SLUICE_DNS_H */
