#!/usr/bin/env bats
# tally - the private cluster splits privileges: the responders log in as
# tally_app, which can run their statements and nothing else (no DROP, no
# TRUNCATE, no CREATE, no COPY ... TO PROGRAM); tally-migrate runs as
# tally_owner and grants tally_app again, idempotently; every role gives
# its password (scram-sha-256), kept in 0600 files, never on a command
# line.

load ../lib/helpers

# refused SQL: psql as the runtime role fails with "permission denied"
# (or "must be owner"), and nothing of it happened.
refused() {
	run psql_runtime "$1"
	assert_failure
	assert_output --regexp 'permission denied|must be owner|must be superuser|must be a member'
}

@test "the responders log in as tally_app: not a superuser, not the owner" {
	http POST /write -d ''
	[ "$HTTP_STATUS" = 200 ]
	assert_equal "$(psql_tally "SELECT DISTINCT usename FROM pg_stat_activity
		WHERE application_name LIKE 'tally-%'")" tally_app
	assert_equal "$(psql_tally "SELECT rolsuper OR rolcreaterole OR rolcreatedb
		OR rolbypassrls FROM pg_roles WHERE rolname = 'tally_app'")" f
	assert_equal "$(psql_tally "SELECT pg_get_userbyid(datdba) FROM pg_database
		WHERE datname = 'tally'")" tally_owner
	assert_equal "$(psql_tally "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class
		WHERE relname LIKE 'tally_%' AND relkind = 'r'")" tally_owner
}

@test "tally_app cannot drop, truncate, create, replace tally's function or run a program" {
	local marker=$BATS_TEST_TMPDIR/ran functions
	functions="SELECT string_agg(proname || md5(prosrc), ',' ORDER BY proname)
		FROM pg_proc WHERE proname LIKE 'tally_%'"
	functions=$(psql_tally "$functions")
	refused "DROP TABLE tally_idempotency_keys"
	refused "DROP TABLE tally_counter"
	refused "TRUNCATE tally_counter"
	refused "TRUNCATE tally_idempotency_keys"
	refused "DELETE FROM tally_counter"
	refused "CREATE TABLE tally_evil (x int)"
	refused "CREATE TEMPORARY TABLE tally_evil (x int)"
	refused "CREATE FUNCTION tally_evil() RETURNS int LANGUAGE sql AS 'SELECT 1'"
	refused "CREATE OR REPLACE FUNCTION tally_increment_keyed(unkeyed bigint,
		keys text[], retention_s integer) RETURNS TABLE (key text, value bigint,
		replayed boolean) LANGUAGE sql AS 'SELECT NULL::text, 0::bigint, false'"
	refused "CREATE OR REPLACE FUNCTION tally_count_keyed(unkeyed bigint,
		keys text[], retention_s integer, max_keys bigint) RETURNS SETOF record
		LANGUAGE sql AS 'SELECT NULL::record'"
	refused "ALTER TABLE tally_counter ADD COLUMN evil int"
	refused "ALTER FUNCTION tally_increment_keyed(bigint, text[], integer) RESET ALL"
	refused "CREATE SCHEMA tally_evil"
	refused "SELECT * FROM tally_schema_migrations"
	refused "COPY (SELECT 1) TO PROGRAM 'touch $marker'"
	refused "SELECT tally_grant_runtime('tally_app')"
	[ ! -e "$marker" ]
	# and everything is as it was
	assert_equal "$(psql_tally "SELECT count(*) FROM pg_class WHERE relname LIKE 'tally_evil%'")" 0
	assert_equal "$(psql_tally "SELECT count(*) FROM pg_proc WHERE proname = 'tally_evil'")" 0
	assert_equal "$(psql_tally "SELECT string_agg(proname || md5(prosrc), ',' ORDER BY proname)
		FROM pg_proc WHERE proname LIKE 'tally_%'")" "$functions"
}

