/*
 * proxy_proto.c - incremental PROXY protocol v1/v2 header parser.
 * See proxy_proto.h for the accepted forms.
 *
 * Bytes are taken one state at a time: the v1 line and the v2 fixed part
 * plus address block are buffered (at most 232 bytes), v2 TLVs are only
 * walked, never stored, so the struct stays small whatever the length.
 * Signatures are checked byte by byte as they arrive, so an SMTP client
 * that talks to a PROXY listener directly is refused at its first byte.
 */
#include "autoconf.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "proxy_proto.h"

enum pp_state {
	PP_START = 0,	/* first byte decides the version */
	PP_V1,		/* reading the v1 line */
	PP_V2_HEAD,	/* reading the 16-byte v2 fixed part */
	PP_V2_ADDR,	/* reading the v2 address block */
	PP_V2_TLV,	/* walking v2 TLVs */
	PP_V2_SKIP,	/* skipping the rest of a v2 header unread */
	PP_DONE,
	PP_ERROR
};

#define PP_V1_PREFIX	"PROXY "
#define PP_V1_PREFIX_LEN 6

static const unsigned char pp_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static enum proxy_proto_status pp_fail(struct proxy_proto *, const char *);
static size_t	 pp_start(struct proxy_proto *, unsigned char);
static size_t	 pp_v1(struct proxy_proto *, const unsigned char *, size_t);
static void	 pp_v1_parse(struct proxy_proto *);
static int	 pp_v1_port(const char *, size_t, uint16_t *);
static int	 pp_v1_address(int, const char *, size_t, struct sockaddr_storage *,
		    uint16_t);
static size_t	 pp_v2_head(struct proxy_proto *, const unsigned char *, size_t);
static void	 pp_v2_command(struct proxy_proto *);
static size_t	 pp_v2_addr(struct proxy_proto *, const unsigned char *, size_t);
static size_t	 pp_v2_tlv(struct proxy_proto *, const unsigned char *, size_t);
static size_t	 pp_v2_skip(struct proxy_proto *, size_t);

void
proxy_proto_init(struct proxy_proto *pp, unsigned int versions)
{
	memset(pp, 0, sizeof(*pp));
	pp->accept = versions & PROXY_PROTO_ANY;
	pp->state = PP_START;
}

static enum proxy_proto_status
pp_fail(struct proxy_proto *pp, const char *why)
{
	pp->state = PP_ERROR;
	pp->error = why;
	return PROXY_PROTO_ERROR;
}

/* Header complete; proxy_proto_feed records its length. */
static void
pp_finish(struct proxy_proto *pp)
{
	pp->state = PP_DONE;
}

enum proxy_proto_status
proxy_proto_feed(struct proxy_proto *pp, const unsigned char *p, size_t len, size_t *used)
{
	size_t	 off = 0, n;

	*used = 0;
	while (off < len && pp->state != PP_DONE && pp->state != PP_ERROR) {
		switch (pp->state) {
		case PP_START:
			n = pp_start(pp, p[off]);
			break;
		case PP_V1:
			n = pp_v1(pp, p + off, len - off);
			break;
		case PP_V2_HEAD:
			n = pp_v2_head(pp, p + off, len - off);
			break;
		case PP_V2_ADDR:
			n = pp_v2_addr(pp, p + off, len - off);
			break;
		case PP_V2_TLV:
			n = pp_v2_tlv(pp, p + off, len - off);
			break;
		default:
			n = pp_v2_skip(pp, len - off);
			break;
		}
		off += n;
		pp->consumed += n;
	}
	*used = off;
	if (pp->state == PP_DONE) {
		pp->length = pp->consumed;
		return PROXY_PROTO_DONE;
	}
	if (pp->state == PP_ERROR)
		return PROXY_PROTO_ERROR;
	return PROXY_PROTO_NEED_MORE;
}

/* The first byte: 'P' starts v1, CR starts the v2 signature.  Consumes nothing. */
static size_t
pp_start(struct proxy_proto *pp, unsigned char c)
{
	if (c == 'P' && (pp->accept & PROXY_PROTO_V1))
		pp->state = PP_V1;
	else if (c == pp_v2_sig[0] && (pp->accept & PROXY_PROTO_V2))
		pp->state = PP_V2_HEAD;
	else if (c == 'P' || c == pp_v2_sig[0])
		pp_fail(pp, c == 'P' ? "v1 header on a v2-only listener" :
		    "v2 header on a v1-only listener");
	else
		pp_fail(pp, "no PROXY protocol header");
	return 0;
}

/* --- Version 1 ------------------------------------------------------------ */

