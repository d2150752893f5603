#!/usr/bin/env bats
# tally - the admin API (docs/api.md, "Admin API"): off (404) without a
# token file; 401 JSON with WWW-Authenticate for a missing or wrong token,
# however close; listing by prefix a page at a time, setting, resetting
# and deleting counters with the number of named counters and its cap
# kept right; every action logged with the client's address, never the
# token; 405 with Allow; 503 with Retry-After when the database is down;
# writes racing sets and deletes neither deadlock nor lose their answers.

load ../lib/helpers

# The most named counters this file's stack allows.
CAP=20
TOKEN=admin-token-0123456789abcdefghijklmnopqrstuvwxyz

setup_file() {
	export TALLY_MAX_COUNTERS=$CAP
	admin_token_file "$TOKEN"
	# shellcheck disable=SC2119 # no database named: a private cluster
	tally_stack_start
}

teardown_file() {
	tally_stack_stop
	rm -rf "${TOKEN_DIR:?}"
}

# admin METHOD PATH [curl options...]: http with the token.
admin() {
	local method=$1 path=$2
	shift 2
	http "$method" "$path" -H "Authorization: Bearer $TOKEN" "$@"
}

# admin_up: tally-admin answers a request itself: 401 without a token
# (404 when it has none); lighttpd answers 503 while it cannot reach it.
admin_up() {
	[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
		"$TALLY_URL/admin/default") =~ ^(401|404)$ ]]
}

# admin_restart [VAR=VALUE...]: tally-admin started again with that
# environment (wait_until admin_up: under valgrind that takes a while).
admin_restart() {
	stack_stop_part admin TERM 15
	# shellcheck disable=SC2016 # expanded by the shell it starts
	env "$@" bash -c 'source "$TALLY_SRCDIR/scripts/stack.sh" &&
		stack_user_setup && tally_conn_limits &&
		export TALLY_RUN_DIR="$STACK_DIR/run" TALLY_SOCKET_DIR="$STACK_DIR/run" &&
		stack_responder_start admin'
}

named_count() {
	psql_tally "SELECT count(*) FROM tally_counter WHERE name <> ''"
}

# counters_kept: the number of named counters the default counter's row
# keeps (against which the cap is checked).
counters_kept() {
	psql_tally "SELECT counters FROM tally_counter WHERE id = 1"
}

@test "without a token file every admin path answers 404 JSON, as an unknown path does" {
	admin_restart TALLY_ADMIN_TOKEN_FILE=
	wait_until 60 admin_up
	for spec in "GET /admin/counters" "GET /admin/counters/a/b" \
		"PUT /admin/counters/a" "DELETE /admin/counters/a" "GET /admin/default" \
		"HEAD /admin/default"; do
		read -r method path <<<"$spec"
		if [[ $method == PUT ]]; then
			admin "$method" "$path" -d '{"counter":1}'
		else
			admin "$method" "$path"
		fi
		assert_equal "$HTTP_STATUS" 404
		assert_equal "$(header content-type)" application/json
		[[ $method == HEAD ]] || assert_equal "$HTTP_BODY" '{"error":"not found"}'
	done
	http GET /nothing/here -H 'Accept: application/json'
	assert_equal "$HTTP_STATUS" 404
	admin_restart
	wait_until 60 admin_up
	admin GET /admin/default
	assert_equal "$HTTP_STATUS" 200
}

@test "a token file others may read stops tally-admin, which says why; the others serve on" {
	cp "$TOKEN_DIR/token" "$TOKEN_DIR/open"
	chown "$STACK_USER" "$TOKEN_DIR/open"
	chmod 0644 "$TOKEN_DIR/open"
	admin_restart TALLY_ADMIN_TOKEN_FILE="$TOKEN_DIR/open"
	wait_until 60 grep -q 'TALLY_ADMIN_TOKEN_FILE cannot be used' "$STACK_LOG_DIR/admin.log"
	grep 'TALLY_ADMIN_TOKEN_FILE cannot be used' "$STACK_LOG_DIR/admin.log" | grep -q 'mode 0644'
	run admin_up
	assert_failure
	admin GET /admin/default
	[ "$HTTP_STATUS" != 200 ]
	http GET /read
	assert_equal "$HTTP_STATUS" 200
	admin_restart
	wait_until 60 admin_up
	admin GET /admin/default
	assert_equal "$HTTP_STATUS" 200
}

