# bench/peers-default.sh - sourced by bench/peers (bash): the default
# configuration (STARTTLS + AUTH, the system CA store) and the round trips.
#
# Part A, instructions per send in the default configuration: no ca-file,
# so the system store /etc/ssl/certs/ca-certificates.crt - in this mount
# namespace the real bundle with the run's test CA appended (overlay on
# /etc), so every tool parses the same 145 certificates at the same path
# and the smarthost's certificate chains to a CA of that store. outbox
# (plain and LEAN builds) with its trust-anchor cache cold (the cache file
# removed before the send) and warm (kept from the send before), msmtp with
# `tls_trust_file system`, nullmailer's smtp module with `starttls` (its
# x509cafile default is the same bundle), and dma with STARTTLS (dma checks
# no CA at all: it is listed, not a target).
#
# Part B, round trips per message: bench/delayproxy.py in front of each
# smarthost (10 ms each way); each tool sends through it and directly,
# alternately. Two figures: the proxy's count of replies the client waited
# for (robust to load), and (wall through the proxy - wall direct) / 20 ms.
#
# Needs from bench/peers: T, TOP, RCPT, FROM, DMA, NMS, say, die, and the
# overlay on /etc mounted after peers_tls_prepare. Knobs: PEERS_DEFAULT=0 /
# PEERS_RTT=0 leave a part out; PEERS_CG_RUNS (3) callgrind sends per row,
# PEERS_RTT_RUNS (7) sends per tool, mode and path.

# PORT_<name> are set by start_py (printf -v); STORE_CERTS is read by peers.
# shellcheck disable=SC2154,SC2034,SC2153
true

PEERS_PIDS=""
CG_RUNS=${PEERS_CG_RUNS:-3}
RTT_RUNS=${PEERS_RTT_RUNS:-7}
RTT_DELAY=0.010
SECRET=bench-secret

# Before the overlay is mounted: the test CA, the server certificate, the
# namespace's system store (the real bundle + the test CA) and dma's
# auth.conf, all in the overlay's upper layer or $T/tls.
peers_tls_prepare() {
	mkdir -p "$T/tls" "$T/up/ssl/certs" "$T/recv-tls" "$T/d" "$T/rtt"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
		-subj "/CN=outbox peers CA" -keyout "$T/tls/ca.key" \
		-out "$T/tls/ca.pem" 2>/dev/null || die "openssl: CA"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
		-keyout "$T/tls/server.key" -out "$T/tls/server.csr" 2>/dev/null ||
		die "openssl: server key"
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$T/tls/ext"
	openssl x509 -req -in "$T/tls/server.csr" -CA "$T/tls/ca.pem" \
		-CAkey "$T/tls/ca.key" -CAcreateserial -days 2 \
		-extfile "$T/tls/ext" -out "$T/tls/server.pem" 2>/dev/null ||
		die "openssl: server certificate"
	[ -r /etc/ssl/certs/ca-certificates.crt ] ||
		die "/etc/ssl/certs/ca-certificates.crt missing (ca-certificates)"
	cat /etc/ssl/certs/ca-certificates.crt "$T/tls/ca.pem" \
		> "$T/up/ssl/certs/ca-certificates.crt"
	STORE_CERTS=$(grep -c -- '-----BEGIN CERTIFICATE-----' \
		"$T/up/ssl/certs/ca-certificates.crt")
	printf 'bench|127.0.0.1:%s\n' "$SECRET" > "$T/up/dma/auth.conf"
	chmod 644 "$T/up/dma/auth.conf"   # test credentials; dma runs as mail
	printf '%s\n' "$SECRET" > "$T/d/secret"
	chmod 600 "$T/d/secret"
}

