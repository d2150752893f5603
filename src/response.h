/* tally - response: the one place that writes answers. Every answer gets
 * the same headers (JSON, no-store, nosniff; a badge's SVG no-cache),
 * HEAD gets no body, each
 * answer is counted in the metrics, and each 5xx answer is logged as an
 * error with its path, status, duration and error class. */
#ifndef TALLY_RESPONSE_H
#define TALLY_RESPONSE_H

#include <json-c/json.h>

#include "log.h"
#include "request.h"

/* Sends status and body (consumed) as JSON. extra_headers is NULL or
 * lines that each end in "\r\n". Returns 0, or -1 if the client is gone. */
int	response_json(struct request *req, int status,
	    struct json_object *body, const char *extra_headers);

/* 200 {"counter":value}: the answer of /read and /write, made without
 * building a JSON object. */
int	response_counter(struct request *req, long long value,
	    const char *extra_headers);

/* Sends a non-JSON body (the metrics text) with its Content-Type. */
int	response_text(struct request *req, int status, const char *type,
	    const char *body, size_t len);

/* An image (a badge) with its Content-Type, which a cache may keep but
 * must check first (Cache-Control: no-cache): extra_headers carries its
 * ETag. */
int	response_image(struct request *req, int status, const char *type,
	    const char *body, size_t len, const char *extra_headers);

/* 304, no body: what the client holds is current (extra_headers: the
 * ETag, as the 200 would carry it). */
int	response_not_modified(struct request *req, const char *extra_headers);

/* {"error": message} with status. */
int	response_error(struct request *req, int status, const char *message,
	    const char *extra_headers);

/* 405 {"error":"method not allowed","allow":["GET","HEAD"]} with the same
 * methods in Allow ("GET, HEAD"), both from methods (METHOD_BIT()s). */
int	response_method_not_allowed(struct request *req, unsigned int methods);

/* 503 with body (consumed) and Retry-After; error, if not NULL, is the
 * error class its log line carries. */
int	response_unavailable(struct request *req, struct json_object *body,
	    const char *error);

/* 503 {"error":"database unavailable"} with Retry-After. */
int	response_db_unavailable(struct request *req);

/* Retry-After seconds for 503 answers; set once at start-up. */
void	response_set_retry_after(unsigned int seconds);

#endif
