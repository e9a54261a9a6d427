/*
 * test_milter_codec.c - unit tests for filters/milter/milter_codec.c (the
 * milter protocol frames) and filters/milter/milter_parse.c (addresses,
 * reply texts, macro lists, mailboxes and header values).
 *
 * Every command and every reply is encoded, then read back through the
 * frame reader fed whole, one byte at a time and in every step size up to
 * the frame's length, each piece from an exact-size heap copy so a read
 * past its end shows under AddressSanitizer, and decoded; the fields must
 * come back as they went in.  Known wire bytes (as libmilter writes them)
 * pin the layout; hostile frames (bad lengths, unterminated strings,
 * trailing bytes, wrong sizes) must be refused, and random frames must
 * decode or be refused without reading outside the frame.  The protocol
 * constants are checked against libmilter's own headers when installed.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

#if defined(__has_include)
#if __has_include(<libmilter/mfapi.h>)
#include <libmilter/mfapi.h>
#define HAVE_LIBMILTER_HEADERS	1
#endif
#endif

#include "milter_codec.h"
#include "milter_parse.h"

typedef void (*check_fn)(const struct milter_msg *);

/*
 * Feed b (one frame) to a reader in pieces of step bytes; the frame must
 * come out exactly when its last byte went in, decode on side, and pass
 * check.
 */
static void
feed_in_steps(const struct milter_buf *b, size_t step, enum milter_side side, check_fn check)
{
	struct milter_reader	 r;
	struct milter_frame	 f;
	struct milter_msg	 m;
	const char		*why = NULL;
	size_t			 off = 0, used, n;
	unsigned char		*piece;
	int			 got = 0, rc;

	milter_reader_init(&r, 0);
	while (off < b->len) {
		n = b->len - off < step ? b->len - off : step;
		piece = malloc(n);
		assert_non_null(piece);
		memcpy(piece, b->data + off, n);
		rc = milter_reader_feed(&r, piece, n, &used, &f, &why);
		assert_int_not_equal(rc, MILTER_READ_ERROR);
		assert_int_equal(used, n);
		off += used;
		if (rc == MILTER_READ_FRAME) {
			assert_int_equal(off, b->len);
			assert_true(milter_reader_idle(&r));
			if (milter_decode(&f, side, &m, &why) != 0)
				fail_msg("decode: %s", why);
			check(&m);
			got = 1;
		} else
			assert_false(milter_reader_idle(&r));
		free(piece);
	}
	assert_true(got);
	milter_reader_free(&r);
}

static void
roundtrip(const struct milter_buf *b, enum milter_side side, check_fn check)
{
	size_t	 step;

	for (step = 1; step <= b->len; step++)
		feed_in_steps(b, step, side, check);
}

/* Encode with put, decode from side, check: the whole cycle for one message. */
#define ROUNDTRIP(side, check, put) do {			\
	struct milter_buf	 b_;				\
	milter_buf_init(&b_);					\
	assert_int_equal((put), 0);				\
	roundtrip(&b_, (side), (check));			\
	milter_buf_free(&b_);					\
} while (0)

/* The next string of s must be want. */
static void
expect_next(const struct milter_strings *s, size_t *pos, const char *want)
{
	const char	*got = milter_strings_next(s, pos);

	assert_non_null(got);
	assert_string_equal(got, want);
}

/* --- Constants ------------------------------------------------------------ */

static void
test_constants(void **state)
{
#ifdef HAVE_LIBMILTER_HEADERS
	assert_int_equal(MILTER_VERSION, SMFI_PROT_VERSION);
	assert_int_equal(MILTER_CHUNK_MAX, MILTER_CHUNK_SIZE);
	assert_int_equal(MILTER_ACT_ALL, SMFI_CURR_ACTS);
	assert_int_equal(MILTER_ACT_ADDHDRS, SMFIF_ADDHDRS);
	assert_int_equal(MILTER_ACT_CHGBODY, SMFIF_CHGBODY);
	assert_int_equal(MILTER_ACT_ADDRCPT, SMFIF_ADDRCPT);
	assert_int_equal(MILTER_ACT_DELRCPT, SMFIF_DELRCPT);
	assert_int_equal(MILTER_ACT_CHGHDRS, SMFIF_CHGHDRS);
	assert_int_equal(MILTER_ACT_QUARANTINE, SMFIF_QUARANTINE);
	assert_int_equal(MILTER_ACT_CHGFROM, SMFIF_CHGFROM);
	assert_int_equal(MILTER_ACT_ADDRCPT_PAR, SMFIF_ADDRCPT_PAR);
	assert_int_equal(MILTER_ACT_SETSYMLIST, SMFIF_SETSYMLIST);
	assert_int_equal(MILTER_PROTO_NOCONNECT | MILTER_PROTO_NOHELO | MILTER_PROTO_NOMAIL |
	    MILTER_PROTO_NORCPT | MILTER_PROTO_NOBODY | MILTER_PROTO_NOHDRS |
	    MILTER_PROTO_NOEOH | MILTER_PROTO_NR_HDR | MILTER_PROTO_NOUNKNOWN |
	    MILTER_PROTO_NODATA | MILTER_PROTO_SKIP | MILTER_PROTO_RCPT_REJ |
	    MILTER_PROTO_NR_CONN | MILTER_PROTO_NR_HELO | MILTER_PROTO_NR_MAIL |
	    MILTER_PROTO_NR_RCPT | MILTER_PROTO_NR_DATA | MILTER_PROTO_NR_UNKN |
	    MILTER_PROTO_NR_EOH | MILTER_PROTO_NR_BODY | MILTER_PROTO_HDR_LEADSPC,
	    SMFI_CURR_PROT);
	assert_int_equal(MILTER_PROTO_NR_HDR, SMFIP_NR_HDR);
	assert_int_equal(MILTER_PROTO_SKIP, SMFIP_SKIP);
	assert_int_equal(MILTER_PROTO_NR_CONN, SMFIP_NR_CONN);
	assert_int_equal(MILTER_PROTO_NR_BODY, SMFIP_NR_BODY);
	assert_int_equal(MILTER_PROTO_HDR_LEADSPC, SMFIP_HDR_LEADSPC);
	assert_int_equal(MILTER_PROTO_MDS_256K, SMFIP_MDS_256K);
	assert_int_equal(MILTER_PROTO_MDS_1M, SMFIP_MDS_1M);
	assert_int_equal(MILTER_STAGE_CONNECT, SMFIM_CONNECT);
	assert_int_equal(MILTER_STAGE_MAIL, SMFIM_ENVFROM);
	assert_int_equal(MILTER_STAGE_RCPT, SMFIM_ENVRCPT);
	assert_int_equal(MILTER_STAGE_EOM, SMFIM_EOM);
	assert_int_equal(MILTER_STAGE_EOH, SMFIM_EOH);
	assert_int_equal(MILTER_CMD_QUIT_NC, SMFIC_QUIT_NC);
	assert_int_equal(MILTER_CMD_UNKNOWN, SMFIC_UNKNOWN);
	assert_int_equal(MILTER_REPLY_ADDRCPT_PAR, SMFIR_ADDRCPT_PAR);
	assert_int_equal(MILTER_REPLY_CHGFROM, SMFIR_CHGFROM);
	assert_int_equal(MILTER_REPLY_REPLYCODE, SMFIR_REPLYCODE);
	assert_int_equal(MILTER_REPLY_SHUTDOWN, SMFIR_SHUTDOWN);
	assert_int_equal(MILTER_FAMILY_INET6, SMFIA_INET6);
#else
	/* Without libmilter's headers: the values from the protocol notes. */
	assert_int_equal(MILTER_ACT_ALL, 0x1ff);
	assert_int_equal(MILTER_PROTO_HDR_LEADSPC, 0x100000);
	assert_int_equal(MILTER_PROTO_NR_BODY, 0x80000);
#endif
}

