/*
 * dsn.h - delivery status notifications (RFC 3464): the bounce and the
 * delay warning sluice sends to a message's envelope sender, composed as
 * a complete message in the queue's wire form (CRLF lines, dot-stuffed,
 * no final dot), ready to inject with the null sender <> and the
 * original sender as its only recipient.
 *
 * Pure code: no loop, no queue, no clock unless the caller passes 0.
 *
 * The rules the scheduler asks about, per recipient (dsn_wanted):
 *   - never a DSN to the null sender: a DSN is itself sent from <>, so
 *     this is also what stops a bounce of a bounce (RFC 3461 6.2, RFC
 *     5321 4.5.5);
 *   - NOTIFY=NEVER: none; NOTIFY given without FAILURE: no failure DSN,
 *     without DELAY: no delay warning; NOTIFY not given: both (the
 *     scheduler still decides whether delay warnings are on at all);
 *   - a partial failure is one DSN naming only the recipients passed in,
 *     so the scheduler passes the failed (or delayed) ones; dsn_compose()
 *     itself leaves out those whose NOTIFY does not want this report.
 *
 * The message: From "Mail Delivery System" <MAILER-DAEMON@host>, To the
 * sender, Auto-Submitted: auto-replied (RFC 3834), multipart/report;
 * report-type=delivery-status with a text/plain explanation, the
 * message/delivery-status part (message/global-delivery-status, RFC
 * 6533, when an address needs UTF-8), and the original header section
 * as text/rfc822-headers, or the whole message as message/rfc822 when
 * RET=FULL was asked and it is under full_limit.  Every line is at most
 * 998 bytes; text that comes from outside (remote replies, addresses,
 * ENVID) has control bytes replaced and cannot start a header or a
 * MIME part; the boundary occurs nowhere in the content.
 */
#ifndef SLUICE_DSN_H
#define SLUICE_DSN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* NOTIFY= (RFC 3461 4.1) as flags; 0 = not given. */
#define DSN_NOTIFY_NEVER	0x01
#define DSN_NOTIFY_SUCCESS	0x02
#define DSN_NOTIFY_FAILURE	0x04
#define DSN_NOTIFY_DELAY	0x08

/* RET=FULL bodies above this go back as headers only (dsn_report.full_limit 0). */
#define DSN_FULL_LIMIT_DEFAULT	(1024 * 1024)

enum dsn_action {
	DSN_ACTION_FAILED = 0,	/* bounce: Action: failed */
	DSN_ACTION_DELAYED	/* warning: Action: delayed */
};

/* One recipient the report names.  Strings are not copied. */
struct dsn_rcpt {
	const char	*addr;		/* final recipient mailbox, without <> */
	const char	*orcpt;		/* ORCPT decoded ("rfc822;a@b"), NULL = none */
	enum dsn_action	 action;
	unsigned int	 notify;	/* its NOTIFY= flags, 0 = not given */
	const char	*status;	/* enhanced status "5.1.1"; NULL/bad = 5.0.0 or 4.0.0 */
	const char	*remote_mta;	/* host that answered, NULL = none (DNS, expiry) */
	const char	*diagnostic;	/* its reply, lines joined by CRLF, or our reason */
	int		 diagnostic_smtp; /* 1: diagnostic is an SMTP reply ("smtp;"), 0: ours */
	time_t		 last_attempt;	/* 0 = none */
	time_t		 retry_until;	/* delayed: when it will be given up */
};

/* The report.  Strings and arrays are not copied. */
struct dsn_report {
	const char	*reporting_mta;	/* our host name */
	const char	*sender;	/* the original envelope sender, the DSN's recipient */
	const char	*envid;		/* ENVID decoded, NULL = none */
	const char	*queue_id;	/* the original's queue id, for text and logs */
	time_t		 arrival;	/* when we accepted the original */
	time_t		 now;		/* Date:; 0 = time(NULL) */
	int		 ret_full;	/* RET=FULL was asked */
	size_t		 full_limit;	/* 0 = DSN_FULL_LIMIT_DEFAULT */
	int		 smtputf8;	/* the original came with SMTPUTF8 */
	uint64_t	 seed;		/* boundary and Message-ID; 0 = random */
	const struct dsn_rcpt *rcpts;	/* the recipients to report, >= 1 */
	size_t		 nrcpts;
};

/* A composed DSN; dsn_message_clear() frees data. */
struct dsn_message {
	char		*data;		/* wire form: CRLF lines, dot-stuffed, no final dot */
	size_t		 len;
	int		 eightbit;	/* send with BODY=8BITMIME */
	int		 smtputf8;	/* send with SMTPUTF8 (a UTF-8 address in it) */
};

/* "SUCCESS,FAILURE" / "NEVER" into flags.  0, or -1 on a bad value. */
int		 dsn_notify_parse(const char *value, unsigned int *flags);

/* xtext (RFC 3461 4) decoded into a new string (caller frees), NULL if bad. */
char		*dsn_xtext_decode(const char *xtext);

/* 1 when a DSN of this action goes to sender for a recipient with notify. */
int		 dsn_wanted(const char *sender, unsigned int notify, enum dsn_action action);

/*
 * Compose the report about the message orig (wire form, as queued: the
 * header section is read from it, and all of it for RET=FULL), naming
 * the recipients of r for which dsn_wanted() holds.  Returns 0 and fills
 * out, or -1 (nothing to report: no such recipient, or the sender is
 * null) leaving out empty.
 */
int		 dsn_compose(const struct dsn_report *r, const char *orig, size_t orig_len,
		    struct dsn_message *out);
void		 dsn_message_clear(struct dsn_message *m);

#endif /* SLUICE_DSN_H */
