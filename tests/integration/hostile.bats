#!/usr/bin/env bats
# tally - hostile input: every method on every path, oversized
# bodies and headers, odd paths, X-Forwarded-For garbage, idle and slow
# connections, and garbage FastCGI records written straight to the
# responders' sockets. The service must refuse cleanly, answer valid JSON,
# never crash and never hang.

load ../lib/helpers
load ../lib/faults

setup_file() {
	# loopback is the trusted proxy, so X-Forwarded-For is walked; few
	# threads and a short I/O timeout, so a stuck thread would show
	export TALLY_TRUSTED_PROXIES="127.0.0.0/8, 10.0.0.0/8"
	export TALLY_IO_TIMEOUT=2 TALLY_THREADS=4 TALLY_PROCESSES=2
	tally_stack_start
}

# (/metrics is served on the internal listener: see the test below)
PATHS=(/time /read /write /healthz /livez)
METHODS=(GET HEAD POST PUT DELETE PATCH OPTIONS TRACE)

allowed_methods() {
	if [[ $1 == /write ]]; then echo "POST"; else echo "GET, HEAD"; fi
}

# head_answer PATH: status, Allow header and body length of a HEAD request,
# sent raw (curl waits for a body after HEAD).
head_answer() {
	local answer
	answer=$(raw_http "HEAD $1 HTTP/1.0"$'\r\n\r\n')
	printf '%s|%s|%s\n' "$(head -1 <<<"$answer" | cut -d' ' -f2)" \
		"$(sed -n 's/^Allow: *//Ip' <<<"$answer" | tr -d '\r')" \
		"$(sed '1,/^\r*$/d' <<<"$answer" | wc -c)"
}

@test "every method on every path: 200 where allowed, else 405 with Allow and a JSON error" {
	local path method allow before
	before=$(counter_value)
	for path in "${PATHS[@]}"; do
		allow=$(allowed_methods "$path")
		# HEAD: the GET headers, never a body
		if [[ $path == /write ]]; then
			assert_equal "HEAD $path $(head_answer "$path")" "HEAD $path 405|POST|0"
		else
			assert_equal "HEAD $path $(head_answer "$path")" "HEAD $path 200||0"
		fi
		for method in "${METHODS[@]}"; do
			[[ $method == HEAD ]] && continue
			if [[ $method == GET ]]; then
				http GET "$path"
			else
				http "$method" "$path" -d ''
			fi
			if [[ ", $allow, " == *", $method, "* ]]; then
				assert_equal "$method $path $HTTP_STATUS" "$method $path 200"
			else
				assert_equal "$method $path $HTTP_STATUS" "$method $path 405"
				assert_equal "$(header allow)" "$allow"
				assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "method not allowed"
				assert_equal "$(jq -r '.allow | join(", ")' <<<"$HTTP_BODY")" "$allow"
			fi
			if [[ $path == /metrics && $HTTP_STATUS == 200 ]]; then
				assert_equal "$(header content-type)" "text/plain; version=0.0.4; charset=utf-8"
			else
				assert_equal "$(header content-type)" "application/json"
				jq -e 'type == "object"' <<<"$HTTP_BODY" >/dev/null
			fi
		done
	done
	# /metrics, on the internal listener: the same rules
	for method in "${METHODS[@]}"; do
		[[ $method == HEAD ]] && continue
		http_internal "$method" /metrics -d ''
		if [[ $method == GET ]]; then
			assert_equal "$method /metrics $HTTP_STATUS" "$method /metrics 200"
			assert_equal "$(header content-type)" "text/plain; version=0.0.4; charset=utf-8"
		else
			assert_equal "$method /metrics $HTTP_STATUS" "$method /metrics 405"
			assert_equal "$(header allow)" "GET, HEAD"
			assert_equal "$(header content-type)" "application/json"
		fi
	done
	# only the one POST /write counted
	assert_equal "$(counter_value)" "$((before + 1))"
	# a method lighttpd does not know never reaches a responder
	http FOO /time
	assert_equal "$HTTP_STATUS" 501
}

@test "POST /write with a 10 MB body: 413 from lighttpd, the counter unchanged" {
	local before body
	before=$(counter_value)
	body=$BATS_TEST_TMPDIR/10mb
	head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' 'x' >"$body"
	# announced (Expect: 100-continue), sent outright, and chunked
	http POST /write --data-binary "@$body"
	assert_equal "$HTTP_STATUS" 413
	http POST /write --data-binary "@$body" -H 'Expect:'
	assert_equal "$HTTP_STATUS" 413
	http POST /write --data-binary "@$body" -H 'Transfer-Encoding: chunked'
	assert_equal "$HTTP_STATUS" 413
	# just over the configured 16 KiB, too
	head -c $((17 * 1024)) "$body" >"$body.17k"
	http POST /write --data-binary "@$body.17k"
	assert_equal "$HTTP_STATUS" 413
	assert_equal "$(counter_value)" "$before"
	# and the service is fine
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
}

