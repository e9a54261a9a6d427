/*
 * dkim_engine.c - the dkim filter's per-message work: libopendkim's
 * library and verify handles, the key lookups, and the signers of
 * dkim_sign.c.  See dkim_engine.h.
 *
 * Bounds.  libopendkim makes one body hash per distinct (canonicalization,
 * hash, l=) of the signatures it sees and looks up one key per signature,
 * so a message with a thousand DKIM-Signature fields would cost a
 * thousand passes over the body and a thousand lookups.  Only the first
 * max_signatures DKIM-Signature fields (from the top: the most recent
 * hops) are given to the verifier; the rest are counted and logged.  Key
 * lookups go through a per-message table, filled ahead by the filter's
 * asynchronous prefetch or asked at dkim_eom(), so signatures sharing a
 * key cost one lookup, and a failed lookup is not repeated.
 * DKIM_LIBFLAGS_DELAYSIGPROC keeps lookups and public key operations out
 * of dkim_eoh() (which runs on the event loop) and in dkim_eom() (which
 * runs in the pool).  Signing is dkim_sign.c's, not libopendkim's.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <dkim.h>

#include "dkim_engine.h"

struct dkimf_engine {
	DKIM_LIB	*lib;		/* shared by every message of the instance */
	unsigned int	 min_key_bits;	/* copied from the config */
	size_t		 max_signatures;
	char		**sign_headers;	/* copied */
	size_t		 nsign_headers;
	uint64_t	 fixed_time;
	char		 algorithms[64];	/* what the library verifies */
};

/* One header field kept until the end of the header section. */
struct msg_header {
	size_t		 off;		/* "Name: value" in the arena */
	size_t		 len;
	size_t		 namelen;
	int		 verify;	/* given to the verifier */
};

/* One key lookup of the message. */
struct msg_key {
	char		*name;		/* selector._domainkey.domain */
	int		 answered;	/* status, text and why are set */
	enum dkimf_lookup status;
	char		*text;		/* the TXT record when OK */
	char		 why[64];
};

struct dkimf_msg {
	struct dkimf_engine	*e;
	char			 id[24];	/* for libopendkim's own messages */
	int			 want_verify;
	/* Until the end of the header section. */
	char			*arena;		/* header fields, back to back */
	size_t			 arena_len, arena_cap;
	struct msg_header	*hdrs;
	size_t			 nhdrs, hdrs_cap;
	int			 too_big;	/* header section over DKIMF_HEADER_MAX */
	int			 nfrom;		/* From fields seen */
	char			 from_domain[254];	/* "" unless one good From */
	size_t			 sigs_seen, sigs_skipped;
	/* Verification. */
	DKIM			*verify;	/* open verify handle, or NULL */
	int			 verified;	/* see dkimf_msg_verified() */
	char			 verify_error[160];
	struct dkimf_sig_result	*results;
	size_t			 nresults;
	struct msg_key		*keys;		/* lookups made, max_signatures at most */
	size_t			 nkeys;
	dkimf_lookup_fn		 lookup;	/* set for the duration of eom */
	void			*lookup_arg;
	/* Signing. */
	struct dkimf_signer	*sign[DKIMF_MAX_KEYS];
	struct dkimf_key	*sign_key[DKIMF_MAX_KEYS];
	size_t			 nsign;
	char			*signature[DKIMF_MAX_KEYS];
	char			 sign_error[DKIMF_MAX_KEYS][160];
};

static DKIM_CBSTAT engine_key_lookup(DKIM *, DKIM_SIGINFO *, unsigned char *, size_t);
static int	 engine_copy_headers(struct dkimf_engine *, const struct dkimf_engine_config *);
static struct msg_key *msg_key_find(struct dkimf_msg *, const char *);
static struct msg_key *msg_key_add(struct dkimf_msg *, const char *);
static struct msg_key *msg_key_fetch(struct dkimf_msg *, const char *);
static void	 msg_key_prepare(struct dkimf_msg *);
static void	 msg_headers_release(struct dkimf_msg *);
static void	 msg_verify_start(struct dkimf_msg *);
static void	 msg_sign_start(struct dkimf_msg *, const char *, struct dkimf_key *const *,
		    size_t);
