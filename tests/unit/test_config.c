/*
 * test_config.c - config_load(): a full config with every field, the
 * defaults and the inheritance of limits; a table of bad configs, each
 * with the exact "file:line: what is wrong" it must produce; includes
 * relative to the including file; braces in strings and comments; every
 * prefix of a good config and random bytes (no crash, errors well
 * formed); plugins named by "load"; and the sluice_option_*() accessors.
 *
 * The config parser reads whole files, so "fed 1..n bytes at a time"
 * becomes "cut after every byte": each prefix is a file of its own.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "module.h"
#include "sluice_filter.h"

#ifndef TEST_BUILDDIR
#define TEST_BUILDDIR "."
#endif

#define ERR_MAX	16384

/* --- Built-ins of this test: options of every type -------------------------- */

static const struct sluice_option testmod_options[] = {
	{ "phase", SLUICE_OPT_STRING, NULL, 1, "the phase" },
	{ "patterns", SLUICE_OPT_STRING_LIST, "{ \"*\" }", 0, "patterns" },
	{ "count", SLUICE_OPT_INT, "3", 0, "an integer" },
	{ "enabled", SLUICE_OPT_BOOL, "yes", 0, "a boolean" },
	{ "delay", SLUICE_OPT_DURATION, "1500ms", 0, "a duration" },
	{ "limit", SLUICE_OPT_SIZE, "2k", 0, "a size" },
	{ "note", SLUICE_OPT_STRING, NULL, 0, "an optional string" },
	{ NULL, 0, NULL, 0, NULL }
};

static const struct sluice_module testmod = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "testmod",
	.options = testmod_options,
};

static const struct sluice_option other_options[] = {
	{ "color", SLUICE_OPT_STRING, "red", 0, "a colour" },
	{ NULL, 0, NULL, 0, NULL }
};

static const struct sluice_module other = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "other",
	.options = other_options,
};

static const struct sluice_module *const builtins[] = { &testmod, &other, NULL };

const struct sluice_module *const *
module_builtins(void)
{
	return builtins;
}

/* --- Fixture ------------------------------------------------------------------ */

static char	 tmpdir[64];
static char	 startdir[PATH_MAX];

/* tmpdir/rel, with its directories. */
static char *
path_of(const char *rel)
{
	static char	 buf[4][PATH_MAX];
	static int	 which;
	char		*p = buf[which++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, rel);
	return p;
}

static void
write_bytes(const char *rel, const char *text, size_t len)
{
	char	*path = path_of(rel), *slash;
	FILE	*f;

	for (slash = strchr(path + strlen(tmpdir) + 1, '/'); slash != NULL;
	    slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0755);
		*slash = '/';
	}
	if ((f = fopen(path, "w")) == NULL)
		fail_msg("cannot write %s: %s", path, strerror(errno));
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void
write_file(const char *rel, const char *text)
{
	write_bytes(rel, text, strlen(text));
}

/* Every error line names a file of ours: "tmpdir/...:N: " or "tmpdir/...: ". */
static void
check_err_format(const char *err)
{
	const char	*line = err, *nl;

	assert_true(err[0] != '\0');
	for (; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			fail_msg("error without a final newline: %s", line);
		if (strncmp(line, tmpdir, strlen(tmpdir)) != 0 ||
		    memchr(line, ':', (size_t)(nl - line)) == NULL)
			fail_msg("error line not \"file:line: ...\": %.*s", (int)(nl - line), line);
	}
}

static struct config *
load_ok(const char *rel)
{
	static char	 err[ERR_MAX];
	struct config	*cfg = NULL;

	if (config_load(path_of(rel), &cfg, err, sizeof(err)) == -1)
		fail_msg("%s should load, but:\n%s", rel, err);
	assert_non_null(cfg);
	assert_string_equal(err, "");
	return cfg;
}

/* Loading rel fails, and err has want; what names the case in a failure. */
static void
load_err_case(const char *what, const char *rel, const char *want)
{
	static char	 err[ERR_MAX];
	struct config	*cfg = (struct config *)&err;	/* must be cleared */

	if (config_load(path_of(rel), &cfg, err, sizeof(err)) == 0)
		fail_msg("%s: should fail with \"%s\"", what, want);
	assert_null(cfg);
	check_err_format(err);
	if (strstr(err, want) == NULL)
		fail_msg("%s: expected \"%s\" in:\n%s", what, want, err);
}

static void
load_err(const char *rel, const char *want)
{
	load_err_case(rel, rel, want);
}

