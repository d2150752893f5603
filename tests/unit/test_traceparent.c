/* tally - unit tests for traceparent_parse: the W3C Trace Context header. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "request.h"

#define TID	"4bf92f3577b34da6a3ce929d0e0e4736"
#define SID	"00f067aa0ba902b7"

struct tp_case {
	const char	*header;
	int		 valid;
};

static const struct tp_case tp_cases[] = {
	{ "00-" TID "-" SID "-01", 1 },
	{ "00-" TID "-" SID "-00", 1 },
	/* unknown flags are kept */
	{ "00-" TID "-" SID "-ff", 1 },
	{ "01-" TID "-" SID "-01", 1 },
	/* a later version may append fields */
	{ "01-" TID "-" SID "-01-later-fields", 1 },
	{ "fe-" TID "-" SID "-01", 1 },
	/* version ff is invalid */
	{ "ff-" TID "-" SID "-01", 0 },
	{ "00-" TID "-" SID "-01-", 0 },	/* 00 is exactly 55 long */
	{ "00-" TID "-" SID "-01x", 0 },
	{ "01-" TID "-" SID "-01x", 0 },	/* extra fields need a "-" */
	{ "00-" TID "-" SID "-0", 0 },		/* too short */
	{ "00-" TID "-" SID, 0 },
	{ "", 0 },
	{ "00", 0 },
	{ "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01", 0 },
	{ "00-" TID "-00F067AA0BA902B7-01", 0 },
	{ "0A-" TID "-" SID "-01", 0 },
	{ "00-" TID "-" SID "-0A", 0 },
	{ "00-00000000000000000000000000000000-" SID "-01", 0 },
	{ "00-" TID "-0000000000000000-01", 0 },
	{ "00_" TID "-" SID "-01", 0 },
	{ "00-" TID "_" SID "-01", 0 },
	{ "00-" TID "-" SID "_01", 0 },
	{ "00-4bf92f3577b34da6a3ce929d0e0e473-" SID "-01", 0 },	/* 31 */
	{ "00-" TID "-00f067aa0ba902b-01", 0 },			/* 15 */
	{ "00-4bf92f3577b34da6a3ce929d0e0e473g-" SID "-01", 0 },
	{ " 00-" TID "-" SID "-01", 0 },
	{ "00-" TID "-" SID "-01 ", 0 },
};

static void
test_cases(void)
{
	char	tid[TRACE_ID_LEN + 1], sid[SPAN_ID_LEN + 1];
	size_t	i;

	for (i = 0; i < sizeof(tp_cases) / sizeof(tp_cases[0]); i++) {
		memset(tid, 'x', sizeof(tid));
		memset(sid, 'x', sizeof(sid));
		check_case("\"%s\"", tp_cases[i].header);
		if (tp_cases[i].valid) {
			CHECK_INT(traceparent_parse(tp_cases[i].header, tid,
			    sid), 0);
			CHECK_STR(tid, TID);
			CHECK_STR(sid, SID);
		} else {
			CHECK_INT(traceparent_parse(tp_cases[i].header, tid,
			    sid), -1);
			CHECK(tid[0] == '\0' && sid[0] == '\0');
		}
	}
	check_case_end();
}

static void
test_null(void)
{
	char	tid[TRACE_ID_LEN + 1] = "x", sid[SPAN_ID_LEN + 1] = "x";

	CHECK_INT(traceparent_parse(NULL, tid, sid), -1);
	CHECK(tid[0] == '\0' && sid[0] == '\0');
}

int
main(void)
{
	test_cases();
	test_null();
	printf("test_traceparent: ok\n");
	return 0;
}
