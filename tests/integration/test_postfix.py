"""outbox against a real MTA: Debian's Postfix as the smarthost.

The test starts its own Postfix instance (never the system one): a config
directory, queue, Cyrus sasldb and Maildir under a fresh 0755 directory in
/tmp (pytest's tmp_path lies under a 0700 directory that Postfix's
unprivileged daemons could not enter), the master daemon in the foreground
(`master -c DIR -d`) listening on a free loopback port only, with

  * STARTTLS, serving the tls_certs fixture's localhost certificate;
  * SASL AUTH through Cyrus SASL's sasldb (saslpasswd2), required for
    every recipient (smtpd_recipient_restrictions =
    permit_sasl_authenticated, reject), and only after STARTTLS;
  * delivery by virtual(8) into a Maildir for user@example.test (and for
    the senders of the refusal tests, who get their DSNs there);
  * refusals chosen by sender: DATA refused for nodata@example.test
    (smtpd_data_restrictions), the message refused after the final dot for
    eod@example.test (smtpd_end_of_data_restrictions); MAIL FROM is
    refused for a message over message_size_limit (SIZE=), every RCPT for
    unknown users.

outbox relays to it with `tls starttls`, user/password and ca-file; the
test then reads the delivered file.  Postfix is stopped (SIGTERM to the
master, bounded wait, then SIGKILL to its process group) in a finally.
Packages: postfix, sasl2-bin, libsasl2-modules (tests/deps.sh).
"""

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from clients_util import describe, parse, public_tmpdir, remove_tree
from conftest import free_port

POSTFIX = "/usr/sbin/postfix"
MASTER = "/usr/lib/postfix/sbin/master"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"
DOMAIN = "example.test"
USER = "user@example.test"
PASSWORD = "s3cret-pass"
START_TIMEOUT = 20.0
DELIVERY_TIMEOUT = 20.0

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/spool
data_directory = {base}/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
biff = no
smtputf8_enable = no
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {base}/mail
virtual_mailbox_maps = texthash:{base}/conf/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
smtpd_tls_cert_file = {base}/tls/cert.pem
smtpd_tls_key_file = {base}/tls/key.pem
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = {base}/conf/sasl
smtpd_sasl_local_domain = {domain}
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
smtpd_error_sleep_time = 0
smtpd_data_restrictions = check_sender_access texthash:{base}/conf/data_senders
smtpd_end_of_data_restrictions =
    check_sender_access texthash:{base}/conf/eod_senders
