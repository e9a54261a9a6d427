/*
 * milter_client.c - the MTA side of the milter protocol for one session.
 *
 * Each hook sets a goal (what the milter must have seen: its MAIL, this
 * RCPT, this header, the end of the message) and milter_advance() sends
 * what is missing in protocol order: connect and negotiate first, then
 * C, H, M, R, T, L, N, B, E, each after its macros, skipping the steps
 * the milter said it does not want (SMFIP_NO*), not waiting where it said
 * it will not answer (SMFIP_NR_*).  A hook whose filter ran before ours
 * answered ACCEPT may have hidden a step from us; it is caught up here
 * (MAIL before RCPT, every RCPT before DATA, DATA before a header), since
 * libmilter ignores commands out of order without answering.
 *
 * Answers: continue goes on; accept, discard, reject, tempfail and reply
 * codes decide for the hook and, by the command they answer, for the rest
 * of the session (connect, HELO), the transaction (MAIL, DATA, content)
 * or only this recipient (RCPT reject or tempfail), as Postfix does.
 * Anything else (a malformed frame, an answer nobody asked for, a change
 * before the end of the message, a closed socket, silence past the
 * timeout) fails the milter for the rest of the session: the hook gets the
 * instance's on_error action.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_filter.h"

#include "milter_codec.h"
#include "milter_conn.h"
#include "milter_core.h"
#include "milter_int.h"
#include "milter_parse.h"

/* Largest command data libmilter reads unless it negotiated more. */
#define CLIENT_DATA_MAX		65535u

#define NO_STAGE		MILTER_STAGES

/* Each command we send: how it may be skipped or go unanswered. */
struct client_step {
	unsigned char	 cmd;		/* SMFIC_* */
	uint32_t	 skip;		/* SMFIP_NO* bit, 0 = never skipped */
	uint32_t	 noreply;	/* SMFIP_NR_* bit, 0 = always answered */
	int		 content;	/* timeout_content (else timeout_command) */
	unsigned int	 stage;		/* macros sent before it, NO_STAGE = none */
};

static const struct client_step client_steps[] = {
	{ MILTER_CMD_CONNECT, MILTER_PROTO_NOCONNECT, MILTER_PROTO_NR_CONN, 0,
	    MILTER_STAGE_CONNECT },
	{ MILTER_CMD_HELO, MILTER_PROTO_NOHELO, MILTER_PROTO_NR_HELO, 0, MILTER_STAGE_HELO },
	{ MILTER_CMD_MAIL, MILTER_PROTO_NOMAIL, MILTER_PROTO_NR_MAIL, 0, MILTER_STAGE_MAIL },
	{ MILTER_CMD_RCPT, MILTER_PROTO_NORCPT, MILTER_PROTO_NR_RCPT, 0, MILTER_STAGE_RCPT },
	{ MILTER_CMD_DATA, MILTER_PROTO_NODATA, MILTER_PROTO_NR_DATA, 0, MILTER_STAGE_DATA },
	{ MILTER_CMD_HEADER, MILTER_PROTO_NOHDRS, MILTER_PROTO_NR_HDR, 1, NO_STAGE },
	{ MILTER_CMD_EOH, MILTER_PROTO_NOEOH, MILTER_PROTO_NR_EOH, 1, MILTER_STAGE_EOH },
	{ MILTER_CMD_BODY, MILTER_PROTO_NOBODY, MILTER_PROTO_NR_BODY, 1, NO_STAGE },
	{ MILTER_CMD_BODYEOB, 0, 0, 1, MILTER_STAGE_EOM },
};

static void	 client_connected(void *);
static void	 client_frame(void *, const struct milter_frame *);
static void	 client_failed(void *, const char *);
static void	 client_timeout(void *);
static void	 client_drained(void *);
static int	 client_connect(struct milter_session *);
static void	 client_negotiated(struct milter_session *, const struct milter_msg *);
static void	 client_reply(struct milter_session *, const struct milter_msg *);
static void	 client_decide(struct milter_session *, unsigned char, enum sluice_verdict,
		    const struct milter_reply *);
static void	 client_continue(struct milter_session *);
static unsigned char client_next(struct milter_session *);
static int	 client_send(struct milter_session *, unsigned char);
static int	 client_put_command(struct milter_session *, unsigned char, const char *,
		    const char *);