# start_py NAME SCRIPT ARGS...: a Python server that prints "READY <port>";
# the port into PORT_<NAME>.
start_py() {
	local name=$1 pid i=0
	shift
	/usr/bin/python3 "$@" > "$T/$name.ready" 2> "$T/$name.log" &
	pid=$!
	PEERS_PIDS="$PEERS_PIDS $pid"
	while ! grep -q '^READY ' "$T/$name.ready" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 150 ] || ! kill -0 "$pid" 2>/dev/null; then
			cat "$T/$name.log" >&2
			die "$name did not start"
		fi
		sleep 0.1
	done
	printf -v "PORT_$name" '%s' "$(awk '/^READY/ {print $2; exit}' "$T/$name.ready")"
}

peers_tls_stop() {
	local pid
	for pid in $PEERS_PIDS; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in $PEERS_PIDS; do wait "$pid" 2>/dev/null || true; done
	PEERS_PIDS=""
}

# dconf TAG MODE PORT: the configurations of every tool for one smarthost
# address. MODE plain: no TLS, no AUTH (as the plain rows of PEERS.md);
# MODE tls: the default configuration - STARTTLS, AUTH, the system store.
dconf() {
	local tag=$1 mode=$2 port=$3 b
	for b in outbox outbox-lean; do
		{
			printf 'smarthost 127.0.0.1:%s\n' "$port"
			if [ "$mode" = tls ] || [ "$mode" = smtps ]; then
				[ "$mode" = tls ] || printf 'tls smtps\n'
				# README's minimal configuration: STARTTLS (default),
				# system store (no ca-file), the queue on (default; the
				# trust-anchor cache lives there)
				printf 'user bench\npassword-file %s\n' "$T/d/secret"
				printf 'queue %s\n' "$T/q-$b"
			else
				printf 'tls off\nqueue off\n'
			fi
			printf 'helo bench.example.com\ndomain example.com\nlog %s\n' \
				"$T/outbox.log"
		} > "$T/d/$tag.$b.conf"
		chmod 600 "$T/d/$tag.$b.conf"
	done
	{
		printf 'defaults\nsyslog off\nlogfile %s\n' "$T/msmtp.log"
		printf 'account default\nhost 127.0.0.1\nport %s\n' "$port"
		printf 'from %s\ndomain bench.example.com\n' "$FROM"
		if [ "$mode" = tls ]; then
			printf 'tls on\ntls_starttls on\ntls_trust_file system\n'
			printf 'auth on\nuser bench\npassword %s\n' "$SECRET"
		else
			printf 'tls off\nauth off\n'
		fi
	} > "$T/d/$tag.msmtprc"
	chmod 600 "$T/d/$tag.msmtprc"
	{
		printf 'host=127.0.0.1\nport=%s\n' "$port"
		[ "$mode" = tls ] && printf 'starttls\nuser=bench\npass=%s\n' "$SECRET"
		true
	} > "$T/d/$tag.nm"
	{
		printf 'SMARTHOST 127.0.0.1\nPORT %s\nSPOOLDIR %s\n' "$port" "$T/dmaspool"
		printf 'MAILNAME bench.example.com\nNULLCLIENT\n'
		[ "$mode" = tls ] &&
			printf 'AUTHPATH /etc/dma/auth.conf\nSECURETRANSFER\nSTARTTLS\n'
		true
	} > "$T/d/$tag.dma.conf"
}

# dsend TOOL TAG [PREFIX...]: one send of the 2 KB message.
dsend() {
	local tool=$1 tag=$2
	shift 2
	case $tool in
	outbox | outbox-lean)
		"$@" "$T/bin/$tool" -C "$T/d/$tag.$tool.conf" "$RCPT" < "$T/msg2k.eml" ;;
	msmtp) "$@" /usr/bin/msmtp -C "$T/d/$tag.msmtprc" "$RCPT" < "$T/msg2k.eml" ;;
	nullmailer) "$@" "$NMS" < "$T/d/$tag.nm" 3< "$T/msg2k.nm" ;;
	dma)
		# dma reads /etc/dma/dma.conf only (this namespace's overlay)
		cat "$T/d/$tag.dma.conf" > /etc/dma/dma.conf
		"$@" "$DMA" -D -f "$FROM" "$RCPT" < "$T/msg2k.eml" ;;
	esac
}

