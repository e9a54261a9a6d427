/*
 * fuzz_mx.c - libFuzzer harness for the MX resolution rules
 * (proxy/mx_plan.c): every DNS answer the plan asks for is made from the
 * input (status, records with arbitrary text and preference), answered
 * in input-chosen order.  The plan must finish within MX_LOOKUPS_MAX
 * queries, and an OK result must list only hosts with 1..MX_ADDRS_MAX
 * addresses, at most MX_HOSTS_MAX of them, in preference order.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mx.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input, consumed byte by byte (zeros once it runs out). */
struct input {
	const uint8_t	*p;
	size_t		 left;
};

static unsigned int	 next_byte(struct input *);
static void		 answer(struct mx_plan *, int, enum sluice_dns_type, struct input *);
static void		 check_result(const struct mx_result *);

static unsigned int
next_byte(struct input *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

/* An answer of up to 4 records, texts up to 40 bytes from the input. */
static void
answer(struct mx_plan *p, int id, enum sluice_dns_type type, struct input *in)
{
	struct sluice_dns_answer	 a = { 0 };
	struct sluice_dns_record	 recs[4];
	char				 text[4][41];
	size_t				 i, j, len;

	a.type = type;
	a.name = "q";
	a.status = (enum sluice_dns_status)(next_byte(in) % 6);
	a.count = a.status == SLUICE_DNS_OK ? next_byte(in) % 4 + 1 : 0;
	a.records = recs;
	for (i = 0; i < a.count; i++) {
		len = next_byte(in) % 41;
		for (j = 0; j < len; j++)
			text[i][j] = (char)next_byte(in);
		text[i][len] = '\0';
		recs[i].text = text[i];
		recs[i].len = strlen(text[i]);
		recs[i].preference = next_byte(in) % 4;
		recs[i].ttl = 60;
	}
	mx_plan_feed(p, id, &a);
}

static void
check_result(const struct mx_result *r)
{
	size_t	 h;

	if (r->status == MX_OK && (r->nhosts == 0 || r->nhosts > MX_HOSTS_MAX))
		abort();
	if (r->status != MX_OK && (r->nhosts != 0 || r->reason == NULL))
		abort();
	for (h = 0; h < r->nhosts; h++) {
		if (r->hosts[h].naddrs == 0 || r->hosts[h].naddrs > MX_ADDRS_MAX)
			abort();
		if (h > 0 && r->hosts[h].preference < r->hosts[h - 1].preference)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input		 in = { data, size };
	struct mx_options	 o = { 0 };
	struct mx_dest		 d;
	struct mx_plan		*p;
	struct mx_result	*r;
	const char		*name;
	enum sluice_dns_type	 types[64];
	int			 ids[64], n, asked = 0, id, i, k, reverse;
	char			 err[100];

	o.families = (enum mx_family)(next_byte(&in) % 3);
	o.prefer_ipv4 = next_byte(&in) & 1;
	if (mx_dest_parse(next_byte(&in) & 1 ? "[relay.example]" : "example.org", 0, &d, err,
	    sizeof(err)) != 0)
		abort();
	p = mx_plan_new(&d, &o, next_byte(&in));
	while (!mx_plan_done(p)) {
		n = 0;
		while ((id = mx_plan_next(p, &name, &types[n])) >= 0)
			ids[n++] = id;
		asked += n;
		if (n == 0 || asked > MX_LOOKUPS_MAX)
			abort();
		reverse = next_byte(&in) & 1;
		for (i = 0; i < n; i++) {
			k = reverse ? n - 1 - i : i;
			answer(p, ids[k], types[k], &in);
		}
	}
	r = mx_plan_result(p);
	check_result(r);
	mx_result_free(r);
	mx_plan_free(p);
	mx_dest_clear(&d);
	return 0;
}
