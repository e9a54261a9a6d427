/*
 * clash.c - a test plugin named like a core config keyword ("listener"):
 * its sections would shadow the core's, so the loader must refuse it.
 */
#include "autoconf.h"

#include "sluice_filter.h"

const struct sluice_module sluice_filter_module = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "listener",
	.description = "test plugin whose name clashes with a core keyword",
};
