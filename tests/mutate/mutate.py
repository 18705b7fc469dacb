#!/usr/bin/python3
"""make mutate: put single-line bugs into outbox's guards, one at a time,
and check that the tests chosen for each one fail.

The mutants are listed in tests/mutate/mutants.txt (see the comment at its
top for the format). Everything happens in a copy of the tree,
build/mutate/tree: the files git knows (tracked, and new ones not
ignored), as they are in the work tree, synchronised on each run so that
only changed files get a new time stamp and `make` recompiles only what
they touch. The checkout itself is never written to (except build/mutate).

Steps:
  1. every mutant's original line must be found exactly once in its file
     (else: NOT APPLIED, and the target fails - the list cannot rot);
  2. the copy is built with plain `make` (the same flags as `make` in the
     checkout), plus the unit test binaries the list names;
  3. baseline: every selected test must PASS on the unmutated copy (a
     test that fails or skips there proves nothing about a mutant);
  4. each mutant in turn: edit the copy, rebuild (one object), run its
     tests (unit binaries first, then pytest -x), put the file and the
     build outputs back exactly as they were (no second recompile).

Result lines: "killed   M07 src/queue.c  what it breaks (the test that
failed)"; SURVIVED / NOT APPLIED / BROKEN (does not compile, or the tests
could not run) fail the target. Exit status 0 only when every mutant was
killed.

Usage: tests/mutate/mutate.py [--list] [--only M01,M07] [--dir DIR]
                              [--mutants FILE]
(make mutate [MUTANTS=M01,M07]). Run it with /usr/bin/python3 (it has
pytest and the test dependencies), as root, the way CI runs it.
"""

import argparse
import configparser
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LIST = HERE / "mutants.txt"
PYTHON = "/usr/bin/python3"
EDIT_SUFFIXES = ("", "2", "3")   # find/replace, find2/replace2, ...
ANCHOR_WINDOW = 4                # lines after an `after` anchor
TEST_TIMEOUT = 600               # seconds for one mutant's tests
JOBS = "-j2"


class Mutant:
    def __init__(self, mid, sec):
        self.id = mid
        self.file = sec.get("file", "").strip()
        self.why = " ".join(sec.get("why", "").split())
        self.edits = []
        for s in EDIT_SUFFIXES:
            if "find" + s in sec:
                self.edits.append((sec["find" + s], sec.get("replace" + s),
                                   sec.get("after" + s)))
        self.tests = [t.strip() for t in sec.get("tests", "").splitlines()
                      if t.strip()]
        self.problem = None
        if not self.file or not self.why or not self.edits or not self.tests:
            self.problem = "needs file, find, replace, tests and why"
        elif any(r is None for _, r, _ in self.edits):
            self.problem = "a find without its replace"

    @property
    def units(self):
        return [t[5:] for t in self.tests if t.startswith("unit:")]

    @property
    def pytests(self):
        return [t for t in self.tests if not t.startswith("unit:")]


def load_mutants(path):
    cp = configparser.ConfigParser(interpolation=None, delimiters=("=",),
                                   comment_prefixes=("#",),
                                   inline_comment_prefixes=None,
                                   strict=True, empty_lines_in_values=False)
    cp.optionxform = str
    cp.read(path, encoding="utf-8")
    return [Mutant(s, cp[s]) for s in cp.sections()]


def say(*parts):
    print(*parts, flush=True)


# ---------------------------------------------------------------------------
# the copy of the tree
# ---------------------------------------------------------------------------

