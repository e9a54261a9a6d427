/*
 * milter_core.h - what the milter client needs from the daemon that the
 * public filter API (sluice_filter.h) does not give yet: the session's
 * event loop, the local host name and address for macros, the queue id
 * sluice writes in Received:, the ESMTP parameters of MAIL and RCPT, and
 * the instance's core timeout.  The module is built in, so this one file
 * reaches into proxy/ internals; nothing else in filters/milter/ does.
 * Each function says which public call would replace it.
 *
 * All take a ctx of a hook (or of a hook that is PENDING) and run on the
 * session's worker.  Returned strings belong to the session.
 */
#ifndef SLUICE_MILTER_CORE_H
#define SLUICE_MILTER_CORE_H

#include <stddef.h>

#include "sluice_filter.h"

struct event_base;

/* The session's worker loop (wanted: sluice_event_base(ctx)). */
struct event_base *milter_core_base(struct sluice_ctx *ctx);
/* Our host name as the listener announces it (wanted: sluice_local_hostname). */
const char	*milter_core_hostname(struct sluice_ctx *ctx);
/* The address and port the client connected to (wanted: sluice_local_address/port). */
const char	*milter_core_local_address(struct sluice_ctx *ctx, int *port);
/*
 * The transaction's id as in the Received: field, "<session id>.<n>";
 * 0, or -1 outside a transaction (wanted: sluice_queue_id).
 */
int		 milter_core_queue_id(struct sluice_ctx *ctx, char *buf, size_t size);
/*
 * ESMTP parameters of the MAIL command (during its hook or later in the
 * transaction) or of the RCPT being checked: " KEY=VALUE ..." or "" (wanted:
 * sluice_mail_params, sluice_rcpt_params).
 */
const char	*milter_core_mail_params(struct sluice_ctx *ctx);
const char	*milter_core_rcpt_params(struct sluice_ctx *ctx);
/* The instance's "timeout" in milliseconds, from init (wanted: sluice_filter_timeout). */
long long	 milter_core_filter_timeout(const struct sluice_filter *filter);
/* Whether the instance runs in observe mode, from init (wanted: sluice_filter_observe). */
int		 milter_core_filter_observe(const struct sluice_filter *filter);

#endif /* SLUICE_MILTER_CORE_H */
