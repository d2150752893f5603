#!/usr/bin/env bats
# tally - run as root, the stack trusts no file the service user may
# write or swap: its pid files and logs live in directories only root
# may write, a pid is signalled only while it is the process that was
# started, and PostgreSQL runs under another account than lighttpd and
# the responders. Each test plays one trick the service user could try.
# (These are about root: as another user, every part is that user's own.)

load ../lib/helpers

setup_file() {
	require_root "checks what root trusts" || return 0
	tally_stack_start
}

teardown_file() {
	[[ -z ${VICTIM_PID:-} ]] || kill -KILL "$VICTIM_PID" 2>/dev/null || true
	if [[ $(id -u) -eq 0 ]]; then
		tally_stack_stop
	fi
}

setup() {
	prerequisites_met
	# a file only root may read or write
	VICTIM_FILE=$BATS_TEST_TMPDIR/root-only
	printf 'keep me\n' >"$VICTIM_FILE"
	chmod 0600 "$VICTIM_FILE"
}

# victim_group: starts a root process in a process group of its own, as
# the victim of a forged pid; sets VICTIM_PID (also its group's id).
victim_group() {
	setsid sleep 600 </dev/null >/dev/null 2>&1 3>&- &
	VICTIM_PID=$!
	wait_until 5 group_leader "$VICTIM_PID"
}

# Does the process lead its own process group?
group_leader() { [[ $(ps -o pgid= -p "$1" | tr -d ' ') == "$1" ]]; }

# restart_part NAME: stops a responder as the stack does and starts it.
restart_part() {
	stack_stop_part "$1" TERM 15
	stack_responder_start "$1"
	wait_until 10 test -S "$STACK_DIR/run/$1.sock"
}

@test "the service user cannot write where root keeps pid files and logs" {
	local dir
	for dir in "$STACK_DIR" "$(dirname "$(stack_pidfile time)")" "$STACK_LOG_DIR"; do
		assert_equal "$(stat -c %U "$dir")" root
		run stack_as_user test -w "$dir"
		assert_failure
	done
	run stack_as_user sh -c "echo -1 >'$(stack_pidfile time)'"
	assert_failure
	run stack_as_user ln -sf "$VICTIM_FILE" "$STACK_LOG_DIR/metrics.log"
	assert_failure
	run stack_as_user mv "$STACK_DIR/pid" "$STACK_DIR/pid.old"
	assert_failure
}

@test "a forged pid file (-PGID, -1, a foreign pid) is never signalled; stopping stops the real part" {
	local forged keeper
	victim_group
	keeper=$(stack_pid time)
	[[ -n $keeper ]]
	# where the service user may write (its run directory, the old home
	# of the pid files): ignored
	stack_as_user sh -c "echo -$VICTIM_PID >'$STACK_DIR/run/time.pid'"
	stack_as_user sh -c "echo -1 >'$STACK_DIR/run/metrics.pid'"
	# where only root writes: a pid file that names another process (a
	# PID reused, or a file damaged) is not trusted either
	for forged in "-$VICTIM_PID" "-1" "$VICTIM_PID" "$VICTIM_PID 1" \
		"1 $(stack_proc_start 1)" "0 0" "$VICTIM_PID junk"; do
		echo "$forged" >"$(stack_pidfile forged)"
		run stack_pid forged
		assert_failure
		stack_stop_part forged TERM 2
		assert [ ! -e "$(stack_pidfile forged)" ]
	done
	# the real time responder stops (its keeper loop with it), the victim lives
	stack_stop_part time TERM 15
	assert pid_gone "$keeper"
	assert_equal "$(ps -o pid= -p "$VICTIM_PID" | tr -d ' ')" "$VICTIM_PID"
	stack_as_user rm -f "$STACK_DIR/run/time.pid" "$STACK_DIR/run/metrics.pid"
	stack_responder_start time
	wait_until 10 answers_200 GET /time
}

@test "a symbolic link as a pid file is never written through or read" {
	local file
	file=$(stack_pidfile metrics)
	# the service user's links (where it may make them) change nothing
	stack_as_user ln -s "$VICTIM_FILE" "$STACK_DIR/run/metrics.pid"
	restart_part metrics
	assert_equal "$(cat "$VICTIM_FILE")" "keep me"
	# and a link in root's own directory is not read
	mv "$file" "$BATS_TEST_TMPDIR/metrics.pid"
	ln -s "$BATS_TEST_TMPDIR/metrics.pid" "$file"
	run stack_pid metrics
	assert_failure
	rm -f "$file"
	mv "$BATS_TEST_TMPDIR/metrics.pid" "$file"
	stack_as_user rm -f "$STACK_DIR/run/metrics.pid"
	restart_part metrics
	assert_equal "$(cat "$VICTIM_FILE")" "keep me"
	TALLY_URL=$TALLY_INTERNAL_URL assert answers_200 GET /metrics
}

@test "a symbolic link as a log file is not followed" {
	# the service user may not place one in the log directory
	run stack_as_user ln -s "$VICTIM_FILE" "$STACK_LOG_DIR/metrics.log.new"
	assert_failure
	# a log directory of the service user's (as an earlier version made
	# them) is refused, not written into
	# shellcheck disable=SC2016 # expanded by that shell
	run env STACK_LOG_DIR="$STACK_DIR/run/log" bash -c \
		'source "$TALLY_SRCDIR/scripts/stack.sh"; stack_as_user mkdir "$STACK_LOG_DIR"; stack_as_user ln -s "$1" "$STACK_LOG_DIR/metrics.log"; stack_responder_start metrics' \
		_ "$VICTIM_FILE" </dev/null 3>&-
	assert_failure
	assert_output --partial "$STACK_DIR/run/log is not a directory of root's"
	assert_equal "$(cat "$VICTIM_FILE")" "keep me"
	restart_part metrics
	TALLY_URL=$TALLY_INTERNAL_URL assert answers_200 GET /metrics
}

@test "PostgreSQL runs as its own user: lighttpd and the responders cannot signal it or read its files" {
	local postmaster
	postmaster=$(stack_as_pg_user head -1 "$(stack_pg_data)/postmaster.pid")
	assert_equal "$(ps -o user= -p "$postmaster")" "$STACK_PG_USER"
	assert_equal "$(ps -o user= -p "$(stack_pid lighttpd)")" "$STACK_USER"
	assert_equal "$(ps -o user= -p "$(responder_parent write)")" "$STACK_USER"
	[[ $STACK_PG_USER != "$STACK_USER" ]]
	run stack_as_user kill -0 "$postmaster"
	assert_failure
	run stack_as_user ls "$(stack_pg_data)"
	assert_failure
	# the responders reach the socket
	assert answers_200 POST /write
}
