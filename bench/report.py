#!/usr/bin/python3
"""bench/report.py WORKDIR: turn the raw results of bench/run (in
WORKDIR/results) into bench/RESULTS.md (printed on stdout).

Nothing here judges pass/fail: the issue's targets are reported next to
the measured values, never asserted."""
import glob
import json
import os
import re
import statistics
import sys

T = sys.argv[1]
R = os.path.join(T, "results")
HERE = os.path.dirname(os.path.abspath(__file__))


def machine():
    m = {}
    with open(os.path.join(R, "machine.txt")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            m[k] = v
    return m


M = machine()


def hf(name):
    with open(os.path.join(R, "hf-%s.json" % name)) as f:
        res = json.load(f)["results"]
    out = {}
    for r in res:
        if any(c != 0 for c in r.get("exit_codes", [])):
            sys.exit("report: %s: %s has non-zero exit codes" % (name, r["command"]))
        out[r["command"]] = r
    return out


def numbers(path):
    with open(path) as f:
        return [float(x) for x in f.read().split()]


def rss_mib(name):
    """Median peak RSS of the runs, in MiB (time -f %M gives KiB)."""
    return statistics.median(numbers(os.path.join(R, "rss-%s.txt" % name))) / 1024


def seconds(name):
    return numbers(os.path.join(R, "time-%s.txt" % name))[0]


def cpu(name):
    """CPU seconds (user+system) of the loop's children, or None."""
    p = os.path.join(R, "cpu-%s.txt" % name)
    return numbers(p)[0] if os.path.exists(p) else None


def ir(name):
    vals = []
    for p in sorted(glob.glob(os.path.join(R, "cg-%s.*.out" % name))):
        with open(p) as f:
            for line in f:
                mo = re.match(r"(summary|totals):\s+(\d+)", line)
                if mo:
                    vals.append(int(mo.group(2)))
                    break
    if not vals:
        sys.exit("report: no callgrind totals for %s" % name)
    return statistics.median(vals), vals


def ratio(a, b):
    if a is None or b is None or b <= 0 or a < 0:
        return "–"
    return "%.2f" % (a / b)


def ms(x):
    return "–" if x is None else "%.1f" % (x * 1000)


details = []   # hyperfine detail lines
LEAN = M.get("lean") == "yes"
TOOLS = ("outbox", "msmtp", "outbox-lean") if LEAN else ("outbox", "msmtp")


def met(ok):
    return "yes" if ok else "**no**"


def mib(x):
    return "%.2f" % x


def hf_details(name):
    h = hf(name)
    for tool in TOOLS:
        r = h[tool]
        details.append("| %s | %s | %s ± %s | %s | %s | %s / %s | %d |" % (
            name, tool, ms(r["mean"]), ms(r["stddev"]), ms(r["median"]),
            "%s–%s" % (ms(r["min"]), ms(r["max"])), ms(r["user"]),
            ms(r["system"]), len(r["times"])))


def figures(ob):
    """Rows and target checks for one outbox flavour (ob: "outbox" or
    "outbox-lean") against msmtp."""
    rows, targets = [], []

    def row(label, a, b, fmt, r=None):
        rows.append((label, fmt(a), fmt(b), r if r is not None else ratio(a, b)))

    def hf_rows(num, label, name):
        h = hf(name)
        o, m = h[ob], h["msmtp"]
        row("%s %s: median wall time (ms)" % (num, label), o["median"], m["median"], ms)
        row("%s %s: mean CPU time, user+sys (ms)" % (num, label),
            o["user"] + o["system"], m["user"] + m["system"], ms)
        return o, m

    # ---- figure 1
    o1, m1 = hf_rows("1.", "2 KB, plain SMTP", "fig1")
    row("1. 2 KB, plain SMTP: peak RSS (MiB)", rss_mib("fig1-" + ob),
        rss_mib("fig1-msmtp"), mib)
    targets.append(("1. wall time ratio", "≤ 1.0", ratio(o1["median"], m1["median"]),
                    met(o1["median"] <= m1["median"])))
    # ---- figure 2
    nb = M.get("bundle_certs", "?")
    o2a, m2a = hf_rows("2a.", "STARTTLS+AUTH, CA file (1 cert)", "fig2-ca")
    row("2a. STARTTLS+AUTH, CA file (1 cert): peak RSS (MiB)",
        rss_mib("fig2-ca-" + ob), rss_mib("fig2-ca-msmtp"), mib)
    o2b, m2b = hf_rows("2b.", "STARTTLS+AUTH, system bundle + test CA (%s certs)" % nb,
                       "fig2-bundle")
    row("2b. STARTTLS+AUTH, bundle (%s certs): peak RSS (MiB)" % nb,
        rss_mib("fig2-bundle-" + ob), rss_mib("fig2-bundle-msmtp"), mib)
    row("2. trust-store loading (2b − 2a): median wall time (ms)",
        o2b["median"] - o2a["median"], m2b["median"] - m2a["median"], ms)
    row("2. trust-store loading (2b − 2a): CPU time (ms)",
        (o2b["user"] + o2b["system"]) - (o2a["user"] + o2a["system"]),
        (m2b["user"] + m2b["system"]) - (m2a["user"] + m2a["system"]), ms)
    targets.append(("2a. wall time ratio (CA file)", "≤ 1.0",
                    ratio(o2a["median"], m2a["median"]), met(o2a["median"] <= m2a["median"])))
    targets.append(("2b. wall time ratio (bundle)", "≤ 1.0",
                    ratio(o2b["median"], m2b["median"]), met(o2b["median"] <= m2b["median"])))
    # ---- figure 3
    n = int(M["burst"])
    a, b = seconds("fig3-" + ob), seconds("fig3-msmtp")
    row("3. %d sequential sends, plain: total wall time (s)" % n, a, b,
        lambda x: "%.2f" % x)
    row("3. %d sequential sends: messages/s (higher is better)" % n, n / a, n / b,
        lambda x: "%.1f" % x)
    ca, cb = cpu("fig3-" + ob), cpu("fig3-msmtp")
    if ca is not None and cb is not None:
        row("3. %d sequential sends: CPU time per message, user+sys (ms)" % n,
            ca / n, cb / n, ms)
    targets.append(("3. time ratio (= msmtp rate / outbox rate)", "≤ 1.0",
                    ratio(a, b), met(a <= b)))
    # ---- figure 4
    h4 = hf("fig4")
    o4, m4 = h4[ob], h4["msmtp"]
    row("4. 100 MiB message, plain: median wall time (s)", o4["median"], m4["median"],
        lambda x: "%.2f" % x)
    row("4. 100 MiB message: mean CPU time, user+sys (s)", o4["user"] + o4["system"],
        m4["user"] + m4["system"], lambda x: "%.2f" % x)
    a, b = rss_mib("fig4-" + ob), rss_mib("fig4-msmtp")
    row("4. 100 MiB message: peak RSS (MiB)", a, b, mib)
    targets.append(("4. outbox peak RSS", "< 16 MB (15.26 MiB)", "%.2f MiB" % a,
                    met(a * 1048576 < 16e6)))
    targets.append(("4. wall time ratio", "≤ 1.1", ratio(o4["median"], m4["median"]),
                    met(o4["median"] <= 1.1 * m4["median"])))
    # ---- figure 5
    a, _ = ir("fig5-" + ob)
    b, _ = ir("fig5-msmtp")
    row("5. instructions per send, plain (Ir, millions)", a / 1e6, b / 1e6,
        lambda x: "%.2f" % x, ratio(a, b))
    targets.append(("5. Ir ratio", "≤ 1.0", ratio(a, b), met(a <= b)))
    # ---- figure 6
    q = int(M["queue_n"])
    enq, flush = seconds("fig6-%s-odq" % ob), seconds("fig6-%s-q" % ob)
    sep = seconds("fig6-msmtp")
    row("6. queue flush: `outbox -q` of %d queued vs %d separate msmtp runs: "
        "messages/s (higher is better)" % (q, q), q / flush, q / sep,
        lambda x: "%.1f" % x)
    targets.append(("6. flush rate ÷ rate of %d msmtp runs" % q, "≥ 20",
                    "%.1f" % ((q / flush) / (q / sep)),
                    met((q / flush) >= 20 * (q / sep))))
    cf, cs = cpu("fig6-%s-q" % ob), cpu("fig6-msmtp")
    if cf is not None and cs is not None:
        row("6. CPU time per message, user+sys (ms): `outbox -q` flush vs %d "
            "separate msmtp runs" % q, cf / q, cs / q, ms)
        targets.append(("6. (not in the issue: the same with CPU time) msmtp CPU "
                        "per message ÷ `outbox -q` CPU per message", "≥ 20",
                        "%.1f" % (cs / cf) if cf > 0 else "–", met(cs >= 20 * cf)))
    if HAVE_Q:
        qe, qf = seconds("fig6-msmtpq-enqueue"), seconds("fig6-msmtpq-flush")
        row("6. queue flush: `outbox -q` vs msmtpq flush (`msmtp-queue -r`): "
            "messages/s (higher is better)", q / flush, q / qf, lambda x: "%.1f" % x)
        row("6. enqueue %d: `outbox -odq` vs msmtpq while the smarthost is down: "
            "messages/s (higher is better)" % q, q / enq, q / qe, lambda x: "%.1f" % x)
    else:
        row("6. enqueue %d with `outbox -odq`: messages/s (msmtpq not installed)" % q,
            q / enq, None, lambda x: "%.1f" % x if x is not None else "–")
    return rows, targets


HAVE_Q = open(os.path.join(R, "msmtpq.txt")).read().strip() == "yes"
rows, targets = figures("outbox")
lean_rows, lean_targets = figures("outbox-lean") if LEAN else ([], [])
for name in ("fig1", "fig2-ca", "fig2-bundle", "fig4"):
    hf_details(name)
q = int(M["queue_n"])
nb = M.get("bundle_certs", "?")
av = ir("fig5-outbox")[1]
bv = ir("fig5-msmtp")[1]
lv = ir("fig5-outbox-lean")[1] if LEAN else []


def tls_line(path, pat, after=False):
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        return "?"
    for i, l in enumerate(lines):
        if pat in l:
            if after and i + 1 < len(lines):
                return lines[i + 1].strip()
            return l.strip("* ").strip()
    return "?"


def redact(text):
    text = text.replace(T, "$T")
    return re.sub(r"(?m)^(password\s+).*$", r"\1(hidden)", text)


def cfg(name):
    with open(os.path.join(T, name)) as f:
        return redact(f.read())


out = []
w = out.append
w("# outbox vs msmtp: benchmark results")
w("")
w("Written by `bench/run` on %s (outbox built from git %s%s, binary sha256 %s…, measured as a copy in `$T/bin`). Both tools ran in the "
  "same run against the same local smarthost (`tests/smarthost.py`, Python "
  "aiosmtpd %s, on 127.0.0.1), with the same message and the same TLS "
  "set-up. Ratios are outbox ÷ msmtp: below 1 means outbox is smaller or "
  "faster, except on the rows marked *higher is better*."
  % (M["date"], M["git"], " with uncommitted changes in src/" if M["git_dirty"] != "0"
     else "", M["outbox_sha"], M["aiosmtpd"]))
w("")
w("**Machine:** %s, %s cores, %s, Debian %s; %s; msmtp %s (%s, Debian package %s); "
  "libcurl3-gnutls %s, libgnutls30 %s; %s, %s, %s. Load average (1, 5, 15 min) "
  "before the run %s, after it %s; the run's nice value: %s."
  % (M["cpu"], M["cores"], M["kernel"], M["debian"], M["outbox_version"].strip(),
     M["msmtp_version"].replace("msmtp version ", ""), M["msmtp_tls"], M["msmtp_pkg"],
     M["curl_pkg"], M["gnutls_pkg"], M["hyperfine"], M["valgrind"], M["python"],
     M.get("load_start", "?"), M.get("load_end", "?"), M.get("nice", "?")))
w("")
try:
    busy = max(float(M.get("load_start", "0").split()[0]),
               float(M.get("load_end", "0").split()[0]))
except ValueError:
    busy = 0.0
if busy > 0.5:
    w("**Note:** other work was running on this %s-core machine during the run "
      "(load average up to %.2f). Instruction counts and RSS do not depend on "
      "that; wall times and rates do, and the queue flush (many short round "
      "trips between outbox and the Python smarthost) suffers most. Compare the "
      "tools within this run, not with runs made on an idle machine."
      % (M["cores"], busy))
    w("")
w("## Figures")
w("")
w("| figure | outbox | msmtp | ratio outbox/msmtp |")
w("|---|---:|---:|---:|")
for r in rows:
    w("| %s | %s | %s | %s |" % r)
w("")
if LEAN:
    w("### The LEAN flavour (`make LEAN=1`)")
    w("")
    w("The same sources linked against a static libcurl with only what outbox "
      "uses (conf/build-lean-curl.sh); %s shared libraries instead of %s. "
      "Measured in the same run, against the same msmtp runs: `%s`."
      % (M.get("lean_libs", "?"), M.get("outbox_libs", "?"),
         M.get("lean_version", "?").strip()))
    w("")
    w("| figure | outbox LEAN | msmtp | ratio outbox LEAN/msmtp |")
    w("|---|---:|---:|---:|")
    for r in lean_rows:
        w("| %s | %s | %s | %s |" % r)
    w("")
w("## Against the issue's targets (reported, not asserted)")
w("")
if LEAN:
    w("| target | wanted | outbox | met | outbox LEAN | met |")
    w("|---|---|---|---|---|---|")
    for t, l in zip(targets, lean_targets):
        w("| %s | %s | %s | %s | %s | %s |" % (t + l[2:]))
else:
    w("| target | wanted | measured | met |")
    w("|---|---|---|---|")
    for t in targets:
        w("| %s | %s | %s | %s |" % t)
w("")
sys.path.insert(0, HERE)
import burst_report  # noqa: E402  (figures 7 and 8, bench/burst.sh)
if burst_report.have(T):
    out.extend(burst_report.section(T, M))
    w("")
import peers_report  # noqa: E402  (bench/peers: kept from the last RESULTS.md)
_peers = peers_report.kept(os.environ.get("BENCH_OUT") or
                           os.path.join(HERE, "RESULTS.md"))
if _peers:
    out.extend(_peers)
    w("")
w("## How it was measured")
w("")
w("- Message: %s bytes (2 KB) and %s bytes (100 MiB), LF line ends, with From, To, "
  "Subject, Date and Message-ID, so neither tool adds a header; one recipient "
  "on the command line. The self-check at the start sends it once with each "
  "tool through each smarthost set-up and compares the received bytes "
  "(`cmp`): identical. The 100 MiB copies all arrived with %s bytes."
  % (M["msg2k_bytes"], M["msg100m_bytes"],
     open(os.path.join(R, "fig4-received-bytes.txt")).read().strip()))
w("- Wall times: hyperfine, %s runs after %s warm-up runs per tool (figure 4: %s "
  "runs after 1), through `sh -c` (needed for the `<` redirection; hyperfine "
  "subtracts the shell's start-up). CPU time is hyperfine's mean user + system. "
  "Peak RSS: median of %s runs of `/usr/bin/time -f %%M` (3 runs for 100 MiB), "
  "run directly, without a shell." % (M["runs"], M["warmup"], M["big_runs"],
                                       M["rss_runs"]))
w("- Every phase checks exit codes (hyperfine stops on a non-zero one) and "
  "counts the messages the smarthost wrote to its --outdir: any difference "
  "stops the run (`bench: FAILED`). Each tool's timeout is 30 s, each phase "
  "has a deadline, every loop has a fixed length.")
w("- TLS: STARTTLS, AUTH PLAIN, certificate verified (server certificate for "
  "127.0.0.1 signed by a CA made for the run, RSA 2048). Negotiated: outbox "
  "`%s`; msmtp `%s`. Variant 2a trusts a CA file holding only the test CA "
  "(outbox `ca-file`, msmtp `tls_trust_file`). Variant 2b trusts a temporary "
  "bundle: `/etc/ssl/certs/ca-certificates.crt` with the test CA appended "
  "(%s certificates), given to both tools the same way, so that each parses "
  "the whole system bundle; nothing is installed system-wide. The difference "
  "2b − 2a is the cost of loading %s more certificates."
  % (tls_line(os.path.join(R, "tls-outbox.txt"), "SSL connection using"),
     tls_line(os.path.join(R, "tls-msmtp.txt"), "TLS session parameters:", after=True),
     nb, int(nb) - 1 if nb.isdigit() else "the"))
w("- Figures 3 and 6 time a bash loop (`$EPOCHREALTIME` before and after) that "
  "runs the tool directly; fork/exec of the loop is in both tools' numbers. "
  "Their CPU time is the user + system time of the processes the loop ran "
  "(bash's `times` before and after). Each loop ran once. The outbox queue "
  "flush runs first, before the other figures.")
w("- Figure 5: `valgrind --tool=callgrind --trace-children=no`, median of %s "
  "runs (outbox %s; msmtp %s%s). Counts the whole process: dynamic loader, "
  "library constructors, the tool, libcurl/GnuTLS; not the smarthost."
  % (M["cg_runs"], ", ".join("%d" % v for v in av), ", ".join("%d" % v for v in bv),
     "; outbox LEAN " + ", ".join("%d" % v for v in lv) if LEAN else ""))
w("- Figure 6: outbox with `queue $T/queue-outbox` (commit = fsync of data, "
  "envelope and directory, on this machine's ext4): %d × `outbox -odq`, then "
  "one `outbox -q`, which sends all %d over one connection; the queue was "
  "checked empty afterwards. msmtp: %d separate invocations." % (q, q, q))
w("- Both tools log one line per message to a file in $T (outbox `log FILE`, "
  "msmtp `logfile FILE`, `syslog off`), so both do the same logging I/O; "
  "outbox runs with `queue off` except in figure 6, and with `helo` set "
  "(msmtp: `domain`) so that both send the same EHLO name without a lookup.")
w("- The binaries measured are copies made at the start of the run (`$T/bin`): "
  "`./outbox` from `make outbox`%s, and msmtp from Debian."
  % (" and the LEAN flavour from `make LEAN=1 BUILDDIR=$T/lean "
     "OUT=$T/bin/outbox-lean`" if LEAN else ""))
if HAVE_Q:
    w("- msmtpq (`/usr/libexec/msmtp/msmtpq/msmtpq`, Debian's msmtp package) runs "
      "non-interactively (queue run: `msmtpq --q-mgmt -r`, which is what "
      "`msmtp-queue -r` execs) with `EMAIL_CONN_TEST=x` (otherwise it pings "
      "debian.org before each send), `EMAIL_QUEUE_QUIET=t`, `MSMTPQ_Q` and "
      "`MSMTPQ_LOG` in $T. It has no queue-only switch: a message is queued only "
      "when sending fails. So its %d messages were queued while its msmtprc "
      "pointed at a closed loopback port (each enqueue includes a refused "
      "connection), then the msmtprc was pointed at the smarthost and the queue "
      "flushed; that flush still runs one msmtp process, plus `date` and `rm`, "
      "per message." % q)
w("- All numbers include the smarthost's own work (Python, one process, "
  "writing each message to disk); it is the same for both tools, but it "
  "dominates the queue flush and the 100 MiB transfer.")
w("")
w("### hyperfine details (ms)")
w("")
w("| run | tool | mean ± σ | median | min–max | user / system | runs |")
w("|---|---|---:|---:|---:|---:|---:|")
for d in details:
    w(d)
w("")
w("### Commands")
w("")
w("Run from the top of the repository; `$T` is the run's temporary directory "
  "(`mktemp -d /tmp/outbox-bench.XXXXXX`), `TMPDIR=$T/spool`. Smarthosts:")
w("")
w("```")
w("/usr/bin/python3 tests/smarthost.py --mode plain --cert $T/server.pem "
  "--key $T/server.key --outdir $T/recv-plain")
w("/usr/bin/python3 tests/smarthost.py --mode starttls --cert $T/server.pem "
  "--key $T/server.key --outdir $T/recv-tls --user bench --password (hidden)")
w("```")
w("")
w("```")
last = None
with open(os.path.join(R, "commands.tsv")) as f:
    for line in f:
        fig, _, cmd = line.rstrip("\n").partition("\t")
        if fig.startswith(("fig7", "fig8")):
            continue            # in the section of figures 7 and 8
        if fig != last:
            w("%s# %s" % ("" if last is None else "\n", fig))
            last = fig
        w(redact(cmd))
w("```")
w("")
w("Configurations (ports are the run's):")
w("")
for name in ("plain.conf", "tls-ca.conf", "tls-bundle.conf", "queue-outbox.conf",
             "plain.msmtprc", "tls-ca.msmtprc", "tls-bundle.msmtprc"):
    w("`$T/%s`:" % name)
    w("")
    w("```")
    w(cfg(name).rstrip("\n"))
    w("```")
    w("")
limits = os.path.join(HERE, "limits.md")
if os.path.exists(limits):
    with open(limits) as f:
        w(f.read().rstrip("\n"))
        w("")
sys.stdout.write("\n".join(out))
