#!/usr/bin/env bats
# tally - the API, through lighttpd, against real parts.

load ../lib/helpers

assert_api_headers() {
	assert_equal "$(header content-type)" "application/json"
	assert_equal "$(header cache-control)" "no-store"
	assert_equal "$(header x-content-type-options)" "nosniff"
}

@test "GET /time: UTC RFC 3339 with milliseconds, peer address, empty chain" {
	http GET /time
	assert_equal "$HTTP_STATUS" 200
	assert_api_headers
	run jq -e '.timestamp | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")' <<<"$HTTP_BODY"
	assert_success
	assert_equal "$(jq -r .user_ip <<<"$HTTP_BODY")" "127.0.0.1"
	assert_equal "$(jq -c .proxy_chain <<<"$HTTP_BODY")" "[]"
	# the time is now, within a few seconds
	local t now
	t=$(date -d "$(jq -r .timestamp <<<"$HTTP_BODY")" +%s)
	now=$(date +%s)
	(( t >= now - 5 && t <= now + 5 ))
}

@test "GET /time: the proxy chain lists X-Forwarded-For in order; an untrusted peer stays the user" {
	http GET /time -H 'X-Forwarded-For: 203.0.113.7, 10.0.0.2'
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(jq -c .proxy_chain <<<"$HTTP_BODY")" '["203.0.113.7","10.0.0.2"]'
	assert_equal "$(jq -r .user_ip <<<"$HTTP_BODY")" "127.0.0.1"
}

@test "HEAD /time, /read, /healthz, /livez: the GET headers, no body" {
	local p answer
	for p in /time /read /healthz /livez; do
		answer=$(raw_http "HEAD $p HTTP/1.0"$'\r\n\r\n')
		assert_equal "$(head -1 <<<"$answer" | tr -d '\r')" "HTTP/1.0 200 OK"
		grep -qi '^Content-Type: application/json' <<<"$answer"
		grep -qi '^Cache-Control: no-store' <<<"$answer"
		# nothing after the blank line that ends the headers
		assert_equal "$(sed '1,/^\r*$/d' <<<"$answer")" ""
	done
}

@test "GET /read answers the counter the database holds" {
	http GET /read
	assert_equal "$HTTP_STATUS" 200
	assert_api_headers
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$(counter_value)"
}

@test "POST /write adds one and answers the new value" {
	local before
	before=$(counter_value)
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_api_headers
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
	assert_equal "$(counter_value)" "$((before + 1))"
	http GET /read
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
}

@test "GET /healthz: ok with the database; /livez: ok" {
	http GET /healthz
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"status":"ok","database":"ok"}'
	http GET /livez
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"status":"ok"}'
}

@test "wrong methods get 405 with Allow and a JSON error that names the same methods" {
	local spec method path allow
	for spec in "POST /time GET, HEAD" "PUT /read GET, HEAD" "DELETE /healthz GET, HEAD" \
		"POST /livez GET, HEAD" "GET /write POST" "PUT /write POST"; do
		read -r method path allow <<<"$spec"
		http "$method" "$path" -d ''
		assert_equal "$HTTP_STATUS" 405
		assert_equal "$(header allow)" "$allow"
		assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "method not allowed"
		assert_equal "$(jq -r '.allow | join(", ")' <<<"$HTTP_BODY")" "$allow"
		assert_equal "$(jq -r 'keys | join(" ")' <<<"$HTTP_BODY")" "allow error"
		assert_api_headers
	done
	http_internal POST /metrics -d ''
	assert_equal "$HTTP_STATUS" 405
	assert_equal "$(header allow)" "GET, HEAD"
	assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "method not allowed"
}

@test "/metrics only on the internal listener: 404 JSON on the public one" {
	http GET /metrics
	assert_equal "$HTTP_STATUS" 404
	[[ $(jq -r .error <<<"$HTTP_BODY") == "not found"* ]]
	[[ $HTTP_BODY != *tally_db_up* ]]
	http_internal GET /metrics
	assert_equal "$HTTP_STATUS" 200
	grep -q '^tally_db_up 1$' <<<"$HTTP_BODY"
	# the internal listener serves nothing else
	for path in /time /read /write / /index.html; do
		http_internal GET "$path"
		assert_equal "$path $HTTP_STATUS" "$path 403"
	done
	http_internal GET /livez
	assert_equal "$HTTP_STATUS" 200
}

@test "write does not count on 405: GET /write leaves the counter alone" {
	local before
	before=$(counter_value)
	http GET /write
	assert_equal "$HTTP_STATUS" 405
	assert_equal "$(counter_value)" "$before"
}

@test "only the exact API paths reach a responder" {
	local p
	for p in /timex /time/x /reads /writes /TIME /READ/x; do
		http GET "$p"
		assert_equal "$HTTP_STATUS" 404
	done
	# /read/ is a named counter's path (named.bats): without a name, 400
	http GET /read/
	assert_equal "$HTTP_STATUS" 400
}

