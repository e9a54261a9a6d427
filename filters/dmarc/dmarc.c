/*
 * dmarc.c - the "dmarc" built-in filter: DMARC (RFC 7489) policy
 * evaluation from the SPF and DKIM results other filters recorded.
 *
 *	dmarc "dmarc" { on_reject = "reject"  on_quarantine = "quarantine" }
 *	listener "mx" { ... chain = { "spf", "dkim", "dmarc", "ar" } }
 *
 * At each header field it reads the From field (the author domain); at
 * end of message it asks the resolver for _dmarc.<author domain> and, if
 * there is no record, _dmarc.<organizational domain> (PENDING meanwhile),
 * hands the record to libopendmarc to read, checks whether an SPF
 * ("spf" results with smtp.mailfrom) or DKIM ("dkim" results with
 * header.d) identifier that passed is aligned with the author domain, and
 * applies the domain's policy through its on_reject / on_quarantine
 * actions.  It records dmarc=<result> header.from=<domain> for the
 * Authentication-Results field and logs one line per message:
 *
 *	dmarc result=fail domain=example.org policy=reject action=reject ...
 *
 * It must come after the spf and dkim filters in the chain.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "builtin.h"
#include "common/reply.h"
#include "dmarc_from.h"
#include "dmarc_policy.h"
#include "dmarc_psl.h"
#include "sluice_filter.h"

#define DMARC_IDS_MAX	16	/* passing SPF or DKIM identities considered, each */

enum dmarc_action {
	DMARC_ACT_CONTINUE = 0,	/* deliver as is */
	DMARC_ACT_QUARANTINE,	/* deliver with the quarantine header */
	DMARC_ACT_REJECT,	/* 5xx */
	DMARC_ACT_ERROR		/* a failure: the instance's on_error decides */
};

struct dmarc {
	struct dmarc_psl	*psl;		/* the public suffix list */
	enum dmarc_action	 on_reject;	/* p=reject failures */
	enum dmarc_action	 on_quarantine;	/* p=quarantine failures */
	enum dmarc_action	 on_bad_from;	/* no, several or unusable From */
	enum dmarc_action	 on_temperror;	/* DNS failures: CONTINUE or ERROR */
	char			*qh_name;	/* quarantine header name */
	char			*qh_value;	/* and value */
	struct filter_reply	 reject_reply;	/* code 0 = the default */
};

/* Per transaction, from the header fields. */
struct dmarc_txn {
	int			 from_fields;	/* From fields seen */
	enum dmarc_from_status	 from_status;	/* of the first one */
	char			 from_domain[DMARC_DOMAIN_MAX];	/* when OK */
};

/* One evaluation waiting for the resolver. */
struct dmarc_job {
	struct sluice_pending	*pending;	/* the suspended EOM hook */
	const struct dmarc	*d;		/* the instance (outlives the job) */
	int			 at_org;	/* asking the organizational domain */
	char			 from_domain[DMARC_DOMAIN_MAX];
	char			 org_domain[DMARC_DOMAIN_MAX];
};

/* What was found and what to do about it. */
struct dmarc_outcome {
	const char		*result;	/* pass fail none temperror permerror */
	const char		*domain;	/* author domain or NULL */
	const char		*policy;	/* the policy taken, or "absent" */
	enum dmarc_action	 action;	/* what to do */
	const struct dmarc_eval	*ev;		/* the evaluation, NULL if none was made */
	struct dmarc_record	 rec;		/* the record evaluated */
	char			 reason[512];	/* for logs and Authentication-Results */
};

/* A reply for REJECT. */
struct dmarc_reply {
	int			 code;
	char			 enhanced[16];
	char			 text[FILTER_REPLY_MAX + 1];
};

static int	 dmarc_parse_action(const char *, int, enum dmarc_action *);
static int	 dmarc_parse_reply(struct dmarc *, const char *, char *, size_t);
static int	 dmarc_parse_header(struct dmarc *, const char *);
static int	 dmarc_init(struct sluice_filter *, void **, char *, size_t);
static int	 dmarc_init_actions(struct dmarc *, struct sluice_filter *, char *, size_t);
static void	 dmarc_fini(void *);
static enum sluice_verdict dmarc_header(struct sluice_ctx *, const char *, const char *);
static enum sluice_verdict dmarc_eom(struct sluice_ctx *);
static void	 dmarc_reset(struct sluice_ctx *);
static void	 dmarc_close(struct sluice_ctx *);
static int	 dmarc_bad_from(const struct dmarc_txn *, struct dmarc_outcome *);
static int	 dmarc_query(struct sluice_ctx *, struct dmarc_job *);
static void	 dmarc_dns_done(void *, const struct sluice_dns_answer *);
static int	 dmarc_answer(struct sluice_ctx *, struct dmarc_job *,
		    const struct sluice_dns_answer *, struct dmarc_outcome *,
		    struct dmarc_eval *);
