/* tally - counter: the counter in PostgreSQL, with combined round trips. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "batch.h"
#include "counter.h"
#include "db.h"
#include "log.h"
#include "stats.h"

enum counter_op {
	OP_READ,
	OP_INCREMENT
};

struct counter_call {
	enum counter_op	op;
	int		ok;
	long long	value;
};

static const struct db_statement stmt_read = {
	"tally_read", "SELECT value FROM tally_counter WHERE id = 1", 0,
	SSTMT_READ
};
static const struct db_statement stmt_increment = {
	"tally_increment",
	"UPDATE tally_counter SET value = value + $1 WHERE id = 1 "
	"RETURNING value", 1, SSTMT_INCREMENT
};
static const struct db_statement statements[] = {
	stmt_read, stmt_increment
};

static struct db	*db;
static struct batch	 batch;

/* One row, one bigint column: returns 0 with *out set, or -1. */
static int
single_value(PGresult *res, long long *out)
{
	char	*end;
	int	 rc = -1;

	if (PQntuples(res) == 1 && PQnfields(res) == 1 &&
	    !PQgetisnull(res, 0, 0)) {
		*out = strtoll(PQgetvalue(res, 0, 0), &end, 10);
		rc = *end == '\0' ? 0 : -1;
	}
	if (rc != 0)
		log_error("database: the counter row is missing or odd; "
		    "run tally-migrate", NULL);
	PQclear(res);
	return rc;
}

/*
 * Runs one batch: all increments as one UPDATE adding k, whose new value v
 * hands the callers v-k+1 ... v in queue order. Reads in the same batch
 * take v too: they overlap the increments, so either order is correct.
 * With no increment, one SELECT serves every read.
 */
static void
run_batch(void *ctx, struct batch_item **items, size_t n)
{
	struct counter_call	*c;
	PGresult		*res;
	const char		*params[1];
	char			 kbuf[24];
	long long		 v = 0, k = 0, next;
	size_t			 i;
	int			 ok;

	(void)ctx;
	for (i = 0; i < n; i++)
		if (((struct counter_call *)items[i]->arg)->op == OP_INCREMENT)
			k++;
	if (k > 0) {
		snprintf(kbuf, sizeof(kbuf), "%lld", k);
		params[0] = kbuf;
		ok = db_exec(db, &stmt_increment, params, &res) == 0 &&
		    single_value(res, &v) == 0;
	} else
		ok = db_exec(db, &stmt_read, NULL, &res) == 0 &&
		    single_value(res, &v) == 0;
	if (ok)
		stats_counter_seen(v);
	next = v - k + 1;
	for (i = 0; i < n; i++) {
		c = items[i]->arg;
		c->ok = ok;
		if (ok)
			c->value = c->op == OP_INCREMENT ? next++ : v;
	}
}

int
counter_open(const struct settings *s, const char *appname)
{
	db = db_new(s, appname, statements,
	    sizeof(statements) / sizeof(statements[0]));
	if (db == NULL || batch_init(&batch, s->batch_max, run_batch, NULL)) {
		log_error("out of memory", NULL);
		return -1;
	}
	return 0;
}

void
counter_close(void)
{
	batch_destroy(&batch);
	db_free(db);
	db = NULL;
}

static int
counter_call(enum counter_op op, long long *value)
{
	struct counter_call	c = { op, 0, 0 };

	batch_submit(&batch, &c);
	if (!c.ok)
		return -1;
	*value = c.value;
	return 0;
}

int
counter_read(long long *value)
{
	return counter_call(OP_READ, value);
}

int
counter_increment(long long *value)
{
	return counter_call(OP_INCREMENT, value);
}
