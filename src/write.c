/* tally-write - POST /write: adds one to the counter, durably, and answers
 * this request's own new value: 200 {"counter":N}.
 * With "Idempotency-Key: K" (1-255 printable ASCII characters) the first
 * request with K counts; a later one within the retention period does not
 * and answers the same value with "Idempotent-Replayed: true".
 * 400 for a malformed key; 503 with Retry-After when the database is
 * unavailable (the increment did not count, or its outcome is unknown if
 * the connection broke during the commit: retry with the same key). */
#include "config.h"

#include "counter.h"
#include "idempotency.h"
#include "responder.h"
#include "response.h"
#include "stats.h"

static int
write_start(const struct settings *s)
{
	if (counter_open(s, "tally-write") != 0)
		return -1;
	return idempotency_expiry_start(s);
}

static void
write_stop(void)
{
	idempotency_expiry_stop();
	counter_close();
}

static void
write_handle(struct request *req)
{
	struct json_object	*body;
	const char		*key;
	long long		 value;
	int			 replayed;

	key = request_param(req, "HTTP_IDEMPOTENCY_KEY");
	if (key != NULL && idempotency_key_check(key) != 0) {
		response_error(req, 400, "invalid Idempotency-Key: use 1 to "
		    "255 printable ASCII characters", NULL);
		return;
	}
	if (counter_increment(key, &value, &replayed) != 0) {
		response_db_unavailable(req);
		return;
	}
	if (replayed)
		stats_idempotent_replay();
	body = json_object_new_object();
	json_object_object_add(body, "counter", json_object_new_int64(value));
	response_json(req, 200, body,
	    replayed ? "Idempotent-Replayed: true\r\n" : NULL);
}

static const struct responder write_responder = {
	.name = "tally-write",
	.routes = ROUTE_BIT(ROUTE_WRITE),
	.methods = METHODS_WRITE,
	.allow = "POST",
	.threads = 32,		/* waiting writes share one UPDATE */
	.start = write_start,
	.handle = write_handle,
	.stop = write_stop,
};

int
main(int argc, char **argv)
{
	return responder_main(&write_responder, argc, argv);
}
