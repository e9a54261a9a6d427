/*
 * main.c - sluice(8): command line, start-up, privilege drop, signals,
 * reload and shutdown.
 *
 * Start-up order matters: the configuration is loaded (plugins too) and
 * its listen addresses bound while still root; the user and group are
 * looked up; then the process enters the optional chroot, drops to the
 * configured user (keeping only CAP_NET_BIND_SERVICE, so a reload can bind
 * a new port below 1024, and with no_new_privs set, so nothing it runs
 * can gain privileges), and only then do the worker threads start
 * reading client bytes.  Files are created with umask 077.
 */
#include "autoconf.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "chain.h"
#include "config.h"
#include "deliver.h"
#include "explain.h"
#include "generation.h"
#include "store.h"
#include "listener.h"
#include "log.h"
#include "module.h"
#include "pool.h"
#include "queue_ctl.h"
#include "session.h"
#include "util.h"
#include "worker.h"

#define DRAIN_POLL_MS		100

struct daemon_state {
	const char		*config_path;	/* -c */
	int			 foreground;	/* -f */
	struct event_base	*base;		/* main loop */
	struct event		*drain_timer;	/* SIGTERM: polls session count */
	uint64_t		 drain_deadline;/* monotonic ms */
	int			 draining;	/* SIGTERM seen */
	int			 killed;	/* sessions were told to go */
	char			*pidfile;	/* written, removed at exit */
};

static struct daemon_state	 daemon_state;

/* Who the daemon becomes, looked up before a chroot hides /etc/passwd. */
struct daemon_ids {
	int		 drop;		/* started as root with a user: drop */
	uid_t		 uid;
	gid_t		 gid;
};

static void	 privileges_resolve(const struct config *, struct daemon_ids *);
static void	 prepare_state_dirs(const struct config *, const struct daemon_ids *);
static void	 enter_chroot(const struct config *);
static void	 drop_privileges(const struct config *, const struct daemon_ids *);
static void	 prepare_spool_dir(const struct config *, const struct daemon_ids *);
static void	 write_pidfile(const struct config *, const struct daemon_ids *);

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: sluice [-fhotV] [-c file]\n"
	    "       sluice [-c file] queue list|show ID|delete ID|hold ID|release ID|flush\n"
	    "       sluice --explain [-c file] --client IP --helo NAME --from ADDR\n"
	    "              --to ADDR [--to ADDR ...] [--listener NAME] < message\n"
	    "  -c file  configuration file (default %s/sluice.conf)\n"
	    "  -f       stay in the foreground\n"
	    "  -t       check the configuration and exit\n"
	    "  -o       print each listener's filter chain and exit\n"
	    "  -V       print the version and exit\n"
	    "  -h       this help\n"
	    "  --explain  run the listener's filter chain on a saved message, offline,\n"
	    "             and print every filter's verdict (exit 0 accepted, 1 rejected,\n"
	    "             2 tempfailed, 3 bad config or arguments)\n", SLUICE_CONFDIR);
}

static void
print_hooks(const struct sluice_module *m)
{
	struct filter_instance	 fi;
	struct filter_instance	*one = &fi;
	unsigned int		 mask;
	int			 p, first = 1;

	memset(&fi, 0, sizeof(fi));
	fi.desc = m;
	mask = chain_hook_mask(&one, 1);
	printf(" hooks=");
	for (p = 0; p < SLUICE_PHASE_COUNT; p++)
		if (mask & (1u << p)) {
			printf("%s%s", first ? "" : ",", chain_phase_name((enum sluice_phase)p));
			first = 0;
		}
	if (first)
		printf("none");
}

