/*
 * message.c - one message: spooled wire bytes, a header index, the edits
 * filters asked for, and a writer.  See message.h.
 *
 * The index is built by one pass over the header section, read from the
 * spool in small chunks, so a message is never loaded whole; it stops at
 * the end of the header section or at a limit.  Names go to one arena, so
 * indexing allocates per message, not per field.
 *
 * Edits never touch the spool.  The view is an array of entries, each
 * either an original field (a spool range) or a new field (owned wire
 * bytes); deleting drops the entry.  The writer walks prepend, view, then
 * body, and merges runs of original fields that are still adjacent in the
 * spool, so an unedited message is the prepend plus one spool range, and
 * an edited one is spool ranges around the new fields, handed on without
 * copying.  Only the UNSTUFF and LF flags make it copy, because they
 * change bytes.
 */
#include "autoconf.h"

#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "message.h"
#include "spool.h"

#define MESSAGE_NEW		SIZE_MAX	/* entry field: not an original field */
#define MESSAGE_CHUNK		4096		/* bytes read per step while indexing */
#define MESSAGE_COPY_CHUNK	65536		/* bytes per copy when the writer converts */

struct message_field {
	off_t		 offset;	/* wire offset of the field's first byte */
	size_t		 len;		/* wire bytes, continuations and final CRLF included */
	size_t		 name_off;	/* name in msg->names */
	size_t		 name_len;	/* name bytes */
};

struct message_entry {
	size_t		 field;		/* index in msg->fields, or MESSAGE_NEW */
	char		*raw;		/* new field: wire bytes, owned */
	size_t		 raw_len;	/* bytes of raw */
	size_t		 name_len;	/* new field: name bytes (after a stuffing dot) */
};

struct message {
	struct message_limits	 limits;	/* copied */
	char			*dir;		/* spool directory, owned */
	struct spool		*spool;		/* the wire bytes as received */
	struct spool		*body;		/* replacement body, wire form, or NULL */
	int			 body_line_start;	/* replacement: at a line start */
	int			 body_cr;	/* replacement: ends in a CR awaiting its LF */
	char			*prepend;	/* raw bytes written first, owned */
	size_t			 prepend_len;	/* bytes of prepend */
	struct message_field	*fields;	/* original header fields, in order */
	size_t			 nfields;	/* used */
	size_t			 fields_cap;	/* allocated */
	char			*names;		/* arena of original field names */
	size_t			 names_len;	/* used */
	size_t			 names_cap;	/* allocated */
	struct message_entry	*view;		/* current (edited) header list */
	size_t			 nview;		/* used */
	size_t			 view_cap;	/* allocated */
	int			 indexed;	/* message_index() ran */
	unsigned int		 flags;		/* MESSAGE_* */
	off_t			 header_end;	/* wire offset: end of the header section */
	off_t			 body_start;	/* after the empty line, if there is one */
	char			*scratch;	/* message_header_get() output */
	size_t			 scratch_cap;	/* allocated */
};

/* Index scanner states, per line. */
enum index_state {
	IX_LINE = 0,		/* at a line start */
	IX_FIRST,		/* after a stuffing dot: the line's first byte comes */
	IX_EMPTY_CR,		/* first byte was CR: an empty line if LF follows */
	IX_NAME,		/* in a field name */
	IX_NAME_WSP,		/* white space between name and colon */
	IX_REST			/* in a field line after the colon, or a continuation */
};

struct index_scan {
	struct message	*msg;
	enum index_state state;
	off_t		 pos;		/* wire offset of the byte being looked at */
	off_t		 line_start;	/* wire offset of the current line */
	off_t		 field_start;	/* open field, or -1 */
	size_t		 name_off;	/* name of the open field or of the line's name */
	size_t		 name_len;
	int		 done;		/* header section end found, or an error */
	int		 error;		/* errno of a failure, 0 if none */
};

/* Writer steps. */
enum writer_step {
	WR_PREPEND = 0,
	WR_HEADERS,
	WR_SEPARATOR,
	WR_BODY,
	WR_FIXUP,
	WR_DONE
};

