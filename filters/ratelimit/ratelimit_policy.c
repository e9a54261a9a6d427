/*
 * ratelimit_policy.c - option values, phase actions, counter keys and
 * texts of the ratelimit filter (see ratelimit_policy.h).  Pure code.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ratelimit_policy.h"

/* A subject value longer than this keeps its start plus a hash of the whole. */
#define KEY_VALUE_MAX		400
#define KEY_VALUE_KEEP		380

static int	 lookup(const char *, const char *const *, size_t);
static uint64_t	 key_hash(const char *, size_t, int);
static int	 key_compose(const char *, const char *, size_t, int, char *, size_t);

static const char *const key_names[] = {
	"ip", "sender", "sender_domain", "recipient", "recipient_domain", "user"
};

static const char *const count_names[] = { "connections", "messages", "recipients" };

static int
lookup(const char *s, const char *const *names, size_t n)
{
	size_t	 i;

	for (i = 0; s != NULL && i < n; i++)
		if (strcasecmp(s, names[i]) == 0)
			return (int)i;
	return -1;
}

int
ratelimit_parse_key(const char *s, enum ratelimit_key *out)
{
	int	 i = lookup(s, key_names, sizeof(key_names) / sizeof(key_names[0]));

	if (i == -1)
		return -1;
	*out = (enum ratelimit_key)i;
	return 0;
}

int
ratelimit_parse_count(const char *s, enum ratelimit_count *out)
{
	int	 i = lookup(s, count_names, sizeof(count_names) / sizeof(count_names[0]));

	if (i == -1)
		return -1;
	*out = (enum ratelimit_count)i;
	return 0;
}

int
ratelimit_parse_store_error(const char *s, int *fail_closed)
{
	static const char *const names[] = { "accept", "tempfail" };
	int	 i = lookup(s, names, 2);

	if (i == -1)
		return -1;
	*fail_closed = i;
	return 0;
}

const char *
ratelimit_key_name(enum ratelimit_key key)
{
	return (unsigned int)key < sizeof(key_names) / sizeof(key_names[0]) ?
	    key_names[key] : "?";
}

const char *
ratelimit_count_name(enum ratelimit_count count)
{
	return (unsigned int)count < sizeof(count_names) / sizeof(count_names[0]) ?
	    count_names[count] : "?";
}

int
ratelimit_rule_check(const struct ratelimit_rule *r, char *err, size_t errlen)
{
	if (r->count == RATELIMIT_COUNT_CONNECTIONS && r->key != RATELIMIT_KEY_IP) {
		snprintf(err, errlen, "count = \"connections\" needs key = \"ip\": a %s is not "
		    "known when a client connects", ratelimit_key_name(r->key));
		return -1;
	}
	if (r->prefix4 < 0 || r->prefix4 > 32) {
		snprintf(err, errlen, "prefix4 must be 0 to 32");
		return -1;
	}
	if (r->prefix6 < 0 || r->prefix6 > 128) {
		snprintf(err, errlen, "prefix6 must be 0 to 128");
		return -1;
	}
	if (r->limit < 1 || r->limit > 1000000000000LL) {
		snprintf(err, errlen, "limit must be 1 to 1000000000000");
		return -1;
	}
	if (r->window_ms < 1000 || r->window_ms > 366UL * 86400 * 1000) {
		snprintf(err, errlen, "window must be 1s to 366d");
		return -1;
	}
	return 0;
}

int
ratelimit_key_per_recipient(const struct ratelimit_rule *r)
{
	return r->key == RATELIMIT_KEY_RECIPIENT || r->key == RATELIMIT_KEY_RECIPIENT_DOMAIN;
}

/*
 * Messages are checked when their key is first known (MAIL, or RCPT for a
 * recipient's key) so an exhausted sender is refused before it sends the
 * body, and counted at the end of data, when the message got past
 * everything before this filter: refused and abandoned messages do not
 * use up the allowance.  Recipients are counted at each RCPT, like
 * Postfix's anvil: a dictionary attack spends it.
 */
enum ratelimit_action
ratelimit_action(const struct ratelimit_rule *r, enum sluice_phase phase)
{
	switch (phase) {
	case SLUICE_PHASE_CONNECT:
		return r->count == RATELIMIT_COUNT_CONNECTIONS ? RATELIMIT_COUNT : RATELIMIT_NONE;
	case SLUICE_PHASE_MAIL:
		return r->count == RATELIMIT_COUNT_MESSAGES && !ratelimit_key_per_recipient(r) ?
		    RATELIMIT_CHECK : RATELIMIT_NONE;
	case SLUICE_PHASE_RCPT:
		if (r->count == RATELIMIT_COUNT_RECIPIENTS)
			return RATELIMIT_COUNT;
		return r->count == RATELIMIT_COUNT_MESSAGES && ratelimit_key_per_recipient(r) ?
		    RATELIMIT_CHECK : RATELIMIT_NONE;
	case SLUICE_PHASE_EOM:
		return r->count == RATELIMIT_COUNT_MESSAGES ? RATELIMIT_COUNT : RATELIMIT_NONE;
	default:
		return RATELIMIT_NONE;
	}
}

