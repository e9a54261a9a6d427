/*
 * auth_backend.c - the credential backends behind SMTP AUTH: setting them
 * up per generation and dispatching a verification to the passwd file (on
 * the pool: crypt is slow on purpose) or to Dovecot (auth_dovecot.c).
 * See auth_backend.h.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_backend.h"
#include "auth_passwd.h"
#include "generation.h"
#include "log.h"
#include "pool.h"
#include "util.h"
#include "worker.h"

/* One passwd-file check on the pool. */
struct auth_passwd_job {
	struct auth_backend	*b;		/* its generation is referenced */
	struct worker		*w;		/* answer here */
	auth_backend_cb		 cb;
	uint64_t		 session_id;
	char			*user;		/* owned */
	char			*pass;		/* owned, wiped */
	enum auth_verdict	 verdict;	/* set by the pool thread */
};

static void	 auth_passwd_job_work(void *);
static void	 auth_passwd_job_done(void *);

int
auth_backend_init(struct auth_backend *b, const struct config_auth *conf,
    struct generation *gen, int nworkers, char *err, size_t errlen)
{
	char	 why[1024] = "";

	memset(b, 0, sizeof(*b));
	b->conf = conf;
	b->gen = gen;
	if (conf->type == CONFIG_AUTH_PASSWD_FILE) {
		if ((b->passwd = auth_passwd_open(conf->path, why, sizeof(why))) == NULL) {
			why[strcspn(why, "\n")] = '\0';
			snprintf(err, errlen, "%s:%d: auth \"%s\": %s", conf->file, conf->line,
			    conf->name, why);
			return -1;
		}
		return 0;
	}
	b->nworkers = nworkers > 0 ? nworkers : 1;
	b->dovecot = xcalloc((size_t)b->nworkers, sizeof(*b->dovecot));
	return 0;
}

void
auth_backend_fini(struct auth_backend *b)
{
	int	 i;

	auth_passwd_free(b->passwd);
	for (i = 0; i < b->nworkers; i++)
		auth_dovecot_free(b->dovecot[i]);
	free(b->dovecot);
	memset(b, 0, sizeof(*b));
}

void
auth_backend_worker_close(struct auth_backend *b, struct worker *w)
{
	if (b->dovecot == NULL || w->id < 0 || w->id >= b->nworkers)
		return;
	auth_dovecot_free(b->dovecot[w->id]);
	b->dovecot[w->id] = NULL;
}

static void
auth_passwd_job_work(void *arg)
{
	struct auth_passwd_job	*j = arg;

	switch (auth_passwd_check(j->b->passwd, j->user, j->pass)) {
	case AUTH_PASSWD_OK:
		j->verdict = AUTH_VERDICT_OK;
		break;
	case AUTH_PASSWD_FAIL:
		j->verdict = AUTH_VERDICT_FAIL;
		break;
	default:
		j->verdict = AUTH_VERDICT_TEMPFAIL;
		break;
	}
	explicit_bzero(j->pass, strlen(j->pass));
}

static void
auth_passwd_job_done(void *arg)
{
	struct auth_passwd_job	*j = arg;

	j->cb(j->w, j->session_id, j->verdict);
	generation_unref(j->b->gen);
	explicit_bzero(j->pass, strlen(j->pass));
	free(j->pass);
	free(j->user);
	free(j);
}

void
auth_backend_verify(struct auth_backend *b, struct worker *w, const struct auth_request *rq,
    auth_backend_cb cb)
{
	struct auth_passwd_job	*j;

	if (b->passwd == NULL) {
		if (w->id < 0 || w->id >= b->nworkers) {
			log_warnx("auth backend=%s: no connection slot for worker %d",
			    b->conf->name, w->id);
			cb(w, rq->session_id, AUTH_VERDICT_TEMPFAIL);
			return;
		}
		if (b->dovecot[w->id] == NULL)
			b->dovecot[w->id] = auth_dovecot_new(b->conf, w);
		auth_dovecot_verify(b->dovecot[w->id], rq, cb);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->b = b;
	j->w = w;
	j->cb = cb;
	j->session_id = rq->session_id;
	j->user = xstrdup(rq->user);
	j->pass = xstrdup(rq->pass);
	/* The session may end before the pool answers: keep the file alive. */
	generation_ref(b->gen);
	pool_submit(w, auth_passwd_job_work, auth_passwd_job_done, j);
}
