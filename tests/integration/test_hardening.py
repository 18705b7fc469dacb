"""Hardening: the setgid install used by a real non-root user, and messages
with lines longer than SMTP allows (DESIGN.md section 1).

The setgid tests build outbox with its default config path inside a
temporary root, install it there with `make install-setgid`, create a
throwaway local user and group membership as needed, and remove them
afterwards.  They need root (useradd, chown) and a /tmp without nosuid.
"""

import email
import email.policy
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT

EX_OK, EX_USAGE = 0, 64
SECRET = "hardening-Secret-7c1e"
SMALL = b"Subject: setgid\n\nfrom an ordinary user\n"


# ---------------------------------------------------------------------------
# the setgid install
# ---------------------------------------------------------------------------

def _nosuid(path: Path) -> bool:
    """Is path on a filesystem mounted nosuid?"""
    best, opts = "", ""
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            mnt = parts[1]
            if str(path).startswith(mnt) and len(mnt) >= len(best):
                best, opts = mnt, parts[3]
    return "nosuid" in opts.split(",")


# useradd/groupadd exit status: the name is already in use
_NAME_IN_USE = 9


def _new_account(cmd, prefix):
    """Create a user or group (cmd: its useradd/groupadd command line
    without the name) under a fresh random name; the name.  A name that
    exists is never reused or deleted: it may be another suite's."""
    for _ in range(8):
        name = prefix + secrets.token_hex(5)
        r = subprocess.run(cmd + [name], capture_output=True, text=True,
                           timeout=60)
        if r.returncode == 0:
            return name
        assert r.returncode == _NAME_IN_USE, (cmd, name, r.stderr)
    pytest.fail(f"{cmd}: no free name with prefix {prefix!r}")