def source_files():
    """The files a clean clone would have, as they are in the work tree
    (tracked and new, not ignored), without build/."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z",
                              "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout
        names = [n for n in out.decode("utf-8", "surrogateescape").split("\0")
                 if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for d, dirs, files in os.walk(REPO):
            rel = Path(d).relative_to(REPO)
            dirs[:] = [x for x in dirs if not (rel == Path(".") and x in (
                "build", ".git")) and x != "__pycache__"]
            names += [str(rel / f) for f in files
                      if not (rel == Path(".") and f == "outbox")]
    return sorted(n for n in set(names)
                  if not n.startswith("build/") and (REPO / n).is_file()
                  and "__pycache__" not in n)


def sync_tree(tree):
    """Make tree hold exactly source_files(); a file whose bytes and mode
    are unchanged keeps its time stamp (and so its built objects)."""
    names = source_files()
    wanted = set(names)
    changed = 0
    for n in names:
        src, dst = REPO / n, tree / n
        data = src.read_bytes()
        mode = src.stat().st_mode & 0o7777
        if dst.is_file() and not dst.is_symlink():
            if dst.read_bytes() == data and \
                    dst.stat().st_mode & 0o7777 == mode:
                continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        dst.write_bytes(data)
        os.chmod(dst, mode)
        changed += 1
    removed = 0
    for d, dirs, files in os.walk(tree):
        rel = Path(d).relative_to(tree)
        if rel == Path("."):
            dirs[:] = [x for x in dirs if x != "build"]
        for f in files:
            n = str(rel / f) if rel != Path(".") else f
            if n == "outbox" or n in wanted:
                continue
            (Path(d) / f).unlink()
            removed += 1
    return len(names), changed, removed


def clean_env():
    """The environment for make and the tests: no make state of the
    caller (jobserver fds do not survive), no outbox variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
           and not k.startswith("OUTBOX_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def make(tree, targets, jobs=True):
    cmd = ["make", "-C", str(tree)] + ([JOBS] if jobs else []) + targets
    return subprocess.run(cmd, capture_output=True, text=True,
                          env=clean_env())


def build_outputs(tree):
    """{path: (mtime_ns, size)} of what make writes."""
    out = {}
    paths = [tree / "outbox"]
    if (tree / "build").is_dir():
        paths += [p for p in (tree / "build").iterdir() if p.is_file()]
    for p in paths:
        if p.is_file():
            st = p.stat()
            out[p] = (st.st_mtime_ns, st.st_size)
    return out


# ---------------------------------------------------------------------------
# applying a mutant
# ---------------------------------------------------------------------------

def read_text(path):
    return path.read_bytes().decode("utf-8", "surrogateescape")


def write_text(path, text):
    path.write_bytes(text.encode("utf-8", "surrogateescape"))


def locate(lines, find, after):
    """The index of the one line holding find (after the one anchor line
    holding `after`, within ANCHOR_WINDOW lines), or an error text."""
    if after is None:
        hits = [i for i, l in enumerate(lines) if find in l]
        if len(hits) != 1:
            return None, f"{find!r} found on {len(hits)} lines, not 1"
        return hits[0], None
    anchors = [i for i, l in enumerate(lines) if after in l]
    if len(anchors) != 1:
        return None, f"anchor {after!r} found on {len(anchors)} lines, not 1"
    a = anchors[0]
    hits = [i for i in range(a + 1, min(a + 1 + ANCHOR_WINDOW, len(lines)))
            if find in lines[i]]
    if len(hits) != 1:
        return None, (f"{find!r} found {len(hits)} times in the "
                      f"{ANCHOR_WINDOW} lines after {after!r}, not once")
    return hits[0], None


def mutated_text(m, text):
    """(new text, None) or (None, why it does not apply)."""
    lines = text.split("\n")
    done = set()
    for find, repl, after in m.edits:
        i, err = locate(lines, find, after)
        if err:
            return None, err
        if i in done:
            return None, "two edits on one line"
        done.add(i)
        lines[i] = lines[i].replace(find, repl, 1)
    new = "\n".join(lines)
    if new == text:
        return None, "the replacement changes nothing"
    return new, None


# ---------------------------------------------------------------------------
# running tests
# ---------------------------------------------------------------------------

def node(t):
    """A list entry as a pytest argument: test_x.py::name -> the path in
    tests/integration; a path with a slash is taken as is (from tests/)."""
    return t if "/" in t else "tests/integration/" + t


def short(classname, name):
    mod = classname.rsplit(".", 1)[-1]
    return f"{mod}.py::{name}"


def run_pytest(tree, xml, tests, stop_first):
    env = clean_env()
    env["OUTBOX_BIN"] = str(tree / "outbox")
    env["MAKEFLAGS"] = JOBS         # the set-group-ID fixtures' builds
    if xml.exists():
        xml.unlink()
    cmd = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs",
           "--junitxml", str(xml)] + (["-x"] if stop_first else []) + \
        [node(t) for t in tests]
    p = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = p.communicate(timeout=TEST_TIMEOUT)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        rc = None
    except BaseException:       # ^C: the tests are in their own session
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        raise
    cases = []
    if xml.exists():
        try:
            for tc in ET.parse(xml).getroot().iter("testcase"):
                tags = {c.tag for c in tc}
                state = ("failed" if tags & {"failure", "error"} else
                         "skipped" if "skipped" in tags else "passed")
                cases.append((short(tc.get("classname", ""),
                                    tc.get("name", "")), state))
        except ET.ParseError:
            pass
    return rc, cases, out.decode("utf-8", "replace")


