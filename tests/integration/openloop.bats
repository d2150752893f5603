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
