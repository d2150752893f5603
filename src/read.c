/* tally-read - GET /read: the counter, GET /read/NAME: a named counter
 * (request.h: REQUEST_NAME_RULE). 200 {"counter":N}; 400 for a name
 * outside the rule; 404 when no counter has the name (its first write
 * creates it); 503 with Retry-After when the database is unavailable.
 * The request is handed to
 * the database thread, which answers it with the value of the first
 * statement that started after the request arrived. */
#include "config.h"

#include <stddef.h>

#include "counter.h"
#include "log.h"
#include "responder.h"
#include "response.h"
#include "util.h"

struct read_call {
	struct counter_call	 c;
	struct request		*req;
	const struct log_ctx	*outer;
};

_Static_assert(sizeof(struct read_call) <= RESPONDER_SCRATCH,
    "struct read_call fits the scratch space");

/* Called by the database thread: answers and ends the request. */
static void
read_done(struct counter_call *c)
{
	struct read_call	*r;
	struct request		*req;
	const struct log_ctx	*outer;

	r = container_of(c, struct read_call, c);
	req = r->req;
	outer = log_enter(c->log);
	if (c->refused == COUNTER_ABSENT)
		response_error(req, 404, "no counter has this name: its first "
		    "write creates it", NULL);
	else if (!c->ok)
		response_db_unavailable(req);
	else
		response_counter(req, c->value, NULL);
	log_leave(c->log, outer);
	responder_done(req);
}

static void
read_handle(struct request *req, void *ctx)
{
	struct read_call	*r = responder_scratch(req);

	if (req->route == ROUTE_READ_NAMED &&
	    request_name_check(req->name) != 0) {
		response_error(req, 400, REQUEST_NAME_RULE, NULL);
		return;
	}
	r->req = req;
	r->c.op = COUNTER_READ;
	r->c.name = req->name;
	r->c.key = NULL;
	r->c.log = responder_log(req);
	r->c.done = read_done;
	responder_defer(req);
	counter_post(ctx, &r->c);	/* req is the database thread's from here */
}

static const struct responder read_responder = {
	RESPONDER_DECLARED(read),	/* src/responders.def */
	.start = counter_responder_start,
	.handle = read_handle,
	.stop = counter_responder_stop,
};

int
main(int argc, char **argv)
{
	return responder_main(&read_responder, argc, argv);
}
