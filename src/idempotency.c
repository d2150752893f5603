/* tally - idempotency: Idempotency-Key syntax and expiry of old keys. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "idempotency.h"
#include "log.h"

/*
 * Rows deleted per statement, and statements per round at most. A round
 * goes on until it finds fewer than a full batch (it has caught up); one
 * that ends at the bound is followed by the next at once. So removal
 * keeps up with any rate of new keys the database can delete, which is
 * far above the rate it can commit increments on the one counter row.
 */
#define EXPIRE_BATCH	"1000"
#define EXPIRE_ROUND_MAX 10000

static const struct db_statement stmt_expire = {
	"tally_expire_keys",
	"DELETE FROM tally_idempotency_keys WHERE key IN ("
	"SELECT key FROM tally_idempotency_keys "
	"WHERE created_at < now() - make_interval(secs => $1::integer) "
	"ORDER BY created_at LIMIT " EXPIRE_BATCH " FOR UPDATE SKIP LOCKED)",
	1, SSTMT_EXPIRE
};

static struct db	*expire_db;
static pthread_t	 expire_thread;
static pthread_mutex_t	 expire_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 expire_cond;
static int		 expire_running, expire_stopping;
static unsigned int	 retention_s, period_s;

int
idempotency_key_check(const char *key)
{
	size_t	i;

	for (i = 0; key[i] != '\0'; i++)
		if (i >= IDEMPOTENCY_KEY_MAX || key[i] < 0x20 || key[i] > 0x7e)
			return -1;
	return i > 0 ? 0 : -1;
}

static int
expire_stop_asked(void)
{
	return __atomic_load_n(&expire_stopping, __ATOMIC_ACQUIRE);
}

/*
 * One round: deletes expired keys, EXPIRE_BATCH at a time, so no
 * statement holds many rows locked while writers claim keys. Looks at
 * the stop flag before each statement. Returns 0 if more may be left
 * (the round reached its bound), 1 if it caught up, failed or stopped.
 */
static int
expire_round(void)
{
	PGresult	*res;
	char		 secs[16];
	const char	*params[1] = { secs };
	int		 i;
	long		 deleted;

	snprintf(secs, sizeof(secs), "%u", retention_s);
	for (i = 0; i < EXPIRE_ROUND_MAX; i++) {
		if (expire_stop_asked() ||
		    db_exec(expire_db, &stmt_expire, params, &res) != 0)
			return 1;
		deleted = strtol(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		if (deleted < strtol(EXPIRE_BATCH, NULL, 10))
			return 1;
	}
	return 0;
}

/* A round at once (a restarted process catches up), then one every
 * period_s, or at once again while a round ends with keys left. */
static void *
expire_loop(void *arg)
{
	struct timespec	deadline;
	int		done;

	(void)arg;
	pthread_mutex_lock(&expire_mu);
	while (!expire_stopping) {
		pthread_mutex_unlock(&expire_mu);
		done = expire_round();
		pthread_mutex_lock(&expire_mu);
		if (!done)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += (time_t)period_s;
		while (!expire_stopping && pthread_cond_timedwait(&expire_cond,
		    &expire_mu, &deadline) == 0)
			;
	}
	pthread_mutex_unlock(&expire_mu);
	return NULL;
}

int
idempotency_expiry_start(const struct settings *s)
{
	pthread_condattr_t	attr;

	retention_s = s->idem_retention_s;
	/* Look a few times per retention period, at least every minute. */
	period_s = retention_s / 4;
	if (period_s < 1)
		period_s = 1;
	if (period_s > 60)
		period_s = 60;
	if ((expire_db = db_new(s, "tally-write-expiry", &stmt_expire, 1))
	    == NULL)
		return -1;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&expire_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&expire_thread, NULL, expire_loop, NULL) != 0) {
		log_error("cannot start the key expiry thread", NULL);
		db_free(expire_db);
		expire_db = NULL;
		return -1;
	}
	expire_running = 1;
	return 0;
}

void
idempotency_expiry_stop(void)
{
	if (!expire_running)
		return;
	pthread_mutex_lock(&expire_mu);
	__atomic_store_n(&expire_stopping, 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&expire_cond);
	pthread_mutex_unlock(&expire_mu);
	pthread_join(expire_thread, NULL);
	pthread_cond_destroy(&expire_cond);
	db_free(expire_db);
	expire_db = NULL;
	expire_running = 0;
}