/* Line of the first occurrence of needle in text, 1-based. */
static int
line_of(const char *text, const char *needle)
{
	const char	*at = strstr(text, needle), *p;
	int		 line = 1;

	assert_non_null(at);
	for (p = text; p < at; p++)
		line += *p == '\n';
	return line;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sluice-test-config.XXXXXX");
	if (mkdtemp(tmpdir) == NULL || getcwd(startdir, sizeof(startdir)) == NULL)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* Tests that chdir away go back, so a failure does not move the others. */
static int
test_teardown(void **state)
{
	return chdir(startdir);
}

/* --- A full config -------------------------------------------------------------- */

static const char full_conf[] =
	"# every option set\n"
	"hostname = \"mx.example.org\"\n"
	"user = \"sluice\"\n"
	"group = \"mail\"\n"
	"pidfile = \"/run/sluice/sluice.pid\"\n"
	"spool_dir = \"/var/tmp/spool\"\n"
	"workers = 3\n"
	"pool_threads = 5\n"
	"drain_timeout = 45s\n"
	"max_connections = 100\n"
	"max_connections_per_ip = 7\n"
	"ipv4_prefix = 24\n"
	"ipv6_prefix = 48\n"
	"log {\n"
	"\ttarget = \"stderr\"\n"
	"\tfacility = \"local3\"\n"
	"\tlevel = \"debug\"\n"
	"}\n"
	"limits {\n"
	"\tmessage_size = 20M\n"
	"\trecipients = 50\n"
	"\terrors = 5\n"
	"\tcommand_line = 1k\n"
	"\ttext_line = 0\n"
	"\tidle_timeout = 2m\n"
	"\tdata_timeout = \"90s\"\n"
	"\tdata_time_limit = 0\n"
	"\tsession_timeout = 2h\n"
	"\tspool_memory = 128k\n"
	"\theaders = 200\n"
	"\theader_size = 8k\n"
	"}\n"
	"other \"tag\" { color = \"blue\" }\n"
	"listener \"mx\" {\n"
	"\tlisten = { \"0.0.0.0:25\", \"[::]:25\" }\n"
	"\tbackend = \"postfix\"\n"
	"\tchain = { \"block\", \"tag\" }\n"
	"\thostname = \"mx1.example.org\"\n"
	"\tbanner = \"ESMTP hello\"\n"
	"\tdata_line_endings = \"normalize\"\n"
	"\treceived_header = false\n"
	"\treverse_lookup = false\n"
	"\tmax_connections = 40\n"
	"\tlimits {\n"
	"\t\tmessage_size = 5M\n"
	"\t\tidle_timeout = 30s\n"
	"\t}\n"
	"}\n"
	"listener \"submission\" {\n"
	"\tlisten = { \"*:587\" }\n"
	"\tbackend = \"local\"\n"
	"}\n"
	"backend \"postfix\" {\n"
	"\ttype = \"lmtp\"\n"
	"\tservers = { \"127.0.0.1:10025\", \"unix:/var/run/lmtp.sock\" }\n"
	"\tidentity = \"xforward\"\n"
	"\thelo_name = \"relay.example.org\"\n"
	"\tmax_connections = 9\n"
	"\tmax_age = 1m\n"
	"\tidle_timeout = 5s\n"
	"\tconnect_timeout = 2s\n"
	"\tcommand_timeout = 1m\n"
	"\tdata_timeout = 3m\n"
	"\tdown_time = 10s\n"
	"}\n"
	"backend \"local\" {\n"
	"\ttype = \"maildir\"\n"
	"\tmaildir = \"/var/mail/x/Maildir\"\n"
	"\tmaildir_fsync = false\n"
	"}\n"
	"testmod \"block\" {\n"
	"\ttimeout = 250ms\n"
	"\ton_error = \"reject\"\n"
	"\tmode = \"observe\"\n"
	"\tphase = \"mail\"\n"
	"\tpatterns = { \"*@spam.example\", 'x' }\n"
	"\tcount = -12\n"
	"\tenabled = off\n"
	"\tdelay = 2m\n"
	"\tlimit = 1G\n"
	"\tnote = \"hi\"\n"
	"}\n"
	"testmod \"dflt\" { phase = \"rcpt\" }\n";

static void
check_full_globals(const struct config *cfg)
{
	assert_string_equal(cfg->path, path_of("full.conf"));
	assert_string_equal(cfg->hostname, "mx.example.org");
	assert_string_equal(cfg->user, "sluice");
	assert_string_equal(cfg->group, "mail");
	assert_string_equal(cfg->pidfile, "/run/sluice/sluice.pid");
	assert_string_equal(cfg->spool_dir, "/var/tmp/spool");
	assert_int_equal(cfg->workers, 3);
	assert_int_equal(cfg->pool_threads, 5);
	assert_int_equal(cfg->drain_timeout_ms, 45000);
	assert_int_equal(cfg->max_connections, 100);
	assert_int_equal(cfg->max_connections_per_ip, 7);
	assert_int_equal(cfg->ipv4_prefix, 24);
	assert_int_equal(cfg->ipv6_prefix, 48);
	assert_int_equal(cfg->log_stderr, 1);
	assert_int_equal(cfg->log_facility, LOG_LOCAL3);
	assert_int_equal(cfg->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg->limits.message_size, 20 * 1024 * 1024);
	assert_int_equal(cfg->limits.recipients, 50);
	assert_int_equal(cfg->limits.errors, 5);
	assert_int_equal(cfg->limits.command_line, 1024);
	assert_int_equal(cfg->limits.text_line, 0);
	assert_int_equal(cfg->limits.idle_timeout_ms, 120000);
	assert_int_equal(cfg->limits.data_timeout_ms, 90000);
	assert_int_equal(cfg->limits.data_time_limit_ms, 0);
	assert_int_equal(cfg->limits.session_timeout_ms, 7200000);
	assert_int_equal(cfg->limits.spool_memory, 128 * 1024);
	assert_int_equal(cfg->limits.headers, 200);
	assert_int_equal(cfg->limits.header_size, 8 * 1024);
	assert_int_equal(cfg->nmodules, 0);
}

static void
check_full_listeners(const struct config *cfg)
{
	const struct config_listener	*l = &cfg->listeners[0], *s = &cfg->listeners[1];
	const struct sockaddr_in6	*sin6;
	const struct sockaddr_in	*sin;

	assert_int_equal(cfg->nlisteners, 2);
	assert_string_equal(l->name, "mx");
	assert_int_equal(l->line, line_of(full_conf, "listener \"mx\""));
	assert_int_equal(l->nlisten, 2);
	assert_string_equal(l->listen[0], "0.0.0.0:25");
	assert_string_equal(l->listen[1], "[::]:25");
	sin = (const struct sockaddr_in *)&l->addrs[0];
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohs(sin->sin_port), 25);
	assert_int_equal(l->addrlens[0], sizeof(struct sockaddr_in));
	sin6 = (const struct sockaddr_in6 *)&l->addrs[1];
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(l->addrlens[1], sizeof(struct sockaddr_in6));
	assert_string_equal(l->backend, "postfix");
	assert_ptr_equal(l->backend_ref, &cfg->backends[0]);
	assert_int_equal(l->nchain, 2);
	assert_string_equal(l->chain[0], "block");
	assert_ptr_equal(l->chain_refs[0], config_filter_find(cfg, "block"));
	assert_ptr_equal(l->chain_refs[1], config_filter_find(cfg, "tag"));
	assert_string_equal(l->hostname, "mx1.example.org");
	assert_string_equal(l->banner, "ESMTP hello");
	assert_int_equal(l->data_mode, CONFIG_DATA_NORMALIZE);
	assert_int_equal(l->received_header, 0);
	assert_int_equal(l->reverse_lookup, 0);
	assert_int_equal(l->max_connections, 40);
	/* Set here: */
	assert_int_equal(l->limits.message_size, 5 * 1024 * 1024);
	assert_int_equal(l->limits.idle_timeout_ms, 30000);
	/* Inherited from the global limits, not the built-in defaults: */
	assert_int_equal(l->limits.recipients, 50);
	assert_int_equal(l->limits.data_timeout_ms, 90000);
	assert_int_equal(l->limits.text_line, 0);
	assert_int_equal(l->limits.header_size, 8 * 1024);
	assert_string_equal(s->name, "submission");
	assert_ptr_equal(s->backend_ref, &cfg->backends[1]);
	assert_int_equal(s->nchain, 0);
	assert_string_equal(s->hostname, "mx.example.org");
	assert_string_equal(s->banner, "ESMTP sluice");
	assert_int_equal(s->data_mode, CONFIG_DATA_STRICT);
	assert_int_equal(s->received_header, 1);
	assert_int_equal(s->reverse_lookup, 1);
	assert_memory_equal(&s->limits, &cfg->limits, sizeof(s->limits));
	sin = (const struct sockaddr_in *)&s->addrs[0];
	assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(ntohs(sin->sin_port), 587);
}

static void
check_full_backends(const struct config *cfg)
{
	const struct config_backend	*b = &cfg->backends[0], *m = &cfg->backends[1];

	assert_int_equal(cfg->nbackends, 2);
	assert_ptr_equal(config_backend_find(cfg, "local"), m);
	assert_null(config_backend_find(cfg, "nosuch"));
	assert_string_equal(b->name, "postfix");
	assert_int_equal(b->line, line_of(full_conf, "backend \"postfix\""));
	assert_int_equal(b->type, CONFIG_BACKEND_LMTP);
	assert_int_equal(b->nservers, 2);
	assert_string_equal(b->servers[1], "unix:/var/run/lmtp.sock");
	assert_int_equal(b->addrs[0].ss_family, AF_INET);
	assert_int_equal(b->addrs[1].ss_family, AF_UNIX);
	assert_int_equal(b->identity, CONFIG_IDENTITY_XFORWARD);
	assert_string_equal(b->helo_name, "relay.example.org");
	assert_int_equal(b->max_connections, 9);
	assert_int_equal(b->max_age_ms, 60000);
	assert_int_equal(b->idle_timeout_ms, 5000);
	assert_int_equal(b->connect_timeout_ms, 2000);
	assert_int_equal(b->command_timeout_ms, 60000);
	assert_int_equal(b->data_timeout_ms, 180000);
	assert_int_equal(b->down_time_ms, 10000);
	assert_null(b->maildir);
	assert_int_equal(m->type, CONFIG_BACKEND_MAILDIR);
	assert_int_equal(m->nservers, 0);
	assert_string_equal(m->maildir, "/var/mail/x/Maildir");
	assert_int_equal(m->maildir_fsync, 0);
	assert_string_equal(m->helo_name, "mx.example.org");
	assert_int_equal(m->identity, CONFIG_IDENTITY_AUTO);
}

