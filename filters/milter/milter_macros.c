/*
 * milter_macros.c - the Sendmail macros sent before each command, and the
 * MAIL/RCPT argument vectors, with the values Postfix gives them:
 *
 *	j		our host name (the listener's)
 *	{daemon_name}	the listener's name
 *	{daemon_addr}	{daemon_port}	where the client connected
 *	v		"sluice VERSION"
 *	_		"client-name [client-address]"
 *	{client_addr}	{client_port}
 *	{client_name}	{client_ptr}	verified host name, or "unknown"
 *	i		the transaction id, as in our Received: field
 *	{auth_authen}	the AUTH user
 *	{auth_type}	its SASL mechanism ("PLAIN", "LOGIN")
 *	{mail_addr}	the sender ("" for <>)
 *	{rcpt_addr}	the recipient
 *	{tls_version} {cipher} {cipher_bits}	TLS on the client connection
 *	{cert_subject} {cert_issuer}	the client certificate, if one was sent
 *
 * A macro with no value here (the TLS ones without TLS, the AUTH ones
 * before AUTH,
 * {mail_host}, ... and any unknown name) is not sent, as Postfix does
 * with macros it has no value for.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_filter.h"

#include "milter_codec.h"
#include "milter_core.h"
#include "milter_int.h"
#include "milter_parse.h"

/* Macros per command; a longer list is cut (and at most 64 bytes a name). */
#define MACROS_MAX	64
#define MACRO_NAME_MAX	64

/* Room for the names and the values made up here, for one D frame. */
struct macro_arena {
	char	 buf[8192];
	size_t	 used;
};

static const char *arena_add(struct macro_arena *, const char *);
static const char *arena_printf(struct macro_arena *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
static const char *macro_value(struct milter_session *, const char *, const char *,
		    struct macro_arena *);

static const char *
arena_add(struct macro_arena *a, const char *s)
{
	size_t	 n = strlen(s) + 1;
	char	*p;

	if (n > sizeof(a->buf) - a->used)
		return NULL;
	p = a->buf + a->used;
	memcpy(p, s, n);
	a->used += n;
	return p;
}

static const char *
arena_printf(struct macro_arena *a, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;
	char	*p = a->buf + a->used;

	va_start(ap, fmt);
	n = vsnprintf(p, sizeof(a->buf) - a->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(a->buf) - a->used)
		return NULL;
	a->used += (size_t)n + 1;
	return p;
}

/* The value of one macro now, or NULL when it has none. */
static const char *
macro_value(struct milter_session *ms, const char *name, const char *rcpt,
    struct macro_arena *a)
{
	struct sluice_ctx	*ctx = ms->ctx;
	const char		*host = sluice_client_hostname(ctx);
	char			 qid[48];
	int			 port;

#define IS(m)	milter_macro_name_equal(name, (m))
	if (IS("j"))
		return milter_core_hostname(ctx);
	if (IS("{daemon_name}"))
		return sluice_listener_name(ctx);
	if (IS("{daemon_addr}"))
		return milter_core_local_address(ctx, &port);
	if (IS("{daemon_port}")) {
		(void)milter_core_local_address(ctx, &port);
		return arena_printf(a, "%d", port);
	}
	if (IS("v"))
		return "sluice " PACKAGE_VERSION;
	if (IS("_"))
		return arena_printf(a, "%s [%s]", host != NULL ? host : "unknown",
		    sluice_client_address(ctx));
	if (IS("{client_addr}"))
		return sluice_client_address(ctx);
	if (IS("{client_port}"))
		return arena_printf(a, "%d", sluice_client_port(ctx));
	if (IS("{client_name}") || IS("{client_ptr}"))
		return host != NULL ? host : "unknown";
	if (IS("i"))
		return milter_core_queue_id(ctx, qid, sizeof(qid)) == 0 ? arena_add(a, qid) : NULL;
	if (IS("{auth_authen}"))
		return sluice_auth_user(ctx);
	if (IS("{auth_type}"))
		return sluice_auth_mech(ctx);
	if (IS("{mail_addr}"))
		return sluice_mail_from(ctx);
	if (IS("{rcpt_addr}"))
		return rcpt;
	if (IS("{tls_version}"))
		return sluice_tls_version(ctx);
	if (IS("{cipher}"))
		return sluice_tls_cipher(ctx);
	if (IS("{cipher_bits}"))
		return sluice_tls_cipher_bits(ctx) > 0 ?
		    arena_printf(a, "%d", sluice_tls_cipher_bits(ctx)) : NULL;
	if (IS("{cert_subject}"))
		return sluice_tls_peer_subject(ctx);
	if (IS("{cert_issuer}"))
		return sluice_tls_peer_issuer(ctx);
#undef IS
	return NULL;
}

int
milter_put_stage_macros(struct milter_session *ms, unsigned int stage, unsigned char cmd,
    const char *rcpt)
{
	const char		*list, *value, *nv[2 * MACROS_MAX];
	struct macro_arena	*a;
	char			 name[MACRO_NAME_MAX];
	size_t			 n = 0;
	int			 rc = 0;

	list = ms->macros[stage] != NULL ? ms->macros[stage] : ms->mi->macros[stage];
	if (list == NULL || *list == '\0')
		return 0;
	if ((a = malloc(sizeof(*a))) == NULL)
		return -1;
	a->used = 0;
	while (n < MACROS_MAX && milter_macro_name_next(&list, name, sizeof(name)) == 0) {
		if ((value = macro_value(ms, name, rcpt, a)) == NULL)
			continue;
		if ((nv[2 * n] = arena_add(a, name)) == NULL)
			break;
		nv[2 * n + 1] = value;
		n++;
	}
	if (n > 0)
		rc = milter_put_macros(&ms->out, cmd, nv, n);
	free(a);
	return rc;
}

/* "<mailbox>" then each ESMTP parameter of params (" KEY=VALUE ..."). */
int
milter_put_envelope(struct milter_session *ms, unsigned char cmd, const char *mailbox,
    const char *params)
{
	size_t		 mlen, plen, argc = 1, i;
	char		*buf, *p, *save = NULL;
	const char	**argv;
	int		 rc;

	if (mailbox == NULL)
		mailbox = "";
	if (params == NULL)
		params = "";
	mlen = strlen(mailbox);
	plen = strlen(params);
	for (i = 0; i < plen; i++)
		argc += params[i] != ' ' && (i == 0 || params[i - 1] == ' ');
	buf = malloc(mlen + 3 + plen + 1);
	argv = calloc(argc, sizeof(*argv));
	if (buf == NULL || argv == NULL) {
		free(buf);
		free(argv);
		milter_client_fail(ms, "out of memory");
		return -1;
	}
	snprintf(buf, mlen + 3, "<%s>", mailbox);
	argv[0] = buf;
	p = buf + mlen + 3;
	memcpy(p, params, plen + 1);
	for (argc = 1, p = strtok_r(p, " ", &save); p != NULL; p = strtok_r(NULL, " ", &save))
		argv[argc++] = p;
	if ((rc = milter_put_argv(&ms->out, cmd, argv, argc)) == -1)
		milter_client_fail(ms, "%s arguments too long for the protocol",
		    cmd == MILTER_CMD_MAIL ? "MAIL" : "RCPT");
	free(buf);
	free(argv);
	return rc;
}
