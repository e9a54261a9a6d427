/*
 * fuzz_dataterm.c - libFuzzer harness for the DATA terminator scanner.
 * The input is scanned whole and again in pieces whose sizes come from the
 * first byte; both runs must find the same end and emit the same bytes,
 * in strict and in normalize mode.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dataterm.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	unsigned char	*buf;	/* collected output */
	size_t		 len;	/* bytes */
	size_t		 cap;	/* allocated */
};

static void
collect(void *arg, const unsigned char *p, size_t len)
{
	struct sink	*s = arg;

	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2 + 16;
		if ((s->buf = realloc(s->buf, s->cap)) == NULL)
			abort();
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
}

static size_t
scan(enum dataterm_mode mode, const uint8_t *data, size_t size, size_t step, struct sink *out)
{
	struct dataterm	 t;
	size_t		 off = 0;

	dataterm_init(&t, mode, 1000);
	while (off < size && !t.done) {
		size_t	 n = size - off < step ? size - off : step;
		size_t	 used = dataterm_feed(&t, data + off, n, collect, out);

		off += used;
		if (used < n && !t.done)
			abort();	/* only the terminator may stop consumption */
	}
	return off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int	 mode;

	if (size < 1)
		return 0;
	for (mode = 0; mode < 2; mode++) {
		struct sink	 whole = { 0 }, parts = { 0 };
		size_t		 a, b;

		a = scan((enum dataterm_mode)mode, data + 1, size - 1, size, &whole);
		b = scan((enum dataterm_mode)mode, data + 1, size - 1, (size_t)data[0] % 7 + 1,
		    &parts);
		if (a != b || whole.len != parts.len ||
		    (whole.len > 0 && memcmp(whole.buf, parts.buf, whole.len) != 0))
			abort();
		free(whole.buf);
		free(parts.buf);
	}
	return 0;
}
