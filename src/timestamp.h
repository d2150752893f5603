/* tally - timestamp: RFC 3339 UTC time with milliseconds, and the
 * monotonic clock that every deadline is measured on. */
#ifndef TALLY_TIMESTAMP_H
#define TALLY_TIMESTAMP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* "2026-11-22T10:04:05.123Z" and its NUL. */
#define TIMESTAMP_LEN	25

/* Formats ts as UTC into buf. Returns 0, or -1 if buf is too small or
 * the time cannot be represented (buf then holds ""). */
int	timestamp_format(const struct timespec *ts, char *buf, size_t len);

/* Milliseconds on CLOCK_MONOTONIC: for deadlines, never for display. */
int64_t	monotonic_ms(void);

#endif
