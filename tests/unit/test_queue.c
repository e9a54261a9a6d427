/*
 * test_queue.c - unit tests for the queue file format (proxy/queue_file.c)
 * and the queue directory operations (proxy/queue.c, queue_commit.c):
 * ids unique over 1e5 and sorted by time; a written head parses back;
 * the head parser fed 1..n bytes asks for more until complete; every
 * truncation point of a valid file parses or is refused, never crashes;
 * damaged bytes at every position are refused or parsed, never crash;
 * records update recipient states and a record cut short is ignored;
 * writer + commit put a complete file in active/ and nothing in
 * incoming/; result records, moves and removal; locking between two
 * openers; recovery removes uncommitted files, requeues active ones and
 * moves damaged ones to corrupt/.
 */
#include "autoconf.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "queue.h"
#include "queue_file.h"
#include "util.h"

#define BODY	"Subject: hi\r\n\r\n..leading dot\r\nline\r\n"

static char	 test_dir[PATH_MAX];

static int	 group_setup(void **);
static int	 group_teardown(void **);
static void	 sample_envelope(struct queue_envelope *);
static char	*sample_file(size_t *);
static size_t	 count_dir(const char *);

static int
group_setup(void **state)
{
	const char	*tmp = getenv("TMPDIR");

	snprintf(test_dir, sizeof(test_dir), "%s/test_queue.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(test_dir) == NULL)
		return -1;
	return queue_init(test_dir, QUEUE_SYNC_FDATASYNC, (uid_t)-1, (gid_t)-1);
}

static int
group_teardown(void **state)
{
	char	 cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", test_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
sample_envelope(struct queue_envelope *env)
{
	memset(env, 0, sizeof(*env));
	queue_id_new(env->id);
	env->arrival = 1764390000;
	env->sender = xstrdup("alice@example.org");
	env->mail_params = xstrdup(" SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x1");
	env->client_addr = xstrdup("192.0.2.7");
	env->client_name = xstrdup("");
	env->client_helo = xstrdup("client.example.org");
	env->received_by = xstrdup("relay.example.net");
	env->nrcpts = 2;
	env->rcpts = xcalloc(2, sizeof(*env->rcpts));
	env->rcpts[0].mailbox = xstrdup("bob@example.net");
	env->rcpts[0].params = xstrdup(" NOTIFY=FAILURE ORCPT=rfc822;bob@example.net");
	env->rcpts[1].mailbox = xstrdup("\"carol smith\"@example.com");
	env->rcpts[1].params = xstrdup("");
	env->body_length = (off_t)strlen(BODY);
}

/* A whole committed file with two records, in memory. */
static char *
sample_file(size_t *len)
{
	struct queue_envelope	 env;
	char			*head, *rec, *att, *out;
	size_t			 hl, rl, al;

	sample_envelope(&env);
	head = queue_file_format_head(&env, &hl);
	rec = queue_file_format_result(0, QUEUE_RCPT_DELIVERED, 1764390007,
	    "250 2.0.0\r\nOk", &rl);
	att = queue_file_format_attempt(1764390007, 1764390307, &al);
	*len = hl + strlen(BODY) + QUEUE_FILE_END_LEN + rl + al;
	out = xmalloc(*len);
	memcpy(out, head, hl);
	memcpy(out + hl, BODY, strlen(BODY));
	memcpy(out + hl + strlen(BODY), QUEUE_FILE_END, QUEUE_FILE_END_LEN);
	memcpy(out + hl + strlen(BODY) + QUEUE_FILE_END_LEN, rec, rl);
	memcpy(out + *len - al, att, al);
	free(head);
	free(rec);
	free(att);
	queue_envelope_clear(&env);
	return out;
}

static size_t
count_dir(const char *state)
{
	char		 path[PATH_MAX + 64];
	DIR		*d;
	struct dirent	*de;
	size_t		 n = 0;

	snprintf(path, sizeof(path), "%s/%s", test_dir, state);
	assert_non_null(d = opendir(path));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
compare_ids(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1e5 ids: valid, strictly increasing as generated, all different. */
static void
test_id_unique_sorted(void **state)
{
	size_t	 n = 100000, i;
	char	**ids = xcalloc(n, sizeof(*ids));

	for (i = 0; i < n; i++) {
		ids[i] = xmalloc(QUEUE_ID_LEN + 1);
		queue_id_new(ids[i]);
		assert_int_equal(strlen(ids[i]), QUEUE_ID_LEN);
		assert_true(queue_id_valid(ids[i]));
		if (i > 0)
			assert_true(strcmp(ids[i - 1], ids[i]) < 0);
	}
	qsort(ids, n, sizeof(*ids), compare_ids);
	for (i = 1; i < n; i++)
		assert_true(strcmp(ids[i - 1], ids[i]) != 0);
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	assert_false(queue_id_valid("../etc/passwd"));
	assert_true(queue_id_valid("0006287A1B2C3DKQ7ZWA"));
	assert_false(queue_id_valid("0006287A1B2C3DKQ7ZW"));	/* too short */
	assert_false(queue_id_valid("0006287A1B2C3DKQ7ZWAB"));	/* too long */
	assert_false(queue_id_valid("0006287a1b2c3dKQ7ZWA"));
	assert_false(queue_id_valid("0006287A1B2C3DKQ7ZW1"));
}

static void
test_roundtrip(void **state)
{
	struct queue_envelope	 env;
	char			*buf, why[128];
	size_t			 len;

	buf = sample_file(&len);
	memset(&env, 0, sizeof(env));
	assert_int_equal(queue_file_parse(buf, len, &env, why, sizeof(why)), QUEUE_PARSE_OK);
	assert_string_equal(env.sender, "alice@example.org");
	assert_string_equal(env.mail_params, " SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x1");
	assert_string_equal(env.client_addr, "192.0.2.7");
	assert_string_equal(env.client_name, "");
	assert_int_equal(env.nrcpts, 2);
	assert_string_equal(env.rcpts[1].mailbox, "\"carol smith\"@example.com");
	assert_string_equal(env.rcpts[0].params, " NOTIFY=FAILURE ORCPT=rfc822;bob@example.net");
	assert_int_equal(env.rcpts[0].state, QUEUE_RCPT_DELIVERED);
	assert_string_equal(env.rcpts[0].reply, "250 2.0.0  Ok");
	assert_int_equal(env.rcpts[1].state, QUEUE_RCPT_PENDING);
	assert_int_equal(env.attempts, 1);
	assert_int_equal(env.next_attempt, 1764390307);
	assert_int_equal(env.body_length, strlen(BODY));
	assert_memory_equal(buf + env.body_offset, BODY, strlen(BODY));
	queue_envelope_clear(&env);
	free(buf);
}

/* The head fed 1..n bytes: MORE until the body line, then OK. */
static void
test_head_incremental(void **state)
{
	struct queue_envelope	 env;
	char			*buf, why[128];
	size_t			 len, i, head_end = 0;
	enum queue_parse	 r;

	buf = sample_file(&len);
	memset(&env, 0, sizeof(env));
	for (i = 0; i <= len; i++) {
		r = queue_file_parse_head(buf, i, &env, why, sizeof(why));
		if (r == QUEUE_PARSE_OK) {
			if (head_end == 0)
				head_end = i;
			assert_int_equal(env.body_offset, head_end);
		} else
			assert_int_equal(r, QUEUE_PARSE_MORE);
	}
	assert_memory_equal(buf + head_end - 6 - QUEUE_FILE_LENGTH_WIDTH, "body ", 5);
	queue_envelope_clear(&env);
	free(buf);
}

/* Every prefix either parses (only past the end line) or is refused. */
static void
test_truncation(void **state)
{
	struct queue_envelope	 env, full;
	char			*buf, *copy, why[128];
	size_t			 len, i, body_end;

	buf = sample_file(&len);
	memset(&env, 0, sizeof(env));
	memset(&full, 0, sizeof(full));
	assert_int_equal(queue_file_parse(buf, len, &full, why, sizeof(why)), QUEUE_PARSE_OK);
	body_end = (size_t)(full.body_offset + full.body_length);
	for (i = 0; i < len; i++) {
		copy = xmalloc(i + 1);	/* exact size: ASan sees reads past the end */
		memcpy(copy, buf, i);
		if (queue_file_parse(copy, i, &env, why, sizeof(why)) == QUEUE_PARSE_OK) {
			assert_true(i >= body_end + QUEUE_FILE_END_LEN);
			/* A cut record is ignored: never a state it did not have. */
			assert_true(env.attempts <= full.attempts);
		}
		queue_envelope_clear(&env);
		free(copy);
	}
	queue_envelope_clear(&full);
	free(buf);
}

/* Each byte replaced by a few damaging values: parse or refuse, no crash. */
static void
test_damage(void **state)
{
	static const char	 bad[] = { '\0', '\n', ' ', 'x', '9', '\r' };
	struct queue_envelope	 env;
	char			*buf, *copy, why[128];
	size_t			 len, i, j;

	buf = sample_file(&len);
	memset(&env, 0, sizeof(env));
	copy = xmalloc(len);
	for (i = 0; i < len; i++)
		for (j = 0; j < sizeof(bad); j++) {
			memcpy(copy, buf, len);
			copy[i] = bad[j];
			(void)queue_file_parse(copy, len, &env, why, sizeof(why));
			queue_envelope_clear(&env);
		}
	/* A few specific refusals. */
	assert_int_equal(queue_file_parse("sluice-queue 2\n", 15, &env, why, sizeof(why)),
	    QUEUE_PARSE_BAD);
	assert_int_equal(queue_file_parse("hello", 5, &env, why, sizeof(why)),
	    QUEUE_PARSE_BAD);
	memcpy(copy, buf, len);
	memcpy(strstr(copy, "\nsender") + 1, "sendex", 6);
	assert_int_equal(queue_file_parse(copy, len, &env, why, sizeof(why)), QUEUE_PARSE_BAD);
	assert_non_null(strstr(why, "unknown field"));
	queue_envelope_clear(&env);
	free(copy);
	free(buf);
}

static void
test_records(void **state)
{
	struct queue_envelope	 env;
	char			*buf, *rec, why[128], *all;
	size_t			 len, rl, i;

	buf = sample_file(&len);
	memset(&env, 0, sizeof(env));
	rec = queue_file_format_result(1, QUEUE_RCPT_FAILED, 5, "550 5.1.1 no such user", &rl);
	all = xmalloc(len + rl);
	memcpy(all, buf, len);
	memcpy(all + len, rec, rl);
	assert_int_equal(queue_file_parse(all, len + rl, &env, why, sizeof(why)), QUEUE_PARSE_OK);
	assert_int_equal(env.rcpts[1].state, QUEUE_RCPT_FAILED);
	assert_string_equal(env.rcpts[1].reply, "550 5.1.1 no such user");
	/* Every cut of the last record: the old state. */
	for (i = 1; i < rl; i++) {
		assert_int_equal(queue_file_parse(all, len + i, &env, why, sizeof(why)),
		    QUEUE_PARSE_OK);
		assert_int_equal(env.rcpts[1].state, QUEUE_RCPT_PENDING);
	}
	/* A record for a recipient that does not exist: damage. */
	free(rec);
	rec = queue_file_format_result(2, QUEUE_RCPT_FAILED, 5, "x", &rl);
	memcpy(all + len, rec, rl);
	assert_int_equal(queue_file_parse(all, len + rl, &env, why, sizeof(why)),
	    QUEUE_PARSE_BAD);
	queue_envelope_clear(&env);
	free(rec);
	free(all);
	free(buf);
}

static char	 hook_id[QUEUE_ID_LEN + 1];

static void
record_committed(const char *id)
{
	memcpy(hook_id, id, sizeof(hook_id));
}

/* Write, commit, open, record, move, remove, through the folders. */
static void
test_write_commit_open(void **state)
{
	struct queue_envelope	 env;
	struct queue_writer	*w;
	struct queue_msg	*m, *m2;
	char			 why[128], id[QUEUE_ID_LEN + 1], body[64];
	int			 fd;
	off_t			 off, blen;

	sample_envelope(&env);
	assert_non_null(w = queue_writer_begin(&env));
	memcpy(id, env.id, sizeof(id));
	assert_int_equal(count_dir("incoming"), 1);
	assert_int_equal(queue_writer_write(w, BODY, 10), 0);
	assert_int_equal(queue_writer_write(w, BODY + 10, strlen(BODY) - 10), 0);
	assert_int_equal(queue_writer_finish(w), 0);
	queue_committed_hook = record_committed;
	assert_int_equal(queue_commit_now(w), 0);
	queue_committed_hook = NULL;
	assert_string_equal(hook_id, id);
	assert_int_equal(count_dir("incoming"), 0);
	assert_int_equal(count_dir("active"), 1);
	assert_int_equal(queue_msg_open(QUEUE_ACTIVE, id, 0, &m, why, sizeof(why)), 0);
	queue_msg_body(m, &fd, &off, &blen);
	assert_int_equal(blen, strlen(BODY));
	assert_int_equal(pread(fd, body, (size_t)blen, off), blen);
	assert_memory_equal(body, BODY, strlen(BODY));
	/* Locked: a second opener is refused without waiting. */
	assert_int_equal(queue_msg_open(QUEUE_ACTIVE, id, 0, &m2, why, sizeof(why)), -1);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_int_equal(queue_msg_record(m, 1, QUEUE_RCPT_DELIVERED, "250 ok"), 0);
	assert_int_equal(queue_msg_attempt(m, 1764399999), 0);
	assert_int_equal(queue_msg_move(m, QUEUE_DEFERRED), 0);
	queue_msg_close(&m);
	assert_int_equal(queue_msg_open(QUEUE_ACTIVE, id, 0, &m, why, sizeof(why)), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(queue_msg_find(id, 0, &m, why, sizeof(why)), 0);
	assert_int_equal(m->state, QUEUE_DEFERRED);
	assert_int_equal(m->env.rcpts[1].state, QUEUE_RCPT_DELIVERED);
	assert_int_equal(m->env.rcpts[0].state, QUEUE_RCPT_PENDING);
	assert_int_equal(m->env.attempts, 1);
	assert_int_equal(m->env.next_attempt, 1764399999);
	{
		char	(*due)[QUEUE_ID_LEN + 1];
		size_t	 ndue;

		assert_int_equal(queue_list_due(1764399998, &due, &ndue), 0);
		assert_int_equal(ndue, 0);
		free(due);
		assert_int_equal(queue_list_due(1764399999, &due, &ndue), 0);
		assert_int_equal(ndue, 1);
		assert_string_equal(due[0], id);
		free(due);
	}
	assert_int_equal(queue_msg_remove(&m), 0);
	assert_null(m);
	assert_int_equal(count_dir("deferred"), 0);
	queue_envelope_clear(&env);
}

/* A job's results in one append: all recorded and read back, or none. */
static void
test_record_many(void **state)
{
	static const size_t		 idx[] = { 1, 0 }, bad[] = { 0, 99 };
	static const enum queue_rcpt_state st[] = { QUEUE_RCPT_DELIVERED, QUEUE_RCPT_FAILED };
	static const char *const	 reply[] = { "250 ok", "550 5.1.1 no such user" };
	struct queue_envelope	 env;
	struct queue_writer	*w;
	struct queue_msg	*m;
	char			 why[128], id[QUEUE_ID_LEN + 1];

	(void)state;
	sample_envelope(&env);
	assert_non_null(w = queue_writer_begin(&env));
	memcpy(id, env.id, sizeof(id));
	assert_int_equal(queue_writer_write(w, BODY, strlen(BODY)), 0);
	assert_int_equal(queue_writer_finish(w), 0);
	assert_int_equal(queue_commit_now(w), 0);
	assert_int_equal(queue_msg_open(QUEUE_ACTIVE, id, 0, &m, why, sizeof(why)), 0);
	/* An index out of range records nothing, not even the valid one. */
	assert_int_equal(queue_msg_record_many(m, 2, bad, st, reply), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(m->env.rcpts[0].state, QUEUE_RCPT_PENDING);
	assert_int_equal(queue_msg_record_many(m, 0, idx, st, reply), 0);
	assert_int_equal(queue_msg_record_many(m, 2, idx, st, reply), 0);
	queue_msg_close(&m);
	assert_int_equal(queue_msg_open(QUEUE_ACTIVE, id, 0, &m, why, sizeof(why)), 0);
	assert_int_equal(m->env.rcpts[1].state, QUEUE_RCPT_DELIVERED);
	assert_string_equal(m->env.rcpts[1].reply, "250 ok");
	assert_int_equal(m->env.rcpts[0].state, QUEUE_RCPT_FAILED);
	assert_string_equal(m->env.rcpts[0].reply, "550 5.1.1 no such user");
	assert_int_equal(queue_msg_remove(&m), 0);
	queue_envelope_clear(&env);
}

static void
write_file(const char *state, const char *name, const char *data, size_t len)
{
	char	 path[PATH_MAX + 128];
	int	 fd;

	snprintf(path, sizeof(path), "%s/%s/%s", test_dir, state, name);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* Recovery: incoming emptied, active requeued, damage to corrupt/. */
static void
test_recover(void **state)
{
	struct queue_envelope	 env;
	struct queue_counts	 c;
	char			 id[QUEUE_ID_LEN + 1], id2[QUEUE_ID_LEN + 1];
	char			*buf;
	size_t			 len;

	buf = sample_file(&len);
	memset(&env, 0, sizeof(env));
	assert_int_equal(queue_file_parse(buf, len, &env, NULL, 0), QUEUE_PARSE_OK);
	write_file("incoming", env.id, buf, len - 10);
	write_file("active", env.id, buf, len);
	queue_id_new(id);
	write_file("deferred", id, buf, len);	/* id and file name differ */
	queue_id_new(id2);
	write_file("hold", id2, buf, len / 2);	/* cut in the body */
	write_file("deferred", "junk.tmp", "x", 1);
	assert_int_equal(queue_recover(&c), 0);
	assert_int_equal(c.removed, 1);
	assert_int_equal(c.requeued, 1);
	assert_int_equal(c.corrupt, 3);
	assert_int_equal(c.n[QUEUE_INCOMING], 0);
	assert_int_equal(c.n[QUEUE_ACTIVE], 0);
	assert_int_equal(c.n[QUEUE_DEFERRED], 1);
	assert_int_equal(c.n[QUEUE_HOLD], 0);
	assert_int_equal(c.n[QUEUE_CORRUPT], 3);
	queue_envelope_clear(&env);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_unique_sorted),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_head_incremental),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_damage),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_write_commit_open),
		cmocka_unit_test(test_record_many),
		cmocka_unit_test(test_recover),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