@test "a missing or wrong token gets 401 JSON with WWW-Authenticate: Bearer; nothing is done" {
	local last wrong prefix body
	http POST /write/auth/kept -d ''
	last=${TOKEN: -1}
	[[ $last == z ]] && wrong=${TOKEN%?}y || wrong=${TOKEN%?}z
	prefix=${TOKEN%?}
	for auth in "" "Authorization: Bearer" "Authorization: Bearer $wrong" \
		"Authorization: Bearer $prefix" "Authorization: Bearer ${TOKEN}x" \
		"Authorization: Basic $TOKEN" "Authorization: $TOKEN" \
		"Authorization: Bearer ${TOKEN^^}"; do
		for spec in "GET /admin/counters" "PUT /admin/counters/auth/kept" \
			"DELETE /admin/counters/auth/kept" "GET /admin/default"; do
			read -r method path <<<"$spec"
			body=()
			[[ $method != PUT ]] || body=(-d '{"counter":0}')
			http "$method" "$path" ${auth:+-H "$auth"} "${body[@]}"
			assert_equal "$HTTP_STATUS" 401
			assert_equal "$(header content-type)" application/json
			assert_equal "$(header www-authenticate)" 'Bearer realm="tally-admin"'
			assert_equal "$HTTP_BODY" '{"error":"this path takes \"Authorization: Bearer\" with the admin token"}'
		done
	done
	http GET /read/auth/kept
	assert_equal "$HTTP_BODY" '{"counter":1}'
	# the scheme's case does not matter; the token's does
	http GET /admin/default -H "Authorization: bearer $TOKEN"
	assert_equal "$HTTP_STATUS" 200
}

@test "listing: by prefix, a page at a time, in byte order, the default counter first" {
	local names=(list/b list/a list/C list/a.b list/a-b list/_z listx other.list) n
	for n in "${names[@]}"; do
		http POST "/write/$n" -d ''
		assert_equal "$HTTP_STATUS" 200
	done
	http POST /write/list/a -d ''
	admin GET '/admin/counters?prefix=list/&limit=4'
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"counters":[{"name":"list/C","counter":1},{"name":"list/_z","counter":1},{"name":"list/a","counter":2},{"name":"list/a-b","counter":1}],"next":"list/a-b"}'
	admin GET '/admin/counters?prefix=list/&limit=4&after=list/a-b'
	assert_equal "$HTTP_BODY" '{"counters":[{"name":"list/a.b","counter":1},{"name":"list/b","counter":1}],"next":null}'
	# the same, with the '/' escaped and the parameters in another order
	admin GET '/admin/counters?after=list%2Fa-b&limit=4&prefix=list%2F'
	assert_equal "$HTTP_BODY" '{"counters":[{"name":"list/a.b","counter":1},{"name":"list/b","counter":1}],"next":null}'
	# a page that ends exactly where the counters do has no next
	admin GET '/admin/counters?prefix=list/&limit=6'
	assert_equal "$(jq -r .next <<<"$HTTP_BODY")" null
	assert_equal "$(jq '.counters | length' <<<"$HTTP_BODY")" 6
	admin GET '/admin/counters?prefix=listx'
	assert_equal "$HTTP_BODY" '{"counters":[{"name":"listx","counter":1}],"next":null}'
	admin GET '/admin/counters?prefix=nothing'
	assert_equal "$HTTP_BODY" '{"counters":[],"next":null}'
	# walking every page finds every counter once; "after=" is after
	# the default counter, whose name is ""
	admin GET '/admin/counters?limit=1'
	assert_equal "$HTTP_BODY" "{\"counters\":[{\"name\":\"\",\"counter\":$(counter_value)}],\"next\":\"\"}"
	admin GET '/admin/counters?limit=1&after='
	[ "$(jq -r '.counters[0].name' <<<"$HTTP_BODY")" != "" ]
	local query="limit=3" seen=0 pages=0 next
	while ((pages < 50)); do
		admin GET "/admin/counters?$query"
		assert_equal "$HTTP_STATUS" 200
		seen=$((seen + $(jq '.counters | length' <<<"$HTTP_BODY")))
		pages=$((pages + 1))
		next=$(jq -r .next <<<"$HTTP_BODY")
		[[ $next != null ]] || break
		query="limit=3&after=$next"
	done
	assert_equal "$seen" "$(psql_tally "SELECT count(*) FROM tally_counter")"
}

