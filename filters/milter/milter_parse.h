/*
 * milter_parse.h - the text the milter client reads and writes besides
 * frames: milter socket addresses, the SMTP reply a filter sends in
 * SMFIR_REPLYCODE, macro name lists, mailboxes and header fields as the
 * milter protocol spells them.  Pure code (no I/O, no sluice API), unit
 * tested on its own.
 */
#ifndef SLUICE_MILTER_PARSE_H
#define SLUICE_MILTER_PARSE_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * A milter's address as Sendmail and Postfix write it:
 *	unix:/path/to/socket	(also local:/path)
 *	inet:PORT@HOST		inet:HOST:PORT
 *	inet6:PORT@HOST		inet6:[HOST]:PORT
 * HOST is a numeric address or "localhost" (127.0.0.1, or ::1 for inet6):
 * a name would need DNS at each connection.  0, or -1 with a sentence in
 * err.
 */
int	 milter_address_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len,
	    char *err, size_t errlen);

/* What an SMFIR_REPLYCODE text says. */
struct milter_reply {
	int	 code;		/* 400..599 */
	char	 enhanced[16];	/* "5.7.1", or "" when the reply has none */
	char	 text[512];	/* lines joined by a space, "%%" made "%", ASCII only */
};

/*
 * Parse "550 5.7.1 text", "550 text", "550" or a multi-line reply
 * ("550-5.7.1 one\r\n550 5.7.1 two") as libmilter's smfi_setreply and
 * smfi_setmlreply produce it.  Every line must have the same 4xx or 5xx
 * code; an enhanced code must have the code's class.  0, or -1.
 */
int	 milter_reply_parse(const char *s, struct milter_reply *r);

/*
 * Next macro name of a list separated by spaces or commas ("j {daemon_name},
 * i"): copied into name (braces kept as written), *p advanced.  0, or -1
 * at the end of the list.  A name too long for size is skipped.
 */
int	 milter_macro_name_next(const char **p, char *name, size_t size);
/* Whether two macro names are the same, "{i}" and "i" alike. */
int	 milter_macro_name_equal(const char *a, const char *b);

/*
 * A mailbox as a filter sends it ("<a@b>" or "a@b", maybe with spaces
 * around) into out without the angle brackets; "<>" gives "".  0, or -1
 * when it does not fit or is not one mailbox.
 */
int	 milter_mailbox_strip(const char *in, char *out, size_t size);

/* A header field name: printable US-ASCII without ':' or space, not empty. */
int	 milter_header_name_valid(const char *name);

/*
 * A header value from a filter made ready for the message: with
 * leadspc (SMFIP_HDR_LEADSPC negotiated) one leading space is dropped,
 * since sluice writes "Name: value".  Line ends are accepted only as
 * folding ("\n" or "\r\n" followed by SP or HTAB and more text).  Returns
 * the value to use (a pointer into value), or NULL when it is not valid.
 */
const char *milter_header_value_in(const char *value, int leadspc);

/*
 * A header value from the message made ready for a filter: folding
 * "\r\n" becomes "\n" as Sendmail and Postfix send it, and with leadspc a
 * space is put in front.  Writes into out (size >= strlen(value) + 2)
 * and returns out.
 */
char	*milter_header_value_out(const char *value, int leadspc, char *out, size_t size);

/* Text made safe for one header line or log: controls become spaces, at most size - 1. */
void	 milter_text_clean(const char *in, char *out, size_t size);

#endif /* SLUICE_MILTER_PARSE_H */
