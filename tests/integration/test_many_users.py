"""Many users, one outbox: on the set-group-ID install two ordinary local
users, A and B (created and removed here), share the queue. Nothing one
of them does removes, truncates, redirects or reveals the other's mail,
or moves the relay connection anywhere but the configured, verified
smarthost.

The install is built into a world-readable temporary root (so it works
from a checkout only root can enter) with QUEUE_STALE_SECS=2, so that "a
message older than the staleness age" takes seconds, not a minute.
"""

import hashlib
import json
import os
import pwd
import shutil
import time
from pathlib import Path

import pytest

from socks_proxy import LoggingProxy
from test_hardening import SetgidRoot, _nosuid

EX_OK, EX_USAGE, EX_IOERR, EX_CONFIG = 0, 64, 74, 78
SECRET = "many-users-Secret-4b9d"
RELAY_USER = "relay-acct-q7x"        # must never be shown to A or B
STALE = 2                            # QUEUE_STALE_SECS of this build
PROXY_VARS = ("ALL_PROXY", "all_proxy", "smtp_proxy", "SMTP_PROXY",
              "https_proxy", "HTTPS_PROXY", "http_proxy", "socks_proxy")


class TwoUsers(SetgidRoot):
    MAKE_VARS = (f"QUEUE_STALE_SECS={STALE}",)

    def __init__(self):
        super().__init__()
        try:
            self.user_b, self.uid_b = self.add_user("obxu")
        except BaseException:
            self.close()
            raise

    # A is the SetgidRoot's test user
    def a(self, args, input_bytes=b"", **kw):
        return self.run([self.bin] + list(args), input_bytes, **kw)

    def b(self, args, input_bytes=b"", **kw):
        return self.run([self.bin] + list(args), input_bytes, uid=self.uid_b,
                        **kw)

    def root(self, args, input_bytes=b""):
        import subprocess
        return subprocess.run([str(self.bin)] + [str(a) for a in args],
                              input=input_bytes, capture_output=True,
                              timeout=60, cwd="/",
                              env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})

    def ids(self):
        d = self.spool / "msg"
        return sorted(p.name[:-4] for p in d.iterdir()
                      if p.name.endswith(".env"))

    def failed(self):
        return sorted(p.name for p in (self.spool / "failed").iterdir())

    def add_config(self, *lines):
        with open(self.etc / "outbox.conf", "a") as f:
            f.write("".join(line + "\n" for line in lines))


@pytest.fixture(scope="module")
def two_users_install():
    if os.geteuid() != 0:
        pytest.skip("the setgid install needs root (useradd, chown)")
    if shutil.which("setpriv") is None or shutil.which("useradd") is None:
        pytest.skip("setpriv/useradd not available")
    if _nosuid(Path("/tmp")):
        pytest.skip("the temporary directory is mounted nosuid")
    if os.environ.get("OUTBOX_SANITIZE") == "1":
        pytest.skip("LeakSanitizer cannot run in a set-group-ID process")
    root = TwoUsers()
    try:
        yield root
    finally:
        root.close()


@pytest.fixture
def two(two_users_install, smarthost, tls_certs):
    sh = smarthost(users={RELAY_USER: SECRET})
    two_users_install.reset(sh, tls_certs.ca_file)
    two_users_install.smarthost = sh
    return two_users_install


def msg(subject, body="body\n"):
    return f"Subject: {subject}\n\n{body}".encode()


def by_subject(sh, subject):
    return [m for m in sh.messages
            if f"Subject: {subject}\r\n".encode() in m.data]


