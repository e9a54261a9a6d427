/*
 * queue_ctl.c - operator control of the relay queue.
 *
 * The daemon's side: folders at start (as root, then owned by the user
 * sluice runs as), recovery and the committer after the privilege drop,
 * counts per state on SIGUSR1, flush on SIGUSR2.
 *
 * `sluice queue list|show|delete|hold|release|flush` works on the files
 * directly with queue.c, taking the same per-file lock the daemon holds
 * while it changes a message: a message being delivered is refused
 * ("try again", exit 75) rather than changed under the delivery, so
 * nothing is lost or delivered twice.  flush signals the daemon named by
 * the pidfile with SIGUSR2.
 */
#include "autoconf.h"

#include <sys/file.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "module.h"
#include "queue.h"
#include "queue_ctl.h"
#include "sluice_filter.h"
#include "util.h"

#define EXIT_TEMPFAIL	75	/* sysexits EX_TEMPFAIL: locked, try again */

static int	 queue_ctl_list(int, char **);
static int	 queue_ctl_show(int, char **);
static int	 queue_ctl_change(int, char **);
static int	 queue_ctl_flush(const struct config *);
static int	 queue_daemon_lock(void);

/* --- The daemon's side --------------------------------------------------------- */

static int	 queue_daemon_ready;	/* folders made, recovered, committer running */
static int	 queue_daemon_wanted;	/* the start-up config has a relay listener */

static int
queue_config_relays(const struct config *cfg)
{
	size_t	 i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].mode == CONFIG_MODE_RELAY)
			return 1;
	return 0;
}

void
queue_daemon_prepare(const struct config *cfg, uid_t uid, gid_t gid)
{
	if (!(queue_daemon_wanted = queue_config_relays(cfg)))
		return;
	if (queue_init(cfg->queue.directory, cfg->queue.sync == 1 ? QUEUE_SYNC_SYNCFS :
	    QUEUE_SYNC_FDATASYNC, uid, gid) == -1)
		fatal("queue directory %s", cfg->queue.directory);
}

/* Recovery and the committer; -1 with errno when recovery cannot read. */
static int
queue_daemon_open(void)
{
	struct queue_counts	 c;

	if (queue_daemon_lock() == -1)
		return -1;
	if (queue_recover(&c) == -1)
		return -1;
	log_info("queue ready dir=%s active=%zu deferred=%zu hold=%zu corrupt=%zu "
	    "removed_uncommitted=%zu requeued=%zu moved_corrupt=%zu", queue_dir(),
	    c.n[QUEUE_ACTIVE], c.n[QUEUE_DEFERRED], c.n[QUEUE_HOLD], c.n[QUEUE_CORRUPT],
	    c.removed, c.requeued, c.corrupt);
	queue_committer_start();
	queue_daemon_ready = 1;
	return 0;
}

/*
 * One daemon per queue directory: recovery takes every file as this
 * instance's own (it empties incoming/, re-queues active/), so a second
 * instance on the same directory would deliver, or remove, the first
 * one's messages.  The lock is held for the life of the process.
 */
static int
queue_daemon_lock(void)
{
	static int	 fd = -1;
	char		 path[PATH_MAX];
	int		 e;

	if (fd != -1)
		return 0;
	snprintf(path, sizeof(path), "%s/lock", queue_dir());
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	e = errno;
	close(fd);
	fd = -1;
	errno = e == EWOULDBLOCK ? EBUSY : e;
	return -1;
}

void
queue_daemon_start(void)
{
	if (!queue_daemon_wanted || queue_daemon_open() == 0)
		return;
	if (errno == EBUSY)
		fatalx("queue directory %s is in use by another running sluice: each "
		    "instance needs its own", queue_dir());
	fatal("queue recovery in %s", queue_dir());
}

int
queue_daemon_reload(const struct config *cfg, char *err, size_t errlen)
{
	if (queue_daemon_ready) {
		if (strcmp(cfg->queue.directory, queue_dir()) != 0)
			log_warnx("reload: queue directory %s takes effect at the next start; "
			    "still using %s", cfg->queue.directory, queue_dir());
		return 0;
	}
	if (!queue_config_relays(cfg))
		return 0;
	if (queue_init(cfg->queue.directory, cfg->queue.sync == 1 ? QUEUE_SYNC_SYNCFS :
	    QUEUE_SYNC_FDATASYNC, (uid_t)-1, (gid_t)-1) == -1 || queue_daemon_open() == -1) {
		snprintf(err, errlen, "queue directory %s: %s", cfg->queue.directory,
		    strerror(errno));
		return -1;
	}
	return 0;
}

