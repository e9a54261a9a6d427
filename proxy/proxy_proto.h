/*
 * proxy_proto.h - the HAProxy PROXY protocol header (v1 text, v2 binary),
 * parsed incrementally.
 *
 * A load balancer in front of sluice sends one header at the start of
 * each connection naming the real client's address.  The parser is fed
 * the connection's first bytes in pieces of any size and says NEED_MORE,
 * DONE or ERROR.  It consumes exactly the header: *used never counts a
 * byte past its end, so the SMTP bytes a client pipelines in the same
 * packet stay with the caller.
 *
 * Strict, as the spec (haproxy doc/proxy-protocol.txt) asks: v1 is
 * "PROXY TCP4|TCP6 src dst sport dport\r\n" with single spaces, addresses
 * that parse for the family, ports 0-65535 without leading zeros, the
 * CRLF within 107 bytes; "PROXY UNKNOWN ...\r\n" is accepted and means
 * "use the socket's addresses".  v2 is the 12-byte signature, version 2,
 * command LOCAL or PROXY, family UNSPEC/INET/INET6/UNIX, transport
 * UNSPEC/STREAM, a length of at most PROXY_PROTO_V2_LEN_MAX, and TLVs
 * that exactly fill what follows the addresses (their contents are
 * skipped).  LOCAL, UNSPEC and UNIX mean "use the socket's addresses" too.
 * UDP (DGRAM) is refused: an SMTP connection is never a datagram.
 *
 * Pure code: no allocation, no I/O.  The struct is caller-owned and needs
 * no cleanup; its error string is static.
 */
#ifndef SLUICE_PROXY_PROTO_H
#define SLUICE_PROXY_PROTO_H

#include <stddef.h>
#include <sys/socket.h>

/* Which versions a listener accepts (bit mask). */
#define PROXY_PROTO_V1		0x01
#define PROXY_PROTO_V2		0x02
#define PROXY_PROTO_ANY		(PROXY_PROTO_V1 | PROXY_PROTO_V2)

/* Longest v1 line including CRLF (spec 2.1). */
#define PROXY_PROTO_V1_MAX	107
/* Largest v2 length field accepted (addresses and TLVs); bounds the wait. */
#define PROXY_PROTO_V2_LEN_MAX	4096
/* v2 fixed part: signature, version/command, family, length. */
#define PROXY_PROTO_V2_HEAD	16
/* v2 address block of the largest family (AF_UNIX: 2 * 108). */
#define PROXY_PROTO_V2_ADDR_MAX	216

enum proxy_proto_status {
	PROXY_PROTO_NEED_MORE = 0,	/* every byte fed was header; feed more */
	PROXY_PROTO_DONE,		/* header complete: see result fields */
	PROXY_PROTO_ERROR		/* not a valid header: error says why */
};

enum proxy_proto_command {
	PROXY_PROTO_LOCAL = 0,		/* use the socket's addresses (LOCAL, UNKNOWN, UNSPEC, UNIX) */
	PROXY_PROTO_PROXY		/* src and dst hold the real endpoints */
};

struct proxy_proto {
	/* Set by proxy_proto_init. */
	unsigned int	 accept;	/* PROXY_PROTO_V1 and/or PROXY_PROTO_V2 */
	/* Private parser state. */
	int		 state;		/* where we are */
	size_t		 have;		/* bytes in buf */
	size_t		 consumed;	/* header bytes taken so far */
	size_t		 total;		/* v2: whole header length once known */
	size_t		 tlv_need;	/* v2: bytes still to skip in the current TLV value */
	unsigned char	 tlv_head[3];	/* v2: a TLV's type and length being read */
	size_t		 tlv_have;	/* bytes in tlv_head */
	unsigned char	 buf[PROXY_PROTO_V2_HEAD + PROXY_PROTO_V2_ADDR_MAX]; /* line or head+addresses */
	/* Result, valid after DONE. */
	int		 version;	/* 1 or 2 */
	enum proxy_proto_command command; /* LOCAL or PROXY */
	struct sockaddr_storage src;	/* client (PROXY only) */
	struct sockaddr_storage dst;	/* address the client connected to (PROXY only) */
	socklen_t	 addrlen;	/* of src and dst */
	size_t		 length;	/* header bytes in total */
	/* Set on ERROR. */
	const char	*error;		/* short reason, "bad v1 source address", static */
};

/* Start parsing a header; versions is a PROXY_PROTO_V1/V2 mask. */
void	 proxy_proto_init(struct proxy_proto *pp, unsigned int versions);

/*
 * Feed len bytes at p.  *used gets how many of them belong to the header:
 * all of them on NEED_MORE, the header's tail on DONE (the rest is the
 * application's), and the bytes examined on ERROR.  After DONE or ERROR
 * further calls return the same status and use nothing.
 */
enum proxy_proto_status proxy_proto_feed(struct proxy_proto *pp, const unsigned char *p,
	    size_t len, size_t *used);

#endif /* SLUICE_PROXY_PROTO_H */