static void	 msg_verify_collect(struct dkimf_msg *);
static void	 msg_sig_result(struct dkimf_msg *, DKIM_SIGINFO *, struct dkimf_sig_result *);
static void	 msg_sign_finish(struct dkimf_msg *, size_t);

/* --- The engine ---------------------------------------------------------------- */

struct dkimf_engine *
dkimf_engine_new(const struct dkimf_engine_config *c, char *err, size_t errlen)
{
	struct dkimf_engine	*e;
	uint32_t		 flags;
	unsigned int		 bits = c->min_key_bits;

	if ((e = calloc(1, sizeof(*e))) == NULL || (e->lib = dkim_init(NULL, NULL)) == NULL) {
		free(e);
		snprintf(err, errlen, "cannot initialise libopendkim");
		return NULL;
	}
	e->min_key_bits = c->min_key_bits;
	e->max_signatures = c->max_signatures;
	e->fixed_time = c->fixed_time;
	/*
	 * Key lookups and public key operations at dkim_eom(), not dkim_eoh();
	 * malformed signatures reported (neutral) rather than dropped (none).
	 */
	flags = DKIM_LIBFLAGS_DELAYSIGPROC | DKIM_LIBFLAGS_BADSIGHANDLES;
	if (dkim_options(e->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) !=
	    DKIM_STAT_OK ||
	    dkim_options(e->lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &bits, sizeof(bits)) !=
	    DKIM_STAT_OK ||
	    dkim_set_key_lookup(e->lib, engine_key_lookup) != DKIM_STAT_OK) {
		snprintf(err, errlen, "libopendkim refused its options");
		dkimf_engine_free(e);
		return NULL;
	}
	if (engine_copy_headers(e, c) == -1) {
		snprintf(err, errlen, "out of memory");
		dkimf_engine_free(e);
		return NULL;
	}
	snprintf(e->algorithms, sizeof(e->algorithms), "rsa-sha256%s",
	    dkim_libfeature(e->lib, DKIM_FEATURE_ED25519) ? " ed25519-sha256" : "");
	return e;
}

static int
engine_copy_headers(struct dkimf_engine *e, const struct dkimf_engine_config *c)
{
	size_t	 i;

	if (c->nsign_headers == 0)
		return 0;
	if ((e->sign_headers = calloc(c->nsign_headers, sizeof(char *))) == NULL)
		return -1;
	for (i = 0; i < c->nsign_headers; i++) {
		if ((e->sign_headers[i] = strdup(c->sign_headers[i])) == NULL)
			return -1;
		e->nsign_headers++;
	}
	return 0;
}

void
dkimf_engine_free(struct dkimf_engine *e)
{
	size_t	 i;

	if (e == NULL)
		return;
	if (e->lib != NULL)
		dkim_close(e->lib);
	for (i = 0; i < e->nsign_headers; i++)
		free(e->sign_headers[i]);
	free(e->sign_headers);
	free(e);
}

const char *
dkimf_engine_algorithms(const struct dkimf_engine *e)
{
	return e->algorithms;
}

/* --- Messages: header section ------------------------------------------------ */

struct dkimf_msg *
dkimf_msg_new(struct dkimf_engine *e, uint64_t id, int verify)
{
	struct dkimf_msg	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->e = e;
	m->want_verify = verify;
	snprintf(m->id, sizeof(m->id), "%016llx", (unsigned long long)id);
	return m;
}

void
dkimf_msg_free(struct dkimf_msg *m)
{
	size_t	 i;

	if (m == NULL)
		return;
	msg_headers_release(m);
	if (m->verify != NULL)
		dkim_free(m->verify);
	for (i = 0; i < m->nsign; i++) {
		dkimf_signer_free(m->sign[i]);
		free(m->signature[i]);
	}
	for (i = 0; i < m->nkeys; i++) {
		free(m->keys[i].name);
		free(m->keys[i].text);
	}
	free(m->keys);
	free(m->results);
	free(m);
}

static void
msg_headers_release(struct dkimf_msg *m)
{
	free(m->arena);
	free(m->hdrs);
	m->arena = NULL;
	m->hdrs = NULL;
	m->arena_len = m->arena_cap = m->nhdrs = m->hdrs_cap = 0;
}

/* Grow *p (elements of size) to hold need; 0, or -1 out of memory. */
static int
msg_grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t	 n = *cap != 0 ? *cap : 16;
	void	*q;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	if ((q = reallocarray(*p, n, size)) == NULL)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

