"""Skip allowlist check for a pytest stage (make integration).

With OUTBOX_SKIP_ALLOWLIST=FILE in the environment (the Makefile sets it
to tests/skips/STAGE.txt when make runs as root, the way CI runs), conftest.py
registers this plugin and the run fails (exit 1, on top of whatever else
happened) when
  - a test or a module was skipped and no entry of FILE allows that skip;
  - no test ran at all (none collected, or every one skipped/deselected).
Expected failures (xfail) are not skips.

FILE: one entry a line, "NODE-ID-PATTERN | SKIP MESSAGE TEXT":
  NODE-ID-PATTERN   a pytest node id as printed by -rs (relative to the
                    repository: tests/integration/test_x.py::test_y, or just
                    the module for a module-level skip), exact or an
                    fnmatch pattern (*, ?, [...]);
  SKIP MESSAGE TEXT text the skip's message must contain, so the same test
                    skipping for another reason is still caught.
Comment lines (#) above an entry say why the skip is right; blank lines are
ignored.  An entry that allows nothing in a run is reported as a note, not
an error (a skip that went away is good news).

Each line of this plugin's report starts with "skip check:" (CI's summary
greps for it).
"""

import fnmatch
import os
from pathlib import Path

import pytest

ENV = "OUTBOX_SKIP_ALLOWLIST"
PREFIX = "skip check:"


class AllowlistError(Exception):
    pass


def load_allowlist(path):
    """[(line number, pattern, text)] of the file at path."""
    entries = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise AllowlistError(f"cannot read the allowlist {path}: "
                             f"{e.strerror}") from e
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pattern, sep, text = line.partition("|")
        pattern, text = pattern.strip(), text.strip()
        if not sep or not pattern or not text:
            raise AllowlistError(
                f"{path}:{n}: want 'NODE-ID-PATTERN | SKIP MESSAGE TEXT', "
                f"got {line!r}")
        entries.append((n, pattern, text))
    return entries


def skip_message(report):
    """The message of a skip report (without pytest's "Skipped: ")."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        msg = str(longrepr[2])
    else:
        msg = str(longrepr)
    return msg[len("Skipped: "):] if msg.startswith("Skipped: ") else msg


def node_matches(pattern, nodeid):
    return nodeid == pattern or fnmatch.fnmatchcase(nodeid, pattern)


class SkipCheck:
    def __init__(self, path):
        self.path = path
        self.skips = []          # [(node id, message)]
        self.ran = 0             # tests whose call phase ran
        self.lines = []          # the report, printed in the summary
        self.failed = False

    # -- collection: module-level skips --------------------------------
    def pytest_collectreport(self, report):
        if report.skipped:
            self.skips.append((report.nodeid, skip_message(report)))

    # -- tests ---------------------------------------------------------
    def pytest_runtest_logreport(self, report):
        if report.skipped and not hasattr(report, "wasxfail"):
            self.skips.append((report.nodeid, skip_message(report)))
        elif report.when == "call":
            self.ran += 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        out = self.lines
        try:
            entries = load_allowlist(self.path)
        except AllowlistError as e:
            out.append(f"{PREFIX} FAILED: {e}")
            self.failed = True
            entries = []
        used = set()
        unlisted = []
        for nodeid, msg in self.skips:
            hit = [e for e in entries
                   if node_matches(e[1], nodeid) and e[2] in msg]
            if hit:
                used.update(e[0] for e in hit)
            else:
                unlisted.append((nodeid, msg))
        if unlisted:
            self.failed = True
            out.append(f"{PREFIX} FAILED: {len(unlisted)} skip(s) not "
                       f"allowed by {self.path}:")
            for nodeid, msg in unlisted:
                out.append(f"{PREFIX}   {nodeid}: {msg}")
        if session.testscollected == 0 or self.ran == 0:
            self.failed = True
            out.append(f"{PREFIX} FAILED: no test ran "
                       f"({session.testscollected} collected)")
        for n, pattern, text in entries:
            if n not in used:
                out.append(f"{PREFIX} note: {self.path}:{n} allowed no skip "
                           f"in this run ({pattern} | {text})")
        if not self.failed:
            out.append(f"{PREFIX} ok: {self.ran} tests ran, "
                       f"{len(self.skips)} skips, all allowed by "
                       f"{self.path}")
        else:
            out.append(f"{PREFIX} FAILED ({self.ran} tests ran, "
                       f"{len(self.skips)} skips; allowlist {self.path})")
            if session.exitstatus == 0:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if self.lines:
            terminalreporter.section("skip allowlist")
            for line in self.lines:
                terminalreporter.write_line(line)


def register(config):
    """Register the check when OUTBOX_SKIP_ALLOWLIST names an allowlist."""
    path = os.environ.get(ENV)
    if path:
        config.pluginmanager.register(SkipCheck(path), "outbox-skipcheck")
