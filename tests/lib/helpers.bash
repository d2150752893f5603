# shellcheck shell=bash
# tally - helpers for the bats integration tests. Each test file starts
# its own stack in setup_file: a throwaway PostgreSQL cluster, the real
# responders under spawn-fcgi and lighttpd on a free loopback port, all
# through scripts/stack.sh, the same code ./dev up runs. Loading this file
# gives a file that default setup_file and teardown_file (below); a file
# that needs settings exports them in a setup_file of its own:
#
#   load ../lib/helpers
#   setup_file() { export TALLY_PROCESSES=3; tally_stack_start; }
#   @test "..." { http GET /time; [ "$HTTP_STATUS" = 200 ]; }

bats_load_library bats-support
bats_load_library bats-assert

: "${TALLY_SRCDIR:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
: "${TALLY_BUILDDIR:=$TALLY_SRCDIR}"

# The stack's functions (scripts/stack.sh, which brings scripts/lib.sh)
# and its inputs for this build.
tally_stack_env() {
	# shellcheck source=../../scripts/stack.sh
	source "$TALLY_SRCDIR/scripts/stack.sh"
	export TALLY_BIN_DIR="$TALLY_BUILDDIR/src" TALLY_SQL_DIR="$TALLY_SRCDIR/sql" \
		TALLY_WWW_DIR="$TALLY_SRCDIR/www" TALLY_CONF_DIR="$TALLY_SRCDIR/etc"
	pg_path
}

# Starts a whole stack for this test file; exports TALLY_URL (the public
# listener), TALLY_INTERNAL_URL (the internal one: probes, /metrics), STACK_DIR,
# STACK_LOG_DIR and DATABASE_URL. Extra TALLY_* settings may be exported
# before calling it. tally_stack_start DATABASE_URL uses that database
# instead of a private cluster.
# shellcheck disable=SC2120 # failover.bats names a database
tally_stack_start() {
	local database=${1:-}
	tally_stack_env
	STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tally-test.XXXXXX")
	export STACK_DIR STACK_LOG_DIR="$STACK_DIR/log"
	export TALLY_LISTEN=127.0.0.1 TALLY_PORT
	TALLY_PORT=$(free_port)
	export TALLY_URL="http://127.0.0.1:$TALLY_PORT"
	# the internal listener's port for this stack only (a second stack
	# that a test starts picks its own)
	local internal
	internal=$(free_port)
	export TALLY_INTERNAL_URL="http://127.0.0.1:$internal"
	unset DATABASE_URL PGHOST
	if [[ -n $database ]]; then export DATABASE_URL=$database; fi
	# The suite's load comes from 127.0.0.1 and stands for many clients:
	# the rate limits are off unless a file sets them (ratelimit.bats).
	stack_rate_limits_off
	TALLY_INTERNAL_PORT=$internal stack_start
	export DATABASE_URL
}

tally_stack_stop() {
	local rc=0
	tally_stack_env
	[[ -n ${STACK_DIR:-} && -d $STACK_DIR ]] || return 0
	openapi_check || rc=1
	stack_user_setup
	stack_stop
	# Keep the logs of a failed file for the test-suite log.
	if [[ -n ${TALLY_KEEP_STACK:-} ]]; then
		echo "# stack kept in $STACK_DIR" >&3
	else
		rm -rf "$STACK_DIR"
	fi
	return "$rc"
}

# Every answer http() got from this stack (kept in $STACK_DIR/answers)
# against the API's description, docs/openapi.yaml
# (tests/openapi/validate.mjs says how): a path, method, status, header
# or JSON body it does not describe fails the test file, the answer
# named. Runs in tally_stack_stop, so in teardown_file.
openapi_check() {
	local answers=$STACK_DIR/answers node_dir out rc=0
	[[ -d $answers ]] || return 0
	if ! node_dir=$("$TALLY_SRCDIR/tests/openapi/install" 2>&1); then
		echo "# the answers were not checked against docs/openapi.yaml: $node_dir" >&3
		[[ ${TALLY_TEST_STRICT:-} != 1 ]]
		return
	fi
	out=$(timeout 120 node "$TALLY_SRCDIR/tests/openapi/validate.mjs" \
		"$TALLY_SRCDIR/docs/openapi.yaml" "$answers" "$node_dir" 2>&1) || rc=1
	echo "# ${out##*$'\n'}" >&3
	if ((rc != 0)); then
		echo "$out"
		echo "# the answers were in $answers: TALLY_KEEP_STACK=1 keeps them"
	fi
	return "$rc"
}

# Prerequisites, as git's test-lib has them: a test file that needs what
# a machine may lack (a program, root) checks it first in setup_file and
# stops there when it is missing:
#
#	setup_file() {
#		require_tool promtool "apt-get install prometheus" || return 0
#		tally_stack_start
#	}
#
# Each of its tests then skips with the reason, in setup() (the default
# below, or a file's own, which calls prerequisites_met first; a file's
# teardown does nothing while prerequisites_missing). With
# TALLY_TEST_STRICT=1 a missing prerequisite fails instead: ./dev test
# sets it, so CI runs strict, where a skipped check would pass unseen.

