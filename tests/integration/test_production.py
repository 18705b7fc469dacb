"""Integration tests of outbox's production features against real servers.

Contract under test (the production-features issue; src/config.c,
src/secret.c, src/oauth.c, src/check.c, src/init.c, src/queue.c,
src/deliver.c):

Secrets
  password-file FILE      first line, line end stripped; FILE must be 0600
  password-command CMD    first line of stdout; no shell unless CMD has shell
                          syntax (then /bin/sh -c); bounded by `timeout`; a
                          failing, empty or hanging command is an error
                          naming the key: queue on -> queued (exit 0),
                          queue off -> exit 78
  auth xoauth2|oauthbearer with token-command CMD (a fresh token per
                          connection) or the refresh flow: oauth-token-url
                          https://..., oauth-client-id,
                          oauth-client-secret-file, oauth-refresh-token-file
                          (POST grant_type=refresh_token; JSON access_token /
                          expires_in / refresh_token; token cached with its
                          expiry in QUEUE/oauth-token 0600; refreshed 60 s
                          before expiry or after an AUTH failure; a rotated
                          refresh token replaces its file atomically; the
                          endpoint's certificate is checked against ca-file)
  A secret (password, token, refresh token, client secret) never appears in
  a child's argv or environment, on stderr, in -v output, in the log, in a
  queue file (msg/, tmp/) or in an error message.  The access token is
  expected in QUEUE/oauth-token (the cache), nowhere else.

Container config
  Every key from OUTBOX_<KEY> ('-' -> '_'); OUTBOX_SMARTHOST may list hosts
  separated by blanks or commas; no config file (no -C, /etc/outbox.conf
  absent) -> the environment alone; -C FILE + environment -> the
  environment wins key by key; -v prints where each key came from.

EHLO     default helo: the host's FQDN from the resolver, else `domain`,
         never "localhost".
--check  per smarthost: address, TLS, certificate, capabilities, AUTH
         mechanisms and result; sends no mail; exit 0 only when all pass;
         one stderr line "outbox: check: HOST:PORT: STEP failed: WHY".
Logs     ID: from=<a>, size=N, nrcpt=N / ID: to=<x>, relay=host[addr]:port,
         delay=S, tries=N, status=sent|deferred|bounced (...) / ID: removed.
mailq --json   one object per message (id, size, arrival, sender,
         recipients[address, state], attempts, next_attempt, last_error).
--init HOST:PORT --user U   password on stdin; writes a 0600 config and a
         0600 .secret file; refuses to overwrite without --force; then runs
         --check and exits with its code.
Core dumps / ptrace: PR_SET_DUMPABLE 0.

Every wait here is bounded; secrets are random per test.
"""

import base64
import json
import os
import re
import secrets as pysecrets
import select
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ClosedPort

EX_OK = 0
EX_USAGE = 64
EX_NOUSER = 67
EX_CANTCREAT = 73
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78

PYTHON = "/usr/bin/python3"
SENDER = "sender@example.com"
RCPT = "rcpt@example.com"
ID = r"[0-9A-F]{16}"
ID_RE = re.compile(rf"^{ID}$")
DEFAULT_CONFIG = Path("/etc/outbox.conf")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def text(b) -> str:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def describe(r) -> str:
    return (f"exit {r.returncode}\n--- stderr ---\n{text(r.stderr)}"
            f"\n--- stdout ---\n{text(r.stdout)}")


def secret(kind: str) -> str:
    """A random, unmistakable secret value."""
    return f"{kind}-{pysecrets.token_hex(12)}"


def message(marker: str = "") -> bytes:
    return (f"Subject: production test\n\nbody line {marker}\n").encode()


def write_private(path: Path, content: str, mode: int = 0o600) -> Path:
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    os.chmod(path, mode)
    return path


def write_script(path: Path, body: str) -> Path:
    path = Path(path)
    path.write_text("#!/bin/sh\n" + body)
    os.chmod(path, 0o700)
    return path


def recording_script(tmp_path: Path, name: str, secret_file: Path,
                     extra: str = "") -> Path:
    """A command that records its argv, environment, parent's name and run
    count under tmp_path/NAME.*, then prints the first line of secret_file
    (optionally suffixed with the run count: write the file without a
    newline and use extra='count')."""
    base = tmp_path / name
    tail = 'printf "%s%s\\n" "$(cat {s})" "$n"' if extra == "count" else \
        'head -n 1 {s}'
    return write_script(tmp_path / f"{name}.sh", f"""
n=$(cat {base}.count 2>/dev/null || echo 0)
n=$((n + 1)); echo $n > {base}.count
for a in "$0" "$@"; do printf '%s\\n' "$a"; done >> {base}.argv
env >> {base}.env
cat /proc/$PPID/comm >> {base}.parent
{tail.format(s=secret_file)}
""")


def log_lines(path: Path):
    """The messages of a `log FILE` file (without the time stamp prefix)."""
    if not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text(errors="replace").splitlines():
        m = re.match(r"^\S+ outbox\[\d+\]: (.*)$", line)
        assert m, f"log line in an unexpected format: {line!r}"
        out.append(m.group(1))
    return out


def queued_ids(qdir: Path):
    d = Path(qdir) / "msg"
    if not d.is_dir():
        return []
    return sorted(p.name[:-4] for p in d.iterdir() if p.name.endswith(".env"))


def all_files(d: Path):
    d = Path(d)
    return sorted(p for p in d.rglob("*") if p.is_file()) if d.exists() else []


def forms(secrets_):
    """Each secret and its base64 form (SASL carries secrets encoded)."""
    out = []
    for s in secrets_:
        if s:
            out += [s, base64.b64encode(s.encode()).decode()]
    return out


def assert_no_secret(secrets_, *outputs, paths=(), qdir=None,
                     cache_may_hold=()):
    """No secret (nor its base64 form) in any output (bytes/str), file in
    paths, or file under qdir.  QUEUE/oauth-token may hold the secrets
    listed in cache_may_hold (the cached access token)."""
    bad = forms(secrets_)
    for i, out in enumerate(outputs):
        t = text(out)
        for s in bad:
            assert s not in t, f"secret {s!r} leaked in output #{i}:\n{t}"
    files = [Path(p) for p in paths if Path(p).exists()]
    if qdir is not None:
        files += all_files(qdir)
    for f in files:
        data = f.read_bytes().decode("utf-8", "replace")
        allowed = set()
        if qdir is not None and f == Path(qdir) / "oauth-token":
            allowed = set(forms(cache_may_hold))
        for s in bad:
            if s not in allowed:
                assert s not in data, f"secret {s!r} leaked into {f}"


def auth_blobs(sh):
    """The SASL initial responses the server received (they encode the
    secret)."""
    out = []
    for c in sh.commands:
        if c.verb == "AUTH" and c.arg and len(c.arg.split()) > 1:
            out.append(c.arg.split()[1])
    out += [a.b64 for a in getattr(sh, "oauth_attempts", [])]
    return out


def mailq_json(outbox, cfg, env=None):
    """outbox -bp --json, validated by `python3 -m json.tool`, parsed."""
    r = outbox.run(["-bp", "--json"], config=cfg, env=env, timeout=30)
    assert r.returncode == EX_OK, describe(r)
    tool = subprocess.run([PYTHON, "-m", "json.tool"], input=r.stdout,
                          capture_output=True, timeout=30)
    assert tool.returncode == 0, (
        f"json.tool rejected mailq --json output:\n{text(r.stdout)}\n"
        f"{text(tool.stderr)}")
    return json.loads(r.stdout)


