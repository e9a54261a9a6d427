/*
 * queue_accept.c - relay-mode acceptance: at the end of DATA the message
 * (the Received field and filter header changes applied by the same
 * message writer the forward path uses, then the spooled wire bytes) is
 * written into incoming/ by a pool thread, handed to the committer
 * (queue_commit.c), and the session is resumed by id on its worker once
 * file and folder are on disk.  A write error removes the partial file;
 * the client then hears 452 or 451, never 250.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "backend.h"
#include "generation.h"
#include "listener.h"
#include "log.h"
#include "message.h"
#include "pool.h"
#include "queue.h"
#include "queue_accept.h"
#include "session.h"
#include "util.h"
#include "worker.h"

#define QUEUE_ACCEPT_CHUNK	(256 * 1024)

struct queue_accept_job {
	uint64_t		 session_id;	/* whom to answer */
	struct worker		*worker;	/* where */
	struct message		*msg;		/* owned */
	struct queue_envelope	 env;		/* owned; id set by the writer */
	off_t			 size;		/* bytes queued */
	int			 err;		/* result */
	void			(*done)(struct session *, int, const char *);
};

static void	 queue_accept_done(void *);

static struct config_backend	 queue_relay_conf;
static struct backend		 queue_relay_backend;

struct backend *
queue_accept_backend(void)
{
	queue_relay_conf.name = "relay-queue";
	queue_relay_conf.type = CONFIG_BACKEND_RELAY;
	queue_relay_backend.conf = &queue_relay_conf;
	return &queue_relay_backend;
}

/* The message writer's output into the queue file. */
static int
queue_accept_write(struct queue_accept_job *j, struct queue_writer *w, unsigned char *chunk)
{
	struct message_writer	 mw;
	struct evbuffer		*buf = evbuffer_new();
	int			 r, n;

	message_writer_init(&mw, j->msg, 0);
	do {
		if ((r = message_writer_next(&mw, buf, QUEUE_ACCEPT_CHUNK)) == -1)
			break;
		while ((n = evbuffer_remove(buf, chunk, QUEUE_ACCEPT_CHUNK)) > 0) {
			if (queue_writer_write(w, chunk, (size_t)n) == -1) {
				r = -1;
				break;
			}
			j->size += n;
		}
	} while (r == 1);
	evbuffer_free(buf);
	return r;
}

static void
queue_accept_committed(void *arg, int err)
{
	struct queue_accept_job	*j = arg;

	j->err = err;
	worker_post(j->worker, queue_accept_done, j);
}

static void
queue_accept_work(void *arg)
{
	struct queue_accept_job	*j = arg;
	struct queue_writer	*w;
	unsigned char		*chunk;

	if ((w = queue_writer_begin(&j->env)) == NULL) {
		queue_accept_committed(j, errno != 0 ? errno : EIO);
		return;
	}
	chunk = xmalloc(QUEUE_ACCEPT_CHUNK);
	if (queue_accept_write(j, w, chunk) == -1 || queue_writer_finish(w) == -1) {
		int	 err = errno != 0 ? errno : EIO;

		free(chunk);
		queue_writer_abort(w);
		queue_accept_committed(j, err);
		return;
	}
	free(chunk);
	queue_commit(w, queue_accept_committed, j);
}

/* The pool's completion: the committer answers instead (see above). */
static void
queue_accept_pool_done(void *arg)
{
}

static void
queue_accept_done(void *arg)
{
	struct queue_accept_job	*j = arg;
	struct session		*s = worker_session_find(j->worker, j->session_id);

	if (j->err != 0) {
		errno = j->err;
		log_warn("%016llx queue write failed queue_id=%s",
		    (unsigned long long)j->session_id, j->env.id);
	} else
		log_session(j->session_id, LOG_LEVEL_INFO, "queued queue_id=%s from=<%s> "
		    "nrcpt=%zu size=%lld", j->env.id, j->env.sender, j->env.nrcpts,
		    (long long)j->size);
	if (s != NULL)
		j->done(s, j->err, j->env.id);
	else if (j->err == 0)
		log_session(j->session_id, LOG_LEVEL_WARNING, "client left before the reply; "
		    "it may send this message again queue_id=%s", j->env.id);
	message_free(j->msg);
	queue_envelope_clear(&j->env);
	free(j);
}

static void
queue_accept_envelope(struct session *s, struct queue_envelope *env)
{
	struct txn	*t = s->txn;
	size_t		 i;

	env->arrival = (int64_t)time(NULL);
	env->next_attempt = env->arrival;
	env->sender = xstrdup(t->mail_from);
	env->mail_params = xstrdup(t->mail_params != NULL ? t->mail_params : "");
	env->client_addr = xstrdup(s->addr);
	env->client_name = xstrdup(s->hostname != NULL ? s->hostname : "");
	env->client_helo = xstrdup(s->helo != NULL ? s->helo : "");
	env->received_by = xstrdup(s->lg->conf->hostname);
	env->nrcpts = t->nrcpts;
	env->rcpts = xcalloc(t->nrcpts, sizeof(*env->rcpts));
	for (i = 0; i < t->nrcpts; i++) {
		env->rcpts[i].mailbox = xstrdup(t->rcpts[i].mailbox);
		env->rcpts[i].params = xstrdup(t->rcpts[i].params != NULL ?
		    t->rcpts[i].params : "");
	}
}

void
queue_accept_message(struct session *s, void (*done)(struct session *, int, const char *))
{
	struct queue_accept_job	*j = xcalloc(1, sizeof(*j));

	j->session_id = s->id;
	j->worker = s->worker;
	j->msg = s->txn->msg;
	s->txn->msg = NULL;
	j->done = done;
	queue_accept_envelope(s, &j->env);
	pool_submit(s->worker, queue_accept_work, queue_accept_pool_done, j);
}
