# shellcheck shell=bash
# tally - what the tool scripts share (tests/tools/sanitize,
# tests/tools/valgrind, tests/fuzz/run, tests/lint/run): a build tree of
# their own. Their results go through scripts/lib.sh's reporter
# (report_init NAME, report_check, report_finish, ...): "ok"/"not ok"
# lines and one last line "N passed, N failed".

shopt -s inherit_errexit

TOOLS_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib.sh
source "$TOOLS_SRCDIR/scripts/lib.sh"

# Makes a work directory (prints it). Other users must be able to read
# it: the integration stacks run as the system user "tally".
tools_workdir() {
	local dir
	dir=$(mktemp -d "${TMPDIR:-/tmp}/tally-$LIB_NAME.XXXXXX")
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
		die "$TOOLS_SRCDIR is configured in place and is no git checkout: run 'make distclean' there first"
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
		die "autoreconf failed in $work/source"
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
		die "configure $* failed"
	echo "$work/build"
}

# tools_make BUILD LOG WHAT [TARGET...]: make in BUILD, its output in LOG;
# when it fails, shows the end of LOG and stops with "WHAT failed".
tools_make() {
	local build=$1 log=$2 what=$3
	shift 3
	make -C "$build" -j"$(nproc)" "$@" >"$log" 2>&1 && return 0
	tail -n 40 "$log" >&2
	die "$what failed"
}

# tools_finish WORK GIVEN: ends the checks (report_finish, which fails
# when one failed). WORK is removed when every check passed and GIVEN
# (the script's *_WORK_DIR setting) is empty; else it is kept, and said.
tools_finish() {
	local work=$1 given=$2
	if ((REPORT_FAILED == 0)) && [[ -z $given ]]; then
		rm -rf "$work"
	else
		say "work directory kept: $work"
	fi
	report_finish
}
