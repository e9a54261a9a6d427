/*
 * config.h - the configuration file: its schema (libconfuse) and the
 * immutable structs the rest of the daemon reads.
 *
 * config_load() parses a file in two passes: the first is our own scanner
 * (brace balance, section start lines, comments blanked, "load" and
 * "include" collected) so the plugins' option schemas are known; the
 * second is libconfuse over the scanned text with the built-in and plugin
 * module sections added to the schema.
 * Errors come back as "file:line: what is wrong".  The result is plain C
 * data, never touched again by libconfuse, freed by config_free(); it is
 * read-only once returned, so every thread may read it.
 */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stddef.h>
#include <sys/socket.h>

#include "sluice_filter.h"

struct filter_net;
struct module;

enum config_data_mode {
	CONFIG_DATA_STRICT = 0,		/* bare CR/LF in DATA refused */
	CONFIG_DATA_NORMALIZE		/* bare CR/LF turned into CRLF */
};

/* PROXY protocol header expected on a listener (proxy_proto.h). */
enum config_proxy_protocol {
	CONFIG_PROXY_NO = 0,		/* none: the socket's peer is the client */
	CONFIG_PROXY_V1,		/* text header only */
	CONFIG_PROXY_V2,		/* binary header only */
	CONFIG_PROXY_ANY		/* either */
};

enum config_backend_type {
	CONFIG_BACKEND_SMTP = 0,	/* SMTP over TCP or unix socket */
	CONFIG_BACKEND_LMTP,		/* LMTP (LHLO, per-recipient replies) */
	CONFIG_BACKEND_MAILDIR,		/* embedded Maildir writer */
	CONFIG_BACKEND_EXPLAIN,		/* internal: sluice --explain, keeps nothing */
	CONFIG_BACKEND_RELAY		/* internal: a relay-mode listener's stand-in (the queue) */
};

/* What a listener does with an accepted message. */
enum config_listener_mode {
	CONFIG_MODE_FORWARD = 0,	/* to its backend, in step with the client */
	CONFIG_MODE_RELAY		/* into the relay queue, 250 once on disk */
};

enum config_identity {
	CONFIG_IDENTITY_AUTO = 0,	/* XCLIENT if offered, else XFORWARD if offered */
	CONFIG_IDENTITY_XCLIENT,	/* XCLIENT only */
	CONFIG_IDENTITY_XFORWARD,	/* XFORWARD only */
	CONFIG_IDENTITY_NONE		/* send nothing */
};

enum config_on_error {
	CONFIG_ON_ERROR_TEMPFAIL = 0,
	CONFIG_ON_ERROR_ACCEPT,
	CONFIG_ON_ERROR_REJECT
};

enum config_filter_mode {
	CONFIG_FILTER_ENFORCE = 0,	/* verdicts take effect */
	CONFIG_FILTER_OBSERVE		/* verdicts logged as would_*, never applied */
};

enum config_auth_mode {
	CONFIG_AUTH_NONE = 0,		/* AUTH not offered */
	CONFIG_AUTH_OFFER,		/* offered, mail without it too */
	CONFIG_AUTH_REQUIRED		/* MAIL before AUTH: 530 5.7.0 */
};

enum config_auth_type {
	CONFIG_AUTH_PASSWD_FILE = 0,	/* user:crypt-hash lines (auth_passwd.c) */
	CONFIG_AUTH_DOVECOT		/* Dovecot's auth socket (auth_dovecot.c) */
};

/* An "auth NAME { }" section: where AUTH credentials are checked. */
struct config_auth {
	char		 *name;			/* section title */
	int		  line;			/* config line of the section */
	char		 *file;			/* config file of the section */
	enum config_auth_type type;		/* passwd_file or dovecot */
	char		 *path;			/* passwd_file: the file */
	char		 *socket;		/* dovecot: the auth client socket */
	long long	  timeout_ms;		/* one verification, connect included */
};

/* A listener's SMTP AUTH settings (RFC 4954). */
struct config_listener_auth {
	enum config_auth_mode mode;		/* none, offer, required */
	char		 *backend;		/* auth section name, NULL if mode none */
	struct config_auth *backend_ref;	/* resolved */
	int		  plaintext;		/* offer without TLS */
	long long	  fail_delay_ms;	/* before the first 535; doubles per failure */
	long long	  max_failures;		/* per client address in the window, then 421 */
	long long	  failure_window_ms;	/* that window */
	long long	  max_session_failures;	/* per session, then 421 */
};

