/*
 * test_module.c - the module registry: descriptor checks, option default
 * conversion, loading the test plugins of tests/plugins (good, ABI
 * mismatch, no symbol, name clash), refusing files others may write,
 * sharing one dlopen between references, and unloading on the last
 * release.  The plugins are copied into a private directory with mode
 * 0755 first, so the result does not depend on the build's umask.
 */
#include "autoconf.h"

#include <sys/stat.h>

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
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "module.h"
#include "sluice_filter.h"

#ifndef TEST_BUILDDIR
#define TEST_BUILDDIR "."
#endif

/* --- Built-ins of this test ------------------------------------------------ */

static const struct sluice_option testmod_options[] = {
	{ "pattern", SLUICE_OPT_STRING, NULL, 0, "a string" },
	{ NULL, 0, NULL, 0, NULL }
};

static const struct sluice_module testmod = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "testmod",
	.options = testmod_options,
};

/* A built-in with a bad option declaration: module_builtin() refuses it. */
static const struct sluice_option broken_options[] = {
	{ "Bad Name", SLUICE_OPT_STRING, NULL, 0, NULL },
	{ NULL, 0, NULL, 0, NULL }
};

static const struct sluice_module broken = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "broken",
	.options = broken_options,
};

/* Stands in for a built-in that has the plugin's name. */
static const struct sluice_module fake_good = {
	.abi_version = SLUICE_FILTER_ABI_VERSION,
	.name = "good",
};

static const struct sluice_module *const builtins_plain[] = { &testmod, &broken, NULL };
static const struct sluice_module *const builtins_clash[] = { &testmod, &fake_good, NULL };
static int	 use_clash_builtins;

const struct sluice_module *const *
module_builtins(void)
{
	return use_clash_builtins ? builtins_clash : builtins_plain;
}

/* --- Fixture: a private copy of the plugins -------------------------------- */

static char	 tmpdir[64];

