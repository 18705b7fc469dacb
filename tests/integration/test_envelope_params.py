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


def test_param_refused_is_protocol_fault_not_loss(outbox, smarthost,
                                                  tmp_path):
    # aiosmtpd claims DSN here but answers 555 to its parameters
    sh = smarthost(ehlo_extra=["DSN"])
    qdir = tmp_path / "q"
    config = outbox.write_config(tmp_path, sh, queue=qdir,
                                 log=str(tmp_path / "o.log"))
    r, out = _bs(outbox, config, [
        "EHLO x",
        "MAIL FROM:<sender@example.com> RET=HDRS ENVID=QQ+2Bid",
        "RCPT TO:<user@example.com> NOTIFY=SUCCESS,FAILURE "
        "ORCPT=rfc822;orig+2Buser@example.com",
        "DATA", "Subject: bs", "", "hello", ".", "QUIT"])
    assert "250-DSN" in out, out            # -bs offers DSN itself
    (mail,) = _mail_cmds(sh)
    assert mail.endswith(" RET=HDRS ENVID=QQ+2Bid"), mail
    assert sh.messages == []
    # queued, not bounced, and the log says why
    assert any(l.startswith("250 2.0.0 Ok: queued as") for l in out), out
    assert len(list((qdir / "msg").glob("*.env"))) == 1
    log = _log(tmp_path)
    assert "protocol error: smarthost" in log and "555" in log, log
    env = next((qdir / "msg").glob("*.env")).read_text()
    assert "ret HDRS\n" in env and "envid QQ+2Bid\n" in env, env
    assert ("dsn-rcpt NOTIFY=SUCCESS,FAILURE "
            "ORCPT=rfc822;orig+2Buser@example.com <user@example.com>") \
        in env, env


def _dsns(sh):
    return [m for m in sh.messages if m.mail_from in ("", "<>")]


def test_notify_never_no_bounce(outbox, smarthost, tmp_path):
    sh = smarthost(ehlo_drop=NO_EXT)       # bad@example.com -> 550
    qdir = tmp_path / "q"
    config = outbox.write_config(tmp_path, sh, queue=qdir,
                                 log=str(tmp_path / "o.log"))
    for notify in ("never", "success"):
        r = outbox.run(["-odq", "-N", notify, "-i", "bad@example.com"],
                       b"Subject: " + notify.encode() + b"\n\nx\n",
                       config=config)
        assert r.returncode == 0, r.stderr
    r = outbox.run(["-q"], config=config)
    assert r.returncode == 0, r.stderr
    assert sh.wait_idle()
    assert _dsns(sh) == [], sh.messages
    assert _log(tmp_path).count("NOTIFY excludes FAILURE") == 2
    # and without -N (or with failure) there is one: the test can fail
    r = outbox.run(["-odq", "-N", "failure,delay", "-i", "bad@example.com"],
                   b"Subject: failure\n\nx\n", config=config)
    assert r.returncode == 0, r.stderr
    r = outbox.run(["-q"], config=config)
    assert sh.wait_idle()
    assert len(_dsns(sh)) == 1, sh.messages


def test_own_dsn_carries_envid_orcpt_and_ret(outbox, smarthost, tmp_path):
    sh = smarthost(ehlo_drop=NO_EXT)       # bad@example.com -> 550
    qdir = tmp_path / "q"
    config = outbox.write_config(tmp_path, sh, queue=qdir,
                                 log=str(tmp_path / "o.log"))
    body = "the secret body line"
    r, out = _bs(outbox, config, [
        "EHLO x",
        "MAIL FROM:<sender@example.com> ENVID=my+2Benv RET=HDRS",
        "RCPT TO:<bad@example.com> ORCPT=rfc822;first+2Bbad@example.com",
        "RCPT TO:<user@example.com>",
        "DATA", "Subject: partly", "", body, ".",
        "MAIL FROM:<sender@example.com> RET=FULL",
        "RCPT TO:<bad@example.com>", "RCPT TO:<user@example.com>",
        "DATA", "Subject: full", "", body, ".", "QUIT"])
    assert sum(l.startswith("250 2.0.0 Ok, but 1 recipient") for l in out) \
        == 2, out
    r = outbox.run(["-q"], config=config)      # the queued DSNs go now
    assert sh.wait_idle()
    dsns = [m.data for m in _dsns(sh)]
    assert len(dsns) == 2, sh.messages
    (hdrs,) = [d for d in dsns if b"Subject: partly" in d]
    (full,) = [d for d in dsns if b"Subject: full" in d]
    assert b"Original-Envelope-Id: my+env\r\n" in hdrs, hdrs
    assert b"Original-Recipient: rfc822;first+bad@example.com\r\n" \
        b"Final-Recipient: rfc822; bad@example.com\r\n" in hdrs, hdrs
    assert b"text/rfc822-headers" in hdrs and body.encode() not in hdrs
    assert b"Original-Envelope-Id" not in full
    assert b"Content-Type: message/rfc822" in full, full
    assert body.encode() in full, full


