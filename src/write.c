/* tally-write - POST /write: adds one to the counter, durably, and answers
 * this request's own new value: 200 {"counter":N}. POST /write/NAME does
 * the same on a named counter (request.h: REQUEST_NAME_RULE, else 400),
 * creating it at 0 first if no counter has the name: 409 if
 * TALLY_MAX_COUNTERS named ones exist (nothing created, nothing counted).
 * With "Idempotency-Key: K" (1-255 printable ASCII characters) the first
 * request with K counts; a later one within the retention period does not
 * and answers the same value with "Idempotent-Replayed: true". A key
 * belongs to the counter it counted on: sent to another, 422 (not
 * counted).
 * 400 for a malformed key; 409 when the counter is at its maximum
 * (COUNTER_MAX: it counts no more, for good); 503 with Retry-After for a
 * new key while TALLY_IDEMPOTENCY_MAX_KEYS keys are held (not counted;
 * Retry-After: the expiry thread's period), or when the database is
 * unavailable (the increment did not count, or its outcome is unknown if
 * the connection broke during the commit: retry with the same key).
 * The request is handed to the database thread, which answers it once its
 * batch committed; the accepting thread goes on to the next request. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "counter.h"
#include "idempotency.h"
#include "log.h"
#include "responder.h"
#include "response.h"
#include "util.h"
#include "stats.h"

/* A request waiting for its increment, in the request's scratch space. */
struct write_call {
	struct counter_call	 c;
	struct request		*req;
	const struct log_ctx	*outer;
};

_Static_assert(sizeof(struct write_call) <= RESPONDER_SCRATCH,
    "struct write_call fits the scratch space");

/* Retry-After of a new key refused while the store of keys is full:
 * room is made when the expiry thread next deletes expired keys. */
static unsigned int	keys_full_retry_s = 1;
/* TALLY_MAX_COUNTERS, for the 409 of a counter refused. */
static unsigned int	max_counters;

struct write_ctx {
	struct counter	*counter;
	struct expiry	*expiry;	/* of old Idempotency-Keys */
};

static void
write_stop(void *ctx)
{
	struct write_ctx	*w = ctx;

	idempotency_expiry_stop(w->expiry);
	counter_close(w->counter);
	free(w);
}

static void *
write_start(const struct settings *s, const char *name)
{
	struct write_ctx	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	keys_full_retry_s = idempotency_expiry_period_s(s);
	max_counters = s->max_counters;
	if ((w->counter = counter_open(s, name)) == NULL ||
	    (w->expiry = idempotency_expiry_start(s)) == NULL) {
		write_stop(w);
		return NULL;
	}
	return w;
}


/* Called by the database thread: answers and ends the request. */
static void
write_done(struct counter_call *c)
{
	struct write_call	*w;
	struct request		*req;
	const struct log_ctx	*outer;
	char			 msg[80];	/* or a header */

	w = container_of(c, struct write_call, c);
	req = w->req;
	outer = log_enter(c->log);
	if (c->refused == COUNTER_AT_MAXIMUM) {
		snprintf(msg, sizeof(msg), "the counter is at its maximum, "
		    "%lld: it counts no more", COUNTER_MAX);
		response_error(req, 409, msg, NULL);
	} else if (c->refused == COUNTER_KEYS_FULL) {
		snprintf(msg, sizeof(msg), "Retry-After: %u\r\n",
		    keys_full_retry_s);
		response_error(req, 503, "too many Idempotency-Keys are held: "
		    "this one was not counted; retry later with the same key",
		    msg);
	} else if (c->refused == COUNTER_CAP) {
		snprintf(msg, sizeof(msg), "%u named counters exist, the most "
		    "allowed: no other is created", max_counters);
		response_error(req, 409, msg, NULL);
	} else if (c->refused == COUNTER_KEY_ELSEWHERE)
		response_error(req, 422, "this Idempotency-Key counted on "
		    "another counter: not counted here; use a new key", NULL);
	else if (!c->ok)
		response_db_unavailable(req);
	else {
		if (c->replayed)
			stats_idempotent_replay();
		response_counter(req, c->value,
		    c->replayed ? "Idempotent-Replayed: true\r\n" : NULL);
	}
	log_leave(c->log, outer);
	responder_done(req);
}

static void
write_handle(struct request *req, void *ctx)
{
	struct write_ctx	*wc = ctx;
	struct write_call	*w;
	const char		*key;

	if (req->route == ROUTE_WRITE_NAMED &&
	    request_name_check(req->name) != 0) {
		response_error(req, 400, REQUEST_NAME_RULE, NULL);
		return;
	}
	key = request_param(req, "HTTP_IDEMPOTENCY_KEY");
	if (key != NULL && idempotency_key_check(key) != 0) {
		response_error(req, 400, "invalid Idempotency-Key: use 1 to "
		    "255 printable ASCII characters", NULL);
		return;
	}
	w = responder_scratch(req);
	w->req = req;
	w->c.op = COUNTER_INCREMENT;
	w->c.name = req->name;
	w->c.key = key;
	w->c.log = responder_log(req);
	w->c.done = write_done;
	responder_defer(req);
	counter_post(wc->counter, &w->c);	/* req is the database thread's from here */
}

static const struct responder write_responder = {
	RESPONDER_DECLARED(write),	/* src/responders.def */
	.start = write_start,
	.handle = write_handle,
	.stop = write_stop,
};

int
main(int argc, char **argv)
{
	return responder_main(&write_responder, argc, argv);
}
