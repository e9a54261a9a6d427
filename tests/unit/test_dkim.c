/*
 * test_dkim.c - unit tests for the dkim filter: filters/dkim/dkim_policy.c
 * (result mapping and folding, verdict names, the From domain, key names,
 * A-R properties, TXT record choice), filters/dkim/dkim_engine.c (keys,
 * signing and verifying through the real libopendkim with a table for
 * DNS: rsa-sha256, ed25519-sha256, rsa-sha1, small keys, tampering, broken
 * and missing keys, 100 signatures, a 100 KB field, bodies fed 1..n bytes
 * at a time) and filters/dkim/dkim.c (option checks at init, and the hooks
 * driven through a fake of the filter API whose pool runs when the test
 * says, so PENDING, orphaned jobs and timeouts can be staged).
 *
 * The keys below are test keys made for this file with openssl; nothing
 * trusts them.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <dkim.h>

#include "dkim/dkim_engine.h"
#include "dkim/dkim_policy.h"
#include "sluice_filter.h"

extern const struct sluice_module sluice_builtin_dkim;

/* --- Test keys ------------------------------------------------------------ */

static const char rsa1024_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBAPUuwznZ5YFGW9Gx\n"
	"X7q6b8Vg+iDAX20PO6SWrnKw5NqCsUXERRq3J1eSJ+TmJpBb5hqBcwCbess7dCF+\n"
	"sHPVYoRGkbdIHrzX6o/cCFylYHVhOV7iK4mLqA3+xLJQyKeH2wWeGF+nsNT7uNdS\n"
	"XVDAD0ABk8y/Wffp0hOuxS2nr09BAgMBAAECgYEA9PkhNMdC6bSr/0tTU9X94V+w\n"
	"61JqxiQHOr8XVB7sumsExqmBRl0joPq2g511gJ1hvrACgOPYgAFKWkEj+siE4aKU\n"
	"B8cg1qdTbddVGXHuVDVx3pZeGI00GPJPtOKVUytcjaOoNCEGPAaXuweHCBk2OjkF\n"
	"oYRV9fLP8Zsmqbd8JXUCQQD976bHI8kq9jTzghdaMM+VohmRsB+MGVON5iIkHxmV\n"
	"UYrFN5VpBQznZ/WcQKT1oQrHybyD8CDtedpgp0HMAi+jAkEA9yzl+a9Eoi71VPCf\n"
	"XYHPTrxeQJpRuAq27bS6/ZI6Ltq3TKfSOCgEuIRnKIYw1cVRgZ2kJjnPYfAoh2r2\n"
	"itLjywJAIFKe8f42HwfT2aMXgd1wruVBR/AZM+YNYqSGd/6VbRJCDbRzijigWdw7\n"
	"wTXhSXrEOoYNPuYT6uZ1y5O+pk8o7QJBAMbv+QzTtu690rERlYKB9uNNEqL2UW1K\n"
	"Gl8JRjLOXUvWtw7YR4bxFpOX5RslneqADJDA2xv1DWerDkOnoFStVa8CQQD1u9o2\n"
	"wL/Bj86X4OL0ocJsq+UeJs1E4ZnTLymANQMFN0WJHvJ855y/IFT2E4pdwPUgQ8k8\n"
	"mvsk8XrgocUl1qv/\n"
	"-----END PRIVATE KEY-----\n";

/* The same key in the traditional "RSA PRIVATE KEY" form. */
static const char rsa1024_trad_pem[] =
	"-----BEGIN RSA PRIVATE KEY-----\n"
	"MIICXgIBAAKBgQD1LsM52eWBRlvRsV+6um/FYPogwF9tDzuklq5ysOTagrFFxEUa\n"
	"tydXkifk5iaQW+YagXMAm3rLO3QhfrBz1WKERpG3SB681+qP3AhcpWB1YTle4iuJ\n"
	"i6gN/sSyUMinh9sFnhhfp7DU+7jXUl1QwA9AAZPMv1n36dITrsUtp69PQQIDAQAB\n"
	"AoGBAPT5ITTHQum0q/9LU1PV/eFfsOtSasYkBzq/F1Qe7LprBMapgUZdI6D6toOd\n"
	"dYCdYb6wAoDj2IABSlpBI/rIhOGilAfHINanU23XVRlx7lQ1cd6WXhiNNBjyT7Ti\n"
	"lVMrXI2jqDQhBjwGl7sHhwgZNjo5BaGEVfXyz/GbJqm3fCV1AkEA/e+mxyPJKvY0\n"
	"84IXWjDPlaIZkbAfjBlTjeYiJB8ZlVGKxTeVaQUM52f1nECk9aEKx8m8g/Ag7Xna\n"
	"YKdBzAIvowJBAPcs5fmvRKIu9VTwn12Bz068XkCaUbgKtu20uv2SOi7at0yn0jgo\n"
	"BLiEZyiGMNXFUYGdpCY5z2HwKIdq9orS48sCQCBSnvH+Nh8H09mjF4HdcK7lQUfw\n"
	"GTPmDWKkhnf+lW0SQg20c4o4oFncO8E14Ul6xDqGDT7mE+rmdcuTvqZPKO0CQQDG\n"
	"7/kM07buvdKxEZWCgfbjTRKi9lFtShpfCUYyzl1L1rcO2EeG8RaTl+UbJZ3qgAyQ\n"
	"wNsb9Q1nqw5Dp6BUrVWvAkEA9bvaNsC/wY/Ol+Di9KHCbKvlHibNROGZ0y8pgDUD\n"
	"BTdFiR7yfOecvyBU9hOKXcD1IEPJPJr7JPF64KHFJdar/w==\n"
	"-----END RSA PRIVATE KEY-----\n";

static const char rsa512_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAv6Cpn4gtXYWU5Nng\n"
	"kafR0FJbPgXLBo135cC/Tuyf1EbGEauX+uHD8eWS16Pxg2ARGwOBm9+N1vn0e5Lw\n"
	"iG2JxwIDAQABAkEAnKgyo2oHdEJFZAW+cjUY8M6zKvQ/cv7qOtilTVdinn1HPxlu\n"
	"oJs7jphS43+Uwhv5L/VdlisuVlOOf8xAwRfhgQIhAN8dY8dXqFWh2+TRZbE769Jv\n"
	"Lm4pJNnLhQJwv4xjT+YHAiEA298w8+ezcgpagoA6Q86QGaGUnG+MVCim5bVIiisC\n"
	"TkECIQDIMWK6FtkgHN9lbM3GPXHXm5MZnSlHkumByxDUMrgaOQIgURQZsieD9Y65\n"
	"15u/YJfAbaM28QT1Y2dmPBjAeirn+8ECIGk6ZJ4t6eqKnSXQeqZfeVi97kKesFWU\n"
	"kWXWndJnSaQh\n"
	"-----END PRIVATE KEY-----\n";

static const char ed25519_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VwBCIEIKnbaz/2LNShoqP1hEDHiKXIp27iLQJb1hIjid783+nx\n"
	"-----END PRIVATE KEY-----\n";

#define RSA1024_RECORD	"v=DKIM1; k=rsa; " RSA1024_P
#define RSA1024_P	"p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQD1LsM52eW" \
	"BRlvRsV+6um/FYPogwF9tDzuklq5ysOTagrFFxEUatydXkifk5iaQW+YagXMAm3rLO3QhfrBz1WKERpG3S" \
	"B681+qP3AhcpWB1YTle4iuJi6gN/sSyUMinh9sFnhhfp7DU+7jXUl1QwA9AAZPMv1n36dITrsUtp69PQQIDAQAB"
#define RSA512_RECORD	"v=DKIM1; k=rsa; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL+gqZ+ILV2FlOTZ4" \
	"JGn0dBSWz4FywaNd+XAv07sn9RGxhGrl/rhw/Hlktej8YNgERsDgZvfjdb59HuS8IhticcCAwEAAQ=="
#define ED25519_RECORD	"v=DKIM1; k=ed25519; p=zVD4dyRBAAxtEZFz1qEr2o+SgKN35/bviWcd2IC1/08="

/* --- A fake resolver zone ------------------------------------------------- */

struct zone_entry {
	const char		*name;
	enum sluice_dns_status	 status;
	const char		*text;		/* OK: the TXT record */
	size_t			 len;		/* its length (may hold NUL) */
};

static struct zone_entry zone[128];
static size_t	 nzone;
static size_t	 zone_queries;

static void
zone_reset(void)
{
	nzone = 0;
	zone_queries = 0;
}

static void
zone_add(const char *name, enum sluice_dns_status status, const char *text)
{
	assert_true(nzone < sizeof(zone) / sizeof(zone[0]));
	zone[nzone].name = name;
	zone[nzone].status = status;
	zone[nzone].text = text;
	zone[nzone].len = text != NULL ? strlen(text) : 0;
	nzone++;
}

static const struct zone_entry *
zone_find(const char *name)
{
	size_t	 i;

	zone_queries++;
	for (i = 0; i < nzone; i++)
		if (strcasecmp(zone[i].name, name) == 0)
			return &zone[i];
	return NULL;
}

/* The engine's lookup function over the zone. */
static enum dkimf_lookup
zone_lookup(void *arg, const char *name, char *buf, size_t buflen, char *why, size_t whylen)
{
	const struct zone_entry		*z = zone_find(name);
	struct sluice_dns_record	 r;

	(void)arg;
	if (z == NULL || z->status == SLUICE_DNS_NXDOMAIN) {
		snprintf(why, whylen, "nxdomain");
		return DKIMF_LOOKUP_NOTFOUND;
	}
	if (z->status != SLUICE_DNS_OK) {
		snprintf(why, whylen, "servfail");
		return DKIMF_LOOKUP_TEMP;
	}
	memset(&r, 0, sizeof(r));
	r.text = z->text;
	r.len = z->len;
	return dkimf_txt_pick(&r, 1, buf, buflen, why, whylen);
}

/* --- The fake filter API (what dkim.c links against) --------------------- */

struct fake_opt {
	const char	*name;
	const char	*value;		/* as a config would write it */
};

struct sluice_filter {
	struct fake_opt	 opts[16];
	size_t		 nopts;
	char		*list_name[8];	/* parsed lists, kept for the instance's life */
	char		**list[8];
	size_t		 nlist[8];
	size_t		 nlists;
};

struct sluice_ctx {
	void		*instance;
	void		*data;
	uint64_t	 id;
	const char	*auth_user;
	int		 can_change;	/* in EOM or while its hook is PENDING */
};

struct sluice_pending {
	struct sluice_ctx *ctx;
};

struct recorded {
	char		 authres[64][4][256];	/* method, result, reason, props */
	size_t		 nauthres;
	char		 notes[8][2][4096];
	size_t		 nnotes;
	char		 hdr_name[4][64];
	char		*hdr_value[4];
	size_t		 nhdrs;
	char		 log[16384];
	char		 fail[256];
	int		 reply_code;
	char		 reply_enh[16];
	char		 reply_text[256];
	int		 resumed;
	enum sluice_verdict resume_verdict;
	int		 resume_code;
	char		 resume_enh[16];
	char		 resume_text[256];
	char		 resume_fail[256];
	int		 timed_out;	/* sluice_pending_ctx returns NULL */
	struct {
		void	(*work)(void *);
		void	(*done)(void *);
		void	*arg;
	}		 jobs[16];
	size_t		 njobs;
	struct {
		char	 name[300];
		sluice_dns_cb cb;
		void	*arg;
	}		 queries[64];	/* sluice_dns_query calls not answered yet */
	size_t		 nqueries;
	int		 dns_refuse;	/* sluice_dns_query fails */
	size_t		 blocking;	/* sluice_dns_lookup calls */
	int		 outstanding;	/* pendings not resumed */
};

static struct recorded R;
static char	 tmpdir[64];

static void
recorded_reset(void)
{
	size_t	 i;

	for (i = 0; i < R.nhdrs; i++)
		free(R.hdr_value[i]);
	memset(&R, 0, sizeof(R));
}

