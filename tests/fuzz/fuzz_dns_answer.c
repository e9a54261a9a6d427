/*
 * fuzz_dns_answer.c - libFuzzer harness for dns_answer_parse: the wire
 * packets a resolver (or whoever spoofs one) hands us.  The first input
 * byte picks the type asked (A, AAAA, MX, TXT, PTR), the rest is the
 * packet, copied to a buffer of exactly its size so a read past the end
 * is caught.  Beyond not crashing, every answer must keep the promises
 * of sluice_filter.h: a status in range, records only with OK, every
 * text NUL-terminated at len, and len == strlen except for TXT; a copy
 * (dns_answer_dup) must be equal.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void	 fuzz_check(const struct sluice_dns_answer *, enum sluice_dns_type);
static void	 fuzz_same(const struct sluice_dns_answer *, const struct sluice_dns_answer *);

static const enum sluice_dns_type fuzz_types[] = {
	SLUICE_DNS_A, SLUICE_DNS_AAAA, SLUICE_DNS_MX, SLUICE_DNS_TXT, SLUICE_DNS_PTR
};

static void
fuzz_check(const struct sluice_dns_answer *a, enum sluice_dns_type type)
{
	size_t	 i;

	if (a == NULL || a->type != type || strcmp(a->name, "fuzz.example.org") != 0)
		abort();
	if (a->status > SLUICE_DNS_ERROR || dns_status_name(a->status) == NULL)
		abort();
	if ((a->status == SLUICE_DNS_OK) != (a->count > 0))
		abort();
	if (a->status == SLUICE_DNS_NXDOMAIN && a->rcode != 3)
		abort();
	if (a->rcode < -1 || a->rcode > 15)
		abort();
	for (i = 0; i < a->count; i++) {
		const struct sluice_dns_record *r = &a->records[i];

		if (r->text == NULL || r->text[r->len] != '\0')
			abort();
		if (type != SLUICE_DNS_TXT && strlen(r->text) != r->len)
			abort();
		if (type != SLUICE_DNS_MX && r->preference != 0)
			abort();
	}
}

static void
fuzz_same(const struct sluice_dns_answer *a, const struct sluice_dns_answer *b)
{
	size_t	 i;

	if (a->status != b->status || a->rcode != b->rcode || a->count != b->count ||
	    a->type != b->type || strcmp(a->name, b->name) != 0 ||
	    (a->why == NULL) != (b->why == NULL) ||
	    (a->why != NULL && strcmp(a->why, b->why) != 0))
		abort();
	for (i = 0; i < a->count; i++)
		if (a->records[i].len != b->records[i].len ||
		    a->records[i].ttl != b->records[i].ttl ||
		    a->records[i].preference != b->records[i].preference ||
		    memcmp(a->records[i].text, b->records[i].text, a->records[i].len + 1) != 0)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sluice_dns_answer	*a, *b;
	enum sluice_dns_type		 type;
	unsigned char			*packet;

	if (size < 1)
		return 0;
	type = fuzz_types[data[0] % (sizeof(fuzz_types) / sizeof(fuzz_types[0]))];
	size--;
	if ((packet = malloc(size > 0 ? size : 1)) == NULL)
		return 0;
	memcpy(packet, data + 1, size);
	a = dns_answer_parse("fuzz.example.org", type, packet, size);
	free(packet);
	fuzz_check(a, type);
	b = dns_answer_dup(a);
	fuzz_same(a, b);
	dns_answer_free(a);
	dns_answer_free(b);
	return 0;
}