void
dkimf_msg_header(struct dkimf_msg *m, const char *name, const char *value)
{
	size_t		 nlen = strlen(name), vlen = strlen(value), len = nlen + 2 + vlen;
	struct msg_header *h;
	int		 sig = dkimf_is_signature_header(name);

	if (m->too_big || nlen == 0)
		return;
	if (strcasecmp(name, "From") == 0 && m->nfrom++ == 0 &&
	    dkimf_from_domain(value, m->from_domain, sizeof(m->from_domain)) == -1)
		m->from_domain[0] = '\0';
	if (sig && ++m->sigs_seen > m->e->max_signatures)
		m->sigs_skipped++;
	if (m->arena_len + len + 1 > DKIMF_HEADER_MAX ||
	    msg_grow((void **)&m->arena, &m->arena_cap, m->arena_len + len + 1, 1) == -1 ||
	    msg_grow((void **)&m->hdrs, &m->hdrs_cap, m->nhdrs + 1, sizeof(*m->hdrs)) == -1) {
		m->too_big = 1;
		msg_headers_release(m);
		return;
	}
	h = &m->hdrs[m->nhdrs++];
	h->off = m->arena_len;
	h->len = len;
	h->namelen = nlen;
	h->verify = !sig || m->sigs_seen <= m->e->max_signatures;
	/* "Name: value": the API drops the one space after the colon. */
	memcpy(m->arena + m->arena_len, name, nlen);
	memcpy(m->arena + m->arena_len + nlen, ": ", 2);
	memcpy(m->arena + m->arena_len + nlen + 2, value, vlen);
	m->arena[m->arena_len + len] = '\0';
	m->arena_len += len + 1;
}

const char *
dkimf_msg_from_domain(struct dkimf_msg *m)
{
	return m->nfrom == 1 && m->from_domain[0] != '\0' ? m->from_domain : NULL;
}

void
dkimf_msg_eoh(struct dkimf_msg *m, const char *sign_domain, struct dkimf_key *const *keys,
    size_t nkeys)
{
	if (m->want_verify)
		msg_verify_start(m);
	if (sign_domain != NULL && nkeys > 0)
		msg_sign_start(m, sign_domain, keys, nkeys);
	msg_headers_release(m);
}

static void
msg_verify_start(struct dkimf_msg *m)
{
	DKIM_STAT	 st;
	size_t		 i;

	if (m->too_big) {
		m->verified = -1;
		snprintf(m->verify_error, sizeof(m->verify_error), "header section over %d bytes",
		    DKIMF_HEADER_MAX);
		return;
	}
	m->verified = 1;
	if (m->sigs_seen == 0)
		return;		/* unsigned: nothing to hash */
	if ((m->verify = dkim_verify(m->e->lib, (unsigned char *)m->id, NULL, &st)) == NULL) {
		m->verified = -1;
		snprintf(m->verify_error, sizeof(m->verify_error), "%s", dkim_getresultstr(st));
		return;
	}
	dkim_set_user_context(m->verify, m);
	/* A field the library refuses is simply not part of any signature. */
	for (i = 0; i < m->nhdrs; i++)
		if (m->hdrs[i].verify)
			(void)dkim_header(m->verify, (unsigned char *)m->arena + m->hdrs[i].off,
			    m->hdrs[i].len);
	st = dkim_eoh(m->verify);
	if (st == DKIM_STAT_OK) {
		msg_key_prepare(m);
		return;
	}
	if (st != DKIM_STAT_NOSIG) {
		m->verified = -1;
		snprintf(m->verify_error, sizeof(m->verify_error), "%s",
		    dkim_geterror(m->verify) != NULL && *dkim_geterror(m->verify) != '\0' ?
		    dkim_geterror(m->verify) : dkim_getresultstr(st));
	}
	dkim_free(m->verify);
	m->verify = NULL;
}

