#!/usr/bin/env bats
# tally - security: responders refuse root, sockets are private
# to the stack's user, the database password never shows in a log, an
# error or an answer, and the page and the API carry security headers.
# SECURITY.md states the threat model these tests check.

load ../lib/helpers
load ../lib/faults

teardown_file() {
	tally_stack_stop
	# a test that failed half way leaves the second stack running
	if [[ -f $BATS_FILE_TMPDIR/second-stack ]]; then
		second_stack_stop "$(<"$BATS_FILE_TMPDIR/second-stack")"
	fi
}

# python3 -c "$SOCKET_ON_STDIN" SOCKET PROGRAM...: runs PROGRAM with a
# listening unix socket on its standard input, as spawn-fcgi hands it over.
SOCKET_ON_STDIN='import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
os.dup2(s.fileno(), 0)
os.execv(sys.argv[2], sys.argv[2:])'

# The system's python, which any user may run (PATH may name a private one).
SYSTEM_PYTHON=/usr/bin/python3

# private_dir: a new directory, in the stack's, that only its user may use.
private_dir() {
	local dir
	dir=$(mktemp -d "$STACK_DIR/private.XXXXXX")
	stack_mkdir 0700 "$dir"
	echo "$dir"
}

@test "responders refuse to run as root or with group root, saying why" {
	local name dir
	dir=$(private_dir)
	for name in "${TALLY_RESPONDERS[@]}"; do
		run timeout 10 python3 -c "$SOCKET_ON_STDIN" "$dir/$name-root.sock" \
			"$TALLY_BIN_DIR/tally-$name"
		assert_equal "$name as root: $status" "$name as root: 1"
		assert_output --regexp '"level":"error".*"msg":"refusing to run as root'
		run timeout 10 setpriv --reuid="$STACK_USER" --regid=0 --clear-groups -- \
			"$SYSTEM_PYTHON" -c "$SOCKET_ON_STDIN" "$dir/$name-gid0.sock" "$TALLY_BIN_DIR/tally-$name"
		assert_equal "$name with gid 0: $status" "$name with gid 0: 1"
		assert_output --partial '"msg":"refusing to run as root'
	done
	# the same start as the stack's user works: the refusal is about root
	run timeout -s TERM 3 setpriv --reuid="$STACK_USER" --regid="$STACK_USER" --init-groups -- \
		env TALLY_RUN_DIR="$dir" "$SYSTEM_PYTHON" -c "$SOCKET_ON_STDIN" "$dir/time-user.sock" \
		"$TALLY_BIN_DIR/tally-time"
	assert_output --partial '"msg":"started"'
	refute_output --partial "refusing"
}

