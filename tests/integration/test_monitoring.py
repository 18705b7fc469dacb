"""Watching the queue (issue 15): the metrics file and --queue-check.

Contract under test (outbox(8) MONITORING, outbox.conf(5) metrics-file,
src/metrics.h):
  `metrics-file PATH` (or OUTBOX_METRICS_FILE): the Prometheus text
  exposition format, replaced atomically (temporary file in the same
  directory, fsync, rename; mode 0644) after each direct delivery
  attempt and each queue run.  Gauges: outbox_queue_enabled,
  outbox_queue_messages, outbox_queue_bytes,
  outbox_queue_oldest_age_seconds, outbox_failed_messages.  Per
  smarthost (label smarthost="host:port"): the counters
  outbox_recipients_{sent,deferred,bounced}_total and
  outbox_rate_limit_waits_total, and the gauge
  outbox_last_success_timestamp_seconds.  The counters live in the
  queue's counters file (QUEUE/stats, under a lock), so every process
  adds to the same numbers and they never step back.  With `queue off`
  the file holds only outbox_queue_enabled 0.  In the set-group-ID
  install a caller other than root writes the file only into a
  directory that only root (and the outbox group) can change, never
  through a symbolic link.
  `outbox --queue-check [--warn-age D] [--crit-age D] [--warn-count N]
  [--crit-count N]`: one line "OUTBOX QUEUE STATE - text | perfdata" on
  stdout; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; defaults 10/100
  messages and 1h/1d of age ("over": a value equal to a threshold is
  still OK).

The metrics file is read with prometheus_client's parser (Debian
python3-prometheus-client) and with the format's line rules checked
here, never with a grep.  Every wait is bounded.
"""

import concurrent.futures
import grp
import json
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

EX_OK, EX_NOUSER, EX_USAGE = 0, 67, 64
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
SENDER = "sender@example.com"
RCPT = "rcpt@example.com"

FAMILIES = {
    "outbox_queue_enabled": "gauge",
    "outbox_queue_messages": "gauge",
    "outbox_queue_bytes": "gauge",
    "outbox_queue_oldest_age_seconds": "gauge",
    "outbox_failed_messages": "gauge",
    "outbox_recipients_sent_total": "counter",
    "outbox_recipients_deferred_total": "counter",
    "outbox_recipients_bounced_total": "counter",
    "outbox_rate_limit_waits_total": "counter",
    "outbox_last_success_timestamp_seconds": "gauge",
}
PER_HOST = [n for n in FAMILIES if n.startswith(("outbox_recipients",
                                                 "outbox_rate",
                                                 "outbox_last"))]
STATUS_RE = re.compile(r"^OUTBOX QUEUE (OK|WARNING|CRITICAL|UNKNOWN) - "
                       r"([^|\n]+?)(?: \| (.*))?$")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def describe(r) -> str:
    return (f"exit {r.returncode}\n--- stderr ---\n"
            f"{r.stderr.decode('utf-8', 'replace')}\n--- stdout ---\n"
            f"{r.stdout.decode('utf-8', 'replace')}")


def message(subject: str) -> bytes:
    return b"Subject: " + subject.encode() + b"\n\nbody\n"


def mconfig(outbox, tmp_path, server, name="outbox.conf", **over):
    """(config, queue dir, metrics file): the queue and metrics-file on."""
    qdir = Path(tmp_path) / "queue"
    prom = Path(tmp_path) / "textfile" / "outbox.prom"
    prom.parent.mkdir(exist_ok=True)
    over.setdefault("queue", str(qdir))
    over.setdefault("metrics_file", str(prom))
    cfg = outbox.write_config(tmp_path, server, name=name, **over)
    return cfg, qdir, prom


def queued_ids(qdir, area="msg"):
    d = Path(qdir) / area
    if not d.is_dir():
        return []
    return sorted(p.name[:-4] for p in d.iterdir() if p.name.endswith(".env"))


