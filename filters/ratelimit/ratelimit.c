/*
 * ratelimit.c - the "ratelimit" built-in filter: one instance is one
 * rule, counting connections, messages or recipients per client address
 * (or prefix), sender, sender domain, recipient, recipient domain or
 * authenticated user in a fixed window, in the core's counter store:
 *
 *	ratelimit "per-ip" {
 *		key = "ip"  prefix4 = 24  prefix6 = 64
 *		count = "messages"  limit = 100  window = 1h
 *		store = "redis://127.0.0.1:6379"  on_store_error = "accept"
 *	}
 *
 * Over the limit it answers 451 4.7.1 (a connection: 421 4.7.0 and
 * close) and logs "ratelimit exceeded key=... count=... limit=...
 * window=...".  When the store fails, on_store_error decides: accept
 * (fail open, logged) or tempfail (fail closed).  Which phase counts and
 * which checks is ratelimit_action() (ratelimit_policy.c).
 *
 * Every hook that asks the store returns PENDING; the answers come back
 * on the session's worker, and the last one resumes the hook.  At the
 * end of a message with a recipient's key, each distinct recipient key
 * is counted, and the message is refused if any went over.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "ratelimit_policy.h"
#include "sluice_filter.h"

/* Distinct recipient keys counted for one message at most. */
#define RATELIMIT_KEYS_MAX	1000
/* The longest instance name that goes into a store key. */
#define RATELIMIT_NAME_MAX	128

struct ratelimit {
	struct ratelimit_rule	 rule;		/* what to count, the limit */
	struct sluice_store	*store;		/* the core's, shared; not ours to close */
	char			 name[RATELIMIT_NAME_MAX];	/* instance name */
	char			 window[32];	/* "3600s" for log lines */
};

struct ratelimit_call;

/* One key of a call and its answer. */
struct ratelimit_slot {
	struct ratelimit_call	*call;		/* owner */
	char			*key;		/* "ip:192.0.2.0/24" */
	long long		 value;		/* the count the store answered */
	int			 answered;	/* ok from the store */
};

/* One hook's store requests, answered together. */
struct ratelimit_call {
	struct sluice_pending	*pending;	/* the suspended hook */
	const struct ratelimit	*rl;		/* the instance (the core holds its generation) */
	enum ratelimit_action	 action;	/* CHECK or COUNT */
	enum sluice_phase	 phase;		/* for the reply */
	size_t			 nslots;	/* keys */
	size_t			 left;		/* answers still to come */
	size_t			 failed;	/* store failures */
	char			 why[160];	/* the first failure */
	struct ratelimit_slot	 slots[];	/* nslots */
};

static int	 ratelimit_read_rule(struct sluice_filter *, struct ratelimit_rule *, char *,
		    size_t);
static int	 ratelimit_init(struct sluice_filter *, void **, char *, size_t);
static void	 ratelimit_fini(void *);
static struct ratelimit_call *ratelimit_call_new(const struct ratelimit *,
		    enum ratelimit_action, enum sluice_phase, size_t);
static void	 ratelimit_call_free(struct ratelimit_call *);
static enum sluice_verdict ratelimit_ask(struct sluice_ctx *, struct ratelimit_call *);
static void	 ratelimit_answer(void *, const struct sluice_counter *);
static struct ratelimit_slot *ratelimit_worst(struct ratelimit_call *);
static void	 ratelimit_finish(struct ratelimit_call *, struct sluice_ctx *);
static const char *ratelimit_subject(struct sluice_ctx *, enum ratelimit_key);
static enum sluice_verdict ratelimit_oom(struct sluice_ctx *, struct ratelimit_call *);
static enum sluice_verdict ratelimit_one(struct sluice_ctx *, enum sluice_phase);
static enum sluice_verdict ratelimit_connect(struct sluice_ctx *);
static enum sluice_verdict ratelimit_mail(struct sluice_ctx *);
static enum sluice_verdict ratelimit_rcpt(struct sluice_ctx *);
static enum sluice_verdict ratelimit_eom(struct sluice_ctx *);
static int	 ratelimit_key_cmp(const void *, const void *);
static char	**ratelimit_recipient_keys(struct sluice_ctx *, const struct ratelimit_rule *,
		    size_t *);

