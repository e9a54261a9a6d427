/*
 * queue_accept.h - relay-mode acceptance: the end of DATA of a relay-mode
 * listener puts the message into the relay queue, and the client hears
 * 250 only once the committer has it on disk (invariant 1).
 */
#ifndef SLUICE_QUEUE_ACCEPT_H
#define SLUICE_QUEUE_ACCEPT_H

struct backend;
struct session;

/*
 * Queue the session's current message (its ownership moves to the job):
 * written in the pool, made durable by the committer.  done runs on the
 * session's worker with err 0 and the queue id, or an errno (nothing was
 * kept); it is not called when the session ended meanwhile.
 */
void	 queue_accept_message(struct session *s,
	    void (*done)(struct session *s, int err, const char *id));

/* The stand-in backend of relay-mode listeners (type CONFIG_BACKEND_RELAY). */
struct backend *queue_accept_backend(void);

#endif /* SLUICE_QUEUE_ACCEPT_H */
