#!/usr/bin/env bats
# tally - the edges a user meets: every answer lighttpd makes itself on an
# API path is JSON with the API's headers (the bare "curl -X POST /write"
# among them, with its hint), the page keeps HTML errors, a W3C
# traceparent reaches every log line of its request, and every program
# answers --version and --help (which names its man page).

load ../lib/helpers

setup_file() {
	# debug: every answer is logged, so a request always has a log line
	export TALLY_LOG_LEVEL=debug
	# not the default, so that the Retry-After of lighttpd's own 503s
	# shows where it comes from
	export TALLY_RETRY_AFTER=7
	tally_stack_start
}

teardown_file() {
	tally_stack_stop
}

# shellcheck source=../../scripts/lib.sh
source "$TALLY_SRCDIR/scripts/lib.sh"

TID=4bf92f3577b34da6a3ce929d0e0e4736
SID=00f067aa0ba902b7
PROGRAMS=("${TALLY_RESPONDERS[@]}" migrate)

# assert_api_error STATUS: the last answer is STATUS with a JSON body
# {"error": non-empty string} and the API's headers.
assert_api_error() {
	assert_equal "$HTTP_STATUS" "$1"
	assert_equal "$(header content-type)" "application/json"
	assert_equal "$(header cache-control)" "no-store"
	assert_equal "$(header x-content-type-options)" "nosniff"
	assert_equal "$(header x-frame-options)" "DENY"
	assert_equal "$(header referrer-policy)" "no-referrer"
	[[ $(header content-security-policy) == "default-src 'none';"* ]]
	assert_equal "$(grep -ci '^cache-control:' <<<"$HTTP_HEADERS")" 1
	run jq -e '(keys == ["error"]) and (.error | type == "string" and length > 0)' <<<"$HTTP_BODY"
	assert_success
}

# raw_answer REQUEST_TEXT: like raw_http, then sets HTTP_STATUS,
# HTTP_HEADERS and HTTP_BODY as http does.
raw_answer() {
	local out
	out=$(raw_http "$1" | tr -d '\r')
	HTTP_STATUS=$(head -1 <<<"$out" | cut -d' ' -f2)
	HTTP_HEADERS=$(sed -n '2,/^$/p' <<<"$out" | sed 's/^\([^:]*\):/\L\1:/')
	HTTP_BODY=$(sed '1,/^$/d' <<<"$out")
}

# has_line FILE JQ_FILTER: some JSON line of FILE matches the filter.
has_line() {
	grep '^{' "$1" | jq -e -s "map(select($2)) | length > 0" >/dev/null
}

@test "bare curl -X POST /write: 411 JSON that says to send a body" {
	local id="edges-411-$RANDOM"
	http POST /write -H "X-Request-Id: $id"
	assert_api_error 411
	run jq -r .error <<<"$HTTP_BODY"
	assert_output --partial "curl -d ''"
	assert_output --partial "Content-Length: 0"
	# the access log keeps what the client sent
	wait_until 10 has_line "$STACK_LOG_DIR/lighttpd.log" ".request_id == \"$id\""
	has_line "$STACK_LOG_DIR/lighttpd.log" \
		".request_id == \"$id\" and .status == 411 and .request == \"POST /write HTTP/1.1\""
	# and the hint works
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
}

