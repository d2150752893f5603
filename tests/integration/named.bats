#!/usr/bin/env bats
# tally - named counters: GET /read/NAME and POST /write/NAME (docs/api.md,
# "Named counters"): the grammar of a name, creation by the first write,
# exact and distinct values per counter under concurrent writes, an
# Idempotency-Key bound to its counter, the cap on the number of
# counters, the methods, an upgrade from the schema before them, and
# the database down.

load ../lib/helpers

# The most named counters this file's stack allows.
CAP=12

setup_file() {
	export TALLY_MAX_COUNTERS=$CAP
	# shellcheck disable=SC2119 # no database named: a private cluster
	tally_stack_start
}

# named_value NAME: the counter's value in the database ("" if none).
named_value() {
	psql_tally "SELECT value FROM tally_counter WHERE name = '$1'"
}

# named_count: how many named counters the database holds.
named_count() {
	psql_tally "SELECT count(*) FROM tally_counter WHERE name <> ''"
}

# The rule a 400 states (request.h, REQUEST_NAME_RULE).
RULE="a counter's name is a key or a namespace and a key, separated by one '/' (/read/visits, /read/example.com/visits): each 1 to 64 of A-Z a-z 0-9 . _ - and neither '.' nor '..'"

@test "a named counter is created by its first write and read by its name; the default counter stays apart" {
	local before
	before=$(counter_value)
	http GET /read/site.com/visits
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$(header content-type)" application/json
	assert_equal "$HTTP_BODY" '{"error":"no counter has this name: its first write creates it"}'
	http POST /write/site.com/visits -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"counter":1}'
	http POST /write/site.com/visits -d ''
	assert_equal "$HTTP_BODY" '{"counter":2}'
	http GET /read/site.com/visits
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$HTTP_BODY" '{"counter":2}'
	# the key alone is another counter
	http POST /write/visits -d ''
	assert_equal "$HTTP_BODY" '{"counter":1}'
	assert_equal "$(named_value site.com/visits)" 2
	assert_equal "$(named_value visits)" 1
	assert_equal "$(counter_value)" "$before"
	http GET /read
	assert_equal "$HTTP_BODY" "{\"counter\":$before}"
}

@test "a name outside the grammar gets 400 JSON stating the rule; nothing is created" {
	local path count long before
	count=$(named_count)
	long=$(printf 'a%.0s' {1..65})
	for path in / /a/b/c /a/ /ns/a%2Fb /a%2fb/c '/a%20b' /a:b \
		/%C3%A9 '/a%5Cb' '/a%22b' "/$long" "/ns/$long" /. /a/. /x/.. /x/../y/z/w; do
		for route in read write; do
			http "$([[ $route == read ]] && echo GET || echo POST)" "/$route$path" \
				--path-as-is -d ''
			echo "# /$route$path: $HTTP_STATUS $HTTP_BODY" >&3
			assert_equal "$HTTP_STATUS" 400
			assert_equal "$(header content-type)" application/json
			assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "$RULE"
		done
	done
	# lighttpd removes dot segments first (and merges "//"): these leave
	# /write for the page ("/"), which counts nothing
	before=$(counter_value)
	for path in /write/.. /write/%2e%2e /write/%2E%2e/%2e%2e; do
		http POST "$path" --path-as-is -d ''
		echo "# $path: $HTTP_STATUS" >&3
		[[ $HTTP_BODY != '{"counter"'* ]]
	done
	assert_equal "$(counter_value)" "$before"
	assert_equal "$(named_count)" "$count"
	# lighttpd decodes %2F before anything else: it is the one '/'
	http POST /write/pct%2Fone -d ''
	assert_equal "$HTTP_BODY" '{"counter":1}'
	http GET /read/pct/one
	assert_equal "$HTTP_BODY" '{"counter":1}'
	# the longest name there is
	long=$(printf 'b%.0s' {1..64})
	http POST "/write/$long/$long" -d ''
	assert_equal "$HTTP_BODY" '{"counter":1}'
	assert_equal "$(named_count)" $((count + 2))
}