static size_t
pp_v1(struct proxy_proto *pp, const unsigned char *p, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		unsigned char	 c = p[i];

		if (pp->have < PP_V1_PREFIX_LEN && c != (unsigned char)PP_V1_PREFIX[pp->have]) {
			pp_fail(pp, "bad v1 signature");
			return i;
		}
		pp->buf[pp->have++] = c;
		if (c == '\n') {
			pp_v1_parse(pp);
			return i + 1;
		}
		if (pp->have >= PROXY_PROTO_V1_MAX) {
			pp_fail(pp, "v1 line without CRLF within 107 bytes");
			return i + 1;
		}
	}
	return len;
}

/* Split "a b c" at single spaces into at most max tokens; -1 on an empty one. */
static int
pp_v1_split(const char *s, size_t len, const char **tok, size_t *toklen, int max)
{
	size_t	 i, start = 0;
	int	 n = 0;

	for (i = 0; i <= len; i++) {
		if (i < len && s[i] != ' ')
			continue;
		if (i == start || n == max)
			return -1;
		tok[n] = s + start;
		toklen[n++] = i - start;
		start = i + 1;
	}
	return n;
}

/* The whole line is in buf, ending with LF. */
static void
pp_v1_parse(struct proxy_proto *pp)
{
	const char	*line = (const char *)pp->buf, *tok[5];
	size_t		 len = pp->have, toklen[5], i;
	uint16_t	 sport, dport;
	int		 family;

	if (len < 2 || line[len - 2] != '\r') {
		pp_fail(pp, "v1 line not ended by CRLF");
		return;
	}
	len -= 2;
	for (i = 0; i < len; i++)
		if (pp->buf[i] < 0x20 || pp->buf[i] > 0x7e) {
			pp_fail(pp, "v1 line with a control or non-ASCII byte");
			return;
		}
	line += PP_V1_PREFIX_LEN;
	len -= PP_V1_PREFIX_LEN;
	pp->version = 1;
	/* UNKNOWN: whatever follows is to be ignored (spec 2.1). */
	if ((len == 7 || (len > 7 && line[7] == ' ')) && memcmp(line, "UNKNOWN", 7) == 0) {
		pp->command = PROXY_PROTO_LOCAL;
		pp_finish(pp);
		return;
	}
	if (pp_v1_split(line, len, tok, toklen, 5) != 5) {
		pp_fail(pp, "v1 line is not \"PROXY TCP4|TCP6 src dst sport dport\"");
		return;
	}
	if (toklen[0] == 4 && memcmp(tok[0], "TCP4", 4) == 0)
		family = AF_INET;
	else if (toklen[0] == 4 && memcmp(tok[0], "TCP6", 4) == 0)
		family = AF_INET6;
	else {
		pp_fail(pp, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
		return;
	}
	if (pp_v1_port(tok[3], toklen[3], &sport) == -1 ||
	    pp_v1_port(tok[4], toklen[4], &dport) == -1) {
		pp_fail(pp, "bad v1 port");
		return;
	}
	if (pp_v1_address(family, tok[1], toklen[1], &pp->src, sport) == -1 ||
	    pp_v1_address(family, tok[2], toklen[2], &pp->dst, dport) == -1) {
		pp_fail(pp, "bad v1 address for the protocol");
		return;
	}
	pp->addrlen = family == AF_INET ? sizeof(struct sockaddr_in) :
	    sizeof(struct sockaddr_in6);
	pp->command = PROXY_PROTO_PROXY;
	pp_finish(pp);
}

/* 0..65535 in decimal, no leading zero (spec 2.1). */
static int
pp_v1_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long	 v = 0;
	size_t		 i;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* inet_pton refuses leading zeros in IPv4 octets, as the spec wants. */
static int
pp_v1_address(int family, const char *s, size_t len, struct sockaddr_storage *ss,
    uint16_t port)
{
	char	 text[INET6_ADDRSTRLEN];

	if (len >= sizeof(text))
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in	*sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		return inet_pton(AF_INET, text, &sin->sin_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1 ? 0 : -1;
	}
}

/* --- Version 2 ------------------------------------------------------------ */

static size_t
pp_v2_head(struct proxy_proto *pp, const unsigned char *p, size_t len)
{
	size_t	 i;

	for (i = 0; i < len && pp->have < PROXY_PROTO_V2_HEAD; i++) {
		if (pp->have < sizeof(pp_v2_sig) && p[i] != pp_v2_sig[pp->have]) {
			pp_fail(pp, "bad v2 signature");
			return i;
		}
		pp->buf[pp->have++] = p[i];
	}
	if (pp->have == PROXY_PROTO_V2_HEAD)
		pp_v2_command(pp);
	return i;
}

/* Bytes of the address block of a v2 family we read, 0 for those we ignore. */
static size_t
pp_v2_addr_size(unsigned int family)
{
	return family == 1 ? 12 : family == 2 ? 36 : 0;
}

/* The fixed part is in: check it and choose how to read the rest. */
static void
pp_v2_command(struct proxy_proto *pp)
{
	unsigned int	 ver = pp->buf[12] >> 4, cmd = pp->buf[12] & 0x0f;
	unsigned int	 family = pp->buf[13] >> 4, transport = pp->buf[13] & 0x0f;
	size_t		 length = ((size_t)pp->buf[14] << 8) | pp->buf[15];

	pp->version = 2;
	if (ver != 2)
		pp_fail(pp, "v2 version is not 2");
	else if (cmd > 1)
		pp_fail(pp, "v2 command is not LOCAL or PROXY");
	else if (family > 3 || transport > 2)
		pp_fail(pp, "v2 family or transport unknown");
	else if (length > PROXY_PROTO_V2_LEN_MAX)
		pp_fail(pp, "v2 length over the limit");
	if (pp->state == PP_ERROR)
		return;
	pp->total = PROXY_PROTO_V2_HEAD + length;
	if (cmd == 0 || family == 0 || family == 3 || transport == 0) {
		/* LOCAL, or nothing we can use: the socket's addresses (spec 2.2). */
		pp->command = PROXY_PROTO_LOCAL;
		pp->state = PP_V2_SKIP;
	} else if (transport == 2) {
		pp_fail(pp, "v2 transport is UDP");
		return;
	} else if (length < pp_v2_addr_size(family)) {
		pp_fail(pp, "v2 length too short for the addresses");
		return;
	} else
		pp->state = PP_V2_ADDR;
	if (pp->total == PROXY_PROTO_V2_HEAD)
		pp_finish(pp);
}

static size_t
pp_v2_addr(struct proxy_proto *pp, const unsigned char *p, size_t len)
{
	unsigned int	 family = pp->buf[13] >> 4;
	size_t		 want = PROXY_PROTO_V2_HEAD + pp_v2_addr_size(family), n;
	const unsigned char *a = pp->buf + PROXY_PROTO_V2_HEAD;

	n = want - pp->have < len ? want - pp->have : len;
	memcpy(pp->buf + pp->have, p, n);
	pp->have += n;
	if (pp->have < want)
		return n;
	memset(&pp->src, 0, sizeof(pp->src));
	memset(&pp->dst, 0, sizeof(pp->dst));
	if (family == 1) {
		struct sockaddr_in	*s = (struct sockaddr_in *)&pp->src;
		struct sockaddr_in	*d = (struct sockaddr_in *)&pp->dst;

		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, a, 4);
		memcpy(&d->sin_addr, a + 4, 4);
		memcpy(&s->sin_port, a + 8, 2);
		memcpy(&d->sin_port, a + 10, 2);
		pp->addrlen = sizeof(struct sockaddr_in);
	} else {
		struct sockaddr_in6	*s = (struct sockaddr_in6 *)&pp->src;
		struct sockaddr_in6	*d = (struct sockaddr_in6 *)&pp->dst;

		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, a, 16);
		memcpy(&d->sin6_addr, a + 16, 16);
		memcpy(&s->sin6_port, a + 32, 2);
		memcpy(&d->sin6_port, a + 34, 2);
		pp->addrlen = sizeof(struct sockaddr_in6);
	}
	pp->command = PROXY_PROTO_PROXY;
	pp->state = PP_V2_TLV;
	if (pp->consumed + n == pp->total)
		pp_finish(pp);
	return n;
}

