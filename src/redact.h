/* tally - redact: a connection string's secrets out of libpq's messages.
 *
 * What is secret is what libpq's own parser (PQconninfoParse) makes of the
 * connection string, not a guess at its syntax:
 *   - the password, as libpq decoded it, percent-encoded as a URI spells
 *     it (upper- and lower-case hex), escaped as a quoted value of a
 *     connection string spells it; and PGPASSWORD's value;
 *   - every value libpq took from a URI that it read in a way no
 *     well-formed URI is read: an '@' in any value but the password, or a
 *     port that is not a list of numbers. An unescaped '@' or '/' in a
 *     password splits it into the host, the port or the database, and
 *     libpq then quotes those pieces in its errors;
 *   - the whole string, when libpq cannot parse it: then no part of
 *     libpq's message is kept, only a fixed one.
 * Every occurrence of each is replaced by "***". The connection string
 * itself is never part of the result. */
#ifndef TALLY_REDACT_H
#define TALLY_REDACT_H

#include <stddef.h>

/* The marker that stands for a secret in a redacted message. */
#define REDACT_MARK	"***"

/* Copies msg (NULL: empty) to out (size bytes, always terminated) with
 * the secrets of conninfo (DATABASE_URL's value: a connection string, a
 * URI or a database name; NULL: none) and of PGPASSWORD replaced. When
 * conninfo does not parse, or there is no memory to find the secrets,
 * out holds a fixed message instead. Returns out. */
const char	*redact_conn_error(const char *conninfo, const char *msg,
		    char *out, size_t size);

#endif
