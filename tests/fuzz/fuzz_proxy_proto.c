/*
 * fuzz_proxy_proto.c - libFuzzer harness for the PROXY protocol header
 * parser.  The first byte picks the accepted versions and a piece size;
 * the rest is parsed whole and again in pieces.  Both runs must agree on
 * the status, the bytes used, the reason or the addresses, and a parse
 * may never use a byte past the header nor a header longer than the
 * limits of proxy_proto.h.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy_proto.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum proxy_proto_status
parse(struct proxy_proto *pp, unsigned int versions, const uint8_t *data, size_t size,
    size_t step, size_t *used_total)
{
	enum proxy_proto_status	 st = PROXY_PROTO_NEED_MORE;
	size_t			 off = 0, used;

	proxy_proto_init(pp, versions);
	*used_total = 0;
	while (off < size && st == PROXY_PROTO_NEED_MORE) {
		size_t	 n = size - off < step ? size - off : step;

		st = proxy_proto_feed(pp, data + off, n, &used);
		if (used > n || (st == PROXY_PROTO_NEED_MORE && used != n))
			abort();
		*used_total += used;
		off += n;
	}
	return st;
}

static void
check_done(const struct proxy_proto *pp, size_t used)
{
	size_t	 max = pp->version == 1 ? PROXY_PROTO_V1_MAX :
	    PROXY_PROTO_V2_HEAD + PROXY_PROTO_V2_LEN_MAX;

	if (pp->length != used || used > max || (pp->version != 1 && pp->version != 2))
		abort();
	if (pp->command == PROXY_PROTO_PROXY && pp->src.ss_family != pp->dst.ss_family)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_proto	*a, *b;
	enum proxy_proto_status	 sa, sb;
	unsigned int		 versions;
	size_t			 ua, ub;

	if (size < 1)
		return 0;
	versions = (unsigned int)(data[0] % 3) + 1;
	if ((a = malloc(sizeof(*a))) == NULL || (b = malloc(sizeof(*b))) == NULL)
		abort();
	sa = parse(a, versions, data + 1, size - 1, size, &ua);
	sb = parse(b, versions, data + 1, size - 1, (size_t)(data[0] >> 2) % 13 + 1, &ub);
	if (sa != sb)
		abort();
	if (sa == PROXY_PROTO_ERROR && strcmp(a->error, b->error) != 0)
		abort();
	if (sa != PROXY_PROTO_ERROR && ua != ub)
		abort();
	if (sa == PROXY_PROTO_DONE) {
		check_done(a, ua);
		if (a->version != b->version || a->command != b->command ||
		    (a->command == PROXY_PROTO_PROXY &&
		    (a->addrlen != b->addrlen || memcmp(&a->src, &b->src, a->addrlen) != 0 ||
		    memcmp(&a->dst, &b->dst, a->addrlen) != 0)))
			abort();
	}
	free(a);
	free(b);
	return 0;
}