static int	 client_put_header(struct milter_session *);
static int	 client_put_body(struct milter_session *);
static void	 client_mark_sent(struct milter_session *, unsigned char, int);
static int	 client_flush(struct milter_session *);
static void	 client_timer(struct milter_session *, unsigned int);
static unsigned int client_deadline(struct milter_session *, unsigned int, int *);
static const struct client_step *client_step_find(unsigned char);
static const char *client_cmd_name(unsigned char);
static int	 client_is_edit(unsigned char);

static const struct milter_conn_cbs client_cbs = {
	client_connected, client_frame, client_failed, client_timeout, client_drained
};

/* --- Driving a hook ------------------------------------------------------- */

enum milter_advance
milter_advance(struct milter_session *ms)
{
	unsigned char	 cmd;

	for (;;) {
		if (ms->decided)
			return MILTER_ADV_DONE;
		switch (ms->state) {
		case MILTER_NEW:
			return client_connect(ms) == 0 ? MILTER_ADV_WAIT : MILTER_ADV_FAIL;
		case MILTER_CONNECTING:
		case MILTER_NEGOTIATING:
			return MILTER_ADV_WAIT;
		case MILTER_FAILED:
			return MILTER_ADV_FAIL;
		case MILTER_DONE:
			ms->answer = ms->done;
			ms->decided = 1;
			return MILTER_ADV_DONE;
		case MILTER_OPEN:
			break;
		}
		if (ms->waiting != 0 || ms->waiting_drain)
			return MILTER_ADV_WAIT;
		if (ms->goal >= MILTER_GOAL_MAIL && ms->txn_decided) {
			ms->answer = ms->txn;
			ms->decided = 1;
			return MILTER_ADV_DONE;
		}
		if ((cmd = client_next(ms)) == 0) {
			memset(&ms->answer, 0, sizeof(ms->answer));
			ms->answer.verdict = SLUICE_CONTINUE;
			ms->decided = 1;
			return MILTER_ADV_DONE;
		}
		if (client_send(ms, cmd) == -1)
			return MILTER_ADV_FAIL;
		if (ms->waiting == 0 && milter_conn_output(ms->conn) > MILTER_CONN_HIGH_WATER) {
			/* Nothing to answer, but too much unread: let it drain. */
			ms->waiting_drain = 1;
			client_timer(ms, ms->mi->timeout_content_ms);
			return MILTER_ADV_WAIT;
		}
	}
}

/* An event moved things on: finish the PENDING hook if it can be. */
static void
client_continue(struct milter_session *ms)
{
	enum milter_advance	 r;

	if (ms->pending == NULL)
		return;
	if ((r = milter_advance(ms)) != MILTER_ADV_WAIT)
		milter_hook_finished(ms, r);
}

/* The next command the goal needs, 0 when it is reached. */
static unsigned char
client_next(struct milter_session *ms)
{
	if (!ms->connect_sent)
		return MILTER_CMD_CONNECT;
	if (ms->goal == MILTER_GOAL_CONNECT)
		return 0;
	if (ms->goal == MILTER_GOAL_HELO)
		return ms->goal_sent ? 0 : MILTER_CMD_HELO;
	if (!ms->helo_sent && sluice_helo(ms->ctx) != NULL)
		return MILTER_CMD_HELO;
	if (ms->step < MILTER_STEP_MAIL)
		return MILTER_CMD_MAIL;
	if (ms->goal == MILTER_GOAL_MAIL)
		return 0;
	if (ms->goal == MILTER_GOAL_RCPT)
		return ms->goal_sent ? 0 : MILTER_CMD_RCPT;
	if (ms->step < MILTER_STEP_RCPT) {
		if (ms->rcpts_sent < sluice_rcpt_count(ms->ctx))
			return MILTER_CMD_RCPT;
		ms->step = MILTER_STEP_RCPT;
	}
	if (ms->step < MILTER_STEP_DATA)
		return MILTER_CMD_DATA;
	if (ms->goal == MILTER_GOAL_DATA)
		return 0;
	if (ms->goal == MILTER_GOAL_HEADER)
		return ms->goal_sent ? 0 : MILTER_CMD_HEADER;
	if (ms->step < MILTER_STEP_EOH)
		return MILTER_CMD_EOH;
	if (ms->goal == MILTER_GOAL_EOH)
		return 0;
	if (ms->skip_body || (ms->protocol & MILTER_PROTO_NOBODY))
		ms->body_len = 0;
	if (ms->body_len >= MILTER_CHUNK_MAX)
		return MILTER_CMD_BODY;
	if (ms->goal == MILTER_GOAL_BODY)
		return 0;
	if (ms->body_len > 0)
		return MILTER_CMD_BODY;
	return ms->step < MILTER_STEP_EOM ? MILTER_CMD_BODYEOB : 0;
}

