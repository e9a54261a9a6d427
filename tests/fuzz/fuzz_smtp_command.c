/*
 * fuzz_smtp_command.c - libFuzzer harness: one command line through the
 * command splitter and, for MAIL/RCPT, the path and parameter parser with
 * every flag combination.  Any crash, hang or sanitizer report is a bug.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smtp_parse.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_command	 cmd;
	struct smtp_path_arg	 pa;
	int			 flags;

	if (smtp_command_parse((const char *)data, size, &cmd) != SMTP_PARSE_OK)
		return 0;
	for (flags = 0; flags < 8; flags++) {
		(void)smtp_path_arg_parse(cmd.arg, cmd.arg_len, "FROM", flags, &pa);
		(void)smtp_path_arg_parse(cmd.arg, cmd.arg_len, "TO", flags, &pa);
	}
	(void)smtp_domain_check(cmd.arg, cmd.arg_len, 0);
	(void)smtp_domain_check(cmd.arg, cmd.arg_len, 1);
	(void)smtp_xtext_valid(cmd.arg, cmd.arg_len);
	return 0;
}
