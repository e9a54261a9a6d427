/*
 * fuzz_smtp_reply.c - libFuzzer harness for the reply reader and the EHLO
 * capability parser: what a hostile backend can send us.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "smtp_reply.h"

int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_reply	 reply;
	struct evbuffer			*in = evbuffer_new(), *out = evbuffer_new();
	struct smtp_caps		 caps;
	enum smtp_reply_status		 st;

	evbuffer_add(in, data, size);
	while ((st = smtp_reply_read(in, &reply)) == SMTP_REPLY_COMPLETE) {
		smtp_caps_parse(&reply, &caps);
		smtp_reply_relay(out, &reply, "2.0.0");
		(void)smtp_reply_text(&reply);
	}
	evbuffer_free(in);
	evbuffer_free(out);
	return 0;
}
