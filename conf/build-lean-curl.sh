#!/bin/sh
# conf/build-lean-curl.sh [DIR] - the static libcurl that `make LEAN=1`
# links outbox against (DIR: build/lean/curl).
#
# Why: Debian's libcurl-gnutls pulls in about 29 shared libraries
# (Kerberos, LDAP, libssh2, librtmp and through them OpenSSL, nghttp2,
# brotli, zstd, libidn2, libpsl, ...) and the dynamic linker loads and
# relocates every one of them in every outbox process, mail or no mail.
# outbox needs a small part of libcurl, so this builds that part as a
# static library; GnuTLS (and nettle, which libcurl's NTLM and digest code
# calls directly) stay shared, so their security updates still apply
# without a rebuild.
#
# What: Debian's own source package of the libcurl version installed here
# (dpkg-query on libcurl4-gnutls-dev, else libcurl3-gnutls), so Debian's
# patches, the security fixes among them, are in. It is fetched with
# apt-get source through a private sources.list, lists and cache under
# DIR/apt: the fetch never touches the system's apt configuration or state.
# apt checks the files against the archive's signed index; dpkg-source -x
# (which cannot check the .dsc's own signature without debian-keyring, and
# says so) unpacks them and applies the patches. The orig tarball's
# prebuilt configure is used, so no autotools are needed: the Debian
# patches that touch configure.ac change only the LDAP and GSS-API checks,
# both disabled here, and those that touch Makefile.am only rename the
# shared library and add zsh completions, neither of which is built.
#
# Configured with what outbox uses and nothing else:
#   SMTP and SMTPS    the delivery (src/smtp.c)
#   HTTP and HTTPS    only because the OAuth2 refresh flow (src/creds_oauth.c)
#                     POSTs to an https:// token endpoint
#   proxies           SOCKS4/5 and HTTP(S) proxies from the environment
#                     (all_proxy, https_proxy, ...), as before
#   IPv6, the threaded resolver (so the timeouts also cover DNS)
#   crypto-auth, NTLM SMTP AUTH CRAM-MD5, DIGEST-MD5 and NTLM, which
#                     outbox.conf's "auth" can ask for
#   verbose strings   outbox -v shows libcurl's protocol trace
# Off: every other protocol (ftp file ldap ldaps rtsp dict telnet tftp
# pop3 imap smb gopher mqtt rtmp scp sftp), NTLM via winbind, TLS-SRP,
# cookies, alt-svc, HSTS, DoH, the MIME API, netrc, the
# progress meter (the progress callback stays), the easy-options and
# headers APIs, Unix sockets, and the libraries zlib, brotli, zstd,
# libidn2 (IDN host names), libpsl, nghttp2 (HTTP/2), libssh2, librtmp,
# GSS-API/Kerberos, LDAP. CA certificates: /etc/ssl/certs, as Debian's.
#
# Installs into DIR/prefix (lib/libcurl.a, include/curl, libcurl.pc) and
# writes DIR/stamp; a later run whose version and configuration match the
# stamp does nothing. Only libcurl's lib/ and include/ are built (no curl
# tool, docs or tests). About 1-2 minutes on 2 cores, plus ~15 MB of
# downloads. Installs dpkg-dev, gcc, make, pkg-config and libgnutls28-dev
# with apt-get when they are missing (as root).
set -eu
export LC_ALL=C

DIR=${1:-build/lean/curl}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
JOBS=${LEAN_CURL_JOBS:-$(nproc 2>/dev/null || echo 2)}
say() { echo "build-lean-curl: $*"; }
die() { echo "build-lean-curl: $*" >&2; exit 1; }
# the output of a step goes to a log, shown (its end) only when it fails
logged() {
	log=$1
	shift
	"$@" > "$DIR/$log" 2>&1 || {
		tail -n 30 "$DIR/$log" >&2
		die "failed: $* (whole log: $DIR/$log)"
	}
}

CONFIGURE_ARGS="--disable-shared --enable-static
	--disable-dependency-tracking --disable-maintainer-mode
	--with-gnutls --without-openssl
	--enable-http --enable-smtp --enable-proxy --enable-ipv6
	--enable-threaded-resolver --disable-ares
	--enable-crypto-auth --enable-ntlm --disable-ntlm-wb --enable-verbose
	--disable-ftp --disable-file --disable-ldap --disable-ldaps
	--disable-rtsp --disable-dict --disable-telnet --disable-tftp
	--disable-pop3 --disable-imap --disable-smb --disable-gopher
	--disable-mqtt --disable-websockets
	--disable-tls-srp --disable-cookies --disable-alt-svc --disable-hsts
	--disable-doh --disable-mime --disable-netrc
	--disable-progress-meter --disable-get-easy-options
	--disable-headers-api --disable-unix-sockets --disable-dnsshuffle
	--disable-libcurl-option --disable-manual
	--without-zlib --without-brotli --without-zstd --without-libidn2
	--without-libpsl --without-nghttp2 --without-ngtcp2 --without-nghttp3
	--without-quiche --without-msh3 --without-hyper --without-libssh2
	--without-libssh --without-wolfssh --without-librtmp --without-gssapi
	--without-libgsasl
	--with-ca-path=/etc/ssl/certs --without-ca-bundle --without-ca-fallback
	--without-zsh-functions-dir --without-fish-functions-dir"

