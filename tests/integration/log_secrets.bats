#!/usr/bin/env bats
# tally - passwords in DATABASE_URL never reach a log, not even in pieces:
# an unescaped '@' or '/' in a password makes libpq take parts of it for a
# host, a port or a database and quote them in its connect errors; tally
# leaves out every value libpq's parser found to hold a secret (src/redact.h,
# tests/unit/test_redact.c). ./dev up names only the host and the database
# it uses.

load ../lib/helpers
load ../lib/faults

setup_file() {
	tally_stack_start
}

teardown_file() {
	local dir
	for dir in "$BATS_FILE_TMPDIR"/second-*; do
		[[ -f $dir/stack ]] && second_stack_stop "$(<"$dir/stack")"
	done
	tally_stack_stop
}

# second_stack_start NAME DATABASE_URL: responders and lighttpd on that
# database, without the schema step (such a URL cannot connect); sets
# SECOND_DIR and SECOND_URL.
second_stack_start() {
	local -x STACK_DIR STACK_LOG_DIR DATABASE_URL=$2 TALLY_PORT TALLY_INTERNAL_PORT
	STACK_DIR=$(mktemp -d /tmp/tally-test-secret.XXXXXX)
	STACK_LOG_DIR=$STACK_DIR/log
	TALLY_PORT=$(free_port)
	TALLY_INTERNAL_PORT=$(free_port)
	mkdir -p "$BATS_FILE_TMPDIR/second-$1"
	echo "$STACK_DIR" >"$BATS_FILE_TMPDIR/second-$1/stack"
	SECOND_DIR=$STACK_DIR
	SECOND_URL="http://127.0.0.1:$TALLY_PORT"
	stack_migrate() { :; }
	stack_start
}

second_stack_stop() {
	local -x STACK_DIR=$1
	stack_stop
	rm -rf "$STACK_DIR"
}

# logs_connect_failure: asks the second stack to write and read; true once
# its write responder has logged a failed connect.
logs_connect_failure() {
	curl -s -o /dev/null --max-time 10 -d '' "$SECOND_URL/write"
	curl -s -o /dev/null --max-time 10 "$SECOND_URL/read"
	grep -q 'database: cannot connect' "$SECOND_DIR/log/write.log"
}

# pieces_found PIECE... -- PATH...: prints the files under PATH that hold
# any of the pieces.
pieces_found() {
	local pieces=() piece
	while [[ $1 != -- ]]; do pieces+=("$1"); shift; done
	shift
	for piece in "${pieces[@]}"; do
		grep -rlF -- "$piece" "$@" 2>/dev/null | sed "s|^|$piece: |" || true
	done
}

# check_url NAME URL PIECE...: tally-migrate and a running stack with URL
# fail to connect, and none of the pieces is in their output or logs.
check_url() {
	local name=$1 url=$2 out
	shift 2
	out=$BATS_TEST_TMPDIR/$name-migrate.out
	run stack_as_user env DATABASE_URL="$url" "$TALLY_BIN_DIR/tally-migrate" \
		--dir "$TALLY_SQL_DIR"
	assert_failure
	echo "$output" >"$out"
	second_stack_start "$name" "$url"
	wait_until 20 logs_connect_failure
	assert_equal "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -d '' "$SECOND_URL/write")" 503
	# still says why
	grep "database: cannot connect" "$SECOND_DIR/log/write.log" | head -2 | sed "s/^/# /" >&3
	assert_no_lines "pieces of the password found in" \
		"$(pieces_found "$@" -- "$out" "$SECOND_DIR/log")"
	second_stack_stop "$SECOND_DIR"
	rm -rf "$BATS_FILE_TMPDIR/second-$name"
}

@test "an '@' in a password: libpq's host name with a piece of it is not logged" {
	# glibc refuses a host name with an '@' without asking any DNS server
	check_url at "postgresql://tally:hunter@2secret@localhost/tally" \
		hunter 2secret
}

@test "a '/' in a password: libpq's port and database with pieces of it are not logged" {
	check_url slash "postgresql://tally:pa/ss3cret@localhost/tally" \
		'"pa"' '\"pa\"' ss3cret pa/ss3cret
}