class SetgidRoot:
    """outbox installed setgid into a temporary root (built once per module),
    configured for one test's smarthost, plus a test user.

    The group and the users are this run's own: created under random names
    (never a name that exists, never one derived from the pid, which
    another suite -- in another PID namespace, or whose pid has the same
    residue -- could also pick), and close() deletes only what this run
    created.  So two suites on one host never share, steal or delete each
    other's accounts."""

    MAKE_VARS = ()      # extra make variables for the build (test knobs)
    RELAY_USER = None   # the smarthost account: the first of its users

    def __init__(self):
        self.users = []
        self.group = None
        self.created_group = False
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-setgid-"))
        try:
            os.chmod(self.dir, 0o755)
            self.etc = self.dir / "etc"
            self.spool = self.dir / "spool"
            self.log = self.dir / "log" / "outbox.log"
            self.bin = self.dir / "sbin" / "outbox"
            # the group first: install-setgid uses an existing group
            self.group = _new_account(["groupadd", "--system"], "obxg")
            self.created_group = True
            self._build()
            self._make_user()
        except BaseException:
            self.close()
            raise

    def reset(self, smarthost, ca_file):
        """A fresh config, queue and log for one test."""
        for d in (self.spool, self.log.parent):
            shutil.rmtree(d, ignore_errors=True)
        for f in self.etc.iterdir():
            f.unlink()
        self._configure(smarthost, ca_file)

    def _build(self):
        self.etc.mkdir()
        r = subprocess.run(
            ["make", "-s", "-C", str(REPO_ROOT),
             f"BUILDDIR={self.dir}/build", f"OUT={self.dir}/build/outbox",
             f"SYSCONFDIR={self.etc}", f"PREFIX={self.dir}",
             f"QUEUEDIR={self.spool}", f"OUTBOX_GROUP={self.group}",
             *self.MAKE_VARS, "install-setgid"],
            capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"created group {self.group}" not in r.stdout, r.stdout

    def _configure(self, sh, ca_file):
        user, password = next(iter(sh.users.items()))
        shutil.copy(ca_file, self.etc / "ca.pem")
        os.chmod(self.etc / "ca.pem", 0o644)
        secret = self.etc / "outbox.secret"
        secret.write_text(password + "\n")
        (self.etc / "outbox.conf").write_text(
            f"smarthost {sh.hostport}\ntls starttls\nuser {user}\n"
            f"password-file {secret}\nca-file {self.etc / 'ca.pem'}\n"
            f"domain example.com\nhelo client.example.com\ntimeout 5s\n"
            f"queue {self.spool}\nlog {self.log}\nallow-from none\n")
        self.log.parent.mkdir()
        gid = grp.getgrnam(self.group).gr_gid
        # the queue as install-setgid makes it
        for d in ("", "tmp", "msg", "failed"):
            (self.spool / d).mkdir(parents=True, exist_ok=True)
            os.chown(self.spool / d, 0, gid)
            os.chmod(self.spool / d, 0o2770)
        os.chown(self.log.parent, 0, gid)
        os.chmod(self.log.parent, 0o2770)
        # install-setgid again: now it fixes the config and the secret
        r = subprocess.run([str(REPO_ROOT / "conf/install-setgid.sh"),
                            str(self.bin), str(self.etc / "outbox.conf"),
                            str(self.spool)],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, OUTBOX_GROUP=self.group))
        assert r.returncode == 0, r.stdout + r.stderr

    def _make_user(self):
        self.user, self.uid = self.add_user("obxt")

    def add_user(self, prefix):
        """Create a local user of this run under a fresh name starting with
        prefix (removed by close, with the group useradd made for it):
        (name, uid)."""
        name = _new_account(
            ["useradd", "--no-create-home", "--shell", "/bin/sh",
             "--comment", f"outbox test suite, pid {os.getpid()}"], prefix)
        self.users.append(name)
        return name, pwd.getpwnam(name).pw_uid

    def run(self, args, input_bytes=b"", env=None, timeout=60, uid=None):
        """Run a command as the test user, or as uid (its primary group, or
        a gid equal to the uid when it has no passwd entry; no
        supplementary groups)."""
        uid = self.uid if uid is None else uid
        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = uid
        e = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}
        e.update(env or {})
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}",
               "--clear-groups", "--"] + [str(a) for a in args]
        return subprocess.run(cmd, input=input_bytes, capture_output=True,
                              env=e, timeout=timeout, cwd="/")

    def close(self):
        for name in self.users:
            subprocess.run(["userdel", name], capture_output=True, timeout=60)
        self.users = []
        if self.created_group:
            subprocess.run(["groupdel", self.group], capture_output=True,
                           timeout=60)
            self.created_group = False
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def setgid_install():
    if os.geteuid() != 0:
        pytest.skip("the setgid install needs root (useradd, chown)")
    if shutil.which("setpriv") is None or shutil.which("useradd") is None:
        pytest.skip("setpriv/useradd not available")
    if _nosuid(Path(tempfile.gettempdir())):
        pytest.skip("the temporary directory is mounted nosuid")
    if os.environ.get("OUTBOX_SANITIZE") == "1":
        pytest.skip("LeakSanitizer cannot run in a set-group-ID process "
                    "(the kernel makes it non-dumpable); the plain build "
                    "runs these tests")
    root = SetgidRoot()
    try:
        yield root
    finally:
        root.close()


@pytest.fixture
def setgid_root(setgid_install, smarthost, tls_certs):
    sh = smarthost(users={"user": SECRET})
    setgid_install.reset(sh, tls_certs.ca_file)
    setgid_install.smarthost = sh
    return setgid_install


def _no_secret(*blobs):
    for b in blobs:
        text = b.decode("utf-8", "replace") if isinstance(b, bytes) else b
        assert SECRET not in text, "the secret leaked"


