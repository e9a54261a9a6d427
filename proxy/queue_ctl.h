/*
 * queue_ctl.h - operator control of the relay queue: the daemon's side
 * (folders at start, recovery, committer, counts on SIGUSR1, flush on
 * SIGUSR2) and the `sluice queue ...` subcommand working on the files.
 */
#ifndef SLUICE_QUEUE_CTL_H
#define SLUICE_QUEUE_CTL_H

#include <stdio.h>

struct config;

/*
 * The queue exists only for configurations with a relay-mode listener.
 * Before privileges are dropped: create the folders, owned by cfg->user.
 */
void	 queue_daemon_prepare(const struct config *cfg);
/* After: recover what a previous run left, start the committer. */
void	 queue_daemon_start(void);
/*
 * SIGHUP, before the new generation takes over: a first relay-mode
 * listener gets the queue ready (as the user we run as).  0, or -1 with
 * a sentence in err (the reload then fails).
 */
int	 queue_daemon_reload(const struct config *cfg, char *err, size_t errlen);
/* After the pool stopped: finish the last group. */
void	 queue_daemon_stop(void);
/* SIGUSR1: one log line with the counts per state and commit figures. */
void	 queue_daemon_status(void);
/* SIGUSR2 (`sluice queue flush`): ask the scheduler to retry deferred mail now. */
void	 queue_daemon_flush(void);

/*
 * sluice -t: a warning on fp for each relay-mode listener on a
 * non-loopback address whose chain has no relay filter (an open relay).
 * Returns how many.
 */
int	 queue_config_warnings(const struct config *cfg, FILE *fp);

/* `sluice [-c config] queue CMD [ARG]`; argv[0] is CMD.  Exit status. */
int	 queue_ctl_main(const char *config_path, int argc, char **argv);

#endif /* SLUICE_QUEUE_CTL_H */
