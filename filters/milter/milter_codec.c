/*
 * milter_codec.c - encoding and decoding of milter protocol frames (see
 * milter_codec.h).  Nothing here trusts a length it did not check.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "milter_codec.h"

static int	 buf_reserve(struct milter_buf *, size_t);
static void	 put_u32(unsigned char *, uint32_t);
static uint32_t	 get_u32(const unsigned char *);
static int	 frame_begin(struct milter_buf *, unsigned char, size_t, unsigned char **);
static size_t	 strings_size(const char *const *, size_t);
static unsigned char *strings_copy(unsigned char *, const char *const *, size_t);
static int	 reader_start_frame(struct milter_reader *, const char **);
static size_t	 string_end(const unsigned char *, size_t);
static int	 take_string(const unsigned char **, size_t *, const char **);
static int	 take_strings(const unsigned char *, size_t, struct milter_strings *);
static int	 decode_optneg(const struct milter_frame *, enum milter_side,
		    struct milter_msg *, const char **);
static int	 decode_connect(const struct milter_frame *, struct milter_msg *,
		    const char **);
static int	 decode_macros(const struct milter_frame *, struct milter_msg *,
		    const char **);
static int	 decode_strings(const struct milter_frame *, struct milter_msg *, int, int,
		    const char **);
static int	 decode_header_at(const struct milter_frame *, struct milter_msg *,
		    const char **);
static int	 decode_command(const struct milter_frame *, struct milter_msg *,
		    const char **);
static int	 decode_reply(const struct milter_frame *, struct milter_msg *,
		    const char **);

/* --- Buffers ------------------------------------------------------------- */

