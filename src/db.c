/* tally - db: one PostgreSQL connection with prepared statements. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "redact.h"
#include "timestamp.h"

#define BACKOFF_MIN_MS	50
#define BACKOFF_MAX_MS	1000

/*
 * The client waits this much longer than statement_timeout: a statement
 * that runs too long is then cancelled by the server, which rolls it back
 * and says so, before the client gives up on an answer whose outcome it
 * could not know. COMMIT (and its wait for a synchronous standby) is not
 * under statement_timeout: only the client's deadline bounds it.
 */
#define DEADLINE_MARGIN_MS(timeout_ms)	((timeout_ms) / 4 + 250)

/* The "outcome" of a failed statement in the log. */
#define OUTCOME_ROLLED_BACK	"rolled back"
#define OUTCOME_UNKNOWN		"unknown"

struct db {
	PGconn				*conn;
	const struct db_statement	*stmts;
	size_t				 nstmts;
	const char			*appname;
	unsigned int			 timeout_ms;
	unsigned int			 connect_timeout_s;
	int64_t				 next_attempt_ms;
	unsigned int			 backoff_ms;
	int				 connected_before;
	int				 warned;	/* during this statement */
};

/* libpq's messages end in a newline; the log wants one line. */
static void
one_line(const char *detail, char *msg, size_t size)
{
	size_t	len;

	snprintf(msg, size, "%s", detail != NULL ? detail : "");
	len = strlen(msg);
	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
		msg[--len] = '\0';
}

static void
db_log_failure(const char *what, const char *detail)
{
	char	msg[512];

	one_line(detail, msg, sizeof(msg));
	log_error(what, "error", msg, NULL);
}

/* Logs a failed statement with what became of its transaction. */
static void
db_log_outcome(const char *what, const char *stmt, const char *outcome,
    const char *detail)
{
	char	msg[512];

	one_line(detail, msg, sizeof(msg));
	log_error(what, "statement", stmt, "outcome", outcome,
	    "error", msg, NULL);
}

struct db *
db_new(const struct settings *s, const char *appname,
    const struct db_statement *stmts, size_t nstmts)
{
	struct db	*db = calloc(1, sizeof(*db));

	if (db == NULL)
		return NULL;
	db->stmts = stmts;
	db->nstmts = nstmts;
	db->appname = appname;
	db->timeout_ms = s->db_timeout_ms;
	db->connect_timeout_s = s->connect_timeout_s;
	db->backoff_ms = BACKOFF_MIN_MS;
	return db;
}

static void
db_drop(struct db *db)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	free(db);
}

/*
 * Waits until the connection's socket is ready for what libpq needs,
 * or the deadline passes. It looks at least once, so an answer that came
 * before the deadline is taken even when the caller was busy until after
 * it. Returns 0, or -1 on timeout or error.
 */
static int
db_wait(struct db *db, short events, int64_t deadline)
{
	struct pollfd	pfd;
	int64_t		left;
	int		rc;

	pfd.fd = PQsocket(db->conn);
	pfd.events = events;
	for (;;) {
		left = deadline - monotonic_ms();
		rc = poll(&pfd, 1, left > 0 ? (int)left : 0);
		if (rc > 0)
			return 0;
		if (rc == 0 || errno != EINTR)
			return -1;
	}
}