static const struct sluice_option *
module_option(const char *name)
{
	const struct sluice_option	*o;

	for (o = sluice_builtin_dkim.options; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	fail_msg("option %s not declared", name);
	return NULL;
}

static const char *
fake_value(const struct sluice_filter *f, const char *name)
{
	size_t	 i;

	for (i = 0; i < f->nopts; i++)
		if (strcmp(f->opts[i].name, name) == 0)
			return f->opts[i].value;
	return module_option(name)->default_value;
}

const char *
sluice_option_string(const struct sluice_filter *f, const char *name)
{
	return fake_value(f, name);
}

long long
sluice_option_int(const struct sluice_filter *f, const char *name)
{
	const char	*v = fake_value(f, name);

	return v != NULL ? strtoll(v, NULL, 10) : 0;
}

int
sluice_option_bool(const struct sluice_filter *f, const char *name)
{
	const char	*v = fake_value(f, name);

	return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

long long
sluice_option_duration(const struct sluice_filter *f, const char *name)
{
	return sluice_option_int(f, name);
}

long long
sluice_option_size(const struct sluice_filter *f, const char *name)
{
	return sluice_option_int(f, name);
}

/* Parse '{"a", "b"}' into the filter's list cache. */
static size_t
fake_list(struct sluice_filter *f, const char *name)
{
	const char	*v = fake_value(f, name), *p, *q;
	size_t		 i, n = 0;

	for (i = 0; i < f->nlists; i++)
		if (strcmp(f->list_name[i], name) == 0)
			return i;
	assert_true(f->nlists < 8);
	f->list_name[i] = strdup(name);
	f->list[i] = calloc(64, sizeof(char *));
	for (p = v; p != NULL && (p = strchr(p, '"')) != NULL; p = q + 1) {
		q = strchr(p + 1, '"');
		assert_non_null(q);
		f->list[i][n++] = strndup(p + 1, (size_t)(q - p - 1));
	}
	f->nlist[i] = n;
	f->nlists++;
	return i;
}

size_t
sluice_option_list_count(const struct sluice_filter *cf, const char *name)
{
	struct sluice_filter	*f = (struct sluice_filter *)cf;

	return f->nlist[fake_list(f, name)];
}

const char *
sluice_option_list_item(const struct sluice_filter *cf, const char *name, size_t index)
{
	struct sluice_filter	*f = (struct sluice_filter *)cf;
	size_t			 i = fake_list(f, name);

	return index < f->nlist[i] ? f->list[i][index] : NULL;
}

static void
fake_filter_free(struct sluice_filter *f)
{
	size_t	 i, j;

	for (i = 0; i < f->nlists; i++) {
		for (j = 0; j < f->nlist[i]; j++)
			free(f->list[i][j]);
		free(f->list[i]);
		free(f->list_name[i]);
	}
	f->nlists = 0;
}

void *
sluice_instance(struct sluice_ctx *ctx)
{
	return ctx->instance;
}

void **
sluice_session_data(struct sluice_ctx *ctx)
{
	return &ctx->data;
}

uint64_t
sluice_session_id(struct sluice_ctx *ctx)
{
	return ctx->id;
}

const char *
sluice_auth_user(struct sluice_ctx *ctx)
{
	return ctx->auth_user;
}

int
sluice_note_set(struct sluice_ctx *ctx, const char *key, const char *value)
{
	size_t	 i;

	for (i = 0; i < R.nnotes; i++)
		if (strcmp(R.notes[i][0], key) == 0)
			break;
	assert_true(i < 8);
	snprintf(R.notes[i][0], sizeof(R.notes[i][0]), "%s", key);
	snprintf(R.notes[i][1], sizeof(R.notes[i][1]), "%s", value);
	if (i == R.nnotes)
		R.nnotes++;
	return 0;
}

static const char *
note(const char *key)
{
	size_t	 i;

	for (i = 0; i < R.nnotes; i++)
		if (strcmp(R.notes[i][0], key) == 0)
			return R.notes[i][1];
	return NULL;
}

void
sluice_reply(struct sluice_ctx *ctx, int code, const char *enhanced, const char *fmt, ...)
{
	va_list	 ap;

	R.reply_code = code;
	snprintf(R.reply_enh, sizeof(R.reply_enh), "%s", enhanced);
	va_start(ap, fmt);
	vsnprintf(R.reply_text, sizeof(R.reply_text), fmt, ap);
	va_end(ap);
}

void
sluice_fail(struct sluice_ctx *ctx, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(R.fail, sizeof(R.fail), fmt, ap);
	va_end(ap);
}

void
sluice_log(struct sluice_ctx *ctx, enum sluice_log_level level, const char *fmt, ...)
{
	size_t	 len = strlen(R.log);
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(R.log + len, sizeof(R.log) - len, fmt, ap);
	va_end(ap);
	len = strlen(R.log);
	if (len + 1 < sizeof(R.log))
		strcat(R.log, "\n");
}

struct sluice_pending *
sluice_suspend(struct sluice_ctx *ctx)
{
	struct sluice_pending	*p = calloc(1, sizeof(*p));

	p->ctx = ctx;
	R.outstanding++;
	return p;
}

void
sluice_resume(struct sluice_pending *p, enum sluice_verdict verdict, int code,
    const char *enhanced, const char *text)
{
	R.resumed++;
	R.outstanding--;
	R.resume_verdict = verdict;
	R.resume_code = code;
	snprintf(R.resume_enh, sizeof(R.resume_enh), "%s", enhanced != NULL ? enhanced : "");
	snprintf(R.resume_text, sizeof(R.resume_text), "%s", text != NULL ? text : "");
	free(p);
}

void
sluice_resume_fail(struct sluice_pending *p, const char *reason)
{
	R.resumed++;
	R.outstanding--;
	R.resume_verdict = SLUICE_TEMPFAIL;
	snprintf(R.resume_fail, sizeof(R.resume_fail), "%s", reason);
	free(p);
}

struct sluice_ctx *
sluice_pending_ctx(struct sluice_pending *p)
{
	if (R.timed_out)
		return NULL;
	p->ctx->can_change = 1;		/* EOM is PENDING: header changes allowed */
	return p->ctx;
}

int
sluice_offload(struct sluice_ctx *ctx, void (*work)(void *), void (*done)(void *), void *arg)
{
	assert_true(R.njobs < 16);
	R.jobs[R.njobs].work = work;
	R.jobs[R.njobs].done = done;
	R.jobs[R.njobs].arg = arg;
	R.njobs++;
	return 0;
}

static struct sluice_dns_answer *zone_answer(const char *);
static void	 zone_answer_free(struct sluice_dns_answer *);

int
sluice_dns_query(struct sluice_ctx *ctx, const char *name, enum sluice_dns_type type,
    sluice_dns_cb cb, void *arg)
{
	assert_int_equal(type, SLUICE_DNS_TXT);
	if (R.dns_refuse)
		return -1;
	assert_true(R.nqueries < 64);
	snprintf(R.queries[R.nqueries].name, sizeof(R.queries[0].name), "%s", name);
	R.queries[R.nqueries].cb = cb;
	R.queries[R.nqueries].arg = arg;
	R.nqueries++;
	return 0;
}

/*
 * What the loop and the pool would do meanwhile: answer the DNS queries,
 * then run the queued jobs (work, then done), until nothing is left.
 */
static void
pool_run(void)
{
	struct sluice_dns_answer	*a;
	size_t				 i, n;

	while (R.nqueries > 0 || R.njobs > 0) {
		n = R.nqueries;
		R.nqueries = 0;
		for (i = 0; i < n; i++) {
			a = zone_answer(R.queries[i].name);
			R.queries[i].cb(R.queries[i].arg, a);
			zone_answer_free(a);
		}
		n = R.njobs;
		R.njobs = 0;
		for (i = 0; i < n; i++) {
			R.jobs[i].work(R.jobs[i].arg);
			R.jobs[i].done(R.jobs[i].arg);
		}
	}
}

int
sluice_header_insert(struct sluice_ctx *ctx, size_t index, const char *name,
    const char *value)
{
	if (!ctx->can_change || R.nhdrs >= 4)
		return -1;
	assert_int_equal(index, 0);
	snprintf(R.hdr_name[R.nhdrs], sizeof(R.hdr_name[0]), "%s", name);
	R.hdr_value[R.nhdrs++] = strdup(value);
	return 0;
}

int
sluice_authres_add(struct sluice_ctx *ctx, const char *method, const char *result,
    const char *reason, const char *props)
{
	assert_true(R.nauthres < 64);
	snprintf(R.authres[R.nauthres][0], 256, "%s", method);
	snprintf(R.authres[R.nauthres][1], 256, "%s", result);
	snprintf(R.authres[R.nauthres][2], 256, "%s", reason != NULL ? reason : "(null)");
	snprintf(R.authres[R.nauthres][3], 256, "%s", props != NULL ? props : "(null)");
	R.nauthres++;
	return 0;
}

struct sluice_dns_answer *
sluice_dns_lookup(struct sluice_filter *filter, const char *name, enum sluice_dns_type type)
{
	assert_int_equal(type, SLUICE_DNS_TXT);
	R.blocking++;
	return zone_answer(name);
}

/* The zone's answer for name, as the resolver would give it. */
static struct sluice_dns_answer *
zone_answer(const char *name)
{
	struct sluice_dns_answer	*a = calloc(1, sizeof(*a));
	struct sluice_dns_record	*r;
	const struct zone_entry		*z = zone_find(name);

	a->type = SLUICE_DNS_TXT;
	a->status = z != NULL ? z->status : SLUICE_DNS_NXDOMAIN;
	a->name = name;
	if (a->status == SLUICE_DNS_SERVFAIL)
		a->why = "test servfail";
	if (a->status == SLUICE_DNS_OK) {
		r = calloc(1, sizeof(*r));
		r->text = z->text;
		r->len = z->len;
		a->records = r;
		a->count = 1;
	}
	return a;
}

static void
zone_answer_free(struct sluice_dns_answer *a)
{
	free((void *)a->records);
	free(a);
}

void
sluice_dns_answer_free(struct sluice_dns_answer *a)
{
	zone_answer_free(a);
}

const char *
sluice_dns_status_name(enum sluice_dns_status status)
{
	static const char *const names[] = {
		"ok", "nodata", "nxdomain", "servfail", "timeout", "error"
	};

	return (unsigned int)status < 6 ? names[status] : "error";
}

/* --- Helpers -------------------------------------------------------------- */

/* A file in the test's temporary directory holding text. */
static const char *
write_file(const char *name, const char *text)
{
	static char	 path[128];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	assert_non_null(fp = fopen(path, "w"));
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	fclose(fp);
	return path;
}

/* sign_headers when a test gives none. */
static const char *const default_sign[] = { "From", "To", "Subject", "Date", "Message-ID" };

static struct dkimf_engine *
engine(unsigned int min_bits, size_t max_sigs, const char *const *hdrs, size_t nhdrs)
{
	struct dkimf_engine_config	 c;
	struct dkimf_engine		*e;
	char				 err[256];

	if (hdrs == NULL) {
		hdrs = default_sign;
		nhdrs = sizeof(default_sign) / sizeof(default_sign[0]);
	}
	memset(&c, 0, sizeof(c));
	c.min_key_bits = min_bits;
	c.max_signatures = max_sigs;
	c.sign_headers = (char *const *)hdrs;
	c.nsign_headers = nhdrs;
	c.fixed_time = 1700000000;
	e = dkimf_engine_new(&c, err, sizeof(err));
	assert_non_null(e);
	return e;
}

static struct dkimf_key *
key(struct dkimf_engine *e, const char *selector, const char *pem)
{
	char		 err[512];
	struct dkimf_key *k = dkimf_key_load_file(selector, write_file("key.pem", pem), 1024,
	    err, sizeof(err));

	(void)e;

	if (k == NULL)
		fail_msg("key_load: %s", err);
	return k;
}

/* Header fields as name/value pairs. */
struct hdr {
	const char	*name;
	const char	*value;
};

static const struct hdr base_headers[] = {
	{ "Received", "from x by y; Tue, 14 Nov 2023 22:13:20 +0000" },
	{ "From", "Alice <alice@example.org>" },
	{ "To", "bob@example.net" },
	{ "Subject", "hello\r\n there" },
	{ "Date", "Tue, 14 Nov 2023 22:13:20 +0000" },
	{ "Message-ID", "<1@example.org>" },
};
#define NBASE	(sizeof(base_headers) / sizeof(base_headers[0]))

static const char base_body[] = "Hello Bob,\r\n\r\n.. a line that was dot-stuffed\r\n"
    "trailing spaces   \r\n\r\n\r\n";

/* Sign base_headers (+ extra) and body with k as domain; the value, caller frees. */
static char *
sign_message(struct dkimf_engine *e, struct dkimf_key *k, const char *domain,
    const struct hdr *extra, size_t nextra, const char *body)
{
	struct dkimf_msg	*m = dkimf_msg_new(e, 1, 0);
	char			*sig;
	size_t			 i;

	for (i = 0; i < NBASE; i++)
		dkimf_msg_header(m, base_headers[i].name, base_headers[i].value);
	for (i = 0; i < nextra; i++)
		dkimf_msg_header(m, extra[i].name, extra[i].value);
	dkimf_msg_eoh(m, domain, &k, 1);
	assert_true(dkimf_msg_active(m));
	dkimf_msg_body(m, (const unsigned char *)body, strlen(body));
	dkimf_msg_eom(m, NULL, NULL);
	assert_int_equal(dkimf_msg_signing(m), 1);
	if (dkimf_msg_signature(m, 0) == NULL)
		fail_msg("signing failed: %s", dkimf_msg_sign_error(m, 0));
	sig = strdup(dkimf_msg_signature(m, 0));
	dkimf_msg_free(m);
	return sig;
}

/*
 * Verify: first fields (signatures), then base_headers with subject
 * replaced if given, then extra; body fed chunk bytes at a time.
 */
static struct dkimf_msg *
verify_message(struct dkimf_engine *e, const struct hdr *first, size_t nfirst,
    const char *subject, const struct hdr *extra, size_t nextra, const char *body,
    size_t chunk)
{
	struct dkimf_msg	*m = dkimf_msg_new(e, 2, 1);
	size_t			 i, len = strlen(body), n;

	for (i = 0; i < nfirst; i++)
		dkimf_msg_header(m, first[i].name, first[i].value);
	for (i = 0; i < NBASE; i++)
		dkimf_msg_header(m, base_headers[i].name, subject != NULL &&
		    strcmp(base_headers[i].name, "Subject") == 0 ? subject :
		    base_headers[i].value);
	for (i = 0; i < nextra; i++)
		dkimf_msg_header(m, extra[i].name, extra[i].value);
	dkimf_msg_eoh(m, NULL, NULL, 0);
	for (i = 0; i < len; i += n) {
		n = chunk == 0 || len - i < chunk ? len - i : chunk;
		dkimf_msg_body(m, (const unsigned char *)body + i, n);
	}
	dkimf_msg_eom(m, zone_lookup, NULL);
	return m;
}

static void
assert_result(const struct dkimf_msg *m, size_t i, enum dkimf_result want,
    const char *reason)
{
	const struct dkimf_sig_result	*r = dkimf_msg_result(m, i);

	assert_non_null(r);
	if (r->result != want)
		fail_msg("signature %zu: %s (%s: %s), want %s", i, dkimf_result_name(r->result),
		    r->reason, r->why, dkimf_result_name(want));
	if (reason != NULL)
		assert_string_equal(r->reason, reason);
}

/* A signature made directly with libopendkim (rsa-sha1, small keys). */
static char *
raw_sign(const char *pem, dkim_alg_t alg, unsigned int min_bits, const char *selector,
    const char *body)
{
	DKIM_LIB	*lib = dkim_init(NULL, NULL);
	DKIM		*d;
	DKIM_STAT	 st;
	unsigned char	*hdr;
	size_t		 len, i;
	uint64_t	 t = 1700000000;
	char		 field[512], *out;

	assert_int_equal(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &min_bits,
	    sizeof(min_bits)), DKIM_STAT_OK);
	assert_int_equal(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FIXEDTIME, &t,
	    sizeof(t)), DKIM_STAT_OK);
	d = dkim_sign(lib, (const unsigned char *)"raw", NULL, (unsigned char *)pem,
	    (const unsigned char *)selector, (const unsigned char *)"example.org",
	    DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE, alg, -1, &st);
	assert_non_null(d);
	for (i = 0; i < NBASE; i++) {
		snprintf(field, sizeof(field), "%s: %s", base_headers[i].name,
		    base_headers[i].value);
		assert_int_equal(dkim_header(d, (unsigned char *)field, strlen(field)),
		    DKIM_STAT_OK);
	}
	assert_int_equal(dkim_eoh(d), DKIM_STAT_OK);
	assert_int_equal(dkim_body(d, (unsigned char *)body, strlen(body)), DKIM_STAT_OK);
	assert_int_equal(dkim_eom(d, NULL), DKIM_STAT_OK);
	assert_int_equal(dkim_getsighdr_d(d, 16, &hdr, &len), DKIM_STAT_OK);
	out = strndup((const char *)hdr, len);
	dkim_free(d);
	dkim_close(lib);
	return out;
}

