# fish completion for chsub(1), part of chtools
# chsub [OPTION]... CHANNEL [SUBSCRIBER]

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

function __chsub_operands
    __chtools_operands tnxP timeout count from format ready-fd exec batch \
        batch-bytes linger retries backoff dead-letter parallel rate \
        handler-timeout
end

complete -c chsub -f
complete -c chsub -n 'test (count (__chsub_operands)) = 0' -a '(__chtools_channels)'
complete -c chsub -n 'test (count (__chsub_operands)) = 1' -a '(__chtools_subscribers (__chsub_operands))'
complete -c chsub -s f -l follow -d 'keep waiting for new records'
complete -c chsub -s t -l timeout -x -d 'wait for new records, exit after DUR without one'
complete -c chsub -s n -l count -x -d 'consume N records, then exit'
complete -c chsub -l from -x -d 'where a new subscriber (or a peek) starts: earliest, latest, OFFSET or TIME' \
    -a "earliest\t'the oldest record' latest\t'the end of the channel'"
complete -c chsub -l peek -d 'read without registering or committing'
complete -c chsub -l wait -d 'wait while another chsub holds the subscriber'
complete -c chsub -s 0 -l null -d 'end records with NUL, not newline'
complete -c chsub -l format -x -d 'print records as FMT (%o %n %s %S %t %T %k %{KEY})'
complete -c chsub -l json -d 'print one JSON object per record'
complete -c chsub -l skip-corrupt -d 'skip corrupt records with a warning instead of stopping'
complete -c chsub -l ready-fd -x -d 'write a newline to fd N once ready'
complete -c chsub -l progress -d "show catch-up progress on a terminal's stderr"
complete -c chsub -s x -l exec -x -a '(__fish_complete_command)' -d 'run CMD (with /bin/sh -c) for each record, payload on stdin'
complete -c chsub -l batch -x -d 'hand up to N records to one run of CMD'
complete -c chsub -l batch-bytes -x -d 'hand at most SIZE bytes to one run of CMD (a larger record goes alone)'
complete -c chsub -l linger -x -d 'following, wait up to DUR for a batch to fill'
complete -c chsub -l retries -x -d 'retry a failing CMD N more times (default 0)'
complete -c chsub -l backoff -x -d 'wait between retries, doubling from MIN up to MAX (default 1s,60s)'
complete -c chsub -l dead-letter -x -a '(__chtools_channels)' -d 'publish records that still fail to CHANNEL and go on'
complete -c chsub -s P -l parallel -x -d 'run up to N handlers at once'
complete -c chsub -l rate -x -d 'hand out at most N records per second'
complete -c chsub -l handler-timeout -x -d 'kill a handler running longer than DUR (a failure)'
complete -c chsub -s q -l quiet -d 'print no warnings, only errors'
complete -c chsub -s v -l verbose -d 'report what is done on stderr'
complete -c chsub -l version -d 'print the version and exit'
complete -c chsub -s '?' -l help -d 'show this help message'
complete -c chsub -l usage -d 'display brief usage message'
