/*
 * milter_codec.h - the Sendmail milter wire protocol, version 6: frames,
 * every command (MTA to filter) and every reply (filter to MTA), encoded
 * and decoded.  Pure code: no I/O, no event loop, no sluice API, so the
 * milter client filter and the milter front door (sluice-milter) share it.
 *
 * A frame is a 32-bit big-endian length (the command byte plus the data),
 * one command byte, then the data.  Strings are NUL-terminated, integers
 * big-endian.  LIBRARIES.md 1b has the layout of each frame.
 *
 * Encoding: each milter_put_*() appends one whole frame to a struct
 * milter_buf and returns 0, or -1 when an argument cannot be encoded (a
 * frame over MILTER_FRAME_MAX, a body chunk over MILTER_CHUNK_MAX, a NULL
 * string) or memory ran out; the buffer is then left as it was.
 *
 * Decoding: struct milter_reader cuts frames out of a byte stream fed in
 * pieces of any size; milter_decode() checks one frame against the layout
 * of its code and fills a struct milter_msg whose pointers point into the
 * frame (valid as long as the frame is).  Hostile input is refused with a
 * sentence for the log, never trusted: every length is checked, every
 * string must end inside its frame, trailing bytes are an error.
 */
#ifndef SLUICE_MILTER_CODEC_H
#define SLUICE_MILTER_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* The protocol version we speak (and the highest there is). */
#define MILTER_VERSION		6u
/* Largest body chunk (SMFIC_BODY data) an MTA sends. */
#define MILTER_CHUNK_MAX	65535u
/* Largest frame length we accept or produce: command byte plus 1 MiB - 1. */
#define MILTER_FRAME_MAX	(1024u * 1024u)

/* Commands, MTA to filter (SMFIC_*). */
#define MILTER_CMD_ABORT	'A'	/* end of transaction; no reply */
#define MILTER_CMD_BODY		'B'	/* body chunk */
#define MILTER_CMD_CONNECT	'C'	/* client host, family, port, address */
#define MILTER_CMD_MACRO	'D'	/* macros for the next command; no reply */
#define MILTER_CMD_BODYEOB	'E'	/* end of message */
#define MILTER_CMD_HELO		'H'	/* HELO/EHLO argument */
#define MILTER_CMD_QUIT_NC	'K'	/* quit, a new connection follows; no reply */
#define MILTER_CMD_HEADER	'L'	/* one header field */
#define MILTER_CMD_MAIL		'M'	/* MAIL FROM argv */
#define MILTER_CMD_EOH		'N'	/* end of headers */
#define MILTER_CMD_OPTNEG	'O'	/* option negotiation */
#define MILTER_CMD_QUIT		'Q'	/* quit; no reply */
#define MILTER_CMD_RCPT		'R'	/* RCPT TO argv */
#define MILTER_CMD_DATA		'T'	/* DATA command */
#define MILTER_CMD_UNKNOWN	'U'	/* a command the MTA did not know */

/* Replies, filter to MTA (SMFIR_*). */
#define MILTER_REPLY_ADDRCPT	'+'	/* add recipient */
#define MILTER_REPLY_DELRCPT	'-'	/* delete recipient */
#define MILTER_REPLY_ADDRCPT_PAR '2'	/* add recipient with ESMTP args */
#define MILTER_REPLY_SHUTDOWN	'4'	/* 421 and close */
#define MILTER_REPLY_ACCEPT	'a'	/* accept */
#define MILTER_REPLY_REPLBODY	'b'	/* replace body (chunks append) */
#define MILTER_REPLY_CONTINUE	'c'	/* continue */
#define MILTER_REPLY_DISCARD	'd'	/* discard the message */
#define MILTER_REPLY_CHGFROM	'e'	/* change sender */
#define MILTER_REPLY_CONN_FAIL	'f'	/* cause a connection failure */
#define MILTER_REPLY_ADDHEADER	'h'	/* append header */
#define MILTER_REPLY_INSHEADER	'i'	/* insert header at index */
#define MILTER_REPLY_CHGHEADER	'm'	/* change/delete the index-th header */
#define MILTER_REPLY_OPTNEG	'O'	/* option negotiation answer */
#define MILTER_REPLY_PROGRESS	'p'	/* still working: restart the timer */
#define MILTER_REPLY_QUARANTINE	'q'	/* quarantine with a reason */
#define MILTER_REPLY_REJECT	'r'	/* reject */
#define MILTER_REPLY_SKIP	's'	/* skip further events of this kind */
#define MILTER_REPLY_TEMPFAIL	't'	/* tempfail */
#define MILTER_REPLY_REPLYCODE	'y'	/* "550 5.7.1 text" */

/* Actions a filter may ask for (SMFIF_*), offered by the MTA in OPTNEG. */
#define MILTER_ACT_ADDHDRS	0x001u	/* add headers */
#define MILTER_ACT_CHGBODY	0x002u	/* replace the body */
#define MILTER_ACT_ADDRCPT	0x004u	/* add recipients */
#define MILTER_ACT_DELRCPT	0x008u	/* delete recipients */
#define MILTER_ACT_CHGHDRS	0x010u	/* change or delete headers */
#define MILTER_ACT_QUARANTINE	0x020u	/* quarantine */
#define MILTER_ACT_CHGFROM	0x040u	/* change the sender */
#define MILTER_ACT_ADDRCPT_PAR	0x080u	/* add recipients with ESMTP args */
#define MILTER_ACT_SETSYMLIST	0x100u	/* send macro lists in OPTNEG */
#define MILTER_ACT_ALL		0x1ffu

