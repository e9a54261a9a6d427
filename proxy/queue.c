/*
 * queue.c - the queue directory: its folders, start-up recovery, listing,
 * and the durable operations on one message (open and lock, record a
 * result, move, remove).  Writing new messages and the group commit are
 * in queue_commit.c; the file format in queue_file.c (its top comment
 * and sluice(8), RELAY QUEUE, describe it: a text envelope, the body in
 * wire form, an "end" line, then append-only "result", "attempt" and
 * "schedule" records; the last record of a kind wins).
 *
 * Durability: a result or attempt record is one write(2) with O_APPEND
 * followed by fdatasync; a short write is cut back with ftruncate so the
 * next record starts on a line of its own.  A move is rename(2) followed
 * by fsync of the destination folder (a rename is one journal transaction
 * on the file systems we run on, so the message is in exactly one folder
 * after a crash).  Every change is made holding flock(LOCK_EX) on the
 * file, so the daemon and `sluice queue` never change a message at once.
 */
#include "autoconf.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "queue.h"
#include "util.h"

/* A head or a record tail larger than this is damage, not mail. */
#define QUEUE_HEAD_MAX		(32 * 1024 * 1024)
#define QUEUE_TAIL_MAX		(16 * 1024 * 1024)

static const char *const queue_state_names[QUEUE_NSTATES] = {
	"incoming", "active", "deferred", "hold", "corrupt"
};

static char		*queue_root;
static enum queue_sync	 queue_sync;
static atomic_uint_fast64_t queue_nmessages, queue_ngroups, queue_nsyncs;

void			(*queue_flush_hook)(void);
void			(*queue_committed_hook)(const char *);

static int	 queue_read_envelope(int, struct queue_envelope *, char *, size_t);
static int	 queue_append(struct queue_msg *, char *, size_t);
static int	 queue_recover_state(enum queue_state, struct queue_counts *);

int
queue_init(const char *dir, enum queue_sync sync, uid_t uid, gid_t gid)
{
	char	 path[PATH_MAX];
	int	 i;

	free(queue_root);
	queue_root = xstrdup(dir);
	queue_sync = sync;
	for (i = -1; i < QUEUE_NSTATES; i++) {
		snprintf(path, sizeof(path), "%s%s%s", dir, i < 0 ? "" : "/",
		    i < 0 ? "" : queue_state_names[i]);
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			return -1;
		if (uid != (uid_t)-1 && chown(path, uid, gid) == -1)
			return -1;
	}
	return 0;
}

int
queue_use(const char *dir)
{
	char		 path[PATH_MAX];
	struct stat	 st;
	int		 i;

	free(queue_root);
	queue_root = xstrdup(dir);
	for (i = 0; i < QUEUE_NSTATES; i++)
		if (queue_path(path, sizeof(path), (enum queue_state)i, NULL) == -1 ||
		    stat(path, &st) == -1)
			return -1;
	return 0;
}

const char *
queue_dir(void)
{
	return queue_root;
}

enum queue_sync
queue_sync_mode(void)
{
	return queue_sync;
}

const char *
queue_state_name(enum queue_state state)
{
	return (unsigned int)state < QUEUE_NSTATES ? queue_state_names[state] : "unknown";
}

int
queue_state_from_name(const char *name)
{
	int	 i;

	for (i = 0; i < QUEUE_NSTATES; i++)
		if (strcmp(name, queue_state_names[i]) == 0)
			return i;
	return -1;
}

