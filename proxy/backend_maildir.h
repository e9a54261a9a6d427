/*
 * backend_maildir.h - the embedded backend: each accepted message is
 * written into a Maildir (tmp/, fsync, link into new/, fsync new/), in the
 * blocking-work pool, so sluice is useful with no MTA behind it.
 */
#ifndef SLUICE_BACKEND_MAILDIR_H
#define SLUICE_BACKEND_MAILDIR_H

struct session;

/*
 * Deliver the session's current message (its ownership moves to the job).
 * done runs on the session's worker with err 0 and the file's base name,
 * or an errno; it is not called when the session ended meanwhile.
 */
void	 backend_maildir_deliver(struct session *s,
	    void (*done)(struct session *s, int err, const char *name));

/*
 * Create dir/{tmp,new,cur} when missing (as the user sluice runs as; the
 * first delivery does it).  0, or -1 with errno.
 */
int	 backend_maildir_prepare(const char *dir);

#endif /* SLUICE_BACKEND_MAILDIR_H */
