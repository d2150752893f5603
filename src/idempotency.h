/* tally - idempotency: the Idempotency-Key request header of POST /write
 * (its syntax), and the background removal of keys older than the
 * retention period (TALLY_IDEMPOTENCY_RETENTION) in bounded batches, as
 * fast as the database deletes them whenever some have expired. */
#ifndef TALLY_IDEMPOTENCY_H
#define TALLY_IDEMPOTENCY_H

#include "settings.h"

#define IDEMPOTENCY_KEY_MAX	255

/* Returns 0 if key is 1 to 255 printable ASCII characters, else -1. */
int	idempotency_key_check(const char *key);

struct expiry;

/* Seconds between two rounds of the expiry thread: a few per retention
 * period, at least one a minute. */
unsigned int	 idempotency_expiry_period_s(const struct settings *s);

/* Starts the thread that deletes expired keys on its own connection. s
 * must outlive it. Returns it, or NULL after logging why. */
struct expiry	*idempotency_expiry_start(const struct settings *s);

/* Stops that thread and waits for it: it finishes the delete under way
 * (bounded by the statement timeout) and starts no other. Frees ex
 * (NULL is a no-op). */
void		 idempotency_expiry_stop(struct expiry *ex);

#endif
