"""outbox as a drop-in /usr/sbin/sendmail for real clients.

Each test points a real program (or a byte-exact replay of what it sends)
at outbox -- through the client's own setting, or a wrapper script
`sendmail` in tmp_path that execs `outbox -C CONFIG "$@"` -- and checks
what the smarthost fixture received: the envelope (MAIL FROM, RCPT TO), the
headers that matter, and that the client exited 0 without printing
anything that looks like an error.  The machine's /usr/sbin/sendmail is
never used or touched.

Clients (Debian packages, installed by tests/deps.sh): bsd-mailx,
mailutils, git send-email, php-cli.  Plus Debian cron's exact sendmail
invocation, a scripted SMTP session over `outbox -bs` (the way Symfony
Mailer and other PHP/Perl libraries use it), aliases and -bv, sender
rewriting and allow-from, -t header rules, and argv[0] dispatch.
"""

import os
import shutil
import socket
import subprocess
import time

import pytest

from clients_util import (BsSession, addr_only, assert_clean, body_text,
                          client_env, describe, dot_stuff, make_wrapper,
                          parse, public_tmpdir, read_argv_log, remove_tree,
                          run_client, wait_messages, wait_until)

EX_DATAERR = 65
EX_NOPERM = 77

FROM_KEY = "sender@example.com"   # the `from` key of Outbox.write_config
DOMAIN = "example.com"            # its `domain` key


def need(*programs):
    for p in programs:
        if shutil.which(p) is None and not os.path.exists(p):
            pytest.skip(f"{p} is not installed (run tests/deps.sh as root)")


@pytest.fixture
def setup(outbox, smarthost, tmp_path):
    """A STARTTLS+AUTH smarthost, a config for it (logging to a file, as
    syslog would: nothing on the client's stderr), and a wrapper
    `sendmail` that records how the client called it."""

    class Setup:
        pass

    s = Setup()
    s.sh = smarthost()
    s.log = tmp_path / "outbox.log"
    s.argv_log = tmp_path / "sendmail-calls"
    s.home = tmp_path / "home"
    s.home.mkdir()

    def configure(**overrides):
        overrides.setdefault("log", str(s.log))
        s.config = outbox.write_config(tmp_path, s.sh, **overrides)
        s.wrapper = make_wrapper(tmp_path / "bin", outbox.bin, s.config,
                                 argv_log=s.argv_log)
        return s

    s.configure = configure
    return configure


def one_message(sh, r=None, argv_log=None, log=None):
    msgs = wait_messages(sh, 1)
    info = describe(r, argv_log, log) if r is not None else ""
    assert len(msgs) == 1, f"smarthost got {len(msgs)} messages\n{info}"
    return msgs[0]


def local_rewrite_expected(addr: str) -> str:
    """The envelope sender outbox sends for -f addr under the default
    `from-rewrite local`: local addresses (no domain, localhost, or this
    host's name) become the `from` key; others are kept."""
    dom = addr.rpartition("@")[2].lower() if "@" in addr else ""
    if dom in ("", "localhost", "localhost.localdomain",
               socket.gethostname().lower()):
        return FROM_KEY
    return addr


# ---------------------------------------------------------------------------
# 1-2. mail(1): bsd-mailx and GNU mailutils
# ---------------------------------------------------------------------------

def test_bsd_mailx(setup, tmp_path):
    need("bsd-mailx")
    s = setup()
    mailrc = tmp_path / "mailrc"
    mailrc.write_text(f"set sendmail={s.wrapper}\n")
    body = "Hello from bsd-mailx.\nGr\u00fc\u00dfe, 8-bit text\n.\nlast\n"
    r = run_client(["bsd-mailx", "-s", "mailx subject", "user@example.com"],
                   body.encode(), env=client_env(s.home, MAILRC=mailrc))
    msg = one_message(s.sh, r, s.argv_log, s.log)
    assert_clean(r, s.argv_log, s.log)
    assert msg.mail_from == FROM_KEY
    assert msg.rcpt_tos == ["user@example.com"]
    m = parse(msg.data)
    assert m["Subject"] == "mailx subject"
    assert addr_only(m["To"]) == "user@example.com"
    assert addr_only(m["From"]) == FROM_KEY      # added by outbox
    assert m["Date"] and m["Message-ID"]
    text = body_text(msg.data)
    assert "Hello from bsd-mailx." in text
    assert "Gr\u00fc\u00dfe, 8-bit text" in text   # 8-bit untouched
    calls = read_argv_log(s.argv_log)
    assert len(calls) == 1 and "-i" in calls[0], calls


def test_bsd_mailx_cc_bcc(setup, tmp_path):
    need("bsd-mailx")
    s = setup()
    mailrc = tmp_path / "mailrc"
    mailrc.write_text(f"set sendmail={s.wrapper}\n")
    r = run_client(["bsd-mailx", "-s", "with copies", "-c", "cc@example.net",
                    "-b", "hidden@example.org", "user@example.com"],
                   b"copies\n", env=client_env(s.home, MAILRC=mailrc))
    msg = one_message(s.sh, r, s.argv_log, s.log)
    assert_clean(r, s.argv_log, s.log)
    assert sorted(msg.rcpt_tos) == ["cc@example.net", "hidden@example.org",
                                    "user@example.com"]
    m = parse(msg.data)
    assert addr_only(m["Cc"]) == "cc@example.net"
    assert m["Bcc"] is None and b"hidden@" not in msg.data