/* sluice -o: every listener, its backend and its chain in order. */
static int
print_chains(const struct config *cfg)
{
	size_t	 i, j;

	for (i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener	*l = &cfg->listeners[i];
		const struct config_backend	*b = l->backend_ref;

		printf("listener \"%s\"", l->name);
		for (j = 0; j < l->nlisten; j++)
			printf("%s%s", j ? ", " : " on ", l->listen[j]);
		if (l->mode == CONFIG_MODE_RELAY)
			printf("\n  relay mode (queue %s)\n", cfg->queue.directory);
		if (b == NULL)
			goto chain;
		printf("\n  backend \"%s\" (%s", b->name, config_backend_type_name(b->type));
		if (b->type == CONFIG_BACKEND_MAILDIR)
			printf(" %s", b->maildir);
		for (j = 0; j < b->nservers; j++)
			printf("%s%s", j ? ", " : " ", b->servers[j]);
		printf(")\n");
chain:
		if (l->nchain == 0)
			printf("  chain: empty\n");
		for (j = 0; j < l->nchain; j++) {
			const struct config_filter *f = l->chain_refs[j];

			printf("  %zu. %s (%s) mode=%s on_error=%s timeout=%lldms", j + 1,
			    f->name, f->module->desc->name, config_filter_mode_name(f->mode),
			    config_on_error_name(f->on_error), f->timeout_ms);
			print_hooks(f->module->desc);
			printf("\n");
		}
	}
	return 0;
}

static int
check_config(const char *path, int print)
{
	struct generation	*g;
	char			*err = xcalloc(1, CONFIG_ERR_MAX);
	int			 rc = 0;

	/* A whole generation: the resolver and every filter's init are checked too. */
	if ((g = generation_build(path, err, CONFIG_ERR_MAX)) == NULL) {
		fprintf(stderr, "%s", err);
		if (err[0] != '\0' && err[strlen(err) - 1] != '\n')
			fputc('\n', stderr);
		fprintf(stderr, "sluice: %s: configuration is not valid\n", path);
		rc = 1;
	} else {
		if (print)
			print_chains(g->cfg);
		else {
			queue_config_warnings(g->cfg, stderr);
			printf("sluice: %s: configuration is valid\n", path);
		}
		generation_free(g);
	}
	store_shutdown();
	free(err);
	return rc;
}

/* --- Privileges ------------------------------------------------------------- */

static void
keep_bind_capability(void)
{
	struct __user_cap_header_struct	 hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct	 data[2];

	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
	if (syscall(SYS_capset, &hdr, data) == -1)
		log_warn("capset CAP_NET_BIND_SERVICE; reloads cannot bind ports below 1024");
}

/* Look the user and group up while /etc/passwd is still reachable. */
static void
privileges_resolve(const struct config *cfg, struct daemon_ids *ids)
{
	struct passwd	*pw;

	memset(ids, 0, sizeof(*ids));
	if (geteuid() != 0) {
		if (cfg->chroot != NULL)
			fatalx("%s: chroot \"%s\" needs sluice to be started as root",
			    cfg->path, cfg->chroot);
		return;
	}
	if (cfg->user == NULL)
		fatalx("%s: started as root without \"user\": refusing to serve as root",
		    cfg->path);
	if ((pw = getpwnam(cfg->user)) == NULL)
		fatalx("%s: user \"%s\" does not exist", cfg->path, cfg->user);
	ids->drop = 1;
	ids->uid = pw->pw_uid;
	ids->gid = pw->pw_gid;
	if (cfg->group != NULL) {
		struct group	*gr = getgrnam(cfg->group);

		if (gr == NULL)
			fatalx("%s: group \"%s\" does not exist", cfg->path, cfg->group);
		ids->gid = gr->gr_gid;
	}
}

/*
 * After the listeners are bound and the plugins loaded, before the drop:
 * from here on every path (spool, maildir, pidfile removal, and on reload
 * the config, plugins, resolv.conf, trust anchor) is inside dir.
 */
static void
enter_chroot(const struct config *cfg)
{
	if (cfg->chroot == NULL)
		return;
	if (chroot(cfg->chroot) == -1)
		fatal("chroot %s", cfg->chroot);
	if (chdir("/") == -1)
		fatal("chdir / in chroot %s", cfg->chroot);
	log_info("chroot dir=%s", cfg->chroot);
}