dshow() {       # TOOL TAG: the command, for the report
	case $1 in
	outbox | outbox-lean) echo "\$T/bin/$1 -C \$T/d/$2.$1.conf $RCPT < \$T/msg2k.eml" ;;
	msmtp) echo "/usr/bin/msmtp -C \$T/d/$2.msmtprc $RCPT < \$T/msg2k.eml" ;;
	nullmailer) echo "\$T/root/usr/lib/nullmailer/smtp < \$T/d/$2.nm 3< \$T/msg2k.nm" ;;
	dma) echo "\$T/root/usr/sbin/dma -D -f $FROM $RCPT < \$T/msg2k.eml   (/etc/dma/dma.conf = \$T/d/$2.dma.conf)" ;;
	esac
}

nrecv() { find "$1" -maxdepth 1 -name '*.eml' | wc -l; }

# cg1 TOOL TAG RECVDIR NAME: one send under callgrind -> "total ldso"
cg1() {
	local tool=$1 tag=$2 dir=$3 name=$4 b f tot=0 ld=0 a c as=""
	rm -f "$T/cg/$name".*
	b=$(nrecv "$dir")
	if [ "$tool" = dma ]; then
		as="setpriv --reuid=mail --regid=mail --clear-groups"
		chmod 1777 "$T/cg" "$T/spool"
	fi
	# shellcheck disable=SC2086
	dsend "$tool" "$tag" timeout --kill-after=10 120 $as valgrind --tool=callgrind \
		--trace-children=yes --vgdb=no --callgrind-out-file="$T/cg/$name.%p" \
		> /dev/null 2>> "$T/cg/$name.log" || die "$name under callgrind"
	[ $(( $(nrecv "$dir") - b )) -eq 1 ] || die "$name under callgrind: not received"
	for f in "$T/cg/$name".[0-9]*; do
		callgrind_annotate --inclusive=no --threshold=100 "$f" > "$f.ann"
		a=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' "$f.ann")
		c=$(awk '/ld-linux-x86-64\.so\.2\]$/ {gsub(",", "", $1); s += $1} END {print s + 0}' "$f.ann")
		tot=$((tot + a)); ld=$((ld + c))
	done
	echo "$tot $ld"
}

# Where a send's instructions go: inclusive Ir of a few functions in the
# callgrind files of NAME (the last send of that row), summed over its
# processes; one line "NAME FUNC IR" each into $T/default-where.tsv.
WHERE_FUNCS="gnutls_certificate_set_x509_trust_file gnutls_certificate_set_x509_system_trust
trust_learn gnutls_x509_trust_list_deinit gnutls_handshake SSL_connect
gnutls_certificate_verify_peers2 gnutls_certificate_verify_peers3 curl_global_init _dl_start"
where_ir() {
	local name=$1 f fn
	for fn in $WHERE_FUNCS; do
		for f in "$T/cg/$name".[0-9]*; do
			case $f in *.ann) continue ;; esac
			callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null |
				awk -v fn="$fn" '$0 ~ ("[:]" fn "( |$)") && $1 ~ /^[0-9,]+$/ {
					gsub(",", "", $1); print $1; exit }'
		done | awk -v n="$name" -v fn="$fn" '{ s += $1 } END { printf "%s\t%s\t%d\n", n, fn, s }'
	done >> "$T/default-where.tsv"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Part A.
