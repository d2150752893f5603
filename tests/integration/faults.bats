#!/usr/bin/env bats
# tally - faults under load: the database stopped and restarted,
# responder processes killed, ./dev up stopped. Real processes, real damage;
# every load outcome is kept and checked (tests/lib/load.py).

load ../lib/helpers
load ../lib/faults

teardown() {
	load_stop_all
}

teardown_file() {
	local dir
	# a ./dev up that a failed test left running
	if [[ -f $BATS_FILE_TMPDIR/dev.pid ]] && kill -TERM "$(<"$BATS_FILE_TMPDIR/dev.pid")" 2>/dev/null; then
		wait_until 30 pid_gone "$(<"$BATS_FILE_TMPDIR/dev.pid")" || true
	fi
	tally_stack_stop
	if [[ -f $BATS_FILE_TMPDIR/dev-var-dir ]]; then
		dir=$(<"$BATS_FILE_TMPDIR/dev-var-dir")
		rm -rf "$dir" "$dir.log"
	fi
}

# The database goes away under read and write load, comes back 2 s later.
# $1 is pg_ctl's stop mode.
db_outage_under_load() {
	local mode=$1 before initial t_up file slow
	before=$(responder_pids)
	initial=$(counter_value)
	load_start "write-$mode" /write POST 6
	load_start "read-$mode" /read GET 3
	sleep 1
	stack_pg_stop "$mode"
	sleep 1
	http GET /read
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	assert_equal "$(header retry-after)" 1
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	http GET /healthz
	assert_equal "$HTTP_STATUS" 503
	sleep 1
	stack_pg_start
	t_up=$(now)
	# back within 2 s, nothing restarted
	wait_until 2 answers_200 POST /write
	wait_until 2 answers_200 GET /read
	echo "# $mode: served again $(seconds_since "$t_up") s after the database" >&3
	sleep 3
	load_stop "write-$mode"
	load_stop "read-$mode"
	assert_equal "$(responder_pids)" "$before"

	for file in "$(load_out "write-$mode")" "$(load_out "read-$mode")"; do
		# only answers: 200 or the JSON 503, never a hang or a proxy error
		assert_no_lines "not 200 or 503" "$(outcomes_unexpected "$file" '200|503')"
		assert_no_lines "answers without a JSON body" "$(outcomes_without_json "$file" '200|503')"
		(($(outcomes_count "$file" 503) > 0))
		slow=$(outcomes_slowest "$file")
		echo "# $mode: slowest request ${slow}s" >&3
		awk -v s="$slow" 'BEGIN { exit !(s < 5) }'
		# every request that started 2 s after the database was back
		# found it
		assert_equal "$(outcomes_count "$file" 503 "$(awk -v t="$t_up" 'BEGIN { printf "%.6f", t + 2 }')")" 0
	done
	assert_exact_counts "$(load_out "write-$mode")" "$initial" "$(counter_value)"
}

@test "database stopped (pg_ctl -m fast) under load: 503 JSON within 5 s, no responder dies, back within 2 s" {
	db_outage_under_load fast
}

@test "database stopped (pg_ctl -m immediate) under load: 503 JSON within 5 s, no responder dies, back within 2 s" {
	db_outage_under_load immediate
}

# seconds_passed T N: true when N seconds have passed since T.
seconds_passed() {
	awk -v s="$(seconds_since "$1")" -v n="$2" 'BEGIN { exit !(s >= n) }'
}

@test "exactness across two database restarts during 20 s of concurrent writes" {
	local initial t0
	initial=$(counter_value)
	t0=$(now)
	load_start restarts /write POST 12
	sleep 4
	stack_pg_stop fast
	sleep 2
	stack_pg_start
	sleep 5
	stack_pg_stop immediate
	sleep 2
	stack_pg_start
	wait_until 20 seconds_passed "$t0" 20
	load_stop restarts
	local file
	file=$(load_out restarts)
	assert_no_lines "not 200 or 503" "$(outcomes_unexpected "$file" '200|503')"
	# served after each restart
	(($(outcomes_count "$file" 200 "$(awk -v t="$t0" 'BEGIN { printf "%.6f", t + 15 }')") > 0))
	assert_exact_counts "$file" "$initial" "$(counter_value)"
}

@test "a responder worker SIGKILLed under load: only its in-flight requests fail; the responder's parent starts another" {
	local parent old_workers victim initial file clients=8
	parent=$(responder_parent write)
	old_workers=$(responder_workers write)
	victim=$(head -1 <<<"$old_workers")
	initial=$(counter_value)
	load_start kill-worker /write POST "$clients"
	sleep 1
	kill -KILL "$victim"
	# the same parent replaces it; the other responders are untouched
	wait_until 5 responder_has_workers write "$parent" "$(wc -l <<<"$old_workers")"
	run responder_workers write
	refute_line "$victim"
	sleep 1
	load_stop kill-worker
	file=$(load_out kill-worker)
	# each client had at most one request in flight when the worker died
	(($(outcomes_count "$file" '[^2].*') <= clients))
	echo "# failed with the worker: $(outcomes_count "$file" '[^2].*')" >&3
	assert_no_lines "failures other than lighttpd's 500 for a lost backend" \
		"$(outcomes_unexpected "$file" '200|500')"
	grep -q '"msg":"worker process died; starting another".*"signal 9"' "$STACK_LOG_DIR/write.log"
	assert_exact_counts "$file" "$initial" "$(counter_value)"
}

