/*
 * test_generation.c - configuration generations: building, failing to
 * build, reference counting across threads, retiring on the main loop,
 * and that every filter instance's init is matched by one fini.
 *
 * The counter test plugin (tests/plugins/counter.c) counts its live
 * instances; the test reads the count through dlsym on its handle.
 */
#include "autoconf.h"

#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "backend.h"
#include "config.h"
#include "generation.h"
#include "module.h"
#include "worker.h"

#define PLUGIN	TEST_BUILDDIR "/tests/plugins/.libs/counter.so"

static struct event_base	*base;
static char			 dir[64];

/* Write a config with n counter instances (the last failing if asked). */
static const char *
write_config(const char *name, int instances, int last_fails, const char *banner)
{
	static char	 path[128];
	FILE		*fp;
	int		 i;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL)
		fail_msg("fopen %s", path);
	fprintf(fp, "spool_dir = \"%s\"\nload = { \"%s\" }\n", dir, PLUGIN);
	fprintf(fp, "backend \"md\" {\n type = \"maildir\"\n maildir = \"%s/md\"\n}\n", dir);
	for (i = 0; i < instances; i++)
		fprintf(fp, "counter \"c%d\" {\n fail = %s\n}\n", i,
		    last_fails && i == instances - 1 ? "true" : "false");
	fprintf(fp, "listener \"in\" {\n listen = { \"127.0.0.1:2525\", \"[::1]:2525\" }\n"
	    " backend = \"md\"\n banner = \"%s\"\n chain = {", banner);
	for (i = 0; i < instances; i++)
		fprintf(fp, "%s\"c%d\"", i ? ", " : " ", i);
	fprintf(fp, " }\n}\n");
	if (fclose(fp) != 0)
		fail_msg("fclose");
	return path;
}

/* The plugin's live-instance count, or -1 when it is not loaded. */
static int
plugin_live(void)
{
	void	*h = dlopen(PLUGIN, RTLD_NOW | RTLD_NOLOAD);
	int	(*live)(void);
	int	 n;

	if (h == NULL)
		return -1;
	live = (int (*)(void))dlsym(h, "counter_plugin_live");
	n = live != NULL ? live() : -2;
	dlclose(h);
	return n;
}

static struct generation *
build(const char *path)
{
	char			 err[4096] = "";
	struct generation	*g = generation_build(path, err, sizeof(err));

	if (g == NULL)
		fail_msg("generation_build: %s", err);
	return g;
}

/* Run the main loop until closures posted to it (retiring) have run. */
static void
run_main_loop(void)
{
	int	 i;

	for (i = 0; i < 10; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

static int
group_setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/test_generation.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	worker_threads_init();
	if ((base = event_base_new()) == NULL)
		return -1;
	worker_main_init(base);
	return 0;
}

static int
group_teardown(void **state)
{
	char	 cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return -1;
	event_base_free(base);
	return 0;
}

static void
test_build_and_free(void **state)
{
	struct generation	*g = build(write_config("a.conf", 3, 0, "one"));

	assert_int_equal(generation_live_count(), 1);
	assert_int_equal(plugin_live(), 3);
	assert_int_equal(g->nfilters, 3);
	assert_int_equal(g->nlisteners, 1);
	assert_int_equal(g->listeners[0].nchain, 3);
	assert_ptr_equal(g->listeners[0].chain[2], &g->filters[2]);
	assert_ptr_equal(g->listeners[0].backend, &g->backends[0]);
	generation_free(g);
	assert_int_equal(generation_live_count(), 0);
	/* The last reference to the plugin went with the config: unloaded. */
	assert_int_equal(plugin_live(), -1);
}

static void
test_failed_build_undoes_init(void **state)
{
	char			 err[4096] = "";
	struct generation	*g;

	g = generation_build(write_config("b.conf", 3, 1, "one"), err, sizeof(err));
	assert_null(g);
	assert_non_null(strstr(err, "b.conf:"));
	assert_non_null(strstr(err, "counter \"c2\": told to fail"));
	assert_int_equal(generation_live_count(), 0);
	assert_int_equal(plugin_live(), -1);
}

static void
test_listener_lookup(void **state)
{
	struct generation	*g = build(write_config("c.conf", 1, 0, "one"));

	assert_ptr_equal(generation_listener(g, "127.0.0.1:2525"), &g->listeners[0]);
	assert_ptr_equal(generation_listener(g, "[::1]:2525"), &g->listeners[0]);
	assert_null(generation_listener(g, "127.0.0.1:2526"));
	assert_null(generation_listener(g, "[::1]:25"));
	/* The counter module hooks RCPT only: the chain runner must know. */
	assert_int_equal(g->listeners[0].hooks, 1u << SLUICE_PHASE_RCPT);
	generation_free(g);
}

/* A session pins its generation: replacing it does not free it. */
static void
test_pinned_until_last_reference(void **state)
{
	struct generation	*g1, *g2, *pinned;

	g1 = build(write_config("d1.conf", 2, 0, "first"));
	generation_set_current(g1);
	pinned = generation_acquire();
	assert_ptr_equal(pinned, g1);
	g2 = build(write_config("d2.conf", 1, 0, "second"));
	generation_set_current(g2);
	run_main_loop();
	assert_int_equal(generation_live_count(), 2);
	assert_int_equal(plugin_live(), 3);
	assert_string_equal(pinned->listeners[0].conf->banner, "first");
	generation_unref(pinned);
	run_main_loop();
	assert_int_equal(generation_live_count(), 1);
	assert_int_equal(plugin_live(), 1);
	generation_shutdown();
	assert_int_equal(generation_live_count(), 0);
	assert_int_equal(plugin_live(), -1);
}

struct churn {
	int	 rounds;	/* acquire/unref pairs */
	int	 seen_null;	/* acquired nothing (must not happen) */
};

static void *
churn_thread(void *arg)
{
	struct churn	*c = arg;
	int		 i;

	for (i = 0; i < c->rounds; i++) {
		struct generation	*g = generation_acquire();

		if (g == NULL) {
			c->seen_null++;
			continue;
		}
		generation_unref(g);
	}
	return NULL;
}

/* Sessions on other threads take and drop references while reloads swap. */
static void
test_refcount_under_concurrent_reloads(void **state)
{
	pthread_t	 t[4];
	struct churn	 c[4];
	int		 i;

	generation_set_current(build(write_config("e0.conf", 1, 0, "zero")));
	for (i = 0; i < 4; i++) {
		c[i].rounds = 20000;
		c[i].seen_null = 0;
		assert_int_equal(pthread_create(&t[i], NULL, churn_thread, &c[i]), 0);
	}
	for (i = 0; i < 30; i++) {
		generation_set_current(build(write_config(i % 2 ? "e1.conf" : "e2.conf", 1, 0,
		    "swap")));
		run_main_loop();
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(c[i].seen_null, 0);
	}
	run_main_loop();
	assert_int_equal(generation_live_count(), 1);
	assert_int_equal(plugin_live(), 1);
	generation_shutdown();
	assert_int_equal(generation_live_count(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_and_free),
		cmocka_unit_test(test_failed_build_undoes_init),
		cmocka_unit_test(test_listener_lookup),
		cmocka_unit_test(test_pinned_until_last_reference),
		cmocka_unit_test(test_refcount_under_concurrent_reloads),
	};

	return cmocka_run_group_tests_name("generation", tests, group_setup, group_teardown);
}