static void
msg_sign_start(struct dkimf_msg *m, const char *domain, struct dkimf_key *const *keys,
    size_t nkeys)
{
	struct dkimf_field	*f = NULL;
	size_t			 i, k;
	uint64_t		 t = m->e->fixed_time != 0 ? m->e->fixed_time :
	    (uint64_t)time(NULL);

	if (!m->too_big && (f = calloc(m->nhdrs + 1, sizeof(*f))) != NULL)
		for (i = 0; i < m->nhdrs; i++) {
			f[i].name = m->arena + m->hdrs[i].off;
			f[i].namelen = m->hdrs[i].namelen;
			f[i].value = m->arena + m->hdrs[i].off + m->hdrs[i].namelen + 2;
		}
	for (k = 0; k < nkeys && k < DKIMF_MAX_KEYS; k++) {
		m->sign_key[k] = keys[k];
		m->nsign = k + 1;
		if (m->too_big)
			snprintf(m->sign_error[k], sizeof(m->sign_error[k]),
			    "header section over %d bytes", DKIMF_HEADER_MAX);
		else if (m->e->nsign_headers == 0)
			snprintf(m->sign_error[k], sizeof(m->sign_error[k]),
			    "no header names to sign");
		else if (f == NULL || (m->sign[k] = dkimf_signer_new(keys[k], domain, t,
		    m->e->sign_headers, m->e->nsign_headers, f, m->nhdrs)) == NULL)
			snprintf(m->sign_error[k], sizeof(m->sign_error[k]), "out of memory");
	}
	free(f);
}

int
dkimf_msg_active(const struct dkimf_msg *m)
{
	return dkimf_msg_cost(m) > 0;
}

size_t
dkimf_msg_cost(const struct dkimf_msg *m)
{
	size_t	 n = 0, i;

	/* One body hash per verified signature at most, plus each signer. */
	if (m->verify != NULL)
		n += m->sigs_seen - m->sigs_skipped;
	for (i = 0; i < m->nsign; i++)
		n += m->sign[i] != NULL;
	return n;
}

/* --- Messages: body and end ------------------------------------------------- */

void
dkimf_msg_body(struct dkimf_msg *m, const unsigned char *chunk, size_t len)
{
	size_t	 i;

	if (len == 0)
		return;
	/* libopendkim takes u_char * but only reads the chunk. */
	if (m->verify != NULL && dkim_body(m->verify, (unsigned char *)chunk, len) !=
	    DKIM_STAT_OK) {
		m->verified = -1;
		snprintf(m->verify_error, sizeof(m->verify_error), "%s",
		    dkim_geterror(m->verify) != NULL ? dkim_geterror(m->verify) : "body error");
		dkim_free(m->verify);
		m->verify = NULL;
	}
	for (i = 0; i < m->nsign; i++)
		if (m->sign[i] != NULL)
			dkimf_signer_body(m->sign[i], chunk, len);
}

void
dkimf_msg_eom(struct dkimf_msg *m, dkimf_lookup_fn lookup, void *arg)
{
	size_t	 i;

	m->lookup = lookup;
	m->lookup_arg = arg;
	/* Verify first: what we add must not be what we check. */
	if (m->verify != NULL) {
		(void)dkim_eom(m->verify, NULL);
		msg_verify_collect(m);
		dkim_free(m->verify);
		m->verify = NULL;
	}
	for (i = 0; i < m->nsign; i++)
		if (m->sign[i] != NULL)
			msg_sign_finish(m, i);
	m->lookup = NULL;
	m->lookup_arg = NULL;
}

static void
msg_verify_collect(struct dkimf_msg *m)
{
	DKIM_SIGINFO	**sigs;
	int		 n, i;

	if (dkim_getsiglist(m->verify, &sigs, &n) != DKIM_STAT_OK || n <= 0)
		return;
	if ((m->results = calloc((size_t)n, sizeof(*m->results))) == NULL) {
		m->verified = -1;
		snprintf(m->verify_error, sizeof(m->verify_error), "out of memory");
		return;
	}
	for (i = 0; i < n; i++)
		if ((dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE) == 0)
			msg_sig_result(m, sigs[i], &m->results[m->nresults++]);
}

