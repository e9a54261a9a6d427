/*
 * queue_file.h - the queue file format: queue ids, the envelope text,
 * the append-only result records, and their parser.  Pure code: no
 * files, no threads, no sessions (proxy/queue.c does the I/O).
 *
 * The format is described at the top of queue_file.c and in sluice(8),
 * FILES.
 */
#ifndef SLUICE_QUEUE_FILE_H
#define SLUICE_QUEUE_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define QUEUE_FILE_VERSION	1
/* 14 hex digits of microseconds since the epoch, 6 base32 random. */
#define QUEUE_ID_LEN		20

enum queue_rcpt_state {
	QUEUE_RCPT_PENDING = 0,	/* not tried, or tried and deferred */
	QUEUE_RCPT_DELIVERED,	/* the remote said 2xx */
	QUEUE_RCPT_FAILED,	/* permanent failure: goes into a DSN */
	QUEUE_RCPT_DEFERRED	/* last attempt failed temporarily (still to do) */
};

struct queue_rcpt {
	char			*mailbox;	/* without <>, owned */
	char			*params;	/* RCPT ESMTP params ("" if none), owned */
	enum queue_rcpt_state	 state;		/* from the last result record */
	int64_t			 when;		/* of the last result, unix seconds, 0 = none */
	char			*reply;		/* last remote reply or reason, owned, NULL = none */
};

struct queue_envelope {
	char		 id[QUEUE_ID_LEN + 1];	/* the queue id */
	int64_t		 arrival;	/* unix seconds */
	char		*sender;	/* "" for <>, owned */
	char		*mail_params;	/* MAIL ESMTP params as received ("" if none), owned */
	char		*client_addr;	/* client IP, owned */
	char		*client_name;	/* verified host name or "", owned */
	char		*client_helo;	/* HELO/EHLO argument or "", owned */
	char		*received_by;	/* our host name, owned */
	struct queue_rcpt *rcpts;	/* in RCPT order, owned */
	size_t		 nrcpts;
	off_t		 body_offset;	/* where the wire bytes start in the file */
	off_t		 body_length;	/* how many */
	unsigned int	 attempts;	/* delivery attempts recorded */
	int64_t		 next_attempt;	/* unix seconds; arrival when never tried */
};

/*
 * A fresh id for a message arriving now: unique across processes (random
 * part) and strictly increasing within the process, so ids sort by time
 * as text.  out has QUEUE_ID_LEN + 1 bytes.  Thread-safe.
 */
void	 queue_id_new(char *out);
/* 1 when s is QUEUE_ID_LEN characters of the id alphabet. */
int	 queue_id_valid(const char *s);

/*
 * The body length is written zero-padded to this width, so the writer can
 * fill it in with pwrite once the body is out (its size is known only then).
 */
#define QUEUE_FILE_LENGTH_WIDTH	16

/*
 * The envelope text up to and including the "body LENGTH" line, with
 * body_length as the body's size.  Returns a NUL-terminated malloc'ed
 * string (caller frees), its length in *len.  Values must hold no CR, LF
 * or NUL (the SMTP parser guarantees it for addresses and params).
 */
char	*queue_file_format_head(const struct queue_envelope *env, size_t *len);
/* The line that ends the body: a file without it was never committed. */
#define QUEUE_FILE_END		"end\n"
#define QUEUE_FILE_END_LEN	4
/*
 * A result record for recipient index, and an attempt record.  Caller
 * frees.  Control characters in reply become spaces.
 */
char	*queue_file_format_result(size_t index, enum queue_rcpt_state state, int64_t when,
	    const char *reply, size_t *len);
char	*queue_file_format_attempt(int64_t when, int64_t next_attempt, size_t *len);
/* Sets the next attempt without counting an attempt (release, flush). */
char	*queue_file_format_schedule(int64_t next_attempt, size_t *len);

enum queue_parse {
	QUEUE_PARSE_OK = 0,	/* done */
	QUEUE_PARSE_MORE,	/* the head is not complete yet */
	QUEUE_PARSE_BAD		/* not a queue file, or damaged; why says how */
};

/*
 * Parse the head (buf holds the file's first len bytes).  OK fills env
 * (free with queue_envelope_clear, also after BAD), MORE asks for more
 * bytes.  env->body_offset is set from where the head ends.
 */
enum queue_parse queue_file_parse_head(const char *buf, size_t len,
	    struct queue_envelope *env, char *why, size_t whylen);
/*
 * Parse what follows the body: the end line, then result and attempt
 * records.  A last record without its newline is a write cut short by a
 * crash and is ignored; any other damage is BAD.  Never MORE.
 */
enum queue_parse queue_file_parse_tail(const char *buf, size_t len,
	    struct queue_envelope *env, char *why, size_t whylen);
/* Both, on a whole file in memory. */
enum queue_parse queue_file_parse(const char *buf, size_t len, struct queue_envelope *env,
	    char *why, size_t whylen);

void	 queue_envelope_clear(struct queue_envelope *env);
const char *queue_rcpt_state_name(enum queue_rcpt_state state);

#endif /* SLUICE_QUEUE_FILE_H */
