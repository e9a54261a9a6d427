/*
 * queue_file.c - queue ids and the queue file format.
 *
 * One file per message, named by its queue id, in the folder of its
 * state.  Version 1 is text up to the body, one "key value" line each
 * (the value is the rest of the line, possibly empty):
 *
 *	sluice-queue 1
 *	id 0006287A1B2C3DKQ7ZWA		14 hex digits of microseconds, 6 random
 *	arrival 1764390000			unix seconds
 *	sender alice@example.org		"" for the null sender
 *	mail-params  SIZE=4096 BODY=8BITMIME	as received (RET, ENVID, SMTPUTF8 too)
 *	client-addr 192.0.2.7
 *	client-name mx.example.org		"" when unverified
 *	client-helo mx.example.org
 *	received-by relay.example.net		our name, for the DSN
 *	rcpt bob@example.net			one pair per recipient, in order
 *	rcpt-params  NOTIFY=FAILURE ORCPT=rfc822;bob@example.net
 *	body 0000000000004711		length of what follows (16 digits)
 *	<4711 bytes: the message in wire form, CRLF, dot-stuffed, no final dot>
 *	end
 *
 * then append-only records, each one line written with one write(2):
 *
 *	result 0 delivered 1764390007 250 2.0.0 Ok: queued as 4dQ2
 *	attempt 1764390007 1764390307		when tried, next attempt
 *	schedule 1764390100			next attempt set by an operator
 *
 * A recipient's state is its last result record (pending when none);
 * attempts counts attempt records and the last one gives the next
 * attempt.  So states change without rewriting the body, and a crash
 * leaves either the old or the new state: an append cut short has no
 * newline and is ignored.  A file without "end" after its body was never
 * committed (it cannot appear outside incoming/, see queue.c).
 */
#include "autoconf.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"
#include "queue_file.h"
#include "util.h"

#define QUEUE_LINE_MAX		(128 * 1024)
#define QUEUE_RCPTS_MAX		100000

static const char queue_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char *const queue_state_names[] = { "pending", "delivered", "failed", "deferred" };

static pthread_mutex_t	 queue_id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t		 queue_id_last;

static int	 queue_parse_number(const char *, size_t, int64_t *);
static int	 queue_head_line(struct queue_envelope *, const char *, size_t, const char *,
		    size_t, char *, size_t);
