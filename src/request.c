/* tally - request: what a responder needs from one FastCGI request. */
#include "config.h"

#include <string.h>

#include "request.h"

static const char *const route_paths[ROUTE__COUNT] = {
	[ROUTE_TIME] = "/time",
	[ROUTE_READ] = "/read",
	[ROUTE_WRITE] = "/write",
	[ROUTE_HEALTHZ] = "/healthz",
	[ROUTE_LIVEZ] = "/livez",
	[ROUTE_METRICS] = "/metrics",
	[ROUTE_OTHER] = "other",
};

static const char *const method_names[METHOD__COUNT] = {
	[METHOD_GET] = "GET",
	[METHOD_HEAD] = "HEAD",
	[METHOD_POST] = "POST",
	[METHOD_OTHER] = "other",
};

const char *
route_path(enum route r)
{
	return route_paths[r];
}

const char *
method_name(enum http_method m)
{
	return method_names[m];
}

static enum http_method
method_parse(const char *s)
{
	int	m;

	if (s == NULL)
		return METHOD_OTHER;
	for (m = 0; m < METHOD_OTHER; m++)
		if (strcmp(s, method_names[m]) == 0)
			return (enum http_method)m;
	return METHOD_OTHER;
}

/* lighttpd sends the decoded path, split into SCRIPT_NAME and PATH_INFO;
 * the route is the whole path, so "/time/x" is not "/time". */
static enum route
route_parse(const char *script, const char *info)
{
	int	r;

	if (script == NULL || (info != NULL && *info != '\0'))
		return ROUTE_OTHER;
	for (r = 0; r < ROUTE_OTHER; r++)
		if (strcmp(script, route_paths[r]) == 0)
			return (enum route)r;
	return ROUTE_OTHER;
}

static const char *
request_id_check(const char *id)
{
	size_t	i;

	if (id == NULL)
		return NULL;
	for (i = 0; id[i] != '\0'; i++)
		if (i >= REQUEST_ID_MAX || id[i] < 0x21 || id[i] > 0x7e ||
		    id[i] == '"' || id[i] == '\\')
			return NULL;
	return i > 0 ? id : NULL;
}

const char *
request_param(const struct request *req, const char *name)
{
	return FCGX_GetParam(name, req->fcgx->envp);
}

void
request_init(struct request *req, FCGX_Request *fcgx)
{
	memset(req, 0, sizeof(*req));
	clock_gettime(CLOCK_MONOTONIC, &req->started);
	req->fcgx = fcgx;
	req->method = method_parse(request_param(req, "REQUEST_METHOD"));
	req->route = route_parse(request_param(req, "SCRIPT_NAME"),
	    request_param(req, "PATH_INFO"));
	req->remote_addr = request_param(req, "REMOTE_ADDR");
	req->forwarded_for = request_param(req, "HTTP_X_FORWARDED_FOR");
	req->request_id = request_id_check(request_param(req,
	    "HTTP_X_REQUEST_ID"));
}