/* --- Known bytes ----------------------------------------------------------- */

static void
test_wire_bytes(void **state)
{
	static const unsigned char optneg[] = {
		0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0x1f, 0xf7, 0xff
	};
	/* libmilter's answer seen in LIBRARIES.md 1b: actions 0x17f, protocol 0x100480. */
	static const unsigned char reply[] = {
		0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 1, 0x7f, 0, 0x10, 0x04, 0x80
	};
	static const unsigned char connect[] = {
		0, 0, 0, 22, 'C', 'm', 'x', '.', 't', 'e', 's', 't', 0, '4', 0x30, 0x39,
		'1', '9', '2', '.', '0', '.', '2', '.', '7', 0
	};
	static const unsigned char header[] = {
		0, 0, 0, 12, 'L', 'S', 'u', 'b', 'j', 'e', 'c', 't', 0, 'h', 'i', 0
	};
	static const unsigned char chg[] = {
		0, 0, 0, 9, 'm', 0, 0, 0, 2, 'T', 'o', 0, 0
	};
	static const unsigned char eom[] = { 0, 0, 0, 1, 'E' };
	struct milter_buf	 b;

	milter_buf_init(&b);
	assert_int_equal(milter_put_optneg(&b, 6, 0x1ff, 0x1ff7ff), 0);
	assert_int_equal(b.len, sizeof(optneg));
	assert_memory_equal(b.data, optneg, sizeof(optneg));
	milter_buf_reset(&b);
	assert_int_equal(milter_put_optneg_reply(&b, 6, 0x17f, 0x100480, NULL), 0);
	assert_memory_equal(b.data, reply, sizeof(reply));
	milter_buf_reset(&b);
	assert_int_equal(milter_put_connect(&b, "mx.test", '4', 12345, "192.0.2.7"), 0);
	assert_int_equal(b.len, sizeof(connect));
	assert_memory_equal(b.data, connect, sizeof(connect));
	milter_buf_reset(&b);
	assert_int_equal(milter_put_header(&b, 'L', "Subject", "hi"), 0);
	assert_memory_equal(b.data, header, sizeof(header));
	milter_buf_reset(&b);
	assert_int_equal(milter_put_header_at(&b, 'm', 2, "To", ""), 0);
	assert_memory_equal(b.data, chg, sizeof(chg));
	milter_buf_reset(&b);
	assert_int_equal(milter_put_empty(&b, 'E'), 0);
	assert_int_equal(b.len, sizeof(eom));
	assert_memory_equal(b.data, eom, sizeof(eom));
	/* Frames append: two frames back to back. */
	assert_int_equal(milter_put_empty(&b, 'E'), 0);
	assert_int_equal(b.len, 2 * sizeof(eom));
	milter_buf_free(&b);
}

/* --- Commands ------------------------------------------------------------- */

static unsigned char	 expect_code;

static void
check_empty(const struct milter_msg *m)
{
	assert_int_equal(m->code, expect_code);
	assert_null(m->s1);
	assert_int_equal(m->len, 0);
}

static void
test_empty_commands(void **state)
{
	static const unsigned char codes[] = { 'A', 'T', 'N', 'E', 'Q', 'K' };
	size_t	 i;

	for (i = 0; i < sizeof(codes); i++) {
		expect_code = codes[i];
		ROUNDTRIP(MILTER_FROM_MTA, check_empty, milter_put_empty(&b_, codes[i]));
	}
}

static void
check_optneg(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'O');
	assert_int_equal(m->version, 6);
	assert_int_equal(m->actions, 0x1ff);
	assert_int_equal(m->protocol, 0x1ff7ff);
	assert_null(m->macro_lists);
}

static void
check_connect4(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'C');
	assert_string_equal(m->s1, "[192.0.2.7]");
	assert_int_equal(m->family, '4');
	assert_int_equal(m->port, 65535);
	assert_string_equal(m->s2, "192.0.2.7");
}

static void
check_connect6(const struct milter_msg *m)
{
	assert_string_equal(m->s1, "mail.example.org");
	assert_int_equal(m->family, '6');
	assert_int_equal(m->port, 25);
	assert_string_equal(m->s2, "2001:db8::1");
}

static void
check_connect_unix(const struct milter_msg *m)
{
	assert_string_equal(m->s1, "localhost");
	assert_int_equal(m->family, 'L');
	assert_int_equal(m->port, 0);
	assert_string_equal(m->s2, "/run/x.sock");
}

static void
check_connect_unknown(const struct milter_msg *m)
{
	assert_string_equal(m->s1, "unknown");
	assert_int_equal(m->family, 'U');
	assert_null(m->s2);
}

