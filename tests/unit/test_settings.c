/* tally - unit tests for settings: defaults, bounds and refused values of
 * the TALLY_* environment variables, for every whole number declared in
 * src/settings.def. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "settings.h"

struct bound {
	const char	*name;
	size_t		 offset;
	unsigned int	 def, min, max;
};

/* Each whole number as src/settings.def declares it (which settings.c
 * and the documentation read too): what it does with it is checked here. */
static const struct bound bounds[] = {
#define SETTING(var, field, def, min, max, chart, meaning)		\
	{ #var, offsetof(struct settings, field), def, min, max },
#include "settings.def"
};
#define NBOUNDS	(sizeof(bounds) / sizeof(bounds[0]))

static unsigned int
value_of(const struct settings *s, const struct bound *b)
{
	return *(const unsigned int *)(const void *)((const char *)s +
	    b->offset);
}

static void
clear_env(void)
{
	size_t	i;

	for (i = 0; i < NBOUNDS; i++)
		CHECK_INT(unsetenv(bounds[i].name), 0);
	CHECK_INT(unsetenv("TALLY_TRUSTED_PROXIES"), 0);
	CHECK_INT(unsetenv("TALLY_RUN_DIR"), 0);
	CHECK_INT(unsetenv("TALLY_LOG_LEVEL"), 0);
}

static void
load_ok(struct settings *s)
{
	char	err[256] = "";
	int	rc = settings_load(s, err, sizeof(err));

	check_case("settings_load: %s", rc == 0 ? "ok" : err);
	CHECK_INT(rc, 0);
}

/* Loading must fail with a message that names the variable. */
static void
load_refused(const char *name, const char *value)
{
	struct settings	s;
	char		err[256] = "";

	check_case("%s=\"%s\"", name, value);
	CHECK_INT(settings_load(&s, err, sizeof(err)), -1);
	CHECK_HAS(err, name);
	settings_free(&s);	/* safe after a failure too */
}

/* Loads the settings and finds every one at its default. */
static void
expect_defaults(void)
{
	struct settings	s;
	size_t		i;

	load_ok(&s);
	for (i = 0; i < NBOUNDS; i++)
		CHECK_INT(value_of(&s, &bounds[i]), bounds[i].def);
	CHECK_INT(s.trusted_proxies.len, 0);
	CHECK_STR(s.run_dir, "/run/tally");
	settings_free(&s);
}

static void
test_defaults(void)
{
	size_t	i;

	clear_env();
	expect_defaults();

	/* Set but empty is the same as unset. */
	for (i = 0; i < NBOUNDS; i++)
		CHECK_INT(setenv(bounds[i].name, "", 1), 0);
	CHECK_INT(setenv("TALLY_TRUSTED_PROXIES", "", 1), 0);
	CHECK_INT(setenv("TALLY_RUN_DIR", "", 1), 0);
	expect_defaults();
	clear_env();
}

static void
test_bounds(void)
{
	struct settings	 s;
	char		 v[32];
	size_t		 i;

	for (i = 0; i < NBOUNDS; i++) {
		const struct bound	*b = &bounds[i];

		clear_env();
		snprintf(v, sizeof(v), "%u", b->min);
		CHECK_INT(setenv(b->name, v, 1), 0);
		load_ok(&s);
		CHECK_INT(value_of(&s, b), b->min);
		settings_free(&s);

		snprintf(v, sizeof(v), "%u", b->max);
		CHECK_INT(setenv(b->name, v, 1), 0);
		load_ok(&s);
		CHECK_INT(value_of(&s, b), b->max);
		settings_free(&s);

		snprintf(v, sizeof(v), "%u", b->min - 1);
		CHECK_INT(setenv(b->name, v, 1), 0);
		load_refused(b->name, v);

		snprintf(v, sizeof(v), "%u", b->max + 1);
		CHECK_INT(setenv(b->name, v, 1), 0);
		load_refused(b->name, v);
	}
	clear_env();
}

static void
test_bad_values(void)
{
	static const char *const bad[] = {
		"abc", "12abc", "12 ", "-1", "-0", "0x10", "1e3", "1.5", " ",
		"99999999999999999999999999", "4294967297", "18446744073709551617",
		"\t", "2,3", "\xff",
	};
	size_t	i, j;

	for (i = 0; i < NBOUNDS; i++)
		for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
			clear_env();
			CHECK_INT(setenv(bounds[i].name, bad[j], 1), 0);
			load_refused(bounds[i].name, bad[j]);
		}
	clear_env();
}