static void
copy_file(const char *from, const char *to, mode_t mode)
{
	char	 buf[8192];
	ssize_t	 n;
	int	 in, out;

	in = open(from, O_RDONLY);
	if (in == -1)
		fail_msg("cannot open %s (build the test plugins first): %s", from,
		    strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(out != -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
	/* chmod, not the umask, decides the mode the loader sees. */
	assert_int_equal(chmod(to, mode), 0);
}

/* tmpdir/<sub>/<name>.so, a copy of the built plugin with the given mode. */
static char *
plugin_copy(const char *name, const char *sub, mode_t mode)
{
	char	 from[PATH_MAX], dir[PATH_MAX];
	char	*to;

	snprintf(from, sizeof(from), "%s/tests/plugins/.libs/%s.so", TEST_BUILDDIR, name);
	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, sub);
	mkdir(dir, 0755);
	/* Not the umask either: a group-writable directory is refused. */
	assert_int_equal(chmod(dir, 0755), 0);
	assert_true(asprintf(&to, "%s/%s.so", dir, name) > 0);
	copy_file(from, to, mode);
	return to;
}

/* Whether the dynamic linker still has path mapped (without loading it). */
static int
is_loaded(const char *path)
{
	char	 real[PATH_MAX];
	void	*h;

	if (realpath(path, real) == NULL)
		return 0;
	if ((h = dlopen(real, RTLD_NOW | RTLD_NOLOAD)) == NULL)
		return 0;
	dlclose(h);
	return 1;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int
group_setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sluice-test-module.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void
expect_refusal(struct module *m, const char *err, const char *want)
{
	assert_null(m);
	if (strstr(err, want) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", want, err);
}

/* --- module_check ------------------------------------------------------------ */

struct check_case {
	const char	*what;			/* for the failure message */
	uint32_t	 abi;			/* abi_version */
	const char	*name;			/* module name */
	struct sluice_option opts[3];		/* declared options */
	const char	*want;			/* NULL = accepted, else in err */
};

static const struct check_case check_cases[] = {
	{ "fine", 1, "mod-a_1", { { "opt_1", SLUICE_OPT_INT, "-5", 0, NULL } }, NULL },
	{ "abi", 2, "x", { { NULL, 0, NULL, 0, NULL } },
	    "origin: ABI version 2, but this sluice needs 1; rebuild the module against "
	    "this sluice's sluice_filter.h" },
	{ "null name", 1, NULL, { { NULL, 0, NULL, 0, NULL } }, "module name (null) is not valid" },
	{ "empty name", 1, "", { { NULL, 0, NULL, 0, NULL } }, "is not valid" },
	{ "upper", 1, "Mod", { { NULL, 0, NULL, 0, NULL } }, "module name Mod is not valid" },
	{ "digit first", 1, "1mod", { { NULL, 0, NULL, 0, NULL } }, "is not valid" },
	{ "space", 1, "a b", { { NULL, 0, NULL, 0, NULL } }, "module name \"a b\" is not valid" },
	{ "long", 1, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd",
	    { { NULL, 0, NULL, 0, NULL } }, "is not valid" },
	{ "keyword", 1, "listener", { { NULL, 0, NULL, 0, NULL } },
	    "module name \"listener\" is a keyword of the sluice configuration" },
	{ "keyword load", 1, "load", { { NULL, 0, NULL, 0, NULL } }, "is a keyword" },
	{ "option dash", 1, "m", { { "a-b", SLUICE_OPT_INT, NULL, 0, NULL } },
	    "option name a-b is not valid" },
	{ "option upper", 1, "m", { { "Opt", SLUICE_OPT_INT, NULL, 0, NULL } },
	    "option name Opt is not valid" },
	{ "option timeout", 1, "m", { { "timeout", SLUICE_OPT_DURATION, NULL, 0, NULL } },
	    "option \"timeout\" is common to every filter instance" },
	{ "option on_error", 1, "m", { { "on_error", SLUICE_OPT_STRING, NULL, 0, NULL } },
	    "option \"on_error\" is common" },
	{ "option mode", 1, "m", { { "mode", SLUICE_OPT_STRING, NULL, 0, NULL } },
	    "option \"mode\" is common" },
	{ "duplicate", 1, "m", { { "a", SLUICE_OPT_INT, NULL, 0, NULL },
	    { "a", SLUICE_OPT_STRING, NULL, 0, NULL } }, "declares option \"a\" twice" },
	{ "type", 1, "m", { { "a", (enum sluice_option_type)17, NULL, 0, NULL } },
	    "option \"a\" has unknown type 17" },
	{ "bad int", 1, "m", { { "a", SLUICE_OPT_INT, "12x", 0, NULL } },
	    "the default of option \"a\" is not a valid value of its type" },
	{ "int spaces", 1, "m", { { "a", SLUICE_OPT_INT, " 1", 0, NULL } }, "not a valid value" },
	{ "bad bool", 1, "m", { { "a", SLUICE_OPT_BOOL, "maybe", 0, NULL } }, "not a valid value" },
	{ "bad duration", 1, "m", { { "a", SLUICE_OPT_DURATION, "5x", 0, NULL } },
	    "not a valid value" },
	{ "bad size", 1, "m", { { "a", SLUICE_OPT_SIZE, "3Q", 0, NULL } }, "not a valid value" },
	{ "list no braces", 1, "m", { { "a", SLUICE_OPT_STRING_LIST, "a", 0, NULL } },
	    "not a valid value" },
	{ "list open", 1, "m", { { "a", SLUICE_OPT_STRING_LIST, "{a", 0, NULL } },
	    "not a valid value" },
	{ "list open string", 1, "m", { { "a", SLUICE_OPT_STRING_LIST, "{\"a}", 0, NULL } },
	    "not a valid value" },
	{ "list no comma", 1, "m", { { "a", SLUICE_OPT_STRING_LIST, "{a b}", 0, NULL } },
	    "not a valid value" },
	{ "list trailing", 1, "m", { { "a", SLUICE_OPT_STRING_LIST, "{a} x", 0, NULL } },
	    "not a valid value" },
	{ "list empty item", 1, "m", { { "a", SLUICE_OPT_STRING_LIST, "{,}", 0, NULL } },
	    "not a valid value" },
	{ "good defaults", 1, "m", { { "a", SLUICE_OPT_STRING_LIST, " { a , \"b\", 'c',}", 0, NULL },
	    { "b", SLUICE_OPT_BOOL, "On", 0, NULL } }, NULL },
	{ "empty list", 1, "m", { { "a", SLUICE_OPT_STRING_LIST, "{}", 0, NULL },
	    { "b", SLUICE_OPT_SIZE, "10M", 0, NULL } }, NULL },
};

static void
test_check_descriptors(void **state)
{
	struct sluice_module	 desc;
	char			 err[512];
	size_t			 i;
	int			 rc;

	for (i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		const struct check_case	*c = &check_cases[i];

		memset(&desc, 0, sizeof(desc));
		desc.abi_version = c->abi;
		desc.name = c->name;
		desc.options = c->opts;
		err[0] = '\0';
		rc = module_check(&desc, "origin", err, sizeof(err));
		if (c->want == NULL && rc != 0)
			fail_msg("%s: refused: %s", c->what, err);
		if (c->want != NULL && (rc != -1 || strstr(err, c->want) == NULL))
			fail_msg("%s: rc %d, expected \"%s\" in \"%s\"", c->what, rc, c->want, err);
	}
	assert_int_equal(module_check(NULL, "origin", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "origin: the module descriptor is NULL"));
	desc.options = NULL;
	desc.name = "no-options";
	desc.abi_version = SLUICE_FILTER_ABI_VERSION;
	assert_int_equal(module_check(&desc, "origin", err, sizeof(err)), 0);
}

static void
test_option_defaults(void **state)
{
	struct sluice_option	 o = { "a", SLUICE_OPT_STRING_LIST,
	    " { plain, \"q \\\" \\\\ \\n\", 'it\\'s', } ", 0, NULL };
	char			**list = NULL;
	size_t			 n = 0, i;
	long long		 v = -1;

	assert_int_equal(module_option_default(&o, NULL, &list, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[0], "plain");
	assert_string_equal(list[1], "q \" \\ \n");
	assert_string_equal(list[2], "it's");
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	o.default_value = "{}";
	list = NULL;
	assert_int_equal(module_option_default(&o, NULL, &list, &n), 0);
	assert_int_equal(n, 0);
	free(list);
	o.type = SLUICE_OPT_DURATION;
	o.default_value = "250ms";
	assert_int_equal(module_option_default(&o, &v, NULL, NULL), 0);
	assert_int_equal(v, 250);
	o.default_value = "2";
	assert_int_equal(module_option_default(&o, &v, NULL, NULL), 0);
	assert_int_equal(v, 2000);
	o.type = SLUICE_OPT_SIZE;
	o.default_value = "10M";
	assert_int_equal(module_option_default(&o, &v, NULL, NULL), 0);
	assert_int_equal(v, 10 * 1024 * 1024);
	o.type = SLUICE_OPT_BOOL;
	o.default_value = "NO";
	assert_int_equal(module_option_default(&o, &v, NULL, NULL), 0);
	assert_int_equal(v, 0);
	o.default_value = "yes";
	assert_int_equal(module_option_default(&o, &v, NULL, NULL), 0);
	assert_int_equal(v, 1);
	o.type = SLUICE_OPT_INT;
	o.default_value = "-42";
	assert_int_equal(module_option_default(&o, &v, NULL, NULL), 0);
	assert_int_equal(v, -42);
	o.default_value = "99999999999999999999";
	assert_int_equal(module_option_default(&o, &v, NULL, NULL), -1);
	o.default_value = NULL;
	assert_int_equal(module_option_default(&o, &v, NULL, NULL), -1);
	o.type = SLUICE_OPT_STRING;
	o.default_value = "anything { at all";
	assert_int_equal(module_option_default(&o, &v, NULL, NULL), 0);
}

/* --- Built-ins ---------------------------------------------------------------- */

static void
test_builtin_refs(void **state)
{
	struct module	*a, *b, *keep;

	a = module_builtin("testmod");
	assert_non_null(a);
	assert_ptr_equal(a->desc, &testmod);
	assert_null(a->path);
	assert_null(a->handle);
	assert_int_equal(a->refs, 1);
	b = module_builtin("testmod");
	assert_ptr_equal(a, b);
	assert_int_equal(a->refs, 2);
	assert_ptr_equal(module_ref(a), a);
	assert_int_equal(a->refs, 3);
	keep = a;
	module_release(&a);
	assert_null(a);
	assert_int_equal(keep->refs, 2);
	module_release(&b);
	assert_null(b);
	module_release(&keep);
	module_release(&keep);		/* NULL: nothing */
	assert_null(module_builtin("nosuch"));
	assert_null(module_builtin(NULL));
	/* Declared with a bad option name: refused, not handed out. */
	assert_null(module_builtin("broken"));
}

/* --- Plugins ------------------------------------------------------------------- */

static void
test_open_good_twice_one_dlopen(void **state)
{
	char		*path = plugin_copy("good", "a", 0755);
	char		 other[PATH_MAX], real[PATH_MAX], err[512] = "";
	struct module	*m1, *m2;

	assert_false(is_loaded(path));
	m1 = module_open(path, err, sizeof(err));
	if (m1 == NULL)
		fail_msg("%s", err);
	assert_string_equal(m1->desc->name, "good");
	assert_non_null(realpath(path, real));
	assert_string_equal(m1->path, real);
	assert_non_null(m1->handle);
	assert_int_equal(m1->refs, 1);
	assert_true(is_loaded(path));
	/* Another spelling of the same file is the same module. */
	snprintf(other, sizeof(other), "%s/a/../a/./good.so", tmpdir);
	m2 = module_open(other, err, sizeof(err));
	assert_ptr_equal(m1, m2);
	assert_ptr_equal(m1->handle, m2->handle);
	assert_int_equal(m1->refs, 2);
	module_release(&m2);
	assert_null(m2);
	assert_int_equal(m1->refs, 1);
	assert_true(is_loaded(path));
	module_release(&m1);
	assert_null(m1);
	assert_false(is_loaded(path));
	/* Gone from the registry too: opening again is a fresh load. */
	m1 = module_open(path, err, sizeof(err));
	assert_non_null(m1);
	assert_int_equal(m1->refs, 1);
	module_release(&m1);
	assert_false(is_loaded(path));
	free(path);
}

static void
test_open_abi_mismatch(void **state)
{
	char	*path = plugin_copy("abi_mismatch", "b", 0755);
	char	 err[512], want[PATH_MAX + 128];

	snprintf(want, sizeof(want), "%s: ABI version %u, but this sluice needs %u; rebuild "
	    "the module against this sluice's sluice_filter.h", path,
	    SLUICE_FILTER_ABI_VERSION + 1, SLUICE_FILTER_ABI_VERSION);
	expect_refusal(module_open(path, err, sizeof(err)), err, want);
	assert_false(is_loaded(path));
	free(path);
}

static void
test_open_no_symbol(void **state)
{
	char	*path = plugin_copy("nosymbol", "c", 0755);
	char	 err[512], want[PATH_MAX + 128];

	snprintf(want, sizeof(want), "%s: not a sluice filter module: it does not export "
	    "\"sluice_filter_module\"", path);
	expect_refusal(module_open(path, err, sizeof(err)), err, want);
	assert_false(is_loaded(path));
	free(path);
}

static void
test_open_clash_keyword(void **state)
{
	char	*path = plugin_copy("clash", "d", 0755);
	char	 err[512], want[PATH_MAX + 128];

	snprintf(want, sizeof(want), "%s: module name \"listener\" is a keyword of the sluice "
	    "configuration; rename the module", path);
	expect_refusal(module_open(path, err, sizeof(err)), err, want);
	assert_false(is_loaded(path));
	free(path);
}

static void
test_open_clash_builtin(void **state)
{
	char	*path = plugin_copy("good", "e", 0755);
	char	 err[512], want[PATH_MAX + 128];

	use_clash_builtins = 1;
	snprintf(want, sizeof(want), "%s: module name \"good\" is the name of a built-in "
	    "module; rename the plugin", path);
	expect_refusal(module_open(path, err, sizeof(err)), err, want);
	use_clash_builtins = 0;
	assert_false(is_loaded(path));
	free(path);
}

static void
test_open_clash_other_plugin(void **state)
{
	char		*first = plugin_copy("good", "f1", 0755);
	char		*second = plugin_copy("good", "f2", 0755);
	char		 err[512], want[PATH_MAX * 2 + 128], real[PATH_MAX];
	struct module	*m;

	m = module_open(first, err, sizeof(err));
	assert_non_null(m);
	assert_non_null(realpath(first, real));
	snprintf(want, sizeof(want), "%s: module name \"good\" is already used by %s; load "
	    "only one of them", second, real);
	expect_refusal(module_open(second, err, sizeof(err)), err, want);
	assert_false(is_loaded(second));
	module_release(&m);
	free(first);
	free(second);
}

static void
test_open_writable_refused(void **state)
{
	static const mode_t	 modes[] = { 0757, 0775, 0646 };
	char			*path;
	char			 err[512], want[PATH_MAX + 128];
	size_t			 i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		path = plugin_copy("good", "g", modes[i]);
		snprintf(want, sizeof(want), "%s: refusing to load a module writable by group "
		    "or others (mode %04o); run chmod go-w on it", path, (unsigned int)modes[i]);
		expect_refusal(module_open(path, err, sizeof(err)), err, want);
		assert_false(is_loaded(path));
		free(path);
	}
}

/* The directory: writable by group or others only with the sticky bit. */
static void
test_open_dir_writable_refused(void **state)
{
	static const mode_t	 modes[] = { 0777, 0775, 0757 };
	char			*path, dir[PATH_MAX], real[PATH_MAX];
	char			 err[PATH_MAX * 2 + 256], want[PATH_MAX * 2 + 256];
	struct module		*m;
	size_t			 i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		path = plugin_copy("good", "wd", 0755);
		snprintf(dir, sizeof(dir), "%s/wd", tmpdir);
		assert_non_null(realpath(dir, real));
		assert_int_equal(chmod(dir, modes[i]), 0);
		snprintf(want, sizeof(want), "%s: refusing to load a module from directory %s, "
		    "writable by group or others (mode %04o); run chmod go-w on it", path, real,
		    (unsigned int)modes[i]);
		expect_refusal(module_open(path, err, sizeof(err)), err, want);
		assert_false(is_loaded(path));
		free(path);
	}
	/* Sticky (like /tmp): others cannot replace a file they do not own. */
	assert_int_equal(chmod(dir, 01777), 0);
	path = plugin_copy("good", "wd", 0755);
	assert_int_equal(chmod(dir, 01777), 0);
	m = module_open(path, err, sizeof(err));
	if (m == NULL)
		fail_msg("%s", err);
	module_release(&m);
	free(path);
}

/* Owned by someone other than root or who started us: refused. */
static void
test_open_owner_refused(void **state)
{
	char		*path, err[PATH_MAX + 256], want[PATH_MAX + 256];
	struct module	*m;

	if (geteuid() != 0)
		skip();
	path = plugin_copy("good", "own", 0755);
	assert_int_equal(chown(path, 65534, 65534), 0);
	snprintf(want, sizeof(want), "%s: refusing to load a module owned by uid 65534 "
	    "(only root or uid 0, who started sluice, may own it)", path);
	expect_refusal(module_open(path, err, sizeof(err)), err, want);
	/* Once told that uid started the daemon, it may own its plugins. */
	module_set_owner(65534);
	m = module_open(path, err, sizeof(err));
	module_set_owner(0);
	if (m == NULL)
		fail_msg("%s", err);
	module_release(&m);
	free(path);
}

static void
test_open_not_a_file(void **state)
{
	char	 path[PATH_MAX], err[512], want[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/nonexistent.so", tmpdir);
	snprintf(want, sizeof(want), "%s: cannot load: No such file or directory", path);
	expect_refusal(module_open(path, err, sizeof(err)), err, want);
	snprintf(want, sizeof(want), "%s: cannot load: not a regular file", tmpdir);
	expect_refusal(module_open(tmpdir, err, sizeof(err)), err, want);
	/* A file that is not a shared object: dlopen's reason, with the name. */
	snprintf(path, sizeof(path), "%s/text.so", tmpdir);
	copy_file("/dev/null", path, 0644);
	expect_refusal(module_open(path, err, sizeof(err)), err, "text.so: cannot load: ");
}

/* A plugin loaded by a config reads its options through sluice_option_*(). */
static void
test_plugin_reads_options(void **state)
{
	char			*path = plugin_copy("good", "h", 0755);
	char			 conf[PATH_MAX], err[2048];
	struct config		*cfg;
	struct sluice_filter	 handle;
	void			*instance = NULL;
	FILE			*f;

	snprintf(conf, sizeof(conf), "%s/h/sluice.conf", tmpdir);
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f, "load = { \"good.so\" }\n"
	    "backend \"b\" { servers = { \"127.0.0.1:10025\" } }\n"
	    "listener \"l\" { listen = { \"127.0.0.1:2525\" } backend = \"b\" chain = { \"g\" } }\n"
	    "good \"g\" { secret = \"s3\" count = -3 loud = yes words = { \"x\" } wait = 250ms "
	    "max = 2M }\n"
	    "good \"d\" { secret = \"only\" }\n");
	fclose(f);
	if (config_load(conf, &cfg, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_int_equal(cfg->nmodules, 1);
	/* One reference for the load, one per instance. */
	assert_int_equal(cfg->modules[0]->refs, 3);
	handle.conf = &cfg->filters[0];
	assert_int_equal(cfg->modules[0]->desc->init(&handle, &instance, err, sizeof(err)), 0);
	assert_string_equal(instance, "name=g greeting=hello count=-3 loud=1 words=1:x|- "
	    "wait=250 max=2097152 secret=s3 undeclared=null mistyped=0 beyond=null");
	cfg->modules[0]->desc->fini(instance);
	handle.conf = &cfg->filters[1];
	assert_int_equal(cfg->modules[0]->desc->init(&handle, &instance, err, sizeof(err)), 0);
	assert_string_equal(instance, "name=d greeting=hello count=7 loud=0 words=2:a|b c "
	    "wait=1000 max=65536 secret=only undeclared=null mistyped=0 beyond=null");
	cfg->modules[0]->desc->fini(instance);
	assert_true(is_loaded(path));
	config_free(&cfg);
	assert_null(cfg);
	assert_false(is_loaded(path));
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_descriptors),
		cmocka_unit_test(test_option_defaults),
		cmocka_unit_test(test_builtin_refs),
		cmocka_unit_test(test_open_good_twice_one_dlopen),
		cmocka_unit_test(test_open_abi_mismatch),
		cmocka_unit_test(test_open_no_symbol),
		cmocka_unit_test(test_open_clash_keyword),
		cmocka_unit_test(test_open_clash_builtin),
		cmocka_unit_test(test_open_clash_other_plugin),
		cmocka_unit_test(test_open_writable_refused),
		cmocka_unit_test(test_open_dir_writable_refused),
		cmocka_unit_test(test_open_owner_refused),
		cmocka_unit_test(test_open_not_a_file),
		cmocka_unit_test(test_plugin_reads_options),
	};

	return cmocka_run_group_tests_name("module", tests, group_setup, group_teardown);
}