static void
check_macros(const struct milter_msg *m)
{
	size_t	 pos = 0;

	assert_int_equal(m->code, 'D');
	assert_int_equal(m->stage, 'C');
	assert_int_equal(m->strings.count, 4);
	expect_next(&m->strings, &pos, "j");
	expect_next(&m->strings, &pos, "mx.test");
	expect_next(&m->strings, &pos, "{daemon_name}");
	expect_next(&m->strings, &pos, "");
	assert_null(milter_strings_next(&m->strings, &pos));
}

static void
check_macros_none(const struct milter_msg *m)
{
	assert_int_equal(m->stage, 'E');
	assert_int_equal(m->strings.count, 0);
}

static void
check_helo(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'H');
	assert_string_equal(m->s1, "client.test");
}

static void
check_mail(const struct milter_msg *m)
{
	size_t	 pos = 0;

	assert_int_equal(m->code, 'M');
	assert_string_equal(m->s1, "<a@example.org>");
	assert_int_equal(m->strings.count, 3);
	expect_next(&m->strings, &pos, "<a@example.org>");
	expect_next(&m->strings, &pos, "SIZE=100");
	expect_next(&m->strings, &pos, "BODY=8BITMIME");
	assert_null(milter_strings_next(&m->strings, &pos));
}

static void
check_rcpt(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'R');
	assert_string_equal(m->s1, "<b@example.net>");
	assert_int_equal(m->strings.count, 1);
}

static void
check_header(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'L');
	assert_string_equal(m->s1, "Subject");
	assert_string_equal(m->s2, "folded\n\tline");
}

static void
check_body(const struct milter_msg *m)
{
	size_t	 i;

	assert_int_equal(m->code, 'B');
	assert_int_equal(m->len, MILTER_CHUNK_MAX);
	for (i = 0; i < m->len; i++)
		if (m->data[i] != (unsigned char)(i * 7))
			fail_msg("body byte %zu", i);
}

static void
check_body_nul(const struct milter_msg *m)
{
	assert_int_equal(m->len, 5);
	assert_memory_equal(m->data, "a\0b\r\n", 5);
}

static void
check_eom_data(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'E');
	assert_int_equal(m->len, 3);
	assert_memory_equal(m->data, "end", 3);
}

static void
check_unknown(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'U');
	assert_string_equal(m->s1, "XYZZY arg");
}

static void
test_commands(void **state)
{
	const char	*nv[] = { "j", "mx.test", "{daemon_name}", "" };
	const char	*argv[] = { "<a@example.org>", "SIZE=100", "BODY=8BITMIME" };
	const char	*rcpt = "<b@example.net>";
	unsigned char	*body = malloc(MILTER_CHUNK_MAX);
	size_t		 i;

	assert_non_null(body);
	for (i = 0; i < MILTER_CHUNK_MAX; i++)
		body[i] = (unsigned char)(i * 7);
	ROUNDTRIP(MILTER_FROM_MTA, check_optneg, milter_put_optneg(&b_, 6, 0x1ff, 0x1ff7ff));
	ROUNDTRIP(MILTER_FROM_MTA, check_connect4,
	    milter_put_connect(&b_, "[192.0.2.7]", '4', 65535, "192.0.2.7"));
	ROUNDTRIP(MILTER_FROM_MTA, check_connect6,
	    milter_put_connect(&b_, "mail.example.org", '6', 25, "2001:db8::1"));
	ROUNDTRIP(MILTER_FROM_MTA, check_connect_unix,
	    milter_put_connect(&b_, "localhost", 'L', 0, "/run/x.sock"));
	ROUNDTRIP(MILTER_FROM_MTA, check_connect_unknown,
	    milter_put_connect(&b_, "unknown", 'U', 0, NULL));
	ROUNDTRIP(MILTER_FROM_MTA, check_macros, milter_put_macros(&b_, 'C', nv, 2));
	ROUNDTRIP(MILTER_FROM_MTA, check_macros_none, milter_put_macros(&b_, 'E', NULL, 0));
	ROUNDTRIP(MILTER_FROM_MTA, check_helo, milter_put_string(&b_, 'H', "client.test"));
	ROUNDTRIP(MILTER_FROM_MTA, check_mail, milter_put_argv(&b_, 'M', argv, 3));
	ROUNDTRIP(MILTER_FROM_MTA, check_rcpt, milter_put_argv(&b_, 'R', &rcpt, 1));
	ROUNDTRIP(MILTER_FROM_MTA, check_header,
	    milter_put_header(&b_, 'L', "Subject", "folded\n\tline"));
	ROUNDTRIP(MILTER_FROM_MTA, check_body_nul, milter_put_data(&b_, 'B', "a\0b\r\n", 5));
	ROUNDTRIP(MILTER_FROM_MTA, check_eom_data, milter_put_data(&b_, 'E', "end", 3));
	ROUNDTRIP(MILTER_FROM_MTA, check_unknown, milter_put_string(&b_, 'U', "XYZZY arg"));
	/* The biggest chunk, fed whole and in a few big steps (every step would be slow). */
	{
		struct milter_buf	 b;

		milter_buf_init(&b);
		assert_int_equal(milter_put_data(&b, 'B', body, MILTER_CHUNK_MAX), 0);
		feed_in_steps(&b, b.len, MILTER_FROM_MTA, check_body);
		feed_in_steps(&b, 1, MILTER_FROM_MTA, check_body);
		feed_in_steps(&b, 4096, MILTER_FROM_MTA, check_body);
		feed_in_steps(&b, 3, MILTER_FROM_MTA, check_body);
		milter_buf_free(&b);
	}
	free(body);
}

/* --- Replies -------------------------------------------------------------- */

static void
check_reply_empty(const struct milter_msg *m)
{
	assert_int_equal(m->code, expect_code);
	assert_null(m->s1);
	assert_null(m->data);
}

static void
test_empty_replies(void **state)
{
	static const unsigned char codes[] = { 'a', 'c', 'r', 't', 'd', 's', 'p', 'f', '4' };
	size_t	 i;

	for (i = 0; i < sizeof(codes); i++) {
		expect_code = codes[i];
		ROUNDTRIP(MILTER_FROM_FILTER, check_reply_empty, milter_put_empty(&b_, codes[i]));
	}
}

