/* tally - log: one JSON object per line on stderr. */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <json-c/json.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR
};

/* Sets the program name carried by every line and the minimum level
 * (from TALLY_LOG_LEVEL: debug, info, warn, error; default info). */
void	log_init(const char *prog);

/* Writes {"time","level","prog","pid","msg", ...fields} as one line,
 * plus "request_id", "trace_id" and "span_id" while the calling thread
 * serves a request that sent them (log_set_request_id, log_set_trace).
 * fields may be NULL; it is always consumed (json_object_put). */
void	log_event(enum log_level, const char *msg, struct json_object *fields);

/* 1 if a line of this level would be written, else 0: lets a hot path
 * skip building the fields of a line nobody wants. */
int	log_enabled(enum log_level level);

/* Names the X-Request-Id (checked, or NULL) of the request the calling
 * thread serves, until it is set again: every line the thread logs, the
 * database's included, then carries it. The string must outlive the
 * request; set NULL when the request ends. */
void	log_set_request_id(const char *request_id);
/* The calling thread's X-Request-Id as set above, or NULL. */
const char *log_get_request_id(void);

/* Names the trace context (the trace-id and span-id of a valid
 * traceparent, or NULL or "" for none) of the request the calling thread
 * serves, like log_set_request_id: every line then carries "trace_id"
 * and "span_id". */
void	log_set_trace(const char *trace_id, const char *span_id);
/* The calling thread's trace context as set above (NULL for none). */
const char *log_get_trace_id(void);
const char *log_get_span_id(void);

/* Shorthands for a message with string key/value pairs, NULL-terminated
 * (the compiler checks the NULL). msg is plain text, not a format. */
void	log_info(const char *msg, ...) __attribute__((sentinel));
void	log_warn(const char *msg, ...) __attribute__((sentinel));
void	log_error(const char *msg, ...) __attribute__((sentinel));

/* Logs msg at error level and exits with status 1: start-up failures only. */
void	log_fatal(const char *msg, ...)
	    __attribute__((noreturn, sentinel));

#endif