@test "API answers ignore Range: 200 with the whole body, no Accept-Ranges; the page keeps ranges" {
	local path whole range base
	for path in /time /read /healthz /livez /metrics; do
		# (/metrics: on the internal listener)
		base=$TALLY_URL
		[[ $path != /metrics ]] || base=$TALLY_INTERNAL_URL
		TALLY_URL=$base http GET "$path"
		assert_equal "$path $HTTP_STATUS" "$path 200"
		assert_equal "$path $(header accept-ranges)" "$path "
		for range in 0-5 100- -3 5-1 99999-; do
			TALLY_URL=$base http GET "$path" -H "Range: bytes=$range"
			assert_equal "$path $range $HTTP_STATUS" "$path $range 200"
			assert_equal "$path $range $(header accept-ranges)" "$path $range "
			assert_equal "$path $range $(header content-range)" "$path $range "
			if [[ $path == /metrics ]]; then
				[[ $HTTP_BODY == *"# TYPE http_requests_total counter"* ]]
			else
				assert_equal "$(header content-type)" "application/json"
				jq -e 'type == "object"' <<<"$HTTP_BODY" >/dev/null
				assert_equal "$(header content-length)" "${#HTTP_BODY}"
			fi
		done
	done
	http POST /write -d '' -H 'Range: bytes=0-5'
	assert_equal "$HTTP_STATUS" 200
	jq -e '.counter | type == "number"' <<<"$HTTP_BODY" >/dev/null
	assert_equal "$(header accept-ranges)" ""
	# an error answer on an API path is whole too
	http GET /time/x -H 'Range: bytes=0-5'
	assert_equal "$HTTP_STATUS" 404
	jq -e '.error' <<<"$HTTP_BODY" >/dev/null
	# the page: ranges as before
	http GET /
	whole=$HTTP_BODY
	assert_equal "$(header accept-ranges)" "bytes"
	http GET / -H 'Range: bytes=0-5'
	assert_equal "$HTTP_STATUS" 206
	assert_equal "$HTTP_BODY" "${whole:0:6}"
	[[ $(header content-range) == "bytes 0-5/"* ]]
	http GET / -H 'Range: bytes=999999-'
	assert_equal "$HTTP_STATUS" 416
}

@test "the page is served with a strict Content-Security-Policy" {
	http GET /
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header content-type)" "text/html; charset=utf-8"
	run header content-security-policy
	assert_output --partial "default-src 'none'"
	assert_output --partial "script-src 'self'"
	refute_output --partial "unsafe-inline"
	assert_equal "$(header x-content-type-options)" "nosniff"
	assert_equal "$(header x-frame-options)" "DENY"
	# no inline script or style in the page itself
	run grep -Ei '<script>|<script [^>]*>[^<]|<style|style=|[[:space:]]on[a-z]+=' <<<"$HTTP_BODY"
	assert_failure
}

@test "200 concurrent POSTs get 200 distinct values and the counter ends 200 higher" {
	assert_concurrent_writes 200 50
}

@test "database down: 503 JSON with Retry-After within seconds; back up: the same responders serve again" {
	local pids_before
	pids_before=$(responder_pids)
	stack_pg_stop fast
	for p in "GET /read" "POST /write" "GET /healthz"; do
		read -r method path <<<"$p"
		# an answer, not a hang: curl gives up after 10 s (status 000)
		http "$method" "$path" -d '' --max-time 10
		assert_equal "$HTTP_STATUS" 503
		[ -n "$(header retry-after)" ]
	done
	http GET /read
	assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	http GET /healthz
	assert_equal "$HTTP_BODY" '{"status":"unavailable","database":"unreachable"}'
	# no database error text reaches the client
	http POST /write -d ''
	assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'

	stack_pg_start
	wait_until 5 answers_200 GET /read
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(responder_pids)" "$pids_before"
}

@test "X-Forwarded-For garbage still gives valid, bounded JSON" {
	local xff
	for xff in 'not-an-ip' ',,,' '1.2.3.4, <script>, "quoted"' $'\xff\xfe\xc3(' \
		'[::1]:80, fe80::1%eth0, 1.2.3.4:8080' "$(printf '10.0.0.%d,' $(seq 1 250))"; do
		http GET /time -H "X-Forwarded-For: $xff"
		assert_equal "$HTTP_STATUS" 200
		run jq -e '.proxy_chain | length <= 32' <<<"$HTTP_BODY"
		assert_success
		assert_equal "$(jq -r .user_ip <<<"$HTTP_BODY")" "127.0.0.1"
	done
	# control bytes never reach a responder: lighttpd refuses the request
	http GET /time -H $'X-Forwarded-For: 1.2.3.4\x01\x02'
	assert_equal "$HTTP_STATUS" 400
	http GET /time -H 'X-Forwarded-For: [::1]:80, fe80::1%eth0, 1.2.3.4:8080'
	assert_equal "$(jq -c .proxy_chain <<<"$HTTP_BODY")" '["::1","fe80::1","1.2.3.4"]'
	http GET /time -H "X-Forwarded-For: $(printf '10.0.0.%d,' $(seq 1 250))"
	assert_equal "$(jq -r .proxy_chain_truncated <<<"$HTTP_BODY")" true
	assert_equal "$(jq -r '.proxy_chain[-1]' <<<"$HTTP_BODY")" "10.0.0.250"
}