static void
check_full_filters(const struct config *cfg)
{
	const struct config_filter		*f;
	const struct config_option_value	*v;

	/* File order across modules: tag (other) comes first in the file. */
	assert_int_equal(cfg->nfilters, 3);
	assert_string_equal(cfg->filters[0].name, "tag");
	assert_string_equal(cfg->filters[1].name, "block");
	assert_string_equal(cfg->filters[2].name, "dflt");
	f = config_filter_find(cfg, "block");
	assert_string_equal(f->module->desc->name, "testmod");
	assert_string_equal(f->file, path_of("full.conf"));
	assert_int_equal(f->line, line_of(full_conf, "testmod \"block\""));
	assert_int_equal(f->timeout_ms, 250);
	assert_int_equal(f->on_error, CONFIG_ON_ERROR_REJECT);
	assert_int_equal(f->mode, CONFIG_FILTER_OBSERVE);
	assert_int_equal(f->noptions, 7);
	assert_string_equal(f->options[0].name, "phase");
	assert_string_equal(f->options[6].name, "note");
	v = config_filter_option(f, "patterns");
	assert_int_equal(v->type, SLUICE_OPT_STRING_LIST);
	assert_int_equal(v->nlist, 2);
	assert_string_equal(v->list[1], "x");
	assert_int_equal(config_filter_option(f, "count")->number, -12);
	assert_int_equal(config_filter_option(f, "enabled")->number, 0);
	assert_int_equal(config_filter_option(f, "delay")->number, 120000);
	assert_int_equal(config_filter_option(f, "limit")->number, 1024LL * 1024 * 1024);
	assert_null(config_filter_option(f, "nosuch"));
	f = config_filter_find(cfg, "dflt");
	assert_int_equal(f->timeout_ms, 30000);
	assert_int_equal(f->on_error, CONFIG_ON_ERROR_TEMPFAIL);
	assert_int_equal(f->mode, CONFIG_FILTER_ENFORCE);
	v = config_filter_option(f, "patterns");
	assert_int_equal(v->set, 1);
	assert_int_equal(v->nlist, 1);
	assert_string_equal(v->list[0], "*");
	assert_int_equal(config_filter_option(f, "count")->number, 3);
	assert_int_equal(config_filter_option(f, "enabled")->number, 1);
	assert_int_equal(config_filter_option(f, "delay")->number, 1500);
	assert_int_equal(config_filter_option(f, "limit")->number, 2048);
	assert_int_equal(config_filter_option(f, "note")->set, 0);
	assert_string_equal(config_filter_option(&cfg->filters[0], "color")->string, "blue");
}

static void
test_full_config(void **state)
{
	struct config	*cfg;

	write_file("full.conf", full_conf);
	cfg = load_ok("full.conf");
	check_full_globals(cfg);
	check_full_listeners(cfg);
	check_full_backends(cfg);
	check_full_filters(cfg);
	config_free(&cfg);
	assert_null(cfg);
	config_free(&cfg);
	config_free(NULL);
}

static void
test_defaults(void **state)
{
	struct config	*cfg;
	char		 host[256];

	write_file("min.conf",
	    "listener \"l\" { listen = { \"127.0.0.1:2525\" } backend = \"b\" }\n"
	    "backend \"b\" { servers = { \"127.0.0.1:10025\" } }\n");
	cfg = load_ok("min.conf");
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_string_equal(cfg->hostname, host);
	assert_null(cfg->user);
	assert_null(cfg->group);
	assert_null(cfg->pidfile);
	assert_string_equal(cfg->spool_dir, "/var/spool/sluice");
	assert_int_equal(cfg->workers, 0);
	assert_int_equal(cfg->pool_threads, 4);
	assert_int_equal(cfg->drain_timeout_ms, 30000);
	assert_int_equal(cfg->max_connections, 2000);
	assert_int_equal(cfg->max_connections_per_ip, 50);
	assert_int_equal(cfg->ipv4_prefix, 32);
	assert_int_equal(cfg->ipv6_prefix, 64);
	assert_int_equal(cfg->log_stderr, 0);
	assert_int_equal(cfg->log_facility, LOG_MAIL);
	assert_int_equal(cfg->log_level, LOG_LEVEL_INFO);
	assert_int_equal(cfg->limits.message_size, 50 * 1024 * 1024);
	assert_int_equal(cfg->limits.recipients, 1000);
	assert_int_equal(cfg->limits.errors, 20);
	assert_int_equal(cfg->limits.command_line, 512);
	assert_int_equal(cfg->limits.text_line, 1000);
	assert_int_equal(cfg->limits.idle_timeout_ms, 300000);
	assert_int_equal(cfg->limits.data_timeout_ms, 180000);
	assert_int_equal(cfg->limits.data_time_limit_ms, 600000);
	assert_int_equal(cfg->limits.session_timeout_ms, 3600000);
	assert_int_equal(cfg->limits.spool_memory, 256 * 1024);
	assert_int_equal(cfg->limits.headers, 1000);
	assert_int_equal(cfg->limits.header_size, 100 * 1024);
	assert_memory_equal(&cfg->listeners[0].limits, &cfg->limits, sizeof(cfg->limits));
	assert_string_equal(cfg->listeners[0].banner, "ESMTP sluice");
	assert_string_equal(cfg->listeners[0].hostname, host);
	assert_int_equal(cfg->listeners[0].received_header, 1);
	assert_int_equal(cfg->listeners[0].max_connections, 0);
	assert_int_equal(cfg->backends[0].type, CONFIG_BACKEND_SMTP);
	assert_int_equal(cfg->backends[0].identity, CONFIG_IDENTITY_AUTO);
	assert_string_equal(cfg->backends[0].helo_name, host);
	assert_int_equal(cfg->backends[0].max_connections, 100);
	assert_int_equal(cfg->backends[0].max_age_ms, 300000);
	assert_int_equal(cfg->backends[0].idle_timeout_ms, 30000);
	assert_int_equal(cfg->backends[0].connect_timeout_ms, 10000);
	assert_int_equal(cfg->backends[0].command_timeout_ms, 300000);
	assert_int_equal(cfg->backends[0].data_timeout_ms, 600000);
	assert_int_equal(cfg->backends[0].down_time_ms, 30000);
	assert_int_equal(cfg->backends[0].maildir_fsync, 1);
	assert_int_equal(cfg->nfilters, 0);
	config_free(&cfg);
}

/* --- Bad configs ----------------------------------------------------------------- */

/* Lines 1 and 2 of every case; what follows starts at line 3. */
#define BASE \
	"listener \"l\" { listen = { \"127.0.0.1:2525\" } backend = \"b\" }\n" \
	"backend \"b\" { servers = { \"127.0.0.1:10025\" } }\n"

struct bad_case {
	const char	*what;		/* for the failure message */
	const char	*text;		/* the file */
	const char	*want;		/* after "<tmpdir>/bad.conf" */
};

/* Relay-mode listeners need no backend; the queue defaults under spool_dir. */
static void
test_relay_mode(void **state)
{
	struct config	*cfg;

	write_file("relay.conf",
	    "spool_dir = \"/srv/spool\"\n"
	    "listener \"r\" { listen = { \"127.0.0.1:2525\" } mode = \"relay\" }\n"
	    "listener \"f\" { listen = { \"127.0.0.1:2526\" } backend = \"b\" }\n"
	    "backend \"b\" { servers = { \"127.0.0.1:10025\" } }\n");
	cfg = load_ok("relay.conf");
	assert_int_equal(cfg->listeners[0].mode, CONFIG_MODE_RELAY);
	assert_null(cfg->listeners[0].backend_ref);
	assert_int_equal(cfg->listeners[1].mode, CONFIG_MODE_FORWARD);
	assert_non_null(cfg->listeners[1].backend_ref);
	assert_string_equal(cfg->queue.directory, "/srv/spool/queue");
	assert_int_equal(cfg->queue.sync, 1);
	config_free(&cfg);
	write_file("relay2.conf",
	    "listener \"r\" { listen = { \"127.0.0.1:2525\" } mode = \"relay\" }\n"
	    "queue { directory = \"/q\" sync = \"fdatasync\" }\n");
	cfg = load_ok("relay2.conf");
	assert_string_equal(cfg->queue.directory, "/q");
	assert_int_equal(cfg->queue.sync, 0);
	config_free(&cfg);
}