/* Protocol steps (SMFIP_*): NO* = do not send it, NR_* = no reply to it. */
#define MILTER_PROTO_NOCONNECT	0x00000001u
#define MILTER_PROTO_NOHELO	0x00000002u
#define MILTER_PROTO_NOMAIL	0x00000004u
#define MILTER_PROTO_NORCPT	0x00000008u
#define MILTER_PROTO_NOBODY	0x00000010u
#define MILTER_PROTO_NOHDRS	0x00000020u
#define MILTER_PROTO_NOEOH	0x00000040u
#define MILTER_PROTO_NR_HDR	0x00000080u
#define MILTER_PROTO_NOUNKNOWN	0x00000100u
#define MILTER_PROTO_NODATA	0x00000200u
#define MILTER_PROTO_SKIP	0x00000400u	/* MTA understands SMFIR_SKIP */
#define MILTER_PROTO_RCPT_REJ	0x00000800u	/* also send rejected RCPTs */
#define MILTER_PROTO_NR_CONN	0x00001000u
#define MILTER_PROTO_NR_HELO	0x00002000u
#define MILTER_PROTO_NR_MAIL	0x00004000u
#define MILTER_PROTO_NR_RCPT	0x00008000u
#define MILTER_PROTO_NR_DATA	0x00010000u
#define MILTER_PROTO_NR_UNKN	0x00020000u
#define MILTER_PROTO_NR_EOH	0x00040000u
#define MILTER_PROTO_NR_BODY	0x00080000u
#define MILTER_PROTO_HDR_LEADSPC 0x00100000u	/* header values keep their leading space */
#define MILTER_PROTO_MDS_256K	0x10000000u	/* data up to 256 KiB */
#define MILTER_PROTO_MDS_1M	0x20000000u	/* data up to 1 MiB */

/* Connect address families. */
#define MILTER_FAMILY_UNKNOWN	'U'
#define MILTER_FAMILY_UNIX	'L'
#define MILTER_FAMILY_INET	'4'
#define MILTER_FAMILY_INET6	'6'

/* Macro stages of the OPTNEG reply's macro lists (SMFIM_*). */
#define MILTER_STAGE_CONNECT	0u
#define MILTER_STAGE_HELO	1u
#define MILTER_STAGE_MAIL	2u
#define MILTER_STAGE_RCPT	3u
#define MILTER_STAGE_DATA	4u
#define MILTER_STAGE_EOM	5u
#define MILTER_STAGE_EOH	6u
#define MILTER_STAGES		7u

/* A growable output buffer of whole frames; owned by its user. */
struct milter_buf {
	unsigned char	*data;		/* frames, back to back */
	size_t		 len;		/* bytes used */
	size_t		 cap;		/* bytes allocated */
};

void	 milter_buf_init(struct milter_buf *b);
void	 milter_buf_reset(struct milter_buf *b);	/* len = 0, memory kept */
void	 milter_buf_free(struct milter_buf *b);

/* --- Encoding: one frame each ------------------------------------------- */

/* Frames without data: A T N E Q K, and a c r t d s p f 4. */
int	 milter_put_empty(struct milter_buf *b, unsigned char code);
/* MTA's OPTNEG: version, offered actions, offered protocol steps. */
int	 milter_put_optneg(struct milter_buf *b, uint32_t version, uint32_t actions,
	    uint32_t protocol);
/*
 * The filter's OPTNEG answer; lists[stage] (MILTER_STAGES entries, or
 * lists NULL) is a space-separated macro name list or NULL for none.
 */
int	 milter_put_optneg_reply(struct milter_buf *b, uint32_t version, uint32_t actions,
	    uint32_t protocol, const char *const *lists);
/* D: macros for the command 'stage'; nv holds name0, value0, name1, ... (2n). */
int	 milter_put_macros(struct milter_buf *b, unsigned char stage, const char *const *nv,
	    size_t n);
/* C: family 'U' sends only host and family, the others port and address too. */
int	 milter_put_connect(struct milter_buf *b, const char *host, unsigned char family,
	    uint16_t port, const char *address);
/* One string: H helo, U unknown, y replycode, + addrcpt, - delrcpt, q quarantine. */
int	 milter_put_string(struct milter_buf *b, unsigned char code, const char *s);
/* Two strings, the second optional (NULL = absent): e chgfrom, 2 addrcpt_par. */
int	 milter_put_strings2(struct milter_buf *b, unsigned char code, const char *s1,
	    const char *s2);
/* M or R: argv[0] is "<address>", then ESMTP arguments "KEY=VALUE". */
int	 milter_put_argv(struct milter_buf *b, unsigned char code, const char *const *argv,
	    size_t argc);
