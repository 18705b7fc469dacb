"""Integration tests of outbox's local queue against a real smarthost.

Contract under test (DESIGN.md section 6, outbox(8) QUEUE, src/queue.c):
  config: `queue DIR` (DIR, DIR/tmp, DIR/msg, DIR/failed created 0700, files
  0600; `queue off` disables), `queue-lifetime` (5d), `retry-min` (1m),
  `retry-max` (1h).
  A temporary failure with the queue on commits DIR/msg/ID.data (the exact
  bytes to send, CRLF, not dot-stuffed) + DIR/msg/ID.env and exits 0; with
  `queue off` it exits 75.  `-q` runs due messages, `-qf` / `-q --force` all
  of them, `-qI ID` one, `-qINTERVAL` repeatedly until SIGTERM; `-bp` lists;
  `--remove ID` deletes; `-odq` queues only; `-odb` queues and delivers from
  a detached process; a successful direct delivery starts a detached flush
  of due messages.  A queue run uses one connection per smarthost and locks
  each message (flock on msg/ID.data).  Past queue-lifetime (or on a 5xx in
  a queue run) the sender gets an RFC 3464 DSN with the null sender and the
  message moves to failed/; no DSN for a null-sender message.

Every wait and loop here is bounded; background outbox processes are waited
for (or killed by pid) before a test ends.
"""

import asyncio
import concurrent.futures
import email
import email.policy
import fcntl
import os
import random
import re
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import header_values, split_message

EX_OK = 0
EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75

SENDER = "sender@example.com"
RCPT = "rcpt@example.com"
ID_RE = re.compile(r"^[0-9A-F]{16}$")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def describe(r) -> str:
    return (f"exit {r.returncode}\n--- stderr ---\n"
            f"{r.stderr.decode('utf-8', 'replace')}\n--- stdout ---\n"
            f"{r.stdout.decode('utf-8', 'replace')}")


def qconfig(outbox, tmp_path, server, qdir=None, name="outbox.conf", **over):
    """(config path, queue dir): a config for server with the queue on."""
    qdir = Path(qdir) if qdir is not None else Path(tmp_path) / "queue"
    cfg = outbox.write_config(tmp_path, server, name=name, queue=str(qdir),
                              **over)
    return cfg, qdir


def message(subject: str, body: bytes = b"body\n", extra: bytes = b"") -> bytes:
    return b"Subject: " + subject.encode() + b"\n" + extra + b"\n" + body


def queued_ids(qdir) -> list:
    """IDs with an envelope in msg/ (what the queue considers queued)."""
    d = Path(qdir) / "msg"
    if not d.is_dir():
        return []
    return sorted(p.name[:-4] for p in d.iterdir() if p.name.endswith(".env"))


def files(d) -> list:
    d = Path(d)
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def read_env(path) -> dict:
    env = {"rcpt": []}
    for line in Path(path).read_text().splitlines():
        key, _, val = line.partition(" ")
        if key == "rcpt":
            env["rcpt"].append(val)
        else:
            env[key] = val
    return env


def listing(outbox, config) -> str:
    r = outbox.run(["-bp"], config=config, timeout=30)
    assert r.returncode == EX_OK, describe(r)
    return r.stdout.decode("utf-8", "replace")


def listing_blocks(text: str) -> dict:
    """{ID: block text} from -bp output."""
    blocks = {}
    for block in text.strip().split("\n\n"):
        first = block.splitlines()[0] if block.strip() else ""
        word = first.split(" ", 1)[0]
        if ID_RE.match(word):
            blocks[word] = block
    return blocks


def subject_of(m) -> str:
    vals = header_values(m.data, "Subject")
    return vals[0].decode("utf-8", "replace") if vals else ""


def subjects(sh) -> Counter:
    return Counter(subject_of(m) for m in list(sh.messages))


