#!/usr/bin/python3
"""bench/burst_report.py: the RESULTS.md section of figures 7 (burst of
parallel senders) and 8 (queue flush against smtp-sink), from the raw
results bench/burst.sh leaves in WORKDIR/results/burst.

    burst_report.py WORKDIR                print the section
    burst_report.py --splice FILE WORKDIR  put it into FILE (RESULTS.md):
                                           replace the section if FILE has
                                           one, else insert it before "## How
                                           it was measured", else append

bench/report.py imports section() for a whole bench/run. Reports the
issue's targets next to the values; asserts nothing."""
import json
import os
import re
import statistics
import sys

BEGIN = "<!-- figures 7 and 8 (bench/burst.sh): begin -->"
END = "<!-- figures 7 and 8: end -->"


def kv(path):
    m = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                m[k] = v
    return m


def num(path):
    with open(path) as f:
        return float(f.read().split()[0])


def jload(path):
    with open(path) as f:
        return json.load(f)


LOGLINE = re.compile(r"^\S+ outbox\[(\d+)\]: (?:([0-9A-F]{16}): )?(.*)$")


def log_stats(path):
    """From outbox's log lines of a burst: messages sent by the process
    that took them in (it held a connection slot), messages queued for
    lack of a slot, messages sent by other processes (the detached
    carriers) and how many carriers, and lines of any other kind."""
    st = dict(direct=None, noslot=None, carried=None, carriers=None, other=None,
              other_sample="")
    if not os.path.exists(path):
        return st
    owner, sent, carriers = {}, {}, set()
    noslot = other = 0
    with open(path, errors="replace") as f:
        for line in f:
            mo = LOGLINE.match(line.rstrip("\n"))
            if not mo:
                other += 1
                st["other_sample"] = st["other_sample"] or line.strip()[:200]
                continue
            pid, qid, rest = mo.groups()
            if qid and rest.startswith("from="):
                owner[qid] = pid
            elif qid and "status=sent" in rest:
                sent[qid] = pid
            elif qid and rest == "removed":
                pass
            elif "max-connections" in rest:
                if qid and rest.startswith("queued ("):
                    noslot += 1
            else:
                other += 1
                st["other_sample"] = st["other_sample"] or line.strip()[:200]
    direct = sum(1 for q, p in sent.items() if owner.get(q) == p)
    for q, p in sent.items():
        if owner.get(q) != p:
            carriers.add(p)
    st.update(direct=direct, noslot=noslot, carried=len(sent) - direct,
              carriers=len(carriers), other=other)
    return st


def have(T):
    rb = os.path.join(T, "results", "burst")
    return any(os.path.exists(os.path.join(rb, f)) for f in ("fig7.done", "fig8.done"))


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return "–"
    return "%.2f" % (a / b)


def met(ok):
    return "yes" if ok else "**no**"


def f1(x):
    return "–" if x is None else "%.1f" % x


def f2(x):
    return "–" if x is None else "%.2f" % x


def redact(T, text):
    text = text.replace(T, "$T")
    return re.sub(r"(?m)^(password\s+).*$", r"\1(hidden)", text)


