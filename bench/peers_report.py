#!/usr/bin/python3
"""bench/peers_report.py - the default-configuration and round-trip sections
of bench/PEERS.md, from the raw results bench/peers (bench/peers-default.sh)
left in its work directory, and their summary in bench/RESULTS.md.

    peers_report.py T                  the PEERS.md sections, on stdout
    peers_report.py --splice FILE T    the summary into FILE (RESULTS.md),
                                       between its markers (replaced), or
                                       before "## How it was measured"
"""
import os
import statistics
import sys

BEGIN = "<!-- bench/peers: the default configuration and round trips: begin -->"
END = "<!-- bench/peers: end -->"
TOOLS = ("outbox", "msmtp", "nullmailer", "dma")
NAME = {"outbox": "outbox", "outbox-lean": "outbox LEAN", "msmtp": "msmtp",
        "nullmailer": "nullmailer", "dma": "dma"}


def kv(path):
    m = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            m[k] = v
    return m


def M(n):
    return "%.2f M" % (n / 1e6)


class Data:
    def __init__(self, T):
        self.T = T
        self.meta = kv(os.path.join(T, "default-meta.txt"))
        self.ir = {}            # (tool, state) -> [(tot, ld)]
        p = os.path.join(T, "default-ir.tsv")
        if os.path.exists(p):
            for line in open(p):
                tool, state, tot, ld = line.split()
                self.ir.setdefault((tool, state), []).append((int(tot), int(ld)))
        self.plain = {}         # the plain rows of bench/peers
        p = os.path.join(T, "rows")
        if os.path.exists(p):
            for line in open(p):
                f = line.split()
                if f:
                    self.plain[f[0]] = int(f[1])
        self.rtt = {}           # (tool, mode) -> list of rows
        for tool in TOOLS:
            for mode in ("plain", "tls", "smtps"):
                p = os.path.join(T, "rtt", "%s-%s.tsv" % (tool, mode))
                if os.path.exists(p):
                    rows = [l.split() for l in open(p) if l.strip()]
                    self.rtt[tool, mode] = [
                        (float(r[0]), float(r[1]), int(r[2]), int(r[3]),
                         int(r[4]), float(r[5]) if len(r) > 5 else 0.0)
                        for r in rows]

    def irmed(self, tool, state):
        v = self.ir.get((tool, state))
        if not v:
            return None
        return (statistics.median(t for t, _ in v),
                statistics.median(l for _, l in v), len(v),
                min(t for t, _ in v), max(t for t, _ in v))

    def rt(self, tool, mode):
        """(median waits, min, max, median unwaited, rt from wall, median
        direct ms, median proxied ms, runs)"""
        v = self.rtt.get((tool, mode))
        if not v:
            return None
        d = statistics.median(r[0] for r in v)
        p = statistics.median(r[1] for r in v)
        # the median of the pairs' differences: each pair ran back to back,
        # so a change of the machine's load between pairs cancels out
        diff = statistics.median(r[1] - r[0] for r in v)
        delay = float(self.meta.get("delay", "0.010"))
        return (statistics.median(r[2] for r in v), min(r[2] for r in v),
                max(r[2] for r in v), statistics.median(r[3] for r in v),
                diff / (2 * delay), d * 1e3, p * 1e3, len(v),
                statistics.median(r[5] for r in v) * 1e3)


def ir_rows(d):
    rows = []
    for tool, state, conf in (
            ("outbox", "cold", "no ca-file; trust-anchor cache cold (removed before the send)"),
            ("outbox", "warm", "no ca-file; trust-anchor cache warm"),
            ("outbox-lean", "cold", "no ca-file; trust-anchor cache cold"),
            ("outbox-lean", "warm", "no ca-file; trust-anchor cache warm"),
            ("msmtp", "system", "`tls_trust_file system`"),
            ("nullmailer", "system", "`starttls` (x509cafile: its default, the system bundle)"),
            ("dma", "system", "`STARTTLS`, `SECURETRANSFER` (dma verifies no CA: not a target)")):
        m = d.irmed(tool, state)
        if m:
            rows.append((tool, state, conf, m))
    return rows


