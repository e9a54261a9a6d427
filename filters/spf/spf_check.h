/*
 * spf_check.h - one SPF check (RFC 7208 check_host) through libspf2, with
 * DNS answered by a resolver the caller supplies.
 *
 * libspf2 only blocks, so a check runs in a pool thread.  Each thread
 * that checks gets its own SPF_server_t (created on first use, freed when
 * the thread ends) with our DNS layer below it; the layer asks the
 * caller's resolver (sluice_dns_lookup in the daemon, a zone in the unit
 * test) and converts each answer into libspf2's form with
 * spf_check_rr_from_answer().  On top of libspf2 this file
 *   - refuses to give loopback clients libspf2's built-in "pass",
 *   - fetches SPF records itself (the layer's get_spf): TXT only, never
 *     type SPF (99) (RFC 7208 3.1), each checked against the RFC 7208
 *     grammar (spf_syntax.c), and a record libspf2 compiled only in part
 *     (it drops what passes 511 compiled bytes silently) is a permerror,
 *   - enforces the limit of 10 DNS-querying terms across include and
 *     redirect, the void lookup limit (RFC 7208 4.6.4) and a time budget,
 *   - keeps explanations intact (libspf2 mangles their spaces) and
 *     ignores exp= texts RFC 7208 6.2 says to ignore,
 *   - maps libspf2's SPF_RESULT_INVALID to temperror or permerror,
 *   - turns libspf2's fatal SPF_error() (which would abort the process)
 *     into a failed check.
 * No sluice_* calls: the unit test links it without the daemon.
 */
#ifndef SLUICE_SPF_CHECK_H
#define SLUICE_SPF_CHECK_H

#include <netinet/in.h>		/* before spf2/spf.h, which needs it */
#include <netdb.h>

#include <spf2/spf.h>

#include "sluice_filter.h"
#include "spf_policy.h"

/* The resolver a check asks; lookup blocks and never returns NULL. */
struct spf_resolver {
	struct sluice_dns_answer *(*lookup)(void *arg, const char *name,
		    enum sluice_dns_type type);		/* one question */
	void	(*answer_free)(void *arg, struct sluice_dns_answer *answer);
	void	*arg;					/* for both */
};

/* What to check.  Nothing is kept after spf_check_run() returns. */
struct spf_check_params {
	const char	*ip;		/* client address text (IPv4-mapped is IPv4) */
	const char	*helo;		/* HELO/EHLO name, or NULL */
	const char	*sender;	/* envelope sender without <>, "" = null sender */
	enum spf_identity identity;	/* HELO: check helo; MAILFROM: sender (<>: helo) */
	const char	*receiver;	/* this host's name: %{r} */
	const char	*explanation;	/* default explanation (SPF macro text) */
	long long	 max_ms;	/* give up with temperror after this; 0 = never */
	unsigned int	 max_void;	/* void lookup limit; 0 = none */
	const struct spf_resolver *resolver;	/* DNS */
};

#define SPF_CHECK_TEXT_MAX	256

/* What came out. */
struct spf_check_result {
	enum spf_outcome outcome;		/* the RFC 7208 result */
	int		 failed;		/* 1: no result: library or memory failure */
	char		 domain[SPF_DOMAIN_MAX + 2];	/* the domain checked */
	char		 sender[SPF_DOMAIN_MAX + 80];	/* the <sender> checked */
	char		 reason[SPF_CHECK_TEXT_MAX];	/* why, for logs */
	char		 explanation[SPF_CHECK_TEXT_MAX];	/* fail: the explanation */
	int		 spf_result;		/* libspf2's SPF_result_t, -1 if not asked */
	int		 spf_error;		/* libspf2's SPF_errcode_t */
	unsigned int	 lookups;		/* DNS questions asked */
	unsigned int	 void_lookups;		/* of which void (RFC 7208 4.6.4) */
};

/*
 * Install libspf2's message handlers (warnings dropped, SPF_error turned
 * into a failed check).  Call once from the main thread before any check;
 * later calls do nothing.
 */
void	 spf_check_setup(void);

/*
 * Free the calling thread's libspf2 state now (it is freed when a thread
 * exits anyway; the main thread of a test calls this before it returns).
 */
void	 spf_check_thread_free(void);

/*
 * Whether text compiles as an explanation (SPF macro-string).  Returns 0,
 * or -1 with a sentence in err.
 */
int	 spf_check_explanation_valid(const char *text, char *err, size_t errlen);

/* Run one check; blocks while DNS answers.  Always fills *result. */
void	 spf_check_run(const struct spf_check_params *params,
	    struct spf_check_result *result);

/*
 * libspf2's result and error code as an RFC 7208 result: INVALID (what
 * libspf2 returns when the top-level record could not be had or
 * compiled) is temperror after a DNS error and permerror otherwise.
 * *failed is set to 1 for out-of-memory and internal errors, which are
 * no SPF result at all, else 0.
 */
enum spf_outcome spf_check_outcome(SPF_result_t result, SPF_errcode_t error, int *failed);

/*
 * Convert a resolver answer to what libspf2's DNS layers return: OK to
 * NETDB_SUCCESS with the records (A/AAAA parsed; MX and PTR names; TXT
 * with NUL bytes replaced by DEL so a record cannot end early), NODATA
 * to NO_DATA, NXDOMAIN to HOST_NOT_FOUND, SERVFAIL, TIMEOUT and ERROR to
 * TRY_AGAIN (temperror, RFC 7208 5).  Returns NULL only when out of
 * memory.  The caller frees with SPF_dns_rr_free.
 */
SPF_dns_rr_t *spf_check_rr_from_answer(SPF_dns_server_t *layer, const char *domain,
	    ns_type type, const struct sluice_dns_answer *answer);

#endif /* SLUICE_SPF_CHECK_H */
