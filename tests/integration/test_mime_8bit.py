"""8-bit multipart messages (issue 16): to an aiosmtpd smarthost that does
not offer 8BITMIME, the 8-bit text parts arrive re-encoded as
quoted-printable, the rest byte for byte, and Python's email package
decodes every part to exactly the original; to one that offers 8BITMIME
the same message arrives unchanged with BODY=8BITMIME. What cannot be
re-encoded goes as it is, with a log line saying why.
"""

import base64
import email
import os
import re

from conftest import split_message

NO_EXT = ("8BITMIME", "SMTPUTF8", "DSN")
PLAIN = "Gr\u00fc\u00dfe aus M\u00fcnchen \u2014 \u00e7a va?\n" * 3
HTML = "<p>Gr\u00fc\u00dfe aus <b>M\u00fcnchen</b> \u2603</p>\n"


def crlf(text):
    return text.replace("\n", "\r\n").encode()


def alternative():
    return crlf(
        "From: app@example.com\nTo: user@example.com\n"
        "Subject: alternative\nMIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="=_alt 42"\n\n'
        "This is a multi-part message in MIME format.\n"
        "--=_alt 42\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\n" + PLAIN +
        "--=_alt 42\nContent-Type: text/html; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\n" + HTML +
        "--=_alt 42--\n")


def mixed(blob):
    b64 = base64.encodebytes(blob).decode()
    return crlf(
        "From: app@example.com\nTo: user@example.com\n"
        "Subject: report\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed;\n boundary=mix\n\n"
        "--mix\nContent-Type: multipart/alternative; boundary=inner\n\n"
        "--inner\nContent-Type: text/plain; charset=utf-8\n\n" + PLAIN +
        "--inner\nContent-Type: text/html; charset=utf-8\n"
        "Content-Transfer-Encoding:\n 8bit\n\n" + HTML +
        "--inner--\n"
        "--mix\nContent-Type: application/octet-stream\n"
        'Content-Disposition: attachment; filename="data.bin"\n'
        "Content-Transfer-Encoding: base64\n\n" + b64 +
        "--mix\nContent-Type: message/rfc822\n\n"
        "From: old@example.com\nSubject: forwarded\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\n" + PLAIN +
        "--mix--\nepilogue\n")


def leaves(data):
    """(content type, declared encoding, decoded payload) of each leaf."""
    msg = email.message_from_bytes(data)
    assert not msg.defects, msg.defects
    out = []
    for part in msg.walk():
        assert not part.defects, (part.get_content_type(), part.defects)
        if part.is_multipart():
            continue
        out.append((part.get_content_type(),
                    part.get("Content-Transfer-Encoding", "").strip().lower(),
                    part.get_payload(decode=True)))
    return out


def check_7bit(original, received, recoded):
    """received is 7-bit, its lines within limits, and decodes part for
    part to original; the types in recoded arrived quoted-printable, all
    others with their original encoding."""
    assert all(b < 0x80 for b in received), received
    assert max(len(l) for l in received.split(b"\r\n")) <= 998
    assert b"\n" not in received.replace(b"\r\n", b"")
    want, got = leaves(original), leaves(received)
    assert [t for t, _, _ in got] == [t for t, _, _ in want]
    for (t, cte_w, body_w), (_, cte_g, body_g) in zip(want, got):
        assert body_g == body_w, t
        assert cte_g == ("quoted-printable" if t in recoded else cte_w), t
    # every quoted-printable line within 76 octets
    for line in received.split(b"\r\n"):
        if b"=" in line and re.search(rb"=[0-9A-F]{2}", line):
            assert len(line) <= 76, line


def _log(tmp_path):
    p = tmp_path / "o.log"
    return p.read_text(errors="replace") if p.exists() else ""


def _send(outbox, sh, tmp_path, msg, name="outbox.conf"):
    config = outbox.write_config(tmp_path, sh, name=name,
                                 log=str(tmp_path / "o.log"))
    r = outbox.run(["-i", "user@example.com"], msg, config=config)
    assert r.returncode == 0, r.stderr
    return sh.messages[-1]


