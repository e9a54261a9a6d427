/*
 * fuzz_message.c - libFuzzer harness for the header indexer and the
 * writer: index any spooled bytes, read every header, walk the body, and
 * write the message out unchanged; the unchanged output must equal the
 * input exactly (invariant 2).
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "message.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message_limits	 lim = { 4096, 100, 2048 };
	struct message		*m = message_new(&lim, "/tmp");
	struct message_writer	 w;
	struct message_cursor	 c;
	struct evbuffer		*out = evbuffer_new();
	unsigned char		 buf[512];
	const char		*name, *value;
	size_t			 i;
	int			 r;

	if (m == NULL || out == NULL)
		abort();
	if (message_append(m, data, size) == -1 || message_index(m) == -1)
		abort();
	for (i = 0; i < message_header_count(m); i++)
		(void)message_header_get(m, i, &name, &value);
	message_body_cursor(m, &c);
	while (message_body_read(m, &c, buf, sizeof(buf)) > 0)
		;
	message_writer_init(&w, m, 0);
	while ((r = message_writer_next(&w, out, 777)) == 1)
		;
	if (r == -1 || evbuffer_get_length(out) != size ||
	    (size > 0 && memcmp(evbuffer_pullup(out, -1), data, size) != 0))
		abort();
	evbuffer_free(out);
	message_free(m);
	return 0;
}
