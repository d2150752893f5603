/* tally-migrate - applies the schema: every NNN_name.sql file of the
 * schema directory not yet recorded in tally_schema_migrations, in name
 * order, each in its own transaction. Safe to run again and from several
 * places at once (an advisory lock serialises runs). With --grant-to ROLE
 * (or TALLY_RUNTIME_ROLE), then gives the role the responders log in as
 * exactly their privileges (sql/006_runtime_role.sql). Exit 0 when the
 * schema is current, 1 on any error (the message says which file). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"

#ifndef TALLY_SQL_DIR
#define TALLY_SQL_DIR	"/usr/local/share/tally/sql"
#endif
/* pg_advisory_lock key: "tally" in ASCII. */
#define MIGRATE_LOCK	"495874312057"

static PGconn	*conn;

static const struct option	longopts[] = {
	{ "dir", required_argument, NULL, 'd' },
	{ "grant-to", required_argument, NULL, 'g' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static void
fail(const char *what, const char *file)
{
	char	msg[512];
	size_t	len;

	snprintf(msg, sizeof(msg), "%s", db_conn_error(conn));
	len = strlen(msg);
	while (len > 0 && msg[len - 1] == '\n')
		msg[--len] = '\0';
	log_fatal(what, "file", file, "error", msg, NULL);
}

static void
exec_ok(const char *sql, const char *file)
{
	PGresult	*r = PQexec(conn, sql);
	ExecStatusType	 st = PQresultStatus(r);

	PQclear(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		fail("migration failed", file);
}

static char *
read_file(const char *dir, const char *name)
{
	char	 path[4096];
	char	*buf;
	FILE	*f;
	long	 size;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "r")) == NULL)
		log_fatal("cannot open schema file", "file", path, "error",
		    strerror(errno), NULL);
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)size + 1)) == NULL ||
	    fread(buf, 1, (size_t)size, f) != (size_t)size)
		log_fatal("cannot read schema file", "file", path, NULL);
	buf[size] = '\0';
	fclose(f);
	return buf;
}

static int
is_migration(const struct dirent *d)
{
	size_t	len = strlen(d->d_name);

	return len > 8 && d->d_name[0] >= '0' && d->d_name[0] <= '9' &&
	    strcmp(d->d_name + len - 4, ".sql") == 0;
}

static int
applied(const char *version)
{
	const char	*params[1] = { version };
	PGresult	*r;
	int		 n;

	r = PQexecParams(conn, "SELECT 1 FROM tally_schema_migrations "
	    "WHERE version = $1", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		fail("cannot read tally_schema_migrations", version);
	}
	n = PQntuples(r);
	PQclear(r);
	return n > 0;
}

static void
apply(const char *dir, const char *name)
{
	const char	*params[1] = { name };
	char		*sql;
	PGresult	*r;

	sql = read_file(dir, name);
	exec_ok("BEGIN", name);
	exec_ok(sql, name);
	r = PQexecParams(conn, "INSERT INTO tally_schema_migrations (version) "
	    "VALUES ($1)", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		PQclear(r);
		fail("cannot record the migration", name);
	}
	PQclear(r);
	exec_ok("COMMIT", name);
	free(sql);
	log_info("applied", "file", name, NULL);
}

/* Gives the runtime role exactly its privileges (sql/006_runtime_role.sql
 * says which), in a transaction of its own. */
static void
grant_runtime(const char *role)
{
	const char	*params[1] = { role };
	PGresult	*r;

	r = PQexecParams(conn, "SELECT tally_grant_runtime($1)", 1, NULL,
	    params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		PQclear(r);
		fail("cannot grant the runtime role its privileges", NULL);
	}
	PQclear(r);
	log_info("runtime role granted its privileges", "role", role, NULL);
}

/* Prints the usage on f; returns the exit status: 0 for stdout (--help),
 * 2 for stderr (a wrong command line). */
static int
usage(FILE *f)
{
	fprintf(f, "usage: tally-migrate [--dir SCHEMA_DIR] [--grant-to ROLE] "
	    "| --help | --version\n"
	    "Applies tally's schema to the database named by DATABASE_URL or "
	    "the PG* variables,\nas the role that owns it; then gives ROLE "
	    "(default: TALLY_RUNTIME_ROLE, if set),\nthe role the responders "
	    "log in as, exactly the privileges they use.\n"
	    "See tally-migrate(8).\n");
	return f == stdout ? 0 : 2;
}

int
main(int argc, char **argv)
{
	struct dirent	**files;
	const char	 *dir = getenv("TALLY_SQL_DIR");
	const char	 *runtime = getenv("TALLY_RUNTIME_ROLE");
	int		  n, i, ch, done = 0;

	log_init("tally-migrate");
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1)
		switch (ch) {
		case 'd':
			dir = optarg;
			break;
		case 'g':
			runtime = optarg;
			break;
		case 'V':
			if (argc != 2)
				return usage(stderr);
			printf("tally-migrate %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			return usage(argc == 2 ? stdout : stderr);
		default:
			return usage(stderr);
		}
	if (optind != argc)
		return usage(stderr);
	if (dir == NULL || *dir == '\0')
		dir = TALLY_SQL_DIR;
	if ((n = scandir(dir, &files, is_migration, alphasort)) < 0)
		log_fatal("cannot list the schema directory", "dir", dir,
		    "error", strerror(errno), NULL);
	conn = db_connect_env("tally-migrate", 10);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		fail("cannot connect to the database", NULL);
	exec_ok("SET statement_timeout = '60s'", NULL);
	exec_ok("SET lock_timeout = '30s'", NULL);
	exec_ok("SET client_min_messages = warning", NULL);
	exec_ok("SELECT pg_advisory_lock(" MIGRATE_LOCK ")", NULL);
	exec_ok("CREATE TABLE IF NOT EXISTS tally_schema_migrations ("
	    "version text PRIMARY KEY, "
	    "applied_at timestamptz NOT NULL DEFAULT now())", NULL);
	for (i = 0; i < n; i++) {
		if (!applied(files[i]->d_name)) {
			apply(dir, files[i]->d_name);
			done++;
		}
		free(files[i]);
	}
	free(files);
	if (runtime != NULL && *runtime != '\0')
		grant_runtime(runtime);
	exec_ok("SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", NULL);
	PQfinish(conn);
	log_info(done > 0 ? "schema updated" : "schema already current",
	    NULL);
	return 0;
}
