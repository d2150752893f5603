/* tally - log: one JSON object per line on stderr. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "timestamp.h"

static const char	*log_prog = "tally";
static enum log_level	 log_min = LOG_LEVEL_INFO;
/* The calling thread's context: the innermost one entered, or NULL. */
static __thread const struct log_ctx *log_current;

static const char *const level_names[LOG_LEVEL__COUNT] = {
#define LOG_LEVEL(e, name)	[LOG_LEVEL_##e] = (name),
#include "settings.def"
};

int
log_level_parse(const char *s)
{
	int	i;

	for (i = 0; s != NULL && i < LOG_LEVEL__COUNT; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(enum log_level level)
{
	return level_names[level];
}

void
log_init(const char *prog)
{
	int	lvl = log_level_parse(getenv("TALLY_LOG_LEVEL"));

	log_prog = prog;
	if (lvl >= 0)
		log_min = (enum log_level)lvl;
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

const struct log_ctx *
log_enter(const struct log_ctx *ctx)
{
	const struct log_ctx	*outer = log_current;

	log_current = ctx;
	return outer;
}

void
log_leave(const struct log_ctx *ctx, const struct log_ctx *outer)
{
	if (log_current != ctx) {
		fprintf(stderr, "%s: log_leave: not the innermost log context; "
		    "log_enter and log_leave are unbalanced\n", log_prog);
		abort();
	}
	log_current = outer;
}

/* A trace context is written only whole: both ids, neither empty. */
static int
has_trace(const struct log_ctx *ctx)
{
	return ctx->trace_id != NULL && *ctx->trace_id != '\0' &&
	    ctx->span_id != NULL && *ctx->span_id != '\0';
}

void
log_event(enum log_level level, const char *msg, struct json_object *fields)
{
	const struct log_ctx	*ctx = log_current;
	struct json_object	*o;
	struct timespec		 now;
	char			 ts[TIMESTAMP_LEN];

	if (!log_enabled(level)) {
		json_object_put(fields);
		return;
	}
	o = json_object_new_object();
	clock_gettime(CLOCK_REALTIME, &now);
	timestamp_format(&now, ts, sizeof(ts));
	json_object_object_add(o, "time", json_object_new_string(ts));
	json_object_object_add(o, "level",
	    json_object_new_string(level_names[level]));
	json_object_object_add(o, "prog", json_object_new_string(log_prog));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	if (ctx != NULL && ctx->request_id != NULL)
		json_object_object_add(o, "request_id",
		    json_object_new_string(ctx->request_id));
	if (ctx != NULL && has_trace(ctx)) {
		json_object_object_add(o, "trace_id",
		    json_object_new_string(ctx->trace_id));
		json_object_object_add(o, "span_id",
		    json_object_new_string(ctx->span_id));
	}
	if (fields != NULL) {
		json_object_object_foreach(fields, key, val)
			json_object_object_add(o, key, json_object_get(val));
		json_object_put(fields);
	}
	/* One fprintf per line: stdio locks the stream, lines never mix. */
	fprintf(stderr, "%s\n",
	    json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static void
log_pairs(enum log_level level, const char *msg, va_list ap)
{
	struct json_object	*fields = json_object_new_object();
	const char		*key, *val;

	while ((key = va_arg(ap, const char *)) != NULL) {
		val = va_arg(ap, const char *);
		json_object_object_add(fields, key,
		    val == NULL ? NULL : json_object_new_string(val));
	}
	log_event(level, msg, fields);
}

void
log_info(const char *msg, ...)
{
	va_list	ap;

	va_start(ap, msg);
	log_pairs(LOG_LEVEL_INFO, msg, ap);
	va_end(ap);
}

void
log_warn(const char *msg, ...)
{
	va_list	ap;

	va_start(ap, msg);
	log_pairs(LOG_LEVEL_WARN, msg, ap);
	va_end(ap);
}

void
log_error(const char *msg, ...)
{
	va_list	ap;

	va_start(ap, msg);
	log_pairs(LOG_LEVEL_ERROR, msg, ap);
	va_end(ap);
}

void
log_fatal(const char *msg, ...)
{
	va_list	ap;

	va_start(ap, msg);
	log_pairs(LOG_LEVEL_ERROR, msg, ap);
	va_end(ap);
	exit(1);
}
