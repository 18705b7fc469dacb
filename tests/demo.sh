#!/bin/sh
# make demo: a throwaway local smarthost (STARTTLS + AUTH, CA made now),
# one message sent through ./outbox, shown as the smarthost received it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT INT TERM

echo "== a CA and a certificate for localhost, made for this run"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=outbox demo CA" \
	-keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
	-keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$dir/ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
	-CAcreateserial -days 1 -extfile "$dir/ext" -out "$dir/server.pem" 2>/dev/null

echo "== starting the smarthost (aiosmtpd, STARTTLS required, AUTH required)"
mkdir "$dir/received"
/usr/bin/python3 "$top/tests/smarthost.py" --mode starttls \
	--cert "$dir/server.pem" --key "$dir/server.key" \
	--user demo --password demo-secret --outdir "$dir/received" \
	> "$dir/ready" 2>"$dir/server.log" &
pid=$!
i=0
while ! grep -q READY "$dir/ready" 2>/dev/null; do
	i=$((i + 1)); [ $i -gt 100 ] && { echo "smarthost did not start" >&2; cat "$dir/server.log" >&2; exit 1; }
	sleep 0.1
done
port=$(awk '/READY/ {print $2}' "$dir/ready")

cat > "$dir/outbox.conf" <<CONF
smarthost 127.0.0.1:$port
tls starttls
user demo
password demo-secret
ca-file $dir/ca.pem
domain example.com
queue off
log stderr
CONF
chmod 600 "$dir/outbox.conf"
echo "== config:"; sed 's/^password .*/password (hidden)/' "$dir/outbox.conf"

echo "== sending: printf 'Subject: hi ...' | outbox -C outbox.conf -f me@example.com you@example.com"
printf 'Subject: hello from outbox\n\nThis message went through STARTTLS and AUTH.\n' |
	"$top/outbox" -C "$dir/outbox.conf" -f me@example.com you@example.com
echo "== outbox exited $?; the smarthost received:"
cat "$dir/received/1.env"
cat "$dir/received/1.eml"
echo
echo "== demo done"