static const struct sluice_option ratelimit_options[] = {
	{ "key", SLUICE_OPT_STRING, "ip", 0,
	    "counted per: ip, sender, sender_domain, recipient, recipient_domain or user" },
	{ "prefix4", SLUICE_OPT_INT, "32", 0, "key ip: IPv4 prefix length counted together" },
	{ "prefix6", SLUICE_OPT_INT, "64", 0, "key ip: IPv6 prefix length counted together" },
	{ "count", SLUICE_OPT_STRING, "messages", 0,
	    "connections (at connect), messages (at end of data) or recipients (at RCPT)" },
	{ "limit", SLUICE_OPT_INT, NULL, 1, "events allowed per key and window; more get 4xx" },
	{ "window", SLUICE_OPT_DURATION, "1h", 0,
	    "fixed window, started by the key's first event (1s to 366d)" },
	{ "store", SLUICE_OPT_STRING, "memory", 0,
	    "\"memory\" or \"redis://HOST:PORT[/DB][?timeout=250ms&prefix=sluice:]\"" },
	{ "on_store_error", SLUICE_OPT_STRING, "accept", 0,
	    "when the store fails: accept (fail open, logged) or tempfail (fail closed)" },
	{ NULL, 0, NULL, 0, NULL }
};

/* --- Configuration ---------------------------------------------------------- */

static int
ratelimit_read_rule(struct sluice_filter *f, struct ratelimit_rule *r, char *err, size_t errlen)
{
	long long	 v;

	if (ratelimit_parse_key(sluice_option_string(f, "key"), &r->key) == -1)
		return snprintf(err, errlen, "key must be ip, sender, sender_domain, recipient, "
		    "recipient_domain or user"), -1;
	if (ratelimit_parse_count(sluice_option_string(f, "count"), &r->count) == -1)
		return snprintf(err, errlen, "count must be connections, messages or "
		    "recipients"), -1;
	if (ratelimit_parse_store_error(sluice_option_string(f, "on_store_error"),
	    &r->fail_closed) == -1)
		return snprintf(err, errlen, "on_store_error must be accept or tempfail"), -1;
	v = sluice_option_int(f, "prefix4");
	r->prefix4 = v >= 0 && v <= 32 ? (int)v : -1;
	v = sluice_option_int(f, "prefix6");
	r->prefix6 = v >= 0 && v <= 128 ? (int)v : -1;
	r->limit = sluice_option_int(f, "limit");
	v = sluice_option_duration(f, "window");
	r->window_ms = v > 0 && v <= 366LL * 86400 * 1000 ? (unsigned long)v : 0;
	return ratelimit_rule_check(r, err, errlen);
}

static int
ratelimit_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct ratelimit	*rl = calloc(1, sizeof(*rl));
	const char		*name = sluice_filter_name(f);

	if (rl == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	*instance = rl;
	if (ratelimit_read_rule(f, &rl->rule, err, errlen) == -1)
		return ratelimit_fini(rl), -1;
	if (strlen(name) >= sizeof(rl->name))
		return snprintf(err, errlen, "the instance name is too long for a counter key "
		    "(at most %d characters)", RATELIMIT_NAME_MAX - 1), ratelimit_fini(rl), -1;
	snprintf(rl->name, sizeof(rl->name), "%s", name);
	if (rl->rule.window_ms % 1000 == 0)
		snprintf(rl->window, sizeof(rl->window), "%lus", rl->rule.window_ms / 1000);
	else
		snprintf(rl->window, sizeof(rl->window), "%lums", rl->rule.window_ms);
	if ((rl->store = sluice_store_open(f, sluice_option_string(f, "store"), err,
	    errlen)) == NULL)
		return ratelimit_fini(rl), -1;
	return 0;
}