/* --- Policy ---------------------------------------------------------------- */

static void
test_result_map(void **state)
{
	struct dkimf_sig_facts	 f;
	const char		*why;
	static const struct {
		int			 sigerr;
		enum dkimf_result	 want;
	} errors[] = {
		{ DKIM_SIGERROR_BADSIG, DKIMF_FAIL },
		{ DKIM_SIGERROR_TOOLARGE_L, DKIMF_FAIL },
		{ DKIM_SIGERROR_KEYFAIL, DKIMF_TEMPERROR },
		{ DKIM_SIGERROR_NOKEY, DKIMF_PERMERROR },
		{ DKIM_SIGERROR_KEYTOOSMALL, DKIMF_PERMERROR },
		{ DKIM_SIGERROR_KEYREVOKED, DKIMF_PERMERROR },
		{ DKIM_SIGERROR_DNSSYNTAX, DKIMF_PERMERROR },
		{ DKIM_SIGERROR_KEYDECODE, DKIMF_PERMERROR },
		{ DKIM_SIGERROR_KEYHASHMISMATCH, DKIMF_PERMERROR },
		{ DKIM_SIGERROR_MULTIREPLY, DKIMF_PERMERROR },
		{ DKIM_SIGERROR_EXPIRED, DKIMF_NEUTRAL },
		{ DKIM_SIGERROR_FUTURE, DKIMF_NEUTRAL },
		{ DKIM_SIGERROR_MISSING_D, DKIMF_NEUTRAL },
		{ DKIM_SIGERROR_CORRUPT_B, DKIMF_NEUTRAL },
		{ DKIM_SIGERROR_INVALID_A, DKIMF_NEUTRAL },
		{ 999, DKIMF_NEUTRAL },
	};
	size_t	 i;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.sigerr = DKIM_SIGERROR_OK;
	f.flags = DKIM_SIGFLAG_PROCESSED | DKIM_SIGFLAG_PASSED;
	f.bh = DKIM_SIGBH_MATCH;
	f.alg = DKIM_SIGN_RSASHA256;
	f.keybits = 2048;
	f.min_key_bits = 1024;
	f.lookup = DKIMF_LOOKUP_OK;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_PASS);
	assert_int_equal(dkimf_result_map(&f, NULL), DKIMF_PASS);
	f.sigerr = DKIM_SIGERROR_UNKNOWN;	/* libopendkim leaves this on passes too */
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_PASS);
	/* The library passes rsa-sha1; RFC 8301 does not. */
	f.alg = DKIM_SIGN_RSASHA1;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_FAIL);
	assert_string_equal(why, "rsa-sha1 is not acceptable (RFC 8301)");
	f.alg = DKIM_SIGN_RSASHA256;
	f.keybits = 1023;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_PERMERROR);
	assert_string_equal(why, "key too small");
	f.alg = DKIM_SIGN_ED25519SHA256;
	f.keybits = 256;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_PASS);
	f.alg = DKIM_SIGN_RSASHA256;
	f.keybits = 1024;
	f.bh = DKIM_SIGBH_MISMATCH;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_FAIL);
	assert_string_equal(why, "body hash mismatch");
	f.sigerr = DKIM_SIGERROR_BADSIG;	/* what libopendkim sets with it */
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_FAIL);
	assert_string_equal(why, "body hash mismatch");
	f.sigerr = DKIM_SIGERROR_UNKNOWN;
	f.bh = DKIM_SIGBH_MATCH;
	f.flags = DKIM_SIGFLAG_PROCESSED;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_FAIL);
	f.flags = 0;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_PERMERROR);
	assert_string_equal(why, "signature not verified");
	/* Our lookup outcome comes before the library's error. */
	f.sigerr = DKIM_SIGERROR_BADSIG;
	f.lookup = DKIMF_LOOKUP_TEMP;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_TEMPERROR);
	f.lookup = DKIMF_LOOKUP_NOTFOUND;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_PERMERROR);
	assert_string_equal(why, "no key for signature");
	f.lookup = DKIMF_LOOKUP_BAD;
	assert_int_equal(dkimf_result_map(&f, &why), DKIMF_PERMERROR);
	f.lookup = DKIMF_LOOKUP_NONE;
	for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		f.sigerr = errors[i].sigerr;
		f.flags = DKIM_SIGFLAG_PROCESSED | DKIM_SIGFLAG_PASSED;
		if (dkimf_result_map(&f, &why) != errors[i].want)
			fail_msg("sigerr %d: got %s", errors[i].sigerr,
			    dkimf_result_name(dkimf_result_map(&f, &why)));
		assert_non_null(why);
	}
}

static void
test_result_names_and_best(void **state)
{
	enum dkimf_result	 r[4];
	enum dkimf_action	 a;

	(void)state;
	assert_string_equal(dkimf_result_name(DKIMF_PASS), "pass");
	assert_string_equal(dkimf_result_name(DKIMF_TEMPERROR), "temperror");
	assert_string_equal(dkimf_result_name(DKIMF_FAIL), "fail");
	assert_string_equal(dkimf_result_name(DKIMF_POLICY), "policy");
	assert_string_equal(dkimf_result_name(DKIMF_NEUTRAL), "neutral");
	assert_string_equal(dkimf_result_name(DKIMF_PERMERROR), "permerror");
	assert_string_equal(dkimf_result_name(DKIMF_NONE), "none");
	assert_string_equal(dkimf_result_name((enum dkimf_result)77), "permerror");
	assert_int_equal(dkimf_result_best(r, 0), DKIMF_NONE);
	r[0] = DKIMF_PERMERROR;
	r[1] = DKIMF_FAIL;
	r[2] = DKIMF_NEUTRAL;
	assert_int_equal(dkimf_result_best(r, 3), DKIMF_FAIL);
	r[3] = DKIMF_TEMPERROR;
	assert_int_equal(dkimf_result_best(r, 4), DKIMF_TEMPERROR);
	r[2] = DKIMF_PASS;
	assert_int_equal(dkimf_result_best(r, 4), DKIMF_PASS);
	assert_int_equal(dkimf_action_parse("continue", &a), 0);
	assert_int_equal(a, DKIMF_CONTINUE);
	assert_int_equal(dkimf_action_parse("TempFail", &a), 0);
	assert_int_equal(a, DKIMF_TEMPFAIL);
	assert_int_equal(dkimf_action_parse("reject", &a), 0);
	assert_int_equal(a, DKIMF_REJECT);
	assert_int_equal(dkimf_action_parse("discard", &a), -1);
	assert_int_equal(dkimf_action_parse("", &a), -1);
	assert_int_equal(dkimf_action_parse(NULL, &a), -1);
	assert_string_equal(dkimf_action_name(DKIMF_REJECT), "reject");
}

