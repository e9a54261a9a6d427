/*
 * sluice_filter.h - the public filter API of sluice.
 *
 * A filter module is a shared object (or a module built into the daemon)
 * that exports exactly one const struct sluice_module named
 * "sluice_filter_module".  The daemon loads it, checks abi_version against
 * SLUICE_FILTER_ABI_VERSION, declares the module's options to the config
 * parser, and creates one *instance* per config section of the module:
 *
 *	load = { "/usr/lib/sluice/modules/example.so" }
 *	example "strict" { timeout = 5s  on_error = tempfail  greeting = "hi" }
 *	listener "mx" { ... chain = { "strict" } }
 *
 * Threads.  init and fini run in the main thread while a configuration
 * generation is built or freed.  Every hook of a session runs on the worker
 * thread that owns the session, one at a time; hooks of different sessions
 * may run concurrently on different workers, so instance data shared by all
 * sessions must be read-only or locked.
 *
 * Verdicts.  Every hook answers one verdict.  CONTINUE passes the event to
 * the next filter; ACCEPT skips the rest of the chain for this event;
 * TEMPFAIL, REJECT, DISCARD and DISCONNECT end it with a reply (set one with
 * sluice_reply(), or the core picks a default for the phase).  PENDING means
 * the answer comes later: call sluice_suspend() before returning PENDING and
 * finish with sluice_resume() exactly once, from any thread.
 *
 * Ownership.  Every pointer the core hands to a hook is valid only for the
 * duration of that call unless stated otherwise; copy what you keep.
 * Strings passed to the core are copied by it.
 */
#ifndef SLUICE_FILTER_H
#define SLUICE_FILTER_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever struct sluice_module or a function signature changes. */
#define SLUICE_FILTER_ABI_VERSION	1u

/* The one symbol a module exports. */
#define SLUICE_FILTER_SYMBOL		"sluice_filter_module"

enum sluice_verdict {
	SLUICE_CONTINUE = 0,	/* next filter, then the core proceeds */
	SLUICE_ACCEPT,		/* skip the rest of the chain for this event */
	SLUICE_TEMPFAIL,	/* 4xx for this event */
	SLUICE_REJECT,		/* 5xx for this event */
	SLUICE_DISCARD,		/* accept the message, deliver it nowhere */
	SLUICE_DISCONNECT,	/* reply (421 by default) and close */
	SLUICE_PENDING		/* answer follows through sluice_resume() */
};

enum sluice_phase {
	SLUICE_PHASE_CONNECT = 0,	/* client connected, before the greeting */
	SLUICE_PHASE_HELO,		/* HELO/EHLO argument */
	SLUICE_PHASE_AUTH,		/* successful AUTH */
	SLUICE_PHASE_MAIL,		/* MAIL FROM */
	SLUICE_PHASE_RCPT,		/* each RCPT TO */
	SLUICE_PHASE_DATA,		/* DATA command, before 354 */
	SLUICE_PHASE_HEADER,		/* each header field of the message */
	SLUICE_PHASE_EOH,		/* end of the header section */
	SLUICE_PHASE_BODY,		/* each body chunk */
	SLUICE_PHASE_EOM,		/* end of message, modifications allowed */
	SLUICE_PHASE_RESET,		/* transaction ended (RSET, end of data) */
	SLUICE_PHASE_CLOSE,		/* session ends */
	SLUICE_PHASE_COUNT
};

enum sluice_option_type {
	SLUICE_OPT_STRING = 0,	/* "text" */
	SLUICE_OPT_INT,		/* integer */
	SLUICE_OPT_BOOL,	/* yes/no, true/false */
	SLUICE_OPT_STRING_LIST,	/* { "a", "b" } */
	SLUICE_OPT_DURATION,	/* "30s", "5m", "250ms"; read as milliseconds */
	SLUICE_OPT_SIZE		/* "64k", "10M"; read as bytes */
};

