/*
 * pool.h - the blocking-work pool.
 *
 * A few threads run work that would stall an event loop (fsync, libraries
 * that only have blocking calls).  A job's completion runs on the worker
 * that submitted it, where it resumes its session by id (DESIGN.md).
 * The pool never touches sessions or bufferevents.
 */
#ifndef SLUICE_POOL_H
#define SLUICE_POOL_H

struct worker;

/* Start nthreads pool threads.  Main thread, once. */
void	 pool_start(int nthreads);
/* Finish queued jobs, then join the threads.  Main thread. */
void	 pool_stop(void);

/*
 * Run work(arg) on a pool thread, then done(arg) on w's loop thread.  Both
 * always run, so done may free arg.  Thread-safe.
 */
void	 pool_submit(struct worker *w, void (*work)(void *), void (*done)(void *), void *arg);

/* On a pool thread: the worker of the job it runs (NULL elsewhere). */
struct worker *pool_job_worker(void);

#endif /* SLUICE_POOL_H */
