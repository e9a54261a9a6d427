/*
 * queue_commit.c - writing new messages into incoming/ and the committer
 * thread that makes them durable in groups.
 *
 * A writer creates incoming/ID (O_EXCL), writes the head with a
 * zero-padded body length, the body, the end line, then fills in the
 * length with pwrite.  queue_commit() hands the finished file to the
 * committer: it takes every file handed in so far (those that arrived
 * while the previous group was syncing: no timer, no fixed wait), syncs
 * their data (fdatasync each, or one syncfs for the group), renames each
 * into active/ and fsyncs active/ once, then calls each one's done.  A
 * message is thus in active/ only when complete and on disk; a crash at
 * any instant leaves it complete in active/ or (never acknowledged) in
 * incoming/, which recovery empties.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "util.h"

struct queue_writer {
	char			 id[QUEUE_ID_LEN + 1];	/* file name */
	int			 fd;		/* incoming/ID, -1 once closed */
	off_t			 length_at;	/* offset of the body length digits */
	off_t			 body_start;	/* offset of the body */
	off_t			 written;	/* bytes in the file */
	int			 err;		/* commit result */
	int			 renamed;	/* in active/ */
	void			(*done)(void *, int);	/* NULL: synchronous */
	void			*arg;		/* done's */
	struct queue_writer	*next;		/* committer list */
};

static void	*queue_committer(void *);
static void	 queue_commit_group(struct queue_writer *);

static pthread_mutex_t	 commit_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 commit_cond = PTHREAD_COND_INITIALIZER;
static struct queue_writer *commit_head, **commit_tail = &commit_head;
static pthread_t	 commit_thread;
static int		 commit_running, commit_stopping;