static void
check_optneg_reply(const struct milter_msg *m)
{
	size_t		 pos = 0;
	uint32_t	 stage;
	const char	*list;

	assert_int_equal(m->code, 'O');
	assert_int_equal(m->version, 6);
	assert_int_equal(m->actions, 0x17f);
	assert_int_equal(m->protocol, 0x100480);
	assert_int_equal(milter_macro_list_next(m, &pos, &stage, &list), 1);
	assert_int_equal(stage, MILTER_STAGE_CONNECT);
	assert_string_equal(list, "j {daemon_name}");
	assert_int_equal(milter_macro_list_next(m, &pos, &stage, &list), 1);
	assert_int_equal(stage, MILTER_STAGE_EOM);
	assert_string_equal(list, "");
	assert_int_equal(milter_macro_list_next(m, &pos, &stage, &list), 0);
}

static void
check_optneg_reply_plain(const struct milter_msg *m)
{
	size_t		 pos = 0;
	uint32_t	 stage;
	const char	*list;

	assert_int_equal(m->version, 2);
	assert_int_equal(milter_macro_list_next(m, &pos, &stage, &list), 0);
}

static void
check_replycode(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'y');
	assert_string_equal(m->s1, "550 5.7.1 go away");
}

static void
check_addrcpt(const struct milter_msg *m)
{
	assert_int_equal(m->code, '+');
	assert_string_equal(m->s1, "<new@example.net>");
	assert_null(m->s2);
}

static void
check_delrcpt(const struct milter_msg *m)
{
	assert_int_equal(m->code, '-');
	assert_string_equal(m->s1, "<old@example.net>");
}

static void
check_quarantine(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'q');
	assert_string_equal(m->s1, "looks bad");
}

static void
check_addrcpt_par(const struct milter_msg *m)
{
	assert_int_equal(m->code, '2');
	assert_string_equal(m->s1, "<p@example.net>");
	assert_string_equal(m->s2, "NOTIFY=NEVER");
}

static void
check_addrcpt_par_noargs(const struct milter_msg *m)
{
	assert_int_equal(m->code, '2');
	assert_string_equal(m->s1, "<p@example.net>");
	assert_null(m->s2);
}

static void
check_chgfrom(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'e');
	assert_string_equal(m->s1, "<bounce@example.org>");
	assert_string_equal(m->s2, "SIZE=1");
}

static void
check_chgfrom_noargs(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'e');
	assert_string_equal(m->s1, "<>");
	assert_null(m->s2);
}

static void
check_addheader(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'h');
	assert_string_equal(m->s1, "X-Added");
	assert_string_equal(m->s2, " yes");
}

static void
check_insheader(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'i');
	assert_int_equal(m->index, 0);
	assert_string_equal(m->s1, "DKIM-Signature");
	assert_string_equal(m->s2, "v=1;\n\tb=abc");
}

static void
check_chgheader(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'm');
	assert_int_equal(m->index, 0xffffffffu);
	assert_string_equal(m->s1, "Subject");
	assert_string_equal(m->s2, "");
}

static void
check_replbody(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'b');
	assert_int_equal(m->len, 7);
	assert_memory_equal(m->data, "new\r\n\0x", 7);
}

static void
check_replbody_empty(const struct milter_msg *m)
{
	assert_int_equal(m->code, 'b');
	assert_int_equal(m->len, 0);
}

static void
test_replies(void **state)
{
	const char	*lists[MILTER_STAGES] = { "j {daemon_name}", NULL, NULL, NULL, NULL, "" };

	ROUNDTRIP(MILTER_FROM_FILTER, check_optneg_reply,
	    milter_put_optneg_reply(&b_, 6, 0x17f, 0x100480, lists));
	ROUNDTRIP(MILTER_FROM_FILTER, check_optneg_reply_plain,
	    milter_put_optneg_reply(&b_, 2, 0, 0, NULL));
	ROUNDTRIP(MILTER_FROM_FILTER, check_replycode,
	    milter_put_string(&b_, 'y', "550 5.7.1 go away"));
	ROUNDTRIP(MILTER_FROM_FILTER, check_addrcpt,
	    milter_put_string(&b_, '+', "<new@example.net>"));
	ROUNDTRIP(MILTER_FROM_FILTER, check_delrcpt,
	    milter_put_string(&b_, '-', "<old@example.net>"));
	ROUNDTRIP(MILTER_FROM_FILTER, check_quarantine, milter_put_string(&b_, 'q', "looks bad"));
	ROUNDTRIP(MILTER_FROM_FILTER, check_addrcpt_par,
	    milter_put_strings2(&b_, '2', "<p@example.net>", "NOTIFY=NEVER"));
	ROUNDTRIP(MILTER_FROM_FILTER, check_addrcpt_par_noargs,
	    milter_put_strings2(&b_, '2', "<p@example.net>", NULL));
	ROUNDTRIP(MILTER_FROM_FILTER, check_chgfrom,
	    milter_put_strings2(&b_, 'e', "<bounce@example.org>", "SIZE=1"));
	ROUNDTRIP(MILTER_FROM_FILTER, check_chgfrom_noargs,
	    milter_put_strings2(&b_, 'e', "<>", NULL));
	ROUNDTRIP(MILTER_FROM_FILTER, check_addheader,
	    milter_put_header(&b_, 'h', "X-Added", " yes"));
	ROUNDTRIP(MILTER_FROM_FILTER, check_insheader,
	    milter_put_header_at(&b_, 'i', 0, "DKIM-Signature", "v=1;\n\tb=abc"));
	ROUNDTRIP(MILTER_FROM_FILTER, check_chgheader,
	    milter_put_header_at(&b_, 'm', 0xffffffffu, "Subject", ""));
	ROUNDTRIP(MILTER_FROM_FILTER, check_replbody, milter_put_data(&b_, 'b', "new\r\n\0x", 7));
	ROUNDTRIP(MILTER_FROM_FILTER, check_replbody_empty, milter_put_data(&b_, 'b', NULL, 0));
}

static void
test_code_names(void **state)
{
	assert_string_equal(milter_code_name('O', MILTER_FROM_MTA), "option negotiation");
	assert_string_equal(milter_code_name('O', MILTER_FROM_FILTER), "optneg");
	assert_string_equal(milter_code_name('E', MILTER_FROM_MTA), "end of message");
	assert_string_equal(milter_code_name('y', MILTER_FROM_FILTER), "replycode");
	assert_string_equal(milter_code_name('y', MILTER_FROM_MTA), "unknown");
	assert_string_equal(milter_code_name('Z', MILTER_FROM_FILTER), "unknown");
}