def test_mailutils_mail(setup):
    need("mail.mailutils")
    s = setup()
    r = run_client(["mail.mailutils", "--no-config",
                    "-E", f"set sendmail=sendmail://{s.wrapper}",
                    "-s", "mailutils subject", "user@example.com"],
                   b"Hello from GNU mailutils.\n..two dots\n",
                   env=client_env(s.home))
    msg = one_message(s.sh, r, s.argv_log, s.log)
    assert_clean(r, s.argv_log, s.log)
    calls = read_argv_log(s.argv_log)
    assert len(calls) == 1, calls
    # mailutils runs `sendmail -oi -f root@HOST -t`: root@HOST is local,
    # so the default from-rewrite turns it into the `from` key.
    argv = calls[0]
    assert "-t" in argv and "-f" in argv, argv
    expected = local_rewrite_expected(argv[argv.index("-f") + 1])
    assert msg.mail_from == expected
    assert msg.rcpt_tos == ["user@example.com"]
    m = parse(msg.data)
    assert m["Subject"] == "mailutils subject"
    assert addr_only(m["To"]) == "user@example.com"
    assert addr_only(m["From"]) == expected       # generated, follows it
    assert "..two dots" in body_text(msg.data)


# ---------------------------------------------------------------------------
# 3. git send-email
# ---------------------------------------------------------------------------

def test_git_send_email(setup, tmp_path):
    need("git")
    probe = subprocess.run(["git", "send-email", "-h"], capture_output=True,
                           timeout=30)
    if b"sendmail-cmd" not in probe.stdout + probe.stderr:
        pytest.skip("git send-email (package git-email) is not installed "
                    "or too old for --sendmail-cmd")
    s = setup()
    repo = tmp_path / "repo"
    env = client_env(s.home, GIT_CONFIG_NOSYSTEM=1,
                     GIT_AUTHOR_NAME="Dev Eloper",
                     GIT_AUTHOR_EMAIL="dev@example.org",
                     GIT_COMMITTER_NAME="Dev Eloper",
                     GIT_COMMITTER_EMAIL="dev@example.org")

    def git(*args):
        r = run_client(["git", *args], env=env, cwd=repo)
        assert r.returncode == 0, describe(r)
        return r

    repo.mkdir()
    git("init", "-q")
    (repo / "README").write_text("outbox\n")
    git("add", "README")
    git("commit", "-q", "-m", "Initial commit")
    (repo / "greeting.txt").write_text("hello, world\n.dot line\n")
    git("add", "greeting.txt")
    git("commit", "-q", "-m", "Add greeting")
    git("format-patch", "-q", "-1", "-o", str(tmp_path / "patches"))
    patches = sorted((tmp_path / "patches").glob("*.patch"))
    assert len(patches) == 1

    r = git("send-email", f"--sendmail-cmd={s.wrapper}",
            "--to=list@example.com", "--from=Dev Eloper <dev@example.org>",
            "--envelope-sender=auto", "--suppress-cc=all",
            "--confirm=never", "--no-validate", "--quiet", str(patches[0]))
    msg = one_message(s.sh, r, s.argv_log, s.log)
    # git prints "Sent [PATCH] ..." on stdout; stderr must be clean.
    assert_clean(r, s.argv_log, s.log, allow_stdout=True)
    calls = read_argv_log(s.argv_log)
    assert len(calls) == 1 and "-i" in calls[0], calls
    # An external envelope sender (-f dev@example.org) is kept as it is.
    assert msg.mail_from == "dev@example.org"
    assert msg.rcpt_tos == ["list@example.com"]
    m = parse(msg.data)
    assert m["Subject"] == "[PATCH] Add greeting"
    assert m["From"] == "Dev Eloper <dev@example.org>"
    assert addr_only(m["To"]) == "list@example.com"
    assert m["Message-Id"]          # git's own, kept (no second one added)
    assert len([k for k in m.keys() if k.lower() == "message-id"]) == 1
    text = body_text(msg.data)
    assert "+hello, world" in text and "+.dot line" in text
    assert "diff --git a/greeting.txt b/greeting.txt" in text


# ---------------------------------------------------------------------------
# 4. PHP's mail()
# ---------------------------------------------------------------------------

PHP_MAIL = r'''
$ok = mail("user@example.com", "PHP subject",
           "Hello from PHP.\n.leading dot\nlast line\n",
           "From: Web App <web@example.org>\r\nCc: cc@example.net\r\n"
           . "Bcc: hidden@example.net\r\nX-Mailer: PHP/" . PHP_VERSION
           %s);
exit($ok ? 0 : 3);
'''


@pytest.mark.parametrize("extra", [None, "-fbounce@example.org"])
def test_php_mail(outbox, smarthost, tmp_path, extra):
    need("php")
    sh = smarthost()
    log = tmp_path / "outbox.log"
    config = outbox.write_config(tmp_path, sh, log=str(log))
    sendmail_path = f"{outbox.bin} -C {config} -t -i"
    code = PHP_MAIL % (f', "{extra}"' if extra else "")
    r = run_client(["php", "-d", f"sendmail_path={sendmail_path}",
                    "-d", "display_errors=stderr", "-r", code],
                   env=client_env(tmp_path))
    msg = one_message(sh, r, log=log)
    assert_clean(r, log=log)
    assert msg.mail_from == ("bounce@example.org" if extra else FROM_KEY)
    assert msg.rcpt_tos == ["user@example.com", "cc@example.net",
                            "hidden@example.net"]
    m = parse(msg.data)
    assert m["Subject"] == "PHP subject"
    assert m["Bcc"] is None and b"hidden@" not in msg.data
    assert m["Cc"] == "cc@example.net"
    assert addr_only(m["To"]) == "user@example.com"
    assert m["From"] == "Web App <web@example.org>"   # kept as written
    assert m["X-Mailer"].startswith("PHP/")
    text = body_text(msg.data)
    assert "Hello from PHP.\n.leading dot\nlast line" in text


