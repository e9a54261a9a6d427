/*
 * builtin.c - the registry of built-in filter modules.
 */
#include "autoconf.h"

#include <stddef.h>

#include "builtin.h"
#include "module.h"

static const struct sluice_module *const builtins[] = {
	&sluice_builtin_access,
	&sluice_builtin_relay,
	&sluice_builtin_ratelimit,
	&sluice_builtin_dmarc,
	&sluice_builtin_authres,
	&sluice_builtin_dkim,
	&sluice_builtin_spf,
	&sluice_builtin_milter,
	NULL
};

const struct sluice_module *const *
module_builtins(void)
{
	return builtins;
}