void
milter_buf_init(struct milter_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void
milter_buf_reset(struct milter_buf *b)
{
	b->len = 0;
}

void
milter_buf_free(struct milter_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static int
buf_reserve(struct milter_buf *b, size_t more)
{
	size_t		 cap;
	unsigned char	*p;

	if (more > SIZE_MAX - b->len)
		return -1;
	if (b->len + more <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap = cap > SIZE_MAX / 2 ? b->len + more : cap * 2;
	if ((p = realloc(b->data, cap)) == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Start a frame of datalen data bytes: length and code written, *out
 * points where the data goes (the caller fills exactly datalen bytes).
 */
static int
frame_begin(struct milter_buf *b, unsigned char code, size_t datalen, unsigned char **out)
{
	unsigned char	*p;

	if (datalen >= MILTER_FRAME_MAX || buf_reserve(b, 5 + datalen) == -1)
		return -1;
	p = b->data + b->len;
	put_u32(p, (uint32_t)(datalen + 1));
	p[4] = code;
	b->len += 5 + datalen;
	*out = p + 5;
	return 0;
}

/* --- Encoding ------------------------------------------------------------- */

int
milter_put_empty(struct milter_buf *b, unsigned char code)
{
	unsigned char	*p;

	return frame_begin(b, code, 0, &p);
}

int
milter_put_optneg(struct milter_buf *b, uint32_t version, uint32_t actions, uint32_t protocol)
{
	unsigned char	*p;

	if (frame_begin(b, MILTER_CMD_OPTNEG, 12, &p) == -1)
		return -1;
	put_u32(p, version);
	put_u32(p + 4, actions);
	put_u32(p + 8, protocol);
	return 0;
}

int
milter_put_optneg_reply(struct milter_buf *b, uint32_t version, uint32_t actions,
    uint32_t protocol, const char *const *lists)
{
	size_t		 len = 12, n, i;
	unsigned char	*p;

	for (i = 0; lists != NULL && i < MILTER_STAGES; i++)
		if (lists[i] != NULL) {
			if ((n = strlen(lists[i])) >= MILTER_FRAME_MAX)
				return -1;
			len += 4 + n + 1;
		}
	if (frame_begin(b, MILTER_REPLY_OPTNEG, len, &p) == -1)
		return -1;
	put_u32(p, version);
	put_u32(p + 4, actions);
	put_u32(p + 8, protocol);
	p += 12;
	for (i = 0; lists != NULL && i < MILTER_STAGES; i++)
		if (lists[i] != NULL) {
			n = strlen(lists[i]) + 1;
			put_u32(p, (uint32_t)i);
			memcpy(p + 4, lists[i], n);
			p += 4 + n;
		}
	return 0;
}

/* The bytes of n strings with their NULs, or SIZE_MAX (NULL or too long). */
static size_t
strings_size(const char *const *v, size_t n)
{
	size_t	 len = 0, i, l;

	for (i = 0; i < n; i++) {
		if (v[i] == NULL || (l = strlen(v[i])) >= MILTER_FRAME_MAX ||
		    len + l + 1 >= MILTER_FRAME_MAX)
			return SIZE_MAX;
		len += l + 1;
	}
	return len;
}

static unsigned char *
strings_copy(unsigned char *p, const char *const *v, size_t n)
{
	size_t	 i, l;

	for (i = 0; i < n; i++) {
		l = strlen(v[i]) + 1;
		memcpy(p, v[i], l);
		p += l;
	}
	return p;
}

int
milter_put_macros(struct milter_buf *b, unsigned char stage, const char *const *nv, size_t n)
{
	size_t		 len;
	unsigned char	*p;

	if (n > MILTER_FRAME_MAX || (len = strings_size(nv, 2 * n)) == SIZE_MAX ||
	    frame_begin(b, MILTER_CMD_MACRO, 1 + len, &p) == -1)
		return -1;
	*p = stage;
	strings_copy(p + 1, nv, 2 * n);
	return 0;
}

int
milter_put_connect(struct milter_buf *b, const char *host, unsigned char family, uint16_t port,
    const char *address)
{
	const char	*v[2] = { host, address };
	size_t		 len;
	unsigned char	*p;

	if (family == MILTER_FAMILY_UNKNOWN) {
		if ((len = strings_size(v, 1)) == SIZE_MAX ||
		    frame_begin(b, MILTER_CMD_CONNECT, len + 1, &p) == -1)
			return -1;
		p = strings_copy(p, v, 1);
		*p = family;
		return 0;
	}
	if ((len = strings_size(v, 2)) == SIZE_MAX ||
	    frame_begin(b, MILTER_CMD_CONNECT, len + 3, &p) == -1)
		return -1;
	p = strings_copy(p, v, 1);
	*p++ = family;
	*p++ = (unsigned char)(port >> 8);
	*p++ = (unsigned char)port;
	strings_copy(p, v + 1, 1);
	return 0;
}

int
milter_put_string(struct milter_buf *b, unsigned char code, const char *s)
{
	return milter_put_argv(b, code, &s, 1);
}

int
milter_put_strings2(struct milter_buf *b, unsigned char code, const char *s1, const char *s2)
{
	const char	*v[2] = { s1, s2 };

	return milter_put_argv(b, code, v, s2 != NULL ? 2 : 1);
}

int
milter_put_argv(struct milter_buf *b, unsigned char code, const char *const *argv, size_t argc)
{
	size_t		 len;
	unsigned char	*p;

	if ((len = strings_size(argv, argc)) == SIZE_MAX || frame_begin(b, code, len, &p) == -1)
		return -1;
	strings_copy(p, argv, argc);
	return 0;
}

int
milter_put_header(struct milter_buf *b, unsigned char code, const char *name, const char *value)
{
	if (value == NULL)
		return -1;
	return milter_put_strings2(b, code, name, value);
}

int
milter_put_header_at(struct milter_buf *b, unsigned char code, uint32_t index, const char *name,
    const char *value)
{
	const char	*v[2] = { name, value };
	size_t		 len;
	unsigned char	*p;

	if ((len = strings_size(v, 2)) == SIZE_MAX || frame_begin(b, code, 4 + len, &p) == -1)
		return -1;
	put_u32(p, index);
	strings_copy(p + 4, v, 2);
	return 0;
}

int
milter_put_data(struct milter_buf *b, unsigned char code, const void *data, size_t len)
{
	unsigned char	*p;

	if ((code == MILTER_CMD_BODY && len > MILTER_CHUNK_MAX) || (data == NULL && len > 0) ||
	    frame_begin(b, code, len, &p) == -1)
		return -1;
	if (len > 0)
		memcpy(p, data, len);
	return 0;
}

/* --- Framing -------------------------------------------------------------- */

void
milter_reader_init(struct milter_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max != 0 && max < MILTER_FRAME_MAX ? max : MILTER_FRAME_MAX;
}

void
milter_reader_free(struct milter_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = 0;
}

int
milter_reader_idle(const struct milter_reader *r)
{
	return r->headlen == 0;
}

/* The length is complete: check it and make room for the frame. */
static int
reader_start_frame(struct milter_reader *r, const char **why)
{
	uint32_t	 n = get_u32(r->head);
	unsigned char	*p;

	if (n == 0) {
		*why = "frame length 0 (no command byte)";
		return -1;
	}
	if (n > r->max) {
		*why = "frame longer than the protocol allows";
		return -1;
	}
	if (n > r->cap) {
		if ((p = realloc(r->buf, n)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		r->buf = p;
		r->cap = n;
	}
	r->need = n;
	r->have = 0;
	return 0;
}

int
milter_reader_feed(struct milter_reader *r, const void *data, size_t len, size_t *used,
    struct milter_frame *frame, const char **why)
{
	const unsigned char	*p = data;
	size_t			 n, off = 0;

	*used = 0;
	if (r->failed) {
		*why = "stream already failed";
		return MILTER_READ_ERROR;
	}
	while (r->headlen < 4) {
		if (off == len) {
			*used = off;
			return MILTER_READ_MORE;
		}
		r->head[r->headlen++] = p[off++];
		if (r->headlen == 4 && reader_start_frame(r, why) == -1) {
			r->failed = 1;
			*used = off;
			return MILTER_READ_ERROR;
		}
	}
	n = r->need - r->have < len - off ? r->need - r->have : len - off;
	if (n > 0)
		memcpy(r->buf + r->have, p + off, n);
	r->have += n;
	off += n;
	*used = off;
	if (r->have < r->need)
		return MILTER_READ_MORE;
	frame->code = r->buf[0];
	frame->data = r->buf + 1;
	frame->len = r->need - 1;
	r->headlen = 0;
	return MILTER_READ_FRAME;
}

/* --- Decoding ------------------------------------------------------------- */

/* Offset just past the NUL of the string at p, or 0 when it does not end. */
static size_t
string_end(const unsigned char *p, size_t len)
{
	const unsigned char	*nul = memchr(p, '\0', len);

	return nul != NULL ? (size_t)(nul - p) + 1 : 0;
}

/* Take one string from the front of (*p, *len). */
static int
take_string(const unsigned char **p, size_t *len, const char **out)
{
	size_t	 n = *len > 0 ? string_end(*p, *len) : 0;

	if (n == 0)
		return -1;
	*out = (const char *)*p;
	*p += n;
	*len -= n;
	return 0;
}

/* The whole of (p, len) as strings, every one NUL-terminated. */
static int
take_strings(const unsigned char *p, size_t len, struct milter_strings *s)
{
	size_t	 off = 0, n;

	s->data = (const char *)p;
	s->len = len;
	s->count = 0;
	while (off < len) {
		if ((n = string_end(p + off, len - off)) == 0)
			return -1;
		off += n;
		s->count++;
	}
	return 0;
}

const char *
milter_strings_next(const struct milter_strings *s, size_t *pos)
{
	const char	*str;

	if (*pos >= s->len)
		return NULL;
	str = s->data + *pos;
	*pos += strlen(str) + 1;
	return str;
}

int
milter_macro_list_next(const struct milter_msg *msg, size_t *pos, uint32_t *stage,
    const char **list)
{
	const unsigned char	*p = msg->macro_lists;

	if (p == NULL || *pos + 4 >= msg->macro_lists_len)
		return 0;
	*stage = get_u32(p + *pos);
	*list = (const char *)(p + *pos + 4);
	*pos += 4 + strlen(*list) + 1;
	return 1;
}

static int
decode_optneg(const struct milter_frame *f, enum milter_side side, struct milter_msg *m,
    const char **why)
{
	const unsigned char	*p = f->data + 12;
	size_t			 len = f->len - 12;
	const char		*list;

	if (f->len < 12 || (side == MILTER_FROM_MTA && f->len != 12)) {
		*why = "option negotiation of the wrong size";
		return -1;
	}
	m->version = get_u32(f->data);
	m->actions = get_u32(f->data + 4);
	m->protocol = get_u32(f->data + 8);
	if (side == MILTER_FROM_MTA)
		return 0;
	/* The filter's answer may go on with (stage, "name list") pairs. */
	m->macro_lists = p;
	m->macro_lists_len = len;
	while (len > 0) {
		if (len < 5) {
			*why = "truncated macro list in option negotiation";
			return -1;
		}
		p += 4;
		len -= 4;
		if (take_string(&p, &len, &list) == -1) {
			*why = "macro list in option negotiation not terminated";
			return -1;
		}
	}
	if (m->macro_lists_len == 0)
		m->macro_lists = NULL;
	return 0;
}

static int
decode_connect(const struct milter_frame *f, struct milter_msg *m, const char **why)
{
	const unsigned char	*p = f->data;
	size_t			 len = f->len;

	if (take_string(&p, &len, &m->s1) == -1 || len < 1) {
		*why = "truncated connect";
		return -1;
	}
	m->family = *p++;
	len--;
	if (m->family == MILTER_FAMILY_UNKNOWN) {
		if (len != 0) {
			*why = "connect with unknown family has trailing data";
			return -1;
		}
		return 0;
	}
	if (m->family != MILTER_FAMILY_INET && m->family != MILTER_FAMILY_INET6 &&
	    m->family != MILTER_FAMILY_UNIX) {
		*why = "connect with an unknown address family";
		return -1;
	}
	if (len < 2) {
		*why = "truncated connect";
		return -1;
	}
	m->port = (uint16_t)(p[0] << 8 | p[1]);
	p += 2;
	len -= 2;
	if (take_string(&p, &len, &m->s2) == -1 || len != 0) {
		*why = "connect address not a single string";
		return -1;
	}
	return 0;
}

static int
decode_macros(const struct milter_frame *f, struct milter_msg *m, const char **why)
{
	if (f->len < 1) {
		*why = "macro frame without a stage";
		return -1;
	}
	m->stage = f->data[0];
	if (take_strings(f->data + 1, f->len - 1, &m->strings) == -1 ||
	    m->strings.count % 2 != 0) {
		*why = "macro frame not made of name/value string pairs";
		return -1;
	}
	return 0;
}

/* Between min and max strings filling the data exactly, into s1/s2/strings. */
static int
decode_strings(const struct milter_frame *f, struct milter_msg *m, int min, int max,
    const char **why)
{
	size_t	 pos = 0;

	if (take_strings(f->data, f->len, &m->strings) == -1) {
		*why = "string not terminated";
		return -1;
	}
	if (m->strings.count < (size_t)min || (max > 0 && m->strings.count > (size_t)max)) {
		*why = "wrong number of strings";
		return -1;
	}
	m->s1 = milter_strings_next(&m->strings, &pos);
	m->s2 = milter_strings_next(&m->strings, &pos);
	if (max > 0 && max <= 2)
		memset(&m->strings, 0, sizeof(m->strings));
	return 0;
}

static int
decode_header_at(const struct milter_frame *f, struct milter_msg *m, const char **why)
{
	struct milter_frame	 rest;

	if (f->len < 4) {
		*why = "header change without an index";
		return -1;
	}
	m->index = get_u32(f->data);
	rest.code = f->code;
	rest.data = f->data + 4;
	rest.len = f->len - 4;
	return decode_strings(&rest, m, 2, 2, why);
}

static int
decode_command(const struct milter_frame *f, struct milter_msg *m, const char **why)
{
	switch (f->code) {
	case MILTER_CMD_ABORT:
	case MILTER_CMD_DATA:
	case MILTER_CMD_EOH:
	case MILTER_CMD_QUIT:
	case MILTER_CMD_QUIT_NC:
		if (f->len != 0) {
			*why = "command carries unexpected data";
			return -1;
		}
		return 0;
	case MILTER_CMD_BODY:
	case MILTER_CMD_BODYEOB:
		m->data = f->data;
		m->len = f->len;
		return 0;
	case MILTER_CMD_OPTNEG:
		return decode_optneg(f, MILTER_FROM_MTA, m, why);
	case MILTER_CMD_CONNECT:
		return decode_connect(f, m, why);
	case MILTER_CMD_MACRO:
		return decode_macros(f, m, why);
	case MILTER_CMD_HELO:
	case MILTER_CMD_UNKNOWN:
		return decode_strings(f, m, 1, 1, why);
	case MILTER_CMD_MAIL:
	case MILTER_CMD_RCPT:
		return decode_strings(f, m, 1, 0, why);
	case MILTER_CMD_HEADER:
		return decode_strings(f, m, 2, 2, why);
	default:
		*why = "unknown command code";
		return -1;
	}
}

static int
decode_reply(const struct milter_frame *f, struct milter_msg *m, const char **why)
{
	switch (f->code) {
	case MILTER_REPLY_ACCEPT:
	case MILTER_REPLY_CONTINUE:
	case MILTER_REPLY_DISCARD:
	case MILTER_REPLY_REJECT:
	case MILTER_REPLY_TEMPFAIL:
	case MILTER_REPLY_SKIP:
	case MILTER_REPLY_PROGRESS:
	case MILTER_REPLY_CONN_FAIL:
	case MILTER_REPLY_SHUTDOWN:
		if (f->len != 0) {
			*why = "reply carries unexpected data";
			return -1;
		}
		return 0;
	case MILTER_REPLY_OPTNEG:
		return decode_optneg(f, MILTER_FROM_FILTER, m, why);
	case MILTER_REPLY_REPLYCODE:
	case MILTER_REPLY_ADDRCPT:
	case MILTER_REPLY_DELRCPT:
	case MILTER_REPLY_QUARANTINE:
		return decode_strings(f, m, 1, 1, why);
	case MILTER_REPLY_CHGFROM:
	case MILTER_REPLY_ADDRCPT_PAR:
	case MILTER_REPLY_ADDHEADER:
		return decode_strings(f, m, f->code == MILTER_REPLY_ADDHEADER ? 2 : 1, 2, why);
	case MILTER_REPLY_INSHEADER:
	case MILTER_REPLY_CHGHEADER:
		return decode_header_at(f, m, why);
	case MILTER_REPLY_REPLBODY:
		m->data = f->data;
		m->len = f->len;
		return 0;
	default:
		*why = "unknown reply code";
		return -1;
	}
}

int
milter_decode(const struct milter_frame *f, enum milter_side side, struct milter_msg *m,
    const char **why)
{
	memset(m, 0, sizeof(*m));
	m->code = f->code;
	if (side == MILTER_FROM_MTA)
		return decode_command(f, m, why);
	return decode_reply(f, m, why);
}

const char *
milter_code_name(unsigned char code, enum milter_side side)
{
	static const struct {
		unsigned char	 code;
		const char	*name;
	} commands[] = {
		{ 'A', "abort" }, { 'B', "body" }, { 'C', "connect" }, { 'D', "macro" },
		{ 'E', "end of message" }, { 'H', "helo" }, { 'K', "quit_nc" },
		{ 'L', "header" }, { 'M', "mail" }, { 'N', "end of headers" },
		{ 'O', "option negotiation" }, { 'Q', "quit" }, { 'R', "rcpt" },
		{ 'T', "data" }, { 'U', "unknown" }
	}, replies[] = {
		{ '+', "addrcpt" }, { '-', "delrcpt" }, { '2', "addrcpt_par" },
		{ '4', "shutdown" }, { 'a', "accept" }, { 'b', "replbody" },
		{ 'c', "continue" }, { 'd', "discard" }, { 'e', "chgfrom" },
		{ 'f', "conn_fail" }, { 'h', "addheader" }, { 'i', "insheader" },
		{ 'm', "chgheader" }, { 'O', "optneg" }, { 'p', "progress" },
		{ 'q', "quarantine" }, { 'r', "reject" }, { 's', "skip" },
		{ 't', "tempfail" }, { 'y', "replycode" }
	};
	size_t	 i;

	if (side == MILTER_FROM_MTA) {
		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (commands[i].code == code)
				return commands[i].name;
	} else {
		for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
			if (replies[i].code == code)
				return replies[i].name;
	}
	return "unknown";
}
