/*
 * message.h - one message of a transaction: its spooled wire bytes, an
 * index of its header section, the changes filters asked for, and a writer
 * that produces the bytes to forward without re-encoding what did not
 * change.
 *
 * The spool holds the content exactly as received between DATA and the
 * final ".\r\n" (dot-stuffed, CRLF).  The header index records where each
 * header field lies in the spool; changes are kept as an edited view of
 * that list, so an unchanged message is forwarded as one copy of the
 * spool, and a changed one as spool ranges around the new fields.
 *
 * Pure code apart from the spool's file I/O.  One owner; not thread-safe.
 */
#ifndef SLUICE_MESSAGE_H
#define SLUICE_MESSAGE_H

#include <stddef.h>
#include <sys/types.h>

struct evbuffer;
struct spool;
struct message;

/*
 * Limits that keep the index bounded whatever the client sends; 0 means
 * no limit.  A field's size is its wire bytes, continuation lines and the
 * final CRLF included; a line that passes max_header_size before its colon
 * counts as a too big field.  Indexing stops at the field that breaks a
 * limit: it and what follows count as body.
 */
struct message_limits {
	size_t	 mem_limit;	/* spool bytes kept in memory before going to a file */
	size_t	 max_headers;	/* header fields indexed; more sets MESSAGE_TOO_MANY_HEADERS */
	size_t	 max_header_size;	/* bytes of one header field (folded); more sets MESSAGE_HEADER_TOO_BIG */
};

#define MESSAGE_TOO_MANY_HEADERS	0x01
#define MESSAGE_HEADER_TOO_BIG		0x02

/* A new empty message spooling into dir (copied).  NULL when out of memory. */
struct message	*message_new(const struct message_limits *limits, const char *dir);
void		 message_free(struct message *msg);

/* Append wire bytes as received.  0, or -1 with errno (the spool failed). */
int		 message_append(struct message *msg, const void *data, size_t len);
size_t		 message_size(const struct message *msg);	/* wire bytes appended */
struct spool	*message_spool(struct message *msg);		/* not transferred */

/*
 * Build the header index from the spooled bytes (append everything
 * first), read in small chunks, dot-stuffing undone.  The header section
 * ends at the first empty line, or before the first line that is neither a
 * header field ("name:" with name of printable ASCII except ':', white
 * space before the colon allowed as RFC 5322 obs-optional) nor a
 * continuation (SP or HTAB first, after a field); a last line without its
 * line end is not header.  Indexing again drops all edits.  Returns 0, or
 * -1 with errno on a spool read error.  Sets MESSAGE_* flags, see
 * message_flags().  The edit and body-replacement calls index first if
 * this was not called.
 */
int		 message_index(struct message *msg);
unsigned int	 message_flags(const struct message *msg);

/*
 * Header fields of the current (edited) view, in order.  Name and value
 * are NUL-terminated copies in a scratch buffer owned by msg, valid until
 * the next call of message_header_get() or any change: value is the text
 * after the colon with one leading space removed, folding CRLFs kept, the
 * final CRLF removed, dot-stuffing undone.
 */
size_t		 message_header_count(const struct message *msg);
int		 message_header_get(struct message *msg, size_t index,
		    const char **name, const char **value);

/*
 * Changes.  Names must be printable ASCII without ':' or space; values may
 * contain "\n" or "\r\n" followed by SP/HTAB (folding) and no other CR or
 * LF.  Return 0, or -1 with errno EINVAL (bad name/value, index out of
 * range, no such field) or ENOMEM.
 */
int		 message_header_add(struct message *msg, const char *name, const char *value);
int		 message_header_insert(struct message *msg, size_t index, const char *name,
		    const char *value);
/*
 * The index-th (1-based) field named name (case-insensitive) of the
 * current view; value NULL deletes it, else it becomes "name: value" with
 * name spelled as passed.
 */
int		 message_header_change(struct message *msg, const char *name, size_t index,
		    const char *value);
/*
 * Raw wire bytes written before everything else (the core's Received:
 * field): whole CRLF lines, no bare CR or LF, no line that is a lone "."
 * (EINVAL otherwise).  A later call goes before earlier ones.  Not part
 * of the header view.
 */
int		 message_prepend(struct message *msg, const char *raw, size_t len);

/*
 * Replace the body: the first call starts the new body, later calls
 * append.  data is unstuffed with CRLF line ends; it is stored dot-stuffed
 * in a second spool, a bare CR or LF becomes CRLF, and a missing final
 * CRLF is added when writing.  The writer then emits the edited header
 * section, one empty line, and the new body (the original empty line goes
 * with the original body).
 */
int		 message_body_replace(struct message *msg, const unsigned char *data, size_t len);
int		 message_body_replaced(const struct message *msg);

/*
 * Reading the original body (after the empty line), dot-stuffing undone,
 * for body hooks.  Set the cursor after message_index().
 */
struct message_cursor {
	off_t	 offset;	/* next wire offset to read */
	int	 at_line_start;	/* private */
};
void		 message_body_cursor(const struct message *msg, struct message_cursor *cursor);
/* Up to cap bytes into buf; returns bytes (0 at the end) or -1 with errno. */
ssize_t		 message_body_read(struct message *msg, struct message_cursor *cursor,
		    unsigned char *buf, size_t cap);

/* Producing the bytes to forward. */
#define MESSAGE_WRITE_UNSTUFF	0x01	/* undo dot-stuffing (final delivery) */
#define MESSAGE_WRITE_LF	0x02	/* LF line ends instead of CRLF (Maildir) */

struct message_writer {
	struct message	*msg;		/* not owned */
	int		 flags;		/* MESSAGE_WRITE_* */
	int		 step;		/* private: which part comes next */
	size_t		 item;		/* private: header entry index */
	off_t		 offset;	/* private: offset within the current range */
	int		 at_line_start;	/* private: for unstuffing */
	int		 pending_cr;	/* private: for LF conversion */
};

void		 message_writer_init(struct message_writer *w, struct message *msg, int flags);
/*
 * Add up to max bytes of output to out (0: no limit; with MESSAGE_WRITE_LF
 * one more for a CR held back from the previous call).  Without flags the
 * spool's bytes are added without copying (see spool_add_to()), and out
 * stays valid after message_free().  The message must not change while a
 * writer runs.  Returns 1 when more is to come, 0 when the whole message
 * has been written (without the final ".\r\n", which the caller adds for
 * SMTP), -1 with errno on a read error.
 */
int		 message_writer_next(struct message_writer *w, struct evbuffer *out, size_t max);

#endif /* SLUICE_MESSAGE_H */
