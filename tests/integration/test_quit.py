"""No waiting for the reply to QUIT (issue 17): once the smarthost has
accepted the message (250 after the data) outbox says QUIT and closes, so
the caller does not pay a round trip for the 221.
"""
import asyncio
import time

from aiosmtpd.smtp import SMTP

MSG = b"Subject: quit\r\n\r\nbody\r\n"
DELAY = 2.0


def slow_quit(sh, seen):
    """Make sh answer QUIT DELAY seconds late; seen[] gets the monotonic
    time at which the 221 is due (the QUIT's arrival + DELAY)."""
    base = sh._smtp_class

    async def smtp_QUIT(self, arg):
        seen.append(time.monotonic() + DELAY)
        await asyncio.sleep(DELAY)
        return await SMTP.smtp_QUIT(self, arg)

    def eof_received(self):
        # aiosmtpd cancels its command loop at the client's end of stream,
        # racing the QUIT that came just before it: read that QUIT first
        return asyncio.StreamReaderProtocol.eof_received(self)

    sh._smtp_class = type("SlowQuitSMTP", (base,), {
        "smtp_QUIT": smtp_QUIT, "eof_received": eof_received})


def drop_after_250(sh):
    """Make sh close the connection right after its 250 to the data."""
    base = sh._smtp_class

    async def smtp_DATA(self, arg):
        await SMTP.smtp_DATA(self, arg)
        raw = getattr(self, "_original_transport", None) or self.transport
        raw.abort()

    sh._smtp_class = type("DropSMTP", (base,), {"smtp_DATA": smtp_DATA})


def test_exit_before_the_quit_reply(outbox, smarthost, tmp_path):
    # plain: under TLS aiosmtpd drops a QUIT that arrives with the close
    # (asyncio's SSL transport reports the connection lost at once)
    sh = smarthost(mode="plain", auth=False)
    seen = []
    slow_quit(sh, seen)
    cfg = outbox.write_config(tmp_path, sh)
    start = time.monotonic()
    r = outbox.run(["rcpt@example.com"], MSG, config=cfg)
    done = time.monotonic()
    assert r.returncode == 0, r.stderr
    assert len(sh.messages) == 1
    assert sh.wait_idle(10)
    assert sh.verbs().count("QUIT") == 1      # said, not waited for
    # the caller was back before the server even sent its 221
    assert seen and done < seen[0]
    assert done - start < 30


def test_queued_exit_before_the_quit_reply(outbox, smarthost, tmp_path):
    sh = smarthost(mode="plain", auth=False)
    seen = []
    slow_quit(sh, seen)
    cfg = outbox.write_config(tmp_path, sh, queue=str(tmp_path / "q"))
    r = outbox.run(["rcpt@example.com"], MSG, config=cfg)
    done = time.monotonic()
    assert r.returncode == 0, r.stderr
    assert sh.wait_idle(10)
    assert seen and done < seen[0]
    assert len(sh.messages) == 1
    assert not list((tmp_path / "q" / "msg").iterdir())


def test_dropped_after_250_neither_lost_nor_duplicated(outbox, smarthost,
                                                       tmp_path):
    sh = smarthost()
    drop_after_250(sh)
    queue = tmp_path / "q"
    cfg = outbox.write_config(tmp_path, sh, queue=str(queue))
    r = outbox.run(["rcpt@example.com"], MSG, config=cfg)
    assert r.returncode == 0, r.stderr
    assert b"status=sent" in r.stderr
    assert sh.wait_idle(10)
    assert len(sh.messages) == 1
    assert not list((queue / "msg").iterdir())
    # a queue run finds nothing to send again
    r = outbox.run(["-q"], config=cfg)
    assert r.returncode == 0, r.stderr
    assert len(sh.messages) == 1
    # and without a queue: exit 0, delivered once
    cfg = outbox.write_config(tmp_path, sh, name="direct.conf")
    r = outbox.run(["rcpt@example.com"], MSG, config=cfg)
    assert r.returncode == 0, r.stderr
    assert len(sh.messages) == 2
