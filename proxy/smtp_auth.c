/*
 * smtp_auth.c - SMTP AUTH in a session (RFC 4954): offering it, the SASL
 * exchange over continuation lines (auth.c does the parsing), the check
 * by the listener's auth backend, the AUTH filter phase, the growing delay
 * before a 535, and the per-session and per-address failure limits.
 *
 * Nothing the client sends in the exchange is ever logged: the log has
 * the mechanism, the outcome and, on success or when it passes a strict
 * character check, the user name.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "auth.h"
#include "auth_backend.h"
#include "auth_fail.h"
#include "chain.h"
#include "config.h"
#include "connlimit.h"
#include "generation.h"
#include "log.h"
#include "session.h"
#include "smtp_auth.h"
#include "smtp_cmd_int.h"
#include "util.h"
#include "worker.h"

/* The exchange and its failure bookkeeping, s->auth_state. */
struct smtp_auth_state {
	struct auth_exchange	 x;		/* SASL state and credentials */
	struct event		*delay;		/* before the 535 of a failure */
	unsigned int		 failures;	/* in this session */
	int			 close_after;	/* 421 after the delayed 535 */
};

static struct smtp_auth_state *smtp_auth_state(struct session *);
static void	 smtp_auth_step(struct session *, enum auth_status);
static void	 smtp_auth_verify(struct session *);
static void	 smtp_auth_verified(struct worker *, uint64_t, enum auth_verdict);
static void	 smtp_auth_chain_done(struct session *, const struct chain_result *);
static void	 smtp_auth_success(struct session *);
static void	 smtp_auth_failure(struct session *, const char *);
static void	 smtp_auth_delay_cb(evutil_socket_t, short, void *);
static void	 smtp_auth_log_fail(struct session *, const char *, long, long long);
static void	 smtp_auth_end(struct session *);
static const char *smtp_auth_client_key(struct session *, char *, size_t);

int
smtp_auth_offered(const struct session *s)
{
	const struct config_listener_auth *a = &s->lg->conf->auth;

	return a->mode != CONFIG_AUTH_NONE && (session_tls_active(s) || a->plaintext);
}

int
smtp_auth_required(const struct session *s)
{
	return s->lg->conf->auth.mode == CONFIG_AUTH_REQUIRED && s->auth_user == NULL;
}

static struct smtp_auth_state *
smtp_auth_state(struct session *s)
{
	if (s->auth_state == NULL)
		s->auth_state = xcalloc(1, sizeof(struct smtp_auth_state));
	return s->auth_state;
}

void
smtp_auth_free(struct session *s)
{
	struct smtp_auth_state	*st = s->auth_state;

	if (st == NULL)
		return;
	s->auth_state = NULL;
	if (st->delay != NULL)
		event_free(st->delay);
	auth_exchange_clear(&st->x);
	free(st);
}

/* The exchange is over (whatever the outcome): wipe it. */
static void
smtp_auth_end(struct session *s)
{
	s->flags &= ~SESSION_IN_AUTH;
	auth_exchange_clear(&smtp_auth_state(s)->x);
}

int
smtp_auth_check(struct session *s, struct cmd_state *c, const char *arg, size_t len)
{
	const struct config_listener_auth *a = &s->lg->conf->auth;
	char	 q[80], key[INET6_ADDRSTRLEN];

	if (a->mode == CONFIG_AUTH_NONE) {
		cmd_fail(s, 502, "5.5.1", "Error: command not implemented");
		return -1;
	}
	if (!smtp_auth_offered(s)) {
		cmd_fail(s, 538, "5.7.11", "Encryption required for requested authentication "
		    "mechanism");
		return -1;
	}
	if (!(s->flags & SESSION_ESMTP)) {
		cmd_fail(s, 503, "5.5.1", "Error: send EHLO first");
		return -1;
	}
	if (s->auth_user != NULL) {
		cmd_fail(s, 503, "5.5.1", "Error: already authenticated");
		return -1;
	}
	if (s->txn != NULL) {
		cmd_fail(s, 503, "5.5.1", "Error: AUTH not allowed during a mail transaction");
		return -1;
	}
	if (auth_fail_count(smtp_auth_client_key(s, key, sizeof(key)), monotonic_ms(),
	    a->failure_window_ms) >= a->max_failures) {
		session_log(s, LOG_LEVEL_INFO, "auth=refused reason=too_many_failures client=%s",
		    log_quote(q, sizeof(q), s->addr, 64));
		session_close(s, 421, "4.7.0", "Too many failed authentication attempts, "
		    "closing connection");
		return -1;
	}
	smtp_auth_step(s, auth_exchange_start(&smtp_auth_state(s)->x, arg, len));
	return -1;
}