def wait_for(cond, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def outbox_procs(two):
    """Pids of the processes running the installed binary (a caller, or
    a background queue run it forked)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.readlink(d / "exe") == str(two.bin):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def settled(two):
    """Wait (bounded) until no outbox process is left -- a background run
    is forked before its caller exits, so once none is left, none is still
    to come -- and the smarthost has closed every session.  What the queue
    and the smarthost hold is then final."""
    assert wait_for(lambda: not outbox_procs(two), 30), outbox_procs(two)
    assert two.smarthost.wait_idle()


def rcpt_commands(sh, address):
    return [c for c in sh.commands
            if c.verb == "RCPT" and f"<{address}>" in (c.arg or "")]


def no_secret(*blobs):
    for b in blobs:
        text = b.decode("utf-8", "replace") if isinstance(b, bytes) else b
        assert SECRET not in text and RELAY_USER not in text, text


# ---------------------------------------------------------------------------
# A's queued mail survives B
# ---------------------------------------------------------------------------

def test_old_queued_message_survives_the_other_users_send_flush_and_run(two):
    sh = two.smarthost
    body = "A's report\n" * 50
    r = two.a(["-odq", "ops@example.com"], msg("from A", body))
    assert r.returncode == EX_OK, r.stderr
    (a_id,) = two.ids()
    time.sleep(STALE + 1.5)      # older than the staleness age
    # B sends: delivered at once; A's message is due (-odq queues it for
    # the next run), so B's background flush runs and delivers it
    # (outbox(8), SECURITY: delivering is not a privilege)
    r = two.b(["you@example.com"], msg("from B"))
    assert r.returncode == EX_OK, r.stderr
    settled(two)
    assert len(by_subject(sh, "from B")) == 1
    assert len(by_subject(sh, "from A")) == 1, \
        [m.data[:80] for m in sh.messages]
    assert two.ids() == []
    # B's own run then finds nothing left to send
    r = two.b(["-q"])
    assert r.returncode == EX_OK, r.stderr
    settled(two)
    got = by_subject(sh, "from A")
    assert len(got) == 1, [m.data[:80] for m in sh.messages]
    assert got[0].mail_from == f"{two.user}@example.com"
    assert got[0].rcpt_tos == ["ops@example.com"]
    assert got[0].data.endswith(body.replace("\n", "\r\n").encode())
    assert two.failed() == [] and two.ids() == []


def test_deferred_message_is_untouched_by_the_other_users_runs(two):
    """A message that is not due (the relay said 451) stays queued, both
    files whole, through B's send, B's flush and B's -q."""
    r = two.a(["later@example.com"], msg("deferred A"))
    assert r.returncode == EX_OK, r.stderr
    (a_id,) = two.ids()
    data = two.spool / "msg" / f"{a_id}.data"
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    time.sleep(STALE + 1.5)
    sh = two.smarthost
    assert len(rcpt_commands(sh, "later@example.com")) == 1
    assert two.b(["you@example.com"], msg("B again")).returncode == EX_OK
    assert two.b(["-q"]).returncode == EX_OK
    settled(two)
    # not due: neither B's flush nor B's -q tried it
    assert len(rcpt_commands(sh, "later@example.com")) == 1
    # -qf tries every message now (outbox(8)); the relay says 451 again,
    # so it stays queued, and a queue run that ran is exit 0
    assert two.b(["-qf"]).returncode == EX_OK
    settled(two)
    assert len(rcpt_commands(sh, "later@example.com")) == 2
    assert by_subject(sh, "deferred A") == []
    assert two.ids() == [a_id] and two.failed() == []
    assert hashlib.sha256(data.read_bytes()).hexdigest() == digest


def test_odb_background_run_sends_the_callers_own_message(two):
    """-odb forks a run of its own message (-qI as a non-root caller):
    it must find it and deliver it."""
    sh = two.smarthost
    r = two.a(["-odb", "ops@example.com"], msg("background A"))
    assert r.returncode == EX_OK, r.stderr
    assert wait_for(lambda: len(by_subject(sh, "background A")) == 1)
    assert wait_for(lambda: two.ids() == [])
    assert two.failed() == []


# ---------------------------------------------------------------------------
# privacy: list, remove, force only one's own
# ---------------------------------------------------------------------------

def _queue_one_each(two):
    r = two.a(["-odq", "a-rcpt@example.com"], msg("A private"))
    assert r.returncode == EX_OK, r.stderr
    a_id = two.ids()[0]
    r = two.b(["-odq", "b-rcpt@example.com", "b-bcc@example.com"],
              msg("B private"))
    assert r.returncode == EX_OK, r.stderr
    (b_id,) = [i for i in two.ids() if i != a_id]
    return a_id, b_id


def test_users_list_only_their_own_messages(two):
    a_id, b_id = _queue_one_each(two)
    r = two.a(["-bp"])
    assert r.returncode == EX_OK, r.stderr
    out = r.stdout.decode()
    assert a_id in out and "a-rcpt@example.com" in out
    assert b_id not in out and "b-rcpt" not in out and "b-bcc" not in out
    assert two.user_b not in out
    assert "1 message(s) of other users not shown" in out, out
    r = two.a(["-bp", "--json"])
    assert r.returncode == EX_OK, r.stderr
    listed = json.loads(r.stdout)
    assert [e["id"] for e in listed] == [a_id]
    assert listed[0]["uid"] == two.uid
    assert b"b-rcpt" not in r.stdout and b"b-bcc" not in r.stdout
    assert two.user_b.encode() not in r.stdout
    # B sees B's only
    r = two.b(["-bp", "--json"])
    assert [e["id"] for e in json.loads(r.stdout)] == [b_id]
    # root sees both
    r = two.root(["-bp", "--json"])
    assert r.returncode == EX_OK, r.stderr
    assert sorted(e["id"] for e in json.loads(r.stdout)) == \
        sorted([a_id, b_id])


def test_users_remove_and_force_only_their_own_messages(two):
    sh = two.smarthost
    a_id, b_id = _queue_one_each(two)
    r = two.a(["--remove", b_id])
    assert r.returncode == EX_USAGE, r.stderr
    assert b"no such message of yours" in r.stderr
    r = two.a(["-qI", b_id])
    assert r.returncode == EX_IOERR, r.stderr
    assert sorted(two.ids()) == sorted([a_id, b_id])
    settled(two)
    assert by_subject(sh, "B private") == []
    # each may force and remove their own
    r = two.b(["-qI", b_id])
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(by_subject(sh, "B private")) == 1
    r = two.a(["--remove", a_id])
    assert r.returncode == EX_OK, r.stderr
    assert two.ids() == [] and by_subject(sh, "A private") == []


def test_root_removes_anyones_message(two):
    a_id, b_id = _queue_one_each(two)
    r = two.root(["--remove", b_id])
    assert r.returncode == EX_OK, r.stderr
    assert two.ids() == [a_id]


# ---------------------------------------------------------------------------
# modes that write files; files that steer delivery
# ---------------------------------------------------------------------------

def test_init_is_refused_before_anything_is_opened(two):
    r = two.b(["-odq", "you@example.com"], msg("B's victim"))
    assert r.returncode == EX_OK, r.stderr
    (b_id,) = two.ids()
    data = two.spool / "msg" / f"{b_id}.data"
    size = data.stat().st_size
    for args in (["-C", str(data), "--force", "--init", "x.example"],
                 ["--force", "--init", "x.example"],
                 ["--init", "x.example"]):
        r = two.a(args)
        assert r.returncode == EX_USAGE, (args, r.stderr)
        assert data.stat().st_size == size
    owned = [p for p in two.spool.rglob("*") if p.stat().st_uid == two.uid]
    assert owned == []
    assert two.ids() == [b_id]


@pytest.mark.parametrize("key", ["ca-file", "aliases"])
def test_files_that_steer_delivery_must_be_roots(two, key):
    sh = two.smarthost
    path = two.etc / ("ca.pem" if key == "ca-file" else "aliases")
    if key == "aliases":
        path.write_text("root: ops@example.com\n")
        os.chmod(path, 0o644)
        two.add_config(f"aliases {path}")
    assert two.a(["root"], msg(f"{key} ok")).returncode == EX_OK
    os.chown(path, two.uid, -1)          # A could now rewrite it
    try:
        r = two.b(["root"], msg(f"{key} refused"))
        assert r.returncode == EX_CONFIG, r.stderr
        assert str(path).encode() in r.stderr and b"owned by root" in \
            r.stderr, r.stderr
        os.chown(path, 0, -1)
        os.chmod(path, 0o666)            # writable by others
        r = two.b(["root"], msg(f"{key} refused 2"))
        assert r.returncode == EX_CONFIG, r.stderr
    finally:
        os.chown(path, 0, -1)
        os.chmod(path, 0o644)
    assert len(sh.messages) == 1


def test_check_hides_the_relay_account(two):
    r = two.a(["--check"])
    assert r.returncode == EX_OK, r.stderr
    assert b"(hidden)" in r.stdout
    no_secret(r.stdout, r.stderr)
    r = two.a(["-v", "you@example.com"], msg("verbose"))
    assert r.returncode == EX_OK, r.stderr
    no_secret(r.stdout, r.stderr)


# ---------------------------------------------------------------------------
# the environment does not steer the relay connection or the sender
# ---------------------------------------------------------------------------

def test_proxy_variables_are_ignored(two):
    sh = two.smarthost
    proxy = LoggingProxy()
    try:
        env = {name: proxy.url("socks5h") for name in PROXY_VARS}
        env.update({"NO_PROXY": "", "no_proxy": ""})
        r = two.a(["you@example.com"], msg("no proxy"), env=env)
        assert r.returncode == EX_OK, r.stderr
        assert sh.wait_idle()
        assert len(by_subject(sh, "no proxy")) == 1
        assert proxy.wait_idle()
        assert proxy.accepted == 0, proxy.connections
        r = two.a(["--check"], env=env)
        assert r.returncode == EX_OK, r.stderr
        assert b"proxy:        none" in r.stdout, r.stdout
        assert proxy.wait_idle()
        assert proxy.accepted == 0, proxy.connections
    finally:
        proxy.stop()


def test_configured_proxy_is_used_by_every_user(two):
    sh = two.smarthost
    proxy = LoggingProxy()
    try:
        two.add_config(f"proxy {proxy.url('socks5h')}")
        r = two.a(["you@example.com"], msg("via proxy"),
                  env={"NO_PROXY": "*", "ALL_PROXY": "socks5h://127.0.0.1:9"})
        assert r.returncode == EX_OK, r.stderr
        assert sh.wait_idle()
        assert len(by_subject(sh, "via proxy")) == 1
        assert [c[2] for c in proxy.connections] == [sh.port]
    finally:
        proxy.stop()


def _has_passwd_entry(uid):
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def test_uid_without_passwd_entry_sends_as_uid_not_logname(two):
    sh = two.smarthost
    # a uid no account has (useradd allocates far below this range)
    stray = 1_000_000 + int.from_bytes(os.urandom(3), "big")
    while _has_passwd_entry(stray):
        stray += 1
    r = two.run([two.bin, "you@example.com"], msg("stray uid"), uid=stray,
                env={"LOGNAME": "ceo", "USER": "ceo"})
    assert r.returncode == EX_OK, r.stderr
    (m,) = by_subject(sh, "stray uid")
    assert m.mail_from == f"uid{stray}@example.com"
    assert b"ceo" not in m.data


# ---------------------------------------------------------------------------
# the shared log file
# ---------------------------------------------------------------------------

def test_shared_log_is_roots_and_only_the_group_reads_it(two):
    assert two.a(["you@example.com"], msg("log A")).returncode == EX_OK
    r = two.b(["you@example.com"], msg("log B"))
    assert r.returncode == EX_OK and b"not usable" not in r.stderr, r.stderr
    st = os.stat(two.log)
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o660)
    text = two.log.read_text()
    assert f"from=<{two.user}@example.com>" in text
    assert f"from=<{two.user_b}@example.com>" in text
    r = two.run(["cat", str(two.log)])
    assert (r.returncode, r.stdout) == (1, b""), r
    assert b"Permission denied" in r.stderr, r.stderr


