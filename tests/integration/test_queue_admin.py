"""The queue as an admin handles it: several IDs at once, modes that
refuse operands they do not use, failed/ that can be listed, requeued and
expires, envelopes that cannot be read, and outbox never silent about a
setup error or a log it cannot write (issue: the queue as a traffic
manager; outbox(8) THE QUEUE, LOGGING).

Real parts: aiosmtpd smarthosts from conftest.py, real files, and for the
syslog cases a real AF_UNIX datagram socket standing in for /dev/log in a
private mount namespace (root only; skipped otherwise).
"""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from test_queue import describe, files, message, qconfig, queued_ids, \
    read_env, subjects

EX_OK, EX_USAGE = 0, 64
SENDER = "sender@example.com"
RCPT = "rcpt@example.com"


def new_ids(qdir, before):
    return [i for i in queued_ids(qdir) if i not in before]


def queue_three(outbox, cfg, qdir):
    ids = []
    for i in range(3):
        before = queued_ids(qdir)
        r = outbox.run(["-odq", "-f", SENDER, RCPT], message(f"m{i}"),
                       config=cfg)
        assert r.returncode == EX_OK, describe(r)
        (qid,) = new_ids(qdir, before)
        ids.append(qid)
    return ids


# ---------------------------------------------------------------------------
# several IDs; operands refused where a mode does not use them
# ---------------------------------------------------------------------------

