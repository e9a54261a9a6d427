/*
 * access.c - the "access" built-in filter: a static access list.
 *
 * Each instance watches one phase, matches the phase's subject against
 * shell patterns, and answers a fixed verdict when one matches:
 *
 *	access "no-spammers" {
 *		phase = "rcpt"
 *		match = { "*@spam.example", "abuse@*" }
 *		verdict = "reject"
 *		reply = "550 5.7.1 Recipient refused by local policy"
 *	}
 *
 * Subjects: connect = client IP, helo = HELO name, mail = sender,
 * rcpt = recipient, data and eom = sender, header = "Name: value".
 * Optionally it answers after a delay (PENDING, resumed by a timer), and
 * it can mark matching transactions with a header.  It is also the module
 * the test suite drives every hook point with.
 */
#include "autoconf.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "builtin.h"
#include "common/reply.h"
#include "sluice_filter.h"

struct access {
	enum sluice_phase	 phase;		/* the phase watched */
	char			**patterns;	/* shell patterns, case-insensitive */
	size_t			 npatterns;	/* how many */
	enum sluice_verdict	 verdict;	/* answer on a match */
	struct filter_reply	 reply;		/* the reply; code 0 = the default */
	unsigned int		 delay_ms;	/* answer after this long (PENDING) */
	char			*header_name;	/* add_header name or NULL */
	char			*header_value;	/* add_header value */
	int			 simulate_error;/* report failure instead (on_error tests) */
};

struct access_delayed {
	struct sluice_pending	*pending;	/* to resume */
	const struct access	*a;		/* instance (outlives sessions) */
	int			 matched;	/* answer with the verdict or CONTINUE */
};

static const struct sluice_option access_options[] = {
	{ "phase", SLUICE_OPT_STRING, NULL, 1,
	    "connect, helo, mail, rcpt, data, header or eom" },
	{ "match", SLUICE_OPT_STRING_LIST, "{\"*\"}", 0,
	    "shell patterns for the phase's subject (case-insensitive)" },
	{ "verdict", SLUICE_OPT_STRING, "reject", 0,
	    "continue, accept, tempfail, reject, discard or disconnect" },
	{ "reply", SLUICE_OPT_STRING, NULL, 0, "\"550 5.7.1 text\" for the verdict" },
	{ "delay", SLUICE_OPT_DURATION, "0", 0, "answer after this delay (PENDING)" },
	{ "add_header", SLUICE_OPT_STRING, NULL, 0,
	    "\"Name: value\" added to messages of matching transactions" },
	{ "simulate_error", SLUICE_OPT_BOOL, "false", 0,
	    "fail instead of answering, to exercise on_error" },
	{ NULL, 0, NULL, 0, NULL }
};

static int
access_parse_phase(const char *s, enum sluice_phase *out)
{
	static const struct {
		const char		*name;
		enum sluice_phase	 phase;
	} phases[] = {
		{ "connect", SLUICE_PHASE_CONNECT }, { "helo", SLUICE_PHASE_HELO },
		{ "mail", SLUICE_PHASE_MAIL }, { "rcpt", SLUICE_PHASE_RCPT },
		{ "data", SLUICE_PHASE_DATA }, { "header", SLUICE_PHASE_HEADER },
		{ "eom", SLUICE_PHASE_EOM },
	};
	size_t	 i;

	for (i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
		if (strcasecmp(s, phases[i].name) == 0) {
			*out = phases[i].phase;
			return 0;
		}
	return -1;
}

static int
access_parse_verdict(const char *s, enum sluice_verdict *out)
{
	static const char *const names[] = {
		"continue", "accept", "tempfail", "reject", "discard", "disconnect"
	};
	size_t	 i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i]) == 0) {
			*out = (enum sluice_verdict)i;
			return 0;
		}
	return -1;
}

static int
access_parse_header(struct access *a, const char *s)
{
	const char	*colon = strchr(s, ':');

	if (colon == NULL || colon == s)
		return -1;
	a->header_name = strndup(s, (size_t)(colon - s));
	colon++;
	while (*colon == ' ' || *colon == '\t')
		colon++;
	a->header_value = strdup(colon);
	return a->header_name != NULL && a->header_value != NULL ? 0 : -1;
}

static void	 access_fini(void *);

static int
access_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct access	*a = calloc(1, sizeof(*a));
	const char	*s;
	char		 why[200];
	size_t		 i;

	if (a == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	*instance = a;
	if (access_parse_phase(sluice_option_string(f, "phase"), &a->phase) == -1)
		return snprintf(err, errlen, "phase must be connect, helo, mail, rcpt, data, "
		    "header or eom"), access_fini(a), -1;
	if (access_parse_verdict(sluice_option_string(f, "verdict"), &a->verdict) == -1)
		return snprintf(err, errlen, "verdict must be continue, accept, tempfail, "
		    "reject, discard or disconnect"), access_fini(a), -1;
	if ((s = sluice_option_string(f, "reply")) != NULL &&
	    filter_reply_parse(s, &a->reply, why, sizeof(why)) == -1)
		return snprintf(err, errlen, "reply must be " FILTER_REPLY_FORM ": %s", why),
		    access_fini(a), -1;
	if ((s = sluice_option_string(f, "add_header")) != NULL &&
	    access_parse_header(a, s) == -1)
		return snprintf(err, errlen, "add_header must be \"Name: value\""),
		    access_fini(a), -1;
	a->npatterns = sluice_option_list_count(f, "match");
	a->patterns = calloc(a->npatterns ? a->npatterns : 1, sizeof(*a->patterns));
	for (i = 0; a->patterns != NULL && i < a->npatterns; i++)
		a->patterns[i] = strdup(sluice_option_list_item(f, "match", i));
	a->delay_ms = (unsigned int)sluice_option_duration(f, "delay");
	a->simulate_error = sluice_option_bool(f, "simulate_error");
	return 0;
}

