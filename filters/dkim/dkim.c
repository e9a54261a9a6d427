/*
 * dkim.c - the "dkim" built-in filter: verifies the DKIM signatures of a
 * message (RFC 6376, with RFC 8301's rules: rsa-sha1 fails, RSA keys under
 * min_key_bits are not used) and signs mail of configured domains or
 * authenticated clients with one or two keys (rsa-sha256, ed25519-sha256).
 *
 *	dkim "dkim-in" { verify = true  on_fail = "continue" }
 *	dkim "dkim-out" {
 *		verify = false  sign = true
 *		sign_domains = { "example.org" }
 *		selector = "rsa2024"  key_file = "/etc/sluice/dkim/rsa.pem"
 *		selector2 = "ed2024"  key_file2 = "/etc/sluice/dkim/ed25519.pem"
 *	}
 *
 * Flow.  Header fields are kept per message; at the end of the header
 * section the engine opens a verify handle (only for signed mail) and one
 * signer per key, and feeds them the fields, and the keys the signatures
 * name are asked for, all at once, without blocking (sluice_dns_query).
 * Body chunks are hashed on the worker when that is cheap, and in the
 * pool when many handles would hash a large chunk.  The end of the message
 * waits for the key answers, then the public key operations (and a lookup
 * for a key that could not be prefetched, blocking, sluice_dns_lookup) run
 * in the pool, so neither the loop nor a pool thread waits on DNS as a
 * rule.  The done callback records one Authentication-Results entry per
 * signature, the notes for dmarc, inserts our signatures at the top, and
 * answers.
 *
 * Lifetimes.  A message's state is refcounted: the session, a pool job
 * and each key query hold it, so a transaction that ends (RSET, close,
 * a timed-out hook) while they run just stops being reported to.  It
 * holds a reference on the instance, so fini never closes the library
 * under a running job.
 */
#include "autoconf.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "builtin.h"
#include "dkim_engine.h"
#include "dkim_policy.h"
#include "sluice_filter.h"

/* Hash work (bytes x handles) done on the worker before offloading. */
#define DKIM_INLINE_WORK	(256 * 1024)
#define DKIM_MAX_SIGNATURES	50

struct dkim_instance {
	atomic_int		 refs;		/* fini + each job in flight */
	struct sluice_filter	*filter;	/* for sluice_dns_lookup() */
	struct dkimf_engine	*engine;	/* the library handle */
	int			 verify;	/* verify = true */
	int			 sign;		/* sign = true */
	size_t			 max_signatures;
	unsigned int		 min_key_bits;
	enum dkimf_action	 on_result[DKIMF_RESULT_COUNT];	/* per best result */
	char			**sign_domains;	/* lowercased */
	size_t			 nsign_domains;
	int			 sign_authenticated;
	struct dkimf_key	*keys[DKIMF_MAX_KEYS];
	size_t			 nkeys;
	size_t			 notes_len;	/* room for dkim.pass_domains */
};

struct dkim_job;

/*
 * One message of a session (sluice_session_data points to it).  It is
 * refcounted because a pool job and the key prefetch queries may outlive
 * the transaction; everything here runs on the session's worker, except
 * the job's work, which only touches msg (and reads gone).
 */
struct dkim_txn {
	int			 refs;		/* the session, a job, each DNS query */
	atomic_int		 gone;		/* the session let go: report to nobody */
	int			 done;		/* nothing more to do for this message */
	struct dkim_instance	*inst;		/* referenced */
	struct dkimf_msg	*msg;		/* NULL once reported */
	struct dkim_job		*job;		/* in the pool, or NULL */
	struct dkim_job		*waiting;	/* the EOM job, waiting for key answers */
	size_t			 dns_waiting;	/* prefetch answers still to come */
};

enum dkim_job_kind { DKIM_JOB_BODY, DKIM_JOB_EOM };

struct dkim_job {
	struct dkim_txn		*txn;		/* referenced */
	struct sluice_pending	*pending;	/* the suspended hook */
	enum dkim_job_kind	 kind;
	unsigned char		*chunk;		/* body chunk copy */
	size_t			 len;
};

/* One key prefetch query. */
struct dkim_prefetch {
	struct dkim_txn		*txn;		/* referenced */
	char			 name[];	/* selector._domainkey.domain */
};

/* An answer: verdict plus reply. */
struct dkim_answer {
	enum sluice_verdict	 verdict;
	int			 code;
	const char		*enhanced;
	const char		*text;
	char			 fail[200];	/* non-empty: sluice_fail with this */
};

