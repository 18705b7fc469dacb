#!/bin/sh
# make install-setgid: let every local user send and queue mail through
# outbox while only root and the outbox group can read the secrets.
#   binary   root:outbox 2755 (setgid outbox)
#   config   root:outbox 0640, and the password-file it names
#   queue    root:outbox 2770, with tmp/ msg/ failed/ alike
# Usage: install-setgid.sh BINARY CONFIG QUEUEDIR   (DESTDIR from env)
set -eu
bin=$1 conf=$2 queue=$3
d=${DESTDIR:-}
if ! getent group outbox >/dev/null; then
	groupadd --system outbox
	echo "created group outbox"
fi
chown root:outbox "$d$bin"
chmod 2755 "$d$bin"
echo "$bin: root:outbox 2755 (setgid outbox)"
for dir in "$queue" "$queue/tmp" "$queue/msg" "$queue/failed"; do
	install -d -o root -g outbox -m 2770 "$d$dir"
	chown root:outbox "$d$dir"
	chmod 2770 "$d$dir"
done
echo "$queue: root:outbox 2770"
if [ -f "$d$conf" ]; then
	chown root:outbox "$d$conf"
	chmod 0640 "$d$conf"
	echo "$conf: root:outbox 0640"
	pw=$(awk '$1 == "password-file" { gsub(/"/, "", $2); print $2 }' "$d$conf")
	if [ -n "$pw" ] && [ -f "$d$pw" ]; then
		chown root:outbox "$d$pw"
		chmod 0640 "$d$pw"
		echo "$pw: root:outbox 0640"
	fi
else
	echo "note: $conf does not exist yet; write it, then run this again" \
	     "(or chown root:outbox and chmod 0640 it and its password-file)"
fi