/*
 * TLVs: type (1), length (2, big-endian), value.  Each must fit in the
 * header, and the last must end exactly where the header does.
 */
static size_t
pp_v2_tlv(struct proxy_proto *pp, const unsigned char *p, size_t len)
{
	size_t	 left = pp->total - pp->consumed, off = 0, n;

	if (len > left)
		len = left;
	while (off < len) {
		if (pp->tlv_need > 0) {
			n = pp->tlv_need < len - off ? pp->tlv_need : len - off;
			pp->tlv_need -= n;
			off += n;
			continue;
		}
		pp->tlv_head[pp->tlv_have++] = p[off++];
		if (pp->tlv_have < sizeof(pp->tlv_head))
			continue;
		pp->tlv_have = 0;
		pp->tlv_need = ((size_t)pp->tlv_head[1] << 8) | pp->tlv_head[2];
		if (pp->tlv_need > left - off) {
			pp_fail(pp, "v2 TLV runs past the header");
			return off;
		}
	}
	if (off == left) {
		if (pp->tlv_have != 0)
			pp_fail(pp, "v2 TLV cut short by the header length");
		else
			pp_finish(pp);
	}
	return off;
}

static size_t
pp_v2_skip(struct proxy_proto *pp, size_t len)
{
	size_t	 left = pp->total - pp->consumed;

	if (len >= left) {
		pp_finish(pp);
		return left;
	}
	return len;
}
