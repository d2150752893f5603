#!/usr/bin/env bats
# tally - POST /write with an Idempotency-Key never counts twice.

load ../lib/helpers

# write_with_key_answers_200 KEY: POST /write with KEY once; true when it
# answered 200 (HTTP_* hold the answer either way).
write_with_key_answers_200() {
	write_with_key "$1"
	[[ $HTTP_STATUS == 200 ]]
}

@test "the same key twice: one increment, the same value, the replay header" {
	local before first
	before=$(counter_value)
	write_with_key "same-$BATS_TEST_NUMBER"
	assert_equal "$HTTP_STATUS" 200
	first=$(jq -r .counter <<<"$HTTP_BODY")
	assert_equal "$first" "$((before + 1))"
	assert_equal "$(header idempotent-replayed)" ""
	write_with_key "same-$BATS_TEST_NUMBER"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$first"
	assert_equal "$(header idempotent-replayed)" "true"
	assert_equal "$(counter_value)" "$((before + 1))"
}

@test "different keys: two increments" {
	local before
	before=$(counter_value)
	write_with_key "a-$RANDOM-$BATS_TEST_NUMBER"
	assert_equal "$HTTP_STATUS" 200
	write_with_key "b-$RANDOM-$BATS_TEST_NUMBER"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counter_value)" "$((before + 2))"
}

@test "50 concurrent requests sharing one key: exactly one increment, all get the same value" {
	local before out key="shared-$RANDOM"
	before=$(counter_value)
	out=$(mktemp)
	seq 50 | xargs -P 50 -I{} curl -s --max-time 30 -d '' \
		-H "Idempotency-Key: $key" "$TALLY_URL/write" >"$out"
	assert_equal "$(jq -s length "$out")" 50
	assert_equal "$(jq -r .counter "$out" | sort -u)" "$((before + 1))"
	assert_equal "$(counter_value)" "$((before + 1))"
	rm -f "$out"
}

@test "keyed and unkeyed requests mixed in combined batches: exact count, distinct fresh values" {
	local before out
	before=$(counter_value)
	out=$(mktemp)
	# 100 unkeyed, 100 with 50 keys used twice each, all at once
	seq 50 | sed "s/^/mix-$RANDOM-/" >"$out.once"
	{ yes - | head -100; cat "$out.once" "$out.once"; } >"$out.keys"
	# shellcheck disable=SC2016 # sh -c expands $1 and $2
	shuf "$out.keys" | xargs -P 64 -I{} sh -c \
		'if [ "$1" = - ]; then curl -s --max-time 30 -d "" "$2/write"; else curl -s --max-time 30 -d "" -H "Idempotency-Key: $1" "$2/write"; fi; echo' \
		_ {} "$TALLY_URL" | grep . >"$out"
	assert_equal "$(jq -s length "$out")" 200
	# 100 unkeyed + 50 distinct keys = 150 increments
	assert_equal "$(counter_value)" "$((before + 150))"
	# 150 distinct values among the answers: every fresh increment its own
	assert_equal "$(jq -r .counter "$out" | sort -un | wc -l)" 150
	assert_equal "$(jq -s 'map(.counter) | max' "$out")" "$((before + 150))"
	rm -f "$out" "$out.keys" "$out.once"
}

@test "a keyed request whose answer was lost, retried after a database restart: no second increment" {
	local before key="lost-$RANDOM"
	before=$(counter_value)
	# the client gives up before reading the answer; the increment commits
	curl -s --max-time 5 -d '' -H "Idempotency-Key: $key" "$TALLY_URL/write" >/dev/null
	assert_equal "$(counter_value)" "$((before + 1))"
	stack_pg_stop fast
	stack_pg_start
	wait_until 5 write_with_key_answers_200 "$key"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header idempotent-replayed)" "true"
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
	assert_equal "$(counter_value)" "$((before + 1))"
}

