/*
 * milter_edit.c - the changes a milter asks for at the end of the message.
 *
 * Each change is checked when it arrives: the action must have been
 * negotiated, names, values and addresses must be well formed, and the
 * counts and sizes stay under the instance's limits.  Header and envelope
 * changes are kept until the milter's final answer and applied only when
 * it is continue or accept, so a milter that fails halfway (10,000
 * headers, a closed socket) leaves the message as it was.  A replacement
 * body goes straight to the message's spool as it arrives (it may be big);
 * it counts only if the message is delivered.
 *
 * Sendmail's semantics, as Postfix follows them: SMFIR_INSHEADER index 0
 * is the top (below our Received:); SMFIR_CHGHEADER index 0 means 1, an
 * empty value deletes, and an index past the last such field adds it;
 * deleting a field or a recipient that is not there does nothing.  A
 * quarantine becomes an "X-Sluice-Quarantine: reason" header field (sluice
 * has no hold queue) and a log line.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice_filter.h"

#include "milter_codec.h"
#include "milter_int.h"
#include "milter_parse.h"

#define QUARANTINE_HEADER	"X-Sluice-Quarantine"

/* What applying the kept changes did, for the log line. */
struct edit_counts {
	size_t	 added;		/* header fields added or inserted */
	size_t	 changed;	/* header fields changed */
	size_t	 deleted;	/* header fields deleted */
	size_t	 rcpts_added;
	size_t	 rcpts_removed;
	int	 sender;	/* the sender changed */
	int	 quarantined;	/* a quarantine header was added */
	size_t	 failed;	/* changes the message refused */
};

static uint32_t	 edit_action(unsigned char);
static int	 edit_keep(struct milter_session *, unsigned char, uint32_t, const char *,
		    const char *);
static int	 edit_header(struct milter_session *, const struct milter_msg *);
static int	 edit_envelope(struct milter_session *, const struct milter_msg *);
static int	 edit_body(struct milter_session *, const struct milter_msg *);
static int	 edit_apply_one(struct milter_session *, const struct milter_edit *,
		    struct edit_counts *);
static int	 edit_args_valid(const char *);
static void	 edit_count(const struct milter_edit *, struct edit_counts *);

static uint32_t
edit_action(unsigned char code)
{
	switch (code) {
	case MILTER_REPLY_ADDHEADER:
	case MILTER_REPLY_INSHEADER:
		return MILTER_ACT_ADDHDRS;
	case MILTER_REPLY_CHGHEADER:
		return MILTER_ACT_CHGHDRS;
	case MILTER_REPLY_REPLBODY:
		return MILTER_ACT_CHGBODY;
	case MILTER_REPLY_ADDRCPT:
		return MILTER_ACT_ADDRCPT;
	case MILTER_REPLY_ADDRCPT_PAR:
		return MILTER_ACT_ADDRCPT_PAR;
	case MILTER_REPLY_DELRCPT:
		return MILTER_ACT_DELRCPT;
	case MILTER_REPLY_CHGFROM:
		return MILTER_ACT_CHGFROM;
	default:
		return MILTER_ACT_QUARANTINE;
	}
}

int
milter_edit_take(struct milter_session *ms, const struct milter_msg *m)
{
	if ((ms->actions & edit_action(m->code)) == 0) {
		milter_client_fail(ms, "sent %s without having negotiated it",
		    milter_code_name(m->code, MILTER_FROM_FILTER));
		return -1;
	}
	switch (m->code) {
	case MILTER_REPLY_REPLBODY:
		return edit_body(ms, m);
	case MILTER_REPLY_ADDHEADER:
	case MILTER_REPLY_INSHEADER:
	case MILTER_REPLY_CHGHEADER:
	case MILTER_REPLY_QUARANTINE:
		return edit_header(ms, m);
	default:
		return edit_envelope(ms, m);
	}
}