static void
test_from_domain(void **state)
{
	static const struct {
		const char	*value;
		const char	*domain;	/* NULL: refused */
	} cases[] = {
		{ "alice@example.org", "example.org" },
		{ "Alice <alice@Example.ORG>", "example.org" },
		{ "\"Doe, Alice\" <alice@example.org>", "example.org" },
		{ "\"a@evil.example\" <alice@example.org>", "example.org" },
		{ "\"<x@evil.example>\" <alice@example.org>", "example.org" },
		{ "alice@example.org (Alice, at evil.example)", "example.org" },
		{ "(c@evil.example) alice@example.org", "example.org" },
		{ "Alice (x (nested) y) <alice@example.org>", "example.org" },
		{ "\"quoted@local\"@example.org", "example.org" },
		{ "<@relay.example:alice@example.org>", "example.org" },
		{ "alice@example.org.", "example.org" },
		{ " \t\r\n alice @ example.org ", "example.org" },
		{ "alice@example.org,", "example.org" },
		{ "alice@example.org, bob@example.net", NULL },
		{ "undisclosed-recipients:;", NULL },
		{ "group: alice@example.org;", NULL },
		{ "", NULL },
		{ "   ", NULL },
		{ "alice", NULL },
		{ "@example.org", NULL },
		{ "alice@", NULL },
		{ "alice@[192.0.2.1]", NULL },
		{ "alice@exa mple.org", NULL },
		{ "alice@exa(comment)mple.org", NULL },
		{ "Alice Smith <alice@example.org>", "example.org" },
		{ "alice@example..org", NULL },
		{ "alice@exa_mple.org", NULL },
		{ "alice@b\xc3\xbc" "cher.example", NULL },
		{ "Alice <alice@example.org", NULL },
		{ "Alice alice@example.org>", NULL },
		{ "<<alice@example.org>>", NULL },
		{ "<alice@evil.example>x<bob@example.org>", NULL },
		{ "alice@evil.example <bob@example.org>", NULL },
		{ "\"alice@evil.example\" <bob@example.org>", "example.org" },
		{ "\"unterminated <alice@example.org>", NULL },
		{ "(unterminated alice@example.org", NULL },
		{ "alice@example.org\\", NULL },
	};
	char	 out[254], small[8], *copy;
	size_t	 i, j;
	int	 rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = dkimf_from_domain(cases[i].value, out, sizeof(out));
		if (cases[i].domain == NULL && rc != -1)
			fail_msg("\"%s\" gave %s", cases[i].value, out);
		if (cases[i].domain != NULL) {
			if (rc != 0)
				fail_msg("\"%s\" refused", cases[i].value);
			assert_string_equal(out, cases[i].domain);
		}
		/* Every prefix, in a buffer of its own size: no read past it. */
		for (j = 0; j <= strlen(cases[i].value); j++) {
			copy = strndup(cases[i].value, j);
			(void)dkimf_from_domain(copy, out, sizeof(out));
			free(copy);
		}
	}
	assert_int_equal(dkimf_from_domain("a@example.org", small, sizeof(small)), -1);
	assert_int_equal(dkimf_from_domain("a@ex.org", small, sizeof(small)), 0);
	assert_int_equal(dkimf_from_domain(NULL, out, sizeof(out)), -1);
}

static void
test_names(void **state)
{
	char	 out[300], long_label[80], long_name[300];
	size_t	 i;

	(void)state;
	assert_int_equal(dkimf_key_name("sel", "example.org", out, sizeof(out)), 0);
	assert_string_equal(out, "sel._domainkey.example.org");
	assert_int_equal(dkimf_key_name("2024.rsa", "Sub.Example.org", out, sizeof(out)), 0);
	assert_string_equal(out, "2024.rsa._domainkey.Sub.Example.org");
	assert_int_equal(dkimf_key_name("s_1", "example.org", out, sizeof(out)), 0);
	assert_int_equal(dkimf_key_name("", "example.org", out, sizeof(out)), -1);
	assert_int_equal(dkimf_key_name("sel", "", out, sizeof(out)), -1);
	assert_int_equal(dkimf_key_name("a b", "example.org", out, sizeof(out)), -1);
	assert_int_equal(dkimf_key_name("sel", "example.org;x", out, sizeof(out)), -1);
	assert_int_equal(dkimf_key_name("sel", "ex\nample.org", out, sizeof(out)), -1);
	assert_int_equal(dkimf_key_name("sel", "example..org", out, sizeof(out)), -1);
	assert_int_equal(dkimf_key_name(NULL, "example.org", out, sizeof(out)), -1);
	assert_int_equal(dkimf_key_name("sel", "example.org", out, 10), -1);
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	assert_int_equal(dkimf_key_name(long_label, "example.org", out, sizeof(out)), -1);
	for (i = 0; i < 250; i++)
		long_name[i] = i % 2 ? '.' : 'a';
	long_name[249] = '\0';
	assert_int_equal(dkimf_key_name("sel", long_name, out, sizeof(out)), -1);
	assert_true(dkimf_header_name_valid("From"));
	assert_true(dkimf_header_name_valid("List-Unsubscribe-Post"));
	assert_false(dkimf_header_name_valid(""));
	assert_false(dkimf_header_name_valid("X-.*"));
	assert_false(dkimf_header_name_valid("From:"));
	assert_false(dkimf_header_name_valid("A|B"));
	assert_true(dkimf_is_signature_header("dkim-SIGNATURE"));
	assert_false(dkimf_is_signature_header("DKIM-Signature2"));
	assert_int_equal(dkimf_domain_normalize("Example.ORG.", 12, out, sizeof(out)), 0);
	assert_string_equal(out, "example.org");
	assert_int_equal(dkimf_domain_normalize("exa_mple.org", 12, out, sizeof(out)), -1);
	{
		char	*list[] = { "example.org", "example.net" };

		assert_true(dkimf_domain_listed("EXAMPLE.net", list, 2));
		assert_false(dkimf_domain_listed("sub.example.net", list, 2));
		assert_false(dkimf_domain_listed("example.org", list, 0));
	}
}

static void
test_props_and_words(void **state)
{
	char	 buf[600], small[21], words[40];
	size_t	 n;

	(void)state;
	n = dkimf_props_format(buf, sizeof(buf), "example.org", "sel", "rsa-sha256",
	    "abcDEF+/0123456789");
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "header.d=example.org header.s=sel header.a=rsa-sha256 "
	    "header.b=abcDEF+/");
	/* Folding white space inside b= is skipped; 7 characters are enough. */
	dkimf_props_format(buf, sizeof(buf), NULL, NULL, NULL, "ab c\r\n\tdefgh");
	assert_string_equal(buf, "header.b=abcdefgh");
	dkimf_props_format(buf, sizeof(buf), NULL, NULL, NULL, "abc");
	assert_string_equal(buf, "header.b=abc");
	/* Hostile values are left out, never quoted into the header. */
	dkimf_props_format(buf, sizeof(buf), "evil.example; dkim=pass", "s\"el", "rsa sha",
	    "ab;c");
	assert_string_equal(buf, "");
	dkimf_props_format(buf, sizeof(buf), "a\r\nX-Injected: yes", "sel", "", NULL);
	assert_string_equal(buf, "header.s=sel");
	assert_int_equal(dkimf_props_format(buf, sizeof(buf), NULL, NULL, NULL, NULL), 0);
	assert_string_equal(buf, "");
	{
		char	 long_d[400];

		memset(long_d, 'a', sizeof(long_d) - 1);
		long_d[sizeof(long_d) - 1] = '\0';
		dkimf_props_format(buf, sizeof(buf), long_d, "sel", NULL, NULL);
		assert_string_equal(buf, "header.s=sel");
	}
	/* A property that does not fit is dropped whole. */
	dkimf_props_format(small, sizeof(small), "example.org", "sel", NULL, NULL);
	assert_string_equal(small, "header.d=example.org");
	dkimf_props_format(small, sizeof(small), "example.organisation", "sel", NULL, NULL);
	assert_string_equal(small, "header.s=sel");
	words[0] = '\0';
	dkimf_word_add(words, sizeof(words), "Example.org");
	dkimf_word_add(words, sizeof(words), "example.ORG");
	dkimf_word_add(words, sizeof(words), "org");
	dkimf_word_add(words, sizeof(words), "example.net");
	assert_string_equal(words, "example.org org example.net");
	dkimf_word_add(words, sizeof(words), "a-domain-that-does-not-fit.example");
	assert_string_equal(words, "example.org org example.net");
	dkimf_word_add(words, sizeof(words), "");
	assert_string_equal(words, "example.org org example.net");
}

static void
test_txt_pick(void **state)
{
	struct sluice_dns_record	 r[3];
	char				 buf[64], why[64];

	(void)state;
	memset(r, 0, sizeof(r));
	r[0].text = "v=spf1 -all";
	r[0].len = strlen(r[0].text);
	r[1].text = "v=DKIM1; p=abc";
	r[1].len = strlen(r[1].text);
	assert_int_equal(dkimf_txt_pick(r, 2, buf, sizeof(buf), why, sizeof(why)),
	    DKIMF_LOOKUP_OK);
	assert_string_equal(buf, "v=DKIM1; p=abc");
	assert_int_equal(dkimf_txt_pick(r, 1, buf, sizeof(buf), why, sizeof(why)),
	    DKIMF_LOOKUP_OK);
	assert_string_equal(buf, "v=spf1 -all");
	assert_int_equal(dkimf_txt_pick(r, 0, buf, sizeof(buf), why, sizeof(why)),
	    DKIMF_LOOKUP_BAD);
	r[2].text = "p=a\0b";
	r[2].len = 5;
	assert_int_equal(dkimf_txt_pick(&r[2], 1, buf, sizeof(buf), why, sizeof(why)),
	    DKIMF_LOOKUP_BAD);
	assert_string_equal(why, "NUL byte in key record");
	assert_int_equal(dkimf_txt_pick(&r[1], 1, buf, 14, why, sizeof(why)),
	    DKIMF_LOOKUP_BAD);
	assert_int_equal(dkimf_txt_pick(&r[1], 1, buf, 15, why, sizeof(why)),
	    DKIMF_LOOKUP_OK);
}

/* --- Canonicalization ------------------------------------------------------ */

struct collect {
	char	 buf[256];
	size_t	 len;
	size_t	 calls;
};

static void
collect_emit(void *arg, const char *data, size_t len)
{
	struct collect	*c = arg;

	assert_true(len > 0);
	assert_true(c->len + len < sizeof(c->buf));
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	c->calls++;
}

static void
test_canon(void **state)
{
	static const struct {
		const char	*in;
		const char	*out;
	} body[] = {
		{ "", "" },
		{ "\r\n", "" },
		{ "\r\n\r\n", "" },
		{ "a", "a\r\n" },
		{ "a\r\n", "a\r\n" },
		{ " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n" },	/* RFC 6376 3.4.6 */
		{ "a\r\n\r\n\r\n", "a\r\n" },
		{ "a\r\n \r\n\t\r\nb\r\n", "a\r\n\r\n\r\nb\r\n" },
		{ "a\r\n  \r\n \t ", "a\r\n" },
		{ "\r\n\r\na\r\n", "\r\n\r\na\r\n" },
		{ "a\rb\r\n", "a\rb\r\n" },
		{ "a\nb\r\n", "a\nb\r\n" },
		{ "x\r", "x\r\r\n" },
		{ "a\r\r\n", "a\r\r\n" },
		{ "\t\tx\t\ty\t\t\r\n", " x y\r\n" },
	};
	struct dkimf_body_canon	 bc;
	struct collect		 c;
	char			 out[128];
	size_t			 i, j, chunk, len, n;

	(void)state;
	for (i = 0; i < sizeof(body) / sizeof(body[0]); i++) {
		len = strlen(body[i].in);
		/* Whole, then 1, 2, ... bytes at a time: the same output. */
		for (chunk = 0; chunk <= len + 1; chunk++) {
			memset(&c, 0, sizeof(c));
			dkimf_body_canon_init(&bc, collect_emit, &c);
			for (j = 0; j < len; j += n) {
				n = chunk == 0 || len - j < chunk ? len - j : chunk;
				dkimf_body_canon_feed(&bc, (const unsigned char *)body[i].in + j, n);
			}
			dkimf_body_canon_end(&bc);
			c.buf[c.len] = '\0';
			if (strcmp(c.buf, body[i].out) != 0)
				fail_msg("body %zu chunk %zu: got %zu bytes", i, chunk, c.len);
		}
	}
	/* Many empty lines before content: emitted in bounded pieces. */
	memset(&c, 0, sizeof(c));
	dkimf_body_canon_init(&bc, collect_emit, &c);
	for (i = 0; i < 60; i++)
		dkimf_body_canon_feed(&bc, (const unsigned char *)"\r\n", 2);
	dkimf_body_canon_feed(&bc, (const unsigned char *)"z\r\n", 3);
	dkimf_body_canon_end(&bc);
	assert_int_equal(c.len, 123);

	n = dkimf_header_canon("Subject", 7, "  hello\r\n\t  world \t ", 1, out);
	assert_string_equal(out, "subject:hello world\r\n");
	assert_int_equal(n, strlen(out));
	dkimf_header_canon("B ", 2, "Y\t\r\n\tZ  ", 1, out);	/* RFC 6376 3.4.6 */
	assert_string_equal(out, "b:Y Z\r\n");
	dkimf_header_canon("X-Empty", 7, " \t ", 0, out);
	assert_string_equal(out, "x-empty:");
	dkimf_header_canon("X-8bit", 6, "caf\xc3\xa9", 0, out);
	assert_string_equal(out, "x-8bit:caf\xc3\xa9");
}

