/* tally - unit tests for log's context: the lines a thread logs name the
 * context it entered last, pairs nest (after an inner pair the outer
 * context is named again: a batch's statement still names its request
 * after the answers of the batch before it were written), a trace is
 * written only whole, the fields keep their order, and leaving a context
 * that is not the innermost one aborts. The lines are read back from
 * stderr, as JSON. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "check.h"
#include "log.h"

#define TRACE_A	"4bf92f3577b34da6a3ce929d0e0e4736"
#define SPAN_A	"00f067aa0ba902b7"

static const struct log_ctx	ctx_a = { "req-a", TRACE_A, SPAN_A };
static const struct log_ctx	ctx_b = { "req-b", "", "" };

/* Runs fn with stderr in a file and returns the one line it logged,
 * parsed (the caller puts it). */
static struct json_object *
logged(void (*fn)(void))
{
	char			 path[] = "/tmp/tally-test-log.XXXXXX", line[1024];
	struct json_object	*o;
	FILE			*f;
	int			 fd, saved;

	CHECK((fd = mkstemp(path)) >= 0);
	CHECK((saved = dup(2)) >= 0);
	CHECK(dup2(fd, 2) == 2);
	fn();
	CHECK(dup2(saved, 2) == 2);
	close(saved);
	CHECK((f = fdopen(fd, "r")) != NULL);
	rewind(f);
	CHECK(fgets(line, sizeof(line), f) != NULL);
	CHECK(strchr(line, '\n') != NULL);
	CHECK(fgetc(f) == EOF);		/* one line */
	fclose(f);
	unlink(path);
	CHECK((o = json_tokener_parse(line)) != NULL);
	return o;
}

/* The line's string field key, or NULL without one. */
static const char *
field(struct json_object *o, const char *key)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, key, &v) ?
	    json_object_get_string(v) : NULL;
}

static void
log_one(void)
{
	log_info("a line", "k", "v", NULL);
}

static void
test_no_context(void)
{
	struct json_object	*o = logged(log_one);

	CHECK_STR(field(o, "msg"), "a line");
	CHECK(field(o, "request_id") == NULL);
	CHECK(field(o, "trace_id") == NULL);
	CHECK(field(o, "span_id") == NULL);
	json_object_put(o);
}

/* The keys in order: time, level, prog, pid, msg, the context's, then
 * the fields. */
static void
test_order(void)
{
	static const char *const want[] = { "time", "level", "prog", "pid",
	    "msg", "request_id", "trace_id", "span_id", "k" };
	const struct log_ctx	*outer = log_enter(&ctx_a);
	struct json_object	*o = logged(log_one);
	size_t			 i = 0;

	log_leave(&ctx_a, outer);
	json_object_object_foreach(o, key, val) {
		(void)val;
		CHECK(i < sizeof(want) / sizeof(want[0]));
		check_case("key %zu", i);
		CHECK_STR(key, want[i]);
		i++;
	}
	check_case_end();
	CHECK_INT(i, sizeof(want) / sizeof(want[0]));
	CHECK_STR(field(o, "request_id"), "req-a");
	CHECK_STR(field(o, "trace_id"), TRACE_A);
	CHECK_STR(field(o, "span_id"), SPAN_A);
	json_object_put(o);
}

/* An inner pair (an answer written during a batch's statement) leaves
 * the outer context (the batch's) in place. */
static void
test_nested(void)
{
	const struct log_ctx	*outer, *inner;
	struct json_object	*o;

	outer = log_enter(&ctx_a);
	CHECK(outer == NULL);
	inner = log_enter(&ctx_b);
	CHECK(inner == &ctx_a);
	o = logged(log_one);
	CHECK_STR(field(o, "request_id"), "req-b");
	CHECK(field(o, "trace_id") == NULL);	/* b has none */
	json_object_put(o);
	log_leave(&ctx_b, inner);

	o = logged(log_one);
	CHECK_STR(field(o, "request_id"), "req-a");
	CHECK_STR(field(o, "trace_id"), TRACE_A);
	json_object_put(o);
	log_leave(&ctx_a, outer);

	o = logged(log_one);
	CHECK(field(o, "request_id") == NULL);
	json_object_put(o);
}

/* A trace is written whole or not at all; a context may have no id. */
static void
test_partial(void)
{
	static const struct log_ctx	half = { NULL, TRACE_A, NULL };
	static const struct log_ctx	trace_only = { NULL, TRACE_A, SPAN_A };
	const struct log_ctx		*outer;
	struct json_object		*o;

	outer = log_enter(&half);
	o = logged(log_one);
	log_leave(&half, outer);
	CHECK(field(o, "request_id") == NULL);
	CHECK(field(o, "trace_id") == NULL);
	CHECK(field(o, "span_id") == NULL);
	json_object_put(o);

	outer = log_enter(&trace_only);
	o = logged(log_one);
	log_leave(&trace_only, outer);
	CHECK(field(o, "request_id") == NULL);
	CHECK_STR(field(o, "trace_id"), TRACE_A);
	CHECK_STR(field(o, "span_id"), SPAN_A);
	json_object_put(o);
}

/* Leaving the outer context while the inner one is entered is a bug:
 * the process aborts rather than log under the wrong request. */
static void
test_unbalanced_aborts(void)
{
	pid_t	pid;
	int	status;

	CHECK((pid = fork()) >= 0);
	if (pid == 0) {
		const struct log_ctx	*outer = log_enter(&ctx_a);

		if (freopen("/dev/null", "w", stderr) == NULL)
			_exit(1);
		(void)log_enter(&ctx_b);
		log_leave(&ctx_a, outer);
		_exit(0);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFSIGNALED(status));
	CHECK_INT(WTERMSIG(status), SIGABRT);
}

int
main(void)
{
	log_init("test_log");
	test_no_context();
	test_order();
	test_nested();
	test_partial();
	test_unbalanced_aborts();
	return 0;
}