/* A range to write: owned memory or spool bytes. */
struct writer_range {
	const unsigned char	*mem;	/* memory, or NULL for spool */
	struct spool		*spool;	/* spool when mem is NULL */
	off_t			 start;	/* spool offset of the range */
	size_t			 len;	/* bytes */
	size_t			 next_item;	/* headers: the item after this range */
	int			 to_end;	/* headers: the range runs through the body */
};

static int	 is_ftext(int);
static int	 is_wsp(int);
static void	*grow(void *, size_t *, size_t, size_t);
static void	 view_clear(struct message *);
static void	 index_begin(struct message *);
static void	 index_field_close(struct index_scan *, off_t);
static void	 index_end(struct index_scan *, off_t, off_t);
static void	 index_first(struct index_scan *, int);
static void	 index_name(struct index_scan *, int);
static void	 index_rest(struct index_scan *, const unsigned char *, size_t, size_t *);
static void	 index_chunk(struct index_scan *, const unsigned char *, size_t);
static void	 index_finish(struct index_scan *);
static int	 index_view(struct message *);
static int	 ensure_indexed(struct message *);
static const char *entry_name(const struct message *, const struct message_entry *,
		    size_t *);
static int	 name_valid(const char *);
static int	 value_valid(const char *);
static int	 field_build(const char *, const char *, struct message_entry *);
static int	 view_insert(struct message *, size_t, struct message_entry *);
static int	 raw_valid(const char *, size_t);
static int	 body_put(struct message *, const void *, size_t);
static size_t	 unstuff(unsigned char *, size_t, int *);
static size_t	 writer_convert(struct message_writer *, unsigned char *,
		    const unsigned char *, size_t);
static ssize_t	 writer_emit(struct message_writer *, struct evbuffer *,
		    const struct writer_range *, size_t);
static void	 writer_headers_range(struct message_writer *, struct writer_range *);
static int	 writer_range(struct message_writer *, struct writer_range *);
static void	 writer_advance(struct message_writer *, const struct writer_range *);

static const unsigned char crlf[] = "\r\n";

/* RFC 5322 ftext: printable ASCII except ':'. */
static int
is_ftext(int c)
{
	return c >= 33 && c <= 126 && c != ':';
}

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/*
 * The array p with room for need (> 0) elements of size bytes, grown by
 * doubling; NULL with ENOMEM, p untouched.
 */
static void *
grow(void *p, size_t *cap, size_t need, size_t size)
{
	size_t	 n = *cap != 0 ? *cap : 16;

	if (need <= *cap)
		return p;
	while (n < need) {
		if (n > SIZE_MAX / 2 / size) {
			errno = ENOMEM;
			return NULL;
		}
		n *= 2;
	}
	if ((p = realloc(p, n * size)) == NULL) {
		errno = ENOMEM;
		return NULL;
	}
	*cap = n;
	return p;
}

struct message *
message_new(const struct message_limits *limits, const char *dir)
{
	struct message	*msg;

	if ((msg = calloc(1, sizeof(*msg))) == NULL)
		return NULL;
	msg->limits = *limits;
	if ((msg->dir = strdup(dir)) == NULL ||
	    (msg->spool = spool_new(limits->mem_limit, dir)) == NULL) {
		free(msg->dir);
		free(msg);
		return NULL;
	}
	msg->body_line_start = 1;
	return msg;
}

void
message_free(struct message *msg)
{
	if (msg == NULL)
		return;
	view_clear(msg);
	free(msg->view);
	free(msg->fields);
	free(msg->names);
	free(msg->scratch);
	free(msg->prepend);
	spool_free(msg->body);
	spool_free(msg->spool);
	free(msg->dir);
	free(msg);
}

static void
view_clear(struct message *msg)
{
	size_t	 i;

	for (i = 0; i < msg->nview; i++)
		free(msg->view[i].raw);
	msg->nview = 0;
}

int
message_append(struct message *msg, const void *data, size_t len)
{
	return spool_append(msg->spool, data, len);
}

size_t
message_size(const struct message *msg)
{
	return spool_size(msg->spool);
}

struct spool *
message_spool(struct message *msg)
{
	return msg->spool;
}

unsigned int
message_flags(const struct message *msg)
{
	return msg->flags;
}

