"""Guards that protect mail, secrets and the wire, each pinned by a test
that fails without it:

- a user is configured but the server offers no AUTH: nothing is sent
  (no RCPT, no data), exit 77;
- STARTTLS is required even without a user: a server that does not offer
  it gets no MAIL in clear text;
- the queue commit's durability order, recorded with strace around -odq
  (the real syscalls happen; strace only watches): fsync data, fsync
  envelope, rename data, fsync msg/, rename envelope, fsync msg/.
"""

import os
import re
import shutil
import subprocess

import pytest

from test_queue import message, qconfig, queued_ids

EX_OK, EX_TEMPFAIL, EX_PROTOCOL, EX_NOPERM = 0, 75, 76, 77
SENDER = "cron@example.com"
RCPT = "admin@example.com"


def test_user_configured_but_no_auth_offered_sends_nothing(outbox, smarthost,
                                                           tmp_path):
    sh = smarthost(auth=False)
    cfg = outbox.write_config(tmp_path, sh, user="user",
                              password="guard-secret-91")
    r = outbox.run(["-f", SENDER, RCPT], message("no auth"), config=cfg)
    assert r.returncode == EX_NOPERM, r.stderr
    assert b"offers no authentication" in r.stderr
    sh.wait_idle()
    verbs = sh.verbs()
    assert "RCPT" not in verbs and "DATA" not in verbs, verbs
    assert sh.messages == [] and sh.rejected == []


def test_user_configured_but_no_auth_offered_queues(outbox, smarthost,
                                                    tmp_path):
    """With the queue on, the message waits for the admin (a relay-side
    refusal that is not the message's fault), still unsent."""
    sh = smarthost(auth=False)
    cfg, qdir = qconfig(outbox, tmp_path, sh, user="user",
                        password="guard-secret-91")
    r = outbox.run(["-f", SENDER, RCPT], message("no auth q"), config=cfg)
    assert r.returncode == EX_OK, r.stderr
    assert b"queued" in r.stderr.lower(), r.stderr
    assert len(queued_ids(qdir)) == 1
    sh.wait_idle()
    assert "RCPT" not in sh.verbs() and sh.messages == []


@pytest.mark.parametrize("user", [False, True])
def test_starttls_required_without_offer_sends_nothing_in_clear(
        outbox, smarthost, tmp_path, user):
    sh = smarthost(offer_starttls=False, auth=user)
    over = {} if user else {"user": None, "password": None}
    cfg = outbox.write_config(tmp_path, sh, **over)
    assert "tls starttls" in cfg.read_text()
    assert ("user " in cfg.read_text()) == user
    r = outbox.run(["-f", SENDER, RCPT], message("clear"), config=cfg)
    assert r.returncode == EX_TEMPFAIL, r.stderr
    sh.wait_idle()
    verbs = sh.verbs()
    assert "MAIL" not in verbs and "AUTH" not in verbs, verbs
    assert sh.messages == []


# ---------------------------------------------------------------------------
# the queue commit, syscall by syscall
# ---------------------------------------------------------------------------

EVENT = re.compile(r'^(?:\[pid\s+\d+\]\s+|\d+\s+)?(fsync|fdatasync|renameat2?|rename)'
                   r'\((.*)\)\s+=\s+(-?\d+)')


def _events(trace: str, qdir: str):
    """[(call, what)] for the queue's files and directories, in order:
    ("fsync", "tmp/ID.data"), ("rename", "ID.data -> msg"), ..."""
    out = []
    for line in trace.splitlines():
        m = EVENT.match(line.strip())
        if not m or m.group(3) != "0":
            continue
        call, args = m.group(1), m.group(2)
        if call in ("fsync", "fdatasync"):
            path = re.search(r"<([^>]*)>", args)
            if path and path.group(1).startswith(qdir):
                out.append(("fsync", path.group(1)[len(qdir) + 1:] or "."))
        else:
            names = re.findall(r'"([^"]*)"', args)
            dirs = re.findall(r"<([^>]*)>", args)
            if dirs and dirs[-1].startswith(qdir):
                out.append(("rename", f"{names[-1]} -> "
                            f"{dirs[-1][len(qdir) + 1:]}"))
    return out


def _no_leak_check() -> str:
    opts = os.environ.get("ASAN_OPTIONS", "")
    return (opts + ":" if opts else "") + "detect_leaks=0"


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_queue_commit_order_and_fsyncs(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh)
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("queued"),
                   config=cfg)            # the queue exists after this
    assert r.returncode == EX_OK, r.stderr
    trace = tmp_path / "trace"
    cmd = ["strace", "-f", "-y", "-o", str(trace), "-e",
           "trace=fsync,fdatasync,rename,renameat,renameat2",
           *outbox.command(["-odq", "-f", SENDER, RCPT], cfg)]
    # LeakSanitizer cannot run under ptrace (it exits 1 at the end of a
    # sanitizer build's traced run); ASan and UBSan still check this run.
    env = outbox.environment({"ASAN_OPTIONS": _no_leak_check()})
    p = subprocess.run(cmd, input=message("traced"), capture_output=True,
                       timeout=60, env=env)
    assert p.returncode == EX_OK, p.stderr
    ids = queued_ids(qdir)
    assert len(ids) == 2
    new = [i for i in ids if i in trace.read_text()]
    assert len(new) == 1, (ids, trace.read_text())
    i = new[0]
    events = _events(trace.read_text(), str(qdir.resolve()))
    assert events == [
        ("fsync", f"tmp/{i}.data"),
        ("fsync", f"tmp/{i}.env"),
        ("rename", f"{i}.data -> msg"),
        ("rename", f"{i}.env -> msg"),
        ("fsync", "msg"),
    ], "\n".join(map(str, events))
    assert sh.messages == []


# ---------------------------------------------------------------------------
# exit 76: a server that answers nonsense after the final dot
# ---------------------------------------------------------------------------

class RawServer:
    """A plain SMTP server on loopback that answers the final dot with a
    reply of the test's choosing (a real socket; no TLS, no AUTH)."""

    def __init__(self, after_dot: bytes):
        import socket
        import threading
        self.after_dot = after_dot
        self.got_data = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(20)
        f = conn.makefile("rb")
        conn.sendall(b"220 raw.example ESMTP\r\n")
        try:
            for line in f:
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 raw.example\r\n")
                elif verb in (b"MAIL", b"RCPT"):
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    data = b""
                    for body in f:
                        if body == b".\r\n":
                            break
                        data += body
                    self.got_data = data
                    conn.sendall(self.after_dot)
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"502 no\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.sock.close()
        self.thread.join(25)


@pytest.mark.parametrize("after_dot", [b"220 hello again\r\n",
                                       b"354 more please\r\n"])
def test_nonsense_after_the_final_dot_is_76(outbox, tmp_path, after_dot):
    srv = RawServer(after_dot)
    try:
        cfg = outbox.write_config(tmp_path, f"127.0.0.1:{srv.port}",
                                  tls="off")
        r = outbox.run(["-f", SENDER, RCPT], message("nonsense"), config=cfg)
    finally:
        srv.stop()
    assert r.returncode == EX_PROTOCOL, r.stderr
    assert b"protocol error" in r.stderr, r.stderr
    assert b"Subject: nonsense" in srv.got_data      # it was sent, not taken
