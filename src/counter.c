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
	STMT_COUNT_NAMED,
	STMT_FILL,
	STMT__COUNT
};

static const struct db_statement statements[STMT__COUNT] = {
	/* With the number of named counters, for the metrics. */
	[STMT_READ] = { "tally_read",
	    "SELECT value, counters FROM tally_counter WHERE id = 1", 0,
	    SSTMT_READ },
	/* No row when the k increments do not fit below the maximum. */
	[STMT_INCREMENT] = { "tally_increment",
	    "UPDATE tally_counter SET value = value + $1 WHERE id = 1 "
	    "AND value <= " COUNTER_MAX_DIGITS " - $1 RETURNING value", 1,
	    SSTMT_INCREMENT },
	[STMT_COUNT_NAMED] = { "tally_count_named",
	    "SELECT name, key, value, outcome, counted FROM tally_count_named("
	    "$1::text[], $2::bigint[], $3::text[], $4::text[], $5::integer, "
	    "$6::bigint, $7::bigint)", 7, SSTMT_INCREMENT_KEYED },
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

	if (PQntuples(res) == 1 && PQnfields(res) >= 1 &&
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

/* Hands one call of a committed batch its value, calls taken in batch
 * order: the first `*counted` unkeyed increments get *before+1 ..
 * *before+*counted (no sum here goes past COUNTER_MAX: the counter may
 * be at it), the others are refused (the counter is at its maximum);
 * reads get v. Keyed calls are already set. */
static void
assign_value(struct counter_call *c, long long *before, long long *counted,
    long long v)
{
	if (is_read(c)) {
		c->ok = 1;
		c->value = v;
	} else if (c->key != NULL)
		return;
	else if (*counted > 0) {
		c->ok = 1;
		c->value = ++*before;
		(*counted)--;
	} else
		c->refused = COUNTER_AT_MAXIMUM;
}

static void
assign_values(struct batch_item **items, size_t n, long long before,
    long long counted, long long v)
{
	size_t	i;

	for (i = 0; i < n; i++)
		assign_value(call_of(items[i]), &before, &counted, v);
}

/* The default counter's name is "". */
static const char *
name_of(const struct counter_call *c)
{
	return c->name != NULL ? c->name : "";
}

/* Calls in the order tally_count_named answers them: by counter name,
 * each counter's calls without a key first, then its keyed calls by key. */
static int
compare_calls(const void *a, const void *b)
{
	const struct counter_call	*x = *(struct counter_call *const *)a;
	const struct counter_call	*y = *(struct counter_call *const *)b;
	int				 d;

	if ((d = strcmp(name_of(x), name_of(y))) != 0)
		return d;
	if (x->key == NULL || y->key == NULL)
		return (x->key != NULL) - (y->key != NULL);
	return strcmp(x->key, y->key);
}

/* A PostgreSQL array literal being built: s has room for what is added
 * (sized by the caller), len its length. */
struct literal {
	char	*s;
	size_t	 len;
};

/* Appends text as a quoted element; '"' and '\' are escaped. Keys are
 * printable ASCII and names fewer still (request.h). */
static void
literal_add(struct literal *l, const char *text)
{
	const char	*p;

	if (l->len > 1)
		l->s[l->len++] = ',';
	l->s[l->len++] = '"';
	for (p = text; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			l->s[l->len++] = '\\';
		l->s[l->len++] = *p;
	}
	l->s[l->len++] = '"';
}

static int
literal_new(struct literal *l, size_t size)
{
	if ((l->s = malloc(size + 3)) == NULL)
		return -1;
	l->s[0] = '{';
	l->len = 1;
	return 0;
}

static const char *
literal_end(struct literal *l)
{
	l->s[l->len++] = '}';
	l->s[l->len] = '\0';
	return l->s;
}

/* One key's row of tally_count_named into c. Returns 1 if the key was
 * counted now, 0 if not, -1 if the row is odd. */
static int
read_keyed_row(PGresult *res, int row, struct counter_call *c)
{
	static const struct {
		const char		*outcome;
		enum counter_refusal	 refused;
	} refusals[] = {
		{ "maximum", COUNTER_AT_MAXIMUM },
		{ "full", COUNTER_KEYS_FULL },
		{ "other", COUNTER_KEY_ELSEWHERE },
		{ "cap", COUNTER_CAP },
	};
	const char	*outcome = PQgetvalue(res, row, 3);
	size_t		 i;

	if (strcmp(PQgetvalue(res, row, 0), name_of(c)) != 0 ||
	    strcmp(PQgetvalue(res, row, 1), c->key) != 0)
		return -1;
	for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		if (strcmp(outcome, refusals[i].outcome) == 0) {
			c->refused = refusals[i].refused;
			return 0;
		}
	if ((strcmp(outcome, "counted") != 0 &&
	    strcmp(outcome, "replayed") != 0) ||
	    parse_value(PQgetvalue(res, row, 2), &c->value) != 0)
		return -1;
	c->replayed = outcome[0] == 'r';
	c->ok = 1;
	return !c->replayed;
}

/*
 * One counter's rows (from *row on) into its calls calls[0..n-1]
 * (sorted: compare_calls): the counter's row, then one per distinct key.
 * The first call of a key takes the row's outcome; a second call with
 * the same key is a replay of the first (or refused like it). Returns 0
 * with *row past them, or -1 if they are odd.
 */
static int
read_counter_rows(PGresult *res, int *row, struct counter_call **calls,
    size_t n)
{
	struct counter_call	*c;
	const char		*outcome;
	long long		 v = 0, counted, fresh = 0, before;
	size_t			 i;
	int			 r = *row, got, absent, made;

	if (r >= PQntuples(res) ||
	    strcmp(PQgetvalue(res, r, 0), name_of(calls[0])) != 0 ||
	    !PQgetisnull(res, r, 1) ||
	    parse_value(PQgetvalue(res, r, 4), &counted) != 0)
		return -1;
	outcome = PQgetvalue(res, r, 3);
	absent = !PQgetisnull(res, r, 3);
	if (absent ? strcmp(outcome, "absent") != 0 &&
	    strcmp(outcome, "cap") != 0 :
	    parse_value(PQgetvalue(res, r, 2), &v) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		c = calls[i];
		if (c->key == NULL)
			continue;
		if (i > 0 && calls[i - 1]->key != NULL &&
		    strcmp(c->key, calls[i - 1]->key) == 0) {
			c->value = calls[i - 1]->value;
			c->replayed = calls[i - 1]->ok;
			c->ok = calls[i - 1]->ok;
			c->refused = calls[i - 1]->refused;
			continue;
		}
		if (++r >= PQntuples(res) ||
		    (got = read_keyed_row(res, r, c)) < 0)
			return -1;
		fresh += got;
	}
	*row = r + 1;
	if (absent) {
		for (i = 0; i < n; i++)
			if (calls[i]->key == NULL)
				calls[i]->refused = is_read(calls[i]) ||
				    outcome[0] == 'a' ? COUNTER_ABSENT :
				    COUNTER_CAP;
		return 0;
	}
	if (*name_of(calls[0]) == '\0')
		stats_counter_seen(v);
	before = v - fresh - counted;
	made = *name_of(calls[0]) != '\0' && before == 0 && v > 0;
	for (i = 0; i < n; i++)
		assign_value(calls[i], &before, &counted, v);
	for (i = 0; made && i < n; i++)
		if (calls[i]->ok && !calls[i]->replayed && !is_read(calls[i])) {
			calls[i]->created = 1;
			break;
		}
	return 0;
}

/* The literals of tally_count_named's arrays for the sorted calls:
 * names and adds (one per counter), keys and key_names (one per
 * distinct key of a counter). Returns 0, or -1 if out of memory. */
static int
named_literals(struct counter_call **calls, size_t n, struct literal *names,
    struct literal *adds, struct literal *keys, struct literal *knames)
{
	size_t		 i, j, size = 0, ksize = 0;
	long long	 unkeyed;
	char		 num[24];
	int		 m;

	for (i = 0; i < n; i++) {
		size += 2 * strlen(name_of(calls[i])) + 3;
		if (calls[i]->key != NULL)
			ksize += 2 * strlen(calls[i]->key) + 3;
	}
	if (literal_new(names, size) != 0 || literal_new(adds, n * 22) != 0 ||
	    literal_new(keys, ksize) != 0 || literal_new(knames, size) != 0)
		return -1;
	for (i = 0; i < n; i = j) {
		unkeyed = 0;
		for (j = i; j < n && strcmp(name_of(calls[j]),
		    name_of(calls[i])) == 0; j++) {
			if (calls[j]->key == NULL) {
				unkeyed += !is_read(calls[j]);
				continue;
			}
			if (j > i && calls[j - 1]->key != NULL &&
			    strcmp(calls[j]->key, calls[j - 1]->key) == 0)
				continue;
			literal_add(keys, calls[j]->key);
			literal_add(knames, name_of(calls[j]));
		}
		literal_add(names, name_of(calls[i]));
		m = snprintf(num, sizeof(num), "%lld", unkeyed);
		if (adds->len > 1)
			adds->s[adds->len++] = ',';
		memcpy(adds->s + adds->len, num, (size_t)m);
		adds->len += (size_t)m;
	}
	return 0;
}

/* A batch with keys or named counters: one call of tally_count_named. */
static int
run_named(struct counter *cn, struct batch_item **items, size_t n)
{
	struct counter_call	**calls = cn->keyed;
	struct literal		  lit[4] = { { NULL, 0 } };
	PGresult		 *res;
	const char		 *params[7];
	char			  rbuf[16], mbuf[16], cbuf[16];
	size_t			  i, j;
	int			  row = 0, rc = -1;

	for (i = 0; i < n; i++)
		calls[i] = call_of(items[i]);
	qsort(calls, n, sizeof(*calls), compare_calls);
	if (named_literals(calls, n, &lit[0], &lit[1], &lit[2], &lit[3]) != 0) {
		log_error("out of memory", NULL);
		goto out;
	}
	for (i = 0; i < 4; i++)
		params[i] = literal_end(&lit[i]);
	snprintf(rbuf, sizeof(rbuf), "%u", cn->cfg->idem_retention_s);
	snprintf(mbuf, sizeof(mbuf), "%u", cn->cfg->idem_max_keys);
	snprintf(cbuf, sizeof(cbuf), "%u", cn->cfg->max_counters);
	params[4] = rbuf;
	params[5] = mbuf;
	params[6] = cbuf;
	if (db_exec_meanwhile(cn->db, &statements[STMT_COUNT_NAMED],
	    params, &res, answer_previous, cn) != 0)
		goto out;
	rc = PQnfields(res) == 5 ? 0 : -1;
	for (i = 0; rc == 0 && i < n; i = j) {
		for (j = i; j < n && strcmp(name_of(calls[j]),
		    name_of(calls[i])) == 0; j++)
			;
		rc = read_counter_rows(res, &row, calls + i, j - i);
	}
	if (rc != 0 || row != PQntuples(res)) {
		log_error("database: tally_count_named answered oddly; "
		    "run tally-migrate", NULL);
		rc = -1;
	}
	PQclear(res);
out:
	for (i = 0; i < 4; i++)
		free(lit[i].s);
	return rc;
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
	if (k == 0 && PQntuples(res) == 1 && PQnfields(res) == 2 &&
	    parse_value(PQgetvalue(res, 0, 1), &v) == 0)
		stats_counters_seen(v);
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
	size_t			 i, named = 0;
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
		c->created = 0;
		if (c->key != NULL || *name_of(c) != '\0')
			named++;
		else if (!is_read(c))
			unkeyed++;
	}
	if ((named > 0 ? run_named(cn, items, n) :
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
	c->created = 0;
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