/* --- Engine ---------------------------------------------------------------- */

static const char encrypted_pem[] =
	"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
	"MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgGBnRPajiMuQICCAAw\n"
	"DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEBvSCXsP8adkSlXHDZK0QgEEQAxq\n"
	"BDe7CREinJuNx/yYMUveY8yi+L/thhQU6/zVUUFjAA3sHSQub/Mw8gF42Ac/TBMv\n"
	"gaZLzHSXNqFzEMmBYIg=\n"
	"-----END ENCRYPTED PRIVATE KEY-----\n";

static const char ec_pem[] =
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MHcCAQEEIJ2S3bc9f9DfCtCiTG9UVlMn/Tw0MTFgLY2Ca5UPxSPIoAoGCCqGSM49\n"
	"AwEHoUQDQgAE7SUFY/e4NRGah767uP8G7eNqGXs+tGKeu8RDQrNBmqK6Sdjrzvx6\n"
	"7ue1aLrqSIptYo1bGP1XVameNSweeYiqgA==\n"
	"-----END EC PRIVATE KEY-----\n";

/* A key file that must be refused with a sentence containing want. */
static void
key_refused(const char *name, const char *text, unsigned int bits, const char *want)
{
	char			 err[512];
	const char		*path = text != NULL ? write_file(name, text) : name;

	if (dkimf_key_load_file("s", path, bits, err, sizeof(err)) != NULL)
		fail_msg("%s accepted", name);
	if (strstr(err, want) == NULL)
		fail_msg("%s: \"%s\", want \"%s\"", name, err, want);
}

static void
test_key_load(void **state)
{
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_key	*k;
	char			 err[512], path[128];

	(void)state;
	k = key(e, "rsa", rsa1024_pem);
	assert_string_equal(dkimf_key_algorithm(k), "rsa-sha256");
	assert_int_equal(dkimf_key_alg(k), DKIMF_ALG_RSA_SHA256);
	assert_int_equal(dkimf_key_bits(k), 1024);
	assert_string_equal(dkimf_key_selector(k), "rsa");
	dkimf_key_free(k);
	k = key(e, "rsa", rsa1024_trad_pem);
	assert_string_equal(dkimf_key_algorithm(k), "rsa-sha256");
	dkimf_key_free(k);
	k = key(e, "ed", ed25519_pem);
	assert_string_equal(dkimf_key_algorithm(k), "ed25519-sha256");
	assert_int_equal(dkimf_key_alg(k), DKIMF_ALG_ED25519_SHA256);
	dkimf_key_free(k);
	assert_string_equal(dkimf_engine_algorithms(e), "rsa-sha256 ed25519-sha256");
	dkimf_engine_free(e);

	snprintf(path, sizeof(path), "%s/missing.pem", tmpdir);
	key_refused(path, NULL, 1024, "missing.pem: No such file or directory");
	key_refused(tmpdir, NULL, 1024, "not a regular file");
	key_refused("empty.pem", "", 1024, "not a regular file of 1 to");
	key_refused("junk.pem", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n"
	    "-----END PRIVATE KEY-----\n", 1024,
	    "junk.pem: not an unencrypted RSA or ed25519 private key in PEM form");
	key_refused("public.pem", RSA1024_RECORD, 1024, "not an unencrypted RSA or ed25519");
	key_refused("encrypted.pem", encrypted_pem, 1024, "not an unencrypted RSA or ed25519");
	key_refused("ec.pem", ec_pem, 1024, "not an unencrypted RSA or ed25519");
	key_refused("small.pem", rsa512_pem, 1024, "small.pem: RSA key of 512 bits, "
	    "min_key_bits is 1024");
	key_refused("k.pem", rsa1024_pem, 2048, "RSA key of 1024 bits, min_key_bits is 2048");
	assert_null(dkimf_key_load_file("bad selector", write_file("k.pem", rsa1024_pem), 1024,
	    err, sizeof(err)));
	assert_string_equal(err, "selector \"bad selector\" is not a DNS label");
	/* ed25519 keys have no size rule. */
	k = dkimf_key_load_file("ed", write_file("k.pem", ed25519_pem), 4096, err, sizeof(err));
	assert_non_null(k);
	dkimf_key_free(k);
}

static void
test_engine_sign_verify(void **state)
{
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_key	*rsa = key(e, "rsa", rsa1024_pem), *ed = key(e, "ed", ed25519_pem);
	struct dkimf_msg	*m;
	struct hdr		 sigs[2];
	char			*s1, *s2;
	size_t			 chunk;
	const struct dkimf_sig_result *r;

	(void)state;
	zone_reset();
	zone_add("rsa._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
	zone_add("ed._domainkey.example.org", SLUICE_DNS_OK, ED25519_RECORD);
	s1 = sign_message(e, rsa, "example.org", NULL, 0, base_body);
	s2 = sign_message(e, ed, "example.org", NULL, 0, base_body);
	assert_non_null(strstr(s1, "a=rsa-sha256;"));
	assert_non_null(strstr(s1, "c=relaxed/relaxed;"));
	assert_non_null(strstr(s1, "d=example.org;"));
	assert_non_null(strstr(s1, "s=rsa;"));
	assert_non_null(strstr(s1, "t=1700000000;"));
	/* Every listed field present, From once more; Received is not listed. */
	assert_non_null(strstr(s1, "h=From:From:To:Subject:Date:Message-ID;"));
	assert_non_null(strstr(s2, "a=ed25519-sha256;"));
	/* Folded only as CRLF + TAB, never a bare LF. */
	assert_non_null(strstr(s1, "\r\n\t"));
	sigs[0].name = "DKIM-Signature";
	sigs[0].value = s1;
	sigs[1].name = "DKIM-Signature";
	sigs[1].value = s2;
	/* The body fed 1, 2, ... 17 bytes at a time, then whole. */
	for (chunk = 0; chunk <= 17; chunk++) {
		m = verify_message(e, sigs, 2, NULL, NULL, 0, base_body, chunk);
		assert_int_equal(dkimf_msg_verified(m), 1);
		assert_int_equal(dkimf_msg_results(m), 2);
		assert_result(m, 0, DKIMF_PASS, "signature verified");
		assert_result(m, 1, DKIMF_PASS, "signature verified");
		dkimf_msg_free(m);
	}
	m = verify_message(e, sigs, 2, NULL, NULL, 0, base_body, 0);
	r = dkimf_msg_result(m, 0);
	assert_string_equal(r->domain, "example.org");
	assert_int_equal(r->keybits, 1024);
	assert_true(strncmp(r->props, "header.d=example.org header.s=rsa header.a=rsa-sha256 "
	    "header.b=", 63) == 0);
	assert_int_equal(strlen(r->props), 63 + 8);
	assert_non_null(strstr(dkimf_msg_result(m, 1)->props, "header.a=ed25519-sha256"));
	assert_int_equal(dkimf_msg_lookups(m), 2);
	dkimf_msg_free(m);

	/* Tampered body, tampered signed header, added body line. */
	m = verify_message(e, sigs, 2, NULL, NULL, 0, "Hello Bob,\r\n", 0);
	assert_result(m, 0, DKIMF_FAIL, "body hash mismatch");
	assert_result(m, 1, DKIMF_FAIL, "body hash mismatch");
	dkimf_msg_free(m);
	m = verify_message(e, sigs, 2, "hello\r\n there!", NULL, 0, base_body, 0);
	assert_result(m, 0, DKIMF_FAIL, "signature verification failed");
	assert_result(m, 1, DKIMF_FAIL, "signature verification failed");
	dkimf_msg_free(m);
	/* relaxed: refolding and case of names do not matter. */
	m = verify_message(e, sigs, 2, "hello  there", NULL, 0, base_body, 0);
	assert_result(m, 0, DKIMF_PASS, NULL);
	dkimf_msg_free(m);
	/* An added unsigned field is fine; a second From is not (oversigned). */
	{
		struct hdr	 x[] = { { "X-Added", "yes" } };
		struct hdr	 f[] = { { "From", "mallory@evil.example" } };

		m = verify_message(e, sigs, 2, NULL, x, 1, base_body, 0);
		assert_result(m, 0, DKIMF_PASS, NULL);
		dkimf_msg_free(m);
		m = verify_message(e, sigs, 2, NULL, f, 1, base_body, 0);
		assert_result(m, 0, DKIMF_FAIL, NULL);
		dkimf_msg_free(m);
	}
	free(s1);
	free(s2);
	dkimf_key_free(rsa);
	dkimf_key_free(ed);
	dkimf_engine_free(e);
}

static void
test_engine_key_problems(void **state)
{
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_key	*rsa = key(e, "rsa", rsa1024_pem);
	struct dkimf_msg	*m;
	struct hdr		 sig;
	char			*s, big[1500];
	static const struct {
		enum sluice_dns_status	 status;
		const char		*text;
		enum dkimf_result	 want;
		const char		*reason;
	} cases[] = {
		{ SLUICE_DNS_NXDOMAIN, NULL, DKIMF_PERMERROR, "no key for signature" },
		{ SLUICE_DNS_SERVFAIL, NULL, DKIMF_TEMPERROR, "key lookup failed temporarily" },
		{ SLUICE_DNS_OK, "v=DKIM1; k=rsa; p=!!!not base64!!!", DKIMF_PERMERROR, NULL },
		{ SLUICE_DNS_OK, "v=DKIM1; k=rsa; p=bm90IGEga2V5", DKIMF_PERMERROR, NULL },
		{ SLUICE_DNS_OK, "garbage", DKIMF_PERMERROR, NULL },
		{ SLUICE_DNS_OK, "", DKIMF_PERMERROR, NULL },
		{ SLUICE_DNS_OK, "v=DKIM1; k=rsa; p=", DKIMF_PERMERROR, "key revoked" },
		{ SLUICE_DNS_OK, "v=DKIM1; k=ed25519; " RSA1024_P, DKIMF_PERMERROR, NULL },
		{ SLUICE_DNS_OK, ED25519_RECORD, DKIMF_PERMERROR, NULL },
		{ SLUICE_DNS_OK, "v=DKIM1; h=sha1; k=rsa; " RSA1024_P, DKIMF_PERMERROR,
		    "key not valid for this signature" },
		{ SLUICE_DNS_OK, "v=DKIM2; k=rsa; " RSA1024_P, DKIMF_PERMERROR, NULL },
		{ SLUICE_DNS_OK, RSA1024_RECORD, DKIMF_PASS, NULL },
	};
	size_t			 i;

	(void)state;
	s = sign_message(e, rsa, "example.org", NULL, 0, base_body);
	sig.name = "DKIM-Signature";
	sig.value = s;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		zone_reset();
		zone_add("rsa._domainkey.example.org", cases[i].status, cases[i].text);
		m = verify_message(e, &sig, 1, NULL, NULL, 0, base_body, 0);
		if (dkimf_msg_result(m, 0)->result != cases[i].want)
			fail_msg("case %zu (%s): %s (%s)", i, cases[i].text != NULL ?
			    cases[i].text : "-", dkimf_result_name(dkimf_msg_result(m, 0)->result),
			    dkimf_msg_result(m, 0)->reason);
		assert_result(m, 0, cases[i].want, cases[i].reason);
		assert_int_equal(zone_queries, 1);
		dkimf_msg_free(m);
	}
	/* A record longer than libopendkim's buffer: refused, not truncated. */
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "v=DKIM1; p=", 11);
	zone_reset();
	zone_add("rsa._domainkey.example.org", SLUICE_DNS_OK, big);
	m = verify_message(e, &sig, 1, NULL, NULL, 0, base_body, 0);
	assert_result(m, 0, DKIMF_PERMERROR, "key record unusable");
	assert_non_null(strstr(dkimf_msg_result(m, 0)->why, "too long"));
	dkimf_msg_free(m);
	free(s);
	dkimf_key_free(rsa);
	dkimf_engine_free(e);
}

