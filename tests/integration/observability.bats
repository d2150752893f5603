#!/usr/bin/env bats
# tally - observability: GET /metrics adds up every responder
# process, passes promtool, and follows the database; responders log JSON
# lines that carry the client's X-Request-Id; lighttpd's access log is JSON;
# the alert rules and the dashboard are valid and use exported series.

load ../lib/helpers

setup_file() {
	require_tool promtool "apt-get install prometheus" || return 0
	# Three worker processes per responder, so the counts must be added
	# up across processes; debug level logs every answer with its pid.
	export TALLY_PROCESSES=3 TALLY_LOG_LEVEL=debug
	STARTED_AT=$(date +%s)
	export STARTED_AT
	tally_stack_start
}

# A test that fails while the database is stopped must not leave it so.
teardown() {
	prerequisites_missing ||
		[[ -f $(stack_pg_data)/postmaster.pid ]] || stack_pg_start
}

RULES_DIR="$TALLY_SRCDIR/etc/prometheus"
DASHBOARD="$TALLY_SRCDIR/etc/grafana/tally.json"

# scrape: GET /metrics (the internal listener) into METRICS.
scrape() {
	http_internal GET /metrics
	assert_equal "$HTTP_STATUS" 200
	METRICS=$HTTP_BODY
}

# sample SERIES [TEXT]: the value of one series, written exactly as
# /metrics writes it (name{labels}), in TEXT or METRICS; 0 when absent.
sample() {
	awk -v s="$1" '$1 == s { v = $2 } END { print (v == "" ? 0 : v) }' \
		<<<"${2:-$METRICS}"
}

# curl_options_for METHOD: how curl sends that method, one per line.
curl_options_for() {
	case $1 in
	GET) ;;
	HEAD) echo --head ;;
	POST) printf '%s\n' --data '' ;;
	*) printf '%s\n' --request "$1" ;;
	esac
}

# send_requests METHOD PATH COUNT TAG: sends COUNT requests, 8 at a time,
# each with "X-Request-Id: TAG-n"; prints each answer's status.
send_requests() {
	local method=$1 path=$2 count=$3 tag=$4 opts
	mapfile -t opts < <(curl_options_for "$method")
	seq 1 "$count" | xargs -P 8 -I '{}' curl -s -o /dev/null --max-time 20 \
		-w '%{http_code}\n' "${opts[@]}" -H "X-Request-Id: $tag-{}" \
		"$TALLY_URL$path"
}

# expect_statuses METHOD PATH COUNT TAG STATUS: sends the requests and
# fails unless every answer has STATUS.
expect_statuses() {
	local statuses
	statuses=$(send_requests "$1" "$2" "$3" "$4" | sort | uniq -c | awk '{ print $2 "x" $1 }')
	assert_equal "$statuses" "${5}x$3"
}

