/* tally - request: what a responder needs from one FastCGI request. */
#include "config.h"

#include <string.h>

#include "request.h"

static const char *const route_paths[ROUTE__COUNT] = {
#define ROUTE(e, path, match, responder, listener)	[ROUTE_##e] = (path),
#include "responders.def"
	[ROUTE_OTHER] = "other",
};

#define EXACT	0
#define NAMED	1
static const int route_named[ROUTE__COUNT] = {
#define ROUTE(e, path, match, responder, listener)	[ROUTE_##e] = (match),
#include "responders.def"
};
#undef EXACT
#undef NAMED

static const char *const method_names[METHOD__COUNT] = {
	[METHOD_GET] = "GET",
	[METHOD_HEAD] = "HEAD",
	[METHOD_POST] = "POST",
	[METHOD_PUT] = "PUT",
	[METHOD_DELETE] = "DELETE",
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

/* One segment of a name: returns its length, or 0 if it is not one. */
static size_t
name_segment(const char *s)
{
	size_t	n;

	for (n = 0; (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' &&
	    s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '.' ||
	    s[n] == '_' || s[n] == '-'; n++)
		if (n >= REQUEST_NAME_SEGMENT_MAX)
			return 0;
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return 0;
	return n;
}

int
request_name_check(const char *name)
{
	size_t	n;

	if ((n = name_segment(name)) == 0)
		return -1;
	if (name[n] == '/') {
		name += n + 1;
		if ((n = name_segment(name)) == 0)
			return -1;
	}
	return name[n] == '\0' ? 0 : -1;
}

/* Appends src to dst (size bytes, holding len), cut to what fits;
 * returns the new length. */
static size_t
append_cut(char *dst, size_t size, size_t len, const char *src)
{
	size_t	n = strnlen(src, size - 1 - len);

	memcpy(dst + len, src, n);
	dst[len + n] = '\0';
	return len + n;
}

/* lighttpd sends the decoded path, split into SCRIPT_NAME and PATH_INFO;
 * the route is the whole path, so "/time/x" is not "/time". A NAMED
 * route's path is a prefix: the rest is the counter's name (name). */
static enum route
route_parse(const char *script, const char *info, char *name, size_t size)
{
	size_t	len;
	int	r;

	name[0] = '\0';
	if (script == NULL)
		return ROUTE_OTHER;
	for (r = 0; r < ROUTE_OTHER; r++) {
		if (!route_named[r]) {
			if ((info == NULL || *info == '\0') &&
			    strcmp(script, route_paths[r]) == 0)
				return (enum route)r;
			continue;
		}
		/* the prefix may end in SCRIPT_NAME or in PATH_INFO */
		len = strlen(route_paths[r]);
		if (strncmp(script, route_paths[r], len) == 0)
			len = append_cut(name, size, 0, script + len);
		else if (strncmp(script, route_paths[r], len - 1) == 0 &&
		    script[len - 1] == '\0' && info != NULL && *info == '/')
			len = 0, info++;
		else
			continue;
		if (info != NULL)
			(void)append_cut(name, size, len, info);
		return (enum route)r;
	}
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

/* n lower-case hex digits, all zero only if zero_ok: 1, else 0. */
static int
hex_id(const char *s, size_t n, int zero_ok)
{
	size_t	i;
	int	nonzero = 0;

	for (i = 0; i < n; i++) {
		if ((s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f'))
			return 0;
		nonzero |= s[i] != '0';
	}
	return nonzero || zero_ok;
}

int
traceparent_parse(const char *s, char trace_id[TRACE_ID_LEN + 1],
    char span_id[SPAN_ID_LEN + 1])
{
	/* version "-" trace-id "-" parent-id "-" flags */
	const size_t	tid = 3, sid = tid + TRACE_ID_LEN + 1,
			flags = sid + SPAN_ID_LEN + 1, end = flags + 2;
	size_t		len;

	trace_id[0] = span_id[0] = '\0';
	if (s == NULL || (len = strnlen(s, end + 1)) < end)
		return -1;
	if (!hex_id(s, 2, 1) || strncmp(s, "ff", 2) == 0 || s[2] != '-' ||
	    !hex_id(s + tid, TRACE_ID_LEN, 0) || s[sid - 1] != '-' ||
	    !hex_id(s + sid, SPAN_ID_LEN, 0) || s[flags - 1] != '-' ||
	    !hex_id(s + flags, 2, 1))
		return -1;
	/* Version 00 is exactly this long; later ones may add "-fields". */
	if (len > end && (strncmp(s, "00", 2) == 0 || s[end] != '-'))
		return -1;
	memcpy(trace_id, s + tid, TRACE_ID_LEN);
	trace_id[TRACE_ID_LEN] = '\0';
	memcpy(span_id, s + sid, SPAN_ID_LEN);
	span_id[SPAN_ID_LEN] = '\0';
	return 0;
}

size_t
params_header_count(char *const *envp)
{
	size_t	i, n = 0;

	if (envp == NULL)
		return 0;
	for (i = 0; envp[i] != NULL; i++)
		if (strncmp(envp[i], "HTTP_", 5) == 0)
			n++;
	return n;
}

const char *
params_repeated_header(char *const *envp)
{
	size_t	i, j, len;

	if (envp == NULL)
		return NULL;
	for (i = 0; envp[i] != NULL; i++) {
		if (strncmp(envp[i], "HTTP_", 5) != 0)
			continue;
		len = strcspn(envp[i], "=") + 1;	/* with the '=' */
		for (j = i + 1; envp[j] != NULL; j++)
			if (strncmp(envp[j], envp[i], len) == 0)
				return envp[i];
	}
	return NULL;
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
	    request_param(req, "PATH_INFO"), req->name, sizeof(req->name));
	req->remote_addr = request_param(req, "REMOTE_ADDR");
	req->forwarded_for = request_param(req, "HTTP_X_FORWARDED_FOR");
	req->request_id = request_id_check(request_param(req,
	    "HTTP_X_REQUEST_ID"));
	(void)traceparent_parse(request_param(req, "HTTP_TRACEPARENT"),
	    req->trace_id, req->span_id);
}
