#!/usr/bin/env bats
# Shell completions: every option of every tool is in the bash, zsh and fish
# files, and the completions really run: bash through bash-completion's own
# loader, zsh through compinit on a pseudo-terminal, fish with complete -C.

TOOLS="chpub chsub chcompact choffset chlag"

setup_file() {
	export COMPL="$BATS_TEST_DIRNAME/../completions"
	# bash-completion looks first in $BASH_COMPLETION_USER_DIR/completions
	# for a file named after the command, as in an installed tree.
	export BASH_COMPLETION_USER_DIR="$BATS_FILE_TMPDIR/bc"
	mkdir -p "$BASH_COMPLETION_USER_DIR/completions"
	local t
	for t in $TOOLS; do
		ln -s "$COMPL/bash/$t" "$BASH_COMPLETION_USER_DIR/completions/$t"
	done
}

setup() {
	load helpers/common
	common_setup
	mkdir "$T/cwd"
	cd "$T/cwd"
}
teardown() { common_teardown; }

# options SHELL: SHELL's completion files offer exactly the options of each
# tool's --help (and, for bash, read the same ones as taking a value).
options() {
	run bash "$BATS_TEST_DIRNAME/helpers/completion-options.bash" \
		"$1" "$COMPL" $TOOLS
	assert_output ""
	assert_success
}

@test "bash: the options, and those that take a value, are those of --help" {
	options bash
}

@test "zsh: the option specs are those of --help" {
	options zsh
}

@test "fish: the options are those of --help" {
	options fish
}

@test "the shared helpers are the same in every bash and every fish file" {
	local t shell file first
	for shell in bash fish; do
		first=
		for t in $TOOLS; do
			file=$COMPL/$shell/$t
			[[ $shell == fish ]] && file+=.fish
			sed -n '/--- chtools helpers: begin ---/,/--- chtools helpers: end ---/p' \
				"$file" >"$T/helpers.$t"
			[ -s "$T/helpers.$t" ]
			[[ $first ]] || first=$t
			cmp "$T/helpers.$first" "$T/helpers.$t"
		done
	done
}

# A channel $CH with registered subscribers shipper and archiver, and a
# directory under subscribers/ without an offset file (not registered).
# Under $T/root (CH_ROOT), a channel "logs" with subscriber "loader" and a
# directory "lost" that is not a channel.
make_channels() {
	chpub "$CH" one two
	chsub --from=earliest "$CH" shipper >/dev/null
	chsub "$CH" archiver
	mkdir "$CH/subscribers/shelf"
	chpub "$T/root/logs" </dev/null
	chsub "$T/root/logs" loader
	mkdir "$T/root/lost"
}

# complete_bash LINE: the candidates bash offers for LINE (cursor at the end).
complete_bash() {
	run -0 --separate-stderr bash --norc \
		"$BATS_TEST_DIRNAME/helpers/complete-bash.sh" "$1"
	assert_equal "$stderr" ""
}

@test "bash: bash-completion's loader finds each tool's file by its name" {
	for t in $TOOLS; do
		complete_bash "$t --hel"
		assert_output "--help"
	done
}

@test "bash: registered subscribers of a channel" {
	make_channels
	complete_bash "chsub $CH sh"
	assert_output "shipper"
	complete_bash "chsub $CH "
	assert_output $'archiver\nshipper'
	complete_bash "choffset $CH a"
	assert_output "archiver"
	# options and their arguments before the operands are skipped
	complete_bash "chsub -n 5 --from earliest -fx cat --peek $CH "
	assert_output $'archiver\nshipper'
	complete_bash "chsub --count=5 -n5 $CH sh"
	assert_output "shipper"
	# no third operand
	complete_bash "chsub $CH shipper "
	assert_output ""
}

@test "bash: option values" {
	complete_bash "chpub --sync="
	assert_output $'always\nnone\nperiodic'
	complete_bash "chpub --sync p"
	assert_output "periodic"
	complete_bash "chpub --on-full="
	assert_output $'block\nfail'
	complete_bash "chsub --from="
	assert_output $'earliest\nlatest'
	complete_bash "chsub --fr"
	assert_output "--from="
	complete_bash "chsub -n "
	assert_output ""
	complete_bash "chlag -w "
	assert_output $'age:\nbytes:\nrecords:'
	# bash sees "5,a" as the word after the last ":"
	complete_bash "chlag --crit=records:5,a"
	assert_output "5,age:"
	complete_bash "chlag --warn=age:"
	assert_output ""
	# each kind once (chlag refuses one given twice)
	complete_bash "chlag -w age:5m,records:5,"
	assert_output "5,bytes:"
	complete_bash "chlag --crit=records:5,"
	assert_output $'5,age:\n5,bytes:'
}