static void	 dmarc_evaluate_record(struct sluice_ctx *, const struct dmarc_job *,
		    const struct sluice_dns_record *, struct dmarc_outcome *,
		    struct dmarc_eval *);
static size_t	 dmarc_collect(struct sluice_ctx *, const char *,
		    char (*)[DMARC_DOMAIN_MAX], const char **);
static enum sluice_verdict dmarc_conclude(struct sluice_ctx *, const struct dmarc *,
		    struct dmarc_outcome *, struct dmarc_reply *);
static void	 dmarc_log(struct sluice_ctx *, const struct dmarc_outcome *);
static const char *dmarc_action_name(enum dmarc_action);

static const struct sluice_option dmarc_options[] = {
	{ "public_suffix_list", SLUICE_OPT_STRING,
	    "/usr/share/publicsuffix/public_suffix_list.dat", 0,
	    "the public suffix list, for organizational domains" },
	{ "on_reject", SLUICE_OPT_STRING, "reject", 0,
	    "failing mail from a p=reject domain: reject, quarantine or continue" },
	{ "on_quarantine", SLUICE_OPT_STRING, "quarantine", 0,
	    "failing mail from a p=quarantine domain: quarantine, reject or continue" },
	{ "on_bad_from", SLUICE_OPT_STRING, "reject", 0,
	    "no From field, several, or no usable domain: reject, quarantine or continue" },
	{ "on_temperror", SLUICE_OPT_STRING, "continue", 0,
	    "DNS failure fetching the record: continue, or error (on_error decides)" },
	{ "quarantine_header", SLUICE_OPT_STRING, "X-Sluice-DMARC: quarantine", 0,
	    "\"Name: value\" added to quarantined messages" },
	{ "reject_reply", SLUICE_OPT_STRING, NULL, 0,
	    "\"5xx x.y.z text\" for rejects; default 550 5.7.1 naming the domain" },
	{ NULL, 0, NULL, 0, NULL }
};

/* --- Configuration ------------------------------------------------------- */

/* An action name; error_ok allows only continue and error (on_temperror). */
static int
dmarc_parse_action(const char *s, int error_ok, enum dmarc_action *out)
{
	static const struct {
		const char		*name;
		enum dmarc_action	 action;
		int			 temperror;	/* valid for on_temperror */
	} names[] = {
		{ "continue", DMARC_ACT_CONTINUE, 1 },
		{ "quarantine", DMARC_ACT_QUARANTINE, 0 },
		{ "reject", DMARC_ACT_REJECT, 0 },
		{ "error", DMARC_ACT_ERROR, 1 },
	};
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0 &&
		    (error_ok ? names[i].temperror : names[i].action != DMARC_ACT_ERROR)) {
			*out = names[i].action;
			return 0;
		}
	return -1;
}

/* reject_reply: filter_reply_parse's form, and a 5xx code since it rejects. */
static int
dmarc_parse_reply(struct dmarc *d, const char *s, char *err, size_t errlen)
{
	char	 why[200];

	if (filter_reply_parse(s, &d->reject_reply, why, sizeof(why)) == -1)
		return snprintf(err, errlen, "reject_reply must be " FILTER_REPLY_FORM ": %s",
		    why), -1;
	if (d->reject_reply.code / 100 != 5) {
		d->reject_reply.code = 0;
		return snprintf(err, errlen, "reject_reply must be a 5xx reply (\"550 5.7.1 "
		    "text\"): a 4xx one would only defer the message"), -1;
	}
	return 0;
}

