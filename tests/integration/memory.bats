#!/usr/bin/env bats
# tally - lighttpd within the pod's memory: 4,000 connections, each with
# 7.6 KB of headers and a 16 KiB partial body (the largest request that
# lighttpd.conf lets through, held while it waits for the rest), against
# a stack whose connection limits derive from the chart's memory limit of
# the web container (TALLY_MEMORY_LIMIT, as the chart passes it). The
# public lighttpd's resident memory (/proc, not the container's: no pod
# here) stays below three quarters of that limit, and falls back to near
# its start once the connections are gone.

load ../lib/helpers

TALLY_TEST_LIB="$TALLY_SRCDIR/tests/lib"

# The chart's web.resources.limits.memory, in bytes.
chart_memory_limit() {
	python3 - "$TALLY_SRCDIR/helm/tally/values.yaml" <<-'PY'
		import re, sys, yaml
		q = str(yaml.safe_load(open(sys.argv[1]))["web"]["resources"]["limits"]["memory"])
		n, unit = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|k|M|G|)", q).groups()
		print(int(n) * {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1000,
		                "M": 1000**2, "G": 1000**3, "": 1}[unit])
	PY
}

setup_file() {
	TALLY_MEMORY_LIMIT=$(chart_memory_limit)
	export TALLY_MEMORY_LIMIT
	tally_stack_start
}

# attack HEADER_BYTES AFTER: the attack, its figures in $out; checks that
# lighttpd held as many connections as it may and stayed below 3/4 of
# the limit.
attack() {
	local pid limit_kb=$((TALLY_MEMORY_LIMIT / 1024))
	out="$BATS_TEST_TMPDIR/heavy-$1.json"
	pid=$(stack_pid lighttpd)
	assert_equal "$(ps -o comm= -p "$pid")" lighttpd
	python3 "$TALLY_TEST_LIB/heavy_conns.py" 127.0.0.1 "$TALLY_PORT" "$pid" \
		--conns 4000 --header-bytes "$1" --hold 10 --after "$2" --until-below 8192 >"$out"
	echo "# $1 bytes of headers: $(cat "$out")" >&3
	assert_equal "$(jq .opened "$out")" 4000
	# it held as many as it may: each costs more than 40 KiB
	assert [ "$(jq '.peak_kb - .baseline_kb' "$out")" -gt $((TALLY_MAX_CONNECTIONS * 40)) ]
	assert [ "$(jq .peak_kb "$out")" -lt $((limit_kb * 3 / 4)) ]
}

@test "4,000 connections with 7.6 KB, then 16 KB, of headers and a 16 KiB partial body: lighttpd stays below 3/4 of the chart's memory limit, and falls back" {
	local out
	# fewer connections than the attack opens: the rest wait in the queue
	assert [ "$TALLY_MAX_CONNECTIONS" -lt 4000 ]
	attack 7600 1
	attack 16000 80
	assert [ "$(jq .end_kb "$out")" -lt 8192 ]
	# and it serves again
	assert wait_until 20 answers_200 GET /time
}