/* --- Sending ----------------------------------------------------------------- */

static const struct client_step *
client_step_find(unsigned char cmd)
{
	size_t	 i;

	for (i = 0; i < sizeof(client_steps) / sizeof(client_steps[0]); i++)
		if (client_steps[i].cmd == cmd)
			return &client_steps[i];
	return NULL;
}

/* Macros, then the command unless skipped; then wait for its answer if one comes. */
static int
client_send(struct milter_session *ms, unsigned char cmd)
{
	const struct client_step *st = client_step_find(cmd);
	const char		*rcpt = NULL, *params = "";
	int			 skip, catchup = 0;

	/* DATA is in the protocol from version 4 on. */
	skip = (ms->protocol & st->skip) != 0 || (cmd == MILTER_CMD_DATA && ms->version < 4);
	if (cmd == MILTER_CMD_RCPT) {
		catchup = ms->goal != MILTER_GOAL_RCPT;
		rcpt = catchup ? sluice_rcpt(ms->ctx, ms->rcpts_sent) : sluice_rcpt_current(ms->ctx);
		params = catchup ? "" : milter_core_rcpt_params(ms->ctx);
		if (rcpt == NULL)
			rcpt = "";
	}
	if (!(cmd == MILTER_CMD_DATA && ms->version < 4) && st->stage != NO_STAGE &&
	    milter_put_stage_macros(ms, st->stage, cmd, rcpt) == -1) {
		milter_client_fail(ms, "macros for %s too long for the protocol",
		    client_cmd_name(cmd));
		return -1;
	}
	if (!skip && client_put_command(ms, cmd, rcpt, params) == -1)
		return -1;
	client_mark_sent(ms, cmd, catchup);
	if (client_flush(ms) == -1)
		return -1;
	if (!skip && (st->noreply == 0 || !(ms->protocol & st->noreply))) {
		ms->waiting = cmd;
		ms->waiting_catchup = catchup;
		client_timer(ms, st->content ? ms->mi->timeout_content_ms :
		    ms->mi->timeout_command_ms);
	}
	return 0;
}

static int
client_put_command(struct milter_session *ms, unsigned char cmd, const char *rcpt,
    const char *params)
{
	const char	*addr, *host, *helo;
	char		 bracketed[64];
	int		 rc;

	switch (cmd) {
	case MILTER_CMD_CONNECT:
		addr = sluice_client_address(ms->ctx);
		if ((host = sluice_client_hostname(ms->ctx)) == NULL) {
			snprintf(bracketed, sizeof(bracketed), "[%s]", addr);
			host = bracketed;
		}
		rc = milter_put_connect(&ms->out, host, strchr(addr, ':') != NULL ?
		    MILTER_FAMILY_INET6 : MILTER_FAMILY_INET,
		    (uint16_t)sluice_client_port(ms->ctx), addr);
		break;
	case MILTER_CMD_HELO:
		helo = sluice_helo(ms->ctx);
		rc = milter_put_string(&ms->out, cmd, helo != NULL ? helo : "");
		break;
	case MILTER_CMD_MAIL:
		rc = milter_put_envelope(ms, cmd, sluice_mail_from(ms->ctx),
		    milter_core_mail_params(ms->ctx));
		break;
	case MILTER_CMD_RCPT:
		rc = milter_put_envelope(ms, cmd, rcpt, params);
		break;
	case MILTER_CMD_HEADER:
		return client_put_header(ms);
	case MILTER_CMD_BODY:
		return client_put_body(ms);
	default:
		rc = milter_put_empty(&ms->out, cmd);
		break;
	}
	if (rc == -1)
		milter_client_fail(ms, "%s too long for the protocol", client_cmd_name(cmd));
	return rc;
}

