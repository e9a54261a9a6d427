/*
 * envprobe.c - test plugin for the envelope and header changes of
 * sluice_filter.h.  At the end of the message it does what its options
 * say, and logs each call's return code so a test reads the outcome in
 * the daemon's log:
 *
 *	envprobe "e" {
 *		rcpt_add = { "a@x" }		sluice_rcpt_add each
 *		rcpt_remove = { "b@x" }		sluice_rcpt_remove each
 *		mail_change = "new@x"		sluice_mail_change
 *		header_remove = "X-Drop"	sluice_header_remove(name, 1)
 *		body_replace = "text"		sluice_body_replace with text, each
 *						bare "\n" in it sent as CRLF
 *		authres = "spf pass smtp.mailfrom=x"
 *		pending = yes			do it all from a sluice_after()
 *						timer while the EOM hook is PENDING
 *		outside = yes			also try every change at MAIL, RCPT
 *						and DATA (where they must fail)
 *	}
 *
 * authres is recorded with sluice_authres_add at MAIL ("method result
 * props..."); at the end of the message the results of the transaction
 * are read back and written as "X-Authres-Seen: <count> <method>=<result>
 * [(<props>)] ...".  Log lines: "envprobe phase=<p> op=<op> arg=<a> rc=<n>".
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_filter.h"

struct envprobe {
	char		**add;		/* rcpt_add, copied */
	size_t		  nadd;
	char		**remove;	/* rcpt_remove, copied */
	size_t		  nremove;
	char		 *mail;		/* mail_change or NULL */
	char		 *header;	/* header_remove or NULL */
	char		 *body;		/* body_replace, LF made CRLF, or NULL */
	size_t		  bodylen;
	char		 *method;	/* authres: method, result, props (or NULL) */
	char		 *result;
	char		 *props;
	int		  pending;	/* act from a timer while EOM is PENDING */
	int		  outside;	/* try the changes outside EOM too */
};

/* A suspended EOM hook waiting for its timer. */
struct envprobe_wait {
	struct sluice_pending	*pending;
	struct envprobe		*ep;
};

static int	 envprobe_init(struct sluice_filter *, void **, char *, size_t);
static void	 envprobe_fini(void *);
static char	**envprobe_list(struct sluice_filter *, const char *, size_t *);
static char	*envprobe_string(struct sluice_filter *, const char *);
static char	*envprobe_crlf(const char *, size_t *);
static int	 envprobe_authres_option(struct envprobe *, const char *, char *, size_t);
static void	 envprobe_apply(struct sluice_ctx *, struct envprobe *, const char *);
static void	 envprobe_authres_seen(struct sluice_ctx *, struct envprobe *, const char *);
static void	 envprobe_try_outside(struct sluice_ctx *, const char *);
static void	 envprobe_later(void *);
static enum sluice_verdict envprobe_mail(struct sluice_ctx *);
static enum sluice_verdict envprobe_rcpt(struct sluice_ctx *);
static enum sluice_verdict envprobe_data(struct sluice_ctx *);
static enum sluice_verdict envprobe_eom(struct sluice_ctx *);

static const struct sluice_option envprobe_options[] = {
	{ "rcpt_add", SLUICE_OPT_STRING_LIST, NULL, 0, "recipients to add at EOM" },
	{ "rcpt_remove", SLUICE_OPT_STRING_LIST, NULL, 0, "recipients to remove at EOM" },
	{ "mail_change", SLUICE_OPT_STRING, NULL, 0, "new sender at EOM" },
	{ "header_remove", SLUICE_OPT_STRING, NULL, 0, "header field to remove at EOM" },
	{ "body_replace", SLUICE_OPT_STRING, NULL, 0, "new body at EOM (LF sent as CRLF)" },
	{ "authres", SLUICE_OPT_STRING, NULL, 0, "\"method result [props]\" to record at MAIL" },
	{ "pending", SLUICE_OPT_BOOL, "no", 0, "act from a timer while EOM is PENDING" },
	{ "outside", SLUICE_OPT_BOOL, "no", 0, "try the changes at MAIL, RCPT, DATA too" },
	{ NULL, 0, NULL, 0, NULL }
};

static char **
envprobe_list(struct sluice_filter *f, const char *name, size_t *n)
{
	char	**list;
	size_t	  i;

	*n = sluice_option_list_count(f, name);
	if ((list = calloc(*n + 1, sizeof(*list))) == NULL)
		return NULL;
	for (i = 0; i < *n; i++)
		if ((list[i] = strdup(sluice_option_list_item(f, name, i))) == NULL)
			return NULL;
	return list;
}