static void
ratelimit_fini(void *instance)
{
	free(instance);
}

/* --- Asking the store ---------------------------------------------------------- */

static struct ratelimit_call *
ratelimit_call_new(const struct ratelimit *rl, enum ratelimit_action action,
    enum sluice_phase phase, size_t nslots)
{
	struct ratelimit_call	*call;
	size_t			 i;

	if ((call = calloc(1, sizeof(*call) + nslots * sizeof(call->slots[0]))) == NULL)
		return NULL;
	call->rl = rl;
	call->action = action;
	call->phase = phase;
	call->nslots = nslots;
	for (i = 0; i < nslots; i++)
		call->slots[i].call = call;
	return call;
}

static void
ratelimit_call_free(struct ratelimit_call *call)
{
	size_t	 i;

	for (i = 0; i < call->nslots; i++)
		free(call->slots[i].key);
	free(call);
}

/* Send every slot's request; the hook is PENDING until the last answer. */
static enum sluice_verdict
ratelimit_ask(struct sluice_ctx *ctx, struct ratelimit_call *call)
{
	const struct ratelimit	*rl = call->rl;
	char			 skey[RATELIMIT_KEY_MAX + RATELIMIT_NAME_MAX + 8];
	size_t			 i;

	call->pending = sluice_suspend(ctx);
	call->left = call->nslots;
	for (i = 0; i < call->nslots; i++) {
		snprintf(skey, sizeof(skey), "rl:%s:%s", rl->name, call->slots[i].key);
		if (sluice_counter_add(ctx, rl->store, skey,
		    call->action == RATELIMIT_COUNT ? 1 : 0, rl->rule.window_ms,
		    ratelimit_answer, &call->slots[i]) == -1) {
			if (call->failed++ == 0)
				snprintf(call->why, sizeof(call->why), "store refused the request");
			call->left--;
		}
	}
	/* Every request refused at once: answer now (sluice_resume is queued). */
	if (call->left == 0)
		ratelimit_finish(call, ctx);
	return SLUICE_PENDING;
}

static void
ratelimit_answer(void *arg, const struct sluice_counter *result)
{
	struct ratelimit_slot	*slot = arg;
	struct ratelimit_call	*call = slot->call;
	struct sluice_ctx	*ctx;
	char			 safe[RATELIMIT_KEY_MAX * 4];

	if (!result->ok) {
		if (call->failed++ == 0)
			snprintf(call->why, sizeof(call->why), "%s",
			    result->why != NULL ? result->why : "store error");
	} else {
		slot->answered = 1;
		slot->value = result->value;
		if ((ctx = sluice_pending_ctx(call->pending)) != NULL)
			sluice_log(ctx, SLUICE_LOG_DEBUG, "ratelimit %s key=%s count=%lld "
			    "limit=%lld ttl=%lldms", call->action == RATELIMIT_CHECK ? "check" :
			    "count", ratelimit_log_safe(slot->key, 0, safe, sizeof(safe)),
			    result->value, call->rl->rule.limit, result->ttl_ms);
	}
	if (--call->left == 0)
		ratelimit_finish(call, sluice_pending_ctx(call->pending));
}

/* The slot furthest over the limit, or NULL. */
static struct ratelimit_slot *
ratelimit_worst(struct ratelimit_call *call)
{
	struct ratelimit_slot	*worst = NULL, *s;
	long long		 limit = call->rl->rule.limit;
	size_t			 i;

	for (i = 0; i < call->nslots; i++) {
		s = &call->slots[i];
		if (!s->answered)
			continue;
		/* A check reads the count before this event, a count after it. */
		if (call->action == RATELIMIT_CHECK ? s->value < limit : s->value <= limit)
			continue;
		if (worst == NULL || s->value > worst->value)
			worst = s;
	}
	return worst;
}