# Problems with the histograms in METRICS, one per line (none: empty):
# buckets must be cumulative with ascending le from 0.0005 to 5 then +Inf,
# and _count must equal the +Inf bucket.
histogram_problems() {
	awk '
	function key_of(series) {
		sub(/,?le="[^"]*"/, "", series)
		sub(/_bucket\{/, "{", series)
		return series
	}
	/^#/ { next }
	$1 ~ /_bucket\{/ {
		k = key_of($1)
		match($1, /le="[^"]*"/)
		le = substr($1, RSTART + 4, RLENGTH - 5)
		if (!(k in nb)) { order[++n] = k; first[k] = le }
		if (nb[k] > 0 && le != "+Inf" && le + 0 <= last_le[k])
			print k ": le " le " after " last_le[k]
		if ($2 + 0 < last_v[k])
			print k ": bucket le=" le " = " $2 " below the one before"
		nb[k]++; last_le[k] = le + 0; last_v[k] = $2 + 0
		if (le == "+Inf") inf[k] = $2; else top[k] = le
		next
	}
	$1 ~ /_count(\{|$)/ { c = $1; sub(/_count/, "", c); count[c] = $2 }
	END {
		for (i = 1; i <= n; i++) {
			k = order[i]
			if (first[k] != "0.0005" || top[k] != "5")
				print k ": buckets from " first[k] " to " top[k]
			if (!(k in inf)) print k ": no +Inf bucket"
			if (count[k] != inf[k])
				print k ": _count " count[k] " != +Inf bucket " inf[k]
		}
		if (n == 0) print "no histogram"
	}' <<<"$METRICS"
}

# requests_for PATH: the sum of http_requests_total over PATH's series.
requests_for() {
	awk -v p="path=\"$1\"" '$1 ~ /^http_requests_total\{/ && index($1, p) { s += $2 }
		END { print s + 0 }' <<<"$METRICS"
}

# log_lines_with_id LOGNAME ID: the JSON lines of a part's log that carry
# request_id ID (lines that are not JSON are skipped here, and caught by
# the log format test).
log_lines_with_id() {
	jq -c -R --arg id "$2" 'fromjson? | select(.request_id == $id)' \
		"$STACK_LOG_DIR/$1.log"
}

# scrape_shows SERIES VALUE: scrapes once; true when SERIES is VALUE, and
# also when /metrics did not answer 200, for the caller to fail on that.
scrape_shows() {
	scrape
	[[ $HTTP_STATUS != 200 || $(sample "$1") == "$2" ]]
}

# wait_for_metric SERIES VALUE SECONDS: scrapes until SERIES is VALUE.
wait_for_metric() {
	wait_until "$3" scrape_shows "$1" "$2" ||
		fail "$1 is $(sample "$1"), not $2, after $3 s"
	assert_equal "$HTTP_STATUS" 200
}

# access_logged ID: true when lighttpd's access log has the line of the
# request with that id.
access_logged() {
	grep -qF "\"request_id\":\"$1\"" "$STACK_LOG_DIR/lighttpd.log"
}

# wait_for_access_log ID SECONDS: lighttpd writes its access log in
# batches; waits until the line of the request with that id is there.
wait_for_access_log() {
	wait_until "$2" access_logged "$1" ||
		fail "no access log line for request id $1 after $2 s"
}

# reads_reconnected BEFORE: sends six GET /read and scrapes once; true
# when tally_db_reconnects_total is above BEFORE, and also when /metrics
# did not answer 200, for the caller to fail on that.
reads_reconnected() {
	send_requests GET /read 6 "reconnect-$RANDOM" >/dev/null
	scrape
	[[ $HTTP_STATUS != 200 ]] || (($(sample tally_db_reconnects_total) > $1))
}

# The metric names a PromQL expression uses (tally's, http_, process_).
metric_names_in() {
	grep -oE '\b(tally|http|process)_[a-z_]+' | sort -u
}

@test "promtool check metrics accepts /metrics" {
	http GET /read
	http POST /write -d ''
	scrape
	# exit 0: it parses, and the linter has no remark (3 would be a lint)
	run promtool check metrics <<<"$METRICS"
	assert_success
	assert_output ""
	assert_equal "$(header content-type)" "text/plain; version=0.0.4; charset=utf-8"
}

@test "/metrics shows every documented series with plausible values" {
	local version now start
	http POST /write -d ''
	scrape
	assert_regex "$METRICS" 'http_requests_total\{path="/write",method="POST",code="200"\} [1-9]'
	assert_regex "$METRICS" 'http_request_duration_seconds_bucket\{path="/write",le="0.0005"\} '
	assert_regex "$METRICS" 'http_request_duration_seconds_bucket\{path="/write",le="5"\} '
	assert_regex "$METRICS" '# TYPE tally_db_query_duration_seconds histogram'
	assert_regex "$METRICS" 'tally_db_query_duration_seconds_count\{statement="increment"\} [1-9]'
	assert_regex "$METRICS" 'tally_db_errors_total\{kind="connect"\} [0-9]'
	assert_regex "$METRICS" 'tally_db_reconnects_total [0-9]'
	assert_equal "$(sample tally_db_up)" 1
	# the metrics responder read the counter for this scrape
	assert_equal "$(sample tally_value)" "$(counter_value)"
	version=$(sed -n 's/^AC_INIT(\[tally\], \[\([^]]*\)\].*/\1/p' "$TALLY_SRCDIR/configure.ac")
	assert_equal "$(sample "tally_build_info{version=\"$version\"}")" 1
	start=$(sample process_start_time_seconds)
	now=$(date +%s)
	((start >= STARTED_AT - 1 && start <= now))
	# every scrape sees the same start, whichever worker answers
	scrape
	assert_equal "$(sample process_start_time_seconds)" "$start"
}

@test "a known sequence of requests across processes: exactly those counts" {
	local before tag=seq$RANDOM expected pids name
	scrape
	before=$METRICS
	expect_statuses GET /time 60 "$tag-time" 200
	expect_statuses HEAD /time 5 "$tag-time-head" 200
	expect_statuses GET /read 40 "$tag-read" 200
	expect_statuses POST /write 50 "$tag-write" 200
	expect_statuses GET /healthz 7 "$tag-healthz" 200
	expect_statuses GET /livez 4 "$tag-livez" 200
	expect_statuses POST /time 3 "$tag-time-post" 405
	expect_statuses PATCH /read 2 "$tag-read-patch" 405
	scrape
	# the first scrape counts itself once it has answered
	expected='http_requests_total{path="/time",method="GET",code="200"} 60
http_requests_total{path="/time",method="HEAD",code="200"} 5
http_requests_total{path="/time",method="POST",code="405"} 3
http_requests_total{path="/read",method="GET",code="200"} 40
http_requests_total{path="/read",method="other",code="405"} 2
http_requests_total{path="/write",method="POST",code="200"} 50
http_requests_total{path="/healthz",method="GET",code="200"} 7
http_requests_total{path="/livez",method="GET",code="200"} 4
http_requests_total{path="/metrics",method="GET",code="200"} 1'
	# the difference of every http_requests_total series, zeros left out
	run awk 'NR == FNR { if ($1 ~ /^http_requests_total\{/) b[$1] = $2; next }
		$1 ~ /^http_requests_total\{/ && $2 - b[$1] != 0 { print $1, $2 - b[$1] }' \
		<(echo "$before") <(echo "$METRICS")
	assert_equal "$(sort <<<"$output")" "$(sort <<<"$expected")"
	# each path's latency histogram counted the same requests
	run awk 'NR == FNR { if ($1 ~ /^http_request_duration_seconds_count/) b[$1] = $2; next }
		$1 ~ /^http_request_duration_seconds_count/ && $2 - b[$1] != 0 { print $1, $2 - b[$1] }' \
		<(echo "$before") <(echo "$METRICS")
	assert_equal "$(sort <<<"$output")" "$(sort <<'EOF'
http_request_duration_seconds_count{path="/healthz"} 7
http_request_duration_seconds_count{path="/livez"} 4
http_request_duration_seconds_count{path="/metrics"} 1
http_request_duration_seconds_count{path="/read"} 42
http_request_duration_seconds_count{path="/time"} 68
http_request_duration_seconds_count{path="/write"} 50
EOF
)"
	# several worker processes served them (debug lines carry the pid)
	for name in time read write; do
		pids=$(jq -R -r --arg tag "$tag-$name-" \
			'fromjson? | select((.request_id // "") | startswith($tag)) | .pid' \
			"$STACK_LOG_DIR/$name.log" | sort -u | wc -l)
		((pids >= 2)) || fail "only $pids process(es) of tally-$name answered"
	done
}

@test "histograms: cumulative buckets from 0.5 ms to 5 s, _count equals the request count" {
	local path
	http GET /time
	http GET /read
	http POST /write -d ''
	scrape
	assert_equal "$(histogram_problems)" ""
	for path in /time /read /write /healthz /livez /metrics; do
		assert_equal "$(sample "http_request_duration_seconds_count{path=\"$path\"}")" \
			"$(requests_for "$path")"
	done
}

@test "tally_db_up is 0 while the database is stopped and 1 again after; errors and reconnects count" {
	local errors_before reconnects_before
	scrape
	assert_equal "$(sample tally_db_up)" 1
	errors_before=$(awk '$1 ~ /^tally_db_errors_total\{/ { s += $2 } END { print s + 0 }' <<<"$METRICS")
	reconnects_before=$(sample tally_db_reconnects_total)

	stack_pg_stop fast
	wait_for_metric tally_db_up 0 10
	http GET /read
	assert_equal "$HTTP_STATUS" 503

	stack_pg_start
	wait_for_metric tally_db_up 1 30
	# the read workers that had a connection make a new one
	wait_until 12 reads_reconnected "$reconnects_before"
	assert_equal "$HTTP_STATUS" 200
	(($(sample tally_db_reconnects_total) > reconnects_before))
	(($(awk '$1 ~ /^tally_db_errors_total\{/ { s += $2 } END { print s + 0 }' <<<"$METRICS") > errors_before))
	assert_equal "$(sample tally_value)" "$(counter_value)"
}

@test "a failing request's X-Request-Id is in its error log lines and its access log line" {
	local id name path caused
	stack_pg_stop fast
	for name in read write healthz; do
		id="obs-fail-$name-$RANDOM"
		case $name in
		read) http GET /read -H "X-Request-Id: $id"; path=/read ;;
		write) http POST /write -d '' -H "X-Request-Id: $id"; path=/write ;;
		healthz) http GET /healthz -H "X-Request-Id: $id"; path=/healthz ;;
		esac
		assert_equal "$HTTP_STATUS" 503
		caused=$(log_lines_with_id "$name" "$id")
		# the answer's error line: status, path, duration, error class
		run jq -e -s --arg p "$path" 'map(select(.level == "error" and .msg == "request failed"
			and .status == 503 and .path == $p and (.duration_us | type) == "number"
			and (.error | type) == "string")) | length == 1' <<<"$caused"
		assert_success
		# the database error it ran into carries the id too
		run jq -e -s 'any(.level == "error" and (.msg | startswith("database: ")))' <<<"$caused"
		assert_success
		wait_for_access_log "$id" 10
		run jq -e -R -s --arg id "$id" --arg p "$path" '[split("\n")[] | fromjson?
			| select(.request_id == $id)] | length == 1 and .[0].status == 503 and .[0].path == $p' \
			"$STACK_LOG_DIR/lighttpd.log"
		assert_success
	done
	stack_pg_start
}

