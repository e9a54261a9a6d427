/*
 * abi_mismatch.c - a test plugin built against a future ABI: the loader
 * must refuse it by its abi_version alone, reading nothing else.
 */
#include "autoconf.h"

#include "sluice_filter.h"

const struct sluice_module sluice_filter_module = {
	.abi_version = SLUICE_FILTER_ABI_VERSION + 1,
	.name = "abi_mismatch",
	.description = "test plugin with the wrong ABI version",
};
