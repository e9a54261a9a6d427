/*
 * dnsprobe.c - test plugin for the resolver: at HELO it looks the HELO
 * name up (type from the option "type"), asynchronously from the hook or,
 * with "sync = yes", blocking inside an offloaded pool job, and answers
 * 550 with what it got, so the test reads the resolver's answer in the
 * SMTP reply: "550 5.7.0 dns status=ok rcode=0 n=2 [10 mx1.example.org] ...".
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_filter.h"

struct probe {
	enum sluice_dns_type	 type;
	int			 sync;
	struct sluice_filter	*filter;
};

struct probe_call {
	struct sluice_pending	*pending;
	struct probe		*p;
	char			 name[256];
	char			 text[400];
};

static const struct sluice_option probe_options[] = {
	{ "type", SLUICE_OPT_STRING, "A", 0, "A, AAAA, MX, TXT or PTR" },
	{ "sync", SLUICE_OPT_BOOL, "no", 0, "blocking lookup in the pool" },
	{ NULL, 0, NULL, 0, NULL }
};

static int
probe_init(struct sluice_filter *f, void **instance, char *err, size_t errlen)
{
	static const struct {
		const char		*name;
		enum sluice_dns_type	 type;
	} types[] = {
		{ "A", SLUICE_DNS_A }, { "AAAA", SLUICE_DNS_AAAA }, { "MX", SLUICE_DNS_MX },
		{ "TXT", SLUICE_DNS_TXT }, { "PTR", SLUICE_DNS_PTR },
	};
	struct probe	*p = calloc(1, sizeof(*p));
	const char	*t = sluice_option_string(f, "type");
	size_t		 i;

	if (p == NULL)
		return -1;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(t, types[i].name) == 0)
			p->type = types[i].type;
	if (p->type == 0) {
		snprintf(err, errlen, "type \"%s\" unknown", t);
		free(p);
		return -1;
	}
	p->sync = sluice_option_bool(f, "sync");
	p->filter = f;
	*instance = p;
	return 0;
}

static void
probe_fini(void *instance)
{
	free(instance);
}

static void
probe_format(struct probe_call *c, const struct sluice_dns_answer *a)
{
	size_t	 i, n;

	n = (size_t)snprintf(c->text, sizeof(c->text), "dns status=%s rcode=%d n=%zu",
	    sluice_dns_status_name(a->status), a->rcode, a->count);
	for (i = 0; i < a->count && n < sizeof(c->text); i++) {
		if (a->type == SLUICE_DNS_MX)
			n += (size_t)snprintf(c->text + n, sizeof(c->text) - n, " [%u %s]",
			    a->records[i].preference, a->records[i].text);
		else if (a->type == SLUICE_DNS_TXT)
			n += (size_t)snprintf(c->text + n, sizeof(c->text) - n, " [len=%zu %.40s]",
			    a->records[i].len, a->records[i].text);
		else
			n += (size_t)snprintf(c->text + n, sizeof(c->text) - n, " [%s]",
			    a->records[i].text);
	}
}

static void
probe_answered(void *arg, const struct sluice_dns_answer *a)
{
	struct probe_call	*c = arg;

	probe_format(c, a);
	sluice_resume(c->pending, SLUICE_REJECT, 550, "5.7.0", c->text);
	free(c);
}

static void
probe_work(void *arg)
{
	struct probe_call		*c = arg;
	struct sluice_dns_answer	*a = sluice_dns_lookup(c->p->filter, c->name, c->p->type);

	probe_format(c, a);
	sluice_dns_answer_free(a);
}

static void
probe_work_done(void *arg)
{
	struct probe_call	*c = arg;

	sluice_resume(c->pending, SLUICE_REJECT, 550, "5.7.0", c->text);
	free(c);
}

static enum sluice_verdict
probe_helo(struct sluice_ctx *ctx)
{
	struct probe		*p = sluice_instance(ctx);
	struct probe_call	*c = calloc(1, sizeof(*c));

	if (c == NULL)
		return SLUICE_TEMPFAIL;
	c->p = p;
	snprintf(c->name, sizeof(c->name), "%s", sluice_helo(ctx));
	c->pending = sluice_suspend(ctx);
	if (p->sync) {
		sluice_offload(ctx, probe_work, probe_work_done, c);
		return SLUICE_PENDING;
	}
	if (sluice_dns_query(ctx, c->name, p->type, probe_answered, c) == -1) {
		sluice_resume(c->pending, SLUICE_REJECT, 550, "5.7.0", "dns query refused");
		free(c);
	}
	return SLUICE_PENDING;
}

const struct sluice_module sluice_filter_module = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "dnsprobe",
	.description = "test: answers HELO with the resolver's answer for the HELO name",
	.options = probe_options,
	.init = probe_init,
	.fini = probe_fini,
	.on_helo = probe_helo,
};
