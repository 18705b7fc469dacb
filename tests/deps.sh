#!/bin/sh
# Installs the Debian packages that building and testing outbox need,
# when they are missing. Needs root (or prints what to install).
# clang and its libFuzzer runtime run the fuzz targets' regression pass
# (and make fuzz-smoke), cppcheck make lint, dpkg-dev make LEAN=1;
# python3-prometheus-client parses the metrics file in test_monitoring.py.
#
# The client-compatibility tests (tests/integration/test_clients.py,
# test_postfix.py) drive real programs that hand mail to sendmail: mail(1)
# from bsd-mailx and mailutils, git send-email (which needs Mail::Address
# from libmailtools-perl), PHP's mail(), and a real
# Postfix (with Cyrus SASL's sasldb tools) as the smarthost. The mail
# clients depend on "default-mta | mail-transport-agent": Postfix is
# installed first, with debconf's "No configuration" (no main.cf, so no
# service is set up), so that apt does not pull in exim4 for them. The
# tests never touch the system Postfix: they run their own instance with a
# config directory under the test's temporary directory.
set -eu
PKGS="gcc make pkg-config libcurl4-gnutls-dev libgnutls28-dev libidn2-dev libcmocka-dev
python3 python3-aiosmtpd python3-pytest python3-prometheus-client openssl
curl time
clang libclang-rt-14-dev cppcheck dpkg-dev strace"
MTA_PKGS="postfix sasl2-bin libsasl2-modules"
CLIENT_PKGS="bsd-mailx mailutils git git-email libmailtools-perl php-cli"

missing_of() {
	out=""
	for p in "$@"; do
		if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null |
		     grep -q 'ok installed'; then
			out="$out $p"
		fi
	done
	echo "$out"
}

# shellcheck disable=SC2086
missing_mta=$(missing_of $MTA_PKGS)
# shellcheck disable=SC2086
missing=$(missing_of $PKGS $CLIENT_PKGS)
if [ -z "$missing_mta$missing" ]; then
	echo "deps: all present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing_mta$missing" \
	     "(run as root, or install them)" >&2
	exit 1
fi
echo "deps: installing$missing_mta$missing"
export DEBIAN_FRONTEND=noninteractive
errlog=$(mktemp)
trap 'rm -f "$errlog"' EXIT
# apt's chatter (debconf notes included) is shown only when it fails.
quiet() {
	"$@" >/dev/null 2>"$errlog" || { cat "$errlog" >&2; return 1; }
}
quiet apt-get update -qq
if [ -n "$missing_mta" ]; then
	echo "postfix postfix/main_mailer_type select No configuration" |
	    debconf-set-selections
	# shellcheck disable=SC2086
	quiet apt-get install -y -qq --no-install-recommends $missing_mta
fi
if [ -n "$missing" ]; then
	# shellcheck disable=SC2086
	quiet apt-get install -y -qq --no-install-recommends $missing
fi