static void
access_fini(void *instance)
{
	struct access	*a = instance;
	size_t		 i;

	for (i = 0; i < a->npatterns && a->patterns != NULL; i++)
		free(a->patterns[i]);
	free(a->patterns);
	free(a->header_name);
	free(a->header_value);
	free(a);
}

static int
access_matches(const struct access *a, const char *subject)
{
	size_t	 i;

	if (subject == NULL)
		subject = "";
	for (i = 0; i < a->npatterns; i++)
		if (a->patterns[i] != NULL && fnmatch(a->patterns[i], subject, FNM_CASEFOLD) == 0)
			return 1;
	return 0;
}

static enum sluice_verdict
access_answer(struct sluice_ctx *ctx, const struct access *a)
{
	if (a->simulate_error) {
		sluice_fail(ctx, "simulated error");
		return SLUICE_TEMPFAIL;
	}
	if (a->reply.code != 0)
		sluice_reply(ctx, a->reply.code, a->reply.enhanced, "%s", a->reply.text);
	return a->verdict;
}

static void
access_delayed_fire(void *arg)
{
	struct access_delayed	*d = arg;
	const struct access	*a = d->a;

	if (!d->matched)
		sluice_resume(d->pending, SLUICE_CONTINUE, 0, NULL, NULL);
	else if (a->simulate_error)
		sluice_resume_fail(d->pending, "simulated error");
	else
		sluice_resume(d->pending, a->verdict, a->reply.code, a->reply.enhanced,
		    a->reply.code != 0 ? a->reply.text : NULL);
	free(d);
}

/* The common hook body: match the subject, answer now or after the delay. */
static enum sluice_verdict
access_check(struct sluice_ctx *ctx, enum sluice_phase phase, const char *subject)
{
	const struct access	*a = sluice_instance(ctx);
	struct access_delayed	*d;
	int			 matched;

	if (a->phase != phase)
		return SLUICE_CONTINUE;
	matched = access_matches(a, subject);
	if (matched)
		*sluice_session_data(ctx) = (void *)1;	/* for add_header */
	if (a->delay_ms == 0)
		return matched ? access_answer(ctx, a) : SLUICE_CONTINUE;
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	d->a = a;
	d->matched = matched;
	d->pending = sluice_suspend(ctx);
	if (sluice_after(ctx, a->delay_ms, access_delayed_fire, d) == -1) {
		sluice_resume_fail(d->pending, "cannot start timer");
		free(d);
	}
	return SLUICE_PENDING;
}

static enum sluice_verdict
access_connect(struct sluice_ctx *ctx)
{
	return access_check(ctx, SLUICE_PHASE_CONNECT, sluice_client_address(ctx));
}

static enum sluice_verdict
access_helo(struct sluice_ctx *ctx)
{
	return access_check(ctx, SLUICE_PHASE_HELO, sluice_helo(ctx));
}

static enum sluice_verdict
access_mail(struct sluice_ctx *ctx)
{
	return access_check(ctx, SLUICE_PHASE_MAIL, sluice_mail_from(ctx));
}

static enum sluice_verdict
access_rcpt(struct sluice_ctx *ctx)
{
	return access_check(ctx, SLUICE_PHASE_RCPT, sluice_rcpt_current(ctx));
}

static enum sluice_verdict
access_data(struct sluice_ctx *ctx)
{
	return access_check(ctx, SLUICE_PHASE_DATA, sluice_mail_from(ctx));
}

static enum sluice_verdict
access_header(struct sluice_ctx *ctx, const char *name, const char *value)
{
	const struct access	*a = sluice_instance(ctx);
	char			*subject;
	enum sluice_verdict	 v;

	if (a->phase != SLUICE_PHASE_HEADER)
		return SLUICE_CONTINUE;
	if (asprintf(&subject, "%s: %s", name, value) == -1) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	v = access_check(ctx, SLUICE_PHASE_HEADER, subject);
	free(subject);
	return v;
}

/* End of message: the eom check, then add_header for matching transactions. */
static enum sluice_verdict
access_eom(struct sluice_ctx *ctx)
{
	const struct access	*a = sluice_instance(ctx);
	enum sluice_verdict	 v = SLUICE_CONTINUE;

	if (a->phase == SLUICE_PHASE_EOM)
		v = access_check(ctx, SLUICE_PHASE_EOM, sluice_mail_from(ctx));
	if (v == SLUICE_CONTINUE && a->header_name != NULL && *sluice_session_data(ctx) != NULL &&
	    sluice_header_add(ctx, a->header_name, a->header_value) == -1)
		sluice_log(ctx, SLUICE_LOG_WARNING, "could not add header %s", a->header_name);
	return v;
}

static void
access_reset(struct sluice_ctx *ctx)
{
	*sluice_session_data(ctx) = NULL;
}

const struct sluice_module sluice_builtin_access = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "access",
	.description = "static access list: match a phase's subject, answer a fixed verdict",
	.options = access_options,
	.init = access_init,
	.fini = access_fini,
	.on_connect = access_connect,
	.on_helo = access_helo,
	.on_mail = access_mail,
	.on_rcpt = access_rcpt,
	.on_data = access_data,
	.on_header = access_header,
	.on_eom = access_eom,
	.on_reset = access_reset,
};