int
ratelimit_key_ip(const char *addr, int prefix4, int prefix6, char *buf, size_t size)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	unsigned char	 a[16];
	char		 text[INET6_ADDRSTRLEN];
	int		 family = AF_INET, bits = prefix4, full = 32, i, keep;

	if (addr == NULL)
		return -1;
	if (inet_pton(AF_INET, addr, a) != 1) {
		if (inet_pton(AF_INET6, addr, a) != 1)
			return -1;
		if (memcmp(a, mapped, sizeof(mapped)) == 0)
			memmove(a, a + 12, 4);
		else {
			family = AF_INET6;
			bits = prefix6;
			full = 128;
		}
	}
	if (bits < 0 || bits > full)
		return -1;
	for (i = 0; i < full / 8; i++) {
		keep = bits - i * 8;
		if (keep <= 0)
			a[i] = 0;
		else if (keep < 8)
			a[i] &= (unsigned char)(0xff << (8 - keep));
	}
	if (inet_ntop(family, a, text, sizeof(text)) == NULL)
		return -1;
	if (bits < full)
		i = snprintf(buf, size, "ip:%s/%d", text, bits);
	else
		i = snprintf(buf, size, "ip:%s", text);
	return i > 0 && (size_t)i < size ? 0 : -1;
}

/* FNV-1a of the first len bytes of s, lower-cased when fold. */
static uint64_t
key_hash(const char *s, size_t len, int fold)
{
	uint64_t	 h = 1469598103934665603ULL;
	size_t		 i;

	for (i = 0; i < len; i++) {
		unsigned char	 c = (unsigned char)s[i];

		h ^= fold && c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
		h *= 1099511628211ULL;
	}
	return h;
}

/* kind ":" value, lower-cased for addresses, shortened when too long. */
static int
key_compose(const char *kind, const char *value, size_t len, int fold, char *buf, size_t size)
{
	char	 tmp[KEY_VALUE_MAX + 1];
	size_t	 i, n = len > KEY_VALUE_MAX ? KEY_VALUE_KEEP : len;
	int	 w;

	if (len == 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char	 c = (unsigned char)value[i];

		tmp[i] = (char)(fold && c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
	}
	tmp[n] = '\0';
	if (len > KEY_VALUE_MAX)
		w = snprintf(buf, size, "%s:%s#%016llx", kind, tmp,
		    (unsigned long long)key_hash(value, len, fold));
	else
		w = snprintf(buf, size, "%s:%s", kind, tmp);
	return w > 0 && (size_t)w < size ? 0 : -1;
}

int
ratelimit_key_make(const struct ratelimit_rule *r, const char *subject, char *buf, size_t size)
{
	const char	*at, *kind = ratelimit_key_name(r->key);
	size_t		 len;

	if (subject == NULL)
		return -1;
	switch (r->key) {
	case RATELIMIT_KEY_IP:
		return ratelimit_key_ip(subject, r->prefix4, r->prefix6, buf, size);
	case RATELIMIT_KEY_USER:
		return key_compose(kind, subject, strlen(subject), 0, buf, size);
	case RATELIMIT_KEY_SENDER:
	case RATELIMIT_KEY_RECIPIENT:
		len = strlen(subject);
		if (len > 1 && subject[len - 1] == '.' && strchr(subject, '@') != NULL)
			len--;	/* user@example.org. */
		return key_compose(kind, subject, len, 1, buf, size);
	case RATELIMIT_KEY_SENDER_DOMAIN:
	case RATELIMIT_KEY_RECIPIENT_DOMAIN:
		if ((at = strrchr(subject, '@')) == NULL)
			return -1;
		len = strlen(++at);
		if (len > 0 && at[len - 1] == '.')
			len--;
		return key_compose(kind, at, len, 1, buf, size);
	}
	return -1;
}

void
ratelimit_format_duration(unsigned long ms, char *buf, size_t size)
{
	if (ms != 0 && ms % 86400000UL == 0)
		snprintf(buf, size, "%lud", ms / 86400000UL);
	else if (ms != 0 && ms % 3600000UL == 0)
		snprintf(buf, size, "%luh", ms / 3600000UL);
	else if (ms != 0 && ms % 60000UL == 0)
		snprintf(buf, size, "%lum", ms / 60000UL);
	else if (ms % 1000UL == 0)
		snprintf(buf, size, "%lus", ms / 1000UL);
	else
		snprintf(buf, size, "%lums", ms);
}

char *
ratelimit_log_safe(const char *s, int quoted, char *buf, size_t size)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 o = 0;

	if (size == 0)
		return buf;
	for (; s != NULL && *s != '\0' && o + 5 < size; s++) {
		unsigned char	 c = (unsigned char)*s;

		if ((c > ' ' || (c == ' ' && quoted)) && c < 0x7f && c != '"' && c != '\\')
			buf[o++] = (char)c;
		else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

void
ratelimit_reply_text(const struct ratelimit_rule *r, const char *key, char *buf, size_t size)
{
	const char	*value = strchr(key, ':');
	char		 shown[128], subject[160], window[32];
	size_t		 i;

	value = value != NULL ? value + 1 : key;
	/* Replies are ASCII, and an address from the client is not trusted. */
	for (i = 0; value[i] != '\0' && i < sizeof(shown) - 1; i++)
		shown[i] = value[i] > ' ' && value[i] < 0x7f ? value[i] : '?';
	shown[i] = '\0';
	switch (r->key) {
	case RATELIMIT_KEY_IP:
	case RATELIMIT_KEY_SENDER_DOMAIN:
		snprintf(subject, sizeof(subject), "from %s", shown);
		break;
	case RATELIMIT_KEY_SENDER:
		snprintf(subject, sizeof(subject), "from <%s>", shown);
		break;
	case RATELIMIT_KEY_RECIPIENT:
		snprintf(subject, sizeof(subject), "to <%s>", shown);
		break;
	case RATELIMIT_KEY_RECIPIENT_DOMAIN:
		snprintf(subject, sizeof(subject), "to %s", shown);
		break;
	default:
		snprintf(subject, sizeof(subject), "for this account");
		break;
	}
	ratelimit_format_duration(r->window_ms, window, sizeof(window));
	snprintf(buf, size, "Too many %s %s (limit %lld per %s), try again later",
	    ratelimit_count_name(r->count), subject, r->limit, window);
}
