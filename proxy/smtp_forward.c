/*
 * smtp_forward.c - the upstream half of MAIL, RCPT and RSET in
 * transparent mode: the backend transaction mirrors the client's, so the
 * backend's own per-command verdicts reach the client (DESIGN.md
 * "Transactions").
 *
 * Whatever the backend does wrong (down, slow, garbage, 421) becomes a
 * 4xx for the client, never a 5xx on its behalf and never a 2xx.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "generation.h"
#include "log.h"
#include "session.h"
#include "smtp_cmd.h"
#include "smtp_cmd_int.h"
#include "upstream.h"
#include "util.h"

static void	 mail_acquired(void *, struct upstream *, enum upstream_error,
		    const struct smtp_reply *);
static void	 mail_send(struct session *);
static const char *mail_auth_param(struct session *, struct cmd_state *);
static void	 mail_xforwarded(void *, struct upstream *, enum upstream_error,
		    const struct smtp_reply *);
static void	 mail_replied(void *, struct upstream *, enum upstream_error,
		    const struct smtp_reply *);
static void	 rcpt_replied(void *, struct upstream *, enum upstream_error,
		    const struct smtp_reply *);
static void	 reset_replied(void *, struct upstream *, enum upstream_error,
		    const struct smtp_reply *);

/* The upstream is gone: close it, fail the transaction's remaining steps. */
static void
forward_lost(struct session *s, enum upstream_error err, const struct smtp_reply *r)
{
	upstream_free(&s->up);
	if (s->txn != NULL)
		s->txn->upstream_failed = 1;
	cmd_upstream_error(s, err, r);
}

/*
 * A 421 from the backend means it is closing; relaying it would tell our
 * client that *we* close.  Returns 1 when r may be relayed as it is.
 */
static int
forward_reply_usable(struct session *s, const struct smtp_reply *r)
{
	if (r->code != 421)
		return 1;
	session_log(s, LOG_LEVEL_WARNING, "backend closing code=421 text=\"%s\"",
	    smtp_reply_text(r));
	upstream_free(&s->up);
	if (s->txn != NULL)
		s->txn->upstream_failed = 1;
	session_reply(s, 451, "4.4.2", "Backend is not accepting mail now, try again later");
	return 0;
}

static const char *
forward_result(int code)
{
	return code < 300 ? "accepted" : code < 500 ? "tempfail" : "rejected";
}

void
cmd_upstream_mail(struct session *s)
{
	struct upstream_identity	 id;

	if (s->up != NULL) {
		mail_send(s);
		return;
	}
	cmd_identity(s, &id);
	s->up = upstream_acquire(s->lg->backend, s->worker, &id, mail_acquired, s);
}

static void
mail_acquired(void *arg, struct upstream *up, enum upstream_error err,
    const struct smtp_reply *r)
{
	struct session	*s = arg;

	if (err != UPSTREAM_OK) {
		forward_lost(s, err, r);
		session_txn_end(s, "tempfail");
		session_command_done(s);
		return;
	}
	mail_send(s);
}

/*
 * MAIL's AUTH= for the backend (RFC 4954 section 5): only if it offers
 * AUTH, and from a client that did not authenticate only "<>", since
 * the identity it claims was not checked by us.
 */
static const char *
mail_auth_param(struct session *s, struct cmd_state *c)
{
	if (c->auth_param == NULL || !(upstream_caps(s->up)->flags & SMTP_CAP_AUTH))
		return NULL;
	return s->auth_user != NULL ? c->auth_param : "<>";
}

/* Refuse parameters the backend cannot take: we must not drop them silently. */
static int
mail_params_supported(struct session *s, struct cmd_state *c)
{
	const struct smtp_caps	*caps = upstream_caps(s->up);
	const char		*what = NULL;

	if (c->smtputf8 && !(caps->flags & SMTP_CAP_SMTPUTF8))
		what = "SMTPUTF8";
	else if (c->body8 && !(caps->flags & SMTP_CAP_8BITMIME))
		what = "BODY=8BITMIME";
	else if (c->dsn && !(caps->flags & SMTP_CAP_DSN))
		what = "DSN parameters";
	if (what == NULL)
		return 1;
	session_log(s, LOG_LEVEL_INFO, "reject phase=mail reason=backend_lacks_extension "
	    "extension=\"%s\" client=%s", what, s->addr);
	session_reply(s, 555, "5.5.4", "%s not supported by the mail system behind this server",
	    what);
	return 0;
}

