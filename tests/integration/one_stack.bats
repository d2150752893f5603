#!/usr/bin/env bats
# tally - one stack per state directory and per port. A second ./dev up
# (or stack_start) whose directory or port is in use stops at once, names
# the process that holds it and what to do, and leaves the first one
# serving as it was; a lighttpd that could not listen is never taken for
# ready because another server answers on its port. lighttpd, the
# internet-facing process, holds no database secret in its environment.
# Under ./dev up the access log goes to a file, not to the terminal.

load ../lib/helpers
load ../lib/faults

setup_file() {
	# a secret the stack's environment holds (the private cluster drops it)
	PGPASSWORD="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
	export PGPASSWORD
	# kept for the test in a file: the stack unsets the variable
	echo "$PGPASSWORD" >"$BATS_FILE_TMPDIR/secret"
	tally_stack_start
}

teardown_file() {
	local pid
	if [[ -f $BATS_FILE_TMPDIR/dev.pid ]]; then
		pid=$(<"$BATS_FILE_TMPDIR/dev.pid")
		kill -TERM "$pid" 2>/dev/null || true
		wait_until 30 pid_gone "$pid" || true
	fi
	tally_stack_stop
}

# first_stack_state: what must not change while a second one tries: the
# pids of lighttpd and every responder process, the sockets.
first_stack_state() {
	echo "lighttpd $(stack_pid lighttpd)"
	responder_pids
	ls -i "$STACK_DIR"/run/*.sock "$(stack_pg_socket)"/.s.PGSQL.*
}

# assert_first_unharmed STATE: the first stack is as it was, and serves.
assert_first_unharmed() {
	assert_equal "$(first_stack_state)" "$1"
	assert answers_200 GET /read
	assert answers_200 POST /write
	assert answers_200 GET /healthz
}

# second_dev_up VAR_DIR PORT: runs a second ./dev up (sets status, output).
second_dev_up() {
	run env -u STACK_DIR -u STACK_LOG_DIR -u DATABASE_URL -u PGHOST \
		-u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		TALLY_BUILDDIR="$TALLY_BUILDDIR" TALLY_VAR_DIR="$1" TALLY_PORT="$2" \
		timeout 120 "$TALLY_SRCDIR/dev" up </dev/null 3>&-
}

@test "a second ./dev up on a state directory in use stops at once, names the first, leaves it serving" {
	local before owner
	before=$(first_stack_state)
	owner=$(stack_pid owner)
	second_dev_up "$STACK_DIR" "$(free_port)"
	assert_failure 1
	assert_line --partial "$STACK_DIR is in use by PID $owner (user $(id -un): "
	assert_line --partial "TALLY_VAR_DIR="
	refute_output --partial "serving"
	assert_first_unharmed "$before"
	# its pid files are the first's still: stopping works later
	assert_equal "$(stack_pid owner)" "$owner"
}

@test "a second stack_start on a state directory in use refuses too" {
	local before
	before=$(first_stack_state)
	run bash -c 'source "$TALLY_SRCDIR/scripts/stack.sh" && stack_start' </dev/null 3>&-
	assert_failure
	assert_line --partial "$STACK_DIR is in use by PID"
	assert_line --partial "STACK_DIR=/another/dir"
	assert_first_unharmed "$before"
}

@test "a second ./dev up on a port in use stops at once, names lighttpd, leaves the first serving" {
	local before dir lighttpd
	before=$(first_stack_state)
	lighttpd=$(stack_pid lighttpd)
	dir=$(mktemp -d /tmp/tally-test-second.XXXXXX)
	second_dev_up "$dir" "$TALLY_PORT"
	assert_failure 1
	assert_line --partial "port $TALLY_PORT is in use by PID $lighttpd (user $STACK_USER: lighttpd "
	assert_line --regexp "TALLY_PORT=[0-9]+ \(free now\)"
	refute_output --partial "serving"
	# it started nothing in its own directory either
	assert_equal "$(find "$dir" -mindepth 1 -not -path "$dir/pid*" | wc -l)" 0
	rm -rf "$dir"
	assert_first_unharmed "$before"
}

@test "a lighttpd that cannot listen is not taken for ready because another server answers on its port" {
	local before dir lighttpd
	before=$(first_stack_state)
	lighttpd=$(stack_pid lighttpd)
	dir=$(mktemp -d /tmp/tally-test-second.XXXXXX)
	# past the port check (the race of two starts): only lighttpd's own
	# start can tell
	# shellcheck disable=SC2016 # expanded by that shell
	run env STACK_DIR="$dir" STACK_LOG_DIR="$dir/log" bash -c \
		'source "$TALLY_SRCDIR/scripts/stack.sh" && stack_mkdir 0750 "$STACK_DIR/run" && stack_lighttpd_start' \
		</dev/null 3>&-
	assert_failure
	assert_line --partial "lighttpd exited at start"
	assert_line --partial "port $TALLY_PORT: PID $lighttpd (user $STACK_USER: lighttpd "
	grep -q 'Address already in use' "$dir/log/lighttpd.log"
	rm -rf "$dir"
	assert_first_unharmed "$before"
}

@test "lighttpd's environment holds its TALLY_* settings, no database secret" {
	local lighttpd responder secret
	secret=$(<"$BATS_FILE_TMPDIR/secret")
	[[ -n $secret ]]
	lighttpd=$(stack_pid lighttpd)
	[[ -n $lighttpd ]]
	# the responders get the database's settings; the private cluster's
	# roles log in with their password files, so the stack drops the
	# PGPASSWORD of its environment, which would override them
	responder=$(responder_parent write)
	grep -qzx "DATABASE_URL=.*" "/proc/$responder/environ"
	run grep -c -F -- "$secret" "/proc/$responder/environ"
	assert_output 0
	# lighttpd gets neither
	run grep -c -F -- "$secret" "/proc/$lighttpd/environ"
	assert_output 0
	run grep -c -z '^DATABASE_URL=' "/proc/$lighttpd/environ"
	assert_output 0
	assert_no_lines "lighttpd's environment: variables other than PATH and TALLY_*" \
		"$(tr '\0' '\n' <"/proc/$lighttpd/environ" | grep -vE '^(PATH|PWD|SHLVL|_|TALLY_[A-Z0-9_]+)=')"
	tr '\0' '\n' <"/proc/$lighttpd/environ" | grep -qx "TALLY_PORT=$TALLY_PORT"
}

# dev_up_settled PID FILE: has the ./dev up of PID said it serves, or
# exited? (Either ends the wait.)
dev_up_settled() {
	grep -q 'tally is serving' "$2" || ! kill -0 "$1" 2>/dev/null
}

@test "./dev up: the access log goes to var/log/access.log, the terminal gets one line per 10 s of traffic" {
	local dir port pid i
	dir=$(mktemp -d /tmp/tally-test-devlog.XXXXXX)
	chmod 0755 "$dir"
	# the internal listener gets a free port of its own: the one after
	# $port may be another program's (an outgoing connection's, say)
	port=$(free_port)
	env -u STACK_DIR -u STACK_LOG_DIR -u DATABASE_URL -u PGHOST -u PGPASSWORD \
		-u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		TALLY_BUILDDIR="$TALLY_BUILDDIR" TALLY_VAR_DIR="$dir/var" TALLY_PORT="$port" \
		TALLY_INTERNAL_PORT="$(free_port)" \
		"$TALLY_SRCDIR/dev" up >"$dir/dev.out" 2>&1 </dev/null 3>&- &
	pid=$!
	echo "$pid" >"$BATS_FILE_TMPDIR/dev.pid"
	wait_until 120 dev_up_settled "$pid" "$dir/dev.out" || true
	if ! grep -q 'tally is serving' "$dir/dev.out"; then
		sed 's/^/# dev.out: /' "$dir/dev.out" >&2
		false
	fi
	for i in $(seq 30); do
		curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port/time?n=$i"
	done
	wait_until 20 grep -q '"query":"n=30"' "$dir/var/log/access.log"
	kill -TERM "$pid"
	wait_until 30 pid_gone "$pid"
	rm -f "$BATS_FILE_TMPDIR/dev.pid"
	sed 's/^/# /' "$dir/dev.out" | grep -v '"level":"info"' >&3
	# every request in the file, as JSON lines
	assert_equal "$(grep -c '"path":"/time"' "$dir/var/log/access.log")" 30
	jq -e . "$dir/var/log/access.log" >/dev/null
	assert_equal "$(stat -c %U "$dir/var/log/access.log")" "$(id -un)"
	# none on the terminal: its summary lines instead, that count them all
	# (ours, and ./dev up's own readiness checks)
	assert_no_lines "access log lines on the terminal" "$(grep -F '"path":' "$dir/dev.out")"
	assert_equal "$(sed -nE 's/^dev: [0-9:]+ \+10 s: ([0-9]+) requests \([0-9.]+\/s\), 0 errors \(5xx\)$/\1/p' \
		"$dir/dev.out" | awk '{ n += $1 } END { print n + 0 }')" "$(wc -l <"$dir/var/log/access.log")"
	grep -q "^dev: access log: $dir/var/log/access.log" "$dir/dev.out"
	rm -rf "$dir"
}