/* --- The header index ---------------------------------------------------- */

int
message_index(struct message *msg)
{
	struct index_scan	 s;
	unsigned char		 buf[MESSAGE_CHUNK];
	ssize_t			 n;

	index_begin(msg);
	memset(&s, 0, sizeof(s));
	s.msg = msg;
	s.field_start = -1;
	while (!s.done) {
		if ((n = spool_read(msg->spool, s.pos, buf, sizeof(buf))) == -1)
			return -1;
		if (n == 0) {
			index_finish(&s);
			break;
		}
		index_chunk(&s, buf, (size_t)n);
	}
	if (s.error != 0) {
		index_begin(msg);
		errno = s.error;
		return -1;
	}
	return index_view(msg);
}

/* Forget an earlier index and its edits. */
static void
index_begin(struct message *msg)
{
	view_clear(msg);
	msg->nfields = 0;
	msg->names_len = 0;
	msg->flags = 0;
	msg->indexed = 0;
	msg->header_end = msg->body_start = 0;
}

/* Scan n bytes that start at wire offset s->pos. */
static void
index_chunk(struct index_scan *s, const unsigned char *buf, size_t n)
{
	size_t	 i = 0;

	while (i < n && !s->done) {
		switch (s->state) {
		case IX_LINE:
			s->line_start = s->pos;
			if (buf[i] == '.')
				s->state = IX_FIRST;	/* stuffing: the line starts after it */
			else
				index_first(s, buf[i]);
			break;
		case IX_FIRST:
			index_first(s, buf[i]);
			break;
		case IX_EMPTY_CR:
			if (buf[i] == '\n')
				index_end(s, s->line_start, s->pos + 1);
			else
				index_end(s, s->line_start, s->line_start);
			break;
		case IX_NAME:
		case IX_NAME_WSP:
			index_name(s, buf[i]);
			break;
		case IX_REST:
			index_rest(s, buf, n, &i);
			continue;
		}
		i++;
		s->pos++;
	}
}

/* The first byte of a line, after any stuffing dot. */
static void
index_first(struct index_scan *s, int c)
{
	if (c == '\r')
		s->state = IX_EMPTY_CR;
	else if (c == '\n')
		index_end(s, s->line_start, s->pos + 1);
	else if (is_wsp(c) && s->field_start != -1)
		s->state = IX_REST;		/* a continuation line */
	else if (is_ftext(c)) {
		/* Whatever this line turns out to be, the open field ends before it. */
		if (s->field_start != -1)
			index_field_close(s, s->line_start);
		s->name_off = s->msg->names_len;
		s->name_len = 0;
		s->state = IX_NAME;
		index_name(s, c);
	} else
		index_end(s, s->line_start, s->line_start);
}

/* A byte of a field name, or of the white space before its colon. */
static void
index_name(struct index_scan *s, int c)
{
	struct message			*msg = s->msg;
	const struct message_limits	*lim = &msg->limits;
	char				*names;

	if (lim->max_header_size != 0 &&
	    (size_t)(s->pos - s->line_start) >= lim->max_header_size) {
		msg->flags |= MESSAGE_HEADER_TOO_BIG;
		index_end(s, s->line_start, s->line_start);
	} else if (c == ':') {
		if (lim->max_headers != 0 && msg->nfields >= lim->max_headers) {
			msg->flags |= MESSAGE_TOO_MANY_HEADERS;
			index_end(s, s->line_start, s->line_start);
			return;
		}
		s->field_start = s->line_start;
		s->state = IX_REST;
	} else if (is_wsp(c))
		s->state = IX_NAME_WSP;		/* RFC 5322 4.5.8 obs-optional */
	else if (s->state == IX_NAME && is_ftext(c)) {
		if ((names = grow(msg->names, &msg->names_cap, msg->names_len + 1, 1)) == NULL) {
			s->error = ENOMEM;
			s->done = 1;
			return;
		}
		msg->names = names;
		msg->names[msg->names_len++] = (char)c;
		s->name_len++;
	} else
		index_end(s, s->line_start, s->line_start);
}

