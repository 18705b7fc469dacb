# bench/burst.sh - figures 7 and 8, sourced by bench/run and bench/burst
# shellcheck shell=bash
# (bash, after bench/lib.sh and bench_setup).
#
#   7. Burst: BURST_N messages from BURST_SENDERS parallel senders over
#      STARTTLS+AUTH, outbox (default max-connections, queue on) and
#      msmtp, each against a fresh count at bench/countinghost.py (the
#      tests/smarthost.py server that also counts connections, TLS
#      handshakes, logins and the most connections open at once).
#   8. Queue flush against a C sink: `outbox -q` of FLUSH_N queued
#      messages and Postfix's `smtp-source -d` sending as many messages of
#      the same bytes, alternately, FLUSH_RUNS times each, to Postfix's
#      smtp-sink over plain SMTP.
#
# Raw results go to $R/burst/; bench/burst_report.py turns them into the
# RESULTS.md section. Needs from the caller: $T, $R, $OB, $MS, $RCPT,
# $T/msg2k.eml, $T/ca.pem and the server certificate (bench_setup), and
# the functions of lib.sh. Any failed send, a wrong count at a server or a
# message left in a queue stops the run (die); no timing is asserted.

BURST_N=${BENCH_BURST_N:-1000}
BURST_SENDERS=${BENCH_BURST_SENDERS:-50}
BURST_IDLE=${BENCH_BURST_IDLE:-15}      # s without a new message: stop waiting
BURST_WAIT=${BENCH_BURST_WAIT:-600}     # s at most, senders and carriers
FLUSH_N=${BENCH_FLUSH_N:-1000}
FLUSH_RUNS=${BENCH_FLUSH_RUNS:-3}
TMPFS=${BENCH_TMPFS:-1}     # also outbox with its queue on tmpfs (no fsync cost)
SMTP_SINK=/usr/sbin/smtp-sink
SMTP_SOURCE=/usr/sbin/smtp-source

# Postfix brings smtp-sink and smtp-source. Installed the way
# tests/deps.sh does it: "No configuration", so that no system Postfix is
# set up or started (these figures run their own smtp-sink only).
burst_deps() {
	[ "$FLUSH_N" -gt 0 ] || return 0
	if ! dpkg-query -W -f '${Status}' postfix 2>/dev/null | grep -q 'ok installed'; then
		[ "$(id -u)" -eq 0 ] || die "missing Debian package postfix (run as root)"
		echo "postfix postfix/main_mailer_type select No configuration" |
			debconf-set-selections || die "debconf-set-selections"
	fi
	bench_deps postfix
	[ -x "$SMTP_SINK" ] && [ -x "$SMTP_SOURCE" ] || die "no $SMTP_SINK or $SMTP_SOURCE"
}

burst_meta() {  # key=value lines for burst_report.py (the first call)
	if [ -s "$RB/meta.txt" ]; then
		echo "$1" >> "$RB/meta.txt"
		return
	fi
	{
		echo "burst_n=$BURST_N"
		echo "burst_senders=$BURST_SENDERS"
		echo "burst_idle=$BURST_IDLE"
		echo "burst_wait=$BURST_WAIT"
		echo "flush_n=$FLUSH_N"
		echo "flush_runs=$FLUSH_RUNS"
		echo "tmpfs=$TMPFS"
		echo "postfix_pkg=$(dpkg-query -W -f '${Version}' postfix 2>/dev/null || echo none)"
		echo "msmtp_pkg=$(dpkg-query -W -f '${Version}' msmtp)"
		echo "cores=$(nproc)"
		echo "nice=$(nice)"
		echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
		echo "git=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)"
		echo "git_dirty=$(git -C "$TOP" status --porcelain -- src Makefile 2>/dev/null | wc -l)"
		echo "outbox_sha=$(sha256sum "$OB" | cut -c1-12)"
		echo "$1"
	} >> "$RB/meta.txt"
}

# ---------------------------------------------------------------------
# figure 7: the burst

# srv_stats FILE: the counting server's counters, now, into FILE (JSON).
srv_stats() {
	local i=0 pid
	pid=$(cat "$T/burst.pid")
	rm -f "$RB/server.json"
	kill -USR1 "$pid" || die "the counting smarthost is gone"
	while [ ! -s "$RB/server.json" ]; do
		i=$((i + 1))
		[ $i -le 100 ] || die "the counting smarthost wrote no counters"
		sleep 0.05
	done
	cp "$RB/server.json" "$1"
}