def test_setgid_user_sends_and_cannot_read_the_secret(setgid_root):
    r = setgid_root.run([setgid_root.bin, "you@example.com"], SMALL)
    assert r.returncode == EX_OK, r.stderr
    sh = setgid_root.smarthost
    assert len(sh.messages) == 1
    m = sh.messages[0]
    assert m.mail_from == f"{setgid_root.user}@example.com"
    assert m.rcpt_tos == ["you@example.com"]
    assert m.auth_user == "user" and m.tls
    # the installed layout
    st = os.stat(setgid_root.bin)
    assert st.st_mode & 0o2000
    assert st.st_gid == grp.getgrnam(setgid_root.group).gr_gid
    for f in ("outbox.conf", "outbox.secret"):
        fst = os.stat(setgid_root.etc / f)
        assert (fst.st_uid, fst.st_mode & 0o777) == (0, 0o640), f
    # the user cannot read the secret or the config directly
    for f in ("outbox.secret", "outbox.conf"):
        r = setgid_root.run(["cat", setgid_root.etc / f])
        assert (r.returncode, r.stdout) == (1, b""), r
        assert b"Permission denied" in r.stderr, r.stderr
        _no_secret(r.stdout, r.stderr)
    _no_secret(setgid_root.log.read_text())


def test_setgid_refuses_C_and_shadow_probe(setgid_root):
    own = Path(setgid_root.dir) / "own.conf"
    own.write_text("smarthost 127.0.0.1:1\ntls off\n")
    os.chmod(own, 0o644)
    r = setgid_root.run([setgid_root.bin, "-C", own, "you@example.com"],
                        SMALL)
    assert r.returncode == EX_USAGE, r.stderr
    assert b"-C" in r.stderr
    assert setgid_root.smarthost.wait_idle()
    assert setgid_root.smarthost.connections == 0
    # the classic probe learns nothing about /etc/shadow
    r = setgid_root.run([setgid_root.bin, "-C", "/etc/shadow", "-bv", "x"])
    # outbox(8), SECURITY: -C is refused (exit 64) before anything is
    # opened
    assert r.returncode == EX_USAGE, r.stderr
    assert b"-C" in r.stderr, r.stderr
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    with open("/etc/shadow") as f:
        for line in f:
            name = line.split(":", 1)[0]
            assert f"{name}:" not in out, out
    assert len(out.strip().splitlines()) == 1, out


def test_setgid_ignores_outbox_environment(setgid_root, closed_port):
    env = {"OUTBOX_SMARTHOST": closed_port.hostport, "OUTBOX_TLS": "off",
           "OUTBOX_QUEUE": "off"}
    r = setgid_root.run([setgid_root.bin, "you@example.com"], SMALL, env=env)
    assert r.returncode == EX_OK, r.stderr
    assert len(setgid_root.smarthost.messages) == 1


def test_setgid_allow_from_and_verbose_hide_auth(setgid_root):
    # allow-from none: another sender is refused (77) ...
    r = setgid_root.run([setgid_root.bin, "-f", "boss@example.org",
                         "you@example.com"], SMALL)
    assert r.returncode == 77, r.stderr
    assert setgid_root.smarthost.wait_idle()
    assert setgid_root.smarthost.messages == []
    # ... one's own name is fine, and -v shows no AUTH exchange
    r = setgid_root.run([setgid_root.bin, "-v", "-f", setgid_root.user,
                         "you@example.com"], SMALL)
    assert r.returncode == EX_OK, r.stderr
    err = r.stderr.decode("utf-8", "replace")
    assert "MAIL FROM" in err
    shown = err.splitlines()
    assert not any(l.startswith("-> AUTH") for l in shown), err
    assert not any(l.startswith(("<- 334", "<- 235")) for l in shown), err
    assert "authentication exchange hidden" in err
    _no_secret(err)


def test_setgid_user_can_queue(setgid_root):
    setgid_root.smarthost.stop()
    r = setgid_root.run([setgid_root.bin, "you@example.com"], SMALL)
    assert r.returncode == EX_OK, r.stderr
    msgs = list((setgid_root.spool / "msg").glob("*.env"))
    assert len(msgs) == 1
    st = os.stat(msgs[0])
    assert st.st_uid == setgid_root.uid
    assert st.st_gid == grp.getgrnam(setgid_root.group).gr_gid
    assert st.st_mode & 0o777 == 0o660
    # root's queue run can read and handle the user's message
    r = subprocess.run([str(setgid_root.bin), "-bp"], capture_output=True,
                       timeout=30)
    assert r.returncode == EX_OK
    assert msgs[0].stem.encode() in r.stdout


