"""Header fields that strict relays and receivers accept (issue 19).

Contract under test (outbox.conf(5), "Header fields"):
  - bare local names in the address fields (From, Sender, Reply-To, To, Cc,
    Resent-*, Return-Receipt-To, Disposition-Notification-To, ...) are
    qualified with `domain`, unless `qualify-headers off`; display names,
    comments and groups stay, nothing else in the message changes, and a
    message that needs no change arrives byte for byte;
  - `from-header local` (the default) puts the `from` address in a From
    (and Sender) whose addresses are all local, keeping the display name;
    `always` does it to every From and keeps the author in a Reply-To;
    `keep` only qualifies;
  - -t takes the recipients from the fields as the client wrote them
    (aliases see the bare names); the header fields never carry alias
    targets;
  - -v names the fields changed; the log says "header From rewritten" once
    per message; -bv shows the From and the recipients as they will go;
  - a Microsoft-365-like smarthost (550 5.7.60 unless the From is the
    authenticated account) takes cron's mail with the default from-header,
    and without it the refusal is reported, and bounced from the queue,
    with the server's text.

The message shapes are those the programs write (their sources): Debian
cron 3.0pl1 do_command.c ("From: root (Cron Daemon)", run as
`sendmail -FCronDaemon -i -B8BITMIME -oem root`), cronie ("From:
\"(Cron Daemon)\" <root>", `-FCronDaemon -i -odi -oem -oi -t -f root`),
anacron runjob.c ("From: Anacron <root>", `-FAnacron -odi root`), fail2ban
sendmail-common.conf / sendmail.conf ("From: Fail2Ban <fail2ban>",
`sendmail -f fail2ban root`).
"""

import email.utils
import re
from pathlib import Path

import pytest

from conftest import Message, header_values, parse_headers, split_message

ACCOUNT = "cron@example.com"
M365_REFUSAL = ("550 5.7.60 SMTP; Client does not have permissions to send "
                "as this sender")

EX_OK = 0
EX_UNAVAILABLE = 69
EX_CONFIG = 78

CRON = (b"From: root (Cron Daemon)\n"
        b"To: root\n"
        b"Subject: Cron <root@db1> /usr/local/bin/backup.sh\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=UTF-8\n"
        b"Content-Transfer-Encoding: 8bit\n"
        b"X-Cron-Env: <SHELL=/bin/sh>\n"
        b"X-Cron-Env: <HOME=/root>\n"
        b"X-Cron-Env: <PATH=/usr/bin:/bin>\n"
        b"X-Cron-Env: <LOGNAME=root>\n"
        b"\n"
        b"backup: 3 files rotated\n")
CRONIE = (b"From: \"(Cron Daemon)\" <root>\n"
          b"To: root\n"
          b"Subject: Cron <root@db1> run-parts /etc/cron.hourly\n"
          b"MIME-Version: 1.0\n"
          b"Content-Type: text/plain; charset=UTF-8\n"
          b"Auto-Submitted: auto-generated\n"
          b"Precedence: bulk\n"
          b"X-Cron-Env: <SHELL=/bin/sh>\n"
          b"X-Cron-Env: <LOGNAME=root>\n"
          b"\n"
          b"/etc/cron.hourly/check: disk 91% full\n")
ANACRON = (b"From: Anacron <root>\n"
           b"To: root\n"
           b"MIME-Version: 1.0\n"
           b"Content-Type: text/plain; charset=\"UTF-8\"\n"
           b"Subject: Anacron job 'cron.daily' on db1\n"
           b"\n"
           b"/etc/cron.daily/logrotate:\n"
           b"error: skipping \"/var/log/nginx/access.log\"\n")
FAIL2BAN = (b"Subject: [Fail2Ban] sshd: started on db1.example.com\n"
            b"Date: Mon, 01 Jan 2024 12:00:00 +0000\n"
            b"From: Fail2Ban <fail2ban>\n"
            b"To: root\n"
            b"\n"
            b"Hi,\n"
            b"\n"
            b"The jail sshd has been started successfully.\n"
            b"\n"
            b"Regards,\n"
            b"\n"
            b"Fail2Ban")

