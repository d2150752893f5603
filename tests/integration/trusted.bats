#!/usr/bin/env bats
# tally - TALLY_TRUSTED_PROXIES changes user_ip as docs/api.md describes.

load ../lib/helpers

setup_file() {
	export TALLY_TRUSTED_PROXIES="127.0.0.0/8, 10.0.0.0/8, fd00::/8"
	tally_stack_start
}

user_ip_for() {
	http GET /time -H "X-Forwarded-For: $1"
	assert_equal "$HTTP_STATUS" 200
	jq -r .user_ip <<<"$HTTP_BODY"
}

@test "a trusted peer: the rightmost untrusted X-Forwarded-For entry is the user" {
	assert_equal "$(user_ip_for '203.0.113.7, 10.0.0.2')" "203.0.113.7"
	assert_equal "$(user_ip_for '198.51.100.1, 203.0.113.7, 10.1.2.3, 10.0.0.2')" "203.0.113.7"
}

@test "a client cannot spoof user_ip by prepending entries" {
	assert_equal "$(user_ip_for '1.1.1.1, 203.0.113.9')" "203.0.113.9"
}

@test "IPv6 and ports in X-Forwarded-For" {
	assert_equal "$(user_ip_for '[2001:db8::1]:443, fd00::5')" "2001:db8::1"
}

@test "all hops trusted: the leftmost is the user" {
	assert_equal "$(user_ip_for '10.9.9.9, 10.0.0.2')" "10.9.9.9"
}

@test "garbage stops the walk at the last trusted hop" {
	assert_equal "$(user_ip_for 'evil, 10.0.0.2')" "10.0.0.2"
	assert_equal "$(user_ip_for '203.0.113.7, evil')" "127.0.0.1"
}

@test "no X-Forwarded-For: the peer itself" {
	http GET /time
	assert_equal "$(jq -r .user_ip <<<"$HTTP_BODY")" "127.0.0.1"
}

@test "look-alike header names cannot stand in for the real ones: 400, nothing counted" {
	local before name
	# lighttpd maps every one of these to HTTP_X_FORWARDED_FOR: any
	# character of a name other than a letter or a digit becomes '_'
	for name in X_Forwarded_For X.Forwarded.For X-Forwarded_For 'X~Forwarded~For' "X'Forwarded*For"; do
		http GET /time -H "$name: 6.6.6.6" -H 'X-Forwarded-For: 203.0.113.9'
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$(header content-type)" "application/json"
		assert_equal "$(jq -r --arg n "$name" '.error | contains("the header name " + $n + " ")' <<<"$HTTP_BODY")" true
		assert_equal "$(jq -r '.user_ip // "none"' <<<"$HTTP_BODY")" none
		http GET /time -H 'X-Forwarded-For: 203.0.113.9' -H "$name: 6.6.6.6"
		assert_equal "$HTTP_STATUS" 400
		# alone, too: it never stands in for the real header
		http GET /time -H "$name: 6.6.6.6"
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$(jq -r '.user_ip // "none"' <<<"$HTTP_BODY")" none
	done
	before=$(counter_value)
	http POST /write -d '' -H 'Idempotency_Key: lookalike-a' -H "Idempotency-Key: lookalike-b-$RANDOM"
	assert_equal "$HTTP_STATUS" 400
	http POST /write -d '' -H 'Idempotency.Key: lookalike-c'
	assert_equal "$HTTP_STATUS" 400
	assert_equal "$(counter_value)" "$before"
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys WHERE key LIKE 'lookalike-%'")" 0
}

@test "the page's static files do not refuse such names: only the API does" {
	http GET /index.html -H 'X_Custom_Thing: 1'
	assert_equal "$HTTP_STATUS" 200
}

@test "the real header sent twice is one header: lighttpd joins the lines" {
	http GET /time -H 'X-Forwarded-For: 6.6.6.6' -H 'x-forwarded-for: 203.0.113.9'
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(jq -r .user_ip <<<"$HTTP_BODY")" 203.0.113.9
}
