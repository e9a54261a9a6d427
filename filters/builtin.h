/*
 * builtin.h - the filter modules compiled into the daemon.  Each exports
 * its descriptor here; module_builtins() (module.h) lists them.
 */
#ifndef SLUICE_BUILTIN_H
#define SLUICE_BUILTIN_H

#include "sluice_filter.h"

extern const struct sluice_module sluice_builtin_access;	/* filters/access/access.c */
extern const struct sluice_module sluice_builtin_relay;	/* filters/relay/relay.c */
extern const struct sluice_module sluice_builtin_ratelimit;	/* filters/ratelimit/ratelimit.c */
extern const struct sluice_module sluice_builtin_dmarc;	/* filters/dmarc/dmarc.c */
extern const struct sluice_module sluice_builtin_authres;	/* filters/authres/authres.c */
extern const struct sluice_module sluice_builtin_dkim;	/* filters/dkim/dkim.c */
extern const struct sluice_module sluice_builtin_spf;	/* filters/spf/spf.c */
extern const struct sluice_module sluice_builtin_milter;	/* filters/milter/milter.c */

#endif /* SLUICE_BUILTIN_H */