def test_remove_takes_several_ids(outbox, closed_port, tmp_path):
    cfg, qdir = qconfig(outbox, tmp_path, closed_port)
    a, b, c = queue_three(outbox, cfg, qdir)
    r = outbox.run(["--remove", a, b], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    assert queued_ids(qdir) == [c]
    assert files(qdir / "msg") == [f"{c}.data", f"{c}.env"]
    # one unknown ID: the others are still removed, the unknown one named,
    # exit 64
    r = outbox.run(["--remove", a, c], config=cfg)
    assert r.returncode == EX_USAGE, describe(r)
    assert f"{a}: no such message in the queue".encode() in r.stderr
    assert queued_ids(qdir) == []


def test_qI_takes_several_ids(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh)
    a, b, c = queue_three(outbox, cfg, qdir)
    r = outbox.run(["-qI", a, b], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    sh.wait_idle()
    assert sorted(subjects(sh)) == ["m0", "m1"]
    assert queued_ids(qdir) == [c]


@pytest.mark.parametrize("args", [["-q", RCPT], ["-bp", "extra"],
                                  ["-q15m", "x"], ["--check", "x"]])
def test_modes_refuse_operands_they_do_not_use(outbox, smarthost, tmp_path,
                                               args):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh)
    (qid,) = queue_three(outbox, cfg, qdir)[:1]
    r = outbox.run(args, config=cfg, timeout=30)
    assert r.returncode == EX_USAGE, describe(r)
    assert b"takes no operands; unexpected: " + args[-1].encode() in r.stderr
    # nothing ran: the queue is as it was, the smarthost heard nothing
    assert len(queued_ids(qdir)) == 3 and qid in queued_ids(qdir)
    sh.wait_idle()
    assert sh.messages == [] and sh.verbs() == []


# ---------------------------------------------------------------------------
# failed/: the final state recorded, listed, requeued, expired
# ---------------------------------------------------------------------------

def fail_one(outbox, sh, cfg, qdir):
    """A message refused for bad@example.com in a queue run: in failed/."""
    r = outbox.run(["-odq", "-f", SENDER, "bad@example.com"],
                   message("refused"), config=cfg)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    r = outbox.run(["-q"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    sh.wait_idle()
    assert queued_ids(qdir) == []
    assert f"{qid}.env" in files(qdir / "failed")
    return qid


def test_failed_envelope_records_attempts_and_error(outbox, smarthost,
                                                    tmp_path):
    sh = smarthost()    # bad@example.com -> 550
    cfg, qdir = qconfig(outbox, tmp_path, sh)
    qid = fail_one(outbox, sh, cfg, qdir)
    env = read_env(qdir / "failed" / f"{qid}.env")
    assert env["attempts"] == "1", env
    assert env["rcpt"] == ["<bad@example.com>"], env
    assert "550" in env["last-error"], env


def test_mailq_failed_lists_failed_messages(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh)
    qid = fail_one(outbox, sh, cfg, qdir)
    r = outbox.run(["-bp"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    assert qid.encode() not in r.stdout
    r = outbox.run(["-bp", "--failed"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    text = r.stdout.decode()
    assert text.startswith(qid), text
    assert "failed after 1 attempt\n" in text
    assert "final error: " in text and "550" in text
    assert "to <bad@example.com>" in text
    assert "1 message, " in text and "in failed/" in text
    r = outbox.run(["-bp", "--failed", "--json"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    (item,) = json.loads(r.stdout)
    assert item["id"] == qid and item["attempts"] == 1
    assert item["recipients"] == [{"address": "bad@example.com",
                                   "state": "failed"}]


def test_mailq_failed_empty(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh)
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("q"), config=cfg)
    assert r.returncode == EX_OK, describe(r)
    r = outbox.run(["-bp", "--failed"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    assert r.stdout == b"No failed messages\n"


def test_requeue_puts_a_failed_message_back(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh)
    qid = fail_one(outbox, sh, cfg, qdir)
    data = (qdir / "failed" / f"{qid}.data").read_bytes()
    r = outbox.run(["--requeue", qid], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    assert files(qdir / "failed") == []
    assert queued_ids(qdir) == [qid]
    assert (qdir / "msg" / f"{qid}.data").read_bytes() == data
    env = read_env(qdir / "msg" / f"{qid}.env")
    assert env["attempts"] == "0" and env["rcpt"] == ["<bad@example.com>"]
    assert int(env["next"]) <= int(time.time())
    # due now: the next run tries it again (and the smarthost still says
    # 550, so it fails again, with a new DSN)
    n = len(sh.messages)
    r = outbox.run(["-q"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    sh.wait_idle()
    assert "RCPT" in sh.verbs()
    assert len(sh.messages) == n + 1     # the new DSN
    assert queued_ids(qdir) == [] and f"{qid}.env" in files(qdir / "failed")
    # an ID not in failed/: exit 64, named
    r = outbox.run(["--requeue", "0123456789ABCDEF"], config=cfg)
    assert r.returncode == EX_USAGE, describe(r)
    assert b"0123456789ABCDEF: no such message in failed/" in r.stderr


def test_failed_lifetime_removes_old_failed_messages(outbox, smarthost,
                                                     tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh, failed_lifetime="2d")
    old = fail_one(outbox, sh, cfg, qdir)
    three_days = time.time() - 3 * 86400
    for ext in ("env", "data"):
        os.utime(qdir / "failed" / f"{old}.{ext}", (three_days, three_days))
    new = fail_one(outbox, sh, cfg, qdir)   # this run already expires old
    assert files(qdir / "failed") == [f"{new}.data", f"{new}.env"]
    r = outbox.run(["-q"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    assert files(qdir / "failed") == [f"{new}.data", f"{new}.env"]


def test_failed_lifetime_is_a_duration(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, _ = qconfig(outbox, tmp_path, sh, failed_lifetime="soon")
    r = outbox.run(["-bp"], config=cfg)
    assert r.returncode == 78, describe(r)
    assert b"failed-lifetime" in r.stderr


# ---------------------------------------------------------------------------
# mailq and envelopes it cannot read
# ---------------------------------------------------------------------------

def test_mailq_counts_unreadable_envelopes(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh)
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("q"), config=cfg)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    (qdir / "msg" / f"{qid}.env").write_text("this is not an envelope\n")
    r = outbox.run(["-bp"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    text = r.stdout.decode()
    assert "empty" not in text, text
    assert "1 message(s) in the queue whose envelope cannot be read" in text
    r = outbox.run(["-bp", "--json"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    assert json.loads(r.stdout) == []
    assert b"1 message(s) whose envelope cannot be read" in r.stderr


# ---------------------------------------------------------------------------
# never silent
# ---------------------------------------------------------------------------

def _setup_error_cases(tmp_path, tls_certs):
    return {
        "wrong password": dict(password="not-the-password"),
        "unreadable password file": dict(
            password=None, password_file=str(tmp_path / "missing.secret")),
        # a CA that did not sign the smarthost's certificate
        "untrusted certificate": dict(ca_file=str(tls_certs.untrusted_ca_file)),
    }


@pytest.mark.parametrize("case", ["wrong password",
                                  "unreadable password file",
                                  "untrusted certificate"])
def test_setup_error_queued_says_so_on_stderr(outbox, smarthost, tmp_path,
                                              tls_certs, case):
    sh = smarthost()
    over = _setup_error_cases(tmp_path, tls_certs)[case]
    log = tmp_path / "outbox.log"
    cfg, qdir = qconfig(outbox, tmp_path, sh, log=str(log), **over)
    r = outbox.run(["-f", SENDER, RCPT], message(case), config=cfg)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    lines = r.stderr.decode().splitlines()
    said = [l for l in lines if l.startswith(f"outbox: queued as {qid}, "
                                             "not sent: ")]
    assert len(said) == 1, describe(r)
    assert "fix the configuration" in said[0]
    assert "not-the-password" not in r.stderr.decode()
    sh.wait_idle()
    assert sh.messages == []


def test_plain_temporary_failure_is_not_called_a_setup_error(
        outbox, closed_port, tmp_path):
    cfg, qdir = qconfig(outbox, tmp_path, closed_port,
                        log=str(tmp_path / "outbox.log"))
    r = outbox.run(["-f", SENDER, RCPT], message("down"), config=cfg)
    assert r.returncode == EX_OK, describe(r)
    assert len(queued_ids(qdir)) == 1
    assert b"not sent" not in r.stderr, describe(r)


def test_log_file_that_cannot_be_opened_is_reported(outbox, smarthost,
                                                    tmp_path):
    sh = smarthost()
    bad = tmp_path / "no-such-dir" / "outbox.log"
    cfg, qdir = qconfig(outbox, tmp_path, sh, log=str(bad))
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("x"), config=cfg)
    assert r.returncode == EX_OK, describe(r)
    err = r.stderr.decode()
    assert err.count(f"outbox: log {bad}: cannot open it") == 1, err
    # and the log lines are not lost: they went to stderr
    assert "queued (on request)" in err


def _in_mount_ns(devdir: Path, cmd, **kw):
    """Run cmd with devdir mounted over /dev in a private mount namespace
    (so /dev/log is devdir/log, or absent)."""
    # /dev made private inside the new namespace first, so that nothing
    # mounted there reaches the host (unshare's own --propagation private
    # needs / to be a mount point, which it is not in a chroot)
    script = ('mount --make-rprivate /dev && mount --bind "$1" /dev && '
              'shift && exec "$@"')
    return subprocess.run(["unshare", "-m", "--propagation", "unchanged",
                           "sh", "-c", script, "sh", str(devdir), *cmd],
                          capture_output=True, timeout=60, **kw)


needs_ns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a private mount namespace needs root and unshare")


@needs_ns
def test_syslog_unavailable_logs_to_stderr(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh, log="syslog")
    dev = tmp_path / "dev"
    dev.mkdir()                         # no log socket in it
    r = _in_mount_ns(dev, outbox.command(["-odq", "-f", SENDER, RCPT], cfg),
                     input=message("nolog"), env=outbox.environment())
    assert r.returncode == EX_OK, describe(r)
    assert b"queued (on request)" in r.stderr, describe(r)


@needs_ns
def test_syslog_available_gets_the_lines(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh, log="syslog")
    dev = tmp_path / "dev"
    dev.mkdir()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(dev / "log"))
    s.settimeout(10)
    try:
        r = _in_mount_ns(dev, outbox.command(["-odq", "-f", SENDER, RCPT],
                                             cfg),
                         input=message("tolog"), env=outbox.environment())
        assert r.returncode == EX_OK, describe(r)
        assert b"queued" not in r.stderr, describe(r)
        got = []
        while not any(b"queued (on request)" in g for g in got):
            got.append(s.recv(4096))
        assert all(b"outbox[" in g for g in got), got
    finally:
        s.close()
