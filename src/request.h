/* tally - request: what a responder needs from one FastCGI request, read
 * and checked up front: method, route, peer, and the headers it uses. */
#ifndef TALLY_REQUEST_H
#define TALLY_REQUEST_H

#include <time.h>

#include <fcgiapp.h>

enum http_method {
	METHOD_GET,
	METHOD_HEAD,
	METHOD_POST,
	METHOD_OTHER,
	METHOD__COUNT
};

enum route {
	ROUTE_TIME,
	ROUTE_READ,
	ROUTE_WRITE,
	ROUTE_HEALTHZ,
	ROUTE_LIVEZ,
	ROUTE_METRICS,
	ROUTE_OTHER,
	ROUTE__COUNT
};

#define ROUTE_BIT(r)	(1u << (r))
/* Longest X-Request-Id kept for the logs; longer or odd ones are dropped. */
#define REQUEST_ID_MAX	128

struct request {
	FCGX_Request		*fcgx;
	enum http_method	 method;
	enum route		 route;
	const char		*remote_addr;	/* REMOTE_ADDR, or NULL */
	const char		*forwarded_for;	/* X-Forwarded-For, or NULL */
	const char		*request_id;	/* checked X-Request-Id, or NULL */
	struct timespec		 started;	/* CLOCK_MONOTONIC */
	int			 status;	/* set when the answer is sent */
};

/* Reads the request's parameters. Never fails: unknown methods and paths
 * become METHOD_OTHER and ROUTE_OTHER. */
void		 request_init(struct request *req, FCGX_Request *fcgx);

/* A request header by its CGI name ("HTTP_IDEMPOTENCY_KEY"), or NULL. */
const char	*request_param(const struct request *req, const char *name);

const char	*route_path(enum route r);
const char	*method_name(enum http_method m);

#endif