/* The rest of a field line: skip to its LF, minding the field size. */
static void
index_rest(struct index_scan *s, const unsigned char *buf, size_t n, size_t *i)
{
	const struct message_limits *lim = &s->msg->limits;
	const unsigned char	*lf = memchr(buf + *i, '\n', n - *i);
	size_t			 upto = lf != NULL ? (size_t)(lf - buf) + 1 : n;
	off_t			 start = s->field_start;

	s->pos += (off_t)(upto - *i);
	*i = upto;
	if (lim->max_header_size != 0 && (size_t)(s->pos - start) > lim->max_header_size) {
		/* The field and everything after it count as body. */
		s->msg->flags |= MESSAGE_HEADER_TOO_BIG;
		s->field_start = -1;
		index_end(s, start, start);
		return;
	}
	if (lf != NULL)
		s->state = IX_LINE;
}

/* Record the open field as ending at end. */
static void
index_field_close(struct index_scan *s, off_t end)
{
	struct message		*msg = s->msg;
	struct message_field	*f;

	if ((f = grow(msg->fields, &msg->fields_cap, msg->nfields + 1,
	    sizeof(*msg->fields))) == NULL) {
		s->error = ENOMEM;
		s->done = 1;
		return;
	}
	msg->fields = f;
	f = &msg->fields[msg->nfields++];
	f->offset = s->field_start;
	f->len = (size_t)(end - s->field_start);
	f->name_off = s->name_off;
	f->name_len = s->name_len;
	s->field_start = -1;
}

/*
 * The header section ends at header_end; the body starts at body_start
 * (after the empty line when there is one).  A field still open ends
 * where the section does, unless its first line is the one that ended it.
 */
static void
index_end(struct index_scan *s, off_t header_end, off_t body_start)
{
	if (s->field_start != -1 && s->field_start < header_end)
		index_field_close(s, header_end);
	s->field_start = -1;
	s->msg->header_end = header_end;
	s->msg->body_start = body_start;
	s->done = 1;
}

/* The spool ended inside the header section. */
static void
index_finish(struct index_scan *s)
{
	off_t	 end = s->pos;

	/* A last line without its line end is not taken as header. */
	if (s->state != IX_LINE)
		end = s->line_start;
	index_end(s, end, end);
}

/* The view starts as the original fields. */
static int
index_view(struct message *msg)
{
	struct message_entry	*view;
	size_t			 i;

	if (msg->nfields > 0) {
		if ((view = grow(msg->view, &msg->view_cap, msg->nfields,
		    sizeof(*msg->view))) == NULL) {
			index_begin(msg);
			return -1;
		}
		msg->view = view;
	}
	for (i = 0; i < msg->nfields; i++) {
		msg->view[i].field = i;
		msg->view[i].raw = NULL;
		msg->view[i].raw_len = 0;
		msg->view[i].name_len = 0;
	}
	msg->nview = msg->nfields;
	msg->indexed = 1;
	return 0;
}

static int
ensure_indexed(struct message *msg)
{
	return msg->indexed ? 0 : message_index(msg);
}

/* --- Reading the header fields ----------------------------------------- */

size_t
message_header_count(const struct message *msg)
{
	return msg->nview;
}

/* The name of a view entry: original names live in the arena, new ones in raw. */
static const char *
entry_name(const struct message *msg, const struct message_entry *e, size_t *len)
{
	const struct message_field	*f;

	if (e->field == MESSAGE_NEW) {
		*len = e->name_len;
		return e->raw + (e->raw[0] == '.');
	}
	f = &msg->fields[e->field];
	*len = f->name_len;
	return msg->names + f->name_off;
}

