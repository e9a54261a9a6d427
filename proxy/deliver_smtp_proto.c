/*
 * deliver_smtp_proto.c - the pure parts of the relay-mode SMTP client:
 * results, classification, MAIL/RCPT parameters filtered by what the
 * remote offers, capability checks and loop detection.  See
 * deliver_smtp_proto.h.
 */
#include "autoconf.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "deliver_smtp_proto.h"
#include "smtp_reply.h"
#include "util.h"

#define DELIVER_ADDRESS_MAX	512	/* longer than any path RFC 5321 allows */

static void	 proto_copy_clean(char *dst, size_t size, size_t *used, const char *src);

enum deliver_class
deliver_smtp_classify(int code)
{
	if (code >= 200 && code < 300)
		return DELIVER_OK;
	if (code >= 500 && code < 600)
		return DELIVER_PERM;
	return DELIVER_TEMP;
}

/* Append src to dst with control bytes as spaces, so a reply cannot split a log or DSN line. */
static void
proto_copy_clean(char *dst, size_t size, size_t *used, const char *src)
{
	size_t	 n = *used;

	for (; *src != '\0' && n + 1 < size; src++)
		dst[n++] = ((unsigned char)*src < 0x20 || *src == 0x7f) ? ' ' : *src;
	dst[n] = '\0';
	*used = n;
}

void
deliver_smtp_result_set(struct deliver_smtp_result *r, int code,
    enum deliver_class klass_if_no_code, const char *enhanced, const char *text,
    const char *relay)
{
	static const char	 digit[] = { '0', '2', '4', '5' };
	size_t			 used = 0;

	r->klass = code != 0 ? deliver_smtp_classify(code) : klass_if_no_code;
	r->code = code;
	/* RFC 3463: the class digit must agree with the reply; else ours. */
	if (enhanced != NULL && enhanced[0] == digit[r->klass] && enhanced[1] == '.' &&
	    strlen(enhanced) < sizeof(r->enhanced))
		strlcpy_s(r->enhanced, enhanced, sizeof(r->enhanced));
	else
		snprintf(r->enhanced, sizeof(r->enhanced), "%c.0.0", digit[r->klass]);
	r->text[0] = '\0';
	proto_copy_clean(r->text, sizeof(r->text), &used, text != NULL ? text : "");
	strlcpy_s(r->relay, relay != NULL ? relay : "", sizeof(r->relay));
}

void
deliver_smtp_result_reply(struct deliver_smtp_result *r, const struct smtp_reply *reply,
    const char *relay)
{
	char	 text[DELIVER_TEXT_MAX];
	size_t	 used = 0, i;

	text[0] = '\0';
	proto_copy_clean(text, sizeof(text), &used, smtp_reply_text(reply));
	for (i = 1; i < reply->nlines; i++) {
		proto_copy_clean(text, sizeof(text), &used, " ");
		proto_copy_clean(text, sizeof(text), &used, smtp_reply_line(reply, i));
	}
	deliver_smtp_result_set(r, reply->code, DELIVER_TEMP, reply->enhanced, text, relay);
}

int
deliver_smtp_check_caps(const struct deliver_smtp_envelope *env, const struct smtp_caps *caps,
    int esmtp, size_t size, struct deliver_smtp_result *r)
{
	char	 text[160];

	if (esmtp && (caps->flags & SMTP_CAP_SIZE) && caps->size != 0 && size > caps->size) {
		snprintf(text, sizeof(text), "message size %zu exceeds size limit %llu of server",
		    size, caps->size);
		deliver_smtp_result_set(r, 0, DELIVER_PERM, "5.3.4", text, NULL);
		return 1;
	}
	/* RFC 6152: no conversion to 7 bit here, so never send 8-bit to a 7-bit server. */
	if (env->body_8bit && !(esmtp && (caps->flags & SMTP_CAP_8BITMIME))) {
		deliver_smtp_result_set(r, 0, DELIVER_PERM, "5.6.3",
		    "message has 8-bit content but the server does not offer 8BITMIME", NULL);
		return 1;
	}
	/* RFC 6531 3.4: an SMTPUTF8 message to a server without it is bounced. */
	if (env->smtputf8 && !(esmtp && (caps->flags & SMTP_CAP_SMTPUTF8))) {
		deliver_smtp_result_set(r, 0, DELIVER_PERM, "5.6.7",
		    "SMTPUTF8 is required, but was not offered by the server", NULL);
		return 1;
	}
	return 0;
}

int
deliver_smtp_address_ok(const char *s)
{
	size_t	 n = 0;
	int	 quoted = 0;

	for (; *s != '\0'; s++, n++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f || n >= DELIVER_ADDRESS_MAX)
			return 0;
		if (*s == '"')
			quoted = !quoted;
		else if (*s == '\\' && quoted && s[1] != '\0')
			s++, n++;
		else if ((*s == ' ' || *s == '<' || *s == '>') && !quoted)
			return 0;
	}
	return 1;
}

void
deliver_smtp_mail_line(struct evbuffer *out, const struct deliver_smtp_envelope *env,
    const struct smtp_caps *caps, size_t size)
{
	evbuffer_add_printf(out, "MAIL FROM:<%s>", env->sender);
	if (caps->flags & SMTP_CAP_SIZE)
		evbuffer_add_printf(out, " SIZE=%zu", size);
	if (env->body_8bit && (caps->flags & SMTP_CAP_8BITMIME))
		evbuffer_add_printf(out, " BODY=8BITMIME");
	if (env->smtputf8 && (caps->flags & SMTP_CAP_SMTPUTF8))
		evbuffer_add_printf(out, " SMTPUTF8");
	if (caps->flags & SMTP_CAP_DSN) {
		if (env->ret != NULL && env->ret[0] != '\0')
			evbuffer_add_printf(out, " RET=%s", env->ret);
		if (env->envid != NULL && env->envid[0] != '\0')
			evbuffer_add_printf(out, " ENVID=%s", env->envid);
	}
	evbuffer_add(out, "\r\n", 2);
}

void
deliver_smtp_rcpt_line(struct evbuffer *out, const struct deliver_smtp_rcpt *rcpt,
    const struct smtp_caps *caps)
{
	evbuffer_add_printf(out, "RCPT TO:<%s>", rcpt->addr);
	if (caps->flags & SMTP_CAP_DSN) {
		if (rcpt->notify != NULL && rcpt->notify[0] != '\0')
			evbuffer_add_printf(out, " NOTIFY=%s", rcpt->notify);
		if (rcpt->orcpt != NULL && rcpt->orcpt[0] != '\0')
			evbuffer_add_printf(out, " ORCPT=%s", rcpt->orcpt);
	}
	evbuffer_add(out, "\r\n", 2);
}

int
deliver_smtp_is_loop(const struct smtp_reply *reply, const char *our_name)
{
	const char	*t = smtp_reply_line(reply, 0);
	size_t		 n = strcspn(t, " \t");

	if (our_name == NULL || our_name[0] == '\0')
		return 0;
	return n == strlen(our_name) && strncasecmp(t, our_name, n) == 0;
}