/* "Name: value" for the quarantine header. */
static int
dmarc_parse_header(struct dmarc *d, const char *s)
{
	const char	*colon = strchr(s, ':'), *p;

	if (colon == NULL || colon == s || strpbrk(s, "\r\n") != NULL)
		return -1;
	for (p = s; p < colon; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return -1;
	for (colon++; *colon == ' ' || *colon == '\t'; colon++)
		;
	d->qh_name = strndup(s, (size_t)(strchr(s, ':') - s));
	d->qh_value = strdup(colon);
	return d->qh_name != NULL && d->qh_value != NULL ? 0 : -1;
}

static int
dmarc_init_actions(struct dmarc *d, struct sluice_filter *f, char *err, size_t errlen)
{
	static const char *const opts[] = { "on_reject", "on_quarantine", "on_bad_from" };
	enum dmarc_action	*acts[] = { &d->on_reject, &d->on_quarantine, &d->on_bad_from };
	const char		*s;
	size_t			 i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (dmarc_parse_action(sluice_option_string(f, opts[i]), 0, acts[i]) == -1)
			return snprintf(err, errlen, "%s must be reject, quarantine or continue",
			    opts[i]), -1;
	if (dmarc_parse_action(sluice_option_string(f, "on_temperror"), 1,
	    &d->on_temperror) == -1)
		return snprintf(err, errlen, "on_temperror must be continue or error"), -1;
	if (dmarc_parse_header(d, sluice_option_string(f, "quarantine_header")) == -1)
		return snprintf(err, errlen, "quarantine_header must be \"Name: value\" on "
		    "one line"), -1;
	if ((s = sluice_option_string(f, "reject_reply")) != NULL &&
	    dmarc_parse_reply(d, s, err, errlen) == -1)
		return -1;
	return 0;
}

static int
dmarc_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct dmarc	*d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	if (dmarc_init_actions(d, f, err, errlen) == -1 ||
	    (d->psl = dmarc_psl_load(sluice_option_string(f, "public_suffix_list"), err,
	    errlen)) == NULL) {
		dmarc_fini(d);
		return -1;
	}
	*instance = d;
	return 0;
}

static void
dmarc_fini(void *instance)
{
	struct dmarc	*d = instance;

	dmarc_psl_free(d->psl);
	free(d->qh_name);
	free(d->qh_value);
	free(d);
}

/* --- The From field -------------------------------------------------------- */

