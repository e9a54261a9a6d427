/*
 * smtp_cmd.h - the SMTP command table and the verbs' logic.
 *
 * Every verb goes check (syntax and state) -> filter phase -> proceed, so a
 * filter hooks in at exactly one place (STYLE.md).  The session hands over
 * one complete command line at a time and waits until the verb calls
 * session_command_done().
 */
#ifndef SLUICE_SMTP_CMD_H
#define SLUICE_SMTP_CMD_H

#include <stddef.h>

struct session;

/* After accept: run the connect phase, then greet (or refuse). */
void	 smtp_cmd_connect(struct session *s);

/* One command line, without its line end. */
void	 smtp_cmd_dispatch(struct session *s, const char *line, size_t len);

/* The DATA section is complete (s->dt.done): decide and forward. */
void	 smtp_cmd_data_end(struct session *s);

/* Free the command state of an interrupted command (session closing). */
void	 smtp_cmd_abort(struct session *s);

#endif /* SLUICE_SMTP_CMD_H */
