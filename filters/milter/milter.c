/*
 * milter.c - the "milter" built-in filter: each instance is a client of one
 * external Sendmail milter (OpenDKIM, rspamd, a libmilter program), which
 * sees the session as Postfix would show it and decides and edits as it
 * would under Postfix:
 *
 *	milter "dkim-sign" {
 *		address = "inet:8891@127.0.0.1"
 *		timeout = 5m
 *		on_error = "tempfail"
 *	}
 *
 * One connection per client session, opened at the first hook and kept
 * across the session's transactions (SMFIC_ABORT between them, SMFIC_QUIT
 * at the end), on the session's worker loop.  Hooks answer PENDING while
 * the milter thinks and resume when its answer arrives; the milter's
 * changes at end of message go into the message before it is forwarded
 * (milter_edit.c), where the filters after this one see them.
 *
 * This file: the options, the instance, the hooks and the session state's
 * life.  The protocol is in milter_client.c (see milter_int.h).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "builtin.h"
#include "sluice_filter.h"

#include "milter_codec.h"
#include "milter_core.h"
#include "milter_int.h"
#include "milter_parse.h"

/* Postfix's default macro lists, with the client's identity at connect. */
#define MACROS_CONNECT	"j {daemon_name} {daemon_addr} {daemon_port} v _ {client_addr} " \
			"{client_name} {client_port} {client_ptr}"
#define MACROS_HELO	"{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}"
#define MACROS_MAIL	"i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} " \
			"{mail_mailer}"
#define MACROS_RCPT	"i {rcpt_addr} {rcpt_host} {rcpt_mailer}"

#define DAY_MS		(24LL * 3600 * 1000)

static const struct sluice_option milter_options[] = {
	{ "address", SLUICE_OPT_STRING, NULL, 1,
	    "the milter: unix:/path, inet:PORT@HOST (or inet:HOST:PORT) or inet6:PORT@HOST" },
	{ "timeout_connect", SLUICE_OPT_DURATION, "30s", 0,
	    "time to connect to the milter" },
	{ "timeout_command", SLUICE_OPT_DURATION, "30s", 0,
	    "time for each answer to negotiation, connect, HELO, MAIL, RCPT and DATA" },
	{ "timeout_content", SLUICE_OPT_DURATION, "5m", 0,
	    "time for each answer to a header, end of headers, body chunk, end of message" },
	{ "max_header_changes", SLUICE_OPT_INT, "1000", 0,
	    "header fields the milter may add, change or delete per message" },
	{ "max_rcpt_changes", SLUICE_OPT_INT, "1000", 0,
	    "recipients the milter may add or remove per message" },
	{ "max_body_size", SLUICE_OPT_SIZE, "50M", 0,
	    "largest body the milter may put in place of the message's" },
	{ "macros_connect", SLUICE_OPT_STRING, MACROS_CONNECT, 0,
	    "macros sent with the connection (the milter may ask for others)" },
	{ "macros_helo", SLUICE_OPT_STRING, MACROS_HELO, 0, "macros sent with HELO/EHLO" },
	{ "macros_mail", SLUICE_OPT_STRING, MACROS_MAIL, 0, "macros sent with MAIL FROM" },
	{ "macros_rcpt", SLUICE_OPT_STRING, MACROS_RCPT, 0, "macros sent with each RCPT TO" },
	{ "macros_data", SLUICE_OPT_STRING, "i", 0, "macros sent with DATA" },
	{ "macros_eoh", SLUICE_OPT_STRING, "i", 0, "macros sent at the end of the headers" },
	{ "macros_eom", SLUICE_OPT_STRING, "i", 0, "macros sent at the end of the message" },
	{ NULL, 0, NULL, 0, NULL }
};

/* Option name of each macro stage's list, indexed by MILTER_STAGE_*. */
static const char *const milter_macro_options[MILTER_STAGES] = {
	"macros_connect", "macros_helo", "macros_mail", "macros_rcpt", "macros_data",
	"macros_eom", "macros_eoh"
};

static int	 milter_init(struct sluice_filter *, void **, char *, size_t);
static void	 milter_fini(void *);
static int	 milter_init_timeouts(struct sluice_filter *, struct milter_instance *, char *,
		    size_t);
static int	 milter_init_limits(struct sluice_filter *, struct milter_instance *, char *,
		    size_t);