def test_utf8_local_part_in_bs_and_from_the_queue(outbox, smarthost,
                                                  tmp_path):
    sh = smarthost(ehlo_drop=NO_EXT)
    config = outbox.write_config(tmp_path, sh)
    r, out = _bs(outbox, config, [
        "EHLO x", "MAIL FROM:<sender@example.com>",
        "RCPT TO:<j\u00fcrgen@example.com>", "DATA", "Subject: bs", "",
        "x", ".", "QUIT"])
    (last,) = [l for l in out if l.startswith("5")]
    assert last.startswith("550 ") and "SMTPUTF8" in last, out
    assert "MAIL" not in sh.verbs()
    # from the queue: a bounce that says why
    qdir = tmp_path / "q"
    config = outbox.write_config(tmp_path, sh, queue=qdir, name="q.conf")
    r = outbox.run(["-odq", "-i", "j\u00fcrgen@example.com"],
                   b"Subject: queued\n\nx\n", config=config)
    assert r.returncode == 0, r.stderr
    r = outbox.run(["-q"], config=config)
    assert sh.wait_idle()
    (dsn,) = _dsns(sh)
    assert b"Status: 5.6.7" in dsn.data and b"SMTPUTF8" in dsn.data, dsn.data


def test_body_type_declared(outbox, smarthost, tmp_path):
    sh = smarthost()                       # offers 8BITMIME
    config = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-B", "7bit", "-i", "user@example.com"],
                   b"Subject: ascii\n\nx\n", config=config)
    assert r.returncode == 0, r.stderr
    r = outbox.run(["-B", "7bit", "-i", "user@example.com"],
                   b"Subject: not ascii\n\n" + UMLAUT_BODY, config=config)
    assert r.returncode == 0, r.stderr
    r = outbox.run(["-i", "user@example.com"], b"Subject: none\n\nx\n",
                   config=config)
    assert r.returncode == 0, r.stderr
    mails = _mail_cmds(sh)
    assert " BODY=7BIT" in mails[0], mails
    assert " BODY=8BITMIME" in mails[1], mails    # it has 8-bit bytes
    assert "BODY=" not in mails[2], mails


def test_utf8_sender_local_part_fails_message(outbox, smarthost, tmp_path):
    sh = smarthost(ehlo_drop=NO_EXT)
    config = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-f", "j\u00fcrgen@example.com", "-i",
                    "user@example.com"], b"Subject: x\n\nx\n", config=config)
    assert r.returncode == 69, r.stderr
    err = r.stderr.decode(errors="replace")
    assert "550 5.6.7" in err and "SMTPUTF8" in err, err
    assert "MAIL" not in sh.verbs() and sh.messages == []
    # with SMTPUTF8 offered it goes, as it is
    sh2 = smarthost()
    config = outbox.write_config(tmp_path, sh2, name="utf8.conf")
    r = outbox.run(["-f", "j\u00fcrgen@example.com", "-i",
                    "user@example.com"], b"Subject: x\n\nx\n", config=config)
    assert r.returncode == 0, r.stderr
    (mail,) = _mail_cmds(sh2)
    assert mail.startswith("FROM:<j\u00fcrgen@example.com>") and \
        " SMTPUTF8" in mail, mail
