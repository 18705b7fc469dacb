"""Envelope parameters (issue 16): DSN (-N, -R, -V; RET, ENVID, NOTIFY,
ORCPT in -bs), 8BITMIME (-B, BODY=), SMTPUTF8 and IDN, against aiosmtpd
smarthosts that offer the extensions or not (the real Postfix side is in
test_postfix_params.py).
"""

import quopri
import re

import pytest

from conftest import split_message

NO_EXT = ("8BITMIME", "SMTPUTF8", "DSN")
UMLAUT_BODY = "Gr\u00fc\u00dfe aus M\u00fcnchen\n".encode()


def _mail_cmds(sh):
    return [c.arg for c in sh.commands if c.verb == "MAIL"]


def _rcpt_cmds(sh):
    return [c.arg for c in sh.commands if c.verb == "RCPT"]


def _log(tmp_path):
    p = tmp_path / "o.log"
    return p.read_text(errors="replace") if p.exists() else ""


# ---- the command line ----

@pytest.mark.parametrize("args,value,fix", [
    (["-N", "sometimes"], "sometimes", "never"),
    (["-N", "never,success"], "never,success", "never"),
    (["-N", "success,"], "success,", "success"),
    (["-R", "body"], "body", "hdrs"),
    (["-V", "a\x01b"], "a\x01b", "printable ASCII"),
    (["-V", "x" * 101], "x" * 101, "100"),
    (["-B", "9bit"], "9bit", "8bitmime"),
])
def test_bad_value_is_usage_error(outbox, smarthost, tmp_path, args, value,
                                  fix):
    sh = smarthost()
    config = outbox.write_config(tmp_path, sh)
    r = outbox.run(args + ["-i", "user@example.com"], b"Subject: x\n\nx\n",
                   config=config)
    assert r.returncode == 64, r.stderr
    err = r.stderr.decode(errors="replace")
    assert err.count("\n") == 1 and err.startswith("outbox: "), err
    assert value[:50] in err or repr(value)[1:-1][:20] in err \
        or "bad -V" in err, err
    assert fix in err, err
    assert sh.messages == [] and "MAIL" not in sh.verbs()


def test_no_extensions_nothing_extra_sent(outbox, smarthost, tmp_path):
    sh = smarthost(ehlo_drop=NO_EXT)
    config = outbox.write_config(tmp_path, sh)
    msg = b"Subject: plain\n\n" + UMLAUT_BODY
    r = outbox.run(["-N", "success,failure", "-R", "hdrs", "-V", "env-1",
                    "-B", "8bitmime", "-i", "user@b\u00fccher.example"], msg, config=config)
    assert r.returncode == 0, r.stderr
    (mail,) = _mail_cmds(sh)
    # only SIZE, which aiosmtpd offers: no RET, ENVID, BODY, SMTPUTF8
    assert re.fullmatch(r"FROM:<sender@example\.com> SIZE=\d+", mail), mail
    assert _rcpt_cmds(sh) == ["TO:<user@xn--bcher-kva.example>"]
    (m,) = sh.messages
    head, body = split_message(m.data)
    assert b"Content-Transfer-Encoding: quoted-printable\r\n" in head, head
    assert all(b < 0x80 for b in m.data), m.data
    assert quopri.decodestring(body) == UMLAUT_BODY.replace(b"\n", b"\r\n")


def test_extensions_offered_are_used(outbox, smarthost, tmp_path):
    sh = smarthost(ehlo_extra=["DSN"])
    # aiosmtpd refuses parameters it does not know (555): outbox must
    # never send DSN's there... unless offered, as here; so send none
    config = outbox.write_config(tmp_path, sh)
    msg = b"Subject: 8bit\n\n" + UMLAUT_BODY
    r = outbox.run(["-i", "user@b\u00fccher.example"], msg,
                   config=config)
    assert r.returncode == 0, r.stderr
    (mail,) = _mail_cmds(sh)
    assert " BODY=8BITMIME" in mail and " SMTPUTF8" in mail, mail
    assert _rcpt_cmds(sh) == ["TO:<user@b\u00fccher.example>"]
    (m,) = sh.messages
    assert UMLAUT_BODY.replace(b"\n", b"\r\n") in m.data


