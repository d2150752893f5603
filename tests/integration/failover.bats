#!/usr/bin/env bats
# tally - failover: a primary and a streaming standby on loopback
# (unix sockets in private directories), tally given both hosts with
# target_session_attrs=read-write. Under write load the primary crashes
# (pg_ctl stop -m immediate) and the standby is promoted: writes resume on
# the new primary, no value is answered twice, no acknowledged increment
# is missing. The standby is synchronous (synchronous_standby_names = '*'),
# as a deployment that promises durable increments across a failover must
# be: with asynchronous replication a crash loses the commits the standby
# had not received, acknowledged or not. The tests stall the standby's WAL
# receiver (SIGSTOP) to make that window wide.

load ../lib/helpers
load ../lib/faults

node_dir() { echo "$FAILOVER_DIR/node$1"; }
node_port() { echo $((5431 + $1)); }

node_start() {
	local n=$1
	stack_as_user pg_ctl --pgdata="$(node_dir "$n")/data" --log="$(node_dir "$n")/postgres.log" \
		--wait --timeout=60 --silent \
		-o "-c listen_addresses='' -c unix_socket_directories='$(node_dir "$n")' -c port=$(node_port "$n")" \
		start 3>&-
}

node_stop() {
	stack_as_user pg_ctl --pgdata="$(node_dir "$1")/data" --mode="$2" --wait --timeout=60 \
		--silent stop || true
}

node_psql() {
	stack_as_user psql -X -q -tA -h "$(node_dir "$1")" -p "$(node_port "$1")" -d "${3:-tally}" -c "$2"
}

# standby_stall / standby_resume: stop and continue the standby's WAL
# receiver, so the primary's commits wait for it.
standby_stall() {
	local pid
	pid=$(node_psql 2 "SELECT pid FROM pg_stat_wal_receiver" postgres)
	[[ -n $pid ]]
	echo "$pid" >"$BATS_FILE_TMPDIR/walreceiver.pid"
	kill -STOP "$pid"
}

standby_resume() {
	if [[ -f $BATS_FILE_TMPDIR/walreceiver.pid ]]; then
		kill -CONT "$(<"$BATS_FILE_TMPDIR/walreceiver.pid")" 2>/dev/null || true
		rm -f "$BATS_FILE_TMPDIR/walreceiver.pid"
	fi
}

# tally_waits_for_standby: true when a tally-write backend waits for the
# synchronous standby.
tally_waits_for_standby() {
	[[ -n $(node_psql 1 "SELECT pid FROM pg_stat_activity WHERE application_name = 'tally-write' AND wait_event = 'SyncRep'" postgres) ]]
}

# replicating NODE STATE: true when the primary (node 1) lists the standby
# with that sync_state.
replicating() {
	[[ $(node_psql 1 "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'" postgres) == "$1" ]]
}

setup_file() {
	tally_stack_env
	stack_user_setup
	FAILOVER_DIR=$(mktemp -d /tmp/tally-failover.XXXXXX)
	export FAILOVER_DIR
	stack_mkdir 0755 "$FAILOVER_DIR"
	stack_mkdir 0700 "$(node_dir 1)"
	stack_mkdir 0700 "$(node_dir 2)"
	stack_as_user initdb --pgdata="$(node_dir 1)/data" --auth=trust --encoding=UTF8 \
		--locale=C.UTF-8 --no-instructions >/dev/null
	node_start 1
	stack_as_user createdb -h "$(node_dir 1)" -p "$(node_port 1)" tally
	stack_as_user pg_basebackup --pgdata="$(node_dir 2)/data" --write-recovery-conf \
		--wal-method=stream --checkpoint=fast -h "$(node_dir 1)" -p "$(node_port 1)"
	node_start 2
	wait_until 30 replicating async
	# only the primary waits for the standby: set after the copy
	node_psql 1 "ALTER SYSTEM SET synchronous_standby_names = '*'" postgres
	node_psql 1 "SELECT pg_reload_conf()" postgres >/dev/null
	wait_until 30 replicating sync
	tally_stack_start "host=$(node_dir 1),$(node_dir 2) port=$(node_port 1),$(node_port 2) dbname=tally target_session_attrs=read-write"
}

teardown() {
	standby_resume
	load_stop_all
}

teardown_file() {
	tally_stack_stop
	node_stop 1 immediate
	node_stop 2 immediate
	if [[ -z ${TALLY_KEEP_STACK:-} ]]; then
		rm -rf "$FAILOVER_DIR"
	fi
}

@test "the standby replicates synchronously and tally writes to the primary" {
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 200
	assert_equal "$(psql_tally 'SHOW port')" "$(node_port 1)"
	assert_equal "$(node_psql 2 'SELECT pg_is_in_recovery()')" t
	assert_equal "$(node_psql 2 'SELECT value FROM tally_counter WHERE id = 1')" \
		"$(jq -r .counter <<<"$HTTP_BODY")"
}

@test "a write whose wait for the synchronous standby is cancelled is not acknowledged" {
	local answer pid
	answer=$BATS_TEST_TMPDIR/answer
	standby_stall
	curl -s -o "$answer" -w '%{http_code}' --max-time 20 -d '' "$TALLY_URL/write" \
		>"$answer.status" 3>&- &
	pid=$!
	wait_until 10 tally_waits_for_standby
	# PostgreSQL ends such a wait with a WARNING and a successful
	# COMMIT that only the primary has; so does statement_timeout
	node_psql 1 "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'tally-write' AND wait_event = 'SyncRep'" postgres >/dev/null
	wait "$pid" || true
	standby_resume
	assert_equal "$(<"$answer.status")" 503
	assert_equal "$(<"$answer")" '{"error":"database unavailable"}'
	grep -q '"severity":"WARNING"' "$STACK_LOG_DIR/write.log"
	# the server's notice is logged as JSON like everything else
	jq -e . "$STACK_LOG_DIR/write.log" >/dev/null
}

@test "primary crashes under write load, standby promoted: writes resume, no duplicate, no acknowledged increment lost" {
	local before initial t_crash t_promoted file
	before=$(responder_pids)
	initial=$(counter_value)
	load_start failover /write POST 8
	sleep 2
	# the standby falls behind; commits made meanwhile wait for it
	standby_stall
	sleep 1
	t_crash=$(now)
	node_stop 1 immediate
	standby_resume
	sleep 1
	# no primary: refused fast, as JSON
	http POST /write -d ''
	assert_equal "$HTTP_STATUS" 503
	assert_equal "$HTTP_BODY" '{"error":"database unavailable"}'
	stack_as_user pg_ctl --pgdata="$(node_dir 2)/data" --wait --timeout=60 --silent promote
	t_promoted=$(now)
	wait_until 10 answers_200 POST /write
	echo "# writes served again $(seconds_since "$t_promoted") s after the promotion" >&3
	sleep 3
	load_stop failover

	# the new primary is the old standby, found by the same conninfo
	assert_equal "$(node_psql 2 'SELECT pg_is_in_recovery()')" f
	assert_equal "$(psql_tally 'SHOW port')" "$(node_port 2)"
	file=$(load_out failover)
	assert_no_lines "not 200 or 503" "$(outcomes_unexpected "$file" '200|503')"
	assert_no_lines "answers without a JSON body" "$(outcomes_without_json "$file" '200|503')"
	(($(outcomes_count "$file" 200 0 "$t_crash") > 0))
	(($(outcomes_count "$file" 200 "$t_promoted") > 0))
	assert_exact_counts "$file" "$initial" "$(counter_value)"
	# nothing was restarted: the responders reconnected by themselves
	assert_equal "$(responder_pids)" "$before"
}
