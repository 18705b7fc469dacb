#!/bin/sh
# make install-sendmail-links: point sendmail, mailq and newaliases at
# outbox. Never replaces an existing MTA silently: without FORCE=1 it says
# what is there and stops; with FORCE=1 it keeps the old file as
# NAME.pre-outbox and says so. A file that belongs to a Debian package
# (Postfix's /usr/sbin/sendmail) is moved with dpkg-divert, so the
# package's upgrades do not put it back over the link. The Debian package
# outbox-mta is the cleaner way to replace an MTA (see README).
# Usage: install-links.sh TARGET LINK...   (DESTDIR and FORCE from env)
set -eu
target=$1
shift
dest=${DESTDIR:-}
force=${FORCE:-0}
status=0
for link in "$@"; do
	path=$dest$link
	mkdir -p "$(dirname "$path")"
	if [ -L "$path" ] && [ "$(readlink "$path")" = "$target" ]; then
		echo "$link: already points at outbox"
		continue
	fi
	if [ -e "$path" ] || [ -L "$path" ]; then
		if [ -L "$path" ]; then
			what="a symlink to $(readlink "$path")"
		else
			what="a file"
		fi
		pkg=$(dpkg -S "$link" 2>/dev/null | cut -d: -f1 | head -n 1 || true)
		[ -n "$pkg" ] && what="$what (from package $pkg)"
		if [ "$force" != 1 ]; then
			echo "$link exists: $what" >&2
			echo "  not replacing it; run with FORCE=1 to keep it as $link.pre-outbox and link outbox there" >&2
			status=1
			continue
		fi
		if [ -n "$pkg" ] && [ -z "$dest" ] && command -v dpkg-divert >/dev/null; then
			# a package's file: divert it, so that the package's next
			# upgrade writes to NAME.pre-outbox instead of over the link
			dpkg-divert --local --rename --divert "$link.pre-outbox" \
				--add "$link" >/dev/null
			echo "$link: diverted $what to $link.pre-outbox (dpkg-divert; make uninstall puts it back)"
		else
			mv "$path" "$path.pre-outbox"
			echo "$link: replaced $what; the old one is kept as $link.pre-outbox"
		fi
	fi
	ln -s "$target" "$path"
	echo "$link -> $target"
done
exit $status
