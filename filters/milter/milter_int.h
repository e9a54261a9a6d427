/*
 * milter_int.h - the milter client filter's insides, shared by its files:
 *
 *	milter.c	the module: options, instances, hooks, session state
 *	milter_client.c	the protocol: connect, negotiate, send each step,
 *			read each answer, timers, failures
 *	milter_macros.c	macro values and MAIL/RCPT argv as Postfix sends them
 *	milter_edit.c	modifications at end of message: checked, kept, applied
 *	milter_conn.c	the socket (milter_conn.h)
 *	milter_codec.c	frames (milter_codec.h)
 *	milter_parse.c	addresses, replies, header text (milter_parse.h)
 *	milter_core.c	what the public API does not give yet (milter_core.h)
 *
 * One struct milter_session per client session that reached the milter,
 * owned by the session's sluice_session_data slot, freed in on_close.  It
 * lives on the session's worker; its connection's callbacks run there
 * too and stop when it is freed, so they may use its ctx.
 */
#ifndef SLUICE_MILTER_INT_H
#define SLUICE_MILTER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sluice_filter.h"

#include "milter_codec.h"

struct milter_conn;

/* What we offer in OPTNEG: every action, every step option but RCPT_REJ. */
#define MILTER_OFFER_ACTIONS	MILTER_ACT_ALL
#define MILTER_OFFER_PROTOCOL	(0x001fffffu & ~MILTER_PROTO_RCPT_REJ)

/* Bytes of header and envelope changes kept until the final answer. */
#define MILTER_EDITS_MAX_BYTES	(1024u * 1024u)

/* A configured milter (one filter instance); read-only after init. */
struct milter_instance {
	char			*name;			/* instance name, for logs */
	char			*address;		/* as configured */
	struct sockaddr_storage	 sa;			/* parsed */
	socklen_t		 salen;
	unsigned int		 timeout_connect_ms;	/* TCP/unix connect */
	unsigned int		 timeout_command_ms;	/* negotiation and envelope replies */
	unsigned int		 timeout_content_ms;	/* header, body, end of message replies */
	long long		 core_timeout_ms;	/* the instance's hook timeout */
	int			 observe;		/* mode = observe: log changes, apply none */
	size_t			 max_header_changes;	/* per message */
	size_t			 max_rcpt_changes;	/* per message */
	size_t			 max_body_size;		/* a replaced body */
	char			*macros[MILTER_STAGES];	/* default macro name lists */
};

enum milter_state {
	MILTER_NEW = 0,		/* not connected yet */
	MILTER_CONNECTING,	/* connect in progress */
	MILTER_NEGOTIATING,	/* OPTNEG sent */
	MILTER_OPEN,		/* ready for commands */
	MILTER_DONE,		/* decided for the session (at connect/HELO); closed */
	MILTER_FAILED		/* broken: on_error for the rest of the session */
};

/* How far the milter's side of the transaction got, in protocol order. */
enum milter_step {
	MILTER_STEP_NONE = 0,
	MILTER_STEP_MAIL,
	MILTER_STEP_RCPT,
	MILTER_STEP_DATA,
	MILTER_STEP_HEADER,
	MILTER_STEP_EOH,
	MILTER_STEP_BODY,
	MILTER_STEP_EOM
};

/* What the hook in progress needs the milter to have seen. */
enum milter_goal {
	MILTER_GOAL_CONNECT = 0,
	MILTER_GOAL_HELO,
	MILTER_GOAL_MAIL,
	MILTER_GOAL_RCPT,
	MILTER_GOAL_DATA,
	MILTER_GOAL_HEADER,
	MILTER_GOAL_EOH,
	MILTER_GOAL_BODY,
	MILTER_GOAL_EOM
};

/* A verdict with its reply. */
struct milter_answer {
	enum sluice_verdict	 verdict;	/* CONTINUE ... DISCONNECT */
	int			 code;		/* 0 = the core's default */
	char			 enhanced[16];	/* "" = default */
	char			 text[512];	/* "" = default */
};

/* A header or envelope change, kept until the milter's final answer. */
struct milter_edit {
	unsigned char	 code;		/* h i m q + 2 - e */
	uint32_t	 index;		/* i, m */
	char		*a;		/* header name, mailbox or reason */
	char		*b;		/* header value (NULL: delete), ESMTP args or NULL */
};

