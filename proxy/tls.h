/*
 * tls.h - TLS server contexts of a listener and the TLS facts of a
 * connection (OpenSSL 3).
 *
 * A listener's contexts (struct tls_server) are built while its config is
 * loaded, so they belong to the configuration generation: a reload builds
 * new ones aside and a session keeps the ones it started under.  They are
 * immutable once built and shared by every worker.  One SSL_CTX per
 * certificate/key pair; SNI picks the pair whose certificate names match,
 * the first pair is the default.
 *
 * struct tls_conn belongs to one session (s->tls, freed with it): what
 * the handshake negotiated, for logs, Received, filters and milters.
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stddef.h>

struct bufferevent;
struct config_backend_tls;
struct config_listener_tls;
struct session;
struct tls_server;
typedef struct ssl_st SSL;

/* The facts of one TLS connection; strings owned, NULL when unknown. */
struct tls_conn {
	int		 established;	/* handshake done */
	char		*version;	/* "TLSv1.3" */
	char		*cipher;	/* "TLS_AES_256_GCM_SHA384" */
	int		 bits;		/* secret bits of the cipher */
	int		 alg_bits;	/* algorithm bits */
	char		*sni;		/* name the client asked for, NULL if none */
	char		*peer_subject;	/* client certificate subject (RFC 2253) */
	char		*peer_issuer;	/* its issuer */
	int		 peer_verified;	/* the client certificate verified against tls_ca_file */
	int		 implicit;	/* TLS from accept (tls = implicit) */
	void		(*saved_read)(struct bufferevent *, void *);	/* session's callbacks */
	void		(*saved_write)(struct bufferevent *, void *);	/* while handshaking */
	void		(*saved_event)(struct bufferevent *, short, void *);
};

/*
 * Build the contexts for conf (cert/key pairs, versions, ciphers, CA).
 * Returns NULL with one sentence in err (no file:line: the caller adds
 * it) when a file is missing, unreadable or a key does not match.
 */
struct tls_server *tls_server_new(const struct config_listener_tls *conf, char *err,
		    size_t errlen);
void		 tls_server_free(struct tls_server **srv);

/*
 * 1 when a certificate name (pattern) covers host name: ASCII case is
 * ignored, a trailing dot too, and "*." matches exactly one leftmost
 * label ("*.example.org" covers "a.example.org", not "example.org" or
 * "a.b.example.org").  Pure, for SNI.
 */
int		 tls_name_match(const char *pattern, const char *name);

/* "TLSv1.2" -> TLS1_2_VERSION etc.; -1 if unknown. */
int		 tls_version_parse(const char *s);

/*
 * A backend's client context (conf->mode != none): trust anchors, the
 * optional client certificate.  NULL with a sentence in err.
 */
struct tls_client *tls_client_new(const struct config_backend_tls *conf, char *err,
		    size_t errlen);
void		 tls_client_free(struct tls_client **cl);
/*
 * A client SSL for a server called name (SNI unless an address; checked
 * against the certificate when the mode is verify).  NULL on failure.
 */
SSL		*tls_client_ssl_new(struct tls_client *cl, const char *name);

/* A new server SSL on srv's default context (SNI may switch it); NULL on failure. */
SSL		*tls_server_ssl_new(struct tls_server *srv);

/* Fill tc's facts from a finished handshake. */
void		 tls_conn_fill(struct tls_conn *tc, SSL *ssl);

/* The first OpenSSL error queued (and clear the queue), for log lines. */
const char	*tls_error_string(char *buf, size_t size);

/* --- tls_session.c: the session side (daemon only) --- */

/*
 * Start the server side of TLS on the session's connection: STARTTLS
 * (after the 220 was queued) or implicit TLS (before the greeting).
 * s->bev becomes the TLS filter, which owns the plain one, and s->tls
 * is allocated (established once the handshake is done).  When the
 * handshake ends the session goes on: STARTTLS resets the SMTP state,
 * implicit TLS greets (session_greet).  On failure the session is closed
 * with a log line.  Returns -1 (session untouched) if no SSL could be
 * made.
 */
int		 tls_session_start(struct session *s, int implicit);

/*
 * Before the session frees its connection: close_notify, and one
 * non-blocking write of what the TLS layer already encrypted (the 221).
 */
void		 tls_session_flush(struct session *s);

struct cmd_state;
/* STARTTLS: check syntax and state (replies itself and returns -1 on error). */
int		 tls_cmd_starttls_check(struct session *s, struct cmd_state *c,
		    const char *arg, size_t len);
/* STARTTLS: drop pipelined input, 220, then the handshake. */
void		 tls_cmd_starttls(struct session *s, struct cmd_state *c);

/*
 * Relay delivery's opportunistic STARTTLS (deliver_smtp.h tls_fn, with
 * tls_arg a struct tls_client): wrap plain, which the result owns, in a
 * TLS client filter for host (SNI).  NULL when no SSL could be made.
 */
struct bufferevent *tls_deliver_wrap(void *client, struct bufferevent *plain,
		    const char *host);
/* Free *tc (s->tls, owned by the session) and clear it. */
void		 tls_conn_free(struct tls_conn **tc);

#endif /* SLUICE_TLS_H */
