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
	METHOD_PUT,
	METHOD_DELETE,
	METHOD_OTHER,
	METHOD__COUNT
};

/* The paths of src/responders.def, then every other. */
enum route {
#define ROUTE(e, path, match, responder, listener)	ROUTE_##e,
#include "responders.def"
	ROUTE_OTHER,
	ROUTE__COUNT
};

#define METHOD_BIT(m)	(1u << (m))

/*
 * A counter's name (the rest of a NAMED route's path, "/read/NAME"): an
 * optional namespace and a key separated by one '/', each 1 to
 * REQUEST_NAME_SEGMENT_MAX characters of [A-Za-z0-9._-], neither "." nor
 * "..". The empty name is the default counter's ("/read"), never written
 * after a NAMED route's path.
 */
#define REQUEST_NAME_SEGMENT_MAX	64
#define REQUEST_NAME_MAX	(2 * REQUEST_NAME_SEGMENT_MAX + 1)
/* The longest suffix a NAMED route's path has after the name (".svg"). */
#define REQUEST_NAME_SUFFIX_MAX	4
#define REQUEST_NAME_RULE						\
	"a counter's name is a key or a namespace and a key, separated by "	\
	"one '/' (/read/visits, /read/example.com/visits): each 1 to 64 of "	\
	"A-Z a-z 0-9 . _ - and neither '.' nor '..'"
/* The 404 of a name no counter has (/read/NAME, /stream/NAME). */
#define REQUEST_NAME_UNKNOWN						\
	"no counter has this name: its first write creates it"
/* Longest X-Request-Id kept for the logs; longer or odd ones are dropped. */
#define REQUEST_ID_MAX	128
/* The hex digits of a W3C traceparent's trace-id and parent-id. */
#define TRACE_ID_LEN	32
#define SPAN_ID_LEN	16

struct request {
	FCGX_Request		*fcgx;
	enum http_method	 method;
	enum route		 route;
	const char		*remote_addr;	/* REMOTE_ADDR, or NULL */
	const char		*forwarded_for;	/* X-Forwarded-For, or NULL */
	const char		*request_id;	/* checked X-Request-Id, or NULL */
	/* From a valid traceparent header; both "" without one. */
	char			 trace_id[TRACE_ID_LEN + 1];
	char			 span_id[SPAN_ID_LEN + 1];
	struct timespec		 started;	/* CLOCK_MONOTONIC */
	/* A NAMED route's counter name as sent, with what follows it
	 * (the ".svg" of /badge/NAME.svg): unchecked; longer ones are cut
	 * to REQUEST_NAME_MAX + REQUEST_NAME_SUFFIX_MAX + 1 characters,
	 * which the check refuses. "" on the other routes. */
	char			 name[REQUEST_NAME_MAX +
				    REQUEST_NAME_SUFFIX_MAX + 2];
	int			 status;	/* set when the answer is sent */
};

/* Reads the request's parameters. Never fails: unknown methods and paths
 * become METHOD_OTHER and ROUTE_OTHER. */
void		 request_init(struct request *req, FCGX_Request *fcgx);

/* Parses a W3C Trace Context traceparent header ("00-<32 hex>-<16 hex>-
 * <2 hex>", lower-case hex, ids not all zero, version not ff; a later
 * version may append "-..."). Returns 0 and copies the trace-id and the
 * parent-id (the caller's span), or -1 and leaves both "". */
int		 traceparent_parse(const char *s,
		    char trace_id[TRACE_ID_LEN + 1],
		    char span_id[SPAN_ID_LEN + 1]);

/*
 * The first request header that lighttpd passed twice under one CGI name
 * ("HTTP_X_FORWARDED_FOR=..."), or NULL. lighttpd joins the lines of one
 * header name (in any case) into one parameter, but maps every byte of a
 * name other than a letter or digit to '_': "X_Forwarded_For" and
 * "X.Forwarded.For" arrive as HTTP_X_FORWARDED_FOR too, each its own
 * parameter, and request_param would answer whichever came first. envp
 * is the FastCGI parameters, "NAME=value", NULL-terminated (or NULL).
 */
const char	*params_repeated_header(char *const *envp);

/*
 * Most request headers a responder takes, as Apache httpd's
 * LimitRequestFields: every header checks the others for a look-alike
 * (params_repeated_header), so their number bounds that work. lighttpd
 * joins the lines of one header name into one parameter.
 */
#define REQUEST_HEADERS_MAX	100

/* The number of request headers (HTTP_ parameters) in envp (or NULL). */
size_t		 params_header_count(char *const *envp);

/* A request header by its CGI name ("HTTP_IDEMPOTENCY_KEY"), or NULL. */
const char	*request_param(const struct request *req, const char *name);

/* Returns 0 if name is a named counter's (REQUEST_NAME_RULE), else -1. */
int		 request_name_check(const char *name);

const char	*route_path(enum route r);
const char	*method_name(enum http_method m);

#endif