void
queue_daemon_stop(void)
{
	queue_committer_stop();
}

void
queue_daemon_status(void)
{
	struct queue_counts	 c;
	struct queue_stats	 st;

	if (!queue_daemon_ready)
		return;
	queue_count(&c);
	queue_stats_get(&st);
	log_info("queue status incoming=%zu active=%zu deferred=%zu hold=%zu corrupt=%zu "
	    "committed=%llu groups=%llu syncs=%llu", c.n[QUEUE_INCOMING], c.n[QUEUE_ACTIVE],
	    c.n[QUEUE_DEFERRED], c.n[QUEUE_HOLD], c.n[QUEUE_CORRUPT],
	    (unsigned long long)st.messages, (unsigned long long)st.groups,
	    (unsigned long long)st.syncs);
}

void
queue_daemon_flush(void)
{
	struct queue_counts	 c;

	if (!queue_daemon_ready) {
		log_info("queue flush requested: no relay-mode listener, no queue");
		return;
	}
	queue_count(&c);
	log_info("queue flush requested deferred=%zu scheduler=%s", c.n[QUEUE_DEFERRED],
	    queue_flush_hook != NULL ? "yes" : "none");
	if (queue_flush_hook != NULL)
		queue_flush_hook();
}

/* --- sluice -t ------------------------------------------------------------- */

static int
queue_addr_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	return ss->ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
}

int
queue_config_warnings(const struct config *cfg, FILE *fp)
{
	const struct config_listener	*l;
	size_t				 i, j;
	int				 n = 0, relay, open;

	for (i = 0; i < cfg->nlisteners; i++) {
		l = &cfg->listeners[i];
		if (l->mode != CONFIG_MODE_RELAY)
			continue;
		for (j = 0, relay = 0; j < l->nchain; j++)
			if (strcmp(l->chain_refs[j]->module->desc->name, "relay") == 0)
				relay = 1;
		for (j = 0, open = 0; j < l->nlisten; j++)
			if (!queue_addr_loopback(&l->addrs[j]))
				open = 1;
		if (open && !relay) {
			fprintf(fp, "sluice: warning: listener \"%s\" relays mail for anyone "
			    "who reaches it: mode = relay on a non-loopback address with no "
			    "relay filter in its chain\n", l->name);
			n++;
		}
	}
	return n;
}

/* --- sluice queue ------------------------------------------------------------ */

static void
queue_ctl_usage(void)
{
	fprintf(stderr, "usage: sluice [-c file] queue list [STATE]\n"
	    "       sluice [-c file] queue show|delete|hold|release ID\n"
	    "       sluice [-c file] queue flush\n");
}

int
queue_ctl_main(const char *config_path, int argc, char **argv)
{
	struct config	*cfg;
	char		*err = xcalloc(1, CONFIG_ERR_MAX);
	int		 rc;

	if (argc < 1) {
		queue_ctl_usage();
		free(err);
		return 2;
	}
	if (config_load(config_path, &cfg, err, CONFIG_ERR_MAX) == -1) {
		fprintf(stderr, "%ssluice: %s: configuration is not valid\n", err, config_path);
		free(err);
		return 1;
	}
	free(err);
	if (queue_use(cfg->queue.directory) == -1) {
		fprintf(stderr, "sluice: no queue at %s (%s); the daemon creates it at "
		    "start\n", cfg->queue.directory, strerror(errno));
		config_free(&cfg);
		return 1;
	}
	if (strcmp(argv[0], "list") == 0)
		rc = queue_ctl_list(argc, argv);
	else if (strcmp(argv[0], "show") == 0)
		rc = queue_ctl_show(argc, argv);
	else if (strcmp(argv[0], "delete") == 0 || strcmp(argv[0], "hold") == 0 ||
	    strcmp(argv[0], "release") == 0)
		rc = queue_ctl_change(argc, argv);
	else if (strcmp(argv[0], "flush") == 0 && argc == 1)
		rc = queue_ctl_flush(cfg);
	else {
		queue_ctl_usage();
		rc = 2;
	}
	config_free(&cfg);
	return rc;
}