def targets(d):
    t = []
    lw = d.irmed("outbox-lean", "warm")
    if lw:
        t.append(("default configuration, outbox LEAN, cache warm: Ir per send",
                  "≤ 15 M", M(lw[0]), lw[0] <= 15e6))
    for state in ("warm", "cold"):
        ow = d.irmed("outbox", state)
        for peer in ("msmtp", "nullmailer"):
            pm = d.irmed(peer, "system")
            if ow and pm:
                t.append(("default configuration, outbox (plain build), cache %s "
                          "÷ %s (system store)%s" % (state, peer,
                          "" if state == "warm" else " (not in the issue)"),
                          "< 1.0", "%.2f" % (ow[0] / pm[0]), ow[0] < pm[0]))
    if "outbox-lean" in d.plain and "dma" in d.plain:
        r = d.plain["outbox-lean"] / d.plain["dma"]
        t.append(("plain SMTP, outbox LEAN ÷ dma: Ir per send", "≤ 1.0",
                  "%.2f" % r, r <= 1.0))
    o = d.rt("outbox", "plain")
    n = d.rt("nullmailer", "plain")
    if o and n:
        t.append(("round trips, plain SMTP: outbox vs nullmailer", "≤ nullmailer",
                  "%g vs %g" % (o[0], n[0]), o[0] <= n[0]))
    o = d.rt("outbox", "tls")
    if o:
        t.append(("round trips, STARTTLS + AUTH: outbox", "≤ 10", "%g" % o[0],
                  o[0] <= 10))
    return t


def ir_table(d, w):
    rows = ir_rows(d)
    ow = d.irmed("outbox", "warm")
    lw = d.irmed("outbox-lean", "warm")
    w("| tool | configuration | Ir per send | Ir in ld.so | Ir rest | "
      "outbox warm ÷ this | outbox LEAN warm ÷ this |")
    w("|---|---|---:|---:|---:|---:|---:|")
    for tool, state, conf, m in rows:
        tot, ld = m[0], m[1]
        w("| %s%s | %s | %s | %s | %s | %s | %s |" % (
            NAME[tool], "" if state == "system" else ", cache " + state, conf,
            "{:,.0f}".format(tot), "{:,.0f}".format(ld),
            "{:,.0f}".format(tot - ld),
            "%.2f" % (ow[0] / tot) if ow else "–",
            "%.2f" % (lw[0] / tot) if lw else "–"))


WHERE = (("gnutls_certificate_set_x509_trust_file", "gnutls_certificate_set_x509_system_trust"),
         ("trust_learn",), ("gnutls_x509_trust_list_deinit",),
         ("gnutls_handshake", "SSL_connect"),
         ("gnutls_certificate_verify_peers2", "gnutls_certificate_verify_peers3"),
         ("curl_global_init",), ("_dl_start",))


def where_table(d, w):
    p = os.path.join(d.T, "default-where.tsv")
    if not os.path.exists(p):
        return
    ir = {}
    for line in open(p):
        name, fn, n = line.split()
        ir[name, fn] = int(n)
    names = [n for n in ("outbox-cold", "outbox-warm", "outbox-lean-cold",
                         "outbox-lean-warm", "msmtp-sys", "nullmailer-sys", "dma-sys")
             if any(k[0] == n for k in ir)]
    if not names:
        return
    w("Where they go: inclusive Ir of a few functions in the last send of each row "
      "(`callgrind_annotate --inclusive=yes`, summed over the send's processes; "
      "a function a tool does not call is left empty). Loading the CA file: "
      "`gnutls_certificate_set_x509_trust_file` (libcurl, nullmailer) or "
      "`gnutls_certificate_set_x509_system_trust` (msmtp); learning the anchors: "
      "outbox's `trust_learn` (cold only); freeing the trust list: "
      "`gnutls_x509_trust_list_deinit`; the handshake: `gnutls_handshake` "
      "(dma: OpenSSL's `SSL_connect`); the chain check after it: "
      "`gnutls_certificate_verify_peers2`/`3` (nullmailer calls it from within "
      "the handshake, so its handshake figure includes it); libcurl's `curl_global_init`; the dynamic linker's start-up "
      "`_dl_start` (loading and relocating the shared libraries).")
    w("")
    w("| send | load CA file | learn anchors | free trust list | TLS handshake | "
      "verify chain | curl_global_init | _dl_start |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    label = {"outbox-cold": "outbox, cold", "outbox-warm": "outbox, warm",
             "outbox-lean-cold": "outbox LEAN, cold", "outbox-lean-warm": "outbox LEAN, warm",
             "msmtp-sys": "msmtp", "nullmailer-sys": "nullmailer", "dma-sys": "dma"}
    for n in names:
        cells = []
        for fns in WHERE:
            v = sum(ir.get((n, f), 0) for f in fns)
            cells.append("" if not v else M(v) if v >= 5000 else "%d" % v)
        w("| %s | %s |" % (label[n], " | ".join(cells)))
    w("")


