/* tally - counter: the counter in PostgreSQL. Concurrent calls in one
 * process are combined (batch.h) into one statement on the process's one
 * connection: k increments become one durable
 * UPDATE ... SET value = value + k ... RETURNING value, and each caller
 * gets its own value from (v-k, v]. Increments that carry an
 * Idempotency-Key go through tally_increment_keyed() (sql/), which counts
 * a key once within the retention period and replays its value. */
#ifndef TALLY_COUNTER_H
#define TALLY_COUNTER_H

#include "settings.h"

/* Prepares the connection (made on first use). Returns 0, or -1. */
int	counter_open(const struct settings *s, const char *appname);
void	counter_close(void);

/* Reads the counter. Returns 0, or -1 if the database is unavailable. */
int	counter_read(long long *value);

/* Adds one and sets *value to this call's own new value. With a key
 * (checked by idempotency_key_check), a key seen before adds nothing:
 * *value is the value its first use got and *replayed is 1. Returns 0,
 * or -1 if the database is unavailable: the increment's outcome is then
 * unknown to the caller (it counted only if its batch committed). */
int	counter_increment(const char *key, long long *value, int *replayed);

#endif