static enum sluice_verdict
dmarc_header(struct sluice_ctx *ctx, const char *name, const char *value)
{
	struct dmarc_txn	*t = *sluice_session_data(ctx);

	if (strcasecmp(name, "From") != 0)
		return SLUICE_CONTINUE;
	if (t == NULL && (t = *sluice_session_data(ctx) = calloc(1, sizeof(*t))) == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	if (t->from_fields++ == 0)
		t->from_status = dmarc_from_parse(value, t->from_domain);
	return SLUICE_CONTINUE;
}

/*
 * The From fields as RFC 7489 6.6.1 leaves to the receiver: exactly one
 * field with one author domain, else the outcome (none without a field,
 * permerror otherwise).  Returns 1 when the outcome is set.
 */
static int
dmarc_bad_from(const struct dmarc_txn *t, struct dmarc_outcome *o)
{
	const char	*why = NULL;

	if (t == NULL || t->from_fields == 0)
		why = "no From field";
	else if (t->from_fields > 1)
		why = "several From fields";
	else if (t->from_status == DMARC_FROM_EMPTY)
		why = "no address in the From field";
	else if (t->from_status == DMARC_FROM_MULTI)
		why = "From addresses in several domains";
	else if (t->from_status != DMARC_FROM_OK)
		why = "no usable domain in the From field";
	if (why == NULL)
		return 0;
	o->result = t == NULL || t->from_fields == 0 ? "none" : "permerror";
	o->policy = "absent";
	snprintf(o->reason, sizeof(o->reason), "%s", why);
	return 1;
}

/* --- End of message ------------------------------------------------------ */

static enum sluice_verdict
dmarc_eom(struct sluice_ctx *ctx)
{
	const struct dmarc	*d = sluice_instance(ctx);
	const struct dmarc_txn	*t = *sluice_session_data(ctx);
	struct dmarc_outcome	 o;
	struct dmarc_reply	 r;
	struct dmarc_job	*j;
	enum sluice_verdict	 v;

	memset(&o, 0, sizeof(o));
	if (dmarc_bad_from(t, &o))
		o.action = d->on_bad_from;
	else if ((j = calloc(1, sizeof(*j))) == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	} else {
		j->d = d;
		memcpy(j->from_domain, t->from_domain, sizeof(j->from_domain));
		snprintf(j->org_domain, sizeof(j->org_domain), "%s",
		    dmarc_org_domain(d->psl, j->from_domain));
		if (dmarc_query(ctx, j) == 0) {
			j->pending = sluice_suspend(ctx);
			return SLUICE_PENDING;
		}
		free(j);
		o.result = "temperror";
		o.domain = t->from_domain;
		o.policy = "absent";
		o.action = d->on_temperror;
		snprintf(o.reason, sizeof(o.reason), "cannot ask the resolver");
	}
	if ((v = dmarc_conclude(ctx, d, &o, &r)) == SLUICE_REJECT)
		sluice_reply(ctx, r.code, r.enhanced, "%s", r.text);
	else if (o.action == DMARC_ACT_ERROR)
		sluice_fail(ctx, "dmarc %s", o.reason);
	return v;
}

/* Ask for the record at the author domain, or at the organizational domain. */
static int
dmarc_query(struct sluice_ctx *ctx, struct dmarc_job *j)
{
	char	 name[DMARC_DOMAIN_MAX + 8];

	snprintf(name, sizeof(name), "_dmarc.%s", j->at_org ? j->org_domain : j->from_domain);
	return sluice_dns_query(ctx, name, SLUICE_DNS_TXT, dmarc_dns_done, j);
}

static void
dmarc_dns_done(void *arg, const struct sluice_dns_answer *a)
{
	struct dmarc_job	*j = arg;
	struct sluice_ctx	*ctx = sluice_pending_ctx(j->pending);
	struct dmarc_outcome	 o;
	struct dmarc_eval	 ev;
	struct dmarc_reply	 r;
	enum sluice_verdict	 v;

	if (ctx == NULL) {	/* the session ended or the hook timed out */
		sluice_resume(j->pending, SLUICE_CONTINUE, 0, NULL, NULL);
		free(j);
		return;
	}
	memset(&o, 0, sizeof(o));
	memset(&ev, 0, sizeof(ev));
	if (dmarc_answer(ctx, j, a, &o, &ev) == 1)
		return;		/* asking the organizational domain now */
	v = dmarc_conclude(ctx, j->d, &o, &r);
	if (o.action == DMARC_ACT_ERROR) {
		snprintf(r.text, sizeof(r.text), "dmarc %.280s", o.reason);
		sluice_resume_fail(j->pending, r.text);
	} else if (v == SLUICE_REJECT)
		sluice_resume(j->pending, v, r.code, r.enhanced, r.text);
	else
		sluice_resume(j->pending, v, 0, NULL, NULL);
	free(j);
}

/*
 * Read one answer into the outcome.  Returns 1 when the next question
 * (the organizational domain) is out instead, else 0.
 */
static int
dmarc_answer(struct sluice_ctx *ctx, struct dmarc_job *j, const struct sluice_dns_answer *a,
    struct dmarc_outcome *o, struct dmarc_eval *ev)
{
	struct dmarc_txt	 txt[32];
	size_t			 i, n, pick = 0;
	enum dmarc_select	 sel = DMARC_SELECT_NONE;

	o->domain = j->from_domain;
	o->policy = "absent";
	o->action = DMARC_ACT_CONTINUE;
	if (a->status == SLUICE_DNS_OK) {
		n = a->count < 32 ? a->count : 32;
		for (i = 0; i < n; i++) {
			txt[i].text = a->records[i].text;
			txt[i].len = a->records[i].len;
		}
		sel = dmarc_record_select(txt, n, &pick);
	}
	if (sel == DMARC_SELECT_ONE) {
		dmarc_evaluate_record(ctx, j, &a->records[pick], o, ev);
		return 0;
	}
	if (sel == DMARC_SELECT_MANY) {
		o->result = "permerror";
		snprintf(o->reason, sizeof(o->reason), "several DMARC records at %s", a->name);
		return 0;
	}
	if (a->status == SLUICE_DNS_OK || a->status == SLUICE_DNS_NODATA ||
	    a->status == SLUICE_DNS_NXDOMAIN) {
		if (!j->at_org && strcmp(j->org_domain, j->from_domain) != 0) {
			j->at_org = 1;
			if (dmarc_query(ctx, j) == 0)
				return 1;
			o->result = "temperror";
			o->action = j->d->on_temperror;
			snprintf(o->reason, sizeof(o->reason), "cannot ask the resolver");
			return 0;
		}
		o->result = "none";
		return 0;
	}
	o->result = "temperror";
	o->action = j->d->on_temperror;
	snprintf(o->reason, sizeof(o->reason), "DNS %s for %s%s%s",
	    sluice_dns_status_name(a->status), a->name, a->why != NULL ? ": " : "",
	    a->why != NULL ? a->why : "");
	return 0;
}

/* Parse the record and decide, with the SPF and DKIM results recorded so far. */
static void
dmarc_evaluate_record(struct sluice_ctx *ctx, const struct dmarc_job *j,
    const struct sluice_dns_record *record, struct dmarc_outcome *o, struct dmarc_eval *ev)
{
	char		 spf[DMARC_IDS_MAX][DMARC_DOMAIN_MAX], dkim[DMARC_IDS_MAX][DMARC_DOMAIN_MAX];
	const char	*spfp[DMARC_IDS_MAX], *dkimp[DMARC_IDS_MAX], *why;

	if (dmarc_record_parse(record->text, record->len, j->from_domain, &o->rec, &why) == -1) {
		o->result = "permerror";
		snprintf(o->reason, sizeof(o->reason), "bad DMARC record at _dmarc.%s: %s",
		    j->at_org ? j->org_domain : j->from_domain, why);
		return;
	}
	ev->from_domain = j->from_domain;
	ev->at_org = j->at_org;
	ev->rec = &o->rec;
	ev->nspf = dmarc_collect(ctx, "spf", spf, spfp);
	ev->spf = spfp;
	ev->ndkim = dmarc_collect(ctx, "dkim", dkim, dkimp);
	ev->dkim = dkimp;
	ev->sample = arc4random_uniform(100);
	dmarc_evaluate(j->d->psl, ev);
	ev->spf = ev->dkim = NULL;	/* local arrays */
	o->ev = ev;
	o->result = ev->pass ? "pass" : "fail";
	o->policy = dmarc_p_name(ev->policy);
	if (ev->disposition == DMARC_P_REJECT)
		o->action = j->d->on_reject;
	else if (ev->disposition == DMARC_P_QUARANTINE)
		o->action = j->d->on_quarantine;
	else
		o->action = DMARC_ACT_CONTINUE;
}

/*
 * The identities that passed method ("spf": smtp.mailfrom, or smtp.helo
 * for the null sender; "dkim": header.d), normalized into out, pointed to
 * by ptrs.  Returns how many.
 */
static size_t
dmarc_collect(struct sluice_ctx *ctx, const char *method, char (*out)[DMARC_DOMAIN_MAX],
    const char **ptrs)
{
	const struct sluice_authres	*r;
	const char			*sender = sluice_mail_from(ctx);
	char				 value[600];
	size_t				 i, n = 0, count = sluice_authres_count(ctx);
	int				 spf = strcmp(method, "spf") == 0, found;

	for (i = 0; i < count && n < DMARC_IDS_MAX; i++) {
		if ((r = sluice_authres_get(ctx, i)) == NULL || r->props == NULL ||
		    strcasecmp(r->method, method) != 0 || strcasecmp(r->result, "pass") != 0)
			continue;
		if (!spf)
			found = dmarc_prop_get(r->props, "header.d", value, sizeof(value)) == 0;
		else if (!(found = dmarc_prop_get(r->props, "smtp.mailfrom", value,
		    sizeof(value)) == 0) && sender != NULL && *sender == '\0')
			found = dmarc_prop_get(r->props, "smtp.helo", value, sizeof(value)) == 0;
		if (found && dmarc_identity_domain(value, out[n]) == 0) {
			ptrs[n] = out[n];
			n++;
		}
	}
	return n;
}

/*
 * Record the result, log it, and carry out the action (the quarantine
 * header is added here).  Returns the verdict, with the reply in r for
 * REJECT.
 */
static enum sluice_verdict
dmarc_conclude(struct sluice_ctx *ctx, const struct dmarc *d, struct dmarc_outcome *o,
    struct dmarc_reply *r)
{
	char	 props[DMARC_DOMAIN_MAX + 16];

	if (o->domain != NULL)
		snprintf(props, sizeof(props), "header.from=%s", o->domain);
	if (sluice_authres_add(ctx, "dmarc", o->result, o->reason[0] != '\0' ? o->reason : NULL,
	    o->domain != NULL ? props : NULL) == -1)
		sluice_log(ctx, SLUICE_LOG_WARNING, "dmarc could not record the result");
	dmarc_log(ctx, o);
	switch (o->action) {
	case DMARC_ACT_QUARANTINE:
		if (sluice_header_add(ctx, d->qh_name, d->qh_value) == -1)
			sluice_log(ctx, SLUICE_LOG_WARNING, "dmarc could not add header %s",
			    d->qh_name);
		return SLUICE_CONTINUE;
	case DMARC_ACT_REJECT:
		r->code = d->reject_reply.code != 0 ? d->reject_reply.code : 550;
		snprintf(r->enhanced, sizeof(r->enhanced), "%s",
		    d->reject_reply.code != 0 ? d->reject_reply.enhanced : "5.7.1");
		if (d->reject_reply.code != 0)
			snprintf(r->text, sizeof(r->text), "%s", d->reject_reply.text);
		else if (o->ev != NULL)
			snprintf(r->text, sizeof(r->text), "Rejected by the DMARC policy of %s",
			    o->domain);
		else
			snprintf(r->text, sizeof(r->text), "Message refused: %.200s", o->reason);
		return SLUICE_REJECT;
	case DMARC_ACT_ERROR:
		return SLUICE_TEMPFAIL;
	default:
		return SLUICE_CONTINUE;
	}
}

static void
dmarc_log(struct sluice_ctx *ctx, const struct dmarc_outcome *o)
{
	char	 extra[sizeof(o->reason) + 128], reason[sizeof(o->reason)];
	size_t	 i;
	int	 n = 0;

	extra[0] = '\0';
	if (o->ev != NULL)
		n = snprintf(extra, sizeof(extra), " spf_aligned=%s dkim_aligned=%s",
		    o->ev->spf_aligned ? "yes" : "no", o->ev->dkim_aligned ? "yes" : "no");
	if (o->ev != NULL && o->ev->sampled_out && n >= 0 && (size_t)n < sizeof(extra))
		n += snprintf(extra + n, sizeof(extra) - (size_t)n, " pct=%d sampled_out=yes",
		    o->rec.pct);
	if (o->reason[0] != '\0' && n >= 0 && (size_t)n < sizeof(extra)) {
		for (i = 0; o->reason[i] != '\0'; i++)
			reason[i] = o->reason[i] == '"' || o->reason[i] == '\\' ? '\'' :
			    o->reason[i];
		reason[i] = '\0';
		snprintf(extra + n, sizeof(extra) - (size_t)n, " reason=\"%s\"", reason);
	}
	sluice_log(ctx, strcmp(o->result, "temperror") == 0 ? SLUICE_LOG_WARNING :
	    SLUICE_LOG_INFO, "dmarc result=%s domain=%s policy=%s action=%s%s", o->result,
	    o->domain != NULL ? o->domain : "-", o->policy, dmarc_action_name(o->action),
	    extra);
}

static const char *
dmarc_action_name(enum dmarc_action a)
{
	switch (a) {
	case DMARC_ACT_QUARANTINE:
		return "quarantine";
	case DMARC_ACT_REJECT:
		return "reject";
	case DMARC_ACT_ERROR:
		return "error";
	default:
		return "continue";
	}
}

static void
dmarc_reset(struct sluice_ctx *ctx)
{
	struct dmarc_txn	*t = *sluice_session_data(ctx);

	if (t != NULL)
		memset(t, 0, sizeof(*t));
}

static void
dmarc_close(struct sluice_ctx *ctx)
{
	free(*sluice_session_data(ctx));
	*sluice_session_data(ctx) = NULL;
}

const struct sluice_module sluice_builtin_dmarc = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "dmarc",
	.description = "DMARC policy from the SPF and DKIM results: reject, quarantine or observe",
	.options = dmarc_options,
	.init = dmarc_init,
	.fini = dmarc_fini,
	.on_header = dmarc_header,
	.on_eom = dmarc_eom,
	.on_reset = dmarc_reset,
	.on_close = dmarc_close,
};
