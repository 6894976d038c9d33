# Channels owned by another user, and root's tools on them (channel(5),
# PERMISSIONS).  Their owner is uid 65534 (as_nobody runs commands as it).

# need_owner: run as root, able to become 65534, who can reach $T; OWNER
# is 65534's name.
need_owner() {
	((EUID == 0)) || skip "not root"
	need_nobody
	OWNER=$(id -nu 65534 2>/dev/null || echo 65534)
}
# own_channel DIR: a channel DIR/c of uid 65534 in DIR (made, its), born
# two days ago, of segments of 4096 bytes, holding 300 records written a
# day ago; OWN is its path.
own_channel() {
	mkdir -p "$1"
	chown 65534:65534 "$1"
	OWN=$1/c
	as_nobody faketime -f -2d chpub "$OWN" </dev/null
	as_nobody sed -i 's/^segment_bytes:.*/segment_bytes: 4096/' "$OWN/channel.yaml"
	recs 300 own | as_nobody faketime -f -1d chpub "$OWN"
}
# recs N PREFIX: N records as fill writes them, on stdout.
recs() { seq -f "$2-%g padding padding padding padding" "$1"; }
# tree_state DIR: owner, mode, size, time and name of everything in DIR,
# and the index's bytes.
tree_state() {
	(cd "$1" && find . -printf '%U:%G %m %s %T@ %p\n' | sort -k5 &&
	    od -An -tx1 index)
}
# refusal TOOL CHANNEL [group]: what TOOL run by root says of CHANNEL,
# 65534's (with "group": in a directory shared by a group).
refusal() {
	echo "$1: $2: owned by $OWNER (uid 65534): refusing to change it as root: the files root creates or rewrites there would be root's and lock $OWNER out (\"Permission denied\"); run this as $OWNER: runuser -u $OWNER -- COMMAND, or from $OWNER's crontab${3:+; or, as a member of the group that shares it, under umask 002}"
}
