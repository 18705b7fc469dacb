"""The trust-anchor cache (issue 17): without ca-file, outbox remembers the
system store's certificate that anchored a smarthost's chain in
queue/trust-HOST-PORT and later loads only that file.

The "system store" here is a bundle file of the test's own, named by
OUTBOX_CA_BUNDLE (honoured when outbox is not privileged). Real aiosmtpd
smarthosts with the certificates of conftest's tls_certs.
"""
import os
from pathlib import Path

import pytest

MSG = b"Subject: trust\r\n\r\nbody\r\n"


@pytest.fixture
def store(tmp_path, tls_certs):
    """A test system store holding an unrelated CA and the test CA."""
    path = tmp_path / "store.pem"
    path.write_bytes(tls_certs.untrusted_ca_file.read_bytes() +
                     tls_certs.ca_file.read_bytes())
    return path


def prepare(outbox, tmp_path, sh, store):
    queue = tmp_path / "queue"
    cfg = outbox.write_config(tmp_path, sh, ca_file=None, queue=str(queue))
    env = {"OUTBOX_CA_BUNDLE": str(store)}

    def send(*args):
        return outbox.run(["-v", *args, "rcpt@example.com"], MSG,
                          config=cfg, env=env)

    def check():
        return outbox.run(["--check"], config=cfg, env=env)

    return queue / f"trust-{sh.host}-{sh.port}", send, check


def err(r):
    return r.stderr.decode(errors="replace")


def certs_in(path: Path):
    return path.read_bytes().count(b"-----BEGIN CERTIFICATE-----")


def test_first_send_builds_the_cache_the_second_uses_it(
        outbox, smarthost, tmp_path, store, tls_certs):
    sh = smarthost()
    cache, send, check = prepare(outbox, tmp_path, sh, store)

    r = send()
    assert r.returncode == 0, err(r)
    assert f"trusting system store {store}" in err(r)
    assert "anchors cached" in err(r)
    assert cache.is_file()
    assert certs_in(cache) == 1       # the test CA alone, not the store
    ca_body = b"".join(tls_certs.ca_file.read_bytes().split(b"\n")[1:-2])
    assert ca_body in cache.read_bytes().replace(b"\n", b"")
    assert cache.stat().st_mode & 0o077 == 0

    r = send()
    assert r.returncode == 0, err(r)
    assert f"trusting cached anchors ({cache})" in err(r)
    assert "anchors cached" not in err(r)
    assert "found 1 certificates" in err(r)   # libcurl loaded the cache only
    assert len(sh.messages) == 2

    r = check()
    assert r.returncode == 0, err(r)
    assert f"trust:        cached anchors ({cache})" in r.stdout.decode()


def test_check_without_a_cache_says_so_and_builds_it(
        outbox, smarthost, tmp_path, store):
    sh = smarthost()
    cache, _, check = prepare(outbox, tmp_path, sh, store)
    r = check()                 # no queue directory yet: nowhere to write
    assert r.returncode == 0, err(r)
    assert f"trust:        system store {store}\n" in r.stdout.decode()
    cache.parent.mkdir(mode=0o700)
    r = check()
    assert r.returncode == 0, err(r)
    assert (f"trust:        system store {store}; anchors cached"
            in r.stdout.decode())
    assert cache.is_file()


