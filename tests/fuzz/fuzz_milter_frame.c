/*
 * fuzz_milter_frame.c - libFuzzer harness for the milter frame codec
 * (filters/milter/milter_codec.c): a byte stream from a hostile milter or
 * MTA, fed in pieces whose sizes the input chooses, every complete frame
 * decoded as both a command and a reply, every string sequence walked.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "milter_codec.h"

static void
fuzz_walk(const struct milter_msg *m)
{
	size_t		 pos = 0;
	uint32_t	 stage;
	const char	*list, *s;

	while ((s = milter_strings_next(&m->strings, &pos)) != NULL)
		(void)strlen(s);
	pos = 0;
	while (milter_macro_list_next(m, &pos, &stage, &list))
		(void)strlen(list);
	if (m->s1 != NULL)
		(void)strlen(m->s1);
	if (m->s2 != NULL)
		(void)strlen(m->s2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct milter_reader	 r;
	struct milter_frame	 frame;
	struct milter_msg	 msg;
	const char		*why;
	size_t			 used, step, off;
	int			 rc;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;	/* piece size, 1..17 */
	milter_reader_init(&r, 64 * 1024);
	for (off = 1; off < size;) {
		size_t	 n = size - off < step ? size - off : step;

		rc = milter_reader_feed(&r, data + off, n, &used, &frame, &why);
		if (rc == MILTER_READ_ERROR)
			break;
		off += used;
		if (rc != MILTER_READ_FRAME) {
			if (used == 0)
				break;
			continue;
		}
		if (milter_decode(&frame, MILTER_FROM_MTA, &msg, &why) == 0)
			fuzz_walk(&msg);
		if (milter_decode(&frame, MILTER_FROM_FILTER, &msg, &why) == 0)
			fuzz_walk(&msg);
		(void)milter_code_name(msg.code, MILTER_FROM_FILTER);
	}
	milter_reader_free(&r);
	return 0;
}
