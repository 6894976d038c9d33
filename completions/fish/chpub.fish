# fish completion for chpub(1), part of chtools
# chpub [OPTION]... CHANNEL [MESSAGE]...

# --- chtools helpers: begin ---
# The same in every file of completions/fish (fish loads one file per
# command, by name); tests/90-completions.bats checks that they match.

# __chtools_operands SHORT LONG...: print the operands before the current
# token, reading the options as popt does.  SHORT holds the short options
# that take an argument ("tn"), LONG... the long ones ("timeout" "count").
function __chtools_operands
    set -l short (string split '' -- $argv[1])
    set -l long $argv[2..-1]
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l want 0
    set -l dd 0
    for w in $tokens
        if test $want = 1
            set want 0
        else if test $dd = 1; or not string match -qr -- '^-.' $w
            printf '%s\n' $w
        else if test "x$w" = x--
            set dd 1
        else if string match -q -- '--*' $w
            if not string match -q -- '*=*' $w
                and contains -- (string sub -s 3 -- $w) $long
                set want 1
            end
        else
            set -l n (string length -- $w)
            for j in (seq 2 $n)
                if contains -- (string sub -s $j -l 1 -- $w) $short
                    test $j = $n; and set want 1
                    break
                end
            end
        end
    end
end

# __chtools_channels: complete a CHANNEL: directories, and for a token
# without "/" the channels (directories holding channel.yaml) under $CH_ROOT.
function __chtools_channels
    set -l tok (commandline -ct | string replace -r -- '^--[^=]*=' '')
    __fish_complete_directories "$tok" 'channel directory'
    if test -n "$CH_ROOT"; and not string match -q -- '*/*' "$tok"
        for f in $CH_ROOT/*/channel.yaml
            test -f $f; or continue
            string replace -r -- '^.*/([^/]+)/channel.yaml$' '$1'\t'channel under CH_ROOT' $f
        end
    end
end

# __chtools_subscribers CHANNEL: complete a SUBSCRIBER of CHANNEL
# ($CH_ROOT/CHANNEL for a name without "/"): the directories under
# CHANNEL/subscribers that hold an offset file.
function __chtools_subscribers
    set -q argv[1]; or return
    set -l dir (string replace -r -- '^~(?=/|$)' "$HOME" $argv[1])
    if test -n "$CH_ROOT"; and not string match -q -- '*/*' $dir
        set dir $CH_ROOT/$dir
    end
    for f in $dir/subscribers/*/offset
        test -f $f; or continue
        string replace -r -- '^.*/([^/]+)/offset$' '$1'\tsubscriber $f
    end
end
# --- chtools helpers: end ---

function __chpub_operands
    __chtools_operands kH key header sync max-bytes on-full max-record-bytes
end

complete -c chpub -f
complete -c chpub -n 'test (count (__chpub_operands)) = 0' -a '(__chtools_channels)'
complete -c chpub -s 0 -l null -d 'records on stdin end with NUL, not newline'
complete -c chpub -l whole -d 'all of stdin is one record'
complete -c chpub -s k -l key -x -d 'give every record the key KEY'
complete -c chpub -s H -l header -x -d 'give every record header NAME (repeatable)'
complete -c chpub -s p -l print-offset -d 'print the offset of each record on stdout'
complete -c chpub -l tee -d 'copy each record to stdout once appended'
complete -c chpub -l no-create -d 'fail if the channel does not exist'
complete -c chpub -l atomic -d 'publish all records at once or none'
complete -c chpub -l sync -x -d 'durability: none, periodic or always' \
    -a "none\t'no fsync' periodic\t'fsync every sync_interval' always\t'exit 0 only once on stable storage'"
complete -c chpub -l max-bytes -x -d 'the channel is full above SIZE'
complete -c chpub -l on-full -x -d 'when full: fail or block' \
    -a "fail\t'exit with an error' block\t'wait for compaction to free room'"
complete -c chpub -l max-record-bytes -x -d 'reject records larger than SIZE'
complete -c chpub -s q -l quiet -d 'print no warnings, only errors'
complete -c chpub -s v -l verbose -d 'report what is done on stderr'
complete -c chpub -l version -d 'print the version and exit'
complete -c chpub -s '?' -l help -d 'show this help message'
complete -c chpub -l usage -d 'display brief usage message'