static const struct bad_case bad_cases[] = {
	{ "unknown option", BASE "workerz = 3\n",
	    ":3: no such option 'workerz' (not a core option, section or module; "
	    "modules: testmod, other)" },
	{ "line after comments", BASE "# one\n// two { \n/* three\n } */ # four\n\tworkerz = 1\n",
	    ":7: no such option 'workerz'" },
	{ "unknown option in a section", BASE "listener \"x\" {\n\tlisten = { \"127.0.0.1:1\" }\n"
	    "\tbackend = \"b\"\n\tbogus = 1\n}\n",
	    ":6: no such option 'bogus' (listener takes: listen, backend, chain, hostname, "
	    "banner, data_line_endings, received_header, reverse_lookup, max_connections, limits, "
	    "mode)" },
	{ "unknown module", BASE "acces \"a\" { }\n", ":3: no such option 'acces'" },
	{ "bad duration", BASE "limits {\n\tidle_timeout = 5x\n}\n",
	    ":4: idle_timeout: \"5x\" is not a duration (e.g. 250ms, 30s, 5m, 2h, 1d)" },
	{ "duration out of range", BASE "limits { idle_timeout = 2h }\n",
	    ":3: idle_timeout = 2h is out of range (1s..1h)" },
	{ "zero or range", BASE "limits { text_line = 50 }\n",
	    ":3: text_line = 50 is out of range (0 or 80..1000000)" },
	{ "bad size", BASE "limits { spool_memory = 1T }\n",
	    ":3: spool_memory: \"1T\" is not a size (e.g. 512, 64k, 10M, 1G)" },
	{ "size out of range", BASE "limits { spool_memory = 65M }\n",
	    ":3: spool_memory = 65M is out of range (4k..64M)" },
	{ "bad integer", BASE "workers = 0x10\n", ":3: workers: \"0x10\" is not an integer" },
	{ "integer out of range", BASE "workers = 257\n", ":3: workers = 257 is out of range (0..256)" },
	{ "listener limit range", BASE "listener \"m\" { listen = { \"127.0.0.1:1\" } backend = \"b\"\n"
	    "\tlimits { recipients = 0 } }\n", ":4: recipients = 0 is out of range (1..100000)" },
	{ "filter timeout", BASE "testmod \"t\" { phase = \"x\" timeout = 0 }\n",
	    ":3: timeout = 0 is out of range (1ms..1h)" },
	{ "bad enum", BASE "log {\n\tfacility = \"mial\"\n}\n",
	    ":4: facility \"mial\" is not valid (allowed: mail, daemon, user, local0, local1, "
	    "local2, local3, local4, local5, local6, local7)" },
	{ "bad type", BASE "backend \"c\" { type = \"smpt\" servers = { \"127.0.0.1:1\" } }\n",
	    ":3: type \"smpt\" is not valid (allowed: smtp, lmtp, maildir)" },
	{ "bad on_error", BASE "testmod \"t\" { phase = \"x\" on_error = \"ignore\" }\n",
	    ":3: on_error \"ignore\" is not valid (allowed: tempfail, accept, reject)" },
	{ "bad mode", BASE "testmod \"t\" { phase = \"x\" mode = \"dry\" }\n",
	    ":3: mode \"dry\" is not valid (allowed: enforce, observe)" },
	{ "bad listener mode", BASE "listener \"m\" { listen = { \"127.0.0.1:1\" } mode = \"teleport\" }\n",
	    ":3: mode \"teleport\" is not valid (allowed: forward, relay)" },
	{ "relay listener with a backend", BASE "listener \"m\" { listen = { \"127.0.0.1:1\" } "
	    "mode = \"relay\" backend = \"b\" }\n",
	    ":3: listener \"m\": a relay-mode listener takes no backend" },
	{ "bad queue sync", BASE "queue { sync = \"never\" }\n",
	    ":3: sync \"never\" is not valid (allowed: fdatasync, syncfs)" },
	{ "relative queue directory", BASE "queue { directory = \"q\" }\n",
	    ":3: directory \"q\" must be an absolute path" },
	{ "bad identity", BASE "backend \"c\" { identity = \"both\" servers = { \"127.0.0.1:1\" } }\n",
	    ":3: identity \"both\" is not valid (allowed: auto, xclient, xforward, none)" },
	{ "bad line endings", BASE "listener \"m\" { listen = { \"127.0.0.1:1\" } backend = \"b\" "
	    "data_line_endings = \"lf\" }\n",
	    ":3: data_line_endings \"lf\" is not valid (allowed: strict, normalize)" },
	{ "bad target", BASE "log { target = \"file\" }\n",
	    ":3: target \"file\" is not valid (allowed: syslog, stderr)" },
	{ "bad level", BASE "log { level = \"loud\" }\n",
	    ":3: level \"loud\" is not valid (allowed: debug, info, warning, error)" },
	{ "duplicate title", BASE "backend \"b\" {\n\tservers = { \"127.0.0.1:1\" }\n}\n",
	    ":3: found duplicate title 'b': backend \"b\" is already defined at " },
	{ "duplicate instance across modules", BASE "testmod \"t\" { phase = \"x\" }\n"
	    "other \"t\" { }\n",
	    ":4: other \"t\": instance name \"t\" is already used by testmod \"t\" (" },
	{ "undefined backend", BASE "listener \"m\" {\n\tlisten = { \"127.0.0.1:1\" }\n"
	    "\tbackend = \"postfx\"\n}\n",
	    ":3: listener \"m\": backend \"postfx\" is not defined (backends: b)" },
	{ "backend missing", BASE "listener \"m\" { listen = { \"127.0.0.1:1\" } }\n",
	    ":3: listener \"m\": backend is required (backends: b)" },
	{ "listen missing", BASE "listener \"m\" { backend = \"b\" }\n",
	    ":3: listener \"m\": listen is required" },
	{ "empty listen", BASE "listener \"m\" { backend = \"b\" listen = {} }\n",
	    ":3: listener \"m\": listen is required" },
	{ "chain to unknown filter", BASE "testmod \"t\" { phase = \"x\" }\n"
	    "listener \"m\" { listen = { \"127.0.0.1:1\" } backend = \"b\" chain = { \"t\", \"u\" } }\n",
	    ":4: listener \"m\": chain: \"u\" is not a filter instance (instances: t)" },
	{ "filter twice in a chain", BASE "testmod \"t\" { phase = \"x\" }\n"
	    "listener \"m\" { listen = { \"127.0.0.1:1\" } backend = \"b\" chain = { \"t\", \"t\" } }\n",
	    ":4: listener \"m\": chain: filter \"t\" appears twice" },
	{ "listen address of another listener", BASE "\n"
	    "listener \"m\" {\n\tlisten = { \"127.0.0.2:25\", \"127.0.0.1:2525\" }\n\tbackend = \"b\"\n}\n",
	    ":4: listener \"m\": listen address \"127.0.0.1:2525\" is also used by listener \"l\" "
	    "(line 1)" },
	{ "wildcard spelled twice", BASE "listener \"m\" { listen = { \"0.0.0.0:25\" } backend = \"b\" }\n"
	    "listener \"n\" { listen = { \"*:25\" } backend = \"b\" }\n",
	    ":4: listener \"n\": listen address \"*:25\" is also used by listener \"m\" (line 3)" },
	{ "listen address twice", BASE "listener \"m\" { listen = { \"[::1]:25\", \"[::1]:25\" } "
	    "backend = \"b\" }\n", ":3: listener \"m\": listen address \"[::1]:25\" is given twice" },
	{ "unix listen", BASE "listener \"m\" { listen = { \"unix:/run/x\" } backend = \"b\" }\n",
	    ":3: listen \"unix:/run/x\": sluice listens on TCP only" },
	{ "bad listen", BASE "listener \"m\" { listen = { \"localhost:25\" } backend = \"b\" }\n",
	    ":3: listen \"localhost:25\": not a numeric address and port" },
	{ "port zero", BASE "listener \"m\" { listen = { \"127.0.0.1:0\" } backend = \"b\" }\n",
	    ":3: listen \"127.0.0.1:0\": port 0 is not allowed" },
	{ "bad server", BASE "backend \"c\" { servers = { \"10.0.0.1\" } }\n",
	    ":3: servers \"10.0.0.1\": not a numeric address and port" },
	{ "smtp without servers", BASE "backend \"c\" {\n\ttype = \"smtp\"\n}\n",
	    ":3: backend \"c\": type smtp needs servers" },
	{ "maildir without path", BASE "backend \"c\" { type = \"maildir\" }\n",
	    ":3: backend \"c\": type maildir needs maildir, an absolute path" },
	{ "maildir relative", BASE "backend \"c\" { type = \"maildir\" maildir = \"Maildir\" }\n",
	    ":3: maildir \"Maildir\" must be an absolute path" },
	{ "maildir with servers", BASE "backend \"c\" { type = \"maildir\" maildir = \"/m\" "
	    "servers = { \"127.0.0.1:1\" } }\n", ":3: backend \"c\": type maildir takes no servers" },
	{ "maildir on smtp", BASE "backend \"c\" { maildir = \"/m\" servers = { \"127.0.0.1:1\" } }\n",
	    ":3: backend \"c\": maildir is only for type maildir" },
	{ "relative spool", BASE "spool_dir = \"spool\"\n",
	    ":3: spool_dir \"spool\" must be an absolute path" },
	{ "relative pidfile", BASE "pidfile = \"x.pid\"\n", ":3: pidfile \"x.pid\" must be an absolute path" },
	{ "empty user", BASE "user = \"\"\n", ":3: user must not be empty" },
	{ "bad hostname", BASE "hostname = \"mx example\"\n",
	    ":3: hostname \"mx example\" is not a host name" },
	{ "control bytes shown escaped", BASE "hostname = \"mx\\x01\\n\"\n",
	    ":3: hostname \"mx\\x01 \" is not a host name" },
	{ "banner with CRLF", BASE "listener \"m\" { listen = { \"127.0.0.1:1\" } backend = \"b\" "
	    "banner = \"x\\r\\n250 injected\" }\n", ":3: banner must be printable ASCII text" },
	{ "bad listener name", BASE "listener \"a b\" { listen = { \"127.0.0.1:1\" } backend = \"b\" }\n",
	    ":3: listener \"a b\": the name is not valid" },
	{ "no listener", "backend \"b\" { servers = { \"127.0.0.1:1\" } }\n",
	    ": no listener is defined" },
	{ "missing title", BASE "listener { }\n", ":3: missing title for section 'listener'" },
	{ "unterminated section", BASE "listener \"m\" {\n\tlisten = { \"127.0.0.1:1\" }\n",
	    ":3: section opened here is not closed" },
	{ "unterminated nested section", BASE "listener \"m\" { backend = \"b\"\n"
	    "\tlimits {\n\t\terrors = 3\n}\n", ":3: section opened here is not closed" },
	{ "unterminated list", BASE "\nload = { \"a.so\",\n", ":4: list opened here is not closed" },
	{ "stray brace", BASE "}\n", ":3: '}' without a matching '{'" },
	{ "unterminated string", BASE "hostname = \"mx\n\n", ":3: string opened here is not closed" },
	{ "unterminated single-quoted string", BASE "hostname = 'mx\\'\n",
	    ":3: string opened here is not closed" },
	{ "unterminated comment", BASE "/* a comment { with a brace\n\n",
	    ":3: comment opened here is not closed" },
	{ "required module option missing", BASE "testmod \"t\" {\n\ttimeout = 1s\n}\n",
	    ":3: testmod \"t\": option \"phase\" is required (the phase)" },
	{ "module option of the wrong type (int)", BASE "testmod \"t\" { phase = \"x\"\n"
	    "\tcount = \"ten\" }\n", ":4: count: \"ten\" is not an integer" },
	{ "module option of the wrong type (bool)", BASE "testmod \"t\" { phase = \"x\" enabled = perhaps }\n",
	    ":3: invalid boolean value for option 'enabled'" },
	{ "module option of the wrong type (duration)", BASE "testmod \"t\" { phase = \"x\" delay = 1y }\n",
	    ":3: delay: \"1y\" is not a duration" },
	{ "module option of the wrong type (size)", BASE "testmod \"t\" { phase = \"x\" limit = big }\n",
	    ":3: limit: \"big\" is not a size" },
	{ "module option of the wrong type (list)", BASE "testmod \"t\" { phase = { \"x\" } }\n",
	    ":3: unexpected token '{'" },
	{ "option of another module", BASE "other \"o\" {\n\tphase = \"x\"\n}\n",
	    ":4: no such option 'phase' (other takes: timeout, on_error, mode, color)" },
	{ "include missing", BASE "include(\"nosuch.conf\")\n", ":3: cannot include " },
	{ "include with two files", BASE "include(\"a\", \"b\")\n",
	    ":3: include takes one file name" },
	{ "include itself", BASE "include(\"bad.conf\")\n",
	    ":3: includes nested more than 10 deep (does a file include itself?)" },
	{ "every bad value at once", BASE "workers = 999\nlog { level = \"x\" }\nipv4_prefix = 4\n",
	    ":5: ipv4_prefix = 4 is out of range (8..32)" },
};