@pytest.mark.parametrize("plant", ["file", "symlink"])
def test_a_log_file_planted_by_a_user_is_not_used(two, plant):
    """With the log in a directory everyone may write (a sticky one), A
    cannot make the next user's outbox write into a file of A's, nor
    through a link into the queue."""
    sticky = two.dir / "public"
    sticky.mkdir(exist_ok=True)
    os.chmod(sticky, 0o1777)
    log = sticky / "outbox.log"
    if log.exists() or log.is_symlink():
        log.unlink()
    r = two.b(["-odq", "later@example.com"], msg("B's queued"))
    assert r.returncode == EX_OK, r.stderr
    (b_id,) = two.ids()
    victim = two.spool / "msg" / f"{b_id}.data"
    before = victim.read_bytes()
    two.add_config(f"log {log}")
    if plant == "file":
        r = two.run(["sh", "-c", f": > {log}"])
    else:
        r = two.run(["ln", "-s", str(victim), str(log)])
    assert r.returncode == 0, r.stderr
    r = two.b(["you@example.com"], msg("after the plant"))
    assert r.returncode == EX_OK, r.stderr
    assert b"not usable" in r.stderr and str(log).encode() in r.stderr
    assert victim.read_bytes() == before
    if plant == "file":
        assert log.read_bytes() == b"", log.read_bytes()


