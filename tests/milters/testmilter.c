/*
 * testmilter.c - a milter on libmilter (sendmail 8.17) for the milter
 * client's integration tests (tests/integration/test_milter.py): the
 * reference peer, since libmilter is what real milters are built on.
 *
 *	testmilter -s inet:PORT@127.0.0.1 -l events.log [-p STEPS] [-a ACTIONS]
 *	    [-C reject|tempfail|accept]
 *
 * It logs every callback with the macros it can see to the log file, one
 * line each ("EVENT key=value ...", values escaped as \n \r \t \\ \xHH),
 * and acts as the message tells it:
 *
 *	HELO reject.helo		reject the HELO
 *	MAIL FROM:<reject-mail@...>	reject; <tempfail-mail@...> tempfail
 *	RCPT TO:<reject@...>		reject; <tempfail@...> tempfail;
 *	RCPT TO:<replycode@...>		"550 5.1.1 No such user here"
 *	X-Milter-Test: ACTION		header fields, acted on at end of message,
 *					in order:
 *	    reject | tempfail | discard | accept | continue
 *	    reply CODE X.Y.Z TEXT	smfi_setreply (reject or tempfail by class)
 *	    mlreply			a two-line 550 5.7.1 reply
 *	    add NAME VALUE		smfi_addheader
 *	    insert INDEX NAME VALUE	smfi_insheader
 *	    change NAME INDEX VALUE	smfi_chgheader
 *	    delete NAME INDEX		smfi_chgheader with NULL
 *	    body TEXT			smfi_replacebody ("\n" in TEXT is a line break)
 *	    bigbody BYTES		replace the body with BYTES bytes of lines
 *	    addrcpt ADDR | addrcpt_par ADDR ARGS | delrcpt ADDR
 *	    chgfrom ADDR [ARGS]
 *	    quarantine REASON
 *	    headers N			add N header fields X-Flood-i
 *	    progress N			smfi_progress and 300ms sleep, N times
 *	    sleep MS			sleep before answering
 *
 * -p asks for protocol steps: a comma list of NOCONNECT NOHELO NOMAIL
 * NORCPT NOBODY NOHDRS NOEOH NODATA NR_HDR NR_CONN NR_HELO NR_MAIL NR_RCPT
 * NR_DATA NR_EOH NR_BODY LEADSPC SKIP (SKIP: answer SMFIS_SKIP to the first
 * body chunk).  -a limits the actions asked for (hex, default all).
 */
#include "autoconf.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#define MAX_INSTR	64

struct tm_priv {
	char	*instr[MAX_INSTR];	/* X-Milter-Test values of this message */
	int	 ninstr;
	int	 bodies;		/* body callbacks so far */
};

static FILE		*tm_log;
static pthread_mutex_t	 tm_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long	 tm_steps;		/* -p */
static unsigned long	 tm_actions = SMFI_CURR_ACTS;	/* -a */
static int		 tm_skip_body;		/* -p SKIP */
static const char	*tm_connect;		/* -C */

static const char *const tm_macros[] = {
	"j", "{daemon_name}", "{daemon_addr}", "{daemon_port}", "v", "_", "{client_addr}",
	"{client_name}", "{client_port}", "{client_ptr}", "i", "{auth_authen}", "{auth_type}",
	"{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}",
	"{mail_addr}", "{rcpt_addr}", NULL
};

static void	 tm_event(SMFICTX *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* Append s escaped to buf (size n, used *o). */
static void
tm_escape(char *buf, size_t n, size_t *o, const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len && *o + 5 < n; i++) {
		unsigned char	 c = (unsigned char)s[i];

		if (c == '\n')
			*o += (size_t)snprintf(buf + *o, n - *o, "\\n");
		else if (c == '\r')
			*o += (size_t)snprintf(buf + *o, n - *o, "\\r");
		else if (c == '\t')
			*o += (size_t)snprintf(buf + *o, n - *o, "\\t");
		else if (c == '\\')
			*o += (size_t)snprintf(buf + *o, n - *o, "\\\\");
		else if (c <= ' ' || c >= 0x7f)
			*o += (size_t)snprintf(buf + *o, n - *o, "\\x%02x", c);
		else
			buf[(*o)++] = (char)c;
	}
	buf[*o] = '\0';
}