static struct milter_session *milter_session(struct sluice_ctx *);
static void	 milter_session_free(struct milter_session *);
static enum sluice_verdict milter_hook(struct sluice_ctx *, enum milter_goal);
static enum sluice_verdict milter_hook_answer(struct milter_session *, enum milter_advance);
static int	 milter_hook_quiet(struct milter_session *);
static void	 milter_hook_own(struct milter_session *);
static void	 milter_hook_abandon(struct milter_session *);
static void	 milter_hook_clear(struct milter_session *);

uint64_t
milter_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- Instances ------------------------------------------------------------- */

static int
milter_init_timeouts(struct sluice_filter *f, struct milter_instance *mi, char *err,
    size_t errlen)
{
	static const char *const names[] = {
		"timeout_connect", "timeout_command", "timeout_content"
	};
	unsigned int	*dst[] = {
		&mi->timeout_connect_ms, &mi->timeout_command_ms, &mi->timeout_content_ms
	};
	long long	 v;
	size_t		 i;

	for (i = 0; i < 3; i++) {
		v = sluice_option_duration(f, names[i]);
		if (v < 1 || v > DAY_MS) {
			snprintf(err, errlen, "%s must be between 1ms and 1d", names[i]);
			return -1;
		}
		*dst[i] = (unsigned int)v;
	}
	mi->core_timeout_ms = milter_core_filter_timeout(f);
	mi->observe = milter_core_filter_observe(f);
	return 0;
}

static int
milter_init_limits(struct sluice_filter *f, struct milter_instance *mi, char *err,
    size_t errlen)
{
	long long	 v;

	if ((v = sluice_option_int(f, "max_header_changes")) < 0 || v > 1000000) {
		snprintf(err, errlen, "max_header_changes must be between 0 and 1000000");
		return -1;
	}
	mi->max_header_changes = (size_t)v;
	if ((v = sluice_option_int(f, "max_rcpt_changes")) < 0 || v > 100000) {
		snprintf(err, errlen, "max_rcpt_changes must be between 0 and 100000");
		return -1;
	}
	mi->max_rcpt_changes = (size_t)v;
	if ((v = sluice_option_size(f, "max_body_size")) < 0 || v > 64LL * 1024 * 1024 * 1024) {
		snprintf(err, errlen, "max_body_size must be between 0 and 64G");
		return -1;
	}
	mi->max_body_size = (size_t)v;
	return 0;
}

static int
milter_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct milter_instance	*mi = calloc(1, sizeof(*mi));
	const char		*s;
	size_t			 i;

	if (mi == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	*instance = mi;
	s = sluice_option_string(f, "address");
	if (milter_address_parse(s, &mi->sa, &mi->salen, err, errlen) == -1 ||
	    milter_init_timeouts(f, mi, err, errlen) == -1 ||
	    milter_init_limits(f, mi, err, errlen) == -1)
		return milter_fini(mi), -1;
	mi->name = strdup(sluice_filter_name(f));
	mi->address = strdup(s);
	for (i = 0; i < MILTER_STAGES; i++) {
		s = sluice_option_string(f, milter_macro_options[i]);
		mi->macros[i] = strdup(s != NULL ? s : "");
		if (mi->macros[i] == NULL)
			break;
	}
	if (mi->name == NULL || mi->address == NULL || i < MILTER_STAGES)
		return snprintf(err, errlen, "out of memory"), milter_fini(mi), -1;
	return 0;
}

static void
milter_fini(void *instance)
{
	struct milter_instance	*mi = instance;
	size_t			 i;

	for (i = 0; i < MILTER_STAGES; i++)
		free(mi->macros[i]);
	free(mi->name);
	free(mi->address);
	free(mi);
}

/* --- Session state ------------------------------------------------------------ */

static struct milter_session *
milter_session(struct sluice_ctx *ctx)
{
	void			**slot = sluice_session_data(ctx);
	struct milter_session	*ms = *slot;

	if (ms == NULL) {
		if ((ms = calloc(1, sizeof(*ms))) == NULL)
			return NULL;
		ms->mi = sluice_instance(ctx);
		milter_buf_init(&ms->out);
		*slot = ms;
	}
	ms->ctx = ctx;
	return ms;
}

static void
milter_session_free(struct milter_session *ms)
{
	size_t	 i;

	milter_client_quit(ms);
	milter_edit_clear(ms);
	milter_hook_clear(ms);
	for (i = 0; i < MILTER_STAGES; i++)
		free(ms->macros[i]);
	milter_buf_free(&ms->out);
	free(ms->fail_reason);
	free(ms->body);
	free(ms->scratch);
	free(ms);
}

