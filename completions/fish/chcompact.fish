# fish completion for chcompact(1), part of chtools
# chcompact [OPTION]... CHANNEL...

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

complete -c chcompact -f
complete -c chcompact -a '(__chtools_channels)'
complete -c chcompact -s n -l dry-run -d 'say what would be deleted and what holds the rest back'
complete -c chcompact -l max-age -x -d 'retention: delete segments whose newest record is older'
complete -c chcompact -l max-bytes -x -d 'retention: delete the oldest segments beyond SIZE'
complete -c chcompact -l expire -x -d 'deregister subscribers that have neither committed nor run for DUR'
complete -c chcompact -l check -d 'verify every record and offset file; exit 65 on problems'
complete -c chcompact -l repair -d '--check, and fix what can be fixed without losing a record'
complete -c chcompact -l wait -x -d 'wait up to DUR for another chcompact (default 10s)'
complete -c chcompact -s q -l quiet -d 'print no warnings, only errors'
complete -c chcompact -s v -l verbose -d 'report what is done on stderr'
complete -c chcompact -l version -d 'print the version and exit'
complete -c chcompact -s '?' -l help -d 'show this help message'
complete -c chcompact -l usage -d 'display brief usage message'