static void
msg_sig_result(struct dkimf_msg *m, DKIM_SIGINFO *sig, struct dkimf_sig_result *r)
{
	struct dkimf_sig_facts	 f;
	struct msg_key		*key = NULL;
	const char		*d, *s, *a;
	char			 name[300];
	dkim_alg_t		 alg = DKIM_SIGN_UNKNOWN;

	d = (const char *)dkim_sig_gettagvalue(sig, 0, (unsigned char *)"d");
	s = (const char *)dkim_sig_gettagvalue(sig, 0, (unsigned char *)"s");
	memset(&f, 0, sizeof(f));
	f.sigerr = dkim_sig_geterror(sig);
	f.flags = dkim_sig_getflags(sig);
	f.bh = dkim_sig_getbh(sig);
	if (dkim_sig_getsignalg(sig, &alg) == DKIM_STAT_OK)
		f.alg = alg;
	else
		f.alg = DKIM_SIGN_UNKNOWN;
	if (dkim_sig_getkeysize(sig, &f.keybits) != DKIM_STAT_OK)
		f.keybits = 0;
	f.min_key_bits = m->e->min_key_bits;
	a = (const char *)dkim_sig_gettagvalue(sig, 0, (unsigned char *)"a");
	if (dkimf_key_name(s, d, name, sizeof(name)) == 0 && (key = msg_key_find(m, name)) != NULL)
		f.lookup = key->answered ? key->status : DKIMF_LOOKUP_TEMP;
	if (key != NULL && key->status == DKIMF_LOOKUP_OK && !dkimf_key_type_matches(key->text, a))
		f.key_mismatch = 1;
	r->result = dkimf_result_map(&f, &r->reason);
	r->keybits = f.keybits;
	if (key != NULL && !key->answered)
		snprintf(r->why, sizeof(r->why), "not looked up");
	else if (key != NULL && key->status != DKIMF_LOOKUP_OK)
		snprintf(r->why, sizeof(r->why), "%s", key->why);
	dkimf_props_format(r->props, sizeof(r->props), d, s, a,
	    (const char *)dkim_sig_gettagvalue(sig, 0, (unsigned char *)"b"));
	if (d == NULL || dkimf_domain_normalize(d, strlen(d), r->domain, sizeof(r->domain)) == -1)
		r->domain[0] = '\0';
}

static void
msg_sign_finish(struct dkimf_msg *m, size_t i)
{
	m->signature[i] = dkimf_signer_finish(m->sign[i], m->sign_error[i],
	    sizeof(m->sign_error[i]));
	dkimf_signer_free(m->sign[i]);
	m->sign[i] = NULL;
}

/* --- Key lookups ------------------------------------------------------------ */

static struct msg_key *
msg_key_find(struct dkimf_msg *m, const char *name)
{
	size_t	 i;

	for (i = 0; i < m->nkeys; i++)
		if (strcasecmp(m->keys[i].name, name) == 0)
			return &m->keys[i];
	return NULL;
}

/* A new unanswered entry for name (or the existing one); NULL over the bound. */
static struct msg_key *
msg_key_add(struct dkimf_msg *m, const char *name)
{
	struct msg_key	*k;
	size_t		 max = m->e->max_signatures;

	if ((k = msg_key_find(m, name)) != NULL)
		return k;
	if (m->nkeys >= max)
		return NULL;
	if (m->keys == NULL && (m->keys = calloc(max, sizeof(*m->keys))) == NULL)
		return NULL;
	k = &m->keys[m->nkeys];
	memset(k, 0, sizeof(*k));
	if ((k->name = strdup(name)) == NULL)
		return NULL;
	m->nkeys++;
	return k;
}

/* At the end of the header section: the keys the signatures will want. */
static void
msg_key_prepare(struct dkimf_msg *m)
{
	DKIM_SIGINFO	**sigs;
	char		 name[300];
	int		 n, i;

	if (dkim_getsiglist(m->verify, &sigs, &n) != DKIM_STAT_OK)
		return;
	for (i = 0; i < n; i++)
		if (dkim_sig_geterror(sigs[i]) == DKIM_SIGERROR_UNKNOWN &&
		    dkimf_key_name((const char *)dkim_sig_getselector(sigs[i]),
		    (const char *)dkim_sig_getdomain(sigs[i]), name, sizeof(name)) == 0)
			(void)msg_key_add(m, name);
}

size_t
dkimf_msg_key_names(const struct dkimf_msg *m, const char **names, size_t max)
{
	size_t	 i, n = 0;

	for (i = 0; i < m->nkeys && n < max; i++)
		if (!m->keys[i].answered)
			names[n++] = m->keys[i].name;
	return n;
}