"""

# Senders with a mailbox besides USER (the refusal tests' DSNs land there).
SENDER_BOXES = ("nodata", "eod", "big")
# hold@: kept in Postfix's hold queue, for postcat to show its envelope
# (the DSN and BODY parameters outbox sent: test_postfix_params.py)
DATA_SENDERS = ("nodata@example.test REJECT no DATA from this sender\n"
                "hold@example.test HOLD kept for postcat\n")
EOD_SENDERS = "eod@example.test REJECT refused after the data\n"

# Debian's Cyrus SASL build looks for CONFIG_DIR/sasl/smtpd.conf;
# cyrus_sasl_config_path (above) names the same place for other builds.
SMTPD_CONF = """\
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN LOGIN
sasldb_path: {base}/conf/sasl/sasldb2
"""


class PostfixServer:
    def __init__(self, base: Path, port: int, proc: subprocess.Popen):
        self.base = base
        self.port = port
        self.proc = proc
        self.maillog = base / "maillog"
        self.maildir = base / "mail" / "user"

    def log(self) -> str:
        try:
            return self.maillog.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def delivered(self) -> set:
        """The files in the Maildir's new/ (Maildir names do not sort by
        arrival, so tests compare sets)."""
        new = self.maildir / "new"
        return set(new.iterdir()) if new.is_dir() else set()

    def wait_delivered(self, before: set, count: int = 1,
                       timeout=DELIVERY_TIMEOUT) -> list:
        """Wait (bounded) for `count` files not in `before`; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = self.delivered() - before
            if len(files) >= count:
                return sorted(files)
            time.sleep(0.1)
        pytest.fail(f"Postfix delivered {len(self.delivered() - before)} of "
                    f"{count} messages in {timeout}s\n--- maillog ---\n"
                    f"{self.log()}")

    def smtpd_events(self) -> list:
        """smtpd's session lines in log order: (kind, pid, line), kind
        "connect" when a session begins, "disconnect" when it has ended
        (that line carries its command counts, e.g. "auth=0/1")."""
        out = []
        for line in self.log().splitlines():
            m = re.search(r"postfix/smtpd\[(\d+)\]: (connect|disconnect) "
                          r"from ", line)
            if m:
                out.append((m.group(2), m.group(1), line))
        return out

    def wait_session_end(self, since: int, timeout=DELIVERY_TIMEOUT) -> str:
        """The "disconnect from" line of the first session that began
        after event number `since` (see smtpd_events), once it has ended
        (bounded wait).  A session of an earlier test that ends meanwhile
        is told apart by smtpd's pid."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.smtpd_events()[since:]
            pid = next((p for k, p, _ in events if k == "connect"), None)
            if pid is not None:
                start = next(i for i, (k, p, _) in enumerate(events)
                             if k == "connect" and p == pid)
                for k, p, line in events[start + 1:]:
                    if k == "disconnect" and p == pid:
                        return line
            time.sleep(0.05)
        pytest.fail(f"no new smtpd session ended within {timeout}s\n"
                    f"--- maillog ---\n{self.log()}")

    def wait_log(self, text: str, timeout=DELIVERY_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if text in log:
                return log
            time.sleep(0.1)
        pytest.fail(f"{text!r} not in Postfix's log within {timeout}s\n"
                    f"--- maillog ---\n{self.log()}")


def _skip_unless_usable():
    if os.getuid() != 0:
        pytest.skip("running a Postfix instance needs root")
    for p in (POSTFIX, MASTER, SASLPASSWD2):
        if not os.access(p, os.X_OK):
            pytest.skip(f"{p} is missing: install postfix and sasl2-bin "
                        "(tests/deps.sh)")
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        pytest.skip("no postfix user (package postfix not installed)")


def _greeting(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        return s.recv(512)


def _stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)      # master stops its children
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
    # Anything left in the instance's process group (the group of the
    # master we started, start_new_session=True) goes too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(5)


@pytest.fixture(scope="module")
def postfix(tls_certs):
    _skip_unless_usable()
    pw = pwd.getpwnam("postfix")
    base = public_tmpdir("outbox-postfix-")
    proc = None
    try:
        port = free_port()
        for d in ("conf", "conf/sasl", "spool", "data", "mail", "tls"):
            (base / d).mkdir(mode=0o755)
        os.chown(base / "data", pw.pw_uid, pw.pw_gid)
        os.chown(base / "mail", pw.pw_uid, pw.pw_gid)
        shutil.copy(tls_certs.cert_file, base / "tls" / "cert.pem")
        shutil.copy(tls_certs.key_file, base / "tls" / "key.pem")
        os.chmod(base / "tls" / "key.pem", 0o600)
        fmt = dict(base=base, domain=DOMAIN, uid=pw.pw_uid, gid=pw.pw_gid)
        (base / "conf" / "main.cf").write_text(MAIN_CF.format(**fmt))
        (base / "conf" / "master.cf").write_text(
            MASTER_CF.format(listen=f"127.0.0.1:{port}"))
        (base / "conf" / "vmailbox").write_text(
            f"{USER} user/\n" +
            "".join(f"{b}@{DOMAIN} {b}/\n" for b in SENDER_BOXES))
        (base / "conf" / "data_senders").write_text(DATA_SENDERS)
        (base / "conf" / "eod_senders").write_text(EOD_SENDERS)
        (base / "conf" / "sasl" / "smtpd.conf").write_text(
            SMTPD_CONF.format(**fmt))
        sasldb = base / "conf" / "sasl" / "sasldb2"
        local, _, realm = USER.partition("@")
        r = subprocess.run([SASLPASSWD2, "-p", "-c", "-f", str(sasldb),
                            "-u", realm, local], input=PASSWORD.encode(),
                           capture_output=True, timeout=30)
        assert r.returncode == 0, describe(r)
        os.chown(sasldb, pw.pw_uid, pw.pw_gid)
        os.chmod(sasldb, 0o600)

        env = dict(os.environ, LC_ALL="C", TZ="UTC")
        # creates the queue's subdirectories with their owners and modes
        r = subprocess.run([POSTFIX, "-c", str(base / "conf"), "check"],
                           capture_output=True, timeout=60, env=env)
        assert r.returncode == 0, describe(r)

        out = open(base / "master.out", "wb")
        proc = subprocess.Popen([MASTER, "-c", str(base / "conf"), "-d"],
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        out.close()
        server = PostfixServer(base, port, proc)
        deadline = time.monotonic() + START_TIMEOUT
        banner = b""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                banner = _greeting(port)
                if banner.startswith(b"220"):
                    break
            except OSError:
                pass
            time.sleep(0.1)
        if not banner.startswith(b"220"):
            pytest.fail(f"Postfix did not start on 127.0.0.1:{port} within "
                        f"{START_TIMEOUT}s (exit {proc.poll()}): "
                        f"{(base / 'master.out').read_text()}\n"
                        f"--- maillog ---\n{server.log()}")
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        remove_tree(base)


def write_config(outbox, tmp_path, postfix, tls_certs, **over):
    cfg = dict(tls="starttls", user=USER, password=PASSWORD,
               ca_file=str(tls_certs.ca_file), log=str(tmp_path / "o.log"))
    cfg.update(over)
    return outbox.write_config(tmp_path, f"127.0.0.1:{postfix.port}", **cfg)


def test_postfix_starttls_auth_delivers(outbox, postfix, tls_certs,
                                        tmp_path):
    before = postfix.delivered()
    config = write_config(outbox, tmp_path, postfix, tls_certs)
    message = ("From: Cron Daemon <root@example.com>\n"
               f"To: {USER}\n"
               "Bcc: hidden@elsewhere.invalid\n"
               "Subject: via real Postfix\n"
               "Content-Type: text/plain; charset=UTF-8\n"
               "Content-Transfer-Encoding: 8bit\n"
               "\n"
               "first line\n"
               ".leading dot\n"
               "Gr\u00fc\u00dfe\n").encode()
    r = outbox.run(["-i", "-f", "root", USER], message, config=config)
    assert r.returncode == 0, describe(r, log=tmp_path / "o.log")
    assert r.stderr == b""
    files = postfix.wait_delivered(before)
    assert len(files) == 1
    data = files[0].read_bytes()
    m = parse(data)
    # Envelope: -f root became the `from` key (from-rewrite local).
    assert m["Return-Path"] == "<sender@example.com>"
    assert m["Delivered-To"] == USER
    assert m["Subject"] == "via real Postfix"
    assert m["From"] == "Cron Daemon <root@example.com>"
    assert m["To"] == USER
    assert m["Bcc"] is None and b"hidden@" not in data
    assert m["Date"] and m["Message-ID"]          # added by outbox
    received = m.get_all("Received")[0]
    # ESMTPSA: ESMTP with STARTTLS (S) and authentication (A)
    assert "with ESMTPSA" in received, received
    # Postfix writes "from HELO (NAME [ADDRESS])": outbox's helo key (NAME
    # is what the resolver says of 127.0.0.1, "unknown" when nothing)
    assert re.match(r"from client\.example\.com \(\S+ \[127\.0\.0\.1\]\)",
                    received), received
    body = data.split(b"\n\n", 1)[1]
    assert body == "first line\n.leading dot\nGr\u00fc\u00dfe\n".encode()
    log = postfix.wait_log("status=sent (delivered to maildir)")
    assert f"sasl_username={USER}" in log


def test_postfix_wrong_password_exit_77(outbox, postfix, tls_certs,
                                        tmp_path):
    before = postfix.delivered()
    since = len(postfix.smtpd_events())
    config = write_config(outbox, tmp_path, postfix, tls_certs,
                          password="wrong", log="stderr")
    r = outbox.run(["-i", USER], b"Subject: no\n\nx\n", config=config)
    assert r.returncode == 77, describe(r)
    assert b"535" in r.stderr, describe(r)        # Postfix's refusal
    # once Postfix has ended the session, its command counts are final:
    # AUTH failed, no MAIL, RCPT or DATA ever came, so nothing can arrive
    last = postfix.wait_session_end(since)
    assert " auth=0/1 " in last, last
    for verb in ("mail=", "rcpt=", "data="):
        assert verb not in last, last
    assert postfix.delivered() == before


def test_postfix_unknown_user_exit_67(outbox, postfix, tls_certs, tmp_path):
    before = postfix.delivered()
    config = write_config(outbox, tmp_path, postfix, tls_certs, log="stderr")
    r = outbox.run(["-i", f"nosuchuser@{DOMAIN}", USER],
                   b"Subject: partly\n\nx\n", config=config)
    assert r.returncode == 67, describe(r)
    err = r.stderr.decode()
    assert f"nosuchuser@{DOMAIN}" in err and "550" in err, err
    files = postfix.wait_delivered(before)
    assert len(files) == 1
    assert parse(files[0].read_bytes())["Subject"] == "partly"


# ---------------------------------------------------------------------------
# A refusal does not cost the connection (issue 15)
# ---------------------------------------------------------------------------

def _smtpd_sessions(postfix, offset: int, timeout=DELIVERY_TIMEOUT) -> int:
    """The smtpd sessions ("connect from" lines) in Postfix's log after
    offset, once each has its "disconnect from" (postlogd writes the log
    a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        log = postfix.log()[offset:]
        conn = log.count("]: connect from ")
        if conn == log.count("]: disconnect from ") or \
                time.monotonic() > deadline:
            return conn
        time.sleep(0.1)


def _maildir_count(postfix, box: str) -> int:
    new = postfix.base / "mail" / box / "new"
    return len(list(new.iterdir())) if new.is_dir() else 0


def _enqueue(outbox, config, sender, rcpt, subject, body=b"x\n"):
    r = outbox.run(["-odq", "-f", sender, rcpt],
                   b"Subject: " + subject.encode() + b"\n\n" + body,
                   config=config, timeout=60)
    assert r.returncode == 0, describe(r)


def test_postfix_refusals_share_one_connection(outbox, postfix, tls_certs,
                                               tmp_path):
    """Refused at MAIL (SIZE over message_size_limit), at every RCPT, at
    DATA and after the final dot, 7 refusals among good messages, and the
    DSNs for them: one queue run, one connection (before: one per refusal
    before the dot plus one for the DSNs; and the good message after a
    refusal after the dot was bounced "503 5.5.1 nested MAIL command")."""
    log = tmp_path / "o.log"
    config = write_config(outbox, tmp_path, postfix, tls_certs,
                          queue=str(tmp_path / "queue"), log=str(log))
    big = b"y" * 76 + b"\n"
    big = big * (10_300_000 // len(big))      # over Postfix's 10240000
    boxes = {b: _maildir_count(postfix, b) for b in ("user",) + SENDER_BOXES}
    _enqueue(outbox, config, f"big@{DOMAIN}", USER, "big", big)
    for i in range(2):
        _enqueue(outbox, config, USER, f"nosuchuser@{DOMAIN}", f"rcpt {i}")
        _enqueue(outbox, config, f"nodata@{DOMAIN}", USER, f"data {i}")
        _enqueue(outbox, config, f"eod@{DOMAIN}", USER, f"eod {i}")
        _enqueue(outbox, config, USER, USER, f"good {i}")
    offset = len(postfix.log())

    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == 0, describe(r, log=log)
    sessions = _smtpd_sessions(postfix, offset)
    text = postfix.log()[offset:]
    assert sessions == 1, f"{sessions} connections\n{text}"
    # that one session: one STARTTLS, one AUTH, a QUIT at the end
    (bye,) = [ln for ln in text.splitlines() if "]: disconnect from " in ln]
    for count in ("starttls=1", "auth=1", "quit=1"):
        assert count in bye, bye
    for kind, n in (("552 5.3.4", 1), ("550 5.1.1", 2),
                    ("Sender address rejected: no DATA", 2),
                    ("Sender address rejected: refused after", 2)):
        assert text.count(kind) == n, (kind, text)
    assert "nested MAIL" not in text and "lost connection" not in text
    # 2 good messages + 2 DSNs for the unknown user to USER; the DSNs to
    # the other senders
    want = {"user": 4, "big": 1, "nodata": 2, "eod": 2}
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while time.monotonic() < deadline and any(
            _maildir_count(postfix, b) - boxes[b] < n
            for b, n in want.items()):
        time.sleep(0.1)
    got = {b: _maildir_count(postfix, b) - boxes[b] for b in want}
    assert got == want, (got, log.read_text())


def test_postfix_refused_recipients_few_connections(outbox, postfix,
                                                    tls_certs, tmp_path):
    """N queued messages whose every recipient is refused, then their N
    DSNs, in one queue run: 8 refusals to a session (a new one before
    Postfix's smtpd_soft_error_limit slows the replies down), so
    N / 8 + 1 connections (before: N + 1)."""
    n = 20
    log = tmp_path / "o.log"
    config = write_config(outbox, tmp_path, postfix, tls_certs,
                          queue=str(tmp_path / "queue"), log=str(log))
    before = postfix.delivered()
    for i in range(n):
        _enqueue(outbox, config, USER, f"nosuchuser{i}@{DOMAIN}", f"r {i}")
    offset = len(postfix.log())
    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == 0, describe(r, log=log)
    sessions = _smtpd_sessions(postfix, offset)
    text = postfix.log()[offset:]
    # 8 refusals in each of the first sessions; the last one carries the
    # rest and the DSNs
    assert sessions == -(-n // 8), f"{sessions} connections\n{text}"
    assert text.count("550 5.1.1") == n
    assert "too many errors" not in text
    postfix.wait_delivered(before, n)              # the DSNs
