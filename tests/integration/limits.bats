#!/usr/bin/env bats
# tally - the limits of POST /write: at most TALLY_IDEMPOTENCY_MAX_KEYS
# Idempotency-Keys are held (a new key beyond gets 503 and is not
# counted); at the counter's maximum what fits is counted, the rest gets
# a permanent 409, and the database connection stays.

load ../lib/helpers

CAP=40

setup_file() {
	export TALLY_IDEMPOTENCY_MAX_KEYS=$CAP
	tally_stack_start
}

MAX=9223372036854775807

# set_counter VALUE: puts the counter at VALUE, as the database's owner.
set_counter() {
	psql_tally "UPDATE tally_counter SET value = $1 WHERE id = 1"
}

# write_backends: the server pids of tally-write's statement connections.
write_backends() {
	psql_tally "SELECT pid FROM pg_stat_activity
		WHERE application_name = 'tally-write' ORDER BY pid" | tr '\n' ' '
}

# connected_lines: how many times tally-write logged a new connection.
connected_lines() {
	grep -c '"database: connected"' "$STACK_LOG_DIR/write.log" || true
}

# writes_at_once OUT [curl options...]: one POST /write per line of
# stdin (a name fit for a file; {} in the options is replaced by it), all
# at once. OUT gets one line per answer, "BODY STATUS". Each body goes to
# a file of its own first: curls writing to one file interleave.
writes_at_once() {
	local out=$1 dir name code
	shift
	dir=$(mktemp -d "$BATS_TEST_TMPDIR/answers.XXXXXX")
	xargs -P 50 -I{} curl -s --max-time 30 -o "$dir/{}" -w '{} %{http_code}\n' \
		-d '' "$@" "$TALLY_URL/write" >"$dir.codes"
	while read -r name code; do
		printf '%s %s\n' "$(tr -d '\n' <"$dir/$name" 2>/dev/null)" "$code"
	done <"$dir.codes" >"$out"
}

# counters: the "counter" values of the answers on stdin, one a line, as
# written (jq would round numbers this large).
counters() {
	sed -n 's/^{"counter":\([0-9]*\)}.*/\1/p'
}


@test "at most TALLY_IDEMPOTENCY_MAX_KEYS keys are held: a new key beyond gets 503 and counts nothing, known keys replay" {
	local out="$BATS_TEST_TMPDIR/answers" before held value
	psql_tally "TRUNCATE tally_idempotency_keys"
	# 30 keys: room for all
	before=$(counter_value)
	seq -f 'cap-a%g' 30 | writes_at_once "$out" -H 'Idempotency-Key: {}'
	assert_equal "$(grep -c ' 200$' "$out")" 30
	assert_equal "$(counter_value)" "$((before + 30))"
	# 20 more at once, room for 10: exactly 10 count
	seq -f 'cap-b%g' 20 | writes_at_once "$out" -H 'Idempotency-Key: {}'
	assert_equal "$(grep -c ' 200$' "$out")" 10
	assert_equal "$(grep -c ' 503$' "$out")" 10
	assert_equal "$(counter_value)" "$((before + 40))"
	assert_equal "$(keys_in_table)" "$CAP"
	# full: a new key is refused, not counted, not recorded
	write_with_key cap-c1
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$(header content-type)" "application/json"
	# room comes when the expiry next runs: every minute (at most) here
	assert_equal "$(header retry-after)" 60
	assert_equal "$(jq -r .error <<<"$HTTP_BODY")" \
		"too many Idempotency-Keys are held: this one was not counted; retry later with the same key"
	assert_equal "$(counter_value)" "$((before + 40))"
	assert_equal "$(keys_in_table)" "$CAP"
	# keys held still replay their values; writes without a key count
	value=$(psql_tally "SELECT value FROM tally_idempotency_keys WHERE key = 'cap-a7'")
	write_with_key cap-a7
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$value"
	assert_equal "$(header idempotent-replayed)" "true"
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counter_value)" "$((before + 41))"
	# keys deleted (as the expiry does) make room again, one for one
	psql_tally "DELETE FROM tally_idempotency_keys WHERE key IN ('cap-a1', 'cap-a2')"
	write_with_key cap-c1
	assert_equal "$HTTP_STATUS" 200
	write_with_key cap-c2
	assert_equal "$HTTP_STATUS" 200
	write_with_key cap-c3
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$(counter_value)" "$((before + 43))"
	# the database's own count agrees with the keys held
	held=$(psql_tally "SELECT c.keys_added - r.removed FROM tally_counter AS c,
		tally_idempotency_removed AS r")
	assert_equal "$held" "$(keys_in_table)"
	psql_tally "TRUNCATE tally_idempotency_keys"
	write_with_key cap-c3
	assert_equal "$HTTP_STATUS" 200
}

