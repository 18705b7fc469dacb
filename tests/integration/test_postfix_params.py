"""Envelope parameters (issue 16) against a real Postfix, which offers DSN
and 8BITMIME: what outbox sends arrives in Postfix's queue file.

Mail from hold@example.test is put on hold by the instance of
test_postfix.py (smtpd_data_restrictions: HOLD), and `postcat -e` shows
its envelope records: envelope_id (ENVID), ret_flags (RET), and for each
recipient notify_flags (NOTIFY) and dsn_orig_rcpt (ORCPT), and the body
type (encoding=8bit for BODY=8BITMIME). The same message queued by outbox (smarthost down) and
sent by -q later arrives with the same records.
"""

import re
import subprocess
import time

import pytest

from clients_util import describe
from conftest import free_port
from test_postfix import (DOMAIN, USER, postfix, write_config)  # noqa: F401

POSTCAT = "/usr/sbin/postcat"
HOLD = "hold@example.test"
WAIT = 20.0


def _held(postfix, before=frozenset()):
    hold = postfix.base / "spool" / "hold"
    return {p for p in hold.iterdir()} - set(before) if hold.is_dir() \
        else set()


def _wait_held(postfix, before) -> str:
    """The envelope records (postcat -e) of the one new held message."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        new = _held(postfix, before)
        if new:
            (path,) = new
            r = subprocess.run([POSTCAT, "-e", "-c",
                                str(postfix.base / "conf"), str(path)],
                               capture_output=True, timeout=30)
            assert r.returncode == 0, describe(r)
            return r.stdout.decode(errors="replace")
        time.sleep(0.1)
    pytest.fail(f"no message held within {WAIT}s\n{postfix.log()}")


def _records(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        m = re.match(r"(?:named_attribute: )?([a-z_]+)[:=] ?(.*)", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).strip())
    return out


CLI = ["-N", "success,delay", "-R", "hdrs", "-V", "cli env 1"]


def _check_cli_records(rec):
    assert rec["envelope_id"] == ["cli env 1"], rec
    assert rec["ret_flags"] == ["2"], rec         # DSN_RET_HDRS
    # DSN_NOTIFY_SUCCESS (2) | DSN_NOTIFY_DELAY (8)
    assert rec["notify_flags"] == ["10"], rec
    assert "8bit" in rec["encoding"], rec         # BODY=8BITMIME


MSG = "Subject: params\n\nGr\u00fc\u00dfe\n".encode()


def test_cli_params_arrive(outbox, postfix, tls_certs, tmp_path):
    before = _held(postfix)
    config = write_config(outbox, tmp_path, postfix, tls_certs)
    r = outbox.run(CLI + ["-f", HOLD, "-i", USER], MSG, config=config)
    assert r.returncode == 0, describe(r, log=tmp_path / "o.log")
    _check_cli_records(_records(_wait_held(postfix, before)))


def test_queued_then_sent_same_params(outbox, postfix, tls_certs,
                                      tmp_path):
    before = _held(postfix)
    queue = tmp_path / "queue"
    down = outbox.write_config(tmp_path, f"127.0.0.1:{free_port()}",
                               name="down.conf", queue=queue,
                               log=str(tmp_path / "o.log"))
    r = outbox.run(CLI + ["-f", HOLD, "-i", USER], MSG, config=down)
    assert r.returncode == 0, describe(r, log=tmp_path / "o.log")
    assert _held(postfix, before) == set()
    config = write_config(outbox, tmp_path, postfix, tls_certs, queue=queue)
    r = outbox.run(["-qf"], config=config)   # due or not (retry_min)
    assert r.returncode == 0, describe(r, log=tmp_path / "o.log")
    _check_cli_records(_records(_wait_held(postfix, before)))


def test_bs_params_arrive(outbox, postfix, tls_certs, tmp_path):
    before = _held(postfix)
    config = write_config(outbox, tmp_path, postfix, tls_certs)
    lines = ["EHLO client",
             f"MAIL FROM:<{HOLD}> RET=FULL ENVID=bs+2Bid BODY=8BITMIME",
             f"RCPT TO:<{USER}> NOTIFY=NEVER ORCPT=rfc822;alias+2B1@"
             f"{DOMAIN}",
             "DATA", "Subject: bs", "", "x", ".", "QUIT"]
    r = outbox.run(["-bs"], "".join(l + "\r\n" for l in lines).encode(),
                   config=config)
    assert b"250 2.0.0 Ok" in r.stdout, describe(r, log=tmp_path / "o.log")
    rec = _records(_wait_held(postfix, before))
    assert rec["envelope_id"] == ["bs+id"], rec
    assert rec["ret_flags"] == ["1"], rec         # DSN_RET_FULL
    assert rec["notify_flags"] == ["1"], rec      # DSN_NOTIFY_NEVER
    assert rec["dsn_orig_rcpt"] == [f"rfc822;alias+1@{DOMAIN}"], rec
    assert "8bit" in rec["encoding"], rec
