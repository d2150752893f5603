# shellcheck shell=bash
# tally - helpers for the bats integration tests. Each test file starts
# its own stack in setup_file: a throwaway PostgreSQL cluster, the real
# responders under spawn-fcgi and lighttpd on a free loopback port, all
# through scripts/stack.sh, the same code ./dev up runs.
#
#   setup_file()    { tally_stack_start; }
#   teardown_file() { tally_stack_stop; }
#   @test "..." { http GET /time; [ "$HTTP_STATUS" = 200 ]; }

bats_load_library bats-support
bats_load_library bats-assert

: "${TALLY_SRCDIR:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
: "${TALLY_BUILDDIR:=$TALLY_SRCDIR}"

tally_stack_env() {
	# shellcheck source=../../scripts/stack.sh
	source "$TALLY_SRCDIR/scripts/stack.sh"
	export TALLY_BIN_DIR="$TALLY_BUILDDIR/src" TALLY_SQL_DIR="$TALLY_SRCDIR/sql" \
		TALLY_WWW_DIR="$TALLY_SRCDIR/www" TALLY_CONF_DIR="$TALLY_SRCDIR/etc"
	# PostgreSQL's server programs live outside PATH on Debian.
	if ! command -v initdb >/dev/null; then
		PATH="$(find /usr/lib/postgresql -maxdepth 3 -name initdb -printf '%h\n' | sort -V | tail -1):$PATH"
	fi
	export PATH="$PATH:/usr/sbin:/sbin"
}

# Starts a whole stack for this test file; exports TALLY_URL, STACK_DIR,
# STACK_LOG_DIR and DATABASE_URL. Extra TALLY_* settings may be exported
# before calling it. tally_stack_start DATABASE_URL uses that database
# instead of a private cluster.
tally_stack_start() {
	local database=${1:-}
	tally_stack_env
	STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tally-test.XXXXXX")
	export STACK_DIR STACK_LOG_DIR="$STACK_DIR/log"
	export TALLY_LISTEN=127.0.0.1 TALLY_PORT
	TALLY_PORT=$(stack_free_port)
	export TALLY_URL="http://127.0.0.1:$TALLY_PORT"
	unset DATABASE_URL PGHOST
	if [[ -n $database ]]; then export DATABASE_URL=$database; fi
	stack_start
	export DATABASE_URL
}

tally_stack_stop() {
	tally_stack_env
	[[ -n ${STACK_DIR:-} && -d $STACK_DIR ]] || return 0
	stack_user_setup
	stack_stop
	# Keep the logs of a failed file for the test-suite log.
	if [[ -n ${TALLY_KEEP_STACK:-} ]]; then
		echo "# stack kept in $STACK_DIR" >&3
	else
		rm -rf "$STACK_DIR"
	fi
}

# http METHOD PATH [curl options...]: sets HTTP_STATUS, HTTP_BODY and
# HTTP_HEADERS (lower-cased names). Never fails by itself.
# shellcheck disable=SC2034 # the HTTP_* results are for the callers
http() {
	local method=$1 path=$2 out hdr
	shift 2
	out=$(mktemp) hdr=$(mktemp)
	HTTP_STATUS=$(curl -s -o "$out" -D "$hdr" -w '%{http_code}' --max-time 20 \
		-X "$method" "$@" "$TALLY_URL$path") || true
	HTTP_BODY=$(<"$out")
	HTTP_HEADERS=$(tr -d '\r' <"$hdr" | sed 's/^\([^:]*\):/\L\1:/')
	rm -f "$out" "$hdr"
}

# header NAME: the value of a header of the last http call ("" if none).
header() {
	local name=${1,,}
	sed -n "s/^$name: *//p" <<<"$HTTP_HEADERS" | head -1
}

# psql_tally SQL: runs SQL on the stack's database as the stack's user.
psql_tally() {
	stack_as_user psql -X -q -tA -d "$DATABASE_URL" -c "$1"
}

# responder_master NAME: the pid of a responder's master process: the
# restart loop's child, unless that is the loop's pause between restarts.
# (Not matched by name: under a TALLY_RESPONDER_WRAPPER it is valgrind's.)
responder_master() {
	local loop pid
	loop=$(<"$STACK_DIR/run/$1.pid")
	for pid in $(pgrep -P "$loop"); do
		[[ $(ps -o comm= -p "$pid") == sleep ]] || echo "$pid"
	done
}

# responder_workers NAME: the pids of a responder's worker processes.
responder_workers() {
	local master
	master=$(responder_master "$1")
	[[ -n $master ]] || return 0
	pgrep -P "$master" || true
}

# responder_pids: every responder's master and workers, one line each, so
# two calls compare equal only if no responder process was replaced.
responder_pids() {
	local name
	for name in "${STACK_RESPONDERS[@]}"; do
		echo "$name $(responder_master "$name") $(responder_workers "$name" | sort -n | tr '\n' ' ')"
	done
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
	python3 - "$TALLY_PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.argv[2].encode("latin-1"))
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode("latin-1"))
PY
}
