#!/usr/bin/python3
"""bench/senders.py - the parallel senders of figure 7 (bench/burst.sh).

    senders.py --senders S --messages N --input FILE --deadline SECONDS \\
               --out JSON -- COMMAND...

Starts S bash loops at once; together they run COMMAND N times (N/S each,
the first N%S loops one more), each time with FILE on stdin, one after the
other within a loop. This process is a child subreaper
(PR_SET_CHILD_SUBREAPER), so whatever the commands leave running detached
(outbox's carriers) is reparented to it and reaped here: it waits for every
descendant, not only the loops. Writes JSON: the start time, when the last
loop exited, when the last descendant exited (time.time(), the clock of
bash's $EPOCHREALTIME), the user and system CPU seconds of all of them
(getrusage RUSAGE_CHILDREN), how many detached processes were reparented
to it and reaped, every failed command, and (--queue, --recv)
how many messages were in the queue and at the server when the last loop
exited.

At the deadline the loops still running are killed (their process groups)
and the wait ends; "deadline_hit" says so. Never kills anything else.
"""
import argparse
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36

LOOP = r'''
k=$1 m=$2 in=$3
shift 3
for ((i = 0; i < m; i++)); do
	"$@" < "$in" || echo "sender $k, message $i: exit $?" >&2
done
'''


def count(d, suffix):
    try:
        return sum(1 for f in os.listdir(d) if f.endswith(suffix))
    except FileNotFoundError:
        return 0


def snapshot(a):
    snap = {}
    if a.queue:
        snap["queued_when_senders_done"] = count(os.path.join(a.queue, "msg"), ".env")
    if a.recv:
        snap["received_when_senders_done"] = count(a.recv, ".eml")
    return snap


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--senders", type=int, required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--deadline", type=float, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--queue", help="count DIR/msg/*.env when the last loop exits")
    p.add_argument("--recv", help="count DIR/*.eml when the last loop exits")
    p.add_argument("command", nargs="+")
    a = p.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("senders.py: prctl(PR_SET_CHILD_SUBREAPER): %s"
                 % os.strerror(ctypes.get_errno()))
    per, extra = divmod(a.messages, a.senders)
    fails_path = a.out + ".stderr"
    errs = open(fails_path, "wb")
    loops = {}
    t0 = time.time()
    for k in range(a.senders):
        m = per + (1 if k < extra else 0)
        pr = subprocess.Popen(["bash", "-c", LOOP, "sender", str(k), str(m), a.input]
                              + a.command, stdout=subprocess.DEVNULL, stderr=errs,
                              start_new_session=True)
        loops[pr.pid] = pr
    errs.close()
    end = t0 + a.deadline
    loop_status = {}
    senders_done = None
    snap = {}
    detached = 0
    deadline_hit = False
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break                       # no descendant left
        if pid == 0:
            if time.time() > end:
                deadline_hit = True
                for lp in loops:
                    if lp not in loop_status:
                        try:
                            os.killpg(lp, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                if senders_done is None:
                    senders_done = time.time()
                    snap = snapshot(a)
                break
            time.sleep(0.01)
            continue
        if pid not in loops:
            detached += 1
        else:
            loop_status[pid] = os.waitstatus_to_exitcode(status)
            loops[pid].returncode = loop_status[pid]
            if len(loop_status) == len(loops):
                senders_done = time.time()
                snap = snapshot(a)
    all_done = time.time()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(fails_path, "rb") as f:
        failed = [x for x in f.read().decode(errors="replace").splitlines()
                  if x.startswith("sender ")]
    res = dict(t0=t0, senders_done=senders_done, all_done=all_done,
               deadline_hit=deadline_hit, cpu_user=ru.ru_utime, cpu_sys=ru.ru_stime,
               loops_failed=[s for s in loop_status.values() if s != 0],
               failed=failed, detached=detached, **snap)
    with open(a.out + ".tmp", "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    os.replace(a.out + ".tmp", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
