/*
 * explain.c - `sluice --explain`: run the configured chain of one
 * listener on a saved message, offline, and print what every filter said.
 *
 * Nothing is simulated: the real session code runs on a real worker
 * thread, fed over a socketpair by an SMTP dialogue this file speaks from
 * the main thread; only the client's address is given on the command line
 * and the backend is replaced by one that answers 250 and keeps nothing.
 * Filters ask the configured resolver as they would in the daemon.  The
 * chain's trace hook reports each verdict; the final envelope and header
 * section are printed as the backend would have received them.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "config.h"
#include "explain.h"
#include "generation.h"
#include "log.h"
#include "message.h"
#include "offline.h"
#include "session.h"
#include "util.h"

#define EXPLAIN_REPLY_WAIT_MS	(10 * 60 * 1000)	/* the chain has its own timeouts */

struct explain_client {
	int		 fd;
	char		 buf[8192];
	size_t		 len;
};

static void	 explain_trace(struct session *, const char *, enum sluice_phase,
		    enum sluice_verdict, enum sluice_verdict, int, const char *, const char *,
		    int);
static int	 explain_dialogue(struct explain_client *, const struct explain_args *,
		    const char *, size_t);
static int	 explain_deliver(struct session *, struct message *);

/* --- The chain's verdicts, as they happen (worker thread) ----------------- */

static void
explain_trace(struct session *s, const char *filter, enum sluice_phase phase,
    enum sluice_verdict said, enum sluice_verdict applied, int code, const char *enhanced,
    const char *text, int failed)
{
	char	 q[600];

	/* Every header and body chunk would drown the rest: only decisions. */
	if ((phase == SLUICE_PHASE_HEADER || phase == SLUICE_PHASE_BODY) &&
	    said == SLUICE_CONTINUE && !failed)
		return;
	flockfile(stdout);
	printf("  filter=%s phase=%s verdict=%s", filter, chain_phase_name(phase),
	    chain_verdict_name(said));
	if (applied != said)
		printf(" applied=%s", chain_verdict_name(applied));
	if (failed)
		printf(" error=%s", log_quote(q, sizeof(q), text, 256));
	else if (code != 0 || (text != NULL && text[0] != '\0'))
		printf(" reply=\"%d%s%s %s\"", code, enhanced[0] != '\0' ? " " : "", enhanced,
		    text != NULL ? text : "");
	printf("\n");
	fflush(stdout);
	funlockfile(stdout);
	(void)s;
}

/* The backend's stand-in: print what it would have got, answer 250. */
static int
explain_deliver(struct session *s, struct message *msg)
{
	struct txn	*t = s->txn;
	const char	*name, *value;
	size_t		 i, n = message_header_count(msg);

	flockfile(stdout);
	printf("backend would receive:\n  MAIL FROM:<%s>\n", t->mail_from);
	for (i = 0; i < t->nrcpts; i++)
		printf("  RCPT TO:<%s>\n", t->rcpts[i].mailbox);
	printf("  header section (after the filters' changes):\n");
	for (i = 0; i < n; i++)
		if (message_header_get(msg, i, &name, &value) == 0)
			printf("    %s: %s\n", name, value);
	fflush(stdout);
	funlockfile(stdout);
	return 0;
}

/* --- Start-up ------------------------------------------------------------- */

/* The message from stdin in wire form: CRLF line ends, dot-stuffed. */
static char *
explain_read_message(size_t *lenp, size_t limit)
{
	char	*in = NULL, *out;
	size_t	 len = 0, cap = 0, i, n = 0;
	ssize_t	 r;
	int	 bol = 1;

	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			in = xreallocarray(in, cap, 1);
		}
		if ((r = read(STDIN_FILENO, in + len, cap - len)) == -1) {
			if (errno == EINTR)
				continue;
			free(in);
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > limit)
			break;
	}
	out = xmalloc(len * 2 + 3);
	for (i = 0; i < len; i++) {
		if (bol && in[i] == '.')
			out[n++] = '.';
		if (in[i] == '\n') {
			if (i == 0 || in[i - 1] != '\r')
				out[n++] = '\r';
			bol = 1;
		} else if (in[i] == '\r' && i + 1 < len && in[i + 1] != '\n') {
			out[n++] = '\r';
			out[n++] = '\n';
			bol = 1;
			continue;
		} else
			bol = 0;
		out[n++] = in[i];
	}
	if (n > 0 && out[n - 1] != '\n') {
		out[n++] = '\r';
		out[n++] = '\n';
	}
	free(in);
	*lenp = n;
	return out;
}