void
dkimf_msg_key_answer(struct dkimf_msg *m, const char *name, enum dkimf_lookup status,
    const char *text, const char *why)
{
	struct msg_key	*k = msg_key_find(m, name);

	if (k == NULL || k->answered)
		return;
	k->status = status;
	snprintf(k->why, sizeof(k->why), "%s", why != NULL ? why : "");
	if (status == DKIMF_LOOKUP_OK && (k->text = strdup(text)) == NULL) {
		k->status = DKIMF_LOOKUP_TEMP;
		snprintf(k->why, sizeof(k->why), "out of memory");
	}
	k->answered = 1;
}

/* The answer for name: prefetched, or asked now (blocking); NULL over the bound. */
static struct msg_key *
msg_key_fetch(struct dkimf_msg *m, const char *name)
{
	struct msg_key	*k;
	char		 buf[2048];

	if ((k = msg_key_add(m, name)) == NULL || k->answered)
		return k;
	if (m->lookup == NULL)
		return NULL;
	buf[0] = '\0';
	k->status = m->lookup(m->lookup_arg, name, buf, sizeof(buf), k->why, sizeof(k->why));
	if (k->status == DKIMF_LOOKUP_OK && (k->text = strdup(buf)) == NULL) {
		k->status = DKIMF_LOOKUP_TEMP;
		snprintf(k->why, sizeof(k->why), "out of memory");
	}
	k->answered = 1;
	return k;
}

/* libopendkim's key lookup callback, in the thread running dkim_eom(). */
static DKIM_CBSTAT
engine_key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, unsigned char *buf, size_t buflen)
{
	struct dkimf_msg	*m = dkim_get_user_context(dkim);
	struct msg_key		*k;
	char			 name[300];
	size_t			 len;

	if (m == NULL || dkimf_key_name((const char *)dkim_sig_getselector(sig),
	    (const char *)dkim_sig_getdomain(sig), name, sizeof(name)) == -1)
		return DKIM_CBSTAT_ERROR;
	if ((k = msg_key_fetch(m, name)) == NULL)
		return DKIM_CBSTAT_TRYAGAIN;
	switch (k->status) {
	case DKIMF_LOOKUP_OK:
		if ((len = strlen(k->text)) >= buflen) {
			k->status = DKIMF_LOOKUP_BAD;
			snprintf(k->why, sizeof(k->why), "key record of %zu bytes too long", len);
			return DKIM_CBSTAT_ERROR;
		}
		memcpy(buf, k->text, len + 1);
		return DKIM_CBSTAT_CONTINUE;
	case DKIMF_LOOKUP_NOTFOUND:
		return DKIM_CBSTAT_NOTFOUND;
	case DKIMF_LOOKUP_TEMP:
		return DKIM_CBSTAT_TRYAGAIN;
	default:
		return DKIM_CBSTAT_ERROR;
	}
}

/* --- Results ----------------------------------------------------------------- */

size_t
dkimf_msg_signatures_seen(const struct dkimf_msg *m)
{
	return m->sigs_seen;
}

size_t
dkimf_msg_signatures_skipped(const struct dkimf_msg *m)
{
	return m->sigs_skipped;
}

size_t
dkimf_msg_lookups(const struct dkimf_msg *m)
{
	size_t	 i, n = 0;

	for (i = 0; i < m->nkeys; i++)
		n += m->keys[i].answered;
	return n;
}

int
dkimf_msg_verified(const struct dkimf_msg *m)
{
	return m->verified;
}

const char *
dkimf_msg_verify_error(const struct dkimf_msg *m)
{
	return m->verify_error;
}

size_t
dkimf_msg_results(const struct dkimf_msg *m)
{
	return m->nresults;
}

const struct dkimf_sig_result *
dkimf_msg_result(const struct dkimf_msg *m, size_t index)
{
	return index < m->nresults ? &m->results[index] : NULL;
}

size_t
dkimf_msg_signing(const struct dkimf_msg *m)
{
	return m->nsign;
}

const char *
dkimf_msg_signature(const struct dkimf_msg *m, size_t index)
{
	return index < m->nsign ? m->signature[index] : NULL;
}

const char *
dkimf_msg_sign_error(const struct dkimf_msg *m, size_t index)
{
	return index < m->nsign ? m->sign_error[index] : "";
}

const struct dkimf_key *
dkimf_msg_sign_key(const struct dkimf_msg *m, size_t index)
{
	return index < m->nsign ? m->sign_key[index] : NULL;
}