static void
test_engine_prefetch(void **state)
{
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_key	*rsa = key(e, "rsa", rsa1024_pem);
	struct dkimf_msg	*m;
	const char		*names[10];
	char			*s, *s2, *p;
	size_t			 i;

	(void)state;
	s = sign_message(e, rsa, "example.org", NULL, 0, base_body);
	assert_non_null(p = strstr(s, "s=rsa;"));
	assert_true(asprintf(&s2, "%.*ss=other;%s", (int)(p - s), s, p + 6) > 0);
	zone_reset();
	m = dkimf_msg_new(e, 5, 1);
	dkimf_msg_header(m, "DKIM-Signature", s);
	dkimf_msg_header(m, "DKIM-Signature", s2);
	dkimf_msg_header(m, "DKIM-Signature", s);
	dkimf_msg_header(m, "DKIM-Signature", "v=1; broken");
	for (i = 0; i < NBASE; i++)
		dkimf_msg_header(m, base_headers[i].name, base_headers[i].value);
	dkimf_msg_eoh(m, NULL, NULL, 0);
	/* Two distinct keys; the malformed signature wants none. */
	assert_int_equal(dkimf_msg_key_names(m, names, 10), 2);
	assert_string_equal(names[0], "rsa._domainkey.example.org");
	assert_string_equal(names[1], "other._domainkey.example.org");
	assert_int_equal(dkimf_msg_key_names(m, names, 1), 1);
	dkimf_msg_key_answer(m, "rsa._domainkey.example.org", DKIMF_LOOKUP_OK, RSA1024_RECORD,
	    "");
	dkimf_msg_key_answer(m, "rsa._domainkey.example.org", DKIMF_LOOKUP_TEMP, NULL, "late");
	dkimf_msg_key_answer(m, "unknown._domainkey.example.org", DKIMF_LOOKUP_OK, "x", "");
	assert_int_equal(dkimf_msg_key_names(m, names, 10), 1);
	dkimf_msg_body(m, (const unsigned char *)base_body, strlen(base_body));
	/* No lookup function: the unanswered key is a temperror, nothing asked. */
	dkimf_msg_eom(m, NULL, NULL);
	assert_int_equal(zone_queries, 0);
	assert_int_equal(dkimf_msg_results(m), 4);
	assert_result(m, 0, DKIMF_PASS, NULL);
	assert_result(m, 1, DKIMF_TEMPERROR, NULL);
	assert_string_equal(dkimf_msg_result(m, 1)->why, "not looked up");
	assert_result(m, 2, DKIMF_PASS, NULL);
	assert_result(m, 3, DKIMF_NEUTRAL, NULL);
	assert_int_equal(dkimf_msg_lookups(m), 1);
	dkimf_msg_free(m);
	free(s);
	free(s2);
	dkimf_key_free(rsa);
	dkimf_engine_free(e);
}

