/* tally - timestamp: RFC 3339 UTC time with milliseconds. */
#include "config.h"

#include <stdio.h>

#include "timestamp.h"

int
timestamp_format(const struct timespec *ts, char *buf, size_t len)
{
	struct tm	tm;
	int		n;

	if (len > 0)
		buf[0] = '\0';
	if (len < TIMESTAMP_LEN || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
		return -1;
	/* Years 0 to 9999 only; compared without adding 1900 to tm_year,
	 * which overflows for the largest times gmtime_r accepts. */
	if (gmtime_r(&ts->tv_sec, &tm) == NULL ||
	    tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
		return -1;
	n = snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000L);
	if (n != TIMESTAMP_LEN - 1) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

int64_t
monotonic_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