srv_cpu() {     # user+system CPU seconds of the counting smarthost so far
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' \
		"/proc/$(cat "$T/burst.pid")/stat"
}

srv_get() {     # FILE KEY: one counter
	/usr/bin/python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print("" if v is None else v)' "$1" "$2"
}

# srv_quiet: wait (bounded) until the counting server has no connection
# open, e.g. outbox's detached carriers have closed theirs.
srv_quiet() {
	local i=0
	while :; do
		srv_stats "$RB/quiet.json"
		[ "$(srv_get "$RB/quiet.json" live)" -eq 0 ] && return 0
		i=$((i + 1))
		[ $i -le 600 ] || die "figure 7: connections still open at the smarthost after 60 s"
		sleep 0.1
	done
}

# burst_tool NAME QDIR CMD...: BURST_N sends of msg2k.eml by
# BURST_SENDERS parallel loops (bench/senders.py, which also waits for
# the processes they leave running, within BURST_WAIT); then, should
# some be missing, wait until the smarthost has all of them (or
# BURST_IDLE seconds pass without a new one); with a queue directory QDIR (outbox):
# one `outbox -q` for what is left, and outbox's log lines of the figure
# kept in $RB/fig7-NAME.log.
burst_tool() {
	local name=$1 qdir=$2 per n0 n last now quiet_since got left log0=0
	shift 2
	local kv="$RB/fig7-$name.txt" fail="$RB/fig7-$name.fail"
	: > "$fail"
	: > "$kv"
	srv_quiet
	clear_received "$T/recv-burst"
	kill -USR2 "$(cat "$T/burst.pid")"      # zero the counters
	sleep 0.2
	srv_stats "$RB/fig7-$name-zero.json"
	[ "$(srv_get "$RB/fig7-$name-zero.json" connections)" -eq 0 ] ||
		die "figure 7: the counters did not reset"
	n0=$(received "$T/recv-burst")
	per=$((BURST_N / BURST_SENDERS))
	note_cmd "fig7-$name" "# $BURST_SENDERS loops at once, each: for i in \$(seq $per); do $* < $T/msg2k.eml || exit 1; done"
	echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$kv"
	[ -f "$T/outbox.log" ] && log0=$(stat -c %s "$T/outbox.log")
	srv_cpu > "$RB/fig7-$name-server-cpu0.txt"
	# bench/senders.py: the loops, and the wait for every process they
	# leave behind (outbox's detached carriers), CPU time of all of them
	/usr/bin/python3 "$BENCH_DIR/senders.py" --senders "$BURST_SENDERS" \
		--messages "$BURST_N" --input "$T/msg2k.eml" --deadline "$BURST_WAIT" \
		--out "$RB/fig7-$name.json" ${qdir:+--queue "$qdir"} \
		--recv "$T/recv-burst" -- "$@" ||
		die "figure 7 ($name): senders.py exited $?"
	srv_cpu > "$RB/fig7-$name-server-cpu1.txt"
	got=$(($(received "$T/recv-burst") - n0))
	/usr/bin/python3 - "$RB/fig7-$name.json" "$fail" <<-'EOF' || die "figure 7 ($name): senders.py's results"
		import json, sys
		r = json.load(open(sys.argv[1]))
		with open(sys.argv[2], "w") as f:
		    for x in r["failed"]:
		        print(x, file=f)
		    for x in r["loops_failed"]:
		        print("a sender loop exited %s" % x, file=f)
		    if r["deadline_hit"]:
		        print("the deadline passed", file=f)
	EOF
	[ ! -s "$fail" ] || { head -n 5 "$fail" >&2; die "figure 7 ($name): $(wc -l < "$fail") sends failed"; }
	# should some be missing: until all arrived, or nothing new for BURST_IDLE s
	last=$got
	quiet_since=$EPOCHREALTIME
	while [ "$got" -lt "$BURST_N" ]; do
		sleep 0.05
		got=$(($(received "$T/recv-burst") - n0))
		now=$EPOCHREALTIME
		if [ "$got" -ne "$last" ]; then
			last=$got
			quiet_since=$now
		fi
		awk -v a="$quiet_since" -v b="$now" -v i="$BURST_IDLE" 'BEGIN { exit !(b - a > i) }' && break
	done
	echo "wait_end=$EPOCHREALTIME" >> "$kv"
	echo "received_after_wait=$got" >> "$kv"
	srv_quiet
	srv_stats "$RB/fig7-$name-server.json"
	left=0
	[ -n "$qdir" ] && [ -d "$qdir/msg" ] && left=$(find "$qdir/msg" -name '*.env' | wc -l)
	echo "queued_after_wait=$left" >> "$kv"
	if [ -n "$qdir" ] && [ "$got" -lt "$BURST_N" ]; then
		say "figure 7 ($name): $((BURST_N - got)) not delivered by the carriers ($left queued): one outbox -q"
		# the configuration: the one the senders ran with (after -C)
		timed "fig7-$name-q" 600 "$1" -C "$3" -q
		srv_quiet
		srv_stats "$RB/fig7-$name-server-after-q.json"
		got=$(($(received "$T/recv-burst") - n0))
		echo "received_after_q=$got" >> "$kv"
	fi
	echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$kv"
	[ -z "$qdir" ] || tail -c +$((log0 + 1)) "$T/outbox.log" > "$RB/fig7-$name.log"
	[ "$got" -eq "$BURST_N" ] ||
		die "figure 7 ($name): the smarthost received $got messages, expected $BURST_N"
	# every copy arrived whole: one size
	[ "$(find "$T/recv-burst" -name '*.eml' -printf '%s\n' | sort -u | wc -l)" -eq 1 ] ||
		die "figure 7 ($name): the copies that arrived differ in size"
	if [ -n "$qdir" ]; then
		n=$(find "$qdir/msg" "$qdir/failed" -type f | wc -l)
		[ "$n" -eq 0 ] || die "figure 7 ($name): $n files left in outbox's queue"
	fi
	clear_received "$T/recv-burst"
}

