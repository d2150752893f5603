#!/usr/bin/env bats
# tally - the benchmark's open-loop generator (tests/bench/openloop.c)
# sends exactly the requests its schedule holds, whatever the answers do,
# counts every answer, and sends each Idempotency-Key once. Counts only:
# no timing is asserted.

load ../lib/helpers

setup_file() {
	tally_stack_start
	cc -O2 -Wall -Wextra -Werror -o "$BATS_FILE_TMPDIR/openloop" \
		"$TALLY_SRCDIR/tests/bench/openloop.c"
}

# openloop ARGS...: runs it; FIELDS holds its result line's fields:
# 1 duration_us, 2 requests, 3 ok, 4 errors, 5-7 p50 p99 p999,
# 8 offered, 9 sent rate, 10-11 lag, 12 unanswered, 13 all_ok,
# 14 all_unanswered.
openloop() {
	local line
	line=$("$BATS_FILE_TMPDIR/openloop" "$@" | grep '^bench-result')
	IFS=$'\t' read -ra FIELDS <<<"$line"
	echo "# ${FIELDS[*]}" >&3
}

@test "openloop sends exactly the requests due in the measured seconds" {
	# 200 a second, measured from 0.5 s to 2.5 s: requests 100 to 499
	openloop -c 4 -r 200 -d 2 -w 0.5 "$TALLY_URL/time"
	assert_equal "${FIELDS[2]}" 400
	assert_equal "${FIELDS[3]}" 400
	assert_equal "${FIELDS[4]}" 0
	assert_equal "${FIELDS[9]}" 200
	assert_equal "${FIELDS[12]}" 0
	# the warm-up's 100 are answered too
	assert_equal "${FIELDS[13]}" 500
}

@test "openloop's keyed writes: each key counted once, replayed on a second run" {
	local before
	before=$(counter_value)
	openloop -c 4 -r 100 -d 1 -w 0.5 -m post-keyed -k "openloop-$$" "$TALLY_URL/write"
	assert_equal "${FIELDS[13]}" 150
	assert_equal "$(counter_value)" $((before + 150))
	# the same schedule sends the same keys: all replays
	openloop -c 4 -r 100 -d 1 -w 0.5 -m post-keyed -k "openloop-$$" "$TALLY_URL/write"
	assert_equal "${FIELDS[13]}" 150
	assert_equal "$(counter_value)" $((before + 150))
}

@test "openloop counts refused connections as errors and still ends" {
	local port
	port=$(free_port)
	openloop -c 2 -r 50 -d 1 -w 0 "http://127.0.0.1:$port/time" || true
	[ -z "${FIELDS[*]}" ] || [ "${FIELDS[3]}" -eq 0 ]
}

@test "openloop in a closed loop (-r 0): every request answered, counted once on the counter" {
	local before
	before=$(counter_value)
	openloop -c 4 -r 0 -d 1 -w 0.5 -m post "$TALLY_URL/write"
	# none left unanswered, none failed; the warm-up's count too
	assert_equal "${FIELDS[4]}" 0
	assert_equal "${FIELDS[12]}" 0
	assert_equal "${FIELDS[14]}" 0
	assert [ "${FIELDS[2]}" -gt 0 ]
	assert_equal "${FIELDS[3]}" "${FIELDS[2]}"
	assert [ "${FIELDS[13]}" -ge "${FIELDS[3]}" ]
	assert_equal "$(counter_value)" $((before + FIELDS[13]))
}

@test "openloop's Zipf names: the same counters for the same seed, each one's 200s are what it gained" {
	local name ok un total=0 first
	openloop -c 4 -r 200 -d 1 -w 0.5 -m post -z 50 -n "zipf$$-" -s 7 \
		-o "$BATS_TEST_TMPDIR/counts" "$TALLY_URL/write"
	assert_equal "${FIELDS[13]}" 300
	# every counter written holds exactly its 200s (they were new)
	while IFS=$'\t' read -r name ok un; do
		assert_equal "$un" 0
		assert_equal "$(psql_tally "SELECT value FROM tally_counter WHERE name = '$name'")" "$ok"
		total=$((total + ok))
	done <"$BATS_TEST_TMPDIR/counts"
	assert_equal "$total" 300
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_counter WHERE name LIKE 'zipf$$-%'")" \
		"$(wc -l <"$BATS_TEST_TMPDIR/counts")"
	# Zipf(1.0) over 50: the first counter gets about 22% of them, the
	# 50th about 0.4% (a loose bound: 300 draws)
	first=$(awk -F'\t' -v n="zipf$$-1" '$1 == n { print $2 }' "$BATS_TEST_TMPDIR/counts")
	assert [ "$first" -ge 30 ]
	assert [ "$first" -le 110 ]
	# the same seed and schedule draw the same counters
	openloop -c 4 -r 200 -d 1 -w 0.5 -m post -z 50 -n "zipf$$-" -s 7 \
		-o "$BATS_TEST_TMPDIR/again" "$TALLY_URL/write"
	run diff "$BATS_TEST_TMPDIR/counts" "$BATS_TEST_TMPDIR/again"
	assert_success
}
