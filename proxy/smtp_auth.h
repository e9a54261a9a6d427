/*
 * smtp_auth.h - the AUTH command in a session (RFC 4954): whether it is
 * offered, the SASL exchange over continuation lines, verification by the
 * listener's auth backend, the AUTH filter phase, the failure delay and
 * limits, and the log lines (never the credentials).
 *
 * The exchange state is the session's (s->auth_state), freed by
 * smtp_auth_free when the session ends.  While SESSION_IN_AUTH is set,
 * session.c hands each line to smtp_auth_line instead of the command
 * table.
 */
#ifndef SLUICE_SMTP_AUTH_H
#define SLUICE_SMTP_AUTH_H

#include <stddef.h>

struct cmd_state;
struct session;

/* 1 if EHLO should advertise AUTH: the listener offers it, and TLS or auth_plaintext. */
int	 smtp_auth_offered(const struct session *s);
/* 1 if the listener wants AUTH before MAIL and the client has not done it. */
int	 smtp_auth_required(const struct session *s);

/* The command table's check and proceed for AUTH (smtp_cmd.c). */
int	 smtp_auth_check(struct session *s, struct cmd_state *c, const char *arg, size_t len);
void	 smtp_auth_proceed(struct session *s, struct cmd_state *c);

/* One continuation line of the exchange (session BUSY, SESSION_IN_AUTH set). */
void	 smtp_auth_line(struct session *s, const char *line, size_t len);

/* Free the exchange state (session end). */
void	 smtp_auth_free(struct session *s);

#endif /* SLUICE_SMTP_AUTH_H */
