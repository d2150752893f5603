/* tally-write - POST /write: adds one to the counter, durably, and answers
 * this request's own new value: 200 {"counter":N}. 503 with Retry-After
 * when the database is unavailable (the increment did not count, or its
 * outcome is unknown if the connection broke during the commit). */
#include "config.h"

#include "counter.h"
#include "responder.h"
#include "response.h"

static int
write_start(const struct settings *s)
{
	return counter_open(s, "tally-write");
}

static void
write_handle(struct request *req)
{
	struct json_object	*body;
	long long		 value;

	if (counter_increment(&value) != 0) {
		response_log(req, LOG_LEVEL_WARN,
		    "increment failed: database unavailable", NULL);
		response_db_unavailable(req);
		return;
	}
	body = json_object_new_object();
	json_object_object_add(body, "counter", json_object_new_int64(value));
	response_json(req, 200, body, NULL);
}

static const struct responder write_responder = {
	.name = "tally-write",
	.routes = ROUTE_BIT(ROUTE_WRITE),
	.methods = METHODS_WRITE,
	.allow = "POST",
	.start = write_start,
	.handle = write_handle,
	.stop = counter_close,
};

int
main(int argc, char **argv)
{
	return responder_main(&write_responder, argc, argv);
}