@test "concurrent writes to several counters are distinct and exact per counter" {
	local out name n=60 before_default
	out="$BATS_TEST_TMPDIR/writes"
	before_default=$(counter_value)
	# shellcheck disable=SC2016 # sh -c's script expands its own arguments
	for name in load/a load/b load.c ""; do
		for _ in $(seq $n); do
			echo "/write${name:+/$name}"
		done
	done | shuf | xargs -P 24 -I{} sh -c \
		'printf "%s %s\n" "$1" "$(curl -s --max-time 30 -d "" "$0$1")"' "$TALLY_URL" {} >"$out"
	for name in load/a load/b load.c; do
		grep "^/write/$name " "$out" | cut -d' ' -f2 >"$out.one"
		assert_equal "$(jq -s length "$out.one")" $n
		assert_equal "$(jq -r .counter "$out.one" | sort -un | wc -l)" $n
		assert_equal "$(jq -s 'map(.counter) | min' "$out.one")" 1
		assert_equal "$(jq -s 'map(.counter) | max' "$out.one")" $n
		assert_equal "$(named_value "$name")" $n
		http GET "/read/$name"
		assert_equal "$HTTP_BODY" "{\"counter\":$n}"
	done
	grep "^/write " "$out" | cut -d' ' -f2 >"$out.default"
	assert_equal "$(jq -r .counter "$out.default" | sort -un | wc -l)" $n
	assert_equal "$(jq -s 'map(.counter) | min' "$out.default")" $((before_default + 1))
	assert_equal "$(counter_value)" $((before_default + n))
}

@test "keyed writes to several counters at once: each key counts once, on its own counter" {
	local out name n=30
	out="$BATS_TEST_TMPDIR/keyed"
	# shellcheck disable=SC2016 # sh -c's script expands its own arguments
	for name in kc/a kc/b; do
		for i in $(seq $n); do
			# each key twice: one counts, the other replays it
			echo "$name $name-$i"
			echo "$name $name-$i"
		done
	done | shuf | xargs -P 24 -L1 sh -c \
		'printf "%s %s\n" "$1" "$(curl -s --max-time 30 -d "" -H "Idempotency-Key: $2" "$0/write/$1")"' "$TALLY_URL" >"$out"
	for name in kc/a kc/b; do
		grep "^$name " "$out" | cut -d' ' -f2 >"$out.one"
		assert_equal "$(jq -s length "$out.one")" $((2 * n))
		assert_equal "$(jq -r .counter "$out.one" | sort -un | wc -l)" $n
		assert_equal "$(jq -s 'map(.counter) | min' "$out.one")" 1
		assert_equal "$(jq -s 'map(.counter) | max' "$out.one")" $n
		assert_equal "$(named_value "$name")" $n
	done
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys AS k
		JOIN tally_counter AS c ON c.id = k.counter_id WHERE c.name LIKE 'kc/%'")" $((2 * n))
}

