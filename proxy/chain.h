/*
 * chain.h - running a listener's filter chain for one event of a session.
 *
 * The chain calls each filter instance's hook for the phase, in config
 * order, and folds their verdicts into one result (DESIGN.md "Filters"):
 * CONTINUE goes on, ACCEPT stops with "pass", TEMPFAIL/REJECT/DISCARD/
 * DISCONNECT stop with that verdict and a reply, PENDING waits for
 * sluice_resume() (by session id, on the session's worker) or the
 * instance's timeout.  Failures (sluice_fail, timeout) become the
 * instance's on_error action; observe mode logs would_<verdict> and goes
 * on.  Exactly one chain run per session at a time.
 */
#ifndef SLUICE_CHAIN_H
#define SLUICE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "sluice_filter.h"

struct session;
struct event;
struct filter_instance;

/* What a chain run decided. */
struct chain_result {
	enum sluice_verdict	 verdict;	/* CONTINUE (incl. ACCEPT), TEMPFAIL, REJECT, DISCARD, DISCONNECT */
	int			 code;		/* reply code, 0 = the phase's default */
	char			 enhanced[16];	/* "5.7.1" or "" for the default */
	char			 text[512];	/* reply text or "" for the default */
	const char		*filter;	/* instance that decided, NULL if none */
};

typedef void (*chain_done_fn)(struct session *s, const struct chain_result *r);

/*
 * Called with every verdict a filter gives (said) and what the chain made
 * of it (applied: on_error, observe mode), when set (sluice --explain).
 */
typedef void (*chain_trace_fn)(struct session *s, const char *filter, enum sluice_phase phase,
		    enum sluice_verdict said, enum sluice_verdict applied, int code,
		    const char *enhanced, const char *text, int failed);
extern chain_trace_fn chain_trace;

/* The state of the chain run in progress; embedded in the session. */
struct chain_run {
	enum sluice_phase	 phase;		/* the event */
	size_t			 next;		/* next chain index to call */
	uint64_t		 seq;		/* bumps per hook call; stale resumes are dropped */
	int			 active;	/* a run is in progress */
	int			 pending;	/* waiting on chain[next - 1] */
	int			 in_hook;	/* inside a hook call (sluice_reply allowed) */
	int			 failed;	/* the hook called sluice_fail */
	const char		*hname;		/* HEADER: name argument */
	const char		*hvalue;	/* HEADER: value argument */
	const unsigned char	*chunk;		/* BODY: chunk argument */
	size_t			 chunklen;	/* BODY: its length */
	struct event		*timer;		/* PENDING timeout, lazily created */
	chain_done_fn		 done;		/* called once at the end */
	struct chain_result	 result;	/* being built */
};

/* Per-session, per-instance context handed to hooks as struct sluice_ctx. */
struct sluice_ctx {
	struct session		*session;	/* owner */
	size_t			 index;		/* position in the listener's chain */
	void			*data;		/* sluice_session_data() slot */
};

/*
 * Run the chain for phase; done runs exactly once, possibly before this
 * returns.  HEADER and BODY take their arguments from chain_start_header
 * and chain_start_body.
 */
void	 chain_start(struct session *s, enum sluice_phase phase, chain_done_fn done);
void	 chain_start_header(struct session *s, const char *name, const char *value,
	    chain_done_fn done);
void	 chain_start_body(struct session *s, const unsigned char *chunk, size_t len,
	    chain_done_fn done);

/* Call reset or close hooks (no verdicts).  Not during a chain run. */
void	 chain_notify(struct session *s, enum sluice_phase phase);

/* Abandon a run in progress (session closing): late resumes are dropped. */
void	 chain_cancel(struct session *s);

/* 1 if any filter of the session's chain hooks phase. */
int	 chain_wants(const struct session *s, enum sluice_phase phase);

/* Resume a pending hook; called on the session's worker by the API layer. */
void	 chain_resume(struct session *s, uint64_t seq, enum sluice_verdict verdict,
	    int code, const char *enhanced, const char *text, const char *fail_reason);

/* Bit (1 << phase) for every phase some instance of chain hooks. */
unsigned int chain_hook_mask(struct filter_instance **chain, size_t n);

/* Lower-case verdict and phase names for logs ("reject", "rcpt"). */
const char *chain_verdict_name(enum sluice_verdict v);
const char *chain_phase_name(enum sluice_phase p);

#endif /* SLUICE_CHAIN_H */