static int
result_ok(const PGresult *r)
{
	ExecStatusType	st;

	if (r == NULL)
		return 0;
	st = PQresultStatus(r);
	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* Sends what libpq has buffered. Returns 0, or -1 on timeout (with
 * *timed_out set) or a broken connection. */
static int
db_flush(struct db *db, int64_t deadline, int *timed_out)
{
	int	rc;

	*timed_out = 0;
	while ((rc = PQflush(db->conn)) == 1)
		if (db_wait(db, POLLIN | POLLOUT, deadline) != 0) {
			*timed_out = 1;
			return -1;
		} else if (PQconsumeInput(db->conn) == 0)
			return -1;
	return rc;
}

/*
 * Collects every result of one command, until libpq has none left (the
 * server is ready for the next command). An error that comes after the
 * rows, such as a COMMIT that failed (a deferred constraint, a
 * serialization failure), is what counts: the rows then belong to a
 * transaction that did not commit. Returns the first error result, else
 * the first result (the caller PQclears it), or NULL on timeout or a
 * broken connection, with *timed_out set for the former.
 */
static PGresult *
db_collect(struct db *db, int64_t deadline, int *timed_out)
{
	PGresult	*keep = NULL, *r;

	*timed_out = 0;
	for (;;) {
		while (PQisBusy(db->conn)) {
			if (db_wait(db, POLLIN, deadline) != 0) {
				*timed_out = 1;
				PQclear(keep);
				return NULL;
			}
			if (PQconsumeInput(db->conn) == 0) {
				PQclear(keep);
				return NULL;
			}
		}
		if ((r = PQgetResult(db->conn)) == NULL)
			return keep;
		if (keep == NULL)
			keep = r;
		else if (result_ok(keep) && !result_ok(r)) {
			PQclear(keep);
			keep = r;
		} else
			PQclear(r);
	}
}

/* Runs one setup command (no parameters) on a new connection. */
static int
db_setup_command(struct db *db, const char *sql, const struct db_statement *st,
    int64_t deadline)
{
	PGresult	*r;
	int		 timed_out, ok;

	if (st != NULL)
		ok = PQsendPrepare(db->conn, st->name, st->sql, st->nparams,
		    NULL);
	else
		ok = PQsendQuery(db->conn, sql);
	if (!ok)
		return -1;
	r = db_flush(db, deadline, &timed_out) == 0 ?
	    db_collect(db, deadline, &timed_out) : NULL;
	ok = result_ok(r);
	if (!ok)
		db_log_failure("database: setting up the connection failed",
		    r != NULL ? PQresultErrorMessage(r) :
		    PQerrorMessage(db->conn));
	PQclear(r);
	return ok ? 0 : -1;
}

PGconn *
db_connect_env(const char *appname, unsigned int connect_timeout_s)
{
	const char	*keys[4], *vals[4];
	char		 timeout[16];
	int		 n = 0;

	/* Defaults first: DATABASE_URL's own settings override them, and
	 * what it leaves out libpq takes from the PG* variables. */
	if (getenv("PGCONNECT_TIMEOUT") == NULL) {
		snprintf(timeout, sizeof(timeout), "%u", connect_timeout_s);
		keys[n] = "connect_timeout";
		vals[n++] = timeout;
	}
	if (getenv("PGAPPNAME") == NULL) {
		keys[n] = "application_name";
		vals[n++] = appname;
	}
	keys[n] = "dbname";
	vals[n++] = getenv("DATABASE_URL");
	keys[n] = NULL;
	vals[n] = NULL;
	return PQconnectdbParams(keys, vals, 1);
}

/*
 * libpq hands the server's notices here (it would print them raw on
 * stderr): they are logged as JSON. A WARNING makes the statement's
 * outcome unknown: "canceling wait for synchronous replication" comes with
 * a COMMIT that succeeded on the primary but may be missing on the standby.
 */
static const char *
notice_log(const PGresult *r)
{
	const char	*severity;

	severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	log_warn("database: notice from the server", "severity", severity,
	    "notice", PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), NULL);
	return severity;
}

static void
db_notice(void *arg, const PGresult *r)
{
	struct db	*db = arg;
	const char	*severity;

	severity = notice_log(r);
	if (severity != NULL && strcmp(severity, "WARNING") == 0)
		db->warned = 1;
}

static void
notice_only_log(void *arg, const PGresult *r)
{
	(void)arg;
	(void)notice_log(r);
}

void
db_log_notices(PGconn *conn)
{
	PQsetNoticeReceiver(conn, notice_only_log, NULL);
}

const char *
db_conn_error(const PGconn *conn)
{
	static __thread char	buf[512];

	return redact_conn_error(getenv("DATABASE_URL"),
	    conn != NULL ? PQerrorMessage(conn) : "out of memory", buf,
	    sizeof(buf));
}

static int
db_connect(struct db *db)
{
	char		 sql[160];
	int64_t		 deadline;
	size_t		 i;

	if (monotonic_ms() < db->next_attempt_ms)
		return -1;	/* failed a moment ago: answer fast */
	db->conn = db_connect_env(db->appname, db->connect_timeout_s);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		db_log_failure("database: cannot connect",
		    db_conn_error(db->conn));
		goto fail;
	}
	if (PQsetnonblocking(db->conn, 1) != 0)
		goto fail;
	PQsetNoticeReceiver(db->conn, db_notice, db);
	deadline = monotonic_ms() + db->timeout_ms +
	    DEADLINE_MARGIN_MS(db->timeout_ms);
	/* The session runs as tally is designed for, whatever the database's
	 * or the role's defaults: every statement in read committed (the
	 * counter's row lock orders concurrent increments; serializable
	 * would fail them instead), none longer than the timeout. */
	snprintf(sql, sizeof(sql), "SET statement_timeout = %u; "
	    "SET default_transaction_isolation = 'read committed'",
	    db->timeout_ms);
	if (db_setup_command(db, sql, NULL, deadline) != 0)
		goto fail;
	for (i = 0; i < db->nstmts; i++)
		if (db_setup_command(db, NULL, &db->stmts[i], deadline) != 0)
			goto fail;
	if (db->connected_before)
		stats_db_reconnect();
	db->connected_before = 1;
	db->backoff_ms = BACKOFF_MIN_MS;
	log_info("database: connected", "application_name", db->appname,
	    NULL);
	return 0;
