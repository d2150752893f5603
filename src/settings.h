/* tally - settings: the responders' configuration, read once from the
 * environment at start-up and checked before any request is served.
 * Database settings are not here: libpq reads DATABASE_URL's string and
 * the standard PG* variables itself (see db.c). */
#ifndef TALLY_SETTINGS_H
#define TALLY_SETTINGS_H

#include <stddef.h>

#include "clientip.h"

struct settings {
	struct cidr_list trusted_proxies;	/* TALLY_TRUSTED_PROXIES */
	unsigned int	 processes;		/* TALLY_PROCESSES */
	unsigned int	 threads;		/* TALLY_THREADS, or 0 */
	unsigned int	 db_timeout_ms;		/* TALLY_DB_TIMEOUT_MS */
	unsigned int	 connect_timeout_s;	/* TALLY_DB_CONNECT_TIMEOUT */
	unsigned int	 retry_after_s;		/* TALLY_RETRY_AFTER */
	unsigned int	 io_timeout_s;		/* TALLY_IO_TIMEOUT */
	unsigned int	 batch_max;		/* TALLY_BATCH_MAX */
	unsigned int	 idem_retention_s;	/* TALLY_IDEMPOTENCY_RETENTION */
	unsigned int	 idem_max_keys;		/* TALLY_IDEMPOTENCY_MAX_KEYS */
	unsigned int	 max_counters;		/* TALLY_MAX_COUNTERS */
	unsigned int	 watchdog_s;		/* TALLY_WATCHDOG_TIMEOUT */
	unsigned int	 rl_writes;		/* TALLY_RATE_LIMIT_WRITES */
	unsigned int	 rl_writes_burst;	/* ..._WRITES_BURST */
	unsigned int	 rl_keys;		/* TALLY_RATE_LIMIT_KEYS */
	unsigned int	 rl_keys_burst;		/* ..._KEYS_BURST */
	unsigned int	 rl_creates;		/* TALLY_RATE_LIMIT_CREATES */
	unsigned int	 rl_creates_burst;	/* ..._CREATES_BURST */
	unsigned int	 rl_clients;		/* TALLY_RATE_LIMIT_CLIENTS */
	unsigned int	 stream_rate;		/* TALLY_STREAM_RATE */
	unsigned int	 stream_heartbeat_s;	/* TALLY_STREAM_HEARTBEAT */
	unsigned int	 stream_max;		/* TALLY_STREAM_MAX */
	unsigned int	 stream_per_client;	/* TALLY_STREAM_PER_CLIENT */
	const char	*run_dir;		/* TALLY_RUN_DIR */
};

/* Fills s from the environment, with defaults for what is unset.
 * Returns 0, or -1 with a message naming the variable in err. */
int	settings_load(struct settings *s, char *err, size_t errlen);
void	settings_free(struct settings *s);

#endif