/* One option of a module, declared as data; the array ends with a NULL name. */
struct sluice_option {
	const char		*name;		/* option name in the section */
	enum sluice_option_type	 type;		/* value type */
	const char		*default_value;	/* as written in a config; NULL = none */
	int			 required;	/* non-zero: config must set it */
	const char		*help;		/* one line for sluice -o and docs */
};

struct sluice_ctx;	/* a session as seen by one filter instance; opaque */
struct sluice_filter;	/* a configured filter instance; opaque */
struct sluice_pending;	/* a suspended hook; opaque */

typedef enum sluice_verdict (*sluice_hook_fn)(struct sluice_ctx *ctx);

/*
 * The module descriptor.  Every hook may be NULL (not interested).  init
 * returns 0 on success; on failure it writes a sentence into err (the core
 * prefixes file:line) and returns -1.  *instance is handed back to fini
 * and is what sluice_instance() returns.
 */
struct sluice_module {
	uint32_t		 abi_version;	/* SLUICE_FILTER_ABI_VERSION */
	const char		*name;		/* section keyword in the config */
	const char		*description;	/* one line */
	const struct sluice_option *options;	/* NULL-name terminated, or NULL */

	int	(*init)(struct sluice_filter *filter, void **instance,
		    char *err, size_t errlen);	/* main thread */
	void	(*fini)(void *instance);	/* main thread */

	sluice_hook_fn	 on_connect;	/* sluice_client_address() etc. */
	sluice_hook_fn	 on_helo;	/* sluice_helo() */
	sluice_hook_fn	 on_auth;	/* sluice_auth_user() */
	sluice_hook_fn	 on_mail;	/* sluice_mail_from() */
	sluice_hook_fn	 on_rcpt;	/* sluice_rcpt_current() */
	sluice_hook_fn	 on_data;	/* DATA command */
	enum sluice_verdict (*on_header)(struct sluice_ctx *ctx,
		    const char *name, const char *value);	/* unfolded as sent */
	sluice_hook_fn	 on_eoh;	/* end of headers */
	enum sluice_verdict (*on_body)(struct sluice_ctx *ctx,
		    const unsigned char *chunk, size_t len);	/* dot-unstuffed, CRLF */
	sluice_hook_fn	 on_eom;	/* end of message */
	void	(*on_reset)(struct sluice_ctx *ctx);	/* transaction over */
	void	(*on_close)(struct sluice_ctx *ctx);	/* free session state here */
};

/* What a plugin defines (built-in modules use their own names). */
extern const struct sluice_module sluice_filter_module;

/* --- Options (call from init) ------------------------------------------ */

/* The instance's name (the section title); valid for the instance's life. */
const char	*sluice_filter_name(const struct sluice_filter *filter);
/* Option values; the name must be one the module declared. */
const char	*sluice_option_string(const struct sluice_filter *filter, const char *name);
long long	 sluice_option_int(const struct sluice_filter *filter, const char *name);
int		 sluice_option_bool(const struct sluice_filter *filter, const char *name);
/* Durations in milliseconds, sizes in bytes. */
long long	 sluice_option_duration(const struct sluice_filter *filter, const char *name);
long long	 sluice_option_size(const struct sluice_filter *filter, const char *name);
size_t		 sluice_option_list_count(const struct sluice_filter *filter, const char *name);
const char	*sluice_option_list_item(const struct sluice_filter *filter, const char *name,
		    size_t index);

/* --- Session facts (call from hooks) ----------------------------------- */

void		*sluice_instance(struct sluice_ctx *ctx);	/* init's *instance */
/* Per-session, per-instance slot the filter owns; free it in on_close. */
void		**sluice_session_data(struct sluice_ctx *ctx);
uint64_t	 sluice_session_id(struct sluice_ctx *ctx);
enum sluice_phase sluice_phase(struct sluice_ctx *ctx);
const char	*sluice_listener_name(struct sluice_ctx *ctx);
const char	*sluice_client_address(struct sluice_ctx *ctx);	/* "192.0.2.7", "2001:db8::1" */
int		 sluice_client_port(struct sluice_ctx *ctx);
const char	*sluice_client_hostname(struct sluice_ctx *ctx);	/* verified rDNS or NULL */
const char	*sluice_helo(struct sluice_ctx *ctx);		/* NULL before HELO/EHLO */
const char	*sluice_auth_user(struct sluice_ctx *ctx);	/* NULL unless authenticated */
const char	*sluice_auth_mech(struct sluice_ctx *ctx);	/* "PLAIN"/"LOGIN", or NULL */
/*
 * TLS on the client connection (STARTTLS or implicit), NULL or 0 without
 * it.  Strings belong to the session and live until it ends.
 */
