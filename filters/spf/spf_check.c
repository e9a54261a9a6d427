/*
 * spf_check.c - one SPF check through libspf2 with our DNS layer: the
 * per-thread SPF_server_t, the layer that asks the caller's resolver, the
 * void lookup limit and time budget, the result mapping and the guard
 * around libspf2's fatal errors.  See spf_check.h.
 *
 * libspf2's SPF_error() calls a handler and aborts when it returns; the
 * library calls it for broken assertions, for a DNS layer that returns
 * NULL (out of memory) and for some malformed records.  Our handler
 * jumps back to the check that was running on this thread: the check
 * then fails (the filter's on_error applies) and the request and
 * response are freed.  What libspf2 had allocated in the frames the jump
 * skips is lost: a bounded leak, on a path no well-formed input takes.
 * A failure while the thread's server was being set up abandons that
 * server rather than free something half-built.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "spf_check.h"
#include "spf_syntax.h"

#define SPF_LOOKUPS_MAX		200	/* questions per check, whatever libspf2 does */
#define SPF_HOSTS_MAX		32	/* MX and PTR targets remembered per check */
#define SPF_PTR_MAX		10	/* PTR names used (RFC 7208 4.6.4) */
#define SPF_TERMS_MAX		10	/* DNS-querying terms (RFC 7208 4.6.4) */

/* One thread's libspf2 state. */
struct spf_thread {
	SPF_server_t		*server;	/* NULL until set up */
	SPF_dns_server_t	 layer;		/* our DNS layer, below server */
	char			*receiver;	/* rec_dom the server has */
	char			*explanation;	/* explanation the server has */
	jmp_buf			 jump;		/* where SPF_error() goes */
	volatile int		 armed;		/* jump is valid */
	char			 fatal[SPF_CHECK_TEXT_MAX];	/* SPF_error's text */
};

/* One check's state, in layer.hook while it runs. */
struct spf_run {
	const struct spf_check_params *params;	/* what to check */
	struct timespec		 deadline;	/* CLOCK_MONOTONIC */
	unsigned int		 lookups;	/* questions asked */
	unsigned int		 void_lookups;	/* void answers counted */
	unsigned int		 terms;		/* DNS-querying terms seen (4.6.4) */
	unsigned int		 records;	/* SPF records asked for (get_spf) */
	int			 overridden;	/* the result is decided below */
	enum spf_outcome	 override;	/* temperror or permerror */
	char			 why[SPF_CHECK_TEXT_MAX];	/* the reason for it */
	char			*hosts[SPF_HOSTS_MAX];	/* MX/PTR targets seen */
	size_t			 nhosts;	/* entries used */
	size_t			 next_host;	/* ring position */
	int			 in_setup;	/* 1 while the server is set up */
	SPF_request_t		*request;	/* the request, or NULL */
	SPF_response_t		*response;	/* the response, or NULL */
	SPF_record_t		*record;	/* the record being evaluated, or NULL */
};

static void	 spf_key_create(void);
static void	 spf_thread_destroy(void *);
static struct spf_thread *spf_thread_get(void);
static void	 spf_error_handler(const char *, int, const char *)
		    __attribute__((noreturn));
static SPF_dns_rr_t *spf_dns_lookup(SPF_dns_server_t *, const char *, ns_type, int);
static int	 spf_dns_type(ns_type, enum sluice_dns_type *);
static int	 spf_dns_name_ok(const char *);
static int	 spf_rr_add(SPF_dns_rr_t *, int, ns_type, const struct sluice_dns_record *,
		    int);
static int	 spf_text_plain(const char *, size_t);
static int	 spf_is_record(const char *, size_t);
static char	*spf_macro_spaces(const char *, size_t, size_t *);
static int	 spf_run_time_left(struct spf_run *);
static void	 spf_run_note(struct spf_run *, enum sluice_dns_type, const char *,
		    const struct sluice_dns_answer *);
