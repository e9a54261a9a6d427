/*
 * tls_session.c - TLS on the client connection: the STARTTLS command
 * (RFC 3207) and implicit TLS (RFC 8314), on libevent's OpenSSL filter
 * bufferevent.
 *
 * The filter takes over the session's plain bufferevent (it frees it) and
 * becomes s->bev; the session's own callbacks are put back once the
 * handshake is done.  Nothing the client sent in clear after STARTTLS is
 * ever read as a command: it is dropped and logged (CVE-2011-0411).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "config.h"
#include "generation.h"
#include "io.h"
#include "log.h"
#include "session.h"
#include "smtp_cmd_int.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

static void	 tls_session_event_cb(struct bufferevent *, short, void *);
static void	 tls_session_established(struct session *);
static void	 tls_session_failed(struct session *, short);

int
tls_session_start(struct session *s, int implicit)
{
	const struct config_limits *lim = &s->lg->conf->limits;
	struct bufferevent	*plain = s->bev, *tls;
	struct tls_conn		*tc;
	struct timeval		 idle;
	size_t			 lowmark, highmark;
	SSL			*ssl;

	if ((ssl = tls_server_ssl_new(s->lg->conf->tls.server)) == NULL)
		return -1;
	tc = xcalloc(1, sizeof(*tc));
	tc->implicit = implicit;
	bufferevent_getcb(plain, &tc->saved_read, &tc->saved_write, &tc->saved_event, NULL);
	bufferevent_getwatermark(plain, EV_READ, &lowmark, &highmark);
	if ((tls = bufferevent_openssl_filter_new(s->worker->base, plain, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)) == NULL)
		fatalx("bufferevent_openssl_filter_new");
	/* SMTP's own framing shows truncation: a peer's bare close is an EOF. */
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	/* Timeouts live on the filter now; the plain one only moves bytes. */
	bufferevent_set_timeouts(plain, NULL, NULL);
	idle.tv_sec = lim->idle_timeout_ms / 1000;
	idle.tv_usec = (lim->idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(tls, &idle, &idle);
	bufferevent_setwatermark(tls, EV_READ, lowmark, highmark);
	/* No command is read until the handshake is done; a close still frees. */
	bufferevent_setcb(tls, NULL, tc->saved_write, tls_session_event_cb, s);
	s->bev = tls;
	s->tls = tc;
	s->flags |= SESSION_BUSY;
	bufferevent_disable(tls, EV_WRITE);
	bufferevent_enable(tls, EV_READ);
	return 0;
}

static void
tls_session_event_cb(struct bufferevent *bev, short events, void *arg)
{
	struct session	*s = arg;

	if (events & BEV_EVENT_CONNECTED) {
		tls_session_established(s);
		return;
	}
	if (s->flags & SESSION_CLOSING) {
		/* The session ended meanwhile: its own handler frees it. */
		s->tls->saved_event(bev, events, s);
		return;
	}
	tls_session_failed(s, events);
}

