"""Guards that `make mutate` (tests/mutate/) found unwatched: each test
here fails when the guard it names is removed or weakened (see the mutant
ids in tests/mutate/mutants.txt).

- tls: a config without a `tls` line requires STARTTLS (the default is
  not "off", nor "try");
- a config holding a password is refused when anyone but its owner may
  read or write it: others-only (0604, 0602) and group (0640, 0620)
  modes too, not just 0644;
- DEL (0x7f) in a server's reply is escaped like the other control
  characters;
- a queue run that defers a message replaces its envelope durably:
  fsync the new tmp/ID.env, rename it into msg/, fsync msg/;
- on the set-group-ID install, a password-command runs with a fixed
  environment (PATH, HOME/LOGNAME/USER from the passwd entry, the
  locale and TZ), nothing else of the caller's.

Real servers only (the aiosmtpd smarthost of conftest.py); strace only
watches the real syscalls.
"""

import os
import pwd
import shutil
import subprocess

import pytest

from test_guards import _events, _no_leak_check
from test_hardening import SMALL, setgid_install, setgid_root
from test_queue import message, qconfig, queued_ids, read_env

# test_hardening's set-group-ID fixtures, used here (a module of its own:
# its own install, built once for this module)
FIXTURES = (setgid_install, setgid_root)

EX_OK, EX_NOUSER, EX_TEMPFAIL, EX_CONFIG = 0, 67, 75, 78
SENDER = "cron@example.com"
RCPT = "admin@example.com"


# ---------------------------------------------------------------------------
# tls: the default
# ---------------------------------------------------------------------------

def test_tls_default_is_starttls_required(outbox, smarthost, tmp_path):
    clear = smarthost(offer_starttls=False, auth=False)
    cfg = outbox.write_config(tmp_path, clear, tls=None, name="clear.conf")
    lines = cfg.read_text().splitlines()
    assert not any(l.startswith("tls") for l in lines), lines
    assert not any(l.startswith("user") for l in lines), lines
    r = outbox.run(["-f", SENDER, RCPT], message("default tls"), config=cfg)
    assert r.returncode == EX_TEMPFAIL, r.stderr
    assert b"STARTTLS" in r.stderr, r.stderr
    assert clear.wait_idle()
    assert "MAIL" not in clear.verbs() and clear.messages == []

    sh = smarthost(auth=False)
    cfg = outbox.write_config(tmp_path, sh, tls=None, name="tls.conf")
    r = outbox.run(["-f", SENDER, RCPT], message("default tls"), config=cfg)
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(sh.messages) == 1 and sh.messages[0].tls
    assert "STARTTLS" in sh.verbs()
    assert all(c.tls for c in sh.commands if c.verb == "MAIL")


# ---------------------------------------------------------------------------
# a config holding a password: owner-only
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [0o604, 0o602, 0o640, 0o620],
                         ids=lambda m: f"{m:04o}")
def test_config_with_password_open_to_others_or_group_is_refused(
        outbox, smarthost, tmp_path, mode):
    sh = smarthost()
    path = outbox.write_config(tmp_path, sh, mode=mode)
    assert "password" in path.read_text()
    r = outbox.run(["-f", SENDER, RCPT], message("mode"), config=path)
    assert r.returncode == EX_CONFIG, (oct(mode), r.stderr)
    assert str(path).encode() in r.stderr
    assert b"holds a password" in r.stderr, r.stderr
    assert sh.connections == 0 and sh.messages == []


def test_config_with_password_owner_only_is_used(outbox, smarthost,
                                                 tmp_path):
    """The other side of the test above: 0600 and 0400 are fine."""
    sh = smarthost()
    for mode in (0o600, 0o400):
        path = outbox.write_config(tmp_path, sh, mode=mode,
                                   name=f"c{mode:o}.conf")
        r = outbox.run(["-f", SENDER, RCPT], message("ok"), config=path)
        assert r.returncode == EX_OK, (oct(mode), r.stderr)
    assert sh.wait_idle()
    assert len(sh.messages) == 2


# ---------------------------------------------------------------------------
# reply text: DEL is a control character
# ---------------------------------------------------------------------------

