/*
 * fuzz_smtp_path.c - libFuzzer harness for the path parser on its own:
 * smtp_path_parse (what filters' envelope changes go through) and
 * smtp_path_arg_parse fed raw bytes, NUL, CR, LF and 8-bit included,
 * which fuzz_smtp_command cannot reach (the command splitter refuses
 * them first).  The first byte picks the flags.  On success the result
 * must hold together: the mailbox NUL-terminated within its bound, the
 * domain inside it, parameters inside the input, and "<mailbox>" must
 * parse again to the same mailbox.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_path(const struct smtp_path *p, int flags)
{
	size_t			 len = strnlen(p->mailbox, sizeof(p->mailbox));
	char			 again[SMTP_PATH_MAX + 3];
	struct smtp_path	*q;

	if (len > SMTP_PATH_MAX || p->local_len > len)
		abort();
	if (p->domain < p->mailbox || p->domain > p->mailbox + len)
		abort();
	if (strnlen(p->route, sizeof(p->route)) > SMTP_PATH_MAX)
		abort();
	if (p->is_null != (len == 0))
		abort();
	/* The mailbox as sluice forwards it must be accepted again as is. */
	again[0] = '<';
	memcpy(again + 1, p->mailbox, len);
	again[len + 1] = '>';
	if ((q = malloc(sizeof(*q))) == NULL)
		abort();
	if (smtp_path_parse(again, len + 2, flags, q) != SMTP_PARSE_OK ||
	    strcmp(q->mailbox, p->mailbox) != 0)
		abort();
	free(q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_path_arg	*pa;
	const char		*in = (const char *)data + 1;
	size_t			 i, n;
	int			 flags;

	if (size < 1)
		return 0;
	flags = data[0] & 0x07;
	n = size - 1;
	if ((pa = malloc(sizeof(*pa))) == NULL)
		abort();
	if (smtp_path_parse(in, n, flags, &pa->path) == SMTP_PARSE_OK)
		check_path(&pa->path, flags);
	if (smtp_path_arg_parse(in, n, (data[0] & 0x08) ? "TO" : "FROM", flags, pa) ==
	    SMTP_PARSE_OK) {
		check_path(&pa->path, flags);
		if (pa->nparams > SMTP_PARAMS_MAX)
			abort();
		for (i = 0; i < pa->nparams; i++) {
			const struct smtp_param	*p = &pa->params[i];

			if (p->keyword < in || p->keyword + p->keyword_len > in + n ||
			    (p->value != NULL && (p->value < in || p->value + p->value_len > in + n)))
				abort();
		}
	}
	free(pa);
	return 0;
}