peers_default_ir() {
	local tool k tot ld cache rows="$T/default-ir.tsv" b
	: > "$rows"
	: > "$T/default-where.tsv"
	: > "$T/default-cmds.txt"
	for tool in outbox outbox-lean msmtp nullmailer dma; do
		b=$(nrecv "$T/recv-tls")
		if ! dsend "$tool" tls-d > "$T/default-$tool.out" 2>&1 ||
			[ $(( $(nrecv "$T/recv-tls") - b )) -ne 1 ]; then
			die "$tool (default configuration) did not deliver: $(head -c 300 "$T/default-$tool.out")"
		fi
		say "default configuration: $tool delivered; callgrind x $CG_RUNS"
		dshow "$tool" tls-d >> "$T/default-cmds.txt"
		case $tool in
		outbox | outbox-lean)
			cache="$T/q-$tool/trust-127.0.0.1-$PORT_tls"
			[ -f "$cache" ] || die "$tool: no trust-anchor cache after a send"
			for ((k = 1; k <= CG_RUNS; k++)); do
				rm -f "$cache"
				cg1 "$tool" tls-d "$T/recv-tls" "$tool-cold" > "$T/cg1.out" || die "$tool-cold under callgrind"
				read -r tot ld < "$T/cg1.out"
				[ -f "$cache" ] || die "$tool: the cold send wrote no cache"
				printf '%s\t%s\t%s\t%s\n' "$tool" cold "$tot" "$ld" >> "$rows"
				cg1 "$tool" tls-d "$T/recv-tls" "$tool-warm" > "$T/cg1.out" || die "$tool-warm under callgrind"
				read -r tot ld < "$T/cg1.out"
				printf '%s\t%s\t%s\t%s\n' "$tool" warm "$tot" "$ld" >> "$rows"
			done
			where_ir "$tool-cold"
			where_ir "$tool-warm"
			# the warm sends used the cache: --check says so
			"$T/bin/$tool" -C "$T/d/tls-d.$tool.conf" --check > "$T/check-$tool.txt" 2>&1 ||
				die "$tool --check: $(cat "$T/check-$tool.txt")"
			grep -q 'trust: *cached anchors' "$T/check-$tool.txt" ||
				die "$tool --check: the cache is not used: $(grep trust: "$T/check-$tool.txt")"
			grep '^ *trust:' "$T/check-$tool.txt" | sed "s|$T|\$T|g" > "$T/check-$tool.trust"
			;;
		*)
			for ((k = 1; k <= CG_RUNS; k++)); do
				cg1 "$tool" tls-d "$T/recv-tls" "$tool-sys" > "$T/cg1.out" || die "$tool-sys under callgrind"
				read -r tot ld < "$T/cg1.out"
				printf '%s\t%s\t%s\t%s\n' "$tool" system "$tot" "$ld" >> "$rows"
			done
			where_ir "$tool-sys"
			;;
		esac
	done
}

# rtt1 TOOL MODE: RTT_RUNS sends through the proxy and as many directly,
# alternately (after one warm-up of each), into $T/rtt/TOOL-MODE.tsv:
# "direct_s proxied_s waits unwaited client_runs late_s" per pair.
rtt1() {
	local tool=$1 mode=$2 dir stats k n0 n1 i t0 t1 t2 t3 line
	case $mode in
	plain) dir=$T/recv; stats=$T/rtt/plain.stats ;;
	tls) dir=$T/recv-tls; stats=$T/rtt/tls.stats ;;
	smtps) dir=$T/recv-smtps; stats=$T/rtt/smtps.stats ;;
	esac
	: > "$T/rtt/$tool-$mode.tsv"
	dsend "$tool" "$mode-d" > /dev/null 2>&1 || die "$tool $mode direct"
	dsend "$tool" "$mode-p" > /dev/null 2>&1 || die "$tool $mode via the proxy"
	for ((k = 1; k <= RTT_RUNS; k++)); do
		n0=$(nrecv "$dir")
		t0=$EPOCHREALTIME
		dsend "$tool" "$mode-d" > /dev/null 2>&1 || die "$tool $mode direct"
		t1=$EPOCHREALTIME
		# the proxy writes a connection's line when both sides have ended
		i=0
		while [ "$(wc -l < "$stats")" -lt "$k" ]; do
			i=$((i + 1)); [ $i -le 100 ] || die "$tool $mode: no proxy record"
			sleep 0.05
		done
		t2=$EPOCHREALTIME
		dsend "$tool" "$mode-p" > /dev/null 2>&1 || die "$tool $mode via the proxy"
		t3=$EPOCHREALTIME
		i=0
		while [ "$(wc -l < "$stats")" -lt $((k + 1)) ]; do
			i=$((i + 1)); [ $i -le 100 ] || die "$tool $mode: no proxy record"
			sleep 0.05
		done
		n1=$(nrecv "$dir")
		[ $((n1 - n0)) -eq 2 ] || die "$tool $mode: received $((n1 - n0)), not 2"
		[ "$(wc -l < "$stats")" -eq $((k + 1)) ] ||
			die "$tool $mode: more than one connection per send"
		line=$(tail -n 1 "$stats")
		/usr/bin/python3 -c 'import json, sys
