/*
 * deliver.h - the relay scheduler ("queue manager"): takes committed
 * messages from the queue, groups their pending recipients by
 * destination (route, smart host or the recipient domain's MX), resolves
 * each destination (mx.h), delivers (deliver_smtp.h), records every
 * recipient's result in the message file before anything else happens to
 * it, retries temporary failures with exponential backoff, and sends one
 * DSN (dsn.h) for the failed recipients before removing the message.
 *
 * It runs on worker 0's event loop: the resolver keeps one unbound
 * context per worker thread and closes it when a generation retires, and
 * the delivery client's connection cache belongs to one loop.  Every
 * function here but deliver_tick (internal) is called from the main
 * thread, except deliver_notify, which any thread may call.
 */
#ifndef SLUICE_DELIVER_H
#define SLUICE_DELIVER_H

#include <stddef.h>
#include <stdint.h>

/* After the queue recovered and the workers started: scan and begin. */
void	 deliver_start(void);

/*
 * A message just committed to active/ (id copied): queue_committed_hook.
 * Any thread; dropped before deliver_start (its start-up scan finds the
 * file).
 */
void	 deliver_notify(const char *id);

/* SIGUSR2 / `sluice queue flush`: every deferred message is due now. */
void	 deliver_flush(void);

/* SIGUSR1: one log line with deliveries in flight and waiting. */
void	 deliver_status(void);

/* SIGTERM: start nothing new; running deliveries go on. */
void	 deliver_drain(void);
/* Messages open in delivery now (for the drain). */
long	 deliver_busy(void);
/* Drain timeout: cancel running deliveries (messages stay queued). */
void	 deliver_cancel(void);

/* Before workers_stop: cancel what runs, free everything, wait for it. */
void	 deliver_stop(void);

/*
 * The next retry delay in seconds after attempts (>= 1) attempts:
 * min * 2^(attempts - 1), at most max, jittered by rnd (0..1) within
 * -25%..+25% and kept within [min, max].  Pure; for tests too.
 */
int64_t	 deliver_backoff(unsigned int attempts, int64_t min_s, int64_t max_s, double rnd);

#endif /* SLUICE_DELIVER_H */
