/*
 * auth.c - the pure parts of SMTP AUTH: base64, the PLAIN message, the
 * LOGIN prompts and the state machine of one SASL exchange (RFC 4954,
 * RFC 4616, RFC 4648).  See auth.h.
 *
 * Everything here is fed hostile bytes: lengths are checked before every
 * copy, decoded data is never assumed to be a string, and the secrets are
 * wiped when the exchange is cleared.
 */
#include "autoconf.h"

#include <string.h>
#include <strings.h>

#include "auth.h"

/* "Username:" and "Password:", as every LOGIN client expects them. */
#define AUTH_LOGIN_USER_PROMPT	"VXNlcm5hbWU6"
#define AUTH_LOGIN_PASS_PROMPT	"UGFzc3dvcmQ6"
/* Big enough for any decoded line within AUTH_LINE_MAX. */
#define AUTH_DECODED_MAX	(AUTH_LINE_MAX / 4 * 3 + 3)

static int		 auth_base64_value(unsigned char c);
static void		 auth_wipe(void *p, size_t len);
static enum auth_status	 auth_decode_line(const char *line, size_t len, unsigned char *out,
			    size_t *outlen);
static enum auth_status	 auth_login_user(struct auth_exchange *x, const unsigned char *p,
			    size_t len);
static enum auth_status	 auth_login_pass(struct auth_exchange *x, const unsigned char *p,
			    size_t len);

static const char auth_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
auth_base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

ssize_t
auth_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize)
{
	size_t		 i, n = 0, pad = 0;
	unsigned long	 acc;
	int		 v, j;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad = (len > 1 && in[len - 2] == '=') ? 2 : 1;
	if (len / 4 * 3 - pad > outsize)
		return -1;
	for (i = 0; i < len; i += 4) {
		acc = 0;
		for (j = 0; j < 4; j++) {
			if (i + 4 == len && j >= 4 - (int)pad) {
				if (in[i + (size_t)j] != '=')
					return -1;
				v = 0;
			} else if ((v = auth_base64_value((unsigned char)in[i + (size_t)j])) < 0)
				return -1;
			acc = acc << 6 | (unsigned long)v;
		}
		/* Bits under the padding must be zero (RFC 4648 3.5): one spelling only. */
		if ((pad == 1 && i + 4 == len && (acc & 0xff) != 0) ||
		    (pad == 2 && i + 4 == len && (acc & 0xffff) != 0))
			return -1;
		out[n++] = (unsigned char)(acc >> 16);
		if (i + 4 < len || pad < 2)
			out[n++] = (unsigned char)(acc >> 8);
		if (i + 4 < len || pad < 1)
			out[n++] = (unsigned char)acc;
	}
	return (ssize_t)n;
}

ssize_t
auth_base64_encode(const unsigned char *in, size_t len, char *out, size_t outsize)
{
	size_t		 i, n = 0;
	unsigned long	 acc;

	if ((len + 2) / 3 * 4 + 1 > outsize)
		return -1;
	for (i = 0; i < len; i += 3) {
		acc = (unsigned long)in[i] << 16;
		if (i + 1 < len)
			acc |= (unsigned long)in[i + 1] << 8;
		if (i + 2 < len)
			acc |= in[i + 2];
		out[n++] = auth_b64[acc >> 18 & 63];
		out[n++] = auth_b64[acc >> 12 & 63];
		out[n++] = i + 1 < len ? auth_b64[acc >> 6 & 63] : '=';
		out[n++] = i + 2 < len ? auth_b64[acc & 63] : '=';
	}
	out[n] = '\0';
	return (ssize_t)n;
}

enum auth_mech
auth_mech_parse(const char *name, size_t len)
{
	if (len == 5 && strncasecmp(name, "PLAIN", 5) == 0)
		return AUTH_MECH_PLAIN;
	if (len == 5 && strncasecmp(name, "LOGIN", 5) == 0)
		return AUTH_MECH_LOGIN;
	return AUTH_MECH_NONE;
}

const char *
auth_mech_name(enum auth_mech mech)
{
	switch (mech) {
	case AUTH_MECH_PLAIN:
		return "PLAIN";
	case AUTH_MECH_LOGIN:
		return "LOGIN";
	default:
		return "NONE";
	}
}

int
auth_user_valid(const char *user, size_t len)
{
	size_t	 i;

	if (len == 0 || len > AUTH_USER_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)user[i] <= ' ' || (unsigned char)user[i] == 0x7f)
			return 0;
	return 1;
}

int
auth_user_loggable(const char *user)
{
	size_t	 i;

	for (i = 0; user[i] != '\0'; i++) {
		char	 c = user[i];

		if (i >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("._@+-", c) != NULL))
			return 0;
	}
	return i > 0;
}

int
auth_equal_constant_time(const char *a, const char *b)
{
	size_t		 la = strlen(a), lb = strlen(b), i, n = la > lb ? la : lb;
	unsigned char	 diff = la != lb;

	for (i = 0; i < n; i++)
		diff |= (unsigned char)((i < la ? a[i] : 0) ^ (i < lb ? b[i] : 0));
	return diff == 0;
}

static void
auth_wipe(void *p, size_t len)
{
	volatile unsigned char	*v = p;

	while (len-- > 0)
		*v++ = 0;
}

