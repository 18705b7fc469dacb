#!/bin/sh
# tests/package-cycle.sh CHROOT HOST:PORT [DEBDIR]
#
# The whole life of the Debian packages in a throwaway Debian 12 chroot:
# install outbox and outbox-mta from DEBDIR (build/deb) with apt-get, send
# mail through /usr/sbin/sendmail to a plain SMTP smarthost at HOST:PORT,
# queue a message and flush it, switch on the set-group-ID layout with
# dpkg-statoverride and send and queue as an ordinary user, reinstall,
# then remove and purge both packages and check that nothing of outbox
# is left.
#
# The caller prepares CHROOT (apt working inside it, /proc and /dev
# mounted) and runs the smarthost, e.g. aiosmtpd on 127.0.0.1 (the chroot
# shares the network namespace), without TLS or AUTH; it expects the
# messages listed by the last line, "package-cycle: ok: N messages: ...".
# A connection to 127.0.0.1:1 must be refused (the "smarthost down" case;
# CYCLE_DOWN=HOST:PORT names another). Run as root; never touches the
# host's own packages. Each failed check ends the run with a message.

# dpkg-query's ${Status} and the "$@" of sh -c are meant literally
# shellcheck disable=SC2016
set -eu
export LC_ALL=C

[ $# -ge 2 ] || { echo "usage: $0 CHROOT HOST:PORT [DEBDIR]" >&2; exit 64; }
C=$1 RELAY=$2 DEBDIR=${3:-build/deb}
DOWN=${CYCLE_DOWN:-127.0.0.1:1}
DEBS=/tmp/outbox-package-cycle     # inside the chroot
T0=$(date +%s)
step_start=$T0

say() { echo "package-cycle: $*"; }
fail() { echo "package-cycle: FAILED: $*" >&2; exit 1; }
step_name=""
step() {   # starts the next step, after the last one's time
	now=$(date +%s)
	[ -z "$step_name" ] || say "  $step_name: $((now - step_start)) s"
	step_name=$*
	step_start=$now
	[ "$step_name" = finish ] || say "$step_name"
}
# a command inside the chroot, as root, with a clean environment
in_chroot() {
	chroot "$C" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"
}
# a command inside the chroot as the user nobody
as_nobody() {
	chroot --userspec=nobody:nogroup "$C" /usr/bin/env -i \
		PATH=/usr/bin:/bin HOME=/ LC_ALL=C "$@"
}
# "owner:group mode" of a path inside the chroot
perms() { in_chroot stat -c '%U:%G %a' "$1"; }
expect_perms() {
	got=$(perms "$1") || fail "$1 is missing"
	[ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}
expect_link() {
	got=$(in_chroot readlink "$1") || fail "$1 is not a symbolic link"
	[ "$got" = "$2" ] || fail "$1 points at $got, expected $2"
}
# everything named *outbox* in the chroot's own file systems
outbox_files() {
	in_chroot find / -xdev \( -path /proc -o -path /sys -o -path /dev \
		-o -path "$DEBS" \) -prune -o -name '*outbox*' -print | sort
}
write_conf() {   # smarthost, then extra lines
	relay=$1
	shift
	{
		printf '%s\n' "smarthost $relay" 'tls off' 'domain example.org' \
			'queue /var/spool/outbox' 'log /var/log/outbox.log' \
			'timeout 10s' "$@"
	} | in_chroot sh -c 'cat > /etc/outbox.conf.new &&
		cat /etc/outbox.conf.new > /etc/outbox.conf &&
		rm /etc/outbox.conf.new'
}
sent=""
send() {   # who subject [sendmail arguments...]; the message on stdin
	who=$1 subject=$2
	shift 2
	{ printf 'Subject: %s\n\n' "$subject"; cat; } > "$C$DEBS/msg"
	chmod 0644 "$C$DEBS/msg"
	if [ "$who" = nobody ]; then
		as_nobody sh -c '"$@" < "$0"' "$DEBS/msg" "$@" ||
			fail "as nobody: $* (\"$subject\") exited $?"
	else
		in_chroot sh -c '"$@" < "$0"' "$DEBS/msg" "$@" ||
			fail "$* (\"$subject\") exited $?"
	fi
}
# apt-get in the chroot, in DEBS; its whole output when it fails, else
# only the lines that warn (dpkg's, the maintainer scripts')
apt_get() {
	in_chroot sh -c 'cd "$0" && apt-get "$@"' "$DEBS" "$@" \
		> "$C$DEBS/apt.log" 2>&1 || {
		cat "$C$DEBS/apt.log" >&2
		fail "apt-get $*"
	}
	grep -i 'warn\|error\|outbox:' "$C$DEBS/apt.log" | sed 's/^/  apt-get: /' || true
}
delivered() { sent="$sent${sent:+, }$1"; }
queued_count() {   # messages mailq lists (for who: root or nobody)
	if [ "$1" = nobody ]; then
		out=$(as_nobody /usr/bin/mailq --json) || fail "mailq as nobody"
	else
		out=$(in_chroot /usr/bin/mailq --json) || fail "mailq"
	fi
	printf '%s' "$out" | grep -o '"id"' | wc -l | tr -d ' '
}

# ---- preconditions
[ "$(id -u)" -eq 0 ] || fail "run as root (chroot, apt-get)"
[ -f "$C/etc/debian_version" ] || fail "$C is not a Debian tree"
[ -d "$C/proc/self" ] || fail "mount /proc in $C first"
set -- "$DEBDIR"/outbox_*.deb
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
	fail "need exactly one $DEBDIR/outbox_*.deb (make deb)"
fi
deb=$1
set -- "$DEBDIR"/outbox-mta_*.deb
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
	fail "need exactly one $DEBDIR/outbox-mta_*.deb"
fi
mta=$1
if in_chroot dpkg-query -W -f '${Status}\n' outbox outbox-mta 2>/dev/null |
   grep -q 'installed\|config-files'; then
	fail "outbox is already in $C: give a clean chroot"
fi
say "chroot $C (Debian $(cat "$C/etc/debian_version")), smarthost $RELAY"
before=$(outbox_files)
rm -rf "$C$DEBS"
mkdir -m 0755 "$C$DEBS"
cp "$deb" "$mta" "$C$DEBS/"
chmod 0644 "$C$DEBS"/*.deb
set -- "$C"/var/lib/apt/lists/*_Packages
[ -e "$1" ] || in_chroot apt-get update -qq

# ---- install
step "apt-get install ./$(basename "$deb") ./$(basename "$mta")"
apt_get install -y -q --no-install-recommends \
	"./$(basename "$deb")" "./$(basename "$mta")"
for p in outbox outbox-mta; do
	st=$(in_chroot dpkg-query -W -f '${Status}' $p)
	[ "$st" = "install ok installed" ] || fail "$p: $st"
done
expect_perms /usr/sbin/outbox "root:root 755"
expect_link /usr/sbin/sendmail outbox
expect_link /usr/lib/sendmail ../sbin/sendmail
expect_link /usr/bin/mailq ../sbin/outbox
expect_link /usr/bin/newaliases ../sbin/outbox
gid=$(in_chroot getent group outbox | cut -d: -f3) || fail "no group outbox"
[ "$gid" -lt 1000 ] || fail "group outbox has gid $gid: not a system group"
for d in /var/spool/outbox /var/spool/outbox/tmp /var/spool/outbox/msg \
	 /var/spool/outbox/failed; do
	expect_perms $d "root:outbox 2770"
done
[ ! -e "$C/etc/outbox.conf" ] || fail "the package installed /etc/outbox.conf"
[ -f "$C/usr/share/doc/outbox/examples/outbox.conf.example" ] ||
	fail "no outbox.conf.example in /usr/share/doc/outbox/examples"
expect_link /etc/systemd/system/timers.target.wants/outbox-queue.timer \
	/lib/systemd/system/outbox-queue.timer
in_chroot /usr/sbin/outbox --version | head -n 1

# ---- send as root
step "send through sendmail, mailq, newaliases"
write_conf "$RELAY"
in_chroot chmod 0600 /etc/outbox.conf
echo 'via /usr/sbin/sendmail' |
	send root "package-cycle direct" /usr/sbin/sendmail -f cycle@example.org \
		rcpt1@example.org
delivered "package-cycle direct"
printf 'To: rcpt2@example.org\nSubject: package-cycle -t\n\nvia /usr/lib/sendmail -t\n' \
	> "$C$DEBS/msg-t"
in_chroot sh -c "/usr/lib/sendmail -t -i < $DEBS/msg-t" ||
	fail "/usr/lib/sendmail -t -i exited $?"
delivered "package-cycle -t"
in_chroot /usr/bin/newaliases || fail "newaliases exited $?"
[ "$(queued_count root)" -eq 0 ] || fail "mailq: the queue is not empty"

step "queue while the smarthost is down, then outbox -qf"
write_conf "$DOWN"
echo 'queued, then flushed' |
	send root "package-cycle queued" /usr/sbin/sendmail rcpt3@example.org
[ "$(queued_count root)" -eq 1 ] || fail "mailq does not list the queued message"
write_conf "$RELAY"
in_chroot /usr/sbin/outbox -qf || fail "outbox -qf exited $?"
[ "$(queued_count root)" -eq 0 ] || fail "outbox -qf left the message queued"
delivered "package-cycle queued"

# ---- the set-group-ID layout, as README.Debian describes it
step "dpkg-statoverride: the set-group-ID layout; send and queue as nobody"
in_chroot dpkg-statoverride --update --add root outbox 2755 /usr/sbin/outbox
expect_perms /usr/sbin/outbox "root:outbox 2755"
write_conf "$RELAY" 'allow-from none'
in_chroot chown root:outbox /etc/outbox.conf
in_chroot chmod 0640 /etc/outbox.conf
in_chroot install -o root -g outbox -m 0660 /dev/null /var/log/outbox.log
echo 'from an ordinary user' |
	send nobody "package-cycle setgid" /usr/sbin/sendmail rcpt4@example.org
delivered "package-cycle setgid"
write_conf "$DOWN" 'allow-from none'
echo 'queued by an ordinary user' |
	send nobody "package-cycle setgid queued" /usr/sbin/sendmail rcpt5@example.org
[ "$(queued_count nobody)" -eq 1 ] || fail "nobody's mailq does not list its message"
write_conf "$RELAY" 'allow-from none'
as_nobody /usr/sbin/outbox -qf || fail "outbox -qf as nobody exited $?"
[ "$(queued_count root)" -eq 0 ] || fail "nobody's outbox -qf left the message"
delivered "package-cycle setgid queued"
grep -q 'status=sent' "$C/var/log/outbox.log" || fail "nothing in /var/log/outbox.log"

step "reinstall: the statoverride and the queue's modes stay"
apt_get install -y -q --reinstall "./$(basename "$deb")"
expect_perms /usr/sbin/outbox "root:outbox 2755"
expect_perms /var/spool/outbox "root:outbox 2770"
expect_perms /var/spool/outbox/msg "root:outbox 2770"
# back to the plain layout (README.Debian); the package leaves the admin's
# statoverrides alone, even on purge
in_chroot dpkg-statoverride --remove /usr/sbin/outbox

# ---- remove, purge
step "apt-get remove outbox-mta outbox"
apt_get remove -y -q outbox-mta outbox
for f in /usr/sbin/outbox /usr/sbin/sendmail /usr/lib/sendmail /usr/bin/mailq \
	 /usr/bin/newaliases /lib/systemd/system/outbox-queue.timer; do
	if [ -e "$C$f" ] || [ -L "$C$f" ]; then
		fail "$f is still there after remove"
	fi
done
[ -d "$C/var/spool/outbox/msg" ] || fail "remove took the queue (only purge may)"
[ -f "$C/etc/logrotate.d/outbox" ] || fail "remove took the conffile (only purge may)"

# outbox-mta has no conffiles: dpkg purged it with the remove
st=$(in_chroot dpkg-query -W -f '${Status}' outbox-mta 2>/dev/null || true)
case $st in
""|"unknown ok not-installed") ;;
*) fail "outbox-mta after remove: $st (it has nothing to keep)" ;;
esac
st=$(in_chroot dpkg-query -W -f '${Status}' outbox)
[ "$st" = "deinstall ok config-files" ] || fail "outbox after remove: $st"

step "apt-get purge outbox"
apt_get purge -y -q outbox
for p in outbox outbox-mta; do
	st=$(in_chroot dpkg-query -W -f '${Status}' $p 2>/dev/null || true)
	case $st in
	""|"unknown ok not-installed") ;;
	*) fail "$p is still known to dpkg after purge: $st" ;;
	esac
done
if in_chroot dpkg -S outbox >/dev/null 2>&1; then
	fail "dpkg -S outbox: $(in_chroot dpkg -S outbox 2>&1 | head -n 3)"
fi
! grep -q outbox "$C/var/lib/dpkg/statoverride" ||
	fail "a statoverride for outbox is left"
[ -f "$C/etc/outbox.conf" ] || fail "purge removed the admin's /etc/outbox.conf"
in_chroot rm /etc/outbox.conf    # the admin's file: purge keeps it
after=$(outbox_files)
if [ "$after" != "$before" ]; then
	echo "left behind (not there before the install):" >&2
	printf '%s\n' "$before" > "$C$DEBS/before"
	printf '%s\n' "$after" | grep -vxFf "$C$DEBS/before" >&2 || true
	fail "files named *outbox* are left after purge"
fi
in_chroot getent group outbox >/dev/null ||
	fail "the group outbox is gone (it is meant to stay: see debian/outbox.postrm)"
rm -rf "$C$DEBS"
step "finish"
say "the system group outbox stays, by design (debian/outbox.postrm)"
say "total $(( $(date +%s) - T0 )) s"
say "ok: 5 messages: $sent"