# ---------------------------------------------------------------------------
# lines longer than 998 octets
# ---------------------------------------------------------------------------

def _lines(data: bytes):
    return data.split(b"\r\n")


def test_cron_output_with_long_lines_decodes_to_the_original(
        outbox, smarthost, tmp_path):
    sh = smarthost()
    log = tmp_path / "outbox.log"
    conf = outbox.write_config(tmp_path, sh, log=str(log))
    body = ("backup report\n" + "x" * 4990 + " end=\u00e9\t\n" +
            "".join(chr(97 + i % 26) for i in range(100000)) +
            "\n.last line with a trailing space \n")
    msg = ("From: root (Cron Daemon)\nTo: root\n"
           "Subject: Cron <root@host> backup\n\n" + body).encode()
    r = outbox.run(["-FCronDaemon", "-i", "-oem", "you@example.com"], msg,
                   config=conf)
    assert r.returncode == EX_OK, r.stderr
    data = sh.messages[0].data
    assert max(len(l) for l in _lines(data)) <= 998
    m = email.message_from_bytes(data, policy=email.policy.default)
    assert m["Content-Transfer-Encoding"] == "quoted-printable"
    assert m["Subject"] == "Cron <root@host> backup"
    decoded = m.get_payload(decode=True).replace(b"\r\n", b"\n")
    assert decoded == body.encode("utf-8")
    assert "re-encoded as quoted-printable" in log.read_text()


def test_multipart_long_line_in_binary_part_is_broken_and_logged(
        outbox, smarthost, tmp_path):
    sh = smarthost()
    log = tmp_path / "outbox.log"
    conf = outbox.write_config(tmp_path, sh, log=str(log))
    blob = "QUJD" * 1000        # 4000 octets of base64 on one line
    msg = ("Subject: report\nMIME-Version: 1.0\n"
           "Content-Type: multipart/mixed; boundary=b1\n\n"
           "--b1\nContent-Type: text/plain\n\nsee attachment\n"
           "--b1\nContent-Type: application/octet-stream\n"
           "Content-Transfer-Encoding: base64\n\n" + blob + "\n--b1--\n"
           ).encode()
    r = outbox.run(["-i", "you@example.com"], msg, config=conf)
    assert r.returncode == EX_OK, r.stderr
    data = sh.messages[0].data
    assert max(len(l) for l in _lines(data)) <= 998
    assert b"Content-Transfer-Encoding: quoted-printable" not in data
    m = email.message_from_bytes(data, policy=email.policy.default)
    parts = list(m.iter_parts())
    assert parts[0].get_content().strip() == "see attachment"
    # the break is CRLF SPACE, which base64 decoders skip
    assert parts[1].get_payload(decode=True) == b"ABC" * 1000
    assert "long lines broken" in log.read_text()


def test_bare_cr_nul_and_8bit_never_crash_and_8bit_arrives_intact(
        outbox, smarthost, tmp_path):
    sh = smarthost()
    conf = outbox.write_config(tmp_path, sh)
    body = bytes(range(0x80, 0x100)) + b"\n\xc3\xa9t\xc3\xa9\n"
    r = outbox.run(["-i", "you@example.com"],
                   b"Subject: 8bit\n\n" + body, config=conf)
    assert r.returncode == EX_OK, r.stderr
    assert sh.messages[0].data.endswith(body.replace(b"\n", b"\r\n"))
    # bare CR and NUL: outbox(8), MESSAGE HANDLING: a CR not followed by
    # LF is a line end (sent as CRLF); other bytes are kept.  The test
    # smarthost takes any byte, so the message is delivered as it is.
    r = outbox.run(["-i", "you@example.com"],
                   b"Subject: odd\n\na\rb\x00c\n", config=conf)
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(sh.messages) == 2, sh.messages
    assert sh.messages[1].rcpt_tos == ["you@example.com"]
    assert sh.messages[1].data.endswith(b"\r\n\r\na\r\nb\x00c\r\n"), \
        sh.messages[1].data
