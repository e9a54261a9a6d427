/*
 * smtp_cmd.c - the command table: each verb's check, filter phase and
 * proceed step (RFC 5321 section 4, RFC 1869 ESMTP parameters, RFC 3461
 * DSN, RFC 6531 SMTPUTF8, RFC 3463 enhanced codes).
 *
 * A command line arrives from session.c with the session marked BUSY.
 * check() validates syntax and sequence and copies what later steps need
 * (the line itself is only valid during dispatch); then the chain runs
 * for the verb's phase; then proceed() does the work, usually through the
 * upstream connection, and ends with session_command_done().
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "backend.h"
#include "chain.h"
#include "config.h"
#include "generation.h"
#include "log.h"
#include "session.h"
#include "smtp_auth.h"
#include "smtp_cmd.h"
#include "smtp_cmd_int.h"
#include "smtp_parse.h"
#include "smtp_reply.h"
#include "tls.h"
#include "upstream.h"
#include "util.h"
#include "worker.h"

#define CMD_ALLOWED_REFUSED	0x01	/* allowed after a refused connect */
#define CMD_NO_PHASE		SLUICE_PHASE_COUNT

struct cmd_row {
	enum smtp_verb	 verb;		/* the verb */
	int		 flags;		/* CMD_* */
	enum sluice_phase phase;	/* filter phase, CMD_NO_PHASE for none */
	int		(*check)(struct session *, struct cmd_state *, const char *, size_t);
	void		(*proceed)(struct session *, struct cmd_state *);
};

static int	 check_helo(struct session *, struct cmd_state *, const char *, size_t);
static int	 check_mail(struct session *, struct cmd_state *, const char *, size_t);
static int	 check_rcpt(struct session *, struct cmd_state *, const char *, size_t);
static int	 check_data(struct session *, struct cmd_state *, const char *, size_t);
static int	 check_no_arg(struct session *, struct cmd_state *, const char *, size_t);
static int	 check_any(struct session *, struct cmd_state *, const char *, size_t);
static void	 proceed_helo(struct session *, struct cmd_state *);
static void	 proceed_mail(struct session *, struct cmd_state *);
static void	 proceed_rcpt(struct session *, struct cmd_state *);
static void	 proceed_data(struct session *, struct cmd_state *);
static void	 proceed_rset(struct session *, struct cmd_state *);
static void	 proceed_noop(struct session *, struct cmd_state *);
static void	 proceed_quit(struct session *, struct cmd_state *);
static void	 proceed_vrfy(struct session *, struct cmd_state *);
static void	 proceed_help(struct session *, struct cmd_state *);
static void	 proceed_not_implemented(struct session *, struct cmd_state *);
static void	 cmd_chain_done(struct session *, const struct chain_result *);
static void	 connect_chain_done(struct session *, const struct chain_result *);
static int	 cmd_junk_limit(struct session *, enum smtp_verb);

static const struct cmd_row cmd_table[] = {
	{ SMTP_VERB_HELO, 0, SLUICE_PHASE_HELO, check_helo, proceed_helo },
	{ SMTP_VERB_EHLO, 0, SLUICE_PHASE_HELO, check_helo, proceed_helo },
	{ SMTP_VERB_MAIL, 0, SLUICE_PHASE_MAIL, check_mail, proceed_mail },
	{ SMTP_VERB_RCPT, 0, SLUICE_PHASE_RCPT, check_rcpt, proceed_rcpt },
	{ SMTP_VERB_DATA, 0, SLUICE_PHASE_DATA, check_data, proceed_data },
	{ SMTP_VERB_RSET, CMD_ALLOWED_REFUSED, CMD_NO_PHASE, check_no_arg, proceed_rset },
	{ SMTP_VERB_NOOP, CMD_ALLOWED_REFUSED, CMD_NO_PHASE, check_any, proceed_noop },
	{ SMTP_VERB_QUIT, CMD_ALLOWED_REFUSED, CMD_NO_PHASE, check_no_arg, proceed_quit },
	{ SMTP_VERB_VRFY, 0, CMD_NO_PHASE, check_any, proceed_vrfy },
	{ SMTP_VERB_EXPN, 0, CMD_NO_PHASE, check_any, proceed_not_implemented },
	{ SMTP_VERB_HELP, CMD_ALLOWED_REFUSED, CMD_NO_PHASE, check_any, proceed_help },
	{ SMTP_VERB_BDAT, 0, CMD_NO_PHASE, check_any, proceed_not_implemented },
	{ SMTP_VERB_STARTTLS, 0, CMD_NO_PHASE, tls_cmd_starttls_check, tls_cmd_starttls },
	{ SMTP_VERB_AUTH, 0, CMD_NO_PHASE, smtp_auth_check, smtp_auth_proceed },
	{ SMTP_VERB_XCLIENT, 0, CMD_NO_PHASE, check_any, proceed_not_implemented },
	{ SMTP_VERB_XFORWARD, 0, CMD_NO_PHASE, check_any, proceed_not_implemented },
};

