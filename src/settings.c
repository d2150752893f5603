/* tally - settings: the responders' configuration from the environment. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settings.h"

struct uint_setting {
	const char	*name;
	size_t		 offset;
	unsigned int	 def, min, max;
};

static const struct uint_setting uint_settings[] = {
	{ "TALLY_PROCESSES", offsetof(struct settings, processes), 1, 1, 64 },
	/* 0 when unset: each responder has its own default (responder.h). */
	{ "TALLY_THREADS", offsetof(struct settings, threads), 0, 1, 1024 },
	{ "TALLY_DB_TIMEOUT_MS", offsetof(struct settings, db_timeout_ms),
	    2000, 10, 600000 },
	{ "TALLY_DB_CONNECT_TIMEOUT",
	    offsetof(struct settings, connect_timeout_s), 2, 1, 600 },
	{ "TALLY_RETRY_AFTER", offsetof(struct settings, retry_after_s),
	    1, 1, 3600 },
	{ "TALLY_IO_TIMEOUT", offsetof(struct settings, io_timeout_s),
	    10, 1, 3600 },
	{ "TALLY_BATCH_MAX", offsetof(struct settings, batch_max),
	    256, 1, 4096 },
	{ "TALLY_IDEMPOTENCY_RETENTION",
	    offsetof(struct settings, idem_retention_s), 86400, 1, 31536000 },
	{ "TALLY_IDEMPOTENCY_MAX_KEYS",
	    offsetof(struct settings, idem_max_keys), 10000000, 1, 2000000000 },
	{ "TALLY_WATCHDOG_TIMEOUT", offsetof(struct settings, watchdog_s),
	    8, 2, 3600 },
};

static int
parse_uint(const struct uint_setting *d, unsigned int *out, char *err,
    size_t errlen)
{
	const char		*v = getenv(d->name);
	char			*end;
	unsigned long		 n;

	if (v == NULL || *v == '\0') {
		*out = d->def;
		return 0;
	}
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno != 0 || *end != '\0' || v[0] == '-' || n < d->min ||
	    n > d->max) {
		snprintf(err, errlen, "%s must be a whole number from %u to "
		    "%u, not \"%.32s\"", d->name, d->min, d->max, v);
		return -1;
	}
	*out = (unsigned int)n;
	return 0;
}

/* TALLY_LOG_LEVEL (applied by log_init): unset, empty or one of four. */
static int
check_log_level(char *err, size_t errlen)
{
	static const char *const levels[] = { "debug", "info", "warn",
	    "error" };
	const char	*v = getenv("TALLY_LOG_LEVEL");
	size_t		 i;

	if (v == NULL || *v == '\0')
		return 0;
	for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(v, levels[i]) == 0)
			return 0;
	snprintf(err, errlen, "TALLY_LOG_LEVEL must be debug, info, warn or "
	    "error, not \"%.32s\"", v);
	return -1;
}

int
settings_load(struct settings *s, char *err, size_t errlen)
{
	char		 msg[160];
	const char	*v;
	size_t		 i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < sizeof(uint_settings) / sizeof(uint_settings[0]); i++)
		if (parse_uint(&uint_settings[i],
		    (unsigned int *)((char *)s + uint_settings[i].offset),
		    err, errlen) != 0)
			return -1;
	if (check_log_level(err, errlen) != 0)
		return -1;
	if (cidr_list_parse(getenv("TALLY_TRUSTED_PROXIES"),
	    &s->trusted_proxies, msg, sizeof(msg)) != 0) {
		snprintf(err, errlen, "TALLY_TRUSTED_PROXIES: %s", msg);
		return -1;
	}
	v = getenv("TALLY_RUN_DIR");
	s->run_dir = v != NULL && *v != '\0' ? v : "/run/tally";
	return 0;
}

void
settings_free(struct settings *s)
{
	cidr_list_free(&s->trusted_proxies);
}
