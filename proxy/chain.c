/*
 * chain.c - the filter chain runner: calls hooks in config order, folds
 * verdicts, waits for PENDING hooks within their instance's timeout, and
 * applies on_error and observe mode.  See chain.h.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "chain.h"
#include "config.h"
#include "generation.h"
#include "log.h"
#include "session.h"
#include "util.h"
#include "worker.h"

/* Set by sluice --explain only; NULL in the daemon. */
chain_trace_fn	 chain_trace;

static void	 chain_step(struct session *);
static void	 chain_timeout_cb(evutil_socket_t, short, void *);
static int	 chain_apply(struct session *, struct filter_instance *, enum sluice_verdict);
static void	 chain_finish(struct session *);

static const char *const verdict_names[] = {
	"continue", "accept", "tempfail", "reject", "discard", "disconnect", "pending"
};

static const char *const phase_names[] = {
	"connect", "helo", "auth", "mail", "rcpt", "data", "header", "eoh", "body",
	"eom", "reset", "close"
};

const char *
chain_verdict_name(enum sluice_verdict v)
{
	return (unsigned int)v < nitems(verdict_names) ? verdict_names[v] : "unknown";
}

const char *
chain_phase_name(enum sluice_phase p)
{
	return (unsigned int)p < nitems(phase_names) ? phase_names[p] : "unknown";
}

/* The hook of instance fi for phase, NULL when it has none. */
static int
chain_has_hook(const struct sluice_module *m, enum sluice_phase p)
{
	switch (p) {
	case SLUICE_PHASE_CONNECT:
		return m->on_connect != NULL;
	case SLUICE_PHASE_HELO:
		return m->on_helo != NULL;
	case SLUICE_PHASE_AUTH:
		return m->on_auth != NULL;
	case SLUICE_PHASE_MAIL:
		return m->on_mail != NULL;
	case SLUICE_PHASE_RCPT:
		return m->on_rcpt != NULL;
	case SLUICE_PHASE_DATA:
		return m->on_data != NULL;
	case SLUICE_PHASE_HEADER:
		return m->on_header != NULL;
	case SLUICE_PHASE_EOH:
		return m->on_eoh != NULL;
	case SLUICE_PHASE_BODY:
		return m->on_body != NULL;
	case SLUICE_PHASE_EOM:
		return m->on_eom != NULL;
	case SLUICE_PHASE_RESET:
		return m->on_reset != NULL;
	case SLUICE_PHASE_CLOSE:
		return m->on_close != NULL;
	default:
		return 0;
	}
}

int
chain_wants(const struct session *s, enum sluice_phase phase)
{
	return (s->lg->hooks & (1u << phase)) != 0;
}

static enum sluice_verdict
chain_call(struct session *s, struct filter_instance *fi, struct sluice_ctx *ctx)
{
	const struct sluice_module	*m = fi->desc;
	struct chain_run		*run = &s->run;

	switch (run->phase) {
	case SLUICE_PHASE_CONNECT:
		return m->on_connect(ctx);
	case SLUICE_PHASE_HELO:
		return m->on_helo(ctx);
	case SLUICE_PHASE_AUTH:
		return m->on_auth(ctx);
	case SLUICE_PHASE_MAIL:
		return m->on_mail(ctx);
	case SLUICE_PHASE_RCPT:
		return m->on_rcpt(ctx);
	case SLUICE_PHASE_DATA:
		return m->on_data(ctx);
	case SLUICE_PHASE_HEADER:
		return m->on_header(ctx, run->hname, run->hvalue);
	case SLUICE_PHASE_EOH:
		return m->on_eoh(ctx);
	case SLUICE_PHASE_BODY:
		return m->on_body(ctx, run->chunk, run->chunklen);
	case SLUICE_PHASE_EOM:
		return m->on_eom(ctx);
	default:
		return SLUICE_CONTINUE;
	}
}

static void
chain_begin(struct session *s, enum sluice_phase phase, chain_done_fn done)
{
	struct chain_run	*run = &s->run;

	if (run->active) {
		/* A core bug, not input: refuse this event rather than die. */
		struct chain_result	 r;

		session_log(s, LOG_LEVEL_ERROR, "chain phase=%s started while phase=%s runs",
		    chain_phase_name(phase), chain_phase_name(run->phase));
		memset(&r, 0, sizeof(r));
		r.verdict = SLUICE_TEMPFAIL;
		done(s, &r);
		return;
	}
	run->phase = phase;
	run->next = 0;
	run->active = 1;
	run->pending = 0;
	run->done = done;
	memset(&run->result, 0, sizeof(run->result));
	run->result.verdict = SLUICE_CONTINUE;
	chain_step(s);
}

