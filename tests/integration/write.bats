#!/usr/bin/env bats
# tally - the combined write path: concurrent increments share one
# UPDATE ... + k RETURNING, yet every answer is distinct, every acknowledged
# increment is durable, and a failed batch counts nothing.

load ../lib/helpers

# Two worker processes per responder: their statements take turns at the
# database (src/turn.h), and the checks below span both.
setup_file() {
	export TALLY_PROCESSES=2
	tally_stack_start
}

# The number of UPDATE statements the responders have run so far.
increment_statements() {
	curl -s "$TALLY_INTERNAL_URL/metrics" |
		sed -n 's/^tally_db_query_duration_seconds_count{statement="increment"} //p'
}

@test "1000 concurrent POSTs: combined into fewer statements, 1000 distinct values, exact count" {
	local stmts_before stmts
	stmts_before=$(increment_statements)
	assert_concurrent_writes 1000 64
	stmts=$(($(increment_statements) - stmts_before))
	echo "# 1000 increments took $stmts UPDATE statements" >&3
	[ "$stmts" -ge 1 ]
	[ "$stmts" -lt 1000 ]
}

@test "acknowledged increments survive a crash of the database" {
	local out acked
	out=$(mktemp)
	seq 300 | xargs -P 32 -I{} curl -s --max-time 30 -d '' "$TALLY_URL/write" >"$out"
	acked=$(jq -s 'map(.counter) | max' "$out")
	# immediate: no shutdown checkpoint, recovery replays the WAL
	stack_pg_stop immediate
	stack_pg_start
	[ "$(counter_value)" -ge "$acked" ]
	assert_equal "$(counter_value)" "$acked"
	rm -f "$out"
}

@test "a batch that fails counts nothing: the counter grows by the 200 answers only" {
	local before out holder hold
	before=$(counter_value)
	# hold the counter row twice as long as the statement timeout (2 s
	# by default; the valgrind step sets more)
	hold=$(((${TALLY_DB_TIMEOUT_MS:-2000} * 2 + 999) / 1000))
	psql_tally "BEGIN; SELECT value FROM tally_counter WHERE id = 1 FOR UPDATE; SELECT pg_sleep($hold); COMMIT;" >/dev/null &
	holder=$!
	sleep 0.5
	out=$(mktemp)
	seq 20 | xargs -P 20 -I{} curl -s -o /dev/null -w '%{http_code}\n' --max-time $((hold * 2 + 7)) \
		-d '' "$TALLY_URL/write" >"$out"
	wait "$holder"
	# the first batches time out while the row is held; batches queued
	# behind them may run once it is free
	[ "$(grep -c '^503$' "$out")" -ge 1 ]
	assert_equal "$(grep -vc -e '^503$' -e '^200$' "$out")" 0
	assert_equal "$(counter_value)" "$((before + $(grep -c '^200$' "$out")))"
	before=$(counter_value)
	# and the service is back at once
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
	rm -f "$out"
}

@test "reads combine too and never go backwards while writes run" {
	local out reads
	out=$(mktemp)
	{
		seq 200 | xargs -P 16 -I{} curl -s --max-time 30 -d '' "$TALLY_URL/write" >/dev/null &
		for _ in $(seq 100); do curl -s --max-time 10 "$TALLY_URL/read"; echo; done
		wait
	} >"$out"
	reads=$(jq -r .counter "$out" | grep -c .)
	assert_equal "$reads" 100
	# one reader in sequence: each value at least the one before
	run bash -c "jq -r .counter '$out' | sort -c -n"
	assert_success
	rm -f "$out"
}

@test "reads, unkeyed, keyed and replayed writes at once over both processes: every read current during its request, every fresh write distinct, exact count" {
	local before
	before=$(counter_value)
	# 24 writers and 8 readers with a connection per request, so lighttpd
	# spreads them over both worker processes of each responder
	run python3 "$TALLY_SRCDIR/tests/lib/linearizable.py" "$TALLY_URL" "$before" \
		--writers 24 --readers 8 --each 60 --key-prefix "lin-$RANDOM"
	echo "# $output" >&3
	assert_success
	# 24 x 60 writes: 10 replays each, so 50 fresh each
	assert_equal "$(counter_value)" "$((before + 24 * 50))"
}
