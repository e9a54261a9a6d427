/*
 * relay.c - the "relay" built-in filter: who may send mail through this
 * listener to whom, decided at each RCPT.
 *
 *	relay "mx-relay" {
 *		networks = { "192.0.2.0/24", "2001:db8::/32" }
 *		domains = { "example.org", ".example.net" }
 *		domains_file = "/etc/sluice/local-domains"
 *	}
 *
 * A client in networks, or an authenticated one (allow_authenticated), may
 * send to any recipient.  Every other client may only send to plain
 * addresses in a local domain, and to <postmaster>; the rest is refused
 * with the reply option (554 5.7.1 by default) and a log line naming the
 * reason.  All of it is in memory, read at init (so at every reload): no
 * DNS, nothing that blocks.  The analysis is in relay_addr.c.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "common/reply.h"
#include "relay_addr.h"
#include "sluice_filter.h"

struct relay {
	struct relay_policy	 policy;	/* networks, domains, auth */
	struct filter_reply	 reply;		/* for a refused recipient */
};

static int	 relay_init(struct sluice_filter *, void **, char *, size_t);
static int	 relay_init_lists(struct relay *, struct sluice_filter *, char *, size_t);
static void	 relay_fini(void *);
static enum sluice_verdict relay_rcpt(struct sluice_ctx *);

static const struct sluice_option relay_options[] = {
	{ "networks", SLUICE_OPT_STRING_LIST, "{}", 0,
	    "client networks that may relay: \"192.0.2.0/24\", \"2001:db8::/32\", or an address" },
	{ "domains", SLUICE_OPT_STRING_LIST, "{}", 0,
	    "local domains; \".example.org\" is example.org and every name under it" },
	{ "domains_file", SLUICE_OPT_STRING, NULL, 0,
	    "absolute path of a file of local domains, one a line, # comments; read at each reload" },
	{ "allow_authenticated", SLUICE_OPT_BOOL, "true", 0,
	    "authenticated clients (SMTP AUTH) may relay" },
	{ "reply", SLUICE_OPT_STRING, "554 5.7.1 Relay access denied", 0,
	    "\"<4xx|5xx> <x.y.z> text\" for a refused recipient" },
	{ NULL, 0, NULL, 0, NULL }
};

static int
relay_init_lists(struct relay *r, struct sluice_filter *f, char *err, size_t errlen)
{
	const char	*s;
	size_t		 i, n;

	n = sluice_option_list_count(f, "networks");
	for (i = 0; i < n; i++)
		if (relay_policy_add_network(&r->policy, sluice_option_list_item(f, "networks", i),
		    err, errlen) == -1)
			return -1;
	n = sluice_option_list_count(f, "domains");
	for (i = 0; i < n; i++)
		if (relay_policy_add_domain(&r->policy, sluice_option_list_item(f, "domains", i),
		    err, errlen) == -1)
			return -1;
	if ((s = sluice_option_string(f, "domains_file")) != NULL) {
		/* Reloads run after chdir("/"): a relative path would move. */
		if (s[0] != '/')
			return snprintf(err, errlen, "domains_file must be an absolute path"), -1;
		if (relay_policy_load_domains(&r->policy, s, err, errlen) == -1)
			return -1;
	}
	relay_policy_finish(&r->policy);
	return 0;
}

static int
relay_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct relay	*r;
	char		 why[200];

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	if (filter_reply_parse(sluice_option_string(f, "reply"), &r->reply, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "reply must be " FILTER_REPLY_FORM ": %s", why);
		relay_fini(r);
		return -1;
	}
	r->policy.allow_authenticated = sluice_option_bool(f, "allow_authenticated");
	if (relay_init_lists(r, f, err, errlen) == -1) {
		relay_fini(r);
		return -1;
	}
	*instance = r;
	return 0;
}

static void
relay_fini(void *instance)
{
	struct relay	*r = instance;

	if (r == NULL)
		return;
	relay_policy_free(&r->policy);
	free(r);
}

static enum sluice_verdict
relay_rcpt(struct sluice_ctx *ctx)
{
	const struct relay	*r = sluice_instance(ctx);
	const char		*rcpt = sluice_rcpt_current(ctx);
	const char		*client = sluice_client_address(ctx);
	char			 shown[RELAY_LOG_RCPT_MAX + 1];
	enum relay_reason	 why;

	why = relay_decide(&r->policy, client, sluice_auth_user(ctx) != NULL, rcpt);
	relay_log_rcpt(rcpt, shown);
	if (!relay_reason_refused(why)) {
		sluice_log(ctx, SLUICE_LOG_DEBUG, "relay allowed rcpt=<%s> client=%s reason=%s",
		    shown, client != NULL ? client : "-", relay_reason_name(why));
		return SLUICE_CONTINUE;
	}
	sluice_log(ctx, SLUICE_LOG_INFO, "relay refused rcpt=<%s> client=%s reason=%s",
	    shown, client != NULL ? client : "-", relay_reason_name(why));
	sluice_reply(ctx, r->reply.code, r->reply.enhanced, "%s", r->reply.text);
	return r->reply.code / 100 == 4 ? SLUICE_TEMPFAIL : SLUICE_REJECT;
}

const struct sluice_module sluice_builtin_relay = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "relay",
	.description = "relay control at RCPT: client networks and authenticated clients "
	    "may relay, everyone else reaches only plain local addresses",
	.options = relay_options,
	.init = relay_init,
	.fini = relay_fini,
	.on_rcpt = relay_rcpt,
};