@test "query strings, slashes, percent-encoding, dot segments and case: what each path means" {
	local spec path want
	# lighttpd decodes and normalises the path before choosing a
	# responder; the responder then matches it exactly
	for spec in \
		"/time?x=1 200" "/time? 200" "/time?a=%c3%a9&b=%20+%2F 200" \
		"/time?a=%00 400" "/time?a=%ff 400" "/time%ff 400" \
		"/t%69me 200" "/%74%69%6D%65 200" "/%2e/time 200" "/./time 200" \
		"/x/../time 200" "/../time 200" "//time 200" \
		"/time/ 404" "/time// 404" "/time/. 404" "/x//time 404" "/time%2F 404" \
		"/time%2f 404" "/time%20 404" "/time;x 404" "/time. 404" "/time%00 400" \
		"/TIME 404" "/Time 404" "/tIME 404" "/%54IME 404" \
		"/read/ 400" "/read/. 400" "/read/x/.. 400" "/read/a%2Fb%2Fc 400" \
		"/read//nope 404" "/read/nope 404" "/metrics/ 404" "/healthz/ 404" "/livez%3f 404" "/% 404" "/%zz 404"; do
		read -r path want <<<"$spec"
		http GET "$path" --path-as-is
		assert_equal "$path $HTTP_STATUS" "$path $want"
		if [[ $want == 200 ]]; then
			jq -e '.timestamp' <<<"$HTTP_BODY" >/dev/null
		fi
	done
	# a query string does not change a write: it still counts once
	local before
	before=$(counter_value)
	http POST '/write?counter=1000000' -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counter_value)" "$((before + 1))"
	http POST '/w%72ite' -d '' --path-as-is
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counter_value)" "$((before + 2))"
}

@test "hostile X-Forwarded-For: valid bounded JSON, user_ip only from trusted hops (29 fixed, 300 random cases)" {
	run python3 "$TALLY_TEST_LIB/xff_check.py" 127.0.0.1 "$TALLY_PORT" \
		--trusted "$TALLY_TRUSTED_PROXIES" --random 300 --seed "$RANDOM"
	echo "# $(tail -1 <<<"$output")" >&3
	assert_success
	assert_output --partial "failures=0"
	# a few by hand
	http GET /time -H "X-Forwarded-For: $(python3 -c 'print(",".join("::%x" % i for i in range(1, 1001)))')"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(jq -r '.proxy_chain | length' <<<"$HTTP_BODY")" 32
	assert_equal "$(jq -r .proxy_chain_truncated <<<"$HTTP_BODY")" true
	assert_equal "$(jq -r .user_ip <<<"$HTTP_BODY")" "::3e8"
	http GET /time -H "X-Forwarded-For: $(head -c 65536 /dev/zero | tr '\0' '1')"
	assert_equal "$HTTP_STATUS" 431
	http GET /time -H 'X-Forwarded-For: 203.0.113.50, not-an-ip, 10.0.0.1'
	assert_equal "$(jq -r .user_ip <<<"$HTTP_BODY")" "10.0.0.1"
	assert_equal "$(jq -c .proxy_chain <<<"$HTTP_BODY")" '["203.0.113.50","invalid","10.0.0.1"]'
}

# headers_args N: curl options sending Host and N headers of other names
# (curl's User-Agent and Accept left out).
headers_args() {
	local i
	printf '%s\n' -H 'User-Agent:' -H 'Accept:'
	for ((i = 1; i <= $1; i++)); do
		printf '%s\n' -H "X-Header-$i: $i"
	done
}

@test "100 request headers are answered; 101 get 431 JSON from the responder, nothing counted" {
	local args before p method path
	mapfile -t args < <(headers_args 99)
	http GET /time "${args[@]}"
	assert_equal "$HTTP_STATUS" 200
	before=$(counter_value)
	mapfile -t args < <(headers_args 100)
	for p in "GET /time" "GET /read" "POST /write"; do
		read -r method path <<<"$p"
		http "$method" "$path" -d '' "${args[@]}"
		assert_equal "$HTTP_STATUS" 431
		assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "too many request headers: send at most 100"
	done
	assert_equal "$(counter_value)" "$before"
}

@test "500 idle, 100 half-sent and 100 slowloris connections do not starve normal clients" {
	local summary i ok=0 slowest=0 t0 took
	summary=$BATS_TEST_TMPDIR/idle.json
	python3 "$TALLY_TEST_LIB/idle_conns.py" 127.0.0.1 "$TALLY_PORT" --idle 500 \
		--partial 100 --slow 100 --slow-every 2 --hold 20 >"$summary" 3>&- &
	wait_until 30 grep -q '"opened": 700' "$summary"
	for ((i = 0; i < 20; i++)); do
		t0=$(now)
		answers_200 GET /time && answers_200 POST /write && ok=$((ok + 1))
		took=$(seconds_since "$t0")
		slowest=$(awk -v a="$slowest" -v b="$took" 'BEGIN { print (b > a) ? b : a }')
		sleep 0.5
	done
	echo "# normal clients: $ok of 20 rounds answered; slowest round ${slowest}s" >&3
	assert_equal "$ok" 20
	wait
	echo "# $(tail -1 "$summary")" >&3
	# server.max-read-idle (15 s) cuts the idle and half-sent ones; a
	# slowloris that keeps sending is only bounded by
	# server.max-connections
	assert_equal "$(tail -1 "$summary" | jq '.idle.closed_by_server')" 500
	assert_equal "$(tail -1 "$summary" | jq '.partial.closed_by_server')" 100
}

