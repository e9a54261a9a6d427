/*
 * smtp_data.c - the end of DATA: refuse what cannot be accepted, add the
 * trace header, run the content phases of the chain (each header, end of
 * headers, body chunks, end of message), then deliver: replay the spool
 * to the backend and relay its verdict, or write the Maildir.
 *
 * Invariant 1 lives here: the client hears 2xx only after the backend
 * said 2xx for this message, or the Maildir file and its directory are
 * fsynced, or a filter explicitly discarded the message.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "backend_maildir.h"
#include "chain.h"
#include "generation.h"
#include "log.h"
#include "message.h"
#include "offline.h"
#include "queue_accept.h"
#include "session.h"
#include "smtp_cmd.h"
#include "smtp_cmd_int.h"
#include "smtp_parse.h"
#include "tls.h"
#include "upstream.h"
#include "util.h"

#define BODY_CHUNK	(64 * 1024)

static void	 data_headers(struct session *);
static void	 data_header_done(struct session *, const struct chain_result *);
static void	 data_eoh_done(struct session *, const struct chain_result *);
static void	 data_body(struct session *);
static void	 data_body_done(struct session *, const struct chain_result *);
static void	 data_eom_done(struct session *, const struct chain_result *);
static void	 data_deliver(struct session *);
static void	 data_replied(void *, struct upstream *, enum upstream_error,
		    const struct smtp_reply *);
static void	 data_maildir_done(struct session *, int, const char *);
static void	 data_queue_done(struct session *, int, const char *);
static void	 envelope_sync(struct session *);
static void	 envelope_rset_replied(void *, struct upstream *, enum upstream_error,
		    const struct smtp_reply *);
static void	 envelope_mail_replied(void *, struct upstream *, enum upstream_error,
		    const struct smtp_reply *);
static void	 envelope_next_rcpt(struct session *);
static void	 envelope_rcpt_replied(void *, struct upstream *, enum upstream_error,
		    const struct smtp_reply *);
static void	 envelope_done(struct session *);

/* Finish the transaction with result and let the session go on. */
static void
data_finish(struct session *s, const char *result)
{
	session_txn_end(s, result);
	session_command_done(s);
}

/* Refuse the message: reply, end the transaction, RSET the backend. */
static void
data_refuse(struct session *s, const char *result, int code, const char *enhanced,
    const char *text)
{
	session_reply(s, code, enhanced, "%s", text);
	if (code >= 500)
		session_error(s);
	session_txn_end(s, result);
	cmd_reset_upstream(s, NULL);
}

/* Problems found while reading DATA; 1 when the message was refused. */
static int
data_check(struct session *s)
{
	struct txn	*t = s->txn;
	char		 text[128];

	switch (t->data_error) {
	case TXN_DATA_TOO_BIG:
		session_log(s, LOG_LEVEL_INFO, "reject phase=data reason=message_size size=%zu "
		    "limit=%lld client=%s", t->size, s->lg->conf->limits.message_size, s->addr);
		data_refuse(s, "rejected", 552, "5.3.4", "Message size exceeds fixed maximum "
		    "message size");
		return 1;
	case TXN_DATA_BARE_EOL:
		session_log(s, LOG_LEVEL_INFO, "reject phase=data reason=bare_%s client=%s",
		    (s->dt.flags & DATATERM_BARE_LF) ? "lf" : "cr", s->addr);
		data_refuse(s, "rejected", 550, "5.5.2", "Message refused: bare CR or LF "
		    "in message text, lines must end with CRLF");
		return 1;
	case TXN_DATA_SPOOL:
		errno = t->data_errno;
		log_warn("%016llx spool write failed", (unsigned long long)s->id);
		if (t->data_errno == ENOSPC || t->data_errno == EDQUOT || t->data_errno == EFBIG)
			data_refuse(s, "tempfail", 452, "4.3.1", "Insufficient system storage");
		else
			data_refuse(s, "tempfail", 451, "4.3.0", "Local error, try again later");
		return 1;
	default:
		break;
	}
	if (s->dt.flags & DATATERM_LONG_LINE) {
		session_log(s, LOG_LEVEL_INFO, "reject phase=data reason=line_too_long limit=%lld "
		    "client=%s", s->lg->conf->limits.text_line, s->addr);
		snprintf(text, sizeof(text), "Message refused: a line exceeds %lld bytes",
		    s->lg->conf->limits.text_line);
		data_refuse(s, "rejected", 550, "5.5.2", text);
		return 1;
	}
	return 0;
}