const char	*sluice_tls_version(struct sluice_ctx *ctx);	/* "TLSv1.3" */
const char	*sluice_tls_cipher(struct sluice_ctx *ctx);	/* "TLS_AES_256_GCM_SHA384" */
int		 sluice_tls_cipher_bits(struct sluice_ctx *ctx);	/* 256 */
const char	*sluice_tls_peer_subject(struct sluice_ctx *ctx);	/* client cert, RFC 2253 */
const char	*sluice_tls_peer_issuer(struct sluice_ctx *ctx);	/* its issuer */
const char	*sluice_mail_from(struct sluice_ctx *ctx);	/* "" = null sender, NULL = none */
const char	*sluice_rcpt_current(struct sluice_ctx *ctx);	/* the RCPT being checked */
size_t		 sluice_rcpt_count(struct sluice_ctx *ctx);	/* accepted so far */
const char	*sluice_rcpt(struct sluice_ctx *ctx, size_t index);
size_t		 sluice_message_size(struct sluice_ctx *ctx);	/* bytes so far, wire form */

/* Notes: string key/value pairs on the session, shared by all filters. */
int		 sluice_note_set(struct sluice_ctx *ctx, const char *key, const char *value);
const char	*sluice_note_get(struct sluice_ctx *ctx, const char *key);

/* --- Replies and logging ----------------------------------------------- */

/*
 * The reply for a TEMPFAIL, REJECT or DISCONNECT verdict: code 4xx or 5xx,
 * enhanced "x.y.z" (RFC 3463) or NULL, text without CR/LF.  A code whose
 * class does not match the verdict is ignored (logged) and the default used.
 */
