/*
 * spf.c - the "spf" built-in filter: SPF (RFC 7208) for the MAIL FROM and
 * HELO identities, through libspf2 and sluice's resolver.
 *
 *	spf "spf" {
 *		on_fail = "reject"		# 550 5.7.23 (the default)
 *		on_softfail = "continue"
 *		on_temperror = "tempfail"	# 451 4.7.24 (the default)
 *		skip_networks = { "127.0.0.0/8", "::1/128", "192.0.2.0/24" }
 *	}
 *
 * At MAIL it hands the check to the blocking-work pool (libspf2 only
 * blocks; its DNS goes through sluice_dns_lookup, see spf_check.c) and
 * answers PENDING.  In the pool: the HELO identity first (check_helo;
 * a HELO fail with an on_helo_fail action is conclusive, RFC 7208 2.3),
 * then MAIL FROM (for the null sender, postmaster@HELO, 2.4).  Back on
 * the session's worker it records the results for Authentication-Results
 * (smtp.mailfrom=<domain>, smtp.helo=<helo>), sets the notes spf.result,
 * spf.domain, spf.identity (and spf.helo.result, spf.helo.domain) for the
 * dmarc filter, logs one line per identity and resumes with what the
 * policy table says for the result.  DNS trouble is the SPF result
 * temperror (the table decides); only a failure of the filter itself
 * (libspf2 internal error, memory) goes to on_error.  With
 * received_spf_header, a Received-SPF field goes on top of the message.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builtin.h"
#include "common/net.h"
#include "sluice_filter.h"
#include "spf_check.h"
#include "spf_policy.h"

#ifndef HOST_NAME_MAX
#define HOST_NAME_MAX		255
#endif
#define SPF_DEFAULT_EXPLANATION	"%{i} is not one of %{d}'s designated mail servers"

/* An instance's configuration; read-only once init returns. */
struct spf_conf {
	struct spf_action	 actions[SPF_OUTCOME_COUNT];	/* on_pass ... on_permerror */
	struct spf_action	 helo_fail;	/* on_helo_fail */
	int			 check_helo;	/* check the HELO identity too */
	int			 received_header;	/* add Received-SPF at EOM */
	struct filter_net	*skip;		/* skip_networks */
	size_t			 nskip;		/* entries */
	char			*receiver;	/* this host's name (%{r}) */
	char			*explanation;	/* default explanation */
	long long		 max_ms;	/* time budget of one check */
	unsigned int		 max_void;	/* void lookup limit, 0 = none */
};

/* What Received-SPF needs of the transaction's decisive check. */
struct spf_txn {
	int			 valid;		/* a check ran in this transaction */
	enum spf_identity	 identity;	/* which */
	struct spf_check_result	 result;	/* its result */
	char			*sender;	/* envelope sender as sent */
};

/* Per session (sluice_session_data). */
struct spf_session {
	char			*helo;		/* HELO the cached result is for, or NULL */
	struct spf_check_result	 helo_result;	/* its result */
	struct spf_txn		 txn;		/* the current transaction */
};

/* One check in the pool; owned by the pool job, freed in done. */
struct spf_job {
	struct sluice_pending	*pending;	/* to resume */
	const struct spf_conf	*conf;		/* the instance's */
	struct sluice_filter	*filter;	/* for sluice_dns_lookup */
	char			*ip;		/* client address */
	char			*helo;		/* HELO name or NULL */
	char			*sender;	/* envelope sender, "" = <> */
	int			 do_helo;	/* work: check HELO */
	int			 have_helo;	/* helo_result is set */
	int			 helo_fresh;	/* ... by this job (to cache) */
	struct spf_check_result	 helo_result;
	int			 have_mail;	/* mail_result is set */
	struct spf_check_result	 mail_result;
};