/* --- Encoder limits --------------------------------------------------------- */

static void
test_encode_limits(void **state)
{
	struct milter_buf	 b;
	size_t			 big = MILTER_FRAME_MAX;
	char			*s = malloc(big);
	const char		*argv[2] = { "<a@b>", NULL };

	assert_non_null(s);
	memset(s, 'x', big - 1);
	s[big - 1] = '\0';
	milter_buf_init(&b);
	assert_int_equal(milter_put_empty(&b, 'c'), 0);
	/* Over the chunk size for B; a b frame may be bigger. */
	assert_int_equal(milter_put_data(&b, 'B', s, MILTER_CHUNK_MAX + 1), -1);
	assert_int_equal(milter_put_data(&b, 'b', s, MILTER_CHUNK_MAX + 1), 0);
	assert_int_equal(b.len, 5 + 5 + MILTER_CHUNK_MAX + 1);
	milter_buf_reset(&b);
	assert_int_equal(milter_put_empty(&b, 'c'), 0);
	/* data + code over the frame limit: refused, buffer unchanged. */
	assert_int_equal(milter_put_data(&b, 'b', s, MILTER_FRAME_MAX), -1);
	assert_int_equal(milter_put_string(&b, 'y', s), -1);
	assert_int_equal(b.len, 5);
	/* Exactly at the limit: data of MILTER_FRAME_MAX - 1 bytes. */
	assert_int_equal(milter_put_data(&b, 'b', s, MILTER_FRAME_MAX - 1), 0);
	assert_int_equal(b.len, 5 + 4 + MILTER_FRAME_MAX);
	/* NULL strings are refused. */
	assert_int_equal(milter_put_argv(&b, 'M', argv, 2), -1);
	assert_int_equal(milter_put_header(&b, 'L', "X", NULL), -1);
	assert_int_equal(milter_put_header(&b, 'L', NULL, "x"), -1);
	assert_int_equal(milter_put_data(&b, 'B', NULL, 1), -1);
	milter_buf_free(&b);
	free(s);
}

/* --- Reader ------------------------------------------------------------------ */

static void
test_reader_frames_back_to_back(void **state)
{
	struct milter_buf	 b;
	struct milter_reader	 r;
	struct milter_frame	 f;
	const char		*why;
	size_t			 used, off = 0;

	milter_buf_init(&b);
	assert_int_equal(milter_put_empty(&b, 'c'), 0);
	assert_int_equal(milter_put_string(&b, 'y', "450 later"), 0);
	assert_int_equal(milter_put_empty(&b, 'a'), 0);
	milter_reader_init(&r, 0);
	assert_int_equal(milter_reader_feed(&r, b.data, b.len, &used, &f, &why),
	    MILTER_READ_FRAME);
	assert_int_equal(used, 5);
	assert_int_equal(f.code, 'c');
	assert_int_equal(f.len, 0);
	off += used;
	assert_int_equal(milter_reader_feed(&r, b.data + off, b.len - off, &used, &f, &why),
	    MILTER_READ_FRAME);
	assert_int_equal(f.code, 'y');
	assert_int_equal(f.len, 10);
	assert_memory_equal(f.data, "450 later", 10);
	off += used;
	assert_int_equal(milter_reader_feed(&r, b.data + off, b.len - off, &used, &f, &why),
	    MILTER_READ_FRAME);
	assert_int_equal(f.code, 'a');
	off += used;
	assert_int_equal(off, b.len);
	assert_int_equal(milter_reader_feed(&r, b.data, 0, &used, &f, &why), MILTER_READ_MORE);
	assert_int_equal(used, 0);
	milter_reader_free(&r);
	milter_buf_free(&b);
}

static int
reader_feed_bytes(struct milter_reader *r, const unsigned char *p, size_t len,
    struct milter_frame *f, const char **why)
{
	size_t	 used;

	return milter_reader_feed(r, p, len, &used, f, why);
}

static void
test_reader_bad_lengths(void **state)
{
	static const unsigned char zero[] = { 0, 0, 0, 0, 'c' };
	static const unsigned char huge[] = { 0xff, 0xff, 0xff, 0xff, 'b' };
	static const unsigned char over[] = { 0, 0x10, 0, 1, 'b' };	/* 1 MiB + 1 */
	static const unsigned char small[] = { 0, 0, 0, 9, 'b' };
	struct milter_reader	 r;
	struct milter_frame	 f;
	const char		*why = NULL;

	milter_reader_init(&r, 0);
	assert_int_equal(reader_feed_bytes(&r, zero, sizeof(zero), &f, &why), MILTER_READ_ERROR);
	assert_string_equal(why, "frame length 0 (no command byte)");
	/* Once failed, always failed: the stream is out of sync. */
	assert_int_equal(reader_feed_bytes(&r, small, sizeof(small), &f, &why),
	    MILTER_READ_ERROR);
	milter_reader_free(&r);

	milter_reader_init(&r, 0);
	assert_int_equal(reader_feed_bytes(&r, huge, 4, &f, &why), MILTER_READ_ERROR);
	assert_string_equal(why, "frame longer than the protocol allows");
	milter_reader_free(&r);

	milter_reader_init(&r, 0);
	assert_int_equal(reader_feed_bytes(&r, over, sizeof(over), &f, &why), MILTER_READ_ERROR);
	milter_reader_free(&r);

	/* A smaller limit of the reader's own. */
	milter_reader_init(&r, 8);
	assert_int_equal(reader_feed_bytes(&r, small, sizeof(small), &f, &why),
	    MILTER_READ_ERROR);
	milter_reader_free(&r);
	milter_reader_init(&r, 9);
	assert_int_equal(reader_feed_bytes(&r, small, sizeof(small), &f, &why),
	    MILTER_READ_MORE);
	milter_reader_free(&r);
}

static void
test_reader_max_frame(void **state)
{
	struct milter_buf	 b;
	struct milter_reader	 r;
	struct milter_frame	 f;
	const char		*why;
	size_t			 used;
	unsigned char		*data = calloc(1, MILTER_FRAME_MAX);

	assert_non_null(data);
	milter_buf_init(&b);
	assert_int_equal(milter_put_data(&b, 'b', data, MILTER_FRAME_MAX - 1), 0);
	milter_reader_init(&r, 0);
	assert_int_equal(milter_reader_feed(&r, b.data, b.len, &used, &f, &why),
	    MILTER_READ_FRAME);
	assert_int_equal(f.len, MILTER_FRAME_MAX - 1);
	milter_reader_free(&r);
	milter_buf_free(&b);
	free(data);
}

