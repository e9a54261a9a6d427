/*
 * milter_front.c - sluice-milter: the configured chain of one listener
 * behind a libmilter front door, so an MTA (Postfix smtpd_milters,
 * Sendmail INPUT_MAIL_FILTER) can use it.
 *
 * Nothing of the chain is re-implemented: each milter connection gets a
 * real sluice session on a worker thread, fed over a socketpair (as
 * `sluice --explain` does, offline.c), and each libmilter callback speaks
 * its step of the SMTP dialogue and waits, bounded, for the reply.  The
 * listener's backend is a stand-in that, at end of data, copies the final
 * envelope, header section and (if replaced) body back here; the
 * differences from what the MTA sent become smfi_* modifications in eom.
 *
 * libmilter is a singleton with its own signal thread that takes SIGHUP,
 * SIGTERM and SIGINT as "stop" (../shared/LIBRARIES.md 1), so reload is
 * SIGUSR2, waited for by a thread of ours.  sluice's "main thread" (where
 * generations are built and freed) is another thread of ours running the
 * main event base; libmilter keeps the process's first thread.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <libmilter/mfapi.h>

#include "config.h"
#include "generation.h"
#include "log.h"
#include "message.h"
#include "offline.h"
#include "session.h"
#include "util.h"
#include "worker.h"

#define MF_DEFAULT_CONN		"inet:10030@127.0.0.1"
#define MF_WAIT_MARGIN_MS	30000		/* beyond the chain's own timeouts */
#define MF_REPLY_MAX		8192		/* bytes of one session reply kept */
#define MF_LINE_MAX		2048		/* one SMTP command we send */

struct mf_header {
	char		*name;		/* owned */
	char		*value;		/* owned; CRLF folding */
};

struct mf_rcpt {
	char		*mailbox;	/* owned, without <> */
	char		*params;	/* owned, " ARG=.." or "" */
};

/* What the stand-in received at end of data (worker thread fills it). */
struct mf_result {
	char		*from;		/* mailbox */
	char		*from_params;	/* " ARG=..", or NULL */
	struct mf_rcpt	*rcpts;
	size_t		 nrcpts;
	struct mf_header *hdrs;
	size_t		 nhdrs;
	char		*body;		/* replaced body (CRLF, unstuffed), or NULL */
	size_t		 bodylen;
};

/* One milter connection: smfi_setpriv(). */
struct mf_conn {
	int		 fd;		/* our end of the session's socketpair */
	int		 peer;		/* the session's end: registry key */
	int		 dead;		/* the session went away */
	int		 greeted;	/* EHLO said */
	int		 in_txn;	/* MAIL accepted, transaction open */
	int		 wait_ms;	/* bound on one reply */
	size_t		 limit;		/* message bytes accepted from the MTA */
	char		*hostname;	/* from xxfi_connect, for a missing HELO */
	char		 rbuf[MF_REPLY_MAX];	/* unread session output */
	size_t		 rlen;
	char		 reply[MF_REPLY_MAX];	/* the last whole reply */
	char		*from;		/* MAIL mailbox as sent */
	struct mf_rcpt	*rcpts;		/* accepted RCPTs as sent */
	size_t		 nrcpts;
	struct mf_header *hdrs;		/* as the MTA sent them */
	size_t		 nhdrs;
	struct evbuffer	*body;		/* as the MTA sent it */
	size_t		 size;		/* header and body bytes so far */
	struct mf_result *res;		/* set by the stand-in, under mf_lock */
};

static struct {
	const char	*config_path;
	const char	*conn;
	const char	*listener;
	int		 foreground;
	pthread_t	 loop;		/* sluice's main thread */
	int		 ready;		/* loop started (under mf_lock) */
	pthread_cond_t	 ready_cond;
} mf = {
	.config_path = SLUICE_CONFDIR "/sluice.conf",
	.conn = MF_DEFAULT_CONN,
	.ready_cond = PTHREAD_COND_INITIALIZER,
};

/* Connections by the session's socket number, for the stand-in. */
static pthread_mutex_t	 mf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mf_conn	**mf_registry;
static size_t		 mf_nregistry;

