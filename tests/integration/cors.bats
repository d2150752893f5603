#!/usr/bin/env bats
# tally - cross-origin use of the API (etc/cors.lua; docs/api.md,
# "Cross-origin use") and the page's compression, with curl against the
# real stack: reads open to every origin, writes from the origins of
# TALLY_CORS_WRITE_ORIGINS only, preflights answered by lighttpd, the
# headers on lighttpd's own errors too; the page's HTML, CSS and
# JavaScript gzip-compressed for a client that accepts it, the API's
# JSON never. tests/integration/browser.bats checks the same in a real
# browser.

load ../lib/helpers

ALLOWED=http://allowed.example:8000
OTHER=https://other.example

setup_file() {
	export TALLY_CORS_WRITE_ORIGINS=" $ALLOWED , https://second.example"
	tally_stack_start
}

# assert_no_cors: the last answer has no Access-Control-* header.
assert_no_cors() {
	refute grep -qi '^access-control-' <<<"$HTTP_HEADERS"
}

# assert_vary_origin: the last answer's Vary names Origin.
assert_vary_origin() {
	[[ ", $(header vary)," == *", Origin,"* ]] || fail "Vary is \"$(header vary)\", not naming Origin"
}

@test "reads are open to every origin: Access-Control-Allow-Origin *, Vary: Origin" {
	local path
	for path in /read /time; do
		http GET "$path" -H "Origin: $OTHER"
		assert_equal "$path $HTTP_STATUS" "$path 200"
		assert_equal "$(header access-control-allow-origin)" "*"
		assert_equal "$(header access-control-expose-headers)" "Retry-After, Idempotent-Replayed, RateLimit-Policy, RateLimit"
		assert_vary_origin
		refute grep -qi '^access-control-allow-credentials' <<<"$HTTP_HEADERS"
	done
	http HEAD /read -H "Origin: $OTHER"
	assert_equal "$(header access-control-allow-origin)" "*"
	# without Origin: no CORS headers, but the answer still varies by it
	http GET /read
	assert_equal "$HTTP_STATUS" 200
	assert_no_cors
	assert_vary_origin
}

@test "a write from a listed origin counts and names that origin" {
	local before
	before=$(counter_value)
	http POST /write -d '' -H "Origin: $ALLOWED" -H "Idempotency-Key: cors-allowed-1"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header access-control-allow-origin)" "$ALLOWED"
	assert_vary_origin
	assert_equal "$(jq -r .counter <<<"$HTTP_BODY")" "$((before + 1))"
	# the replay: its header is one the page may read
	http POST /write -d '' -H "Origin: $ALLOWED" -H "Idempotency-Key: cors-allowed-1"
	assert_equal "$(header idempotent-replayed)" true
	[[ $(header access-control-expose-headers) == *Idempotent-Replayed* ]]
	http POST /write -d '' -H "Origin: https://second.example"
	assert_equal "$(header access-control-allow-origin)" "https://second.example"
	assert_equal "$(counter_value)" "$((before + 2))"
}

@test "a write from an origin not listed: 403 JSON, no CORS headers, not counted" {
	local before origin
	before=$(counter_value)
	# a "simple" POST (no preflight in a browser) as well as others;
	# an origin is matched exactly: scheme, host and port
	for origin in "$OTHER" "http://allowed.example" "http://allowed.example:8000.evil" \
		"https://allowed.example:8000" "null"; do
		http POST /write -d '' -H "Origin: $origin" -H 'Content-Type: text/plain'
		assert_equal "$origin $HTTP_STATUS" "$origin 403"
		assert_equal "$(header content-type)" "application/json"
		run jq -e '.error | startswith("forbidden")' <<<"$HTTP_BODY"
		assert_success
		assert_no_cors
	done
	assert_equal "$(counter_value)" "$before"
}