def procs_mentioning(needle: str):
    """PIDs of processes whose command line contains needle."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if needle.encode() in cmdline:
            pids.append(int(d.name))
    return pids


def alive(pid: int) -> bool:
    """pid exists and is not a zombie."""
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return st.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_until(cond, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def password_server(smarthost, **kw):
    """A smarthost with one user and a random password: (server, password)."""
    pw = secret("pw")
    return smarthost(users={"user": pw}, **kw), pw


def pw_config(outbox, tmp_path, sh, pw, name="outbox.conf", **over):
    """Config for sh authenticating with a 0600 password-file."""
    pwfile = write_private(tmp_path / f"{name}.pw", pw + "\n")
    over.setdefault("password_file", str(pwfile))
    return outbox.write_config(tmp_path, sh, name=name, password=None,
                               **over)


# ---------------------------------------------------------------------------
# 1. password-file and password-command
# ---------------------------------------------------------------------------

def test_password_file_first_line_delivers(outbox, smarthost, tmp_path):
    sh, pw = password_server(smarthost)
    pwfile = write_private(tmp_path / "pw", f"{pw}\nsecond line\n")
    qdir, log = tmp_path / "queue", tmp_path / "outbox.log"
    cfg = outbox.write_config(tmp_path, sh, password=None,
                              password_file=str(pwfile), queue=str(qdir),
                              log=str(log))
    r = outbox.run(["-v", "-f", SENDER, RCPT], message(), config=cfg)
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert len(sh.messages) == 1 and sh.messages[0].auth_user == "user"
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, r.stdout,
                     paths=[log, cfg], qdir=qdir)


def test_password_file_readable_by_others_is_refused(outbox, smarthost,
                                                     tmp_path):
    sh, pw = password_server(smarthost)
    pwfile = write_private(tmp_path / "pw", pw + "\n", mode=0o644)
    cfg = outbox.write_config(tmp_path, sh, password=None,
                              password_file=str(pwfile))
    r = outbox.run(["-f", SENDER, RCPT], message(), config=cfg)
    assert sh.wait_idle()
    assert r.returncode == EX_CONFIG, describe(r)
    assert "password-file" in text(r.stderr), describe(r)
    assert sh.messages == [] and "AUTH" not in sh.verbs()
    assert_no_secret([pw], r.stderr, r.stdout)


@pytest.mark.parametrize("shell", [False, True], ids=["exec", "sh-c"])
def test_password_command_delivers(outbox, smarthost, tmp_path, shell):
    """The first line of the command's output is the password.  Without
    shell syntax the command is run directly (its parent is outbox), with
    it through /bin/sh -c.  The child sees no secret in argv or env."""
    sh, pw = password_server(smarthost)
    store = write_private(tmp_path / "store", f"{pw}\nnot this line\n")
    script = recording_script(tmp_path, "pwcmd", store)
    cmd = f"{script} --account work"
    if shell:
        cmd += " | head -n 5"
    qdir, log = tmp_path / "queue", tmp_path / "outbox.log"
    cfg = outbox.write_config(tmp_path, sh, password=None,
                              password_command=cmd, queue=str(qdir),
                              log=str(log))
    r = outbox.run(["-v", "-f", SENDER, RCPT], message(), config=cfg)
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert len(sh.messages) == 1 and sh.messages[0].auth_user == "user"
    argv = (tmp_path / "pwcmd.argv").read_text().splitlines()
    assert argv == [str(script), "--account", "work"], argv
    parent = (tmp_path / "pwcmd.parent").read_text().strip()
    if shell:
        assert parent != "outbox", "shell syntax must go through /bin/sh -c"
    else:
        assert parent == "outbox", f"run without a shell, parent {parent!r}"
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, r.stdout,
                     paths=[log, tmp_path / "pwcmd.argv",
                            tmp_path / "pwcmd.env"], qdir=qdir)


FAILING_COMMANDS = {
    # name: (script body, what stderr/log must say besides the key)
    "fails": ("head -n 1 {store}\nexit 3\n", None),
    "empty": ("exit 0\n", None),
    "no-such-command": (None, None),
}


@pytest.mark.parametrize("queue", [False, True], ids=["queue-off", "queue-on"])
@pytest.mark.parametrize("kind", sorted(FAILING_COMMANDS))
def test_password_command_failure(outbox, smarthost, tmp_path, kind, queue):
    """A failing (even after printing the password), empty or missing
    command: an error naming password-command; nothing reaches the server;
    queue off -> 78, queue on -> queued (exit 0), not lost."""
    sh, pw = password_server(smarthost)
    store = write_private(tmp_path / "store", pw + "\n")
    body, _ = FAILING_COMMANDS[kind]
    if body is None:
        cmd = str(tmp_path / "does-not-exist")
    else:
        cmd = str(write_script(tmp_path / "cmd.sh", body.format(store=store)))
    qdir, log = tmp_path / "queue", tmp_path / "outbox.log"
    cfg = outbox.write_config(tmp_path, sh, password=None,
                              password_command=cmd,
                              queue=str(qdir) if queue else "off",
                              log=str(log))
    r = outbox.run(["-f", SENDER, RCPT], message(), config=cfg)
    assert sh.wait_idle()
    assert sh.messages == [] and "AUTH" not in sh.verbs(), describe(r)
    if queue:
        assert r.returncode == EX_OK, describe(r)
        ids = queued_ids(qdir)
        assert len(ids) == 1, describe(r)
        q = mailq_json(outbox, cfg)
        assert "password-command" in q[0]["last_error"], q
        # logged as deferred (the reason in that line: see
        # test_log_deferred_without_a_connection_gives_the_reason)
        assert any(l.startswith(f"{ids[0]}: to=<{RCPT}>,") and
                   "status=deferred" in l for l in log_lines(log)), \
            log_lines(log)
        assert any("password-command" in l for l in log_lines(log))
    else:
        assert r.returncode == EX_CONFIG, describe(r)
        assert "password-command" in text(r.stderr), describe(r)
    assert_no_secret([pw], r.stderr, r.stdout, paths=[log], qdir=qdir)


@pytest.mark.parametrize("shell", [False, True], ids=["exec", "sh-c"])
def test_password_command_hang_is_bounded(outbox, smarthost, tmp_path, shell):
    """A command that never answers is killed after `timeout` (2 s here),
    with its children, and the error names the key."""
    sh, pw = password_server(smarthost)
    sleeper = tmp_path / "sleep.pid"
    script = write_script(tmp_path / "hang.sh",
                          f"sleep 60 &\necho $! > {sleeper}\nwait\n"
                          "echo late\n")
    cmd = f"{script} | cat" if shell else str(script)
    cfg = outbox.write_config(tmp_path, sh, password=None,
                              password_command=cmd, timeout="2s")
    t0 = time.monotonic()
    r = outbox.run(["-f", SENDER, RCPT], message(), config=cfg, timeout=30)
    elapsed = time.monotonic() - t0
    assert elapsed < 15, f"took {elapsed:.1f}s"
    assert r.returncode == EX_CONFIG, describe(r)
    err = text(r.stderr)
    assert "password-command" in err, describe(r)
    assert sh.wait_idle()
    assert sh.messages == [] and "AUTH" not in sh.verbs()
    assert wait_until(lambda: not procs_mentioning(str(script)), 30), \
        "the hanging command survived the timeout"
    assert sleeper.exists()
    assert wait_until(lambda: not alive(int(sleeper.read_text())), 30), \
        "a child of the hanging command survived the timeout"


def test_password_command_that_closes_stdout_then_hangs_is_bounded(
        outbox, smarthost, tmp_path):
    """A command that prints the password, closes its output and keeps
    running is still bounded by `timeout`.  outbox.conf(5), COMMANDS: the
    command "must exit 0 and print a non-empty first line within timeout
    (the command and all its children are killed after that)", and a
    failing command without a queue is exit 78: this one never exits by
    itself, so its password is not used; it is killed after 2 s and
    nothing reaches the server.  (The command sleeps 40 s: a hang would
    take that long, far above the bound of 15 s asserted below.)"""
    sh, pw = password_server(smarthost)
    store = write_private(tmp_path / "store", pw + "\n")
    pidfile = tmp_path / "linger.pid"
    script = write_script(tmp_path / "linger.sh",
                          f"echo $$ > {pidfile}\nhead -n 1 {store}\n"
                          "exec >&-\nexec sleep 40\n")
    cfg = outbox.write_config(tmp_path, sh, password=None,
                              password_command=str(script), timeout="2s")
    proc = subprocess.Popen(outbox.command(["-f", SENDER, RCPT], cfg),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=outbox.environment())
    t0 = time.monotonic()
    hung = False
    try:
        out, err = proc.communicate(message(), timeout=15)
    except subprocess.TimeoutExpired:
        hung = True
    finally:
        # the lingering command is this test's grandchild: end it by pid
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), 9)
            except (OSError, ValueError):
                pass
    if hung:
        out, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - t0
    assert sh.wait_idle()
    r = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    assert not hung and elapsed < 15, (
        f"outbox was still waiting after {elapsed:.1f}s for a command that "
        f"had closed its output (timeout 2s)\n" + describe(r))
    assert r.returncode == EX_CONFIG, describe(r)
    assert "password-command: timed out" in text(r.stderr), describe(r)
    assert sh.wait_idle()
    assert sh.messages == [] and sh.rejected == []
    assert "AUTH" not in sh.verbs() and "MAIL" not in sh.verbs(), sh.verbs()
    assert_no_secret([pw] + auth_blobs(sh), r.stdout, r.stderr)


# ---------------------------------------------------------------------------
# 2. OAuth2: token-command
# ---------------------------------------------------------------------------

def oauth_server(smarthost, mech, tokens):
    return smarthost(mechanisms=(mech,), tokens={"user": tokens})


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_token_command_fresh_token_per_connection(outbox, smarthost,
                                                   tmp_path, mech):
    prefix = secret("tok")
    sh = oauth_server(smarthost, mech, {prefix + "1", prefix + "2"})
    store = write_private(tmp_path / "store", prefix)
    script = recording_script(tmp_path, "tokcmd", store, extra="count")
    qdir, log = tmp_path / "queue", tmp_path / "outbox.log"
    cfg = outbox.write_config(tmp_path, sh, password=None, user="user",
                              auth=mech.lower(), token_command=str(script),
                              queue=str(qdir), log=str(log))
    outs = []
    for i in (1, 2):
        r = outbox.run(["-v", "-f", SENDER, RCPT], message(), config=cfg)
        assert sh.wait_idle()
        assert r.returncode == EX_OK, describe(r)
        outs += [r.stdout, r.stderr]
    assert len(sh.messages) == 2
    assert [m.auth_user for m in sh.messages] == ["user", "user"]
    # one AUTH per connection, each with a token fetched for it
    assert [(a.mechanism, a.user, a.token, a.ok) for a in sh.oauth_attempts] \
        == [(mech, "user", prefix + "1", True),
            (mech, "user", prefix + "2", True)]
    assert (tmp_path / "tokcmd.count").read_text().strip() == "2"
    auths = [c.arg.split()[0] for c in sh.commands if c.verb == "AUTH"]
    assert auths == [mech, mech]
    if mech == "XOAUTH2":      # base64("user=U^Aauth=Bearer T^A^A")
        assert sh.oauth_attempts[0].raw == \
            f"user=user\x01auth=Bearer {prefix}1\x01\x01".encode()
    assert_no_secret([prefix + "1", prefix + "2"] + auth_blobs(sh), *outs,
                     paths=[log, tmp_path / "tokcmd.argv",
                            tmp_path / "tokcmd.env"], qdir=qdir)


def test_child_environment_never_holds_an_outbox_secret(outbox, smarthost,
                                                        tmp_path):
    """A password given as OUTBOX_PASSWORD must not leak into the
    environment of a command outbox runs (here: token-command).
    outbox.conf(5): with auth xoauth2 a password is not used (it is not
    an error), so the message goes out with the token, not refused."""
    tok = secret("tok")
    env_pw = secret("envpw")
    sh = oauth_server(smarthost, "XOAUTH2", tok)
    store = write_private(tmp_path / "store", tok + "\n")
    script = recording_script(tmp_path, "tokcmd", store)
    cfg = outbox.write_config(tmp_path, sh, password=None, user="user",
                              auth="xoauth2", token_command=str(script))
    r = outbox.run(["-v", "-f", SENDER, RCPT], message(), config=cfg,
                   env={"OUTBOX_PASSWORD": env_pw})
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert [(m.mail_from, m.rcpt_tos, m.auth_user) for m in sh.messages] \
        == [(SENDER, [RCPT], "user")]
    assert [(a.mechanism, a.token, a.ok) for a in sh.oauth_attempts] == \
        [("XOAUTH2", tok, True)]
    child_env = (tmp_path / "tokcmd.env").read_text()
    child_argv = (tmp_path / "tokcmd.argv").read_text()
    assert env_pw not in child_env and env_pw not in child_argv
    assert tok not in child_env and tok not in child_argv
    assert_no_secret([env_pw, tok] + auth_blobs(sh), r.stderr, r.stdout)


@pytest.mark.parametrize("mech", ["XOAUTH2", "OAUTHBEARER"])
def test_token_command_wrong_token_is_77(outbox, smarthost, tmp_path, mech):
    good, bad = secret("good"), secret("bad")
    sh = oauth_server(smarthost, mech, good)
    store = write_private(tmp_path / "store", bad + "\n")
    script = recording_script(tmp_path, "tokcmd", store)
    cfg = outbox.write_config(tmp_path, sh, password=None, user="user",
                              auth=mech.lower(), token_command=str(script))
    r = outbox.run(["-v", "-f", SENDER, RCPT], message(), config=cfg)
    assert sh.wait_idle()
    assert r.returncode == EX_NOPERM, describe(r)
    assert sh.messages == [] and "MAIL" not in sh.verbs()
    assert sh.oauth_attempts and not any(a.ok for a in sh.oauth_attempts)
    assert all(a.token == bad for a in sh.oauth_attempts)
    assert_no_secret([good, bad] + auth_blobs(sh), r.stderr, r.stdout)


# ---------------------------------------------------------------------------
# 3. OAuth2: the refresh flow
# ---------------------------------------------------------------------------

class Flow:
    """Config and secrets of one refresh-flow setup."""

    def __init__(self, outbox, tmp_path, sh, endpoint_url, ca_file=None,
                 client_secret=True):
        self.refresh = secret("refresh")
        self.client_secret = secret("client") if client_secret else None
        self.qdir = tmp_path / "queue"
        self.log = tmp_path / "outbox.log"
        self.rt_file = write_private(tmp_path / "refresh-token",
                                     self.refresh + "\n")
        over = {}
        if self.client_secret:
            over["oauth_client_secret_file"] = str(write_private(
                tmp_path / "client-secret", self.client_secret + "\n"))
        if ca_file is not None:
            over["ca_file"] = str(ca_file)
        self.cfg = outbox.write_config(
            tmp_path, sh, password=None, user="user", auth="xoauth2",
            oauth_token_url=endpoint_url, oauth_client_id="client-id-1",
            oauth_refresh_token_file=str(self.rt_file), queue=str(self.qdir),
            log=str(self.log), **over)
        self.outputs = []

    @property
    def cache(self) -> Path:
        return self.qdir / "oauth-token"

    def send(self, outbox, sh, marker="", verbose=True, code=EX_OK):
        args = (["-v"] if verbose else []) + ["-f", SENDER, RCPT]
        r = outbox.run(args, message(marker), config=self.cfg)
        assert sh.wait_idle()
        self.outputs += [r.stdout, r.stderr]
        assert r.returncode == code, describe(r)
        return r

    def set_cache_expiry(self, when: int) -> None:
        t = self.cache.read_text()
        new, n = re.subn(r"(?m)^expires \d+", f"expires {when}", t)
        assert n == 1, f"no expiry found in the token cache: {t!r}"
        self.cache.write_text(new)

    def cache_expiry(self) -> int:
        m = re.search(r"(?m)^expires (\d+)", self.cache.read_text())
        assert m, self.cache.read_text()
        return int(m.group(1))

    def assert_no_leak(self, sh, access_tokens, extra=()):
        secrets_ = [self.refresh, self.client_secret, *access_tokens,
                    *extra, *auth_blobs(sh)]
        assert_no_secret(secrets_, *self.outputs, paths=[self.log, self.cfg],
                         qdir=self.qdir, cache_may_hold=access_tokens)


def test_refresh_flow_fetch_cache_reuse_and_expiry(outbox, smarthost,
                                                   token_endpoint, tmp_path):
    at1, at2, at3 = secret("at1"), secret("at2"), secret("at3")
    sh = oauth_server(smarthost, "XOAUTH2", {at1, at2, at3})
    ep = token_endpoint(reply={"access_token": at1, "expires_in": 3600,
                               "token_type": "Bearer"})
    flow = Flow(outbox, tmp_path, sh, ep.url)

    # 1. no cache: one POST to the endpoint, the token used and cached
    t0 = time.time()
    flow.send(outbox, sh, "one")
    assert len(ep.requests) == 1
    req = ep.requests[0]
    assert req.method == "POST" and req.path == "/token"
    assert "x-www-form-urlencoded" in req.headers.get("Content-Type", "")
    assert req.field("grant_type") == "refresh_token"
    assert req.field("refresh_token") == flow.refresh
    assert req.field("client_id") == "client-id-1"
    assert req.field("client_secret") == flow.client_secret
    assert [a.token for a in sh.oauth_attempts] == [at1]
    st = flow.cache.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert at1 in flow.cache.read_text()
    assert t0 + 3600 - 30 <= flow.cache_expiry() <= time.time() + 3600 + 30

    # 2. a valid cache: no request, the same token
    flow.send(outbox, sh, "two")
    assert len(ep.requests) == 1, "a valid cached token must be reused"
    assert [a.token for a in sh.oauth_attempts] == [at1, at1]

    # 3. less than 60 s left: refreshed before use
    ep.reply = {"access_token": at2, "expires_in": 3600}
    flow.set_cache_expiry(int(time.time()) + 30)
    flow.send(outbox, sh, "three")
    assert len(ep.requests) == 2, "a token 30 s from expiry must be refreshed"
    assert [a.token for a in sh.oauth_attempts] == [at1, at1, at2]
    assert at2 in flow.cache.read_text() and at1 not in flow.cache.read_text()

    # 4. expired: refreshed
    ep.reply = {"access_token": at3, "expires_in": 600}
    flow.set_cache_expiry(int(time.time()) - 10)
    flow.send(outbox, sh, "four")
    assert len(ep.requests) == 3
    assert [a.token for a in sh.oauth_attempts] == [at1, at1, at2, at3]
    assert abs(flow.cache_expiry() - (time.time() + 600)) < 30
    assert len(sh.messages) == 4 and all(a.ok for a in sh.oauth_attempts)
    # the refresh token file is unchanged without rotation
    assert flow.rt_file.read_text().splitlines()[0] == flow.refresh
    flow.assert_no_leak(sh, [at1, at2, at3])


def test_refresh_flow_rotated_refresh_token(outbox, smarthost, token_endpoint,
                                            tmp_path):
    at1, at2 = secret("at1"), secret("at2")
    rt2 = secret("rotated")
    sh = oauth_server(smarthost, "XOAUTH2", {at1, at2})
    ep = token_endpoint(reply={"access_token": at1, "expires_in": 3600,
                               "refresh_token": rt2})
    flow = Flow(outbox, tmp_path, sh, ep.url, client_secret=False)
    before = os.stat(flow.rt_file)
    flow.send(outbox, sh, "one")
    assert len(ep.requests) == 1
    assert ep.requests[0].field("client_secret") is None
    assert ep.requests[0].field("refresh_token") == flow.refresh
    # the rotated token replaced the file: new content, 0600, by rename
    assert flow.rt_file.read_text().splitlines()[0] == rt2
    after = os.stat(flow.rt_file)
    assert stat.S_IMODE(after.st_mode) == 0o600, oct(after.st_mode)
    assert after.st_ino != before.st_ino, \
        "the refresh token file must be replaced atomically (rename)"
    leftovers = sorted(p.name for p in tmp_path.iterdir()
                       if p.name.startswith("refresh-token"))
    assert leftovers == ["refresh-token"], leftovers

    # the next refresh presents the rotated token
    ep.reply = {"access_token": at2, "expires_in": 3600}
    flow.set_cache_expiry(int(time.time()) - 1)
    flow.send(outbox, sh, "two")
    assert len(ep.requests) == 2
    assert ep.requests[1].field("refresh_token") == rt2
    assert [a.token for a in sh.oauth_attempts] == [at1, at2]
    flow.assert_no_leak(sh, [at1, at2], extra=[rt2])


def test_refresh_flow_auth_failure_refreshes(outbox, smarthost,
                                             token_endpoint, tmp_path):
    """A cached token the server no longer accepts: one refresh, then the
    message goes out with the new token."""
    at1, at2 = secret("at1"), secret("at2")
    sh = oauth_server(smarthost, "XOAUTH2", at1)
    ep = token_endpoint(reply={"access_token": at1, "expires_in": 3600})
    flow = Flow(outbox, tmp_path, sh, ep.url)
    flow.send(outbox, sh, "one")
    assert len(ep.requests) == 1

    sh.tokens["user"] = at2          # at1 revoked at the server
    ep.reply = {"access_token": at2, "expires_in": 3600}
    flow.send(outbox, sh, "two")
    assert len(ep.requests) == 2, "an AUTH failure must trigger a refresh"
    assert [(a.token, a.ok) for a in sh.oauth_attempts] == \
        [(at1, True), (at1, False), (at2, True)]
    assert len(sh.messages) == 2
    assert at2 in flow.cache.read_text()
    flow.assert_no_leak(sh, [at1, at2])


@pytest.mark.parametrize("failure", ["down", "http-500", "untrusted-cert",
                                     "no-access-token"])
def test_refresh_flow_endpoint_failure_queues(outbox, smarthost,
                                              token_endpoint, tmp_path,
                                              failure):
    """No token (endpoint down, failing, untrusted certificate, bad reply):
    the message is queued, nothing is sent, the error names the endpoint;
    once the endpoint works a queue run delivers it."""
    at = secret("at")
    sh = oauth_server(smarthost, "XOAUTH2", at)
    ep = token_endpoint(untrusted_cert=(failure == "untrusted-cert"),
                        reply={"access_token": at, "expires_in": 3600})
    url = ep.url
    closed = None
    if failure == "down":
        closed = ClosedPort()
        url = f"https://127.0.0.1:{closed.port}/token"
    elif failure == "http-500":
        ep.status = 500
    elif failure == "no-access-token":
        ep.reply = {"token_type": "Bearer", "expires_in": 3600}
    try:
        flow = Flow(outbox, tmp_path, sh, url)
        r = flow.send(outbox, sh, "queued")
    finally:
        if closed is not None:
            closed.close()
    assert sh.messages == [] and "MAIL" not in sh.verbs()
    assert not sh.oauth_attempts
    ids = queued_ids(flow.qdir)
    assert len(ids) == 1, describe(r)
    q = mailq_json(outbox, flow.cfg)
    assert "oauth-token-url" in q[0]["last_error"], q
    if failure == "http-500":
        assert "500" in q[0]["last_error"], q
    if failure == "untrusted-cert":
        assert ep.requests == [], "no request over an untrusted connection"
    assert not flow.cache.exists()
    # logged as deferred (the reason in that line: see
    # test_log_deferred_without_a_connection_gives_the_reason)
    lines = log_lines(flow.log)
    assert any(l.startswith(f"{ids[0]}: to=<{RCPT}>,") and
               "status=deferred" in l for l in lines), lines
    assert any("oauth-token-url" in l for l in lines), lines

    if failure in ("http-500", "no-access-token"):
        # the endpoint is fixed (same URL): a queue run delivers
        ep.status = 200
        ep.reply = {"access_token": at, "expires_in": 3600}
        r = outbox.run(["-qf"], config=flow.cfg)
        assert sh.wait_idle()
        flow.outputs += [r.stdout, r.stderr]
        assert r.returncode == EX_OK, describe(r)
        assert len(sh.messages) == 1 and queued_ids(flow.qdir) == []
    flow.assert_no_leak(sh, [at])


def test_refresh_flow_endpoint_verified_against_ca_file(
        outbox, smarthost, token_endpoint, tls_certs, tmp_path):
    """ca-file is the trust anchor for the token endpoint too: a config
    trusting the endpoint's (otherwise unknown) CA gets a token."""
    at = secret("at")
    sh = oauth_server(smarthost, "XOAUTH2", at)
    ep = token_endpoint(reply={"access_token": at, "expires_in": 3600})
    flow = Flow(outbox, tmp_path, sh, ep.url, ca_file=tls_certs.ca_file)
    flow.send(outbox, sh, "one")
    assert len(ep.requests) == 1 and len(sh.messages) == 1
    flow.assert_no_leak(sh, [at])