enum auth_status
auth_plain_split(struct auth_exchange *x, const unsigned char *msg, size_t len)
{
	const unsigned char	*nul1, *nul2;
	size_t			 zlen, ulen, plen;

	x->step = AUTH_STEP_DONE;
	if ((nul1 = memchr(msg, '\0', len)) == NULL)
		return AUTH_ERR_MALFORMED;
	zlen = (size_t)(nul1 - msg);
	if ((nul2 = memchr(nul1 + 1, '\0', len - zlen - 1)) == NULL)
		return AUTH_ERR_MALFORMED;
	ulen = (size_t)(nul2 - nul1 - 1);
	plen = len - zlen - ulen - 2;
	/* A third NUL: the password would be cut short, so refuse it. */
	if (memchr(nul2 + 1, '\0', plen) != NULL)
		return AUTH_ERR_MALFORMED;
	if (!auth_user_valid((const char *)nul1 + 1, ulen) || plen == 0 ||
	    plen > AUTH_PASS_MAX)
		return AUTH_ERR_MALFORMED;
	/* Acting for someone else (a proxy authorization) is not offered. */
	if (zlen != 0 && (zlen != ulen || memcmp(msg, nul1 + 1, ulen) != 0))
		return AUTH_ERR_MALFORMED;
	memcpy(x->user, nul1 + 1, ulen);
	x->user[ulen] = '\0';
	memcpy(x->pass, nul2 + 1, plen);
	x->pass[plen] = '\0';
	x->pass_len = plen;
	return AUTH_READY;
}

/* "*" cancels; anything else must be base64 ("=" alone is empty, RFC 4954 4). */
static enum auth_status
auth_decode_line(const char *line, size_t len, unsigned char *out, size_t *outlen)
{
	ssize_t	 n;

	if (len == 1 && line[0] == '*')
		return AUTH_ERR_CANCEL;
	if (len == 1 && line[0] == '=') {
		*outlen = 0;
		return AUTH_CONTINUE;
	}
	if ((n = auth_base64_decode(line, len, out, AUTH_DECODED_MAX)) < 0)
		return AUTH_ERR_BASE64;
	*outlen = (size_t)n;
	return AUTH_CONTINUE;
}

static enum auth_status
auth_login_user(struct auth_exchange *x, const unsigned char *p, size_t len)
{
	if (memchr(p, '\0', len) != NULL || !auth_user_valid((const char *)p, len)) {
		x->step = AUTH_STEP_DONE;
		return AUTH_ERR_MALFORMED;
	}
	memcpy(x->user, p, len);
	x->user[len] = '\0';
	x->step = AUTH_STEP_LOGIN_PASS;
	x->challenge = AUTH_LOGIN_PASS_PROMPT;
	return AUTH_CONTINUE;
}

static enum auth_status
auth_login_pass(struct auth_exchange *x, const unsigned char *p, size_t len)
{
	x->step = AUTH_STEP_DONE;
	if (len == 0 || len > AUTH_PASS_MAX || memchr(p, '\0', len) != NULL)
		return AUTH_ERR_MALFORMED;
	memcpy(x->pass, p, len);
	x->pass[len] = '\0';
	x->pass_len = len;
	return AUTH_READY;
}

enum auth_status
auth_exchange_start(struct auth_exchange *x, const char *arg, size_t len)
{
	const char	*sp;
	size_t		 mlen;

	auth_exchange_clear(x);
	if (len == 0)
		return AUTH_ERR_SYNTAX;
	sp = memchr(arg, ' ', len);
	mlen = sp != NULL ? (size_t)(sp - arg) : len;
	if ((x->mech = auth_mech_parse(arg, mlen)) == AUTH_MECH_NONE) {
		x->step = AUTH_STEP_DONE;
		return AUTH_ERR_MECH;
	}
	x->step = x->mech == AUTH_MECH_PLAIN ? AUTH_STEP_PLAIN : AUTH_STEP_LOGIN_USER;
	x->challenge = x->mech == AUTH_MECH_PLAIN ? "" : AUTH_LOGIN_USER_PROMPT;
	if (sp == NULL)
		return AUTH_CONTINUE;
	/* An initial response: the same as the first continuation line,
	 * except that empty is spelled "=" there (RFC 4954 section 4). */
	if (len - mlen - 1 == 0) {
		x->step = AUTH_STEP_DONE;
		return AUTH_ERR_BASE64;
	}
	return auth_exchange_line(x, sp + 1, len - mlen - 1);
}

enum auth_status
auth_exchange_line(struct auth_exchange *x, const char *line, size_t len)
{
	unsigned char	 buf[AUTH_DECODED_MAX];
	size_t		 n = 0;
	enum auth_status st;

	if (x->step != AUTH_STEP_PLAIN && x->step != AUTH_STEP_LOGIN_USER &&
	    x->step != AUTH_STEP_LOGIN_PASS)
		return AUTH_ERR_SYNTAX;
	if (len > AUTH_LINE_MAX) {
		x->step = AUTH_STEP_DONE;
		return AUTH_ERR_BASE64;
	}
	if ((st = auth_decode_line(line, len, buf, &n)) != AUTH_CONTINUE) {
		x->step = AUTH_STEP_DONE;
		return st;
	}
	if (x->step == AUTH_STEP_PLAIN)
		st = auth_plain_split(x, buf, n);
	else if (x->step == AUTH_STEP_LOGIN_USER)
		st = auth_login_user(x, buf, n);
	else
		st = auth_login_pass(x, buf, n);
	auth_wipe(buf, sizeof(buf));
	return st;
}

void
auth_exchange_clear(struct auth_exchange *x)
{
	auth_wipe(x, sizeof(*x));
	x->mech = AUTH_MECH_NONE;
	x->step = AUTH_STEP_START;
	x->challenge = "";
}