static int	 spf_init(struct sluice_filter *, void **, char *, size_t);
static void	 spf_fini(void *);
static int	 spf_init_actions(struct sluice_filter *, struct spf_conf *, char *, size_t);
static int	 spf_init_networks(struct sluice_filter *, struct spf_conf *, char *, size_t);
static int	 spf_init_names(struct sluice_filter *, struct spf_conf *, char *, size_t);
static enum sluice_verdict spf_mail(struct sluice_ctx *);
static enum sluice_verdict spf_eom(struct sluice_ctx *);
static void	 spf_reset(struct sluice_ctx *);
static void	 spf_close(struct sluice_ctx *);
static struct spf_session *spf_session_get(struct sluice_ctx *);
static struct spf_job *spf_job_new(struct sluice_ctx *, const struct spf_conf *,
		    struct spf_session *, const char *);
static void	 spf_job_free(struct spf_job *);
static void	 spf_job_work(void *);
static void	 spf_job_done(void *);
static void	 spf_job_record(struct sluice_ctx *, struct spf_job *, struct spf_session *);
static void	 spf_job_answer(struct spf_job *, struct spf_session *);
static void	 spf_log_result(struct sluice_ctx *, enum spf_identity, const char *,
		    const struct spf_check_result *);
static struct sluice_dns_answer *spf_resolver_lookup(void *, const char *,
		    enum sluice_dns_type);
static void	 spf_resolver_free(void *, struct sluice_dns_answer *);
static int	 spf_helo_conclusive(const struct spf_job *);

static const char *const spf_action_options[SPF_OUTCOME_COUNT] = {
	"on_pass", "on_fail", "on_softfail", "on_neutral", "on_none", "on_temperror",
	"on_permerror"
};

static const struct sluice_option spf_options[] = {
	{ "on_pass", SLUICE_OPT_STRING, "continue", 0,
	    "pass: continue, reject, tempfail or \"<4xx|5xx> <x.y.z> text\"" },
	{ "on_fail", SLUICE_OPT_STRING, "reject", 0,
	    "fail: the default reject is 550 5.7.23 with the explanation" },
	{ "on_softfail", SLUICE_OPT_STRING, "continue", 0, "softfail: as on_pass" },
	{ "on_neutral", SLUICE_OPT_STRING, "continue", 0, "neutral: as on_pass" },
	{ "on_none", SLUICE_OPT_STRING, "continue", 0, "none (no SPF record): as on_pass" },
	{ "on_temperror", SLUICE_OPT_STRING, "tempfail", 0,
	    "temperror (DNS trouble): the default tempfail is 451 4.7.24" },
	{ "on_permerror", SLUICE_OPT_STRING, "continue", 0,
	    "permerror (broken record): local policy, RFC 7208 8.7; reject is 550 5.7.24" },
	{ "check_helo", SLUICE_OPT_BOOL, "true", 0,
	    "check the HELO identity too (RFC 7208 2.3)" },
	{ "on_helo_fail", SLUICE_OPT_STRING, "reject", 0,
	    "a HELO fail: decides without checking MAIL FROM unless continue" },
	{ "skip_networks", SLUICE_OPT_STRING_LIST, "{\"127.0.0.0/8\", \"::1/128\"}", 0,
	    "clients not checked (relay clients, local submission)" },
	{ "received_spf_header", SLUICE_OPT_BOOL, "false", 0,
	    "add a Received-SPF header field (RFC 7208 9.1) to accepted messages" },
	{ "hostname", SLUICE_OPT_STRING, NULL, 0,
	    "this host's name for %{r} and Received-SPF; default: the system host name" },
	{ "explanation", SLUICE_OPT_STRING, SPF_DEFAULT_EXPLANATION, 0,
	    "explanation (SPF macro-string) when the domain gives none" },
	{ "max_time", SLUICE_OPT_DURATION, "20s", 0,
	    "give one check up as temperror after this long (keep below timeout)" },
	{ "max_void_lookups", SLUICE_OPT_INT, "2", 0,
	    "void DNS lookups allowed before permerror (RFC 7208 4.6.4); 0 = no limit" },
	{ NULL, 0, NULL, 0, NULL }
};

/* --- Configuration ----------------------------------------------------------- */

