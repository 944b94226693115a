"""Summarises a steady_load.py log by phase.

    python3 summarise.py LOG NAME:FROM:TO [NAME:FROM:TO ...]

Each phase counts the requests that started in [FROM, TO) seconds by outcome, with
their median and worst time; the last line gives every outcome over the whole run.
"""
import collections
import sys

rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rows = [(float(s), float(d), o) for s, d, o in rows]


def describe(part):
    by = collections.defaultdict(list)
    for _, d, o in part:
        by[o].append(d)
    out = []
    for o in sorted(by):
        ds = sorted(by[o])
        out.append(f"{o} ×{len(ds)} (median {ds[len(ds) // 2] * 1000:.1f} ms, worst {ds[-1] * 1000:.0f} ms)")
    return ", ".join(out) or "none"


for phase in sys.argv[2:]:
    name, lo, hi = phase.split(":")
    part = [r for r in rows if float(lo) <= r[0] < float(hi)]
    print(f"  {name:<22} {describe(part)}")
print(f"  {'whole run':<22} {describe(rows)}")