r = json.loads(sys.argv[1])
print("%.6f\t%.6f\t%d\t%d\t%d\t%.6f" % (float(sys.argv[3]) - float(sys.argv[2]),
      float(sys.argv[5]) - float(sys.argv[4]), r["waits"], r["unwaited"],
      r["client_runs"], r["late"]))' "$line" "$t0" "$t1" "$t2" "$t3" >> "$T/rtt/$tool-$mode.tsv"
	done
}

# Part B.
peers_rtt() {
	local tool mode
	for mode in plain tls; do
		for tool in outbox msmtp nullmailer dma; do
			say "round trips: $tool, $mode, $RTT_RUNS x (direct, via the proxy)"
			# each tool's own proxy record file: one line per connection
			: > "$T/rtt/$mode.stats"
			rtt1 "$tool" "$mode"
			dshow "$tool" "$mode-p" > "$T/rtt/$tool-$mode.cmd"
		done
	done
	# not in the issue: what implicit TLS (port 465's way) would save
	say "round trips: outbox, implicit TLS (tls smtps)"
	: > "$T/rtt/smtps.stats"
	rtt1 outbox smtps
	dshow outbox smtps-p > "$T/rtt/outbox-smtps.cmd"
}

# Everything of this file, called by bench/peers after its plain rows.
peers_default_all() {
	start_py tls "$TOP/tests/smarthost.py" --mode starttls --port 0 \
		--cert "$T/tls/server.pem" --key "$T/tls/server.key" \
		--user bench --password "$SECRET" --outdir "$T/recv-tls" ${PIPE_OPT:+"$PIPE_OPT"}
	mkdir -p "$T/recv-smtps"
	start_py smtps "$TOP/bench/smtpshost.py" --mode smtps --port 0 \
		--cert "$T/tls/server.pem" --key "$T/tls/server.key" \
		--user bench --password "$SECRET" --outdir "$T/recv-smtps" \
		${PIPE_OPT:+"$PIPE_OPT"}
	start_py pxsmtps "$TOP/bench/delayproxy.py" --upstream "$PORT_smtps" \
		--delay "$RTT_DELAY" --connect-delay "$RTT_DELAY" --stats "$T/rtt/smtps.stats"
	start_py pxplain "$TOP/bench/delayproxy.py" --upstream "$PORT" \
		--delay "$RTT_DELAY" --connect-delay "$RTT_DELAY" --stats "$T/rtt/plain.stats"
	start_py pxtls "$TOP/bench/delayproxy.py" --upstream "$PORT_tls" \
		--delay "$RTT_DELAY" --connect-delay "$RTT_DELAY" --stats "$T/rtt/tls.stats"
	mkdir -p "$T/q-outbox" "$T/q-outbox-lean"
	chmod 700 "$T/q-outbox" "$T/q-outbox-lean"
	dconf tls-d tls "$PORT_tls"
	dconf tls-p tls "$PORT_pxtls"
	dconf plain-d plain "$PORT"
	dconf plain-p plain "$PORT_pxplain"
	dconf smtps-d smtps "$PORT_smtps"
	dconf smtps-p smtps "$PORT_pxsmtps"
	say "TLS smarthost on 127.0.0.1:$PORT_tls; delaying proxies on $PORT_pxplain (plain), $PORT_pxtls (STARTTLS)"
	[ "${PEERS_DEFAULT:-1}" = 0 ] || peers_default_ir
	[ "${PEERS_RTT:-1}" = 0 ] || peers_rtt
	peers_tls_stop
}