# name: (message, argv with the recipient as an operand, the same with -t,
#        From with from-header local, From with keep)
SHAPES = {
    "cron": (CRON, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"],
             ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-t"],
             b"Cron Daemon <cron@example.com>",
             b"root@example.com (Cron Daemon)"),
    "cronie": (CRONIE, ["-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-f",
                        "root", "root"],
               ["-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f",
                "root"],
               b"\"(Cron Daemon)\" <cron@example.com>",
               b"\"(Cron Daemon)\" <root@example.com>"),
    "anacron": (ANACRON, ["-FAnacron", "-odi", "root"],
                ["-FAnacron", "-odi", "-t"],
                b"Anacron <cron@example.com>",
                b"Anacron <root@example.com>"),
    "fail2ban": (FAIL2BAN, ["-f", "fail2ban", "root"],
                 ["-f", "fail2ban", "-t"],
                 b"Fail2Ban <cron@example.com>",
                 b"Fail2Ban <fail2ban@example.com>"),
}


def describe(r) -> str:
    return (f"exit {r.returncode}\n--- stderr ---\n"
            f"{r.stderr.decode('utf-8', 'replace')}\n--- stdout ---\n"
            f"{r.stdout.decode('utf-8', 'replace')}")


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lines_of(head: bytes):
    return [ln for ln in head.split(b"\r\n") if ln]


def config_for(outbox, tmp_path, sh, **over):
    over.setdefault("from", ACCOUNT)
    return outbox.write_config(tmp_path, sh, **over)


def run(outbox, sh, config, args, data):
    r = outbox.run(args, data, config=config)
    if hasattr(sh, "wait_idle"):
        assert sh.wait_idle()
    return r


# ---------------------------------------------------------------------------
# A smarthost that behaves like Microsoft 365
# ---------------------------------------------------------------------------

def from_address(data: bytes):
    """The one address of the From field, or None."""
    values = [v.decode("utf-8", "replace") for v in header_values(data, "From")]
    found = email.utils.getaddresses(values)
    return found[0][1] if len(found) == 1 and found[0][1] else None


def make_m365(smarthost, account=ACCOUNT):
    """A smarthost whose DATA answers 550 5.7.60 (SendAsDenied) unless the
    From field's address is the authenticated user, as Exchange Online
    does; refusals land in .rejected."""
    sh = smarthost(users={account: "secret"})
    accept = sh._handler.handle_DATA

    async def handle_DATA(server, session, envelope):
        login = getattr(session.auth_data, "login", None)
        if isinstance(login, bytes):
            login = login.decode("utf-8", "surrogateescape")
        data = bytes(envelope.original_content)
        sender = from_address(data)
        if (session.authenticated and sender is not None and login
                and sender.lower() == login.lower()):
            return await accept(server, session, envelope)
        sh.rejected.append(Message(
            mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
            data=data, auth_user=login, tls=True, reply=M365_REFUSAL))
        return M365_REFUSAL

    sh._handler.handle_DATA = handle_DATA
    return sh