static void	 mf_register(struct mf_conn *);
static void	 mf_unregister(struct mf_conn *);
static int	 mf_deliver(struct session *, struct message *);
static void	 mf_result_free(struct mf_result *);
static int	 mf_send(struct mf_conn *, const char *, size_t);
static int	 mf_read_reply(struct mf_conn *);
static int	 mf_command(struct mf_conn *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static sfsistat	 mf_answer(SMFICTX *, struct mf_conn *, int);
static void	 mf_txn_clear(struct mf_conn *);
static int	 mf_prepare(struct generation *, char *, size_t);
static int	 mf_apply(SMFICTX *, struct mf_conn *, struct mf_result *);
static int	 mf_apply_headers(SMFICTX *, struct mf_conn *, struct mf_result *);
static int	 mf_apply_envelope(SMFICTX *, struct mf_conn *, struct mf_result *);

/* --- The registry and the stand-in backend -------------------------------- */

static void
mf_register(struct mf_conn *c)
{
	size_t	 i;

	pthread_mutex_lock(&mf_lock);
	/*
	 * A dead session's number may come back for a new one: the newest
	 * owner wins, since only a live session can deliver.
	 */
	for (i = 0; i < mf_nregistry; i++)
		if (mf_registry[i]->peer == c->peer)
			break;
	if (i == mf_nregistry)
		mf_registry = xreallocarray(mf_registry, ++mf_nregistry, sizeof(*mf_registry));
	mf_registry[i] = c;
	pthread_mutex_unlock(&mf_lock);
}

static void
mf_unregister(struct mf_conn *c)
{
	size_t	 i;

	pthread_mutex_lock(&mf_lock);
	for (i = 0; i < mf_nregistry; i++)
		if (mf_registry[i] == c) {
			mf_registry[i] = mf_registry[--mf_nregistry];
			break;
		}
	mf_result_free(c->res);
	c->res = NULL;
	pthread_mutex_unlock(&mf_lock);
}

static void
mf_result_free(struct mf_result *r)
{
	size_t	 i;

	if (r == NULL)
		return;
	free(r->from);
	free(r->from_params);
	for (i = 0; i < r->nrcpts; i++) {
		free(r->rcpts[i].mailbox);
		free(r->rcpts[i].params);
	}
	free(r->rcpts);
	for (i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].name);
		free(r->hdrs[i].value);
	}
	free(r->hdrs);
	free(r->body);
	free(r);
}

/* The replaced body: the writer's output after the header section. */
static int
mf_result_body(struct mf_result *r, struct message *msg)
{
	struct message_writer	 w;
	struct evbuffer		*out;
	struct evbuffer_ptr	 p;
	unsigned char		*all;
	size_t			 len, skip;
	int			 more;

	if ((out = evbuffer_new()) == NULL)
		return -1;
	message_writer_init(&w, msg, MESSAGE_WRITE_UNSTUFF);
	while ((more = message_writer_next(&w, out, 0)) == 1)
		;
	len = evbuffer_get_length(out);
	if (more == -1 || ((all = evbuffer_pullup(out, -1)) == NULL && len > 0)) {
		evbuffer_free(out);
		return -1;
	}
	if (len >= 2 && all[0] == '\r' && all[1] == '\n')
		skip = 2;
	else if ((p = evbuffer_search(out, "\r\n\r\n", 4, NULL)).pos >= 0)
		skip = (size_t)p.pos + 4;
	else
		skip = len;
	r->bodylen = len - skip;
	r->body = xmalloc(r->bodylen + 1);
	memcpy(r->body, all + skip, r->bodylen);
	evbuffer_free(out);
	return 0;
}

/* The stand-in's delivery (worker thread): copy it all for the milter side. */
static int
mf_deliver(struct session *s, struct message *msg)
{
	struct txn		*t = s->txn;
	struct mf_result	*r = xcalloc(1, sizeof(*r));
	const char		*name, *value;
	size_t			 i, n = message_header_count(msg);
	int			 fd = (int)bufferevent_getfd(s->bev), rc = -1;

	r->from = xstrdup(t->mail_from);
	if (t->mail_params != NULL && t->mail_params[0] != '\0')
		r->from_params = xstrdup(t->mail_params);
	r->rcpts = xcalloc(t->nrcpts ? t->nrcpts : 1, sizeof(*r->rcpts));
	for (r->nrcpts = 0; r->nrcpts < t->nrcpts; r->nrcpts++) {
		r->rcpts[r->nrcpts].mailbox = xstrdup(t->rcpts[r->nrcpts].mailbox);
		r->rcpts[r->nrcpts].params = xstrdup(t->rcpts[r->nrcpts].params != NULL ?
		    t->rcpts[r->nrcpts].params : "");
	}
	r->hdrs = xcalloc(n ? n : 1, sizeof(*r->hdrs));
	for (i = 0; i < n; i++)
		if (message_header_get(msg, i, &name, &value) == 0) {
			r->hdrs[r->nhdrs].name = xstrdup(name);
			r->hdrs[r->nhdrs++].value = xstrdup(value);
		}
	if (message_body_replaced(msg) && mf_result_body(r, msg) == -1) {
		session_log(s, LOG_LEVEL_WARNING, "milter front: reading the new body failed");
		mf_result_free(r);
		return -1;
	}
	pthread_mutex_lock(&mf_lock);
	for (i = 0; i < mf_nregistry; i++)
		if (mf_registry[i]->peer == fd) {
			mf_result_free(mf_registry[i]->res);
			mf_registry[i]->res = r;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&mf_lock);
	if (rc == -1)
		mf_result_free(r);
	return rc;
}

/* --- Speaking to the session (libmilter threads, blocking, bounded) ------- */