@test "a write from tally's own page is not cross-origin; one without Origin counts" {
	local before
	before=$(counter_value)
	http POST /write -d '' -H "Origin: $TALLY_URL"
	assert_equal "$HTTP_STATUS" 200
	# behind a proxy that terminates TLS the scheme differs: the host decides
	http POST /write -d '' -H "Origin: https://127.0.0.1:$TALLY_PORT"
	assert_equal "$HTTP_STATUS" 200
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(counter_value)" "$((before + 3))"
}

@test "preflight of POST /write with Idempotency-Key and Content-Type: 204 with the Access-Control-Allow-* headers" {
	local before
	before=$(counter_value)
	http OPTIONS /write -H "Origin: $ALLOWED" -H 'Access-Control-Request-Method: POST' \
		-H 'Access-Control-Request-Headers: idempotency-key,content-type'
	assert_equal "$HTTP_STATUS" 204
	assert_equal "$HTTP_BODY" ""
	assert_equal "$(header access-control-allow-origin)" "$ALLOWED"
	assert_equal "$(header access-control-allow-methods)" "GET, HEAD, POST"
	[[ ${HTTP_HEADERS,,} == *"access-control-allow-headers: "*idempotency-key* ]]
	[[ ${HTTP_HEADERS,,} == *"access-control-allow-headers: "*content-type* ]]
	[[ $(header access-control-max-age) =~ ^[0-9]+$ ]]
	assert_vary_origin
	refute grep -qi '^access-control-allow-credentials' <<<"$HTTP_HEADERS"
	# the security headers are on it as on every answer
	[[ $(header content-security-policy) == "default-src 'none';"* ]]
	assert_equal "$(counter_value)" "$before"
}

@test "preflight from an origin not listed: 403 without CORS headers; reads' preflight open" {
	http OPTIONS /write -H "Origin: $OTHER" -H 'Access-Control-Request-Method: POST' \
		-H 'Access-Control-Request-Headers: idempotency-key,content-type'
	assert_equal "$HTTP_STATUS" 403
	assert_no_cors
	http OPTIONS /read -H "Origin: $OTHER" -H 'Access-Control-Request-Method: GET' \
		-H 'Access-Control-Request-Headers: x-request-id'
	assert_equal "$HTTP_STATUS" 204
	assert_equal "$(header access-control-allow-origin)" "*"
	assert_equal "$(header access-control-allow-methods)" "GET, HEAD"
	# a listed origin's preflight of a read names POST too
	http OPTIONS /read -H "Origin: $ALLOWED" -H 'Access-Control-Request-Method: GET'
	assert_equal "$HTTP_STATUS" 204
	assert_equal "$(header access-control-allow-methods)" "GET, HEAD, POST"
}

@test "a plain OPTIONS (no Access-Control-Request-Method) stays 405 with Allow" {
	http OPTIONS /write -H "Origin: $ALLOWED"
	assert_equal "$HTTP_STATUS" 405
	assert_equal "$(header allow)" "POST"
	assert_equal "$(header access-control-allow-origin)" "*"
	http OPTIONS /read
	assert_equal "$HTTP_STATUS" 405
	assert_no_cors
}

@test "errors carry the CORS headers too: 404, 405, 503 from lighttpd and the responders" {
	http GET /api/nope -H "Origin: $OTHER"
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$(header content-type)" "application/json"
	assert_equal "$(header access-control-allow-origin)" "*"
	assert_vary_origin
	http GET /write -H "Origin: $OTHER"
	assert_equal "$HTTP_STATUS" 405
	assert_equal "$(header access-control-allow-origin)" "*"
	# (/write/x is a named counter's path: its 405)
	http GET /write/x -H "Origin: $OTHER"
	assert_equal "$HTTP_STATUS" 405
	assert_equal "$(header access-control-allow-origin)" "*"
	http GET /time/x -H "Origin: $OTHER" -H 'Accept: application/json'
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$(header access-control-allow-origin)" "*"
	# lighttpd's own 503: the responder's socket is not there
	local sock="$STACK_DIR/run/read.sock"
	mv "$sock" "$sock.away"
	http GET /read -H "Origin: $OTHER"
	mv "$sock.away" "$sock"
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$(header content-type)" "application/json"
	assert_equal "$(header access-control-allow-origin)" "*"
	assert_vary_origin
	wait_until 15 read_answers
	# a 503 of the write responder, to a listed origin: Retry-After readable
	sock="$STACK_DIR/run/write.sock"
	mv "$sock" "$sock.away"
	http POST /write -d '' -H "Origin: $ALLOWED"
	mv "$sock.away" "$sock"
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$(header access-control-allow-origin)" "$ALLOWED"
	[[ $(header access-control-expose-headers) == Retry-After* ]]
	wait_until 15 write_answers
}