# ---------------------------------------------------------------------------
# 4. configuration from the environment
# ---------------------------------------------------------------------------

def require_no_default_config():
    if DEFAULT_CONFIG.exists():
        pytest.skip(f"{DEFAULT_CONFIG} exists on this machine: the "
                    "environment-only mode cannot be tested")


def source_line(key, cfg, line):
    return f"outbox: config: {key} from {cfg} line {line}"


def env_source(key):
    var = "OUTBOX_" + key.upper().replace("-", "_")
    return f"outbox: config: {key} from the environment ({var})"


def line_of(cfg: Path, key: str) -> int:
    for n, line in enumerate(cfg.read_text().splitlines(), 1):
        if line.split(" ", 1)[0] == key:
            return n
    raise AssertionError(f"{key} not in {cfg}")


def test_environment_alone_is_the_config(outbox, smarthost, tmp_path):
    require_no_default_config()
    sh, pw = password_server(smarthost)
    pwfile = write_private(tmp_path / "pw", pw + "\n")
    qdir, log = tmp_path / "queue", tmp_path / "outbox.log"
    env = {
        "OUTBOX_SMARTHOST": sh.hostport,
        "OUTBOX_TLS": "starttls",
        "OUTBOX_CA_FILE": str(sh.ca_file),
        "OUTBOX_USER": "user",
        "OUTBOX_PASSWORD_FILE": str(pwfile),
        "OUTBOX_QUEUE": str(qdir),
        "OUTBOX_LOG": str(log),
        "OUTBOX_FROM": SENDER,
        "OUTBOX_DOMAIN": "example.com",
        "OUTBOX_HELO": "container.example.com",
        "OUTBOX_TIMEOUT": "10s",
    }
    r = outbox.run(["-v", RCPT], message(), env=env)
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert len(sh.messages) == 1
    m = sh.messages[0]
    assert m.auth_user == "user" and m.helo == "container.example.com"
    assert m.rcpt_tos == [RCPT]
    err = text(r.stderr)
    for key in ("smarthost", "tls", "ca-file", "user", "password-file",
                "queue", "log", "from", "domain", "helo", "timeout"):
        assert env_source(key) in err, f"{env_source(key)!r} missing:\n{err}"
    assert " line " not in "".join(
        l for l in err.splitlines() if l.startswith("outbox: config:"))
    assert any(re.match(rf"^{ID}: removed$", l) for l in log_lines(log)), \
        log_lines(log)
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, r.stdout, paths=[log],
                     qdir=qdir)


