"""A hung or dead smarthost costs one timeout per queue run, not one per
message: after a session fails before MAIL FROM (connect, greeting, TLS,
AUTH), the run skips that smarthost for its remaining messages, which
stay due and untouched; the log says so once. Failover logs each
smarthost it passes over.
"""

import time

from test_queue import message, qconfig, queued_ids, read_env

EX_OK = 0
SENDER = "cron@example.com"
RCPT = "admin@example.com"
N = 20
TIMEOUT = 2  # seconds: one timeout is 2 s, one per message would be 40 s


def _queue_n(outbox, tmp_path, server, n, **over):
    cfg, qdir = qconfig(outbox, tmp_path, server, timeout=f"{TIMEOUT}s",
                        log=str(tmp_path / "outbox.log"), **over)
    for i in range(n):
        r = outbox.run(["-odq", "-f", SENDER, RCPT], message(f"hung {i}"),
                       config=cfg)
        assert r.returncode == EX_OK, r.stderr
    ids = queued_ids(qdir)
    assert len(ids) == n
    return cfg, qdir, ids


def test_silent_smarthost_costs_one_timeout_per_run(outbox, silent_server,
                                                    tmp_path):
    cfg, qdir, ids = _queue_n(outbox, tmp_path, silent_server, N)
    before = {i: (qdir / "msg" / f"{i}.env").read_text() for i in ids}
    t0 = time.monotonic()
    r = outbox.run(["-q", "-v"], config=cfg, timeout=N * TIMEOUT + 60)
    elapsed = time.monotonic() - t0
    assert r.returncode == EX_OK, r.stderr
    # One wait per run takes TIMEOUT plus process overhead; one per
    # message could never take less than N * TIMEOUT (each wait is at
    # least TIMEOUT of wall time, whatever the load), so the bound is that
    # and the margin is all on the fast side.  What was tried is pinned
    # exactly below (one connection, one envelope changed, N - 1 not
    # tried), without timing.
    assert elapsed < N * TIMEOUT, elapsed
    assert silent_server.connections == 1
    # every message is still queued; one was tried (attempts 1, backed
    # off), the others were not touched and are due now
    assert queued_ids(qdir) == ids
    tried = [i for i in ids
             if (qdir / "msg" / f"{i}.env").read_text() != before[i]]
    assert len(tried) == 1, tried
    assert read_env(qdir / "msg" / f"{tried[0]}.env")["attempts"] == "1"
    now = time.time()
    for i in ids:
        if i != tried[0]:
            env = read_env(qdir / "msg" / f"{i}.env")
            assert env["attempts"] == "0" and int(env["next"]) <= now, env
    err = r.stderr.decode()
    assert "1 tried" in err and f"{N - 1} not tried (smarthost down)" in err
    log = (tmp_path / "outbox.log").read_text()
    assert log.count("skipped for the rest of this run") == 1, log


def test_failover_logs_the_smarthost_passed_over(outbox, closed_port,
                                                 smarthost, tmp_path):
    sh = smarthost(auth=False)
    cfg, qdir, ids = _queue_n(outbox, tmp_path, closed_port, 2,
                              ca_file=sh.ca_file,
                              extra_lines=[f"smarthost {sh.hostport}"])
    r = outbox.run(["-q"], config=cfg, timeout=60)
    assert r.returncode == EX_OK, r.stderr
    assert sh.wait_idle()
    assert len(sh.messages) == 2
    assert queued_ids(qdir) == []
    log = (tmp_path / "outbox.log").read_text()
    passed = [l for l in log.splitlines() if "trying the next one" in l]
    # the first message passes over the dead one and says so; the second
    # does not try it again
    assert len(passed) == 1 and closed_port.hostport in passed[0], log
    assert log.count("skipped for the rest of this run") == 1, log