def check_exposition(text: str):
    """The text format's line rules that a lenient parser lets pass: the
    file ends with a newline; each family has one # HELP, then its
    # TYPE, then only its own samples; names are outbox_*; counters end
    in _total; no family appears twice."""
    assert text.endswith("\n"), repr(text[-80:])
    seen, current, expect_type = [], None, False
    for line in text.splitlines():
        assert line.strip() == line and line, repr(line)
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert not expect_type and name not in seen, line
            assert re.fullmatch(r"outbox_[a-z_]+", name), line
            assert len(line.split(" ", 3)) == 4, "HELP without text"
            seen.append(name)
            current, expect_type = name, True
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert expect_type and name == current, line
            assert kind in ("counter", "gauge"), line
            assert (kind == "counter") == name.endswith("_total"), line
            expect_type = False
        else:
            assert not line.startswith("#"), line
            assert current is not None and not expect_type, line
            m = re.fullmatch(r'([a-z_]+)(\{smarthost="[^"\\\n]*"\})? '
                             r'(\d+(?:\.\d+)?)', line)
            assert m and m.group(1) == current, line
    return seen


def read_metrics(path) -> dict:
    """{(sample name, smarthost label or None): value}, parsed by
    prometheus_client after the line rules were checked."""
    text = Path(path).read_text()
    return parse_metrics(text)


def parse_metrics(text: str) -> dict:
    names = check_exposition(text)
    samples = {}
    families = list(text_string_to_metric_families(text))
    assert len(families) == len(names), (families, names)
    for fam in families:
        for s in fam.samples:
            assert set(s.labels) <= {"smarthost"}, s
            key = (s.name, s.labels.get("smarthost"))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return samples


def gauge(m, name):
    return m[(name, None)]


def per_host(m, name, host):
    return m.get((name, host), 0.0)


def data_bytes(qdir, area="msg"):
    return sum((Path(qdir) / area / f"{i}.data").stat().st_size
               for i in queued_ids(qdir, area))


def check(outbox, config, *args, env=None):
    """Run --queue-check: (exit code, state, text, perfdata dict)."""
    r = outbox.run(["--queue-check", *args], config=config, timeout=30,
                   env=env)
    out = r.stdout.decode()
    lines = out.splitlines()
    assert len(lines) == 1, describe(r)
    m = STATUS_RE.match(lines[0])
    assert m, lines[0]
    perf = {}
    for item in (m.group(3) or "").split():
        label, _, value = item.partition("=")
        perf[label] = value.split(";")
    return r.returncode, m.group(1), m.group(2), perf


def set_created(qdir, qid, when: int):
    env = Path(qdir) / "msg" / f"{qid}.env"
    text = re.sub(r"(?m)^created \d+$", f"created {when}", env.read_text())
    env.write_text(text)


# ---------------------------------------------------------------------------
# the metrics file
# ---------------------------------------------------------------------------