static int	 queue_tail_line(struct queue_envelope *, const char *, size_t, char *, size_t);
static void	 queue_why(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

void
queue_id_new(char *out)
{
	struct timeval	 tv;
	uint64_t	 us, r;
	int		 i;

	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
	/* Strictly increasing in this process, even when the clock steps back. */
	pthread_mutex_lock(&queue_id_lock);
	if (us <= queue_id_last)
		us = queue_id_last + 1;
	queue_id_last = us;
	pthread_mutex_unlock(&queue_id_lock);
	snprintf(out, QUEUE_ID_LEN + 1, "%014" PRIX64, us & (uint64_t)0xffffffffffffff);
	r = random_u64();
	for (i = 14; i < QUEUE_ID_LEN; i++, r >>= 5)
		out[i] = queue_b32[r & 31];
	out[QUEUE_ID_LEN] = '\0';
}

int
queue_id_valid(const char *s)
{
	size_t	 i;

	for (i = 0; i < QUEUE_ID_LEN; i++) {
		if (i < 14 && !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
		if (i >= 14 && strchr(queue_b32, s[i]) == NULL)
			return 0;
		if (s[i] == '\0')
			return 0;
	}
	return s[QUEUE_ID_LEN] == '\0';
}

const char *
queue_rcpt_state_name(enum queue_rcpt_state state)
{
	return (unsigned int)state < nitems(queue_state_names) ?
	    queue_state_names[state] : "unknown";
}

/* --- Writing --------------------------------------------------------------- */

char *
queue_file_format_head(const struct queue_envelope *env, size_t *len)
{
	char	*out = NULL;
	FILE	*fp;
	size_t	 i;

	/* One pass, linear in the recipients (there may be thousands). */
	if ((fp = open_memstream(&out, len)) == NULL)
		fatal("open_memstream");
	fprintf(fp, "sluice-queue %d\nid %s\narrival %" PRId64 "\nsender %s\n"
	    "mail-params %s\nclient-addr %s\nclient-name %s\nclient-helo %s\n"
	    "received-by %s\n", QUEUE_FILE_VERSION, env->id, env->arrival, env->sender,
	    env->mail_params != NULL ? env->mail_params : "",
	    env->client_addr != NULL ? env->client_addr : "",
	    env->client_name != NULL ? env->client_name : "",
	    env->client_helo != NULL ? env->client_helo : "",
	    env->received_by != NULL ? env->received_by : "");
	for (i = 0; i < env->nrcpts; i++)
		fprintf(fp, "rcpt %s\nrcpt-params %s\n", env->rcpts[i].mailbox,
		    env->rcpts[i].params != NULL ? env->rcpts[i].params : "");
	fprintf(fp, "body %0*lld\n", QUEUE_FILE_LENGTH_WIDTH, (long long)env->body_length);
	if (ferror(fp) || fclose(fp) != 0)
		fatal("open_memstream");
	return out;
}

char *
queue_file_format_result(size_t index, enum queue_rcpt_state state, int64_t when,
    const char *reply, size_t *len)
{
	char	*out, *p;

	xasprintf(&out, "result %zu %s %" PRId64 " %s\n", index, queue_rcpt_state_name(state),
	    when, reply != NULL ? reply : "");
	/* A reply is one line: folding multi-line replies keeps the record one. */
	for (p = out; p[1] != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	*len = strlen(out);
	return out;
}

char *
queue_file_format_schedule(int64_t next_attempt, size_t *len)
{
	char	*out;

	xasprintf(&out, "schedule %" PRId64 "\n", next_attempt);
	*len = strlen(out);
	return out;
}

char *
queue_file_format_attempt(int64_t when, int64_t next_attempt, size_t *len)
{
	char	*out;

	xasprintf(&out, "attempt %" PRId64 " %" PRId64 "\n", when, next_attempt);
	*len = strlen(out);
	return out;
}

/* --- Parsing --------------------------------------------------------------- */

static void
queue_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list	 ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* Decimal, no sign, no leading junk, fits in int64. */
static int
queue_parse_number(const char *s, size_t len, int64_t *out)
{
	int64_t	 v = 0;
	size_t	 i;

	if (len == 0 || len > 18)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
queue_key_is(const char *key, size_t klen, const char *want)
{
	return strlen(want) == klen && memcmp(key, want, klen) == 0;
}

/* Store a string field; a field given twice is damage. */
static int
queue_set_string(char **field, const char *v, size_t vlen)
{
	if (*field != NULL)
		return -1;
	*field = xstrndup(v, vlen);
	return 0;
}

static int
queue_head_rcpt(struct queue_envelope *env, const char *key, size_t klen, const char *v,
    size_t vlen)
{
	struct queue_rcpt	*r;

	if (queue_key_is(key, klen, "rcpt")) {
		if (env->nrcpts >= QUEUE_RCPTS_MAX || vlen == 0)
			return -1;
		if (env->nrcpts > 0 && env->rcpts[env->nrcpts - 1].params == NULL)
			return -1;
		env->rcpts = xreallocarray(env->rcpts, env->nrcpts + 1, sizeof(*env->rcpts));
		r = &env->rcpts[env->nrcpts++];
		memset(r, 0, sizeof(*r));
		r->mailbox = xstrndup(v, vlen);
		return 0;
	}
	if (env->nrcpts == 0 || env->rcpts[env->nrcpts - 1].params != NULL)
		return -1;
	env->rcpts[env->nrcpts - 1].params = xstrndup(v, vlen);
	return 0;
}

/* One head line (without its newline); 1 at the body line, 0, or -1. */
static int
queue_head_line(struct queue_envelope *env, const char *key, size_t klen, const char *v,
    size_t vlen, char *why, size_t whylen)
{
	int64_t	 n;

	if (queue_key_is(key, klen, "id")) {
		if (vlen != QUEUE_ID_LEN || env->id[0] != '\0')
			return -1;
		memcpy(env->id, v, vlen);
		env->id[vlen] = '\0';
		return queue_id_valid(env->id) ? 0 : -1;
	}
	if (queue_key_is(key, klen, "arrival")) {
		if (queue_parse_number(v, vlen, &n) == -1)
			return -1;
		env->arrival = env->next_attempt = n;
		return 0;
	}
	if (queue_key_is(key, klen, "sender"))
		return queue_set_string(&env->sender, v, vlen);
	if (queue_key_is(key, klen, "mail-params"))
		return queue_set_string(&env->mail_params, v, vlen);
	if (queue_key_is(key, klen, "client-addr"))
		return queue_set_string(&env->client_addr, v, vlen);
	if (queue_key_is(key, klen, "client-name"))
		return queue_set_string(&env->client_name, v, vlen);
	if (queue_key_is(key, klen, "client-helo"))
		return queue_set_string(&env->client_helo, v, vlen);
	if (queue_key_is(key, klen, "received-by"))
		return queue_set_string(&env->received_by, v, vlen);
	if (queue_key_is(key, klen, "rcpt") || queue_key_is(key, klen, "rcpt-params"))
		return queue_head_rcpt(env, key, klen, v, vlen);
	if (queue_key_is(key, klen, "body")) {
		if (queue_parse_number(v, vlen, &n) == -1)
			return -1;
		env->body_length = (off_t)n;
		return 1;
	}
	queue_why(why, whylen, "unknown field \"%.*s\"", (int)(klen < 40 ? klen : 40), key);
	return -1;
}

/* Everything a head needs, checked at its body line. */
static int
queue_head_complete(const struct queue_envelope *env)
{
	return env->id[0] != '\0' && env->arrival > 0 && env->sender != NULL &&
	    env->mail_params != NULL && env->client_addr != NULL && env->client_name != NULL &&
	    env->client_helo != NULL && env->received_by != NULL && env->nrcpts > 0 &&
	    env->rcpts[env->nrcpts - 1].params != NULL;
}

static enum queue_parse
queue_head_first(const char *buf, size_t len, size_t *pos, char *why, size_t whylen)
{
	static const char	 magic[] = "sluice-queue 1\n";
	size_t			 n = len < sizeof(magic) - 1 ? len : sizeof(magic) - 1;

	if (memcmp(buf, magic, n) != 0) {
		queue_why(why, whylen, "not a sluice queue file of version %d",
		    QUEUE_FILE_VERSION);
		return QUEUE_PARSE_BAD;
	}
	if (n < sizeof(magic) - 1)
		return QUEUE_PARSE_MORE;
	*pos = n;
	return QUEUE_PARSE_OK;
}

enum queue_parse
queue_file_parse_head(const char *buf, size_t len, struct queue_envelope *env, char *why,
    size_t whylen)
{
	const char	*line, *nl, *sp;
	size_t		 pos = 0, llen;
	enum queue_parse r;
	int		 l;

	queue_envelope_clear(env);
	queue_why(why, whylen, "damaged envelope");
	if ((r = queue_head_first(buf, len, &pos, why, whylen)) != QUEUE_PARSE_OK)
		return r;
	while (pos < len) {
		line = buf + pos;
		if ((nl = memchr(line, '\n', len - pos)) == NULL)
			return len - pos > QUEUE_LINE_MAX ? QUEUE_PARSE_BAD : QUEUE_PARSE_MORE;
		llen = (size_t)(nl - line);
		if (memchr(line, '\0', llen) != NULL || memchr(line, '\r', llen) != NULL ||
		    (sp = memchr(line, ' ', llen)) == NULL)
			return QUEUE_PARSE_BAD;
		pos += llen + 1;
		l = queue_head_line(env, line, (size_t)(sp - line), sp + 1,
		    llen - (size_t)(sp - line) - 1, why, whylen);
		if (l == -1)
			return QUEUE_PARSE_BAD;
		if (l == 1) {
			if (!queue_head_complete(env)) {
				queue_why(why, whylen, "envelope lacks a field");
				return QUEUE_PARSE_BAD;
			}
			env->body_offset = (off_t)pos;
			return QUEUE_PARSE_OK;
		}
	}
	return QUEUE_PARSE_MORE;
}

/* One record line (without its newline); 0, or -1. */
static int
queue_tail_line(struct queue_envelope *env, const char *line, size_t len, char *why,
    size_t whylen)
{
	const char	*f[4];
	size_t		 flen[4], nf = 0, i, start = 0;
	int64_t		 idx, when, next;
	enum queue_rcpt_state st = QUEUE_RCPT_PENDING;

	/* Up to 4 space-separated fields, the rest is the reply text. */
	for (i = 0; i <= len && nf < 4; i++)
		if (i == len || line[i] == ' ') {
			f[nf] = line + start;
			flen[nf++] = i - start;
			start = i + 1;
		}
	if (nf == 2 && queue_key_is(f[0], flen[0], "schedule")) {
		if (queue_parse_number(f[1], flen[1], &next) == -1)
			return -1;
		env->next_attempt = next;
		return 0;
	}
	if (nf == 3 && queue_key_is(f[0], flen[0], "attempt")) {
		if (queue_parse_number(f[1], flen[1], &when) == -1 ||
		    queue_parse_number(f[2], flen[2], &next) == -1)
			return -1;
		env->attempts++;
		env->next_attempt = next;
		return 0;
	}
	if (nf != 4 || !queue_key_is(f[0], flen[0], "result") ||
	    queue_parse_number(f[1], flen[1], &idx) == -1 ||
	    queue_parse_number(f[3], flen[3], &when) == -1 || (size_t)idx >= env->nrcpts) {
		queue_why(why, whylen, "damaged result record");
		return -1;
	}
	while ((size_t)st < nitems(queue_state_names) &&
	    !queue_key_is(f[2], flen[2], queue_state_names[st]))
		st++;
	if ((size_t)st == nitems(queue_state_names))
		return -1;
	env->rcpts[idx].state = st;
	env->rcpts[idx].when = when;
	free(env->rcpts[idx].reply);
	env->rcpts[idx].reply = start <= len ? xstrndup(line + start, len - start) : xstrdup("");
	return 0;
}

enum queue_parse
queue_file_parse_tail(const char *buf, size_t len, struct queue_envelope *env, char *why,
    size_t whylen)
{
	const char	*line, *nl;
	size_t		 pos = QUEUE_FILE_END_LEN;

	if (len < QUEUE_FILE_END_LEN || memcmp(buf, QUEUE_FILE_END, QUEUE_FILE_END_LEN) != 0) {
		queue_why(why, whylen, "body not followed by the end line (never committed)");
		return QUEUE_PARSE_BAD;
	}
	while (pos < len) {
		line = buf + pos;
		/* A last record without its newline: a crash cut the append. */
		if ((nl = memchr(line, '\n', len - pos)) == NULL)
			break;
		if (memchr(line, '\0', (size_t)(nl - line)) != NULL ||
		    queue_tail_line(env, line, (size_t)(nl - line), why, whylen) == -1) {
			queue_why(why, whylen, "damaged record at offset %zu",
			    (size_t)env->body_offset + (size_t)env->body_length + pos);
			return QUEUE_PARSE_BAD;
		}
		pos += (size_t)(nl - line) + 1;
	}
	return QUEUE_PARSE_OK;
}

enum queue_parse
queue_file_parse(const char *buf, size_t len, struct queue_envelope *env, char *why,
    size_t whylen)
{
	enum queue_parse r;
	size_t		 end;

	if ((r = queue_file_parse_head(buf, len, env, why, whylen)) == QUEUE_PARSE_MORE) {
		queue_why(why, whylen, "file ends inside the envelope");
		return QUEUE_PARSE_BAD;
	}
	if (r != QUEUE_PARSE_OK)
		return r;
	end = (size_t)env->body_offset + (size_t)env->body_length;
	if (env->body_length < 0 || end < (size_t)env->body_offset || end > len) {
		queue_why(why, whylen, "file ends inside the body");
		return QUEUE_PARSE_BAD;
	}
	return queue_file_parse_tail(buf + end, len - end, env, why, whylen);
}

void
queue_envelope_clear(struct queue_envelope *env)
{
	size_t	 i;

	for (i = 0; i < env->nrcpts; i++) {
		free(env->rcpts[i].mailbox);
		free(env->rcpts[i].params);
		free(env->rcpts[i].reply);
	}
	free(env->rcpts);
	free(env->sender);
	free(env->mail_params);
	free(env->client_addr);
	free(env->client_name);
	free(env->client_helo);
	free(env->received_by);
	memset(env, 0, sizeof(*env));
}