@test "sockets are 0660 in a 0750 directory of the stack's user; other users cannot connect" {
	local sock
	assert_equal "$(stat -c '%a %U %G' "$STACK_DIR/run")" "750 $STACK_USER $STACK_USER"
	for sock in "$STACK_DIR"/run/*.sock; do
		[[ -S $sock ]]
		assert_equal "$(basename "$sock") $(stat -c '%a %U %G' "$sock")" \
			"$(basename "$sock") 660 $STACK_USER $STACK_USER"
		# an unrelated user is kept out by the directory and the mode
		run setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$SYSTEM_PYTHON" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])' "$sock"
		assert_failure
		assert_output --partial "PermissionError"
	done
	assert_equal "$(find "$STACK_DIR/run" -name '*.sock' | wc -l)" "${#TALLY_RESPONDERS[@]}"
	# the shared metrics segment is not world-readable either
	[[ $(stat -c '%a' "$STACK_DIR/run/stats") != *[1-7] ]]
}

# --- the database password ---------------------------------------------------

# second_stack_start DATABASE_URL: a second stack (responders and lighttpd,
# no cluster of its own) on that database; sets SECOND_DIR and SECOND_URL.
second_stack_start() {
	local -x STACK_DIR STACK_LOG_DIR DATABASE_URL=$1 TALLY_PORT TALLY_INTERNAL_PORT
	STACK_DIR=$(mktemp -d /tmp/tally-test-pw.XXXXXX)
	STACK_LOG_DIR=$STACK_DIR/log
	TALLY_PORT=$(free_port)
	TALLY_INTERNAL_PORT=$(free_port)
	SECOND_INTERNAL_URL="http://127.0.0.1:$TALLY_INTERNAL_PORT"
	echo "$STACK_DIR" >"$BATS_FILE_TMPDIR/second-stack"
	SECOND_DIR=$STACK_DIR
	SECOND_URL="http://127.0.0.1:$TALLY_PORT"
	stack_start
}

# second_stack_stop DIR: stops the second stack.
second_stack_stop() {
	local -x STACK_DIR=$1
	stack_stop
	rm -rf "$STACK_DIR" "$BATS_FILE_TMPDIR/second-stack"
}

# second_http METHOD PATH: one request to the second stack; appends status,
# headers and body to $ANSWERS and prints the status.
second_http() {
	local args=()
	[[ $1 == POST ]] && args=(-d '')
	curl -s -D - -w '\n%{http_code}\n' --max-time 20 -X "$1" "${args[@]}" \
		"$SECOND_URL$2" >>"$ANSWERS"
	tail -1 "$ANSWERS"
}

# second_stack_logs_auth_failure: asks the second stack to write; true once
# a responder has logged that the database refused its password.
second_stack_logs_auth_failure() {
	second_http POST /write >/dev/null
	grep -q 'password authentication failed' "$SECOND_DIR"/log/*.log
}

# secret_found_in PATH...: prints where SECRET occurs (files, recursively).
secret_found_in() {
	grep -rlF -- "$SECRET" "$@" 2>/dev/null || true
}

@test "the database password never appears in a log, an error, an answer or a command line" {
	local pg_socket hba url
	SECRET="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
	ANSWERS=$BATS_TEST_TMPDIR/answers
	pg_socket=$(stack_pg_socket)
	hba=$(stack_pg_data)/pg_hba.conf
	# a role that must give its password (scram-sha-256) on this cluster
	psql_tally "CREATE ROLE tally_pw LOGIN PASSWORD '$SECRET'"
	psql_tally "GRANT ALL ON SCHEMA public TO tally_pw;
		GRANT ALL ON ALL TABLES IN SCHEMA public TO tally_pw"
	stack_as_pg_user sed -i "1i local all tally_pw scram-sha-256" "$hba"
	psql_tally "SELECT pg_reload_conf()" >/dev/null
	run stack_as_user env PGPASSWORD=wrong psql -X -h "$pg_socket" -U tally_pw -d tally -c 'SELECT 1'
	assert_failure
	assert_output --partial "password authentication failed"

	# the right password: the stack works
	url="postgresql://tally_pw:$SECRET@/tally?host=$pg_socket"
	second_stack_start "$url"
	assert_equal "$(second_http POST /write)" 200
	assert_equal "$(second_http GET /healthz)" 200
	run ps -eo args=
	refute_output --partial "$SECRET"

	# the password changes under it: connections fail, loudly but
	# without the password
	psql_tally "ALTER ROLE tally_pw PASSWORD 'changed-$SECRET-x'" >/dev/null
	psql_tally "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'tally_pw'" >/dev/null
	wait_until 10 second_stack_logs_auth_failure
	assert_equal "$(second_http POST /write)" 503
	assert_equal "$(second_http GET /read)" 503
	assert_equal "$(second_http GET /healthz)" 503
	assert_equal "$(SECOND_URL=$SECOND_INTERNAL_URL second_http GET /metrics)" 200

	# tally-migrate: wrong password, a URL libpq cannot parse (its own
	# message would quote it), a password in PGPASSWORD
	run stack_as_user env DATABASE_URL="$url" PGPASSWORD= "$TALLY_BIN_DIR/tally-migrate" --dir "$TALLY_SQL_DIR"
	assert_failure
	assert_output --partial "password authentication failed"
	echo "$output" >>"$ANSWERS"
	run stack_as_user env DATABASE_URL="postgresql://tally_pw:$SECRET@[$pg_socket/tally" \
		"$TALLY_BIN_DIR/tally-migrate" --dir "$TALLY_SQL_DIR"
	assert_failure
	assert_output --partial "not a valid connection string"
	echo "$output" >>"$ANSWERS"
	run stack_as_user env DATABASE_URL="host=$pg_socket dbname=tally user=tally_pw port=x" \
		PGPASSWORD="$SECRET" "$TALLY_BIN_DIR/tally-migrate" --dir "$TALLY_SQL_DIR"
	assert_failure
	echo "$output" >>"$ANSWERS"

	assert_no_lines "the password found in" \
		"$(secret_found_in "$ANSWERS" "$SECOND_DIR/log" "$STACK_LOG_DIR")"
	second_stack_stop "$SECOND_DIR"
	stack_as_pg_user sed -i '/tally_pw/d' "$hba"
	psql_tally "SELECT pg_reload_conf()" >/dev/null
}

# --- headers -----------------------------------------------------------------

assert_common_security_headers() {
	assert_equal "$(header x-content-type-options)" "nosniff"
	assert_equal "$(header x-frame-options)" "DENY"
	assert_equal "$(header referrer-policy)" "no-referrer"
	assert_equal "$(header cross-origin-opener-policy)" "same-origin"
	assert_equal "$(header cross-origin-resource-policy)" "same-origin"
	run header content-security-policy
	assert_output --partial "default-src 'none'"
	assert_output --partial "frame-ancestors 'none'"
	# the server says what it is, not which version
	assert_equal "$(header server)" "tally"
	assert_equal "$(header x-powered-by)" ""
}

@test "security headers on the page, its files and every API answer, errors included" {
	local p csp method path
	http GET /
	assert_equal "$HTTP_STATUS" 200
	assert_common_security_headers
	csp=$(header content-security-policy)
	for p in "default-src 'none'" "script-src 'self'" "style-src 'self'" "img-src 'self'" \
		"connect-src 'self'" "base-uri 'none'" "form-action 'none'" "frame-ancestors 'none'"; do
		[[ "; $csp;" == *"; $p;"* ]] || [[ "$csp;" == "$p;"* ]]
	done
	[[ $csp != *unsafe-* && $csp != *"*"* && $csp != *http:* && $csp != *data:* ]]
	assert_equal "$(header permissions-policy)" "camera=(), microphone=(), geolocation=()"
	for p in /app.js /style.css; do
		http GET "$p"
		assert_equal "$HTTP_STATUS" 200
		assert_common_security_headers
	done
	for p in "GET /time" "GET /read" "POST /write" "GET /healthz" "GET /livez" \
		"GET /metrics" "DELETE /time" "GET /nothing-here"; do
		# (/metrics: the public listener's 404)
		read -r method path <<<"$p"
		if [[ $method == POST ]]; then http POST "$path" -d ''; else http "$method" "$path"; fi
		assert_common_security_headers
		[[ $path == /nothing-here ]] || assert_equal "$(header cache-control)" "no-store"
	done
	# and on the 503 of a database outage
	stack_pg_stop fast
	http GET /read
	assert_equal "$HTTP_STATUS" 503
	assert_common_security_headers
	assert_equal "$(header cache-control)" "no-store"
	stack_pg_start
}