def run_unit(tree, name):
    p = subprocess.run([str(tree / "build" / name)], capture_output=True,
                       timeout=TEST_TIMEOUT, cwd=tree, env=clean_env())
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def matches(want, case):
    """Does the junit case (test_x.py::name[param]) belong to the list
    entry want (test_x.py::name, with or without [param])?"""
    want = want.rsplit("/", 1)[-1]
    return case == want or case.startswith(want + "[")


def tail(text, n=25):
    return "\n".join("    " + l for l in text.rstrip().splitlines()[-n:])


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------

def baseline(tree, work, mutants):
    """Every selected test passes on the unmutated copy. True if so."""
    ok = True
    for u in sorted({u for m in mutants for u in m.units}):
        rc, out = run_unit(tree, u)
        if rc != 0:
            say(f"baseline: unit:{u} FAILS unmutated (exit {rc}):")
            say(tail(out))
            ok = False
    wanted = []
    for m in mutants:
        wanted += [t for t in m.pytests if t not in wanted]
    wanted.sort(key=lambda t: t.split("::")[0])   # one module at a time
    rc, cases, out = run_pytest(tree, work / "baseline.xml", wanted, False)
    for t in wanted:
        mine = [(c, s) for c, s in cases if matches(t, c)]
        if not mine:
            say(f"baseline: {t} did not run (renamed or removed?)")
            ok = False
        for c, s in mine:
            if s != "passed":
                say(f"baseline: {c} {s.upper()} unmutated")
                ok = False
    if rc != 0 and ok:
        say(f"baseline: pytest exited {rc}")
        ok = False
    if not ok:
        say(tail(out, 40))
    if ok:
        say(f"mutate: baseline: {len(wanted)} selected tests and "
            f"{len({u for m in mutants for u in m.units})} unit binaries "
            "pass unmutated")
    return ok