/* All answers are in: resume the hook; ctx is NULL when the session is gone. */
static void
ratelimit_finish(struct ratelimit_call *call, struct sluice_ctx *ctx)
{
	const struct ratelimit	*rl = call->rl;
	struct ratelimit_slot	*worst = ratelimit_worst(call);
	int			 connect = call->phase == SLUICE_PHASE_CONNECT;
	char			 text[300], safe[RATELIMIT_KEY_MAX * 4], why[sizeof(call->why) * 4];

	if (worst != NULL) {
		if (ctx != NULL)
			sluice_log(ctx, SLUICE_LOG_INFO, "ratelimit exceeded key=%s count=%lld "
			    "limit=%lld window=%s", ratelimit_log_safe(worst->key, 0,
			    safe, sizeof(safe)), worst->value + (call->action == RATELIMIT_CHECK ? 1 : 0),
			    rl->rule.limit, rl->window);
		ratelimit_reply_text(&rl->rule, worst->key, text, sizeof(text));
		sluice_resume(call->pending, connect ? SLUICE_DISCONNECT : SLUICE_TEMPFAIL,
		    connect ? 421 : 451, connect ? "4.7.0" : "4.7.1", text);
	} else if (call->failed > 0) {
		if (ctx != NULL)
			sluice_log(ctx, SLUICE_LOG_WARNING, "ratelimit store error key=%s "
			    "error=\"%s\" action=%s", ratelimit_log_safe(call->slots[0].key, 0,
			    safe, sizeof(safe)), ratelimit_log_safe(call->why, 1, why, sizeof(why)),
			    rl->rule.fail_closed ? "tempfail" : "accept");
		if (!rl->rule.fail_closed)
			sluice_resume(call->pending, SLUICE_CONTINUE, 0, NULL, NULL);
		else
			sluice_resume(call->pending, connect ? SLUICE_DISCONNECT : SLUICE_TEMPFAIL,
			    connect ? 421 : 451, connect ? "4.7.0" : "4.7.1",
			    "Rate limit service unavailable, try again later");
	} else
		sluice_resume(call->pending, SLUICE_CONTINUE, 0, NULL, NULL);
	ratelimit_call_free(call);
}

/* --- Hooks ------------------------------------------------------------------------ */

/* The subject of the rule's key in the current phase. */
static const char *
ratelimit_subject(struct sluice_ctx *ctx, enum ratelimit_key key)
{
	switch (key) {
	case RATELIMIT_KEY_IP:
		return sluice_client_address(ctx);
	case RATELIMIT_KEY_SENDER:
	case RATELIMIT_KEY_SENDER_DOMAIN:
		return sluice_mail_from(ctx);
	case RATELIMIT_KEY_RECIPIENT:
	case RATELIMIT_KEY_RECIPIENT_DOMAIN:
		return sluice_rcpt_current(ctx);
	case RATELIMIT_KEY_USER:
		return sluice_auth_user(ctx);
	}
	return NULL;
}

static enum sluice_verdict
ratelimit_oom(struct sluice_ctx *ctx, struct ratelimit_call *call)
{
	if (call != NULL)
		ratelimit_call_free(call);
	sluice_fail(ctx, "out of memory");
	return SLUICE_TEMPFAIL;
}

/* A hook with one key: the current event's. */
static enum sluice_verdict
ratelimit_one(struct sluice_ctx *ctx, enum sluice_phase phase)
{
	const struct ratelimit	*rl = sluice_instance(ctx);
	enum ratelimit_action	 action = ratelimit_action(&rl->rule, phase);
	struct ratelimit_call	*call;
	char			 key[RATELIMIT_KEY_MAX];

	if (action == RATELIMIT_NONE ||
	    ratelimit_key_make(&rl->rule, ratelimit_subject(ctx, rl->rule.key), key,
	    sizeof(key)) == -1)
		return SLUICE_CONTINUE;	/* nothing to count here, or no key: not counted */
	if ((call = ratelimit_call_new(rl, action, phase, 1)) == NULL ||
	    (call->slots[0].key = strdup(key)) == NULL)
		return ratelimit_oom(ctx, call);
	return ratelimit_ask(ctx, call);
}

