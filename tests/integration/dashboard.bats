#!/usr/bin/env bats
# tally - the Grafana dashboard on a healthy service: a real Prometheus
# (Debian's prometheus, on a free loopback port, its own data directory)
# scrapes a healthy stack's /metrics, a little traffic goes by, and every
# query of etc/grafana/tally.json, its variables filled in as Grafana
# would, must give at least one series and no NaN: no "No data" panel and
# no series that is never a number.

load ../lib/helpers

DASHBOARD="$TALLY_SRCDIR/etc/grafana/tally.json"
# Prometheus scrapes every second; the queries' $__rate_interval (Grafana:
# at least four scrape intervals) is RATE_WINDOW.
RATE_WINDOW=1m

setup_file() {
	require_tool prometheus "apt-get install prometheus" || return 0
	tally_stack_start
	local dir="$BATS_FILE_TMPDIR/prometheus"
	mkdir -p "$dir/data"
	PROM_PORT=$(free_port)
	export PROM_URL="http://127.0.0.1:$PROM_PORT"
	cat >"$dir/prometheus.yml" <<-EOF
		global:
		  scrape_interval: 1s
		  evaluation_interval: 1s
		scrape_configs:
		  - job_name: tally
		    static_configs:
		      - targets: ["${TALLY_INTERNAL_URL#http://}"]   # the internal listener
	EOF
	prometheus --config.file="$dir/prometheus.yml" \
		--storage.tsdb.path="$dir/data" \
		--web.listen-address="127.0.0.1:$PROM_PORT" \
		--log.level=warn >"$dir/prometheus.log" 2>&1 3>&- &
	echo "$!" >"$dir/pid"
	wait_until 60 prom_ready ||
		fail "prometheus did not get ready: $(tail -5 "$dir/prometheus.log")"
}

teardown_file() {
	local pidfile="$BATS_FILE_TMPDIR/prometheus/pid"
	if [[ -f $pidfile ]] && kill -TERM "$(<"$pidfile")" 2>/dev/null; then
		wait_until 30 pid_gone "$(<"$pidfile")" ||
			kill -KILL "$(<"$pidfile")" 2>/dev/null || true
	fi
	tally_stack_stop
}

# A test that fails while the database is stopped must not leave it so.
teardown() {
	prerequisites_missing ||
		[[ -f $(stack_pg_data)/postmaster.pid ]] || stack_pg_start
}

prom_ready() {
	curl -sf -o /dev/null --max-time 5 "$PROM_URL/-/ready"
}

# prom_query PROMQL: Prometheus's JSON answer for an instant query now.
prom_query() {
	curl -sf --max-time 20 -G "$PROM_URL/api/v1/query" --data-urlencode "query=$1"
}

# prom_has PROMQL: the query gives at least one series.
prom_has() {
	prom_query "$1" | jq -e '.data.result | length > 0' >/dev/null
}

# label_values SELECTOR LABEL: the values of LABEL on the series of
# SELECTOR, one a line (Grafana's label_values()).
label_values() {
	curl -sf --max-time 20 -G "$PROM_URL/api/v1/label/$2/values" \
		--data-urlencode "match[]=$1" | jq -r '.data[]'
}

# Every query of the dashboard, one a line (in rows too).
dashboard_exprs() {
	jq -r '[.panels[] | .. | objects | .expr? | strings] | .[]' "$DASHBOARD"
}

