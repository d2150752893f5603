/* tally - fuzzes request_init, the up-front checks of a FastCGI request's
 * parameters (method, route, X-Request-Id, traceparent, a header passed
 * twice under one name), and what follows for /time: the client address
 * and its JSON body. Input: one "NAME=value"
 * parameter per line, as libfcgi hands them over in envp. */
#include "fuzz.h"

#include <fcgiapp.h>
#include <json-c/json.h>

#include "clientip.h"
#include "request.h"

#define MAX_PARAMS	64

static struct cidr_list	trusted;	/* parsed by the first run */

/* Which routes are a prefix followed by a counter's name, from the
 * declaration (src/responders.def). */
#define EXACT	0
#define NAMED	1
static const int named[ROUTE__COUNT] = {
#define ROUTE(e, path, match, responder, listener)	[ROUTE_##e] = (match),
#include "responders.def"
};
#undef EXACT
#undef NAMED

/* Does the path lighttpd split into script and info take route i? An
 * exact route is the whole path; a named one is its prefix ("/read/"),
 * which may end in SCRIPT_NAME, or be SCRIPT_NAME without its '/' and
 * PATH_INFO begin with it. */
static int
route_takes(int i, const char *script, const char *info)
{
	const char	*p = route_path(i);
	size_t		 len = strlen(p);

	if (script == NULL)
		return 0;
	if (!named[i])
		return strcmp(script, p) == 0 && (info == NULL || *info == '\0');
	return strncmp(script, p, len) == 0 ||
	    (strncmp(script, p, len - 1) == 0 && script[len - 1] == '\0' &&
	    info != NULL && *info == '/');
}

static int
request_id_valid(const char *id)
{
	size_t	i, len;

	if (id == NULL || (len = strlen(id)) == 0 || len > REQUEST_ID_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)id[i] < 0x21 ||
		    (unsigned char)id[i] > 0x7e || id[i] == '"' ||
		    id[i] == '\\')
			return 0;
	return 1;
}

/* The trace context is both ids or neither, each lower-case hex of its
 * length and not all zero, copied from the header's own characters. */
static void
check_trace(const struct request *req, const char *tp)
{
	size_t	i;

	assert((req->trace_id[0] == '\0') == (req->span_id[0] == '\0'));
	if (req->trace_id[0] == '\0')
		return;
	assert(tp != NULL);
	assert(strlen(req->trace_id) == TRACE_ID_LEN);
	assert(strlen(req->span_id) == SPAN_ID_LEN);
	assert(strncmp(tp + 3, req->trace_id, TRACE_ID_LEN) == 0);
	assert(strncmp(tp + 4 + TRACE_ID_LEN, req->span_id, SPAN_ID_LEN) == 0);
	for (i = 0; i < TRACE_ID_LEN; i++)
		assert(strchr("0123456789abcdef", req->trace_id[i]) != NULL);
	for (i = 0; i < SPAN_ID_LEN; i++)
		assert(strchr("0123456789abcdef", req->span_id[i]) != NULL);
	assert(strspn(req->trace_id, "0") < TRACE_ID_LEN);
	assert(strspn(req->span_id, "0") < SPAN_ID_LEN);
	assert(strncmp(tp, "ff", 2) != 0);
}

static void
check_request(const struct request *req, char **envp)
{
	const char	*m = FCGX_GetParam("REQUEST_METHOD", envp);
	const char	*script = FCGX_GetParam("SCRIPT_NAME", envp);
	const char	*info = FCGX_GetParam("PATH_INFO", envp);
	const char	*id = FCGX_GetParam("HTTP_X_REQUEST_ID", envp);
	int		 i;

	assert((unsigned int)req->method < METHOD__COUNT);
	assert((unsigned int)req->route < ROUTE__COUNT);
	for (i = 0; i < METHOD_OTHER; i++)
		assert((m != NULL && strcmp(m, method_name(i)) == 0) ==
		    ((int)req->method == i));
	for (i = 0; i < ROUTE_OTHER; i++)
		assert(route_takes(i, script, info) == ((int)req->route == i));
	/* a name only on a named route, always within its bounds */
	assert(strlen(req->name) < sizeof(req->name));
	assert(named[req->route] || req->name[0] == '\0');
	assert(req->request_id == (request_id_valid(id) ? id : NULL));
	assert(req->remote_addr == FCGX_GetParam("REMOTE_ADDR", envp));
	assert(req->forwarded_for ==
	    FCGX_GetParam("HTTP_X_FORWARDED_FOR", envp));
	check_trace(req, FCGX_GetParam("HTTP_TRACEPARENT", envp));
}

/* Two parameters of one name: the same bytes up to the first '=', and
 * both with one or both without. */
static int
same_name(const char *a, const char *b)
{
	size_t	la = strcspn(a, "="), lb = strcspn(b, "=");

	return la == lb && memcmp(a, b, la) == 0 && a[la] == b[lb];
}

/* params_repeated_header answers the first HTTP_ parameter whose name a
 * later one has, or NULL if there is none. */
static void
check_repeated(char **envp, size_t n)
{
	size_t	i, j, first = n;

	for (i = 0; i < n && first == n; i++)
		if (strncmp(envp[i], "HTTP_", 5) == 0)
			for (j = i + 1; j < n && first == n; j++)
				if (same_name(envp[i], envp[j]))
					first = i;
	assert(params_repeated_header(envp) ==
	    (first < n ? envp[first] : NULL));
}

/* Builds /time's body as time.c does and checks it reads back as JSON
 * with the same strings. */
static void
check_time_body(const struct request *req)
{
	struct client_info	 ci;
	struct json_object	*body, *chain, *back, *v;
	const char		*text;
	size_t			 i;

	clientip_resolve(&trusted, req->remote_addr, req->forwarded_for, &ci);
	chain = json_object_new_array();
	for (i = 0; i < ci.chain_len; i++)
		json_object_array_add(chain,
		    json_object_new_string(ci.chain[i]));
	body = json_object_new_object();
	json_object_object_add(body, "user_ip",
	    json_object_new_string(ci.user_ip));
	json_object_object_add(body, "proxy_chain", chain);
	if (req->request_id != NULL)
		json_object_object_add(body, "request_id",
		    json_object_new_string(req->request_id));
	text = json_object_to_json_string_ext(body,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	back = json_tokener_parse(text);
	assert(back != NULL);
	assert(json_object_object_get_ex(back, "user_ip", &v));
	assert(strcmp(json_object_get_string(v), ci.user_ip) == 0);
	assert(json_object_object_get_ex(back, "proxy_chain", &v));
	assert(json_object_array_length(v) == ci.chain_len);
	json_object_put(back);
	json_object_put(body);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FCGX_Request	 fcgx;
	struct request	 req;
	char		*envp[MAX_PARAMS + 1];
	char		*in = fuzz_string(data, size), *line, *next;
	size_t		 n = 0;
	char		 err[64];

	if (trusted.items == NULL)
		assert(cidr_list_parse("127.0.0.0/8, ::1, 10.0.0.0/8",
		    &trusted, err, sizeof(err)) == 0);
	for (line = in; line != NULL && n < MAX_PARAMS; line = next) {
		next = fuzz_next_line(line);
		envp[n++] = line;
	}
	envp[n] = NULL;
	memset(&fcgx, 0, sizeof(fcgx));
	fcgx.envp = envp;
	request_init(&req, &fcgx);
	check_request(&req, envp);
	check_repeated(envp, n);
	check_time_body(&req);
	free(in);
	return 0;
}