/* --- Helpers --------------------------------------------------------------- */

struct cmd_state *
cmd_state_new(struct session *s, enum smtp_verb verb)
{
	struct cmd_state	*c = xcalloc(1, sizeof(*c));

	c->verb = verb;
	s->cmd = c;
	return c;
}

void
smtp_cmd_abort(struct session *s)
{
	struct cmd_state	*c = s->cmd;

	if (c == NULL)
		return;
	s->cmd = NULL;
	free(c->mailbox);
	free(c->params);
	free(c->helo);
	free(c->auth_param);
	free(c->body_buf);
	free(c);
}

/* Reply, count the error, finish the command. */
void
cmd_fail(struct session *s, int code, const char *enhanced, const char *fmt, ...)
{
	char	 text[512];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	session_reply(s, code, enhanced, "%s", text);
	session_error(s);
	session_command_done(s);
}

/* The reply for an upstream failure: always 4xx, never on the backend's behalf. */
void
cmd_upstream_error(struct session *s, enum upstream_error err, const struct smtp_reply *r)
{
	const char	*text;

	switch (err) {
	case UPSTREAM_LIMIT:
		session_reply(s, 451, "4.3.2", "Too many connections to the backend, try again later");
		return;
	case UPSTREAM_TIMEOUT:
		text = "Backend did not answer in time, try again later";
		break;
	case UPSTREAM_CLOSED:
		text = "Backend closed the connection, try again later";
		break;
	case UPSTREAM_GARBAGE:
		text = "Backend protocol error, try again later";
		break;
	case UPSTREAM_IO:
		session_reply(s, 451, "4.3.0", "Local error, try again later");
		return;
	default:
		text = "Backend unavailable, try again later";
		break;
	}
	if (r != NULL)
		session_log(s, LOG_LEVEL_WARNING, "backend refused code=%d text=\"%s\"",
		    r->code, smtp_reply_text(r));
	session_reply(s, 451, "4.4.1", "%s", text);
}

/* Keep the backend's final reply text for the summary line. */
void
cmd_note_backend_reply(struct session *s, const struct smtp_reply *r)
{
	char	 buf[600];

	if (s->txn == NULL || r == NULL)
		return;
	if (r->enhanced[0] != '\0')
		snprintf(buf, sizeof(buf), "%d %s %s", r->code, r->enhanced, smtp_reply_text(r));
	else
		snprintf(buf, sizeof(buf), "%d %s", r->code, smtp_reply_text(r));
	free(s->txn->backend_reply);
	s->txn->backend_reply = xstrdup(buf);
}

void
cmd_identity(struct session *s, struct upstream_identity *id)
{
	memset(id, 0, sizeof(*id));
	id->addr = s->addr;
	id->port = s->port;
	id->name = s->hostname;
	id->helo = s->helo;
	id->proto = session_protocol(s);
	id->login = s->auth_user;
	id->dest_addr = s->local_addr;
	id->dest_port = s->local_port;
	id->session_id = s->id;
}

int
cmd_backend_is(const struct session *s, enum config_backend_type type)
{
	return s->lg->backend->conf->type == type;
}

/* No upstream connection: maildir, the explain stand-in, or the relay queue. */
int
cmd_backend_local(const struct session *s)
{
	return cmd_backend_is(s, CONFIG_BACKEND_MAILDIR) || cmd_backend_is(s, CONFIG_BACKEND_EXPLAIN) ||
	    cmd_backend_is(s, CONFIG_BACKEND_RELAY);
}

/* --- Dispatch --------------------------------------------------------------- */

static const struct cmd_row *
cmd_lookup(enum smtp_verb verb)
{
	size_t	 i;

	for (i = 0; i < nitems(cmd_table); i++)
		if (cmd_table[i].verb == verb)
			return &cmd_table[i];
	return NULL;
}