/* RFC 5321 4.4 trace field, prepended to the message. */
static void
data_received(struct session *s)
{
	struct txn	*t = s->txn;
	char		 date[64], *hdr, from[300], rcpt[300], proto[32], tls[200];
	const char	*with;
	time_t		 now = time(NULL);
	struct tm	 tm;
	int		 v6 = strchr(s->addr, ':') != NULL;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	if (s->helo != NULL && smtp_domain_check(s->helo, strlen(s->helo), t->smtputf8) ==
	    SMTP_PARSE_OK)
		snprintf(from, sizeof(from), "%s", s->helo);
	else
		snprintf(from, sizeof(from), "unknown");
	with = session_protocol(s);
	/* RFC 6531: UTF8SMTP, UTF8SMTPS, ... (SMTPUTF8 implies EHLO: "ESMTP..."). */
	if (t->smtputf8)
		snprintf(proto, sizeof(proto), "UTF8%s", with[0] == 'E' ? with + 1 : with);
	else
		snprintf(proto, sizeof(proto), "%s", with);
	tls[0] = '\0';
	if (session_tls_active(s))
		snprintf(tls, sizeof(tls), "\r\n\t(using %s with cipher %s (%d/%d bits))",
		    s->tls->version, s->tls->cipher, s->tls->bits, s->tls->alg_bits);
	rcpt[0] = '\0';
	if (t->nrcpts == 1)
		snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>", t->rcpts[0].mailbox);
	xasprintf(&hdr, "Received: from %s (%s%s[%s%s])%s\r\n\tby %s (sluice) with %s id "
	    "%016llx.%u%s;\r\n\t%s\r\n", from, s->hostname != NULL ? s->hostname : "",
	    s->hostname != NULL ? " " : "", v6 ? "IPv6:" : "", s->addr, tls,
	    s->lg->conf->hostname, proto, (unsigned long long)s->id, t->number, rcpt, date);
	if (message_prepend(t->msg, hdr, strlen(hdr)) == -1)
		session_log(s, LOG_LEVEL_WARNING, "could not add the Received field");
	free(hdr);
}

static int
data_wants_content(struct session *s)
{
	return chain_wants(s, SLUICE_PHASE_HEADER) || chain_wants(s, SLUICE_PHASE_EOH) ||
	    chain_wants(s, SLUICE_PHASE_BODY) || chain_wants(s, SLUICE_PHASE_EOM);
}

void
smtp_cmd_data_end(struct session *s)
{
	struct txn	*t = s->txn;
	unsigned int	 flags;

	cmd_state_new(s, SMTP_VERB_DATA);
	if (data_check(s))
		return;
	if (s->lg->conf->received_header)
		data_received(s);
	if (!data_wants_content(s)) {
		data_deliver(s);
		return;
	}
	if (message_index(t->msg) == -1) {
		log_warn("%016llx spool read failed", (unsigned long long)s->id);
		data_refuse(s, "tempfail", 451, "4.3.0", "Local error, try again later");
		return;
	}
	if ((flags = message_flags(t->msg)) != 0) {
		session_log(s, LOG_LEVEL_INFO, "reject phase=data reason=%s client=%s",
		    (flags & MESSAGE_TOO_MANY_HEADERS) ? "too_many_headers" : "header_too_big",
		    s->addr);
		data_refuse(s, "rejected", 552, "5.3.4", (flags & MESSAGE_TOO_MANY_HEADERS) ?
		    "Message header section has too many fields" :
		    "Message header field too large");
		return;
	}
	data_headers(s);
}

