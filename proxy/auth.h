/*
 * auth.h - the pure parts of SMTP AUTH (RFC 4954): base64 (RFC 4648),
 * the PLAIN message (RFC 4616), the LOGIN exchange, and the state machine
 * of one SASL exchange.  No I/O, no event loop, no session: smtp_auth.c
 * drives it with the client's lines and sends the replies it names.
 *
 * A struct auth_exchange is owned by its caller (embedded or allocated);
 * auth_exchange_clear() wipes the secrets it holds.  Returned strings
 * point into the exchange and live until the next call on it.
 */
#ifndef SLUICE_AUTH_H
#define SLUICE_AUTH_H

#include <stddef.h>
#include <sys/types.h>

/* RFC 4954 section 4: AUTH command and response lines may be this long (with CRLF). */
#define AUTH_LINE_MAX		12288
/* Bounds of the decoded parts; longer is refused as malformed. */
#define AUTH_USER_MAX		255
#define AUTH_PASS_MAX		1023

enum auth_mech {
	AUTH_MECH_NONE = 0,
	AUTH_MECH_PLAIN,		/* RFC 4616 */
	AUTH_MECH_LOGIN			/* draft-murchison-sasl-login */
};

/* What the caller does next. */
enum auth_status {
	AUTH_CONTINUE = 0,	/* send "334 <challenge>", feed the next line */
	AUTH_READY,		/* user and pass are set: verify them */
	AUTH_ERR_CANCEL,	/* client sent "*": 501 5.0.0 */
	AUTH_ERR_BASE64,	/* not valid base64: 501 5.5.2 */
	AUTH_ERR_SYNTAX,	/* AUTH without a mechanism: 501 5.5.4 */
	AUTH_ERR_MECH,		/* unknown mechanism: 504 5.5.4 */
	AUTH_ERR_MALFORMED	/* decoded data unusable (authzid, NULs, length): 535 5.7.8 */
};

enum auth_step {
	AUTH_STEP_START = 0,	/* nothing yet */
	AUTH_STEP_PLAIN,	/* PLAIN: waiting for the response */
	AUTH_STEP_LOGIN_USER,	/* LOGIN: waiting for the user name */
	AUTH_STEP_LOGIN_PASS,	/* LOGIN: waiting for the password */
	AUTH_STEP_DONE		/* credentials complete, or failed */
};

struct auth_exchange {
	enum auth_mech	 mech;				/* chosen mechanism */
	enum auth_step	 step;				/* where we are */
	const char	*challenge;			/* base64 text after "334 " */
	char		 user[AUTH_USER_MAX + 1];	/* authcid, NUL-terminated */
	char		 pass[AUTH_PASS_MAX + 1];	/* password, NUL-terminated */
	size_t		 pass_len;			/* its length */
};

/*
 * Decode len bytes of base64 into out (outsize bytes).  Padding is
 * required where the length needs it; whitespace and anything outside the
 * alphabet is refused.  Returns the decoded length, or -1.
 */
ssize_t		 auth_base64_decode(const char *in, size_t len, unsigned char *out,
		    size_t outsize);
/* Encode into out, NUL-terminated; returns the length or -1 if outsize is short. */
ssize_t		 auth_base64_encode(const unsigned char *in, size_t len, char *out,
		    size_t outsize);

/* "PLAIN" / "login" (case-insensitive) to the enum; AUTH_MECH_NONE if unknown. */
enum auth_mech	 auth_mech_parse(const char *name, size_t len);
const char	*auth_mech_name(enum auth_mech mech);

/*
 * Split a decoded PLAIN message "authzid NUL authcid NUL passwd" into x.
 * The authzid must be empty or equal to the authcid; authcid and passwd
 * must be non-empty and within bounds; the user must pass
 * auth_user_valid().  Returns AUTH_READY or AUTH_ERR_MALFORMED.
 */
enum auth_status auth_plain_split(struct auth_exchange *x, const unsigned char *msg,
		    size_t len);

/*
 * Start an exchange with the argument of the AUTH command ("PLAIN",
 * "PLAIN dGVzdA==", "LOGIN"); "=" as initial response is an empty one.
 */
enum auth_status auth_exchange_start(struct auth_exchange *x, const char *arg, size_t len);
/* Feed one continuation line (without CRLF). */
enum auth_status auth_exchange_line(struct auth_exchange *x, const char *line, size_t len);
/* Wipe the secrets and reset to AUTH_STEP_START. */
void		 auth_exchange_clear(struct auth_exchange *x);

/* A user name we accept at all: 1..255 bytes, no control bytes, no space. */
int		 auth_user_valid(const char *user, size_t len);
/* A user name safe to log: 1..64 of [A-Za-z0-9._@+-]. */
int		 auth_user_loggable(const char *user);

/* Compare two NUL-terminated strings in time independent of where they differ. */
int		 auth_equal_constant_time(const char *a, const char *b);

#endif /* SLUICE_AUTH_H */