# ---------------------------------------------------------------------------
# failed/ and the shared slot and rate files
# ---------------------------------------------------------------------------

def test_failed_messages_are_listed_and_requeued_only_by_their_owner(two):
    sh = two.smarthost                  # bad@example.com -> 550
    r = two.a(["-odq", "bad@example.com"], msg("A refused"))
    assert r.returncode == EX_OK, r.stderr
    (a_id,) = two.ids()
    r = two.b(["-odq", "bad@example.com"], msg("B refused"))
    assert r.returncode == EX_OK, r.stderr
    (b_id,) = [i for i in two.ids() if i != a_id]
    r = two.root(["-q"])
    assert r.returncode == EX_OK, r.stderr
    settled(two)
    assert two.ids() == []
    assert sorted(two.failed()) == sorted(
        [f"{i}.{e}" for i in (a_id, b_id) for e in ("data", "env")])
    r = two.a(["-bp", "--failed"])
    assert r.returncode == EX_OK, r.stderr
    assert a_id.encode() in r.stdout and b_id.encode() not in r.stdout
    assert b"1 message(s) of other users not shown" in r.stdout
    r = two.a(["-bp", "--failed", "--json"])
    assert [e["id"] for e in json.loads(r.stdout)] == [a_id]
    r = two.a(["--requeue", b_id])
    assert r.returncode == EX_USAGE, r.stderr
    assert b"no such message of yours in failed/" in r.stderr
    assert two.ids() == []
    r = two.b(["--requeue", b_id])
    assert r.returncode == EX_OK, r.stderr
    assert two.ids() == [b_id]
    r = two.root(["--requeue", a_id])
    assert r.returncode == EX_OK, r.stderr
    assert sorted(two.ids()) == sorted([a_id, b_id])