static size_t
queue_ctl_pending(const struct queue_envelope *env)
{
	size_t	 i, n = 0;

	for (i = 0; i < env->nrcpts; i++)
		if (env->rcpts[i].state == QUEUE_RCPT_PENDING ||
		    env->rcpts[i].state == QUEUE_RCPT_DEFERRED)
			n++;
	return n;
}

static void
queue_ctl_time(int64_t t, char *buf, size_t size)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One line per message: id, state, arrival, size, sender, recipients left. */
static void
queue_ctl_list_state(enum queue_state st)
{
	char			(*ids)[QUEUE_ID_LEN + 1], why[200], when[32];
	struct queue_msg	*m;
	size_t			 n, i;

	if (queue_list(st, &ids, &n) == -1)
		return;
	for (i = 0; i < n; i++) {
		if (st == QUEUE_CORRUPT) {
			printf("%s corrupt\n", ids[i]);
			continue;
		}
		/* Waiting would stall the listing behind a delivery: peek unlocked. */
		if (queue_msg_open(st, ids[i], 0, &m, why, sizeof(why)) != 0) {
			printf("%s %s %s\n", ids[i], queue_state_name(st),
			    errno == EWOULDBLOCK ? "busy" : "unreadable");
			continue;
		}
		queue_ctl_time(m->env.arrival, when, sizeof(when));
		printf("%s %s %s size=%lld from=<%s> rcpts=%zu pending=%zu attempts=%u\n",
		    ids[i], queue_state_name(st), when, (long long)m->env.body_length,
		    m->env.sender, m->env.nrcpts, queue_ctl_pending(&m->env), m->env.attempts);
		queue_msg_close(&m);
	}
	free(ids);
}

static int
queue_ctl_list(int argc, char **argv)
{
	int	 st;

	if (argc > 2) {
		queue_ctl_usage();
		return 2;
	}
	if (argc == 2) {
		if ((st = queue_state_from_name(argv[1])) == -1 || st == QUEUE_INCOMING) {
			fprintf(stderr, "sluice: no queue state \"%s\" (active, deferred, hold, "
			    "corrupt)\n", argv[1]);
			return 2;
		}
		queue_ctl_list_state((enum queue_state)st);
		return 0;
	}
	for (st = QUEUE_ACTIVE; st < QUEUE_NSTATES; st++)
		queue_ctl_list_state((enum queue_state)st);
	return 0;
}

/* Open ID for a subcommand, with the messages an operator needs. */
static int
queue_ctl_open(const char *id, struct queue_msg **m)
{
	char	 why[200];
	int	 r;

	if (!queue_id_valid(id)) {
		fprintf(stderr, "sluice: \"%s\" is not a queue id\n", id);
		return 2;
	}
	if ((r = queue_msg_find(id, 0, m, why, sizeof(why))) == 0)
		return 0;
	if (r == -2)
		fprintf(stderr, "sluice: %s: %s\n", id, why);
	else if (errno == EWOULDBLOCK)
		fprintf(stderr, "sluice: %s is being delivered now; try again\n", id);
	else if (errno == ENOENT)
		fprintf(stderr, "sluice: %s: no such message in the queue\n", id);
	else
		fprintf(stderr, "sluice: %s: %s\n", id, strerror(errno));
	return r == -1 && errno == EWOULDBLOCK ? EXIT_TEMPFAIL : 1;
}

