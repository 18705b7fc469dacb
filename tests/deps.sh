#!/bin/sh
# Installs the Debian packages that building and testing outbox need,
# when they are missing. Needs root (or prints what to install).
set -eu
PKGS="gcc make pkg-config libcurl4-gnutls-dev libgnutls28-dev libcmocka-dev
python3 python3-aiosmtpd python3-pytest openssl curl time"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && { echo "deps: all present"; exit 0; }
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