static void	 spf_run_remember(struct spf_run *, const char *);
static void	 spf_run_override(struct spf_run *, enum spf_outcome, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static SPF_errcode_t spf_dns_get_spf(SPF_server_t *, SPF_request_t *, SPF_response_t *,
		    SPF_record_t **);
static SPF_errcode_t spf_get_spf_fail(SPF_response_t *, struct spf_run *, SPF_result_t,
		    SPF_errcode_t, const char *, const char *);
static const char *spf_dns_name_cut(const char *);
static int	 spf_run_known_host(const struct spf_run *, const char *);
static void	 spf_run_free(struct spf_run *);
static int	 spf_setup_identity(const struct spf_check_params *, struct spf_check_result *);
static int	 spf_guarded_check(struct spf_thread *, struct spf_run *, struct spf_check_result *);
static int	 spf_server_prepare(struct spf_thread *, const struct spf_check_params *);
static int	 spf_server_set(struct spf_thread *, const char *, const char *);
static SPF_errcode_t spf_query(SPF_server_t *, struct spf_run *);
static void	 spf_result_collect(struct spf_run *, struct spf_check_result *);
static void	 spf_copy(char *, size_t, const char *);

static pthread_once_t	 spf_once = PTHREAD_ONCE_INIT;
static pthread_key_t	 spf_key;

static void
spf_key_create(void)
{
	if (pthread_key_create(&spf_key, spf_thread_destroy) != 0)
		abort();	/* start-up: out of keys */
}

void
spf_check_setup(void)
{
	pthread_once(&spf_once, spf_key_create);
	SPF_error_handler = spf_error_handler;
	SPF_warning_handler = NULL;	/* record warnings end up in the response */
	SPF_info_handler = NULL;
	SPF_debug_handler = NULL;
}

/* Thread exit: free what the thread's checks built. */
static void
spf_thread_destroy(void *arg)
{
	struct spf_thread	*t = arg;

	if (t == NULL)
		return;
	if (t->server != NULL)
		SPF_server_free(t->server);
	free(t->receiver);
	free(t->explanation);
	free(t);
}

void
spf_check_thread_free(void)
{
	pthread_once(&spf_once, spf_key_create);
	spf_thread_destroy(pthread_getspecific(spf_key));
	pthread_setspecific(spf_key, NULL);
}

static struct spf_thread *
spf_thread_get(void)
{
	struct spf_thread	*t;

	pthread_once(&spf_once, spf_key_create);
	if ((t = pthread_getspecific(spf_key)) != NULL)
		return t;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->layer.lookup = spf_dns_lookup;
	t->layer.get_spf = spf_dns_get_spf;
	t->layer.destroy = NULL;	/* part of t, never freed by libspf2 */
	t->layer.name = "sluice";
	if (pthread_setspecific(spf_key, t) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

/* SPF_error(): back to the check running on this thread, else abort. */
static void
spf_error_handler(const char *file, int line, const char *msg)
{
	struct spf_thread	*t = pthread_getspecific(spf_key);

	if (t != NULL && t->armed) {
		t->armed = 0;
		snprintf(t->fatal, sizeof(t->fatal), "libspf2 internal error: %s (%s:%d)",
		    msg != NULL ? msg : "?", file != NULL ? file : "?", line);
		longjmp(t->jump, 1);
	}
	fprintf(stderr, "libspf2 fatal error outside an SPF check: %s (%s:%d)\n",
	    msg != NULL ? msg : "?", file != NULL ? file : "?", line);
	abort();
}

int
spf_check_explanation_valid(const char *text, char *err, size_t errlen)
{
	SPF_server_t	*server;
	SPF_response_t	*response = NULL;
	SPF_dns_server_t layer;
	SPF_errcode_t	 e;
	char		*escaped;
	size_t		 len;

	memset(&layer, 0, sizeof(layer));
	layer.lookup = spf_dns_lookup;
	layer.name = "check";
	if (text == NULL || strlen(text) > 400)
		return snprintf(err, errlen, "explanation must be at most 400 bytes"), -1;
	if (spf_syntax_explanation(text, err, errlen) == -1)
		return -1;
	if ((escaped = spf_macro_spaces(text, strlen(text), &len)) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	if ((server = SPF_server_new_dns(&layer, 0)) == NULL) {
		free(escaped);
		return snprintf(err, errlen, "out of memory"), -1;
	}
	e = SPF_server_set_explanation(server, escaped, &response);
	free(escaped);
	if (response != NULL)
		SPF_response_free(response);
	SPF_server_free(server);
	if (e != SPF_E_SUCCESS)
		return snprintf(err, errlen, "explanation is not a valid SPF macro-string: "
		    "%s", SPF_strerror(e)), -1;
	return 0;
}

enum spf_outcome
spf_check_outcome(SPF_result_t result, SPF_errcode_t error, int *failed)
{
	*failed = 0;
	switch (result) {
	case SPF_RESULT_PASS:
		return SPF_OUTCOME_PASS;
	case SPF_RESULT_FAIL:
		return SPF_OUTCOME_FAIL;
	case SPF_RESULT_SOFTFAIL:
		return SPF_OUTCOME_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:
		return SPF_OUTCOME_NEUTRAL;
	case SPF_RESULT_NONE:
		return SPF_OUTCOME_NONE;
	case SPF_RESULT_TEMPERROR:
		return SPF_OUTCOME_TEMPERROR;
	case SPF_RESULT_PERMERROR:
		return SPF_OUTCOME_PERMERROR;
	case SPF_RESULT_INVALID:
	default:
		break;
	}
	/* INVALID: libspf2 could not get or compile the record. */
	if (error == SPF_E_NO_MEMORY || error == SPF_E_INTERNAL_ERROR) {
		*failed = 1;
		return SPF_OUTCOME_TEMPERROR;
	}
	return error == SPF_E_DNS_ERROR ? SPF_OUTCOME_TEMPERROR : SPF_OUTCOME_PERMERROR;
}

/* --- The DNS layer --------------------------------------------------------- */

static int
spf_dns_type(ns_type type, enum sluice_dns_type *out)
{
	switch ((int)type) {
	case ns_t_a:
		*out = SLUICE_DNS_A;
		return 1;
	case ns_t_aaaa:
		*out = SLUICE_DNS_AAAA;
		return 1;
	case ns_t_mx:
		*out = SLUICE_DNS_MX;
		return 1;
	case ns_t_ptr:
		*out = SLUICE_DNS_PTR;
		return 1;
	case ns_t_txt:
		*out = SLUICE_DNS_TXT;
		return 1;
	default:
		return 0;	/* SPF (99) and anything else: not asked */
	}
}

/* A name DNS can hold: labels of 1..63 bytes, 253 in all, no controls or space. */
static int
spf_dns_name_ok(const char *name)
{
	size_t	 len = strlen(name), label = 0, i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > SPF_DOMAIN_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char	 ch = (unsigned char)name[i];

		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (ch <= ' ' || ch == 0x7f || ++label > 63)
			return 0;
	}
	return label > 0;
}

/*
 * RFC 7208 7.3: a macro-expanded name longer than 253 bytes loses labels
 * on the left until it fits.  Returns a pointer into name.
 */
static const char *
spf_dns_name_cut(const char *name)
{
	size_t	 len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		len--;
	while (len > SPF_DOMAIN_MAX) {
		const char	*dot = strchr(name, '.');

		if (dot == NULL)
			break;
		len -= (size_t)(dot + 1 - name);
		name = dot + 1;
	}
	return name;
}

static SPF_dns_rr_t *
spf_dns_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type, int should_cache)
{
	struct spf_run		*run = layer->hook;
	const struct spf_resolver *r;
	struct sluice_dns_answer *a;
	enum sluice_dns_type	 qtype;
	SPF_dns_rr_t		*rr;
	const char		*name;

	if (run == NULL || domain == NULL)
		return SPF_dns_rr_new_init(layer, domain, type, 0, TRY_AGAIN);
	if (!spf_dns_type(type, &qtype))
		return SPF_dns_rr_new_init(layer, domain, type, 0, NO_DATA);
	if (run->overridden)	/* the result is decided already: stop asking */
		return SPF_dns_rr_new_init(layer, domain, type, 0,
		    run->override == SPF_OUTCOME_TEMPERROR ? TRY_AGAIN : HOST_NOT_FOUND);
	name = spf_dns_name_cut(domain);
	if (!spf_dns_name_ok(name))
		return SPF_dns_rr_new_init(layer, domain, type, 0, HOST_NOT_FOUND);
	if (!spf_run_time_left(run) || run->lookups >= SPF_LOOKUPS_MAX) {
		spf_run_override(run, SPF_OUTCOME_TEMPERROR, "SPF check took longer than "
		    "%lldms or %d DNS questions", run->params->max_ms, SPF_LOOKUPS_MAX);
		return SPF_dns_rr_new_init(layer, domain, type, 0, TRY_AGAIN);
	}
	r = run->params->resolver;
	run->lookups++;
	a = r->lookup(r->arg, name, qtype);
	if (a == NULL)
		return SPF_dns_rr_new_init(layer, domain, type, 0, TRY_AGAIN);
	rr = spf_check_rr_from_answer(layer, domain, type, a);
	spf_run_note(run, qtype, name, a);
	r->answer_free(r->arg, a);
	return rr;	/* NULL (out of memory) makes libspf2 call SPF_error() */
}

/*
 * SPF_server_get_record(), which libspf2 hands to the layer when it has a
 * get_spf: the record of req->cur_dom for the check, an include or a
 * redirect.  Ours asks TXT only (RFC 7208 3.1), counts include and
 * redirect as terms (libspf2 counts per record, not across them), checks
 * the grammar strictly, and refuses a record libspf2 compiled only in
 * part: past 511 bytes of compiled mechanisms or modifiers it drops the
 * rest without a word, which would turn "-all" into neutral.
 */
static SPF_errcode_t
spf_dns_get_spf(SPF_server_t *server, SPF_request_t *req, SPF_response_t *resp,
    SPF_record_t **recordp)
{
	struct spf_run		*run = server->resolver->hook;
	struct spf_syntax_counts counts;
	const char		*domain = req->cur_dom, *text = NULL;
	SPF_dns_rr_t		*rr;
	SPF_errcode_t		 e;
	char			 err[160];
	int			 i, n = 0, herrno;

	*recordp = NULL;
	if (run != NULL && run->records++ > 0 && ++run->terms > SPF_TERMS_MAX)
		spf_run_override(run, SPF_OUTCOME_PERMERROR, "more than %d DNS-querying "
		    "terms (RFC 7208 4.6.4)", SPF_TERMS_MAX);
	rr = SPF_dns_lookup(server->resolver, domain, ns_t_txt, 1);
	if ((herrno = rr->herrno) == NETDB_SUCCESS)
		for (i = 0; i < rr->num_rr; i++)
			if (spf_is_record(rr->rr[i]->txt, strlen(rr->rr[i]->txt))) {
				text = rr->rr[i]->txt;
				n++;
			}
	if (herrno == TRY_AGAIN) {
		SPF_dns_rr_free(rr);
		return spf_get_spf_fail(resp, NULL, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR,
		    "temporary DNS failure for", domain);
	}
	if (herrno != NETDB_SUCCESS || n == 0) {
		SPF_dns_rr_free(rr);
		return spf_get_spf_fail(resp, NULL, SPF_RESULT_NONE, SPF_E_NOT_SPF,
		    "no SPF record for", domain);
	}
	if (n > 1) {
		SPF_dns_rr_free(rr);
		return spf_get_spf_fail(resp, NULL, SPF_RESULT_PERMERROR,
		    SPF_E_MULTIPLE_RECORDS, "more than one SPF record for", domain);
	}
	if (spf_syntax_check(text, strlen(text), &counts, err, sizeof(err)) == -1) {
		SPF_dns_rr_free(rr);
		if (run != NULL)
			spf_run_override(run, SPF_OUTCOME_PERMERROR, "SPF record of %s: %s",
			    domain, err);
		return spf_get_spf_fail(resp, NULL, SPF_RESULT_PERMERROR, SPF_E_SYNTAX,
		    "syntax error in the SPF record of", domain);
	}
	e = SPF_record_compile(server, resp, recordp, text);
	SPF_dns_rr_free(rr);
	if (e != SPF_E_SUCCESS)
		return SPF_response_add_error(resp, SPF_E_NOT_SPF,
		    "Failed to compile SPF record for '%s'", domain);
	if ((*recordp)->num_mech != counts.mechanisms || (*recordp)->num_mod !=
	    counts.modifiers) {
		SPF_record_free(*recordp);
		*recordp = NULL;
		return spf_get_spf_fail(resp, run, SPF_RESULT_PERMERROR, SPF_E_BIG_MECH,
		    "SPF record too large for libspf2:", domain);
	}
	return SPF_E_SUCCESS;
}

/* A failed record lookup: the response's result and an error (code returned). */
static SPF_errcode_t
spf_get_spf_fail(SPF_response_t *resp, struct spf_run *run, SPF_result_t result,
    SPF_errcode_t code, const char *what, const char *domain)
{
	resp->result = result;
	resp->reason = SPF_REASON_FAILURE;
	if (run != NULL)
		spf_run_override(run, SPF_OUTCOME_PERMERROR, "%s %s", what, domain);
	return SPF_response_add_error(resp, code, "%s %s", what, domain);
}

SPF_dns_rr_t *
spf_check_rr_from_answer(SPF_dns_server_t *layer, const char *domain, ns_type type,
    const struct sluice_dns_answer *answer)
{
	SPF_dns_rr_t	*rr;
	SPF_dns_stat_t	 herrno;
	size_t		 i;
	int		 n = 0;

	switch (answer->status) {
	case SLUICE_DNS_OK:
		herrno = NETDB_SUCCESS;
		break;
	case SLUICE_DNS_NODATA:
		herrno = NO_DATA;
		break;
	case SLUICE_DNS_NXDOMAIN:
		herrno = HOST_NOT_FOUND;
		break;
	default:
		herrno = TRY_AGAIN;
		break;
	}
	if ((rr = SPF_dns_rr_new_init(layer, domain, type, 0, herrno)) == NULL)
		return NULL;
	if (herrno != NETDB_SUCCESS)
		return rr;
	for (i = 0; i < answer->count && n < ((int)type == ns_t_ptr ? SPF_PTR_MAX : 1000);
	    i++) {
		switch (spf_rr_add(rr, n, type, &answer->records[i], answer->count == 1)) {
		case 1:
			n++;
			break;
		case -1:
			SPF_dns_rr_free(rr);
			return NULL;
		default:
			break;	/* unusable record: left out */
		}
	}
	rr->num_rr = n;
	if (n == 0)	/* libspf2 reads "success, no records" badly */
		rr->herrno = NO_DATA;
	if (answer->count > 0)
		rr->ttl = answer->records[0].ttl;
	return rr;
}

/*
 * Record rec as rr->rr[idx]: 1 added, 0 left out, -1 out of memory.  A
 * TXT text that is no SPF record matters to libspf2 only as an exp=
 * explanation, which RFC 7208 6.2 wants ignored when the answer holds
 * more than one record or the text is not plain ASCII: such texts are
 * left out (lone is 1 when the answer holds only rec).
 */
static int
spf_rr_add(SPF_dns_rr_t *rr, int idx, ns_type type, const struct sluice_dns_record *rec,
    int lone)
{
	struct in_addr	 a4;
	struct in6_addr	 a6;
	size_t		 len = rec->text != NULL ? rec->len : 0, i;
	char		*text;

	if (rec->text == NULL)
		return 0;
	switch ((int)type) {
	case ns_t_a:
		if (inet_pton(AF_INET, rec->text, &a4) != 1)
			return 0;
		if (SPF_dns_rr_buf_realloc(rr, idx, sizeof(SPF_dns_rr_data_t)) != SPF_E_SUCCESS)
			return -1;
		rr->rr[idx]->a = a4;
		return 1;
	case ns_t_aaaa:
		if (inet_pton(AF_INET6, rec->text, &a6) != 1)
			return 0;
		if (SPF_dns_rr_buf_realloc(rr, idx, sizeof(SPF_dns_rr_data_t)) != SPF_E_SUCCESS)
			return -1;
		rr->rr[idx]->aaaa = a6;
		return 1;
	case ns_t_mx:
	case ns_t_ptr:
		if (memchr(rec->text, '\0', len) != NULL || !spf_dns_name_ok(rec->text))
			return 0;
		if (SPF_dns_rr_buf_realloc(rr, idx, len + 1) != SPF_E_SUCCESS)
			return -1;
		memcpy(rr->rr[idx]->txt, rec->text, len + 1);
		return 1;
	case ns_t_txt:
		if (spf_is_record(rec->text, len)) {
			if (SPF_dns_rr_buf_realloc(rr, idx, len + 1) != SPF_E_SUCCESS)
				return -1;
			/* A NUL would end the text early and hide what follows. */
			for (i = 0; i < len; i++)
				rr->rr[idx]->txt[i] = rec->text[i] != '\0' ? rec->text[i] : 0x7f;
			rr->rr[idx]->txt[len] = '\0';
			return 1;
		}
		if (!lone || !spf_text_plain(rec->text, len))
			return 0;
		if ((text = spf_macro_spaces(rec->text, len, &len)) == NULL ||
		    SPF_dns_rr_buf_realloc(rr, idx, len + 1) != SPF_E_SUCCESS) {
			free(text);
			return -1;
		}
		memcpy(rr->rr[idx]->txt, text, len + 1);
		free(text);
		return 1;
	default:
		return 0;
	}
}

/* Printable ASCII only. */
static int
spf_text_plain(const char *text, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
			return 0;
	return 1;
}

/* Whether a TXT text is an SPF record: "v=spf1", then a space or the end. */
static int
spf_is_record(const char *text, size_t len)
{
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 && (len == 6 || text[6] == ' ');
}

/*
 * libspf2 compiles macro-strings (explanations: exp= TXT records and the
 * default) as if a space ended them: a space comes out as '%' and the
 * macros after it stay unexpanded.  "%_" is a space in a macro-string
 * (RFC 7208 7.1), so every space outside a %-escape becomes "%_", which
 * libspf2 reads right.  NUL becomes DEL, as for records.  Returns a
 * string the caller frees, its length in *outlen, or NULL.
 */
static char *
spf_macro_spaces(const char *text, size_t len, size_t *outlen)
{
	char	*out;
	size_t	 i, n = 0;

	if ((out = malloc(len * 2 + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (text[i] == '%' && i + 1 < len && text[i + 1] != ' ') {
			out[n++] = text[i++];
			out[n++] = text[i];
		} else if (text[i] == ' ') {
			out[n++] = '%';
			out[n++] = '_';
		} else
			out[n++] = text[i] != '\0' ? text[i] : 0x7f;
	}
	out[n] = '\0';
	*outlen = n;
	return out;
}

/* --- Per-check DNS accounting ---------------------------------------------- */

static int
spf_run_time_left(struct spf_run *run)
{
	struct timespec	 now;

	if (run->params->max_ms <= 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec < run->deadline.tv_sec || (now.tv_sec == run->deadline.tv_sec &&
	    now.tv_nsec < run->deadline.tv_nsec);
}

/* The first limit or syntax error decides the result; later ones do not. */
static void
spf_run_override(struct spf_run *run, enum spf_outcome outcome, const char *fmt, ...)
{
	va_list	 ap;

	if (run->overridden)
		return;
	run->overridden = 1;
	run->override = outcome;
	va_start(ap, fmt);
	vsnprintf(run->why, sizeof(run->why), fmt, ap);
	va_end(ap);
}

/*
 * Count what RFC 7208 4.6.4 limits.  Terms that query DNS: an MX or PTR
 * question, an address question that is not for an MX or PTR target
 * (those belong to their mx or ptr term), and a TXT question after the
 * first that finds an SPF record (include, redirect: an exp= text is no
 * SPF record, and a target without one is a permerror anyway).  Void
 * lookups: an empty answer or NXDOMAIN for such a term; TXT questions do
 * not count (exp= must not, 6.2).
 */
static void
spf_run_note(struct spf_run *run, enum sluice_dns_type type, const char *name,
    const struct sluice_dns_answer *a)
{
	size_t	 i;
	int	 empty, target;

	target = (type == SLUICE_DNS_A || type == SLUICE_DNS_AAAA) &&
	    spf_run_known_host(run, name);
	if (type != SLUICE_DNS_TXT && !target && ++run->terms > SPF_TERMS_MAX)
		spf_run_override(run, SPF_OUTCOME_PERMERROR, "more than %d DNS-querying "
		    "terms (RFC 7208 4.6.4)", SPF_TERMS_MAX);
	if ((type == SLUICE_DNS_MX || type == SLUICE_DNS_PTR) && a->status == SLUICE_DNS_OK)
		for (i = 0; i < a->count; i++)
			if (a->records[i].text != NULL)
				spf_run_remember(run, a->records[i].text);
	empty = a->status == SLUICE_DNS_NXDOMAIN || a->status == SLUICE_DNS_NODATA ||
	    (a->status == SLUICE_DNS_OK && a->count == 0);
	if (!empty || type == SLUICE_DNS_TXT || target)
		return;
	run->void_lookups++;
	if (run->params->max_void > 0 && run->void_lookups > run->params->max_void)
		spf_run_override(run, SPF_OUTCOME_PERMERROR, "more than %u void DNS lookups "
		    "(RFC 7208 4.6.4)", run->params->max_void);
}

static void
spf_run_remember(struct spf_run *run, const char *host)
{
	char	*copy;

	if (spf_run_known_host(run, host) || (copy = strdup(host)) == NULL)
		return;
	free(run->hosts[run->next_host]);
	run->hosts[run->next_host] = copy;
	run->next_host = (run->next_host + 1) % SPF_HOSTS_MAX;
	if (run->nhosts < SPF_HOSTS_MAX)
		run->nhosts++;
}

static int
spf_run_known_host(const struct spf_run *run, const char *host)
{
	size_t	 hlen = strlen(host), i;

	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	for (i = 0; i < run->nhosts; i++) {
		const char	*h = run->hosts[i];
		size_t		 len = strlen(h);

		if (len > 0 && h[len - 1] == '.')
			len--;
		if (len == hlen && strncasecmp(h, host, len) == 0)
			return 1;
	}
	return 0;
}

static void
spf_run_free(struct spf_run *run)
{
	size_t	 i;

	for (i = 0; i < SPF_HOSTS_MAX; i++)
		free(run->hosts[i]);
	if (run->record != NULL)
		SPF_record_free(run->record);
	if (run->response != NULL)
		SPF_response_free(run->response);
	if (run->request != NULL)
		SPF_request_free(run->request);
	run->response = NULL;
	run->request = NULL;
	run->record = NULL;
}

/* --- The check --------------------------------------------------------------- */

static void
spf_copy(char *out, size_t outlen, const char *s)
{
	snprintf(out, outlen, "%s", s != NULL ? s : "");
}

/* The domain and <sender> of the identity; 0, or -1 when nothing to check. */
static int
spf_setup_identity(const struct spf_check_params *p, struct spf_check_result *res)
{
	const char	*helo = p->helo != NULL ? p->helo : "";
	const char	*sender = p->sender != NULL ? p->sender : "";

	if (p->identity == SPF_IDENTITY_HELO || sender[0] == '\0') {
		/* RFC 7208 2.3, 2.4: HELO, and MAIL FROM:<>, check postmaster@helo. */
		spf_copy(res->domain, sizeof(res->domain), helo);
		snprintf(res->sender, sizeof(res->sender), "postmaster@%s", helo);
	} else {
		spf_copy(res->domain, sizeof(res->domain), spf_sender_domain(sender));
		if (strlen(sender) >= sizeof(res->sender) || sender[0] == '@' ||
		    strchr(sender, '@') == NULL)	/* RFC 7208 4.3: no local-part */
			snprintf(res->sender, sizeof(res->sender), "postmaster@%s",
			    res->domain);
		else
			spf_copy(res->sender, sizeof(res->sender), sender);
	}
	if (!spf_domain_valid(res->domain) || strlen(res->domain) >= sizeof(res->domain) - 1) {
		res->outcome = SPF_OUTCOME_NONE;
		spf_copy(res->reason, sizeof(res->reason), "no domain to check (RFC 7208 4.3)");
		return -1;
	}
	return 0;
}

void
spf_check_run(const struct spf_check_params *p, struct spf_check_result *res)
{
	struct spf_thread	*t;
	struct spf_run		 run;
	char			 ip[INET6_ADDRSTRLEN];

	memset(res, 0, sizeof(*res));
	res->spf_result = -1;
	res->outcome = SPF_OUTCOME_NONE;
	if (spf_setup_identity(p, res) == -1)
		return;
	if (spf_ip_normalize(p->ip, ip, sizeof(ip)) == -1) {
		res->failed = 1;
		spf_copy(res->reason, sizeof(res->reason), "client address is not an IP address");
		return;
	}
	if ((t = spf_thread_get()) == NULL) {
		res->failed = 1;
		spf_copy(res->reason, sizeof(res->reason), "out of memory");
		return;
	}
	memset(&run, 0, sizeof(run));
	run.params = p;
	clock_gettime(CLOCK_MONOTONIC, &run.deadline);
	run.deadline.tv_sec += p->max_ms / 1000;
	run.deadline.tv_nsec += (p->max_ms % 1000) * 1000000L;
	if (run.deadline.tv_nsec >= 1000000000L) {
		run.deadline.tv_sec++;
		run.deadline.tv_nsec -= 1000000000L;
	}
	if (spf_guarded_check(t, &run, res) == -1) {
		res->failed = 1;
		spf_copy(res->reason, sizeof(res->reason), t->fatal);
		if (run.in_setup)	/* half-built: abandon, never free */
			t->server = NULL;
	} else if (!res->failed)
		spf_result_collect(&run, res);
	t->layer.hook = NULL;
	res->lookups = run.lookups;
	res->void_lookups = run.void_lookups;
	spf_run_free(&run);
}

/* The libspf2 part, under the SPF_error() guard: 0, or -1 after a jump. */
static int
spf_guarded_check(struct spf_thread *t, struct spf_run *run, struct spf_check_result *res)
{
	const struct spf_check_params *p = run->params;
	char			 ip[INET6_ADDRSTRLEN];
	SPF_errcode_t		 e;
	int			 family;

	if (setjmp(t->jump) != 0)
		return -1;
	t->armed = 1;
	t->layer.hook = run;
	run->in_setup = 1;
	if (spf_server_prepare(t, p) == -1) {
		t->armed = 0;
		res->failed = 1;
		spf_copy(res->reason, sizeof(res->reason), "cannot set up libspf2");
		return 0;
	}
	run->in_setup = 0;
	family = spf_ip_normalize(p->ip, ip, sizeof(ip));
	if ((run->request = SPF_request_new(t->server)) == NULL)
		e = SPF_E_NO_MEMORY;
	else if ((e = family == AF_INET ? SPF_request_set_ipv4_str(run->request, ip) :
	    SPF_request_set_ipv6_str(run->request, ip)) == SPF_E_SUCCESS &&
	    (p->helo == NULL || (e = SPF_request_set_helo_dom(run->request, p->helo)) ==
	    SPF_E_SUCCESS) &&
	    (e = SPF_request_set_env_from(run->request, res->sender)) == SPF_E_SUCCESS)
		e = spf_query(t->server, run);
	t->armed = 0;
	if (run->response == NULL) {
		res->failed = 1;
		snprintf(res->reason, sizeof(res->reason), "libspf2: %s", SPF_strerror(e));
	}
	return 0;
}

/* The thread's server, with this check's receiver and explanation. */
static int
spf_server_prepare(struct spf_thread *t, const struct spf_check_params *p)
{
	if (t->server == NULL) {
		free(t->receiver);
		free(t->explanation);
		t->receiver = t->explanation = NULL;
		if ((t->server = SPF_server_new_dns(&t->layer, 0)) == NULL)
			return -1;
		SPF_server_set_sanitize(t->server, 1);
	}
	return spf_server_set(t, p->receiver != NULL ? p->receiver : "localhost",
	    p->explanation);
}

static int
spf_server_set(struct spf_thread *t, const char *receiver, const char *explanation)
{
	SPF_response_t	*response = NULL;
	SPF_errcode_t	 e;
	char		*escaped;
	size_t		 len;

	if (t->receiver == NULL || strcmp(t->receiver, receiver) != 0) {
		free(t->receiver);
		if ((t->receiver = strdup(receiver)) == NULL ||
		    SPF_server_set_rec_dom(t->server, receiver) != SPF_E_SUCCESS)
			return -1;
	}
	if (explanation != NULL && (t->explanation == NULL ||
	    strcmp(t->explanation, explanation) != 0)) {
		free(t->explanation);
		t->explanation = NULL;
		if ((escaped = spf_macro_spaces(explanation, strlen(explanation), &len)) == NULL)
			return -1;
		e = SPF_server_set_explanation(t->server, escaped, &response);
		free(escaped);
		if (response != NULL)
			SPF_response_free(response);
		if (e != SPF_E_SUCCESS || (t->explanation = strdup(explanation)) == NULL)
			return -1;
	}
	return 0;
}

/*
 * SPF_request_query_mailfrom() without its "localhost always passes":
 * whether loopback clients are checked is skip_networks' business.
 */
static SPF_errcode_t
spf_query(SPF_server_t *server, struct spf_run *run)
{
	SPF_request_t	*req = run->request;
	SPF_response_t	*resp;
	SPF_record_t	*record = NULL;
	SPF_errcode_t	 e;

	if ((run->response = resp = SPF_response_new(req)) == NULL)
		return SPF_E_NO_MEMORY;
	req->use_helo = 0;	/* env_from is postmaster@helo for HELO checks */
	req->cur_dom = req->env_from_dp;
	e = SPF_server_get_record(server, req, resp, &record);
	if (e != SPF_E_SUCCESS) {
		if (record != NULL)
			SPF_record_free(record);
		/* libspf2 passes resp->err, which get_record never sets. */
		SPF_i_done(resp, resp->result, resp->reason, e);
		return e;
	}
	resp->spf_record_exp = run->record = record;	/* freed after a jump too */
	e = SPF_record_interpret(record, req, resp, 0);
	SPF_record_free(record);
	resp->spf_record_exp = run->record = NULL;
	return e;
}

/* Turn the response (and our limits) into the result. */
static void
spf_result_collect(struct spf_run *run, struct spf_check_result *res)
{
	SPF_response_t	*resp = run->response;
	SPF_error_t	*msg;
	const char	*text = NULL;
	int		 i, n;

	res->spf_result = (int)SPF_response_result(resp);
	res->spf_error = (int)SPF_response_errcode(resp);
	res->outcome = spf_check_outcome(SPF_response_result(resp),
	    SPF_response_errcode(resp), &res->failed);
	n = SPF_response_messages(resp);
	for (i = 0; i < n && text == NULL; i++)
		if ((msg = SPF_response_message(resp, i)) != NULL && SPF_error_errorp(msg))
			text = SPF_error_message(msg);
	if (text == NULL)
		text = SPF_response_get_header_comment(resp);
	if (text == NULL)
		text = SPF_strerror(SPF_response_errcode(resp));
	spf_copy(res->reason, sizeof(res->reason), text);
	if (res->outcome == SPF_OUTCOME_FAIL && SPF_response_get_explanation(resp) != NULL)
		spf_copy(res->explanation, sizeof(res->explanation),
		    SPF_response_get_explanation(resp));
	if (run->overridden) {
		res->failed = 0;
		res->outcome = run->override;
		spf_copy(res->reason, sizeof(res->reason), run->why);
	}
	if (res->outcome != SPF_OUTCOME_FAIL)
		res->explanation[0] = '\0';
}