static void
test_bad_configs(void **state)
{
	char		 want[PATH_MAX + 512];
	struct module	*m;
	size_t		 i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		write_file("bad.conf", bad_cases[i].text);
		snprintf(want, sizeof(want), "%s%s", path_of("bad.conf"), bad_cases[i].want);
		load_err_case(bad_cases[i].what, "bad.conf", want);
	}
	/* The failed loads gave back every module reference they took. */
	m = module_builtin("testmod");
	assert_int_equal(m->refs, 1);
	module_release(&m);
}

/* Every bad value is reported, not only the first. */
static void
test_all_value_errors_reported(void **state)
{
	char		 err[ERR_MAX];
	struct config	*cfg;
	const char	*p;
	int		 n = 0;

	write_file("many.conf", BASE "workers = 999\nlog { level = \"x\" }\nipv4_prefix = 4\n"
	    "listener \"m\" { listen = { \"127.0.0.1:2525\" } backend = \"nope\" }\n");
	assert_int_equal(config_load(path_of("many.conf"), &cfg, err, sizeof(err)), -1);
	for (p = err; (p = strchr(p, '\n')) != NULL; p++)
		n++;
	assert_int_equal(n, 5);
	assert_non_null(strstr(err, "many.conf:3: workers = 999"));
	assert_non_null(strstr(err, "many.conf:4: level \"x\""));
	assert_non_null(strstr(err, "many.conf:6: listener \"m\": backend \"nope\""));
	assert_non_null(strstr(err, "many.conf:6: listener \"m\": listen address"));
}