/* One bad setting fails the whole load even when the others are good. */
static void
test_one_bad_among_good(void)
{
	clear_env();
	CHECK_INT(setenv("TALLY_PROCESSES", "4", 1), 0);
	CHECK_INT(setenv("TALLY_TRUSTED_PROXIES", "10.0.0.0/8", 1), 0);
	CHECK_INT(setenv("TALLY_IO_TIMEOUT", "forever", 1), 0);
	load_refused("TALLY_IO_TIMEOUT", "forever");
	clear_env();
}

static void
test_error_message_bounded(void)
{
	struct settings	 s;
	char		 err[16], longval[4096];

	clear_env();
	memset(longval, '9', sizeof(longval) - 1);
	longval[sizeof(longval) - 1] = '\0';
	CHECK_INT(setenv("TALLY_THREADS", longval, 1), 0);
	memset(err, 'x', sizeof(err));
	CHECK_INT(settings_load(&s, err, sizeof(err)), -1);
	CHECK_INT(strlen(err), sizeof(err) - 1);
	settings_free(&s);
	clear_env();
}

static void
test_trusted_proxies(void)
{
	struct settings	 s;
	char		 err[256] = "";

	clear_env();
	CHECK(setenv("TALLY_TRUSTED_PROXIES",
	    "127.0.0.0/8, 10.0.0.0/8, fd00::/8, ::1", 1) == 0);
	load_ok(&s);
	CHECK_INT(s.trusted_proxies.len, 4);
	CHECK_INT(s.trusted_proxies.items[2].prefix, 8);
	settings_free(&s);
	CHECK_INT(s.trusted_proxies.items, NULL);

	CHECK(setenv("TALLY_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.0/33", 1)
	    == 0);
	load_refused("TALLY_TRUSTED_PROXIES", "10.0.0.0/33");
	CHECK_INT(settings_load(&s, err, sizeof(err)), -1);
	CHECK_HAS(err, "10.0.0.0/33");
	CHECK_INT(s.trusted_proxies.len, 0);
	settings_free(&s);

	CHECK_INT(setenv("TALLY_TRUSTED_PROXIES", "localhost", 1), 0);
	load_refused("TALLY_TRUSTED_PROXIES", "localhost");
	CHECK(setenv("TALLY_TRUSTED_PROXIES", "10.0.0.0/8 192.168.0.0/16",
	    1) == 0);
	load_refused("TALLY_TRUSTED_PROXIES", "10.0.0.0/8 192.168.0.0/16");
	clear_env();
}

static void
test_run_dir(void)
{
	struct settings	s;

	clear_env();
	CHECK_INT(setenv("TALLY_RUN_DIR", "/tmp/tally-run", 1), 0);
	load_ok(&s);
	CHECK_STR(s.run_dir, "/tmp/tally-run");
	settings_free(&s);
	clear_env();
}

/* TALLY_LOG_LEVEL: the four levels, or unset or empty; nothing else. */
static void
test_log_level(void)
{
	static const char *const good[] = { "debug", "info", "warn", "error",
	    "" };
	static const char *const bad[] = { "verbose", "INFO", "warning",
	    "info ", "0", "errors" };
	struct settings	s;
	size_t		i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		clear_env();
		CHECK_INT(setenv("TALLY_LOG_LEVEL", good[i], 1), 0);
		load_ok(&s);
		settings_free(&s);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		CHECK_INT(setenv("TALLY_LOG_LEVEL", bad[i], 1), 0);
		load_refused("TALLY_LOG_LEVEL", bad[i]);
	}
	clear_env();
}

int
main(void)
{
	test_defaults();
	test_bounds();
	test_bad_values();
	test_one_bad_among_good();
	test_error_message_bounded();
	test_trusted_proxies();
	test_run_dir();
	test_log_level();
	return 0;
}
