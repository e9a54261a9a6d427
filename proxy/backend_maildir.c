/*
 * backend_maildir.c - write a message into a Maildir from the pool.
 *
 * The file is written in tmp/ with LF line ends and dot-stuffing undone,
 * as Maildir readers expect, with a Return-Path field first; it is
 * fsynced, hard-linked into new/, and new/ is fsynced before the client
 * hears 250 (invariant 1).  The name follows the Maildir convention
 * time.M<usec>P<pid>Q<n>.host so concurrent writers never collide.
 */
#include "autoconf.h"

#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "backend.h"
#include "backend_maildir.h"
#include "generation.h"
#include "log.h"
#include "message.h"
#include "pool.h"
#include "session.h"
#include "util.h"
#include "worker.h"

struct maildir_job {
	uint64_t	 session_id;	/* whom to answer */
	struct worker	*worker;	/* where */
	struct message	*msg;		/* owned */
	char		*dir;		/* Maildir path */
	char		*return_path;	/* envelope sender */
	const char	*hostname;	/* for the file name (generation kept alive) */
	struct generation *gen;		/* reference held for hostname and dir */
	int		 fsync;		/* fsync file and directory */
	int		 err;		/* result */
	char		 name[256];	/* file name in new/ */
	void		(*done)(struct session *, int, const char *);
};

static atomic_uint	 maildir_counter;

int
backend_maildir_prepare(const char *dir)
{
	static const char *const sub[] = { "", "/tmp", "/new", "/cur" };
	char		 path[PATH_MAX];
	size_t		 i;

	for (i = 0; i < nitems(sub); i++) {
		snprintf(path, sizeof(path), "%s%s", dir, sub[i]);
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			return -1;
	}
	return 0;
}

static int
maildir_write_all(int fd, struct evbuffer *buf)
{
	while (evbuffer_get_length(buf) > 0) {
		int	 n = evbuffer_write(buf, fd);

		if (n == -1 && errno != EINTR)
			return -1;
	}
	return 0;
}

static int
maildir_write_message(struct maildir_job *j, int fd)
{
	struct message_writer	 w;
	struct evbuffer		*buf = evbuffer_new();
	int			 r;

	evbuffer_add_printf(buf, "Return-Path: <%s>\n", j->return_path);
	message_writer_init(&w, j->msg, MESSAGE_WRITE_UNSTUFF | MESSAGE_WRITE_LF);
	do {
		if ((r = message_writer_next(&w, buf, 256 * 1024)) == -1 ||
		    maildir_write_all(fd, buf) == -1) {
			r = -1;
			break;
		}
	} while (r == 1);
	evbuffer_free(buf);
	return r;
}

static int
maildir_fsync_dir(const char *path)
{
	int	 fd, r;

	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

static void
maildir_work(void *arg)
{
	struct maildir_job	*j = arg;
	char			 tmp[PATH_MAX], new[PATH_MAX], dir[PATH_MAX];
	struct timeval		 tv;
	int			 fd;

	gettimeofday(&tv, NULL);
	snprintf(j->name, sizeof(j->name), "%lld.M%ldP%ldQ%u.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), atomic_fetch_add(&maildir_counter, 1) + 1,
	    j->hostname);
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", j->dir, j->name);
	snprintf(new, sizeof(new), "%s/new/%s", j->dir, j->name);
	snprintf(dir, sizeof(dir), "%s/new", j->dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1 && errno == ENOENT && backend_maildir_prepare(j->dir) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1) {
		j->err = errno;
		return;
	}
	if (maildir_write_message(j, fd) == -1 || (j->fsync && fsync(fd) == -1)) {
		j->err = errno != 0 ? errno : EIO;
		close(fd);
		unlink(tmp);
		return;
	}
	if (close(fd) == -1 || link(tmp, new) == -1) {
		j->err = errno;
		unlink(tmp);
		return;
	}
	unlink(tmp);
	if (j->fsync && maildir_fsync_dir(dir) == -1) {
		j->err = errno;
		return;
	}
	j->err = 0;
}

static void
maildir_done(void *arg)
{
	struct maildir_job	*j = arg;
	struct session		*s = worker_session_find(j->worker, j->session_id);

	if (j->err != 0) {
		errno = j->err;
		log_warn("%016llx maildir delivery to %s failed",
		    (unsigned long long)j->session_id, j->dir);
	} else
		log_session(j->session_id, LOG_LEVEL_INFO, "delivered maildir=%s file=%s",
		    j->dir, j->name);
	if (s != NULL)
		j->done(s, j->err, j->name);
	else if (j->err == 0)
		log_session(j->session_id, LOG_LEVEL_WARNING, "client left before the reply; "
		    "it may send this message again");
	message_free(j->msg);
	free(j->dir);
	free(j->return_path);
	generation_unref(j->gen);
	free(j);
}

void
backend_maildir_deliver(struct session *s, void (*done)(struct session *, int, const char *))
{
	struct maildir_job	*j = xcalloc(1, sizeof(*j));
	const struct config_backend *b = s->lg->backend->conf;

	j->session_id = s->id;
	j->worker = s->worker;
	j->msg = s->txn->msg;
	s->txn->msg = NULL;
	j->dir = xstrdup(b->maildir);
	j->return_path = xstrdup(s->txn->mail_from);
	j->gen = s->gen;
	generation_ref(s->gen);
	j->hostname = s->lg->conf->hostname;
	j->fsync = b->maildir_fsync;
	j->done = done;
	pool_submit(s->worker, maildir_work, maildir_done, j);
}