# ---------------------------------------------------------------------------
# 1. What Debian's daemons write, through stdin and -t
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["operand", "-t"])
@pytest.mark.parametrize("from_header", ["local", "keep"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_daemon_shapes(outbox, smarthost, tmp_path, shape, how, from_header):
    data, argv, argv_t, from_local, from_keep = SHAPES[shape]
    sh = smarthost()
    config = config_for(outbox, tmp_path, sh, from_header=from_header)
    r = run(outbox, sh, config, argv if how == "operand" else argv_t, data)
    assert r.returncode == EX_OK, describe(r)
    assert len(sh.messages) == 1, (sh.rejected, describe(r))
    m = sh.messages[0]
    assert m.rcpt_tos == ["root@example.com"]

    head_in, body_in = split_message(crlf(data if data.endswith(b"\n")
                                          else data + b"\n"))
    head, body = split_message(m.data)
    assert body == body_in
    want = []
    for line in lines_of(head_in):
        if line.startswith(b"From: "):
            line = b"From: " + (from_local if from_header == "local"
                                else from_keep)
        elif line == b"To: root":
            line = b"To: root@example.com"
        want.append(line)
    got = lines_of(head)
    # what outbox adds to a message without them, after its own fields
    added = [ln for ln in got[len(want):]]
    assert got[:len(want)] == want, (got, want)
    assert all(ln.startswith((b"Date: ", b"Message-ID: ")) for ln in added)
    # every address in every address field is qualified
    for name in ("From", "To", "Cc", "Sender", "Reply-To"):
        for value in header_values(m.data, name):
            for _, addr in email.utils.getaddresses([value.decode()]):
                assert "@" in addr, (name, value)


def test_needs_no_change_arrives_byte_for_byte(outbox, smarthost, tmp_path):
    data = (b"From: \"Ops, Team\" <ops@example.org> (night shift)\r\n"
            b"To: A Group:Ed Jones <c@a.test>,joe@where.test,\r\n"
            b"  John <jdoe@one.test> (my dear friend);\r\n"
            b"Cc: Undisclosed recipients:;\r\n"
            b"Reply-To: Pete(A nice \\) chap) <pete(his account)@silly.test>\r\n"
            b"Sender: =?UTF-8?Q?J=C3=B6rg?= <OPS@example.org>\r\n"
            b"Subject: root to root@localhost, nothing for outbox\r\n"
            b"Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
            b"Message-ID: <1.2@example.org>\r\n"
            b"\r\n"
            b"From: root\r\nTo: root\r\n")
    for from_header in ("local", "always", "keep"):
        sh = smarthost()
        config = config_for(outbox, tmp_path, sh, from_header=from_header,
                            **({"from": "ops@example.org"}
                               if from_header == "always" else {}))
        r = run(outbox, sh, config, ["-v", "x@example.net"], data)
        assert r.returncode == EX_OK, describe(r)
        assert sh.messages[0].data == data, from_header
        assert b"header fields changed" not in r.stderr
        assert b"header From rewritten" not in r.stderr


def test_v_log_and_qualify_off(outbox, smarthost, tmp_path):
    sh = smarthost()
    config = config_for(outbox, tmp_path, sh)
    data = CRON.replace(b"To: root\n", b"To: root\nCc: admin, \"B, C\" <bc>\n")
    r = run(outbox, sh, config, ["-v", "-FCronDaemon", "-i", "root"], data)
    assert r.returncode == EX_OK, describe(r)
    err = r.stderr.decode()
    assert ("outbox: header fields changed: From rewritten, To qualified, "
            "Cc qualified, Date added, Message-ID added") in err, err
    assert err.count("header From rewritten") == 1, err
    assert re.search(r"header From rewritten: root -> cron@example\.com", err)
    assert header_values(sh.messages[0].data, "Cc") == [
        b"admin@example.com, \"B, C\" <bc@example.com>"]

    # qualify-headers off: only the From changes (from-header)
    sh = smarthost()
    config = config_for(outbox, tmp_path, sh, qualify_headers="off")
    r = run(outbox, sh, config, ["-FCronDaemon", "-i", "root"], data)
    assert r.returncode == EX_OK, describe(r)
    head = sh.messages[0].data
    assert header_values(head, "From") == [b"Cron Daemon <cron@example.com>"]
    assert header_values(head, "To") == [b"root"]
    assert header_values(head, "Cc") == [b"admin, \"B, C\" <bc>"]
    assert sh.messages[0].rcpt_tos == ["root@example.com"]

    # a log line per message, not per field
    sh = smarthost()
    log = tmp_path / "outbox.log"
    config = config_for(outbox, tmp_path, sh, log=str(log))
    for _ in range(2):
        r = run(outbox, sh, config, ["root"],
                b"From: root\nSender: root\nTo: root\n\nx\n")
        assert r.returncode == EX_OK, describe(r)
    text = log.read_text()
    assert text.count("header From rewritten") == 2, text


def test_aliases_see_bare_names_headers_never_show_targets(outbox, smarthost,
                                                           tmp_path):
    aliases = tmp_path / "aliases"
    aliases.write_text("root: admin@example.net, ops\n")
    sh = smarthost()
    config = config_for(outbox, tmp_path, sh, aliases=str(aliases))
    r = run(outbox, sh, config, ["-t"], CRONIE)
    assert r.returncode == EX_OK, describe(r)
    m = sh.messages[0]
    assert sorted(m.rcpt_tos) == ["admin@example.net", "ops@example.com"]
    assert header_values(m.data, "To") == [b"root@example.com"]
    assert b"admin@example.net" not in m.data


def test_always_keeps_the_author_in_reply_to(outbox, smarthost, tmp_path):
    sh = smarthost()
    config = config_for(outbox, tmp_path, sh, from_header="always")
    data = (b"From: Alice Example <alice@gmail.com>\nTo: bob@example.org\n"
            b"Subject: report\n\nhi\n")
    r = run(outbox, sh, config, ["-t", "-f", "alice@gmail.com"], data)
    assert r.returncode == EX_OK, describe(r)
    head = sh.messages[0].data
    assert lines_of(split_message(head)[0])[:3] == [
        b"From: Alice Example <cron@example.com>",
        b"Reply-To: Alice Example <alice@gmail.com>",
        b"To: bob@example.org"]
    # one already there wins
    sh = smarthost()
    config = config_for(outbox, tmp_path, sh, from_header="always")
    r = run(outbox, sh, config, ["-t"], data.replace(
        b"Subject:", b"Reply-To: list@example.org\nSubject:"))
    assert r.returncode == EX_OK, describe(r)
    assert header_values(sh.messages[0].data, "Reply-To") == [
        b"list@example.org"]


def test_long_qualified_field_is_folded(outbox, smarthost, tmp_path):
    sh = smarthost()
    config = config_for(outbox, tmp_path, sh)
    names = [f"user{i}" for i in range(150)]
    data = (b"From: ops@example.org\nTo: " + ", ".join(names).encode() +
            b"\nSubject: many\n\nx\n")
    r = run(outbox, sh, config, ["-t"], data)
    assert r.returncode == EX_OK, describe(r)
    head = split_message(sh.messages[0].data)[0]
    assert max(len(ln) for ln in head.split(b"\r\n")) <= 998
    assert header_values(sh.messages[0].data, "To") == [
        ", ".join(n + "@example.com" for n in names).encode()]
    assert len(sh.messages[0].rcpt_tos) == 150


def test_bv_shows_from_and_recipients(outbox, smarthost, tmp_path):
    config = config_for(outbox, tmp_path, "127.0.0.1:25", tls="off")
    r = outbox.run(["-bv", "-t"], CRON, config=config)
    assert r.returncode == EX_OK, describe(r)
    assert r.stdout.decode().splitlines() == [
        "header From: Cron Daemon <cron@example.com>",
        "envelope sender: <cron@example.com>",
        "root@example.com... deliverable: via smarthost 127.0.0.1"]
    # without -t nothing is read: the From outbox adds to a message
    # without one
    r = outbox.run(["-bv", "-FCron Daemon", "-f", "root", "root", "ops"],
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    assert r.stdout.decode().splitlines() == [
        "header From: Cron Daemon <cron@example.com>",
        "envelope sender: <cron@example.com>",
        "root@example.com... deliverable: via smarthost 127.0.0.1",
        "ops@example.com... deliverable: via smarthost 127.0.0.1"]
    config = config_for(outbox, tmp_path, "127.0.0.1:25", tls="off",
                        from_header="keep", from_rewrite="never")
    r = outbox.run(["-bv", "-t"], ANACRON, config=config)
    assert r.returncode == EX_OK, describe(r)
    assert r.stdout.decode().splitlines()[:2] == [
        "header From: Anacron <root@example.com>",
        "envelope sender: <cron@example.com>"]


@pytest.mark.parametrize("line, why", [
    ("from-header sometimes", "from-header: must be keep, local or always"),
    ("qualify-headers maybe", "qualify-headers: must be on or off"),
])
def test_config_errors(outbox, tmp_path, line, why):
    config = outbox.write_config(tmp_path, "127.0.0.1:25", tls="off",
                                 extra_lines=[line])
    r = outbox.run(["-bv", "root"], config=config)
    assert r.returncode == EX_CONFIG, describe(r)
    n = len(Path(config).read_text().splitlines())
    assert f"{config}:{n}: {why}" in r.stderr.decode(), describe(r)


# ---------------------------------------------------------------------------
# 2. Microsoft 365
# ---------------------------------------------------------------------------

def test_m365_takes_cron_mail_with_from_header(outbox, smarthost, tmp_path):
    sh = make_m365(smarthost)
    config = config_for(outbox, tmp_path, sh)   # from-header: the default
    for shape in ("cron", "cronie", "anacron", "fail2ban"):
        data, argv, _, _, _ = SHAPES[shape]
        r = run(outbox, sh, config, argv, data)
        assert r.returncode == EX_OK, (shape, describe(r))
    assert sh.rejected == []
    assert [m.auth_user for m in sh.messages] == [ACCOUNT] * 4
    assert all(from_address(m.data) == ACCOUNT for m in sh.messages)


def test_m365_refusal_reported_without_from_header(outbox, smarthost,
                                                   tmp_path):
    sh = make_m365(smarthost)
    config = config_for(outbox, tmp_path, sh, from_header="keep")
    data, argv, _, _, _ = SHAPES["cron"]
    r = run(outbox, sh, config, argv, data)
    assert r.returncode == EX_UNAVAILABLE, describe(r)
    err = r.stderr.decode()
    assert sh.hostport in err and "5.7.60" in err, err
    assert "send as this sender" in err, err
    assert sh.messages == []
    assert [from_address(m.data) for m in sh.rejected] == ["root@example.com"]


@pytest.mark.parametrize("from_header", ["keep", "local"])
def test_m365_refusal_bounced_from_the_queue(outbox, smarthost, tmp_path,
                                             from_header):
    """The queue run's refusal becomes a DSN to the sender with the
    server's text. With from-header the DSN itself is From the account
    (a DSN's MAILER-DAEMON is outbox's own, so local) and is accepted;
    with keep it is From MAILER-DAEMON and Microsoft 365 refuses it too."""
    sh = make_m365(smarthost)
    qdir = tmp_path / "queue"
    config = config_for(outbox, tmp_path, sh, from_header=from_header,
                        queue=str(qdir))
    # someone else's From: local leaves it, so the relay refuses it
    data = (b"From: Alice <alice@gmail.com>\nTo: root\n"
            b"Subject: sent as someone else\n\nbody\n")
    r = outbox.run(["-odq", "-t"], data, config=config)
    assert r.returncode == EX_OK, describe(r)
    r = outbox.run(["-q"], config=config)
    assert sh.wait_idle()
    original = [m for m in sh.rejected if m.mail_from not in ("", "<>")]
    assert len(original) == 1, (sh.rejected, describe(r))
    dsns = [m for m in sh.messages + sh.rejected
            if m.mail_from in ("", "<>")]
    assert len(dsns) == 1, (sh.messages, sh.rejected, describe(r))
    dsn = dsns[0]
    assert dsn.rcpt_tos == [ACCOUNT]
    assert b"5.7.60" in dsn.data and b"send as this sender" in dsn.data
    if from_header == "local":
        assert sh.messages == [dsn]
        assert header_values(dsn.data, "From") == [
            b"Mail Delivery System <cron@example.com>"]
    else:
        assert sh.messages == []
        assert header_values(dsn.data, "From") == [
            b"Mail Delivery System <MAILER-DAEMON@example.com>"]
