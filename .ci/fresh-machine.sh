#!/bin/sh
# CI stage "fresh": what a new user and a new admin meet.
#
#  1. A minimal Debian 12 root (debootstrap --variant=minbase, from the
#     Debian mirror this machine's apt is configured with, read at run
#     time), the checkout cloned into its root's home (mode 0700), only
#     make and git installed, then exactly the README's quick start:
#     make demo, then make check.
#  2. A second fresh root from the same debootstrap tarball: the Debian
#     packages built here (make deb) installed there with apt-get, mail
#     sent through /usr/sbin/sendmail to a test smarthost, removed and
#     purged (make check-package OUTBOX_PACKAGE_CHROOT=...).
#
# Needs root and debootstrap (installed with apt-get when missing). All
# it makes lives under build/ci/fresh (the tarball is cached there for
# the second root of the same run only); mounts are undone on exit.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
work=$top/build/ci/fresh
tarball=$work/bookworm-minbase.tgz
roots=""
t0=$(date +%s)

say() { echo "fresh: $* ($(( $(date +%s) - t0 )) s)"; }

umount_root() {
	r=$1
	for m in dev/pts dev proc sys; do
		if mountpoint -q "$r/$m" 2>/dev/null; then
			umount -l "$r/$m" || true
		fi
	done
}
# never remove a tree that still has something mounted inside
safe_rm() {
	if grep -q " $1/" /proc/mounts; then
		echo "fresh: $1 still has mounts; not removing it" >&2
		return 1
	fi
	rm -rf "$1"
}
cleanup() {
	for r in $roots; do
		umount_root "$r"
	done
	for r in $roots; do
		safe_rm "$r" || true
	done
}
trap cleanup EXIT INT TERM

[ "$(id -u)" -eq 0 ] || { echo "fresh: needs root" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
	apt-get install -y -qq debootstrap >/dev/null
fi

# The mirror apt uses here: the first Debian archive (not security)
# serving bookworm, from deb822 .sources files or sources.list lines.
mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '
			/^[ \t]*$/ { if (uri != "" && suites ~ /(^| )bookworm( |$)/ &&
			                 uri !~ /security/) { print uri; exit }
			             uri = ""; suites = ""; next }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "suites:" { $1 = ""; suites = $0 " " }
			END { if (uri != "" && suites ~ /(^| )bookworm( |$)/ &&
			          uri !~ /security/) print uri }
		' "$f"
	done
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
	    awk '$1 == "deb" && $3 == "bookworm" && $2 !~ /security/ { print $2 }'
}
MIRROR=$(mirror | head -n 1)
[ -n "$MIRROR" ] || { echo "fresh: no bookworm mirror in apt's sources" >&2; exit 1; }

mkdir -p "$work"
if [ ! -f "$tarball" ]; then
	say "debootstrap tarball (minbase bookworm)"
	debootstrap --variant=minbase --make-tarball="$tarball" bookworm \
		"$work/tarball-tmp" "$MIRROR" > "$work/debootstrap-tarball.log" 2>&1 ||
	    { tail -20 "$work/debootstrap-tarball.log"; exit 1; }
	rm -rf "$work/tarball-tmp"
fi

# A fresh root: debootstrap from the tarball, mounts, no services started.
new_root() {
	r=$work/$1
	roots="$roots $r"
	umount_root "$r"
	safe_rm "$r"
	debootstrap --variant=minbase --unpack-tarball="$tarball" bookworm \
		"$r" "$MIRROR" > "$work/debootstrap-$1.log" 2>&1 ||
	    { tail -20 "$work/debootstrap-$1.log"; exit 1; }
	printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"
	cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
	mount -t proc proc "$r/proc"
	mount --rbind /dev "$r/dev"
	mount --make-rslave "$r/dev"
	mount -t sysfs sysfs "$r/sys"
}
in_root() {
	r=$1
	shift
	chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LC_ALL=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
		"$@"
}

# ---- 1. the quick start on a fresh machine ----
new_root user
say "root 1 ready"
in_root "$work/user" sh -c 'apt-get update -qq && apt-get install -y -qq make git' \
	> "$work/apt-user.log" 2>&1 || { tail -20 "$work/apt-user.log"; exit 1; }
chmod 0700 "$work/user/root"
# the committed tree, as a user's clone would have it
git clone -q --no-hardlinks "$top" "$work/user/root/outbox"
say "make and git installed, checkout cloned into /root (0700)"
in_root "$work/user" sh -c 'cd /root/outbox && make demo' \
	> "$work/demo.log" 2>&1 || { tail -40 "$work/demo.log"; echo "fresh: make demo FAILED"; exit 1; }
tail -5 "$work/demo.log"
say "make demo ok"
in_root "$work/user" sh -c 'cd /root/outbox && make check' \
	> "$work/check.log" 2>&1 || { tail -60 "$work/check.log"; echo "fresh: make check FAILED"; exit 1; }
grep -E '[0-9]+ (passed|failed)|^\[  (PASSED|FAILED)' "$work/check.log" | tail -12
say "make check ok"
umount_root "$work/user"
safe_rm "$work/user"

# ---- 2. the packages on a second fresh machine ----
new_root pkg
in_root "$work/pkg" apt-get update -qq > "$work/apt-pkg.log" 2>&1 ||
    { tail -20 "$work/apt-pkg.log"; exit 1; }
say "root 2 ready"
for p in debhelper lintian fakeroot; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
	    missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
make -s check-package OUTBOX_PACKAGE_CHROOT="$work/pkg" > "$work/package.log" 2>&1 ||
    { tail -60 "$work/package.log"; echo "fresh: package cycle FAILED"; exit 1; }
grep -E 'package-cycle:|[0-9]+ (passed|failed)' "$work/package.log" | tail -25
say "packages installed, used, removed and purged"
