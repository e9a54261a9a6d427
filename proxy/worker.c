/*
 * worker.c - event-loop threads, their closure queues and session maps.
 */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "log.h"
#include "session.h"
#include "util.h"
#include "worker.h"

#define SESSION_TOMBSTONE	((struct session *)1)
#define LINEBUF_SIZE		(64 * 1024 + 8)

struct worker_job {
	worker_fn		 fn;	/* closure */
	void			*arg;	/* its argument */
	struct worker_job	*next;	/* FIFO link */
};

static void	 worker_wake_cb(evutil_socket_t, short, void *);
static void	*worker_thread(void *);
static void	 worker_init(struct worker *, int, struct event_base *);
static size_t	 session_map_probe(const struct session_map *, uint64_t);
static void	 session_map_grow(struct session_map *);

static struct worker	 main_worker;
static struct worker	*workers;
static int		 nworkers;
static __thread struct worker *current_worker;

static void
worker_init(struct worker *w, int id, struct event_base *base)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->base = base;
	if (pthread_mutex_init(&w->lock, NULL) != 0)
		fatalx("pthread_mutex_init");
	if ((w->wake = event_new(base, -1, 0, worker_wake_cb, w)) == NULL)
		fatalx("event_new");
	w->rng = random_u64();
	w->linebuf_size = LINEBUF_SIZE;
	w->linebuf = xmalloc(w->linebuf_size);
	w->sessions.size = 64;
	w->sessions.slots = xcalloc(w->sessions.size, sizeof(*w->sessions.slots));
}

void
worker_threads_init(void)
{
	/* Before any event_base exists: bases get locks and cross-thread wake-ups. */
	if (evthread_use_pthreads() != 0)
		fatalx("evthread_use_pthreads");
}

void
worker_main_init(struct event_base *base)
{
	worker_init(&main_worker, -1, base);
	main_worker.thread = pthread_self();
	current_worker = &main_worker;
}

struct worker *
worker_main(void)
{
	return &main_worker;
}

static void *
worker_thread(void *arg)
{
	struct worker	*w = arg;

	current_worker = w;
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

void
workers_start(int n)
{
	sigset_t	 all, old;
	int		 i;

	nworkers = n;
	workers = xcalloc((size_t)n, sizeof(*workers));
	/* Signals belong to the main loop: workers start with all blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < n; i++) {
		struct event_base	*base;

		if ((base = event_base_new()) == NULL)
			fatalx("event_base_new");
		worker_init(&workers[i], i, base);
		if ((errno = pthread_create(&workers[i].thread, NULL, worker_thread,
		    &workers[i])) != 0)
			fatal("pthread_create");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void
worker_exit_cb(void *arg)
{
	struct worker	*w = arg;

	event_base_loopexit(w->base, NULL);
}

void
workers_stop(void)
{
	int	 i;

	for (i = 0; i < nworkers; i++)
		worker_post(&workers[i], worker_exit_cb, &workers[i]);
	for (i = 0; i < nworkers; i++)
		pthread_join(workers[i].thread, NULL);
}

int
worker_count(void)
{
	return nworkers;
}

struct worker *
worker_get(int id)
{
	if (id < 0)
		return &main_worker;
	return id < nworkers ? &workers[id] : NULL;
}

struct worker *
worker_current(void)
{
	return current_worker;
}

void
worker_post(struct worker *w, worker_fn fn, void *arg)
{
	struct worker_job	*job = xmalloc(sizeof(*job));

	job->fn = fn;
	job->arg = arg;
	job->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->queue_tail != NULL)
		w->queue_tail->next = job;
	else
		w->queue_head = job;
	w->queue_tail = job;
	pthread_mutex_unlock(&w->lock);
	event_active(w->wake, EV_READ, 0);
}

void
workers_post_all(worker_fn fn, void *arg)
{
	int	 i;

	for (i = 0; i < nworkers; i++)
		worker_post(&workers[i], fn, arg);
}

/* Run every closure queued so far; ones posted meanwhile wake us again. */
static void
worker_wake_cb(evutil_socket_t fd, short events, void *arg)
{
	struct worker		*w = arg;
	struct worker_job	*job, *next;

	pthread_mutex_lock(&w->lock);
	job = w->queue_head;
	w->queue_head = w->queue_tail = NULL;
	pthread_mutex_unlock(&w->lock);
	for (; job != NULL; job = next) {
		next = job->next;
		job->fn(job->arg);
		free(job);
	}
}

/* --- Session map: open addressing with linear probing on the id. --------- */

static size_t
session_map_probe(const struct session_map *m, uint64_t id)
{
	size_t	 mask = m->size - 1;
	size_t	 i = (size_t)(id ^ (id >> 29)) & mask;
	size_t	 tomb = (size_t)-1;

	for (;;) {
		struct session	*s = m->slots[i];

		if (s == NULL)
			return tomb != (size_t)-1 ? tomb : i;
		if (s == SESSION_TOMBSTONE) {
			if (tomb == (size_t)-1)
				tomb = i;
		} else if (session_id(s) == id)
			return i;
		i = (i + 1) & mask;
	}
}

static void
session_map_grow(struct session_map *m)
{
	struct session	**old = m->slots;
	size_t		  oldsize = m->size, i;

	if (m->used * 2 >= m->size)
		m->size *= 2;
	m->slots = xcalloc(m->size, sizeof(*m->slots));
	m->filled = m->used;
	for (i = 0; i < oldsize; i++)
		if (old[i] != NULL && old[i] != SESSION_TOMBSTONE)
			m->slots[session_map_probe(m, session_id(old[i]))] = old[i];
	free(old);
}

void
worker_session_add(struct worker *w, struct session *s, uint64_t id)
{
	struct session_map	*m = &w->sessions;
	size_t			 i;

	if ((m->filled + 1) * 4 >= m->size * 3)
		session_map_grow(m);
	i = session_map_probe(m, id);
	if (m->slots[i] == NULL)
		m->filled++;
	m->slots[i] = s;
	m->used++;
}

void
worker_session_remove(struct worker *w, uint64_t id)
{
	struct session_map	*m = &w->sessions;
	size_t			 i = session_map_probe(m, id);

	if (m->slots[i] != NULL && m->slots[i] != SESSION_TOMBSTONE) {
		m->slots[i] = SESSION_TOMBSTONE;
		m->used--;
	}
}

struct session *
worker_session_find(struct worker *w, uint64_t id)
{
	struct session_map	*m = &w->sessions;
	size_t			 i = session_map_probe(m, id);

	if (m->slots[i] == NULL || m->slots[i] == SESSION_TOMBSTONE)
		return NULL;
	return m->slots[i];
}

size_t
worker_session_count(const struct worker *w)
{
	return w->sessions.used;
}

void
worker_session_foreach(struct worker *w, void (*fn)(struct session *, void *), void *arg)
{
	struct session_map	*m = &w->sessions;
	struct session		**copy;
	size_t			 i, n = 0;

	/* fn may remove sessions: walk a snapshot, re-checking each id. */
	copy = xcalloc(m->used + 1, sizeof(*copy));
	for (i = 0; i < m->size; i++)
		if (m->slots[i] != NULL && m->slots[i] != SESSION_TOMBSTONE)
			copy[n++] = m->slots[i];
	for (i = 0; i < n; i++) {
		uint64_t	 id = session_id(copy[i]);

		if (worker_session_find(w, id) == copy[i])
			fn(copy[i], arg);
	}
	free(copy);
}

uint64_t
worker_random(struct worker *w)
{
	uint64_t	 z = (w->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