/* The header as Sendmail sends it: folding as LF, leading space as negotiated. */
static int
client_put_header(struct milter_session *ms)
{
	size_t	 need = strlen(ms->hvalue) + 2;
	char	*p;

	if (strlen(ms->hname) + need + 1 > CLIENT_DATA_MAX) {
		milter_client_fail(ms, "header field %.64s of %zu bytes is longer than the milter "
		    "protocol allows (%u)", ms->hname, strlen(ms->hname) + need, CLIENT_DATA_MAX);
		return -1;
	}
	if (need > ms->scratch_cap) {
		if ((p = realloc(ms->scratch, need)) == NULL) {
			milter_client_fail(ms, "out of memory");
			return -1;
		}
		ms->scratch = p;
		ms->scratch_cap = need;
	}
	milter_header_value_out(ms->hvalue, (ms->protocol & MILTER_PROTO_HDR_LEADSPC) != 0,
	    ms->scratch, ms->scratch_cap);
	if (milter_put_header(&ms->out, MILTER_CMD_HEADER, ms->hname, ms->scratch) == -1) {
		milter_client_fail(ms, "out of memory");
		return -1;
	}
	return 0;
}

/* One chunk of at most MILTER_CHUNK_MAX from the front of the pending body. */
static int
client_put_body(struct milter_session *ms)
{
	size_t	 n = ms->body_len < MILTER_CHUNK_MAX ? ms->body_len : MILTER_CHUNK_MAX;

	if (milter_put_data(&ms->out, MILTER_CMD_BODY, ms->body, n) == -1) {
		milter_client_fail(ms, "out of memory");
		return -1;
	}
	memmove(ms->body, ms->body + n, ms->body_len - n);
	ms->body_len -= n;
	return 0;
}

/* What the milter has now seen (also when the step was skipped). */
static void
client_mark_sent(struct milter_session *ms, unsigned char cmd, int catchup)
{
	switch (cmd) {
	case MILTER_CMD_CONNECT:
		ms->connect_sent = 1;
		return;
	case MILTER_CMD_HELO:
		ms->helo_sent = 1;
		ms->goal_sent = ms->goal == MILTER_GOAL_HELO;
		return;
	case MILTER_CMD_MAIL:
		ms->step = MILTER_STEP_MAIL;
		return;
	case MILTER_CMD_RCPT:
		if (!catchup) {
			ms->goal_sent = 1;
			ms->step = MILTER_STEP_RCPT;
		} else if (++ms->rcpts_sent >= sluice_rcpt_count(ms->ctx))
			ms->step = MILTER_STEP_RCPT;
		return;
	case MILTER_CMD_DATA:
		ms->step = MILTER_STEP_DATA;
		return;
	case MILTER_CMD_HEADER:
		ms->goal_sent = 1;
		ms->step = MILTER_STEP_HEADER;
		return;
	case MILTER_CMD_EOH:
		ms->step = MILTER_STEP_EOH;
		return;
	case MILTER_CMD_BODY:
		ms->step = MILTER_STEP_BODY;
		return;
	default:
		ms->step = MILTER_STEP_EOM;
		return;
	}
}

static int
client_flush(struct milter_session *ms)
{
	if (ms->out.len == 0)
		return 0;
	if (milter_conn_send(ms->conn, ms->out.data, ms->out.len) == -1) {
		milter_buf_reset(&ms->out);
		milter_client_fail(ms, "out of memory");
		return -1;
	}
	milter_buf_reset(&ms->out);
	return 0;
}

/* --- Timers ------------------------------------------------------------------ */

/*
 * stage_ms, or less so that we fire before the core's timeout for the
 * hook does (its reason would be vaguer, and the connection would be left
 * mid-command); *stage says which of the two it is.
 */
static unsigned int
client_deadline(struct milter_session *ms, unsigned int stage_ms, int *stage)
{
	long long	 core = ms->mi->core_timeout_ms, margin, left;

	*stage = 1;
	if (core <= 0)
		return stage_ms;
	margin = core / 20 > 250 ? 250 : core / 20;
	left = core - (long long)(milter_now_ms() - ms->hook_start_ms) - (margin > 0 ? margin : 1);
	if (left >= (long long)stage_ms)
		return stage_ms;
	*stage = 0;
	return left < 1 ? 1 : (unsigned int)left;
}