/* A refusing verdict of a content phase ends the message here. */
static void
data_verdict(struct session *s, enum sluice_phase phase, const struct chain_result *r)
{
	cmd_verdict_reply(s, phase, r);
	if (r->verdict == SLUICE_DISCONNECT) {
		session_txn_end(s, "rejected");
		session_command_done(s);
		return;
	}
	session_error(s);
	session_txn_end(s, r->verdict == SLUICE_TEMPFAIL ? "tempfail" : "rejected");
	cmd_reset_upstream(s, NULL);
}

/*
 * Fold a content phase's result: DISCARD marks the transaction and the
 * message goes on; any other verdict but CONTINUE ends it here (replied).
 * Returns 1 when the message ended.
 */
static int
data_ended(struct session *s, enum sluice_phase phase, const struct chain_result *r)
{
	if (r->verdict == SLUICE_DISCARD) {
		s->txn->discard = 1;
		return 0;
	}
	if (r->verdict == SLUICE_CONTINUE)
		return 0;
	data_verdict(s, phase, r);
	return 1;
}

/*
 * Run a chain step; a step that finishes synchronously is handled by the
 * loop of the caller (no recursion per header), one that goes PENDING
 * continues from its callback.  Returns 1 when finished synchronously.
 */
static int
data_step_sync(struct session *s)
{
	struct cmd_state	*c = s->cmd;
	int			 done = c->step_done;

	c->step_sync = 0;
	c->step_done = 0;
	return done;
}

static int
data_step_callback(struct session *s, const struct chain_result *r)
{
	struct cmd_state	*c = s->cmd;

	c->step_result = *r;
	if (c->step_sync) {
		c->step_done = 1;
		return 1;
	}
	return 0;
}

static void
data_headers(struct session *s)
{
	struct cmd_state	*c = s->cmd;
	struct message		*m = s->txn->msg;
	const char		*name, *value;

	if (!chain_wants(s, SLUICE_PHASE_HEADER))
		c->header_next = message_header_count(m);
	while (c->header_next < message_header_count(m)) {
		if (message_header_get(m, c->header_next++, &name, &value) == -1)
			continue;
		c->step_sync = 1;
		chain_start_header(s, name, value, data_header_done);
		if (!data_step_sync(s))
			return;
		if (data_ended(s, SLUICE_PHASE_HEADER, &c->step_result))
			return;
	}
	chain_start(s, SLUICE_PHASE_EOH, data_eoh_done);
}

static void
data_header_done(struct session *s, const struct chain_result *r)
{
	if (data_step_callback(s, r) || data_ended(s, SLUICE_PHASE_HEADER, r))
		return;
	data_headers(s);
}

static void
data_eoh_done(struct session *s, const struct chain_result *r)
{
	struct cmd_state	*c = s->cmd;

	if (data_ended(s, SLUICE_PHASE_EOH, r))
		return;
	message_body_cursor(s->txn->msg, &c->cursor);
	data_body(s);
}

static void
data_body(struct session *s)
{
	struct cmd_state	*c = s->cmd;
	ssize_t			 n;

	if (!chain_wants(s, SLUICE_PHASE_BODY)) {
		chain_start(s, SLUICE_PHASE_EOM, data_eom_done);
		return;
	}
	if (c->body_buf == NULL)
		c->body_buf = xmalloc(BODY_CHUNK);
	for (;;) {
		if ((n = message_body_read(s->txn->msg, &c->cursor, c->body_buf,
		    BODY_CHUNK)) == -1) {
			log_warn("%016llx spool read failed", (unsigned long long)s->id);
			data_refuse(s, "tempfail", 451, "4.3.0", "Local error, try again later");
			return;
		}
		if (n == 0)
			break;
		c->step_sync = 1;
		chain_start_body(s, c->body_buf, (size_t)n, data_body_done);
		if (!data_step_sync(s))
			return;
		if (data_ended(s, SLUICE_PHASE_BODY, &c->step_result))
			return;
	}
	free(c->body_buf);
	c->body_buf = NULL;
	chain_start(s, SLUICE_PHASE_EOM, data_eom_done);
}

