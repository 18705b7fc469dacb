# bench/lib.sh - shared set-up for bench/run, bench/burst and bench/profile (bash).
#
# Sourced, not run. Provides: deadlines (limit), timing of one command
# (timed: wall and CPU seconds into $R), dependency installation, a temporary work
# directory $T (removed on exit), a test CA and server certificate, the
# local smarthosts (tests/smarthost.py, loopback only), the outbox and msmtp
# configurations, the test messages, and checks that count what the
# smarthosts received. Every wait is bounded.

BENCH_PKGS="msmtp hyperfine valgrind time openssl ca-certificates python3
python3-aiosmtpd gcc make pkg-config libcurl4-gnutls-dev libgnutls28-dev"

OB=./outbox                 # bench/run measures a copy: $T/bin/outbox
MS=/usr/bin/msmtp
RCPT=rcpt@example.com
SERVER_PIDS=""
BENCH_SHM=""                # set by bench/burst.sh, removed on exit

say() { printf '%s\n' "== $*" >&2; }
die() { printf '%s\n' "bench: FAILED: $*" >&2; exit 1; }

# Every phase gets a deadline on top of the tools' own 30 s timeouts.
limit() {
	local s=$1
	shift
	timeout --foreground --kill-after=10 "$s" "$@"
}

note_cmd() {    # figure, command text (as run, with $T expanded)
	printf '%s\t%s\n' "$1" "$2" >> "$R/commands.tsv"
}

# child_cpu: user+system seconds of all reaped children so far (bash's
# `times`, second line), so that loops can report CPU time next to wall.
# `times` must run in this shell, not in a $(...) subshell.
child_cpu() {
	awk 'NR == 2 {
		n = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
		printf "%.6f\n", n
	}' "$R/times.tmp"
}

# burst NAME N INPUT CMD...: N sequential sends; elapsed seconds to a file.
burst() {
	local name=$1 n=$2 input=$3 i t0 t1 c0 c1
	shift 3
	note_cmd "$name" "for i in \$(seq $n); do ${BURST_SHOW:-$*} < $input || exit 1; done"
	times > "$R/times.tmp"
	c0=$(child_cpu)
	t0=$EPOCHREALTIME
	for ((i = 0; i < n; i++)); do
		"$@" < "$input" || die "$name: send $i exited $?"
	done
	t1=$EPOCHREALTIME
	times > "$R/times.tmp"
	c1=$(child_cpu)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }' > "$R/time-$name.txt"
	awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.6f\n", b - a }' > "$R/cpu-$name.txt"
}

# timed NAME DEADLINE CMD...: one command, elapsed seconds to a file.
timed() {
	local name=$1 s=$2 t0 t1 c0 c1
	shift 2
	note_cmd "$name" "$*"
	times > "$R/times.tmp"
	c0=$(child_cpu)
	t0=$EPOCHREALTIME
	limit "$s" "$@" || die "$name: exited $?"
	t1=$EPOCHREALTIME
	times > "$R/times.tmp"
	c1=$(child_cpu)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }' > "$R/time-$name.txt"
	awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.6f\n", b - a }' > "$R/cpu-$name.txt"
}

# Install the Debian packages in $BENCH_PKGS (and "$@") that are missing.
bench_deps() {
	local p missing=""
	for p in $BENCH_PKGS "$@"; do
		dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing Debian packages:$missing (run as root)"
	say "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update"
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
		die "apt-get install$missing"
}

bench_cleanup() {
	local pid
	for pid in $SERVER_PIDS; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $SERVER_PIDS; do
		wait "$pid" 2>/dev/null || true
	done
	SERVER_PIDS=""
	# bench/burst.sh's queue on tmpfs
	if [ -n "${BENCH_SHM:-}" ] && [ -d "$BENCH_SHM" ]; then
		rm -rf "$BENCH_SHM"
	fi
	if [ -n "${T:-}" ] && [ -d "$T" ]; then
		if [ -n "${BENCH_KEEP:-}" ]; then
			say "kept the work directory $T"
		else
			rm -rf "$T"
		fi
	fi
}

# The work directory, the CA and the certificates.
bench_setup() {
	T=$(mktemp -d /tmp/outbox-bench.XXXXXX) || die "mktemp"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$T/recv-plain" "$T/recv-tls" "$T/spool"
	# outbox spools the message it reads into $TMPDIR (queue off)
	export TMPDIR="$T/spool"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		-subj "/CN=outbox bench CA" -keyout "$T/ca.key" -out "$T/ca.pem" \
		2>/dev/null || die "openssl: CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$T/server.key" -out "$T/server.csr" 2>/dev/null ||
		die "openssl: server key"
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$T/ext"
	openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
		-CAcreateserial -days 2 -extfile "$T/ext" -out "$T/server.pem" \
		2>/dev/null || die "openssl: server certificate"
	# "system store" variant: the whole system bundle plus the test CA
	[ -r /etc/ssl/certs/ca-certificates.crt ] ||
		die "/etc/ssl/certs/ca-certificates.crt missing (ca-certificates)"
	cat /etc/ssl/certs/ca-certificates.crt "$T/ca.pem" > "$T/bundle.pem"
	/usr/bin/python3 "$BENCH_DIR/mkmsg.py" "$T" || die "mkmsg.py"
}