void
chain_start(struct session *s, enum sluice_phase phase, chain_done_fn done)
{
	chain_begin(s, phase, done);
}

void
chain_start_header(struct session *s, const char *name, const char *value, chain_done_fn done)
{
	s->run.hname = name;
	s->run.hvalue = value;
	chain_begin(s, SLUICE_PHASE_HEADER, done);
}

void
chain_start_body(struct session *s, const unsigned char *chunk, size_t len, chain_done_fn done)
{
	s->run.chunk = chunk;
	s->run.chunklen = len;
	chain_begin(s, SLUICE_PHASE_BODY, done);
}

/* Call hooks until one decides, goes PENDING, or the chain ends. */
static void
chain_step(struct session *s)
{
	struct chain_run	*run = &s->run;
	struct listener_gen	*lg = s->lg;
	enum sluice_verdict	 v;

	while (run->next < lg->nchain) {
		struct filter_instance	*fi = lg->chain[run->next];
		struct sluice_ctx	*ctx = &s->ctx[run->next];

		run->next++;
		if (!chain_has_hook(fi->desc, run->phase))
			continue;
		run->seq++;
		run->failed = 0;
		run->in_hook = 1;
		run->result.code = 0;
		run->result.enhanced[0] = '\0';
		run->result.text[0] = '\0';
		v = chain_call(s, fi, ctx);
		run->in_hook = 0;
		if (v == SLUICE_PENDING && !run->failed) {
			struct timeval	 tv;

			run->pending = 1;
			if (run->timer == NULL && (run->timer = evtimer_new(s->worker->base,
			    chain_timeout_cb, s)) == NULL)
				fatalx("evtimer_new");
			tv.tv_sec = fi->conf->timeout_ms / 1000;
			tv.tv_usec = (fi->conf->timeout_ms % 1000) * 1000;
			evtimer_add(run->timer, &tv);
			return;
		}
		if (chain_apply(s, fi, v))
			return;
	}
	chain_finish(s);
}

static void
chain_record(struct session *s, size_t index, enum sluice_verdict v)
{
	struct txn_verdict	*tv;

	if (s->txn == NULL || s->txn->verdicts == NULL)
		return;
	tv = &s->txn->verdicts[index];
	/* The strongest verdict of the transaction stays: accept over continue, ... */
	if (v > tv->verdict) {
		tv->verdict = (unsigned char)v;
		tv->phase = (unsigned char)s->run.phase;
	}
}

/* Map a failure to the instance's on_error action. */
static enum sluice_verdict
chain_on_error(struct session *s, struct filter_instance *fi)
{
	switch (fi->conf->on_error) {
	case CONFIG_ON_ERROR_ACCEPT:
		return SLUICE_CONTINUE;
	case CONFIG_ON_ERROR_REJECT:
		s->run.result.code = 0;
		return SLUICE_REJECT;
	default:
		s->run.result.code = 0;
		return SLUICE_TEMPFAIL;
	}
}

/*
 * Fold verdict v of instance fi into the run.  Returns 1 when the run is
 * over (finished), 0 to go on with the next filter.
 */
static int
chain_apply(struct session *s, struct filter_instance *fi, enum sluice_verdict v)
{
	struct chain_run	*run = &s->run;
	char			 q[600];
	enum sluice_verdict	 said = v;
	int			 traced = 0;

	if (run->failed) {
		v = chain_on_error(s, fi);
		if (chain_trace != NULL) {
			chain_trace(s, fi->conf->name, run->phase, said, v, 0, "",
			    run->result.text, 1);
			traced = 1;
		}
		session_log(s, LOG_LEVEL_WARNING, "filter=%s phase=%s error=%s action=%s",
		    fi->conf->name, chain_phase_name(run->phase),
		    log_quote(q, sizeof(q), run->result.text, 256),
		    config_on_error_name(fi->conf->on_error));
		run->result.text[0] = '\0';
	} else if (v > SLUICE_DISCONNECT) {
		session_log(s, LOG_LEVEL_ERROR, "filter=%s phase=%s error=\"invalid verdict %d\"",
		    fi->conf->name, chain_phase_name(run->phase), (int)v);
		v = chain_on_error(s, fi);
	}
	if ((v == SLUICE_REJECT && run->result.code / 100 == 4) ||
	    (v == SLUICE_TEMPFAIL && run->result.code / 100 == 5)) {
		session_log(s, LOG_LEVEL_WARNING, "filter=%s phase=%s reply code %d does not "
		    "match verdict %s; default reply used", fi->conf->name,
		    chain_phase_name(run->phase), run->result.code, chain_verdict_name(v));
		run->result.code = 0;
		run->result.enhanced[0] = '\0';
	}
	if (v >= SLUICE_TEMPFAIL && fi->conf->mode == CONFIG_FILTER_OBSERVE) {
		session_log(s, LOG_LEVEL_INFO, "would_%s filter=%s phase=%s client=%s code=%d "
		    "reason=%s", chain_verdict_name(v), fi->conf->name,
		    chain_phase_name(run->phase), s->addr, run->result.code,
		    log_quote(q, sizeof(q), run->result.text, 256));
		v = SLUICE_CONTINUE;
	}
	if (chain_trace != NULL && !traced)
		chain_trace(s, fi->conf->name, run->phase, said, v, run->result.code,
		    run->result.enhanced, run->result.text, 0);
	chain_record(s, (size_t)(run->next - 1), v);
	if (v == SLUICE_CONTINUE)
		return 0;
	if (v == SLUICE_ACCEPT) {
		chain_finish(s);
		return 1;
	}
	run->result.verdict = v;
	run->result.filter = fi->conf->name;
	session_log(s, LOG_LEVEL_INFO, "%s filter=%s phase=%s client=%s code=%d reason=%s",
	    chain_verdict_name(v), fi->conf->name, chain_phase_name(run->phase), s->addr,
	    run->result.code, log_quote(q, sizeof(q), run->result.text, 256));
	chain_finish(s);
	return 1;
}