/* Per-session limits; global defaults, each overridable per listener. */
struct config_limits {
	long long	 message_size;		/* bytes of DATA (wire form), 0 = none */
	long long	 recipients;		/* RCPT per transaction */
	long long	 errors;		/* protocol errors before 421 */
	long long	 command_line;		/* bytes incl. CRLF (512) */
	long long	 text_line;		/* DATA line bytes incl. CRLF (1000), 0 = none */
	long long	 idle_timeout_ms;	/* waiting for a command */
	long long	 data_timeout_ms;	/* waiting for the next DATA bytes */
	long long	 data_time_limit_ms;	/* whole DATA section, 0 = none */
	long long	 session_timeout_ms;	/* whole session, 0 = none */
	long long	 spool_memory;		/* DATA bytes kept in memory */
	long long	 headers;		/* header fields per message */
	long long	 header_size;		/* bytes of one header field */
	long long	 commands_before_mail;	/* NOOP, RSET, VRFY, ... without MAIL, 0 = none */
};

/* TLS on a listener (tls.c builds the contexts while the config loads). */
enum config_tls_mode {
	CONFIG_TLS_NONE = 0,		/* plain SMTP, STARTTLS answered 502 */
	CONFIG_TLS_STARTTLS,		/* STARTTLS offered (RFC 3207) */
	CONFIG_TLS_IMPLICIT		/* TLS from accept (RFC 8314, port 465) */
};

struct tls_server;

struct config_listener_tls {
	enum config_tls_mode mode;		/* none, starttls, implicit */
	int		  required;		/* MAIL refused with 530 before STARTTLS */
	char		**cert_files;		/* PEM chains, first is the default */
	size_t		  ncert_files;
	char		**key_files;		/* PEM keys, one per certificate */
	size_t		  nkey_files;
	int		  min_version;		/* TLS1_2_VERSION etc. */
	char		 *ciphers;		/* TLS 1.2 cipher list, NULL = OpenSSL's */
	char		 *ciphersuites;		/* TLS 1.3 suites, NULL = OpenSSL's */
	char		 *ca_file;		/* client certificates verified against, NULL = not asked */
	struct tls_server *server;		/* contexts, owned; NULL when mode is none */
};

/* TLS towards a backend's servers (tls.c builds the client context). */
enum config_backend_tls_mode {
	CONFIG_BACKEND_TLS_NONE = 0,	/* never */
	CONFIG_BACKEND_TLS_MAY,		/* STARTTLS if offered, else in clear */
	CONFIG_BACKEND_TLS_ENCRYPT,	/* TLS or the server counts as failed */
	CONFIG_BACKEND_TLS_VERIFY	/* TLS with a certificate valid for the name */
};

struct tls_client;

struct config_backend_tls {
	enum config_backend_tls_mode mode;	/* none, may, encrypt, verify */
	int		  implicit;		/* TLS from connect, no STARTTLS */
	char		 *ca_file;		/* trust anchors, NULL = system's */
	char		 *server_name;		/* SNI and name to verify, NULL = server's host */
	char		 *cert_file;		/* client certificate, NULL = none */
	char		 *key_file;		/* its key */
	struct tls_client *client;		/* context, owned; NULL when mode is none */
};

struct config_listener {
	char		 *name;			/* section title */
	int		  line;			/* config line of the section */
	char		**listen;		/* "127.0.0.1:25", "[::]:25" */
	size_t		  nlisten;		/* entries in listen */
	struct sockaddr_storage *addrs;		/* listen, parsed */
	socklen_t	 *addrlens;		/* their lengths */
	char		 *backend;		/* backend name */
	struct config_backend *backend_ref;	/* resolved */
	char		**chain;		/* filter instance names, in order */
	size_t		  nchain;		/* entries in chain */
	struct config_filter **chain_refs;	/* resolved */
	char		 *hostname;		/* name in greeting and Received */
	char		 *banner;		/* greeting text after the hostname */
	enum config_data_mode data_mode;	/* strict or normalize */
	int		  received_header;	/* add a Received: field */
	int		  reverse_lookup;	/* verified client host name before the greeting */
	long long	  max_connections;	/* on this listener, 0 = global only */
	long long	  greeting_delay_ms;	/* pause before the 220; talking meanwhile = 554 */
	struct config_limits limits;		/* effective limits */
	enum config_proxy_protocol proxy_protocol;	/* header before SMTP */
	struct filter_net *proxy_trusted;	/* who may send it; owned */
	size_t		  nproxy_trusted;	/* entries, 0 = any source */
	long long	  proxy_timeout_ms;	/* wait for the whole header */
	struct config_listener_auth auth;	/* SMTP AUTH */
	enum config_listener_mode mode;		/* forward or relay */
	struct config_listener_tls tls;		/* TLS settings and contexts */
};