def test_reply_with_del_is_escaped(outbox, smarthost, tmp_path):
    bad = "bad@example.com"
    sh = smarthost(rcpt_replies={bad: "550 5.1.1 del\x7fhere"})
    log = tmp_path / "outbox.log"
    cfg = outbox.write_config(tmp_path, sh, log=str(log))
    r = outbox.run(["-v", "-f", SENDER, bad], message("del"), config=cfg)
    assert r.returncode == EX_NOUSER, r.stderr
    assert b"\x7f" not in r.stderr, r.stderr
    assert b"del\\x7fhere" in r.stderr, r.stderr
    assert b"<- 550 5.1.1 del\\x7fhere" in r.stderr, r.stderr
    text = log.read_bytes()
    assert b"\x7f" not in text and b"del\\x7fhere" in text, text


# ---------------------------------------------------------------------------
# a queue run replaces a deferred message's envelope durably
# ---------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_queue_run_replaces_the_envelope_durably(outbox, closed_port,
                                                 tmp_path):
    cfg, qdir = qconfig(outbox, tmp_path, closed_port)
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("deferred"),
                   config=cfg)
    assert r.returncode == EX_OK, r.stderr
    (i,) = queued_ids(qdir)
    trace = tmp_path / "trace"
    cmd = ["strace", "-f", "-y", "-o", str(trace), "-e",
           "trace=fsync,fdatasync,rename,renameat,renameat2",
           *outbox.command(["-q"], cfg)]
    env = outbox.environment({"ASAN_OPTIONS": _no_leak_check()})
    p = subprocess.run(cmd, capture_output=True, timeout=60, env=env)
    assert p.returncode == EX_OK, p.stderr
    assert queued_ids(qdir) == [i]
    assert read_env(qdir / "msg" / f"{i}.env")["attempts"] == "1"
    events = [e for e in _events(trace.read_text(), str(qdir.resolve()))
              if i in e[1] or e == ("fsync", "msg")]
    assert events == [
        ("fsync", f"tmp/{i}.env"),
        ("rename", f"{i}.env -> msg"),
        ("fsync", "msg"),
    ], "\n".join(map(str, events))


# ---------------------------------------------------------------------------
# set-group-ID: the password-command's environment
# ---------------------------------------------------------------------------

ALLOWED_ENV = {"PATH", "HOME", "LOGNAME", "USER", "LANG", "LC_ALL", "TZ",
               "PWD"}     # PWD: the shell running `env` sets it


def test_setgid_password_command_gets_a_fixed_environment(setgid_root):
    sr = setgid_root
    dump = sr.dir / "envdump"
    dump.mkdir(exist_ok=True)
    os.chmod(dump, 0o1777)
    (dump / "env").unlink(missing_ok=True)
    user, password = next(iter(sr.smarthost.users.items()))
    script = sr.etc / "pwcmd"
    script.write_text(f"#!/bin/sh\nenv > {dump}/env\necho {password}\n")
    os.chmod(script, 0o755)
    conf = sr.etc / "outbox.conf"
    old = f"password-file {sr.etc / 'outbox.secret'}"
    text = conf.read_text()
    assert old in text, text
    with open(conf, "w") as f:          # keeps its owner, group and mode
        f.write(text.replace(old, f"password-command {script}"))
    r = sr.run([sr.bin, "you@example.com"], SMALL,
               env={"PROBE_LEAK": "yes", "LOGNAME": "ceo", "USER": "ceo",
                    "HOME": "/", "PATH": f"{dump}:/usr/bin:/bin",
                    "LD_LIBRARY_PATH": "/nonexistent", "LANG": "C"})
    assert r.returncode == EX_OK, r.stderr
    sr.smarthost.wait_idle()
    assert len(sr.smarthost.messages) == 1
    assert sr.smarthost.messages[0].auth_user == user
    env = dict(line.split("=", 1) for line in
               (dump / "env").read_text().splitlines() if "=" in line)
    assert env.get("PATH") == "/usr/local/bin:/usr/bin:/bin", env
    assert env.get("LOGNAME") == sr.user and env.get("USER") == sr.user, env
    assert env.get("HOME") == pwd.getpwnam(sr.user).pw_dir, env
    assert env.get("LC_ALL") == "C" and env.get("TZ") == "UTC", env
    assert env.get("LANG") == "C", env
    assert set(env) <= ALLOWED_ENV, sorted(set(env) - ALLOWED_ENV)