# ---------------------------------------------------------------------------
# 5. A scripted SMTP session over outbox -bs (Symfony Mailer style)
# ---------------------------------------------------------------------------

def bs_session(outbox, config, tmp_path) -> BsSession:
    return BsSession(outbox.command(["-bs"], config), tmp_path / "bs.stderr",
                     env=outbox.environment())


MSG_ONE = (b"From: App <app@example.org>\r\n"
           b"To: user@example.com\r\n"
           b"Subject: bs one\r\n"
           b"\r\n"
           b"line one\r\n"
           b".leading dot\r\n"
           b".\r\n"
           b"last line\r\n")


def test_bs_session_one_command_at_a_time(outbox, smarthost, tmp_path):
    sh = smarthost()
    config = outbox.write_config(tmp_path, sh, log=str(tmp_path / "o.log"))
    s = bs_session(outbox, config, tmp_path)
    try:
        code, text = s.reply()
        assert code == 220 and "ESMTP" in text[0]
        ehlo = s.expect("EHLO app.example.org", 250)
        keywords = {t.split()[0].upper() for t in ehlo[1:]}
        assert {"PIPELINING", "8BITMIME", "SIZE"} <= keywords, ehlo

        # first message
        s.expect("MAIL FROM:<app@example.org>", 250)
        s.expect("RCPT TO:<user@example.com>", 250)
        s.expect("DATA", 354)
        s.write(dot_stuff(MSG_ONE))
        code, text = s.reply()
        # "250 after the dot" means: the smarthost has it already.
        assert code == 250, text
        assert len(sh.messages) == 1
        m1 = sh.messages[0]
        assert m1.mail_from == "app@example.org"
        assert m1.rcpt_tos == ["user@example.com"]
        assert body_text(m1.data) == ("line one\n.leading dot\n.\n"
                                      "last line\n")
        assert parse(m1.data)["Subject"] == "bs one"

        # second message, same session, two recipients
        s.expect("MAIL FROM:<app@example.org> BODY=8BITMIME", 250)
        s.expect("RCPT TO:<a@example.com>", 250)
        s.expect("RCPT TO:<b@example.net>", 250)
        s.expect("DATA", 354)
        s.write(dot_stuff(b"Subject: bs two\r\nTo: a@example.com, "
                          b"b@example.net\r\n\r\nsecond\r\n"))
        code, text = s.reply()
        assert code == 250, text
        assert len(sh.messages) == 2
        m2 = sh.messages[1]
        assert m2.mail_from == "app@example.org"
        assert m2.rcpt_tos == ["a@example.com", "b@example.net"]
        assert parse(m2.data)["Subject"] == "bs two"
        assert addr_only(parse(m2.data)["From"]) == "app@example.org"

        # the rest of the command set
        s.expect("RSET", 250)
        s.expect("NOOP", 250)
        s.expect("VRFY root", 252)
        s.expect("XYZZY plugh", 500)
        s.expect("RCPT TO:<user@example.com>", 503)     # no MAIL yet
        s.expect("NOOP " + "x" * 3000, 500)             # > 2048 bytes
        s.expect("NOOP", 250)                           # still in step
        s.expect("QUIT", 221)
        assert s.rest_of_output() == b""
    finally:
        rc = s.close()
    assert rc == 0, s.stderr()
    assert len(sh.messages) == 2


