# shellcheck shell=bash
# tally - what the tool scripts share (tests/tools/sanitize,
# tests/tools/valgrind, tests/fuzz/run, tests/lint/run): a build tree of
# their own, results counted as "ok"/"not ok" lines and one last line
# "N passed, N failed".

shopt -s inherit_errexit

TOOLS_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS_PASSED=0
TOOLS_FAILED=0
TOOLS_FINISHED=0
TOOLS_NAME=tools

# tools_init NAME: names the script in its messages. A script that stops
# early (an error, a signal) still ends with the summary line, counting
# the stop as one failure.
tools_init() {
	TOOLS_NAME=$1
	trap tools_on_exit EXIT
}

tools_on_exit() {
	local rc=$?
	if ((TOOLS_FINISHED == 0)); then
		tools_log "stopped before the end (status $rc)"
		echo "$TOOLS_PASSED passed, $((TOOLS_FAILED + 1)) failed"
		((rc != 0)) || rc=1
	fi
	exit "$rc"
}

tools_log() {
	printf '%s: %s\n' "$TOOLS_NAME" "$*" >&2
}

tools_die() {
	tools_log "$*"
	exit 1
}

tools_pass() {
	TOOLS_PASSED=$((TOOLS_PASSED + 1))
	printf 'ok - %s\n' "$*"
}

tools_fail() {
	TOOLS_FAILED=$((TOOLS_FAILED + 1))
	printf 'not ok - %s\n' "$*"
}

# Prints the summary line; fails when anything failed.
tools_finish() {
	TOOLS_FINISHED=1
	echo "$TOOLS_PASSED passed, $TOOLS_FAILED failed"
	((TOOLS_FAILED == 0))
}

# Runs a check: "ok" when the command succeeds, else "not ok".
tools_check() {
	local what=$1
	shift
	if "$@"; then
		tools_pass "$what"
	else
		tools_fail "$what"
	fi
}

# Makes a work directory (prints it). Other users must be able to read
# it: the integration stacks run as the system user "tally".
tools_workdir() {
	local dir
	dir=$(mktemp -d "${TMPDIR:-/tmp}/tally-$TOOLS_NAME.XXXXXX")
	chmod 0755 "$dir"
	echo "$dir"
}

# Copies the checkout's own files (tracked, or new and not ignored) to
# $1, without anything a build left in it. The npm packages installed in
# the checkout (ignored, as every install is) are linked, not copied: the
# browser test needs tests/e2e/node_modules in the tree it runs from.
tools_copy_sources() {
	local dest=$1 f
	git -C "$TOOLS_SRCDIR" rev-parse --git-dir >/dev/null 2>&1 ||
		tools_die "$TOOLS_SRCDIR is configured in place and is no git checkout: run 'make distclean' there first"
	mkdir -p "$dest"
	git -C "$TOOLS_SRCDIR" ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[[ -e $TOOLS_SRCDIR/$f ]] && printf '%s\0' "$f"
		done | tar -C "$TOOLS_SRCDIR" --null -T - -cf - | tar -C "$dest" -xf -
	for f in tests/e2e/node_modules helm/node_modules; do
		[[ -d $TOOLS_SRCDIR/$f ]] && ln -sfn "$TOOLS_SRCDIR/$f" "$dest/$f"
	done
	return 0
}

# Prints a source tree that can be configured out of tree: the checkout
# itself, unless it is configured in place (as "./dev test" leaves it) or
# has no configure script; then a fresh copy under $1.
tools_source_tree() {
	local work=$1
	if [[ -x $TOOLS_SRCDIR/configure && ! -f $TOOLS_SRCDIR/config.status ]]; then
		echo "$TOOLS_SRCDIR"
		return
	fi
	tools_copy_sources "$work/source"
	(cd "$work/source" && autoreconf -fi >/dev/null 2>&1) ||
		tools_die "autoreconf failed in $work/source"
	echo "$work/source"
}

# tools_configure WORK [configure arguments]: configures a build tree in
# WORK/build and prints its path.
tools_configure() {
	local work=$1 src
	shift
	src=$(tools_source_tree "$work")
	mkdir -p "$work/build"
	(cd "$work/build" && "$src/configure" -q "$@") >&2 ||
		tools_die "configure $* failed"
	echo "$work/build"
}
