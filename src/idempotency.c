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

/* The expiry thread of a tally-write process, on its own connection. */
struct expiry {
	const struct settings	*cfg;
	struct db		*db;
	pthread_t		 thread;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cond;		/* the stop flag was set */
	int			 stopping;	/* atomic */
	unsigned int		 period_s;
};

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
expire_stop_asked(struct expiry *ex)
{
	return __atomic_load_n(&ex->stopping, __ATOMIC_ACQUIRE);
}

/*
 * One round: deletes expired keys, EXPIRE_BATCH at a time, so no
 * statement holds many rows locked while writers claim keys. Looks at
 * the stop flag before each statement. Returns 0 if more may be left
 * (the round reached its bound), 1 if it caught up, failed or stopped.
 */
static int
expire_round(struct expiry *ex)
{
	PGresult	*res;
	char		 secs[16];
	const char	*params[1] = { secs };
	int		 i;
	long		 deleted;

	snprintf(secs, sizeof(secs), "%u", ex->cfg->idem_retention_s);
	for (i = 0; i < EXPIRE_ROUND_MAX; i++) {
		if (expire_stop_asked(ex) ||
		    db_exec(ex->db, &stmt_expire, params, &res) != 0)
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
	struct expiry	*ex = arg;
	struct timespec	 deadline;
	int		 done;

	pthread_mutex_lock(&ex->mu);
	while (!ex->stopping) {
		pthread_mutex_unlock(&ex->mu);
		done = expire_round(ex);
		pthread_mutex_lock(&ex->mu);
		if (!done)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += (time_t)ex->period_s;
		while (!ex->stopping && pthread_cond_timedwait(&ex->cond,
		    &ex->mu, &deadline) == 0)
			;
	}
	pthread_mutex_unlock(&ex->mu);
	return NULL;
}

unsigned int
idempotency_expiry_period_s(const struct settings *s)
{
	unsigned int	period_s = s->idem_retention_s / 4;

	if (period_s < 1)
		period_s = 1;
	return period_s > 60 ? 60 : period_s;
}

struct expiry *
idempotency_expiry_start(const struct settings *s)
{
	struct expiry		*ex;
	pthread_condattr_t	 attr;

	if ((ex = calloc(1, sizeof(*ex))) == NULL ||
	    (ex->db = db_new(s, "tally-write-expiry", &stmt_expire, 1)) ==
	    NULL) {
		log_error("out of memory", NULL);
		free(ex);
		return NULL;
	}
	ex->cfg = s;
	ex->period_s = idempotency_expiry_period_s(s);
	pthread_mutex_init(&ex->mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ex->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&ex->thread, NULL, expire_loop, ex) != 0) {
		log_error("cannot start the key expiry thread", NULL);
		pthread_cond_destroy(&ex->cond);
		pthread_mutex_destroy(&ex->mu);
		db_free(ex->db);
		free(ex);
		return NULL;
	}
	return ex;
}

void
idempotency_expiry_stop(struct expiry *ex)
{
	if (ex == NULL)
		return;
	pthread_mutex_lock(&ex->mu);
	__atomic_store_n(&ex->stopping, 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&ex->cond);
	pthread_mutex_unlock(&ex->mu);
	pthread_join(ex->thread, NULL);
	pthread_cond_destroy(&ex->cond);
	pthread_mutex_destroy(&ex->mu);
	db_free(ex->db);
	free(ex);
}
