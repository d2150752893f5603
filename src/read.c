/* tally-read - GET /read: the counter. 200 {"counter":N}; 503 with
 * Retry-After when the database is unavailable. */
#include "config.h"

#include "counter.h"
#include "responder.h"
#include "response.h"

static int
read_start(const struct settings *s)
{
	return counter_open(s, "tally-read");
}

static void
read_handle(struct request *req)
{
	struct json_object	*body;
	long long		 value;

	if (counter_read(&value) != 0) {
		response_db_unavailable(req);
		return;
	}
	body = json_object_new_object();
	json_object_object_add(body, "counter", json_object_new_int64(value));
	response_json(req, 200, body, NULL);
}

static const struct responder read_responder = {
	.name = "tally-read",
	.routes = ROUTE_BIT(ROUTE_READ),
	.methods = METHODS_READ,
	.allow = "GET, HEAD",
	.threads = 8,		/* waiting reads share one SELECT */
	.start = read_start,
	.handle = read_handle,
	.stop = counter_close,
};

int
main(int argc, char **argv)
{
	return responder_main(&read_responder, argc, argv);
}