static enum sluice_verdict
ratelimit_connect(struct sluice_ctx *ctx)
{
	return ratelimit_one(ctx, SLUICE_PHASE_CONNECT);
}

static enum sluice_verdict
ratelimit_mail(struct sluice_ctx *ctx)
{
	return ratelimit_one(ctx, SLUICE_PHASE_MAIL);
}

static enum sluice_verdict
ratelimit_rcpt(struct sluice_ctx *ctx)
{
	return ratelimit_one(ctx, SLUICE_PHASE_RCPT);
}

static int
ratelimit_key_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The distinct keys of the message's recipients, sorted; NULL when out of memory. */
static char **
ratelimit_recipient_keys(struct sluice_ctx *ctx, const struct ratelimit_rule *rule,
    size_t *count)
{
	char	**keys, key[RATELIMIT_KEY_MAX];
	size_t	  i, n = 0, total = sluice_rcpt_count(ctx);

	if (total > RATELIMIT_KEYS_MAX)
		total = RATELIMIT_KEYS_MAX;
	if ((keys = calloc(total + 1, sizeof(*keys))) == NULL)
		return NULL;
	for (i = 0; i < total; i++) {
		if (ratelimit_key_make(rule, sluice_rcpt(ctx, i), key, sizeof(key)) == -1)
			continue;
		if ((keys[n] = strdup(key)) == NULL) {
			while (n > 0)
				free(keys[--n]);
			free(keys);
			return NULL;
		}
		n++;
	}
	qsort(keys, n, sizeof(*keys), ratelimit_key_cmp);
	for (i = 1, *count = n > 0 ? 1 : 0; i < n; i++) {
		if (strcmp(keys[i], keys[*count - 1]) == 0)
			free(keys[i]);
		else
			keys[(*count)++] = keys[i];
	}
	return keys;
}

/* End of message: count it, once per recipient key when the key is a recipient's. */
static enum sluice_verdict
ratelimit_eom(struct sluice_ctx *ctx)
{
	const struct ratelimit	*rl = sluice_instance(ctx);
	struct ratelimit_call	*call;
	char			**keys;
	size_t			  i, n = 0;

	if (ratelimit_action(&rl->rule, SLUICE_PHASE_EOM) == RATELIMIT_NONE)
		return SLUICE_CONTINUE;
	if (!ratelimit_key_per_recipient(&rl->rule))
		return ratelimit_one(ctx, SLUICE_PHASE_EOM);
	if ((keys = ratelimit_recipient_keys(ctx, &rl->rule, &n)) == NULL)
		return ratelimit_oom(ctx, NULL);
	if (n == 0 || (call = ratelimit_call_new(rl, RATELIMIT_COUNT, SLUICE_PHASE_EOM,
	    n)) == NULL) {
		for (i = 0; i < n; i++)
			free(keys[i]);
		free(keys);
		return n == 0 ? SLUICE_CONTINUE : ratelimit_oom(ctx, NULL);
	}
	for (i = 0; i < n; i++)
		call->slots[i].key = keys[i];
	free(keys);
	return ratelimit_ask(ctx, call);
}

const struct sluice_module sluice_builtin_ratelimit = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "ratelimit",
	.description = "rate limits per client address, sender, recipient or user, "
	    "in memory or in Redis",
	.options = ratelimit_options,
	.init = ratelimit_init,
	.fini = ratelimit_fini,
	.on_connect = ratelimit_connect,
	.on_mail = ratelimit_mail,
	.on_rcpt = ratelimit_rcpt,
	.on_eom = ratelimit_eom,
};
