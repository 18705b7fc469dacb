"""make install / uninstall / install-sendmail-links into a temporary
prefix: the systemd units and the cron file name the installed paths
(and pass systemd-analyze verify), bash completion is installed, and
uninstall removes what install put in place and puts back what the
sendmail links replaced - a package's file through dpkg-divert, so that
the package's upgrades do not overwrite the link.
"""

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT

UNITS = ("outbox-queue.service", "outbox-queue.timer")


def make(*args, env=None):
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C",
                        str(REPO_ROOT), *args], capture_output=True,
                       text=True, timeout=300,
                       env=dict(os.environ, **(env or {})))
    return r


def installed(prefix: Path):
    return sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*")
                  if p.is_file() or p.is_symlink())


@pytest.fixture
def prefix(tmp_path):
    p = tmp_path / "prefix"
    p.mkdir()
    return p


def paths(prefix):
    return [f"PREFIX={prefix}", f"SYSCONFDIR={prefix}/etc",
            f"QUEUEDIR={prefix}/spool"]


def test_install_puts_units_cron_and_completion_at_the_prefix(prefix):
    r = make("install", *paths(prefix))
    assert r.returncode == 0, r.stdout + r.stderr
    files = installed(prefix)
    for f in ("sbin/outbox", "share/man/man8/outbox.8",
              "share/man/man5/outbox.conf.5", "etc/outbox.conf.example",
              "lib/systemd/system/outbox-queue.service",
              "lib/systemd/system/outbox-queue.timer",
              "share/doc/outbox/outbox.cron",
              "share/bash-completion/completions/outbox"):
        assert f in files, files
    unitdir = prefix / "lib/systemd/system"
    service = (unitdir / "outbox-queue.service").read_text()
    assert f"ExecStart={prefix}/sbin/outbox -q" in service
    assert f"ConditionPathExists={prefix}/etc/outbox.conf" in service
    assert f"ReadWritePaths=-{prefix}/spool" in service
    assert "/usr/sbin" not in service and "/var/spool/outbox" not in service
    cron = (prefix / "share/doc/outbox/outbox.cron").read_text()
    assert f"root\t{prefix}/sbin/outbox -q" in cron, cron
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed: units not verified")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        *(str(unitdir / u) for u in UNITS)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_uninstall_removes_what_install_put_and_restores_the_mta(prefix):
    mta = prefix / "sbin" / "sendmail"
    mta.parent.mkdir(parents=True)
    mta.write_text("#!/bin/sh\necho the old MTA\n")
    mailq = prefix / "bin" / "mailq"
    links = f"SENDMAIL_LINKS={mta} {mailq}"
    assert make("install", *paths(prefix)).returncode == 0
    r = make("install-sendmail-links", *paths(prefix), links)
    # refused, not silently: make's status for a failed recipe is 2, and
    # the existing MTA is left as it was
    assert r.returncode == 2 and "FORCE=1" in r.stderr, r.stdout + r.stderr
    assert not mta.is_symlink()
    assert mta.read_text() == "#!/bin/sh\necho the old MTA\n"
    r = make("install-sendmail-links", *paths(prefix), links, "FORCE=1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.readlink(mta) == f"{prefix}/sbin/outbox"
    assert (prefix / "sbin/sendmail.pre-outbox").read_text().startswith(
        "#!/bin/sh")
    conf = prefix / "etc" / "outbox.conf"
    conf.write_text("smarthost mail.example.com\n")
    r = make("uninstall", *paths(prefix), links)
    assert r.returncode == 0, r.stdout + r.stderr
    assert installed(prefix) == ["etc/outbox.conf", "sbin/sendmail"]
    assert "the old MTA" in mta.read_text()
    assert "kept:" in r.stdout


DPKG_WAIT = 300     # seconds: another suite's dpkg work takes a few


@contextlib.contextmanager
def host_dpkg_lock():
    """Held while this suite installs, diverts and purges its test package.
    dpkg takes its database lock without waiting, so two suites on one
    host doing this at once fail each other's dpkg -i; they queue here."""
    d = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")
    fd = os.open(d / "outbox-tests-dpkg.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + DPKG_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{d}/outbox-tests-dpkg.lock held for "
                                f"{DPKG_WAIT}s by another run")
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)


