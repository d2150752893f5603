/* tally - unit tests for params_repeated_header: a request header that
 * lighttpd passed twice under one CGI name (look-alike header names). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "request.h"

struct rh_case {
	const char	*what;
	char		*envp[8];
	const char	*repeated;	/* the first of the two, or NULL */
};

static const struct rh_case rh_cases[] = {
	{ "none", { NULL }, NULL },
	{ "distinct headers", { "REQUEST_METHOD=GET",
	    "HTTP_X_FORWARDED_FOR=203.0.113.9", "HTTP_IDEMPOTENCY_KEY=k",
	    "HTTP_X_REQUEST_ID=r", NULL }, NULL },
	{ "X_Forwarded_For and X-Forwarded-For", { "REMOTE_ADDR=127.0.0.1",
	    "HTTP_X_FORWARDED_FOR=6.6.6.6", "HTTP_HOST=h",
	    "HTTP_X_FORWARDED_FOR=203.0.113.9", NULL },
	    "HTTP_X_FORWARDED_FOR=6.6.6.6" },
	{ "Idempotency_Key and Idempotency-Key", {
	    "HTTP_IDEMPOTENCY_KEY=b", "HTTP_IDEMPOTENCY_KEY=a", NULL },
	    "HTTP_IDEMPOTENCY_KEY=b" },
	{ "the same value twice is still two headers", {
	    "HTTP_X_REQUEST_ID=same", "HTTP_X_REQUEST_ID=same", NULL },
	    "HTTP_X_REQUEST_ID=same" },
	{ "empty values", { "HTTP_A=", "HTTP_A=", NULL }, "HTTP_A=" },
	/* a name that starts another is not the same name */
	{ "prefixes", { "HTTP_X_FORWARDED=1", "HTTP_X_FORWARDED_FOR=2",
	    "HTTP_X=3", "HTTP_X_FORWARDED_FOR_=4", NULL }, NULL },
	/* lighttpd's own parameters are not headers */
	{ "not a header", { "SCRIPT_NAME=/time", "SCRIPT_NAME=/time", NULL },
	    NULL },
	{ "a value holding '='", { "HTTP_A=b=c", "HTTP_A_B=c", "HTTP_A=d",
	    NULL }, "HTTP_A=b=c" },
};

static void
test_cases(void)
{
	size_t		 i;
	const char	*got;

	for (i = 0; i < sizeof(rh_cases) / sizeof(rh_cases[0]); i++) {
		check_case("%s", rh_cases[i].what);
		got = params_repeated_header(rh_cases[i].envp);
		if (rh_cases[i].repeated == NULL)
			CHECK(got == NULL);
		else {
			CHECK(got != NULL);
			if (got != NULL)
				CHECK_STR(got, rh_cases[i].repeated);
		}
	}
	check_case_end();
	CHECK(params_repeated_header(NULL) == NULL);
}

int
main(void)
{
	test_cases();
	printf("test_headers: ok\n");
	return 0;
}