@test "lighttpd's refusals on API paths are JSON: 400 413 414 431 501 404" {
	http GET /read -H $'X-Forwarded-For: 10.0.0.1\x01'
	assert_api_error 400
	http GET /time -H 'Transfer-Encoding: chunked' --data-binary 'zz'
	assert_api_error 400
	http POST /write --data-binary @<(head -c 20000 /dev/zero)
	assert_api_error 413
	run jq -r .error <<<"$HTTP_BODY"
	assert_output --partial "16 KiB"
	# streamed, without a Content-Length: lighttpd counts as it reads
	http POST /write -H 'Transfer-Encoding: chunked' --data-binary @<(head -c 40000 /dev/zero)
	assert_api_error 413
	http GET /read -H "X-Big: $(printf '%17000s' '' | tr ' ' a)"
	assert_api_error 431
	run jq -r .error <<<"$HTTP_BODY"
	assert_output --partial "16384 bytes"
	# a URL over the limit: 414, not 431
	http GET "/read?$(printf '%9000s' '' | tr ' ' a)"
	assert_api_error 414
	http FOO /time
	assert_api_error 501
	http POST /write -H 'Transfer-Encoding: gzip' -d ''
	assert_api_error 501
	http GET /time/x
	assert_api_error 404
	http HEAD /healthz/x
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$(header content-type)" "application/json"
}

@test "HTTP/1.1 without Host: 400 JSON that names Host; with it, the same request is answered" {
	raw_answer $'GET /time HTTP/1.1\r\nConnection: close\r\n\r\n'
	assert_api_error 400
	run jq -r .error <<<"$HTTP_BODY"
	assert_output --partial "Host header"
	raw_answer $'GET /time HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	assert_equal "$HTTP_STATUS" 200
	jq -e .timestamp <<<"$HTTP_BODY" >/dev/null
	# HTTP/1.0 needs none
	raw_answer $'GET /time HTTP/1.0\r\n\r\n'
	assert_equal "$HTTP_STATUS" 200
}

# url_of_length N PATH: PATH?aaa... that is N bytes long.
url_of_length() {
	printf '%s?%s' "$2" "$(head -c $(($1 - ${#2} - 1)) /dev/zero | tr '\0' a)"
}

@test "a URL over 8192 bytes gets 414 (JSON on the API paths, HTML on the page's); 8192 bytes pass" {
	local url
	url=$(url_of_length 8192 /time)
	assert_equal "${#url}" 8192
	http GET "$url"
	assert_equal "$HTTP_STATUS" 200
	for n in 8193 10240 16000; do
		http GET "$(url_of_length "$n" /time)"
		assert_api_error 414
		run jq -r .error <<<"$HTTP_BODY"
		assert_output --partial "8192 bytes"
		assert_equal "$(header location)" ""
	done
	# a long path too, not only a long query
	http GET "/time/$(head -c 9000 /dev/zero | tr '\0' a)"
	assert_api_error 414
	# the page's paths: 414 with lighttpd's HTML page
	http GET "$(url_of_length 10240 /)"
	assert_equal "$HTTP_STATUS" 414
	[[ $(header content-type) == text/html* ]]
	http GET "$(url_of_length 8192 /)"
	assert_equal "$HTTP_STATUS" 200
	# a POST /write with a long URL counts nothing
	local before
	before=$(counter_value)
	http POST "$(url_of_length 9000 /write)" -d ''
	assert_api_error 414
	assert_equal "$(counter_value)" "$before"
}

# api_list: the "METHOD PATH" entries the last 404 body lists, one a line.
api_list() {
	jq -r .error <<<"$HTTP_BODY" | sed -n 's/^not found: the API is //p' | sed 's/, /\n/g'
}

