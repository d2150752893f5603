/* tally - counter: the counter in PostgreSQL, with combined round trips. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "counter.h"
#include "db.h"
#include "log.h"
#include "stats.h"
#include "turn.h"

/* COUNTER_MAX in the statements' text. */
#define COUNTER_MAX_DIGITS	"9223372036854775807"

_Static_assert(COUNTER_MAX == INT64_MAX, "COUNTER_MAX is a bigint's largest");

/* The connection's statements; each names its metric (stats.h). */
enum {
	STMT_READ,
	STMT_INCREMENT,
	STMT_INCREMENT_KEYED,
	STMT_FILL,
	STMT__COUNT
};

static const struct db_statement statements[STMT__COUNT] = {
	[STMT_READ] = { "tally_read",
	    "SELECT value FROM tally_counter WHERE id = 1", 0, SSTMT_READ },
	/* No row when the k increments do not fit below the maximum. */
	[STMT_INCREMENT] = { "tally_increment",
	    "UPDATE tally_counter SET value = value + $1 WHERE id = 1 "
	    "AND value <= " COUNTER_MAX_DIGITS " - $1 RETURNING value", 1,
	    SSTMT_INCREMENT },
	[STMT_INCREMENT_KEYED] = { "tally_count_keyed",
	    "SELECT key, value, outcome, counted FROM tally_count_keyed("
	    "$1::bigint, $2::text[], $3::integer, $4::bigint)",
	    4, SSTMT_INCREMENT_KEYED },
	/* Then: adds what fits of k; answers the new value and the old. */
	[STMT_FILL] = { "tally_increment_fill",
	    "WITH old AS (SELECT value FROM tally_counter WHERE id = 1 "
	    "FOR UPDATE) UPDATE tally_counter AS t SET value = t.value + "
	    "least($1::bigint, " COUNTER_MAX_DIGITS " - t.value) FROM old "
	    "WHERE t.id = 1 RETURNING t.value, old.value", 1,
	    SSTMT_INCREMENT },
};

/* One per process: its connection, and the batch its thread runs. */
struct counter {
	const struct settings	 *cfg;
	struct db		 *db;
	struct batch		  batch;
	struct counter_call	**keyed;	/* batch_max long */
};

/* A bigint's text: returns 0 with *out set, or -1 if text is not one
 * (empty, trailing characters, or out of range). */
static int
parse_value(const char *text, long long *out)
{
	char	*end;

	errno = 0;
	*out = strtoll(text, &end, 10);
	return *text != '\0' && *end == '\0' && errno == 0 ? 0 : -1;
}

/* One row, one bigint column: returns 0 with *out set, or -1. */
static int
single_value(PGresult *res, long long *out)
{
	int	rc = -1;

	if (PQntuples(res) == 1 && PQnfields(res) == 1 &&
	    !PQgetisnull(res, 0, 0))
		rc = parse_value(PQgetvalue(res, 0, 0), out);
	if (rc != 0)
		log_error("database: the counter row is missing or odd; "
		    "run tally-migrate", NULL);
	PQclear(res);
	return rc;
}

/* Completes the previous batch's calls (their answers are written) while
 * this batch waits for its turn or its statement. Each answer enters its
 * request's log context and leaves it for this batch's (log.h). */
static void
answer_previous(void *arg)
{
	struct counter	*cn = arg;

	batch_complete_previous(&cn->batch);
}

static struct counter_call *
call_of(struct batch_item *item)
{
	return item->arg;
}

static int
is_read(const struct counter_call *c)
{
	return c->op == COUNTER_READ;
}

/* Hands out the values of a committed batch: the first `counted`
 * unkeyed increments get before+1 .. before+counted (no sum here goes
 * past COUNTER_MAX: the counter may be at it), the others are refused
 * (the counter is at its maximum); reads get v. Keyed calls are already
 * set. */
static void
assign_values(struct batch_item **items, size_t n, long long before,
    long long counted, long long v)
{
	struct counter_call	*c;
	size_t			 i;

	for (i = 0; i < n; i++) {
		c = call_of(items[i]);
		if (is_read(c)) {
			c->ok = 1;
			c->value = v;
		} else if (c->key != NULL)
			continue;
		else if (counted > 0) {
			c->ok = 1;
			c->value = ++before;
			counted--;
		} else
			c->refused = COUNTER_AT_MAXIMUM;
	}
}

static int
compare_keys(const void *a, const void *b)
{
	return strcmp((*(struct counter_call *const *)a)->key,
	    (*(struct counter_call *const *)b)->key);
}

/* The distinct keys, sorted, as a PostgreSQL text[] literal. Keys are
 * printable ASCII; '"' and '\' are escaped. Returns NULL if out of memory. */
static char *
keys_literal(struct counter_call **calls, size_t n)
{
	size_t		 i, size = 3, len = 0;
	const char	*p;
	char		*s;

	for (i = 0; i < n; i++)
		size += 2 * strlen(calls[i]->key) + 3;
	if ((s = malloc(size)) == NULL)
		return NULL;
	s[len++] = '{';
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(calls[i]->key, calls[i - 1]->key) == 0)
			continue;
		if (len > 1)
			s[len++] = ',';
		s[len++] = '"';
		for (p = calls[i]->key; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				s[len++] = '\\';
			s[len++] = *p;
		}
		s[len++] = '"';
	}
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

