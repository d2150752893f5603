#!/usr/bin/env bats
# tally - per-client rate limits of POST /write (docs/api.md, "Rate
# limits"): a client over its write limit gets 429 JSON with Retry-After,
# RateLimit-Policy and RateLimit while another client at the same moment
# gets 200s, and nothing of the 429s is counted; new Idempotency-Keys
# have a bucket of their own, a key's replay gives its token back;
# creating counters has one too, while writes to the counters that exist
# go on; an IPv6 client is its /64; tally_rate_limited_total counts the
# 429s; a bucket refills. The clients are distinct loopback addresses
# (curl --interface 127.0.0.N), or addresses a trusted proxy names in
# X-Forwarded-For. Two worker processes share the buckets.

load ../lib/helpers

# Slow refills (a write token every 30 s, a key's or a creation's every
# 10 s), so that one phase of a test takes from a bucket only what it
# holds, even on a slow machine.
setup_file() {
	export TALLY_PROCESSES=2 TALLY_TRUSTED_PROXIES=127.0.0.1/32
	export TALLY_RATE_LIMIT_WRITES=2 TALLY_RATE_LIMIT_WRITES_BURST=10
	export TALLY_RATE_LIMIT_KEYS=6 TALLY_RATE_LIMIT_KEYS_BURST=3
	export TALLY_RATE_LIMIT_CREATES=6 TALLY_RATE_LIMIT_CREATES_BURST=2
	# shellcheck disable=SC2119 # no database named: a private cluster
	tally_stack_start
}

# The policy every write answers with (q: the burst; w: the seconds an
# empty bucket takes to fill).
POLICY='"write";q=10;w=300, "key";q=3;w=30, "create";q=2;w=20'

# rate_limited BUCKET: tally_rate_limited_total{bucket=BUCKET}.
rate_limited() {
	curl -s --max-time 10 "$TALLY_INTERNAL_URL/metrics" |
		sed -n "s/^tally_rate_limited_total{bucket=\"$1\"} //p"
}

# named_value NAME: the counter's value in the database ("" if none).
named_value() {
	psql_tally "SELECT value FROM tally_counter WHERE name = '$1'"
}

# writes_from ADDRESS N: N concurrent POST /write from ADDRESS; prints
# one status a line.
writes_from() {
	seq "$2" | xargs -P "$2" -I{} curl -s -o /dev/null -w '%{http_code}\n' \
		--max-time 20 --interface "$1" -d '' "$TALLY_URL/write"
}

# assert_limited BUCKET: the last answer is the 429 of BUCKET.
assert_limited() {
	assert_equal "$HTTP_STATUS" 429
	assert_equal "$(header content-type)" application/json
	assert_equal "$(jq -r '.error | type' <<<"$HTTP_BODY")" string
	assert_regex "$(header retry-after)" '^[1-9][0-9]*$'
	assert_equal "$(header ratelimit-policy)" "$POLICY"
	# the refused bucket alone: nothing left, and the seconds of Retry-After
	assert_equal "$(header ratelimit)" "\"$1\";r=0;t=$(header retry-after)"
}

@test "a client over its write limit gets 429s while another at the same moment gets 200s; only the 200s count" {
	local before after a b a200 a429 b200 limited_before
	limited_before=$(rate_limited write)
	before=$(counter_value)
	# A: 20 at once with a burst of 10
	a=$(writes_from 127.0.0.2 20)
	a200=$(grep -c '^200$' <<<"$a" || true)
	a429=$(grep -c '^429$' <<<"$a" || true)
	assert_equal "$((a200 + a429))" 20
	assert [ "$a200" -ge 10 ]
	assert [ "$a429" -ge 1 ]
	# A is over its limit; B, now, is not
	http POST /write -d '' --interface 127.0.0.2
	assert_limited write
	b=$(writes_from 127.0.0.3 9)
	b200=$(grep -c '^200$' <<<"$b" || true)
	assert_equal "$b200" 9
	http POST /write -d '' --interface 127.0.0.3
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header ratelimit-policy)" "$POLICY"
	assert_regex "$(header ratelimit)" '^"write";r=0;t=[0-9]+, "key";r=3, "create";r=2$'
	http POST /write -d '' --interface 127.0.0.2
	assert_limited write
	# the database counted the 200s, none of the 429s
	after=$(counter_value)
	assert_equal "$((after - before))" "$((a200 + b200 + 1))"
	assert_equal "$(($(rate_limited write) - limited_before))" "$((a429 + 2))"
}