def test_slot_and_rate_files_work_for_every_user(two):
    """The first user's process creates the shared slot and send-log
    files (group outbox, 0660); the other user's process uses them."""
    sh = two.smarthost
    two.add_config("max-connections 1", "rate-limit 100/min")
    r = two.a(["-v", "a-rcpt@example.com"], msg("A first"))
    assert r.returncode == EX_OK, r.stderr
    made = [p for p in two.spool.iterdir()
            if p.name.startswith(("slot-", "rate-"))]
    assert made, list(two.spool.iterdir())
    for p in made:
        st = p.stat()
        assert st.st_uid == two.uid and (st.st_mode & 0o777) == 0o660, p
    r = two.b(["-v", "b-rcpt@example.com"], msg("B second"))
    assert r.returncode == EX_OK, r.stderr
    assert b"cannot take a connection slot" not in r.stderr
    assert b"send log" not in r.stderr
    settled(two)
    assert len(by_subject(sh, "A first")) == 1
    assert len(by_subject(sh, "B second")) == 1
    log = two.log.read_text()
    assert "connection slot" not in log and "send log" not in log, log


# ---------------------------------------------------------------------------
# accounts: each user's sender picks its own relay account
# ---------------------------------------------------------------------------

APP_USER = "app-acct-w3k"
APP_SECRET = "app-Secret-8c1e"


