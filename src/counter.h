/* tally - counter: the counter in PostgreSQL. Concurrent calls in one
 * process are combined (batch.h) into one statement on the process's one
 * connection: k increments become one durable
 * UPDATE ... SET value = value + k ... RETURNING value, and each caller
 * gets its own value from (v-k, v]. */
#ifndef TALLY_COUNTER_H
#define TALLY_COUNTER_H

#include "settings.h"

/* Prepares the connection (made on first use). Returns 0, or -1. */
int	counter_open(const struct settings *s, const char *appname);
void	counter_close(void);

/* Reads the counter. Returns 0, or -1 if the database is unavailable. */
int	counter_read(long long *value);

/* Adds one and sets *value to this call's own new value. Returns 0, or -1
 * if the database is unavailable: then the increment is unknown to the
 * caller (it did not count unless its batch committed). */
int	counter_increment(long long *value);

#endif
