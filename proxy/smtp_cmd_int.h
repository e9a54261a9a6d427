/*
 * smtp_cmd_int.h - what the parts of the SMTP command logic share:
 * smtp_cmd.c (the table and the verbs), smtp_forward.c (relaying MAIL,
 * RCPT and RSET upstream) and smtp_data.c (end of data: content phases
 * and delivery).  Not for other layers.
 */
#ifndef SLUICE_SMTP_CMD_INT_H
#define SLUICE_SMTP_CMD_INT_H

#include <stddef.h>
#include <stdint.h>

#include "chain.h"
#include "config.h"
#include "message.h"
#include "smtp_parse.h"
#include "upstream.h"

struct session;
struct smtp_reply;

/* The state of the command being processed; s->cmd while BUSY. */
struct cmd_state {
	enum smtp_verb	 verb;		/* the verb */
	size_t		 row_index;	/* its row in the command table */
	char		*helo;		/* HELO/EHLO argument */
	char		*mailbox;	/* MAIL/RCPT path, without <> */
	char		*params;	/* ESMTP params to forward, " K=V" each, or "" */
	unsigned long long size;	/* MAIL SIZE= */
	int		 body8;		/* MAIL BODY=8BITMIME */
	int		 smtputf8;	/* MAIL SMTPUTF8 */
	int		 dsn;		/* DSN parameters present */
	char		*auth_param;	/* MAIL AUTH= value (xtext), NULL if none */
	void		(*after_reset)(struct session *);	/* reply once RSET is done upstream */
	/* end of data */
	size_t		 header_next;	/* next header to pass to filters */
	struct message_cursor cursor;	/* body reading for filters */
	unsigned char	*body_buf;	/* body chunk buffer */
	int		 step_sync;	/* a chain step is running synchronously */
	int		 step_done;	/* it finished synchronously */
	struct chain_result step_result;/* its result */
	size_t		 replies_left;	/* LMTP: final replies still to come */
	size_t		 replies_ok;	/* LMTP: 2xx among them */
	struct smtp_reply *first_bad;	/* LMTP: first non-2xx final reply */
};

struct cmd_state *cmd_state_new(struct session *s, enum smtp_verb verb);
void	 cmd_fail(struct session *s, int code, const char *enhanced, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
void	 cmd_upstream_error(struct session *s, enum upstream_error err,
	    const struct smtp_reply *r);
void	 cmd_note_backend_reply(struct session *s, const struct smtp_reply *r);
void	 cmd_identity(struct session *s, struct upstream_identity *id);
int	 cmd_backend_is(const struct session *s, enum config_backend_type type);
int	 cmd_backend_local(const struct session *s);
void	 cmd_verdict_reply(struct session *s, enum sluice_phase phase,
	    const struct chain_result *r);
void	 cmd_rcpt_accepted(struct session *s, struct cmd_state *c);

/* smtp_forward.c */
void	 cmd_upstream_mail(struct session *s);
void	 cmd_upstream_rcpt(struct session *s, struct cmd_state *c);
/*
 * End the upstream transaction if one is open (RSET), then reply(s) and
 * finish the command.  Without an upstream in a transaction: reply at once.
 */
void	 cmd_reset_upstream(struct session *s, void (*reply)(struct session *));

#endif /* SLUICE_SMTP_CMD_INT_H */