static void
cmd_bad_line(struct session *s, enum smtp_parse_status st)
{
	if (st == SMTP_PARSE_EMPTY) {
		cmd_fail(s, 500, "5.5.2", "Error: empty command");
		return;
	}
	session_log(s, LOG_LEVEL_INFO, "error reason=%s client=%s",
	    st == SMTP_PARSE_NUL ? "nul_in_command" : "bad_character", s->addr);
	cmd_fail(s, 500, "5.5.2", "Error: %s", st == SMTP_PARSE_NUL ?
	    "NUL byte in command" : "invalid character in command");
}

void
smtp_cmd_dispatch(struct session *s, const char *line, size_t len)
{
	struct smtp_command	 cmd;
	enum smtp_parse_status	 st;
	const struct cmd_row	*row;
	struct cmd_state	*c;

	if ((st = smtp_command_parse(line, len, &cmd)) != SMTP_PARSE_OK) {
		cmd_bad_line(s, st);
		return;
	}
	if (cmd.verb == SMTP_VERB_HTTP) {
		session_log(s, LOG_LEVEL_INFO, "disconnect reason=non_smtp_command client=%s",
		    s->addr);
		session_close(s, 221, "2.7.0", "Error: this is an SMTP server, goodbye");
		return;
	}
	if ((row = cmd_lookup(cmd.verb)) == NULL) {
		char	 verb[33], q[160];
		size_t	 n = cmd.verb_len < 32 ? cmd.verb_len : 32;

		memcpy(verb, cmd.verb_text, n);
		verb[n] = '\0';
		session_log(s, LOG_LEVEL_INFO, "error reason=unknown_command verb=%s client=%s",
		    log_quote(q, sizeof(q), verb, 32), s->addr);
		cmd_fail(s, 500, "5.5.2", "Error: command not recognized");
		return;
	}
	if ((s->flags & SESSION_REFUSED) && !(row->flags & CMD_ALLOWED_REFUSED)) {
		cmd_fail(s, 503, "5.7.1", "Error: access denied, send QUIT");
		return;
	}
	if ((s->flags & SESSION_DRAINING) && s->txn == NULL && cmd.verb != SMTP_VERB_QUIT) {
		session_close(s, 421, "4.3.2", "Service shutting down, closing connection");
		return;
	}
	if (cmd_junk_limit(s, cmd.verb) == -1)
		return;
	c = cmd_state_new(s, cmd.verb);
	if (row->check(s, c, cmd.arg, cmd.arg_len) == -1)
		return;
	c->row_index = (size_t)(row - cmd_table);
	if (row->phase != CMD_NO_PHASE && chain_wants(s, row->phase))
		chain_start(s, row->phase, cmd_chain_done);
	else
		row->proceed(s, c);
}

/*
 * limits.commands_before_mail (like Postfix's smtpd_junk_command_limit):
 * commands that move no mail (NOOP, RSET, VRFY, EXPN, HELP, a repeated
 * HELO/EHLO) are counted; a MAIL with valid syntax sets the count back to
 * 0 (session_txn_new).  Past the limit: 421 and close.  -1 when closed.
 */
static int
cmd_junk_limit(struct session *s, enum smtp_verb verb)
{
	long long	 max = s->lg->conf->limits.commands_before_mail;

	switch (verb) {
	case SMTP_VERB_NOOP:
	case SMTP_VERB_RSET:
	case SMTP_VERB_VRFY:
	case SMTP_VERB_EXPN:
	case SMTP_VERB_HELP:
		break;
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		if (s->helo == NULL)
			return 0;	/* the first greeting is not junk */
		break;
	default:
		return 0;
	}
	if (max <= 0 || ++s->junk <= (unsigned long long)max)
		return 0;
	session_log(s, LOG_LEVEL_INFO, "disconnect reason=too_many_commands commands=%u "
	    "limit=%lld client=%s", s->junk, max, s->addr);
	session_close(s, 421, "4.7.0", "Too many commands without mail, closing");
	return -1;
}