static void
drop_privileges(const struct config *cfg, const struct daemon_ids *ids)
{
	/* Neither plugins nor anything they exec may gain privileges (setuid, fcaps). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl PR_SET_NO_NEW_PRIVS");
	if (!ids->drop) {
		if (cfg->user != NULL)
			log_info("not started as root: running as uid %ld, \"user\" ignored",
			    (long)geteuid());
		return;
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == -1)
		fatal("prctl PR_SET_KEEPCAPS");
	if (setgroups(1, &ids->gid) == -1 || setresgid(ids->gid, ids->gid, ids->gid) == -1 ||
	    setresuid(ids->uid, ids->uid, ids->uid) == -1)
		fatal("dropping privileges to %s", cfg->user);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1)
		fatal("prctl PR_SET_KEEPCAPS");
	keep_bind_capability();
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	log_info("running as user=%s uid=%ld gid=%ld no_new_privs=1", cfg->user,
	    (long)ids->uid, (long)ids->gid);
}

/* The spool and (relay mode) the queue folders, owned by the user we run as. */
static void
prepare_state_dirs(const struct config *cfg, const struct daemon_ids *ids)
{
	prepare_spool_dir(cfg, ids);
	queue_daemon_prepare(cfg, ids->drop ? ids->uid : (uid_t)-1,
	    ids->drop ? ids->gid : (gid_t)-1);
}

/* The spool directory must exist and belong to the user we run as. */
static void
prepare_spool_dir(const struct config *cfg, const struct daemon_ids *ids)
{
	if (mkdir(cfg->spool_dir, 0700) == -1 && errno != EEXIST)
		fatal("mkdir %s", cfg->spool_dir);
	if (ids->drop && chown(cfg->spool_dir, ids->uid, ids->gid) == -1)
		fatal("chown %s", cfg->spool_dir);
}

static void
raise_fd_limit(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
write_pidfile(const struct config *cfg, const struct daemon_ids *ids)
{
	FILE		*fp;

	if (cfg->pidfile == NULL)
		return;
	if ((fp = fopen(cfg->pidfile, "w")) == NULL)
		fatal("pidfile %s", cfg->pidfile);
	fprintf(fp, "%ld\n", (long)getpid());
	/* Ours after the privilege drop, so we can remove it at exit. */
	if (ids->drop)
		(void)!fchown(fileno(fp), ids->uid, ids->gid);
	if (fclose(fp) != 0)
		fatal("pidfile %s", cfg->pidfile);
	daemon_state.pidfile = xstrdup(cfg->pidfile);
}

static void
daemonize(void)
{
	int	 fd;

	switch (fork()) {
	case -1:
		fatal("fork");
	case 0:
		break;
	default:
		_exit(0);
	}
	if (setsid() == -1)
		fatal("setsid");
	if (chdir("/") == -1)
		fatal("chdir /");
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

/* --- Signals: reload, shutdown ----------------------------------------------- */

static void
reload(void)
{
	struct generation	*g;
	char			*err = xcalloc(1, CONFIG_ERR_MAX);
	char			*line, *save = NULL;

	log_info("reload requested config=%s", daemon_state.config_path);
	if ((g = generation_build(daemon_state.config_path, err, CONFIG_ERR_MAX)) == NULL ||
	    queue_daemon_reload(g->cfg, err, CONFIG_ERR_MAX) == -1 ||
	    listener_prepare(g, err, CONFIG_ERR_MAX) == -1) {
		for (line = strtok_r(err, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			log_warnx("reload failed: %s", line);
		log_warnx("reload failed: keeping the running configuration");
		if (g != NULL)
			generation_free(g);
		free(err);
		return;
	}
	free(err);
	generation_set_current(g);
	listener_commit(g);
	log_info("reload done generation=%llu listeners=%zu generations_alive=%d",
	    (unsigned long long)g->number, listener_count(), generation_live_count());
}

static void
drain_tick(evutil_socket_t fd, short events, void *arg)
{
	struct timeval	 tv = { 0, DRAIN_POLL_MS * 1000 };
	long		 left = session_count() + deliver_busy();

	if (left == 0) {
		log_info("shutdown: all sessions finished");
		event_base_loopexit(daemon_state.base, NULL);
		return;
	}
	if (!daemon_state.killed && monotonic_ms() >= daemon_state.drain_deadline) {
		log_info("shutdown: drain timeout, closing %ld sessions with 421", left);
		daemon_state.killed = 1;
		workers_post_all(session_kill_all, NULL);
		deliver_cancel();
		daemon_state.drain_deadline = monotonic_ms() + 5000;
	} else if (daemon_state.killed && monotonic_ms() >= daemon_state.drain_deadline) {
		log_warnx("shutdown: %ld sessions did not close; exiting", left);
		event_base_loopexit(daemon_state.base, NULL);
		return;
	}
	evtimer_add(daemon_state.drain_timer, &tv);
}

static void
shutdown_begin(void)
{
	struct generation	*g;
	struct timeval		 tv = { 0, 0 };

	if (daemon_state.draining)
		return;
	daemon_state.draining = 1;
	g = generation_acquire();
	daemon_state.drain_deadline = monotonic_ms() + (uint64_t)g->cfg->drain_timeout_ms;
	log_info("shutdown requested: draining %ld sessions for up to %lldms", session_count(),
	    g->cfg->drain_timeout_ms);
	generation_unref(g);
	listener_close_all();
	workers_post_all(session_drain_all, NULL);
	deliver_drain();
	daemon_state.drain_timer = evtimer_new(daemon_state.base, drain_tick, NULL);
	evtimer_add(daemon_state.drain_timer, &tv);
}

static void
signal_cb(evutil_socket_t sig, short events, void *arg)
{
	switch (sig) {
	case SIGHUP:
		if (!daemon_state.draining)
			reload();
		break;
	case SIGTERM:
	case SIGINT:
		shutdown_begin();
		break;
	case SIGUSR1:
		log_info("status sessions=%ld generations_alive=%d listeners=%zu",
		    session_count(), generation_live_count(), listener_count());
		queue_daemon_status();
		deliver_status();
		break;
	case SIGUSR2:
		queue_daemon_flush();
		break;
	default:
		break;
	}
}

/* --- main ------------------------------------------------------------------- */

static int
run_daemon(void)
{
	struct generation	*g;
	struct event		*sigs[5];
	static const int	 signums[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2 };
	char			*err = xcalloc(1, CONFIG_ERR_MAX);
	struct daemon_ids	 ids;
	size_t			 i;
	int			 n;

	/* Spool files 0600, directories 0700: nothing of ours for others to read. */
	umask(077);
	if ((g = generation_build(daemon_state.config_path, err, CONFIG_ERR_MAX)) == NULL) {
		fprintf(stderr, "%s%ssluice: %s: configuration is not valid\n", err,
		    err[0] != '\0' && err[strlen(err) - 1] != '\n' ? "\n" : "",
		    daemon_state.config_path);
		return 1;
	}
	log_set_level((enum log_level)g->cfg->log_level);
	n = g->cfg->workers > 0 ? (int)g->cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > WORKERS_MAX)
		n = WORKERS_MAX;
	listener_set_workers(n);
	/* Start-up errors so far went to stderr, where the operator looks. */
	if (listener_prepare(g, err, CONFIG_ERR_MAX) == -1)
		fatalx("%s", err);
	free(err);
	raise_fd_limit();
	privileges_resolve(g->cfg, &ids);
	if (g->cfg->chroot == NULL)
		prepare_state_dirs(g->cfg, &ids);
	if (!daemon_state.foreground)
		daemonize();
	/* syslog's socket is opened here (LOG_NDELAY), before any chroot. */
	log_init("sluice", g->cfg->log_stderr, g->cfg->log_facility);
	write_pidfile(g->cfg, &ids);
	enter_chroot(g->cfg);
	if (g->cfg->chroot != NULL)
		prepare_state_dirs(g->cfg, &ids);
	drop_privileges(g->cfg, &ids);
	signal(SIGPIPE, SIG_IGN);
	/* A file past RLIMIT_FSIZE: EFBIG and a 452, not a dead daemon. */
	signal(SIGXFSZ, SIG_IGN);
	worker_threads_init();
	if ((daemon_state.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	worker_main_init(daemon_state.base);
	for (i = 0; i < nitems(signums); i++) {
		sigs[i] = evsignal_new(daemon_state.base, signums[i], signal_cb, NULL);
		evsignal_add(sigs[i], NULL);
	}
	pool_start((int)g->cfg->pool_threads);
	queue_daemon_start();
	workers_start(n);
	generation_set_current(g);
	/* Relay deliveries: after recovery, with a current generation. */
	deliver_start();
	listener_commit(g);
	log_info("started version=%s generation=%llu workers=%d listeners=%zu",
	    PACKAGE_VERSION, (unsigned long long)g->number, n, listener_count());
	event_base_dispatch(daemon_state.base);
	deliver_stop();
	workers_stop();
	pool_stop();
	queue_daemon_stop();
	/* Requests still waiting on a store get their callback, then go. */
	store_shutdown();
	/* Every session is gone: run the filters' fini and free the config. */
	generation_shutdown();
	if (daemon_state.pidfile != NULL)
		(void)unlink(daemon_state.pidfile);
	log_info("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "explain", no_argument, NULL, 'E' },
		{ "client", required_argument, NULL, 'C' },
		{ "helo", required_argument, NULL, 'H' },
		{ "from", required_argument, NULL, 'F' },
		{ "to", required_argument, NULL, 'T' },
		{ "listener", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct explain_args	 ex;
	int			 ch, test = 0, print = 0, explain = 0;

	memset(&ex, 0, sizeof(ex));
	module_set_owner(geteuid());
	daemon_state.config_path = SLUICE_CONFDIR "/sluice.conf";
	log_init("sluice", 1, 0);
	while ((ch = getopt_long(argc, argv, "c:fhotV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'E':
			explain = 1;
			break;
		case 'C':
			ex.client = optarg;
			break;
		case 'H':
			ex.helo = optarg;
			break;
		case 'F':
			ex.from = optarg;
			break;
		case 'T':
			ex.to = xreallocarray(ex.to, ex.nto + 1, sizeof(*ex.to));
			ex.to[ex.nto++] = optarg;
			break;
		case 'L':
			ex.listener = optarg;
			break;
		case 'c':
			daemon_state.config_path = optarg;
			break;
		case 'f':
			daemon_state.foreground = 1;
			break;
		case 'o':
			print = 1;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("sluice %s (filter ABI %u)\n", PACKAGE_VERSION,
			    SLUICE_FILTER_ABI_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc && strcmp(argv[optind], "queue") == 0)
		return queue_ctl_main(daemon_state.config_path, argc - optind - 1,
		    argv + optind + 1);
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (explain) {
		if (ex.client == NULL || ex.helo == NULL || ex.from == NULL || ex.nto == 0) {
			fprintf(stderr, "sluice: --explain needs --client, --helo, --from and "
			    "at least one --to\n");
			free(ex.to);
			return 2;
		}
		ch = explain_run(daemon_state.config_path, &ex);
		free(ex.to);
		return ch;
	}
	if (test || print)
		return check_config(daemon_state.config_path, print);
	/* Reloads happen after chdir("/"): keep the path absolute. */
	if (daemon_state.config_path[0] != '/') {
		char	*abs = realpath(daemon_state.config_path, NULL);

		if (abs == NULL) {
			fprintf(stderr, "sluice: %s: %s\n", daemon_state.config_path,
			    strerror(errno));
			return 1;
		}
		daemon_state.config_path = abs;
	}
	return run_daemon();
}