@test "an Idempotency-Key belongs to its counter: sent to another, 422 JSON and nothing counted" {
	local v before
	http POST /write/keys/a -d '' -H 'Idempotency-Key: named-key-1'
	assert_equal "$HTTP_STATUS" 200
	v=$(jq -r .counter <<<"$HTTP_BODY")
	http POST /write/keys/a -d '' -H 'Idempotency-Key: named-key-1'
	assert_equal "$HTTP_BODY" "{\"counter\":$v}"
	assert_equal "$(header idempotent-replayed)" true
	http POST /write/keys/b -d '' -H 'Idempotency-Key: named-key-1'
	assert_equal "$HTTP_STATUS" 422
	assert_equal "$(header content-type)" application/json
	assert_equal "$(jq -r .error <<<"$HTTP_BODY")" \
		"this Idempotency-Key counted on another counter: not counted here; use a new key"
	assert_equal "$(header idempotent-replayed)" ""
	# nor created by it
	assert_equal "$(named_value keys/b)" ""
	http GET /read/keys/b
	assert_equal "$HTTP_STATUS" 404
	before=$(counter_value)
	write_with_key named-key-1
	assert_equal "$HTTP_STATUS" 422
	assert_equal "$(counter_value)" "$before"
	# and a key of the default counter is its own
	write_with_key named-key-2
	assert_equal "$HTTP_STATUS" 200
	http POST /write/keys/a -d '' -H 'Idempotency-Key: named-key-2'
	assert_equal "$HTTP_STATUS" 422
	assert_equal "$(named_value keys/a)" "$v"
	assert_equal "$(counter_value)" $((before + 1))
	http POST /write/keys/a -d '' -H 'Idempotency-Key: named-key-1'
	assert_equal "$HTTP_BODY" "{\"counter\":$v}"
}

@test "the named paths: HEAD, and 405 with Allow for the other methods" {
	local spec method path allow answer
	http POST /write/methods/x -d ''
	assert_equal "$HTTP_STATUS" 200
	for spec in "GET /write/methods/x POST" "PUT /write/methods/x POST" \
		"POST /read/methods/x GET, HEAD" "DELETE /read/methods/x GET, HEAD"; do
		read -r method path allow <<<"$spec"
		http "$method" "$path" -d ''
		assert_equal "$HTTP_STATUS" 405
		assert_equal "$(header allow)" "$allow"
		assert_equal "$(jq -r .error <<<"$HTTP_BODY")" "method not allowed"
	done
	assert_equal "$(named_value methods/x)" 1
	answer=$(raw_http "HEAD /read/methods/x HTTP/1.0"$'\r\n\r\n')
	assert_equal "$(head -1 <<<"$answer" | tr -d '\r')" "HTTP/1.0 200 OK"
	grep -qi '^Content-Type: application/json' <<<"$answer"
	grep -qi '^Content-Length: 13' <<<"$answer"
	# nothing after the blank line that ends the headers
	assert_equal "$(sed '1,/^\r*$/d' <<<"$answer")" ""
	# the API's CORS rules hold (docs/api.md): reads open to every origin,
	# writes from an origin not listed refused before they count
	http GET /read/methods/x -H 'Origin: https://other.example'
	assert_equal "$(header access-control-allow-origin)" "*"
	http POST /write/methods/x -d '' -H 'Origin: https://other.example'
	assert_equal "$HTTP_STATUS" 403
	http POST /write/methods/y -d '' -H 'Origin: https://other.example'
	assert_equal "$HTTP_STATUS" 403
	assert_equal "$(named_value methods/x)" 1
	assert_equal "$(named_value methods/y)" ""
	answer=$(raw_http "HEAD /read/methods/none HTTP/1.0"$'\r\n\r\n')
	assert_equal "$(head -1 <<<"$answer" | tr -d '\r')" "HTTP/1.0 404 Not Found"
	assert_equal "$(sed '1,/^\r*$/d' <<<"$answer")" ""
}

@test "metrics have no label per counter: the number of counters, named reads and writes by path and status" {
	http GET /read/site.com/visits
	http GET /read/metrics/none
	http POST /write/keys/b -d '' -H 'Idempotency-Key: named-key-1'
	assert_equal "$HTTP_STATUS" 422
	http_internal GET /metrics
	assert_equal "$HTTP_STATUS" 200
	grep -q '^http_requests_total{path="/read/",method="GET",code="200"} [1-9]' <<<"$HTTP_BODY"
	grep -q '^http_requests_total{path="/read/",method="GET",code="404"} [1-9]' <<<"$HTTP_BODY"
	grep -q '^http_requests_total{path="/write/",method="POST",code="200"} [1-9]' <<<"$HTTP_BODY"
	grep -q '^http_requests_total{path="/write/",method="POST",code="422"} [1-9]' <<<"$HTTP_BODY"
	assert_equal "$(sed -n 's/^tally_named_counters //p' <<<"$HTTP_BODY")" "$(named_count)"
	refute grep -q 'site\.com\|metrics/none\|keys/b' <<<"$HTTP_BODY"
}