static void
client_timer(struct milter_session *ms, unsigned int stage_ms)
{
	ms->timer_ms = client_deadline(ms, stage_ms, &ms->timer_stage);
	milter_conn_timer(ms->conn, ms->timer_ms);
}

/* --- Connection events ------------------------------------------------------- */

static int
client_connect(struct milter_session *ms)
{
	char		 err[200];
	unsigned int	 t;
	int		 stage;

	t = client_deadline(ms, ms->mi->timeout_connect_ms, &stage);
	ms->conn = milter_conn_open(milter_core_base(ms->ctx), (const struct sockaddr *)&ms->mi->sa,
	    ms->mi->salen, t, &client_cbs, ms, err, sizeof(err));
	if (ms->conn == NULL) {
		milter_client_fail(ms, "cannot connect to %s: %s", ms->mi->address, err);
		return -1;
	}
	ms->state = MILTER_CONNECTING;
	return 0;
}

static void
client_connected(void *arg)
{
	struct milter_session	*ms = arg;

	ms->state = MILTER_NEGOTIATING;
	if (milter_put_optneg(&ms->out, MILTER_VERSION, MILTER_OFFER_ACTIONS,
	    MILTER_OFFER_PROTOCOL) == -1) {
		milter_client_fail(ms, "out of memory");
		client_continue(ms);
		return;
	}
	if (client_flush(ms) == -1) {
		client_continue(ms);
		return;
	}
	ms->waiting = MILTER_CMD_OPTNEG;
	client_timer(ms, ms->mi->timeout_command_ms);
}

static void
client_negotiated(struct milter_session *ms, const struct milter_msg *m)
{
	size_t		 pos = 0;
	uint32_t	 stage;
	const char	*list;

	ms->waiting = 0;
	milter_conn_timer(ms->conn, 0);
	if (m->code != MILTER_REPLY_OPTNEG) {
		milter_client_fail(ms, "answered %s to option negotiation",
		    milter_code_name(m->code, MILTER_FROM_FILTER));
		return;
	}
	if (m->version < 2 || m->version > MILTER_VERSION) {
		milter_client_fail(ms, "speaks protocol version %u, not 2 to %u", m->version,
		    MILTER_VERSION);
		return;
	}
	if ((m->actions & ~(uint32_t)MILTER_OFFER_ACTIONS) != 0) {
		milter_client_fail(ms, "negotiated actions 0x%x that were not offered (0x%x)",
		    m->actions, MILTER_OFFER_ACTIONS);
		return;
	}
	ms->version = m->version;
	ms->actions = m->actions;
	/* Step options we did not offer are ignored (as libmilter does). */
	ms->protocol = m->protocol & MILTER_OFFER_PROTOCOL;
	while (milter_macro_list_next(m, &pos, &stage, &list))
		if (stage < MILTER_STAGES) {
			free(ms->macros[stage]);
			ms->macros[stage] = strdup(list);
		}
	ms->state = MILTER_OPEN;
	sluice_log(ms->ctx, SLUICE_LOG_DEBUG, "milter ready address=%s version=%u actions=0x%x "
	    "protocol=0x%x", ms->mi->address, ms->version, ms->actions, ms->protocol);
}

static int
client_is_edit(unsigned char code)
{
	return code != '\0' && strchr("him+2-ebq", code) != NULL;
}

static void
client_frame(void *arg, const struct milter_frame *f)
{
	struct milter_session	*ms = arg;
	const struct client_step *st;
	struct milter_msg	 m;
	const char		*why;

	if (milter_decode(f, MILTER_FROM_FILTER, &m, &why) == -1) {
		if (strcmp(milter_code_name(f->code, MILTER_FROM_FILTER), "unknown") == 0)
			milter_client_fail(ms, "answered with unknown code 0x%02x",
			    (unsigned int)f->code);
		else
			milter_client_fail(ms, "sent a malformed %s (%s)",
			    milter_code_name(f->code, MILTER_FROM_FILTER), why);
	} else if (ms->state == MILTER_NEGOTIATING)
		client_negotiated(ms, &m);
	else if (ms->waiting == 0)
		milter_client_fail(ms, "sent %s without being asked",
		    milter_code_name(m.code, MILTER_FROM_FILTER));
	else if (m.code == MILTER_REPLY_PROGRESS) {
		st = client_step_find(ms->waiting);
		client_timer(ms, st != NULL && st->content ? ms->mi->timeout_content_ms :
		    ms->mi->timeout_command_ms);
		return;
	} else if (client_is_edit(m.code)) {
		if (ms->waiting != MILTER_CMD_BODYEOB)
			milter_client_fail(ms, "sent %s in answer to %s (changes come only at "
			    "end of message)", milter_code_name(m.code, MILTER_FROM_FILTER),
			    client_cmd_name(ms->waiting));
		else if (milter_edit_take(ms, &m) == 0)
			return;
	} else
		client_reply(ms, &m);
	client_continue(ms);
}