# fcgi_raw SOCKET MODE [args]: tests/lib/fcgi_raw.py.
fcgi_raw() {
	python3 "$TALLY_TEST_LIB/fcgi_raw.py" "$@"
}

@test "garbage FastCGI records on every responder's socket: no worker dies, each keeps serving" {
	local before counter name mode
	before=$(responder_pids)
	counter=$(counter_value)
	for name in "${TALLY_RESPONDERS[@]}"; do
		for mode in garbage http bad-version unknown-type zero-id bad-role \
			params-no-begin huge-lengths abort; do
			run fcgi_raw "$STACK_DIR/run/$name.sock" "$mode" --count 2 --hold 5
			assert_success
			# the responder drops (or answers) it at once
			refute_output --partial "closed=0"
		done
	done
	run fcgi_raw "$STACK_DIR/run/time.sock" valid
	assert_output --partial "status=200"
	assert_equal "$(responder_pids)" "$before"
	assert_equal "$(counter_value)" "$counter"
	http GET /time
	assert_equal "$HTTP_STATUS" 200
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
}

@test "truncated FastCGI records hold a thread at most TALLY_IO_TIMEOUT: three times more than threads, /time still answers" {
	local before mode out t0 took
	before=$(responder_pids)
	out=$BATS_TEST_TMPDIR/truncated
	# 4 threads x 2 processes = 8; 24 connections that stop half way
	for mode in truncated-header truncated-begin no-params-end; do
		fcgi_raw "$STACK_DIR/run/time.sock" "$mode" --count 8 --hold 20 \
			>"$out.$mode" 3>&- &
	done
	sleep 0.5
	t0=$(now)
	http GET /time
	took=$(seconds_since "$t0")
	echo "# /time answered in ${took}s behind 24 stuck connections" >&3
	assert_equal "$HTTP_STATUS" 200
	wait
	# each was dropped by the responder long before the client gave up
	cat "$out".* >&3
	run cat "$out".*
	refute_output --partial "closed=0"
	assert_equal "$(grep -c 'closed=1' <<<"$output")" 24
	awk '{ split($3, a, "="); if (a[2] > 15) exit 1 }' "$out".*
	assert_equal "$(responder_pids)" "$before"
	http GET /time
	assert_equal "$HTTP_STATUS" 200
}

@test "the I/O timeout counts from the connection, not from when the thread began to wait: late records after a long idle are served" {
	local dir=$STACK_DIR/lone pid
	stack_mkdir 0750 "$dir"
	# One thread in one process, so every connection meets the same
	# thread, each after it waited 1.7 s of the 2 s TALLY_IO_TIMEOUT;
	# each connection's records come 0.5 s after it connected.
	(TALLY_THREADS=1 TALLY_PROCESSES=1 TALLY_RUN_DIR=$dir \
		stack_exec_as_user spawn-fcgi -n -s "$dir/time.sock" -M 0660 -- \
		"$TALLY_BIN_DIR/tally-time") >"$dir/time.log" 2>&1 </dev/null 3>&- &
	pid=$!
	wait_until 10 test -S "$dir/time.sock"
	run fcgi_raw "$dir/time.sock" valid --serial --count 4 --idle 1.7 \
		--delay 0.5 --hold 5
	kill -TERM "$pid"
	wait_until 10 pid_gone "$pid"
	echo "$output" >&3
	assert_equal "$(grep -c 'status=200' <<<"$output")" 4
}

@test "HTTP/2 is off: a write whose body runs past its content-length counts nothing; an h2c upgrade is answered in HTTP/1.1" {
	local before code
	before=$(counter_value)
	# lighttpd 1.4.69 with HTTP/2 handed this to tally-write at once
	# (counted) and then reset the stream
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --http2-prior-knowledge \
		-H 'Content-Length: 0' -d abcdef "$TALLY_URL/write") || true
	assert_equal "$code" 000
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --http2-prior-knowledge \
		-d '' "$TALLY_URL/write") || true
	assert_equal "$code" 000
	assert_equal "$(counter_value)" "$before"
	code=$(curl -s -o /dev/null -w '%{http_code} %{http_version}' --max-time 10 --http2 \
		-d '' "$TALLY_URL/write")
	assert_equal "$code" "200 1.1"
	assert_equal "$(counter_value)" "$((before + 1))"
}
