/*
 * fuzz_auth.c - libFuzzer harness for the SASL exchange (auth.c).  The
 * input is split at LF into the AUTH argument and the continuation lines
 * fed in turn; every answer must be a known status, and a READY exchange
 * must hold a valid user and a password of the length it claims.  The
 * whole input is also base64-decoded and, if that works, re-encoded,
 * which must give the input back.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_ready(const struct auth_exchange *x)
{
	if (!auth_user_valid(x->user, strlen(x->user)) || x->pass_len == 0 ||
	    x->pass_len != strlen(x->pass))
		abort();
}

static void
exchange(const char *p, size_t size)
{
	struct auth_exchange	 x;
	enum auth_status	 st;
	const char		*nl;
	size_t			 len;
	int			 first = 1;

	auth_exchange_clear(&x);
	while (size > 0) {
		nl = memchr(p, '\n', size);
		len = nl != NULL ? (size_t)(nl - p) : size;
		st = first ? auth_exchange_start(&x, p, len) : auth_exchange_line(&x, p, len);
		first = 0;
		if (st > AUTH_ERR_MALFORMED)
			abort();
		if (st == AUTH_READY)
			check_ready(&x);
		if (st != AUTH_CONTINUE)
			break;
		if (nl == NULL)
			break;
		p = nl + 1;
		size -= len + 1;
	}
	auth_exchange_clear(&x);
}

static void
roundtrip(const char *p, size_t size)
{
	unsigned char	*dec = malloc(size + 4);
	char		*enc = malloc(size + 8);
	ssize_t		 n;

	if (dec == NULL || enc == NULL)
		abort();
	n = auth_base64_decode(p, size, dec, size + 4);
	if (n >= 0) {
		if (auth_base64_encode(dec, (size_t)n, enc, size + 8) != (ssize_t)size ||
		    memcmp(enc, p, size) != 0)
			abort();
	}
	free(dec);
	free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	exchange((const char *)data, size);
	roundtrip((const char *)data, size);
	return 0;
}