def test_numbers_match_the_queue_after_direct_sends(outbox, smarthost,
                                                    tmp_path):
    sh = smarthost()   # bad@ -> 550, later@ -> 451
    config, qdir, prom = mconfig(outbox, tmp_path, sh)
    t0 = time.time()
    runs = [([RCPT], EX_OK), ([RCPT, "second@example.com"], EX_OK),
            ([RCPT, "bad@example.com"], EX_NOUSER),
            (["later@example.com"], EX_OK)]
    for i, (rcpts, code) in enumerate(runs):
        r = outbox.run(["-f", SENDER, *rcpts], message(f"m{i}"),
                       config=config)
        assert r.returncode == code, describe(r)
    sh.wait_idle()
    m = read_metrics(prom)
    assert set(n for n, _ in m) == set(FAMILIES)
    host = sh.hostport
    assert per_host(m, "outbox_recipients_sent_total", host) == 4
    assert per_host(m, "outbox_recipients_bounced_total", host) == 1
    assert per_host(m, "outbox_recipients_deferred_total", host) == 1
    assert per_host(m, "outbox_rate_limit_waits_total", host) == 0
    last = per_host(m, "outbox_last_success_timestamp_seconds", host)
    assert int(t0) <= last <= time.time(), last
    assert sum(len(x.rcpt_tos) for x in sh.messages) == 4

    # the queue side: what is in msg/, and what mailq --json says
    ids = queued_ids(qdir)
    assert len(ids) == 1
    assert gauge(m, "outbox_queue_enabled") == 1
    assert gauge(m, "outbox_queue_messages") == 1
    assert gauge(m, "outbox_queue_bytes") == data_bytes(qdir) > 0
    assert 0 <= gauge(m, "outbox_queue_oldest_age_seconds") <= \
        time.time() - t0 + 1
    assert gauge(m, "outbox_failed_messages") == 0
    r = outbox.run(["-bp", "--json"], config=config)
    listed = json.loads(r.stdout)
    assert [e["id"] for e in listed] == ids
    assert sum(e["size"] for e in listed) == gauge(m, "outbox_queue_bytes")
    assert oct(prom.stat().st_mode & 0o777) == "0o644"


def test_counters_are_kept_across_processes_and_queue_runs(
        outbox, smarthost, closed_port, tmp_path):
    cfg_down, qdir, prom = mconfig(outbox, tmp_path, closed_port,
                                   name="down.conf")
    for i in range(2):
        r = outbox.run(["-f", SENDER, RCPT], message(f"down {i}"),
                       config=cfg_down)
        assert r.returncode == EX_OK, describe(r)
    m = read_metrics(prom)
    down = closed_port.hostport
    assert per_host(m, "outbox_recipients_deferred_total", down) == 2
    assert gauge(m, "outbox_queue_messages") == 2
    assert gauge(m, "outbox_queue_bytes") == data_bytes(qdir)
    stats = qdir / "stats"
    assert stats.is_file() and oct(stats.stat().st_mode & 0o777) == "0o600"

    sh = smarthost()
    cfg_up, _, _ = mconfig(outbox, tmp_path, sh, name="up.conf")
    inode = prom.stat().st_ino
    r = outbox.run(["-q"], config=cfg_up)   # nothing due yet
    assert r.returncode == EX_OK, describe(r)
    assert prom.stat().st_ino != inode, "a queue run rewrites the file"
    m = read_metrics(prom)
    assert per_host(m, "outbox_recipients_sent_total", sh.hostport) == 0
    assert per_host(m, "outbox_recipients_deferred_total", down) == 2

    r = outbox.run(["-qf"], config=cfg_up)
    assert r.returncode == EX_OK, describe(r)
    sh.wait_idle()
    assert len(sh.messages) == 2
    m = read_metrics(prom)
    # the smarthost no longer configured keeps its counters
    assert per_host(m, "outbox_recipients_deferred_total", down) == 2
    assert per_host(m, "outbox_recipients_sent_total", sh.hostport) == 2
    assert gauge(m, "outbox_queue_messages") == 0
    assert gauge(m, "outbox_queue_bytes") == 0
    assert gauge(m, "outbox_queue_oldest_age_seconds") == 0

    r = outbox.run(["-f", SENDER, RCPT], message("direct"), config=cfg_up)
    assert r.returncode == EX_OK, describe(r)
    m = read_metrics(prom)
    assert per_host(m, "outbox_recipients_sent_total", sh.hostport) == 3
    assert per_host(m, "outbox_recipients_deferred_total", down) == 2


