#!/usr/bin/env bats
# Documentation agrees with the tools: --help fits 80 columns, every option
# of --help is described in the man page, the man SYNOPSIS and the --help
# usage line name the same options and operands; `make install DESTDIR=`
# puts binaries, man pages, completions and examples where Debian looks;
# README's Requirements name every package ./bootstrap installs.

TOOLS="chpub chsub chcompact choffset chlag"

setup() {
	load "${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/helpers/common"
	common_setup
	MAN="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/../man"
}
teardown() { common_teardown; }

# help_options TOOL: the options of TOOL --help, one "SHORT LONG" pair per
# line ("-f follow", "- peek" when there is no short form).
help_options() {
	"$1" --help | sed -nE \
		-e 's/^ +-([^-]), --([a-z0-9-]+).*/-\1 \2/p' \
		-e 's/^ +--([a-z0-9-]+).*/- \1/p'
}

# synopsis TOOL: the mdoc source of TOOL's SYNOPSIS section.
synopsis() {
	sed -n '/^\.Sh SYNOPSIS/,/^\.Sh /p' "$MAN/$1.1" | sed '$d'
}

# synopsis_options TOOL: the options the rendered SYNOPSIS names, one per
# line: "--follow", and "-f" for each letter of a cluster like [-0fqv].
synopsis_options() {
	MANWIDTH=300 mandoc -Tascii "$MAN/$1.1" | col -bx |
		sed -n '/^SYNOPSIS/,/^DESCRIPTION/p' >"$T/syn.$1"
	grep -oE -- '--[a-z][a-z0-9-]*' "$T/syn.$1"
	grep -oE -- '(^|[ [|])-[A-Za-z0-9?]+' "$T/syn.$1" |
		sed -E 's/^[ [|]?-//' | fold -w1 | sed 's/^/-/'
}

