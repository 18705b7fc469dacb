#!/usr/bin/python3
"""bench/cgobj.py FILE: exclusive instruction counts (Ir) of a callgrind
output file, summed per shared object (read from the ob= lines)."""
import collections, re, sys
names = {}
tot = collections.Counter()
cur = "?"
skip = False
def obname(v):
    m = re.match(r"\((\d+)\)(?:\s+(.*))?$", v)
    if not m:
        return v
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), "?")
for line in open(sys.argv[1]):
    c = line[:1]
    if line.startswith("ob="):
        cur = obname(line[3:].strip())
    elif line.startswith("cob="):
        obname(line[4:].strip())
    elif line.startswith("calls="):
        skip = True
    elif c.isdigit() or c in "+-*":
        if skip:
            skip = False
            continue
        f = line.split()
        if len(f) >= 2:
            tot[cur.rsplit("/", 1)[-1]] += int(f[1])
all_ = sum(tot.values())
for k, v in tot.most_common(12):
    print("%12d %5.1f%%  %s" % (v, 100.0 * v / all_, k))
print("%12d        total" % all_)
