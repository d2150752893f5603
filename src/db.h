/* tally - db: one PostgreSQL connection with prepared statements, every
 * wait bounded. libpq reads the configuration itself: DATABASE_URL (a
 * connection string or URI, several hosts allowed) or the PG* variables.
 * Connects lazily, pins the session (statement_timeout, read committed),
 * reconnects with backoff after any failure, and logs database error text
 * (never the password); callers only learn that the database is
 * unavailable. Not thread-safe: one user at a time. */
#ifndef TALLY_DB_H
#define TALLY_DB_H

#include <libpq-fe.h>

#include "stats.h"
#include "settings.h"

struct db_statement {
	const char		*name;
	const char		*sql;
	int			 nparams;
	enum stats_stmt	 metric;
};

struct db;

/* Returns a handle that will prepare stmts (kept by reference) on each
 * connection, or NULL if out of memory. Does not connect. */
struct db	*db_new(const struct settings *s, const char *appname,
		    const struct db_statement *stmts, size_t nstmts);
void		 db_free(struct db *db);

/* Makes sure there is a connection to send on: the one held if it is
 * still alive, else a new one (at most the connect timeout per host, and
 * not at all for a short backoff after a failed attempt). Returns 0, or
 * -1 after logging why. db_exec calls it too. */
int		 db_ready(struct db *db);

/* The longest db_exec can take once connected: the statement timeout
 * plus the client's margin. */
unsigned int	 db_wait_bound_ms(const struct db *db);

/* Runs a prepared statement with text parameters: the server cancels it
 * after the configured timeout (statement_timeout), the client gives up a
 * margin later. Returns 0 with *res (PQclear it) holding rows or a command
 * result, once every result has come and all were good (an error at
 * COMMIT fails it too); or -1 when the database is unavailable or the
 * statement failed. The connection is then dropped, and the log line says
 * whether the transaction rolled back or its outcome is unknown (no answer
 * in time, a broken connection, a warning at commit). */
int		 db_exec(struct db *db, const struct db_statement *stmt,
		    const char *const *values, PGresult **res);
/* The same; once the statement is sent, calls meanwhile(arg) (if not
 * NULL) before it waits for the answer. */
int		 db_exec_meanwhile(struct db *db,
		    const struct db_statement *stmt, const char *const *values,
		    PGresult **res, void (*meanwhile)(void *), void *arg);

/* Logs conn's notices from the server as JSON (libpq would print them
 * raw on stderr): warnings, and errors that arrive while no statement
 * runs ("terminating connection due to administrator command"). */
void		 db_log_notices(PGconn *conn);

/* Connects as configured by DATABASE_URL and PG*, adding connect_timeout
 * and application_name unless they are set. Blocks for at most the
 * connect timeout per host. Check the result with PQstatus. */
PGconn		*db_connect_env(const char *appname,
		    unsigned int connect_timeout_s);

/* The error text of conn (NULL: out of memory), fit for a log: every
 * secret of DATABASE_URL and PGPASSWORD left out as redact.h says (a
 * fixed message when DATABASE_URL does not parse). Returns a
 * thread-local buffer. */
const char	*db_conn_error(const PGconn *conn);

#endif
