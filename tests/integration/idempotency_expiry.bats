#!/usr/bin/env bats
# tally - Idempotency-Key retention: expired keys count again and are
# removed in the background. A short retention, on its own stack.

load ../lib/helpers

setup_file() {
	export TALLY_IDEMPOTENCY_RETENTION=3
	tally_stack_start
}

@test "expiry: after the retention period a key counts again" {
	local before key="expire-$RANDOM"
	before=$(counter_value)
	write_with_key "$key"
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
	sleep 4
	write_with_key "$key"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header idempotent-replayed)" ""
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 2))"
}

@test "the background cleanup keeps the table small under sustained keyed load" {
	local i peak=0 n
	# ~10 s of keyed load: far more keys than one retention period holds
	for i in $(seq 10); do
		seq 100 | xargs -P 16 -I{} curl -s -o /dev/null --max-time 10 -d '' \
			-H "Idempotency-Key: load-$i-{}-$RANDOM" "$TALLY_URL/write"
		n=$(keys_in_table)
		((n > peak)) && peak=$n
		sleep 0.5
	done
	echo "# keys in the table at most: $peak of 1000 sent" >&3
	# retention 3 s, cleanup every second: about 4 rounds of keys at most
	[ "$peak" -lt 800 ]
	sleep 5
	[ "$(keys_in_table)" -lt 150 ]
}

