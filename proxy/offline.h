/*
 * offline.h - the session machinery without listeners, for the programs
 * that feed the real session code over a socketpair: `sluice --explain`
 * (explain.c) and `sluice-milter` (milter_front.c).
 *
 * The calling thread becomes sluice's main thread (generation frees are
 * posted to it); the listener chosen is given a stand-in backend that
 * keeps nothing and hands the final message to offline_deliver_hook.
 */
#ifndef SLUICE_OFFLINE_H
#define SLUICE_OFFLINE_H

#include <sys/types.h>
#include <sys/socket.h>

struct event_base;
struct generation;
struct listener_gen;
struct message;
struct session;

/*
 * The stand-in backend's delivery, on the session's worker thread: 0 and
 * the client hears 250, -1 and it hears 451.  Set before offline_start().
 */
typedef int	 (*offline_deliver_fn)(struct session *s, struct message *msg);
extern offline_deliver_fn offline_deliver_hook;

/* Called by smtp_data.c for the stand-in backend: the hook's answer. */
int		 offline_deliver(struct session *s, struct message *msg);

/* The listener of g called name, the first when name is NULL; or NULL. */
struct listener_gen *offline_listener(struct generation *g, const char *name);
/* Give lg the stand-in backend; received: 0 turns its Received field off. */
void		 offline_standin(struct generation *g, struct listener_gen *lg, int received);
/* ip ("192.0.2.1", "2001:db8::1") and port into ss; -1 if ip is not one. */
int		 offline_address(const char *ip, int port, struct sockaddr_storage *ss,
		    socklen_t *len);

/*
 * Start logging at g's level, the pool, nworkers worker threads and a
 * main event base owned by the calling thread; g becomes current (the
 * caller's reference is taken over).  offline_stop() undoes all of it,
 * on the same thread, after the last session was started.
 */
void		 offline_start(struct generation *g, int nworkers);
struct event_base *offline_base(void);
void		 offline_stop(void);

/*
 * A session on a worker for listener lg of g, whose reference the call
 * takes over, as if a client at sa had connected.  Returns the client's
 * end of the socketpair (caller closes), or -1 with errno.  *peer, when
 * not NULL, is the session's end: its number identifies the session to
 * the deliver hook (bufferevent_getfd) for as long as the session lives.
 */
int		 offline_session(struct generation *g, struct listener_gen *lg,
		    const struct sockaddr *sa, socklen_t salen, int *peer);

#endif /* SLUICE_OFFLINE_H */
