/* tally - settings: the responders' configuration from the environment. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "settings.h"

struct uint_setting {
	const char	*name;
	size_t		 offset;
	unsigned int	 def, min, max;
};

/* The whole numbers of src/settings.def. */
static const struct uint_setting uint_settings[] = {
#define SETTING(var, field, def, min, max, chart, meaning)		\
	{ #var, offsetof(struct settings, field), def, min, max },
#include "settings.def"
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

/* TALLY_LOG_LEVEL (applied by log_init): unset, empty or a level's name. */
static int
check_log_level(char *err, size_t errlen)
{
	const char	*v = getenv("TALLY_LOG_LEVEL");
	char		 names[64] = "";
	size_t		 i;

	if (v == NULL || *v == '\0' || log_level_parse(v) >= 0)
		return 0;
	for (i = 0; i < LOG_LEVEL__COUNT; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
		    "%s%s", i == 0 ? "" : i + 1 < LOG_LEVEL__COUNT ? ", " :
		    " or ", log_level_name((enum log_level)i));
	snprintf(err, errlen, "TALLY_LOG_LEVEL must be %s, not \"%.32s\"",
	    names, v);
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