/* The default reply for a chain verdict in a phase. */
void
cmd_verdict_reply(struct session *s, enum sluice_phase phase, const struct chain_result *r)
{
	int		 code;
	const char	*enh, *text;

	if (r->verdict == SLUICE_DISCONNECT) {
		code = 421;
		enh = "4.7.0";
		text = "Closing connection";
	} else if (r->verdict == SLUICE_TEMPFAIL) {
		code = phase == SLUICE_PHASE_RCPT || phase == SLUICE_PHASE_HELO ? 450 : 451;
		enh = "4.7.1";
		text = "Service temporarily unavailable, try again later";
	} else {
		code = phase == SLUICE_PHASE_DATA || phase == SLUICE_PHASE_CONNECT ? 554 : 550;
		enh = "5.7.1";
		text = phase == SLUICE_PHASE_RCPT ? "Recipient address rejected: access denied" :
		    phase == SLUICE_PHASE_MAIL ? "Sender address rejected: access denied" :
		    phase == SLUICE_PHASE_HELO ? "Helo command rejected: access denied" :
		    phase >= SLUICE_PHASE_HEADER ? "Message content rejected" : "Access denied";
	}
	if (r->code != 0) {
		code = r->code;
		enh = r->enhanced[0] != '\0' ? r->enhanced : NULL;
		if (enh == NULL)
			enh = code >= 500 ? "5.7.1" : "4.7.1";
	}
	if (r->text[0] != '\0')
		text = r->text;
	if (r->verdict == SLUICE_DISCONNECT)
		session_close(s, code, enh, text);
	else
		session_reply(s, code, enh, "%s", text);
}

static void
cmd_chain_done(struct session *s, const struct chain_result *r)
{
	struct cmd_state	*c = s->cmd;
	const struct cmd_row	*row = &cmd_table[c->row_index];

	switch (r->verdict) {
	case SLUICE_CONTINUE:
		row->proceed(s, c);
		return;
	case SLUICE_DISCARD:
		/* At HELO it covers the session (a HELO ends any transaction). */
		if (s->txn != NULL && row->phase != SLUICE_PHASE_HELO)
			s->txn->discard = 1;
		else
			s->flags |= SESSION_DISCARD_ALL;
		row->proceed(s, c);
		return;
	default:
		break;
	}
	cmd_verdict_reply(s, row->phase, r);
	if (r->verdict == SLUICE_DISCONNECT)
		return;
	session_error(s);
	if (row->phase == SLUICE_PHASE_HELO) {
		/* A refused HELO leaves the client where it was before it. */
		free(s->helo);
		s->helo = NULL;
		s->flags &= ~SESSION_ESMTP;
	}
	/* A refused MAIL leaves no transaction; a refused RCPT leaves it as it was. */
	if (row->verb == SMTP_VERB_MAIL)
		session_txn_end(s, r->verdict == SLUICE_TEMPFAIL ? "tempfail" : "rejected");
	session_command_done(s);
}

/* --- Connect and greeting ---------------------------------------------- */

static void
cmd_greet(struct session *s)
{
	const struct config_listener *l = s->lg->conf;

	session_reply(s, 220, NULL, "%s %s", l->hostname, l->banner);
	/* Input sent before the greeting (a PENDING connect hook, the reverse
	 * lookup) waits in the buffer: go on with it now. */
	session_command_done(s);
}

void
smtp_cmd_connect(struct session *s)
{
	s->flags |= SESSION_BUSY;
	if (chain_wants(s, SLUICE_PHASE_CONNECT)) {
		chain_start(s, SLUICE_PHASE_CONNECT, connect_chain_done);
		return;
	}
	cmd_greet(s);
}

static void
connect_chain_done(struct session *s, const struct chain_result *r)
{
	const struct config_listener *l = s->lg->conf;

	switch (r->verdict) {
	case SLUICE_CONTINUE:
		cmd_greet(s);
		break;
	case SLUICE_DISCARD:
		s->flags |= SESSION_DISCARD_ALL;
		cmd_greet(s);
		break;
	case SLUICE_REJECT:
		/* RFC 5321 3.1: 554 greeting, then wait for QUIT answering 503. */
		s->flags |= SESSION_REFUSED;
		session_reply(s, r->code >= 500 ? r->code : 554, NULL, "%s %s", l->hostname,
		    r->text[0] != '\0' ? r->text : "Access denied");
		break;
	default:
		/* TEMPFAIL and DISCONNECT: 421 and close. */
		session_close(s, r->code >= 400 && r->code < 500 ? r->code : 421,
		    r->enhanced[0] != '\0' ? r->enhanced : "4.7.0",
		    r->text[0] != '\0' ? r->text : "Service not available, closing connection");
		return;
	}
	session_command_done(s);
}

/* --- HELO / EHLO ----------------------------------------------------------- */

