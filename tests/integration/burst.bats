#!/usr/bin/env bats
# tally - bursts of concurrent writers: 4,000 and 10,000 POST /write at
# once, with and without Idempotency-Keys, on connections closed after
# the answer or kept alive. Every answer must be 200 with a value of its
# own, counted, or 503 JSON with Retry-After, not counted; never a 500 or
# a dropped connection. After each burst the counter has grown by exactly
# the 200s, and by key: each key that got 200 is recorded with the value
# it got, and no other key of the burst is.

load ../lib/helpers

TALLY_TEST_LIB="$TALLY_SRCDIR/tests/lib"

# burst N MODE...: runs the burst and checks its outcome (MODE: keyed,
# keep-alive).
burst() {
	local n=$1 prefix="" args=() mode before after n200 out="$BATS_TEST_TMPDIR/burst.json"
	shift
	for mode in "$@"; do
		case $mode in
		keyed) prefix="burst-$n-$BATS_TEST_NUMBER-$RANDOM" && args+=(--keyed "$prefix") ;;
		keep-alive) args+=(--keep-alive) ;;
		esac
	done
	before=$(counter_value)
	python3 "$TALLY_TEST_LIB/burst.py" 127.0.0.1 "$TALLY_PORT" --writers "$n" \
		--timeout 60 "${args[@]}" >"$out"
	after=$(counter_value)
	jq -c .status "$out"
	# only 200 and 503, the 503s JSON with Retry-After
	assert_equal "$(jq -c '.status | keys - ["200", "503"]' "$out")" "[]"
	assert_equal "$(jq .bad_503 "$out")" 0
	# the 200s: distinct values, the counter grew by exactly their number
	n200=$(jq '.status["200"] // 0' "$out")
	assert_equal "$(jq '.values | unique | length' "$out")" "$n200"
	assert_equal "$((after - before))" "$n200"
	if ((n200 > 0)); then
		assert [ "$(jq '.values | min' "$out")" -gt "$before" ]
		assert [ "$(jq '.values | max' "$out")" -le "$after" ]
	fi
	if [[ -n $prefix ]]; then
		# by key: what the database recorded is what each 200 said
		assert_equal "$(jq .replayed "$out")" 0
		assert_equal \
			"$(psql_tally "SELECT key || ' ' || value FROM tally_idempotency_keys WHERE key LIKE '$prefix-%' ORDER BY 1")" \
			"$(jq -r '.keys_200 | to_entries[] | "\(.key) \(.value)"' "$out" | LC_ALL=C sort)"
	fi
}

@test "4,000 concurrent unkeyed writers, Connection: close" {
	burst 4000
}

@test "4,000 concurrent keyed writers, Connection: close" {
	burst 4000 keyed
}

@test "4,000 concurrent unkeyed writers, keep-alive" {
	burst 4000 keep-alive
}

@test "4,000 concurrent keyed writers, keep-alive" {
	burst 4000 keyed keep-alive
}

@test "10,000 concurrent unkeyed writers, Connection: close" {
	burst 10000
}

@test "10,000 concurrent keyed writers, Connection: close" {
	burst 10000 keyed
}

@test "10,000 concurrent unkeyed writers, keep-alive" {
	burst 10000 keep-alive
}

@test "10,000 concurrent keyed writers, keep-alive" {
	burst 10000 keyed keep-alive
}