static void
test_engine_rfc8301(void **state)
{
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_msg	*m;
	struct hdr		 sig;
	char			*s;

	(void)state;
	zone_reset();
	zone_add("sha1._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
	zone_add("small._domainkey.example.org", SLUICE_DNS_OK, RSA512_RECORD);
	sig.name = "DKIM-Signature";
	s = raw_sign(rsa1024_pem, DKIM_SIGN_RSASHA1, 1024, "sha1", base_body);
	assert_non_null(strstr(s, "a=rsa-sha1;"));
	sig.value = s;
	m = verify_message(e, &sig, 1, NULL, NULL, 0, base_body, 0);
	assert_result(m, 0, DKIMF_FAIL, "rsa-sha1 is not acceptable (RFC 8301)");
	assert_non_null(strstr(dkimf_msg_result(m, 0)->props, "header.a=rsa-sha1"));
	dkimf_msg_free(m);
	free(s);
	s = raw_sign(rsa512_pem, DKIM_SIGN_RSASHA256, 512, "small", base_body);
	sig.value = s;
	m = verify_message(e, &sig, 1, NULL, NULL, 0, base_body, 0);
	assert_result(m, 0, DKIMF_PERMERROR, "key too small");
	dkimf_msg_free(m);
	free(s);
	dkimf_engine_free(e);
}

static void
test_engine_many_signatures(void **state)
{
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_key	*rsa = key(e, "s0", rsa1024_pem);
	struct dkimf_msg	*m;
	struct hdr		 sigs[100];
	char			*s, *copies[100], *p;
	size_t			 i;

	(void)state;
	zone_reset();
	zone_add("s0._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
	s = sign_message(e, rsa, "example.org", NULL, 0, base_body);
	/* 100 signatures with 100 selectors: 10 verified, 10 lookups. */
	for (i = 0; i < 100; i++) {
		assert_non_null(p = strstr(s, "s=s0;"));
		assert_true(asprintf(&copies[i], "%.*ss=s%zu;%s", (int)(p - s), s, i, p + 5) > 0);
		sigs[i].name = "DKIM-Signature";
		sigs[i].value = copies[i];
	}
	m = verify_message(e, sigs, 100, NULL, NULL, 0, base_body, 0);
	assert_int_equal(dkimf_msg_signatures_seen(m), 100);
	assert_int_equal(dkimf_msg_signatures_skipped(m), 90);
	assert_int_equal(dkimf_msg_results(m), 10);
	assert_int_equal(dkimf_msg_lookups(m), 10);
	assert_int_equal(zone_queries, 10);
	assert_result(m, 0, DKIMF_PASS, NULL);
	for (i = 1; i < 10; i++)
		assert_result(m, i, DKIMF_PERMERROR, "no key for signature");
	dkimf_msg_free(m);
	/* 100 copies of one signature: one lookup. */
	for (i = 0; i < 100; i++)
		sigs[i].value = s;
	zone_reset();
	zone_add("s0._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
	m = verify_message(e, sigs, 100, NULL, NULL, 0, base_body, 0);
	assert_int_equal(dkimf_msg_results(m), 10);
	assert_int_equal(zone_queries, 1);
	for (i = 0; i < 10; i++)
		assert_result(m, i, DKIMF_PASS, NULL);
	dkimf_msg_free(m);
	/* The same with the key failing: the failure is not asked again. */
	zone_reset();
	zone_add("s0._domainkey.example.org", SLUICE_DNS_SERVFAIL, NULL);
	m = verify_message(e, sigs, 100, NULL, NULL, 0, base_body, 0);
	assert_int_equal(zone_queries, 1);
	for (i = 0; i < 10; i++)
		assert_result(m, i, DKIMF_TEMPERROR, NULL);
	dkimf_msg_free(m);
	for (i = 0; i < 100; i++)
		free(copies[i]);
	free(s);
	dkimf_key_free(rsa);
	dkimf_engine_free(e);
}

static void
test_engine_big_fields(void **state)
{
	static const char *const hdrs[] = { "From", "X-Long" };
	struct dkimf_engine	*e = engine(1024, 10, hdrs, 2);
	struct dkimf_key	*rsa = key(e, "rsa", rsa1024_pem);
	struct dkimf_msg	*m;
	struct hdr		 sig, x;
	char			*s, *longv;
	size_t			 i;

	(void)state;
	zone_reset();
	zone_add("rsa._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
	/* A 100 KB field, unfolded. */
	longv = malloc(100 * 1024 + 1);
	memset(longv, 'x', 100 * 1024);
	longv[100 * 1024] = '\0';
	x.name = "X-Long";
	x.value = longv;
	s = sign_message(e, rsa, "example.org", &x, 1, base_body);
	assert_non_null(strstr(s, "h=From:From:X-Long;"));
	sig.name = "DKIM-Signature";
	sig.value = s;
	m = verify_message(e, &sig, 1, NULL, &x, 1, base_body, 0);
	assert_result(m, 0, DKIMF_PASS, NULL);
	dkimf_msg_free(m);
	longv[5000] = 'y';
	m = verify_message(e, &sig, 1, NULL, &x, 1, base_body, 0);
	assert_result(m, 0, DKIMF_FAIL, NULL);
	dkimf_msg_free(m);
	/* Over DKIMF_HEADER_MAX: not verifiable, and not signed. */
	m = dkimf_msg_new(e, 3, 1);
	dkimf_msg_header(m, "DKIM-Signature", s);
	dkimf_msg_header(m, "From", "a@example.org");
	for (i = 0; i < 11; i++)
		dkimf_msg_header(m, "X-Long", longv);
	dkimf_msg_eoh(m, "example.org", &rsa, 1);
	assert_false(dkimf_msg_active(m));
	dkimf_msg_eom(m, zone_lookup, NULL);
	assert_int_equal(dkimf_msg_verified(m), -1);
	assert_non_null(strstr(dkimf_msg_verify_error(m), "header section over"));
	assert_null(dkimf_msg_signature(m, 0));
	assert_non_null(strstr(dkimf_msg_sign_error(m, 0), "header section over"));
	dkimf_msg_free(m);
	free(longv);
	free(s);
	dkimf_key_free(rsa);
	dkimf_engine_free(e);
}

static void
test_engine_odd_messages(void **state)
{
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_key	*rsa = key(e, "rsa", rsa1024_pem);
	struct dkimf_msg	*m;
	static const char *const junk[] = {
		"", ";", "v=1", "v=1; a=rsa-sha256; d=example.org; s=rsa; b=", "=;=;=;",
		"v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=rsa; h=From; bh=x; b=y",
		"v=1; a=nonsense; d=example.org; s=rsa; h=From; bh=AAAA; b=AAAA",
		"v=1; a=rsa-sha256; d=exa\"mple.org; s=r s; h=From; bh=AAAA; b=AAAA",
		"v=1; a=rsa-sha256; d=example.org; s=rsa; h=From; bh=AAAA; b=AAAA; l=99999999999",
	};
	size_t			 i;

	(void)state;
	zone_reset();
	zone_add("rsa._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
	/* Unsigned: verified, no result, no handle, no lookup. */
	m = verify_message(e, NULL, 0, NULL, NULL, 0, base_body, 0);
	assert_int_equal(dkimf_msg_verified(m), 1);
	assert_int_equal(dkimf_msg_results(m), 0);
	assert_int_equal(zone_queries, 0);
	dkimf_msg_free(m);
	/* Broken signatures: a result each, none passes, nothing crashes. */
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		struct hdr	 sig = { "DKIM-Signature", junk[i] };

		m = verify_message(e, &sig, 1, NULL, NULL, 0, base_body, 0);
		assert_int_not_equal(dkimf_msg_verified(m), 0);
		if (dkimf_msg_results(m) > 0 && dkimf_msg_result(m, 0)->result == DKIMF_PASS)
			fail_msg("junk %zu passed", i);
		dkimf_msg_free(m);
	}
	/* Two From fields or none: no signing domain. */
	m = dkimf_msg_new(e, 4, 0);
	dkimf_msg_header(m, "From", "a@example.org");
	dkimf_msg_header(m, "From", "b@example.org");
	assert_null(dkimf_msg_from_domain(m));
	dkimf_msg_free(m);
	m = dkimf_msg_new(e, 4, 0);
	dkimf_msg_header(m, "from", "A <a@Example.Org>");
	assert_string_equal(dkimf_msg_from_domain(m), "example.org");
	dkimf_msg_eoh(m, NULL, NULL, 0);
	assert_false(dkimf_msg_active(m));
	assert_int_equal(dkimf_msg_verified(m), 0);
	dkimf_msg_free(m);
	/* An empty body signs and verifies. */
	{
		char		*s = sign_message(e, rsa, "example.org", NULL, 0, "");
		struct hdr	 sig = { "DKIM-Signature", s };

		m = verify_message(e, &sig, 1, NULL, NULL, 0, "", 0);
		assert_result(m, 0, DKIMF_PASS, NULL);
		dkimf_msg_free(m);
		m = verify_message(e, &sig, 1, NULL, NULL, 0, "\r\n\r\n", 0);
		assert_result(m, 0, DKIMF_PASS, NULL);	/* trailing empty lines */
		dkimf_msg_free(m);
		free(s);
	}
	dkimf_key_free(rsa);
	dkimf_engine_free(e);
}

/* --- The filter through the fake API ---------------------------------------- */

struct fixture {
	struct sluice_filter	 f;
	void			*inst;
	struct sluice_ctx	 ctx;
	char			 err[512];
};

static int
fixture_init(struct fixture *fx, const struct fake_opt *opts, size_t n)
{
	size_t	 i;

	memset(fx, 0, sizeof(*fx));
	for (i = 0; i < n; i++)
		fx->f.opts[fx->f.nopts++] = opts[i];
	recorded_reset();
	if (sluice_builtin_dkim.init(&fx->f, &fx->inst, fx->err, sizeof(fx->err)) == -1)
		return -1;
	fx->ctx.instance = fx->inst;
	fx->ctx.id = 0x1234;
	return 0;
}

static void
fixture_free(struct fixture *fx)
{
	if (fx->ctx.instance != NULL) {
		sluice_builtin_dkim.on_close(&fx->ctx);
		pool_run();
		sluice_builtin_dkim.fini(fx->inst);
	}
	fake_filter_free(&fx->f);
	recorded_reset();
}

/* init must refuse opts with err containing want. */
static void
init_refused(const struct fake_opt *opts, size_t n, const char *want)
{
	struct fixture	 fx;

	if (fixture_init(&fx, opts, n) == 0) {
		fixture_free(&fx);
		fail_msg("init accepted, want \"%s\"", want);
	}
	if (strstr(fx.err, want) == NULL)
		fail_msg("init said \"%s\", want \"%s\"", fx.err, want);
	fake_filter_free(&fx.f);
}

static void
test_filter_options(void **state)
{
	struct fixture	 fx;
	const char	*rsa = strdup(write_file("rsa.pem", rsa1024_pem));
	const char	*ed = strdup(write_file("ed.pem", ed25519_pem));
	const char	*small = strdup(write_file("small.pem", rsa512_pem));
	const struct fake_opt ok[] = {
		{ "sign", "true" }, { "sign_domains", "{\"Example.org\"}" },
		{ "selector", "rsa" }, { "key_file", rsa },
		{ "selector2", "ed" }, { "key_file2", ed },
	};

	(void)state;
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);	/* defaults: verify only */
	fixture_free(&fx);
	assert_int_equal(fixture_init(&fx, ok, 6), 0);
	fixture_free(&fx);
	{
		const struct fake_opt o[] = { { "verify", "false" } };
		init_refused(o, 1, "verify and sign are both false");
	}
	{
		const struct fake_opt o[] = { { "max_signatures", "0" } };
		init_refused(o, 1, "max_signatures must be 1 to 50");
	}
	{
		const struct fake_opt o[] = { { "max_signatures", "51" } };
		init_refused(o, 1, "max_signatures must be 1 to 50");
	}
	{
		const struct fake_opt o[] = { { "min_key_bits", "512" } };
		init_refused(o, 1, "min_key_bits must be 1024 to 4096");
	}
	{
		const struct fake_opt o[] = { { "on_fail", "discard" } };
		init_refused(o, 1, "on_fail must be continue, tempfail or reject");
	}
	{
		const struct fake_opt o[] = { { "on_temperror", "" } };
		init_refused(o, 1, "on_temperror must be");
	}
	{
		const struct fake_opt o[] = { { "sign_headers", "{\"To\", \"Subject\"}" } };
		init_refused(o, 1, "sign_headers must include From");
	}
	{
		const struct fake_opt o[] = { { "sign_headers", "{\"From\", \"X-.*\"}" } };
		init_refused(o, 1, "sign_headers: \"X-.*\" is not a header name");
	}
	{
		const struct fake_opt o[] = { { "sign_headers", "{}" } };
		init_refused(o, 1, "sign_headers must list 1 to 64 names");
	}
	{
		const struct fake_opt o[] = { { "sign", "true" }, { "selector", "rsa" },
		    { "key_file", rsa } };
		init_refused(o, 3, "sign = true needs sign_domains or sign_authenticated");
	}
	{
		const struct fake_opt o[] = { { "sign", "true" },
		    { "sign_domains", "{\"example.org\"}" } };
		init_refused(o, 2, "sign = true needs selector and key_file together");
	}
	{
		const struct fake_opt o[] = { { "sign", "true" },
		    { "sign_domains", "{\"example.org\"}" }, { "selector", "rsa" },
		    { "key_file", rsa }, { "selector2", "ed" } };
		init_refused(o, 5, "needs selector2 and key_file2 together");
	}
	{
		const struct fake_opt o[] = { { "sign", "true" },
		    { "sign_domains", "{\"exa mple.org\"}" }, { "selector", "rsa" },
		    { "key_file", rsa } };
		init_refused(o, 4, "sign_domains: \"exa mple.org\" is not a domain name");
	}
	{
		const struct fake_opt o[] = { { "sign", "true" }, { "sign_authenticated", "true" },
		    { "selector", "rsa" }, { "key_file", "/nonexistent/key.pem" } };
		init_refused(o, 4, "key_file /nonexistent/key.pem: No such file or directory");
	}
	{
		const struct fake_opt o[] = { { "sign", "true" }, { "sign_authenticated", "true" },
		    { "selector", "rsa" }, { "key_file", small } };
		init_refused(o, 4, "RSA key of 512 bits, min_key_bits is 1024");
	}
	{
		/* Keys are not read at all when not signing. */
		const struct fake_opt o[] = { { "key_file", "/nonexistent/key.pem" },
		    { "selector", "rsa" } };
		assert_int_equal(fixture_init(&fx, o, 2), 0);
		fixture_free(&fx);
	}
	free((void *)rsa);
	free((void *)ed);
	free((void *)small);
}

/* Feed base_headers (+ first) and body through the hooks, up to EOM. */
static enum sluice_verdict
filter_message(struct fixture *fx, const struct hdr *first, size_t nfirst, const char *body)
{
	const struct sluice_module	*mod = &sluice_builtin_dkim;
	enum sluice_verdict		 v;
	size_t				 i, len = strlen(body), n;

	for (i = 0; i < nfirst; i++)
		assert_int_equal(mod->on_header(&fx->ctx, first[i].name, first[i].value),
		    SLUICE_CONTINUE);
	for (i = 0; i < NBASE; i++)
		assert_int_equal(mod->on_header(&fx->ctx, base_headers[i].name,
		    base_headers[i].value), SLUICE_CONTINUE);
	assert_int_equal(mod->on_eoh(&fx->ctx), SLUICE_CONTINUE);
	for (i = 0; i < len; i += n) {
		n = len - i < 65536 ? len - i : 65536;
		v = mod->on_body(&fx->ctx, (const unsigned char *)body + i, n);
		if (v == SLUICE_PENDING) {
			pool_run();
			assert_int_equal(R.resume_verdict, SLUICE_CONTINUE);
		} else
			assert_int_equal(v, SLUICE_CONTINUE);
	}
	fx->ctx.can_change = 1;
	v = mod->on_eom(&fx->ctx);
	fx->ctx.can_change = 0;
	return v;
}

static void
test_filter_verify(void **state)
{
	struct fixture		 fx;
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_key	*rsa = key(e, "rsa", rsa1024_pem);
	struct hdr		 sig;
	char			*s;

	(void)state;
	zone_reset();
	zone_add("rsa._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
	s = sign_message(e, rsa, "example.org", NULL, 0, base_body);
	sig.name = "DKIM-Signature";
	sig.value = s;

	/* A pass: PENDING, then one A-R entry, the note, CONTINUE. */
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);
	zone_queries = 0;
	assert_int_equal(filter_message(&fx, &sig, 1, base_body), SLUICE_PENDING);
	assert_int_equal(R.nauthres, 0);
	assert_int_equal(R.nqueries, 1);	/* asked at the end of the header */
	assert_string_equal(R.queries[0].name, "rsa._domainkey.example.org");
	pool_run();
	assert_int_equal(R.blocking, 0);	/* the pool did not wait on DNS */
	assert_int_equal(zone_queries, 1);
	assert_int_equal(R.resumed, 1);
	assert_int_equal(R.resume_verdict, SLUICE_CONTINUE);
	assert_int_equal(R.nauthres, 1);
	assert_string_equal(R.authres[0][0], "dkim");
	assert_string_equal(R.authres[0][1], "pass");
	assert_string_equal(R.authres[0][2], "(null)");	/* no reason for a pass */
	assert_true(strncmp(R.authres[0][3], "header.d=example.org header.s=rsa "
	    "header.a=rsa-sha256 header.b=", 63) == 0);
	assert_int_equal(strlen(R.authres[0][3]), 63 + 8);
	assert_string_equal(note("dkim.pass_domains"), "example.org");
	assert_string_equal(note("dkim.result"), "pass");
	assert_non_null(strstr(R.log, "dkim result=pass header.d=example.org header.s=rsa "));
	assert_non_null(strstr(R.log, "key_bits=1024 reason=\"signature verified\""));
	assert_int_equal(R.nhdrs, 0);
	/* The next transaction on the session starts clean. */
	sluice_builtin_dkim.on_reset(&fx.ctx);
	recorded_reset();
	assert_int_equal(filter_message(&fx, NULL, 0, base_body), SLUICE_CONTINUE);
	assert_int_equal(R.njobs, 0);		/* unsigned: no pool job */
	assert_int_equal(R.nauthres, 1);
	assert_string_equal(R.authres[0][1], "none");
	assert_string_equal(note("dkim.pass_domains"), "");
	assert_string_equal(note("dkim.result"), "none");
	fixture_free(&fx);

	/* A query that cannot start: the pool job asks, blocking. */
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);
	R.dns_refuse = 1;
	assert_int_equal(filter_message(&fx, &sig, 1, base_body), SLUICE_PENDING);
	pool_run();
	assert_int_equal(R.blocking, 1);
	assert_string_equal(R.authres[0][1], "pass");
	fixture_free(&fx);

	/* Tampered, on_fail = reject: 550 5.7.20 through the resume. */
	{
		const struct fake_opt o[] = { { "on_fail", "reject" } };

		assert_int_equal(fixture_init(&fx, o, 1), 0);
		assert_int_equal(filter_message(&fx, &sig, 1, "tampered\r\n"), SLUICE_PENDING);
		pool_run();
		assert_int_equal(R.resume_verdict, SLUICE_REJECT);
		assert_int_equal(R.resume_code, 550);
		assert_string_equal(R.resume_enh, "5.7.20");
		assert_string_equal(R.authres[0][1], "fail");
		assert_string_equal(note("dkim.pass_domains"), "");
		fixture_free(&fx);
	}
	/* SERVFAIL, on_temperror = tempfail: 451 4.4.3. */
	{
		const struct fake_opt o[] = { { "on_temperror", "tempfail" } };

		zone_reset();
		zone_add("rsa._domainkey.example.org", SLUICE_DNS_SERVFAIL, NULL);
		assert_int_equal(fixture_init(&fx, o, 1), 0);
		assert_int_equal(filter_message(&fx, &sig, 1, base_body), SLUICE_PENDING);
		pool_run();
		assert_int_equal(R.resume_verdict, SLUICE_TEMPFAIL);
		assert_int_equal(R.resume_code, 451);
		assert_string_equal(R.resume_enh, "4.4.3");
		assert_string_equal(R.authres[0][1], "temperror");
		assert_non_null(strstr(R.log, "servfail: test servfail"));
		fixture_free(&fx);
	}
	/* Unsigned, on_none = reject: answered in the hook itself. */
	{
		const struct fake_opt o[] = { { "on_none", "reject" } };

		assert_int_equal(fixture_init(&fx, o, 1), 0);
		assert_int_equal(filter_message(&fx, NULL, 0, base_body), SLUICE_REJECT);
		assert_int_equal(R.reply_code, 550);
		assert_string_equal(R.reply_enh, "5.7.20");
		fixture_free(&fx);
	}
	/* on_fail = tempfail does not apply to a pass. */
	{
		const struct fake_opt o[] = { { "on_fail", "tempfail" }, { "on_none", "reject" } };

		zone_reset();
		zone_add("rsa._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
		assert_int_equal(fixture_init(&fx, o, 2), 0);
		assert_int_equal(filter_message(&fx, &sig, 1, base_body), SLUICE_PENDING);
		pool_run();
		assert_int_equal(R.resume_verdict, SLUICE_CONTINUE);
		fixture_free(&fx);
	}
	free(s);
	dkimf_key_free(rsa);
	dkimf_engine_free(e);
}

static void
test_filter_sign(void **state)
{
	struct fixture		 fx;
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_msg	*m;
	struct hdr		 sigs[2];
	const char		*rsa = strdup(write_file("rsa.pem", rsa1024_pem));
	const char		*ed = strdup(write_file("ed.pem", ed25519_pem));
	const struct fake_opt	 o[] = {
		{ "sign", "true" }, { "sign_domains", "{\"example.net\", \"EXAMPLE.ORG\"}" },
		{ "selector", "rsa" }, { "key_file", rsa },
		{ "selector2", "ed" }, { "key_file2", ed },
	};
	const struct fake_opt	 auth[] = {
		{ "sign", "true" }, { "verify", "false" }, { "sign_authenticated", "true" },
		{ "selector", "ed" }, { "key_file", ed },
	};

	(void)state;
	zone_reset();
	zone_add("rsa._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
	zone_add("ed._domainkey.example.org", SLUICE_DNS_OK, ED25519_RECORD);
	/* Verify (unsigned: none) and sign with both keys, rsa on top. */
	assert_int_equal(fixture_init(&fx, o, 6), 0);
	assert_int_equal(filter_message(&fx, NULL, 0, base_body), SLUICE_PENDING);
	pool_run();
	assert_int_equal(R.resume_verdict, SLUICE_CONTINUE);
	assert_string_equal(R.authres[0][1], "none");
	assert_int_equal(R.nhdrs, 2);
	assert_string_equal(R.hdr_name[0], "DKIM-Signature");
	assert_non_null(strstr(R.hdr_value[0], "a=ed25519-sha256;"));	/* inserted first ... */
	assert_non_null(strstr(R.hdr_value[1], "a=rsa-sha256;"));	/* ... so rsa is on top */
	assert_non_null(strstr(R.log, "dkim signed d=example.org s=rsa a=rsa-sha256"));
	assert_non_null(strstr(R.log, "dkim signed d=example.org s=ed a=ed25519-sha256"));
	/* What it added verifies. */
	sigs[0].name = sigs[1].name = "DKIM-Signature";
	sigs[0].value = R.hdr_value[1];
	sigs[1].value = R.hdr_value[0];
	m = verify_message(e, sigs, 2, NULL, NULL, 0, base_body, 0);
	assert_result(m, 0, DKIMF_PASS, NULL);
	assert_result(m, 1, DKIMF_PASS, NULL);
	dkimf_msg_free(m);
	fixture_free(&fx);

	/* A From domain not listed, no AUTH: not signed. */
	assert_int_equal(fixture_init(&fx, o, 6), 0);
	assert_int_equal(sluice_builtin_dkim.on_header(&fx.ctx, "From", "x@example.com"),
	    SLUICE_CONTINUE);
	assert_int_equal(sluice_builtin_dkim.on_eoh(&fx.ctx), SLUICE_CONTINUE);
	fx.ctx.can_change = 1;
	assert_int_equal(sluice_builtin_dkim.on_eom(&fx.ctx), SLUICE_CONTINUE);
	assert_int_equal(R.nhdrs, 0);
	assert_non_null(strstr(R.log, "not signing: from_domain=example.com authenticated=no"));
	fixture_free(&fx);

	/* sign_authenticated: any From domain of an authenticated client. */
	assert_int_equal(fixture_init(&fx, auth, 5), 0);
	fx.ctx.auth_user = "alice";
	assert_int_equal(filter_message(&fx, NULL, 0, base_body), SLUICE_PENDING);
	pool_run();
	assert_int_equal(R.nhdrs, 1);
	assert_int_equal(R.nauthres, 0);		/* verify = false */
	assert_null(note("dkim.result"));
	fixture_free(&fx);
	assert_int_equal(fixture_init(&fx, auth, 5), 0);
	assert_int_equal(filter_message(&fx, NULL, 0, base_body), SLUICE_CONTINUE);
	assert_int_equal(R.nhdrs, 0);
	fixture_free(&fx);

	/* Header insertion refused by the core: on_error applies. */
	assert_int_equal(fixture_init(&fx, auth, 5), 0);
	fx.ctx.auth_user = "alice";
	assert_int_equal(filter_message(&fx, NULL, 0, base_body), SLUICE_PENDING);
	R.nhdrs = 4;	/* the fake refuses inserts now */
	pool_run();
	assert_int_equal(R.resume_verdict, SLUICE_TEMPFAIL);
	assert_string_equal(R.resume_fail, "cannot add the DKIM-Signature field");
	R.nhdrs = 0;
	fixture_free(&fx);
	free((void *)rsa);
	free((void *)ed);
	dkimf_engine_free(e);
}

static void
test_filter_lifetimes(void **state)
{
	struct fixture		 fx;
	struct dkimf_engine	*e = engine(1024, 10, NULL, 0);
	struct dkimf_key	*rsa = key(e, "rsa", rsa1024_pem);
	struct hdr		 sigs[10];
	char			*s, *body;
	size_t			 i;
	void			*inst;

	(void)state;
	zone_reset();
	zone_add("rsa._domainkey.example.org", SLUICE_DNS_OK, RSA1024_RECORD);
	s = sign_message(e, rsa, "example.org", NULL, 0, base_body);
	for (i = 0; i < 10; i++) {
		sigs[i].name = "DKIM-Signature";
		sigs[i].value = s;
	}

	/* Session closed while the EOM hook waits for its key: resumed, unheard. */
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);
	assert_int_equal(filter_message(&fx, sigs, 1, base_body), SLUICE_PENDING);
	assert_int_equal(R.nqueries, 1);
	assert_int_equal(R.njobs, 0);		/* the job waits for the answer */
	sluice_builtin_dkim.on_close(&fx.ctx);
	assert_null(fx.ctx.data);
	pool_run();
	assert_int_equal(R.resumed, 1);
	assert_int_equal(R.nauthres, 0);
	fixture_free(&fx);

	/* The same while the job runs (no prefetch): no lookup for nobody. */
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);
	R.dns_refuse = 1;
	assert_int_equal(filter_message(&fx, sigs, 1, base_body), SLUICE_PENDING);
	assert_int_equal(R.njobs, 1);
	sluice_builtin_dkim.on_close(&fx.ctx);
	pool_run();
	assert_int_equal(R.resumed, 1);
	assert_int_equal(R.nauthres, 0);
	assert_int_equal(R.blocking, 0);
	fixture_free(&fx);

	/* The instance freed (reload) while a job runs: the job keeps it. */
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);
	assert_int_equal(filter_message(&fx, sigs, 1, base_body), SLUICE_PENDING);
	sluice_builtin_dkim.on_close(&fx.ctx);
	inst = fx.inst;
	sluice_builtin_dkim.fini(inst);
	pool_run();
	assert_int_equal(R.resumed, 1);
	fx.ctx.instance = NULL;
	fixture_free(&fx);

	/* The EOM hook timed out: the late done records nothing. */
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);
	assert_int_equal(filter_message(&fx, sigs, 1, base_body), SLUICE_PENDING);
	R.timed_out = 1;
	pool_run();
	assert_int_equal(R.resumed, 1);
	assert_int_equal(R.nauthres, 0);
	R.timed_out = 0;
	sluice_builtin_dkim.on_reset(&fx.ctx);
	fixture_free(&fx);

	/* Reset (RSET after a timeout) while the EOM job runs. */
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);
	assert_int_equal(filter_message(&fx, sigs, 1, base_body), SLUICE_PENDING);
	sluice_builtin_dkim.on_reset(&fx.ctx);
	assert_int_equal(filter_message(&fx, NULL, 0, base_body), SLUICE_CONTINUE);
	assert_string_equal(R.authres[0][1], "none");
	pool_run();
	assert_int_equal(R.resumed, 1);
	fixture_free(&fx);

	/* Ten signatures and a 200 KB body: hashing goes to the pool. */
	body = malloc(200 * 1024 + 1);
	for (i = 0; i < 200 * 1024; i++)
		body[i] = i % 64 == 62 ? '\r' : i % 64 == 63 ? '\n' : 'a';
	body[200 * 1024] = '\0';
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);
	assert_int_equal(filter_message(&fx, sigs, 10, body), SLUICE_PENDING);
	assert_int_equal(R.resumed, 3);		/* 3 full body chunks went to the pool */
	pool_run();
	assert_int_equal(R.resumed, 4);
	assert_int_equal(R.nauthres, 10);
	assert_string_equal(R.authres[0][1], "fail");	/* another body */
	fixture_free(&fx);

	/* A body chunk hook that timed out: the next hook gives the message up. */
	assert_int_equal(fixture_init(&fx, NULL, 0), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(sluice_builtin_dkim.on_header(&fx.ctx, sigs[i].name,
		    sigs[i].value), SLUICE_CONTINUE);
	assert_int_equal(sluice_builtin_dkim.on_header(&fx.ctx, "From", "a@example.org"),
	    SLUICE_CONTINUE);
	assert_int_equal(sluice_builtin_dkim.on_eoh(&fx.ctx), SLUICE_CONTINUE);
	assert_int_equal(sluice_builtin_dkim.on_body(&fx.ctx, (unsigned char *)body, 65536),
	    SLUICE_PENDING);
	assert_int_equal(sluice_builtin_dkim.on_body(&fx.ctx, (unsigned char *)body, 65536),
	    SLUICE_CONTINUE);
	assert_non_null(strstr(R.log, "dkim message given up after a timeout"));
	fx.ctx.can_change = 1;
	assert_int_equal(sluice_builtin_dkim.on_eom(&fx.ctx), SLUICE_CONTINUE);
	assert_int_equal(R.nauthres, 0);
	pool_run();
	fixture_free(&fx);
	free(body);
	free(s);
	dkimf_key_free(rsa);
	dkimf_engine_free(e);
}

