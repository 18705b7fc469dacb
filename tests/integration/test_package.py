"""The Debian packages of `make deb` (build/deb/): control fields, files,
links and modes, the maintainer scripts, the packaged binary, lintian.

Opt-in, because it needs the packages built first: `make check-package`
builds them and runs this with OUTBOX_PACKAGE_TEST=1 (OUTBOX_DEB_DIR names
another directory than build/deb). Skipped unless root with dpkg-deb,
dpkg-buildpackage and lintian at hand.

With OUTBOX_PACKAGE_CHROOT=DIR, a prepared Debian 12 chroot (apt working
inside, /proc and /dev mounted), test_install_cycle also installs the
packages there, sends mail through /usr/sbin/sendmail to a smarthost of
this test, and removes and purges them (tests/package-cycle.sh). It
changes that chroot, never this machine's own packages.
"""

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

if os.environ.get("OUTBOX_PACKAGE_TEST") != "1":
    pytest.skip("package tests are opt-in: make check-package (builds the "
                "packages, sets OUTBOX_PACKAGE_TEST=1)",
                allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("package tests run as root", allow_module_level=True)
for _tool in ("dpkg-buildpackage", "dpkg-deb", "lintian"):
    if shutil.which(_tool) is None:
        pytest.skip(f"{_tool} not found (apt-get install dpkg-dev "
                    "debhelper lintian)", allow_module_level=True)

DEB_DIR = Path(os.environ.get("OUTBOX_DEB_DIR", REPO_ROOT / "build" / "deb"))


def run(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True,
                          timeout=600, **kw)


def makefile_version() -> str:
    m = re.search(r"^VERSION\s*=\s*(\S+)",
                  (REPO_ROOT / "Makefile").read_text(), re.M)
    assert m, "no VERSION in the Makefile"
    return m.group(1)


def changelog_version() -> str:
    return run("dpkg-parsechangelog", "-S", "Version",
               cwd=REPO_ROOT).stdout.strip()


def one_deb(pattern: str) -> Path:
    found = sorted(DEB_DIR.glob(pattern))
    if len(found) != 1:
        pytest.fail(f"expected one {DEB_DIR}/{pattern}, found "
                    f"{[p.name for p in found]}: run make deb", pytrace=False)
    return found[0]


@pytest.fixture(scope="module")
def debs():
    version = changelog_version()
    return {
        "outbox": one_deb(f"outbox_{version}_*.deb"),
        "outbox-mta": one_deb(f"outbox-mta_{version}_all.deb"),
    }


def fields(deb: Path) -> dict:
    out = run("dpkg-deb", "-f", str(deb)).stdout
    result, key = {}, None
    for line in out.splitlines():
        if line[:1] in (" ", "\t") and key:
            result[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            result[key] = value.strip()
    return result


def relations(value: str) -> set:
    """'a (>= 1), b | c' -> {'a', 'b | c'}, versions dropped."""
    return {re.sub(r"\s*\([^)]*\)", "", part).strip()
            for part in value.split(",") if part.strip()}


class Entry:
    def __init__(self, line: str):
        # -rwxr-xr-x root/root  149664 2026-12-06 12:40 ./usr/sbin/outbox
        parts = line.split(None, 5)
        self.mode, self.owner = parts[0], parts[1]
        name = parts[5]
        self.target = None
        if " -> " in name:
            name, self.target = name.split(" -> ", 1)
        self.path = name[1:] if name.startswith(".") else name
        if self.path != "/":
            self.path = self.path.rstrip("/")


def contents(deb: Path) -> dict:
    out = run("dpkg-deb", "-c", str(deb)).stdout
    return {e.path: e for e in map(Entry, out.splitlines())}


def control_file(deb: Path, name: str, tmp_path: Path) -> str:
    d = tmp_path / ("control-" + deb.name)
    if not d.exists():
        run("dpkg-deb", "-e", str(deb), str(d))
    f = d / name
    return f.read_text() if f.exists() else None


# ---------------------------------------------------------------------------

def test_versions_agree(debs):
    version = changelog_version()
    assert version.rsplit("-", 1)[0] == makefile_version(), \
        "debian/changelog and the Makefile's VERSION disagree"
    for deb in debs.values():
        assert fields(deb)["Version"] == version


def test_control_fields(debs):
    main = fields(debs["outbox"])
    assert main["Package"] == "outbox"
    assert main["Architecture"] != "all"
    assert main["Section"] == "mail"
    deps = relations(main["Depends"])
    assert {"ca-certificates", "adduser", "libcurl3-gnutls",
            "libgnutls30"} <= deps, main["Depends"]
    assert "Provides" not in main and "Conflicts" not in main

    mta = fields(debs["outbox-mta"])
    assert mta["Architecture"] == "all"
    for key in ("Provides", "Conflicts", "Replaces"):
        assert relations(mta[key]) == {"mail-transport-agent"}, key
    # outbox of the same source version, binNMUs included
    version = changelog_version()
    assert f"outbox (>= {version})" in mta["Depends"]
    assert f"outbox (<< {version}.1~)" in mta["Depends"]


def test_outbox_files(debs, tmp_path):
    files = contents(debs["outbox"])
    binary = files["/usr/sbin/outbox"]
    # set-group-ID only by the admin's dpkg-statoverride, never as shipped
    assert (binary.mode, binary.owner) == ("-rwxr-xr-x", "root/root")
    for path in ("/usr/share/man/man8/outbox.8.gz",
                 "/usr/share/man/man5/outbox.conf.5.gz",
                 "/usr/share/doc/outbox/examples/outbox.conf.example",
                 "/usr/share/doc/outbox/README.Debian",
                 "/usr/share/doc/outbox/copyright",
                 "/lib/systemd/system/outbox-queue.service",
                 "/lib/systemd/system/outbox-queue.timer",
                 "/etc/logrotate.d/outbox"):
        assert path in files, path
        assert files[path].mode == "-rw-r--r--", path
    assert files["/var/spool/outbox"].mode.startswith("d")
    # the admin writes the configuration: none shipped, active or example
    assert not [p for p in files if p.startswith("/etc/outbox")]
    assert not [p for p in files if p.endswith("sendmail")
                or p.endswith("mailq") or p.endswith("newaliases")]
    conffiles = control_file(debs["outbox"], "conffiles", tmp_path)
    assert conffiles.split() == ["/etc/logrotate.d/outbox"]


def test_units_and_logrotate(debs, tmp_path):
    root = tmp_path / "outbox"
    run("dpkg-deb", "-x", str(debs["outbox"]), str(root))
    service = (root / "lib/systemd/system/outbox-queue.service").read_text()
    assert re.search(r"^ExecStart=/usr/sbin/outbox -q$", service, re.M)
    assert re.search(r"^ReadWritePaths=-/var/spool/outbox$", service, re.M)
    assert re.search(r"^ConditionPathExists=/etc/outbox.conf$", service, re.M)
    assert not re.search(r"^NoNewPrivileges=", service, re.M)
    timer = (root / "lib/systemd/system/outbox-queue.timer").read_text()
    assert "WantedBy=timers.target" in timer
    rotate = (root / "etc/logrotate.d/outbox").read_text()
    assert rotate.split("{")[0].split()[-1] == "/var/log/outbox.log"
    for word in ("missingok", "notifempty"):
        assert re.search(rf"^\s*{word}$", rotate, re.M), word
    if shutil.which("systemd-analyze"):
        # the unit itself, not the host's view of /usr/sbin/outbox
        r = run("systemd-analyze", "verify", "--man=no",
                str(root / "lib/systemd/system/outbox-queue.timer"),
                check=False)
        bad = [l for l in (r.stdout + r.stderr).splitlines()
               if "outbox-queue" in l and "not executable" not in l]
        assert not bad, bad


def test_mta_links(debs):
    files = contents(debs["outbox-mta"])
    links = {p: e.target for p, e in files.items() if e.target}
    assert links == {
        "/usr/sbin/sendmail": "outbox",
        "/usr/lib/sendmail": "../sbin/sendmail",
        "/usr/bin/mailq": "../sbin/outbox",
        "/usr/bin/newaliases": "../sbin/outbox",
        "/usr/share/man/man8/sendmail.8.gz": "outbox.8.gz",
        "/usr/share/man/man8/mailq.8.gz": "outbox.8.gz",
        "/usr/share/man/man8/newaliases.8.gz": "outbox.8.gz",
    }
    regular = sorted(p for p, e in files.items() if e.mode.startswith("-"))
    assert regular == ["/usr/share/doc/outbox-mta/changelog.Debian.gz",
                       "/usr/share/doc/outbox-mta/copyright",
                       "/usr/share/lintian/overrides/outbox-mta"]


def test_maintainer_scripts(debs, tmp_path):
    deb = debs["outbox"]
    postinst = control_file(deb, "postinst", tmp_path)
    postrm = control_file(deb, "postrm", tmp_path)
    for name, text in (("postinst", postinst), ("postrm", postrm)):
        assert text.startswith("#!/bin/sh\n"), name
        assert re.search(r"^set -e$", text, re.M), name
        assert "#DEBHELPER#" not in text, name   # replaced by dh_installdeb
        run("sh", "-n", "-c", text)
    # group only when missing; queue modes unless a statoverride says else
    assert re.search(r"if ! getent group outbox.*\n\s*addgroup --system",
                     postinst)
    assert "dpkg-statoverride --list" in postinst
    assert "chmod 2770" in postinst and "root:outbox" in postinst
    # the queue goes on purge only
    purge = postrm.split("purge)", 1)[1].split(";;", 1)[0]
    assert "rm -rf /var/spool/outbox" in purge
    assert postrm.count("/var/spool/outbox") == 1
    assert "delgroup" not in purge.replace('"delgroup outbox"', "")
    mta_scripts = [control_file(debs["outbox-mta"], n, tmp_path)
                   for n in ("preinst", "postinst", "prerm", "postrm")]
    assert mta_scripts == [None] * 4


def test_packaged_binary(debs, tmp_path):
    root = tmp_path / "bin"
    run("dpkg-deb", "-x", str(debs["outbox"]), str(root))
    binary = root / "usr/sbin/outbox"
    out = run(str(binary), "--version").stdout
    assert out.splitlines()[0] == f"outbox {makefile_version()}"
    data = binary.read_bytes()
    assert b"/etc/outbox.conf" in data          # SYSCONFDIR=/etc
    assert b"/usr/local/etc" not in data
    # dpkg-buildflags' hardening reached the Makefile's build
    dyn = run("readelf", "-d", "-h", str(binary)).stdout
    assert "DYN (Position-Independent Executable" in dyn
    assert "BIND_NOW" in dyn
    syms = run("readelf", "--dyn-syms", "-W", str(binary)).stdout
    assert "__stack_chk_fail" in syms
    assert "_chk@" in syms                      # _FORTIFY_SOURCE
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755


def test_lintian(debs):
    changes = sorted(DEB_DIR.glob("outbox_*.changes"))
    targets = [str(p) for p in changes] or [str(p) for p in debs.values()]
    r = run("lintian", "--fail-on", "none", "--display-info", *targets,
            check=False)
    out = r.stdout + r.stderr
    problems = [l for l in out.splitlines() if re.match(r"^[EW]: ", l)]
    assert r.returncode == 0, out
    assert not problems, out


# ---------------------------------------------------------------------------

def test_install_cycle(debs, smarthost):
    chroot = os.environ.get("OUTBOX_PACKAGE_CHROOT")
    if not chroot:
        pytest.skip("set OUTBOX_PACKAGE_CHROOT to a prepared Debian 12 "
                    "chroot for the install/remove/purge cycle")
    sh = smarthost(mode="plain", auth=False)
    r = subprocess.run([str(REPO_ROOT / "tests/package-cycle.sh"), chroot,
                        sh.hostport, str(DEB_DIR)],
                       capture_output=True, text=True, timeout=1800)
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("package-cycle: ok: 5 messages: ")
    want = last.split(": ", 3)[3].split(", ")
    got = []
    for m in sh.messages:
        subject = re.search(rb"^Subject: (.*?)\r?$", m.data, re.M)
        got.append(subject.group(1).decode() if subject else None)
    assert got == want
    senders = {s: m.mail_from for s, m in zip(got, sh.messages)}
    assert senders["package-cycle direct"] == "cycle@example.org"
    # the set-group-ID layout: the user's own address, allow-from none
    assert senders["package-cycle setgid"] == "nobody@example.org"
    assert senders["package-cycle setgid queued"] == "nobody@example.org"
