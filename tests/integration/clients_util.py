"""Helpers for the client-compatibility tests (test_clients.py,
test_postfix.py): wrapper scripts that give a client "sendmail", checks on
what a client printed, bounded waits, and a driver for `outbox -bs`.
"""

import array
import email
import email.policy
import fcntl
import os
import re
import select
import shutil
import subprocess
import tempfile
import termios
import time
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

# A client printing any of these has seen something go wrong.
ERROR_WORDS = re.compile(r"error|fail|fatal|warn|denied|refused|outbox:",
                         re.IGNORECASE)


def make_wrapper(directory: Path, outbox_bin: Path, config: Path,
                 name: str = "sendmail",
                 argv_log: Optional[Path] = None) -> Path:
    """A script `directory/name` that execs outbox -C config "$@".

    The real binary is exec'd by its own path, so argv[0] dispatch (mailq,
    newaliases) never applies to the wrapper.  With argv_log, each call
    appends one line with its arguments separated by \\x1f, so a test can
    see how the client invoked sendmail.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    lines = ["#!/bin/sh"]
    if argv_log is not None:
        lines.append(f"{{ printf '%s\\037' \"$@\"; printf '\\n'; }} >> "
                     f"'{argv_log}'")
    lines.append(f"exec '{outbox_bin}' -C '{config}' \"$@\"")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    return path


def read_argv_log(path: Path) -> List[List[str]]:
    """The calls recorded by a wrapper with argv_log, oldest first."""
    if not path.exists():
        return []
    calls = []
    for line in path.read_text().splitlines():
        calls.append(line.split("\x1f")[:-1])
    return calls


def client_env(home: Path, **extra) -> dict:
    """A clean environment for a client: its own HOME, C locale, UTC."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(home),
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "USER": "root",
        "LOGNAME": "root",
    }
    env.update({k: str(v) for k, v in extra.items()})
    # a sanitizer build's reports go to the run's report files, not to
    # a client's stderr where they could be lost
    from conftest import sanitizer_env
    return sanitizer_env(env)


def run_client(cmd, input_bytes=b"", env=None, cwd=None,
               timeout=30) -> subprocess.CompletedProcess:
    """Run a client with bounded time; capture bytes stdout/stderr."""
    try:
        return subprocess.run([str(c) for c in cmd], input=input_bytes,
                              capture_output=True, env=env, cwd=cwd,
                              timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"client did not exit within {timeout}s: {cmd}\n"
                    f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}")


def describe(r, argv_log: Optional[Path] = None,
             log: Optional[Path] = None) -> str:
    text = (f"exit {r.returncode}\n--- stderr ---\n"
            f"{r.stderr.decode('utf-8', 'replace')}\n--- stdout ---\n"
            f"{r.stdout.decode('utf-8', 'replace')}")
    if argv_log is not None:
        text += f"\n--- sendmail calls ---\n{read_argv_log(argv_log)}"
    if log is not None and Path(log).exists():
        text += f"\n--- outbox log ---\n{Path(log).read_text()}"
    return text


def assert_clean(r, argv_log=None, log=None, allow_stdout=False):
    """The client exited 0 and printed nothing that looks like an error."""
    info = describe(r, argv_log, log)
    assert r.returncode == 0, info
    err = r.stderr.decode("utf-8", "replace")
    assert not ERROR_WORDS.search(err), info
    out = r.stdout.decode("utf-8", "replace")
    assert not ERROR_WORDS.search(out), info
    if not allow_stdout:
        assert out.strip() == "", info


def wait_messages(sh, count: int, timeout: float = 30.0):
    """Wait (bounded) until the smarthost has accepted `count` messages.

    Some clients (bsd-mailx) do not wait for sendmail to finish."""
    deadline = time.monotonic() + timeout
    while len(sh.messages) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    if hasattr(sh, "wait_idle"):
        assert sh.wait_idle()
    return sh.messages