/* A small err buffer is filled, NUL-terminated, never overrun. */
static void
test_error_truncated(void **state)
{
	char		 err[40];
	struct config	*cfg;

	memset(err, 'x', sizeof(err));
	write_file("trunc.conf", BASE "workers = 999\nworkers = 998\n");
	assert_int_equal(config_load(path_of("trunc.conf"), &cfg, err, 20), -1);
	assert_true(strlen(err) < 20);
	assert_int_equal(err[25], 'x');
	assert_int_equal(config_load(path_of("trunc.conf"), &cfg, NULL, 0), -1);
}

/* --- Syntax the scanner must get right -------------------------------------------- */

static void
test_braces_in_strings_and_comments(void **state)
{
	struct config				*cfg;
	const struct config_option_value	*v;

	write_file("braces.conf",
	    "# { a comment brace\n"
	    "// } another\n"
	    "/* { block\n"
	    "   } */\n"
	    "listener \"l\" { listen = { \"127.0.0.1:2525\" } backend = \"b\" banner = \"ESMTP {x\" }\n"
	    "backend \"b\" { servers = { '127.0.0.1:10025' } } # }\n"
	    "testmod \"t\" {\n"
	    "\tphase = \"}\"\n"
	    "\tpatterns = { \"{\", '}', \"\\\"}\\\"\", 'it\\'s {', \"multi\n"
	    "line }\", \"a\\\\\" } // {\n"
	    "\tnote = ${SLUICE_TEST_NOTE:-fallback}\n"
	    "}\n"
	    "listener \"m\" { listen = { \"127.0.0.1:2526\" } backend = \"b\" }\n");
	unsetenv("SLUICE_TEST_NOTE");
	cfg = load_ok("braces.conf");
	assert_string_equal(cfg->listeners[0].banner, "ESMTP {x");
	v = config_filter_option(&cfg->filters[0], "phase");
	assert_string_equal(v->string, "}");
	v = config_filter_option(&cfg->filters[0], "patterns");
	assert_int_equal(v->nlist, 6);
	assert_string_equal(v->list[0], "{");
	assert_string_equal(v->list[1], "}");
	assert_string_equal(v->list[2], "\"}\"");
	assert_string_equal(v->list[3], "it's {");
	assert_string_equal(v->list[4], "multi\nline }");
	assert_string_equal(v->list[5], "a\\");
	assert_string_equal(config_filter_option(&cfg->filters[0], "note")->string, "fallback");
	/* Lines counted through comments and multi-line strings. */
	assert_int_equal(cfg->listeners[1].line, 13);
	assert_int_equal(cfg->filters[0].line, 7);
	config_free(&cfg);
}

/*
 * libconfuse 3.3 alone refuses a comment inside a list or between a title
 * and its brace; pass 2 never sees comments.
 */
static void
test_comments_anywhere(void **state)
{
	struct config	*cfg;

	write_file("comments.conf",
	    "backend \"b\" # the backend\n"
	    "{\n"
	    "\tservers = { \"127.0.0.1:10025\", # first\n"
	    "\t\t/* second */ \"127.0.0.1:10026\" // last\n"
	    "\t}\n"
	    "}\n"
	    "listener /* name: */ \"l\" { listen = # where\n"
	    "\t\"127.0.0.1:2525\" backend = \"b\" }\n"
	    "# a word#comment: \n"
	    "testmod \"t\" { phase = mail#comment\n"
	    "\tnote = http://x/y }\n");
	cfg = load_ok("comments.conf");
	assert_int_equal(cfg->backends[0].nservers, 2);
	assert_string_equal(cfg->backends[0].servers[1], "127.0.0.1:10026");
	assert_int_equal(cfg->listeners[0].line, 7);
	assert_string_equal(config_filter_option(&cfg->filters[0], "phase")->string, "mail");
	/* "//" inside a bare word is part of it, as libconfuse reads it. */
	assert_string_equal(config_filter_option(&cfg->filters[0], "note")->string, "http://x/y");
	config_free(&cfg);
}

/* "load = " replaces what earlier lines loaded, "+=" adds; as libconfuse reads it. */
static void
test_load_assignment(void **state)
{
	struct config	*cfg;

	write_file("loadset.conf", BASE "load = { \"plugins/nosuch.so\" }\n"
	    "load = { }\n");
	cfg = load_ok("loadset.conf");
	config_free(&cfg);
	write_file("loadadd.conf", BASE "load = { }\n"
	    "load += \"plugins/nosuch.so\"\n");
	load_err("loadadd.conf", "loadadd.conf:4: ");
	/* A title or value that says "load" is not a load statement. */
	write_file("loadsec.conf", BASE "testmod \"load\" { phase = \"load\" }\n"
	    "other \"o\" { color = \"load\" }\n");
	cfg = load_ok("loadsec.conf");
	config_free(&cfg);
}

/* --- Includes ------------------------------------------------------------------ */

static void
test_include_relative_to_file(void **state)
{
	struct config	*cfg;

	write_file("inc/main.conf", BASE "include(\"conf.d/filters.conf\")\n");
	write_file("inc/conf.d/filters.conf", "# filters\ninclude('more.conf')\n"
	    "testmod \"a\" { phase = \"mail\" }\n");
	write_file("inc/conf.d/more.conf", "\n\nother \"b\" { }\n");
	/* Somewhere else entirely: libconfuse alone would look here. */
	assert_int_equal(chdir("/"), 0);
	cfg = load_ok("inc/main.conf");
	assert_int_equal(cfg->nfilters, 2);
	assert_string_equal(cfg->filters[0].name, "b");
	assert_string_equal(cfg->filters[0].file, path_of("inc/conf.d/more.conf"));
	assert_int_equal(cfg->filters[0].line, 3);
	assert_string_equal(cfg->filters[1].file, path_of("inc/conf.d/filters.conf"));
	assert_int_equal(cfg->filters[1].line, 3);
	config_free(&cfg);
	/* Relative main file: includes still follow it. */
	assert_int_equal(chdir(tmpdir), 0);
	assert_int_equal(config_load("inc/main.conf", &cfg, NULL, 0), 0);
	assert_string_equal(cfg->filters[0].file, "inc/conf.d/more.conf");
	config_free(&cfg);
}

static void
test_include_errors(void **state)
{
	write_file("inc2/main.conf", BASE "include(\"conf.d/bad.conf\")\n");
	write_file("inc2/conf.d/bad.conf", "# bad\nworkerz = 1\n");
	load_err("inc2/main.conf", "inc2/conf.d/bad.conf:2: no such option 'workerz'");
	write_file("inc2/conf.d/bad.conf", "# bad\ntestmod \"t\" {\n\tphase = \"x\"\n");
	load_err("inc2/main.conf", "inc2/conf.d/bad.conf:2: section opened here is not closed");
	write_file("inc2/conf.d/bad.conf", "other \"o\" { }\n}\n");
	load_err("inc2/main.conf", "inc2/conf.d/bad.conf:2: '}' without a matching '{'");
	write_file("inc2/conf.d/bad.conf", "testmod \"t\" { }\n");
	load_err("inc2/main.conf", "inc2/conf.d/bad.conf:1: testmod \"t\": option \"phase\" is required");
	write_file("inc2/conf.d/bad.conf", "limits { errors = 0 }\n");
	load_err("inc2/main.conf", "inc2/conf.d/bad.conf:1: errors = 0 is out of range (1..1000)");
}

/*
 * libconfuse leaves its include stack behind when a parse fails inside an
 * included file; after ten such failures every include would fail.
 */