def test_utf8_local_part_refused_without_smtputf8(outbox, smarthost,
                                                  tmp_path):
    sh = smarthost(ehlo_drop=NO_EXT)
    config = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-i", "j\u00fcrgen@example.com",
                    "user@example.com"], b"Subject: x\n\nx\n",
                   config=config)
    assert r.returncode == 67, r.stderr
    err = r.stderr.decode(errors="replace")
    assert "SMTPUTF8" in err and "5.6.7" in err, err
    # never sent; the other recipient got it
    assert _rcpt_cmds(sh) == ["TO:<user@example.com>"]
    assert len(sh.messages) == 1
    # alone: nothing goes at all
    sh.commands.clear()
    r = outbox.run(["-i", "j\u00fcrgen@example.com"],
                   b"Subject: x\n\nx\n", config=config)
    assert r.returncode == 67, r.stderr
    assert "MAIL" not in sh.verbs() and len(sh.messages) == 1


# ---- -bs ----

def _bs(outbox, config, lines):
    text = "".join(l + "\r\n" for l in lines).encode()
    r = outbox.run(["-bs"], text, config=config)
    return r, [l for l in r.stdout.decode(errors="replace").split("\r\n")
               if l]


@pytest.mark.parametrize("cmd,code", [
    ("MAIL FROM:<a@example.com> RET=ALL", "501 5.5.4"),
    ("MAIL FROM:<a@example.com> ENVID=a=b", "501 5.5.4"),
    ("MAIL FROM:<a@example.com> BODY=BINARYMIME", "501 5.5.4"),
    ("MAIL FROM:<a@example.com> FOO=1", "555 5.5.4"),
])
def test_bs_bad_mail_param(outbox, tmp_path, cmd, code):
    config = outbox.write_config(tmp_path, "127.0.0.1:1")
    r, out = _bs(outbox, config, ["EHLO x", cmd, "QUIT"])
    assert any(l.startswith(code) for l in out), out
    bad = cmd.split(" ", 2)[2]
    assert any(bad in l for l in out if l.startswith(code)), out


@pytest.mark.parametrize("param", ["NOTIFY=NEVER,DELAY", "NOTIFY=SOMETIMES",
                                   "ORCPT=nosemicolon", "ORCPT=rfc822;a=b"])
def test_bs_bad_rcpt_param(outbox, tmp_path, param):
    config = outbox.write_config(tmp_path, "127.0.0.1:1")
    r, out = _bs(outbox, config, ["EHLO x", "MAIL FROM:<a@example.com>",
                                  "RCPT TO:<b@example.com> " + param,
                                  "QUIT"])
    assert out[-2].startswith("501 5.5.4"), out


def test_bs_params_go_to_dsn_server(outbox, smarthost, tmp_path):
    sh = smarthost(ehlo_extra=["DSN"])
    config = outbox.write_config(tmp_path, sh)
    r, out = _bs(outbox, config, [
        "EHLO x",
        "MAIL FROM:<sender@example.com> RET=HDRS ENVID=QQ+2Bid BODY=8BITMIME",
        "RCPT TO:<user@example.com> NOTIFY=SUCCESS,FAILURE "
        "ORCPT=rfc822;orig+2Buser@example.com",
        "DATA", "Subject: bs", "", "hello", ".", "QUIT"])
    assert any(l.startswith("250 2.0.0 Ok") for l in out), (out, r.stderr)
    assert "250-DSN" in out, out
    (mail,) = _mail_cmds(sh)
    assert mail.endswith(" BODY=8BITMIME RET=HDRS ENVID=QQ+2Bid") \
        or "RET=HDRS ENVID=QQ+2Bid" in mail, mail
    (rcpt,) = _rcpt_cmds(sh)
    assert rcpt == ("TO:<user@example.com> NOTIFY=SUCCESS,FAILURE "
                    "ORCPT=rfc822;orig+2Buser@example.com"), rcpt