struct config_backend {
	char		 *name;			/* section title */
	int		  line;			/* config line of the section */
	enum config_backend_type type;		/* smtp, lmtp, maildir */
	char		**servers;		/* "127.0.0.1:10025", "unix:/path" */
	size_t		  nservers;		/* entries in servers */
	struct sockaddr_storage *addrs;		/* servers, parsed */
	socklen_t	 *addrlens;		/* their lengths */
	enum config_identity identity;		/* XCLIENT / XFORWARD choice */
	char		 *helo_name;		/* our EHLO/LHLO name */
	long long	  max_connections;	/* open connections, all workers */
	long long	  max_age_ms;		/* connection reused until this age */
	long long	  idle_timeout_ms;	/* pooled idle connection closed after */
	long long	  connect_timeout_ms;	/* TCP connect and greeting */
	long long	  command_timeout_ms;	/* EHLO, MAIL, RCPT, DATA, RSET replies */
	long long	  data_timeout_ms;	/* reply after the final dot */
	long long	  down_time_ms;		/* a failed server is skipped this long */
	char		 *maildir;		/* Maildir path (maildir type) */
	int		  maildir_fsync;	/* fsync file and directory */
	struct config_backend_tls tls;		/* TLS to the servers */
};

/* One option value of a filter instance, as declared by its module. */
struct config_option_value {
	const char	 *name;			/* the module's option name (not copied) */
	enum sluice_option_type type;		/* declared type */
	int		  set;			/* present (given or defaulted) */
	char		 *string;		/* STRING */
	long long	  number;		/* INT, BOOL, DURATION (ms), SIZE (bytes) */
	char		**list;			/* STRING_LIST */
	size_t		  nlist;		/* entries in list */
};

struct config_filter {
	char		 *name;			/* section title, unique across modules */
	int		  line;			/* config line of the section */
	char		 *file;			/* config file of the section */
	struct module	 *module;		/* the module, one reference held */
	long long	  timeout_ms;		/* per hook, PENDING included */
	enum config_on_error on_error;		/* when the filter fails or times out */
	enum config_filter_mode mode;		/* enforce or observe */
	struct config_option_value *options;	/* one per module option, declaration order */
	size_t		  noptions;		/* entries in options */
};

/*
 * What a module's init receives as struct sluice_filter (opaque to
 * modules): the instance's config section.  The sluice_option_*()
 * accessors of sluice_filter.h are implemented in config.c on it.
 */
struct generation;

struct sluice_filter {
	const struct config_filter *conf;	/* not owned */
	struct generation	*gen;		/* the instance's generation */
};

/* Room for every error of one load, one "file:line: what" per line. */
#define CONFIG_ERR_MAX		16384

/* The resolver section: how filters and relay delivery ask DNS. */
struct config_resolver {
	char		**forwarders;		/* "127.0.0.1@5353"; none = resolv_conf */
	size_t		  nforwarders;
	long long	  timeout_ms;		/* per query */
	int		  dnssec;		/* validate with trust_anchor */
	int		  local_zones;		/* unbound answers localhost, 127/8, test nets itself */
	char		 *trust_anchor;		/* root key file (dns-root-data) */
	char		 *resolv_conf;		/* nameservers when no forwarders; "" = recurse */
	int		  line;			/* of the section (or 0), for errors */
};

/* Relay delivery: how destinations resolve (mx.h; sluice.conf(5) RELAY). */
struct config_mx {
	long long	  delivery_port;	/* replaces port 25 (tests); 0 = 25 */
	int		  inet_protocols;	/* enum mx_family: 0 all, 1 ipv4, 2 ipv6 */
	int		  prefer_ipv4;		/* address_preference = ipv4 */
	char		 *smart_host;		/* "[host]:port" / "host:port"; NULL = MX */
};