def test_bs_session_pipelined(outbox, smarthost, tmp_path):
    sh = smarthost()
    config = outbox.write_config(tmp_path, sh, log=str(tmp_path / "o.log"))
    s = bs_session(outbox, config, tmp_path)
    try:
        assert s.reply()[0] == 220
        # EHLO and the first group in one write, as a pipelining client
        # that trusts the server may do; replies come in order.
        s.write(b"EHLO app.example.org\r\n"
                b"MAIL FROM:<app@example.org>\r\n"
                b"RCPT TO:<user@example.com>\r\n"
                b"RCPT TO:<ops@example.org>\r\n"
                b"DATA\r\n")
        code, ehlo = s.reply()
        assert code == 250 and any("PIPELINING" in t for t in ehlo)
        assert [s.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
        s.write(dot_stuff(MSG_ONE))
        assert s.reply()[0] == 250
        assert len(sh.messages) == 1

        # MAIL+RCPT+DATA in one write, three replies
        s.write(b"MAIL FROM:<>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n")
        assert [s.reply()[0] for _ in range(3)] == [250, 250, 354]
        # message text, the final dot and QUIT in one write
        s.write(dot_stuff(b"Subject: bounce-like\r\n\r\nnull sender\r\n")
                + b"QUIT\r\n")
        code, text = s.reply()
        assert code == 250, text
        assert s.reply()[0] == 221
        assert s.rest_of_output() == b""
    finally:
        rc = s.close()
    assert rc == 0, s.stderr()
    assert len(sh.messages) == 2
    m1, m2 = sh.messages
    assert m1.mail_from == "app@example.org"
    assert m1.rcpt_tos == ["user@example.com", "ops@example.org"]
    assert body_text(m1.data) == "line one\n.leading dot\n.\nlast line\n"
    assert m2.mail_from in ("", "<>")          # MAIL FROM:<> kept null
    assert m2.rcpt_tos == ["user@example.com"]
    assert parse(m2.data)["Subject"] == "bounce-like"


def test_bs_recipient_refused_by_smarthost(outbox, smarthost, tmp_path):
    sh = smarthost()          # refuses bad@example.com with 550
    config = outbox.write_config(tmp_path, sh, log=str(tmp_path / "o.log"))
    s = bs_session(outbox, config, tmp_path)
    try:
        assert s.reply()[0] == 220
        s.expect("EHLO app.example.org", 250)
        s.expect("MAIL FROM:<app@example.org>", 250)
        s.expect("RCPT TO:<bad@example.com>", 250)
        s.expect("DATA", 354)
        s.write(dot_stuff(b"Subject: to nobody\r\n\r\nx\r\n"))
        code, text = s.reply()
        assert code == 550, text
        assert "no such user" in " ".join(text)  # the smarthost's reply
        # the session goes on: a good message afterwards is delivered
        s.expect("MAIL FROM:<app@example.org>", 250)
        s.expect("RCPT TO:<user@example.com>", 250)
        s.expect("DATA", 354)
        s.write(dot_stuff(b"Subject: fine\r\n\r\ny\r\n"))
        assert s.reply()[0] == 250
        s.expect("QUIT", 221)
    finally:
        rc = s.close()
    assert rc == 0
    assert [m.rcpt_tos for m in sh.messages] == [["user@example.com"]]


def test_bs_partly_refused_recipients_are_not_lost(outbox, smarthost,
                                                   tmp_path):
    """RFC 5321 6.1: once the server has said 250 to a RCPT and to the
    final dot, it is responsible for the message; a later delivery failure
    MUST be reported to the sender by a notification.  So a recipient that
    the smarthost refuses must either be refused at RCPT time, or -- after
    250 -- produce a delivery status notification to the envelope sender.
    (With a single, refused recipient outbox answers the DATA with 550,
    see test_bs_recipient_refused_by_smarthost; this is the mixed case.)"""
    sh = smarthost()          # refuses bad@example.com with 550
    config = outbox.write_config(tmp_path, sh, queue=str(tmp_path / "q"),
                                 log=str(tmp_path / "o.log"))
    s = bs_session(outbox, config, tmp_path)
    try:
        assert s.reply()[0] == 220
        s.expect("EHLO app.example.org", 250)
        s.expect("MAIL FROM:<app@example.org>", 250)
        # outbox(8), SMTP ON STANDARD INPUT: RCPT is "accepted with 250
        # at once, its real outcome coming after DATA"
        s.expect("RCPT TO:<bad@example.com>", 250)
        s.expect("RCPT TO:<user@example.com>", 250)
        s.expect("DATA", 354)
        s.write(dot_stuff(b"Subject: mixed\r\n\r\nx\r\n"))
        code, text = s.reply()
        # "250 2.0.0 Ok, but N recipient(s) refused: ..."
        assert code == 250, text          # user@example.com has it
        assert "Ok, but 1 recipient(s) refused" in text[0], text
        assert "bad@example.com" in text[0], text
        s.expect("QUIT", 221)
    finally:
        rc = s.close()
    assert rc == 0
    assert sh.messages[0].rcpt_tos == ["user@example.com"]
    # ... "and the sender also gets a delivery status notification about
    # the refused ones (through the queue ...)": it was queued before the
    # 250 and a background run sends it; wait until that run has emptied
    # the queue and the smarthost has closed the session
    msg_dir = tmp_path / "q" / "msg"
    assert wait_until(lambda: not any(msg_dir.iterdir()), 30), \
        sorted(p.name for p in msg_dir.iterdir())
    assert sh.wait_idle()
    assert len(sh.messages) == 2, [(m.mail_from, m.rcpt_tos)
                                   for m in sh.messages]
    dsns = [m for m in sh.messages[1:]
            if m.mail_from in ("", "<>") and m.rcpt_tos == ["app@example.org"]]
    assert dsns and b"bad@example.com" in dsns[0].data, (
        f"final reply {code} {text}, but no notification to the sender "
        f"about bad@example.com; smarthost got "
        f"{[(m.mail_from, m.rcpt_tos) for m in sh.messages]}\n"
        + (tmp_path / "o.log").read_text())


def test_bs_smarthost_down_queue_off(outbox, closed_port, tmp_path):
    config = outbox.write_config(tmp_path, closed_port, queue="off",
                                 log=str(tmp_path / "o.log"))
    s = bs_session(outbox, config, tmp_path)
    try:
        assert s.reply()[0] == 220
        s.expect("EHLO app.example.org", 250)
        s.expect("MAIL FROM:<app@example.org>", 250)
        s.expect("RCPT TO:<user@example.com>", 250)
        s.expect("DATA", 354)
        s.write(dot_stuff(b"Subject: nowhere\r\n\r\nx\r\n"))
        code, text = s.reply(timeout=20)
        assert code == 451, text
        s.expect("QUIT", 221)
    finally:
        rc = s.close()
    assert rc == 0


# ---------------------------------------------------------------------------
# 6. Debian cron
# ---------------------------------------------------------------------------

CRON_MESSAGE = (
    "From: root (Cron Daemon)\n"
    "To: root\n"
    "Subject: Cron <root@buildhost> /usr/local/bin/nightly --verbose\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "X-Cron-Env: <SHELL=/bin/sh>\n"
    "X-Cron-Env: <HOME=/root>\n"
    "X-Cron-Env: <PATH=/usr/bin:/bin>\n"
    "X-Cron-Env: <LOGNAME=root>\n"
    "\n"
    "nightly: 3 files rotated\n"
    ".\n"
    "nightly: done \u2713\n").encode()


def test_debian_cron_invocation(setup, tmp_path):
    aliases = tmp_path / "aliases"
    aliases.write_text("# outbox aliases\nroot: admin@example.com\n")
    s = setup(aliases=str(aliases))
    # cron: execl(_PATH_SENDMAIL, _PATH_SENDMAIL, "-FCronDaemon", "-i",
    #             "-B8BITMIME", "-oem", mailto, NULL), message on the pipe
    r = run_client([s.wrapper, "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
                    "root"], CRON_MESSAGE, env=client_env(s.home))
    msg = one_message(s.sh, r, s.argv_log, s.log)
    assert_clean(r, s.argv_log, s.log)
    assert msg.mail_from == FROM_KEY
    assert msg.rcpt_tos == ["admin@example.com"]
    m = parse(msg.data)
    # cron's own From, with the `from` address (from-header local, the
    # default) and its comment as the display name; To qualified
    assert m["From"] == f"Cron Daemon <{FROM_KEY}>"
    assert m["To"] == f"root@{DOMAIN}"       # not the alias target
    assert m["Subject"] == ("Cron <root@buildhost> /usr/local/bin/nightly "
                            "--verbose")
    assert m.get_all("X-Cron-Env") == ["<SHELL=/bin/sh>", "<HOME=/root>",
                                       "<PATH=/usr/bin:/bin>",
                                       "<LOGNAME=root>"]
    # -i: the lone dot is content, not the end of the message
    assert body_text(msg.data) == ("nightly: 3 files rotated\n.\n"
                                   "nightly: done \u2713\n")


# ---------------------------------------------------------------------------
# 7. Aliases and -bv
# ---------------------------------------------------------------------------

ALIASES = """\
# /etc/outbox.aliases for the test
root: admin, ops@example.org
admin: a@example.net

postmaster: root
www-data: webmaster,
\tweb2@example.com
webmaster: web@example.com
loop1: loop2
loop2: loop1
*: catchall@example.com
"""


def bv(outbox, config, *names):
    """(result, recipients, their lines): -bv's recipient lines, after
    its "header From:" and "envelope sender:" lines."""
    r = outbox.run(["-bv", *names], config=config)
    lines = [ln for ln in r.stdout.decode().splitlines()
             if "... deliverable: " in ln]
    return r, [ln.split("...")[0] for ln in lines], lines


def test_aliases_bv(outbox, tmp_path):
    aliases = tmp_path / "aliases"
    aliases.write_text(ALIASES)
    config = outbox.write_config(tmp_path, "127.0.0.1:25", tls="off",
                                 aliases=str(aliases))
    r, addrs, lines = bv(outbox, config, "root", "nobody")
    assert r.returncode == 0, describe(r)
    assert addrs == ["a@example.net", "ops@example.org",
                     "catchall@example.com"]
    assert all(ln.endswith("deliverable: via smarthost 127.0.0.1")
               for ln in lines), lines
    assert r.stderr == b""

    # continuation line, a hyphenated system name, nested names
    r, addrs, _ = bv(outbox, config, "www-data", "postmaster")
    assert r.returncode == 0, describe(r)
    assert addrs == ["web@example.com", "web2@example.com",
                     "a@example.net", "ops@example.org"]

    # local forms of the same name all resolve; full addresses do not
    r, addrs, _ = bv(outbox, config, "ROOT@localhost", "x@example.org")
    assert r.returncode == 0, describe(r)
    assert addrs == ["a@example.net", "ops@example.org", "x@example.org"]

    # a loop: a configuration error (78), one line naming it, nothing
    # "deliverable"
    r, addrs, _ = bv(outbox, config, "loop1")
    assert r.returncode == 78, describe(r)
    assert addrs == []
    err = r.stderr.decode()
    assert "loop" in err and "loop1" in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_aliases_quoted_name_with_space(outbox, tmp_path):
    """aliases(5) (Postfix, sendmail): a name with whitespace or other
    special characters is written in double quotes.  Such an entry must not
    make the whole file unusable, and the name must resolve."""
    aliases = tmp_path / "aliases"
    aliases.write_text('"cron users": cron-team@example.org\n'
                       "root: admin@example.com\n")
    config = outbox.write_config(tmp_path, "127.0.0.1:25", tls="off",
                                 aliases=str(aliases))
    r, addrs, _ = bv(outbox, config, "root")
    assert r.returncode == 0, describe(r)
    assert addrs == ["admin@example.com"]
    r, addrs, _ = bv(outbox, config, '"cron users"')
    assert r.returncode == 0, describe(r)
    assert addrs == ["cron-team@example.org"]


def test_bv_quoted_local_part(outbox, tmp_path):
    """A quoted local part without a domain is a local name like `root`,
    qualified with `domain` (as Postfix's and sendmail's sendmail do)."""
    config = outbox.write_config(tmp_path, "127.0.0.1:25", tls="off")
    r, addrs, _ = bv(outbox, config, '"cron users"', "www-data")
    assert r.returncode == 0, describe(r)
    assert addrs == ['"cron users"@example.com', "www-data@example.com"]


def test_aliases_apply_when_sending(setup, tmp_path):
    aliases = tmp_path / "aliases"
    aliases.write_text(ALIASES)
    s = setup(aliases=str(aliases))
    r = run_client([s.wrapper, "-i", "root", "www-data", "someone"],
                   b"Subject: aliases\n\nx\n", env=client_env(s.home))
    msg = one_message(s.sh, r, s.argv_log, s.log)
    assert_clean(r, s.argv_log, s.log)
    assert msg.rcpt_tos == ["a@example.net", "ops@example.org",
                            "web@example.com", "web2@example.com",
                            "catchall@example.com"]


# ---------------------------------------------------------------------------
# 8. Sender rules: from-rewrite, allow-from
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("rewrite,sender,expected", [
    (None, "root", FROM_KEY),                      # default: local
    ("local", "root@localhost", FROM_KEY),
    ("local", "someone@example.org", "someone@example.org"),
    ("never", "root", "root@example.com"),
    ("always", "someone@example.org", FROM_KEY),
])
def test_from_rewrite(outbox, smarthost, tmp_path, rewrite, sender,
                      expected):
    sh = smarthost()
    kw = {"from_rewrite": rewrite} if rewrite else {}
    config = outbox.write_config(tmp_path, sh, **kw)
    r = outbox.run(["-f", sender, "user@example.com"],
                   b"Subject: rewrite\n\nbody\n", config=config)
    assert r.returncode == 0, describe(r)
    msg = one_message(sh, r)
    assert msg.mail_from == expected
    assert msg.rcpt_tos == ["user@example.com"]
    # the From header outbox generates follows the envelope sender
    assert parse(msg.data)["From"] == expected


def test_from_rewrite_keeps_existing_from_header(outbox, smarthost,
                                                 tmp_path):
    sh = smarthost()
    config = outbox.write_config(tmp_path, sh, from_rewrite="always")
    r = outbox.run(["-f", "root", "user@example.com"],
                   b"From: Root <root@example.org>\nSubject: s\n\nb\n",
                   config=config)
    assert r.returncode == 0, describe(r)
    msg = one_message(sh, r)
    assert msg.mail_from == FROM_KEY
    assert parse(msg.data)["From"] == "Root <root@example.org>"


@pytest.fixture
def unprivileged(outbox, smarthost):
    """Run outbox as nobody: a copy of the binary, of the CA file and a
    password-free 0644 config in a 0755 directory (pytest's tmp_path is
    not reachable for nobody), a STARTTLS smarthost without AUTH."""
    runner = shutil.which("setpriv")
    if runner is None or os.getuid() != 0:
        pytest.skip("needs root and setpriv to run outbox as nobody")
    d = public_tmpdir("outbox-nobody-")
    try:
        binary = d / "outbox"
        shutil.copy2(outbox.bin, binary)
        binary.chmod(0o755)
        sh = smarthost(auth=False)
        ca = d / "ca.pem"
        shutil.copy(sh.ca_file, ca)
        ca.chmod(0o644)

        env = outbox.environment({"HOME": str(d), "TMPDIR": "/tmp"})

        def command(args, **cfg):
            config = outbox.write_config(d, sh, mode=0o644, log="stderr",
                                         ca_file=str(ca), **cfg)
            return [runner, "--reuid=65534", "--regid=65534",
                    "--clear-groups", str(binary), "-C", str(config), *args]

        def run(args, data, **cfg):
            return subprocess.run(command(args, **cfg), input=data,
                                  capture_output=True, env=env, timeout=30)

        run.sh = sh
        run.command = command
        run.env = env
        run.dir = d
        yield run
    finally:
        remove_tree(d)


def test_allow_from_none_refuses_other_sender(unprivileged):
    r = unprivileged(["-f", "boss@example.org", "user@example.com"],
                     b"Subject: spoof\n\nx\n", allow_from="none")
    assert r.returncode == EX_NOPERM, describe(r)
    err = r.stderr.decode()
    assert "allow-from" in err and "nobody" in err, err
    assert unprivileged.sh.wait_idle()
    assert unprivileged.sh.messages == []


def test_allow_from_none_allows_default_and_own_sender(unprivileged):
    r = unprivileged(["user@example.com"], b"Subject: a\n\nx\n",
                     allow_from="none")
    assert r.returncode == 0, describe(r)
    r = unprivileged(["-f", "nobody", "user@example.com"],
                     b"Subject: b\n\nx\n", allow_from="none",
                     from_rewrite="never")
    assert r.returncode == 0, describe(r)
    msgs = wait_messages(unprivileged.sh, 2)
    assert [m.mail_from for m in msgs] == [FROM_KEY, "nobody@example.com"]


def test_allow_from_none_own_name_under_default_rewrite(unprivileged):
    """`-f nobody` names the caller's own address; with the default
    from-rewrite (local) it becomes the `from` key anyway.  allow-from
    none must not refuse it (the caller chose nothing it may not)."""
    r = unprivileged(["-f", "nobody", "user@example.com"],
                     b"Subject: own\n\nx\n", allow_from="none")
    assert r.returncode == 0, describe(r)
    msgs = wait_messages(unprivileged.sh, 1)
    assert [m.mail_from for m in msgs] == [FROM_KEY]


def test_mailutils_as_unprivileged_user_allow_from_none(unprivileged):
    """GNU mailutils' mail always runs `sendmail -oi -f USER@HOST -t`: a
    user sending as themselves must get through allow-from none."""
    need("mail.mailutils")
    d = unprivileged.dir
    config_cmd = unprivileged.command([], allow_from="none")
    wrapper = d / "sendmail"
    wrapper.write_text("#!/bin/sh\nexec " + " ".join(
        f"'{a}'" for a in config_cmd[4:]) + ' "$@"\n')
    wrapper.chmod(0o755)
    cmd = config_cmd[:4] + ["mail.mailutils", "--no-config", "-E",
                            f"set sendmail=sendmail://{wrapper}",
                            "-s", "from nobody", "user@example.com"]
    home = d / "home"                  # for mailutils' dead.letter
    home.mkdir()
    os.chown(home, 65534, 65534)
    r = run_client(cmd, b"hello from an unprivileged user\n",
                   env=dict(unprivileged.env, HOME=str(home), USER="nobody",
                            LOGNAME="nobody"))
    assert_clean(r)
    msgs = wait_messages(unprivileged.sh, 1)
    assert len(msgs) == 1 and msgs[0].rcpt_tos == ["user@example.com"]
    assert parse(msgs[0].data)["Subject"] == "from nobody"


def test_allow_from_any_lets_nobody_set_sender(unprivileged):
    r = unprivileged(["-f", "boss@example.org", "user@example.com"],
                     b"Subject: ok\n\nx\n", allow_from="any")
    assert r.returncode == 0, describe(r)
    msgs = wait_messages(unprivileged.sh, 1)
    assert [m.mail_from for m in msgs] == ["boss@example.org"]


def test_allow_from_none_applies_to_bs_mail_from(unprivileged):
    s = BsSession(unprivileged.command(["-bs"], allow_from="none"),
                  unprivileged.dir / "bs.stderr", env=unprivileged.env)
    try:
        assert s.reply()[0] == 220
        s.expect("EHLO app.example.org", 250)
        text = s.expect("MAIL FROM:<boss@example.org>", 550)
        assert "allow-from" in text[0], text
        s.expect("RCPT TO:<user@example.com>", 503)
        s.expect("MAIL FROM:<nobody@example.com>", 250)   # its own address
        s.expect("RCPT TO:<user@example.com>", 250)
        s.expect("DATA", 354)
        s.write(dot_stuff(b"Subject: own\r\n\r\nx\r\n"))
        assert s.reply()[0] == 250
        s.expect("QUIT", 221)
    finally:
        rc = s.close()
    assert rc == 0
    msgs = wait_messages(unprivileged.sh, 1)
    assert [m.mail_from for m in msgs] == ["nobody@example.com"]


def test_allow_from_none_root_always_allowed(outbox, smarthost, tmp_path):
    sh = smarthost()
    config = outbox.write_config(tmp_path, sh, allow_from="none")
    r = outbox.run(["-f", "boss@example.org", "user@example.com"],
                   b"Subject: root\n\nx\n", config=config)
    assert r.returncode == 0, describe(r)
    assert one_message(sh, r).mail_from == "boss@example.org"


# ---------------------------------------------------------------------------
# 9. -t header rules
# ---------------------------------------------------------------------------

def test_t_only_bcc_gets_undisclosed_recipients(outbox, smarthost,
                                                tmp_path):
    sh = smarthost()
    config = outbox.write_config(tmp_path, sh)
    r = outbox.run(["-t", "-i"], b"Bcc: hidden@example.com, "
                   b"Other <h2@example.org>\nSubject: bcc only\n\nx\n",
                   config=config)
    assert r.returncode == 0, describe(r)
    msg = one_message(sh, r)
    assert msg.rcpt_tos == ["hidden@example.com", "h2@example.org"]
    m = parse(msg.data)
    assert m.get_all("To") == ["undisclosed-recipients:;"]
    assert m["Bcc"] is None and b"hidden@" not in msg.data


def test_t_resent_fields_take_precedence(outbox, smarthost, tmp_path):
    sh = smarthost()
    config = outbox.write_config(tmp_path, sh)
    data = (b"Resent-From: fwd@example.org\n"
            b"Resent-To: r1@example.com\n"
            b"Resent-Cc: R Two <r2@example.com>\n"
            b"Resent-Bcc: r3@example.com\n"
            b"From: orig@example.org\n"
            b"To: original@example.com\n"
            b"Cc: cc@example.com\n"
            b"Subject: forwarded\n\nbody\n")
    r = outbox.run(["-t", "-i"], data, config=config)
    assert r.returncode == 0, describe(r)
    msg = one_message(sh, r)
    assert msg.rcpt_tos == ["r1@example.com", "r2@example.com",
                            "r3@example.com"]
    m = parse(msg.data)
    assert m["Resent-Bcc"] is None and b"r3@example.com" not in msg.data
    assert m["To"] == "original@example.com"      # untouched
    assert m["Resent-To"] == "r1@example.com"


def test_no_recipients_exit_65_one_line(outbox, smarthost, tmp_path):
    sh = smarthost()
    config = outbox.write_config(tmp_path, sh)
    for args in (["-t", "-i"], ["-i"]):
        r = outbox.run(args, b"Subject: nobody\n\nx\n", config=config)
        assert r.returncode == EX_DATAERR, describe(r)
        err = r.stderr.decode().strip()
        assert len(err.splitlines()) == 1, err
        assert "recipient" in err, err
    assert sh.messages == [] and sh.connections == 0


# ---------------------------------------------------------------------------
# 10. argv[0] dispatch
# ---------------------------------------------------------------------------

def test_argv0_dispatch(outbox, smarthost, tmp_path):
    sh = smarthost()
    queue = tmp_path / "queue"
    config = outbox.write_config(tmp_path, sh, queue=str(queue),
                                 log=str(tmp_path / "o.log"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("mailq", "newaliases", "sendmail"):
        (bindir / name).symlink_to(outbox.bin)
    env = outbox.environment()

    r = run_client([bindir / "mailq", "-C", config], env=env)
    assert r.returncode == 0, describe(r)
    assert "Mail queue is empty" in r.stdout.decode(), describe(r)
    assert r.stderr == b""

    r = run_client([bindir / "newaliases"], env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), describe(r)

    r = run_client([bindir / "sendmail", "-C", config, "-i",
                    "user@example.com"], b"Subject: via symlink\n\nx\n",
                   env=env)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), describe(r)
    msg = one_message(sh, r)
    assert msg.rcpt_tos == ["user@example.com"]
    assert parse(msg.data)["Subject"] == "via symlink"

    # mailq with queue off says so
    off = outbox.write_config(tmp_path, sh, name="off.conf", queue="off")
    r = run_client([bindir / "mailq", "-C", off], env=env)
    assert r.returncode == 0, describe(r)
    assert "Mail queue is empty" in r.stdout.decode()


@pytest.mark.parametrize("pieces", [
    [b".", b"\r\n"],                 # the final dot alone, then its CRLF
    [b".\r", b"\n"],
    [b"line\r\n.", b".stuffed\r\n.", b"\r\n"],
], ids=["dot|CRLF", "dot-CR|LF", "stuffed-dot-split"])
def test_bs_final_dot_split_across_writes(outbox, smarthost, tmp_path,
                                          pieces):
    """SMTP is a byte stream: where the client's writes (or TCP segments,
    or pipe reads) end must not matter.  A client writing its DATA in
    fixed-size blocks can split the terminating "." from its CRLF."""
    sh = smarthost()
    config = outbox.write_config(tmp_path, sh, log=str(tmp_path / "o.log"))
    s = bs_session(outbox, config, tmp_path)
    try:
        assert s.reply()[0] == 220
        s.expect("EHLO app.example.org", 250)
        s.expect("MAIL FROM:<app@example.org>", 250)
        s.expect("RCPT TO:<user@example.com>", 250)
        s.expect("DATA", 354)
        s.write_alone(b"Subject: split\r\n\r\nbody\r\n")
        for piece in pieces[:-1]:
            s.write_alone(piece)     # outbox has read it, alone
        s.write(pieces[-1])
        code, text = s.reply(timeout=30)
        assert code == 250, text
        s.expect("QUIT", 221)
    finally:
        rc = s.close()
    assert rc == 0
    assert len(sh.messages) == 1
    expected = "body\n" + ("line\n.stuffed\n" if len(pieces) == 3 else "")
    assert body_text(sh.messages[0].data) == expected


# The allow-from guard, pinned: one's own address is one's name at the
# configured domain only, and a list entry is a whole user name.

@pytest.mark.parametrize("sender", ["nobody@bank.example",
                                    "nobody@example.com.bank.example",
                                    "nobody@sub.example.com"])
def test_allow_from_none_own_name_at_another_domain_is_refused(
        unprivileged, sender):
    r = unprivileged(["-f", sender, "user@example.com"],
                     b"Subject: spoof\n\nx\n", allow_from="none")
    assert r.returncode == EX_NOPERM, describe(r)
    assert "allow-from" in r.stderr.decode()
    assert unprivileged.sh.wait_idle()
    assert unprivileged.sh.messages == []


def test_allow_from_none_own_name_at_own_domain_any_case(unprivileged):
    r = unprivileged(["-f", "nobody@EXAMPLE.com", "user@example.com"],
                     b"Subject: own\n\nx\n", allow_from="none",
                     from_rewrite="never")
    assert r.returncode == 0, describe(r)
    assert unprivileged.sh.wait_idle()
    assert [m.mail_from for m in unprivileged.sh.messages] == \
        ["nobody@EXAMPLE.com"]


@pytest.mark.parametrize("entries", ["nob", "nobodyx", "nobod,root",
                                     "xnobody"])
def test_allow_from_entries_match_whole_names_only(unprivileged, entries):
    r = unprivileged(["-f", "boss@bank.example", "user@example.com"],
                     b"Subject: spoof\n\nx\n", allow_from=entries)
    assert r.returncode == EX_NOPERM, (entries, describe(r))
    assert unprivileged.sh.wait_idle()
    assert unprivileged.sh.messages == []


def test_allow_from_listed_name_may_set_any_sender(unprivileged):
    r = unprivileged(["-f", "boss@bank.example", "user@example.com"],
                     b"Subject: listed\n\nx\n", allow_from="root,nobody")
    assert r.returncode == 0, describe(r)
    assert unprivileged.sh.wait_idle()
    assert [m.mail_from for m in unprivileged.sh.messages] == \
        ["boss@bank.example"]