static char *
envprobe_string(struct sluice_filter *f, const char *name)
{
	const char	*v = sluice_option_string(f, name);

	return v != NULL ? strdup(v) : NULL;
}

/* The body option with each bare LF made CRLF, as the hook wants its data. */
static char *
envprobe_crlf(const char *v, size_t *len)
{
	char	*out, *p;

	if (v == NULL || (out = malloc(strlen(v) * 2 + 1)) == NULL)
		return NULL;
	for (p = out; *v != '\0'; v++) {
		if (*v == '\n' && (p == out || p[-1] != '\r'))
			*p++ = '\r';
		*p++ = *v;
	}
	*p = '\0';
	*len = (size_t)(p - out);
	return out;
}

/* "spf pass smtp.mailfrom=x" -> method, result, props (the rest). */
static int
envprobe_authres_option(struct envprobe *ep, const char *spec, char *err, size_t errlen)
{
	char	*copy, *sp1, *sp2;

	if (spec == NULL)
		return 0;
	if ((copy = strdup(spec)) == NULL || (sp1 = strchr(copy, ' ')) == NULL) {
		snprintf(err, errlen, "authres \"%s\": want \"method result [props]\"", spec);
		free(copy);
		return -1;
	}
	*sp1++ = '\0';
	if ((sp2 = strchr(sp1, ' ')) != NULL)
		*sp2++ = '\0';
	ep->method = copy;
	ep->result = strdup(sp1);
	ep->props = sp2 != NULL ? strdup(sp2) : NULL;
	return 0;
}

static int
envprobe_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct envprobe	*ep = calloc(1, sizeof(*ep));

	if (ep == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*instance = ep;
	ep->add = envprobe_list(f, "rcpt_add", &ep->nadd);
	ep->remove = envprobe_list(f, "rcpt_remove", &ep->nremove);
	ep->mail = envprobe_string(f, "mail_change");
	ep->header = envprobe_string(f, "header_remove");
	ep->body = envprobe_crlf(sluice_option_string(f, "body_replace"), &ep->bodylen);
	ep->pending = sluice_option_bool(f, "pending");
	ep->outside = sluice_option_bool(f, "outside");
	if (ep->add == NULL || ep->remove == NULL) {
		snprintf(err, errlen, "out of memory");
		envprobe_fini(ep);
		return -1;
	}
	if (envprobe_authres_option(ep, sluice_option_string(f, "authres"), err, errlen) == -1) {
		envprobe_fini(ep);
		return -1;
	}
	return 0;
}

static void
envprobe_fini(void *instance)
{
	struct envprobe	*ep = instance;
	size_t		 i;

	for (i = 0; ep->add != NULL && i < ep->nadd; i++)
		free(ep->add[i]);
	for (i = 0; ep->remove != NULL && i < ep->nremove; i++)
		free(ep->remove[i]);
	free(ep->add);
	free(ep->remove);
	free(ep->mail);
	free(ep->header);
	free(ep->body);
	free(ep->method);
	free(ep->result);
	free(ep->props);
	free(ep);
}

/* Every change the options ask for, each call's result logged. */
static void
envprobe_apply(struct sluice_ctx *ctx, struct envprobe *ep, const char *phase)
{
	size_t	 i;
	int	 rc;

	if (ep->mail != NULL) {
		rc = sluice_mail_change(ctx, ep->mail, NULL);
		sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=mail_change arg=<%s> rc=%d",
		    phase, ep->mail, rc);
	}
	for (i = 0; i < ep->nremove; i++) {
		rc = sluice_rcpt_remove(ctx, ep->remove[i]);
		sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=rcpt_remove arg=<%s> rc=%d",
		    phase, ep->remove[i], rc);
	}
	for (i = 0; i < ep->nadd; i++) {
		rc = sluice_rcpt_add(ctx, ep->add[i], NULL);
		sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=rcpt_add arg=<%s> rc=%d",
		    phase, ep->add[i], rc);
	}
	if (ep->header != NULL) {
		rc = sluice_header_remove(ctx, ep->header, 1);
		sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=header_remove arg=%s rc=%d",
		    phase, ep->header, rc);
	}
	if (ep->body != NULL) {
		rc = sluice_body_replace(ctx, (const unsigned char *)ep->body, ep->bodylen);
		sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=body_replace arg=%zu rc=%d",
		    phase, ep->bodylen, rc);
	}
	if (ep->method != NULL)
		envprobe_authres_seen(ctx, ep, phase);
}