# -- build tools (as tests/deps.sh does for the rest)
missing=""
for p in dpkg-dev gcc make pkg-config libgnutls28-dev; do
	dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	[ "$(id -u)" -eq 0 ] ||
		die "missing Debian packages:$missing (run as root, or install them)"
	say "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	logged apt-install.log apt-get update -qq
	# shellcheck disable=SC2086
	logged apt-install.log apt-get install -y -qq --no-install-recommends $missing
fi

# -- which version
VERSION=${LEAN_CURL_VERSION:-}
if [ -z "$VERSION" ]; then
	for p in libcurl4-gnutls-dev libcurl3-gnutls; do
		VERSION=$(dpkg-query -W -f '${Version}' "$p" 2>/dev/null) || VERSION=""
		[ -n "$VERSION" ] && break
	done
fi
[ -n "$VERSION" ] || die "libcurl-gnutls is not installed: which version to build?"

CFLAGS_CURL=$(cd "$DIR" && dpkg-buildflags --get CFLAGS)
CPPFLAGS_CURL=$(dpkg-buildflags --get CPPFLAGS)
# shellcheck disable=SC2086
KEY=$(printf '%s\n' "curl $VERSION" $CONFIGURE_ARGS "CFLAGS=$CFLAGS_CURL" \
	"CPPFLAGS=$CPPFLAGS_CURL")
if [ -f "$DIR/stamp" ] && [ -f "$DIR/prefix/lib/libcurl.a" ] &&
   [ "$(cat "$DIR/stamp")" = "$KEY" ]; then
	exit 0
fi
start=$(date +%s)
rm -f "$DIR/stamp"

# -- fetch the source package, with apt state of its own
A="$DIR/apt"
# shellcheck disable=SC1091
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
codename=${codename:-bookworm}
mkdir -p "$A/lists/partial" "$A/cache/archives/partial"
cat > "$A/sources.list" <<EOF
deb-src http://deb.debian.org/debian $codename main
deb-src http://deb.debian.org/debian-security $codename-security main
deb-src http://deb.debian.org/debian $codename-updates main
EOF
apt_private() {
	(cd "$A" && apt-get -q \
		-o Dir::Etc::SourceList="$A/sources.list" \
		-o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$A/lists" \
		-o Dir::Cache="$A/cache" \
		-o Debug::NoLocking=1 \
		-o APT::Sandbox::User="$(id -un)" "$@")
}
DSC=$(ls "$A"/curl_"${VERSION#*:}".dsc 2>/dev/null || true)
if [ -z "$DSC" ]; then
	say "fetching Debian's source of curl $VERSION"
	logged apt-source.log apt_private update
	if ! apt_private source --download-only "curl=$VERSION" \
	     >> "$DIR/apt-source.log" 2>&1; then
		# the archive keeps only the newest version of each suite
		say "curl $VERSION is no longer in the archive: taking the newest" \
		    "$codename source instead (WARNING: not the installed version)"
		logged apt-source.log apt_private source --download-only curl
	fi
	# shellcheck disable=SC2012
	DSC=$(ls -t "$A"/curl_*.dsc | head -n 1)
fi
SRCVER=$(sed -n 's/^Version: *//p' "$DSC")

# -- unpack with Debian's patches applied
S="$DIR/src"
rm -rf "$S" "$DIR/prefix"
say "unpacking $(basename "$DSC") (Debian's patches applied)"
logged unpack.log dpkg-source -x "$DSC" "$S"

# -- configure and build lib/ only
say "configuring"
# make's variables (LEAN=1, CFLAGS=... from the command line, the jobserver)
# must not reach curl's own make
unset MAKEFLAGS MFLAGS MAKELEVEL
# shellcheck disable=SC2086
(cd "$S" && logged configure.log ./configure --prefix="$DIR/prefix" \
	$CONFIGURE_ARGS CFLAGS="$CFLAGS_CURL" CPPFLAGS="$CPPFLAGS_CURL")
grep -qE '^ *SSL: .*GnuTLS' "$DIR/configure.log" ||
	die "configure did not pick GnuTLS (see $DIR/configure.log)"
say "building libcurl (make -j$JOBS)"
logged make.log make -C "$S/lib" -j"$JOBS"
logged install.log make -C "$S/lib" install
logged install.log make -C "$S/include" install
logged install.log make -C "$S" install-pkgconfigDATA
grep -E '^ *(SSL|Protocols|Features):' "$DIR/configure.log" |
	sed 's/^ */build-lean-curl:   /'
printf '%s\n' "$KEY" > "$DIR/stamp.tmp"
mv "$DIR/stamp.tmp" "$DIR/stamp"
say "libcurl $SRCVER (static) in $DIR/prefix, $(( $(date +%s) - start )) s"
