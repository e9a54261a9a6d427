/*
 * filter_api.c - the sluice_*() services of filters/sluice_filter.h, as
 * the daemon provides them to built-in and plugin filters.
 *
 * A struct sluice_ctx is one filter instance's view of one session.  All
 * functions taking a ctx run on the session's worker thread; the pending
 * handle is the one object that crosses threads, and it carries only the
 * session id and the run sequence number, never a pointer into a session.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chain.h"
#include "generation.h"
#include "log.h"
#include "message.h"
#include "pool.h"
#include "session.h"
#include "sluice_filter.h"
#include "util.h"
#include "worker.h"

struct sluice_pending {
	uint64_t		 session_id;	/* whom to resume */
	uint64_t		 seq;		/* which hook call */
	struct worker		*worker;	/* the session's worker */
	enum sluice_verdict	 verdict;	/* filled by resume */
	int			 code;		/* reply code or 0 */
	char			 enhanced[16];	/* enhanced code or "" */
	char			*text;		/* reply text, owned */
	char			*fail;		/* failure reason, owned, NULL if none */
};

struct deferred_call {
	void			(*fn)(void *);	/* the filter's function */
	void			*arg;		/* its argument */
	struct event		*ev;		/* timer, for sluice_after */
};

static struct filter_instance *
ctx_instance(struct sluice_ctx *ctx)
{
	return ctx->session->lg->chain[ctx->index];
}

void *
sluice_instance(struct sluice_ctx *ctx)
{
	return ctx_instance(ctx)->instance;
}

void **
sluice_session_data(struct sluice_ctx *ctx)
{
	return &ctx->data;
}

uint64_t
sluice_session_id(struct sluice_ctx *ctx)
{
	return ctx->session->id;
}

enum sluice_phase
sluice_phase(struct sluice_ctx *ctx)
{
	return ctx->session->run.phase;
}

const char *
sluice_listener_name(struct sluice_ctx *ctx)
{
	return ctx->session->lg->conf->name;
}

const char *
sluice_client_address(struct sluice_ctx *ctx)
{
	return ctx->session->addr;
}

int
sluice_client_port(struct sluice_ctx *ctx)
{
	return ctx->session->port;
}

const char *
sluice_client_hostname(struct sluice_ctx *ctx)
{
	return NULL;	/* no reverse lookups in the core yet */
}

const char *
sluice_helo(struct sluice_ctx *ctx)
{
	return ctx->session->helo;
}

const char *
sluice_auth_user(struct sluice_ctx *ctx)
{
	return NULL;	/* AUTH is not offered by this build */
}

const char *
sluice_mail_from(struct sluice_ctx *ctx)
{
	struct txn	*t = ctx->session->txn;

	return t != NULL ? t->mail_from : NULL;
}

const char *
sluice_rcpt_current(struct sluice_ctx *ctx)
{
	struct txn	*t = ctx->session->txn;

	return t != NULL ? t->rcpt_current : NULL;
}

size_t
sluice_rcpt_count(struct sluice_ctx *ctx)
{
	struct txn	*t = ctx->session->txn;

	return t != NULL ? t->nrcpts : 0;
}

const char *
sluice_rcpt(struct sluice_ctx *ctx, size_t index)
{
	struct txn	*t = ctx->session->txn;

	return t != NULL && index < t->nrcpts ? t->rcpts[index].mailbox : NULL;
}

size_t
sluice_message_size(struct sluice_ctx *ctx)
{
	struct txn	*t = ctx->session->txn;

	return t != NULL ? t->size : 0;
}

int
sluice_note_set(struct sluice_ctx *ctx, const char *key, const char *value)
{
	struct session		*s = ctx->session;
	struct session_note	*n;

	for (n = s->notes; n != NULL; n = n->next)
		if (strcmp(n->key, key) == 0)
			break;
	if (n == NULL) {
		n = xcalloc(1, sizeof(*n));
		n->key = xstrdup(key);
		n->next = s->notes;
		s->notes = n;
	}
	free(n->value);
	n->value = xstrdup(value);
	return 0;
}

const char *
sluice_note_get(struct sluice_ctx *ctx, const char *key)
{
	struct session_note	*n;

	for (n = ctx->session->notes; n != NULL; n = n->next)
		if (strcmp(n->key, key) == 0)
			return n->value;
	return NULL;
}

/* --- Replies, failures, logs ------------------------------------------- */

static int
reply_code_valid(enum sluice_phase phase, int code)
{
	(void)phase;
	return code >= 400 && code <= 599;
}

