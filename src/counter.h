/* tally - counter: the counter in PostgreSQL. Concurrent calls in one
 * process are combined (batch.h) into one statement on the process's one
 * connection, run by the process's database thread: k increments become
 * one durable UPDATE ... SET value = value + k ... RETURNING value, and
 * each caller gets its own value from (v-k, v]; reads waiting meanwhile
 * take v (the statement started after they arrived). Increments that
 * carry an Idempotency-Key, and every call on a named counter, go
 * through tally_count_named() (sql/008_named_counters.sql): one call for
 * the batch's counters, which counts a key once within the retention
 * period and replays its value on its own counter only. */
#ifndef TALLY_COUNTER_H
#define TALLY_COUNTER_H

#include "batch.h"
#include "log.h"
#include "settings.h"

enum counter_op {
	COUNTER_READ,
	COUNTER_INCREMENT
};

/* Why an increment was refused: it was not counted, and the database
 * answered (it is available). */
enum counter_refusal {
	COUNTER_NOT_REFUSED,
	COUNTER_AT_MAXIMUM,	/* the counter is at COUNTER_MAX: for good */
	COUNTER_KEYS_FULL,	/* a new Idempotency-Key, and as many as
				 * TALLY_IDEMPOTENCY_MAX_KEYS are held */
	COUNTER_ABSENT,		/* a read: no counter has this name */
	COUNTER_CAP,		/* a write would create a counter, and
				 * TALLY_MAX_COUNTERS named ones exist */
	COUNTER_KEY_ELSEWHERE	/* the Idempotency-Key counted on another
				 * counter */
};

/* The counter's largest value (a bigint in PostgreSQL). */
#define COUNTER_MAX	9223372036854775807LL

/* One call: the caller sets op, key, log and done; the database thread
 * sets ok, refused, replayed, created and value, then calls done. */
struct counter_call {
	enum counter_op	 op;
	/* The counter's name (checked: request.h), "" or NULL for the
	 * default counter. */
	const char	*name;
	const char	*key;		/* Idempotency-Key (checked), or NULL */
	/* The request's context, entered for the database's log lines
	 * (or NULL): it must live until done is called. */
	const struct log_ctx *log;
	void		(*done)(struct counter_call *c);
	int		 ok;		/* 0: refused, or the database is
					 * unavailable */
	enum counter_refusal refused;	/* with ok 0: why, if refused */
	int		 replayed;	/* a key seen before: nothing added */
	/* An increment that counted first on a named counter which held 0
	 * before its statement: the counter was created by it (or had
	 * been created without a count, which tally_count_named's answer
	 * does not tell apart). One call of a statement at most. */
	int		 created;
	long long	 value;
	struct batch_item item;		/* counter.c's */
};

/* The process's counter: its connection and its database thread. */
struct counter;

/* Prepares the connection (made on first use) and starts the database
 * thread. s must outlive the counter. Returns the counter, or NULL after
 * logging why. */
struct counter	*counter_open(const struct settings *s, const char *appname);
/* Finishes the calls still queued, stops the thread, frees cn (NULL is
 * a no-op). */
void		 counter_close(struct counter *cn);

/* For a responder whose handler's state is the counter: start opens it
 * (its name is the connection's application_name), stop closes it. */
void		*counter_responder_start(const struct settings *s,
		    const char *name);
void		 counter_responder_stop(void *ctx);

/* Queues c and returns at once; c->done(c) is called from the database
 * thread when its statement is over (c must live until then). When
 * c->ok is 0 and c->refused is set, the increment was not counted; with
 * c->refused COUNTER_NOT_REFUSED its outcome is unknown to the caller:
 * it counted only if its batch committed. Increments that would take the
 * counter past COUNTER_MAX are refused; those of the same batch that
 * fit below it are counted. So are those with a new key while
 * TALLY_IDEMPOTENCY_MAX_KEYS keys are held, those with a key that
 * counted on another counter, and the first write of a counter while
 * TALLY_MAX_COUNTERS named ones exist; a read of a counter that does not
 * exist is refused (COUNTER_ABSENT). */
void	counter_post(struct counter *cn, struct counter_call *c);

/* Reads the counter, waiting; what the database logs meanwhile names
 * log (or nothing, for NULL). Returns 0, or -1 if the database is
 * unavailable. */
int	counter_read(struct counter *cn, const struct log_ctx *log,
	    long long *value);

#endif
