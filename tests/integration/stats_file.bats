#!/usr/bin/env bats
# tally - the shared statistics file ($TALLY_RUN_DIR/stats): truncated
# under load, the service carries on by itself (the process that touches
# the short file extends it again, in its SIGBUS handler, and no process
# dies); a symbolic link or a file others may
# write planted in its place is refused with a clear error, left alone,
# and the responders keep serving.

load ../lib/helpers
load ../lib/faults

setup_file() {
	tally_stack_start
}

teardown_file() {
	load_stop_all
	tally_stack_stop
}

# every_path_answers: true when every API path answers 200 once.
every_path_answers() {
	local path
	for path in /time /read /healthz /livez; do
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$TALLY_URL$path") == 200 ]] ||
			return 1
	done
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$TALLY_INTERNAL_URL/metrics") == 200 ]] ||
		return 1
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -d '' "$TALLY_URL/write") == 200 ]]
}

# stats_size: the size of the stats file, in bytes.
stats_size() {
	stat -c %s "$STACK_DIR/run/stats"
}

@test "the stats file truncated under load: every path answers again by itself, and no process dies" {
	local full before t0
	full=$(stats_size)
	((full > 0))
	before=$(responder_pids)
	load_start truncated /write POST 4
	t0=$(now)
	stack_as_user truncate -s 0 "$STACK_DIR/run/stats"
	# the processes that touch the short file extend it again and go on
	wait_until 30 every_path_answers
	echo "# every path answered again $(seconds_since "$t0") s after the truncation" >&3
	load_stop truncated
	assert_equal "$(stats_size)" "$full"
	wait_until 10 grep -q 'the shared stats file had been truncated; extended it again' \
		"$STACK_LOG_DIR"/*.log
	# the same processes serve, then and from now on
	for _ in 1 2 3 4 5; do
		every_path_answers
	done
	sleep 2
	every_path_answers
	assert_equal "$(responder_pids)" "$before"
	http_internal GET /metrics
	assert_equal "$HTTP_STATUS" 200
	grep -q '^http_requests_total{path="/time"' <<<"$HTTP_BODY"
	grep -q '^tally_stats_created_time_seconds ' <<<"$HTTP_BODY"
}

# replace_worker NAME: kills one worker of NAME; waits for its successor.
replace_worker() {
	local parent workers worker
	parent=$(responder_parent "$1")
	workers=$(responder_workers "$1")
	worker=$(head -1 <<<"$workers")
	kill -KILL "$worker"
	wait_until 10 none_alive "$worker"
	wait_until 10 responder_has_workers "$1" "$parent" "$(wc -l <<<"$workers")"
}

@test "a symbolic link or a file others may write in place of the stats file is refused, with a clear error" {
	local victim="$STACK_DIR/run/victim"
	stack_as_user sh -c "printf 'keep me' >'$victim'"
	stack_as_user rm -f "$STACK_DIR/run/stats"
	stack_as_user ln -s "$victim" "$STACK_DIR/run/stats"
	replace_worker time
	wait_until 10 grep -q 'it is a symbolic link: refused' "$STACK_LOG_DIR/time.log"
	# the link's target is untouched, and the responder serves
	assert_equal "$(cat "$victim")" "keep me"
	http GET /time
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(cat "$victim")" "keep me"

	stack_as_user rm -f "$STACK_DIR/run/stats"
	stack_as_user sh -c "umask 0; printf '' >'$STACK_DIR/run/stats'; chmod 0666 '$STACK_DIR/run/stats'"
	replace_worker read
	wait_until 10 grep -q 'mode allows more than 0660' "$STACK_LOG_DIR/read.log"
	assert_equal "$(stats_size)" 0
	http GET /read
	assert_equal "$HTTP_STATUS" 200

	# a file of its own making is taken again
	stack_as_user rm -f "$STACK_DIR/run/stats"
	replace_worker healthz
	wait_until 10 test -s "$STACK_DIR/run/stats"
	http GET /healthz
	assert_equal "$HTTP_STATUS" 200
}