/* The queue section: the relay queue (relay-mode listeners). */
struct config_queue {
	char		 *directory;		/* the queue folders' parent */
	int		  sync;			/* enum queue_sync: 0 fdatasync, 1 syncfs (default) */
};

/* A route section: where mail for one recipient domain goes (relay mode). */
struct config_route {
	char		 *domain;		/* the section title, lower case */
	char		 *smart_host;		/* destination; NULL = MX of the domain */
};

/* The relay scheduler's options (deliver.h; sluice.conf(5) RELAY). */
struct config_relay {
	long long	  min_backoff_ms;	/* first retry delay */
	long long	  max_backoff_ms;	/* longest retry delay */
	long long	  max_queue_lifetime_ms;/* then 4.4.7 and a DSN */
	long long	  delay_warning_ms;	/* 0 = no delay DSN */
	long long	  max_deliveries;	/* destination batches in flight */
	long long	  max_per_destination;	/* of them to one destination */
	int		  defer_deliveries;	/* queue only, deliver nothing */
	int		  starttls;		/* relay_tls = may: STARTTLS when offered */
	struct config_route *routes;		/* in file order */
	size_t		  nroutes;
};

struct config {
	char		 *path;			/* file given to config_load */
	char		 *hostname;		/* default hostname */
	char		 *user;			/* drop privileges to, NULL = stay */
	char		 *group;		/* group, NULL = user's group */
	char		 *pidfile;		/* NULL = none */
	char		 *spool_dir;		/* temporary DATA files */
	long long	  workers;		/* event-loop threads, 0 = CPUs */
	long long	  pool_threads;		/* blocking-work threads */
	long long	  drain_timeout_ms;	/* SIGTERM: sessions may finish this long */
	long long	  max_connections;	/* all listeners together */
	long long	  max_connections_per_ip;	/* per client address (prefix) */
	long long	  ipv4_prefix;		/* per-IP counting prefix, 32 = host */
	long long	  ipv6_prefix;		/* per-IP counting prefix, 128 = host */
	long long	  max_connection_rate_per_ip;	/* new connections per window, 0 = none */
	long long	  connection_rate_window_ms;	/* that window */
	char		 *chroot;		/* chroot(2) here after start-up, NULL = none */
	int		  log_stderr;		/* 1 stderr, 0 syslog */
	int		  log_facility;		/* syslog facility */
	int		  log_level;		/* enum log_level */
	struct config_limits limits;		/* global defaults */
	struct config_resolver resolver;	/* DNS for filters and relay */
	struct config_queue queue;		/* relay queue */
	struct config_mx  mx;			/* relay delivery: MX resolution */
	struct config_relay relay;		/* relay delivery: scheduling, routes */
	struct module	**modules;		/* plugins from "load", references held */
	size_t		  nmodules;		/* entries in modules */
	struct config_listener *listeners;	/* in file order */
	size_t		  nlisteners;
	struct config_backend *backends;	/* in file order */
	size_t		  nbackends;
	struct config_filter *filters;		/* in file order */
	size_t		  nfilters;
	struct config_auth *auths;		/* auth sections, in file order */
	size_t		  nauths;
};

/*
 * Parse and validate path.  On success returns 0 and *out (caller frees
 * with config_free).  On failure returns -1 and writes every error, one
 * "file:line: what is wrong" per line, into err (truncated to errlen).
 * Loads the plugins named by "load" (module_open) and takes references on
 * the built-in modules used.
 */
int		 config_load(const char *path, struct config **out, char *err, size_t errlen);
/* Releases module references too.  Clears *cfg. */
void		 config_free(struct config **cfg);

/* Lookups by name; NULL when absent. */
struct config_backend *config_backend_find(const struct config *cfg, const char *name);
struct config_filter  *config_filter_find(const struct config *cfg, const char *name);
struct config_auth    *config_auth_find(const struct config *cfg, const char *name);
const struct config_option_value *config_filter_option(const struct config_filter *f,
		    const char *name);

/* Names for enums, as written in the config ("tempfail", "observe", ...). */
const char	*config_on_error_name(enum config_on_error v);
const char	*config_filter_mode_name(enum config_filter_mode v);
const char	*config_backend_type_name(enum config_backend_type v);

#endif /* SLUICE_CONFIG_H */