static void
tls_session_failed(struct session *s, short events)
{
	char		 e[256];
	unsigned long	 err;

	if (events & BEV_EVENT_TIMEOUT)
		snprintf(e, sizeof(e), "timeout");
	else if (events & BEV_EVENT_EOF)
		snprintf(e, sizeof(e), "connection closed by client");
	else if ((err = bufferevent_get_openssl_error(s->bev)) != 0)
		ERR_error_string_n(err, e, sizeof(e));
	else
		snprintf(e, sizeof(e), "%s", evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
	while (bufferevent_get_openssl_error(s->bev) != 0)
		;
	session_log(s, LOG_LEVEL_INFO, "tls handshake failed mode=%s error=\"%s\" client=%s",
	    s->tls->implicit ? "implicit" : "starttls", e, s->addr);
	session_close(s, 0, NULL, NULL);
}

static void
tls_session_established(struct session *s)
{
	struct tls_conn	*tc = s->tls;
	char		 subject[300], issuer[300];

	tls_conn_fill(tc, bufferevent_openssl_get_ssl(s->bev));
	log_quote(subject, sizeof(subject), tc->peer_subject != NULL ? tc->peer_subject : "",
	    256);
	log_quote(issuer, sizeof(issuer), tc->peer_issuer != NULL ? tc->peer_issuer : "", 256);
	session_log(s, LOG_LEVEL_INFO, "tls established mode=%s version=%s cipher=%s "
	    "bits=%d/%d sni=%s peer_subject=%s peer_issuer=%s peer_verified=%s client=%s",
	    tc->implicit ? "implicit" : "starttls", tc->version, tc->cipher, tc->bits,
	    tc->alg_bits, tc->sni != NULL ? tc->sni : "-",
	    tc->peer_subject != NULL ? subject : "-", tc->peer_issuer != NULL ? issuer : "-",
	    tc->peer_subject == NULL ? "-" : tc->peer_verified ? "yes" : "no", s->addr);
	bufferevent_setcb(s->bev, tc->saved_read, tc->saved_write, tc->saved_event, s);
	if (tc->implicit) {
		session_greet(s);
		return;
	}
	/*
	 * RFC 3207 4.2: forget what the client said in clear, an AUTH done in
	 * clear (auth_plaintext) included; it must EHLO (and AUTH) again.
	 */
	free(s->helo);
	s->helo = NULL;
	free(s->auth_user);
	s->auth_user = NULL;
	free(s->auth_mech);
	s->auth_mech = NULL;
	s->flags &= ~SESSION_ESMTP;
	session_command_done(s);
}

void
tls_session_flush(struct session *s)
{
	struct bufferevent	*plain;
	struct evbuffer		*out;
	evutil_socket_t		 fd;

	if (s->tls == NULL || (plain = bufferevent_get_underlying(s->bev)) == NULL)
		return;
	/* A close_notify, so the client can tell our close from a cut connection. */
	if (s->tls->established)
		(void)SSL_shutdown(bufferevent_openssl_get_ssl(s->bev));
	ERR_clear_error();
	out = bufferevent_get_output(plain);
	if ((fd = bufferevent_getfd(plain)) < 0 || evbuffer_get_length(out) == 0)
		return;
	/* One non-blocking try: the last reply (221, 421) is usually already there. */
	evbuffer_unfreeze(out, 1);
	(void)evbuffer_write(out, fd);
	evbuffer_freeze(out, 1);
}

/* --- The STARTTLS command (smtp_cmd.c's table row) ------------------------ */

int
tls_cmd_starttls_check(struct session *s, struct cmd_state *c, const char *arg, size_t len)
{
	if (len > 0) {
		cmd_fail(s, 501, "5.5.4", "Syntax: STARTTLS");
		return -1;
	}
	if (session_tls_active(s)) {
		cmd_fail(s, 503, "5.5.1", "Error: TLS already active");
		return -1;
	}
	if (s->lg->conf->tls.mode != CONFIG_TLS_STARTTLS || s->lg->conf->tls.server == NULL) {
		cmd_fail(s, 502, "5.5.1", "Error: command not implemented");
		return -1;
	}
	if (s->txn != NULL) {
		cmd_fail(s, 503, "5.5.1", "Error: MAIL transaction in progress");
		return -1;
	}
	return 0;
}

void
tls_cmd_starttls(struct session *s, struct cmd_state *c)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	size_t		 n = evbuffer_get_length(in);

	if (n > 0) {
		/* Sent before the handshake, so not protected by it: never a command. */
		evbuffer_drain(in, n);
		session_log(s, LOG_LEVEL_INFO, "starttls discarded=%zu "
		    "reason=pipelined_after_starttls client=%s", n, s->addr);
	}
	session_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* The 220 goes out in clear, ahead of anything the TLS layer writes. */
	io_write_now(s->bev);
	if (tls_session_start(s, 0) == -1) {
		session_log(s, LOG_LEVEL_WARNING, "tls handshake failed mode=starttls "
		    "error=\"no TLS context\" client=%s", s->addr);
		session_close(s, 0, NULL, NULL);
	}
}

/* --- Relay delivery's STARTTLS (deliver_smtp's tls_fn) -------------------- */

struct bufferevent *
tls_deliver_wrap(void *client, struct bufferevent *plain, const char *host)
{
	struct bufferevent	*tls;
	SSL			*ssl;

	if ((ssl = tls_client_ssl_new(client, host)) == NULL)
		return NULL;
	if ((tls = bufferevent_openssl_filter_new(bufferevent_get_base(plain), plain, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)) ==
	    NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* SMTP's own framing shows truncation, as on the server side. */
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	return tls;
}