static void
mail_send(struct session *s)
{
	struct upstream_identity	 id;

	if (!mail_params_supported(s, s->cmd)) {
		session_error(s);
		session_txn_end(s, "rejected");
		session_command_done(s);
		return;
	}
	cmd_identity(s, &id);
	upstream_xforward(s->up, &id, mail_xforwarded, s);
}

static void
mail_xforwarded(void *arg, struct upstream *up, enum upstream_error err,
    const struct smtp_reply *r)
{
	struct session		*s = arg;
	struct cmd_state	*c = s->cmd;
	char			*line;

	if (err != UPSTREAM_OK) {
		forward_lost(s, err, r);
		session_txn_end(s, "tempfail");
		session_command_done(s);
		return;
	}
	xasprintf(&line, "MAIL FROM:<%s>%s%s%s", c->mailbox, c->params,
	    mail_auth_param(s, c) != NULL ? " AUTH=" : "",
	    mail_auth_param(s, c) != NULL ? mail_auth_param(s, c) : "");
	upstream_command(s->up, line, mail_replied, s);
	free(line);
}

static void
mail_replied(void *arg, struct upstream *up, enum upstream_error err,
    const struct smtp_reply *r)
{
	struct session		*s = arg;
	struct cmd_state	*c = s->cmd;

	if (err != UPSTREAM_OK) {
		forward_lost(s, err, r);
		session_txn_end(s, "tempfail");
	} else if (!forward_reply_usable(s, r)) {
		session_txn_end(s, "tempfail");
	} else {
		session_relay(s, r, r->code < 300 ? "2.1.0" : r->code < 500 ? "4.0.0" : "5.0.0");
		if (r->code < 300) {
			s->txn->mail_params = c->params;
			c->params = NULL;
		} else {
			cmd_note_backend_reply(s, r);
			session_error(s);
			session_txn_end(s, forward_result(r->code));
		}
	}
	session_command_done(s);
}

void
cmd_upstream_rcpt(struct session *s, struct cmd_state *c)
{
	char	*line;

	if (s->up == NULL) {
		session_reply(s, 451, "4.4.1", "Backend connection lost, try again later");
		session_command_done(s);
		return;
	}
	if (c->dsn && !(upstream_caps(s->up)->flags & SMTP_CAP_DSN)) {
		session_reply(s, 555, "5.5.4", "DSN parameters not supported by the mail "
		    "system behind this server");
		session_error(s);
		session_command_done(s);
		return;
	}
	xasprintf(&line, "RCPT TO:<%s>%s", c->mailbox, c->params);
	upstream_command(s->up, line, rcpt_replied, s);
	free(line);
}

static void
rcpt_replied(void *arg, struct upstream *up, enum upstream_error err,
    const struct smtp_reply *r)
{
	struct session		*s = arg;
	struct cmd_state	*c = s->cmd;

	if (err != UPSTREAM_OK)
		forward_lost(s, err, r);
	else if (forward_reply_usable(s, r)) {
		session_relay(s, r, r->code < 300 ? "2.1.5" : r->code < 500 ? "4.0.0" : "5.0.0");
		if (r->code < 300)
			cmd_rcpt_accepted(s, c);
		else {
			char	 q[300];

			session_log(s, LOG_LEVEL_INFO, "reject phase=rcpt by=backend code=%d "
			    "rcpt=<%s> text=\"%s\"", r->code,
			    log_quote(q, sizeof(q), c->mailbox, 256), smtp_reply_text(r));
			session_error(s);
		}
	}
	if (s->txn != NULL)
		s->txn->rcpt_current = NULL;
	session_command_done(s);
}

/* --- RSET upstream --------------------------------------------------------- */

static void
reset_finish(struct session *s, void (*reply)(struct session *))
{
	if (reply != NULL)
		reply(s);
	session_command_done(s);
}

void
cmd_reset_upstream(struct session *s, void (*reply)(struct session *))
{
	struct cmd_state	*c = s->cmd;

	if (s->up == NULL || !upstream_in_txn(s->up)) {
		reset_finish(s, reply);
		return;
	}
	c->after_reset = reply;
	upstream_command(s->up, "RSET", reset_replied, s);
}

static void
reset_replied(void *arg, struct upstream *up, enum upstream_error err,
    const struct smtp_reply *r)
{
	struct session	*s = arg;

	/* A backend that cannot RSET is not worth keeping; the client is fine. */
	if (err != UPSTREAM_OK || r->code >= 300) {
		session_log(s, LOG_LEVEL_WARNING, "backend rset failed error=%s code=%d",
		    upstream_error_text(err), err == UPSTREAM_OK ? r->code : 0);
		upstream_free(&s->up);
	}
	reset_finish(s, ((struct cmd_state *)s->cmd)->after_reset);
}
