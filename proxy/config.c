/*
 * config.c - reading the configuration file into the immutable structs
 * of config.h, and the sluice_option_*() accessors of sluice_filter.h.
 *
 * Two passes.  Pass 1 is our own scanner over the raw text of the main
 * file and every include: it checks that braces balance (libconfuse 3.3
 * accepts a section left open at EOF), records where each top-level
 * section starts (libconfuse only knows where it ended), collects the
 * "load" paths so the plugins' option schemas are known, and blanks the
 * comments out.  It is not done with libconfuse's CFGF_IGNORE_UNKNOWN
 * because 3.3 misparses unknown sections whose last option is a scalar
 * (`x "a" { b = 1 }`), empty ones and nested ones.  Pass 2 is libconfuse
 * with the whole schema (the core sections plus one titled section per
 * module) over the texts pass 1 read, comments blanked: 3.3 counts every
 * # or // comment as three lines and every block comment as two, so its
 * line numbers drift after the first comment, and it refuses a comment
 * inside a list or between a title and its brace.  Values are checked by
 * parse callbacks, so an error names the line of the value; what needs
 * the whole tree (references, duplicates, required keys) is checked after
 * parsing and names the line of the section.  Every error is collected as
 * "file:line: what is wrong" and the load fails if there was any.
 *
 * libconfuse keeps its lexer in globals, so this runs in the main thread
 * only, as config.h says.
 */
#include "autoconf.h"

#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <confuse.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/net.h"
#include "config.h"
#include "log.h"
#include "module.h"
#include "mx.h"
#include "tls.h"
#include "util.h"

#define CONFIG_FILE_MAX		(16 * 1024 * 1024)	/* bytes of one config file */
#define CONFIG_INCLUDE_MAX	10	/* nested includes (libconfuse's own limit) */
#define CONFIG_NEST_MAX		32	/* nested braces in one file */
#define CONFIG_MSG_MAX		1024	/* one error message */
#define CONFIG_NAMES_MAX	256	/* "allowed: a, b, ..." lists */

#define SEC_MS		1000LL
#define MIN_MS		(60 * SEC_MS)
#define HOUR_MS		(60 * MIN_MS)
#define DAY_MS		(24 * HOUR_MS)
#define KIB		1024LL
#define MIB		(1024 * KIB)
#define GIB		(1024 * MIB)

#define CONFIG_SECTION_FLAGS	(CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES)

/* --- Types ---------------------------------------------------------------- */

enum config_kind {
	CONFIG_INT = 0,		/* plain integer */
	CONFIG_DURATION,	/* "30s", stored in milliseconds */
	CONFIG_SIZE		/* "64k", stored in bytes */
};

/* The allowed range of a numeric core option. */
struct config_number {
	const char	*section;	/* "root", "limits", "listener", "backend", "filter" */
	const char	*option;	/* option name */
	enum config_kind kind;		/* how it is written */
	long long	 min;		/* smallest value, besides 0 when zero is set */
	long long	 max;		/* largest value */
	int		 zero;		/* 0 is also allowed ("none", "unlimited") */
};

/* A string option whose value is one of a fixed set of words. */
struct config_enum {
	const char		*option;	/* option name */
	const char *const	*values;	/* allowed words, NULL-terminated */
};

/* Where a top-level section starts, as pass 1 saw it. */
struct config_section_line {
	char	*file;		/* config file */
	char	*keyword;	/* "listener", "backend", a module name, ... */
	char	*title;		/* NULL for untitled sections */
	int	 line;		/* line of the keyword */
};

/* A config file as pass 1 read it, comments blanked, for pass 2. */
struct config_file {
	char	*path;		/* as errors name it */
	char	*text;		/* NUL-terminated */
	size_t	 len;		/* bytes, NUL excluded */
};

/* A plugin path named by "load". */
struct config_load_path {
	char	*path;		/* resolved against the naming file's directory */
	char	*file;		/* config file naming it */
	int	 line;		/* line of the path */
};

/* Everything one config_load() call works with. */
struct config_loader {
	const char	*path;		/* as given to config_load */
	char		*err;		/* the caller's buffer */
	size_t		 errlen;	/* its size */
	size_t		 errused;	/* bytes written, NUL excluded */
	int		 nerrors;	/* errors seen */
	struct config_section_line *sections;	/* pass 1, in file order */
	size_t		 nsections;
	struct config_load_path *loads;	/* pass 1 */
	size_t		 nloads;
	struct config_file *files;	/* pass 1, for pass 2 */
	size_t		 nfiles;
	struct module	**builtins;	/* references held while loading */
	size_t		 nbuiltins;
	cfg_t		*tree;		/* pass 2 */
	cfg_t		**listener_secs;	/* tree section of each cfg->listeners[i] */
	cfg_t		**backend_secs;		/* of each cfg->backends[i] */
	cfg_t		**filter_secs;		/* of each cfg->filters[i] */
	struct config	*cfg;		/* the result being built */
};

/* Pass 1: tokens of the libconfuse syntax. */
enum config_tok {
	TOK_EOF = 0,
	TOK_STRING,		/* bare word, "...", '...' or ${VAR} */
	TOK_OPEN,		/* { */
	TOK_CLOSE,		/* } */
	TOK_LPAREN,		/* ( */
	TOK_RPAREN,		/* ) */
	TOK_EQUAL,		/* = */
	TOK_APPEND,		/* += */
	TOK_COMMA,		/* , */
	TOK_ERROR		/* unterminated string or comment */
};

struct config_token {
	enum config_tok	 type;		/* what it is */
	const char	*start;		/* its bytes, quotes excluded */
	size_t		 len;		/* their length */
	char		 quote;		/* '"', '\'', '$' (${VAR}) or 0 (bare) */
	int		 line;		/* where it starts */
};

struct config_lexer {
	char		*p;		/* next byte; comments get blanked */
	const char	*end;		/* end of the text */
	int		 line;		/* line of p */
	const char	*error;		/* TOK_ERROR: what is not closed */
};

enum config_scan_state {
	SCAN_NAME = 0,		/* expecting an option or section keyword */
	SCAN_AFTER_NAME,	/* expecting =, +=, (, a title or { */
	SCAN_TITLE,		/* expecting { after a title */
	SCAN_VALUE,		/* expecting a value or { after = */
	SCAN_LIST,		/* inside { } of a list value */
	SCAN_ARGS		/* inside ( ) of a function call */
};

struct config_scan_value {
	char	*text;		/* decoded */
	int	 line;		/* where it was */
};

/* A filter section found in the tree, for sorting into file order. */
struct config_instance {
	cfg_t		*sec;		/* its section */
	struct module	*module;	/* its module (the loader's reference) */
	size_t		 seq;		/* where pass 1 saw it */
};

/* Pass 1 over one file. */
struct config_scan {
	struct config_loader *ld;
	const char	*file;		/* as errors name it */
	int		 depth;		/* includes above this file */
	enum config_scan_state state;
	enum config_tok	 prev;		/* type of the previous token */
	char		*name;		/* keyword of the top-level statement */
	int		 name_line;	/* its line */
	char		*title;		/* its title, if any */
	int		 append;	/* "+=" rather than "=" */
	struct config_scan_value *values;	/* list items or arguments */
	size_t		 nvalues;
	int		 braces[CONFIG_NEST_MAX];	/* lines of open braces */
	int		 brace_list[CONFIG_NEST_MAX];	/* opened after '=' */
	size_t		 nbraces;
};

/* --- Prototypes ------------------------------------------------------------ */