/* --- Hostile frames ------------------------------------------------------------ */

struct bad_frame {
	enum milter_side	 side;
	unsigned char		 code;
	const char		*data;
	size_t			 len;
	const char		*why;
};

#define BAD(side, code, lit, why)	{ side, code, lit, sizeof(lit) - 1, why }

static void
test_decode_refuses(void **state)
{
	static const struct bad_frame bad[] = {
		BAD(MILTER_FROM_FILTER, 'c', "x", "reply carries unexpected data"),
		BAD(MILTER_FROM_FILTER, 'p', "\0", "reply carries unexpected data"),
		BAD(MILTER_FROM_FILTER, 'y', "", "wrong number of strings"),
		BAD(MILTER_FROM_FILTER, 'y', "550 no nul", "string not terminated"),
		BAD(MILTER_FROM_FILTER, 'y', "550 a\0b\0", "wrong number of strings"),
		BAD(MILTER_FROM_FILTER, 'h', "X-A\0", "wrong number of strings"),
		BAD(MILTER_FROM_FILTER, 'h', "X-A\0v\0w\0", "wrong number of strings"),
		BAD(MILTER_FROM_FILTER, 'h', "X-A\0v", "string not terminated"),
		BAD(MILTER_FROM_FILTER, 'i', "\0\0\0", "header change without an index"),
		BAD(MILTER_FROM_FILTER, 'm', "\0\0\0\1X\0", "wrong number of strings"),
		BAD(MILTER_FROM_FILTER, '+', "", "wrong number of strings"),
		BAD(MILTER_FROM_FILTER, 'e', "a\0b\0c\0", "wrong number of strings"),
		BAD(MILTER_FROM_FILTER, 'O', "\0\0\0\6\0\0\0\0\0\0\0",
		    "option negotiation of the wrong size"),
		BAD(MILTER_FROM_FILTER, 'O', "\0\0\0\6\0\0\0\0\0\0\0\0\0\0\0",
		    "truncated macro list in option negotiation"),
		BAD(MILTER_FROM_FILTER, 'O', "\0\0\0\6\0\0\0\0\0\0\0\0\0\0\0\0j",
		    "macro list in option negotiation not terminated"),
		BAD(MILTER_FROM_FILTER, 'Z', "", "unknown reply code"),
		BAD(MILTER_FROM_FILTER, 'l', "", "unknown reply code"),
		BAD(MILTER_FROM_FILTER, 'A', "", "unknown reply code"),
		BAD(MILTER_FROM_MTA, 'O', "\0\0\0\6\0\0\0\0\0\0\0\0\0",
		    "option negotiation of the wrong size"),
		BAD(MILTER_FROM_MTA, 'A', "x", "command carries unexpected data"),
		BAD(MILTER_FROM_MTA, 'C', "host", "truncated connect"),
		BAD(MILTER_FROM_MTA, 'C', "host\0", "truncated connect"),
		BAD(MILTER_FROM_MTA, 'C', "host\0" "4\0", "truncated connect"),
		BAD(MILTER_FROM_MTA, 'C', "host\0" "4\0\31" "1.2.3.4",
		    "connect address not a single string"),
		BAD(MILTER_FROM_MTA, 'C', "host\0" "4\0\31" "1.2.3.4\0x",
		    "connect address not a single string"),
		BAD(MILTER_FROM_MTA, 'C', "host\0" "X\0\0a\0",
		    "connect with an unknown address family"),
		BAD(MILTER_FROM_MTA, 'C', "host\0" "U\0\0",
		    "connect with unknown family has trailing data"),
		BAD(MILTER_FROM_MTA, 'D', "", "macro frame without a stage"),
		BAD(MILTER_FROM_MTA, 'D', "Cj\0", "macro frame not made of name/value string pairs"),
		BAD(MILTER_FROM_MTA, 'D', "Cj\0v",
		    "macro frame not made of name/value string pairs"),
		BAD(MILTER_FROM_MTA, 'M', "", "wrong number of strings"),
		BAD(MILTER_FROM_MTA, 'R', "<a>\0x", "string not terminated"),
		BAD(MILTER_FROM_MTA, 'L', "Subject\0", "wrong number of strings"),
		BAD(MILTER_FROM_MTA, 'H', "a\0b\0", "wrong number of strings"),
		BAD(MILTER_FROM_MTA, 'c', "", "unknown command code"),
	};
	struct milter_frame	 f;
	struct milter_msg	 m;
	const char		*why;
	size_t			 i;
	unsigned char		*copy;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		copy = malloc(bad[i].len ? bad[i].len : 1);
		assert_non_null(copy);
		memcpy(copy, bad[i].data, bad[i].len);
		f.code = bad[i].code;
		f.data = copy;
		f.len = bad[i].len;
		why = NULL;
		if (milter_decode(&f, bad[i].side, &m, &why) != -1)
			fail_msg("bad frame %zu ('%c') accepted", i, bad[i].code);
		if (why == NULL || strcmp(why, bad[i].why) != 0)
			fail_msg("bad frame %zu ('%c'): \"%s\", want \"%s\"", i, bad[i].code,
			    why ? why : "(null)", bad[i].why);
		free(copy);
	}
}

/* Pointers a decoded message holds must lie inside the frame. */
static void
check_inside(const struct milter_msg *m, const unsigned char *start, size_t len)
{
	const char	*end = (const char *)start + len;
	size_t		 pos = 0;
	const char	*s;

	if (m->s1 != NULL)
		assert_true(m->s1 >= (const char *)start && m->s1 + strlen(m->s1) < end);
	if (m->s2 != NULL)
		assert_true(m->s2 >= (const char *)start && m->s2 + strlen(m->s2) < end);
	while ((s = milter_strings_next(&m->strings, &pos)) != NULL)
		assert_true(s >= (const char *)start && s + strlen(s) < end);
	if (m->data != NULL)
		assert_true(m->data >= start && m->data + m->len <= start + len);
}

