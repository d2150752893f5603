#!/usr/bin/env bats
# tally - the page in a real browser: Debian's chromium, headless,
# driven by playwright-core (tests/e2e/browser.js) against the real stack.
# setup_file runs every scenario in one browser (a launch is the slow
# part); each test below reports one scenario. Without the browser or
# the npm package the tests skip (fail, under ./dev test: helpers.bash's
# prerequisites): `apt-get install chromium` and `npm ci --prefix
# tests/e2e` install them (./dev test does both).

load ../lib/helpers

E2E_DIR="$TALLY_SRCDIR/tests/e2e"

require_browser_tools() {
	require_tool node "apt-get install nodejs" &&
		require_tool "${CHROMIUM:-/usr/bin/chromium}" "apt-get install chromium" || return 1
	[[ -f $E2E_DIR/node_modules/playwright-core/package.json ]] ||
		prerequisite_missing "playwright-core is missing: npm ci --prefix tests/e2e"
}

# Two other origins for the cross-origin scenario: pages of
# http.server on two more loopback ports, the first listed in
# TALLY_CORS_WRITE_ORIGINS, the second not. Stopped by PID.
origins_start() {
	local site="$BATS_FILE_TMPDIR/site" which port
	mkdir -p "$site"
	printf '<!doctype html><title>another origin</title><p>another origin\n' >"$site/index.html"
	for which in ALLOWED OTHER; do
		port=$(free_port)
		python3 -m http.server --bind 127.0.0.1 --directory "$site" "$port" \
			>"$BATS_FILE_TMPDIR/origin-$which.log" 2>&1 &
		echo "$!" >>"$BATS_FILE_TMPDIR/origin-pids"
		export "TALLY_ORIGIN_$which=http://127.0.0.1:$port"
		wait_until 15 http_answers "http://127.0.0.1:$port/" ||
			fail "the static server on port $port does not answer"
	done
	export TALLY_CORS_WRITE_ORIGINS=$TALLY_ORIGIN_ALLOWED
}

origins_stop() {
	local pid
	[[ -f $BATS_FILE_TMPDIR/origin-pids ]] || return 0
	while read -r pid; do
		kill "$pid" 2>/dev/null || true
		wait_until 10 pid_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
	done <"$BATS_FILE_TMPDIR/origin-pids"
	rm -f "$BATS_FILE_TMPDIR/origin-pids"
}

teardown_file() {
	origins_stop
	other_stack_stop
	tally_stack_stop
}

setup_file() {
	require_browser_tools || return 0
	origins_start
	tally_stack_start
	# a second pod on the same database, for the live counter
	other_stack_start
	export TALLY_OTHER_URL=$OTHER_URL
	export TALLY_SRCDIR
	# kept after the run: tests/e2e/screenshots/ and tests/e2e/browser.out
	export TALLY_SCREENSHOT_DIR="$TALLY_BUILDDIR/tests/e2e/screenshots"
	export TALLY_E2E_RESULTS="$BATS_FILE_TMPDIR/results"
	# browser.js stops and starts the database through these.
	# shellcheck disable=SC2016 # expanded by the shell browser.js runs
	export TALLY_DB_STOP='source "$TALLY_SRCDIR/scripts/stack.sh" && stack_user_setup && stack_pg_stop fast' \
		TALLY_DB_START='source "$TALLY_SRCDIR/scripts/stack.sh" && stack_user_setup && stack_pg_start' \
		TALLY_DB_SET_BIG='source "$TALLY_SRCDIR/scripts/stack.sh" && stack_user_setup && stack_as_user psql -X -q -d "$DATABASE_URL" -c "UPDATE tally_counter SET value = 9007199254740993 WHERE id = 1"'
	# Each scenario bounds itself; this bounds the browser too.
	mkdir -p "$TALLY_BUILDDIR/tests/e2e"
	timeout --kill-after=10 240 node "$E2E_DIR/browser.js" \
		>"$TALLY_BUILDDIR/tests/e2e/browser.out" 2>&1 || true
}

# scenario NAME: passes if browser.js reported NAME ok; otherwise shows
# why, with the whole run's output.
scenario() {
	local result="$TALLY_E2E_RESULTS/$1.result"
	[[ -f $result ]] && [[ $(head -1 "$result") == ok ]] && return 0
	cat "$TALLY_BUILDDIR/tests/e2e/browser.out" >&2
	fail "browser scenario $1 did not pass"
}

@test "page: the server's time ticks, the visitor's address, the counter of /read" {
	scenario facts
}

@test "page: click, Enter and Space each count once and show what /write answered" {
	scenario increment
}

@test "page: five quick clicks count five times, none lost" {
	scenario quick-clicks
}

@test "page: a click whose answer is lost is retried with the same key and counts once" {
	scenario lost-answer
}

@test "page: with the database stopped a plain message; recovers by itself" {
	scenario database-outage
}

@test "page: screenshots at 375 and 1280 px, fits a phone, explains itself without JavaScript" {
	scenario screenshots
	local f
	for f in page-375.png page-1280.png page-375-dark.png page-no-javascript.png; do
		[[ -s $TALLY_SCREENSHOT_DIR/$f ]] || fail "no screenshot $f"
	done
}

@test "page: the counter stays on one line at 375 and 1280 px up to 2^53, and exact beyond it" {
	scenario big-number
	[[ $(counter_value) == 9007199254740994 ]]
	local f
	for f in page-375-big.png page-1280-big.png; do
		[[ -s $TALLY_SCREENSHOT_DIR/$f ]] || fail "no screenshot $f"
	done
}

@test "page: live across stacks: a click on one stack shows on the other's page within 1 s, by its stream, polling forbidden" {
	scenario live-across-stacks
}

@test "another origin's page: reads and, when listed, increments; an unlisted one cannot write" {
	scenario cross-origin
}

@test "badges: another origin's page shows them, a counter that does not exist too; widths fit the font" {
	scenario badges
	[[ -s $TALLY_SCREENSHOT_DIR/badge.png ]] || fail "no screenshot badge.png"
}

@test "page: ?counter=NAME shows and counts that counter; a name of markup is refused as text" {
	scenario named-counter
}