int
message_header_get(struct message *msg, size_t pos, const char **name, const char **value)
{
	const struct message_entry	*e;
	const char			*n;
	char				*wire, *p, *end;
	size_t				 len, nlen;

	if (pos >= msg->nview) {
		errno = EINVAL;
		return -1;
	}
	e = &msg->view[pos];
	len = e->field == MESSAGE_NEW ? e->raw_len : msg->fields[e->field].len;
	/* Wire bytes go to the upper half, name and value are built in the lower. */
	if ((p = grow(msg->scratch, &msg->scratch_cap, 2 * len + 2, 1)) == NULL)
		return -1;
	msg->scratch = p;
	wire = msg->scratch + len + 2;
	if (e->field == MESSAGE_NEW)
		memcpy(wire, e->raw, len);
	else if (spool_read(msg->spool, msg->fields[e->field].offset, wire, len) !=
	    (ssize_t)len) {
		errno = EIO;	/* the spool is shorter than when it was indexed */
		return -1;
	}
	n = entry_name(msg, e, &nlen);
	memcpy(msg->scratch, n, nlen);
	msg->scratch[nlen] = '\0';
	/* Past the stuffing dot, the name, white space and the colon. */
	end = wire + len;
	p = wire + (wire[0] == '.') + nlen;
	while (p < end && *p != ':')
		p++;
	if (p < end)
		p++;
	if (p < end && *p == ' ')
		p++;
	if (end > p && end[-1] == '\n')
		end--;
	if (end > p && end[-1] == '\r')
		end--;
	memmove(msg->scratch + nlen + 1, p, (size_t)(end - p));
	msg->scratch[nlen + 1 + (size_t)(end - p)] = '\0';
	*name = msg->scratch;
	*value = msg->scratch + nlen + 1;
	return 0;
}

/* --- Changes ------------------------------------------------------------ */

static int
name_valid(const char *name)
{
	if (name == NULL || *name == '\0')
		return 0;
	for (; *name != '\0'; name++)
		if (!is_ftext((unsigned char)*name))
			return 0;
	return 1;
}

/*
 * Line ends only as folding: "\n" or "\r\n" followed by SP or HTAB, and
 * never a continuation line of white space alone (some readers take it
 * for the empty line that ends the header section).
 */
static int
value_valid(const char *value)
{
	const unsigned char	*p = (const unsigned char *)value;
	const unsigned char	*q;

	for (; *p != '\0'; p++) {
		if (*p == '\r' && p[1] != '\n')
			return 0;
		if (*p != '\n')
			continue;
		if (!is_wsp(p[1]))
			return 0;
		for (q = p + 1; is_wsp(*q); q++)
			;
		if (*q == '\0' || *q == '\r' || *q == '\n')
			return 0;
	}
	return 1;
}