@test "tally_app can run every statement the responders send" {
	local before
	before=$(counter_value)
	http POST /write -d '' -H 'Idempotency-Key: privileges-1'
	[ "$HTTP_STATUS" = 200 ]
	http POST /write -d '' -H 'Idempotency-Key: privileges-1'
	[ "$HTTP_STATUS" = 200 ]
	assert_equal "$(header idempotent-replayed)" true
	http GET /read
	[ "$HTTP_STATUS" = 200 ]
	# a named counter: created (INSERT), counted, keyed, read
	http POST /write/privileges/named -d '' -H 'Idempotency-Key: privileges-2'
	assert_equal "$HTTP_BODY" '{"counter":1}'
	http POST /write/privileges/named -d ''
	assert_equal "$HTTP_BODY" '{"counter":2}'
	http GET /read/privileges/named
	assert_equal "$HTTP_BODY" '{"counter":2}'
	http GET /healthz
	[ "$HTTP_STATUS" = 200 ]
	assert_equal "$(counter_value)" $((before + 1))
	# the expiry statement (src/idempotency.c), which no request sends
	psql_runtime "DELETE FROM tally_idempotency_keys WHERE key IN (
		SELECT key FROM tally_idempotency_keys WHERE key = 'privileges-1'
		ORDER BY created_at LIMIT 1000 FOR UPDATE SKIP LOCKED)"
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys
		WHERE key = 'privileges-1'")" 0
}

@test "tally-migrate again grants the same privileges; it refuses the owner or a superuser as the runtime role" {
	local acl
	acl=$(cat <<-'SQL'
		SELECT string_agg(c.relname || coalesce(c.relacl::text, ''), ',' ORDER BY c.relname)
		    || (SELECT string_agg(p.proname || coalesce(p.proacl::text, ''), ',' ORDER BY p.proname)
		          FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace)
		  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
	SQL
	)
	local before
	before=$(psql_tally "$acl")
	run stack_migrate
	assert_success
	assert_output --partial '"msg":"runtime role granted its privileges","role":"tally_app"'
	assert_equal "$(psql_tally "$acl")" "$before"
	# rights given to tally_app or PUBLIC by hand are taken back
	psql_tally "GRANT ALL ON tally_counter, tally_schema_migrations TO tally_app;
		GRANT ALL ON tally_idempotency_keys TO PUBLIC;
		GRANT EXECUTE ON FUNCTION tally_grant_runtime(name) TO PUBLIC"
	refute [ "$(psql_tally "$acl")" = "$before" ]
	run stack_migrate
	assert_success
	assert_equal "$(psql_tally "$acl")" "$before"
	for role in tally_owner postgres; do
		run env DATABASE_URL="$(stack_pg_owner_url)" "$TALLY_BIN_DIR/tally-migrate" \
			--dir "$TALLY_SQL_DIR" --grant-to "$role"
		assert_failure
		assert_output --regexp "runtime role .{1,2}$role.{1,2} is(, or uses the privileges of,| a superuser)"
	done
}

@test "every role of the cluster gives its password; the files are 0600, no password is on a command line" {
	local role sock file pw
	sock=$(stack_pg_socket)
	for role in postgres tally_owner tally_app; do
		# as the user PostgreSQL runs as, and as the responders' user
		run stack_as_user psql -X -w -d "postgresql://$role@/tally?host=$sock&passfile=/dev/null" -c 'SELECT 1'
		assert_failure
		assert_output --partial 'no password supplied'
		run stack_as_user env PGPASSWORD=wrong psql -X -w -d "postgresql://$role@/tally?host=$sock" -c 'SELECT 1'
		assert_failure
		assert_output --partial 'password authentication failed'
		file=$(stack_pg_passfile "$role")
		assert_equal "$(stat -c %a "$file")" 600
		pw=$(sed 's/^[^:]*:[^:]*:[^:]*:[^:]*://' "$file")
		[ "${#pw}" -ge 32 ]
		run ps -eo args=
		refute_output --partial "$pw"
		assert_equal "$(grep -rlF -- "$pw" "$STACK_LOG_DIR" || true)" ""
		# no responder holds it in its environment
		for pid in $(pgrep -f "$TALLY_BIN_DIR/tally-" || true); do
			run grep -aF -- "$pw" "/proc/$pid/environ"
			assert_failure
		done
	done
	assert_equal "$(stat -c %a "$(stack_pg_auth)")" 711
	assert_equal "$(stat -c %U "$(stack_pg_passfile tally_app)")" "$STACK_USER"
	# the roles' passwords are kept as SCRAM verifiers, not in clear
	assert_equal "$(psql_tally "SELECT bool_and(rolpassword LIKE 'SCRAM-SHA-256\$%')
		FROM pg_authid WHERE rolname IN ('postgres', 'tally_owner', 'tally_app')")" t
	# and the cluster trusts no local user
	run grep -E '^[^#]*trust' "$(stack_pg_data)/pg_hba.conf"
	assert_failure
}