# prerequisite_missing REASON: in setup_file, records REASON for the
# tests and returns 1; in a test, skips it. Strict: fails either.
prerequisite_missing() {
	if [[ ${TALLY_TEST_STRICT:-} == 1 ]]; then
		fail "missing prerequisite: $1 (TALLY_TEST_STRICT=1: ./dev test and CI run every check)" ||
			exit 1
	fi
	if [[ -z ${BATS_TEST_NAME:-} ]]; then
		export TALLY_TEST_MISSING=$1
		return 1
	fi
	skip "$1"
}

# require_tool PROGRAM HOW: PROGRAM (a name on PATH, or a path) runs
# here; else a missing prerequisite, whose reason says HOW to install it.
require_tool() {
	command -v "$1" >/dev/null || prerequisite_missing "$1 is missing: $2"
}

# require_root WHY: the suite runs as root; else a missing prerequisite.
require_root() {
	(($(id -u) == 0)) || prerequisite_missing "$1: run the suite as root (CI does)"
}

# prerequisites_missing: setup_file found one missing (its tests skip).
prerequisites_missing() {
	[[ -n ${TALLY_TEST_MISSING:-} ]]
}

# prerequisites_met: for a test's setup: skips the test when setup_file
# found a prerequisite missing.
prerequisites_met() {
	if prerequisites_missing; then
		prerequisite_missing "$TALLY_TEST_MISSING"
	fi
}

setup() {
	prerequisites_met
}

# The defaults of a test file: one stack for all its tests. A file that
# defines its own replaces them.
setup_file() {
	# shellcheck disable=SC2119 # no database named: a private cluster
	tally_stack_start
}

teardown_file() {
	tally_stack_stop
}

# http METHOD PATH [curl options...]: sets HTTP_STATUS, HTTP_BODY and
# HTTP_HEADERS (lower-cased names). Never fails by itself.
# shellcheck disable=SC2034 # the HTTP_* results are for the callers
# Each answer is kept in $STACK_DIR/answers for openapi_check.
http() {
	local method=$1 path=$2 keep='' out hdr listener=public
	shift 2
	if [[ -n ${STACK_DIR:-} && -d $STACK_DIR ]]; then
		mkdir -p "$STACK_DIR/answers"
		keep=$(mktemp -d "$STACK_DIR/answers/a.XXXXXXXX")
		out=$keep/body hdr=$keep/headers
		: >"$out"
		: >"$hdr"
	else
		out=$(mktemp) hdr=$(mktemp)
	fi
	HTTP_STATUS=$(curl -s -o "$out" -D "$hdr" -w '%{http_code}' --max-time 20 \
		-X "$method" "$@" "$TALLY_URL$path") || true
	HTTP_BODY=$(<"$out")
	HTTP_HEADERS=$(tr -d '\r' <"$hdr" | sed 's/^\([^:]*\):/\L\1:/')
	if [[ -n $keep ]]; then
		[[ $TALLY_URL != "${TALLY_INTERNAL_URL:-}" ]] || listener=internal
		printf '%s\n' "$listener" "$method" "$path" >"$keep/request"
		echo "$HTTP_STATUS" >"$keep/status"
	else
		rm -f "$out" "$hdr"
	fi
}

# http_internal METHOD PATH [curl options...]: the same on the internal
# listener (/livez, /healthz, /metrics).
http_internal() {
	TALLY_URL=$TALLY_INTERNAL_URL http "$@"
}

# header NAME: the value of a header of the last http call ("" if none).
header() {
	local name=${1,,}
	sed -n "s/^$name: *//p" <<<"$HTTP_HEADERS" | head -1
}

# psql_tally SQL: runs SQL on the stack's database: on the private
# cluster as its superuser (the tests set it up, break it and look into
# it), on another database as DATABASE_URL says.
psql_tally() {
	if [[ $DATABASE_URL == "$(stack_pg_url)" ]]; then
		psql -X -q -w -tA -d "$(stack_pg_admin_url)" -c "$1"
	else
		stack_as_user psql -X -q -tA -d "$DATABASE_URL" -c "$1"
	fi
}

# psql_runtime SQL: runs SQL on the private cluster as the role the
# responders log in as, as the responders' user.
psql_runtime() {
	stack_as_user psql -X -q -w -tA -v ON_ERROR_STOP=1 -d "$(stack_pg_url)" -c "$1"
}

# responder_parent NAME: the pid of a responder's parent process (the
# one that keeps its TALLY_PROCESSES workers running): the stack's keeper
# loop's child, unless that is the loop's pause between restarts. (Not
# matched by name: under a TALLY_RESPONDER_WRAPPER it is valgrind's.)
responder_parent() {
	local loop pid
	loop=$(stack_pid "$1") || return 0
	for pid in $(pgrep -P "$loop"); do
		[[ $(ps -o comm= -p "$pid") == sleep ]] || echo "$pid"
	done
}

