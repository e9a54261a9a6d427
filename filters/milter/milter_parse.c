/*
 * milter_parse.c - addresses, SMTP reply texts, macro lists, mailboxes and
 * header fields as the milter protocol spells them (see milter_parse.h).
 */
#include "autoconf.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter_parse.h"

static int	 address_port(const char *, size_t, int *);
static int	 address_host(const char *, size_t, int, struct sockaddr_storage *,
		    socklen_t *, int);
static int	 address_inet(const char *, const char *, int, struct sockaddr_storage *,
		    socklen_t *, char *, size_t);
static int	 address_unix(const char *, struct sockaddr_storage *, socklen_t *, char *,
		    size_t);
static size_t	 enhanced_len(const char *, int);
static int	 reply_line(const char *, size_t, struct milter_reply *, int, size_t *);
static void	 reply_text_add(struct milter_reply *, const char *, size_t, size_t *);
static int	 is_wsp(int);

/* --- Addresses ------------------------------------------------------------ */

static int
address_port(const char *s, size_t len, int *port)
{
	size_t	 i;
	long	 v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

/* A numeric host (or localhost) of family v6 (1), v4 (0) or either (-1). */
static int
address_host(const char *s, size_t len, int v6, struct sockaddr_storage *ss, socklen_t *sslen,
    int port)
{
	char			 host[INET6_ADDRSTRLEN + 1];
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	if (len > 1 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(host))
		return -1;
	memcpy(host, s, len);
	host[len] = '\0';
	if (strcmp(host, "localhost") == 0)
		strcpy(host, v6 == 1 ? "::1" : "127.0.0.1");
	memset(ss, 0, sizeof(*ss));
	if (v6 != 1 && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*sin);
		return 0;
	}
	if (v6 != 0 && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* s: "PORT@HOST" or "HOST:PORT" after "inet:" (v6 0, either family) or "inet6:" (1). */
static int
address_inet(const char *spec, const char *s, int v6, struct sockaddr_storage *ss,
    socklen_t *len, char *err, size_t errlen)
{
	const char	*at = strchr(s, '@'), *colon = strrchr(s, ':');
	int		 port;

	if (at != NULL) {
		if (address_port(s, (size_t)(at - s), &port) == -1) {
			snprintf(err, errlen, "the port in \"%s\" must be a number from 1 to 65535",
			    spec);
			return -1;
		}
		if (address_host(at + 1, strlen(at + 1), v6 ? 1 : -1, ss, len, port) == -1)
			goto badhost;
		return 0;
	}
	if (colon == NULL || address_port(colon + 1, strlen(colon + 1), &port) == -1) {
		snprintf(err, errlen, "\"%s\" must be %s:PORT@HOST or %s:HOST:PORT", spec,
		    v6 ? "inet6" : "inet", v6 ? "inet6" : "inet");
		return -1;
	}
	if (address_host(s, (size_t)(colon - s), v6 ? 1 : -1, ss, len, port) == -1)
		goto badhost;
	return 0;
badhost:
	snprintf(err, errlen, "the host in \"%s\" must be a numeric %saddress or localhost",
	    spec, v6 ? "IPv6 " : "");
	return -1;
}

static int
address_unix(const char *path, struct sockaddr_storage *ss, socklen_t *len, char *err,
    size_t errlen)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)ss;

	if (path[0] != '/') {
		snprintf(err, errlen, "the socket path \"%s\" must be absolute", path);
		return -1;
	}
	if (strlen(path) >= sizeof(sun->sun_path)) {
		snprintf(err, errlen, "the socket path \"%s\" is too long", path);
		return -1;
	}
	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, strlen(path) + 1);
	*len = (socklen_t)sizeof(*sun);
	return 0;
}

int
milter_address_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len, char *err,
    size_t errlen)
{
	if (spec == NULL || *spec == '\0') {
		snprintf(err, errlen, "the milter address is empty");
		return -1;
	}
	if (strncmp(spec, "unix:", 5) == 0)
		return address_unix(spec + 5, ss, len, err, errlen);
	if (strncmp(spec, "local:", 6) == 0)
		return address_unix(spec + 6, ss, len, err, errlen);
	if (strncmp(spec, "inet:", 5) == 0)
		return address_inet(spec, spec + 5, 0, ss, len, err, errlen);
	if (strncmp(spec, "inet6:", 6) == 0)
		return address_inet(spec, spec + 6, 1, ss, len, err, errlen);
	snprintf(err, errlen, "the milter address \"%s\" must start with unix:, inet: or "
	    "inet6:", spec);
	return -1;
}

/* --- Replies -------------------------------------------------------------- */

/* Length of an enhanced code "c.d.d" of class c at s (followed by SP or end), or 0. */
static size_t
enhanced_len(const char *s, int class)
{
	size_t	 i = 0, part, digits;

	if (s[0] != '0' + class || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (digits == 0 || digits > 3 || (part == 0 && s[i] != '.'))
			return 0;
		if (part == 0)
			i++;
	}
	return s[i] == ' ' || s[i] == '\0' || s[i] == '\r' ? i : 0;
}

/*
 * Append text of one line: "%%" is "%", a lone '%' goes, controls become
 * spaces and 8-bit bytes '?' (an SMTP reply is ASCII).
 */