def run_mutant(m, tree, work):
    """('killed', by) | ('SURVIVED', skips) | ('BROKEN', why)."""
    units = ["build/" + u for u in m.units]
    r = make(tree, ["all"] + units, jobs=False)
    if r.returncode != 0:
        return "BROKEN", "does not build:\n" + tail(r.stdout + r.stderr, 12)
    for u in m.units:
        rc, out = run_unit(tree, u)
        if rc != 0:
            return "killed", f"unit:{u}"
    if not m.pytests:
        return "SURVIVED", ""
    rc, cases, out = run_pytest(tree, work / "mutant.xml", m.pytests, True)
    if rc is None:
        return "killed", f"timeout after {TEST_TIMEOUT}s"
    failed = [c for c, s in cases if s == "failed"]
    if failed:
        return "killed", failed[0]
    if rc != 0:
        return "BROKEN", f"pytest exited {rc} without a failed test:\n" + \
            tail(out)
    skipped = [c for c, s in cases if s == "skipped"]
    return "SURVIVED", ("skipped under the mutant: " + ", ".join(skipped)
                        if skipped else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true",
                    help="print the mutants and exit")
    ap.add_argument("--only", default=os.environ.get("MUTANTS", ""),
                    help="comma-separated mutant ids (env MUTANTS)")
    ap.add_argument("--dir", default=str(REPO / "build" / "mutate"),
                    help="work directory (default build/mutate)")
    ap.add_argument("--mutants", default=str(LIST),
                    help="the list (default tests/mutate/mutants.txt)")
    args = ap.parse_args()
    t0 = time.monotonic()

    mutants = load_mutants(args.mutants)
    ids = [m.id for m in mutants]
    bad = [m for m in mutants if m.problem]
    if bad or len(set(ids)) != len(ids):
        for m in bad:
            say(f"mutants.txt: [{m.id}]: {m.problem}")
        if len(set(ids)) != len(ids):
            say("mutants.txt: duplicate ids")
        return 2
    if args.list:
        for m in mutants:
            say(f"{m.id} {m.file:18} {m.why}")
            for t in m.tests:
                say(f"      {t}")
        return 0
    if args.only:
        only = {x.strip() for x in args.only.split(",") if x.strip()}
        unknown = only - set(ids)
        if unknown:
            say("unknown mutant ids: " + ", ".join(sorted(unknown)))
            return 2
        mutants = [m for m in mutants if m.id in only]

    if os.geteuid() != 0:
        say("mutate: needs root, as CI runs it: the selected tests create "
            "users and set-group-ID installs (they would skip, and a "
            "skipped test kills no mutant)")
        return 2
    work = Path(args.dir).resolve()
    tree = work / "tree"
    if tree == REPO or REPO in tree.parents and not str(
            tree.relative_to(REPO)).startswith("build/"):
        say(f"refusing to use {tree}: not a copy under build/")
        return 2
    work.mkdir(parents=True, exist_ok=True)
    lock = open(work / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        say(f"another make mutate is running in {work}")
        return 2

    n, changed, removed = sync_tree(tree)
    say(f"mutate: copy of {n} files in {tree} ({changed} updated, "
        f"{removed} removed)")

    # 1. does each mutant still apply?
    results = []
    runnable = []
    originals = {}
    for m in mutants:
        f = tree / m.file
        if tree not in f.resolve().parents:
            results.append((m, "NOT APPLIED", f"{m.file} is not in the tree",
                            0))
            continue
        if not f.is_file():
            results.append((m, "NOT APPLIED", f"{m.file} does not exist", 0))
            continue
        text = originals.setdefault(m.file, read_text(f))
        new, err = mutated_text(m, text)
        if err:
            results.append((m, "NOT APPLIED", err, 0))
        else:
            runnable.append((m, new))
    for m, st, why, _ in results:
        say(f"{st:11} {m.id} {m.file}  {m.why}: {why}")

    # 2. build the copy as it is
    units = sorted({"build/" + u for m, _ in runnable for u in m.units})
    r = make(tree, ["all"] + units)
    if r.returncode != 0:
        say("mutate: the unmutated copy does not build:")
        say(tail(r.stdout + r.stderr))
        return 2
    say(f"mutate: built {tree / 'outbox'} and {len(units)} unit test "
        f"binaries ({time.monotonic() - t0:.0f} s)")

    # 3. the selected tests pass unmutated
    tb = time.monotonic()
    if not baseline(tree, work, [m for m, _ in runnable]):
        say("mutate: FAILED: selected tests do not pass on the unmutated "
            "tree, so the mutants cannot be judged")
        return 2
    say(f"mutate: baseline done ({time.monotonic() - tb:.0f} s)")

    # 4. the mutants
    pristine = work / "pristine"
    shutil.rmtree(pristine, ignore_errors=True)
    pristine.mkdir()
    outputs = build_outputs(tree)
    for p in outputs:
        shutil.copy2(p, pristine / p.relative_to(tree).as_posix()
                     .replace("/", "__"))
    for m, new in runnable:
        path = tree / m.file
        st = path.stat()
        t1 = time.monotonic()
        try:
            write_text(path, new)
            status, detail = run_mutant(m, tree, work)
        finally:
            write_text(path, originals[m.file])
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
            now = build_outputs(tree)
            for p, stamp in outputs.items():
                if now.get(p) != stamp:
                    shutil.copy2(pristine / p.relative_to(tree).as_posix()
                                 .replace("/", "__"), p)
            for p in set(now) - set(outputs):
                p.unlink()
        secs = time.monotonic() - t1
        results.append((m, status, detail, secs))
        first, _, rest = detail.partition("\n")
        say(f"{status:11} {m.id} {m.file}  {m.why}"
            + (f" ({first})" if first else "") + f"  {secs:.1f}s")
        if rest:
            say(rest)

    # summary
    count = {}
    for _, st, _, _ in results:
        count[st] = count.get(st, 0) + 1
    total = time.monotonic() - t0
    say("")
    say(f"mutate: {len(results)} mutants: {count.get('killed', 0)} killed, "
        f"{count.get('SURVIVED', 0)} survived, "
        f"{count.get('NOT APPLIED', 0)} not applied, "
        f"{count.get('BROKEN', 0)} broken; {total:.0f} s")
    failed = [(m, st, d) for m, st, d, _ in results if st != "killed"]
    for m, st, d in failed:
        say(f"  {st}: {m.id} {m.file}: {m.why}"
            + (f" ({d.splitlines()[0]})" if d else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