/* One key's row of tally_count_keyed into c. Returns 1 if the key was
 * counted now, 0 if not, -1 if the row is odd. */
static int
read_keyed_row(PGresult *res, int row, struct counter_call *c)
{
	const char	*outcome = PQgetvalue(res, row, 2);

	if (strcmp(PQgetvalue(res, row, 0), c->key) != 0)
		return -1;
	if (strcmp(outcome, "maximum") == 0 || strcmp(outcome, "full") == 0) {
		c->refused = outcome[0] == 'm' ? COUNTER_AT_MAXIMUM :
		    COUNTER_KEYS_FULL;
		return 0;
	}
	if ((strcmp(outcome, "counted") != 0 &&
	    strcmp(outcome, "replayed") != 0) ||
	    parse_value(PQgetvalue(res, row, 1), &c->value) != 0)
		return -1;
	c->replayed = outcome[0] == 'r';
	c->ok = 1;
	return !c->replayed;
}

/*
 * Reads tally_count_keyed's rows into the keyed calls (sorted by key, so
 * rows and calls go in the same order). The first call of a key takes
 * the row's outcome; a second call with the same key in the batch is a
 * replay of the first (or refused like it). Returns the number of keys
 * counted now, or -1.
 */
static long long
read_keyed_rows(PGresult *res, struct counter_call **calls, size_t n)
{
	long long	 fresh = 0;
	size_t		 i;
	int		 row = 0, counted;

	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(calls[i]->key, calls[i - 1]->key) == 0) {
			calls[i]->value = calls[i - 1]->value;
			calls[i]->replayed = calls[i - 1]->ok;
			calls[i]->ok = calls[i - 1]->ok;
			calls[i]->refused = calls[i - 1]->refused;
			continue;
		}
		row++;
		if (row >= PQntuples(res) ||
		    (counted = read_keyed_row(res, row, calls[i])) < 0)
			return -1;
		fresh += counted;
	}
	return row + 1 == PQntuples(res) ? fresh : -1;
}