struct milter_session {
	const struct milter_instance *mi;	/* our instance */
	struct sluice_ctx	*ctx;		/* the session's ctx for this instance */
	struct milter_conn	*conn;		/* NULL when not connected */
	enum milter_state	 state;
	uint32_t		 version;	/* negotiated */
	uint32_t		 actions;	/* negotiated SMFIF_* */
	uint32_t		 protocol;	/* negotiated SMFIP_* */
	char			*macros[MILTER_STAGES];	/* lists the milter asked for, or NULL */
	char			*fail_reason;	/* MILTER_FAILED: what happened */
	struct milter_answer	 done;		/* MILTER_DONE: the answer for later hooks */

	/* The session on the milter's side. */
	int			 connect_sent;	/* C went (or was skipped) */
	int			 helo_sent;	/* H went for the current HELO */

	/* The transaction. */
	enum milter_step	 step;		/* what the milter has seen */
	size_t			 rcpts_sent;	/* catching up RCPTs: next index */
	int			 txn_decided;	/* the milter answered for the whole transaction */
	struct milter_answer	 txn;		/* that answer, for the later hooks */
	int			 fail_reported;	/* a content hook failed once already */
	int			 skip_body;	/* SMFIR_SKIP: no more body */
	unsigned char		*body;		/* body bytes not sent yet */
	size_t			 body_len;
	size_t			 body_cap;
	struct milter_edit	*edits;		/* changes kept until the final answer */
	size_t			 nedits;
	size_t			 edits_cap;
	size_t			 edits_bytes;	/* their string bytes */
	size_t			 header_changes;	/* counted against max_header_changes */
	size_t			 rcpt_changes;	/* counted against max_rcpt_changes */
	size_t			 body_replaced;	/* replacement bytes so far */
	int			 body_changed;	/* SMFIR_REPLBODY came */

	/* The hook in progress. */
	enum milter_goal	 goal;
	int			 goal_sent;	/* the goal's own command went (H, R, L) */
	const char		*hname;		/* HEADER: borrowed or hname_own */
	const char		*hvalue;
	char			*hname_own;	/* copies once the hook waits */
	char			*hvalue_own;
	struct sluice_pending	*pending;	/* non-NULL: the hook is PENDING */
	uint64_t		 hook_start_ms;	/* monotonic, for the core timeout */
	unsigned char		 waiting;	/* command whose reply is awaited, 0 none */
	int			 waiting_catchup;	/* it is an RCPT caught up late */
	int			 waiting_drain;	/* waiting for output to drain */
	int			 timer_stage;	/* the timer is the stage timeout (not the hook's) */
	unsigned int		 timer_ms;	/* its length */
	int			 decided;	/* the hook's answer is set */
	struct milter_answer	 answer;	/* the hook's answer */
	struct milter_buf	 out;		/* frames being built */
	char			*scratch;	/* header value conversion */
	size_t			 scratch_cap;
};

/* milter_client.c */
enum milter_advance {
	MILTER_ADV_DONE = 0,	/* the hook's answer is in ms->answer */
	MILTER_ADV_WAIT,	/* waiting for the milter */
	MILTER_ADV_FAIL		/* failed: ms->fail_reason */
};
enum milter_advance milter_advance(struct milter_session *ms);
void		 milter_client_fail(struct milter_session *ms, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
/* The transaction ended: SMFIC_ABORT if the milter was in one; state reset. */
void		 milter_client_abort(struct milter_session *ms);
/* The session ended: SMFIC_QUIT, close. */
void		 milter_client_quit(struct milter_session *ms);
/* Called by milter_client.c when a PENDING hook has its answer. */
void		 milter_hook_finished(struct milter_session *ms, enum milter_advance result);

/* milter_macros.c */
int		 milter_put_stage_macros(struct milter_session *ms, unsigned int stage,
		    unsigned char cmd, const char *rcpt);
int		 milter_put_envelope(struct milter_session *ms, unsigned char cmd,
		    const char *mailbox, const char *params);

/* milter_edit.c */
/* A modification frame after SMFIC_BODYEOB; 0, or -1 (milter_client_fail called). */
int		 milter_edit_take(struct milter_session *ms, const struct milter_msg *m);
/* Apply the kept changes (final answer continue or accept), with one log line. */
void		 milter_edit_apply(struct milter_session *ms);
void		 milter_edit_clear(struct milter_session *ms);

/* milter.c */
uint64_t	 milter_now_ms(void);

#endif /* SLUICE_MILTER_INT_H */