/* L header (from the MTA) or h addheader (from the filter): name, value. */
int	 milter_put_header(struct milter_buf *b, unsigned char code, const char *name,
	    const char *value);
/* i insheader or m chgheader: index, name, value. */
int	 milter_put_header_at(struct milter_buf *b, unsigned char code, uint32_t index,
	    const char *name, const char *value);
/* B body chunk (at most MILTER_CHUNK_MAX) or b replbody (up to the frame limit). */
int	 milter_put_data(struct milter_buf *b, unsigned char code, const void *data,
	    size_t len);

/* --- Framing ------------------------------------------------------------ */

/* One frame as read: its code and data (without the length and code). */
struct milter_frame {
	unsigned char		 code;	/* command or reply byte */
	const unsigned char	*data;	/* len bytes; points into the reader */
	size_t			 len;	/* data bytes (frame length - 1) */
};

/*
 * Cuts frames from a byte stream.  The data buffer grows to the largest
 * frame seen and is reused, so there is no allocation per frame.
 */
struct milter_reader {
	size_t		 max;		/* largest frame length accepted */
	unsigned char	 head[4];	/* the length being read */
	size_t		 headlen;	/* its bytes so far */
	unsigned char	*buf;		/* code + data of the current frame */
	size_t		 cap;		/* allocated */
	size_t		 need;		/* frame length once head is complete */
	size_t		 have;		/* bytes of it so far */
	int		 failed;	/* a bad length was seen: nothing more is read */
};

#define MILTER_READ_MORE	0	/* all input used, no frame complete */
#define MILTER_READ_FRAME	1	/* *frame filled, valid until the next call */
#define MILTER_READ_ERROR	(-1)	/* bad length or no memory; *why says which */

/* max 0 means MILTER_FRAME_MAX. */
void	 milter_reader_init(struct milter_reader *r, size_t max);
void	 milter_reader_free(struct milter_reader *r);
/* Between frames (no partial frame held)? */
int	 milter_reader_idle(const struct milter_reader *r);
/*
 * Use bytes from data, stopping right after one complete frame; *used is
 * how many were taken (the caller feeds the rest later).  After an error
 * every call returns MILTER_READ_ERROR.
 */
int	 milter_reader_feed(struct milter_reader *r, const void *data, size_t len,
	    size_t *used, struct milter_frame *frame, const char **why);

/* --- Decoding ------------------------------------------------------------ */

/* Who sent the frame: the codes 'O' and the data layouts differ by side. */
enum milter_side {
	MILTER_FROM_MTA = 0,	/* a command */
	MILTER_FROM_FILTER	/* a reply */
};

/* A sequence of NUL-terminated strings (argv, macro pairs) inside a frame. */
struct milter_strings {
	const char	*data;		/* first string */
	size_t		 len;		/* bytes, each string's NUL included */
	size_t		 count;		/* strings */
};

/*
 * One decoded frame; which members are set depends on code (the rest are
 * zero or NULL):
 *	O		version, actions, protocol; from the filter also
 *			macro_lists (iterate with milter_macro_list_next)
 *	D		stage, strings (name, value pairs; count even)
 *	C		s1 host, family, and unless family is 'U': port, s2 address
 *	H U y + - q	s1
 *	M R		strings (argv; count >= 1), s1 = the first
 *	L h		s1 name, s2 value
 *	i m		index, s1 name, s2 value
 *	e 2		s1 address, s2 arguments or NULL
 *	B b		data, len
 *	E		data, len (a final chunk some MTAs send with it; often 0)
 *	others		nothing
 */
struct milter_msg {
	unsigned char		 code;		/* the frame's code */
	uint32_t		 version;	/* O */
	uint32_t		 actions;	/* O */
	uint32_t		 protocol;	/* O */
	uint32_t		 index;		/* i, m */
	unsigned char		 stage;		/* D: command the macros are for */
	unsigned char		 family;	/* C */
	uint16_t		 port;		/* C, host order */
	const char		*s1;		/* first string */
	const char		*s2;		/* second string */
	struct milter_strings	 strings;	/* D, M, R */
	const unsigned char	*data;		/* B, b, E */
	size_t			 len;		/* its bytes */
	const unsigned char	*macro_lists;	/* O from the filter: raw list area */
	size_t			 macro_lists_len;
};

/* 0, or -1 with *why (a static sentence) when the frame is malformed. */
int	 milter_decode(const struct milter_frame *frame, enum milter_side side,
	    struct milter_msg *msg, const char **why);

/* The next string of a sequence: *pos starts at 0; NULL at the end. */
const char *milter_strings_next(const struct milter_strings *s, size_t *pos);

/*
 * The next macro list of a decoded OPTNEG reply: *pos starts at 0; returns
 * 1 with *stage and *list (a space-separated name list) or 0 at the end.
 */
int	 milter_macro_list_next(const struct milter_msg *msg, size_t *pos,
	    uint32_t *stage, const char **list);

/* "connect", "replycode", ... for logs; "unknown" for other codes. */
const char *milter_code_name(unsigned char code, enum milter_side side);

#endif /* SLUICE_MILTER_CODEC_H */