@test "a responder's parent process SIGKILLed under load: the stack's keeper loop starts it again; service continues" {
	local parent old_workers initial t_kill t_back file
	parent=$(responder_parent write)
	old_workers=$(responder_workers write)
	initial=$(counter_value)
	load_start kill-parent /write POST 8
	sleep 1
	t_kill=$(now)
	kill -KILL "$parent"
	# its workers stop with it (parent-death signal), a new parent and
	# workers take the socket, lighttpd finds them again
	wait_until 15 answers_200 POST /write
	t_back=$(now)
	echo "# writes served again $(seconds_since "$t_kill") s after the kill" >&3
	[[ $(responder_parent write) != "$parent" ]]
	# shellcheck disable=SC2086 # one pid a word
	wait_until 15 none_alive $old_workers
	sleep 2
	load_stop kill-parent
	file=$(load_out kill-parent)
	# failures only between the kill and the recovery: lighttpd's 500
	# for the requests in flight, its 503 while the socket had no process
	assert_no_lines "not 200, 500 or 503" "$(outcomes_unexpected "$file" '200|500|503')"
	assert_equal "$(outcomes_count "$file" '[^2].*' 0 "$t_kill")" 0
	assert_equal "$(outcomes_count "$file" '[^2].*' "$t_back")" 0
	(($(outcomes_count "$file" 200 "$t_back") > 0))
	assert_exact_counts "$file" "$initial" "$(counter_value)"
}

# --- ./dev up -------------------------------------------------------------------

# dev_up_start [LAUNCHER...]: runs "./dev up" on the test build, in the
# background (through LAUNCHER, a command that runs its arguments), with
# its state in DEV_VAR_DIR (kept between tests: the cluster is reused) on
# a free port; sets DEV_PID and points TALLY_URL at it.
dev_up_start() {
	if [[ -f $BATS_FILE_TMPDIR/dev-var-dir ]]; then
		DEV_VAR_DIR=$(<"$BATS_FILE_TMPDIR/dev-var-dir")
	else
		DEV_VAR_DIR=$(mktemp -d /tmp/tally-devup.XXXXXX)
		echo "$DEV_VAR_DIR" >"$BATS_FILE_TMPDIR/dev-var-dir"
	fi
	DEV_PORT=$(free_port)
	TALLY_URL="http://127.0.0.1:$DEV_PORT"
	env -u DATABASE_URL -u PGHOST -u STACK_DIR -u STACK_LOG_DIR \
		-u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		TALLY_BUILDDIR="$TALLY_BUILDDIR" TALLY_VAR_DIR="$DEV_VAR_DIR" \
		TALLY_PORT="$DEV_PORT" TALLY_INTERNAL_PORT="$(free_port)" \
		"$@" "$TALLY_SRCDIR/dev" up >>"$DEV_VAR_DIR.log" 2>&1 </dev/null 3>&- &
	DEV_PID=$!
	echo "$DEV_PID" >"$BATS_FILE_TMPDIR/dev.pid"
	wait_until 60 answers_200 GET /read
}

# dev_counter_live: the counter through the running ./dev up.
dev_counter_live() {
	curl -s --max-time 5 "$TALLY_URL/read" | jq -r .counter
}

# How a request the server never took ends, as load.py names it.
NO_ANSWER='ConnectionRefusedError|ConnectionResetError|RemoteDisconnected|BrokenPipeError'

# dev_up_stop: SIGTERM to ./dev up; it must exit 0 within 30 s.
dev_up_stop() {
	local t0 rc=0
	t0=$(now)
	kill -TERM "$DEV_PID"
	if ! wait_until 30 pid_gone "$DEV_PID"; then
		echo "# ./dev up still running 30 s after SIGTERM" >&2
		return 1
	fi
	wait "$DEV_PID" || rc=$?
	rm -f "$BATS_FILE_TMPDIR/dev.pid"
	echo "# ./dev up stopped in $(seconds_since "$t0") s" >&3
	assert_equal "$rc" 0
}