/* "Name: value\r\n" in wire form: folding as CRLF, a leading "." stuffed. */
static int
field_build(const char *name, const char *value, struct message_entry *e)
{
	size_t		 nlen = strlen(name), vlen = strlen(value), lfs = 0, i, o;
	char		*raw;

	for (i = 0; i < vlen; i++)
		lfs += value[i] == '\n';
	if ((raw = malloc(1 + nlen + 2 + vlen + lfs + 2)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	o = 0;
	if (name[0] == '.')
		raw[o++] = '.';
	memcpy(raw + o, name, nlen);
	o += nlen;
	raw[o++] = ':';
	raw[o++] = ' ';
	for (i = 0; i < vlen; i++) {
		if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
			raw[o++] = '\r';
		raw[o++] = value[i];
	}
	raw[o++] = '\r';
	raw[o++] = '\n';
	e->field = MESSAGE_NEW;
	e->raw = raw;
	e->raw_len = o;
	e->name_len = nlen;
	return 0;
}

static int
view_insert(struct message *msg, size_t pos, struct message_entry *e)
{
	struct message_entry	*view;

	if ((view = grow(msg->view, &msg->view_cap, msg->nview + 1, sizeof(*msg->view))) == NULL) {
		free(e->raw);
		return -1;
	}
	msg->view = view;
	memmove(msg->view + pos + 1, msg->view + pos, (msg->nview - pos) * sizeof(*msg->view));
	msg->view[pos] = *e;
	msg->nview++;
	return 0;
}

int
message_header_add(struct message *msg, const char *name, const char *value)
{
	if (ensure_indexed(msg) == -1)
		return -1;
	return message_header_insert(msg, msg->nview, name, value);
}

int
message_header_insert(struct message *msg, size_t pos, const char *name, const char *value)
{
	struct message_entry	 e;

	if (ensure_indexed(msg) == -1)
		return -1;
	if (pos > msg->nview || !name_valid(name) || value == NULL || !value_valid(value)) {
		errno = EINVAL;
		return -1;
	}
	if (field_build(name, value, &e) == -1)
		return -1;
	return view_insert(msg, pos, &e);
}

int
message_header_change(struct message *msg, const char *name, size_t nth, const char *value)
{
	struct message_entry	 e;
	const char		*n;
	size_t			 i, nlen, len;

	if (ensure_indexed(msg) == -1)
		return -1;
	if (!name_valid(name) || nth == 0 || (value != NULL && !value_valid(value))) {
		errno = EINVAL;
		return -1;
	}
	len = strlen(name);
	for (i = 0; i < msg->nview; i++) {
		n = entry_name(msg, &msg->view[i], &nlen);
		if (nlen == len && strncasecmp(n, name, len) == 0 && --nth == 0)
			break;
	}
	if (i == msg->nview) {
		errno = EINVAL;
		return -1;
	}
	if (value != NULL && field_build(name, value, &e) == -1)
		return -1;
	free(msg->view[i].raw);
	if (value != NULL) {
		msg->view[i] = e;
		return 0;
	}
	memmove(msg->view + i, msg->view + i + 1, (msg->nview - i - 1) * sizeof(*msg->view));
	msg->nview--;
	return 0;
}

/*
 * Prepended bytes are wire form too: whole CRLF lines, no bare CR or LF,
 * and no line that is a lone "." (it would end the message early).
 */
static int
raw_valid(const char *raw, size_t len)
{
	size_t	 i, line = 0;

	if (len < 2 || raw[len - 2] != '\r' || raw[len - 1] != '\n')
		return 0;
	for (i = 0; i < len; i++) {
		if (raw[i] == '\r' && (i + 1 == len || raw[i + 1] != '\n'))
			return 0;
		if (raw[i] != '\n')
			continue;
		if (i == 0 || raw[i - 1] != '\r' || (i - line == 2 && raw[line] == '.'))
			return 0;
		line = i + 1;
	}
	return 1;
}

int
message_prepend(struct message *msg, const char *raw, size_t len)
{
	char	*p;

	if (raw == NULL || !raw_valid(raw, len) || len > SIZE_MAX - msg->prepend_len) {
		errno = EINVAL;
		return -1;
	}
	if ((p = malloc(len + msg->prepend_len)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	/* Each call goes before what earlier calls prepended. */
	memcpy(p, raw, len);
	if (msg->prepend_len > 0)
		memcpy(p + len, msg->prepend, msg->prepend_len);
	free(msg->prepend);
	msg->prepend = p;
	msg->prepend_len += len;
	return 0;
}

/* --- Body replacement and reading -------------------------------------- */

int
message_body_replace(struct message *msg, const unsigned char *data, size_t len)
{
	if (ensure_indexed(msg) == -1)
		return -1;
	if (msg->body == NULL &&
	    (msg->body = spool_new(msg->limits.mem_limit, msg->dir)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	return body_put(msg, data, len);
}

int
message_body_replaced(const struct message *msg)
{
	return msg->body != NULL;
}

/*
 * Store replacement bytes in wire form: a "." starting a line is doubled,
 * and a bare CR or LF becomes CRLF, so nothing a filter passes can end the
 * message early or make the backend see a boundary we did not write.  A
 * CR is stored at once; the LF it lacks is added when the next byte (maybe
 * in the next call) is not one.
 */
static int
body_put(struct message *msg, const void *data, size_t len)
{
	const unsigned char	*p = data, *end = p + len, *run = p;
	int			 c, r = 0;

	while (p < end && r == 0) {
		c = *p;
		if (msg->body_cr) {
			msg->body_cr = 0;
			msg->body_line_start = 1;
			if (c == '\n') {
				p++;
				continue;
			}
			r = spool_append(msg->body, run, (size_t)(p - run));
			if (r == 0)
				r = spool_append(msg->body, crlf + 1, 1);
			run = p;
			continue;
		}
		if (msg->body_line_start && c == '.') {
			r = spool_append(msg->body, run, (size_t)(p - run));
			if (r == 0)
				r = spool_append(msg->body, ".", 1);
			run = p;
		}
		msg->body_line_start = 0;
		if (c == '\r')
			msg->body_cr = 1;
		else if (c == '\n') {
			if ((r = spool_append(msg->body, run, (size_t)(p - run))) == 0)
				r = spool_append(msg->body, crlf, 1);
			run = p;
			msg->body_line_start = 1;
		}
		p++;
	}
	if (r == 0)
		r = spool_append(msg->body, run, (size_t)(end - run));
	return r;
}

/* Drop the "." that starts a line, in place; *line_start carries across calls. */
static size_t
unstuff(unsigned char *p, size_t n, int *line_start)
{
	size_t	 i, o = 0;

	for (i = 0; i < n; i++) {
		if (*line_start && p[i] == '.') {
			*line_start = 0;
			continue;
		}
		*line_start = p[i] == '\n';
		p[o++] = p[i];
	}
	return o;
}

void
message_body_cursor(const struct message *msg, struct message_cursor *cursor)
{
	cursor->offset = msg->body_start;
	cursor->at_line_start = 1;
}

ssize_t
message_body_read(struct message *msg, struct message_cursor *cursor, unsigned char *buf,
    size_t cap)
{
	ssize_t	 n;
	size_t	 o;

	if (cap > SSIZE_MAX)
		cap = SSIZE_MAX;
	/* A chunk that was all stuffing dots yields nothing: read on. */
	do {
		if ((n = spool_read(msg->spool, cursor->offset, buf, cap)) <= 0)
			return n;
		cursor->offset += n;
		o = unstuff(buf, (size_t)n, &cursor->at_line_start);
	} while (o == 0);
	return (ssize_t)o;
}

/* --- Writing ------------------------------------------------------------ */

void
message_writer_init(struct message_writer *w, struct message *msg, int flags)
{
	memset(w, 0, sizeof(*w));
	w->msg = msg;
	w->flags = flags;
	w->step = WR_PREPEND;
	w->at_line_start = 1;
}

int
message_writer_next(struct message_writer *w, struct evbuffer *out, size_t max)
{
	struct writer_range	 r;
	size_t			 budget = max != 0 ? max : SIZE_MAX;
	ssize_t			 n;

	while (budget > 0 && writer_range(w, &r)) {
		if ((n = writer_emit(w, out, &r, budget)) == -1)
			return -1;
		budget -= (size_t)n;
		w->offset += n;
		if ((size_t)w->offset == r.len)
			writer_advance(w, &r);
	}
	if (writer_range(w, &r))
		return 1;
	if (w->pending_cr) {
		/* A CR that ended the message had no LF to go with. */
		w->pending_cr = 0;
		if (evbuffer_add(out, crlf, 1) == -1) {
			errno = ENOMEM;
			return -1;
		}
	}
	return 0;
}

/*
 * The range the writer is in, from w->step and w->item; 0 when all is
 * written.  Empty parts are skipped here.
 */
static int
writer_range(struct message_writer *w, struct writer_range *r)
{
	struct message	*msg = w->msg;

	for (;;) {
		memset(r, 0, sizeof(*r));
		switch (w->step) {
		case WR_PREPEND:
			r->mem = (const unsigned char *)msg->prepend;
			r->len = msg->prepend_len;
			break;
		case WR_HEADERS:
			if (w->item < msg->nview)
				writer_headers_range(w, r);
			break;
		case WR_SEPARATOR:
			if (msg->body != NULL) {
				r->mem = crlf;
				r->len = 2;
			}
			break;
		case WR_BODY:
			r->spool = msg->body != NULL ? msg->body : msg->spool;
			r->start = msg->body != NULL ? 0 : msg->header_end;
			r->len = spool_size(r->spool) - (size_t)r->start;
			break;
		case WR_FIXUP:
			/* The replacement must end with a line end before the final dot. */
			if (msg->body != NULL && (msg->body_cr || !msg->body_line_start)) {
				r->mem = msg->body_cr ? crlf + 1 : crlf;
				r->len = msg->body_cr ? 1 : 2;
			}
			break;
		default:
			return 0;
		}
		if (r->len > 0)
			return 1;
		w->step++;
		w->item = 0;
		w->offset = 0;
	}
}

/*
 * The header range at w->item: a new field, or a run of original fields
 * still adjacent in the spool.  A run that reaches the end of the header
 * section of an unreplaced message takes the body along, so an unedited
 * message is one range.
 */
static void
writer_headers_range(struct message_writer *w, struct writer_range *r)
{
	struct message			*msg = w->msg;
	const struct message_entry	*e = &msg->view[w->item];
	const struct message_field	*f;
	size_t				 k = w->item;
	off_t				 end;

	if (e->field == MESSAGE_NEW) {
		r->mem = (const unsigned char *)e->raw;
		r->len = e->raw_len;
		r->next_item = k + 1;
		return;
	}
	r->spool = msg->spool;
	r->start = msg->fields[e->field].offset;
	end = r->start;
	for (; k < msg->nview && msg->view[k].field != MESSAGE_NEW; k++) {
		f = &msg->fields[msg->view[k].field];
		if (f->offset != end)
			break;
		end += (off_t)f->len;
	}
	if (k == msg->nview && end == msg->header_end && msg->body == NULL) {
		end = (off_t)spool_size(msg->spool);
		r->to_end = 1;
	}
	r->len = (size_t)(end - r->start);
	r->next_item = k;
}

/* The range r is written: on to the next one. */
static void
writer_advance(struct message_writer *w, const struct writer_range *r)
{
	w->offset = 0;
	if (w->step != WR_HEADERS) {
		w->step++;
		return;
	}
	w->item = r->next_item;
	if (r->to_end)
		w->step = WR_DONE;
}

/*
 * Add up to budget bytes of r, from w->offset on, to out.  Without flags
 * the bytes are handed over as they are (spool ranges without copying);
 * with flags they are copied and converted.  Returns input bytes used.
 */
static ssize_t
writer_emit(struct message_writer *w, struct evbuffer *out, const struct writer_range *r,
    size_t budget)
{
	struct evbuffer_iovec	 v;
	size_t			 n = r->len - (size_t)w->offset;
	unsigned char		*dst;

	if (n > budget)
		n = budget;
	if (w->flags == 0 && r->mem == NULL)
		return spool_add_to(r->spool, r->start + w->offset, n, out) == -1 ? -1 :
		    (ssize_t)n;
	if (w->flags == 0)
		return evbuffer_add(out, r->mem + w->offset, n) == -1 ? -1 : (ssize_t)n;
	if (n > MESSAGE_COPY_CHUNK)
		n = MESSAGE_COPY_CHUNK;
	/* One spare byte in front for a CR held back from the last call. */
	if (evbuffer_reserve_space(out, (ev_ssize_t)n + 1, &v, 1) < 1) {
		errno = ENOMEM;
		return -1;
	}
	dst = v.iov_base;
	if (r->mem != NULL)
		memcpy(dst + 1, r->mem + w->offset, n);
	else if (spool_read(r->spool, r->start + w->offset, dst + 1, n) != (ssize_t)n) {
		if (errno == 0)
			errno = EIO;
		return -1;
	}
	v.iov_len = writer_convert(w, dst, dst + 1, n);
	if (evbuffer_commit_space(out, &v, 1) == -1) {
		errno = ENOMEM;
		return -1;
	}
	return (ssize_t)n;
}

/*
 * Undo stuffing and/or turn CRLF into LF, from src to dst = src - 1.
 * Output never overtakes input: each byte gives at most one, except a CR
 * held from the previous call, which the spare byte in front makes room for.
 */
static size_t
writer_convert(struct message_writer *w, unsigned char *dst, const unsigned char *src, size_t n)
{
	size_t	 i, o = 0;
	int	 c;

	for (i = 0; i < n; i++) {
		c = src[i];
		if (w->pending_cr) {
			w->pending_cr = 0;
			if (c != '\n')
				dst[o++] = '\r';
		}
		if ((w->flags & MESSAGE_WRITE_UNSTUFF) && w->at_line_start && c == '.') {
			w->at_line_start = 0;
			continue;
		}
		w->at_line_start = c == '\n';
		if ((w->flags & MESSAGE_WRITE_LF) && c == '\r') {
			w->pending_cr = 1;
			continue;
		}
		dst[o++] = (unsigned char)c;
	}
	return o;
}