static int
edit_header(struct milter_session *ms, const struct milter_msg *m)
{
	const char	*value;
	char		 reason[256];

	if (++ms->header_changes > ms->mi->max_header_changes) {
		milter_client_fail(ms, "asked for more than %zu header changes",
		    ms->mi->max_header_changes);
		return -1;
	}
	if (m->code == MILTER_REPLY_QUARANTINE) {
		milter_text_clean(m->s1, reason, sizeof(reason));
		return edit_keep(ms, m->code, 0, reason[0] != '\0' ? reason : "quarantined", NULL);
	}
	if (!milter_header_name_valid(m->s1)) {
		milter_client_fail(ms, "sent %s with an invalid header name \"%.64s\"",
		    milter_code_name(m->code, MILTER_FROM_FILTER), m->s1);
		return -1;
	}
	if (m->code == MILTER_REPLY_CHGHEADER && m->s2[0] == '\0')
		return edit_keep(ms, m->code, m->index, m->s1, NULL);
	if ((value = milter_header_value_in(m->s2,
	    (ms->protocol & MILTER_PROTO_HDR_LEADSPC) != 0)) == NULL) {
		milter_client_fail(ms, "sent %s with an invalid value for %.64s (line breaks "
		    "other than folding)", milter_code_name(m->code, MILTER_FROM_FILTER), m->s1);
		return -1;
	}
	return edit_keep(ms, m->code, m->index, m->s1, value);
}

/* ESMTP arguments: printable, one line. */
static int
edit_args_valid(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return 0;
	return 1;
}

static int
edit_envelope(struct milter_session *ms, const struct milter_msg *m)
{
	char	 box[512];

	if (m->code != MILTER_REPLY_CHGFROM &&
	    ++ms->rcpt_changes > ms->mi->max_rcpt_changes) {
		milter_client_fail(ms, "asked for more than %zu recipient changes",
		    ms->mi->max_rcpt_changes);
		return -1;
	}
	if (milter_mailbox_strip(m->s1, box, sizeof(box)) == -1 ||
	    (m->code != MILTER_REPLY_CHGFROM && box[0] == '\0')) {
		milter_client_fail(ms, "sent %s with an invalid address \"%.100s\"",
		    milter_code_name(m->code, MILTER_FROM_FILTER), m->s1);
		return -1;
	}
	if (!edit_args_valid(m->s2)) {
		milter_client_fail(ms, "sent %s with invalid ESMTP arguments",
		    milter_code_name(m->code, MILTER_FROM_FILTER));
		return -1;
	}
	return edit_keep(ms, m->code, 0, box, m->s2);
}

static int
edit_body(struct milter_session *ms, const struct milter_msg *m)
{
	if (m->len > ms->mi->max_body_size - ms->body_replaced) {
		milter_client_fail(ms, "replaced the body with more than %zu bytes",
		    ms->mi->max_body_size);
		return -1;
	}
	if (!ms->mi->observe && sluice_body_replace(ms->ctx, m->data, m->len) == -1) {
		milter_client_fail(ms, "sent a body replacement the message could not take");
		return -1;
	}
	ms->body_replaced += m->len;
	ms->body_changed = 1;
	return 0;
}

static int
edit_keep(struct milter_session *ms, unsigned char code, uint32_t index, const char *a,
    const char *b)
{
	size_t			 bytes = strlen(a) + (b != NULL ? strlen(b) : 0);
	struct milter_edit	*e;

	if (bytes > MILTER_EDITS_MAX_BYTES - ms->edits_bytes) {
		milter_client_fail(ms, "sent more than %u bytes of header and envelope changes",
		    MILTER_EDITS_MAX_BYTES);
		return -1;
	}
	if (ms->nedits == ms->edits_cap) {
		size_t	 cap = ms->edits_cap ? ms->edits_cap * 2 : 8;

		if ((e = reallocarray(ms->edits, cap, sizeof(*e))) == NULL) {
			milter_client_fail(ms, "out of memory");
			return -1;
		}
		ms->edits = e;
		ms->edits_cap = cap;
	}
	e = &ms->edits[ms->nedits];
	e->code = code;
	e->index = index;
	e->a = strdup(a);
	e->b = b != NULL ? strdup(b) : NULL;
	if (e->a == NULL || (b != NULL && e->b == NULL)) {
		free(e->a);
		free(e->b);
		milter_client_fail(ms, "out of memory");
		return -1;
	}
	ms->nedits++;
	ms->edits_bytes += bytes;
	return 0;
}

