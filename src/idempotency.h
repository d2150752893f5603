/* tally - idempotency: the Idempotency-Key request header of POST /write
 * (its syntax), and the background removal of keys older than the
 * retention period (TALLY_IDEMPOTENCY_RETENTION) in bounded batches. */
#ifndef TALLY_IDEMPOTENCY_H
#define TALLY_IDEMPOTENCY_H

#include "settings.h"

#define IDEMPOTENCY_KEY_MAX	255

/* Returns 0 if key is 1 to 255 printable ASCII characters, else -1. */
int	idempotency_key_check(const char *key);

/* Starts the thread that deletes expired keys on its own connection.
 * Returns 0, or -1 if it cannot start. */
int	idempotency_expiry_start(const struct settings *s);

/* Stops that thread (finishing a delete under way) and waits for it. */
void	idempotency_expiry_stop(void);

#endif