/* One log line: event, the macros visible now, then key=value pairs (values escaped). */
static void
tm_event(SMFICTX *ctx, const char *event, const char *fmt, ...)
{
	static char	 line[200000];
	char		 raw[100000], *v;
	size_t		 o = 0, i;
	va_list		 ap;

	pthread_mutex_lock(&tm_lock);
	o = (size_t)snprintf(line, sizeof(line), "%s", event);
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	if (raw[0] != '\0') {
		line[o++] = ' ';
		memcpy(line + o, raw, strlen(raw) + 1);
		o += strlen(raw);
	}
	for (i = 0; ctx != NULL && tm_macros[i] != NULL; i++)
		if ((v = smfi_getsymval(ctx, (char *)tm_macros[i])) != NULL) {
			o += (size_t)snprintf(line + o, sizeof(line) - o, " macro:%s=", tm_macros[i]);
			tm_escape(line, sizeof(line), &o, v, strlen(v));
		}
	fprintf(tm_log, "%s\n", line);
	fflush(tm_log);
	pthread_mutex_unlock(&tm_lock);
}

/* A value escaped for tm_event's key=value (a static buffer: one call per event). */
static const char *
tm_esc(const char *s, size_t len, char *buf, size_t n)
{
	size_t	 o = 0;

	tm_escape(buf, n, &o, s, len);
	return buf;
}

static struct tm_priv *
tm_priv(SMFICTX *ctx)
{
	struct tm_priv	*p = smfi_getpriv(ctx);

	if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL)
		smfi_setpriv(ctx, p);
	return p;
}

static void
tm_priv_clear(struct tm_priv *p)
{
	int	 i;

	for (i = 0; p != NULL && i < p->ninstr; i++)
		free(p->instr[i]);
	if (p != NULL) {
		p->ninstr = 0;
		p->bodies = 0;
	}
}

static sfsistat
tm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
    unsigned long f3, unsigned long *pf0, unsigned long *pf1, unsigned long *pf2,
    unsigned long *pf3)
{
	tm_event(NULL, "negotiate", "actions=0x%lx steps=0x%lx", f0, f1);
	*pf0 = f0 & tm_actions;
	*pf1 = f1 & tm_steps;
	*pf2 = *pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
tm_on_connect(SMFICTX *ctx, char *host, struct sockaddr *sa)
{
	char	 addr[64] = "none";
	int	 port = 0;

	if (sa != NULL && sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in *)sa)->sin_port);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof(addr));
		port = ntohs(((struct sockaddr_in6 *)sa)->sin6_port);
	}
	tm_priv(ctx);
	tm_event(ctx, "connect", "host=%s addr=%s port=%d", host, addr, port);
	if (tm_connect != NULL && strcmp(tm_connect, "reject") == 0)
		return SMFIS_REJECT;
	if (tm_connect != NULL && strcmp(tm_connect, "tempfail") == 0)
		return SMFIS_TEMPFAIL;
	if (tm_connect != NULL && strcmp(tm_connect, "accept") == 0)
		return SMFIS_ACCEPT;
	return SMFIS_CONTINUE;
}

static sfsistat
tm_on_helo(SMFICTX *ctx, char *helo)
{
	tm_event(ctx, "helo", "name=%s", helo);
	return strcmp(helo, "reject.helo") == 0 ? SMFIS_REJECT : SMFIS_CONTINUE;
}

/* argv as "a b c" (escaped). */
static void
tm_argv(const char *event, SMFICTX *ctx, char **argv)
{
	char	 all[4096], esc[8192];
	size_t	 o = 0;
	int	 i;

	all[0] = '\0';
	for (i = 0; argv[i] != NULL && o < sizeof(all) - 2; i++)
		o += (size_t)snprintf(all + o, sizeof(all) - o, "%s%s", i ? " " : "", argv[i]);
	tm_event(ctx, event, "argv=%s", tm_esc(all, strlen(all), esc, sizeof(esc)));
}

