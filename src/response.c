/* tally - response: the one place that writes answers. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "stats.h"
#include "response.h"

static unsigned int	retry_after_s = 1;

static const char *
status_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
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

static int
response_send(struct request *req, int status, const char *type,
    const char *extra_headers, const char *body, size_t len)
{
	FCGX_Stream	*out = req->fcgx->out;
	char		 head[1024];
	int		 n, rc;

	req->status = status;
	/* libfcgi's own printf knows no %zu: format here, then write. */
	n = snprintf(head, sizeof(head), "Status: %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n"
	    "X-Content-Type-Options: nosniff\r\n"
	    "%s\r\n",
	    status, status_reason(status), type, len,
	    extra_headers != NULL ? extra_headers : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		rc = -1;
	else
		rc = FCGX_PutStr(head, n, out);
	if (rc >= 0 && req->method != METHOD_HEAD && len > 0)
		rc = FCGX_PutStr(body, (int)len, out);
	stats_request_done(req);
	return rc < 0 ? -1 : 0;
}

int
response_text(struct request *req, int status, const char *type,
    const char *body, size_t len)
{
	return response_send(req, status, type, NULL, body, len);
}

int
response_json(struct request *req, int status, struct json_object *body,
    const char *extra_headers)
{
	size_t		 len;
	const char	*text;
	int		 rc;

	text = json_object_to_json_string_length(body,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	rc = response_send(req, status, "application/json", extra_headers,
	    text, len);
	json_object_put(body);
	return rc;
}

int
response_error(struct request *req, int status, const char *message,
    const char *extra_headers)
{
	struct json_object	*body = json_object_new_object();

	json_object_object_add(body, "error", json_object_new_string(message));
	return response_json(req, status, body, extra_headers);
}

int
response_method_not_allowed(struct request *req, const char *allow)
{
	char	hdr[64];

	snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
	return response_error(req, 405, "method not allowed", hdr);
}

int
response_db_unavailable(struct request *req)
{
	char	hdr[48];

	snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", retry_after_s);
	return response_error(req, 503, "database unavailable", hdr);
}

void
response_log(const struct request *req, enum log_level level,
    const char *msg, struct json_object *fields)
{
	if (fields == NULL)
		fields = json_object_new_object();
	json_object_object_add(fields, "path",
	    json_object_new_string(route_path(req->route)));
	json_object_object_add(fields, "method",
	    json_object_new_string(method_name(req->method)));
	if (req->request_id != NULL)
		json_object_object_add(fields, "request_id",
		    json_object_new_string(req->request_id));
	log_event(level, msg, fields);
}