@test "every tool's --help and --usage fit in 80 columns" {
	local t line
	for t in $TOOLS; do
		for opt in --help --usage; do
			while IFS= read -r line; do
				((${#line} <= 80)) ||
					fail "$t $opt: ${#line} columns: $line"
				[[ $line != *$'\t'* ]] || fail "$t $opt: a tab: $line"
			done < <("$t" "$opt")
		done
	done
}

@test "every long option of --help is an item of its man page's option list" {
	local t s l
	for t in $TOOLS; do
		[[ -f $MAN/$t.1 ]] || fail "no man/$t.1"
		while read -r s l; do
			grep -qE "^\.It (.* )?Fl \\\\-$l( |\$)" "$MAN/$t.1" ||
				fail "$t: --$l is not described (.It Fl \\-$l) in man/$t.1"
			# -? is popt's other name for --help
			[[ $s == - || $s == '-?' ]] && continue
			grep -qE "^\.It (.* )?Fl ${s#-} , Fl \\\\-$l( |\$)" "$MAN/$t.1" ||
				fail "$t: $s is not given with --$l in man/$t.1"
		done < <(help_options "$t")
	done
}

@test "the man SYNOPSIS names every option of --help, and no other" {
	command -v mandoc >/dev/null || skip "mandoc is not installed"
	local t s l o
	for t in $TOOLS; do
		synopsis_options "$t" | sort -u >"$T/syn-opts"
		help_options "$t" >"$T/help-opts"
		# Each option of --help, by its short or its long name; --help,
		# --usage and --version are left to the OPTIONS list.
		while read -r s l; do
			case $l in help | usage | version) continue ;; esac
			grep -qxe "--$l" -e "$s" "$T/syn-opts" ||
				fail "$t: --$l is in --help but not in the SYNOPSIS"
		done <"$T/help-opts"
		# Each option of the SYNOPSIS is one that --help lists.
		while read -r o; do
			if [[ $o == --* ]]; then
				grep -q " ${o#--}\$" "$T/help-opts"
			else
				grep -q "^$o " "$T/help-opts"
			fi || fail "$t: the SYNOPSIS has $o, which --help does not"
		done <"$T/syn-opts"
	done
}

# usage_operands TOOL: the operands of the --help usage line, one per line,
# "NAME required" or "NAME optional": "CHANNEL [SUBSCRIBER]" gives
# "CHANNEL required" and "SUBSCRIBER optional".
usage_operands() {
	"$1" --help | head -1 | sed 's/^Usage: [a-z]* \[OPTION\.\.\.\] *//' |
		tr ' ' '\n' | sed -nE \
		-e 's/^\[([A-Z]+)(\.\.\.)?\]$/\1 optional/p' \
		-e 's/^([A-Z]+)(\.\.\.)?$/\1 required/p'
}

# synopsis_forms TOOL: the operands of each form of the SYNOPSIS, one form
# per line: "CHANNEL SUBSCRIBER", "CHANNEL [SUBSCRIBER]".
synopsis_forms() {
	synopsis "$1" | awk '
		/^\.Nm/ { if (n++) print form; form = ""; next }
		/^\.Ar [A-Z]/ { form = form " " $2; next }
		/^\.Op Ar [A-Z]/ { form = form " [" $3 "]"; next }
		END { if (n) print form }' | sed 's/^ //'
}

@test "the --help usage line and the man SYNOPSIS agree on the operands" {
	local t name how form found
	for t in $TOOLS; do
		synopsis_forms "$t" >"$T/forms"
		[[ -s $T/forms ]] || fail "$t: no SYNOPSIS forms"
		while read -r name how; do
			if [[ $how == required ]]; then
				# in every form, and never optional there
				while read -r form; do
					[[ " $form " == *" $name "* ]] ||
						fail "$t: $name is required by --help, not in: $form"
				done <"$T/forms"
			else
				# optional in a form, or left out of one
				found=
				while read -r form; do
					[[ " $form " == *" [$name] "* ||
						" $form " != *" $name "* ]] && found=1
				done <"$T/forms"
				[[ $found ]] ||
					fail "$t: $name is optional in --help, required in every form"
			fi
		done < <(usage_operands "$t")
		# and the SYNOPSIS has no operand that the usage line lacks
		for name in $(tr -d '[]' <"$T/forms" | tr ' ' '\n' | sort -u); do
			usage_operands "$t" | grep -q "^$name " ||
				fail "$t: the SYNOPSIS has $name, the --help usage line does not"
		done
	done
}

@test "the usage line of --help is the one of --usage, for the operands" {
	local t h u
	for t in $TOOLS; do
		h=$("$t" --help | head -1)
		u=$("$t" --usage | tr -s ' \n' ' ')
		# --usage ends with the same "[OPTION...] OPERANDS" as --help
		[[ $u == *"${h#Usage: "$t" }"* || $u == *"${h#Usage: "$t" } " ]] ||
			fail "$t: --help says '$h', --usage says '$u'"
	done
}

# --- make install -------------------------------------------------------

@test "make install DESTDIR= prefix=/usr puts everything where Debian looks" {
	local top=${TOP_BUILDDIR:-$BATS_TEST_DIRNAME/..} d=$T/dest t
	[[ -f $top/Makefile ]] || skip "no configured build tree"
	command -v make >/dev/null || skip "make is not installed"
	run make -s -C "$top" install DESTDIR="$d" prefix=/usr \
		exec_prefix=/usr
	assert_success
	for t in $TOOLS; do
		assert_file_executable "$d/usr/bin/$t"
		assert_file_exists "$d/usr/share/man/man1/$t.1"
		assert_file_exists "$d/usr/share/bash-completion/completions/$t"
		assert_file_exists "$d/usr/share/fish/vendor_completions.d/$t.fish"
	done
	assert_file_exists "$d/usr/share/zsh/vendor-completions/_chtools"
	assert_file_exists "$d/usr/share/man/man5/channel.5"
	assert_file_exists "$d/usr/share/man/man5/channel.yaml.5"
	assert_file_exists "$d/usr/share/man/man7/chtools.7"
	local ex=$d/usr/share/doc/chtools/examples
	assert_file_exists "$ex/README.md"
	assert_file_exists "$ex/crontab"
	assert_file_exists "$ex/chsub@.service"
	assert_file_exists "$ex/forwarding.md"
	assert_file_exists "$ex/chnats-pub.c"
	assert_file_exists "$ex/chlag-alerts.yml"
	assert_file_executable "$ex/append-batch.sh"
	assert_file_executable "$ex/redis-xadd-batch.sh"
	assert_file_executable "$ex/log-shipping.sh"
	assert_file_executable "$ex/replay.sh"
	# The installed tools run; man finds the installed pages.
	run -0 "$d/usr/bin/chsub" --version
	assert_output --partial chsub
	if command -v man >/dev/null; then
		MANPATH=$d/usr/share/man run -0 man -w chsub
		assert_output "$d/usr/share/man/man1/chsub.1"
	fi
	# Nothing outside DESTDIR/usr.
	run -0 find "$d" -mindepth 1 -maxdepth 1
	assert_output "$d/usr"
	# and uninstall takes it all away again
	run make -s -C "$top" uninstall DESTDIR="$d" prefix=/usr \
		exec_prefix=/usr
	assert_success
	run -0 find "$d" -type f
	assert_output ""
}

@test "no test polls a stale \$(...): wait_for gets a command, wait_until a string" {
	# A $(...) among wait_for's arguments runs once, at the call: where
	# that is meant, it goes into a variable first.
	run grep -nE 'wait_for [0-9]+ .*\$\(' "$TESTS_SRCDIR"/*.bats
	assert_failure 1
	assert_output ""
}

@test "README's Requirements name every package ./bootstrap installs" {
	local top="${TESTS_SRCDIR:-$BATS_TEST_DIRNAME}/.." pkgs words p
	pkgs=$(sed -n '/^PKGS="/,/"$/p' "$top/bootstrap" | sed 's/^PKGS=//' | tr -d '"\\')
	(($(wc -w <<<"$pkgs") > 20)) || fail "no package list found in bootstrap: '$pkgs'"
	words=$(sed -n '/^## Requirements/,/^## /p' "$top/README.md" | tr -s ' `,;.():\n' '\n')
	for p in $pkgs; do
		grep -qxF -- "$p" <<<"$words" || fail "README's Requirements lack $p"
	done
}
