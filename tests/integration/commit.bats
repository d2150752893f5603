#!/usr/bin/env bats
# tally - what a POST /write answer says about its commit: an error raised
# at COMMIT is a failure (503, nothing counted, no value handed out twice);
# a database that defaults to serializable does not change how tally
# works; a statement that runs too long is cancelled by the server (rolled
# back, nothing counted) before the client gives up; and a commit that
# waits for a synchronous standby that never answers is answered 503 with
# its outcome unknown: it counts once the wait ends, and a retry with the
# same Idempotency-Key then replays it instead of counting again.

load ../lib/helpers
load ../lib/faults

setup_file() {
	export TALLY_DB_TIMEOUT_MS=1000
	tally_stack_start
}

teardown_file() {
	load_stop_all
	tally_stack_stop
}

# Whatever a test changed goes back, even when it failed half way.
teardown() {
	psql_tally "SET client_min_messages = warning;
		DROP TRIGGER IF EXISTS tally_test_refuse ON tally_counter;
		DROP FUNCTION IF EXISTS tally_test_refuse();
		ALTER DATABASE tally RESET default_transaction_isolation" >/dev/null
	psql_tally "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
	psql_tally "SELECT pg_reload_conf()" >/dev/null
}

# reconnect_all: ends tally's database sessions, so that every responder
# connects again (and takes the database's current defaults).
reconnect_all() {
	psql_tally "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name LIKE 'tally-%'" >/dev/null
}

# write_log_has TEXT: true when the write responder's log holds TEXT.
write_log_has() {
	grep -qF -- "$1" "$STACK_LOG_DIR/write.log"
}