static void
data_body_done(struct session *s, const struct chain_result *r)
{
	if (data_step_callback(s, r) || data_ended(s, SLUICE_PHASE_BODY, r))
		return;
	data_body(s);
}

static void
data_eom_done(struct session *s, const struct chain_result *r)
{
	if (data_ended(s, SLUICE_PHASE_EOM, r))
		return;
	data_deliver(s);
}

/* --- Delivery -------------------------------------------------------------- */

static void
discard_reply(struct session *s)
{
	session_reply(s, 250, "2.0.0", "Ok: message discarded by policy");
}

static void
data_deliver(struct session *s)
{
	struct txn		*t = s->txn;

	if (t->discard || (s->flags & SESSION_DISCARD_ALL)) {
		session_log(s, LOG_LEVEL_INFO, "discard txn=%u client=%s", t->number, s->addr);
		session_txn_end(s, "discarded");
		cmd_reset_upstream(s, discard_reply);
		return;
	}
	if (t->nrcpts == 0) {
		/* Filters removed every recipient. */
		envelope_done(s);
		return;
	}
	if (cmd_backend_is(s, CONFIG_BACKEND_MAILDIR)) {
		backend_maildir_deliver(s, data_maildir_done);
		return;
	}
	if (cmd_backend_is(s, CONFIG_BACKEND_RELAY)) {
		queue_accept_message(s, data_queue_done);
		return;
	}
	if (cmd_backend_is(s, CONFIG_BACKEND_EXPLAIN)) {
		/* sluice --explain, sluice-milter: the stand-in's hook decides. */
		if (offline_deliver(s, t->msg) == -1) {
			session_reply(s, 451, "4.3.0", "Local error, try again later");
			data_finish(s, "tempfail");
			return;
		}
		session_reply(s, 250, "2.0.0", "Ok: explained, not delivered");
		data_finish(s, "accepted");
		return;
	}
	if (s->up == NULL) {
		session_reply(s, 451, "4.4.1", "Backend connection lost, try again later");
		data_finish(s, "tempfail");
		return;
	}
	envelope_sync(s);
}

/* --- Envelope changes by filters ------------------------------------------ */

/*
 * Bring the backend's transaction in line with what filters made of the
 * envelope: extra RCPTs for added recipients; RSET, MAIL and every RCPT
 * again after a removal or a new sender.  A recipient the client was told
 * 250 for that the backend now refuses makes the whole message 451 (the
 * client retries: duplicates, never loss); a filter-added recipient
 * refused with 5xx is dropped and logged.
 */
static void
envelope_sync(struct session *s)
{
	struct txn	*t = s->txn;
	size_t		 i;

	for (i = 0; i < t->nrcpts && !t->env_restart; i++)
		if (t->rcpts[i].added)
			break;
	if (!t->env_restart && i == t->nrcpts) {
		envelope_done(s);
		return;
	}
	if (t->nrcpts == 0) {
		envelope_done(s);
		return;
	}
	t->env_next = 0;
	if (t->env_restart) {
		upstream_command(s->up, "RSET", envelope_rset_replied, s);
		return;
	}
	envelope_next_rcpt(s);
}

static int
envelope_failed(struct session *s, enum upstream_error err, const struct smtp_reply *r,
    const char *what)
{
	if (err == UPSTREAM_OK && r->code < 300)
		return 0;
	session_log(s, LOG_LEVEL_WARNING, "envelope replay failed step=%s error=%s code=%d",
	    what, upstream_error_text(err), err == UPSTREAM_OK ? r->code : 0);
	if (err != UPSTREAM_OK || r->code == 421)
		upstream_free(&s->up);
	else
		cmd_note_backend_reply(s, r);
	session_reply(s, 451, "4.3.0", "Message could not be handed on after a filter "
	    "changed its envelope, try again later");
	/* The backend may hold a half-built transaction: RSET it. */
	session_txn_end(s, "tempfail");
	cmd_reset_upstream(s, NULL);
	return 1;
}

