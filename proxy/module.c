/*
 * module.c - the registry of filter modules: built-in descriptors and
 * dlopen'ed plugins, shared by every configuration generation and
 * refcounted.  A plugin is keyed by the realpath of its file, so the same
 * file named twice is loaded once.  Main thread only.
 *
 * Every refusal is one sentence naming the file, because the person who
 * reads it is fixing a config or a build, not reading our source.
 */
#include "autoconf.h"

#include <sys/stat.h>

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "module.h"
#include "sluice_filter.h"
#include "util.h"

/* Longest module or option name; they end up in log lines and sections. */
#define MODULE_NAME_MAX		63
/* A descriptor declaring more options than this is not believed. */
#define MODULE_OPTIONS_MAX	256
/* White space between list items of a default value. */
#define MODULE_SPACE		" \t\r\n"

static int	 module_err(char *err, size_t errlen, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
static int	 module_name_valid(const char *name, int allow_dash);
static const char *module_printable(const char *s, char *buf, size_t size);
static int	 module_is_core_keyword(const char *name);
static int	 module_check_options(const struct sluice_module *desc, const char *origin,
		    char *err, size_t errlen);
static int	 module_check_option(const struct sluice_option *opt, const char *origin,
		    const char *module, char *err, size_t errlen);
static int	 module_check_file(const char *path, const char *real, char *err,
		    size_t errlen);
static int	 module_check_dir(const char *path, const char *real, char *err,
		    size_t errlen);
static int	 module_check_clash(const struct sluice_module *desc, const char *path,
		    char *err, size_t errlen);
static struct module *module_find_path(const char *real);
static struct module *module_find_builtin(const char *name);
static struct module *module_register(const struct sluice_module *desc, const char *real,
		    void *handle);
static int	 module_parse_int(const char *s, long long *out);
static int	 module_parse_bool(const char *s, long long *out);
static const char *module_list_item(const char *p, char **out);
static int	 module_parse_list(const char *s, char ***list, size_t *nlist);

/* Loaded modules, plugins and built-ins in use. */
static struct module	*module_registry;

/* Top-level words of the config; a module section must not shadow one. */
static const char *const module_core_keywords[] = {
	"hostname", "user", "group", "pidfile", "spool_dir", "workers", "pool_threads",
	"drain_timeout", "max_connections", "max_connections_per_ip", "ipv4_prefix",
	"ipv6_prefix", "load", "include", "log", "limits", "listener", "backend",
};

/* Options every filter instance has; a module must not declare them. */
static const char *const module_common_options[] = { "timeout", "on_error", "mode" };

static int
module_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* [a-z][a-z0-9_]* (options) or [a-z][a-z0-9_-]* (modules), bounded. */
static int
module_name_valid(const char *name, int allow_dash)
{
	size_t	 i;

	if (name == NULL || name[0] < 'a' || name[0] > 'z')
		return 0;
	for (i = 1; name[i] != '\0'; i++) {
		if (i >= MODULE_NAME_MAX)
			return 0;
		if ((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		    name[i] == '_' || (allow_dash && name[i] == '-'))
			continue;
		return 0;
	}
	return 1;
}

/* A name from a descriptor we do not trust yet, safe to print. */
static const char *
module_printable(const char *s, char *buf, size_t size)
{
	if (s == NULL)
		return "(null)";
	return log_quote(buf, size, s, MODULE_NAME_MAX + 1);
}

static int
module_is_core_keyword(const char *name)
{
	size_t	 i;

	for (i = 0; i < nitems(module_core_keywords); i++)
		if (strcmp(name, module_core_keywords[i]) == 0)
			return 1;
	return 0;
}

int
module_check(const struct sluice_module *desc, const char *origin, char *err, size_t errlen)
{
	char	 buf[MODULE_NAME_MAX * 4 + 8];

	if (desc == NULL)
		return module_err(err, errlen, "%s: the module descriptor is NULL", origin);
	/* Read nothing else before this: another ABI may lay the struct out differently. */
	if (desc->abi_version != SLUICE_FILTER_ABI_VERSION)
		return module_err(err, errlen, "%s: ABI version %u, but this sluice needs %u; "
		    "rebuild the module against this sluice's sluice_filter.h", origin,
		    (unsigned int)desc->abi_version, SLUICE_FILTER_ABI_VERSION);
	if (!module_name_valid(desc->name, 1))
		return module_err(err, errlen, "%s: module name %s is not valid (a lowercase "
		    "letter, then lowercase letters, digits, '_' or '-', at most %d)", origin,
		    module_printable(desc->name, buf, sizeof(buf)), MODULE_NAME_MAX);
	if (module_is_core_keyword(desc->name))
		return module_err(err, errlen, "%s: module name \"%s\" is a keyword of the "
		    "sluice configuration; rename the module", origin, desc->name);
	return module_check_options(desc, origin, err, errlen);
}

static int
module_check_options(const struct sluice_module *desc, const char *origin, char *err,
    size_t errlen)
{
	const struct sluice_option	*o = desc->options;
	size_t				 i, j;

	if (o == NULL)
		return 0;
	for (i = 0; o[i].name != NULL; i++) {
		if (i >= MODULE_OPTIONS_MAX)
			return module_err(err, errlen, "%s: module \"%s\" declares more than %d "
			    "options (is the array terminated by a NULL name?)", origin,
			    desc->name, MODULE_OPTIONS_MAX);
		if (module_check_option(&o[i], origin, desc->name, err, errlen) == -1)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(o[j].name, o[i].name) == 0)
				return module_err(err, errlen, "%s: module \"%s\" declares "
				    "option \"%s\" twice", origin, desc->name, o[i].name);
	}
	return 0;
}

static int
module_check_option(const struct sluice_option *opt, const char *origin, const char *module,
    char *err, size_t errlen)
{
	char	 buf[MODULE_NAME_MAX * 4 + 8];
	size_t	 i;

	if (!module_name_valid(opt->name, 0))
		return module_err(err, errlen, "%s: module \"%s\": option name %s is not valid "
		    "(a lowercase letter, then lowercase letters, digits or '_')", origin,
		    module, module_printable(opt->name, buf, sizeof(buf)));
	for (i = 0; i < nitems(module_common_options); i++)
		if (strcmp(opt->name, module_common_options[i]) == 0)
			return module_err(err, errlen, "%s: module \"%s\": option \"%s\" is "
			    "common to every filter instance; a module may not declare it",
			    origin, module, opt->name);
	if ((unsigned int)opt->type > SLUICE_OPT_SIZE)
		return module_err(err, errlen, "%s: module \"%s\": option \"%s\" has unknown "
		    "type %d", origin, module, opt->name, (int)opt->type);
	if (opt->default_value != NULL && module_option_default(opt, NULL, NULL, NULL) == -1)
		return module_err(err, errlen, "%s: module \"%s\": the default of option "
		    "\"%s\" is not a valid value of its type: %s", origin, module, opt->name,
		    module_printable(opt->default_value, buf, sizeof(buf)));
	return 0;
}

/* Who may own a plugin besides root; see module_set_owner(). */
static int	 module_owner_set;
static uid_t	 module_owner;

void
module_set_owner(uid_t uid)
{
	module_owner = uid;
	module_owner_set = 1;
}

/*
 * The directory holding the file: if others could write there, they
 * could replace the file between our check and a later reload.  A sticky
 * directory (like /tmp) only lets them remove their own files.
 */
static int
module_check_dir(const char *path, const char *real, char *err, size_t errlen)
{
	struct stat	 st;
	char		*copy = xstrdup(real), *dir = dirname(copy);
	int		 rc = 0;

	if (stat(dir, &st) == -1)
		rc = module_err(err, errlen, "%s: cannot load: %s: %s", path, dir,
		    strerror(errno));
	else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(st.st_mode & S_ISVTX))
		rc = module_err(err, errlen, "%s: refusing to load a module from directory %s, "
		    "writable by group or others (mode %04o); run chmod go-w on it", path, dir,
		    (unsigned int)(st.st_mode & 07777));
	free(copy);
	return rc;
}

