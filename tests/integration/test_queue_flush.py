"""The queue flush's removals (src/store_drop.c): sent messages are
unlinked on the store's removal thread, up to 64 behind the run, each
staying locked until both its files are gone. A queue run killed at any
moment loses nothing (at-least-once: what it sent but had not yet removed
is sent again), never leaves an envelope without its data, and a finished
run leaves nothing behind.

Real parts: tests/smarthost.py (aiosmtpd) on loopback, the outbox binary,
SIGKILL."""
import os
import random
import subprocess
import time
from collections import Counter

from test_queue import (EX_OK, describe, enqueue_many, files, qconfig,
                        queued_ids, subjects)


def test_sigkill_during_flush_loses_nothing(outbox, smarthost, tmp_path):
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh)
    n = 300
    enqueue_many(outbox, config, n, "flush {:03d}")
    assert len(queued_ids(qdir)) == n
    seed = int(os.environ.get("OUTBOX_KILL_SEED", "0")) or random.randrange(1 << 30)
    rng = random.Random(seed)
    # a sanitizer build's leak check at exit, if the kill lands during it,
    # reports that it could not stop the dying process: noise, not a leak
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = outbox.environment(
        {"ASAN_OPTIONS": (asan + ":" if asan else "") + "detect_leaks=0"})
    cmd = outbox.command(["-q"], config)
    msg = qdir / "msg"
    kills = 0
    for _ in range(6):
        if not queued_ids(qdir):
            break
        before = len(sh.messages)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        # kill it in the middle of the flush: once a few messages went
        deadline = time.monotonic() + 30
        want = before + rng.randrange(5, 60)
        while (len(sh.messages) < want and p.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.002)
        p.kill()
        rc = p.wait(timeout=30)
        kills += rc != EX_OK
        # never an envelope without its data
        names = files(msg)
        envs = {x[:-4] for x in names if x.endswith(".env")}
        datas = {x[:-5] for x in names if x.endswith(".data")}
        assert envs <= datas, \
            f"envelopes without data after a kill: {envs - datas} (seed {seed})"
    assert kills > 0, f"no run was killed in the middle of its flush (seed {seed})"
    # what a kill left between a message's two unlinks: msg/ID.data without
    # its envelope, not queued; aged, the next run removes it
    old = time.time() - 3600
    for name in files(msg):
        if name.endswith(".data") and name[:-5] not in queued_ids(qdir):
            os.utime(msg / name, (old, old))
    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle(10)
    got = subjects(sh)
    lost = [f"flush {i:03d}" for i in range(n) if got[f"flush {i:03d}"] == 0]
    assert not lost, f"killed flushes lost {len(lost)}: {lost[:5]} (seed {seed})"
    assert set(got) == {f"flush {i:03d}" for i in range(n)}, got
    dups = sum(c - 1 for c in got.values())
    print(f"seed {seed}: {kills} runs killed, {dups} messages sent again")
    # per killed run at most the message just sent, the one the removal
    # thread was removing and the 64 waiting
    assert dups <= kills * 66, (dups, kills, seed)
    assert queued_ids(qdir) == [] and files(msg) == []


def test_flush_removes_every_sent_message_before_it_exits(outbox, smarthost,
                                                          tmp_path):
    """The removals may lag behind the sends, never behind the exit: when
    outbox -q returns, every sent message is gone from msg/ (and a second
    run sends nothing again)."""
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh)
    n = 200
    enqueue_many(outbox, config, n, "gone {:03d}")
    r = outbox.run(["-q"], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert files(qdir / "msg") == [], files(qdir / "msg")[:5]
    assert sh.wait_idle(10)
    assert subjects(sh) == Counter({f"gone {i:03d}": 1 for i in range(n)})
    r = outbox.run(["-q"], config=config, timeout=60)
    assert r.returncode == EX_OK, describe(r)
    assert len(sh.messages) == n


def test_run_of_given_ids_removes_them_before_it_exits(outbox, smarthost,
                                                       tmp_path):
    """-qI ID...: a run that never lists msg/ after its sends (so nothing
    waits for the removals on the way) still ends with every sent message
    gone: the store waits for its removals when it is closed."""
    sh = smarthost()
    config, qdir = qconfig(outbox, tmp_path, sh)
    n = 60
    enqueue_many(outbox, config, n, "given {:03d}")
    ids = sorted(p.name[:-4] for p in (qdir / "msg").glob("*.env"))
    assert len(ids) == n
    r = outbox.run(["-qI", *ids], config=config, timeout=120)
    assert r.returncode == EX_OK, describe(r)
    assert files(qdir / "msg") == [], files(qdir / "msg")[:5]
    assert sh.wait_idle(10)
    assert subjects(sh) == Counter({f"given {i:03d}": 1 for i in range(n)})