def section(T, machine=None):
    """The section's lines. machine: bench/run's machine.txt (dict), or
    None when bench/burst ran alone (then meta.txt has what is needed)."""
    R = os.path.join(T, "results")
    RB = os.path.join(R, "burst")
    B = kv(os.path.join(RB, "meta.txt"))
    M = dict(B)
    M.update(machine or {})
    out = []
    w = out.append
    w(BEGIN)
    w("## Figures 7 and 8: a burst of parallel senders, and the queue flush against a C sink")
    w("")
    standalone = machine is None
    w("Written by `%s` on %s (outbox from git %s%s, binary sha256 %s…); msmtp %s "
      "and Postfix %s (smtp-sink, smtp-source) from Debian. Load average "
      "(1, 5, 15 min) before these figures %s, after them %s; nice %s."
      % ("bench/burst" if standalone else "bench/run", M.get("date", "?"),
         M.get("git", "?"),
         " with uncommitted changes in src/" if M.get("git_dirty", "0") != "0" else "",
         M.get("outbox_sha", "?"), B.get("msmtp_pkg", "?"), B.get("postfix_pkg", "?"),
         B.get("load_start", "?"), B.get("load_end", "?"), M.get("nice", "?")))
    w("")
    loads = []
    for k in ("load_start", "load_end"):
        try:
            loads.append(float(B.get(k, "0").split()[0]))
        except (ValueError, IndexError):
            pass
    w("**Note:** a busy %s-core machine: other sessions' builds and tests ran "
      "beside these figures (load average up to %.2f). Compare the tools "
      "within a figure, as ratios; the absolute rates are this machine's "
      "under that load, and the fsync-bound parts (outbox's queue) vary most "
      "with it." % (M.get("cores", "?"), max(loads) if loads else 0.0))
    w("")
    targets = []
    # ---------------------------------------------------------- figure 7
    if os.path.exists(os.path.join(RB, "fig7.done")):
        n = int(B["burst_n"])
        s = int(B["burst_senders"])
        res = {}
        for tool in ("outbox", "msmtp", "outbox-tmpfs"):
            if not os.path.exists(os.path.join(RB, "fig7-%s-server.json" % tool)):
                continue
            k = kv(os.path.join(RB, "fig7-%s.txt" % tool))
            sd = jload(os.path.join(RB, "fig7-%s.json" % tool))
            k.update({x: str(sd.get(x, "")) for x in
                      ("received_when_senders_done", "queued_when_senders_done")})
            srv = jload(os.path.join(RB, "fig7-%s-server.json" % tool))
            after_q = os.path.join(RB, "fig7-%s-server-after-q.json" % tool)
            t0 = sd["t0"]
            r = dict(k=k, srv=srv, sd=sd)
            r["senders"] = sd["senders_done"] - t0
            r["all_done"] = sd["all_done"] - t0
            r["cpu"] = sd["cpu_user"] + sd["cpu_sys"]
            r["srv_cpu"] = (num(os.path.join(RB, "fig7-%s-server-cpu1.txt" % tool)) -
                            num(os.path.join(RB, "fig7-%s-server-cpu0.txt" % tool)))
            r["by_carriers"] = int(k["received_after_wait"])
            r["last"] = srv["last_message"] - t0 if srv["last_message"] else None
            r["q"] = None
            if os.path.exists(after_q):
                r["q"] = dict(srv=jload(after_q),
                              seconds=num(os.path.join(R, "time-fig7-%s-q.txt" % tool)),
                              delivered=int(k["received_after_q"]) - r["by_carriers"])
            r["wall"] = r["last"]
            r["rate"] = r["by_carriers"] / r["last"] if r["last"] else None
            r["log"] = log_stats(os.path.join(RB, "fig7-%s.log" % tool))
            res[tool] = r
        o, m = res["outbox"], res["msmtp"]
        tm = res.get("outbox-tmpfs")
        w("### 7. Burst: %d messages from %d parallel senders, STARTTLS + AUTH PLAIN"
          % (n, s))
        w("")
        if tm:
            w("| figure 7 | outbox | msmtp | ratio outbox/msmtp | (diagnostic) outbox, queue on tmpfs |")
            w("|---|---:|---:|---:|---:|")
        else:
            w("| figure 7 | outbox | msmtp | ratio outbox/msmtp |")
            w("|---|---:|---:|---:|")

        def row(label, get, fmt, r=True, msmtp=True):
            a = get(o)
            b = get(m) if msmtp else None
            cells = [label, fmt(a), fmt(b) if msmtp else "–",
                     ratio(a, b) if r and msmtp else ""]
            if tm:
                cells.append(fmt(get(tm)))
            w("| %s |" % " | ".join(cells))

        def intf(x):
            return "–" if x is None else str(x)
        row("wall time until the smarthost had received the last message (s)",
            lambda r: r["wall"], f2)
        row("messages/s (higher is better)", lambda r: r["rate"], f1)
        row("the last sender exited after (s)", lambda r: r["senders"], f2)
        row("the last process (outbox: carrier) exited after (s)", lambda r: r["all_done"], f2)
        row("messages received when the last sender had exited",
            lambda r: int(r["k"]["received_when_senders_done"]), intf, r=False)
        row("messages in outbox's queue when the last sender had exited",
            lambda r: int(r["k"]["queued_when_senders_done"]), intf, msmtp=False)
        row("CPU time of the senders and carriers per message, user+sys (ms)",
            lambda r: r["cpu"] / n * 1000, f2)
        row("CPU time of the smarthost (Python) per message, user+sys (ms)",
            lambda r: r["srv_cpu"] / n * 1000, f2)
        row("messages left by the carriers (then sent by one `outbox -q`)",
            lambda r: n - r["by_carriers"], intf, msmtp=False)
        row("detached processes left by the senders (reaped by senders.py)",
            lambda r: r["sd"].get("detached"), intf)
        row("messages sent by their own sender process (it got a connection slot)",
            lambda r: r["log"]["direct"], intf, msmtp=False)
        row("messages queued for lack of a free slot (\"max-connections\")",
            lambda r: r["log"]["noslot"], intf, msmtp=False)
        row("messages sent by detached carriers / carrier processes",
            lambda r: None if r["log"]["carried"] is None else
            "%d / %d" % (r["log"]["carried"], r["log"]["carriers"]), intf, msmtp=False)
        row("log lines other than from=, sent, removed and max-connections queueing",
            lambda r: r["log"]["other"], intf, msmtp=False)
        for label, key in (("connections at the smarthost", "connections"),
                           ("TLS handshakes (STARTTLS) at the smarthost", "tls_handshakes"),
                           ("AUTH at the smarthost (all successful: %s)", "auth"),
                           ("MAIL transactions at the smarthost", "mail"),
                           ("most connections open at once", "peak_connections")):
            if "%s" in label:
                ok = all(r["srv"]["auth"] == r["srv"]["auth_ok"] for r in res.values())
                label = label % ("yes" if ok else "**no**")
            row(label, lambda r: r["srv"][key], intf)
        w("")
        for tool, r in res.items():
            lg, det = r["log"], r["sd"].get("detached")
            if det and lg["carriers"] is not None and det > lg["carriers"]:
                w("%s: the senders left %d detached processes for %d messages: %d "
                  "carrier(s), which sent %d messages, and %d that sent none; the "
                  "CPU time of all of them is in the CPU row."
                  % (tool, det, n, lg["carriers"], lg["carried"], det - lg["carriers"],))
                w("")
            if r["q"]:
                w("%s: the detached carriers left %d messages; the closing `outbox -q` "
                  "sent them in %.2f s over %d more connection(s). The rate above "
                  "counts only what the carriers delivered."
                  % (tool, r["q"]["delivered"], r["q"]["seconds"],
                     r["q"]["srv"]["connections"] - r["srv"]["connections"]))
                w("")
            if r["log"]["other_sample"]:
                w("%s: %d other log lines, for example: `%s`"
                  % (tool, r["log"]["other"], r["log"]["other_sample"]))
                w("")
        targets.append(("7. connections for the burst (outbox)", "≤ 4",
                        str(o["srv"]["connections"]), met(o["srv"]["connections"] <= 4)))
        if o["rate"] and m["rate"]:
            targets.append(("7. burst rate ÷ msmtp's", "≥ 3", "%.2f" % (o["rate"] / m["rate"]),
                            met(o["rate"] >= 3 * m["rate"])))
    # ---------------------------------------------------------- figure 8
    if os.path.exists(os.path.join(RB, "fig8.done")):
        n = int(B["flush_n"])
        runs = int(B["flush_runs"])

        def series(what):
            out_ = [os.path.join(R, "%s-%d.txt" % (what, i)) for i in range(1, runs + 1)]
            return [num(p_) for p_ in out_] if all(os.path.exists(p_) for p_ in out_) else None
        ob, sr = series("time-fig8-outbox-q"), series("time-fig8-smtp-source")
        obc, src = series("cpu-fig8-outbox-q"), series("cpu-fig8-smtp-source")
        enq = series("time-fig8-outbox-odq")
        tq, tqc = series("time-fig8-tmpfs-q"), series("cpu-fig8-tmpfs-q")
        a, b = statistics.median(ob), statistics.median(sr)
        w("### 8. Queue flush against a C sink: %d messages to Postfix's smtp-sink, plain SMTP" % n)
        w("")
        if tq:
            w("| figure 8 | `outbox -q` | `smtp-source -d` | ratio outbox/smtp-source | (diagnostic) `outbox -q`, queue on tmpfs |")
            w("|---|---:|---:|---:|---:|")
        else:
            w("| figure 8 | `outbox -q` | `smtp-source -d` | ratio outbox/smtp-source |")
            w("|---|---:|---:|---:|")

        def row8(cells, extra):
            w("| %s |" % " | ".join(cells + ([extra] if tq else [])))
        row8(["%d messages over one connection: median wall time of %d runs (s)" % (n, runs),
              "%.3f" % a, "%.3f" % b, ratio(a, b)],
             "%.3f" % statistics.median(tq) if tq else "")
        row8(["messages/s (higher is better)", "%.0f" % (n / a), "%.0f" % (n / b), ratio(b, a)],
             "%.0f" % (n / statistics.median(tq)) if tq else "")
        row8(["CPU time per message, user+sys, median (ms)",
              "%.3f" % (statistics.median(obc) / n * 1000),
              "%.3f" % (statistics.median(src) / n * 1000),
              ratio(statistics.median(obc), statistics.median(src))],
             "%.3f" % (statistics.median(tqc) / n * 1000) if tq else "")
        row8(["each run, wall (s)", ", ".join("%.3f" % x for x in ob),
              ", ".join("%.3f" % x for x in sr), ""],
             ", ".join("%.3f" % x for x in tq) if tq else "")
        row8(["(not timed against smtp-source) queueing them first, %d × `outbox -odq`: "
              "messages/s, each run" % n, ", ".join("%.0f" % (n / x) for x in enq), "–", ""],
             ", ".join("%.0f" % (n / x) for x in series("time-fig8-tmpfs-odq")) if tq else "")
        w("")
        targets.append(("8. flush rate ÷ smtp-source's", "≥ 0.9", "%.2f" % (b / a), met(b / a >= 0.9)))
        if tq:
            targets.append(("8. (diagnostic, queue on tmpfs) flush rate ÷ smtp-source's", "≥ 0.9",
                            "%.2f" % (b / statistics.median(tq)),
                            met(b / statistics.median(tq) >= 0.9)))
        st = os.path.join(RB, "fig8-strace.txt")
        if os.path.exists(st):
            calls = {}
            with open(st) as f:
                for line in f:
                    p = line.split()
                    if len(p) >= 5 and re.match(r"^[\d.]+$", p[0]) and p[-1] != "total":
                        try:
                            calls[p[-1]] = (float(p[1]), int(p[3]))
                        except ValueError:
                            pass
            tot = sum(v[0] for v in calls.values())
            top = sorted(calls.items(), key=lambda kv_: -kv_[1][0])[:6]
            w("Where an `outbox -q` of %d (queue on disk) spends its system-call time "
              "(one more flush under `strace -f -c -w`, not in the figures: the run "
              "and the store's removal thread together, wall time in each call, so "
              "futex and poll include waiting; seconds, "
              "calls): %s; all system calls %.3f s." % (
                  n, "; ".join("%s %.3f s, %d" % (k_, v[0], v[1]) for k_, v in top), tot))
            w("")
    if targets:
        w("### Against the issue's targets (reported, not asserted)")
        w("")
        w("| target | wanted | measured | met |")
        w("|---|---|---|---|")
        for t in targets:
            w("| %s | %s | %s | %s |" % t)
        w("")
    # ---------------------------------------------------------- how
    w("### How figures 7 and 8 were measured")
    w("")
    if os.path.exists(os.path.join(RB, "fig7.done")):
        w("- Figure 7: the smarthost is `bench/countinghost.py`, i.e. "
          "tests/smarthost.py (aiosmtpd, one Python process, STARTTLS required, "
          "AUTH PLAIN required, every message written to disk) with counters: "
          "connections, completed TLS handshakes, AUTH commands and their "
          "successes, MAIL commands, messages, the most connections open at "
          "once, and the time of the last message (counted on the server's one "
          "event loop; zeroed before each tool). The same message, CA and "
          "certificate as figure 2a.")
        w("- %d sender loops (bash) start at once, each sending %s messages one "
          "after the other, the tool run directly with the message on stdin; "
          "any non-zero exit stops the run. They are started by "
          "`bench/senders.py`, a child subreaper: the processes outbox leaves "
          "running detached (the carriers) are reparented to it, so it waits "
          "for them too, and its CPU time (getrusage of the children: the "
          "loops, the tool's processes, the carriers) covers all of them; the "
          "smarthost's CPU time is read from /proc before and after. outbox: the configuration of figure 2a with `queue "
          "$T/queue-burst` (max-connections not set: the default, 2); a sender "
          "that finds both connection slots held queues its message and exits "
          "0, and each of the two connection holders hands its connection to a "
          "detached carrier that sends the queued messages. msmtp: figure 2a's "
          "msmtprc, one connection, TLS handshake and login per message."
          % (int(B["burst_senders"]), "%d or %d" % (int(B["burst_n"]) // int(B["burst_senders"]),
                                                    -(-int(B["burst_n"]) // int(B["burst_senders"])))
             if int(B["burst_n"]) % int(B["burst_senders"]) else str(int(B["burst_n"]) // int(B["burst_senders"]))))
        w("- Wall time: from just before the first sender starts "
          "(`$EPOCHREALTIME`) to the smarthost's time of the last message it "
          "received (the same clock). senders.py waits at most %s s for "
          "all processes; should messages still be missing then, the harness "
          "waits until the smarthost has all %s or %s s pass without a new "
          "one; if outbox's carriers left any, one "
          "`outbox -q` sends them, and that is reported on its own line. Then "
          "it checks the count (exactly %s), that every copy has the same size "
          "and that outbox's queue is empty."
          % (B["burst_wait"], B["burst_n"], B["burst_idle"], B["burst_n"]))
    if os.path.exists(os.path.join(RB, "fig8.done")):
        w("- Figure 8: Postfix's `smtp-sink -c -u nobody 127.0.0.1:PORT 256` (C, "
          "one process, throws the messages away; -c keeps a count of "
          "messages, read from its output). Before the figure, a self-check "
          "with `smtp-sink -d` (one dump file per transaction) compared the "
          "bytes each tool sent, from the first header line on: identical "
          "(%s bytes)%s. smtp-source: `-d` (the next message over the same "
          "connection), `-s 1` (one session), `-m N`, `-F $T/msg2k.eml` (the "
          "file as it is, CRLF line ends), the same sender, recipient and "
          "EHLO name. outbox: `outbox -odq` N times (figure 6's configuration, "
          "pointed at the sink: `tls off`, the queue in $T, a log file), then "
          "one `outbox -q`, timed, which sends them all over one connection "
          "and removes each from the queue (its commit and removal fsyncs are "
          "part of the figure; smtp-source keeps no state). The two alternate, "
          "smtp-source first, %s times each; the table gives the median run. "
          "Both are run under `timeout` (the same fork and exec for both). "
          "CPU time: the user + system time of the process (bash `times`)."
          % (open(os.path.join(RB, "fig8-check-bytes.txt")).read().strip(),
             ", except that smtp-source sends one empty line more at the end "
             "(2 bytes on the wire)"
             if os.path.exists(os.path.join(RB, "fig8-check-extra-line.txt")) else "",
             B["flush_runs"]))
    if B.get("tmpfs", "0") != "0":
        w("- The columns marked *diagnostic* repeat outbox's part with its queue "
          "directory on tmpfs (`/dev/shm`, removed afterwards), where fsync costs "
          "next to nothing: the difference to the column beside it is what the "
          "queue's durability (the fsyncs of each commit and each removal) costs "
          "on this machine's disk. They are not the figures the targets are "
          "about: a queue on tmpfs does not survive a reboot.")
    w("")
    cmds = os.path.join(R, "commands.tsv")
    if os.path.exists(cmds):
        w("Commands (`$T` is the run's work directory):")
        w("")
        w("```")
        w("/usr/bin/python3 bench/countinghost.py --mode starttls --cert $T/server.pem "
          "--key $T/server.key --outdir $T/recv-burst --user bench --password (hidden) "
          "--stats $T/results/burst/server.json")
        w("/usr/sbin/smtp-sink -c -u nobody 127.0.0.1:PORT 256")
        seen = []
        with open(cmds) as f:
            for line in f:
                fig, _, cmd = line.rstrip("\n").partition("\t")
                if not fig.startswith(("fig7", "fig8")):
                    continue
                base = re.sub(r"-\d+$", "", fig)   # the same command, the next run
                if base in seen:
                    continue
                seen.append(base)
                w("\n# %s" % base)
                w(redact(T, cmd))
        w("```")
        w("")
    for name in ("burst.conf", "burst.msmtprc", "flush.conf"):
        p = os.path.join(T, name)
        if os.path.exists(p):
            w("`$T/%s`:" % name)
            w("")
            w("```")
            with open(p) as f:
                w(redact(T, f.read()).rstrip("\n"))
            w("```")
            w("")
    w(END)
    return out


def splice(path, lines):
    text = open(path).read() if os.path.exists(path) else ""
    new = "\n".join(lines) + "\n"
    if BEGIN in text and END in text:
        a = text.index(BEGIN)
        b = text.index(END) + len(END)
        if text[b:b + 1] == "\n":
            b += 1
        text = text[:a] + new + text[b:]
    elif "\n## How it was measured\n" in text:
        a = text.index("\n## How it was measured\n") + 1
        text = text[:a] + new + "\n" + text[a:]
    else:
        text = text.rstrip("\n") + "\n\n" + new
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main():
    a = sys.argv[1:]
    if a and a[0] == "--splice":
        splice(a[1], section(a[2]))
    else:
        sys.stdout.write("\n".join(section(a[0])) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