static void
test_decode_random(void **state)
{
	static const unsigned char codes[] = "ABCDEHKLMNOQRTU+-24abcdefhimpqrsty";
	uint64_t		 seed = 0x9e3779b97f4a7c15ull;
	struct milter_frame	 f;
	struct milter_msg	 m;
	const char		*why;
	unsigned char		*buf;
	size_t			 round, len, i;
	uint32_t		 stage;
	const char		*list;

	for (round = 0; round < 20000; round++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		len = (size_t)(seed >> 59);
		buf = malloc(len ? len : 1);
		assert_non_null(buf);
		for (i = 0; i < len; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			/* Mostly NULs and small letters, so strings end now and then. */
			buf[i] = (seed >> 62) == 0 ? 0 : (unsigned char)(seed >> 56);
		}
		f.code = codes[(seed >> 33) % (sizeof(codes) - 1)];
		f.data = buf;
		f.len = len;
		if (milter_decode(&f, (round & 1) ? MILTER_FROM_FILTER : MILTER_FROM_MTA, &m,
		    &why) == 0) {
			check_inside(&m, buf, len);
			for (i = 0; milter_macro_list_next(&m, &i, &stage, &list);)
				assert_true((const unsigned char *)list + strlen(list) < buf + len);
		}
		free(buf);
	}
}

/* --- milter_parse: addresses ------------------------------------------------- */