def wait_until(pred, timeout: float, step: float = 0.02):
    """Poll pred() until it is true or timeout seconds pass; its last
    value.  A bound on waiting for something that must happen, never a
    way to let something that must not happen have its chance."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.compat32)


def body_text(data: bytes) -> str:
    """The body of a raw message (CRLF as sent), as text with LF ends."""
    head, sep, body = data.partition(b"\r\n\r\n")
    return body.replace(b"\r\n", b"\n").decode("utf-8", "replace")


def addr_only(value: str) -> str:
    """'Name <a@b>' -> 'a@b' (a header value's single address)."""
    m = re.search(r"<([^>]*)>", value)
    return (m.group(1) if m else value).strip()


def public_tmpdir(prefix: str) -> Path:
    """A fresh 0755 directory under /tmp that other users can enter.

    pytest's tmp_path for root lies under a 0700 directory, which an
    unprivileged process (nobody, the postfix user) cannot traverse.
    The caller removes it with remove_tree()."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


def remove_tree(path: Path):
    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------
# outbox -bs, driven over pipes
# ---------------------------------------------------------------------------

class BsSession:
    """outbox -bs with stdin/stdout as pipes; every read is bounded."""

    def __init__(self, cmd, stderr_path: Path, env=None, timeout=30.0):
        self.timeout = timeout
        self._err = open(stderr_path, "wb")
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen([str(c) for c in cmd],
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=self._err, env=env)
        self._buf = b""
        self.transcript: List[str] = []

    # -- low level ------------------------------------------------------
    def write(self, data: bytes):
        self.transcript.append("C: " + data.decode("utf-8", "replace"))
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def unread(self) -> int:
        """Bytes written to outbox's standard input that it has not read
        yet (FIONREAD on the pipe)."""
        n = array.array("i", [0])
        fcntl.ioctl(self.proc.stdin.fileno(), termios.FIONREAD, n)
        return n[0]

    def write_alone(self, data: bytes, timeout: Optional[float] = None):
        """Write data and wait until outbox has read all of it, so that its
        read returns these bytes without the next ones: a split of the
        input that does not depend on timing.  (The pipe says when the
        bytes are gone; there is no reply to wait for inside DATA.)"""
        limit = timeout or self.timeout
        self.write(data)
        if not wait_until(lambda: self.unread() == 0 or
                          self.proc.poll() is not None, limit, 0.001):
            raise TimeoutError(f"outbox -bs did not read {data!r} within "
                               f"{limit}s")
        assert self.proc.poll() is None, (
            "outbox -bs exited while reading DATA; transcript:\n"
            + "".join(self.transcript))

    def _readline(self, deadline, limit) -> bytes:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply from outbox -bs within "
                                   f"{limit}s; transcript:\n"
                                   + "".join(self.transcript))
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("outbox -bs closed its output; transcript:\n"
                               + "".join(self.transcript)
                               + f"\nleft over: {self._buf!r}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line + b"\n"

    def reply(self, timeout: Optional[float] = None) -> Tuple[int, List[str]]:
        """One (possibly multi-line) reply: (code, [text of each line])."""
        limit = timeout or self.timeout
        deadline = time.monotonic() + limit
        lines = []
        while True:
            raw = self._readline(deadline, limit)
            self.transcript.append("S: " + raw.decode("utf-8", "replace"))
            assert raw.endswith(b"\r\n"), f"reply line not CRLF: {raw!r}"
            line = raw[:-2].decode("utf-8", "replace")
            assert re.match(r"^[2-5]\d\d[ -]", line) or re.match(
                r"^[2-5]\d\d$", line), f"malformed reply line {line!r}"
            lines.append(line[4:])
            code = int(line[:3])
            if len(line) == 3 or line[3] == " ":
                return code, lines

    def cmd(self, line: str) -> Tuple[int, List[str]]:
        self.write(line.encode() + b"\r\n")
        return self.reply()

    def expect(self, line: str, code: int) -> List[str]:
        got, text = self.cmd(line)
        assert got == code, (f"{line!r}: expected {code}, got {got} {text}"
                             f"\ntranscript:\n" + "".join(self.transcript))
        return text

    def close(self, timeout=30.0) -> int:
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail("outbox -bs did not exit after its input closed")
        finally:
            self._err.close()
        return rc

    def stderr(self) -> str:
        self._err.flush()
        return Path(self.stderr_path).read_text(errors="replace")

    def rest_of_output(self, timeout=30.0) -> bytes:
        """Everything outbox still writes until it closes stdout."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        out = self._buf
        self._buf = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [],
                                        max(0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                return out
            out += chunk
        raise TimeoutError(f"outbox -bs kept its output open: {out!r}")


def dot_stuff(text: bytes) -> bytes:
    """SMTP DATA transparency: CRLF line ends, a dot doubled at line start,
    and the terminating lone dot."""
    lines = text.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = [(b"." + ln if ln.startswith(b".") else ln) for ln in lines]
    return b"\r\n".join(out) + b"\r\n.\r\n"