@test "listing refuses a malformed query with 400 JSON" {
	for q in 'limit=0' 'limit=1001' 'limit=x' 'limit=-1' 'limit=%2B5' \
		'prefix=a%20b' 'prefix=%3Cb%3E' 'after=a//b' 'after=..' 'sort=name' \
		'limit=5&limit=6' 'prefix' 'prefix=%zz'; do
		echo "query: $q"
		admin GET "/admin/counters?$q"
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$(header content-type)" application/json
		assert_equal "$HTTP_BODY" '{"error":"the query takes prefix (the start of a name), after (the name a page ended with: its next) and limit (1 to 1000), each once"}'
	done
	admin GET '/admin/counters?limit=1000&prefix=&after='
	assert_equal "$HTTP_STATUS" 200
}

@test "set and reset a named counter and the default one; later writes count on from there" {
	http POST /write/set/me -d ''
	http POST /write/set/me -d ''
	admin PUT /admin/counters/set/me -d '{"counter":1000}'
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"name":"set/me","counter":1000}'
	http POST /write/set/me -d ''
	assert_equal "$HTTP_BODY" '{"counter":1001}'
	admin GET /admin/counters/set/me
	assert_equal "$HTTP_BODY" '{"name":"set/me","counter":1001}'
	admin PUT /admin/counters/set/me -d '{"counter":0}'
	assert_equal "$HTTP_BODY" '{"name":"set/me","counter":0}'
	http GET /read/set/me
	assert_equal "$HTTP_BODY" '{"counter":0}'
	http POST /write/set/me -d ''
	assert_equal "$HTTP_BODY" '{"counter":1}'
	# the default counter
	admin PUT /admin/default -d '{"counter":77}'
	assert_equal "$HTTP_BODY" '{"name":"","counter":77}'
	http POST /write -d ''
	assert_equal "$HTTP_BODY" '{"counter":78}'
	admin GET /admin/default
	assert_equal "$HTTP_BODY" '{"name":"","counter":78}'
	# its largest value: it then counts no more
	admin PUT /admin/counters/set/me -d '{"counter":9223372036854775807}'
	assert_equal "$HTTP_STATUS" 200
	http POST /write/set/me -d ''
	assert_equal "$HTTP_STATUS" 409
	# a key keeps the value it counted with: replayed, not counted again
	admin PUT /admin/counters/set/me -d '{"counter":5}'
	http POST /write/set/me -d '' -H 'Idempotency-Key: set-1'
	assert_equal "$HTTP_BODY" '{"counter":6}'
	admin PUT /admin/counters/set/me -d '{"counter":0}'
	http POST /write/set/me -d '' -H 'Idempotency-Key: set-1'
	assert_equal "$HTTP_BODY" '{"counter":6}'
	assert_equal "$(header idempotent-replayed)" true
	http GET /read/set/me
	assert_equal "$HTTP_BODY" '{"counter":0}'
	# setting creates nothing
	admin PUT /admin/counters/set/absent -d '{"counter":3}'
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$HTTP_BODY" '{"error":"no counter has this name: its first write creates it"}'
	http GET /read/set/absent
	assert_equal "$HTTP_STATUS" 404
}

@test "a malformed body or name gets 400 JSON; nothing changes" {
	http POST /write/body/x -d ''
	for body in '' '{}' '{"counter":-1}' '{"counter":1.5}' '{"counter":"3"}' \
		'{"counter":9223372036854775808}' '{"counter":1,"other":2}' '[1]' \
		'{"counter":1} x' '{"counter":18446744073709551615}' 'counter=1'; do
		admin PUT /admin/counters/body/x -d "$body" -H 'Content-Type: application/json'
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$HTTP_BODY" '{"error":"the body is {\"counter\": N}, N a whole number from 0 to 9223372036854775807"}'
	done
	http GET /read/body/x
	assert_equal "$HTTP_BODY" '{"counter":1}'
	for path in /admin/counters/a/b/c /admin/counters/ \
		"/admin/counters/%3Cscript%3E" "/admin/counters/a/.."; do
		echo "path: $path"
		admin GET "$path"
		assert_equal "$HTTP_STATUS" 400
		assert_equal "$(header content-type)" application/json
	done
}