static void
test_address_parse(void **state)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ss;
	socklen_t		 len;
	char			 err[256], host[64];
	static const char *const bad[] = {
		"", "tcp:1@x", "inet:", "inet:0@127.0.0.1", "inet:65536@127.0.0.1",
		"inet:12x@127.0.0.1", "inet:8891@example.org", "inet:127.0.0.1",
		"inet:127.0.0.1:", "inet6:8891@127.0.0.1", "unix:relative.sock", "unix:",
		"inet:8891@", "inet:@127.0.0.1", "inet:[127.0.0.1:25",
	};
	size_t			 i;

	assert_int_equal(milter_address_parse("inet:8891@127.0.0.1", &ss, &len, err,
	    sizeof(err)), 0);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 8891);
	assert_int_equal(len, sizeof(*sin));
	assert_int_equal(milter_address_parse("inet:127.0.0.2:25", &ss, &len, err,
	    sizeof(err)), 0);
	assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)), "127.0.0.2");
	assert_int_equal(ntohs(sin->sin_port), 25);
	assert_int_equal(milter_address_parse("inet:10025@localhost", &ss, &len, err,
	    sizeof(err)), 0);
	assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)), "127.0.0.1");
	assert_int_equal(milter_address_parse("inet6:8891@::1", &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 8891);
	assert_int_equal(milter_address_parse("inet6:8891@localhost", &ss, &len, err,
	    sizeof(err)), 0);
	assert_string_equal(inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)), "::1");
	assert_int_equal(milter_address_parse("inet:[2001:db8::5]:99", &ss, &len, err,
	    sizeof(err)), 0);
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 99);
	assert_int_equal(milter_address_parse("inet6:[::1]:7", &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(milter_address_parse("unix:/run/milter.sock", &ss, &len, err,
	    sizeof(err)), 0);
	assert_int_equal(sun->sun_family, AF_UNIX);
	assert_string_equal(sun->sun_path, "/run/milter.sock");
	assert_int_equal(milter_address_parse("local:/a", &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(milter_address_parse("inet:8891@example.org", &ss, &len, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "the host in \"inet:8891@example.org\" must be a numeric "
	    "address or localhost");
	assert_int_equal(milter_address_parse("smtp:x", &ss, &len, err, sizeof(err)), -1);
	assert_string_equal(err, "the milter address \"smtp:x\" must start with unix:, inet: "
	    "or inet6:");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (milter_address_parse(bad[i], &ss, &len, err, sizeof(err)) != -1)
			fail_msg("address \"%s\" accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
	{
		char	 longpath[200];

		memset(longpath, 'a', sizeof(longpath) - 1);
		longpath[0] = '/';
		longpath[sizeof(longpath) - 1] = '\0';
		snprintf(err, sizeof(err), "unix:%s", longpath);
		assert_int_equal(milter_address_parse(err, &ss, &len, host, sizeof(host)), -1);
	}
}

/* --- milter_parse: replies ------------------------------------------------------ */

static void
test_reply_parse(void **state)
{
	struct milter_reply	 r;
	static const char *const bad[] = {
		"", "250 ok", "55", "550x text", "5a0 text", "650 5.7.1 x",
		"550 4.7.1 class mismatch", "450 5.7.1 class mismatch",
		"550-5.7.1 one\r\n451 4.7.1 two", "550 5.7.1.1 x", "550 5..1 x",
		"550-one\r\n\r\n550 two", "550 5.7.1234 x",
	};
	size_t			 i;

	assert_int_equal(milter_reply_parse("550 5.7.1 go away", &r), 0);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.enhanced, "5.7.1");
	assert_string_equal(r.text, "go away");
	assert_int_equal(milter_reply_parse("451 try later", &r), 0);
	assert_int_equal(r.code, 451);
	assert_string_equal(r.enhanced, "");
	assert_string_equal(r.text, "try later");
	/* smfi_setreply with only a code writes "550 ". */
	assert_int_equal(milter_reply_parse("550 ", &r), 0);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.text, "");
	assert_int_equal(milter_reply_parse("421", &r), 0);
	assert_int_equal(r.code, 421);
	assert_int_equal(milter_reply_parse("554 5.7.0", &r), 0);
	assert_string_equal(r.enhanced, "5.7.0");
	assert_string_equal(r.text, "");
	/* smfi_setmlreply. */
	assert_int_equal(milter_reply_parse("550-5.7.1 first line\r\n550-5.7.1 second\r\n"
	    "550 5.7.1 last", &r), 0);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.enhanced, "5.7.1");
	assert_string_equal(r.text, "first line second last");
	assert_int_equal(milter_reply_parse("450 4.2.0 trailing\r\n", &r), 0);
	assert_string_equal(r.text, "trailing");
	/* Sendmail doubles '%'; a lone one is dropped; controls become spaces. */
	assert_int_equal(milter_reply_parse("550 5.7.1 100%% spam 5% \001x\x7f", &r), 0);
	assert_string_equal(r.text, "100% spam 5  x ");
	assert_int_equal(milter_reply_parse("451 4.7.1 caf\xc3\xa9 ferm\xc3\xa9", &r), 0);
	assert_string_equal(r.text, "caf?? ferm??");
	assert_int_equal(milter_reply_parse("550 5.123.456 x", &r), 0);
	assert_string_equal(r.enhanced, "5.123.456");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (milter_reply_parse(bad[i], &r) != -1)
			fail_msg("reply \"%s\" accepted", bad[i]);
	assert_int_equal(milter_reply_parse(NULL, &r), -1);
	/* A long text is cut, never overflowed. */
	{
		char	*s = malloc(5000);

		assert_non_null(s);
		memset(s, 'a', 4999);
		memcpy(s, "550 ", 4);
		s[4999] = '\0';
		assert_int_equal(milter_reply_parse(s, &r), 0);
		assert_int_equal(strlen(r.text), sizeof(r.text) - 1);
		free(s);
	}
}

/* --- milter_parse: macros, mailboxes, headers ------------------------------------- */

static void
test_macro_names(void **state)
{
	const char	*p = " j {daemon_name},i,,\t{tls_version}  ";
	char		 name[16];

	assert_int_equal(milter_macro_name_next(&p, name, sizeof(name)), 0);
	assert_string_equal(name, "j");
	assert_int_equal(milter_macro_name_next(&p, name, sizeof(name)), 0);
	assert_string_equal(name, "{daemon_name}");
	assert_int_equal(milter_macro_name_next(&p, name, sizeof(name)), 0);
	assert_string_equal(name, "i");
	assert_int_equal(milter_macro_name_next(&p, name, sizeof(name)), 0);
	assert_string_equal(name, "{tls_version}");
	assert_int_equal(milter_macro_name_next(&p, name, sizeof(name)), -1);
	assert_int_equal(milter_macro_name_next(&p, name, sizeof(name)), -1);
	/* Too long for the buffer: skipped. */
	p = "{a_very_long_macro_name} j";
	assert_int_equal(milter_macro_name_next(&p, name, sizeof(name)), 0);
	assert_string_equal(name, "j");
	p = "";
	assert_int_equal(milter_macro_name_next(&p, name, sizeof(name)), -1);
	assert_true(milter_macro_name_equal("{i}", "i"));
	assert_true(milter_macro_name_equal("i", "{i}"));
	assert_true(milter_macro_name_equal("{mail_addr}", "{mail_addr}"));
	assert_false(milter_macro_name_equal("{mail_addr}", "{mail_add}"));
	assert_false(milter_macro_name_equal("j", "{}"));
	assert_false(milter_macro_name_equal("{", "}"));
}

static void
test_mailbox_strip(void **state)
{
	char	 out[16];

	assert_int_equal(milter_mailbox_strip("<a@b.example>", out, sizeof(out)), 0);
	assert_string_equal(out, "a@b.example");
	assert_int_equal(milter_mailbox_strip(" a@b ", out, sizeof(out)), 0);
	assert_string_equal(out, "a@b");
	assert_int_equal(milter_mailbox_strip("<>", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(milter_mailbox_strip("<a@b", out, sizeof(out)), -1);
	assert_int_equal(milter_mailbox_strip("<a>@<b>", out, sizeof(out)), -1);
	assert_int_equal(milter_mailbox_strip("<abcdefghijklmnopq@x>", out, sizeof(out)), -1);
}

static void
test_header_values(void **state)
{
	char	 out[64];

	assert_true(milter_header_name_valid("DKIM-Signature"));
	assert_true(milter_header_name_valid("X-!#$%&'*+.^_`|~"));
	assert_false(milter_header_name_valid(""));
	assert_false(milter_header_name_valid("Bad Name"));
	assert_false(milter_header_name_valid("Bad:Name"));
	assert_false(milter_header_name_valid("Bad\x80"));
	assert_false(milter_header_name_valid(NULL));

	assert_string_equal(milter_header_value_in("v", 0), "v");
	assert_string_equal(milter_header_value_in(" v", 0), " v");
	assert_string_equal(milter_header_value_in(" v", 1), "v");
	assert_string_equal(milter_header_value_in("v", 1), "v");
	assert_string_equal(milter_header_value_in("a;\n\tb=1", 0), "a;\n\tb=1");
	assert_string_equal(milter_header_value_in("a;\r\n b", 0), "a;\r\n b");
	assert_string_equal(milter_header_value_in("", 0), "");
	assert_null(milter_header_value_in("a\nb", 0));
	assert_null(milter_header_value_in("a\rb", 0));
	assert_null(milter_header_value_in("a\r", 0));
	assert_null(milter_header_value_in("a\n", 0));
	assert_null(milter_header_value_in("a\n \nb", 0));
	assert_null(milter_header_value_in("a\n\t", 0));
	assert_null(milter_header_value_in("a\n \r\n b", 0));
	assert_null(milter_header_value_in(NULL, 0));

	assert_string_equal(milter_header_value_out("a\r\n\tb", 0, out, sizeof(out)), "a\n\tb");
	assert_string_equal(milter_header_value_out("x", 1, out, sizeof(out)), " x");
	assert_string_equal(milter_header_value_out("", 0, out, sizeof(out)), "");
	assert_string_equal(milter_header_value_out("abcdef", 0, out, 4), "abc");

	milter_text_clean("a\r\nb\tc\x7f", out, sizeof(out));
	assert_string_equal(out, "a  b c ");
	milter_text_clean("abcdef", out, 3);
	assert_string_equal(out, "ab");
	milter_text_clean(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constants),
		cmocka_unit_test(test_wire_bytes),
		cmocka_unit_test(test_empty_commands),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_empty_replies),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_code_names),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_reader_frames_back_to_back),
		cmocka_unit_test(test_reader_bad_lengths),
		cmocka_unit_test(test_reader_max_frame),
		cmocka_unit_test(test_decode_refuses),
		cmocka_unit_test(test_decode_random),
		cmocka_unit_test(test_address_parse),
		cmocka_unit_test(test_reply_parse),
		cmocka_unit_test(test_macro_names),
		cmocka_unit_test(test_mailbox_strip),
		cmocka_unit_test(test_header_values),
	};

	return cmocka_run_group_tests_name("milter_codec", tests, NULL, NULL);
}