@test "responder logs: every line is a JSON object with time, level and msg" {
	local name bad
	for name in "${TALLY_RESPONDERS[@]}"; do
		[[ -s $STACK_LOG_DIR/$name.log ]] || fail "$name.log is empty"
		# prints the lines that are not such an object
		bad=$(jq -R -r '. as $line | (try fromjson catch null) as $o
			| if ($o | type) == "object"
			and ($o.time | type) == "string"
			and ($o.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$"))
			and ($o.level | IN("debug", "info", "warn", "error"))
			and ($o.msg | type) == "string" then empty else $line end' \
			"$STACK_LOG_DIR/$name.log" | head -3)
		assert_equal "$bad" ""
	done
	# the error lines of the failed requests above are among them
	grep -q '"level":"error"' "$STACK_LOG_DIR/read.log"
}

@test "lighttpd access log: a JSON object per request with the documented fields" {
	local id="obs-access-$RANDOM" line
	http GET '/time?a=%22b%22' -H "X-Request-Id: $id" -A 'agent "quoted" \ back'
	assert_equal "$HTTP_STATUS" 200
	wait_for_access_log "$id" 10
	line=$(grep -F "\"request_id\":\"$id\"" "$STACK_LOG_DIR/lighttpd.log")
	run jq -e --arg id "$id" '.method == "GET" and .path == "/time" and .query == "a=%22b%22"
		and .status == 200 and .remote == "127.0.0.1" and (.bytes | type) == "number"
		and (.duration_us | type) == "number" and .request_id == $id
		and .user_agent == "agent \"quoted\" \\ back"
		and (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}[+-][0-9]{4}$"))' <<<"$line"
	assert_success
	# lines that open with "{" are requests and all parse; lighttpd's own
	# lines are "YYYY-MM-DD HH:MM:SS: (file.c.line) text"
	run jq -R -r 'select(startswith("{")) | . as $line
		| try (fromjson | empty) catch "not JSON: \($line)"' \
		"$STACK_LOG_DIR/lighttpd.log"
	assert_output ""
	run grep -vE '^(\{|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}: \()' "$STACK_LOG_DIR/lighttpd.log"
	assert_output ""
}

@test "promtool: the alert rules are valid and each alert fires in the rule tests" {
	run promtool check rules "$RULES_DIR/alerts.yml"
	assert_success
	assert_output --partial "SUCCESS: 5 rules found"
	run promtool test rules "$RULES_DIR/alerts.test.yml"
	assert_success
	local alert
	for alert in TallyHighErrorRatio TallyDatabaseDown TallyHighLatencyP99 TallyTargetDown TallyNoScrape; do
		grep -q "alert: $alert\$" "$RULES_DIR/alerts.yml"
		grep -q "alertname: $alert\$" "$RULES_DIR/alerts.test.yml"
	done
}

@test "the dashboard's queries are valid PromQL over series /metrics exports" {
	local rules name
	jq -e '.panels | length > 0' "$DASHBOARD"
	rules="$BATS_TEST_TMPDIR/dashboard-rules.yml"
	# Grafana's variables replaced, each query checked as a recording rule
	{
		echo 'groups: [{name: dashboard, rules: ['
		jq -r '[.panels[].targets[]?.expr] | to_entries[]
			| "{record: \"dashboard:q\(.key)\", expr: \(.value
			| gsub("\\$__rate_interval"; "5m") | gsub("\\$(job|instance)"; ".+") | tojson)},"' \
			"$DASHBOARD"
		echo ']}]'
	} >"$rules"
	run promtool check rules "$rules"
	assert_success
	# what the dashboard must show
	run jq -r '[.panels[].targets[]?.expr] | join("\n")' "$DASHBOARD"
	assert_output --regexp 'histogram_quantile\(0.5, sum by \(path, le\) \(rate\(http_request_duration_seconds_bucket'
	assert_output --regexp 'histogram_quantile\(0.99, sum by \(path, le\) \(rate\(http_request_duration_seconds_bucket'
	assert_output --regexp 'sum by \(path\) \(rate\(http_requests_total\{[^}]*code=~"5\.\."'
	assert_output --partial 'tally_value'
	assert_output --partial 'tally_db_up'
	assert_output --partial 'tally_db_query_duration_seconds_bucket'
	# every metric the dashboard and the alerts name is exported
	scrape
	for name in $(cat "$DASHBOARD" "$RULES_DIR/alerts.yml" | metric_names_in); do
		grep -qE "^($name(\{| )|# TYPE $name )" <<<"$METRICS" ||
			fail "$name is not in /metrics"
	done
}
