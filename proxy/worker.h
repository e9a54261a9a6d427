/*
 * worker.h - event-loop threads.
 *
 * Each worker thread runs its own libevent event_base, owns the sessions
 * accepted on its listening sockets and everything they touch.  Other
 * threads talk to a worker only by posting a closure to its queue
 * (worker_post); the closure runs in the worker thread.  The main thread
 * has a worker object too (worker_main), so workers can post back to it.
 */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct listener_slot;
struct session;

/* The most event-loop threads; backends size their pool arrays by it. */
#define WORKERS_MAX	256

typedef void (*worker_fn)(void *arg);

struct worker_job;

/* Sessions by id, for resuming asynchronous work (open addressing). */
struct session_map {
	struct session	**slots;	/* NULL = empty, tombstone = (void *)1 */
	size_t		  size;		/* power of two */
	size_t		  used;		/* live entries */
	size_t		  filled;	/* live + tombstones */
};

struct worker {
	int		  id;		/* 0..n-1, -1 for the main thread */
	pthread_t	  thread;	/* the loop thread */
	struct event_base *base;	/* its loop */
	struct event	 *wake;		/* activated by worker_post */
	pthread_mutex_t	  lock;		/* guards queue */
	struct worker_job *queue_head;	/* posted closures, FIFO */
	struct worker_job *queue_tail;
	struct session_map sessions;	/* live sessions of this worker */
	struct listener_slot *listeners;/* listening sockets owned by this worker */
	unsigned char	 *linebuf;	/* scratch for one command line */
	size_t		  linebuf_size;	/* its size */
	int		  draining;	/* SIGTERM: refuse new work */
	uint64_t	  rng;		/* splitmix64 state for session ids */
};

/* Make libevent thread-aware; before the first event_base_new().  Once. */
void		 worker_threads_init(void);

/* Create the main worker for the calling thread's base.  Main thread, once. */
void		 worker_main_init(struct event_base *base);
struct worker	*worker_main(void);

/* Start n worker threads, each with its own base.  Main thread, once. */
void		 workers_start(int n);
/* Ask every loop to exit and join the threads.  Main thread. */
void		 workers_stop(void);
int		 worker_count(void);
struct worker	*worker_get(int id);
/* The worker whose thread is calling, NULL on other threads. */
struct worker	*worker_current(void);

/*
 * Run fn(arg) in w's thread, soon.  Thread-safe, never fails (dies on
 * memory exhaustion).  Closures run in the order posted.
 */
void		 worker_post(struct worker *w, worker_fn fn, void *arg);

/* Post fn(arg) to every worker thread. */
void		 workers_post_all(worker_fn fn, void *arg);

/*
 * A fresh 64-bit value from w's generator (splitmix64 seeded from
 * getrandom): session ids need to be unique and unguessable enough to
 * tell sessions apart in logs, not secret; one syscall saved per session.
 */
uint64_t	 worker_random(struct worker *w);

/* Session registry of the calling worker. */
void		 worker_session_add(struct worker *w, struct session *s, uint64_t id);
void		 worker_session_remove(struct worker *w, uint64_t id);
struct session	*worker_session_find(struct worker *w, uint64_t id);
size_t		 worker_session_count(const struct worker *w);
/* Call fn for every live session of w (fn may close the session). */
void		 worker_session_foreach(struct worker *w, void (*fn)(struct session *, void *),
		    void *arg);

#endif /* SLUICE_WORKER_H */