/* Not reached: check hands over to the exchange itself. */
void
smtp_auth_proceed(struct session *s, struct cmd_state *c)
{
	session_command_done(s);
}

void
smtp_auth_line(struct session *s, const char *line, size_t len)
{
	smtp_auth_step(s, auth_exchange_line(&smtp_auth_state(s)->x, line, len));
}

/* Act on the exchange's answer; the session is BUSY. */
static void
smtp_auth_step(struct session *s, enum auth_status st)
{
	struct smtp_auth_state	*as = smtp_auth_state(s);

	switch (st) {
	case AUTH_CONTINUE:
		s->flags |= SESSION_IN_AUTH;
		session_reply(s, 334, NULL, "%s", as->x.challenge);
		session_command_done(s);
		return;
	case AUTH_READY:
		s->flags &= ~SESSION_IN_AUTH;
		smtp_auth_verify(s);
		return;
	case AUTH_ERR_MALFORMED:
		smtp_auth_failure(s, "malformed");
		return;
	default:
		break;
	}
	smtp_auth_end(s);
	if (st == AUTH_ERR_CANCEL)
		cmd_fail(s, 501, "5.0.0", "Authentication cancelled");
	else if (st == AUTH_ERR_BASE64)
		cmd_fail(s, 501, "5.5.2", "Error: invalid base64 data");
	else if (st == AUTH_ERR_MECH)
		cmd_fail(s, 504, "5.5.4", "Error: unrecognized authentication mechanism");
	else
		cmd_fail(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
}

static void
smtp_auth_verify(struct session *s)
{
	struct smtp_auth_state	*as = smtp_auth_state(s);
	struct auth_request	 rq;
	struct auth_backend	*b = s->lg->auth;

	memset(&rq, 0, sizeof(rq));
	rq.mech = auth_mech_name(as->x.mech);
	rq.user = as->x.user;
	rq.pass = as->x.pass;
	rq.client_addr = s->addr;
	rq.client_port = s->port;
	rq.local_addr = s->local_addr;
	rq.local_port = s->local_port;
	rq.secured = session_tls_active(s) || s->lg->conf->auth.plaintext;
	rq.session_id = s->id;
	/* The backend copies what it needs; the password is wiped here now. */
	auth_backend_verify(b, s->worker, &rq, smtp_auth_verified);
	if (s->auth_state != NULL)
		explicit_bzero(as->x.pass, sizeof(as->x.pass));
}

static void
smtp_auth_verified(struct worker *w, uint64_t session_id, enum auth_verdict v)
{
	struct session		*s = worker_session_find(w, session_id);
	struct smtp_auth_state	*as;

	if (s == NULL || (s->flags & SESSION_CLOSING))
		return;
	as = smtp_auth_state(s);
	if (v == AUTH_VERDICT_OK) {
		s->auth_user = xstrdup(as->x.user);
		s->auth_mech = xstrdup(auth_mech_name(as->x.mech));
		if (chain_wants(s, SLUICE_PHASE_AUTH)) {
			chain_start(s, SLUICE_PHASE_AUTH, smtp_auth_chain_done);
			return;
		}
		smtp_auth_success(s);
	} else if (v == AUTH_VERDICT_FAIL) {
		smtp_auth_failure(s, "credentials");
	} else {
		session_log(s, LOG_LEVEL_WARNING, "auth=tempfail mech=%s backend=%s client=%s",
		    auth_mech_name(as->x.mech), s->lg->conf->auth.backend, s->addr);
		smtp_auth_end(s);
		session_reply(s, 454, "4.7.0", "Temporary authentication failure, try again "
		    "later");
		session_command_done(s);
	}
}

static void
smtp_auth_success(struct session *s)
{
	char	 q[300];

	session_log(s, LOG_LEVEL_INFO, "auth=ok user=%s mech=%s client=%s",
	    log_quote(q, sizeof(q), s->auth_user, 256), s->auth_mech, s->addr);
	smtp_auth_end(s);
	session_reply(s, 235, "2.7.0", "Authentication successful");
	session_command_done(s);
}

/* The AUTH phase: a filter may refuse an identity the backend accepted. */
static void
smtp_auth_chain_done(struct session *s, const struct chain_result *r)
{
	struct chain_result	 rr = *r;
	char			 q[300];

	if (r->verdict == SLUICE_CONTINUE || r->verdict == SLUICE_DISCARD) {
		smtp_auth_success(s);
		return;
	}
	session_log(s, LOG_LEVEL_INFO, "auth=rejected user=%s mech=%s filter=%s client=%s",
	    log_quote(q, sizeof(q), s->auth_user, 256), s->auth_mech,
	    r->filter != NULL ? r->filter : "-", s->addr);
	free(s->auth_user);
	free(s->auth_mech);
	s->auth_user = s->auth_mech = NULL;
	smtp_auth_end(s);
	/* The default replies of the phase are AUTH's own (RFC 4954 section 6). */
	if (rr.code == 0 && rr.verdict == SLUICE_REJECT) {
		rr.code = 535;
		strlcpy_s(rr.enhanced, "5.7.8", sizeof(rr.enhanced));
	} else if (rr.code == 0 && rr.verdict == SLUICE_TEMPFAIL) {
		rr.code = 454;
		strlcpy_s(rr.enhanced, "4.7.0", sizeof(rr.enhanced));
	}
	cmd_verdict_reply(s, SLUICE_PHASE_AUTH, &rr);
	if (r->verdict != SLUICE_DISCONNECT)
		session_command_done(s);
}

static void
smtp_auth_log_fail(struct session *s, const char *reason, long n, long long delay_ms)
{
	struct smtp_auth_state	*as = smtp_auth_state(s);
	char			 user[300] = "";

	/* The claimed name only when it cannot be a password typed in the wrong field. */
	if (auth_user_loggable(as->x.user))
		snprintf(user, sizeof(user), " user=%s", as->x.user);
	session_log(s, LOG_LEVEL_INFO, "auth=fail mech=%s reason=%s%s client=%s "
	    "failures=%u client_failures=%ld delay=%lldms", auth_mech_name(as->x.mech), reason,
	    user, s->addr, as->failures, n, delay_ms);
}

/*
 * Failures are counted per client prefix (ipv4_prefix, ipv6_prefix, as
 * the per-IP connection limit), so an IPv6 client cannot rotate through
 * its /64 to start over.
 */
static const char *
smtp_auth_client_key(struct session *s, char *buf, size_t len)
{
	connlimit_key_text(session_limit_key(s), buf, len);
	return buf[0] != '\0' ? buf : s->addr;
}

/* A failed attempt: count it, wait, then 535 (and 421 past a limit). */
static void
smtp_auth_failure(struct session *s, const char *reason)
{
	const struct config_listener_auth *a = &s->lg->conf->auth;
	struct smtp_auth_state	*as = smtp_auth_state(s);
	char			 key[INET6_ADDRSTRLEN];
	long			 n;
	long long		 ms;
	struct timeval		 tv;

	as->failures++;
	n = auth_fail_record(smtp_auth_client_key(s, key, sizeof(key)), monotonic_ms(),
	    a->failure_window_ms);
	as->close_after = as->failures >= (unsigned int)a->max_session_failures ||
	    n >= a->max_failures;
	ms = auth_fail_delay(a->fail_delay_ms, n);
	smtp_auth_log_fail(s, reason, n, ms);
	smtp_auth_end(s);
	if (ms == 0) {
		smtp_auth_delay_cb(-1, 0, s);
		return;
	}
	if (as->delay == NULL &&
	    (as->delay = evtimer_new(s->worker->base, smtp_auth_delay_cb, s)) == NULL)
		fatalx("evtimer_new");
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(as->delay, &tv);
}

static void
smtp_auth_delay_cb(evutil_socket_t fd, short events, void *arg)
{
	struct session		*s = arg;
	struct smtp_auth_state	*as = smtp_auth_state(s);

	if (s->flags & SESSION_CLOSING)
		return;
	session_reply(s, 535, "5.7.8", "Authentication credentials invalid");
	if (as->close_after) {
		session_log(s, LOG_LEVEL_INFO, "disconnect reason=auth_failures "
		    "session_failures=%u client=%s", as->failures, s->addr);
		session_close(s, 421, "4.7.0", "Too many failed authentication attempts, "
		    "closing connection");
		return;
	}
	session_command_done(s);
}