@test "at TALLY_MAX_COUNTERS, creating a counter gets 409 JSON; the counters there keep counting" {
	local i keys before
	for ((i = $(named_count); i < CAP; i++)); do
		http POST "/write/cap/c$i" -d ''
		assert_equal "$HTTP_STATUS" 200
	done
	assert_equal "$(named_count)" $CAP
	keys=$(keys_in_table)
	http POST /write/cap/over -d ''
	assert_equal "$HTTP_STATUS" 409
	assert_equal "$(header content-type)" application/json
	assert_equal "$(jq -r .error <<<"$HTTP_BODY")" \
		"$CAP named counters exist, the most allowed: no other is created"
	http POST /write/cap/over -d '' -H 'Idempotency-Key: cap-over-1'
	assert_equal "$HTTP_STATUS" 409
	http GET /read/cap/over
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$(named_count)" $CAP
	assert_equal "$(keys_in_table)" "$keys"
	before=$(named_value site.com/visits)
	http POST /write/site.com/visits -d ''
	assert_equal "$HTTP_BODY" "{\"counter\":$((before + 1))}"
	http POST /write/site.com/visits -d '' -H 'Idempotency-Key: cap-there-1'
	assert_equal "$HTTP_BODY" "{\"counter\":$((before + 2))}"
	before=$(counter_value)
	http POST /write -d ''
	assert_equal "$HTTP_BODY" "{\"counter\":$((before + 1))}"
}

@test "concurrent statements on overlapping counters, in any order, lock in one order: no deadlock, exact counts" {
	local c i pids=() default
	default=$(counter_value)
	psql_tally "SELECT count(*) FROM tally_count_named(ARRAY['dl/a', 'dl/b'],
		ARRAY[0, 0]::bigint[], '{}', '{}', 60, 100000, 100000)" >/dev/null
	# what a responder's batch sends (src/counter.c), from 6 sessions at
	# once, the counters named in either order: statements that create
	# counters and record keys (they lock the default counter's row
	# first), and plain ones on counters that exist, which lock only the
	# rows they count on
	for c in 1 2 3 4 5 6; do
		for i in $(seq 100); do
			if ((c % 2)); then
				echo "SELECT count(*) FROM tally_count_named(ARRAY['dl/a', 'dl/b', '', 'dl/c$i'],"
			else
				echo "SELECT count(*) FROM tally_count_named(ARRAY['dl/c$i', '', 'dl/b', 'dl/a'],"
			fi
			echo "ARRAY[1, 1, 1, 1]::bigint[], ARRAY['dl-$c-$i', 'dl-$c-$i-b'], ARRAY['dl/b', 'dl/a'], 60, 100000, 100000);"
			if ((c % 2)); then
				echo "SELECT count(*) FROM tally_count_named(ARRAY['dl/a', 'dl/b', ''],"
			else
				echo "SELECT count(*) FROM tally_count_named(ARRAY['', 'dl/b', 'dl/a'],"
			fi
			echo "ARRAY[1, 1, 1]::bigint[], '{}', '{}', 60, 100000, 100000);"
		done >"$BATS_TEST_TMPDIR/dl-$c.sql"
		psql -X -q -tA -v ON_ERROR_STOP=1 -d "$(stack_pg_admin_url)" \
			-f "$BATS_TEST_TMPDIR/dl-$c.sql" >"$BATS_TEST_TMPDIR/dl-$c.out" 2>&1 &
		pids+=($!)
	done
	for c in "${!pids[@]}"; do
		wait "${pids[$c]}" || fail "session $((c + 1)): $(tail -3 "$BATS_TEST_TMPDIR/dl-$((c + 1)).out")"
	done
	assert_equal "$(named_value dl/a)" 1800
	assert_equal "$(named_value dl/b)" 1800
	assert_equal "$(psql_tally "SELECT count(*) || ' ' || sum(value) FROM tally_counter
		WHERE name LIKE 'dl/c%'")" "100 600"
	assert_equal "$(counter_value)" $((default + 1200))
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys WHERE key LIKE 'dl-%'")" 1200
}

