/*
 * auth_backend.h - where SMTP AUTH credentials are checked: one struct
 * auth_backend per "auth" section per generation, of type passwd_file
 * (auth_passwd.c, crypt_r on the pool) or dovecot (auth_dovecot.c,
 * Dovecot's auth client protocol on the worker's loop, one connection per
 * worker, reused, reconnected after a failure).
 *
 * A verification answers through a callback on the submitting worker,
 * never inside auth_backend_verify, with the session id it was given: the
 * caller finds its session again by id (a session that ended meanwhile is
 * simply not found).  The request's strings are copied; the password copy
 * is wiped after use.
 */
#ifndef SLUICE_AUTH_BACKEND_H
#define SLUICE_AUTH_BACKEND_H

#include <stdint.h>

#include "config.h"

struct auth_passwd;
struct auth_dovecot;
struct generation;
struct worker;

enum auth_verdict {
	AUTH_VERDICT_OK = 0,	/* credentials right */
	AUTH_VERDICT_FAIL,	/* wrong user or password: 535 */
	AUTH_VERDICT_TEMPFAIL	/* backend unreachable, timed out, confused: 454 */
};

struct auth_request {
	const char	*mech;		/* "PLAIN" or "LOGIN" (what the client used) */
	const char	*user;		/* authcid */
	const char	*pass;		/* password */
	const char	*client_addr;	/* rip */
	int		 client_port;
	const char	*local_addr;	/* lip */
	int		 local_port;
	int		 secured;	/* TLS, or plaintext allowed by the listener */
	uint64_t	 session_id;	/* given back to the callback */
};

typedef void (*auth_backend_cb)(struct worker *w, uint64_t session_id,
		    enum auth_verdict verdict);

struct auth_backend {
	const struct config_auth *conf;		/* its section (not owned) */
	struct generation	*gen;		/* owner, referenced by pool jobs */
	struct auth_passwd	*passwd;	/* passwd_file, else NULL */
	struct auth_dovecot	**dovecot;	/* dovecot: per worker id, lazily connected */
	int			 nworkers;	/* entries in dovecot */
};

/* Set b up for conf (passwd_file: the file is read now).  -1 with err set. */
int	 auth_backend_init(struct auth_backend *b, const struct config_auth *conf,
	    struct generation *gen, int nworkers, char *err, size_t errlen);
/* After every worker closed its connections (auth_backend_worker_close). */
void	 auth_backend_fini(struct auth_backend *b);
/* Close w's connection (pending requests are dropped).  On w's thread. */
void	 auth_backend_worker_close(struct auth_backend *b, struct worker *w);

/* Check rq; cb(w, rq->session_id, verdict) later on w.  On w's thread. */
void	 auth_backend_verify(struct auth_backend *b, struct worker *w,
	    const struct auth_request *rq, auth_backend_cb cb);

/* auth_dovecot.c */
struct auth_dovecot *auth_dovecot_new(const struct config_auth *conf, struct worker *w);
/* Drop pending requests without answering them, close, free. */
void	 auth_dovecot_free(struct auth_dovecot *d);
void	 auth_dovecot_verify(struct auth_dovecot *d, const struct auth_request *rq,
	    auth_backend_cb cb);

#endif /* SLUICE_AUTH_BACKEND_H */