static int
check_helo(struct session *s, struct cmd_state *c, const char *arg, size_t len)
{
	size_t	 i;

	if (len == 0) {
		cmd_fail(s, 501, "5.5.4", "Syntax: %s hostname",
		    c->verb == SMTP_VERB_EHLO ? "EHLO" : "HELO");
		return -1;
	}
	/*
	 * Any printable argument is taken (real clients send names with '_'
	 * and worse); filters judge it.  Spaces end it, as Postfix does.
	 */
	for (i = 0; i < len && arg[i] != ' ' && arg[i] != '\t'; i++)
		;
	if (i > 255) {
		cmd_fail(s, 501, "5.5.4", "Error: hostname too long");
		return -1;
	}
	c->helo = xstrndup(arg, i);
	free(s->helo);
	s->helo = xstrdup(c->helo);
	if (c->verb == SMTP_VERB_EHLO)
		s->flags |= SESSION_ESMTP;
	else
		s->flags &= ~SESSION_ESMTP;
	return 0;
}

static void
ehlo_reply(struct session *s)
{
	const struct config_listener *l = s->lg->conf;
	char	 text[512];

	snprintf(text, sizeof(text), "%s\nPIPELINING\nSIZE %lld\n8BITMIME\n"
	    "ENHANCEDSTATUSCODES\nSMTPUTF8\nDSN%s%s", l->hostname,
	    l->limits.message_size,
	    l->tls.mode == CONFIG_TLS_STARTTLS && !session_tls_active(s) ? "\nSTARTTLS" : "",
	    smtp_auth_offered(s) && s->auth_user == NULL ? "\nAUTH PLAIN LOGIN" : "");
	smtp_reply_add(session_output(s), 250, NULL, text);
}

static void
helo_reply(struct session *s)
{
	session_reply(s, 250, NULL, "%s", s->lg->conf->hostname);
}

static void
proceed_helo(struct session *s, struct cmd_state *c)
{
	void	(*reply)(struct session *) = c->verb == SMTP_VERB_EHLO ? ehlo_reply : helo_reply;

	/* HELO/EHLO resets a transaction in progress (RFC 5321 4.1.4). */
	if (s->txn != NULL) {
		session_txn_end(s, "aborted");
		cmd_reset_upstream(s, reply);
		return;
	}
	reply(s);
	session_command_done(s);
}

/* --- MAIL ------------------------------------------------------------------ */

/* Append " KEY=VALUE" of p to buf. */
static void
params_append(char **buf, const struct smtp_param *p)
{
	char	*n;

	if (p->value != NULL)
		xasprintf(&n, "%s %.*s=%.*s", *buf, (int)p->keyword_len, p->keyword,
		    (int)p->value_len, p->value);
	else
		xasprintf(&n, "%s %.*s", *buf, (int)p->keyword_len, p->keyword);
	free(*buf);
	*buf = n;
}

static int
param_value_is(const struct smtp_param *p, const char *v)
{
	return p->value != NULL && strlen(v) == p->value_len &&
	    strncasecmp(p->value, v, p->value_len) == 0;
}

/*
 * Check MAIL parameters; fill c.  Returns 0, or -1 after replying.
 * SIZE is checked here and never forwarded (the limit is ours); the rest
 * is forwarded when the backend offers the extension (proceed checks).
 */