static void
client_failed(void *arg, const char *why)
{
	struct milter_session	*ms = arg;

	if (ms->state == MILTER_CONNECTING)
		milter_client_fail(ms, "cannot connect to %s: %s", ms->mi->address, why);
	else if (ms->waiting != 0)
		milter_client_fail(ms, "%s while we waited for the answer to %s", why,
		    client_cmd_name(ms->waiting));
	else
		milter_client_fail(ms, "%s", why);
	client_continue(ms);
}

static void
client_timeout(void *arg)
{
	struct milter_session	*ms = arg;

	if (ms->waiting_drain)
		milter_client_fail(ms, "did not read what we sent within %ums", ms->timer_ms);
	else if (ms->timer_stage)
		milter_client_fail(ms, "did not answer %s within %ums",
		    client_cmd_name(ms->waiting), ms->timer_ms);
	else
		milter_client_fail(ms, "did not answer %s before the filter's timeout (%lldms)",
		    client_cmd_name(ms->waiting), ms->mi->core_timeout_ms);
	client_continue(ms);
}

static void
client_drained(void *arg)
{
	struct milter_session	*ms = arg;

	if (!ms->waiting_drain)
		return;
	ms->waiting_drain = 0;
	milter_conn_timer(ms->conn, 0);
	client_continue(ms);
}

/* --- Answers -------------------------------------------------------------- */

static void
client_reply(struct milter_session *ms, const struct milter_msg *m)
{
	unsigned char		 cmd = ms->waiting;
	int			 catchup = ms->waiting_catchup;
	struct milter_reply	 r, *rp = NULL;
	enum sluice_verdict	 v;

	ms->waiting = 0;
	ms->waiting_catchup = 0;
	milter_conn_timer(ms->conn, 0);
	switch (m->code) {
	case MILTER_REPLY_CONTINUE:
		return;
	case MILTER_REPLY_SKIP:
		if (cmd == MILTER_CMD_BODY) {
			ms->skip_body = 1;
			ms->body_len = 0;
		}
		return;
	case MILTER_REPLY_ACCEPT:
		client_decide(ms, cmd, SLUICE_ACCEPT, NULL);
		return;
	case MILTER_REPLY_DISCARD:
		client_decide(ms, cmd, SLUICE_DISCARD, NULL);
		return;
	case MILTER_REPLY_CONN_FAIL:
	case MILTER_REPLY_SHUTDOWN:
		client_decide(ms, cmd, SLUICE_DISCONNECT, NULL);
		return;
	case MILTER_REPLY_REJECT:
	case MILTER_REPLY_TEMPFAIL:
		v = m->code == MILTER_REPLY_REJECT ? SLUICE_REJECT : SLUICE_TEMPFAIL;
		break;
	case MILTER_REPLY_REPLYCODE:
		if (milter_reply_parse(m->s1, &r) == -1) {
			milter_client_fail(ms, "sent a malformed reply code \"%.100s\"", m->s1);
			return;
		}
		v = r.code == 421 ? SLUICE_DISCONNECT : r.code >= 500 ? SLUICE_REJECT :
		    SLUICE_TEMPFAIL;
		rp = &r;
		break;
	default:
		milter_client_fail(ms, "answered %s to %s",
		    milter_code_name(m->code, MILTER_FROM_FILTER), client_cmd_name(cmd));
		return;
	}
	if (catchup && v != SLUICE_DISCONNECT)
		/* We cannot take back the 250 the client had: say so and go on. */
		sluice_log(ms->ctx, SLUICE_LOG_INFO, "milter refused rcpt=<%s> that an earlier "
		    "filter accepted; ignored", sluice_rcpt(ms->ctx, ms->rcpts_sent - 1));
	else
		client_decide(ms, cmd, v, rp);
}

