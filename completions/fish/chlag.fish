# fish completion for chlag(1), part of chtools
# chlag [OPTION]... [CHANNEL]...

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

# __chlag_thresholds: complete KIND:VALUE[,KIND:VALUE]... (--warn, --crit),
# each KIND once.
function __chlag_thresholds
    set -l tok (commandline -ct | string replace -r -- '^--[^=]*=' '')
    string match -q -- '*:*' (string replace -r -- '.*,' '' "$tok"); and return
    set -l done (string replace -r -- '[^,]*$' '' "$tok")
    for k in 'records:\tlag in records (N)' 'bytes:\tlag in bytes (SIZE)' \
        'age:\tage of the oldest unconsumed record (DUR)'
        set -l kind (string replace -r -- ':.*' '' $k)
        string match -q -- "*,$kind:*" ",$done"; or printf '%s%b\n' $done $k
    end
end

complete -c chlag -f
complete -c chlag -a '(__chtools_channels)'
complete -c chlag -l json -d 'print JSON'
complete -c chlag -l yaml -d 'print YAML'
complete -c chlag -l prometheus -d 'print the Prometheus text exposition format'
complete -c chlag -l nagios -d 'print one Nagios status line with performance data'
complete -c chlag -l explain -d 'say under each row which status rule matched and why, with its samples'
complete -c chlag -s o -l output -r -F -d 'write to FILE atomically (for textfile collectors)'
complete -c chlag -s w -l warn -x -a '(__chlag_thresholds)' -d 'WARNING above these (records:N,bytes:SIZE,age:DUR)'
complete -c chlag -s c -l crit -x -a '(__chlag_thresholds)' -d 'CRITICAL above these'
complete -c chlag -l watch -x -d 'refresh every SECONDS until interrupted'
complete -c chlag -l window -x -d 'commit history considered for status (default 10m)'
complete -c chlag -l allowed-lag -x -d 'lag in records that still counts as caught up (default 0)'
complete -c chlag -l stall -x -d 'no progress for this long is STALL/STOP (default 1m)'
complete -c chlag -s q -l quiet -d 'print no warnings, only errors'
complete -c chlag -s v -l verbose -d 'report what is done on stderr'
complete -c chlag -l version -d 'print the version and exit'
complete -c chlag -s '?' -l help -d 'show this help message'
complete -c chlag -l usage -d 'display brief usage message'