# responder_workers NAME: the pids of a responder's worker processes.
responder_workers() {
	local parent
	parent=$(responder_parent "$1")
	[[ -n $parent ]] || return 0
	pgrep -P "$parent" || true
}

# responder_pids: every responder's parent and workers, one line each, so
# two calls compare equal only if no responder process was replaced.
responder_pids() {
	local name
	for name in "${TALLY_RESPONDERS[@]}"; do
		echo "$name $(responder_parent "$name") $(responder_workers "$name" | sort -n | tr '\n' ' ')"
	done
}

# answers_200 METHOD PATH: true when one request answers 200.
answers_200() {
	local method=$1 path=$2 args=()
	shift 2
	[[ $method == POST ]] && args=(-d '')
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$method" \
		"${args[@]}" "$@" "$TALLY_URL$path") == 200 ]]
}

# admin_token_file TOKEN: tally-admin's token in a file as the chart
# mounts it: the responders' user's, 0600, in a directory they may pass
# through (TOKEN_DIR, for the file's teardown to remove); exports
# TALLY_ADMIN_TOKEN_FILE, for the stack to start with.
admin_token_file() {
	tally_stack_env
	stack_user_setup
	TOKEN_DIR=$(mktemp -d /tmp/tally-admin-token.XXXXXX)
	chmod 0711 "$TOKEN_DIR"
	printf '%s\n' "$1" >"$TOKEN_DIR/token"
	chown "$STACK_USER" "$TOKEN_DIR/token"
	chmod 0600 "$TOKEN_DIR/token"
	export TOKEN_DIR TALLY_ADMIN_TOKEN_FILE=$TOKEN_DIR/token
}

# assert_concurrent_writes N CLIENTS: N POST /write, CLIENTS at a time,
# get N distinct values, from the counter before them + 1 to + N, and
# leave the counter N higher.
assert_concurrent_writes() {
	local n=$1 clients=$2 before out="$BATS_TEST_TMPDIR/concurrent-writes"
	before=$(counter_value)
	seq "$n" | xargs -P "$clients" -I{} curl -s --max-time 30 -d '' "$TALLY_URL/write" >"$out"
	assert_equal "$(jq -s length "$out")" "$n"
	assert_equal "$(jq -r .counter "$out" | sort -un | wc -l)" "$n"
	assert_equal "$(jq -s 'map(.counter) | min' "$out")" "$((before + 1))"
	assert_equal "$(jq -s 'map(.counter) | max' "$out")" "$((before + n))"
	assert_equal "$(counter_value)" "$((before + n))"
}

# write_with_key KEY: POST /write with an Idempotency-Key.
write_with_key() {
	http POST /write -d '' -H "Idempotency-Key: $1"
}

# keys_in_table: how many Idempotency-Keys the database holds.
keys_in_table() {
	psql_tally "SELECT count(*) FROM tally_idempotency_keys"
}

# counter_value: the counter as the database has it.
counter_value() {
	psql_tally "SELECT value FROM tally_counter WHERE id = 1"
}
tally_stack_env

# raw_http REQUEST_TEXT: sends bytes as they are (HTTP/1.0, so the server
# closes) and prints the whole answer, headers and body.
raw_http() {
	python3 "$TALLY_SRCDIR/tests/lib/raw_http.py" "$TALLY_PORT" "$1"
}

# other_stack_start: a second stack (responders and lighttpd, no cluster
# and no schema step of its own) on this stack's database, as a second
# pod is; sets OTHER_DIR and OTHER_URL. other_stack_stop stops it
# (teardown_file calls it too, when the file's own teardown_file is
# this one).
other_stack_start() {
	local -x STACK_DIR STACK_LOG_DIR TALLY_PORT TALLY_INTERNAL_PORT
	STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tally-test-other.XXXXXX")
	STACK_LOG_DIR=$STACK_DIR/log
	TALLY_PORT=$(free_port)
	TALLY_INTERNAL_PORT=$(free_port)
	echo "$STACK_DIR" >"$BATS_FILE_TMPDIR/other-stack"
	OTHER_DIR=$STACK_DIR
	OTHER_URL="http://127.0.0.1:$TALLY_PORT"
	export OTHER_DIR OTHER_URL
	stack_migrate() { :; }
	stack_start
	unset -f stack_migrate
	tally_stack_env	# stack_migrate again
}

other_stack_stop() {
	[[ -f $BATS_FILE_TMPDIR/other-stack ]] || return 0
	local -x STACK_DIR
	STACK_DIR=$(<"$BATS_FILE_TMPDIR/other-stack")
	stack_stop
	rm -rf "$STACK_DIR" "$BATS_FILE_TMPDIR/other-stack"
}
