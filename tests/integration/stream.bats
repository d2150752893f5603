#!/usr/bin/env bats
# tally - GET /stream and /stream/NAME: a counter's value as Server-Sent
# Events, through lighttpd, from tally-stream's one LISTEN connection:
# the current value at once, then every committed change (coalesced to
# TALLY_STREAM_RATE a second, ending on the latest), from this stack and
# from another one on the same database; Last-Event-ID; heartbeats; the
# limits per client and in total; the database gone and back; the
# responder killed.

load ../lib/helpers
load ../lib/faults

RATE=2

setup_file() {
	# A heartbeat every second; few streams, so the limits are reached;
	# loopback is a proxy, so X-Forwarded-For names other clients.
	export TALLY_STREAM_HEARTBEAT=1 TALLY_STREAM_RATE=$RATE \
		TALLY_STREAM_PER_CLIENT=3 TALLY_STREAM_MAX=5 \
		TALLY_TRUSTED_PROXIES=127.0.0.1
	tally_stack_start
}

teardown_file() {
	other_stack_stop
	tally_stack_stop
}

teardown() {
	streams_close
}

# stream_open NAME PATH [curl options...]: a client reading PATH's
# stream (headers and events) into $BATS_TEST_TMPDIR/NAME, for at most
# 60 s. URL: the stack (TALLY_URL unless set).
stream_open() {
	local name=$1 path=$2
	shift 2
	curl -sN -i --max-time 60 "$@" "${URL:-$TALLY_URL}$path" \
		>"$BATS_TEST_TMPDIR/$name" 2>/dev/null &
	echo $! >"$BATS_TEST_TMPDIR/$name.pid"
}