def rt_table(d, w):
    w("| tool | plain: replies waited for | plain: (wall via proxy − direct) / 20 ms "
      "| STARTTLS+AUTH: replies waited for | STARTTLS+AUTH: (wall via proxy − direct) / 20 ms "
      "| replies not waited for (plain / TLS) |")
    w("|---|---:|---:|---:|---:|---|")
    for tool in TOOLS:
        cells = []
        unw = []
        for mode in ("plain", "tls"):
            r = d.rt(tool, mode)
            if not r:
                cells += ["–", "–"]
                unw.append("–")
                continue
            waits = "%g" % r[0] if r[1] == r[2] else "%g (%d–%d)" % (r[0], r[1], r[2])
            cells += [waits, "%.1f (%.1f → %.1f ms; late %.0f ms)" % (
                r[4], r[5], r[6], r[8])]
            unw.append("%g" % r[3])
        w("| %s | %s | %s | %s | %s | %s |" % ((tool,) + tuple(cells) + (" / ".join(unw),)))


def peers_sections(d):
    out = []
    w = out.append
    T = d.T
    meta = d.meta
    w("")
    w("## The default configuration: STARTTLS + AUTH PLAIN, the system CA store")
    w("")
    w("One 2 KB message over STARTTLS with AUTH to tests/smarthost.py "
      "(`--mode starttls`, a certificate for localhost and 127.0.0.1 from a CA made "
      "for the run), each tool as its documentation's minimal configuration has it: "
      "no CA file named, so the system store `/etc/ssl/certs/ca-certificates.crt`. "
      "There, in the script's private mount namespace (an overlay on /etc), the "
      "store is the machine's real bundle with the run's CA appended: %s "
      "certificates, the same file at the same path for every tool, so each pays the "
      "parsing cost it pays in real use. Ir is the median of %s sends under "
      "callgrind for each row (cold and warm alternate for outbox); in this run the "
      "counts of one row differed by at most %s." % (
          meta.get("store_certs", "?"), meta.get("cg_runs", "?"), spread(d)))
    w("")
    ir_table(d, w)
    w("")
    where_table(d, w)
    w("outbox's configuration is README's minimal one (smarthost, user, "
      "password-file, domain; STARTTLS and the queue by default) plus the "
      "bench's helo and log; the queue directory (where the cache "
      "`trust-127.0.0.1-PORT` lives) exists before the first send. *cold*: "
      "the cache file removed just before the send, which verifies against the "
      "whole store and then writes the cache; *warm*: the next send, which loads "
      "only the cache. After the sends `outbox --check` said:")
    w("")
    for b in ("outbox", "outbox-lean"):
        p = os.path.join(T, "check-%s.trust" % b)
        if os.path.exists(p):
            w("    %s: %s" % (NAME[b], open(p).read().strip()))
    w("")
    w("## Round trips per message")
    w("")
    w("bench/delayproxy.py in front of each smarthost (the plain one of the first "
      "table and the STARTTLS one above): every chunk read from either side is "
      "written to the other %g ms later, in order; a new connection waits %g ms "
      "before the proxy connects to the smarthost, so the greeting costs one round "
      "trip like every other reply. Each tool sends %s times through the proxy and "
      "%s times directly, alternately, after one warm-up send of each (the same "
      "configurations, only the port differs). Two figures, medians:" % (
          float(meta.get("delay", "0.010")) * 1e3,
          float(meta.get("delay", "0.010")) * 1e3,
          meta.get("rtt_runs", "?"), meta.get("rtt_runs", "?")))
    w("")
    w("- **replies waited for**: counted by the proxy on the client's side of the "
      "connection: the runs of server data it wrote to the client before the client "
      "ended its stream, a run being server data with no client data in between. "
      "Each is one reply the client waited for (the greeting included; a TLS "
      "handshake flight is one too); commands a client sends without waiting "
      "(pipelining) do not start a new run. This is the round-trip count: it does "
      "not depend on the machine's load. The TCP handshake is not counted (one "
      "more for every tool).")
    w("- **(wall via proxy − direct) / 20 ms**: what the added latency cost the "
      "caller, in round trips: the median over the pairs of (wall time through the "
      "proxy − wall time of the direct send just before it), over 20 ms; the median "
      "wall times are in brackets. It includes anything else that waits on the "
      "network (e.g. a Nagle/delayed-ACK stall) and the noise of a shared machine "
      "(load average at the end of this run: %s): a check of the count above, "
      "not a better figure. *late* is the median total by which the proxy's "
      "writes (both ways) came after their due time (asyncio timers and "
      "scheduling on a busy machine): part of the wall figure that is the "
      "proxy's, not the tool's; it grows with the number of chunks, so TLS "
      "more than plain." % meta.get("load", "?"))
    w("- **replies not waited for**: runs of server data the proxy could deliver only "
      "after the client had ended its stream: a reply to QUIT the client did not wait "
      "for.")
    w("")
    rt_table(d, w)
    w("")
    w("The outbox rows are the plain build (the LEAN build links the same libcurl "
      "version's SMTP code: the same conversation).")
    r = d.rt("outbox", "smtps")
    if r:
        w("")
        w("Not in the issue, for comparison: outbox with implicit TLS (`tls smtps`, "
          "the same AUTH, to bench/smtpshost.py, tests/smarthost.py `--mode smtps` with AUTH offered, through a third proxy): "
          "%g replies waited for, %.1f round trips from the wall times (%.1f → %.1f ms), "
          "%g not waited for." % (r[0], r[4], r[5], r[6], r[3]))
    w("")
    w("## Against the issue's targets (reported, not asserted)")
    w("")
    w("| target | wanted | measured | met |")
    w("|---|---|---|---|")
    for name, want, got, ok in targets(d):
        w("| %s | %s | %s | %s |" % (name, want, got, "yes" if ok else "**no**"))
    w("")
    w("## Commands (default configuration and round trips)")
    w("")
    w("```")
    w("/usr/bin/python3 tests/smarthost.py --mode starttls --port 0 --cert $T/tls/server.pem "
      "--key $T/tls/server.key --user bench --password (hidden) --outdir $T/recv-tls")
    w("/usr/bin/python3 bench/delayproxy.py --upstream PLAIN_PORT --delay %s "
      "--connect-delay %s --stats $T/rtt/plain.stats" % (meta.get("delay"), meta.get("delay")))
    w("/usr/bin/python3 bench/delayproxy.py --upstream TLS_PORT --delay %s "
      "--connect-delay %s --stats $T/rtt/tls.stats" % (meta.get("delay"), meta.get("delay")))
    w("/usr/bin/python3 bench/smtpshost.py --mode smtps --port 0 --cert $T/tls/server.pem "
      "--key $T/tls/server.key --user bench --password (hidden) --outdir $T/recv-smtps")
    w("/usr/bin/python3 bench/delayproxy.py --upstream SMTPS_PORT --delay %s "
      "--connect-delay %s --stats $T/rtt/smtps.stats" % (meta.get("delay"), meta.get("delay")))
    w("")
    w("# instructions: each command below, prefixed by")
    w("#   valgrind --tool=callgrind --trace-children=yes --vgdb=no --callgrind-out-file=$T/cg/NAME.%p")
    w("# (dma also by setpriv --reuid=mail --regid=mail --clear-groups), then")
    w("#   callgrind_annotate --inclusive=no --threshold=100 FILE (PROGRAM TOTALS; ld-linux lines)")
    w("# cold: rm -f $T/q-outbox/trust-127.0.0.1-TLS_PORT before the send")
    p = os.path.join(T, "default-cmds.txt")
    if os.path.exists(p):
        for line in open(p):
            w(line.rstrip("\n"))
    w("")
    w("# round trips: the same with tls-p (through the proxy) / tls-d (direct),")
    w("# and plain-p / plain-d: outbox, msmtp, nullmailer and dma with the plain")
    w("# smarthost's configuration of the first table, e.g.")
    for tool, mode in [(t, "plain") for t in TOOLS] + [("outbox", "smtps")]:
        p = os.path.join(T, "rtt", "%s-%s.cmd" % (tool, mode))
        if os.path.exists(p):
            w(open(p).read().strip())
    w("```")
    w("")
    w("The configurations ($T/d/tls-d.*; the -p ones differ only in the port; "
      "the plain-* ones are those of the first table):")
    w("")
    for name, title in (("tls-d.outbox.conf", "outbox (LEAN: queue $T/q-outbox-lean)"),
                        ("tls-d.msmtprc", "msmtp"), ("tls-d.nm", "nullmailer (stdin of its smtp module)"),
                        ("tls-d.dma.conf", "dma (/etc/dma/dma.conf; /etc/dma/auth.conf: `bench|127.0.0.1:(hidden)`)")):
        p = os.path.join(T, "d", name)
        if not os.path.exists(p):
            continue
        w("%s:" % title)
        w("```")
        for line in open(p):
            line = line.rstrip("\n").replace(T, "$T")
            if line.startswith(("password ", "pass=")):
                line = line.split()[0].split("=")[0] + (" " if " " in line else "=") + "(hidden)"
            w(line)
        w("```")
    return out