static void
test_include_failures_do_not_accumulate(void **state)
{
	struct config	*cfg;
	int		 i;

	write_file("inc3/main.conf", BASE "include(\"a.conf\")\n");
	write_file("inc3/a.conf", "include(\"b.conf\")\n");
	write_file("inc3/b.conf", "workers = 1\nbogus = 1\n");
	for (i = 0; i < 25; i++)
		load_err("inc3/main.conf", "inc3/b.conf:2: no such option 'bogus'");
	write_file("inc3/b.conf", "workers = 2\n");
	cfg = load_ok("inc3/main.conf");
	assert_int_equal(cfg->workers, 2);
	config_free(&cfg);
}

static void
test_include_env(void **state)
{
	struct config	*cfg;

	setenv("SLUICE_TEST_INCDIR", path_of("inc4"), 1);
	write_file("inc4/main.conf", BASE "include(\"${SLUICE_TEST_INCDIR}/x.conf\")\n");
	write_file("inc4/x.conf", "other \"x\" { }\n");
	cfg = load_ok("inc4/main.conf");
	assert_int_equal(cfg->nfilters, 1);
	assert_int_equal(cfg->filters[0].line, 1);
	config_free(&cfg);
	unsetenv("SLUICE_TEST_INCDIR");
}

/* --- Hostile input -------------------------------------------------------------------- */

/* Cut the full config after every byte: no crash, well-formed errors. */
static void
test_every_prefix(void **state)
{
	char		 err[ERR_MAX];
	struct config	*cfg;
	size_t		 len = strlen(full_conf), i;
	int		 ok = 0;

	for (i = 0; i <= len; i++) {
		write_bytes("prefix.conf", full_conf, i);
		if (config_load(path_of("prefix.conf"), &cfg, err, sizeof(err)) == 0) {
			ok++;
			config_free(&cfg);
			continue;
		}
		assert_null(cfg);
		check_err_format(err);
	}
	/*
	 * Complete: the whole file, and the file up to the end of testmod
	 * "block" (everything named is defined by then), each with or
	 * without the newline that follows.
	 */
	assert_int_equal(ok, 4);
}