static void
chain_finish(struct session *s)
{
	struct chain_run	*run = &s->run;
	struct chain_result	 result = run->result;
	chain_done_fn		 done = run->done;

	run->active = 0;
	run->pending = 0;
	run->done = NULL;
	run->hname = run->hvalue = NULL;
	run->chunk = NULL;
	if (run->timer != NULL)
		evtimer_del(run->timer);
	if (result.verdict == SLUICE_ACCEPT)
		result.verdict = SLUICE_CONTINUE;
	done(s, &result);
}

static void
chain_timeout_cb(evutil_socket_t fd, short events, void *arg)
{
	struct session		*s = arg;
	struct chain_run	*run = &s->run;
	struct filter_instance	*fi = s->lg->chain[run->next - 1];

	if (!run->active || !run->pending)
		return;
	run->pending = 0;
	run->seq++;	/* the late sluice_resume is dropped */
	run->failed = 1;
	snprintf(run->result.text, sizeof(run->result.text), "timeout after %lldms",
	    fi->conf->timeout_ms);
	if (!chain_apply(s, fi, SLUICE_TEMPFAIL))
		chain_step(s);
}

void
chain_resume(struct session *s, uint64_t seq, enum sluice_verdict verdict, int code,
    const char *enhanced, const char *text, const char *fail_reason)
{
	struct chain_run	*run = &s->run;
	struct filter_instance	*fi;

	if (!run->active || !run->pending || run->seq != seq)
		return;
	fi = s->lg->chain[run->next - 1];
	run->pending = 0;
	evtimer_del(run->timer);
	run->failed = fail_reason != NULL || verdict == SLUICE_PENDING;
	run->result.code = code;
	strlcpy_s(run->result.enhanced, enhanced != NULL ? enhanced : "",
	    sizeof(run->result.enhanced));
	strlcpy_s(run->result.text, fail_reason != NULL ? fail_reason :
	    verdict == SLUICE_PENDING ? "resumed with PENDING" : text != NULL ? text : "",
	    sizeof(run->result.text));
	if (!chain_apply(s, fi, verdict))
		chain_step(s);
}

void
chain_notify(struct session *s, enum sluice_phase phase)
{
	struct listener_gen	*lg = s->lg;
	size_t			 i;

	if (!chain_wants(s, phase) || s->run.active)
		return;
	s->run.phase = phase;	/* what sluice_phase() reports in these hooks */
	for (i = 0; i < lg->nchain; i++) {
		const struct sluice_module *m = lg->chain[i]->desc;

		if (phase == SLUICE_PHASE_RESET && m->on_reset != NULL)
			m->on_reset(&s->ctx[i]);
		else if (phase == SLUICE_PHASE_CLOSE && m->on_close != NULL)
			m->on_close(&s->ctx[i]);
	}
}

void
chain_cancel(struct session *s)
{
	struct chain_run	*run = &s->run;

	run->seq++;
	run->active = 0;
	run->pending = 0;
	if (run->timer != NULL)
		evtimer_del(run->timer);
}

unsigned int
chain_hook_mask(struct filter_instance **chain, size_t n)
{
	unsigned int	 mask = 0;
	size_t		 i;
	int		 p;

	for (i = 0; i < n; i++)
		for (p = 0; p < SLUICE_PHASE_COUNT; p++)
			if (chain_has_hook(chain[i]->desc, (enum sluice_phase)p))
				mask |= 1u << p;
	return mask;
}
