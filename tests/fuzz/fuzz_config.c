/*
 * fuzz_config.c - libFuzzer harness for the configuration loader: any
 * bytes as a config file must give either a config or file:line errors,
 * never a crash, a hang or a leak.  No plugins are loaded (a "load" of a
 * fuzzed path fails as it would for an operator).
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "module.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The harness links no built-in modules: the config has only core sections. */
const struct sluice_module *const *
module_builtins(void)
{
	static const struct sluice_module *const none[] = { NULL };

	return none;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char	 path[64];
	struct config	*cfg = NULL;
	char		 err[4096];
	FILE		*fp;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "/tmp/fuzz_config.%ld.conf", (long)getpid());
	if ((fp = fopen(path, "w")) == NULL)
		abort();
	if (fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
		abort();
	if (config_load(path, &cfg, err, sizeof(err)) == 0)
		config_free(&cfg);
	return 0;
}
