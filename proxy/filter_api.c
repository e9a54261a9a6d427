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
#include <strings.h>

#include <event2/event.h>

#include "chain.h"
#include "dns.h"
#include "generation.h"
#include "log.h"
#include "message.h"
#include "pool.h"
#include "session.h"
#include "smtp_parse.h"
#include "sluice_filter.h"
#include "tls.h"
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
	struct generation	*gen;		/* held: the filter's code and instance */
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
	return ctx->session->hostname;
}

const char *
sluice_helo(struct sluice_ctx *ctx)
{
	return ctx->session->helo;
}

/* The session's TLS facts once the handshake is done, else NULL. */
static const struct tls_conn *
filter_api_tls(struct sluice_ctx *ctx)
{
	return session_tls_active(ctx->session) ? ctx->session->tls : NULL;
}

const char *
sluice_tls_version(struct sluice_ctx *ctx)
{
	const struct tls_conn	*tc = filter_api_tls(ctx);

	return tc != NULL ? tc->version : NULL;
}

const char *
sluice_tls_cipher(struct sluice_ctx *ctx)
{
	const struct tls_conn	*tc = filter_api_tls(ctx);

	return tc != NULL ? tc->cipher : NULL;
}

int
sluice_tls_cipher_bits(struct sluice_ctx *ctx)
{
	const struct tls_conn	*tc = filter_api_tls(ctx);

	return tc != NULL ? tc->bits : 0;
}

const char *
sluice_tls_peer_subject(struct sluice_ctx *ctx)
{
	const struct tls_conn	*tc = filter_api_tls(ctx);

	return tc != NULL ? tc->peer_subject : NULL;
}

const char *
sluice_tls_peer_issuer(struct sluice_ctx *ctx)
{
	const struct tls_conn	*tc = filter_api_tls(ctx);

	return tc != NULL ? tc->peer_issuer : NULL;
}

const char *
sluice_auth_user(struct sluice_ctx *ctx)
{
	return ctx->session->auth_user;
}

const char *
sluice_auth_mech(struct sluice_ctx *ctx)
{
	return ctx->session->auth_mech;
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

	/* Below the level: not even formatted (filters log per message). */
	if ((int)level < (int)log_get_level())
		return;
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
	generation_unref(d->gen);
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
	d->gen = ctx->session->gen;
	generation_ref(d->gen);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(d->ev, &tv);
	return 0;
}

/* A pool job holds the session's generation: its work may use the resolver. */
struct offload_job {
	void			(*work)(void *);
	void			(*done)(void *);
	void			*arg;
	struct generation	*gen;
};

static void
offload_work(void *arg)
{
	struct offload_job	*j = arg;

	j->work(j->arg);
}

static void
offload_done(void *arg)
{
	struct offload_job	*j = arg;

	j->done(j->arg);
	generation_unref(j->gen);
	free(j);
}