# backend_waits WAIT_EVENT: true when a tally-write session waits on it.
backend_waits() {
	[[ $(psql_tally "SELECT count(*) FROM pg_stat_activity
		WHERE application_name = 'tally-write' AND wait_event = '$1'") -gt 0 ]]
}

# sleeper_holds_lock: true when the session holding the row lock sleeps.
sleeper_holds_lock() {
	[[ $(psql_tally "SELECT count(*) FROM pg_stat_activity
		WHERE wait_event = 'PgSleep'") -gt 0 ]]
}

# counter_is VALUE: true when the database's counter is VALUE.
counter_is() {
	[[ $(counter_value) == "$1" ]]
}

@test "an error raised at COMMIT is answered 503, counts nothing and hands out no value twice" {
	local before
	before=$(counter_value)
	psql_tally "CREATE FUNCTION tally_test_refuse() RETURNS trigger
		LANGUAGE plpgsql AS \$\$BEGIN RAISE EXCEPTION 'refused at commit'; END\$\$;
		CREATE CONSTRAINT TRIGGER tally_test_refuse AFTER UPDATE ON tally_counter
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tally_test_refuse()"
	for _ in 1 2 3; do
		http POST /write -d ''
		assert_equal "$HTTP_STATUS" 503
		assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	done
	write_with_key "commit-refused-$RANDOM"
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$(counter_value)" "$before"
	assert_equal "$(keys_in_table)" 0
	# the database's reason is in the log, with what became of the batch
	write_log_has 'refused at commit'
	write_log_has '"outcome":"rolled back"'

	psql_tally "DROP TRIGGER tally_test_refuse ON tally_counter;
		DROP FUNCTION tally_test_refuse()"
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
	assert_equal "$(counter_value)" "$((before + 1))"
}

@test "a database that defaults to serializable: concurrent writes all succeed, distinct and exact" {
	local initial final out
	psql_tally "ALTER DATABASE tally SET default_transaction_isolation = serializable"
	# a new session gets it (tally pins its own to read committed)
	assert_equal "$(psql_tally 'SHOW default_transaction_isolation')" serializable
	reconnect_all
	initial=$(counter_value)
	out=$(load_out serializable)
	load_start serializable /write POST 8
	sleep 4
	load_stop serializable
	final=$(counter_value)
	psql_tally "ALTER DATABASE tally RESET default_transaction_isolation"
	reconnect_all
	assert_no_lines "answers other than 200" "$(outcomes_unexpected "$out" 200)"
	assert_exact_counts "$out" "$initial" "$final"
	assert_equal "$((final - initial))" "$(outcomes_count "$out" 200)"
	((final - initial > 0))
}

@test "a write blocked past statement_timeout is cancelled by the server: 503, rolled back, not counted" {
	local before holder
	before=$(counter_value)
	# another session holds the counter's row lock for a while
	stack_as_user psql -X -q -d "$DATABASE_URL" -c "BEGIN" \
		-c "SELECT 1 FROM tally_counter WHERE id = 1 FOR UPDATE" \
		-c "SELECT pg_sleep(30)" -c "COMMIT" >/dev/null 2>&1 3>&- &
	holder=$!
	wait_until 10 sleeper_holds_lock
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	# the server said why, so tally knows the increment did not count
	write_log_has 'canceling statement due to statement timeout'
	grep 'canceling statement due to statement timeout' "$STACK_LOG_DIR/write.log" |
		grep -qF '"outcome":"rolled back"'
	psql_tally "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE wait_event = 'PgSleep'" >/dev/null
	wait "$holder" || true
	assert_equal "$(counter_value)" "$before"
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
}

@test "a commit waiting for a synchronous standby that never answers: 503 of unknown outcome, counted once, replayed by its key" {
	local before key="ghost-$RANDOM"
	before=$(counter_value)
	psql_tally "ALTER SYSTEM SET synchronous_standby_names = 'ghost'" >/dev/null
	psql_tally "SELECT pg_reload_conf()" >/dev/null

	# the increment is done and its COMMIT waits for the standby: the
	# client is answered 503 when its deadline passes, outcome unknown
	write_with_key "$key"
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	grep -F 'no answer in time' "$STACK_LOG_DIR/write.log" |
		grep -qF '"outcome":"unknown"'
	backend_waits SyncRep
	# nobody sees it yet
	assert_equal "$(counter_value)" "$before"

	# the next write waits for the counter's row lock, which the waiting
	# commit still holds: the server cancels it, and that one did not count
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 503
	write_log_has 'canceling statement due to statement timeout'

	# the standby requirement goes away: the waiting commit completes
	psql_tally "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null
	psql_tally "SELECT pg_reload_conf()" >/dev/null
	wait_until 10 counter_is "$((before + 1))"
	# the retry with the same key finds it and counts nothing
	write_with_key "$key"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header idempotent-replayed)" true
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
	assert_equal "$(counter_value)" "$((before + 1))"
}

@test "statements that fail under concurrent load: each failure's log line names a request of its own batch" {
	local out start failed
	psql_tally "CREATE FUNCTION tally_test_refuse() RETURNS trigger
		LANGUAGE plpgsql AS \$\$BEGIN RAISE EXCEPTION 'refused at commit'; END\$\$;
		CREATE CONSTRAINT TRIGGER tally_test_refuse AFTER UPDATE ON tally_counter
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tally_test_refuse()"
	out=$(mktemp)
	start=$(wc -l <"$STACK_LOG_DIR/write.log")
	# 32 at a time: the answers of one failed batch are written while
	# the next batch's statement runs, and must not take its log context
	seq 400 | xargs -P 32 -I{} curl -s -o /dev/null -w '%{http_code}\n' \
		--max-time 10 -d '' -H 'X-Request-Id: refused-{}' "$TALLY_URL/write" >"$out"
	assert_equal "$(sort -u "$out")" 503
	failed=$(tail -n +"$((start + 1))" "$STACK_LOG_DIR/write.log" |
		jq -c 'select(.msg == "database: statement failed"
			and (.error | contains("refused at commit")))')
	echo "# $(wc -l <<<"$failed") failed statements for 400 requests" >&3
	# combined: fewer statements than requests, and more than one
	(($(wc -l <<<"$failed") > 1 && $(wc -l <<<"$failed") < 400))
	run jq -e -s 'all(.request_id | type == "string" and startswith("refused-"))' <<<"$failed"
	assert_success
	rm -f "$out"
}