# streams_close: ends every client of the test, and waits (at most 10 s)
# until lighttpd and tally-stream have let go of them.
streams_close() {
	local f
	for f in "$BATS_TEST_TMPDIR"/*.pid; do
		[[ -f $f ]] || continue
		kill "$(<"$f")" 2>/dev/null || true
		wait "$(<"$f")" 2>/dev/null || true
		rm -f "$f"
	done
	wait_until 10 stream_connections_none || true
}

# stream_connections_none: tally-stream holds no connection from lighttpd.
stream_connections_none() {
	! ss -xH state connected 2>/dev/null | grep -q "$STACK_DIR/run/stream.sock"
}

# stream_ids NAME: the ids of the stream's events, one a line.
stream_ids() {
	sed -n 's/^id: \([0-9]*\)\r\?$/\1/p' "$BATS_TEST_TMPDIR/$1"
}

stream_has_id() {
	stream_ids "$1" | grep -qx "$2"
}

# wait_for_id NAME VALUE: until the stream has sent an event of that id
# (at most 10 s).
wait_for_id() {
	wait_until 10 stream_has_id "$1" "$2"
}

stream_ended() {
	! kill -0 "$(<"$BATS_TEST_TMPDIR/$1.pid")" 2>/dev/null
}

# named_value NAME: a named counter's value in the database.
named_value() {
	psql_tally "SELECT value FROM tally_counter WHERE name = '$1'"
}

@test "the first event is the current value, at once, with retry and the stream's headers" {
	local v
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	v=$(counter_value)
	stream_open s /stream
	wait_for_id s "$v"
	run cat "$BATS_TEST_TMPDIR/s"
	assert_line --regexp '^HTTP/1.1 200'
	assert_line --regexp '^Content-Type: text/event-stream'
	assert_line --regexp '^Cache-Control: no-store'
	assert_line --regexp '^retry: 1000'
	assert_line --regexp "^data: \\{\"counter\":$v\\}"
	# one event so far: the value
	assert_equal "$(stream_ids s | wc -l)" 1
}

@test "writes show up in order, coalesced to the rate, ending on the latest value" {
	local v0 i t0 elapsed n final
	v0=$(counter_value)
	stream_open s /stream
	wait_for_id s "$v0"
	t0=$(now)
	for i in $(seq 20); do
		curl -s -o /dev/null --max-time 10 -d '' "$TALLY_URL/write"
	done
	elapsed=$(seconds_since "$t0")
	final=$(counter_value)
	assert_equal "$final" $((v0 + 20))
	wait_for_id s "$final"
	# ids rise, every one a value the counter had; the last is the latest
	run stream_ids s
	assert_equal "${lines[0]}" "$v0"
	assert_equal "${lines[-1]}" "$final"
	for ((i = 1; i < ${#lines[@]}; i++)); do
		((lines[i] > lines[i - 1] && lines[i] <= final))
	done
	# at most RATE events a second after the first (and one more for
	# the second that was under way)
	n=$((${#lines[@]} - 1))
	echo "# 20 writes in $elapsed s: $n events" >&3
	awk -v n="$n" -v e="$elapsed" -v r="$RATE" 'BEGIN { exit !(n <= e * r + 2) }'
}

@test "a named counter's stream; another stack on the same database: its writes reach these streams, and these its" {
	local name=shared.$RANDOM
	http POST "/write/$name" -d ''
	assert_equal "$HTTP_STATUS" 200
	other_stack_start
	stream_open here "/stream/$name"
	URL=$OTHER_URL stream_open there "/stream/$name"
	wait_for_id here 1
	wait_for_id there 1
	# the other stack writes: both streams hear it
	curl -s -o /dev/null --max-time 10 -d '' "$OTHER_URL/write/$name"
	curl -s -o /dev/null --max-time 10 -d '' "$OTHER_URL/write/$name"
	assert_equal "$(named_value "$name")" 3
	wait_for_id here 3
	wait_for_id there 3
	# and this one
	curl -s -o /dev/null --max-time 10 -d '' "$TALLY_URL/write/$name"
	wait_for_id here 4
	wait_for_id there 4
	run stream_ids here
	assert_equal "${lines[-1]}" 4
	# the default counter's stream did not hear the named one
	[ "$(grep -c '^data:' "$BATS_TEST_TMPDIR/here")" -le 4 ]
	other_stack_stop
}

@test "an unknown counter: 404 JSON as /read; a bad name: 400" {
	http GET /stream/no-such-counter.$RANDOM
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$HTTP_BODY" '{"error":"no counter has this name: its first write creates it"}'
	http GET "/stream/a/b/c"
	assert_equal "$HTTP_STATUS" 400
	assert_equal "$(header content-type)" application/json
}

@test "Last-Event-ID: the value the client has is not sent again; an older one is" {
	local v
	v=$(counter_value)
	stream_open same /stream -H "Last-Event-ID: $v"
	stream_open older /stream -H "Last-Event-ID: $((v - 1))"
	wait_for_id older "$v"
	# the first has its headers and retry, and no event until a change
	wait_until 10 grep -q '^retry: ' "$BATS_TEST_TMPDIR/same"
	curl -s -o /dev/null --max-time 10 -d '' "$TALLY_URL/write"
	wait_for_id same $((v + 1))
	run stream_ids same
	assert_equal "${lines[0]}" $((v + 1))
}

@test "a quiet stream sends heartbeat comments" {
	stream_open s /stream
	wait_until 10 grep -q '^: heartbeat' "$BATS_TEST_TMPDIR/s"
}

@test "streams per client and in total are bounded: 503 JSON with Retry-After beyond" {
	local v i
	v=$(counter_value)
	for i in 1 2 3; do
		stream_open "mine$i" /stream
		wait_for_id "mine$i" "$v"
	done
	http GET /stream
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$HTTP_BODY" '{"error":"too many streams open from this address"}'
	assert_equal "$(header retry-after)" 1
	# other clients (behind the trusted proxy) still may, up to the total
	for i in 1 2; do
		stream_open "other$i" /stream -H "X-Forwarded-For: 192.0.2.$i"
		wait_for_id "other$i" "$v"
	done
	http GET /stream -H "X-Forwarded-For: 192.0.2.9"
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$HTTP_BODY" '{"error":"too many streams open"}'
	assert_equal "$(header retry-after)" 1
	# one closes: room again
	kill "$(<"$BATS_TEST_TMPDIR/other1.pid")"
	stream_new_one() {
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
			-H "X-Forwarded-For: 192.0.2.9" "$TALLY_URL/stream") == 200 ]]
	}
	# (curl gives up after 2 s on an open stream, which answered 200)
	wait_until 10 stream_new_one
}

@test "wrong methods: 405 with Allow; HEAD: the headers alone" {
	http POST /stream -d ''
	assert_equal "$HTTP_STATUS" 405
	assert_equal "$(header allow)" "GET, HEAD"
	http HEAD /stream
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header content-type)" text/event-stream
	assert_equal "$HTTP_BODY" ""
}

@test "the database stopped and started: new streams get 503 meanwhile, open ones resume on the right value" {
	local v
	v=$(counter_value)
	stream_open s /stream
	wait_for_id s "$v"
	stack_pg_stop fast
	wait_until 10 answers_status 503 /stream
	http GET /stream
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	assert_equal "$(header retry-after)" 1
	# the open stream said so, and says when it is back
	grep -q '^data: {"database":"unavailable"}' "$BATS_TEST_TMPDIR/s"
	stack_pg_start
	wait_until 10 answers_200 POST /write
	v=$(counter_value)
	wait_for_id s "$v"
	grep -q '^data: {"database":"ok"}' "$BATS_TEST_TMPDIR/s"
	if stream_ended s; then fail "the stream ended"; fi
}

@test "a change not announced while the LISTEN connection was down is read after it reconnects" {
	local v
	v=$(counter_value)
	stream_open s /stream
	wait_for_id s "$v"
	# the listener's connection ends in the statement that changes the
	# counter: that transaction's notification has no listener
	psql_tally "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'tally-stream';
		UPDATE tally_counter SET value = value + 5 WHERE id = 1" >/dev/null
	wait_for_id s $((v + 5))
	if stream_ended s; then fail "the stream ended"; fi
}

@test "the responder killed: its streams end, and a new one works once it is back" {
	local v pid
	v=$(counter_value)
	stream_open s /stream
	wait_for_id s "$v"
	pid=$(responder_parent stream)
	[ -n "$pid" ]
	kill -KILL "$pid"
	wait_until 10 stream_ended s
	# as an EventSource does: again until a stream opens
	wait_until 15 stream_answers "$v"
}

# stream_answers VALUE: a new stream of the default counter sends an
# event of that id within 2 s.
stream_answers() {
	curl -sN --max-time 2 "$TALLY_URL/stream" | grep -q "^id: $1"
}

# answers_status STATUS PATH: true when a GET answers STATUS.
answers_status() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
		"$TALLY_URL$2") == "$1" ]]
}

@test "NOTIFY comes with the commit only: a rolled-back change announces nothing, a committed one once per counter and statement" {
	local out
	# as the responders' role: LISTEN needs no privilege, nor do the
	# triggers; psql prints the notifications it received
	# (each statement on its own, as a script: -c would send them as one)
	out=$(stack_as_user psql -X -w -tA -v ON_ERROR_STOP=1 -d "$(stack_pg_url)" 2>&1 <<-'SQL'
		LISTEN tally_counter;
		BEGIN;
		UPDATE tally_counter SET value = value + 7 WHERE id = 1;
		ROLLBACK;
		UPDATE tally_counter SET value = value + 1 WHERE id = 1;
		UPDATE tally_counter SET value = value WHERE id = 1;
		SELECT 'done';
	SQL
	)
	run grep -c 'Asynchronous notification "tally_counter"' <<<"$out"
	assert_output 1
	run grep -o 'payload ".*" received' <<<"$out"
	assert_output "payload \"{\"name\" : \"\", \"value\" : $(counter_value)}\" received"
}