@test "bash: channels are directories, or channel names under CH_ROOT" {
	make_channels
	mkdir "$T/cwd/local"
	complete_bash "chsub "
	assert_output "local"
	complete_bash "chsub --dead-letter=l"
	assert_output "local"
	export CH_ROOT="$T/root"
	complete_bash "chsub lo"
	assert_output $'local\nlogs'
	complete_bash "chcompact logs lo"
	assert_output $'local\nlogs'
	complete_bash "chsub logs "
	assert_output "loader"
	complete_bash "choffset logs l"
	assert_output "loader"
	# a word with "/" is a path, never a name under CH_ROOT
	complete_bash "chsub ./lo"
	assert_output "./local"
	touch "$T/cwd/offsets"
	complete_bash "choffset --import o"
	assert_output "offsets"
	complete_bash "chlag --output=o"
	assert_output "offsets"
}

# complete_zsh LINE: the candidates zsh offers for LINE (cursor at the end).
complete_zsh() {
	run -0 zsh -f "$BATS_TEST_DIRNAME/helpers/complete-zsh.zsh" \
		"$COMPL/zsh" "$BATS_FILE_TMPDIR/zcompdump" "$1" "$T/zsh.out"
	run -0 sort -u "$T/zsh.out"
}

@test "zsh: _chtools parses, and completes for real (zpty)" {
	run -0 zsh -n "$COMPL/zsh/_chtools"
	head -1 "$COMPL/zsh/_chtools" |
		grep -qx '#compdef chpub chsub chcompact choffset chlag'
	make_channels
	complete_zsh "chsub $CH sh"
	assert_output "shipper"
	complete_zsh "choffset --dry-run $CH "
	assert_output $'archiver\nshipper'
	complete_zsh "chpub --sync="
	assert_output $'always\nnone\nperiodic'
	complete_zsh "chsub --fr"
	assert_output "--from"
	complete_zsh "chlag --warn=records:5,"
	assert_output $'age\nbytes'
	complete_zsh "chlag -w age:5m,records:5,"
	assert_output "bytes"
	CH_ROOT="$T/root" complete_zsh "chsub lo"
	assert_output "logs"
	CH_ROOT="$T/root" complete_zsh "chsub logs "
	assert_output "loader"
}

# complete_fish TOOL LINE: the candidates fish offers for LINE after
# sourcing TOOL's completion file, without descriptions.
complete_fish() {
	run -0 --separate-stderr fish --no-config -c \
		'source $argv[1]; complete -C $argv[2]' \
		"$COMPL/fish/$1.fish" "$2"
	assert_equal "$stderr" ""
	run -0 bash -c 'cut -f1 | sort' <<<"$output"
}

@test "fish: the files parse, and complete options and values" {
	for t in $TOOLS; do
		run -0 fish --no-config -n "$COMPL/fish/$t.fish"
		complete_fish "$t" "$t --hel"
		assert_output "--help"
	done
	complete_fish chsub "chsub --fr"
	assert_output "--from"
	complete_fish chsub "chsub --from "
	assert_output $'earliest\nlatest'
	complete_fish chpub "chpub --sync="
	assert_output $'--sync=always\n--sync=none\n--sync=periodic'
	complete_fish chlag "chlag --warn=records:5,"
	assert_output $'--warn=records:5,age:\n--warn=records:5,bytes:'
	complete_fish chlag "chlag -w age:5m,records:5,"
	assert_output "age:5m,records:5,bytes:"
}

@test "fish: channels and subscribers" {
	make_channels
	complete_fish chsub "chsub $CH sh"
	assert_output "shipper"
	complete_fish choffset "choffset -v $CH "
	assert_output $'archiver\nshipper'
	complete_fish chsub "chsub -n 5 --from earliest $CH "
	assert_output $'archiver\nshipper'
	export CH_ROOT="$T/root"
	complete_fish chsub "chsub lo"
	assert_output "logs"
	complete_fish chsub "chsub logs "
	assert_output "loader"
	# fish finds the file by the command's name, as once installed
	run -0 fish --no-config -c \
		'set fish_complete_path $argv[1] $fish_complete_path; complete -C "chsub logs "' \
		"$COMPL/fish"
	assert_output $'loader\tsubscriber'
}
