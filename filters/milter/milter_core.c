/*
 * milter_core.c - the daemon internals the milter client reads (see
 * milter_core.h): a stop-gap until the public filter API has them.
 */
#include "autoconf.h"

#include <stdio.h>

#include "chain.h"
#include "config.h"
#include "generation.h"
#include "session.h"
#include "smtp_cmd_int.h"
#include "worker.h"

#include "milter_core.h"

struct event_base *
milter_core_base(struct sluice_ctx *ctx)
{
	return ctx->session->worker->base;
}

const char *
milter_core_hostname(struct sluice_ctx *ctx)
{
	return ctx->session->lg->conf->hostname;
}

const char *
milter_core_local_address(struct sluice_ctx *ctx, int *port)
{
	*port = ctx->session->local_port;
	return ctx->session->local_addr;
}

int
milter_core_queue_id(struct sluice_ctx *ctx, char *buf, size_t size)
{
	struct session	*s = ctx->session;

	if (s->txn == NULL)
		return -1;
	snprintf(buf, size, "%016llx.%u", (unsigned long long)s->id, s->txn->number);
	return 0;
}

/* The command being processed, when it is verb. */
static struct cmd_state *
core_command(struct session *s, enum smtp_verb verb)
{
	struct cmd_state	*c = s->cmd;

	return (s->flags & SESSION_BUSY) && c != NULL && c->verb == verb ? c : NULL;
}

const char *
milter_core_mail_params(struct sluice_ctx *ctx)
{
	struct session		*s = ctx->session;
	struct cmd_state	*c = core_command(s, SMTP_VERB_MAIL);

	if (c != NULL && c->params != NULL)
		return c->params;
	if (s->txn != NULL && s->txn->mail_params != NULL)
		return s->txn->mail_params;
	return "";
}

const char *
milter_core_rcpt_params(struct sluice_ctx *ctx)
{
	struct cmd_state	*c = core_command(ctx->session, SMTP_VERB_RCPT);

	return c != NULL && c->params != NULL ? c->params : "";
}

long long
milter_core_filter_timeout(const struct sluice_filter *filter)
{
	return filter->conf != NULL ? filter->conf->timeout_ms : 0;
}

int
milter_core_filter_observe(const struct sluice_filter *filter)
{
	return filter->conf != NULL && filter->conf->mode == CONFIG_FILTER_OBSERVE;
}