/* The file itself: a regular file nobody but its owner may change. */
static int
module_check_file(const char *path, const char *real, char *err, size_t errlen)
{
	struct stat	 st;
	uid_t		 owner = module_owner_set ? module_owner : geteuid();

	if (stat(real, &st) == -1)
		return module_err(err, errlen, "%s: cannot load: %s", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return module_err(err, errlen, "%s: cannot load: not a regular file", path);
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return module_err(err, errlen, "%s: refusing to load a module writable by "
		    "group or others (mode %04o); run chmod go-w on it", path,
		    (unsigned int)(st.st_mode & 07777));
	if (st.st_uid != 0 && st.st_uid != owner)
		return module_err(err, errlen, "%s: refusing to load a module owned by uid %ld "
		    "(only root or uid %ld, who started sluice, may own it)", path,
		    (long)st.st_uid, (long)owner);
	return module_check_dir(path, real, err, errlen);
}

/* A plugin's name must not shadow a built-in or another plugin. */
static int
module_check_clash(const struct sluice_module *desc, const char *path, char *err,
    size_t errlen)
{
	const struct sluice_module *const *b;
	const struct module		 *m;

	for (b = module_builtins(); *b != NULL; b++)
		if (strcmp((*b)->name, desc->name) == 0)
			return module_err(err, errlen, "%s: module name \"%s\" is the name of a "
			    "built-in module; rename the plugin", path, desc->name);
	for (m = module_registry; m != NULL; m = m->next)
		if (m->path != NULL && strcmp(m->desc->name, desc->name) == 0)
			return module_err(err, errlen, "%s: module name \"%s\" is already used "
			    "by %s; load only one of them", path, desc->name, m->path);
	return 0;
}

static struct module *
module_find_path(const char *real)
{
	struct module	*m;

	for (m = module_registry; m != NULL; m = m->next)
		if (m->path != NULL && strcmp(m->path, real) == 0)
			return m;
	return NULL;
}

static struct module *
module_find_builtin(const char *name)
{
	struct module	*m;

	for (m = module_registry; m != NULL; m = m->next)
		if (m->path == NULL && strcmp(m->desc->name, name) == 0)
			return m;
	return NULL;
}

static struct module *
module_register(const struct sluice_module *desc, const char *real, void *handle)
{
	struct module	*m;

	m = xcalloc(1, sizeof(*m));
	m->desc = desc;
	m->path = real != NULL ? xstrdup(real) : NULL;
	m->handle = handle;
	m->refs = 1;
	m->next = module_registry;
	module_registry = m;
	return m;
}

struct module *
module_open(const char *path, char *err, size_t errlen)
{
	char				 real[PATH_MAX];
	const struct sluice_module	*desc;
	struct module			*m;
	void				*handle;
	const char			*why;

	if (realpath(path, real) == NULL) {
		module_err(err, errlen, "%s: cannot load: %s", path, strerror(errno));
		return NULL;
	}
	if ((m = module_find_path(real)) != NULL)
		return module_ref(m);
	if (module_check_file(path, real, err, errlen) == -1)
		return NULL;
	if ((handle = dlopen(real, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		why = dlerror();
		module_err(err, errlen, "%s: cannot load: %s", path, why != NULL ? why : "dlopen failed");
		return NULL;
	}
	desc = dlsym(handle, SLUICE_FILTER_SYMBOL);
	if (desc == NULL) {
		module_err(err, errlen, "%s: not a sluice filter module: it does not export "
		    "\"%s\"", path, SLUICE_FILTER_SYMBOL);
		dlclose(handle);
		return NULL;
	}
	if (module_check(desc, path, err, errlen) == -1 ||
	    module_check_clash(desc, path, err, errlen) == -1) {
		dlclose(handle);
		return NULL;
	}
	log_debug("module loaded name=%s path=%s", desc->name, real);
	return module_register(desc, real, handle);
}

struct module *
module_builtin(const char *name)
{
	const struct sluice_module *const *b;
	struct module			 *m;
	char				  why[512];

	if (name == NULL)
		return NULL;
	if ((m = module_find_builtin(name)) != NULL)
		return module_ref(m);
	for (b = module_builtins(); *b != NULL; b++) {
		if ((*b)->name == NULL || strcmp((*b)->name, name) != 0)
			continue;
		/* A broken built-in is our bug; refuse it rather than crash later. */
		if (module_check(*b, "built-in", why, sizeof(why)) == -1) {
			log_warnx("%s", why);
			return NULL;
		}
		return module_register(*b, NULL, NULL);
	}
	return NULL;
}

struct module *
module_ref(struct module *mod)
{
	mod->refs++;
	return mod;
}

void
module_release(struct module **mod)
{
	struct module	*m, **pp;

	if (mod == NULL || (m = *mod) == NULL)
		return;
	*mod = NULL;
	if (--m->refs > 0)
		return;
	for (pp = &module_registry; *pp != NULL; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	if (m->handle != NULL) {
		log_debug("module unloaded name=%s path=%s", m->desc->name, m->path);
		dlclose(m->handle);
	}
	free(m->path);
	free(m);
}

/* --- Option defaults ------------------------------------------------------ */

/* A decimal integer with an optional sign, as a config INT. */
static int
module_parse_int(const char *s, long long *out)
{
	char	*end;

	if (s[0] == '\0' || isspace((unsigned char)s[0]))
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

/* The words libconfuse takes for a boolean. */
static int
module_parse_bool(const char *s, long long *out)
{
	if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
	    strcasecmp(s, "on") == 0)
		*out = 1;
	else if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 ||
	    strcasecmp(s, "off") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

/*
 * One list item at p: "double" (backslash escapes the next byte, \n and
 * \t as in C), 'single' (\\ and \' only) or a bare word.  Returns the
 * byte after it, or NULL when malformed.
 */
static const char *
module_list_item(const char *p, char **out)
{
	char	*buf = xmalloc(strlen(p) + 1);
	size_t	 n = 0;
	char	 q = *p;

	if (q == '"' || q == '\'') {
		for (p++; *p != q; p++) {
			if (*p == '\0')
				goto bad;
			if (*p == '\\' && p[1] != '\0' && (q == '"' || p[1] == '\\' || p[1] == '\'')) {
				p++;
				buf[n++] = q == '"' && *p == 'n' ? '\n' : q == '"' && *p == 't' ? '\t' : *p;
			} else
				buf[n++] = *p;
		}
		p++;
	} else {
		for (; *p != '\0' && strchr(" \t\r\n,{}()=+#\"'", *p) == NULL; p++)
			buf[n++] = *p;
		if (n == 0)
			goto bad;
	}
	buf[n] = '\0';
	*out = buf;
	return p;
bad:
	free(buf);
	return NULL;
}

/* "{ a, "b", 'c' }" (a trailing comma is fine, as in a config) into items. */
static int
module_parse_list(const char *s, char ***list, size_t *nlist)
{
	char	**items = NULL, *item;
	size_t	  n = 0, i;
	int	  rc = -1;

	s += strspn(s, MODULE_SPACE);
	if (*s++ != '{')
		return -1;
	for (;;) {
		s += strspn(s, MODULE_SPACE);
		if (*s == '}')
			break;
		if ((s = module_list_item(s, &item)) == NULL)
			goto done;
		items = xreallocarray(items, n + 1, sizeof(*items));
		items[n++] = item;
		s += strspn(s, MODULE_SPACE);
		if (*s == ',')
			s++;
		else if (*s != '}')
			goto done;
	}
	s++;
	if (s[strspn(s, MODULE_SPACE)] != '\0')
		goto done;
	rc = 0;
	if (list != NULL) {
		*list = items;
		*nlist = n;
		return 0;
	}
done:
	for (i = 0; i < n; i++)
		free(items[i]);
	free(items);
	return rc;
}

int
module_option_default(const struct sluice_option *opt, long long *number, char ***list,
    size_t *nlist)
{
	long long	 v = 0;
	int		 rc;

	if (opt->default_value == NULL)
		return -1;
	switch (opt->type) {
	case SLUICE_OPT_STRING:
		return 0;
	case SLUICE_OPT_INT:
		rc = module_parse_int(opt->default_value, &v);
		break;
	case SLUICE_OPT_BOOL:
		rc = module_parse_bool(opt->default_value, &v);
		break;
	case SLUICE_OPT_DURATION:
		rc = parse_duration_ms(opt->default_value, &v);
		break;
	case SLUICE_OPT_SIZE:
		rc = parse_size(opt->default_value, &v);
		break;
	case SLUICE_OPT_STRING_LIST:
		return module_parse_list(opt->default_value, list, nlist);
	default:
		return -1;
	}
	if (rc == 0 && number != NULL)
		*number = v;
	return rc;
}