static void
envelope_rset_replied(void *arg, struct upstream *up, enum upstream_error err,
    const struct smtp_reply *r)
{
	struct session	*s = arg;
	struct txn	*t = s->txn;
	char		*line;

	if (envelope_failed(s, err, r, "rset"))
		return;
	xasprintf(&line, "MAIL FROM:<%s>%s", t->mail_from,
	    t->mail_params != NULL ? t->mail_params : "");
	upstream_command(s->up, line, envelope_mail_replied, s);
	free(line);
}

static void
envelope_mail_replied(void *arg, struct upstream *up, enum upstream_error err,
    const struct smtp_reply *r)
{
	struct session	*s = arg;

	if (envelope_failed(s, err, r, "mail"))
		return;
	envelope_next_rcpt(s);
}

static void
envelope_next_rcpt(struct session *s)
{
	struct txn	*t = s->txn;
	char		*line;

	/* After a restart every recipient goes again, else only the added. */
	while (t->env_next < t->nrcpts && !t->env_restart && !t->rcpts[t->env_next].added)
		t->env_next++;
	if (t->env_next == t->nrcpts) {
		envelope_done(s);
		return;
	}
	xasprintf(&line, "RCPT TO:<%s>%s", t->rcpts[t->env_next].mailbox,
	    t->rcpts[t->env_next].params);
	upstream_command(s->up, line, envelope_rcpt_replied, s);
	free(line);
}

static void
envelope_rcpt_replied(void *arg, struct upstream *up, enum upstream_error err,
    const struct smtp_reply *r)
{
	struct session		*s = arg;
	struct txn		*t = s->txn;
	struct txn_rcpt		*rc = &t->rcpts[t->env_next];

	if (err == UPSTREAM_OK && r->code >= 500 && rc->added) {
		session_log(s, LOG_LEVEL_WARNING, "envelope added rcpt=<%s> refused code=%d "
		    "text=\"%s\" dropped", rc->mailbox, r->code, smtp_reply_text(r));
		free(rc->mailbox);
		free(rc->params);
		memmove(rc, rc + 1, (t->nrcpts - t->env_next - 1) * sizeof(*rc));
		t->nrcpts--;
		envelope_next_rcpt(s);
		return;
	}
	if (envelope_failed(s, err, r, "rcpt"))
		return;
	rc->added = 0;
	t->env_next++;
	envelope_next_rcpt(s);
}

static void
envelope_done(struct session *s)
{
	struct txn		*t = s->txn;
	struct cmd_state	*c = s->cmd;

	t->env_restart = 0;
	if (t->nrcpts == 0) {
		session_log(s, LOG_LEVEL_INFO, "discard txn=%u client=%s reason=no-recipients-left",
		    t->number, s->addr);
		session_txn_end(s, "discarded");
		cmd_reset_upstream(s, discard_reply);
		return;
	}
	c->replies_left = cmd_backend_is(s, CONFIG_BACKEND_LMTP) ? t->nrcpts : 1;
	c->replies_ok = 0;
	upstream_data(s->up, t->msg, c->replies_left, data_replied, s);
}

/* LMTP: fold one reply per recipient into the client's single reply. */
static void
data_lmtp_collect(struct session *s, const struct smtp_reply *r)
{
	struct cmd_state	*c = s->cmd;

	if (r->code < 300)
		c->replies_ok++;
	else if (c->first_bad == NULL) {
		c->first_bad = xmalloc(sizeof(*c->first_bad));
		*c->first_bad = *r;
	}
}