@pytest.mark.parametrize("sep", [",", " ", ", ", "\t"],
                         ids=["comma", "blank", "comma-blank", "tab"])
def test_env_smarthost_lists_several_hosts(outbox, smarthost, closed_port,
                                           tmp_path, sep):
    """OUTBOX_SMARTHOST 'down,up': the first refuses, the second delivers."""
    sh, pw = password_server(smarthost)
    cfg = pw_config(outbox, tmp_path, sh, pw)
    r = outbox.run(["-v", "-f", SENDER, RCPT], message(), config=cfg,
                   env={"OUTBOX_SMARTHOST":
                        f"{closed_port.hostport}{sep}{sh.hostport}"})
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert len(sh.messages) == 1
    assert env_source("smarthost") in text(r.stderr)
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, r.stdout)


def test_environment_overrides_the_file_key_by_key(outbox, smarthost,
                                                   closed_port, tmp_path):
    """The file names a closed port; OUTBOX_SMARTHOST and OUTBOX_HELO win;
    the rest comes from the file; -v names each source."""
    sh, pw = password_server(smarthost)
    pwfile = write_private(tmp_path / "pw", pw + "\n")
    cfg = outbox.write_config(tmp_path, closed_port, user="user",
                              password_file=str(pwfile),
                              ca_file=str(sh.ca_file),
                              helo="file.example.com")
    r = outbox.run(["-v", "-f", SENDER, RCPT], message(), config=cfg,
                   env={"OUTBOX_SMARTHOST": sh.hostport,
                        "OUTBOX_HELO": "env.example.com"})
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert len(sh.messages) == 1 and sh.messages[0].helo == "env.example.com"
    err = text(r.stderr)
    for key in ("smarthost", "helo"):
        assert env_source(key) in err, err
        assert source_line(key, cfg, line_of(cfg, key)) not in err, err
    for key in ("user", "password-file", "ca-file", "tls", "queue"):
        assert source_line(key, cfg, line_of(cfg, key)) in err, err
        assert env_source(key) not in err, err
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, r.stdout)