fig7() {
	[ "$BURST_N" -gt 0 ] || return 0
	local port
	mkdir -p "$T/recv-burst"
	SMARTHOST_PY="$BENCH_DIR/countinghost.py" start_server burst starttls \
		"$T/recv-burst" --user bench --password bench-secret --stats "$RB/server.json"
	port=$PORT_burst
	# outbox: the TLS configuration of figure 2a with the queue on and
	# nothing else changed (max-connections: the default, 2)
	sed -e "s|^smarthost .*|smarthost 127.0.0.1:$port|" \
		-e "s|^queue .*|queue $T/queue-burst|" "$T/tls-ca.conf" > "$T/burst.conf"
	sed -e "s|^port .*|port $port|" "$T/tls-ca.msmtprc" > "$T/burst.msmtprc"
	chmod 600 "$T/burst.conf" "$T/burst.msmtprc"
	grep -q '^max-connections' "$T/burst.conf" && die "burst.conf sets max-connections"
	say "figure 7: $BURST_N messages from $BURST_SENDERS parallel outbox senders (STARTTLS+AUTH, queue on)"
	burst_tool outbox "$T/queue-burst" "$OB" -C "$T/burst.conf" "$RCPT"
	say "figure 7: $BURST_N messages from $BURST_SENDERS parallel msmtp senders (STARTTLS+AUTH)"
	burst_tool msmtp "" "$MS" -C "$T/burst.msmtprc" "$RCPT"
	if [ "$TMPFS" != 0 ]; then
		say "figure 7: the same outbox burst with the queue on tmpfs ($BENCH_SHM)"
		sed -e "s|^queue .*|queue $BENCH_SHM/queue-burst|" "$T/burst.conf" > "$T/burst-tmpfs.conf"
		chmod 600 "$T/burst-tmpfs.conf"
		burst_tool outbox-tmpfs "$BENCH_SHM/queue-burst" "$OB" -C "$T/burst-tmpfs.conf" "$RCPT"
	fi
	echo yes > "$RB/fig7.done"
}

# ---------------------------------------------------------------------
# figure 8: queue flush against smtp-sink

