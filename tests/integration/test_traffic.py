"""The queue as a traffic manager (outbox.conf(5) max-connections,
rate-limit; outbox(8) THE QUEUE): a burst of parallel senders is carried
by at most max-connections connections per smarthost, no message lost
even when senders are killed; a rate limit keeps the smarthost's own
limit from ever answering "too many".

Real parts: an aiosmtpd STARTTLS+AUTH smarthost from conftest.py; the
rate-limiting smarthost is the same server with a MAIL hook that answers
421 4.3.2 beyond COUNT messages in any PERIOD seconds.
"""

import collections
import concurrent.futures
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from test_queue import describe, message, qconfig, queued_ids, subject_of

EX_OK = 0
SENDER = "burst@example.com"
RCPT = "rcpt@example.com"


def peak_connections(sh) -> int:
    """The most connections that were open at once, from the order in
    which the server handled their commands (one event loop: that order
    is the server's own)."""
    span = {}
    for i, c in enumerate(sh.commands):
        first, _ = span.get(c.connection, (i, i))
        span[c.connection] = (first, i)
    events = sorted([(a, 1) for a, _ in span.values()] +
                    [(b, -1) for _, b in span.values()],
                    key=lambda e: (e[0], -e[1]))
    live = peak = 0
    for _, d in events:
        live += d
        peak = max(peak, live)
    return peak


def wait_until(pred, timeout):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def drain(outbox, cfg, qdir, sh, expected, timeout=120):
    """Let the detached carriers finish, then one more queue run for what
    arrived after their last pass; all expected delivered."""
    wait_until(lambda: len(sh.messages) >= expected and not queued_ids(qdir),
               timeout)
    r = outbox.run(["-q"], config=cfg, timeout=timeout)
    assert r.returncode == EX_OK, describe(r)
    assert wait_until(lambda: len(sh.messages) >= expected, timeout)


def test_burst_of_parallel_senders_uses_at_most_max_connections(
        outbox, smarthost, tmp_path):
    sh = smarthost()                    # STARTTLS + AUTH
    cfg, qdir = qconfig(outbox, tmp_path, sh, max_connections=2)
    senders, each = 20, 10

    def sender(k):
        codes = []
        for i in range(each):
            r = outbox.run(["-f", SENDER, RCPT], message(f"s{k}-{i}"),
                           config=cfg, timeout=120)
            codes.append((r.returncode, r.stderr))
        return codes

    with concurrent.futures.ThreadPoolExecutor(senders) as pool:
        results = list(pool.map(sender, range(senders)))
    for codes in results:
        for code, err in codes:
            assert code == EX_OK, err
    # no queue run needed: the processes holding the connections send
    # what the others queued, the last of them after freeing its slot
    assert wait_until(lambda: len(sh.messages) >= senders * each and
                      not queued_ids(qdir), 120), \
        (len(sh.messages), len(queued_ids(qdir)))
    sh.wait_idle(30)
    got = collections.Counter(subject_of(m) for m in sh.messages)
    want = {f"s{k}-{i}" for k in range(senders) for i in range(each)}
    assert set(got) == want and set(got.values()) == {1}, got
    assert queued_ids(qdir) == []
    assert peak_connections(sh) <= 2, peak_connections(sh)
    # far fewer TLS handshakes and logins than messages
    assert sh.verbs().count("STARTTLS") == sh.connections
    assert sh.connections < senders * each // 2, sh.connections
    print(f"\n200 messages from 20 senders: {sh.connections} connections, "
          f"at most {peak_connections(sh)} at once")