def test_environment_bad_value_names_the_variable(outbox, smarthost,
                                                  tmp_path):
    sh, pw = password_server(smarthost)
    cfg = pw_config(outbox, tmp_path, sh, pw)
    r = outbox.run(["-f", SENDER, RCPT], message(), config=cfg,
                   env={"OUTBOX_TLS": "sometimes"})
    assert r.returncode == EX_CONFIG, describe(r)
    assert "OUTBOX_TLS" in text(r.stderr), describe(r)
    assert sh.connections == 0
    assert_no_secret([pw], r.stderr, r.stdout)


def test_environment_password_never_echoed(outbox, smarthost, tmp_path):
    """OUTBOX_PASSWORD works, and -v shows its source, never its value,
    also when another key is bad."""
    sh, pw = password_server(smarthost)
    cfg = outbox.write_config(tmp_path, sh, password=None)
    r = outbox.run(["-v", "-f", SENDER, RCPT], message(), config=cfg,
                   env={"OUTBOX_PASSWORD": pw})
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert env_source("password") in text(r.stderr)
    r2 = outbox.run(["-v", "-f", SENDER, RCPT], message(), config=cfg,
                    env={"OUTBOX_PASSWORD": pw, "OUTBOX_TIMEOUT": "forever"})
    assert r2.returncode == EX_CONFIG, describe(r2)
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, r.stdout, r2.stderr,
                     r2.stdout)


# ---------------------------------------------------------------------------
# 5. EHLO name
# ---------------------------------------------------------------------------

def expected_fqdn(domain: str) -> str:
    """What the spec asks for: the host's FQDN from the resolver, else
    `domain`."""
    host = socket.gethostname()
    if "." in host and not host.lower().startswith("localhost"):
        return host
    try:
        ai = socket.getaddrinfo(host, None, flags=socket.AI_CANONNAME)
        canon = ai[0][3] if ai else ""
    except OSError:
        canon = ""
    if "." in canon and not canon.lower().startswith("localhost"):
        return canon
    return domain


def test_default_helo_is_fqdn_or_domain_never_localhost(outbox, smarthost,
                                                       tmp_path):
    sh, pw = password_server(smarthost)
    cfg = pw_config(outbox, tmp_path, sh, pw, helo=None,
                    domain="mail-domain.example.net")
    r = outbox.run(["-f", SENDER, RCPT], message(), config=cfg)
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    ehlo = [c.arg for c in sh.commands if c.verb in ("EHLO", "HELO")]
    assert ehlo, sh.verbs()
    for name in ehlo:
        assert name.lower() != "localhost" and \
            not name.lower().startswith("localhost."), ehlo
        assert name == expected_fqdn("mail-domain.example.net"), ehlo
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, r.stdout)


# ---------------------------------------------------------------------------
# 6. outbox --check
# ---------------------------------------------------------------------------

def run_check(outbox, cfg, env=None):
    return outbox.run(["--check"], config=cfg, env=env, timeout=60)


def check_lines(r):
    return [l for l in text(r.stderr).splitlines()
            if l.startswith("outbox: check:")]


def assert_sent_nothing(sh):
    assert sh.wait_idle()
    assert sh.messages == [] and sh.rejected == []
    for verb in ("MAIL", "RCPT", "DATA"):
        assert verb not in sh.verbs(), sh.verbs()


def test_check_good_server(outbox, smarthost, tmp_path):
    sh, pw = password_server(smarthost)
    cfg = pw_config(outbox, tmp_path, sh, pw)
    r = run_check(outbox, cfg)
    assert r.returncode == EX_OK, describe(r)
    out = text(r.stdout)
    port = sh.port
    assert f"127.0.0.1 port {port}" in out, out
    assert re.search(rf"(?m)^\s*reached:\s+127\.0\.0\.1 port {port}\s*$",
                     out), out
    assert re.search(r"(?m)^\s*tls:\s+TLS ?1\.[23]\b.*\S", out), out
    assert re.search(r"(?m)^\s*certificate:.*localhost", out), out
    assert re.search(r"(?m)issuer.*outbox test CA", out), out
    assert re.search(r"(?m)valid.*\d{4}", out), out
    assert re.search(r"(?m)verified:\s+yes", out), out
    assert re.search(r"(?m)^\s*capabilities:.*AUTH", out), out
    assert re.search(r"(?m)^\s*auth offered:.*PLAIN", out), out
    assert re.search(r"(?m)^\s*auth:.*accepted", out), out
    assert check_lines(r) == [], describe(r)
    assert "AUTH" in sh.verbs()
    assert_sent_nothing(sh)
    assert_no_secret([pw] + auth_blobs(sh), r.stdout, r.stderr)


def assert_check_failed(r, sh_hostport, step):
    lines = check_lines(r)
    assert len(lines) == 1, describe(r)
    assert re.match(rf"^outbox: check: {re.escape(sh_hostport)}: "
                    rf"{re.escape(step)} failed: \S", lines[0]), lines