static int
spf_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct spf_conf	*c;
	long long	 n;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	spf_check_setup();
	c->check_helo = sluice_option_bool(f, "check_helo");
	c->received_header = sluice_option_bool(f, "received_spf_header");
	c->max_ms = sluice_option_duration(f, "max_time");
	n = sluice_option_int(f, "max_void_lookups");
	if (c->max_ms < 100 || c->max_ms > 600000) {
		spf_fini(c);
		return snprintf(err, errlen, "max_time must be between 100ms and 10m"), -1;
	}
	if (n < 0 || n > 100) {
		spf_fini(c);
		return snprintf(err, errlen, "max_void_lookups must be 0 (no limit) to 100"), -1;
	}
	c->max_void = (unsigned int)n;
	if (spf_init_actions(f, c, err, errlen) == -1 ||
	    spf_init_networks(f, c, err, errlen) == -1 ||
	    spf_init_names(f, c, err, errlen) == -1) {
		spf_fini(c);
		return -1;
	}
	*instance = c;
	return 0;
}

static int
spf_init_actions(struct sluice_filter *f, struct spf_conf *c, char *err, size_t errlen)
{
	char		 why[200];
	const char	*v;
	int		 i;

	for (i = 0; i < SPF_OUTCOME_COUNT; i++) {
		v = sluice_option_string(f, spf_action_options[i]);
		if (spf_action_parse(v != NULL ? v : "continue", (enum spf_outcome)i, 0,
		    &c->actions[i], why, sizeof(why)) == -1)
			return snprintf(err, errlen, "%s %s", spf_action_options[i], why), -1;
	}
	v = sluice_option_string(f, "on_helo_fail");
	if (spf_action_parse(v != NULL ? v : "reject", SPF_OUTCOME_FAIL, 1, &c->helo_fail, why,
	    sizeof(why)) == -1)
		return snprintf(err, errlen, "on_helo_fail %s", why), -1;
	return 0;
}

static int
spf_init_networks(struct sluice_filter *f, struct spf_conf *c, char *err, size_t errlen)
{
	size_t		 i, n = sluice_option_list_count(f, "skip_networks");
	const char	*s;
	char		 why[256];

	if (n == 0)
		return 0;
	if ((c->skip = calloc(n, sizeof(*c->skip))) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	for (i = 0; i < n; i++) {
		if ((s = sluice_option_list_item(f, "skip_networks", i)) == NULL)
			s = "";
		if (filter_net_parse(s, &c->skip[i], why, sizeof(why)) != 0)
			return snprintf(err, errlen, "skip_networks: %s", why), -1;
	}
	c->nskip = n;
	return 0;
}

/* hostname (receiver) and explanation. */
static int
spf_init_names(struct sluice_filter *f, struct spf_conf *c, char *err, size_t errlen)
{
	const char	*name = sluice_option_string(f, "hostname");
	const char	*exp = sluice_option_string(f, "explanation");
	char		 host[HOST_NAME_MAX + 1], why[200];
	size_t		 i;

	if (name == NULL) {
		if (gethostname(host, sizeof(host)) == -1)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		name = host;
	}
	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		    (name[i] >= '0' && name[i] <= '9') || name[i] == '-' || name[i] == '.' ||
		    name[i] == '_'))
			break;
	if (i == 0 || name[i] != '\0' || i > SPF_DOMAIN_MAX)
		return snprintf(err, errlen, "hostname \"%.64s\" is not a host name%s", name,
		    sluice_option_string(f, "hostname") == NULL ? " (set hostname)" : ""), -1;
	if (exp == NULL)
		exp = SPF_DEFAULT_EXPLANATION;
	if (spf_check_explanation_valid(exp, why, sizeof(why)) == -1)
		return snprintf(err, errlen, "%s", why), -1;
	if ((c->receiver = strdup(name)) == NULL || (c->explanation = strdup(exp)) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	return 0;
}

static void
spf_fini(void *instance)
{
	struct spf_conf	*c = instance;

	if (c == NULL)
		return;
	free(c->skip);
	free(c->receiver);
	free(c->explanation);
	free(c);
}

/* --- Sessions ----------------------------------------------------------------- */

static struct spf_session *
spf_session_get(struct sluice_ctx *ctx)
{
	void	**slot = sluice_session_data(ctx);

	if (*slot == NULL)
		*slot = calloc(1, sizeof(struct spf_session));
	return *slot;
}