# start_server NAME MODE OUTDIR [extra args]: sets PORT_<NAME>. The
# server is tests/smarthost.py, or $SMARTHOST_PY (bench/countinghost.py).
start_server() {
	local name=$1 mode=$2 outdir=$3 i=0 pid port
	shift 3
	/usr/bin/python3 "${SMARTHOST_PY:-$TOP/tests/smarthost.py}" --mode "$mode" \
		--cert "$T/server.pem" --key "$T/server.key" --outdir "$outdir" "$@" \
		> "$T/$name.ready" 2> "$T/$name.log" &
	pid=$!
	SERVER_PIDS="$SERVER_PIDS $pid"
	while ! grep -q '^READY ' "$T/$name.ready" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 150 ] || ! kill -0 "$pid" 2>/dev/null; then
			cat "$T/$name.log" >&2
			die "smarthost $name did not start"
		fi
		sleep 0.1
	done
	port=$(awk '/^READY/ {print $2; exit}' "$T/$name.ready")
	printf -v "PORT_$name" '%s' "$port"
	echo "$pid" > "$T/$name.pid"
}

# A port on which nothing listens (for the msmtpq "smarthost down" phase).
closed_port() {
	/usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Write the configurations. Both tools: same smarthost, same EHLO name,
# same sender, a log file in $T, 30 s timeouts.
bench_configs() {
	local p=$PORT_plain t=$PORT_tls
	ob_conf() {     # file, then extra lines
		local f=$1
		shift
		{
			printf 'from bench@example.com\ndomain example.com\n'
			printf 'helo bench.example.com\ntimeout 30s\nlog %s\n' "$T/outbox.log"
			printf '%s\n' "$@"
		} > "$f"
		chmod 600 "$f"
	}
	ms_conf() {
		local f=$1
		shift
		{
			printf 'defaults\nsyslog off\nlogfile %s\ntimeout 30\n' "$T/msmtp.log"
			printf 'account default\nhost 127.0.0.1\ndomain bench.example.com\n'
			printf 'from bench@example.com\n'
			printf '%s\n' "$@"
		} > "$f"
		chmod 600 "$f"
	}
	ob_conf "$T/plain.conf" "smarthost 127.0.0.1:$p" "tls off" "queue off"
	ob_conf "$T/queue.conf" "smarthost 127.0.0.1:$p" "tls off" "queue $T/queue"
	ob_conf "$T/tls-ca.conf" "smarthost 127.0.0.1:$t" "tls starttls" \
		"user bench" "password bench-secret" "auth plain" \
		"ca-file $T/ca.pem" "queue off"
	ob_conf "$T/tls-bundle.conf" "smarthost 127.0.0.1:$t" "tls starttls" \
		"user bench" "password bench-secret" "auth plain" \
		"ca-file $T/bundle.pem" "queue off"
	ms_conf "$T/plain.msmtprc" "port $p" "tls off" "auth off"
	ms_conf "$T/tls-ca.msmtprc" "port $t" "tls on" "tls_starttls on" \
		"tls_trust_file $T/ca.pem" "auth plain" "user bench" \
		"password bench-secret"
	ms_conf "$T/tls-bundle.msmtprc" "port $t" "tls on" "tls_starttls on" \
		"tls_trust_file $T/bundle.pem" "auth plain" "user bench" \
		"password bench-secret"
}

bench_servers() {
	start_server plain plain "$T/recv-plain"
	start_server tls starttls "$T/recv-tls" --user bench --password bench-secret
	bench_configs
}

# received DIR: number of messages the smarthost has written there.
received() {
	find "$1" -maxdepth 1 -name '*.eml' | wc -l
}

# expect_received DIR BEFORE COUNT WHAT: die unless exactly COUNT arrived.
expect_received() {
	local now
	now=$(received "$1")
	[ $((now - $2)) -eq "$3" ] ||
		die "$4: the smarthost received $((now - $2)) messages, expected $3"
}

# clear_received DIR: drop what a phase received (disk space).
clear_received() {
	find "$1" -maxdepth 1 -type f \( -name '*.eml' -o -name '*.env' \) -delete
}

# The same message must arrive byte for byte from both tools, through
# each smarthost set-up.
bench_selfcheck() {
	local kind d n a b
	for kind in plain tls-ca tls-bundle; do
		case $kind in
		plain) d="$T/recv-plain" ;;
		*) d="$T/recv-tls" ;;
		esac
		clear_received "$d"
		$OB -C "$T/$kind.conf" "$RCPT" < "$T/msg2k.eml" ||
			die "outbox ($kind) exited $?"
		a=$(find "$d" -maxdepth 1 -name '*.eml')
		$MS -C "$T/$kind.msmtprc" "$RCPT" < "$T/msg2k.eml" ||
			die "msmtp ($kind) exited $?"
		n=$(received "$d")
		[ "$n" -eq 2 ] || die "selfcheck $kind: smarthost received $n, not 2"
		b=$(find "$d" -maxdepth 1 -name '*.eml' ! -path "$a")
		cmp -s "$a" "$b" ||
			die "selfcheck $kind: outbox and msmtp delivered different bytes"
		clear_received "$d"
	done
}