@test "a key recorded while the client was cut off is replayed, not counted again" {
	local before key="cut-$RANDOM"
	before=$(counter_value)
	# kill the client right after it has sent the request
	timeout -s KILL 0.5 curl -s -d '' -H "Idempotency-Key: $key" \
		--limit-rate 1 "$TALLY_URL/write" >/dev/null 2>&1 || true
	sleep 0.5
	write_with_key "$key"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counter_value)" "$(jq -r .counter <<<"$HTTP_BODY")"
	# once counted, exactly once
	write_with_key "$key"
	assert_equal "$(header idempotent-replayed)" "true"
	[ "$(counter_value)" -le "$((before + 1))" ]
}

@test "malformed keys: 400 JSON and no increment" {
	local before key long
	before=$(counter_value)
	long=$(printf 'k%.0s' $(seq 256))
	# too long, or not ASCII: the responder refuses it with JSON
	for key in "$long" $'caf\xc3\xa9' $'\xff\xfe'; do
		write_with_key "$key"
		assert_equal "$HTTP_STATUS" 400
		run jq -r .error <<<"$HTTP_BODY"
		assert_output --partial "Idempotency-Key"
	done
	# control characters never get past lighttpd (400 before any responder)
	for key in $'tab\there' $'bad\x7f' $'nul\x01'; do
		write_with_key "$key"
		assert_equal "$HTTP_STATUS" 400
	done
	# an empty key: lighttpd drops empty header fields before FastCGI, so
	# ask the responder directly, as lighttpd would pass it
	run stack_as_user env -i REQUEST_METHOD=POST SCRIPT_NAME=/write \
		REMOTE_ADDR=127.0.0.1 HTTP_IDEMPOTENCY_KEY= CONTENT_LENGTH=0 \
		cgi-fcgi -bind -connect "$STACK_DIR/run/write.sock"
	assert_output --partial "Status: 400"
	assert_output --partial "Idempotency-Key"
	# 255 characters is still fine
	write_with_key "$(printf 'k%.0s' $(seq 255))"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counter_value)" "$((before + 1))"
}

@test "requests without the header behave as before" {
	local before
	before=$(counter_value)
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header idempotent-replayed)" ""
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
}

# key_table_seq_scans URL: how often PostgreSQL has scanned the key table whole.
key_table_seq_scans() {
	psql -X -q -tA -d "$1" -c \
		"SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'tally_idempotency_keys'"
}

@test "keyed writes on a new, empty key table find keys through its index, also once plans are generic" {
	local db="keyplans_$BATS_TEST_NUMBER" url before calls
	psql_tally "CREATE DATABASE $db OWNER $STACK_PG_OWNER"
	url=$(stack_pg_url_as "$STACK_PG_RUNTIME" "$db")
	DATABASE_URL=$(stack_pg_url_as "$STACK_PG_OWNER" "$db") TALLY_RUNTIME_ROLE=$STACK_PG_RUNTIME \
		"$TALLY_BIN_DIR/tally-migrate" --dir "$TALLY_SQL_DIR"
	before=$(key_table_seq_scans "$url")
	# one connection, as a responder's: PostgreSQL plans a function's
	# statements generically from its sixth call on
	calls=$(for i in $(seq 1 30); do
		echo "SELECT count(*) FROM tally_count_keyed(0, ARRAY['a$i', 'b$i'], 60, 1000);"
	done)
	run stack_as_user psql -X -q -tA -v ON_ERROR_STOP=1 -d "$url" -f - \
		<<<"$calls"$'\nSELECT pg_stat_force_next_flush();'
	assert_success
	assert_equal "$(key_table_seq_scans "$url")" "$before"
	assert_equal "$(stack_as_user psql -X -q -tA -d "$url" -c \
		'SELECT count(*), max(value) FROM tally_idempotency_keys')" "60|60"
	psql_tally "DROP DATABASE $db"
}