fail:
	stats_db_error(SDBERR_CONNECT);
	db_drop(db);
	db->next_attempt_ms = monotonic_ms() + db->backoff_ms;
	db->backoff_ms = db->backoff_ms * 2 > BACKOFF_MAX_MS ?
	    BACKOFF_MAX_MS : db->backoff_ms * 2;
	return -1;
}

/*
 * A connection the server closed while it sat idle (a restart, a
 * failover) has the server's last message and the end of file waiting
 * on its socket. Reads them without sending anything. Returns 1 if the
 * connection is still usable, 0 if it is gone.
 */
static int
db_idle_alive(struct db *db)
{
	struct pollfd	pfd;
	int		i;

	pfd.fd = PQsocket(db->conn);
	pfd.events = POLLIN;
	for (i = 0; i < 3 && poll(&pfd, 1, 0) > 0; i++)
		if (PQconsumeInput(db->conn) == 0)
			return 0;
	return PQstatus(db->conn) == CONNECTION_OK;
}

/*
 * Whether a failed statement's transaction surely did not commit: the
 * server answered it with an ERROR (not FATAL or worse) and said it was
 * ready for the next command, so it rolled back. Anything else (no
 * answer, a broken connection, an error libpq made up) leaves the
 * outcome unknown.
 */
static int
rolled_back(struct db *db, const PGresult *r)
{
	const char	*severity, *state;

	if (r == NULL || PQresultStatus(r) != PGRES_FATAL_ERROR ||
	    PQstatus(db->conn) != CONNECTION_OK ||
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		return 0;
	severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	return severity != NULL && strcmp(severity, "ERROR") == 0 &&
	    state != NULL && strncmp(state, "08", 2) != 0;
}

/* The connection held is checked without sending anything, so when it
 * is dead nothing was sent on it, and starting afresh is safe. */
int
db_ready(struct db *db)
{
	if (db->conn != NULL && !db_idle_alive(db)) {
		log_info("database: connection closed while idle; reconnecting",
		    NULL);
		db_drop(db);
	}
	return db->conn == NULL ? db_connect(db) : 0;
}

unsigned int
db_wait_bound_ms(const struct db *db)
{
	return db->timeout_ms + DEADLINE_MARGIN_MS(db->timeout_ms);
}

/*
 * After a statement that did not end well (r is its result, or NULL):
 * logs why and whether it was rolled back or its outcome is unknown,
 * counts the error, frees r and drops the connection. Whatever went
 * wrong, the next statement starts on a new connection: it finds the
 * new primary after a failover and no half-read state is left.
 */
static void
db_failed(struct db *db, const struct db_statement *stmt, PGresult *r,
    int timed_out)
{
	if (timed_out)
		db_log_outcome("database: no answer in time", stmt->name,
		    OUTCOME_UNKNOWN, "the client's deadline passed; a COMMIT "
		    "may still be under way");
	else if (result_ok(r))
		db_log_outcome("database: a warning came with the result, so "
		    "its outcome is unknown", stmt->name, OUTCOME_UNKNOWN, NULL);
	else
		db_log_outcome("database: statement failed", stmt->name,
		    rolled_back(db, r) ? OUTCOME_ROLLED_BACK : OUTCOME_UNKNOWN,
		    r != NULL ? PQresultErrorMessage(r) :
		    PQerrorMessage(db->conn));
	stats_db_error(timed_out ? SDBERR_TIMEOUT : SDBERR_QUERY);
	PQclear(r);
	db_drop(db);
}

int
db_exec(struct db *db, const struct db_statement *stmt,
    const char *const *values, PGresult **res)
{
	return db_exec_meanwhile(db, stmt, values, res, NULL, NULL);
}

int
db_exec_meanwhile(struct db *db, const struct db_statement *stmt,
    const char *const *values, PGresult **res, void (*meanwhile)(void *),
    void *arg)
{
	struct timespec	 t0, t1;
	PGresult	*r;
	int64_t		 deadline;
	int		 timed_out;

	*res = NULL;
	if (db_ready(db) != 0)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	deadline = monotonic_ms() + db_wait_bound_ms(db);
	db->warned = 0;
	if (!PQsendQueryPrepared(db->conn, stmt->name, stmt->nparams, values,
	    NULL, NULL, 0)) {
		db_log_outcome("database: cannot send the statement",
		    stmt->name, OUTCOME_ROLLED_BACK, PQerrorMessage(db->conn));
		stats_db_error(SDBERR_QUERY);
		db_drop(db);
		return -1;
	}
	r = NULL;
	if (db_flush(db, deadline, &timed_out) == 0) {
		if (meanwhile != NULL)
			meanwhile(arg);
		r = db_collect(db, deadline, &timed_out);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	stats_db_query(stmt->metric, (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (!result_ok(r) || db->warned) {
		db_failed(db, stmt, r, timed_out);
		return -1;
	}
	*res = r;
	return 0;
}