read_answers() {
	http GET /read
	[[ $HTTP_STATUS == 200 ]]
}

write_answers() {
	http POST /write -d ''
	[[ $HTTP_STATUS == 200 ]]
}

@test "the page itself carries no CORS headers" {
	http GET / -H "Origin: $OTHER"
	assert_equal "$HTTP_STATUS" 200
	assert_no_cors
}

@test "a malformed TALLY_CORS_WRITE_ORIGINS stops lighttpd's start with a clear message" {
	local bad
	for bad in "https://example.org/" "example.org" "https://Example.org" "ftp://x" \
		"https://a.example,,https://b.example" "http://x:70000"; do
		TALLY_CORS_WRITE_ORIGINS=$bad run bash -c \
			'source "$TALLY_SRCDIR/scripts/lib.sh"; tally_cors_origins'
		assert_failure
		assert_output --partial "TALLY_CORS_WRITE_ORIGINS must be"
	done
	TALLY_CORS_WRITE_ORIGINS='*' run bash -c \
		'source "$TALLY_SRCDIR/scripts/lib.sh"; tally_cors_origins && echo "[$TALLY_CORS_WRITE_ORIGINS]"'
	assert_success
	assert_output '[*]'
}

# --- compression -------------------------------------------------------------

@test "the page's HTML, CSS and JavaScript are gzip-compressed when accepted, the same bytes" {
	local file out="$BATS_TEST_TMPDIR/body"
	for file in index.html style.css app.js; do
		local url=$TALLY_URL/$file
		[[ $file == index.html ]] && url=$TALLY_URL/
		curl -s -D "$out.h" -o "$out.gz" --max-time 10 -H 'Accept-Encoding: gzip' "$url"
		HTTP_HEADERS=$(tr -d '\r' <"$out.h" | sed 's/^\([^:]*\):/\L\1:/')
		assert_equal "$file $(header content-encoding)" "$file gzip"
		assert_equal "$file $(grep -i '^vary:' <<<"$HTTP_HEADERS")" "$file vary: Accept-Encoding"
		gzip -dc <"$out.gz" >"$out"
		cmp "$out" "$TALLY_SRCDIR/www/$file"
		(($(stat -c %s "$out.gz") < $(stat -c %s "$out"))) || fail "$file: not smaller"
		# without Accept-Encoding: the file as it is, still Vary
		curl -s -D "$out.h" -o "$out" --max-time 10 "$url"
		HTTP_HEADERS=$(tr -d '\r' <"$out.h" | sed 's/^\([^:]*\):/\L\1:/')
		assert_equal "$file [$(header content-encoding)]" "$file []"
		assert_equal "$file $(grep -i '^vary:' <<<"$HTTP_HEADERS")" "$file vary: Accept-Encoding"
		cmp "$out" "$TALLY_SRCDIR/www/$file"
	done
}

@test "API answers are never compressed" {
	local path
	for path in /read /time /api/nope; do
		http GET "$path" -H 'Accept-Encoding: gzip, deflate, br'
		assert_equal "$path [$(header content-encoding)]" "$path []"
		[[ $(header vary) != *Accept-Encoding* ]] || fail "$path: Vary is \"$(header vary)\""
		run jq -e . <<<"$HTTP_BODY"
		assert_success
	done
	http POST /write -d '' -H 'Accept-Encoding: gzip'
	assert_equal "[$(header content-encoding)]" "[]"
	run jq -e .counter <<<"$HTTP_BODY"
	assert_success
}
