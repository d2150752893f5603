# shellcheck shell=bash
# tally - helpers for the fault, failover, hostile-input and security tests
# (load after helpers): background load whose every outcome is kept
# (tests/lib/load.py), checks over those outcomes, and the responders'
# process tree as scripts/stack.sh builds it:
#   run/<name>.pid = the stack's keeper loop -> the responder's parent
#   process -> its worker processes

TALLY_TEST_LIB="$TALLY_SRCDIR/tests/lib"

# now: the time as Unix seconds with a fraction, as load.py writes it.
now() {
	date +%s.%N
}

# seconds_since T: how many seconds (with a fraction) have passed since T.
seconds_since() {
	awk -v t="$1" -v n="$(now)" 'BEGIN { printf "%.3f\n", n - t }'
}

# --- load --------------------------------------------------------------------

load_out() { echo "$BATS_FILE_TMPDIR/load-$1.out"; }

# load_start NAME PATH METHOD CLIENTS: concurrent requests in the
# background until load_stop NAME (at most 120 s); outcomes in load_out.
load_start() {
	local name=$1 path=$2 method=$3 clients=$4
	rm -f "$BATS_FILE_TMPDIR/load-$name.stop"
	python3 "$TALLY_TEST_LIB/load.py" "$TALLY_URL$path" --method "$method" \
		--clients "$clients" --duration 120 --timeout 15 \
		--stop-file "$BATS_FILE_TMPDIR/load-$name.stop" \
		--out "$(load_out "$name")" >"$BATS_FILE_TMPDIR/load-$name.summary" \
		2>&1 3>&- &
	echo $! >"$BATS_FILE_TMPDIR/load-$name.pid"
	# started when the first outcome is written
	wait_until 10 test -s "$(load_out "$name")"
}

# load_stop NAME: ends a load and waits for its last requests.
load_stop() {
	local name=$1 pid
	touch "$BATS_FILE_TMPDIR/load-$name.stop"
	pid=$(<"$BATS_FILE_TMPDIR/load-$name.pid")
	wait "$pid"
	echo "# load $name: $(<"$BATS_FILE_TMPDIR/load-$name.summary")" >&3
}

# load_stop_all: asks every load of this file to end (for teardown: a
# failed test leaves its load running otherwise, up to 120 s).
load_stop_all() {
	local pidfile
	for pidfile in "$BATS_FILE_TMPDIR"/load-*.pid; do
		[[ -f $pidfile ]] && touch "${pidfile%.pid}.stop"
	done
	return 0
}

# --- outcomes (lines of load.py: start end status counter json) -------------

# outcomes_count FILE STATUS_REGEX [FROM [TO]]: how many outcomes whose
# status matches and that started in [FROM, TO).
outcomes_count() {
	awk -v re="^($2)\$" -v from="${3:-0}" -v to="${4:-1e12}" \
		'$3 ~ re && $1 >= from && $1 < to { n++ } END { print n + 0 }' "$1"
}

# outcomes_unexpected FILE STATUS_REGEX: prints the outcomes whose status
# does not match.
outcomes_unexpected() {
	awk -v re="^($2)\$" '$3 !~ re' "$1"
}

# outcomes_without_json FILE STATUS_REGEX: prints the answers with a
# matching status whose body was not a JSON object.
outcomes_without_json() {
	awk -v re="^($2)\$" '$3 ~ re && $5 != 1' "$1"
}

# outcomes_duplicates FILE: prints every counter value two 200s share.
outcomes_duplicates() {
	awk '$3 == 200 { print $4 }' "$1" | sort | uniq -d
}

# outcomes_slowest FILE: the longest request, in seconds.
outcomes_slowest() {
	awk '{ d = $2 - $1; if (d > m) m = d } END { printf "%.3f\n", m }' "$1"
}

# outcomes_values_outside FILE LOW HIGH: prints the 200 values not in
# (LOW, HIGH].
outcomes_values_outside() {
	awk -v lo="$2" -v hi="$3" '$3 == 200 && ($4 <= lo || $4 > hi)' "$1"
}

# assert_no_lines DESCRIPTION TEXT: fails, showing TEXT, unless it is empty.
assert_no_lines() {
	if [[ -n $2 ]]; then
		echo "# $1:" >&2
		head -20 <<<"$2" >&2
		return 1
	fi
}

# assert_exact_counts FILE INITIAL FINAL: the promises of POST /write over
# a load run: every 200 a distinct value in (INITIAL, FINAL], and the
# counter moved by at least the 200s and at most the attempts. Logs how
# many outcomes the clients could not know.
assert_exact_counts() {
	local file=$1 initial=$2 final=$3 ok attempts
	ok=$(outcomes_count "$file" 200)
	attempts=$(wc -l <"$file")
	assert_no_lines "counter values answered twice" "$(outcomes_duplicates "$file")"
	assert_no_lines "200 values outside ($initial, $final]" \
		"$(outcomes_values_outside "$file" "$initial" "$final")"
	echo "# attempts=$attempts acknowledged=$ok counted=$((final - initial))" \
		"unknown_to_client=$((attempts - ok))" \
		"counted_but_not_acknowledged=$((final - initial - ok))" >&3
	((final - initial >= ok)) || {
		echo "# acknowledged increments missing: $ok 200s, counter +$((final - initial))" >&2
		return 1
	}
	((final - initial <= attempts)) || {
		echo "# counter +$((final - initial)) from $attempts attempts" >&2
		return 1
	}
}

# --- responder processes -----------------------------------------------------

# responder_has_workers NAME PARENT COUNT: true when PARENT is NAME's
# parent process and has COUNT workers.
responder_has_workers() {
	[[ $(responder_parent "$1") == "$2" ]] &&
		(($(responder_workers "$1" | wc -l) == $3))
}

# none_alive PID...: true when none of the processes runs any more.
none_alive() {
	local pid
	for pid in "$@"; do
		pid_gone "$pid" || return 1
	done
}