int
queue_path(char *buf, size_t size, enum queue_state state, const char *name)
{
	int	 n = snprintf(buf, size, "%s/%s%s%s", queue_root, queue_state_names[state],
	    name != NULL ? "/" : "", name != NULL ? name : "");

	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
queue_fsync_state(enum queue_state state)
{
	char	 path[PATH_MAX];
	int	 fd, r;

	if (queue_path(path, sizeof(path), state, NULL) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	queue_stats_add(0, 0, 1);
	return r;
}

void
queue_stats_add(uint64_t messages, uint64_t groups, uint64_t syncs)
{
	atomic_fetch_add(&queue_nmessages, messages);
	atomic_fetch_add(&queue_ngroups, groups);
	atomic_fetch_add(&queue_nsyncs, syncs);
}

void
queue_stats_get(struct queue_stats *stats)
{
	stats->messages = atomic_load(&queue_nmessages);
	stats->groups = atomic_load(&queue_ngroups);
	stats->syncs = atomic_load(&queue_nsyncs);
}

/* --- Reading a message file -------------------------------------------------- */

static ssize_t
queue_pread_all(int fd, char *buf, size_t len, off_t off)
{
	size_t	 got = 0;
	ssize_t	 n;

	while (got < len) {
		if ((n = pread(fd, buf + got, len - got, off + (off_t)got)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* The head, read in growing steps until it parses: 0, -1 errno, -2 damage. */
static int
queue_read_head(int fd, struct queue_envelope *env, char *why, size_t whylen)
{
	size_t		 cap = 8192, len = 0;
	char		*buf = NULL;
	ssize_t		 n;
	enum queue_parse r = QUEUE_PARSE_MORE;

	while (r == QUEUE_PARSE_MORE && cap <= QUEUE_HEAD_MAX) {
		buf = xreallocarray(buf, 1, cap);
		if ((n = queue_pread_all(fd, buf + len, cap - len, (off_t)len)) == -1) {
			free(buf);
			return -1;
		}
		len += (size_t)n;
		r = queue_file_parse_head(buf, len, env, why, whylen);
		if (r == QUEUE_PARSE_MORE && len < cap) {
			snprintf(why, whylen, "file ends inside the envelope");
			r = QUEUE_PARSE_BAD;
		}
		cap *= 2;
	}
	free(buf);
	return r == QUEUE_PARSE_OK ? 0 : -2;
}

/* Head, size check, tail records: 0, -1 with errno, -2 damage (why). */
static int
queue_read_envelope(int fd, struct queue_envelope *env, char *why, size_t whylen)
{
	struct stat	 st;
	off_t		 end;
	size_t		 tlen;
	char		*tail;
	int		 r;

	if ((r = queue_read_head(fd, env, why, whylen)) != 0)
		return r;
	if (fstat(fd, &st) == -1)
		return -1;
	end = env->body_offset + env->body_length;
	if (end > st.st_size || end - QUEUE_HEAD_MAX > st.st_size) {
		snprintf(why, whylen, "file ends inside the body");
		return -2;
	}
	if (st.st_size - end > QUEUE_TAIL_MAX) {
		snprintf(why, whylen, "too many records after the body");
		return -2;
	}
	tlen = (size_t)(st.st_size - end);
	tail = xmalloc(tlen + 1);
	if (queue_pread_all(fd, tail, tlen, end) != (ssize_t)tlen) {
		free(tail);
		errno = errno != 0 ? errno : EIO;
		return -1;
	}
	r = queue_file_parse_tail(tail, tlen, env, why, whylen) == QUEUE_PARSE_OK ? 0 : -2;
	free(tail);
	return r;
}

/* --- One message ------------------------------------------------------------- */

int
queue_msg_open(enum queue_state state, const char *id, int wait, struct queue_msg **out,
    char *why, size_t whylen)
{
	char		 path[PATH_MAX];
	struct stat	 a, b;
	struct queue_msg *m;
	int		 fd, r;

	*out = NULL;
	if (!queue_id_valid(id)) {
		errno = ENOENT;
		return -1;
	}
	if (queue_path(path, sizeof(path), state, id) == -1 ||
	    (fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) == -1)
		return -1;
	while ((r = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) == -1 && errno == EINTR)
		;
	/* Locked: is it still there, or did the other holder move it? */
	if (r == -1 || fstat(fd, &a) == -1 || stat(path, &b) == -1 || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev) {
		if (r != -1)
			errno = ENOENT;
		r = errno;
		close(fd);
		errno = r;
		return -1;
	}
	m = xcalloc(1, sizeof(*m));
	m->state = state;
	m->fd = fd;
	if ((r = queue_read_envelope(fd, &m->env, why, whylen)) != 0) {
		int	 saved = errno;

		queue_msg_close(&m);
		errno = saved;
		return r;
	}
	if (strcmp(m->env.id, id) != 0) {
		snprintf(why, whylen, "file name and id %s differ", m->env.id);
		queue_msg_close(&m);
		return -2;
	}
	*out = m;
	return 0;
}

int
queue_msg_find(const char *id, int wait, struct queue_msg **out, char *why, size_t whylen)
{
	int	 st, r;

	for (st = QUEUE_ACTIVE; st < QUEUE_NSTATES; st++)
		if ((r = queue_msg_open((enum queue_state)st, id, wait, out, why, whylen)) != -1 ||
		    errno != ENOENT)
			return r;
	errno = ENOENT;
	return -1;
}

void
queue_msg_close(struct queue_msg **m)
{
	if (*m == NULL)
		return;
	if ((*m)->fd != -1)
		close((*m)->fd);	/* releases the lock */
	queue_envelope_clear(&(*m)->env);
	free(*m);
	*m = NULL;
}

void
queue_msg_body(const struct queue_msg *m, int *fd, off_t *offset, off_t *length)
{
	*fd = m->fd;
	*offset = m->env.body_offset;
	*length = m->env.body_length;
}

/* One record, whole or not at all, then on disk.  Frees line. */
static int
queue_append(struct queue_msg *m, char *line, size_t len)
{
	struct stat	 st;
	ssize_t		 n;
	int		 saved;

	if (fstat(m->fd, &st) == -1) {
		free(line);
		return -1;
	}
	while ((n = write(m->fd, line, len)) == -1 && errno == EINTR)
		;
	free(line);
	if (n != (ssize_t)len) {
		saved = n == -1 ? errno : ENOSPC;
		(void)!ftruncate(m->fd, st.st_size);
		errno = saved;
		return -1;
	}
	return fdatasync(m->fd);
}

int
queue_msg_record(struct queue_msg *m, size_t index, enum queue_rcpt_state state,
    const char *reply)
{
	struct queue_rcpt	*r;
	size_t			 len;
	int64_t			 now = (int64_t)time(NULL);
	char			*line;

	if (index >= m->env.nrcpts) {
		errno = EINVAL;
		return -1;
	}
	line = queue_file_format_result(index, state, now, reply, &len);
	if (queue_append(m, line, len) == -1)
		return -1;
	r = &m->env.rcpts[index];
	r->state = state;
	r->when = now;
	free(r->reply);
	r->reply = reply != NULL ? xstrdup(reply) : NULL;
	return 0;
}

/*
 * n results in one append and one fdatasync: a delivery job's recipients
 * are made durable together, so the scheduler's loop waits for the disk
 * once per job instead of once per recipient.  All or none are recorded.
 */
int
queue_msg_record_many(struct queue_msg *m, size_t n, const size_t *index,
    const enum queue_rcpt_state *state, const char *const *reply)
{
	struct queue_rcpt	*r;
	size_t			 i, len, total = 0;
	int64_t			 now = (int64_t)time(NULL);
	char			*line, *buf = NULL;

	for (i = 0; i < n; i++) {
		if (index[i] >= m->env.nrcpts) {
			free(buf);
			errno = EINVAL;
			return -1;
		}
		line = queue_file_format_result(index[i], state[i], now, reply[i], &len);
		buf = xreallocarray(buf, 1, total + len);
		memcpy(buf + total, line, len);
		total += len;
		free(line);
	}
	if (n == 0)
		return 0;
	if (queue_append(m, buf, total) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		r = &m->env.rcpts[index[i]];
		r->state = state[i];
		r->when = now;
		free(r->reply);
		r->reply = reply[i] != NULL ? xstrdup(reply[i]) : NULL;
	}
	return 0;
}

int
queue_msg_attempt(struct queue_msg *m, int64_t next_attempt)
{
	size_t	 len;
	char	*line = queue_file_format_attempt((int64_t)time(NULL), next_attempt, &len);

	if (queue_append(m, line, len) == -1)
		return -1;
	m->env.attempts++;
	m->env.next_attempt = next_attempt;
	return 0;
}

int
queue_msg_schedule(struct queue_msg *m, int64_t next_attempt)
{
	size_t	 len;
	char	*line = queue_file_format_schedule(next_attempt, &len);

	if (queue_append(m, line, len) == -1)
		return -1;
	m->env.next_attempt = next_attempt;
	return 0;
}

int
queue_msg_move(struct queue_msg *m, enum queue_state to)
{
	char	 from[PATH_MAX], dest[PATH_MAX];

	if (to == m->state)
		return 0;
	if (queue_path(from, sizeof(from), m->state, m->env.id) == -1 ||
	    queue_path(dest, sizeof(dest), to, m->env.id) == -1 ||
	    rename(from, dest) == -1)
		return -1;
	m->state = to;
	return queue_fsync_state(to);
}

int
queue_msg_remove(struct queue_msg **m)
{
	char			 path[PATH_MAX];
	enum queue_state	 st = (*m)->state;

	if (queue_path(path, sizeof(path), st, (*m)->env.id) == -1 || unlink(path) == -1)
		return -1;
	queue_msg_close(m);
	return queue_fsync_state(st);
}

int
queue_move_corrupt(enum queue_state from, const char *name)
{
	char	 src[PATH_MAX], dest[PATH_MAX];

	if (queue_path(src, sizeof(src), from, name) == -1 ||
	    queue_path(dest, sizeof(dest), QUEUE_CORRUPT, name) == -1 ||
	    rename(src, dest) == -1)
		return -1;
	return queue_fsync_state(QUEUE_CORRUPT);
}

/* --- Folders ----------------------------------------------------------------- */

static int
queue_id_compare(const void *a, const void *b)
{
	return strcmp(a, b);
}

int
queue_list(enum queue_state state, char (**ids)[QUEUE_ID_LEN + 1], size_t *n)
{
	char		 path[PATH_MAX];
	DIR		*d;
	struct dirent	*de;
	size_t		 cap = 0;

	*ids = NULL;
	*n = 0;
	if (queue_path(path, sizeof(path), state, NULL) == -1 || (d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*ids = xreallocarray(*ids, cap, sizeof(**ids));
		}
		memcpy((*ids)[(*n)++], de->d_name, QUEUE_ID_LEN + 1);
	}
	closedir(d);
	if (*n > 0)
		qsort(*ids, *n, sizeof(**ids), queue_id_compare);
	return 0;
}

int
queue_list_due(int64_t now, char (**ids)[QUEUE_ID_LEN + 1], size_t *n)
{
	struct queue_envelope	 env;
	char			 path[PATH_MAX], why[200];
	size_t			 i, kept = 0;
	int			 fd;

	if (queue_list(QUEUE_DEFERRED, ids, n) == -1)
		return -1;
	for (i = 0; i < *n; i++) {
		memset(&env, 0, sizeof(env));
		if (queue_path(path, sizeof(path), QUEUE_DEFERRED, (*ids)[i]) == -1 ||
		    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
			continue;
		if (queue_read_envelope(fd, &env, why, sizeof(why)) == 0 &&
		    env.next_attempt <= now)
			memmove((*ids)[kept++], (*ids)[i], QUEUE_ID_LEN + 1);
		queue_envelope_clear(&env);
		close(fd);
	}
	*n = kept;
	return 0;
}

void
queue_count(struct queue_counts *counts)
{
	char		 path[PATH_MAX];
	DIR		*d;
	struct dirent	*de;
	int		 st;

	memset(counts, 0, sizeof(*counts));
	for (st = 0; st < QUEUE_NSTATES; st++) {
		if (queue_path(path, sizeof(path), (enum queue_state)st, NULL) == -1 ||
		    (d = opendir(path)) == NULL)
			continue;
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				counts->n[st]++;
		closedir(d);
	}
}

/* --- Recovery ---------------------------------------------------------------- */

/* A file that is not a message: to corrupt/, with a log line. */
static void
queue_recover_corrupt(enum queue_state st, const char *name, const char *why,
    struct queue_counts *counts)
{
	if (queue_move_corrupt(st, name) == -1) {
		log_warn("%s queue corrupt file in %s not moved", name, queue_state_name(st));
		return;
	}
	log_warnx("%s queue corrupt from=%s reason=\"%s\" moved=corrupt", name,
	    queue_state_name(st), why);
	counts->corrupt++;
}

static void
queue_recover_one(enum queue_state st, const char *name, struct queue_counts *counts)
{
	struct queue_msg	*m;
	char			 why[200];
	int			 r;

	snprintf(why, sizeof(why), "not a queue id");
	if (!queue_id_valid(name)) {
		queue_recover_corrupt(st, name, why, counts);
		return;
	}
	if ((r = queue_msg_open(st, name, 1, &m, why, sizeof(why))) == -2) {
		queue_recover_corrupt(st, name, why, counts);
		return;
	}
	if (r == -1) {
		log_warn("%s queue recovery cannot open file in %s", name, queue_state_name(st));
		return;
	}
	if (st == QUEUE_ACTIVE) {
		if (queue_msg_move(m, QUEUE_DEFERRED) == -1)
			log_warn("%s queue recovery cannot requeue", name);
		else
			counts->requeued++;
	}
	queue_msg_close(&m);
}

static int
queue_recover_state(enum queue_state st, struct queue_counts *counts)
{
	char		 path[PATH_MAX];
	DIR		*d;
	struct dirent	*de;

	if (queue_path(path, sizeof(path), st, NULL) == -1 || (d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (st == QUEUE_INCOMING) {
			/* Renamed out only when committed: this one never was. */
			if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
				log_info("%s queue removed uncommitted file from=incoming",
				    de->d_name);
				counts->removed++;
			}
			continue;
		}
		queue_recover_one(st, de->d_name, counts);
	}
	closedir(d);
	return st == QUEUE_INCOMING ? queue_fsync_state(st) : 0;
}

int
queue_recover(struct queue_counts *counts)
{
	struct queue_counts	 now;
	static const enum queue_state order[] = {
		QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD
	};
	size_t			 i;

	memset(counts, 0, sizeof(*counts));
	for (i = 0; i < nitems(order); i++)
		if (queue_recover_state(order[i], counts) == -1)
			return -1;
	queue_count(&now);
	memcpy(counts->n, now.n, sizeof(now.n));
	return 0;
}
