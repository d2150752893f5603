/* tally - timestamp: RFC 3339 UTC time with milliseconds. */
#ifndef TALLY_TIMESTAMP_H
#define TALLY_TIMESTAMP_H

#include <stddef.h>
#include <time.h>

/* "2026-11-22T10:04:05.123Z" and its NUL. */
#define TIMESTAMP_LEN	25

/* Formats ts as UTC into buf. Returns 0, or -1 if buf is too small or
 * the time cannot be represented (buf then holds ""). */
int	timestamp_format(const struct timespec *ts, char *buf, size_t len);

#endif
