/* tally - log: one JSON object per line on stderr. */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <json-c/json.h>

/* The levels of src/settings.def, least severe first. */
enum log_level {
#define LOG_LEVEL(e, name)	LOG_LEVEL_##e,
#include "settings.def"
	LOG_LEVEL__COUNT
};

/* The level named s ("info"), or -1. */
int		 log_level_parse(const char *s);
const char	*log_level_name(enum log_level level);

/* Sets the program name carried by every line and the minimum level
 * (from TALLY_LOG_LEVEL: debug, info, warn, error; default info). */
void	log_init(const char *prog);

/* What the lines logged about one request carry: its X-Request-Id
 * (checked, or NULL) and its trace context (the trace-id and span-id of a
 * valid traceparent; NULL or "" for none). The strings must outlive every
 * use of the context. */
struct log_ctx {
	const char	*request_id;
	const char	*trace_id;
	const char	*span_id;
};

/* Writes {"time","level","prog","pid","msg", ...fields} as one line,
 * plus "request_id", "trace_id" and "span_id" from the calling thread's
 * context (log_enter), those it has. fields may be NULL; it is always
 * consumed (json_object_put). */
void	log_event(enum log_level, const char *msg, struct json_object *fields);

/* 1 if a line of this level would be written, else 0: lets a hot path
 * skip building the fields of a line nobody wants. */
int	log_enabled(enum log_level level);

/*
 * Entering and leaving a context, always as a pair in one function:
 *
 *	const struct log_ctx *outer = log_enter(ctx);
 *	... every line the thread logs, the database's included, names it
 *	log_leave(ctx, outer);
 *
 * log_enter makes ctx (or none, for NULL) the calling thread's context
 * and returns the one it replaces; log_leave puts that one back. So pairs
 * nest: what is logged after an inner pair names the outer context
 * again. Leaving a context that is not the thread's innermost one is a
 * bug, which log_leave reports and aborts on.
 */
const struct log_ctx *log_enter(const struct log_ctx *ctx);
void	log_leave(const struct log_ctx *ctx, const struct log_ctx *outer);

/* Shorthands for a message with string key/value pairs, NULL-terminated
 * (the compiler checks the NULL). msg is plain text, not a format. */
void	log_info(const char *msg, ...) __attribute__((sentinel));
void	log_warn(const char *msg, ...) __attribute__((sentinel));
void	log_error(const char *msg, ...) __attribute__((sentinel));

/* Logs msg at error level and exits with status 1: start-up failures only. */
void	log_fatal(const char *msg, ...)
	    __attribute__((noreturn, sentinel));

#endif
