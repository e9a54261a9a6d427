/*
 * counter.c - a test plugin that counts its live instances, so tests can
 * see that every init is matched by exactly one fini when generations
 * are freed.  Option "fail" makes init fail (a generation build failure).
 */
#include "autoconf.h"

#include <stdatomic.h>
#include <stdio.h>

#include "sluice_filter.h"

int	 counter_plugin_live(void);

static atomic_int	 live;

static const struct sluice_option counter_options[] = {
	{ "fail", SLUICE_OPT_BOOL, "false", 0, "make init fail" },
	{ NULL, 0, NULL, 0, NULL }
};

static int
counter_init(struct sluice_filter *filter, void **instance, char *err, size_t errlen)
{
	if (sluice_option_bool(filter, "fail")) {
		snprintf(err, errlen, "told to fail");
		return -1;
	}
	atomic_fetch_add(&live, 1);
	*instance = NULL;
	return 0;
}

static void
counter_fini(void *instance)
{
	atomic_fetch_sub(&live, 1);
}

static enum sluice_verdict
counter_rcpt(struct sluice_ctx *ctx)
{
	return SLUICE_CONTINUE;
}

/* Read by the tests through dlsym on the module's handle. */
int
counter_plugin_live(void)
{
	return atomic_load(&live);
}

const struct sluice_module sluice_filter_module = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "counter",
	.description = "counts live instances (tests)",
	.options = counter_options,
	.init = counter_init,
	.fini = counter_fini,
	.on_rcpt = counter_rcpt,
};