# dev_up_leftovers: prints every process still running with the state
# directory of that ./dev up in its environment (postgres, spawn-fcgi,
# responders, keeper loops all inherit STACK_DIR; lighttpd, which gets
# only its TALLY_* settings, has TALLY_SOCKET_DIR under it).
dev_up_leftovers() {
	local env pid
	grep -lzxF -e "STACK_DIR=$DEV_VAR_DIR" -e "TALLY_SOCKET_DIR=$DEV_VAR_DIR/run" \
		/proc/[0-9]*/environ 2>/dev/null |
		while read -r env; do
			pid=${env#/proc/}
			ps -o pid=,user=,args= -p "${pid%/environ}" || true
		done
}

# dev_up_dead_sockets: fails if a socket ./dev up made still accepts.
dev_up_dead_sockets() {
	local sock
	for sock in "$DEV_VAR_DIR"/run/*.sock "$DEV_VAR_DIR"/pg/socket/.s.PGSQL.*; do
		[[ -S $sock ]] || continue
		if python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
try:
    s.connect(sys.argv[1])
except OSError:
    sys.exit(0)
sys.exit(1)' "$sock"; then
			continue
		fi
		echo "# $sock still accepts connections" >&2
		return 1
	done
}

# dev_counter: the counter in the stopped ./dev up's cluster (started and
# stopped again for the question).
dev_counter() {
	(
		export STACK_DIR=$DEV_VAR_DIR
		unset STACK_LOG_DIR
		stack_pg_start >/dev/null
		stack_as_user psql -X -q -tA -d "$(stack_pg_url)" \
			-c 'SELECT value FROM tally_counter WHERE id = 1'
		stack_pg_stop fast
	)
}

@test "./dev up: a SIGKILLed responder comes back; SIGTERM under load loses no accepted request, leaves nothing" {
	local parent restarted initial t_sig file
	dev_up_start
	# its keeper loop starts a killed responder again
	parent=$(STACK_DIR=$DEV_VAR_DIR responder_parent time)
	[[ -n $parent ]]
	kill -KILL "$parent"
	wait_until 15 answers_200 GET /time
	restarted=$(STACK_DIR=$DEV_VAR_DIR responder_parent time)
	[[ -n $restarted && $restarted != "$parent" ]]

	initial=$(dev_counter_live)
	load_start dev-write /write POST 8
	load_start dev-time /time GET 4
	sleep 2
	t_sig=$(now)
	dev_up_stop
	load_stop dev-write
	load_stop dev-time
	for file in "$(load_out dev-write)" "$(load_out dev-time)"; do
		# complete 200s, or no answer at all for a request the server
		# never took (refused, or closed before a byte of answer):
		# no 5xx, no truncated answer
		assert_no_lines "answers other than 200, or cut short" \
			"$(outcomes_unexpected "$file" "200|ERR:($NO_ANSWER)")"
		assert_no_lines "200s without a JSON body" "$(outcomes_without_json "$file" 200)"
		echo "# in flight at SIGTERM and answered 200:" \
			"$(awk -v t="$t_sig" '$1 < t && $2 > t && $3 == 200' "$file" | wc -l)," \
			"without an answer: $(outcomes_count "$file" 'ERR:.*')" >&3
	done
	assert_no_lines "left running after ./dev up stopped" "$(dev_up_leftovers)"
	dev_up_dead_sockets
	[[ ! -e $DEV_VAR_DIR/pg/data/postmaster.pid ]]
	run ls "$DEV_VAR_DIR/run"
	refute_output --partial ".pid"
	# every increment the database holds was answered 200: none was
	# taken in and then dropped
	file=$(load_out dev-write)
	assert_equal "$(dev_counter)" "$((initial + $(outcomes_count "$file" 200)))"
	assert_no_lines "counter values answered twice" "$(outcomes_duplicates "$file")"
}

# no_dev_up_leftovers: true when no process of that ./dev up runs.
no_dev_up_leftovers() {
	[[ -z $(dev_up_leftovers) ]]
}

@test "./dev up started with SIGINT ignored, as a script's background job: SIGINT to its process group stops everything" {
	local pgid rc=0
	# its own session and process group, SIGINT ignored from the start
	# shellcheck disable=SC2016 # expanded by the launched shell
	dev_up_start setsid bash -c 'trap "" INT; exec "$@"' dev-up
	pgid=$(ps -o pgid= -p "$DEV_PID" | tr -d ' ')
	assert_equal "$pgid" "$DEV_PID"
	# lighttpd and the responders are in that group too
	(($(pgrep -c -g "$pgid" '^(lighttpd|tally-)') > ${#TALLY_RESPONDERS[@]}))
	# what a terminal's Ctrl-C does: SIGINT to every process of the group
	kill -INT -- "-$pgid"
	if ! wait_until 30 pid_gone "$DEV_PID"; then
		echo "# ./dev up still running 30 s after SIGINT to its group" >&2
		return 1
	fi
	wait "$DEV_PID" || rc=$?
	rm -f "$BATS_FILE_TMPDIR/dev.pid"
	assert_equal "$rc" 0
	# no lighttpd, responder, spawn-fcgi, keeper loop or postgres left
	wait_until 15 no_dev_up_leftovers ||
		assert_no_lines "left running after ./dev up stopped" "$(dev_up_leftovers)"
	dev_up_dead_sockets
	[[ ! -e $DEV_VAR_DIR/pg/data/postmaster.pid ]]
}
