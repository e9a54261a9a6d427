/*
 * explain.h - `sluice --explain`: the configured chain run offline on a
 * saved message (explain.c).
 */
#ifndef SLUICE_EXPLAIN_H
#define SLUICE_EXPLAIN_H

#include <stddef.h>

struct explain_args {
	const char	*listener;	/* NULL = the first */
	const char	*client;	/* IP address */
	const char	*helo;
	const char	*from;		/* "" = null sender */
	char		**to;
	size_t		 nto;
};

/*
 * Run the dialogue, print each step and verdict on stdout.  Returns 0
 * accepted, 1 rejected, 2 tempfailed (or the session closed), 3 when the
 * config or the arguments are wrong (said on stderr).
 */
int	 explain_run(const char *config_path, const struct explain_args *args);

#endif /* SLUICE_EXPLAIN_H */