int
explain_run(const char *path, const struct explain_args *a)
{
	struct generation	*g;
	struct listener_gen	*lg;
	struct sockaddr_storage	 sa;
	socklen_t		 salen;
	struct explain_client	 c;
	char			*err = xcalloc(1, CONFIG_ERR_MAX), *msg, spool[] =
				    "/tmp/sluice-explain-XXXXXX";
	size_t			 msglen;
	int			 rc;

	if ((g = generation_build(path, err, CONFIG_ERR_MAX)) == NULL) {
		fprintf(stderr, "%s%ssluice: %s: configuration is not valid\n", err,
		    err[0] != '\0' && err[strlen(err) - 1] != '\n' ? "\n" : "", path);
		free(err);
		return 3;
	}
	free(err);
	if ((lg = offline_listener(g, a->listener)) == NULL) {
		fprintf(stderr, "sluice: --explain: no listener %s%s%s in %s\n",
		    a->listener ? "\"" : "", a->listener ? a->listener : "", a->listener ? "\"" : "",
		    path);
		generation_free(g);
		return 3;
	}
	if (offline_address(a->client, 49152, &sa, &salen) == -1) {
		fprintf(stderr, "sluice: --explain: --client \"%s\" is not an IP address\n",
		    a->client);
		generation_free(g);
		return 3;
	}
	if ((msg = explain_read_message(&msglen, (size_t)lg->conf->limits.message_size + 1)) ==
	    NULL) {
		fprintf(stderr, "sluice: --explain: reading the message: %s\n", strerror(errno));
		generation_free(g);
		return 3;
	}
	/* Nothing is kept: a private spool, and a backend that stores nothing. */
	if (mkdtemp(spool) == NULL)
		fatal("mkdtemp");
	free(g->cfg->spool_dir);
	g->cfg->spool_dir = xstrdup(spool);
	offline_standin(g, lg, 1);
	offline_deliver_hook = explain_deliver;
	log_init("sluice", 1, 0);
	offline_start(g, 1);
	chain_trace = explain_trace;
	memset(&c, 0, sizeof(c));
	if ((c.fd = offline_session(generation_acquire(), lg, (struct sockaddr *)&sa, salen,
	    NULL)) == -1)
		fatal("socketpair");
	printf("explain: config=%s listener=%s client=%s helo=%s\n", path, lg->conf->name,
	    a->client, a->helo);
	rc = explain_dialogue(&c, a, msg, msglen);
	close(c.fd);
	free(msg);
	offline_stop();
	(void)rmdir(spool);
	return rc;
}

/* --- The client side of the dialogue (main thread, blocking) ------------- */

/* Read one whole reply; its code, or -1 when the session went away. */
static int
explain_reply(struct explain_client *c, char *text, size_t size)
{
	size_t		 used = 0;
	char		*eol;
	struct pollfd	 pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t		 r;

	text[0] = '\0';
	for (;;) {
		while ((eol = memchr(c->buf, '\n', c->len)) != NULL) {
			size_t	 n = (size_t)(eol - c->buf) + 1;
			int	 last = n >= 4 && c->buf[3] != '-';

			if (used + n < size) {
				memcpy(text + used, c->buf, n);
				used += n;
				text[used] = '\0';
			}
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			if (last)
				return atoi(text + (used >= n ? used - n : 0));
		}
		if (c->len == sizeof(c->buf))
			c->len = 0;	/* an absurd line: drop it */
		if (poll(&pfd, 1, EXPLAIN_REPLY_WAIT_MS) <= 0)
			return -1;
		if ((r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len)) <= 0)
			return -1;
		c->len += (size_t)r;
	}
}

static int
explain_send(struct explain_client *c, const char *data, size_t len)
{
	ssize_t	 r;

	while (len > 0) {
		if ((r = write(c->fd, data, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Send a command, print it and the reply; the reply code. */
static int
explain_step(struct explain_client *c, const char *line, char *reply, size_t size)
{
	char	 buf[1100];
	int	 code;

	snprintf(buf, sizeof(buf), "%s\r\n", line);
	/* Printed first: the worker prints the filters' verdicts meanwhile. */
	printf("> %s\n", line);
	fflush(stdout);
	if (explain_send(c, buf, strlen(buf)) == -1)
		return -1;
	code = explain_reply(c, reply, size);
	printf("< %s", code == -1 ? "(connection closed)\n" : reply);
	fflush(stdout);
	return code;
}

static int
explain_verdict(int code, const char *where)
{
	const char	*what = code < 0 ? "closed" : code < 400 ? "accepted" :
			    code < 500 ? "tempfailed" : "rejected";

	printf("result: %s%s%s\n", what, code >= 400 || code < 0 ? " at " : "",
	    code >= 400 || code < 0 ? where : "");
	return code < 0 ? 2 : code < 400 ? 0 : code < 500 ? 2 : 1;
}

static int
explain_dialogue(struct explain_client *c, const struct explain_args *a, const char *msg,
    size_t msglen)
{
	char	 line[1100], reply[8192];
	size_t	 i, accepted = 0;
	int	 code, last = 0;

	if ((code = explain_reply(c, reply, sizeof(reply))) != 220) {
		printf("< %s", code == -1 ? "(connection closed)\n" : reply);
		return explain_verdict(code < 0 ? code : code, "connect");
	}
	printf("< %s", reply);
	snprintf(line, sizeof(line), "EHLO %s", a->helo);
	if ((code = explain_step(c, line, reply, sizeof(reply))) != 250)
		return explain_verdict(code, "helo");
	snprintf(line, sizeof(line), "MAIL FROM:<%s>", a->from);
	if ((code = explain_step(c, line, reply, sizeof(reply))) != 250)
		return explain_verdict(code, "mail");
	for (i = 0; i < a->nto; i++) {
		snprintf(line, sizeof(line), "RCPT TO:<%s>", a->to[i]);
		if ((code = explain_step(c, line, reply, sizeof(reply))) == 250 || code == 251)
			accepted++;
		else if (code < 0)
			return explain_verdict(code, "rcpt");
		else
			last = code;
	}
	if (accepted == 0)
		return explain_verdict(last, "rcpt");
	if ((code = explain_step(c, "DATA", reply, sizeof(reply))) != 354)
		return explain_verdict(code, "data");
	printf("> (message, %zu bytes)\n> .\n", msglen);
	fflush(stdout);
	if (explain_send(c, msg, msglen) == -1 || explain_send(c, ".\r\n", 3) == -1)
		return explain_verdict(-1, "data");
	code = explain_reply(c, reply, sizeof(reply));
	printf("< %s", code == -1 ? "(connection closed)\n" : reply);
	last = explain_verdict(code, "end of data");
	if (code > 0)
		(void)explain_step(c, "QUIT", reply, sizeof(reply));
	return last;
}