/* A batch with keyed increments: one call of tally_count_keyed. */
static int
run_keyed(struct counter *cn, struct batch_item **items, size_t n,
    long long unkeyed)
{
	struct counter_call	**keyed = cn->keyed;
	PGresult		 *res;
	const char		 *params[4];
	char			  kbuf[24], rbuf[16], mbuf[16], *lit;
	long long		  v, fresh, counted;
	size_t			  i, nkeyed = 0;

	for (i = 0; i < n; i++)
		if (call_of(items[i])->key != NULL)
			keyed[nkeyed++] = call_of(items[i]);
	qsort(keyed, nkeyed, sizeof(*keyed), compare_keys);
	if ((lit = keys_literal(keyed, nkeyed)) == NULL)
		return -1;
	snprintf(kbuf, sizeof(kbuf), "%lld", unkeyed);
	snprintf(rbuf, sizeof(rbuf), "%u", cn->cfg->idem_retention_s);
	params[0] = kbuf;
	params[1] = lit;
	params[2] = rbuf;
	snprintf(mbuf, sizeof(mbuf), "%u", cn->cfg->idem_max_keys);
	params[3] = mbuf;
	if (db_exec_meanwhile(cn->db, &statements[STMT_INCREMENT_KEYED],
	    params, &res, answer_previous, cn) != 0) {
		free(lit);
		return -1;
	}
	free(lit);
	if (PQntuples(res) < 1 || PQnfields(res) != 4 ||
	    parse_value(PQgetvalue(res, 0, 1), &v) != 0 ||
	    parse_value(PQgetvalue(res, 0, 3), &counted) != 0 ||
	    counted < 0 || counted > unkeyed ||
	    (fresh = read_keyed_rows(res, keyed, nkeyed)) < 0) {
		log_error("database: tally_count_keyed answered oddly; "
		    "run tally-migrate", NULL);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	stats_counter_seen(v);
	assign_values(items, n, v - fresh - counted, counted, v);
	return 0;
}

/* When the k increments do not fit below the maximum: adds what fits.
 * Returns 0 with the new value in *v and how many counted in *counted,
 * or -1. */
static int
run_fill(struct counter *cn, const char *const *params, long long k,
    long long *v, long long *counted)
{
	PGresult	*res;
	long long	 old;
	int		 rc = -1;

	if (db_exec(cn->db, &statements[STMT_FILL], params, &res) != 0)
		return -1;
	if (PQntuples(res) == 1 && PQnfields(res) == 2 &&
	    parse_value(PQgetvalue(res, 0, 0), v) == 0 &&
	    parse_value(PQgetvalue(res, 0, 1), &old) == 0 &&
	    *v >= old && *v - old <= k) {
		*counted = *v - old;
		rc = 0;
	} else
		log_error("database: the counter row is missing or odd; "
		    "run tally-migrate", NULL);
	PQclear(res);
	return rc;
}

/* A batch without keys: one UPDATE adding k, or one SELECT if k is 0.
 * Near the maximum, the UPDATE finds no row to change, and a second one
 * adds what fits. */
static int
run_plain(struct counter *cn, struct batch_item **items, size_t n,
    long long k)
{
	PGresult	*res;
	const char	*params[1];
	char		 kbuf[24];
	long long	 v, counted = k;

	snprintf(kbuf, sizeof(kbuf), "%lld", k);
	params[0] = kbuf;
	if (db_exec_meanwhile(cn->db,
	    &statements[k > 0 ? STMT_INCREMENT : STMT_READ],
	    k > 0 ? params : NULL, &res, answer_previous, cn) != 0)
		return -1;
	if (k > 0 && PQntuples(res) == 0) {
		PQclear(res);
		if (run_fill(cn, params, k, &v, &counted) != 0)
			return -1;
	} else if (single_value(res, &v) != 0)
		return -1;
	stats_counter_seen(v);
	assign_values(items, n, v - counted, counted, v);
	return 0;
}

/*
 * Runs one batch as one statement. With a connection ready, it first
 * waits for its turn among the responder's processes (turn.h), then takes
 * every call that queued meanwhile, and gives the turn back as soon as
 * the statement is over, before the answers are written. While it waits,
 * for the turn or for the statement, the previous batch's answers are
 * written. Reads in a batch with increments take the value after them:
 * they overlap the increments, so either order is correct. If the
 * statement fails, every call of the batch fails. Returns the number of
 * calls run.
 */
static size_t
run_batch(void *ctx, struct batch_item **items, size_t n)
{
	struct counter		*cn = ctx;
	struct counter_call	*c;
	/* Database errors logged now name the first request (items[0]
	 * lives until the batch's calls are completed, after this). */
	const struct log_ctx	*log = call_of(items[0])->log;
	const struct log_ctx	*outer = log_enter(log);
	long long		 unkeyed = 0;
	size_t			 i, nkeyed = 0;
	int			 turn;

	/* Only with several workers: one alone has nobody to wait for,
	 * and its statement checks the connection anyway. */
	turn = turn_active() && db_ready(cn->db) == 0 &&
	    turn_take(db_wait_bound_ms(cn->db), answer_previous, cn) == 0;
	n = batch_more(&cn->batch, items, n);
	for (i = 0; i < n; i++) {
		c = call_of(items[i]);
		c->ok = 0;
		c->refused = COUNTER_NOT_REFUSED;
		c->replayed = 0;
		if (!is_read(c)) {
			if (c->key != NULL)
				nkeyed++;
			else
				unkeyed++;
		}
	}
	if ((nkeyed > 0 ? run_keyed(cn, items, n, unkeyed) :
	    run_plain(cn, items, n, unkeyed)) != 0)
		for (i = 0; i < n; i++) {
			call_of(items[i])->ok = 0;
			call_of(items[i])->refused = COUNTER_NOT_REFUSED;
		}
	if (turn)
		turn_give();
	log_leave(log, outer);
	return n;
}

void
counter_close(struct counter *cn)
{
	if (cn == NULL)
		return;
	batch_destroy(&cn->batch);
	db_free(cn->db);
	free(cn->keyed);
	free(cn);
}

struct counter *
counter_open(const struct settings *s, const char *appname)
{
	struct counter	*cn;

	if ((cn = calloc(1, sizeof(*cn))) == NULL ||
	    (cn->keyed = calloc(s->batch_max, sizeof(*cn->keyed))) == NULL ||
	    (cn->db = db_new(s, appname, statements,
	    sizeof(statements) / sizeof(statements[0]))) == NULL) {
		log_error("out of memory", NULL);
		goto fail;
	}
	cn->cfg = s;
	if (batch_init(&cn->batch, s->batch_max, run_batch, cn) != 0) {
		log_error("cannot start the database thread", NULL);
		goto fail;
	}
	return cn;
fail:
	counter_close(cn);	/* the batch is not started: left alone */
	return NULL;
}

void *
counter_responder_start(const struct settings *s, const char *name)
{
	return counter_open(s, name);
}

void
counter_responder_stop(void *ctx)
{
	counter_close(ctx);
}

static void
call_done(struct batch_item *item)
{
	struct counter_call	*c = call_of(item);

	c->done(c);
}

void
counter_post(struct counter *cn, struct counter_call *c)
{
	c->ok = 0;
	c->refused = COUNTER_NOT_REFUSED;
	c->replayed = 0;
	c->item.arg = c;
	c->item.done = call_done;
	batch_post(&cn->batch, &c->item);
}

/* Runs c in a batch, waiting: returns 0, or -1 if it failed. */
static int
counter_submit(struct counter *cn, struct counter_call *c)
{
	batch_submit(&cn->batch, c);
	return c->ok ? 0 : -1;
}

int
counter_read(struct counter *cn, const struct log_ctx *log, long long *value)
{
	struct counter_call	c;

	memset(&c, 0, sizeof(c));
	c.op = COUNTER_READ;
	c.log = log;
	if (counter_submit(cn, &c) != 0)
		return -1;
	*value = c.value;
	return 0;
}
