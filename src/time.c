/* tally-time - GET /time: the server's UTC time, the client's address and
 * the proxy chain. 200 always (405 for other methods: see responder.c). */
#include "config.h"

#include <stdlib.h>
#include <time.h>

#include "clientip.h"
#include "responder.h"
#include "response.h"
#include "timestamp.h"

struct time_ctx {
	const struct cidr_list	*trusted;	/* TALLY_TRUSTED_PROXIES */
};

static void *
time_start(const struct settings *s, const char *name)
{
	struct time_ctx	*t;

	(void)name;
	if ((t = malloc(sizeof(*t))) != NULL)
		t->trusted = &s->trusted_proxies;
	return t;
}

static void
time_stop(void *ctx)
{
	free(ctx);
}

static void
time_handle(struct request *req, void *ctx)
{
	const struct time_ctx	*t = ctx;
	struct client_info	 ci;
	struct timespec		 now;
	struct json_object	*body, *chain;
	char			 ts[TIMESTAMP_LEN];
	size_t			 i;

	clock_gettime(CLOCK_REALTIME, &now);
	timestamp_format(&now, ts, sizeof(ts));
	clientip_resolve(t->trusted, req->remote_addr,
	    req->forwarded_for, &ci);
	chain = json_object_new_array_ext((int)ci.chain_len);
	for (i = 0; i < ci.chain_len; i++)
		json_object_array_add(chain,
		    json_object_new_string(ci.chain[i]));
	body = json_object_new_object();
	json_object_object_add(body, "timestamp", json_object_new_string(ts));
	json_object_object_add(body, "user_ip", ci.user_ip[0] != '\0' ?
	    json_object_new_string(ci.user_ip) : NULL);
	json_object_object_add(body, "proxy_chain", chain);
	if (ci.chain_truncated)
		json_object_object_add(body, "proxy_chain_truncated",
		    json_object_new_boolean(1));
	response_json(req, 200, body, NULL);
}

static const struct responder time_responder = {
	RESPONDER_DECLARED(time),	/* src/responders.def */
	.start = time_start,
	.handle = time_handle,
	.stop = time_stop,
};

int
main(int argc, char **argv)
{
	return responder_main(&time_responder, argc, argv);
}
