/*
 * smtp_parse.h - pure parsers for SMTP command lines, paths and ESMTP
 * parameters (RFC 5321 section 4.1, RFC 6531 for SMTPUTF8).
 *
 * Nothing here knows about sessions or sockets.  Every function works on a
 * caller-owned byte range (not NUL-terminated, may contain any byte) and
 * fills caller-owned structs; results point into the input or into the
 * output struct's own storage, as documented per field.
 */
#ifndef SLUICE_SMTP_PARSE_H
#define SLUICE_SMTP_PARSE_H

#include <stddef.h>

/* RFC 5321 4.5.3.1.3: a path is at most 256 octets including < and >. */
#define SMTP_PATH_MAX		256
#define SMTP_DOMAIN_MAX		255
#define SMTP_LABEL_MAX		63
#define SMTP_PARAMS_MAX		16

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_LHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_BDAT,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_XCLIENT,
	SMTP_VERB_XFORWARD,
	SMTP_VERB_HTTP,		/* GET, POST, HEAD, PUT, CONNECT, OPTIONS: not a mail client */
	SMTP_VERB_COUNT
};

enum smtp_parse_status {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_EMPTY,		/* empty line */
	SMTP_PARSE_NUL,			/* NUL byte in the line */
	SMTP_PARSE_BAD_CHAR,		/* control or non-ASCII byte where not allowed */
	SMTP_PARSE_BAD_SYNTAX,		/* generic syntax error */
	SMTP_PARSE_NO_COLON,		/* MAIL/RCPT without FROM:/TO: */
	SMTP_PARSE_NO_BRACKETS,		/* path not in <...> */
	SMTP_PARSE_BAD_LOCAL,		/* local part invalid */
	SMTP_PARSE_BAD_DOMAIN,		/* domain invalid (also trailing dot, empty label) */
	SMTP_PARSE_BAD_LITERAL,		/* [address literal] invalid */
	SMTP_PARSE_BAD_ROUTE,		/* source route invalid */
	SMTP_PARSE_TOO_LONG,		/* path, domain or label over its limit */
	SMTP_PARSE_NULL_NOT_ALLOWED,	/* <> where a mailbox is required */
	SMTP_PARSE_UTF8,		/* non-ASCII without SMTPUTF8, or invalid UTF-8 */
	SMTP_PARSE_BAD_PARAM,		/* ESMTP parameter syntax */
	SMTP_PARSE_TOO_MANY_PARAMS	/* more than SMTP_PARAMS_MAX parameters */
};

/* One command line, split.  Pointers point into the caller's line. */
struct smtp_command {
	enum smtp_verb	 verb;		/* recognised verb or UNKNOWN */
	const char	*verb_text;	/* verb as sent */
	size_t		 verb_len;	/* its length */
	const char	*arg;		/* text after the verb and one space; "" if none */
	size_t		 arg_len;	/* its length, trailing spaces removed */
};

/*
 * Split a command line (without its CRLF or LF) into verb and argument.
 * The verb runs to the first SP and is matched case-insensitively; trailing
 * SP and TAB are ignored.  Returns SMTP_PARSE_OK, SMTP_PARSE_EMPTY (nothing
 * but SP/TAB), SMTP_PARSE_NUL or SMTP_PARSE_BAD_CHAR (a control byte other
 * than TAB, or a non-ASCII byte in the verb).
 */
enum smtp_parse_status smtp_command_parse(const char *line, size_t len,
	    struct smtp_command *cmd);

/* The canonical upper-case name of a verb ("MAIL"); "UNKNOWN" for none. */
const char	*smtp_verb_name(enum smtp_verb verb);

/* A parsed reverse-path or forward-path.  Storage is inside the struct. */
struct smtp_path {
	char	 mailbox[SMTP_PATH_MAX + 1];	/* "local@domain" as sent, NUL-terminated; "" for <> */
	size_t	 local_len;		/* bytes of the local part (quotes included) */
	/* domain points into this struct's mailbox: not valid in a copy of the struct. */
	const char *domain;		/* after the last unquoted '@'; "" when none */
	char	 route[SMTP_PATH_MAX + 1];	/* "@a,@b" source route as sent, "" when none */
	int	 is_null;		/* <> */
	int	 is_postmaster;		/* <postmaster> without domain (RCPT only); mailbox is then "postmaster" */
	int	 quoted_local;		/* local part is a quoted-string */
	int	 domain_is_literal;	/* domain is [address literal] */
	int	 has_utf8;		/* non-ASCII bytes present (needs SMTPUTF8) */
};

/* One ESMTP parameter.  Pointers point into the caller's line. */
struct smtp_param {
	const char	*keyword;	/* as sent */
	size_t		 keyword_len;	/* its length */
	const char	*value;		/* NULL when the parameter has no '=' */
	size_t		 value_len;	/* its length */
};

/* The argument of MAIL FROM: or RCPT TO:, split. */
struct smtp_path_arg {
	struct smtp_path  path;				/* the path */
	struct smtp_param params[SMTP_PARAMS_MAX];	/* its parameters */
	size_t		  nparams;			/* how many */
};

#define SMTP_PATH_ALLOW_NULL		0x01	/* <> allowed (MAIL) */
#define SMTP_PATH_ALLOW_POSTMASTER	0x02	/* <postmaster> allowed (RCPT) */
#define SMTP_PATH_ALLOW_UTF8		0x04	/* SMTPUTF8 given: UTF-8 allowed */

/*
 * Parse the argument of MAIL ("FROM:<path> params") or RCPT ("TO:<path>
 * params").  keyword is "FROM" or "TO" (matched case-insensitively); spaces
 * after the colon are tolerated.  flags are SMTP_PATH_ALLOW_*.
 */
enum smtp_parse_status smtp_path_arg_parse(const char *arg, size_t len,
	    const char *keyword, int flags, struct smtp_path_arg *out);

/*
 * Parse a bare path "<...>" (no keyword, no parameters) as used by tests
 * and by filters that re-check addresses.
 */
enum smtp_parse_status smtp_path_parse(const char *s, size_t len, int flags,
	    struct smtp_path *out);

/* Check a domain name (or [literal]) as in HELO/EHLO and paths. */
enum smtp_parse_status smtp_domain_check(const char *s, size_t len, int allow_utf8);

/* Case-insensitive match of a parameter keyword. */
int		 smtp_param_is(const struct smtp_param *p, const char *keyword);

/* Validate RFC 3461 xtext (ENVID, ORCPT values).  1 valid, 0 not. */
int		 smtp_xtext_valid(const char *s, size_t len);

/* A short human sentence for a status, used in replies. */
const char	*smtp_parse_status_text(enum smtp_parse_status status);

#endif /* SLUICE_SMTP_PARSE_H */
