#!/usr/bin/env bats
# tally - the manual pages (man/) describe the programs as they are: every
# program has a page whose NAME lists it, and the options that page's
# SYNOPSIS shows for it are the options its --help shows. The pages' form
# is mandoc's to check (tests/lint/run).

bats_load_library bats-support
bats_load_library bats-assert

setup_file() {
	: "${TALLY_SRCDIR:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}"
	: "${TALLY_BUILDDIR:=$TALLY_SRCDIR}"
	export TALLY_SRCDIR TALLY_BUILDDIR
}

setup() {
	# shellcheck source=../../scripts/lib.sh
	source "$TALLY_SRCDIR/scripts/lib.sh"
	PROGRAMS=(tally-migrate)
	for name in "${TALLY_RESPONDERS[@]}"; do
		PROGRAMS+=("tally-$name")
	done
}

# The .Nm names of a section of a page; ".Nm" alone is the page's first
# name (the first .Nm of NAME).
page_names() {
	awk -v want="$2" '
		/^\.Sh / { sec = $2; next }
		sec == "NAME" && /^\.Nm / && first == "" { first = $2 }
		sec == want && /^\.Nm/ { print (NF > 1 ? $2 : first) }' "$1"
}

# The page whose NAME lists the program $1.
page_of() {
	local page
	for page in "$TALLY_SRCDIR"/man/*.[1-9]; do
		if page_names "$page" NAME | grep -qx -- "$1"; then
			echo "$page"
			return 0
		fi
	done
	return 1
}

# The options the SYNOPSIS of page $1 shows for program $2 (Fl -help is
# --help), one a line, sorted.
synopsis_options() {
	awk -v prog="$2" '
		/^\.Sh / { sec = $2; next }
		sec == "NAME" && /^\.Nm / && first == "" { first = $2 }
		sec != "SYNOPSIS" { next }
		/^\.Nm/ { cur = NF > 1 ? $2 : first; next }
		cur == prog {
			sub(/^\./, "", $1)
			for (i = 1; i < NF; i++)
				if ($i == "Fl")
					print "-" $(i + 1)
		}' "$1" | sort -u
}

# The options the usage line of "$1 --help" shows, one a line, sorted.
help_options() {
	"$TALLY_BUILDDIR/src/$1" --help | grep -i -m 1 '^usage:' |
		tr '[]|' '   ' | tr -s ' ' '\n' | grep -- '^-' | sort -u
}

@test "every program has a manual page whose NAME lists it" {
	local prog
	for prog in "${PROGRAMS[@]}"; do
		page_of "$prog" >/dev/null ||
			fail "no page in man/ lists $prog in its NAME section"
	done
}

@test "each page's SYNOPSIS shows the options of its program's --help" {
	local prog page want have
	for prog in "${PROGRAMS[@]}"; do
		page=$(page_of "$prog")
		have=$(synopsis_options "$page" "$prog" | paste -sd ' ' -)
		want=$(help_options "$prog" | paste -sd ' ' -)
		[[ -n $want ]] || fail "$prog --help shows no usage line with options"
		[[ $have == "$want" ]] ||
			fail "${page##*/} shows $prog with [$have], its --help [$want]"
	done
}