static int
mf_send(struct mf_conn *c, const char *data, size_t len)
{
	ssize_t	 r;

	while (len > 0) {
		if ((r = write(c->fd, data, len)) == -1) {
			if (errno == EINTR)
				continue;
			c->dead = 1;
			return -1;
		}
		data += r;
		len -= (size_t)r;
	}
	return 0;
}

/* One whole reply into c->reply; its code, or -1 (session gone, timeout). */
static int
mf_read_reply(struct mf_conn *c)
{
	struct pollfd	 pfd = { .fd = c->fd, .events = POLLIN };
	size_t		 used = 0, n;
	char		*eol;
	ssize_t		 r;

	c->reply[0] = '\0';
	for (;;) {
		while ((eol = memchr(c->rbuf, '\n', c->rlen)) != NULL) {
			n = (size_t)(eol - c->rbuf) + 1;
			if (used + n < sizeof(c->reply)) {
				memcpy(c->reply + used, c->rbuf, n);
				used += n;
				c->reply[used] = '\0';
			}
			memmove(c->rbuf, c->rbuf + n, c->rlen - n);
			c->rlen -= n;
			if (n >= 4 && eol[0] == '\n' && c->reply[used - n + 3] != '-')
				return atoi(c->reply + used - n);
		}
		if (c->rlen == sizeof(c->rbuf))
			c->rlen = 0;	/* an absurd line: drop it */
		if (c->dead || poll(&pfd, 1, c->wait_ms) <= 0 ||
		    (r = read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen)) <= 0) {
			c->dead = 1;
			return -1;
		}
		c->rlen += (size_t)r;
	}
}

static int
mf_command(struct mf_conn *c, const char *fmt, ...)
{
	char	 line[MF_LINE_MAX];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2 || strpbrk(line, "\r\n") != NULL) {
		/* Cannot be said in one SMTP line: refuse like a session would. */
		snprintf(c->reply, sizeof(c->reply), "500 5.5.2 Line too long or invalid\r\n");
		return 500;
	}
	memcpy(line + n, "\r\n", 3);
	if (c->dead || mf_send(c, line, (size_t)n + 2) == -1)
		return -1;
	return mf_read_reply(c);
}

/* Set the MTA's reply from a session reply (all its lines, % escaped). */
static void
mf_setreply(SMFICTX *ctx, int code, const char *reply)
{
	char		 rcode[4], xcode[32], *lines[9], *buf, *p, *line, *text;
	size_t		 n = 0, i, k;
	const char	*s;

	snprintf(rcode, sizeof(rcode), "%03d", code);
	xcode[0] = '\0';
	buf = xmalloc(strlen(reply) * 2 + 1);
	for (p = buf, s = reply; *s != '\0'; s++) {
		if (*s == '%')
			*p++ = '%';
		*p++ = *s;
	}
	*p = '\0';
	for (p = buf; n < nitems(lines) - 1 && (line = strsep(&p, "\n")) != NULL;) {
		line[strcspn(line, "\r")] = '\0';
		if (strlen(line) < 4)
			continue;
		text = line + 4;
		/* The enhanced status code of the first line, taken off every line. */
		k = strspn(text, "0123456789.");
		if (k >= 5 && k < sizeof(xcode) && text[k] == ' ' && text[0] == rcode[0] &&
		    text[1] == '.') {
			if (n == 0)
				snprintf(xcode, sizeof(xcode), "%.*s", (int)k, text);
			if (strncmp(text, xcode, k) == 0)
				text += k + 1;
		}
		lines[n++] = text;
	}
	for (i = n; i < nitems(lines); i++)
		lines[i] = NULL;
	if (n <= 1) {
		if (smfi_setreply(ctx, rcode, xcode[0] ? xcode : NULL, n ? lines[0] : NULL) !=
		    MI_SUCCESS)
			(void)smfi_setreply(ctx, rcode, NULL, NULL);
	} else if (smfi_setmlreply(ctx, rcode, xcode[0] ? xcode : NULL, lines[0], lines[1],
	    lines[2], lines[3], lines[4], lines[5], lines[6], lines[7], (char *)NULL) !=
	    MI_SUCCESS)
		(void)smfi_setreply(ctx, rcode, NULL, NULL);
	free(buf);
}

