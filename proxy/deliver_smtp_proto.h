/*
 * deliver_smtp_proto.h - the pure parts of the relay-mode SMTP client:
 * recipient results, reply classification, the MAIL and RCPT parameters a
 * remote may be sent, the capability checks that refuse a message rather
 * than mangle it, and mail-loop detection.
 *
 * No sockets, no event loop: unit-tested on their own.
 */
#ifndef SLUICE_DELIVER_SMTP_PROTO_H
#define SLUICE_DELIVER_SMTP_PROTO_H

#include <stddef.h>

struct evbuffer;
struct smtp_caps;
struct smtp_reply;

enum deliver_class {
	DELIVER_PENDING = 0,	/* not decided yet */
	DELIVER_OK,		/* the remote took responsibility (2xx at end of data) */
	DELIVER_TEMP,		/* try again later (4xx, connection trouble) */
	DELIVER_PERM		/* bounce (5xx, or the remote cannot take the message) */
};

#define DELIVER_TEXT_MAX	512
#define DELIVER_RELAY_MAX	320

/*
 * The result for one recipient.  klass decides what the scheduler does;
 * code is the remote's reply code as given, which can disagree (a 554
 * greeting on the last address tried is a TEMP with code 554, as Postfix
 * does).  code 0: no reply from the remote (the reason is ours: connection
 * refused, timeout, protocol error, a missing extension); text then says
 * why, Postfix-style.
 */
struct deliver_smtp_result {
	enum deliver_class klass;		/* DELIVER_* */
	int		 code;			/* remote reply code, 0 = none */
	char		 enhanced[16];		/* "2.0.0", "5.1.1", always set with klass */
	char		 text[DELIVER_TEXT_MAX];/* reply text (lines joined by spaces) or reason */
	char		 relay[DELIVER_RELAY_MAX];/* "host[ip]:port" that answered, "" if none */
};

struct deliver_smtp_rcpt {
	const char	*addr;		/* mailbox without <> */
	const char	*notify;	/* NOTIFY value ("SUCCESS,FAILURE") or NULL */
	const char	*orcpt;		/* ORCPT value as received ("rfc822;a@b", xtext) or NULL */
	struct deliver_smtp_result result;	/* written by deliver_smtp */
};

struct deliver_smtp_envelope {
	const char	*sender;	/* mailbox without <>, "" for the null sender */
	int		 body_8bit;	/* BODY=8BITMIME was given */
	int		 smtputf8;	/* SMTPUTF8 was given */
	const char	*ret;		/* RET value ("FULL", "HDRS") or NULL */
	const char	*envid;		/* ENVID value as received (xtext) or NULL */
	size_t		 size;		/* message size for SIZE=, 0 = the body length */
	struct deliver_smtp_rcpt *rcpts;	/* the batch, results written */
	size_t		 nrcpts;	/* entries */
};

/* 2xx OK, 4xx TEMP, 5xx PERM; anything else TEMP (never bounce on garbage). */
enum deliver_class deliver_smtp_classify(int code);

/*
 * Fill r: klass from code (or from klass_if_no_code when code is 0),
 * enhanced as given when its class digit agrees, else "X.0.0"; text with
 * control bytes replaced by spaces; relay copied (NULL = "").
 */
void	 deliver_smtp_result_set(struct deliver_smtp_result *r, int code,
	    enum deliver_class klass_if_no_code, const char *enhanced, const char *text,
	    const char *relay);

/* Fill r from a remote reply (all its lines, joined by spaces). */
void	 deliver_smtp_result_reply(struct deliver_smtp_result *r, const struct smtp_reply *reply,
	    const char *relay);

/*
 * Whether the remote (caps; esmtp 0 after HELO, when caps are empty) can
 * take the message as it is.  0 = yes; 1 = no, r filled with the PERM
 * result for every recipient: 5.3.4 (SIZE), 5.6.3 (8BITMIME), 5.6.7
 * (SMTPUTF8).  size is the message size.
 */
int	 deliver_smtp_check_caps(const struct deliver_smtp_envelope *env,
	    const struct smtp_caps *caps, int esmtp, size_t size, struct deliver_smtp_result *r);

/*
 * 1 when s can go into a MAIL or RCPT line: no control bytes, no space
 * outside a quoted local part, not longer than 512 bytes.
 */
int	 deliver_smtp_address_ok(const char *s);

/*
 * Append "MAIL FROM:<sender> ..." CRLF: SIZE only when the remote offers
 * SIZE, BODY=8BITMIME with 8BITMIME, SMTPUTF8 with SMTPUTF8, RET and ENVID
 * only when it offers DSN.
 */
void	 deliver_smtp_mail_line(struct evbuffer *out, const struct deliver_smtp_envelope *env,
	    const struct smtp_caps *caps, size_t size);

/* Append "RCPT TO:<addr>" CRLF, with NOTIFY and ORCPT only when DSN is offered. */
void	 deliver_smtp_rcpt_line(struct evbuffer *out, const struct deliver_smtp_rcpt *rcpt,
	    const struct smtp_caps *caps);

/*
 * 1 when the first word of reply's first line (a 220 greeting or a 250
 * EHLO reply) is our own name: the remote is us, the mail would loop.
 */
int	 deliver_smtp_is_loop(const struct smtp_reply *reply, const char *our_name);

#endif /* SLUICE_DELIVER_SMTP_PROTO_H */
