/*
 * authprobe.c - a test plugin for the AUTH phase: on_auth logs what the
 * core says about the identity (sluice_auth_user, sluice_auth_mech) and
 * refuses the user named by "reject_user" (REJECT, or TEMPFAIL when
 * "tempfail" is set); on_mail logs the identity again, so a test sees it
 * reach the later phases.  Log lines: "authprobe phase=<p> user=<u> mech=<m>".
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "sluice_filter.h"

struct authprobe {
	const char	*reject_user;	/* owned by the config */
	int		 tempfail;
};

static int	 authprobe_init(struct sluice_filter *, void **, char *, size_t);
static void	 authprobe_fini(void *);
static enum sluice_verdict authprobe_auth(struct sluice_ctx *);
static enum sluice_verdict authprobe_mail(struct sluice_ctx *);

static const struct sluice_option authprobe_options[] = {
	{ "reject_user", SLUICE_OPT_STRING, "", 0, "user refused at the AUTH phase" },
	{ "tempfail", SLUICE_OPT_BOOL, "false", 0, "TEMPFAIL instead of REJECT" },
	{ NULL, 0, NULL, 0, NULL }
};

const struct sluice_module sluice_filter_module = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "authprobe",
	.description = "test plugin for the AUTH phase",
	.options = authprobe_options,
	.init = authprobe_init,
	.fini = authprobe_fini,
	.on_auth = authprobe_auth,
	.on_mail = authprobe_mail,
};

static int
authprobe_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct authprobe	*ap = calloc(1, sizeof(*ap));

	if (ap == NULL)
		return -1;
	ap->reject_user = sluice_option_string(f, "reject_user");
	ap->tempfail = sluice_option_bool(f, "tempfail");
	*instance = ap;
	return 0;
}

static void
authprobe_fini(void *instance)
{
	free(instance);
}

static enum sluice_verdict
authprobe_auth(struct sluice_ctx *ctx)
{
	struct authprobe	*ap = sluice_instance(ctx);
	const char		*user = sluice_auth_user(ctx), *mech = sluice_auth_mech(ctx);

	sluice_log(ctx, SLUICE_LOG_INFO, "authprobe phase=auth user=%s mech=%s",
	    user != NULL ? user : "-", mech != NULL ? mech : "-");
	if (user != NULL && ap->reject_user[0] != '\0' && strcmp(user, ap->reject_user) == 0)
		return ap->tempfail ? SLUICE_TEMPFAIL : SLUICE_REJECT;
	return SLUICE_CONTINUE;
}

static enum sluice_verdict
authprobe_mail(struct sluice_ctx *ctx)
{
	const char	*user = sluice_auth_user(ctx), *mech = sluice_auth_mech(ctx);

	sluice_log(ctx, SLUICE_LOG_INFO, "authprobe phase=mail user=%s mech=%s",
	    user != NULL ? user : "-", mech != NULL ? mech : "-");
	return SLUICE_CONTINUE;
}