def test_check_untrusted_certificate(outbox, smarthost, tls_certs, tmp_path):
    sh, pw = password_server(smarthost, untrusted_cert=True)
    cfg = pw_config(outbox, tmp_path, sh, pw, ca_file=str(tls_certs.ca_file))
    r = run_check(outbox, cfg)
    # outbox(8), EXIT STATUS 75: with --check, a smarthost failed at a
    # step other than AUTH
    assert r.returncode == EX_TEMPFAIL, describe(r)
    assert_check_failed(r, sh.hostport, "certificate")
    out = text(r.stdout)
    assert re.search(r"(?m)verified:\s+NO\b.*\S", out), out
    assert re.search(r"(?m)issuer.*UNTRUSTED", out), out
    assert_sent_nothing(sh)
    assert_no_secret([pw] + auth_blobs(sh), r.stdout, r.stderr)


def test_check_untrusted_certificate_gets_no_credentials(
        outbox, smarthost, tls_certs, tmp_path):
    sh, pw = password_server(smarthost, untrusted_cert=True)
    cfg = pw_config(outbox, tmp_path, sh, pw, ca_file=str(tls_certs.ca_file))
    r = run_check(outbox, cfg)
    assert r.returncode == EX_TEMPFAIL, describe(r)
    assert sh.wait_idle()
    assert "AUTH" not in sh.verbs(), \
        "credentials were sent to a server whose certificate is not trusted"


def test_check_no_starttls(outbox, smarthost, tmp_path):
    sh, pw = password_server(smarthost, offer_starttls=False)
    cfg = pw_config(outbox, tmp_path, sh, pw)
    r = run_check(outbox, cfg)
    assert r.returncode == EX_TEMPFAIL, describe(r)
    assert_check_failed(r, sh.hostport, "STARTTLS")
    assert_sent_nothing(sh)
    assert "AUTH" not in sh.verbs()
    assert_no_secret([pw], r.stdout, r.stderr)


def test_check_wrong_credentials_is_77(outbox, smarthost, tmp_path):
    sh, pw = password_server(smarthost)
    wrong = secret("wrong")
    cfg = pw_config(outbox, tmp_path, sh, wrong)
    r = run_check(outbox, cfg)
    assert r.returncode == EX_NOPERM, describe(r)
    assert_check_failed(r, sh.hostport, "AUTH")
    assert re.search(r"(?m)^\s*auth:.*REFUSED.*535", text(r.stdout)), \
        describe(r)
    assert_sent_nothing(sh)
    assert_no_secret([pw, wrong] + auth_blobs(sh), r.stdout, r.stderr)


def test_check_closed_port(outbox, closed_port, tmp_path):
    cfg = outbox.write_config(tmp_path, closed_port)
    r = run_check(outbox, cfg)
    assert r.returncode == EX_TEMPFAIL, describe(r)
    assert_check_failed(r, closed_port.hostport, "connect")


def test_check_every_smarthost_must_pass(outbox, smarthost, closed_port,
                                         tmp_path):
    sh, pw = password_server(smarthost)
    cfg = pw_config(outbox, tmp_path, sh, pw,
                    extra_lines=[f"smarthost {closed_port.hostport}"])
    r = run_check(outbox, cfg)
    # the first smarthost passes, the second fails at connect: 75
    assert r.returncode == EX_TEMPFAIL, describe(r)
    assert_check_failed(r, closed_port.hostport, "connect")
    out = text(r.stdout)
    assert f"127.0.0.1 port {sh.port}" in out and \
        f"127.0.0.1 port {closed_port.port}" in out, out
    assert_sent_nothing(sh)
    assert_no_secret([pw] + auth_blobs(sh), r.stdout, r.stderr)


@pytest.mark.parametrize("good", [True, False],
                         ids=["good-token", "bad-token"])
def test_check_with_token_command(outbox, smarthost, tmp_path, good):
    tok, other = secret("tok"), secret("other")
    sh = oauth_server(smarthost, "XOAUTH2", tok if good else other)
    store = write_private(tmp_path / "store", tok + "\n")
    script = recording_script(tmp_path, "tokcmd", store)
    cfg = outbox.write_config(tmp_path, sh, password=None, user="user",
                              auth="xoauth2", token_command=str(script))
    r = run_check(outbox, cfg)
    if good:
        assert r.returncode == EX_OK, describe(r)
        assert re.search(r"(?m)^\s*auth offered:.*XOAUTH2", text(r.stdout))
    else:
        assert r.returncode == EX_NOPERM, describe(r)
        assert_check_failed(r, sh.hostport, "AUTH")
    assert_sent_nothing(sh)
    assert_no_secret([tok, other] + auth_blobs(sh), r.stdout, r.stderr)


# ---------------------------------------------------------------------------
# 7. log lines
# ---------------------------------------------------------------------------

FROM_RE = (r"^(?P<id>{id}): from=<(?P<from>[^>]*)>, size=(?P<size>\d+), "
           r"nrcpt=(?P<n>\d+)$")
TO_RE = (r"^(?P<id>{id}): to=<(?P<to>[^>]*)>, relay=(?P<relay>\S+), "
         r"delay=(?P<delay>\d+(\.\d+)?), tries=(?P<tries>\d+), "
         r"status=(?P<status>sent|deferred|bounced) \((?P<why>.+)\)$")


def matching(lines, pattern, qid=ID):
    """Matches of pattern (FROM_RE or TO_RE) for qid.  A line that starts
    like one ("ID: from=" / "ID: to=") must match it entirely."""
    rx = re.compile(pattern.format(id=qid))
    is_to = pattern is TO_RE
    lead = re.compile(rf"^{qid}: " + ("to=" if is_to else "from="))
    form = ("ID: to=<x>, relay=host[addr]:port, delay=S, tries=N, "
            "status=S (reason)" if is_to else
            "ID: from=<a>, size=N, nrcpt=N")
    out = []
    for line in lines:
        if lead.match(line):
            m = rx.match(line)
            assert m, f"log line not of the form {form!r}:\n{line}"
            out.append(m)
    return out


def test_log_sent_direct_delivery(outbox, smarthost, tmp_path):
    sh, pw = password_server(smarthost)
    qdir, log = tmp_path / "queue", tmp_path / "outbox.log"
    cfg = pw_config(outbox, tmp_path, sh, pw, queue=str(qdir), log=str(log))
    marker = secret("BODYTEXT")
    r = outbox.run(["-f", SENDER, RCPT, "second@example.com"],
                   message(marker), config=cfg)
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    lines = log_lines(log)
    froms = matching(lines, FROM_RE)
    assert len(froms) == 1, lines
    qid = froms[0]["id"]
    assert ID_RE.match(qid)
    assert froms[0]["from"] == SENDER and froms[0]["n"] == "2"
    assert int(froms[0]["size"]) == len(sh.messages[0].data), \
        (froms[0]["size"], len(sh.messages[0].data))
    tos = matching(lines, TO_RE, re.escape(qid))
    assert sorted(m["to"] for m in tos) == sorted([RCPT, "second@example.com"])
    for m in tos:
        assert m["relay"] == f"127.0.0.1[127.0.0.1]:{sh.port}", m.group(0)
        assert m["status"] == "sent" and m["tries"] == "1", m.group(0)
        assert m["why"].startswith("250"), m.group(0)
        assert float(m["delay"]) < 30
    assert f"{qid}: removed" in lines, lines
    assert lines.index(froms[0].group(0)) < lines.index(f"{qid}: removed")
    assert all(marker not in l for l in lines), "message body in the log"
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, paths=[log], qdir=qdir)


def test_log_queue_off_uses_noqueue(outbox, smarthost, tmp_path):
    sh, pw = password_server(smarthost)
    log = tmp_path / "outbox.log"
    cfg = pw_config(outbox, tmp_path, sh, pw, queue="off", log=str(log))
    r = outbox.run(["-f", SENDER, RCPT], message(), config=cfg)
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    lines = log_lines(log)
    assert len(matching(lines, FROM_RE, "NOQUEUE")) == 1, lines
    tos = matching(lines, TO_RE, "NOQUEUE")
    assert len(tos) == 1 and tos[0]["status"] == "sent", lines
    assert not matching(lines, FROM_RE), "a queue ID with the queue off"
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, paths=[log])


