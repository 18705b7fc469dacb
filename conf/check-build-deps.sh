#!/bin/sh
# Run by make before compiling: when something the build needs is
# missing, say in one line what it is and the command that installs it,
# instead of a wall of compiler and linker errors.
# Usage: check-build-deps.sh CC PKG_CONFIG PKG...
set -u
cc=$1 pkgconfig=$2
shift 2
missing="" debs=""
add() { missing="$missing${missing:+, }$1"; debs="$debs $2"; }
command -v "$cc" >/dev/null 2>&1 || add "a C compiler ($cc)" gcc
if ! command -v "$pkgconfig" >/dev/null 2>&1; then
	add pkg-config pkg-config
	for p in "$@"; do
		case $p in
		libcurl) add "libcurl (GnuTLS flavour) development files" libcurl4-gnutls-dev ;;
		gnutls) add "GnuTLS development files" libgnutls28-dev ;;
		libidn2) add "libidn2 development files" libidn2-dev ;;
		esac
	done
else
	for p in "$@"; do
		"$pkgconfig" --exists "$p" 2>/dev/null && continue
		case $p in
		libcurl) add "libcurl (GnuTLS flavour) development files" libcurl4-gnutls-dev ;;
		gnutls) add "GnuTLS development files" libgnutls28-dev ;;
		libidn2) add "libidn2 development files" libidn2-dev ;;
		*) add "pkg-config module $p" "<the -dev package of $p>" ;;
		esac
	done
fi
[ -z "$missing" ] && exit 0
echo "outbox: cannot build, missing: $missing; install with: apt-get install$debs (or run make deps as root)" >&2
exit 1