SINK_PID=""
sink_start() {  # NAME [options]: smtp-sink on a free loopback port: SINK_PORT
	local name=$1 i=0
	shift
	SINK_PORT=$(closed_port)
	"$SMTP_SINK" -c "$@" "127.0.0.1:$SINK_PORT" 256 > "$RB/$name.out" 2> "$RB/$name.err" &
	SINK_PID=$!
	SERVER_PIDS="$SERVER_PIDS $SINK_PID"
	# listening? (a probe session counts as a session, never as a message)
	until (exec 9<> "/dev/tcp/127.0.0.1/$SINK_PORT") 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$SINK_PID" 2>/dev/null; then
			cat "$RB/$name.err" >&2
			die "smtp-sink did not start"
		fi
		sleep 0.1
	done
}
sink_stop() {
	local p keep=""
	kill "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	for p in $SERVER_PIDS; do
		[ "$p" = "$SINK_PID" ] || keep="$keep $p"
	done
	SERVER_PIDS=$keep       # bench_cleanup must not kill a reused pid
	SINK_PID=""
}
# sink_count NAME: messages smtp-sink has taken so far (its -c counter
# line, "sess=S quit=Q mesg=M", rewritten with \r after each "." and
# each session's end)
sink_count() {
	local line
	line=$(tr '\r' '\n' < "$RB/$1.out" | grep 'mesg=' | tail -n 1)
	echo "${line##*mesg=}" | grep -Eo '^[0-9]+' || echo 0
}
# sink_expect NAME BEFORE N WHAT: wait (bounded) until N more messages
sink_expect() {
	local i=0 n
	while :; do
		n=$(sink_count "$1")
		[ $((n - $2)) -eq "$3" ] && return 0
		i=$((i + 1))
		[ $i -le 100 ] || die "$4: smtp-sink took $((n - $2)) messages, expected $3"
		sleep 0.05
	done
}

# smtp-source: N messages over one connection (-d -s 1), the bytes of
# msg2k.eml (-F: sent as they are, CRLF line ends, dots doubled).
src_args() {    # N
	SRC=("$SMTP_SOURCE" -d -m "$1" -s 1 -F "$T/msg2k.eml" -f bench@example.com
		-t "$RCPT" -M bench.example.com "127.0.0.1:$SINK_PORT")
}

