"""PIPELINING (RFC 2920): when the smarthost offers it, MAIL, the RCPTs and
DATA go out together and their replies are read afterwards, saving a round
trip per command; without it each command waits for its reply.

How the tests see it: the fixture's MAIL handler looks (for a bounded
while) whether the DATA command is already in its input buffer. With
pipelining it is there before MAIL is answered; without, it cannot be,
since outbox waits for the reply to MAIL before saying more. The refusal
cases (MAIL, RCPT, DATA refused under pipelining, the connection kept) run
in test_refusals.py with and without PIPELINING offered.
"""
import asyncio
import time

import pytest

from test_queue import describe, message, qconfig, queued_ids

SENDER = "sender@example.com"
RCPTS = [f"r{i}@example.com" for i in range(3)]
LOOK = 1.5      # seconds MAIL waits to see DATA in the input


def watch_pipelining(sh):
    """sh.data_with_mail[] gets, per MAIL, whether "DATA" followed it in
    the input before MAIL was answered."""
    base = sh._smtp_class
    sh.data_with_mail = []

    async def smtp_MAIL(self, arg):
        deadline = time.monotonic() + LOOK
        seen = False
        while time.monotonic() < deadline:
            buf = bytes(getattr(self._reader, "_buffer", b""))
            if b"\nDATA\r\n" in b"\n" + buf:
                seen = True
                break
            await asyncio.sleep(0.02)
        sh.data_with_mail.append(seen)
        return await base.smtp_MAIL(self, arg)

    sh._smtp_class = type("WatchSMTP", (base,), {"smtp_MAIL": smtp_MAIL})


@pytest.mark.parametrize("mode", ["plain", "starttls"])
def test_commands_go_together_when_offered(outbox, smarthost, tmp_path, mode):
    sh = smarthost(mode=mode, auth=mode != "plain",
                   ehlo_extra=["PIPELINING"])
    watch_pipelining(sh)
    cfg = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-f", SENDER, *RCPTS], message("together"), config=cfg)
    assert r.returncode == 0, describe(r)
    assert sh.wait_idle(10)
    assert sh.data_with_mail == [True], sh.verbs()
    assert [m.rcpt_tos for m in sh.messages] == [RCPTS]
    verbs = sh.verbs()
    i = verbs.index("MAIL")
    assert verbs[i:i + 5] == ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"], verbs


def test_one_by_one_when_not_offered(outbox, smarthost, tmp_path):
    sh = smarthost(mode="plain", auth=False)
    watch_pipelining(sh)
    cfg = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-f", SENDER, *RCPTS], message("one by one"),
                   config=cfg)
    assert r.returncode == 0, describe(r)
    assert sh.wait_idle(10)
    assert sh.data_with_mail == [False]
    assert [m.rcpt_tos for m in sh.messages] == [RCPTS]


def test_refused_recipient_among_pipelined_ones(outbox, smarthost, tmp_path):
    """One recipient refused (550) in the batch: the message goes to the
    others, the refused one is bounced, over one connection."""
    sh = smarthost(ehlo_extra=["PIPELINING"],
                   rcpt_replies={"bad@example.com": "550 5.1.1 no such user"})
    watch_pipelining(sh)
    config, qdir = qconfig(outbox, tmp_path, sh, log=str(tmp_path / "o.log"))
    rcpts = [RCPTS[0], "bad@example.com", RCPTS[1]]
    r = outbox.run(["-odq", "-f", SENDER, *rcpts], message("partly"),
                   config=config)
    assert r.returncode == 0, describe(r)
    r = outbox.run(["-q"], config=config, timeout=60)
    assert r.returncode == 0, describe(r)
    assert sh.wait_idle(10)
    got = [m for m in sh.messages if m.mail_from == SENDER]
    assert [m.rcpt_tos for m in got] == [[RCPTS[0], RCPTS[1]]]
    bounces = [m for m in sh.messages if m.mail_from in ("", "<>")]
    assert len(bounces) == 1 and b"bad@example.com" in bounces[0].data
    assert sh.data_with_mail[0] is True
    assert sh.connections == 1
    assert queued_ids(qdir) == []


def test_many_recipients_go_in_batches(outbox, smarthost, tmp_path):
    """150 recipients: more than one batch (64 commands at most), every
    recipient once, in order, and the message once."""
    rcpts = [f"m{i}@example.com" for i in range(150)]
    sh = smarthost(mode="plain", auth=False, ehlo_extra=["PIPELINING"])
    cfg = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-f", SENDER, *rcpts], message("many"), config=cfg,
                   timeout=60)
    assert r.returncode == 0, describe(r)
    assert sh.wait_idle(10)
    assert [m.rcpt_tos for m in sh.messages] == [rcpts]
    assert [c.arg for c in sh.commands if c.verb == "RCPT"] == \
        [f"TO:<{a}>" for a in rcpts]
