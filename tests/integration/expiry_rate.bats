#!/usr/bin/env bats
# tally - removal of expired Idempotency-Keys keeps up with any rate of
# new keys: a round goes on until it has caught up (not 100 statements of
# 1000 keys a minute, below what a keyed load inserts), a restarted
# tally-write catches up at once, and a shutdown does not wait for a
# round to finish: the thread looks at the stop flag before each
# statement. One process, a retention of an hour (so a round a minute).

load ../lib/helpers
load ../lib/faults

setup_file() {
	export TALLY_IDEMPOTENCY_RETENTION=3600 TALLY_PROCESSES=1
	tally_stack_start
}

teardown_file() {
	tally_stack_stop
}

# expired_keys N: adds N keys that expired an hour ago.
expired_keys() {
	psql_tally "INSERT INTO tally_idempotency_keys (key, value, created_at)
		SELECT 'expired-' || g || '-$RANDOM', g, now() - interval '2 hours'
		FROM generate_series(1, $1) AS g" >/dev/null
}

# restart_write: stops tally-write (SIGTERM to its parent process: it
# exits 0, so its keeper loop ends too) and starts it again. Sets
# OLD_PARENT.
restart_write() {
	local keeper
	keeper=$(stack_pid write)
	OLD_PARENT=$(responder_parent write)
	kill -TERM "$OLD_PARENT"
	wait_until 60 none_alive "$OLD_PARENT"
	wait_until 10 pid_gone "$keeper"
	stack_responder_start write
	wait_until 20 write_parent_up
}

# write_parent_up: true when tally-write runs again.
write_parent_up() { [[ -n $(responder_parent write) ]]; }

# keys_settled_below N: true when fewer than N keys are left and none went
# for 3 s (the round under way has ended).
keys_settled_below() {
	local n
	n=$(keys_in_table)
	((n < $1)) || return 1
	sleep 3
	[[ $(keys_in_table) == "$n" ]]
}
deletes_recorded() {
	[[ $(psql_tally 'SELECT count(*) FROM tally_test_deletes') -gt 0 ]]
}

# expiry_backend: the pid of the expiry thread's database session.
expiry_backend() {
	psql_tally "SELECT pid FROM pg_stat_activity
		WHERE application_name = 'tally-write-expiry' LIMIT 1"
}

@test "300k expired keys are all removed in one round, at once after a restart" {
	local t0
	expired_keys 300000
	assert_equal "$(keys_in_table)" 300000
	t0=$(now)
	restart_write
	# the first round's deletes come and stop (the next round is a
	# minute away): it has left none
	wait_until 120 keys_settled_below 300000
	echo "# 300000 expired keys: $(keys_in_table) left $(seconds_since "$t0") s after the restart began" >&3
	assert_equal "$(keys_in_table)" 0
}

@test "a shutdown waits for the delete under way, not for the rest of the round" {
	local pid t_stop late
	# every delete statement takes 0.3 s and is recorded (by the test's
	# function, as the superuser that made the table: the responders'
	# role may not write it)
	psql_tally "CREATE TABLE tally_test_deletes (pid integer, n bigint,
			at timestamptz DEFAULT clock_timestamp());
		CREATE FUNCTION tally_test_slow_delete() RETURNS trigger
		LANGUAGE plpgsql SECURITY DEFINER AS \$\$BEGIN
			PERFORM pg_sleep(0.3);
			INSERT INTO tally_test_deletes (pid, n)
				SELECT pg_backend_pid(), count(*) FROM old_rows;
			RETURN NULL;
		END\$\$;
		CREATE TRIGGER tally_test_slow_delete AFTER DELETE ON tally_idempotency_keys
		REFERENCING OLD TABLE AS old_rows
		FOR EACH STATEMENT EXECUTE FUNCTION tally_test_slow_delete()"
	expired_keys 200000
	restart_write
	# a round is under way (the next would be a minute away)
	wait_until 90 deletes_recorded
	pid=$(expiry_backend)
	[[ -n $pid ]]
	t_stop=$(psql_tally "SELECT clock_timestamp()")
	restart_write
	late=$(psql_tally "SELECT count(*) FROM tally_test_deletes
		WHERE pid = $pid AND at > '$t_stop'")
	echo "# delete statements the stopping process finished after SIGTERM: $late" >&3
	# the one under way, and one begun before the worker reached its
	# stop hook; the rest of the round would be about a hundred
	((late <= 5))
	psql_tally "DROP TRIGGER tally_test_slow_delete ON tally_idempotency_keys;
		DROP FUNCTION tally_test_slow_delete(); DROP TABLE tally_test_deletes"
}