static const struct sluice_option dkim_options[] = {
	{ "verify", SLUICE_OPT_BOOL, "true", 0,
	    "verify the DKIM signatures of each message" },
	{ "sign", SLUICE_OPT_BOOL, "false", 0,
	    "sign mail from sign_domains or authenticated clients" },
	{ "max_signatures", SLUICE_OPT_INT, "10", 0,
	    "DKIM-Signature fields verified per message, from the top (1-50)" },
	{ "min_key_bits", SLUICE_OPT_INT, "1024", 0,
	    "smallest RSA key used to verify or sign (1024-4096)" },
	{ "on_fail", SLUICE_OPT_STRING, "continue", 0,
	    "continue, tempfail or reject when the best result is fail" },
	{ "on_permerror", SLUICE_OPT_STRING, "continue", 0,
	    "continue, tempfail or reject when the best result is permerror or neutral" },
	{ "on_temperror", SLUICE_OPT_STRING, "continue", 0,
	    "continue, tempfail or reject when the best result is temperror" },
	{ "on_none", SLUICE_OPT_STRING, "continue", 0,
	    "continue, tempfail or reject for unsigned messages" },
	{ "sign_domains", SLUICE_OPT_STRING_LIST, NULL, 0,
	    "From domains whose mail is signed (d= is the From domain)" },
	{ "sign_authenticated", SLUICE_OPT_BOOL, "false", 0,
	    "also sign mail of authenticated clients, whatever the From domain" },
	{ "selector", SLUICE_OPT_STRING, NULL, 0, "selector (s=) of key_file" },
	{ "key_file", SLUICE_OPT_STRING, NULL, 0,
	    "private key, PEM, RSA or ed25519; read at start and reload" },
	{ "selector2", SLUICE_OPT_STRING, NULL, 0, "selector of key_file2" },
	{ "key_file2", SLUICE_OPT_STRING, NULL, 0,
	    "a second key, for dual rsa-sha256 + ed25519-sha256 signing" },
	{ "sign_headers", SLUICE_OPT_STRING_LIST, "{\"From\", \"Reply-To\", \"Subject\", "
	    "\"Date\", \"To\", \"Cc\", \"Message-ID\", \"In-Reply-To\", \"References\", "
	    "\"MIME-Version\", \"Content-Type\", \"Content-Transfer-Encoding\", "
	    "\"List-Id\", \"List-Unsubscribe\", \"List-Unsubscribe-Post\"}", 0,
	    "header fields signed when present (From is required)" },
	{ NULL, 0, NULL, 0, NULL }
};

static void	 dkimf_fini(void *);
static void	 dkimf_instance_unref(struct dkim_instance *);
static int	 dkimf_init_verdicts(struct dkim_instance *, struct sluice_filter *, char *,
		    size_t);
static int	 dkimf_init_signing(struct dkim_instance *, struct sluice_filter *, char *,
		    size_t);
static int	 dkimf_init_engine(struct dkim_instance *, struct sluice_filter *, char *,
		    size_t);
static struct dkim_txn *dkimf_txn_get(struct sluice_ctx *);
static void	 dkimf_txn_unref(struct dkim_txn *);
static void	 dkimf_txn_drop(struct sluice_ctx *);
static struct dkimf_msg *dkimf_message(struct sluice_ctx *, struct dkim_txn **, int *);
static const char *dkimf_sign_domain(struct sluice_ctx *, const struct dkim_instance *,
		    struct dkimf_msg *);
static void	 dkimf_prefetch(struct sluice_ctx *, struct dkim_txn *);
static void	 dkimf_prefetch_done(void *, const struct sluice_dns_answer *);
static enum dkimf_lookup dkimf_answer_key(const struct sluice_dns_answer *, char *, size_t,
		    char *, size_t);
static struct dkim_job *dkimf_job_new(struct sluice_ctx *, struct dkim_txn *,
		    enum dkim_job_kind, const unsigned char *, size_t);
static void	 dkimf_job_start(struct sluice_ctx *, struct dkim_job *);
static void	 dkimf_job_work(void *);
static void	 dkimf_job_done(void *);
static void	 dkimf_job_free(struct dkim_job *);
static enum dkimf_lookup dkimf_key_lookup(void *, const char *, char *, size_t, char *,
		    size_t);
static void	 dkimf_conclude(struct sluice_ctx *, const struct dkim_instance *,
		    struct dkimf_msg *, struct dkim_answer *);