static int
mail_params_check(struct session *s, struct cmd_state *c, const struct smtp_path_arg *pa)
{
	size_t	 i, j;

	c->params = xstrdup("");
	for (i = 0; i < pa->nparams; i++) {
		const struct smtp_param	*p = &pa->params[i];

		for (j = 0; j < i; j++)
			if (pa->params[j].keyword_len == p->keyword_len &&
			    strncasecmp(pa->params[j].keyword, p->keyword, p->keyword_len) == 0) {
				cmd_fail(s, 501, "5.5.4", "Error: duplicate parameter");
				return -1;
			}
		if (smtp_param_is(p, "SIZE")) {
			unsigned long long	 v;
			char			*end, num[32];
			long long		 max = s->lg->conf->limits.message_size;

			if (p->value == NULL || p->value_len == 0 || p->value_len > 20) {
				cmd_fail(s, 501, "5.5.4", "Error: bad SIZE parameter");
				return -1;
			}
			memcpy(num, p->value, p->value_len);
			num[p->value_len] = '\0';
			errno = 0;
			v = strtoull(num, &end, 10);
			if (*end != '\0' || errno != 0 || !isdigit((unsigned char)num[0])) {
				cmd_fail(s, 501, "5.5.4", "Error: bad SIZE parameter");
				return -1;
			}
			if (max > 0 && v > (unsigned long long)max) {
				cmd_fail(s, 552, "5.3.4", "Message size exceeds fixed limit");
				return -1;
			}
			c->size = v;
		} else if (smtp_param_is(p, "BODY")) {
			if (param_value_is(p, "7BIT"))
				c->body8 = 0;
			else if (param_value_is(p, "8BITMIME"))
				c->body8 = 1;
			else {
				cmd_fail(s, 555, "5.5.4", "Error: unsupported BODY parameter value");
				return -1;
			}
			params_append(&c->params, p);
		} else if (smtp_param_is(p, "SMTPUTF8")) {
			if (p->value != NULL) {
				cmd_fail(s, 501, "5.5.4", "Error: SMTPUTF8 takes no value");
				return -1;
			}
			c->smtputf8 = 1;
			params_append(&c->params, p);
		} else if (smtp_param_is(p, "RET")) {
			if (!param_value_is(p, "FULL") && !param_value_is(p, "HDRS")) {
				cmd_fail(s, 501, "5.5.4", "Error: bad RET parameter");
				return -1;
			}
			c->dsn = 1;
			params_append(&c->params, p);
		} else if (smtp_param_is(p, "AUTH")) {
			/* RFC 4954 section 5: kept aside, forwarded if the backend has AUTH. */
			if (p->value == NULL || p->value_len == 0 || p->value_len > 500 ||
			    !smtp_xtext_valid(p->value, p->value_len)) {
				cmd_fail(s, 501, "5.5.4", "Error: bad AUTH parameter");
				return -1;
			}
			c->auth_param = xstrndup(p->value, p->value_len);
		} else if (smtp_param_is(p, "ENVID")) {
			if (p->value == NULL || p->value_len > 100 ||
			    !smtp_xtext_valid(p->value, p->value_len)) {
				cmd_fail(s, 501, "5.5.4", "Error: bad ENVID parameter");
				return -1;
			}
			c->dsn = 1;
			params_append(&c->params, p);
		} else {
			cmd_fail(s, 555, "5.5.4", "Error: unsupported parameter %.*s",
			    (int)(p->keyword_len < 32 ? p->keyword_len : 32), p->keyword);
			return -1;
		}
	}
	return 0;
}

/* 1 if arg (after the path) carries an SMTPUTF8 parameter. */
static int
arg_has_smtputf8(const char *arg, size_t len)
{
	size_t	 i;

	for (i = 0; i + 9 <= len; i++)
		if ((arg[i] == ' ') && strncasecmp(arg + i + 1, "SMTPUTF8", 8) == 0 &&
		    (i + 9 == len || arg[i + 9] == ' '))
			return 1;
	return 0;
}

