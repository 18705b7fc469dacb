"""A CR not followed by LF is a line ending, on stdin and in -bs DATA.

What the smarthost receives never holds a bare CR (nor a bare LF), so no
byte sequence of a message can end DATA early at a relay that takes
<CR>.<CR><LF> or <LF>.<LF> as the end of data ("SMTP smuggling"), and a
message whose lines end in CR alone keeps its header/body split.
"""

import re

import pytest

from conftest import parse_headers, split_message

EX_OK = 0
SENDER = "cron@example.com"
RCPT = "admin@example.com"
EVIL = b"MAIL FROM:<ceo@evil.example>\r\nRCPT TO:<victim@evil.example>\r\n" \
       b"DATA\r\nFrom: ceo@evil.example\r\n\r\nsmuggled\r\n.\r\n"

SMUGGLE = (b"From: cron@example.com\r\nTo: admin@example.com\r\n"
           b"Subject: smuggling\r\n\r\nbefore\r\n"
           b"\r.\r\n" + EVIL +          # <CR>.<CR><LF>
           b"x\n.\r" + EVIL +            # <LF>.<CR>
           b"y\r.\n" + EVIL +            # <CR>.<LF>
           b"after\r\n")

CR_ONLY = (b"From: cron@example.com\rTo: admin@example.com\r"
           b"Subject: cr only\r\rline one\rline two\r")


def assert_clean_line_ends(data: bytes):
    """Every CR is followed by LF and every LF preceded by CR."""
    for m in re.finditer(rb"\r(?!\n)|(?<!\r)\n", data):
        what = "CR" if m.group() == b"\r" else "LF"
        pytest.fail(f"bare {what} at "
                    f"offset {m.start()} of what the server received: "
                    f"{data[max(0, m.start() - 20):m.start() + 20]!r}")


def one_session(sh):
    """The server saw exactly one MAIL, one RCPT and one DATA."""
    assert sh.wait_idle()
    verbs = sh.verbs()
    assert verbs.count("MAIL") == 1 and verbs.count("DATA") == 1, verbs
    assert verbs.count("RCPT") == 1, verbs
    assert len(sh.messages) == 1
    m = sh.messages[0]
    assert m.mail_from == SENDER and m.rcpt_tos == [RCPT]
    return m


def bs_script(body: bytes) -> bytes:
    """An SMTP session on stdin for -bs; body is sent as DATA as is,
    ended by CRLF.CRLF (lone dots in it are stuffed, as a client must)."""
    stuffed = re.sub(rb"(^|\n)\.", rb"\1..", body)
    if stuffed.endswith(b"\r\n"):
        stuffed = stuffed[:-2]
    return (b"EHLO client.example.com\r\n"
            b"MAIL FROM:<" + SENDER.encode() + b">\r\n"
            b"RCPT TO:<" + RCPT.encode() + b">\r\n"
            b"DATA\r\n" + stuffed + b"\r\n.\r\nQUIT\r\n")


@pytest.mark.parametrize("how", ["stdin -i", "-bs"])
def test_smuggling_payload_cannot_end_data(outbox, smarthost, tmp_path, how):
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh)
    if how == "-bs":
        r = outbox.run(["-bs"], bs_script(SMUGGLE), config=cfg)
        # outbox(8), SMTP ON STANDARD INPUT: the final dot is answered
        # "250 2.0.0 Ok: delivered via HOST:PORT: REPLY"; one message,
        # so one such reply, then QUIT's
        lines = r.stdout.split(b"\r\n")
        oks = [l for l in lines if l.startswith(b"250 2.0.0 Ok:")]
        assert len(oks) == 1, r.stdout
        assert f"delivered via {sh.hostport}".encode() in oks[0], r.stdout
        assert lines[-2:] == [b"221 2.0.0 Bye", b""], r.stdout
    else:
        r = outbox.run(["-i", "-f", SENDER, RCPT], SMUGGLE, config=cfg)
    assert r.returncode == EX_OK, r.stderr
    m = one_session(sh)
    assert_clean_line_ends(m.data)
    _, body = split_message(m.data)
    # the payload is body text, every line of it, each bare CR a line end
    assert body.startswith(b"before\r\n\r\n.\r\nMAIL FROM:<ceo@evil.example>")
    assert body.count(b"MAIL FROM:<ceo@evil.example>\r\n") == 3
    assert b"\r\nx\r\n.\r\n" in body and b"\r\ny\r\n.\r\n" in body
    assert body.endswith(b"after\r\n")


def test_smuggling_payload_without_i_ends_at_the_dot(outbox, smarthost,
                                                     tmp_path):
    """Without -i a lone dot ends the input, a CR-ended one too: what
    follows is not sent at all (sendmail's rule), let alone as commands."""
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-f", SENDER, RCPT], SMUGGLE, config=cfg)
    assert r.returncode == EX_OK, r.stderr
    m = one_session(sh)
    assert_clean_line_ends(m.data)
    _, body = split_message(m.data)
    assert body == b"before\r\n\r\n"
    assert b"evil" not in m.data


@pytest.mark.parametrize("how", ["stdin", "-bs"])
def test_cr_only_message_keeps_its_header_body_split(outbox, smarthost,
                                                     tmp_path, how):
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh)
    if how == "-bs":
        # the last line ends with the CRLF before the final dot
        r = outbox.run(["-bs"], bs_script(CR_ONLY[:-1]), config=cfg)
    else:
        r = outbox.run(["-f", SENDER, RCPT], CR_ONLY, config=cfg)
    assert r.returncode == EX_OK, r.stderr
    m = one_session(sh)
    assert_clean_line_ends(m.data)
    fields = dict(parse_headers(m.data))
    assert fields.get("Subject") == b"cr only", fields
    assert fields.get("To") == b"admin@example.com", fields
    _, body = split_message(m.data)
    assert body == b"line one\r\nline two\r\n"


def test_bare_cr_in_a_header_cannot_hide_a_bcc(outbox, smarthost, tmp_path):
    """A CR inside a field ends it: a Bcc behind it is a field of its own
    and is removed, not carried to every recipient inside the Subject."""
    sh = smarthost()
    cfg = outbox.write_config(tmp_path, sh)
    msg = (b"From: cron@example.com\r\nTo: admin@example.com\r\n"
           b"Subject: hi\rBcc: hidden@example.com\r\n\r\nbody\r\n")
    r = outbox.run(["-t", "-f", SENDER], msg, config=cfg)
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(sh.messages) == 1
    m = sh.messages[0]
    assert sorted(m.rcpt_tos) == ["admin@example.com", "hidden@example.com"]
    assert_clean_line_ends(m.data)
    assert b"hidden@example.com" not in m.data
    assert dict(parse_headers(m.data)).get("Subject") == b"hi"
