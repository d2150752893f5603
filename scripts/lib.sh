# shellcheck shell=bash
# tally - lib.sh: the machinery every script and test shares, in one
# place: the list of responders and the settings' bounds, messages,
# installing missing Debian packages, PostgreSQL's programs on PATH,
# bounded polling, and one pass/fail reporter. Sourced by ./dev, scripts/stack.sh, container/*,
# helm/check, tests/bench/run, tests/rehearsal/run, tests/tools/* and the
# bats helpers. Defines functions and variables only; running it does
# nothing, and sourcing it twice is harmless.

[[ -z ${TALLY_LIB_LOADED:-} ]] || return 0
TALLY_LIB_LOADED=1

# What src/responders.def and src/settings.def declare (scripts/generate
# writes it): TALLY_RESPONDERS, the responders, one program tally-NAME
# each; TALLY_DB_RESPONDERS, those that use the database; and
# TALLY_SETTING_BOUNDS, "default least most" of each whole-number setting.
# shellcheck source=declared.sh
source "$(dirname "${BASH_SOURCE[0]}")/declared.sh"

# --- messages ----------------------------------------------------------------

# The name in front of every message: set it once, e.g. LIB_NAME=dev.
LIB_NAME=${LIB_NAME:-tally}

say() { printf '%s: %s\n' "$LIB_NAME" "$*" >&2; }
die() {
	say "$*"
	exit 1
}

# --- the machine -------------------------------------------------------------

# Runs a command as root: directly, or through sudo.
as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null; then
		sudo "$@"
	else
		die "need root to run: $* (install sudo or run as root)"
	fi
}

# Is the Debian package installed?
pkg_installed() {
	dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}

# install_missing PKG...: installs the packages of the list that are not
# installed yet. Package lists are fetched once per machine (and again
# when apt has none); TALLY_APT_QUIET=1 hides apt's own output.
install_missing() {
	local pkg missing=()
	for pkg in "$@"; do
		pkg_installed "$pkg" || missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	say "installing ${missing[*]}"
	if [[ ! -f /var/lib/apt/periodic/tally-updated ]] ||
		[[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null) ]]; then
		as_root apt-get update -q >&2 || die "apt-get update failed"
		as_root mkdir -p /var/lib/apt/periodic
		as_root touch /var/lib/apt/periodic/tally-updated
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" >&2 ||
		die "could not install ${missing[*]}"
}