static void
test_random_bytes(void **state)
{
	static const char	 alphabet[] = "{}()=+,\"'#/*\\$\n \tab:0\xff\x80";
	char			 buf[512], err[ERR_MAX];
	struct config		*cfg;
	uint32_t		 seed = 12345;
	size_t			 i, j, len;

	for (i = 0; i < 300; i++) {
		len = i % sizeof(buf);
		for (j = 0; j < len; j++) {
			seed = seed * 1103515245u + 12345u;
			buf[j] = (seed >> 16) % 3 == 0 ? (char)(seed >> 8) :
			    alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
		}
		write_bytes("random.conf", buf, len);
		assert_int_equal(config_load(path_of("random.conf"), &cfg, err, sizeof(err)), -1);
		check_err_format(err);
	}
	write_bytes("nul.conf", BASE "workers = 1\0\n", sizeof(BASE "workers = 1\0\n") - 1);
	load_err("nul.conf", "nul.conf:3: NUL byte; not a text file");
	assert_int_equal(config_load("/dev/zero", &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "/dev/zero: larger than 16777216 bytes; not a config file\n");
	assert_int_equal(config_load(tmpdir, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ": cannot read: Is a directory\n"));
	assert_int_equal(config_load(path_of("nonexistent.conf"), &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nonexistent.conf: cannot read: No such file or directory\n"));
	write_bytes("deep.conf", "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{", 50);
	load_err("deep.conf", "deep.conf:1: braces nested more than 32 deep");
}

/* --- Plugins named by "load" -------------------------------------------------------- */

static void
copy_plugin(const char *name, const char *rel)
{
	char	 from[PATH_MAX], buf[8192];
	ssize_t	 n;
	int	 in, out;

	snprintf(from, sizeof(from), "%s/tests/plugins/.libs/%s.so", TEST_BUILDDIR, name);
	write_file(rel, "");
	if ((in = open(from, O_RDONLY)) == -1)
		fail_msg("cannot open %s (build the test plugins first)", from);
	assert_true((out = open(path_of(rel), O_WRONLY | O_TRUNC)) != -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
	assert_int_equal(chmod(path_of(rel), 0755), 0);
}

static int
plugin_loaded(const char *rel)
{
	char	 real[PATH_MAX];
	void	*h;

	if (realpath(path_of(rel), real) == NULL ||
	    (h = dlopen(real, RTLD_NOW | RTLD_NOLOAD)) == NULL)
		return 0;
	dlclose(h);
	return 1;
}

static void
test_load_plugin(void **state)
{
	struct config	*cfg;
	struct module	*m;

	copy_plugin("good", "plug/plugins/good.so");
	write_file("plug/sluice.conf", BASE "load = { \"plugins/good.so\" }\n"
	    "good \"g\" { secret = \"x\" }\n"
	    "testmod \"t\" { phase = \"mail\" }\n");
	assert_int_equal(chdir("/"), 0);
	cfg = load_ok("plug/sluice.conf");
	assert_int_equal(cfg->nmodules, 1);
	assert_string_equal(cfg->modules[0]->desc->name, "good");
	assert_int_equal(cfg->modules[0]->refs, 2);
	assert_ptr_equal(config_filter_find(cfg, "g")->module, cfg->modules[0]);
	assert_string_equal(config_filter_find(cfg, "g")->options[0].string, "hello");
	assert_true(plugin_loaded("plug/plugins/good.so"));
	config_free(&cfg);
	assert_false(plugin_loaded("plug/plugins/good.so"));
	/* Every built-in reference went back too. */
	m = module_builtin("testmod");
	assert_int_equal(m->refs, 1);
	module_release(&m);
}

static void
test_load_plugin_errors(void **state)
{
	char	 want[PATH_MAX + 128];

	write_file("plug2/missing.conf", BASE "load = { \"nosuch.so\" }\n");
	snprintf(want, sizeof(want), "plug2/missing.conf:3: %s: cannot load: No such file or "
	    "directory", path_of("plug2/nosuch.so"));
	load_err("plug2/missing.conf", want);
	copy_plugin("good", "plug2/good.so");
	copy_plugin("abi_mismatch", "plug2/abi.so");
	/* A plugin option in a built-in's section, and the other way round. */
	write_file("plug2/a.conf", BASE "load = { \"good.so\" }\n"
	    "testmod \"t\" { phase = \"x\" greeting = \"hi\" }\n");
	load_err("plug2/a.conf", "plug2/a.conf:4: no such option 'greeting' (testmod takes: "
	    "timeout, on_error, mode, phase, patterns, count, enabled, delay, limit, note)");
	write_file("plug2/a.conf", BASE "load = { \"good.so\" }\n"
	    "good \"g\" { secret = \"x\" phase = \"mail\" }\n");
	load_err("plug2/a.conf", "plug2/a.conf:4: no such option 'phase' (good takes: timeout, "
	    "on_error, mode, greeting, count, loud, words, wait, max, secret)");
	write_file("plug2/a.conf", BASE "load = { \"good.so\" }\ngood \"g\" { }\n");
	load_err("plug2/a.conf", "plug2/a.conf:4: good \"g\": option \"secret\" is required");
	/* A failed load releases the plugins it loaded. */
	assert_false(plugin_loaded("plug2/good.so"));
	write_file("plug2/a.conf", BASE "load = {\n\t\"good.so\",\n\t\"abi.so\"\n}\n");
	load_err("plug2/a.conf", "plug2/a.conf:5: ");
	load_err("plug2/a.conf", "plug2/abi.so: ABI version 2, but this sluice needs 1");
	assert_false(plugin_loaded("plug2/good.so"));
	/* Loaded twice: one module, one reference kept. */
	write_file("plug2/a.conf", BASE "load = { \"good.so\", \"./good.so\" }\n");
	{
		struct config	*cfg = load_ok("plug2/a.conf");

		assert_int_equal(cfg->nmodules, 1);
		assert_int_equal(cfg->modules[0]->refs, 1);
		config_free(&cfg);
	}
	assert_false(plugin_loaded("plug2/good.so"));
}

/* --- Accessors ---------------------------------------------------------------------- */

/* Run fn with stderr (where the log goes by default) into tmpdir/rel. */
static void
capture_stderr(const char *rel, void (*fn)(void *), void *arg)
{
	int	 saved, fd;

	assert_true((saved = dup(STDERR_FILENO)) != -1);
	assert_true((fd = open(path_of(rel), O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	fn(arg);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
}

/* How many lines of tmpdir/rel contain needle. */
static int
count_lines(const char *rel, const char *needle)
{
	char	 line[1024];
	FILE	*f;
	int	 n = 0;

	assert_non_null(f = fopen(path_of(rel), "r"));
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static void
misuse_options(void *arg)
{
	const struct sluice_filter	*f = arg;
	int				 i;

	for (i = 0; i < 3; i++) {
		assert_null(sluice_option_string(f, "undeclared"));
		assert_int_equal(sluice_option_size(f, "note"), 0);
	}
}

/*
 * A plugin's misuse is logged once per module and option, not per call
 * (the names are not used by the other tests: "once" is per process).
 */
static void
test_option_misuse_logged_once(void **state)
{
	struct config		*cfg;
	struct sluice_filter	 f;

	write_file("full.conf", full_conf);
	cfg = load_ok("full.conf");
	f.conf = config_filter_find(cfg, "block");
	log_init("test", 1, 0);
	capture_stderr("misuse.log", misuse_options, &f);
	assert_int_equal(count_lines("misuse.log", "filter=block module=testmod "
	    "option=undeclared: not an option the module declared (a bug in the module); "
	    "read as empty"), 1);
	assert_int_equal(count_lines("misuse.log", "option=note: declared as string, "
	    "read as size"), 1);
	config_free(&cfg);
}

static void
test_option_accessors(void **state)
{
	struct config		*cfg;
	struct sluice_filter	 block, dflt;

	write_file("full.conf", full_conf);
	cfg = load_ok("full.conf");
	block.conf = config_filter_find(cfg, "block");
	dflt.conf = config_filter_find(cfg, "dflt");
	assert_string_equal(sluice_filter_name(&block), "block");
	assert_string_equal(sluice_option_string(&block, "phase"), "mail");
	assert_string_equal(sluice_option_string(&block, "note"), "hi");
	assert_null(sluice_option_string(&dflt, "note"));
	assert_int_equal(sluice_option_int(&block, "count"), -12);
	assert_int_equal(sluice_option_int(&dflt, "count"), 3);
	assert_int_equal(sluice_option_bool(&block, "enabled"), 0);
	assert_int_equal(sluice_option_bool(&dflt, "enabled"), 1);
	assert_int_equal(sluice_option_duration(&block, "delay"), 120000);
	assert_int_equal(sluice_option_size(&block, "limit"), 1024LL * 1024 * 1024);
	assert_int_equal(sluice_option_list_count(&block, "patterns"), 2);
	assert_string_equal(sluice_option_list_item(&block, "patterns", 0), "*@spam.example");
	assert_null(sluice_option_list_item(&block, "patterns", 2));
	/* Plugin bugs: undeclared names and wrong types read as empty. */
	assert_null(sluice_option_string(&block, "nosuch"));
	assert_null(sluice_option_string(&block, "count"));
	assert_int_equal(sluice_option_int(&block, "phase"), 0);
	assert_int_equal(sluice_option_bool(&block, "count"), 0);
	assert_int_equal(sluice_option_duration(&block, "limit"), 0);
	assert_int_equal(sluice_option_size(&block, "delay"), 0);
	assert_int_equal(sluice_option_list_count(&block, "phase"), 0);
	assert_null(sluice_option_list_item(&block, "phase", 0));
	assert_null(sluice_option_string(NULL, "phase"));
	assert_null(sluice_option_string(&block, NULL));
	assert_null(sluice_filter_name(NULL));
	config_free(&cfg);
}

static void
test_enum_names(void **state)
{
	assert_string_equal(config_on_error_name(CONFIG_ON_ERROR_TEMPFAIL), "tempfail");
	assert_string_equal(config_on_error_name(CONFIG_ON_ERROR_ACCEPT), "accept");
	assert_string_equal(config_on_error_name(CONFIG_ON_ERROR_REJECT), "reject");
	assert_string_equal(config_on_error_name((enum config_on_error)7), "unknown");
	assert_string_equal(config_filter_mode_name(CONFIG_FILTER_ENFORCE), "enforce");
	assert_string_equal(config_filter_mode_name(CONFIG_FILTER_OBSERVE), "observe");
	assert_string_equal(config_filter_mode_name((enum config_filter_mode)-1), "unknown");
	assert_string_equal(config_backend_type_name(CONFIG_BACKEND_SMTP), "smtp");
	assert_string_equal(config_backend_type_name(CONFIG_BACKEND_LMTP), "lmtp");
	assert_string_equal(config_backend_type_name(CONFIG_BACKEND_MAILDIR), "maildir");
	assert_string_equal(config_backend_type_name((enum config_backend_type)3), "unknown");
}

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "."
#endif

/*
 * conf/quickstart.conf loads and says what the README promises.  (The
 * full example, conf/sluice.conf, uses the built-in access module, which
 * this test does not link; sluice -t checks it.)
 */
static void
test_quickstart_example(void **state)
{
	char		 path[PATH_MAX], err[ERR_MAX];
	struct config	*cfg;

	snprintf(path, sizeof(path), "%s/conf/quickstart.conf", TEST_SRCDIR);
	if (config_load(path, &cfg, err, sizeof(err)) == -1)
		fail_msg("%s:\n%s", path, err);
	assert_int_equal(cfg->nlisteners, 1);
	assert_string_equal(cfg->listeners[0].name, "quickstart");
	assert_string_equal(cfg->listeners[0].listen[0], "127.0.0.1:2525");
	assert_int_equal(cfg->listeners[0].backend_ref->type, CONFIG_BACKEND_MAILDIR);
	assert_string_equal(cfg->listeners[0].backend_ref->maildir,
	    "/var/tmp/sluice-quickstart/Maildir");
	assert_string_equal(cfg->spool_dir, "/var/tmp/sluice-quickstart/spool");
	assert_string_equal(cfg->user, "nobody");
	assert_int_equal(cfg->log_stderr, 1);
	assert_int_equal(cfg->nfilters, 0);
	config_free(&cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_relay_mode),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_all_value_errors_reported),
		cmocka_unit_test(test_error_truncated),
		cmocka_unit_test(test_braces_in_strings_and_comments),
		cmocka_unit_test(test_comments_anywhere),
		cmocka_unit_test(test_load_assignment),
		cmocka_unit_test_teardown(test_include_relative_to_file, test_teardown),
		cmocka_unit_test(test_include_errors),
		cmocka_unit_test(test_include_failures_do_not_accumulate),
		cmocka_unit_test(test_include_env),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test_teardown(test_load_plugin, test_teardown),
		cmocka_unit_test(test_load_plugin_errors),
		cmocka_unit_test(test_option_accessors),
		cmocka_unit_test(test_option_misuse_logged_once),
		cmocka_unit_test(test_enum_names),
		cmocka_unit_test(test_quickstart_example),
	};

	return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
