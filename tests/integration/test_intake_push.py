"""One way in for messages (issue 16): -bs feeds the DATA text straight
into the message parser that writes the spool, as stdin does.

What must hold with the text streamed (no copy first):
  * DATA cut short by the end of the input sends and queues nothing, and
    gets no reply (the session is over);
  * a message the parser refuses part-way (a header section over 1 MiB)
    is answered after its final dot, and the session goes on: the next
    message in it is delivered;
  * a stuffed dot and a lone "." inside DATA arrive as the client meant.
"""
from test_queue import describe, queued_ids

SENDER = "sender@example.com"
RCPT = "rcpt@example.com"


def session(*messages: bytes, end=b"QUIT\r\n") -> bytes:
    """An SMTP session for -bs: each message as DATA (already stuffed,
    without its final dot), each ended by CRLF.CRLF."""
    s = b"EHLO client.example.com\r\n"
    for m in messages:
        s += (b"MAIL FROM:<" + SENDER.encode() + b">\r\n"
              b"RCPT TO:<" + RCPT.encode() + b">\r\n"
              b"DATA\r\n" + m + b"\r\n.\r\n")
    return s + end


def replies(r):
    return [ln for ln in r.stdout.split(b"\r\n") if ln]


def test_data_cut_short_sends_and_queues_nothing(outbox, smarthost,
                                                 tmp_path):
    sh = smarthost()
    qdir = tmp_path / "q"
    cfg = outbox.write_config(tmp_path, sh, queue=str(qdir))
    script = (b"EHLO client.example.com\r\n"
              b"MAIL FROM:<" + SENDER.encode() + b">\r\n"
              b"RCPT TO:<" + RCPT.encode() + b">\r\n"
              b"DATA\r\nSubject: cut\r\n\r\nthe first half of")
    r = outbox.run(["-bs"], script, config=cfg)
    assert sh.wait_idle()
    assert sh.messages == [] and "MAIL" not in sh.verbs(), describe(r)
    assert not qdir.exists() or queued_ids(qdir) == []
    assert not [ln for ln in replies(r) if ln.startswith(b"250 2.0.0 Ok:")]
    assert replies(r)[-1].startswith(b"354"), r.stdout


def test_refused_part_way_then_the_session_goes_on(outbox, smarthost,
                                                   tmp_path):
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh)
    huge = b"Subject: huge\r\n" + b"X-Pad: " + b"y" * 990 + b"\r\n"
    huge = huge * 1100 + b"\r\nbody\r\n"          # > 1 MiB of header
    good = b"Subject: good\r\n\r\nafter the refusal\r\n"
    r = outbox.run(["-bs"], session(huge, good), config=cfg, timeout=60)
    lines = replies(r)
    # 554 for the first after its whole DATA, 250 for the second, 221
    finals = [ln for ln in lines if ln[:3] in (b"554", b"250")
              and (b"Ok:" in ln or ln.startswith(b"554"))]
    assert finals[0].startswith(b"554 5.6.0") and b"1 MiB" in finals[0], \
        lines
    assert finals[1].startswith(b"250 2.0.0 Ok:"), lines
    assert lines[-1] == b"221 2.0.0 Bye", lines
    assert sh.wait_idle()
    assert len(sh.messages) == 1
    assert b"after the refusal" in sh.messages[0].data


def test_dots_in_data_arrive_as_meant(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh)
    # stuffed as a client must: "..x" is ".x", ".." alone is "."
    data = b"Subject: dots\r\n\r\n..x\r\n..\r\nend\r\n..."
    r = outbox.run(["-bs"], session(data), config=cfg)
    assert any(ln.startswith(b"250 2.0.0 Ok:") for ln in replies(r)), \
        r.stdout
    assert sh.wait_idle()
    (m,) = sh.messages
    assert m.data.split(b"\r\n\r\n", 1)[1] == b".x\r\n.\r\nend\r\n..\r\n"
