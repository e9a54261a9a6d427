/*
 * good.c - a test plugin that declares an option of every type and, in
 * init, reads each through the sluice_option_*() API into a one-line
 * summary the tests compare.  It also reads an option it did not declare
 * and one as the wrong type, which must come back empty, not crash.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>

#include "sluice_filter.h"

static int	 good_init(struct sluice_filter *filter, void **instance, char *err,
		    size_t errlen);
static void	 good_fini(void *instance);

static const struct sluice_option good_options[] = {
	{ "greeting", SLUICE_OPT_STRING, "hello", 0, "a string" },
	{ "count", SLUICE_OPT_INT, "7", 0, "an integer" },
	{ "loud", SLUICE_OPT_BOOL, "false", 0, "a boolean" },
	{ "words", SLUICE_OPT_STRING_LIST, "{ \"a\", 'b c' }", 0, "a list" },
	{ "wait", SLUICE_OPT_DURATION, "1s", 0, "a duration" },
	{ "max", SLUICE_OPT_SIZE, "64k", 0, "a size" },
	{ "secret", SLUICE_OPT_STRING, NULL, 1, "a required string" },
	{ NULL, 0, NULL, 0, NULL }
};

const struct sluice_module sluice_filter_module = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "good",
	.description = "test plugin with options of every type",
	.options = good_options,
	.init = good_init,
	.fini = good_fini,
};

static int
good_init(struct sluice_filter *filter, void **instance, char *err, size_t errlen)
{
	char		*summary;
	const char	*first, *second;
	size_t		 n;

	if ((summary = malloc(512)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = sluice_option_list_count(filter, "words");
	first = sluice_option_list_item(filter, "words", 0);
	second = sluice_option_list_item(filter, "words", 1);
	snprintf(summary, 512, "name=%s greeting=%s count=%lld loud=%d words=%zu:%s|%s "
	    "wait=%lld max=%lld secret=%s undeclared=%s mistyped=%lld beyond=%s",
	    sluice_filter_name(filter), sluice_option_string(filter, "greeting"),
	    sluice_option_int(filter, "count"), sluice_option_bool(filter, "loud"), n,
	    first != NULL ? first : "-", second != NULL ? second : "-",
	    sluice_option_duration(filter, "wait"), sluice_option_size(filter, "max"),
	    sluice_option_string(filter, "secret"),
	    sluice_option_string(filter, "nosuch") == NULL ? "null" : "set",
	    sluice_option_int(filter, "greeting"),
	    sluice_option_list_item(filter, "words", n) == NULL ? "null" : "set");
	*instance = summary;
	return 0;
}

static void
good_fini(void *instance)
{
	free(instance);
}