def test_accounts_route_each_users_mail_and_hide_both_secrets(two,
                                                              smarthost):
    """B's address has an account of its own (another smarthost, another
    password file, root's and the group's only): B's mail goes there with
    that account's credentials, A's through the default; a queue run by
    A sends B's queued message through B's account; neither user ever
    sees either account's user or password."""
    import grp
    import subprocess
    from test_hardening import REPO_ROOT
    sh, app = two.smarthost, smarthost(users={APP_USER: APP_SECRET})
    secret = two.etc / "outbox-app.secret"
    secret.write_text(APP_SECRET + "\n")
    os.chmod(secret, 0o600)     # root's alone: the group cannot read it
    two.add_config("account app", f"  senders {two.user_b}@example.com",
                   f"  smarthost {app.hostport}", "  tls starttls",
                   f"  ca-file {two.etc / 'ca.pem'}", f"  user {APP_USER}",
                   f"  password-file {secret}", "  timeout 5s")
    # the install script gives every account's password file to the group
    r = subprocess.run([str(REPO_ROOT / "conf/install-setgid.sh"),
                        str(two.bin), str(two.etc / "outbox.conf"),
                        str(two.spool)], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ,
                                            OUTBOX_GROUP=two.group))
    assert r.returncode == 0, r.stdout + r.stderr
    st = secret.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (
        0, grp.getgrnam(two.group).gr_gid, 0o640)
    assert two.a(["a-rcpt@example.com"], msg("A direct")).returncode == EX_OK
    r = two.b(["b-rcpt@example.com"], msg("B direct"))
    assert r.returncode == EX_OK, r.stderr
    r = two.b(["-odq", "b-rcpt@example.com"], msg("B queued"))
    assert r.returncode == EX_OK, r.stderr
    assert len(two.ids()) == 1
    assert two.a(["-q"]).returncode == EX_OK
    settled(two)
    assert app.wait_idle()
    assert [m.auth_user for m in by_subject(sh, "A direct")] == [RELAY_USER]
    for subject in ("B direct", "B queued"):
        assert [m.auth_user for m in by_subject(app, subject)] == [APP_USER]
        assert by_subject(sh, subject) == []
    assert two.ids() == []
    for user in (two.a, two.b):
        r = user(["--check"])
        assert r.returncode == EX_OK, r.stderr
        assert r.stdout.count(b"(hidden)") == 2
        assert b"account app:" in r.stdout
        r2 = user(["-bv", "x@example.com"])
        for blob in (r.stdout, r.stderr, r2.stdout, r2.stderr):
            no_secret(blob)
            text = blob.decode("utf-8", "replace")
            assert APP_SECRET not in text and APP_USER not in text, text
    assert b"account: app" in two.b(["-bv", "x@example.com"]).stdout
    log = two.log.read_text()
    assert APP_SECRET not in log and SECRET not in log