@test "upgrade: a database at the schema before named counters keeps its value and its keys" {
	local old url
	old="$BATS_TEST_TMPDIR/sql-before"
	mkdir -p "$old"
	cp "$TALLY_SQL_DIR"/00[1-6]_*.sql "$old/"
	psql_tally "CREATE DATABASE tally_upgrade OWNER $STACK_PG_OWNER"
	url=$(stack_pg_url_as "$STACK_PG_OWNER" tally_upgrade)
	run env DATABASE_URL="$url" "$TALLY_BIN_DIR/tally-migrate" --dir "$old"
	assert_success
	# as the previous version's responders count: 41 unkeyed, two keys
	psql -X -q -tA -v ON_ERROR_STOP=1 -d "$url" -c "
		UPDATE tally_counter SET value = 40 WHERE id = 1;
		SELECT count(*) FROM tally_count_keyed(1, ARRAY['up-1', 'up-2'], 86400, 1000);"
	assert_equal "$(psql -X -q -tA -d "$url" -c \
		"SELECT string_agg(key || '=' || value, ',' ORDER BY key) FROM tally_idempotency_keys")" \
		"up-1=42,up-2=43"
	run env DATABASE_URL="$url" "$TALLY_BIN_DIR/tally-migrate" \
		--dir "$TALLY_SQL_DIR" --grant-to "$STACK_PG_RUNTIME"
	assert_success
	assert_output --partial '"file":"008_named_counters.sql"'
	assert_equal "$(psql -X -q -tA -d "$url" -c \
		"SELECT value || ',' || keys_added || ',' || name FROM tally_counter")" "43,2,"
	# the keys replay on the default counter, as the responders ask now...
	assert_equal "$(psql -X -q -tA -d "$url" -c \
		"SELECT string_agg(coalesce(key, '-') || '=' || value || ':' || coalesce(outcome, counted::text), ',')
		FROM tally_count_named(ARRAY[''], ARRAY[0::bigint], ARRAY['up-1', 'up-2'],
			ARRAY['', ''], 86400, 1000, 10)")" "-=43:0,up-1=42:replayed,up-2=43:replayed"
	# ...and as the previous version's responders do during the upgrade
	assert_equal "$(psql -X -q -tA -d "$url" -c \
		"SELECT string_agg(key || '=' || value || ':' || outcome, ',')
		FROM tally_count_keyed(0, ARRAY['up-1'], 86400, 1000) WHERE key IS NOT NULL")" \
		"up-1=42:replayed"
	# they belong to the default counter: another one refuses them (and
	# is not created for them)
	assert_equal "$(psql -X -q -tA -d "$url" -c \
		"SELECT string_agg(coalesce(key, '-') || ':' || coalesce(outcome, value::text), ',')
		FROM tally_count_named(ARRAY['x'], ARRAY[0::bigint], ARRAY['up-2'],
			ARRAY['x'], 86400, 1000, 10)")" "-:absent,up-2:other"
	assert_equal "$(psql -X -q -tA -d "$url" -c "SELECT count(*) FROM tally_counter")" 1
	assert_equal "$(psql -X -q -tA -d "$url" -c \
		"SELECT value FROM tally_counter WHERE id = 1")" 43
	psql_tally "DROP DATABASE tally_upgrade"
}