/* --- Hooks ----------------------------------------------------------------------- */

/* Every hook: set the goal, drive the milter toward it, answer now or later. */
static enum sluice_verdict
milter_hook(struct sluice_ctx *ctx, enum milter_goal goal)
{
	struct milter_session	*ms = milter_session(ctx);
	enum milter_advance	 r;

	if (ms == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	if (ms->pending != NULL)
		milter_hook_abandon(ms);
	ms->goal = goal;
	ms->goal_sent = 0;
	ms->decided = 0;
	memset(&ms->answer, 0, sizeof(ms->answer));
	ms->hook_start_ms = milter_now_ms();
	if ((r = milter_advance(ms)) != MILTER_ADV_WAIT) {
		milter_hook_clear(ms);
		return milter_hook_answer(ms, r);
	}
	milter_hook_own(ms);
	ms->pending = sluice_suspend(ctx);
	return SLUICE_PENDING;
}

/*
 * After a failure, headers and body chunks of the same transaction go on
 * quietly: one failure per content phase is logged, and end of message
 * fails again (so on_error decides the message).
 */
static int
milter_hook_quiet(struct milter_session *ms)
{
	int	 content = ms->goal == MILTER_GOAL_HEADER || ms->goal == MILTER_GOAL_EOH ||
	    ms->goal == MILTER_GOAL_BODY;

	if (content && ms->fail_reported)
		return 1;
	if (content)
		ms->fail_reported = 1;
	return 0;
}

static enum sluice_verdict
milter_hook_answer(struct milter_session *ms, enum milter_advance r)
{
	const struct milter_answer	*a = &ms->answer;

	if (r == MILTER_ADV_FAIL) {
		if (milter_hook_quiet(ms))
			return SLUICE_CONTINUE;
		sluice_fail(ms->ctx, "%s", ms->fail_reason != NULL ? ms->fail_reason :
		    "milter failed");
		return SLUICE_TEMPFAIL;
	}
	if (ms->goal == MILTER_GOAL_EOM && (a->verdict == SLUICE_CONTINUE ||
	    a->verdict == SLUICE_ACCEPT))
		milter_edit_apply(ms);
	if (a->code != 0)
		sluice_reply(ms->ctx, a->code, a->enhanced[0] != '\0' ? a->enhanced : NULL, "%s",
		    a->text);
	return a->verdict;
}

void
milter_hook_finished(struct milter_session *ms, enum milter_advance r)
{
	struct sluice_pending		*p = ms->pending;
	const struct milter_answer	*a = &ms->answer;

	ms->pending = NULL;
	milter_hook_clear(ms);
	if (r == MILTER_ADV_FAIL) {
		if (milter_hook_quiet(ms))
			sluice_resume(p, SLUICE_CONTINUE, 0, NULL, NULL);
		else
			sluice_resume_fail(p, ms->fail_reason != NULL ? ms->fail_reason :
			    "milter failed");
		return;
	}
	if (ms->goal == MILTER_GOAL_EOM && (a->verdict == SLUICE_CONTINUE ||
	    a->verdict == SLUICE_ACCEPT))
		milter_edit_apply(ms);
	sluice_resume(p, a->verdict, a->code, a->enhanced[0] != '\0' ? a->enhanced : NULL,
	    a->text[0] != '\0' ? a->text : NULL);
}

/* The hook waits: keep what its arguments pointed to. */
static void
milter_hook_own(struct milter_session *ms)
{
	if (ms->goal != MILTER_GOAL_HEADER || ms->goal_sent || ms->hname_own != NULL)
		return;
	ms->hname_own = strdup(ms->hname);
	ms->hvalue_own = strdup(ms->hvalue);
	if (ms->hname_own == NULL || ms->hvalue_own == NULL) {
		milter_client_fail(ms, "out of memory");
		ms->hname = ms->hvalue = "";
		return;
	}
	ms->hname = ms->hname_own;
	ms->hvalue = ms->hvalue_own;
}

static void
milter_hook_clear(struct milter_session *ms)
{
	free(ms->hname_own);
	free(ms->hvalue_own);
	ms->hname_own = ms->hvalue_own = NULL;
	ms->hname = ms->hvalue = NULL;
}

/*
 * A new hook (or the end of the transaction) while the last one is still
 * PENDING: the core's timeout gave up on it first.  Its handle must still
 * be resumed, and the milter is mid-command: close it.
 */
static void
milter_hook_abandon(struct milter_session *ms)
{
	sluice_resume_fail(ms->pending, "abandoned");
	ms->pending = NULL;
	milter_hook_clear(ms);
	if (ms->state == MILTER_CONNECTING || ms->state == MILTER_NEGOTIATING ||
	    ms->waiting != 0 || ms->waiting_drain)
		milter_client_fail(ms, "did not answer before the filter's timeout (%lldms)",
		    ms->mi->core_timeout_ms);
}

static enum sluice_verdict
milter_on_connect(struct sluice_ctx *ctx)
{
	return milter_hook(ctx, MILTER_GOAL_CONNECT);
}

static enum sluice_verdict
milter_on_helo(struct sluice_ctx *ctx)
{
	return milter_hook(ctx, MILTER_GOAL_HELO);
}

static enum sluice_verdict
milter_on_mail(struct sluice_ctx *ctx)
{
	return milter_hook(ctx, MILTER_GOAL_MAIL);
}

static enum sluice_verdict
milter_on_rcpt(struct sluice_ctx *ctx)
{
	return milter_hook(ctx, MILTER_GOAL_RCPT);
}

static enum sluice_verdict
milter_on_data(struct sluice_ctx *ctx)
{
	return milter_hook(ctx, MILTER_GOAL_DATA);
}

static enum sluice_verdict
milter_on_header(struct sluice_ctx *ctx, const char *name, const char *value)
{
	struct milter_session	*ms = milter_session(ctx);

	if (ms == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	ms->hname = name;
	ms->hvalue = value;
	return milter_hook(ctx, MILTER_GOAL_HEADER);
}

static enum sluice_verdict
milter_on_eoh(struct sluice_ctx *ctx)
{
	return milter_hook(ctx, MILTER_GOAL_EOH);
}

/* Body bytes wait in ms->body until a full chunk (or the end) can go. */
static enum sluice_verdict
milter_on_body(struct sluice_ctx *ctx, const unsigned char *chunk, size_t len)
{
	struct milter_session	*ms = milter_session(ctx);
	unsigned char		*p;
	size_t			 cap;

	if (ms == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	if (ms->state <= MILTER_OPEN && !ms->txn_decided && !ms->skip_body &&
	    !(ms->protocol & MILTER_PROTO_NOBODY) && len > 0) {
		if (ms->body_len + len > ms->body_cap) {
			cap = ms->body_cap * 2 > ms->body_len + len ? ms->body_cap * 2 :
			    ms->body_len + len;
			if ((p = realloc(ms->body, cap)) == NULL) {
				sluice_fail(ctx, "out of memory");
				return SLUICE_TEMPFAIL;
			}
			ms->body = p;
			ms->body_cap = cap;
		}
		memcpy(ms->body + ms->body_len, chunk, len);
		ms->body_len += len;
	}
	return milter_hook(ctx, MILTER_GOAL_BODY);
}

static enum sluice_verdict
milter_on_eom(struct sluice_ctx *ctx)
{
	return milter_hook(ctx, MILTER_GOAL_EOM);
}

static void
milter_on_reset(struct sluice_ctx *ctx)
{
	struct milter_session	*ms = *sluice_session_data(ctx);

	if (ms == NULL)
		return;
	ms->ctx = ctx;
	if (ms->pending != NULL)
		milter_hook_abandon(ms);
	milter_client_abort(ms);
}

static void
milter_on_close(struct sluice_ctx *ctx)
{
	void			**slot = sluice_session_data(ctx);
	struct milter_session	*ms = *slot;

	if (ms == NULL)
		return;
	ms->ctx = ctx;
	if (ms->pending != NULL) {
		sluice_resume_fail(ms->pending, "session closed");
		ms->pending = NULL;
	}
	milter_session_free(ms);
	*slot = NULL;
}

const struct sluice_module sluice_builtin_milter = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "milter",
	.description = "milter client: an external Sendmail milter checks and edits the mail",
	.options = milter_options,
	.init = milter_init,
	.fini = milter_fini,
	.on_connect = milter_on_connect,
	.on_helo = milter_on_helo,
	.on_mail = milter_on_mail,
	.on_rcpt = milter_on_rcpt,
	.on_data = milter_on_data,
	.on_header = milter_on_header,
	.on_eoh = milter_on_eoh,
	.on_body = milter_on_body,
	.on_eom = milter_on_eom,
	.on_reset = milter_on_reset,
	.on_close = milter_on_close,
};