def test_log_deferred_then_sent_by_queue_run(outbox, smarthost, closed_port,
                                             tmp_path):
    sh_pw = secret("pw")
    qdir, log = tmp_path / "queue", tmp_path / "outbox.log"
    cfg_down = pw_config(outbox, tmp_path, closed_port, sh_pw,
                         name="down.conf", user="user", queue=str(qdir),
                         log=str(log))
    marker = secret("BODYTEXT")
    r = outbox.run(["-f", SENDER, RCPT], message(marker), config=cfg_down)
    assert r.returncode == EX_OK, describe(r)
    q = mailq_json(outbox, cfg_down)
    assert len(q) == 1
    qid = q[0]["id"]
    lines = log_lines(log)
    froms = matching(lines, FROM_RE, re.escape(qid))
    assert len(froms) == 1 and froms[0]["n"] == "1", lines
    assert int(froms[0]["size"]) == q[0]["size"], (lines, q)
    tos = matching(lines, TO_RE, re.escape(qid))
    assert len(tos) == 1, lines
    m = tos[0]
    assert m["to"] == RCPT and m["status"] == "deferred", m.group(0)
    assert m["tries"] == "1", m.group(0)
    assert re.match(rf"^(127\.0\.0\.1\[[^\]]+\]:{closed_port.port}|none)$",
                    m["relay"]), m.group(0)
    assert m["why"].strip(), m.group(0)
    assert f"{qid}: removed" not in lines

    # a second failed attempt from a queue run: tries=2
    r = outbox.run(["-qf"], config=cfg_down)
    assert r.returncode == EX_OK, describe(r)
    tos = matching(log_lines(log), TO_RE, re.escape(qid))
    assert [t["tries"] for t in tos] == ["1", "2"], log_lines(log)
    assert tos[1]["status"] == "deferred"

    # the server comes up: sent on the third try, then removed
    port = closed_port.port
    closed_port.close()
    sh = smarthost(port=port, users={"user": sh_pw})
    cfg_up = pw_config(outbox, tmp_path, sh, sh_pw, name="up.conf",
                       queue=str(qdir), log=str(log))
    r = outbox.run(["-qf"], config=cfg_up)
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    assert len(sh.messages) == 1
    lines = log_lines(log)
    tos = matching(lines, TO_RE, re.escape(qid))
    assert [(t["tries"], t["status"]) for t in tos] == \
        [("1", "deferred"), ("2", "deferred"), ("3", "sent")], lines
    assert tos[2]["relay"] == f"127.0.0.1[127.0.0.1]:{port}", tos[2].group(0)
    assert tos[2]["why"].startswith("250")
    assert lines[-1] == f"{qid}: removed", lines
    assert all(marker not in l for l in lines), "message body in the log"
    assert_no_secret([sh_pw] + auth_blobs(sh), paths=[log])


@pytest.mark.parametrize("cause", ["password-command", "oauth-token-url"])
def test_log_deferred_without_a_connection_gives_the_reason(
        outbox, smarthost, token_endpoint, tmp_path, cause):
    """No credential, so no connection: the per-recipient deferred line
    still says why (`status=deferred (reason)`), like every other one."""
    qdir, log = tmp_path / "queue", tmp_path / "outbox.log"
    if cause == "password-command":
        sh, _ = password_server(smarthost)
        cmd = write_script(tmp_path / "fail.sh", "exit 3\n")
        cfg = outbox.write_config(tmp_path, sh, password=None,
                                  password_command=str(cmd), queue=str(qdir),
                                  log=str(log))
    else:
        sh = oauth_server(smarthost, "XOAUTH2", secret("at"))
        ep = token_endpoint(status=500)
        cfg = Flow(outbox, tmp_path, sh, ep.url).cfg
    r = outbox.run(["-f", SENDER, RCPT], message(), config=cfg)
    assert sh.wait_idle()
    assert r.returncode == EX_OK, describe(r)
    ids = queued_ids(qdir)
    assert len(ids) == 1, describe(r)
    tos = matching(log_lines(log), TO_RE, re.escape(ids[0]))
    assert len(tos) == 1, log_lines(log)
    assert tos[0]["status"] == "deferred" and tos[0]["tries"] == "1"
    assert cause in tos[0]["why"], tos[0].group(0)


def test_log_bounced(outbox, smarthost, tmp_path):
    sh, pw = password_server(smarthost)
    qdir, log = tmp_path / "queue", tmp_path / "outbox.log"
    cfg = pw_config(outbox, tmp_path, sh, pw, queue=str(qdir), log=str(log))
    r = outbox.run(["-f", SENDER, "bad@example.com"], message(), config=cfg)
    assert sh.wait_idle()
    assert r.returncode == EX_NOUSER, describe(r)
    lines = log_lines(log)
    froms = matching(lines, FROM_RE)
    assert len(froms) == 1, lines
    qid = froms[0]["id"]
    tos = matching(lines, TO_RE, re.escape(qid))
    assert len(tos) == 1, lines
    m = tos[0]
    assert m["to"] == "bad@example.com" and m["status"] == "bounced"
    assert m["relay"] == f"127.0.0.1[127.0.0.1]:{sh.port}", m.group(0)
    assert m["tries"] == "1"
    assert "550" in m["why"] and "no such user" in m["why"], m.group(0)
    assert_no_secret([pw] + auth_blobs(sh), r.stderr, paths=[log], qdir=qdir)


# ---------------------------------------------------------------------------
# 8. mailq --json
# ---------------------------------------------------------------------------

JSON_KEYS = {"id", "size", "arrival", "sender", "recipients", "attempts",
             "next_attempt", "last_error", "uid", "account"}


