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

/* Writes {"time","level","prog","pid","msg", ...fields} as one line.
 * fields may be NULL; it is always consumed (json_object_put). */
void	log_event(enum log_level, const char *msg, struct json_object *fields);

/* Shorthands for a message with string key/value pairs, NULL-terminated. */
void	log_info(const char *msg, ...);
void	log_warn(const char *msg, ...);
void	log_error(const char *msg, ...);

/* Logs msg at error level and exits with status 1: start-up failures only. */
void	log_fatal(const char *msg, ...) __attribute__((noreturn));

#endif
