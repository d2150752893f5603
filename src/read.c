/* tally-read - GET /read: the counter, GET /read/NAME: a named counter
 * (request.h: REQUEST_NAME_RULE). 200 {"counter":N}; 400 for a name
 * outside the rule; 404 when no counter has the name (its first write
 * creates it); 503 with Retry-After when the database is unavailable.
 * GET /badge.svg and /badge/NAME.svg: the same value as an SVG badge
 * (badge.h), label and colour from the query (400 outside their rules),
 * with an ETag (If-None-Match: 304); a counter that does not exist gets
 * a badge saying so, with 404. The request is handed to
 * the database thread, which answers it with the value of the first
 * statement that started after the request arrived. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "badge.h"
#include "counter.h"
#include "log.h"
#include "responder.h"
#include "response.h"
#include "util.h"

#define BADGE_SUFFIX	".svg"
#define BADGE_TYPE	"image/svg+xml; charset=utf-8"
#define BADGE_PATH_RULE	"not found: a named counter's badge is " \
	"/badge/NAME.svg"
/* The largest badge: four copies of the longest label, escaped. */
#define BADGE_SIZE	4096
#define BADGE_ABSENT	"not found"
#define BADGE_ABSENT_COLOR "#9f9f9f"	/* lightgrey */

struct read_call {
	struct counter_call	 c;
	struct request		*req;
};

_Static_assert(sizeof(struct read_call) <= RESPONDER_SCRATCH,
    "struct read_call fits the scratch space");
_Static_assert(sizeof(BADGE_SUFFIX) - 1 <= REQUEST_NAME_SUFFIX_MAX,
    "the request's name has room for the longest name and the suffix");

static int
is_badge(const struct request *req)
{
	return req->route == ROUTE_BADGE || req->route == ROUTE_BADGE_NAMED;
}

/* Answers a badge request with the counter's value, or, absent, with
 * a badge saying so (404: the image still shows). */
static void
badge_answer(struct request *req, const struct counter_call *c)
{
	struct badge_params	 p;
	const char		*rule;
	char			 svg[BADGE_SIZE], value[32], hdr[64],
				 etag[BADGE_ETAG_SIZE];
	size_t			 len;
	int			 absent = c->refused == COUNTER_ABSENT;

	/* checked by read_handle: it parses again here */
	if (badge_params_parse(request_param(req, "QUERY_STRING"), &p,
	    &rule) != 0) {
		response_error(req, 400, rule, NULL);
		return;
	}
	if (absent)
		snprintf(value, sizeof(value), "%s", BADGE_ABSENT);
	else
		snprintf(value, sizeof(value), "%lld", c->value);
	if ((len = badge_render(svg, sizeof(svg), p.label, value,
	    absent ? BADGE_ABSENT_COLOR : p.color)) == 0) {
		response_error(req, 500, "the badge does not fit", NULL);
		return;
	}
	if (absent) {
		/* no validator: If-None-Match concerns only a 2xx answer */
		response_image(req, 404, BADGE_TYPE, svg, len, NULL);
		return;
	}
	badge_etag(svg, len, etag);
	snprintf(hdr, sizeof(hdr), "ETag: %s\r\n", etag);
	if (badge_etag_matches(request_param(req, "HTTP_IF_NONE_MATCH"), etag))
		response_not_modified(req, hdr);
	else
		response_image(req, 200, BADGE_TYPE, svg, len, hdr);
}

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
	if (!c->ok && c->refused != COUNTER_ABSENT)
		response_db_unavailable(req);
	else if (is_badge(req))
		badge_answer(req, c);
	else if (c->refused == COUNTER_ABSENT)
		response_error(req, 404, REQUEST_NAME_UNKNOWN, NULL);
	else
		response_counter(req, c->value, NULL);
	log_leave(c->log, outer);
	responder_done(req);
}

/* A badge's request: its query checked, its name's ".svg" taken off.
 * Returns 0, or -1 after answering. */
static int
badge_check(struct request *req)
{
	struct badge_params	 p;
	const char		*rule;
	size_t			 n = strlen(req->name),
				 suffix = sizeof(BADGE_SUFFIX) - 1;

	if (req->route == ROUTE_BADGE_NAMED) {
		if (n < suffix || strcmp(req->name + n - suffix,
		    BADGE_SUFFIX) != 0) {
			response_error(req, 404, BADGE_PATH_RULE, NULL);
			return -1;
		}
		req->name[n - suffix] = '\0';
	}
	if (badge_params_parse(request_param(req, "QUERY_STRING"), &p,
	    &rule) != 0) {
		response_error(req, 400, rule, NULL);
		return -1;
	}
	return 0;
}

static void
read_handle(struct request *req, void *ctx)
{
	struct read_call	*r = responder_scratch(req);

	if (is_badge(req) && badge_check(req) != 0)
		return;
	if ((req->route == ROUTE_READ_NAMED ||
	    req->route == ROUTE_BADGE_NAMED) &&
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
