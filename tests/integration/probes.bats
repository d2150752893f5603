#!/usr/bin/env bats
# tally - the probes stay answerable: 10,000 idle connections, then
# 10,000 slowloris ones (one header byte every 5 s), all from one client
# to the public port, exhaust the public lighttpd; the internal listener
# (lighttpd-internal.conf), which the kubelet's probes and ./dev's checks
# use, answers /livez, /healthz and /metrics within 1 s throughout.
# One scenario at a time: a process may open 20,000 files here.

load ../lib/helpers

TALLY_TEST_LIB="$TALLY_SRCDIR/tests/lib"

# internal_answers PATH: 200 from the internal listener within 1 s.
internal_answers() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$TALLY_INTERNAL_URL$1") == 200 ]]
}

# flood KIND: holds 10,000 connections of KIND to the public port while
# probing the internal listener 10 times, once a second; every probe of
# every path must answer.
flood() {
	local kind=$1 summary="$BATS_TEST_TMPDIR/$1.json" flooder i path failed=0
	python3 "$TALLY_TEST_LIB/idle_conns.py" 127.0.0.1 "$TALLY_PORT" "--$kind" 10000 \
		--slow-every 5 --open-timeout 15 --hold 25 >"$summary" 3>&- &
	flooder=$!
	assert wait_until 30 grep -q '"opened"' "$summary"
	head -1 "$summary"
	# the public listener is full: it holds TALLY_MAX_CONNECTIONS
	for ((i = 0; i < 10; i++)); do
		for path in /livez /healthz /metrics; do
			internal_answers "$path" || { echo "round $i: $path did not answer within 1 s"; failed=$((failed + 1)); }
		done
		sleep 1
	done
	wait "$flooder"
	tail -1 "$summary"
	assert_equal "$failed" 0
}

@test "10,000 idle connections to the public port: the internal listener answers every probe within 1 s" {
	flood idle
	# and the public one serves again once they are gone
	assert wait_until 20 answers_200 GET /livez
}

@test "10,000 slowloris connections to the public port: the internal listener answers every probe within 1 s" {
	flood slow
	assert wait_until 20 answers_200 GET /livez
}