/*
 * The milter decided: the hook gets v; how long it holds depends on what
 * it answered (Postfix's milter8 semantics).
 */
static void
client_decide(struct milter_session *ms, unsigned char cmd, enum sluice_verdict v,
    const struct milter_reply *r)
{
	struct milter_answer	 a;

	memset(&a, 0, sizeof(a));
	a.verdict = v;
	if (r != NULL) {
		a.code = r->code;
		memcpy(a.enhanced, r->enhanced, sizeof(a.enhanced));
		memcpy(a.text, r->text, sizeof(a.text) < sizeof(r->text) ? sizeof(a.text) :
		    sizeof(r->text));
		a.text[sizeof(a.text) - 1] = '\0';
	}
	ms->answer = a;
	ms->decided = 1;
	sluice_log(ms->ctx, SLUICE_LOG_DEBUG, "milter answered %s to %s", v == SLUICE_ACCEPT ?
	    "accept" : v == SLUICE_DISCARD ? "discard" : v == SLUICE_REJECT ? "reject" :
	    v == SLUICE_TEMPFAIL ? "tempfail" : "disconnect", client_cmd_name(cmd));
	if (v == SLUICE_ACCEPT || v == SLUICE_DISCARD) {
		memset(&a, 0, sizeof(a));
		a.verdict = SLUICE_CONTINUE;
	}
	if (v == SLUICE_DISCONNECT || cmd == MILTER_CMD_CONNECT || cmd == MILTER_CMD_HELO) {
		/* For the session: no more events, the connection is closed. */
		milter_client_quit(ms);
		ms->done = a;
		ms->state = MILTER_DONE;
		return;
	}
	if (cmd == MILTER_CMD_RCPT && (v == SLUICE_REJECT || v == SLUICE_TEMPFAIL))
		return;		/* this recipient only */
	ms->txn_decided = 1;
	ms->txn = a;
}

/* --- Failure, abort, quit ------------------------------------------------------ */

void
milter_client_fail(struct milter_session *ms, const char *fmt, ...)
{
	char	 what[400], clean[400], *p;
	va_list	 ap;

	if (ms->state == MILTER_FAILED)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	milter_text_clean(what, clean, sizeof(clean));
	for (p = clean; *p != '\0'; p++)
		if (*p == '"')
			*p = '\'';
	sluice_log(ms->ctx, SLUICE_LOG_WARNING, "milter failed address=%s error=\"%s\"",
	    ms->mi->address, clean);
	free(ms->fail_reason);
	if ((ms->fail_reason = malloc(strlen(clean) + 8)) != NULL)
		snprintf(ms->fail_reason, strlen(clean) + 8, "milter %s", clean);
	if (ms->conn != NULL) {
		milter_conn_close(ms->conn, 0);
		ms->conn = NULL;
	}
	ms->state = MILTER_FAILED;
	ms->waiting = 0;
	ms->waiting_drain = 0;
}

void
milter_client_abort(struct milter_session *ms)
{
	if (ms->state == MILTER_OPEN && (ms->waiting != 0 || ms->waiting_drain))
		/* The core gave up on our hook: the milter is mid-command. */
		milter_client_fail(ms, "the transaction ended while we waited for the answer "
		    "to %s", client_cmd_name(ms->waiting));
	else if (ms->state == MILTER_OPEN && ms->step >= MILTER_STEP_MAIL &&
	    (milter_put_empty(&ms->out, MILTER_CMD_ABORT) == -1 || client_flush(ms) == -1))
		milter_client_fail(ms, "out of memory");
	ms->step = MILTER_STEP_NONE;
	ms->rcpts_sent = 0;
	ms->txn_decided = 0;
	memset(&ms->txn, 0, sizeof(ms->txn));
	ms->fail_reported = 0;
	ms->skip_body = 0;
	free(ms->body);
	ms->body = NULL;
	ms->body_len = ms->body_cap = 0;
	milter_edit_clear(ms);
}

void
milter_client_quit(struct milter_session *ms)
{
	if (ms->conn == NULL)
		return;
	milter_conn_close(ms->conn, ms->state == MILTER_OPEN && ms->waiting == 0 &&
	    !ms->waiting_drain);
	ms->conn = NULL;
}

static const char *
client_cmd_name(unsigned char cmd)
{
	return milter_code_name(cmd, MILTER_FROM_MTA);
}