@test "new Idempotency-Keys have a bucket of their own; a replay gives its token back" {
	local p="rl-$RANDOM" before
	before=$(counter_value)
	http POST /write -d '' --interface 127.0.0.4 -H "Idempotency-Key: $p-1"
	assert_equal "$HTTP_STATUS" 200
	assert_regex "$(header ratelimit)" '"key";r=2;t=[0-9]+'
	http POST /write -d '' --interface 127.0.0.4 -H "Idempotency-Key: $p-2"
	assert_equal "$HTTP_STATUS" 200
	# a replay, twice: answered, and the key bucket keeps its token
	http POST /write -d '' --interface 127.0.0.4 -H "Idempotency-Key: $p-1"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header idempotent-replayed)" true
	assert_regex "$(header ratelimit)" '"key";r=1'
	http POST /write -d '' --interface 127.0.0.4 -H "Idempotency-Key: $p-1"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(header idempotent-replayed)" true
	http POST /write -d '' --interface 127.0.0.4 -H "Idempotency-Key: $p-3"
	assert_equal "$HTTP_STATUS" 200
	# the fourth new key is over the limit: 429, not recorded
	http POST /write -d '' --interface 127.0.0.4 -H "Idempotency-Key: $p-4"
	assert_limited key
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys WHERE key = '$p-4'")" 0
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys WHERE key LIKE '$p-%'")" 3
	assert_equal "$(($(counter_value) - before))" 3
	# writes without a key go on
	http POST /write -d '' --interface 127.0.0.4
	assert_equal "$HTTP_STATUS" 200
}

@test "creating counters over the limit gets 429 and creates nothing; the counters that exist keep counting" {
	local p="rl$RANDOM" limited_before
	limited_before=$(rate_limited create)
	http POST "/write/$p/one" -d '' --interface 127.0.0.5
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"counter":1}'
	assert_regex "$(header ratelimit)" '"create";r=1;t=[0-9]+'
	http POST "/write/$p/two" -d '' --interface 127.0.0.5
	assert_equal "$HTTP_STATUS" 200
	# the creation bucket is empty: a third counter is refused
	http POST "/write/$p/three" -d '' --interface 127.0.0.5
	assert_limited create
	assert_equal "$(named_value "$p/three")" ""
	http GET "/read/$p/three"
	assert_equal "$HTTP_STATUS" 404
	# with a key too: the key is not recorded
	http POST "/write/$p/four" -d '' --interface 127.0.0.5 -H "Idempotency-Key: $p-four"
	assert_limited create
	assert_equal "$(named_value "$p/four")" ""
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys WHERE key = '$p-four'")" 0
	# the counters that exist count on, with and without a key
	http POST "/write/$p/one" -d '' --interface 127.0.0.5
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"counter":2}'
	http POST "/write/$p/two" -d '' --interface 127.0.0.5 -H "Idempotency-Key: $p-two"
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"counter":2}'
	assert_equal "$(named_value "$p/one")" 2
	assert_equal "$(named_value "$p/two")" 2
	# another client creates its own
	http POST "/write/$p/three" -d '' --interface 127.0.0.6
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(named_value "$p/three")" 1
	assert_equal "$(($(rate_limited create) - limited_before))" 2
}

@test "behind a trusted proxy the client is the address it names, an IPv6 one by its /64" {
	local i
	for i in $(seq 10); do
		http POST /write -d '' -H "X-Forwarded-For: 2001:db8:1:1::$i"
		assert_equal "$HTTP_STATUS" 200
	done
	# the same /64: over the limit
	http POST /write -d '' -H 'X-Forwarded-For: 2001:db8:1:1:ffff::9'
	assert_limited write
	# another /64, and an IPv4 client behind the proxy: not
	http POST /write -d '' -H 'X-Forwarded-For: 2001:db8:1:2::1'
	assert_equal "$HTTP_STATUS" 200
	http POST /write -d '' -H 'X-Forwarded-For: 192.0.2.10'
	assert_equal "$HTTP_STATUS" 200
	# an untrusted peer's X-Forwarded-For is not believed: 127.0.0.7 is
	# the client, with a bucket of its own
	http POST /write -d '' --interface 127.0.0.7 -H 'X-Forwarded-For: 2001:db8:1:1::1'
	assert_equal "$HTTP_STATUS" 200
}

@test "a limited client's bucket refills: after Retry-After it writes again" {
	local i wait
	for i in $(seq 11); do
		http POST /write -d '' --interface 127.0.0.8
	done
	assert_limited write
	# bounded: three waits of Retry-After at most
	for i in 1 2 3; do
		wait=$(header retry-after)
		assert [ "$wait" -le 30 ]
		sleep "$wait"
		http POST /write -d '' --interface 127.0.0.8
		[[ $HTTP_STATUS == 429 ]] || break
	done
	assert_equal "$HTTP_STATUS" 200
}