def test_mailq_json_empty(outbox, closed_port, tmp_path):
    cfg = outbox.write_config(tmp_path, closed_port,
                              queue=str(tmp_path / "queue"))
    r = outbox.run(["-bp", "--json"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    assert text(r.stdout).strip() == "[]", describe(r)
    assert mailq_json(outbox, cfg) == []


def test_mailq_json_lists_every_message(outbox, smarthost, closed_port,
                                        tmp_path):
    qdir = tmp_path / "queue"
    cfg = outbox.write_config(tmp_path, closed_port, queue=str(qdir))
    t0 = int(time.time())
    r1 = outbox.run(["-f", SENDER, RCPT, "two@example.com"], message("a"),
                    config=cfg)
    r2 = outbox.run(["-odq", "-f", "other@example.com", RCPT], message("b"),
                    config=cfg)
    assert r1.returncode == EX_OK and r2.returncode == EX_OK, \
        describe(r1) + describe(r2)
    # a server reply with JSON-special characters ends up in last_error
    sh, pw = password_server(smarthost, rcpt_replies={
        "later@example.com": '451 4.3.0 "busy" \\ try later'})
    cfg_sh = pw_config(outbox, tmp_path, sh, pw, name="sh.conf",
                       queue=str(qdir))
    r3 = outbox.run(["-f", SENDER, "later@example.com"], message("c"),
                    config=cfg_sh)
    assert sh.wait_idle()
    assert r3.returncode == EX_OK, describe(r3)
    t1 = int(time.time())

    q = mailq_json(outbox, cfg)
    assert isinstance(q, list) and len(q) == 3, q
    assert sorted(o["id"] for o in q) == queued_ids(qdir)
    plain = text(outbox.run(["-bp"], config=cfg).stdout)
    for o in q:
        assert set(o) == JSON_KEYS, o
        assert ID_RE.match(o["id"]) and o["id"] in plain
        assert o["size"] == (qdir / "msg" / f"{o['id']}.data").stat().st_size
        assert isinstance(o["arrival"], int)
        assert t0 - 2 <= o["arrival"] <= t1 + 2, (o, t0, t1)
        assert isinstance(o["attempts"], int)
        assert isinstance(o["next_attempt"], int)
        assert o["uid"] == os.getuid()   # who submitted it
        assert o["account"] == "default"   # no account sections
        assert isinstance(o["last_error"], str)
        for rc in o["recipients"]:
            assert set(rc) == {"address", "state"}, rc
            assert isinstance(rc["state"], str) and rc["state"]
    by_sender_rcpts = {
        (o["sender"], tuple(sorted(x["address"] for x in o["recipients"]))): o
        for o in q}
    deferred = by_sender_rcpts[(SENDER, tuple(sorted([RCPT,
                                                      "two@example.com"])))]
    assert deferred["attempts"] == 1 and deferred["last_error"]
    assert closed_port.hostport in deferred["last_error"]
    assert deferred["next_attempt"] >= deferred["arrival"] + 60
    queued = by_sender_rcpts[("other@example.com", (RCPT,))]
    assert queued["attempts"] == 0
    assert queued["next_attempt"] <= t1 + 1
    busy = by_sender_rcpts[(SENDER, ("later@example.com",))]
    assert '"busy" \\ try later' in busy["last_error"], busy
    assert_no_secret([pw] + auth_blobs(sh), r3.stdout, r3.stderr,
                     json.dumps(q), qdir=qdir)


# ---------------------------------------------------------------------------
# 9. outbox --init
# ---------------------------------------------------------------------------

def init(outbox, cfg, hostport, user, password_input, env=None, extra=(),
         cwd=None):
    args = ["--init", hostport, "--user", user, *extra]
    if cwd is None:
        return outbox.run(args, password_input, config=cfg, env=env)
    return subprocess.run([str(outbox.bin), "-C", str(cfg), *args],
                          input=password_input, capture_output=True,
                          timeout=60, cwd=cwd, env=outbox.environment(env))


def secret_path(cfg: Path) -> Path:
    return cfg.with_name(cfg.name[:-len(".conf")] + ".secret")


@pytest.mark.parametrize("case", ["good", "wrong-password", "untrusted"])
def test_init_writes_config_and_secret_then_checks(outbox, smarthost,
                                                   tmp_path, case):
    sh, pw = password_server(smarthost)
    cfg = tmp_path / "outbox.conf"
    typed = pw if case != "wrong-password" else secret("typo")
    env = {} if case == "untrusted" else {"OUTBOX_CA_FILE": str(sh.ca_file)}
    r = init(outbox, cfg, sh.hostport, "user", (typed + "\n").encode(), env)
    expected = {"good": EX_OK, "wrong-password": EX_NOPERM,
                "untrusted": EX_TEMPFAIL}[case]
    assert r.returncode == expected, describe(r)
    step = {"good": None, "wrong-password": "AUTH",
            "untrusted": "certificate"}[case]
    if step:
        assert_check_failed(r, sh.hostport, step)
    else:
        assert check_lines(r) == [] and "AUTH" in sh.verbs()

    sec = secret_path(cfg)
    for p in (cfg, sec):
        assert p.is_file(), p
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == 0o600, (p, oct(mode))
    assert sec.read_text().splitlines()[0] == typed
    conf = cfg.read_text()
    assert typed not in conf
    assert re.search(rf"(?m)^smarthost {re.escape(sh.hostport)}$", conf), conf
    assert re.search(rf"(?m)^password-file {re.escape(str(sec))}$", conf), conf
    assert re.search(r"(?m)^user \"?user\"?$", conf), conf
    assert_sent_nothing(sh)
    assert_no_secret([pw, typed] + auth_blobs(sh), r.stdout, r.stderr,
                     paths=[cfg])


def test_init_relative_config_path_gets_absolute_password_file(
        outbox, smarthost, tmp_path):
    sh, pw = password_server(smarthost)
    r = init(outbox, "rel.conf", sh.hostport, "user", (pw + "\n").encode(),
             {"OUTBOX_CA_FILE": str(sh.ca_file)}, cwd=tmp_path)
    assert r.returncode == EX_OK, describe(r)
    conf = (tmp_path / "rel.conf").read_text()
    assert f"password-file {tmp_path / 'rel.secret'}" in conf, conf
    assert (tmp_path / "rel.secret").read_text().splitlines()[0] == pw


def test_init_refuses_to_overwrite_without_force(outbox, smarthost, tmp_path):
    sh, pw = password_server(smarthost)
    cfg = tmp_path / "outbox.conf"
    cfg.write_text("# precious\n")
    os.chmod(cfg, 0o600)
    r = init(outbox, cfg, sh.hostport, "user", (pw + "\n").encode(),
             {"OUTBOX_CA_FILE": str(sh.ca_file)})
    # outbox(8), EXIT STATUS 73: --init would overwrite a file
    assert r.returncode == EX_CANTCREAT, describe(r)
    assert "--force" in text(r.stderr), describe(r)
    assert cfg.read_text() == "# precious\n"
    assert not secret_path(cfg).exists()
    assert sh.connections == 0
    r = init(outbox, cfg, sh.hostport, "user", (pw + "\n").encode(),
             {"OUTBOX_CA_FILE": str(sh.ca_file)}, extra=["--force"])
    assert r.returncode == EX_OK, describe(r)
    assert "# precious" not in cfg.read_text()
    assert secret_path(cfg).read_text().splitlines()[0] == pw
    assert_no_secret([pw] + auth_blobs(sh), r.stdout, r.stderr, paths=[cfg])


@pytest.mark.parametrize("how", ["option", "argument"])
def test_init_never_takes_the_password_from_argv(outbox, smarthost, tmp_path,
                                                 how):
    sh, pw = password_server(smarthost)
    cfg = tmp_path / "outbox.conf"
    extra = ["--password", pw] if how == "option" else [pw]
    r = init(outbox, cfg, sh.hostport, "user", b"", extra=extra)
    # an unknown long option, or an operand --init does not take: usage
    assert r.returncode == EX_USAGE, describe(r)
    for p in tmp_path.iterdir():
        if p.is_file():
            assert pw not in p.read_text(errors="replace"), p
    assert sh.connections == 0 and "AUTH" not in sh.verbs()


def test_init_empty_stdin_is_usage_error(outbox, smarthost, tmp_path):
    sh, _ = password_server(smarthost)
    cfg = tmp_path / "outbox.conf"
    r = init(outbox, cfg, sh.hostport, "user", b"")
    assert r.returncode == EX_USAGE, describe(r)
    assert not cfg.exists() and not secret_path(cfg).exists()


# ---------------------------------------------------------------------------
# 10. no core dumps, no same-user ptrace (PR_SET_DUMPABLE 0)
# ---------------------------------------------------------------------------

def _as_user(uid, gid):
    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return drop


def _can_read_as(uid, gid, path) -> bool:
    """Can that user open path?  (For /proc/PID/environ and mem the
    permission check is made at open.)"""
    r = subprocess.run([PYTHON, "-c", f"open({str(path)!r}, 'rb').close()"],
                       preexec_fn=_as_user(uid, gid), capture_output=True,
                       timeout=30)
    return r.returncode == 0


def test_process_is_not_dumpable(outbox, tmp_path):
    """Another process of the same (non-root) user cannot read a running
    outbox's /proc/PID/environ or /proc/PID/mem."""
    if b"__asan_init" in outbox.bin.read_bytes():
        pytest.skip("sanitizer build (OUTBOX_SANITIZE keeps it dumpable)")
    if os.geteuid() == 0:
        uid = gid = 65534                      # nobody
    else:
        uid, gid = os.getuid(), os.getgid()
    d = Path(f"/tmp/outbox-dumpable-{os.getpid()}-{pysecrets.token_hex(4)}")
    d.mkdir(mode=0o755)
    try:
        cfg = d / "outbox.conf"
        cfg.write_text("smarthost 127.0.0.1:1\ntls off\nqueue off\n"
                       "log stderr\ndomain example.com\n")
        os.chmod(cfg, 0o644)
        # a copy the other user can run: the checkout may be in a
        # directory only root can enter (root's home, mode 0700)
        binary = d / "outbox"
        shutil.copy2(outbox.bin, binary)
        os.chmod(binary, 0o755)
        kw = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.DEVNULL)
        if os.geteuid() == 0:
            kw["preexec_fn"] = _as_user(uid, gid)
        control = subprocess.Popen(["/bin/cat"], **kw)
        errlog = d / "stderr"
        with open(errlog, "wb") as err:
            proc = subprocess.Popen([str(binary), "-C", str(cfg), "-bs"],
                                    **dict(kw, stderr=err))
        try:
            # outbox(8), SMTP ON STANDARD INPUT: the session opens with
            # "220 NAME ESMTP outbox" (NAME: helo, else domain)
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            greeting = os.read(proc.stdout.fileno(), 4096) if ready else b""
            assert greeting.startswith(b"220 example.com ESMTP outbox"), (
                f"outbox -bs as uid {uid} did not greet: {greeting!r}; "
                f"exit {proc.poll()}; stderr: "
                f"{errlog.read_bytes().decode('utf-8', 'replace')}")
            if not _can_read_as(uid, gid, f"/proc/{control.pid}/environ"):
                pytest.skip("/proc of a same-user process is not readable "
                            "here at all (hidepid or similar)")
            assert not _can_read_as(uid, gid, f"/proc/{proc.pid}/environ"), \
                "outbox is dumpable: its environment is readable"
            assert not _can_read_as(uid, gid, f"/proc/{proc.pid}/mem"), \
                "outbox is dumpable: its memory is readable"
        finally:
            for p in (proc, control):
                try:
                    p.stdin.close()
                except OSError:
                    pass
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
                p.stdout.close()
    finally:
        for p in d.iterdir():
            p.unlink()
        d.rmdir()