static enum dkimf_result dkimf_record(struct sluice_ctx *, const struct dkim_instance *,
		    struct dkimf_msg *);
static void	 dkimf_insert_signatures(struct sluice_ctx *, struct dkimf_msg *,
		    struct dkim_answer *);
static void	 dkimf_verdict(const struct dkim_instance *, enum dkimf_result,
		    struct dkim_answer *);

/* --- init / fini ------------------------------------------------------------ */

static int
dkimf_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	struct dkim_instance	*inst;
	long long		 n;

	if ((inst = calloc(1, sizeof(*inst))) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	atomic_init(&inst->refs, 1);
	*instance = inst;
	inst->filter = f;
	inst->verify = sluice_option_bool(f, "verify");
	inst->sign = sluice_option_bool(f, "sign");
	if (!inst->verify && !inst->sign)
		return snprintf(err, errlen, "verify and sign are both false: nothing to do"),
		    dkimf_fini(inst), -1;
	n = sluice_option_int(f, "max_signatures");
	if (n < 1 || n > DKIM_MAX_SIGNATURES)
		return snprintf(err, errlen, "max_signatures must be 1 to %d", DKIM_MAX_SIGNATURES),
		    dkimf_fini(inst), -1;
	inst->max_signatures = (size_t)n;
	inst->notes_len = inst->max_signatures * 256 + 1;
	if (dkimf_init_verdicts(inst, f, err, errlen) == -1 ||
	    dkimf_init_engine(inst, f, err, errlen) == -1 ||
	    (inst->sign && dkimf_init_signing(inst, f, err, errlen) == -1)) {
		dkimf_fini(inst);
		return -1;
	}
	return 0;
}

static int
dkimf_init_verdicts(struct dkim_instance *inst, struct sluice_filter *f, char *err,
    size_t errlen)
{
	static const struct {
		const char		*option;
		enum dkimf_result	 results[2];
	} map[] = {
		{ "on_fail", { DKIMF_FAIL, DKIMF_POLICY } },
		{ "on_permerror", { DKIMF_PERMERROR, DKIMF_NEUTRAL } },
		{ "on_temperror", { DKIMF_TEMPERROR, DKIMF_TEMPERROR } },
		{ "on_none", { DKIMF_NONE, DKIMF_NONE } },
	};
	enum dkimf_action	 a;
	size_t			 i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (dkimf_action_parse(sluice_option_string(f, map[i].option), &a) == -1) {
			snprintf(err, errlen, "%s must be continue, tempfail or reject",
			    map[i].option);
			return -1;
		}
		inst->on_result[map[i].results[0]] = a;
		inst->on_result[map[i].results[1]] = a;
	}
	inst->on_result[DKIMF_PASS] = DKIMF_CONTINUE;
	return 0;
}

static int
dkimf_init_engine(struct dkim_instance *inst, struct sluice_filter *f, char *err,
    size_t errlen)
{
	struct dkimf_engine_config	 c;
	char				*hdrs[64];
	size_t				 i, n = sluice_option_list_count(f, "sign_headers");
	long long			 bits = sluice_option_int(f, "min_key_bits");
	int				 from = 0;

	if (bits < 1024 || bits > 4096)
		return snprintf(err, errlen, "min_key_bits must be 1024 to 4096"), -1;
	if (n == 0 || n > sizeof(hdrs) / sizeof(hdrs[0]))
		return snprintf(err, errlen, "sign_headers must list 1 to %zu names",
		    sizeof(hdrs) / sizeof(hdrs[0])), -1;
	for (i = 0; i < n; i++) {
		hdrs[i] = (char *)sluice_option_list_item(f, "sign_headers", i);
		if (!dkimf_header_name_valid(hdrs[i]))
			return snprintf(err, errlen, "sign_headers: \"%.64s\" is not a header name "
			    "(letters, digits, '-')", hdrs[i]), -1;
		from |= strcasecmp(hdrs[i], "From") == 0;
	}
	if (!from)
		return snprintf(err, errlen, "sign_headers must include From (RFC 6376 5.4)"), -1;
	inst->min_key_bits = (unsigned int)bits;
	memset(&c, 0, sizeof(c));
	c.min_key_bits = (unsigned int)bits;
	c.max_signatures = inst->max_signatures;
	c.sign_headers = hdrs;
	c.nsign_headers = n;
	inst->engine = dkimf_engine_new(&c, err, errlen);
	return inst->engine != NULL ? 0 : -1;
}

