#!/bin/sh
# make uninstall: remove the sendmail, mailq and newaliases links that
# install-links.sh made, and put back what they replaced (NAME.pre-outbox,
# or the package's file diverted with dpkg-divert). A link that points
# elsewhere, or a file that is not a link, is left alone and named.
# Usage: uninstall-links.sh TARGET LINK...   (DESTDIR from env)
set -eu
target=$1
shift
dest=${DESTDIR:-}
for link in "$@"; do
	path=$dest$link
	if [ -L "$path" ] && [ "$(readlink "$path")" = "$target" ]; then
		rm -f "$path"
		echo "$link: removed (it pointed at outbox)"
	elif [ -e "$path" ] || [ -L "$path" ]; then
		echo "$link: not outbox's link, left alone"
		continue
	fi
	diverted=""
	if [ -z "$dest" ] && command -v dpkg-divert >/dev/null; then
		diverted=$(dpkg-divert --listpackage "$link" 2>/dev/null || true)
	fi
	if [ "$diverted" = ":" ] || [ "$diverted" = "LOCAL" ]; then
		dpkg-divert --local --rename --remove "$link" >/dev/null
		echo "$link: the package's file is back (dpkg-divert --remove)"
	elif [ -e "$path.pre-outbox" ] || [ -L "$path.pre-outbox" ]; then
		mv "$path.pre-outbox" "$path"
		echo "$link: restored from $link.pre-outbox"
	fi
done