def dpkg(*args):
    """dpkg ARGS, waiting (bounded) while another program (apt, another
    suite's dpkg-divert) holds dpkg's lock; raises on any other failure."""
    deadline = time.monotonic() + DPKG_WAIT
    while True:
        r = subprocess.run(["dpkg", *args], capture_output=True, text=True,
                           timeout=DPKG_WAIT)
        if r.returncode == 0:
            return r
        if "lock" not in r.stderr or time.monotonic() > deadline:
            raise AssertionError(f"dpkg {' '.join(args)}: exit "
                                 f"{r.returncode}\n{r.stderr}")
        time.sleep(0.2)


def _have_dpkg_root():
    return os.geteuid() == 0 and shutil.which("dpkg-deb") and \
        shutil.which("dpkg-divert")


@pytest.mark.skipif(not _have_dpkg_root(), reason="needs root and dpkg")
def test_a_packaged_mta_file_is_diverted_and_given_back(prefix, tmp_path):
    """A file that belongs to a package is moved with dpkg-divert: the
    package's upgrade then writes NAME.pre-outbox, not over the link; and
    uninstall gives the package its file back."""
    pkg = f"outbox-divert-test-{secrets.token_hex(5)}"
    where = Path(f"/opt/{pkg}")
    root = tmp_path / "pkgroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {pkg}\nVersion: 1\nArchitecture: all\n"
        "Maintainer: outbox tests <tests@example.org>\n"
        "Description: a file for the dpkg-divert test\n")
    (root / where.relative_to("/")).mkdir(parents=True)
    (root / where.relative_to("/") / "sendmail").write_text("packaged\n")
    deb = tmp_path / f"{pkg}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root),
                    str(deb)], check=True, capture_output=True)
    with host_dpkg_lock():
        _divert_and_give_back(pkg, where, deb, prefix)


def _divert_and_give_back(pkg, where, deb, prefix):
    dpkg("-i", str(deb))
    link = where / "sendmail"
    try:
        assert make("install", *paths(prefix)).returncode == 0
        r = make("install-sendmail-links", *paths(prefix),
                 f"SENDMAIL_LINKS={link}", "FORCE=1")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "dpkg-divert" in r.stdout
        assert os.readlink(link) == f"{prefix}/sbin/outbox"
        r = subprocess.run(["dpkg-divert", "--listpackage", str(link)],
                           capture_output=True, text=True)
        assert r.stdout.strip() == "LOCAL", r.stdout
        # the package's upgrade: its file goes to the diverted name
        dpkg("-i", str(deb))
        assert os.readlink(link) == f"{prefix}/sbin/outbox"
        assert Path(f"{link}.pre-outbox").read_text() == "packaged\n"
        r = make("uninstall", *paths(prefix), f"SENDMAIL_LINKS={link}")
        assert r.returncode == 0, r.stdout + r.stderr
        assert not link.is_symlink() and link.read_text() == "packaged\n"
        r = subprocess.run(["dpkg-divert", "--listpackage", str(link)],
                           capture_output=True, text=True)
        assert r.stdout.strip() == "", r.stdout
    finally:
        subprocess.run(["dpkg-divert", "--local", "--rename", "--remove",
                        str(link)], capture_output=True)
        dpkg("--purge", pkg)
        shutil.rmtree(where, ignore_errors=True)


def test_bash_completion_knows_every_option_of_the_usage(outbox):
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    comp = REPO_ROOT / "conf" / "outbox.bash-completion"
    script = (f". {comp}\n"
              "COMP_WORDS=(outbox --rem); COMP_CWORD=1; _outbox\n"
              "echo \"remove:${COMPREPLY[*]}\"\n"
              "COMP_WORDS=(outbox -od); COMP_CWORD=1; _outbox\n"
              "echo \"od:${COMPREPLY[*]}\"\n"
              "COMP_WORDS=(outbox -); COMP_CWORD=1; _outbox\n"
              "echo \"all:${COMPREPLY[*]}\"\n")
    r = subprocess.run(["bash", "--norc", "-c", script], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    out = dict(line.split(":", 1) for line in r.stdout.splitlines())
    assert out["remove"] == "--remove"
    assert sorted(out["od"].split()) == ["-odb", "-odi", "-odq"]
    offered = set(out["all"].split())
    usage = outbox.run(["--help"]).stdout.decode() + \
        outbox.run(["--help"]).stderr.decode()

    for opt in set(re.findall(r"(?<![\w-])(--?[a-zA-Z](?:[a-zA-Z-]*[a-zA-Z])?)",
                              usage)):
        if opt in ("-qINTERVAL",):
            continue
        assert opt in offered, f"{opt} from --help is not completed"