static void
data_final(struct session *s, const struct smtp_reply *last)
{
	struct cmd_state	*c = s->cmd;
	const struct smtp_reply	*r = c->first_bad != NULL ? c->first_bad : last;
	const char		*result;

	if (c->first_bad != NULL && c->replies_ok > 0) {
		/*
		 * Mixed LMTP verdicts cannot be said in one reply: a 5xx would
		 * bounce delivered copies, a 2xx lose the others.  451 makes
		 * the client retry all: duplicates, never loss.
		 */
		session_log(s, LOG_LEVEL_WARNING, "backend mixed lmtp replies ok=%zu",
		    c->replies_ok);
		session_reply(s, 451, "4.3.0", "Some recipients could not be delivered, "
		    "try again later");
		result = "tempfail";
	} else {
		session_relay(s, r, r->code < 300 ? "2.0.0" : r->code < 500 ? "4.0.0" : "5.0.0");
		result = r->code < 300 ? "accepted" : r->code < 500 ? "tempfail" : "rejected";
		if (r->code >= 500)
			session_error(s);
	}
	cmd_note_backend_reply(s, r);
	free(c->first_bad);
	c->first_bad = NULL;
	data_finish(s, result);
}

static void
data_replied(void *arg, struct upstream *up, enum upstream_error err,
    const struct smtp_reply *r)
{
	struct session		*s = arg;
	struct cmd_state	*c = s->cmd;

	if (err == UPSTREAM_DATA_REFUSED && r->code != 421) {
		session_relay(s, r, r->code < 500 ? "4.0.0" : "5.0.0");
		cmd_note_backend_reply(s, r);
		if (r->code >= 500)
			session_error(s);
		session_txn_end(s, r->code < 500 ? "tempfail" : "rejected");
		cmd_reset_upstream(s, NULL);
		return;
	}
	if (err != UPSTREAM_OK || r->code == 421) {
		if (r != NULL && r->code == 421)
			session_log(s, LOG_LEVEL_WARNING, "backend closing code=421 text=\"%s\"",
			    smtp_reply_text(r));
		upstream_free(&s->up);
		cmd_upstream_error(s, r != NULL && r->code == 421 ? UPSTREAM_CLOSED : err, NULL);
		free(c->first_bad);
		c->first_bad = NULL;
		data_finish(s, "tempfail");
		return;
	}
	if (c->replies_left > 1 || c->replies_ok > 0 || c->first_bad != NULL) {
		/* LMTP with several replies (or the first of several). */
		data_lmtp_collect(s, r);
		if (--c->replies_left > 0)
			return;
		data_final(s, r);
		return;
	}
	c->replies_left = 0;
	data_final(s, r);
}

static void
data_maildir_done(struct session *s, int err, const char *detail)
{
	char	 buf[300];

	if (err != 0) {
		if (err == ENOSPC || err == EDQUOT)
			session_reply(s, 452, "4.3.1", "Insufficient system storage");
		else
			session_reply(s, 451, "4.3.0", "Local delivery failed, try again later");
		data_finish(s, "tempfail");
		return;
	}
	snprintf(buf, sizeof(buf), "250 2.0.0 Ok: delivered as %s", detail);
	free(s->txn->backend_reply);
	s->txn->backend_reply = xstrdup(buf);
	session_reply(s, 250, "2.0.0", "Ok: delivered as %s", detail);
	data_finish(s, "accepted");
}

/* Relay mode: 250 only once the queue file and its folder are on disk. */
static void
data_queue_done(struct session *s, int err, const char *id)
{
	char	 buf[300];

	if (err != 0) {
		if (err == ENOSPC || err == EDQUOT || err == EFBIG)
			session_reply(s, 452, "4.3.1", "Insufficient system storage");
		else
			session_reply(s, 451, "4.3.0", "Local error in processing, try again "
			    "later");
		data_finish(s, "tempfail");
		return;
	}
	snprintf(buf, sizeof(buf), "250 2.0.0 Ok: queued as %s", id);
	free(s->txn->backend_reply);
	s->txn->backend_reply = xstrdup(buf);
	session_reply(s, 250, "2.0.0", "Ok: queued as %s", id);
	data_finish(s, "accepted");
}
