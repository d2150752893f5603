/* tally - unit tests for timestamp: RFC 3339 UTC with milliseconds. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "timestamp.h"

struct ts_case {
	time_t		 sec;
	long		 nsec;
	const char	*want;	/* NULL: not representable */
};

static const struct ts_case ts_cases[] = {
	{ 0, 0, "1970-01-01T00:00:00.000Z" },
	{ 1795341845, 123456789, "2026-11-22T10:04:05.123Z" },
	/* Milliseconds are cut, never rounded up into the next second. */
	{ 1795341845, 999999999, "2026-11-22T10:04:05.999Z" },
	{ 1795341845, 999999, "2026-11-22T10:04:05.000Z" },
	{ 1795341845, 1000000, "2026-11-22T10:04:05.001Z" },
	{ 1709251199, 999000000, "2024-02-29T23:59:59.999Z" },
	{ 951782400, 0, "2000-02-29T00:00:00.000Z" },
	{ 2147483647, 0, "2038-01-19T03:14:07.000Z" },
	{ 2147483648LL, 0, "2038-01-19T03:14:08.000Z" },
	{ -1, 0, "1969-12-31T23:59:59.000Z" },
	{ 253402300799LL, 999999999, "9999-12-31T23:59:59.999Z" },
	{ 253402300800LL, 0, NULL },		/* year 10000 */
	{ -62167219200LL, 0, "0000-01-01T00:00:00.000Z" },
	{ -62167219201LL, 0, NULL },		/* year -1 */
	{ 1795341845, -1, NULL },
	{ 1795341845, 1000000000L, NULL },
	{ 67768036191676799LL, 0, NULL },	/* tm_year is INT_MAX */
	{ LLONG_MAX, 0, NULL },
	{ LLONG_MIN, 0, NULL },
};

static void
test_cases(void)
{
	struct timespec	ts;
	char		buf[64];
	size_t		i;
	int		rc;

	for (i = 0; i < sizeof(ts_cases) / sizeof(ts_cases[0]); i++) {
		ts.tv_sec = ts_cases[i].sec;
		ts.tv_nsec = ts_cases[i].nsec;
		memset(buf, 'x', sizeof(buf));
		check_case("%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
		rc = timestamp_format(&ts, buf, sizeof(buf));
		CHECK_INT(rc == 0, ts_cases[i].want != NULL);
		CHECK_STR(buf, ts_cases[i].want != NULL ? ts_cases[i].want : "");
	}
}

static void
test_buffer_size(void)
{
	struct timespec	ts = { 1795341845, 123456789 };
	char		buf[TIMESTAMP_LEN + 8];

	memset(buf, 'x', sizeof(buf));
	CHECK_INT(timestamp_format(&ts, buf, TIMESTAMP_LEN), 0);
	CHECK_INT(strlen(buf), TIMESTAMP_LEN - 1);
	CHECK_INT(buf[TIMESTAMP_LEN], 'x');

	/* One byte short: nothing but an empty string, nothing past it. */
	memset(buf, 'x', sizeof(buf));
	CHECK_INT(timestamp_format(&ts, buf, TIMESTAMP_LEN - 1), -1);
	CHECK_INT(buf[0], '\0');
	CHECK_INT(buf[1], 'x');

	memset(buf, 'x', sizeof(buf));
	CHECK_INT(timestamp_format(&ts, buf, 1), -1);
	CHECK(buf[0] == '\0' && buf[1] == 'x');

	/* No room at all: the buffer is not touched. */
	memset(buf, 'x', sizeof(buf));
	CHECK_INT(timestamp_format(&ts, buf, 0), -1);
	CHECK_INT(buf[0], 'x');
}

/* The number in buf[at..at+n), which must be n decimal digits. */
static int
digits(const char *buf, size_t at, size_t n)
{
	int	v = 0;
	size_t	i;

	for (i = at; i < at + n; i++) {
		CHECK(buf[i] >= '0' && buf[i] <= '9');
		v = v * 10 + (buf[i] - '0');
	}
	return v;
}

/* Many times over the whole range: the text has the fixed shape and reads
 * back to the same second and millisecond. */
static void
test_round_trip(void)
{
	struct timespec		 ts;
	struct tm		 tm;
	char			 buf[TIMESTAMP_LEN];
	unsigned long long	 seed = 42;
	int			 i;
	const long long		 span = 253402300800LL + 62167219200LL;

	for (i = 0; i < 100000; i++) {
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		ts.tv_sec = (time_t)((long long)(seed >> 11) % span -
		    62167219200LL);
		ts.tv_nsec = (long)((seed >> 3) % 1000000000ULL);
		CHECK_INT(timestamp_format(&ts, buf, sizeof(buf)), 0);
		CHECK(buf[4] == '-' && buf[7] == '-' && buf[10] == 'T' &&
		    buf[13] == ':' && buf[16] == ':' && buf[19] == '.' &&
		    buf[23] == 'Z' && buf[24] == '\0');
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = digits(buf, 0, 4) - 1900;
		tm.tm_mon = digits(buf, 5, 2) - 1;
		tm.tm_mday = digits(buf, 8, 2);
		tm.tm_hour = digits(buf, 11, 2);
		tm.tm_min = digits(buf, 14, 2);
		tm.tm_sec = digits(buf, 17, 2);
		CHECK_INT(timegm(&tm), ts.tv_sec);
		CHECK_INT(digits(buf, 20, 3), ts.tv_nsec / 1000000);
	}
}

/* The clock the responders use formats today. */
static void
test_now(void)
{
	struct timespec	ts;
	char		buf[TIMESTAMP_LEN];

	CHECK_INT(clock_gettime(CLOCK_REALTIME, &ts), 0);
	CHECK_INT(timestamp_format(&ts, buf, sizeof(buf)), 0);
	CHECK(strlen(buf) == TIMESTAMP_LEN - 1 && buf[23] == 'Z');
}

int
main(void)
{
	test_cases();
	test_buffer_size();
	test_round_trip();
	test_now();
	return 0;
}