void
sluice_reply(struct sluice_ctx *ctx, int code, const char *enhanced, const char *fmt, ...)
{
	struct chain_run	*run = &ctx->session->run;
	va_list			 ap;

	if (!run->in_hook) {
		session_log(ctx->session, LOG_LEVEL_WARNING, "filter=%s sluice_reply outside "
		    "a hook ignored", ctx_instance(ctx)->conf->name);
		return;
	}
	if (!reply_code_valid(run->phase, code)) {
		session_log(ctx->session, LOG_LEVEL_WARNING, "filter=%s invalid reply code %d "
		    "ignored", ctx_instance(ctx)->conf->name, code);
		return;
	}
	run->result.code = code;
	strlcpy_s(run->result.enhanced, enhanced != NULL ? enhanced : "",
	    sizeof(run->result.enhanced));
	va_start(ap, fmt);
	vsnprintf(run->result.text, sizeof(run->result.text), fmt, ap);
	va_end(ap);
}

void
sluice_fail(struct sluice_ctx *ctx, const char *fmt, ...)
{
	struct chain_run	*run = &ctx->session->run;
	va_list			 ap;

	if (!run->in_hook)
		return;
	run->failed = 1;
	va_start(ap, fmt);
	vsnprintf(run->result.text, sizeof(run->result.text), fmt, ap);
	va_end(ap);
}

void
sluice_log(struct sluice_ctx *ctx, enum sluice_log_level level, const char *fmt, ...)
{
	char	 msg[2048];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	session_log(ctx->session, (int)level, "filter=%s %s", ctx_instance(ctx)->conf->name, msg);
}

/* --- PENDING ------------------------------------------------------------- */

struct sluice_pending *
sluice_suspend(struct sluice_ctx *ctx)
{
	struct sluice_pending	*p = xcalloc(1, sizeof(*p));

	p->session_id = ctx->session->id;
	p->seq = ctx->session->run.seq;
	p->worker = ctx->session->worker;
	return p;
}

static void
pending_deliver(void *arg)
{
	struct sluice_pending	*p = arg;
	struct session		*s = worker_session_find(p->worker, p->session_id);

	if (s != NULL)
		chain_resume(s, p->seq, p->verdict, p->code, p->enhanced, p->text, p->fail);
	free(p->text);
	free(p->fail);
	free(p);
}

void
sluice_resume(struct sluice_pending *p, enum sluice_verdict verdict, int code,
    const char *enhanced, const char *text)
{
	p->verdict = verdict;
	p->code = code >= 400 && code <= 599 ? code : 0;
	strlcpy_s(p->enhanced, enhanced != NULL ? enhanced : "", sizeof(p->enhanced));
	p->text = text != NULL ? xstrdup(text) : NULL;
	/* Always through the queue: the session may be on another thread. */
	worker_post(p->worker, pending_deliver, p);
}

void
sluice_resume_fail(struct sluice_pending *p, const char *reason)
{
	p->verdict = SLUICE_TEMPFAIL;
	p->fail = xstrdup(reason != NULL ? reason : "failed");
	worker_post(p->worker, pending_deliver, p);
}

static void
deferred_timer_cb(evutil_socket_t fd, short events, void *arg)
{
	struct deferred_call	*d = arg;

	event_free(d->ev);
	d->fn(d->arg);
	free(d);
}

int
sluice_after(struct sluice_ctx *ctx, unsigned int ms, void (*fn)(void *), void *arg)
{
	struct deferred_call	*d = xcalloc(1, sizeof(*d));
	struct timeval		 tv;

	d->fn = fn;
	d->arg = arg;
	if ((d->ev = evtimer_new(ctx->session->worker->base, deferred_timer_cb, d)) == NULL) {
		free(d);
		return -1;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(d->ev, &tv);
	return 0;
}

int
sluice_offload(struct sluice_ctx *ctx, void (*work)(void *), void (*done)(void *), void *arg)
{
	pool_submit(ctx->session->worker, work, done, arg);
	return 0;
}

/* --- Message changes ------------------------------------------------------- */

static struct message *
ctx_message(struct sluice_ctx *ctx)
{
	struct session	*s = ctx->session;

	/* In the EOM hook, or while this instance's EOM hook is PENDING. */
	if (s->txn == NULL || s->txn->msg == NULL || !s->run.active ||
	    s->run.phase != SLUICE_PHASE_EOM || s->run.next != ctx->index + 1 ||
	    !(s->run.in_hook || s->run.pending))
		return NULL;
	return s->txn->msg;
}

int
sluice_header_add(struct sluice_ctx *ctx, const char *name, const char *value)
{
	struct message	*m = ctx_message(ctx);

	return m != NULL ? message_header_add(m, name, value) : -1;
}

int
sluice_header_insert(struct sluice_ctx *ctx, size_t index, const char *name, const char *value)
{
	struct message	*m = ctx_message(ctx);

	return m != NULL ? message_header_insert(m, index, name, value) : -1;
}

int
sluice_header_change(struct sluice_ctx *ctx, const char *name, size_t index, const char *value)
{
	struct message	*m = ctx_message(ctx);

	return m != NULL ? message_header_change(m, name, index, value) : -1;
}

int
sluice_body_replace(struct sluice_ctx *ctx, const unsigned char *data, size_t len)
{
	struct message	*m = ctx_message(ctx);

	return m != NULL ? message_body_replace(m, data, len) : -1;
}