# no_piece_in FILE PASSWORD: FILE holds no three bytes of PASSWORD in a
# row (prints the first it finds). The values of the log lines' "time"
# and "pid" fields come from the clock and the kernel, not from the
# input, and are left out: a time whose milliseconds end in 41 holds
# "41Z", a piece of one password below.
no_piece_in() {
	local file=$1 pw=$2 i LC_ALL=C rest
	rest=$(sed -E 's/"time":"[^"]*"/"time":-/g; s/"pid":[0-9]+/"pid":-/g' "$file")
	for ((i = 0; i + 3 <= ${#pw}; i++)); do
		if grep -qF -- "${pw:i:3}" <<<"$rest"; then
			echo "piece '${pw:i:3}' of '$pw' in $(<"$file")"
			return 1
		fi
	done
}

@test "the reported tally-migrate case: a '\"' and a '/' in the password leave no piece of it" {
	local out=$BATS_TEST_TMPDIR/migrate.err
	# exactly as reported: libpq reads a host "tally", a port
	# 'ab"~!~:~' and a database 'x@localhost/tally'
	DATABASE_URL='postgresql://tally:ab"~!~:~/x@localhost/tally' \
		stack_as_user "$TALLY_BIN_DIR/tally-migrate" --dir "$TALLY_SQL_DIR" \
		2>"$out" && false
	sed 's/^/# /' "$out" >&3
	grep -q '"msg":"cannot connect to the database"' "$out"
	no_piece_in "$out" 'ab"~!~:~/x'
}

@test "tally-migrate: hostile passwords, raw or escaped in DATABASE_URL or in PGPASSWORD, leave no piece in its output" {
	local pw enc esc url out=$BATS_TEST_TMPDIR/migrate.err n=0
	local pws=('Qz"7~!~:~/Kx' "hunter@2secret" "pa/ss3cret" "Wq'7 \"Kp\\ 9w"
		"Vq%41Zr%zz9" "Wx:Yk@Jm/Hn?Tp=Ub#Rc" "Ünï©ødé€Pw" "Jk Lm/No@Pq:Rs%2FTu")
	for pw in "${pws[@]}"; do
		enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$pw")
		esc=${pw//\\/\\\\}
		esc=${esc//\'/\\\'}
		for url in "postgresql://tally:$pw@localhost:1/tally" \
			"postgresql://tally:$enc@localhost:1/tally" \
			"postgresql://localhost:1/tally?user=tally&password=$enc" \
			"host=localhost port=1 user=tally password='$esc'"; do
			DATABASE_URL=$url stack_as_user "$TALLY_BIN_DIR/tally-migrate" \
				--dir "$TALLY_SQL_DIR" 2>"$out" && false
			grep -q '"msg":"cannot connect to the database"' "$out"
			no_piece_in "$out" "$pw"
			n=$((n + 1))
		done
		DATABASE_URL=postgresql://tally@localhost:1/tally PGPASSWORD=$pw \
			stack_as_user "$TALLY_BIN_DIR/tally-migrate" --dir "$TALLY_SQL_DIR" \
			2>"$out" && false
		no_piece_in "$out" "$pw"
		n=$((n + 1))
	done
	[ "$n" -eq $((${#pws[@]} * 5)) ]
}

@test "./dev up prints the database's host and name, not its password" {
	local pg_socket hba dir port secret="Dev-S3cretPw-$RANDOM"
	pg_socket=$(stack_pg_socket)
	hba=$(stack_pg_data)/pg_hba.conf
	psql_tally "CREATE ROLE tally_dev LOGIN PASSWORD '$secret';
		GRANT ALL ON SCHEMA public TO tally_dev;
		GRANT ALL ON ALL TABLES IN SCHEMA public TO tally_dev" >/dev/null
	stack_as_pg_user sed -i "1i local all tally_dev scram-sha-256" "$hba"
	psql_tally "SELECT pg_reload_conf()" >/dev/null
	dir=$(mktemp -d /tmp/tally-test-dev.XXXXXX)
	chmod 0755 "$dir"
	port=$(free_port)
	DATABASE_URL="postgresql://tally_dev:$secret@/tally?host=$pg_socket" \
		TALLY_VAR_DIR="$dir/var" TALLY_PORT=$port TALLY_INTERNAL_PORT="$(free_port)" \
		TALLY_BUILDDIR="$TALLY_BUILDDIR" \
		STACK_LOG_DIR='' "$TALLY_SRCDIR/dev" up >"$dir/dev.out" 2>&1 </dev/null 3>&- &
	echo $! >"$dir/dev.pid"
	# the database's line comes after "tally is serving": wait for it
	wait_until 120 grep -q '^dev: database:' "$dir/dev.out"
	kill -TERM "$(<"$dir/dev.pid")"
	wait_until 30 none_alive "$(<"$dir/dev.pid")"
	grep "^dev: database:" "$dir/dev.out" | sed "s/^/# /" >&3
	grep -q '^dev: database: host (local socket), database tally ' "$dir/dev.out"
	assert_no_lines "the password found in ./dev's output" "$(grep -F -- "$secret" "$dir/dev.out")"
	stack_as_pg_user sed -i '/tally_dev/d' "$hba"
	psql_tally "SELECT pg_reload_conf()" >/dev/null
	rm -rf "$dir"
}
