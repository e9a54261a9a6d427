/*
 * queue.h - the durable relay queue: a directory with one folder per
 * state, one file per message (format: queue_file.h), and the committer
 * thread that makes new messages durable in groups.
 *
 * Used by the daemon (relay-mode acceptance, later the scheduler) and by
 * the `sluice queue` subcommand, on the same files.  Ownership between
 * processes: whoever changes a message file (records a result, moves or
 * removes it) holds flock(LOCK_EX) on it; queue_msg_open checks after
 * locking that the file is still where it was opened, so a message moved
 * by the other party meanwhile is reported as ENOENT, never changed twice.
 */
#ifndef SLUICE_QUEUE_H
#define SLUICE_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue_file.h"

enum queue_state {
	QUEUE_INCOMING = 0,	/* being written; never committed if found at start */
	QUEUE_ACTIVE,		/* committed, owned by the scheduler (due or in delivery) */
	QUEUE_DEFERRED,		/* waiting for its next attempt */
	QUEUE_HOLD,		/* kept aside by the operator */
	QUEUE_CORRUPT,		/* did not parse; kept for a human */
	QUEUE_NSTATES
};

enum queue_sync {
	QUEUE_SYNC_FDATASYNC = 0,	/* fdatasync each file of a group, fsync the folder */
	QUEUE_SYNC_SYNCFS		/* one syncfs(2) per group, fsync the folder (default) */
};

struct queue_counts {
	size_t	 n[QUEUE_NSTATES];	/* files per state */
	size_t	 removed;		/* recovery: uncommitted files removed */
	size_t	 requeued;		/* recovery: active files made deferred */
	size_t	 corrupt;		/* recovery: files moved to corrupt/ */
};

struct queue_stats {
	uint64_t messages;	/* committed */
	uint64_t groups;	/* committer rounds */
	uint64_t syncs;		/* fsync/fdatasync/syncfs calls made by the committer */
};

/*
 * Use dir (copied) and create its folders, owned by uid/gid when they are
 * not -1.  Process-wide; call once before anything else.  0, or -1 with
 * errno.
 */
int	 queue_init(const char *dir, enum queue_sync sync, uid_t uid, gid_t gid);
/*
 * Use the existing queue at dir (copied) without creating anything, for
 * `sluice queue`: folders made by root would lock the daemon out.  0, or
 * -1 with errno (ENOENT when a folder is missing).
 */
int	 queue_use(const char *dir);
const char *queue_dir(void);
const char *queue_state_name(enum queue_state state);
/* -1 when name is no state. */
int	 queue_state_from_name(const char *name);

/*
 * Start-up recovery, before the committer runs and before any delivery:
 * incoming/ is emptied (those messages never got their 250), active/
 * files go to deferred/ (a delivery was cut: recipients recorded as done
 * stay done), and every file that does not parse goes to corrupt/ with a
 * log line.  Fills counts.  0, or -1 with errno when a folder cannot be
 * read.
 */
int	 queue_recover(struct queue_counts *counts);
/* Files per state now (a directory scan). */
void	 queue_count(struct queue_counts *counts);
/* Ids in a state, sorted (= by arrival).  *ids is caller-freed (one block). */
int	 queue_list(enum queue_state state, char (**ids)[QUEUE_ID_LEN + 1], size_t *n);

/*
 * Ids in deferred/ whose next attempt is at or before now, sorted, read
 * without locking (a message being changed meanwhile is still listed or
 * skipped; the scheduler opens each with queue_msg_open to own it).
 * Files that do not parse are skipped here (recovery moves them).
 */
int	 queue_list_due(int64_t now, char (**ids)[QUEUE_ID_LEN + 1], size_t *n);

/* --- Writing a new message --------------------------------------------------- */

struct queue_writer;

/*
 * Start a message: env->id is set to a fresh id (queue_id_new), the file
 * incoming/ID is created and the head written.  env is not kept.  NULL
 * with errno on failure (nothing left behind).
 */
struct queue_writer *queue_writer_begin(struct queue_envelope *env);
/* Body bytes in wire form.  0, or -1 with errno (then abort). */
int	 queue_writer_write(struct queue_writer *w, const void *data, size_t len);
/* Write the end line and the body length.  0, or -1 with errno (then abort). */
int	 queue_writer_finish(struct queue_writer *w);
/* Remove the partial file and free w. */
void	 queue_writer_abort(struct queue_writer *w);