int
sluice_offload(struct sluice_ctx *ctx, void (*work)(void *), void (*done)(void *), void *arg)
{
	struct offload_job	*j = xcalloc(1, sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	j->gen = ctx->session->gen;
	generation_ref(j->gen);
	pool_submit(ctx->session->worker, offload_work, offload_done, j);
	return 0;
}

struct sluice_ctx *
sluice_pending_ctx(struct sluice_pending *p)
{
	struct session	*s;

	if (p == NULL || worker_current() != p->worker ||
	    (s = worker_session_find(p->worker, p->session_id)) == NULL)
		return NULL;
	if (!s->run.active || !s->run.pending || s->run.seq != p->seq || s->run.next == 0)
		return NULL;
	return &s->ctx[s->run.next - 1];
}

struct sluice_filter *
sluice_ctx_filter(struct sluice_ctx *ctx)
{
	return &ctx_instance(ctx)->handle;
}

/* --- DNS ------------------------------------------------------------------ */

struct dns_call {
	sluice_dns_cb		 cb;
	void			*arg;
	struct generation	*gen;	/* held: the resolver lives in it */
};

static void
dns_call_done(void *arg, const struct sluice_dns_answer *a)
{
	struct dns_call	*d = arg;

	d->cb(d->arg, a);
	generation_unref(d->gen);
	free(d);
}

int
sluice_dns_query(struct sluice_ctx *ctx, const char *name, enum sluice_dns_type type,
    sluice_dns_cb cb, void *arg)
{
	struct session	*s = ctx->session;
	struct dns_call	*d = xcalloc(1, sizeof(*d));

	d->cb = cb;
	d->arg = arg;
	d->gen = s->gen;
	generation_ref(d->gen);
	if (dns_query(s->gen->dns, s->worker, name, type, dns_call_done, d) == -1) {
		generation_unref(d->gen);
		free(d);
		return -1;
	}
	return 0;
}

struct sluice_dns_answer *
sluice_dns_lookup(struct sluice_filter *filter, const char *name, enum sluice_dns_type type)
{
	if (filter == NULL || filter->gen == NULL)
		return dns_answer_status(name != NULL ? name : "", type, SLUICE_DNS_ERROR,
		    "no resolver");
	return dns_lookup(filter->gen->dns, name != NULL ? name : "", type);
}

void
sluice_dns_answer_free(struct sluice_dns_answer *a)
{
	dns_answer_free(a);
}

const char *
sluice_dns_status_name(enum sluice_dns_status status)
{
	return dns_status_name(status);
}

/* --- Authentication results ------------------------------------------------ */

int
sluice_authres_add(struct sluice_ctx *ctx, const char *method, const char *result,
    const char *reason, const char *props)
{
	struct txn		*t = ctx->session->txn;
	struct txn_authres	*r;

	if (t == NULL || method == NULL || result == NULL || t->nauthres >= 256)
		return -1;
	t->authres = xreallocarray(t->authres, t->nauthres + 1, sizeof(*t->authres));
	r = &t->authres[t->nauthres++];
	r->method = xstrdup(method);
	r->result = xstrdup(result);
	r->reason = reason != NULL ? xstrdup(reason) : NULL;
	r->props = props != NULL ? xstrdup(props) : NULL;
	return 0;
}

size_t
sluice_authres_count(struct sluice_ctx *ctx)
{
	struct txn	*t = ctx->session->txn;

	return t != NULL ? t->nauthres : 0;
}

const struct sluice_authres *
sluice_authres_get(struct sluice_ctx *ctx, size_t index)
{
	struct txn	*t = ctx->session->txn;

	/* struct txn_authres has the public struct's layout. */
	if (t == NULL || index >= t->nauthres)
		return NULL;
	return (const struct sluice_authres *)(const void *)&t->authres[index];
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

int
sluice_header_remove(struct sluice_ctx *ctx, const char *name, size_t index)
{
	return sluice_header_change(ctx, name, index, NULL);
}

/* --- Envelope changes ----------------------------------------------------- */

/*
 * A mailbox a filter puts into the envelope must be what a client could
 * have sent: the command parser's own path grammar decides (RFC 5321 4.1.2),
 * UTF-8 allowed only when the transaction has SMTPUTF8.
 */
static int
envelope_mailbox_valid(struct sluice_ctx *ctx, const char *mailbox, int allow_empty)
{
	struct smtp_path	 path;
	char			 buf[SMTP_PATH_MAX + 3];
	int			 n, flags = allow_empty ? SMTP_PATH_ALLOW_NULL : 0;

	if (mailbox == NULL || (!allow_empty && mailbox[0] == '\0'))
		return 0;
	if (ctx->session->txn != NULL && ctx->session->txn->smtputf8)
		flags |= SMTP_PATH_ALLOW_UTF8;
	n = snprintf(buf, sizeof(buf), "<%s>", mailbox);
	return n > 0 && (size_t)n < sizeof(buf) &&
	    smtp_path_parse(buf, (size_t)n, flags, &path) == SMTP_PARSE_OK && path.route[0] == '\0';
}

static int
envelope_params_valid(const char *params)
{
	const unsigned char	*p;

	if (params == NULL)
		return 1;
	if (strlen(params) > 400)
		return 0;
	for (p = (const unsigned char *)params; *p != '\0'; p++)
		if (*p < ' ' || *p == 0x7f)
			return 0;
	return 1;
}

/* Stored as the core stores a client's: "" or " KEY=VALUE ...". */
static char *
envelope_params_copy(const char *params)
{
	char	*p;

	while (params != NULL && *params == ' ')
		params++;
	if (params == NULL || *params == '\0')
		return xstrdup("");
	xasprintf(&p, " %s", params);
	return p;
}

int
sluice_rcpt_add(struct sluice_ctx *ctx, const char *mailbox, const char *params)
{
	struct txn	*t;

	if (ctx_message(ctx) == NULL || !envelope_mailbox_valid(ctx, mailbox, 0) ||
	    !envelope_params_valid(params))
		return -1;
	t = ctx->session->txn;
	if (t->nrcpts == t->rcpts_cap) {
		t->rcpts_cap = t->rcpts_cap ? t->rcpts_cap * 2 : 4;
		t->rcpts = xreallocarray(t->rcpts, t->rcpts_cap, sizeof(*t->rcpts));
	}
	t->rcpts[t->nrcpts].mailbox = xstrdup(mailbox);
	t->rcpts[t->nrcpts].params = envelope_params_copy(params);
	t->rcpts[t->nrcpts].added = 1;
	t->nrcpts++;
	session_log(ctx->session, LOG_LEVEL_INFO, "filter=%s rcpt_add rcpt=<%s>",
	    ctx_instance(ctx)->conf->name, mailbox);
	return 0;
}

int
sluice_rcpt_remove(struct sluice_ctx *ctx, const char *mailbox)
{
	struct txn	*t;
	size_t		 i;

	if (ctx_message(ctx) == NULL || mailbox == NULL)
		return -1;
	t = ctx->session->txn;
	for (i = 0; i < t->nrcpts; i++)
		if (strcasecmp(t->rcpts[i].mailbox, mailbox) == 0)
			break;
	if (i == t->nrcpts)
		return -1;
	if (!t->rcpts[i].added)
		t->env_restart = 1;	/* the backend has it: start over */
	free(t->rcpts[i].mailbox);
	free(t->rcpts[i].params);
	memmove(&t->rcpts[i], &t->rcpts[i + 1], (t->nrcpts - i - 1) * sizeof(*t->rcpts));
	t->nrcpts--;
	session_log(ctx->session, LOG_LEVEL_INFO, "filter=%s rcpt_remove rcpt=<%s>",
	    ctx_instance(ctx)->conf->name, mailbox);
	return 0;
}

int
sluice_mail_change(struct sluice_ctx *ctx, const char *mailbox, const char *params)
{
	struct txn	*t;

	if (ctx_message(ctx) == NULL || !envelope_mailbox_valid(ctx, mailbox, 1) ||
	    !envelope_params_valid(params))
		return -1;
	t = ctx->session->txn;
	free(t->mail_from);
	free(t->mail_params);
	t->mail_from = xstrdup(mailbox);
	t->mail_params = envelope_params_copy(params);
	t->env_restart = 1;
	session_log(ctx->session, LOG_LEVEL_INFO, "filter=%s mail_change from=<%s>",
	    ctx_instance(ctx)->conf->name, mailbox);
	return 0;
}
