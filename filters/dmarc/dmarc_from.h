/*
 * dmarc_from.h - the author domain (RFC5322.From) of a message, as DMARC
 * needs it (RFC 7489 6.6.1).  Pure code.
 */
#ifndef SLUICE_DMARC_FROM_H
#define SLUICE_DMARC_FROM_H

#include "dmarc_psl.h"

enum dmarc_from_status {
	DMARC_FROM_OK = 0,	/* one author domain (all addresses share it) */
	DMARC_FROM_EMPTY,	/* no address at all ("From:", an empty group) */
	DMARC_FROM_MULTI,	/* addresses in different domains */
	DMARC_FROM_BAD		/* unparsable, no domain, address literal, bad name */
};

/*
 * Read the value of one From field (as sent: folding, comments, quoted
 * display names, groups, obs-route and obs-domain forms) and put its
 * author domain, normalized (dmarc_domain_normalize), into domain
 * (DMARC_DOMAIN_MAX bytes) when the status is DMARC_FROM_OK.  Hostile
 * input is bounded: the scan is linear and allocates nothing.
 */
enum dmarc_from_status dmarc_from_parse(const char *value, char *domain);

/* "ok", "empty", "multi", "bad". */
const char	*dmarc_from_status_name(enum dmarc_from_status status);

#endif /* SLUICE_DMARC_FROM_H */