def test_burst_with_senders_killed_at_random_loses_nothing(
        outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh, max_connections=2)
    rnd = random.Random(1206)
    accepted, lock = [], threading.Lock()
    # a sanitizer build's leak check at exit, if the kill lands during it,
    # reports that it could not stop the dying process: noise, not a leak
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = outbox.environment(
        {"ASAN_OPTIONS": (asan + ":" if asan else "") + "detect_leaks=0"})

    def sender(k):
        for i in range(8):
            subj = f"k{k}-{i}"
            p = subprocess.Popen(outbox.command(["-f", SENDER, RCPT], cfg),
                                 stdin=subprocess.PIPE,
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, env=env)
            p.stdin.write(message(subj))
            p.stdin.close()
            if rnd.random() < 0.3:
                time.sleep(rnd.random() * 0.05)
                p.send_signal(signal.SIGKILL)
            err = p.stderr.read()
            if p.wait(timeout=120) == EX_OK:
                with lock:
                    accepted.append(subj)
            else:
                assert p.returncode == -signal.SIGKILL, err

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        list(pool.map(sender, range(10)))
    assert accepted
    drain(outbox, cfg, qdir, sh, len(accepted))
    sh.wait_idle(30)
    got = collections.Counter(subject_of(m) for m in sh.messages)
    # everything outbox said 0 for arrived; nothing arrived twice (a
    # killed sender's message may have gone before the kill: then once)
    assert set(accepted) <= set(got), set(accepted) - set(got)
    assert set(got.values()) == {1}, got
    assert peak_connections(sh) <= 2


def test_no_free_slot_queues_the_message_due_now(outbox, smarthost,
                                                 tmp_path):
    """A sender that finds every slot held commits the message, due at
    once, without trying the smarthost."""
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh, max_connections=1)
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("seed"),
                   config=cfg)
    assert r.returncode == EX_OK, describe(r)
    qdir_fd = os.open(qdir, os.O_RDONLY)
    try:
        # hold the one slot the way an outbox process does
        slots = [f for f in os.listdir(qdir) if f.startswith("slot-")]
        name = (f"slot-{sh.host}_{sh.port}-0" if not slots else slots[0])
        fd = os.open(qdir / name, os.O_RDONLY | os.O_CREAT, 0o600)
        import fcntl
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = outbox.run(["-f", SENDER, RCPT], message("held"), config=cfg)
        assert r.returncode == EX_OK, describe(r)
        assert b"queued" in r.stderr and b"max-connections" in r.stderr
        sh.wait_idle()
        assert sh.connections == 0 and sh.messages == []
        ids = queued_ids(qdir)
        assert len(ids) == 2
        r = outbox.run(["-bp"], config=cfg)
        assert r.stdout.count(b"next attempt now") == 2, describe(r)
        os.close(fd)                     # the holder goes away
    finally:
        os.close(qdir_fd)
    r = outbox.run(["-q"], config=cfg)
    assert r.returncode == EX_OK, describe(r)
    sh.wait_idle()
    assert sorted(subject_of(m) for m in sh.messages) == ["held", "seed"]


# ---------------------------------------------------------------------------
# rate limits
# ---------------------------------------------------------------------------

def rate_limited(sh, count, period):
    """Make sh answer MAIL with 421 4.3.2 beyond count messages in any
    period seconds (a sliding window, as providers count)."""
    times, refused = collections.deque(), []
    orig = sh._handler.handle_MAIL

    async def handle_MAIL(server, session, envelope, address, options):
        now = time.monotonic()
        while times and times[0] <= now - period:
            times.popleft()
        if len(times) >= count:
            refused.append(now)
            return "421 4.3.2 too many messages, slow down"
        times.append(now)
        return await orig(server, session, envelope, address, options)

    sh._handler.handle_MAIL = handle_MAIL
    return refused


def test_rate_limit_keeps_under_the_providers_limit(outbox, smarthost,
                                                    tmp_path):
    sh = smarthost()
    refused = rate_limited(sh, 4, 3)
    cfg, qdir = qconfig(outbox, tmp_path, sh, rate_limit="4/3s")
    for i in range(10):
        r = outbox.run(["-odq", "-f", SENDER, RCPT], message(f"r{i:02d}"),
                       config=cfg)
        assert r.returncode == EX_OK, describe(r)
    deadline = time.monotonic() + 60
    while queued_ids(qdir) and time.monotonic() < deadline:
        r = outbox.run(["-q"], config=cfg)
        assert r.returncode == EX_OK, describe(r)
        time.sleep(0.5)
    sh.wait_idle()
    assert refused == [], "the smarthost had to refuse"
    assert [subject_of(m) for m in sh.messages] == \
        [f"r{i:02d}" for i in range(10)]        # oldest first
    assert queued_ids(qdir) == []