static int
check_mail(struct session *s, struct cmd_state *c, const char *arg, size_t len)
{
	struct smtp_path_arg	 pa;
	enum smtp_parse_status	 st;
	int			 flags = SMTP_PATH_ALLOW_NULL;

	if (s->helo == NULL) {
		cmd_fail(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return -1;
	}
	if (s->txn != NULL) {
		cmd_fail(s, 503, "5.5.1", "Error: nested MAIL command");
		return -1;
	}
	if (s->lg->conf->tls.required && !session_tls_active(s)) {
		cmd_fail(s, 530, "5.7.0", "Must issue a STARTTLS command first");
		return -1;
	}
	if (smtp_auth_required(s)) {
		cmd_fail(s, 530, "5.7.0", "Authentication required");
		return -1;
	}
	if ((s->flags & SESSION_ESMTP) && arg_has_smtputf8(arg, len))
		flags |= SMTP_PATH_ALLOW_UTF8;
	if ((st = smtp_path_arg_parse(arg, len, "FROM", flags, &pa)) != SMTP_PARSE_OK) {
		if (st == SMTP_PARSE_UTF8)
			cmd_fail(s, 553, "5.6.7", "Error: non-ASCII address or parameter "
			    "requires SMTPUTF8");
		else if (st == SMTP_PARSE_NO_COLON)
			cmd_fail(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		else
			cmd_fail(s, 501, "5.1.7", "Bad sender address syntax: %s",
			    smtp_parse_status_text(st));
		return -1;
	}
	if (pa.nparams > 0 && !(s->flags & SESSION_ESMTP)) {
		cmd_fail(s, 555, "5.5.4", "Error: parameters need EHLO");
		return -1;
	}
	if (mail_params_check(s, c, &pa) == -1)
		return -1;
	c->mailbox = xstrdup(pa.path.mailbox);
	session_txn_new(s);
	s->txn->mail_from = xstrdup(c->mailbox);
	s->txn->smtputf8 = c->smtputf8;
	return 0;
}

static void
proceed_mail(struct session *s, struct cmd_state *c)
{
	if (cmd_backend_local(s)) {
		s->txn->mail_params = xstrdup(c->params);
		session_reply(s, 250, "2.1.0", "Ok");
		session_command_done(s);
		return;
	}
	cmd_upstream_mail(s);
}

/* --- RCPT ------------------------------------------------------------------ */

static int
rcpt_params_check(struct session *s, struct cmd_state *c, const struct smtp_path_arg *pa)
{
	size_t	 i;

	c->params = xstrdup("");
	for (i = 0; i < pa->nparams; i++) {
		const struct smtp_param	*p = &pa->params[i];

		if (smtp_param_is(p, "NOTIFY")) {
			if (p->value == NULL || p->value_len == 0) {
				cmd_fail(s, 501, "5.5.4", "Error: bad NOTIFY parameter");
				return -1;
			}
			c->dsn = 1;
		} else if (smtp_param_is(p, "ORCPT")) {
			const char	*semi = p->value != NULL ?
			    memchr(p->value, ';', p->value_len) : NULL;

			if (semi == NULL || p->value_len > 500 || !smtp_xtext_valid(semi + 1,
			    p->value_len - (size_t)(semi + 1 - p->value))) {
				cmd_fail(s, 501, "5.5.4", "Error: bad ORCPT parameter");
				return -1;
			}
			c->dsn = 1;
		} else {
			cmd_fail(s, 555, "5.5.4", "Error: unsupported parameter %.*s",
			    (int)(p->keyword_len < 32 ? p->keyword_len : 32), p->keyword);
			return -1;
		}
		params_append(&c->params, p);
	}
	return 0;
}

static int
check_rcpt(struct session *s, struct cmd_state *c, const char *arg, size_t len)
{
	struct smtp_path_arg	 pa;
	enum smtp_parse_status	 st;
	struct txn		*t = s->txn;
	int			 flags = SMTP_PATH_ALLOW_POSTMASTER;

	if (t == NULL) {
		cmd_fail(s, 503, "5.5.1", "Error: need MAIL command");
		return -1;
	}
	t->rcpt_attempts++;
	if (t->upstream_failed) {
		session_reply(s, 451, "4.4.1", "Backend connection lost, try again later");
		session_command_done(s);
		return -1;
	}
	if (t->nrcpts >= (size_t)s->lg->conf->limits.recipients) {
		session_reply(s, 452, "4.5.3", "Error: too many recipients");
		session_command_done(s);
		return -1;
	}
	if (cmd_backend_is(s, CONFIG_BACKEND_LMTP) && t->nrcpts >= 1) {
		/*
		 * LMTP answers per recipient after DATA; one SMTP reply cannot
		 * carry mixed answers.  One recipient per transaction loses
		 * nothing and accepts nothing falsely (RFC 5321 4.5.3.1.10).
		 */
		session_reply(s, 452, "4.5.3", "Error: one recipient per transaction, "
		    "send the others in a new transaction");
		session_command_done(s);
		return -1;
	}
	if (t->smtputf8)
		flags |= SMTP_PATH_ALLOW_UTF8;
	if ((st = smtp_path_arg_parse(arg, len, "TO", flags, &pa)) != SMTP_PARSE_OK) {
		if (st == SMTP_PARSE_UTF8)
			cmd_fail(s, 553, "5.6.7", "Error: non-ASCII address requires SMTPUTF8");
		else if (st == SMTP_PARSE_NO_COLON)
			cmd_fail(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		else if (st == SMTP_PARSE_NULL_NOT_ALLOWED)
			cmd_fail(s, 501, "5.1.3", "Bad recipient address syntax: empty address");
		else
			cmd_fail(s, 501, "5.1.3", "Bad recipient address syntax: %s",
			    smtp_parse_status_text(st));
		return -1;
	}
	if (pa.nparams > 0 && !(s->flags & SESSION_ESMTP)) {
		cmd_fail(s, 555, "5.5.4", "Error: parameters need EHLO");
		return -1;
	}
	if (rcpt_params_check(s, c, &pa) == -1)
		return -1;
	c->mailbox = xstrdup(pa.path.mailbox);
	t->rcpt_current = c->mailbox;
	return 0;
}

void
cmd_rcpt_accepted(struct session *s, struct cmd_state *c)
{
	struct txn	*t = s->txn;

	if (t->nrcpts == t->rcpts_cap) {
		t->rcpts_cap = t->rcpts_cap ? t->rcpts_cap * 2 : 4;
		t->rcpts = xreallocarray(t->rcpts, t->rcpts_cap, sizeof(*t->rcpts));
	}
	t->rcpts[t->nrcpts].mailbox = c->mailbox;
	t->rcpts[t->nrcpts].params = c->params;
	t->rcpts[t->nrcpts].added = 0;
	t->nrcpts++;
	c->mailbox = NULL;
	c->params = NULL;
	t->rcpt_current = NULL;
}

static void
proceed_rcpt(struct session *s, struct cmd_state *c)
{
	if (cmd_backend_local(s)) {
		cmd_rcpt_accepted(s, c);
		session_reply(s, 250, "2.1.5", "Ok");
		session_command_done(s);
		return;
	}
	cmd_upstream_rcpt(s, c);
}

/* --- DATA ------------------------------------------------------------------ */

static int
check_data(struct session *s, struct cmd_state *c, const char *arg, size_t len)
{
	struct txn	*t = s->txn;

	if (len != 0) {
		cmd_fail(s, 501, "5.5.4", "Syntax: DATA");
		return -1;
	}
	if (t == NULL) {
		cmd_fail(s, 503, "5.5.1", "Error: need RCPT command");
		return -1;
	}
	if (t->upstream_failed) {
		session_reply(s, 451, "4.4.1", "Backend connection lost, try again later");
		session_command_done(s);
		return -1;
	}
	if (t->nrcpts == 0) {
		cmd_fail(s, 554, "5.5.1", "Error: no valid recipients");
		return -1;
	}
	return 0;
}

static void
proceed_data(struct session *s, struct cmd_state *c)
{
	struct message_limits	 ml;
	const struct config_limits *lim = &s->lg->conf->limits;

	ml.mem_limit = (size_t)lim->spool_memory;
	ml.max_headers = (size_t)lim->headers;
	ml.max_header_size = (size_t)lim->header_size;
	if ((s->txn->msg = message_new(&ml, s->gen->cfg->spool_dir)) == NULL) {
		session_reply(s, 451, "4.3.0", "Local error, try again later");
		session_command_done(s);
		return;
	}
	session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
	session_data_begin(s);
	session_command_done(s);
}

/* --- RSET, NOOP, QUIT, VRFY, HELP, unimplemented ---------------------------- */

static int
check_no_arg(struct session *s, struct cmd_state *c, const char *arg, size_t len)
{
	if (len != 0) {
		cmd_fail(s, 501, "5.5.4", "Syntax: %s", smtp_verb_name(c->verb));
		return -1;
	}
	return 0;
}

static int
check_any(struct session *s, struct cmd_state *c, const char *arg, size_t len)
{
	return 0;
}

static void
rset_reply(struct session *s)
{
	session_reply(s, 250, "2.0.0", "Ok");
}

static void
proceed_rset(struct session *s, struct cmd_state *c)
{
	if (s->txn != NULL) {
		session_txn_end(s, "aborted");
		cmd_reset_upstream(s, rset_reply);
		return;
	}
	rset_reply(s);
	session_command_done(s);
}

static void
proceed_noop(struct session *s, struct cmd_state *c)
{
	session_reply(s, 250, "2.0.0", "Ok");
	session_command_done(s);
}

static void
proceed_quit(struct session *s, struct cmd_state *c)
{
	session_close(s, 221, "2.0.0", "Bye");
	session_command_done(s);
}

static void
proceed_vrfy(struct session *s, struct cmd_state *c)
{
	session_reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message "
	    "and attempt delivery");
	session_command_done(s);
}

static void
proceed_help(struct session *s, struct cmd_state *c)
{
	session_reply(s, 214, "2.0.0", "See RFC 5321, https://www.rfc-editor.org/rfc/rfc5321");
	session_command_done(s);
}

static void
proceed_not_implemented(struct session *s, struct cmd_state *c)
{
	cmd_fail(s, 502, "5.5.1", "Error: command not implemented");
}
