/*
 * nosymbol.c - a test shared object that is not a sluice module: it
 * exports no "sluice_filter_module", so the loader must refuse it.
 */
#include "autoconf.h"

#include "sluice_filter.h"

int	 nosymbol_answer(void);

const struct sluice_module other_module_name = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "nosymbol",
};

int
nosymbol_answer(void)
{
	return 42;
}