static void
spf_reset(struct sluice_ctx *ctx)
{
	struct spf_session	*s = *sluice_session_data(ctx);

	if (s == NULL)
		return;
	free(s->txn.sender);
	memset(&s->txn, 0, sizeof(s->txn));
}

static void
spf_close(struct sluice_ctx *ctx)
{
	struct spf_session	*s = *sluice_session_data(ctx);

	if (s == NULL)
		return;
	free(s->txn.sender);
	free(s->helo);
	free(s);
	*sluice_session_data(ctx) = NULL;
}

/* --- MAIL ---------------------------------------------------------------------- */

static enum sluice_verdict
spf_mail(struct sluice_ctx *ctx)
{
	const struct spf_conf	*c = sluice_instance(ctx);
	const char		*ip = sluice_client_address(ctx);
	const char		*sender = sluice_mail_from(ctx);
	struct spf_session	*s;
	struct spf_job		*job;
	char			 norm[64];

	if (ip == NULL || spf_ip_normalize(ip, norm, sizeof(norm)) == -1) {
		sluice_log(ctx, SLUICE_LOG_DEBUG, "spf skipped: client has no IP address");
		return SLUICE_CONTINUE;
	}
	if (filter_net_match(c->skip, c->nskip, ip)) {
		sluice_log(ctx, SLUICE_LOG_DEBUG, "spf skipped client=%s: skip_networks", ip);
		return SLUICE_CONTINUE;
	}
	if ((s = spf_session_get(ctx)) == NULL ||
	    (job = spf_job_new(ctx, c, s, sender != NULL ? sender : "")) == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	spf_reset(ctx);
	job->pending = sluice_suspend(ctx);
	if (sluice_offload(ctx, spf_job_work, spf_job_done, job) == -1) {
		sluice_resume_fail(job->pending, "cannot start the SPF check");
		spf_job_free(job);
	}
	return SLUICE_PENDING;
}

static struct spf_job *
spf_job_new(struct sluice_ctx *ctx, const struct spf_conf *c, struct spf_session *s,
    const char *sender)
{
	struct spf_job	*job = calloc(1, sizeof(*job));
	const char	*helo = sluice_helo(ctx);

	if (job == NULL)
		return NULL;
	job->conf = c;
	job->filter = sluice_ctx_filter(ctx);
	job->ip = strdup(sluice_client_address(ctx));
	job->helo = helo != NULL ? strdup(helo) : NULL;
	job->sender = strdup(sender);
	if (job->ip == NULL || job->sender == NULL || (helo != NULL && job->helo == NULL)) {
		spf_job_free(job);
		return NULL;
	}
	/* The HELO result is the same for every transaction of the session. */
	if (c->check_helo && helo != NULL) {
		if (s->helo != NULL && strcmp(s->helo, helo) == 0) {
			job->helo_result = s->helo_result;
			job->have_helo = 1;
		} else
			job->do_helo = 1;
	}
	return job;
}

static void
spf_job_free(struct spf_job *job)
{
	free(job->ip);
	free(job->helo);
	free(job->sender);
	free(job);
}

static struct sluice_dns_answer *
spf_resolver_lookup(void *arg, const char *name, enum sluice_dns_type type)
{
	return sluice_dns_lookup(arg, name, type);
}

static void
spf_resolver_free(void *arg, struct sluice_dns_answer *answer)
{
	sluice_dns_answer_free(answer);
}

/* A HELO fail the table acts on decides alone (RFC 7208 2.3). */
static int
spf_helo_conclusive(const struct spf_job *job)
{
	return job->have_helo && !job->helo_result.failed &&
	    job->helo_result.outcome == SPF_OUTCOME_FAIL &&
	    job->conf->helo_fail.verdict != SLUICE_CONTINUE;
}

/* In a pool thread: the checks, blocking on DNS. */
static void
spf_job_work(void *arg)
{
	struct spf_job		*job = arg;
	const struct spf_conf	*c = job->conf;
	struct spf_resolver	 r = { spf_resolver_lookup, spf_resolver_free, job->filter };
	struct spf_check_params	 p;

	memset(&p, 0, sizeof(p));
	p.ip = job->ip;
	p.helo = job->helo;
	p.sender = job->sender;
	p.receiver = c->receiver;
	p.explanation = c->explanation;
	p.max_ms = c->max_ms;
	p.max_void = c->max_void;
	p.resolver = &r;
	if (job->do_helo) {
		p.identity = SPF_IDENTITY_HELO;
		spf_check_run(&p, &job->helo_result);
		job->have_helo = job->helo_fresh = 1;
	}
	if (spf_helo_conclusive(job))
		return;
	if (job->sender[0] == '\0' && job->have_helo) {
		/* MAIL FROM:<> is postmaster@HELO: the check just made. */
		job->mail_result = job->helo_result;
		job->have_mail = 1;
		return;
	}
	p.identity = SPF_IDENTITY_MAILFROM;
	spf_check_run(&p, &job->mail_result);
	job->have_mail = 1;
}

/* On the session's worker: record, log, answer. */
static void
spf_job_done(void *arg)
{
	struct spf_job		*job = arg;
	struct sluice_ctx	*ctx = sluice_pending_ctx(job->pending);
	struct spf_session	*s;
	const struct spf_check_result *bad = NULL;

	if (ctx == NULL || (s = *sluice_session_data(ctx)) == NULL) {
		/* Session gone or timed out: the core drops this quietly. */
		sluice_resume(job->pending, SLUICE_CONTINUE, 0, NULL, NULL);
		spf_job_free(job);
		return;
	}
	if (job->helo_fresh && !job->helo_result.failed &&
	    job->helo_result.outcome != SPF_OUTCOME_TEMPERROR) {	/* worth keeping */
		free(s->helo);
		s->helo = strdup(job->helo);
		s->helo_result = job->helo_result;
	}
	if (job->have_helo && job->helo_result.failed)
		bad = &job->helo_result;
	else if (job->have_mail && job->mail_result.failed)
		bad = &job->mail_result;
	if (bad != NULL) {
		sluice_log(ctx, SLUICE_LOG_WARNING, "spf client=%s error=\"%s\"", job->ip,
		    bad->reason);
		sluice_resume_fail(job->pending, bad->reason);
		spf_job_free(job);
		return;
	}
	spf_job_record(ctx, job, s);
	spf_job_answer(job, s);
	spf_job_free(job);
}

/* Authentication-Results, notes, log lines, and what Received-SPF needs. */
static void
spf_job_record(struct sluice_ctx *ctx, struct spf_job *job, struct spf_session *s)
{
	const struct spf_check_result *h = &job->helo_result, *m = &job->mail_result;
	char		 props[SPF_DOMAIN_MAX + 32];
	int		 null_sender = job->sender[0] == '\0';

	/* A HELO or sender domain that is no domain gives none: logged only. */
	if (job->have_helo && spf_domain_valid(h->domain)) {
		snprintf(props, sizeof(props), "smtp.helo=%s", h->domain);
		sluice_authres_add(ctx, "spf", spf_outcome_name(h->outcome), NULL, props);
		sluice_note_set(ctx, "spf.helo.result", spf_outcome_name(h->outcome));
		sluice_note_set(ctx, "spf.helo.domain", h->domain);
	}
	if (job->have_helo)
		spf_log_result(ctx, SPF_IDENTITY_HELO, job->ip, h);
	if (job->have_mail) {
		if (!(null_sender && job->have_helo)) {	/* else recorded just above */
			snprintf(props, sizeof(props), "%s=%s", null_sender ? "smtp.helo" :
			    "smtp.mailfrom", m->domain);
			if (spf_domain_valid(m->domain))
				sluice_authres_add(ctx, "spf", spf_outcome_name(m->outcome),
				    NULL, props);
			spf_log_result(ctx, SPF_IDENTITY_MAILFROM, job->ip, m);
		}
		sluice_note_set(ctx, "spf.result", spf_outcome_name(m->outcome));
		sluice_note_set(ctx, "spf.domain", m->domain);
		sluice_note_set(ctx, "spf.identity", null_sender ? "helo" : "mailfrom");
	}
	s->txn.valid = 1;
	s->txn.identity = job->have_mail ? SPF_IDENTITY_MAILFROM : SPF_IDENTITY_HELO;
	s->txn.result = job->have_mail ? *m : *h;
	free(s->txn.sender);
	s->txn.sender = strdup(job->sender);
}

static void
spf_log_result(struct sluice_ctx *ctx, enum spf_identity identity, const char *ip,
    const struct spf_check_result *r)
{
	char	 reason[SPF_CHECK_TEXT_MAX * 2 + 8], domain[SPF_DOMAIN_MAX * 2 + 8];

	if (spf_domain_valid(r->domain))
		snprintf(domain, sizeof(domain), "%s", r->domain);
	else {
		domain[0] = '"';
		spf_log_quote(domain + 1, sizeof(domain) - 2, r->domain, 100);
		strcat(domain, "\"");
	}
	sluice_log(ctx, SLUICE_LOG_INFO, "spf identity=%s result=%s domain=%s client=%s "
	    "lookups=%u reason=\"%s\"", spf_identity_name(identity),
	    spf_outcome_name(r->outcome), domain, ip, r->lookups,
	    spf_log_quote(reason, sizeof(reason), r->reason, 200));
}

/* Resume with what the policy table says. */
static void
spf_job_answer(struct spf_job *job, struct spf_session *s)
{
	const struct spf_conf		*c = job->conf;
	const struct spf_action		*a;
	const struct spf_check_result	*r;
	struct spf_vars			 v;
	char				 text[SPF_REPLY_MAX];

	if (spf_helo_conclusive(job)) {
		a = &c->helo_fail;
		r = &job->helo_result;
		v.identity = "helo";
	} else {
		r = &job->mail_result;
		a = &c->actions[r->outcome];
		v.identity = job->sender[0] == '\0' ? "helo" : "mailfrom";
	}
	if (a->verdict == SLUICE_CONTINUE) {
		sluice_resume(job->pending, SLUICE_CONTINUE, 0, NULL, NULL);
		return;
	}
	v.domain = r->domain;
	v.ip = job->ip;
	v.result = spf_outcome_name(r->outcome);
	v.sender = r->sender;
	v.explanation = r->explanation;
	spf_template_expand(a->text, &v, text, sizeof(text));
	sluice_resume(job->pending, a->verdict, a->code, a->enhanced, text);
}

/* --- End of message: Received-SPF ---------------------------------------------- */

static enum sluice_verdict
spf_eom(struct sluice_ctx *ctx)
{
	const struct spf_conf	*c = sluice_instance(ctx);
	struct spf_session	*s = *sluice_session_data(ctx);
	struct spf_received	 rcv;
	char			 value[2048];
	const struct spf_check_result *r;

	if (!c->received_header || s == NULL || !s->txn.valid)
		return SLUICE_CONTINUE;
	r = &s->txn.result;
	memset(&rcv, 0, sizeof(rcv));
	rcv.result = spf_outcome_name(r->outcome);
	rcv.receiver = c->receiver;
	rcv.domain = r->domain;
	rcv.ip = sluice_client_address(ctx);
	rcv.sender = s->txn.sender;
	rcv.helo = sluice_helo(ctx);
	rcv.identity = s->txn.identity;
	if (s->txn.sender != NULL && s->txn.sender[0] == '\0')
		rcv.identity = SPF_IDENTITY_HELO;
	if (r->outcome == SPF_OUTCOME_TEMPERROR || r->outcome == SPF_OUTCOME_PERMERROR)
		rcv.problem = r->reason;
	if (spf_received_format(&rcv, value, sizeof(value)) == -1 ||
	    sluice_header_insert(ctx, 0, "Received-SPF", value) == -1)
		sluice_log(ctx, SLUICE_LOG_WARNING, "spf could not add Received-SPF");
	return SLUICE_CONTINUE;
}

const struct sluice_module sluice_builtin_spf = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "spf",
	.description = "SPF (RFC 7208) for MAIL FROM and HELO, with a policy table",
	.options = spf_options,
	.init = spf_init,
	.fini = spf_fini,
	.on_mail = spf_mail,
	.on_eom = spf_eom,
	.on_reset = spf_reset,
	.on_close = spf_close,
};
