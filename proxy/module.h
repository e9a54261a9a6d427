/*
 * module.h - filter modules: the built-in ones and dlopen'ed plugins.
 *
 * A module is loaded once per path and shared by every generation that
 * names it; each generation holds one reference, and the module is
 * dlclose'd when the last reference goes.  Main thread only.
 */
#ifndef SLUICE_MODULE_H
#define SLUICE_MODULE_H

#include <stddef.h>
#include <sys/types.h>

struct sluice_module;
struct sluice_option;

struct module {
	const struct sluice_module *desc;	/* the exported descriptor */
	char			*path;		/* file loaded, NULL for built-ins */
	void			*handle;	/* dlopen handle, NULL for built-ins */
	int			 refs;		/* generations using it */
	struct module		*next;		/* registry list */
};

/*
 * Load the plugin at path (or take another reference on it when already
 * loaded).  On failure returns NULL and writes a sentence naming the file
 * into err: not found, not a sluice filter, ABI version mismatch, name
 * clashing with a built-in or core keyword, file writable by others.
 */
struct module	*module_open(const char *path, char *err, size_t errlen);

/*
 * The user who started the daemon (before any privilege drop): a plugin
 * must belong to root or to it, so the user sluice drops to cannot plant
 * code for the next reload.  Unset: the current effective uid.
 */
void		 module_set_owner(uid_t uid);

/* A built-in module by name with a new reference, or NULL. */
struct module	*module_builtin(const char *name);

/* Every built-in descriptor, NULL-terminated. */
const struct sluice_module *const *module_builtins(void);

/* Another reference on a module the caller already holds; returns mod. */
struct module	*module_ref(struct module *mod);

/* Drop a reference; dlclose when it was the last.  Clears *mod. */
void		 module_release(struct module **mod);

/*
 * Check a descriptor (ABI version, name syntax, not a core config keyword,
 * option declarations and their defaults).  Returns 0, or -1 with a
 * sentence in err naming origin (file or "built-in").
 */
int		 module_check(const struct sluice_module *desc, const char *origin,
		    char *err, size_t errlen);

/*
 * Convert an option's default_value, written as in a config file, for
 * its type: *number gets INT, BOOL (0/1), DURATION (ms) and SIZE (bytes);
 * *list and *nlist get a STRING_LIST ({ "a", 'b', c }; caller frees the
 * items and the array); a STRING needs no conversion.  Either output may
 * be NULL to only check.  Returns 0, or -1 when the text is not a value
 * of that type (or default_value is NULL).
 */
int		 module_option_default(const struct sluice_option *opt, long long *number,
		    char ***list, size_t *nlist);

#endif /* SLUICE_MODULE_H */