static void
reply_text_add(struct milter_reply *r, const char *s, size_t len, size_t *used)
{
	size_t	 i;

	if (*used > 0 && len > 0 && *used < sizeof(r->text) - 1)
		r->text[(*used)++] = ' ';
	for (i = 0; i < len && *used < sizeof(r->text) - 1; i++) {
		unsigned char	 c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 1 < len && s[i + 1] == '%')
				i++;
			else
				continue;
		}
		r->text[(*used)++] = c < ' ' || c == 0x7f ? ' ' : c > 0x7f ? '?' : (char)c;
	}
	r->text[*used] = '\0';
}

/* One line of len bytes; first says whether it sets the code. */
static int
reply_line(const char *s, size_t len, struct milter_reply *r, int first, size_t *used)
{
	int	 code;
	size_t	 n;

	if (len < 3 || (s[0] != '4' && s[0] != '5') || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || (len > 3 && s[3] != ' ' && s[3] != '-'))
		return -1;
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (first)
		r->code = code;
	else if (code != r->code)
		return -1;
	if (len <= 4)
		return 0;
	s += 4;
	len -= 4;
	if (s[0] >= '0' && s[0] <= '9') {
		if ((n = enhanced_len(s, code / 100)) == 0 || n >= sizeof(r->enhanced))
			return -1;
		if (first) {
			memcpy(r->enhanced, s, n);
			r->enhanced[n] = '\0';
		}
		s += n;
		len -= n;
	}
	while (len > 0 && *s == ' ') {
		s++;
		len--;
	}
	reply_text_add(r, s, len, used);
	return 0;
}

int
milter_reply_parse(const char *s, struct milter_reply *r)
{
	const char	*eol;
	size_t		 len, used = 0;
	int		 first = 1;

	memset(r, 0, sizeof(*r));
	if (s == NULL || *s == '\0')
		return -1;
	for (;;) {
		eol = strchr(s, '\n');
		len = eol != NULL ? (size_t)(eol - s) : strlen(s);
		if (len > 0 && s[len - 1] == '\r')
			len--;
		if (reply_line(s, len, r, first, &used) == -1)
			return -1;
		first = 0;
		if (eol == NULL || eol[1] == '\0')
			break;
		s = eol + 1;
	}
	return 0;
}

/* --- Macro lists ------------------------------------------------------------- */

int
milter_macro_name_next(const char **p, char *name, size_t size)
{
	const char	*s = *p, *start;
	size_t		 n;

	for (;;) {
		while (*s == ' ' || *s == ',' || *s == '\t')
			s++;
		if (*s == '\0') {
			*p = s;
			return -1;
		}
		start = s;
		while (*s != '\0' && *s != ' ' && *s != ',' && *s != '\t')
			s++;
		n = (size_t)(s - start);
		if (n < size) {
			memcpy(name, start, n);
			name[n] = '\0';
			*p = s;
			return 0;
		}
	}
}

/* "{name}" and "name" are the same macro. */
int
milter_macro_name_equal(const char *a, const char *b)
{
	size_t	 la = strlen(a), lb = strlen(b);

	if (la >= 2 && a[0] == '{' && a[la - 1] == '}') {
		a++;
		la -= 2;
	}
	if (lb >= 2 && b[0] == '{' && b[lb - 1] == '}') {
		b++;
		lb -= 2;
	}
	return la == lb && strncmp(a, b, la) == 0;
}

/* --- Mailboxes and headers --------------------------------------------------- */

int
milter_mailbox_strip(const char *in, char *out, size_t size)
{
	size_t	 len;

	while (*in == ' ' || *in == '\t')
		in++;
	len = strlen(in);
	while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t'))
		len--;
	if (len >= 2 && in[0] == '<' && in[len - 1] == '>') {
		in++;
		len -= 2;
	}
	if (len >= size || memchr(in, '<', len) != NULL || memchr(in, '>', len) != NULL)
		return -1;
	memcpy(out, in, len);
	out[len] = '\0';
	return 0;
}

static int
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

int
milter_header_name_valid(const char *name)
{
	const unsigned char	*p = (const unsigned char *)name;

	if (p == NULL || *p == '\0')
		return 0;
	for (; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == ':')
			return 0;
	return 1;
}

const char *
milter_header_value_in(const char *value, int leadspc)
{
	const unsigned char	*p, *q;

	if (value == NULL)
		return NULL;
	if (leadspc && *value == ' ')
		value++;
	for (p = (const unsigned char *)value; *p != '\0'; p++) {
		if (*p == '\r' && p[1] != '\n')
			return NULL;
		if (*p != '\n')
			continue;
		if (!is_wsp(p[1]))
			return NULL;
		for (q = p + 1; is_wsp(*q); q++)
			;
		if (*q == '\0' || *q == '\r' || *q == '\n')
			return NULL;
	}
	return value;
}

char *
milter_header_value_out(const char *value, int leadspc, char *out, size_t size)
{
	size_t	 o = 0;

	if (size == 0)
		return out;
	if (leadspc && o < size - 1)
		out[o++] = ' ';
	for (; *value != '\0' && o < size - 1; value++) {
		if (value[0] == '\r' && value[1] == '\n')
			continue;
		out[o++] = *value;
	}
	out[o] = '\0';
	return out;
}

void
milter_text_clean(const char *in, char *out, size_t size)
{
	size_t	 o = 0;

	if (size == 0)
		return;
	for (; in != NULL && *in != '\0' && o < size - 1; in++)
		out[o++] = (unsigned char)*in < ' ' || *in == 0x7f ? ' ' : *in;
	out[o] = '\0';
}