@test "paths under /api/, and any path for a client that asks for JSON: a JSON 404 listing the API" {
	local path entry method listed exported
	for path in /api/read /api/counter /api /api/ /api/time/x; do
		http GET "$path"
		assert_api_error 404
		[[ -n $(api_list) ]]
	done
	# asking for JSON: on the page's paths too
	for path in /nope /nope.html /time/x/y /timex; do
		http GET "$path" -H 'Accept: application/json'
		assert_api_error 404
		[[ -n $(api_list) ]]
	done
	http GET /nope -H 'Accept: application/problem+json, text/plain;q=0.5'
	assert_api_error 404
	# a browser's Accept keeps the HTML page
	http GET /nope -H 'Accept: text/html,application/xhtml+xml,*/*;q=0.8'
	assert_equal "$HTTP_STATUS" 404
	[[ $(header content-type) == text/html* ]]
	# and the page itself is still the page when JSON is asked for
	http GET / -H 'Accept: application/json'
	assert_equal "$HTTP_STATUS" 200
	[[ $(header content-type) == text/html* ]]
	# every entry listed answers its method (a named counter's, once
	# written) ...
	http GET /api/read
	listed=$(api_list)
	http POST /write/edges -d ''
	while read -r entry; do
		read -r method path <<<"$entry"
		path=${path/'{name}'/edges}
		if [[ $method == POST ]]; then
			http POST "$path" -d ''
		elif [[ $path == /stream* ]]; then
			# a stream does not end: its status, then curl gives up
			http "$method" "$path" --max-time 2
		else
			http "$method" "$path"
		fi
		assert_equal "$entry $HTTP_STATUS" "$entry 200"
	done <<<"$listed"
	# ... and the paths listed are exactly those the responders know
	# (the path labels of /metrics' histogram), but /metrics, which is
	# on the internal listener only, and the admin API's, which is not
	# there without a token (404) and is for operators with one
	http_internal GET /metrics
	exported=$(grep -o '^http_request_duration_seconds_count{path="/[^"]*"' <<<"$HTTP_BODY" |
		sed 's/.*path="//; s/"$//' | grep -vE '^/(metrics|admin/.*)$' | sort)
	assert_equal "$(awk '{print $2}' <<<"$listed" | sed 's/{name}.*$//' | sort)" "$exported"
}

@test "refusals made while parsing the request line are JSON too: 400 411 505" {
	raw_answer $'GARBAGE\r\n\r\n'
	assert_api_error 400
	raw_answer $'POST /write HTTP/1.0\r\n\r\n'
	assert_api_error 411
	raw_answer $'GET /time HTTP/1.2\r\nHost: x\r\n\r\n'
	assert_api_error 505
}

@test "a responder that is not there: 503 JSON from lighttpd, with Retry-After" {
	local sock="$STACK_DIR/run/time.sock"
	mv "$sock" "$sock.away"
	http GET /time
	mv "$sock.away" "$sock"
	# lighttpd tries a refused backend again after its disable-time (in a
	# subshell: the answer checked below stays the 503)
	(wait_until 15 time_answers)
	assert_api_error 503
	# the responders' 503s say when to try again; lighttpd's own too
	# (etc/cors.lua), with the same TALLY_RETRY_AFTER
	assert_equal "$(header retry-after)" 7
	assert_equal "$(grep -ci '^retry-after:' <<<"$HTTP_HEADERS")" 1
}

time_answers() {
	http GET /time
	[[ $HTTP_STATUS == 200 ]]
}

@test "the page's paths keep lighttpd's HTML errors" {
	http GET /nope.html
	assert_equal "$HTTP_STATUS" 404
	[[ $(header content-type) == text/html* ]]
	[[ $HTTP_BODY == *"<html"* ]]
	http GET /timex
	assert_equal "$HTTP_STATUS" 404
	[[ $(header content-type) == text/html* ]]
	http GET /
	assert_equal "$HTTP_STATUS" 200
	[[ $(header content-type) == "text/html; charset=utf-8" ]]
}

@test "every error body file is one JSON object with an error" {
	local f n=0
	for f in "$TALLY_SRCDIR"/etc/errors/*.html; do
		jq -e '(keys == ["error"]) and (.error | length > 0)' "$f" >/dev/null ||
			fail "$f is not {\"error\": ...}"
		n=$((n + 1))
	done
	((n >= 15))
	# and each is installed
	for f in "$TALLY_SRCDIR"/etc/errors/*.html; do
		grep -q "etc/errors/${f##*/}" "$TALLY_SRCDIR/Makefile.am" ||
			fail "${f##*/} is not in Makefile.am"
	done
}

