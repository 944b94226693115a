#!/usr/bin/env python3
"""Which pages of a running ruleiq's executable are resident, by ELF section and by crate.

    sudo python3 loadtest/resident-pages.py PID [path/to/ruleiq]

Reads /proc/PID/pagemap (root needed for another user's process) for each page the
executable is mapped at, then names each resident page by its section (`readelf -S`)
and by the crate of the symbol covering most of it (`nm -C -S`). Used for issue 8's
audit-pack memory (docs/PERFORMANCE.md): an executable's code and data count towards
VmRSS once touched, and a fault maps up to 16 neighbouring pages too.
"""
import bisect
import collections
import os
import re
import struct
import subprocess
import sys

PAGE = 4096


def resident_pages(pid, exe):
    """Resident pages of the executable's mappings, as addresses in the ELF file's terms."""
    maps = [line.split() for line in open(f"/proc/{pid}/maps")]
    mine = [m for m in maps if len(m) >= 6 and os.path.realpath(m[5]) == exe]
    if not mine:
        sys.exit(f"{exe} is not mapped by process {pid}")
    bias = min(int(m[0].split("-")[0], 16) for m in mine if int(m[2], 16) == 0)
    present = []
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for m in mine:
            start, end = (int(x, 16) for x in m[0].split("-"))
            pagemap.seek(start // PAGE * 8)
            data = pagemap.read((end - start) // PAGE * 8)
            for i in range(0, len(data), 8):
                if struct.unpack("<Q", data[i : i + 8])[0] >> 63:
                    present.append(start + i // 8 * PAGE - bias)
    return present


def sections(exe):
    out = subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m and int(m.group(2), 16):
            start = int(m.group(2), 16)
            found.append((start, start + int(m.group(3), 16), m.group(1)))
    return found


def symbols(exe):
    out = subprocess.run(["nm", "-C", "-S", "--defined-only", exe], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[2] in "tTrRdDbB":
            found.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return sorted(found)


def crate(name):
    m = re.search(r"([a-z_][a-z0-9_]*)::", name)
    return m.group(1) if m else "(other)"


def main():
    pid = sys.argv[1]
    exe = os.path.realpath(sys.argv[2] if len(sys.argv) > 2 else f"/proc/{pid}/exe")
    present = resident_pages(pid, exe)
    secs = sections(exe)
    by_section = collections.Counter()
    for p in present:
        name = next((n for a, b, n in secs if a <= p < b), "(between sections)")
        by_section[name] += PAGE
    syms = symbols(exe)
    starts = [s[0] for s in syms]
    by_crate = collections.Counter()
    for p in present:
        i = bisect.bisect_right(starts, p + PAGE - 1) - 1
        weight = collections.Counter()
        while i >= 0:
            a, size, name = syms[i]
            overlap = min(a + size, p + PAGE) - max(a, p)
            if overlap > 0:
                weight[crate(name)] += overlap
            if a <= p:
                break
            i -= 1
        by_crate[weight.most_common(1)[0][0] if weight else "(no symbol: data)"] += PAGE
    mb = lambda n: f"{n / 2**20:7.1f} MB"
    print(f"{mb(len(present) * PAGE)}  resident of {exe}")
    print("by section:")
    for name, n in by_section.most_common():
        print(f"  {mb(n)}  {name}")
    print("by crate (top 25):")
    for name, n in by_crate.most_common(25):
        print(f"  {mb(n)}  {name}")


if __name__ == "__main__":
    main()
