"""Server reply text is shown, logged and quoted in DSNs with its control
characters escaped: a reply holding a bare CR (or an ESC) cannot start a
line of its own in stderr, the log or a bounce, nor reach a terminal raw.
"""

import re

from test_queue import message, qconfig, queued_ids

EX_OK = 0
EX_NOUSER = 67
SENDER = "cron@example.com"
BAD = "bad@example.com"
HOSTILE = "550 5.1.1 no\rX-Injected: yes\x1b[2J"
ESCAPED = "no\\rX-Injected: yes\\x1b[2J"


def assert_no_raw_control(what: str, data: bytes):
    bad = re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", data)
    assert bad is None, f"raw control byte in {what}: {data!r}"
    assert b"\nX-Injected" not in data, f"{what}: {data!r}"


def test_reply_control_characters_escaped_on_stderr_and_log(outbox,
                                                            smarthost,
                                                            tmp_path):
    sh = smarthost(rcpt_replies={BAD: HOSTILE})
    log = tmp_path / "outbox.log"
    cfg = outbox.write_config(tmp_path, sh, log=str(log))
    r = outbox.run(["-v", "-f", SENDER, BAD], message("escape"), config=cfg)
    assert r.returncode == EX_NOUSER, r.stderr
    assert_no_raw_control("stderr", r.stderr)
    assert ESCAPED.encode() in r.stderr, r.stderr
    # -v shows the reply line escaped too
    assert f"<- {HOSTILE[:3]} 5.1.1 {ESCAPED}".encode() in r.stderr, r.stderr
    text = log.read_bytes()
    assert_no_raw_control("the log", text)
    assert ESCAPED.encode() in text, text


def test_reply_control_characters_escaped_in_the_dsn(outbox, smarthost,
                                                     tmp_path):
    sh = smarthost(rcpt_replies={BAD: HOSTILE})
    cfg, qdir = qconfig(outbox, tmp_path, sh, log=str(tmp_path / "o.log"))
    r = outbox.run(["-odq", "-f", SENDER, BAD], message("escape dsn"),
                   config=cfg)
    assert r.returncode == EX_OK, r.stderr
    assert len(queued_ids(qdir)) == 1
    r = outbox.run(["-q"], config=cfg)
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    dsns = [m for m in sh.messages if m.mail_from in ("", "<>")]
    assert len(dsns) == 1, sh.messages
    data = dsns[0].data
    # the DSN's lines end in CRLF, none is the server's forged field
    assert re.search(rb"\r(?!\n)", data) is None, data
    assert_no_raw_control("the DSN", data.replace(b"\r\n", b"\n"))
    assert ESCAPED.encode() in data, data
    assert_no_raw_control("the log", (tmp_path / "o.log").read_bytes())