def wait_until(pred, timeout: float, step: float = 0.05):
    """Poll pred() until it is true or timeout seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def enqueue_many(outbox, config, n, subject_fmt, rcpts=(RCPT,), workers=4,
                 extra_args=()):
    """Queue n messages with -odq (several processes at a time: each run is
    a full process start + 3 fsyncs, ~5-10 ms).  Returns the elapsed time."""
    def one(i):
        return outbox.run(["-odq", *extra_args, "-f", SENDER, *rcpts],
                          message(subject_fmt.format(i)), config=config,
                          timeout=30)

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(one, range(n)))
    bad = [describe(r) for r in results if r.returncode != EX_OK]
    assert not bad, f"{len(bad)} -odq runs failed; first: {bad[0]}"
    return time.monotonic() - t0


def bring_up_on(smarthost, cp, **kwargs):
    """Start a smarthost on the port closed_port refused connections on."""
    port = cp.port
    cp.close()
    return smarthost(port=port, **kwargs)


# ---------------------------------------------------------------------------
# 1. down, queued, listed; up, flushed byte-identical
# ---------------------------------------------------------------------------

def test_down_then_up_delivers_queued_bytes(outbox, smarthost, closed_port,
                                            tmp_path):
    cfg_down, qdir = qconfig(outbox, tmp_path, closed_port, name="down.conf")
    data = (b"Subject: queued while down\nX-Test: 1\n\nline one\n"
            b".a line starting with a dot\n..two dots\nlast line\n")
    r = outbox.run(["-f", SENDER, RCPT], data, config=cfg_down)
    assert r.returncode == EX_OK, describe(r)

    ids = queued_ids(qdir)
    assert len(ids) == 1, files(qdir / "msg")
    qid = ids[0]
    assert ID_RE.match(qid)
    queued = (qdir / "msg" / f"{qid}.data").read_bytes()
    assert queued.endswith(b"last line\r\n")
    assert b"\n" not in queued.replace(b"\r\n", b""), "ID.data must be CRLF"
    assert b"\r\n.a line starting" in queued, "ID.data is not dot-stuffed"

    env = read_env(qdir / "msg" / f"{qid}.env")
    assert env["sender"] == f"<{SENDER}>"
    assert env["rcpt"] == [f"<{RCPT}>"]
    assert env["attempts"] == "1"
    assert env["last-error"].strip(), env
    # next attempt after retry-min (default 1m)
    assert int(env["next"]) - int(env["created"]) >= 60, env

    text = listing(outbox, cfg_down)
    blocks = listing_blocks(text)
    assert list(blocks) == [qid], text
    block = blocks[qid]
    assert f"{len(queued)} bytes" in block, block
    assert f"<{SENDER}>" in block and f"<{RCPT}>" in block, block
    assert "attempts 1" in block, block
    assert "last error:" in block and closed_port.hostport in block, block

    sh = bring_up_on(smarthost, closed_port)
    cfg_up, _ = qconfig(outbox, tmp_path, sh, qdir, name="up.conf")

    # Not due yet (next attempt in ~1 minute): a plain -q leaves it alone.
    r = outbox.run(["-q"], config=cfg_up)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert sh.messages == [] and queued_ids(qdir) == [qid]

    r = outbox.run(["-qf"], config=cfg_up)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert len(sh.messages) == 1, (sh.messages, sh.rejected, describe(r))
    m = sh.messages[0]
    assert m.data == queued, "DATA differs from msg/ID.data as queued"
    assert m.mail_from == SENDER and m.rcpt_tos == [RCPT]
    assert files(qdir / "msg") == [] and files(qdir / "tmp") == []
    assert files(qdir / "failed") == []
    assert "Mail queue is empty" in listing(outbox, cfg_up)


def test_q_force_long_option(outbox, smarthost, closed_port, tmp_path):
    """`-q --force` is the long spelling of -qf."""
    cfg_down, qdir = qconfig(outbox, tmp_path, closed_port, name="down.conf")
    r = outbox.run(["-f", SENDER, RCPT], message("forced"), config=cfg_down)
    assert r.returncode == EX_OK, describe(r)
    sh = bring_up_on(smarthost, closed_port)
    cfg_up, _ = qconfig(outbox, tmp_path, sh, qdir, name="up.conf")
    r = outbox.run(["-q", "--force"], config=cfg_up)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert subjects(sh) == Counter({"forced": 1})
    assert queued_ids(qdir) == []


# ---------------------------------------------------------------------------
# 2. 1000 messages, one connection
# ---------------------------------------------------------------------------

def test_thousand_messages_one_connection(outbox, smarthost, tmp_path):
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh)
    n = 1000
    t_enqueue = enqueue_many(outbox, config, n, "bulk {:04d}")
    assert len(queued_ids(qdir)) == n
    assert sh.connections == 0, "-odq must not connect"

    before = sh.connections
    t0 = time.monotonic()
    r = outbox.run(["-q"], config=config, timeout=120)
    t_flush = time.monotonic() - t0
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle(10)
    print(f"enqueue {n}: {t_enqueue:.1f}s, flush: {t_flush:.1f}s")
    assert sh.connections - before == 1, \
        f"{sh.connections - before} connections for one queue run"
    got = subjects(sh)
    assert len(sh.messages) == n, (len(sh.messages), len(sh.rejected))
    assert got == Counter({f"bulk {i:04d}": 1 for i in range(n)})
    assert queued_ids(qdir) == [] and files(qdir / "msg") == []


# ---------------------------------------------------------------------------
# 3. SIGKILL at random moments while enqueueing
# ---------------------------------------------------------------------------

def kill_body(i: int) -> bytes:
    # ~96 KiB, more than a pipe buffer, every line naming its message; no
    # line is a lone "." (that would end the message early without -i).
    line = f"message {i:03d} line {{:04d}} " + "x" * 40 + "\n"
    return "".join(line.format(n) for n in range(1600)).encode()


def kill_input(i: int) -> bytes:
    return message(f"kill {i:03d}", kill_body(i))


def test_sigkill_during_enqueue(outbox, closed_port, tmp_path):
    config, qdir = qconfig(outbox, tmp_path, closed_port)
    tries = 200
    seed = int(os.environ.get("OUTBOX_KILL_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    # a sanitizer build's leak check at exit, if the kill lands during it,
    # reports that it could not stop the dying process: noise, not a leak
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = outbox.environment(
        {"ASAN_OPTIONS": (asan + ":" if asan else "") + "detect_leaks=0"})
    exited_ok, partial, outcomes = set(), set(), Counter()

    t0 = time.monotonic()
    for i in range(tries):
        how = rng.choice(("-odq", "direct"))
        phase = rng.choice(("early", "partial", "after-eof"))
        args = ["-odq"] if how == "-odq" else []
        cmd = outbox.command([*args, "-f", f"k{i}@example.com",
                              f"r{i}@example.com"], config)
        data = kill_input(i)
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        try:
            if phase == "early":
                time.sleep(rng.uniform(0, 0.02))
            elif phase == "partial":
                partial.add(i)
                cut = rng.randrange(1, len(data) - 1)
                p.stdin.write(data[:cut])
                p.stdin.flush()
                time.sleep(rng.uniform(0, 0.02))
            else:
                p.stdin.write(data)
                p.stdin.close()
                time.sleep(rng.uniform(0, 0.02))
        except BrokenPipeError:
            pass
        p.kill()
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        rc = p.wait(timeout=10)
        outcomes[(how, phase, rc)] += 1
        if rc == 0:
            exited_ok.add(i)
    elapsed = time.monotonic() - t0
    print(f"seed {seed}: {tries} tries in {elapsed:.1f}s; "
          f"exit 0: {len(exited_ok)}; {dict(outcomes)}")

    msg = qdir / "msg"
    data_ids = {p.name[:-5] for p in msg.iterdir() if p.name.endswith(".data")}
    env_ids = {p.name[:-4] for p in msg.iterdir() if p.name.endswith(".env")}
    assert env_ids <= data_ids, f"envelopes without data: {env_ids - data_ids}"
    assert all(ID_RE.match(x) for x in data_ids | env_ids), files(msg)

    found = {}   # message number -> queue ID (committed: has an envelope)
    for qid in sorted(data_ids):
        raw = (msg / f"{qid}.data").read_bytes()
        subj = header_values(raw, "Subject")
        assert len(subj) == 1, (qid, raw[:300])
        i = int(subj[0].split()[-1])
        _, body = split_message(raw)
        expected = kill_body(i).replace(b"\n", b"\r\n")
        assert body == expected, \
            f"msg/{qid}.data (message {i}) is truncated or damaged " \
            f"({len(body)} of {len(expected)} body bytes; seed {seed})"
        assert i not in partial, \
            f"message {i} was killed before its end was written, yet " \
            f"msg/{qid}.data exists (seed {seed})"
        if qid in env_ids:
            e = read_env(msg / f"{qid}.env")
            assert e["sender"] == f"<k{i}@example.com>", e
            assert e["rcpt"] == [f"<r{i}@example.com>"], e
            assert i not in found, f"message {i} queued twice"
            found[i] = qid
    lost = exited_ok - set(found)
    assert not lost, f"exit 0 but not queued: {sorted(lost)} (seed {seed})"

    # Age the leftovers of killed writers, then a queue run cleans them.
    orphans = data_ids - env_ids
    old = time.time() - 3600
    for p in (qdir / "tmp").iterdir():
        os.utime(p, (old, old))
    for qid in orphans:
        os.utime(msg / f"{qid}.data", (old, old))
    leftovers = files(qdir / "tmp")
    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    print(f"{len(leftovers)} tmp/ leftovers, {len(orphans)} msg/ orphans")
    left = files(qdir / "tmp")
    cut = [n for n in left if n.endswith(".env") and n[:-4] in orphans]
    assert left == [], (
        f"tmp/ not cleaned by the queue run: {left}; of which "
        f"{len(cut)} are the tmp/ID.env of a commit killed between its two "
        f"renames (see test_interrupted_commit_leftovers_removed)")
    for qid in orphans:
        assert not (msg / f"{qid}.data").exists(), f"orphan msg/{qid}.data kept"
    # and nothing committed was lost by the run (it only deferred them)
    assert set(queued_ids(qdir)) == set(found.values())


def test_fresh_tmp_leftover_is_kept_old_one_removed(outbox, closed_port,
                                                    tmp_path):
    """The 60 s rule: a young unlocked tmp/ file may still be a writer
    between spool and lock; only an old one is removed."""
    config, qdir = qconfig(outbox, tmp_path, closed_port)
    assert listing(outbox, config)  # creates the queue
    young = qdir / "tmp" / "0123456789ABCDEF.data"
    old = qdir / "tmp" / "FEDCBA9876543210.data"
    young.write_bytes(b"Subject: young\r\n\r\n")
    old.write_bytes(b"Subject: old\r\n\r\n")
    t = time.time() - 120
    os.utime(old, (t, t))
    r = outbox.run(["-q"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert young.exists() and not old.exists()


def test_locked_tmp_leftover_is_kept(outbox, closed_port, tmp_path):
    """A tmp/ file whose lock is held belongs to a live writer."""
    config, qdir = qconfig(outbox, tmp_path, closed_port)
    assert listing(outbox, config)
    path = qdir / "tmp" / "00000000DEADBEEF.data"
    path.write_bytes(b"Subject: being written\r\n\r\n")
    t = time.time() - 3600
    os.utime(path, (t, t))
    with open(path, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        r = outbox.run(["-q"], config=config)
        assert r.returncode == EX_OK, describe(r)
        assert path.exists(), "removed a tmp/ file that is locked"


def test_interrupted_commit_leftovers_removed(outbox, closed_port, tmp_path):
    """Crash between the two renames of a commit (queue.c: "msg/ID.data
    without msg/ID.env ... Removed by the same rule"): msg/ID.data plus
    tmp/ID.env.  Once both are a minute old a queue run removes both."""
    config, qdir = qconfig(outbox, tmp_path, closed_port)
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("cut commit"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    os.rename(qdir / "msg" / f"{qid}.env", qdir / "tmp" / f"{qid}.env")
    t = time.time() - 120
    os.utime(qdir / "msg" / f"{qid}.data", (t, t))
    os.utime(qdir / "tmp" / f"{qid}.env", (t, t))
    r = outbox.run(["-q"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert files(qdir / "msg") == [], "orphan msg/ID.data not removed"
    assert files(qdir / "tmp") == [], \
        "tmp/ID.env of an interrupted commit is never removed"


def test_young_orphan_data_kept_old_envelope_without_data_failed(
        outbox, closed_port, tmp_path):
    """A fresh msg/ID.data without envelope may be a commit in progress:
    kept.  msg/ID.env without msg/ID.data: moved to failed/."""
    config, qdir = qconfig(outbox, tmp_path, closed_port)
    for i in range(2):
        r = outbox.run(["-odq", "-f", SENDER, RCPT], message(f"state {i}"),
                       config=config)
        assert r.returncode == EX_OK, describe(r)
    a, b = queued_ids(qdir)
    (qdir / "msg" / f"{a}.env").unlink()     # young data without envelope
    (qdir / "msg" / f"{b}.data").unlink()    # envelope without data
    r = outbox.run(["-q"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert (qdir / "msg" / f"{a}.data").exists()
    assert files(qdir / "failed") == [f"{b}.env"]
    assert files(qdir / "msg") == [f"{a}.data"]
    assert "Mail queue is empty" in listing(outbox, config)


def test_damaged_envelope_moved_to_failed(outbox, closed_port, tmp_path):
    config, qdir = qconfig(outbox, tmp_path, closed_port)
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("damaged"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    (qdir / "msg" / f"{qid}.env").write_text("sender garbage\n")
    r = outbox.run(["-q"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert files(qdir / "failed") == sorted([f"{qid}.data", f"{qid}.env"])
    assert files(qdir / "msg") == []


def test_commits_survive_concurrent_queue_runs(outbox, closed_port, tmp_path):
    """-odq while queue runs (cron's `outbox -q`) start at the same time:
    every -odq must succeed and be queued.  A queue run must not touch the
    files of a commit in progress (their spool file is locked and fresh)."""
    config, qdir = qconfig(outbox, tmp_path, closed_port)
    assert listing(outbox, config)
    env = outbox.environment()
    deadline = time.monotonic() + 6
    failures, sent, runs = [], Counter(), [0]

    def enqueuer(k):
        i = 0
        while time.monotonic() < deadline:
            subj = f"race {k}-{i}"
            r = subprocess.run(outbox.command(["-odq", "-f", SENDER, RCPT],
                                              config),
                               input=message(subj), capture_output=True,
                               timeout=30, env=env)
            if r.returncode == EX_OK:
                sent[subj] += 1
            else:
                failures.append((subj, r.returncode, r.stderr))
            i += 1

    def runner():
        while time.monotonic() < deadline:
            subprocess.run(outbox.command(["-q"], config), capture_output=True,
                           timeout=60, env=env)
            runs[0] += 1

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        futs = [ex.submit(enqueuer, k) for k in range(3)]
        futs += [ex.submit(runner) for _ in range(3)]
        for f in futs:
            f.result(timeout=120)
    total = sum(sent.values()) + len(failures)
    print(f"{total} -odq, {runs[0]} queue runs, {len(failures)} failed")
    assert not failures, (
        f"{len(failures)} of {total} -odq failed while queue runs were "
        f"starting; first: exit {failures[0][1]}: "
        f"{failures[0][2].decode('utf-8', 'replace')}")
    queued = Counter()
    for qid in queued_ids(qdir):
        raw = (qdir / "msg" / f"{qid}.data").read_bytes()
        queued[header_values(raw, "Subject")[0].decode()] += 1
    assert queued == sent


def test_backoff_doubles_up_to_retry_max(outbox, closed_port, tmp_path):
    config, qdir = qconfig(outbox, tmp_path, closed_port, retry_min="10s",
                           retry_max="30s")
    r = outbox.run(["-f", SENDER, RCPT], message("backoff"), config=config)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    path = qdir / "msg" / f"{qid}.env"
    env = read_env(path)
    assert (env["attempts"], int(env["next"]) - int(env["created"])) == \
        ("1", 10)
    delays = []
    for _ in range(3):
        t0 = int(time.time())
        r = outbox.run(["-qf"], config=config)
        t1 = int(time.time())
        assert r.returncode == EX_OK, describe(r)
        env = read_env(path)
        delays.append((env["attempts"], int(env["next"]) - t0,
                       int(env["next"]) - t1))
    got = [(a, lo) if lo == hi else (a, lo, hi) for a, lo, hi in delays]
    # 10 s after the first attempt, then 20, 30 (40 capped at retry-max)
    for (a, lo, hi), (want_a, want) in zip(delays, [("2", 20), ("3", 30),
                                                    ("4", 30)]):
        assert a == want_a and hi <= want <= lo, got


# ---------------------------------------------------------------------------
# 4. two concurrent queue runs
# ---------------------------------------------------------------------------

def test_concurrent_queue_runs_send_each_once(outbox, smarthost, tmp_path):
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh)
    n = 200
    enqueue_many(outbox, config, n, "concurrent {:03d}")
    env = outbox.environment()
    cmd = outbox.command(["-qf", "-v"], config)
    procs = [subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env) for _ in range(2)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=120))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == EX_OK, err.decode("utf-8", "replace")[-2000:]
    assert sh.wait_idle(10)
    got = subjects(sh)
    dups = {s: c for s, c in got.items() if c != 1}
    assert not dups, f"delivered more than once: {dups}"
    assert got == Counter({f"concurrent {i:03d}": 1 for i in range(n)})
    per_conn = Counter(m.connection for m in sh.messages)
    print(f"messages per connection: {dict(per_conn)}")
    assert queued_ids(qdir) == [] and files(qdir / "msg") == []


# ---------------------------------------------------------------------------
# 5. connection dropped after the final dot
# ---------------------------------------------------------------------------

def test_drop_after_data_stays_queued(outbox, smarthost, tmp_path):
    dropper = smarthost(drop_after_data=True)
    config, qdir = qconfig(outbox, tmp_path, dropper, name="drop.conf")
    r = outbox.run(["-f", SENDER, RCPT], message("dropped"), config=config)
    assert r.returncode == EX_OK, describe(r)
    assert dropper.wait_idle()
    assert dropper.messages == [] and len(dropper.rejected) == 1
    ids = queued_ids(qdir)
    assert len(ids) == 1, "no reply to the final dot: must stay queued"
    assert ids[0] in listing_blocks(listing(outbox, config))

    # at-least-once: the next run delivers it (possibly a duplicate)
    sh = smarthost()
    cfg2, _ = qconfig(outbox, tmp_path, sh, qdir, name="ok.conf")
    r = outbox.run(["-qf"], config=cfg2)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert subjects(sh) == Counter({"dropped": 1})
    assert sh.messages[0].data == dropper.rejected[0].data
    assert queued_ids(qdir) == []


# ---------------------------------------------------------------------------
# 6. partial success: only the temporary recipients are retried
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("first", ["direct", "queue-run"])
def test_partial_success_retries_only_temporary_rcpt(outbox, smarthost,
                                                     tmp_path, first):
    # default rcpt_replies: later@example.com -> 451
    sh1 = smarthost()
    cfg1, qdir = qconfig(outbox, tmp_path, sh1, name="one.conf")
    rcpts = ["ok@example.com", "later@example.com"]
    if first == "direct":
        r = outbox.run(["-f", SENDER, *rcpts], message("partial"),
                       config=cfg1)
    else:
        r = outbox.run(["-odq", "-f", SENDER, *rcpts], message("partial"),
                       config=cfg1)
        assert r.returncode == EX_OK, describe(r)
        r = outbox.run(["-q"], config=cfg1)
    assert r.returncode == EX_OK, describe(r)
    assert sh1.wait_idle()
    assert len(sh1.messages) == 1, sh1.messages
    assert sh1.messages[0].rcpt_tos == ["ok@example.com"]
    ids = queued_ids(qdir)
    assert len(ids) == 1
    env = read_env(qdir / "msg" / f"{ids[0]}.env")
    assert env["rcpt"] == ["<later@example.com>"], env
    block = listing_blocks(listing(outbox, cfg1))[ids[0]]
    assert "<later@example.com>" in block and "ok@example.com" not in block

    sh2 = smarthost(rcpt_replies={})
    cfg2, _ = qconfig(outbox, tmp_path, sh2, qdir, name="two.conf")
    r = outbox.run(["-qf"], config=cfg2)
    assert r.returncode == EX_OK, describe(r)
    assert sh2.wait_idle()
    assert len(sh2.messages) == 1
    assert sh2.messages[0].rcpt_tos == ["later@example.com"]
    assert sh2.messages[0].data == sh1.messages[0].data
    assert len(sh1.messages) == 1
    assert queued_ids(qdir) == []


# ---------------------------------------------------------------------------
# 7. expiry and DSNs
# ---------------------------------------------------------------------------

def parse_dsn(m):
    """(top-level Message, {content-type: part}) of a received DSN."""
    msg = email.message_from_bytes(m.data, policy=email.policy.compat32)
    parts = {p.get_content_type(): p for p in msg.get_payload()} \
        if msg.is_multipart() else {}
    return msg, parts


def is_null_sender(m) -> bool:
    # aiosmtpd reports MAIL FROM:<> as "<>"
    return m.mail_from in ("", "<>")


def check_dsn(m, sender, failed_rcpts, original_subject, status_class):
    assert is_null_sender(m), f"DSN must have the null sender: {m.mail_from!r}"
    assert m.rcpt_tos == [sender]
    assert re.search(rb"(?i)content-type:\s*multipart/report;\s*"
                     rb"report-type=\"?delivery-status", m.data), m.data[:600]
    msg, parts = parse_dsn(m)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert "message/delivery-status" in parts, list(parts)
    assert "text/rfc822-headers" in parts, list(parts)
    blocks = parts["message/delivery-status"].get_payload()
    per_rcpt = [b for b in blocks if b.get("Final-Recipient")]
    finals = sorted(b["Final-Recipient"].split(";")[-1].strip()
                    for b in per_rcpt)
    assert finals == sorted(failed_rcpts), finals
    for b in per_rcpt:
        assert b["Action"].strip().lower() == "failed"
        assert re.fullmatch(rf"{status_class}\.\d{{1,3}}\.\d{{1,3}}",
                            b["Status"].strip()), b["Status"]
    assert any(b.get("Reporting-MTA") for b in blocks)
    headers = parts["text/rfc822-headers"].get_payload(decode=True)
    assert b"Subject: " + original_subject.encode() in headers, headers
    body_lines = [line for line in split_message(m.data)[1].split(b"\r\n")]
    assert not any(line.startswith(b"x" * 40) for line in body_lines)


def test_expiry_sends_dsn_and_moves_to_failed(outbox, smarthost, tmp_path):
    sh = smarthost()   # later@example.com -> 451, the sender is accepted
    config, qdir = qconfig(outbox, tmp_path, sh, queue_lifetime="1s")
    r = outbox.run(["-f", SENDER, "later@example.com"],
                   message("will expire", b"the body is not returned\n"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    (qid,) = queued_ids(qdir)
    time.sleep(1.2)
    r = outbox.run(["-qf"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    dsns = [m for m in sh.messages if is_null_sender(m)]
    assert len(dsns) == 1, (sh.messages, sh.rejected, describe(r))
    assert len(sh.messages) == 1, "only the DSN must have been delivered"
    check_dsn(dsns[0], SENDER, ["later@example.com"], "will expire", "[45]")
    assert qid.encode() in dsns[0].data
    assert b"the body is not returned" not in dsns[0].data
    assert files(qdir / "failed") == sorted([f"{qid}.data", f"{qid}.env"])
    assert files(qdir / "msg") == [] and files(qdir / "tmp") == []
    assert "Mail queue is empty" in listing(outbox, config)


def test_expiry_of_null_sender_message_sends_no_dsn(outbox, smarthost,
                                                    tmp_path):
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh, queue_lifetime="1s")
    r = outbox.run(["-f", "<>", "later@example.com"], message("null sender"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    assert read_env(qdir / "msg" / f"{qid}.env")["sender"] == "<>"
    time.sleep(1.2)
    before = len(sh.commands)
    r = outbox.run(["-qf"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert sh.messages == [], "no DSN for a null-sender message"
    assert "MAIL" in [c.verb for c in sh.commands[before:]]  # it was tried
    assert files(qdir / "failed") == sorted([f"{qid}.data", f"{qid}.env"])
    assert files(qdir / "msg") == []
    assert "Mail queue is empty" in listing(outbox, config)


def test_permanent_refusal_in_queue_run_bounces(outbox, smarthost, tmp_path):
    sh = smarthost()   # bad@example.com -> 550
    config, qdir = qconfig(outbox, tmp_path, sh)
    r = outbox.run(["-odq", "-f", SENDER, "bad@example.com", "ok@example.com"],
                   message("half refused"), config=config)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    r = outbox.run(["-q"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    orig = [m for m in sh.messages if m.mail_from == SENDER]
    dsns = [m for m in sh.messages if is_null_sender(m)]
    assert len(orig) == 1 and orig[0].rcpt_tos == ["ok@example.com"]
    assert len(dsns) == 1, sh.messages
    check_dsn(dsns[0], SENDER, ["bad@example.com"], "half refused", "5")
    assert files(qdir / "failed") == sorted([f"{qid}.data", f"{qid}.env"])
    assert files(qdir / "msg") == []


# ---------------------------------------------------------------------------
# 8. failover
# ---------------------------------------------------------------------------

def test_failover_primary_down_secondary_delivers(outbox, smarthost,
                                                  closed_port, tmp_path):
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh,
                           prepend_lines=[f"smarthost {closed_port.hostport}"])
    assert config.read_text().index(closed_port.hostport) < \
        config.read_text().index(sh.hostport)
    r = outbox.run(["-f", SENDER, RCPT], message("via secondary"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert subjects(sh) == Counter({"via secondary": 1})
    assert files(qdir / "msg") == [] and files(qdir / "tmp") == []


def test_failover_primary_4xx_on_data_secondary_delivers(outbox, smarthost,
                                                         tmp_path):
    primary = smarthost(data_reply="451 4.3.0 busy")
    secondary = smarthost()
    config, qdir = qconfig(outbox, tmp_path, primary,
                           extra_lines=[f"smarthost {secondary.hostport}"])
    r = outbox.run(["-f", SENDER, RCPT], message("4xx then ok"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    assert primary.wait_idle()
    assert secondary.wait_idle()
    assert len(primary.rejected) == 1 and primary.messages == []
    assert subjects(secondary) == Counter({"4xx then ok": 1})
    assert files(qdir / "msg") == []


def test_failover_5xx_on_data_is_final(outbox, smarthost, tmp_path):
    primary = smarthost(data_reply="554 5.7.1 message refused")
    secondary = smarthost()
    config, qdir = qconfig(outbox, tmp_path, primary,
                           extra_lines=[f"smarthost {secondary.hostport}"])
    r = outbox.run(["-f", SENDER, RCPT], message("refused for good"),
                   config=config)
    assert r.returncode == EX_UNAVAILABLE, describe(r)
    assert primary.wait_idle()
    assert len(primary.rejected) == 1
    assert secondary.messages == [] and secondary.connections == 0
    assert files(qdir / "msg") == [] and files(qdir / "tmp") == []


# ---------------------------------------------------------------------------
# 9. disk full
# ---------------------------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 256 KiB tmpfs (root and mount(2) permitted), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = Path(tempfile.mkdtemp(prefix="outbox-full-", dir=tmp_path))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700",
                        "tmpfs", str(mnt)], capture_output=True, timeout=30)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: "
                    + r.stderr.decode("utf-8", "replace").strip())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30)
        if os.path.ismount(mnt):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True,
                           timeout=30)


def test_disk_full_message_larger_than_space(outbox, closed_port, tmp_path,
                                             small_fs):
    """The disk fills while the message is read: a temporary failure, 75
    (as Postfix's sendmail; README's exit-code table), never 0 or 73, and
    nothing left in msg/ or tmp/."""
    qdir = small_fs / "queue"
    config, _ = qconfig(outbox, tmp_path, closed_port, qdir)
    data = message("too big", (b"z" * 1000 + b"\n") * 1024)  # ~1 MB
    r = outbox.run(["-f", SENDER, RCPT], data, config=config)
    assert r.returncode == EX_TEMPFAIL, describe(r)
    assert b"No space left" in r.stderr, describe(r)
    assert b"try again" in r.stderr, describe(r)
    assert files(qdir / "msg") == [] and files(qdir / "tmp") == []


def test_disk_full_envelope_does_not_fit(outbox, closed_port, tmp_path,
                                         small_fs):
    """The data fits, the envelope does not: the commit fails -> 75 and
    nothing in msg/ (the spec: "If the commit fails: exit 75")."""
    # Learn outbox's header overhead on an ordinary disk first.
    probe_cfg, probe_q = qconfig(outbox, tmp_path, closed_port,
                                 tmp_path / "probe-queue", name="probe.conf")
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("fill", b"a\n"),
                   config=probe_cfg)
    assert r.returncode == EX_OK, describe(r)
    (pid,) = queued_ids(probe_q)
    overhead = (probe_q / "msg" / f"{pid}.data").stat().st_size - 3
    # data file of 256 KiB - 200 bytes: all 64 pages used, none left.
    target = 256 * 1024 - 200
    body_len = target - overhead
    lines, rest = divmod(body_len, 100)
    body = (b"b" * 98 + b"\r\n") * lines + b"c" * max(rest - 2, 0) + b"\r\n"

    qdir = small_fs / "queue"
    config, _ = qconfig(outbox, tmp_path, closed_port, qdir)
    for args in (["-f", SENDER, RCPT], ["-odq", "-f", SENDER, RCPT]):
        r = outbox.run(args, message("fill", body), config=config)
        assert r.returncode == EX_TEMPFAIL, (args, describe(r))
        assert b"No space left" in r.stderr, (args, describe(r))
        assert files(qdir / "msg") == [], (args, files(qdir / "msg"))
        assert files(qdir / "tmp") == [], (args, files(qdir / "tmp"))
    assert "Mail queue is empty" in listing(outbox, config)


# ---------------------------------------------------------------------------
# 10. modes and odds and ends
# ---------------------------------------------------------------------------

def test_queue_off_server_down_is_75(outbox, closed_port, tmp_path):
    config = outbox.write_config(tmp_path, closed_port, queue="off")
    r = outbox.run(["-f", SENDER, RCPT], message("no queue"), config=config)
    assert r.returncode == EX_TEMPFAIL, describe(r)
    assert closed_port.hostport.encode() in r.stderr
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("no queue"),
                   config=config)
    assert r.returncode == EX_TEMPFAIL, describe(r)
    assert b"queue" in r.stderr
    assert "Mail queue is empty" in listing(outbox, config)
    r = outbox.run(["--remove", "0123456789ABCDEF"], config=config)
    assert r.returncode == 78, describe(r)


def test_symlinked_queue_dir_refused(outbox, closed_port, tmp_path):
    real = tmp_path / "real-queue"
    real.mkdir(mode=0o700)
    link = tmp_path / "link-queue"
    link.symlink_to(real)
    config, _ = qconfig(outbox, tmp_path, closed_port, link)
    # outbox(8), EXIT STATUS: 74 the queue cannot be read (-bp); 73 a
    # queue run cannot open the queue directory; 75 a message that could
    # not be queued (with -odq, or after the smarthost failed)
    for args, code in ((["-bp"], EX_IOERR), (["-q"], EX_CANTCREAT),
                       (["-odq", "-f", SENDER, RCPT], EX_TEMPFAIL),
                       (["-f", SENDER, RCPT], EX_TEMPFAIL)):
        r = outbox.run(args, message("symlink"), config=config)
        assert r.returncode == code, (args, describe(r))
        err = r.stderr.decode("utf-8", "replace")
        assert "queue" in err and "symbolic link" in err, (args, err)
    assert files(real) == [], "nothing may be created through the link"


def test_symlinked_queue_subdir_refused(outbox, closed_port, tmp_path):
    config, qdir = qconfig(outbox, tmp_path, closed_port)
    assert listing(outbox, config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (qdir / "msg").rmdir()
    (qdir / "msg").symlink_to(elsewhere)
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("x"), config=config)
    assert r.returncode == EX_TEMPFAIL, describe(r)
    assert b"msg/" in r.stderr and b"symbolic link" in r.stderr, describe(r)
    assert files(elsewhere) == []


def test_queue_dir_of_another_user_or_world_writable_refused(
        outbox, closed_port, tmp_path):
    config, qdir = qconfig(outbox, tmp_path, closed_port)
    assert listing(outbox, config)
    os.chmod(qdir, 0o777)
    r = outbox.run(["-bp"], config=config)
    assert r.returncode == EX_IOERR and b"writable by everyone" in r.stderr, \
        describe(r)
    os.chmod(qdir, 0o700)
    if os.geteuid() != 0:
        return
    os.chown(qdir, 65534, 65534)
    try:
        for args, code in ((["-bp"], EX_IOERR),
                           (["-odq", "-f", SENDER, RCPT], EX_TEMPFAIL)):
            r = outbox.run(args, message("x"), config=config)
            assert r.returncode == code, (args, describe(r))
            assert b"owned by another user" in r.stderr, (args, describe(r))
        assert files(qdir / "msg") == []
    finally:
        os.chown(qdir, 0, 0)


def test_remove(outbox, smarthost, tmp_path):
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh)
    enqueue_many(outbox, config, 2, "remove {}", workers=1)
    ids = queued_ids(qdir)
    assert len(ids) == 2
    gone, keep = ids
    keep_subject = header_values(
        (qdir / "msg" / f"{keep}.data").read_bytes(), "Subject")[0].decode()
    r = outbox.run(["--remove", gone], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert not (qdir / "msg" / f"{gone}.data").exists()
    assert not (qdir / "msg" / f"{gone}.env").exists()
    assert list(listing_blocks(listing(outbox, config))) == [keep]
    r = outbox.run(["--remove", gone], config=config)
    assert r.returncode == EX_USAGE, describe(r)
    r = outbox.run(["--remove", "not-an-id"], config=config)
    assert r.returncode == EX_USAGE, describe(r)
    # a message locked by a queue run cannot be removed
    with open(qdir / "msg" / f"{keep}.data", "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        r = outbox.run(["--remove", keep], config=config)
        # outbox(8), --remove: one being sent is exit 64
        assert r.returncode == EX_USAGE, describe(r)
    assert queued_ids(qdir) == [keep]
    r = outbox.run(["-q"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert subjects(sh) == Counter({keep_subject: 1})
    assert queued_ids(qdir) == []


def test_qI_sends_only_that_message(outbox, smarthost, closed_port,
                                    tmp_path):
    cfg_down, qdir = qconfig(outbox, tmp_path, closed_port, name="down.conf")
    for i in range(3):
        r = outbox.run(["-f", SENDER, RCPT], message(f"qI {i}"),
                       config=cfg_down)
        assert r.returncode == EX_OK, describe(r)
    ids = queued_ids(qdir)
    assert len(ids) == 3
    by_subject = {}
    for qid in ids:
        raw = (qdir / "msg" / f"{qid}.data").read_bytes()
        by_subject[header_values(raw, "Subject")[0].decode()] = qid
    sh = bring_up_on(smarthost, closed_port)
    cfg_up, _ = qconfig(outbox, tmp_path, sh, qdir, name="up.conf")
    r = outbox.run(["-q"], config=cfg_up)   # none is due (retry-min 1m)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert sh.messages == []

    r = outbox.run(["-qI", by_subject["qI 1"]], config=cfg_up)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert subjects(sh) == Counter({"qI 1": 1})
    assert sorted(queued_ids(qdir)) == sorted([by_subject["qI 0"],
                                               by_subject["qI 2"]])
    r = outbox.run([f"-qI{by_subject['qI 2']}"], config=cfg_up)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert subjects(sh) == Counter({"qI 1": 1, "qI 2": 1})
    assert queued_ids(qdir) == [by_subject["qI 0"]]


def test_odb_returns_at_once_and_delivers(outbox, smarthost, tmp_path):
    """-odb delivers from the background.  (That the caller does not wait
    for that run is test_odb_detaches_from_a_server_that_never_answers.)"""
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh)
    r = outbox.run(["-odb", "-f", SENDER, RCPT], message("background"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    assert wait_until(lambda: subjects(sh)["background"] == 1, 30), \
        "the background run did not deliver within 30 s"
    assert wait_until(lambda: files(qdir / "msg") == [], 30)
    assert sh.wait_idle()
    assert subjects(sh) == Counter({"background": 1})
    assert [(m.mail_from, m.rcpt_tos) for m in sh.messages] == \
        [(SENDER, [RCPT])]


def test_odb_detaches_from_a_server_that_never_answers(outbox, silent_server,
                                                       tmp_path):
    """The caller of -odb returns while its background run still waits
    for a server that never answers.  The wait is long (timeout 60 s) and
    the caller's bound far below it (20 s): a caller that waited for its
    run would take the whole minute, however busy the machine.  The test
    then ends the background run by protocol: closing the server's side
    of the connection fails the attempt at once, and it is deferred."""
    config, qdir = qconfig(outbox, tmp_path, silent_server, timeout="60s")
    t0 = time.monotonic()
    r = outbox.run(["-odb", "-f", SENDER, RCPT], message("hang"),
                   config=config, timeout=90)
    elapsed = time.monotonic() - t0
    assert r.returncode == EX_OK, describe(r)
    assert elapsed < 20, f"-odb waited {elapsed:.1f}s for its background run"
    (qid,) = queued_ids(qdir)
    env_path = qdir / "msg" / f"{qid}.env"
    # the background run connects and waits for a greeting ...
    assert wait_until(lambda: silent_server.connections >= 1, 30), \
        "the background run never connected"
    assert read_env(env_path)["attempts"] == "0"
    # ... until the server goes away: the attempt fails and is recorded
    silent_server.stop()
    assert wait_until(lambda: env_path.exists()
                      and read_env(env_path).get("attempts") == "1", 30), \
        "the background run never recorded its attempt"
    assert silent_server.connections == 1
    env = read_env(env_path)
    assert env["rcpt"] == [f"<{RCPT}>"] and env["last-error"].strip(), env


def test_opportunistic_flush_after_direct_delivery(outbox, smarthost,
                                                   closed_port, tmp_path):
    cfg_down, qdir = qconfig(outbox, tmp_path, closed_port, name="down.conf",
                             retry_min="1s")
    r = outbox.run(["-f", SENDER, RCPT], message("queued first"),
                   config=cfg_down)
    assert r.returncode == EX_OK, describe(r)
    assert len(queued_ids(qdir)) == 1
    time.sleep(1.2)   # now due (next = created + retry-min)
    sh = bring_up_on(smarthost, closed_port)
    cfg_up, _ = qconfig(outbox, tmp_path, sh, qdir, name="up.conf",
                        retry_min="1s")
    r = outbox.run(["-f", SENDER, RCPT], message("sent directly"),
                   config=cfg_up)
    assert r.returncode == EX_OK, describe(r)
    ok = wait_until(lambda: subjects(sh) == Counter(
        {"queued first": 1, "sent directly": 1}), 30)
    assert ok, f"got {subjects(sh)} within 30 s"
    assert wait_until(lambda: files(qdir / "msg") == [], 30)


class QueueDaemon:
    """outbox -v -qINTERVAL with its stderr read, line by line, by a thread
    (so the pipe never fills): with -v every queue run ends with an
    "outbox: queue run: ..." line, so the test knows by what outbox says,
    not by sleeping, that a run is done."""

    def __init__(self, outbox, config, interval):
        self.proc = subprocess.Popen(
            outbox.command(["-v", f"-q{interval}"], config),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=outbox.environment())
        self.lines = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def runs(self):
        with self._changed:
            return sum(1 for l in self.lines
                       if l.startswith("outbox: queue run:"))

    def wait_runs(self, n, timeout=30):
        """Wait (bounded) until n queue runs have ended; False if the
        process ended or the time ran out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.runs() < n:
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    return False
                self._changed.wait(left)
        return True

    def stop(self, timeout=60):
        """SIGTERM; (exit status, seconds it took, its stderr)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        took = time.monotonic() - t0
        self._reader.join(timeout)
        with self._changed:
            return code, took, "\n".join(self.lines)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        self.proc.stderr.close()


def test_q_interval_runs_until_sigterm(outbox, smarthost, tmp_path):
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh)
    assert listing(outbox, config)
    d = QueueDaemon(outbox, config, "1s")
    try:
        assert d.wait_runs(1), f"-q1s: no first run; {d.lines}"
        assert d.proc.poll() is None, "-q1s exited after its first run"
        r = outbox.run(["-odq", "-f", SENDER, RCPT], message("for the daemon"),
                       config=config)
        assert r.returncode == EX_OK, describe(r)
        assert wait_until(lambda: subjects(sh)["for the daemon"] == 1, 30), \
            "-q1s did not deliver a message queued after it started"
        assert wait_until(lambda: queued_ids(qdir) == [], 30)
        assert d.proc.poll() is None
        code, _, err = d.stop()
        assert code == EX_OK, err
    finally:
        d.kill()
    assert sh.wait_idle()
    assert subjects(sh) == Counter({"for the daemon": 1})


def test_q_interval_stops_on_sigterm_while_it_waits(outbox, smarthost,
                                                    tmp_path):
    """SIGTERM ends the wait between two runs: with -q1h the next run is an
    hour away, so stopping within the bound below (a minute less than
    that, under any load) is the signal's doing."""
    sh = smarthost()
    config, _ = qconfig(outbox, tmp_path, sh)
    assert listing(outbox, config)
    d = QueueDaemon(outbox, config, "1h")
    try:
        assert d.wait_runs(1), f"-q1h: no first run; {d.lines}"
        assert d.proc.poll() is None, "-q1h exited after its first run"
        code, took, err = d.stop(timeout=120)
        assert code == EX_OK, err
        assert took < 60, f"took {took:.1f}s to stop on SIGTERM"
        assert d.runs() == 1, err
    finally:
        d.kill()
    assert sh.connections == 0


class HeldReply:
    """Makes the smarthost hold its reply to the final dot of the at-th
    message it is given until release(); reached is set when it starts
    holding.  (It wraps the handler's handle_DATA, which aiosmtpd looks up
    for every new connection: install it before outbox connects.)"""

    def __init__(self, sh, at):
        self.reached = threading.Event()
        self._go = threading.Event()
        handler = sh._handler
        original = handler.handle_DATA
        count = [0]

        async def held(server, session, envelope):
            count[0] += 1
            if count[0] == at:
                self.reached.set()
                while not self._go.is_set():
                    await asyncio.sleep(0.01)
            return await original(server, session, envelope)

        handler.handle_DATA = held

    def release(self):
        self._go.set()


def test_sigterm_stops_a_queue_run_between_messages(outbox, smarthost,
                                                    tmp_path):
    """SIGTERM during a message: that message is finished, the run stops
    before the next one.  The signal is sent while the smarthost holds its
    reply to the final dot of message `at` (so the run is certainly in the
    middle, whatever the load), then the reply is released."""
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh)
    n, at = 80, 30
    enqueue_many(outbox, config, n, "term {:03d}")
    hold = HeldReply(sh, at)
    p = subprocess.Popen(outbox.command(["-q"], config),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=outbox.environment())
    try:
        assert hold.reached.wait(60), "the queue run never reached message " \
            f"{at}"
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        hold.release()
        _, err = p.communicate(timeout=60)
    finally:
        hold.release()
        if p.poll() is None:
            p.kill()
            p.wait(10)
    assert p.returncode == EX_OK, err.decode("utf-8", "replace")[-2000:]
    assert sh.wait_idle(10)
    # the held message was finished (250 after the signal), no other begun
    assert len(sh.messages) == at, (len(sh.messages), len(sh.rejected))
    assert [c.verb for c in sh.commands].count("MAIL") == at
    delivered = subjects(sh)
    assert all(c == 1 for c in delivered.values()), delivered
    left = Counter()
    for qid in queued_ids(qdir):
        raw = (qdir / "msg" / f"{qid}.data").read_bytes()
        left[header_values(raw, "Subject")[0].decode()] += 1
    print(f"SIGTERM: {len(delivered)} delivered, {len(left)} left queued")
    assert not set(delivered) & set(left), "delivered but still queued"
    assert delivered + left == Counter({f"term {i:03d}": 1 for i in range(n)})
    assert len(left) == n - at
    assert files(qdir / "tmp") == []


def test_bounce_to_a_refused_sender_does_not_loop(outbox, smarthost,
                                                  tmp_path):
    sh = smarthost()   # bad@example.com -> 550
    config, qdir = qconfig(outbox, tmp_path, sh)
    r = outbox.run(["-odq", "-f", "bad@example.com", "bad@example.com"],
                   message("loop?"), config=config)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    r = outbox.run(["-q"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert sh.messages == []
    rcpts = [c.arg for c in sh.commands if c.verb == "RCPT"]
    assert len(rcpts) == 2, rcpts    # the message, then its DSN; no more
    mails = [c.arg for c in sh.commands if c.verb == "MAIL"]
    assert mails[1].replace(" ", "").upper().startswith("FROM:<>"), mails
    failed = files(qdir / "failed")
    assert len(failed) == 4 and f"{qid}.env" in failed, failed
    assert files(qdir / "msg") == []


def test_bad_queue_interval_is_usage_error(outbox, closed_port, tmp_path):
    config, _ = qconfig(outbox, tmp_path, closed_port)
    r = outbox.run(["-q5x"], config=config)
    assert r.returncode == EX_USAGE, describe(r)


# ---------------------------------------------------------------------------
# 11. on-disk modes
# ---------------------------------------------------------------------------

def test_queue_modes_independent_of_umask(outbox, closed_port, tmp_path):
    config, qdir = qconfig(outbox, tmp_path, closed_port)

    def run_umask0(args, data=b""):
        return subprocess.run(outbox.command(args, config), input=data,
                              capture_output=True, timeout=30,
                              env=outbox.environment(),
                              preexec_fn=lambda: os.umask(0))

    r = run_umask0(["-odq", "-f", SENDER, RCPT], message("modes"))
    assert r.returncode == EX_OK, describe(r)
    r = run_umask0(["-f", SENDER, RCPT], message("modes 2"))
    assert r.returncode == EX_OK, describe(r)
    r = run_umask0(["-q"])          # rewrites the envelope of the due one
    assert r.returncode == EX_OK, describe(r)

    def mode(p):
        return stat.S_IMODE(os.lstat(p).st_mode)

    for d in (qdir, qdir / "tmp", qdir / "msg", qdir / "failed"):
        assert mode(d) == 0o700, f"{d}: {oct(mode(d))}"
    names = files(qdir / "msg")
    assert len(names) == 4, names
    for n in names:
        assert mode(qdir / "msg" / n) == 0o600, f"{n}: {oct(mode(qdir / 'msg' / n))}"
    for qid in queued_ids(qdir):
        assert read_env(qdir / "msg" / f"{qid}.env")["attempts"] == "1"