fig8() {
	[ "$FLUSH_N" -gt 0 ] || return 0
	local i n0 a b nq
	# Self-check: both send the same bytes (smtp-sink -d dumps each
	# transaction; compared from the message's first header line on).
	mkdir -m 700 "$T/sinkdump"
	sink_start sink-check -u root -d "$T/sinkdump/m."
	sed -e "s|^smarthost .*|smarthost 127.0.0.1:$SINK_PORT|" "$T/plain.conf" > "$T/sink-direct.conf"
	chmod 600 "$T/sink-direct.conf"
	"$OB" -C "$T/sink-direct.conf" "$RCPT" < "$T/msg2k.eml" || die "figure 8 self-check: outbox exited $?"
	sink_expect sink-check 0 1 "figure 8 self-check (outbox)"
	a=$(find "$T/sinkdump" -type f)
	src_args 1
	"${SRC[@]}" || die "figure 8 self-check: smtp-source exited $?"
	sink_expect sink-check 0 2 "figure 8 self-check (smtp-source)"
	b=$(find "$T/sinkdump" -type f ! -path "$a")
	sed -n '/^From: Bench/,$p' "$a" > "$RB/fig8-check-outbox.eml"
	sed -n '/^From: Bench/,$p' "$b" > "$RB/fig8-check-smtp-source.eml"
	# smtp-source -F sends one empty line more after the file (2 bytes)
	sed '$ { /^$/ d }' "$RB/fig8-check-smtp-source.eml" > "$RB/fig8-check-smtp-source-1.eml"
	[ -s "$RB/fig8-check-outbox.eml" ] &&
		cmp -s "$RB/fig8-check-outbox.eml" "$RB/fig8-check-smtp-source-1.eml" ||
		die "figure 8 self-check: outbox and smtp-source sent different bytes to smtp-sink"
	cmp -s "$RB/fig8-check-outbox.eml" "$RB/fig8-check-smtp-source.eml" ||
		echo yes > "$RB/fig8-check-extra-line.txt"
	stat -c %s "$RB/fig8-check-outbox.eml" > "$RB/fig8-check-bytes.txt"
	sink_stop
	rm -rf "$T/sinkdump"

	sink_start sink -u nobody
	sed -e "s|^smarthost .*|smarthost 127.0.0.1:$SINK_PORT|" \
		-e "s|^queue .*|queue $T/queue-flush|" "$T/queue.conf" > "$T/flush.conf"
	sed -e "s|^queue .*|queue $BENCH_SHM/queue-flush|" "$T/flush.conf" > "$T/flush-tmpfs.conf"
	chmod 600 "$T/flush.conf" "$T/flush-tmpfs.conf"
	echo "load_before=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RB/fig8.txt"
	for ((i = 1; i <= FLUSH_RUNS; i++)); do
		say "figure 8, run $i of $FLUSH_RUNS: smtp-source -d, $FLUSH_N messages to smtp-sink"
		n0=$(sink_count sink)
		src_args "$FLUSH_N"
		timed "fig8-smtp-source-$i" 600 "${SRC[@]}"
		sink_expect sink "$n0" "$FLUSH_N" "figure 8 (smtp-source run $i)"
		say "figure 8, run $i of $FLUSH_RUNS: $FLUSH_N queued with outbox -odq, then one outbox -q"
		n0=$(sink_count sink)
		burst "fig8-outbox-odq-$i" "$FLUSH_N" "$T/msg2k.eml" "$OB" -C "$T/flush.conf" -odq "$RCPT"
		nq=$(find "$T/queue-flush/msg" -name '*.env' | wc -l)
		[ "$nq" -eq "$FLUSH_N" ] || die "figure 8: $nq messages queued, expected $FLUSH_N"
		[ "$(sink_count sink)" -eq "$n0" ] || die "figure 8: -odq sent something"
		timed "fig8-outbox-q-$i" 600 "$OB" -C "$T/flush.conf" -q
		sink_expect sink "$n0" "$FLUSH_N" "figure 8 (outbox -q run $i)"
		nq=$(find "$T/queue-flush/msg" "$T/queue-flush/failed" -type f | wc -l)
		[ "$nq" -eq 0 ] || die "figure 8: $nq files left in the queue after outbox -q"
		[ "$TMPFS" != 0 ] || continue
		say "figure 8, run $i of $FLUSH_RUNS: the same with the queue on tmpfs"
		n0=$(sink_count sink)
		burst "fig8-tmpfs-odq-$i" "$FLUSH_N" "$T/msg2k.eml" "$OB" -C "$T/flush-tmpfs.conf" -odq "$RCPT"
		[ "$(sink_count sink)" -eq "$n0" ] || die "figure 8 (tmpfs): -odq sent something"
		timed "fig8-tmpfs-q-$i" 600 "$OB" -C "$T/flush-tmpfs.conf" -q
		sink_expect sink "$n0" "$FLUSH_N" "figure 8 (outbox -q, tmpfs, run $i)"
		nq=$(find "$BENCH_SHM/queue-flush/msg" "$BENCH_SHM/queue-flush/failed" -type f | wc -l)
		[ "$nq" -eq 0 ] || die "figure 8: $nq files left in the tmpfs queue after outbox -q"
	done
	echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$RB/fig8.txt"
	# Where outbox's flush goes beyond the SMTP exchange: system calls of
	# one more flush (strace -f -c: the run and its removal thread; not
	# timed, not in the figures).
	if command -v strace > /dev/null; then
		n0=$(sink_count sink)
		for ((i = 0; i < FLUSH_N; i++)); do
			"$OB" -C "$T/flush.conf" -odq "$RCPT" < "$T/msg2k.eml" || die "figure 8 (strace): -odq exited $?"
		done
		limit 600 strace -f -c -w -o "$RB/fig8-strace.txt" "$OB" -C "$T/flush.conf" -q ||
			die "figure 8: strace outbox -q exited $?"
		sink_expect sink "$n0" "$FLUSH_N" "figure 8 (strace run)"
	fi
	sink_stop
	echo yes > "$RB/fig8.done"
}

# burst_figures: both, with their meta data; RB=$R/burst
burst_figures() {
	RB="$R/burst"
	mkdir -p "$RB"
	if [ "$TMPFS" != 0 ]; then
		[ -d /dev/shm ] && BENCH_SHM=$(mktemp -d /dev/shm/outbox-bench.XXXXXX) ||
			die "no tmpfs at /dev/shm (BENCH_TMPFS=0 leaves the tmpfs rows out)"
		[ "$(stat -f -c %T "$BENCH_SHM")" = tmpfs ] || die "$BENCH_SHM is not on tmpfs"
	fi
	: > "$RB/meta.txt"
	burst_meta "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	fig7
	fig8
	burst_meta "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
}
