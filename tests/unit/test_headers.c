/* tally - unit tests for params_repeated_header: a request header that
 * lighttpd passed twice under one CGI name (look-alike header names),
 * and their count (params_header_count);
 * and for a counter's name: its grammar (request_name_check) and where
 * request_init finds it, however lighttpd splits the path. */
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

static void
test_names(void)
{
	static const char *const good[] = { "visits", "example.com/visits",
	    "a", "A-Z_a.z-0.9", "...", "a/...", ".x", "x..",
	    /* the longest: 64 and 64 */
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/\
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	static const char *const bad[] = { "", "/", "/a", "a/", "a//b",
	    "a/b/c", ".", "..", "./a", "a/.", "a/..", "../a", "a b", "a%2Fb",
	    "a%2fb", "a:b", "a\\b", "a\"b", "\xc3\xa9",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "a/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	static const struct {
		char		*envp[4];
		enum route	 route;
		const char	*name;
	} paths[] = {
		{ { "SCRIPT_NAME=/read/a/b", NULL }, ROUTE_READ_NAMED, "a/b" },
		{ { "SCRIPT_NAME=/read/a", "PATH_INFO=/b", NULL },
		    ROUTE_READ_NAMED, "a/b" },
		{ { "SCRIPT_NAME=/read", "PATH_INFO=/a/b", NULL },
		    ROUTE_READ_NAMED, "a/b" },
		{ { "SCRIPT_NAME=/read/", NULL }, ROUTE_READ_NAMED, "" },
		{ { "SCRIPT_NAME=/read", NULL }, ROUTE_READ, "" },
		{ { "SCRIPT_NAME=/read", "PATH_INFO=", NULL }, ROUTE_READ, "" },
		{ { "SCRIPT_NAME=/write/x", NULL }, ROUTE_WRITE_NAMED, "x" },
		{ { "SCRIPT_NAME=/readx", "PATH_INFO=/a", NULL }, ROUTE_OTHER,
		    "" },
		{ { "SCRIPT_NAME=/time", "PATH_INFO=/a", NULL }, ROUTE_OTHER,
		    "" },
		/* a name too long is cut, still too long for the rule */
		{ { "SCRIPT_NAME=/read/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		    "PATH_INFO=/more", NULL }, ROUTE_READ_NAMED, NULL },
	};
	FCGX_Request	 fcgx;
	struct request	 req;
	size_t		 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		check_case("good name %s", good[i]);
		CHECK(request_name_check(good[i]) == 0);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		check_case("bad name %s", bad[i]);
		CHECK(request_name_check(bad[i]) == -1);
	}
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		check_case("path %s", paths[i].envp[0]);
		memset(&fcgx, 0, sizeof(fcgx));
		fcgx.envp = (char **)paths[i].envp;
		request_init(&req, &fcgx);
		CHECK(req.route == paths[i].route);
		if (paths[i].name != NULL)
			CHECK_STR(req.name, paths[i].name);
		else {
			CHECK(strlen(req.name) ==
			    REQUEST_NAME_MAX + REQUEST_NAME_SUFFIX_MAX + 1);
			CHECK(request_name_check(req.name) == -1);
		}
	}
	check_case_end();
}

/* params_header_count counts the HTTP_ parameters, headers only. */
static void
test_count(void)
{
	char	*envp[] = { "REQUEST_METHOD=GET", "HTTP_HOST=h",
	    "SCRIPT_NAME=/time", "HTTP_A=", "HTTP_A=b", "HTTPX=1", NULL };

	CHECK(params_header_count(NULL) == 0);
	CHECK(params_header_count(envp + 6) == 0);
	CHECK(params_header_count(envp) == 3);
}

int
main(void)
{
	test_cases();
	test_count();
	test_names();
	printf("test_headers: ok\n");
	return 0;
}
