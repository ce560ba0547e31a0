#!/usr/bin/env python3
"""Which pages of a running binary are resident, attributed to crates through its symbol table.

Usage: benches/resident_pages.py PID [TOP]

Reads /proc/PID/maps and /proc/PID/pagemap (the present bit needs no privilege) for the mappings of the
process's own executable, and prints the resident megabytes per mapping kind (code, read-only data,
data) and the TOP crates (default 30) owning the resident pages, each page counted for the symbol that
covers most of it (`nm -n -S -C`). Pages without a symbol are `?` (ELF headers, relocations, unwind
tables); Rust's unnamed constants are `anon`. docs/benchmarks.md ("Idle footprint") uses it.
"""
import bisect
import collections
import os
import re
import struct
import subprocess
import sys

PAGE = 4096


def crate_of(symbol):
    name = symbol.lstrip("<").replace("_<", "")
    m = re.match(r"(?:impl )?&?(?:mut )?(?:dyn )?([A-Za-z_][A-Za-z0-9_]*)", name)
    return m[1] if m else "?"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pid, top = int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 30
    exe = os.readlink(f"/proc/{pid}/exe")
    maps = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == exe:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                maps.append((lo, hi, parts[1], int(parts[2], 16)))
    if not maps:
        sys.exit(f"no mapping of {exe} in process {pid}")
    base = min(lo - off for lo, _, _, off in maps)
    symbols = []
    for line in subprocess.run(["nm", "-n", "-S", "-C", exe], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r"([0-9a-f]+) ([0-9a-f]+) \S (.*)", line)
        if m:
            symbols.append((int(m[1], 16), int(m[2], 16), m[3]))
    starts = [s[0] for s in symbols]
    by_kind, by_crate = collections.Counter(), collections.Counter()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for lo, hi, perms, _ in maps:
            pages = (hi - lo) // PAGE
            pagemap.seek(lo // PAGE * 8)
            entries = pagemap.read(pages * 8)
            for i in range(pages):
                (entry,) = struct.unpack_from("<Q", entries, i * 8)
                if not entry >> 63:
                    continue
                by_kind[perms] += 1
                page = lo + i * PAGE - base
                owners = collections.Counter()
                j = max(bisect.bisect_right(starts, page) - 1, 0)
                while j < len(symbols) and symbols[j][0] < page + PAGE:
                    start, size, name = symbols[j]
                    overlap = min(start + size, page + PAGE) - max(start, page)
                    if overlap > 0:
                        owners[crate_of(name)] += overlap
                    j += 1
                by_crate[owners.most_common(1)[0][0] if owners else "?"] += 1
    mb = lambda pages: pages * PAGE / 2**20
    print("resident:", ", ".join(f"{perms} {mb(n):.1f} MB" for perms, n in sorted(by_kind.items())))
    for crate, n in by_crate.most_common(top):
        print(f"{mb(n):7.2f} MB  {crate}")


if __name__ == "__main__":
    main()