static int
group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dkim.XXXXXX");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	static const char *const files[] = {
		"key.pem", "empty.pem", "junk.pem", "public.pem", "small.pem", "k.pem",
		"rsa.pem", "ed.pem", "encrypted.pem", "ec.pem"
	};
	char	 path[128];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		(void)unlink(path);
	}
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_result_map),
		cmocka_unit_test(test_result_names_and_best),
		cmocka_unit_test(test_from_domain),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_props_and_words),
		cmocka_unit_test(test_txt_pick),
		cmocka_unit_test(test_canon),
		cmocka_unit_test(test_key_load),
		cmocka_unit_test(test_engine_sign_verify),
		cmocka_unit_test(test_engine_key_problems),
		cmocka_unit_test(test_engine_prefetch),
		cmocka_unit_test(test_engine_rfc8301),
		cmocka_unit_test(test_engine_many_signatures),
		cmocka_unit_test(test_engine_big_fields),
		cmocka_unit_test(test_engine_odd_messages),
		cmocka_unit_test(test_filter_options),
		cmocka_unit_test(test_filter_verify),
		cmocka_unit_test(test_filter_sign),
		cmocka_unit_test(test_filter_lifetimes),
	};

	return cmocka_run_group_tests_name("dkim", tests, group_setup, group_teardown);
}
