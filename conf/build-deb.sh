#!/bin/sh
# make deb: the Debian packages outbox and outbox-mta (debian/), built by
# dpkg-buildpackage -us -uc -b in a copy of the source tree, so neither the
# checkout nor its parent directory (where dpkg-buildpackage writes its
# results) is touched. Usage: build-deb.sh [DIR]   (DIR: build/deb)
#   DIR/src/outbox-VERSION/   the copy: the tracked files as they are in
#                             the work tree (uncommitted changes in, files
#                             git does not know out), or without git the
#                             whole tree but build/ and .git
#   DIR/*.deb, *.changes, *.buildinfo   the results
#   DIR/build.log             dpkg-buildpackage's output
# Needs dpkg-dev, debhelper and the Build-Depends of debian/control
# (dpkg-buildpackage names what is missing).
set -eu
export LC_ALL=C

out=${1:-build/deb}
say() { echo "build-deb: $*"; }
die() { echo "build-deb: $*" >&2; exit 1; }

[ -f debian/changelog ] || die "run from the top of the source tree"
for tool in dpkg-buildpackage dpkg-parsechangelog dh; do
	command -v "$tool" >/dev/null ||
		die "$tool not found: apt-get install dpkg-dev debhelper"
done
version=$(dpkg-parsechangelog -S Version)
upstream=${version%-*}
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/src/outbox-$upstream

rm -rf "$out/src"
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# a commit object of the work tree's tracked files (no ref, nothing
	# in the checkout changes), or HEAD when there is nothing uncommitted
	tree=$(git stash create)
	git archive --format=tar "${tree:-HEAD}" | tar -xf - -C "$src"
	dirty=$(git status --porcelain --untracked-files=no | wc -l)
	[ "$dirty" -eq 0 ] ||
		say "note: $dirty uncommitted change(s) are in the package"
else
	tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$src"
fi

rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
say "dpkg-buildpackage -us -uc -b in $src (log: $out/build.log)"
start=$(date +%s)
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -jauto) \
     > "$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	die "dpkg-buildpackage failed (whole log: $out/build.log)"
fi
for f in "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo; do
	if [ -e "$f" ]; then mv "$f" "$out/"; fi
done
say "built in $(( $(date +%s) - start )) s:"
for f in "$out"/*.deb; do
	echo "  ${f#"$PWD"/}"
done