# batch_sql: one call of tally_count_named, drawn with $RANDOM from a
# few counters and keys, printed as a SELECT of its answer on one line.
batch_sql() {
	local all=('' a b c/d) names=() adds=() keys=() knames=() i n k seen=' '
	for n in "${all[@]}"; do
		((RANDOM % 2)) || continue
		names+=("'$n'")
		adds+=($((RANDOM % 3)))
	done
	((${#names[@]} > 0)) || { names=("''"); adds=(1); }
	for ((i = RANDOM % 5; i > 0; i--)); do
		k="k$((RANDOM % 12))"
		n=${names[RANDOM % ${#names[@]}]}
		[[ $seen == *" $k=$n "* ]] && continue
		seen+="$k=$n "
		keys+=("'$k'")
		knames+=("$n")
	done
	local IFS=,
	echo "SELECT string_agg(coalesce(name, '~') || ':' || coalesce(key, '-') || '=' ||
		coalesce(value::text, 'n') || ':' || coalesce(outcome, '') || ':' ||
		coalesce(counted::text, ''), ' ') FROM tally_count_named(
		ARRAY[${names[*]}]::text[], ARRAY[${adds[*]}]::bigint[],
		ARRAY[${keys[*]}]::text[], ARRAY[${knames[*]}]::text[], 86400, 8, 2);"
}

@test "upgrade: keys recorded by the previous tally_count_named replay after the one that looks keys up once, which answers as it did" {
	local old url_old url_new i
	old="$BATS_TEST_TMPDIR/sql-008"
	mkdir -p "$old"
	cp "$TALLY_SQL_DIR"/00[1-8]_*.sql "$old/"
	psql_tally "CREATE DATABASE tally_008 OWNER $STACK_PG_OWNER"
	psql_tally "CREATE DATABASE tally_now OWNER $STACK_PG_OWNER"
	url_old=$(stack_pg_url_as "$STACK_PG_OWNER" tally_008)
	url_new=$(stack_pg_url_as "$STACK_PG_OWNER" tally_now)
	run env DATABASE_URL="$url_old" "$TALLY_BIN_DIR/tally-migrate" --dir "$old"
	assert_success
	# keys recorded at 008 on the default counter and on a named one
	psql -X -q -tA -v ON_ERROR_STOP=1 -d "$url_old" -c "
		SELECT count(*) FROM tally_count_named(ARRAY['', 'up/n'],
			ARRAY[2, 1]::bigint[], ARRAY['u-1', 'u-2', 'u-3'],
			ARRAY['', '', 'up/n'], 86400, 1000, 10);"
	run env DATABASE_URL="$url_old" "$TALLY_BIN_DIR/tally-migrate" \
		--dir "$TALLY_SQL_DIR" --grant-to "$STACK_PG_RUNTIME"
	assert_success
	assert_output --partial '"file":"010_keys_looked_up_once.sql"'
	assert_equal "$(psql -X -q -tA -d "$url_old" -c \
		"SELECT string_agg(key || '=' || value || '@' || counter_id, ',' ORDER BY key)
		FROM tally_idempotency_keys")" "u-1=3@1,u-2=4@1,u-3=2@2"
	assert_equal "$(psql -X -q -tA -d "$url_old" -c \
		"SELECT string_agg(coalesce(key, '-') || '=' || coalesce(value::text, 'n') || ':' || coalesce(outcome, counted::text), ',')
		FROM tally_count_named(ARRAY['', 'up/n'], ARRAY[0, 0]::bigint[],
			ARRAY['u-1', 'u-2', 'u-3', 'u-4', 'u-1'], ARRAY['', '', 'up/n', 'up/n', 'up/n'],
			86400, 1000, 10)")" \
		"-=4:0,u-1=3:replayed,u-2=4:replayed,-=3:0,u-3=2:replayed,u-4=3:counted,u-1=n:other"
	assert_equal "$(psql -X -q -tA -d "$url_old" -c \
		"SELECT string_agg(name || '=' || value || ',' || keys_added || ',' || counters, ' ' ORDER BY id)
		FROM tally_counter")" "=4,4,1 up/n=3,0,0"
	# the same calls on a new database at 008 and on one at 010 answer
	# alike, and leave the same counters, keys and totals
	psql_tally "DROP DATABASE tally_008"
	psql_tally "CREATE DATABASE tally_008 OWNER $STACK_PG_OWNER"
	run env DATABASE_URL="$url_old" "$TALLY_BIN_DIR/tally-migrate" --dir "$old"
	assert_success
	run env DATABASE_URL="$url_new" "$TALLY_BIN_DIR/tally-migrate" --dir "$TALLY_SQL_DIR"
	assert_success
	RANDOM=20261208
	for i in $(seq 300); do
		batch_sql
		if ((i == 100)); then
			# keys past the retention: taken over, or refused at the cap
			echo "UPDATE tally_idempotency_keys SET created_at = now() - interval '2 days'
				WHERE key IN ('k1', 'k2', 'k3', 'k4');"
			echo "DELETE FROM tally_idempotency_keys WHERE key = 'k4';"
		fi
		if ((i == 200)); then
			# near the maximum
			echo "UPDATE tally_counter SET value = 9223372036854775800 WHERE name IN ('', 'a');"
		fi
	done >"$BATS_TEST_TMPDIR/calls.sql"
	echo "SELECT string_agg(name || '=' || value || ',' || keys_added || ',' || counters, ' ' ORDER BY name)
		FROM tally_counter;
		SELECT string_agg(t.key || '=' || t.value || '@' || c.name, ' ' ORDER BY t.key)
		FROM tally_idempotency_keys AS t JOIN tally_counter AS c ON c.id = t.counter_id;
		SELECT removed FROM tally_idempotency_removed;" >>"$BATS_TEST_TMPDIR/calls.sql"
	psql -X -q -tA -v ON_ERROR_STOP=1 -d "$url_old" -f "$BATS_TEST_TMPDIR/calls.sql" \
		>"$BATS_TEST_TMPDIR/008.out"
	psql -X -q -tA -v ON_ERROR_STOP=1 -d "$url_new" -f "$BATS_TEST_TMPDIR/calls.sql" \
		>"$BATS_TEST_TMPDIR/010.out"
	run diff "$BATS_TEST_TMPDIR/008.out" "$BATS_TEST_TMPDIR/010.out"
	assert_success
	# every outcome came up
	for i in counted replayed other maximum full cap absent; do
		grep -q ":$i:" "$BATS_TEST_TMPDIR/010.out" || fail "no '$i' among the answers"
	done
	psql_tally "DROP DATABASE tally_008"
	psql_tally "DROP DATABASE tally_now"
}

@test "database down: named reads and writes get 503 JSON with Retry-After; nothing is counted" {
	local before i
	before=$(named_value site.com/visits)
	stack_pg_stop fast
	for spec in "GET /read/site.com/visits" "POST /write/site.com/visits" \
		"POST /write/down/new" "GET /read/down/new"; do
		read -r method path <<<"$spec"
		http "$method" "$path" -d '' -H 'Idempotency-Key: down-1'
		assert_equal "$HTTP_STATUS" 503
		[ -n "$(header retry-after)" ]
		assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	done
	stack_pg_start
	for i in $(seq 50); do
		answers_200 GET /read/site.com/visits && break
		sleep 0.2
	done
	http GET /read/site.com/visits
	assert_equal "$HTTP_BODY" "{\"counter\":$before}"
	http GET /read/down/new
	assert_equal "$HTTP_STATUS" 404
	assert_equal "$(psql_tally "SELECT count(*) FROM tally_idempotency_keys WHERE key = 'down-1'")" 0
}
