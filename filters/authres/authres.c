/*
 * authres.c - the "authres" built-in filter: one Authentication-Results
 * header field (RFC 8601) per message, under this host's authserv-id.
 *
 *	authres "ar" { authserv_id = "mx.example.org" }
 *	listener "mx" { ... chain = { "spf", "dkim", "dmarc", "ar" } }
 *
 * While the header fields go by it notes which incoming
 * Authentication-Results fields claim our authserv-id; at end of message
 * it removes them (a forged one must never reach the backend, which
 * trusts fields with our id) and inserts ours at the top, built from the
 * results the other filters recorded with sluice_authres_add().  It goes
 * last in the chain so that every result is recorded by the time it runs;
 * the removal works wherever it stands.
 */
#include "autoconf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "authres_header.h"
#include "builtin.h"
#include "sluice_filter.h"

#define AUTHRES_NAME	"Authentication-Results"

struct authres {
	char		 id[AUTHRES_ID_MAX + 1];	/* our authserv-id */
};

/* Per transaction: the Authentication-Results fields seen, ours among them. */
struct authres_txn {
	size_t		 nfields;	/* Authentication-Results fields so far */
	size_t		*claimed;	/* 1-based positions among them claiming our id */
	size_t		 nclaimed;	/* entries used */
	size_t		 cap;		/* entries allocated */
};

static int	 authres_init(struct sluice_filter *, void **, char *, size_t);
static void	 authres_fini(void *);
static enum sluice_verdict authres_header(struct sluice_ctx *, const char *, const char *);
static enum sluice_verdict authres_eom(struct sluice_ctx *);
static void	 authres_reset(struct sluice_ctx *);
static void	 authres_close(struct sluice_ctx *);
static int	 authres_remove_claimed(struct sluice_ctx *, struct authres_txn *);
static int	 authres_insert_ours(struct sluice_ctx *, const struct authres *);

static const struct sluice_option authres_options[] = {
	{ "authserv_id", SLUICE_OPT_STRING, NULL, 0,
	    "this host's authserv-id (RFC 8601); default: the system host name" },
	{ NULL, 0, NULL, 0, NULL }
};

static int
authres_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct authres	*a;
	const char	*id = sluice_option_string(f, "authserv_id");
	char		 host[HOST_NAME_MAX + 1];

	if (id == NULL) {
		if (gethostname(host, sizeof(host)) == -1)
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		if (!authres_id_valid(host))
			return snprintf(err, errlen, "the host name \"%s\" cannot be an "
			    "authserv-id: set authserv_id", host), -1;
		id = host;
	} else if (!authres_id_valid(id))
		return snprintf(err, errlen, "authserv_id must be a token of at most %d "
		    "characters, without spaces or ()<>@,;:\\\"/[]?=", AUTHRES_ID_MAX), -1;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	snprintf(a->id, sizeof(a->id), "%s", id);
	*instance = a;
	return 0;
}

static void
authres_fini(void *instance)
{
	free(instance);
}

static enum sluice_verdict
authres_header(struct sluice_ctx *ctx, const char *name, const char *value)
{
	const struct authres	*a = sluice_instance(ctx);
	struct authres_txn	*t = *sluice_session_data(ctx);
	size_t			*p, cap;

	if (strcasecmp(name, AUTHRES_NAME) != 0)
		return SLUICE_CONTINUE;
	if (t == NULL && (t = *sluice_session_data(ctx) = calloc(1, sizeof(*t))) == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	t->nfields++;
	if (!authres_claims_id(value, a->id))
		return SLUICE_CONTINUE;
	if (t->nclaimed == t->cap) {
		cap = t->cap ? t->cap * 2 : 4;
		if ((p = reallocarray(t->claimed, cap, sizeof(*p))) == NULL) {
			sluice_fail(ctx, "out of memory");
			return SLUICE_TEMPFAIL;
		}
		t->claimed = p;
		t->cap = cap;
	}
	t->claimed[t->nclaimed++] = t->nfields;
	return SLUICE_CONTINUE;
}

/*
 * Remove the claimed fields, last first: a removal shifts the positions
 * of the fields after it, never of those before.  Returns 0 or -1.
 */
static int
authres_remove_claimed(struct sluice_ctx *ctx, struct authres_txn *t)
{
	size_t	 i;

	for (i = t->nclaimed; i > 0; i--)
		if (sluice_header_remove(ctx, AUTHRES_NAME, t->claimed[i - 1]) == -1)
			return -1;
	return 0;
}

static int
authres_insert_ours(struct sluice_ctx *ctx, const struct authres *a)
{
	struct authres_entry	*e;
	const struct sluice_authres *r;
	size_t			 i, n = sluice_authres_count(ctx);
	char			*value;
	int			 rc;

	if ((e = calloc(n ? n : 1, sizeof(*e))) == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if ((r = sluice_authres_get(ctx, i)) != NULL) {
			e[i].method = r->method;
			e[i].result = r->result;
			e[i].reason = r->reason;
			e[i].props = r->props;
		}
	value = authres_format(a->id, e, n, strlen(AUTHRES_NAME));
	free(e);
	if (value == NULL)
		return -1;
	rc = sluice_header_insert(ctx, 0, AUTHRES_NAME, value);
	sluice_log(ctx, SLUICE_LOG_DEBUG, "authres added results=%zu", n);
	free(value);
	return rc;
}

static enum sluice_verdict
authres_eom(struct sluice_ctx *ctx)
{
	const struct authres	*a = sluice_instance(ctx);
	struct authres_txn	*t = *sluice_session_data(ctx);

	if (t != NULL && t->nclaimed > 0) {
		if (authres_remove_claimed(ctx, t) == -1) {
			sluice_fail(ctx, "cannot remove a forged Authentication-Results field");
			return SLUICE_TEMPFAIL;
		}
		sluice_log(ctx, SLUICE_LOG_INFO, "authres removed=%zu authserv_id=%s "
		    "reason=\"claims our authserv-id\"", t->nclaimed, a->id);
	}
	if (authres_insert_ours(ctx, a) == -1)
		sluice_log(ctx, SLUICE_LOG_WARNING, "authres could not add the "
		    "Authentication-Results field");
	return SLUICE_CONTINUE;
}

static void
authres_reset(struct sluice_ctx *ctx)
{
	struct authres_txn	*t = *sluice_session_data(ctx);

	if (t != NULL)
		t->nfields = t->nclaimed = 0;
}

static void
authres_close(struct sluice_ctx *ctx)
{
	struct authres_txn	*t = *sluice_session_data(ctx);

	if (t != NULL) {
		free(t->claimed);
		free(t);
		*sluice_session_data(ctx) = NULL;
	}
}

const struct sluice_module sluice_builtin_authres = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "authres",
	.description = "one Authentication-Results field with our results; forged ones removed",
	.options = authres_options,
	.init = authres_init,
	.fini = authres_fini,
	.on_header = authres_header,
	.on_eom = authres_eom,
	.on_reset = authres_reset,
	.on_close = authres_close,
};
