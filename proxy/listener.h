/*
 * listener.h - listening sockets.
 *
 * The main thread binds every listen address once per worker (SO_REUSEPORT,
 * so the kernel spreads connections over the workers) and hands each
 * socket to its worker, which accepts on it.  Reload binds only the new
 * addresses, before the new generation is committed; addresses that
 * disappear are closed by their workers after the swap.  Accepting applies
 * the connection limits (421 and close when over) and backs off on EMFILE.
 */
#ifndef SLUICE_LISTENER_H
#define SLUICE_LISTENER_H

#include <stddef.h>
#include <sys/socket.h>

struct generation;

#define LISTENER_KEY_MAX	80

/* Canonical "192.0.2.1:25" / "[2001:db8::1]:25" for a listen address. */
void	 listener_key(const struct sockaddr *sa, char *buf, size_t size);

/* How many workers get a socket per address.  Before the first prepare. */
void	 listener_set_workers(int n);

/*
 * Bind the addresses of g that are not bound yet.  Returns 0, or -1 with a
 * sentence in err (and nothing left bound from this call).  Main thread.
 */
int	 listener_prepare(struct generation *g, char *err, size_t errlen);
/* Give new sockets to the workers, close addresses g does not have. */
void	 listener_commit(struct generation *g);
/* Close what listener_prepare bound for a generation that failed. */
void	 listener_abort(void);
/* Stop accepting everywhere (SIGTERM). */
void	 listener_close_all(void);
/* Number of addresses bound. */
size_t	 listener_count(void);

#endif /* SLUICE_LISTENER_H */