static int
queue_write_all(int fd, const void *data, size_t len)
{
	const char	*p = data;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

struct queue_writer *
queue_writer_begin(struct queue_envelope *env)
{
	struct queue_writer	*w = xcalloc(1, sizeof(*w));
	char			 path[PATH_MAX], *head;
	size_t			 len;
	int			 tries, saved;

	w->fd = -1;
	for (tries = 0; tries < 5 && w->fd == -1; tries++) {
		queue_id_new(env->id);
		if (queue_path(path, sizeof(path), QUEUE_INCOMING, env->id) == -1)
			break;
		w->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (w->fd == -1 && errno != EEXIST)
			break;
	}
	if (w->fd == -1) {
		saved = errno;
		free(w);
		errno = saved;
		return NULL;
	}
	memcpy(w->id, env->id, sizeof(w->id));
	env->body_length = 0;
	head = queue_file_format_head(env, &len);
	w->length_at = (off_t)(len - 1 - QUEUE_FILE_LENGTH_WIDTH);
	w->body_start = w->written = (off_t)len;
	if (queue_write_all(w->fd, head, len) == -1) {
		free(head);
		queue_writer_abort(w);
		return NULL;
	}
	free(head);
	return w;
}

int
queue_writer_write(struct queue_writer *w, const void *data, size_t len)
{
	if (queue_write_all(w->fd, data, len) == -1)
		return -1;
	w->written += (off_t)len;
	return 0;
}

int
queue_writer_finish(struct queue_writer *w)
{
	char	 digits[QUEUE_FILE_LENGTH_WIDTH + 1];

	snprintf(digits, sizeof(digits), "%0*lld", QUEUE_FILE_LENGTH_WIDTH,
	    (long long)(w->written - w->body_start));
	if (queue_write_all(w->fd, QUEUE_FILE_END, QUEUE_FILE_END_LEN) == -1 ||
	    pwrite(w->fd, digits, QUEUE_FILE_LENGTH_WIDTH, w->length_at) !=
	    QUEUE_FILE_LENGTH_WIDTH)
		return -1;
	return 0;
}

void
queue_writer_abort(struct queue_writer *w)
{
	char	 path[PATH_MAX];
	int	 saved = errno;

	if (w->fd != -1)
		close(w->fd);
	if (queue_path(path, sizeof(path), w->renamed ? QUEUE_ACTIVE : QUEUE_INCOMING,
	    w->id) == 0)
		(void)unlink(path);
	free(w);
	errno = saved;
}

/* --- Group commit ------------------------------------------------------------ */

/* Data of every file in the group on disk. */
static void
queue_commit_data(struct queue_writer *group)
{
	struct queue_writer	*w;
	uint64_t		 syncs = 0;
	int			 err = 0;

	if (queue_sync_mode() == QUEUE_SYNC_SYNCFS) {
		if (syncfs(group->fd) == -1)
			err = errno;
		syncs++;
		for (w = group; w != NULL; w = w->next)
			w->err = err;
	} else {
		/*
		 * Start writeback of every file first: their blocks are then
		 * allocated in one journal transaction, which the first
		 * fdatasync commits, and the others find little left to do.
		 */
		for (w = group; w != NULL && w->next != NULL; w = w->next)
			(void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		for (w = group; w != NULL; w = w->next, syncs++)
			w->err = fdatasync(w->fd) == -1 ? errno : 0;
	}
	queue_stats_add(0, 0, syncs);
}

/* Into active/, then one fsync of active/ for the group. */
static void
queue_commit_names(struct queue_writer *group)
{
	struct queue_writer	*w;
	char			 from[PATH_MAX], to[PATH_MAX];
	int			 any = 0, err;

	for (w = group; w != NULL; w = w->next) {
		if (w->err == 0 && close(w->fd) == -1)
			w->err = errno;
		else if (w->err != 0)
			close(w->fd);
		w->fd = -1;
		if (w->err != 0)
			continue;
		if (queue_path(from, sizeof(from), QUEUE_INCOMING, w->id) == -1 ||
		    queue_path(to, sizeof(to), QUEUE_ACTIVE, w->id) == -1 ||
		    rename(from, to) == -1)
			w->err = errno;
		else
			w->renamed = any = 1;
	}
	if (any && queue_fsync_state(QUEUE_ACTIVE) == -1) {
		/* Unknown whether on disk: never acknowledged, so remove. */
		err = errno;
		for (w = group; w != NULL; w = w->next)
			if (w->renamed)
				w->err = err;
	}
}

static void
queue_commit_group(struct queue_writer *group)
{
	struct queue_writer	*w, *next;
	uint64_t		 n = 0;

	queue_commit_data(group);
	queue_commit_names(group);
	for (w = group; w != NULL; w = next) {
		next = w->next;
		if (w->err != 0) {
			errno = w->err;
			log_warn("%s queue commit failed", w->id);
		} else
			n++;
		if (w->done != NULL)
			w->done(w->arg, w->err);
		if (w->err == 0 && queue_committed_hook != NULL)
			queue_committed_hook(w->id);
		if (w->done == NULL)
			continue;	/* synchronous: the caller frees */
		if (w->err != 0)
			queue_writer_abort(w);
		else
			free(w);
	}
	queue_stats_add(n, 1, 0);
}

static void *
queue_committer(void *unused)
{
	struct queue_writer	*group;

	for (;;) {
		pthread_mutex_lock(&commit_lock);
		while (commit_head == NULL && !commit_stopping)
			pthread_cond_wait(&commit_cond, &commit_lock);
		group = commit_head;
		commit_head = NULL;
		commit_tail = &commit_head;
		pthread_mutex_unlock(&commit_lock);
		if (group == NULL)
			return NULL;
		queue_commit_group(group);
	}
}

void
queue_commit(struct queue_writer *w, void (*done)(void *, int), void *arg)
{
	int	 err;

	w->done = done;
	w->arg = arg;
	w->next = NULL;
	pthread_mutex_lock(&commit_lock);
	if (commit_running && !commit_stopping) {
		*commit_tail = w;
		commit_tail = &w->next;
		pthread_cond_signal(&commit_cond);
		pthread_mutex_unlock(&commit_lock);
		return;
	}
	pthread_mutex_unlock(&commit_lock);
	err = queue_commit_now(w);
	done(arg, err);
}

int
queue_commit_now(struct queue_writer *w)
{
	int	 err;

	w->done = NULL;
	w->next = NULL;
	queue_commit_group(w);
	err = w->err;
	if (err != 0)
		queue_writer_abort(w);
	else
		free(w);
	return err;
}

void
queue_committer_start(void)
{
	sigset_t	 all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if ((errno = pthread_create(&commit_thread, NULL, queue_committer, NULL)) != 0)
		fatal("pthread_create");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	commit_running = 1;
}

void
queue_committer_stop(void)
{
	if (!commit_running)
		return;
	pthread_mutex_lock(&commit_lock);
	commit_stopping = 1;
	pthread_cond_signal(&commit_cond);
	pthread_mutex_unlock(&commit_lock);
	pthread_join(commit_thread, NULL);
	commit_running = 0;
	commit_stopping = 0;
}

int
queue_inject(struct queue_envelope *env, const void *body, size_t len)
{
	struct queue_writer	*w;
	int			 err;

	if ((w = queue_writer_begin(env)) == NULL)
		return -1;
	if (queue_writer_write(w, body, len) == -1 || queue_writer_finish(w) == -1) {
		queue_writer_abort(w);
		return -1;
	}
	if ((err = queue_commit_now(w)) != 0) {
		errno = err;
		return -1;
	}
	log_info("%s queue injected from=<%s> nrcpt=%zu size=%zu", env->id, env->sender,
	    env->nrcpts, len);
	return 0;
}