static void	 config_error_at(struct config_loader *ld, const char *file, int line,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void	 config_error_section(struct config_loader *ld, cfg_t *sec,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void	 config_error_append(struct config_loader *ld, const char *s);
static const char *config_join(char *buf, size_t size, const char *const *names, size_t n);
static const char *config_join_enum(char *buf, size_t size, const char *const *values);
static char	*config_path_resolve(const char *from, const char *name);
static char	*config_read_file(struct config_loader *ld, const char *file, const char *from,
		    int from_line, size_t *len);

static int	 config_lex_space(struct config_lexer *lx);
static int	 config_lex_is_word(char c);
static enum config_tok config_lex(struct config_lexer *lx, struct config_token *t);
static enum config_tok config_lex_quoted(struct config_lexer *lx, struct config_token *t);
static void	 config_decode_env(const char *s, size_t len, size_t rest, char **buf,
		    size_t *n);
static size_t	 config_decode_escape(const char *s, size_t len, char *out);
static char	*config_token_text(const struct config_token *t);

static void	 config_scan_file(struct config_loader *ld, const char *file, int depth,
		    const char *from, int from_line);
static int	 config_scan_text(struct config_scan *sc, char *text, size_t len);
static void	 config_scan_keep(struct config_loader *ld, const char *file, char *text,
		    size_t len);
static const struct config_file *config_file_find(const struct config_loader *ld,
		    const char *path);
static int	 config_scan_open(struct config_scan *sc, const struct config_token *t);
static void	 config_scan_close(struct config_scan *sc, const struct config_token *t);
static void	 config_scan_statement(struct config_scan *sc, const struct config_token *t);
static void	 config_scan_value(struct config_scan *sc, const struct config_token *t);
static void	 config_scan_values_clear(struct config_scan *sc);
static void	 config_scan_reset(struct config_scan *sc);
static void	 config_scan_complete(struct config_scan *sc, enum config_scan_state how);
static void	 config_scan_section(struct config_scan *sc);
static void	 config_scan_include(struct config_scan *sc);
static void	 config_scan_load(struct config_scan *sc);
static void	 config_loads_clear(struct config_loader *ld);

static void	 config_cb_error(cfg_t *cfg, const char *fmt, va_list ap);
static void	 config_hint_options(cfg_t *cfg, char *buf, size_t size);
static void	 config_hint_duplicate(const struct config_loader *ld, const char *quoted,
		    char *buf, size_t size);
static int	 config_cb_include(cfg_t *cfg, cfg_opt_t *opt, int argc, const char **argv);
static int	 config_cb_number(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);
static int	 config_cb_enum(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);
static int	 config_cb_listener_mode(cfg_t *cfg, cfg_opt_t *opt, const char *value,
		    void *result);
static int	 config_cb_string(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);
static int	 config_cb_address(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);
static int	 config_cb_int(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);
static int	 config_cb_duration(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);
static int	 config_cb_size(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);
static int	 config_parse_value(enum config_kind kind, const char *s, long long *out);
static void	 config_format_value(enum config_kind kind, long long v, char *buf, size_t size);
static const struct config_number *config_number_find(const char *section, const char *option);
static const struct config_enum *config_enum_find(const char *option);
static int	 config_enum_index(const char *const *values, const char *value);
static int	 config_hostname_valid(const char *s);
static int	 config_text_valid(const char *s);
static int	 config_name_valid(const char *s);
static int	 config_address_check(const char *option, const char *value, char *why,
		    size_t size);

static int	 config_load_modules(struct config_loader *ld);
static int	 config_load_builtins(struct config_loader *ld);
static cfg_opt_t *config_schema(struct config_loader *ld);
static cfg_opt_t *config_schema_module(const struct sluice_module *desc);
static void	 config_schema_free(cfg_opt_t *opts);
static int	 config_parse(struct config_loader *ld);
static void	 config_confuse_unwind(void);

static int	 config_section_line(const struct config_loader *ld, cfg_t *sec, size_t *seq);
static char	**config_strlist(cfg_t *sec, const char *name, size_t *n);
static int	 config_was_set(cfg_t *sec, const char *name);
static char	*config_hostname_default(void);
static void	 config_convert(struct config_loader *ld);
static void	 config_convert_globals(struct config_loader *ld, struct config *cfg);
static void	 config_convert_resolver(cfg_t *sec, struct config_resolver *r);
static void	 config_convert_mx(cfg_t *t, struct config_mx *mx);
static int	 config_cb_smart_host(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result);
static void	 config_convert_queue(cfg_t *sec, struct config *cfg);
static void	 config_convert_relay(struct config_loader *ld, struct config_relay *r);
static void	 config_convert_limits(cfg_t *sec, struct config_limits *lim,
		    const struct config_limits *inherit);
static void	 config_convert_listener(struct config_loader *ld, cfg_t *sec,
		    struct config_listener *l);
static void	 config_convert_listener_proxy(struct config_loader *ld, cfg_t *sec,
		    struct config_listener *l);
static void	 config_convert_addresses(char **list, size_t n, struct sockaddr_storage **addrs,
		    socklen_t **lens);
static void	 config_convert_backend(struct config_loader *ld, cfg_t *sec,
		    struct config_backend *b);
static int	 config_instance_cmp(const void *a, const void *b);
static void	 config_convert_filters(struct config_loader *ld);
static void	 config_convert_filter(struct config_loader *ld, cfg_t *sec, struct module *mod,
		    struct config_filter *f);
static void	 config_convert_option(struct config_loader *ld, cfg_t *sec,
		    const struct sluice_option *o, struct config_option_value *v);
static void	 config_resolve(struct config_loader *ld);
static void	 config_resolve_listener(struct config_loader *ld, size_t i);
static void	 config_convert_listener_tls(struct config_loader *ld, cfg_t *sec,
		    struct config_listener *l);
static void	 config_convert_backend_tls(struct config_loader *ld, cfg_t *sec,
		    struct config_backend *b);
static char	*config_strdup_or_null(const char *s);
static void	 config_check_listen_unique(struct config_loader *ld, size_t i);
static void	 config_check_filter_unique(struct config_loader *ld);
static void	 config_loader_free(struct config_loader *ld);
static void	 config_free_strings(char **list, size_t n);
static void	 config_free_filter(struct config_filter *f);
static void	 config_option_warn(const struct config_filter *f, const char *name,
		    const char *why);
static const struct config_option_value *config_option_lookup(const struct sluice_filter *filter,
		    const char *name, enum sluice_option_type type);
static void	 config_convert_listener_auth(struct config_loader *ld, cfg_t *sec,
		    struct config_listener_auth *a);
static void	 config_convert_auths(struct config_loader *ld);
static void	 config_resolve_listener_auth(struct config_loader *ld, cfg_t *sec,
		    struct config_listener *l);

/* --- Tables ----------------------------------------------------------------- */

static const char *const config_targets[] = { "syslog", "stderr", NULL };
static const char *const config_facilities[] = {
	"mail", "daemon", "user", "local0", "local1", "local2", "local3", "local4",
	"local5", "local6", "local7", NULL
};
static const char *const config_levels[] = { "debug", "info", "warning", "error", NULL };
/* In the order of the config.h enums, so an index is the enum value. */
static const char *const config_data_modes[] = { "strict", "normalize", NULL };
static const char *const config_backend_types[] = { "smtp", "lmtp", "maildir", NULL };
static const char *const config_identities[] = { "auto", "xclient", "xforward", "none", NULL };
static const char *const config_on_errors[] = { "tempfail", "accept", "reject", NULL };
static const char *const config_modes[] = { "enforce", "observe", NULL };
static const char *const config_proxy_protocols[] = { "no", "v1", "v2", "any", NULL };
static const char *const config_auth_modes[] = { "none", "offer", "required", NULL };
static const char *const config_auth_types[] = { "passwd_file", "dovecot", NULL };
/* Relay delivery (mx.h): in the order of enum mx_family. */
static const char *const config_inet_protocols[] = { "all", "ipv4", "ipv6", NULL };
static const char *const config_address_preferences[] = { "ipv6", "ipv4", NULL };
static const char *const config_listener_modes[] = { "forward", "relay", NULL };
static const char *const config_queue_syncs[] = { "fdatasync", "syncfs", NULL };
static const char *const config_relay_tls[] = { "none", "may", NULL };

static const struct config_enum config_enums[] = {
	{ "target", config_targets },
	{ "facility", config_facilities },
	{ "level", config_levels },
	{ "data_line_endings", config_data_modes },
	{ "type", config_backend_types },
	{ "identity", config_identities },
	{ "on_error", config_on_errors },
	{ "mode", config_modes },
	{ "proxy_protocol", config_proxy_protocols },
	{ "auth", config_auth_modes },
	{ "inet_protocols", config_inet_protocols },
	{ "address_preference", config_address_preferences },
	{ "sync", config_queue_syncs },
	{ "relay_tls", config_relay_tls },
};

static const struct config_number config_numbers[] = {
	{ "root", "workers", CONFIG_INT, 0, 256, 0 },
	{ "root", "pool_threads", CONFIG_INT, 1, 256, 0 },
	{ "root", "drain_timeout", CONFIG_DURATION, 0, HOUR_MS, 0 },
	{ "root", "max_connections", CONFIG_INT, 1, 1000000, 0 },
	{ "root", "max_connections_per_ip", CONFIG_INT, 0, 1000000, 0 },
	{ "root", "ipv4_prefix", CONFIG_INT, 8, 32, 0 },
	{ "root", "ipv6_prefix", CONFIG_INT, 16, 128, 0 },
	{ "root", "max_connection_rate_per_ip", CONFIG_INT, 0, 1000000, 0 },
	{ "root", "connection_rate_window", CONFIG_DURATION, SEC_MS, DAY_MS, 0 },
	{ "limits", "message_size", CONFIG_SIZE, 0, 64 * GIB, 0 },
	{ "limits", "recipients", CONFIG_INT, 1, 100000, 0 },
	{ "limits", "errors", CONFIG_INT, 1, 1000, 0 },
	{ "limits", "command_line", CONFIG_SIZE, 512, 65536, 0 },
	{ "limits", "text_line", CONFIG_SIZE, 80, 1000000, 1 },
	{ "limits", "idle_timeout", CONFIG_DURATION, SEC_MS, HOUR_MS, 0 },
	{ "limits", "data_timeout", CONFIG_DURATION, SEC_MS, HOUR_MS, 0 },
	{ "limits", "data_time_limit", CONFIG_DURATION, SEC_MS, DAY_MS, 1 },
	{ "limits", "session_timeout", CONFIG_DURATION, SEC_MS, DAY_MS, 1 },
	{ "limits", "spool_memory", CONFIG_SIZE, 4 * KIB, 64 * MIB, 0 },
	{ "limits", "headers", CONFIG_INT, 10, 100000, 0 },
	{ "limits", "header_size", CONFIG_SIZE, KIB, 10 * MIB, 0 },
	{ "limits", "commands_before_mail", CONFIG_INT, 1, 1000000, 1 },
	{ "listener", "greeting_delay", CONFIG_DURATION, 100, 5 * MIN_MS, 1 },
	{ "listener", "max_connections", CONFIG_INT, 0, 1000000, 0 },
	{ "listener", "proxy_timeout", CONFIG_DURATION, SEC_MS, 5 * MIN_MS, 0 },
	{ "backend", "max_connections", CONFIG_INT, 1, 100000, 0 },
	{ "backend", "max_age", CONFIG_DURATION, SEC_MS, DAY_MS, 0 },
	{ "backend", "idle_timeout", CONFIG_DURATION, 100, HOUR_MS, 0 },
	{ "backend", "connect_timeout", CONFIG_DURATION, 100, HOUR_MS, 0 },
	{ "backend", "command_timeout", CONFIG_DURATION, 100, HOUR_MS, 0 },
	{ "backend", "data_timeout", CONFIG_DURATION, 100, HOUR_MS, 0 },
	{ "backend", "down_time", CONFIG_DURATION, 0, HOUR_MS, 0 },
	{ "filter", "timeout", CONFIG_DURATION, 1, HOUR_MS, 0 },
	{ "resolver", "timeout", CONFIG_DURATION, 100, MIN_MS, 0 },
	{ "listener", "auth_fail_delay", CONFIG_DURATION, 0, MIN_MS, 0 },
	{ "listener", "auth_max_failures", CONFIG_INT, 1, 1000000, 0 },
	{ "listener", "auth_failure_window", CONFIG_DURATION, SEC_MS, DAY_MS, 0 },
	{ "listener", "auth_max_session_failures", CONFIG_INT, 1, 100, 0 },
	{ "auth", "timeout", CONFIG_DURATION, 100, MIN_MS, 0 },
	{ "root", "delivery_port", CONFIG_INT, 1, 65535, 1 },
	/* Relay scheduling (deliver.h). */
	{ "root", "min_backoff", CONFIG_DURATION, SEC_MS, DAY_MS, 0 },
	{ "root", "max_backoff", CONFIG_DURATION, SEC_MS, 7 * DAY_MS, 0 },
	{ "root", "max_queue_lifetime", CONFIG_DURATION, SEC_MS, 100 * DAY_MS, 0 },
	{ "root", "delay_warning_time", CONFIG_DURATION, SEC_MS, 100 * DAY_MS, 1 },
	{ "root", "max_deliveries", CONFIG_INT, 1, 10000, 0 },
	{ "root", "max_per_destination", CONFIG_INT, 1, 10000, 0 },
};

/* The limits, by name, for inheritance. */
static const struct {
	const char	*name;
	size_t		 offset;
} config_limit_fields[] = {
	{ "message_size", offsetof(struct config_limits, message_size) },
	{ "recipients", offsetof(struct config_limits, recipients) },
	{ "errors", offsetof(struct config_limits, errors) },
	{ "command_line", offsetof(struct config_limits, command_line) },
	{ "text_line", offsetof(struct config_limits, text_line) },
	{ "idle_timeout", offsetof(struct config_limits, idle_timeout_ms) },
	{ "data_timeout", offsetof(struct config_limits, data_timeout_ms) },
	{ "data_time_limit", offsetof(struct config_limits, data_time_limit_ms) },
	{ "session_timeout", offsetof(struct config_limits, session_timeout_ms) },
	{ "spool_memory", offsetof(struct config_limits, spool_memory) },
	{ "headers", offsetof(struct config_limits, headers) },
	{ "header_size", offsetof(struct config_limits, header_size) },
	{ "commands_before_mail", offsetof(struct config_limits, commands_before_mail) },
};

/* --- Schema ----------------------------------------------------------------- */

#define CONFIG_LIMITS_OPTS(flags)						\
	CFG_INT_CB("message_size", 50 * MIB, flags, config_cb_number),		\
	CFG_INT_CB("recipients", 1000, flags, config_cb_number),		\
	CFG_INT_CB("errors", 20, flags, config_cb_number),			\
	CFG_INT_CB("command_line", 512, flags, config_cb_number),		\
	CFG_INT_CB("text_line", 1000, flags, config_cb_number),		\
	CFG_INT_CB("idle_timeout", 5 * MIN_MS, flags, config_cb_number),	\
	CFG_INT_CB("data_timeout", 3 * MIN_MS, flags, config_cb_number),	\
	CFG_INT_CB("data_time_limit", 10 * MIN_MS, flags, config_cb_number),	\
	CFG_INT_CB("session_timeout", HOUR_MS, flags, config_cb_number),	\
	CFG_INT_CB("spool_memory", 256 * KIB, flags, config_cb_number),	\
	CFG_INT_CB("headers", 1000, flags, config_cb_number),			\
	CFG_INT_CB("header_size", 100 * KIB, flags, config_cb_number),	\
	CFG_INT_CB("commands_before_mail", 100, flags, config_cb_number)

static cfg_opt_t config_log_opts[] = {
	CFG_STR_CB("target", "syslog", CFGF_NONE, config_cb_enum),
	CFG_STR_CB("facility", "mail", CFGF_NONE, config_cb_enum),
	CFG_STR_CB("level", "info", CFGF_NONE, config_cb_enum),
	CFG_END()
};

static cfg_opt_t config_resolver_opts[] = {
	CFG_STR_LIST_CB("forwarders", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_INT_CB("timeout", 5 * SEC_MS, CFGF_NONE, config_cb_number),
	CFG_BOOL("dnssec", cfg_false, CFGF_NONE),
	CFG_BOOL("local_zones", cfg_true, CFGF_NONE),
	CFG_STR_CB("trust_anchor", "/usr/share/dns/root.key", CFGF_NONE, config_cb_string),
	CFG_STR_CB("resolv_conf", "/etc/resolv.conf", CFGF_NONE, config_cb_string),
	CFG_END()
};

static cfg_opt_t config_limits_opts[] = {
	CONFIG_LIMITS_OPTS(CFGF_NONE),
	CFG_END()
};

/* A listener's TLS options (config_convert_listener_tls checks them). */
#define CONFIG_LISTENER_TLS_OPTS						\
	CFG_STR("tls", "none", CFGF_NONE),					\
	CFG_BOOL("tls_required", cfg_false, CFGF_NONE),			\
	CFG_STR_LIST_CB("tls_cert_file", NULL, CFGF_NODEFAULT, config_cb_string), \
	CFG_STR_LIST_CB("tls_key_file", NULL, CFGF_NODEFAULT, config_cb_string), \
	CFG_STR("tls_min_version", "TLSv1.2", CFGF_NONE),			\
	CFG_STR("tls_ciphers", NULL, CFGF_NODEFAULT),				\
	CFG_STR("tls_ciphersuites", NULL, CFGF_NODEFAULT),			\
	CFG_STR_CB("tls_ca_file", NULL, CFGF_NODEFAULT, config_cb_string)

/* A backend's TLS options (config_convert_backend_tls checks them). */
#define CONFIG_BACKEND_TLS_OPTS						\
	CFG_STR("tls", "none", CFGF_NONE),					\
	CFG_BOOL("tls_implicit", cfg_false, CFGF_NONE),			\
	CFG_STR_CB("tls_ca_file", NULL, CFGF_NODEFAULT, config_cb_string),	\
	CFG_STR_CB("tls_server_name", NULL, CFGF_NODEFAULT, config_cb_string), \
	CFG_STR_CB("tls_cert_file", NULL, CFGF_NODEFAULT, config_cb_string),	\
	CFG_STR_CB("tls_key_file", NULL, CFGF_NODEFAULT, config_cb_string)

/* No defaults: what a listener does not set comes from the global limits. */
static cfg_opt_t config_listener_limits_opts[] = {
	CONFIG_LIMITS_OPTS(CFGF_NODEFAULT),
	CFG_END()
};

static cfg_opt_t config_listener_opts[] = {
	CFG_STR_LIST_CB("listen", NULL, CFGF_NODEFAULT, config_cb_address),
	CFG_STR("backend", NULL, CFGF_NODEFAULT),
	CFG_STR_LIST("chain", NULL, CFGF_NODEFAULT),
	CFG_STR_CB("hostname", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_STR_CB("banner", "ESMTP sluice", CFGF_NONE, config_cb_string),
	CFG_STR_CB("data_line_endings", "strict", CFGF_NONE, config_cb_enum),
	CFG_BOOL("received_header", cfg_true, CFGF_NONE),
	CFG_BOOL("reverse_lookup", cfg_true, CFGF_NONE),
	CFG_INT_CB("max_connections", 0, CFGF_NONE, config_cb_number),
	CFG_STR_CB("proxy_protocol", "no", CFGF_NONE, config_cb_enum),
	CFG_STR_LIST("proxy_trusted", NULL, CFGF_NODEFAULT),
	CFG_INT_CB("proxy_timeout", 10 * SEC_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("greeting_delay", 0, CFGF_NONE, config_cb_number),
	CFG_SEC("limits", config_listener_limits_opts, CFGF_NONE),
	CONFIG_LISTENER_TLS_OPTS,
	CFG_STR_CB("mode", "forward", CFGF_NONE, config_cb_listener_mode),
	/* SMTP AUTH (RFC 4954) */
	CFG_STR_CB("auth", "none", CFGF_NONE, config_cb_enum),
	CFG_STR("auth_backend", NULL, CFGF_NODEFAULT),
	CFG_BOOL("auth_plaintext", cfg_false, CFGF_NONE),
	CFG_INT_CB("auth_fail_delay", SEC_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("auth_max_failures", 10, CFGF_NONE, config_cb_number),
	CFG_INT_CB("auth_failure_window", 15 * MIN_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("auth_max_session_failures", 3, CFGF_NONE, config_cb_number),
	CFG_END()
};

/* An "auth NAME { }" section: a credential backend for SMTP AUTH. */
static cfg_opt_t config_auth_opts[] = {
	CFG_STR("type", NULL, CFGF_NODEFAULT),
	CFG_STR_CB("path", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_STR_CB("socket", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_INT_CB("timeout", 5 * SEC_MS, CFGF_NONE, config_cb_number),
	CFG_END()
};

/* The relay queue; the scheduler's options join these. */
static cfg_opt_t config_queue_opts[] = {
	CFG_STR_CB("directory", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_STR_CB("sync", "syncfs", CFGF_NONE, config_cb_enum),
	CFG_END()
};

/* A route: per recipient domain, like Postfix's transport map. */
static cfg_opt_t config_route_opts[] = {
	CFG_STR_CB("smart_host", NULL, CFGF_NODEFAULT, config_cb_smart_host),
	CFG_END()
};

static cfg_opt_t config_backend_opts[] = {
	CFG_STR_CB("type", "smtp", CFGF_NONE, config_cb_enum),
	CFG_STR_LIST_CB("servers", NULL, CFGF_NODEFAULT, config_cb_address),
	CFG_STR_CB("identity", "auto", CFGF_NONE, config_cb_enum),
	CFG_STR_CB("helo_name", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_INT_CB("max_connections", 100, CFGF_NONE, config_cb_number),
	CFG_INT_CB("max_age", 5 * MIN_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("idle_timeout", 30 * SEC_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("connect_timeout", 10 * SEC_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("command_timeout", 5 * MIN_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("data_timeout", 10 * MIN_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("down_time", 30 * SEC_MS, CFGF_NONE, config_cb_number),
	CFG_STR_CB("maildir", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_BOOL("maildir_fsync", cfg_true, CFGF_NONE),
	CONFIG_BACKEND_TLS_OPTS,
	CFG_END()
};

/* The module sections are appended to these by config_schema(). */
static cfg_opt_t config_root_opts[] = {
	CFG_STR_CB("hostname", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_STR_CB("user", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_STR_CB("group", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_STR_CB("pidfile", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_STR_CB("spool_dir", "/var/spool/sluice", CFGF_NONE, config_cb_string),
	CFG_INT_CB("workers", 0, CFGF_NONE, config_cb_number),
	CFG_INT_CB("pool_threads", 4, CFGF_NONE, config_cb_number),
	CFG_INT_CB("drain_timeout", 30 * SEC_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("max_connections", 2000, CFGF_NONE, config_cb_number),
	CFG_INT_CB("max_connections_per_ip", 50, CFGF_NONE, config_cb_number),
	CFG_INT_CB("ipv4_prefix", 32, CFGF_NONE, config_cb_number),
	CFG_INT_CB("ipv6_prefix", 64, CFGF_NONE, config_cb_number),
	CFG_INT_CB("max_connection_rate_per_ip", 0, CFGF_NONE, config_cb_number),
	CFG_INT_CB("connection_rate_window", MIN_MS, CFGF_NONE, config_cb_number),
	CFG_STR_CB("chroot", NULL, CFGF_NODEFAULT, config_cb_string),
	CFG_STR_LIST("load", NULL, CFGF_NODEFAULT),
	CFG_FUNC("include", config_cb_include),
	CFG_SEC("log", config_log_opts, CFGF_NONE),
	CFG_SEC("resolver", config_resolver_opts, CFGF_NONE),
	CFG_SEC("queue", config_queue_opts, CFGF_NONE),
	CFG_SEC("limits", config_limits_opts, CFGF_NONE),
	CFG_SEC("listener", config_listener_opts, CONFIG_SECTION_FLAGS),
	CFG_SEC("backend", config_backend_opts, CONFIG_SECTION_FLAGS),
	CFG_SEC("auth", config_auth_opts, CONFIG_SECTION_FLAGS),
	/* Relay delivery: MX resolution (mx.h). */
	CFG_INT_CB("delivery_port", 0, CFGF_NONE, config_cb_number),
	CFG_STR_CB("inet_protocols", "all", CFGF_NONE, config_cb_enum),
	CFG_STR_CB("address_preference", "ipv6", CFGF_NONE, config_cb_enum),
	CFG_STR_CB("smart_host", NULL, CFGF_NODEFAULT, config_cb_smart_host),
	/* Relay scheduling (deliver.h). */
	CFG_INT_CB("min_backoff", 5 * MIN_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("max_backoff", HOUR_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("max_queue_lifetime", 5 * DAY_MS, CFGF_NONE, config_cb_number),
	CFG_INT_CB("delay_warning_time", 0, CFGF_NONE, config_cb_number),
	CFG_INT_CB("max_deliveries", 20, CFGF_NONE, config_cb_number),
	CFG_INT_CB("max_per_destination", 5, CFGF_NONE, config_cb_number),
	CFG_BOOL("defer_deliveries", cfg_false, CFGF_NONE),
	CFG_STR_CB("relay_tls", "may", CFGF_NONE, config_cb_enum),
	CFG_SEC("route", config_route_opts, CONFIG_SECTION_FLAGS),
	CFG_END()
};

/* Every filter instance has these before its module's own options. */
static cfg_opt_t config_filter_common_opts[] = {
	CFG_INT_CB("timeout", 30 * SEC_MS, CFGF_NONE, config_cb_number),
	CFG_STR_CB("on_error", "tempfail", CFGF_NONE, config_cb_enum),
	CFG_STR_CB("mode", "enforce", CFGF_NONE, config_cb_enum),
};

/*
 * libconfuse's callbacks carry no user pointer; this is the load in
 * progress.  Main thread only, like libconfuse itself.
 */
static struct config_loader *config_current;

/*
 * libconfuse's include stack (lexer.l; the same from 3.0 to 3.4).  We
 * push onto it for include(), and unwind it when a parse fails inside an
 * included file: 3.3 leaves it behind, leaking the FILEs and names, and
 * after ten such failures every include fails with "includes nested too
 * deeply", which would make every later reload fail.
 */
extern struct config_confuse_include {
	FILE		*fp;
	char		*filename;
	unsigned int	 line;
} cfg_include_stack[];
extern int	 cfg_include_stack_ptr;
void		 cfg_scan_fp_begin(FILE *fp);
void		 cfg_scan_fp_end(void);

/* --- Errors ----------------------------------------------------------------- */

/* Append s, with control bytes shown as \xNN so no message forges lines. */
static void
config_error_append(struct config_loader *ld, const char *s)
{
	char	 piece[8];
	size_t	 n;

	if (ld->err == NULL || ld->errlen == 0)
		return;
	for (; *s != '\0'; s++) {
		unsigned char	 c = (unsigned char)*s;

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			snprintf(piece, sizeof(piece), "\\x%02x", c);
		else {
			piece[0] = (char)c;
			piece[1] = '\0';
		}
		n = strlen(piece);
		if (ld->errused + n >= ld->errlen)
			return;
		memcpy(ld->err + ld->errused, piece, n);
		ld->errused += n;
		ld->err[ld->errused] = '\0';
	}
}

static void
config_error_at(struct config_loader *ld, const char *file, int line, const char *fmt, ...)
{
	char	 msg[CONFIG_MSG_MAX], head[PATH_MAX + 32];
	va_list	 ap;
	char	*nl;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One error per line: a newline inside a message is shown, not kept. */
	while ((nl = strchr(msg, '\n')) != NULL)
		*nl = ' ';
	if (line > 0)
		snprintf(head, sizeof(head), "%s:%d: ", file, line);
	else
		snprintf(head, sizeof(head), "%s: ", file);
	ld->nerrors++;
	config_error_append(ld, head);
	config_error_append(ld, msg);
	config_error_append(ld, "\n");
}

/* An error about a whole section, at the line where the section starts. */
static void
config_error_section(struct config_loader *ld, cfg_t *sec, const char *fmt, ...)
{
	char		 msg[CONFIG_MSG_MAX];
	const char	*title = cfg_title(sec);
	const char	*file = sec->filename != NULL ? sec->filename : ld->path;
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (title != NULL)
		config_error_at(ld, file, config_section_line(ld, sec, NULL), "%s \"%s\": %s",
		    sec->name, title, msg);
	else
		config_error_at(ld, file, config_section_line(ld, sec, NULL), "%s: %s",
		    sec->name, msg);
}

/* "a, b, c" for messages, cut with "..." when long. */
static const char *
config_join(char *buf, size_t size, const char *const *names, size_t n)
{
	size_t	 i, used = 0;
	int	 w;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		w = snprintf(buf + used, size - used, "%s%s", i > 0 ? ", " : "", names[i]);
		if (w < 0 || (size_t)w >= size - used) {
			if (size > 4)
				memcpy(buf + (used < size - 4 ? used : size - 4), "...", 4);
			break;
		}
		used += (size_t)w;
	}
	return buf;
}

static const char *
config_join_enum(char *buf, size_t size, const char *const *values)
{
	size_t	 n = 0;

	while (values[n] != NULL)
		n++;
	return config_join(buf, size, values, n);
}

/* --- Files ------------------------------------------------------------------ */

/*
 * name as seen from the file from: absolute and ~ paths as they are,
 * relative ones against from's directory (libconfuse would use the
 * process's working directory).  Caller frees.
 */
static char *
config_path_resolve(const char *from, const char *name)
{
	const char	*slash;
	char		*out;

	if (name[0] == '~')
		return cfg_tilde_expand(name);
	if (name[0] == '/' || from == NULL || (slash = strrchr(from, '/')) == NULL)
		return xstrdup(name);
	xasprintf(&out, "%.*s/%s", (int)(slash - from), from, name);
	return out;
}

/* The whole file, NUL-terminated; NULL after reporting why not. */
static char *
config_read_file(struct config_loader *ld, const char *file, const char *from, int from_line,
    size_t *len)
{
	struct stat	 st;
	char		*buf;
	size_t		 n = 0, size;
	ssize_t		 r;
	int		 fd;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1) {
		if (from != NULL)
			config_error_at(ld, from, from_line, "cannot include %s: %s", file,
			    strerror(errno));
		else
			config_error_at(ld, file, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	size = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < CONFIG_FILE_MAX ?
	    (size_t)st.st_size + 1 : 4096;
	buf = xmalloc(size + 1);
	for (;;) {
		if (n == size) {
			if (size > CONFIG_FILE_MAX) {
				config_error_at(ld, file, 0, "larger than %d bytes; not a "
				    "config file", CONFIG_FILE_MAX);
				goto fail;
			}
			size *= 2;
			buf = xreallocarray(buf, size + 1, 1);
		}
		if ((r = read(fd, buf + n, size - n)) == 0)
			break;
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			config_error_at(ld, file, 0, "cannot read: %s", strerror(errno));
			goto fail;
		}
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

/* --- Pass 1: the lexer ---------------------------------------------------- */

/* Bytes that end a bare word, as in libconfuse's lexer.l. */
static int
config_lex_is_word(char c)
{
	return c != '\0' && strchr(" #\"'\t\n\r={}()+,*", c) == NULL;
}

/*
 * Skip blanks, comments and bytes libconfuse ignores; -1 on an open
 * comment.  Comments are overwritten with spaces (newlines stay), so
 * libconfuse never sees one.
 */
static int
config_lex_space(struct config_lexer *lx)
{
	char	*p;
	int	 line;

	while (lx->p < lx->end) {
		char	 c = *lx->p;
		char	 next = lx->p + 1 < lx->end ? lx->p[1] : '\0';

		if (c == '\n')
			lx->line++;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '*' ||
		    (c == '+' && next != '=')) {
			lx->p++;
		} else if (c == '#' || (c == '/' && next == '/')) {
			while (lx->p < lx->end && *lx->p != '\n')
				*lx->p++ = ' ';
		} else if (c == '/' && next == '*') {
			line = lx->line;
			for (p = lx->p + 2; p + 1 < lx->end && !(p[0] == '*' && p[1] == '/'); p++)
				if (*p == '\n')
					lx->line++;
			if (p + 1 >= lx->end) {
				lx->line = line;
				lx->error = "comment opened here is not closed";
				return -1;
			}
			for (; lx->p < p + 2; lx->p++)
				if (*lx->p != '\n')
					*lx->p = ' ';
		} else
			break;
	}
	return 0;
}

/* A "..." or '...' string; the lexer has seen the quote. */
static enum config_tok
config_lex_quoted(struct config_lexer *lx, struct config_token *t)
{
	char	*p = lx->p + 1;
	char	*close;
	char	 q = *lx->p;

	t->quote = q;
	t->start = p;
	while (p < lx->end) {
		if (*p == q) {
			t->len = (size_t)(p - t->start);
			lx->p = p + 1;
			return t->type = TOK_STRING;
		}
		if (*p == '\\') {
			if (p + 1 >= lx->end)
				break;
			if (p[1] == '\n')
				lx->line++;
			p += 2;
			continue;
		}
		/* ${VAR} may hide a quote; libconfuse counts no lines inside it. */
		if (q == '"' && *p == '$' && p + 1 < lx->end && p[1] == '{' &&
		    (close = memchr(p, '}', (size_t)(lx->end - p))) != NULL) {
			p = close + 1;
			continue;
		}
		if (*p == '\n')
			lx->line++;
		p++;
	}
	lx->line = t->line;
	lx->error = "string opened here is not closed";
	return t->type = TOK_ERROR;
}

static enum config_tok
config_lex(struct config_lexer *lx, struct config_token *t)
{
	static const char	 singles[] = "{}()=,";
	static const enum config_tok single_types[] = {
		TOK_OPEN, TOK_CLOSE, TOK_LPAREN, TOK_RPAREN, TOK_EQUAL, TOK_COMMA
	};
	const char		*s;
	char			*close;

	memset(t, 0, sizeof(*t));
	if (config_lex_space(lx) == -1)
		return t->type = TOK_ERROR;
	t->line = lx->line;
	if (lx->p >= lx->end)
		return t->type = TOK_EOF;
	if ((s = strchr(singles, *lx->p)) != NULL) {
		lx->p++;
		return t->type = single_types[s - singles];
	}
	if (*lx->p == '+') {
		lx->p += 2;
		return t->type = TOK_APPEND;
	}
	if (*lx->p == '"' || *lx->p == '\'')
		return config_lex_quoted(lx, t);
	if (*lx->p == '$' && lx->p + 1 < lx->end && lx->p[1] == '{' &&
	    (close = memchr(lx->p, '}', (size_t)(lx->end - lx->p))) != NULL) {
		t->quote = '$';
		t->start = lx->p + 2;
		t->len = (size_t)(close - t->start);
		lx->p = close + 1;
		return t->type = TOK_STRING;
	}
	t->start = lx->p;
	while (lx->p < lx->end && config_lex_is_word(*lx->p))
		lx->p++;
	t->len = (size_t)(lx->p - t->start);
	return t->type = TOK_STRING;
}

/*
 * ${NAME} or ${NAME:-default}: s is what is between the braces; rest is
 * how many bytes of the token are left, to keep room for them in *buf.
 */
static void
config_decode_env(const char *s, size_t len, size_t rest, char **buf, size_t *n)
{
	char		*name = xstrndup(s, len);
	char		*sep = strchr(name, ':');
	const char	*value, *fallback = NULL;
	size_t		 vlen;

	if (sep != NULL && sep[1] == '-') {
		*sep = '\0';
		fallback = sep + 2;
	}
	if ((value = getenv(name)) == NULL)
		value = fallback != NULL ? fallback : "";
	vlen = strlen(value);
	*buf = xreallocarray(*buf, *n + vlen + rest + 1, 1);
	memcpy(*buf + *n, value, vlen);
	*n += vlen;
	free(name);
}

/* One backslash escape of a "..." string at s (after the backslash). */
static size_t
config_decode_escape(const char *s, size_t len, char *out)
{
	static const char	 from[] = "nrbfaetv";
	static const char	 to[] = "\n\r\b\f\a\033\t\v";
	const char		*c;
	unsigned int		 v = 0;
	size_t			 i = 0;

	if ((c = strchr(from, s[0])) != NULL && s[0] != '\0') {
		*out = to[c - from];
		return 1;
	}
	if (s[0] >= '0' && s[0] <= '7') {
		for (; i < 3 && i < len && s[i] >= '0' && s[i] <= '7'; i++)
			v = v * 8 + (unsigned int)(s[i] - '0');
		*out = (char)(v & 0xff);
		return i;
	}
	if (s[0] == 'x' && len > 1 && strchr("0123456789abcdefABCDEF", s[1]) != NULL &&
	    s[1] != '\0') {
		for (i = 1; i < 3 && i < len && s[i] != '\0' &&
		    strchr("0123456789abcdefABCDEF", s[i]) != NULL; i++)
			v = v * 16 + (unsigned int)(s[i] <= '9' ? s[i] - '0' :
			    (s[i] | 0x20) - 'a' + 10);
		*out = (char)v;
		return i;
	}
	*out = s[0];
	return 1;
}

/* The value of a string token, as libconfuse will see it.  Caller frees. */
static char *
config_token_text(const struct config_token *t)
{
	char		*buf = xmalloc(t->len + 1);
	const char	*s = t->start, *close;
	size_t		 i = 0, n = 0;

	if (t->quote == 0 || t->quote == '$') {
		if (t->quote == '$') {
			config_decode_env(s, t->len, 0, &buf, &n);
		} else {
			memcpy(buf, s, t->len);
			n = t->len;
		}
		buf[n] = '\0';
		return buf;
	}
	while (i < t->len) {
		if (t->quote == '"' && s[i] == '$' && i + 1 < t->len && s[i + 1] == '{' &&
		    (close = memchr(s + i, '}', t->len - i)) != NULL) {
			config_decode_env(s + i + 2, (size_t)(close - s - i - 2),
			    t->len - i, &buf, &n);
			i = (size_t)(close - s) + 1;
		} else if (s[i] != '\\' || i + 1 >= t->len) {
			buf[n++] = s[i++];
		} else if (s[i + 1] == '\n') {
			i += 2;
		} else if (t->quote == '\'') {
			if (s[i + 1] != '\\' && s[i + 1] != '\'')
				buf[n++] = '\\';
			buf[n++] = s[i + 1];
			i += 2;
		} else {
			i++;
			i += config_decode_escape(s + i, t->len - i, &buf[n++]);
		}
	}
	buf[n] = '\0';
	return buf;
}

/* --- Pass 1: the scanner -------------------------------------------------- */

static void
config_scan_file(struct config_loader *ld, const char *file, int depth, const char *from,
    int from_line)
{
	struct config_scan	 sc;
	char			*text;
	size_t			 len, i;

	if ((text = config_read_file(ld, file, from, from_line, &len)) == NULL)
		return;
	memset(&sc, 0, sizeof(sc));
	sc.ld = ld;
	sc.file = file;
	sc.depth = depth;
	if (config_scan_text(&sc, text, len) == 0)
		for (i = 0; i < sc.nbraces; i++)
			config_error_at(ld, file, sc.braces[i], "%s opened here is not closed",
			    sc.brace_list[i] ? "list" : "section");
	config_scan_reset(&sc);
	config_scan_keep(ld, file, text, len);
}

/* Keep a file's blanked text for pass 2 (once per path); takes text. */
static void
config_scan_keep(struct config_loader *ld, const char *file, char *text, size_t len)
{
	struct config_file	*f;

	if (config_file_find(ld, file) != NULL) {
		free(text);
		return;
	}
	ld->files = xreallocarray(ld->files, ld->nfiles + 1, sizeof(*ld->files));
	f = &ld->files[ld->nfiles++];
	f->path = xstrdup(file);
	f->text = text;
	f->len = len;
}

static const struct config_file *
config_file_find(const struct config_loader *ld, const char *path)
{
	size_t	 i;

	for (i = 0; i < ld->nfiles; i++)
		if (strcmp(ld->files[i].path, path) == 0)
			return &ld->files[i];
	return NULL;
}

/* 0 when the whole text was scanned, -1 when it stopped at an error. */
static int
config_scan_text(struct config_scan *sc, char *text, size_t len)
{
	struct config_lexer	 lx;
	struct config_token	 t;
	const char		*nul;

	if ((nul = memchr(text, '\0', len)) != NULL) {
		lx.line = 1;
		for (lx.p = text; lx.p < nul; lx.p++)
			lx.line += *lx.p == '\n';
		config_error_at(sc->ld, sc->file, lx.line, "NUL byte; not a text file");
		return -1;
	}
	lx.p = text;
	lx.end = text + len;
	lx.line = 1;
	lx.error = NULL;
	while (config_lex(&lx, &t) != TOK_EOF) {
		if (t.type == TOK_ERROR) {
			config_error_at(sc->ld, sc->file, lx.line, "%s", lx.error);
			return -1;
		}
		if (t.type == TOK_OPEN) {
			if (config_scan_open(sc, &t) == -1)
				return -1;
		} else if (t.type == TOK_CLOSE)
			config_scan_close(sc, &t);
		else if (sc->nbraces == 0 || (sc->state == SCAN_LIST && sc->nbraces == 1))
			config_scan_statement(sc, &t);
		sc->prev = t.type;
	}
	return 0;
}

static int
config_scan_open(struct config_scan *sc, const struct config_token *t)
{
	int	 list = sc->prev == TOK_EQUAL || sc->prev == TOK_APPEND;

	if (sc->nbraces == CONFIG_NEST_MAX) {
		config_error_at(sc->ld, sc->file, t->line, "braces nested more than %d deep",
		    CONFIG_NEST_MAX);
		return -1;
	}
	if (sc->nbraces == 0) {
		if (sc->state == SCAN_VALUE) {
			config_scan_values_clear(sc);
			sc->state = SCAN_LIST;
		} else {
			if (sc->state == SCAN_AFTER_NAME || sc->state == SCAN_TITLE)
				config_scan_section(sc);
			sc->state = SCAN_NAME;
		}
	} else if (sc->state == SCAN_LIST)
		sc->state = SCAN_NAME;	/* not a list after all; libconfuse will say */
	sc->braces[sc->nbraces] = t->line;
	sc->brace_list[sc->nbraces] = list;
	sc->nbraces++;
	return 0;
}

static void
config_scan_close(struct config_scan *sc, const struct config_token *t)
{
	if (sc->nbraces == 0) {
		config_error_at(sc->ld, sc->file, t->line, "'}' without a matching '{'");
		return;
	}
	sc->nbraces--;
	if (sc->nbraces == 0) {
		if (sc->state == SCAN_LIST)
			config_scan_complete(sc, SCAN_VALUE);
		sc->state = SCAN_NAME;
	}
}

/* One token of a top-level statement, or of a list value at depth 1. */
static void
config_scan_statement(struct config_scan *sc, const struct config_token *t)
{
	enum config_scan_state	 state = sc->state;

	sc->state = SCAN_NAME;
	switch (state) {
	case SCAN_NAME:
		config_scan_reset(sc);
		if (t->type == TOK_STRING) {
			sc->name = config_token_text(t);
			sc->name_line = t->line;
			sc->state = SCAN_AFTER_NAME;
		}
		break;
	case SCAN_AFTER_NAME:
		if (t->type == TOK_EQUAL || t->type == TOK_APPEND) {
			sc->append = t->type == TOK_APPEND;
			sc->state = SCAN_VALUE;
		} else if (t->type == TOK_LPAREN) {
			config_scan_values_clear(sc);
			sc->state = SCAN_ARGS;
		} else if (t->type == TOK_STRING) {
			sc->title = config_token_text(t);
			sc->state = SCAN_TITLE;
		}
		break;
	case SCAN_VALUE:
		config_scan_values_clear(sc);
		if (t->type == TOK_STRING) {
			config_scan_value(sc, t);
			config_scan_complete(sc, SCAN_VALUE);
		}
		break;
	case SCAN_LIST:
	case SCAN_ARGS:
		if (t->type == TOK_STRING || t->type == TOK_COMMA) {
			if (t->type == TOK_STRING)
				config_scan_value(sc, t);
			sc->state = state;
		} else if (state == SCAN_ARGS && t->type == TOK_RPAREN)
			config_scan_complete(sc, SCAN_ARGS);
		break;
	default:
		break;
	}
}

static void
config_scan_value(struct config_scan *sc, const struct config_token *t)
{
	sc->values = xreallocarray(sc->values, sc->nvalues + 1, sizeof(*sc->values));
	sc->values[sc->nvalues].text = config_token_text(t);
	sc->values[sc->nvalues].line = t->line;
	sc->nvalues++;
}

static void
config_scan_values_clear(struct config_scan *sc)
{
	while (sc->nvalues > 0)
		free(sc->values[--sc->nvalues].text);
	free(sc->values);
	sc->values = NULL;
}

/* Forget the statement in progress. */
static void
config_scan_reset(struct config_scan *sc)
{
	config_scan_values_clear(sc);
	free(sc->name);
	free(sc->title);
	sc->name = sc->title = NULL;
}

/* A statement is complete (how: SCAN_VALUE or SCAN_ARGS): act on load and include. */
static void
config_scan_complete(struct config_scan *sc, enum config_scan_state how)
{
	if (sc->name != NULL) {
		if (how == SCAN_ARGS && strcmp(sc->name, "include") == 0)
			config_scan_include(sc);
		else if (how == SCAN_VALUE && strcmp(sc->name, "load") == 0)
			config_scan_load(sc);
	}
	config_scan_reset(sc);
	sc->state = SCAN_NAME;
}

static void
config_scan_section(struct config_scan *sc)
{
	struct config_loader		*ld = sc->ld;
	struct config_section_line	*s;

	if (sc->name == NULL)
		return;
	ld->sections = xreallocarray(ld->sections, ld->nsections + 1, sizeof(*ld->sections));
	s = &ld->sections[ld->nsections++];
	s->file = xstrdup(sc->file);
	s->keyword = sc->name;
	s->title = sc->title;
	s->line = sc->name_line;
	sc->name = sc->title = NULL;
}

static void
config_scan_include(struct config_scan *sc)
{
	char	*path;
	int	 line;

	if (sc->nvalues != 1)
		return;		/* libconfuse says what is wrong */
	line = sc->values[0].line;
	if (sc->depth >= CONFIG_INCLUDE_MAX) {
		config_error_at(sc->ld, sc->file, line, "includes nested more than %d deep "
		    "(does a file include itself?)", CONFIG_INCLUDE_MAX);
		return;
	}
	path = config_path_resolve(sc->file, sc->values[0].text);
	config_scan_file(sc->ld, path, sc->depth + 1, sc->file, line);
	free(path);
}

/* "load = {...}" replaces what earlier lines loaded, "+=" adds, as in libconfuse. */
static void
config_scan_load(struct config_scan *sc)
{
	struct config_loader	*ld = sc->ld;
	struct config_load_path	*lp;
	size_t			 i;

	if (!sc->append)
		config_loads_clear(ld);
	for (i = 0; i < sc->nvalues; i++) {
		ld->loads = xreallocarray(ld->loads, ld->nloads + 1, sizeof(*ld->loads));
		lp = &ld->loads[ld->nloads++];
		lp->path = config_path_resolve(sc->file, sc->values[i].text);
		lp->file = xstrdup(sc->file);
		lp->line = sc->values[i].line;
	}
}

static void
config_loads_clear(struct config_loader *ld)
{
	while (ld->nloads > 0) {
		ld->nloads--;
		free(ld->loads[ld->nloads].path);
		free(ld->loads[ld->nloads].file);
	}
}

/* --- Pass 2: libconfuse callbacks ----------------------------------------- */

static void
config_cb_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	struct config_loader	*ld = config_current;
	char			 msg[CONFIG_MSG_MAX], hint[CONFIG_NAMES_MAX + 64] = "";
	const char		*file = NULL;

	if (ld == NULL)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (cfg != NULL)
		file = cfg->filename;
	/* log and limits exist before parsing starts and never learn a file name. */
	if (file == NULL && ld->tree != NULL)
		file = ld->tree->filename;
	if (strncmp(msg, "no such option '", 16) == 0 && cfg != NULL)
		config_hint_options(cfg, hint, sizeof(hint));
	else if (strncmp(msg, "found duplicate title '", 23) == 0)
		config_hint_duplicate(ld, msg + 23, hint, sizeof(hint));
	config_error_at(ld, file != NULL ? file : ld->path, cfg != NULL ? cfg->line : 0,
	    "%s%s", msg, hint);
}

/* What may be written in section cfg, for an unknown option's error. */
static void
config_hint_options(cfg_t *cfg, char *buf, size_t size)
{
	const char	*names[64];
	char		 list[CONFIG_NAMES_MAX];
	size_t		 n = 0, i;
	int		 root = strcmp(cfg->name, "root") == 0;

	for (i = 0; cfg->opts[i].name != NULL && n < nitems(names); i++) {
		/* At the top level, only the modules are worth listing. */
		if (root && i < nitems(config_root_opts) - 1)
			continue;
		names[n++] = cfg->opts[i].name;
	}
	if (root)
		snprintf(buf, size, " (not a core option, section or module; modules: %s)",
		    n > 0 ? config_join(list, sizeof(list), names, n) : "none");
	else
		snprintf(buf, size, " (%s takes: %s)", cfg->name,
		    config_join(list, sizeof(list), names, n));
}

/* Where the first section of a duplicated title is ("name'" follows the quote). */
static void
config_hint_duplicate(const struct config_loader *ld, const char *quoted, char *buf,
    size_t size)
{
	const struct config_section_line	*s, *first = NULL;
	size_t					 len = strlen(quoted), i, j;

	if (len == 0 || quoted[len - 1] != '\'')
		return;
	len--;
	for (i = 0; i < ld->nsections && first == NULL; i++) {
		s = &ld->sections[i];
		if (s->title == NULL || strlen(s->title) != len ||
		    strncmp(s->title, quoted, len) != 0)
			continue;
		for (j = i + 1; j < ld->nsections; j++)
			if (ld->sections[j].title != NULL &&
			    strcmp(ld->sections[j].keyword, s->keyword) == 0 &&
			    strcmp(ld->sections[j].title, s->title) == 0)
				first = s;
	}
	if (first != NULL)
		snprintf(buf, size, ": %s \"%s\" is already defined at %s:%d",
		    first->keyword, first->title, first->file, first->line);
}

/*
 * include("file"), relative to the including file's directory (libconfuse
 * would use the process's working directory), from the text pass 1 read
 * with its comments blanked.  This is cfg_lexer_include() of libconfuse
 * 3.3 with another source for the FILE: the lexer pops it at its end.
 */
static int
config_cb_include(cfg_t *cfg, cfg_opt_t *opt, int argc, const char **argv)
{
	const struct config_file	*f;
	char				*path;
	FILE				*fp;

	if (argc != 1) {
		cfg_error(cfg, "include takes one file name, as in include(\"conf.d/x.conf\")");
		return 1;
	}
	path = config_path_resolve(cfg->filename, argv[0]);
	if (config_current == NULL || (f = config_file_find(config_current, path)) == NULL) {
		/* Pass 1 reads every include it can reach; this one it could not. */
		cfg_error(cfg, "cannot include %s here", path);
		free(path);
		return 1;
	}
	if (f->len == 0 || cfg_include_stack_ptr >= CONFIG_INCLUDE_MAX ||
	    (fp = fmemopen(f->text, f->len, "r")) == NULL) {
		if (f->len != 0)
			cfg_error(cfg, "cannot include %s: %s", path, cfg_include_stack_ptr >=
			    CONFIG_INCLUDE_MAX ? "nested too deeply" : strerror(errno));
		free(path);
		return f->len != 0;
	}
	cfg_include_stack[cfg_include_stack_ptr].filename = cfg->filename;
	cfg_include_stack[cfg_include_stack_ptr].line = (unsigned int)cfg->line;
	cfg_include_stack[cfg_include_stack_ptr].fp = fp;
	cfg_include_stack_ptr++;
	cfg->filename = path;
	cfg->line = 1;
	cfg_scan_fp_begin(fp);
	return 0;
}

/* Numeric core options: syntax and range, reported at the value's line. */
static int
config_cb_number(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	static const char *const kinds[] = {
		"an integer", "a duration (e.g. 250ms, 30s, 5m, 2h, 1d)",
		"a size (e.g. 512, 64k, 10M, 1G)"
	};
	const struct config_number	*n;
	const char			*section = cfg->name;
	char				 lo[32], hi[32];
	long long			 v;

	if (strcmp(section, "root") != 0 && strcmp(section, "limits") != 0 &&
	    strcmp(section, "listener") != 0 && strcmp(section, "backend") != 0 &&
	    strcmp(section, "resolver") != 0 && strcmp(section, "auth") != 0)
		section = "filter";
	if ((n = config_number_find(section, opt->name)) == NULL)
		return config_cb_int(cfg, opt, value, result);
	*(long *)result = 0;
	if (config_parse_value(n->kind, value, &v) == -1) {
		cfg_error(cfg, "%s: \"%s\" is not %s", opt->name, value, kinds[n->kind]);
		return 0;
	}
	if ((v < n->min || v > n->max) && !(v == 0 && n->zero)) {
		config_format_value(n->kind, n->min, lo, sizeof(lo));
		config_format_value(n->kind, n->max, hi, sizeof(hi));
		cfg_error(cfg, "%s = %s is out of range (%s%s..%s)", opt->name, value,
		    n->zero ? "0 or " : "", lo, hi);
		return 0;
	}
	*(long *)result = (long)v;
	return 0;
}

/*
 * The callbacks report a bad value and return 0, so parsing goes on and
 * every bad value is reported at once; the error count fails the load.
 */
/* A listener's mode (its own table: "mode" of a filter is another enum). */
static int
config_cb_listener_mode(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	*(const char **)result = value;
	if (config_enum_index(config_listener_modes, value) == -1)
		cfg_error(cfg, "mode \"%s\" is not valid (allowed: forward, relay)", value);
	return 0;
}

static int
config_cb_enum(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const struct config_enum	*e = config_enum_find(opt->name);
	char				 list[CONFIG_NAMES_MAX];

	*(const char **)result = value;
	if (e != NULL && config_enum_index(e->values, value) == -1)
		cfg_error(cfg, "%s \"%s\" is not valid (allowed: %s)", opt->name, value,
		    config_join_enum(list, sizeof(list), e->values));
	return 0;
}

/* "192.0.2.53", "127.0.0.1@5353", "2001:db8::53@53": unbound's forwarder syntax. */
static int
config_forwarder_valid(const char *value)
{
	char		 host[INET6_ADDRSTRLEN + 8], *at, *end;
	unsigned char	 buf[sizeof(struct in6_addr)];
	long		 port;

	if (strlcpy_s(host, value, sizeof(host)) >= sizeof(host))
		return 0;
	if ((at = strchr(host, '@')) != NULL) {
		*at++ = '\0';
		errno = 0;
		port = strtol(at, &end, 10);
		if (*at == '\0' || *end != '\0' || errno != 0 || port < 1 || port > 65535)
			return 0;
	}
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int
config_cb_string(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	const char	*name = opt->name;

	*(const char **)result = value;
	if (strcmp(name, "hostname") == 0 || strcmp(name, "helo_name") == 0) {
		if (!config_hostname_valid(value))
			cfg_error(cfg, "%s \"%s\" is not a host name (letters, digits, '.', "
			    "'-', '_'; or an address literal in [])", name, value);
	} else if (strcmp(name, "banner") == 0) {
		if (!config_text_valid(value))
			cfg_error(cfg, "banner must be printable ASCII text of at most 200 "
			    "bytes (it is sent in the SMTP greeting)");
	} else if (strcmp(name, "user") == 0 || strcmp(name, "group") == 0) {
		if (value[0] == '\0')
			cfg_error(cfg, "%s must not be empty", name);
	} else if (strcmp(name, "forwarders") == 0) {
		if (!config_forwarder_valid(value))
			cfg_error(cfg, "forwarder \"%s\" is not an IP address with an optional "
			    "port (\"192.0.2.53\", \"127.0.0.1@5353\", \"::1@53\")", value);
	} else if (strcmp(name, "tls_server_name") == 0) {
		if (!config_hostname_valid(value))
			cfg_error(cfg, "tls_server_name \"%s\" is not a host name", value);
	} else if (strcmp(name, "resolv_conf") == 0 && value[0] == '\0') {
		/* "" = no forwarders: recurse from the root */
	} else if (value[0] != '/')	/* spool_dir, pidfile, maildir, trust_anchor, chroot */
		cfg_error(cfg, "%s \"%s\" must be an absolute path", name, value);
	return 0;
}

static int
config_cb_address(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char	 why[256];

	*(const char **)result = value;
	if (config_address_check(opt->name, value, why, sizeof(why)) == -1)
		cfg_error(cfg, "%s \"%s\": %s", opt->name, value, why);
	return 0;
}

/* Module options of type INT, DURATION and SIZE: any value of the type. */
static int
config_cb_int(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	long long	 v;

	*(long *)result = 0;
	if (config_parse_value(CONFIG_INT, value, &v) == -1)
		cfg_error(cfg, "%s: \"%s\" is not an integer", opt->name, value);
	else
		*(long *)result = (long)v;
	return 0;
}

static int
config_cb_duration(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	long long	 v;

	*(long *)result = 0;
	if (config_parse_value(CONFIG_DURATION, value, &v) == -1)
		cfg_error(cfg, "%s: \"%s\" is not a duration (e.g. 250ms, 30s, 5m, 2h, 1d)",
		    opt->name, value);
	else
		*(long *)result = (long)v;
	return 0;
}

static int
config_cb_size(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	long long	 v;

	*(long *)result = 0;
	if (config_parse_value(CONFIG_SIZE, value, &v) == -1)
		cfg_error(cfg, "%s: \"%s\" is not a size (e.g. 512, 64k, 10M, 1G)",
		    opt->name, value);
	else
		*(long *)result = (long)v;
	return 0;
}

static int
config_parse_value(enum config_kind kind, const char *s, long long *out)
{
	char	*end;

	if (s == NULL)
		return -1;
	switch (kind) {
	case CONFIG_DURATION:
		return parse_duration_ms(s, out);
	case CONFIG_SIZE:
		return parse_size(s, out);
	default:
		if ((s[0] < '0' || s[0] > '9') && s[0] != '-')
			return -1;
		errno = 0;
		*out = strtoll(s, &end, 10);
		if (errno != 0 || end == s || *end != '\0' || *out < LONG_MIN || *out > LONG_MAX)
			return -1;
		return 0;
	}
}

/* 300000 as "5m", 65536 as "64k": the way a person writes it. */
static void
config_format_value(enum config_kind kind, long long v, char *buf, size_t size)
{
	static const struct {
		long long	 unit;
		const char	*suffix;
	} durations[] = {
		{ DAY_MS, "d" }, { HOUR_MS, "h" }, { MIN_MS, "m" }, { SEC_MS, "s" }, { 1, "ms" }
	}, sizes[] = {
		{ GIB, "G" }, { MIB, "M" }, { KIB, "k" }, { 1, "" }
	};
	size_t	 i;

	if (kind == CONFIG_INT || v == 0) {
		snprintf(buf, size, "%lld", v);
		return;
	}
	if (kind == CONFIG_DURATION) {
		for (i = 0; v % durations[i].unit != 0; i++)
			;
		snprintf(buf, size, "%lld%s", v / durations[i].unit, durations[i].suffix);
	} else {
		for (i = 0; v % sizes[i].unit != 0; i++)
			;
		snprintf(buf, size, "%lld%s", v / sizes[i].unit, sizes[i].suffix);
	}
}

static const struct config_number *
config_number_find(const char *section, const char *option)
{
	size_t	 i;

	for (i = 0; i < nitems(config_numbers); i++)
		if (strcmp(config_numbers[i].section, section) == 0 &&
		    strcmp(config_numbers[i].option, option) == 0)
			return &config_numbers[i];
	return NULL;
}

static const struct config_enum *
config_enum_find(const char *option)
{
	size_t	 i;

	for (i = 0; i < nitems(config_enums); i++)
		if (strcmp(config_enums[i].option, option) == 0)
			return &config_enums[i];
	return NULL;
}

static int
config_enum_index(const char *const *values, const char *value)
{
	int	 i;

	for (i = 0; value != NULL && values[i] != NULL; i++)
		if (strcmp(values[i], value) == 0)
			return i;
	return -1;
}

/* A name for the greeting, Received and EHLO: no spaces, no control bytes. */
static int
config_hostname_valid(const char *s)
{
	size_t	 n = strlen(s);

	if (n == 0 || n > 255)
		return 0;
	for (; *s != '\0'; s++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789.-_:[]", *s) == NULL)
			return 0;
	return 1;
}

/* Banner text: printable ASCII, so it cannot break the reply line. */
static int
config_text_valid(const char *s)
{
	size_t	 n = 0;

	for (; *s != '\0'; s++, n++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return n <= 200;
}

/* Listener, backend and instance names: they appear in logs and chains. */
static int
config_name_valid(const char *s)
{
	size_t	 n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '-' || s[0] == '.')
		return 0;
	for (; *s != '\0'; s++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789._-", *s) == NULL)
			return 0;
	return 1;
}

static int
config_address_check(const char *option, const char *value, char *why, size_t size)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 listen = strcmp(option, "listen") == 0;
	int			 port;
	char			 host[128];

	if (listen && strncmp(value, "unix:", 5) == 0) {
		snprintf(why, size, "sluice listens on TCP only; use a numeric address and "
		    "port such as \"127.0.0.1:25\" or \"[::]:25\"");
		return -1;
	}
	if (sockaddr_parse(value, &ss, &len) == -1) {
		snprintf(why, size, "not a numeric address and port (e.g. \"192.0.2.1:25\", "
		    "\"[2001:db8::1]:25\", \"*:25\"%s)", listen ? "" : ", \"unix:/path\"");
		return -1;
	}
	sockaddr_format((struct sockaddr *)&ss, host, sizeof(host), &port);
	if (ss.ss_family != AF_UNIX && port == 0) {
		snprintf(why, size, "port 0 is not allowed");
		return -1;
	}
	return 0;
}

/* --- Pass 2: modules and schema ------------------------------------------- */

/* module_open() every "load" path; the same plugin twice is kept once. */
static int
config_load_modules(struct config_loader *ld)
{
	struct config	*cfg = ld->cfg;
	struct module	*m;
	char		 why[CONFIG_MSG_MAX];
	size_t		 i, j;

	cfg->modules = xcalloc(ld->nloads ? ld->nloads : 1, sizeof(*cfg->modules));
	for (i = 0; i < ld->nloads; i++) {
		if ((m = module_open(ld->loads[i].path, why, sizeof(why))) == NULL) {
			config_error_at(ld, ld->loads[i].file, ld->loads[i].line, "%s", why);
			continue;
		}
		for (j = 0; j < cfg->nmodules && cfg->modules[j] != m; j++)
			;
		if (j < cfg->nmodules)
			module_release(&m);
		else
			cfg->modules[cfg->nmodules++] = m;
	}
	return ld->nerrors > 0 ? -1 : 0;
}

/* A reference on every built-in while loading: their sections exist. */
static int
config_load_builtins(struct config_loader *ld)
{
	const struct sluice_module *const *b;
	struct module			 *m;
	size_t				  n = 0;

	for (b = module_builtins(); *b != NULL; b++)
		n++;
	ld->builtins = xcalloc(n ? n : 1, sizeof(*ld->builtins));
	for (b = module_builtins(); *b != NULL; b++)
		if ((m = module_builtin((*b)->name)) != NULL)
			ld->builtins[ld->nbuiltins++] = m;
	return 0;
}

/* One module section: the common options, then the module's own. */
static cfg_opt_t *
config_schema_module(const struct sluice_module *desc)
{
	const size_t		 ncommon = nitems(config_filter_common_opts);
	const struct sluice_option *o = desc->options;
	cfg_opt_t		*opts, *x;
	size_t			 n = 0, i;

	while (o != NULL && o[n].name != NULL)
		n++;
	opts = xcalloc(ncommon + n + 1, sizeof(*opts));
	memcpy(opts, config_filter_common_opts, sizeof(config_filter_common_opts));
	for (i = 0; i < n; i++) {
		cfg_opt_t	 str = CFG_STR(o[i].name, NULL, CFGF_NODEFAULT);
		cfg_opt_t	 num = CFG_INT_CB(o[i].name, 0, CFGF_NODEFAULT, config_cb_int);
		cfg_opt_t	 bln = CFG_BOOL(o[i].name, cfg_false, CFGF_NODEFAULT);
		cfg_opt_t	 lst = CFG_STR_LIST(o[i].name, NULL, CFGF_NODEFAULT);

		x = &opts[ncommon + i];
		switch (o[i].type) {
		case SLUICE_OPT_INT:
			*x = num;
			break;
		case SLUICE_OPT_DURATION:
			*x = num;
			x->parsecb = config_cb_duration;
			break;
		case SLUICE_OPT_SIZE:
			*x = num;
			x->parsecb = config_cb_size;
			break;
		case SLUICE_OPT_BOOL:
			*x = bln;
			break;
		case SLUICE_OPT_STRING_LIST:
			*x = lst;
			break;
		default:
			*x = str;
			break;
		}
	}
	return opts;
}

/* The core options plus one titled section per module. */
static cfg_opt_t *
config_schema(struct config_loader *ld)
{
	const size_t	 ncore = nitems(config_root_opts) - 1;
	size_t		 nmods = ld->nbuiltins + ld->cfg->nmodules, i;
	const struct sluice_module *desc;
	cfg_opt_t	*opts;

	opts = xcalloc(ncore + nmods + 1, sizeof(*opts));
	memcpy(opts, config_root_opts, ncore * sizeof(*opts));
	for (i = 0; i < nmods; i++) {
		cfg_opt_t	 sec = CFG_SEC(NULL, NULL, CONFIG_SECTION_FLAGS);

		desc = i < ld->nbuiltins ? ld->builtins[i]->desc :
		    ld->cfg->modules[i - ld->nbuiltins]->desc;
		sec.name = desc->name;
		sec.subopts = config_schema_module(desc);
		opts[ncore + i] = sec;
	}
	return opts;
}

static void
config_schema_free(cfg_opt_t *opts)
{
	size_t	 i;

	for (i = nitems(config_root_opts) - 1; opts[i].name != NULL; i++)
		free(opts[i].subopts);
	free(opts);
}

/*
 * After a failed parse: pop the lexer buffers of the includes still open
 * (cfg_parse_fp() pops only the innermost, and flex's yylex_destroy()
 * frees only the top one) and close what the include stack holds.
 */
static void
config_confuse_unwind(void)
{
	int	 i;

	for (i = 0; i < cfg_include_stack_ptr && i < CONFIG_INCLUDE_MAX; i++)
		cfg_scan_fp_end();
	while (cfg_include_stack_ptr > 0 && cfg_include_stack_ptr <= CONFIG_INCLUDE_MAX) {
		cfg_include_stack_ptr--;
		if (cfg_include_stack[cfg_include_stack_ptr].fp != NULL)
			fclose(cfg_include_stack[cfg_include_stack_ptr].fp);
		free(cfg_include_stack[cfg_include_stack_ptr].filename);
		cfg_include_stack[cfg_include_stack_ptr].fp = NULL;
		cfg_include_stack[cfg_include_stack_ptr].filename = NULL;
	}
	cfg_include_stack_ptr = 0;
}

/* Pass 2: 0 when the tree is complete enough to convert (errors or not). */
static int
config_parse(struct config_loader *ld)
{
	const struct config_file	*top;
	cfg_opt_t			*opts;
	FILE				*fp;
	int				 rc;

	opts = config_schema(ld);
	ld->tree = cfg_init(opts, CFGF_NONE);
	config_schema_free(opts);
	if (ld->tree == NULL)
		fatal("cfg_init");
	cfg_set_error_function(ld->tree, config_cb_error);
	if ((top = config_file_find(ld, ld->path)) == NULL)
		fatalx("config_parse: %s was not read", ld->path);
	/* An empty file is a valid, empty config (then: no listener). */
	if ((fp = fmemopen(top->len > 0 ? top->text : (char *)"\n", top->len > 0 ?
	    top->len : 1, "r")) == NULL)
		fatal("fmemopen");
	ld->tree->filename = xstrdup(ld->path);
	config_current = ld;
	rc = cfg_parse_fp(ld->tree, fp);
	config_current = NULL;
	fclose(fp);
	if (rc != CFG_SUCCESS) {
		config_confuse_unwind();
		if (ld->nerrors == 0)
			config_error_at(ld, ld->path, 0, "cannot be parsed");
		return -1;
	}
	return 0;
}

/* --- Conversion --------------------------------------------------------------- */

/* The line where sec starts (pass 1 saw it); *seq its place in file order. */
static int
config_section_line(const struct config_loader *ld, cfg_t *sec, size_t *seq)
{
	const struct config_section_line	*s;
	const char				*title = cfg_title(sec);
	size_t					 i;

	for (i = 0; i < ld->nsections; i++) {
		s = &ld->sections[i];
		if (strcmp(s->keyword, sec->name) != 0 ||
		    (title == NULL) != (s->title == NULL) ||
		    (title != NULL && strcmp(title, s->title) != 0) ||
		    (sec->filename != NULL && strcmp(sec->filename, s->file) != 0))
			continue;
		if (seq != NULL)
			*seq = i;
		return s->line;
	}
	if (seq != NULL)
		*seq = SIZE_MAX;
	return sec->line;
}

static char **
config_strlist(cfg_t *sec, const char *name, size_t *n)
{
	char	**list;
	size_t	  i;

	*n = cfg_size(sec, name);
	if (*n == 0)
		return NULL;
	list = xcalloc(*n, sizeof(*list));
	for (i = 0; i < *n; i++)
		list[i] = xstrdup(cfg_getnstr(sec, name, (unsigned int)i));
	return list;
}

/* Given in the file (also as an empty list), not only defaulted. */
static int
config_was_set(cfg_t *sec, const char *name)
{
	cfg_opt_t	*opt = cfg_getopt(sec, name);

	return opt != NULL && (cfg_opt_size(opt) > 0 || (opt->flags & CFGF_MODIFIED) != 0);
}

static char *
config_hostname_default(void)
{
	char	 buf[256];

	if (gethostname(buf, sizeof(buf)) == -1)
		return xstrdup("localhost");
	buf[sizeof(buf) - 1] = '\0';
	return xstrdup(config_hostname_valid(buf) ? buf : "localhost");
}

static void
config_convert_globals(struct config_loader *ld, struct config *cfg)
{
	cfg_t		*t = ld->tree, *log = cfg_getsec(t, "log");
	const char	*s;
	int		 v;

	cfg->hostname = (s = cfg_getstr(t, "hostname")) != NULL ? xstrdup(s) :
	    config_hostname_default();
	cfg->user = (s = cfg_getstr(t, "user")) != NULL ? xstrdup(s) : NULL;
	cfg->group = (s = cfg_getstr(t, "group")) != NULL ? xstrdup(s) : NULL;
	cfg->pidfile = (s = cfg_getstr(t, "pidfile")) != NULL ? xstrdup(s) : NULL;
	cfg->spool_dir = xstrdup(cfg_getstr(t, "spool_dir"));
	cfg->workers = cfg_getint(t, "workers");
	cfg->pool_threads = cfg_getint(t, "pool_threads");
	cfg->drain_timeout_ms = cfg_getint(t, "drain_timeout");
	cfg->max_connections = cfg_getint(t, "max_connections");
	cfg->max_connections_per_ip = cfg_getint(t, "max_connections_per_ip");
	cfg->ipv4_prefix = cfg_getint(t, "ipv4_prefix");
	cfg->ipv6_prefix = cfg_getint(t, "ipv6_prefix");
	cfg->max_connection_rate_per_ip = cfg_getint(t, "max_connection_rate_per_ip");
	cfg->connection_rate_window_ms = cfg_getint(t, "connection_rate_window");
	cfg->chroot = (s = cfg_getstr(t, "chroot")) != NULL ? xstrdup(s) : NULL;
	cfg->log_stderr = config_enum_index(config_targets, cfg_getstr(log, "target")) == 1;
	v = log_facility_parse(cfg_getstr(log, "facility"));
	cfg->log_facility = v != -1 ? v : log_facility_parse("mail");
	v = log_level_parse(cfg_getstr(log, "level"));
	cfg->log_level = v != -1 ? v : LOG_LEVEL_INFO;
	config_convert_limits(cfg_getsec(t, "limits"), &cfg->limits, NULL);
	config_convert_resolver(cfg_getsec(t, "resolver"), &cfg->resolver);
	config_convert_mx(t, &cfg->mx);
	config_convert_queue(cfg_getsec(t, "queue"), cfg);
}

/* The queue folders live under spool_dir unless the section says where. */
static void
config_convert_queue(cfg_t *sec, struct config *cfg)
{
	const char	*s = sec != NULL ? cfg_getstr(sec, "directory") : NULL;

	if (s != NULL)
		cfg->queue.directory = xstrdup(s);
	else
		xasprintf(&cfg->queue.directory, "%s/queue", cfg->spool_dir);
	cfg->queue.sync = sec != NULL && config_enum_index(config_queue_syncs,
	    cfg_getstr(sec, "sync")) == 0 ? 0 : 1;
}

/* Relay delivery's resolution options (mx.h). */
static void
config_convert_mx(cfg_t *t, struct config_mx *mx)
{
	const char	*s;
	int		 v;

	mx->delivery_port = cfg_getint(t, "delivery_port");
	v = config_enum_index(config_inet_protocols, cfg_getstr(t, "inet_protocols"));
	mx->inet_protocols = v != -1 ? v : 0;
	mx->prefer_ipv4 = config_enum_index(config_address_preferences,
	    cfg_getstr(t, "address_preference")) == 1;
	mx->smart_host = (s = cfg_getstr(t, "smart_host")) != NULL ? xstrdup(s) : NULL;
}

/* smart_host: the destination syntax of mx_dest_parse(). */
static int
config_cb_smart_host(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	struct mx_dest	 d;
	char		 why[300];

	*(const char **)result = value;
	if (mx_dest_parse(value, 1, &d, why, sizeof(why)) == -1)
		cfg_error(cfg, "%s %s (\"[host]:port\", \"[192.0.2.1]:port\" or "
		    "\"host:port\")", opt->name, why);
	else
		mx_dest_clear(&d);
	return 0;
}

static void
config_convert_resolver(cfg_t *sec, struct config_resolver *r)
{
	size_t	 i;

	r->nforwarders = cfg_size(sec, "forwarders");
	r->forwarders = xcalloc(r->nforwarders + 1, sizeof(*r->forwarders));
	for (i = 0; i < r->nforwarders; i++)
		r->forwarders[i] = xstrdup(cfg_getnstr(sec, "forwarders", i));
	r->timeout_ms = cfg_getint(sec, "timeout");
	r->dnssec = cfg_getbool(sec, "dnssec");
	r->local_zones = cfg_getbool(sec, "local_zones");
	r->trust_anchor = xstrdup(cfg_getstr(sec, "trust_anchor"));
	r->resolv_conf = xstrdup(cfg_getstr(sec, "resolv_conf"));
	r->line = sec->line;
}

/* Fields a listener's limits {} does not set come from inherit. */
static void
config_convert_limits(cfg_t *sec, struct config_limits *lim, const struct config_limits *inherit)
{
	size_t		 i;
	long long	*field;

	for (i = 0; i < nitems(config_limit_fields); i++) {
		field = (long long *)(void *)((char *)lim + config_limit_fields[i].offset);
		if (inherit != NULL && cfg_size(sec, config_limit_fields[i].name) == 0)
			*field = *(const long long *)(const void *)((const char *)inherit +
			    config_limit_fields[i].offset);
		else
			*field = cfg_getint(sec, config_limit_fields[i].name);
	}
}

static void
config_convert_addresses(char **list, size_t n, struct sockaddr_storage **addrs,
    socklen_t **lens)
{
	size_t	 i;

	*addrs = xcalloc(n ? n : 1, sizeof(**addrs));
	*lens = xcalloc(n ? n : 1, sizeof(**lens));
	/* A bad address was reported by config_cb_address; it stays zero here. */
	for (i = 0; i < n; i++)
		if (sockaddr_parse(list[i], &(*addrs)[i], &(*lens)[i]) == -1)
			(*lens)[i] = 0;
}

static void
config_convert_listener(struct config_loader *ld, cfg_t *sec, struct config_listener *l)
{
	const char	*s;

	l->name = xstrdup(cfg_title(sec));
	l->line = config_section_line(ld, sec, NULL);
	if (!config_name_valid(l->name))
		config_error_section(ld, sec, "the name is not valid (letters, digits, '.', "
		    "'_' and '-', at most 64)");
	l->listen = config_strlist(sec, "listen", &l->nlisten);
	config_convert_addresses(l->listen, l->nlisten, &l->addrs, &l->addrlens);
	if (l->nlisten == 0)
		config_error_section(ld, sec, "listen is required, as in listen = "
		    "{ \"0.0.0.0:25\", \"[::]:25\" }");
	l->backend = (s = cfg_getstr(sec, "backend")) != NULL ? xstrdup(s) : NULL;
	l->chain = config_strlist(sec, "chain", &l->nchain);
	l->hostname = xstrdup((s = cfg_getstr(sec, "hostname")) != NULL ? s : ld->cfg->hostname);
	l->banner = xstrdup(cfg_getstr(sec, "banner"));
	l->data_mode = config_enum_index(config_data_modes,
	    cfg_getstr(sec, "data_line_endings")) == 1 ? CONFIG_DATA_NORMALIZE : CONFIG_DATA_STRICT;
	l->received_header = cfg_getbool(sec, "received_header") ? 1 : 0;
	l->reverse_lookup = cfg_getbool(sec, "reverse_lookup") ? 1 : 0;
	l->max_connections = cfg_getint(sec, "max_connections");
	l->greeting_delay_ms = cfg_getint(sec, "greeting_delay");
	config_convert_limits(cfg_getsec(sec, "limits"), &l->limits, &ld->cfg->limits);
	l->mode = config_enum_index(config_listener_modes, cfg_getstr(sec, "mode")) == 1 ?
	    CONFIG_MODE_RELAY : CONFIG_MODE_FORWARD;
	config_convert_listener_proxy(ld, sec, l);
	config_convert_listener_auth(ld, sec, &l->auth);
	config_convert_listener_tls(ld, sec, l);
}

/* proxy_protocol, proxy_trusted, proxy_timeout (session_proxy.c uses them). */
static void
config_convert_listener_proxy(struct config_loader *ld, cfg_t *sec, struct config_listener *l)
{
	char	 err[256];
	size_t	 i, n = cfg_size(sec, "proxy_trusted");
	int	 v;

	v = config_enum_index(config_proxy_protocols, cfg_getstr(sec, "proxy_protocol"));
	l->proxy_protocol = v != -1 ? (enum config_proxy_protocol)v : CONFIG_PROXY_NO;
	l->proxy_timeout_ms = cfg_getint(sec, "proxy_timeout");
	l->proxy_trusted = xcalloc(n ? n : 1, sizeof(*l->proxy_trusted));
	for (i = 0; i < n; i++) {
		const char	*s = cfg_getnstr(sec, "proxy_trusted", (unsigned int)i);

		v = filter_net_parse(s, &l->proxy_trusted[l->nproxy_trusted], err, sizeof(err));
		if (v == 0)
			l->nproxy_trusted++;
		else if (v == FILTER_NET_ALL)
			config_error_section(ld, sec, "proxy_trusted: \"%s\" is every address; "
			    "leave the list empty to trust every source", s);
		else
			config_error_section(ld, sec, "proxy_trusted: %s", err);
	}
	if (n > 0 && l->proxy_protocol == CONFIG_PROXY_NO)
		config_error_section(ld, sec, "proxy_trusted is set but proxy_protocol is no; "
		    "set proxy_protocol = v1, v2 or any");
}

/* --- SMTP AUTH: listener options and auth sections ------------------------ */

static void
config_convert_listener_auth(struct config_loader *ld, cfg_t *sec,
    struct config_listener_auth *a)
{
	const char	*s;
	int		 mode = config_enum_index(config_auth_modes, cfg_getstr(sec, "auth"));

	a->mode = mode > 0 ? (enum config_auth_mode)mode : CONFIG_AUTH_NONE;
	a->backend = (s = cfg_getstr(sec, "auth_backend")) != NULL ? xstrdup(s) : NULL;
	a->plaintext = cfg_getbool(sec, "auth_plaintext") ? 1 : 0;
	a->fail_delay_ms = cfg_getint(sec, "auth_fail_delay");
	a->max_failures = cfg_getint(sec, "auth_max_failures");
	a->failure_window_ms = cfg_getint(sec, "auth_failure_window");
	a->max_session_failures = cfg_getint(sec, "auth_max_session_failures");
}

static void
config_convert_auth(struct config_loader *ld, cfg_t *sec, struct config_auth *a)
{
	const char	*s, *type = cfg_getstr(sec, "type");
	char		 list[CONFIG_NAMES_MAX];
	int		 t;

	a->name = xstrdup(cfg_title(sec));
	a->line = config_section_line(ld, sec, NULL);
	a->file = xstrdup(sec->filename != NULL ? sec->filename : ld->path);
	if (!config_name_valid(a->name))
		config_error_section(ld, sec, "the name is not valid (letters, digits, '.', "
		    "'_' and '-', at most 64)");
	if ((t = type != NULL ? config_enum_index(config_auth_types, type) : -1) == -1)
		config_error_section(ld, sec, "type is required: one of %s",
		    config_join_enum(list, sizeof(list), config_auth_types));
	a->type = t == 1 ? CONFIG_AUTH_DOVECOT : CONFIG_AUTH_PASSWD_FILE;
	a->path = (s = cfg_getstr(sec, "path")) != NULL ? xstrdup(s) : NULL;
	a->socket = (s = cfg_getstr(sec, "socket")) != NULL ? xstrdup(s) : NULL;
	a->timeout_ms = cfg_getint(sec, "timeout");
	if (t == 0 && a->path == NULL)
		config_error_section(ld, sec, "type passwd_file needs path = \"/etc/sluice/users\"");
	if (t == 1 && a->socket == NULL)
		config_error_section(ld, sec, "type dovecot needs socket = "
		    "\"/run/dovecot/auth-client\"");
}

static void
config_convert_auths(struct config_loader *ld)
{
	struct config	*cfg = ld->cfg;
	size_t		 i;

	cfg->nauths = cfg_size(ld->tree, "auth");
	cfg->auths = xcalloc(cfg->nauths ? cfg->nauths : 1, sizeof(*cfg->auths));
	for (i = 0; i < cfg->nauths; i++)
		config_convert_auth(ld, cfg_getnsec(ld->tree, "auth", (unsigned int)i),
		    &cfg->auths[i]);
}

static void
config_resolve_listener_auth(struct config_loader *ld, cfg_t *sec, struct config_listener *l)
{
	struct config_listener_auth *a = &l->auth;

	if (a->mode == CONFIG_AUTH_NONE) {
		if (a->backend != NULL)
			config_error_section(ld, sec, "auth_backend is set but auth = none; "
			    "set auth = offer or required");
		return;
	}
	if (a->backend == NULL)
		config_error_section(ld, sec, "auth = %s needs auth_backend = \"NAME\" of an "
		    "auth section", config_auth_modes[a->mode]);
	else if ((a->backend_ref = config_auth_find(ld->cfg, a->backend)) == NULL)
		config_error_section(ld, sec, "auth_backend \"%s\" is not an auth section",
		    a->backend);
}

struct config_auth *
config_auth_find(const struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; name != NULL && i < cfg->nauths; i++)
		if (strcmp(cfg->auths[i].name, name) == 0)
			return &cfg->auths[i];
	return NULL;
}

static char *
config_strdup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* Backend TLS; the client context is built now, as the listeners' are. */
static void
config_convert_backend_tls(struct config_loader *ld, cfg_t *sec, struct config_backend *b)
{
	static const char *const modes[] = { "none", "may", "encrypt", "verify" };
	struct config_backend_tls *t = &b->tls;
	const char	*mode = cfg_getstr(sec, "tls");
	char		 err[CONFIG_MSG_MAX];
	size_t		 i;

	for (i = 0; i < nitems(modes) && strcmp(mode, modes[i]) != 0; i++)
		;
	if (i == nitems(modes))
		config_error_section(ld, sec, "tls \"%s\" is not one of none, may, encrypt, "
		    "verify", mode);
	t->mode = i < nitems(modes) ? (enum config_backend_tls_mode)i : CONFIG_BACKEND_TLS_NONE;
	t->implicit = cfg_getbool(sec, "tls_implicit") ? 1 : 0;
	t->ca_file = config_strdup_or_null(cfg_getstr(sec, "tls_ca_file"));
	t->server_name = config_strdup_or_null(cfg_getstr(sec, "tls_server_name"));
	t->cert_file = config_strdup_or_null(cfg_getstr(sec, "tls_cert_file"));
	t->key_file = config_strdup_or_null(cfg_getstr(sec, "tls_key_file"));
	if (t->implicit && t->mode == CONFIG_BACKEND_TLS_NONE)
		config_error_section(ld, sec, "tls_implicit = yes needs tls = encrypt or verify");
	if (t->implicit && t->mode == CONFIG_BACKEND_TLS_MAY)
		config_error_section(ld, sec, "tls_implicit = yes cannot fall back to clear "
		    "text: use tls = encrypt or verify");
	if (t->mode == CONFIG_BACKEND_TLS_NONE)
		return;
	if ((t->client = tls_client_new(t, err, sizeof(err))) == NULL)
		config_error_section(ld, sec, "%s", err);
}

/* TLS settings; the contexts are built now so a bad certificate fails the load. */
static void
config_convert_listener_tls(struct config_loader *ld, cfg_t *sec, struct config_listener *l)
{
	struct config_listener_tls *t = &l->tls;
	const char	*mode = cfg_getstr(sec, "tls");
	char		 err[CONFIG_MSG_MAX];

	if (strcmp(mode, "none") == 0)
		t->mode = CONFIG_TLS_NONE;
	else if (strcmp(mode, "starttls") == 0)
		t->mode = CONFIG_TLS_STARTTLS;
	else if (strcmp(mode, "implicit") == 0)
		t->mode = CONFIG_TLS_IMPLICIT;
	else
		config_error_section(ld, sec, "tls \"%s\" is not one of none, starttls, "
		    "implicit", mode);
	t->required = cfg_getbool(sec, "tls_required") ? 1 : 0;
	t->cert_files = config_strlist(sec, "tls_cert_file", &t->ncert_files);
	t->key_files = config_strlist(sec, "tls_key_file", &t->nkey_files);
	if ((t->min_version = tls_version_parse(cfg_getstr(sec, "tls_min_version"))) == -1)
		config_error_section(ld, sec, "tls_min_version \"%s\" is not one of TLSv1, "
		    "TLSv1.1, TLSv1.2, TLSv1.3", cfg_getstr(sec, "tls_min_version"));
	t->ciphers = config_strdup_or_null(cfg_getstr(sec, "tls_ciphers"));
	t->ciphersuites = config_strdup_or_null(cfg_getstr(sec, "tls_ciphersuites"));
	t->ca_file = config_strdup_or_null(cfg_getstr(sec, "tls_ca_file"));
	if (t->required && t->mode != CONFIG_TLS_STARTTLS)
		config_error_section(ld, sec, "tls_required = yes needs tls = starttls");
	if (t->mode == CONFIG_TLS_NONE || t->min_version == -1)
		return;
	if ((t->server = tls_server_new(t, err, sizeof(err))) == NULL)
		config_error_section(ld, sec, "%s", err);
}

static void
config_convert_backend(struct config_loader *ld, cfg_t *sec, struct config_backend *b)
{
	const char	*s;
	int		 v;

	b->name = xstrdup(cfg_title(sec));
	b->line = config_section_line(ld, sec, NULL);
	if (!config_name_valid(b->name))
		config_error_section(ld, sec, "the name is not valid (letters, digits, '.', "
		    "'_' and '-', at most 64)");
	v = config_enum_index(config_backend_types, cfg_getstr(sec, "type"));
	b->type = v != -1 ? (enum config_backend_type)v : CONFIG_BACKEND_SMTP;
	b->servers = config_strlist(sec, "servers", &b->nservers);
	config_convert_addresses(b->servers, b->nservers, &b->addrs, &b->addrlens);
	v = config_enum_index(config_identities, cfg_getstr(sec, "identity"));
	b->identity = v != -1 ? (enum config_identity)v : CONFIG_IDENTITY_AUTO;
	b->helo_name = xstrdup((s = cfg_getstr(sec, "helo_name")) != NULL ? s : ld->cfg->hostname);
	b->max_connections = cfg_getint(sec, "max_connections");
	b->max_age_ms = cfg_getint(sec, "max_age");
	b->idle_timeout_ms = cfg_getint(sec, "idle_timeout");
	b->connect_timeout_ms = cfg_getint(sec, "connect_timeout");
	b->command_timeout_ms = cfg_getint(sec, "command_timeout");
	b->data_timeout_ms = cfg_getint(sec, "data_timeout");
	b->down_time_ms = cfg_getint(sec, "down_time");
	b->maildir = (s = cfg_getstr(sec, "maildir")) != NULL ? xstrdup(s) : NULL;
	b->maildir_fsync = cfg_getbool(sec, "maildir_fsync") ? 1 : 0;
	config_convert_backend_tls(ld, sec, b);
	if (b->type == CONFIG_BACKEND_MAILDIR) {
		if (b->maildir == NULL)
			config_error_section(ld, sec, "type maildir needs maildir, an absolute "
			    "path such as maildir = \"/var/mail/sluice/Maildir\"");
		if (b->nservers > 0)
			config_error_section(ld, sec, "type maildir takes no servers");
	} else {
		if (b->nservers == 0)
			config_error_section(ld, sec, "type %s needs servers, as in servers = "
			    "{ \"127.0.0.1:10025\" }", config_backend_type_name(b->type));
		if (b->maildir != NULL)
			config_error_section(ld, sec, "maildir is only for type maildir");
	}
}

/* One instance's value of one module option, or its default. */
static void
config_convert_option(struct config_loader *ld, cfg_t *sec, const struct sluice_option *o,
    struct config_option_value *v)
{
	v->name = o->name;
	v->type = o->type;
	if (!config_was_set(sec, o->name)) {
		if (o->default_value == NULL) {
			if (o->required)
				config_error_section(ld, sec, "option \"%s\" is required (%s)",
				    o->name, o->help != NULL ? o->help : "no help given");
			return;
		}
		/* module_check() made sure the default converts. */
		v->set = 1;
		if (o->type == SLUICE_OPT_STRING)
			v->string = xstrdup(o->default_value);
		else
			module_option_default(o, &v->number, &v->list, &v->nlist);
		return;
	}
	v->set = 1;
	switch (o->type) {
	case SLUICE_OPT_STRING:
		v->string = xstrdup(cfg_getstr(sec, o->name));
		break;
	case SLUICE_OPT_BOOL:
		v->number = cfg_getbool(sec, o->name) ? 1 : 0;
		break;
	case SLUICE_OPT_STRING_LIST:
		v->list = config_strlist(sec, o->name, &v->nlist);
		break;
	default:
		v->number = cfg_getint(sec, o->name);
		break;
	}
}

static void
config_convert_filter(struct config_loader *ld, cfg_t *sec, struct module *mod,
    struct config_filter *f)
{
	const struct sluice_option	*o = mod->desc->options;
	size_t				 n = 0, i;
	int				 v;

	f->name = xstrdup(cfg_title(sec));
	f->line = config_section_line(ld, sec, NULL);
	f->file = xstrdup(sec->filename != NULL ? sec->filename : ld->path);
	f->module = module_ref(mod);
	if (!config_name_valid(f->name))
		config_error_section(ld, sec, "the instance name is not valid (letters, "
		    "digits, '.', '_' and '-', at most 64)");
	f->timeout_ms = cfg_getint(sec, "timeout");
	v = config_enum_index(config_on_errors, cfg_getstr(sec, "on_error"));
	f->on_error = v != -1 ? (enum config_on_error)v : CONFIG_ON_ERROR_TEMPFAIL;
	v = config_enum_index(config_modes, cfg_getstr(sec, "mode"));
	f->mode = v != -1 ? (enum config_filter_mode)v : CONFIG_FILTER_ENFORCE;
	while (o != NULL && o[n].name != NULL)
		n++;
	f->options = xcalloc(n ? n : 1, sizeof(*f->options));
	f->noptions = n;
	for (i = 0; i < n; i++)
		config_convert_option(ld, sec, &o[i], &f->options[i]);
}

static int
config_instance_cmp(const void *a, const void *b)
{
	const struct config_instance	*x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every instance of every module, in file order. */
static void
config_convert_filters(struct config_loader *ld)
{
	struct config		*cfg = ld->cfg;
	struct config_instance	*all;
	struct module		*m;
	size_t			 nmods = ld->nbuiltins + cfg->nmodules, total = 0, i, j;

	for (i = 0; i < nmods; i++) {
		m = i < ld->nbuiltins ? ld->builtins[i] : cfg->modules[i - ld->nbuiltins];
		total += cfg_size(ld->tree, m->desc->name);
	}
	all = xcalloc(total ? total : 1, sizeof(*all));
	for (i = 0, total = 0; i < nmods; i++) {
		m = i < ld->nbuiltins ? ld->builtins[i] : cfg->modules[i - ld->nbuiltins];
		for (j = 0; j < cfg_size(ld->tree, m->desc->name); j++, total++) {
			all[total].sec = cfg_getnsec(ld->tree, m->desc->name, (unsigned int)j);
			all[total].module = m;
			config_section_line(ld, all[total].sec, &all[total].seq);
		}
	}
	qsort(all, total, sizeof(*all), config_instance_cmp);
	cfg->filters = xcalloc(total ? total : 1, sizeof(*cfg->filters));
	ld->filter_secs = xcalloc(total ? total : 1, sizeof(*ld->filter_secs));
	for (i = 0; i < total; i++) {
		ld->filter_secs[i] = all[i].sec;
		config_convert_filter(ld, all[i].sec, all[i].module, &cfg->filters[i]);
	}
	cfg->nfilters = total;
	free(all);
}

static void
config_convert(struct config_loader *ld)
{
	struct config	*cfg = ld->cfg;
	size_t		 i;

	config_convert_globals(ld, cfg);
	cfg->nlisteners = cfg_size(ld->tree, "listener");
	cfg->listeners = xcalloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*cfg->listeners));
	ld->listener_secs = xcalloc(cfg->nlisteners ? cfg->nlisteners : 1,
	    sizeof(*ld->listener_secs));
	for (i = 0; i < cfg->nlisteners; i++) {
		ld->listener_secs[i] = cfg_getnsec(ld->tree, "listener", (unsigned int)i);
		config_convert_listener(ld, ld->listener_secs[i], &cfg->listeners[i]);
	}
	cfg->nbackends = cfg_size(ld->tree, "backend");
	cfg->backends = xcalloc(cfg->nbackends ? cfg->nbackends : 1, sizeof(*cfg->backends));
	ld->backend_secs = xcalloc(cfg->nbackends ? cfg->nbackends : 1,
	    sizeof(*ld->backend_secs));
	for (i = 0; i < cfg->nbackends; i++) {
		ld->backend_secs[i] = cfg_getnsec(ld->tree, "backend", (unsigned int)i);
		config_convert_backend(ld, ld->backend_secs[i], &cfg->backends[i]);
	}
	config_convert_auths(ld);
	config_convert_filters(ld);
	config_convert_relay(ld, &cfg->relay);
}

/* Relay scheduling options and route sections (deliver.h). */
static void
config_convert_relay(struct config_loader *ld, struct config_relay *r)
{
	cfg_t	*t = ld->tree, *sec;
	size_t	 i;
	char	*p;

	r->min_backoff_ms = cfg_getint(t, "min_backoff");
	r->max_backoff_ms = cfg_getint(t, "max_backoff");
	r->max_queue_lifetime_ms = cfg_getint(t, "max_queue_lifetime");
	r->delay_warning_ms = cfg_getint(t, "delay_warning_time");
	r->max_deliveries = cfg_getint(t, "max_deliveries");
	r->max_per_destination = cfg_getint(t, "max_per_destination");
	r->defer_deliveries = cfg_getbool(t, "defer_deliveries") == cfg_true;
	r->starttls = config_enum_index(config_relay_tls, cfg_getstr(t, "relay_tls")) == 1;
	if (r->min_backoff_ms > r->max_backoff_ms)
		config_error_at(ld, ld->cfg->path, 0, "min_backoff is longer than max_backoff");
	r->nroutes = cfg_size(t, "route");
	r->routes = xcalloc(r->nroutes ? r->nroutes : 1, sizeof(*r->routes));
	for (i = 0; i < r->nroutes; i++) {
		sec = cfg_getnsec(t, "route", (unsigned int)i);
		r->routes[i].domain = xstrdup(cfg_title(sec));
		for (p = r->routes[i].domain; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		if ((p = cfg_getstr(sec, "smart_host")) != NULL)
			r->routes[i].smart_host = xstrdup(p);
	}
}

/* --- Validation --------------------------------------------------------------- */

static void
config_resolve_listener(struct config_loader *ld, size_t i)
{
	struct config		*cfg = ld->cfg;
	struct config_listener	*l = &cfg->listeners[i];
	cfg_t			*sec = ld->listener_secs[i];
	const char		*names[CONFIG_NAMES_MAX / 2];
	char			 list[CONFIG_NAMES_MAX];
	size_t			 j, k, n;

	for (n = 0; n < cfg->nbackends && n < nitems(names); n++)
		names[n] = cfg->backends[n].name;
	if (l->mode == CONFIG_MODE_RELAY) {
		/* The queue is where its messages go. */
		if (l->backend != NULL)
			config_error_section(ld, sec, "a relay-mode listener takes no backend "
			    "(remove backend = \"%s\" or set mode = \"forward\")", l->backend);
	} else if (l->backend == NULL)
		config_error_section(ld, sec, "backend is required (backends: %s)",
		    n > 0 ? config_join(list, sizeof(list), names, n) : "none defined");
	else if ((l->backend_ref = config_backend_find(cfg, l->backend)) == NULL)
		config_error_section(ld, sec, "backend \"%s\" is not defined (backends: %s)",
		    l->backend, n > 0 ? config_join(list, sizeof(list), names, n) : "none defined");
	for (n = 0; n < cfg->nfilters && n < nitems(names); n++)
		names[n] = cfg->filters[n].name;
	l->chain_refs = xcalloc(l->nchain ? l->nchain : 1, sizeof(*l->chain_refs));
	for (j = 0; j < l->nchain; j++) {
		for (k = 0; k < j && strcmp(l->chain[k], l->chain[j]) != 0; k++)
			;
		if (k < j)
			config_error_section(ld, sec, "chain: filter \"%s\" appears twice; "
			    "an instance runs once per chain", l->chain[j]);
		else if ((l->chain_refs[j] = config_filter_find(cfg, l->chain[j])) == NULL)
			config_error_section(ld, sec, "chain: \"%s\" is not a filter instance "
			    "(instances: %s)", l->chain[j],
			    n > 0 ? config_join(list, sizeof(list), names, n) : "none defined");
	}
	config_resolve_listener_auth(ld, sec, l);
	config_check_listen_unique(ld, i);
}

/* The same address twice would make two listeners fight over a socket. */
static void
config_check_listen_unique(struct config_loader *ld, size_t i)
{
	struct config		*cfg = ld->cfg;
	struct config_listener	*l = &cfg->listeners[i], *o;
	size_t			 j, k, m;

	for (j = 0; j < l->nlisten; j++) {
		if (l->addrlens[j] == 0)
			continue;
		for (k = 0; k <= i; k++) {
			o = &cfg->listeners[k];
			for (m = 0; m < (k == i ? j : o->nlisten); m++) {
				if (o->addrlens[m] != l->addrlens[j] ||
				    memcmp(&o->addrs[m], &l->addrs[j], l->addrlens[j]) != 0)
					continue;
				if (k == i)
					config_error_section(ld, ld->listener_secs[i], "listen "
					    "address \"%s\" is given twice", l->listen[j]);
				else
					config_error_section(ld, ld->listener_secs[i], "listen "
					    "address \"%s\" is also used by listener \"%s\" "
					    "(line %d)", l->listen[j], o->name, o->line);
				goto next;
			}
		}
next:
		;
	}
}

/* Instance names are unique across modules: a chain names only the instance. */
static void
config_check_filter_unique(struct config_loader *ld)
{
	struct config	*cfg = ld->cfg;
	size_t		 i, j;

	for (i = 0; i < cfg->nfilters; i++)
		for (j = 0; j < i; j++)
			if (strcmp(cfg->filters[i].name, cfg->filters[j].name) == 0) {
				config_error_section(ld, ld->filter_secs[i], "instance name "
				    "\"%s\" is already used by %s \"%s\" (%s:%d); instance "
				    "names are unique across modules", cfg->filters[i].name,
				    cfg->filters[j].module->desc->name, cfg->filters[j].name,
				    cfg->filters[j].file, cfg->filters[j].line);
				break;
			}
}

static void
config_resolve(struct config_loader *ld)
{
	size_t	 i;

	config_check_filter_unique(ld);
	for (i = 0; i < ld->cfg->nlisteners; i++)
		config_resolve_listener(ld, i);
	if (ld->cfg->nlisteners == 0)
		config_error_at(ld, ld->path, 0, "no listener is defined; add one, as in "
		    "listener \"mx\" { listen = { \"0.0.0.0:25\" } backend = \"...\" }");
}

/* --- Entry points ------------------------------------------------------------- */

static void
config_loader_free(struct config_loader *ld)
{
	size_t	 i;

	if (ld->tree != NULL)
		cfg_free(ld->tree);
	for (i = 0; i < ld->nsections; i++) {
		free(ld->sections[i].file);
		free(ld->sections[i].keyword);
		free(ld->sections[i].title);
	}
	free(ld->sections);
	config_loads_clear(ld);
	free(ld->loads);
	for (i = 0; i < ld->nfiles; i++) {
		free(ld->files[i].path);
		free(ld->files[i].text);
	}
	free(ld->files);
	for (i = 0; i < ld->nbuiltins; i++)
		module_release(&ld->builtins[i]);
	free(ld->builtins);
	free(ld->listener_secs);
	free(ld->backend_secs);
	free(ld->filter_secs);
}

int
config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	struct config_loader	 ld;
	char			*main_file;

	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(&ld, 0, sizeof(ld));
	ld.err = err;
	ld.errlen = errlen;
	ld.cfg = xcalloc(1, sizeof(*ld.cfg));
	ld.cfg->path = xstrdup(path);
	/* We reach into libconfuse's lexer state (config_cb_include); refuse others. */
	if (strncmp(confuse_version, "3.", 2) != 0) {
		config_error_at(&ld, path, 0, "libconfuse %s is not supported; sluice needs "
		    "libconfuse 3", confuse_version);
		config_free(&ld.cfg);
		return -1;
	}
	/* "~/sluice.conf" works as it does in include(). */
	main_file = cfg_tilde_expand(path);
	ld.path = main_file;
	config_scan_file(&ld, main_file, 0, NULL, 0);
	if (ld.nerrors == 0 && config_load_modules(&ld) == 0 &&
	    config_load_builtins(&ld) == 0 && config_parse(&ld) == 0) {
		config_convert(&ld);
		config_resolve(&ld);
	}
	config_loader_free(&ld);
	free(main_file);
	if (ld.nerrors > 0) {
		config_free(&ld.cfg);
		return -1;
	}
	*out = ld.cfg;
	return 0;
}

static void
config_free_strings(char **list, size_t n)
{
	size_t	 i;

	for (i = 0; list != NULL && i < n; i++)
		free(list[i]);
	free(list);
}

static void
config_free_filter(struct config_filter *f)
{
	size_t	 i;

	for (i = 0; i < f->noptions; i++) {
		free(f->options[i].string);
		config_free_strings(f->options[i].list, f->options[i].nlist);
	}
	free(f->options);
	free(f->name);
	free(f->file);
	module_release(&f->module);
}

void
config_free(struct config **cfgp)
{
	struct config	*cfg;
	size_t		 i;

	if (cfgp == NULL || (cfg = *cfgp) == NULL)
		return;
	*cfgp = NULL;
	for (i = 0; i < cfg->nlisteners; i++) {
		struct config_listener	*l = &cfg->listeners[i];

		free(l->name);
		config_free_strings(l->listen, l->nlisten);
		free(l->addrs);
		free(l->addrlens);
		free(l->backend);
		config_free_strings(l->chain, l->nchain);
		free(l->chain_refs);
		free(l->hostname);
		free(l->banner);
		free(l->proxy_trusted);
		free(l->auth.backend);
		config_free_strings(l->tls.cert_files, l->tls.ncert_files);
		config_free_strings(l->tls.key_files, l->tls.nkey_files);
		free(l->tls.ciphers);
		free(l->tls.ciphersuites);
		free(l->tls.ca_file);
		tls_server_free(&l->tls.server);
	}
	for (i = 0; i < cfg->nauths; i++) {
		free(cfg->auths[i].name);
		free(cfg->auths[i].file);
		free(cfg->auths[i].path);
		free(cfg->auths[i].socket);
	}
	free(cfg->auths);
	for (i = 0; i < cfg->nbackends; i++) {
		struct config_backend	*b = &cfg->backends[i];

		free(b->name);
		config_free_strings(b->servers, b->nservers);
		free(b->addrs);
		free(b->addrlens);
		free(b->helo_name);
		free(b->maildir);
		free(b->tls.ca_file);
		free(b->tls.server_name);
		free(b->tls.cert_file);
		free(b->tls.key_file);
		tls_client_free(&b->tls.client);
	}
	for (i = 0; i < cfg->nfilters; i++)
		config_free_filter(&cfg->filters[i]);
	for (i = 0; i < cfg->nmodules; i++)
		module_release(&cfg->modules[i]);
	free(cfg->listeners);
	free(cfg->backends);
	free(cfg->filters);
	free(cfg->modules);
	free(cfg->path);
	free(cfg->hostname);
	free(cfg->user);
	free(cfg->group);
	free(cfg->pidfile);
	free(cfg->spool_dir);
	free(cfg->chroot);
	free(cfg->queue.directory);
	config_free_strings(cfg->resolver.forwarders, cfg->resolver.nforwarders);
	free(cfg->resolver.trust_anchor);
	free(cfg->resolver.resolv_conf);
	free(cfg->mx.smart_host);
	for (i = 0; i < cfg->relay.nroutes; i++) {
		free(cfg->relay.routes[i].domain);
		free(cfg->relay.routes[i].smart_host);
	}
	free(cfg->relay.routes);
	free(cfg);
}

struct config_backend *
config_backend_find(const struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; name != NULL && i < cfg->nbackends; i++)
		if (strcmp(cfg->backends[i].name, name) == 0)
			return &cfg->backends[i];
	return NULL;
}

struct config_filter *
config_filter_find(const struct config *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; name != NULL && i < cfg->nfilters; i++)
		if (strcmp(cfg->filters[i].name, name) == 0)
			return &cfg->filters[i];
	return NULL;
}

const struct config_option_value *
config_filter_option(const struct config_filter *f, const char *name)
{
	size_t	 i;

	for (i = 0; f != NULL && name != NULL && i < f->noptions; i++)
		if (strcmp(f->options[i].name, name) == 0)
			return &f->options[i];
	return NULL;
}

const char *
config_on_error_name(enum config_on_error v)
{
	return (unsigned int)v < nitems(config_on_errors) - 1 ? config_on_errors[v] : "unknown";
}

const char *
config_filter_mode_name(enum config_filter_mode v)
{
	return (unsigned int)v < nitems(config_modes) - 1 ? config_modes[v] : "unknown";
}

const char *
config_backend_type_name(enum config_backend_type v)
{
	return (unsigned int)v < nitems(config_backend_types) - 1 ?
	    config_backend_types[v] : "unknown";
}

/* --- sluice_option_*() -------------------------------------------------------- */

/*
 * A module reading an option it did not declare, or as another type, is
 * a plugin bug: say so once per module and option, and read it as empty.
 */
static void
config_option_warn(const struct config_filter *f, const char *name, const char *why)
{
	static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
	static char		 seen[32][128];
	static size_t		 nseen;
	char			 key[128];
	size_t			 i;

	snprintf(key, sizeof(key), "%s/%s", f->module != NULL ? f->module->desc->name : "",
	    name);
	pthread_mutex_lock(&lock);
	for (i = 0; i < nseen; i++)
		if (strcmp(seen[i], key) == 0)
			break;
	if (i < nseen) {
		pthread_mutex_unlock(&lock);
		return;
	}
	if (nseen < nitems(seen))
		strlcpy_s(seen[nseen++], key, sizeof(seen[0]));
	pthread_mutex_unlock(&lock);
	log_warnx("filter=%s module=%s option=%s: %s (a bug in the module); read as empty",
	    f->name, f->module != NULL ? f->module->desc->name : "?", name, why);
}

static const struct config_option_value *
config_option_lookup(const struct sluice_filter *filter, const char *name,
    enum sluice_option_type type)
{
	static const char *const types[] = {
		"string", "int", "bool", "string list", "duration", "size"
	};
	const struct config_option_value	*v;
	char					 why[96];

	if (filter == NULL || filter->conf == NULL || name == NULL)
		return NULL;
	if ((v = config_filter_option(filter->conf, name)) == NULL) {
		config_option_warn(filter->conf, name, "not an option the module declared");
		return NULL;
	}
	if (v->type != type) {
		snprintf(why, sizeof(why), "declared as %s, read as %s",
		    (unsigned int)v->type < nitems(types) ? types[v->type] : "?",
		    (unsigned int)type < nitems(types) ? types[type] : "?");
		config_option_warn(filter->conf, name, why);
		return NULL;
	}
	return v->set ? v : NULL;
}

const char *
sluice_filter_name(const struct sluice_filter *filter)
{
	return filter != NULL && filter->conf != NULL ? filter->conf->name : NULL;
}

const char *
sluice_option_string(const struct sluice_filter *filter, const char *name)
{
	const struct config_option_value *v;

	v = config_option_lookup(filter, name, SLUICE_OPT_STRING);
	return v != NULL ? v->string : NULL;
}

long long
sluice_option_int(const struct sluice_filter *filter, const char *name)
{
	const struct config_option_value *v;

	v = config_option_lookup(filter, name, SLUICE_OPT_INT);
	return v != NULL ? v->number : 0;
}

int
sluice_option_bool(const struct sluice_filter *filter, const char *name)
{
	const struct config_option_value *v;

	v = config_option_lookup(filter, name, SLUICE_OPT_BOOL);
	return v != NULL ? (int)v->number : 0;
}

long long
sluice_option_duration(const struct sluice_filter *filter, const char *name)
{
	const struct config_option_value *v;

	v = config_option_lookup(filter, name, SLUICE_OPT_DURATION);
	return v != NULL ? v->number : 0;
}

long long
sluice_option_size(const struct sluice_filter *filter, const char *name)
{
	const struct config_option_value *v;

	v = config_option_lookup(filter, name, SLUICE_OPT_SIZE);
	return v != NULL ? v->number : 0;
}

size_t
sluice_option_list_count(const struct sluice_filter *filter, const char *name)
{
	const struct config_option_value *v;

	v = config_option_lookup(filter, name, SLUICE_OPT_STRING_LIST);
	return v != NULL ? v->nlist : 0;
}

const char *
sluice_option_list_item(const struct sluice_filter *filter, const char *name, size_t index)
{
	const struct config_option_value *v;

	v = config_option_lookup(filter, name, SLUICE_OPT_STRING_LIST);
	if (v == NULL || index >= v->nlist)
		return NULL;
	return v->list[index];
}