@test "delete a named counter: its keys go, the count of counters and the cap stay right, a write creates it again" {
	local before kept
	http POST /write/del/me -d '' -H 'Idempotency-Key: del-1'
	http POST /write/del/me -d '' -H 'Idempotency-Key: del-2'
	http POST /write/del/me -d ''
	before=$(named_count)
	assert_equal "$(counters_kept)" "$before"
	admin DELETE /admin/counters/del/me
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"name":"del/me","counter":3,"keys_deleted":2}'
	assert_equal "$(named_count)" "$((before - 1))"
	assert_equal "$(counters_kept)" "$((before - 1))"
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys WHERE key LIKE 'del-%'")" 0
	http GET /read/del/me
	assert_equal "$HTTP_STATUS" 404
	admin DELETE /admin/counters/del/me
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$HTTP_BODY" '{"error":"no counter has this name"}'
	# written again, it starts again; its old key counts anew
	http POST /write/del/me -d '' -H 'Idempotency-Key: del-1'
	assert_equal "$HTTP_BODY" '{"counter":1}'
	[ -z "$(header idempotent-replayed)" ]
	assert_equal "$(counters_kept)" "$before"
	# up to the cap, then delete one: exactly one more may be created
	kept=$(named_count)
	for i in $(seq $((CAP - kept))); do
		http POST "/write/del/fill$i" -d ''
		assert_equal "$HTTP_STATUS" 200
	done
	http POST /write/del/over -d ''
	assert_equal "$HTTP_STATUS" 409
	admin DELETE /admin/counters/del/fill1
	assert_equal "$HTTP_STATUS" 200
	http POST /write/del/over -d ''
	assert_equal "$HTTP_STATUS" 200
	http POST /write/del/over2 -d ''
	assert_equal "$HTTP_STATUS" 409
	assert_equal "$(counters_kept)" "$CAP"
	assert_equal "$(named_count)" "$CAP"
	# make room for the tests after this one
	for i in $(seq 2 $((CAP - kept))); do
		admin DELETE "/admin/counters/del/fill$i"
		assert_equal "$HTTP_STATUS" 200
	done
	admin DELETE /admin/counters/del/over
	assert_equal "$(counters_kept)" "$(named_count)"
}

@test "wrong methods get 405 JSON with Allow; the default counter is never deleted" {
	admin DELETE /admin/default
	assert_equal "$HTTP_STATUS" 405
	assert_equal "$(header allow)" "GET, HEAD, PUT"
	assert_equal "$HTTP_BODY" '{"error":"method not allowed","allow":["GET","HEAD","PUT"]}'
	for method in PUT DELETE POST; do
		admin "$method" /admin/counters -d '{"counter":1}'
		assert_equal "$HTTP_STATUS" 405
		assert_equal "$(header allow)" "GET, HEAD"
	done
	admin POST /admin/counters/x -d ''
	assert_equal "$HTTP_STATUS" 405
	assert_equal "$(header allow)" "GET, HEAD, PUT, DELETE"
	admin POST /admin/default -d ''
	assert_equal "$(header allow)" "GET, HEAD, PUT"
	# the method is checked before the token
	http POST /admin/default -d ''
	assert_equal "$HTTP_STATUS" 405
	admin HEAD /admin/counters
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" ""
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_counter WHERE id = 1")" 1
}

@test "every action is logged with its counter, the client's address and outcome, never the token" {
	local start
	start=$(wc -l <"$STACK_LOG_DIR/admin.log")
	http POST /write/log/me -d ''
	admin PUT /admin/counters/log/me -d '{"counter":9}'
	admin GET '/admin/counters?prefix=log/'
	admin DELETE /admin/counters/log/me
	http GET /admin/default -H "Authorization: Bearer ${TOKEN%?}"
	sleep 0.2
	tail -n +"$((start + 1))" "$STACK_LOG_DIR/admin.log" >"$BATS_TEST_TMPDIR/lines"
	run jq -c 'select(.msg == "admin") | [.action, .counter, .client, .outcome, .level]' \
		"$BATS_TEST_TMPDIR/lines"
	assert_output '["set","log/me","127.0.0.1","ok","info"]
["list",null,"127.0.0.1","ok","info"]
["delete","log/me","127.0.0.1","ok","info"]
["get","","127.0.0.1","wrong token","warn"]'
	run jq -c 'select(.action == "set") | .value' "$BATS_TEST_TMPDIR/lines"
	assert_output 9
	# the token, or most of it, is in no log, nor in lighttpd's
	ls "$STACK_LOG_DIR"/lighttpd.log "$STACK_LOG_DIR"/admin.log
	run grep -rlF -- "${TOKEN:0:20}" "$STACK_LOG_DIR"
	assert_output ''
}

