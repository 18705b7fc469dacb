"""First contact: building without the development packages stops with
one line naming what is missing and the command that installs it, not a
wall of compiler and linker errors."""

import subprocess

from conftest import REPO_ROOT

MAKE_FAILED = 2     # GNU make's exit status when a recipe failed


def _make(tmp_path, *args):
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_ROOT),
         f"BUILDDIR={tmp_path}/build", f"OUT={tmp_path}/build/outbox",
         *args], capture_output=True, text=True, timeout=300)


def test_without_pkg_config_one_line_names_everything(tmp_path):
    r = _make(tmp_path, "PKG_CONFIG=/nonexistent/pkg-config")
    assert r.returncode == MAKE_FAILED, r.stdout + r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("outbox:")]
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert "missing: pkg-config" in line and "libcurl" in line, line
    assert ("apt-get install pkg-config libcurl4-gnutls-dev "
            "libgnutls28-dev") in line, line
    # nothing was compiled or linked
    assert "undefined reference" not in r.stderr + r.stdout
    assert not (tmp_path / "build" / "outbox").exists()
    assert list(tmp_path.rglob("*.o")) == []


def test_a_missing_module_is_named_alone(tmp_path):
    r = _make(tmp_path, "PKGS=libcurl gnutls outbox-no-such-module")
    assert r.returncode == MAKE_FAILED, r.stdout + r.stderr
    lines = [l for l in r.stderr.splitlines() if l.startswith("outbox:")]
    assert len(lines) == 1, r.stderr
    assert "missing: pkg-config module outbox-no-such-module;" in lines[0]
    assert "libcurl4-gnutls-dev" not in lines[0], lines[0]


def test_without_a_compiler(tmp_path):
    r = _make(tmp_path, "CC=/nonexistent/cc")
    assert r.returncode == MAKE_FAILED, r.stdout + r.stderr
    assert "missing: a C compiler (/nonexistent/cc); install with: " \
        "apt-get install gcc" in r.stderr, r.stderr
