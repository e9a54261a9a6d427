/*
 * pool.c - a fixed set of threads running blocking jobs; completions go
 * back to the submitting worker's queue.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "log.h"
#include "pool.h"
#include "util.h"
#include "worker.h"

struct pool_job {
	void		(*work)(void *);	/* runs on a pool thread */
	void		(*done)(void *);	/* runs on the worker */
	void		 *arg;			/* both's argument */
	struct worker	 *worker;		/* where done runs */
	struct pool_job	 *next;			/* FIFO link */
};

static void	*pool_thread(void *);

static pthread_mutex_t	 pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 pool_cond = PTHREAD_COND_INITIALIZER;
static struct pool_job	*pool_head, *pool_tail;
static pthread_t	*pool_threads;
static int		 pool_nthreads;
static int		 pool_stopping;
static _Thread_local struct worker *pool_job_owner;	/* job running on this thread */

static void *
pool_thread(void *unused)
{
	struct pool_job	*job;

	for (;;) {
		pthread_mutex_lock(&pool_lock);
		while (pool_head == NULL && !pool_stopping)
			pthread_cond_wait(&pool_cond, &pool_lock);
		if (pool_head == NULL) {
			pthread_mutex_unlock(&pool_lock);
			return NULL;
		}
		job = pool_head;
		if ((pool_head = job->next) == NULL)
			pool_tail = NULL;
		pthread_mutex_unlock(&pool_lock);
		pool_job_owner = job->worker;
		job->work(job->arg);
		pool_job_owner = NULL;
		worker_post(job->worker, job->done, job->arg);
		free(job);
	}
}

void
pool_start(int nthreads)
{
	sigset_t	 all, old;
	int		 i;

	pool_nthreads = nthreads;
	pool_threads = xcalloc((size_t)nthreads, sizeof(*pool_threads));
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < nthreads; i++)
		if ((errno = pthread_create(&pool_threads[i], NULL, pool_thread, NULL)) != 0)
			fatal("pthread_create");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
pool_stop(void)
{
	int	 i;

	pthread_mutex_lock(&pool_lock);
	pool_stopping = 1;
	pthread_cond_broadcast(&pool_cond);
	pthread_mutex_unlock(&pool_lock);
	for (i = 0; i < pool_nthreads; i++)
		pthread_join(pool_threads[i], NULL);
	free(pool_threads);
	pool_threads = NULL;
	pool_nthreads = 0;
}

void
pool_submit(struct worker *w, void (*work)(void *), void (*done)(void *), void *arg)
{
	struct pool_job	*job = xmalloc(sizeof(*job));

	job->work = work;
	job->done = done;
	job->arg = arg;
	job->worker = w;
	job->next = NULL;
	pthread_mutex_lock(&pool_lock);
	if (pool_tail != NULL)
		pool_tail->next = job;
	else
		pool_head = job;
	pool_tail = job;
	pthread_cond_signal(&pool_cond);
	pthread_mutex_unlock(&pool_lock);
}

struct worker *
pool_job_worker(void)
{
	return pool_job_owner;
}