static int
queue_ctl_show(int argc, char **argv)
{
	struct queue_msg	*m;
	char			 when[32];
	size_t			 i;
	int			 rc;

	if (argc != 2) {
		queue_ctl_usage();
		return 2;
	}
	if ((rc = queue_ctl_open(argv[1], &m)) != 0)
		return rc;
	queue_ctl_time(m->env.arrival, when, sizeof(when));
	printf("id: %s\nstate: %s\narrival: %s\nsender: <%s>\nmail-params:%s\n"
	    "client: %s [%s] helo=%s\nsize: %lld\nattempts: %u\n", m->env.id,
	    queue_state_name(m->state), when, m->env.sender, m->env.mail_params,
	    m->env.client_name, m->env.client_addr, m->env.client_helo,
	    (long long)m->env.body_length, m->env.attempts);
	queue_ctl_time(m->env.next_attempt, when, sizeof(when));
	printf("next-attempt: %s\n", when);
	for (i = 0; i < m->env.nrcpts; i++)
		printf("rcpt: <%s>%s state=%s%s%s\n", m->env.rcpts[i].mailbox,
		    m->env.rcpts[i].params, queue_rcpt_state_name(m->env.rcpts[i].state),
		    m->env.rcpts[i].reply != NULL ? " reply=" : "",
		    m->env.rcpts[i].reply != NULL ? m->env.rcpts[i].reply : "");
	queue_msg_close(&m);
	return 0;
}

/* delete of a file in corrupt/, which does not open as a message. */
static int
queue_ctl_delete_corrupt(const char *id)
{
	char	 path[4096];

	if (queue_path(path, sizeof(path), QUEUE_CORRUPT, id) == -1 || unlink(path) == -1)
		return -1;
	(void)queue_fsync_state(QUEUE_CORRUPT);
	printf("%s deleted from corrupt\n", id);
	return 0;
}

static int
queue_ctl_apply(const char *cmd, struct queue_msg **m)
{
	enum queue_state	 from = (*m)->state;
	char			 id[QUEUE_ID_LEN + 1];

	memcpy(id, (*m)->env.id, sizeof(id));
	if (strcmp(cmd, "delete") == 0) {
		if (queue_msg_remove(m) == -1)
			return -1;
		log_info("%s queue deleted by operator from=%s", id, queue_state_name(from));
	} else if (strcmp(cmd, "hold") == 0) {
		if (from == QUEUE_HOLD)
			return 0;
		if (queue_msg_move(*m, QUEUE_HOLD) == -1)
			return -1;
		log_info("%s queue held by operator from=%s", id, queue_state_name(from));
	} else {
		if (from != QUEUE_HOLD) {
			fprintf(stderr, "sluice: %s is not on hold (%s)\n", id,
			    queue_state_name(from));
			errno = 0;
			return -1;
		}
		/* Due now: the scheduler picks it up at its next scan or flush. */
		if (queue_msg_schedule(*m, (int64_t)time(NULL)) == -1 ||
		    queue_msg_move(*m, QUEUE_DEFERRED) == -1)
			return -1;
		log_info("%s queue released by operator to=deferred", id);
	}
	return 0;
}

static int
queue_ctl_change(int argc, char **argv)
{
	struct queue_msg	*m;
	int			 rc;

	if (argc != 2) {
		queue_ctl_usage();
		return 2;
	}
	if ((rc = queue_ctl_open(argv[1], &m)) != 0) {
		if (rc == 1 && strcmp(argv[0], "delete") == 0 &&
		    queue_ctl_delete_corrupt(argv[1]) == 0)
			return 0;
		return rc;
	}
	if (queue_ctl_apply(argv[0], &m) == -1) {
		if (errno != 0)
			fprintf(stderr, "sluice: %s %s: %s\n", argv[0], argv[1], strerror(errno));
		queue_msg_close(&m);
		return 1;
	}
	queue_msg_close(&m);
	return 0;
}

static int
queue_ctl_flush(const struct config *cfg)
{
	FILE	*fp;
	long	 pid = 0;

	if (cfg->pidfile == NULL) {
		fprintf(stderr, "sluice: flush needs the daemon's pidfile (set pidfile in "
		    "%s)\n", cfg->path);
		return 1;
	}
	if ((fp = fopen(cfg->pidfile, "r")) == NULL || fscanf(fp, "%ld", &pid) != 1 ||
	    pid <= 1) {
		fprintf(stderr, "sluice: %s: no daemon pid (is sluice running?)\n",
		    cfg->pidfile);
		if (fp != NULL)
			fclose(fp);
		return 1;
	}
	fclose(fp);
	if (kill((pid_t)pid, SIGUSR2) == -1) {
		fprintf(stderr, "sluice: signal to pid %ld: %s\n", pid, strerror(errno));
		return 1;
	}
	printf("flush requested from pid %ld\n", pid);
	return 0;
}
