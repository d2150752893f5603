/* tally - fuzzes settings_load, the responders' configuration from the
 * environment. Input: one value per line for the variables below, in
 * their order; a variable without a line is unset. Accepted settings
 * hold what was asked (at least 1; TALLY_THREADS is 0 when unset or
 * empty: each responder's own default); refused ones name the
 * variable. */
#include "fuzz.h"

#include <errno.h>
#include <stdio.h>

#include "settings.h"

#define VALUE_MAX	2048

struct variable {
	const char	*name;
	long		 offset;	/* of its unsigned int, or -1 */
	int		 zero_if_unset;
};

static const struct variable variables[] = {
	{ "TALLY_PROCESSES", (long)offsetof(struct settings, processes), 0 },
	{ "TALLY_THREADS", (long)offsetof(struct settings, threads), 1 },
	{ "TALLY_DB_TIMEOUT_MS", (long)offsetof(struct settings, db_timeout_ms), 0 },
	{ "TALLY_DB_CONNECT_TIMEOUT",
	    (long)offsetof(struct settings, connect_timeout_s), 0 },
	{ "TALLY_RETRY_AFTER", (long)offsetof(struct settings, retry_after_s), 0 },
	{ "TALLY_IO_TIMEOUT", (long)offsetof(struct settings, io_timeout_s), 0 },
	{ "TALLY_BATCH_MAX", (long)offsetof(struct settings, batch_max), 0 },
	{ "TALLY_IDEMPOTENCY_RETENTION",
	    (long)offsetof(struct settings, idem_retention_s), 0 },
	{ "TALLY_IDEMPOTENCY_MAX_KEYS",
	    (long)offsetof(struct settings, idem_max_keys), 0 },
	{ "TALLY_WATCHDOG_TIMEOUT", (long)offsetof(struct settings, watchdog_s), 0 },
	{ "TALLY_TRUSTED_PROXIES", -1, 0 },
	{ "TALLY_RUN_DIR", -1, 0 },
};
#define NVARS	(sizeof(variables) / sizeof(variables[0]))

/* putenv keeps these very buffers in the environment: no copies pile up. */
static char	env_entries[NVARS][64 + VALUE_MAX];

static unsigned int
uint_at(const struct settings *s, long offset)
{
	return *(const unsigned int *)(const void *)((const char *)s +
	    offset);
}

/* A value every parser must read as this number: plain decimal digits. */
static int
plain_number(const char *v, unsigned long *out)
{
	char	*end;

	if (v == NULL || v[0] < '0' || v[0] > '9' || strlen(v) > 9)
		return 0;
	errno = 0;
	*out = strtoul(v, &end, 10);
	return errno == 0 && *end == '\0';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings	 s;
	const char	*values[NVARS];
	char		 err[160];
	char		*in = fuzz_string(data, size), *line = in;
	unsigned long	 n;
	size_t		 i;

	for (i = 0; i < NVARS; i++) {
		values[i] = line;
		if (line == NULL) {
			assert(unsetenv(variables[i].name) == 0);
			continue;
		}
		line = fuzz_next_line(line);
		snprintf(env_entries[i], sizeof(env_entries[i]), "%s=%.*s",
		    variables[i].name, VALUE_MAX, values[i]);
		assert(putenv(env_entries[i]) == 0);
	}
	if (settings_load(&s, err, sizeof(err)) == 0) {
		for (i = 0; i < NVARS; i++) {
			if (variables[i].offset < 0)
				continue;
			if (variables[i].zero_if_unset &&
			    (values[i] == NULL || values[i][0] == '\0'))
				assert(uint_at(&s, variables[i].offset) == 0);
			else
				assert(uint_at(&s, variables[i].offset) >= 1);
			if (plain_number(values[i], &n))
				assert(uint_at(&s, variables[i].offset) == n);
		}
		for (i = 0; i < s.trusted_proxies.len; i++)
			assert(s.trusted_proxies.items[i].prefix <= 128);
		assert(s.run_dir != NULL && s.run_dir[0] != '\0');
	} else
		assert(strncmp(err, "TALLY_", 6) == 0);
	settings_free(&s);
	free(in);
	return 0;
}