/* A session reply as the milter's answer for this step. */
static sfsistat
mf_answer_reply(SMFICTX *ctx, int code, const char *reply)
{
	if (code >= 200 && code < 400)
		return SMFIS_CONTINUE;
	if (code < 400 || code >= 600) {
		/* The session is gone or said nonsense: never a 5xx for it. */
		(void)smfi_setreply(ctx, "451", "4.3.0",
		    "Policy service unavailable, try again later");
		return SMFIS_TEMPFAIL;
	}
	mf_setreply(ctx, code, reply);
	return code >= 500 ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

static sfsistat
mf_answer(SMFICTX *ctx, struct mf_conn *c, int code)
{
	return mf_answer_reply(ctx, code, c->reply);
}

static void
mf_txn_clear(struct mf_conn *c)
{
	size_t	 i;

	free(c->from);
	c->from = NULL;
	for (i = 0; i < c->nrcpts; i++) {
		free(c->rcpts[i].mailbox);
		free(c->rcpts[i].params);
	}
	free(c->rcpts);
	c->rcpts = NULL;
	c->nrcpts = 0;
	for (i = 0; i < c->nhdrs; i++) {
		free(c->hdrs[i].name);
		free(c->hdrs[i].value);
	}
	free(c->hdrs);
	c->hdrs = NULL;
	c->nhdrs = 0;
	if (c->body != NULL)
		evbuffer_drain(c->body, evbuffer_get_length(c->body));
	c->size = 0;
	pthread_mutex_lock(&mf_lock);
	mf_result_free(c->res);
	c->res = NULL;
	pthread_mutex_unlock(&mf_lock);
}

/* "<a@b>" or "a@b" without the brackets. */
static char *
mf_mailbox(const char *arg)
{
	size_t	 len = strlen(arg);

	if (len >= 2 && arg[0] == '<' && arg[len - 1] == '>')
		return xstrndup(arg + 1, len - 2);
	return xstrdup(arg);
}

/* The ESMTP arguments after the address, each after one space. */
static char *
mf_params(char **argv)
{
	char	*out = xstrdup(""), *next;
	size_t	 i;

	for (i = 1; argv[i] != NULL; i++) {
		xasprintf(&next, "%s %s", out, argv[i]);
		free(out);
		out = next;
	}
	return out;
}

/* Value with lone LFs made CRLF (the MTA may fold with "\n"). */
static char *
mf_crlf(const char *v)
{
	char	*out = xmalloc(strlen(v) * 2 + 1), *p = out;

	for (; *v != '\0'; v++) {
		if (*v == '\n' && (p == out || p[-1] != '\r'))
			*p++ = '\r';
		*p++ = *v;
	}
	*p = '\0';
	return out;
}

/* Value with CRLF made LF, as libmilter's modifications want folding. */
static char *
mf_lf(const char *v)
{
	char	*out = xstrdup(v), *p = out;

	for (; *v != '\0'; v++)
		if (!(v[0] == '\r' && v[1] == '\n'))
			*p++ = *v;
	*p = '\0';
	return out;
}

/* --- The libmilter callbacks -------------------------------------------- */

static int
mf_wait_ms(const struct listener_gen *lg)
{
	long long	 ms = MF_WAIT_MARGIN_MS;
	size_t		 i;

	/* PENDING hooks of one phase run one after another, each bounded. */
	for (i = 0; i < lg->nchain; i++)
		ms += lg->chain[i]->conf->timeout_ms;
	return ms > 3600 * 1000 ? 3600 * 1000 : (int)ms;
}

static sfsistat
mf_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct mf_conn		*c = xcalloc(1, sizeof(*c));
	struct generation	*g = generation_acquire();
	struct listener_gen	*lg = offline_listener(g, mf.listener);
	struct sockaddr_storage	 ss;
	socklen_t		 len = 0;

	c->fd = c->peer = -1;
	c->hostname = xstrdup(hostname != NULL && hostname[0] != '\0' ? hostname : "localhost");
	if ((c->body = evbuffer_new()) == NULL)
		fatalx("evbuffer_new");
	smfi_setpriv(ctx, c);
	memset(&ss, 0, sizeof(ss));
	if (hostaddr != NULL && hostaddr->sa_family == AF_INET)
		len = sizeof(struct sockaddr_in);
	else if (hostaddr != NULL && hostaddr->sa_family == AF_INET6)
		len = sizeof(struct sockaddr_in6);
	if (len != 0)
		memcpy(&ss, hostaddr, len);
	else
		(void)offline_address("127.0.0.1", 0, &ss, &len);	/* local (unix) client */
	c->wait_ms = mf_wait_ms(lg);
	c->limit = (size_t)lg->conf->limits.message_size;
	if ((c->fd = offline_session(g, lg, (struct sockaddr *)&ss, len, &c->peer)) == -1) {
		log_warn("sluice-milter: socketpair");
		c->dead = 1;
		return mf_answer(ctx, c, -1);
	}
	mf_register(c);
	return mf_answer(ctx, c, mf_read_reply(c));
}

static sfsistat
mf_helo(SMFICTX *ctx, char *helohost)
{
	struct mf_conn	*c = smfi_getpriv(ctx);
	int		 code;

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	code = mf_command(c, "EHLO %s", helohost);
	c->greeted = code == 250;
	return mf_answer(ctx, c, code);
}

