#!/bin/sh
# make install-setgid: let every local user send and queue mail through
# outbox while only root and the outbox group can read the secrets.
#   binary   root:outbox 2755 (setgid outbox; OUTBOX_GROUP names another group)
#   config   root:outbox 0640, and the password-file it names
#   log      the log file the config names (if any): root:outbox 0660
#   queue    root:outbox 2770, with tmp/ msg/ failed/ alike
# Usage: install-setgid.sh BINARY CONFIG QUEUEDIR   (DESTDIR and
# OUTBOX_GROUP, default outbox, from the environment)
set -eu
bin=$1 conf=$2 queue=$3
d=${DESTDIR:-}
g=${OUTBOX_GROUP:-outbox}
if ! getent group "$g" >/dev/null; then
	groupadd --system "$g"
	echo "created group $g"
fi
chown "root:$g" "$d$bin"
chmod 2755 "$d$bin"
echo "$bin: root:$g 2755 (setgid $g)"
for dir in "$queue" "$queue/tmp" "$queue/msg" "$queue/failed"; do
	install -d -o root -g "$g" -m 2770 "$d$dir"
	chown "root:$g" "$d$dir"
	chmod 2770 "$d$dir"
done
echo "$queue: root:$g 2770"
if [ -f "$d$conf" ]; then
	chown "root:$g" "$d$conf"
	chmod 0640 "$d$conf"
	echo "$conf: root:$g 0640"
	# every account's password file (one per account section)
	awk '$1 == "password-file" { gsub(/"/, "", $2); print $2 }' "$d$conf" |
	while IFS= read -r pw; do
		if [ -n "$pw" ] && [ -f "$d$pw" ]; then
			chown "root:$g" "$d$pw"
			chmod 0640 "$d$pw"
			echo "$pw: root:$g 0640"
		fi
	done
	# a log file is everyone's: root's, group-writable, made here (a
	# user's outbox never creates it)
	log=$(awk '$1 == "log" { gsub(/"/, "", $2); print $2 }' "$d$conf" | tail -n 1)
	case $log in
	/*)
		if [ -L "$d$log" ]; then
			echo "$log is a symbolic link: not touching it" >&2
			exit 1
		fi
		[ -d "$d$(dirname "$log")" ] || install -d -m 0755 "$d$(dirname "$log")"
		[ -f "$d$log" ] || : > "$d$log"
		chown "root:$g" "$d$log"
		chmod 0660 "$d$log"
		echo "$log: root:$g 0660"
		;;
	esac
else
	echo "note: $conf does not exist yet; write it, then run this again" \
	     "(or chown root:$g and chmod 0640 it and its password-file)"
fi