@test "50 concurrent writes two below the maximum: 2 counted with distinct values, 48 refused with 409, no reconnect" {
	local out="$BATS_TEST_TMPDIR/answers" backends lines
	answers_200 POST /write
	backends=$(write_backends)
	lines=$(connected_lines)
	set_counter $((MAX - 2))
	seq 50 | writes_at_once "$out"
	assert_equal "$(wc -l <"$out")" 50
	assert_equal "$(grep -c ' 200$' "$out")" 2
	assert_equal "$(grep -c ' 409$' "$out")" 48
	assert_equal "$(grep ' 200$' "$out" | counters | sort -u | tr '\n' ' ')" \
		"$((MAX - 1)) $MAX "
	assert_equal "$(grep ' 409$' "$out" | sed 's/ 409$//' | jq -r .error | sort -u)" \
		"the counter is at its maximum, $MAX: it counts no more"
	assert_equal "$(counter_value)" "$MAX"
	# every batch committed: the same connections, no reconnect logged
	assert_equal "$(write_backends)" "$backends"
	assert_equal "$(connected_lines)" "$lines"
	# and it stays there: a permanent answer, no Retry-After
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 409
	assert_equal "$(header retry-after)" ""
	assert_equal "$(header content-type)" "application/json"
	assert_equal "$(counter_value)" "$MAX"
	http GET /read
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counters <<<"$HTTP_BODY")" "$MAX"
}

@test "keyed writes at the maximum: what fits is counted, new keys are refused, a key counted before still replays" {
	local out="$BATS_TEST_TMPDIR/answers" key="limit-$RANDOM" backends
	psql_tally "TRUNCATE tally_idempotency_keys"
	set_counter $((MAX - 10))
	write_with_key "$key-old"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counters <<<"$HTTP_BODY")" "$((MAX - 9))"
	backends=$(write_backends)
	set_counter $((MAX - 3))
	# 20 distinct keys and 20 unkeyed at once: 3 fit
	seq 20 | writes_at_once "$out.keyed" -H "Idempotency-Key: $key-{}" &
	seq 20 | writes_at_once "$out.unkeyed"
	wait
	cat "$out.keyed" "$out.unkeyed" >"$out"
	assert_equal "$(wc -l <"$out")" 40
	assert_equal "$(grep -c ' 200$' "$out")" 3
	assert_equal "$(grep -c ' 409$' "$out")" 37
	assert_equal "$(grep ' 200$' "$out" | counters | sort -u | tr '\n' ' ')" \
		"$((MAX - 2)) $((MAX - 1)) $MAX "
	assert_equal "$(counter_value)" "$MAX"
	# the keys recorded are exactly those answered 200
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys
		WHERE key LIKE '$key-%' AND key <> '$key-old'")" \
		"$(grep -c ' 200$' "$out.keyed" || true)"
	write_with_key "$key-old"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counters <<<"$HTTP_BODY")" "$((MAX - 9))"
	assert_equal "$(header idempotent-replayed)" "true"
	write_with_key "$key-new"
	assert_equal "$HTTP_STATUS" 409
	assert_equal "$(counter_value)" "$MAX"
	assert_equal "$(write_backends)" "$backends"
}