/* The transaction's authentication results, read back into a header. */
static void
envprobe_authres_seen(struct sluice_ctx *ctx, struct envprobe *ep, const char *phase)
{
	char	 buf[1024];
	size_t	 i, n, count = sluice_authres_count(ctx);
	int	 rc;

	n = (size_t)snprintf(buf, sizeof(buf), "%zu", count);
	for (i = 0; i < count && n < sizeof(buf); i++) {
		const struct sluice_authres *r = sluice_authres_get(ctx, i);

		if (r == NULL) {
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " NULL");
			continue;
		}
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s=%s", r->method, r->result);
		if (r->props != NULL && n < sizeof(buf))
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, " (%s)", r->props);
	}
	if (sluice_authres_get(ctx, count) != NULL && n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, " EXTRA");
	rc = sluice_header_add(ctx, "X-Authres-Seen", buf);
	sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=authres_seen arg=\"%s\" rc=%d",
	    phase, buf, rc);
}

/* Changes outside EOM must all fail (-1): log what each one said. */
static void
envprobe_try_outside(struct sluice_ctx *ctx, const char *phase)
{
	const char	*first = sluice_rcpt(ctx, 0);

	sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=rcpt_add arg=<outside@x> rc=%d",
	    phase, sluice_rcpt_add(ctx, "outside@x", NULL));
	if (first != NULL) {
		char	 copy[300];

		/* Copied: a wrong success would free the string under us. */
		snprintf(copy, sizeof(copy), "%s", first);
		sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=rcpt_remove arg=<%s> "
		    "rc=%d", phase, copy, sluice_rcpt_remove(ctx, copy));
	}
	sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=mail_change arg=<outside@x> "
	    "rc=%d", phase, sluice_mail_change(ctx, "outside@x", NULL));
	sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=%s op=header_add arg=X-Outside rc=%d",
	    phase, sluice_header_add(ctx, "X-Outside", phase));
}

static enum sluice_verdict
envprobe_mail(struct sluice_ctx *ctx)
{
	struct envprobe	*ep = sluice_instance(ctx);

	if (ep->method != NULL)
		sluice_log(ctx, SLUICE_LOG_INFO, "envprobe phase=mail op=authres_add arg=%s "
		    "rc=%d", ep->method, sluice_authres_add(ctx, ep->method, ep->result, NULL,
		    ep->props));
	if (ep->outside)
		envprobe_try_outside(ctx, "mail");
	return SLUICE_CONTINUE;
}

static enum sluice_verdict
envprobe_rcpt(struct sluice_ctx *ctx)
{
	struct envprobe	*ep = sluice_instance(ctx);

	if (ep->outside)
		envprobe_try_outside(ctx, "rcpt");
	return SLUICE_CONTINUE;
}

static enum sluice_verdict
envprobe_data(struct sluice_ctx *ctx)
{
	struct envprobe	*ep = sluice_instance(ctx);

	if (ep->outside)
		envprobe_try_outside(ctx, "data");
	return SLUICE_CONTINUE;
}

/* The timer of a PENDING EOM: act through the pending ctx, then resume. */
static void
envprobe_later(void *arg)
{
	struct envprobe_wait	*w = arg;
	struct sluice_ctx	*ctx = sluice_pending_ctx(w->pending);

	if (ctx != NULL)
		envprobe_apply(ctx, w->ep, "eom-pending");
	else
		/* No ctx to log through: the daemon's stderr is its log too. */
		fprintf(stderr, "envprobe: pending ctx gone, nothing changed\n");
	sluice_resume(w->pending, SLUICE_CONTINUE, 0, NULL, NULL);
	free(w);
}

static enum sluice_verdict
envprobe_eom(struct sluice_ctx *ctx)
{
	struct envprobe		*ep = sluice_instance(ctx);
	struct envprobe_wait	*w;

	if (!ep->pending) {
		envprobe_apply(ctx, ep, "eom");
		return SLUICE_CONTINUE;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return SLUICE_TEMPFAIL;
	w->ep = ep;
	w->pending = sluice_suspend(ctx);
	if (sluice_after(ctx, 20, envprobe_later, w) == -1) {
		sluice_resume_fail(w->pending, "sluice_after failed");
		free(w);
	}
	return SLUICE_PENDING;
}

const struct sluice_module sluice_filter_module = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "envprobe",
	.description = "test: envelope, header and authres changes at end of message",
	.options = envprobe_options,
	.init = envprobe_init,
	.fini = envprobe_fini,
	.on_mail = envprobe_mail,
	.on_rcpt = envprobe_rcpt,
	.on_data = envprobe_data,
	.on_eom = envprobe_eom,
};