/*
 * Make a finished message durable and move it to active/: the committer
 * thread syncs every message handed in while the previous group synced,
 * together.  done(arg, err) runs on the committer thread, err 0 once file
 * and folder are on disk, else an errno (the file is removed).  w is taken.
 */
void	 queue_commit(struct queue_writer *w, void (*done)(void *arg, int err), void *arg);
/* The same, synchronously on the calling thread (sluice queue, DSNs).  0 or errno. */
int	 queue_commit_now(struct queue_writer *w);
/* Committer thread.  start after queue_init; stop finishes pending groups. */
void	 queue_committer_start(void);
void	 queue_committer_stop(void);
void	 queue_stats_get(struct queue_stats *stats);

/*
 * A whole message in one call, committed synchronously (for DSNs: sender
 * ""). body is wire form.  env->id is set.  0, or -1 with errno.
 */
int	 queue_inject(struct queue_envelope *env, const void *body, size_t len);

/* --- Working on a queued message --------------------------------------------- */

struct queue_msg {
	enum queue_state	 state;	/* folder it is in */
	int			 fd;	/* open read-write, flock'ed LOCK_EX */
	struct queue_envelope	 env;	/* parsed, records applied */
};

/*
 * Open and lock id in state.  wait 0 fails with EWOULDBLOCK when another
 * process or thread holds it.  0; -1 with errno (ENOENT: not there, or
 * moved while we waited); -2 when the file does not parse (why says how;
 * the caller decides: the daemon moves it to corrupt/).
 */
int	 queue_msg_open(enum queue_state state, const char *id, int wait,
	    struct queue_msg **out, char *why, size_t whylen);
/* Find id in any state but incoming, and open it as above. */
int	 queue_msg_find(const char *id, int wait, struct queue_msg **out, char *why,
	    size_t whylen);
void	 queue_msg_close(struct queue_msg **m);
/* Where the wire-form body lies: m->fd, [offset, offset + length). */
void	 queue_msg_body(const struct queue_msg *m, int *fd, off_t *offset, off_t *length);
/*
 * Durable changes (append + fdatasync, rename + fsync of the folder).
 * 0, or -1 with errno; m stays consistent with the file either way.
 */
int	 queue_msg_record(struct queue_msg *m, size_t index, enum queue_rcpt_state state,
	    const char *reply);
/* n results (index[i], state[i], reply[i]) in one append + fdatasync. */
int	 queue_msg_record_many(struct queue_msg *m, size_t n, const size_t *index,
	    const enum queue_rcpt_state *state, const char *const *reply);
int	 queue_msg_attempt(struct queue_msg *m, int64_t next_attempt);
int	 queue_msg_schedule(struct queue_msg *m, int64_t next_attempt);
int	 queue_msg_move(struct queue_msg *m, enum queue_state to);
/* Unlink and fsync the folder; m is closed and cleared. */
int	 queue_msg_remove(struct queue_msg **m);

/* Move a file that cannot be opened as a message to corrupt/ (by name). */
int	 queue_move_corrupt(enum queue_state from, const char *name);

/* Internal to queue*.c: the path of name in state, and fsync of a folder. */
int	 queue_path(char *buf, size_t size, enum queue_state state, const char *name);
int	 queue_fsync_state(enum queue_state state);
void	 queue_stats_add(uint64_t messages, uint64_t groups, uint64_t syncs);
enum queue_sync queue_sync_mode(void);

/*
 * The scheduler's hook for `sluice queue flush` (SIGUSR2): called on the
 * main thread.  NULL = nothing schedules yet (the flush is only logged).
 */
extern void (*queue_flush_hook)(void);
/*
 * The scheduler's hook for new mail: called with the id of each message
 * that reached active/, on the committer thread (or the caller's, for
 * queue_commit_now and queue_inject), after its done.  It must only hand
 * the id on (worker_post).  NULL = nobody listens yet.
 */
extern void (*queue_committed_hook)(const char *id);

#endif /* SLUICE_QUEUE_H */