@test "a valid traceparent: trace_id and span_id on every log line of the request, and in the access log" {
	local id="edges-trace-$RANDOM"
	http GET /read -H "X-Request-Id: $id" -H "traceparent: 00-$TID-$SID-01"
	assert_equal "$HTTP_STATUS" 200
	wait_until 10 has_line "$STACK_LOG_DIR/read.log" ".request_id == \"$id\""
	run bash -c "grep '^{' '$STACK_LOG_DIR/read.log' | jq -c --arg id '$id' 'select(.request_id == \$id)'"
	assert_success
	[[ -n $output ]]
	run jq -s -e --arg t "$TID" --arg s "$SID" \
		'length > 0 and all(.trace_id == $t and .span_id == $s)' <<<"$output"
	assert_success
	wait_until 10 has_line "$STACK_LOG_DIR/lighttpd.log" ".request_id == \"$id\""
	run bash -c "grep '^{' '$STACK_LOG_DIR/lighttpd.log' | jq -e -s --arg id '$id' --arg tp '00-$TID-$SID-01' \
		'map(select(.request_id == \$id)) | length == 1 and .[0].traceparent == \$tp and .[0].request == \"GET /read HTTP/1.1\"'"
	assert_success
	# another responder, another thread pool, flags 00
	id="edges-trace-post-$RANDOM"
	http POST /write -d '' -H "X-Request-Id: $id" -H "traceparent: 00-$TID-$SID-00"
	assert_equal "$HTTP_STATUS" 200
	wait_until 10 has_line "$STACK_LOG_DIR/write.log" ".request_id == \"$id\""
	has_line "$STACK_LOG_DIR/write.log" ".request_id == \"$id\" and .trace_id == \"$TID\""
}

@test "an invalid traceparent is ignored" {
	local tp id i=0
	for tp in "00-${TID^^}-$SID-01" "00-$TID-${SID^^}-01" \
		"ff-$TID-$SID-01" "00-00000000000000000000000000000000-$SID-01" \
		"00-$TID-0000000000000000-01" "00-${TID:1}-$SID-01" \
		"00-$TID-$SID-01-extra" "00-$TID-$SID" "garbage"; do
		i=$((i + 1))
		id="edges-badtrace-$i-$RANDOM"
		http GET /time -H "X-Request-Id: $id" -H "traceparent: $tp"
		assert_equal "$HTTP_STATUS" 200
		wait_until 10 has_line "$STACK_LOG_DIR/time.log" ".request_id == \"$id\""
		if has_line "$STACK_LOG_DIR/time.log" ".request_id == \"$id\" and has(\"trace_id\")"; then
			fail "traceparent '$tp' was not ignored"
		fi
	done
}

@test "every program: --version prints its name and version, --help names its man page" {
	local p version page
	version=$(sed -n 's/^AC_INIT(\[tally\], \[\([^]]*\)\].*/\1/p' "$TALLY_SRCDIR/configure.ac")
	[[ -n $version ]]
	for p in "${PROGRAMS[@]}"; do
		run "$TALLY_BUILDDIR/src/tally-$p" --version
		assert_success
		assert_output "tally-$p $version"
		run "$TALLY_BUILDDIR/src/tally-$p" --help
		assert_success
		assert_line --index 0 --partial "usage: tally-$p"
		page=tally-responder
		[[ $p != migrate ]] || page=tally-migrate
		assert_output --partial "$page(8)"
		[[ -f $TALLY_SRCDIR/man/$page.8 ]]
		run "$TALLY_BUILDDIR/src/tally-$p" --no-such-option
		assert_failure 2
		assert_output --partial "usage: tally-$p"
		# each option alone; nothing after it
		run "$TALLY_BUILDDIR/src/tally-$p" --version --help
		assert_failure 2
		run "$TALLY_BUILDDIR/src/tally-$p" --help extra
		assert_failure 2
	done
	run "$TALLY_BUILDDIR/src/tally-migrate" --dir
	assert_failure 2
}