# fill_in EXPR: EXPR with Grafana's variables replaced: each templating
# variable by the values its label_values() query finds now, as a regex
# alternation (what a multi-value variable gives =~), the time variables
# by RATE_WINDOW.
fill_in() {
	local expr=$1 name def selector label values
	while IFS=$'\t' read -r name def; do
		[[ $def =~ ^label_values\((.*),\ *([a-z_]+)\)$ ]] ||
			fail "variable $name: not label_values(selector, label): $def"
		label=${BASH_REMATCH[2]}
		selector=$(fill_vars "${BASH_REMATCH[1]}")
		values=$(label_values "$selector" "$label" | paste -sd '|')
		[[ -n $values ]] || fail "variable $name: no values for $def"
		VARS[$name]="($values)"
	done < <(jq -r '.templating.list[] | select(.type == "query")
		| [.name, .definition] | @tsv' "$DASHBOARD")
	fill_vars "$expr"
}

declare -gA VARS

# fill_vars TEXT: TEXT with the variables known so far replaced.
fill_vars() {
	local text=$1 name
	for name in "${!VARS[@]}"; do
		text=${text//\$$name/${VARS[$name]}}
	done
	text=${text//\$__rate_interval/$RATE_WINDOW}
	text=${text//\$__interval/$RATE_WINDOW}
	text=${text//\$__range/$RATE_WINDOW}
	printf '%s\n' "$text"
}

# traffic: a few answers on every API path, one of them a 405.
traffic() {
	local path _
	for _ in 1 2 3; do
		for path in /time /read /healthz /livez; do
			http GET "$path"
			assert_equal "$path $HTTP_STATUS" "$path 200"
		done
		http POST /write -d ''
		assert_equal "$HTTP_STATUS" 200
	done
	http GET /write
	assert_equal "$HTTP_STATUS" 405
}

@test "every dashboard query gives series and no NaN on a healthy service scraped by Prometheus" {
	local expr filled answer n=0
	wait_until 60 prom_has 'up{job="tally"} == 1' ||
		fail "Prometheus does not scrape the stack: $(prom_query 'up')"
	traffic
	# scraped after the traffic (the histogram is there from the start,
	# so its rate is above 0 from this scrape on)
	wait_until 60 prom_has "rate(http_request_duration_seconds_count{path=\"/write\"}[$RATE_WINDOW]) > 0" ||
		fail "Prometheus did not scrape the traffic"
	# a healthy service has no requests on path "other": no series
	run prom_query 'http_request_duration_seconds_count{path="other"}'
	assert_success
	assert_equal "$(jq '.data.result | length' <<<"$output")" 0
	while read -r expr; do
		n=$((n + 1))
		filled=$(fill_in "$expr")
		[[ $filled != *'$'* ]] || fail "a variable is left in: $filled"
		answer=$(prom_query "$filled") || fail "query refused: $filled"
		jq -e '.status == "success"' <<<"$answer" >/dev/null ||
			fail "query failed: $filled: $answer"
		jq -e '.data.result | length > 0' <<<"$answer" >/dev/null ||
			fail "no series (Grafana: No data): $filled"
		jq -e '[.data.result[].value[1]] | all(test("^-?[0-9]+(\\.[0-9]+)?(e[-+]?[0-9]+)?$"))' \
			<<<"$answer" >/dev/null ||
			fail "NaN or Inf in: $filled: $(jq -c '.data.result' <<<"$answer")"
	done < <(dashboard_exprs)
	# every panel's queries, not none
	assert_equal "$n" "$(jq '[.panels[] | .. | objects | .expr? | strings] | length' "$DASHBOARD")"
	((n >= 15))
}

@test "the error-ratio queries show 0 without errors and a ratio with them" {
	local expr ratio
	# the overall ratio: 0 now (no 5xx since the start) ...
	expr=$(dashboard_exprs | grep -m1 '^(sum(rate(http_requests_total{[^}]*code=~"5\.\."')
	ratio=$(prom_query "$(fill_in "$expr")" | jq -r '.data.result[0].value[1]')
	assert_equal "$ratio" 0
	# ... and above 0 after 5xx answers of a responder (lighttpd's own
	# are not counted): /read answers 503 while the database is down. The
	# series appears with its first count, which no rate sees: scraped
	# once, then more.
	stack_pg_stop fast
	http GET /read
	assert_equal "$HTTP_STATUS" 503
	wait_until 60 prom_has 'http_requests_total{path="/read",code="503"}'
	local _
	for _ in 1 2 3 4; do
		http GET /read
		assert_equal "$HTTP_STATUS" 503
	done
	stack_pg_start
	wait_until 60 prom_has "increase(http_requests_total{path=\"/read\",code=\"503\"}[$RATE_WINDOW]) > 0"
	ratio=$(prom_query "$(fill_in "$expr")" | jq -r '.data.result[0].value[1]')
	[[ $ratio != 0 && $ratio != NaN ]] || fail "ratio $ratio after 503s"
	expr=$(dashboard_exprs | grep -m1 '^(sum by (path) (rate(http_requests_total{[^}]*code=~"5\.\."')
	run prom_query "$(fill_in "$expr")"
	assert_success
	assert_equal "$(jq -r '.data.result[] | select(.metric.path == "/read") | .value[1] != "0"' <<<"$output")" true
	assert_equal "$(jq -r '[.data.result[] | select(.metric.path == "/metrics")][0].value[1]' <<<"$output")" 0
}