def spread(d):
    worst = 0.0
    for v in d.ir.values():
        ts = [t for t, _ in v]
        if len(ts) > 1:
            worst = max(worst, (max(ts) - min(ts)) / statistics.median(ts))
    return "%.1f%%" % (100 * worst)


def results_section(d):
    out = [BEGIN]
    w = out.append
    w("## The default configuration and round trips (bench/peers)")
    w("")
    w("From `bench/peers` (written into bench/PEERS.md with the commands and "
      "configurations; this section is replaced by each run of bench/peers and "
      "kept by bench/run) on %s. One 2 KB message; ratios within that one run."
      % d.meta.get("date", "?"))
    w("")
    if ir_rows(d):
        w("Instructions per send, STARTTLS + AUTH PLAIN, no CA file: the system "
          "store (%s certificates; median of %s callgrind runs):" % (
              d.meta.get("store_certs", "?"), d.meta.get("cg_runs", "?")))
        w("")
        ir_table(d, w)
        w("")
    w("Round trips per message (10 ms each way through bench/delayproxy.py; "
      "medians of %s):" % d.meta.get("rtt_runs", "?"))
    w("")
    rt_table(d, w)
    r = d.rt("outbox", "smtps")
    if r:
        w("")
        w("(Not in the issue: outbox with implicit TLS, `tls smtps`: %g replies waited "
          "for, %.1f from the wall times.)" % (r[0], r[4]))
    w("")
    w("| target (issue 17) | wanted | measured | met |")
    w("|---|---|---|---|")
    for name, want, got, ok in targets(d):
        w("| %s | %s | %s | %s |" % (name, want, got, "yes" if ok else "**no**"))
    w("")
    w("Command: `bench/peers` (as root; `PEERS_CG_RUNS=%s PEERS_RTT_RUNS=%s`)."
      % (d.meta.get("cg_runs", "?"), d.meta.get("rtt_runs", "?")))
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


def kept(path):
    """The section as it is in path (for bench/run's report.py), or []."""
    if not os.path.exists(path):
        return []
    text = open(path).read()
    if BEGIN not in text or END not in text:
        return []
    return text[text.index(BEGIN):text.index(END) + len(END)].split("\n")


def main():
    a = sys.argv[1:]
    if a and a[0] == "--splice":
        splice(a[1], results_section(Data(a[2])))
    else:
        sys.stdout.write("\n".join(peers_sections(Data(a[0]))) + "\n")


if __name__ == "__main__":
    main()