void	 sluice_reply(struct sluice_ctx *ctx, int code, const char *enhanced,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Record that the filter could not do its work (DNS down, store error):
 * the core ignores the verdict and applies the instance's on_error action.
 */
void	 sluice_fail(struct sluice_ctx *ctx, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

enum sluice_log_level { SLUICE_LOG_DEBUG, SLUICE_LOG_INFO, SLUICE_LOG_WARNING, SLUICE_LOG_ERROR };

/* One log line, prefixed with the session id and filter=<instance>. */
void	 sluice_log(struct sluice_ctx *ctx, enum sluice_log_level level,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* --- Suspending a hook -------------------------------------------------- */

/*
 * Call in a hook, then return SLUICE_PENDING.  The handle stays valid until
 * sluice_resume() or sluice_resume_fail() is called, exactly once, from any
 * thread.  If the instance's timeout expires first, the core applies
 * on_error and the late resume is dropped quietly; it must still be called.
 */
struct sluice_pending *sluice_suspend(struct sluice_ctx *ctx);
void	 sluice_resume(struct sluice_pending *pending, enum sluice_verdict verdict,
	    int code, const char *enhanced, const char *text);
void	 sluice_resume_fail(struct sluice_pending *pending, const char *reason);

/*
 * The ctx of a suspended hook, for use on the session's worker (in a
 * sluice_dns_query or sluice_counter_add callback, or sluice_offload's
 * done) before resuming: NULL when the session has ended or the hook timed
 * out, else the ctx the hook had, so the filter can record results
 * (sluice_authres_add, notes, header changes in EOM) first.
 */
struct sluice_ctx *sluice_pending_ctx(struct sluice_pending *pending);

/*
 * Run fn(arg) on this session's worker after ms milliseconds.  fn always
 * runs (also when the session has ended meanwhile), so it may free arg.
 * Returns 0, or -1 when out of memory.
 */
int	 sluice_after(struct sluice_ctx *ctx, unsigned int ms,
	    void (*fn)(void *arg), void *arg);

/*
 * Run work(arg) in the blocking-work pool, then done(arg) on this
 * session's worker thread.  done always runs, so it may free arg.
 */
int	 sluice_offload(struct sluice_ctx *ctx, void (*work)(void *arg),
	    void (*done)(void *arg), void *arg);

/* --- Message changes (on_eom only; -1 elsewhere) ------------------------ */

/* Append a header field at the end of the header section. */
int	 sluice_header_add(struct sluice_ctx *ctx, const char *name, const char *value);
/* Insert at position index (0 = first field, below sluice's own Received:). */
int	 sluice_header_insert(struct sluice_ctx *ctx, size_t index, const char *name,
	    const char *value);
/* Change the index-th (1-based) field called name; value NULL removes it. */
int	 sluice_header_change(struct sluice_ctx *ctx, const char *name, size_t index,
	    const char *value);
/* Replace the body; calls append.  Data is unstuffed with CRLF line ends. */
int	 sluice_body_replace(struct sluice_ctx *ctx, const unsigned char *data, size_t len);

/* Remove the index-th (1-based) field called name: header_change(..., NULL). */
int	 sluice_header_remove(struct sluice_ctx *ctx, const char *name, size_t index);

/*
 * Envelope changes (on_eom only, or while this instance's EOM is PENDING;
 * -1 elsewhere).  Applied before the message is handed to the backend:
 * added recipients are sent as extra RCPT commands; a removed recipient
 * or a changed sender makes the core restart the backend transaction
 * (RSET, MAIL, the final RCPT list).  A backend that refuses an added
 * recipient with 4xx makes the whole message 451 (the client retries);
 * with 5xx the recipient is dropped and logged.  No recipients left means
 * the message is discarded (logged).  mailbox is without <>; "" is the
 * null sender.  params (ESMTP parameters, may be NULL) are passed on only
 * if the backend offers them.
 */
int	 sluice_rcpt_add(struct sluice_ctx *ctx, const char *mailbox, const char *params);
int	 sluice_rcpt_remove(struct sluice_ctx *ctx, const char *mailbox);
int	 sluice_mail_change(struct sluice_ctx *ctx, const char *mailbox, const char *params);

/* --- The filter instance from a hook ---------------------------------- */

/* This hook's instance handle: what init got, valid for the instance's life. */
struct sluice_filter *sluice_ctx_filter(struct sluice_ctx *ctx);

/* --- DNS ------------------------------------------------------------------ */

/* Record types (their RFC 1035 numbers). */
enum sluice_dns_type {
	SLUICE_DNS_A = 1,
	SLUICE_DNS_PTR = 12,
	SLUICE_DNS_MX = 15,
	SLUICE_DNS_TXT = 16,
	SLUICE_DNS_AAAA = 28
};

enum sluice_dns_status {
	SLUICE_DNS_OK = 0,	/* records of the type exist (count >= 1) */
	SLUICE_DNS_NODATA,	/* the name exists, no records of the type */
	SLUICE_DNS_NXDOMAIN,	/* the name does not exist (RCODE 3) */
	SLUICE_DNS_SERVFAIL,	/* server failure, refusal, DNSSEC bogus */
	SLUICE_DNS_TIMEOUT,	/* no answer within the resolver's timeout */
	SLUICE_DNS_ERROR	/* bad name, out of memory, no resolver */
};

/* One answer record, of the type asked (CNAMEs are followed, not listed). */
struct sluice_dns_record {
	const char	*text;		/* A/AAAA: address text; MX, PTR: name without the
					   final dot; TXT: its strings concatenated */
	size_t		 len;		/* strlen(text), except TXT may hold NUL bytes */
	unsigned int	 preference;	/* MX only */
	uint32_t	 ttl;		/* seconds */
};

struct sluice_dns_answer {
	enum sluice_dns_status	 status;
	int			 rcode;		/* RCODE received, -1 when none */
	int			 secure;	/* DNSSEC validated (resolver dnssec = yes) */
	const char		*name;		/* the name asked */
	enum sluice_dns_type	 type;		/* the type asked */
	size_t			 count;		/* records */
	const struct sluice_dns_record *records;
	const char		*why;		/* for logs when status is not OK/NODATA/NXDOMAIN */
};

typedef void (*sluice_dns_cb)(void *arg, const struct sluice_dns_answer *answer);

/*
 * Ask the configured resolver (the resolver section) without blocking.
 * cb runs exactly once, on the session's worker, never inside this call,
 * also when the session has ended meanwhile (so it may free arg); the
 * answer is valid during cb only.  Returns 0, or -1 (cb will not run).
 */
int	 sluice_dns_query(struct sluice_ctx *ctx, const char *name, enum sluice_dns_type type,
	    sluice_dns_cb cb, void *arg);

/*
 * The same, blocking: only from work running in the pool (sluice_offload),
 * never from a hook.  filter is the instance's handle (init's, or
 * sluice_ctx_filter()).  Always returns an answer (status ERROR when called
 * from a loop thread); free it with sluice_dns_answer_free().
 */
struct sluice_dns_answer *sluice_dns_lookup(struct sluice_filter *filter, const char *name,
	    enum sluice_dns_type type);
void	 sluice_dns_answer_free(struct sluice_dns_answer *answer);
/* "ok", "nodata", "nxdomain", "servfail", "timeout", "error". */
const char *sluice_dns_status_name(enum sluice_dns_status status);

/* --- Counter store (rate limits, greylisting) ---------------------------- */

struct sluice_store;	/* a counter store; opaque */

/*
 * Open a store from init: "memory" (in this process, the default; counts
 * survive reloads) or "redis://HOST:PORT[/DB][?timeout=250ms&prefix=sluice:]"
 * (shared by every sluice instance using the same Redis).  Returns NULL
 * with a sentence in err on a bad spec.  Stores are closed by the core.
 */
struct sluice_store *sluice_store_open(struct sluice_filter *filter, const char *spec,
	    char *err, size_t errlen);

struct sluice_counter {
	int		 ok;		/* 0: the store failed (why says how) */
	long long	 value;		/* the count after the increment */
	long long	 ttl_ms;	/* time left in the window */
	const char	*why;		/* failure text for logs */
};

typedef void (*sluice_counter_cb)(void *arg, const struct sluice_counter *result);

/*
 * Add delta to the counter key in a fixed window of window_ms (the window
 * starts at the first increment and the count resets when it ends).  delta
 * 0 reads.  cb runs exactly once on the session's worker, never inside this
 * call, also when the session has ended.  Returns 0, or -1 (no cb).
 */
int	 sluice_counter_add(struct sluice_ctx *ctx, struct sluice_store *store, const char *key,
	    long long delta, unsigned long window_ms, sluice_counter_cb cb, void *arg);

/* --- Authentication results (RFC 8601) ----------------------------------- */

/*
 * Record one result of the current transaction for the Authentication-
 * Results header: method "spf", "dkim", "dmarc", ...; result "pass",
 * "fail", ...; reason free text or NULL; props "smtp.mailfrom=example.org"
 * or "header.d=example.org header.s=sel" or NULL.  Cleared at RSET and at
 * the end of each message.  Valid in every hook of a transaction.
 */
int	 sluice_authres_add(struct sluice_ctx *ctx, const char *method, const char *result,
	    const char *reason, const char *props);

struct sluice_authres {
	const char	*method;
	const char	*result;
	const char	*reason;	/* NULL if none */
	const char	*props;		/* NULL if none */
};

size_t	 sluice_authres_count(struct sluice_ctx *ctx);
const struct sluice_authres *sluice_authres_get(struct sluice_ctx *ctx, size_t index);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_FILTER_H */