static sfsistat
tm_on_envfrom(SMFICTX *ctx, char **argv)
{
	tm_priv_clear(tm_priv(ctx));
	tm_argv("mail", ctx, argv);
	if (strncasecmp(argv[0], "<reject-mail@", 13) == 0)
		return SMFIS_REJECT;
	if (strncasecmp(argv[0], "<tempfail-mail@", 15) == 0)
		return SMFIS_TEMPFAIL;
	return SMFIS_CONTINUE;
}

static sfsistat
tm_on_envrcpt(SMFICTX *ctx, char **argv)
{
	tm_argv("rcpt", ctx, argv);
	if (strncasecmp(argv[0], "<reject@", 8) == 0)
		return SMFIS_REJECT;
	if (strncasecmp(argv[0], "<tempfail@", 10) == 0)
		return SMFIS_TEMPFAIL;
	if (strncasecmp(argv[0], "<replycode@", 11) == 0) {
		smfi_setreply(ctx, "550", "5.1.1", "No such user here");
		return SMFIS_REJECT;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
tm_on_data(SMFICTX *ctx)
{
	tm_event(ctx, "data", "%s", "");
	return SMFIS_CONTINUE;
}

static sfsistat
tm_on_header(SMFICTX *ctx, char *name, char *value)
{
	struct tm_priv	*p = tm_priv(ctx);
	char		 esc[100000];

	tm_event(ctx, "header", "name=%s value=%s", name, tm_esc(value, strlen(value), esc,
	    sizeof(esc)));
	if (p != NULL && strcasecmp(name, "X-Milter-Test") == 0 && p->ninstr < MAX_INSTR)
		p->instr[p->ninstr++] = strdup(value + (value[0] == ' '));
	return (tm_steps & SMFIP_NR_HDR) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
tm_on_eoh(SMFICTX *ctx)
{
	tm_event(ctx, "eoh", "%s", "");
	return SMFIS_CONTINUE;
}

static sfsistat
tm_on_body(SMFICTX *ctx, unsigned char *data, size_t len)
{
	struct tm_priv	*p = tm_priv(ctx);
	char		 esc[200];
	size_t		 show = len < 40 ? len : 40;

	tm_event(ctx, "body", "len=%zu start=%s", len, tm_esc((const char *)data, show, esc,
	    sizeof(esc)));
	if (p != NULL && p->bodies++ == 0 && tm_skip_body)
		return SMFIS_SKIP;
	return SMFIS_CONTINUE;
}

/* "body" TEXT: "\n" (two characters) is a line break. */
static void
tm_replace_body(SMFICTX *ctx, const char *text)
{
	size_t	 n = strlen(text), o = 0, i;
	char	*b = malloc(2 * n + 3);

	if (b == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (text[i] == '\\' && text[i + 1] == 'n') {
			b[o++] = '\r';
			b[o++] = '\n';
			i++;
		} else
			b[o++] = text[i];
	}
	smfi_replacebody(ctx, (unsigned char *)b, (int)o);
	free(b);
}

static void
tm_big_body(SMFICTX *ctx, long bytes)
{
	static const char line[] = "0123456789012345678901234567890123456789012345678\r\n";
	char	 chunk[51 * 1000];
	long	 left = bytes;
	int	 i;

	for (i = 0; i < 1000; i++)
		memcpy(chunk + 51 * i, line, 51);
	while (left > 0) {
		int	 n = left > (long)sizeof(chunk) ? (int)sizeof(chunk) : (int)left;

		if (smfi_replacebody(ctx, (unsigned char *)chunk, n) != MI_SUCCESS)
			break;
		left -= n;
	}
}

/* The next word of *p (split at spaces), NULL at the end. */
static char *
tm_word(char **p)
{
	char	*s = *p, *w;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return NULL;
	w = s;
	while (*s != '\0' && *s != ' ')
		s++;
	if (*s != '\0')
		*s++ = '\0';
	while (*s == ' ')
		s++;
	*p = s;
	return w;
}

/* "\n" and "\t" written as two characters in a header become the real ones. */
static char *
tm_unescape(char *s)
{
	char	*r = s, *w = s;

	for (; *r != '\0'; r++) {
		if (r[0] == '\\' && (r[1] == 'n' || r[1] == 't')) {
			*w++ = r[1] == 'n' ? '\n' : '\t';
			r++;
		} else
			*w++ = *r;
	}
	*w = '\0';
	return s;
}

/* Header and envelope edits; returns the libmilter result. */
static int
tm_edit(SMFICTX *ctx, const char *verb, char *rest)
{
	char	*a = tm_word(&rest), *b;
	int	 i, n;

	if (strcmp(verb, "add") == 0)
		return smfi_addheader(ctx, a, tm_unescape(rest));
	if (strcmp(verb, "insert") == 0 && (b = tm_word(&rest)) != NULL)
		return smfi_insheader(ctx, atoi(a), b, tm_unescape(rest));
	if (strcmp(verb, "change") == 0 && (b = tm_word(&rest)) != NULL)
		return smfi_chgheader(ctx, a, atoi(b), tm_unescape(rest));
	if (strcmp(verb, "delete") == 0 && (b = tm_word(&rest)) != NULL)
		return smfi_chgheader(ctx, a, atoi(b), NULL);
	if (strcmp(verb, "addrcpt") == 0)
		return smfi_addrcpt(ctx, a);
	if (strcmp(verb, "addrcpt_par") == 0)
		return smfi_addrcpt_par(ctx, a, rest);
	if (strcmp(verb, "delrcpt") == 0)
		return smfi_delrcpt(ctx, a);
	if (strcmp(verb, "chgfrom") == 0)
		return smfi_chgfrom(ctx, a, *rest != '\0' ? rest : NULL);
	if (strcmp(verb, "headers") == 0) {
		char	 name[32], value[32];

		for (i = 0, n = atoi(a); i < n; i++) {
			snprintf(name, sizeof(name), "X-Flood-%d", i);
			snprintf(value, sizeof(value), "%d", i);
			if (smfi_addheader(ctx, name, value) != MI_SUCCESS)
				return MI_FAILURE;
		}
		return MI_SUCCESS;
	}
	return MI_FAILURE;
}

/* One X-Milter-Test instruction: -1 to go on, else the answer. */
static int
tm_instr(SMFICTX *ctx, char *s)
{
	char	*rest = s, *verb = tm_word(&rest), *code, *xcode;
	int	 rc = MI_SUCCESS, i;

	if (verb == NULL)
		return -1;
	if (strcmp(verb, "reject") == 0)
		return SMFIS_REJECT;
	if (strcmp(verb, "tempfail") == 0)
		return SMFIS_TEMPFAIL;
	if (strcmp(verb, "discard") == 0)
		return SMFIS_DISCARD;
	if (strcmp(verb, "accept") == 0)
		return SMFIS_ACCEPT;
	if (strcmp(verb, "continue") == 0)
		return SMFIS_CONTINUE;
	if (strcmp(verb, "reply") == 0 && (code = tm_word(&rest)) != NULL &&
	    (xcode = tm_word(&rest)) != NULL) {
		smfi_setreply(ctx, code, xcode, rest);
		return code[0] == '5' ? SMFIS_REJECT : SMFIS_TEMPFAIL;
	}
	if (strcmp(verb, "mlreply") == 0) {
		smfi_setmlreply(ctx, "550", "5.7.1", "first line", "second line", NULL);
		return SMFIS_REJECT;
	}
	if (strcmp(verb, "body") == 0)
		tm_replace_body(ctx, rest);
	else if (strcmp(verb, "bigbody") == 0)
		tm_big_body(ctx, atol(rest));
	else if (strcmp(verb, "quarantine") == 0)
		rc = smfi_quarantine(ctx, rest);
	else if (strcmp(verb, "progress") == 0)
		for (i = 0; i < atoi(rest); i++) {
			smfi_progress(ctx);
			usleep(300000);
		}
	else if (strcmp(verb, "sleep") == 0)
		usleep((useconds_t)atol(rest) * 1000);
	else
		rc = tm_edit(ctx, verb, rest);
	tm_event(NULL, "action", "verb=%s rc=%d", verb, rc);
	return -1;
}

static sfsistat
tm_on_eom(SMFICTX *ctx)
{
	struct tm_priv	*p = tm_priv(ctx);
	int		 i, r;
	sfsistat	 status = SMFIS_CONTINUE;

	tm_event(ctx, "eom", "%s", "");
	for (i = 0; p != NULL && i < p->ninstr; i++)
		if ((r = tm_instr(ctx, p->instr[i])) >= 0) {
			status = r;
			break;
		}
	tm_priv_clear(p);
	return status;
}

static sfsistat
tm_on_abort(SMFICTX *ctx)
{
	tm_event(ctx, "abort", "%s", "");
	tm_priv_clear(smfi_getpriv(ctx));
	return SMFIS_CONTINUE;
}

static sfsistat
tm_on_close(SMFICTX *ctx)
{
	struct tm_priv	*p = smfi_getpriv(ctx);

	tm_event(NULL, "close", "%s", "");
	tm_priv_clear(p);
	free(p);
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static unsigned long
tm_parse_steps(const char *s)
{
	static const struct {
		const char	*name;
		unsigned long	 bit;
	} steps[] = {
		{ "NOCONNECT", SMFIP_NOCONNECT }, { "NOHELO", SMFIP_NOHELO },
		{ "NOMAIL", SMFIP_NOMAIL }, { "NORCPT", SMFIP_NORCPT },
		{ "NOBODY", SMFIP_NOBODY }, { "NOHDRS", SMFIP_NOHDRS },
		{ "NOEOH", SMFIP_NOEOH }, { "NODATA", SMFIP_NODATA },
		{ "NR_HDR", SMFIP_NR_HDR }, { "NR_CONN", SMFIP_NR_CONN },
		{ "NR_HELO", SMFIP_NR_HELO }, { "NR_MAIL", SMFIP_NR_MAIL },
		{ "NR_RCPT", SMFIP_NR_RCPT }, { "NR_DATA", SMFIP_NR_DATA },
		{ "NR_EOH", SMFIP_NR_EOH }, { "NR_BODY", SMFIP_NR_BODY },
		{ "LEADSPC", SMFIP_HDR_LEADSPC }, { "SKIP", SMFIP_SKIP },
	};
	char		 buf[512], *p = buf, *w;
	unsigned long	 bits = 0;
	size_t		 i;

	snprintf(buf, sizeof(buf), "%s", s);
	while ((w = strsep(&p, ",")) != NULL)
		for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
			if (strcmp(w, steps[i].name) == 0)
				bits |= steps[i].bit;
	return bits;
}

int
main(int argc, char **argv)
{
	struct smfiDesc	 desc = {
		"testmilter", SMFI_VERSION, SMFI_CURR_ACTS, tm_on_connect, tm_on_helo,
		tm_on_envfrom, tm_on_envrcpt, tm_on_header, tm_on_eoh, tm_on_body, tm_on_eom,
		tm_on_abort, tm_on_close, NULL, tm_on_data, tm_negotiate
	};
	const char	*conn = NULL, *logfile = "/dev/stderr";
	int		 ch;

	while ((ch = getopt(argc, argv, "s:l:p:a:C:")) != -1) {
		switch (ch) {
		case 's':
			conn = optarg;
			break;
		case 'l':
			logfile = optarg;
			break;
		case 'p':
			tm_steps = tm_parse_steps(optarg);
			tm_skip_body = (tm_steps & SMFIP_SKIP) != 0;
			break;
		case 'a':
			tm_actions = strtoul(optarg, NULL, 16);
			break;
		case 'C':
			tm_connect = optarg;
			break;
		default:
			fprintf(stderr, "usage: testmilter -s CONN [-l LOG] [-p STEPS] [-a HEX] "
			    "[-C reject|tempfail|accept]\n");
			return 2;
		}
	}
	if (conn == NULL || (tm_log = fopen(logfile, "a")) == NULL) {
		fprintf(stderr, "testmilter: need -s CONN and a writable -l LOG\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (smfi_setconn((char *)conn) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS ||
	    smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "testmilter: cannot listen on %s\n", conn);
		return 1;
	}
	tm_event(NULL, "ready", "conn=%s", conn);
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