def test_alternative_arrives_7bit(outbox, smarthost, tmp_path):
    sh = smarthost(ehlo_drop=NO_EXT)
    msg = alternative()
    m = _send(outbox, sh, tmp_path, msg)
    assert "BODY=" not in " ".join(m.mail_options), m.mail_options
    check_7bit(msg, m.data, {"text/plain", "text/html"})
    # preamble, boundaries and the part headers other than the encoding
    head, body = split_message(m.data)
    assert body.startswith(b"This is a multi-part message in MIME format."
                           b"\r\n--=_alt 42\r\nContent-Type: text/plain; "
                           b"charset=utf-8\r\nContent-Transfer-Encoding: "
                           b"quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe"), body
    assert body.endswith(b"\r\n--=_alt 42--\r\n"), body
    assert b"8bit" not in m.data
    assert "2 8-bit text parts re-encoded as quoted-printable" in \
        _log(tmp_path), _log(tmp_path)


def test_mixed_with_attachment_arrives_7bit(outbox, smarthost, tmp_path):
    sh = smarthost(ehlo_drop=NO_EXT)
    blob = os.urandom(5000)
    msg = mixed(blob)
    m = _send(outbox, sh, tmp_path, msg)
    check_7bit(msg, m.data, {"text/plain", "text/html"})
    # the attachment's lines go byte for byte, and decode to the blob
    b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
    assert b64 in m.data
    (att,) = [p for t, _, p in leaves(m.data)
              if t == "application/octet-stream"]
    assert att == blob
    # inside the forwarded message too; its header fields as they were
    assert b"\r\n\r\nFrom: old@example.com\r\nSubject: forwarded\r\n" \
        b"Content-Type: text/plain; charset=utf-8\r\n" \
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" in m.data
    assert m.data.endswith(b"\r\n--mix--\r\nepilogue\r\n")
    assert "3 8-bit text parts re-encoded" in _log(tmp_path)


def test_8bitmime_server_gets_it_unchanged(outbox, smarthost, tmp_path):
    sh = smarthost()                       # offers 8BITMIME
    for i, msg in enumerate([alternative(), mixed(os.urandom(3000))]):
        m = _send(outbox, sh, tmp_path, msg, name=f"c{i}.conf")
        assert "BODY=8BITMIME" in m.mail_options, m.mail_options
        assert split_message(m.data)[1] == split_message(msg)[1]
        assert leaves(m.data) == leaves(msg)
    assert "re-encoded" not in _log(tmp_path)


def test_what_cannot_be_reencoded_goes_as_it_is(outbox, smarthost,
                                                tmp_path):
    sh = smarthost(ehlo_drop=NO_EXT)
    # no closing boundary: the structure cannot be followed
    broken = alternative().replace(b"--=_alt 42--\r\n", b"")
    m = _send(outbox, sh, tmp_path, broken)
    assert split_message(m.data)[1] == split_message(broken)[1]
    log = _log(tmp_path)
    assert re.search(r"an 8-bit message goes as it is to a smarthost "
                     r"without 8BITMIME: a multipart has no closing "
                     r"boundary", log), log
    # an 8-bit part that is not text: the text is re-encoded, it is not
    msg = crlf("Subject: x\nMIME-Version: 1.0\n"
               "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n"
               + PLAIN + "--b\nContent-Type: application/x-raw\n"
               "Content-Transfer-Encoding: 8bit\n\n") + \
        b"\xff\xfe raw\r\n--b--\r\n"
    m = _send(outbox, sh, tmp_path, msg, name="raw.conf")
    assert b"\r\n\r\n\xff\xfe raw\r\n--b--\r\n" in m.data
    (text, raw) = leaves(m.data)
    assert text[1] == "quoted-printable" and \
        text[2] == crlf(PLAIN)[:-2]     # the last CRLF: the boundary's
    assert "1 8-bit text part re-encoded as quoted-printable; 8-bit bytes " \
        "remain: a part of type application/x-raw in 8bit has 8-bit bytes" \
        in _log(tmp_path), _log(tmp_path)