# install_commands COMMAND:PACKAGE...: installs the package of each command
# that is not on PATH, for tools a machine may have from elsewhere (node
# and npm from NodeSource, say, where Debian's npm would conflict).
install_commands() {
	local pair pkgs=()
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null || pkgs+=("${pair#*:}")
	done
	((${#pkgs[@]} == 0)) || install_missing "${pkgs[@]}"
}

# Puts PostgreSQL's server programs (initdb, pg_ctl, postgres: outside
# PATH on Debian) and /usr/sbin on PATH; stops with a clear message when
# PostgreSQL is not installed.
pg_path() {
	local bindir
	if ! command -v initdb >/dev/null; then
		bindir=$(find /usr/lib/postgresql -maxdepth 3 -name initdb -printf '%h\n' 2>/dev/null |
			sort -V | tail -1)
		[[ -n $bindir ]] || die "PostgreSQL's initdb not found; install the package postgresql"
		PATH="$bindir:$PATH"
	fi
	[[ :$PATH: == *:/usr/sbin:* ]] || PATH="$PATH:/usr/sbin:/sbin"
	export PATH
}

# Prints a TCP port on 127.0.0.1 that is free now.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# --- connection limits -------------------------------------------------------

# The memory a connection may make lighttpd hold, and what lighttpd needs
# besides (docs/configuration.md, "Connection limits"): measured 99 KiB for a connection
# with 16 KB of headers and a 16 KiB partial body (the largest request
# lighttpd.conf lets through; 49 KiB with 7.6 KB of headers), and 3 MiB
# at rest, for each of the two lighttpd processes. Connections may use
# two thirds of the memory limit.
TALLY_CONN_BYTES=$((112 * 1024))
TALLY_BASE_BYTES=$((16 * 1024 * 1024))

# tally_conn_limits: the limits lighttpd and spawn-fcgi are started with,
# all derived from TALLY_MAX_CONNECTIONS (docs/configuration.md,
# "Connection limits"),
# the most client connections lighttpd holds at once; more wait in the
# kernel's listen queue. Unset, it is derived from TALLY_MEMORY_LIMIT
# (bytes: the web container's memory limit, which the chart passes),
# (limit x 2/3 - TALLY_BASE_BYTES) / TALLY_CONN_BYTES, at most what the
# open-file limit allows; with neither, its default (the bounds and
# defaults: src/settings.def). Each connection that reaches a
# responder holds two descriptors (client, responder), and lighttpd stops
# accepting at 90% of server.max-fds, so TALLY_MAX_FDS is 2/0.9 of the
# connections plus 64 for its listeners and files. TALLY_FCGI_BACKLOG, the
# listen backlog of each responder's socket, holds every connection
# lighttpd can open to it, so a burst never finds a full backlog (lighttpd
# then fails the request). Returns 1 on a bad value or a limit above what
# this process may open.
tally_conn_limits() {
	local n=${TALLY_MAX_CONNECTIONS:-} hard mem=${TALLY_MEMORY_LIMIT:-}
	hard=$(ulimit -Hn)
	if [[ -z $n && -n $mem ]]; then
		if [[ ! $mem =~ ^[0-9]+$ ]]; then
			say "TALLY_MEMORY_LIMIT must be a number of bytes, not \"$mem\""
			return 1
		fi
		n=$(((10#$mem * 2 / 3 - TALLY_BASE_BYTES) / TALLY_CONN_BYTES))
		if ((n < 16)); then
			say "TALLY_MEMORY_LIMIT=$mem leaves room for $n connections; give lighttpd at least $(((16 * TALLY_CONN_BYTES + TALLY_BASE_BYTES) * 3 / 2)) bytes"
			return 1
		fi
		# at most what the open files allow (2n/0.9 + 64 of them)
		if [[ $hard != unlimited ]] && ((n * 20 / 9 + 64 > hard)); then
			n=$(((hard - 64) * 9 / 20))
		fi
	fi
	local def min max
	read -r def min max <<<"${TALLY_SETTING_BOUNDS[TALLY_MAX_CONNECTIONS]}"
	n=${n:-$def}
	if [[ ! $n =~ ^[0-9]+$ ]] || ((n < min || n > max)); then
		say "TALLY_MAX_CONNECTIONS must be a whole number from $min to $max, not \"$n\""
		return 1
	fi
	TALLY_MAX_CONNECTIONS=$((10#$n))
	TALLY_MAX_FDS=$((TALLY_MAX_CONNECTIONS * 20 / 9 + 64))
	TALLY_FCGI_BACKLOG=$TALLY_MAX_CONNECTIONS
	if [[ $hard != unlimited ]] && ((TALLY_MAX_FDS > hard)); then
		say "TALLY_MAX_CONNECTIONS=$TALLY_MAX_CONNECTIONS needs $TALLY_MAX_FDS open files; the limit here is $hard"
		return 1
	fi
	# The kernel caps every backlog at net.core.somaxconn.
	if [[ -r /proc/sys/net/core/somaxconn ]] &&
		(($(</proc/sys/net/core/somaxconn) < TALLY_FCGI_BACKLOG)); then
		say "warning: net.core.somaxconn ($(</proc/sys/net/core/somaxconn)) is below TALLY_MAX_CONNECTIONS ($TALLY_MAX_CONNECTIONS): a burst may find a responder's backlog full"
	fi
	# lighttpd's times, checked and given their defaults
	# (src/settings.def), in seconds: how long an idle or slow client
	# may hold a connection (waiting for (the rest of) a request, for it
	# to read the answer, between requests on a kept connection), and
	# the Retry-After of lighttpd's own 503s (etc/cors.lua), the
	# responders' setting.
	local name value
	for name in TALLY_READ_IDLE TALLY_WRITE_IDLE TALLY_KEEP_ALIVE_IDLE TALLY_RETRY_AFTER; do
		read -r def min max <<<"${TALLY_SETTING_BOUNDS[$name]}"
		value=${!name:-$def}
		if [[ ! $value =~ ^[0-9]+$ ]] || ((10#$value < min || 10#$value > max)); then
			say "$name must be a whole number of seconds from $min to $max, not \"$value\""
			return 1
		fi
		printf -v "$name" '%d' "$((10#$value))"
		export "${name?}"
	done
	export TALLY_MAX_CONNECTIONS TALLY_MAX_FDS TALLY_FCGI_BACKLOG
}

# tally_cors_origins: checks TALLY_CORS_WRITE_ORIGINS, the origins whose
# pages may write (etc/cors.lua reads it from lighttpd's environment):
# "*" (any origin), or origins as browsers send them in Origin, comma-
# separated: scheme http or https, a lower-case host name, IPv4 or
# [IPv6] address, an optional port, no path ("https://example.org,
# http://127.0.0.1:8000"). Unset or empty: none (cross-origin reads stay
# open to every origin). Exports it, spaces removed; returns 1 with a
# message naming the first bad entry.
tally_cors_origins() {
	local value=${TALLY_CORS_WRITE_ORIGINS:-} origin origins=()
	value=${value//[[:space:]]/}
	if [[ $value != "*" && -n $value ]]; then
		IFS=, read -r -a origins <<<"$value,"
		for origin in "${origins[@]}"; do
			if [[ ! $origin =~ ^https?://([a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:.]+\])(:([1-9][0-9]{0,4}))?$ ]] ||
				((10#${BASH_REMATCH[4]:-1} > 65535)); then
				say "TALLY_CORS_WRITE_ORIGINS must be \"*\" or origins separated by commas, each" \
					"scheme://host[:port] as a browser sends it (http or https, a lower-case host, no path)," \
					"not \"${origin}\""
				return 1
			fi
		done
	fi
	export TALLY_CORS_WRITE_ORIGINS=$value
}

# --- bounded waits -----------------------------------------------------------

# wait_until SECONDS COMMAND...: runs the command every 0.1 s until it
# succeeds (returns 0) or SECONDS (whole seconds, measured on the
# monotonic clock) have passed (returns 1); the command runs at least
# once, the last time at the deadline or just after it. Its output is
# left alone: redirect it at the call when it is noise.
wait_until() {
	local deadline
	deadline=$(($(lib_centiseconds) + $1 * 100))
	shift
	until "$@"; do
		(($(lib_centiseconds) < deadline)) || return 1
		sleep 0.1
	done
}

# Prints the time since boot in hundredths of a second (/proc/uptime:
# monotonic, unlike the wall clock).
lib_centiseconds() {
	local up _
	read -r up _ </proc/uptime
	echo $((10#${up/./}))
}

# wait_child PID: waits for a child of this shell until it is gone (a
# trapped signal ends "wait" early); returns its exit status.
wait_child() {
	local pid=$1 rc=0
	while :; do
		wait "$pid" && rc=0 || rc=$?
		kill -0 "$pid" 2>/dev/null || break
	done
	return "$rc"
}

# Is the process gone?
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# tally_internal_port: the internal listener's port (lighttpd-internal.conf:
# /livez, /healthz, /metrics), TALLY_INTERNAL_PORT or TALLY_PORT + 1.
tally_internal_port() {
	echo "${TALLY_INTERNAL_PORT:-$((${TALLY_PORT:-8080} + 1))}"
}

# responder_alive NAME SECONDS: is the responder tally-NAME serving? Its
# parent process touches $TALLY_RUN_DIR/tally-NAME.alive every second
# while each of its workers beats (src/responder.c, the watchdog); a file
# older than SECONDS means a worker has stopped serving, or the parent
# itself has. The chart's probes of the responder containers run this.
responder_alive() {
	local file=${TALLY_RUN_DIR:-/run/tally}/tally-$1.alive mtime
	mtime=$(stat -c %Y "$file" 2>/dev/null) || return 1
	(($(date +%s) - mtime <= $2))
}

# Does the URL answer at all (any HTTP status)?
http_answers() { curl -s -o /dev/null --max-time 1 "$1"; }

# --- pass/fail reporting -----------------------------------------------------
# One format for every step of ./dev test: "ok - WHAT" and "not ok - WHAT"
# lines, and one last line "N passed, N failed" that ./dev test sums.

REPORT_PASSED=0
REPORT_FAILED=0
REPORT_FINISHED=0
REPORT_CLEANUP=

# report_init NAME [CLEANUP]: names the script in its messages; CLEANUP,
# a function, runs at exit. A script that stops early (an error, a
# signal) still ends with the summary line, the stop counted as a failure.
report_init() {
	LIB_NAME=$1
	REPORT_CLEANUP=${2:-}
	trap report_on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

report_on_exit() {
	local rc=$?
	[[ -z $REPORT_CLEANUP ]] || "$REPORT_CLEANUP" || true
	if ((REPORT_FINISHED == 0)); then
		say "stopped before the end (status $rc)"
		REPORT_FAILED=$((REPORT_FAILED + 1))
		((rc != 0)) || rc=1
	fi
	echo "$REPORT_PASSED passed, $REPORT_FAILED failed"
	((REPORT_FAILED == 0)) || ((rc != 0)) || rc=1
	exit "$rc"
}

report_pass() {
	REPORT_PASSED=$((REPORT_PASSED + 1))
	printf 'ok - %s\n' "$*"
}

report_fail() {
	REPORT_FAILED=$((REPORT_FAILED + 1))
	printf 'not ok - %s\n' "$*"
}

# report_gate WHAT COMMAND...: one ok/not ok line for the command; returns
# its success, for steps the next ones depend on.
report_gate() {
	local what=$1
	shift
	if "$@"; then
		report_pass "$what"
	else
		report_fail "$what"
		return 1
	fi
}

# report_check WHAT COMMAND...: the same, and goes on either way.
report_check() {
	report_gate "$@" || true
}

# Stops the script here: a step the rest depends on failed.
report_abort() {
	say "aborting: $*"
	exit 1
}

# Ends the script's checks: the summary line is printed at exit; returns
# non-zero when anything failed.
report_finish() {
	REPORT_FINISHED=1
	((REPORT_FAILED == 0))
}
