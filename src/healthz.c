/* tally-healthz - GET /healthz (readiness: the database answers a read of
 * the counter) and GET /livez (liveness: this responder answers; the
 * database is not asked, so an outage does not restart healthy pods).
 * /healthz: 200 {"status":"ok","database":"ok"}, or 503
 * {"status":"unavailable","database":"unreachable"} with Retry-After.
 * /livez: 200 {"status":"ok"}. */
#include "config.h"

#include "counter.h"
#include "responder.h"
#include "response.h"

static struct json_object *
status_body(const char *status, const char *database)
{
	struct json_object	*body = json_object_new_object();

	json_object_object_add(body, "status", json_object_new_string(status));
	if (database != NULL)
		json_object_object_add(body, "database",
		    json_object_new_string(database));
	return body;
}

static void
healthz_handle(struct request *req, void *ctx)
{
	long long	value;

	if (req->route == ROUTE_LIVEZ) {
		response_json(req, 200, status_body("ok", NULL), NULL);
		return;
	}
	if (counter_read(ctx, responder_log(req), &value) == 0) {
		response_json(req, 200, status_body("ok", "ok"), NULL);
		return;
	}
	response_unavailable(req, status_body("unavailable", "unreachable"),
	    NULL);
}

static const struct responder healthz_responder = {
	RESPONDER_DECLARED(healthz),	/* src/responders.def */
	.start = counter_responder_start,
	.handle = healthz_handle,
	.stop = counter_responder_stop,
};

int
main(int argc, char **argv)
{
	return responder_main(&healthz_responder, argc, argv);
}