static int
dkimf_init_signing(struct dkim_instance *inst, struct sluice_filter *f, char *err,
    size_t errlen)
{
	static const char *const opts[DKIMF_MAX_KEYS][2] = {
		{ "selector", "key_file" }, { "selector2", "key_file2" }
	};
	const char	*sel, *path;
	char		 dom[254];
	size_t		 i, n = sluice_option_list_count(f, "sign_domains");

	inst->sign_authenticated = sluice_option_bool(f, "sign_authenticated");
	if (n == 0 && !inst->sign_authenticated)
		return snprintf(err, errlen, "sign = true needs sign_domains or "
		    "sign_authenticated = true"), -1;
	if (n > 0 && (inst->sign_domains = calloc(n, sizeof(char *))) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	for (i = 0; i < n; i++) {
		path = sluice_option_list_item(f, "sign_domains", i);
		if (dkimf_domain_normalize(path, strlen(path), dom, sizeof(dom)) == -1)
			return snprintf(err, errlen, "sign_domains: \"%.64s\" is not a domain name",
			    path), -1;
		if ((inst->sign_domains[inst->nsign_domains++] = strdup(dom)) == NULL)
			return snprintf(err, errlen, "out of memory"), -1;
	}
	for (i = 0; i < DKIMF_MAX_KEYS; i++) {
		sel = sluice_option_string(f, opts[i][0]);
		path = sluice_option_string(f, opts[i][1]);
		if (sel == NULL && path == NULL && i > 0)
			continue;
		if (sel == NULL || path == NULL)
			return snprintf(err, errlen, "sign = true needs %s and %s together",
			    opts[i][0], opts[i][1]), -1;
		if ((inst->keys[inst->nkeys] = dkimf_key_load_file(sel, path,
		    inst->min_key_bits, err, errlen)) == NULL)
			return -1;
		inst->nkeys++;
	}
	return 0;
}

static void
dkimf_fini(void *instance)
{
	dkimf_instance_unref(instance);
}

/* The last reference (fini or the last job's done) frees the instance. */
static void
dkimf_instance_unref(struct dkim_instance *inst)
{
	size_t	 i;

	if (atomic_fetch_sub(&inst->refs, 1) != 1)
		return;
	for (i = 0; i < inst->nkeys; i++)
		dkimf_key_free(inst->keys[i]);
	for (i = 0; i < inst->nsign_domains; i++)
		free(inst->sign_domains[i]);
	free(inst->sign_domains);
	dkimf_engine_free(inst->engine);
	free(inst);
}

/* --- Messages ---------------------------------------------------------------- */

/* This transaction's message state, created at its first content hook. */
static struct dkim_txn *
dkimf_txn_get(struct sluice_ctx *ctx)
{
	struct dkim_instance	*inst = sluice_instance(ctx);
	void			**slot = sluice_session_data(ctx);
	struct dkim_txn		*txn = *slot;

	if (txn != NULL)
		return txn;
	if ((txn = calloc(1, sizeof(*txn))) == NULL)
		return NULL;
	if ((txn->msg = dkimf_msg_new(inst->engine, sluice_session_id(ctx), inst->verify)) ==
	    NULL) {
		free(txn);
		return NULL;
	}
	txn->refs = 1;
	atomic_init(&txn->gone, 0);
	txn->inst = inst;
	atomic_fetch_add(&inst->refs, 1);
	*slot = txn;
	return txn;
}

static void
dkimf_txn_unref(struct dkim_txn *txn)
{
	if (--txn->refs > 0)
		return;
	dkimf_msg_free(txn->msg);
	dkimf_instance_unref(txn->inst);
	free(txn);
}

/* The transaction is over: a job or query still running keeps it, unheard. */
static void
dkimf_txn_drop(struct sluice_ctx *ctx)
{
	void		**slot = sluice_session_data(ctx);
	struct dkim_txn	*txn = *slot;

	if (txn == NULL)
		return;
	*slot = NULL;
	atomic_store(&txn->gone, 1);
	dkimf_txn_unref(txn);
}

/*
 * The message for a content hook: NULL when there is nothing (more) to do,
 * or out of memory (then *failed is set).  A hook arriving while one of
 * ours is still PENDING means that one timed out and the core moved on:
 * the message is given up.
 */
static struct dkimf_msg *
dkimf_message(struct sluice_ctx *ctx, struct dkim_txn **txnp, int *failed)
{
	struct dkim_txn	*txn = dkimf_txn_get(ctx);

	*failed = txn == NULL;
	if ((*txnp = txn) == NULL)
		return NULL;
	if ((txn->job != NULL || txn->waiting != NULL) && !txn->done) {
		sluice_log(ctx, SLUICE_LOG_WARNING, "dkim message given up after a timeout");
		txn->done = 1;
	}
	return txn->done ? NULL : txn->msg;
}

/* --- Hooks ------------------------------------------------------------------ */

static enum sluice_verdict
dkimf_on_header(struct sluice_ctx *ctx, const char *name, const char *value)
{
	struct dkim_txn		*txn;
	struct dkimf_msg	*m;
	int			 failed;

	if ((m = dkimf_message(ctx, &txn, &failed)) != NULL)
		dkimf_msg_header(m, name, value);
	if (failed) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	return SLUICE_CONTINUE;
}

static enum sluice_verdict
dkimf_on_eoh(struct sluice_ctx *ctx)
{
	struct dkim_instance	*inst = sluice_instance(ctx);
	struct dkim_txn		*txn;
	struct dkimf_msg	*m;
	const char		*domain = NULL;
	int			 failed;

	if ((m = dkimf_message(ctx, &txn, &failed)) == NULL) {
		if (!failed)
			return SLUICE_CONTINUE;
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	if (inst->sign)
		domain = dkimf_sign_domain(ctx, inst, m);
	if (dkimf_msg_signatures_skipped(m) > 0)
		sluice_log(ctx, SLUICE_LOG_INFO, "dkim signatures=%zu verified_at_most=%zu "
		    "skipped=%zu", dkimf_msg_signatures_seen(m), inst->max_signatures,
		    dkimf_msg_signatures_skipped(m));
	dkimf_msg_eoh(m, domain, inst->keys, domain != NULL ? inst->nkeys : 0);
	dkimf_prefetch(ctx, txn);
	return SLUICE_CONTINUE;
}

/* The d= to sign with, or NULL (logged at debug) when this mail is not ours. */
static const char *
dkimf_sign_domain(struct sluice_ctx *ctx, const struct dkim_instance *inst,
    struct dkimf_msg *m)
{
	const char	*domain = dkimf_msg_from_domain(m);
	const char	*user = sluice_auth_user(ctx);

	if (domain == NULL) {
		sluice_log(ctx, SLUICE_LOG_DEBUG, "dkim not signing: no single From address "
		    "with a domain name");
		return NULL;
	}
	if (dkimf_domain_listed(domain, inst->sign_domains, inst->nsign_domains) ||
	    (inst->sign_authenticated && user != NULL))
		return domain;
	sluice_log(ctx, SLUICE_LOG_DEBUG, "dkim not signing: from_domain=%s authenticated=%s",
	    domain, user != NULL ? "yes" : "no");
	return NULL;
}

static enum sluice_verdict
dkimf_on_body(struct sluice_ctx *ctx, const unsigned char *chunk, size_t len)
{
	struct dkim_txn		*txn;
	struct dkimf_msg	*m;
	struct dkim_job		*job;
	int			 failed;

	if ((m = dkimf_message(ctx, &txn, &failed)) == NULL || !dkimf_msg_active(m)) {
		if (!failed)
			return SLUICE_CONTINUE;
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	/* Many handles hashing a big chunk would stall every session of the loop. */
	if (dkimf_msg_cost(m) * len <= DKIM_INLINE_WORK) {
		dkimf_msg_body(m, chunk, len);
		return SLUICE_CONTINUE;
	}
	if ((job = dkimf_job_new(ctx, txn, DKIM_JOB_BODY, chunk, len)) == NULL) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	dkimf_job_start(ctx, job);
	return SLUICE_PENDING;
}

static enum sluice_verdict
dkimf_on_eom(struct sluice_ctx *ctx)
{
	struct dkim_instance	*inst = sluice_instance(ctx);
	struct dkim_txn		*txn;
	struct dkimf_msg	*m;
	struct dkim_job		*job;
	struct dkim_answer	 a;
	int			 failed;

	if ((m = dkimf_message(ctx, &txn, &failed)) != NULL && dkimf_msg_active(m)) {
		if ((job = dkimf_job_new(ctx, txn, DKIM_JOB_EOM, NULL, 0)) == NULL)
			failed = 1;
		else if (txn->dns_waiting > 0)
			txn->waiting = job;	/* the last key answer starts it */
		else
			dkimf_job_start(ctx, job);
		if (job != NULL)
			return SLUICE_PENDING;
	}
	if (failed) {
		sluice_fail(ctx, "out of memory");
		return SLUICE_TEMPFAIL;
	}
	if (m == NULL)
		return SLUICE_CONTINUE;
	/* Unsigned, or not verifiable at all: nothing for the pool. */
	dkimf_conclude(ctx, inst, m, &a);
	txn->done = 1;
	if (a.fail[0] != '\0') {
		sluice_fail(ctx, "%s", a.fail);
		return SLUICE_TEMPFAIL;
	}
	if (a.code != 0)
		sluice_reply(ctx, a.code, a.enhanced, "%s", a.text);
	return a.verdict;
}

static void
dkimf_on_reset(struct sluice_ctx *ctx)
{
	dkimf_txn_drop(ctx);
}

static void
dkimf_on_close(struct sluice_ctx *ctx)
{
	dkimf_txn_drop(ctx);
}

/* --- Key prefetch ------------------------------------------------------------- */

/*
 * Ask for every key the signatures want now, all at once and without
 * blocking; the end of the message waits for the answers, so the pool job
 * never waits on DNS.  A query that cannot start is asked by the job.
 */
static void
dkimf_prefetch(struct sluice_ctx *ctx, struct dkim_txn *txn)
{
	const char		*names[DKIM_MAX_SIGNATURES];
	struct dkim_prefetch	*pf;
	size_t			 i, n, len;

	n = dkimf_msg_key_names(txn->msg, names, DKIM_MAX_SIGNATURES);
	for (i = 0; i < n; i++) {
		len = strlen(names[i]);
		if ((pf = malloc(sizeof(*pf) + len + 1)) == NULL)
			break;
		memcpy(pf->name, names[i], len + 1);
		pf->txn = txn;
		txn->refs++;
		txn->dns_waiting++;
		if (sluice_dns_query(ctx, pf->name, SLUICE_DNS_TXT, dkimf_prefetch_done, pf) ==
		    -1) {
			txn->refs--;
			txn->dns_waiting--;
			free(pf);
		}
	}
}

static void
dkimf_prefetch_done(void *arg, const struct sluice_dns_answer *answer)
{
	struct dkim_prefetch	*pf = arg;
	struct dkim_txn		*txn = pf->txn;
	struct dkim_job		*job;
	struct sluice_ctx	*ctx;
	enum dkimf_lookup	 st;
	char			 text[2048], why[64];

	if (txn->msg != NULL) {
		text[0] = '\0';
		st = dkimf_answer_key(answer, text, sizeof(text), why, sizeof(why));
		dkimf_msg_key_answer(txn->msg, pf->name, st, text, why);
	}
	if (--txn->dns_waiting == 0 && (job = txn->waiting) != NULL) {
		txn->waiting = NULL;
		ctx = atomic_load(&txn->gone) ? NULL : sluice_pending_ctx(job->pending);
		dkimf_job_start(ctx, job);
	}
	free(pf);
	dkimf_txn_unref(txn);
}

/* A TXT answer as a key lookup result; text gets the record. */
static enum dkimf_lookup
dkimf_answer_key(const struct sluice_dns_answer *ans, char *text, size_t len, char *why,
    size_t whylen)
{
	if (whylen > 0)
		why[0] = '\0';
	switch (ans->status) {
	case SLUICE_DNS_OK:
		return dkimf_txt_pick(ans->records, ans->count, text, len, why, whylen);
	case SLUICE_DNS_NODATA:
	case SLUICE_DNS_NXDOMAIN:
		snprintf(why, whylen, "%s", sluice_dns_status_name(ans->status));
		return DKIMF_LOOKUP_NOTFOUND;
	default:
		snprintf(why, whylen, "%s%s%s", sluice_dns_status_name(ans->status),
		    ans->why != NULL ? ": " : "", ans->why != NULL ? ans->why : "");
		return DKIMF_LOOKUP_TEMP;
	}
}

/* --- Pool jobs --------------------------------------------------------------- */

/* A job for the hook running now (suspended here); NULL when out of memory. */
static struct dkim_job *
dkimf_job_new(struct sluice_ctx *ctx, struct dkim_txn *txn, enum dkim_job_kind kind,
    const unsigned char *chunk, size_t len)
{
	struct dkim_job	*job;

	if ((job = calloc(1, sizeof(*job))) == NULL ||
	    (kind == DKIM_JOB_BODY && (job->chunk = malloc(len)) == NULL)) {
		free(job);
		return NULL;
	}
	if (kind == DKIM_JOB_BODY)
		memcpy(job->chunk, chunk, len);
	job->len = len;
	job->kind = kind;
	job->txn = txn;
	txn->refs++;
	job->pending = sluice_suspend(ctx);
	return job;
}

/* Into the pool; with no ctx (hook timed out, session gone) just resume. */
static void
dkimf_job_start(struct sluice_ctx *ctx, struct dkim_job *job)
{
	if (ctx != NULL && sluice_offload(ctx, dkimf_job_work, dkimf_job_done, job) == 0) {
		job->txn->job = job;
		return;
	}
	job->txn->done = 1;
	if (ctx != NULL)
		sluice_resume_fail(job->pending, "cannot start pool job");
	else
		sluice_resume(job->pending, SLUICE_CONTINUE, 0, NULL, NULL);
	dkimf_job_free(job);
}

/* In a pool thread: hash, or verify (asking the keys not prefetched) and sign. */
static void
dkimf_job_work(void *arg)
{
	struct dkim_job	*job = arg;

	if (job->kind == DKIM_JOB_BODY)
		dkimf_msg_body(job->txn->msg, job->chunk, job->len);
	else
		dkimf_msg_eom(job->txn->msg, dkimf_key_lookup, job);
}

/* On the session's worker: report and answer, or just resume. */
static void
dkimf_job_done(void *arg)
{
	struct dkim_job		*job = arg;
	struct dkim_txn		*txn = job->txn;
	struct sluice_ctx	*ctx;
	struct dkim_answer	 a;

	txn->job = NULL;
	ctx = atomic_load(&txn->gone) ? NULL : sluice_pending_ctx(job->pending);
	if (ctx == NULL || job->kind == DKIM_JOB_BODY) {
		/* Gone or timed out: nobody to tell; a body chunk: on to the next. */
		if (ctx == NULL)
			txn->done = 1;
		sluice_resume(job->pending, SLUICE_CONTINUE, 0, NULL, NULL);
		dkimf_job_free(job);
		return;
	}
	dkimf_conclude(ctx, txn->inst, txn->msg, &a);
	txn->done = 1;
	dkimf_msg_free(txn->msg);	/* reported: free it now, not at RSET */
	txn->msg = NULL;
	if (a.fail[0] != '\0')
		sluice_resume_fail(job->pending, a.fail);
	else
		sluice_resume(job->pending, a.verdict, a.code, a.enhanced, a.text);
	dkimf_job_free(job);
}

static void
dkimf_job_free(struct dkim_job *job)
{
	dkimf_txn_unref(job->txn);
	free(job->chunk);
	free(job);
}

/* A key not prefetched, in the pool thread: TXT through the resolver. */
static enum dkimf_lookup
dkimf_key_lookup(void *arg, const char *name, char *buf, size_t buflen, char *why,
    size_t whylen)
{
	struct dkim_job			*job = arg;
	struct sluice_dns_answer	*ans;
	enum dkimf_lookup		 rc;

	/* The session is gone: its generation may be going too. */
	if (atomic_load(&job->txn->gone)) {
		snprintf(why, whylen, "session ended");
		return DKIMF_LOOKUP_TEMP;
	}
	ans = sluice_dns_lookup(job->txn->inst->filter, name, SLUICE_DNS_TXT);
	rc = dkimf_answer_key(ans, buf, buflen, why, whylen);
	sluice_dns_answer_free(ans);
	return rc;
}

/* --- Results ---------------------------------------------------------------- */

/* Record what was found, sign, and decide; a.fail set on signing errors. */
static void
dkimf_conclude(struct sluice_ctx *ctx, const struct dkim_instance *inst, struct dkimf_msg *m,
    struct dkim_answer *a)
{
	enum dkimf_result	 best;

	memset(a, 0, sizeof(*a));
	a->verdict = SLUICE_CONTINUE;
	if (dkimf_msg_verified(m) != 0) {
		best = dkimf_record(ctx, inst, m);
		dkimf_verdict(inst, best, a);
	}
	/* Also under a refusing verdict: in observe mode the message goes on. */
	dkimf_insert_signatures(ctx, m, a);
}

/* Authentication-Results entries, log lines and notes; the best result. */
static enum dkimf_result
dkimf_record(struct sluice_ctx *ctx, const struct dkim_instance *inst, struct dkimf_msg *m)
{
	const struct dkimf_sig_result	*r;
	enum dkimf_result		 best = DKIMF_NONE;
	char				*pass;
	size_t				 i;

	if ((pass = calloc(1, inst->notes_len)) == NULL)
		return DKIMF_TEMPERROR;
	if (dkimf_msg_verified(m) < 0) {
		best = DKIMF_PERMERROR;
		sluice_authres_add(ctx, "dkim", "permerror", "message not verifiable", NULL);
		sluice_log(ctx, SLUICE_LOG_WARNING, "dkim result=permerror reason=\"%s\"",
		    dkimf_msg_verify_error(m));
	} else if (dkimf_msg_results(m) == 0) {
		sluice_authres_add(ctx, "dkim", "none", NULL, NULL);
		sluice_log(ctx, SLUICE_LOG_DEBUG, "dkim result=none");
	}
	for (i = 0; (r = dkimf_msg_result(m, i)) != NULL; i++) {
		if ((unsigned int)r->result < (unsigned int)best)
			best = r->result;
		/* A pass needs no reason in the A-R field; the log has it. */
		sluice_authres_add(ctx, "dkim", dkimf_result_name(r->result),
		    r->result != DKIMF_PASS ? r->reason : NULL, r->props[0] != '\0' ? r->props : NULL);
		sluice_log(ctx, SLUICE_LOG_INFO, "dkim result=%s %s%skey_bits=%u reason=\"%s%s%s\"",
		    dkimf_result_name(r->result), r->props, r->props[0] != '\0' ? " " : "",
		    r->keybits, r->reason, r->why[0] != '\0' ? ": " : "", r->why);
		if (r->result == DKIMF_PASS && r->domain[0] != '\0')
			dkimf_word_add(pass, inst->notes_len, r->domain);
	}
	sluice_note_set(ctx, "dkim.pass_domains", pass);
	sluice_note_set(ctx, "dkim.result", dkimf_result_name(best));
	free(pass);
	return best;
}

static void
dkimf_verdict(const struct dkim_instance *inst, enum dkimf_result best, struct dkim_answer *a)
{
	switch (inst->on_result[best]) {
	case DKIMF_REJECT:
		a->verdict = SLUICE_REJECT;
		a->code = 550;
		a->enhanced = "5.7.20";
		a->text = "No passing DKIM signature found";
		break;
	case DKIMF_TEMPFAIL:
		a->verdict = SLUICE_TEMPFAIL;
		a->code = 451;
		a->enhanced = best == DKIMF_TEMPERROR ? "4.4.3" : "4.7.0";
		a->text = best == DKIMF_TEMPERROR ? "DKIM key lookup failed, try again later" :
		    "No passing DKIM signature found, try again later";
		break;
	default:
		a->verdict = SLUICE_CONTINUE;
		break;
	}
}

/* Our signatures at the top, the first key's first. */
static void
dkimf_insert_signatures(struct sluice_ctx *ctx, struct dkimf_msg *m, struct dkim_answer *a)
{
	const struct dkimf_key	*key;
	const char		*sig, *domain;
	size_t			 i;

	for (i = dkimf_msg_signing(m); i-- > 0;) {
		key = dkimf_msg_sign_key(m, i);
		domain = dkimf_msg_from_domain(m);
		if ((sig = dkimf_msg_signature(m, i)) == NULL) {
			snprintf(a->fail, sizeof(a->fail), "signing with selector %s failed: %s",
			    dkimf_key_selector(key), dkimf_msg_sign_error(m, i));
			continue;
		}
		if (sluice_header_insert(ctx, 0, "DKIM-Signature", sig) == -1) {
			snprintf(a->fail, sizeof(a->fail), "cannot add the DKIM-Signature field");
			continue;
		}
		sluice_log(ctx, SLUICE_LOG_INFO, "dkim signed d=%s s=%s a=%s",
		    domain != NULL ? domain : "-", dkimf_key_selector(key),
		    dkimf_key_algorithm(key));
	}
}

const struct sluice_module sluice_builtin_dkim = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "dkim",
	.description = "verify DKIM signatures (RFC 6376, 8301, 8463) and sign outgoing mail",
	.options = dkim_options,
	.init = dkimf_init,
	.fini = dkimf_fini,
	.on_header = dkimf_on_header,
	.on_eoh = dkimf_on_eoh,
	.on_body = dkimf_on_body,
	.on_eom = dkimf_on_eom,
	.on_reset = dkimf_on_reset,
	.on_close = dkimf_on_close,
};
