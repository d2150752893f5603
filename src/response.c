/* tally - response: the one place that writes answers. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stats.h"
#include "response.h"

static unsigned int	retry_after_s = 1;

static const char *
status_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

void
response_set_retry_after(unsigned int seconds)
{
	retry_after_s = seconds;
}

static double
elapsed_seconds(const struct request *req)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - req->started.tv_sec) +
	    (double)(now.tv_nsec - req->started.tv_nsec) / 1e9;
}

/* Logs msg with the request's path and method added to fields (consumed,
 * may be NULL); log.h adds its X-Request-Id. */
static void
response_log(const struct request *req, enum log_level level,
    const char *msg, struct json_object *fields)
{
	if (fields == NULL)
		fields = json_object_new_object();
	json_object_object_add(fields, "path",
	    json_object_new_string(route_path(req->route)));
	json_object_object_add(fields, "method",
	    json_object_new_string(method_name(req->method)));
	log_event(level, msg, fields);
}

/* A 5xx answer is logged as an error (with the X-Request-Id, see log.h);
 * the others only at debug level, so the hot path builds no line. */
static void
log_answer(const struct request *req, double seconds, const char *error)
{
	enum log_level		 level;
	struct json_object	*fields;

	level = req->status >= 500 ? LOG_LEVEL_ERROR : LOG_LEVEL_DEBUG;
	if (!log_enabled(level))
		return;
	if (error == NULL && req->status >= 400)
		error = status_reason(req->status);
	fields = json_object_new_object();
	json_object_object_add(fields, "status",
	    json_object_new_int(req->status));
	json_object_object_add(fields, "duration_us",
	    json_object_new_int64((int64_t)(seconds * 1e6 + 0.5)));
	if (error != NULL)
		json_object_object_add(fields, "error",
		    json_object_new_string(error));
	response_log(req, level, req->status >= 500 ? "request failed" :
	    "request answered", fields);
}

/* Writes the answer, counts it in the metrics and logs it. error is the
 * error class of a failed request ("database unavailable"), or NULL. */
static int
response_send_cached(struct request *req, int status, const char *type,
    const char *cache, const char *extra_headers, const char *body,
    size_t len, const char *error)
{
	double		 seconds;
	FCGX_Stream	*out = req->fcgx->out;
	char		 head[1024], content[160] = "";
	int		 n, rc;

	req->status = status;
	/* libfcgi's own printf knows no %zu: format here, then write. A
	 * 304 has no content, and says nothing of it. */
	if (type != NULL)
		(void)snprintf(content, sizeof(content), "Content-Type: %s\r\n"
		    "Content-Length: %zu\r\n", type, len);
	n = snprintf(head, sizeof(head), "Status: %d %s\r\n"
	    "%s"
	    "Cache-Control: %s\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "%s\r\n",
	    status, status_reason(status), content, cache,
	    extra_headers != NULL ? extra_headers : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		rc = -1;
	else
		rc = FCGX_PutStr(head, n, out);
	if (rc >= 0 && req->method != METHOD_HEAD && len > 0)
		rc = FCGX_PutStr(body, (int)len, out);
	seconds = elapsed_seconds(req);
	stats_request_done(req, seconds);
	log_answer(req, seconds, error);
	return rc < 0 ? -1 : 0;
}

static int
response_send(struct request *req, int status, const char *type,
    const char *extra_headers, const char *body, size_t len, const char *error)
{
	return response_send_cached(req, status, type, "no-store",
	    extra_headers, body, len, error);
}

int
response_image(struct request *req, int status, const char *type,
    const char *body, size_t len, const char *extra_headers)
{
	return response_send_cached(req, status, type, "no-cache",
	    extra_headers, body, len, NULL);
}

int
response_not_modified(struct request *req, const char *extra_headers)
{
	return response_send_cached(req, 304, NULL, "no-cache", extra_headers,
	    NULL, 0, NULL);
}

int
response_text(struct request *req, int status, const char *type,
    const char *body, size_t len)
{
	return response_send(req, status, type, NULL, body, len, NULL);
}

/* Sends status and a JSON text made here (len bytes). */
static int
response_json_text(struct request *req, int status, const char *json,
    size_t len, const char *extra_headers)
{
	return response_send(req, status, "application/json", extra_headers,
	    json, len, NULL);
}

int
response_counter(struct request *req, long long value,
    const char *extra_headers)
{
	char	body[48];
	int	n;

	n = snprintf(body, sizeof(body), "{\"counter\":%lld}", value);
	return response_json_text(req, 200, body, (size_t)n, extra_headers);
}

static int
response_json_error(struct request *req, int status, struct json_object *body,
    const char *extra_headers, const char *error)
{
	size_t		 len;
	const char	*text;
	int		 rc;

	text = json_object_to_json_string_length(body,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	rc = response_send(req, status, "application/json", extra_headers,
	    text, len, error);
	json_object_put(body);
	return rc;
}

int
response_json(struct request *req, int status, struct json_object *body,
    const char *extra_headers)
{
	return response_json_error(req, status, body, extra_headers, NULL);
}

int
response_error(struct request *req, int status, const char *message,
    const char *extra_headers)
{
	struct json_object	*body = json_object_new_object();

	json_object_object_add(body, "error", json_object_new_string(message));
	return response_json_error(req, status, body, extra_headers, message);
}

int
response_method_not_allowed(struct request *req, unsigned int methods)
{
	struct json_object	*body, *allow;
	char			 hdr[64];
	size_t			 n;
	int			 m, w;

	body = json_object_new_object();
	allow = json_object_new_array();
	n = (size_t)snprintf(hdr, sizeof(hdr), "Allow:");
	for (m = 0; m < METHOD_OTHER; m++) {
		if ((methods & METHOD_BIT(m)) == 0)
			continue;
		w = snprintf(hdr + n, sizeof(hdr) - n, "%s %s",
		    json_object_array_length(allow) > 0 ? "," : "",
		    method_name((enum http_method)m));
		if (w < 0 || (size_t)w >= sizeof(hdr) - n - 2)
			break;	/* cannot happen: five methods fit */
		n += (size_t)w;
		json_object_array_add(allow,
		    json_object_new_string(method_name((enum http_method)m)));
	}
	memcpy(hdr + n, "\r\n", 3);
	json_object_object_add(body, "error",
	    json_object_new_string("method not allowed"));
	json_object_object_add(body, "allow", allow);
	return response_json_error(req, 405, body, hdr, "method not allowed");
}

int
response_unavailable(struct request *req, struct json_object *body,
    const char *error)
{
	char	hdr[48];

	snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", retry_after_s);
	return response_json_error(req, 503, body, hdr, error);
}

int
response_db_unavailable(struct request *req)
{
	struct json_object	*body = json_object_new_object();

	json_object_object_add(body, "error",
	    json_object_new_string("database unavailable"));
	return response_unavailable(req, body, "database unavailable");
}