@test "database down: 503 JSON with Retry-After; nothing changes" {
	local i
	http POST /write/down/me -d ''
	stack_pg_stop fast
	for spec in "GET /admin/counters" "GET /admin/counters/down/me" \
		"PUT /admin/counters/down/me" "DELETE /admin/counters/down/me" \
		"PUT /admin/default"; do
		read -r method path <<<"$spec"
		if [[ $method == PUT ]]; then
			admin "$method" "$path" -d '{"counter":5}'
		else
			admin "$method" "$path"
		fi
		assert_equal "$HTTP_STATUS" 503
		[ -n "$(header retry-after)" ]
		assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	done
	stack_pg_start
	for i in $(seq 50); do
		answers_200 GET /read/down/me && break
		sleep 0.2
	done
	http GET /read/down/me
	assert_equal "$HTTP_BODY" '{"counter":1}'
	admin GET /admin/counters/down/me
	assert_equal "$HTTP_STATUS" 200
}

@test "writes racing sets and deletes all get answers; no deadlock, the count of counters stays right" {
	local out=$BATS_TEST_TMPDIR/race i
	# writers: new counters (which lock the default counter's row) and
	# keyed writes, while the same counters are set and deleted
	for i in $(seq 200); do
		echo "-H Idempotency-Key:race-$i -X POST $TALLY_URL/write/race/c$((i % 5))"
		echo "-X POST $TALLY_URL/write/race/c$((i % 5))"
	done >"$out.writes"
	xargs -P 8 -L 1 curl -s -o /dev/null -w '%{http_code}\n' --max-time 20 -d '' \
		<"$out.writes" >"$out.write-codes" &
	local writers=$!
	for i in $(seq 40); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 20 -X DELETE \
			-H "Authorization: Bearer $TOKEN" "$TALLY_URL/admin/counters/race/c$((i % 5))"
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 20 -X PUT -d '{"counter":7}' \
			-H "Authorization: Bearer $TOKEN" "$TALLY_URL/admin/counters/race/c$(((i + 2) % 5))"
	done >"$out.admin-codes"
	wait "$writers"
	# every write counted or was refused at the cap, nothing failed
	run grep -cvE '^(200|409)$' "$out.write-codes"
	assert_output 0
	assert_equal "$(wc -l <"$out.write-codes")" 400
	run grep -cvE '^(200|404)$' "$out.admin-codes"
	assert_output 0
	assert_equal "$(wc -l <"$out.admin-codes")" 80
	run grep -c 'deadlock' "$STACK_LOG_DIR/admin.log" "$STACK_LOG_DIR/write.log"
	refute_output --regexp ':[1-9]'
	assert_equal "$(counters_kept)" "$(named_count)"
}

@test "the runtime role deletes a counter only through tally_admin_delete, which never deletes the default one" {
	http POST /write/role/me -d ''
	run psql_runtime "DELETE FROM tally_counter WHERE name = 'role/me'"
	assert_failure
	assert_output --partial 'permission denied'
	assert_equal "$(psql_runtime "SELECT count(*) FROM tally_admin_delete('')")" 0
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_counter WHERE id = 1")" 1
	assert_equal "$(psql_runtime "SELECT value FROM tally_admin_delete('role/me')")" 1
	assert_equal "$(counters_kept)" "$(named_count)"
	# it runs as its owner with a search_path of its own
	assert_equal "$(psql_tally "SELECT prosecdef, array_to_string(proconfig, ';')
		FROM pg_proc WHERE proname = 'tally_admin_delete'")" "t|search_path=pg_catalog, public"
}
