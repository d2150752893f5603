#!/usr/bin/env bats
# tally - a responder that stops serving is replaced: each responder's
# worker is stopped in turn (kill -STOP). Its parent process notices
# that the worker's heartbeat has stopped (TALLY_WATCHDOG_TIMEOUT, 8 s
# by default), kills it and starts another; meanwhile the responder's
# alive file, which the chart's probes read, goes stale, so the pod is
# not Ready. The request sent to the stopped worker is served by the
# new one.

load ../lib/helpers

# tally-admin answers only with a token (without one, every path is 404)
TOKEN=watchdog-token-0123456789abcdef
ADMIN_AUTH=(-H "Authorization: Bearer $TOKEN")

setup_file() {
	admin_token_file "$TOKEN"
	tally_stack_start
	export TALLY_RUN_DIR="$STACK_DIR/run"
}

teardown_file() {
	tally_stack_stop
	rm -rf "${TOKEN_DIR:?}"
}

# path_of NAME: a path the responder answers.
path_of() {
	case $1 in
	healthz) echo /livez ;;
	admin) echo /admin/default ;;
	*) echo "/$1" ;;
	esac
}

# url_of NAME: where its path is served (/metrics: the internal listener).
url_of() {
	if [[ $1 == metrics ]]; then echo "$TALLY_INTERNAL_URL"; else echo "$TALLY_URL"; fi
}

# log_has NAME TEXT: the responder's log names TEXT.
log_has() {
	grep -qF "$2" "$STACK_LOG_DIR/$1.log"
}

# detected NAME PID: within 10 s of its stop, the parent's log names the
# stopped worker PID, and before that the alive file went stale (so the
# probes said not Ready). Prints what it saw.
detected() {
	local name=$1 pid=$2 stale=0 deadline
	deadline=$(($(lib_centiseconds) + 1000))
	while (($(lib_centiseconds) < deadline)); do
		responder_alive "$name" 3 || stale=1
		if log_has "$name" '"pid":"'"$pid"'","msg":"worker process stopped serving'; then
			echo "$name: stale $stale, detected"
			((stale == 1))
			return
		fi
		sleep 0.1
	done
	echo "$name: stale $stale, not detected within 10 s"
	return 1
}

# replaced NAME PID: the responder has a worker again, not PID.
replaced() {
	local now
	now=$(responder_workers "$1")
	[[ -n $now && $now != "$2" ]]
}

@test "every responder serves and its alive file is fresh" {
	local name
	for name in "${TALLY_RESPONDERS[@]}"; do
		assert wait_until 5 responder_alive "$name" 3
		TALLY_URL=$(url_of "$name") assert answers_200 "$([[ $name == write ]] && echo POST || echo GET)" "$(path_of "$name")" \
			"${ADMIN_AUTH[@]}"
	done
}

@test "a stopped worker of each responder is detected within 10 s and replaced within 30 s" {
	local name old method path req how
	for name in "${TALLY_RESPONDERS[@]}"; do
		old=$(responder_workers "$name")
		assert [ -n "$old" ]
		method=GET path=$(path_of "$name")
		[[ $name == write ]] && method=POST
		how=(-X "$method" -d '')
		# a GET of /stream never ends: its HEAD does
		[[ $name == stream ]] && how=(--head)
		[[ $name == admin ]] && how=(-X GET "${ADMIN_AUTH[@]}")
		kill -STOP "$old"
		# a request sent to the stopped responder waits in its backlog
		curl -s -o "$BATS_TEST_TMPDIR/$name.out" -w '%{http_code}' --max-time 40 \
			"${how[@]}" "$(url_of "$name")$path" >"$BATS_TEST_TMPDIR/$name.status" &
		req=$!
		detected "$name" "$old"
		# replaced: another worker, serving; the alive file fresh again
		assert wait_until 20 replaced "$name" "$old"
		assert wait_until 10 responder_alive "$name" 3
		wait "$req"
		assert_equal "$(<"$BATS_TEST_TMPDIR/$name.status")" 200
		TALLY_URL=$(url_of "$name") assert answers_200 "$method" "$path" "${ADMIN_AUTH[@]}"
		pid_gone "$old"
	done
}