/* One change; 0, or -1 when the message refused it. */
static int
edit_apply_one(struct milter_session *ms, const struct milter_edit *e, struct edit_counts *n)
{
	struct sluice_ctx	*ctx = ms->ctx;
	size_t			 index = e->index != 0 ? e->index : 1;

	switch (e->code) {
	case MILTER_REPLY_ADDHEADER:
		n->added++;
		return sluice_header_add(ctx, e->a, e->b);
	case MILTER_REPLY_INSHEADER:
		n->added++;
		if (sluice_header_insert(ctx, e->index, e->a, e->b) == 0)
			return 0;
		return sluice_header_add(ctx, e->a, e->b);	/* past the end */
	case MILTER_REPLY_CHGHEADER:
		if (e->b == NULL) {
			n->deleted += sluice_header_remove(ctx, e->a, index) == 0;
			return 0;	/* no such field: nothing to delete */
		}
		n->changed++;
		if (sluice_header_change(ctx, e->a, index, e->b) == 0)
			return 0;
		return sluice_header_add(ctx, e->a, e->b);	/* no index-th such field */
	case MILTER_REPLY_QUARANTINE:
		n->quarantined = 1;
		sluice_log(ctx, SLUICE_LOG_INFO, "milter quarantine address=%s reason=\"%s\"",
		    ms->mi->address, e->a);
		return sluice_header_add(ctx, QUARANTINE_HEADER, e->a);
	case MILTER_REPLY_ADDRCPT:
	case MILTER_REPLY_ADDRCPT_PAR:
		n->rcpts_added++;
		return sluice_rcpt_add(ctx, e->a, e->b);
	case MILTER_REPLY_DELRCPT:
		if (sluice_rcpt_remove(ctx, e->a) == 0)
			n->rcpts_removed++;
		return 0;	/* not a recipient: nothing to remove */
	default:
		n->sender = 1;
		return sluice_mail_change(ctx, e->a, e->b);
	}
}

/*
 * In observe mode nothing is applied (the body was not replaced either):
 * the log line says what would have changed.
 */
void
milter_edit_apply(struct milter_session *ms)
{
	struct edit_counts	 n;
	size_t			 i;

	memset(&n, 0, sizeof(n));
	for (i = 0; i < ms->nedits; i++)
		if (ms->mi->observe)
			edit_count(&ms->edits[i], &n);
		else if (edit_apply_one(ms, &ms->edits[i], &n) == -1) {
			n.failed++;
			sluice_log(ms->ctx, SLUICE_LOG_WARNING, "milter change refused "
			    "action=%s name=\"%.64s\"",
			    milter_code_name(ms->edits[i].code, MILTER_FROM_FILTER),
			    ms->edits[i].a);
		}
	if (ms->nedits > 0 || ms->body_changed)
		sluice_log(ms->ctx, SLUICE_LOG_INFO, "milter %s address=%s "
		    "headers_added=%zu headers_changed=%zu headers_deleted=%zu "
		    "rcpts_added=%zu rcpts_removed=%zu sender_changed=%s body_replaced=%s "
		    "quarantined=%s refused=%zu", ms->mi->observe ? "would_change" : "changes",
		    ms->mi->address, n.added, n.changed, n.deleted, n.rcpts_added,
		    n.rcpts_removed, n.sender ? "yes" : "no", ms->body_changed ? "yes" : "no",
		    n.quarantined ? "yes" : "no", n.failed);
	milter_edit_clear(ms);
}

/* Observe mode: what a change would have been, without the message. */
static void
edit_count(const struct milter_edit *e, struct edit_counts *n)
{
	switch (e->code) {
	case MILTER_REPLY_ADDHEADER:
	case MILTER_REPLY_INSHEADER:
		n->added++;
		break;
	case MILTER_REPLY_CHGHEADER:
		if (e->b == NULL)
			n->deleted++;
		else
			n->changed++;
		break;
	case MILTER_REPLY_QUARANTINE:
		n->quarantined = 1;
		break;
	case MILTER_REPLY_ADDRCPT:
	case MILTER_REPLY_ADDRCPT_PAR:
		n->rcpts_added++;
		break;
	case MILTER_REPLY_DELRCPT:
		n->rcpts_removed++;
		break;
	default:
		n->sender = 1;
		break;
	}
}

void
milter_edit_clear(struct milter_session *ms)
{
	size_t	 i;

	for (i = 0; i < ms->nedits; i++) {
		free(ms->edits[i].a);
		free(ms->edits[i].b);
	}
	free(ms->edits);
	ms->edits = NULL;
	ms->nedits = ms->edits_cap = ms->edits_bytes = 0;
	ms->header_changes = ms->rcpt_changes = ms->body_replaced = 0;
	ms->body_changed = 0;
}