static sfsistat
mf_envfrom(SMFICTX *ctx, char **argv)
{
	struct mf_conn	*c = smfi_getpriv(ctx);
	char		*params;
	int		 code;

	if (c == NULL || argv[0] == NULL)
		return SMFIS_TEMPFAIL;
	/* No HELO from the client (or a refused one): the MTA's name for it. */
	if (!c->greeted) {
		if ((code = mf_command(c, "EHLO %s", c->hostname)) != 250)
			return mf_answer(ctx, c, code);
		c->greeted = 1;
	}
	if (c->in_txn) {
		(void)mf_command(c, "RSET");
		c->in_txn = 0;
	}
	mf_txn_clear(c);
	params = mf_params(argv);
	code = mf_command(c, "MAIL FROM:<%s>%s", c->from = mf_mailbox(argv[0]), params);
	free(params);
	c->in_txn = code == 250;
	return mf_answer(ctx, c, code);
}

static sfsistat
mf_envrcpt(SMFICTX *ctx, char **argv)
{
	struct mf_conn	*c = smfi_getpriv(ctx);
	char		*mailbox, *params;
	int		 code;

	if (c == NULL || argv[0] == NULL)
		return SMFIS_TEMPFAIL;
	mailbox = mf_mailbox(argv[0]);
	params = mf_params(argv);
	code = mf_command(c, "RCPT TO:<%s>%s", mailbox, params);
	if (code == 250 || code == 251) {
		c->rcpts = xreallocarray(c->rcpts, c->nrcpts + 1, sizeof(*c->rcpts));
		c->rcpts[c->nrcpts].mailbox = mailbox;
		c->rcpts[c->nrcpts++].params = params;
	} else {
		free(mailbox);
		free(params);
	}
	/* A refusal here is for this recipient only (milter semantics). */
	return mf_answer(ctx, c, code);
}

static sfsistat
mf_header(SMFICTX *ctx, char *name, char *value)
{
	struct mf_conn	*c = smfi_getpriv(ctx);

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	c->size += strlen(name) + strlen(value) + 4;
	if (c->size <= c->limit || c->limit == 0) {
		c->hdrs = xreallocarray(c->hdrs, c->nhdrs + 1, sizeof(*c->hdrs));
		c->hdrs[c->nhdrs].name = xstrdup(name);
		c->hdrs[c->nhdrs++].value = mf_crlf(value);
	}
	return SMFIS_CONTINUE;
}

static sfsistat
mf_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
	struct mf_conn	*c = smfi_getpriv(ctx);

	if (c == NULL)
		return SMFIS_TEMPFAIL;
	c->size += len;
	if ((c->size <= c->limit || c->limit == 0) && evbuffer_add(c->body, data, len) == -1)
		return SMFIS_TEMPFAIL;
	return SMFIS_CONTINUE;
}

/* The message in wire form: header fields, empty line, body dot-stuffed. */
static int
mf_send_message(struct mf_conn *c)
{
	struct evbuffer	*out = evbuffer_new();
	unsigned char	*body;
	size_t		 i, len = evbuffer_get_length(c->body), start = 0;
	int		 bol = 1, rc;

	if (out == NULL)
		return -1;
	for (i = 0; i < c->nhdrs; i++)
		evbuffer_add_printf(out, "%s: %s\r\n", c->hdrs[i].name, c->hdrs[i].value);
	evbuffer_add(out, "\r\n", 2);
	body = evbuffer_pullup(c->body, -1);
	for (i = 0; i < len; i++) {
		if (bol && body[i] == '.') {
			evbuffer_add(out, body + start, i - start);
			evbuffer_add(out, ".", 1);
			start = i;
		}
		if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) {
			/* A bare LF the MTA let through: the session wants CRLF. */
			evbuffer_add(out, body + start, i - start);
			evbuffer_add(out, "\r", 1);
			start = i;
		}
		bol = body[i] == '\n';
	}
	evbuffer_add(out, body + start, len - start);
	if (len > 0 && body[len - 1] != '\n')
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	len = evbuffer_get_length(out);
	rc = mf_send(c, (const char *)evbuffer_pullup(out, -1), len);
	evbuffer_free(out);
	return rc;
}