def test_rate_limit_direct_send_over_the_limit_is_queued(outbox, smarthost,
                                                         tmp_path):
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh, rate_limit="2/1h")
    for i in range(3):
        r = outbox.run(["-f", SENDER, RCPT], message(f"d{i}"), config=cfg)
        assert r.returncode == EX_OK, describe(r)
    sh.wait_idle()
    assert [subject_of(m) for m in sh.messages] == ["d0", "d1"]
    assert b"rate-limit 2/3600s" in r.stderr and b"queued" in r.stderr
    (qid,) = queued_ids(qdir)
    r = outbox.run(["-q"], config=cfg)         # still over: stays
    assert r.returncode == EX_OK, describe(r)
    assert queued_ids(qdir) == [qid]
    assert len(sh.messages) == 2


@pytest.mark.parametrize("value", ["30", "30/", "/min", "0/min", "30/fortnight",
                                   "1/0s"])
def test_rate_limit_bad_values_name_the_key(outbox, smarthost, tmp_path,
                                            value):
    sh = smarthost()
    cfg, _ = qconfig(outbox, tmp_path, sh, rate_limit=value)
    r = outbox.run(["-bp"], config=cfg)
    assert r.returncode == 78, describe(r)
    assert b"rate-limit" in r.stderr and b":" in r.stderr


def test_max_connections_bad_value(outbox, smarthost, tmp_path):
    sh = smarthost()
    cfg, _ = qconfig(outbox, tmp_path, sh, max_connections="many")
    r = outbox.run(["-bp"], config=cfg)
    assert r.returncode == 78, describe(r)
    assert b"max-connections" in r.stderr


def test_carrier_holds_no_descriptor_of_its_caller(outbox, smarthost,
                                                   tmp_path):
    """A caller (a web server, a cron daemon) hands outbox a socket it
    did not mean to: once outbox has answered, no outbox process may
    hold it, not even the detached carrier that goes on sending the
    queued messages over the open connection (it keeps its own libcurl
    sockets, and nothing of the caller's)."""
    import asyncio
    import select
    import socket
    sh = smarthost()
    cfg, qdir = qconfig(outbox, tmp_path, sh)
    for i in range(20):
        r = outbox.run(["-odq", "-f", SENDER, RCPT], message(f"q{i}"),
                       config=cfg)
        assert r.returncode == EX_OK, describe(r)
    orig = sh._handler.handle_DATA

    async def slow(server, session, envelope):      # 0.1 s a message
        await asyncio.sleep(0.1)
        return await orig(server, session, envelope)
    sh._handler.handle_DATA = slow

    mine, theirs = socket.socketpair()
    p = subprocess.Popen(outbox.command(["-f", SENDER, RCPT], cfg),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, pass_fds=(theirs.fileno(),),
                         env=outbox.environment())
    theirs.close()
    out, err = p.communicate(message("direct"), timeout=60)
    assert p.returncode == EX_OK, err
    # the carrier is still at work (20 messages at 0.1 s each) ...
    ready, _, _ = select.select([mine], [], [], 10)
    assert ready, "the caller's socket is still held open"
    assert mine.recv(1) == b""          # ... but no one holds the socket
    assert len(sh.messages) < 21, len(sh.messages)
    mine.close()
    assert wait_until(lambda: len(sh.messages) >= 21 and
                      not queued_ids(qdir), 60), len(sh.messages)
    got = collections.Counter(subject_of(m) for m in sh.messages)
    assert set(got.values()) == {1} and len(got) == 21, got
    # the direct send's connection carried them all, and nothing else
    assert sh.connections == 1, sh.connections