def test_a_ca_removed_from_the_store_is_no_longer_trusted(
        outbox, smarthost, tmp_path, store, tls_certs):
    sh = smarthost()
    cache, send, _ = prepare(outbox, tmp_path, sh, store)
    assert send().returncode == 0
    assert cache.is_file()

    # the store update: the test CA is gone
    store.write_bytes(tls_certs.untrusted_ca_file.read_bytes())
    r = send()
    assert "trusting cached anchors" not in err(r)
    assert f"trusting system store {store}" in err(r)
    assert "certificate not trusted" in err(r)
    assert len(sh.messages) == 1          # only the first one
    # an identity change by the same size and content is a change too
    store.write_bytes(tls_certs.ca_file.read_bytes())
    assert send().returncode == 0
    st = store.stat()
    os.utime(store, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    r = send()
    assert "trusting cached anchors" not in err(r)
    assert r.returncode == 0, err(r)


def test_wrong_name_is_refused_without_the_cache(
        outbox, smarthost, tmp_path, store):
    sh = smarthost(wrong_host_cert=True)
    cache, send, _ = prepare(outbox, tmp_path, sh, store)
    r = send()
    assert "certificate not trusted" in err(r)
    assert not sh.messages
    assert not cache.exists()


def test_wrong_name_is_refused_with_the_cache(
        outbox, smarthost, tmp_path, store):
    good = smarthost()
    cache, send, _ = prepare(outbox, tmp_path, good, store)
    assert send().returncode == 0
    assert cache.is_file()
    port = good.port
    good.stop()
    # the same host and port now serve a certificate for other.invalid
    # from the same (cached) CA: the chain is fine, the name is not
    bad = smarthost(wrong_host_cert=True, port=port)
    r = send()
    e = err(r)
    assert f"trusting cached anchors ({cache})" in e
    assert f"verification failed; now trusting system store {store}" in e
    assert "certificate not trusted" in e
    assert not bad.messages
    # tried with the whole store once more, then given up: 2 connections
    assert bad.connections == 2


def test_a_damaged_cache_is_ignored_and_rebuilt(
        outbox, smarthost, tmp_path, store):
    sh = smarthost()
    cache, send, _ = prepare(outbox, tmp_path, sh, store)
    assert send().returncode == 0
    good = cache.read_bytes()

    cache.write_bytes(b"garbage\n")
    r = send()
    assert r.returncode == 0, err(r)
    assert "trusting cached anchors" not in err(r)
    assert "anchors cached" in err(r)
    assert cache.read_bytes().count(b"BEGIN CERTIFICATE") == 1

    # the right first line, a broken certificate: libcurl cannot use it,
    # the whole store is tried before anything is reported
    first = good.split(b"\n", 1)[0]
    cache.write_bytes(first + b"\n-----BEGIN CERTIFICATE-----\nAAAA\n"
                      b"-----END CERTIFICATE-----\n")
    r = send()
    assert r.returncode == 0, err(r)
    assert "trusting cached anchors" in err(r)
    assert "verification failed; now trusting system store" in err(r)
    assert "anchors cached" in err(r)
    assert cache.read_bytes() == good
    assert len(sh.messages) == 3

    r = send()                            # and the rebuilt one is used
    assert f"trusting cached anchors ({cache})" in err(r)


def test_a_cache_for_another_store_is_not_used(
        outbox, smarthost, tmp_path, store, tls_certs):
    sh = smarthost()
    cache, send, _ = prepare(outbox, tmp_path, sh, store)
    assert send().returncode == 0
    # the unrelated CA in the cache, keyed to this store: its chain does
    # not verify with it, and the store is asked before failing
    first = cache.read_bytes().split(b"\n", 1)[0]
    cache.write_bytes(first + b"\n" + tls_certs.untrusted_ca_file.read_bytes())
    r = send()
    assert r.returncode == 0, err(r)
    assert "verification failed; now trusting system store" in err(r)
    assert certs_in(cache) == 1
    assert tls_certs.untrusted_ca_file.read_bytes() not in cache.read_bytes()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_foreign_owned_cache_is_ignored_and_rebuilt(
        outbox, smarthost, tmp_path, store):
    sh = smarthost()
    cache, send, _ = prepare(outbox, tmp_path, sh, store)
    assert send().returncode == 0
    os.chown(cache, 65534, 65534)
    r = send()
    assert r.returncode == 0, err(r)
    assert "trusting cached anchors" not in err(r)
    assert "anchors cached" in err(r)
    assert cache.stat().st_uid == os.geteuid()
    r = send()
    assert "trusting cached anchors" in err(r)


def test_a_group_writable_or_linked_cache_is_ignored(
        outbox, smarthost, tmp_path, store):
    sh = smarthost()
    cache, send, _ = prepare(outbox, tmp_path, sh, store)
    assert send().returncode == 0
    os.chmod(cache, 0o620)
    r = send()
    assert "trusting cached anchors" not in err(r)
    assert cache.stat().st_mode & 0o077 == 0      # rebuilt
    target = tmp_path / "elsewhere"
    target.write_bytes(cache.read_bytes())
    cache.unlink()
    cache.symlink_to(target)
    r = send()
    assert r.returncode == 0, err(r)
    assert "trusting cached anchors" not in err(r)
    assert not cache.is_symlink()
    assert len(sh.messages) == 3


def test_ca_file_and_no_queue_use_no_cache(
        outbox, smarthost, tmp_path, store):
    sh = smarthost()
    env = {"OUTBOX_CA_BUNDLE": str(store)}
    cfg = outbox.write_config(tmp_path, sh, queue=str(tmp_path / "q"))
    r = outbox.run(["-v", "rcpt@example.com"], MSG, config=cfg, env=env)
    assert r.returncode == 0, err(r)
    assert "trusting" not in err(r)
    assert not list((tmp_path / "q").glob("trust-*"))
    cfg = outbox.write_config(tmp_path, sh, ca_file=None, queue="off",
                              name="noqueue.conf")
    r = outbox.run(["-v", "rcpt@example.com"], MSG, config=cfg, env=env)
    assert r.returncode == 0, err(r)
    assert "trusting" not in err(r)
    assert "found 2 certificates" in err(r)     # the test store, whole


def test_later_sessions_of_one_run_load_the_cache_just_written(
        outbox, smarthost, tmp_path, store):
    """Nine refused messages in one queue run: after 8 refusals the run
    takes a new session, which loads the anchors the first one cached."""
    sh = smarthost(rcpt_replies={"bad@example.com": "550 5.1.1 no"})
    cache, _, _ = prepare(outbox, tmp_path, sh, store)
    cfg = tmp_path / "outbox.conf"
    env = {"OUTBOX_CA_BUNDLE": str(store)}
    for i in range(9):
        r = outbox.run(["-odq", "bad@example.com"], MSG, config=cfg, env=env)
        assert r.returncode == 0, err(r)
    r = outbox.run(["-v", "-q"], config=cfg, env=env, timeout=120)
    assert r.returncode == 0, err(r)
    e = err(r)
    assert e.count(f"trusting system store {store}") == 1, e
    assert e.count("anchors cached") == 1, e
    assert e.count(f"trusting cached anchors ({cache})") >= 1, e
    assert sh.connections >= 2


# ---------------------------------------------------------------------------
# the set-group-ID install: only root's cache, written by root alone
# ---------------------------------------------------------------------------

def _setgid_class():
    from test_hardening import SetgidRoot

    class TrustRoot(SetgidRoot):
        """The setgid install built with CA_BUNDLE = a test store."""

        def _build(self):
            self.store = self.dir / "store.pem"
            self.MAKE_VARS = (f"CA_BUNDLE={self.store}",)
            super()._build()

        def without_ca_file(self):
            conf = self.etc / "outbox.conf"
            lines = conf.read_text().splitlines(keepends=True)
            conf.write_text("".join(l for l in lines
                                    if not l.startswith("ca-file")))

    return TrustRoot


@pytest.fixture(scope="module")
def trust_root():
    from test_hardening import _nosuid
    import shutil
    import tempfile
    if os.geteuid() != 0:
        pytest.skip("the setgid install needs root (useradd, chown)")
    if shutil.which("setpriv") is None or shutil.which("useradd") is None:
        pytest.skip("setpriv/useradd not available")
    if _nosuid(Path(tempfile.gettempdir())):
        pytest.skip("the temporary directory is mounted nosuid")
    if os.environ.get("OUTBOX_SANITIZE") == "1":
        pytest.skip("LeakSanitizer cannot run in a set-group-ID process")
    root = _setgid_class()()
    try:
        yield root
    finally:
        root.close()


def test_setgid_caller_never_writes_and_uses_only_roots_cache(
        trust_root, smarthost, tls_certs, tmp_path):
    import grp
    import subprocess
    sh = smarthost()
    trust_root.reset(sh, tls_certs.ca_file)
    trust_root.without_ca_file()
    trust_root.store.write_bytes(tls_certs.untrusted_ca_file.read_bytes() +
                                 tls_certs.ca_file.read_bytes())
    os.chmod(trust_root.store, 0o644)
    cache = trust_root.spool / f"trust-{sh.host}-{sh.port}"
    # a store of the caller's choosing is not honoured with privileges
    bogus = tmp_path / "bogus.pem"
    bogus.write_bytes(tls_certs.untrusted_ca_file.read_bytes())
    os.chmod(tmp_path, 0o755)
    os.chmod(bogus, 0o644)
    env = {"OUTBOX_CA_BUNDLE": str(bogus)}

    r = trust_root.run([trust_root.bin, "-v", "you@example.com"], MSG, env=env)
    assert r.returncode == 0, r.stderr
    e = err(r)
    assert f"trusting system store {trust_root.store}" in e
    assert "no cache (not root)" in e
    assert not cache.exists()                  # the caller never writes it
    assert len(sh.messages) == 1

    # root's send writes it: root's, 0640, the queue's group
    r = subprocess.run([str(trust_root.bin), "you@example.com"], input=MSG,
                       capture_output=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    st = cache.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o640)
    assert st.st_gid == grp.getgrnam(trust_root.group).gr_gid

    r = trust_root.run([trust_root.bin, "-v", "you@example.com"], MSG)
    assert r.returncode == 0, r.stderr
    assert f"trusting cached anchors ({cache})" in err(r)

    # a cache that is not root's is not used
    os.chown(cache, trust_root.uid, st.st_gid)
    r = trust_root.run([trust_root.bin, "-v", "you@example.com"], MSG)
    assert r.returncode == 0, r.stderr
    assert "trusting cached anchors" not in err(r)
    assert cache.stat().st_uid == trust_root.uid     # and not replaced
    assert len(sh.messages) == 4