static sfsistat
mf_eom(SMFICTX *ctx)
{
	struct mf_conn		*c = smfi_getpriv(ctx);
	struct mf_result	*res;
	int			 code;

	if (c == NULL || !c->in_txn)
		return mf_answer(ctx, c, -1);
	c->in_txn = 0;
	if (c->limit != 0 && c->size > c->limit) {
		(void)mf_command(c, "RSET");
		mf_txn_clear(c);
		return mf_answer_reply(ctx, 552,
		    "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
	}
	if ((code = mf_command(c, "DATA")) != 354) {
		mf_txn_clear(c);
		return mf_answer(ctx, c, code == 354 ? -1 : code);
	}
	code = mf_send_message(c) == -1 ? -1 : mf_read_reply(c);
	pthread_mutex_lock(&mf_lock);
	res = c->res;
	c->res = NULL;
	pthread_mutex_unlock(&mf_lock);
	if (code >= 200 && code < 300 && res == NULL) {
		/* 250 without a hand-back: a filter discarded it. */
		mf_txn_clear(c);
		return SMFIS_DISCARD;
	}
	if (code >= 200 && code < 300 && mf_apply(ctx, c, res) == -1) {
		log_warnx("sluice-milter: the MTA refused a modification");
		code = -1;
	}
	mf_result_free(res);
	mf_txn_clear(c);
	return mf_answer(ctx, c, code);
}

static sfsistat
mf_abort(SMFICTX *ctx)
{
	struct mf_conn	*c = smfi_getpriv(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (c->in_txn)
		(void)mf_command(c, "RSET");
	c->in_txn = 0;
	mf_txn_clear(c);
	return SMFIS_CONTINUE;
}

static sfsistat
mf_close(SMFICTX *ctx)
{
	struct mf_conn	*c = smfi_getpriv(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	smfi_setpriv(ctx, NULL);
	if (c->fd != -1) {
		/* The session ends on QUIT or on the closed socket, whichever first. */
		if (!c->dead)
			(void)mf_send(c, "QUIT\r\n", 6);
		mf_unregister(c);
		close(c->fd);
	}
	mf_txn_clear(c);
	evbuffer_free(c->body);
	free(c->hostname);
	free(c);
	return SMFIS_CONTINUE;
}

/* --- Modifications in eom ------------------------------------------------ */

static int
mf_apply(SMFICTX *ctx, struct mf_conn *c, struct mf_result *r)
{
	size_t	 off;

	if (mf_apply_envelope(ctx, c, r) == -1 || mf_apply_headers(ctx, c, r) == -1)
		return -1;
	/* An empty new body cannot be said: libmilter sends no chunk for it. */
	for (off = 0; r->body != NULL && off < r->bodylen; off += 65536)
		if (smfi_replacebody(ctx, (unsigned char *)r->body + off, (int)(r->bodylen -
		    off > 65536 ? 65536 : r->bodylen - off)) != MI_SUCCESS)
			return -1;
	return 0;
}

static int
mf_rcpt_has(const struct mf_rcpt *list, size_t n, const char *mailbox)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(list[i].mailbox, mailbox) == 0)
			return 1;
	return 0;
}

static int
mf_apply_envelope(SMFICTX *ctx, struct mf_conn *c, struct mf_result *r)
{
	char	*a;
	size_t	 i;
	int	 rc = 0;

	if (c->from != NULL && strcmp(c->from, r->from) != 0) {
		xasprintf(&a, "<%s>", r->from);
		if (smfi_chgfrom(ctx, a, r->from_params != NULL ? r->from_params + 1 : NULL) !=
		    MI_SUCCESS)
			rc = -1;
		free(a);
	}
	for (i = 0; i < c->nrcpts && rc == 0; i++)
		if (!mf_rcpt_has(r->rcpts, r->nrcpts, c->rcpts[i].mailbox)) {
			xasprintf(&a, "<%s>", c->rcpts[i].mailbox);
			if (smfi_delrcpt(ctx, a) != MI_SUCCESS)
				rc = -1;
			free(a);
		}
	for (i = 0; i < r->nrcpts && rc == 0; i++)
		if (!mf_rcpt_has(c->rcpts, c->nrcpts, r->rcpts[i].mailbox)) {
			xasprintf(&a, "<%s>", r->rcpts[i].mailbox);
			if ((r->rcpts[i].params[0] != '\0' ? smfi_addrcpt_par(ctx, a,
			    r->rcpts[i].params + 1) : smfi_addrcpt(ctx, a)) != MI_SUCCESS)
				rc = -1;
			free(a);
		}
	return rc;
}

static int
mf_header_same(const struct mf_header *a, const struct mf_header *b)
{
	return strcasecmp(a->name, b->name) == 0 && strcmp(a->value, b->value) == 0;
}

/*
 * Match the MTA's fields (o) with the final ones (f): a longest common
 * subsequence of equal fields; *om[i] is the f index o[i] became, or -1.
 * -1 when the lists are too long for the table.
 */
static int
mf_header_match(const struct mf_header *o, size_t n, const struct mf_header *f, size_t m,
    long *om, long *fm)
{
	unsigned int	*t;
	size_t		 i, j, w = m + 1;

	if ((n + 1) > (size_t)16 * 1024 * 1024 / w)
		return -1;
	t = xcalloc((n + 1) * w, sizeof(*t));
	for (i = n; i-- > 0;)
		for (j = m; j-- > 0;)
			t[i * w + j] = mf_header_same(&o[i], &f[j]) ? t[(i + 1) * w + j + 1] + 1 :
			    t[(i + 1) * w + j] > t[i * w + j + 1] ? t[(i + 1) * w + j] :
			    t[i * w + j + 1];
	for (i = 0; i < n; i++)
		om[i] = -1;
	for (j = 0; j < m; j++)
		fm[j] = -1;
	for (i = 0, j = 0; i < n && j < m;) {
		if (mf_header_same(&o[i], &f[j])) {
			om[i] = (long)j;
			fm[j++] = (long)i++;
		} else if (t[(i + 1) * w + j] >= t[i * w + j + 1])
			i++;
		else
			j++;
	}
	free(t);
	return 0;
}

/*
 * Between two matched fields, an unmatched field of the MTA and one of
 * the result with the same name, in order, are the same field changed.
 */
static void
mf_header_pair(const struct mf_header *o, size_t n, const struct mf_header *f, size_t m,
    long *om, long *fm, char *changed)
{
	size_t	 i = 0, j = 0, i1, j1, b, k;

	for (;;) {
		while (i < n && j < m && om[i] == (long)j) {
			i++;
			j++;
		}
		if (i >= n || j >= m)
			return;
		for (i1 = i; i1 < n && om[i1] == -1; i1++)
			;
		for (j1 = j; j1 < m && fm[j1] == -1; j1++)
			;
		for (b = j; i < i1; i++)
			for (k = b; k < j1; k++)
				if (strcasecmp(o[i].name, f[k].name) == 0) {
					om[i] = (long)k;
					fm[k] = (long)i;
					changed[i] = 1;
					b = k + 1;
					break;
				}
		j = j1;
	}
}

/* 1-based index of o[i] among the fields of its name. */
static int
mf_header_index(const struct mf_header *o, size_t i)
{
	size_t	 k;
	int	 idx = 1;

	for (k = 0; k < i; k++)
		if (strcasecmp(o[k].name, o[i].name) == 0)
			idx++;
	return idx;
}

/*
 * Changes and deletions from the last field up (an index never moves
 * under a later call), then insertions in final order, at their final
 * position, or appended when they go last.
 */
static int
mf_apply_headers(SMFICTX *ctx, struct mf_conn *c, struct mf_result *r)
{
	size_t	 n = c->nhdrs, m = r->nhdrs, i, count = 0;
	long	*om = xcalloc(n + 1, sizeof(*om)), *fm = xcalloc(m + 1, sizeof(*fm));
	char	*changed = xcalloc(n + 1, 1), *v;
	int	 rc = 0;

	if (mf_header_match(c->hdrs, n, r->hdrs, m, om, fm) == -1)
		rc = -1;
	else
		mf_header_pair(c->hdrs, n, r->hdrs, m, om, fm, changed);
	for (i = n; rc == 0 && i-- > 0;) {
		if (om[i] != -1 && !changed[i]) {
			count++;
			continue;
		}
		v = om[i] == -1 ? NULL : mf_lf(r->hdrs[om[i]].value);
		if (smfi_chgheader(ctx, c->hdrs[i].name, mf_header_index(c->hdrs, i), v) !=
		    MI_SUCCESS)
			rc = -1;
		count += v != NULL;
		free(v);
	}
	for (i = 0; rc == 0 && i < m; i++) {
		if (fm[i] != -1)
			continue;
		v = mf_lf(r->hdrs[i].value);
		if ((i >= count ? smfi_addheader(ctx, r->hdrs[i].name, v) :
		    smfi_insheader(ctx, (int)i, r->hdrs[i].name, v)) != MI_SUCCESS)
			rc = -1;
		count++;
		free(v);
	}
	free(om);
	free(fm);
	free(changed);
	return rc;
}

/* --- Start-up, reload, shutdown ------------------------------------------ */

static struct smfiDesc mf_desc = {
	.xxfi_name = "sluice",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT |
	    SMFIF_ADDRCPT_PAR | SMFIF_DELRCPT | SMFIF_CHGFROM,
	.xxfi_connect = mf_connect,
	.xxfi_helo = mf_helo,
	.xxfi_envfrom = mf_envfrom,
	.xxfi_envrcpt = mf_envrcpt,
	.xxfi_header = mf_header,
	.xxfi_body = mf_body,
	.xxfi_eom = mf_eom,
	.xxfi_abort = mf_abort,
	.xxfi_close = mf_close,
};

/* The chosen listener gets the stand-in backend and no Received field. */
static int
mf_prepare(struct generation *g, char *err, size_t len)
{
	struct listener_gen	*lg;

	if ((lg = offline_listener(g, mf.listener)) == NULL) {
		snprintf(err, len, "no listener \"%s\"", mf.listener ? mf.listener : "");
		return -1;
	}
	offline_standin(g, lg, 0);
	return 0;
}

static struct generation *
mf_build(char *err, size_t len)
{
	struct generation	*g;

	if ((g = generation_build(mf.config_path, err, len)) == NULL)
		return NULL;
	if (mf_prepare(g, err, len) == -1) {
		generation_free(g);
		return NULL;
	}
	return g;
}

/* SIGUSR2, on sluice's main thread: new connections get the new chain. */
static void
mf_reload_cb(void *arg)
{
	struct generation	*g;
	char			*err = xcalloc(1, CONFIG_ERR_MAX), *line, *p;

	log_info("reload requested config=%s", mf.config_path);
	if ((g = mf_build(err, CONFIG_ERR_MAX)) == NULL) {
		for (p = err; (line = strsep(&p, "\n")) != NULL;)
			if (line[0] != '\0')
				log_warnx("reload failed: %s", line);
		log_warnx("reload failed: keeping the running configuration");
	} else {
		log_set_level((enum log_level)g->cfg->log_level);
		generation_set_current(g);
		log_info("reload done generation=%llu", (unsigned long long)g->number);
	}
	free(err);
}

static void *
mf_sigwait(void *arg)
{
	sigset_t	 set;
	int		 sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	for (;;)
		if (sigwait(&set, &sig) == 0 && sig == SIGUSR2)
			worker_post(worker_main(), mf_reload_cb, NULL);
	return NULL;
}

static void
mf_loop_exit(void *arg)
{
	event_base_loopbreak(offline_base());
}

/* sluice's main thread: generation frees and reloads run here. */
static void *
mf_loop(void *arg)
{
	struct generation	*g = arg;
	int			 n = g->cfg->workers > 0 ? (int)g->cfg->workers :
				    (int)sysconf(_SC_NPROCESSORS_ONLN);

	offline_deliver_hook = mf_deliver;
	offline_start(g, n < 1 ? 1 : n > 64 ? 64 : n);
	pthread_mutex_lock(&mf_lock);
	mf.ready = 1;
	pthread_cond_broadcast(&mf.ready_cond);
	pthread_mutex_unlock(&mf_lock);
	event_base_loop(offline_base(), EVLOOP_NO_EXIT_ON_EMPTY);
	offline_stop();
	return NULL;
}

static void
mf_usage(void)
{
	fprintf(stderr, "usage: sluice-milter [-fhV] [-c file] [-l listener] [-p socket]\n"
	    "  -c file      configuration (default %s/sluice.conf)\n"
	    "  -l listener  the listener whose chain runs (default: the first)\n"
	    "  -p socket    where the MTA connects: inet:PORT@HOST, inet6:PORT@HOST,\n"
	    "               unix:/path (default %s)\n"
	    "  -f           stay in the foreground, log to stderr\n"
	    "  -V           print the version\n"
	    "reload: SIGUSR2; stop: SIGTERM or SIGHUP\n", SLUICE_CONFDIR, MF_DEFAULT_CONN);
}

static int
mf_options(int argc, char **argv)
{
	int	 ch;

	while ((ch = getopt(argc, argv, "c:fhl:p:V")) != -1)
		switch (ch) {
		case 'c':
			mf.config_path = optarg;
			break;
		case 'f':
			mf.foreground = 1;
			break;
		case 'l':
			mf.listener = optarg;
			break;
		case 'p':
			mf.conn = optarg;
			break;
		case 'V':
			printf("sluice-milter %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			mf_usage();
			exit(0);
		default:
			mf_usage();
			exit(2);
		}
	return optind == argc ? 0 : -1;
}

/* Open the MTA's socket; libmilter only checks the address here. */
static int
mf_open(void)
{
	if (smfi_register(mf_desc) == MI_FAILURE) {
		log_warnx("sluice-milter: smfi_register failed");
		return -1;
	}
	if (smfi_setconn((char *)mf.conn) == MI_FAILURE ||
	    smfi_opensocket(1) == MI_FAILURE) {
		log_warnx("sluice-milter: cannot listen on %s", mf.conn);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct generation	*g;
	char			*err = xcalloc(1, CONFIG_ERR_MAX);
	sigset_t		 set;
	pthread_t		 sigthread;
	int			 rc;

	if (mf_options(argc, argv) == -1) {
		mf_usage();
		return 2;
	}
	if ((g = mf_build(err, CONFIG_ERR_MAX)) == NULL) {
		fprintf(stderr, "%s%ssluice-milter: %s: configuration is not valid\n", err,
		    err[0] != '\0' && err[strlen(err) - 1] != '\n' ? "\n" : "", mf.config_path);
		return 1;
	}
	free(err);
	log_init("sluice-milter", mf.foreground ? 1 : g->cfg->log_stderr, g->cfg->log_facility);
	if (mf_open() == -1)
		return 1;
	if (!mf.foreground && daemon(0, 0) == -1)
		fatal("daemon");
	/*
	 * Every thread inherits these blocked: libmilter's signal thread
	 * takes HUP, TERM and INT, ours USR2; no other thread may.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if ((errno = pthread_create(&mf.loop, NULL, mf_loop, g)) != 0 ||
	    (errno = pthread_create(&sigthread, NULL, mf_sigwait, NULL)) != 0)
		fatal("pthread_create");
	pthread_detach(sigthread);
	pthread_mutex_lock(&mf_lock);
	while (!mf.ready)
		pthread_cond_wait(&mf.ready_cond, &mf_lock);
	pthread_mutex_unlock(&mf_lock);
	log_info("started version=%s socket=%s listener=%s", PACKAGE_VERSION, mf.conn,
	    offline_listener(g, mf.listener)->conf->name);
	rc = smfi_main() == MI_SUCCESS ? 0 : 1;
	log_info("stopping");
	worker_post(worker_main(), mf_loop_exit, NULL);
	pthread_join(mf.loop, NULL);
	return rc;
}