def test_expiry_counts_as_bounced_and_shows_in_failed(outbox, smarthost,
                                                      tmp_path):
    sh = smarthost()
    config, qdir, prom = mconfig(outbox, tmp_path, sh, queue_lifetime="1s")
    r = outbox.run(["-f", SENDER, "later@example.com"], message("expires"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    time.sleep(1.2)
    r = outbox.run(["-qf"], config=config)
    assert r.returncode == EX_OK, describe(r)
    sh.wait_idle()
    m = read_metrics(prom)
    host = sh.hostport
    assert per_host(m, "outbox_recipients_deferred_total", host) == 1
    assert per_host(m, "outbox_recipients_bounced_total", host) == 1
    # the notification to the sender went out in the same run
    assert per_host(m, "outbox_recipients_sent_total", host) == 1
    assert [x.mail_from in ("", "<>") for x in sh.messages] == [True]
    assert gauge(m, "outbox_failed_messages") == \
        len(queued_ids(qdir, "failed")) == 1
    assert gauge(m, "outbox_queue_messages") == 0
    code, state, text, perf = check(outbox, config)
    assert (code, state) == (OK, "OK"), text
    assert perf["failed"] == ["1"] and "1 in failed/" in text, text


def test_file_is_replaced_atomically_while_senders_run(outbox, smarthost,
                                                       tmp_path):
    sh = smarthost()
    config, qdir, prom = mconfig(outbox, tmp_path, sh)
    r = outbox.run(["-f", SENDER, RCPT], message("first"), config=config)
    assert r.returncode == EX_OK, describe(r)
    # held open, the first file's inode cannot be reused by a later one
    first = open(prom, "rb")
    first_text = first.read()
    snapshots, stop = [], threading.Event()

    def reader():
        # every read must find a whole file; distinct ones are kept
        while not stop.is_set() and len(snapshots) < 5000:
            try:
                text = prom.read_text()
            except FileNotFoundError:
                text = None
            if not snapshots or text != snapshots[-1]:
                snapshots.append(text)

    def send(i):
        return outbox.run(["-f", SENDER, RCPT], message(f"burst {i}"),
                          config=config, timeout=60)

    t = threading.Thread(target=reader)
    t.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            results = list(ex.map(send, range(18)))
    finally:
        stop.set()
        t.join(30)
    assert all(r.returncode == EX_OK for r in results), \
        [describe(r) for r in results if r.returncode][:1]
    assert None not in snapshots, "the file was missing at some moment"
    assert len(snapshots) > 1
    sent_seen = []
    for text in snapshots:
        m = parse_metrics(text)      # each one whole: every family there
        assert set(n for n, _ in m) == set(FAMILIES)
        sent_seen.append(per_host(m, "outbox_recipients_sent_total",
                                  sh.hostport))
    assert sent_seen == sorted(sent_seen), "a counter stepped back"
    # senders that found every connection slot taken queued their
    # messages; the processes holding the connections send them after
    # their callers returned, and count them then
    deadline = time.monotonic() + 60
    while True:
        final = read_metrics(prom)
        sent = per_host(final, "outbox_recipients_sent_total", sh.hostport)
        if sent >= 19 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sent == 19, final
    assert len(sh.messages) == 19
    # replaced, never edited in place: the first file is whole and gone
    st = os.fstat(first.fileno())
    first.seek(0)
    assert first.read() == first_text and st.st_nlink == 0
    assert prom.stat().st_ino != st.st_ino
    first.close()
    # no temporary file left beside it (node_exporter reads only *.prom)
    assert sorted(p.name for p in prom.parent.iterdir()) == ["outbox.prom"]


def test_queue_off_file_says_so_and_nothing_else(outbox, smarthost,
                                                 tmp_path):
    sh = smarthost()
    prom = tmp_path / "outbox.prom"
    config = outbox.write_config(tmp_path, sh, queue="off",
                                 metrics_file=str(prom))
    r = outbox.run(["-f", SENDER, RCPT], message("no queue"), config=config)
    assert r.returncode == EX_OK, describe(r)
    m = read_metrics(prom)
    assert m == {("outbox_queue_enabled", None): 0.0}


def test_environment_variable_sets_the_file(outbox, smarthost, tmp_path):
    sh = smarthost()
    config, qdir, prom = mconfig(outbox, tmp_path, sh, metrics_file=None)
    other = tmp_path / "env.prom"
    r = outbox.run(["-f", SENDER, RCPT], message("env"), config=config,
                   env={"OUTBOX_METRICS_FILE": str(other)})
    assert r.returncode == EX_OK, describe(r)
    assert not prom.exists()
    m = read_metrics(other)
    assert per_host(m, "outbox_recipients_sent_total", sh.hostport) == 1
    r = outbox.run(["-f", SENDER, RCPT], message("env"), config=config,
                   env={"OUTBOX_METRICS_FILE": "relative.prom"})
    assert r.returncode == 78 and b"OUTBOX_METRICS_FILE" in r.stderr


def test_without_metrics_file_nothing_is_counted(outbox, smarthost,
                                                 tmp_path):
    sh = smarthost()
    config, qdir, prom = mconfig(outbox, tmp_path, sh, metrics_file=None)
    r = outbox.run(["-f", SENDER, "later@example.com"], message("plain"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    r = outbox.run(["-qf"], config=config)
    assert r.returncode == EX_OK, describe(r)
    assert not (qdir / "stats").exists() and not prom.exists()


def test_symlink_in_place_of_the_file_is_refused(outbox, smarthost,
                                                 tmp_path):
    sh = smarthost()
    config, qdir, prom = mconfig(outbox, tmp_path, sh)
    target = tmp_path / "elsewhere"
    target.write_text("keep me\n")
    prom.symlink_to(target)
    r = outbox.run(["-f", SENDER, RCPT], message("linked"), config=config)
    assert r.returncode == EX_OK, describe(r)
    sh.wait_idle()
    assert len(sh.messages) == 1, "watching must not stop mail"
    assert prom.is_symlink() and target.read_text() == "keep me\n"
    err = r.stderr.decode()
    assert f"metrics-file {prom}" in err and "not written" in err, err


# ---------------------------------------------------------------------------
# --queue-check
# ---------------------------------------------------------------------------

def test_check_of_a_queue_not_created_yet_is_ok(outbox, closed_port,
                                                tmp_path):
    config, qdir, _ = mconfig(outbox, tmp_path, closed_port)
    code, state, text, perf = check(outbox, config)
    assert (code, state) == (OK, "OK"), text
    assert text == "0 messages"
    assert perf == {"messages": ["0", "10", "100"],
                    "oldest": ["0s", "3600", "86400"],
                    "failed": ["0"], "bytes": ["0B"]}
    assert not qdir.exists(), "a check must not create the queue"


def test_check_count_thresholds(outbox, closed_port, tmp_path):
    config, qdir, _ = mconfig(outbox, tmp_path, closed_port)
    for i in range(3):
        r = outbox.run(["-odq", "-f", SENDER, RCPT], message(f"q{i}"),
                       config=config)
        assert r.returncode == EX_OK, describe(r)
    size = data_bytes(qdir)
    code, state, text, perf = check(outbox, config)
    assert (code, state) == (OK, "OK"), text
    assert text.startswith("3 messages, oldest "), text
    assert perf["messages"] == ["3", "10", "100"]
    assert perf["bytes"] == [f"{size}B"] and perf["failed"] == ["0"]
    code, state, text, perf = check(outbox, config, "--warn-count", "2")
    assert (code, state) == (WARNING, "WARNING"), text
    assert "3 messages (over 2)" in text and perf["messages"][1] == "2"
    code, state, text, _ = check(outbox, config, "--warn-count", "1",
                                 "--crit-count", "2")
    assert (code, state) == (CRITICAL, "CRITICAL"), text
    # a value equal to the threshold is not over it
    code, state, text, _ = check(outbox, config, "--warn-count", "3",
                                 "--crit-count", "3")
    assert (code, state) == (OK, "OK"), text


def test_check_age_thresholds(outbox, closed_port, tmp_path):
    config, qdir, _ = mconfig(outbox, tmp_path, closed_port)
    r = outbox.run(["-odq", "-f", SENDER, RCPT], message("old"),
                   config=config)
    assert r.returncode == EX_OK, describe(r)
    (qid,) = queued_ids(qdir)
    set_created(qdir, qid, int(time.time()) - 7200)
    code, state, text, perf = check(outbox, config)
    assert (code, state) == (WARNING, "WARNING"), text
    assert "oldest 2h (over 1h)" in text, text
    age = int(perf["oldest"][0].rstrip("s"))
    assert 7200 <= age <= 7230 and perf["oldest"][1:] == ["3600", "86400"]
    code, state, text, perf = check(outbox, config, "--crit-age", "90m")
    assert (code, state) == (CRITICAL, "CRITICAL"), text
    assert perf["oldest"][2] == "5400"
    code, state, text, _ = check(outbox, config, "--warn-age", "3h",
                                 "--crit-age", "1d")
    assert (code, state) == (OK, "OK"), text


def test_check_unknown(outbox, closed_port, smarthost, tmp_path):
    config, qdir, _ = mconfig(outbox, tmp_path, closed_port)
    cases = [(["--warn-age", "soon"], config),
             (["--crit-count", "-1"], config),
             (["--no-such-option"], config),
             (["extra-argument"], config),
             ([], tmp_path / "missing.conf")]
    for args, cfg in cases:
        code, state, text, _ = check(outbox, cfg, *args)
        assert (code, state) == (UNKNOWN, "UNKNOWN"), (args, text)
    off = outbox.write_config(tmp_path, closed_port, name="off.conf",
                              queue="off")
    code, state, text, _ = check(outbox, off)
    assert (code, state, text) == (UNKNOWN, "UNKNOWN", "the queue is off")
    # a queue that cannot be used: here a symbolic link
    real = tmp_path / "real-queue"
    real.mkdir(mode=0o700)
    link = tmp_path / "linked-queue"
    link.symlink_to(real)
    linked = outbox.write_config(tmp_path, closed_port, name="link.conf",
                                 queue=str(link))
    code, state, text, _ = check(outbox, linked)
    assert (code, state) == (UNKNOWN, "UNKNOWN") and "symbolic" in text
    # the thresholds belong to --queue-check
    r = outbox.run(["--warn-age", "1h", "-q"], config=config)
    assert r.returncode == EX_USAGE, describe(r)


# ---------------------------------------------------------------------------
# the set-group-ID install
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def setgid_install():
    from test_hardening import SetgidRoot, _nosuid
    if os.geteuid() != 0:
        pytest.skip("the setgid install needs root (useradd, chown)")
    if shutil.which("setpriv") is None or shutil.which("useradd") is None:
        pytest.skip("setpriv/useradd not available")
    if _nosuid(Path(tempfile.gettempdir())):
        pytest.skip("the temporary directory is mounted nosuid")
    if os.environ.get("OUTBOX_SANITIZE") == "1":
        pytest.skip("LeakSanitizer cannot run in a set-group-ID process")
    root = SetgidRoot()
    try:
        yield root
    finally:
        root.close()


@pytest.fixture
def sg(setgid_install, smarthost, tls_certs):
    sh = smarthost(users={"user": "monitoring-Secret-3f1"})
    setgid_install.reset(sh, tls_certs.ca_file)
    setgid_install.smarthost = sh
    textfile = setgid_install.dir / "textfile"
    if textfile.is_symlink() or textfile.is_file():
        textfile.unlink()
    shutil.rmtree(textfile, ignore_errors=True)
    textfile.mkdir()
    setgid_install.textfile = textfile
    setgid_install.prom = textfile / "outbox.prom"
    with open(setgid_install.etc / "outbox.conf", "a") as f:
        f.write(f"metrics-file {setgid_install.prom}\n")
    return setgid_install


def _as_user(sg, subject):
    r = sg.run([sg.bin, "you@example.com"], message(subject))
    assert r.returncode == EX_OK, r.stderr
    return r


def _log(sg):
    return sg.log.read_text() if sg.log.exists() else ""


def test_setgid_user_writes_into_a_directory_of_the_group(sg):
    gid = grp.getgrnam(sg.group).gr_gid
    os.chown(sg.textfile, 0, gid)
    os.chmod(sg.textfile, 0o2775)
    _as_user(sg, "group dir")
    st = sg.prom.stat()
    assert st.st_mode & 0o777 == 0o644
    # a process that is not root cannot give a file away: it is the user's
    assert st.st_uid == sg.uid, st
    m = read_metrics(sg.prom)
    host = sg.smarthost.hostport
    assert per_host(m, "outbox_recipients_sent_total", host) == 1
    # the group may read the queue: the user's check works too
    r = sg.run([sg.bin, "--queue-check"])
    assert r.returncode == OK, r.stdout + r.stderr
    assert r.stdout.startswith(b"OUTBOX QUEUE OK - 0 messages")


def test_setgid_user_leaves_a_root_only_directory_to_root(sg):
    os.chmod(sg.textfile, 0o755)         # root:root, only root writes
    _as_user(sg, "root-only dir")
    assert not sg.prom.exists()
    assert "metrics-file" not in _log(sg), "no complaint: this is by design"
    r = subprocess_root(sg, ["-q"])
    assert r.returncode == EX_OK, r.stderr
    st = sg.prom.stat()
    assert st.st_uid == 0
    m = read_metrics(sg.prom)
    # the user's delivery was counted in the queue, and root shows it
    host = sg.smarthost.hostport
    assert per_host(m, "outbox_recipients_sent_total", host) == 1


def subprocess_root(sg, args):
    import subprocess
    return subprocess.run([str(sg.bin), *args], capture_output=True,
                          timeout=60, cwd="/",
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})


@pytest.mark.parametrize("plant", ["users-dir", "public-sticky", "symlink"])
def test_setgid_user_does_not_write_where_users_could_steer_it(sg, plant):
    gid = grp.getgrnam(sg.group).gr_gid
    victim = sg.spool / "victim"
    if plant == "users-dir":
        os.chown(sg.textfile, sg.uid, sg.uid)
        os.chmod(sg.textfile, 0o755)
    elif plant == "public-sticky":
        os.chmod(sg.textfile, 0o1777)
    else:
        os.chown(sg.textfile, 0, gid)
        os.chmod(sg.textfile, 0o2775)
        victim.write_text("queue-side file\n")
        sg.prom.symlink_to(victim)
    _as_user(sg, f"plant {plant}")
    sh = sg.smarthost
    sh.wait_idle()
    assert len(sh.messages) == 1, "watching must not stop mail"
    if plant == "symlink":
        assert sg.prom.is_symlink()
        assert victim.read_text() == "queue-side file\n"
    else:
        assert not sg.prom.exists()
    log = _log(sg)
    assert f"metrics-file {sg.prom}" in log and "not written" in log, log
    assert [p.name for p in sg.textfile.iterdir()] == \
        (["outbox.prom"] if plant == "symlink" else [])


def test_rate_limit_waits_are_counted(outbox, smarthost, tmp_path):
    """Each message a rate limit holds back counts once, in direct sends
    and in queue runs alike."""
    sh = smarthost()
    config, qdir, prom = mconfig(outbox, tmp_path, sh, rate_limit="1/1h")
    for i in range(3):
        r = outbox.run(["-f", SENDER, RCPT], message(f"w{i}"), config=config)
        assert r.returncode == EX_OK, describe(r)
    assert sh.wait_idle()
    assert len(sh.messages) == 1 and len(queued_ids(qdir)) == 2
    m = read_metrics(prom)
    host = sh.hostport
    assert per_host(m, "outbox_rate_limit_waits_total", host) == 2
    r = outbox.run(["-q"], config=config)
    assert r.returncode == EX_OK, describe(r)
    m = read_metrics(prom)
    assert per_host(m, "outbox_rate_limit_waits_total", host) == 4
    assert per_host(m, "outbox_recipients_sent_total", host) == 1
